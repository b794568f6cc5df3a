package calib

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/autoq/autoq/internal/atomicfile"
)

// Table format identification. Version 1 is the layout of Table below.
const (
	TableFormat  = "autoq-calibration-table"
	TableVersion = 1
)

// Table is autoq's calibration table: one threshold per tensor plus the settings used.
// Tensors are sorted by name; the same histograms and settings give the same bytes.
type Table struct {
	Format   string        `json:"format"`
	Version  int           `json:"version"`
	Settings TableSettings `json:"settings"`
	Tensors  []TableEntry  `json:"tensors"`
}

// TableSettings records how the thresholds were chosen.
type TableSettings struct {
	Method     string  `json:"method"`
	Percentile float64 `json:"percentile,omitempty"` // percentile method only
	Levels     int     `json:"levels"`
	ZeroSpike  bool    `json:"zero_spike"` // entropy only; always recorded
	Bins       int     `json:"bins"`
	Batches    int     `json:"batches"` // batches (dump files) that fed the histograms
}

// TableEntry is one tensor's threshold. Amax and Scale are also given as the hex of their
// float32 bits, so no reader depends on decimal round-tripping.
type TableEntry struct {
	Name      string  `json:"name"`
	Method    string  `json:"method"`
	Amax      float32 `json:"amax"`
	AmaxBits  string  `json:"amax_bits"`
	Scale     float32 `json:"scale"` // amax / levels
	ScaleBits string  `json:"scale_bits"`
	Bin       int     `json:"bin"` // threshold in bins (0 for max and empty)
	// Empty: no non-zero finite value was seen; amax and scale are 0 and the tensor must
	// not be quantized with them (the TensorRT cache leaves it out).
	Empty  bool         `json:"empty,omitempty"`
	Count  uint64       `json:"count"`
	AbsMax float32      `json:"absmax"`
	NaN    uint64       `json:"nan"`
	Inf    uint64       `json:"inf"`
	Hist   HistSummary  `json:"histogram"`
	KL     *float64     `json:"kl,omitempty"`  // entropy: KL divergence at the threshold
	MSE    *float64     `json:"mse,omitempty"` // mse: mean squared error at the threshold
	Chan   *ChanSummary `json:"channels,omitempty"`
}

// HistSummary describes the histogram a threshold came from.
type HistSummary struct {
	Exp         int  `json:"exp"` // bin width 2^exp (meaningless when !has_exp)
	HasExp      bool `json:"has_exp"`
	NonZeroBins int  `json:"nonzero_bins"`
}

// ChanSummary summarises per-channel absmax when it was collected.
type ChanSummary struct {
	Channels int     `json:"channels"`
	MaxRatio float32 `json:"max_over_median"` // largest channel absmax / median (outliers)
}

// NewTable builds a table from histograms and their results (same order).
func NewTable(hs []*Histogram, res []Result, opt Options, batches int) (*Table, error) {
	opt, err := opt.Normalized()
	if err != nil {
		return nil, err
	}
	t := &Table{Format: TableFormat, Version: TableVersion, Tensors: []TableEntry{}, Settings: TableSettings{
		Method: opt.Method.String(), Levels: opt.Levels, ZeroSpike: opt.ZeroSpike, Bins: NumBins, Batches: batches,
	}}
	if opt.Method == MethodPercentile {
		t.Settings.Percentile = opt.Percentile
	}
	for i, h := range hs {
		r := res[i]
		scale := r.Amax / float32(opt.Levels)
		e := TableEntry{
			Name: h.Name, Method: opt.Method.String(), Amax: r.Amax, AmaxBits: hex32(r.Amax),
			Scale: scale, ScaleBits: hex32(scale), Bin: r.Bin, Empty: r.Empty,
			Count: h.Count, AbsMax: h.AbsMax, NaN: h.NaN, Inf: h.Inf,
			Hist: HistSummary{Exp: h.Exp, HasExp: h.HasExp, NonZeroBins: h.NonZeroBins()},
		}
		if !r.Empty && !math.IsInf(r.KL, 0) && !math.IsNaN(r.KL) {
			kl := r.KL
			switch opt.Method {
			case MethodEntropy:
				e.KL = &kl
			case MethodMSE:
				e.MSE = &kl
			}
		}
		if n := len(h.ChannelAbsMax); n > 0 {
			e.Chan = &ChanSummary{Channels: n, MaxRatio: channelRatio(h.ChannelAbsMax)}
		}
		t.Tensors = append(t.Tensors, e)
	}
	return t, nil
}

func hex32(f float32) string { return fmt.Sprintf("%08x", math.Float32bits(f)) }

// channelRatio is max / median of the channel absmaxes (0 when the median is 0).
func channelRatio(c []float32) float32 {
	s := append([]float32(nil), c...)
	slices.Sort(s)
	med := s[len(s)/2]
	if med == 0 {
		return 0
	}
	return s[len(s)-1] / med
}

// Marshal returns the table as indented JSON with a trailing newline.
func (t *Table) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// WriteFile writes the table atomically.
func (t *Table) WriteFile(path string) error {
	b, err := t.Marshal()
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, b, 0o644)
}

// ReadTable reads a table written by WriteFile, checking format and version.
func ReadTable(path string) (*Table, error) { return readFile(path, ParseTable) }

// ParseTable checks and decodes the bytes of a calibration table; path names it in errors.
func ParseTable(path string, b []byte) (*Table, error) {
	var t Table
	if err := tableFile.decode(path, b, &t); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for i, e := range t.Tensors {
		switch {
		case e.Name == "" || seen[e.Name]:
			return nil, fmt.Errorf("%s: tensors[%d]: name %q is empty or repeated", path, i, e.Name)
		case !e.Empty && !(e.Amax > 0 && e.Amax <= math.MaxFloat32):
			return nil, fmt.Errorf("%s: tensor %q: amax %v is not a positive finite threshold (and the entry is not marked empty)", path, e.Name, e.Amax)
		case e.AmaxBits != "" && e.AmaxBits != hex32(e.Amax):
			return nil, fmt.Errorf("%s: tensor %q: amax %v has the float32 bits %s, but amax_bits says %q (edit both or neither)", path, e.Name, e.Amax, hex32(e.Amax), e.AmaxBits)
		}
		seen[e.Name] = true
	}
	return &t, nil
}

// WriteText prints the table for people: one line per tensor.
func (t *Table) WriteText(w io.Writer) error {
	nameW := len("tensor")
	for _, e := range t.Tensors {
		nameW = max(nameW, len(e.Name))
	}
	if _, err := fmt.Fprintf(w, "%-*s  %-10s %12s %12s %12s %6s %12s %6s %6s\n", nameW, "tensor", "method", "amax", "scale", "absmax", "bin", "count", "nan", "inf"); err != nil {
		return err
	}
	for _, e := range t.Tensors {
		bin := fmt.Sprint(e.Bin)
		if e.Empty {
			bin = "empty"
		}
		if _, err := fmt.Fprintf(w, "%-*s  %-10s %12.6g %12.6g %12.6g %6s %12d %6d %6d\n", nameW, e.Name, e.Method, e.Amax, e.Scale, e.AbsMax, bin, e.Count, e.NaN, e.Inf); err != nil {
			return err
		}
	}
	return nil
}

// AmaxFor is the one rule for reading a layer's input threshold from a table: the entry
// named layer, or layer+".input" (activation dumps often name inputs so). A missing entry,
// or one with no usable amax (an empty tensor), is an error naming the table's source and
// the layer.
func (t *Table) AmaxFor(layer string) (float32, error) {
	for _, name := range []string{layer, layer + ".input"} {
		for i := range t.Tensors {
			e := &t.Tensors[i]
			if e.Name != name {
				continue
			}
			if e.Empty || !(e.Amax > 0) {
				return 0, fmt.Errorf("calibration table: %s has no usable amax (its input held no non-zero finite value)", e.Name)
			}
			return e.Amax, nil
		}
	}
	return 0, fmt.Errorf("calibration table has no entry for %s (or %s.input)", layer, layer)
}
