/* The CPU's passes for the Gram-space family: distances (one pass), the
 * combination (one pass), and the small helpers around them. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "convert.h"
#include "cpu.h"
#include "gram32.h"

enum { BLOCK = 512, LANES = 8 };
/* Short blocks (n <= 16 takes 128 values a row) from memory: the block
 * PF_BLOCKS ahead is prefetched row by row as each block is widened, towards
 * the outer caches (measured on an AVX-512 EPYC, 256 MiB: Krum n = 8 23-31 ->
 * 18-20 ms, n = 16 32-37 -> 25-27 ms; into L1, 4 or 8 blocks ahead gained
 * less; 16 ahead the same; at n >= 32, 2048-value blocks, nothing) */
enum { PF_BLOCKS = 8, PF_MAX_BS = 256 };
/* Longer blocks (n >= 17) from memory: the tile kernels fetch the part's
 * next block, a line every PF_STEPS steps, while they form this block's
 * pairs, so the next widening does not wait on memory (AVX-512 EPYC,
 * 256 MiB, Krum: n = 32 39.1 -> 36.5 ms, n = 64 68.3 -> 62.0 ms; the AVX2
 * kernels at n = 64 149 -> 108 ms; in cache the same; towards L2 rather
 * than L1 gained about half as much with the AVX-512 kernels). */
enum { PF_STEPS = 4 };

int64_t ragg_cpu_gram_parts(int64_t L, int64_t d) {
  int64_t parts = (d + 8 * BLOCK - 1) / (8 * BLOCK);
  int64_t cap = (int64_t)((64u << 20) / (8u * (uint64_t)L * (uint64_t)L));
  if (parts > 64) parts = 64;
  if (parts > cap) parts = cap;
  return parts < 1 ? 1 : parts;
}

/* The hot loops are built for AVX-512, AVX2 and the baseline, picked at load
 * time. Every lane keeps its own sum in the order the source gives and
 * floating-point contraction is off, so each clone computes the same bits. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(RAGG_NO_CLONES)
#define RAGG_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define RAGG_CLONES
#endif

/* Values per row per block of the Gram pass: small enough for few rows that
 * the widened block stays in L1 between its reads from memory, large enough
 * for many rows that the per-block reductions of the n x n sums do not
 * dominate (measured on an AVX-512 EPYC: n = 8/16 best at 128, n = 32/64 at
 * 2048-4096; the fp32 runs' float blocks, half the bytes, at n = 64 4096
 * values against 2048: 5.5 -> 5.1 ms a Krum call on one core). Depends on L and d alone, so the
 * order of the sums does not depend on the machine or the thread count. */
enum { SHORT_MAX_L = 16 }; /* short blocks, and each pair's lanes kept across them */

static int64_t gram_block_size(int64_t L, int64_t d, int64_t es) {
  int64_t bs = 128;
  if (L > SHORT_MAX_L) { /* at most 1 MiB of staged rows per thread */
    bs = 8192 / es * 2;
    while (bs > 128 && L * bs * es > ((int64_t)1 << 20)) bs /= 2;
  }
  /* a short row is one block, not a padded one; an fp32 block is at least
   * one step of the runs' 16 lanes */
  const int64_t least = es == (int64_t)sizeof(float) ? RAGG_GRAM32_LANES : 8;
  while (bs > least && bs / 2 >= d) bs /= 2;
  return bs;
}

/* Widens bs values of each row to double. */
RAGG_CLONES static void load_block(ragg_dtype_t t, const void *const *rows, int64_t L, int64_t k0,
                                   int64_t len, int64_t bs, double *buf, int64_t pf_end) {
  const size_t es = ragg_dtype_size(t);
  for (int64_t i = 0; i < L; ++i) {
    double *b = buf + i * bs;
    const int64_t pk = k0 + PF_BLOCKS * bs; /* pf_end: 0 for none */
    if (pk < pf_end) {
      const char *p = (const char *)rows[i] + (size_t)pk * es;
      const size_t bytes = (size_t)(pf_end - pk < bs ? pf_end - pk : bs) * es;
      for (size_t o = 0; o < bytes; o += 64) __builtin_prefetch(p + o, 0, 1);
    }
    if (t == RAGG_F32) {
      const float *r = (const float *)rows[i] + k0;
      for (int64_t k = 0; k < len; ++k) b[k] = (double)r[k];
    } else {
      for (int64_t k = 0; k < len; ++k) b[k] = (double)ragg_load(t, rows[i], k0 + k);
    }
    for (int64_t k = len; k < bs; ++k) b[k] = 0.0;
  }
}

/* The fp32-run pass's block: bs values of each row as floats (16-bit values
 * widen exactly), zeros past the row's end. */
RAGG_CLONES static void load_block32(ragg_dtype_t t, const void *const *rows, int64_t L, int64_t k0,
                                     int64_t len, int64_t bs, float *buf) {
  for (int64_t i = 0; i < L; ++i) {
    float *b = buf + i * bs;
    if (t == RAGG_F32)
      memcpy(b, (const float *)rows[i] + k0, sizeof(float) * (size_t)len);
    else
      for (int64_t k = 0; k < len; ++k) b[k] = ragg_load(t, rows[i], k0 + k);
    for (int64_t k = len; k < bs; ++k) b[k] = 0.0f;
  }
}

/* The next block's rows, handed to the tile kernels a stretch at a time. */
typedef struct {
  const void *const *rows;
  size_t es, bytes; /* bytes of the next block in each row; 0: nothing to fetch */
  int64_t k0, r;    /* the next block's first value; the row being fetched */
  size_t off;       /* bytes of row r already handed out */
} next_block_t;

typedef struct {
  const char *p;
  int64_t lines;
} fetch_t;

/* Block b's successor, for the tile kernels to fetch while they work on b:
 * the next part's first after the part's last (a static schedule gives each
 * thread one run of parts, so it is this thread's next but at the end of its
 * run); nothing to fetch for short blocks (load_block prefetches those) or
 * after the last block. */
static next_block_t next_block(const void *const *rows, ragg_dtype_t t, int64_t d, int64_t bs,
                               int64_t b, int64_t nblocks) {
  next_block_t nb = {rows, ragg_dtype_size(t), 0, (b + 1) * bs, 0, 0};
  if (bs > PF_MAX_BS && b + 1 < nblocks)
    nb.bytes = (size_t)(d - nb.k0 < bs ? d - nb.k0 : bs) * nb.es;
  return nb;
}

/* The next stretch: up to `lines` cache lines of one row. */
static fetch_t next_stretch(next_block_t *nb, int64_t L, int64_t lines) {
  fetch_t f = {NULL, 0};
  if (nb->bytes == 0 || nb->r >= L) return f;
  f.p = (const char *)nb->rows[nb->r] + (size_t)nb->k0 * nb->es + nb->off;
  size_t left = nb->bytes - nb->off, take = (size_t)lines * 64;
  if (take >= left) {
    take = left;
    nb->r++;
    nb->off = 0;
  } else {
    nb->off += take;
  }
  f.lines = (int64_t)((take + 63) / 64);
  return f;
}

/* In a tile kernel's loop over k: a line of the stretch every PF_STEPS steps. */
#define FETCH_TICK(f, k)                                        \
  do {                                                          \
    if ((f).lines > 0 && ((k) & (PF_STEPS * LANES - 1)) == 0) { \
      __builtin_prefetch((f).p, 0, 3);                          \
      (f).p += 64;                                              \
      --(f).lines;                                              \
    }                                                           \
  } while (0)

/* LANES accumulators per pair (one vector of doubles, whatever the ISA makes
 * of it), reduced in a fixed order. */
typedef double v8d __attribute__((vector_size(LANES * sizeof(double))));

/* Macros, not functions: a vector passed between functions built for
 * different ISAs (the clones below) would not agree on its calling convention. */
#define LOADV(T, p)                \
  __extension__({                  \
    T v_;                          \
    memcpy(&v_, (p), sizeof(v_));  \
    v_;                            \
  })
#define load8(p) LOADV(v8d, p)
/* Four lanes from o, in the one order every kernel reduces them. */
#define SUM4(a, o) ((((a)[(o)] + (a)[(o) + 1]) + ((a)[(o) + 2] + (a)[(o) + 3])))
#define reduce_lanes(a) (SUM4(a, 0) + SUM4(a, 4))
/* Direct mode sums (a - b)^2, Gram mode a * b, lane by lane. */
#define STEP(T, acc, x, y)       \
  do {                           \
    if (direct) {                \
      T t_ = (x) - (y);          \
      (acc) += t_ * t_;          \
    } else {                     \
      (acc) += (x) * (y);        \
    }                            \
  } while (0)

/* Where a kernel's block sums go: with short blocks, added lane by lane to
 * the pair's LANES sums in A (L x L x LANES doubles), which are reduced once
 * at the end of the part (a reduction per block and pair costs about as much
 * as a short block's products: Krum n = 16, AVX-512 EPYC, 4 MiB in cache
 * 0.39 -> 0.31 ms, 256 MiB 26.6 -> 23.2 ms); with long blocks, reduced
 * into G block by block. */
typedef struct {
  double *G, *A;
  int64_t L;
} sink_t;

#define LANES_AT(s, a, b) ((s).A + ((a) * (s).L + (b)) * LANES)
#define ACC_SAVE(s, a, b, c)                                \
  do {                                                      \
    if ((s).A) {                                            \
      v8d t_ = LOADV(v8d, LANES_AT(s, a, b)) + (c);         \
      memcpy(LANES_AT(s, a, b), &t_, sizeof(t_));           \
    } else                                                  \
      (s).G[(a) * (s).L + (b)] += reduce_lanes(c);          \
  } while (0)

/* Adds the block's contribution to G's rows i and i+1 for columns
 * j0..j0+3 (all < L, j0 > i+1): six rows read for eight pairs, each pair
 * keeping its own lanes, so the sums are those of a pair-by-pair loop. */
#define PAIR_STEP(acc, x, y) STEP(v8d, acc, x, y)

RAGG_CLONES static void block_tile2x4(const double *buf, int64_t bs, int64_t i, int64_t j0,
                                      int direct, sink_t s) {
  v8d c[2][4] = {{{0}}};
  const double *a0 = buf + i * bs, *a1 = a0 + bs;
  const double *b0 = buf + j0 * bs, *b1 = b0 + bs, *b2 = b1 + bs, *b3 = b2 + bs;
  for (int64_t k = 0; k < bs; k += LANES) {
    v8d x0 = load8(a0 + k), x1 = load8(a1 + k);
    v8d y0 = load8(b0 + k), y1 = load8(b1 + k), y2 = load8(b2 + k), y3 = load8(b3 + k);
    PAIR_STEP(c[0][0], x0, y0);
    PAIR_STEP(c[0][1], x0, y1);
    PAIR_STEP(c[0][2], x0, y2);
    PAIR_STEP(c[0][3], x0, y3);
    PAIR_STEP(c[1][0], x1, y0);
    PAIR_STEP(c[1][1], x1, y1);
    PAIR_STEP(c[1][2], x1, y2);
    PAIR_STEP(c[1][3], x1, y3);
  }
  for (int r = 0; r < 2; ++r)
    for (int q = 0; q < 4; ++q) ACC_SAVE(s, i + r, j0 + q, c[r][q]);
}

RAGG_CLONES static void block_pair(const double *buf, int64_t bs, int64_t i, int64_t j,
                                   int direct, sink_t s) {
  v8d c = {0};
  const double *a = buf + i * bs, *b = buf + j * bs;
  if (direct && i != j) {
    for (int64_t k = 0; k < bs; k += LANES) {
      v8d t = load8(a + k) - load8(b + k);
      c += t * t;
    }
  } else {
    for (int64_t k = 0; k < bs; k += LANES) c += load8(a + k) * load8(b + k);
  }
  ACC_SAVE(s, i, j, c);
}

RAGG_CLONES static void block_tile4x4(const double *buf, int64_t bs, int64_t i, int64_t j0,
                                      int direct, sink_t s, fetch_t f) {
  v8d c[4][4] = {{{0}}};
  const double *a0 = buf + i * bs, *a1 = a0 + bs, *a2 = a1 + bs, *a3 = a2 + bs;
  const double *b0 = buf + j0 * bs, *b1 = b0 + bs, *b2 = b1 + bs, *b3 = b2 + bs;
  for (int64_t k = 0; k < bs; k += LANES) {
    FETCH_TICK(f, k);
    v8d x[4] = {load8(a0 + k), load8(a1 + k), load8(a2 + k), load8(a3 + k)};
    v8d y[4] = {load8(b0 + k), load8(b1 + k), load8(b2 + k), load8(b3 + k)};
    for (int r = 0; r < 4; ++r)
      for (int q = 0; q < 4; ++q) PAIR_STEP(c[r][q], x[r], y[q]);
  }
  for (int r = 0; r < 4; ++r)
    for (int q = 0; q < 4; ++q) ACC_SAVE(s, i + r, j0 + q, c[r][q]);
}

/* The ten pairs among rows i..i+3 (squared norms by dot products in both
 * modes) with each row loaded once per step. */
RAGG_CLONES static void block_diag4(const double *buf, int64_t bs, int64_t i, int direct,
                                    sink_t s) {
  v8d nrm[4] = {{0}}, c[6] = {{0}};
  const double *a0 = buf + i * bs, *a1 = a0 + bs, *a2 = a1 + bs, *a3 = a2 + bs;
  for (int64_t k = 0; k < bs; k += LANES) {
    v8d x[4] = {load8(a0 + k), load8(a1 + k), load8(a2 + k), load8(a3 + k)};
    for (int r = 0; r < 4; ++r) nrm[r] += x[r] * x[r];
    PAIR_STEP(c[0], x[0], x[1]);
    PAIR_STEP(c[1], x[0], x[2]);
    PAIR_STEP(c[2], x[0], x[3]);
    PAIR_STEP(c[3], x[1], x[2]);
    PAIR_STEP(c[4], x[1], x[3]);
    PAIR_STEP(c[5], x[2], x[3]);
  }
  for (int r = 0; r < 4; ++r) ACC_SAVE(s, i + r, i + r, nrm[r]);
  ACC_SAVE(s, i, i + 1, c[0]);
  ACC_SAVE(s, i, i + 2, c[1]);
  ACC_SAVE(s, i, i + 3, c[2]);
  ACC_SAVE(s, i + 1, i + 2, c[3]);
  ACC_SAVE(s, i + 1, i + 3, c[4]);
  ACC_SAVE(s, i + 2, i + 3, c[5]);
}

/* The same sums with the eight lanes of a pair held as two halves of four
 * (lanes 0-3 and 4-7 of each step of eight), for ISAs with 256-bit vectors:
 * a generic 512-bit vector compiles to scalar shuffles on AVX2. Every lane
 * adds what it adds in the 512-bit kernels, in the same order, and the
 * lanes reduce in the same order, so both families give the same bits. */
typedef double v4d __attribute__((vector_size(4 * sizeof(double))));
#define load4(p) LOADV(v4d, p)
#define reduce_halves(lo, hi) (SUM4(lo, 0) + SUM4(hi, 0))
#define HALF_STEP(acc, x, y) STEP(v4d, acc, x, y)
/* A pair's lanes 0-3 (o = 0) or 4-7 (o = 4). */
#define HALF_SAVE(s, a, b, lo, hi)                          \
  do {                                                      \
    if ((s).A) {                                            \
      v4d l_ = LOADV(v4d, LANES_AT(s, a, b)) + (lo);        \
      v4d h_ = LOADV(v4d, LANES_AT(s, a, b) + 4) + (hi);    \
      memcpy(LANES_AT(s, a, b), &l_, sizeof(l_));           \
      memcpy(LANES_AT(s, a, b) + 4, &h_, sizeof(h_));       \
    } else {                                                \
      (s).G[(a) * (s).L + (b)] += reduce_halves(lo, hi);    \
    }                                                       \
  } while (0)

RAGG_CLONES static void half_pair(const double *buf, int64_t bs, int64_t i, int64_t j, int direct,
                                  sink_t s) {
  v4d lo = {0}, hi = {0};
  const double *a = buf + i * bs, *b = buf + j * bs;
  for (int64_t k = 0; k < bs; k += LANES) {
    HALF_STEP(lo, load4(a + k), load4(b + k));
    HALF_STEP(hi, load4(a + k + 4), load4(b + k + 4));
  }
  HALF_SAVE(s, i, j, lo, hi);
}

/* Rows i, i+1 against columns j0, j0+1: 8 accumulators, 4 loads per half. */
RAGG_CLONES static void half_tile2x2(const double *buf, int64_t bs, int64_t i, int64_t j0,
                                     int direct, sink_t s, fetch_t f) {
  v4d lo[2][2] = {{{0}}}, hi[2][2] = {{{0}}};
  const double *a0 = buf + i * bs, *a1 = a0 + bs, *b0 = buf + j0 * bs, *b1 = b0 + bs;
  for (int64_t k = 0; k < bs; k += LANES) {
    FETCH_TICK(f, k);
    v4d x0 = load4(a0 + k), x1 = load4(a1 + k), y0 = load4(b0 + k), y1 = load4(b1 + k);
    HALF_STEP(lo[0][0], x0, y0);
    HALF_STEP(lo[0][1], x0, y1);
    HALF_STEP(lo[1][0], x1, y0);
    HALF_STEP(lo[1][1], x1, y1);
    x0 = load4(a0 + k + 4), x1 = load4(a1 + k + 4), y0 = load4(b0 + k + 4), y1 = load4(b1 + k + 4);
    HALF_STEP(hi[0][0], x0, y0);
    HALF_STEP(hi[0][1], x0, y1);
    HALF_STEP(hi[1][0], x1, y0);
    HALF_STEP(hi[1][1], x1, y1);
  }
  for (int r = 0; r < 2; ++r)
    for (int q = 0; q < 2; ++q) HALF_SAVE(s, i + r, j0 + q, lo[r][q], hi[r][q]);
}

/* 512-bit kernels where the CPU has AVX-512 (32 vector registers), unless
 * RAGG_CPU_SIMD=avx2 asks for what an AVX2 CPU runs (the same bits). */
static int wide_vectors(void) {
#if defined(__x86_64__) && defined(__GNUC__) && !defined(RAGG_NO_CLONES) && !defined(__clang__)
  if (ragg_cpu_simd_env() == RAGG_SIMD_AVX2) return 0;
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f");
#else
  return 0;
#endif
}

/* One block's contribution to the upper triangle of G (diagonal included),
 * or to the pairs `pairs` names (a pair's sum is the same whichever kernel
 * forms it). */
static void gram_block(const double *buf, int64_t bs, int64_t L, int direct, int pairs, int wide,
                       sink_t s, next_block_t *nb) {
  const int64_t lines = bs / (PF_STEPS * LANES); /* a stretch: one tile's worth */
  void (*pair)(const double *, int64_t, int64_t, int64_t, int, sink_t) =
      wide ? block_pair : half_pair;
  int64_t i = 0;
  if (pairs != RAGG_PAIRS_ALL) {
    for (; i < L; ++i) {
      pair(buf, bs, i, i, 0, s);
      if (pairs == RAGG_PAIRS_LAST && i + 1 < L) pair(buf, bs, i, L - 1, direct, s);
    }
    return;
  }
  for (; wide && i + 4 <= L; i += 4) {
    block_diag4(buf, bs, i, direct, s);
    int64_t j = i + 4;
    for (; j + 4 <= L; j += 4) block_tile4x4(buf, bs, i, j, direct, s, next_stretch(nb, L, lines));
    for (; j < L; ++j)
      for (int64_t r = 0; r < 4; ++r) pair(buf, bs, i + r, j, direct, s);
  }
  for (; i + 2 <= L; i += 2) {
    pair(buf, bs, i, i, 0, s); /* squared norms: dot products in both modes */
    pair(buf, bs, i, i + 1, direct, s);
    pair(buf, bs, i + 1, i + 1, 0, s);
    int64_t j = i + 2;
    if (wide)
      for (; j + 4 <= L; j += 4) block_tile2x4(buf, bs, i, j, direct, s);
    else
      for (; j + 2 <= L; j += 2)
        half_tile2x2(buf, bs, i, j, direct, s, next_stretch(nb, L, lines));
    for (; j < L; ++j) {
      pair(buf, bs, i, j, direct, s);
      pair(buf, bs, i + 1, j, direct, s);
    }
  }
  if (i < L) pair(buf, bs, i, i, 0, s);
}

/* G += each pair's lanes reduced, in the kernels' order; the lanes cleared. */
static void reduce_pairs(double *A, int64_t L, double *G) {
  for (int64_t q = 0; q < L * L; ++q) {
    double *a = A + q * LANES;
    G[q] += reduce_lanes(a);
    for (int l = 0; l < LANES; ++l) a[l] = 0.0;
  }
}

/* The fp32-run pass's rows: L padded to a multiple of 4 with zero rows, so
 * that every tile is whole. */
static int64_t gram32_rows(int64_t L) {
  return (L + 3) / 4 * 4;
}

/* The pass with fp32 runs (gram32.h) over blocks b0..b1-1 into part p's G;
 * buf holds gram32_rows(L) rows of bs floats. Each tile also fetches its share
 * of the next block's lines (towards L2), so the next copy does not wait on
 * memory. */
static void gram32_part(ragg_dtype_t t, const void *const *rows, int64_t L, int64_t d, int pairs,
                        int64_t bs, int64_t b0, int64_t b1, int64_t nblocks, float *buf,
                        ragg_gram32_kernel_t kern, double *G) {
  const int64_t Lp = gram32_rows(L);
  memset(buf + L * bs, 0, sizeof(float) * (size_t)((Lp - L) * bs)); /* the padding rows */
  int64_t tiles = 0;
  for (int64_t i = 0; i < Lp; i += kern.tr) tiles += (Lp - i / 4 * 4) / 4;
  for (int64_t b = b0; b < b1; ++b) {
    int64_t k0 = b * bs, len = d - k0 < bs ? d - k0 : bs;
    load_block32(t, rows, L, k0, len, bs, buf);
    if (pairs != RAGG_PAIRS_ALL) {
      for (int64_t i = 0; i < L; ++i) {
        kern.pair(buf, bs, i, i, L, G);
        if (pairs == RAGG_PAIRS_LAST && i + 1 < L) kern.pair(buf, bs, i, L - 1, L, G);
      }
      continue;
    }
    next_block_t nb = next_block(rows, t, d, bs, b, nblocks);
    const int64_t lines = ((int64_t)nb.bytes * L / 64 + tiles - 1) / tiles;
    for (int64_t i = 0; i < Lp; i += kern.tr)
      for (int64_t j = i / 4 * 4; j < Lp; j += 4) {
        for (fetch_t f = next_stretch(&nb, L, lines); f.lines > 0; --f.lines, f.p += 64)
          __builtin_prefetch(f.p, 0, 2);
        (j == i && kern.diag ? kern.diag : kern.tile)(buf, bs, i, j, L, G);
      }
  }
}

int ragg_cpu_gram_raw(ragg_dtype_t t, const void *const *rows, int64_t L, int64_t d,
                      ragg_distances_t mode, int pairs, double *R, double *part_buf) {
  /* fp32 runs from 17 rows; up to 16 the double pass runs at about two reads
   * (memory-bound, its lane sums kept across blocks) and serves this mode too:
   * n = 8, 16 MiB, 0.93 ms against 1.07 with the runs on the 2-vCPU VM */
  const int fp32 = mode == RAGG_DISTANCES_GRAM_FP32 && L > SHORT_MAX_L;
  const ragg_gram32_kernel_t kern32 = fp32 ? ragg_gram32_kernel() : (ragg_gram32_kernel_t){0};
  int wide = wide_vectors();
  int64_t bs = gram_block_size(L, d, fp32 ? (int64_t)sizeof(float) : (int64_t)sizeof(double)),
          parts = ragg_cpu_gram_parts(L, d), nblocks = (d + bs - 1) / bs;
  int failed = 0;
#pragma omp parallel if (parts > 1)
  {
    double *buf = (double *)malloc(fp32 ? sizeof(float) * (size_t)(gram32_rows(L) * bs)
                                        : sizeof(double) * (size_t)(L * bs));
    /* each pair's running lanes (16 KiB at L = 16) */
    const int lanes = L <= SHORT_MAX_L && !fp32;
    double *A = lanes ? (double *)calloc((size_t)(L * L * LANES), sizeof(double)) : NULL;
    if (!buf || (lanes && !A)) {
#pragma omp atomic write
      failed = 1;
    }
#pragma omp for schedule(static)
    for (int64_t p = 0; p < parts; ++p) {
      double *G = part_buf + p * L * L;
      for (int64_t q = 0; q < L * L; ++q) G[q] = 0.0;
      if (!buf || (lanes && !A)) continue;
      sink_t s = {G, A, L};
      int64_t b0 = nblocks * p / parts, b1 = nblocks * (p + 1) / parts;
      if (fp32) {
        gram32_part(t, rows, L, d, pairs, bs, b0, b1, nblocks, (float *)buf, kern32, G);
        continue;
      }
      /* prefetch up to the part's end, and only short blocks */
      const int64_t pf_end = bs > PF_MAX_BS ? 0 : b1 * bs < d ? b1 * bs : d;
      for (int64_t b = b0; b < b1; ++b) {
        int64_t k0 = b * bs, len = d - k0 < bs ? d - k0 : bs;
        load_block(t, rows, L, k0, len, bs, buf, pf_end);
        next_block_t nb = next_block(rows, t, d, bs, b, nblocks);
        gram_block(buf, bs, L, mode == RAGG_DISTANCES_DIRECT, pairs, wide, s, &nb);
      }
      if (A) reduce_pairs(A, L, G);
    }
    free(buf);
    free(A);
  }
  /* Parts summed in order: the result does not depend on the thread count. */
  for (int64_t i = 0; i < L; ++i)
    for (int64_t j = 0; j < L; ++j) {
      double s = 0.0;
      if (j >= i)
        for (int64_t p = 0; p < parts; ++p) s += part_buf[p * L * L + i * L + j];
      R[i * L + j] = s;
    }
  return failed;
}

void ragg_distances_finalize(const double *R, int64_t L, ragg_distances_t mode, double *D,
                             double *N) {
  for (int64_t i = 0; i < L; ++i) N[i] = R[i * L + i];
  for (int64_t i = 0; i < L; ++i) {
    D[i * L + i] = 0.0;
    for (int64_t j = i + 1; j < L; ++j) {
      double v;
      if (ragg_is_excluded_norm(N[i]) || ragg_is_excluded_norm(N[j]))
        v = INFINITY;
      else if (mode == RAGG_DISTANCES_DIRECT)
        v = R[i * L + j];
      else {
        v = N[i] + N[j] - 2.0 * R[i * L + j];
        if (!(v > 0.0)) v = 0.0;
      }
      D[i * L + j] = D[j * L + i] = v;
    }
  }
}

int ragg_cpu_distances(ragg_dtype_t t, const void *const *rows, int64_t L, int64_t d,
                       ragg_distances_t mode, int pairs, double *D, double *N,
                       double *part_buf) {
  /* R may share D's storage: finalize reads the upper triangle in order. */
  if (ragg_cpu_gram_raw(t, rows, L, d, mode, pairs, D, part_buf)) return 1;
  ragg_distances_finalize(D, L, mode, D, N);
  return 0;
}

/* acc[k] += a * row[k] for one block. */
RAGG_CLONES static void axpy_block(double *acc, double a, ragg_dtype_t t, const void *row,
                                   int64_t k0, int64_t len) {
  if (t == RAGG_F32) {
    const float *r = (const float *)row + k0;
    for (int64_t k = 0; k < len; ++k) acc[k] += a * (double)r[k];
  } else {
    for (int64_t k = 0; k < len; ++k) acc[k] += a * (double)ragg_load(t, row, k0 + k);
  }
}

RAGG_CLONES static void store_block(ragg_dtype_t t, void *out, int64_t k0, int64_t len,
                                    const double *acc) {
  if (t == RAGG_F32) {
    float *o = (float *)out + k0;
    for (int64_t k = 0; k < len; ++k) o[k] = (float)acc[k];
  } else {
    for (int64_t k = 0; k < len; ++k) ragg_store(t, out, k0 + k, acc[k]);
  }
}

/* acc[k] = (((acc[k] + a0 r0[k]) + a1 r1[k]) + a2 r2[k]) + a3 r3[k]: the same
 * order as four single-row passes, with four rows' loads in flight and one
 * trip of acc through the cache instead of four. */
RAGG_CLONES static void axpy4_block(double *acc, const double *a, const float *const *r,
                                    int64_t k0, int64_t len) {
  const float *r0 = r[0] + k0, *r1 = r[1] + k0, *r2 = r[2] + k0, *r3 = r[3] + k0;
  double a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3];
  for (int64_t k = 0; k < len; ++k)
    acc[k] = (((acc[k] + a0 * (double)r0[k]) + a1 * (double)r1[k]) + a2 * (double)r2[k]) +
             a3 * (double)r3[k];
}

/* acc[0..len) = sum over j of alpha_j row_j[k0..k0+len), rows in index order,
 * zero weights skipped (a NaN row never leaks through 0 * NaN). */
static void weighted_sum_block(ragg_dtype_t t, const void *const *rows, const double *alpha,
                               int64_t L, int64_t k0, int64_t len, double *acc) {
  double a4[4];
  const float *r4[4];
  int64_t q = 0;
  for (int64_t k = 0; k < len; ++k) acc[k] = 0.0;
  for (int64_t j = 0; j < L; ++j) {
    if (alpha[j] == 0.0) continue;
    if (t != RAGG_F32) {
      axpy_block(acc, alpha[j], t, rows[j], k0, len);
      continue;
    }
    a4[q] = alpha[j];
    r4[q++] = (const float *)rows[j];
    if (q == 4) {
      axpy4_block(acc, a4, r4, k0, len);
      q = 0;
    }
  }
  for (int64_t i = 0; i < q; ++i) axpy_block(acc, a4[i], t, r4[i], k0, len);
}

void ragg_cpu_combine(ragg_dtype_t t, const void *const *rows, const double *alpha, int64_t L,
                      int64_t d, ragg_dtype_t out_t, void *out) {
  int64_t nblocks = (d + BLOCK - 1) / BLOCK;
#pragma omp parallel for schedule(static) if (L * d > RAGG_PARALLEL_MIN)
  for (int64_t b = 0; b < nblocks; ++b) {
    double acc[BLOCK];
    int64_t k0 = b * BLOCK, len = d - k0 < BLOCK ? d - k0 : BLOCK;
    weighted_sum_block(t, rows, alpha, L, k0, len, acc);
    store_block(out_t, out, k0, len, acc);
  }
}

/* y[0..len) = one mixed row over a block: the float products of its nonzero
 * weights added in input order to a float sum from +0 (a gradient's own
 * precision; half the work of double sums, and the mixing inside the
 * coordinate pass does the same arithmetic). */
RAGG_CLONES static void mix_block(ragg_dtype_t t, const void *const *rows, const double *w,
                                  int64_t n, int64_t k0, int64_t len, float *y) {
  for (int64_t k = 0; k < len; ++k) y[k] = 0.0f;
  for (int64_t j = 0; j < n; ++j) {
    if (w[j] == 0.0) continue;
    const float a = (float)w[j];
    if (t == RAGG_F32) {
      const float *r = (const float *)rows[j] + k0;
      for (int64_t k = 0; k < len; ++k) y[k] = y[k] + a * r[k];
    } else {
      for (int64_t k = 0; k < len; ++k) y[k] = y[k] + a * ragg_load(t, rows[j], k0 + k);
    }
  }
}

void ragg_cpu_transform_rows(ragg_dtype_t t, const void *const *rows, int64_t n, const double *W,
                             int64_t ldw, int64_t nm, int64_t d, float *Y) {
  int64_t nblocks = (d + BLOCK - 1) / BLOCK;
#pragma omp parallel for schedule(static) if (n * d > RAGG_PARALLEL_MIN)
  for (int64_t b = 0; b < nblocks; ++b) {
    int64_t k0 = b * BLOCK, len = d - k0 < BLOCK ? d - k0 : BLOCK;
    for (int64_t p = 0; p < nm; ++p) mix_block(t, rows, W + p * ldw, n, k0, len, Y + p * d + k0);
  }
}

void ragg_cpu_count_nonfinite(ragg_dtype_t t, const void *const *rows, int64_t n, int64_t d,
                              int64_t *counts) {
#pragma omp parallel for schedule(dynamic, 1) if (n * d > RAGG_PARALLEL_MIN)
  for (int64_t i = 0; i < n; ++i) {
    int64_t c = 0;
    for (int64_t k = 0; k < d; ++k) {
      float v = ragg_load(t, rows[i], k);
      c += !isfinite(v);
    }
    counts[i] = c;
  }
}
