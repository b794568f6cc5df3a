// Package rotate fuses QuaRot/SpinQuant-style orthogonal rotations into the weights of a
// Llama-family checkpoint. The result is an ordinary Llama checkpoint (same architecture,
// same runtime) computing the same function in exact arithmetic, whose linear layers see
// inputs and hold weights with far fewer outlier channels, so they quantize better.
//
// Three things change, given the residual-stream rotation Q (dim×dim) and a per-head
// rotation R (head_dim×head_dim), both orthogonal; weights W are [out, in] and multiply
// row vectors, y = x·Wᵀ + b:
//
//   - Every RMSNorm weight g is folded into the linears that read the norm's output
//     (input_layernorm → q/k/v_proj, post_attention_layernorm → gate/up_proj, model.norm →
//     lm_head): W ← W·diag(g), and g ← 1. An RMSNorm without weight commutes with Q
//     because Q keeps every vector's length, and so its mean square.
//   - The residual stream x becomes x·Q: the embedding E ← E·Q; the linears that read the
//     stream (q/k/v/gate/up_proj, lm_head) W ← W·Q; the linears that write it (o_proj,
//     down_proj) W ← Qᵀ·W and b ← b·Q.
//   - Each head's values become v·R: v_proj W ← diag(Rᵀ, ..., Rᵀ)·W per key/value head (and
//     its bias b ← b·diag(R, ...)), o_proj W ← W·diag(R, ..., R) per attention head. With
//     grouped-query attention every query head of a group reads its key/value head's
//     rotated values and its o_proj block undoes the same R. q and k are not touched, so
//     the RoPE layout does not matter.
//
// Tied embeddings: after folding model.norm the classifier differs from the embedding, so
// the output is untied: Rotator.Names adds lm_head.weight and Rotator.Config sets
// TiedEmbeddings false (the checkpoint grows by vocab×dim).
//
// The rotations are randomized Hadamard matrices diag(s)·H/√n with seeded signs s, built
// as Sylvester ⊗ Paley for the orders that have one (see HadamardMatrix), applied by a
// fast Walsh–Hadamard transform; other widths get a seeded random orthogonal matrix. The
// same config, seed and options give the same bits.
//
// Rotator works one tensor at a time (a 70B checkpoint does not fit in memory): it reads
// the tensor and at most one RMSNorm weight from a Source and returns F32, computed in
// float64 and rounded once per transform (v_proj and o_proj take two). Callers convert the
// dtype. Checkpoint rotates a whole in-memory checkpoint.
package rotate
