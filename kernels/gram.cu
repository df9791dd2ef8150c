/* The Gram pass of the Gram-space family (DESIGN §1): one read of the rows
 * yields every inner product, from which the n x n solvers work.
 *
 *  - contiguous rows: cuBLAS, G = X X^T accumulated in fp32 (cublasSsyrk_64;
 *    cublasGemmEx_64 with CUBLAS_COMPUTE_32F for fp16/bf16, which have no
 *    SYRK); the handle stays in the default math mode, so never TF32.
 *  - row pointers, centered clipping's extra row v_0, and the direct mode
 *    (sum_k (x_i[k] - x_j[k])^2, no cancellation): a tiled kernel of our own
 *    that accumulates in double and takes the row pointers as a kernel
 *    parameter, so nothing is packed or copied.
 *
 * The tiled kernel's result is deterministic: the coordinate range is cut
 * into gram_splits(L, d) slices whose partial sums are added in slice order
 * by the finalisation kernel (solve.cu). */
#include "launch.cuh"

namespace ragg_cuda {
namespace {

constexpr int kTileRows = 64;  /* rows of G per block side */
constexpr int kTileK = 32;     /* coordinates staged per step */
constexpr int kThreads = 256;  /* 16 x 16 threads, 4 x 4 entries each */
constexpr int kPad = 4;        /* keeps float4 reads aligned */

/* Stages rows [r0, r0 + 64) x coordinates [k0, k0 + 32) as floats; a warp
 * reads 32 consecutive coordinates of one row. Missing entries are 0. */
template <class R>
__device__ __forceinline__ void stage_tile(const R &rows, ragg_dtype_t t, int64_t L, int64_t r0,
                                           int64_t k0, int64_t kend,
                                           float (*tile)[kTileRows + kPad]) {
  for (int e = threadIdx.x; e < kTileRows * kTileK; e += kThreads) {
    int r = e / kTileK, kk = e % kTileK;
    int64_t row = r0 + r, k = k0 + kk;
    float v = 0.0f;
    if (row < L && k < kend) v = load_value(t, rows.row(row), k);
    tile[kk][r] = v;
  }
}

template <bool kDirect, class R>
__global__ void __launch_bounds__(kThreads)
    gram_tile_kernel(const __grid_constant__ R rows, ragg_dtype_t t, int64_t L, int64_t d,
                     int64_t chunk, double *parts) {
  __shared__ __align__(16) float As[kTileK][kTileRows + kPad];
  __shared__ __align__(16) float Bs[kTileK][kTileRows + kPad];
  /* blockIdx.y enumerates the tile pairs bi <= bj */
  int64_t q = blockIdx.y, bi = 0, T = ceil_div(L, kTileRows);
  while (q >= T - bi) { q -= T - bi; ++bi; }
  int64_t bj = bi + q, split = blockIdx.x;
  int64_t k0 = split * chunk, kend = k0 + chunk < d ? k0 + chunk : d;
  int ty = threadIdx.x / 16, tx = threadIdx.x % 16;
  int64_t i0 = bi * kTileRows + ty * 4, j0 = bj * kTileRows + tx * 4;
  double acc[4][4];
#pragma unroll
  for (int a = 0; a < 4; ++a)
#pragma unroll
    for (int b = 0; b < 4; ++b) acc[a][b] = 0.0;
  const bool same = bi == bj;
  for (int64_t k = k0; k < kend; k += kTileK) {
    stage_tile(rows, t, L, bi * kTileRows, k, kend, As);
    if (!same) stage_tile(rows, t, L, bj * kTileRows, k, kend, Bs);
    __syncthreads();
    float(*B)[kTileRows + kPad] = same ? As : Bs;
#pragma unroll 4
    for (int kk = 0; kk < kTileK; ++kk) {
      float4 av = *(const float4 *)&As[kk][ty * 4];
      float4 bv = *(const float4 *)&B[kk][tx * 4];
      double a[4] = {av.x, av.y, av.z, av.w}, b[4] = {bv.x, bv.y, bv.z, bv.w};
#pragma unroll
      for (int u = 0; u < 4; ++u)
#pragma unroll
        for (int v = 0; v < 4; ++v) {
          if (kDirect && i0 + u != j0 + v) {
            double diff = a[u] - b[v];
            acc[u][v] += diff * diff;
          } else {
            acc[u][v] += a[u] * b[v];
          }
        }
    }
    __syncthreads();
  }
  double *P = parts + split * L * L;
#pragma unroll
  for (int u = 0; u < 4; ++u)
#pragma unroll
    for (int v = 0; v < 4; ++v) {
      int64_t i = i0 + u, j = j0 + v;
      if (i < L && j < L && i <= j) P[i * L + j] = acc[u][v];
    }
}

}  // namespace

int64_t gram_splits(int64_t L, int64_t d) {
  int64_t T = ceil_div(L, kTileRows), pairs = T * (T + 1) / 2;
  int64_t s = ceil_div(1024, pairs);                      /* about 1024 blocks in all */
  int64_t cap = (int64_t)((64u << 20) / (8u * (uint64_t)L * (uint64_t)L)); /* 64 MiB of parts */
  int64_t steps = ceil_div(d, kTileK);
  if (s > steps) s = steps;
  if (s > cap) s = cap;
  if (s > 65535) s = 65535;
  return s < 1 ? 1 : s;
}

cudaError_t launch_gram_tiles(const RowSource &src, int64_t L, int64_t d, bool direct,
                              double *parts, cudaStream_t stream) {
  int64_t T = ceil_div(L, kTileRows), pairs = T * (T + 1) / 2;
  if (pairs > 65535) return cudaErrorInvalidConfiguration;
  int64_t ns = gram_splits(L, d);
  int64_t chunk = ceil_div(ceil_div(d, ns), kTileK) * kTileK;
  dim3 grid((unsigned)ns, (unsigned)pairs);
  return with_rows(src, [&](const auto &rows) {
    using R = std::decay_t<decltype(rows)>;
    if (direct)
      gram_tile_kernel<true, R><<<grid, kThreads, 0, stream>>>(rows, src.dtype, L, d, chunk, parts);
    else
      gram_tile_kernel<false, R><<<grid, kThreads, 0, stream>>>(rows, src.dtype, L, d, chunk, parts);
    return cudaGetLastError();
  });
}

cublasStatus_t gram_cublas(cublasHandle_t h, ragg_dtype_t t, const void *x, int64_t n, int64_t d,
                           int64_t ld, float *G, const char **call) {
  const float one = 1.0f, zero = 0.0f;
  if (t == RAGG_F32) {
    *call = "cublasSsyrk_64";
    /* row-major X (n x d, ld) is column-major X^T: G = (X^T)^T X^T */
    return cublasSsyrk_64(h, CUBLAS_FILL_MODE_UPPER, CUBLAS_OP_T, n, d, &one, (const float *)x, ld,
                          &zero, G, n);
  }
  *call = "cublasGemmEx_64";
  cudaDataType_t ct = t == RAGG_F16 ? CUDA_R_16F : CUDA_R_16BF;
  return cublasGemmEx_64(h, CUBLAS_OP_T, CUBLAS_OP_N, n, n, d, &one, x, ct, ld, x, ct, ld, &zero, G,
                         CUDA_R_32F, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
}

}  // namespace ragg_cuda
