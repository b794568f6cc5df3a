package quantfile

import (
	"testing"

	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/safetensors"
	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestQuantizedLayoutRoundTrip(t *testing.T) {
	const rows, cols = 6, 64
	// Every width, symmetry and granularity (quant.ParseRecipe's names: "a" asymmetric,
	// "t" per tensor, "gN" groups of N, none per channel).
	recipes := []string{"w8", "w8g32a", "w4g16", "w4a", "w4t", "w6g32a", "w6", "w5g16a", "w5t", "w3g32a", "w3g8", "w7a"}
	wantQ := map[string]*quant.QTensor{}
	var all []safetensors.NamedTensor
	meta := map[string]string{FormatKey: FormatVersion}
	for i, recipe := range recipes {
		r, err := quant.ParseRecipe(recipe)
		require.NoError(t, err)
		s := r.Weight
		name := "layer" + string(rune('a'+i)) + ".weight"
		q := gaussianQ(t, name, 3, rows, cols, s)
		ts, err := QuantizedTensors(q)
		require.NoError(t, err)
		infos, err := QuantizedInfos(name, rows, cols, s)
		require.NoError(t, err)
		require.Len(t, ts, len(infos))
		for j := range ts {
			assert.Equal(t, infos[j].Name, ts[j].Name)
			assert.Equal(t, infos[j].DType, ts[j].T.DType)
			assert.Equal(t, infos[j].Shape, ts[j].T.Shape)
		}
		// The documented dtypes and shapes, spelled out.
		switch {
		case s.Bits == 8 && s.Symmetric:
			assert.Equal(t, tensor.I8, ts[0].T.DType)
			assert.Equal(t, []int{rows, cols}, ts[0].T.Shape)
		case s.Bits == 8:
			assert.Equal(t, tensor.U8, ts[0].T.DType)
		default: // cols*bits/8 bytes a row: 64 columns make whole bytes at every width
			assert.Equal(t, tensor.U8, ts[0].T.DType)
			assert.Equal(t, []int{rows, cols * s.Bits / 8}, ts[0].T.Shape)
			assert.Equal(t, q.Data, ts[0].T.Data, "the QTensor storage, byte for byte")
		}
		assert.Equal(t, !s.Symmetric, len(ts) == 3, "zeros only when asymmetric")
		all = append(all, ts...)
		meta[QuantMetaKey+name] = NewQuantMeta(rows, cols, s).Encode()
		wantQ[name] = q
	}
	all = append(all, safetensors.NamedTensor{Name: "norm.weight", T: tensor.FromF32([]float32{1, 2}, 2)})
	got, metas, err := readBack(t, all, meta)
	require.NoError(t, err)
	require.Len(t, got, len(recipes))
	for name, q := range wantQ {
		g := got[name]
		require.NotNil(t, g, name)
		assert.Equal(t, q.Scheme, g.Scheme, name)
		assert.Equal(t, q.Levels(), g.Levels(), name)
		assert.Equal(t, q.Scales, g.Scales, name)
		assert.Equal(t, q.Zeros, g.Zeros, name)
		assert.Equal(t, quant.Dequantize(q), quant.Dequantize(g), name)
		assert.Equal(t, cols, metas[name].Cols)
	}
}

func TestReadQuantizedErrors(t *testing.T) {
	s := quant.Scheme{Bits: 4, Symmetric: true, Granularity: quant.PerGroup, GroupSize: 8}
	mk := func(meta map[string]string, ts ...safetensors.NamedTensor) error {
		_, _, err := readBack(t, ts, meta)
		return err
	}
	good := NewQuantMeta(2, 16, s).Encode()
	qw := safetensors.NamedTensor{Name: "w.qweight", T: tensor.New(tensor.U8, 2, 8)}
	sc := safetensors.NamedTensor{Name: "w.scales", T: tensor.FromF32([]float32{1, 1, 1, 1}, 2, 2)}
	assert.NoError(t, mk(map[string]string{FormatKey: FormatVersion, QuantMetaKey + "w": good}, qw, sc))
	assert.ErrorContains(t, mk(map[string]string{FormatKey: "autoq-weights-v9"}, qw), "not supported")
	assert.ErrorContains(t, mk(map[string]string{FormatKey: FormatVersion, QuantMetaKey + "w": good}, qw), `tensor "w"`)
	badShape := safetensors.NamedTensor{Name: "w.qweight", T: tensor.New(tensor.U8, 2, 16)}
	assert.ErrorContains(t, mk(map[string]string{FormatKey: FormatVersion, QuantMetaKey + "w": good}, badShape, sc), "w.qweight is U8[2 16], scheme w4g8 needs U8[2 8]")
	assert.ErrorContains(t, mk(map[string]string{FormatKey: FormatVersion, QuantMetaKey + "w": "{"}, qw, sc), "bad metadata")
	// 6-bit levels of 13 columns: 78 bits, 10 bytes a row.
	s6 := quant.Scheme{Bits: 6, Granularity: quant.PerChannel}
	meta6 := map[string]string{FormatKey: FormatVersion, QuantMetaKey + "w": NewQuantMeta(2, 13, s6).Encode()}
	sc6 := safetensors.NamedTensor{Name: "w.scales", T: tensor.FromF32([]float32{1, 1}, 2, 1)}
	i32 := func(v ...int32) *tensor.Tensor {
		t := tensor.New(tensor.I32, len(v), 1)
		copy(t.I32(), v)
		return t
	}
	z6 := safetensors.NamedTensor{Name: "w.zeros", T: i32(0, 63)}
	assert.NoError(t, mk(meta6, safetensors.NamedTensor{Name: "w.qweight", T: tensor.New(tensor.U8, 2, 10)}, sc6, z6))
	assert.ErrorContains(t, mk(meta6, safetensors.NamedTensor{Name: "w.qweight", T: tensor.New(tensor.U8, 2, 13)}, sc6, z6),
		"w.qweight is U8[2 13], scheme w6ca needs U8[2 10]")
	assert.ErrorContains(t, mk(meta6, safetensors.NamedTensor{Name: "w.qweight", T: tensor.New(tensor.U8, 2, 10)}, sc6,
		safetensors.NamedTensor{Name: "w.zeros", T: i32(0, 64)}), "zero point 64 at 1 outside [0, 63]")
	bad9 := map[string]string{FormatKey: FormatVersion, QuantMetaKey + "w": `{"bits":9,"symmetric":true,"granularity":"channel","rows":2,"cols":13}`}
	assert.ErrorContains(t, mk(bad9, qw, sc), "bits must be 3 to 8, got 9")
	zero := safetensors.NamedTensor{Name: "w.scales", T: tensor.FromF32([]float32{1, 0, 1, 1}, 2, 2)}
	assert.Error(t, mk(map[string]string{FormatKey: FormatVersion, QuantMetaKey + "w": good}, qw, zero), "a zero scale is rejected by QTensor.Validate")
}

// A weight with a group index (GPTQ's dynamic act-order groups) stores W.g_idx after its
// other tensors and reads back with it; a bad index is refused.
func TestQuantizedLayoutGIdx(t *testing.T) {
	const rows, cols = 3, 16
	s := quant.Scheme{Bits: 4, Granularity: quant.PerGroup, GroupSize: 8}
	q := gaussianQ(t, "w", 4, rows, cols, s)
	q.GIdx = []int32{1, 0, 0, 1, 1, 0, 1, 0, 0, 1, 1, 0, 0, 1, 0, 1}
	require.NoError(t, q.Validate())
	ts, err := QuantizedTensors(q)
	require.NoError(t, err)
	require.Len(t, ts, 4)
	assert.Equal(t, GIdxInfo("w", cols), safetensors.TensorInfo{Name: ts[3].Name, DType: ts[3].T.DType, Shape: ts[3].T.Shape})
	m := NewQuantMeta(rows, cols, s)
	m.GIdx = true
	// write stores ts, reads them back and returns the weight's group index and values
	// (Data views the file: dequantize before closing it).
	write := func(ts []safetensors.NamedTensor) ([]int32, []float32, error) {
		got, _, err := readBack(t, ts, map[string]string{FormatKey: FormatVersion, QuantMetaKey + "w": m.Encode()})
		if err != nil {
			return nil, nil, err
		}
		return got["w"].GIdx, quant.Dequantize(got["w"]), nil
	}
	gidx, deq, err := write(ts)
	require.NoError(t, err)
	assert.Equal(t, q.GIdx, gidx)
	assert.Equal(t, quant.Dequantize(q), deq)
	_, _, err = write(ts[:3])
	assert.ErrorContains(t, err, "w.g_idx")
	bad := tensor.New(tensor.I32, cols)
	copy(bad.I32(), []int32{1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0})
	_, _, err = write(append(ts[:3:3], safetensors.NamedTensor{Name: "w.g_idx", T: bad}))
	assert.ErrorContains(t, err, "group 0 has 7 columns in the group index, want 8")
}
