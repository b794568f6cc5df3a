package backend

import (
	"fmt"
	"sync"
)

// Opener opens CUDA device ordinal index. Package cgo registers one in a cuda-tagged build.
type Opener func(index int) (Backend, error)

var (
	mu         sync.Mutex
	cudaOpener Opener
	cudaProbe  func() (int, error) // number of CUDA devices, or why there are none
)

// RegisterCUDA is called by package cgo's init in cuda-tagged builds.
func RegisterCUDA(probe func() (int, error), open Opener) {
	mu.Lock()
	defer mu.Unlock()
	cudaProbe, cudaOpener = probe, open
}

// CUDADevices returns the number of CUDA devices, or an error saying why none can be used
// ("this binary was built without CUDA", "no CUDA device: ...").
func CUDADevices() (int, error) {
	mu.Lock()
	probe := cudaProbe
	mu.Unlock()
	if probe == nil {
		return 0, fmt.Errorf("no CUDA device: this autoq binary was built without CUDA (build with -tags cuda, see README)")
	}
	return probe()
}
