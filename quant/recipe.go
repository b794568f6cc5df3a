package quant

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// ActMode says how a layer's input activations are quantized.
type ActMode uint8

const (
	ActNone    ActMode = iota // weight-only: the input stays floating point
	ActStatic                 // int8, one static per-tensor scale from calibration (amax / 127)
	ActDynamic                // int8, per-token scales computed at run time (row amax / 127)
)

var actModeNames = []string{ActNone: "none", ActStatic: "static", ActDynamic: "per-token"}

func (a ActMode) String() string { return EnumName("ActMode", a, actModeNames) }

// Rounding is how a recipe's weights are rounded to their levels.
type Rounding uint8

const (
	RoundDefault Rounding = iota // the job's default (GPTQ for int4 where calibration data exist)
	RoundRTN                     // round to nearest
	RoundGPTQ                    // GPTQ error compensation with the layer's input Hessian
	RoundRef                     // llama.cpp's own quantizer (block formats only: the reference to compare with)
)

var roundingNames = []string{RoundDefault: "default", RoundRTN: "rtn", RoundGPTQ: "gptq", RoundRef: "ref"}

func (r Rounding) String() string { return EnumName("Rounding", r, roundingNames) }

// Recipe is how one linear layer is quantized: full precision, or a weight scheme with an
// activation mode, optionally with its rounding. It is the one vocabulary of every job
// (eval, sensitivity, plan, export, quantize) and of the model runners; ParseRecipe and
// String are its one grammar. The group size of a group-wise scheme is a request: For fits
// it to a layer's row length (Scheme.FitCols).
//
// A recipe named after a llama.cpp block format ("q4_k", "q8_0") stores its weights in
// that format (Block; the GGUF export): Weight is then the scheme of its levels
// (Block.Scheme), and Bits/CostBits are llama.cpp's accounting of the format.
type Recipe struct {
	Full     bool   // keep the layer in 16-bit floating point ("w16")
	Weight   Scheme // when !Full
	Act      ActMode
	Rounding Rounding
	Block    Block // a llama.cpp block format, or BlockNone
}

// FullPrecision is the "w16" recipe.
var FullPrecision = Recipe{Full: true}

var (
	recipeRE = regexp.MustCompile(`^w([3-8]|16)(c|t|g([0-9]+))?(a)?(a8(s)?)?(\+(rtn|gptq|ref))?$`)
	blockRE  = regexp.MustCompile(`^(q[0-9]_[0-9k])(\+(rtn|gptq|ref))?$`)
)

// ParseRecipe reads a recipe name:
//
//	w16                 full precision
//	w8, w8c             8-bit per-channel symmetric (weight-only)
//	w8t                 8-bit per-tensor symmetric
//	w4g128, w4g32       4-bit group-wise symmetric, group size 128 / 32
//	w6g32, w5c, w3g128  any width from 3 to 8 bits (quant.MinBits..MaxBits)
//	w4g128a, w8ca       trailing "a": asymmetric (zero points)
//	w8a8                8-bit per-channel weights, int8 activations with dynamic per-token scales
//	w8a8s               ... with one static per-tensor activation scale from calibration
//	w4g32a+gptq         a "+rtn" or "+gptq" suffix fixes the rounding (default: the job's)
//	q8_0, q4_0, q4_1    llama.cpp's block formats (GGUF): q8_0 = w8g32, q4_0 = w4g32,
//	q5_0, q5_1          q4_1 = w4g32a, q5_0 = w5g32, q5_1 = w5g32a, each with F16 block
//	q4_k, q6_k          parameters; the k-quants q4_k (4-bit, super-blocks of 256 with
//	                    6-bit sub-block scales and mins) and q6_k (6-bit, int8 scales per 16)
//	q4_k+gptq, q4_0+ref ... with a rounding; "+ref" is llama.cpp's own quantizer
//
// Without a granularity letter the weights are per channel. Letters are case-insensitive
// and surrounding spaces are ignored.
func ParseRecipe(s string) (Recipe, error) {
	low := strings.ToLower(strings.TrimSpace(s))
	if m := blockRE.FindStringSubmatch(low); m != nil {
		b, err := ParseBlock(m[1])
		if err != nil {
			return Recipe{}, fmt.Errorf("scheme %q: %w", s, err)
		}
		return Recipe{Weight: b.Scheme(), Block: b, Rounding: parseRounding(m[3])}, nil
	}
	m := recipeRE.FindStringSubmatch(low)
	if m == nil {
		return Recipe{}, fmt.Errorf("unknown scheme %q (examples: w16, w8, w8a8, w8a8s, w6g32a, w4g128, w4g32a+gptq, w3g32a, q4_k, q8_0; weights take 3 to 8 bits, or 16)", s)
	}
	if m[8] == "ref" {
		return Recipe{}, fmt.Errorf("scheme %q: \"+ref\" (llama.cpp's own quantizer) applies to its block formats only (q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q6_k)", s)
	}
	if m[1] == "16" {
		if m[2] != "" || m[4] != "" || m[5] != "" || m[7] != "" {
			return Recipe{}, fmt.Errorf("scheme %q: w16 takes no options", s)
		}
		return FullPrecision, nil
	}
	bits, _ := strconv.Atoi(m[1])
	r := Recipe{Weight: Scheme{Bits: bits, Symmetric: m[4] == "", Granularity: PerChannel}}
	switch {
	case m[2] == "t":
		r.Weight.Granularity = PerTensor
	case m[3] != "":
		g, err := strconv.Atoi(m[3])
		if err != nil || g <= 0 {
			return Recipe{}, fmt.Errorf("scheme %q: bad group size", s)
		}
		r.Weight.Granularity, r.Weight.GroupSize = PerGroup, g
	}
	if m[5] != "" {
		if bits != 8 {
			return Recipe{}, fmt.Errorf("scheme %q: int8 activations need 8-bit weights", s)
		}
		r.Act = ActDynamic
		if m[6] != "" {
			r.Act = ActStatic
		}
	}
	r.Rounding = parseRounding(m[8])
	if err := r.Weight.Validate(); err != nil {
		return Recipe{}, fmt.Errorf("scheme %q: %w", s, err)
	}
	return r, nil
}

func parseRounding(s string) Rounding {
	switch s {
	case "rtn":
		return RoundRTN
	case "gptq":
		return RoundGPTQ
	case "ref":
		return RoundRef
	}
	return RoundDefault
}

// String is the canonical name ("w16", "w8c", "w4g32a", "w8ca8", "w8ca8s", "w4g32a+gptq",
// "q4_k", "q4_0+ref").
func (r Recipe) String() string {
	if r.Full {
		return "w16"
	}
	s := r.Weight.String()
	if r.Block != BlockNone {
		s = r.Block.String()
	}
	switch r.Act {
	case ActStatic:
		s += "a8s"
	case ActDynamic:
		s += "a8"
	}
	if r.Rounding != RoundDefault {
		s += "+" + r.Rounding.String()
	}
	return s
}

// MarshalText and UnmarshalText make a Recipe a JSON string.
func (r Recipe) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText parses a recipe name.
func (r *Recipe) UnmarshalText(b []byte) error {
	v, err := ParseRecipe(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// For returns the weight scheme the recipe gives a layer with cols inputs: the one place
// where a recipe meets a tensor shape (Scheme.FitCols).
func (r Recipe) For(cols int) Scheme {
	if r.Full || r.Block != BlockNone { // a block format's runs of inputs are fixed
		return r.Weight
	}
	return r.Weight.FitCols(cols)
}

// storedScaleBits is the scale width a layer stores: int8-activation (W8A8) layers keep
// F32 scales (compressed-tensors' int-quantized format), others scaleBits.
func (r Recipe) storedScaleBits(scaleBits int) int {
	if r.Act != ActNone {
		return 32
	}
	return scaleBits
}

// CostBits is the exact storage of this recipe on a [rows, cols] layer in bits: levels
// plus one scale (and zero point) per group. Bits is CostBits / (rows*cols).
func (r Recipe) CostBits(rows, cols, scaleBits int) int64 {
	n := int64(rows) * int64(cols)
	if r.Full {
		return 16 * n
	}
	if b := r.Block; b != BlockNone { // llama.cpp's accounting: whole blocks (a width that is no multiple is refused by the target)
		return (n + int64(b.Size()) - 1) / int64(b.Size()) * int64(blockInfos[b].bytes) * 8
	}
	s := r.For(cols)
	var groups int64
	switch s.Granularity {
	case PerTensor:
		groups = 1
	case PerChannel:
		groups = int64(rows)
	case PerGroup:
		groups = int64(rows) * int64(cols/s.GroupSize)
	}
	over := int64(r.storedScaleBits(scaleBits))
	if !s.Symmetric {
		over += int64(s.Bits)
	}
	return n*int64(s.Bits) + groups*over
}

// Bits is the storage cost in bits per weight of this recipe on a [rows, cols] layer with
// scaleBits-bit scales: b + (S + Z) / G (package plan's comment has the formula).
func (r Recipe) Bits(rows, cols, scaleBits int) float64 {
	if r.Full {
		return 16
	}
	if r.Block != BlockNone {
		return r.Block.BitsPerWeight()
	}
	s := r.For(cols)
	var perScale float64
	switch s.Granularity {
	case PerTensor:
		perScale = float64(rows * cols)
	case PerChannel:
		perScale = float64(cols)
	case PerGroup:
		perScale = float64(s.GroupSize)
	}
	over := float64(r.storedScaleBits(scaleBits))
	if !s.Symmetric {
		over += float64(s.Bits)
	}
	return float64(s.Bits) + over/perScale
}
