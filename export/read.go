package export

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/safetensors"
	"github.com/autoq/autoq/tensor"
)

// Loaded is an export read back.
type Loaded struct {
	Dir    string
	Config map[string]any // config.json, quantization_config included
	Quant  *QuantizationConfig
	// Dense are the tensors that are not part of a quantized layer (copies, in file order).
	Dense []safetensors.NamedTensor
	// Layers are the quantized layers, converted back to autoq's QTensor convention, sorted
	// by name. Act is set for int-quantized layers with input activations.
	Layers []Layer
	// raw holds each quantized layer's stored tensors by suffix ("weight_packed", ...), for
	// DequantizeStored.
	raw  map[string]map[string]*tensor.Tensor
	fmt  map[string]*ConfigGroup
	meta map[string]string
}

// quantSuffixes are the per-layer tensors compressed-tensors adds.
var quantSuffixes = []string{"weight_packed", "weight_shape", "weight_scale", "weight_zero_point", "input_scale", "weight_g_idx", "weight"}

// Read reads an export directory written by Write (or any compressed-tensors checkpoint
// using the int pack-quantized / int-quantized formats with explicit or "re:" targets).
func Read(dir string) (*Loaded, error) {
	ld, ck, owned, err := scan(dir)
	if err != nil {
		return nil, err
	}
	defer ck.Close()
	for _, raw := range ld.raw { // copies: the mapping is closed on return
		for suf, t := range raw {
			raw[suf] = cloneTensor(t)
		}
	}
	for _, n := range ck.Names() {
		if owned[n] {
			continue
		}
		t, err := ck.Tensor(n)
		if err != nil {
			return nil, fmt.Errorf("export read: %w", err)
		}
		ld.Dense = append(ld.Dense, safetensors.NamedTensor{Name: n, T: cloneTensor(t)})
	}
	mods := make([]string, 0, len(ld.fmt))
	for m := range ld.fmt {
		mods = append(mods, m)
	}
	sort.Strings(mods)
	for _, m := range mods {
		l, err := ld.decodeLayer(m)
		if err != nil {
			return nil, fmt.Errorf("export read %s: layer %q: %w", dir, m, err)
		}
		ld.Layers = append(ld.Layers, l)
	}
	return ld, nil
}

// scan opens an export: its config, the config group of every quantized module, and each
// module's stored tensors as views of the mapped checkpoint (returned open; owned names
// the tensors that belong to a quantized module).
func scan(dir string) (_ *Loaded, _ *safetensors.Checkpoint, owned map[string]bool, err error) {
	cfgBytes, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("export read: %w", err)
	}
	ld := &Loaded{Dir: dir, raw: map[string]map[string]*tensor.Tensor{}, fmt: map[string]*ConfigGroup{}}
	if err := json.Unmarshal(cfgBytes, &ld.Config); err != nil {
		return nil, nil, nil, fmt.Errorf("export read %s: %w", filepath.Join(dir, ConfigFile), err)
	}
	var wrap struct {
		Q *QuantizationConfig `json:"quantization_config"`
	}
	if err := json.Unmarshal(cfgBytes, &wrap); err != nil || wrap.Q == nil {
		return nil, nil, nil, fmt.Errorf("export read %s: no quantization_config (%v)", filepath.Join(dir, ConfigFile), err)
	}
	ld.Quant = wrap.Q
	if ld.Quant.QuantMethod != "compressed-tensors" {
		return nil, nil, nil, fmt.Errorf("export read %s: quant_method %q (want compressed-tensors)", dir, ld.Quant.QuantMethod)
	}
	ck, err := safetensors.OpenCheckpoint(dir)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("export read: %w", err)
	}
	defer func() {
		if err != nil {
			ck.Close()
		}
	}()
	ld.meta = ck.Metadata()
	names := ck.Names()
	modules := map[string]bool{}
	for _, n := range names {
		for _, suf := range quantSuffixes[:6] {
			if strings.HasSuffix(n, "."+suf) {
				modules[strings.TrimSuffix(n, "."+suf)] = true
			}
		}
	}
	// Assign every module with quantization tensors to its config group.
	gnames := make([]string, 0, len(ld.Quant.ConfigGroups))
	for g := range ld.Quant.ConfigGroups {
		gnames = append(gnames, g)
	}
	sort.Strings(gnames)
	for m := range modules {
		for _, g := range gnames {
			cg := ld.Quant.ConfigGroups[g]
			ok, err := matchesTargets(m, cg.Targets)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("export read %s: config group %s: %w", dir, g, err)
			}
			if ok {
				ld.fmt[m] = cg
				break
			}
		}
		if ld.fmt[m] == nil {
			return nil, nil, nil, fmt.Errorf("export read %s: layer %q has quantized tensors but no config group targets it", dir, m)
		}
	}
	owned = map[string]bool{}
	for m := range ld.fmt {
		ld.raw[m] = map[string]*tensor.Tensor{}
		for _, suf := range quantSuffixes {
			n := m + "." + suf
			if _, ok := ck.Info(n); !ok {
				continue
			}
			t, err := ck.Tensor(n)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("export read: %w", err)
			}
			ld.raw[m][suf] = t
			owned[n] = true
		}
	}
	return ld, ck, owned, nil
}

// matchesTargets applies compressed-tensors' target rule for module names: an exact name,
// or "re:" followed by a regular expression matched against the module name. Class-name
// targets ("Linear") need the module tree and are reported as unsupported.
func matchesTargets(module string, targets []string) (bool, error) {
	for _, t := range targets {
		if re, ok := strings.CutPrefix(t, "re:"); ok {
			r, err := regexp.Compile(re)
			if err != nil {
				return false, fmt.Errorf("target %q: %w", t, err)
			}
			if r.MatchString(module) {
				return true, nil
			}
			continue
		}
		if t == module {
			return true, nil
		}
		if t == "Linear" {
			return false, fmt.Errorf("class-name target %q is not supported (autoq writes explicit layer names)", t)
		}
	}
	return false, nil
}

// decodeLayer converts a layer's stored tensors back to an autoq QTensor.
func (ld *Loaded) decodeLayer(m string) (Layer, error) {
	cg := ld.fmt[m]
	raw := ld.raw[m]
	s, err := schemeFromArgs(cg.Weights)
	if err != nil {
		return Layer{}, err
	}
	sv, rows, cols, err := ld.signedLevels(m, s)
	if err != nil {
		return Layer{}, err
	}
	scaleT := raw["weight_scale"]
	if scaleT == nil || !scaleT.DType.IsFloat() {
		return Layer{}, fmt.Errorf("missing or non-float weight_scale")
	}
	_, groups, err := s.GroupCols(cols)
	if err != nil {
		return Layer{}, err
	}
	nScales := rows * groups
	if s.Granularity == quant.PerTensor {
		nScales = 1
	}
	scales := append([]float32(nil), scaleT.ToF32()...)
	if len(scales) != nScales {
		return Layer{}, fmt.Errorf("weight_scale has %d values, scheme %s on %dx%d needs %d", len(scales), s, rows, cols, nScales)
	}
	q := &quant.QTensor{Name: m + ".weight", Scheme: s, Rows: rows, Cols: cols, Groups: groups, Scales: scales}
	if !s.Symmetric {
		zp, err := ld.signedZeros(m, s, rows, groups, nScales)
		if err != nil {
			return Layer{}, err
		}
		// compressed-tensors signed -> autoq unsigned: add 2^(b-1) to levels and zero points.
		off := int32(1) << (s.Bits - 1)
		for i := range sv {
			sv[i] += off
		}
		q.Zeros = make([]int32, len(zp))
		for i, z := range zp {
			q.Zeros[i] = z + off
		}
	}
	if q.Data, err = storeLevels(s, sv, rows, cols); err != nil {
		return Layer{}, err
	}
	if ao, _ := cg.Weights.Actorder.(string); (ao == "group" || ao == "dynamic") && raw["weight_g_idx"] == nil {
		return Layer{}, fmt.Errorf("actorder %q needs a weight_g_idx tensor, and there is none", ao)
	}
	if gt := raw["weight_g_idx"]; gt != nil {
		// actorder "group": each input column's scale group (compressed-tensors' g_idx).
		if gt.DType != tensor.I32 || gt.NumElements() != cols {
			return Layer{}, fmt.Errorf("weight_g_idx is %s%v, want I32[%d]", gt.DType, gt.Shape, cols)
		}
		q.GIdx = append([]int32(nil), gt.I32()...)
		if err := q.Validate(); err != nil {
			return Layer{}, err
		}
	}
	l := Layer{Name: m, Q: q}
	if a := cg.InputActivations; a != nil {
		l.Act = &Activation{Dynamic: a.Dynamic}
		if !a.Dynamic {
			is := raw["input_scale"]
			if is == nil || !is.DType.IsFloat() || is.NumElements() != 1 {
				return Layer{}, fmt.Errorf("static input activations need a one-element float input_scale")
			}
			if l.Act.Amax, err = ld.amax(m, is.ToF32()[0]); err != nil {
				return Layer{}, err
			}
		}
	}
	return l, nil
}

// amax recovers a static layer's activation threshold: exactly from the metadata autoq
// writes, else (another tool's export) the float whose float32 quotient by 127 is the
// stored input_scale, searched around input_scale*127.
func (ld *Loaded) amax(m string, inputScale float32) (float32, error) {
	if v, ok := ld.meta[amaxKey(m)]; ok {
		a, err := strconv.ParseFloat(v, 32)
		if err != nil || float32(a)/127 != inputScale {
			return 0, fmt.Errorf("metadata %s=%q does not match input_scale %v", amaxKey(m), v, inputScale)
		}
		return float32(a), nil
	}
	a := inputScale * 127
	for i := 0; i < 64 && a/127 != inputScale; i++ {
		if a/127 < inputScale {
			a = math.Nextafter32(a, float32(math.Inf(1)))
		} else {
			a = math.Nextafter32(a, 0)
		}
	}
	return a, nil
}

// signedLevels returns the stored weight levels in compressed-tensors' signed convention.
func (ld *Loaded) signedLevels(m string, s quant.Scheme) (lv []int32, rows, cols int, err error) {
	raw := ld.raw[m]
	switch format := ld.layerFormatOf(m); format {
	case FormatPackQuantized:
		p, shp := raw["weight_packed"], raw["weight_shape"]
		if p == nil || p.DType != tensor.I32 || len(p.Shape) != 2 {
			return nil, 0, 0, fmt.Errorf("weight_packed missing or not a 2-D int32 tensor")
		}
		if rows, cols, err = shapeOf(shp); err != nil {
			return nil, 0, 0, err
		}
		if rows != p.Shape[0] {
			return nil, 0, 0, fmt.Errorf("weight_shape %dx%d does not match weight_packed %v", rows, cols, p.Shape)
		}
		lv, err = unpackInt32(p.I32(), rows, cols, s.Bits, false)
		return lv, rows, cols, err
	case FormatIntQuantized:
		w := raw["weight"]
		if w == nil || w.DType != tensor.I8 || len(w.Shape) != 2 {
			return nil, 0, 0, fmt.Errorf("weight missing or not a 2-D int8 tensor")
		}
		lv = make([]int32, w.NumElements())
		for i, v := range w.I8() {
			lv[i] = int32(v)
		}
		return lv, w.Shape[0], w.Shape[1], nil
	default:
		return nil, 0, 0, fmt.Errorf("format %q is not supported", format)
	}
}

// shapeOf reads weight_shape: two int64 values (compressed-tensors) or int32 (exports of
// autoq before it matched that).
func shapeOf(t *tensor.Tensor) (rows, cols int, err error) {
	if t == nil || t.NumElements() != 2 {
		return 0, 0, fmt.Errorf("weight_shape missing or not two integers")
	}
	switch t.DType {
	case tensor.I64:
		r, c := t.I64()[0], t.I64()[1]
		if r <= 0 || c <= 0 || r > 1<<31 || c > 1<<31 {
			return 0, 0, fmt.Errorf("weight_shape %dx%d is not a valid shape", r, c)
		}
		return int(r), int(c), nil
	case tensor.I32:
		r, c := t.I32()[0], t.I32()[1]
		if r <= 0 || c <= 0 {
			return 0, 0, fmt.Errorf("weight_shape %dx%d is not a valid shape", r, c)
		}
		return int(r), int(c), nil
	}
	return 0, 0, fmt.Errorf("weight_shape is %s (want I64 or I32)", t.DType)
}

// signedZeros returns the zero points in compressed-tensors' signed convention.
func (ld *Loaded) signedZeros(m string, s quant.Scheme, rows, groups, n int) ([]int32, error) {
	z := ld.raw[m]["weight_zero_point"]
	if z == nil {
		return nil, fmt.Errorf("asymmetric scheme %s without weight_zero_point", s)
	}
	if ld.layerFormatOf(m) == FormatPackQuantized && s.Granularity != quant.PerTensor {
		if z.DType != tensor.I32 {
			return nil, fmt.Errorf("packed weight_zero_point must be int32, not %s", z.DType)
		}
		return unpackInt32(z.I32(), rows, groups, s.Bits, true)
	}
	if z.DType != tensor.I8 || z.NumElements() != n {
		return nil, fmt.Errorf("weight_zero_point must be %d int8 values, got %s%v", n, z.DType, z.Shape)
	}
	out := make([]int32, n)
	for i, v := range z.I8() {
		out[i] = int32(v)
	}
	return out, nil
}

// layerFormatOf is the layer's format: its config group's, else the top-level one.
func (ld *Loaded) layerFormatOf(m string) string {
	if f := ld.fmt[m].Format; f != "" {
		return f
	}
	return ld.Quant.Format
}

// DequantizeStored returns the weights of a quantized layer computed straight from the
// stored tensors with compressed-tensors' own rule, (q - zero_point) * scale with signed
// q and zero_point, independently of package quant. Used to check the round trip.
func (ld *Loaded) DequantizeStored(m string) ([]float32, error) {
	cg := ld.fmt[m]
	if cg == nil {
		return nil, fmt.Errorf("layer %q is not quantized in %s", m, ld.Dir)
	}
	s, err := schemeFromArgs(cg.Weights)
	if err != nil {
		return nil, err
	}
	lv, rows, cols, err := ld.signedLevels(m, s)
	if err != nil {
		return nil, err
	}
	scales := ld.raw[m]["weight_scale"].ToF32()
	gs, groups, err := s.GroupCols(cols)
	if err != nil {
		return nil, err
	}
	var zp []int32
	if !s.Symmetric {
		if zp, err = ld.signedZeros(m, s, rows, groups, len(scales)); err != nil {
			return nil, err
		}
	}
	var gidx []int32 // actorder "group": column c reads group g_idx[c]
	if gt := ld.raw[m]["weight_g_idx"]; gt != nil && gt.DType == tensor.I32 && gt.NumElements() == cols {
		gidx = gt.I32()
	}
	out := make([]float32, rows*cols)
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			k := r*groups + c/gs
			if gidx != nil {
				k = r*groups + int(gidx[c])
			}
			if s.Granularity == quant.PerTensor {
				k = 0
			}
			v := float32(lv[r*cols+c])
			if zp != nil {
				v -= float32(zp[k])
			}
			out[r*cols+c] = v * scales[k]
		}
	}
	return out, nil
}

func cloneTensor(t *tensor.Tensor) *tensor.Tensor {
	return &tensor.Tensor{DType: t.DType, Shape: append([]int(nil), t.Shape...), Data: append([]byte(nil), t.Data...)}
}
