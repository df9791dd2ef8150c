/* One tile = VW consecutive coordinates of every row: row i's VW values are one
 * vector of order-preserving integer keys, the generated network sorts across
 * the n vectors, VW coordinates at once, and the rule reduces the sorted ranks.
 * No transpose: each row is read along its own contiguous memory.
 *
 * The including file defines VEC (VW x int32), VW (the lane count), CX(a, b) (a <- min, b <- max,
 * signed), and SIMD_FN (the function's name). */
#include <math.h>
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

static inline void store_result(ragg_dtype_t t, void *out, int64_t k0, int64_t len,
                                const double *r) {
  if (t == RAGG_F32) {
    float *o = (float *)out + k0;
    for (int64_t l = 0; l < len; ++l) o[l] = (float)r[l];
  } else {
    for (int64_t l = 0; l < len; ++l) ragg_store(t, out, k0 + l, r[l]);
  }
}

/* VW doubles; GCC splits them into whatever registers the ISA has. */
typedef double VD __attribute__((vector_size(VW * sizeof(double))));
typedef float VF __attribute__((vector_size(VW * sizeof(float))));
/* Half a tile as one native vector of doubles, with its 64-bit masks: the
 * compares and selects of MeaMed stay in registers at this width. */
#define HW (VW / 2)
typedef double VH __attribute__((vector_size(HW * sizeof(double))));
typedef int64_t VM __attribute__((vector_size(HW * sizeof(double))));
typedef float VFH __attribute__((vector_size(HW * sizeof(float))));

/* Sorted keys back to values (the key map is an involution). */
#define KEYS_TO_FLOAT(k) ((VF)((k) ^ (((k) >> 31) & ((VEC){0} + 0x7FFFFFFF))))
#define KEYS_TO_DOUBLE(k) __builtin_convertvector(KEYS_TO_FLOAT(k), VD)
/* Lane-wise c ? a : b for a mask c of all-ones or zero lanes. */
#define SELECT(c, a, b) ((VH)(((VM)(a) & (c)) | ((VM)(b) & ~(c))))

/* Lanes h*HW .. h*HW+HW-1 of a key vector, as doubles. */
static inline VH half_to_double(VEC k, int h) {
  VF f = KEYS_TO_FLOAT(k);
  VFH part;
  memcpy(&part, (const float *)&f + h * HW, sizeof(part));
  return __builtin_convertvector(part, VH);
}

/* MeaMed (and Bulyan's step) on half a tile at once, the same arithmetic in
 * the same order as ragg_coord_meamed, so the bits agree with the general
 * path. Distances |2x - 2m| fall then rise along the sorted values, so the
 * keep-th smallest distance is the smallest over the windows of keep
 * consecutive ranks of the larger distance at the window's two ends. */
static inline void meamed_half(const VEC *v, int64_t n, int64_t keep, int h, double *res) {
  const VM sign_off = (VM){0} + 0x7FFFFFFFFFFFFFFFll;
  const VH inf = (VH){0} + (double)INFINITY, one = (VH){0} + 1.0;
  VH m2 = (n & 1) ? 2.0 * half_to_double(v[n / 2], h)
                  : half_to_double(v[n / 2 - 1], h) + half_to_double(v[n / 2], h);
  VH x[NET_NMAX], dist[NET_NMAX];
  for (int64_t i = 0; i < n; ++i) {
    x[i] = half_to_double(v[i], h);
    VH d = (VH)((VM)(2.0 * x[i] - m2) & sign_off);
    dist[i] = SELECT(x[i] != x[i], inf, d); /* a NaN value is at +Inf */
  }
  VH t = inf;
  for (int64_t s0 = 0; s0 + keep <= n; ++s0) {
    VH lo = dist[s0], hi = dist[s0 + keep - 1];
    VH mx = SELECT(lo > hi, lo, hi);
    t = SELECT(mx < t, mx, t);
  }
  VH below = (VH){0}, tied = (VH){0}, nbelow = (VH){0}, ntied = (VH){0};
  for (int64_t i = 0; i < n; ++i) {
    VM lt = dist[i] < t, eq = dist[i] == t;
    below = SELECT(lt, below + x[i], below);
    nbelow = SELECT(lt, nbelow + one, nbelow);
    tied = SELECT(eq, tied + x[i], tied);
    ntied = SELECT(eq, ntied + one, ntied);
  }
  VH share = ((double)keep - nbelow) * (tied / ntied);
  VH sum = SELECT(ntied > 0.0, below + share, below);
  sum /= (double)keep;
  memcpy(res + h * HW, &sum, sizeof(sum));
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
    double res[VW];
    int64_t k0 = t * VW, len = d - k0 < VW ? d - k0 : VW;
    /* n rows are n concurrent streams, more than the hardware prefetchers
     * follow: ask for the tiles PREFETCH_TILES ahead explicitly. */
    if (t + PREFETCH_TILES < ntiles)
      for (int64_t i = 0; i < n; ++i)
        __builtin_prefetch((const char *)rows[i] + (size_t)(k0 + PREFETCH_TILES * VW) * esize, 0,
                           3);
    for (int64_t i = 0; i < n; ++i) v[i] = load_keys(in_t, rows[i], k0, len);
    net(v);
    if (op->rule == RAGG_RULE_MEDIAN) {
      VD a = KEYS_TO_DOUBLE(v[(n - 1) / 2]);
      VD r = (n & 1) ? a : (a + KEYS_TO_DOUBLE(v[n / 2])) * 0.5;
      memcpy(res, &r, sizeof(r));
    } else if (op->rule == RAGG_RULE_TRIMMED_MEAN) {
      VD acc = (VD){0};
      for (int64_t i = op->f; i < n - op->f; ++i) acc += KEYS_TO_DOUBLE(v[i]);
      acc /= (double)(n - 2 * op->f);
      memcpy(res, &acc, sizeof(acc));
    } else {
      meamed_half(v, n, op->keep, 0, res);
      meamed_half(v, n, op->keep, 1, res);
    }
    store_result(out_t, out, k0, len, res);
  }
  return 1;
}
