package autoquant

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/autoq/autoq/gguf"
	"github.com/autoq/autoq/gguf/llamacpp"
)

// GGUFSpeed is one GGUF file's speed in llama.cpp.
type GGUFSpeed struct {
	File  string   `json:"file"`
	Bytes int64    `json:"bytes"`
	Bits  GGUFBits `json:"gguf"`
	llamacpp.Speed
}

// benchGGUF is `autoq bench model --gguf A,B`: llama.cpp's prompt processing (one batch of
// Prompt tokens) and greedy generation (Generate tokens) of each file, best of Runs.
func benchGGUF(env Env, f *BenchModelOptions) (*BenchModelReport, error) {
	if f.Prompt <= 0 || f.Generate <= 0 || f.Threads < 0 || f.Runs < 1 {
		return nil, usagef("--prompt and --generate must be positive, --threads >= 0 (0: llama.cpp's default), --runs >= 1")
	}
	if f.Model != "" || f.Plot != "" {
		return nil, usagef("--gguf benchmarks the files themselves in llama.cpp: --model and --plot do not apply")
	}
	var rows []GGUFSpeed
	for _, p := range f.GGUF {
		g, err := gguf.Open(p) // a clear error for what is not a GGUF file, before node starts
		if err != nil {
			return nil, err
		}
		bits, err := ggufBits(g)
		g.Close()
		if err != nil {
			return nil, err
		}
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		rows = append(rows, GGUFSpeed{File: p, Bytes: st.Size(), Bits: bits})
	}
	in, err := llamacpp.Locate()
	if errors.Is(err, llamacpp.ErrNotInstalled) {
		return nil, fmt.Errorf("bench model --gguf runs llama.cpp: %w", err)
	} else if err != nil {
		return nil, err
	}
	for i := range rows {
		s, err := in.Bench(env.ctx(), rows[i].File, f.Prompt, f.Generate, f.Threads, f.Runs)
		if err != nil {
			return nil, err
		}
		s.Threads = f.Threads
		rows[i].Speed = s
		env.logf("%s: prompt %.0f tokens/s, generation %.0f tokens/s\n", filepath.Base(rows[i].File), s.PromptTPS, s.GenerateTPS)
	}
	return &BenchModelReport{Device: "cpu (llama.cpp " + llamacpp.Version + ")", Kernel: "llama.cpp", Runs: f.Runs, LlamaCpp: rows,
		Model: fmt.Sprintf("prompt %d tokens (one batch), generation %d tokens, %d thread(s)", f.Prompt, f.Generate, f.Threads)}, nil
}

// writeGGUF prints the llama.cpp speed table, each file against the first.
func (rep *BenchModelReport) writeGGUF(w io.Writer) {
	fmt.Fprintf(w, "llama.cpp (node-llama-cpp %s, CPU): %s, best of %d runs\n", llamacpp.Version, rep.Model, rep.Runs)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "file\ttypes\tbits/weight (all)\tsize\tprompt tok/s\tgeneration tok/s\tvs first\t")
	b := rep.LlamaCpp[0]
	for _, r := range rep.LlamaCpp {
		fmt.Fprintf(tw, "%s\t%s\t%.3f\t%s\t%.0f\t%.0f\t%.2fx / %.2fx\t\n", filepath.Base(r.File), typeCounts(r.Bits.Types), r.Bits.All, HumanBytes(r.Bytes),
			r.PromptTPS, r.GenerateTPS, r.PromptTPS/b.PromptTPS, r.GenerateTPS/b.GenerateTPS)
	}
	tw.Flush()
}
