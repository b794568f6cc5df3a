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
// perplexity change are accumulated on the fly. With the default budget of 2048 tokens the
// whole analysis of L layers and S schemes costs L*S forward passes of 2048 tokens, i.e.
// L*S*2048/N evaluations of an N-token evaluation set (about 4 evaluations for stories260K
// with 35 layers, 3 schemes and N = 50k). The model runner has no entry point in the middle
// of the network, so the prefix before the quantized layer is recomputed; an entry point
// taking the cached block inputs would cut the cost further by about half on average.
//
// Data: the calibration split of the data file (eval.DataOptions, Split "calib") supplies
// the calibration tokens (activation thresholds, GPTQ Hessians) and, after them, the
// sensitivity tokens; the evaluation split supplies the verification tokens, which neither
// calibration nor planning saw.
package pipeline
