package safetensors

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// Section is where a tensor's bytes lie in its file: Size bytes from Offset (counted from
// the start of the file).
type Section struct {
	Path         string
	Offset, Size int64
}

// Section locates a tensor's bytes in the file.
func (f *File) Section(name string) (Section, bool) {
	i, ok := f.byName[name]
	if !ok {
		return Section{}, false
	}
	t := f.infos[i]
	return Section{Path: f.path, Offset: f.dataOff + t.Offset, Size: t.Size}, true
}

// Section locates a tensor's bytes in its shard.
func (c *Checkpoint) Section(name string) (Section, bool) {
	f, ok := c.byName[name]
	if !ok {
		return Section{}, false
	}
	return f.Section(name)
}

// CopyTensor appends the next tensor's bytes from src, a section of another file, read
// straight into the output's write block (atomicfile.Stream.CopyFrom): a tensor kept
// unchanged never passes through a mapping of the source that would count in this
// process's resident set, and with direct writes the copy allocates no page cache.
func (w *Writer) CopyTensor(name string, src Section) error {
	i, err := w.seq.Next("CopyTensor", name)
	if err != nil {
		return err
	}
	t := w.infos[i]
	if src.Size != t.Size {
		return fmt.Errorf("safetensors: %s: tensor %q: %d bytes given (%s), %s%v needs %d", w.path, name, src.Size, src.Path, t.DType, t.Shape, t.Size)
	}
	f, err := os.Open(src.Path)
	if err != nil {
		return fmt.Errorf("safetensors: %s: tensor %q: %w", w.path, name, err)
	}
	defer f.Close()
	start := w.tmp.Size()
	if err := w.tmp.CopyFrom(f, src.Offset, src.Size); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("safetensors: %s: tensor %q: %s ended after %d of %d bytes", w.path, name, src.Path, w.tmp.Size()-start, src.Size)
		}
		return fmt.Errorf("safetensors: write %s: tensor %q: %w", w.path, name, err)
	}
	w.seq.Written()
	return nil
}
