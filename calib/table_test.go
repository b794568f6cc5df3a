package calib

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Golden TensorRT cache. Scales are amax/127 as float32, hand-computed:
//
//	amax 127  -> 1.0   -> 0x3f800000
//	amax 254  -> 2.0   -> 0x40000000
//	amax 63.5 -> 0.5   -> 0x3f000000
//	amax 1    -> 1/127 = 2^-7 * 1.0000001000000100000010...b: exponent field 120 (0x3c0...),
//	             mantissa bits 7, 14, 21 after the point = 2^16+2^9+2^2 = 0x10204 (the next
//	             set bit, 28, is below half an ulp) -> 0x3c010204
//
// The empty tensor is left out; the name with ": " inside survives (split on the last ": ").
func TestTRTCacheGolden(t *testing.T) {
	tab := &Table{Settings: TableSettings{Method: "entropy"}, Tensors: []TableEntry{
		{Name: "embed", Amax: 127},
		{Name: "empty.one", Empty: true},
		{Name: "layer 1: attn.q: input", Amax: 254},
		{Name: "mlp.down.input", Amax: 63.5},
		{Name: "small", Amax: 1},
	}}
	c, err := TRTCacheFromTable(tab, DefaultTRTVersion)
	require.NoError(t, err)
	got, err := c.Marshal()
	require.NoError(t, err)
	want, err := os.ReadFile(filepath.Join("testdata", "golden_entropy.cache"))
	require.NoError(t, err)
	require.Equal(t, string(want), string(got))

	back, err := ReadTRTCache(bytes.NewReader(want))
	require.NoError(t, err)
	require.Equal(t, c, back)
	require.Equal(t, "layer 1: attn.q: input", back.Entries[1].Name)
	require.Equal(t, float32(1.0/127), back.Entries[3].Scale)

	tab.Settings.Method = "max"
	c, err = TRTCacheFromTable(tab, "8601")
	require.NoError(t, err)
	got, _ = c.Marshal()
	require.True(t, strings.HasPrefix(string(got), "TRT-8601-MinMaxCalibration\n"))
}

func TestTRTCacheBadInput(t *testing.T) {
	for _, bad := range []string{
		"",
		"not a header\n",
		"TRT-8601-EntropyCalibration2\nname 3f800000\n",
		"TRT-8601-EntropyCalibration2\nname: 3f80000\n",
		"TRT-8601-EntropyCalibration2\nname: 3f80000g\n",
		"TRT-8601-EntropyCalibration2\n: 3f800000\n",
	} {
		_, err := ReadTRTCache(strings.NewReader(bad))
		require.Error(t, err, "%q", bad)
	}
	_, err := (&TRTCache{Version: "8601", Entries: []TRTEntry{{Name: "a\nb"}}}).Marshal()
	require.Error(t, err)
	c, err := ReadTRTCache(strings.NewReader("TRT-8510-EntropyCalibration2\r\na: 3f800000\r\n"))
	require.NoError(t, err)
	require.Equal(t, []TRTEntry{{Name: "a", Scale: 1}}, c.Entries)
}

func TestTableContents(t *testing.T) {
	h := histOf("act", []float32{0, 1, -2, 3, float32(math.NaN())})
	e := NewHistogram("dead")
	e.AddF32([]float32{0, 0})
	res, err := ComputeAll([]*Histogram{h, e}, DefaultOptions(MethodMax))
	require.NoError(t, err)
	tab, err := NewTable([]*Histogram{h, e}, res, DefaultOptions(MethodMax), 1)
	require.NoError(t, err)
	a := tab.Tensors[0]
	require.Equal(t, float32(3), a.Amax)
	require.Equal(t, "40400000", a.AmaxBits) // 3.0 = 1.5 * 2^1
	require.Equal(t, float32(3)/127, a.Scale)
	require.EqualValues(t, 4, a.Count)
	require.EqualValues(t, 1, a.NaN)
	require.Equal(t, HistSummary{Exp: -9, HasExp: true, NonZeroBins: 4}, a.Hist)
	require.True(t, tab.Tensors[1].Empty)
	require.Zero(t, tab.Tensors[1].Amax)

	path := filepath.Join(t.TempDir(), "calib.json")
	require.NoError(t, tab.WriteFile(path))
	back, err := ReadTable(path)
	require.NoError(t, err)
	require.Equal(t, tab, back)
	var buf bytes.Buffer
	require.NoError(t, tab.WriteText(&buf))
	require.Contains(t, buf.String(), "empty")

	require.NoError(t, os.WriteFile(path, []byte(`{"format":"autoq-calibration-table","version":99}`), 0o644))
	_, err = ReadTable(path)
	require.ErrorContains(t, err, "version 99")
}
