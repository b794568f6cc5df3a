package autoquant

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
)

// Env is where a job reports what it does besides its result: notes and warnings go to
// Log (the CLI's stderr), progress bars to Bars (drawn only on a terminal). Ctx cancels
// the job (Ctrl-C in the CLI); nil means context.Background().
type Env struct {
	Ctx  context.Context
	Log  io.Writer
	Bars io.Writer
}

func (e Env) log() io.Writer {
	if e.Log == nil {
		return io.Discard
	}
	return e.Log
}

func (e Env) bars() io.Writer {
	if e.Bars == nil {
		return io.Discard
	}
	return e.Bars
}

func (e Env) logf(format string, a ...any) { fmt.Fprintf(e.log(), format, a...) }

func (e Env) ctx() context.Context {
	if e.Ctx == nil {
		return context.Background()
	}
	return e.Ctx
}

// stopped returns the context's error once the job has been cancelled (Ctrl-C): jobs
// check it between units of work and return it.
func (e Env) stopped() error { return e.ctx().Err() }

// UsageError marks an error in how a job was asked for (a bad option value or a missing
// input), as opposed to one met while running it. The CLI exits 2 for it.
type UsageError struct{ Err error }

func (u *UsageError) Error() string { return u.Err.Error() }
func (u *UsageError) Unwrap() error { return u.Err }

func usagef(format string, a ...any) error { return &UsageError{fmt.Errorf(format, a...)} }

// IsUsage reports whether err is (or wraps) a UsageError.
func IsUsage(err error) bool {
	var u *UsageError
	return errors.As(err, &u)
}

// GateError is returned after a complete report when the accuracy gate refused the
// candidate: the CLI prints the report, then exits 1.
type GateError struct{ Failures []string }

func (g *GateError) Error() string { return "accuracy gate failed: " + joinFailures(g.Failures) }

func joinFailures(fs []string) string {
	s := ""
	for i, f := range fs {
		if i > 0 {
			s += "; "
		}
		s += f
	}
	return s
}

// WriteJSON prints v as indented JSON (the --json form of every report).
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// jsonFloat is a float64 that encodes +-Inf and NaN as null (JSON has no such numbers): an
// exact reconstruction has SQNR +Inf.
type jsonFloat float64

func jf(v float64) jsonFloat { return jsonFloat(v) }

func (f jsonFloat) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return []byte("null"), nil
	}
	return json.Marshal(v)
}

// HumanBytes renders a byte count as B, KiB, MiB or GiB.
func HumanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// jsonOf is the compact JSON of v (for MarshalJSON methods of report wrappers).
func jsonOf(v any) ([]byte, error) { return json.Marshal(v) }
