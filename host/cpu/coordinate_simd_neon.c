/* NEON path (aarch64): 4 coordinates per vector. */
#include <arm_neon.h>
#include <stdint.h>
typedef int32_t VEC __attribute__((vector_size(16)));
#define VW 4
#define CX(a, b)                                              \
  do {                                                        \
    VEC lo_ = (VEC)vminq_s32((int32x4_t)(a), (int32x4_t)(b)); \
    (b) = (VEC)vmaxq_s32((int32x4_t)(a), (int32x4_t)(b));     \
    (a) = lo_;                                                \
  } while (0)
#define SIMD_FN ragg_coord_simd_neon
#include "coordinate_simd_impl.h"
