/* Device-memory helpers of the distributed algorithm (dist_device.h). */
#include <cuda_runtime.h>
#include <stdint.h>
#include <string.h>

extern "C" {
#include "dist_device.h"
}
#include "../cpu/convert.h" /* the CPU backend's roundings, bit for bit */

namespace {

__global__ void scale_kernel(int dt, void *buf, size_t len, double factor) {
  for (size_t k = blockIdx.x * (size_t)blockDim.x + threadIdx.x; k < len;
       k += (size_t)gridDim.x * blockDim.x) {
    if (dt == RAGG_F32) {
      float *p = (float *)buf;
      p[k] = (float)__dmul_rn((double)p[k], factor);
    } else if (dt == RAGG_F16) {
      uint16_t *p = (uint16_t *)buf;
      p[k] = ragg_float_to_half((float)__dmul_rn((double)ragg_half_to_float(p[k]), factor));
    } else {
      uint16_t *p = (uint16_t *)buf;
      p[k] = ragg_float_to_bf16((float)__dmul_rn((double)ragg_bf16_to_float(p[k]), factor));
    }
  }
}

__global__ void sum_ranks_kernel(const double *all, int P, size_t n, double *out) {
  for (size_t k = blockIdx.x * (size_t)blockDim.x + threadIdx.x; k < n;
       k += (size_t)gridDim.x * blockDim.x) {
    double s = all[k];
    for (int p = 1; p < P; ++p) s = __dadd_rn(s, all[(size_t)p * n + k]);
    out[k] = s;
  }
}

unsigned grid_for(size_t len) {
  size_t blocks = (len + 255) / 256;
  return (unsigned)(blocks > 8192 ? 8192 : (blocks ? blocks : 1));
}

ragg_status_t fail(ragg_transport_t *t, const char *what, cudaError_t e) {
  return ragg_set_error(t->ctx, e == cudaErrorMemoryAllocation ? RAGG_ERR_OUT_OF_MEMORY : RAGG_ERR_CUDA,
                        "%s: %s: %s (%s)", t->fn, what, cudaGetErrorString(e), cudaGetErrorName(e));
}

ragg_status_t dev_alloc(ragg_transport_t *t, size_t bytes, void **p) {
  *p = NULL;
  cudaError_t e = cudaMallocAsync(p, bytes ? bytes : 1, (cudaStream_t)t->stream);
  if (e != cudaSuccess) {
    cudaGetLastError();
    *p = NULL;
    return fail(t, "cudaMallocAsync (collective workspace)", e);
  }
  return RAGG_SUCCESS;
}

void dev_release(ragg_transport_t *t, void *p) {
  if (p && cudaFreeAsync(p, (cudaStream_t)t->stream) != cudaSuccess) cudaGetLastError();
}

ragg_status_t dev_zero(ragg_transport_t *t, void *p, size_t bytes) {
  if (bytes == 0) return RAGG_SUCCESS;
  cudaError_t e = cudaMemsetAsync(p, 0, bytes, (cudaStream_t)t->stream);
  return e == cudaSuccess ? RAGG_SUCCESS : fail(t, "cudaMemsetAsync", e);
}

ragg_status_t dev_copy(ragg_transport_t *t, void *dst, const void *src, size_t bytes) {
  if (bytes == 0 || dst == src) return RAGG_SUCCESS;
  cudaError_t e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, (cudaStream_t)t->stream);
  return e == cudaSuccess ? RAGG_SUCCESS : fail(t, "cudaMemcpyAsync", e);
}

ragg_status_t dev_scale(ragg_transport_t *t, ragg_dtype_t dt, void *buf, size_t len, double factor) {
  if (len == 0) return RAGG_SUCCESS;
  scale_kernel<<<grid_for(len), 256, 0, (cudaStream_t)t->stream>>>((int)dt, buf, len, factor);
  cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? RAGG_SUCCESS : fail(t, "scale kernel (RAGG_REDUCE_SUM)", e);
}

}  // namespace

extern "C" const ragg_dist_device_ops_t ragg_dist_cuda_ops = {dev_alloc, dev_release, dev_zero, dev_copy,
                                                            dev_scale};

extern "C" ragg_status_t ragg_dist_cuda_sum_ranks(ragg_transport_t *t, const double *all, int P, size_t n,
                                                  double *out) {
  if (n == 0) return RAGG_SUCCESS;
  sum_ranks_kernel<<<grid_for(n), 256, 0, (cudaStream_t)t->stream>>>(all, P, n, out);
  cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? RAGG_SUCCESS : fail(t, "rank-order sum kernel", e);
}
