/* The coordinate-wise family in one pass over the input (DESIGN §1): median,
 * trimmed mean, MeaMed (rules/coordinate.h defines them) and Bulyan's second
 * step, which reads its selected rows through an index list.
 *
 * Dispatch: n <= 64 -> coord_network_kernel: a thread owns a coordinate,
 *   loads its n values (a warp reads 32 consecutive coordinates of a row),
 *   turns them into order-preserving keys and sorts them in registers with a
 *   bitonic network for the compile-time bucket N = 8, 16, 32 or 64, padded
 *   with top keys. Every register index is a compile-time constant: ranks
 *   that depend on n, f or keep are picked by predicated selects, never by a
 *   runtime index (that would spill the array to local memory).
 * n > 64, or the report's per-row counts -> coord_tile_kernel: a block
 *   stages a tile of coordinates in shared memory (or, beyond it, in the
 *   workspace), sorts each column with a block-wide bitonic network and
 *   reduces it with the very functions of rules/coordinate.h.
 * Both give the CPU's bits: keys sort into the same order, and the
 * reductions add the same values in the same order in double. */
#include <algorithm>

#include "launch.cuh"
#include "rules/coordinate.h"

namespace ragg_cuda {
namespace {

constexpr int kNetThreads = 128;
constexpr int kTileThreads = 256;
constexpr int kTileSmemBytes = 64 * 1024;

struct CoordArgs {
  int64_t n, d;
  const int64_t *idx;
  int rule;
  int64_t f, keep;
  ragg_dtype_t in_t, out_t;
  void *out;
};

/* ---- register networks ------------------------------------------------- */

template <int N>
__device__ __forceinline__ void bitonic_sort(int32_t (&a)[N]) {
#pragma unroll
  for (int size = 2; size <= N; size <<= 1)
#pragma unroll
    for (int stride = size / 2; stride > 0; stride >>= 1)
#pragma unroll
      for (int i = 0; i < N; ++i) {
        const int j = i ^ stride;
        if (j > i) {
          int32_t lo = min(a[i], a[j]), hi = max(a[i], a[j]);
          const bool up = (i & size) == 0;
          a[i] = up ? lo : hi;
          a[j] = up ? hi : lo;
        }
      }
}

/* The value of rank r (runtime) of the sorted keys, by predicated selects. */
template <int N>
__device__ __forceinline__ float rank_value(const int32_t (&a)[N], int64_t r) {
  int32_t k = kTopKey;
#pragma unroll
  for (int i = 0; i < N; ++i)
    if (i == r) k = a[i];
  return key_float(k);
}

/* b[i] = a[i + s] (top keys past the end) for a runtime shift s < N: a
 * barrel shifter of log2(N) conditional constant shifts. */
template <int N>
__device__ __forceinline__ void shift_down(const int32_t (&a)[N], int64_t s, int32_t (&b)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) b[i] = a[i];
#pragma unroll
  for (int bit = 1; bit < N; bit <<= 1)
    if (s & bit) {
#pragma unroll
      for (int i = 0; i < N; ++i) b[i] = i + bit < N ? b[i + bit] : kTopKey;
    }
}

__device__ __forceinline__ double meamed_distance(float x, double m2) {
  return ragg_coord_distance(x, m2);
}

template <int N>
__device__ __forceinline__ double network_reduce(const int32_t (&a)[N], const CoordArgs &c) {
  const int64_t n = c.n;
  if (c.rule == RAGG_RULE_MEDIAN) {
    double lo = (double)rank_value(a, (n - 1) / 2);
    if (n & 1) return lo;
    return (lo + (double)rank_value(a, n / 2)) * 0.5;
  }
  if (c.rule == RAGG_RULE_TRIMMED_MEAN) {
    double s = 0.0;
#pragma unroll
    for (int i = 0; i < N; ++i)
      if (i >= c.f && i < n - c.f) s += (double)key_float(a[i]);
    return s / (double)(n - 2 * c.f);
  }
  /* MeaMed (and Bulyan's step): the keep values closest to the median. The
   * distances |2x - 2m| fall then rise along the sorted values, so the keep
   * smallest form a window and the keep-th smallest distance t is the least,
   * over the windows, of the larger distance at the window's two ends. */
  double m2 = (n & 1) ? 2.0 * (double)rank_value(a, n / 2)
                      : (double)rank_value(a, n / 2 - 1) + (double)rank_value(a, n / 2);
  const int64_t keep = c.keep;
  int32_t last[N]; /* last[s] = a[s + keep - 1]: the window's far end */
  shift_down(a, keep - 1, last);
  double t = 1.0 / 0.0;
#pragma unroll
  for (int s = 0; s < N; ++s)
    if (s + keep <= n) {
      double dl = meamed_distance(key_float(a[s]), m2), dr = meamed_distance(key_float(last[s]), m2);
      double w = dl < dr ? dr : dl;
      if (w < t) t = w;
    }
  double below = 0.0, tied = 0.0;
  int64_t nbelow = 0, ntied = 0;
#pragma unroll
  for (int i = 0; i < N; ++i)
    if (i < n) {
      float x = key_float(a[i]);
      double di = meamed_distance(x, m2);
      if (di < t) {
        below += (double)x;
        ++nbelow;
      } else if (di == t) {
        tied += (double)x;
        ++ntied;
      }
    }
  double s = below;
  if (ntied > 0) s += (double)(keep - nbelow) * (tied / (double)ntied);
  return s / (double)keep;
}

/* rp: the N row addresses (ranks past n repeat row n - 1, a valid address):
 * every load is unconditional, so all N are in flight at once, and ranks
 * past n become top keys by a select after the load. */
template <int N, ragg_dtype_t T>
__device__ __forceinline__ void network_load(const char *const *rp, int64_t n, int64_t k,
                                             int32_t (&a)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) {
    int32_t key = float_key(load_as<T>(rp[i], k));
    a[i] = i < n ? key : kTopKey;
  }
}

template <int N, class R>
__global__ void __launch_bounds__(kNetThreads)
    coord_network_kernel(const __grid_constant__ R rows, CoordArgs c) {
  __shared__ const char *rp[N];
  if (threadIdx.x < N) {
    int64_t i = (int64_t)threadIdx.x < c.n ? (int64_t)threadIdx.x : c.n - 1;
    rp[threadIdx.x] = (const char *)rows.row(c.idx ? __ldg(c.idx + i) : i);
  }
  __syncthreads();
  for (int64_t k = (int64_t)blockIdx.x * kNetThreads + threadIdx.x; k < c.d;
       k += (int64_t)gridDim.x * kNetThreads) {
    int32_t a[N];
    if (c.in_t == RAGG_F32)
      network_load<N, RAGG_F32>(rp, c.n, k, a);
    else if (c.in_t == RAGG_F16)
      network_load<N, RAGG_F16>(rp, c.n, k, a);
    else
      network_load<N, RAGG_BF16>(rp, c.n, k, a);
    bitonic_sort(a);
    store_value(c.out_t, c.out, k, network_reduce(a, c));
  }
}

/* ---- shared-memory (or workspace) tiles -------------------------------- */

struct TileShape {
  int64_t np;   /* n rounded up to a power of two */
  int64_t cols; /* coordinates per tile */
  int64_t ld;   /* keys between columns */
  bool in_smem;
};

TileShape tile_shape(int64_t n) {
  TileShape s;
  s.np = 1;
  while (s.np < n) s.np <<= 1;
  s.ld = s.np + 1; /* odd stride: columns fall on different banks */
  s.cols = (kTileSmemBytes / 4) / s.ld;
  if (s.cols > 32) s.cols = 32;
  s.in_smem = s.cols >= 1;
  if (!s.in_smem) s.cols = 1;
  return s;
}
constexpr int64_t kScratchBlocks = 264;

template <class R>
__global__ void __launch_bounds__(kTileThreads)
    coord_tile_kernel(const __grid_constant__ R rows, CoordArgs c, TileShape s, int32_t *gkeys,
                      int64_t *counts) {
  extern __shared__ int32_t smem_keys[];
  int32_t *keys = s.in_smem ? smem_keys : gkeys + (int64_t)blockIdx.x * s.ld * s.cols;
  const int64_t n = c.n, cols = s.cols, np = s.np, ld = s.ld;
  for (int64_t k0 = (int64_t)blockIdx.x * cols; k0 < c.d; k0 += (int64_t)gridDim.x * cols) {
    for (int64_t e = threadIdx.x; e < np * cols; e += kTileThreads) {
      int64_t i = e / cols, col = e % cols, k = k0 + col;
      int32_t key = kTopKey;
      if (i < n && k < c.d)
        key = float_key(load_value(c.in_t, rows.row(c.idx ? __ldg(c.idx + i) : i), k));
      keys[col * ld + i] = key;
    }
    __syncthreads();
    for (int64_t size = 2; size <= np; size <<= 1)
      for (int64_t stride = size / 2; stride > 0; stride >>= 1) {
        for (int64_t e = threadIdx.x; e < (np / 2) * cols; e += kTileThreads) {
          int64_t col = e / (np / 2), p = e % (np / 2);
          int64_t i = 2 * stride * (p / stride) + p % stride, j = i + stride;
          int32_t *v = keys + col * ld;
          int32_t x = v[i], y = v[j];
          bool up = (i & size) == 0;
          if ((x > y) == up) {
            v[i] = y;
            v[j] = x;
          }
        }
        __syncthreads();
      }
    if (counts) {
      /* the loop bound is a multiple of the block, so whole warps take part */
      int64_t work = ceil_div(n * cols, kTileThreads) * kTileThreads;
      for (int64_t e = threadIdx.x; e < work; e += kTileThreads) {
        int64_t i = e / cols, col = e % cols, k = k0 + col;
        bool out_of_range = false;
        if (i < n && k < c.d) {
          const int32_t *v = keys + col * ld;
          int32_t key = float_key(load_value(c.in_t, rows.row(i), k));
          out_of_range = key < v[c.f] || key > v[n - 1 - c.f];
        }
        /* one atomic per row and warp: lanes of a warp mostly share i */
        unsigned voters = __ballot_sync(0xFFFFFFFFu, out_of_range);
        if (out_of_range) {
          unsigned same = __match_any_sync(voters, (unsigned long long)i);
          if ((threadIdx.x & 31) == __ffs(same) - 1)
            atomicAdd((unsigned long long *)(counts + i), (unsigned long long)__popc(same));
        }
      }
      __syncthreads();
    }
    for (int64_t col = threadIdx.x; col < cols; col += kTileThreads) {
      int64_t k = k0 + col;
      if (k >= c.d) continue;
      int32_t *v = keys + col * ld;
      float *f = (float *)v;
      for (int64_t i = 0; i < n; ++i) f[i] = key_float(v[i]);
      double r = c.rule == RAGG_RULE_MEDIAN         ? ragg_coord_median(f, n)
                 : c.rule == RAGG_RULE_TRIMMED_MEAN ? ragg_coord_trimmed(f, n, c.f)
                                                    : ragg_coord_meamed(f, n, c.keep);
      store_value(c.out_t, c.out, k, r);
    }
    __syncthreads();
  }
}

template <int N>
cudaError_t launch_network(const RowSource &src, const CoordArgs &c, cudaStream_t stream) {
  return with_rows(src, [&](const auto &rows) {
    using R = std::decay_t<decltype(rows)>;
    coord_network_kernel<N, R><<<grid_for(c.d, kNetThreads), kNetThreads, 0, stream>>>(rows, c);
    return cudaGetLastError();
  });
}

}  // namespace

size_t coord_scratch_bytes(int64_t n, int64_t d) {
  (void)d;
  TileShape s = tile_shape(n);
  return s.in_smem ? 0 : sizeof(int32_t) * (size_t)(s.ld * s.cols * kScratchBlocks);
}

cudaError_t launch_coordinate(const RowSource &src, int64_t n, int64_t d, const int64_t *idx,
                              const CoordOp &op, ragg_dtype_t out_t, void *out, int64_t *counts,
                              void *scratch, cudaStream_t stream) {
  CoordArgs c{n, d, idx, op.rule, op.f, op.keep, src.dtype, out_t, out};
  if (!counts) {
    if (n <= 8) return launch_network<8>(src, c, stream);
    if (n <= 16) return launch_network<16>(src, c, stream);
    if (n <= 32) return launch_network<32>(src, c, stream);
    if (n <= 64) return launch_network<64>(src, c, stream);
  } else {
    cudaError_t e = cudaMemsetAsync(counts, 0, sizeof(int64_t) * (size_t)n, stream);
    if (e != cudaSuccess) return e;
  }
  TileShape s = tile_shape(n);
  size_t smem = s.in_smem ? sizeof(int32_t) * (size_t)(s.ld * s.cols) : 0;
  int64_t tiles = ceil_div(d, s.cols);
  unsigned grid = (unsigned)std::min<int64_t>(s.in_smem ? 65535 * 8 : kScratchBlocks, tiles);
  return with_rows(src, [&](const auto &rows) {
    using R = std::decay_t<decltype(rows)>;
    cudaError_t e = cudaFuncSetAttribute(coord_tile_kernel<R>,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         kTileSmemBytes);
    if (e != cudaSuccess) return e;
    coord_tile_kernel<R><<<grid, kTileThreads, smem, stream>>>(rows, c, s, (int32_t *)scratch,
                                                               counts);
    return cudaGetLastError();
  });
}

}  // namespace ragg_cuda
