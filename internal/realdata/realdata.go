// Package realdata is the real-model evaluation protocol shared by the accuracy tests of
// the int4 packages (gptq/collect, awq): stories260K, calibration windows from eval's
// "calib" split of tinystories_val.txt (documents in the file's first half) and the
// held-out "eval" split (second half), windows of 256 tokens, perplexity by eval.Evaluate.
// Tests skip (testutil.SharedData) when ../shared/data is absent.
package realdata

import (
	"testing"

	"github.com/autoq/autoq/eval"
	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/tokenizer"
	"github.com/stretchr/testify/require"
)

// SeqLen is the window length of the protocol.
const SeqLen = 256

// Model loads stories260K and its tokenizer (tok512.bin).
func Model(t testing.TB) (*model.Model, tokenizer.Tokenizer) {
	t.Helper()
	m, err := model.Load(testutil.SharedData(t, "stories260K.bin"))
	require.NoError(t, err)
	tok, err := tokenizer.Load(testutil.SharedData(t, "tok512.bin"))
	require.NoError(t, err)
	return m, tok
}

// Windows reads the windows of seqLen tokens of split ("calib" or "eval") of
// tinystories_val.txt, at most tokens tokens (0: all), tokenized by tok for m.
func Windows(t testing.TB, m *model.Model, tok tokenizer.Tokenizer, split string, seqLen, tokens int) [][]int {
	t.Helper()
	ws, err := eval.ReadWindows(testutil.SharedData(t, "tinystories_val.txt"), tok, m.Config.Vocab, eval.DataOptions{SeqLen: seqLen, MaxTokens: tokens, Split: split})
	require.NoError(t, err)
	return ws
}

// Load returns the model, calibTokens of calibration windows, and an opener of a fresh
// source of evalTokens held-out tokens (closed when the test ends).
func Load(t testing.TB, calibTokens, evalTokens int) (*model.Model, [][]int, func() eval.Source) {
	t.Helper()
	m, tok := Model(t)
	calib := Windows(t, m, tok, "calib", SeqLen, calibTokens)
	dp := testutil.SharedData(t, "tinystories_val.txt")
	open := func() eval.Source {
		w, err := eval.OpenWindows(dp, tok, m.Config.Vocab, eval.DataOptions{SeqLen: SeqLen, MaxTokens: evalTokens, Split: "eval"})
		require.NoError(t, err)
		t.Cleanup(func() { w.Close() })
		return w
	}
	return m, calib, open
}

// Perplexity is eval.Evaluate's perplexity of m on src.
func Perplexity(t testing.TB, m *model.Model, src eval.Source) float64 {
	t.Helper()
	r, err := eval.Evaluate(m, nil, src, eval.Options{Vocab: m.Config.Vocab, BOS: 1, Batch: 8})
	require.NoError(t, err)
	return r.Perplexity
}
