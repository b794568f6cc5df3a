// Package realdata is the real-model evaluation protocol shared by the accuracy tests of
// the int4 packages (gptq/collect, awq): stories260K, calibration windows from eval's
// "calib" split of tinystories_val.txt (documents in the file's first half) and the
// held-out "eval" split (second half), windows of 256 tokens, perplexity by eval.Evaluate.
// Tests skip (testutil.SharedData) when ../shared/data is absent.
package realdata

import (
	"errors"
	"io"
	"testing"

	"github.com/autoq/autoq/eval"
	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/tokenizer"
	"github.com/stretchr/testify/require"
)

// SeqLen is the window length of the protocol.
const SeqLen = 256

// Load returns the model, calibTokens of calibration windows, and an opener of a fresh
// source of evalTokens held-out tokens (closed when the test ends).
func Load(t testing.TB, calibTokens, evalTokens int) (*model.Model, [][]int, func() eval.Source) {
	t.Helper()
	m, err := model.Load(testutil.SharedData(t, "stories260K.bin"))
	require.NoError(t, err)
	tok, err := tokenizer.Load(testutil.SharedData(t, "tok512.bin"))
	require.NoError(t, err)
	dp := testutil.SharedData(t, "tinystories_val.txt")
	w, err := eval.OpenWindows(dp, tok, m.Config.Vocab, eval.DataOptions{SeqLen: SeqLen, MaxTokens: calibTokens, Split: "calib"})
	require.NoError(t, err)
	defer w.Close()
	var calib [][]int
	for {
		win, err := w.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		calib = append(calib, win)
	}
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
