package layout

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/tensor"
)

// Unpacking a packed weight gives back the QTensor's levels exactly, and its scales and zero
// points rounded to F16.
func TestPackW4A16TiledRoundTrip(t *testing.T) {
	for _, s := range w4Schemes {
		t.Run(s.String(), func(t *testing.T) {
			const N, K = 192, 256
			q := quantize4(t, N, K, s, 7)
			p, err := PackW4A16Tiled(q)
			require.NoError(t, err)
			require.Len(t, p.Data, N*K/2)
			levels, scales, zeros, err := UnpackW4A16Tiled(p)
			require.NoError(t, err)
			require.Equal(t, q.Levels(), levels, "levels differ after pack/unpack")
			ng := K / p.Group
			for n := 0; n < N; n++ {
				for gi := 0; gi < ng; gi++ {
					sc, z := q.ScaleAt(n, gi*p.Group)
					require.Equal(t, tensor.F32ToF16(sc), scales[n*ng+gi], "scale of output %d group %d", n, gi)
					if p.Asym {
						require.Equal(t, tensor.F32ToF16(float32(z)), zeros[n*ng+gi], "zero of output %d group %d", n, gi)
					}
				}
			}
			assert.Equal(t, !s.Symmetric, zeros != nil)
		})
	}
}

// The packed bytes feed mma.m16n8k16's B fragments the way the kernel decodes them. This
// re-derives the layout from the PTX fragment definition (b0 holds k = 2t, 2t+1 of column
// g, b1 holds k = 2t+8, 2t+9; lane = 4g+t) and the kernel's nibble extraction (the masks
// 0x000F000F / 0x00F000F0 on the word and on word>>8), independently of nibbleOffset.
func TestPackW4A16TiledFragmentOrder(t *testing.T) {
	const N, K = 128, 128
	s := quant.Scheme{Bits: 4, Symmetric: true, Granularity: quant.PerGroup, GroupSize: 64}
	q := quantize4(t, N, K, s, 11)
	p, err := PackW4A16Tiled(q)
	require.NoError(t, err)
	levels := q.Levels()
	checked := 0
	for nt := 0; nt < N/64; nt++ {
		for kt := 0; kt < K/16; kt++ {
			for lane := 0; lane < 32; lane++ {
				g, tt := lane/4, lane%4
				base := ((nt*(K/16)+kt)*32 + lane) * 16
				for j := 0; j < 4; j++ {
					w := uint32(p.Data[base+4*j]) | uint32(p.Data[base+4*j+1])<<8 | uint32(p.Data[base+4*j+2])<<16 | uint32(p.Data[base+4*j+3])<<24
					// The kernel's four registers: (w & 0x000F000F), (w & 0x00F000F0) >> 4,
					// the same on w >> 8; each a pair (low half, high half).
					regs := [4][2]uint32{
						{w & 0xF, (w >> 16) & 0xF},
						{(w >> 4) & 0xF, (w >> 20) & 0xF},
						{(w >> 8) & 0xF, (w >> 24) & 0xF},
						{(w >> 12) & 0xF, (w >> 28) & 0xF},
					}
					for r := 0; r < 4; r++ {
						ntile := 2*j + r/2
						kbase := 0
						if r%2 == 1 { // b1
							kbase = 8
						}
						for h := 0; h < 2; h++ {
							n := nt*64 + ntile*8 + g
							k := kt*16 + kbase + 2*tt + h
							require.Equal(t, levels[n*K+k], int32(regs[r][h])-8, "lane %d word %d reg %d half %d -> (n %d, k %d)", lane, j, r, h, n, k)
							checked++
						}
					}
				}
			}
		}
	}
	require.Equal(t, N*K, checked)
}

func TestPackW4A16TiledErrors(t *testing.T) {
	cases := []struct {
		N, K int
		s    quant.Scheme
		want string
	}{
		{96, 128, quant.Scheme{Bits: 4, Symmetric: true, Granularity: quant.PerGroup, GroupSize: 32}, "multiples of 64"},
		{128, 96, quant.Scheme{Bits: 4, Symmetric: true, Granularity: quant.PerGroup, GroupSize: 32}, "multiples of 64"},
		{128, 128, quant.Scheme{Bits: 4, Symmetric: true, Granularity: quant.PerGroup, GroupSize: 16}, "multiple of 32"},
		{128, 128, quant.Scheme{Bits: 8, Symmetric: true, Granularity: quant.PerChannel}, "not 4-bit"},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%dx%d_%s", c.N, c.K, c.s), func(t *testing.T) {
			_, err := PackW4A16Tiled(quantizeGaussian(t, "proj", c.N, c.K, c.s, 3, 1))
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
			assert.Contains(t, err.Error(), `"proj"`)
		})
	}
}
