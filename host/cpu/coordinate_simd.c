/* Picks the widest vector path the running CPU supports; where none exists
 * (x86-64 without AVX2, other architectures), or RAGG_CPU_SIMD=0 is set in
 * the environment, the general path runs; RAGG_CPU_SIMD=avx2 stops at AVX2.
 * All give the same bits. */
#include <stdlib.h>
#include <string.h>

#include "coordinate_simd.h"

#define SIMD_DECL(name)                                                                  \
  int name(ragg_dtype_t, const void *const *, int64_t, int64_t, const ragg_coord_op_t *, \
           ragg_dtype_t, void *, const ragg_mix_terms_t *, int64_t, int64_t *)

#if defined(__x86_64__) && defined(__GNUC__)
SIMD_DECL(ragg_coord_simd_avx2);
SIMD_DECL(ragg_coord_simd_avx512);
#elif defined(__aarch64__)
SIMD_DECL(ragg_coord_simd_neon);
#endif

typedef int (*simd_fn)(ragg_dtype_t, const void *const *, int64_t, int64_t, const ragg_coord_op_t *,
                       ragg_dtype_t, void *, const ragg_mix_terms_t *, int64_t, int64_t *);

int ragg_cpu_simd_env(void) {
  const char *env = getenv("RAGG_CPU_SIMD");
  if (env && strcmp(env, "0") == 0) return RAGG_SIMD_OFF;
  if (env && strcmp(env, "avx2") == 0) return RAGG_SIMD_AVX2;
  return RAGG_SIMD_WIDEST;
}

static simd_fn pick(void) {
  int level = ragg_cpu_simd_env();
  if (level == RAGG_SIMD_OFF) return NULL;
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && level != RAGG_SIMD_AVX2) return ragg_coord_simd_avx512;
  if (__builtin_cpu_supports("avx2")) return ragg_coord_simd_avx2;
  return NULL;
#elif defined(__aarch64__)
  return ragg_coord_simd_neon;
#else
  return NULL;
#endif
}

static int counts_fit(int64_t n, int64_t nm) {
  return n >= 2 && n <= RAGG_COORD_SIMD_NMAX && nm >= 2 && nm <= RAGG_COORD_SIMD_NMAX;
}

int ragg_coord_simd_applies(int64_t n, int64_t nm) {
  return counts_fit(n, nm) && pick();
}

int ragg_coord_simd(ragg_dtype_t in_t, const void *const *rows, int64_t n, int64_t d,
                    const ragg_coord_op_t *op, ragg_dtype_t out_t, void *out,
                    const ragg_mix_terms_t *mt, int64_t nm, int64_t *counts) {
  if (!counts_fit(n, nm) || (counts && mt)) return 0;
  simd_fn fn = pick();
  if (!fn) return 0;
  return fn(in_t, rows, n, d, op, out_t, out, mt, nm, counts);
}
