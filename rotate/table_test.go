package rotate

import (
	"fmt"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/autoq/autoq/checkpoint"
	"github.com/autoq/autoq/internal/realdata"
	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/quant"
	"github.com/stretchr/testify/require"
)

// tableScheme is one quantization of every decoder linear (RTN, max search; lm_head and
// the embedding stay full precision, as everywhere in autoq).
type tableScheme struct {
	name string
	s    quant.Scheme
	act  quant.ActMode
}

var tableSchemes = []tableScheme{
	{"w4g32a", quant.Scheme{Bits: 4, Granularity: quant.PerGroup, GroupSize: 32}, quant.ActNone},
	{"w8a8 dyn", quant.Scheme{Bits: 8, Symmetric: true, Granularity: quant.PerChannel}, quant.ActDynamic},
	{"w8a8 static", quant.Scheme{Bits: 8, Symmetric: true, Granularity: quant.PerChannel}, quant.ActStatic},
	{"w4c", quant.Scheme{Bits: 4, Symmetric: true, Granularity: quant.PerChannel}, quant.ActNone},
	{"w4ca", quant.Scheme{Bits: 4, Granularity: quant.PerChannel}, quant.ActNone},
	{"w4ca a8 dyn", quant.Scheme{Bits: 4, Granularity: quant.PerChannel}, quant.ActDynamic},
}

// plugRTN replaces every decoder linear of m by its round-to-nearest fake-quantized twin;
// static activation quantization clips at amax[name] (the calibration maximum).
func plugRTN(t *testing.T, m *model.Model, ts tableScheme, amax map[string]float32) {
	t.Helper()
	for _, name := range m.LinearNames() {
		w := m.Weight(name + ".weight")
		rows, cols := w.Shape[0], w.Shape[1]
		q, err := quant.Quantize(name, w.F32(), rows, cols, ts.s.FitCols(cols), quant.SearchOptions{})
		require.NoError(t, err)
		var bias []float32
		if b := m.Weight(name + ".bias"); b != nil {
			bias = b.F32()
		}
		fq, err := model.NewFakeQuant(q, bias, ts.act, amax[name])
		require.NoError(t, err)
		require.NoError(t, m.SetLinear(name, fq))
	}
}

// outlierStats records, per kind of linear input (the suffix of its name), the largest
// max|x| / rms(x) over the layers, with both over the whole calibration batch, and the mean
// over tokens of each token's max|x_t| / rms(x_t) (what per-token int8 pays for).
// amax is each linear's calibration max |x|.
type outlierStats struct {
	whole, perToken map[string][]float64
	amax            map[string]float32
}

func measureOutliers(t *testing.T, m *model.Model, windows [][]int) outlierStats {
	t.Helper()
	st := outlierStats{whole: map[string][]float64{}, perToken: map[string][]float64{}, amax: map[string]float32{}}
	hook := func(name string, x []float32, M, K int) {
		for _, v := range x[:M*K] {
			st.amax[name] = max(st.amax[name], float32(math.Abs(float64(v))))
		}
		kind := name[strings.LastIndexByte(name, '.')+1:]
		if kind == "k_proj" || kind == "v_proj" || kind == "up_proj" { // same input as q / gate
			return
		}
		var amax, ss, tokRatio float64
		for r := 0; r < M; r++ {
			var ra, rs float64
			for _, v := range x[r*K : (r+1)*K] {
				a := math.Abs(float64(v))
				ra, rs = max(ra, a), rs+a*a
			}
			amax, ss = max(amax, ra), ss+rs
			tokRatio += ra / math.Sqrt(rs/float64(K))
		}
		st.whole[kind] = append(st.whole[kind], amax/math.Sqrt(ss/float64(M*K)))
		st.perToken[kind] = append(st.perToken[kind], tokRatio/float64(M))
	}
	for i := 0; i < len(windows); i += 8 {
		_, err := m.Forward(windows[i:min(i+8, len(windows))], hook)
		require.NoError(t, err)
	}
	return st
}

// weightRowRatio is the mean over rows of max|w_r| / rms(w_r) of one linear's weight: what
// a per-channel scale pays for its largest entry.
func weightRowRatio(m *model.Model, name string) float64 {
	w := m.Weight(name + ".weight")
	rows, cols := w.Shape[0], w.Shape[1]
	var sum float64
	for r := 0; r < rows; r++ {
		var a, ss float64
		for _, v := range w.F32()[r*cols : (r+1)*cols] {
			a, ss = max(a, math.Abs(float64(v))), ss+float64(v)*float64(v)
		}
		sum += a / math.Sqrt(ss/float64(cols))
	}
	return sum / float64(rows)
}

func maxOf(v []float64) float64 {
	m := 0.0
	for _, x := range v {
		m = max(m, x)
	}
	return m
}

func meanOf(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// TestRotateTable prints perplexity on held-out tinystories windows for stories260K,
// plain vs rotated, and the outlier-ness of the linear inputs (slow: set
// AUTOQ_ROTATE_TABLE=1; AUTOQ_ROTATE_TOKENS sets the held-out tokens, default 32768;
// AUTOQ_ROTATE_SEEDS the seeds per rotation kind, default 3).
func TestRotateTable(t *testing.T) {
	if os.Getenv("AUTOQ_ROTATE_TABLE") == "" {
		t.Skip("set AUTOQ_ROTATE_TABLE=1 to run the rotation perplexity table")
	}
	evalTokens, seeds := testutil.EnvInt("AUTOQ_ROTATE_TOKENS", 32768), testutil.EnvInt("AUTOQ_ROTATE_SEEDS", 3)
	_, calib, open := realdata.Load(t, 16*realdata.SeqLen, evalTokens)
	cfg, ts, err := checkpoint.ReadLlama2C(testutil.SharedData(t, "stories260K.bin"))
	require.NoError(t, err)

	type variant struct {
		name string
		kind Kind
		seed uint64
		rot  bool
	}
	variants := []variant{{name: "plain"}, {name: "fold only", kind: Identity, rot: true}, {name: "plain-hadamard", kind: PlainHadamard, rot: true}}
	for _, k := range []Kind{Hadamard, Random} {
		for s := 0; s < seeds; s++ {
			variants = append(variants, variant{name: fmt.Sprintf("%s seed %d", k, s), kind: k, seed: uint64(s), rot: true})
		}
	}
	head := "| model | fp32 |"
	for _, sc := range tableSchemes {
		head += " " + sc.name + " |"
	}
	table := head + "\n|---|---|" + strings.Repeat("---|", len(tableSchemes)) + "\n"
	outl := "| model | q/k/v in | o in | gate/up in | down in |\n|---|---|---|---|---|\n"
	wout := "| model | q | k | v | o | gate | up | down |\n|---|---|---|---|---|---|---|---|\n"
	for _, v := range variants {
		c, named := *cfg, ts
		if v.rot {
			c, named, err = Checkpoint(*cfg, ts, v.seed, Options{Kind: v.kind})
			require.NoError(t, err)
		}
		m, err := model.New(c, byName(named))
		require.NoError(t, err)
		st := measureOutliers(t, m, calib)
		line := fmt.Sprintf("| %s | %.4f |", v.name, realdata.Perplexity(t, m, open()))
		for _, sc := range tableSchemes {
			plugRTN(t, m, sc, st.amax)
			line += fmt.Sprintf(" %.4f |", realdata.Perplexity(t, m, open()))
			m.ResetLinears()
		}
		t.Log(line)
		table += line + "\n"
		ol := "| " + v.name + " |"
		for _, kind := range []string{"q_proj", "o_proj", "gate_proj", "down_proj"} {
			ol += fmt.Sprintf(" %.1f / %.2f |", maxOf(st.whole[kind]), meanOf(st.perToken[kind]))
		}
		outl += ol + "\n"
		wl := "| " + v.name + " |"
		for _, kind := range []string{"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"} {
			var r []float64
			for l := 0; l < c.Layers; l++ {
				r = append(r, weightRowRatio(m, fmt.Sprintf("model.layers.%d.%s", l, kind)))
			}
			wl += fmt.Sprintf(" %.2f |", meanOf(r))
		}
		wout += wl + "\n"
	}
	t.Logf("stories260K, %d held-out tokens, RTN (max search), lm_head and embedding full precision\n\n%s", evalTokens, table)
	t.Logf("linear inputs over %d calibration windows: max over layers of max|x|/rms(x) (whole batch) / mean over layers and tokens of max|x_t|/rms(x_t)\n\n%s", len(calib), outl)
	t.Logf("weights: mean over layers and rows of max|w_r|/rms(w_r)\n\n%s", wout)
}
