package quant

import (
	"fmt"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/tensor"
)

// BenchmarkWidths quantizes (with the error report, QuantizeTensorWithError) and
// dequantizes one BF16 2048x4096 weight at every width, symmetric g128, in the same run:
// 8 and 4 bits (byte and nibble loops) are the baselines of the bit-stream widths (3, 5,
// 6, 7: eight levels a 64-bit word). g43 (groups starting off a multiple of 8, as on
// stories260K's 172-wide MLP) shows the level-by-level head and tail loops. MB/s is BF16
// input (quantize) or float32 output (dequantize) per second:
//
//	go test -run '^$' -bench Widths -cpu 1 ./quant/
func BenchmarkWidths(b *testing.B) {
	const rows, cols = 2048, 4096
	r := testutil.Rand(103)
	bits := make([]uint16, rows*cols)
	for i := range bits {
		bits[i] = tensor.F32ToBF16(float32(r.NormFloat64() * 0.02))
	}
	t := tensor.FromU16(tensor.BF16, bits, rows, cols)
	for _, g := range []int{128, 43} {
		w, c := t, cols
		if g == 43 { // 4085 = 95 * 43 columns
			c = 4085
			w = tensor.FromU16(tensor.BF16, bits[:rows*c], rows, c)
		}
		for _, b8 := range []int{8, 4, 6, 5, 3, 7} {
			s := Scheme{Bits: b8, Symmetric: true, Granularity: PerGroup, GroupSize: g}
			b.Run(fmt.Sprintf("quantize/%s", s), func(b *testing.B) {
				b.SetBytes(int64(len(w.Data)))
				for b.Loop() {
					if _, _, err := QuantizeTensorWithError("w", w, s, SearchOptions{}); err != nil {
						b.Fatal(err)
					}
				}
			})
			q, err := QuantizeTensor("w", w, s, SearchOptions{})
			if err != nil {
				b.Fatal(err)
			}
			b.Run(fmt.Sprintf("dequantize/%s", s), func(b *testing.B) {
				b.SetBytes(int64(4 * rows * c))
				for b.Loop() {
					Dequantize(q)
				}
			})
		}
	}
}
