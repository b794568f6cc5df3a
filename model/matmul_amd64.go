//go:build amd64 && !purego

package model

import "github.com/autoq/autoq/quant"

//go:noescape
func gemm4x16AVX2(out *float32, ldo int, x *float32, ldx int, p *float32, k int)

var hasGemmKernel = quant.HasAVX2()
