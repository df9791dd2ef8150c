#ifndef RAGG_GRAM32_H
#define RAGG_GRAM32_H
/* RAGG_DISTANCES_GRAM_FP32: the Gram pass with fp32 multiply-adds (from 17
 * rows; up to 16 the double pass serves the mode).
 *
 * Each pair keeps 16 lanes; lane l takes the coordinates k = l (mod 16) of a
 * block. A lane multiply-adds RAGG_GRAM32_RUN products in fp32 (fused, one
 * rounding each), then its fp32 sum is added to the lane's double sum; at the
 * block's end the 16 double lanes are reduced in a fixed order and added to
 * G. Every ISA forms the same lanes with the same fused operations in the
 * same order, so the bits depend on L and d alone. Each product's and
 * addition's error is at most 2^-24 of a partial sum of one run, so
 * |dG_ij| <= (RAGG_GRAM32_RUN + 1) 2^-24 sum_k |x_ik x_jk| plus the double
 * part's rounding. */
#include <stdint.h>
enum { RAGG_GRAM32_LANES = 16, RAGG_GRAM32_RUN = 16 };
/* One tile of the block: rows i..i+tr-1 against columns j..j+3 of buf (bs
 * floats a row, rows past the caller's count zero, bs a multiple of 16);
 * G[a L + b] += the block's x_a . x_b for each a <= b < L of the tile. */
typedef void (*ragg_gram32_tile_fn)(const float *buf, int64_t bs, int64_t i, int64_t j, int64_t L,
                                    double *G);
typedef struct {
  ragg_gram32_tile_fn tile, pair; /* pair: G[i L + j] for the one pair (i, j) */
  ragg_gram32_tile_fn diag;       /* the tile at j == i, its upper pairs only; NULL: tile */
  int64_t tr;                     /* rows a tile takes (2 or 4; columns: 4) */
} ragg_gram32_kernel_t;
/* The widest kernel this CPU runs (RAGG_CPU_SIMD=avx2 stops at AVX2, =0
 * takes the portable C, all with the same bits). */
ragg_gram32_kernel_t ragg_gram32_kernel(void);
void ragg_gram32_tile_avx512(const float *buf, int64_t bs, int64_t i, int64_t j, int64_t L,
                             double *G);
void ragg_gram32_tile_avx2(const float *buf, int64_t bs, int64_t i, int64_t j, int64_t L,
                           double *G);
void ragg_gram32_diag_avx512(const float *buf, int64_t bs, int64_t i, int64_t j, int64_t L,
                             double *G);
void ragg_gram32_pair_avx512(const float *buf, int64_t bs, int64_t i, int64_t j, int64_t L,
                             double *G);
void ragg_gram32_pair_avx2(const float *buf, int64_t bs, int64_t i, int64_t j, int64_t L,
                           double *G);
#endif
