// Package awq implements activation-aware per-input-channel weight scaling (the idea
// published as AWQ, Lin et al. 2023; this is autoq's own implementation): before int4
// quantization, each input channel c of a group of linear layers that read the same input
// is multiplied by s_c (W' = W diag(s)) and the inverse 1/s_c is folded into whatever
// produces that input, so the full-precision model computes the same function:
//
//   - q/k/v: the input_layernorm weight (RMSNorm is linear in its weight);
//   - o_proj: the rows of v_proj (attention output is a convex combination of V rows,
//     per head, so dividing a V channel divides the attention output channel; with
//     grouped-query attention one v_proj row feeds several query heads, so o_proj's
//     scales are shared by the query heads of a kv head);
//   - gate/up: the post_attention_layernorm weight;
//   - down_proj: the rows of up_proj (SwiGLU multiplies silu(gate) * up elementwise).
//
// Channels that carry large activations get s > 1, so their weights get a finer share of
// each quantization group's range. The scales are s = m^alpha / sqrt(max(m^alpha) min(m^alpha))
// with m the channel's calibration mean |x| (optionally divided by a weight-magnitude term,
// Options.Duo), alpha chosen per group on a grid by the layer output error measured with
// the Hessians already collected for GPTQ:
//
//	err(s) = sum over the group's layers of tr(E H E^T),  E = W - Q(W diag(s)) diag(1/s),
//
// which equals tr(E' H' E'^T) in the scaled space with E' = W' - Q(W') and
// H' = diag(1/s) H diag(1/s) (ScaleHessian), so no second calibration pass is needed and
// the quantizer (round-to-nearest, act-mse, GPTQ) sees exactly the Hessian of the scaled
// layer's input. alpha = 0 gives s = 1: plain quantization, bit for bit, and it is always
// a candidate, so the search never picks scales that measure worse than none.
//
// The result is a rescaled checkpoint (Fold: new norm and linear tensors, same names and
// dtypes), from which any quantizer produces ordinary quant.QTensors; exports write the
// rescaled norms as ordinary tensors.
package awq
