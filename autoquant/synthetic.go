package autoquant

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/safetensors"
	"github.com/autoq/autoq/tensor"
)

// SyntheticConfig is the built-in model `autoq run` uses without --model: a small Llama
// (4 layers, dim 64, grouped-query attention, vocabulary 256) whose widths divide by 32.
var SyntheticConfig = checkpoint.LlamaConfig{
	Dim: 64, HiddenDim: 192, Layers: 4, Heads: 4, KVHeads: 2, Vocab: 256, MaxSeq: 256,
	RopeTheta: 10000, NormEps: 1e-5, TiedEmbeddings: true, Architecture: "LlamaForCausalLM", TorchDType: "float32",
}

// syntheticOutlierDims are the hidden dimensions that carry activation outliers: the
// RMSNorm weights in front of q/k/v and gate/up are 20x larger there, so that the inputs of
// those layers have a few channels far above the rest, as in trained LLMs. Per-tensor
// activation scales suffer from them; per-token scales and weight quantization less so.
var syntheticOutlierDims = []int{5, 37, 50}

// Synthetic builds the built-in model deterministically (same bits everywhere): weights
// Student-t(5) with std 1/sqrt(fan_in) (0.1/sqrt(fan_in) for the projections that write
// into the residual stream, so each block perturbs rather than replaces the token's
// embedding), a tied embedding scaled so that next-token distributions are peaked, and
// the outlier dimensions above.
func Synthetic() *Source {
	cfg := SyntheticConfig
	r := rand.New(rand.NewPCG(0x6175746f71, 2)) // "autoq"
	mat := func(rows, cols int, sd float64) *tensor.Tensor {
		v := make([]float32, rows*cols)
		for i := range v {
			v[i] = float32(studentT5(r) * sd * math.Sqrt(3.0/5.0)) // t(5) has variance 5/3
		}
		return tensor.FromF32(v, rows, cols)
	}
	norm := func(n int, outliers bool) *tensor.Tensor {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(1 + 0.1*r.NormFloat64())
		}
		if outliers {
			for _, d := range syntheticOutlierDims {
				v[d] *= 10
			}
		}
		return tensor.FromF32(v, n)
	}
	D, H, KV := cfg.Dim, cfg.HiddenDim, cfg.KVDim()
	inv := func(n int) float64 { return 1 / math.Sqrt(float64(n)) }
	ts := []safetensors.NamedTensor{{Name: "model.embed_tokens.weight", T: mat(cfg.Vocab, D, 2*inv(D))}}
	for l := 0; l < cfg.Layers; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		ts = append(ts,
			safetensors.NamedTensor{Name: p + "input_layernorm.weight", T: norm(D, true)},
			safetensors.NamedTensor{Name: p + "self_attn.q_proj.weight", T: mat(D, D, inv(D))},
			safetensors.NamedTensor{Name: p + "self_attn.k_proj.weight", T: mat(KV, D, inv(D))},
			safetensors.NamedTensor{Name: p + "self_attn.v_proj.weight", T: mat(KV, D, inv(D))},
			safetensors.NamedTensor{Name: p + "self_attn.o_proj.weight", T: mat(D, D, 0.1*inv(D))},
			safetensors.NamedTensor{Name: p + "post_attention_layernorm.weight", T: norm(D, true)},
			safetensors.NamedTensor{Name: p + "mlp.gate_proj.weight", T: mat(H, D, inv(D))},
			safetensors.NamedTensor{Name: p + "mlp.up_proj.weight", T: mat(H, D, inv(D))},
			safetensors.NamedTensor{Name: p + "mlp.down_proj.weight", T: mat(D, H, 0.1*inv(H))},
		)
	}
	ts = append(ts, safetensors.NamedTensor{Name: "model.norm.weight", T: norm(D, false)})
	src := &Source{Cfg: cfg, Tensors: ts}
	cj, _ := checkpoint.ConfigJSON(&cfg) // valid by construction
	_ = json.Unmarshal(cj, &src.Config)
	return src
}

// SyntheticData returns deterministic token windows for a model (the synthetic one):
// documents drawn from the first-order Markov chain whose transition from token v is the
// model's own next-token distribution after [BOS, v] (one batched forward pass), so that
// the model predicts its data about as well as a trained model predicts text, and the
// perplexity means something. Each document starts with BOS (1).
func SyntheticData(src *Source, seqLen int, opt DataOptions) (*Data, error) {
	opt.defaults()
	if opt.EvalTokens <= 0 {
		opt.EvalTokens = 8192
	}
	m, err := src.NewModel()
	if err != nil {
		return nil, err
	}
	V := src.Cfg.Vocab
	pairs := make([][]int, V)
	for v := range pairs {
		pairs[v] = []int{1, v}
	}
	logits, err := m.Forward(pairs, nil)
	if err != nil {
		return nil, err
	}
	cum := make([][]float64, V) // cumulative transition probabilities
	for v := range cum {
		row := logits[v][V : 2*V]
		mx := row[0]
		for _, x := range row {
			mx = max(mx, x)
		}
		cum[v] = make([]float64, V)
		z := 0.0
		for u, x := range row {
			if u != 1 { // never emit BOS inside a document
				z += math.Exp(float64(x - mx))
			}
			cum[v][u] = z
		}
		for u := range cum[v] {
			cum[v][u] /= z
		}
	}
	r := rand.New(rand.NewPCG(0x64617461, 3)) // "data"
	gen := func(tokens int) [][]int {
		var out [][]int
		for n := 0; n < tokens; {
			w := []int{1}
			for t := 1; len(w) < seqLen && n+len(w) < tokens; {
				u := r.Float64()
				next := 0
				for next < V-1 && cum[t][next] < u {
					next++
				}
				t = next
				w = append(w, t)
			}
			if len(w) < 2 {
				break
			}
			out = append(out, w)
			n += len(w)
		}
		return out
	}
	return &Data{Calib: gen(opt.CalibTokens), Sens: gen(opt.SensTokens), Eval: gen(opt.EvalTokens)}, nil
}

func studentT5(r *rand.Rand) float64 {
	z := r.NormFloat64()
	var chi float64
	for k := 0; k < 5; k++ {
		g := r.NormFloat64()
		chi += g * g
	}
	return z / math.Sqrt(chi/5)
}
