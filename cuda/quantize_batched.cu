// quantize_batched.cu: weight quantization of several tensors in one launch, row by row (the
// "batched-rows" kernel; autoq_quantize_batch, and autoq_quantize with
// AUTOQ_QUANTIZE_BATCHED_ROWS for one tensor). The same bits as every quantize kernel
// (quantize_chunk.cuh: rint_div8, the branch-free level_bits).
//
// Why (issue 18): the persistent kernel maps each flat 8-value chunk to its row and group by
// two multiply-shift divisions and loads its scale per chunk, and every tensor is its own
// launch with its own ramp. Here a warp owns a row at a time (all jobs' rows form one list;
// warps stride over it): the row's base addresses and, per-channel, its one scale are computed
// once per row; a lane walks chunks lane, lane + 32, ... with U = 4 of them in flight, the
// group by one multiply-shift. Jobs of one dtype and scheme share a launch (up to 32 per
// launch, passed by value as a __grid_constant__ parameter: no descriptor upload).
//
// Prediction (H100, before any run): 11008x4096 F16 -> int8, 90 MB + 45 MB: the persistent
// kernel ran 0.062-0.071 ms (49-63% of peak); with a third fewer instructions per chunk and
// 16 KB in flight per block (8 blocks per SM) it should stream at ~2.4-2.6 TB/s, 70-77% of
// 3.35 TB/s. Several small tensors per launch save a launch each (~3-5 us).
#include <algorithm>

#include "common.cuh"
#include "quantize_chunk.cuh"

namespace {

constexpr int kMaxJobs = 32, kThreads = 256, kU = 4;

struct BJob {
  const void *w;
  uint8_t *q;
  const float *scales;
  const int32_t *zeros;
  uint32_t cpr;     // chunks per row
  FastDiv cpg;      // chunks per group
  uint32_t groups;  // per row
  int per_tensor;
};

struct BJobs {
  BJob j[kMaxJobs];
  int row_begin[kMaxJobs + 1]; // prefix sums of rows
  int n;
  int bits;
};

template <int DT, int BITS, bool SYM>
__global__ void __launch_bounds__(kThreads) quantize_batched_kernel(const __grid_constant__ BJobs js, int32_t *nonfinite) {
  constexpr int VB = DT == AUTOQ_F32 ? 32 : 16; // bytes of one chunk's values
  const int lane = threadIdx.x & 31;
  const int warps = gridDim.x * (kThreads / 32);
  const int total = js.row_begin[js.n];
  const int bits = BITS ? BITS : js.bits;
  int j = 0;
  for (int row = blockIdx.x * (kThreads / 32) + (threadIdx.x >> 5); row < total; row += warps) {
    while (row >= js.row_begin[j + 1]) j++; // rows are visited in increasing order
    const BJob &b = js.j[j];
    const int r = row - js.row_begin[j];
    const uint8_t *w = (const uint8_t *)b.w + (size_t)r * b.cpr * VB;
    uint8_t *q = b.q + (size_t)r * b.cpr * bits;
    const uint32_t pbase = b.per_tensor ? 0u : (uint32_t)r * b.groups;
    float s_row = 0.0f;
    int32_t z_row = 0;
    if (b.per_tensor || b.groups == 1) {
      s_row = __ldg(b.scales + pbase);
      if (!SYM) z_row = __ldg(b.zeros + pbase);
    }
    bool bad = false;
    for (uint32_t c0 = lane; c0 < b.cpr; c0 += 32 * kU) {
      Raw<DT> raw[kU];
#pragma unroll
      for (int u = 0; u < kU; u++)
        if (c0 + 32 * u < b.cpr) load_chunk<DT>(w, c0 + 32 * u, raw[u]);
#pragma unroll
      for (int u = 0; u < kU; u++) {
        const uint32_t c = c0 + 32 * u;
        if (c >= b.cpr) break;
        bad |= chunk_nonfinite<DT>(raw[u]);
        float scale = s_row;
        int32_t zero = z_row;
        if (!(b.per_tensor || b.groups == 1)) {
          const uint32_t pi = pbase + fdiv(c, b.cpg);
          scale = __ldg(b.scales + pi);
          if (!SYM) zero = __ldg(b.zeros + pi);
        }
        float x[8], rq[8];
        chunk_values<DT>(raw[u], x);
        rint_div8(x, scale, rq);
        uint32_t v[8];
#pragma unroll
        for (int e = 0; e < 8; e++) v[e] = level_bits<SYM>(rq[e], zero, bits);
        autoq_store_chunk(q + (size_t)bits * c, autoq_pack8(v, bits), bits);
      }
    }
    if (__any_sync(0xffffffffu, bad) && lane == 0) atomicOr(nonfinite + j, 1);
  }
}

template <int DT, int BITS, bool SYM>
int launch(const BJobs &js, int32_t *nonfinite, int sms, cudaStream_t st) {
  auto kern = quantize_batched_kernel<DT, BITS, SYM>;
  static int occ;
  if (occ == 0 && (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, kern, kThreads, 0) != cudaSuccess || occ < 1))
    occ = 1;
  const int rows = js.row_begin[js.n];
  const int grid = std::max(1, std::min(sms * occ, (rows + kThreads / 32 - 1) / (kThreads / 32)));
  kern<<<grid, kThreads, 0, st>>>(js, nonfinite);
  return autoq_check_launch("autoq_quantize_batch", "quantize_batched_kernel");
}

template <int DT>
int launch_dt(const BJobs &js, int bits, int sym, int32_t *nf, int sms, cudaStream_t st) {
  if (bits == 8) return sym ? launch<DT, 8, true>(js, nf, sms, st) : launch<DT, 8, false>(js, nf, sms, st);
  if (bits == 4) return sym ? launch<DT, 4, true>(js, nf, sms, st) : launch<DT, 4, false>(js, nf, sms, st);
  return sym ? launch<DT, 0, true>(js, nf, sms, st) : launch<DT, 0, false>(js, nf, sms, st);
}

} // namespace

extern "C" int autoq_quantize_batch_fits(const autoq_quant_job *job) {
  if (job == nullptr || job->rows < 1 || job->cols < 8) return 0;
  const int64_t g = job->per_tensor ? job->cols : job->group_cols;
  return (uintptr_t)job->w % 16 == 0 && (uintptr_t)job->q % 8 == 0 && job->cols % 8 == 0 && g >= 8 && g % 8 == 0 &&
         job->cols % g == 0 && job->cols / 8 < (1LL << 31) && job->rows < (1LL << 31);
}

extern "C" int autoq_quantize_batch(int dev, const autoq_quant_job *jobs, int njobs, int dtype, int bits, int symmetric,
                                    int32_t *nonfinite, void *stream) {
  const char *op = "autoq_quantize_batch";
  if (njobs < 1 || jobs == nullptr || nonfinite == nullptr)
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: %d jobs, null jobs or flags", op, njobs);
  if (dtype != AUTOQ_F32 && dtype != AUTOQ_F16 && dtype != AUTOQ_BF16)
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: dtype %d is not F32, F16 or BF16", op, dtype);
  if (bits < 3 || bits > 8) return autoq_set_error(AUTOQ_ERR_INVALID, "%s: %d bits (want 3..8)", op, bits);
  for (int i = 0; i < njobs; i++) {
    const autoq_quant_job &jb = jobs[i];
    if (!autoq_quantize_batch_fits(&jb) || jb.scales == nullptr || (!symmetric && jb.zeros == nullptr))
      return autoq_set_error(AUTOQ_ERR_INVALID,
                             "%s: job %d (rows %lld, cols %lld, group %lld): w must be 16-byte and q 8-byte aligned, "
                             "cols and the group multiples of 8, scales (and zeros) non-NULL",
                             op, i, (long long)jb.rows, (long long)jb.cols, (long long)jb.group_cols);
  }
  AUTOQ_TRY(autoq_use_device(dev, op));
  int sms = 0;
  AUTOQ_CUDA(op, cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  cudaStream_t st = (cudaStream_t)stream;
  AUTOQ_CUDA(op, cudaMemsetAsync(nonfinite, 0, sizeof(int32_t) * njobs, st));
  for (int first = 0; first < njobs; first += kMaxJobs) {
    BJobs js{};
    js.bits = bits;
    int64_t rows = 0;
    for (int i = 0; i < kMaxJobs && first + i < njobs; i++) {
      const autoq_quant_job &jb = jobs[first + i];
      const int64_t g = jb.per_tensor ? jb.cols : jb.group_cols;
      js.j[i] = BJob{jb.w, jb.q, jb.scales, jb.zeros, (uint32_t)(jb.cols / 8), make_fastdiv((uint32_t)(g / 8)),
                     (uint32_t)(jb.cols / g), jb.per_tensor};
      js.row_begin[i] = (int)rows;
      rows += jb.rows;
      js.n = i + 1;
    }
    if (rows >= (1LL << 31)) return autoq_set_error(AUTOQ_ERR_INVALID, "%s: %lld rows in one launch", op, (long long)rows);
    js.row_begin[js.n] = (int)rows;
    int rc;
    switch (dtype) {
    case AUTOQ_F32: rc = launch_dt<AUTOQ_F32>(js, bits, symmetric, nonfinite + first, sms, st); break;
    case AUTOQ_F16: rc = launch_dt<AUTOQ_F16>(js, bits, symmetric, nonfinite + first, sms, st); break;
    default: rc = launch_dt<AUTOQ_BF16>(js, bits, symmetric, nonfinite + first, sms, st);
    }
    AUTOQ_TRY(rc);
  }
  return AUTOQ_OK;
}
