package export

import (
	"fmt"
	"sort"

	"github.com/autoq/autoq/quant"
)

// Format names of compressed-tensors (CompressionFormat in compressed_tensors/config).
const (
	FormatPackQuantized  = "pack-quantized"
	FormatIntQuantized   = "int-quantized"
	FormatMixedPrecision = "mixed-precision"
)

// QuantArgs is compressed-tensors' QuantizationArgs as serialised in config.json.
type QuantArgs struct {
	NumBits        int            `json:"num_bits"`
	Type           string         `json:"type"`
	Symmetric      bool           `json:"symmetric"`
	GroupSize      *int           `json:"group_size"`
	Strategy       string         `json:"strategy"`
	BlockStructure any            `json:"block_structure"`
	Dynamic        bool           `json:"dynamic"`
	Actorder       any            `json:"actorder"`
	Observer       string         `json:"observer"`
	ObserverKwargs map[string]any `json:"observer_kwargs"`
}

// ConfigGroup is one entry of config_groups: a scheme and the layers it applies to.
type ConfigGroup struct {
	Targets           []string   `json:"targets"`
	Weights           *QuantArgs `json:"weights"`
	InputActivations  *QuantArgs `json:"input_activations"`
	OutputActivations *QuantArgs `json:"output_activations"`
	Format            string     `json:"format,omitempty"`
}

// QuantizationConfig is the "quantization_config" object added to config.json.
type QuantizationConfig struct {
	QuantMethod            string                  `json:"quant_method"`
	Format                 string                  `json:"format"`
	ConfigGroups           map[string]*ConfigGroup `json:"config_groups"`
	Ignore                 []string                `json:"ignore"`
	KVCacheScheme          any                     `json:"kv_cache_scheme"`
	QuantizationStatus     string                  `json:"quantization_status"`
	GlobalCompressionRatio any                     `json:"global_compression_ratio"`
}

// weightArgs describes an autoq weight scheme in compressed-tensors terms.
func weightArgs(s quant.Scheme) *QuantArgs {
	a := &QuantArgs{NumBits: s.Bits, Type: "int", Symmetric: s.Symmetric, Observer: "minmax", ObserverKwargs: map[string]any{}}
	switch s.Granularity {
	case quant.PerTensor:
		a.Strategy = "tensor"
	case quant.PerChannel:
		a.Strategy = "channel"
	case quant.PerGroup:
		a.Strategy = "group"
		g := s.GroupSize
		a.GroupSize = &g
	}
	return a
}

// activationArgs describes int8 input activations: static per-tensor or dynamic per-token,
// symmetric.
func activationArgs(act *Activation) *QuantArgs {
	a := &QuantArgs{NumBits: 8, Type: "int", Symmetric: true, ObserverKwargs: map[string]any{}}
	if act.Dynamic {
		a.Strategy, a.Dynamic, a.Observer = "token", true, "memoryless"
	} else {
		a.Strategy, a.Observer = "tensor", "minmax"
	}
	return a
}

// schemeFromArgs is the inverse of weightArgs.
func schemeFromArgs(a *QuantArgs) (quant.Scheme, error) {
	if a == nil {
		return quant.Scheme{}, fmt.Errorf("no weights arguments")
	}
	if a.Type != "int" {
		return quant.Scheme{}, fmt.Errorf("weights type %q is not supported (want int)", a.Type)
	}
	s := quant.Scheme{Bits: a.NumBits, Symmetric: a.Symmetric}
	switch a.Strategy {
	case "tensor":
		s.Granularity = quant.PerTensor
	case "channel":
		s.Granularity = quant.PerChannel
	case "group":
		if a.GroupSize == nil {
			return quant.Scheme{}, fmt.Errorf("group strategy without group_size")
		}
		s.Granularity, s.GroupSize = quant.PerGroup, *a.GroupSize
	default:
		return quant.Scheme{}, fmt.Errorf("weights strategy %q is not supported", a.Strategy)
	}
	return s, s.Validate()
}

// layerFormat is the compressed-tensors format a layer is written in: layers with
// quantized input activations are int-quantized (pack-quantized does not carry
// activation quantization), weight-only layers pack-quantized at any width (vLLM's WNA16
// path loads 4- and 8-bit group/channel weights; compressed-tensors itself packs 3 to 8
// bits alike).
func layerFormat(l *Layer) string {
	if l.Act != nil {
		return FormatIntQuantized
	}
	return FormatPackQuantized
}

// buildConfig groups layers with identical weight arguments, activation arguments and
// format into config groups (group_0, group_1, ... in order of first appearance after
// sorting by layer name, so the result does not depend on the input order).
func buildConfig(layers []Layer, ignore []string) *QuantizationConfig {
	order := make([]int, len(layers))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return layers[order[a]].Name < layers[order[b]].Name })
	type key struct {
		scheme quant.Scheme
		act    string
		format string
		gidx   bool // actorder "group": the layer stores weight_g_idx
	}
	groups := map[key]*ConfigGroup{}
	var keys []key
	formats := map[string]bool{}
	for _, i := range order {
		l := &layers[i]
		k := key{scheme: l.Q.Scheme, format: layerFormat(l), gidx: l.Q.GIdx != nil}
		if l.Act != nil {
			k.act = "static"
			if l.Act.Dynamic {
				k.act = "dynamic"
			}
		}
		g, ok := groups[k]
		if !ok {
			g = &ConfigGroup{Weights: weightArgs(l.Q.Scheme), Format: k.format}
			if k.gidx {
				g.Weights.Actorder = "group"
			}
			if l.Act != nil {
				g.InputActivations = activationArgs(l.Act)
			}
			groups[k] = g
			keys = append(keys, k)
		}
		g.Targets = append(g.Targets, l.Name)
		formats[k.format] = true
	}
	cfg := &QuantizationConfig{
		QuantMethod:        "compressed-tensors",
		ConfigGroups:       map[string]*ConfigGroup{},
		Ignore:             append([]string{}, ignore...),
		QuantizationStatus: "compressed",
	}
	sort.Strings(cfg.Ignore)
	for i, k := range keys {
		cfg.ConfigGroups[fmt.Sprintf("group_%d", i)] = groups[k]
	}
	switch len(formats) {
	case 0:
		cfg.Format = FormatPackQuantized
	case 1:
		for f := range formats {
			cfg.Format = f
		}
	default:
		cfg.Format = FormatMixedPrecision
	}
	return cfg
}
