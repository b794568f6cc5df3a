// device.cu: devices, memory, streams, events and the last-error buffer of autoq's C API
// (see autoq.h). No kernels here. Every function makes `dev` current first, because the Go
// runtime may call successive functions from different OS threads.
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common.cuh"

static thread_local char autoq_err_buf[1024];

extern "C" const char *autoq_last_error(void) { return autoq_err_buf; }

extern "C" int autoq_set_error(int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(autoq_err_buf, sizeof autoq_err_buf, fmt, ap);
  va_end(ap);
  return status;
}

extern "C" int autoq_fail_cuda(cudaError_t err, const char *op) {
  // Clear the error if it is not sticky, so that later calls are not blamed for it.
  (void)cudaGetLastError();
  return autoq_set_error((int)err, "%s: %s (%s)", op, cudaGetErrorName(err), cudaGetErrorString(err));
}

extern "C" int autoq_use_device(int dev, const char *op) {
  cudaError_t e = cudaSetDevice(dev);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    return autoq_set_error((int)e, "%s: cudaSetDevice(%d): %s (%s)", op, dev, cudaGetErrorName(e),
                           cudaGetErrorString(e));
  }
  return 0;
}

extern "C" int autoq_check_launch(const char *op, const char *kernel) {
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess)
    return autoq_set_error((int)e, "%s: launching kernel %s: %s (%s)", op, kernel, cudaGetErrorName(e),
                           cudaGetErrorString(e));
  return 0;
}

extern "C" int autoq_device_count(int *count) {
  *count = 0;
  cudaError_t e = cudaGetDeviceCount(count);
  if (e != cudaSuccess) {
    *count = 0;
    (void)cudaGetLastError();
    return autoq_set_error((int)e, "cudaGetDeviceCount: %s (%s)", cudaGetErrorName(e), cudaGetErrorString(e));
  }
  return 0;
}

extern "C" int autoq_device_get_info(int dev, autoq_device_info *info) {
  const char *op = "autoq_device_get_info";
  memset(info, 0, sizeof *info);
  AUTOQ_TRY(autoq_use_device(dev, op));
  cudaDeviceProp p;
  AUTOQ_CUDA(op, cudaGetDeviceProperties(&p, dev));
  snprintf(info->name, sizeof info->name, "%s", p.name);
  info->sm_count = p.multiProcessorCount;
  info->cc_major = p.major;
  info->cc_minor = p.minor;
  info->total_mem_bytes = (uint64_t)p.totalGlobalMem;
  info->l2_bytes = p.l2CacheSize;
  info->max_shared_per_block_optin = (int)p.sharedMemPerBlockOptin;
  // CUDA 13 removed cudaDeviceProp::memoryClockRate and memoryBusWidth: read the attributes
  // cudaDevAttrMemoryClockRate (36) and cudaDevAttrGlobalMemoryBusWidth (37), by number so
  // that this compiles whatever the toolkit still declares. The bandwidth is informative:
  // if the driver does not answer, it is reported as 0 (unknown) rather than failing.
  int clk = 0, bus = 0;
  if (cudaDeviceGetAttribute(&clk, (cudaDeviceAttr)36, dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&bus, (cudaDeviceAttr)37, dev) != cudaSuccess) {
    (void)cudaGetLastError();
    clk = bus = 0;
  }
  info->mem_clock_khz = clk;
  info->mem_bus_width_bits = bus;
  // kHz * 1e3 cycles/s * 2 (double data rate) * bus bits / 8 bytes, in GB/s.
  info->mem_bandwidth_gbs = 2.0 * (double)clk * 1e3 * ((double)bus / 8.0) / 1e9;
  return 0;
}

extern "C" int autoq_device_check(int dev) {
  autoq_device_info info;
  AUTOQ_TRY(autoq_device_get_info(dev, &info));
  if (info.cc_major < 8)
    return autoq_set_error(AUTOQ_ERR_UNSUPPORTED,
                           "CUDA device %d (%s) has compute capability %d.%d; autoq needs 8.0 (Ampere) or newer "
                           "for int8 tensor-core MMA",
                           dev, info.name, info.cc_major, info.cc_minor);
  return 0;
}

extern "C" int autoq_device_synchronize(int dev) {
  AUTOQ_TRY(autoq_use_device(dev, "cudaDeviceSynchronize"));
  AUTOQ_CUDA("cudaDeviceSynchronize", cudaDeviceSynchronize());
  return 0;
}

extern "C" int autoq_mem_info(int dev, uint64_t *free_bytes, uint64_t *total_bytes) {
  AUTOQ_TRY(autoq_use_device(dev, "cudaMemGetInfo"));
  size_t f = 0, t = 0;
  AUTOQ_CUDA("cudaMemGetInfo", cudaMemGetInfo(&f, &t));
  *free_bytes = f;
  *total_bytes = t;
  return 0;
}

extern "C" int autoq_malloc(int dev, void **ptr, size_t bytes) {
  *ptr = nullptr;
  AUTOQ_TRY(autoq_use_device(dev, "cudaMalloc"));
  if (bytes == 0) bytes = 1; // a valid, freeable pointer for empty tensors
  cudaError_t e = cudaMalloc(ptr, bytes);
  if (e != cudaSuccess) {
    *ptr = nullptr;
    (void)cudaGetLastError();
    size_t f = 0, t = 0;
    if (cudaMemGetInfo(&f, &t) != cudaSuccess) {
      (void)cudaGetLastError();
      return autoq_set_error((int)e, "cudaMalloc(%zu bytes) on device %d: %s (%s)", bytes, dev,
                             cudaGetErrorName(e), cudaGetErrorString(e));
    }
    return autoq_set_error((int)e, "cudaMalloc(%zu bytes) on device %d: %s (%s); %zu bytes free of %zu", bytes, dev,
                           cudaGetErrorName(e), cudaGetErrorString(e), f, t);
  }
  return 0;
}

extern "C" int autoq_free(int dev, void *ptr) {
  AUTOQ_TRY(autoq_use_device(dev, "cudaFree"));
  AUTOQ_CUDA("cudaFree", cudaFree(ptr));
  return 0;
}

extern "C" int autoq_memset(int dev, void *ptr, int value, size_t bytes, void *stream) {
  AUTOQ_TRY(autoq_use_device(dev, "cudaMemsetAsync"));
  AUTOQ_CUDA("cudaMemsetAsync", cudaMemsetAsync(ptr, value, bytes, (cudaStream_t)stream));
  return 0;
}

// Enqueues a copy of bytes on stream (nothing for 0 bytes).
static int copy_async(int dev, void *dst, const void *src, size_t bytes, void *stream, cudaMemcpyKind kind,
                      const char *op) {
  AUTOQ_TRY(autoq_use_device(dev, op));
  if (bytes == 0) return 0;
  AUTOQ_CUDA(op, cudaMemcpyAsync(dst, src, bytes, kind, (cudaStream_t)stream));
  return 0;
}

// copy_async, then waits for the stream.
static int copy_sync(int dev, void *dst, const void *src, size_t bytes, void *stream, cudaMemcpyKind kind,
                     const char *op) {
  AUTOQ_TRY(copy_async(dev, dst, src, bytes, stream, kind, op));
  if (bytes == 0) return 0;
  AUTOQ_CUDA(op, cudaStreamSynchronize((cudaStream_t)stream));
  return 0;
}

extern "C" int autoq_memcpy_h2d(int dev, void *dst, const void *src, size_t bytes, void *stream) {
  return copy_sync(dev, dst, src, bytes, stream, cudaMemcpyHostToDevice, "memcpy host->device");
}
extern "C" int autoq_memcpy_d2h(int dev, void *dst, const void *src, size_t bytes, void *stream) {
  return copy_sync(dev, dst, src, bytes, stream, cudaMemcpyDeviceToHost, "memcpy device->host");
}
extern "C" int autoq_memcpy_d2d(int dev, void *dst, const void *src, size_t bytes, void *stream) {
  return copy_sync(dev, dst, src, bytes, stream, cudaMemcpyDeviceToDevice, "memcpy device->device");
}

extern "C" int autoq_memcpy_h2d_async(int dev, void *dst, const void *src, size_t bytes, void *stream) {
  return copy_async(dev, dst, src, bytes, stream, cudaMemcpyHostToDevice, "async memcpy host->device");
}
extern "C" int autoq_memcpy_d2h_async(int dev, void *dst, const void *src, size_t bytes, void *stream) {
  return copy_async(dev, dst, src, bytes, stream, cudaMemcpyDeviceToHost, "async memcpy device->host");
}

extern "C" int autoq_host_alloc(int dev, void **ptr, size_t bytes) {
  *ptr = nullptr;
  AUTOQ_TRY(autoq_use_device(dev, "cudaMallocHost"));
  if (bytes == 0) bytes = 1;
  cudaError_t e = cudaMallocHost(ptr, bytes);
  if (e != cudaSuccess) {
    *ptr = nullptr;
    (void)cudaGetLastError();
    return autoq_set_error((int)e, "cudaMallocHost(%zu bytes of pinned host memory): %s (%s)", bytes,
                           cudaGetErrorName(e), cudaGetErrorString(e));
  }
  return 0;
}

extern "C" int autoq_host_free(int dev, void *ptr) {
  AUTOQ_TRY(autoq_use_device(dev, "cudaFreeHost"));
  AUTOQ_CUDA("cudaFreeHost", cudaFreeHost(ptr));
  return 0;
}

extern "C" int autoq_stream_create(int dev, void **stream) {
  *stream = nullptr;
  AUTOQ_TRY(autoq_use_device(dev, "cudaStreamCreate"));
  cudaStream_t s;
  AUTOQ_CUDA("cudaStreamCreate", cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  *stream = (void *)s;
  return 0;
}
extern "C" int autoq_stream_destroy(int dev, void *stream) {
  AUTOQ_TRY(autoq_use_device(dev, "cudaStreamDestroy"));
  AUTOQ_CUDA("cudaStreamDestroy", cudaStreamDestroy((cudaStream_t)stream));
  return 0;
}
extern "C" int autoq_stream_synchronize(int dev, void *stream) {
  AUTOQ_TRY(autoq_use_device(dev, "cudaStreamSynchronize"));
  AUTOQ_CUDA("cudaStreamSynchronize", cudaStreamSynchronize((cudaStream_t)stream));
  return 0;
}

extern "C" int autoq_event_create(int dev, void **event) {
  *event = nullptr;
  AUTOQ_TRY(autoq_use_device(dev, "cudaEventCreate"));
  cudaEvent_t e;
  AUTOQ_CUDA("cudaEventCreate", cudaEventCreate(&e));
  *event = (void *)e;
  return 0;
}
extern "C" int autoq_event_destroy(int dev, void *event) {
  AUTOQ_TRY(autoq_use_device(dev, "cudaEventDestroy"));
  AUTOQ_CUDA("cudaEventDestroy", cudaEventDestroy((cudaEvent_t)event));
  return 0;
}
extern "C" int autoq_event_record(int dev, void *event, void *stream) {
  AUTOQ_TRY(autoq_use_device(dev, "cudaEventRecord"));
  AUTOQ_CUDA("cudaEventRecord", cudaEventRecord((cudaEvent_t)event, (cudaStream_t)stream));
  return 0;
}
extern "C" int autoq_event_synchronize(int dev, void *event) {
  AUTOQ_TRY(autoq_use_device(dev, "cudaEventSynchronize"));
  AUTOQ_CUDA("cudaEventSynchronize", cudaEventSynchronize((cudaEvent_t)event));
  return 0;
}
extern "C" int autoq_event_elapsed_ms(int dev, void *start, void *end, float *ms) {
  AUTOQ_TRY(autoq_use_device(dev, "cudaEventElapsedTime"));
  AUTOQ_CUDA("cudaEventElapsedTime", cudaEventElapsedTime(ms, (cudaEvent_t)start, (cudaEvent_t)end));
  return 0;
}
