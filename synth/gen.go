package synth

import (
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"github.com/autoq/autoq/tensor"
)

// genChunk is the number of values drawn from one PCG stream. Chunk c of a tensor always
// uses stream (streamKey(seed, name), c), whichever worker computes it.
const genChunk = 1 << 16

// outlierScale multiplies the layer-norm weights at the outlier dimensions.
const outlierScale = 20

// Fill writes the values lo, lo+1, ... of tensor i (row-major) into dst as the plan's
// dtype bits (BF16 or F16). lo must be a multiple of 65536; dst may end anywhere up to the
// tensor's end. Chunks of 65536 values are computed in parallel on opt.Workers goroutines.
func (p *Plan) Fill(i int, lo int64, dst []uint16) {
	if lo%genChunk != 0 {
		panic("synth: Fill offset must be a multiple of the chunk size")
	}
	t := p.Tensors[i]
	key := streamKey(p.Opt.Seed, t.Name)
	chunks := (len(dst) + genChunk - 1) / genChunk
	work := func(c int) {
		start := c * genChunk
		end := min(start+genChunk, len(dst))
		p.fillChunk(t, key, uint64(lo/genChunk)+uint64(c), int(lo)+start, dst[start:end])
	}
	workers := min(p.Opt.Workers, chunks)
	if workers <= 1 {
		for c := 0; c < chunks; c++ {
			work(c)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := int(next.Add(1) - 1); c < chunks; c = int(next.Add(1) - 1) {
				work(c)
			}
		}()
	}
	wg.Wait()
}

// fillChunk draws one chunk: values first, first+1, ... of t from stream (key, chunk).
func (p *Plan) fillChunk(t TensorSpec, key, chunk uint64, first int, dst []uint16) {
	tab := t5Table()
	var r rand.PCG
	r.Seed(key, chunk)
	unit := float32(math.Sqrt(1 / t5Var)) // scales t5 to unit variance
	conv := tensor.F32ToBF16
	if p.Opt.DType == tensor.F16 {
		conv = tensor.F32ToF16
	}
	if t.Kind == Weight {
		scale := unit / float32(math.Sqrt(float64(t.Shape[len(t.Shape)-1])))
		if p.Opt.DType == tensor.BF16 { // the bulk of the work: no call through conv
			for k := range dst {
				dst[k] = tensor.F32ToBF16(scale * t5Sample(tab, r.Uint64()))
			}
			return
		}
		for k := range dst {
			dst[k] = conv(scale * t5Sample(tab, r.Uint64()))
		}
		return
	}
	outlier := map[int]bool{}
	if t.Kind == OutlierNorm {
		for _, d := range p.OutlierDims {
			outlier[d] = true
		}
	}
	scale := 0.1 * unit
	for k := range dst {
		// The explicit conversion forbids fusing into an FMA (see t5Sample).
		v := 1 + float32(scale*t5Sample(tab, r.Uint64()))
		if outlier[first+k] {
			v *= outlierScale
		}
		dst[k] = conv(v)
	}
}
