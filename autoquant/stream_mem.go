package autoquant

import (
	"fmt"

	"github.com/autoq/autoq/checkpoint"
)

// memPlan splits the memory budget of the computing device (--max-device-mem) between
// what stays resident (embedding, final norm, lm_head), the decoder blocks' weights, one
// batch's activations through a block, and the residual streams of the windows at the
// current block boundary. Streams beyond their share are spilled (stream).
type memPlan struct {
	Budget int64 // 0: auto (CPU: autoBlockBytes of blocks resident, states unbounded)
	Fixed  int64 // embedding, final norm and lm_head
	Block  int64 // one decoder block's weights
	Work   int64 // one batch's activations through a block, and its logits
	Blocks int   // decoder blocks resident at once
	States int64 // resident boundary states per stream (0: no bound)
	Needed int64 // states of the calibration and sensitivity windows together
}

// autoBlockBytes is what the CPU keeps of decoder blocks without --max-device-mem (at
// least two blocks).
const autoBlockBytes = 128 << 20

func (mp memPlan) blockBudget() int64 { return int64(mp.Blocks) * mp.Block }

// planMemory lays the budget out for cfg with element size elem (4: float32 on the CPU),
// calibration batches of batchRows tokens, head batches of headRows tokens and stateRows
// tokens of boundary states in all. A budget too small for one block is an error naming
// the block and the bytes it needs.
func planMemory(cfg checkpoint.LlamaConfig, elem int64, blockBytes int64, batchRows, headRows, stateRows int, budget int64) (memPlan, error) {
	D, V, H, KV := int64(cfg.Dim), int64(cfg.Vocab), int64(cfg.HiddenDim), int64(cfg.KVDim())
	mp := memPlan{Budget: budget, Block: blockBytes}
	mp.Fixed = elem * (V*D + D)
	if !cfg.TiedEmbeddings {
		mp.Fixed += elem * V * D
	}
	mp.Work = 4*int64(batchRows)*(5*D+2*KV+2*H) + 4*int64(headRows)*(V+D)
	mp.Needed = 4 * int64(stateRows) * D
	if budget <= 0 { // auto on the CPU: reading a block again is cheap next to using it
		mp.Blocks = min(cfg.Layers, max(2, int(autoBlockBytes/max(mp.Block, 1))))
		return mp, nil
	}
	need := mp.Fixed + mp.Block + mp.Work
	if budget < need {
		return mp, fmt.Errorf("--max-device-mem %s is too small: decoder block 0 (model.layers.0.*, every block is the same size) needs %s "+
			"(weights %s + activations of a %d-token batch %s) while the embedding and lm_head (%s) stay resident: give at least %s",
			HumanBytes(budget), HumanBytes(mp.Block+mp.Work), HumanBytes(mp.Block), batchRows, HumanBytes(mp.Work), HumanBytes(mp.Fixed), HumanBytes(need))
	}
	rest := budget - need
	states := min(rest, mp.Needed)
	mp.States = max(states/2, 4*D) // two streams at a time (calibration and sensitivity, or baseline and candidate)
	mp.Blocks = min(cfg.Layers, 1+int((rest-states)/max(mp.Block, 1)))
	return mp, nil
}

// String describes the plan for the log.
func (mp memPlan) String() string {
	if mp.Budget <= 0 {
		return fmt.Sprintf("%d decoder blocks resident (%s each), boundary states in memory", mp.Blocks, HumanBytes(mp.Block))
	}
	return fmt.Sprintf("budget %s: embedding/lm_head %s, %d blocks x %s, activations %s, boundary states %s per stream (beyond: spilled)",
		HumanBytes(mp.Budget), HumanBytes(mp.Fixed), mp.Blocks, HumanBytes(mp.Block), HumanBytes(mp.Work), HumanBytes(mp.States))
}
