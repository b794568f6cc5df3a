package llamacpp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
)

// run sends req to scripts/llamacpp/ppl.mjs and decodes its answer into out.
func (in *Install) run(ctx context.Context, req, out any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, in.Node, filepath.Join(in.Root, "scripts", "llamacpp", "ppl.mjs"))
	cmd.Stdin = bytes.NewReader(body)
	cmd.Env = append(os.Environ(), "AUTOQ_LLAMACPP_DIR="+filepath.Dir(in.Modules), "NODE_LLAMA_CPP_SKIP_DOWNLOAD=true")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("llamacpp: ppl.mjs: %v: %s", err, lastLines(stderr.String(), 20))
	}
	if err := json.Unmarshal(stdout, out); err != nil {
		return fmt.Errorf("llamacpp: ppl.mjs: bad answer %q: %v", lastLines(string(stdout), 3), err)
	}
	return nil
}

// LogProbs scores token windows with llama.cpp: result[w][p] = ln P(windows[w][p+1] |
// windows[w][:p+1]), from the full softmax at temperature 0, with an F32 KV cache, flash
// attention off and threads threads (1 for exact comparisons), one window per sequence.
func (in *Install) LogProbs(ctx context.Context, model string, windows [][]int, threads int) ([][]float64, error) {
	for i, w := range windows {
		if len(w) < 2 {
			return nil, fmt.Errorf("llamacpp: window %d has %d tokens (want at least 2)", i, len(w))
		}
	}
	var out struct {
		LogProbs [][]*float64 `json:"logprobs"`
	}
	req := map[string]any{"mode": "logprobs", "model": model, "windows": windows, "threads": threads}
	if err := in.run(ctx, req, &out); err != nil {
		return nil, err
	}
	if len(out.LogProbs) != len(windows) {
		return nil, fmt.Errorf("llamacpp: %s: %d windows scored of %d", model, len(out.LogProbs), len(windows))
	}
	res := make([][]float64, len(windows))
	for w, lps := range out.LogProbs {
		if len(lps) != len(windows[w])-1 {
			return nil, fmt.Errorf("llamacpp: %s: window %d: %d positions scored of %d", model, w, len(lps), len(windows[w])-1)
		}
		res[w] = make([]float64, len(lps))
		for p, lp := range lps {
			if lp == nil {
				return nil, fmt.Errorf("llamacpp: %s: window %d position %d: llama.cpp gives token %d probability 0", model, w, p, windows[w][p+1])
			}
			res[w][p] = *lp
		}
	}
	return res, nil
}

// Tokenize tokenizes texts with the model's own GGUF vocabulary (no BOS).
func (in *Install) Tokenize(ctx context.Context, model string, texts []string) ([][]int, error) {
	var out struct {
		Tokens [][]int `json:"tokens"`
	}
	if err := in.run(ctx, map[string]any{"mode": "tokenize", "model": model, "texts": texts}, &out); err != nil {
		return nil, err
	}
	return out.Tokens, nil
}

// Speed is a llama.cpp throughput measurement.
type Speed struct {
	PromptTPS   float64 `json:"prompt_tps"`   // prompt processing, tokens/s
	GenerateTPS float64 `json:"generate_tps"` // greedy generation, tokens/s
	Threads     int     `json:"threads"`      // 0: llama.cpp's default
}

// Bench measures prompt processing of prompt tokens (one batch) and greedy generation of
// generate tokens, best of repeats runs.
func (in *Install) Bench(ctx context.Context, model string, prompt, generate, threads, repeats int) (Speed, error) {
	var s Speed
	req := map[string]any{"mode": "bench", "model": model, "prompt": prompt, "generate": generate, "threads": threads, "repeats": repeats}
	if err := in.run(ctx, req, &s); err != nil {
		return Speed{}, err
	}
	if !(s.PromptTPS > 0) || !(s.GenerateTPS > 0) || math.IsInf(s.PromptTPS, 0) {
		return Speed{}, fmt.Errorf("llamacpp: %s: implausible speeds %+v", model, s)
	}
	return s, nil
}

func lastLines(s string, n int) string {
	lines := bytes.Split(bytes.TrimSpace([]byte(s)), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
