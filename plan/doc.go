// Package plan chooses a quantization scheme for every linear layer of a model: the
// mixed-precision planner behind `autoq plan`.
//
// Input is a sensitivity file (Sensitivity): for each layer and candidate scheme, the damage
// measured when only that layer is quantized (KL divergence of the next-token distribution
// against full precision, and perplexity change). Assuming damages add up across layers, the
// planner picks one candidate per layer minimising the summed damage subject to an average
// bits-per-weight budget (a multiple-choice knapsack, solved exactly by dynamic programming
// over a discretised budget, or greedily by damage per bit), or the cheapest assignment whose
// summed damage stays under a limit.
//
// Bits per weight count the scale and zero-point overhead (quant.Recipe.Bits):
//
//	bits(layer) = b + (S + Z) / G
//
// with b the level width (3 to 8), G the number of weights sharing one scale (group size,
// the row length for per-channel, rows*cols for per-tensor), S the bits of a stored scale
// (16 by default: F16/BF16 scales; 32 for layers with int8 activations, whose
// int-quantized export keeps F32 scales) and Z the bits of a zero point (0 when symmetric, b when
// asymmetric: compressed-tensors packs zero points at the level width). Full-precision layers
// cost 16 bits (the deployment dtype). The average is weighted by each layer's parameter
// count, over the layers the plan covers (the linear layers; embeddings and norms are outside
// the budget). A static activation scale is one number per layer and is ignored.
//
// An export target (package target) constrains the choice: layers the serving engine fuses
// into one (vLLM's q/k/v and gate/up) form a group that is planned as one unit (its damage
// the sum of its members', its cost the sum of theirs, one scheme for all), and each unit is
// offered only the schemes the target can load at its shape (Options.Groups, Allow). An
// override that would split a group is refused.
//
// The result is an editable Plan file (JSON): ordered rules mapping layer-name glob patterns
// to schemes, first match wins, so a person can change a pattern and re-run the pipeline.
package plan
