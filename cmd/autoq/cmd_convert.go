package main

import (
	"fmt"
	"path/filepath"

	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/tokenizer"
	"github.com/spf13/pflag"
)

func init() {
	var out, tok string
	var asJSON bool
	register(&command{
		name:    "convert llama2c",
		summary: "convert a llama2.c checkpoint into a Hugging Face Llama directory (config.json + model.safetensors)",
		usage: "FILE --out DIR [flags]\n\nFILE is a legacy float32 llama2.c .bin checkpoint. q_proj and k_proj are permuted from llama2.c's\n" +
			"interleaved RoPE pairs to Hugging Face's rotate_half layout (docs/FORMAT.md), so transformers\n" +
			"loads DIR as is. DIR is replaced atomically.",
		flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&out, "out", "", "output directory (required)")
			fs.StringVar(&tok, "tokenizer", "auto", "llama2.c tokenizer (tok*.bin) to write as DIR/tokenizer.json; auto: the one tok*.bin beside FILE, if exactly one; none: skip")
			fs.BoolVar(&asJSON, "json", false, "print the summary as JSON")
		},
		run: func(e *env, fs *pflag.FlagSet, args []string) error {
			if len(args) != 1 {
				return usagef("expected one llama2.c FILE, got %d arguments", len(args))
			}
			if out == "" {
				return usagef("--out DIR is required")
			}
			cfg, ts, err := checkpoint.ReadLlama2C(args[0])
			if err != nil {
				return err
			}
			tokPath, err := convertTokenizerPath(tok, args[0])
			if err != nil {
				return err
			}
			var tk *tokenizer.Llama2C
			if tokPath != "" {
				if tk, err = tokenizer.LoadLlama2C(tokPath); err != nil {
					return err
				}
				if tk.VocabSize() != cfg.Vocab {
					return fmt.Errorf("tokenizer %s has %d tokens but %s has vocab %d", tokPath, tk.VocabSize(), args[0], cfg.Vocab)
				}
			}
			if err := checkpoint.WriteHF(out, cfg, ts); err != nil {
				return err
			}
			if tk != nil {
				if err := tk.WriteHFJSON(filepath.Join(out, "tokenizer.json")); err != nil {
					return err
				}
				fmt.Fprintf(e.stderr, "tokenizer: %s -> %s\n", tokPath, filepath.Join(out, "tokenizer.json"))
			}
			var params int64
			for _, t := range ts {
				params += int64(t.T.NumElements())
			}
			sum := convertSummary{Source: args[0], Out: out, Tensors: len(ts), Params: params, Dim: cfg.Dim,
				HiddenDim: cfg.HiddenDim, Layers: cfg.Layers, Heads: cfg.Heads, KVHeads: cfg.KVHeads,
				Vocab: cfg.Vocab, MaxSeq: cfg.MaxSeq, Tied: cfg.TiedEmbeddings}
			if asJSON {
				return writeReportJSON(e.stdout, sum)
			}
			fmt.Fprintf(e.stdout, "wrote %s: %d tensors, %d parameters (dim %d, hidden %d, %d layers, %d heads, %d kv heads, vocab %d, tied embeddings %v)\n",
				out, sum.Tensors, sum.Params, cfg.Dim, cfg.HiddenDim, cfg.Layers, cfg.Heads, cfg.KVHeads, cfg.Vocab, cfg.TiedEmbeddings)
			return nil
		},
	})
}

type convertSummary struct {
	Source    string `json:"source"`
	Out       string `json:"out"`
	Tensors   int    `json:"tensors"`
	Params    int64  `json:"params"`
	Dim       int    `json:"dim"`
	HiddenDim int    `json:"hidden_dim"`
	Layers    int    `json:"layers"`
	Heads     int    `json:"heads"`
	KVHeads   int    `json:"kv_heads"`
	Vocab     int    `json:"vocab"`
	MaxSeq    int    `json:"max_seq"`
	Tied      bool   `json:"tied_embeddings"`
}

// convertTokenizerPath resolves --tokenizer: "none" or "" skips, "auto" takes the single
// tok*.bin beside the checkpoint (none found: skip; several: a usage error), anything else is
// a path.
func convertTokenizerPath(flag, model string) (string, error) {
	switch flag {
	case "none", "":
		return "", nil
	case "auto":
		m, _ := filepath.Glob(filepath.Join(filepath.Dir(model), "tok*.bin"))
		switch len(m) {
		case 0:
			return "", nil
		case 1:
			return m[0], nil
		}
		return "", usagef("several tokenizers beside %s (%v): choose one with --tokenizer", model, m)
	}
	return flag, nil
}
