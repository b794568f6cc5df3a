package gguf

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"unicode/utf8"
)

// File is an opened GGUF file: its metadata and tensor infos, checked, and access to the
// tensor data.
type File struct {
	Path       string
	Version    uint32
	Alignment  int64
	KVs        []KV         // in file order
	Tensors    []TensorInfo // in file order
	DataOffset int64        // absolute offset of the data section
	r          io.ReaderAt
	closer     io.Closer
	byKey      map[string]int
	byName     map[string]int
}

// Open reads and checks path's header. Tensor data is read on demand (TensorData).
func Open(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	st, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, fmt.Errorf("gguf: %w", err)
	}
	f, err := Read(path, fh, st.Size())
	if err != nil {
		fh.Close()
		return nil, err
	}
	f.closer = fh
	return f, nil
}

// Read parses a GGUF file of size bytes from r; name is used in errors. Every problem is an
// error naming the file, the key or tensor and what is wrong: bad magic or version, a
// truncated header, an unknown value or tensor type, a bad alignment, duplicate keys or
// names, a shape the type cannot hold, data offsets out of range, misaligned or
// overlapping.
func Read(name string, r io.ReaderAt, size int64) (*File, error) {
	c := &cursor{br: bufio.NewReaderSize(io.NewSectionReader(r, 0, size), 1<<16), size: size, file: name}
	f := &File{Path: name, r: r, Alignment: DefaultAlignment, byKey: map[string]int{}, byName: map[string]int{}}
	magic, err := c.bytes(4, "the magic")
	if err != nil {
		return nil, err
	}
	if string(magic) != Magic {
		return nil, fmt.Errorf("gguf: %s: bad magic %q (want %q): not a GGUF file", name, magic, Magic)
	}
	if f.Version, err = c.u32("the version"); err != nil {
		return nil, err
	}
	if f.Version != Version {
		return nil, fmt.Errorf("gguf: %s: unsupported GGUF version %d (this reader takes version %d)", name, f.Version, Version)
	}
	nt, err := c.u64("the tensor count")
	if err != nil {
		return nil, err
	}
	nkv, err := c.u64("the metadata count")
	if err != nil {
		return nil, err
	}
	// Every entry takes at least 8 bytes: counts beyond the file are corrupt, and must not
	// drive an allocation.
	if nt > uint64(size)/8 || nkv > uint64(size)/8 {
		return nil, fmt.Errorf("gguf: %s: %d tensors and %d metadata entries cannot fit in %d bytes", name, nt, nkv, size)
	}
	f.KVs, err = readIndexed(c, nkv, c.kv, func(kv KV) string { return kv.Key }, f.byKey, "key", "metadata key")
	if err != nil {
		return nil, err
	}
	if v, ok := f.Get(KeyAlignment); ok {
		a, isU32 := v.(uint32)
		if !isU32 || a == 0 || a&(a-1) != 0 {
			return nil, fmt.Errorf("gguf: %s: key %q: alignment must be a uint32 power of two, got %v (%T)", name, KeyAlignment, v, v)
		}
		f.Alignment = int64(a)
	}
	f.Tensors, err = readIndexed(c, nt, c.tensorInfo, func(t TensorInfo) string { return t.Name }, f.byName, "tensor", "tensor name")
	if err != nil {
		return nil, err
	}
	f.DataOffset = padTo(c.off, f.Alignment)
	if err := f.checkData(size); err != nil {
		return nil, err
	}
	return f, nil
}

// readIndexed reads n header entries (metadata or tensor infos) with read, in file order, and
// indexes them by name in index; a name seen before is an error ("tensor %q: duplicate
// tensor name": kind, then what).
func readIndexed[T any](c *cursor, n uint64, read func(uint64) (T, error), name func(T) string, index map[string]int, kind, what string) ([]T, error) {
	var out []T
	for i := uint64(0); i < n; i++ {
		e, err := read(i)
		if err != nil {
			return nil, err
		}
		k := name(e)
		if _, dup := index[k]; dup {
			return nil, fmt.Errorf("gguf: %s: %s %q: duplicate %s", c.file, kind, k, what)
		}
		index[k] = len(out)
		out = append(out, e)
	}
	return out, nil
}

// checkData checks every tensor's data range: aligned, inside the file, not overlapping.
func (f *File) checkData(size int64) error {
	if len(f.Tensors) > 0 && f.DataOffset > size {
		return fmt.Errorf("gguf: %s: truncated: the data section would start at byte %d of a %d-byte file", f.Path, f.DataOffset, size)
	}
	avail := size - f.DataOffset
	order := make([]int, len(f.Tensors))
	for i, t := range f.Tensors {
		order[i] = i
		if t.Offset%f.Alignment != 0 {
			return fmt.Errorf("gguf: %s: tensor %q: data offset %d is not a multiple of the alignment %d", f.Path, t.Name, t.Offset, f.Alignment)
		}
		if t.Offset > avail || t.Size > avail-t.Offset {
			return fmt.Errorf("gguf: %s: tensor %q: data [%d, %d) runs past the end of the data section (%d bytes; file truncated?)", f.Path, t.Name, t.Offset, t.Offset+t.Size, avail)
		}
	}
	sort.Slice(order, func(a, b int) bool { return f.Tensors[order[a]].Offset < f.Tensors[order[b]].Offset })
	for k := 1; k < len(order); k++ {
		p, q := f.Tensors[order[k-1]], f.Tensors[order[k]]
		if q.Offset < p.Offset+p.Size {
			return fmt.Errorf("gguf: %s: tensor %q: data [%d, %d) overlaps tensor %q's [%d, %d)", f.Path, q.Name, q.Offset, q.Offset+q.Size, p.Name, p.Offset, p.Offset+p.Size)
		}
	}
	return nil
}

// Close closes the underlying file (if Open opened it).
func (f *File) Close() error {
	if f.closer == nil {
		return nil
	}
	return f.closer.Close()
}

// Get returns the value of key.
func (f *File) Get(key string) (any, bool) {
	i, ok := f.byKey[key]
	if !ok {
		return nil, false
	}
	return f.KVs[i].Value, true
}

// Tensor returns the info of the named tensor.
func (f *File) Tensor(name string) (TensorInfo, bool) {
	i, ok := f.byName[name]
	if !ok {
		return TensorInfo{}, false
	}
	return f.Tensors[i], true
}

// TensorData reads the named tensor's bytes.
func (f *File) TensorData(name string) ([]byte, error) {
	t, ok := f.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("gguf: %s: no tensor %q", f.Path, name)
	}
	b := make([]byte, t.Size)
	if _, err := f.r.ReadAt(b, f.DataOffset+t.Offset); err != nil {
		return nil, fmt.Errorf("gguf: %s: tensor %q: read: %w", f.Path, name, err)
	}
	return b, nil
}

// cursor reads the header sequentially, tracking the offset for errors and bounds.
type cursor struct {
	br   *bufio.Reader
	off  int64
	size int64
	file string
}

func (c *cursor) bytes(n uint64, what string) ([]byte, error) {
	if n > uint64(c.size-c.off) {
		return nil, fmt.Errorf("gguf: %s: truncated: %s needs %d bytes at offset %d, but the file has %d", c.file, what, n, c.off, c.size)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(c.br, b); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("gguf: %s: truncated reading %s at offset %d", c.file, what, c.off)
		}
		return nil, fmt.Errorf("gguf: %s: reading %s at offset %d: %w", c.file, what, c.off, err)
	}
	c.off += int64(n)
	return b, nil
}

func (c *cursor) u32(what string) (uint32, error) {
	b, err := c.bytes(4, what)
	if err != nil {
		return 0, err
	}
	return le.Uint32(b), nil
}

func (c *cursor) u64(what string) (uint64, error) {
	b, err := c.bytes(8, what)
	if err != nil {
		return 0, err
	}
	return le.Uint64(b), nil
}

func (c *cursor) str(what string) (string, error) {
	n, err := c.u64(what + " (length)")
	if err != nil {
		return "", err
	}
	b, err := c.bytes(n, what)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// kv reads metadata entry i.
func (c *cursor) kv(i uint64) (KV, error) {
	key, err := c.str(fmt.Sprintf("the key of metadata entry %d", i))
	if err != nil {
		return KV{}, err
	}
	if key == "" || !utf8.ValidString(key) {
		return KV{}, fmt.Errorf("gguf: %s: metadata entry %d: key %q is empty or not UTF-8", c.file, i, key)
	}
	t, err := c.u32(fmt.Sprintf("the type of key %q", key))
	if err != nil {
		return KV{}, err
	}
	v, err := c.value(key, ValueType(t))
	if err != nil {
		return KV{}, err
	}
	return KV{Key: key, Value: v}, nil
}
