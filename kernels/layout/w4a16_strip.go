package layout

// The "strip" W4A16 layout of cuda/gemm_w4a16_strip.cu (documented at the top of that file,
// beside the kernel that reads it).

import (
	"fmt"

	"github.com/autoq/autoq/quant"
)

// PackedW4A16Strip is a 4-bit weight [N outputs, K inputs] in the strip kernel's order:
// 8-output x 128-input tiles of 512 bytes, K padded to KPad (a multiple of 128).
type PackedW4A16Strip struct {
	Name   string
	N, K   int
	KPad   int // K rounded up to 128; Data holds N*KPad/2 bytes
	Group  int
	Asym   bool
	Data   []byte   // nibbles u (level+8 symmetric, level asymmetric); padding u = 8 / 0
	Scales []uint16 // F16 bits, [K/Group, N] row-major
	Zeros  []uint16 // F16 zero points, same shape; nil when symmetric
}

const w3TileN, w3TileK = 8, 128

// nibbleOffsetStrip returns the byte offset and shift of element (n, k): tile (n/8, k/128) at
// ((n/8)*(KPad/128) + k/128)*512, lane 4g+t (g = n%8, t = (k%128)/32) at 16*lane, word
// j = (k%32)/8, nibble i = 4h + 2c + b for k%8 = 4c + 2b + h.
func nibbleOffsetStrip(n, k, kPad int) (off int, shift uint) {
	s, g := n/w3TileN, n%w3TileN
	kt, kl := k/w3TileK, k%w3TileK
	t, r := kl/32, kl%32
	j, r8 := r/8, r%8
	c, b, h := r8/4, (r8/2)%2, r8%2
	i := 4*h + 2*c + b
	lane := 4*g + t
	off = ((s*(kPad/w3TileK)+kt)*32+lane)*16 + 4*j + i/2
	return off, uint(4 * (i % 2))
}

// packStrip builds the strip layout from levels [N, K] (signed for symmetric weights, unsigned
// for asymmetric ones) and F16 scales / zeros [N, K/group].
func packStrip(name string, N, K, group int, asym bool, levels []int32, scales, zeros []uint16) (*PackedW4A16Strip, error) {
	if err := CheckW4A16Shape(name, N, K, group); err != nil {
		return nil, err
	}
	ng := K / group
	if len(levels) != N*K || len(scales) != N*ng || (asym && len(zeros) != N*ng) {
		return nil, fmt.Errorf("w4a16 strip: tensor %q: %d levels, %d scales, %d zeros for [%d, %d] group %d", name, len(levels), len(scales), len(zeros), N, K, group)
	}
	kPad := (K + w3TileK - 1) / w3TileK * w3TileK
	p := &PackedW4A16Strip{Name: name, N: N, K: K, KPad: kPad, Group: group, Asym: asym, Data: make([]byte, N*kPad/2)}
	pad := byte(8) // level 0 of a symmetric weight
	if asym {
		pad = 0
	}
	for n := 0; n < N; n++ {
		for k := 0; k < kPad; k++ {
			u := pad
			if k < K {
				v := levels[n*K+k]
				if !asym {
					v += 8
				}
				if v < 0 || v > 15 {
					return nil, fmt.Errorf("w4a16 strip: tensor %q: level %d at (%d, %d) outside the 4-bit range", name, levels[n*K+k], n, k)
				}
				u = byte(v)
			}
			off, sh := nibbleOffsetStrip(n, k, kPad)
			p.Data[off] |= u << sh
		}
	}
	p.Scales = make([]uint16, ng*N)
	if asym {
		p.Zeros = make([]uint16, ng*N)
	}
	for n := 0; n < N; n++ {
		for gi := 0; gi < ng; gi++ {
			p.Scales[gi*N+n] = scales[n*ng+gi]
			if asym {
				p.Zeros[gi*N+n] = zeros[n*ng+gi]
			}
		}
	}
	return p, nil
}

// PackW4A16Strip re-lays out a 4-bit QTensor for autoq_gemm_w4a16_strip (same checks and F16
// rounding of scales as PackW4A16Tiled).
func PackW4A16Strip(q *quant.QTensor) (*PackedW4A16Strip, error) {
	p, err := PackW4A16Tiled(q)
	if err != nil {
		return nil, err
	}
	return RepackW4A16Strip(p)
}

// RepackW4A16Strip converts a weight from the tiled layout to the strip layout.
func RepackW4A16Strip(p *PackedW4A16Tiled) (*PackedW4A16Strip, error) {
	levels, scales, zeros, err := UnpackW4A16Tiled(p)
	if err != nil {
		return nil, err
	}
	return packStrip(p.Name, p.N, p.K, p.Group, p.Asym, levels, scales, zeros)
}

// UnpackW4A16Strip inverts the strip packing: levels [N, K] (signed for symmetric weights) and
// F16 scales / zeros as [N, K/Group] row-major (UnpackW4A16Tiled's conventions).
func UnpackW4A16Strip(p *PackedW4A16Strip) (levels []int32, scales, zeros []uint16, err error) {
	if err := CheckW4A16Shape(p.Name, p.N, p.K, p.Group); err != nil {
		return nil, nil, nil, err
	}
	N, K, ng := p.N, p.K, p.K/p.Group
	if p.KPad != (K+w3TileK-1)/w3TileK*w3TileK || len(p.Data) != N*p.KPad/2 || len(p.Scales) != N*ng || (p.Asym && len(p.Zeros) != N*ng) {
		return nil, nil, nil, fmt.Errorf("w4a16 strip: tensor %q: packed buffers have wrong sizes", p.Name)
	}
	levels, scales, zeros = unpack4(N, K, ng, p.KPad, p.Asym, p.Data, p.Scales, p.Zeros, nibbleOffsetStrip,
		func(gi, n, N int) int { return gi*N + n })
	return levels, scales, zeros, nil
}
