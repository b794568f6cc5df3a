package plan

import (
	"encoding/json"
	"fmt"
	"os"
	"path"

	"github.com/autoq/autoq/internal/atomicfile"
	"github.com/autoq/autoq/quant"
)

// Rule maps a layer-name glob (path.Match syntax: '*' matches within a name, e.g.
// "*.o_proj") to a scheme.
type Rule struct {
	Pattern string       `json:"pattern"`
	Scheme  quant.Recipe `json:"scheme"`
}

// Plan is the editable plan file: rules are tried in order and the first match wins; a
// layer no rule matches stays in full precision. Summary fields are informative (written
// by the planner, ignored when applying).
type Plan struct {
	Version int    `json:"version"`
	Source  string `json:"source"` // "auto", "preset", "uniform"
	// Target is the export target the plan was made for (autoq export uses it unless
	// told otherwise); empty for presets and uniform plans.
	Target    string `json:"target,omitempty"`
	ScaleBits int    `json:"scale_bits"`
	// Int4Method names the quantizer the pipeline should use for weights below 8 bits (int4
	// and the 3- to 7-bit widths; "best": the most accurate available, e.g. GPTQ; "rtn":
	// round to nearest).
	Int4Method      string  `json:"int4_method,omitempty"`
	TargetBits      float64 `json:"target_bits,omitempty"`
	MaxDamage       float64 `json:"max_damage,omitempty"`
	AvgBits         float64 `json:"avg_bits,omitempty"`
	PredictedDamage float64 `json:"predicted_damage,omitempty"`
	Metric          string  `json:"metric,omitempty"`
	Rules           []Rule  `json:"rules"`
}

// Layer is a linear layer's name and shape, what a plan is applied to.
type Layer struct {
	Name string
	Rows int
	Cols int
}

// SchemeFor returns the first matching rule's scheme, or full precision.
func (p *Plan) SchemeFor(name string) (quant.Recipe, error) {
	for _, r := range p.Rules {
		ok, err := path.Match(r.Pattern, name)
		if err != nil {
			return quant.Recipe{}, fmt.Errorf("plan rule %q: %w", r.Pattern, err)
		}
		if ok {
			return r.Scheme, nil
		}
	}
	return quant.FullPrecision, nil
}

// Resolve assigns a scheme to every layer.
func (p *Plan) Resolve(layers []Layer) ([]quant.Recipe, error) {
	out := make([]quant.Recipe, len(layers))
	for i, l := range layers {
		c, err := p.SchemeFor(l.Name)
		if err != nil {
			return nil, err
		}
		out[i] = c
	}
	return out, nil
}

// AverageBits is the parameter-weighted average bits per weight of assigning choices to layers.
func AverageBits(layers []Layer, choices []quant.Recipe, scaleBits int) float64 {
	var bits, params float64
	for i, l := range layers {
		n := float64(l.Rows * l.Cols)
		bits += n * choices[i].Bits(l.Rows, l.Cols, scaleBits)
		params += n
	}
	if params == 0 {
		return 0
	}
	return bits / params
}

// Preset is the usual hand-written starting point: query and key (and value) projections
// 8-bit per channel, the attention output projection kept at 16 bits, the MLP 4-bit
// group-wise with the given int4 scheme (e.g. w4g128).
func Preset(int4 quant.Recipe, scaleBits int) *Plan {
	w8, _ := quant.ParseRecipe("w8")
	return &Plan{Version: 1, Source: "preset", ScaleBits: scaleBits, Int4Method: "best", Rules: []Rule{
		{Pattern: "*.q_proj", Scheme: w8},
		{Pattern: "*.k_proj", Scheme: w8},
		{Pattern: "*.v_proj", Scheme: w8},
		{Pattern: "*.o_proj", Scheme: quant.FullPrecision},
		{Pattern: "*.gate_proj", Scheme: int4},
		{Pattern: "*.up_proj", Scheme: int4},
		{Pattern: "*.down_proj", Scheme: int4},
	}}
}

// Uniform applies one scheme to every layer.
func Uniform(c quant.Recipe, scaleBits int) *Plan {
	return &Plan{Version: 1, Source: "uniform", ScaleBits: scaleBits, Int4Method: "best", Rules: []Rule{{Pattern: "*", Scheme: c}}}
}

// ParseOverride parses "GLOB=SCHEME".
func ParseOverride(s string) (Rule, error) {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '=' {
			c, err := quant.ParseRecipe(s[i+1:])
			if err != nil {
				return Rule{}, fmt.Errorf("override %q: %w", s, err)
			}
			if _, err := path.Match(s[:i], ""); err != nil || i == 0 {
				return Rule{}, fmt.Errorf("override %q: bad pattern", s)
			}
			return Rule{Pattern: s[:i], Scheme: c}, nil
		}
	}
	return Rule{}, fmt.Errorf("override %q: want GLOB=SCHEME, e.g. '*.o_proj=w16'", s)
}

// Read loads a plan file.
func Read(file string) (*Plan, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return Parse(file, b)
}

// Parse checks and decodes the bytes of a plan file; file names it in errors.
func Parse(file string, b []byte) (*Plan, error) {
	var p Plan
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("plan file %s: %w", file, err)
	}
	if p.Version != 1 {
		return nil, fmt.Errorf("plan file %s: version %d (want 1)", file, p.Version)
	}
	if p.ScaleBits <= 0 {
		p.ScaleBits = 16
	}
	for i, r := range p.Rules {
		if r.Pattern == "" {
			return nil, fmt.Errorf("plan file %s: rule %d has no pattern", file, i)
		}
		if _, err := path.Match(r.Pattern, ""); err != nil {
			return nil, fmt.Errorf("plan file %s: rule %q: %w", file, r.Pattern, err)
		}
		// A rule without "scheme" decodes to the zero quant.Recipe (0-bit weights): refuse it.
		if _, err := quant.ParseRecipe(r.Scheme.String()); err != nil {
			return nil, fmt.Errorf("plan file %s: rule %q has no valid scheme", file, r.Pattern)
		}
	}
	return &p, nil
}

// Write saves a plan file atomically as indented JSON.
func Write(file string, p *Plan) error {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(file, append(b, '\n'), 0o644)
}
