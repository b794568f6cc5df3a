package layout

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/autoq/autoq/quant"
)

func TestW8A8Weights(t *testing.T) {
	const N, K = 4, 32
	q := quantizeGaussian(t, "fc", N, K, quant.Scheme{Bits: 8, Symmetric: true, Granularity: quant.PerChannel}, 5, 1)
	lv, sc, err := W8A8Weights(q)
	require.NoError(t, err)
	want := q.Levels()
	for i := range lv {
		require.Equal(t, want[i], int32(lv[i]))
	}
	for n := 0; n < N; n++ {
		assert.Equal(t, q.Scales[n], sc[n])
	}
	// The same values, asymmetric: refused.
	qa := quantizeGaussian(t, "fc", N, K, quant.Scheme{Bits: 8, Symmetric: false, Granularity: quant.PerChannel}, 5, 1)
	_, _, err = W8A8Weights(qa)
	assert.ErrorContains(t, err, "symmetric")
}
