package bench

// GEMM benchmark: sweeps token counts M over weight shapes (K inputs x N outputs) and
// times every kernel a backend.GEMMTimer offers, reporting median and p90 latency,
// TFLOP/s, effective bandwidth and the speedup over the timer's baseline kernel (cuBLAS
// FP16 on CUDA, the float32 Go kernel on the CPU).

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/autoq/autoq/backend"
)

// GemmShape is one weight matrix of a model: K inputs, N outputs.
type GemmShape struct {
	Name string `json:"name"`
	K    int    `json:"k"`
	N    int    `json:"n"`
}

// GemmPresets are the linear layers of Llama-family models as (K, N); fused QKV and
// gate/up projections are one GEMM each, as inference engines run them.
var GemmPresets = map[string][]GemmShape{
	"llama2-7b":  {{"qkv", 4096, 12288}, {"o", 4096, 4096}, {"gate_up", 4096, 22016}, {"down", 11008, 4096}},
	"llama3-8b":  {{"qkv", 4096, 6144}, {"o", 4096, 4096}, {"gate_up", 4096, 28672}, {"down", 14336, 4096}},
	"llama2-70b": {{"qkv", 8192, 10240}, {"o", 8192, 8192}, {"gate_up", 8192, 57344}, {"down", 28672, 8192}},
	// Small shapes for the CPU backend, so that the sweep finishes in seconds.
	"cpu-small": {{"o-small", 1024, 1024}, {"up-small", 1024, 2816}},
}

// PresetNames lists the presets in a stable order.
func PresetNames() []string {
	names := make([]string, 0, len(GemmPresets))
	for n := range GemmPresets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// DefaultGemmMs is the GPU sweep of token counts.
var DefaultGemmMs = []int{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096}

// CPUGemmMs is the CPU backend's default sweep.
var CPUGemmMs = []int{1, 4, 16, 64}

// QuickGemmMs is the reduced sweep of --quick.
var QuickGemmMs = []int{1, 16, 128, 1024}

// ParseShape parses "K,N" (also "KxN").
func ParseShape(s string) (GemmShape, error) {
	parts := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == 'x' })
	if len(parts) != 2 {
		return GemmShape{}, fmt.Errorf("shape %q: want K,N", s)
	}
	k, err1 := strconv.Atoi(strings.TrimSpace(parts[0]))
	n, err2 := strconv.Atoi(strings.TrimSpace(parts[1]))
	if err1 != nil || err2 != nil || k <= 0 || n <= 0 {
		return GemmShape{}, fmt.Errorf("shape %q: want two positive integers K,N", s)
	}
	return GemmShape{Name: fmt.Sprintf("%dx%d", k, n), K: k, N: n}, nil
}

// GemmConfig is one sweep.
type GemmConfig struct {
	Shapes  []GemmShape
	Ms      []int
	Warmup  int
	Iters   int
	Timeout time.Duration // stop starting new points after this long (0: none)
	// Progress is called after each timed point (may be nil).
	Progress func(done, total int)
}

// GemmPoint is one kernel at one (shape, M).
type GemmPoint struct {
	Shape     string  `json:"shape"`
	K         int     `json:"k"`
	N         int     `json:"n"`
	M         int     `json:"m"`
	Kernel    string  `json:"kernel"`
	MedianUs  float64 `json:"median_us"`
	P90Us     float64 `json:"p90_us"`
	TFLOPs    float64 `json:"tflops"`
	GBs       float64 `json:"gb_per_s"`
	PctPeakBW float64 `json:"pct_peak_bw,omitempty"` // 0 when the peak is unknown
	Speedup   float64 `json:"speedup_vs_baseline"`   // baseline median / this median
	Iters     int     `json:"iters"`
}

// GemmReport is a whole sweep.
type GemmReport struct {
	Device    backend.DeviceInfo `json:"device"`
	Fallback  string             `json:"fallback,omitempty"` // why the CPU was used, when it was
	Notes     string             `json:"notes"`
	Baseline  string             `json:"baseline"`
	Kernels   []string           `json:"kernels"`
	Points    []GemmPoint        `json:"points"`
	Truncated string             `json:"truncated,omitempty"` // why the sweep stopped early
}

// Percentile returns the p-th percentile (0 < p <= 100) of v by the nearest-rank rule.
func Percentile(v []float64, p float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	r := int(math.Ceil(p / 100 * float64(len(s))))
	if r < 1 {
		r = 1
	}
	return s[r-1]
}

// Median returns the median of v (mean of the middle two for an even count).
func Median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// GemmApplier is an optional method of a backend.GEMMTimer: whether kernel runs at M tokens
// on the prepared shape (kernels meant for some M only, or that do not take a shape). The
// sweep leaves the points it refuses out of the report.
type GemmApplier interface {
	Applies(kernel string, M int) bool
}

// RunGemm runs the sweep. A failing point is an error naming it; a timeout ends the sweep
// early with the points measured so far and Truncated set.
func RunGemm(t backend.GEMMTimer, cfg GemmConfig) (*GemmReport, error) {
	if len(cfg.Shapes) == 0 || len(cfg.Ms) == 0 || cfg.Iters < 1 || cfg.Warmup < 0 {
		return nil, fmt.Errorf("gemm bench: need shapes, M values, iters >= 1 and warmup >= 0")
	}
	kernels := t.Kernels()
	if len(kernels) == 0 {
		return nil, fmt.Errorf("gemm bench: the timer offers no kernels")
	}
	names := make([]string, len(kernels))
	for i, k := range kernels {
		names[i] = k.Name
	}
	rep := &GemmReport{Device: t.Info(), Notes: gemmNotes(t), Baseline: names[0], Kernels: names}
	maxM := 0
	for _, m := range cfg.Ms {
		if m < 1 {
			return nil, fmt.Errorf("gemm bench: M=%d must be >= 1", m)
		}
		maxM = max(maxM, m)
	}
	copies, err := gemmWeightCopies(t)
	if err != nil {
		return nil, fmt.Errorf("gemm bench: %w", err)
	}
	start := time.Now()
	total, done := len(cfg.Shapes)*len(cfg.Ms), 0
	peak := rep.Device.MemBandwidthGBs
	for _, sh := range cfg.Shapes {
		if cfg.Timeout > 0 && time.Since(start) > cfg.Timeout {
			rep.Truncated = fmt.Sprintf("timeout %s reached before shape %s", cfg.Timeout, sh.Name)
			return rep, nil
		}
		if err := t.Prepare(sh.K, sh.N, maxM, copies); err != nil {
			return rep, fmt.Errorf("gemm bench: shape %s (K=%d N=%d): %w", sh.Name, sh.K, sh.N, err)
		}
		for _, m := range cfg.Ms {
			if cfg.Timeout > 0 && time.Since(start) > cfg.Timeout {
				rep.Truncated = fmt.Sprintf("timeout %s reached at shape %s M=%d", cfg.Timeout, sh.Name, m)
				return rep, nil
			}
			var baseMed float64
			for ki, k := range kernels {
				if ap, ok := t.(GemmApplier); ok && ki > 0 && !ap.Applies(k.Name, m) {
					continue
				}
				ms, err := timeGemm(t, k.Name, m, cfg.Warmup, cfg.Iters)
				if err != nil {
					return rep, fmt.Errorf("gemm bench: %s at shape %s M=%d: %w", k.Name, sh.Name, m, err)
				}
				bytes := gemmBytes(k, m, sh.N, sh.K)
				med, p90 := Median(ms), Percentile(ms, 90)
				if ki == 0 {
					baseMed = med
				}
				sec := med / 1e3
				p := GemmPoint{Shape: sh.Name, K: sh.K, N: sh.N, M: m, Kernel: k.Name, MedianUs: med * 1e3, P90Us: p90 * 1e3, Iters: len(ms)}
				if sec > 0 {
					p.TFLOPs = 2 * float64(m) * float64(sh.N) * float64(sh.K) / sec / 1e12
					p.GBs = float64(bytes) / sec / 1e9
					p.Speedup = baseMed / med
				}
				if peak > 0 {
					p.PctPeakBW = 100 * p.GBs / peak
				}
				rep.Points = append(rep.Points, p)
			}
			done++
			if cfg.Progress != nil {
				cfg.Progress(done, total)
			}
		}
	}
	return rep, nil
}
