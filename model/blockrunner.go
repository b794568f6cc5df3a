package model

import (
	"fmt"
	"sync"

	"github.com/autoq/autoq/backend"
)

// BlockRunner runs a model's decoder one block at a time, the way the streaming pipeline
// (package autoquant) computes: the batch's residual stream at a block boundary is a
// BlockState held where the runner computes (a *Hidden on the CPU, device memory on a GPU),
// and the runner reads each block's layers from its Model as they are when the block runs
// (SetLinear plugs a quantized layer; Invalidate(b) says block b changed). HostBlocks is the
// CPU implementation and the reference; package gpurunner registers the CUDA one.
type BlockRunner interface {
	// Embed looks the tokens up in the embedding (tokens checked as Forward checks them).
	Embed(tokens [][]int) (BlockState, error)
	// RunBlock runs block b on st in place. With until set (a linear name of block b,
	// BlockLinearNames) the block runs on a copy only as far as that layer's input and st
	// is left as it was (ProbeBlock). hook (may be nil) receives each linear input as
	// float32 on the host, in the order the CPU model calls it.
	RunBlock(st BlockState, b int, hook Hook, until string) error
	// Head applies the final norm and the classifier: logits [len, vocab] per sequence.
	Head(st BlockState) ([][]float32, error)
	// HeadRows is Head on rows [lo, hi) of the batch (every sequence's rows stacked): their
	// logits [hi-lo, vocab] flattened across sequences, the same values as Head's rows, so
	// a batch's logits can be taken a chunk of rows at a time.
	HeadRows(st BlockState, lo, hi int) ([]float32, error)
	Clone(st BlockState) (BlockState, error)
	// Lengths is the length of each sequence of st's batch.
	Lengths(st BlockState) ([]int, error)
	ToHost(st BlockState) (*Hidden, error)
	FromHost(h *Hidden) (BlockState, error)
	// Free releases st's memory (a no-op on the host).
	Free(st BlockState)
	// Invalidate says block b's layers changed in the model since the runner last read them.
	Invalidate(b int)
	Info() backend.DeviceInfo
	Close() error
}

// GramBlockRunner is a BlockRunner that sums the Gram matrices of a block's linear inputs
// (X^T X, GPTQ's Hessians) where it computes, instead of handing every input to a host hook.
type GramBlockRunner interface {
	BlockRunner
	// RunBlockGram is RunBlock that also adds X^T X of every linear input whose layer want
	// accepts to the runner's sums (layers reading one input share one sum).
	RunBlockGram(st BlockState, b int, hook Hook, until string, want func(name string) bool) error
	// TakeGrams returns and clears the sums whose layers want accepts.
	TakeGrams(want func(name string) bool) ([]Gram, error)
}

// Gram is one input's summed Gram matrix: the layers that read the input, its width, the
// rows summed and the [K, K] float64 upper triangle (row-major; below the diagonal zero).
type Gram struct {
	Names  []string
	K      int
	Tokens int64
	Sum    []float64
}

// BlockState is one batch's residual stream at a block boundary, owned by a BlockRunner.
type BlockState any

// HostBlocks is the CPU BlockRunner over a Model: the reference the device runners are
// compared with. Its states are *Hidden.
type HostBlocks struct{ M *Model }

func (r HostBlocks) Embed(tokens [][]int) (BlockState, error) { return r.M.Embed(tokens) }

func (r HostBlocks) RunBlock(st BlockState, b int, hook Hook, until string) error {
	h, err := hiddenOf(st)
	if err != nil {
		return err
	}
	if until != "" {
		return r.M.ProbeBlock(h, b, until, hook)
	}
	return r.M.RunBlocks(h, b, b+1, hook)
}

func (r HostBlocks) Head(st BlockState) ([][]float32, error) {
	h, err := hiddenOf(st)
	if err != nil {
		return nil, err
	}
	return r.M.Head(h)
}

func (r HostBlocks) HeadRows(st BlockState, lo, hi int) ([]float32, error) {
	h, err := hiddenOf(st)
	if err != nil {
		return nil, err
	}
	return r.M.HeadRows(h, lo, hi)
}

func (r HostBlocks) Clone(st BlockState) (BlockState, error) {
	h, err := hiddenOf(st)
	if err != nil {
		return nil, err
	}
	return h.Clone(), nil
}

func (r HostBlocks) Lengths(st BlockState) ([]int, error) {
	h, err := hiddenOf(st)
	if err != nil {
		return nil, err
	}
	return h.Lengths(), nil
}

func (r HostBlocks) ToHost(st BlockState) (*Hidden, error)  { return hiddenOf(st) }
func (r HostBlocks) FromHost(h *Hidden) (BlockState, error) { return h, nil }
func (r HostBlocks) Free(BlockState)                        {}
func (r HostBlocks) Invalidate(int)                         {}
func (r HostBlocks) Close() error                           { return nil }

func (r HostBlocks) Info() backend.DeviceInfo { return backend.DeviceInfo{Kind: "cpu"} }

func hiddenOf(st BlockState) (*Hidden, error) {
	h, ok := st.(*Hidden)
	if !ok || h == nil {
		return nil, fmt.Errorf("model: block state %T is not a host *Hidden", st)
	}
	return h, nil
}

// BlockRunnerOpener builds a device BlockRunner for m on CUDA device index.
type BlockRunnerOpener func(index int, m *Model) (BlockRunner, error)

var (
	blockMu     sync.Mutex
	blockOpener BlockRunnerOpener
)

// RegisterCUDABlockRunner is called by package gpurunner's init in cuda-tagged builds.
func RegisterCUDABlockRunner(open BlockRunnerOpener) {
	blockMu.Lock()
	defer blockMu.Unlock()
	blockOpener = open
}

// OpenBlockRunner returns the BlockRunner for dev: HostBlocks for the CPU, the registered
// device runner for a CUDA device (an error naming why when this build has none).
func OpenBlockRunner(dev backend.Device, m *Model) (BlockRunner, error) {
	if !dev.CUDA {
		return HostBlocks{M: m}, nil
	}
	blockMu.Lock()
	open := blockOpener
	blockMu.Unlock()
	if open == nil {
		return nil, fmt.Errorf("the block runner for %s needs a binary built with -tags cuda", dev)
	}
	return open(dev.Index, m)
}
