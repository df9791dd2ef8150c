/* AVX-512 path: 16 coordinates per vector. Built with -mavx512f, run only
 * where the CPU reports AVX-512F. */
#include <immintrin.h>
#include <stdint.h>
typedef int32_t VEC __attribute__((vector_size(64)));
#define VW 16
#define CX(a, b)                                                 \
  do {                                                           \
    VEC lo_ = (VEC)_mm512_min_epi32((__m512i)(a), (__m512i)(b)); \
    (b) = (VEC)_mm512_max_epi32((__m512i)(a), (__m512i)(b));     \
    (a) = lo_;                                                   \
  } while (0)
/* f's low and high halves as doubles, one conversion each (the generic
 * vector code converts in 128-bit pieces) */
#define SPLIT_TO_DOUBLE(f, lo, hi)                                               \
  do {                                                                           \
    (lo) = (VH)_mm512_cvtps_pd(_mm512_castps512_ps256((__m512)(f)));             \
    (hi) = (VH)_mm512_cvtps_pd((__m256)_mm512_extractf64x4_pd((__m512d)(f), 1)); \
  } while (0)
#define SIMD_FN ragg_coord_simd_avx512
#include "coordinate_simd_impl.h"
