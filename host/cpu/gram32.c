/* The fp32-run Gram block in portable C (fmaf: one rounding, as the vector
 * kernels' fused multiply-adds), and the choice among the kernels. */
#include <math.h>

#include "cpu.h"
#include "gram32.h"

typedef struct {
  float v[RAGG_GRAM32_LANES];
} lanes16_t;

static inline lanes16_t lanes_load(const float *p) {
  lanes16_t r;
  for (int l = 0; l < RAGG_GRAM32_LANES; ++l) r.v[l] = p[l];
  return r;
}
static inline lanes16_t lanes_fma(lanes16_t c, lanes16_t x, lanes16_t y) {
  for (int l = 0; l < RAGG_GRAM32_LANES; ++l) c.v[l] = fmaf(x.v[l], y.v[l], c.v[l]);
  return c;
}
#define V lanes16_t
#define VW 16
#define VZERO ((lanes16_t){{0}})
#define VLOAD(p) lanes_load(p)
#define VFMA(c, x, y) lanes_fma((c), (x), (y))
#define VFLUSH(a, c)                                                             \
  do {                                                                           \
    for (int l_ = 0; l_ < RAGG_GRAM32_LANES; ++l_) (a)[l_] += (double)(c).v[l_]; \
  } while (0)
#define TR 4
#define TC 4
#define GRAM32_FN gram32_tile_portable
#define PAIR32_FN gram32_pair_portable
#define DIAG32_FN gram32_diag_portable
static void gram32_tile_portable(const float *buf, int64_t bs, int64_t i, int64_t j, int64_t L,
                                 double *G);
static void gram32_pair_portable(const float *buf, int64_t bs, int64_t i, int64_t j, int64_t L,
                                 double *G);
static void gram32_diag_portable(const float *buf, int64_t bs, int64_t i, int64_t j, int64_t L,
                                 double *G);
#include "gram32_impl.h"

ragg_gram32_kernel_t ragg_gram32_kernel(void) {
#if defined(__x86_64__) && defined(__GNUC__) /* gcc and clang; the kernels are built per file */
  int level = ragg_cpu_simd_env();
  __builtin_cpu_init();
  if (level != RAGG_SIMD_OFF) {
    if (level != RAGG_SIMD_AVX2 && __builtin_cpu_supports("avx512f"))
      return (ragg_gram32_kernel_t){ragg_gram32_tile_avx512, ragg_gram32_pair_avx512,
                                    ragg_gram32_diag_avx512, 4};
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
      return (ragg_gram32_kernel_t){ragg_gram32_tile_avx2, ragg_gram32_pair_avx2, NULL, 2};
  }
#endif
  return (ragg_gram32_kernel_t){gram32_tile_portable, gram32_pair_portable, gram32_diag_portable,
                                4};
}
