//go:build cuda

package cgo

// #include "autoq_model.h"
import "C"

import "fmt"

// Go wrappers of the prefill kernels of cuda/model_*.cu (autoq_model.h) on device buffers.
// They check buffer sizes, launch asynchronously on the default stream and return the
// library's error (naming the operation and kernel). Activations are F16 unless noted; the
// residual stream x is F32.

func checkBufs(op string, bufs ...any) error {
	for i := 0; i+1 < len(bufs); i += 2 {
		b, _ := bufs[i].(*Buffer)
		n := bufs[i+1].(int)
		if err := needBytes(op, b, n); err != nil {
			return fmt.Errorf("cuda: %s: buffer %d too small or closed (need %d bytes)", op, i/2, n)
		}
	}
	return nil
}

// EmbedDev writes x[m] = table[tokens[m]] (table F16 [vocab, D], tokens int32 [M], x F32).
func EmbedDev(dev int, table, tokens *Buffer, M, D, vocab int, x *Buffer) error {
	if err := checkBufs("embed", table, 2*vocab*D, tokens, 4*M, x, 4*M*D); err != nil {
		return err
	}
	return call(func() C.int {
		return C.autoq_model_embed(C.int(dev), table.ptr, (*C.int32_t)(tokens.ptr), C.int64_t(M), C.int64_t(D), C.int64_t(vocab), (*C.float)(x.ptr), nil)
	})
}

// RMSNormDev writes out = f16(w * x / sqrt(mean(x^2) + eps)) per row (x F32 [M, D], w F32).
func RMSNormDev(dev int, x, w *Buffer, M, D int, eps float32, out *Buffer) error {
	if err := checkBufs("rmsnorm", x, 4*M*D, w, 4*D, out, 2*M*D); err != nil {
		return err
	}
	return call(func() C.int {
		return C.autoq_model_rmsnorm(C.int(dev), (*C.float)(x.ptr), (*C.float)(w.ptr), C.int64_t(M), C.int64_t(D), C.float(eps), out.ptr, nil)
	})
}

// RoPEDev rotates q [M, nq*hd] and k [M, nk*hd] in place at positions pos (int32 [M]) with
// the F32 tables cos/sin [npos, hd/2] (rotate_half pairing).
func RoPEDev(dev int, q, k, pos, cos, sin *Buffer, npos, M, nq, nk, hd int) error {
	if err := checkBufs("rope", q, 2*M*nq*hd, k, 2*M*nk*hd, pos, 4*M, cos, 4*npos*hd/2, sin, 4*npos*hd/2); err != nil {
		return err
	}
	return call(func() C.int {
		return C.autoq_model_rope(C.int(dev), q.ptr, k.ptr, (*C.int32_t)(pos.ptr), (*C.float)(cos.ptr), (*C.float)(sin.ptr),
			C.int64_t(npos), C.int64_t(M), C.int(nq), C.int(nk), C.int(hd), nil)
	})
}

// AttentionDev runs causal GQA over the sequences delimited by offsets (int32 [nseq+1]).
func AttentionDev(dev int, q, k, v, offsets *Buffer, nseq, maxLen, M, nq, nk, hd int, out *Buffer) error {
	if err := checkBufs("attention", q, 2*M*nq*hd, k, 2*M*nk*hd, v, 2*M*nk*hd, offsets, 4*(nseq+1), out, 2*M*nq*hd); err != nil {
		return err
	}
	return call(func() C.int {
		return C.autoq_model_attention(C.int(dev), q.ptr, k.ptr, v.ptr, (*C.int32_t)(offsets.ptr), C.int(nseq), C.int(maxLen),
			C.int(nq), C.int(nk), C.int(hd), out.ptr, nil)
	})
}

// SwiGLUDev writes out = f16(silu(gate) * up) over n elements (out may be gate).
func SwiGLUDev(dev int, gate, up, out *Buffer, n int) error {
	if err := checkBufs("swiglu", gate, 2*n, up, 2*n, out, 2*n); err != nil {
		return err
	}
	return call(func() C.int { return C.autoq_model_swiglu(C.int(dev), gate.ptr, up.ptr, out.ptr, C.int64_t(n), nil) })
}

// ResidualAddDev adds y (F16) into x (F32) over n elements.
func ResidualAddDev(dev int, x, y *Buffer, n int) error {
	if err := checkBufs("residual add", x, 4*n, y, 2*n); err != nil {
		return err
	}
	return call(func() C.int {
		return C.autoq_model_residual_add(C.int(dev), (*C.float)(x.ptr), y.ptr, C.int64_t(n), nil)
	})
}

// BiasAddDev adds bias (F32 [N]) to every row of out (F16 [M, N]).
func BiasAddDev(dev int, out, bias *Buffer, M, N int) error {
	if err := checkBufs("bias add", out, 2*M*N, bias, 4*N); err != nil {
		return err
	}
	return call(func() C.int {
		return C.autoq_model_bias_add(C.int(dev), out.ptr, (*C.float)(bias.ptr), C.int64_t(M), C.int64_t(N), nil)
	})
}

// FakeActQuantDev writes out = f16(q * scale) with per-row int8 levels q of x (F16 [M, K]).
func FakeActQuantDev(dev int, x *Buffer, M, K int, out *Buffer) error {
	if err := checkBufs("fake activation quantization", x, 2*M*K, out, 2*M*K); err != nil {
		return err
	}
	return call(func() C.int {
		return C.autoq_model_fake_act_quant(C.int(dev), x.ptr, C.int64_t(M), C.int64_t(K), out.ptr, nil)
	})
}

// GemmF16F32OutDev writes out (F32 [M, N]) = a (F16 [M, K]) x w (F16 [N, K])^T.
func GemmF16F32OutDev(dev int, a, w *Buffer, M, N, K int, out *Buffer) error {
	if err := checkBufs("classifier gemm", a, 2*M*K, w, 2*N*K, out, 4*M*N); err != nil {
		return err
	}
	return call(func() C.int {
		return C.autoq_model_gemm_f16_f32out(C.int(dev), a.ptr, w.ptr, (*C.float)(out.ptr), C.int64_t(M), C.int64_t(N), C.int64_t(K), nil)
	})
}

// RMSNormQuantDev is RMSNormDev with the per-token int8 quantization of its output fused in:
// out as RMSNormDev writes it, q (int8 [M, D]) and scales (F32 [M]) as ActQuantPerTokenDev(out)
// gives them, bit for bit.
func RMSNormQuantDev(dev int, x, w *Buffer, M, D int, eps float32, out, q, scales *Buffer) error {
	if err := checkBufs("rmsnorm+quantize", x, 4*M*D, w, 4*D, out, 2*M*D, q, M*D, scales, 4*M); err != nil {
		return err
	}
	return call(func() C.int {
		return C.autoq_model_rmsnorm_quant(C.int(dev), (*C.float)(x.ptr), (*C.float)(w.ptr), C.int64_t(M), C.int64_t(D), C.float(eps),
			out.ptr, (*C.int8_t)(q.ptr), (*C.float)(scales.ptr), nil)
	})
}

// SwiGLUQuantDev is SwiGLUDev over M rows of H with the per-token int8 quantization of out
// fused in (out may be gate).
func SwiGLUQuantDev(dev int, gate, up, out *Buffer, M, H int, q, scales *Buffer) error {
	if err := checkBufs("swiglu+quantize", gate, 2*M*H, up, 2*M*H, out, 2*M*H, q, M*H, scales, 4*M); err != nil {
		return err
	}
	return call(func() C.int {
		return C.autoq_model_swiglu_quant(C.int(dev), gate.ptr, up.ptr, C.int64_t(M), C.int64_t(H), out.ptr,
			(*C.int8_t)(q.ptr), (*C.float)(scales.ptr), nil)
	})
}
