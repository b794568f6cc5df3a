package main

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/safetensors"
	"github.com/autoq/autoq/tensor"
)

// syntheticConfig is the built-in checkpoint `autoq quantize` uses when given no PATH: a
// small Llama (2 layers, dim 256, grouped-query attention) whose widths divide by the
// usual group sizes (32, 64, 128).
var syntheticConfig = checkpoint.LlamaConfig{
	Dim: 256, HiddenDim: 512, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 1024, MaxSeq: 256,
	RopeTheta: 10000, NormEps: 1e-5, TiedEmbeddings: true, Architecture: "LlamaForCausalLM", TorchDType: "float32",
}

// syntheticOutlierCols are the input channels that carry outliers in every projection that
// reads the residual stream, as trained LLMs do (a handful of hidden dimensions with
// magnitudes far above the rest).
var syntheticOutlierCols = []int{7, 100, 201}

// syntheticCheckpoint builds the built-in checkpoint deterministically (same bits on every
// machine): weights are Student-t(5) distributed with std about 1/sqrt(fan_in), and the
// outlier input channels of q/k/v/gate/up are 12x larger, so that per-tensor and
// per-channel scales are visibly hurt by the outliers while group scales are not.
func syntheticCheckpoint() (*checkpoint.LlamaConfig, []safetensors.NamedTensor) {
	cfg := syntheticConfig
	r := rand.New(rand.NewPCG(0x6175746f71, 1)) // "autoq"
	mat := func(rows, cols int, outliers bool) *tensor.Tensor {
		v := make([]float32, rows*cols)
		sd := 1 / math.Sqrt(float64(cols))
		for i := range v {
			v[i] = float32(studentT5(r) * sd * math.Sqrt(3.0/5.0)) // t(5) has variance 5/3
		}
		if outliers {
			for row := 0; row < rows; row++ {
				for _, c := range syntheticOutlierCols {
					v[row*cols+c] *= 12
				}
			}
		}
		return tensor.FromF32(v, rows, cols)
	}
	norm := func(n int) *tensor.Tensor {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(1 + 0.1*r.NormFloat64())
		}
		return tensor.FromF32(v, n)
	}
	D, H, KV := cfg.Dim, cfg.HiddenDim, cfg.KVDim()
	out := []safetensors.NamedTensor{{Name: "model.embed_tokens.weight", T: mat(cfg.Vocab, D, false)}}
	for l := 0; l < cfg.Layers; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		out = append(out,
			safetensors.NamedTensor{Name: p + "self_attn.q_proj.weight", T: mat(D, D, true)},
			safetensors.NamedTensor{Name: p + "self_attn.k_proj.weight", T: mat(KV, D, true)},
			safetensors.NamedTensor{Name: p + "self_attn.v_proj.weight", T: mat(KV, D, true)},
			safetensors.NamedTensor{Name: p + "self_attn.o_proj.weight", T: mat(D, D, false)},
			safetensors.NamedTensor{Name: p + "mlp.gate_proj.weight", T: mat(H, D, true)},
			safetensors.NamedTensor{Name: p + "mlp.up_proj.weight", T: mat(H, D, true)},
			safetensors.NamedTensor{Name: p + "mlp.down_proj.weight", T: mat(D, H, false)},
			safetensors.NamedTensor{Name: p + "input_layernorm.weight", T: norm(D)},
			safetensors.NamedTensor{Name: p + "post_attention_layernorm.weight", T: norm(D)},
		)
	}
	out = append(out, safetensors.NamedTensor{Name: "model.norm.weight", T: norm(D)})
	return &cfg, out
}

// studentT5 draws from Student's t with 5 degrees of freedom (heavy tails like real weights).
func studentT5(r *rand.Rand) float64 {
	z := r.NormFloat64()
	var chi float64
	for k := 0; k < 5; k++ {
		g := r.NormFloat64()
		chi += g * g
	}
	return z / math.Sqrt(chi/5)
}
