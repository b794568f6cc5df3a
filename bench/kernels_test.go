package bench

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/autoq/autoq/backend"
	"github.com/stretchr/testify/require"
)

// The 7B sizes are those issue 4 names.
func TestKernelSizesAre7B(t *testing.T) {
	s := sizesFor(true)
	require.Equal(t, [][2]int{{4096, 4096}, {11008, 4096}}, s.weights)
	require.Equal(t, 1<<28, s.actTensors*s.actPer, "2^28 activations")
	require.Equal(t, 224, s.nHists)
}

// fixedTimer reports a fixed time per case so the derived numbers can be checked by hand.
type fixedTimer struct {
	ms       float64
	prepared []string
	cleaned  int
}

func (f *fixedTimer) PrepareKernel(c backend.KernelCase) (func(int) (float64, error), func(), error) {
	f.prepared = append(f.prepared, c.Op)
	return func(reps int) (float64, error) { return f.ms * float64(reps), nil }, func() { f.cleaned++ }, nil
}

func TestRunKernelsDerivedNumbers(t *testing.T) {
	ft := &fixedTimer{ms: 2}
	info := backend.DeviceInfo{Kind: "cuda", Name: "fake", MemBandwidthGBs: 1}
	rep, err := runKernels(info, ft, KernelConfig{Runs: 3, Warmup: 1})
	require.NoError(t, err)
	require.Len(t, rep.Results, len(ft.prepared))
	require.Equal(t, len(ft.prepared), ft.cleaned, "every prepared case is cleaned up")
	for _, r := range rep.Results {
		require.Equal(t, 2.0, r.MedianMs)
		// bytes / 2 ms in GB/s, against a 1 GB/s device.
		want := float64(r.Bytes) / 2e6
		require.InDelta(t, want, r.GBs, 1e-9*want, r.Name)
		require.InDelta(t, 100*want, r.PctPeak, 1e-7*want, r.Name)
		require.NotEmpty(t, r.RunsMs)
		require.LessOrEqual(t, len(r.RunsMs), 3)
	}
	// The weight cases move 2 bytes (F16) per element read plus what they write.
	require.Equal(t, int64(3*1024*1024), rep.Results[1].Bytes, "int8 quantize of 1024x1024 F16: read 2 + write 1 byte per element")
	var tbl, js bytes.Buffer
	require.NoError(t, rep.WriteTable(&tbl))
	require.Contains(t, tbl.String(), "threshold search entropy, 224 histograms")
	require.NoError(t, rep.WriteJSON(&js))
	var back KernelReport
	require.NoError(t, json.Unmarshal(js.Bytes(), &back))
	require.Equal(t, len(rep.Results), len(back.Results))
}

// variantTimer is a fixedTimer whose quantize op has a second kernel "rows": its time is
// 1 ms, the default's 2 ms, so the table shows which kernel ran in which case.
type variantTimer struct {
	fixedTimer
	cur  string
	used []string
}

func (v *variantTimer) KernelVariants(op string) []string {
	if op == backend.KernelQuantize {
		return []string{"rows"}
	}
	return nil
}

func (v *variantTimer) UseKernelVariant(op, name string) error {
	v.cur = name
	v.used = append(v.used, name)
	return nil
}

func (v *variantTimer) PrepareKernel(c backend.KernelCase) (func(int) (float64, error), func(), error) {
	ms := 2.0
	if v.cur == "rows" {
		ms = 1
	}
	return func(reps int) (float64, error) { return ms * float64(reps), nil }, func() {}, nil
}

// Each quantize case is followed by its "[rows]" twin, timed with that kernel selected and
// the default restored afterwards.
func TestRunKernelsVariantsSideBySide(t *testing.T) {
	vt := &variantTimer{}
	info := backend.DeviceInfo{Kind: "cuda", Name: "fake", MemBandwidthGBs: 1}
	rep, err := runKernels(info, vt, KernelConfig{Runs: 1})
	require.NoError(t, err)
	nq := 0
	for i, r := range rep.Results {
		if r.Op != backend.KernelQuantize || strings.HasSuffix(r.Name, " [rows]") {
			continue
		}
		nq++
		require.Equal(t, 2.0, r.MedianMs, r.Name)
		require.Equal(t, r.Name+" [rows]", rep.Results[i+1].Name)
		require.Equal(t, 1.0, rep.Results[i+1].MedianMs, "the twin runs with the rows kernel")
		require.Equal(t, r.Bytes, rep.Results[i+1].Bytes)
	}
	require.Equal(t, 6, nq, "3 quantize cases per weight shape, 2 shapes")
	require.Equal(t, 2*nq, len(vt.used), "select and restore around each twin")
	require.Equal(t, "", vt.cur, "the default is restored")
}

// repsTimer takes 0.25 ms per execution and records the reps of each timed run.
type repsTimer struct{ reps []int }

func (r *repsTimer) PrepareKernel(c backend.KernelCase) (func(int) (float64, error), func(), error) {
	return func(reps int) (float64, error) {
		r.reps = append(r.reps, reps)
		return 0.25 * float64(reps), nil
	}, func() {}, nil
}

// A case runs once untimed and once alone (0.25 ms), then every timed run executes
// 2 ms / 0.25 ms + 1 = 9 reps back to back and reports the time per execution.
func TestPerRunCalibratesReps(t *testing.T) {
	rt := &repsTimer{}
	run := perRun(func(reps int) (float64, error) {
		f, _, _ := rt.PrepareKernel(backend.KernelCase{})
		return f(reps)
	})
	for range 2 {
		ms, err := run()
		require.NoError(t, err)
		require.InDelta(t, 0.25, ms, 1e-12)
	}
	require.Equal(t, []int{1, 1, 9, 9}, rt.reps)
}

// Weight cases rotate through copies totalling at least 256 MiB (at most 8): a 1024x1024
// F16 weight (2 MiB) gets 8, the histogram and threshold cases none.
func TestKernelCasesRotateWeights(t *testing.T) {
	for _, kc := range kernelCases(KernelConfig{}) {
		switch kc.c.Op {
		case backend.KernelScales, backend.KernelQuantize, backend.KernelMSESearch:
			require.Equal(t, 8, kc.c.Copies, kc.name)
		default:
			require.Zero(t, kc.c.Copies, kc.name)
		}
	}
	require.Equal(t, 2, weightCopies(2*11008*8192), "172 MiB: two copies")
	require.Equal(t, 1, weightCopies(300<<20))
}
