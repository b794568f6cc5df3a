package calibrun

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/autoq/autoq/calib"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Coverage of a hand-made stream: windows of 4 tokens cut from
// [1 5 6 7] [1 5 6 7] [1 9 9 9] [1 2] (one duplicate, lengths 4 x3 and 2 x1).
func TestCoverageByHand(t *testing.T) {
	m := tinyModel(t)
	data := writeJSONL(t, [][]int{{1, 5, 6, 7}, {1, 5, 6, 7}, {1, 9, 9, 9}, {1, 2}})
	o := baseOptions()
	o.SeqLen, o.Rounds = 4, 2
	r, err := Run(m, data, nil, o)
	require.NoError(t, err)
	c := r.Coverage
	assert.Equal(t, 4, c.Sequences)
	assert.Equal(t, 14, c.Tokens)
	assert.Equal(t, []LengthCount{{2, 1}, {4, 3}}, c.SequenceLengths)
	// Segments between BOS: 4, 4, 4, 2 tokens -> buckets [4,8) x3 and [2,4) x1.
	assert.Equal(t, []LengthCount{{2, 1}, {4, 3}}, c.SegmentLengths)
	assert.Equal(t, 6, c.VocabSeen) // 1 2 5 6 7 9
	assert.Equal(t, 40, c.Vocab)
	assert.InDelta(t, 6.0/40, c.VocabShare, 1e-15)
	assert.Equal(t, 1, c.Duplicates)
	assert.InDelta(t, 0.25, c.DuplicateShare, 1e-15)
	require.Len(t, c.TopTokens, 6)
	// 1 x4, 9 x3, then 5 6 7 x2 (lower id first), 2 x1.
	ids := []int{}
	for _, tc := range c.TopTokens {
		ids = append(ids, tc.ID)
	}
	assert.Equal(t, []int{1, 9, 5, 6, 7, 2}, ids)
	assert.InDelta(t, 4.0/14, c.TopTokens[0].Share, 1e-15)
	assert.InDelta(t, 1.0, c.TopShare, 1e-15)

	rep := Diagnose(r)
	codes := map[string]bool{}
	for _, w := range rep.Warnings {
		codes[w.Code] = true
	}
	assert.True(t, codes["few-tokens"], "14 tokens")
	assert.True(t, codes["duplicates"], "25%% duplicates")
	assert.False(t, codes["one-length"], "two lengths")
	var out bytes.Buffer
	require.NoError(t, rep.WriteText(&out))
	assert.Contains(t, out.String(), "duplicate sequences: 1 (25.0%)")
	assert.Contains(t, out.String(), "warning: duplicates: 1 of 4 sequences (25%)")
	assert.Contains(t, out.String(), "vocabulary seen: 6 of 40 (15.0%)")
}

// A stream of one length warns that later positions of the context are never seen.
func TestOneLengthWarning(t *testing.T) {
	m := tinyModel(t)
	data := writeJSONL(t, [][]int{{1, 5, 6, 7, 8, 9, 10, 11}})
	o := baseOptions()
	o.SeqLen = 4
	r, err := Run(m, data, nil, o)
	require.NoError(t, err)
	rep := Diagnose(r)
	var msg string
	for _, w := range rep.Warnings {
		if w.Code == "one-length" {
			msg = w.Message
		}
	}
	assert.Equal(t, "all 2 sequences have the same length 4: positions 4..63 of the model's 64-token context are never seen (use --seq-len 64 to cover them)", msg)
}

// handResult is a two-group result with chosen amax trajectories (no model run).
func handResult(amaxA, amaxB []float32) *Result {
	o := baseOptions()
	_ = o.check()
	r := &Result{Opt: o, Total: 10, Windows: 10,
		Groups:   []Group{{Name: "a", Members: []string{"a"}, Channels: 2}, {Name: "b", Members: []string{"b", "b2"}, Channels: 2}},
		Coverage: Coverage{Sequences: 10, Tokens: 100000, SequenceLengths: []LengthCount{{16, 9}, {8, 1}}}}
	for _, g := range r.Groups {
		h := calib.NewHistogram(g.Name)
		h.AddF32([]float32{1, -2, 0.5, 4})
		h.ChannelAbsMax = []float32{1, 4}
		r.Hists = append(r.Hists, h)
	}
	for i := range amaxA {
		r.Rounds = append(r.Rounds, Round{Sequences: i + 1, Tokens: 1000 * (i + 1),
			Results: []calib.Result{{Amax: amaxA[i], Bin: 1}, {Amax: amaxB[i], Bin: 1}}, KL: []float64{0.1, 0.2}, AbsMax: []float32{4, 4}})
	}
	return r
}

func TestConvergenceVerdict(t *testing.T) {
	// a moves 1.9% (settled at 2%), b 2.5% (unsettled).
	rep := Diagnose(handResult([]float32{2, 1, 1.019}, []float32{5, 4, 4.1}))
	require.False(t, rep.Converged)
	assert.Equal(t, []string{"b"}, rep.Unsettled)
	assert.True(t, rep.Tensors[0].Settled)
	assert.InDelta(t, 0.019, *rep.Tensors[0].LastChange, 1e-6)
	assert.False(t, rep.Tensors[1].Settled)
	assert.InDelta(t, 0.025, *rep.Tensors[1].LastChange, 1e-6)
	var out bytes.Buffer
	require.NoError(t, rep.WriteText(&out))
	assert.Contains(t, out.String(), "calibration NOT converged: 1 of 2 tensors need more data: b")
	assert.Contains(t, out.String(), "b,b2")
	assert.Contains(t, out.String(), "UNSETTLED")

	rep = Diagnose(handResult([]float32{2, 1, 1.019}, []float32{5, 4, 4.04}))
	require.True(t, rep.Converged)
	require.True(t, rep.Stable)
	assert.Empty(t, rep.Unsettled)
	out.Reset()
	require.NoError(t, rep.WriteText(&out))
	assert.Contains(t, out.String(), "calibration converged")

	// Stable on too few tokens is not called converged.
	few := handResult([]float32{2, 1, 1.019}, []float32{5, 4, 4.04})
	few.Coverage.Tokens = 500
	rep = Diagnose(few)
	assert.True(t, rep.Stable)
	assert.False(t, rep.Converged)
	out.Reset()
	require.NoError(t, rep.WriteText(&out))
	assert.Contains(t, out.String(), "calibration NOT converged: every amax moved at most 2% in the last round, but on only 500 tokens (minimum 16384)")

	// One round: nothing to compare, no verdict either way.
	rep = Diagnose(handResult([]float32{2}, []float32{5}))
	assert.False(t, rep.Converged)
	assert.Empty(t, rep.Unsettled)
	assert.Nil(t, rep.Tensors[0].LastChange)
	assert.Equal(t, "no-convergence-check", rep.Warnings[len(rep.Warnings)-1].Code)

	// A tensor that had no threshold before the last round changed by 100%.
	rep = Diagnose(handResult([]float32{0, 1}, []float32{5, 5}))
	assert.Equal(t, 1.0, *rep.Tensors[0].LastChange)
	assert.Equal(t, []string{"a"}, rep.Unsettled)

	// The JSON carries the trajectory.
	b, err := json.Marshal(rep)
	require.NoError(t, err)
	var back Report
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, float32(0), back.Tensors[0].Rounds[0].Amax)
	assert.Equal(t, float32(1), back.Tensors[0].Rounds[1].Amax)
	assert.Equal(t, 2000, back.Rounds[1].Tokens)
}

func TestClipRateAndOutliers(t *testing.T) {
	h := calib.NewHistogram("x")
	h.AddF32([]float32{1, 2, 3, 4, 1000, 1500, 2000, 2047}) // absmax 2047: Exp 0, bin = floor(|x|)
	assert.Equal(t, 0, h.Exp)
	assert.InDelta(t, 4.0/8, clipRate(h, calib.Result{Amax: 1000, Bin: 1000}), 1e-15)
	assert.InDelta(t, 1.0/8, clipRate(h, calib.Result{Amax: 2047, Bin: 2047}), 1e-15, "values in the threshold's bin count")
	assert.Zero(t, clipRate(h, calib.Result{Amax: 2047}), "max clips nothing")

	// Median of 5 channels (1 1.5 2 17 40) is 2; 8x median = 16: only 17 and 40 are above.
	med, out := outliers([]float32{2, 17, 1, 40, 1.5}, 8)
	assert.Equal(t, float32(2), med)
	assert.Equal(t, []Outlier{{Channel: 3, AbsMax: 40, Ratio: 20}, {Channel: 1, AbsMax: 17, Ratio: 8.5}}, out)
	// Even count: the lower middle element.
	med, _ = outliers([]float32{4, 1, 3, 2}, 8)
	assert.Equal(t, float32(2), med)
	med, out = outliers([]float32{0, 0, 5}, 8)
	assert.Zero(t, med)
	assert.Empty(t, out, "median 0: no ratio")
}
