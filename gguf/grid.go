package gguf

import (
	"fmt"
	"math"

	"github.com/autoq/autoq/tensor"
)

// Grid is the fixed quantization grid of a matrix [Rows, Cols] in one block format: every
// block parameter exactly as the block stores it, without the levels. Blocks run along a
// row (the inputs), so every row has Cols/BlockSize blocks and its own parameters.
//
//   - Q8_0, Q4_0, Q5_0 (blocks of 32): D, one F16 scale per block.
//   - Q4_1, Q5_1 (blocks of 32): D and M, an F16 scale and an F16 min per block.
//   - Q4_K (super-blocks of 256): D and M (ggml's d and dmin) per super-block, and per
//     sub-block of 32 a 6-bit scale Sc and a 6-bit min Mn (0..63).
//   - Q6_K (super-blocks of 256): D per super-block and per sub-block of 16 a signed 8-bit
//     scale Sc.
//
// D and M hold F16 bit patterns, indexed [row*blocksPerRow + block]; Sc and Mn are indexed
// [row*subBlocksPerRow + sub].
type Grid struct {
	Name       string // tensor name, for errors
	Type       Type
	Rows, Cols int
	D, M       []uint16
	Sc, Mn     []int8
}

// Quantized is a matrix in a block format, unpacked: its grid and one stored code per
// element (row-major). Codes are what the block stores: Q8_0 signed -128..127; Q4_0 and
// Q4_1 0..15; Q5_0 and Q5_1 0..31; Q4_K 0..15; Q6_K 0..63 (see Cell for their values).
type Quantized struct {
	Grid
	Q []int8
}

// Cell is the grid of one element: code q stands for Value(q), q in [Lo, Hi].
type Cell struct {
	Scale float32
	Zero  int32
	Min   float32
	Lo    int32
	Hi    int32
}

// Value is float32(q-Zero)*Scale + Min, each operation rounded to float32. This is exactly
// llama.cpp's dequantize_row_* for every supported type:
//
//	Q8_0  y = q*d                    Scale d,          Zero 0,  Min 0
//	Q4_0  y = (q-8)*d                Scale d,          Zero 8,  Min 0
//	Q5_0  y = (q-16)*d               Scale d,          Zero 16, Min 0
//	Q4_1  y = q*d + m                Scale d,          Zero 0,  Min m        (also Q5_1)
//	Q4_K  y = (d*sc)*q - (dmin*mn)   Scale fl(d*sc),   Zero 0,  Min -fl(dmin*mn)
//	Q6_K  y = (d*sc)*(q-32)          Scale fl(d*sc),   Zero 32, Min 0
//
// (Adding Min = 0 is exact, and a - b equals a + (-b) in IEEE arithmetic.)
func (c Cell) Value(q int32) float32 {
	return float32(float32(q-c.Zero)*c.Scale) + c.Min
}

// Nearest returns the code in [Lo, Hi] whose Value is nearest to x: the round-to-nearest
// estimate clamp(rne((x-Min)/Scale) + Zero) is checked against its two neighbours on the
// exact Values, so float rounding never picks a farther level (ties keep the estimate).
// A cell with scale 0 holds one value (Min) and returns Zero clamped to the range.
func (c Cell) Nearest(x float32) int32 {
	if c.Scale == 0 {
		return min(max(c.Zero, c.Lo), c.Hi)
	}
	r := math.RoundToEven(float64((x-c.Min)/c.Scale)) + float64(c.Zero)
	q := int32(min(max(r, float64(c.Lo)), float64(c.Hi)))
	best, bestErr := q, absDiff(c.Value(q), x)
	for _, n := range [2]int32{q - 1, q + 1} {
		if n < c.Lo || n > c.Hi {
			continue
		}
		if e := absDiff(c.Value(n), x); e < bestErr {
			best, bestErr = n, e
		}
	}
	return best
}

func absDiff(a, b float32) float64 { return math.Abs(float64(a) - float64(b)) }

// codeRange is the stored code range of t.
func codeRange(t Type) (lo, hi int32) {
	switch t {
	case Q8_0:
		return -128, 127
	case Q4_0, Q4_1, Q4_K:
		return 0, 15
	case Q5_0, Q5_1:
		return 0, 31
	case Q6_K:
		return 0, 63
	}
	return 0, 0
}

// SubBlock is the number of consecutive elements of a row that share one Cell: 32, or 16
// for Q6_K.
func (g *Grid) SubBlock() int {
	if g.Type == Q6_K {
		return 16
	}
	return 32
}

// CellAt returns the grid of element (row, col). The grid must be valid (Validate).
func (g *Grid) CellAt(row, col int) Cell {
	return g.subCell(row, col/g.SubBlock())
}

// subCell returns the cell of sub-block s of a row.
func (g *Grid) subCell(row, s int) Cell {
	lo, hi := codeRange(g.Type)
	c := Cell{Lo: lo, Hi: hi}
	f16 := tensor.F16ToF32
	switch g.Type {
	case Q8_0:
		c.Scale = f16(g.D[row*g.Cols/32+s])
	case Q4_0, Q5_0:
		c.Scale, c.Zero = f16(g.D[row*g.Cols/32+s]), (hi+1)/2
	case Q4_1, Q5_1:
		b := row*g.Cols/32 + s
		c.Scale, c.Min = f16(g.D[b]), f16(g.M[b])
	case Q4_K:
		b := row*g.Cols/QKK + s/8
		i := row*g.Cols/32 + s
		c.Scale = f16(g.D[b]) * float32(g.Sc[i])
		c.Min = -(f16(g.M[b]) * float32(g.Mn[i]))
	case Q6_K:
		b := row*g.Cols/QKK + s/16
		c.Scale, c.Zero = f16(g.D[b])*float32(g.Sc[row*g.Cols/16+s]), 32
	}
	return c
}

// Validate checks the type, the shape against the block size and the parameter counts
// and ranges (finite F16 values, 6-bit Q4_K scales and mins).
func (g *Grid) Validate() error {
	if !isBlockType(g.Type) {
		return fmt.Errorf("gguf: tensor %q: %s is not a block format this package quantizes", g.Name, g.Type)
	}
	if g.Rows <= 0 || g.Cols <= 0 || g.Cols%g.Type.BlockSize() != 0 {
		return fmt.Errorf("gguf: tensor %q: shape %dx%d: width %d is not a positive multiple of %s's block size %d (keep this tensor F16/F32)", g.Name, g.Rows, g.Cols, g.Cols, g.Type, g.Type.BlockSize())
	}
	nb := g.Rows * g.Cols / g.Type.BlockSize()
	ns := g.Rows * g.Cols / g.SubBlock()
	wantM, wantSc, wantMn := 0, 0, 0
	switch g.Type {
	case Q4_1, Q5_1:
		wantM = nb
	case Q4_K:
		wantM, wantSc, wantMn = nb, ns, ns
	case Q6_K:
		wantSc = ns
	}
	if len(g.D) != nb || len(g.M) != wantM || len(g.Sc) != wantSc || len(g.Mn) != wantMn {
		return fmt.Errorf("gguf: tensor %q: %s grid for %dx%d has %d/%d/%d/%d d/m/scales/mins (want %d/%d/%d/%d)",
			g.Name, g.Type, g.Rows, g.Cols, len(g.D), len(g.M), len(g.Sc), len(g.Mn), nb, wantM, wantSc, wantMn)
	}
	for _, p := range [2][]uint16{g.D, g.M} {
		for i, h := range p {
			if v := tensor.F16ToF32(h); math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("gguf: tensor %q: block %d (row %d): F16 parameter %v is not finite", g.Name, i, i/(g.Cols/g.Type.BlockSize()), v)
			}
		}
	}
	if g.Type == Q4_K {
		for _, p := range [2][]int8{g.Sc, g.Mn} {
			for i, v := range p {
				if v < 0 || v > 63 {
					return fmt.Errorf("gguf: tensor %q: sub-block %d (row %d): 6-bit scale/min %d outside [0, 63]", g.Name, i, i/(g.Cols/32), v)
				}
			}
		}
	}
	return nil
}

func isBlockType(t Type) bool {
	switch t {
	case Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q6_K:
		return true
	}
	return false
}

// NewGrid allocates a zero grid of type t for a rows x cols matrix, refusing a width that
// is not a multiple of the block size with an error naming the tensor, width and type.
func NewGrid(name string, t Type, rows, cols int) (*Grid, error) {
	g := &Grid{Name: name, Type: t, Rows: rows, Cols: cols}
	if !isBlockType(t) {
		return nil, fmt.Errorf("gguf: tensor %q: %s is not a block format this package quantizes", name, t)
	}
	if rows <= 0 || cols <= 0 || cols%t.BlockSize() != 0 {
		return nil, fmt.Errorf("gguf: tensor %q: width %d is not a multiple of %s's block size %d (keep this tensor F16/F32)", name, cols, t, t.BlockSize())
	}
	nb, ns := rows*cols/t.BlockSize(), rows*cols/g.SubBlock()
	g.D = make([]uint16, nb)
	switch t {
	case Q4_1, Q5_1:
		g.M = make([]uint16, nb)
	case Q4_K:
		g.M, g.Sc, g.Mn = make([]uint16, nb), make([]int8, ns), make([]int8, ns)
	case Q6_K:
		g.Sc = make([]int8, ns)
	}
	return g, nil
}

// RoundNearest quantizes w (rows x cols, row-major) onto the grid: every element gets its
// Cell's Nearest code. NaN or Inf is an error naming the tensor, row and column.
func (g *Grid) RoundNearest(w []float32) (*Quantized, error) {
	if err := g.Validate(); err != nil {
		return nil, err
	}
	if len(w) != g.Rows*g.Cols {
		return nil, fmt.Errorf("gguf: tensor %q: %d values for %dx%d", g.Name, len(w), g.Rows, g.Cols)
	}
	q := &Quantized{Grid: *g, Q: make([]int8, len(w))}
	sb := g.SubBlock()
	for r := 0; r < g.Rows; r++ {
		for s := 0; s < g.Cols/sb; s++ {
			c := g.subCell(r, s)
			for j := s * sb; j < (s+1)*sb; j++ {
				x := w[r*g.Cols+j]
				if x-x != 0 {
					return nil, fmt.Errorf("gguf: tensor %q: non-finite value %v at row %d, col %d", g.Name, x, r, j)
				}
				q.Q[r*g.Cols+j] = int8(c.Nearest(x))
			}
		}
	}
	return q, nil
}

// Dequantize returns the values the codes stand for (Cell.Value per element): exactly
// what llama.cpp's dequantize_row_* computes from the encoded blocks.
func (q *Quantized) Dequantize() ([]float32, error) {
	if err := q.check(); err != nil {
		return nil, err
	}
	out := make([]float32, len(q.Q))
	sb := q.SubBlock()
	for r := 0; r < q.Rows; r++ {
		for s := 0; s < q.Cols/sb; s++ {
			c := q.subCell(r, s)
			for j := s * sb; j < (s+1)*sb; j++ {
				out[r*q.Cols+j] = c.Value(int32(q.Q[r*q.Cols+j]))
			}
		}
	}
	return out, nil
}

// check validates the grid and the codes' count and range.
func (q *Quantized) check() error {
	if err := q.Validate(); err != nil {
		return err
	}
	if len(q.Q) != q.Rows*q.Cols {
		return fmt.Errorf("gguf: tensor %q: %d codes for %dx%d", q.Name, len(q.Q), q.Rows, q.Cols)
	}
	lo, hi := codeRange(q.Type)
	for i, v := range q.Q {
		if int32(v) < lo || int32(v) > hi {
			return fmt.Errorf("gguf: tensor %q: code %d at row %d, col %d outside %s's [%d, %d]", q.Name, v, i/q.Cols, i%q.Cols, q.Type, lo, hi)
		}
	}
	return nil
}
