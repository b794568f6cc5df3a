package bench

import (
	"bytes"
	"encoding/json"
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
