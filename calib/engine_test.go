package calib_test

import (
	"testing"

	"github.com/autoq/autoq/backend"
	"github.com/autoq/autoq/calib"
	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/require"
)

// A Session fed through backend.CPU (what `autoq calibrate --device cpu` uses, and what a
// CUDA backend must reproduce) builds the same histograms, per-channel absmax and table as
// the package's own reference path.
func TestSessionThroughCPUBackendMatchesReference(t *testing.T) {
	r := testutil.Rand(50)
	ref := calib.NewSession(calib.SessionOptions{ChannelAbsMax: true})
	viaBackend := calib.NewSession(calib.SessionOptions{ChannelAbsMax: true, Engine: backend.NewCPU()})
	for b := range 5 {
		batch := []calib.NamedTensor{
			{Name: "a", T: tensor.FromF32(testutil.Gaussian(r, 6*40, float64(b+1)), 6, 40)},
			{Name: "h", T: tensor.FromU16(tensor.F16, tensor.F32ToF16Slice(testutil.Laplace(r, 3*8, 0.1)), 3, 8)},
			{Name: "z", T: tensor.FromU16(tensor.BF16, tensor.F32ToBF16Slice(testutil.StudentT(r, 4*4, 2)), 4, 4)},
		}
		require.NoError(t, ref.Add("batch", batch))
		require.NoError(t, viaBackend.Add("batch", batch))
	}
	require.Equal(t, ref.Histograms(), viaBackend.Histograms())
	for _, m := range []calib.Method{calib.MethodEntropy, calib.MethodPercentile, calib.MethodMSE, calib.MethodMax} {
		a, err := ref.Table(calib.DefaultOptions(m))
		require.NoError(t, err)
		b, err := viaBackend.Table(calib.DefaultOptions(m))
		require.NoError(t, err)
		require.Equal(t, a, b, m.String())
	}
}
