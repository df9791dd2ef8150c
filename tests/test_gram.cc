// The CPU Gram pass on its own (librobustagg does not export it, so the
// test links the library's objects): its raw sums against a definition-level
// sum in long double, and the promises the rest of the library builds on:
// a pair's sum has the same bits whichever kernel forms it (all pairs, the
// diagonal alone for the norms-only pass, the diagonal and the last column
// for distances to an anchor), whatever the vector width and thread count.
// The sizes straddle the pass's shapes: 4 x 4 tiles and leftovers, short
// blocks with kept lane sums (n <= 16) and long blocks (n >= 17), a row of
// one partial block, and rows of many parts. RAGG_DISTANCES_GRAM_FP32 (fp32
// multiply-adds in runs, added in double) is held to its own bound and to
// the same bits on every kernel (AVX-512, AVX2, portable C) and thread count.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

extern "C" {
#include "cpu/cpu.h"
#include "cpu/gram32.h"
}

#include "simd_level.hh"

namespace {

struct Rows {
  std::vector<float> f32;
  std::vector<uint16_t> bf16;  // the upper halves of f32: exact bf16 values
  int64_t n, d;
  const void *row(ragg_dtype_t t, int64_t i) const {
    return t == RAGG_F32 ? (const void *)(f32.data() + i * d) : (const void *)(bf16.data() + i * d);
  }
  double value(ragg_dtype_t t, int64_t i, int64_t k) const {
    if (t == RAGG_F32) return f32[i * d + k];
    uint32_t u = (uint32_t)bf16[i * d + k] << 16;
    float v;
    std::memcpy(&v, &u, sizeof v);
    return v;
  }
};

Rows make_rows(int64_t n, int64_t d, uint64_t seed) {
  Rows x{std::vector<float>(n * d), std::vector<uint16_t>(n * d), n, d};
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  for (int64_t i = 0; i < n * d; ++i) {
    float v = g(rng) * (i / d == 1 ? 1e4f : 1.0f);  // one row far larger than the rest
    x.f32[i] = v;
    uint32_t u;
    std::memcpy(&u, &v, sizeof u);
    x.bf16[i] = (uint16_t)(u >> 16);
  }
  return x;
}

std::vector<double> gram(const Rows &x, ragg_dtype_t t, ragg_distances_t mode, int pairs,
                         int threads) {
  omp_set_num_threads(threads);
  std::vector<const void *> rows(x.n);
  for (int64_t i = 0; i < x.n; ++i) rows[i] = x.row(t, i);
  std::vector<double> R(x.n * x.n, -1.0),
      parts((size_t)(ragg_cpu_gram_parts(x.n, x.d) * x.n * x.n));
  EXPECT_EQ(ragg_cpu_gram_raw(t, rows.data(), x.n, x.d, mode, pairs, R.data(), parts.data()), 0);
  return R;
}

bool same_bits(double a, double b) {
  return std::memcmp(&a, &b, sizeof a) == 0;
}
bool same_bits(const std::vector<double> &a, const std::vector<double> &b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), sizeof(double) * a.size()) == 0;
}

// Every shape: n rows of d values, each dtype and distance mode.
template <class Body>
void for_each_shape(uint64_t seed, Body body) {
  for (int64_t n : {1, 2, 5, 8, 13, 16, 17, 23, 40})
    for (int64_t d : {1, 7, 389, 30011})
      for (ragg_dtype_t t : {RAGG_F32, RAGG_BF16})
        for (ragg_distances_t mode : {RAGG_DISTANCES_GRAM, RAGG_DISTANCES_DIRECT}) {
          SCOPED_TRACE("n=" + std::to_string(n) + " d=" + std::to_string(d) +
                       (t == RAGG_F32 ? " f32" : " bf16") + (mode ? " direct" : " gram"));
          body(make_rows(n, d, seed + (uint64_t)(n * 7 + d)), t, mode);
        }
}

TEST(GramPass, RawSumsMatchTheDefinition) {
  for_each_shape(1000, [](const Rows &x, ragg_dtype_t t, ragg_distances_t mode) {
    const int64_t n = x.n, d = x.d;
    const std::vector<double> R = gram(x, t, mode, RAGG_PAIRS_ALL, 2);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) {
        if (j < i) {  // the lower triangle is not formed
          EXPECT_EQ(R[i * n + j], 0.0);
          continue;
        }
        // direct mode sums squared differences off the diagonal, products on it
        long double s = 0.0L, mag = 0.0L;
        for (int64_t k = 0; k < d; ++k) {
          const long double a = x.value(t, i, k), b = x.value(t, j, k);
          const long double term =
              (mode == RAGG_DISTANCES_DIRECT && i != j) ? (a - b) * (a - b) : a * b;
          s += term;
          mag += std::fabs(term);
        }
        // double sums of d terms: within d ulps of the magnitude
        const double tol = 4.0 * (double)d * 1.2e-16 * (double)mag + 1e-300;
        EXPECT_NEAR(R[i * n + j], (double)s, tol) << "pair " << i << "," << j;
      }
  });
}

TEST(GramPass, EachPairHasTheSameBitsWhicheverKernelFormsIt) {
  for_each_shape(2000, [](const Rows &x, ragg_dtype_t t, ragg_distances_t mode) {
    const int64_t n = x.n;
    const std::vector<double> all = gram(x, t, mode, RAGG_PAIRS_ALL, 2),
                              diag = gram(x, t, mode, RAGG_PAIRS_DIAG, 2),
                              last = gram(x, t, mode, RAGG_PAIRS_LAST, 2);
    for (int64_t i = 0; i < n; ++i) {
      EXPECT_TRUE(same_bits(diag[i * n + i], all[i * n + i])) << "norm " << i << ", diagonal";
      EXPECT_TRUE(same_bits(last[i * n + i], all[i * n + i])) << "norm " << i << ", last";
      EXPECT_TRUE(same_bits(last[i * n + n - 1], all[i * n + n - 1])) << "pair " << i << ",last";
    }
    for (int threads : {1, 3})
      EXPECT_TRUE(same_bits(gram(x, t, mode, RAGG_PAIRS_ALL, threads), all))
          << threads << " threads";
    SimdLevel avx2("avx2");
    EXPECT_TRUE(same_bits(gram(x, t, mode, RAGG_PAIRS_ALL, 2), all)) << "RAGG_CPU_SIMD=avx2";
    EXPECT_TRUE(same_bits(gram(x, t, mode, RAGG_PAIRS_DIAG, 2), diag)) << "RAGG_CPU_SIMD=avx2";
    EXPECT_TRUE(same_bits(gram(x, t, mode, RAGG_PAIRS_LAST, 2), last)) << "RAGG_CPU_SIMD=avx2";
  });
}

// |x_i . x_j|'s terms, in long double: the definition's sum and magnitude.
struct DefSum {
  long double s = 0.0L, mag = 0.0L;
};
DefSum dot(const Rows &x, ragg_dtype_t t, int64_t i, int64_t j) {
  DefSum r;
  for (int64_t k = 0; k < x.d; ++k) {
    const long double term = (long double)x.value(t, i, k) * x.value(t, j, k);
    r.s += term;
    r.mag += std::fabs(term);
  }
  return r;
}

TEST(GramPassFp32, RawSumsWithinTheRunBound) {
  for (int64_t n : {1, 3, 4, 5, 9, 16, 17, 23, 40})
    for (int64_t d : {1, 7, 16, 389, 30011})
      for (ragg_dtype_t t : {RAGG_F32, RAGG_BF16}) {
        SCOPED_TRACE("n=" + std::to_string(n) + " d=" + std::to_string(d) +
                     (t == RAGG_F32 ? " f32" : " bf16"));
        const Rows x = make_rows(n, d, 3000 + (uint64_t)(n * 7 + d));
        const std::vector<double> R = gram(x, t, RAGG_DISTANCES_GRAM_FP32, RAGG_PAIRS_ALL, 2);
        double worst = 0.0;  // the largest error seen, in units of the run bound
        for (int64_t i = 0; i < n; ++i)
          for (int64_t j = 0; j < n; ++j) {
            if (j < i) {
              EXPECT_EQ(R[i * n + j], 0.0);
              continue;
            }
            const DefSum e = dot(x, t, i, j);
            // a run of RUN fused multiply-adds in fp32: at most (RUN + 1) 2^-24
            // of its terms' magnitudes; the double sums of the runs: d ulps
            const double bound = (RAGG_GRAM32_RUN + 1) * std::ldexp(1.0, -24) * (double)e.mag +
                                 4.0 * (double)d * 1.2e-16 * (double)e.mag + 1e-300;
            const double err = std::fabs(R[i * n + j] - (double)e.s);
            EXPECT_LE(err, bound) << "pair " << i << "," << j;
            if (err / bound > worst) worst = err / bound;
          }
        // from 17 rows fp32 arithmetic, not double: a sum of many terms shows
        // fp32's rounding (the double pass, which serves up to 16 rows, stays
        // below 1e-6 of this bound)
        if (t == RAGG_F32 && d >= 389 && n > 16) {
          EXPECT_GT(worst, 1e-5) << worst;
        }
      }
}

TEST(GramPassFp32, SameBitsOnEveryKernelAndThreadCount) {
  for (int64_t n : {1, 2, 5, 8, 13, 17, 23, 40})
    for (int64_t d : {7, 389, 30011})
      for (ragg_dtype_t t : {RAGG_F32, RAGG_BF16}) {
        SCOPED_TRACE("n=" + std::to_string(n) + " d=" + std::to_string(d) +
                     (t == RAGG_F32 ? " f32" : " bf16"));
        const Rows x = make_rows(n, d, 4000 + (uint64_t)(n * 7 + d));
        const std::vector<double> all = gram(x, t, RAGG_DISTANCES_GRAM_FP32, RAGG_PAIRS_ALL, 2);
        for (int threads : {1, 3})
          EXPECT_TRUE(same_bits(gram(x, t, RAGG_DISTANCES_GRAM_FP32, RAGG_PAIRS_ALL, threads), all))
              << threads << " threads";
        for (const char *level : {"avx2", "0"}) {
          SimdLevel s(level);
          EXPECT_TRUE(same_bits(gram(x, t, RAGG_DISTANCES_GRAM_FP32, RAGG_PAIRS_ALL, 2), all))
              << "RAGG_CPU_SIMD=" << level;
        }
        // the norms-only and anchor passes: the full pass's bits, on every kernel
        for (const char *level : {"", "avx2", "0"}) {
          SimdLevel s(level);
          const std::vector<double> diag = gram(x, t, RAGG_DISTANCES_GRAM_FP32, RAGG_PAIRS_DIAG, 2),
                                    last = gram(x, t, RAGG_DISTANCES_GRAM_FP32, RAGG_PAIRS_LAST, 2);
          for (int64_t i = 0; i < n; ++i) {
            EXPECT_TRUE(same_bits(diag[i * n + i], all[i * n + i])) << "norm " << i << " " << level;
            EXPECT_TRUE(same_bits(last[i * n + i], all[i * n + i])) << "norm " << i << " " << level;
            EXPECT_TRUE(same_bits(last[i * n + n - 1], all[i * n + n - 1]))
                << "pair " << i << ",last " << level;
          }
        }
      }
}

}  // namespace
