package export

import (
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/quant"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPackInt32MatchesCompressedTensorsExamples(t *testing.T) {
	// pack_to_int32's docstring: 8-bit [1, 2] -> unsigned [129, 130] -> 33409.
	w, shape, err := packInt32([]int32{1, 2}, 1, 2, 8, false)
	require.NoError(t, err)
	assert.Equal(t, []int{1, 1}, shape)
	assert.Equal(t, []int32{33409}, w)
	// 4-bit, eight values, lowest bits first, +8 offset:
	// [-8,-7,0,7,1,2,3,4] -> nibbles [0,1,8,15,9,10,11,12] -> 0xCBA9F810.
	w, _, err = packInt32([]int32{-8, -7, 0, 7, 1, 2, 3, 4}, 1, 8, 4, false)
	require.NoError(t, err)
	assert.Equal(t, uint32(0xCBA9F810), uint32(w[0]))
	// Padding: 3 values occupy one word, the rest zero bits.
	w, shape, err = packInt32([]int32{-8, 0, 7}, 1, 3, 4, false)
	require.NoError(t, err)
	assert.Equal(t, []int{1, 1}, shape)
	assert.Equal(t, uint32(0xF80), uint32(w[0]))
	// Packing along rows (zero points): column c of rows 0..7 goes into word [0, c].
	vals := []int32{-8, 7, -7, 6, 0, 0, 1, -1, 2, -2, 3, -3, 4, -4, 5, -5} // 8 rows x 2 cols
	w, shape, err = packInt32(vals, 8, 2, 4, true)
	require.NoError(t, err)
	assert.Equal(t, []int{1, 2}, shape)
	// column 0: [-8,-7,0,1,2,3,4,5] -> [0,1,8,9,10,11,12,13]
	assert.Equal(t, uint32(0xDCBA9810), uint32(w[0]))
	back, err := unpackInt32(w, 8, 2, 4, true)
	require.NoError(t, err)
	assert.Equal(t, vals, back)
	_, _, err = packInt32([]int32{8}, 1, 1, 4, false)
	assert.ErrorContains(t, err, "outside")
}

// The other widths by hand, with pack_to_int32's rule: floor(32/b) values a word (5 for
// 6 bits, 6 for 5, 10 for 3, 4 for 7), offset 2^(b-1), the unused top bits zero.
func TestPackInt32OtherWidthsByHand(t *testing.T) {
	for _, c := range []struct {
		bits  int
		vals  []int32
		words []uint32
	}{
		// 6-bit [-32,-1,0,31,5] -> [0,31,32,63,37]: 0 | 31<<6 | 32<<12 | 63<<18 | 37<<24.
		{6, []int32{-32, -1, 0, 31, 5}, []uint32{0x25FE07C0}},
		// a sixth value starts the next word: -7 -> 25 = 0x19.
		{6, []int32{-32, -1, 0, 31, 5, -7}, []uint32{0x25FE07C0, 0x19}},
		// 3-bit: ten values [0..7,7,0] (after +4) in bits 0..29, the eleventh (1 -> 5) alone.
		{3, []int32{-4, -3, -2, -1, 0, 1, 2, 3, 3, -4, 1}, []uint32{0x07FAC688, 0x5}},
		// 5-bit [-16,15,0,-1,7,-8] -> [0,31,16,15,23,8] in six 5-bit slots.
		{5, []int32{-16, 15, 0, -1, 7, -8}, []uint32{0x1177C3E0}},
		// 7-bit [-64,63,0,-1] -> [0,127,64,63].
		{7, []int32{-64, 63, 0, -1}, []uint32{0x07F03F80}},
	} {
		w, shape, err := packInt32(c.vals, 1, len(c.vals), c.bits, false)
		require.NoError(t, err)
		assert.Equal(t, []int{1, len(c.words)}, shape, "%d bits", c.bits)
		got := make([]uint32, len(w))
		for i, x := range w {
			got[i] = uint32(x)
		}
		assert.Equal(t, c.words, got, "%d bits %v", c.bits, c.vals)
		back, err := unpackInt32(w, 1, len(c.vals), c.bits, false)
		require.NoError(t, err)
		assert.Equal(t, c.vals, back)
	}
	// Zero points pack along rows: 7 rows of 6-bit values -> ceil(7/5) = 2 words a column.
	zp := []int32{-32, 31, 0, -1, 5, 7, -7}
	w, shape, err := packInt32(zp, 7, 1, 6, true)
	require.NoError(t, err)
	assert.Equal(t, []int{2, 1}, shape)
	// [0,63,32,31,37] and [39,25]: 0 | 63<<6 | 32<<12 | 31<<18 | 37<<24; 39 | 25<<6.
	assert.Equal(t, []uint32{0x257E0FC0, 39 | 25<<6}, []uint32{uint32(w[0]), uint32(w[1])})
	_, _, err = packInt32([]int32{32}, 1, 1, 6, false)
	assert.ErrorContains(t, err, "value 32 at [0,0] is outside the signed 6-bit range")
	_, _, err = packInt32([]int32{0}, 1, 1, 9, false)
	assert.ErrorContains(t, err, "9 bits (want 1 to 8)")
}

func TestPackUnpackRoundTripProperty(t *testing.T) {
	r := testutil.Rand(3)
	for bits := quant.MinBits; bits <= quant.MaxBits; bits++ {
		for _, dims := range [][2]int{{1, 1}, {3, 7}, {9, 17}, {16, 64}, {11, 31}} {
			rows, cols := dims[0], dims[1]
			v := make([]int32, rows*cols)
			for i := range v {
				v[i] = int32(r.IntN(1<<bits)) - 1<<(bits-1)
			}
			for _, along := range []bool{false, true} {
				p, _, err := packInt32(v, rows, cols, bits, along)
				require.NoError(t, err)
				back, err := unpackInt32(p, rows, cols, bits, along)
				require.NoError(t, err)
				assert.Equal(t, v, back)
			}
		}
	}
}
