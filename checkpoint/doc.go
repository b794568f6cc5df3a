// Package checkpoint reads and writes Llama-family model checkpoints in the layouts autoq
// meets: llama2.c's legacy float32 .bin files (ReadLlama2C) and Hugging Face checkpoint
// directories (config.json + model.safetensors; ReadConfig, WriteHF). Tensor data goes
// through package safetensors.
//
// Rotary embeddings: llama2.c (like Meta's original checkpoints) rotates interleaved pairs
// (x[2i], x[2i+1]) of each head, while Hugging Face's Llama applies rotate_half, pairing
// x[i] with x[i+head_dim/2]. Hugging Face checkpoints therefore store wq and wk with the
// rows of each head permuted: HF row h*hd + p*hd/2 + i is llama2.c row h*hd + 2i + p
// (p in {0,1}, i < hd/2), the permutation of transformers' convert_llama_weights_to_hf.py
// (w.view(n_heads, hd/2, 2, dim).transpose(1, 2).reshape(dim, dim)). ReadLlama2C applies it
// to q_proj (over n_heads) and k_proj (over n_kv_heads), so its output is what a Hugging
// Face loader expects. See docs/FORMAT.md.
package checkpoint
