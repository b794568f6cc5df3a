//go:build cuda

package main

// A cuda-tagged build links the CUDA library and registers the CUDA backend.
import _ "github.com/autoq/autoq/cgo"
