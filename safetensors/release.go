package safetensors

import (
	"fmt"
	"os"
	"syscall"
)

// Release tells the kernel that the named tensor's bytes will not be read again soon
// (madvise MADV_DONTNEED on the pages that lie wholly inside it): they leave this process's
// resident set but stay in the page cache, and a later Tensor reads them back. Views handed
// out earlier stay valid. A pass that converts a large checkpoint one block at a time calls
// it after each conversion, so the mapped file does not add the whole model to the
// process's memory.
func (f *File) Release(name string) error {
	i, ok := f.byName[name]
	if !ok {
		return fmt.Errorf("safetensors: %s: no tensor %q", f.path, name)
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.mapping == nil {
		return nil
	}
	page := int64(os.Getpagesize())
	t := f.infos[i]
	start := f.dataOff + t.Offset
	lo := (start + page - 1) / page * page // whole pages only: neighbours may be in use
	hi := (start + t.Size) / page * page
	if hi <= lo {
		return nil
	}
	if err := syscall.Madvise(f.mapping[lo:hi], syscall.MADV_DONTNEED); err != nil {
		return fmt.Errorf("safetensors: %s: release %q: %w", f.path, name, err)
	}
	return nil
}

// Release is File.Release on the file holding the tensor.
func (c *Checkpoint) Release(name string) error {
	f, ok := c.byName[name]
	if !ok {
		return fmt.Errorf("safetensors: %s: no tensor %q", c.path, name)
	}
	return f.Release(name)
}
