// Package synth writes deterministic synthetic checkpoints at the shapes of real Llama
// models (Llama-2 7B/13B/70B, Llama-3 8B): sharded safetensors with a Hugging Face index,
// config.json with the models' hyper-parameters, and a synthetic SentencePiece-style
// tokenizer.json of the right vocabulary size that package tokenizer loads.
//
// The weights are Student-t(5) with std 1/sqrt(fan_in) (heavy tails, as trained weights
// have), and a few hidden dimensions carry activation outliers: the RMSNorm weights in
// front of the attention and the MLP are 20x larger there, as autoquant's small built-in
// model does. No real weights are involved: the checkpoints exist to measure speed and
// memory of autoq's jobs at real sizes (`autoq synth`, then `autoq quantize`).
//
// Bits depend only on (shape, layers, dtype, seed): every tensor is generated in fixed
// chunks of elements, each from its own PCG stream keyed by the seed, the tensor's name and
// the chunk's index, so neither the number of workers nor the layer count changes a value
// (layer 0 of a 2-layer checkpoint equals layer 0 of the 32-layer one). Tensors are
// generated and written a slab at a time, so memory stays bounded for any shape.
package synth

// OutputKind marks a directory autoq synth wrote (internal/atomicfile's output marker).
const OutputKind = "synthetic checkpoint"
