package collect

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/autoq/autoq/eval"
	"github.com/autoq/autoq/gptq"
	"github.com/autoq/autoq/internal/realdata"
	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/tokenizer"
	"github.com/stretchr/testify/require"
)

// TestCalibrationSlicesTable measures GPTQ variants over disjoint calibration slices of
// the calib split (slice i = tokens [i*n, (i+1)*n)), each evaluated on the protocol's
// held-out tokens, and prints mean and spread of the perplexity increase per variant.
//
//	AUTOQ_SLICES_TABLE=1 go test ./gptq/collect -run TestCalibrationSlicesTable -v -timeout 2h
//
// AUTOQ_SLICES (5), AUTOQ_SLICE_TOKENS (32768), AUTOQ_EVAL_TOKENS (32768),
// AUTOQ_SLICE_SCHEME (w4g32a), AUTOQ_SLICE_CLIP (act-mse; "none": min/max ranges),
// AUTOQ_SLICE_VARIANTS (comma list of the names below).
func TestCalibrationSlicesTable(t *testing.T) {
	if os.Getenv("AUTOQ_SLICES_TABLE") == "" {
		t.Skip("set AUTOQ_SLICES_TABLE=1 (minutes of CPU)")
	}
	slices, n, evalTokens := testutil.EnvInt("AUTOQ_SLICES", 5), testutil.EnvInt("AUTOQ_SLICE_TOKENS", 32768), testutil.EnvInt("AUTOQ_EVAL_TOKENS", 32768)
	schemeName := os.Getenv("AUTOQ_SLICE_SCHEME")
	if schemeName == "" {
		schemeName = "w4g32a"
	}
	r, err := quant.ParseRecipe(schemeName)
	require.NoError(t, err)
	s := r.Weight
	m, _, open := realdata.Load(t, realdata.SeqLen, evalTokens)
	tok, err := tokenizer.Load(testutil.SharedData(t, "tok512.bin"))
	require.NoError(t, err)
	fp := realdata.Perplexity(t, m, open())
	best := gptq.Options{ActOrder: true}
	dyn := gptq.Options{ActOrder: true, Groups: gptq.GroupsDynamic}
	type variant struct {
		name     string
		mode     Mode
		opt      gptq.Options
		fpTarget bool
	}
	all := []variant{
		{"static", OneShot, best, false}, {"dynamic", OneShot, dyn, false},
		{"static+seq-block", ByBlock, best, false}, {"static+seq-layer", ByLayer, best, false},
		{"dynamic+seq-block", ByBlock, dyn, false}, {"dynamic+seq-layer", ByLayer, dyn, false},
		{"no-act-order", OneShot, gptq.Options{}, false},
		{"static+seq-block+fp-target", ByBlock, best, true}, {"static+seq-layer+fp-target", ByLayer, best, true},
		{"dynamic+seq-block+fp-target", ByBlock, dyn, true},
	}
	clip := gptq.ClipActMSE
	if os.Getenv("AUTOQ_SLICE_CLIP") == "none" {
		clip = gptq.ClipNone
	}
	var vs []variant
	want := os.Getenv("AUTOQ_SLICE_VARIANTS")
	for _, v := range all {
		if want == "" || strings.Contains(","+want+",", ","+v.name+",") {
			vs = append(vs, v)
		}
	}
	incr := make([][]float64, len(vs))
	for i := 0; i < slices; i++ {
		calib := sliceWindows(t, tok, i*n, n)
		var hs map[string]*gptq.Hessian
		for j, v := range vs {
			t0 := time.Now()
			var qs map[string]*quant.QTensor
			if v.mode == OneShot {
				if hs == nil {
					hs, err = Hessians(m, calib, 8, nil)
					require.NoError(t, err)
				}
				qs, _, err = QuantizeModel(m, hs, GPTQ, clip, s, v.opt)
			} else {
				qs, _, err = Sequential(m, calib, Options{Mode: v.mode, Batch: 8, FPTarget: v.fpTarget}, GPTQ, clip, s, v.opt)
			}
			require.NoError(t, err)
			require.NoError(t, Plug(m, qs))
			p := realdata.Perplexity(t, m, open())
			m.ResetLinears()
			incr[j] = append(incr[j], 100*(p/fp-1))
			t.Logf("slice %d %-18s ppl %.4f (%+.2f%%) in %v", i, v.name, p, 100*(p/fp-1), time.Since(t0).Round(time.Second))
		}
	}
	out := fmt.Sprintf("%s, GPTQ + clip %v, %d slices of %d calibration tokens, %d held-out tokens, fp %.4f\n", s, clip, slices, n, evalTokens, fp)
	out += "| variant | mean | min | max | per slice |\n|---|---|---|---|---|\n"
	for j, v := range vs {
		mean, lo, hi := 0.0, math.Inf(1), math.Inf(-1)
		var cells []string
		for _, x := range incr[j] {
			mean += x / float64(len(incr[j]))
			lo, hi = min(lo, x), max(hi, x)
			cells = append(cells, fmt.Sprintf("%+.2f", x))
		}
		out += fmt.Sprintf("| %s | %+.2f%% | %+.2f%% | %+.2f%% | %s |\n", v.name, mean, lo, hi, strings.Join(cells, " "))
	}
	t.Log("\n" + out)
}

// sliceWindows returns the calibration windows of tokens [skip, skip+n) of the calib split.
func sliceWindows(t *testing.T, tok tokenizer.Tokenizer, skip, n int) [][]int {
	w, err := eval.OpenWindows(testutil.SharedData(t, "tinystories_val.txt"), tok, 512, eval.DataOptions{SeqLen: realdata.SeqLen, MaxTokens: n, Split: "calib", SkipTokens: skip})
	require.NoError(t, err)
	defer w.Close()
	var out [][]int
	for {
		win, err := w.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		out = append(out, win)
	}
}
