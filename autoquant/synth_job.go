package autoquant

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/autoq/autoq/internal/atomicfile"
	"github.com/autoq/autoq/internal/progress"
	"github.com/autoq/autoq/synth"
	"github.com/autoq/autoq/tensor"
)

// SynthOptions configures Synth (`autoq synth`).
type SynthOptions struct {
	Shape     string // a synth.ShapeNames() entry
	Layers    int    // layers to write; 0: all of the shape's
	DType     string // bf16 (default) or f16
	Seed      uint64
	ShardSize string // largest shard, as transformers' max_shard_size ("2GB"); "" is synth.DefaultShardSize
	Workers   int    // 0: GOMAXPROCS (the bits do not depend on it)
	Out       string
	Force     bool // replace an existing non-empty Out
	DryRun    bool // lay out and report, write nothing
}

// Synth is `autoq synth`: a deterministic synthetic checkpoint at the shape of a real
// Llama model, written shard by shard into a temporary directory that replaces Out.
func Synth(env Env, o SynthOptions) (*SynthReport, error) {
	plan, err := o.plan()
	if err != nil {
		return nil, err
	}
	rep := newSynthReport(plan, o)
	if o.DryRun {
		return rep, nil
	}
	if o.Out == "" {
		return nil, usagef("--out DIR is required (or --dry-run)")
	}
	if err := checkOutputs(env, o.Force, nil, outDir("--out", o.Out, synth.OutputKind)); err != nil {
		return nil, err
	}
	bar := progress.New(env.bars(), "synth", plan.Bytes, "bytes")
	start := time.Now()
	err = atomicfile.Dir(o.Out, synth.OutputKind, func(tmp string) error { return plan.Write(env.Ctx, tmp, bar.Add) })
	bar.Done()
	if err != nil {
		return nil, err
	}
	rep.Seconds = time.Since(start).Seconds()
	rep.GBPerSec = float64(plan.Bytes) / 1e9 / rep.Seconds
	return rep, nil
}

// plan checks the options (usage errors) and lays the checkpoint out.
func (o SynthOptions) plan() (*synth.Plan, error) {
	shape, err := synth.LookupShape(o.Shape)
	if err != nil {
		return nil, usagef("--shape: %v", err)
	}
	cfg := shape.Config
	if o.Layers < 0 || o.Layers > cfg.Layers {
		return nil, usagef("--layers %d: %s has 1 to %d layers", o.Layers, o.Shape, cfg.Layers)
	}
	if o.Layers > 0 {
		cfg.Layers = o.Layers
	}
	var dt tensor.DType
	switch strings.ToLower(o.DType) {
	case "", "bf16", "bfloat16":
		dt = tensor.BF16
	case "f16", "fp16", "float16":
		dt = tensor.F16
	default:
		return nil, usagef("--dtype %q: want bf16 or f16", o.DType)
	}
	var shard int64
	if o.ShardSize != "" {
		if shard, err = synth.ParseSize(o.ShardSize); err != nil {
			return nil, usagef("--shard-size: %v", err)
		}
	}
	return synth.NewPlan(synth.Options{Name: o.Shape, Config: cfg, DType: dt, Seed: o.Seed, ShardSize: shard, Workers: o.Workers})
}

// SynthReport is the result of Synth.
type SynthReport struct {
	Shape       string       `json:"shape"`
	Layers      int          `json:"layers"`
	ShapeLayers int          `json:"shape_layers"`
	DType       string       `json:"dtype"`
	Seed        uint64       `json:"seed"`
	Out         string       `json:"out,omitempty"`
	DryRun      bool         `json:"dry_run,omitempty"`
	Tensors     int          `json:"tensors"`
	Params      int64        `json:"params"`
	Bytes       int64        `json:"bytes"`
	Largest     int64        `json:"largest_tensor_bytes"`
	LargestName string       `json:"largest_tensor"`
	OutlierDims []int        `json:"outlier_dims"`
	Shards      []SynthShard `json:"shards"`
	Seconds     float64      `json:"seconds"`
	GBPerSec    float64      `json:"gb_per_sec"` // tensor bytes (1e9) per wall-clock second
}

// SynthShard is one file of a synthetic checkpoint.
type SynthShard struct {
	File    string `json:"file"`
	Tensors int    `json:"tensors"`
	Bytes   int64  `json:"bytes"`
}

func newSynthReport(p *synth.Plan, o SynthOptions) *SynthReport {
	shape, _ := synth.LookupShape(o.Shape)
	r := &SynthReport{Shape: o.Shape, Layers: p.Opt.Config.Layers, ShapeLayers: shape.Config.Layers,
		DType: p.Opt.DType.String(), Seed: p.Opt.Seed, Out: o.Out, DryRun: o.DryRun, Tensors: len(p.Tensors),
		Params: p.Params, Bytes: p.Bytes, Largest: p.LargestTensor(), OutlierDims: p.OutlierDims}
	for _, t := range p.Tensors {
		if t.Elements()*int64(p.Opt.DType.Bits()/8) == r.Largest && r.LargestName == "" {
			r.LargestName = t.Name
		}
	}
	for _, sh := range p.Shards {
		r.Shards = append(r.Shards, SynthShard{File: sh.File, Tensors: len(sh.Tensors), Bytes: sh.Bytes})
	}
	return r
}

// WriteTable prints the summary and the shards.
func (r *SynthReport) WriteTable(w io.Writer) {
	verb := "wrote " + r.Out
	if r.DryRun {
		verb = "would write"
	}
	fmt.Fprintf(w, "%s: %s, %d of %d layers, %s, seed %d: %d tensors, %d parameters, %s in %d shard(s)\n",
		verb, r.Shape, r.Layers, r.ShapeLayers, r.DType, r.Seed, r.Tensors, r.Params, HumanBytes(r.Bytes), len(r.Shards))
	fmt.Fprintf(w, "largest tensor: %s (%s); outlier dims: %v\n", HumanBytes(r.Largest), r.LargestName, r.OutlierDims)
	for _, sh := range r.Shards {
		fmt.Fprintf(w, "  %-34s %4d tensors  %s\n", sh.File, sh.Tensors, HumanBytes(sh.Bytes))
	}
	if !r.DryRun {
		fmt.Fprintf(w, "%.1fs, %.2f GB/s\n", r.Seconds, r.GBPerSec)
	}
}
