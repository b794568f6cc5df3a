package quant

import (
	"fmt"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// bitwisePack is qtensor.go's rule written out one bit at a time, independently of
// putLevel: bit k of element c's field goes to stream bit c*bits+k, which is bit
// (c*bits+k)%8 of byte (c*bits+k)/8 of the row.
func bitwisePack(levels []int32, rows, cols, bits int) []byte {
	rb := (cols*bits + 7) / 8
	out := make([]byte, rows*rb)
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			u := uint32(levels[r*cols+c])
			for k := 0; k < bits; k++ {
				if u>>k&1 == 1 {
					p := c*bits + k
					out[r*rb+p/8] |= 1 << (p % 8)
				}
			}
		}
	}
	return out
}

func randomLevels(seed uint64, s Scheme, n int) []int32 {
	r := testutil.Rand(seed)
	lo, hi := s.QRange()
	out := make([]int32, n)
	for i := range out {
		out[i] = lo + int32(r.IntN(int(hi-lo+1)))
	}
	if n > 1 {
		out[0], out[n-1] = lo, hi
	}
	return out
}

// Every width, symmetric and not, with row lengths that end inside a byte, on a byte and
// on an eight-level chunk: PackLevels, NewQTensor, Levels and UnpackLevels agree with the
// bit-by-bit rule and invert each other, and the padding bits are zero.
func TestPackRoundTripEveryWidth(t *testing.T) {
	for bits := MinBits; bits <= MaxBits; bits++ {
		for _, sym := range []bool{true, false} {
			for _, cols := range []int{1, 2, 3, 5, 7, 8, 9, 13, 16, 33, 64} {
				s := Scheme{Bits: bits, Symmetric: sym, Granularity: PerChannel}
				name := fmt.Sprintf("%s/cols=%d", s, cols)
				const rows = 5
				levels := randomLevels(uint64(100*bits+cols), s, rows*cols)
				want := bitwisePack(levels, rows, cols, bits)
				require.Len(t, want, rows*RowBytes(bits, cols), name)

				packed, err := PackLevels(s, levels, rows, cols)
				require.NoError(t, err, name)
				require.Equal(t, want, packed, name)
				back, err := UnpackLevels(s, packed, rows, cols)
				require.NoError(t, err, name)
				require.Equal(t, levels, back, name)

				scales := make([]float32, rows)
				for i := range scales {
					scales[i] = 1
				}
				var zeros []int32
				if !sym {
					zeros = make([]int32, rows)
				}
				q, err := NewQTensor("p", s, rows, cols, levels, scales, zeros)
				require.NoError(t, err, name)
				require.Equal(t, want, q.Data, name)
				require.Equal(t, levels, q.Levels(), name)
				// Dequantize with scale 1 and zero 0 gives the levels themselves (both the
				// chunked and the level-by-level loops run for cols >= 9).
				deq := Dequantize(q)
				for i, v := range levels {
					require.Equal(t, float32(v), deq[i], "%s element %d", name, i)
				}
			}
		}
	}
}

// RowBytes by hand: ceil(cols*bits/8).
func TestRowBytes(t *testing.T) {
	for _, c := range []struct{ bits, cols, want int }{
		{8, 5, 5}, {4, 5, 3}, {4, 8, 4}, {3, 8, 3}, {3, 1, 1}, {3, 3, 2}, {5, 8, 5}, {5, 3, 2},
		{6, 4, 3}, {6, 10, 8}, {7, 8, 7}, {7, 9, 8}, {6, 4096, 3072},
	} {
		assert.Equal(t, c.want, RowBytes(c.bits, c.cols), "%d bits x %d", c.bits, c.cols)
	}
}

func TestPackLevelsErrors(t *testing.T) {
	s6 := Scheme{Bits: 6, Symmetric: true, Granularity: PerChannel}
	_, err := PackLevels(s6, []int32{0, 32}, 1, 2)
	require.ErrorContains(t, err, "level 32 at row 0, col 1 outside [-32, 31]")
	_, err = PackLevels(Scheme{Bits: 5, Granularity: PerChannel}, []int32{-1}, 1, 1)
	require.ErrorContains(t, err, "level -1 at row 0, col 0 outside [0, 31]")
	_, err = PackLevels(s6, []int32{0, 1, 2}, 1, 2)
	require.ErrorContains(t, err, "3 levels for shape 1x2")
	_, err = UnpackLevels(s6, make([]byte, 3), 2, 2)
	require.ErrorContains(t, err, "3 bytes of 6-bit levels for shape 2x2 (want 4)")
	_, err = NewQTensor("p", Scheme{Bits: 3, Granularity: PerChannel}, 1, 2, []int32{3, 8}, []float32{1}, []int32{0})
	require.ErrorContains(t, err, "level 8 at row 0, col 1 outside [0, 7]")
}

// putLevel leaves the neighbouring fields alone: writing every element of a row in a
// scrambled order over a row full of ones gives the packed row (padding bits aside).
func TestPutLevelKeepsNeighbours(t *testing.T) {
	for bits := MinBits; bits <= MaxBits; bits++ {
		s := Scheme{Bits: bits, Granularity: PerChannel}
		const cols = 21
		levels := randomLevels(uint64(bits), s, cols)
		row := make([]byte, RowBytes(bits, cols))
		for i := range row {
			row[i] = 0xff
		}
		for k := 0; k < cols; k++ {
			c := (k * 8) % cols // 8 and 21 are coprime: every column once
			putLevel(row, bits, c, levels[c])
		}
		want := bitwisePack(levels, 1, cols, bits)
		if pad := cols * bits % 8; pad != 0 { // the unused high bits of the last byte stay 1
			want[len(want)-1] |= 0xff << pad
		}
		assert.Equal(t, want, row, "bits %d", bits)
	}
}

// DequantizeRowsInto over consecutive row ranges gives Dequantize's matrix bit for bit,
// for 8-, 5-, 4- and 3-bit levels, groups in order and in activation order (GIdx).
func TestDequantizeRowsIntoEqualsDequantize(t *testing.T) {
	const rows, cols = 9, 64
	w := testutil.Gaussian(testutil.Rand(31), rows*cols, 1)
	for _, s := range []Scheme{
		{Bits: 8, Symmetric: true, Granularity: PerChannel},
		{Bits: 4, Granularity: PerGroup, GroupSize: 16},
		{Bits: 3, Symmetric: true, Granularity: PerGroup, GroupSize: 32},
		{Bits: 5, Granularity: PerTensor},
	} {
		q, err := Quantize("w", w, rows, cols, s, SearchOptions{})
		require.NoError(t, err)
		qs := []*QTensor{q}
		if s.Granularity == PerGroup {
			g := *q
			g.GIdx = make([]int32, cols)
			for c := range g.GIdx {
				g.GIdx[c] = int32((c * 5 % cols) / s.GroupSize)
			}
			require.NoError(t, g.Validate())
			qs = append(qs, &g)
		}
		for _, q := range qs {
			want := Dequantize(q)
			for _, step := range []int{1, 2, 4, rows} {
				var got []float32
				buf := make([]float32, step*cols)
				for r0 := 0; r0 < rows; r0 += step {
					got = append(got, DequantizeRowsInto(q, buf, r0, min(r0+step, rows))...)
				}
				assert.Equal(t, want, got, "%s gidx %v, %d rows at a time", s, q.GIdx != nil, step)
			}
		}
	}
}
