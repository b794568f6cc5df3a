package calib

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// TRTNames maps the names a calibration table uses (a linear layer's module name, for
// its input: model.layers.0.mlp.down_proj) to the network tensor names TensorRT looks
// scales up by (the name of that input in the ONNX graph, e.g.
// "/model/layers.0/mlp/Mul_output_0"). Several modules may map to one tensor: q, k and v
// read the same input.
type TRTNames map[string]string

// ReadTRTNames reads a JSON object {"module name": "network tensor name", ...}.
func ReadTRTNames(path string) (TRTNames, error) { return readFile(path, ParseTRTNames) }

// ParseTRTNames decodes the bytes of a name map; path names it in errors.
func ParseTRTNames(path string, b []byte) (TRTNames, error) {
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("trt names %s: want a JSON object of strings {\"module name\": \"network tensor name\"}: %w", path, err)
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("trt names %s: the map is empty", path)
	}
	for k, v := range m {
		if k == "" || v == "" || strings.ContainsAny(k+v, "\n\r") {
			return nil, fmt.Errorf("trt names %s: entry %q: %q: names must be non-empty and on one line", path, k, v)
		}
	}
	return TRTNames(m), nil
}

// TRTMerge is one network tensor that several entries mapped to with different scales.
type TRTMerge struct {
	Tensor  string
	Entries []string
	Scale   float32 // the largest, which is written
}

// Rename returns the cache keyed by network tensor names, one entry per tensor, in the
// order of each tensor's first entry. Entries mapping to one tensor (q/k/v) are one line;
// their scales are equal when they were calibrated on the same input, and otherwise the
// largest is written (so that no member's values clip) and the merge is reported.
// Entries the map lacks are left out and listed in unmapped (TensorRT would ignore them).
func (c *TRTCache) Rename(names TRTNames) (out *TRTCache, unmapped []string, merged []TRTMerge) {
	out = &TRTCache{Version: c.Version, Algorithm: c.Algorithm}
	at := map[string]int{}
	members := map[string][]string{}
	differ := map[string]bool{}
	for _, e := range c.Entries {
		t, ok := names[e.Name]
		if !ok {
			unmapped = append(unmapped, e.Name)
			continue
		}
		members[t] = append(members[t], e.Name)
		i, seen := at[t]
		if !seen {
			at[t] = len(out.Entries)
			out.Entries = append(out.Entries, TRTEntry{Name: t, Scale: e.Scale})
			continue
		}
		if e.Scale != out.Entries[i].Scale {
			differ[t] = true
			out.Entries[i].Scale = max(out.Entries[i].Scale, e.Scale)
		}
	}
	for t := range differ {
		merged = append(merged, TRTMerge{Tensor: t, Entries: members[t], Scale: out.Entries[at[t]].Scale})
	}
	sort.Slice(merged, func(i, j int) bool { return merged[i].Tensor < merged[j].Tensor })
	return out, unmapped, merged
}
