package export

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/autoq/autoq/internal/atomicfile"
	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/safetensors"
	"github.com/autoq/autoq/tensor"
)

// File names inside an export directory.
const (
	WeightsFile = "model.safetensors"
	ConfigFile  = "config.json"
)

// OutputKind marks a compressed-tensors export directory (internal/atomicfile's output
// marker): --force replaces only a previous export.
const OutputKind = "compressed-tensors export"

// Activation is the int8 quantization of a layer's input (W8A8).
type Activation struct {
	// Dynamic: per-token scales computed at run time (no input_scale stored). Otherwise one
	// static per-tensor threshold Amax from calibration; the scale is Amax/127 (float32
	// division, quant.QuantizeActivationsStatic), stored as input_scale, and Amax itself is
	// kept exactly in the safetensors metadata so that reading back gives the same layer.
	Dynamic bool
	Amax    float32
}

// InputScale is the static activation scale, Amax/127 in float32.
func (a *Activation) InputScale() float32 { return a.Amax / 127 }

// amaxKey is the safetensors metadata key holding a layer's exact activation threshold.
func amaxKey(layer string) string { return "autoq.input_amax." + layer }

// Layer is one quantized linear layer.
type Layer struct {
	// Name is the module name, e.g. "model.layers.0.self_attn.q_proj" (the tensors are
	// written as Name + ".weight_packed" etc.).
	Name string
	Q    *quant.QTensor
	Act  *Activation // nil: weight-only
}

// Model is what Write exports.
type Model struct {
	// Config is the Hugging Face config.json content; Write adds "quantization_config".
	Config map[string]any
	// Dense are tensors written unchanged (embeddings, norms, full-precision layers).
	Dense []safetensors.NamedTensor
	// Layers are the quantized linear layers.
	Layers []Layer
	// Ignore lists the linear modules left in full precision (compressed-tensors' "ignore",
	// e.g. "lm_head"); their weights belong in Dense.
	Ignore []string
	// Files are extra files (tokenizer, generation_config.json) copied into the output
	// under their base names.
	Files []string
	// Extra are generated files (a TensorRT calibration cache, a plan) written into the
	// output under the given names, inside the same atomic directory build.
	Extra map[string][]byte
}

// Options configures Write.
type Options struct {
	// ScaleDType is the dtype of the weight_scale of weight-only (pack-quantized) layers:
	// F32 (the default), F16 or BF16, usually the model's dtype (vLLM's WNA16 layers keep
	// scales in the model dtype). Every scale must be exactly representable in it (see
	// RoundScales), so that the export dequantizes to exactly the weights that were
	// evaluated. int-quantized (W8A8) layers always store F32 weight_scale and input_scale,
	// the dtype of vLLM's int8 W8A8 scale parameters.
	ScaleDType tensor.DType
}

// check fills in the default scale dtype (F32) and refuses options and a model config
// (cfg) that Write and WriteStream cannot export into dir.
func (opt *Options) check(dir string, cfg map[string]any) error {
	if opt.ScaleDType == tensor.Invalid {
		opt.ScaleDType = tensor.F32
	}
	if opt.ScaleDType != tensor.F32 && opt.ScaleDType != tensor.F16 && opt.ScaleDType != tensor.BF16 {
		return fmt.Errorf("export %s: scale dtype must be F32, F16 or BF16, not %s", dir, opt.ScaleDType)
	}
	if cfg == nil {
		return fmt.Errorf("export %s: no model config", dir)
	}
	if _, ok := cfg["quantization_config"]; ok {
		return fmt.Errorf("export %s: the model config already has a quantization_config (is the input already quantized?)", dir)
	}
	return nil
}

// Write exports m into dir atomically (see the package comment).
func Write(dir string, m *Model, opt Options) error {
	if err := opt.check(dir, m.Config); err != nil {
		return err
	}
	all, err := layerTensors(m, opt.ScaleDType)
	if err != nil {
		return fmt.Errorf("export %s: %w", dir, err)
	}
	cfgJSON, err := configJSON(dir, m.Config, m.Layers, m.Ignore)
	if err != nil {
		return err
	}
	return atomicfile.Dir(dir, OutputKind, func(tmp string) error {
		if err := safetensors.WriteFile(filepath.Join(tmp, WeightsFile), all, metadata(m)); err != nil {
			return fmt.Errorf("export %s: %w", dir, err)
		}
		return writeSideFiles(dir, tmp, cfgJSON, m.Files, m.Extra)
	})
}

// configJSON is the export's config.json: the model's config with the quantization_config
// of layers (ignore: the layers kept in full precision).
func configJSON(dir string, config map[string]any, layers []Layer, ignore []string) ([]byte, error) {
	cfg := map[string]any{}
	for k, v := range config {
		cfg[k] = v
	}
	cfg["quantization_config"] = buildConfig(layers, ignore)
	cfgJSON, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("export %s: encode config.json: %w", dir, err)
	}
	return cfgJSON, nil
}

// writeSideFiles writes config.json, the copied files and the generated extra files of an
// export being built in tmp (dir names the export in errors).
func writeSideFiles(dir, tmp string, cfgJSON []byte, files []string, extra map[string][]byte) error {
	if err := os.WriteFile(filepath.Join(tmp, ConfigFile), append(cfgJSON, '\n'), 0o644); err != nil {
		return fmt.Errorf("export %s: %w", dir, err)
	}
	for _, f := range files {
		if err := copyFile(f, filepath.Join(tmp, filepath.Base(f))); err != nil {
			return fmt.Errorf("export %s: copy %s: %w", dir, f, err)
		}
	}
	names := make([]string, 0, len(extra))
	for n := range extra {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if n != filepath.Base(n) || n == WeightsFile || n == ConfigFile {
			return fmt.Errorf("export %s: extra file name %q must be a plain name other than %s and %s", dir, n, WeightsFile, ConfigFile)
		}
		if err := os.WriteFile(filepath.Join(tmp, n), extra[n], 0o644); err != nil {
			return fmt.Errorf("export %s: %w", dir, err)
		}
	}
	return nil
}

// metadata is the safetensors header metadata: "format": "pt" (what transformers expects)
// and each static layer's exact activation threshold.
func metadata(m *Model) map[string]string {
	md := map[string]string{"format": "pt"}
	for _, l := range m.Layers {
		if l.Act != nil && !l.Act.Dynamic {
			md[amaxKey(l.Name)] = strconv.FormatFloat(float64(l.Act.Amax), 'g', -1, 32)
		}
	}
	return md
}

// layerTensors returns every tensor of the export, sorted by name.
func layerTensors(m *Model, scaleDType tensor.DType) ([]safetensors.NamedTensor, error) {
	out := append([]safetensors.NamedTensor(nil), m.Dense...)
	seen := map[string]bool{}
	for _, t := range out {
		if t.T == nil {
			return nil, fmt.Errorf("tensor %q is nil", t.Name)
		}
		if seen[t.Name] {
			return nil, fmt.Errorf("tensor %q appears twice", t.Name)
		}
		seen[t.Name] = true
	}
	for i := range m.Layers {
		l := &m.Layers[i]
		if seen[l.Name+".weight"] {
			return nil, fmt.Errorf("layer %q is both quantized and in the dense tensors (%s.weight)", l.Name, l.Name)
		}
		ts, err := compressLayer(l, scaleDType)
		if err != nil {
			return nil, err
		}
		for _, t := range ts {
			if seen[t.Name] {
				return nil, fmt.Errorf("tensor %q appears twice", t.Name)
			}
			seen[t.Name] = true
			out = append(out, t)
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out, nil
}

// compressLayer converts one QTensor to its compressed-tensors tensors.
func compressLayer(l *Layer, scaleDType tensor.DType) ([]safetensors.NamedTensor, error) {
	q := l.Q
	if q == nil {
		return nil, fmt.Errorf("layer %q: no quantized tensor", l.Name)
	}
	s := q.Scheme
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("layer %q: %w", l.Name, err)
	}
	_, groups, err := s.GroupCols(q.Cols)
	if err != nil {
		return nil, fmt.Errorf("layer %q: %w", l.Name, err)
	}
	nScales := q.Rows * groups
	scaleShape := []int{q.Rows, groups}
	if s.Granularity == quant.PerTensor {
		nScales, scaleShape = 1, []int{1}
	}
	if len(q.Scales) != nScales {
		return nil, fmt.Errorf("layer %q: %d scales for scheme %s on %dx%d (want %d)", l.Name, len(q.Scales), s, q.Rows, q.Cols, nScales)
	}
	if s.Symmetric != (q.Zeros == nil) || (!s.Symmetric && len(q.Zeros) != nScales) {
		return nil, fmt.Errorf("layer %q: %d zero points for a %s scheme with %d scales", l.Name, len(q.Zeros), s, nScales)
	}
	lv, err := levels(q)
	if err != nil {
		return nil, fmt.Errorf("layer %q: %w", l.Name, err)
	}
	// autoq asymmetric (unsigned) -> compressed-tensors signed: subtract 2^(b-1) from both the
	// levels and the zero points; symmetric levels are already signed.
	off := int32(1) << (s.Bits - 1)
	var zps []int32
	if !s.Symmetric {
		for i := range lv {
			lv[i] -= off
		}
		zps = make([]int32, nScales)
		for i, z := range q.Zeros {
			if z < 0 || z > 2*off-1 {
				return nil, fmt.Errorf("layer %q: zero point %d at %d is outside [0, %d]", l.Name, z, i, 2*off-1)
			}
			zps[i] = z - off
		}
	}
	if layerFormat(l) == FormatIntQuantized {
		scaleDType = tensor.F32
		if q.GIdx != nil {
			return nil, fmt.Errorf("layer %q: groups in activation order (g_idx) are only written for weight-only layers", l.Name)
		}
	}
	scale, err := floatTensor(l.Name+".weight_scale", q.Scales, scaleShape, scaleDType)
	if err != nil {
		return nil, err
	}
	out := []safetensors.NamedTensor{{Name: l.Name + ".weight_scale", T: scale}}
	if layerFormat(l) == FormatIntQuantized {
		w := make([]int8, len(lv))
		for i, v := range lv {
			if v < -128 || v > 127 {
				return nil, fmt.Errorf("layer %q: int-quantized needs 8-bit levels, got %d", l.Name, v)
			}
			w[i] = int8(v)
		}
		out = append(out, safetensors.NamedTensor{Name: l.Name + ".weight", T: tensor.FromI8(w, q.Rows, q.Cols)})
		if zps != nil {
			out = append(out, safetensors.NamedTensor{Name: l.Name + ".weight_zero_point", T: i8Tensor(zps, scaleShape...)})
		}
		if !l.Act.Dynamic {
			is, err := floatTensor(l.Name+".input_scale", []float32{l.Act.InputScale()}, []int{1}, tensor.F32)
			if err != nil {
				return nil, err
			}
			out = append(out, safetensors.NamedTensor{Name: l.Name + ".input_scale", T: is})
		}
		return out, nil
	}
	if q.GIdx != nil {
		out = append(out, safetensors.NamedTensor{Name: l.Name + ".weight_g_idx", T: i32Tensor(append([]int32(nil), q.GIdx...), []int{q.Cols})})
	}
	packed, shape, err := packInt32(lv, q.Rows, q.Cols, s.Bits, false)
	if err != nil {
		return nil, fmt.Errorf("layer %q: %w", l.Name, err)
	}
	out = append(out,
		safetensors.NamedTensor{Name: l.Name + ".weight_packed", T: i32Tensor(packed, shape)},
		safetensors.NamedTensor{Name: l.Name + ".weight_shape", T: shapeTensor(q.Rows, q.Cols)})
	if zps != nil {
		if s.Granularity == quant.PerTensor {
			out = append(out, safetensors.NamedTensor{Name: l.Name + ".weight_zero_point", T: i8Tensor(zps, 1)})
		} else {
			pz, zshape, err := packInt32(zps, q.Rows, groups, s.Bits, true)
			if err != nil {
				return nil, fmt.Errorf("layer %q: zero points: %w", l.Name, err)
			}
			out = append(out, safetensors.NamedTensor{Name: l.Name + ".weight_zero_point", T: i32Tensor(pz, zshape)})
		}
	}
	return out, nil
}

// floatTensor stores v in dtype d, refusing values that are not finite and positive or that
// d cannot hold exactly (a rounded scale would dequantize to other weights than evaluated).
func floatTensor(name string, v []float32, shape []int, d tensor.DType) (*tensor.Tensor, error) {
	for i, x := range v {
		if !(x > 0) || math.IsInf(float64(x), 0) {
			return nil, fmt.Errorf("tensor %q: scale %v at %d is not finite and positive", name, x, i)
		}
	}
	c := make([]float32, len(v))
	copy(c, v)
	t := tensor.FromF32(c, shape...)
	if d == tensor.F32 {
		return t, nil
	}
	t = t.Convert(d)
	back := t.ToF32()
	for i := range v {
		if back[i] != v[i] {
			return nil, fmt.Errorf("tensor %q: scale %v at %d is not exactly representable in %s (round the scales with export.RoundScales before evaluating, or export with F32 scales)", name, v[i], i, d)
		}
	}
	return t, nil
}

// RoundScales rounds q's scales to the nearest value of dtype d (F16 or BF16) in place, so
// that q can be exported with scales of that dtype and dequantizes to exactly what the
// export does. A scale that would round to zero or overflow is an error naming the tensor.
func RoundScales(q *quant.QTensor, d tensor.DType) error {
	if d == tensor.F32 {
		return nil
	}
	if d != tensor.F16 && d != tensor.BF16 {
		return fmt.Errorf("round scales of %q: dtype must be F16 or BF16, not %s", q.Name, d)
	}
	r := tensor.FromF32(append([]float32(nil), q.Scales...), len(q.Scales)).Convert(d).ToF32()
	for i, x := range r {
		if !(x > 0) || math.IsInf(float64(x), 0) {
			return fmt.Errorf("round scales of %q: scale %v at %d does not fit %s (got %v)", q.Name, q.Scales[i], i, d, x)
		}
	}
	copy(q.Scales, r)
	return nil
}

// i8Tensor stores zero points as I8 (compressed-tensors' weight_zero_point of the
// int-quantized and per-tensor layouts; they lie in the 8-bit level range).
func i8Tensor(v []int32, shape ...int) *tensor.Tensor {
	t := tensor.New(tensor.I8, shape...)
	dst := t.I8()
	for i, x := range v {
		dst[i] = int8(x)
	}
	return t
}

func i32Tensor(v []int32, shape []int) *tensor.Tensor {
	t := tensor.New(tensor.I32, shape...)
	copy(t.I32(), v)
	return t
}

// shapeTensor is weight_shape: I64 [2], as compressed-tensors writes it (torch.tensor of
// the weight's shape; vLLM's parameter is int64 too).
func shapeTensor(rows, cols int) *tensor.Tensor {
	t := tensor.New(tensor.I64, 2)
	copy(t.I64(), []int64{int64(rows), int64(cols)})
	return t
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
