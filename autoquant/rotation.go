package autoquant

// --rotate: the source checkpoint is rotated (package rotate, QuaRot/SpinQuant-style fused
// rotations) before anything calibrates or quantizes it. The rotated model is an ordinary
// Llama that computes the same function (logits equal to ~1e-6 relative in F32); its
// quantized output is an ordinary Llama checkpoint too, with no runtime change. A source
// that ties lm_head to the embedding comes out untied (the final norm is folded into
// lm_head): config.json says tie_word_embeddings false and the checkpoint gains
// lm_head.weight (vocab x dim).

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/rotate"
	"github.com/autoq/autoq/safetensors"
	"github.com/autoq/autoq/tensor"
)

// Rotation is --rotate and --rotate-seed.
type Rotation struct {
	Kind string // "" or "none": no rotation; hadamard, plain-hadamard, random or identity
	Seed uint64
}

// RotateHelp is the one description of --rotate.
const RotateHelp = "rotate the checkpoint before calibration and quantization (fused orthogonal rotations, QuaRot-style; " +
	"the output is an ordinary Llama, lm_head untied when it was tied): none, hadamard (randomized, random orthogonal " +
	"where no Hadamard matrix of the width exists), plain-hadamard, random or identity (fold the norms only)"

// On reports whether a rotation is asked for.
func (r Rotation) On() bool { return r.Kind != "" && r.Kind != "none" }

func (r Rotation) String() string {
	if !r.On() {
		return "none"
	}
	return fmt.Sprintf("%s (seed %d)", r.Kind, r.Seed)
}

// check validates the kind (a usage error).
func (r Rotation) check() error {
	if !r.On() {
		return nil
	}
	if _, err := rotate.ParseKind(r.Kind); err != nil {
		return usagef("--rotate: %v", err)
	}
	return nil
}

// rotator builds the rotations for cfg.
func (r Rotation) rotator(cfg checkpoint.LlamaConfig) (*rotate.Rotator, error) {
	k, err := rotate.ParseKind(r.Kind)
	if err != nil {
		return nil, usagef("--rotate: %v", err)
	}
	return rotate.New(cfg, r.Seed, rotate.Options{Kind: k})
}

// open opens a checkpoint (checkpoint.OpenAny) and, with a rotation, wraps it in the
// rotated view (tensors rotated as they are read) with the untied config.
func (r Rotation) open(path string) (*checkpoint.Opened, error) {
	o, err := checkpoint.OpenAny(path)
	if err != nil || !r.On() {
		return o, err
	}
	if o.Config == nil {
		o.Close()
		return nil, fmt.Errorf("%s: --rotate needs the model's config: %v", path, o.ConfigErr)
	}
	rot, err := r.rotator(*o.Config)
	if err != nil {
		o.Close()
		return nil, err
	}
	view, err := rot.Wrap(o.Tensors)
	if err != nil {
		o.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	cfg := rot.Config()
	return &checkpoint.Opened{Tensors: view, Config: &cfg, Dir: o.Dir}, nil
}

// loadModel is model.Load, of the rotated checkpoint with a rotation.
func (r Rotation) loadModel(path string) (*model.Model, error) {
	if !r.On() {
		return model.Load(path)
	}
	o, err := r.open(path)
	if err != nil {
		return nil, err
	}
	defer o.Close()
	ts := map[string]*tensor.Tensor{}
	for _, n := range o.Names() {
		if ts[n], err = o.Tensor(n); err != nil {
			return nil, err
		}
	}
	m, err := model.New(*o.Config, ts)
	if err != nil {
		return nil, fmt.Errorf("%s (rotated): %w", path, err)
	}
	return m, nil
}

// rotateSource returns a copy of s rotated (the tensors in their stored dtypes, the config
// untied), or s itself without a rotation.
func (r Rotation) rotateSource(s *Source) (*Source, error) {
	if !r.On() {
		return s, nil
	}
	rot, err := r.rotator(s.Cfg)
	if err != nil {
		return nil, err
	}
	mem, err := checkpoint.NewMemory(s.Tensors, nil)
	if err != nil {
		return nil, err
	}
	view, err := rot.Wrap(mem)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.displayPath(), err)
	}
	out := *s
	out.Cfg = rot.Config()
	out.Tensors = nil
	for _, n := range view.Names() {
		t, err := view.Tensor(n)
		if err != nil {
			return nil, err
		}
		out.Tensors = append(out.Tensors, safetensors.NamedTensor{Name: n, T: t})
	}
	out.Config = make(map[string]any, len(s.Config)+1)
	for k, v := range s.Config {
		out.Config[k] = v
	}
	out.Config["tie_word_embeddings"] = false
	return &out, nil
}

// untieConfigFile sets tie_word_embeddings false in dir/config.json (a rotated output whose
// config.json was copied from the source), keeping every other field.
func untieConfigFile(dir string) error {
	p := filepath.Join(dir, "config.json")
	raw, err := os.ReadFile(p)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	var c map[string]any
	if err := json.Unmarshal(raw, &c); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	c["tie_word_embeddings"] = false
	return writeJSONFile(p, c)
}
