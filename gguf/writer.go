package gguf

import (
	"bufio"
	"fmt"

	"github.com/autoq/autoq/internal/atomicfile"
	"github.com/autoq/autoq/internal/tensorseq"
)

const (
	// Magic is the first four bytes of a GGUF file.
	Magic = "GGUF"
	// Version is the GGUF version this package writes and reads.
	Version = 3
	// DefaultAlignment is the data alignment when general.alignment is absent.
	DefaultAlignment = 32
	// KeyAlignment is the metadata key that sets the data alignment (uint32).
	KeyAlignment = "general.alignment"
	// MaxDims is ggml's GGML_MAX_DIMS.
	MaxDims = 4
	// MaxNameBytes is the longest tensor name ggml accepts (GGML_MAX_NAME - 1).
	MaxNameBytes = 63
)

// TensorInfo describes a tensor of a GGUF file. Shape is row-major, outermost dimension
// first, as in safetensors and PyTorch ([rows, cols] for a weight matrix); the file stores
// ggml's ne, innermost first, which is Shape reversed. Offset is relative to the start of
// the data section; Offset and Size are computed by Create and filled in by the reader.
type TensorInfo struct {
	Name   string
	Shape  []int
	Type   Type
	Offset int64
	Size   int64
}

// Elements is the number of elements.
func (t TensorInfo) Elements() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= int64(d)
	}
	return n
}

// Writer streams a GGUF v3 file: the header (metadata and tensor infos) first, then each
// tensor's bytes in the declared order, each padded to the alignment. The file is built
// under a temporary name beside the target and renamed into place by Close; an existing
// file at the target is replaced only then (callers decide whether that is allowed).
type Writer struct {
	path  string
	p     *atomicfile.Pending
	bw    *bufio.Writer
	infos []TensorInfo
	align int64
	seq   *tensorseq.Seq
	pos   int64 // bytes of tensor data (padding included) written so far
}

// Create validates the metadata and tensor infos (names, shapes, types, block sizes),
// computes each tensor's offset and size, and writes the header to a temporary file.
func Create(path string, kvs []KV, tensors []TensorInfo) (*Writer, error) {
	align := int64(DefaultAlignment)
	seen := map[string]bool{}
	for _, kv := range kvs {
		if kv.Key == "" {
			return nil, fmt.Errorf("gguf: %s: empty metadata key", path)
		}
		if seen[kv.Key] {
			return nil, fmt.Errorf("gguf: %s: key %q: duplicate metadata key", path, kv.Key)
		}
		seen[kv.Key] = true
		if kv.Key == KeyAlignment {
			a, ok := kv.Value.(uint32)
			if !ok || a == 0 || a&(a-1) != 0 {
				return nil, fmt.Errorf("gguf: %s: key %q: alignment must be a uint32 power of two, got %v (%T)", path, kv.Key, kv.Value, kv.Value)
			}
			align = int64(a)
		}
	}
	laid := make([]TensorInfo, len(tensors))
	order := make([]string, len(tensors))
	names := map[string]bool{}
	var off int64
	for i, t := range tensors {
		if err := checkTensorName(t.Name); err != nil {
			return nil, fmt.Errorf("gguf: %s: tensor %d: %w", path, i, err)
		}
		if names[t.Name] {
			return nil, fmt.Errorf("gguf: %s: tensor %q: duplicate name", path, t.Name)
		}
		names[t.Name] = true
		size, err := tensorBytes(t.Type, t.Shape)
		if err != nil {
			return nil, fmt.Errorf("gguf: %s: tensor %q: %w", path, t.Name, err)
		}
		laid[i] = TensorInfo{Name: t.Name, Shape: append([]int(nil), t.Shape...), Type: t.Type, Offset: off, Size: size}
		order[i] = t.Name
		off += padTo(size, align)
	}
	hdr, err := encodeHeader(kvs, laid)
	if err != nil {
		return nil, fmt.Errorf("gguf: %s: %w", path, err)
	}
	hdr = append(hdr, make([]byte, padTo(int64(len(hdr)), align)-int64(len(hdr)))...)
	p, err := atomicfile.Create(path, 0o644)
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	w := &Writer{path: path, p: p, bw: bufio.NewWriterSize(p, 1<<20), infos: laid, align: align, seq: tensorseq.New("gguf", path, order)}
	if _, err := w.bw.Write(hdr); err != nil {
		w.Abort()
		return nil, fmt.Errorf("gguf: write %s: %w", path, err)
	}
	return w, nil
}

func checkTensorName(name string) error {
	if name == "" {
		return fmt.Errorf("empty tensor name")
	}
	if len(name) > MaxNameBytes {
		return fmt.Errorf("tensor name %q is %d bytes, longer than ggml's %d", name, len(name), MaxNameBytes)
	}
	return nil
}

// tensorBytes checks a shape against t and returns its storage size.
func tensorBytes(t Type, shape []int) (int64, error) {
	if !t.Known() {
		return 0, fmt.Errorf("unknown tensor type %d", uint32(t))
	}
	if len(shape) == 0 || len(shape) > MaxDims {
		return 0, fmt.Errorf("shape %v has %d dimensions (want 1 to %d)", shape, len(shape), MaxDims)
	}
	for _, d := range shape {
		if d <= 0 {
			return 0, fmt.Errorf("shape %v has a dimension below 1", shape)
		}
	}
	cols := shape[len(shape)-1]
	rb, err := t.RowBytes(cols)
	if err != nil {
		return 0, fmt.Errorf("shape %v, type %s: %w", shape, t, err)
	}
	size := int64(rb)
	for _, d := range shape[:len(shape)-1] {
		if size > (1<<62)/int64(d) {
			return 0, fmt.Errorf("shape %v is too large", shape)
		}
		size *= int64(d)
	}
	return size, nil
}

func padTo(n, align int64) int64 { return (n + align - 1) / align * align }

// encodeHeader renders magic, version, counts, metadata and tensor infos.
func encodeHeader(kvs []KV, infos []TensorInfo) ([]byte, error) {
	b := []byte(Magic)
	b = le.AppendUint32(b, Version)
	b = le.AppendUint64(b, uint64(len(infos)))
	b = le.AppendUint64(b, uint64(len(kvs)))
	var err error
	for _, kv := range kvs {
		b = appendString(b, kv.Key)
		if b, err = appendValue(b, kv.Value); err != nil {
			return nil, fmt.Errorf("key %q: %w", kv.Key, err)
		}
	}
	for _, t := range infos {
		b = appendString(b, t.Name)
		b = le.AppendUint32(b, uint32(len(t.Shape)))
		for i := len(t.Shape) - 1; i >= 0; i-- { // ggml's ne: innermost first
			b = le.AppendUint64(b, uint64(t.Shape[i]))
		}
		b = le.AppendUint32(b, uint32(t.Type))
		b = le.AppendUint64(b, uint64(t.Offset))
	}
	return b, nil
}

// Infos returns the laid-out tensor infos (offsets and sizes filled in).
func (w *Writer) Infos() []TensorInfo { return append([]TensorInfo(nil), w.infos...) }

// WriteTensor appends the next tensor's bytes. name must be the next one declared to
// Create and data exactly its size.
func (w *Writer) WriteTensor(name string, data []byte) error {
	i, err := w.seq.Next("WriteTensor", name)
	if err != nil {
		return err
	}
	t := w.infos[i]
	if int64(len(data)) != t.Size {
		return fmt.Errorf("gguf: %s: tensor %q: %d bytes given, %s %v needs %d", w.path, name, len(data), t.Type, t.Shape, t.Size)
	}
	pad := padTo(t.Size, w.align) - t.Size
	if _, err := w.bw.Write(data); err != nil {
		return fmt.Errorf("gguf: write %s: tensor %q: %w", w.path, name, err)
	}
	if _, err := w.bw.Write(make([]byte, pad)); err != nil {
		return fmt.Errorf("gguf: write %s: tensor %q: %w", w.path, name, err)
	}
	w.pos += t.Size + pad
	w.seq.Written()
	return nil
}

// Close checks that every declared tensor was written, then syncs the temporary file and
// renames it into place. On error the target is left untouched.
func (w *Writer) Close() error {
	if w.seq.Done() {
		return nil
	}
	if err := w.seq.Missing(); err != nil {
		w.Abort()
		return err
	}
	w.seq.End()
	if err := w.bw.Flush(); err != nil {
		w.p.Abort()
		return fmt.Errorf("gguf: write %s: %w", w.path, err)
	}
	if err := w.p.Commit(); err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	return nil
}

// Abort discards the temporary file; the target is left as it was.
func (w *Writer) Abort() {
	if w.seq.End() {
		w.p.Abort()
	}
}

// WriteFile writes a whole file whose tensors are in memory (data[i] belongs to
// tensors[i]).
func WriteFile(path string, kvs []KV, tensors []TensorInfo, data [][]byte) error {
	if len(data) != len(tensors) {
		return fmt.Errorf("gguf: %s: %d tensor infos but %d data buffers", path, len(tensors), len(data))
	}
	w, err := Create(path, kvs, tensors)
	if err != nil {
		return err
	}
	for i, t := range tensors {
		if err := w.WriteTensor(t.Name, data[i]); err != nil {
			w.Abort()
			return err
		}
	}
	return w.Close()
}
