// Package llamacpp runs llama.cpp (the prebuilt CPU build that node-llama-cpp ships) as an
// independent check of autoq's GGUF output: per-position log-probabilities of token windows
// (scripts/llamacpp/ppl.mjs), prompt and generation speed, and ggml's own quantizers and
// dequantizers (scripts/llamacpp/ggmlq.c, built with the system C compiler) for
// byte-for-byte comparisons with package gguf.
//
// Install it with scripts/llamacpp/install.sh (pinned node-llama-cpp, CPU binaries only,
// into .llamacpp/ at the repository root). Find reports ErrNotInstalled when node or the
// package is missing, so tests can skip cleanly.
package llamacpp
