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
/* 2x - m2 in one rounding, as the generic code's two operations round it:
 * 2x is exact */
#define TWICE_MINUS(x, m2) \
  ((VH)_mm512_fmsub_pd(_mm512_set1_pd(2.0), (__m512d)(x), (__m512d)(m2)))
/* MeaMed's tally of one rank: where d < t, sum += x and count += 1; where
 * d == t, tied += x and ntied += 1 (ordered compares: a NaN is neither).
 * One masked add each, where the generic version masks and then adds. */
#define TALLY(d, t, x, sum, count, tied, ntied)                                       \
  do {                                                                                \
    __mmask8 lt_ = _mm512_cmp_pd_mask((__m512d)(d), (__m512d)(t), _CMP_LT_OQ);       \
    __mmask8 eq_ = _mm512_cmp_pd_mask((__m512d)(d), (__m512d)(t), _CMP_EQ_OQ);       \
    const __m512d one_ = _mm512_set1_pd(1.0);                                         \
    (sum) = (VH)_mm512_mask_add_pd((__m512d)(sum), lt_, (__m512d)(sum), (__m512d)(x)); \
    (count) = (VH)_mm512_mask_add_pd((__m512d)(count), lt_, (__m512d)(count), one_);  \
    (tied) = (VH)_mm512_mask_add_pd((__m512d)(tied), eq_, (__m512d)(tied), (__m512d)(x)); \
    (ntied) = (VH)_mm512_mask_add_pd((__m512d)(ntied), eq_, (__m512d)(ntied), one_);  \
  } while (0)
#define ANY_LANE(c) (_mm512_test_epi64_mask((__m512i)(c), (__m512i)(c)) != 0)
#define VMAX(a, b) ((VH)_mm512_max_pd((__m512d)(a), (__m512d)(b)))
#define VMIN(a, b) ((VH)_mm512_min_pd((__m512d)(a), (__m512d)(b)))
#define SIMD_FN ragg_coord_simd_avx512
#include "coordinate_simd_impl.h"
