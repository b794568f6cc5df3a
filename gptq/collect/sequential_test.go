package collect

import (
	"strings"
	"testing"

	"github.com/autoq/autoq/gptq"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/quant"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestInputGroups(t *testing.T) {
	names := []string{"l.0.q_proj", "l.0.k_proj", "l.0.v_proj", "l.0.o_proj", "l.0.gate_proj", "l.0.up_proj", "l.0.down_proj", "l.1.q_proj"}
	assert.Equal(t, [][]string{{"l.0.q_proj", "l.0.k_proj", "l.0.v_proj"}, {"l.0.o_proj"}, {"l.0.gate_proj", "l.0.up_proj"}, {"l.0.down_proj"}, {"l.1.q_proj"}}, inputGroups(names))
}

func TestParseMode(t *testing.T) {
	for _, m := range []Mode{OneShot, ByBlock, ByLayer} {
		got, err := ParseMode(m.String())
		require.NoError(t, err)
		assert.Equal(t, m, got)
	}
	_, err := ParseMode("blocks")
	assert.ErrorContains(t, err, `unknown sequential mode "blocks"`)
}

// sequentialByForward is the straightforward sequential GPTQ (the former implementation):
// one full forward pass of the calibration data per input group, with every earlier group
// quantized and plugged in.
func sequentialByForward(t testing.TB, m *model.Model, seqs [][]int, batch int, method Method, clip gptq.Clip, s quant.Scheme, opt gptq.Options) map[string]*quant.QTensor {
	qs := map[string]*quant.QTensor{}
	for _, grp := range inputGroups(m.LinearNames()) {
		want := map[string]bool{}
		for _, n := range grp {
			want[n] = true
		}
		hs, err := hessians(m, seqs, batch, nil, want)
		require.NoError(t, err)
		for _, n := range grp {
			q, _, err := quantizeLayer(m, n, hs[n], method, clip, s, opt)
			require.NoError(t, err)
			qs[n] = q
		}
		require.NoError(t, Plug(m, qs))
	}
	return qs
}

// ByLayer from stored block states gives the bits of the one-forward-per-group reference.
func TestSequentialByLayerEqualsForwardPerGroup(t *testing.T) {
	m, calib, _ := realData(t, 3, 256)
	s := quant.Scheme{Bits: 4, Granularity: quant.PerGroup, GroupSize: 32}
	opt := gptq.Options{ActOrder: true}
	want := sequentialByForward(t, m, calib, 2, GPTQ, gptq.ClipNone, s, opt)
	m.ResetLinears()
	var progress []int
	got, reps, err := Sequential(m, calib, Options{Mode: ByLayer, Batch: 2, Progress: func(done, total int) {
		assert.Equal(t, m.Blocks(), total)
		progress = append(progress, done)
	}}, GPTQ, gptq.ClipNone, s, opt)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	assert.Len(t, reps, len(m.LinearNames()))
	assert.Equal(t, []int{1, 2, 3, 4, 5}, progress)
	_, plugged := m.Linear("model.layers.4.mlp.down_proj").(*model.FakeQuant)
	assert.True(t, plugged, "Sequential leaves the quantized layers plugged in")
}

// ByBlock: block b's layers are GPTQ on Hessians taken with blocks 0..b-1 quantized and
// block b in full precision; block 0 equals one-shot GPTQ, later blocks do not.
func TestSequentialByBlock(t *testing.T) {
	m, calib, _ := realData(t, 2, 256)
	s := quant.Scheme{Bits: 4, Granularity: quant.PerGroup, GroupSize: 32}
	hs, err := Hessians(m, calib, 2, nil)
	require.NoError(t, err)
	oneShot, _, err := QuantizeModel(m, hs, GPTQ, gptq.ClipNone, s, gptq.Options{})
	require.NoError(t, err)
	seq, _, err := Sequential(m, calib, Options{Mode: ByBlock, Batch: 2}, GPTQ, gptq.ClipNone, s, gptq.Options{})
	require.NoError(t, err)
	for _, n := range m.BlockLinearNames(0) {
		assert.Equal(t, oneShot[n], seq[n], n)
	}
	assert.NotEqual(t, oneShot["model.layers.2.self_attn.q_proj"].Data, seq["model.layers.2.self_attn.q_proj"].Data)

	// Reference for block 2: plug seq's blocks 0 and 1 only, then one-shot on block 2.
	m.ResetLinears()
	prefix := map[string]*quant.QTensor{}
	for n, q := range seq {
		if strings.HasPrefix(n, "model.layers.0.") || strings.HasPrefix(n, "model.layers.1.") {
			prefix[n] = q
		}
	}
	require.NoError(t, Plug(m, prefix))
	want := map[string]bool{}
	for _, n := range m.BlockLinearNames(2) {
		want[n] = true
	}
	hs2, err := hessians(m, calib, 2, nil, want)
	require.NoError(t, err)
	for _, n := range m.BlockLinearNames(2) {
		q, _, err := quantizeLayer(m, n, hs2[n], GPTQ, gptq.ClipNone, s, gptq.Options{})
		require.NoError(t, err)
		assert.Equal(t, q, seq[n], n)
	}
	m.ResetLinears()

	// RTN without a Hessian-based search does not depend on the inputs at all.
	rtnSeq, _, err := Sequential(m, calib, Options{Mode: ByBlock, Batch: 2}, RTN, gptq.ClipNone, s, gptq.Options{})
	require.NoError(t, err)
	rtn, _, err := QuantizeModel(m, nil, RTN, gptq.ClipNone, s, gptq.Options{})
	require.NoError(t, err)
	assert.Equal(t, rtn, rtnSeq)
	_, _, err = Sequential(m, calib, Options{Mode: OneShot, Batch: 2}, RTN, gptq.ClipNone, s, gptq.Options{})
	assert.ErrorContains(t, err, "not block or layer")
}

// Cost: one-shot Hessians (one forward) next to the sequential modes (with and without the
// full-precision target) and the former one-forward-per-group implementation, GPTQ
// (natural order) on 8 windows of 256 tokens.
//
//	go test -run '^$' -bench Sequential -benchtime 1x ./gptq/collect/
func BenchmarkSequential(b *testing.B) {
	m, calib, _ := realData(b, 8, 256)
	s := quant.Scheme{Bits: 4, Granularity: quant.PerGroup, GroupSize: 32}
	b.Run("oneshot", func(b *testing.B) {
		for b.Loop() {
			hs, err := Hessians(m, calib, 8, nil)
			require.NoError(b, err)
			_, _, err = QuantizeModel(m, hs, GPTQ, gptq.ClipNone, s, gptq.Options{})
			require.NoError(b, err)
		}
	})
	for _, o := range []Options{{Mode: ByBlock}, {Mode: ByLayer}, {Mode: ByBlock, FPTarget: true}, {Mode: ByLayer, FPTarget: true}} {
		name := o.Mode.String()
		if o.FPTarget {
			name += "-fp"
		}
		o.Batch = 8
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				_, _, err := Sequential(m, calib, o, GPTQ, gptq.ClipNone, s, gptq.Options{})
				require.NoError(b, err)
				m.ResetLinears()
			}
		})
	}
	b.Run("forward-per-group", func(b *testing.B) {
		for b.Loop() {
			sequentialByForward(b, m, calib, 8, GPTQ, gptq.ClipNone, s, gptq.Options{})
			m.ResetLinears()
		}
	})
}

// FPTarget: where the quantized path has not drifted yet (block 0 in ByBlock mode, whose
// in-block layers run in full precision while the statistics are taken) the target is the
// checkpoint weight and the result equals plain sequential GPTQ; later blocks differ, and
// the full-precision stream does not leak quantized layers (the model ends with every
// layer quantized and plugged).
func TestSequentialFPTarget(t *testing.T) {
	m, calib, _ := realData(t, 2, 256)
	s := quant.Scheme{Bits: 4, Granularity: quant.PerGroup, GroupSize: 32}
	plain, _, err := Sequential(m, calib, Options{Mode: ByBlock, Batch: 2}, GPTQ, gptq.ClipNone, s, gptq.Options{})
	require.NoError(t, err)
	m.ResetLinears()
	fpt, _, err := Sequential(m, calib, Options{Mode: ByBlock, Batch: 2, FPTarget: true}, GPTQ, gptq.ClipNone, s, gptq.Options{})
	require.NoError(t, err)
	for _, n := range m.BlockLinearNames(0) {
		assert.Equal(t, plain[n], fpt[n], n)
	}
	for _, n := range m.BlockLinearNames(1) {
		assert.NotEqual(t, plain[n].Data, fpt[n].Data, n)
	}
	for _, n := range m.LinearNames() {
		_, ok := m.Linear(n).(*model.FakeQuant)
		assert.True(t, ok, n)
	}
	again, _, err := Sequential(m, calib, Options{Mode: ByBlock, Batch: 2, FPTarget: true}, GPTQ, gptq.ClipNone, s, gptq.Options{})
	require.NoError(t, err)
	assert.Equal(t, fpt, again, "deterministic, and independent of what was plugged before")
	m.ResetLinears()

	// ByLayer: the first input group of block 0 has not drifted; o_proj has (q/k/v are
	// quantized under it).
	lay, _, err := Sequential(m, calib, Options{Mode: ByLayer, Batch: 2, FPTarget: true}, GPTQ, gptq.ClipNone, s, gptq.Options{})
	require.NoError(t, err)
	layPlain := sequentialByForward(t, m, calib, 2, GPTQ, gptq.ClipNone, s, gptq.Options{})
	q := "model.layers.0.self_attn.q_proj"
	o := "model.layers.0.self_attn.o_proj"
	assert.Equal(t, layPlain[q], lay[q])
	assert.NotEqual(t, layPlain[o].Data, lay[o].Data)
}
