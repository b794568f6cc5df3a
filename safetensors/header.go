package safetensors

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/autoq/autoq/tensor"
)

// MaxHeaderBytes bounds the JSON header, as the reference implementation does (100 MB):
// a corrupt length must not make us allocate or parse gigabytes.
const MaxHeaderBytes = 100 << 20

const metadataKey = "__metadata__"

// TensorInfo describes one tensor of a file. Offset is relative to the start of the data
// section (the byte after the header); Size is its length in bytes.
type TensorInfo struct {
	Name   string
	DType  tensor.DType
	Shape  []int
	Offset int64
	Size   int64
}

type rawEntry struct {
	DType       *string  `json:"dtype"`
	Shape       *[]int64 `json:"shape"`
	DataOffsets *[]int64 `json:"data_offsets"`
}

// parseHeader validates a JSON header against a data section of dataLen bytes and returns
// the tensors in offset order and the metadata. Errors name the tensor; the caller adds the
// file name.
func parseHeader(hdr []byte, dataLen int64) ([]TensorInfo, map[string]string, error) {
	trimmed := bytes.TrimRight(hdr, " \t\r\n\x00")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, nil, fmt.Errorf("header is not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, nil, fmt.Errorf("invalid JSON header: %v", errOr(err, "want an object"))
	}
	var infos []TensorInfo
	var meta map[string]string
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, fmt.Errorf("invalid JSON header: %w", err)
		}
		name, ok := tok.(string)
		if !ok {
			return nil, nil, fmt.Errorf("invalid JSON header: key %v is not a string", tok)
		}
		if seen[name] {
			return nil, nil, fmt.Errorf("tensor %q: duplicate entry in header", name)
		}
		seen[name] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, nil, fmt.Errorf("invalid JSON header at %q: %w", name, err)
		}
		if name == metadataKey {
			if err := json.Unmarshal(raw, &meta); err != nil {
				return nil, nil, fmt.Errorf("__metadata__ must map strings to strings: %w", err)
			}
			continue
		}
		info, err := parseEntry(name, raw)
		if err != nil {
			return nil, nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		infos = append(infos, info)
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, nil, fmt.Errorf("invalid JSON header: %v", errOr(err, "unterminated object"))
	}
	if rest := trimmed[dec.InputOffset():]; len(bytes.TrimSpace(rest)) != 0 {
		return nil, nil, fmt.Errorf("invalid JSON header: %d bytes after the object", len(rest))
	}
	if err := checkLayout(infos, dataLen); err != nil {
		return nil, nil, err
	}
	return infos, meta, nil
}

func errOr(err error, msg string) string {
	if err != nil {
		return err.Error()
	}
	return msg
}

func parseEntry(name string, raw json.RawMessage) (TensorInfo, error) {
	var e rawEntry
	if err := json.Unmarshal(raw, &e); err != nil {
		return TensorInfo{}, fmt.Errorf("bad entry: %w", err)
	}
	if e.DType == nil || e.Shape == nil || e.DataOffsets == nil {
		return TensorInfo{}, fmt.Errorf("entry needs dtype, shape and data_offsets")
	}
	d, err := parseDType(*e.DType)
	if err != nil {
		return TensorInfo{}, err
	}
	shape := make([]int, len(*e.Shape))
	for i, s := range *e.Shape {
		if s < 0 || s > 1<<48 {
			return TensorInfo{}, fmt.Errorf("bad dimension %d in shape %v", s, *e.Shape)
		}
		shape[i] = int(s)
	}
	size, err := byteSize(d, shape)
	if err != nil {
		return TensorInfo{}, err
	}
	off := *e.DataOffsets
	if len(off) != 2 {
		return TensorInfo{}, fmt.Errorf("data_offsets must be [begin, end], got %v", off)
	}
	if off[0] < 0 || off[1] < off[0] {
		return TensorInfo{}, fmt.Errorf("bad data_offsets %v", off)
	}
	if off[1]-off[0] != size {
		return TensorInfo{}, fmt.Errorf("data_offsets %v hold %d bytes but %s%v needs %d", off, off[1]-off[0], d, shape, size)
	}
	return TensorInfo{Name: name, DType: d, Shape: shape, Offset: off[0], Size: size}, nil
}

// checkLayout sorts infos by offset and checks that they tile [0, dataLen) exactly.
func checkLayout(infos []TensorInfo, dataLen int64) error {
	sort.SliceStable(infos, func(i, j int) bool {
		if infos[i].Offset != infos[j].Offset {
			return infos[i].Offset < infos[j].Offset
		}
		return infos[i].Size < infos[j].Size // empty tensors first at a shared offset
	})
	var end int64
	for i, t := range infos {
		if t.Offset+t.Size > dataLen {
			return fmt.Errorf("tensor %q: data_offsets [%d, %d] out of bounds (data section is %d bytes)", t.Name, t.Offset, t.Offset+t.Size, dataLen)
		}
		switch {
		case t.Offset < end:
			return fmt.Errorf("tensor %q: data_offsets [%d, %d] overlap tensor %q", t.Name, t.Offset, t.Offset+t.Size, infos[i-1].Name)
		case t.Offset > end:
			return fmt.Errorf("tensor %q: data_offsets [%d, %d] leave a gap of %d bytes before it (offsets must be contiguous)", t.Name, t.Offset, t.Offset+t.Size, t.Offset-end)
		}
		end = t.Offset + t.Size
	}
	if end != dataLen {
		return fmt.Errorf("%d trailing bytes after the last tensor (data section is %d bytes, tensors cover %d)", dataLen-end, dataLen, end)
	}
	return nil
}
