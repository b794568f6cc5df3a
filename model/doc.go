// Package model runs Llama-family language models (Llama, Llama 2/3, TinyLlama, Qwen2-style
// attention bias) on the CPU: a prefill-only forward pass (whole sequences, causal
// attention, no KV cache) in pure Go, parallel over rows and attention heads with
// goroutines, deterministic (the same inputs give the same bits whatever the scheduling).
//
// Weights use Hugging Face names (model.layers.N.self_attn.q_proj.weight, ...) and HF's
// RoPE convention: q/k rows are in the "half-split" order and rotary pairs are
// (i, i+head_dim/2) ("rotate_half"). llama2.c checkpoints are converted to that order on
// load (package checkpoint permutes wq/wk), which gives the same logits as llama2.c's
// interleaved pairs (2i, 2i+1) on the unpermuted weights; a test checks it.
//
// Every linear layer is pluggable (SetLinear): the full-precision Dense, the fake-quantized
// FakeQuant (dequantized weights, optional int8 activation quantization), or a real
// quantized kernel from another package. A Hook passed to Forward sees the input of every
// linear layer, which is how calibration collects activation statistics.
//
// Forward is also available one decoder block at a time (blocks.go): Embed gives the
// residual stream before block 0 (a Hidden), RunBlocks advances it through blocks [i, j) in
// place, ProbeBlock runs a block only as far as one linear layer's input, and Head turns the
// last state into logits; the pieces give Forward's bits. Passes that change the model block
// by block (sequential GPTQ, per-block sensitivity, streaming a large model's weights)
// keep the state at a block boundary instead of re-running the blocks before it.
package model
