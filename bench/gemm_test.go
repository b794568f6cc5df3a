package bench

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/autoq/autoq/backend"
)

func TestMedianPercentile(t *testing.T) {
	assert.Equal(t, 3.0, Median([]float64{5, 1, 3}))
	assert.Equal(t, 2.5, Median([]float64{4, 1, 3, 2}))
	v := []float64{10, 1, 2, 3, 4, 5, 6, 7, 8, 9} // sorted 1..10
	assert.Equal(t, 9.0, Percentile(v, 90))       // nearest rank: ceil(0.9*10) = 9th
	assert.Equal(t, 10.0, Percentile(v, 100))
	assert.Equal(t, 1.0, Percentile(v, 1))
	assert.True(t, Median(nil) != Median(nil)) // NaN
}

func TestParseShape(t *testing.T) {
	s, err := ParseShape("4096,11008")
	require.NoError(t, err)
	assert.Equal(t, GemmShape{Name: "4096x11008", K: 4096, N: 11008}, s)
	s, err = ParseShape("128x64")
	require.NoError(t, err)
	assert.Equal(t, 128, s.K)
	for _, bad := range []string{"", "4096", "a,b", "0,5", "1,2,3", "-1,4"} {
		_, err := ParseShape(bad)
		assert.Error(t, err, bad)
	}
}

func TestPresetsMatchIssue(t *testing.T) {
	// The (K, N) pairs of the issue's presets.
	want := map[string][][2]int{
		"llama2-7b":  {{4096, 12288}, {4096, 4096}, {4096, 22016}, {11008, 4096}},
		"llama3-8b":  {{4096, 6144}, {4096, 4096}, {4096, 28672}, {14336, 4096}},
		"llama2-70b": {{8192, 10240}, {8192, 8192}, {8192, 57344}, {28672, 8192}},
	}
	for name, shapes := range want {
		got := GemmPresets[name]
		require.Len(t, got, len(shapes), name)
		for i, kn := range shapes {
			assert.Equal(t, kn, [2]int{got[i].K, got[i].N}, "%s shape %d", name, i)
		}
	}
}

// fakeTimer returns fixed latencies: the baseline takes 2*M us per call, "fast" M us.
type fakeTimer struct {
	prepared [][3]int
	sleep    time.Duration
	cache    int
	free     uint64
	copies   func(int) int
	kernel   string
	m        int
	launches []int // weight copy index of each launch
	holds    []int64
}

func (f *fakeTimer) Info() backend.DeviceInfo {
	return backend.DeviceInfo{Kind: "cuda", Name: "Fake GPU", MemBandwidthGBs: 1000}
}
func (f *fakeTimer) Kernels() []backend.GEMMKernel {
	return []backend.GEMMKernel{{Name: "base", Op: backend.GEMMFloat, FloatBytes: 2}, {Name: "fast", Op: backend.GEMMW8A8, FloatBytes: 2}}
}
func (f *fakeTimer) Notes() string              { return "fake" }
func (f *fakeTimer) Close() error               { return nil }
func (f *fakeTimer) CacheBytes() int            { return f.cache }
func (f *fakeTimer) FreeBytes() (uint64, error) { return f.free, nil }
func (f *fakeTimer) Prepare(K, N, maxM int, copies func(int) int) error {
	f.prepared = append(f.prepared, [3]int{K, N, maxM})
	f.copies = copies
	return nil
}
func (f *fakeTimer) Launch(kernel string, M, i int) error {
	f.kernel, f.m = kernel, M
	f.launches = append(f.launches, i)
	return nil
}
func (f *fakeTimer) TimeEach(n int, holdNs int64, fn func(int) error) ([]float64, error) {
	time.Sleep(f.sleep)
	f.holds = append(f.holds, holdNs)
	ms := make([]float64, n)
	for i := range ms {
		if err := fn(i); err != nil {
			return nil, err
		}
		per := float64(f.m) * 1e-3 // ms
		if f.kernel == "base" {
			per *= 2
		}
		ms[i] = per * float64(1+i%3) // 1x, 2x, 3x: median 2x for n = 3
	}
	return ms, nil
}

func TestRunGemmDerivedNumbers(t *testing.T) {
	ft := &fakeTimer{}
	rep, err := RunGemm(ft, GemmConfig{Shapes: []GemmShape{{"s", 1000, 500}}, Ms: []int{1, 4}, Iters: 3, Warmup: 2})
	require.NoError(t, err)
	assert.Equal(t, [][3]int{{1000, 500, 4}}, ft.prepared)
	assert.Equal(t, []string{"base", "fast"}, rep.Kernels)
	require.Len(t, rep.Points, 4)
	p := rep.Points[3] // M = 4, fast: median 2 * 4us = 8 us
	assert.Equal(t, "fast", p.Kernel)
	assert.InDelta(t, 8.0, p.MedianUs, 1e-9)
	assert.InDelta(t, 12.0, p.P90Us, 1e-9)
	assert.InDelta(t, 2.0, p.Speedup, 1e-12)
	// 2*M*N*K flops in 8 us: 2*4*500*1000 / 8e-6 / 1e12 = 0.5 TFLOP/s.
	assert.InDelta(t, 0.5, p.TFLOPs, 1e-12)
	// W8A8 moves MK + NK + 2MN + 4(M+N) = 4000 + 500000 + 4000 + 2016 = 510016 bytes:
	// in 8 us, 63.752 GB/s = 6.3752% of 1000 GB/s.
	assert.InDelta(t, 63.752, p.GBs, 1e-9)
	assert.InDelta(t, 6.3752, p.PctPeakBW, 1e-9)
	assert.Equal(t, 1.0, rep.Points[2].Speedup)
	// Each point: 2 warm-up launches on copies 0, 1, then the timed ones on 2, 3, 4.
	require.Len(t, ft.launches, 4*5)
	assert.Equal(t, []int{0, 1, 2, 3, 4}, ft.launches[:5])
	// The device is held for 100 us per timed call.
	assert.Equal(t, int64(300_000), ft.holds[0])
	// No cache: one weight copy.
	assert.Equal(t, 1, ft.copies(1<<20))
}

// The weight copies exceed twice the cache, at most 64, within a fifth of the free memory.
func TestGemmWeightCopies(t *testing.T) {
	ft := &fakeTimer{cache: 50 << 20, free: 80 << 30}
	c, err := gemmWeightCopies(ft)
	require.NoError(t, err)
	assert.Equal(t, 4, c(32<<20), "2*50/32 + 1")
	assert.Equal(t, 64, c(1<<20), "capped")
	assert.Equal(t, 1, c(200<<20), "one copy already exceeds 2x the cache")
	ft.free = 320 << 20 // budget 64 MiB
	c, err = gemmWeightCopies(ft)
	require.NoError(t, err)
	assert.Equal(t, 2, c(32<<20), "the budget allows two 32 MiB copies")
}

// Bytes each kernel kind must move, by hand for M = 2, N = 256, K = 128.
func TestGemmBytes(t *testing.T) {
	const M, N, K = 2, 256, 128 // MK 256, NK 32768, MN 512
	for _, c := range []struct {
		op   string
		f    int
		want int64
	}{
		{backend.GEMMFloat, 2, 2 * (256 + 32768 + 512)},
		{backend.GEMMFloat, 4, 4 * (256 + 32768 + 512)},
		{backend.GEMMW8A8, 2, 256 + 32768 + 2*512 + 4*(2+256)},
		{backend.GEMMW8A8AQ, 2, 2*256 + 32768 + 2*512 + 4*256},
		{backend.GEMMW4A16G128, 2, 2*256 + 32768/2 + 2*32768/128 + 2*512},
	} {
		assert.Equal(t, c.want, gemmBytes(backend.GEMMKernel{Op: c.op, FloatBytes: c.f}, M, N, K), "%s F=%d", c.op, c.f)
	}
}

func TestRunGemmTimeoutTruncates(t *testing.T) {
	ft := &fakeTimer{sleep: 20 * time.Millisecond}
	rep, err := RunGemm(ft, GemmConfig{Shapes: []GemmShape{{"a", 64, 64}, {"b", 64, 64}}, Ms: []int{1, 2, 3}, Iters: 1, Timeout: 30 * time.Millisecond})
	require.NoError(t, err)
	assert.NotEmpty(t, rep.Truncated)
	assert.Less(t, len(rep.Points), 12)
	assert.NotEmpty(t, rep.Points)
}

func TestGemmOutputs(t *testing.T) {
	rep, err := RunGemm(&fakeTimer{}, GemmConfig{Shapes: []GemmShape{{"s", 256, 128}}, Ms: []int{1, 2}, Iters: 3})
	require.NoError(t, err)

	var tbl bytes.Buffer
	require.NoError(t, rep.WriteTable(&tbl))
	assert.Contains(t, tbl.String(), "Fake GPU")
	assert.Contains(t, tbl.String(), "speedup")
	assert.Contains(t, tbl.String(), "summary fast")
	assert.Contains(t, tbl.String(), "M<=16 geomean 2.00x min 2.00x (2 pts)")

	var js bytes.Buffer
	require.NoError(t, rep.WriteJSON(&js))
	var back GemmReport
	require.NoError(t, json.Unmarshal(js.Bytes(), &back))
	assert.Equal(t, rep.Points, back.Points)

	var cs bytes.Buffer
	require.NoError(t, rep.WriteCSV(&cs))
	rows, err := csv.NewReader(&cs).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 1+len(rep.Points))
	assert.Equal(t, "speedup_vs_baseline", rows[0][11])
	assert.Equal(t, "2", rows[4][11]) // M=2 "fast": 2x

	png := filepath.Join(t.TempDir(), "s.png")
	require.NoError(t, rep.PlotSpeedup(png))
	b, err := os.ReadFile(png)
	require.NoError(t, err)
	require.Greater(t, len(b), 8)
	assert.Equal(t, []byte("\x89PNG"), b[:4])
}

func TestCPUTableSaysNoGPU(t *testing.T) {
	rep := &GemmReport{Device: backend.DeviceInfo{Kind: "cpu", Name: "host"}, Fallback: "no CUDA device: x", Baseline: "f32"}
	var b bytes.Buffer
	require.NoError(t, rep.WriteTable(&b))
	assert.Contains(t, b.String(), "CPU backend (NO GPU)")
	assert.Contains(t, b.String(), "no CUDA device: x")
}

// applyingTimer runs "fast" only from M = 4 on (a kernel meant for large M).
type applyingTimer struct{ fakeTimer }

func (a *applyingTimer) Applies(kernel string, M int) bool { return kernel != "fast" || M >= 4 }

// Points a timer refuses (GemmApplier) are left out, and never launched; the baseline always runs.
func TestRunGemmSkipsRefusedPoints(t *testing.T) {
	at := &applyingTimer{}
	rep, err := RunGemm(at, GemmConfig{Shapes: []GemmShape{{"s", 1000, 500}}, Ms: []int{1, 4}, Iters: 3, Warmup: 2})
	require.NoError(t, err)
	var got []string
	for _, p := range rep.Points {
		got = append(got, fmt.Sprintf("%s@%d", p.Kernel, p.M))
	}
	assert.Equal(t, []string{"base@1", "base@4", "fast@4"}, got)
	assert.Len(t, at.launches, 3*5, "three points of 2 warm-up and 3 timed launches")
}
