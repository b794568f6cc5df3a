package calibrun

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/autoq/autoq/calib"
	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/internal/llamatest"
	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/model"
	"github.com/stretchr/testify/require"
)

// outlierDim is the hidden dimension whose RMSNorm weight is 40x the others in the tiny
// model, so the inputs of q/k/v and gate/up have one outlier channel there.
const outlierDim = 3

// tinyModel builds a deterministic 2-layer Llama (dim 16, vocabulary 40).
func tinyModel(t *testing.T) *model.Model {
	t.Helper()
	return tinyModelSeed(t, 7)
}

// tinyModelSeed is tinyModel with other random weights for another seed.
func tinyModelSeed(t *testing.T, seed uint64) *model.Model {
	t.Helper()
	cfg := checkpoint.LlamaConfig{Dim: 16, HiddenDim: 24, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 40,
		MaxSeq: 64, RopeTheta: 10000, NormEps: 1e-5, TiedEmbeddings: true}
	// Norm weights 1 with one outlier channel, which every linear input inherits.
	ts := llamatest.Tensors(cfg, seed, func(_ *rand.Rand, n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = 1
		}
		v[outlierDim] = 40
		return v
	})
	m, err := model.New(cfg, ts)
	require.NoError(t, err)
	return m
}

// writeJSONL writes documents of token ids, one JSON array per line.
func writeJSONL(t *testing.T, docs [][]int) string {
	t.Helper()
	var b strings.Builder
	for _, d := range docs {
		j, err := json.Marshal(d)
		require.NoError(t, err)
		b.Write(j)
		b.WriteByte('\n')
	}
	return testutil.WriteFile(t, t.TempDir(), "data.jsonl", []byte(b.String()))
}

// randomDocs returns n documents of BOS (1) followed by 5..30 random ids in [3, vocab).
func randomDocs(n, vocab int, seed uint64) [][]int {
	r := testutil.Rand(seed)
	docs := make([][]int, n)
	for i := range docs {
		d := []int{1}
		for range 5 + r.IntN(26) {
			d = append(d, 3+r.IntN(vocab-3))
		}
		docs[i] = d
	}
	return docs
}

// tinyCorpus is tinyModel with n random documents for it (randomDocs with seed), also
// written as a JSONL file.
func tinyCorpus(t *testing.T, n int, seed uint64) (m *model.Model, docs [][]int, data string) {
	t.Helper()
	m = tinyModel(t)
	docs = randomDocs(n, m.Config.Vocab, seed)
	return m, docs, writeJSONL(t, docs)
}

// directHists bins the input of every linear layer, each name on its own (no grouping),
// over windows in forward passes of one window each: the reference the runner must equal.
func directHists(t *testing.T, m *model.Model, windows [][]int) map[string]*calib.Histogram {
	t.Helper()
	hs := map[string]*calib.Histogram{}
	for _, w := range windows {
		_, err := m.Forward([][]int{w}, func(name string, x []float32, M, K int) {
			h, ok := hs[name]
			if !ok {
				h = calib.NewHistogram(name)
				h.ChannelAbsMax = make([]float32, K)
				hs[name] = h
			}
			h.AddF32(x[:M*K])
			h.AddChannelAbsMax(x[:M*K], K)
		})
		require.NoError(t, err)
	}
	return hs
}

// cutWindows concatenates docs and cuts windows of seqLen (the last one shorter, >= 2),
// as eval's windowing documents.
func cutWindows(docs [][]int, seqLen int) [][]int {
	var stream []int
	for _, d := range docs {
		stream = append(stream, d...)
	}
	var out [][]int
	for len(stream) >= 2 {
		n := min(seqLen, len(stream))
		out = append(out, stream[:n])
		stream = stream[n:]
	}
	return out
}
