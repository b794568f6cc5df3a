package main

import (
	"fmt"

	"github.com/autoq/autoq/checkpoint"
	"github.com/spf13/pflag"
)

func init() {
	var out string
	var asJSON bool
	register(&command{
		name:    "convert llama2c",
		summary: "convert a llama2.c checkpoint into a Hugging Face Llama directory (config.json + model.safetensors)",
		usage: "FILE --out DIR [flags]\n\nFILE is a legacy float32 llama2.c .bin checkpoint. q_proj and k_proj are permuted from llama2.c's\n" +
			"interleaved RoPE pairs to Hugging Face's rotate_half layout (docs/FORMAT.md), so transformers\n" +
			"loads DIR as is. DIR is replaced atomically.",
		flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&out, "out", "", "output directory (required)")
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
			if err := checkpoint.WriteHF(out, cfg, ts); err != nil {
				return err
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
