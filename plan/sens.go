package plan

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strings"

	"github.com/autoq/autoq/internal/atomicfile"
	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/tensor"
)

// Damage is what quantizing one layer (alone) with one scheme did to the model's output.
type Damage struct {
	KL       float64 `json:"kl"`        // mean KL(full || quantized) of the next-token distribution, nats per token
	PPL      float64 `json:"ppl"`       // perplexity with only this layer quantized
	PPLDelta float64 `json:"ppl_delta"` // relative perplexity change, (ppl - base) / base
}

// LayerSensitivity is one linear layer's damage per candidate scheme.
type LayerSensitivity struct {
	Name   string            `json:"name"` // module name, e.g. model.layers.0.mlp.down_proj
	Rows   int               `json:"rows"` // outputs
	Cols   int               `json:"cols"` // inputs
	Damage map[string]Damage `json:"damage"`
}

// Params is the layer's weight count.
func (l LayerSensitivity) Params() int { return l.Rows * l.Cols }

// Sensitivity is the file `autoq sensitivity` writes and `autoq plan` reads.
type Sensitivity struct {
	Model       string  `json:"model"`
	Data        string  `json:"data"`
	Tokens      int     `json:"tokens"`       // evaluated tokens
	BaselinePPL float64 `json:"baseline_ppl"` // full precision on the same tokens
	// DType is the model checkpoint's float dtype (F32, F16, BF16): the dtype the export
	// is served in follows from it, and some kernels run only in one.
	DType   string             `json:"dtype,omitempty"`
	Schemes []string           `json:"schemes"`
	Method  string             `json:"method"` // how it was measured (see package pipeline)
	Layers  []LayerSensitivity `json:"layers"`
}

// Validate checks shapes, scheme names and values.
func (s *Sensitivity) Validate() error {
	if len(s.Layers) == 0 {
		return fmt.Errorf("no layers")
	}
	if s.DType != "" {
		if d, err := tensor.ParseDType(s.DType); err != nil || !d.IsFloat() {
			return fmt.Errorf("dtype %q is not F32, F16 or BF16", s.DType)
		}
	}
	seen := map[string]bool{}
	for _, l := range s.Layers {
		if l.Name == "" || seen[l.Name] {
			return fmt.Errorf("layer name %q is empty or repeated", l.Name)
		}
		seen[l.Name] = true
		if strings.ContainsAny(l.Name, `*?[\`) {
			// The planner writes one exact-name rule per layer; a rule is a glob.
			return fmt.Errorf("layer name %q holds a glob character (* ? [ \\), which a plan rule cannot name exactly", l.Name)
		}
		if l.Rows <= 0 || l.Cols <= 0 {
			return fmt.Errorf("layer %q: shape %dx%d", l.Name, l.Rows, l.Cols)
		}
		for name, d := range l.Damage {
			if _, err := quant.ParseRecipe(name); err != nil {
				return fmt.Errorf("layer %q: %w", l.Name, err)
			}
			for _, v := range []float64{d.KL, d.PPL, d.PPLDelta} {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					return fmt.Errorf("layer %q scheme %s: non-finite damage %v", l.Name, name, d)
				}
			}
		}
	}
	return nil
}

// ReadSensitivity loads and validates a sensitivity file.
func ReadSensitivity(path string) (*Sensitivity, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseSensitivity(path, b)
}

// ParseSensitivity decodes and validates the bytes of a sensitivity file; path names it
// in errors.
func ParseSensitivity(path string, b []byte) (*Sensitivity, error) {
	var s Sensitivity
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("sensitivity file %s: %w", path, err)
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("sensitivity file %s: %w", path, err)
	}
	return &s, nil
}

// WriteSensitivity writes s as indented JSON, atomically.
func WriteSensitivity(path string, s *Sensitivity) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, append(b, '\n'), 0o644)
}
