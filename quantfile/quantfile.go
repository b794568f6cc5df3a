package quantfile

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/safetensors"
	"github.com/autoq/autoq/tensor"
)

// autoq's quantized checkpoint layout (docs/FORMAT.md). A quantized weight W is stored as
// up to three tensors and one metadata entry:
//
//	W.qweight  integer levels: I8 [rows, cols] (8-bit symmetric), U8 [rows, cols] (8-bit
//	           asymmetric), else U8 [rows, quant.RowBytes(bits, cols)]: each row a
//	           little-endian bit stream of b-bit levels padded to a byte (4-bit: element 2i
//	           in the low nibble of byte i; 3, 5, 6, 7 bits straddle bytes), two's
//	           complement when symmetric, unsigned when not (quant.QTensor's storage)
//	W.scales   F32 [rows, groups] ([1, 1] per tensor)
//	W.zeros    I32 [rows, groups], asymmetric schemes only
//	W.g_idx    I32 [cols], the scale group of each column, only for groups formed in GPTQ's
//	           activation order (QuantMeta.GIdx; quant.QTensor.GIdx)
//	__metadata__["autoq.quant.W"] = QuantMeta as JSON
//
// and __metadata__["autoq.format"] = FormatVersion. Other tensors are stored unchanged.
const (
	FormatVersion = "autoq-weights-v1"
	FormatKey     = "autoq.format"
	QuantMetaKey  = "autoq.quant." // + weight name

	QWeightSuffix = ".qweight"
	ScalesSuffix  = ".scales"
	ZerosSuffix   = ".zeros"
	GIdxSuffix    = ".g_idx"
)

// QuantMeta is the per-tensor scheme stored in the metadata.
type QuantMeta struct {
	Bits        int    `json:"bits"`
	Symmetric   bool   `json:"symmetric"`
	Granularity string `json:"granularity"` // tensor, channel, group
	GroupSize   int    `json:"group_size,omitempty"`
	Rows        int    `json:"rows"`
	Cols        int    `json:"cols"`
	Search      string `json:"search,omitempty"` // how the scales were chosen (informative)
	DType       string `json:"dtype,omitempty"`  // dtype of the original weight (informative)
	GIdx        bool   `json:"g_idx,omitempty"`  // W.g_idx holds each column's group
}

// GIdxInfo is the tensor info of W.g_idx (after QuantizedInfos' tensors).
func GIdxInfo(name string, cols int) safetensors.TensorInfo {
	return safetensors.TensorInfo{Name: name + GIdxSuffix, DType: tensor.I32, Shape: []int{cols}}
}

// QuantizedInfos returns the tensor infos a quantized weight occupies, in file order
// (qweight, scales, zeros). Shapes follow from the scheme, so a streaming writer can lay
// the file out before any quantization runs.
func QuantizedInfos(name string, rows, cols int, s quant.Scheme) ([]safetensors.TensorInfo, error) {
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("tensor %q: %w", name, err)
	}
	_, groups, err := s.GroupCols(cols)
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", name, err)
	}
	prow := rows
	if s.Granularity == quant.PerTensor {
		prow, groups = 1, 1
	}
	qw := safetensors.TensorInfo{Name: name + QWeightSuffix, DType: tensor.I8, Shape: []int{rows, cols}}
	if !s.Symmetric {
		qw.DType = tensor.U8
	}
	if s.Bits != 8 {
		qw.DType, qw.Shape = tensor.U8, []int{rows, quant.RowBytes(s.Bits, cols)}
	}
	out := []safetensors.TensorInfo{qw, {Name: name + ScalesSuffix, DType: tensor.F32, Shape: []int{prow, groups}}}
	if !s.Symmetric {
		out = append(out, safetensors.TensorInfo{Name: name + ZerosSuffix, DType: tensor.I32, Shape: []int{prow, groups}})
	}
	return out, nil
}

// NewQuantMeta describes a rows x cols weight quantized with s.
func NewQuantMeta(rows, cols int, s quant.Scheme) QuantMeta {
	m := QuantMeta{Bits: s.Bits, Symmetric: s.Symmetric, Granularity: s.Granularity.String(), Rows: rows, Cols: cols}
	if s.Granularity == quant.PerGroup {
		m.GroupSize = s.GroupSize
	}
	return m
}

// Encode is the metadata value of m (compact JSON).
func (m QuantMeta) Encode() string {
	b, _ := json.Marshal(m) // plain fields: cannot fail
	return string(b)
}

// QuantizedTensors returns q's tensors in the order of QuantizedInfos, then GIdxInfo's when q
// has a group index. The metadata entry to store beside them is QuantMetaKey+q.Name =
// NewQuantMeta(...).Encode(), with GIdx set when q.GIdx is.
func QuantizedTensors(q *quant.QTensor) ([]safetensors.NamedTensor, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	infos, err := QuantizedInfos(q.Name, q.Rows, q.Cols, q.Scheme)
	if err != nil {
		return nil, err
	}
	datas := [][]byte{q.Data, tensor.FromF32(q.Scales, infos[1].Shape...).Data}
	if !q.Scheme.Symmetric {
		zt := tensor.New(tensor.I32, infos[2].Shape...)
		copy(zt.I32(), q.Zeros)
		datas = append(datas, zt.Data)
	}
	if q.GIdx != nil {
		infos = append(infos, GIdxInfo(q.Name, q.Cols))
		gt := tensor.New(tensor.I32, q.Cols)
		copy(gt.I32(), q.GIdx)
		datas = append(datas, gt.Data)
	}
	out := make([]safetensors.NamedTensor, len(infos))
	for i, in := range infos {
		t, err := tensor.FromBytes(in.DType, in.Shape, datas[i])
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", in.Name, err)
		}
		out[i] = safetensors.NamedTensor{Name: in.Name, T: t}
	}
	return out, nil
}

// Source is what ReadQuantized reads from (a *safetensors.Checkpoint or *safetensors.File).
type Source interface {
	Names() []string
	Tensor(name string) (*tensor.Tensor, error)
	Metadata() map[string]string
}

// ReadQuantized returns every quantized weight of an autoq checkpoint, keyed by the
// original weight name, with its metadata. The QTensors copy nothing but scales and zeros:
// Data views the file. A checkpoint without autoq metadata gives an empty map.
func ReadQuantized(src Source) (map[string]*quant.QTensor, map[string]QuantMeta, error) {
	md := src.Metadata()
	qs := map[string]*quant.QTensor{}
	metas := map[string]QuantMeta{}
	if md[FormatKey] == "" {
		return qs, metas, nil
	}
	if md[FormatKey] != FormatVersion {
		return nil, nil, fmt.Errorf("autoq format %q not supported (want %s)", md[FormatKey], FormatVersion)
	}
	var keys []string
	for k := range md {
		if strings.HasPrefix(k, QuantMetaKey) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		name := strings.TrimPrefix(k, QuantMetaKey)
		var m QuantMeta
		if err := json.Unmarshal([]byte(md[k]), &m); err != nil {
			return nil, nil, fmt.Errorf("tensor %q: bad metadata %s: %w", name, k, err)
		}
		q, err := readOne(src, name, m)
		if err != nil {
			return nil, nil, err
		}
		qs[name], metas[name] = q, m
	}
	return qs, metas, nil
}

func readOne(src Source, name string, m QuantMeta) (*quant.QTensor, error) {
	g, err := quant.ParseGranularity(m.Granularity)
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", name, err)
	}
	s := quant.Scheme{Bits: m.Bits, Symmetric: m.Symmetric, Granularity: g, GroupSize: m.GroupSize}
	infos, err := QuantizedInfos(name, m.Rows, m.Cols, s)
	if err != nil {
		return nil, err
	}
	if m.GIdx {
		infos = append(infos, GIdxInfo(name, m.Cols))
	}
	ts := make([]*tensor.Tensor, len(infos))
	for i, in := range infos {
		t, err := src.Tensor(in.Name)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		if t.DType != in.DType || fmt.Sprint(t.Shape) != fmt.Sprint(in.Shape) {
			return nil, fmt.Errorf("tensor %q: %s is %s%v, scheme %s needs %s%v", name, in.Name, t.DType, t.Shape, s, in.DType, in.Shape)
		}
		ts[i] = t
	}
	q := &quant.QTensor{Name: name, Scheme: s, Rows: m.Rows, Cols: m.Cols, Groups: infos[1].Shape[1], Data: ts[0].Data}
	q.Scales = append([]float32(nil), ts[1].F32()...)
	if !s.Symmetric {
		q.Zeros = append([]int32(nil), ts[2].I32()...)
	}
	if m.GIdx {
		q.GIdx = append([]int32(nil), ts[len(ts)-1].I32()...)
	}
	if err := q.Validate(); err != nil {
		return nil, err
	}
	return q, nil
}
