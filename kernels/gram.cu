/* The Gram pass of the Gram-space family (DESIGN §1): one read of the rows
 * yields every inner product, from which the n x n solvers work.
 *
 *  - L <= kSmallRows rows, Gram mode (contiguous or row pointers): a
 *    one-pass kernel of our own, gram_small_kernel: a thread owns coordinates
 *    (a warp reads 32 consecutive ones of each row) and keeps all L(L+1)/2
 *    products in registers, fp32 fused multiply-adds over its <= 32
 *    coordinates (blocked), then an fp32 warp tree and double beyond. It is
 *    memory-bound where cuBLAS is not at such small n.
 *  - larger contiguous rows: cuBLAS, G = X X^T accumulated in fp32, chunk
 *    by chunk of the coordinates (cublasGemmStridedBatchedEx_64 with
 *    CUBLAS_COMPUTE_32F for every dtype, the chunks' Grams added in double:
 *    cublasSsyrk_64 ran at 1.2 GB/s for n = 8, d = 8M on an H200, and one
 *    GemmEx over all of d at 10-15% of the copy rate for n = 16-128); the
 *    handle stays in the default math mode, so never TF32.
 *  - row pointers, centered clipping's extra row v_0, and the direct mode
 *    (sum_k (x_i[k] - x_j[k])^2 in double, no cancellation): a tiled kernel
 *    of our own that takes the row pointers as a kernel parameter, so
 *    nothing is packed or copied. Gram mode sums each 32-coordinate step in
 *    fp32 and the steps in double (blocked); direct mode sums in double.
 *
 * Both own kernels are deterministic: the coordinate range is cut into
 * gram_splits(L, d, direct) slices, a function of the shape only, whose
 * partial sums sum_splits_kernel (solve.cu) adds in a fixed order. */
#include "launch.cuh"

namespace ragg_cuda {
namespace {

constexpr int kTileRows = 64;  /* rows of G per block side */
constexpr int kTileK = 32;     /* coordinates staged per step */
constexpr int kThreads = 256;  /* 16 x 16 threads, 4 x 4 entries each */
constexpr int kPad = 4;        /* keeps float4 reads aligned */
constexpr int kSmallRows = 16; /* gram_small_kernel's largest bucket */

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
    if (kDirect) {
#pragma unroll 4
      for (int kk = 0; kk < kTileK; ++kk) {
        float4 av = *(const float4 *)&As[kk][ty * 4];
        float4 bv = *(const float4 *)&B[kk][tx * 4];
        double a[4] = {av.x, av.y, av.z, av.w}, b[4] = {bv.x, bv.y, bv.z, bv.w};
#pragma unroll
        for (int u = 0; u < 4; ++u)
#pragma unroll
          for (int v = 0; v < 4; ++v) {
            if (i0 + u != j0 + v) {
              double diff = a[u] - b[v];
              acc[u][v] += diff * diff;
            } else {
              acc[u][v] += a[u] * b[v];
            }
          }
      }
    } else {
      /* one step of 32 coordinates in fp32 (no conversion per product), the
       * steps in double */
      float fa[4][4];
#pragma unroll
      for (int u = 0; u < 4; ++u)
#pragma unroll
        for (int v = 0; v < 4; ++v) fa[u][v] = 0.0f;
#pragma unroll 8
      for (int kk = 0; kk < kTileK; ++kk) {
        float4 av = *(const float4 *)&As[kk][ty * 4];
        float4 bv = *(const float4 *)&B[kk][tx * 4];
        float a[4] = {av.x, av.y, av.z, av.w}, b[4] = {bv.x, bv.y, bv.z, bv.w};
#pragma unroll
        for (int u = 0; u < 4; ++u)
#pragma unroll
          for (int v = 0; v < 4; ++v) fa[u][v] = __fmaf_rn(a[u], b[v], fa[u][v]);
      }
#pragma unroll
      for (int u = 0; u < 4; ++u)
#pragma unroll
        for (int v = 0; v < 4; ++v) acc[u][v] += (double)fa[u][v];
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

/* ---- small L: one thread keeps every product of its coordinates ------- */

constexpr int kSmallThreads = 128;
constexpr int kSmallPerThread = 32; /* coordinates a thread sums in fp32 */

template <int NB, ragg_dtype_t T, class R>
__global__ void __launch_bounds__(kSmallThreads)
    gram_small_kernel(const __grid_constant__ R rows, int64_t L, int64_t d, int64_t chunk,
                      double *parts) {
  constexpr int P = NB * (NB + 1) / 2;
  constexpr int U = NB <= 8 ? 4 : 2; /* coordinates whose loads are in flight together */
  __shared__ const char *rp[NB];
  __shared__ float red[kSmallThreads / 32][P];
  /* rows past L read row 0 (a valid address) and count as 0: every load is
   * unconditional, so all of them are in flight at once */
  if (threadIdx.x < NB)
    rp[threadIdx.x] = (const char *)rows.row((int64_t)threadIdx.x < L ? threadIdx.x : 0);
  __syncthreads();
  const char *p[NB];
#pragma unroll
  for (int i = 0; i < NB; ++i) p[i] = rp[i];
  float acc[P];
#pragma unroll
  for (int q = 0; q < P; ++q) acc[q] = 0.0f;
  const int64_t k0 = (int64_t)blockIdx.x * chunk, kend = k0 + chunk < d ? k0 + chunk : d;
  int64_t k = k0 + threadIdx.x;
  for (; k + (U - 1) * kSmallThreads < kend; k += U * kSmallThreads) {
    float v[U][NB];
#pragma unroll
    for (int u = 0; u < U; ++u)
#pragma unroll
      for (int i = 0; i < NB; ++i) {
        float x = load_as<T>(p[i], k + u * kSmallThreads);
        v[u][i] = i < L ? x : 0.0f;
      }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      int q = 0;
#pragma unroll
      for (int i = 0; i < NB; ++i)
#pragma unroll
        for (int j = i; j < NB; ++j, ++q) acc[q] = __fmaf_rn(v[u][i], v[u][j], acc[q]);
    }
  }
  for (; k < kend; k += kSmallThreads) {
    float v[NB];
#pragma unroll
    for (int i = 0; i < NB; ++i) {
      float x = load_as<T>(p[i], k);
      v[i] = i < L ? x : 0.0f;
    }
    int q = 0;
#pragma unroll
    for (int i = 0; i < NB; ++i)
#pragma unroll
      for (int j = i; j < NB; ++j, ++q) acc[q] = __fmaf_rn(v[i], v[j], acc[q]);
  }
  /* a fixed fp32 tree over the warp, then the warps in double, in order */
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int q = 0; q < P; ++q) {
    float s = acc[q];
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) s += __shfl_down_sync(0xFFFFFFFFu, s, o);
    if (lane == 0) red[warp][q] = s;
  }
  __syncthreads();
  double *P_out = parts + (int64_t)blockIdx.x * L * L;
  for (int q = threadIdx.x; q < P; q += kSmallThreads) {
    int i = 0, rem = q;
    while (rem >= NB - i) {
      rem -= NB - i;
      ++i;
    }
    int j = i + rem;
    double s = 0.0;
#pragma unroll
    for (int w = 0; w < kSmallThreads / 32; ++w) s += (double)red[w][q];
    if (i < L && j < L) P_out[i * L + j] = s;
  }
}

bool use_small(int64_t L, bool direct) { return !direct && L <= kSmallRows; }

int64_t small_splits(int64_t L, int64_t d) {
  int64_t s = ceil_div(d, (int64_t)kSmallThreads * kSmallPerThread);
  int64_t cap = (int64_t)((64u << 20) / (8u * (uint64_t)L * (uint64_t)L)); /* 64 MiB of parts */
  if (s > cap) s = cap;
  if (s > INT32_MAX) s = INT32_MAX;
  return s < 1 ? 1 : s;
}

template <int NB, class R>
cudaError_t launch_small(const R &rows, ragg_dtype_t t, int64_t L, int64_t d, double *parts,
                         cudaStream_t stream) {
  int64_t ns = small_splits(L, d);
  int64_t chunk = ceil_div(ceil_div(d, ns), kSmallThreads) * kSmallThreads;
  unsigned grid = (unsigned)ns;
  if (t == RAGG_F32)
    gram_small_kernel<NB, RAGG_F32, R><<<grid, kSmallThreads, 0, stream>>>(rows, L, d, chunk, parts);
  else if (t == RAGG_F16)
    gram_small_kernel<NB, RAGG_F16, R><<<grid, kSmallThreads, 0, stream>>>(rows, L, d, chunk, parts);
  else
    gram_small_kernel<NB, RAGG_BF16, R><<<grid, kSmallThreads, 0, stream>>>(rows, L, d, chunk, parts);
  return cudaGetLastError();
}

}  // namespace

bool gram_prefers_own_kernel(int64_t L) { return L <= kSmallRows; }

int64_t gram_splits(int64_t L, int64_t d, bool direct) {
  if (use_small(L, direct)) return small_splits(L, d);
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
  if (use_small(L, direct) && (src.base || L <= kParamRows)) {
    return with_rows(src, [&](const auto &rows) -> cudaError_t {
      using R = std::decay_t<decltype(rows)>;
      if constexpr (std::is_same<R, DevRows>::value) {
        return cudaErrorInvalidValue; /* not reached: L <= kParamRows */
      } else {
        if (L <= 8) return launch_small<8>(rows, src.dtype, L, d, parts, stream);
        return launch_small<kSmallRows>(rows, src.dtype, L, d, parts, stream);
      }
    });
  }
  int64_t T = ceil_div(L, kTileRows), pairs = T * (T + 1) / 2;
  if (pairs > 65535) return cudaErrorInvalidConfiguration;
  int64_t ns = gram_splits(L, d, direct);
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

namespace {
constexpr int64_t kBlasMinChunk = 2048; /* coordinates a GEMM of the split pass takes at least */
constexpr int64_t kBlasTiles = 1024;    /* about this many 64 x 64 output tiles in all */

struct BlasSplit {
  int64_t chunk, full, rem; /* full chunks of `chunk` coordinates, then one of rem */
};

BlasSplit blas_split(int64_t n, int64_t d) {
  int64_t tiles = ceil_div(n, 64) * ceil_div(n, 64);
  int64_t s = ceil_div(kBlasTiles, tiles);
  int64_t by_len = d / kBlasMinChunk;
  int64_t cap = (int64_t)((64u << 20) / (4u * (uint64_t)n * (uint64_t)n)); /* 64 MiB of slots */
  if (s > by_len) s = by_len;
  if (s > cap) s = cap;
  if (s < 1) s = 1;
  BlasSplit b;
  b.chunk = ceil_div(ceil_div(d, s), 32) * 32; /* chunk starts stay 128-byte aligned */
  b.full = d / b.chunk;
  b.rem = d - b.full * b.chunk;
  return b;
}
}  // namespace

int64_t gram_blas_slots(int64_t n, int64_t d) {
  BlasSplit b = blas_split(n, d);
  return b.full + (b.rem > 0);
}

cublasStatus_t gram_cublas(cublasHandle_t h, ragg_dtype_t t, const void *x, int64_t n, int64_t d,
                           int64_t ld, float *G, const char **call) {
  const float one = 1.0f, zero = 0.0f;
  cudaDataType_t ct = t == RAGG_F32 ? CUDA_R_32F : t == RAGG_F16 ? CUDA_R_16F : CUDA_R_16BF;
  size_t es = t == RAGG_F32 ? 4 : 2;
  BlasSplit b = blas_split(n, d);
  /* row-major X (n x d, ld) is column-major X^T: a chunk's G = (X_c^T)^T X_c^T;
   * fp32 inputs with CUBLAS_COMPUTE_32F in the default math mode stay fp32 */
  cublasStatus_t s = CUBLAS_STATUS_SUCCESS;
  if (b.full > 0) {
    *call = "cublasGemmStridedBatchedEx_64";
    s = cublasGemmStridedBatchedEx_64(h, CUBLAS_OP_T, CUBLAS_OP_N, n, n, b.chunk, &one, x, ct, ld,
                                      b.chunk, x, ct, ld, b.chunk, &zero, G, CUDA_R_32F, n, n * n,
                                      b.full, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
  }
  if (s == CUBLAS_STATUS_SUCCESS && b.rem > 0) {
    const char *last = (const char *)x + (size_t)(b.full * b.chunk) * es;
    *call = "cublasGemmEx_64";
    s = cublasGemmEx_64(h, CUBLAS_OP_T, CUBLAS_OP_N, n, n, b.rem, &one, last, ct, ld, last, ct, ld,
                        &zero, G + b.full * n * n, CUDA_R_32F, n, CUBLAS_COMPUTE_32F,
                        CUBLAS_GEMM_DEFAULT);
  }
  return s;
}

}  // namespace ragg_cuda
