package calib

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/tensor"
)

// Fuzz targets for calib's file formats: calibration tables, TensorRT caches and histogram
// state files. Seeds are built here; regressions found by fuzzing live in
// testdata/fuzz/FuzzX. Run one with `go test -run '^$' -fuzz '^FuzzParseState$' -parallel 1 ./calib`.

// fuzzSession is a small session with a wide, a tiny, an all-zero and a NaN tensor.
func fuzzSession(f *testing.F) *Session {
	s := NewSession(SessionOptions{ChannelAbsMax: true})
	err := s.Add("seed", []NamedTensor{
		{Name: "wide", T: tensor.FromF32([]float32{-3e30, 1, 2.5, 1e-20, 0, 7}, 2, 3)},
		{Name: "tiny", T: tensor.FromF32([]float32{1e-44, -2e-45, 0, 0}, 4)},
		{Name: "zero", T: tensor.FromF32([]float32{0, 0}, 2)},
		{Name: "nan", T: tensor.FromF32([]float32{float32(math.NaN()), float32(math.Inf(-1)), 4}, 3)},
	})
	if err != nil {
		f.Fatal(err)
	}
	return s
}

// wrapState is a state envelope around payload with the right checksum, so that fuzzing
// reaches the payload checks instead of stopping at the checksum.
func wrapState(payload []byte) []byte {
	sum := sha256.Sum256(payload)
	b, err := json.Marshal(stateEnvelope{Format: StateFormat, Version: StateVersion, SHA256: hex.EncodeToString(sum[:]), Payload: payload})
	if err != nil {
		return nil // payload is not valid JSON: RawMessage refuses it
	}
	return b
}

// FuzzParseState: any bytes (raw, or wrapped as the payload of an envelope with a valid
// checksum) give a state or an error naming the file. An accepted state encodes to a
// fixed point, and either merges into a session (errors name the file) whose tables, for
// every method, are finite and encodable, or is refused.
func FuzzParseState(f *testing.F) {
	s := fuzzSession(f)
	st := s.State()
	st.Shard = &ShardRecord{Index: 1, Count: 3, Settings: []Setting{{"seq_len", "256"}, {"model", "0123456789abcdef"}}}
	full, err := MarshalState(st)
	if err != nil {
		f.Fatal(err)
	}
	payload, _ := json.Marshal(st)
	f.Add(full, false)
	f.Add(payload, true)
	f.Add(full[:len(full)/2], false)
	f.Add([]byte(`{"batches":1,"tensors":[{"name":"x","exp":100000,"has_exp":true,"absmax_bits":1065353216,"count":1,"bins":[[1,1]]}]}`), true)
	f.Add([]byte(`{"batches":-1,"tensors":[{"name":"x","count":18446744073709551615,"bins":[[0,18446744073709551615]]}]}`), true)
	f.Add([]byte(`{"tensors":[{"name":"x","channel_absmax_bits":[2143289344]}]}`), true)
	f.Add([]byte(`{"format":"autoq-calib-histograms","version":1,"sha256":"00","payload":{}}`), false)
	f.Add([]byte(`{"tensors":[],"shard":{"index":3,"count":2,"settings":[{"name":"a","value":"1"},{"name":"a","value":"1"}]}}`), true)
	const name = "fuzz/histograms-00000-of-00001.json"
	f.Fuzz(func(t *testing.T, raw []byte, wrap bool) {
		if wrap {
			if raw = wrapState(raw); raw == nil {
				return
			}
		}
		st, err := ParseState(name, raw)
		if testutil.Refused(t, err, name) {
			return
		}
		b, err := MarshalState(st)
		back := testutil.Reparse(t, "state", ParseState, name, b, err)
		if b2, _ := MarshalState(back); !bytes.Equal(b, b2) {
			t.Fatalf("encoding is not a fixed point:\n%s\n%s", b, b2)
		}
		s := NewSession(SessionOptions{})
		if testutil.Refused(t, s.MergeState(st, name), name) {
			return
		}
		_ = s.MergeState(st, name) // twice: counts may overflow, which must be an error
		for _, m := range []Method{MethodEntropy, MethodPercentile, MethodMSE, MethodMax} {
			tab, err := s.Table(DefaultOptions(m))
			if err != nil {
				t.Fatalf("%s table of an accepted state: %v", m, err)
			}
			if _, err := tab.Marshal(); err != nil {
				t.Fatalf("%s table of an accepted state does not encode: %v", m, err)
			}
		}
	})
}

// FuzzParseTable: any bytes give a table or an error naming the file; an accepted table
// survives Marshal -> ParseTable unchanged and converts to a TensorRT cache whose scales
// are finite.
func FuzzParseTable(f *testing.F) {
	s := fuzzSession(f)
	for _, m := range []Method{MethodEntropy, MethodPercentile, MethodMSE, MethodMax} {
		tab, err := s.Table(DefaultOptions(m))
		if err != nil {
			f.Fatal(err)
		}
		b, err := tab.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"format":"autoq-calibration-table","version":1,"settings":{"method":"max"},"tensors":[{"name":"a","amax":-1}]}`))
	f.Add([]byte(`{"format":"autoq-calibration-table","version":1,"settings":{"method":"max"},"tensors":[{"name":"a","amax":1,"amax_bits":"40000000"}]}`))
	f.Add([]byte(`{"format":"autoq-calibration-table","version":2}`))
	const name = "fuzz/table.json"
	f.Fuzz(func(t *testing.T, raw []byte) {
		tab, err := ParseTable(name, raw)
		if testutil.Refused(t, err, name) {
			return
		}
		b, err := tab.Marshal()
		back := testutil.Reparse(t, "table", ParseTable, name, b, err)
		if !reflect.DeepEqual(tab, back) {
			b2, _ := back.Marshal()
			if !bytes.Equal(b, b2) {
				t.Fatalf("round trip changed the table:\n%s\n%s", b, b2)
			}
		}
		c, err := TRTCacheFromTable(tab, DefaultTRTVersion)
		if err != nil {
			return // unknown method: refused
		}
		for _, e := range c.Entries {
			if !(e.Scale > 0) || math.IsInf(float64(e.Scale), 0) {
				t.Fatalf("tensor %q: TensorRT scale %v from an accepted table", e.Name, e.Scale)
			}
		}
	})
}

// FuzzReadTRTCache: any bytes give a cache or an error with the line; an accepted cache
// marshals (when its names are writable) and reads back equal.
func FuzzReadTRTCache(f *testing.F) {
	f.Add([]byte("TRT-8601-EntropyCalibration2\nembed: 3c010204\nlayer 1: attn: 3f800000\n"))
	f.Add([]byte("TRT-8601-MinMaxCalibration\r\n\r\nx: 7f800000\r\n"))
	f.Add([]byte("TRT-1-X\n: 3f800000\n"))
	f.Add([]byte("TRT-8601-EntropyCalibration2\nname: 3f80000g\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := ReadTRTCache(bytes.NewReader(raw))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "trt cache: ") {
				t.Fatalf("error does not say what was read: %v", err)
			}
			return
		}
		b, err := c.Marshal()
		if err != nil {
			return // e.g. a name with a carriage return inside
		}
		back, err := ReadTRTCache(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("marshalled cache does not read: %v\n%q", err, b)
		}
		if len(back.Entries) != len(c.Entries) || back.Version != c.Version || back.Algorithm != c.Algorithm {
			t.Fatalf("round trip changed the cache: %+v vs %+v", back, c)
		}
		for i, e := range c.Entries {
			g := back.Entries[i]
			if g.Name != e.Name || math.Float32bits(g.Scale) != math.Float32bits(e.Scale) {
				t.Fatalf("entry %d: %q %x read back as %q %x", i, e.Name, math.Float32bits(e.Scale), g.Name, math.Float32bits(g.Scale))
			}
		}
	})
}

// FuzzShardSet: any list of shard records (JSON) is accepted by CheckShardSet only when it
// is one whole run: indices 0..count-1 once each, the same count and settings everywhere;
// otherwise the error names a file.
func FuzzShardSet(f *testing.F) {
	f.Add([]byte(`[{"index":0,"count":2,"settings":[{"name":"a","value":"1"}]},{"index":1,"count":2,"settings":[{"name":"a","value":"1"}]}]`))
	f.Add([]byte(`[{"index":1,"count":2,"settings":[{"name":"a","value":"1"}]},{"index":1,"count":2,"settings":[{"name":"a","value":"1"}]}]`))
	f.Add([]byte(`[{"index":0,"count":2,"settings":[{"name":"a","value":"1"}]},{"index":1,"count":2,"settings":[{"name":"a","value":"2"}]}]`))
	f.Add([]byte(`[{"index":0,"count":1,"settings":[{"name":"a","value":"1"},{"name":"b","value":"1"}]}]`))
	f.Add([]byte(`[{"index":0,"count":3},{"index":2,"count":3}]`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var recs []*ShardRecord
		if json.Unmarshal(raw, &recs) != nil {
			return
		}
		files := make([]string, len(recs))
		states := make([]*State, len(recs))
		for i, r := range recs {
			files[i] = fmt.Sprintf("shard-file-%d.json", i)
			states[i] = &State{Shard: r}
		}
		err := CheckShardSet(files, states)
		if err != nil {
			if len(recs) > 0 && !strings.Contains(err.Error(), "shard-file-") {
				t.Fatalf("error names no file: %v", err)
			}
			return
		}
		n := recs[0].Count
		seen := make([]bool, n)
		for _, r := range recs {
			if r.Count != n || r.Index < 0 || r.Index >= n || seen[r.Index] || !reflect.DeepEqual(settingMap(r), settingMap(recs[0])) {
				t.Fatalf("accepted a set that is not one whole run: %s", raw)
			}
			seen[r.Index] = true
		}
		if len(recs) != n {
			t.Fatalf("accepted %d shards of %d", len(recs), n)
		}
	})
}

func settingMap(r *ShardRecord) map[string]string {
	m := map[string]string{}
	for _, s := range r.Settings {
		m[s.Name] = s.Value
	}
	return m
}
