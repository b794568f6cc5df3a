package layout

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/autoq/autoq/tensor"
)

// Packing to the strip layout and back gives the QTensor's levels exactly and its scales / zero
// points rounded to F16, for every scheme and a K that needs padding (192 = 128 + 64).
func TestPackW4A16StripRoundTrip(t *testing.T) {
	for _, s := range w4Schemes {
		for _, K := range []int{256, 192} {
			if s.GroupSize > 0 && K%s.GroupSize != 0 {
				continue
			}
			const N = 128 // 16 strips of 8 outputs
			q := quantize4(t, N, K, s, 11)
			p, err := PackW4A16Strip(q)
			require.NoError(t, err, "%s K=%d", s, K)
			require.Equal(t, (K+127)/128*128, p.KPad)
			require.Len(t, p.Data, N*p.KPad/2)
			levels, scales, zeros, err := UnpackW4A16Strip(p)
			require.NoError(t, err)
			require.Equal(t, q.Levels(), levels, "%s K=%d: levels differ after pack/unpack", s, K)
			ng := K / p.Group
			for n := 0; n < N; n++ {
				for gi := 0; gi < ng; gi++ {
					sc, z := q.ScaleAt(n, gi*p.Group)
					require.Equal(t, tensor.F32ToF16(sc), scales[n*ng+gi], "scale of output %d group %d", n, gi)
					require.Equal(t, tensor.F32ToF16(sc), p.Scales[gi*N+n], "scales are [K/group, N]")
					if p.Asym {
						require.Equal(t, tensor.F32ToF16(float32(z)), zeros[n*ng+gi], "zero of output %d group %d", n, gi)
					}
				}
			}
			require.Equal(t, !s.Symmetric, zeros != nil)
		}
	}
}

// The layout by hand: in a 16 x 128 weight whose level at (n, k) encodes its position, the
// nibble positions documented in cuda/gemm_w4a16_strip.cu hold the right elements, and every
// byte of the packed data is written exactly once (a bijection).
func TestNibbleOffsetStripByHand(t *testing.T) {
	// Lane 4g+t of tile (s, kt) holds column 8s+g, k = 128kt+32t+0..31; word j covers
	// k%32 in [8j, 8j+8); nibble i = 4h+2c+b holds k%8 = 4c+2b+h.
	cases := []struct{ n, k, off int }{
		{0, 0, 0},                     // g0 t0 word0 nibble0 -> byte 0 low
		{0, 1, 2},                     // h=1 -> nibble 4 -> byte 2 low
		{0, 2, 0},                     // b=1 -> nibble 1 -> byte 0 high
		{0, 4, 1},                     // c=1 -> nibble 2 -> byte 1 low
		{0, 8, 4},                     // word 1
		{0, 32, 16},                   // t=1 -> lane 1
		{1, 0, 4 * 16},                // g=1 -> lane 4
		{0, 128, 512},                 // next K tile of strip 0
		{8, 0, 2 * 512},               // strip 1 starts after strip 0's KPad/128 = 2 tiles
		{15, 255, 3*512 + 31*16 + 15}, // last byte
	}
	for _, c := range cases {
		off, _ := nibbleOffsetStrip(c.n, c.k, 256)
		require.Equal(t, c.off, off, "n=%d k=%d", c.n, c.k)
	}
	seen := make(map[[2]int]bool)
	for n := 0; n < 16; n++ {
		for k := 0; k < 256; k++ {
			off, sh := nibbleOffsetStrip(n, k, 256)
			key := [2]int{off, int(sh)}
			require.False(t, seen[key], "n=%d k=%d collides", n, k)
			seen[key] = true
		}
	}
	require.Len(t, seen, 16*256)
}
