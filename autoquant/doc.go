// Package pipeline is AutoQuant's orchestration: per-layer sensitivity analysis, applying a
// mixed-precision plan, the accuracy gate (verify), and `autoq run`, which chains
// calibration, sensitivity, planning, quantization, verification and export.
//
// Sensitivity, and what makes it cheap. For each linear layer and candidate scheme, only
// that layer is quantized (exactly as it would be exported: same quantizer, scales rounded
// to the export dtype, same activation quantization) and the model is run on a small
// held-out token budget. The full-precision logits of those tokens are computed once and
// cached, so each (layer, scheme) costs one forward pass over the budget and no reference
// pass; the KL divergence of the next-token distribution against the cached logits and the
// perplexity change are accumulated on the fly. The budget is small (default 2048 tokens)
// because KL against cached logits is a low-variance, per-token measure: the whole analysis
// of L layers and S schemes costs L*S forward passes of the budget, so its cost is
// L*S*budget/N evaluations of an N-token evaluation set, independent of N (stories260K: 35
// layers x 4 schemes x 2048 tokens = 287k tokens, about 9 evaluations of 32k tokens, 105 s
// on 2 CPU cores;
// quantization itself, GPTQ included, is done once per (layer, scheme)). Perplexity changes
// at this budget are noisier than the KL (a few tenths of a percent) and the planner uses
// the KL. The model runner has no entry point in the middle of the network, so the prefix
// before the quantized layer is recomputed; an entry point taking the cached input of the
// layer's block would roughly halve the cost (the average layer sits mid-network).
//
// Data: the calibration split of the data file (eval.DataOptions, Split "calib") supplies
// the calibration tokens (activation thresholds, GPTQ Hessians) and, after them, the
// sensitivity tokens; the evaluation split supplies the verification tokens, which neither
// calibration nor planning saw.
package autoquant
