package calibrun

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/autoq/autoq/calib"
)

// Report is the diagnostics of a run: per-tensor thresholds with their trajectory over the
// rounds, convergence, clipping, outlier channels, coverage and warnings.
type Report struct {
	Settings Settings       `json:"settings"`
	Coverage Coverage       `json:"coverage"`
	Rounds   []RoundTotals  `json:"rounds"`
	Tensors  []TensorReport `json:"tensors"`
	// Stable: at least two rounds and no tensor unsettled. Converged: stable on at least
	// MinTokens tokens (a threshold that did not move on a few hundred tokens says little:
	// a percentile of so few values is just one of the largest ones).
	Stable    bool      `json:"stable"`
	Converged bool      `json:"converged"`
	Unsettled []string  `json:"unsettled"`
	Warnings  []Warning `json:"warnings"`
	Seconds   float64   `json:"seconds"`
	TokPerSec float64   `json:"tokens_per_sec"`
}

// Settings records how the run was made.
type Settings struct {
	Method       string  `json:"method"`
	SeqLen       int     `json:"seq_len"`
	Batch        int     `json:"batch"`
	TokensCap    int     `json:"tokens_cap"` // 0: all
	Split        string  `json:"split"`
	Shard        string  `json:"shard"` // "I/N"
	Workers      int     `json:"workers"`
	Rounds       int     `json:"rounds"`
	Tolerance    float64 `json:"tolerance"`
	OutlierRatio float64 `json:"outlier_ratio"`
	MinTokens    int     `json:"min_tokens"`
	StreamWindow int     `json:"stream_windows"` // windows of the whole stream, all shards
}

// RoundTotals is the cumulative data after a round.
type RoundTotals struct {
	Sequences int `json:"sequences"`
	Tokens    int `json:"tokens"`
}

// RoundPoint is one tensor's threshold after a round.
type RoundPoint struct {
	Amax   float32  `json:"amax"`
	MinKL  *float64 `json:"min_kl"` // the entropy calibrator's minimal KL (null if not finite)
	AbsMax float32  `json:"absmax"` // largest |x| so far
}

// Outlier is a channel whose absmax is far above the tensor's median channel absmax.
type Outlier struct {
	Channel int     `json:"channel"`
	AbsMax  float32 `json:"absmax"`
	Ratio   float64 `json:"ratio"` // absmax / median channel absmax
}

// TensorReport is one calibrated input (shared by Members).
type TensorReport struct {
	Name     string   `json:"name"`
	Members  []string `json:"members"`
	Channels int      `json:"channels"`
	Count    uint64   `json:"count"`
	Empty    bool     `json:"empty,omitempty"`
	Amax     float32  `json:"amax"`
	AbsMax   float32  `json:"absmax"`
	// ClipRate is the fraction of values in histogram bins at or above the threshold.
	ClipRate float64      `json:"clip_rate"`
	MinKL    *float64     `json:"min_kl"`
	Rounds   []RoundPoint `json:"rounds"`
	// LastChange is |amax_R - amax_{R-1}| / amax_{R-1} (1 when the tensor had no
	// threshold before the last round); null with fewer than two rounds.
	LastChange    *float64 `json:"last_change"`
	Settled       bool     `json:"settled"`
	MedianChanMax float32  `json:"median_channel_absmax"`
	// MaxChanRatio is the largest channel absmax over the median (0 when the median is 0).
	MaxChanRatio float64   `json:"max_channel_ratio"`
	Outliers     []Outlier `json:"outlier_channels"`
}

// Warning is a reason to distrust the calibration set.
type Warning struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Diagnose builds the report of a run.
func Diagnose(r *Result) *Report {
	o := r.Opt
	rep := &Report{
		Settings: Settings{Method: o.Calib.Method.String(), SeqLen: o.SeqLen, Batch: o.Batch, TokensCap: o.Tokens,
			Split: o.Split, Shard: fmt.Sprintf("%d/%d", o.Shard, o.Shards), Workers: max(1, len(o.Engines)),
			Rounds: len(r.Rounds), Tolerance: o.Tolerance, OutlierRatio: o.OutlierRatio, MinTokens: o.MinTokens,
			StreamWindow: r.Total},
		Coverage: r.Coverage, Unsettled: []string{}, Warnings: []Warning{}, Seconds: r.Seconds,
	}
	if r.Seconds > 0 {
		rep.TokPerSec = float64(r.Coverage.Tokens) / r.Seconds
	}
	for _, rd := range r.Rounds {
		rep.Rounds = append(rep.Rounds, RoundTotals{Sequences: rd.Sequences, Tokens: rd.Tokens})
	}
	for gi, g := range r.Groups {
		rep.Tensors = append(rep.Tensors, r.tensorReport(gi, g))
	}
	nR := len(r.Rounds)
	for _, t := range rep.Tensors {
		if t.LastChange != nil && !t.Settled {
			rep.Unsettled = append(rep.Unsettled, t.Name)
		}
	}
	rep.Stable = nR >= 2 && len(rep.Unsettled) == 0
	rep.Converged = rep.Stable && r.Coverage.Tokens >= o.MinTokens
	rep.Warnings = warnings(r, rep)
	return rep
}

func (r *Result) tensorReport(gi int, g Group) TensorReport {
	h := r.Hists[gi]
	last := r.Rounds[len(r.Rounds)-1]
	res := last.Results[gi]
	t := TensorReport{Name: g.Name, Members: g.Members, Channels: g.Channels, Count: h.Count, Empty: res.Empty,
		Amax: res.Amax, AbsMax: h.AbsMax, MinKL: finite(last.KL[gi]), Outliers: []Outlier{}}
	t.ClipRate = clipRate(h, res)
	for _, rd := range r.Rounds {
		t.Rounds = append(t.Rounds, RoundPoint{Amax: rd.Results[gi].Amax, MinKL: finite(rd.KL[gi]), AbsMax: rd.AbsMax[gi]})
	}
	t.Settled = true
	if n := len(r.Rounds); n >= 2 {
		a, b := float64(r.Rounds[n-2].Results[gi].Amax), float64(res.Amax)
		var c float64
		switch {
		case a > 0:
			c = math.Abs(b-a) / a
		case b > 0:
			c = 1
		}
		t.LastChange = &c
		t.Settled = c <= r.Opt.Tolerance
	}
	t.MedianChanMax, t.Outliers = outliers(h.ChannelAbsMax, r.Opt.OutlierRatio)
	if t.MedianChanMax > 0 {
		t.MaxChanRatio = float64(slices.Max(h.ChannelAbsMax)) / float64(t.MedianChanMax)
	}
	return t
}

// clipRate is the fraction of binned values at or above the threshold's bin (values equal
// to amax itself are counted too: the histogram cannot tell them apart within a bin).
// The max calibrator clips nothing.
func clipRate(h *calib.Histogram, res calib.Result) float64 {
	if res.Empty || res.Bin == 0 || h.Count == 0 {
		return 0
	}
	var n uint64
	for _, c := range h.Counts[res.Bin:] {
		n += c
	}
	return float64(n) / float64(h.Count)
}

// outliers returns the median channel absmax (the lower middle element for an even count)
// and the channels above ratio x median, largest ratio first (lower channel on ties).
func outliers(ch []float32, ratio float64) (float32, []Outlier) {
	out := []Outlier{}
	if len(ch) == 0 {
		return 0, out
	}
	s := append([]float32(nil), ch...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	med := s[(len(s)-1)/2]
	if med <= 0 {
		return med, out
	}
	for i, v := range ch {
		if q := float64(v) / float64(med); q > ratio {
			out = append(out, Outlier{Channel: i, AbsMax: v, Ratio: q})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Ratio > out[j].Ratio })
	return med, out
}

// Warning thresholds (documented in docs/CALIBRATION.md).
const (
	DuplicateWarnShare = 0.10 // duplicate sequences above this share of all sequences
)

func warnings(r *Result, rep *Report) []Warning {
	w := []Warning{}
	c := rep.Coverage
	if c.Tokens < r.Opt.MinTokens {
		w = append(w, Warning{"few-tokens", fmt.Sprintf("only %d tokens, fewer than the minimum of %d: rare large activations are likely missed and thresholds will move with more data (raise --tokens)", c.Tokens, r.Opt.MinTokens)})
	}
	if len(c.SequenceLengths) == 1 && c.Sequences > 1 {
		l := c.SequenceLengths[0].Length
		msg := fmt.Sprintf("all %d sequences have the same length %d", c.Sequences, l)
		if r.ModelCtx > l {
			msg += fmt.Sprintf(": positions %d..%d of the model's %d-token context are never seen (use --seq-len %d to cover them)", l, r.ModelCtx-1, r.ModelCtx, r.ModelCtx)
		}
		w = append(w, Warning{"one-length", msg})
	}
	if c.DuplicateShare > DuplicateWarnShare {
		w = append(w, Warning{"duplicates", fmt.Sprintf("%d of %d sequences (%.0f%%) are exact duplicates of an earlier one: they add no new information", c.Duplicates, c.Sequences, 100*c.DuplicateShare)})
	}
	if len(r.Rounds) < 2 {
		w = append(w, Warning{"no-convergence-check", fmt.Sprintf("%d round(s): convergence needs at least 2 (--rounds, and at least that many sequences)", len(r.Rounds))})
	}
	var empty []string
	for _, t := range rep.Tensors {
		if t.Empty {
			empty = append(empty, t.Name)
		}
	}
	if len(empty) > 0 {
		w = append(w, Warning{"empty-tensors", fmt.Sprintf("no non-zero value seen for %s: no threshold", strings.Join(empty, ", "))})
	}
	if len(rep.Unsettled) > 0 {
		w = append(w, Warning{"unsettled", fmt.Sprintf("%d of %d tensors changed amax by more than %.3g%% in the last round: calibrate on more data", len(rep.Unsettled), len(rep.Tensors), 100*r.Opt.Tolerance)})
	}
	return w
}

func finite(x float64) *float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return nil
	}
	return &x
}
