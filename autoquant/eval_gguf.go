package autoquant

import (
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/autoq/autoq/gguf/llamacpp"
)

// llamaCppSettings is how llama.cpp scores a GGUF file (gguf/llamacpp.LogProbs).
const llamaCppSettings = "llama.cpp (node-llama-cpp " + llamacpp.Version + ", CPU): 1 thread, F32 KV cache, flash attention off, one window per sequence; " +
	"its quantized matmuls round their inputs to Q8_0 (Q8_K for k-quants) blocks, which autoq's evaluation does not"

// checkGGUF validates --gguf and --llamacpp and finds llama.cpp when it is to score the
// files (nil when not).
func (f *EvalOptions) checkGGUF(env Env) (*llamacpp.Install, error) {
	mode := f.LlamaCpp
	if mode == "" {
		mode = "auto"
	}
	if mode != "auto" && mode != "on" && mode != "off" {
		return nil, usagef("--llamacpp must be auto, on or off, not %q", f.LlamaCpp)
	}
	if len(f.GGUF) == 0 {
		if mode == "on" {
			return nil, usagef("--llamacpp on scores --gguf files: give one")
		}
		return nil, nil
	}
	switch f.Device {
	case "", "auto":
		f.Device = "cpu"
	case "cpu":
	default:
		return nil, usagef("--gguf: GGUF files are evaluated on the CPU reference (--device cpu)")
	}
	if mode == "off" {
		return nil, nil
	}
	in, err := llamacpp.Locate()
	if errors.Is(err, llamacpp.ErrNotInstalled) && mode == "auto" {
		env.logf("note: llama.cpp not scored: %v\n", err)
		return nil, nil
	}
	return in, err
}

// scoreLlamaCpp has llama.cpp score each GGUF file on the windows autoq evaluated.
func scoreLlamaCpp(env Env, in *llamacpp.Install, files []string, rows []EvalRow, windows [][]int, bos int) error {
	for i, path := range files {
		ppl, _, err := in.Perplexity(env.ctx(), path, windows, bos)
		if err != nil {
			return fmt.Errorf("llama.cpp on %s: %w", path, err)
		}
		rows[i].LlamaCppPPL = ppl
		rows[i].LlamaCppRel = ppl/rows[i].Perplexity - 1
	}
	return nil
}

// writeGGUF prints the GGUF files' storage and llama.cpp's scores.
func (rep *EvalReport) writeGGUF(w io.Writer) {
	var rows []EvalRow
	for _, r := range rep.Results {
		if r.GGUF != nil {
			rows = append(rows, r)
		}
	}
	if len(rows) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	if rep.LlamaCpp == "" {
		fmt.Fprintf(tw, "GGUF file\tbits/weight (linear)\tbits/weight (all)\ttypes\t\n")
		for _, r := range rows {
			fmt.Fprintf(tw, "%s\t%.3f\t%.3f\t%s\t\n", r.Scheme, r.GGUF.Linear, r.GGUF.All, typeCounts(r.GGUF.Types))
		}
		tw.Flush()
		return
	}
	fmt.Fprintf(tw, "GGUF file\tbits/weight (linear)\tbits/weight (all)\tautoq ppl\tllama.cpp ppl\tdifference\t\n")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%.3f\t%.3f\t%.4f\t%.4f\t%+.4f%%\t\n", r.Scheme, r.GGUF.Linear, r.GGUF.All, r.Perplexity, r.LlamaCppPPL, 100*r.LlamaCppRel)
	}
	tw.Flush()
	fmt.Fprintf(w, "%s\n", rep.LlamaCpp)
}
