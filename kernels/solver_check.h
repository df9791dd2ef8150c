/* A check hook of the CUDA backend (not part of the public API): runs the
 * device build of the shared n x n solver on distances held by the host, so a
 * test can compare its weights bit for bit with the host build's. Returns a
 * cudaError_t (0: success). alpha and bulyan_rows hold n + has_anchor values,
 * scores and selected n. */
#ifndef RAGG_KERNELS_SOLVER_CHECK_H
#define RAGG_KERNELS_SOLVER_CHECK_H

#include "solver/solver.h"

#ifdef __cplusplus
extern "C" {
#endif
int ragg_cuda_solve_from_host(const ragg_solve_params_t *p, int64_t n, int has_anchor,
                              const double *D, const double *N, double *alpha, double *scores,
                              int32_t *selected, int64_t *bulyan_rows);
#ifdef __cplusplus
}
#endif
#endif
