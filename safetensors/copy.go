package safetensors

import (
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

// CopyTensor appends the next tensor's bytes from src, a section of another file, copied
// by the kernel where it can (copy_file_range on Linux, through os.File.ReadFrom): a tensor
// kept unchanged then never passes through this process's memory, nor through a mapping
// of the source that would count in its resident set.
func (w *Writer) CopyTensor(name string, src Section) error {
	if w.done {
		return fmt.Errorf("safetensors: %s: CopyTensor(%q) after Close or Abort", w.path, name)
	}
	if w.next >= len(w.infos) {
		return fmt.Errorf("safetensors: %s: tensor %q: all %d declared tensors already written", w.path, name, len(w.infos))
	}
	t := w.infos[w.next]
	if name != t.Name {
		return fmt.Errorf("safetensors: %s: tensor %q written out of order (expected %q next)", w.path, name, t.Name)
	}
	if src.Size != t.Size {
		return fmt.Errorf("safetensors: %s: tensor %q: %d bytes given (%s), %s%v needs %d", w.path, name, src.Size, src.Path, t.DType, t.Shape, t.Size)
	}
	f, err := os.Open(src.Path)
	if err != nil {
		return fmt.Errorf("safetensors: %s: tensor %q: %w", w.path, name, err)
	}
	defer f.Close()
	if _, err := f.Seek(src.Offset, io.SeekStart); err != nil {
		return fmt.Errorf("safetensors: %s: tensor %q: %w", w.path, name, err)
	}
	n, err := io.Copy(w.tmp, &io.LimitedReader{R: f, N: src.Size})
	if err != nil {
		return fmt.Errorf("safetensors: write %s: tensor %q: %w", w.path, name, err)
	}
	if n != src.Size {
		return fmt.Errorf("safetensors: %s: tensor %q: %s ended after %d of %d bytes", w.path, name, src.Path, n, src.Size)
	}
	w.next++
	return nil
}
