package quant

import (
	"fmt"

	"github.com/autoq/autoq/tensor"
)

// RoundScalesF16 returns scales rounded to the nearest F16 value (ties to even), for
// checkpoints that store scales in F16. Quantize with the rounded scales
// (QuantizeWithParams) so that the stored F16 scales are exactly the ones the levels were
// computed with; rounding after quantizing would shift every dequantized value. A scale
// that overflows F16 (above 65504 after rounding) or rounds to 0 is an error naming the
// tensor and the scale's index.
func RoundScalesF16(name string, scales []float32) ([]float32, error) {
	out := make([]float32, len(scales))
	for i, s := range scales {
		h := tensor.F32ToF16(s)
		r := tensor.F16ToF32(h)
		if !isFinite32(r) || r <= 0 {
			return nil, fmt.Errorf("quant: tensor %q: scale %d (%v) is not a positive finite F16 value once rounded (%v)", name, i, s, r)
		}
		out[i] = r
	}
	return out, nil
}
