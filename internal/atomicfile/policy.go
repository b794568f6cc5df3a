package atomicfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Target is one output a job is about to write.
type Target struct {
	Flag  string // the flag that named it ("--out"), for messages
	Path  string
	Dir   bool   // a directory is written (else a file)
	Kind  string // a directory's marker kind (Dir)
	Force bool   // the user allows replacing a previous output
}

// PolicyError is a refusal of the output policy (as opposed to an I/O failure): the
// command was asked to write where it must not.
type PolicyError struct{ msg string }

func (e *PolicyError) Error() string { return e.msg }

func refuse(format string, a ...any) error { return &PolicyError{fmt.Sprintf(format, a...)} }

// Check applies autoq's output policy to t before any work is done:
//   - the output may not be, contain, or be inside one of the inputs (paths the job reads);
//   - a directory output may not name an existing file, nor a file output a directory;
//   - an existing non-empty directory is replaced only with Force, and only when it is an
//     autoq output of the same kind (its marker); an existing file only with Force;
//   - the place it will be written must be writable (a probe file is created and removed).
//
// Every error names the path and the flag to use.
func Check(t Target, inputs []string) error {
	if t.Path == "" {
		return nil
	}
	out, err := canonical(t.Path)
	if err != nil {
		return fmt.Errorf("%s %s: %w", t.Flag, t.Path, err)
	}
	for _, in := range inputs {
		if in == "" {
			continue
		}
		ip, err := canonical(in)
		if err != nil {
			continue // a missing input is reported by the job that reads it
		}
		switch {
		case out == ip:
			return refuse("%s %s is an input of this command: writing there would destroy it; choose another path", t.Flag, t.Path)
		case within(out, ip):
			return refuse("%s %s is inside the input %s: choose a path outside it", t.Flag, t.Path, in)
		case within(ip, out):
			return refuse("%s %s contains the input %s: replacing it would delete the input; choose another path", t.Flag, t.Path, in)
		}
	}
	st, err := os.Stat(t.Path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case errors.Is(err, syscall.ENOTDIR):
		return probeWritable(t) // names the file in the way
	case err != nil:
		return fmt.Errorf("%s %s: %w", t.Flag, t.Path, err)
	case t.Dir && !st.IsDir():
		return refuse("%s %s is an existing file, but this command writes a directory there: choose another path", t.Flag, t.Path)
	case !t.Dir && st.IsDir():
		return refuse("%s %s is an existing directory, but this command writes a file there: choose another path", t.Flag, t.Path)
	case t.Dir:
		empty, err := isEmptyDir(t.Path)
		if err != nil {
			return fmt.Errorf("%s %s: %w", t.Flag, t.Path, err)
		}
		if !empty {
			kind := MarkerKind(t.Path)
			if !t.Force {
				what := "it is not empty"
				if kind != "" {
					what = "it holds a previous autoq " + kind
				}
				return refuse("%s %s exists and %s: give --force to replace it, or choose another path", t.Flag, t.Path, what)
			}
			if kind != t.Kind {
				return refuse("%s %s is not a previous autoq %s (no %s marker of that kind): autoq does not delete it, even with --force; choose another path or remove it yourself", t.Flag, t.Path, t.Kind, OutputMarker)
			}
		}
	case !t.Force:
		return refuse("%s %s exists: give --force to overwrite it, or choose another path", t.Flag, t.Path)
	}
	return probeWritable(t)
}

// canonical is the absolute, symlink-resolved form of p (its longest existing prefix is
// resolved; the rest is appended).
func canonical(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	rest := ""
	cur := abs
	for {
		if r, err := filepath.EvalSymlinks(cur); err == nil {
			return filepath.Join(r, rest), nil
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return abs, nil
		}
		rest = filepath.Join(filepath.Base(cur), rest)
		cur = parent
	}
}

// within reports whether p lies strictly below dir.
func within(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// probeWritable creates and removes a file where t will be written (its nearest existing
// ancestor directory), so that an unwritable place fails before the work rather than after.
func probeWritable(t Target) error {
	dir := filepath.Dir(filepath.Clean(t.Path))
	for {
		st, err := os.Stat(dir)
		if err == nil {
			if !st.IsDir() {
				return fmt.Errorf("%s %s: %s is not a directory", t.Flag, t.Path, dir)
			}
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return fmt.Errorf("%s %s: no existing directory above it", t.Flag, t.Path)
		}
		dir = parent
	}
	f, err := os.CreateTemp(dir, ".autoq-probe-*")
	if err != nil {
		return fmt.Errorf("%s %s is not writable: %w", t.Flag, t.Path, err)
	}
	f.Close()
	os.Remove(f.Name())
	return nil
}
