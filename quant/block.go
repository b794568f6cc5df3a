package quant

import (
	"fmt"
	"strings"
)

// Block is a llama.cpp (ggml) block format a recipe stores its weights in: a fixed
// layout of levels and per-block parameters, written by the GGUF export. The zero value
// is none (autoq's own group-wise layout). Package gguf holds the formats themselves.
type Block uint8

const (
	BlockNone Block = iota
	BlockQ8_0       // 8-bit levels, one F16 scale per 32 inputs
	BlockQ4_0       // 4-bit symmetric levels, one F16 scale per 32
	BlockQ4_1       // 4-bit levels, an F16 scale and an F16 min per 32
	BlockQ5_0       // 5-bit symmetric levels, one F16 scale per 32
	BlockQ5_1       // 5-bit levels, an F16 scale and an F16 min per 32
	BlockQ4_K       // 4-bit levels in super-blocks of 256: F16 d/dmin, 6-bit scale and min per 32
	BlockQ6_K       // 6-bit levels in super-blocks of 256: F16 d, int8 scale per 16
)

// blockInfo is what the recipe grammar, the planner and the target tables need of a
// block format: its name, ggml's block size and bytes (llama.cpp's bits accounting), and
// the autoq scheme of its levels.
type blockInfo struct {
	name         string
	block, bytes int
	scheme       Scheme
}

var blockInfos = [...]blockInfo{
	BlockQ8_0: {"q8_0", 32, 34, Scheme{Bits: 8, Symmetric: true, Granularity: PerGroup, GroupSize: 32}},
	BlockQ4_0: {"q4_0", 32, 18, Scheme{Bits: 4, Symmetric: true, Granularity: PerGroup, GroupSize: 32}},
	BlockQ4_1: {"q4_1", 32, 20, Scheme{Bits: 4, Granularity: PerGroup, GroupSize: 32}},
	BlockQ5_0: {"q5_0", 32, 22, Scheme{Bits: 5, Symmetric: true, Granularity: PerGroup, GroupSize: 32}},
	BlockQ5_1: {"q5_1", 32, 24, Scheme{Bits: 5, Granularity: PerGroup, GroupSize: 32}},
	BlockQ4_K: {"q4_k", 256, 144, Scheme{Bits: 4, Granularity: PerGroup, GroupSize: 32}},
	BlockQ6_K: {"q6_k", 256, 210, Scheme{Bits: 6, Symmetric: true, Granularity: PerGroup, GroupSize: 16}},
}

// Blocks lists every block format, in the order of the constants.
func Blocks() []Block {
	return []Block{BlockQ8_0, BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ5_1, BlockQ4_K, BlockQ6_K}
}

func (b Block) String() string {
	if b == BlockNone {
		return "none"
	}
	if int(b) < len(blockInfos) {
		return blockInfos[b].name
	}
	return fmt.Sprintf("Block(%d)", uint8(b))
}

// ParseBlock reads a block format name ("q4_k", case-insensitive).
func ParseBlock(s string) (Block, error) {
	for _, b := range Blocks() {
		if strings.EqualFold(b.String(), strings.TrimSpace(s)) {
			return b, nil
		}
	}
	return BlockNone, fmt.Errorf("unknown block format %q (want q8_0, q4_0, q4_1, q5_0, q5_1, q4_k or q6_k)", s)
}

// Size is ggml's block size: the multiple of 32 (or 256 for the k-quants) a row must be.
func (b Block) Size() int { return blockInfos[b].block }

// KQuant reports whether b is a k-quant (super-blocks of 256 with quantized sub-block
// scales), whose grid is chosen before the levels.
func (b Block) KQuant() bool { return b == BlockQ4_K || b == BlockQ6_K }

// BitsPerWeight is llama.cpp's accounting: block bytes * 8 / block size (Q8_0 8.5, Q4_0
// 4.5, Q4_1 5, Q5_0 5.5, Q5_1 6, Q4_K 4.5, Q6_K 6.5625).
func (b Block) BitsPerWeight() float64 {
	return float64(blockInfos[b].bytes*8) / float64(blockInfos[b].block)
}

// Scheme is the autoq scheme of b's levels: the width, symmetry and the run of inputs
// that share one scale (Q4_K: 4-bit with a min per sub-block of 32; Q6_K: 6-bit
// symmetric per 16). For the legacy formats autoq's levels in this scheme are stored
// exactly (their F16 scale rounded first); a k-quant's sub-block scales are themselves
// quantized, so its grid is chosen first and the levels rounded onto it.
func (b Block) Scheme() Scheme { return blockInfos[b].scheme }
