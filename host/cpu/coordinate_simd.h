#ifndef RAGG_COORDINATE_SIMD_H
#define RAGG_COORDINATE_SIMD_H
#include "cpu.h"
/* Reduces one coordinate's n sorted values with op's rule. */
double ragg_coord_reduce(const ragg_coord_op_t *op, const float *v, int64_t n);
/* Vectorised sorting-network path; returns 0 (nothing written) where it does
 * not apply (n outside the generated range). */
int ragg_coord_simd(ragg_dtype_t in_t, const void *const *rows, int64_t n, int64_t d,
                    const ragg_coord_op_t *op, ragg_dtype_t out_t, void *out);
#endif
