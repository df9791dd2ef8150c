/* The CUDA backend's kernels as the dispatch layer (cuda_backend.cu) sees
 * them: each launcher enqueues on `stream`, never waits, and returns the
 * launch error (cudaGetLastError), so a failure names its phase. */
#ifndef RAGG_KERNELS_LAUNCH_CUH
#define RAGG_KERNELS_LAUNCH_CUH

#include <cublas_v2.h>

#include "common.cuh"

namespace ragg_cuda {

/* ---- gram.cu: the one pass that yields the raw inner products ---------- */

/* Coordinate splits of our own Gram kernels: a function of (L, d, mode)
 * only, so the summation order and the bits never depend on the device. */
int64_t gram_splits(int64_t L, int64_t d, bool direct);
/* Contiguous Gram-mode inputs of L rows run our own kernel rather than
 * cuBLAS (it is memory-bound at small L, cuBLAS is not). */
bool gram_prefers_own_kernel(int64_t L);
/* parts: gram_splits(L, d, direct) * L * L doubles; upper triangle of each split:
 * x_i . x_j, or (direct) ||x_i - x_j||^2 off the diagonal, all in double. */
cudaError_t launch_gram_tiles(const RowSource &rows, int64_t L, int64_t d, bool direct,
                              double *parts, cudaStream_t stream);
/* The cuBLAS Gram pass cuts the coordinates into gram_blas_slots(n, d)
 * chunks (a function of the shape alone) and forms each chunk's X X^T
 * (n x n floats, column-major) in its own slot of G, n * n floats apart:
 * GemmEx with CUBLAS_COMPUTE_32F, never TF32, in one strided-batched call
 * (plus one call for a shorter last chunk); launch_sum_gram_slots adds the
 * slots in double. A single GEMM with k = d in the millions leaves
 * most of the GPU idle at small n; the chunks fill it. */
int64_t gram_blas_slots(int64_t n, int64_t d);
cublasStatus_t gram_cublas(cublasHandle_t h, ragg_dtype_t t, const void *x, int64_t n, int64_t d,
                           int64_t ld, float *G, const char **call);
/* parts (n x n doubles, row-major, upper triangle; 0 below it) = the sum of
 * the slots of G in double: one warp an entry, lane l adding slots l, l + 32,
 * ... in order, then a fixed tree (the order is a function of the shape). */
cudaError_t launch_sum_gram_slots(const float *G, int64_t n, int64_t slots, double *parts,
                                  cudaStream_t stream);

/* ---- solve.cu: the n x n work, on small kernels ----------------------- */

/* The raw sums: nsplit splits of L x L doubles (our kernels' coordinate
 * splits, or cuBLAS's slots once launch_sum_gram_slots has added them). */
struct RawSums {
  double *parts; /* the splits are added into split 0 first */
  int64_t nsplit;
  int64_t rows;   /* L of the raw sums */
};
/* parts[0] <- the sum of the nsplit splits on the upper triangle (the order
 * launch_finalize uses) and 0 below it: L x L doubles every entry of which is
 * set, for a same-bits sum over ranks (the sharded collectives). */
cudaError_t launch_reduce_parts(double *parts, int64_t L, int64_t nsplit, cudaStream_t stream);
/* D (Lout^2) and N (Lout) from raw sums, DESIGN §2 exclusion applied;
 * origin_anchor: point n = rows is the origin (Lout = rows + 1). */
cudaError_t launch_finalize(const RawSums &raw, int origin_anchor, int direct, double *D, double *N,
                            cudaStream_t stream);

struct SolveArgs {
  ragg_solve_params_t p;
  int64_t n;
  int has_anchor;
  const double *D, *N;
  double *alpha, *mix, *scratch;
  int64_t *iscratch, *bulyan_rows;
  double *scores;    /* report (device), or NULL */
  int32_t *selected; /* report (device), or NULL */
  double *weights;   /* report (device), or NULL */
  int transform_only; /* 1: only the pre-step transform W */
  int presolved;      /* set by launch_solve: the row-parallel kernels ran first */
};
/* The solver: the rule's row-parallel work (ragg_presolve_rows: the Krum
 * family's and the geometric median's, a warp, a thread or a block's threads
 * a row) where it has any, then the rest in one thread. */
cudaError_t launch_solve(const SolveArgs &a, cudaStream_t stream);

/* ---- combine.cu: passes that form weighted sums of rows ---------------- */

/* out = sum_j alpha_j row_j over L rows (skipping alpha_j == 0), in double,
 * rounded once; alpha NULL: every weight is `uniform`. */
cudaError_t launch_combine(const RowSource &rows, int64_t L, int64_t d, const double *alpha,
                           double uniform, ragg_dtype_t out_t, void *out, cudaStream_t stream);
/* Y (nm rows of d floats) = W X; W is nm x ldw (row-major). */
cudaError_t launch_transform_rows(const RowSource &rows, int64_t n, int64_t d, const double *W,
                                  int64_t ldw, int64_t nm, float *Y, cudaStream_t stream);
/* counts[i] = NaN/Inf values of row i (counts zeroed by the launcher). */
cudaError_t launch_count_nonfinite(const RowSource &rows, int64_t n, int64_t d, int64_t *counts,
                                   cudaStream_t stream);
/* The report of the rules without a solver step: selected[i] = sel; scores[i]
 * = counts[i] / d (counts NULL: 0); weights[i] = weight (weights NULL: unwritten). */
cudaError_t launch_report_fill(int64_t n, int64_t d, int32_t sel, const int64_t *counts,
                               double *scores, int32_t *selected, double weight, double *weights,
                               cudaStream_t stream);

/* ---- coordinate.cu: the one-pass coordinate-wise family ---------------- */

struct CoordOp {
  int rule; /* RAGG_RULE_MEDIAN, RAGG_RULE_TRIMMED_MEAN or RAGG_RULE_MEAMED */
  int64_t f, keep;
};
/* Device scratch the coordinate pass needs for n rows (0 unless n is beyond
 * the shared-memory tile). */
size_t coord_scratch_bytes(int64_t n, int64_t d);
/* out[k] = rule over the values rows[idx[i]][k], i < n (idx NULL: i);
 * counts (n int64, zeroed by the launcher, or NULL): per row, coordinates
 * outside [f+1-th smallest, f+1-th largest]. */
cudaError_t launch_coordinate(const RowSource &rows, int64_t n, int64_t d, const int64_t *idx,
                              const CoordOp &op, ragg_dtype_t out_t, void *out, int64_t *counts,
                              void *scratch, cudaStream_t stream);

}  // namespace ragg_cuda

#endif
