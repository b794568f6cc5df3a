//go:build cuda

package gpurunner

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/autoq/autoq/gptq"
	"github.com/autoq/autoq/model"
	"github.com/autoq/autoq/quant"
)

// hookInputs records every hook call's input (copied).
func hookInputs(into *[][]float32, names *[]string) model.Hook {
	return func(name string, x []float32, M, K int) {
		*into = append(*into, append([]float32(nil), x...))
		*names = append(*names, name)
	}
}

// runBlocks embeds toks and runs every block, then the head, through r, recording the hook.
func runBlocks(t *testing.T, r model.BlockRunner, m *model.Model, toks [][]int) ([][]float32, [][]float32, []string) {
	t.Helper()
	st, err := r.Embed(toks)
	require.NoError(t, err)
	defer r.Free(st)
	var xs [][]float32
	var names []string
	for b := 0; b < m.Blocks(); b++ {
		require.NoError(t, r.RunBlock(st, b, hookInputs(&xs, &names), ""))
	}
	lg, err := r.Head(st)
	require.NoError(t, err)
	return lg, xs, names
}

// The GPU block runner computes what the CPU reference (model.HostBlocks) computes, within
// F16's error: logits, and the linear inputs its hook hands out (same names, same order).
// A probe leaves the state's bits as they were; a clone is independent; a second run gives
// the same bits.
func TestBlockRunnerStoriesVsCPU(t *testing.T) {
	dev := modelDevice(t)
	m := loadStoriesModel(t)
	toks := storiesBatch(t)
	want, wantX, wantNames := runBlocks(t, model.HostBlocks{M: m}, m, toks)

	br, err := NewBlockRunner(dev, m)
	require.NoError(t, err)
	defer func() { require.NoError(t, br.Close()) }()
	got, gotX, gotNames := runBlocks(t, br, m, toks)
	st := compareLogits(want, got, m.Config.Vocab, 0.1)
	t.Logf("GPU blocks (F16) vs CPU blocks (F32): %s", st)
	assert.LessOrEqual(t, st.maxAbs, 0.1, st.String())
	assert.GreaterOrEqual(t, float64(st.agree), 0.99*float64(st.rows), st.String())
	require.Equal(t, wantNames, gotNames)
	for i := range wantX {
		d := 0.0
		for j := range wantX[i] {
			d = math.Max(d, math.Abs(float64(wantX[i][j]-gotX[i][j])))
		}
		assert.LessOrEqual(t, d, 0.05, "input %d (%s): max |diff| %g", i, wantNames[i], d)
	}
	again, _, _ := runBlocks(t, br, m, toks)
	for s := range got {
		assert.Empty(t, firstBitDiff(again[s], got[s]), "rerun, sequence %d", s)
	}

	// Probe and clone.
	s0, err := br.Embed(toks)
	require.NoError(t, err)
	defer br.Free(s0)
	require.NoError(t, br.RunBlock(s0, 0, nil, ""))
	before, err := br.ToHost(s0)
	require.NoError(t, err)
	c, err := br.Clone(s0)
	require.NoError(t, err)
	var px [][]float32
	var pn []string
	names := m.BlockLinearNames(1)
	require.NoError(t, br.RunBlock(s0, 1, hookInputs(&px, &pn), names[len(names)-1]))
	after, err := br.ToHost(s0)
	require.NoError(t, err)
	assert.Empty(t, firstBitDiff(after.X, before.X), "a probe changed the state")
	assert.Equal(t, names, pn)
	require.NoError(t, br.RunBlock(s0, 1, nil, ""))
	ch, err := br.ToHost(c)
	require.NoError(t, err)
	assert.Empty(t, firstBitDiff(ch.X, before.X), "running the state changed its clone")
	br.Free(c)
	assert.ErrorContains(t, br.RunBlock(s0, 1, nil, "model.layers.0.mlp.down_proj"), "not a linear layer of block 1")
	_, err = br.Head(c) // freed
	assert.ErrorContains(t, err, "not a live device state")
}

// Plugged layers run as the host model has them: a weight-only and a dynamic W8A8
// fake-quantized layer on the device, a static W8A8 layer's block on the host (the state
// goes down and back). Each run is compared with the CPU reference with the same plugs, and
// Invalidate makes the runner read a changed block again.
func TestBlockRunnerPluggedLayers(t *testing.T) {
	dev := modelDevice(t)
	m := loadStoriesModel(t)
	toks := storiesBatch(t)
	br, err := NewBlockRunner(dev, m)
	require.NoError(t, err)
	defer func() { require.NoError(t, br.Close()) }()
	fp, _, _ := runBlocks(t, br, m, toks)

	plug := func(name string, s quant.Scheme, act quant.ActMode, amax float32) {
		w := m.Weight(name + ".weight")
		q, err := quant.Quantize(name, w.F32(), w.Shape[0], w.Shape[1], s.FitCols(w.Shape[1]), quant.SearchOptions{})
		require.NoError(t, err)
		fq, err := model.NewFakeQuant(q, nil, act, amax)
		require.NoError(t, err)
		require.NoError(t, m.SetLinear(name, fq))
		br.Invalidate(blockOf(name))
	}
	plug("model.layers.0.mlp.up_proj", quant.Scheme{Bits: 4, Granularity: quant.PerGroup, GroupSize: 32}, quant.ActNone, 0)
	plug("model.layers.1.self_attn.q_proj", quant.Scheme{Bits: 8, Symmetric: true, Granularity: quant.PerChannel}, quant.ActDynamic, 0)
	plug("model.layers.2.mlp.down_proj", quant.Scheme{Bits: 8, Symmetric: true, Granularity: quant.PerChannel}, quant.ActStatic, 3)
	want, _, _ := runBlocks(t, model.HostBlocks{M: m}, m, toks)
	got, _, _ := runBlocks(t, br, m, toks)
	st := compareLogits(want, got, m.Config.Vocab, 0.1)
	t.Logf("plugged, GPU vs CPU: %s", st)
	assert.LessOrEqual(t, st.maxAbs, 0.1, st.String())
	moved := compareLogits(fp, got, m.Config.Vocab, 0.1)
	assert.Greater(t, moved.maxAbs, 0.0, "the plugged layers changed nothing: the runner kept the old block")
}

func blockOf(name string) int {
	var b int
	for i := len("model.layers."); i < len(name) && name[i] != '.'; i++ {
		b = 10*b + int(name[i]-'0')
	}
	return b
}

// The Hessians the block runner sums on the device (RunBlockGram, TakeGrams) are those of
// the inputs its hook hands out, summed on the host (the same F16 values widened), to
// float64 rounding; layers reading one input share one sum; a block on the host (a static
// W8A8 layer plugged) sums there under the same rules.
func TestBlockRunnerGramsEqualHostSums(t *testing.T) {
	dev := modelDevice(t)
	m := loadStoriesModel(t)
	toks := storiesBatch(t)
	w := m.Weight("model.layers.1.mlp.down_proj.weight")
	q, err := quant.Quantize("model.layers.1.mlp.down_proj", w.F32(), w.Shape[0], w.Shape[1], quant.Scheme{Bits: 8, Symmetric: true, Granularity: quant.PerChannel}, quant.SearchOptions{})
	require.NoError(t, err)
	fq, err := model.NewFakeQuant(q, nil, quant.ActStatic, 3)
	require.NoError(t, err)
	require.NoError(t, m.SetLinear("model.layers.1.mlp.down_proj", fq))
	br, err := NewBlockRunner(dev, m)
	require.NoError(t, err)
	defer func() { require.NoError(t, br.Close()) }()
	st, err := br.Embed(toks)
	require.NoError(t, err)
	defer br.Free(st)
	for b := 0; b < 2; b++ { // block 0 on the device, block 1 on the host
		names := m.BlockLinearNames(b)
		want := func(n string) bool { return n != names[1] } // k_proj not wanted: q and v still share
		host := map[string]*gptq.Hessian{}
		hook := func(name string, x []float32, M, K int) {
			if !want(name) || name == names[2] || name == names[5] { // v and up: the inputs of q and gate
				return
			}
			h, _ := gptq.NewHessian(K)
			if host[name] != nil {
				h = host[name]
			}
			require.NoError(t, h.Add(x, M, K))
			host[name] = h
		}
		for rep := 0; rep < 2; rep++ { // two batches into one sum
			c, err := br.Clone(st)
			require.NoError(t, err)
			require.NoError(t, br.RunBlockGram(c, b, hook, "", want))
			br.Free(c)
		}
		gs, err := br.TakeGrams(want)
		require.NoError(t, err)
		require.Len(t, gs, 4, "block %d: q+v, o, gate+up, down", b)
		for _, g := range gs {
			h := host[g.Names[0]]
			require.NotNil(t, h, g.Names[0])
			assert.Equal(t, h.Tokens, g.Tokens, g.Names[0])
			for i, v := range h.Sum {
				assert.InDelta(t, v, g.Sum[i], 1e-9*(1+math.Abs(v)), "%s entry %d", g.Names[0], i)
			}
		}
		assert.Equal(t, []string{names[0], names[2]}, gs[sortedIndex(gs, names[0])].Names)
		again, err := br.TakeGrams(want)
		require.NoError(t, err)
		assert.Empty(t, again, "taken sums are gone")
		require.NoError(t, br.RunBlock(st, b, nil, ""))
	}
}

func sortedIndex(gs []model.Gram, first string) int {
	for i, g := range gs {
		if g.Names[0] == first {
			return i
		}
	}
	return -1
}

// HeadRows on chunks of a batch's rows gives Head's logits row for row (the same norm and
// F16 GEMM on a view of fewer rows; cuBLAS may pick another algorithm per M, so within a
// small tolerance), and rejects rows outside the batch.
func TestBlockRunnerHeadRowsEqualsHead(t *testing.T) {
	dev := modelDevice(t)
	m := loadStoriesModel(t)
	toks := storiesBatch(t)
	br, err := NewBlockRunner(dev, m)
	require.NoError(t, err)
	defer func() { require.NoError(t, br.Close()) }()
	st, err := br.Embed(toks)
	require.NoError(t, err)
	defer br.Free(st)
	for b := 0; b < m.Blocks(); b++ {
		require.NoError(t, br.RunBlock(st, b, nil, ""))
	}
	whole, err := br.Head(st)
	require.NoError(t, err)
	var want []float32
	for _, lg := range whole {
		want = append(want, lg...)
	}
	V := m.Config.Vocab
	rows := len(want) / V
	for _, chunk := range []int{1, 7, 64, rows} {
		for lo := 0; lo < rows; lo += chunk {
			hi := min(lo+chunk, rows)
			got, err := br.HeadRows(st, lo, hi)
			require.NoError(t, err)
			require.Len(t, got, (hi-lo)*V)
			d := 0.0
			for i, v := range got {
				d = math.Max(d, math.Abs(float64(v-want[lo*V+i])))
			}
			assert.LessOrEqual(t, d, 1e-3, "chunk %d, rows [%d, %d): max |diff| %g", chunk, lo, hi, d)
		}
	}
	_, err = br.HeadRows(st, rows-1, rows+1)
	assert.ErrorContains(t, err, "outside the batch's")
}
