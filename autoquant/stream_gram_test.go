package autoquant

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/autoq/autoq/gptq"
	"github.com/autoq/autoq/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hostGramRunner is a model.GramBlockRunner on the CPU: HostBlocks summing the wanted
// inputs' Gram matrices itself, as a device does (gpurunner.BlockRunner), so the executor's
// device-Hessian path runs in CI. It sums batch by batch into one gptq.Hessian per input, as
// the accumulator's hook does, so the bits must agree.
type hostGramRunner struct {
	model.HostBlocks
	sums  map[string]*gptq.Hessian
	names map[string][]string
	taken int
}

func (r *hostGramRunner) RunBlockGram(st model.BlockState, b int, hook model.Hook, until string, want func(string) bool) error {
	var lastX *float32
	var lastKey string
	var err error
	sum := func(name string, x []float32, M, K int) {
		if hook != nil {
			hook(name, x, M, K)
		}
		if !want(name) || err != nil {
			return
		}
		if &x[0] == lastX {
			if !slices.Contains(r.names[lastKey], name) {
				r.names[lastKey] = append(r.names[lastKey], name)
			}
			return
		}
		h := r.sums[name]
		if h == nil {
			h, _ = gptq.NewHessian(K)
			r.sums[name], r.names[name] = h, []string{name}
		}
		err = h.Add(x, M, K)
		lastX, lastKey = &x[0], name
	}
	if e := r.RunBlock(st, b, sum, until); e != nil {
		return e
	}
	return err
}

func (r *hostGramRunner) TakeGrams(want func(string) bool) ([]model.Gram, error) {
	var out []model.Gram
	for key, h := range r.sums {
		if want(key) {
			out = append(out, model.Gram{Names: r.names[key], K: h.K, Tokens: h.Tokens, Sum: h.Sum})
			delete(r.sums, key)
			r.taken++
		}
	}
	return out, nil
}

// With a block runner that sums the Hessians where it computes (the GPU's path), the
// streaming run's export is the hook path's bit for bit, in exact mode (GPTQ candidates from
// the calibration pass's Hessians) and proxy mode (Hessians collected by quantize).
func TestStreamingWithDeviceHessiansEqualsHostHooks(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: four end-to-end runs")
	}
	dir := t.TempDir()
	for _, mode := range []string{SensExact, SensProxy} {
		ref := streamRun(t, dir, mode+"-host", StreamOptions{Sensitivity: mode}, "w4g32a", "w8")
		var runners []*hostGramRunner
		so := StreamOptions{Sensitivity: mode, runner: func(m *model.Model) model.BlockRunner {
			r := &hostGramRunner{HostBlocks: model.HostBlocks{M: m}, sums: map[string]*gptq.Hessian{}, names: map[string][]string{}}
			runners = append(runners, r)
			return r
		}}
		got := streamRun(t, dir, mode+"-gram", so, "w4g32a", "w8")
		taken := 0
		for _, r := range runners {
			taken += r.taken
		}
		assert.Greater(t, taken, 0, "%s: the Hessians came from the runner's sums", mode)
		assert.Equal(t, ref.Layers, got.Layers, mode)
		assert.Equal(t, exportBytes(t, filepath.Join(dir, mode+"-host")), exportBytes(t, filepath.Join(dir, mode+"-gram")), mode)
		require.Equal(t, ref.Verify.CandidatePPL, got.Verify.CandidatePPL, mode)
	}
}
