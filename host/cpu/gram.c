/* The CPU's passes for the Gram-space family: distances (one pass), the
 * combination (one pass), and the small helpers around them. */
#include <math.h>
#include <stdlib.h>

#include "convert.h"
#include "cpu.h"

enum { BLOCK = 512, LANES = 8 };

int64_t ragg_cpu_gram_parts(int64_t L, int64_t d) {
  int64_t parts = (d + 8 * BLOCK - 1) / (8 * BLOCK);
  int64_t cap = (int64_t)((64u << 20) / (8u * (uint64_t)L * (uint64_t)L));
  if (parts > 64) parts = 64;
  if (parts > cap) parts = cap;
  return parts < 1 ? 1 : parts;
}

/* Widens BLOCK values of each row to double. */
static void load_block(ragg_dtype_t t, const void *const *rows, int64_t L, int64_t k0, int64_t len,
                       double *buf) {
  for (int64_t i = 0; i < L; ++i) {
    double *b = buf + i * BLOCK;
    if (t == RAGG_F32) {
      const float *r = (const float *)rows[i] + k0;
      for (int64_t k = 0; k < len; ++k) b[k] = (double)r[k];
    } else {
      for (int64_t k = 0; k < len; ++k) b[k] = (double)ragg_load(t, rows[i], k0 + k);
    }
    for (int64_t k = len; k < BLOCK; ++k) b[k] = 0.0;
  }
}

/* Sum over the block of a_k * b_k (direct: (a_k - b_k)^2) in LANES fixed
 * accumulators, reduced in a fixed order: the same bits whatever the ISA. */
static double block_dot(const double *a, const double *b) {
  double acc[LANES] = {0};
  for (int64_t k = 0; k < BLOCK; k += LANES)
    for (int l = 0; l < LANES; ++l) acc[l] += a[k + l] * b[k + l];
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}
static double block_sqdiff(const double *a, const double *b) {
  double acc[LANES] = {0};
  for (int64_t k = 0; k < BLOCK; k += LANES)
    for (int l = 0; l < LANES; ++l) {
      double t = a[k + l] - b[k + l];
      acc[l] += t * t;
    }
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

void ragg_cpu_gram_raw(ragg_dtype_t t, const void *const *rows, int64_t L, int64_t d,
                       ragg_distances_t mode, double *R, double *part_buf) {
  int64_t parts = ragg_cpu_gram_parts(L, d), nblocks = (d + BLOCK - 1) / BLOCK;
#pragma omp parallel
  {
    double *buf = (double *)malloc(sizeof(double) * (size_t)(L * BLOCK));
#pragma omp for schedule(static)
    for (int64_t p = 0; p < parts; ++p) {
      double *G = part_buf + p * L * L;
      for (int64_t q = 0; q < L * L; ++q) G[q] = 0.0;
      if (!buf) continue;
      int64_t b0 = nblocks * p / parts, b1 = nblocks * (p + 1) / parts;
      for (int64_t b = b0; b < b1; ++b) {
        int64_t k0 = b * BLOCK, len = d - k0 < BLOCK ? d - k0 : BLOCK;
        load_block(t, rows, L, k0, len, buf);
        for (int64_t i = 0; i < L; ++i)
          for (int64_t j = i; j < L; ++j) {
            double v = (mode == RAGG_DISTANCES_DIRECT && j != i)
                           ? block_sqdiff(buf + i * BLOCK, buf + j * BLOCK)
                           : block_dot(buf + i * BLOCK, buf + j * BLOCK);
            G[i * L + j] += v;
          }
      }
    }
    free(buf);
  }
  /* Parts summed in order: the result does not depend on the thread count. */
  for (int64_t i = 0; i < L; ++i)
    for (int64_t j = 0; j < L; ++j) {
      double s = 0.0;
      if (j >= i)
        for (int64_t p = 0; p < parts; ++p) s += part_buf[p * L * L + i * L + j];
      R[i * L + j] = s;
    }
}

void ragg_distances_finalize(const double *R, int64_t L, ragg_distances_t mode, double *D, double *N) {
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

void ragg_cpu_distances(ragg_dtype_t t, const void *const *rows, int64_t L, int64_t d,
                        ragg_distances_t mode, double *D, double *N, double *part_buf) {
  /* R may share D's storage: finalize reads the upper triangle in order. */
  ragg_cpu_gram_raw(t, rows, L, d, mode, D, part_buf);
  ragg_distances_finalize(D, L, mode, D, N);
}

void ragg_cpu_combine(ragg_dtype_t t, const void *const *rows, const double *alpha, int64_t L,
                      int64_t d, void *out) {
  int64_t nblocks = (d + BLOCK - 1) / BLOCK;
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < nblocks; ++b) {
    double acc[BLOCK];
    int64_t k0 = b * BLOCK, len = d - k0 < BLOCK ? d - k0 : BLOCK;
    for (int64_t k = 0; k < len; ++k) acc[k] = 0.0;
    for (int64_t j = 0; j < L; ++j) {
      double a = alpha[j];
      if (a == 0.0) continue; /* a NaN row never leaks through 0 * NaN */
      if (t == RAGG_F32) {
        const float *r = (const float *)rows[j] + k0;
        for (int64_t k = 0; k < len; ++k) acc[k] += a * (double)r[k];
      } else {
        for (int64_t k = 0; k < len; ++k) acc[k] += a * (double)ragg_load(t, rows[j], k0 + k);
      }
    }
    for (int64_t k = 0; k < len; ++k) ragg_store(t, out, k0 + k, acc[k]);
  }
}

void ragg_cpu_transform_rows(ragg_dtype_t t, const void *const *rows, int64_t n, const double *W,
                             int64_t ldw, int64_t nm, int64_t d, float *Y) {
  int64_t nblocks = (d + BLOCK - 1) / BLOCK;
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < nblocks; ++b) {
    double acc[BLOCK];
    int64_t k0 = b * BLOCK, len = d - k0 < BLOCK ? d - k0 : BLOCK;
    for (int64_t p = 0; p < nm; ++p) {
      for (int64_t k = 0; k < len; ++k) acc[k] = 0.0;
      for (int64_t j = 0; j < n; ++j) {
        double a = W[p * ldw + j];
        if (a == 0.0) continue;
        for (int64_t k = 0; k < len; ++k) acc[k] += a * (double)ragg_load(t, rows[j], k0 + k);
      }
      for (int64_t k = 0; k < len; ++k) Y[p * d + k0 + k] = (float)acc[k];
    }
  }
}

void ragg_cpu_count_nonfinite(ragg_dtype_t t, const void *const *rows, int64_t n, int64_t d,
                              int64_t *counts) {
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t i = 0; i < n; ++i) {
    int64_t c = 0;
    for (int64_t k = 0; k < d; ++k) {
      float v = ragg_load(t, rows[i], k);
      c += !isfinite(v);
    }
    counts[i] = c;
  }
}
