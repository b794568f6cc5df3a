package gguf

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// handCase is one block written out byte by byte from the layouts in ggml-common.h, with
// the values dequantize_row_* gives for it.
type handCase struct {
	q     *Quantized
	bytes string // hex
	value func(e int) float32
}

func handCases() map[Type]handCase {
	codes := func(n int, f func(e int) int) []int8 {
		q := make([]int8, n)
		for e := range q {
			q[e] = int8(f(e))
		}
		return q
	}
	nib := "00112233445566778899aabbccddeeff" // byte j = (j<<4)|j
	grid := func(t Type, cols int) Grid { return Grid{Name: "hand", Type: t, Rows: 1, Cols: cols} }
	cs := map[Type]handCase{}

	g := grid(Q8_0, 32)
	g.D = []uint16{0x3800} // 0.5
	var q8 strings.Builder
	for e := 0; e < 32; e++ {
		q8.WriteString(hex.EncodeToString([]byte{byte(int8(e*8 - 128))}))
	}
	cs[Q8_0] = handCase{&Quantized{g, codes(32, func(e int) int { return e*8 - 128 })}, "0038" + q8.String(),
		func(e int) float32 { return float32(e*8-128) * 0.5 }}

	g = grid(Q4_0, 32)
	g.D = []uint16{0x4000} // 2
	cs[Q4_0] = handCase{&Quantized{g, codes(32, func(e int) int { return e % 16 })}, "0040" + nib,
		func(e int) float32 { return float32(e%16-8) * 2 }}

	g = grid(Q4_1, 32)
	g.D, g.M = []uint16{0x3c00}, []uint16{0xc200} // 1, -3
	cs[Q4_1] = handCase{&Quantized{g, codes(32, func(e int) int { return 15 - e%16 })}, "003c00c2" + "ffeeddccbbaa99887766554433221100",
		func(e int) float32 { return float32(15-e%16) - 3 }}

	g = grid(Q5_0, 32)
	g.D = []uint16{0x3c00}
	cs[Q5_0] = handCase{&Quantized{g, codes(32, func(e int) int { return e })}, "003c" + "0000ffff" + nib,
		func(e int) float32 { return float32(e - 16) }}

	g = grid(Q5_1, 32)
	g.D, g.M = []uint16{0x3400}, []uint16{0x3c00} // 0.25, 1
	cs[Q5_1] = handCase{&Quantized{g, codes(32, func(e int) int { return 31 - e })}, "0034003c" + "ffff0000" + "ffeeddccbbaa99887766554433221100",
		func(e int) float32 { return float32(31-e)*0.25 + 1 }}

	g = grid(Q4_K, 256)
	g.D, g.M = []uint16{0x3c00}, []uint16{0x3800} // d 1, dmin 0.5
	g.Sc = []int8{1, 2, 3, 4, 17, 33, 49, 63}
	g.Mn = []int8{5, 6, 7, 8, 20, 40, 60, 16}
	sc, mn := g.Sc, g.Mn
	cs[Q4_K] = handCase{&Quantized{g, codes(256, func(e int) int { return e % 16 })},
		"003c0038" + "4182c3c44586c748" + "4181c10f" + strings.Repeat(nib+nib, 4),
		func(e int) float32 { return float32(sc[e/32])*float32(e%16) - 0.5*float32(mn[e/32]) }}

	g = grid(Q6_K, 256)
	g.D = []uint16{0x3000} // 0.125
	g.Sc = make([]int8, 16)
	for j := range g.Sc {
		g.Sc[j] = int8(j - 8)
	}
	sc6 := g.Sc
	half := nib + nib + nib + nib
	qh := strings.Repeat("88", 16) + strings.Repeat("dd", 16)
	cs[Q6_K] = handCase{&Quantized{g, codes(256, func(e int) int { return e % 64 })},
		half + half + qh + qh + "f8f9fafbfcfdfeff0001020304050607" + "0030",
		func(e int) float32 { return 0.125 * float32(sc6[e/16]) * float32(e%64-32) }}
	return cs
}

func TestBlockLayoutsByHand(t *testing.T) {
	for typ, c := range handCases() {
		t.Run(typ.String(), func(t *testing.T) {
			raw, err := c.q.Encode()
			require.NoError(t, err)
			assert.Equal(t, c.bytes, hex.EncodeToString(raw))
			assert.Len(t, raw, typ.BlockBytes())
			back, err := Unpack("hand", typ, 1, c.q.Cols, raw)
			require.NoError(t, err)
			assert.Equal(t, c.q.Q, back.Q)
			assert.Equal(t, c.q.Grid, back.Grid)
			vals, err := Dequantize("hand", typ, 1, c.q.Cols, raw)
			require.NoError(t, err)
			for e, v := range vals {
				require.Equal(t, c.value(e), v, "element %d", e)
			}
		})
	}
}

// randomQuantized draws a valid grid and codes of type t.
func randomQuantized(t Type, rows, cols int, seed uint64) *Quantized {
	r := testutil.Rand(seed)
	g, _ := NewGrid("rand", t, rows, cols)
	for i := range g.D {
		g.D[i] = tensor.F32ToF16(float32(r.ExpFloat64() * 0.01))
	}
	for i := range g.M {
		g.M[i] = tensor.F32ToF16(float32(r.NormFloat64() * 0.05))
		if t == Q4_K {
			g.M[i] = tensor.F32ToF16(float32(r.ExpFloat64() * 0.01))
		}
	}
	for i := range g.Sc {
		if t == Q4_K {
			g.Sc[i], g.Mn[i] = int8(r.IntN(64)), int8(r.IntN(64))
		} else {
			g.Sc[i] = int8(r.IntN(256) - 128)
		}
	}
	lo, hi := codeRange(t)
	q := &Quantized{Grid: *g, Q: make([]int8, rows*cols)}
	for i := range q.Q {
		q.Q[i] = int8(lo + r.Int32N(hi-lo+1))
	}
	return q
}

func TestEncodeUnpackRoundTripAndDequantizeAgree(t *testing.T) {
	for _, typ := range []Type{Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q6_K} {
		q := randomQuantized(typ, 3, 512, uint64(typ))
		raw, err := q.Encode()
		require.NoError(t, err)
		rb, _ := typ.RowBytes(512)
		require.Len(t, raw, 3*rb)
		back, err := Unpack("rand", typ, 3, 512, raw)
		require.NoError(t, err)
		require.Equal(t, q.Q, back.Q, typ.String())
		require.Equal(t, q.Grid, back.Grid, typ.String())
		again, err := back.Encode()
		require.NoError(t, err)
		require.Equal(t, raw, again, "%s: encode(unpack(b)) == b", typ)
		vals, err := q.Dequantize()
		require.NoError(t, err)
		for i, v := range vals {
			require.Equal(t, q.CellAt(i/512, i%512).Value(int32(q.Q[i])), v)
		}
	}
}

func TestEncodeRefusesBadCodesAndGrids(t *testing.T) {
	q := randomQuantized(Q4_0, 1, 32, 1)
	q.Q[5] = 16
	_, err := q.Encode()
	assert.ErrorContains(t, err, `tensor "rand": code 16 at row 0, col 5 outside Q4_0's [0, 15]`)

	k := randomQuantized(Q4_K, 1, 256, 2)
	k.Sc[3] = 64
	_, err = k.Encode()
	assert.ErrorContains(t, err, "6-bit scale/min 64 outside [0, 63]")

	_, err = NewGrid("mlp.down", Q8_0, 64, 172)
	assert.ErrorContains(t, err, `tensor "mlp.down": width 172 is not a multiple of Q8_0's block size 32`)
	_, err = NewGrid("attn.q", Q4_K, 64, 64)
	assert.ErrorContains(t, err, `tensor "attn.q": width 64 is not a multiple of Q4_K's block size 256`)

	_, err = Unpack("short", Q8_0, 1, 32, make([]byte, 33))
	assert.ErrorContains(t, err, `tensor "short": 33 bytes for 1x32 Q8_0 (want 34)`)
	nan := randomQuantized(Q8_0, 1, 32, 3)
	nan.D[0] = 0x7e00
	_, err = nan.Encode()
	assert.ErrorContains(t, err, "not finite")
}

func TestNearestIsTheNearestLevel(t *testing.T) {
	r := testutil.Rand(7)
	for _, typ := range []Type{Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q6_K} {
		q := randomQuantized(typ, 2, 256, uint64(typ)+100)
		for i := 0; i < 2*256; i++ {
			c := q.CellAt(i/256, i%256)
			x := float32(r.NormFloat64() * 0.2)
			n := c.Nearest(x)
			require.True(t, n >= c.Lo && n <= c.Hi)
			for l := c.Lo; l <= c.Hi; l++ { // brute force over every level
				require.LessOrEqual(t, absDiff(c.Value(n), x), absDiff(c.Value(l), x), "%s cell %+v x=%v: %d beats %d", typ, c, x, l, n)
			}
			if c.Scale != 0 { // representable values come back to their own code
				v := c.Value(int32(q.Q[i]))
				require.Equal(t, v, c.Value(c.Nearest(v)))
			}
		}
	}
}

func TestFloatTypesRoundTrip(t *testing.T) {
	vals := []float32{0, 1, -2.5, 65504, 1e-8, 3.14159}
	for _, typ := range []Type{F32, F16, BF16} {
		raw, err := EncodeFloat("f", typ, vals)
		require.NoError(t, err)
		back, err := Dequantize("f", typ, 1, len(vals), raw)
		require.NoError(t, err)
		for i, v := range vals {
			switch typ {
			case F32:
				assert.Equal(t, v, back[i])
			case F16:
				assert.Equal(t, tensor.F16ToF32(tensor.F32ToF16(v)), back[i])
			case BF16:
				assert.Equal(t, tensor.BF16ToF32(tensor.F32ToBF16(v)), back[i])
			}
		}
	}
	raw, _ := EncodeFloat("f", F16, []float32{1})
	assert.Equal(t, "003c", hex.EncodeToString(raw))
	_, err := EncodeFloat("big", F16, []float32{1e6})
	assert.ErrorContains(t, err, `tensor "big": value 1e+06 at element 0 overflows F16`)
}
