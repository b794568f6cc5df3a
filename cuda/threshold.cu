// threshold.cu: calibration threshold search over many histograms at once, equal to
// calib.Compute (calib/method.go, entropy.go, mse.go, kllog.go) bin for bin.
//
// Layout: counts is [nhist, 2048] uint64 (calib.Histogram.Counts), one histogram per block
// (blockIdx.x), 256 threads. Results per histogram: bins[h] (the threshold in bins),
// objective[h] (entropy: the minimal KL; mse: the minimal error sum in bin units, which the
// host scales by 4^Exp / Count; percentile: 0) and empty[h] (entropy: no mass left after the
// zero-spike replacement). The host computes Amax = bins * 2^Exp and skips empty histograms
// (no finite non-zero value) before the launch.
//
// Thread mapping and summation order (each float64 operation rounded separately with the
// _rn intrinsics, in calib's order, so the same candidate wins):
//   percentile: each thread sums 8 consecutive bins, a block scan gives prefix counts
//     (uint64, exact), the first bin index whose cumulative count reaches need[h] wins.
//   entropy: (1) thread 0 builds the prefix arrays pre (mass), nz (non-zero bins) and clog
//     (sum c*KLLog(c), terms computed in parallel first, summed sequentially in bin order);
//     (2) threads split the plan's distinct group ranges k and compute
//     f[k] = M*log M - M*log n and lq[k] = log M - log n; (3) threads split the 1921
//     candidates i = 128..2048 and evaluate calib's closed form with the group terms added
//     into four accumulators by g mod 4; (4) thread 0 picks the last minimum.
//   entropy and mse consider the candidates i = 128..min(2048, top+1) only, top the last
//     non-zero bin (calib.searchCandidates).
//   mse: thread 0 compacts the non-zero bins (in order) into shared memory; threads split
//     the candidates, each summing count*d*d over the bins in increasing order; thread 0
//     picks the last minimum.
// The entropy plan (group ranges per candidate) is built on the host exactly like calib's
// klPlanFor and passed in (lo/hi per range, idx[c*G+g], last[c]).
#include <float.h>

#include "common.cuh"

namespace {

constexpr int kBins = AUTOQ_HIST_BINS;
constexpr int kStartBin = 128;
constexpr int kCands = kBins - kStartBin + 1; // 1921
constexpr int kThreads = 256;

// calib.KLLog, op for op (fdlibm's log with exact exponent extraction).
__device__ double kl_log(double x) {
  const double ln2Hi = 6.93147180369123816490e-01, ln2Lo = 1.90821492927058770002e-10,
               lg1 = 6.666666666666735130e-01, lg2 = 3.999999999940941908e-01, lg3 = 2.857142874366239149e-01,
               lg4 = 2.222219843214978396e-01, lg5 = 1.818357216161805012e-01, lg6 = 1.531383769920937332e-01,
               lg7 = 1.479819860511658591e-01, sqrt2 = 1.41421356237309504880168872420969808;
  if (x != x || x < 0) return __longlong_as_double(0x7ff8000000000001LL);
  if (x == 0) return -__longlong_as_double(0x7ff0000000000000LL);
  if (x > DBL_MAX) return x;
  unsigned long long b = (unsigned long long)__double_as_longlong(x);
  int k = (int)(b >> 52) - 1023;
  if ((b >> 52) == 0) {
    b = (unsigned long long)__double_as_longlong(__dmul_rn(x, 4503599627370496.0));
    k = (int)(b >> 52) - 1023 - 52;
  }
  double m = __longlong_as_double((long long)((b & ((1ULL << 52) - 1)) | (1023ULL << 52)));
  if (m >= sqrt2) {
    m = __dmul_rn(m, 0.5);
    k++;
  }
  const double f = __dsub_rn(m, 1.0);
  const double kf = (double)k;
  const double s = __ddiv_rn(f, __dadd_rn(2.0, f));
  const double s2 = __dmul_rn(s, s);
  const double s4 = __dmul_rn(s2, s2);
  const double t1 =
      __dmul_rn(s2, __dadd_rn(lg1, __dmul_rn(s4, __dadd_rn(lg3, __dmul_rn(s4, __dadd_rn(lg5, __dmul_rn(s4, lg7)))))));
  const double t2 = __dmul_rn(s4, __dadd_rn(lg2, __dmul_rn(s4, __dadd_rn(lg4, __dmul_rn(s4, lg6)))));
  const double r = __dadd_rn(t1, t2);
  const double hfsq = __dmul_rn(__dmul_rn(0.5, f), f);
  // kf*ln2Hi - ((hfsq - (s*(hfsq+r) + kf*ln2Lo)) - f)
  const double inner = __dadd_rn(__dmul_rn(s, __dadd_rn(hfsq, r)), __dmul_rn(kf, ln2Lo));
  return __dsub_rn(__dmul_rn(kf, ln2Hi), __dsub_rn(__dsub_rn(hfsq, inner), f));
}

__global__ void kllog_kernel(const double *__restrict__ in, double *__restrict__ out, int64_t n) {
  int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = kl_log(in[i]);
}

__device__ void percentile_block(const unsigned long long *cnt, unsigned long long need, int32_t *bin_out) {
  __shared__ unsigned long long part[kThreads];
  __shared__ int first;
  const int t = threadIdx.x;
  constexpr int per = kBins / kThreads; // 8
  unsigned long long local = 0;
  for (int j = 0; j < per; j++) local += cnt[t * per + j];
  part[t] = local;
  if (t == 0) first = kBins; // "no bin reached need": Bin = 2048
  __syncthreads();
  // Inclusive scan (Hillis-Steele) over the 256 partial sums.
  for (int off = 1; off < kThreads; off <<= 1) {
    unsigned long long v = t >= off ? part[t - off] : 0;
    __syncthreads();
    part[t] += v;
    __syncthreads();
  }
  unsigned long long cum = t > 0 ? part[t - 1] : 0;
  for (int j = 0; j < per; j++) {
    cum += cnt[t * per + j];
    if (cum >= need) {
      atomicMin(&first, t * per + j);
      break;
    }
  }
  __syncthreads();
  if (t == 0) *bin_out = first == kBins ? kBins : first + 1;
}

// calib.searchCandidates: the entropy/MSE candidates are i = 128..min(2048, top+1), top the
// last non-zero bin among 1..2047 (0 if none), and at least one candidate. Every thread
// gets the count; contains a barrier.
__device__ int search_candidates(const unsigned long long *cnt) {
  __shared__ int s_top;
  if (threadIdx.x == 0) s_top = 0;
  __syncthreads();
  int top = 0;
  for (int j = threadIdx.x; j < kBins; j += blockDim.x)
    if (j > 0 && cnt[j] != 0) top = j;
  if (top) atomicMax(&s_top, top);
  __syncthreads();
  const int nc = min(kBins, s_top + 1) - kStartBin + 1;
  return nc > 1 ? nc : 1;
}

struct EntropyPlan {
  const int32_t *lo, *hi, *idx, *last;
  int np, groups;
};

// Per-histogram scratch (doubles): pre[2049] clog[2049] f[np] lq[np] kl[1921] nz[2049 int32].
__host__ __device__ inline int64_t entropy_scratch_doubles(int np) {
  return 2 * (kBins + 1) + 2 * (int64_t)np + kCands + (kBins + 2) / 2;
}

__device__ void entropy_block(const unsigned long long *cnt0, int zero_spike, const EntropyPlan p, double *scratch,
                              int32_t *bin_out, double *obj_out, int32_t *empty_out) {
  double *pre = scratch, *clog = pre + (kBins + 1), *f = clog + (kBins + 1), *lq = f + p.np, *kl = lq + p.np;
  int32_t *nz = (int32_t *)(kl + kCands);
  __shared__ double s_total, s_logT;
  const int t = threadIdx.x;
  const int nc = search_candidates(cnt0); // from the counts before the zero-spike replacement
  // Terms c*KLLog(c) in parallel (clog[j+1] holds bin j's term until the prefix pass).
  for (int j = t; j < kBins; j += blockDim.x) {
    unsigned long long c = (j == 0 && zero_spike) ? cnt0[1] : cnt0[j];
    if (c != 0) {
      double cf = __ull2double_rn(c);
      clog[j + 1] = __dmul_rn(cf, kl_log(cf));
    }
  }
  __syncthreads();
  if (t == 0) {
    unsigned long long run = 0;
    pre[0] = 0;
    nz[0] = 0;
    clog[0] = 0;
    for (int j = 0; j < kBins; j++) {
      unsigned long long c = (j == 0 && zero_spike) ? cnt0[1] : cnt0[j];
      run += c;
      pre[j + 1] = __ull2double_rn(run);
      nz[j + 1] = nz[j];
      if (c != 0) {
        nz[j + 1]++;
        clog[j + 1] = __dadd_rn(clog[j], clog[j + 1]);
      } else {
        clog[j + 1] = clog[j];
      }
    }
    s_total = pre[kBins];
    s_logT = s_total == 0 ? 0 : kl_log(s_total);
  }
  __syncthreads();
  const double total = s_total;
  if (total == 0) {
    if (t == 0) {
      *empty_out = 1;
      *bin_out = 0;
      *obj_out = 0;
    }
    return;
  }
  // Group terms for every distinct range.
  for (int k = t; k < p.np; k += blockDim.x) {
    const int lo = p.lo[k], hi = p.hi[k];
    const double m = __dsub_rn(pre[hi], pre[lo]);
    if (m == 0) {
      f[k] = 0;
      lq[k] = 0;
      continue;
    }
    const double lm = kl_log(m);
    const double ln = kl_log((double)(nz[hi] - nz[lo]));
    f[k] = __dsub_rn(__dmul_rn(m, lm), __dmul_rn(m, ln));
    lq[k] = __dsub_rn(lm, ln);
  }
  __syncthreads();
  const double logT = s_logT;
  const int G = p.groups;
  for (int c = t; c < nc; c += blockDim.x) {
    const int i = kStartBin + c;
    const double s = pre[i];
    const double ci = __dsub_rn(pre[i], pre[i - 1]);
    const double tail = __dsub_rn(total, s);
    if (ci == 0 && tail > 0) {
      kl[c] = __longlong_as_double(0x7ff0000000000000LL);
      continue;
    }
    double plogp = clog[i - 1];
    const double pl = __dadd_rn(ci, tail);
    if (pl > 0) plogp = __dadd_rn(plogp, __dmul_rn(pl, kl_log(pl)));
    const int32_t *ix = p.idx + (int64_t)c * G;
    double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    int g = 0;
    for (; g + 3 < G; g += 4) {
      a0 = __dadd_rn(a0, f[ix[g]]);
      a1 = __dadd_rn(a1, f[ix[g + 1]]);
      a2 = __dadd_rn(a2, f[ix[g + 2]]);
      a3 = __dadd_rn(a3, f[ix[g + 3]]);
    }
    for (; g < G; g++) {
      switch (g % 4) {
      case 0: a0 = __dadd_rn(a0, f[ix[g]]); break;
      case 1: a1 = __dadd_rn(a1, f[ix[g]]); break;
      default: a2 = __dadd_rn(a2, f[ix[g]]); break;
      }
    }
    double plogq = __dadd_rn(__dadd_rn(a0, a1), __dadd_rn(a2, a3));
    if (tail > 0) plogq = __dadd_rn(plogq, __dmul_rn(tail, lq[p.last[c]]));
    // (plogp-plogq)/total - logT + KLLog(s), left to right.
    kl[c] = __dadd_rn(__dsub_rn(__ddiv_rn(__dsub_rn(plogp, plogq), total), logT), kl_log(s));
  }
  __syncthreads();
  if (t == 0) {
    int best = 0;
    for (int c = 1; c < nc; c++)
      if (kl[c] <= kl[best]) best = c;
    *bin_out = kStartBin + best;
    *obj_out = kl[best];
    *empty_out = 0;
  }
}

__device__ void mse_block(const unsigned long long *cnt, int levels, int32_t *bin_out, double *obj_out) {
  __shared__ int32_t sj[kBins];
  __shared__ double sc[kBins];
  __shared__ double errs[kCands];
  __shared__ int snb;
  const int t = threadIdx.x;
  const int nc = search_candidates(cnt);
  if (t == 0) {
    int nb = 0;
    for (int j = 0; j < kBins; j++)
      if (cnt[j] != 0) {
        sj[nb] = j;
        sc[nb] = __ull2double_rn(cnt[j]);
        nb++;
      }
    snb = nb;
  }
  __syncthreads();
  const int nb = snb;
  const double L = (double)levels;
  for (int c = t; c < nc; c += blockDim.x) {
    const double s = __ddiv_rn((double)(kStartBin + c), L);
    double e = 0;
    for (int b = 0; b < nb; b++) {
      const double x = (double)sj[b] + 0.5;
      double q = rint(__ddiv_rn(x, s));
      if (q > L) q = L;
      const double d = __dsub_rn(__dmul_rn(q, s), x);
      e = __dadd_rn(e, __dmul_rn(sc[b], __dmul_rn(d, d)));
    }
    errs[c] = e;
  }
  __syncthreads();
  if (t == 0) {
    int best = 0;
    for (int c = 1; c < nc; c++)
      if (errs[c] <= errs[best]) best = c;
    *bin_out = kStartBin + best;
    *obj_out = errs[best];
  }
}

__global__ void thresholds_kernel(const unsigned long long *__restrict__ counts, int method,
                                  const unsigned long long *__restrict__ need, int levels, int zero_spike,
                                  EntropyPlan plan, double *__restrict__ scratch, int32_t *__restrict__ bins,
                                  double *__restrict__ objective, int32_t *__restrict__ empty) {
  const int h = blockIdx.x;
  const unsigned long long *cnt = counts + (int64_t)h * kBins;
  if (method == 2) {
    percentile_block(cnt, need[h], bins + h);
    if (threadIdx.x == 0) {
      objective[h] = 0;
      empty[h] = 0;
    }
  } else if (method == 3) {
    mse_block(cnt, levels, bins + h, objective + h);
    if (threadIdx.x == 0) empty[h] = 0;
  } else {
    entropy_block(cnt, zero_spike, plan, scratch + (int64_t)h * entropy_scratch_doubles(plan.np), bins + h,
                  objective + h, empty + h);
  }
}

} // namespace

extern "C" int64_t autoq_thresholds_scratch_bytes(int nhist, int method, int plan_ranges) {
  if (method != 4) return 0;
  return (int64_t)nhist * entropy_scratch_doubles(plan_ranges) * (int64_t)sizeof(double);
}

extern "C" int autoq_thresholds(int dev, const uint64_t *counts, int nhist, int method, const uint64_t *need,
                                int levels, int zero_spike, const int32_t *plan_lo, const int32_t *plan_hi,
                                int plan_ranges, const int32_t *plan_idx, const int32_t *plan_last, double *scratch,
                                int32_t *bins, double *objective, int32_t *empty, void *stream) {
  const char *op = "autoq_thresholds";
  if (nhist <= 0) return 0;
  if (!counts || !bins || !objective || !empty) return autoq_set_error(AUTOQ_ERR_INVALID, "%s: null pointer", op);
  if (method != 2 && method != 3 && method != 4)
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: method %d is not percentile (2), mse (3) or entropy (4)", op, method);
  if (levels < 1 || levels > 32767) return autoq_set_error(AUTOQ_ERR_INVALID, "%s: levels %d outside 1..32767", op, levels);
  if (method == 2 && !need) return autoq_set_error(AUTOQ_ERR_INVALID, "%s: percentile needs the per-histogram targets", op);
  if (method == 4 && (!plan_lo || !plan_hi || !plan_idx || !plan_last || !scratch || plan_ranges <= 0))
    return autoq_set_error(AUTOQ_ERR_INVALID, "%s: entropy needs a plan and scratch", op);
  AUTOQ_TRY(autoq_use_device(dev, op));
  EntropyPlan plan{plan_lo, plan_hi, plan_idx, plan_last, plan_ranges, levels + 1};
  thresholds_kernel<<<nhist, kThreads, 0, (cudaStream_t)stream>>>((const unsigned long long *)counts, method,
                                                                    (const unsigned long long *)need, levels, zero_spike,
                                                                    plan, scratch, bins, objective, empty);
  return autoq_check_launch(op, "thresholds_kernel");
}

extern "C" int autoq_kllog(int dev, const double *in, double *out, int64_t n, void *stream) {
  const char *op = "autoq_kllog";
  if (n <= 0) return 0;
  AUTOQ_TRY(autoq_use_device(dev, op));
  kllog_kernel<<<(unsigned)((n + 255) / 256), 256, 0, (cudaStream_t)stream>>>(in, out, n);
  return autoq_check_launch(op, "kllog_kernel");
}
