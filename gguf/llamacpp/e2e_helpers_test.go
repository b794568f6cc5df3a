package llamacpp_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"

	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/eval"
	"github.com/autoq/autoq/gguf"
	"github.com/autoq/autoq/gguf/llamacpp"
	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/tensor"
	"github.com/autoq/autoq/tokenizer"
	"github.com/stretchr/testify/require"
)

// install returns the llama.cpp installation, skipping when it is absent.
func install(t *testing.T) *llamacpp.Install {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: skipping the llama.cpp end-to-end check (it starts node)")
	}
	in, err := llamacpp.Find(testutil.RepoRoot(t))
	if errors.Is(err, llamacpp.ErrNotInstalled) {
		t.Skipf("skipping the llama.cpp check: %v", err)
	}
	require.NoError(t, err)
	return in
}

// storiesWindows is the first n windows of seqLen tokens of the evaluation half of
// tinystories_val.txt, tokenized the way autoq's eval does.
func storiesWindows(t *testing.T, n, seqLen int) [][]int {
	tok, err := tokenizer.LoadLlama2C(testutil.SharedData(t, "tok512.bin"))
	require.NoError(t, err)
	ws, err := eval.OpenWindows(testutil.SharedData(t, "tinystories_val.txt"), tok, 512, eval.DataOptions{SeqLen: seqLen, MaxTokens: n * seqLen, Split: "eval"})
	require.NoError(t, err)
	defer ws.Close()
	var out [][]int
	for len(out) < n {
		w, err := ws.Next()
		require.NoError(t, err)
		out = append(out, w)
	}
	return out
}

// autoqLogProbs runs autoq's CPU forward pass: lp[w][p] = ln P(w[p+1] | w[:p+1]), the log
// softmax in float64 as eval computes it.
func autoqLogProbs(t *testing.T, m *model.Model, windows [][]int) [][]float64 {
	logits, err := m.Forward(windows, nil)
	require.NoError(t, err)
	V := m.Config.Vocab
	out := make([][]float64, len(windows))
	for w, win := range windows {
		for p := 0; p+1 < len(win); p++ {
			row := logits[w][p*V : (p+1)*V]
			out[w] = append(out[w], float64(row[win[p+1]])-eval.LogSumExp(row))
		}
	}
	return out
}

// agreement compares two scorings over the positions eval scores (targets that are not BOS).
type agreement struct {
	AutoqNLL, LlamaNLL float64 // mean negative log-likelihood, nats
	Rel                float64 // |llama - autoq| / autoq of the mean NLL
	PPLRel             float64 // same for perplexity
	MaxAbs             float64 // largest per-position |Δ log p|
	Median             float64 // median per-position |Δ log p|
	N                  int
}

func (a agreement) String() string {
	return fmt.Sprintf("%d positions: autoq NLL %.6f (ppl %.4f), llama.cpp NLL %.6f (ppl %.4f): NLL rel diff %.2e, ppl rel diff %.2e, |Δ log p| median %.1e max %.1e",
		a.N, a.AutoqNLL, math.Exp(a.AutoqNLL), a.LlamaNLL, math.Exp(a.LlamaNLL), a.Rel, a.PPLRel, a.Median, a.MaxAbs)
}

func compare(windows [][]int, ours, theirs [][]float64, bos int) agreement {
	var a agreement
	var diffs []float64
	for w, win := range windows {
		for p := range ours[w] {
			if !eval.Scored(win, p, bos) {
				continue
			}
			a.N++
			a.AutoqNLL -= ours[w][p]
			a.LlamaNLL -= theirs[w][p]
			diffs = append(diffs, math.Abs(ours[w][p]-theirs[w][p]))
		}
	}
	sort.Float64s(diffs)
	a.Median, a.MaxAbs = diffs[len(diffs)/2], diffs[len(diffs)-1]
	a.AutoqNLL /= float64(a.N)
	a.LlamaNLL /= float64(a.N)
	a.Rel = math.Abs(a.LlamaNLL-a.AutoqNLL) / a.AutoqNLL
	a.PPLRel = math.Abs(math.Exp(a.LlamaNLL)-math.Exp(a.AutoqNLL)) / math.Exp(a.AutoqNLL)
	return a
}

func llamaLogProbs(t *testing.T, in *llamacpp.Install, path string, windows [][]int) [][]float64 {
	lp, err := in.LogProbs(context.Background(), path, windows, 1)
	require.NoError(t, err)
	return lp
}

// modelFromGGUF loads a llama GGUF into autoq's model (exactly the stored weights). With
// acts, every linear whose weight is a block format also rounds its input the way
// llama.cpp's CPU backend does before the dot products (ggml's vec_dot_type): Q8_0 blocks
// of 32 for Q8_0/Q4_0/Q5_0 (and Q8_1 for Q4_1/Q5_1: the same values), Q8_K blocks of 256 for
// the k-quants. For Q4_1/Q5_1 the input's stored block sum (Q8_1's s) multiplies the
// weights' block min, as ggml's vec_dot_q4_1_q8_1 does.
func modelFromGGUF(t *testing.T, path string, acts bool) *model.Model {
	f, err := gguf.Open(path)
	require.NoError(t, err)
	defer f.Close()
	cfg, err := gguf.LlamaConfig(f)
	require.NoError(t, err)
	ts, err := gguf.LlamaTensors(f, cfg)
	require.NoError(t, err)
	m, err := model.New(*cfg, ts)
	require.NoError(t, err)
	if !acts {
		return m
	}
	for _, ti := range f.Tensors {
		hf, _ := gguf.HFName(ti.Name)
		name := strings.TrimSuffix(hf, ".weight")
		lin := m.Linear(name)
		if lin == nil || ti.Type.BlockSize() == 1 {
			continue
		}
		n, k := lin.Dims()
		acts := &ggmlActs{q8k: ti.Type == gguf.Q4_K || ti.Type == gguf.Q6_K}
		w := ts[hf].F32()
		if ti.Type == gguf.Q4_1 || ti.Type == gguf.Q5_1 {
			// Q8_1 inputs: the block's min meets the input's stored sum s (F16), not the
			// sum of its rounded values, so split the weights into q*d and the mins.
			raw, err := f.TensorData(ti.Name)
			require.NoError(t, err)
			q, err := gguf.Unpack(ti.Name, ti.Type, n, k, raw)
			require.NoError(t, err)
			w = make([]float32, n*k)
			mins := make([]float32, n*k/32)
			for i := range w {
				w[i] = float32(q.Q[i]) * tensor.F16ToF32(q.D[i/32])
			}
			for i := range mins {
				mins[i] = tensor.F16ToF32(q.M[i])
			}
			if heads := map[bool]int{true: cfg.Heads}[strings.Contains(name, "q_proj")] + map[bool]int{true: cfg.KVHeads}[strings.Contains(name, "k_proj")]; heads > 0 {
				w = checkpoint.PermuteRoPE(tensor.FromF32(w, n, k), heads).F32()
				mins = checkpoint.PermuteRoPE(tensor.FromF32(mins, n, k/32), heads).F32()
			}
			acts.mins = mins
		}
		d, err := model.NewDense(w, nil, n, k)
		require.NoError(t, err)
		acts.Dense = d
		require.NoError(t, m.SetLinear(name, acts))
	}
	return m
}

// ggmlActs is a dense layer whose input is first rounded as ggml's quantize_row_q8_0
// (x86: q = rne(x*127/amax) per 32, scale F16(amax/127)) or quantize_row_q8_K (q =
// min(127, rne(x*(-127/max))) per 256 with max the signed value of largest magnitude,
// scale 1/iscale) round it.
type ggmlActs struct {
	*model.Dense
	q8k  bool
	mins []float32 // Q4_1/Q5_1: per [row, block] min, with W holding q*d only
	xq   []float32
	sums []float32 // Q8_1's s per input block: F16(d*sum(q))
}

func (g *ggmlActs) Forward(x []float32, M int, out []float32) {
	_, K := g.Dims()
	if cap(g.xq) < M*K {
		g.xq = make([]float32, M*K)
	}
	xq := g.xq[:M*K]
	g.sums = g.sums[:0]
	bs := 32
	if g.q8k {
		bs = 256
	}
	for b := 0; b < M*K; b += bs {
		blk, dst := x[b:b+bs], xq[b:b+bs]
		var amax, mx float32
		for _, v := range blk {
			if a := float32(math.Abs(float64(v))); a > amax {
				amax, mx = a, v
			}
		}
		if amax == 0 {
			clear(dst)
			g.sums = append(g.sums, 0)
			continue
		}
		if g.q8k {
			iscale := -127 / mx
			d := 1 / iscale
			for j, v := range blk {
				dst[j] = float32(min(127, math.RoundToEven(float64(iscale*v)))) * d
			}
			continue
		}
		d := tensorF16(amax / 127)
		id := 127 / amax
		var sum float32
		for j, v := range blk {
			q := float32(math.RoundToEven(float64(v * id)))
			dst[j] = q * d
			sum += q
		}
		g.sums = append(g.sums, tensorF16(amax/127*sum))
	}
	g.Dense.Forward(xq, M, out)
	if g.mins != nil {
		N, nb := g.N, K/32
		for m := 0; m < M; m++ {
			for n := 0; n < N; n++ {
				var acc float32
				for b := 0; b < nb; b++ {
					acc += g.mins[n*nb+b] * g.sums[m*nb+b]
				}
				out[m*N+n] += acc
			}
		}
	}
}

func tensorF16(x float32) float32 { return tensor.F16ToF32(tensor.F32ToF16(x)) }
