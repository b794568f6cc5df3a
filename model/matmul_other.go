//go:build !amd64 || purego

package model

// Without the amd64 kernel matmulT is the scalar matmulTile everywhere.

var hasGemmKernel = false

func gemm4x16AVX2(out *float32, ldo int, x *float32, ldx int, p *float32, k int) {
	panic("model: no AVX2")
}
