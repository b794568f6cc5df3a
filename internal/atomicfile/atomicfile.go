package atomicfile

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// WriteFile writes data to path atomically (temp file in the same directory, fsync, rename).
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return Write(path, perm, func(f *os.File) error {
		_, err := f.Write(data)
		return err
	})
}

// Write creates a temporary file beside path, lets fill write it, syncs and renames it to
// path. On any error the temporary file is removed and path is left untouched. An existing
// path is replaced: callers check the output policy (Check) before any work.
func Write(path string, perm os.FileMode, fill func(f *os.File) error) (err error) {
	f, err := createTemp(path)
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			RemoveTemp(tmp)
		}
	}()
	if err = fill(f); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename into %s: %w", path, err)
	}
	Done(tmp)
	return nil
}

// OutputMarker is the file every directory autoq writes carries: it says which kind of
// output the directory is, so that --force replaces only a previous autoq output of the
// same kind and never a directory a user made.
const OutputMarker = ".autoq-output"

type outputMarker struct {
	Kind string `json:"kind"`
	Tool string `json:"written_by"`
}

// MarkerKind returns the kind recorded in dir's output marker, or "" when dir has none.
func MarkerKind(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, OutputMarker))
	if err != nil {
		return ""
	}
	var m outputMarker
	if json.Unmarshal(b, &m) != nil || m.Tool != "autoq" {
		return ""
	}
	return m.Kind
}

// Dir builds directory path atomically: fill writes into a fresh temporary directory beside
// path, the output marker of kind is added, and the directory is renamed into place. An
// existing path is replaced only when it is an empty directory or an autoq output of the
// same kind (callers check --force before any work, with Check); anything else is an error
// and stays untouched. On failure the temporary directory is removed and path is
// untouched.
func Dir(path, kind string, fill func(tmpDir string) error) (err error) {
	path = filepath.Clean(path)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := replaceable(path, kind); err != nil {
		return err
	}
	tmp, err := MkdirTemp(path)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			RemoveTemp(tmp)
		}
	}()
	if err = fill(tmp); err != nil {
		return err
	}
	m, _ := json.Marshal(outputMarker{Kind: kind, Tool: "autoq"})
	if err = os.WriteFile(filepath.Join(tmp, OutputMarker), append(m, '\n'), 0o644); err != nil {
		return err
	}
	if err = os.Remove(filepath.Join(tmp, tempMarker)); err != nil {
		return err
	}
	if err = os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	var old string
	if _, statErr := os.Lstat(path); statErr == nil {
		// Moved aside under a temporary name (registered), so that an interrupt between
		// the two renames leaves a recognisable leftover rather than a half-replaced output.
		old = tmp + "-old"
		registerAside(old, path)
		if err = os.Rename(path, old); err != nil {
			unregister(old)
			return fmt.Errorf("move aside %s: %w", path, err)
		}
	}
	if err = os.Rename(tmp, path); err != nil {
		if old != "" {
			os.Rename(old, path)
			unregister(old)
		}
		return fmt.Errorf("rename into %s: %w", path, err)
	}
	Done(tmp)
	if old != "" {
		unregister(old) // the replaced output, not an unfinished one
		os.RemoveAll(old)
	}
	return nil
}

// replaceable says whether Dir may put a new directory of kind at path.
func replaceable(path, kind string) error {
	st, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s exists and is not a directory: not replaced", path)
	}
	if empty, err := isEmptyDir(path); err != nil || empty {
		return err
	}
	if k := MarkerKind(path); k != kind {
		return fmt.Errorf("%s is not an autoq %s (its %s marker says %q): not replaced", path, kind, OutputMarker, k)
	}
	return nil
}

func isEmptyDir(p string) (bool, error) {
	f, err := os.Open(p)
	if err != nil {
		return false, err
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	return len(names) == 0 && err != nil, nil
}

// MarkDir writes dir's output marker of kind, for a directory that autoq fills over time
// (a resumable run's work directory) rather than builds at once with Dir.
func MarkDir(dir, kind string) error {
	m, _ := json.Marshal(outputMarker{Kind: kind, Tool: "autoq"})
	return WriteFile(filepath.Join(dir, OutputMarker), append(m, '\n'), 0o644)
}
