package model

import (
	"fmt"
	"sync"

	"github.com/autoq/autoq/backend"
	"github.com/autoq/autoq/calib"
	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/quant"
)

// RunnerOptions configures a device model runner.
type RunnerOptions struct {
	// Layers maps linear names (Model.LinearNames) to their scheme; layers not in the map
	// run in full precision (F16 weights, cuBLAS).
	Layers map[string]quant.Recipe
	// Search chooses the weight scales (as in eval.Apply and NewQuantLinear).
	Search quant.SearchOptions
	// NoKernels runs every quantized layer as its dequantized F16 weights through cuBLAS
	// (the reference path that kernel-incompatible shapes take anyway), for comparisons.
	NoKernels bool
}

// Runner runs a Llama-family prefill on a device (package gpurunner implements it in cuda-tagged
// builds; the interface lives here, with its consumer, so that nothing below the model
// runner imports it). Forward matches Model.Forward
// (so it is an eval.Forwarder); a non-nil hook gets each linear input copied to the host
// (slow: for tests and debugging). ForwardHistograms adds every linear layer's input to
// hs[name] (layers absent from hs are skipped) on the device: only the histogram counts
// (and per-channel absmax, for histograms that track it) come back to the host.
type Runner interface {
	Forward(tokens [][]int, hook Hook) ([][]float32, error)
	ForwardHistograms(tokens [][]int, hs map[string]*calib.Histogram) ([][]float32, error)
	// TimePrefill runs the prefill of tokens warmup times, then runs times, and returns each
	// timed run's device time in milliseconds (CUDA events; logits stay on the device).
	TimePrefill(tokens [][]int, warmup, runs int) ([]float64, error)
	// Kernels says, per linear name, which path runs it ("cublas-f16", "w8a8", "w4a16-gN",
	// or "fallback-f16 (<reason>)" for a quantized layer the kernels cannot take).
	Kernels() map[string]string
	Info() backend.DeviceInfo
	Close() error
}

// RunnerOpener builds a runner for model m on CUDA device index.
type RunnerOpener func(index int, m *Model, opt RunnerOptions) (Runner, error)

// SyntheticRunnerOpener builds a runner whose weights are random and generated on the
// device (benchmarks of large shapes without a checkpoint); scheme nil means full
// precision everywhere, else every linear layer uses *scheme.
type SyntheticRunnerOpener func(index int, cfg checkpoint.LlamaConfig, scheme *quant.Recipe, seed uint64) (Runner, error)

var (
	modelMu         sync.Mutex
	modelOpener     RunnerOpener
	syntheticOpener SyntheticRunnerOpener
)

// RegisterCUDARunner is called by package gpurunner's init in cuda-tagged builds.
func RegisterCUDARunner(open RunnerOpener, synth SyntheticRunnerOpener) {
	modelMu.Lock()
	defer modelMu.Unlock()
	modelOpener, syntheticOpener = open, synth
}

// registered returns the openers gpurunner registered, or the error saying why there is no
// device runner: dev is not a CUDA device, or this binary was built without -tags cuda.
func registered(dev backend.Device) (RunnerOpener, SyntheticRunnerOpener, error) {
	modelMu.Lock()
	open, synth := modelOpener, syntheticOpener
	modelMu.Unlock()
	if !dev.CUDA {
		return nil, nil, fmt.Errorf("the device model runner needs a CUDA device, not %s", dev)
	}
	if open == nil || synth == nil {
		return nil, nil, fmt.Errorf("this autoq binary has no CUDA model runner (build with -tags cuda)")
	}
	return open, synth, nil
}

// OpenRunner builds a device runner for m on dev (a CUDA device from backend.Select).
func OpenRunner(dev backend.Device, m *Model, opt RunnerOptions) (Runner, error) {
	open, _, err := registered(dev)
	if err != nil {
		return nil, err
	}
	return open(dev.Index, m, opt)
}

// OpenSyntheticRunner builds a runner with random device-generated weights.
func OpenSyntheticRunner(dev backend.Device, cfg checkpoint.LlamaConfig, scheme *quant.Recipe, seed uint64) (Runner, error) {
	_, synth, err := registered(dev)
	if err != nil {
		return nil, err
	}
	return synth(dev.Index, cfg, scheme, seed)
}
