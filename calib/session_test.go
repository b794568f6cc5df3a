package calib

import (
	"fmt"
	"math"
	"path/filepath"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/safetensors"
	"github.com/autoq/autoq/tensor"
	"github.com/stretchr/testify/require"
)

// writeDumps writes n activation dumps with three tensors (F32, F16, BF16) and returns
// their paths in order.
func writeDumps(t *testing.T, dir string, n int) []string {
	r := testutil.Rand(20)
	var paths []string
	for i := range n {
		g := testutil.Gaussian(r, 4*32, 1)
		l := testutil.Laplace(r, 4*16, 0.5)
		s := testutil.StudentT(r, 2*8, 3)
		s[0] *= float32(1 + i) // growing range across files exercises coarsening
		p := filepath.Join(dir, fmt.Sprintf("dump_%03d.safetensors", i))
		require.NoError(t, safetensors.WriteFile(p, []safetensors.NamedTensor{
			{Name: "layers.0.attn.q_proj.input", T: tensor.FromF32(g, 4, 32)},
			{Name: "layers.0.mlp.down.input", T: tensor.FromU16(tensor.F16, tensor.F32ToF16Slice(l), 4, 16)},
			{Name: "layers.1: odd name", T: tensor.FromU16(tensor.BF16, tensor.F32ToBF16Slice(s), 2, 8)},
		}, nil))
		paths = append(paths, p)
	}
	return paths
}

func tableBytes(t *testing.T, s *Session, m Method) []byte {
	tab, err := s.Table(DefaultOptions(m))
	require.NoError(t, err)
	b, err := tab.Marshal()
	require.NoError(t, err)
	return b
}

// Shards in any split, written to state files and merged in any order, give the table of
// one unsharded run byte for byte.
func TestShardMergeEqualsUnsharded(t *testing.T) {
	dir := t.TempDir()
	paths := writeDumps(t, dir, 12)
	whole := NewSession(SessionOptions{ChannelAbsMax: true})
	for _, p := range paths {
		require.NoError(t, whole.AddFile(p))
	}
	require.Equal(t, 12, whole.Batches())
	for _, n := range []int{1, 2, 5, 12} {
		var states []string
		for shard := range n {
			s := NewSession(SessionOptions{ChannelAbsMax: true})
			for i, p := range paths {
				if i%n == shard {
					require.NoError(t, s.AddFile(p))
				}
			}
			sp := filepath.Join(dir, fmt.Sprintf("state_%d_of_%d.json", shard, n))
			require.NoError(t, WriteStateFile(sp, s.State()))
			states = append(states, sp)
		}
		merged := NewSession(SessionOptions{})
		for k := len(states) - 1; k >= 0; k-- { // reverse order on purpose
			st, err := ReadStateFile(states[k])
			require.NoError(t, err)
			require.NoError(t, merged.MergeState(st, states[k]))
		}
		for _, m := range []Method{MethodEntropy, MethodPercentile, MethodMSE, MethodMax} {
			require.Equal(t, string(tableBytes(t, whole, m)), string(tableBytes(t, merged, m)), "%d shards, %s", n, m)
		}
		for i, h := range whole.Histograms() {
			require.Equal(t, h, merged.Histograms()[i])
		}
	}
	// The F16 tensor's histogram equals one built directly from all its values.
	direct := NewHistogram("layers.0.mlp.down.input")
	for _, p := range paths {
		f, err := safetensors.Open(p)
		require.NoError(t, err)
		x, err := f.Tensor("layers.0.mlp.down.input")
		require.NoError(t, err)
		direct.AddF32(x.ToF32())
		f.Close()
	}
	got := whole.Histograms()[1].Clone()
	got.ChannelAbsMax = nil
	require.Equal(t, direct, got)
}

func TestSessionBadInput(t *testing.T) {
	dir := t.TempDir()
	paths := writeDumps(t, dir, 2)
	s := NewSession(SessionOptions{})
	require.NoError(t, s.AddFile(paths[0]))

	reshaped := filepath.Join(dir, "reshaped.safetensors")
	require.NoError(t, safetensors.WriteFile(reshaped, []safetensors.NamedTensor{
		{Name: "layers.0.attn.q_proj.input", T: tensor.FromF32(make([]float32, 64), 2, 32)},
	}, nil))
	err := s.AddFile(reshaped)
	require.ErrorContains(t, err, paths[0])
	require.ErrorContains(t, err, reshaped)
	require.ErrorContains(t, err, "layers.0.attn.q_proj.input")

	empty := filepath.Join(dir, "empty.safetensors")
	require.NoError(t, safetensors.WriteFile(empty, nil, nil))
	require.ErrorContains(t, s.AddFile(empty), "holds no tensors")

	junk := testutil.WriteFile(t, dir, "junk.safetensors", []byte("this is not a safetensors file at all"))
	require.ErrorContains(t, s.AddFile(junk), "not a readable safetensors file")

	ints := filepath.Join(dir, "ints.safetensors")
	require.NoError(t, safetensors.WriteFile(ints, []safetensors.NamedTensor{{Name: "x", T: tensor.FromI8([]int8{1, 2}, 2)}}, nil))
	require.ErrorContains(t, s.AddFile(ints), "must be F32, F16 or BF16")

	nan := []NamedTensor{{Name: "bad", T: tensor.FromF32([]float32{1, float32(math.NaN()), float32(math.Inf(1))}, 3)}}
	require.NoError(t, s.Add("batch A", nan))
	require.Len(t, s.NonFinite(), 1)
	require.EqualValues(t, 1, s.NonFinite()[0].NaN)
	strict := NewSession(SessionOptions{FailOnNonFinite: true})
	err = strict.Add("batch B", nan)
	require.ErrorContains(t, err, `"bad"`)
	require.ErrorContains(t, err, "1 NaN and 1 Inf")
}

func TestStateFileErrors(t *testing.T) {
	dir := t.TempDir()
	s := NewSession(SessionOptions{})
	require.NoError(t, s.Add("b", []NamedTensor{{Name: "x", T: tensor.FromF32([]float32{1, 2, 3}, 3)}}))
	b, err := MarshalState(s.State())
	require.NoError(t, err)
	st, err := ParseState("ok", b)
	require.NoError(t, err)
	require.Equal(t, s.State(), st)

	corrupt := []byte(string(b))
	i := len(`{"format":"autoq-calib-histograms","version":1,"sha256":"`) + 64 + len(`","payload":{"batches":`)
	corrupt[i] = '7' // batches 1 -> 7 without updating the checksum
	_, err = ParseState("c.json", corrupt)
	require.ErrorContains(t, err, "checksum mismatch")
	_, err = ParseState("v.json", []byte(`{"format":"autoq-calib-histograms","version":2}`))
	require.ErrorContains(t, err, "version 2")
	_, err = ParseState("t.json", b[:len(b)/2])
	require.ErrorContains(t, err, "not an autoq histogram state file")

	// Shape mismatch between shards names both.
	other := NewSession(SessionOptions{})
	require.NoError(t, other.Add("elsewhere.safetensors", []NamedTensor{{Name: "x", T: tensor.FromF32([]float32{1, 2, 3, 4}, 4)}}))
	p := filepath.Join(dir, "other.json")
	require.NoError(t, WriteStateFile(p, other.State()))
	ost, err := ReadStateFile(p)
	require.NoError(t, err)
	err = s.MergeState(ost, p)
	require.ErrorContains(t, err, "elsewhere.safetensors")
	require.ErrorContains(t, err, `"x"`)
}
