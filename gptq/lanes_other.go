//go:build !amd64 || purego

package gptq

var hasLanesKernel = false

func dotLanes16AVX2(h *float64, e *float64, n int, out *float64) { panic("gptq: no AVX2") }
