/* The n x n stage on the device: squared distances from the raw Gram sums,
 * then the shared solver (host/solver, host/rules), compiled here as
 * device-only code from the very same C files with --fmad=false, so the GPU
 * derives bit-identical weights from bit-identical distances (DESIGN §1). It
 * runs in one small kernel, with no host round trip between the Gram pass,
 * the solver and the combination. */
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

__device__ double raw_sum(const RawSums &r, int64_t i, int64_t j) {
  if (r.G) return (double)r.G[i + j * r.rows]; /* upper triangle, i <= j */
  double s = 0.0;
  for (int64_t p = 0; p < r.nsplit; ++p) s += r.parts[p * r.rows * r.rows + i * r.rows + j];
  return s;
}

/* parts[0][i][j] = sum over the splits p of parts[p][i][j] (i <= j), one
 * warp per entry: lane l adds splits l, l + 32, ... in order, then a fixed
 * tree over the lanes. The order is a function of the shape alone. Below the
 * diagonal (no split is read there) parts[0][i][j] = 0, so every entry of
 * parts[0] is set (the sharded collectives sum all of it over the ranks). */
__global__ void reduce_parts_kernel(double *parts, int64_t L, int64_t nsplit) {
  int64_t e = (int64_t)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
  const int lane = threadIdx.x & 31;
  if (e >= L * L) return; /* whole warps leave together */
  int64_t i = e / L, j = e % L;
  if (j < i) {
    if (lane == 0) parts[e] = 0.0;
    return;
  }
  double s = 0.0;
  for (int64_t p = lane; p < nsplit; p += 32) s += parts[p * L * L + e];
  for (int o = 16; o > 0; o >>= 1) s += __shfl_down_sync(0xFFFFFFFFu, s, o);
  __syncwarp();
  if (lane == 0) parts[e] = s;
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

/* One thread: the work is O(n^2) per iteration and must run in a fixed order.
 * ragg_device's types are the same definitions as the host's, in its namespace. */
__global__ void solve_kernel(SolveArgs a) {
  ragg_device::ragg_solve_params_t p;
  static_assert(sizeof(p) == sizeof(a.p), "one definition of ragg_solve_params_t");
  memcpy(&p, &a.p, sizeof(p));
  ragg_device::ragg_solve_io_t io;
  io.n = a.n;
  io.has_anchor = a.has_anchor;
  io.D = a.D;
  io.N = a.N;
  io.alpha = a.alpha;
  io.scores = a.scores;
  io.selected = a.selected;
  io.bulyan_rows = a.bulyan_rows;
  io.n_mixed = a.n;
  io.mix = a.mix;
  io.scratch = a.scratch;
  io.iscratch = a.iscratch;
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
  reduce_parts_kernel<<<grid_for(L * L, 8, INT32_MAX), 256, 0, stream>>>(parts, L, nsplit);
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

cudaError_t launch_solve(const SolveArgs &a, cudaStream_t stream) {
  solve_kernel<<<1, 1, 0, stream>>>(a);
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
