/* The fp32-run Gram block with AVX2 and FMA: 8 lanes a vector (the 16 lanes
 * as two halves), 2 x 4 tiles in the 16 vector registers. Built with -mavx2
 * -mfma, run only where the CPU reports both. */
#include <immintrin.h>
#define V __m256
#define VW 8
#define VZERO _mm256_setzero_ps()
#define VLOAD(p) _mm256_loadu_ps(p)
#define VFMA(c, x, y) _mm256_fmadd_ps((x), (y), (c))
#define VFLUSH(a, c)                                                         \
  do {                                                                       \
    __m256d lo_ = _mm256_cvtps_pd(_mm256_castps256_ps128(c));                \
    __m256d hi_ = _mm256_cvtps_pd(_mm256_extractf128_ps((c), 1));            \
    _mm256_storeu_pd((a), _mm256_add_pd(_mm256_loadu_pd(a), lo_));           \
    _mm256_storeu_pd((a) + 4, _mm256_add_pd(_mm256_loadu_pd((a) + 4), hi_)); \
  } while (0)
#define TR 2
#define TC 4
#define GRAM32_FN ragg_gram32_tile_avx2
#define PAIR32_FN ragg_gram32_pair_avx2
#include "gram32_impl.h"
