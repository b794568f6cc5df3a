package synth

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"runtime"
	"sort"

	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/safetensors"
	"github.com/autoq/autoq/tensor"
)

// DefaultShardSize is the largest shard Write makes unless told otherwise (bytes of
// tensor data, decimal gigabytes as in transformers' max_shard_size="2GB").
const DefaultShardSize = 2_000_000_000

// Options says what to write.
type Options struct {
	// Name labels the shape in the files' metadata (informative).
	Name string
	// Config is the architecture; Config.Layers is the number of layers written.
	Config checkpoint.LlamaConfig
	// DType is BF16 (the default when zero) or F16.
	DType tensor.DType
	Seed  uint64
	// ShardSize bounds each shard's tensor bytes (a larger tensor gets a shard of its
	// own); <= 0 means DefaultShardSize.
	ShardSize int64
	// Workers generating values in parallel; <= 0 means GOMAXPROCS. The bits do not
	// depend on it.
	Workers int
}

// Shard is one safetensors file of a plan.
type Shard struct {
	File    string // file name in the output directory
	Tensors []int  // indices into Plan.Tensors, in file order
	Bytes   int64  // tensor data bytes
}

// Plan is a synthetic checkpoint laid out before anything is generated: every tensor, its
// shard, and the outlier dimensions.
type Plan struct {
	Opt         Options
	Tensors     []TensorSpec
	Shards      []Shard
	OutlierDims []int // hidden dimensions whose layer-norm weights are 20x
	Params      int64
	Bytes       int64 // tensor data, all shards
}

// NewPlan validates opt and lays the checkpoint out.
func NewPlan(opt Options) (*Plan, error) {
	if opt.DType == tensor.Invalid {
		opt.DType = tensor.BF16
	}
	if opt.DType != tensor.BF16 && opt.DType != tensor.F16 {
		return nil, fmt.Errorf("synth: dtype %s: want BF16 or F16", opt.DType)
	}
	if opt.ShardSize <= 0 {
		opt.ShardSize = DefaultShardSize
	}
	if opt.Workers <= 0 {
		opt.Workers = runtime.GOMAXPROCS(0)
	}
	if err := opt.Config.Validate(); err != nil {
		return nil, fmt.Errorf("synth: %w", err)
	}
	opt.Config.TorchDType = map[tensor.DType]string{tensor.BF16: "bfloat16", tensor.F16: "float16"}[opt.DType]
	p := &Plan{Opt: opt, Tensors: tensorSpecs(opt.Config), OutlierDims: outlierDims(opt.Config.Dim, opt.Seed)}
	elem := int64(opt.DType.Bits() / 8)
	var cur *Shard
	for i := range p.Tensors {
		t := &p.Tensors[i]
		size := t.Elements() * elem
		if cur == nil || (len(cur.Tensors) > 0 && cur.Bytes+size > opt.ShardSize) {
			p.Shards = append(p.Shards, Shard{})
			cur = &p.Shards[len(p.Shards)-1]
		}
		t.Shard = len(p.Shards) - 1
		cur.Tensors = append(cur.Tensors, i)
		cur.Bytes += size
		p.Params += t.Elements()
		p.Bytes += size
	}
	for i := range p.Shards {
		p.Shards[i].File = safetensors.SingleFileName
		if len(p.Shards) > 1 {
			p.Shards[i].File = fmt.Sprintf("model-%05d-of-%05d.safetensors", i+1, len(p.Shards))
		}
	}
	return p, nil
}

// LargestTensor is the byte size of the largest tensor.
func (p *Plan) LargestTensor() int64 {
	var m int64
	for _, t := range p.Tensors {
		m = max(m, t.Elements()*int64(p.Opt.DType.Bits()/8))
	}
	return m
}

// outlierDims picks max(2, dim/1024) distinct hidden dimensions from the seed, sorted.
func outlierDims(dim int, seed uint64) []int {
	n := max(2, dim/1024)
	if n > dim {
		n = dim
	}
	r := rand.New(rand.NewPCG(seed, 0x6f75746c69657273)) // "outliers"
	seen := map[int]bool{}
	var out []int
	for len(out) < n {
		d := r.IntN(dim)
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	sort.Ints(out)
	return out
}

// streamKey is the first PCG seed word of a tensor's streams: the seed mixed with a hash of
// the tensor's name (FNV-1a, then SplitMix64's finalizer), so that tensors and seeds get
// unrelated streams.
func streamKey(seed uint64, name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	z := seed ^ h.Sum64()
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}
