package calibrun

import (
	"testing"

	"github.com/autoq/autoq/backend"
	"github.com/autoq/autoq/calib"
	"github.com/autoq/autoq/internal/realdata"
	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hostRunner is a model.Runner that does on the host what the CUDA runner does on the
// device: ForwardHistograms bins each requested linear input into hs[name].
type hostRunner struct {
	m     *model.Model
	calls int
}

func (r *hostRunner) Forward(tokens [][]int, hook model.Hook) ([][]float32, error) {
	return r.m.Forward(tokens, hook)
}

func (r *hostRunner) ForwardHistograms(tokens [][]int, hs map[string]*calib.Histogram) ([][]float32, error) {
	r.calls++
	var err error
	logits, ferr := r.m.Forward(tokens, func(name string, x []float32, M, K int) {
		if h := hs[name]; h != nil && err == nil {
			err = calib.AddTensor(h, tensor.FromF32(x[:M*K], M, K))
			if h.ChannelAbsMax != nil {
				h.AddChannelAbsMax(x[:M*K], K)
			}
		}
	})
	if ferr != nil {
		return nil, ferr
	}
	return logits, err
}

func (r *hostRunner) TimePrefill([][]int, int, int) ([]float64, error) { return nil, nil }
func (r *hostRunner) Kernels() map[string]string                       { return nil }
func (r *hostRunner) Info() backend.DeviceInfo                         { return backend.DeviceInfo{Kind: "host"} }
func (r *hostRunner) Close() error                                     { return nil }

// With device runners, the workers bin through ForwardHistograms, one histogram per group
// under the group's name; a runner that bins like the host path gives the same histograms
// bit for bit as the host path (so the wiring loses and double-counts nothing).
func TestRunWithDeviceRunners(t *testing.T) {
	m, tok := realdata.Model(t)
	data := testutil.SharedData(t, "tinystories_val.txt")
	opt := Options{SeqLen: 64, Batch: 4, Tokens: 2048, Split: "calib", Shards: 1, Rounds: 2,
		Calib: calib.Options{Method: calib.MethodMSE}}
	host, err := Run(m, data, tok, opt)
	require.NoError(t, err)

	r := &hostRunner{m: m}
	opt.Runners = []model.Runner{r}
	dev, err := Run(m, data, tok, opt)
	require.NoError(t, err)
	assert.Positive(t, r.calls)
	require.Equal(t, len(host.Hists), len(dev.Hists))
	for i := range host.Hists {
		assert.Equal(t, *host.Hists[i], *dev.Hists[i], host.Hists[i].Name)
	}

	opt.Runners = []model.Runner{r, r}
	_, err = Run(m, data, tok, opt)
	assert.ErrorContains(t, err, "2 device runners for 1 engines")
}
