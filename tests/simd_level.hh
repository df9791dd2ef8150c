// RAGG_CPU_SIMD for the scope of one object (the CPU backend reads it on
// every call): "0" runs the general coordinate path, "avx2" keeps an AVX-512
// CPU on its 256-bit kernels. Every level must give the same bits.
#ifndef RAGG_TESTS_SIMD_LEVEL_HH
#define RAGG_TESTS_SIMD_LEVEL_HH

#include <cstdlib>

struct SimdLevel {
  explicit SimdLevel(const char *level) { setenv("RAGG_CPU_SIMD", level, 1); }
  ~SimdLevel() { unsetenv("RAGG_CPU_SIMD"); }
  SimdLevel(const SimdLevel &) = delete;
  SimdLevel &operator=(const SimdLevel &) = delete;
};

#endif
