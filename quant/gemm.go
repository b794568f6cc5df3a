package quant

import (
	"fmt"
	"unsafe"
)

// Reference GEMMs, the oracles of the GPU kernels. All compute C = A * B^T with A [M,K]
// (tokens x inputs) and B the weights [N,K] (outputs x inputs), both row-major, giving C
// [M,N] row-major: y = W x for each token. Work is split over the N weight rows; every
// output element is computed by one goroutine in a fixed order, so results do not depend on
// the worker count.
//
// Float sums run in k order, one rounding per operation: acc = acc + float32(a*b). The
// explicit conversion stops the Go compiler fusing a multiply-add (the spec allows fusion
// otherwise), so results are the same on every architecture. GPU kernels sum in other
// orders (and fuse), so they are compared with these within a tolerance; GemmI8 alone is
// exact and compared bit for bit.

// GemmF32 returns A * B^T in float32 (nil when the slice lengths do not match the shape).
func GemmF32(a, b []float32, M, N, K int) []float32 {
	if !gemmShapeOK(len(a), len(b), M, N, K) {
		return nil
	}
	c := make([]float32, M*N)
	_ = parallelRows(N, func(n0, n1 int) error {
		for n := n0; n < n1; n++ {
			dotRows(a, b[n*K:(n+1)*K], c, M, N, K, n)
		}
		return nil
	})
	return c
}

// dotRows sets c[m,n] = sum_k a[m,k]*w[k] for every m, in k order in float32. Four tokens
// are summed side by side (four independent chains, each still in k order) to hide the
// latency of the adds; the result is the same as one token at a time.
func dotRows(a, w, c []float32, M, N, K, n int) {
	m := 0
	for ; m+4 <= M; m += 4 {
		x0, x1, x2, x3 := a[m*K:(m+1)*K], a[(m+1)*K:(m+2)*K], a[(m+2)*K:(m+3)*K], a[(m+3)*K:(m+4)*K]
		x0, x1, x2, x3 = x0[:len(w)], x1[:len(w)], x2[:len(w)], x3[:len(w)]
		var s0, s1, s2, s3 float32
		for k, v := range w {
			s0 = s0 + float32(x0[k]*v)
			s1 = s1 + float32(x1[k]*v)
			s2 = s2 + float32(x2[k]*v)
			s3 = s3 + float32(x3[k]*v)
		}
		c[m*N+n], c[(m+1)*N+n], c[(m+2)*N+n], c[(m+3)*N+n] = s0, s1, s2, s3
	}
	for ; m < M; m++ {
		x := a[m*K : (m+1)*K]
		x = x[:len(w)]
		var acc float32
		for k, v := range w {
			acc = acc + float32(x[k]*v)
		}
		c[m*N+n] = acc
	}
}

// GemmI8 returns A * B^T with exact int32 accumulation (nil on a shape mismatch). Each
// product is at most 2^14 in magnitude, so the sum is exact for K <= 2^17; beyond that it
// wraps around in two's complement as the GPU's int32 accumulators do. The kernel
// (gemm_i8.go) multiplies three tokens at a time in 64-bit integers; the result is the plain
// int32 loop's, bit for bit.
func GemmI8(a, b []int8, M, N, K int) []int32 {
	if !gemmShapeOK(len(a), len(b), M, N, K) {
		return nil
	}
	c := make([]int32, M*N)
	g := packTokenTriples(a, M, K)
	_ = parallelRows(N, func(n0, n1 int) error {
		acc := gemmI8Block(g, b, M, K, n0, n1)
		for m := 0; m < M; m++ {
			row := c[m*N+n0 : m*N+n1]
			for j := range row {
				row[j] = acc[j*M+m]
			}
		}
		return nil
	})
	return c
}

// GemmW8A8 multiplies int8 activations aq [M,K] (per-token scales aScales, len M) by an
// 8-bit symmetric per-channel or per-tensor weight w [N,K]:
//
//	acc      = sum_k aq[m,k]*w[n,k]                      (exact int32, as GemmI8)
//	out[m,n] = float32(acc) * aScales[m] * wScale[n] + bias[n]
//
// evaluated left to right in float32, each operation rounded. bias may be nil or empty (no add).
func GemmW8A8(aq []int8, aScales []float32, M int, w *QTensor, bias []float32) ([]float32, error) {
	if err := w.Validate(); err != nil {
		return nil, fmt.Errorf("gemm w8a8: %w", err)
	}
	out := make([]float32, M*w.Rows)
	if err := GemmW8A8Into(out, aq, aScales, M, w, bias); err != nil {
		return nil, err
	}
	return out, nil
}

// GemmW8A8Into is GemmW8A8 writing into out (length M*N), so that a caller running layer
// after layer reuses its buffers instead of a new result per call.
func GemmW8A8Into(out []float32, aq []int8, aScales []float32, M int, w *QTensor, bias []float32) error {
	if err := w.Validate(); err != nil {
		return fmt.Errorf("gemm w8a8: %w", err)
	}
	s := w.Scheme
	if s.Bits != 8 || !s.Symmetric || s.Granularity == PerGroup {
		return fmt.Errorf("gemm w8a8: tensor %q: weights must be 8-bit symmetric per-channel or per-tensor, not %s", w.Name, s)
	}
	N, K := w.Rows, w.Cols
	if err := checkGemmInputs(w.Name, len(aq), len(aScales), len(bias), M, N, K); err != nil {
		return fmt.Errorf("gemm w8a8: %w", err)
	}
	if len(out) != M*N {
		return fmt.Errorf("gemm w8a8: tensor %q: output has %d values for %d tokens x %d outputs", w.Name, len(out), M, N)
	}
	wq := unsafe.Slice((*int8)(unsafe.Pointer(&w.Data[0])), len(w.Data))
	g := packTokenTriples(aq, M, K)
	_ = parallelRows(N, func(n0, n1 int) error {
		acc := gemmI8Block(g, wq, M, K, n0, n1)
		ws := make([]float32, n1-n0)
		for j := range ws {
			ws[j], _ = w.ScaleAt(n0+j, 0)
		}
		for m := 0; m < M; m++ {
			row := out[m*N+n0 : m*N+n1]
			for j := range row {
				v := float32(float32(acc[j*M+m])*aScales[m]) * ws[j]
				if len(bias) > 0 {
					v = float32(v) + bias[n0+j]
				}
				row[j] = v
			}
		}
		return nil
	})
	return nil
}

// GemmW4A16 multiplies float activations a [M,K] by a 4-bit weight w [N,K] (any
// granularity, symmetric or asymmetric), dequantizing each weight with DequantizeValue and
// accumulating acc = acc + float32(a[m,k]*wdeq[n,k]) in k order in float32, then adding
// bias[n] when bias is not empty.
func GemmW4A16(a []float32, M int, w *QTensor, bias []float32) ([]float32, error) {
	if err := w.Validate(); err != nil {
		return nil, fmt.Errorf("gemm w4a16: %w", err)
	}
	out := make([]float32, M*w.Rows)
	if err := GemmW4A16Into(out, a, M, w, bias); err != nil {
		return nil, err
	}
	return out, nil
}

// GemmW4A16Into is GemmW4A16 writing into out (length M*N).
func GemmW4A16Into(out, a []float32, M int, w *QTensor, bias []float32) error {
	if err := w.Validate(); err != nil {
		return fmt.Errorf("gemm w4a16: %w", err)
	}
	if w.Scheme.Bits != 4 {
		return fmt.Errorf("gemm w4a16: tensor %q: weights must be 4-bit, not %s (no integer GEMM takes other weight-only widths: multiply the dequantized weights)", w.Name, w.Scheme)
	}
	N, K := w.Rows, w.Cols
	if err := checkGemmInputs(w.Name, len(a), M, len(bias), M, N, K); err != nil {
		return fmt.Errorf("gemm w4a16: %w", err)
	}
	if len(out) != M*N {
		return fmt.Errorf("gemm w4a16: tensor %q: output has %d values for %d tokens x %d outputs", w.Name, len(out), M, N)
	}
	l := w.Layout()
	rb := w.rowBytes()
	_ = parallelRows(N, func(n0, n1 int) error {
		wd := make([]float32, K)
		for n := n0; n < n1; n++ {
			dequantizeRow(w, l, w.Data[n*rb:(n+1)*rb], n, wd)
			dotRows(a, wd, out, M, N, K, n)
			if len(bias) > 0 {
				for m := 0; m < M; m++ {
					out[m*N+n] = out[m*N+n] + bias[n]
				}
			}
		}
		return nil
	})
	return nil
}

func gemmShapeOK(la, lb, M, N, K int) bool {
	return M >= 0 && N >= 0 && K >= 0 && la == M*K && lb == N*K
}

// checkGemmInputs checks activation, activation-scale and bias lengths for a GEMM with
// weight [N,K] (nScales is M when there are no separate scales).
func checkGemmInputs(name string, nA, nScales, nBias, M, N, K int) error {
	switch {
	case M < 0:
		return fmt.Errorf("tensor %q: negative token count %d", name, M)
	case nA != M*K:
		return fmt.Errorf("tensor %q: %d activations for %d tokens x %d inputs", name, nA, M, K)
	case nScales != M:
		return fmt.Errorf("tensor %q: %d activation scales for %d tokens", name, nScales, M)
	case nBias != 0 && nBias != N:
		return fmt.Errorf("tensor %q: bias has %d entries for %d outputs", name, nBias, N)
	}
	return nil
}
