/* Shared pieces of the CUDA backend: how kernels reach rows, how values load,
 * convert and store, and the order-preserving keys (DESIGN §2: -Inf < finite
 * < +Inf < NaN, a NaN of either sign at the top). */
#ifndef RAGG_KERNELS_COMMON_CUH
#define RAGG_KERNELS_COMMON_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include <type_traits>

extern "C" {
#include "internal.h"
}

namespace ragg_cuda {

/* Row pointers travel as a kernel parameter up to this many rows (8 KiB of
 * the 32,764 bytes a kernel may take); above it the pointer array (never the
 * rows) is copied once into the workspace. */
constexpr int kParamRows = 1024;

/* Contiguous rows base + i * ld; row n (when set) is an extra row held
 * elsewhere: centered clipping's v_0. */
struct ContigRows {
  const char *base;
  int64_t ld_bytes;
  int64_t n;
  const void *extra;
  __device__ __forceinline__ const void *row(int64_t i) const {
    return i == n ? extra : (const void *)(base + i * ld_bytes);
  }
};
/* Up to kParamRows pointers inside the kernel parameters. */
struct ParamRows {
  const void *p[kParamRows];
  __device__ __forceinline__ const void *row(int64_t i) const { return p[i]; }
};
/* Pointers copied into device memory. */
struct DevRows {
  const void *const *p;
  __device__ __forceinline__ const void *row(int64_t i) const { return p[i]; }
};

__device__ __forceinline__ float load_value(ragg_dtype_t t, const void *row, int64_t k) {
  if (t == RAGG_F32) return __ldg((const float *)row + k);
  unsigned short u = __ldg((const unsigned short *)row + k);
  if (t == RAGG_F16) return __half2float(__ushort_as_half(u));
  return __uint_as_float((unsigned)u << 16);
}
template <ragg_dtype_t T>
__device__ __forceinline__ float load_as(const void *row, int64_t k) {
  if (T == RAGG_F32) return __ldg((const float *)row + k);
  unsigned short u = __ldg((const unsigned short *)row + k);
  if (T == RAGG_F16) return __half2float(__ushort_as_half(u));
  return __uint_as_float((unsigned)u << 16);
}

/* A double result rounds once to float, then (16-bit outputs) to 16 bits,
 * as the CPU backend rounds it. */
__device__ __forceinline__ void store_value(ragg_dtype_t t, void *out, int64_t k, double v) {
  float f = __double2float_rn(v);
  if (t == RAGG_F32)
    ((float *)out)[k] = f;
  else if (t == RAGG_F16)
    ((__half *)out)[k] = __float2half_rn(f);
  else
    ((__nv_bfloat16 *)out)[k] = __float2bfloat16_rn(f);
}

/* Order-preserving key of a float: NaN (any sign, any payload) maps to the
 * top, which is also the padding sentinel of the networks. */
constexpr int32_t kTopKey = 0x7FFFFFFF;
__device__ __forceinline__ int32_t float_key(float f) {
  int32_t u = __float_as_int(f);
  if ((u & 0x7FFFFFFF) > 0x7F800000) return kTopKey;
  return u < 0 ? u ^ 0x7FFFFFFF : u;
}
__device__ __forceinline__ float key_float(int32_t k) {
  return __int_as_float(k < 0 ? k ^ 0x7FFFFFFF : k);
}

__host__ __device__ inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* Grid size for a grid-stride loop over `work` items. */
inline unsigned grid_for(int64_t work, int block, int64_t cap = 65535 * 8) {
  int64_t g = ceil_div(work, block);
  if (g > cap) g = cap;
  return (unsigned)(g < 1 ? 1 : g);
}

/* Where one call's rows are, as the host describes them. */
struct RowSource {
  const void *base;        /* contiguous, or NULL */
  int64_t ld;              /* elements */
  const void *const *ptrs; /* host array of n pointers, when base is NULL */
  const void *const *dev;  /* the same pointers in the workspace (n > kParamRows) */
  int64_t n;               /* input rows */
  const void *extra;       /* row n, or NULL */
  ragg_dtype_t dtype;
};

inline bool aligned(const void *p, uintptr_t a) { return ((uintptr_t)p % a) == 0; }
/* Whether every row of src (the extra row included) starts on an a-byte
 * boundary, so that a-byte loads at a-byte offsets are legal. */
inline bool rows_aligned(const RowSource &src, uintptr_t a) {
  if (src.extra && !aligned(src.extra, a)) return false;
  if (src.base)
    return aligned(src.base, a) &&
           ((uint64_t)src.ld * (uint64_t)ragg_dtype_size(src.dtype)) % a == 0;
  if (!src.ptrs) return false;
  for (int64_t i = 0; i < src.n; ++i)
    if (!aligned(src.ptrs[i], a)) return false;
  return true;
}

/* Calls f(rows) with the cheapest row representation for src. */
template <class F>
cudaError_t with_rows(const RowSource &src, F &&f) {
  int64_t L = src.n + (src.extra != nullptr);
  if (src.base) {
    ContigRows r{(const char *)src.base, src.ld * (int64_t)ragg_dtype_size(src.dtype), src.n,
                 src.extra};
    return f(r);
  }
  if (L <= kParamRows) {
    ParamRows r;
    for (int64_t i = 0; i < src.n; ++i) r.p[i] = src.ptrs[i];
    if (src.extra) r.p[src.n] = src.extra;
    for (int64_t i = L; i < kParamRows; ++i) r.p[i] = nullptr;
    return f(r);
  }
  DevRows r{src.dev};
  return f(r);
}

}  // namespace ragg_cuda

#endif
