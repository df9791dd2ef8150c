/* CPU backend passes over the data. Rows are reached through pointers. */
#ifndef RAGG_CPU_H
#define RAGG_CPU_H

#include "../internal.h"

/* Below this many values a pass runs on one thread: opening a parallel
 * region costs more than it saves (and much more on a busy machine). */
#define RAGG_PARALLEL_MIN (int64_t)(1 << 18)

/* Squared distances D (L x L) and squared norms N (L) of L rows (the last
 * may be the anchor), Gram or direct. Deterministic: the split of d into
 * parts depends on n and d only, never on the thread count.
 * part_buf: ragg_cpu_gram_parts(L, d) * L * L doubles. */
int64_t ragg_cpu_gram_parts(int64_t L, int64_t d);
/* RAGG_CPU_SIMD in the environment, read on every call (tests change it):
 * "0" runs the general coordinate path, "avx2" keeps an AVX-512 CPU on its
 * 256-bit kernels; anything else (or unset) picks the widest. Every level
 * gives the same bits. */
enum { RAGG_SIMD_WIDEST = 0, RAGG_SIMD_OFF = 1, RAGG_SIMD_AVX2 = 2 };
int ragg_cpu_simd_env(void);
/* Which pairs a pass forms: all, the diagonal and the last column (distances
 * to an anchor), or the diagonal (norms). */
enum { RAGG_PAIRS_ALL = 0, RAGG_PAIRS_LAST = 1, RAGG_PAIRS_DIAG = 2 };
/* The raw sums (upper triangle of R, L x L, the rest 0): Gram mode x_i.x_j,
 * direct mode ||x_i - x_j||^2 off the diagonal and ||x_i||^2 on it. Raw sums
 * over disjoint coordinate shards add up (the sharded all-reduce). Entries
 * outside `pairs` stay 0. */
int ragg_cpu_gram_raw(ragg_dtype_t t, const void *const *rows, int64_t L, int64_t d,
                      ragg_distances_t mode, int pairs, double *R,
                      double *part_buf); /* 1: out of memory */
/* D and N from raw sums (DESIGN §2 exclusion: +Inf distances for rows whose
 * squared norm is not finite or above FLT_MAX). D may alias R. */
void ragg_distances_finalize(const double *R, int64_t L, ragg_distances_t mode, double *D,
                             double *N);
/* With pairs other than RAGG_PAIRS_ALL only N and the named distances are
 * meaningful (the rest is unspecified): one read's worth of arithmetic, for
 * a rule that looks at its anchor alone. Each value computed has the bits a
 * full pass gives it. */
int ragg_cpu_distances(ragg_dtype_t t, const void *const *rows, int64_t L, int64_t d,
                       ragg_distances_t mode, int pairs, double *D, double *N,
                       double *part_buf);

/* out (out_t) = sum_j alpha_j row_j (rows of t), skipping alpha_j = 0, in double, rounded once. */
void ragg_cpu_combine(ragg_dtype_t t, const void *const *rows, const double *alpha, int64_t L,
                      int64_t d, ragg_dtype_t out_t, void *out);
/* Y (n' rows of d floats) = W X; W is n' x ldw. Float arithmetic: per mixed
 * row, (float)w_j * x_j for its nonzero weights added in input order to a
 * float sum starting at +0. */
void ragg_cpu_transform_rows(ragg_dtype_t t, const void *const *rows, int64_t n, const double *W,
                             int64_t ldw, int64_t nm, int64_t d, float *Y);
void ragg_cpu_count_nonfinite(ragg_dtype_t t, const void *const *rows, int64_t n, int64_t d,
                              int64_t *counts);

/* Coordinate-wise pass: rule is median, trimmed mean or MeaMed (keep = n-f),
 * or Bulyan's step (RAGG_RULE_BULYAN, keep = n-2f... given by `keep`).
 * counts (n int64, or NULL): per row, coordinates outside the f-trimmed range. */
typedef struct ragg_coord_op {
  ragg_rule_t rule;
  int64_t f;
  int64_t keep;
} ragg_coord_op_t;
ragg_status_t ragg_cpu_coordinate(ragg_dtype_t in_t, const void *const *rows, int64_t n, int64_t d,
                                  const ragg_coord_op_t *op, ragg_dtype_t out_t, void *out,
                                  int64_t *counts);
/* Mixing pre-steps in front of a coordinate-wise rule or Bulyan: whether the
 * pass forms the mixed rows itself (n inputs, nm mixed rows; the vector
 * networks apply), so that Y = W X is never written. */
int ragg_cpu_mixes_in_pass(const ragg_config_t *cfg, int64_t n, int64_t nm);
/* The coordinate pass of op over the rows W_p X for p = widx[0..nm) (widx
 * NULL: p = 0..nm), each rounded to float as ragg_cpu_transform_rows rounds
 * it; only where ragg_cpu_mixes_in_pass holds. terms: scratch of
 * ragg_cpu_mix_terms_bytes(n, nm), 8-byte aligned. RAGG_ERR_OUT_OF_MEMORY when
 * the pass's per-thread scratch cannot be allocated. */
size_t ragg_cpu_mix_terms_bytes(int64_t n, int64_t nm);
ragg_status_t ragg_cpu_coordinate_mixed(ragg_dtype_t in_t, const void *const *rows, int64_t n,
                                        int64_t d, const double *W, int64_t ldw,
                                        const int64_t *widx, int64_t nm, const ragg_coord_op_t *op,
                                        ragg_dtype_t out_t, void *out, void *terms);

#endif
