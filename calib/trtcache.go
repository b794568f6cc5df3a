package calib

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/autoq/autoq/internal/atomicfile"
)

// DefaultTRTVersion is the version number written in TensorRT cache headers unless told
// otherwise (TensorRT 8.6.1 writes "TRT-8601-...").
const DefaultTRTVersion = "8601"

// TRTCache is a TensorRT INT8 calibration cache: a header line
// "TRT-<version>-<algorithm>" and one line "name: xxxxxxxx" per tensor, the hex being the
// big-endian bits of the float32 scale amax/127 (lowercase, 8 digits).
type TRTCache struct {
	Version   string // "8601"
	Algorithm string // "EntropyCalibration2" or "MinMaxCalibration"
	Entries   []TRTEntry
}

// TRTEntry is one tensor's scale.
type TRTEntry struct {
	Name  string
	Scale float32
}

// TRTAlgorithm returns the cache algorithm for a method: MinMaxCalibration for max,
// EntropyCalibration2 for the others (TensorRT has no percentile or MSE calibrator; an
// EntropyCalibration2 cache is what its IInt8EntropyCalibrator2 consumes).
func TRTAlgorithm(m Method) string {
	if m == MethodMax {
		return "MinMaxCalibration"
	}
	return "EntropyCalibration2"
}

// TRTCacheFromTable converts a table: scale = float32(amax/127) (TensorRT is int8 signed,
// whatever levels the table used). Empty tensors are left out: a zero scale would erase
// the tensor, and TensorRT treats a missing entry as uncalibrated.
func TRTCacheFromTable(t *Table, version string) (*TRTCache, error) {
	m, err := ParseMethod(t.Settings.Method)
	if err != nil {
		return nil, err
	}
	c := &TRTCache{Version: version, Algorithm: TRTAlgorithm(m)}
	for _, e := range t.Tensors {
		if e.Empty {
			continue
		}
		scale := e.Amax / 127
		if !(scale > 0) || math.IsInf(float64(scale), 0) {
			return nil, fmt.Errorf("trt cache: tensor %q: amax %v gives the scale %v (amax/127), which TensorRT cannot use", e.Name, e.Amax, scale)
		}
		c.Entries = append(c.Entries, TRTEntry{Name: e.Name, Scale: scale})
	}
	return c, nil
}

// Marshal renders the cache. Names must not contain a newline.
func (c *TRTCache) Marshal() ([]byte, error) {
	if !trtVersion.MatchString(c.Version) {
		return nil, fmt.Errorf("trt cache: version %q must be digits", c.Version)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "TRT-%s-%s\n", c.Version, c.Algorithm)
	for _, e := range c.Entries {
		if strings.ContainsAny(e.Name, "\n\r") || e.Name == "" {
			return nil, fmt.Errorf("trt cache: tensor name %q cannot be written (empty or has a line break)", e.Name)
		}
		fmt.Fprintf(&b, "%s: %08x\n", e.Name, math.Float32bits(e.Scale))
	}
	return b.Bytes(), nil
}

// WriteFile writes the cache atomically.
func (c *TRTCache) WriteFile(path string) error {
	b, err := c.Marshal()
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, b, 0o644)
}

var (
	trtVersion = regexp.MustCompile(`^[0-9]+$`)
	trtHeader  = regexp.MustCompile(`^TRT-([0-9]+)-([A-Za-z0-9]+)$`)
)

// ReadTRTCache parses a cache. Names may contain spaces and ": " (the line is split on the
// last ": "); each scale must be exactly 8 hex digits. Errors give the line number.
func ReadTRTCache(r io.Reader) (*TRTCache, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16<<20)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("trt cache: %w", err)
		}
		return nil, fmt.Errorf("trt cache: empty file, want a TRT-<version>-<algorithm> header")
	}
	m := trtHeader.FindStringSubmatch(strings.TrimRight(sc.Text(), "\r"))
	if m == nil {
		return nil, fmt.Errorf("trt cache: line 1: %q is not a TRT-<version>-<algorithm> header", sc.Text())
	}
	c := &TRTCache{Version: m[1], Algorithm: m[2]}
	for line := 2; sc.Scan(); line++ {
		s := strings.TrimRight(sc.Text(), "\r")
		if s == "" {
			continue
		}
		i := strings.LastIndex(s, ": ")
		if i <= 0 {
			return nil, fmt.Errorf("trt cache: line %d: %q is not \"name: xxxxxxxx\"", line, s)
		}
		hex := s[i+2:]
		if len(hex) != 8 {
			return nil, fmt.Errorf("trt cache: line %d: scale %q is not 8 hex digits", line, hex)
		}
		bits, err := strconv.ParseUint(hex, 16, 32)
		if err != nil {
			return nil, fmt.Errorf("trt cache: line %d: scale %q is not 8 hex digits", line, hex)
		}
		c.Entries = append(c.Entries, TRTEntry{Name: s[:i], Scale: math.Float32frombits(uint32(bits))})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("trt cache: %w", err)
	}
	return c, nil
}
