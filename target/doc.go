// Package target says what a serving engine can load: for each export target (vllm,
// transformers, tensorrt, gguf, any) a capability table written once as data (tables.go).
//
// A target lists its kernels, each with the schemes it takes (weight bits with and
// without zero points, granularities, group sizes, activation modes, the serving dtype)
// and its shape rules (multiples of the output and input features), and its fused
// groups: layers the engine loads as one linear layer (vLLM's qkv_proj = q/k/v, and
// gate_up_proj = gate/up), which must therefore share one scheme. A layer (or a fused
// group, whose output features are its members' summed) is loadable when one kernel
// accepts its scheme; w16 (full precision) always is.
//
// The planner (package plan) plans each fused group as one unit and offers it only
// loadable schemes (Units, Check); the export job checks a whole plan (CheckPlan) and
// refuses what the target cannot load, naming the layer, the scheme and the rule. New
// bit widths and targets are new table rows, not new code: Kernel.Format names the
// storage format, and Kernel.Blocks the llama.cpp block formats (recipes q8_0 ... q6_k)
// of the gguf target, which takes those and nothing else below full precision.
//
// Every rule names the file of the engine it was read from (docs/EXPORT.md has the
// table with its sources).
package target
