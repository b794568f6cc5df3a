package quant

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Hand-computed cases: ranges chosen so that every scale is exactly 1 or 2, so the levels
// below follow from the rules in doc.go by mental arithmetic (including the ties to even).

type handCase struct {
	name       string
	s          Scheme
	rows, cols int
	w          []float32
	scales     []float32
	zeros      []int32
	levels     []int32
	deq        []float32
	data       []byte // expected packed storage (nil: not checked)
}

var handCases = []handCase{
	{
		name: "int4 sym channel", s: Scheme{Bits: 4, Symmetric: true, Granularity: PerChannel},
		rows: 1, cols: 8,
		// amax 7.5 -> scale 7.5/7.5 = 1. 7.5 -> rne 8 -> saturates to 7; -7.5 -> -8;
		// 2.5 -> 2 (tie to even); 3.5 -> 4; -0.5 -> 0; 0.4 -> 0; 1.5 -> 2; -6 -> -6.
		w:      []float32{7.5, -7.5, 2.5, 3.5, -0.5, 0.4, 1.5, -6},
		scales: []float32{1},
		levels: []int32{7, -8, 2, 4, 0, 0, 2, -6},
		deq:    []float32{7, -8, 2, 4, 0, 0, 2, -6},
		// nibbles low first: (7,-8)->0x87, (2,4)->0x42, (0,0)->0x00, (2,-6=0xA)->0xA2.
		data: []byte{0x87, 0x42, 0x00, 0xA2},
	},
	{
		name: "int8 sym channel", s: Scheme{Bits: 8, Symmetric: true, Granularity: PerChannel},
		rows: 2, cols: 3,
		// row 0: amax 127.5 -> scale 1; row 1: amax 255 -> scale 2.
		w:      []float32{127.5, -127.5, 100.5, 255, -3, 5},
		scales: []float32{1, 2},
		// 127.5 -> 128 -> 127; -127.5 -> -128; 100.5 -> 100 (even); 255/2 = 127.5 -> 127;
		// -3/2 = -1.5 -> -2; 5/2 = 2.5 -> 2.
		levels: []int32{127, -128, 100, 127, -2, 2},
		deq:    []float32{127, -128, 100, 254, -4, 4},
		data:   []byte{0x7f, 0x80, 100, 0x7f, 0xfe, 2},
	},
	{
		name: "int4 asym channel", s: Scheme{Bits: 4, Granularity: PerChannel},
		rows: 3, cols: 3,
		// row 0: [-1, 14] -> scale 15/15 = 1, zero rne(1) = 1.
		// row 1: [3, 15] widened to [0, 15] -> scale 1, zero 0.
		// row 2: [-15, -5] widened to [-15, 0] -> scale 1, zero 15.
		w:      []float32{-1, 14, 2.5, 3, 15, 7.5, -15, -5, -0.5},
		scales: []float32{1, 1, 1},
		zeros:  []int32{1, 0, 15},
		// -1 -> -1+1 = 0; 14 -> 15; 2.5 -> 2+1 = 3 | 3; 15; 7.5 -> 8 | 0; 10; -0.5 -> 0+15.
		levels: []int32{0, 15, 3, 3, 15, 8, 0, 10, 15},
		deq:    []float32{-1, 14, 2, 3, 15, 8, -15, -5, 0},
		// 3 columns -> 2 bytes a row, the last high nibble zero.
		data: []byte{0xF0, 0x03, 0xF3, 0x08, 0xA0, 0x0F},
	},
	{
		name: "int8 asym channel", s: Scheme{Bits: 8, Granularity: PerChannel},
		rows: 1, cols: 4,
		// [-10, 245] -> scale 255/255 = 1, zero 10.
		w:      []float32{-10, 245, 0, 100.5},
		scales: []float32{1},
		zeros:  []int32{10},
		levels: []int32{0, 255, 10, 110},
		deq:    []float32{-10, 245, 0, 100},
		data:   []byte{0, 255, 10, 110},
	},
	{
		name: "int4 sym group 4", s: Scheme{Bits: 4, Symmetric: true, Granularity: PerGroup, GroupSize: 4},
		rows: 1, cols: 8,
		// group 0 amax 7.5 -> scale 1; group 1 amax 15 -> scale 2.
		w:      []float32{7.5, 1, 2, 3, 15, 2, -4, 6.5},
		scales: []float32{1, 2},
		// g1: 7.5 -> 7 (saturated); 1; -2; 3.25 -> 3.
		levels: []int32{7, 1, 2, 3, 7, 1, -2, 3},
		deq:    []float32{7, 1, 2, 3, 14, 2, -4, 6},
	},
	{
		name: "int4 asym group 2", s: Scheme{Bits: 4, Granularity: PerGroup, GroupSize: 2},
		rows: 1, cols: 4,
		// g0 [-5, 10] -> scale 1 zero 5; g1 [0, 30] -> scale 2 zero 0.
		w:      []float32{-5, 10, 30, 5},
		scales: []float32{1, 2},
		zeros:  []int32{5, 0},
		// 5/2 = 2.5 -> 2.
		levels: []int32{0, 15, 15, 2},
		deq:    []float32{-5, 10, 30, 4},
	},
	{
		name: "int8 sym tensor", s: Scheme{Bits: 8, Symmetric: true, Granularity: PerTensor},
		rows: 2, cols: 2,
		w:      []float32{127.5, 1, -3, 0.5},
		scales: []float32{1},
		levels: []int32{127, 1, -3, 0},
		deq:    []float32{127, 1, -3, 0},
	},
	{
		name: "int4 asym tensor", s: Scheme{Bits: 4, Granularity: PerTensor},
		rows: 2, cols: 2,
		// min -2, max 28 -> scale 30/15 = 2, zero rne(1) = 1.
		w:      []float32{-2, 28, 3, 0},
		scales: []float32{2},
		zeros:  []int32{1},
		// 3/2 = 1.5 -> 2, +1 = 3.
		levels: []int32{0, 15, 3, 1},
		deq:    []float32{-2, 28, 4, 0},
	},
	{
		name: "int8 sym group 2", s: Scheme{Bits: 8, Symmetric: true, Granularity: PerGroup, GroupSize: 2},
		rows: 1, cols: 4,
		// g0 amax 127.5 -> scale 1; g1 amax 255 -> scale 2: 127.5 -> 127, -1.5 -> -2.
		w:      []float32{127.5, 1, 255, -3},
		scales: []float32{1, 2},
		levels: []int32{127, 1, 127, -2},
		deq:    []float32{127, 1, 254, -4},
		data:   []byte{0x7f, 0x01, 0x7f, 0xfe},
	},
	{
		name: "int8 asym group 2", s: Scheme{Bits: 8, Granularity: PerGroup, GroupSize: 2},
		rows: 1, cols: 4,
		// g0 [0, 255] -> scale 1 zero 0; g1 [-255, 0] -> scale 1 zero 255.
		w:      []float32{0, 255, -255, 0},
		scales: []float32{1, 1},
		zeros:  []int32{0, 255},
		levels: []int32{0, 255, 0, 255},
		deq:    []float32{0, 255, -255, 0},
	},
	{
		name: "int4 sym tensor", s: Scheme{Bits: 4, Symmetric: true, Granularity: PerTensor},
		rows: 2, cols: 2,
		// amax 15 -> scale 2: 7.5 -> 7 (saturated), -0.5 -> 0, 1.5 -> 2, -7.5 -> -8.
		w:      []float32{15, -1, 3, -15},
		scales: []float32{2},
		levels: []int32{7, 0, 2, -8},
		deq:    []float32{14, 0, 4, -16},
		data:   []byte{0x07, 0x82},
	},
	{
		name: "int8 asym tensor", s: Scheme{Bits: 8, Granularity: PerTensor},
		rows: 2, cols: 2,
		// [-20, 490] -> scale 510/255 = 2, zero rne(10) = 10; 3/2 = 1.5 -> 2, +10.
		w:      []float32{-20, 490, 100, 3},
		scales: []float32{2},
		zeros:  []int32{10},
		levels: []int32{0, 255, 60, 12},
		deq:    []float32{-20, 490, 100, 4},
	},
}

func TestHandComputedCases(t *testing.T) {
	for _, tc := range append(append([]handCase(nil), handCases...), widthCases...) {
		t.Run(tc.name, func(t *testing.T) {
			q, err := Quantize("w", tc.w, tc.rows, tc.cols, tc.s, SearchOptions{Method: SearchMax})
			require.NoError(t, err)
			assert.Equal(t, tc.scales, q.Scales, "scales")
			if tc.s.Symmetric {
				assert.Nil(t, q.Zeros)
			} else {
				assert.Equal(t, tc.zeros, q.Zeros, "zero points")
			}
			assert.Equal(t, tc.levels, q.Levels(), "levels")
			assert.Equal(t, tc.deq, Dequantize(q), "dequantized")
			if tc.data != nil {
				assert.Equal(t, tc.data, q.Data, "packed storage")
			}
		})
	}
}

func TestScaleAt(t *testing.T) {
	s := Scheme{Bits: 4, Granularity: PerGroup, GroupSize: 2}
	q, err := NewQTensor("w", s, 2, 4, make([]int32, 8), []float32{1, 2, 3, 4}, []int32{5, 6, 7, 8})
	require.NoError(t, err)
	sc, z := q.ScaleAt(1, 3)
	assert.Equal(t, float32(4), sc)
	assert.Equal(t, int32(8), z)
	sc, z = q.ScaleAt(0, 1)
	assert.Equal(t, float32(1), sc)
	assert.Equal(t, int32(5), z)
	sc, z = q.ScaleAt(2, 0) // outside
	assert.Zero(t, sc)
	assert.Zero(t, z)

	pt, err := NewQTensor("t", Scheme{Bits: 8, Symmetric: true, Granularity: PerTensor}, 3, 2, make([]int32, 6), []float32{0.5}, nil)
	require.NoError(t, err)
	sc, z = pt.ScaleAt(2, 1)
	assert.Equal(t, float32(0.5), sc)
	assert.Zero(t, z)
}
