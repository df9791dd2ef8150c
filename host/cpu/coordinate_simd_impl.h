/* One tile = VW consecutive coordinates of every row: row i's VW values are one
 * vector of order-preserving integer keys, the generated network sorts across
 * the n vectors, VW coordinates at once, and the rule reduces the sorted ranks.
 * No transpose: each row is read along its own contiguous memory.
 *
 * The including file defines VEC (VW x int32), VW (the lane count), CX(a, b) (a <- min, b <- max,
 * signed), and SIMD_FN (the function's name). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../rules/coordinate.h"
#include "convert.h"
#include "coordinate_simd.h"

#include "networks.inc"
_Static_assert(RAGG_COORD_SIMD_NMAX % NET_NMAX == 0,
               "the vector path pads to a multiple of the largest network");

/* Above NET_NMAX values (padded to a multiple of it): blocks of NET_NMAX
 * sorted by the largest generated network, then the merge stages of
 * Batcher's odd-even merge sort as loops (each stage p merges sorted runs of
 * p into runs of 2p; the pairs it compares lie in one run of 2p). np need
 * not be a power of two: the network for the next power of two, with the
 * positions from np up holding top sentinels, never moves a sentinel below
 * np (a comparator puts the larger value above), so its comparators that
 * reach np or beyond change nothing and are skipped. Sorted keys are sorted
 * keys: the rule sees what any sort gives. */
static void sort_blocks_and_merge(VEC *v, int64_t np) {
  for (int64_t b = 0; b < np; b += NET_NMAX) net_sort_table[NET_NMAX](v + b);
  for (int64_t p = NET_NMAX, lg = 0; p < np; p <<= 1) {
    while (((int64_t)1 << lg) < 2 * p) ++lg; /* 2p = 2^lg */
    for (int64_t k = p; k >= 1; k >>= 1)
      for (int64_t j = k % p; j + k < np; j += 2 * k)
        for (int64_t i = 0; i < k && i + j + k < np; ++i)
          if (((i + j) >> lg) == ((i + j + k) >> lg)) CX(v[i + j], v[i + j + k]);
  }
}

/* The count the network sorts for nm values (the rest: top sentinels). */
static inline int64_t padded_count(int64_t nm) {
  if (nm <= NET_NMAX) return net_padded[nm];
  return (nm + NET_NMAX - 1) / NET_NMAX * NET_NMAX;
}

/* Float bits to order-preserving keys and back (an involution on non-NaN
 * values): negative values flip their magnitude bits; any NaN goes to the top. */
static inline VEC bits_to_keys(VEC u) {
  const VEC magmask = (VEC){0} + 0x7FFFFFFF, inf = (VEC){0} + 0x7F800000;
  VEC k = u ^ ((u >> 31) & magmask);
  VEC isnan = (u & magmask) > inf; /* all ones where NaN */
  return (k & ~isnan) | (magmask & isnan);
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

/* Unaligned, aliasing views for whole-vector loads and stores: a memcpy of a
 * vector compiles to 16-byte pieces on AVX2, and a 32-byte load of what two
 * 16-byte stores just wrote stalls on store forwarding. */
typedef VEC VEC_U __attribute__((aligned(4), may_alias));

typedef float VF __attribute__((vector_size(VW * sizeof(float))));
/* Half a tile as one native vector of doubles, with its 64-bit masks: the
 * compares and selects of MeaMed stay in registers at this width. */
#define HW (VW / 2)
typedef double VH __attribute__((vector_size(HW * sizeof(double))));
typedef int64_t VM __attribute__((vector_size(HW * sizeof(double))));
typedef float VFH __attribute__((vector_size(HW * sizeof(float))));

/* Sorted keys back to values (the key map is an involution). */
#define KEYS_TO_FLOAT(k) ((VF)((k) ^ (((k) >> 31) & ((VEC){0} + 0x7FFFFFFF))))
/* Lane-wise c ? a : b for a mask c of all-ones or zero lanes. */
#define SELECT(c, a, b) ((VH)(((VM)(a) & (c)) | ((VM)(b) & ~(c))))

#ifndef SPLIT_TO_DOUBLE
/* Lanes 0 .. HW-1 and HW .. VW-1 of a float vector, as doubles (an including
 * file may define a faster one with its intrinsics). */
#define SPLIT_TO_DOUBLE(f, lo, hi)                      \
  do {                                                  \
    VF f_ = (f);                                        \
    VFH lo_, hi_;                                       \
    memcpy(&lo_, &f_, sizeof(lo_));                     \
    memcpy(&hi_, (const float *)&f_ + HW, sizeof(hi_)); \
    (lo) = __builtin_convertvector(lo_, VH);            \
    (hi) = __builtin_convertvector(hi_, VH);            \
  } while (0)
#endif

#ifndef TWICE_MINUS
#define TWICE_MINUS(x, m2) (2.0 * (x) - (m2))
#endif

#ifndef TALLY
/* MeaMed's tally of one rank: where d < t, sum += x and count += 1; where
 * d == t, tied += x and ntied += 1 (a NaN is neither). A lane left out adds
 * +0.0, which leaves a sum from +0 alone (such a sum never holds -0). */
#define TALLY(d, t, x, sum, count, tied, ntied)               \
  do {                                                        \
    const VM one_ = (VM)((VH){0} + 1.0);                      \
    VM lt_ = (d) < (t), eq_ = (d) == (t);                     \
    (sum) += (VH)((VM)(x)&lt_), (count) += (VH)(one_ & lt_);  \
    (tied) += (VH)((VM)(x)&eq_), (ntied) += (VH)(one_ & eq_); \
  } while (0)
#endif

/* Lanes h*HW .. h*HW+HW-1 of a key vector, as doubles. */
static inline VH half_to_double(VEC k, int h) {
  VH lo, hi;
  SPLIT_TO_DOUBLE(KEYS_TO_FLOAT(k), lo, hi);
  return h ? hi : lo;
}

/* |2x - m2|, and the same with a NaN distance at +Inf (ragg_coord_distance). */
static inline VH meamed_abs(VH x, VH m2) {
  return (VH)((VM)TWICE_MINUS(x, m2) & ((VM){0} + 0x7FFFFFFFFFFFFFFFll));
}
static inline VH meamed_distance(VH x, VH m2) {
  VH d = meamed_abs(x, m2);
  return SELECT(d != d, (VH){0} + (double)INFINITY, d);
}

/* The tally of ranks i0 .. i1-1 of a tile against the boundary distances
 * t_l, t_h of its two halves: s[0..3] the low half's sum and count below t
 * and its sum and count at t, s[4..7] the high half's. With every t finite a
 * NaN distance compares neither below nor equal to t, as the +Inf it stands
 * for would not, so nan_inf = 0 leaves out the select; a constant at each
 * call, so each call is a loop of its own. */
static inline __attribute__((always_inline)) void meamed_tally(const VEC *v, int64_t i0, int64_t i1,
                                                               VH m2l, VH m2h, VH t_l, VH t_h,
                                                               int nan_inf, VH *s) {
  for (int64_t i = i0; i < i1; ++i) {
    VH xl, xh;
    SPLIT_TO_DOUBLE(KEYS_TO_FLOAT(v[i]), xl, xh);
    VH dl = nan_inf ? meamed_distance(xl, m2l) : meamed_abs(xl, m2l);
    VH dh = nan_inf ? meamed_distance(xh, m2h) : meamed_abs(xh, m2h);
    TALLY(dl, t_l, xl, s[0], s[1], s[2], s[3]);
    TALLY(dh, t_h, xh, s[4], s[5], s[6], s[7]);
  }
}

/* meamed_tally with the select where a boundary distance is infinite */
static inline __attribute__((always_inline)) void meamed_tally_either(const VEC *v, int64_t i0,
                                                                      int64_t i1, VH m2l, VH m2h,
                                                                      VH t_l, VH t_h, int nan_inf,
                                                                      VH *s) {
  if (nan_inf)
    meamed_tally(v, i0, i1, m2l, m2h, t_l, t_h, 1, s);
  else
    meamed_tally(v, i0, i1, m2l, m2h, t_l, t_h, 0, s);
}

/* The tally of the window ends kept by meamed_tile: their lower ends (at =
 * 0) or upper ends (at = 4), whose distances already stand +Inf for NaN. */
static inline __attribute__((always_inline)) void tally_kept_ends(VH (*ends)[8], int64_t e, int at,
                                                                  VH t_l, VH t_h, VH *s) {
  for (int64_t s0 = 0; s0 <= e; ++s0) {
    const VH *w = ends[s0] + at;
    TALLY(w[2], t_l, w[0], s[0], s[1], s[2], s[3]);
    TALLY(w[3], t_h, w[1], s[4], s[5], s[6], s[7]);
  }
}

#ifndef ANY_LANE
/* Whether any lane of a 64-bit mask vector is set (an including file may
 * define a faster one with its intrinsics). */
static inline int any_lane(VM c) {
  int64_t any = 0;
  for (int l = 0; l < HW; ++l) any |= c[l];
  return any != 0;
}
#define ANY_LANE(c) any_lane(c)
#endif
#ifndef VMAX
/* a > b ? a : b and a < b ? a : b lane-wise (maxpd and minpd exactly) */
#define VMAX(a, b) SELECT((a) > (b), (a), (b))
#define VMIN(a, b) SELECT((a) < (b), (a), (b))
#endif

/* MeaMed (and Bulyan's step) on a tile, the same arithmetic in the same order
 * as ragg_coord_meamed, so the bits agree with the general path. Distances
 * |2x - 2m| fall then rise along the sorted values, so the keep-th smallest
 * distance t is the smallest over the windows of keep consecutive ranks of
 * the larger distance at the window's two ends; the window ends are ranks
 * 0 .. e and keep-1 .. n-1 (e = n - keep), and their values and distances
 * are kept for the tally. The core, ranks e+1 .. keep-2, lies inside every
 * window; where both its ends are below t in every lane, all of it is, and it
 * is summed without compares (as the trimmed mean sums). A tile whose first
 * and last ranks are finite holds no NaN distance, so the NaN-to-+Inf select
 * is left out. Both halves go through one loop (independent sums, one
 * conversion per rank). */
enum { MEAMED_ENDS_MAX = 16 };
static inline void meamed_tile(const VEC *v, int64_t n, int64_t keep, double *res) {
  const VH inf = (VH){0} + (double)INFINITY;
  const int64_t e = n - keep, c0 = e + 1, c1 = keep - 1 > c0 ? keep - 1 : c0;
  /* with a core, the window ends are the ranks outside it, each once */
  const int kept = c1 > c0 && e < MEAMED_ENDS_MAX;
  VEC fin = (v[0] > (VEC){0} - 2139095041) & (v[n - 1] < (VEC){0} + 0x7F800000);
  int finite = 1;
  for (int l = 0; l < VW; ++l) finite &= fin[l] != 0;
  VH m2l, m2h, t_l = inf, t_h = inf;
  SPLIT_TO_DOUBLE(KEYS_TO_FLOAT(v[n / 2]), m2l, m2h);
  if (n & 1) {
    m2l = 2.0 * m2l, m2h = 2.0 * m2h;
  } else {
    VH al, ah;
    SPLIT_TO_DOUBLE(KEYS_TO_FLOAT(v[n / 2 - 1]), al, ah);
    m2l = al + m2l, m2h = ah + m2h;
  }
#define MEAMED_DIST(x, m2) (finite ? meamed_abs(x, m2) : meamed_distance(x, m2))
  VH ends[MEAMED_ENDS_MAX][8]; /* per window: its ends' values and distances */
  for (int64_t s0 = 0; s0 <= e; ++s0) {
    VH xl, xh, yl, yh;
    SPLIT_TO_DOUBLE(KEYS_TO_FLOAT(v[s0]), xl, xh);
    SPLIT_TO_DOUBLE(KEYS_TO_FLOAT(v[s0 + keep - 1]), yl, yh);
    VH al = MEAMED_DIST(xl, m2l), bl = MEAMED_DIST(yl, m2l);
    VH ah = MEAMED_DIST(xh, m2h), bh = MEAMED_DIST(yh, m2h);
    if (kept) {
      VH *w = ends[s0];
      w[0] = xl, w[1] = xh, w[2] = al, w[3] = ah, w[4] = yl, w[5] = yh, w[6] = bl, w[7] = bh;
    }
    t_l = VMIN(VMAX(al, bl), t_l);
    t_h = VMIN(VMAX(ah, bh), t_h);
  }
  VH s[8] = {(VH){0}, (VH){0}, (VH){0}, (VH){0}, (VH){0}, (VH){0}, (VH){0}, (VH){0}};
  int core_below = 0;
  if (c1 > c0) {
    VH al, ah, bl, bh;
    SPLIT_TO_DOUBLE(KEYS_TO_FLOAT(v[c0]), al, ah);
    SPLIT_TO_DOUBLE(KEYS_TO_FLOAT(v[c1 - 1]), bl, bh);
    VM above = ~((MEAMED_DIST(al, m2l) < t_l) & (MEAMED_DIST(ah, m2h) < t_h) &
                 (MEAMED_DIST(bl, m2l) < t_l) & (MEAMED_DIST(bh, m2h) < t_h));
    core_below = !ANY_LANE(above);
  }
#undef MEAMED_DIST
  /* a window must take a NaN or infinite value: rare, hostile data */
  const int nan_inf = !finite && ANY_LANE(~((t_l < inf) & (t_h < inf)));
  /* in rank order: the ranks below the core, the core, the ranks above it */
  if (kept)
    tally_kept_ends(ends, e, 0, t_l, t_h, s);
  else
    meamed_tally_either(v, 0, c0, m2l, m2h, t_l, t_h, nan_inf, s);
  if (core_below) {
    for (int64_t i = c0; i < c1; ++i) {
      VH xl, xh;
      SPLIT_TO_DOUBLE(KEYS_TO_FLOAT(v[i]), xl, xh);
      s[0] += xl, s[4] += xh;
    }
    s[1] += (double)(c1 - c0), s[5] += (double)(c1 - c0);
  } else {
    meamed_tally_either(v, c0, c1, m2l, m2h, t_l, t_h, nan_inf, s);
  }
  if (kept)
    tally_kept_ends(ends, e, 4, t_l, t_h, s);
  else
    meamed_tally_either(v, c1, n, m2l, m2h, t_l, t_h, nan_inf, s);
  for (int h = 0; h < 2; ++h) {
    const VH below = s[4 * h], nbelow = s[4 * h + 1], tied = s[4 * h + 2], ntied = s[4 * h + 3];
    /* one value at t in every lane (the common case): tied / 1 is tied, bit
     * for bit, and a divide is the slowest instruction of the tile */
    const VH mean_tied = ANY_LANE((VM)(ntied > 1.0)) ? tied / ntied : tied;
    VH sum = SELECT(ntied > 0.0, below + ((double)keep - nbelow) * mean_tied, below);
    sum /= (double)keep;
    memcpy(res + h * HW, &sum, sizeof(sum));
  }
}

/* One trip of a thread: CHUNK coordinates of every input row, copied (as
 * keys, or as floats in front of a mixing pre-step) into a contiguous stage
 * before the networks read them. Rows of a
 * power-of-two length lie a multiple of the cache's way size apart, so the n
 * values of one coordinate all map to the same cache set: read in place, n
 * concurrent streams evict each other's lines before they are used. Read a
 * row's CHUNK values at once and the stage is the only thing the networks
 * touch. */
enum { CHUNK = 64, AHEAD = 8, AHEAD_MANY = 16 };
/* Above this many rows a trip takes one vector of each row instead: the
 * stage shrinks 4x (at 65536 rows 4 MiB a thread instead of 16) and the
 * pass, bound by its n log^2 n comparators there, runs as fast (measured on
 * the AVX-512 EPYC at 8192-65536 rows, within the run-to-run spread). */
enum { CHUNK_FEW_ROWS = 4096 };
/* How many chunks on the far prefetch asks for rows (see prefetch_far). */
enum { FAR_CHUNKS = 2 };

/* The stage is tile-major: tile q (values q VW .. q VW + VW-1 of the chunk)
 * holds one vector per row, so a tile's n vectors are contiguous and the
 * network sorts them where they lie (no second copy of the tile; measured on
 * an AVX-512 EPYC at n = 64: median -20%, trimmed mean -6 to -12%). */
#define STAGE_VEC(stage, n, q, i) ((VEC *)(stage) + (q) * (n) + (i))

/* Stage row i's values k0 .. k0+len (len <= chunk), as order-preserving keys
 * (keys = 1) or as float bits (keys = 0, for the mixing pre-step); past len:
 * zeros (those lanes are never stored). */
static inline void stage_row(ragg_dtype_t t, const void *row, int64_t k0, int64_t len,
                             int64_t chunk, int keys, VEC *stage, int64_t n, int64_t i) {
  for (int64_t q = 0; q < chunk / VW; ++q) {
    VEC u;
    if (t == RAGG_F32 && len == chunk) {
      u = *(const VEC_U *)((const float *)row + k0 + q * VW);
    } else {
      float f[VW];
      for (int64_t l = 0; l < VW; ++l) {
        int64_t k = q * VW + l;
        f[l] = k < len ? ragg_load(t, row, k0 + k) : 0.0f;
      }
      memcpy(&u, f, sizeof(u));
    }
    *STAGE_VEC(stage, n, q, i) = keys ? bits_to_keys(u) : u;
  }
}

/* Asks for one row's values k .. k+len-1, line by line, with
 * __builtin_prefetch's locality (a constant, hence a macro). */
#define PREFETCH_VALUES(row, k, len, esize, locality)           \
  for (int64_t b_ = 0; b_ < (len) * (int64_t)(esize); b_ += 64) \
  __builtin_prefetch((const char *)(row) + (size_t)(k) * (esize) + b_, 0, (locality))

/* Asks for rows i0 .. i1-1's values k .. k+len-1 into the L2, spread over
 * a chunk's tiles. The staging's own prefetch, `ahead` rows on, reaches no
 * further than the next chunk: the input's lines of one chunk all map to
 * the same few cache sets (rows a power of two apart), so lines asked for
 * much earlier into the L1 are gone before they are used, and from memory
 * each chunk's staging waited for its loads while no network ran. These
 * lines leave the L2 for the L3 (a victim cache on AMD) and the staging
 * finds them there. Measured on the AVX-512 EPYC, two threads, from memory
 * (256 MiB inputs): trimmed mean n = 64 1.30-1.39x as fast, n = 32
 * 1.25-1.38x, n = 128 1.05-1.17x, median n = 64 1.36-1.46x, MeaMed n = 64
 * 1.20-1.23x, n >= 512 unchanged; with the input in the L3 (16 MiB)
 * 0.93-1.00x, the median at n = 64 0.89-0.97x. Into the L1 instead:
 * 1.00-1.12x; one line of each row's four: 1.09x (bench/RESULTS.md). */
static inline void prefetch_far(const void *const *rows, int64_t i0, int64_t i1, int64_t k,
                                int64_t len, size_t esize) {
  for (int64_t i = i0; i < i1; ++i) PREFETCH_VALUES(rows[i], k, len, esize, 1);
}

/* The mixed rows Y = W X of one tile with the arithmetic of
 * ragg_cpu_transform_rows, so the bits agree: per mixed row, float products
 * of its nonzero weights added in input order to a float sum from +0. */
static inline void mix_tile(const VEC *tile, int64_t n, const ragg_mix_terms_t *mt, int64_t nm,
                            VF *x, VEC *v) {
  for (int64_t j = 0; j < n; ++j) x[j] = (VF)tile[j];
  x[n] = (VF){0}; /* the padding terms' row: adds +0 to a sum that is never -0 */
  const int64_t c = mt->width;
  int64_t p = 0;
  /* four independent sums at a time: the adds of one sum form a chain */
  for (; p + 4 <= nm; p += 4) {
    const float *w = mt->w + p * c;
    const int32_t *j = mt->idx + p * c;
    VF a0 = (VF){0}, a1 = (VF){0}, a2 = (VF){0}, a3 = (VF){0};
    for (int64_t t = 0; t < c; ++t) {
      a0 = a0 + w[t] * x[j[t]];
      a1 = a1 + w[c + t] * x[j[c + t]];
      a2 = a2 + w[2 * c + t] * x[j[2 * c + t]];
      a3 = a3 + w[3 * c + t] * x[j[3 * c + t]];
    }
    v[p] = bits_to_keys((VEC)a0);
    v[p + 1] = bits_to_keys((VEC)a1);
    v[p + 2] = bits_to_keys((VEC)a2);
    v[p + 3] = bits_to_keys((VEC)a3);
  }
  for (; p < nm; ++p) {
    const float *w = mt->w + p * c;
    const int32_t *j = mt->idx + p * c;
    VF acc = (VF){0};
    for (int64_t t = 0; t < c; ++t) acc = acc + w[t] * x[j[t]];
    v[p] = bits_to_keys((VEC)acc);
  }
}

/* The report's counts of one sorted tile: row i's lanes whose original key
 * lies below rank f or above rank n-1-f of the sorted keys, added to its lane
 * counters (each lane gains at most 1 per tile). Lanes past the end of the
 * data hold zeros in every row (stage_row), so none of them is trimmed. */
static inline void count_trimmed(const VEC *orig, const VEC *sorted, int64_t n, int64_t f,
                                 VEC *cnt) {
  const VEC lo = sorted[f], hi = sorted[n - 1 - f];
  for (int64_t i = 0; i < n; ++i) cnt[i] -= (orig[i] < lo) | (orig[i] > hi);
}

/* Adds a thread's lane counters into counts and clears them. */
static void flush_counts(VEC *cnt, int64_t n, int64_t *counts) {
#pragma omp critical(ragg_coord_simd_counts)
  for (int64_t i = 0; i < n; ++i)
    for (int l = 0; l < VW; ++l) counts[i] += cnt[i][l];
  memset(cnt, 0, sizeof(VEC) * (size_t)n);
}

int SIMD_FN(ragg_dtype_t in_t, const void *const *rows, int64_t n, int64_t d,
            const ragg_coord_op_t *op, ragg_dtype_t out_t, void *out, const ragg_mix_terms_t *mt,
            int64_t nm, int64_t *counts) {
  /* n and nm are in 2..RAGG_COORD_SIMD_NMAX: ragg_coord_simd, the only
   * caller, checks; above NET_NMAX, sort_blocks_and_merge */
  /* the median's network is pruned to the middle ranks; the counts need all */
  const net_fn net = nm > NET_NMAX                             ? NULL
                     : op->rule == RAGG_RULE_MEDIAN && !counts ? net_median_table[nm]
                                                               : net_sort_table[nm];
  /* above 64 values the network sorts np >= nm, the rest top sentinels; a
   * tile of staged rows leaves room for them */
  const int64_t np = padded_count(nm), stride = mt ? n : np;
  /* per thread, on the heap (with AVX-512: 64 KiB at 256 inputs, 256 KiB at
   * 1024, 4 MiB at 65536; more than a thread's stack should be asked for):
   * the stage; with mt the mixed rows and the inputs of mix_tile; with counts
   * (never with mt) the tile's keys before the sort, where the mixed rows
   * would go, and one vector of lane counters per row */
  const int64_t chunk = n > CHUNK_FEW_ROWS ? VW : CHUNK;
  const size_t stage_vecs = (size_t)stride * (size_t)(chunk / VW);
  const size_t mixed_vecs = mt || counts ? (size_t)np : 0, in_vecs = mt ? (size_t)n + 1 : 0,
               cnt_vecs = counts ? (size_t)n : 0;
  const size_t scratch_bytes =
      sizeof(VEC) * (stage_vecs + mixed_vecs + cnt_vecs) + sizeof(VF) * in_vecs;
  int failed = 0;
  int64_t nchunks = (d + chunk - 1) / chunk;
  size_t esize = ragg_dtype_size(in_t);
  /* measured on an AVX-512 EPYC: 16 rows ahead is 5-10% faster than 8 at
   * n = 32 and 64, and at n = 16 8 rows ahead beats none */
  const int64_t ahead = n > 2 * AHEAD ? AHEAD_MANY : AHEAD;
#pragma omp parallel if (n * d > RAGG_PARALLEL_MIN)
  {
    /* VEC and VF are each one vector of the same width, so every part
     * starts aligned once the block does */
    char *scratch = (char *)malloc(scratch_bytes + 64);
    VEC *stage = NULL, *mixed = NULL, *cnt = NULL;
    int64_t tiles_counted = 0;
    VF *mix_in = NULL;
    if (scratch) {
      stage = (VEC *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
      mixed = stage + stage_vecs;
      mix_in = (VF *)(mixed + mixed_vecs);
      cnt = (VEC *)(mix_in + in_vecs);
      if (counts) memset(cnt, 0, sizeof(VEC) * (size_t)n);
    } else {
#pragma omp atomic write
      failed = 1;
    }
#pragma omp for schedule(static)
    for (int64_t c = 0; c < nchunks; ++c) {
      if (!scratch) continue;
      int64_t c0 = c * chunk, clen = d - c0 < chunk ? d - c0 : chunk;
      for (int64_t i = 0; i < n; ++i) {
        /* `ahead` rows ahead, wrapping into the next chunk: few enough lines
         * in flight per cache set that they survive until used. Up to AHEAD
         * rows the hardware prefetchers keep up alone (measured: the
         * software prefetch cost 5-10% at n = 8 and saved 10-15% at 16-64). */
        int64_t pi = i + ahead, pc = c0;
        if (pi >= n) pi -= n, pc += chunk;
        if (n > ahead && pi < n && pc < d)
          PREFETCH_VALUES(rows[pi], pc, d - pc < chunk ? d - pc : chunk, esize, 3);
        stage_row(in_t, rows[i], c0, clen, chunk, !mt, stage, stride, i);
      }
      /* each tile's share of the rows FAR_CHUNKS on, where a chunk holds
       * several tiles and rows are prefetched at all */
      const int64_t ntiles = (clen + VW - 1) / VW, far_k = c0 + FAR_CHUNKS * chunk;
      const int64_t far_share =
          chunk > VW && n > ahead && far_k < d ? (n + ntiles - 1) / ntiles : 0;
      for (int64_t off = 0; off < clen; off += VW) {
        double res[VW];
        int64_t len = clen - off < VW ? clen - off : VW;
        if (far_share) {
          const int64_t r0 = off / VW * far_share;
          prefetch_far(rows, r0 < n ? r0 : n, r0 + far_share < n ? r0 + far_share : n, far_k,
                       d - far_k < chunk ? d - far_k : chunk, esize);
        }
        VEC *v = STAGE_VEC(stage, stride, off / VW, 0);
        if (mt) {
          mix_tile(v, n, mt, nm, mix_in, mixed);
          v = mixed;
        }
        if (counts) memcpy(mixed, v, sizeof(VEC) * (size_t)n);
        /* the largest key (a NaN's): sorts to the top, after every input */
        for (int64_t i = nm; i < np; ++i) v[i] = (VEC){0} + 0x7FFFFFFF;
        if (net)
          net(v);
        else
          sort_blocks_and_merge(v, np);
        if (counts) {
          count_trimmed(mixed, v, n, op->f, cnt);
          /* a lane gains at most 1 a tile: flush long before int32 wraps */
          if (++tiles_counted == (int64_t)1 << 30) flush_counts(cnt, n, counts), tiles_counted = 0;
        }
        /* in halves of native double vectors (a whole tile of doubles is
         * two registers, which AVX2 code handles lane by lane) */
        if (op->rule == RAGG_RULE_MEDIAN) {
          for (int h = 0; h < 2; ++h) {
            VH r = half_to_double(v[(nm - 1) / 2], h);
            if (!(nm & 1)) r = (r + half_to_double(v[nm / 2], h)) * 0.5;
            memcpy(res + h * HW, &r, sizeof(r));
          }
        } else if (op->rule == RAGG_RULE_TRIMMED_MEAN) {
          /* each rank converted once, both halves' sums in one loop */
          VH lo_sum = (VH){0}, hi_sum = (VH){0};
          for (int64_t i = op->f; i < nm - op->f; ++i) {
            VH lo, hi;
            SPLIT_TO_DOUBLE(KEYS_TO_FLOAT(v[i]), lo, hi);
            lo_sum += lo;
            hi_sum += hi;
          }
          lo_sum /= (double)(nm - 2 * op->f);
          hi_sum /= (double)(nm - 2 * op->f);
          memcpy(res, &lo_sum, sizeof(lo_sum));
          memcpy(res + HW, &hi_sum, sizeof(hi_sum));
        } else {
          meamed_tile(v, nm, op->keep, res);
        }
        store_result(out_t, out, c0 + off, len, res);
      }
    }
    if (scratch && counts) flush_counts(cnt, n, counts);
    free(scratch);
  }
  return failed ? -1 : 1;
}
