#ifndef RAGG_COORDINATE_SIMD_H
#define RAGG_COORDINATE_SIMD_H
#include "cpu.h"
/* Reduces one coordinate's n sorted values with op's rule. */
double ragg_coord_reduce(const ragg_coord_op_t *op, const float *v, int64_t n);
/* The largest count the vector path sorts: generated networks up to 256,
 * above that blocks of 256 merged in loops, padded to a multiple of 256 (at
 * 65536 inputs a thread's scratch is 4 MiB, 12 MiB with a report; measured on
 * a 2-core AVX-512 EPYC the vector path is still 4-5x faster than the radix
 * sort there). */
#define RAGG_COORD_SIMD_NMAX 65536
/* A mixing matrix's nonzero weights, row by row: mixed row p is the sum over
 * t < width of w[p width + t] x_{idx[p width + t]}, inputs in ascending
 * order; rows with fewer terms end in (0, n) pairs, n naming a row of zeros. */
typedef struct ragg_mix_terms {
  float *w; /* the weights rounded to float */
  int32_t *idx;
  int64_t width;
} ragg_mix_terms_t;
/* Vectorised sorting-network path; returns 1 when done, 0 (nothing written)
 * where it does not apply (no vector ISA, counts outside
 * 2..RAGG_COORD_SIMD_NMAX, counts asked for with mt), -1 when its scratch
 * could not be allocated (part of the output may be written). With mt
 * the rule reduces the nm mixed rows it lists, formed tile by tile in
 * registers; without it nm = n and the rule reduces the rows themselves.
 * counts (NULL for none; zeroed by the caller): per row, the coordinates at
 * which its value lies below rank f or above rank n-1-f, added in. */
int ragg_coord_simd(ragg_dtype_t in_t, const void *const *rows, int64_t n, int64_t d,
                    const ragg_coord_op_t *op, ragg_dtype_t out_t, void *out,
                    const ragg_mix_terms_t *mt, int64_t nm, int64_t *counts);
/* Whether ragg_coord_simd runs for these counts on this CPU. */
int ragg_coord_simd_applies(int64_t n, int64_t nm);
#endif
