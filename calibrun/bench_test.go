package calibrun

import (
	"errors"
	"io"
	"testing"

	"github.com/autoq/autoq/eval"
	"github.com/autoq/autoq/internal/realdata"
	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/model"
	"github.com/stretchr/testify/require"
)

// BenchmarkCalibrateReal compares a calibration run (tokenize twice, forward, histograms
// of every linear input, 4 rounds of thresholds) with the baseline it cannot beat: the
// bare forward pass over the same windows (tokenized once, no hook). Both report tokens/s.
//
//	go test ./calibrun -run '^$' -bench CalibrateReal -benchtime 3x
func BenchmarkCalibrateReal(b *testing.B) {
	m, tok := realdata.Model(b)
	text := testutil.SharedData(b, "tinystories_val.txt")
	const tokens, seqLen, batch = 8192, 256, 8

	b.Run("forward-only", func(b *testing.B) {
		for range b.N {
			w, err := eval.OpenWindows(text, tok, m.Config.Vocab, eval.DataOptions{SeqLen: seqLen, MaxTokens: tokens, Split: "calib"})
			require.NoError(b, err)
			var wins [][]int
			for {
				x, err := w.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				require.NoError(b, err)
				wins = append(wins, x)
				if len(wins) == batch {
					_, err = m.Forward(wins, nil)
					require.NoError(b, err)
					wins = nil
				}
			}
			if len(wins) > 0 {
				_, err = m.Forward(wins, nil)
				require.NoError(b, err)
			}
			w.Close()
		}
		b.ReportMetric(float64(tokens*b.N)/b.Elapsed().Seconds(), "tokens/s")
	})
	b.Run("calibrate", func(b *testing.B) {
		for range b.N {
			_, err := Run(m, text, tok, Options{SeqLen: seqLen, Batch: batch, Tokens: tokens, Split: "calib", Shards: 1, Rounds: 4})
			require.NoError(b, err)
		}
		b.ReportMetric(float64(tokens*b.N)/b.Elapsed().Seconds(), "tokens/s")
	})
}

// BenchmarkShardRecord compares the model fingerprint a state file's shard record costs
// with loading the same model (its baseline: every shard loads the model anyway), on
// stories260K. Both report MB/s of F32 weights.
//
//	go test ./calibrun -run '^$' -bench ShardRecord -benchtime 20x
func BenchmarkShardRecord(b *testing.B) {
	bin := testutil.SharedData(b, "stories260K.bin")
	m, err := model.Load(bin)
	require.NoError(b, err)
	bytes := 0
	for _, n := range m.WeightNames() {
		bytes += 4 * m.Weight(n).NumElements()
	}
	b.Run("load", func(b *testing.B) {
		b.SetBytes(int64(bytes))
		for range b.N {
			_, err := model.Load(bin)
			require.NoError(b, err)
		}
	})
	b.Run("fingerprint", func(b *testing.B) {
		b.SetBytes(int64(bytes))
		for range b.N {
			_ = modelFingerprint(m)
		}
	})
}
