package testutil

import (
	"strings"
	"testing"
)

// Refused reports whether a parser of outside input refused it (err != nil), failing the
// test when the error does not name file: every such error must say which file it is about.
// Fuzz targets call it first and stop on true.
func Refused(t testing.TB, err error, file string) bool {
	t.Helper()
	if err == nil {
		return false
	}
	if !strings.Contains(err.Error(), file) {
		t.Fatalf("error does not name the file: %v", err)
	}
	return true
}

// Reparse parses b, the encoding of an accepted value (encErr: the error encoding it), back
// with parse as file; the test fails when either step failed. what names the value in
// messages.
func Reparse[T any](t testing.TB, what string, parse func(file string, b []byte) (T, error), file string, b []byte, encErr error) T {
	t.Helper()
	if encErr != nil {
		t.Fatalf("accepted %s does not encode: %v", what, encErr)
	}
	back, err := parse(file, b)
	if err != nil {
		t.Fatalf("encoded %s does not parse: %v\n%s", what, err, b)
	}
	return back
}
