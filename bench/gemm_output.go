package bench

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"text/tabwriter"
)

// WriteTable prints the header (device, notes) and one aligned row per point.
func (r *GemmReport) WriteTable(w io.Writer) error {
	d := r.Device
	if d.Kind == "cuda" {
		fmt.Fprintf(w, "GEMM benchmark on CUDA device %d: %s (sm_%d%d, %d SMs, peak %.0f GB/s)\n", d.Index, d.Name, d.CCMajor, d.CCMinor, d.SMs, d.MemBandwidthGBs)
	} else {
		fmt.Fprintf(w, "GEMM benchmark on the CPU backend (NO GPU): %s, %d cores\n", d.Name, d.SMs)
		if r.Fallback != "" {
			fmt.Fprintf(w, "why the CPU: %s\n", r.Fallback)
		}
	}
	fmt.Fprintf(w, "timing: %s\nspeedup: baseline %s median / kernel median, same run\n", r.Notes, r.Baseline)
	if r.Truncated != "" {
		fmt.Fprintf(w, "SWEEP TRUNCATED: %s\n", r.Truncated)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "shape\tK\tN\tM\tkernel\tmedian_us\tp90_us\tTFLOP/s\tGB/s\tpeakBW_pct\tspeedup\t")
	for _, p := range r.Points {
		bw := "-"
		if p.PctPeakBW > 0 {
			bw = fmt.Sprintf("%.1f", p.PctPeakBW)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%.2f\t%.2f\t%.3g\t%.3g\t%s\t%.2fx\t\n", p.Shape, p.K, p.N, p.M, p.Kernel, p.MedianUs, p.P90Us, p.TFLOPs, p.GBs, bw, p.Speedup)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	r.writeSummary(w)
	return nil
}

// writeSummary prints, per kernel, the geometric mean and minimum speedup over the
// baseline in three M bands (the bands of the performance goals).
func (r *GemmReport) writeSummary(w io.Writer) {
	bands := []struct {
		name   string
		lo, hi int
	}{{"M<=16", 1, 16}, {"M=17..512", 17, 512}, {"M>=1024", 1024, 1 << 30}}
	for _, k := range r.Kernels {
		if k == r.Baseline {
			continue
		}
		line := fmt.Sprintf("summary %-12s vs %s:", k, r.Baseline)
		found := false
		for _, b := range bands {
			logSum, n, minS := 0.0, 0, math.Inf(1)
			for _, p := range r.Points {
				if p.Kernel == k && p.M >= b.lo && p.M <= b.hi && p.Speedup > 0 {
					logSum += math.Log(p.Speedup)
					n++
					minS = math.Min(minS, p.Speedup)
				}
			}
			if n > 0 {
				line += fmt.Sprintf("  %s geomean %.2fx min %.2fx (%d pts)", b.name, math.Exp(logSum/float64(n)), minS, n)
				found = true
			}
		}
		if found {
			fmt.Fprintln(w, line)
		}
	}
}

// WriteJSON writes the report as indented JSON.
func (r *GemmReport) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteCSV writes one row per point with a header row.
func (r *GemmReport) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"device", "shape", "k", "n", "m", "kernel", "median_us", "p90_us", "tflops", "gb_per_s", "pct_peak_bw", "speedup_vs_baseline", "iters"})
	f := func(v float64) string {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return ""
		}
		return strconv.FormatFloat(v, 'g', 6, 64)
	}
	for _, p := range r.Points {
		_ = cw.Write([]string{r.Device.Name, p.Shape, strconv.Itoa(p.K), strconv.Itoa(p.N), strconv.Itoa(p.M), p.Kernel,
			f(p.MedianUs), f(p.P90Us), f(p.TFLOPs), f(p.GBs), f(p.PctPeakBW), f(p.Speedup), strconv.Itoa(p.Iters)})
	}
	cw.Flush()
	return cw.Error()
}
