// Package gptq implements calibration-aware weight quantization for linear layers
// y = W x (W is [rows=outputs, cols=inputs]):
//
//   - Hessian: the second-moment matrix H = sum over tokens of x x^T of a layer's inputs,
//     accumulated in float64 while streaming calibration batches, exactly mergeable across
//     shards (sum + token count), saved in a versioned, checksummed binary file.
//   - ActMSEParams: activation-aware clipping search ("act-mse"): for every scale group the
//     clipping ratio minimising the output error e^T H_g e instead of the weight error e^T e.
//   - Quantize: GPTQ-style error compensation (Frantar et al. 2022): columns are quantized
//     one at a time and each rounding error is spread over the not-yet-quantized columns
//     with the upper Cholesky factor of H^-1, in blocks of 128 columns with lazy updates.
//   - QuantizeOnGrid: the same compensation onto a grid fixed beforehand (Grid: a
//     llama.cpp k-quant's scales, chosen first from the weights and their importance),
//     where GPTQ only chooses the levels.
//
// The output is an ordinary quant.QTensor: the same kernels and export consume it. With
// act-order the columns are visited in decreasing diag(H) order but the levels are stored
// in the original column order and scale groups stay the original contiguous column
// groups, so no permutation is left behind (see Options.ActOrder).
//
// The package depends only on quant; collecting Hessians from a model runner lives in a
// separate package so that this core stays free of the model.
package gptq
