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

func (f *fixedTimer) PrepareKernel(c backend.KernelCase) (func() (float64, error), func(), error) {
	f.prepared = append(f.prepared, c.Op)
	return func() (float64, error) { return f.ms, nil }, func() { f.cleaned++ }, nil
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

// variantTimer is a fixedTimer whose quantize op has a variant 2: the variant's time is 1 ms,
// the default's 2 ms, so the table shows which kernel ran in which case.
type variantTimer struct {
	fixedTimer
	cur  int
	used []int
}

func (v *variantTimer) KernelVariants(op string) []int {
	if op == backend.KernelQuantize {
		return []int{2}
	}
	return nil
}

func (v *variantTimer) UseKernelVariant(op string, n int) error {
	v.cur = n
	v.used = append(v.used, n)
	return nil
}

func (v *variantTimer) PrepareKernel(c backend.KernelCase) (func() (float64, error), func(), error) {
	ms := 2.0
	if v.cur == 2 {
		ms = 1
	}
	return func() (float64, error) { return ms, nil }, func() {}, nil
}

// Each quantize case is followed by its "[v2]" twin, timed with variant 2 selected and the
// default restored afterwards.
func TestRunKernelsVariantsSideBySide(t *testing.T) {
	vt := &variantTimer{}
	info := backend.DeviceInfo{Kind: "cuda", Name: "fake", MemBandwidthGBs: 1}
	rep, err := runKernels(info, vt, KernelConfig{Runs: 1})
	require.NoError(t, err)
	nq := 0
	for i, r := range rep.Results {
		if r.Op != backend.KernelQuantize || strings.HasSuffix(r.Name, " [v2]") {
			continue
		}
		nq++
		require.Equal(t, 2.0, r.MedianMs, r.Name)
		require.Equal(t, r.Name+" [v2]", rep.Results[i+1].Name)
		require.Equal(t, 1.0, rep.Results[i+1].MedianMs, "the twin runs with variant 2")
		require.Equal(t, r.Bytes, rep.Results[i+1].Bytes)
	}
	require.Equal(t, 6, nq, "3 quantize cases per weight shape, 2 shapes")
	require.Equal(t, 2*nq, len(vt.used), "select and restore around each twin")
	require.Equal(t, 0, vt.cur, "the default is restored")
}

// histVariantTimer offers a histogram variant 2 (one pass over the input).
type histVariantTimer struct{ variantTimer }

func (v *histVariantTimer) KernelVariants(op string) []int {
	if op == backend.KernelHistogram {
		return []int{2}
	}
	return nil
}

// The histogram's "[v2]" row counts one read of the input (half the default row's two
// reads), so that its % of peak is against the bytes it must move; the ms stay comparable.
func TestRunKernelsHistogramVariantBytes(t *testing.T) {
	vt := &histVariantTimer{}
	info := backend.DeviceInfo{Kind: "cuda", Name: "fake", MemBandwidthGBs: 1}
	rep, err := runKernels(info, vt, KernelConfig{Runs: 1})
	require.NoError(t, err)
	found := false
	for i, r := range rep.Results {
		if r.Op != backend.KernelHistogram || strings.HasSuffix(r.Name, " [v2]") {
			continue
		}
		found = true
		twin := rep.Results[i+1]
		require.Equal(t, r.Name+" [v2]", twin.Name)
		require.Equal(t, r.Bytes/2, twin.Bytes, "one read instead of two")
		sz := sizesFor(false)
		require.Equal(t, int64(2*sz.actTensors*sz.actPer), twin.Bytes, "F16: 2 bytes per value, read once")
		require.Contains(t, twin.Note, "one pass")
		require.Equal(t, 1.0, twin.MedianMs)
	}
	require.True(t, found)
}
