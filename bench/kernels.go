package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"text/tabwriter"

	"github.com/autoq/autoq/backend"
	"github.com/autoq/autoq/calib"
	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/tensor"
)

// KernelConfig sizes `autoq bench kernels`. FullSizes uses a 7B model's tensors (4096x4096
// and 11008x4096 F16 weights, 2^28 F16 activations, 224 histograms); otherwise smaller
// sizes suited to the CPU backend.
type KernelConfig struct {
	FullSizes bool
	Warmup    int // untimed runs per case
	Runs      int // timed runs per case (the median is reported); heavy cases use fewer
	// Progress, if set, is called before each case.
	Progress func(i, n int, name string)
}

// KernelResult is one measured case.
type KernelResult struct {
	Name     string    `json:"name"`
	Op       string    `json:"op"`
	Bytes    int64     `json:"bytes"`       // bytes the kernel must move (inputs read + outputs written, per pass)
	MedianMs float64   `json:"median_ms"`   // median of the timed runs
	RunsMs   []float64 `json:"runs_ms"`     // every timed run
	GBs      float64   `json:"gb_s"`        // Bytes / MedianMs
	PctPeak  float64   `json:"pct_of_peak"` // GBs / device bandwidth (0 when unknown)
	Goal     string    `json:"goal,omitempty"`
	Note     string    `json:"note,omitempty"`
	GoalMet  *bool     `json:"goal_met,omitempty"`
}

// KernelReport is the output of RunKernels.
type KernelReport struct {
	Device    backend.DeviceInfo `json:"device"`
	FullSizes bool               `json:"full_sizes"`
	Header    string             `json:"header"`
	Results   []KernelResult     `json:"results"`
}

// KernelVariants is implemented by backends with more than one kernel for an op (the CUDA
// backend's quantize and histogram kernels): RunKernels times each other kernel as an extra
// case right after the default one, named "<case> [<kernel>]", so they are measured side by
// side in one run. Every row counts the bytes the op must move at least, whichever kernel
// runs, so the times and the % of peak compare directly.
type KernelVariants interface {
	// KernelVariants lists op's kernels besides the one the backend runs by default.
	KernelVariants(op string) []string
	// UseKernelVariant makes op run kernel name until the next call ("": the default).
	UseKernelVariant(op, name string) error
}

type kernelCase struct {
	variant string // "": the backend's default kernel
	name    string
	c       backend.KernelCase
	bytes   int64
	runs    int
	goal    string
	// pctGoal: percent of peak bandwidth to reach; msGoal: time to stay under.
	pctGoal, msGoal float64
	note            string
}

// rotateBytes is the least total size of the weight copies a weight case rotates through
// (a 4096x4096 F16 weight is 32 MiB; an H100's L2 is 50 MiB), at most maxRotate copies.
const (
	rotateBytes = 256 << 20
	maxRotate   = 8
)

// weightCopies is how many copies of a weight of n bytes a weight case rotates through.
func weightCopies(n int) int {
	n = max(n, 1)
	return min(maxRotate, max(1, (rotateBytes+n-1)/n))
}

// randomF16 returns an F16 [rows, cols] tensor of roughly gaussian values (sum of two
// uniforms, cheap to generate at 7B sizes) scaled by sigma, with occasional outliers.
func randomF16(r *rand.Rand, sigma float32, shape ...int) *tensor.Tensor {
	n := tensor.NumElements(shape)
	u := make([]uint16, n)
	for i := range u {
		v := (r.Float32() + r.Float32() - 1) * sigma
		if r.IntN(4096) == 0 {
			v *= 20
		}
		u[i] = tensor.F32ToF16(v)
	}
	return tensor.FromU16(tensor.F16, u, shape...)
}

// kernelSizes are the benchmark's problem sizes.
type kernelSizes struct {
	weights            [][2]int // [rows, cols] F16 weights
	mseShape           [2]int
	actTensors, actPer int // histogram: tensors per launch and values per tensor
	nHists, copyBytes  int
}

func sizesFor(full bool) kernelSizes {
	if full { // a 7B Llama: q/k/v/o 4096x4096, MLP 11008x4096; 2^28 activations; 7*32 linears
		return kernelSizes{weights: [][2]int{{4096, 4096}, {11008, 4096}}, mseShape: [2]int{4096, 4096},
			actTensors: 64, actPer: 1 << 22, nHists: 224, copyBytes: 1 << 30}
	}
	return kernelSizes{weights: [][2]int{{1024, 1024}, {2752, 1024}}, mseShape: [2]int{256, 4096},
		actTensors: 16, actPer: 1 << 18, nHists: 224, copyBytes: 1 << 26}
}

func kernelCases(cfg KernelConfig) []kernelCase {
	r := rand.New(rand.NewPCG(1, 2))
	sz := sizesFor(cfg.FullSizes)
	weights, mseShape := sz.weights, sz.mseShape
	actTensors, actPer, nHists, copyBytes := sz.actTensors, sz.actPer, sz.nHists, sz.copyBytes
	var cs []kernelCase
	for _, sh := range weights {
		w := randomF16(r, 0.02, sh[0], sh[1])
		cp := weightCopies(len(w.Data))
		n := int64(sh[0] * sh[1])
		tag := fmt.Sprintf("%dx%d F16", sh[0], sh[1])
		cs = append(cs,
			kernelCase{name: "per-channel scales (min/max+params) " + tag, bytes: 2 * n, pctGoal: 70,
				c: backend.KernelCase{Op: backend.KernelScales, W: w, Copies: cp, Scheme: quant.Scheme{Bits: 8, Symmetric: true, Granularity: quant.PerChannel}}},
			kernelCase{name: "quantize int8 sym per-channel " + tag, bytes: 3 * n, pctGoal: 70,
				c: backend.KernelCase{Op: backend.KernelQuantize, W: w, Copies: cp, Scheme: quant.Scheme{Bits: 8, Symmetric: true, Granularity: quant.PerChannel}}},
			kernelCase{name: "quantize int4 sym per-channel " + tag, bytes: 2*n + n/2, pctGoal: 70,
				c: backend.KernelCase{Op: backend.KernelQuantize, W: w, Copies: cp, Scheme: quant.Scheme{Bits: 4, Symmetric: true, Granularity: quant.PerChannel}}},
			kernelCase{name: "quantize int4 asym g128 " + tag, bytes: 2*n + n/2 + n/128*8, pctGoal: 70,
				c: backend.KernelCase{Op: backend.KernelQuantize, W: w, Copies: cp, Scheme: quant.Scheme{Bits: 4, Granularity: quant.PerGroup, GroupSize: 128}}},
		)
	}
	mw := randomF16(r, 0.02, mseShape[0], mseShape[1])
	cs = append(cs, kernelCase{name: fmt.Sprintf("mse search int4 per-channel %dx%d F16 (80 ratios)", mseShape[0], mseShape[1]),
		bytes: int64(2 * mseShape[0] * mseShape[1]), runs: 3, note: "compute-bound: 80 candidates per element",
		c: backend.KernelCase{Op: backend.KernelMSESearch, W: mw, Copies: weightCopies(len(mw.Data)), Scheme: quant.Scheme{Bits: 4, Symmetric: true, Granularity: quant.PerChannel}}})

	base := randomF16(r, 1, actPer)
	xs := make([]*tensor.Tensor, actTensors)
	for i := range xs {
		xs[i] = base // the same values in every tensor: the kernel reads each copy
	}
	total := int64(actTensors * actPer)
	cs = append(cs, kernelCase{name: fmt.Sprintf("histogram %d F16 activations (%d tensors, 1 launch)", total, actTensors),
		bytes: 2 * total, pctGoal: 70, note: "bytes = one read of the input (a two-pass kernel reads it twice)",
		c: backend.KernelCase{Op: backend.KernelHistogram, Xs: xs}})

	hs := make([]*calib.Histogram, nHists)
	for i := range hs {
		hs[i] = calib.NewHistogram(fmt.Sprint(i))
		v := make([]float32, 1<<14)
		for j := range v {
			v[j] = float32(r.NormFloat64() * math.Exp(float64(i%7)))
			if j%97 == 0 {
				v[j] *= 30
			}
		}
		hs[i].AddF32(v)
	}
	for _, m := range []calib.Method{calib.MethodEntropy, calib.MethodMSE, calib.MethodPercentile} {
		cs = append(cs, kernelCase{name: fmt.Sprintf("threshold search %v, %d histograms", m, nHists), bytes: int64(nHists * calib.NumBins * 8),
			msGoal: 50, c: backend.KernelCase{Op: backend.KernelThresholds, Hists: hs, Method: m}})
	}
	cs = append(cs, kernelCase{name: fmt.Sprintf("device copy %d MiB (bandwidth ceiling)", copyBytes>>20), bytes: 2 * int64(copyBytes),
		c: backend.KernelCase{Op: backend.KernelCopy, Bytes: copyBytes}})
	return cs
}

// RunKernels times every case on b, which must implement backend.KernelTimer.
func RunKernels(b backend.Backend, cfg KernelConfig) (*KernelReport, error) {
	kt, ok := b.(backend.KernelTimer)
	if !ok {
		return nil, fmt.Errorf("bench kernels: backend %s cannot time kernels", b.Info().Kind)
	}
	return runKernels(b.Info(), kt, cfg)
}

func runKernels(info backend.DeviceInfo, kt backend.KernelTimer, cfg KernelConfig) (*KernelReport, error) {
	rep := &KernelReport{Device: info, FullSizes: cfg.FullSizes}
	if cfg.FullSizes {
		rep.Header = "7B-model sizes; kernel time only (inputs resident in device memory, rotating copies larger than L2), CUDA events around back-to-back launches, median of runs"
	} else {
		rep.Header = "reduced sizes (1024-wide weights, 2^22 activations, MSE search on 256x4096): not the 7B sizes; wall clock, median of runs"
	}
	cases := kernelCases(cfg)
	kv, _ := kt.(KernelVariants)
	if kv != nil {
		cases = withVariants(cases, kv)
	}
	for i, kc := range cases {
		if cfg.Progress != nil {
			cfg.Progress(i, len(cases), kc.name)
		}
		if kc.variant != "" {
			if err := kv.UseKernelVariant(kc.c.Op, kc.variant); err != nil {
				return rep, fmt.Errorf("bench kernels: %s: %w", kc.name, err)
			}
		}
		res, err := runKernelCase(info, kt, cfg, kc)
		if kc.variant != "" {
			if rerr := kv.UseKernelVariant(kc.c.Op, ""); err == nil {
				err = rerr
			}
		}
		if err != nil {
			return rep, err
		}
		rep.Results = append(rep.Results, res)
	}
	return rep, nil
}

// withVariants inserts, after each case whose op has other kernels, one copy per kernel.
func withVariants(cases []kernelCase, kv KernelVariants) []kernelCase {
	var out []kernelCase
	for _, kc := range cases {
		out = append(out, kc)
		for _, v := range kv.KernelVariants(kc.c.Op) {
			c := kc
			c.variant = v
			c.name = fmt.Sprintf("%s [%s]", kc.name, v)
			out = append(out, c)
		}
	}
	return out
}

// runKernelCase prepares, times and cleans up one case.
func runKernelCase(info backend.DeviceInfo, kt backend.KernelTimer, cfg KernelConfig, kc kernelCase) (KernelResult, error) {
	runReps, cleanup, err := kt.PrepareKernel(kc.c)
	if err != nil {
		return KernelResult{}, fmt.Errorf("bench kernels: %s: %w", kc.name, err)
	}
	run := perRun(runReps)
	runs := cfg.Runs
	if kc.runs > 0 && kc.runs < runs {
		runs = kc.runs
	}
	var times []float64
	for j := 0; j < cfg.Warmup+runs; j++ {
		ms, err := run()
		if err != nil {
			cleanup()
			return KernelResult{}, fmt.Errorf("bench kernels: %s: %w", kc.name, err)
		}
		if j >= cfg.Warmup {
			times = append(times, ms)
		}
	}
	cleanup()
	res := KernelResult{Name: kc.name, Op: kc.c.Op, Bytes: kc.bytes, RunsMs: times, MedianMs: Median(times), Note: kc.note}
	if res.MedianMs > 0 {
		res.GBs = float64(kc.bytes) / (res.MedianMs * 1e6)
	}
	if info.MemBandwidthGBs > 0 {
		res.PctPeak = 100 * res.GBs / info.MemBandwidthGBs
	}
	switch {
	case kc.pctGoal > 0 && info.MemBandwidthGBs > 0:
		res.Goal = fmt.Sprintf(">= %.0f%% of peak", kc.pctGoal)
		met := res.PctPeak >= kc.pctGoal
		res.GoalMet = &met
	case kc.msGoal > 0:
		res.Goal = fmt.Sprintf("< %.0f ms", kc.msGoal)
		met := res.MedianMs < kc.msGoal
		res.GoalMet = &met
	}
	return res, nil
}

// WriteTable prints the report as an aligned table.
func (r *KernelReport) WriteTable(w io.Writer) error {
	d := r.Device
	fmt.Fprintf(w, "device: %s %s", d.Kind, d.Name)
	if d.Kind == "cuda" {
		fmt.Fprintf(w, " (sm_%d%d, %d SMs, %.0f GB/s theoretical)", d.CCMajor, d.CCMinor, d.SMs, d.MemBandwidthGBs)
	}
	fmt.Fprintf(w, "\n%s\n\n", r.Header)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "kernel\tmedian ms\tGB/s\t% peak\tgoal\tmet")
	for _, x := range r.Results {
		met := ""
		if x.GoalMet != nil {
			met = map[bool]string{true: "yes", false: "NO"}[*x.GoalMet]
		}
		pct := "-"
		if x.PctPeak > 0 {
			pct = fmt.Sprintf("%.0f%%", x.PctPeak)
		}
		fmt.Fprintf(tw, "%s\t%.3f\t%.1f\t%s\t%s\t%s\n", x.Name, x.MedianMs, x.GBs, pct, x.Goal, met)
	}
	return tw.Flush()
}

// WriteJSON writes the report as indented JSON.
func (r *KernelReport) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
