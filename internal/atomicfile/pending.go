package atomicfile

import (
	"fmt"
	"os"
)

// Pending is a file being written under a temporary name beside its target, for writers
// that stream their output over many calls (Write's callback does not fit them). Commit
// syncs it and renames it into place; Abort removes it. Exactly one of them should be
// called; both are safe to call again afterwards.
type Pending struct {
	*os.File
	path string
	perm os.FileMode
	done bool
}

// Create starts writing path: the data goes to a temporary file in path's directory until
// Commit.
func Create(path string, perm os.FileMode) (*Pending, error) {
	f, err := createTemp(path)
	if err != nil {
		return nil, err
	}
	return &Pending{File: f, path: path, perm: perm}, nil
}

// Path is the target path.
func (p *Pending) Path() string { return p.path }

// Commit syncs, closes and renames the temporary file to the target. On error the
// temporary file is removed and the target is left untouched.
func (p *Pending) Commit() (err error) {
	if p.done {
		return nil
	}
	p.done = true
	tmp := p.File.Name()
	defer func() {
		if err != nil {
			p.File.Close()
			RemoveTemp(tmp)
		}
	}()
	if err = p.File.Chmod(p.perm); err != nil {
		return fmt.Errorf("chmod %s: %w", p.path, err)
	}
	if err = p.File.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", p.path, err)
	}
	if err = p.File.Close(); err != nil {
		return fmt.Errorf("close %s: %w", p.path, err)
	}
	if err = os.Rename(tmp, p.path); err != nil {
		return fmt.Errorf("rename into %s: %w", p.path, err)
	}
	Done(tmp)
	return nil
}

// Abort closes and removes the temporary file; the target is left as it was.
func (p *Pending) Abort() {
	if p.done {
		return
	}
	p.done = true
	p.File.Close()
	RemoveTemp(p.File.Name())
}
