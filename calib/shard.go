package calib

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ShardRecord says which part of which run a histogram state file holds. Merging is exact,
// so a complete set of shards of one run gives the table of the unsharded run; a missing
// shard, a shard twice, or shards of runs with other settings would silently give another
// table. ReadShardSet therefore takes a set only when every index 0..Count-1 appears once
// and all records carry the same settings.
type ShardRecord struct {
	Index int `json:"index"`
	Count int `json:"count"`
	// Settings are everything that shapes this shard's histograms, in the writer's order
	// (readable settings first, fingerprints last, so a mismatch names the plainest one
	// first). Settings that cannot change the histograms (the calibrator, --batch on the
	// CPU, --workers, --rounds) are left out so that such shards still merge.
	Settings []Setting `json:"settings"`
}

// Setting is one name = value pair of a ShardRecord.
type Setting struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Common setting values.
const (
	// SettingBins records the histogram layout (NumBins bins of width 2^Exp).
	SettingBins = "bins"
)

// check validates a record read from a file.
func (r *ShardRecord) check() error {
	if r.Count < 1 || r.Index < 0 || r.Index >= r.Count {
		return fmt.Errorf("shard record: index %d of %d: want 0 <= index < count", r.Index, r.Count)
	}
	seen := map[string]bool{}
	for _, s := range r.Settings {
		if s.Name == "" || seen[s.Name] {
			return fmt.Errorf("shard record: setting name %q is empty or repeated", s.Name)
		}
		seen[s.Name] = true
	}
	return nil
}

func (r *ShardRecord) setting(name string) (string, bool) {
	for _, s := range r.Settings {
		if s.Name == name {
			return s.Value, true
		}
	}
	return "", false
}

// Fingerprint hashes what identifies an input (a model's weights, a token stream, a list
// of files) into a short hex string for a Setting. It is for telling runs apart, not for
// security: 64 bits of SHA-256.
type Fingerprint struct{ h hash.Hash }

// NewFingerprint starts an empty fingerprint.
func NewFingerprint() *Fingerprint { return &Fingerprint{h: sha256.New()} }

// Write adds bytes.
func (f *Fingerprint) Write(b []byte) (int, error) { return f.h.Write(b) }

// String is the fingerprint so far (16 hex digits).
func (f *Fingerprint) String() string { return hex.EncodeToString(f.h.Sum(nil)[:8]) }

// DumpShardRecord is the record of shard index of count of an activation-dump run over
// files (the whole sorted list that all shards split: file i goes to shard i mod count).
// The files are identified by base name and size (reading every file in every shard to
// hash its contents would multiply the I/O by the shard count).
func DumpShardRecord(files []string, index, count int, channelAbsMax bool) (*ShardRecord, error) {
	fp := NewFingerprint()
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(fp, "%q %d\n", filepath.Base(f), st.Size())
	}
	return &ShardRecord{Index: index, Count: count, Settings: []Setting{
		{"input", "activation dumps"},
		{"sharding", "sorted file i -> shard i mod count"},
		{SettingBins, fmt.Sprint(NumBins)},
		{"channel_absmax", fmt.Sprint(channelAbsMax)},
		{"files", fmt.Sprint(len(files))},
		{"file_list", fp.String()},
	}}, nil
}

// ReadShardSet reads the state files of one sharded run and checks that they form the
// whole run: each has a shard record, all records agree on the shard count and settings,
// and every index appears exactly once. States are returned in the order of files.
//
// Files without a record (written before records existed) are refused rather than merged
// with a warning: nothing in them says whether the set is complete or consistent, and a
// wrong merge gives a plausible but wrong table. Regenerating a shard is one calibrate run.
func ReadShardSet(files []string) ([]*State, error) {
	if len(files) == 0 {
		return nil, fmt.Errorf("no histogram state files to merge")
	}
	states := make([]*State, len(files))
	for i, f := range files {
		st, err := ReadStateFile(f)
		if err != nil {
			return nil, err
		}
		if st.Shard == nil {
			return nil, fmt.Errorf("%s: no shard record (written by an older autoq): cannot check that the shards are complete and made with the same settings; regenerate every shard with this autoq (autoq calibrate ... --shard I/N --histograms DIR)", f)
		}
		states[i] = st
	}
	return states, CheckShardSet(files, states)
}

// CheckShardSet is ReadShardSet's check on states already read (files name them, same
// order).
func CheckShardSet(files []string, states []*State) error {
	if len(states) == 0 || len(files) != len(states) {
		return fmt.Errorf("calib: %d states named by %d files: want one name per state, at least one", len(states), len(files))
	}
	for i, st := range states {
		if st.Shard == nil {
			return fmt.Errorf("%s: no shard record", files[i])
		}
		if err := st.Shard.check(); err != nil {
			return fmt.Errorf("%s: %w", files[i], err)
		}
	}
	order := make([]int, len(states))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return states[order[a]].Shard.Index < states[order[b]].Shard.Index })
	ref := order[0]
	r := states[ref].Shard
	desc := func(i int) string {
		s := states[i].Shard
		return fmt.Sprintf("shard %d of %d (%s)", s.Index, s.Count, files[i])
	}
	for _, i := range order[1:] {
		s := states[i].Shard
		if s.Count != r.Count {
			return fmt.Errorf("%s comes from a %d-shard run, %s from a %d-shard run", desc(i), s.Count, desc(ref), r.Count)
		}
		for _, want := range r.Settings {
			got, ok := s.setting(want.Name)
			if !ok {
				return fmt.Errorf("%s has no %s setting, %s has %s %s", desc(i), want.Name, desc(ref), want.Name, want.Value)
			}
			if got != want.Value {
				return fmt.Errorf("%s has %s %s, %s has %s (shards of one run must use the same settings)", desc(i), want.Name, got, desc(ref), want.Value)
			}
		}
		for _, extra := range s.Settings {
			if _, ok := r.setting(extra.Name); !ok {
				return fmt.Errorf("%s has %s %s, %s has no %s setting", desc(i), extra.Name, extra.Value, desc(ref), extra.Name)
			}
		}
	}
	byIndex := map[int]int{}
	for _, i := range order {
		if j, dup := byIndex[states[i].Shard.Index]; dup {
			return fmt.Errorf("shard %d of %d appears twice: %s and %s", states[i].Shard.Index, r.Count, files[j], files[i])
		}
		byIndex[states[i].Shard.Index] = i
	}
	if len(byIndex) != r.Count {
		var missing []string
		for k := 0; k < r.Count && len(missing) < 10; k++ {
			if _, ok := byIndex[k]; !ok {
				missing = append(missing, fmt.Sprint(k))
			}
		}
		if n := r.Count - len(byIndex); n > len(missing) {
			missing = append(missing, fmt.Sprintf("and %d more", n-len(missing)))
		}
		given := files
		if len(given) > 5 {
			given = append(given[:5:5], fmt.Sprintf("and %d more", len(files)-5))
		}
		return fmt.Errorf("incomplete shard set: %d of %d shards given (%s); missing shard %s", len(byIndex), r.Count, strings.Join(given, ", "), strings.Join(missing, ", "))
	}
	return nil
}
