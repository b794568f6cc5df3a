package plan

import (
	"fmt"
	"regexp"
	"strconv"

	"github.com/autoq/autoq/quant"
)

// ActMode says how a layer's input activations are quantized.
type ActMode uint8

const (
	ActNone    ActMode = iota // weight-only
	ActStatic                 // int8, one static per-tensor scale from calibration
	ActDynamic                // int8, per-token scales computed at run time
)

// Choice is one candidate for a layer: full precision, or a weight scheme with optional
// int8 activations. The group size of a group-wise scheme is a request: For fits it to a
// layer's row length.
type Choice struct {
	Full   bool         // keep the layer in 16-bit floating point
	Weight quant.Scheme // when !Full
	Act    ActMode
}

// FullPrecision is the "w16" choice.
var FullPrecision = Choice{Full: true}

var choiceRE = regexp.MustCompile(`^w(4|8|16)(c|t|g([0-9]+))?(a)?(a8(s)?)?$`)

// ParseChoice parses a scheme name:
//
//	w16                 full precision
//	w8, w8c             8-bit per-channel symmetric (weight-only)
//	w8t                 8-bit per-tensor symmetric
//	w4g128, w4g32       4-bit group-wise symmetric, group size 128 / 32
//	w4g128a, w8ca       trailing "a": asymmetric (zero points)
//	w8a8                8-bit per-channel weights, int8 activations with dynamic per-token scales
//	w8a8s               ... with one static per-tensor activation scale from calibration
//
// Without a granularity letter the weights are per channel. The names are those of
// eval.ParseSpec, plus w16.
func ParseChoice(s string) (Choice, error) {
	m := choiceRE.FindStringSubmatch(s)
	if m == nil {
		return Choice{}, fmt.Errorf("unknown scheme %q (examples: w16, w8, w8a8, w8a8s, w4g128, w4g32a)", s)
	}
	if m[1] == "16" {
		if m[2] != "" || m[4] != "" || m[5] != "" {
			return Choice{}, fmt.Errorf("scheme %q: w16 takes no options", s)
		}
		return FullPrecision, nil
	}
	bits, _ := strconv.Atoi(m[1])
	c := Choice{Weight: quant.Scheme{Bits: bits, Symmetric: m[4] == "", Granularity: quant.PerChannel}}
	switch {
	case m[2] == "t":
		c.Weight.Granularity = quant.PerTensor
	case m[3] != "":
		g, err := strconv.Atoi(m[3])
		if err != nil || g <= 0 {
			return Choice{}, fmt.Errorf("scheme %q: bad group size", s)
		}
		c.Weight.Granularity, c.Weight.GroupSize = quant.PerGroup, g
	}
	if m[5] != "" {
		if bits != 8 {
			return Choice{}, fmt.Errorf("scheme %q: int8 activations need 8-bit weights", s)
		}
		c.Act = ActDynamic
		if m[6] != "" {
			c.Act = ActStatic
		}
	}
	return c, c.Weight.Validate()
}

// String is the canonical name ("w16", "w8c", "w4g32a", "w8ca8", "w8ca8s").
func (c Choice) String() string {
	if c.Full {
		return "w16"
	}
	s := c.Weight.String()
	switch c.Act {
	case ActStatic:
		s += "a8s"
	case ActDynamic:
		s += "a8"
	}
	return s
}

// MarshalText and UnmarshalText make a Choice a JSON string.
func (c Choice) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText parses a scheme name.
func (c *Choice) UnmarshalText(b []byte) error {
	v, err := ParseChoice(string(b))
	if err != nil {
		return err
	}
	*c = v
	return nil
}

// FitScheme adapts a group-wise scheme to rows of cols inputs, with the rule of
// gptq/collect.FitGroup so that every package agrees: the group size when it divides cols
// (and is smaller), otherwise the smallest divisor of cols above it (groups never get
// finer than asked), and per-channel when no such divisor below cols exists. A row of 172
// inputs with groups of 32 gets groups of 43; rows of 64 with groups of 128 are per channel.
func FitScheme(s quant.Scheme, cols int) quant.Scheme { return s.FitCols(cols) }

// For returns the weight scheme used on a layer with cols inputs (FitScheme).
func (c Choice) For(cols int) quant.Scheme {
	if c.Full {
		return c.Weight
	}
	return FitScheme(c.Weight, cols)
}

// CostBits is the exact storage of this choice on a [rows, cols] layer in bits: levels
// plus one scale (and zero point) per group. Bits is CostBits / (rows*cols).
func (c Choice) CostBits(rows, cols, scaleBits int) int64 {
	n := int64(rows) * int64(cols)
	if c.Full {
		return 16 * n
	}
	s := c.For(cols)
	if c.Act != ActNone {
		scaleBits = 32 // int-quantized (W8A8) layers store F32 scales (package export)
	}
	var groups int64
	switch s.Granularity {
	case quant.PerTensor:
		groups = 1
	case quant.PerChannel:
		groups = int64(rows)
	case quant.PerGroup:
		groups = int64(rows) * int64(cols/s.GroupSize)
	}
	over := int64(scaleBits)
	if !s.Symmetric {
		over += int64(s.Bits)
	}
	return n*int64(s.Bits) + groups*over
}

// Bits is the storage cost in bits per weight of this choice on a [rows, cols] layer with
// scaleBits-bit scales (see the package comment for the formula).
func (c Choice) Bits(rows, cols, scaleBits int) float64 {
	if c.Full {
		return 16
	}
	s := c.For(cols)
	if c.Act != ActNone {
		scaleBits = 32 // int-quantized (W8A8) layers store F32 scales (package export)
	}
	var perScale float64
	switch s.Granularity {
	case quant.PerTensor:
		perScale = float64(rows * cols)
	case quant.PerChannel:
		perScale = float64(cols)
	case quant.PerGroup:
		perScale = float64(s.GroupSize)
	}
	over := float64(scaleBits)
	if !s.Symmetric {
		over += float64(s.Bits)
	}
	return float64(s.Bits) + over/perScale
}
