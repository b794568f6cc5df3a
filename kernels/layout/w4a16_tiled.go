package layout

// The "tiled" W4A16 layout of cuda/gemm_w4a16_tiled.cu (documented at the top of that
// file, beside the kernel that reads it); PackW4A16Tiled and UnpackW4A16Tiled below are its
// executable definition.

import (
	"fmt"
	"math"

	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/tensor"
)

// PackedW4A16Tiled is a 4-bit weight [N outputs, K inputs] in the order the W4A16 kernel's MMA
// fragments consume it.
type PackedW4A16Tiled struct {
	Name   string
	N, K   int
	Group  int      // inputs per scale group (K for per-channel and per-tensor weights)
	Asym   bool     // zero points present
	Data   []byte   // N*K/2 bytes of nibbles u (level+8 symmetric, level asymmetric)
	Scales []uint16 // F16 bits, [K/Group, N/64, 8, 8] (see ScaleIndex)
	Zeros  []uint16 // F16 bits of the integer zero points, same shape; nil when symmetric
}

// W4A16 shape rules, mirrored from the kernels (autoq_gemm_w4a16_tiled / _strip).
const (
	w4TileN = 64
	w4TileK = 16
)

// CheckW4A16Shape reports whether the W4A16 kernels handle an [N, K] weight with the given group.
func CheckW4A16Shape(name string, N, K, group int) error {
	if N <= 0 || K <= 0 || N%64 != 0 || K%64 != 0 {
		return fmt.Errorf("w4a16: tensor %q: shape [%d, %d]: outputs N and inputs K must be positive multiples of 64", name, N, K)
	}
	if group < 32 || group%32 != 0 || K%group != 0 {
		return fmt.Errorf("w4a16: tensor %q: group size %d must be a multiple of 32 that divides K=%d", name, group, K)
	}
	return nil
}

// nibbleOffset returns the byte offset and shift (0 or 4) of element (n, k) in the packed
// data: tile (n/64, k/16) at ((n/64)*(K/16) + k/16)*512; lane 4g+t at 16*lane; word j; nibble i.
func nibbleOffset(n, k, K int) (off int, shift uint) {
	nt, kt := n/w4TileN, k/w4TileK
	nl, kl := n%w4TileN, k%w4TileK
	nti, g := nl/8, nl%8
	j, rhi := nti/2, nti%2
	kb, kr := kl/8, kl%8
	t, h := kr/2, kr%2
	i := (rhi*2 + kb) + 4*h
	lane := 4*g + t
	off = ((nt*(K/w4TileK)+kt)*32+lane)*16 + j*4 + i/2
	return off, uint(4 * (i % 2))
}

// ScaleIndex is the position of the scale of column n in group gi: [gi, n/64, n%8, (n%64)/8].
func ScaleIndex(gi, n, N int) int {
	return ((gi*(N/w4TileN)+n/w4TileN)*8+n%8)*8 + (n%w4TileN)/8
}

// w4Group returns the kernel group size of a 4-bit QTensor and the scale index function.
func w4Group(q *quant.QTensor) (group int, param func(n, gi int) int, err error) {
	switch q.Scheme.Granularity {
	case quant.PerGroup:
		return q.Scheme.GroupSize, func(n, gi int) int { return n*q.Groups + gi }, nil
	case quant.PerChannel:
		return q.Cols, func(n, _ int) int { return n }, nil
	case quant.PerTensor:
		return q.Cols, func(int, int) int { return 0 }, nil
	}
	return 0, nil, fmt.Errorf("w4a16: tensor %q: unknown granularity %v", q.Name, q.Scheme.Granularity)
}

// toF16Param converts a scale or zero point to F16, failing when it is not a positive
// finite F16 (a scale that underflows to 0 or overflows to Inf would corrupt the output).
func toF16Scale(name string, v float32, n, gi int) (uint16, error) {
	h := tensor.F32ToF16(v)
	f := tensor.F16ToF32(h)
	if !(f > 0) || math.IsInf(float64(f), 0) {
		return 0, fmt.Errorf("w4a16: tensor %q: scale %g of output %d group %d is not representable in F16 (must lie in (0, 65504])", name, v, n, gi)
	}
	return h, nil
}

// PackW4A16Tiled re-lays out a 4-bit QTensor (from quant.Quantize, any granularity, symmetric or
// asymmetric) for autoq_gemm_w4a16. Levels are copied exactly; scales are rounded to F16.
func PackW4A16Tiled(q *quant.QTensor) (*PackedW4A16Tiled, error) {
	if err := q.Validate(); err != nil {
		return nil, fmt.Errorf("w4a16: %w", err)
	}
	if q.GIdx != nil {
		return nil, fmt.Errorf("w4a16: tensor %q: groups in activation order (g_idx) are not supported by this kernel (contiguous groups only: GPTQ --act-order-groups static)", q.Name)
	}
	if q.Scheme.Bits != 4 {
		return nil, fmt.Errorf("w4a16: tensor %q: scheme %s is not 4-bit", q.Name, q.Scheme)
	}
	N, K := q.Rows, q.Cols
	group, param, err := w4Group(q)
	if err != nil {
		return nil, err
	}
	if err := CheckW4A16Shape(q.Name, N, K, group); err != nil {
		return nil, err
	}
	p := &PackedW4A16Tiled{Name: q.Name, N: N, K: K, Group: group, Asym: !q.Scheme.Symmetric, Data: make([]byte, N*K/2)}
	ng := K / group
	p.Scales = make([]uint16, ng*N)
	if p.Asym {
		p.Zeros = make([]uint16, ng*N)
	}
	levels := q.Levels()
	for n := 0; n < N; n++ {
		for gi := 0; gi < ng; gi++ {
			i := param(n, gi)
			h, err := toF16Scale(q.Name, q.Scales[i], n, gi)
			if err != nil {
				return nil, err
			}
			si := ScaleIndex(gi, n, N)
			p.Scales[si] = h
			if p.Asym {
				z := q.Zeros[i]
				if z < 0 || z > 15 {
					return nil, fmt.Errorf("w4a16: tensor %q: zero point %d of output %d group %d outside [0, 15]", q.Name, z, n, gi)
				}
				p.Zeros[si] = tensor.F32ToF16(float32(z))
			}
		}
		for k := 0; k < K; k++ {
			u := levels[n*K+k]
			if !p.Asym {
				u += 8
			}
			if u < 0 || u > 15 {
				return nil, fmt.Errorf("w4a16: tensor %q: level %d at (%d, %d) outside the 4-bit range", q.Name, levels[n*K+k], n, k)
			}
			off, sh := nibbleOffset(n, k, K)
			p.Data[off] |= byte(u) << sh
		}
	}
	return p, nil
}

// UnpackW4A16Tiled inverts PackW4A16Tiled: the levels [N, K] (signed for symmetric weights), and the
// F16 scales and zero points as [N, K/Group] row-major.
func UnpackW4A16Tiled(p *PackedW4A16Tiled) (levels []int32, scales []uint16, zeros []uint16, err error) {
	if err := CheckW4A16Shape(p.Name, p.N, p.K, p.Group); err != nil {
		return nil, nil, nil, err
	}
	N, K, ng := p.N, p.K, p.K/p.Group
	if len(p.Data) != N*K/2 || len(p.Scales) != N*ng || (p.Asym && len(p.Zeros) != N*ng) {
		return nil, nil, nil, fmt.Errorf("w4a16: tensor %q: packed buffers have wrong sizes", p.Name)
	}
	levels, scales, zeros = unpack4(N, K, ng, K, p.Asym, p.Data, p.Scales, p.Zeros, nibbleOffset, ScaleIndex)
	return levels, scales, zeros, nil
}

// unpack4 inverts a 4-bit packing: the levels [N, K] from the nibbles at offset(n, k,
// stride) (less 8, signed, for symmetric weights), and the F16 scales and zero points of
// group gi of row n, stored at index(gi, n, N), as [N, ng] row-major.
func unpack4(N, K, ng, stride int, asym bool, data []byte, sc, zp []uint16,
	offset func(n, k, stride int) (int, uint), index func(gi, n, N int) int) (levels []int32, scales, zeros []uint16) {
	levels = make([]int32, N*K)
	for n := 0; n < N; n++ {
		for k := 0; k < K; k++ {
			off, sh := offset(n, k, stride)
			u := int32(data[off]>>sh) & 15
			if !asym {
				u -= 8
			}
			levels[n*K+k] = u
		}
	}
	scales = make([]uint16, N*ng)
	if asym {
		zeros = make([]uint16, N*ng)
	}
	for n := 0; n < N; n++ {
		for gi := 0; gi < ng; gi++ {
			si := index(gi, n, N)
			scales[n*ng+gi] = sc[si]
			if asym {
				zeros[n*ng+gi] = zp[si]
			}
		}
	}
	return levels, scales, zeros
}
