#ifndef RAGG_COVARIANCE_H
#define RAGG_COVARIANCE_H
#include "../solver/solver.h"
#if defined(__cplusplus) && !defined(RAGG_SOLVER_NO_EXTERN_C)
extern "C" {
#endif
/* B (a x a): centered Gram of the points act[0..a-1] under weights w (sum 1);
 * M = W^1/2 B W^1/2; Dw: a doubles of scratch. */
RAGG_HD void ragg_centered_gram(const double *D, int64_t ld, const int64_t *act, int64_t a,
                                const double *w, double *B, double *M, double *Dw);
#if defined(__cplusplus) && !defined(RAGG_SOLVER_NO_EXTERN_C)
}
#endif
#endif
