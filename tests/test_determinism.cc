// Same inputs, same bits: on repeated calls, whatever the thread count (the
// Gram pass splits d into parts that depend on n and d only, and every sum
// runs in an order fixed by the code), and whatever the vector ISA
// (RAGG_CPU_SIMD=0 runs the general coordinate path, RAGG_CPU_SIMD=avx2 the
// AVX2 networks and the 256-bit Gram kernels; on an AVX-512 machine the
// default runs the 512-bit ones).
#include <gtest/gtest.h>
#include <omp.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "robustagg.h"
#include "simd_level.hh"

namespace {

struct Case {
  const char *name;
  ragg_rule_t rule;
  int64_t f;
  int pre;  // 0 none, 1 NNM, 2 ARC, 3 bucketing
  ragg_distances_t distances = RAGG_DISTANCES_GRAM;
};

std::vector<uint8_t> run(const Case &c, const std::vector<float> &x, int64_t n, int64_t d,
                         int threads) {
  omp_set_num_threads(threads);
  ragg_context_t *ctx = nullptr;
  EXPECT_EQ(ragg_context_create(&ctx, RAGG_BACKEND_CPU, 0), RAGG_SUCCESS);
  ragg_config_t cfg;
  ragg_config_init(&cfg, c.rule, c.f);
  cfg.distances = c.distances;
  if (c.pre == 1) cfg.mix = RAGG_MIX_NNM;
  if (c.pre == 2) cfg.adaptive_clip = 1;
  if (c.pre == 3) cfg.mix = RAGG_MIX_BUCKETING, cfg.bucket_size = 2, cfg.seed = 7;
  std::vector<float> out(d);
  std::vector<double> scores(n), weights(n, -1.0);
  ragg_report_t rep{n, scores.data(), weights.data(), nullptr, nullptr};
  EXPECT_EQ(ragg_aggregate(ctx, &cfg, RAGG_F32, x.data(), n, d, d, out.data(), &rep), RAGG_SUCCESS)
      << ragg_last_error(ctx);
  ragg_context_destroy(ctx);
  std::vector<uint8_t> bits(sizeof(float) * d + sizeof(double) * 2 * n);
  std::memcpy(bits.data(), out.data(), sizeof(float) * d);
  std::memcpy(bits.data() + sizeof(float) * d, scores.data(), sizeof(double) * n);
  std::memcpy(bits.data() + sizeof(float) * d + sizeof(double) * n, weights.data(),
              sizeof(double) * n);
  return bits;
}

std::vector<float> inputs(int64_t n, int64_t d) {
  std::mt19937_64 rng(20261127 + (uint64_t)n);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> x(n * d);
  for (auto &v : x) v = g(rng);
  for (int64_t k = 0; k < d; k += 3) x[2 * d + k] = -1e6f * x[2 * d + k];  // one hostile row
  return x;
}

TEST(Determinism, SameBitsOnRepeatedCallsAndAcrossThreadCounts) {
  const int64_t n = 17, d = 40003;  // n * d above the single-thread threshold; d odd
  const std::vector<float> x = inputs(n, d);
  const Case cases[] = {
      {"median", RAGG_RULE_MEDIAN, 3, 0},
      {"trimmed_mean", RAGG_RULE_TRIMMED_MEAN, 3, 0},
      {"meamed", RAGG_RULE_MEAMED, 3, 0},
      {"krum", RAGG_RULE_KRUM, 3, 0},
      {"multi_krum", RAGG_RULE_MULTI_KRUM, 3, 0},
      {"bulyan", RAGG_RULE_BULYAN, 3, 0},
      {"geomed", RAGG_RULE_GEOMED, 3, 0},
      {"centered_clip", RAGG_RULE_CENTERED_CLIP, 3, 0},
      {"monna", RAGG_RULE_MONNA, 3, 0},
      {"caf", RAGG_RULE_CAF, 3, 0},
      {"smea", RAGG_RULE_SMEA, 1, 0},
      {"mean", RAGG_RULE_MEAN, 0, 0},
      {"krum+nnm", RAGG_RULE_KRUM, 3, 1},
      {"median+arc", RAGG_RULE_MEDIAN, 3, 2},
      {"geomed+bucketing", RAGG_RULE_GEOMED, 2, 3},
      {"krum fp32", RAGG_RULE_KRUM, 3, 0, RAGG_DISTANCES_GRAM_FP32},
      {"centered_clip fp32", RAGG_RULE_CENTERED_CLIP, 3, 0, RAGG_DISTANCES_GRAM_FP32},
      {"mean+arc fp32", RAGG_RULE_MEAN, 3, 2, RAGG_DISTANCES_GRAM_FP32},
  };
  for (const Case &c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<uint8_t> ref = run(c, x, n, d, 1);
    EXPECT_EQ(run(c, x, n, d, 1), ref) << "repeated call, 1 thread";
    EXPECT_EQ(run(c, x, n, d, 2), ref) << "2 threads";
    EXPECT_EQ(run(c, x, n, d, 3), ref) << "3 threads";
    for (const char *level : {"0", "avx2"}) {
      SimdLevel l(level);
      EXPECT_EQ(run(c, x, n, d, 2), ref) << "RAGG_CPU_SIMD=" << level;
    }
  }
}

// The Gram kernels' tile shapes change with n (4 x 4 and 2 x 4 tiles of
// 512-bit vectors, 2 x 2 of 256-bit halves, single pairs for what is left)
// and the block length with n: every shape gives the sums of a pair-by-pair
// loop.
TEST(Determinism, GramKernelsAgreeAcrossVectorWidths) {
  for (int64_t n : {5, 8, 11, 16, 23, 40}) {
    const int64_t d = 30011;
    const std::vector<float> x = inputs(n, d);
    const int64_t f = (n - 3) / 4;
    const Case cases[] = {
        {"krum", RAGG_RULE_KRUM, f, 0},
        {"krum direct", RAGG_RULE_KRUM, f, 0, RAGG_DISTANCES_DIRECT},
        {"krum fp32", RAGG_RULE_KRUM, f, 0, RAGG_DISTANCES_GRAM_FP32},
        {"geomed fp32", RAGG_RULE_GEOMED, f, 0, RAGG_DISTANCES_GRAM_FP32},
        {"geomed", RAGG_RULE_GEOMED, f, 0},
        {"centered_clip", RAGG_RULE_CENTERED_CLIP, f, 0},
        {"caf", RAGG_RULE_CAF, f, 0},
        {"median+nnm", RAGG_RULE_MEDIAN, f, 1},
    };
    for (const Case &c : cases) {
      SCOPED_TRACE(std::string(c.name) + " n=" + std::to_string(n));
      const std::vector<uint8_t> ref = run(c, x, n, d, 2);
      SimdLevel avx2("avx2");
      EXPECT_EQ(run(c, x, n, d, 2), ref) << "RAGG_CPU_SIMD=avx2";
    }
  }
}

// The mean behind norm clipping or ARC reads the norms alone without a
// report, and runs the whole Gram pass when a report asks for its distance
// scores: asking for the report must not change the output (test_gram checks
// the norms themselves bit for bit).
TEST(Determinism, ClippedMeanIsTheSameWithAndWithoutAReport) {
  for (int64_t n : {5, 8, 13, 16, 17, 40}) {
    const int64_t d = 30011;
    const std::vector<float> x = inputs(n, d);
    for (int pre : {0, 1}) {
      SCOPED_TRACE("n=" + std::to_string(n) + (pre ? " ARC" : " clip_norm"));
      ragg_context_t *ctx = nullptr;
      ASSERT_EQ(ragg_context_create(&ctx, RAGG_BACKEND_CPU, 0), RAGG_SUCCESS);
      ragg_config_t cfg;
      ragg_config_init(&cfg, RAGG_RULE_MEAN, 1);
      if (pre)
        cfg.adaptive_clip = 1;
      else
        cfg.clip_norm = 50.0;  // below the honest rows' norms (about sqrt(d)): every row is scaled
      std::vector<float> with(d), without(d);
      std::vector<double> scores(n);
      ragg_report_t rep{n, scores.data(), nullptr, nullptr, nullptr};
      ASSERT_EQ(ragg_aggregate(ctx, &cfg, RAGG_F32, x.data(), n, d, d, with.data(), &rep),
                RAGG_SUCCESS)
          << ragg_last_error(ctx);
      ASSERT_EQ(ragg_aggregate(ctx, &cfg, RAGG_F32, x.data(), n, d, d, without.data(), nullptr),
                RAGG_SUCCESS)
          << ragg_last_error(ctx);
      ragg_context_destroy(ctx);
      EXPECT_EQ(std::memcmp(with.data(), without.data(), sizeof(float) * d), 0);
    }
  }
}

}  // namespace
