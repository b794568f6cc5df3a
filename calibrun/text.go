package calibrun

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// maxOutliersShown is how many outlier channels a table row lists (the JSON has them all).
const maxOutliersShown = 4

// WriteText prints the report for people: the per-tensor table, then coverage, warnings and
// the convergence verdict.
func (rep *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "tensor\tch\tamax (%s)\tabsmax\tclip %%\tmin KL\tlast change\tstatus\tmax ch/median\toutlier channels (> %gx)\n", rep.Settings.Method, rep.Settings.OutlierRatio)
	for _, t := range rep.Tensors {
		kl := "-"
		if t.MinKL != nil {
			kl = fmt.Sprintf("%.4g", *t.MinKL)
		}
		change, status := "-", "ok"
		if t.LastChange != nil {
			change = fmt.Sprintf("%.2f%%", 100**t.LastChange)
			if !t.Settled {
				status = "UNSETTLED"
			}
		}
		if t.Empty {
			status = "EMPTY"
		}
		fmt.Fprintf(tw, "%s\t%d\t%.5g\t%.5g\t%.4f\t%s\t%s\t%s\t%.1f\t%s\n", label(t), t.Channels, t.Amax, t.AbsMax,
			100*t.ClipRate, kl, change, status, t.MaxChanRatio, outlierText(t))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	c := rep.Coverage
	fmt.Fprintf(w, "\ncoverage: %d sequences, %d tokens (split %s, shard %s, %d rounds), %.0f tokens/s\n",
		c.Sequences, c.Tokens, rep.Settings.Split, rep.Settings.Shard, rep.Settings.Rounds, rep.TokPerSec)
	fmt.Fprintf(w, "  sequence lengths: %s\n", lengthText(c.SequenceLengths, false))
	fmt.Fprintf(w, "  segment lengths (between BOS): %s\n", lengthText(c.SegmentLengths, true))
	fmt.Fprintf(w, "  vocabulary seen: %d of %d (%.1f%%)\n", c.VocabSeen, c.Vocab, 100*c.VocabShare)
	var top []string
	for _, t := range c.TopTokens {
		p := t.Piece
		if p == "" {
			p = fmt.Sprint(t.ID)
		}
		top = append(top, fmt.Sprintf("%s %.1f%%", p, 100*t.Share))
	}
	fmt.Fprintf(w, "  top %d tokens hold %.1f%% of tokens: %s\n", len(c.TopTokens), 100*c.TopShare, strings.Join(top, ", "))
	fmt.Fprintf(w, "  duplicate sequences: %d (%.1f%%)\n", c.Duplicates, 100*c.DuplicateShare)
	for _, wn := range rep.Warnings {
		fmt.Fprintf(w, "warning: %s: %s\n", wn.Code, wn.Message)
	}
	switch {
	case rep.Converged:
		_, err := fmt.Fprintf(w, "calibration converged: every tensor's amax moved at most %.3g%% in the last of %d rounds\n", 100*rep.Settings.Tolerance, rep.Settings.Rounds)
		return err
	case rep.Stable:
		_, err := fmt.Fprintf(w, "calibration NOT converged: every amax moved at most %.3g%% in the last round, but on only %d tokens (minimum %d)\n", 100*rep.Settings.Tolerance, rep.Coverage.Tokens, rep.Settings.MinTokens)
		return err
	case len(rep.Unsettled) > 0:
		_, err := fmt.Fprintf(w, "calibration NOT converged: %d of %d tensors need more data: %s\n", len(rep.Unsettled), len(rep.Tensors), strings.Join(rep.Unsettled, ", "))
		return err
	default:
		_, err := fmt.Fprintf(w, "calibration convergence not measured (%d round)\n", rep.Settings.Rounds)
		return err
	}
}

// label names a group by its first member plus the last name component of the others:
// model.layers.0.self_attn.q_proj,k_proj,v_proj.
func label(t TensorReport) string {
	s := t.Name
	for _, m := range t.Members[1:] {
		s += "," + m[strings.LastIndexByte(m, '.')+1:]
	}
	return s
}

func outlierText(t TensorReport) string {
	if len(t.Outliers) == 0 {
		return "-"
	}
	var parts []string
	for _, o := range t.Outliers[:min(maxOutliersShown, len(t.Outliers))] {
		parts = append(parts, fmt.Sprintf("%d (%.1fx)", o.Channel, o.Ratio))
	}
	if n := len(t.Outliers) - maxOutliersShown; n > 0 {
		parts = append(parts, fmt.Sprintf("+%d more", n))
	}
	return strings.Join(parts, " ")
}

func lengthText(ls []LengthCount, buckets bool) string {
	if len(ls) == 0 {
		return "none"
	}
	var parts []string
	for _, l := range ls {
		if buckets {
			parts = append(parts, fmt.Sprintf("%d-%d: %d", l.Length, 2*l.Length-1, l.Count))
		} else {
			parts = append(parts, fmt.Sprintf("%d x %d", l.Length, l.Count))
		}
	}
	return strings.Join(parts, ", ")
}
