/* Passes that form weighted sums of rows: the combination out = sum alpha_j
 * x_j that ends every Gram-space rule (and is the mean), the pre-step
 * materialisation Y = W X for the coordinate-wise rules, and the report's
 * non-finite counts.
 *
 * A row whose weight is exactly 0 is skipped, never multiplied: 0 * NaN is
 * NaN, and a hostile row must not reach the output through it (DESIGN §1).
 * Sums run in double over the rows in index order and round once, as on the
 * CPU, so equal weights give equal bits on both backends. */
#include "launch.cuh"

namespace ragg_cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kCompact = 256;   /* rows compacted into shared memory at a time */

/* Elements of one 16-byte load. */
template <ragg_dtype_t T>
struct Vec {
  static constexpr int V = T == RAGG_F32 ? 4 : 8;
  static constexpr int kRowBatch = T == RAGG_F32 ? 4 : 2; /* rows whose loads fly together */
};

template <ragg_dtype_t T>
__device__ __forceinline__ void load_vec(const char *row, int64_t g, float (&x)[Vec<T>::V]) {
  const uint4 u = __ldg((const uint4 *)row + g);
  if constexpr (T == RAGG_F32) {
    x[0] = __uint_as_float(u.x);
    x[1] = __uint_as_float(u.y);
    x[2] = __uint_as_float(u.z);
    x[3] = __uint_as_float(u.w);
  } else {
    auto cvt = [](unsigned short h) {
      return T == RAGG_F16 ? __half2float(__ushort_as_half(h)) : __uint_as_float((unsigned)h << 16);
    };
    x[0] = cvt((unsigned short)(u.x & 0xFFFFu));
    x[1] = cvt((unsigned short)(u.x >> 16));
    x[2] = cvt((unsigned short)(u.y & 0xFFFFu));
    x[3] = cvt((unsigned short)(u.y >> 16));
    x[4] = cvt((unsigned short)(u.z & 0xFFFFu));
    x[5] = cvt((unsigned short)(u.z >> 16));
    x[6] = cvt((unsigned short)(u.w & 0xFFFFu));
    x[7] = cvt((unsigned short)(u.w >> 16));
  }
}

/* The rows with a nonzero weight among [j0, j0 + kCompact), in index order:
 * their addresses and weights in shared memory (warp 0 compacts, every
 * thread of the block calls). */
template <class R>
__device__ __forceinline__ int compact_rows(const R &rows, int64_t L, int64_t j0,
                                            const double *alpha, double uniform,
                                            const char **cp, double *cw, int *count) {
  if (threadIdx.x < 32) {
    const int lane = threadIdx.x;
    int base = 0;
    for (int jj = 0; jj < kCompact && j0 + jj < L; jj += 32) {
      int64_t j = j0 + jj + lane;
      double a = 0.0;
      if (j < L) a = alpha ? __ldg(alpha + j) : uniform;
      bool nz = j < L && a != 0.0; /* NaN weights count as nonzero, as on the CPU */
      unsigned m = __ballot_sync(0xFFFFFFFFu, nz);
      if (nz) {
        int pos = base + __popc(m & ((1u << lane) - 1u));
        cp[pos] = (const char *)rows.row(j);
        cw[pos] = a;
      }
      base += __popc(m);
    }
    if (lane == 0) *count = base;
  }
  __syncthreads();
  return *count;
}

/* out = sum_j alpha_j x_j: a thread owns one 16-byte group of coordinates
 * (vec: every row and the output aligned to 16 bytes) or, past the groups,
 * one coordinate. The rows with nonzero weights are compacted into shared
 * memory first, so the loads of kRowBatch rows are unconditional and in
 * flight together; each coordinate still adds its rows in index order in
 * double and rounds once. */
template <ragg_dtype_t T, class R>
__global__ void __launch_bounds__(kThreads)
    combine_kernel(const __grid_constant__ R rows, int64_t L, int64_t d, const double *alpha,
                   double uniform, ragg_dtype_t out_t, void *out, int64_t ngroups) {
  constexpr int V = Vec<T>::V, kRowBatch = Vec<T>::kRowBatch;
  __shared__ const char *cp[kCompact];
  __shared__ double cw[kCompact];
  __shared__ int count;
  const int64_t tail0 = ngroups * V, items = ngroups + (d - tail0);
  const bool one_chunk = L <= kCompact;
  int m = one_chunk ? compact_rows(rows, L, 0, alpha, uniform, cp, cw, &count) : 0;
  for (int64_t base = (int64_t)blockIdx.x * kThreads; base < items;
       base += (int64_t)gridDim.x * kThreads) {
    const int64_t it = base + threadIdx.x;
    const bool is_vec = it < ngroups, live = it < items;
    const int64_t k = is_vec ? it * V : tail0 + (it - ngroups); /* first coordinate */
    double acc[V];
#pragma unroll
    for (int e = 0; e < V; ++e) acc[e] = 0.0;
    for (int64_t j0 = 0; j0 < L; j0 += kCompact) {
      if (!one_chunk) {
        __syncthreads();
        m = compact_rows(rows, L, j0, alpha, uniform, cp, cw, &count);
      }
      if (!live) continue;
      int jj = 0;
      if (is_vec) {
        for (; jj + kRowBatch <= m; jj += kRowBatch) {
          float x[kRowBatch][V];
#pragma unroll
          for (int u = 0; u < kRowBatch; ++u) load_vec<T>(cp[jj + u], it, x[u]);
#pragma unroll
          for (int u = 0; u < kRowBatch; ++u) {
            const double a = cw[jj + u];
#pragma unroll
            for (int e = 0; e < V; ++e) acc[e] += a * (double)x[u][e];
          }
        }
        for (; jj < m; ++jj) {
          float x[V];
          load_vec<T>(cp[jj], it, x);
          const double a = cw[jj];
#pragma unroll
          for (int e = 0; e < V; ++e) acc[e] += a * (double)x[e];
        }
      } else {
        for (; jj + kRowBatch <= m; jj += kRowBatch) {
          float x[kRowBatch];
#pragma unroll
          for (int u = 0; u < kRowBatch; ++u) x[u] = load_as<T>(cp[jj + u], k);
#pragma unroll
          for (int u = 0; u < kRowBatch; ++u) acc[0] += cw[jj + u] * (double)x[u];
        }
        for (; jj < m; ++jj) acc[0] += cw[jj] * (double)load_as<T>(cp[jj], k);
      }
    }
    if (!live) continue;
    if (!is_vec) {
      store_value(out_t, out, k, acc[0]);
    } else {
      if constexpr (V == 4) {
        if (out_t == RAGG_F32) { /* out is 16-byte aligned on this path */
          *((float4 *)out + it) = make_float4(__double2float_rn(acc[0]), __double2float_rn(acc[1]),
                                              __double2float_rn(acc[2]), __double2float_rn(acc[3]));
          continue;
        }
      }
#pragma unroll
      for (int e = 0; e < V; ++e) store_value(out_t, out, k + e, acc[e]);
    }
  }
}

template <ragg_dtype_t T, class R>
__global__ void __launch_bounds__(kThreads)
    transform_rows_kernel(const __grid_constant__ R rows, int64_t n, int64_t d, const double *W,
                          int64_t ldw, int64_t nm, float *Y) {
  for (int64_t k = (int64_t)blockIdx.x * kThreads + threadIdx.x; k < d;
       k += (int64_t)gridDim.x * kThreads) {
    for (int64_t p = 0; p < nm; ++p) {
      /* the CPU's arithmetic (ragg_cpu_transform_rows): float products of
       * the nonzero weights added in input order, never fused */
      float acc = 0.0f;
      for (int64_t j = 0; j < n; ++j) {
        double a = __ldg(W + p * ldw + j);
        if (a == 0.0) continue;
        acc = __fadd_rn(acc, __fmul_rn(__double2float_rn(a), load_as<T>(rows.row(j), k)));
      }
      Y[p * d + k] = acc;
    }
  }
}

template <ragg_dtype_t T, class R>
__global__ void __launch_bounds__(kThreads)
    count_nonfinite_kernel(const __grid_constant__ R rows, int64_t d, int64_t *counts) {
  __shared__ unsigned long long block_count;
  if (threadIdx.x == 0) block_count = 0;
  __syncthreads();
  int64_t i = blockIdx.y;
  const void *row = rows.row(i);
  unsigned c = 0;
  for (int64_t k = (int64_t)blockIdx.x * kThreads + threadIdx.x; k < d;
       k += (int64_t)gridDim.x * kThreads)
    c += !isfinite(load_as<T>(row, k));
  for (int o = 16; o > 0; o >>= 1) c += __shfl_xor_sync(0xFFFFFFFFu, c, o);
  if ((threadIdx.x & 31) == 0 && c) atomicAdd(&block_count, (unsigned long long)c);
  __syncthreads();
  if (threadIdx.x == 0 && block_count)
    atomicAdd((unsigned long long *)(counts + i), block_count);
}

__global__ void report_fill_kernel(int64_t n, int64_t d, int32_t sel, const int64_t *counts,
                                   double *scores, int32_t *selected, double weight,
                                   double *weights) {
  int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  if (selected) selected[i] = sel;
  if (scores) scores[i] = counts ? (double)counts[i] / (double)d : 0.0;
  if (weights) weights[i] = weight;
}

/* Calls f with the dtype as a compile-time tag. */
template <class F>
cudaError_t with_dtype(ragg_dtype_t t, F &&f) {
  if (t == RAGG_F32) return f(std::integral_constant<ragg_dtype_t, RAGG_F32>());
  if (t == RAGG_F16) return f(std::integral_constant<ragg_dtype_t, RAGG_F16>());
  return f(std::integral_constant<ragg_dtype_t, RAGG_BF16>());
}

}  // namespace

cudaError_t launch_combine(const RowSource &src, int64_t L, int64_t d, const double *alpha,
                           double uniform, ragg_dtype_t out_t, void *out, cudaStream_t stream) {
  const int V = src.dtype == RAGG_F32 ? 4 : 8;
  /* 16-byte groups where every row (and, for fp32 groups, the output) allows them */
  const bool vec = rows_aligned(src, 16) && (out_t != RAGG_F32 || V != 4 || aligned(out, 16));
  const int64_t ngroups = vec ? d / V : 0, items = ngroups + (d - ngroups * V);
  return with_rows(src, [&](const auto &rows) {
    using R = std::decay_t<decltype(rows)>;
    return with_dtype(src.dtype, [&](auto tag) {
      combine_kernel<decltype(tag)::value, R><<<grid_for(items, kThreads), kThreads, 0, stream>>>(
          rows, L, d, alpha, uniform, out_t, out, ngroups);
      return cudaGetLastError();
    });
  });
}

cudaError_t launch_transform_rows(const RowSource &src, int64_t n, int64_t d, const double *W,
                                  int64_t ldw, int64_t nm, float *Y, cudaStream_t stream) {
  return with_rows(src, [&](const auto &rows) {
    using R = std::decay_t<decltype(rows)>;
    return with_dtype(src.dtype, [&](auto tag) {
      transform_rows_kernel<decltype(tag)::value, R>
          <<<grid_for(d, kThreads), kThreads, 0, stream>>>(rows, n, d, W, ldw, nm, Y);
      return cudaGetLastError();
    });
  });
}

cudaError_t launch_count_nonfinite(const RowSource &src, int64_t n, int64_t d, int64_t *counts,
                                   cudaStream_t stream) {
  cudaError_t e = cudaMemsetAsync(counts, 0, sizeof(int64_t) * (size_t)n, stream);
  if (e != cudaSuccess) return e;
  if (n > 65535) return cudaErrorInvalidConfiguration;
  dim3 grid(grid_for(d, kThreads, 1024), (unsigned)n);
  return with_rows(src, [&](const auto &rows) {
    using R = std::decay_t<decltype(rows)>;
    return with_dtype(src.dtype, [&](auto tag) {
      count_nonfinite_kernel<decltype(tag)::value, R><<<grid, kThreads, 0, stream>>>(rows, d, counts);
      return cudaGetLastError();
    });
  });
}

cudaError_t launch_report_fill(int64_t n, int64_t d, int32_t sel, const int64_t *counts,
                               double *scores, int32_t *selected, double weight, double *weights,
                               cudaStream_t stream) {
  report_fill_kernel<<<grid_for(n, 256, INT32_MAX), 256, 0, stream>>>(n, d, sel, counts, scores,
                                                                      selected, weight, weights);
  return cudaGetLastError();
}

}  // namespace ragg_cuda
