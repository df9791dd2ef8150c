/* AVX2 path: 8 coordinates per vector. Built with -mavx2, run only where the
 * CPU reports AVX2. */
#include <immintrin.h>
#include <stdint.h>
typedef int32_t VEC __attribute__((vector_size(32)));
#define VW 8
#define CX(a, b)                                                 \
  do {                                                           \
    VEC lo_ = (VEC)_mm256_min_epi32((__m256i)(a), (__m256i)(b)); \
    (b) = (VEC)_mm256_max_epi32((__m256i)(a), (__m256i)(b));     \
    (a) = lo_;                                                   \
  } while (0)
/* f's low and high halves as doubles, one conversion each */
#define SPLIT_TO_DOUBLE(f, lo, hi)                                     \
  do {                                                                 \
    (lo) = (VH)_mm256_cvtps_pd(_mm256_castps256_ps128((__m256)(f)));   \
    (hi) = (VH)_mm256_cvtps_pd(_mm256_extractf128_ps((__m256)(f), 1)); \
  } while (0)
#define ANY_LANE(c) (_mm256_movemask_pd((__m256d)(c)) != 0)
#define VMAX(a, b) ((VH)_mm256_max_pd((__m256d)(a), (__m256d)(b)))
#define VMIN(a, b) ((VH)_mm256_min_pd((__m256d)(a), (__m256d)(b)))
#define SIMD_FN ragg_coord_simd_avx2
#include "coordinate_simd_impl.h"
