package cgo

// Host checks of the kernels' arithmetic, for machines without a GPU (CI): the device
// functions that must equal the Go reference bit for bit (ComputeParams, QuantizeValue,
// DequantizeValue, the histogram exponent and bin, KLLog, the entropy and MSE threshold
// searches) are cut out of cuda/*.cu by their markers, compiled for the host with g++ and
// shims for the CUDA intrinsics (each _rn intrinsic is one IEEE operation, which host
// double/float arithmetic without contraction is too), run over many inputs and compared
// with packages quant and calib. The block-level code runs with one thread (blockDim 1),
// which computes every candidate in the same order as the GPU's threads do. What this
// cannot check (thread mapping, shared memory, loads) the cuda-tagged tests check on a GPU.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/autoq/autoq/calib"
	"github.com/autoq/autoq/internal/testutil"
	"github.com/autoq/autoq/quant"
)

const hostShims = `#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <cfloat>
#include <cmath>
#include <vector>
#include <algorithm>
#define AUTOQ_HIST_BINS 2048
struct { int x; } threadIdx = {0}, blockDim = {1};
static void __syncthreads() {}
static int atomicMax(int* p, int v){ int o=*p; if(v>o)*p=v; return o; }
static int atomicMin(int* p, int v){ int o=*p; if(v<o)*p=v; return o; }
static float __fdiv_rn(float a,float b){return a/b;}
static float __fmul_rn(float a,float b){return a*b;}
static float __fadd_rn(float a,float b){return a+b;}
static float __fsub_rn(float a,float b){return a-b;}
static double __dmul_rn(double a,double b){return a*b;}
static double __dadd_rn(double a,double b){return a+b;}
static double __dsub_rn(double a,double b){return a-b;}
static double __ddiv_rn(double a,double b){return a/b;}
static double __ull2double_rn(unsigned long long v){return (double)v;}
static unsigned __float_as_uint(float x){unsigned v;memcpy(&v,&x,4);return v;}
static float __int_as_float(int v){float x;memcpy(&x,&v,4);return x;}
static long long __double_as_longlong(double x){long long v;memcpy(&v,&x,8);return v;}
static double __longlong_as_double(long long v){double x;memcpy(&x,&v,8);return x;}
static int __clz(int x){return x==0?32:__builtin_clz((unsigned)x);}
static float __frcp_rn(float x){return 1.0f/x;}
// cvt.rzi.s32.f32: truncate, saturate to the int32 range, NaN -> 0.
static int __float2int_rz(float x){ if(x!=x) return 0; if(x>=2147483648.0f) return 2147483647; if(x<-2147483648.0f) return (-2147483647-1); return (int)x; }
struct uint2 { unsigned x, y; };
using std::min; using std::max;
`

const hostMain = `
template<class T> static void rd(FILE*f, T* p, size_t n){ if(fread(p,sizeof(T),n,f)!=n){fprintf(stderr,"short read\n"); exit(1);} }
int main(int argc, char** argv){
  if (argc > 1 && !strcmp(argv[1], "params")) {
    unsigned a,b; int bits,sym;
    while(scanf("%x %x %d %d",&a,&b,&bits,&sym)==4){
      float lo,hi; memcpy(&lo,&a,4); memcpy(&hi,&b,4);
      float s; int32_t z; autoq_compute_params_dev(lo,hi,bits,sym,&s,&z);
      int32_t qlo = sym ? -(1<<(bits-1)) : 0, qhi = sym ? (1<<(bits-1))-1 : (1<<bits)-1;
      float xs[3]={lo,hi,__fmul_rn(__fadd_rn(lo,hi),0.5f)};
      printf("%08x %d", __float_as_uint(s), z);
      for(int k=0;k<3;k++){ int32_t q=autoq_quantize_value(xs[k],s,z,qlo,qhi); printf(" %d %08x", q, __float_as_uint(autoq_dequantize_value(q,s,z))); }
      uint32_t m = a & 0x7fffffffu;
      if (m != 0 && m < 0x7f800000u) { int e = exp_for_bits(m); int e3 = e+3 > 117 ? 117 : e+3; printf(" %d %u %u", e, bin_index(b & 0x7fffffffu, e3), bin_index(m, e)); }
      printf("\n");
    }
    return 0;
  }
  if (argc > 1 && !strcmp(argv[1], "levels")) {
    // quantize_persistent.cu's chunk arithmetic: rint_div8 then level_bits, 8 values a line.
    unsigned sb; int zero, bits, sym;
    while(scanf("%x %d %d %d",&sb,&zero,&bits,&sym)==4){
      float x[8], r[8], scale; memcpy(&scale,&sb,4);
      for(int j=0;j<8;j++){ unsigned xb; if(scanf("%x",&xb)!=1) return 1; memcpy(&x[j],&xb,4); }
      rint_div8(x, scale, r);
      for(int j=0;j<8;j++) printf("%u ", sym ? level_bits<true>(r[j], zero, bits) : level_bits<false>(r[j], zero, bits));
      printf("\n");
    }
    return 0;
  }
  if (argc > 1 && !strcmp(argv[1], "kllog")) {
    unsigned long long b;
    while(scanf("%llx",&b)==1){ double y=kl_log(__longlong_as_double((long long)b)); printf("%016llx\n",(unsigned long long)__double_as_longlong(y)); }
    return 0;
  }
  if (argc > 1 && !strcmp(argv[1], "pack")) {
    int bits, sym; long long cols;
    while(scanf("%d %d %lld",&bits,&sym,&cols)==3){
      std::vector<int32_t> v(cols);
      for(auto& x : v) if(scanf("%d",&x)!=1){fprintf(stderr,"short input\n"); return 1;}
      int64_t rb = autoq_row_bytes(cols, bits);
      std::vector<uint8_t> by(rb), ch(rb + 8, 0);
      for(int64_t cb=0; cb<rb; cb++) by[cb] = (uint8_t)autoq_packed_byte(cb, cols, bits, [&](int64_t c){ return autoq_level_field(v[c], bits); });
      for(int64_t k=0; k+8<=cols; k+=8){ uint32_t f[8]; for(int j=0;j<8;j++) f[j]=autoq_level_field(v[k+j],bits); autoq_store_chunk(ch.data()+k/8*bits, autoq_pack8(f,bits), bits); }
      for(auto b : by) printf("%02x", b);
      printf(" ");
      if(cols%8==0) for(int64_t i=0;i<rb;i++) printf("%02x", ch[i]); else printf("-");
      for(int64_t c=0;c<cols;c++) printf(" %d", autoq_load_level(by.data(), c, bits, sym));
      printf("\n");
    }
    return 0;
  }
  FILE* f=fopen(argv[2],"rb");
  int32_t nh, method, levels, zs, np; rd(f,&nh,1); rd(f,&method,1); rd(f,&levels,1); rd(f,&zs,1); rd(f,&np,1);
  int G=levels+1;
  std::vector<int32_t> lo(np),hi(np),idx((size_t)kCands*G),last(kCands);
  if(np){ rd(f,lo.data(),np); rd(f,hi.data(),np); rd(f,idx.data(),idx.size()); rd(f,last.data(),kCands);}
  std::vector<unsigned long long> cnt((size_t)nh*kBins); rd(f,cnt.data(),cnt.size());
  EntropyPlan plan{lo.data(),hi.data(),idx.data(),last.data(),np,G};
  std::vector<double> scratch(entropy_scratch_doubles(np>0?np:1));
  for(int h=0;h<nh;h++){
    int32_t bin=-1, empty=0; double obj=0;
    const unsigned long long* c=cnt.data()+(size_t)h*kBins;
    if(method==3) mse_block(c, levels, &bin, &obj);
    else entropy_block(c, zs, plan, scratch.data(), &bin, &obj, &empty);
    unsigned long long ob; memcpy(&ob,&obj,8);
    printf("%d %016llx %d\n", bin, ob, empty);
  }
}
`

// cut returns src from the first occurrence of start up to (not including) end.
func cut(t *testing.T, src, start, end string) string {
	t.Helper()
	a := strings.Index(src, start)
	if a < 0 {
		t.Fatalf("marker %q not found in the CUDA source (update hostcheck_test.go)", start)
	}
	if end == "" {
		return src[a:]
	}
	b := strings.Index(src[a:], end)
	if b < 0 {
		t.Fatalf("marker %q not found after %q", end, start)
	}
	return src[a : a+b]
}

// hostKernels builds the host program once per test binary.
func hostKernels(t *testing.T) string {
	t.Helper()
	gxx := hostCXX(t, "the kernel arithmetic")
	common, bins, thr, qp := cudaSource(t, "common.cuh"), cudaSource(t, "histogram_bins.cuh"), cudaSource(t, "threshold.cu"), cudaSource(t, "quantize_chunk.cuh")
	dev := strings.NewReplacer("__device__ __forceinline__ ", "static ", "__device__ ", "", "__host__ ", "", "__shared__ ", "static ", "__forceinline__ ", "")
	var src strings.Builder
	src.WriteString(hostShims)
	src.WriteString(dev.Replace(cut(t, common, "__device__ __forceinline__ bool autoq_is_finite_bits", "")))
	src.WriteString(dev.Replace(cut(t, qp, "// rint(x / scale) with float32 IEEE division", "} // namespace")))
	src.WriteString(dev.Replace(cut(t, bins, "// calib.ExpFor on the bits", "")))
	src.WriteString(dev.Replace(cut(t, thr, "constexpr int kBins", "__global__ void kllog_kernel")))
	src.WriteString(dev.Replace(cut(t, thr, "// calib.searchCandidates", "__global__ void thresholds_kernel")))
	src.WriteString(hostMain)
	return compileHost(t, gxx, "kernels", "the kernels", src.String())
}

// hostCXX is the path of g++; without it the test is skipped (what: whose host checks).
func hostCXX(t *testing.T, what string) string {
	t.Helper()
	gxx, err := exec.LookPath("g++")
	if err != nil {
		t.Skipf("g++ not found: host checks of %s skipped", what)
	}
	return gxx
}

// cudaSource is the text of cuda/name.
func cudaSource(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "cuda", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// tempFile writes data to a file called name in a new temporary directory; it returns the path.
func tempFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// compileHost compiles the C++ program src, a host copy of what `of` names, with gxx into a
// binary called name, with no contraction into fma (as the kernels' _rn intrinsics).
func compileHost(t *testing.T, gxx, name, of, src string) string {
	t.Helper()
	cpp := tempFile(t, name+".cpp", []byte(src))
	bin := filepath.Join(filepath.Dir(cpp), name)
	if out, err := exec.Command(gxx, "-std=c++17", "-O2", "-ffp-contract=off", "-o", bin, cpp).CombinedOutput(); err != nil {
		t.Fatalf("compiling the host copy of %s: %v\n%s", of, err, out)
	}
	return bin
}

// hostOutput runs bin with args on stdin and returns its standard output.
func hostOutput(t *testing.T, bin string, stdin []byte, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("host program %s %v: %v", filepath.Base(bin), args, err)
	}
	return out
}

// runHost is hostOutput as lines.
func runHost(t *testing.T, bin string, stdin []byte, args ...string) []string {
	t.Helper()
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(hostOutput(t, bin, stdin, args...)))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines
}

func TestHostKernelArithmetic(t *testing.T) {
	bin := hostKernels(t)
	t.Run("params-quantize-bins", func(t *testing.T) {
		r := testutil.Rand(30)
		type pair struct {
			lo, hi float32
			bits   int
			sym    bool
		}
		var cs []pair
		add := func(a, b float32) {
			for bits := quant.MinBits; bits <= quant.MaxBits; bits++ {
				cs = append(cs, pair{min(a, b), max(a, b), bits, true}, pair{min(a, b), max(a, b), bits, false})
			}
		}
		special := []float32{0, float32(math.Copysign(0, -1)), 1, -1, 1e-45, -1e-45, 3e-45, 1e-40, 1.17549435e-38,
			math.MaxFloat32, -math.MaxFloat32, 0.5, 127.5, 7.5, 1e-30, 1e30, 6.1e-5, 65504, -63.75, 2.5}
		for _, a := range special {
			for _, b := range special {
				add(a, b)
			}
		}
		for range 20000 {
			add(math.Float32frombits(r.Uint32()&0xff7fffff), math.Float32frombits(r.Uint32()&0xff7fffff))
			g := testutil.Gaussian(r, 2, 1)
			add(g[0], g[1])
			add(math.Float32frombits(r.Uint32()&0x807fffff), math.Float32frombits(r.Uint32()&0x807fffff)) // subnormals
		}
		var in bytes.Buffer
		for _, x := range cs {
			fmt.Fprintf(&in, "%x %x %d %d\n", math.Float32bits(x.lo), math.Float32bits(x.hi), x.bits, map[bool]int{true: 1}[x.sym])
		}
		got := runHost(t, bin, in.Bytes(), "params")
		if len(got) != len(cs) {
			t.Fatalf("%d results for %d cases", len(got), len(cs))
		}
		bad := 0
		for i, x := range cs {
			s := quant.Scheme{Bits: x.bits, Symmetric: x.sym, Granularity: quant.PerChannel}
			scale, zero := s.ComputeParams(x.lo, x.hi)
			want := fmt.Sprintf("%08x %d", math.Float32bits(scale), zero)
			for _, v := range []float32{x.lo, x.hi, float32(float32(x.lo+x.hi) * 0.5)} {
				q := s.QuantizeValue(v, scale, zero)
				want += fmt.Sprintf(" %d %08x", q, math.Float32bits(quant.DequantizeValue(q, scale, zero)))
			}
			if m := math.Float32bits(x.lo) & 0x7fffffff; m != 0 && m < 0x7f800000 {
				e := calib.ExpFor(x.lo)
				e3 := min(e+3, 117)
				b := calib.BinIndex(x.hi, e3)
				if math.Ldexp(math.Abs(float64(x.hi)), -e3) >= calib.NumBins {
					b = calib.NumBins - 1 // outside the histogram: the kernel clamps (never happens with exp from absmax)
				}
				want += fmt.Sprintf(" %d %d %d", e, b, calib.BinIndex(x.lo, e))
			}
			if got[i] != want {
				if bad < 5 {
					t.Errorf("lo=%g hi=%g bits=%d sym=%v (scale, zero, then level and dequantized bits of lo, hi, mid; exp and bins):\n got  %s\n want %s",
						x.lo, x.hi, x.bits, x.sym, got[i], want)
				}
				bad++
			}
		}
		if bad > 0 {
			t.Errorf("%d of %d cases differ", bad, len(cs))
		}
	})
	t.Run("pack", func(t *testing.T) { hostPackCheck(t, bin) })
	t.Run("levels", func(t *testing.T) { hostLevelsCheck(t, bin) })
	t.Run("kllog", func(t *testing.T) {
		r := testutil.Rand(31)
		xs := []float64{0, 1, 2, 0.5, math.E, 1e-300, 5e-324, math.MaxFloat64, math.Sqrt2, math.Sqrt2 / 2, 1 + 1e-15, 1 - 1e-16, -1, math.Inf(1)}
		for range 50000 {
			xs = append(xs, math.Float64frombits(r.Uint64()&0x7fefffffffffffff|1))
		}
		for n := 1; n <= 5000; n++ {
			xs = append(xs, float64(n))
		}
		var in bytes.Buffer
		for _, x := range xs {
			fmt.Fprintf(&in, "%x\n", math.Float64bits(x))
		}
		got := runHost(t, bin, in.Bytes(), "kllog")
		for i, x := range xs {
			want := calib.KLLog(x)
			var g uint64
			fmt.Sscanf(got[i], "%x", &g)
			if g != math.Float64bits(want) && !(math.IsNaN(want) && math.IsNaN(math.Float64frombits(g))) {
				t.Fatalf("KLLog(%v): got 0x%016x, want 0x%016x (%v)", x, g, math.Float64bits(want), want)
			}
		}
	})
	t.Run("thresholds", func(t *testing.T) {
		hs := calibHistogramsHost()
		for _, opt := range []calib.Options{
			{Method: calib.MethodEntropy, Levels: 127, ZeroSpike: true}, {Method: calib.MethodEntropy, Levels: 127},
			{Method: calib.MethodEntropy, Levels: 255, ZeroSpike: true}, {Method: calib.MethodEntropy, Levels: 7},
			{Method: calib.MethodMSE, Levels: 127}, {Method: calib.MethodMSE, Levels: 255}, {Method: calib.MethodMSE, Levels: 7},
		} {
			var buf bytes.Buffer
			w := func(v any) { _ = binary.Write(&buf, binary.LittleEndian, v) }
			p := &calib.EntropyPlan{}
			if opt.Method == calib.MethodEntropy {
				p = calib.EntropyPlanFor(opt.Levels + 1) // the plan the GPU gets (threshold.go)
			}
			w([]int32{int32(len(hs)), int32(opt.Method), int32(opt.Levels), map[bool]int32{true: 1}[opt.ZeroSpike], int32(len(p.Lo))})
			if len(p.Lo) > 0 {
				idx := make([]int32, len(p.Idx))
				for i, x := range p.Idx {
					idx[i] = int32(x)
				}
				w(p.Lo)
				w(p.Hi)
				w(idx)
				w(p.Last)
			}
			for _, h := range hs {
				w(h.Counts[:])
			}
			got := runHost(t, bin, nil, "thresholds", tempFile(t, "hists.bin", buf.Bytes()))
			for i, h := range hs {
				want, err := calib.Compute(h, opt)
				if err != nil {
					t.Fatal(err)
				}
				var b, empty int
				var ob uint64
				fmt.Sscanf(got[i], "%d %x %d", &b, &ob, &empty)
				if want.Empty {
					if empty != 1 && h.HasExp && h.AbsMax != 0 {
						t.Errorf("%v, %s: want empty, got bin %d", opt, h.Name, b)
					}
					continue
				}
				obj := math.Float64frombits(ob)
				if opt.Method == calib.MethodMSE {
					obj = math.Ldexp(obj, 2*h.Exp) / float64(h.Count)
				}
				if b != want.Bin || math.Float64bits(obj) != math.Float64bits(want.KL) {
					t.Errorf("%v, %s: got bin %d objective %v, want bin %d objective %v", opt, h.Name, b, obj, want.Bin, want.KL)
				}
			}
		}
	})
}

// calibHistogramsHost: varied histograms (the GPU test's set, smaller).
func calibHistogramsHost() []*calib.Histogram {
	r := testutil.Rand(32)
	hs := variedHistograms(r, []int{100, 5000, 1 << 15}, 1<<14)
	hs = append(hs, onlyZeroHistogram())
	for i := 0; i < 20; i++ {
		hs.add(fmt.Sprint("st", i), testutil.StudentT(r, 1<<12, 2+float64(i%5)))
	}
	return hs
}

// hostPackCheck runs the level storage helpers of common.cuh (the byte kernel's
// autoq_packed_byte, the chunk kernels' autoq_pack8 + autoq_store_chunk, the dequantize
// kernel's autoq_load_level) on random rows of every width and symmetry and compares them
// with quant.PackLevels and the levels themselves.
func hostPackCheck(t *testing.T, bin string) {
	r := testutil.Rand(33)
	type packCase struct {
		s      quant.Scheme
		levels []int32
	}
	var cs []packCase
	var in bytes.Buffer
	for bits := quant.MinBits; bits <= quant.MaxBits; bits++ {
		for _, sym := range []bool{true, false} {
			s := quant.Scheme{Bits: bits, Symmetric: sym, Granularity: quant.PerChannel}
			lo, hi := s.QRange()
			for _, cols := range []int{1, 2, 3, 5, 7, 8, 9, 11, 15, 16, 17, 24, 40, 63, 64, 100, 128} {
				for rep := 0; rep < 3; rep++ {
					lv := make([]int32, cols)
					for i := range lv {
						lv[i] = lo + int32(r.IntN(int(hi-lo+1)))
					}
					lv[0], lv[cols-1] = lo, hi
					cs = append(cs, packCase{s, lv})
					fmt.Fprintf(&in, "%d %d %d", bits, map[bool]int{true: 1}[sym], cols)
					for _, v := range lv {
						fmt.Fprintf(&in, " %d", v)
					}
					in.WriteByte('\n')
				}
			}
		}
	}
	got := runHost(t, bin, in.Bytes(), "pack")
	if len(got) != len(cs) {
		t.Fatalf("%d results for %d cases", len(got), len(cs))
	}
	for i, c := range cs {
		packed, err := quant.PackLevels(c.s, c.levels, 1, len(c.levels))
		if err != nil {
			t.Fatal(err)
		}
		h := fmt.Sprintf("%x", packed)
		chunk := "-"
		if len(c.levels)%8 == 0 {
			chunk = h
		}
		want := h + " " + chunk
		for _, v := range c.levels {
			want += fmt.Sprintf(" %d", v)
		}
		if got[i] != want {
			t.Fatalf("%s, %d levels %v:\n got  %s\n want %s", c.s, len(c.levels), c.levels, got[i], want)
		}
	}
}

// hostLevelsCheck runs quantize_persistent.cu's chunk arithmetic (rint_div8, then the
// branch-free level_bits) on finite values around and beyond every range, near ties and with
// scales from subnormal to huge, and compares the stored fields with
// quant.Scheme.QuantizeValue.
func hostLevelsCheck(t *testing.T, bin string) {
	r := testutil.Rand(34)
	type lc struct {
		s     quant.Scheme
		scale float32
		zero  int32
		x     [8]float32
	}
	var cs []lc
	scales := []float32{1, 0.5, 0.013, 1e-3, 3.7e-5, 1e-30, 1.2e-38, 1e-44, 1e30, 3e38, 0.1, 7.5}
	for bits := quant.MinBits; bits <= quant.MaxBits; bits++ {
		for _, sym := range []bool{true, false} {
			s := quant.Scheme{Bits: bits, Symmetric: sym, Granularity: quant.PerChannel}
			lo, hi := s.QRange()
			for range 400 {
				c := lc{s: s, scale: scales[r.IntN(len(scales))]}
				if r.IntN(3) == 0 {
					c.scale = math.Float32frombits(r.Uint32()&0x7f7fffff | 1)
				}
				if !sym {
					c.zero = int32(r.IntN(int(hi - lo + 1)))
				}
				for j := range c.x {
					var n float64
					switch r.IntN(5) {
					case 0: // a tie, exactly
						n = float64(r.IntN(int(hi-lo)+40)) + float64(lo) - 20 + 0.5
					case 1: // just beside a tie
						n = float64(r.IntN(int(hi-lo)+40)) + float64(lo) - 20 + 0.5 + (r.Float64()-0.5)*1e-6
					case 2: // far outside the range
						n = (r.Float64() - 0.5) * 1e12
					default:
						n = (r.Float64() - 0.5) * float64(hi-lo+20)
					}
					c.x[j] = float32(n * float64(c.scale))
					if r.IntN(20) == 0 {
						c.x[j] = math.Float32frombits(r.Uint32() & 0xff7fffff) // any finite value
					}
				}
				cs = append(cs, c)
			}
		}
	}
	var in bytes.Buffer
	for _, c := range cs {
		fmt.Fprintf(&in, "%x %d %d %d", math.Float32bits(c.scale), c.zero, c.s.Bits, map[bool]int{true: 1}[c.s.Symmetric])
		for _, x := range c.x {
			fmt.Fprintf(&in, " %x", math.Float32bits(x))
		}
		in.WriteByte('\n')
	}
	got := runHost(t, bin, in.Bytes(), "levels")
	if len(got) != len(cs) {
		t.Fatalf("%d results for %d cases", len(got), len(cs))
	}
	for i, c := range cs {
		want := ""
		for _, x := range c.x {
			q := c.s.QuantizeValue(x, c.scale, c.zero)
			want += fmt.Sprintf("%d ", uint32(q)&(1<<c.s.Bits-1))
		}
		if strings.TrimSpace(got[i]) != strings.TrimSpace(want) {
			t.Fatalf("%s scale %g zero %d x %v:\n got  %s\n want %s", c.s, c.scale, c.zero, c.x, got[i], want)
		}
	}
}
