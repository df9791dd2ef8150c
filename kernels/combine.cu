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
constexpr int kRowBatch = 8; /* loads issued together before they are summed */

template <ragg_dtype_t T, class R>
__global__ void __launch_bounds__(kThreads)
    combine_kernel(const __grid_constant__ R rows, int64_t L, int64_t d, const double *alpha,
                   double uniform, ragg_dtype_t out_t, void *out) {
  for (int64_t k = (int64_t)blockIdx.x * kThreads + threadIdx.x; k < d;
       k += (int64_t)gridDim.x * kThreads) {
    double acc = 0.0;
    for (int64_t j0 = 0; j0 < L; j0 += kRowBatch) {
      float v[kRowBatch];
      double a[kRowBatch];
#pragma unroll
      for (int u = 0; u < kRowBatch; ++u) {
        int64_t j = j0 + u;
        a[u] = j < L ? (alpha ? __ldg(alpha + j) : uniform) : 0.0;
        v[u] = a[u] != 0.0 ? load_as<T>(rows.row(j), k) : 0.0f;
      }
#pragma unroll
      for (int u = 0; u < kRowBatch; ++u)
        if (a[u] != 0.0) acc += a[u] * (double)v[u];
    }
    store_value(out_t, out, k, acc);
  }
}

template <ragg_dtype_t T, class R>
__global__ void __launch_bounds__(kThreads)
    transform_rows_kernel(const __grid_constant__ R rows, int64_t n, int64_t d, const double *W,
                          int64_t ldw, int64_t nm, float *Y) {
  for (int64_t k = (int64_t)blockIdx.x * kThreads + threadIdx.x; k < d;
       k += (int64_t)gridDim.x * kThreads) {
    for (int64_t p = 0; p < nm; ++p) {
      double acc = 0.0;
      for (int64_t j = 0; j < n; ++j) {
        double a = __ldg(W + p * ldw + j);
        if (a == 0.0) continue;
        acc += a * (double)load_as<T>(rows.row(j), k);
      }
      Y[p * d + k] = __double2float_rn(acc);
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
  return with_rows(src, [&](const auto &rows) {
    using R = std::decay_t<decltype(rows)>;
    return with_dtype(src.dtype, [&](auto tag) {
      combine_kernel<decltype(tag)::value, R><<<grid_for(d, kThreads), kThreads, 0, stream>>>(
          rows, L, d, alpha, uniform, out_t, out);
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
