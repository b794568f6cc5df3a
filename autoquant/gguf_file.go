package autoquant

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/gguf"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/tensor"
	"github.com/autoq/autoq/tokenizer"
)

// GGUFTarget is the export target whose output is one GGUF file for llama.cpp.
const GGUFTarget = "gguf"

// fullType resolves the type of the tensors a GGUF export keeps in full precision (the
// embeddings, lm_head and the layers the plan keeps at w16; norms are always F32): auto
// is the model's 16-bit dtype, F16 for an F32 model.
func fullType(flag string, model tensor.DType) (gguf.Type, error) {
	switch strings.ToLower(flag) {
	case "", "auto":
		if model == tensor.BF16 {
			return gguf.BF16, nil
		}
		return gguf.F16, nil
	case "f16":
		return gguf.F16, nil
	case "bf16":
		return gguf.BF16, nil
	case "f32":
		return gguf.F32, nil
	}
	return 0, usagef("--full-type must be auto, f32, f16 or bf16, not %q", flag)
}

// sourceVocab is the tokenizer of src as GGUF metadata (llama.cpp tokenizes with it).
func sourceVocab(src *Source) (*gguf.Vocab, error) {
	switch t := src.Tok.(type) {
	case *tokenizer.Llama2C:
		return gguf.VocabFromLlama2C(t)
	case *tokenizer.HFBPE:
		return gguf.VocabFromHF(t)
	case nil:
		if src.Path == "" {
			return nil, usagef("a GGUF file carries the tokenizer, and the built-in synthetic model has none: give --model (and --tokenizer when it is not beside the model)")
		}
		return nil, usagef("a GGUF file carries the tokenizer, and %s has none: give --tokenizer (tok*.bin or tokenizer.json)", src.displayPath())
	}
	return nil, fmt.Errorf("%s: tokenizer %T cannot be written to GGUF", src.displayPath(), src.Tok)
}

// writeGGUF writes src with its quantized layers (each in a llama.cpp block format) as a
// GGUF file for llama.cpp's llama architecture; every other matrix is written as full.
func writeGGUF(path string, src *Source, layers []*Layer, full gguf.Type) error {
	vocab, err := sourceVocab(src)
	if err != nil {
		return err
	}
	pre := map[string]*gguf.Quantized{}
	for _, l := range layers {
		if l.GGUF == nil {
			return fmt.Errorf("layer %s (%s) is not in a llama.cpp block format; the gguf target takes q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q6_k or w16", l.Name, l.Recipe)
		}
		pre[l.Name+".weight"] = l.GGUF
	}
	ck, err := checkpoint.NewMemory(src.Tensors, nil)
	if err != nil {
		return err
	}
	name := "autoq"
	if src.Path != "" {
		name = strings.TrimSuffix(filepath.Base(filepath.Clean(src.Path)), ".bin")
	}
	return gguf.WriteLlama(path, ck, &src.Cfg, gguf.ModelOptions{Name: name, Default: full, Quantized: pre, Vocab: vocab})
}

// GGUFBits is the storage of a GGUF file in llama.cpp's accounting: the bits of each
// tensor's type (whole blocks) over its elements.
type GGUFBits struct {
	Linear float64        `json:"linear_bits"` // over the linear layers' weight matrices
	All    float64        `json:"file_bits"`   // over every tensor (llama.cpp's BPW)
	Bytes  int64          `json:"tensor_bytes"`
	Types  map[string]int `json:"linear_types"` // linear layers per GGUF type
}

// ggufBits measures the tensors of a GGUF file.
func ggufBits(f *gguf.File) (GGUFBits, error) {
	b := GGUFBits{Types: map[string]int{}}
	var lin, linN, all, allN float64
	for _, ti := range f.Tensors {
		cols := ti.Shape[len(ti.Shape)-1]
		row, err := ti.Type.RowBytes(cols)
		if err != nil {
			return b, fmt.Errorf("%s: tensor %s: %w", f.Path, ti.Name, err)
		}
		n := ti.Elements()
		bits := float64(n/int64(cols)*int64(row)) * 8
		b.Bytes += n / int64(cols) * int64(row)
		all, allN = all+bits, allN+float64(n)
		if hf, ok := gguf.HFName(ti.Name); ok && isLinearWeight(hf) {
			lin, linN = lin+bits, linN+float64(n)
			b.Types[ti.Type.String()]++
		}
	}
	if allN > 0 {
		b.All = all / allN
	}
	if linN > 0 {
		b.Linear = lin / linN
	}
	return b, nil
}

func isLinearWeight(hf string) bool {
	if !strings.HasPrefix(hf, "model.layers.") || !strings.HasSuffix(hf, ".weight") {
		return false
	}
	for _, s := range model.LinearSuffixes {
		if strings.HasSuffix(hf, "."+s+".weight") {
			return true
		}
	}
	return false
}

// LoadGGUF builds autoq's model from a llama GGUF file: exactly the stored weights,
// dequantized as llama.cpp dequantizes them (q/k rows back in autoq's order), and its
// storage in llama.cpp's accounting.
func LoadGGUF(path string) (*model.Model, GGUFBits, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, GGUFBits{}, err
	}
	defer f.Close()
	bits, err := ggufBits(f)
	if err != nil {
		return nil, bits, err
	}
	cfg, err := gguf.LlamaConfig(f)
	if err != nil {
		return nil, bits, err
	}
	ts, err := gguf.LlamaTensors(f, cfg)
	if err != nil {
		return nil, bits, err
	}
	m, err := model.New(*cfg, ts)
	if err != nil {
		return nil, bits, fmt.Errorf("%s: %w", path, err)
	}
	return m, bits, nil
}

// typeCounts prints {"q4_k": 10, "F16": 5} as "Q4_K x10, F16 x5", most common first.
func typeCounts(c map[string]int) string {
	type kv struct {
		k string
		n int
	}
	var v []kv
	for k, n := range c {
		v = append(v, kv{k, n})
	}
	for i := range v { // insertion sort: a handful of types
		for j := i; j > 0 && (v[j].n > v[j-1].n || v[j].n == v[j-1].n && v[j].k < v[j-1].k); j-- {
			v[j], v[j-1] = v[j-1], v[j]
		}
	}
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprintf("%s x%d", x.k, x.n)
	}
	return strings.Join(parts, ", ")
}
