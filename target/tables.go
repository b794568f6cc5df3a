package target

import (
	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/tensor"
)

// The capability tables. Paths are files of vllm-project/vllm (model_executor/... is
// vllm/model_executor/..., csrc/... its CUDA sources), vllm-project/compressed-tensors and
// huggingface/transformers, as read for these rows; docs/EXPORT.md cites them per rule.
//
// A new bit width is a number in SymBits/AsymBits once an engine's kernel takes it: vLLM's
// compressed-tensors WNA16 scheme maps num_bits 4 and 8 only (WNA16_SUPPORTED_TYPES_MAP:
// uint4b8, uint8b128; with zero points uint4, uint8); 3-, 5- and 6-bit pack-quantized
// layers fail there with "Unsupported num_bits", and neither Marlin nor Exllama lists
// their types. compressed-tensors itself packs any width from 1 to 8 bits (pack_to_int32),
// so transformers loads them.
const (
	srcMarlin = "model_executor/layers/quantization/kernels/mixed_precision/marlin.py, " +
		"model_executor/layers/quantization/utils/marlin_utils.py (query_marlin_supported_quant_types, " +
		"MARLIN_SUPPORTED_GROUP_SIZES, verify_marlin_supports_shape)"
	srcExllama = "model_executor/layers/quantization/kernels/mixed_precision/exllama.py (can_implement); " +
		"csrc/quantization/gptq/q_gemm.cu (the kernels step 32 inputs at a time and change group only on those steps)"
	srcW8A8 = "model_executor/layers/quantization/compressed_tensors/compressed_tensors.py (_is_static_tensor_w8a8, " +
		"_is_dynamic_token_w8a8: symmetric weights, per-tensor or per-channel); " +
		"csrc/quantization/cutlass_w8a8/scaled_mm_entry.cu (16-byte alignment of the output and weight strides)"
	srcFusedVLLM = "model_executor/models/llama.py, qwen2.py (packed_modules_mapping); " +
		"model_executor/layers/quantization/compressed_tensors/utils.py (_match_fused_layer: the fused layer " +
		"takes its first shard's scheme; should_ignore_layer: \"vLLM requires all to use the same scheme\")"
	srcCTPack = "compressed-tensors: compressors/quantized_compressors/pack_quantized.py (pack_to_int32: 1 to 8 bits, " +
		"any strategy); transformers: quantizers/quantizer_compressed_tensors.py"
	srcCTInt = "compressed-tensors: compressors/quantized_compressors/naive_quantized.py (int-quantized); " +
		"transformers: quantizers/quantizer_compressed_tensors.py"
	srcTRT = "TensorRT implicit INT8: one scale per network tensor from the calibration cache, weights " +
		"quantized by TensorRT itself per output channel"
	srcGGMLLegacy = "ggml/src/ggml-common.h (block_q8_0, block_q4_0, block_q4_1, block_q5_0, block_q5_1: QK = 32); " +
		"ggml/src/ggml.c (ggml_row_size: a row must hold whole blocks)"
	srcGGMLK = "ggml/src/ggml-common.h (block_q4_K, block_q6_K: QK_K = 256); ggml/src/ggml-quants.c; " +
		"tools/quantize (llama.cpp falls back to another type when a row is not a multiple of 256)"
	refFusedVLLM = "vllm llama.py packed_modules_mapping, compressed_tensors/utils.py"
	srcFusedTRT  = "q/k/v (and gate/up) read one network tensor, which has one calibration-cache entry"
)

var (
	weightOnly  = []quant.ActMode{quant.ActNone}
	int8Acts    = []quant.ActMode{quant.ActStatic, quant.ActDynamic}
	chanGroup   = []quant.Granularity{quant.PerChannel, quant.PerGroup}
	allGrains   = []quant.Granularity{quant.PerTensor, quant.PerChannel, quant.PerGroup}
	oneToEight  = []int{1, 2, 3, 4, 5, 6, 7, 8}
	llamaFusedQ = []string{"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"}
	llamaFusedG = []string{"mlp.gate_proj", "mlp.up_proj"}
)

// transformersKernels: compressed-tensors decompresses every format it writes, and
// transformers runs the decompressed model (int8 activations simulated).
var transformersKernels = []Kernel{
	{Name: "compressed-tensors pack-quantized", Source: srcCTPack, Ref: "compressed-tensors pack_quantized.py", Format: "pack-quantized", Acts: weightOnly,
		SymBits: oneToEight, AsymBits: oneToEight, Granularities: allGrains},
	{Name: "compressed-tensors int-quantized", Source: srcCTInt, Ref: "compressed-tensors naive_quantized.py", Format: "int-quantized", Acts: int8Acts,
		SymBits: []int{8}, AsymBits: []int{8}, Granularities: allGrains},
}

// all is every target, in the order --help lists them. The Llama fused groups cover the
// model package's architectures: Llama, Mistral and Qwen2 (whose q/k/v biases stay in
// the model dtype and do not change the fusion). Mixture-of-experts layers (vLLM's
// FusedMoE: all experts of a layer share one scheme) are not in the model package.
var all = []Target{
	{
		Name:   "vllm",
		Engine: "vLLM (compressed-tensors) on NVIDIA GPUs of compute capability 8.0 or newer, tensor parallel 1",
		Kernels: []Kernel{
			{Name: "Marlin", Source: srcMarlin, Ref: "vllm marlin.py, marlin_utils.py", Format: "pack-quantized", Acts: weightOnly,
				SymBits: []int{4, 8}, AsymBits: []int{4}, Granularities: chanGroup,
				GroupSizes: []int{-1, 32, 64, 128}, OutMultiple: 64, InMultiple: 128,
				DTypes: []tensor.DType{tensor.F16, tensor.BF16}},
			{Name: "Exllama", Source: srcExllama, Ref: "vllm exllama.py, q_gemm.cu", Format: "pack-quantized", Acts: weightOnly,
				SymBits: []int{4, 8}, Granularities: chanGroup,
				GroupMultiple: 32, InMultiple: 32, OutPack: true,
				DTypes: []tensor.DType{tensor.F16}},
			{Name: "CUTLASS int8", Source: srcW8A8, Ref: "vllm compressed_tensors.py, scaled_mm_entry.cu", Format: "int-quantized", Acts: int8Acts,
				SymBits: []int{8}, Granularities: []quant.Granularity{quant.PerTensor, quant.PerChannel},
				OutMultiple: 16, InMultiple: 16},
		},
		Fused: []Fused{
			{Name: "self_attn.qkv_proj", Members: llamaFusedQ, Source: srcFusedVLLM, Ref: refFusedVLLM},
			{Name: "mlp.gate_up_proj", Members: llamaFusedG, Source: srcFusedVLLM, Ref: refFusedVLLM},
		},
		ScalesInServeDType: true,
		FusedInputScaleMax: true,
	},
	{
		Name:    "transformers",
		Engine:  "Hugging Face transformers with compressed-tensors (decompressed on load, no fused layers)",
		Kernels: transformersKernels,
	},
	{
		Name:   "tensorrt",
		Engine: "TensorRT INT8 from the calibration cache (the ONNX model's own weights, quantized by TensorRT)",
		Kernels: []Kernel{
			{Name: "TensorRT INT8", Source: srcTRT, Ref: "TensorRT implicit INT8", Acts: []quant.ActMode{quant.ActStatic},
				SymBits: []int{8}, Granularities: []quant.Granularity{quant.PerChannel}},
		},
		Fused: []Fused{
			{Name: "self_attn.qkv_input", Members: llamaFusedQ, Source: srcFusedTRT, Ref: "one cache entry per network tensor"},
			{Name: "mlp.gate_up_input", Members: llamaFusedG, Source: srcFusedTRT, Ref: "one cache entry per network tensor"},
		},
	},
	{
		Name:   "gguf",
		Engine: "llama.cpp (GGUF v3, llama architecture): one .gguf file with the tokenizer",
		Kernels: []Kernel{
			{Name: "ggml blocks of 32", Source: srcGGMLLegacy, Ref: "ggml-common.h, ggml.c", Format: "gguf", Acts: weightOnly,
				Blocks:  []quant.Block{quant.BlockQ8_0, quant.BlockQ4_0, quant.BlockQ4_1, quant.BlockQ5_0, quant.BlockQ5_1},
				SymBits: []int{4, 5, 8}, AsymBits: []int{4, 5}, Granularities: []quant.Granularity{quant.PerGroup},
				GroupSizes: []int{32}, InMultiple: 32},
			{Name: "ggml k-quants", Source: srcGGMLK, Ref: "ggml-common.h, ggml-quants.c", Format: "gguf", Acts: weightOnly,
				Blocks:  []quant.Block{quant.BlockQ4_K, quant.BlockQ6_K},
				SymBits: []int{6}, AsymBits: []int{4}, Granularities: []quant.Granularity{quant.PerGroup},
				GroupSizes: []int{16, 32}, InMultiple: 256},
		},
	},
	{
		Name:    "any",
		Engine:  "any compressed-tensors reader (what transformers loads), with a warning per layer vLLM would not load",
		Kernels: transformersKernels,
		WarnAs:  "vllm",
	},
}
