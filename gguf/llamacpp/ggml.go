package llamacpp

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/autoq/autoq/gguf"
)

// GGML runs ggml's own quantization code through the ggmlq helper.
type GGML struct {
	bin, lib string
}

// BuildGGML compiles scripts/llamacpp/ggmlq.c into dir with the C compiler ($CC or cc).
func (in *Install) BuildGGML(dir string) (*GGML, error) {
	cc, err := exec.LookPath(envOr("CC", "cc"))
	if err != nil {
		return nil, fmt.Errorf("%w: no C compiler to build ggmlq", ErrNotInstalled)
	}
	bin := filepath.Join(dir, "ggmlq")
	src := filepath.Join(in.Root, "scripts", "llamacpp", "ggmlq.c")
	out, err := exec.Command(cc, "-O2", "-o", bin, src, "-ldl").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("llamacpp: build ggmlq: %v\n%s", err, out)
	}
	return &GGML{bin: bin, lib: filepath.Join(in.Lib, "libggml-base.so")}, nil
}

func (g *GGML) run(stdin []byte, args ...string) ([]byte, error) {
	cmd := exec.Command(g.bin, append([]string{g.lib}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("llamacpp: ggmlq %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return out, nil
}

// Quantize runs ggml_quantize_chunk(t, w, rows, cols, imatrix): llama.cpp's own
// quantizer (imatrix may be nil; otherwise cols per-column importances).
func (g *GGML) Quantize(t gguf.Type, w []float32, rows, cols int, imatrix []float32) ([]byte, error) {
	in := f32bytes(w)
	has := "0"
	if imatrix != nil {
		in = append(in, f32bytes(imatrix)...)
		has = "1"
	}
	return g.run(in, "quantize", itoa(int(t)), itoa(rows), itoa(cols), has)
}

// Dequantize runs ggml's dequantize_row_<t> (ggml_fp16_to_fp32_row for F16) on n elements.
func (g *GGML) Dequantize(t gguf.Type, raw []byte, n int) ([]float32, error) {
	out, err := g.run(raw, "dequantize", itoa(int(t)), itoa(n))
	if err != nil {
		return nil, err
	}
	v := make([]float32, len(out)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(out[4*i:]))
	}
	return v, nil
}

// TypeSize is ggml's block size and block bytes of one type.
type TypeSize struct {
	Type        gguf.Type
	Block, Size int
	Name        string
}

// Sizes lists ggml's block size and bytes for every type it knows.
func (g *GGML) Sizes() ([]TypeSize, error) {
	out, err := g.run(nil, "sizes")
	if err != nil {
		return nil, err
	}
	var ts []TypeSize
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var t TypeSize
		var typ uint32
		if _, err := fmt.Sscan(sc.Text(), &typ, &t.Block, &t.Size, &t.Name); err != nil {
			return nil, fmt.Errorf("llamacpp: ggmlq sizes: bad line %q", sc.Text())
		}
		t.Type = gguf.Type(typ)
		ts = append(ts, t)
	}
	return ts, nil
}

func f32bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func itoa(i int) string { return strconv.Itoa(i) }
