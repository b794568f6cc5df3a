package autoquant

import (
	"bytes"
	"encoding/json"
	"io"

	"github.com/autoq/autoq/internal/atomicfile"
)

// The side files jobs write on request (--json, --csv, --report, ...): rendered in memory,
// then written atomically, so a failed render or write never leaves half a file.

// writeRendered writes what render produces to path.
func writeRendered(path string, render func(io.Writer) error) error {
	var b bytes.Buffer
	if err := render(&b); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, b.Bytes(), 0o644)
}

// writeJSONFile writes v to path as indented JSON with a final newline.
func writeJSONFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, append(b, '\n'), 0o644)
}
