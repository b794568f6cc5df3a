// Package tensorseq is the bookkeeping the streaming tensor-file writers share
// (safetensors.Writer, gguf.Writer): every tensor is declared up front, then written once,
// in the declared order, and the file is committed only when all of them were.
package tensorseq

import "fmt"

// Seq tracks which declared tensor comes next. Its errors start "FORMAT: PATH: ".
type Seq struct {
	format, path string
	names        []string
	next         int
	done         bool
}

// New starts the sequence of names (file order) of the file at path; format names the
// writer in errors ("safetensors", "gguf").
func New(format, path string, names []string) *Seq {
	return &Seq{format: format, path: path, names: names}
}

// Next checks that name, given to the writer's method op ("WriteTensor", ...), is the next
// declared tensor and returns its index. Call Written once its bytes are out.
func (s *Seq) Next(op, name string) (int, error) {
	if s.done {
		return 0, fmt.Errorf("%s: %s: %s(%q) after Close or Abort", s.format, s.path, op, name)
	}
	if s.next >= len(s.names) {
		return 0, fmt.Errorf("%s: %s: tensor %q: all %d declared tensors already written", s.format, s.path, name, len(s.names))
	}
	if want := s.names[s.next]; name != want {
		return 0, fmt.Errorf("%s: %s: tensor %q written out of order (expected %q next)", s.format, s.path, name, want)
	}
	return s.next, nil
}

// Written moves on to the next declared tensor.
func (s *Seq) Written() { s.next++ }

// Done reports whether the writer was closed or aborted.
func (s *Seq) Done() bool { return s.done }

// Missing is the error of closing before every declared tensor was written; nil when all were.
func (s *Seq) Missing() error {
	if s.next == len(s.names) {
		return nil
	}
	return fmt.Errorf("%s: %s: closed after %d of %d tensors (next: %q); nothing written", s.format, s.path, s.next, len(s.names), s.names[s.next])
}

// End marks the writer closed or aborted; it reports false when it already was.
func (s *Seq) End() bool {
	if s.done {
		return false
	}
	s.done = true
	return true
}
