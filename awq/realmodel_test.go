package awq

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/autoq/autoq/gptq"
	"github.com/autoq/autoq/gptq/collect"
	"github.com/autoq/autoq/internal/realdata"
	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/quant"
	"github.com/stretchr/testify/require"
)

// TestRealModelAWQTable prints the perplexity table with and without activation-aware
// scaling (slow: set AUTOQ_AWQ_TABLE=1; AUTOQ_AWQ_ONLY=w4g32a restricts the schemes to
// those whose name contains it; AUTOQ_AWQ_GROUPS=16,32 sets the group sizes (default
// 32,64,128); AUTOQ_AWQ_GRID=10 the alpha grid; AUTOQ_AWQ_DUO=1 adds the weight-magnitude
// candidates; AUTOQ_AWQ_METHOD=gptq+act-mse+act-order one method; AUTOQ_AWQ_NOBLOCKS=1 uses the Hessian objective for every group; without
// AUTOQ_AWQ_NOCHECK=1 each group's scales are also checked end to end (Accept) on the
// first 16 calibration windows).
func TestRealModelAWQTable(t *testing.T) {
	if os.Getenv("AUTOQ_AWQ_TABLE") == "" {
		t.Skip("set AUTOQ_AWQ_TABLE=1 to run the AWQ perplexity table")
	}
	m, calib, open := realdata.Load(t, 32768, 32768)
	t0 := time.Now()
	hs, am := calibStats(t, m, calib, 8)
	t.Logf("calibration: %d windows, Hessians and mean |x| in %v", len(calib), time.Since(t0))
	fp := realdata.Perplexity(t, m, open())
	t.Logf("full precision perplexity %.4f", fp)
	type cfg struct {
		name   string
		method collect.Method
		clip   gptq.Clip
		opt    gptq.Options
	}
	cfgs := []cfg{
		{"rtn", collect.RTN, gptq.ClipNone, gptq.Options{}},
		{"act-mse", collect.RTN, gptq.ClipActMSE, gptq.Options{}},
		{"gptq", collect.GPTQ, gptq.ClipNone, gptq.Options{}},
		{"gptq+act-mse+act-order", collect.GPTQ, gptq.ClipActMSE, gptq.Options{ActOrder: true}},
	}
	blocks, err := CaptureBlocks(m, calib[:16], 8)
	require.NoError(t, err)
	aopt := Options{Duo: os.Getenv("AUTOQ_AWQ_DUO") != "", Blocks: blocks, Grid: testutil.EnvInt("AUTOQ_AWQ_GRID", DefaultGrid)}
	if os.Getenv("AUTOQ_AWQ_NOBLOCKS") != "" {
		aopt.Blocks = nil
	}
	out := "| scheme | method | plain | vs fp | +awq | vs fp | awq search time |\n|---|---|---|---|---|---|---|\n"
	out += fmt.Sprintf("| fp32 | - | %.4f | - | | | |\n", fp)
	for _, sym := range []bool{true, false} {
		for _, gs := range groupSizes() {
			s := quant.Scheme{Bits: 4, Symmetric: sym, Granularity: quant.PerGroup, GroupSize: gs}
			if only := os.Getenv("AUTOQ_AWQ_ONLY"); only != "" && !strings.Contains(s.String(), only) {
				continue
			}
			for _, c := range cfgs {
				if only := os.Getenv("AUTOQ_AWQ_METHOD"); only != "" && c.name != only {
					continue
				}
				qs, _, err := collect.QuantizeModel(m, hs, c.method, c.clip, s, c.opt)
				require.NoError(t, err)
				require.NoError(t, collect.Plug(m, qs))
				plain := realdata.Perplexity(t, m, open())
				m.ResetLinears()

				t1 := time.Now()
				o := aopt
				if os.Getenv("AUTOQ_AWQ_NOCHECK") == "" {
					o.Check = &Check{Seqs: calib[:16], Batch: 8, Quantize: CollectModelQuantizer(c.method, c.clip, s, c.opt)}
				}
				nm, nhs, sc, err := Model(m, hs, am, CollectQuantizer(c.method, c.clip, s, c.opt), o)
				require.NoError(t, err)
				kept := scaledGroups(sc)
				dt := time.Since(t1)
				qs, _, err = collect.QuantizeModel(nm, nhs, c.method, c.clip, s, c.opt)
				require.NoError(t, err)
				require.NoError(t, collect.Plug(nm, qs))
				scaled := realdata.Perplexity(t, nm, open())
				line := fmt.Sprintf("| %s | %s | %.4f | %+.2f%% | %.4f | %+.2f%% | %v (%d/%d groups scaled) |\n", s, c.name, plain, 100*(plain/fp-1), scaled, 100*(scaled/fp-1), dt.Round(time.Millisecond), kept, len(sc))
				t.Log(line)
				out += line
			}
		}
	}
	t.Log("\n" + out)
}

func groupSizes() []int {
	var out []int
	for _, f := range strings.Split(os.Getenv("AUTOQ_AWQ_GROUPS"), ",") {
		if g, err := strconv.Atoi(f); err == nil && g > 0 {
			out = append(out, g)
		}
	}
	if out == nil {
		out = []int{32, 64, 128}
	}
	return out
}
