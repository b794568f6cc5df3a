package quantfile

import (
	"path/filepath"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/safetensors"
	"github.com/stretchr/testify/require"
)

// gaussianQ quantizes a rows x cols matrix of standard normal weights drawn from seed,
// under s with the default (max) search.
func gaussianQ(t testing.TB, name string, seed uint64, rows, cols int, s quant.Scheme) *quant.QTensor {
	t.Helper()
	q, err := quant.Quantize(name, testutil.Gaussian(testutil.Rand(seed), rows*cols, 1), rows, cols, s, quant.SearchOptions{})
	require.NoError(t, err)
	return q
}

// readBack writes ts with meta into a fresh safetensors file and reads its quantized
// weights back. The file stays open until the test ends: the QTensors view it.
func readBack(t *testing.T, ts []safetensors.NamedTensor, meta map[string]string) (map[string]*quant.QTensor, map[string]QuantMeta, error) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "q.safetensors")
	require.NoError(t, safetensors.WriteFile(p, ts, meta))
	return ReadQuantized(testutil.Open(t, safetensors.Open, p))
}
