/* One tile = VW consecutive coordinates of every row: row i's VW values are one
 * vector of order-preserving integer keys, the generated network sorts across
 * the n vectors, VW coordinates at once, and the rule reduces the sorted ranks.
 * No transpose: each row is read along its own contiguous memory.
 *
 * The including file defines VEC (VW x int32), VW (the lane count), CX(a, b) (a <- min, b <- max,
 * signed), and SIMD_FN (the function's name). */
#include <string.h>

#include "../rules/coordinate.h"
#include "convert.h"
#include "coordinate_simd.h"

#include "networks.inc"

enum { PREFETCH_TILES = 64 };

/* Float bits to order-preserving keys and back (an involution on non-NaN
 * values): negative values flip their magnitude bits; any NaN goes to the top. */
static inline VEC bits_to_keys(VEC u) {
  const VEC magmask = (VEC){0} + 0x7FFFFFFF, inf = (VEC){0} + 0x7F800000;
  VEC k = u ^ ((u >> 31) & magmask);
  VEC isnan = (u & magmask) > inf; /* all ones where NaN */
  return (k & ~isnan) | (magmask & isnan);
}

static inline VEC load_keys(ragg_dtype_t t, const void *row, int64_t k0, int64_t len) {
  VEC v;
  if (t == RAGG_F32 && len == VW) {
    memcpy(&v, (const float *)row + k0, sizeof(v));
    return bits_to_keys(v);
  }
  int32_t tmp[VW];
  for (int l = 0; l < VW; ++l) tmp[l] = INT32_MAX; /* top sentinels past d */
  for (int64_t l = 0; l < len; ++l) tmp[l] = ragg_float_key(ragg_load(t, row, k0 + l));
  memcpy(&v, tmp, sizeof(v));
  return v;
}

static inline void store_result(ragg_dtype_t t, void *out, int64_t k0, int64_t len, const double *r) {
  if (t == RAGG_F32) {
    float *o = (float *)out + k0;
    for (int64_t l = 0; l < len; ++l) o[l] = (float)r[l];
  } else {
    for (int64_t l = 0; l < len; ++l) ragg_store(t, out, k0 + l, r[l]);
  }
}

int SIMD_FN(ragg_dtype_t in_t, const void *const *rows, int64_t n, int64_t d,
            const ragg_coord_op_t *op, ragg_dtype_t out_t, void *out) {
  if (n < 2 || n > NET_NMAX) return 0;
  const net_fn net = op->rule == RAGG_RULE_MEDIAN ? net_median_table[n] : net_sort_table[n];
  int64_t ntiles = (d + VW - 1) / VW;
  size_t esize = ragg_dtype_size(in_t);
#pragma omp parallel for schedule(static) if (n * d > RAGG_PARALLEL_MIN)
  for (int64_t t = 0; t < ntiles; ++t) {
    VEC v[NET_NMAX];
    int32_t keys[NET_NMAX][VW];
    double res[VW];
    float vals[NET_NMAX];
    int64_t k0 = t * VW, len = d - k0 < VW ? d - k0 : VW;
    /* n rows are n concurrent streams, more than the hardware prefetchers
     * follow: ask for the tiles PREFETCH_TILES ahead explicitly. */
    if (t + PREFETCH_TILES < ntiles)
      for (int64_t i = 0; i < n; ++i)
        __builtin_prefetch((const char *)rows[i] + (size_t)(k0 + PREFETCH_TILES * VW) * esize, 0, 3);
    for (int64_t i = 0; i < n; ++i) v[i] = load_keys(in_t, rows[i], k0, len);
    net(v);
    if (op->rule == RAGG_RULE_MEDIAN) {
      memcpy(keys[0], &v[(n - 1) / 2], sizeof(VEC));
      memcpy(keys[1], &v[n / 2], sizeof(VEC));
      for (int l = 0; l < VW; ++l) {
        double a = (double)ragg_key_float(keys[0][l]);
        res[l] = (n & 1) ? a : (a + (double)ragg_key_float(keys[1][l])) * 0.5;
      }
    } else if (op->rule == RAGG_RULE_TRIMMED_MEAN) {
      for (int l = 0; l < VW; ++l) res[l] = 0.0;
      for (int64_t i = op->f; i < n - op->f; ++i) {
        memcpy(keys[0], &v[i], sizeof(VEC));
        for (int l = 0; l < VW; ++l) res[l] += (double)ragg_key_float(keys[0][l]);
      }
      for (int l = 0; l < VW; ++l) res[l] /= (double)(n - 2 * op->f);
    } else {
      for (int64_t i = 0; i < n; ++i) memcpy(keys[i], &v[i], sizeof(VEC));
      for (int64_t l = 0; l < len; ++l) {
        for (int64_t i = 0; i < n; ++i) vals[i] = ragg_key_float(keys[i][l]);
        res[l] = ragg_coord_meamed(vals, n, op->keep);
      }
    }
    store_result(out_t, out, k0, len, res);
  }
  return 1;
}
