/* Picks the widest vector path the running CPU supports; where none exists
 * (x86-64 without AVX2, other architectures) the general path runs. */
#include "coordinate_simd.h"

#define SIMD_DECL(name)                                                                  \
  int name(ragg_dtype_t, const void *const *, int64_t, int64_t, const ragg_coord_op_t *, \
           ragg_dtype_t, void *)

#if defined(__x86_64__) && defined(__GNUC__)
SIMD_DECL(ragg_coord_simd_avx2);
SIMD_DECL(ragg_coord_simd_avx512);
#elif defined(__aarch64__)
SIMD_DECL(ragg_coord_simd_neon);
#endif

int ragg_coord_simd(ragg_dtype_t in_t, const void *const *rows, int64_t n, int64_t d,
                    const ragg_coord_op_t *op, ragg_dtype_t out_t, void *out) {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f"))
    return ragg_coord_simd_avx512(in_t, rows, n, d, op, out_t, out);
  if (__builtin_cpu_supports("avx2")) return ragg_coord_simd_avx2(in_t, rows, n, d, op, out_t, out);
#elif defined(__aarch64__)
  return ragg_coord_simd_neon(in_t, rows, n, d, op, out_t, out);
#endif
  (void)in_t;
  (void)rows;
  (void)n;
  (void)d;
  (void)op;
  (void)out_t;
  (void)out;
  return 0;
}
