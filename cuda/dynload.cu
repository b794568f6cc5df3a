// dynload.cu: cuBLAS and cuSOLVER, loaded at run time with dlopen instead of linked.
//
// Why: the static cuBLAS/cuSOLVER archives add ~700 MB to every cuda-tagged binary (their
// kernels for every architecture), which makes links slow and binaries impractical to ship,
// while the dynamic libraries would make a binary fail to *start* on a machine without them.
// Loading them on first use keeps one small binary that starts everywhere: the CUDA runtime
// stays linked statically (cudart_static), and a machine without cuBLAS gets a clear error
// from the one operation that needs it (the FP16 baseline GEMM, the GPTQ Hessian solve)
// while everything else runs.
//
// Each wrapper below has exactly the name and signature the cuBLAS/cuSOLVER headers declare
// (through their macros, e.g. cublasCreate -> cublasCreate_v2), so the callers are written
// against the ordinary API and this file stands in for the libraries at link time.
// Library search: $AUTOQ_CUBLAS / $AUTOQ_CUSOLVER (full paths) first, then the sonames of
// CUDA 13, 12 and 11, then /usr/local/cuda/lib64.
#include <cublas_v2.h>
#include <cusolverDn.h>
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>

#ifndef __CUDA_ARCH__
namespace {

#define AUTOQ_STR2(x) #x
#define AUTOQ_STR(x) AUTOQ_STR2(x)

struct Lib {
  const char *env;
  const char *names[8];
  void *handle;
  bool tried;
  std::mutex mu;
};

Lib g_cublas = {"AUTOQ_CUBLAS",
                {"libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so",
                 "/usr/local/cuda/lib64/libcublas.so", nullptr},
                nullptr, false, {}};
Lib g_cusolver = {"AUTOQ_CUSOLVER",
                  {"libcusolver.so.12", "libcusolver.so.11", "libcusolver.so",
                   "/usr/local/cuda/lib64/libcusolver.so", nullptr},
                  nullptr, false, {}};

void *open_lib(Lib &l) {
  std::lock_guard<std::mutex> lock(l.mu);
  if (!l.tried) {
    l.tried = true;
    const char *p = std::getenv(l.env);
    if (p != nullptr && *p != 0) l.handle = dlopen(p, RTLD_NOW | RTLD_LOCAL);
    for (int i = 0; l.handle == nullptr && l.names[i] != nullptr; i++) l.handle = dlopen(l.names[i], RTLD_NOW | RTLD_LOCAL);
    if (l.handle == nullptr)
      std::fprintf(stderr, "autoq: %s not found (%s); set %s to its path\n", l.names[3], dlerror(), l.env);
  }
  return l.handle;
}

void *sym(Lib &l, const char *name) {
  void *h = open_lib(l);
  if (h == nullptr) return nullptr;
  void *f = dlsym(h, name);
  if (f == nullptr) std::fprintf(stderr, "autoq: symbol %s missing in %s\n", name, l.names[3]);
  return f;
}

} // namespace
#endif

// AUTOQ_FORWARD defines name(params), forwarding to the library's symbol of that name.
// The headers declare some of these __host__ __device__ (for the old device-side API); the
// device compilation pass gets a body that only fails, the host pass the forwarding one.
#ifdef __CUDA_ARCH__
#define AUTOQ_FORWARD(lib, fail, name, params, args) \
  extern "C" auto name params -> decltype(name args) { return fail; }
#else
#define AUTOQ_FORWARD(lib, fail, name, params, args)                                                \
  extern "C" auto name params -> decltype(name args) {                                            \
    typedef decltype(name args) (*fn_t) params;                                                    \
    static fn_t fn = reinterpret_cast<fn_t>(sym(lib, AUTOQ_STR(name)));                            \
    if (fn == nullptr) return fail;                                                                \
    return fn args;                                                                                \
  }
#endif

#define BLAS(name, params, args) AUTOQ_FORWARD(g_cublas, CUBLAS_STATUS_NOT_INITIALIZED, name, params, args)
#define SOLVER(name, params, args) AUTOQ_FORWARD(g_cusolver, CUSOLVER_STATUS_NOT_INITIALIZED, name, params, args)

BLAS(cublasCreate, (cublasHandle_t * h), (h))
BLAS(cublasDestroy, (cublasHandle_t h), (h))
BLAS(cublasSetStream, (cublasHandle_t h, cudaStream_t s), (h, s))
BLAS(cublasGemmEx,
     (cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const void *alpha,
      const void *A, cudaDataType at, int lda, const void *B, cudaDataType bt, int ldb, const void *beta, void *C,
      cudaDataType ct, int ldc, cublasComputeType_t compute, cublasGemmAlgo_t algo),
     (h, ta, tb, m, n, k, alpha, A, at, lda, B, bt, ldb, beta, C, ct, ldc, compute, algo))
BLAS(cublasDgemm,
     (cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const double *alpha,
      const double *A, int lda, const double *B, int ldb, const double *beta, double *C, int ldc),
     (h, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc))

SOLVER(cusolverDnCreate, (cusolverDnHandle_t * h), (h))
SOLVER(cusolverDnDestroy, (cusolverDnHandle_t h), (h))
SOLVER(cusolverDnSetStream, (cusolverDnHandle_t h, cudaStream_t s), (h, s))
SOLVER(cusolverDnDpotrf_bufferSize, (cusolverDnHandle_t h, cublasFillMode_t u, int n, double *A, int lda, int *lw),
       (h, u, n, A, lda, lw))
SOLVER(cusolverDnDpotrf,
       (cusolverDnHandle_t h, cublasFillMode_t u, int n, double *A, int lda, double *w, int lw, int *info),
       (h, u, n, A, lda, w, lw, info))
SOLVER(cusolverDnDpotri_bufferSize, (cusolverDnHandle_t h, cublasFillMode_t u, int n, double *A, int lda, int *lw),
       (h, u, n, A, lda, lw))
SOLVER(cusolverDnDpotri,
       (cusolverDnHandle_t h, cublasFillMode_t u, int n, double *A, int lda, double *w, int lw, int *info),
       (h, u, n, A, lda, w, lw, info))
