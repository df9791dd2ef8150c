/* The n x n stage on the device: squared distances from the raw Gram sums,
 * then the shared solver (host/solver, host/rules), compiled here as
 * device-only code from the very same C files with --fmad=false, so the GPU
 * derives bit-identical weights from bit-identical distances (DESIGN §1).
 * The rules' independent row work (ragg_presolve_rows) runs first in kernels
 * that give it many threads, the rest in one thread; no host round trip
 * between the Gram pass, the solver and the combination. */
#include "launch.cuh"

/* The solver's files again, as device-only code in a namespace of their own
 * (types included): C++ linkage there, so no host symbol clashes with the
 * CPU build's C ones, and no call can resolve to the host build. */
#undef RAGG_SOLVER_H
#undef RAGG_HD
#define RAGG_HD __device__
#define RAGG_SOLVER_NO_EXTERN_C
namespace ragg_device {
#include "solver/solver.h"
#include "solver/linalg.c"
#include "solver/solver.c"
#include "rules/brute.c"
#include "rules/caf.c"
#include "rules/centered_clip.c"
#include "rules/covariance.c"
#include "rules/geomed.c"
#include "rules/krum.c"
#include "rules/monna.c"
#include "rules/smea.c"
}  // namespace ragg_device
#include <string.h>

namespace ragg_cuda {
namespace {

constexpr int64_t kPresolveSmemBytes = 160 * 1024; /* within a block's 163 KiB (A100), 227 (H100) */
constexpr int64_t kWarpRowMax = 4096;              /* Krum rows a warp sorts: up to 32 KiB each */
constexpr int64_t kWarpRowsSmem = 32 * 1024;       /* a block's rows, within the default 48 KiB */

__device__ double raw_sum(const RawSums &r, int64_t i, int64_t j) {
  double s = 0.0;
  for (int64_t p = 0; p < r.nsplit; ++p) s += r.parts[p * r.rows * r.rows + i * r.rows + j];
  return s;
}

/* dst[i][j] = sum over the splits p of src's entry (i, j) of split p (i <= j),
 * one warp per entry: lane l adds splits l, l + 32, ... in order, then a
 * fixed tree over the lanes. The order is a function of the shape alone.
 * Below the diagonal (no split is read there) dst[i][j] = 0, so every entry
 * of dst is set (the sharded collectives sum all of it over the ranks).
 * Splits are L x L, row-major, or column-major (kColMajor: cuBLAS's G); dst
 * may be src's first split (each warp reads its entry before writing it). */
template <class T, bool kColMajor>
__global__ void sum_splits_kernel(const T *src, int64_t L, int64_t nsplit, double *dst) {
  int64_t e = (int64_t)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
  const int lane = threadIdx.x & 31;
  if (e >= L * L) return; /* whole warps leave together */
  int64_t i = e / L, j = e % L;
  if (j < i) {
    if (lane == 0) dst[e] = 0.0;
    return;
  }
  const int64_t at = kColMajor ? i + j * L : e;
  double s = 0.0;
  for (int64_t p = lane; p < nsplit; p += 32) s += (double)src[p * L * L + at];
  for (int o = 16; o > 0; o >>= 1) s += __shfl_down_sync(0xFFFFFFFFu, s, o);
  __syncwarp();
  if (lane == 0) dst[e] = s;
}

/* As ragg_distances_finalize (host/cpu/gram.c), one thread per pair i <= j. */
__global__ void finalize_kernel(RawSums r, int origin_anchor, int direct, double *D, double *N) {
  int64_t L = r.rows, Lo = L + origin_anchor;
  int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (e >= Lo * Lo) return;
  int64_t i = e / Lo, j = e % Lo;
  if (j < i) return;
  const double inf = 1.0 / 0.0;
  if (i == L) { /* the origin */
    D[i * Lo + i] = 0.0;
    N[i] = 0.0;
    return;
  }
  double ni = raw_sum(r, i, i);
  if (j == i) {
    N[i] = ni;
    D[i * Lo + i] = 0.0;
    return;
  }
  double v;
  if (j == L) {
    v = ragg_device::ragg_is_excluded_norm(ni) ? inf : ni;
  } else {
    double nj = raw_sum(r, j, j);
    if (ragg_device::ragg_is_excluded_norm(ni) || ragg_device::ragg_is_excluded_norm(nj)) {
      v = inf;
    } else if (direct) {
      v = raw_sum(r, i, j);
    } else {
      v = ni + nj - 2.0 * raw_sum(r, i, j);
      if (!(v > 0.0)) v = 0.0;
    }
  }
  D[i * Lo + j] = v;
  D[j * Lo + i] = v;
}

/* ragg_device's types are the same definitions as the host's, in its namespace. */
__device__ void solve_io(const SolveArgs &a, ragg_device::ragg_solve_params_t *p,
                         ragg_device::ragg_solve_io_t *io) {
  static_assert(sizeof(*p) == sizeof(a.p), "one definition of ragg_solve_params_t");
  memcpy(p, &a.p, sizeof(*p));
  memset(io, 0, sizeof(*io));
  io->n = a.n;
  io->has_anchor = a.has_anchor;
  io->D = a.D;
  io->N = a.N;
  io->alpha = a.alpha;
  io->scores = a.scores;
  io->selected = a.selected;
  io->bulyan_rows = a.bulyan_rows;
  io->n_mixed = a.n;
  io->mix = a.mix;
  io->scratch = a.scratch;
  io->iscratch = a.iscratch;
  io->presolved = a.presolved;
}

/* What the row-parallel kernels work on: the parameters, and the view
 * ragg_solve gives a rule without a pre-step. */
struct RuleView {
  ragg_device::ragg_solve_params_t p;
  ragg_device::ragg_solve_io_t io;
  ragg_device::ragg_rule_io_t rio;
  __device__ explicit RuleView(const SolveArgs &a) {
    solve_io(a, &p, &io);
    ragg_device::ragg_presolve_rule_io(&io, &rio);
  }
};

/* Each row's independent share (Krum family scores, Bulyan's sorted lists),
 * a thread a row: the same code, and so the same bits, as the serial loop.
 * With shared memory (tmp_rows > 0), each thread's n working doubles live
 * there rather than in the workspace. */
__global__ void presolve_kernel(SolveArgs a, int tmp_rows) {
  extern __shared__ double presolve_tmp[];
  int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= a.n) return;
  ragg_device::ragg_solve_params_t p;
  ragg_device::ragg_solve_io_t io;
  solve_io(a, &p, &io);
  ragg_device::ragg_presolve_row(&p, &io, i, tmp_rows ? presolve_tmp + threadIdx.x * a.n : NULL);
}

/* Krum's and Multi-Krum's row scores, a warp a row: the row's distances to
 * the other points (in column order) in shared memory, padded to P (a power
 * of two) with NaN, sorted by a bitonic network in NaN-last order, then lane
 * 0 adds the k smallest in ascending order. A sorted list of doubles is the
 * same list whichever sort made it, and the padding sorts after every value
 * (a NaN among the k smallest makes the sum NaN either way), so the score
 * has the bits of the serial row_score that ragg_presolve_row runs
 * (test_cuda_solver compares them). */
__device__ __forceinline__ bool nan_last_less(double a, double b) {
  if (a != a) return false;
  if (b != b) return true;
  return a < b;
}

__global__ void krum_scores_warp_kernel(SolveArgs a, int P) {
  extern __shared__ double krum_rows[];
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, W = blockDim.x >> 5;
  const int64_t i = (int64_t)blockIdx.x * W + w;
  if (i >= a.n) return; /* whole warps leave together */
  RuleView rv(a);
  double *v = krum_rows + (size_t)w * P;
  const int64_t c = a.n - 1;
  const double *Di = rv.rio.D + i * rv.rio.ld;
  for (int t = lane; t < P; t += 32) v[t] = t < c ? Di[t < i ? t : t + 1] : nan("");
  __syncwarp();
  for (int size = 2; size <= P; size <<= 1)
    for (int ls = __ffs(size) - 2; ls >= 0; --ls) {
      const int stride = 1 << ls;
      for (int q = lane; q < P / 2; q += 32) {
        int x = ((q >> ls) << (ls + 1)) | (q & (stride - 1)), y = x + stride;
        double vx = v[x], vy = v[y];
        bool up = (x & size) == 0;
        if (up ? nan_last_less(vy, vx) : nan_last_less(vx, vy)) {
          v[x] = vy;
          v[y] = vx;
        }
      }
      __syncwarp();
    }
  if (lane == 0) {
    const int64_t k = a.n - rv.p.f - 2;
    double s = 0.0;
    for (int64_t t = 0; t < k && t < c; ++t) s += v[t];
    rv.rio.krum_scores[i] = s;
  }
}

/* Multi-Krum's order, a thread a row: row i's place among the scores (an
 * excluded row's +Inf, as the solver marks them) in (score, index) order,
 * NaN last: the permutation the solver's argsort finds, since that order is
 * total. */
__global__ void multi_krum_order_kernel(SolveArgs a) {
  int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= a.n) return;
  RuleView rv(a);
  auto score = [&](int64_t j) {
    return ragg_device::ragg_is_excluded_norm(rv.rio.N[j]) ? 1.0 / 0.0 : rv.rio.krum_scores[j];
  };
  const double si = score(i);
  int64_t rank = 0;
  for (int64_t j = 0; j < a.n; ++j) {
    double sj = score(j);
    rank += nan_last_less(sj, si) || (!nan_last_less(si, sj) && j < i);
  }
  rv.rio.iscratch[rank] = i;
}

/* Bulyan's rounds on presolved rows, one block: each round's row scores a
 * thread a row, then its pick in one thread, a barrier after each (the same
 * functions, in the same order per row, as the serial loop). */
__global__ void bulyan_rounds_kernel(SolveArgs a) {
  RuleView rv(a);
  if (threadIdx.x == 0) ragg_device::ragg_bulyan_begin(&rv.rio);
  __syncthreads();
  const int64_t theta = a.n - 2 * rv.p.f;
  for (int64_t round = 0; round < theta; ++round) {
    for (int64_t i = threadIdx.x; i < a.n; i += blockDim.x)
      ragg_device::ragg_bulyan_row_score(&rv.p, &rv.rio, round, i);
    __syncthreads();
    if (threadIdx.x == 0) ragg_device::ragg_bulyan_pick(&rv.p, &rv.rio, round);
    __syncthreads();
  }
}

/* The geometric median in one block: its row pieces a thread a row, the
 * rest in thread 0, a barrier between (the same functions, in the same
 * order per row, as ragg_solve_geomed's loops). */
__global__ void geomed_kernel(SolveArgs a) {
  RuleView rv(a);
  const int64_t n = rv.rio.n;
  const bool lead = threadIdx.x == 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
    ragg_device::ragg_geomed_medoid_row(&rv.rio, i);
  __syncthreads();
  if (lead) ragg_device::ragg_geomed_start(&rv.rio);
  __syncthreads();
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) ragg_device::ragg_geomed_db_row(&rv.rio, i);
  __syncthreads();
  double F = lead ? ragg_device::ragg_geomed_objective(&rv.rio) : 0.0; /* thread 0's alone */
  for (int64_t it = 0; it < rv.p.max_iters; ++it) {
    int halt = lead && !ragg_device::ragg_geomed_reweight(&rv.p, &rv.rio);
    if (__syncthreads_or(halt)) break;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
      ragg_device::ragg_geomed_db_row(&rv.rio, i);
    __syncthreads();
    int done = 0;
    if (lead) {
      double F2 = ragg_device::ragg_geomed_objective(&rv.rio);
      done = ragg_device::ragg_geomed_converged(&rv.p, F, F2);
      F = F2;
    }
    if (__syncthreads_or(done)) break;
  }
}

/* One thread for the rest: it runs in a fixed order. */
__global__ void solve_kernel(SolveArgs a) {
  ragg_device::ragg_solve_params_t p;
  ragg_device::ragg_solve_io_t io;
  solve_io(a, &p, &io);
  if (a.transform_only) {
    ragg_device::ragg_build_transform(&p, &io);
    return;
  }
  ragg_device::ragg_solve(&p, &io);
  if (a.weights)
    for (int64_t i = 0; i < a.n; ++i) a.weights[i] = a.alpha[i];
}

}  // namespace

cudaError_t launch_reduce_parts(double *parts, int64_t L, int64_t nsplit, cudaStream_t stream) {
  sum_splits_kernel<double, false>
      <<<grid_for(L * L, 8, INT32_MAX), 256, 0, stream>>>(parts, L, nsplit, parts);
  return cudaGetLastError();
}

cudaError_t launch_sum_gram_slots(const float *G, int64_t n, int64_t slots, double *parts,
                                  cudaStream_t stream) {
  sum_splits_kernel<float, true>
      <<<grid_for(n * n, 8, INT32_MAX), 256, 0, stream>>>(G, n, slots, parts);
  return cudaGetLastError();
}

cudaError_t launch_finalize(const RawSums &raw, int origin_anchor, int direct, double *D, double *N,
                            cudaStream_t stream) {
  int64_t Lo = raw.rows + origin_anchor;
  RawSums r = raw;
  if (r.parts && r.nsplit > 1) {
    cudaError_t e = launch_reduce_parts(r.parts, r.rows, r.nsplit, stream);
    if (e != cudaSuccess) return e;
    r.nsplit = 1;
  }
  finalize_kernel<<<grid_for(Lo * Lo, 256, INT32_MAX), 256, 0, stream>>>(r, origin_anchor, direct, D,
                                                                         N);
  return cudaGetLastError();
}

namespace {

/* The rows' work ahead of the one-thread solve (ragg_presolve_rows of them):
 * Krum's and Multi-Krum's scores a warp a row (a thread a row, with shared
 * memory where it fits, beyond kWarpRowMax), then Multi-Krum's order a thread
 * a row; Bulyan's sorted lists a thread a row, then its rounds in one block;
 * the geometric median in one block. */
cudaError_t launch_multi_krum_order(const SolveArgs &b, int64_t rows, cudaStream_t stream) {
  cudaError_t e = cudaGetLastError(); /* the scores' launch */
  if (e != cudaSuccess) return e;
  multi_krum_order_kernel<<<(unsigned)ceil_div(rows, 128), 128, 0, stream>>>(b);
  return cudaGetLastError();
}

cudaError_t launch_presolve(const SolveArgs &b, int64_t rows, cudaStream_t stream) {
  const bool bulyan = b.p.rule == RAGG_RULE_BULYAN, multi_krum = b.p.rule == RAGG_RULE_MULTI_KRUM;
  if (b.p.rule == RAGG_RULE_GEOMED) {
    geomed_kernel<<<1, (unsigned)std::min<int64_t>(ceil_div(rows, 32) * 32, 512), 0, stream>>>(b);
    return cudaGetLastError();
  }
  if (!bulyan && rows - 1 <= kWarpRowMax) {
    int P = 2;
    while (P < rows - 1) P <<= 1;
    int warps = (int)std::max<int64_t>(1, std::min<int64_t>(8, kWarpRowsSmem / (8 * P)));
    krum_scores_warp_kernel<<<(unsigned)ceil_div(rows, warps), 32 * warps,
                              sizeof(double) * (size_t)(warps * P), stream>>>(b, P);
    return multi_krum ? launch_multi_krum_order(b, rows, stream) : cudaGetLastError();
  }
  int threads = 64, tmp_rows = 0; /* few rows a block: spread over the multiprocessors */
  size_t smem = 0;
  int64_t fit = kPresolveSmemBytes / (8 * rows);
  if (!bulyan && fit >= 1) {
    threads = (int)std::min<int64_t>(threads, fit);
    tmp_rows = threads;
    smem = sizeof(double) * (size_t)(threads * rows);
  }
  if (smem > 48 * 1024) {
    cudaError_t e = cudaFuncSetAttribute(
        presolve_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)kPresolveSmemBytes);
    if (e != cudaSuccess) return e;
  }
  presolve_kernel<<<(unsigned)ceil_div(rows, threads), threads, smem, stream>>>(b, tmp_rows);
  cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess && multi_krum) return launch_multi_krum_order(b, rows, stream);
  if (e != cudaSuccess || !bulyan) return e;
  bulyan_rounds_kernel<<<1, (unsigned)std::min<int64_t>(ceil_div(rows, 32) * 32, 512), 0, stream>>>(
      b);
  return cudaGetLastError();
}

}  // namespace

cudaError_t launch_solve(const SolveArgs &a, cudaStream_t stream) {
  SolveArgs b = a;
  const int64_t rows = a.transform_only ? 0 : ragg_presolve_rows(&a.p, a.n);
  b.presolved = rows > 0;
  cudaError_t e = rows > 0 ? launch_presolve(b, rows, stream) : cudaSuccess;
  if (e != cudaSuccess) return e;
  solve_kernel<<<1, 1, 0, stream>>>(b);
  return cudaGetLastError();
}

}  // namespace ragg_cuda

/* ---- a check hook: the device solver on distances given by the host ---- */

extern "C" int ragg_cuda_solve_from_host(const ragg_solve_params_t *p, int64_t n, int has_anchor,
                                         const double *D, const double *N, double *alpha,
                                         double *scores, int32_t *selected, int64_t *bulyan_rows) {
  using namespace ragg_cuda;
  int64_t L = n + has_anchor;
  size_t dbl = sizeof(double) * (size_t)(L * L + L + L + L * L + ragg_solver_scratch_doubles(n) + n);
  size_t ints = sizeof(int64_t) * (size_t)(ragg_solver_scratch_ints(n) + L) + sizeof(int32_t) * (size_t)n;
  char *buf = NULL;
  cudaError_t e = cudaMalloc(&buf, dbl + ints);
  if (e != cudaSuccess) return (int)e;
  double *dD = (double *)buf, *dN = dD + L * L, *dalpha = dN + L, *dmix = dalpha + L,
         *dscratch = dmix + L * L, *dscores = dscratch + ragg_solver_scratch_doubles(n);
  int64_t *discratch = (int64_t *)(buf + dbl), *dbul = discratch + ragg_solver_scratch_ints(n);
  int32_t *dsel = (int32_t *)(dbul + L);
  e = cudaMemcpy(dD, D, sizeof(double) * (size_t)(L * L), cudaMemcpyHostToDevice);
  if (e == cudaSuccess) e = cudaMemcpy(dN, N, sizeof(double) * (size_t)L, cudaMemcpyHostToDevice);
  if (e == cudaSuccess) e = cudaMemset(dbul, 0, sizeof(int64_t) * (size_t)L);
  if (e == cudaSuccess) {
    SolveArgs a;
    a.p = *p;
    a.n = n;
    a.has_anchor = has_anchor;
    a.D = dD;
    a.N = dN;
    a.alpha = dalpha;
    a.mix = dmix;
    a.scratch = dscratch;
    a.iscratch = discratch;
    a.bulyan_rows = dbul;
    a.scores = dscores;
    a.selected = dsel;
    a.weights = NULL;
    a.transform_only = 0;
    e = launch_solve(a, 0);
  }
  if (e == cudaSuccess) e = cudaDeviceSynchronize();
  if (e == cudaSuccess) e = cudaMemcpy(alpha, dalpha, sizeof(double) * (size_t)L, cudaMemcpyDeviceToHost);
  if (e == cudaSuccess) e = cudaMemcpy(scores, dscores, sizeof(double) * (size_t)n, cudaMemcpyDeviceToHost);
  if (e == cudaSuccess) e = cudaMemcpy(selected, dsel, sizeof(int32_t) * (size_t)n, cudaMemcpyDeviceToHost);
  if (e == cudaSuccess) e = cudaMemcpy(bulyan_rows, dbul, sizeof(int64_t) * (size_t)L, cudaMemcpyDeviceToHost);
  cudaFree(buf);
  return (int)e;
}
