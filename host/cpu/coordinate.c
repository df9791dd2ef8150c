/* The coordinate-wise pass on the CPU: for each coordinate, the n values
 * become order-preserving integer keys, are sorted, and one of the rules of
 * rules/coordinate.h reduces them. The vectorised network path
 * (coordinate_simd.c) handles small n; this file is the general path and the
 * driver. */
#include <stdlib.h>
#include <string.h>

#include "../rules/coordinate.h"
#include "convert.h"
#include "coordinate_simd.h"
#include "cpu.h"

/* Sorts n keys ascending; tmp: n values of scratch. */
static void sort_keys(int32_t *a, int64_t n, uint32_t *tmp) {
  if (n <= 48) {
    for (int64_t i = 1; i < n; ++i) {
      int32_t v = a[i];
      int64_t j = i - 1;
      while (j >= 0 && a[j] > v) {
        a[j + 1] = a[j];
        --j;
      }
      a[j + 1] = v;
    }
    return;
  }
  /* LSD radix sort on the biased keys: linear in n, stable, no recursion. */
  uint32_t *src = (uint32_t *)a;
  for (int64_t i = 0; i < n; ++i) src[i] ^= 0x80000000u;
  uint32_t *x = src, *y = tmp;
  for (int shift = 0; shift < 32; shift += 8) {
    int64_t cnt[257] = {0};
    for (int64_t i = 0; i < n; ++i) ++cnt[((x[i] >> shift) & 0xFFu) + 1];
    for (int b = 0; b < 256; ++b) cnt[b + 1] += cnt[b];
    for (int64_t i = 0; i < n; ++i) y[cnt[(x[i] >> shift) & 0xFFu]++] = x[i];
    uint32_t *s = x;
    x = y;
    y = s;
  }
  /* four passes: the result is back in src */
  for (int64_t i = 0; i < n; ++i) src[i] ^= 0x80000000u;
}

double ragg_coord_reduce(const ragg_coord_op_t *op, const float *v, int64_t n) {
  switch (op->rule) {
    case RAGG_RULE_MEDIAN:
      return ragg_coord_median(v, n);
    case RAGG_RULE_TRIMMED_MEAN:
      return ragg_coord_trimmed(v, n, op->f);
    default:
      return ragg_coord_meamed(v, n, op->keep);
  }
}

enum { CBLOCK = 256 };

static void coordinate_generic(ragg_dtype_t in_t, const void *const *rows, int64_t n, int64_t d,
                               const ragg_coord_op_t *op, ragg_dtype_t out_t, void *out,
                               int64_t *counts, int *failed) {
  int64_t nblocks = (d + CBLOCK - 1) / CBLOCK;
#pragma omp parallel if (n * d > RAGG_PARALLEL_MIN)
  {
    int32_t *keys =
        (int32_t *)malloc(sizeof(int32_t) * (size_t)n * 3); /* sorted, original, scratch */
    float *vals = (float *)malloc(sizeof(float) * (size_t)n);
    int64_t *mycounts = counts ? (int64_t *)calloc((size_t)n, sizeof(int64_t)) : NULL;
    int ok = keys && vals && (!counts || mycounts);
    if (!ok) {
#pragma omp atomic write
      *failed = 1;
    }
#pragma omp for schedule(static)
    for (int64_t b = 0; b < nblocks; ++b) {
      if (!ok) continue;
      int64_t k1 = (b + 1) * CBLOCK < d ? (b + 1) * CBLOCK : d;
      for (int64_t k = b * CBLOCK; k < k1; ++k) {
        for (int64_t i = 0; i < n; ++i)
          keys[i] = keys[n + i] = ragg_float_key(ragg_load(in_t, rows[i], k));
        sort_keys(keys, n, (uint32_t *)keys + 2 * n);
        for (int64_t i = 0; i < n; ++i) vals[i] = ragg_key_float(keys[i]);
        ragg_store(out_t, out, k, ragg_coord_reduce(op, vals, n));
        if (mycounts) {
          int32_t lo = keys[op->f], hi = keys[n - 1 - op->f];
          for (int64_t i = 0; i < n; ++i) mycounts[i] += keys[n + i] < lo || keys[n + i] > hi;
        }
      }
    }
    if (mycounts) {
#pragma omp critical
      for (int64_t i = 0; i < n; ++i) counts[i] += mycounts[i];
    }
    free(keys);
    free(vals);
    free(mycounts);
  }
}

ragg_status_t ragg_cpu_coordinate(ragg_dtype_t in_t, const void *const *rows, int64_t n, int64_t d,
                                  const ragg_coord_op_t *op, ragg_dtype_t out_t, void *out,
                                  int64_t *counts) {
  int failed = 0;
  if (counts) memset(counts, 0, sizeof(int64_t) * (size_t)n);
  int done = ragg_coord_simd(in_t, rows, n, d, op, out_t, out, NULL, n, counts);
  if (done) return done > 0 ? RAGG_SUCCESS : RAGG_ERR_OUT_OF_MEMORY;
  coordinate_generic(in_t, rows, n, d, op, out_t, out, counts, &failed);
  return failed ? RAGG_ERR_OUT_OF_MEMORY : RAGG_SUCCESS;
}

int ragg_cpu_mixes_in_pass(const ragg_config_t *cfg, int64_t n, int64_t nm) {
  int64_t sorted = cfg->rule == RAGG_RULE_BULYAN ? nm - 2 * cfg->f : nm;
  return (ragg_rule_is_coordinatewise((int)cfg->rule) || cfg->rule == RAGG_RULE_BULYAN) &&
         ragg_coord_simd_applies(n, sorted);
}

size_t ragg_cpu_mix_terms_bytes(int64_t n, int64_t nm) {
  return (size_t)nm * (size_t)n * (sizeof(float) + sizeof(int32_t));
}

ragg_status_t ragg_cpu_coordinate_mixed(ragg_dtype_t in_t, const void *const *rows, int64_t n,
                                        int64_t d, const double *W, int64_t ldw,
                                        const int64_t *widx, int64_t nm, const ragg_coord_op_t *op,
                                        ragg_dtype_t out_t, void *out, void *terms) {
  ragg_mix_terms_t mt;
  mt.w = (float *)terms;
  mt.idx = (int32_t *)(mt.w + nm * n);
  mt.width = 0;
  for (int64_t p = 0; p < nm; ++p) {
    const double *w = W + (widx ? widx[p] : p) * ldw;
    int64_t c = 0;
    for (int64_t j = 0; j < n; ++j) c += w[j] != 0.0;
    if (c > mt.width) mt.width = c;
  }
  for (int64_t p = 0; p < nm; ++p) {
    const double *w = W + (widx ? widx[p] : p) * ldw;
    int64_t c = 0;
    for (int64_t j = 0; j < n; ++j)
      if (w[j] != 0.0) {
        mt.w[p * mt.width + c] = (float)w[j];
        mt.idx[p * mt.width + c++] = (int32_t)j;
      }
    for (; c < mt.width; ++c) {
      mt.w[p * mt.width + c] = 0.0f;
      mt.idx[p * mt.width + c] = (int32_t)n;
    }
  }
  /* the caller checked ragg_cpu_mixes_in_pass, so the path applies */
  return ragg_coord_simd(in_t, rows, n, d, op, out_t, out, &mt, nm, NULL) > 0
             ? RAGG_SUCCESS
             : RAGG_ERR_OUT_OF_MEMORY;
}
