package autoquant

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/tokenizer"
)

// ConvertOptions configures ConvertLlama2C (`autoq convert llama2c`).
type ConvertOptions struct {
	File      string // llama2.c .bin checkpoint
	Out       string
	Tokenizer string // tok*.bin to write as tokenizer.json; "auto": the one beside File; "none"
	Force     bool   // replace a previous autoq Hugging Face checkpoint at Out
}

// ConvertLlama2C writes a llama2.c checkpoint as a Hugging Face Llama directory (q/k
// permuted to rotate_half), with its tokenizer as tokenizer.json.
func ConvertLlama2C(env Env, o ConvertOptions) (*ConvertReport, error) {
	if o.Out == "" {
		return nil, usagef("--out DIR is required")
	}
	if err := checkOutputs(env, o.Force, []string{o.File, o.Tokenizer}, outDir("--out", o.Out, checkpoint.HFOutputKind)); err != nil {
		return nil, err
	}
	cfg, ts, err := checkpoint.ReadLlama2C(o.File)
	if err != nil {
		return nil, err
	}
	tokPath, err := convertTokenizerPath(o.Tokenizer, o.File)
	if err != nil {
		return nil, err
	}
	var tk *tokenizer.Llama2C
	if tokPath != "" {
		if tk, err = tokenizer.LoadLlama2C(tokPath); err != nil {
			return nil, err
		}
		if tk.VocabSize() != cfg.Vocab {
			return nil, fmt.Errorf("tokenizer %s has %d tokens but %s has vocab %d", tokPath, tk.VocabSize(), o.File, cfg.Vocab)
		}
	}
	if err := checkpoint.WriteHF(o.Out, cfg, ts); err != nil {
		return nil, err
	}
	if tk != nil {
		if err := tk.WriteHFJSON(filepath.Join(o.Out, "tokenizer.json")); err != nil {
			return nil, err
		}
		env.logf("tokenizer: %s -> %s\n", tokPath, filepath.Join(o.Out, "tokenizer.json"))
	}
	var params int64
	for _, t := range ts {
		params += int64(t.T.NumElements())
	}
	return &ConvertReport{Source: o.File, Out: o.Out, Tensors: len(ts), Params: params, Dim: cfg.Dim,
		HiddenDim: cfg.HiddenDim, Layers: cfg.Layers, Heads: cfg.Heads, KVHeads: cfg.KVHeads,
		Vocab: cfg.Vocab, MaxSeq: cfg.MaxSeq, Tied: cfg.TiedEmbeddings}, nil
}

// WriteTable prints one summary line.
func (sum *ConvertReport) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "wrote %s: %d tensors, %d parameters (dim %d, hidden %d, %d layers, %d heads, %d kv heads, vocab %d, tied embeddings %v)\n",
		sum.Out, sum.Tensors, sum.Params, sum.Dim, sum.HiddenDim, sum.Layers, sum.Heads, sum.KVHeads, sum.Vocab, sum.Tied)
}

// ConvertReport is the result of ConvertLlama2C.
type ConvertReport struct {
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
