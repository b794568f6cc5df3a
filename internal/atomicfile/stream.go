package atomicfile

import (
	"fmt"
	"io"
	"os"
	"unsafe"
)

// Stream is a Pending file written front to back in large aligned blocks, for outputs of
// hundreds of megabytes (checkpoints). Where the system allows it (Linux, and a file
// system that takes O_DIRECT) the blocks go to the device without passing through the
// page cache: the kernel neither copies them nor allocates cache pages for them, which is
// most of the CPU time of writing a large file (measured in docs/SCALE.md). Elsewhere, or
// when the file system refuses, the same blocks are written through the page cache.
// Either way the bytes are the same, and Commit syncs before the rename.
type Stream struct {
	p      *Pending
	buf    []byte // blockAlign-aligned staging block
	n      int    // bytes of buf filled
	size   int64  // bytes written so far (including those in buf)
	direct bool
	err    error // the first write error: later calls return it
}

const (
	// streamBlock is the size of one write: large enough that the per-call cost vanishes,
	// small enough to stay a small part of the process's memory.
	streamBlock = 8 << 20
	// blockAlign is the alignment O_DIRECT needs of buffers, offsets and lengths (the
	// logical block size of common devices, 512 or 4096, divides it).
	blockAlign = 4096
)

// CreateStream starts writing path through a Stream. size, when positive, is the size the
// file will have (a hint): a small file gets a staging block of its size, not of 8 MiB.
func CreateStream(path string, perm os.FileMode, size int64) (*Stream, error) {
	p, err := Create(path, perm)
	if err != nil {
		return nil, err
	}
	block := streamBlock
	if size > 0 && size < streamBlock {
		block = int(size+blockAlign-1) &^ (blockAlign - 1)
	}
	raw := make([]byte, block+blockAlign)
	off := int(-uintptr(unsafe.Pointer(&raw[0])) & (blockAlign - 1))
	s := &Stream{p: p, buf: raw[off : off+block : off+block]}
	s.direct = setDirect(p.File, true) == nil
	return s, nil
}

// Path is the target path.
func (s *Stream) Path() string { return s.p.Path() }

// Size is the number of bytes written so far.
func (s *Stream) Size() int64 { return s.size }

// Direct reports whether the blocks bypass the page cache.
func (s *Stream) Direct() bool { return s.direct }

// Write appends b.
func (s *Stream) Write(b []byte) (int, error) {
	total := len(b)
	for len(b) > 0 {
		if s.err != nil {
			return total - len(b), s.err
		}
		k := copy(s.buf[s.n:], b)
		s.n += k
		s.size += int64(k)
		b = b[k:]
		if s.n == len(s.buf) {
			s.flush(s.n)
		}
	}
	return total, s.err
}

// CopyFrom appends n bytes of f read from offset off, read straight into the staging
// block (f's pages are not mapped into this process).
func (s *Stream) CopyFrom(f *os.File, off, n int64) error {
	for n > 0 {
		if s.err != nil {
			return s.err
		}
		want := min(int64(len(s.buf)-s.n), n)
		k, err := f.ReadAt(s.buf[s.n:s.n+int(want)], off)
		s.n += k
		s.size += int64(k)
		off += int64(k)
		n -= int64(k)
		if s.n == len(s.buf) {
			s.flush(s.n)
		}
		if err != nil && n > 0 {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return s.err
}

// flush writes buf[:m] (m a multiple of blockAlign when direct, except that Commit pads
// the last block) and empties the block. A file system that refuses a direct write
// (EINVAL: O_DIRECT unsupported or stricter alignment) gets it, and the rest, through
// the page cache instead.
func (s *Stream) flush(m int) {
	if s.err != nil {
		return
	}
	_, err := s.p.File.Write(s.buf[:m])
	if err != nil && s.direct && isInvalid(err) {
		if setDirect(s.p.File, false) == nil {
			s.direct = false
			_, err = s.p.File.Write(s.buf[:m])
		}
	}
	if err != nil {
		s.err = fmt.Errorf("write %s: %w", s.p.Path(), err)
	}
	s.n = 0
}

// Commit writes what is left, syncs, closes and renames the file into place (Pending's
// Commit). A direct write of the last partial block is padded to the alignment and the
// file then truncated to its size.
func (s *Stream) Commit() error {
	if s.err == nil && s.n > 0 {
		m := s.n
		if s.direct {
			m = (s.n + blockAlign - 1) &^ (blockAlign - 1)
			clear(s.buf[s.n:m])
		}
		s.flush(m)
		if s.err == nil && m > 0 {
			if err := s.p.File.Truncate(s.size); err != nil {
				s.err = fmt.Errorf("truncate %s: %w", s.p.Path(), err)
			}
		}
	}
	if s.err != nil {
		s.p.Abort()
		return s.err
	}
	return s.p.Commit()
}

// Abort removes the temporary file; the target is left as it was.
func (s *Stream) Abort() { s.p.Abort() }
