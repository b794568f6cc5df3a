//go:build cuda

package main

// A cuda-tagged build links the CUDA library and registers the CUDA backend (cgo) and the
// GPU model runner (gpurunner).
import (
	_ "github.com/autoq/autoq/cgo"
	_ "github.com/autoq/autoq/gpurunner"
)
