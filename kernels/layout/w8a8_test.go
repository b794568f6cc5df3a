package layout

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/quant"
)

func TestW8A8Weights(t *testing.T) {
	const N, K = 4, 32
	w := testutil.Gaussian(testutil.Rand(5), N*K, 1)
	q, err := quant.Quantize("fc", w, N, K, quant.Scheme{Bits: 8, Symmetric: true, Granularity: quant.PerChannel}, quant.SearchOptions{Method: quant.SearchMax})
	require.NoError(t, err)
	lv, sc, err := W8A8Weights(q)
	require.NoError(t, err)
	want := q.Levels()
	for i := range lv {
		require.Equal(t, want[i], int32(lv[i]))
	}
	for n := 0; n < N; n++ {
		assert.Equal(t, q.Scales[n], sc[n])
	}
	qa, err := quant.Quantize("fc", w, N, K, quant.Scheme{Bits: 8, Symmetric: false, Granularity: quant.PerChannel}, quant.SearchOptions{Method: quant.SearchMax})
	require.NoError(t, err)
	_, _, err = W8A8Weights(qa)
	assert.ErrorContains(t, err, "symmetric")
}
