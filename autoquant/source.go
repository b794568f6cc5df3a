package autoquant

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/eval"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/plan"
	"github.com/autoq/autoq/safetensors"
	"github.com/autoq/autoq/tensor"
	"github.com/autoq/autoq/tokenizer"
)

// Source is a full-precision model with what an export needs besides the weights.
type Source struct {
	Path    string // model path; "" for the built-in synthetic model
	Cfg     checkpoint.LlamaConfig
	Config  map[string]any            // HF config.json contents
	Tensors []safetensors.NamedTensor // HF-named checkpoint tensors, as stored
	Tok     tokenizer.Tokenizer       // nil when the data are token ids (.jsonl)
	Files   []string                  // tokenizer and other files to copy into an export

	// ck is the mapped checkpoint of a Hugging Face directory: Tensors are views of it, valid
	// until Close.
	ck *safetensors.Checkpoint
}

// tokenizerFiles are copied along when a Hugging Face directory has them.
var tokenizerFiles = []string{"tokenizer.json", "tokenizer_config.json", "tokenizer.model",
	"special_tokens_map.json", "generation_config.json"}

// OpenSource reads a llama2.c checkpoint or a Hugging Face directory. tokPath may be empty:
// a directory's tokenizer.json is used, or for a llama2.c file a tok<vocab>.bin beside it.
func OpenSource(path, tokPath string) (*Source, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	s := &Source{Path: path}
	if st.IsDir() {
		cfg, err := checkpoint.ReadConfig(path)
		if err != nil {
			return nil, err
		}
		s.Cfg = *cfg
		raw, err := os.ReadFile(filepath.Join(path, "config.json"))
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(raw, &s.Config); err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(path, "config.json"), err)
		}
		if _, ok := s.Config["quantization_config"]; ok {
			return nil, fmt.Errorf("%s is already quantized (config.json has a quantization_config): give the full-precision model", path)
		}
		// The tensors stay views of the mapped files (nothing is read until used: a model
		// larger than memory is converted block by block, see NewLazyModel).
		ck, err := safetensors.OpenCheckpoint(path)
		if err != nil {
			return nil, err
		}
		s.ck = ck
		for _, n := range ck.Names() {
			t, err := ck.Tensor(n)
			if err != nil {
				ck.Close()
				return nil, err
			}
			s.Tensors = append(s.Tensors, safetensors.NamedTensor{Name: n, T: t})
		}
		for _, f := range tokenizerFiles {
			if _, err := os.Stat(filepath.Join(path, f)); err == nil {
				s.Files = append(s.Files, filepath.Join(path, f))
			}
		}
	} else {
		cfg, named, err := checkpoint.ReadLlama2C(path)
		if err != nil {
			return nil, err
		}
		s.Cfg, s.Tensors = *cfg, named
		cj, err := checkpoint.ConfigJSON(cfg)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(cj, &s.Config); err != nil {
			return nil, err
		}
	}
	if tokPath == "" {
		tokPath = defaultTokenizer(path, s.Cfg.Vocab)
	}
	if tokPath != "" {
		tok, err := tokenizer.Load(tokPath)
		if err != nil {
			s.Close()
			return nil, err
		}
		if err := tokenizer.CheckVocab(tok, s.Cfg.Vocab); err != nil {
			s.Close()
			return nil, fmt.Errorf("%s: %w", tokPath, err)
		}
		s.Tok = tok
		if !st.IsDir() {
			s.Files = append(s.Files, tokPath)
		}
	}
	return s, nil
}

// NewModel builds a fresh full-precision model from the source (each call returns an
// independent model, so a baseline and a candidate can run side by side).
func (s *Source) NewModel() (*model.Model, error) {
	ts := make(map[string]*tensor.Tensor, len(s.Tensors))
	for _, nt := range s.Tensors {
		ts[nt.Name] = nt.T
	}
	m, err := model.New(s.Cfg, ts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.displayPath(), err)
	}
	return m, nil
}

// Close unmaps a Hugging Face checkpoint (the tensors become invalid); a no-op otherwise.
func (s *Source) Close() error {
	if s == nil || s.ck == nil {
		return nil
	}
	err := s.ck.Close()
	s.ck = nil
	return err
}

// NewLazyModel builds a full-precision model whose decoder blocks are converted from the
// source when used, at most maxBlockBytes of them resident (0: no bound; see
// model.NewLazy), and whose lm_head is read when the head runs (model.Model.ReleaseHead
// drops it). The pages of a mapped checkpoint are released after each conversion.
func (s *Source) NewLazyModel(maxBlockBytes int64) (*model.Model, error) {
	opt := model.LazyOptions{MaxBlockBytes: maxBlockBytes, HeadOnUse: true}
	if s.ck != nil {
		opt.Release = func(names []string) {
			for _, n := range names {
				s.release(n)
			}
		}
	}
	m, err := model.NewLazy(s.Cfg, sourceTensors{s}, opt)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.displayPath(), err)
	}
	return m, nil
}

// sourceTensors is a Source as a model.TensorSource.
type sourceTensors struct{ s *Source }

func (t sourceTensors) Tensor(name string) (*tensor.Tensor, error) {
	if x := t.s.Tensor(name); x != nil {
		return x, nil
	}
	return nil, fmt.Errorf("%s has no tensor %s", t.s.displayPath(), name)
}

// release drops the pages of a mapped checkpoint's tensor (advisory: an error leaves them
// mapped, nothing else).
func (s *Source) release(name string) {
	if s.ck != nil {
		s.ck.Release(name)
	}
}

// Tensor returns a checkpoint tensor by name, or nil.
func (s *Source) Tensor(name string) *tensor.Tensor {
	for _, nt := range s.Tensors {
		if nt.Name == name {
			return nt.T
		}
	}
	return nil
}

// DType is the checkpoint's float dtype (of its first float tensor).
func (s *Source) DType() tensor.DType {
	for _, nt := range s.Tensors {
		if nt.T.DType.IsFloat() {
			return nt.T.DType
		}
	}
	return tensor.F32
}

// Bytes is the total size of the checkpoint's tensors.
func (s *Source) Bytes() int64 {
	var n int64
	for _, nt := range s.Tensors {
		n += int64(len(nt.T.Data))
	}
	return n
}

func (s *Source) displayPath() string {
	if s.Path == "" {
		return "synthetic model"
	}
	return s.Path
}

func cloneTensor(t *tensor.Tensor) *tensor.Tensor {
	return &tensor.Tensor{DType: t.DType, Shape: append([]int(nil), t.Shape...), Data: append([]byte(nil), t.Data...)}
}

// loadModelAndTokenizer loads the model at modelPath (rotated by rot when it is on) and the
// tokenizer for data: tokPath, else the one beside the model (defaultTokenizer); none for
// .jsonl token ids unless tokPath is given.
func loadModelAndTokenizer(modelPath, tokPath, data string, rot Rotation) (*model.Model, tokenizer.Tokenizer, error) {
	m, err := rot.loadModel(modelPath)
	if err != nil {
		return nil, nil, err
	}
	if isJSONL(data) && tokPath == "" {
		return m, nil, nil
	}
	if tokPath == "" {
		if tokPath = defaultTokenizer(modelPath, m.Config.Vocab); tokPath == "" {
			return nil, nil, usagef("no tokenizer found beside %s: give --tokenizer (tok*.bin or tokenizer.json)", modelPath)
		}
	}
	tok, err := tokenizer.Load(tokPath)
	if err != nil {
		return nil, nil, err
	}
	if err := tokenizer.CheckVocab(tok, m.Config.Vocab); err != nil {
		return nil, nil, fmt.Errorf("%s and %s: %w", tokPath, modelPath, err)
	}
	return m, tok, nil
}

// isJSONL reports whether a data file holds token ids (.jsonl) rather than text.
func isJSONL(data string) bool { return strings.EqualFold(filepath.Ext(data), ".jsonl") }

// defaultTokenizer is the one rule for finding a model's tokenizer: tokenizer.json in a
// model directory, or tokenizer.bin / tok<vocab>.bin beside a llama2.c file ("" if none).
func defaultTokenizer(modelPath string, vocab int) string {
	var cands []string
	if st, err := os.Stat(modelPath); err == nil && st.IsDir() {
		cands = []string{filepath.Join(modelPath, "tokenizer.json")}
	} else {
		dir := filepath.Dir(modelPath)
		cands = []string{filepath.Join(dir, "tokenizer.bin"), filepath.Join(dir, fmt.Sprintf("tok%d.bin", vocab))}
	}
	for _, c := range cands {
		if _, err := os.Stat(c); err == nil {
			return c
		}
	}
	return ""
}

// sourceLayers lists the model's linear layers with their shapes, from the configuration
// alone (the order of Layers and of the sensitivity file).
func sourceLayers(src *Source) []plan.Layer {
	c := src.Cfg
	kv := c.KVDim()
	shapes := [7][2]int{{c.Dim, c.Dim}, {kv, c.Dim}, {kv, c.Dim}, {c.Dim, c.Dim}, {c.HiddenDim, c.Dim}, {c.HiddenDim, c.Dim}, {c.Dim, c.HiddenDim}}
	var out []plan.Layer
	for i, n := range linearNames(src) {
		sh := shapes[i%7]
		out = append(out, plan.Layer{Name: n, Rows: sh[0], Cols: sh[1]})
	}
	return out
}

// linearNames lists the model's linear layers (q/k/v/o, gate/up/down of every block) in
// forward order, from the configuration alone.
func linearNames(src *Source) []string {
	var out []string
	for l := 0; l < src.Cfg.Layers; l++ {
		for _, s := range model.LinearSuffixes {
			out = append(out, fmt.Sprintf("model.layers.%d.%s", l, s))
		}
	}
	return out
}

// checkData looks at a data file before any model is loaded (eval.CheckData): text must
// be UTF-8 and printable, token ids within the vocabulary of the model at modelPath (read
// from its configuration only; not checked when it cannot be read cheaply).
func checkData(modelPath, data string) error {
	if data == "" {
		return nil
	}
	vocab := 0
	if isJSONL(data) && modelPath != "" {
		if o, err := checkpoint.OpenAny(modelPath); err == nil {
			if o.Config != nil {
				vocab = o.Config.Vocab
			}
			o.Close()
		}
	}
	return eval.CheckData(data, vocab)
}
