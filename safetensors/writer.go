package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/autoq/autoq/internal/atomicfile"
	"github.com/autoq/autoq/internal/tensorseq"
	"github.com/autoq/autoq/tensor"
)

// Writer streams a safetensors file: the header goes first (so every tensor's dtype and
// shape must be known up front), then each tensor's bytes in the declared order. The file
// is built under a temporary name beside the target and renamed into place by Close,
// written in large aligned blocks that bypass the page cache where the system allows
// (atomicfile.Stream).
type Writer struct {
	path  string
	tmp   *atomicfile.Stream
	infos []TensorInfo
	seq   *tensorseq.Seq
}

// NamedTensor pairs a tensor with its name in a file.
type NamedTensor struct {
	Name string
	T    *tensor.Tensor
}

// Create starts writing path. infos gives names, dtypes and shapes in file order; their
// Offset and Size are computed here (contiguous, in that order). metadata may be nil.
func Create(path string, infos []TensorInfo, metadata map[string]string) (*Writer, error) {
	laid := make([]TensorInfo, len(infos))
	names := make([]string, len(infos))
	seen := map[string]bool{}
	var off int64
	for i, t := range infos {
		if t.Name == "" || t.Name == metadataKey {
			return nil, fmt.Errorf("safetensors: %s: tensor %d: invalid name %q", path, i, t.Name)
		}
		if seen[t.Name] {
			return nil, fmt.Errorf("safetensors: %s: tensor %q: duplicate name", path, t.Name)
		}
		seen[t.Name] = true
		if err := checkWritable(t.DType); err != nil {
			return nil, fmt.Errorf("safetensors: %s: tensor %q: %w", path, t.Name, err)
		}
		size, err := byteSize(t.DType, t.Shape)
		if err != nil {
			return nil, fmt.Errorf("safetensors: %s: tensor %q: %w", path, t.Name, err)
		}
		laid[i] = TensorInfo{Name: t.Name, DType: t.DType, Shape: append([]int(nil), t.Shape...), Offset: off, Size: size}
		names[i] = t.Name
		off += size
	}
	hdr, err := encodeHeader(laid, metadata)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %s: %w", path, err)
	}
	tmp, err := atomicfile.CreateStream(path, 0o644, 8+int64(len(hdr))+off)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	w := &Writer{path: path, tmp: tmp, infos: laid, seq: tensorseq.New("safetensors", path, names)}
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(hdr)))
	if _, err := tmp.Write(append(lenBuf[:], hdr...)); err != nil {
		w.Abort()
		return nil, fmt.Errorf("safetensors: write %s: %w", path, err)
	}
	return w, nil
}

// encodeHeader writes the JSON header deterministically: __metadata__ first (keys sorted),
// then the tensors in file order; padded with spaces so that 8 + len is a multiple of 8.
func encodeHeader(infos []TensorInfo, metadata map[string]string) ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	first := true
	sep := func() {
		if !first {
			b.WriteByte(',')
		}
		first = false
	}
	if len(metadata) > 0 {
		keys := make([]string, 0, len(metadata))
		for k := range metadata {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		sep()
		b.WriteString(`"__metadata__":{`)
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			kj, _ := json.Marshal(k)
			vj, _ := json.Marshal(metadata[k])
			b.Write(kj)
			b.WriteByte(':')
			b.Write(vj)
		}
		b.WriteByte('}')
	}
	for _, t := range infos {
		sep()
		nj, _ := json.Marshal(t.Name)
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		sj, _ := json.Marshal(shape)
		fmt.Fprintf(&b, `%s:{"dtype":"%s","shape":%s,"data_offsets":[%d,%d]}`, nj, t.DType, sj, t.Offset, t.Offset+t.Size)
	}
	b.WriteByte('}')
	for b.Len()%8 != 0 {
		b.WriteByte(' ')
	}
	if b.Len() > MaxHeaderBytes {
		return nil, fmt.Errorf("header of %d bytes exceeds the %d-byte limit", b.Len(), MaxHeaderBytes)
	}
	return b.Bytes(), nil
}

// Infos returns the laid-out tensor infos (with offsets and sizes).
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
		return fmt.Errorf("safetensors: %s: tensor %q: %d bytes given, %s%v needs %d", w.path, name, len(data), t.DType, t.Shape, t.Size)
	}
	if _, err := w.tmp.Write(data); err != nil {
		return fmt.Errorf("safetensors: write %s: tensor %q: %w", w.path, name, err)
	}
	w.seq.Written()
	return nil
}

// StreamTensor appends the next tensor's bytes in pieces: fill calls write with
// consecutive pieces (each may be reused by fill once write returns), so a tensor larger
// than memory can be produced a slab at a time. The pieces must add up to exactly the
// declared size; on any error the Writer should be aborted.
func (w *Writer) StreamTensor(name string, fill func(write func(piece []byte) error) error) error {
	i, err := w.seq.Next("StreamTensor", name)
	if err != nil {
		return err
	}
	t := w.infos[i]
	var n int64
	err = fill(func(piece []byte) error {
		if n+int64(len(piece)) > t.Size {
			return fmt.Errorf("safetensors: %s: tensor %q: more than the %d bytes %s%v needs", w.path, name, t.Size, t.DType, t.Shape)
		}
		if _, err := w.tmp.Write(piece); err != nil {
			return fmt.Errorf("safetensors: write %s: tensor %q: %w", w.path, name, err)
		}
		n += int64(len(piece))
		return nil
	})
	if err != nil {
		return err
	}
	if n != t.Size {
		return fmt.Errorf("safetensors: %s: tensor %q: %d bytes given, %s%v needs %d", w.path, name, n, t.DType, t.Shape, t.Size)
	}
	w.seq.Written()
	return nil
}

// Close checks that every declared tensor was written, syncs the temporary file and renames
// it into place. On error the temporary file is removed and path is left untouched.
func (w *Writer) Close() error {
	if w.seq.Done() {
		return nil
	}
	if err := w.seq.Missing(); err != nil {
		w.Abort()
		return err
	}
	w.seq.End()
	if err := w.tmp.Commit(); err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	return nil
}

// Abort discards the temporary file; path is left as it was.
func (w *Writer) Abort() {
	if w.seq.End() {
		w.tmp.Abort()
	}
}

// WriteFile writes tensors (in the given order) and metadata to path atomically.
func WriteFile(path string, tensors []NamedTensor, metadata map[string]string) error {
	infos := make([]TensorInfo, len(tensors))
	for i, nt := range tensors {
		if nt.T == nil {
			return fmt.Errorf("safetensors: %s: tensor %q is nil", path, nt.Name)
		}
		infos[i] = TensorInfo{Name: nt.Name, DType: nt.T.DType, Shape: nt.T.Shape}
	}
	w, err := Create(path, infos, metadata)
	if err != nil {
		return err
	}
	for _, nt := range tensors {
		if err := w.WriteTensor(nt.Name, nt.T.Data); err != nil {
			w.Abort()
			return err
		}
	}
	return w.Close()
}
