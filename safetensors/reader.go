package safetensors

import (
	"encoding/binary"
	"fmt"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"github.com/autoq/autoq/tensor"
)

// File is one memory-mapped .safetensors file. Tensors returned by Tensor are views into
// the mapping and must not be used after Close. File is safe for concurrent readers.
type File struct {
	path    string
	mu      sync.RWMutex
	mapping []byte // the whole file; nil after Close
	dataOff int64  // 8 + header length
	infos   []TensorInfo
	byName  map[string]int
	meta    map[string]string
}

// Open maps path read-only and validates its header and layout (see the package comment).
func Open(path string) (*File, error) {
	fd, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	defer fd.Close()
	st, err := fd.Stat()
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("safetensors: %s: not a regular file", path)
	}
	size := st.Size()
	if size < 8 {
		return nil, fmt.Errorf("safetensors: %s: file is %d bytes, shorter than the 8-byte header length", path, size)
	}
	if int64(int(size)) != size {
		return nil, fmt.Errorf("safetensors: %s: file too large to map", path)
	}
	m, err := syscall.Mmap(int(fd.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %s: mmap: %w", path, err)
	}
	f, err := parse(path, m)
	if err != nil {
		syscall.Munmap(m)
		return nil, err
	}
	return f, nil
}

// parse validates a whole file image. It never panics on any input (see FuzzOpen).
func parse(path string, m []byte) (*File, error) {
	if len(m) < 8 {
		return nil, fmt.Errorf("safetensors: %s: file is %d bytes, shorter than the 8-byte header length", path, len(m))
	}
	n := binary.LittleEndian.Uint64(m[:8])
	if n > MaxHeaderBytes {
		return nil, fmt.Errorf("safetensors: %s: header length %d exceeds the %d-byte limit", path, n, MaxHeaderBytes)
	}
	if n > uint64(len(m)-8) {
		return nil, fmt.Errorf("safetensors: %s: header length %d runs past the end of the file (%d bytes)", path, n, len(m))
	}
	dataOff := int64(8 + n)
	infos, meta, err := parseHeader(m[8:dataOff], int64(len(m))-dataOff)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %s: %w", path, err)
	}
	f := &File{path: path, mapping: m, dataOff: dataOff, infos: infos, meta: meta, byName: make(map[string]int, len(infos))}
	for i, t := range infos {
		f.byName[t.Name] = i
	}
	return f, nil
}

// Path is the file's path as given to Open.
func (f *File) Path() string { return f.path }

// Names lists the tensors in file (offset) order.
func (f *File) Names() []string {
	out := make([]string, len(f.infos))
	for i, t := range f.infos {
		out[i] = t.Name
	}
	return out
}

// Info describes a tensor.
func (f *File) Info(name string) (TensorInfo, bool) {
	i, ok := f.byName[name]
	if !ok {
		return TensorInfo{}, false
	}
	t := f.infos[i]
	t.Shape = append([]int(nil), t.Shape...)
	return t, true
}

// Metadata returns a copy of the header's __metadata__ (empty when absent).
func (f *File) Metadata() map[string]string {
	out := make(map[string]string, len(f.meta))
	for k, v := range f.meta {
		out[k] = v
	}
	return out
}

// Tensor returns the named tensor as a view into the mapping. The mapping is read-only:
// writing into the returned Data faults, so copy a tensor (tensor.Convert, or append) before
// modifying it in place. When the data is not aligned
// to its element size (possible in files written by other tools) it is copied instead, so
// that typed views of it are always valid.
func (f *File) Tensor(name string) (*tensor.Tensor, error) {
	i, ok := f.byName[name]
	if !ok {
		return nil, fmt.Errorf("safetensors: %s: no tensor %q", f.path, name)
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.mapping == nil {
		return nil, fmt.Errorf("safetensors: %s: tensor %q read after Close", f.path, name)
	}
	t := f.infos[i]
	start := f.dataOff + t.Offset
	data := f.mapping[start : start+t.Size : start+t.Size]
	if el := t.DType.Bits() / 8; el > 1 && len(data) > 0 && uintptr(unsafe.Pointer(&data[0]))%uintptr(el) != 0 {
		data = append([]byte(nil), data...)
	}
	return tensor.FromBytes(t.DType, t.Shape, data)
}

// Close unmaps the file. Views handed out earlier become invalid.
func (f *File) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.mapping == nil {
		return nil
	}
	err := syscall.Munmap(f.mapping)
	f.mapping = nil
	if err != nil {
		return fmt.Errorf("safetensors: %s: munmap: %w", f.path, err)
	}
	return nil
}
