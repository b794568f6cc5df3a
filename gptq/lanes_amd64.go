//go:build amd64 && !purego

package gptq

import "github.com/autoq/autoq/quant"

//go:noescape
func dotLanes16AVX2(h *float64, e *float64, n int, out *float64)

var hasLanesKernel = quant.HasAVX2()
