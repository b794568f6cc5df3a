package autoquant

import (
	"math"
	"os"
	"runtime/debug"

	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/tensor"
)

// The Go collector lets the heap grow to twice what was live after the last collection
// (GOGC=100), so a run whose live heap peaks at P holds up to 2P of memory. The streaming
// run knows its peak from the memory plan (hostPeak) and, unless the user set GOMEMLIMIT,
// sets a soft memory limit a little above it: the collector then runs when the heap nears
// the limit instead of at twice the live heap. The limit is soft (never an out-of-memory
// error; past it the collector's CPU share is capped), and the headroom keeps collections
// infrequent: on the 100M synthetic, about 1% of the run's CPU.

// gcHeadroom is the share of the estimated peak the heap may grow beyond it. The runtime
// counts its own overhead (spans, GC metadata: about 40 MB at a 350 MB heap) against the
// limit, so a smaller share leaves the collector running back to back while GPTQ works on
// down_proj (seen at 1/8 on the 100M synthetic: 1500 collections in 10 s).
const gcHeadroom = 4 // 1/4: 25%

// hostShape is what the host's peak live memory depends on in a streaming run.
type hostShape struct {
	elem      int64 // bytes per checkpoint weight (2: BF16/F16, 4: F32)
	blocks    int   // decoder blocks resident at once (memPlan.Blocks)
	batchRows int   // tokens of a calibration batch
	headRows  int   // tokens of a sensitivity / evaluation batch
	calibRows int   // tokens of the calibration and sensitivity windows (their states)
	evalRows  int   // tokens of the evaluation windows
}

// hostPeak estimates the most the run holds live on the host, the larger of its two
// heaviest moments: quantizing a block (the embedding, the resident blocks, the block's
// input Hessians, a calibration batch's activations or GPTQ's working set at down_proj (a
// damped copy of its Hessian, its weights as float32 three times), and the calibration and sensitivity windows' states; no lm_head) and verifying
// (the same, with the lm_head, the candidate's blocks at 8 bits or less, an evaluation
// batch's activations, the baseline's and candidate's states and one chunk of logits each).
func hostPeak(cfg checkpoint.LlamaConfig, s hostShape) int64 {
	D, V, H, KV := int64(cfg.Dim), int64(cfg.Vocab), int64(cfg.HiddenDim), int64(cfg.KVDim())
	fixed := s.elem*V*D + 4*D // the embedding and final norm
	head := int64(0)          // an untied lm_head, held while the head runs (HeadOnUse)
	if !cfg.TiedEmbeddings {
		head = s.elem * V * D
	}
	block := model.BlockBytesOf(cfg) / 4 * s.elem // float32 norms and biases counted at elem: a few KB off
	base := fixed + int64(s.blocks)*block
	work := func(rows int) int64 { // model.newWorkspace
		r := int64(rows)
		return 4*r*(2*D+max(2*D+2*KV, H)) + 4*min(r, 256)*H
	}
	hess := 8 * (3*D*D + H*H) // q/k/v, o, gate/up and down read four inputs
	gptq := 8*H*H + 3*4*D*H   // down_proj's damped Hessian, and its weights thrice in float32 (read, target, levels)
	quantize := base + hess + max(work(s.batchRows), gptq) + 4*D*int64(s.calibRows)
	chunk := min(headChunkBytes, 4*V*int64(s.headRows))
	verify := base + head + int64(s.blocks)*block/2 + work(s.headRows) + 2*4*D*int64(s.evalRows) + 2*chunk
	return max(quantize, verify)
}

// softLimit is the memory limit to set for a run whose live heap peaks near peak: 0 (none)
// when the user set GOMEMLIMIT (env) or a limit is already set (current below MaxInt64).
func softLimit(env string, current, peak int64) int64 {
	if env != "" || current != math.MaxInt64 || peak <= 0 {
		return 0
	}
	return peak + peak/gcHeadroom
}

// limitMemory sets the run's soft memory limit (see softLimit) and returns what undoes it.
func limitMemory(peak int64) (restore func()) {
	lim := softLimit(os.Getenv("GOMEMLIMIT"), debug.SetMemoryLimit(-1), peak)
	if lim == 0 {
		return func() {}
	}
	prev := debug.SetMemoryLimit(lim)
	return func() { debug.SetMemoryLimit(prev) }
}

// hostPeak is hostPeak for this run (after setup).
func (p *pipeline) hostPeak() int64 {
	seq := 2
	for _, w := range p.opt.Data.Calib {
		seq = max(seq, len(w))
	}
	elem := int64(4)
	if d := p.src.DType(); d == tensor.BF16 || d == tensor.F16 {
		elem = 2
	}
	return hostPeak(p.src.Cfg, hostShape{elem: elem, blocks: p.mem.Blocks, batchRows: p.opt.Batch * seq,
		headRows: p.sensBatch() * seq, calibRows: countTokens(p.opt.Data.Calib) + countTokens(p.opt.Data.Sens),
		evalRows: countTokens(p.opt.Data.Eval)})
}
