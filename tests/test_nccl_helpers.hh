// Shared helpers of the NCCL-path suites: host data in every dtype, device
// buffers, and the expected P * aggregate of RAGG_REDUCE_SUM.
#pragma once
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "robustagg.h"
extern "C" {
#include "cpu/convert.h"
}

namespace ragg_nccl_test {

inline bool have_device() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return n > 0;
}
#define RAGG_REQUIRE_DEVICE() \
  if (!ragg_nccl_test::have_device()) GTEST_SKIP() << "no CUDA device: the NCCL-path checks need one"

inline size_t esize(ragg_dtype_t dt) { return dt == RAGG_F32 ? 4 : 2; }

// Rank p's row: deterministic values around p-dependent centres.
inline std::vector<uint8_t> make_row(ragg_dtype_t dt, size_t count, int p, uint64_t seed) {
  std::vector<uint8_t> v(count * esize(dt));
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + (uint64_t)p * 0xBF58476D1CE4E5B9ull + 1;
  for (size_t k = 0; k < count; ++k) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    double u = (double)(s >> 11) * (1.0 / 9007199254740992.0);
    ragg_store(dt, v.data(), (int64_t)k, (u - 0.5) * 2.0 + 0.1 * p + std::sin((double)k));
  }
  return v;
}

inline void *to_device(const void *h, size_t bytes) {
  void *d = nullptr;
  if (cudaMalloc(&d, bytes ? bytes : 1) != cudaSuccess) return nullptr;
  /* No host data: a poisoned buffer (a copy from NULL would leave a CUDA
   * error pending that the next launch check reports). */
  if (bytes && h) cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice);
  if (bytes && !h) cudaMemset(d, 0xFF, bytes);
  return d;
}
inline std::vector<uint8_t> to_host(const void *d, size_t bytes) {
  std::vector<uint8_t> h(bytes);
  if (bytes) cudaMemcpy(h.data(), d, bytes, cudaMemcpyDeviceToHost);
  return h;
}

// RAGG_REDUCE_SUM's expected output: P times the aggregate, rounded once.
inline std::vector<uint8_t> times(ragg_dtype_t dt, const std::vector<uint8_t> &agg, int P) {
  std::vector<uint8_t> out(agg);
  size_t n = agg.size() / esize(dt);
  for (size_t k = 0; k < n; ++k)
    ragg_store(dt, out.data(), (int64_t)k, (double)ragg_load(dt, agg.data(), (int64_t)k) * (double)P);
  return out;
}

inline double max_rel_diff(ragg_dtype_t dt, const std::vector<uint8_t> &a, const std::vector<uint8_t> &b) {
  size_t n = a.size() / esize(dt);
  double m = 0;
  for (size_t k = 0; k < n; ++k) {
    double x = ragg_load(dt, a.data(), (int64_t)k), y = ragg_load(dt, b.data(), (int64_t)k);
    double d = std::fabs(x - y) / (1.0 + std::fabs(y));
    if (!(d <= m)) m = d;  // NaN propagates as a failure
  }
  return m;
}

inline const char *dtype_name(ragg_dtype_t dt) {
  return dt == RAGG_F32 ? "f32" : dt == RAGG_F16 ? "f16" : "bf16";
}

}  // namespace ragg_nccl_test
