package calib

import (
	"encoding/json"
	"fmt"
	"os"
)

// readFile reads path and parses its bytes with parse (ParseTable, ParseState, ...), which
// names path in its errors; a read error is os.ReadFile's, which names it too.
func readFile[T any](path string, parse func(path string, b []byte) (T, error)) (T, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		var zero T
		return zero, err
	}
	return parse(path, b)
}

// fileKind is what a calib JSON file records it is (a table, a histogram state file) and
// how errors call it.
type fileKind struct {
	format  string
	version int
	article string // "a calibration table": for bytes that do not decode
	noun    string // "calibration table": for a version this autoq does not read
}

var (
	tableFile = fileKind{TableFormat, TableVersion, "a calibration table", "calibration table"}
	stateFile = fileKind{StateFormat, StateVersion, "an autoq histogram state file", "histogram state"}
)

// headed is a decoded calib file that records its format and version.
type headed interface {
	header() (format string, version int)
}

func (t *Table) header() (string, int)         { return t.Format, t.Version }
func (e *stateEnvelope) header() (string, int) { return e.Format, e.Version }

// decode decodes b, the bytes of file path, into v and checks that it is of kind k.
func (k fileKind) decode(path string, b []byte, v headed) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: not %s: %w", path, k.article, err)
	}
	format, version := v.header()
	if format != k.format {
		return fmt.Errorf("%s: format %q, want %q", path, format, k.format)
	}
	if version != k.version {
		return fmt.Errorf("%s: %s version %d, this autoq reads version %d", path, k.noun, version, k.version)
	}
	return nil
}
