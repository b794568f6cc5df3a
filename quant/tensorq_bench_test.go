package quant

import (
	"bytes"
	"sync"
	"testing"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/tensor"
)

// llama2-7b's MLP shape (11008 x 4096) in BF16, as a checkpoint holds it.
const bigRows, bigCols = 11008, 4096

// bigBF16 is drawn straight into BF16 (no float32 copy), so that the process's peak RSS
// under /usr/bin/time reflects the quantization path, not the test data.
var bigBF16 = sync.OnceValue(func() *tensor.Tensor {
	r := testutil.Rand(102)
	bits := make([]uint16, bigRows*bigCols)
	for i := range bits {
		bits[i] = tensor.F32ToBF16(float32(r.NormFloat64() * 0.02))
	}
	return tensor.FromU16(tensor.BF16, bits, bigRows, bigCols)
})

// BenchmarkQuantizeTensor quantizes one BF16 11008x4096 weight to int4 g128 (RTN, max
// search) with its error report, two ways, in the same run:
//
//   - convert-each-step: what `autoq quantize` did on the CPU backend: a float32 copy of the
//     weight for the search, another for quantizing, the dequantized copy and a third copy
//     as the reference of Compare (and a second pass for the signal sum);
//   - streaming: QuantizeTensor then CompareTensor, one row at a time;
//   - one-pass: QuantizeTensorWithError, which reads and converts each row once, with the
//     AVX2 kernels where the CPU has them (simd.go);
//   - one-pass-go: the same with the kernels off (the Go loops: the baseline of the
//     kernels, and what CPUs without AVX2 run);
//   - one-pass-reader: QuantizeReaderWithError reading blocks of rows from a
//     bytes.Reader, the levels' storage reused between iterations.
//
// MB/s is megabytes of BF16 input per second of wall clock, MB/cpu-s per second of CPU
// time of the process (the measure that holds on a shared machine; with -cpu 1 both are
// single-threaded):
//
//	go test -run '^$' -bench QuantizeTensor -cpu 1 -benchmem ./quant/
func BenchmarkQuantizeTensor(b *testing.B) {
	t := bigBF16()
	s := Scheme{Bits: 4, Symmetric: true, Granularity: PerGroup, GroupSize: 128}
	b.Run("convert-each-step", func(b *testing.B) {
		b.SetBytes(int64(len(t.Data)))
		cpu := testutil.StartCPU()
		for b.Loop() {
			scales, zeros, err := SearchParams("w", t.ToF32(), bigRows, bigCols, s, SearchOptions{})
			if err != nil {
				b.Fatal(err)
			}
			q, err := QuantizeWithParams("w", t.ToF32(), bigRows, bigCols, s, scales, zeros)
			if err != nil {
				b.Fatal(err)
			}
			ref := t.ToF32()
			if _, err := CompareChecked(ref, Dequantize(q)); err != nil {
				b.Fatal(err)
			}
			var sig float64
			for _, v := range ref {
				sig += float64(v) * float64(v)
			}
		}
		cpu.Report(b, float64(len(t.Data))/1e6, "MB")
	})
	b.Run("streaming", func(b *testing.B) {
		b.SetBytes(int64(len(t.Data)))
		cpu := testutil.StartCPU()
		for b.Loop() {
			q, err := QuantizeTensor("w", t, s, SearchOptions{})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := CompareTensor("w", t, q); err != nil {
				b.Fatal(err)
			}
		}
		cpu.Report(b, float64(len(t.Data))/1e6, "MB")
	})
	onePass := func(b *testing.B) {
		b.SetBytes(int64(len(t.Data)))
		cpu := testutil.StartCPU()
		for b.Loop() {
			if _, _, err := QuantizeTensorWithError("w", t, s, SearchOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		cpu.Report(b, float64(len(t.Data))/1e6, "MB")
	}
	b.Run("one-pass", onePass)
	b.Run("one-pass-go", func(b *testing.B) {
		was := useSIMD
		useSIMD = false
		defer func() { useSIMD = was }()
		onePass(b)
	})
	b.Run("one-pass-reader", func(b *testing.B) {
		b.SetBytes(int64(len(t.Data)))
		src := TensorSource{R: bytes.NewReader(t.Data), DType: t.DType, Rows: bigRows, Cols: bigCols}
		cpu := testutil.StartCPU()
		for b.Loop() {
			q, _, err := QuantizeReaderWithError("w", src, s, SearchOptions{})
			if err != nil {
				b.Fatal(err)
			}
			src.Levels = q.Data
		}
		cpu.Report(b, float64(len(t.Data))/1e6, "MB")
	})
}
