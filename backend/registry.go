package backend

import (
	"fmt"
	"strconv"
	"strings"
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

// Open returns the backend named by spec: "cpu", "cuda", "cuda:N", or "auto" (CUDA device 0
// if there is one, else the CPU). For "auto", fallback says why the CPU was chosen ("" when
// CUDA was).
func Open(spec string) (b Backend, fallback string, err error) {
	switch {
	case spec == "" || spec == "auto":
		n, perr := CUDADevices()
		if perr != nil || n == 0 {
			reason := "no CUDA device"
			if perr != nil {
				reason = perr.Error()
			}
			return NewCPU(), reason, nil
		}
		b, err := openCUDA(0)
		if err != nil {
			return NewCPU(), err.Error(), nil
		}
		return b, "", nil
	case spec == "cpu":
		return NewCPU(), "", nil
	case spec == "cuda" || strings.HasPrefix(spec, "cuda:"):
		idx := 0
		if rest, ok := strings.CutPrefix(spec, "cuda:"); ok {
			i, perr := strconv.Atoi(rest)
			if perr != nil || i < 0 {
				return nil, "", fmt.Errorf("bad device %q: want cuda:N with N >= 0", spec)
			}
			idx = i
		}
		n, perr := CUDADevices()
		if perr != nil {
			return nil, "", perr
		}
		if idx >= n {
			return nil, "", fmt.Errorf("no CUDA device %d: %d device(s) found", idx, n)
		}
		b, err := openCUDA(idx)
		return b, "", err
	}
	return nil, "", fmt.Errorf("unknown device %q (want auto, cpu, cuda or cuda:N)", spec)
}

func openCUDA(i int) (Backend, error) {
	mu.Lock()
	open := cudaOpener
	mu.Unlock()
	return open(i)
}
