package cgo

// Host checks of the W4A16 stripe kernels' bookkeeping, for machines without a GPU: the
// partition, fit rule, fragment maps, smem swizzles and dequantization of
// cuda/gemm_w4a16_stripes.cuh are cut out by their markers, compiled with g++ beside shims
// for the F16 intrinsics (each rounds once to nearest-even, as the hardware does) and a warp
// emulator (ldmatrix and mma.m16n8k16 as the PTX ISA defines their fragments). The emulator
// runs each kernel's per-lane data path (which lane reads which 16 bytes, which word becomes
// which fragment register, which shared-memory chunk each lane hands ldmatrix, which
// accumulator lands on which output) over weights packed by layout.PackW4A16Tiled, summing in
// float64, and the result must equal float64 sums of the exactly dequantized weights. A wrong
// map gives O(1) errors; the float64 sums agree to ~1e-12. What the emulator cannot check
// (cp.async, barriers, the ring, the cross-block reduction at run time) the cuda-tagged tests
// check on a GPU.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/kernels/layout"
	"github.com/autoq/autoq/quant"
	"github.com/autoq/autoq/tensor"
)

const w4HostShims = `#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <cmath>
#include <vector>
#include <string>
#define AUTOQ_HD static inline
static uint16_t f2h(float f) { // IEEE binary16, round to nearest even
  uint32_t x; memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u, ex = (x >> 23) & 0xffu, m = x & 0x7fffffu;
  if (ex == 0xffu) return sign | 0x7c00u | (m ? 0x200u : 0u);
  const int e = (int)ex - 127 + 15;
  if (e >= 31) return sign | 0x7c00u;
  if (e <= 0) {
    if (e < -10) return sign;
    const uint32_t mm = m | 0x800000u; const int sh = 14 - e;
    uint32_t h = mm >> sh; const uint32_t rem = mm & ((1u << sh) - 1), half = 1u << (sh - 1);
    if (rem > half || (rem == half && (h & 1))) h++;
    return sign | h;
  }
  uint32_t h = ((uint32_t)e << 10) | (m >> 13); const uint32_t rem = m & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++;
  return sign | h;
}
static float h2f(uint16_t h) {
  const uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  float v;
  if (e == 0) v = ldexpf((float)m, -24);
  else if (e == 31) v = m ? NAN : INFINITY;
  else v = ldexpf((float)(m | 0x400), (int)e - 25);
  uint32_t b; memcpy(&b, &v, 4); b |= sign; memcpy(&v, &b, 4); return v;
}
struct __half2 { uint16_t lo, hi; };
static __half2 u2h(uint32_t u) { return __half2{(uint16_t)u, (uint16_t)(u >> 16)}; }
static uint32_t h2u(__half2 h) { return h.lo | ((uint32_t)h.hi << 16); }
static uint32_t lop3_and_or(uint32_t a, uint32_t b, uint32_t c) { return (a & b) | c; }
static __half2 __low2half2(__half2 h) { return __half2{h.lo, h.lo}; }
static __half2 __high2half2(__half2 h) { return __half2{h.hi, h.hi}; }
#define H2OP(name, expr) static __half2 name(__half2 a, __half2 b) { \
  auto f = [](uint16_t x, uint16_t y) { float p = h2f(x), q = h2f(y); return f2h(expr); }; \
  return __half2{f(a.lo, b.lo), f(a.hi, b.hi)}; }
H2OP(__hadd2, p + q)
H2OP(__hsub2, p - q)
H2OP(__hmul2, p * q)
static __half2 __hneg2(__half2 a) { return __half2{(uint16_t)(a.lo ^ 0x8000u), (uint16_t)(a.hi ^ 0x8000u)}; }
static __half2 __hfma2(__half2 a, __half2 b, __half2 c) {
  auto f = [](uint16_t x, uint16_t y, uint16_t z) { return f2h((float)((double)h2f(x) * h2f(y) + h2f(z))); };
  return __half2{f(a.lo, b.lo, c.lo), f(a.hi, b.hi, c.hi)};
}
`

// The warp emulator: reads a problem (header, packed weight, scales, zeros, F16 activations),
// runs mode "swapped", "mma" or "dequant", writes float64 outputs [M, N] (or the F16
// dequantized weight [N, K]); mode "partition" prints the stripe bookkeeping of "U P KS"
// lines, "fits" the fit rule of "kernel M N K group" lines.
const w4HostMain = `
template <class T> static void rd(FILE *f, T *p, size_t n) { if (fread(p, sizeof(T), n, f) != n) { fprintf(stderr, "short read\n"); exit(1); } }
// ldmatrix.m8n8 (b16): matrix q's 8 rows come from lanes 8q..8q+7's addresses; lane l gets
// row l/4, elements 2(l%4), 2(l%4)+1 of each matrix as register q.
static void ldmatrix(const uint8_t *smem, const uint32_t *addr, int nmat, uint32_t (*out)[4]) {
  for (int q = 0; q < nmat; q++)
    for (int l = 0; l < 32; l++) memcpy(&out[l][q], smem + addr[8 * q + l / 4] + 4 * (l % 4), 4);
}
// mma.m16n8k16 f16 -> f32 (here f64): a0 (g, 2t..), a1 (g+8, 2t..), a2 (g, 8+2t..), a3 (g+8, 8+2t..);
// b0 (k 2t.., n g), b1 (k 8+2t.., n g); c0 (g, 2t), c1 (g, 2t+1), c2 (g+8, 2t), c3 (g+8, 2t+1).
static void mma(const uint32_t (*a)[4], const uint32_t (*b)[2], double (*c)[4]) {
  double A[16][16], B[16][8];
  for (int l = 0; l < 32; l++) {
    const int g = l / 4, t = l % 4;
    for (int h = 0; h < 2; h++) {
      A[g][2 * t + h] = h2f((uint16_t)(a[l][0] >> (16 * h)));
      A[g + 8][2 * t + h] = h2f((uint16_t)(a[l][1] >> (16 * h)));
      A[g][8 + 2 * t + h] = h2f((uint16_t)(a[l][2] >> (16 * h)));
      A[g + 8][8 + 2 * t + h] = h2f((uint16_t)(a[l][3] >> (16 * h)));
      B[2 * t + h][g] = h2f((uint16_t)(b[l][0] >> (16 * h)));
      B[8 + 2 * t + h][g] = h2f((uint16_t)(b[l][1] >> (16 * h)));
    }
  }
  for (int l = 0; l < 32; l++) {
    const int g = l / 4, t = l % 4;
    for (int e = 0; e < 4; e++) {
      const int r = g + 8 * (e >> 1), n = 2 * t + (e & 1);
      double s = 0;
      for (int k = 0; k < 16; k++) s += A[r][k] * B[k][n];
      c[l][e] += s;
    }
  }
}
int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "partition")) {
    int U, P, KS;
    while (scanf("%d %d %d", &U, &P, &KS) == 3) {
      for (int b = 0; b <= P; b++) printf("%d ", stripe_begin(b, P, U));
      printf("|");
      for (int u = 0; u < U; u++) printf(" %d", stripe_owner(u, P, U));
      printf(" |");
      for (int b = 0; b < P; b++)
        for (int T = stripe_begin(b, P, U) / KS; T <= (stripe_begin(b + 1, P, U) - 1) / KS; T++) printf(" %d:%d:%d", b, T, stripe_slot(b, T, KS, P, U));
      printf("\n");
    }
    return 0;
  }
  if (argc > 1 && !strcmp(argv[1], "fits")) {
    int k; long long M, N, K, g;
    while (scanf("%d %lld %lld %lld %lld", &k, &M, &N, &K, &g) == 5) printf("%d\n", w4_stripes_fit(k, M, N, K, g));
    return 0;
  }
  FILE *f = fopen(argv[2], "rb");
  int32_t hdr[5]; rd(f, hdr, 5);
  const int M = hdr[0], N = hdr[1], K = hdr[2], group = hdr[3], asym = hdr[4], ng = K / group, nstrips = N / 64;
  std::vector<uint8_t> W((size_t)N * K / 2); rd(f, W.data(), W.size());
  std::vector<uint16_t> S((size_t)ng * N), Z(asym ? (size_t)ng * N : 0), A((size_t)M * K);
  rd(f, S.data(), S.size()); if (asym) rd(f, Z.data(), Z.size()); rd(f, A.data(), A.size());
  auto lane_words = [&](int nt, int kt, int lane, uint32_t *w) { memcpy(w, &W[(((size_t)nt * (K / 16) + kt) * 32 + lane) * 16], 16); };
  auto scale_vec = [&](const std::vector<uint16_t> &v, int gi, int nt, int g, uint32_t *w) { memcpy(w, &v[((size_t)gi * nstrips + nt) * 64 + g * 8], 16); };
  auto dq = [&](uint32_t w, uint32_t s, uint32_t z, uint32_t (&r)[4]) { if (asym) w4_dequant_word<true>(w, s, z, r); else w4_dequant_word<false>(w, s, z, r); };
  std::vector<double> out((size_t)M * N, 0.0);
  const std::string mode = argv[1];
  if (mode == "dequant") {
    std::vector<uint16_t> Wd((size_t)N * K, 0xffff);
    for (int nt = 0; nt < nstrips; nt++) for (int kt = 0; kt < K / 16; kt++) for (int lane = 0; lane < 32; lane++) {
      uint32_t w[4], s[4], z[4] = {0, 0, 0, 0};
      lane_words(nt, kt, lane, w); scale_vec(S, kt * 16 / group, nt, lane / 4, s); if (asym) scale_vec(Z, kt * 16 / group, nt, lane / 4, z);
      for (int j = 0; j < 4; j++) {
        uint32_t r[4]; dq(w[j], s[j], z[j], r);
        for (int q = 0; q < 4; q++) {
          int n, k; w4_word_coords(lane, j, q, n, k);
          memcpy(&Wd[(size_t)(nt * 64 + n) * K + kt * 16 + k], &r[q], 4);
        }
      }
    }
    fwrite(Wd.data(), 2, Wd.size(), stdout);
    return 0;
  }
  if (mode == "swapped") {
    const int mt8 = M <= 8 ? 1 : 2, R = 8 * mt8, G = w4_static_group(kW4Swapped, group), NG = G > 0 ? 256 / G : 1;
    std::vector<uint8_t> sa((size_t)R * 512);
    for (int nt = 0; nt < nstrips; nt++) {
      double acc[4][2][32][4] = {};
      for (int ks = 0; ks < K / 256; ks++) {
        const int k0 = ks * 256, gi0 = G > 0 ? k0 / G : k0 / group;
        for (int r = 0; r < R; r++) for (int c = 0; c < 32; c++) {
          uint16_t v[8] = {0};
          if (r < M) memcpy(v, &A[(size_t)r * K + k0 + 8 * c], 16);
          memcpy(&sa[w4_swz512(r, c)], v, 16);
        }
        for (int tl = 0; tl < 16; tl++) {
          uint32_t addr[32], b[32][4], a[4][32][4];
          for (int l = 0; l < 32; l++) { int row, chunk; w4_swapped_ldm(l, tl, mt8, row, chunk); addr[l] = w4_swz512(row, chunk); }
          ldmatrix(sa.data(), addr, 2 * mt8, b);
          for (int l = 0; l < 32; l++) {
            uint32_t w[4], s[4], z[4] = {0, 0, 0, 0};
            const int gi = gi0 + (G > 0 ? tl * 16 / G : 0);
            if (gi - gi0 >= NG) { fprintf(stderr, "group slot out of range\n"); return 1; }
            lane_words(nt, ks * 16 + tl, l, w); scale_vec(S, gi, nt, l / 4, s); if (asym) scale_vec(Z, gi, nt, l / 4, z);
            for (int jw = 0; jw < 4; jw++) { uint32_t r[4]; dq(w[jw], s[jw], z[jw], r); w4_swapped_afrag(r, a[jw][l]); }
          }
          for (int jw = 0; jw < 4; jw++) for (int n8 = 0; n8 < mt8; n8++) {
            uint32_t bb[32][2];
            for (int l = 0; l < 32; l++) bb[l][0] = b[l][2 * n8], bb[l][1] = b[l][2 * n8 + 1];
            mma(a[jw], bb, acc[jw][n8]);
          }
        }
      }
      for (int jw = 0; jw < 4; jw++) for (int n8 = 0; n8 < mt8; n8++) for (int l = 0; l < 32; l++) for (int e = 0; e < 4; e++) {
        int col, tok; w4_swapped_cfrag(l, jw, n8, e, col, tok);
        if (tok < M) out[(size_t)tok * N + nt * 64 + col] += acc[jw][n8][l][e];
      }
    }
  } else if (mode == "mma") {
    const int MT = M <= 32 ? 2 : 4, BM = 16 * MT, G = w4_static_group(kW4MMA, group);
    std::vector<uint8_t> sa((size_t)BM * 128);
    for (int mb = 0; mb * BM < M; mb++) for (int nt = 0; nt < nstrips; nt++) {
      std::vector<double> acc((size_t)MT * 8 * 32 * 4, 0.0);
      for (int ks = 0; ks < K / 64; ks++) {
        const int k0 = ks * 64, gi0 = G > 0 ? k0 / G : k0 / group;
        for (int r = 0; r < BM; r++) for (int c = 0; c < 8; c++) {
          uint16_t v[8] = {0};
          if (mb * BM + r < M) memcpy(v, &A[(size_t)(mb * BM + r) * K + k0 + 8 * c], 16);
          memcpy(&sa[swz(r, c)], v, 16);
        }
        for (int kt = 0; kt < 4; kt++) {
          uint32_t bf[32][4][4];
          for (int l = 0; l < 32; l++) {
            uint32_t w[4], s[4], z[4] = {0, 0, 0, 0};
            const int gi = gi0 + (G > 0 ? kt * 16 / G : 0);
            lane_words(nt, ks * 4 + kt, l, w); scale_vec(S, gi, nt, l / 4, s); if (asym) scale_vec(Z, gi, nt, l / 4, z);
            for (int j = 0; j < 4; j++) dq(w[j], s[j], z[j], bf[l][j]);
          }
          for (int mi = 0; mi < MT; mi++) {
            uint32_t addr[32], af[32][4];
            for (int l = 0; l < 32; l++) addr[l] = swz(mi * 16 + (l & 15), kt * 2 + (l >> 4));
            ldmatrix(sa.data(), addr, 4, af);
            for (int j = 0; j < 8; j++) {
              uint32_t bb[32][2]; double c[32][4];
              for (int l = 0; l < 32; l++) { bb[l][0] = bf[l][j / 2][2 * (j % 2)]; bb[l][1] = bf[l][j / 2][2 * (j % 2) + 1]; }
              for (int l = 0; l < 32; l++) for (int e = 0; e < 4; e++) c[l][e] = acc[(((size_t)mi * 8 + j) * 32 + l) * 4 + e];
              mma(af, bb, c);
              for (int l = 0; l < 32; l++) for (int e = 0; e < 4; e++) acc[(((size_t)mi * 8 + j) * 32 + l) * 4 + e] = c[l][e];
            }
          }
        }
      }
      for (int mi = 0; mi < MT; mi++) for (int j = 0; j < 8; j++) for (int l = 0; l < 32; l++) for (int e = 0; e < 4; e++) {
        int row, col; w4_mma_cfrag(l, mi, j, e, row, col);
        if (mb * BM + row < M) out[(size_t)(mb * BM + row) * N + nt * 64 + col] += acc[(((size_t)mi * 8 + j) * 32 + l) * 4 + e];
      }
    }
  }
  fwrite(out.data(), 8, out.size(), stdout);
  return 0;
}
`

// w4HostKernels builds the emulator once per test.
func w4HostKernels(t *testing.T) string {
	t.Helper()
	gxx := hostCXX(t, "the W4A16 stripe kernels")
	stripes, common := cudaSource(t, "gemm_w4a16_stripes.cuh"), cudaSource(t, "gemm_common.cuh")
	dev := strings.NewReplacer("static __device__ __forceinline__ ", "static ", "__device__ __forceinline__ ", "static ")
	var src strings.Builder
	src.WriteString(w4HostShims)
	src.WriteString(dev.Replace(cut(t, common, "static __device__ __forceinline__ uint32_t swz(", "\n\n")) + "\n")
	src.WriteString(dev.Replace(cut(t, common, "// The zero-point terms of the W4A16", "\n\n")) + "\n")
	src.WriteString(dev.Replace(cut(t, stripes, "// 32-bit arithmetic throughout", "// ---- Device-only pieces ----")))
	src.WriteString(w4HostMain)
	return compileHost(t, gxx, "w4", "gemm_w4a16_stripes.cuh", src.String())
}

// w4Problem writes the emulator's input for a 4-bit weight and F16 activations.
func w4Problem(t *testing.T, p *layout.PackedW4A16Tiled, a []float32, M int) string {
	var buf bytes.Buffer
	w := func(v any) { require.NoError(t, binary.Write(&buf, binary.LittleEndian, v)) }
	w([]int32{int32(M), int32(p.N), int32(p.K), int32(p.Group), map[bool]int32{true: 1}[p.Asym]})
	w(p.Data)
	w(p.Scales)
	if p.Asym {
		w(p.Zeros)
	}
	w(tensor.F32ToF16Slice(a))
	return tempFile(t, "problem.bin", buf.Bytes())
}

// exactDequant is the kernels' weight, independently: f16(f16(u - z) * f16(scale)) from the
// levels and F16 parameters layout.UnpackW4A16Tiled recovers (u - z is an exact small integer
// and the F32 product of two F16 values is exact, so one F16 rounding is the kernels' one).
func exactDequant(t *testing.T, p *layout.PackedW4A16Tiled) []uint16 {
	levels, scales, zeros, err := layout.UnpackW4A16Tiled(p)
	require.NoError(t, err)
	ng := p.K / p.Group
	out := make([]uint16, p.N*p.K)
	for n := 0; n < p.N; n++ {
		for k := 0; k < p.K; k++ {
			gi := n*ng + k/p.Group
			d := float32(levels[n*p.K+k]) // symmetric: level = u - 8
			if p.Asym {
				d = float32(levels[n*p.K+k]) - tensor.F16ToF32(zeros[gi])
			}
			out[n*p.K+k] = tensor.F32ToF16(d * tensor.F16ToF32(scales[gi]))
		}
	}
	return out
}

func runEmulator(t *testing.T, bin, mode, problem string) []byte {
	return hostOutput(t, bin, nil, mode, problem)
}

// The three new W4A16 data paths against float64 sums of the exactly dequantized weight,
// over groups the kernels instantiate (static 32, 64, 128, 256; one group per unit at 512
// and per-channel), both symmetries and M on both sides of the token-tile sizes.
func TestHostW4A16Emulation(t *testing.T) {
	bin := w4HostKernels(t)
	type tc struct {
		mode    string
		M, N, K int
		s       quant.Scheme
	}
	g := func(size int, sym bool) quant.Scheme {
		return quant.Scheme{Bits: 4, Symmetric: sym, Granularity: quant.PerGroup, GroupSize: size}
	}
	pc := func(sym bool) quant.Scheme {
		return quant.Scheme{Bits: 4, Symmetric: sym, Granularity: quant.PerChannel}
	}
	cases := []tc{
		{"swapped", 1, 128, 512, g(128, true)}, {"swapped", 5, 192, 512, g(32, false)},
		{"swapped", 8, 64, 768, g(64, true)}, {"swapped", 9, 128, 512, g(256, false)},
		{"swapped", 16, 128, 1024, g(512, true)}, {"swapped", 13, 64, 512, pc(false)},
		{"mma", 17, 256, 256, g(32, true)}, {"mma", 32, 320, 192, g(64, false)},
		{"mma", 33, 128, 256, g(128, true)}, {"mma", 100, 64, 128, pc(false)},
		{"dequant", 1, 128, 256, g(32, false)}, {"dequant", 1, 192, 128, pc(true)},
	}
	for i, c := range cases {
		t.Run(fmt.Sprintf("%s_M%d_N%d_K%d_%s", c.mode, c.M, c.N, c.K, c.s), func(t *testing.T) {
			q := quantize4(t, c.N, c.K, c.s, uint64(700+i))
			p, err := layout.PackW4A16Tiled(q)
			require.NoError(t, err)
			a := f16Values(uint64(800+i), c.M*c.K, 1)
			prob := w4Problem(t, p, a, c.M)
			wd := exactDequant(t, p)
			out := runEmulator(t, bin, c.mode, prob)
			if c.mode == "dequant" {
				got := make([]uint16, c.N*c.K)
				require.NoError(t, binary.Read(bytes.NewReader(out), binary.LittleEndian, got))
				for i := range wd {
					require.Equal(t, wd[i], got[i], "dequantized weight [n=%d, k=%d]", i/c.K, i%c.K)
				}
				return
			}
			got := make([]float64, c.M*c.N)
			require.NoError(t, binary.Read(bytes.NewReader(out), binary.LittleEndian, got))
			worst := 0.0
			for m := 0; m < c.M; m++ {
				for n := 0; n < c.N; n++ {
					var want, mag float64
					for k := 0; k < c.K; k++ {
						x := float64(a[m*c.K+k]) * float64(tensor.F16ToF32(wd[n*c.K+k]))
						want += x
						mag += math.Abs(x)
					}
					d := math.Abs(got[m*c.N+n]-want) / max(mag, 1e-30)
					worst = max(worst, d)
					require.LessOrEqual(t, d, 1e-12, "out[m=%d, n=%d] = %g, want %g", m, n, got[m*c.N+n], want)
				}
			}
			t.Logf("worst |got - want| / sum|terms| = %.2g", worst)
			// And the CPU reference (F32 weights, F32 sums) within the GPU tests' tolerance.
			ref, err := quant.GemmW4A16(a, c.M, q, nil)
			require.NoError(t, err)
			f32 := make([]float32, len(got))
			for i, v := range got {
				f32[i] = float32(v)
			}
			require.LessOrEqual(t, relFrobenius(f32, ref), 2e-3)
		})
	}
}

// The stripe partition: blocks own contiguous, non-empty unit ranges covering all units;
// stripe_owner names the block whose range holds each unit; a tile with several owners is a
// first or last tile of each of them, and the slots (0 for a block's first tile, 1 for its
// last) never put two partial segments of one block in the same slot.
func TestHostW4A16Partition(t *testing.T) {
	bin := w4HostKernels(t)
	type pc struct{ U, P, KS int }
	cases := []pc{{1, 1, 1}, {16, 16, 16}, {17, 16, 16}, {1024, 264, 16}, {2048, 132, 64}, {7, 3, 2}, {100, 99, 7}, {64, 1, 64}}
	r := testutil.Rand(41)
	for range 40 {
		ks := 1 + r.IntN(70)
		u := ks * (1 + r.IntN(60))
		cases = append(cases, pc{u, 1 + r.IntN(u), ks})
	}
	var in bytes.Buffer
	for _, c := range cases {
		fmt.Fprintf(&in, "%d %d %d\n", c.U, c.P, c.KS)
	}
	lines := runHost(t, bin, in.Bytes(), "partition")
	require.Len(t, lines, len(cases))
	for i, c := range cases {
		parts := strings.Split(lines[i], "|")
		require.Len(t, parts, 3, "case %v", c)
		var begin, owner []int
		for _, f := range strings.Fields(parts[0]) {
			var v int
			fmt.Sscan(f, &v)
			begin = append(begin, v)
		}
		for _, f := range strings.Fields(parts[1]) {
			var v int
			fmt.Sscan(f, &v)
			owner = append(owner, v)
		}
		require.Len(t, begin, c.P+1)
		require.Equal(t, 0, begin[0])
		require.Equal(t, c.U, begin[c.P])
		for b := 0; b < c.P; b++ {
			require.Less(t, begin[b], begin[b+1], "case %v: block %d is empty", c, b)
			for u := begin[b]; u < begin[b+1]; u++ {
				require.Equal(t, b, owner[u], "case %v: owner of unit %d", c, u)
			}
		}
		slot := map[[2]int]int{} // (block, tile) -> slot
		for _, f := range strings.Fields(parts[2]) {
			var b, tile, s int
			fmt.Sscanf(f, "%d:%d:%d", &b, &tile, &s)
			slot[[2]int{b, tile}] = s
		}
		for tile := 0; tile < c.U/c.KS; tile++ {
			first, last := owner[tile*c.KS], owner[(tile+1)*c.KS-1]
			if first == last {
				continue
			}
			for b := first; b <= last; b++ {
				firstTile, lastTile := begin[b]/c.KS, (begin[b+1]-1)/c.KS
				require.True(t, tile == firstTile || tile == lastTile, "case %v: tile %d is inside block %d's range", c, tile, b)
				want := 1
				if tile == firstTile {
					want = 0
				}
				require.Equal(t, want, slot[[2]int{b, tile}], "case %v: slot of block %d in tile %d", c, b, tile)
			}
		}
	}
}

// The C fit rule of the stripe kernels equals cgo.W4A16Fits.
func TestHostW4A16Fits(t *testing.T) {
	bin := w4HostKernels(t)
	r := testutil.Rand(42)
	type fc struct {
		k              Kernel
		M, N, K, group int
	}
	var cs []fc
	groups := []int{16, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 4096}
	for range 3000 {
		k := []Kernel{SwappedStripes, MMAStripes}[r.IntN(2)]
		M := []int{1, 8, 16, 17, 32, 33, 64, 256, 1024, 1 << 17}[r.IntN(10)]
		N := 64 * (1 + r.IntN(1200))
		if r.IntN(8) == 0 {
			N += 32
		}
		K := 64 * (1 + r.IntN(300))
		cs = append(cs, fc{k, M, N, K, groups[r.IntN(len(groups))]})
		cs = append(cs, fc{k, M, N, K, K}) // per-channel
	}
	var in bytes.Buffer
	code := map[Kernel]int{SwappedStripes: 1, MMAStripes: 2}
	for _, c := range cs {
		fmt.Fprintf(&in, "%d %d %d %d %d\n", code[c.k], c.M, c.N, c.K, c.group)
	}
	got := runHost(t, bin, in.Bytes(), "fits")
	require.Len(t, got, len(cs))
	fits := 0
	for i, c := range cs {
		want := W4A16Fits(c.k, c.M, c.N, c.K, c.group)
		require.Equal(t, map[bool]string{true: "1", false: "0"}[want], got[i], "%s M=%d N=%d K=%d group %d", c.k, c.M, c.N, c.K, c.group)
		if want {
			fits++
		}
	}
	require.Greater(t, fits, len(cs)/10, "the cases exercise both answers")
	require.Less(t, fits, len(cs)*9/10)
}
