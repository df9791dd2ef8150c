/* The fp32-run Gram block with AVX-512F: 16 lanes a vector, 4 x 4 tiles.
 * Built with -mavx512f, run only where the CPU reports it. */
#include <immintrin.h>
#define V __m512
#define VW 16
#define VZERO _mm512_setzero_ps()
#define VLOAD(p) _mm512_loadu_ps(p)
#define VFMA(c, x, y) _mm512_fmadd_ps((x), (y), (c))
#define VFLUSH(a, c)                                                                       \
  do {                                                                                     \
    __m512d lo_ = _mm512_cvtps_pd(_mm512_castps512_ps256(c));                              \
    __m512d hi_ =                                                                          \
        _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(c), 1))); \
    _mm512_storeu_pd((a), _mm512_add_pd(_mm512_loadu_pd(a), lo_));                         \
    _mm512_storeu_pd((a) + 8, _mm512_add_pd(_mm512_loadu_pd((a) + 8), hi_));               \
  } while (0)
#define TR 4
#define TC 4
#define GRAM32_FN ragg_gram32_tile_avx512
#define PAIR32_FN ragg_gram32_pair_avx512
#define DIAG32_FN ragg_gram32_diag_avx512
#include "gram32_impl.h"
