// Checks of the test machinery itself: conversions, the NaN-aware order, the
// Jacobi solver and small hand-worked rule values. A wrong oracle would make
// every other suite meaningless.
#include <cfloat>
#include <cmath>
#include <limits>

#include "test_helpers.hh"

using namespace ragg_test;

TEST(Conversions, HalfRoundTripsEveryPattern) {
  for (uint32_t h = 0; h < 0x10000u; ++h) {
    const float f = half_to_float((uint16_t)h);
    const uint16_t back = float_to_half(f);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(half_to_float(back))) << h;
    } else {
      EXPECT_EQ(back, h) << h;
    }
  }
}

TEST(Conversions, Bf16RoundTripsEveryPattern) {
  for (uint32_t h = 0; h < 0x10000u; ++h) {
    const float f = bf16_to_float((uint16_t)h);
    const uint16_t back = float_to_bf16(f);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(bf16_to_float(back))) << h;
      EXPECT_EQ(back & 0x8000u, h & 0x8000u) << "NaN keeps its sign";
    } else {
      EXPECT_EQ(back, h) << h;
    }
  }
}

TEST(Conversions, RoundToNearestEven) {
  EXPECT_EQ(float_to_half(1.0f), 0x3c00);
  EXPECT_EQ(float_to_half(65504.0f), 0x7bff);
  EXPECT_EQ(float_to_half(65519.0f), 0x7bff);
  EXPECT_EQ(float_to_half(65520.0f), 0x7c00);  // tie to even: Inf
  EXPECT_EQ(float_to_half(1.0f + 1.0f / 2048), 0x3c00);      // tie, even stays
  EXPECT_EQ(float_to_half(1.0f + 3.0f / 2048), 0x3c02);      // tie, odd rounds up
  EXPECT_EQ(float_to_half(5.9604644775390625e-08f), 0x0001);  // smallest subnormal
  EXPECT_EQ(float_to_half(2.98023223876953125e-08f), 0x0000);  // tie to even zero
  EXPECT_EQ(float_to_half(8.94069671630859375e-08f), 0x0002);  // 1.5 ulp: to 2
  EXPECT_EQ(float_to_half(-0.0f), 0x8000);
  EXPECT_EQ(float_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(float_to_bf16(bits_float(0x3f808000u)), 0x3f80);  // tie, even stays
  EXPECT_EQ(float_to_bf16(bits_float(0x3f818000u)), 0x3f82);  // tie, odd rounds up
  EXPECT_EQ(float_to_bf16(FLT_MAX), 0x7f80);
  EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(bits_float(0x7f800001u)))));
  EXPECT_TRUE(std::isnan(half_to_float(float_to_half(bits_float(0x7f800001u)))));
}

TEST(OracleOrder, NanIsLargestAndNegativeZeroBelowZero) {
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = INFINITY;
  EXPECT_LT(oracle::order_key(-inf), oracle::order_key(-FLT_MAX));
  EXPECT_LT(oracle::order_key(-1.0), oracle::order_key(-0.0));
  EXPECT_LT(oracle::order_key(-0.0), oracle::order_key(0.0));
  EXPECT_LT(oracle::order_key(FLT_MAX), oracle::order_key(inf));
  EXPECT_LT(oracle::order_key(inf), oracle::order_key(nan));
  EXPECT_EQ(oracle::order_key(-nan), oracle::order_key(nan));
}

TEST(OracleRules, HandWorkedCoordinateValues) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  EXPECT_EQ(oracle::median({3, 1, 2}), 2);
  EXPECT_EQ(oracle::median({4, 1, 2, 3}), 2.5);
  EXPECT_EQ(oracle::median({nan, 1, 2}), 2);
  EXPECT_EQ(oracle::median({-nan, 5, -INFINITY}), 5);
  // 2m = 2 + 3 = 5: distances |2v - 5| = 3,1,1,5 for 1,2,3,5; keep 3 takes
  // 2, 3 and 1.
  EXPECT_EQ(oracle::meamed({1, 2, 3, 5}, 3), 2.0);
  // odd count {0, 1, 2}, 2m = 2: distances 2,0,2; keep 2 = 1 + 1 * mean(0, 2).
  EXPECT_EQ(oracle::meamed({0, 1, 2}, 2), 1.0);
  // even count, 2m = 2+3 = 5: distances 3,1,1,5 for 1,2,3,5; keep 1 -> one slot
  // takes the mean of the tied 2 and 3.
  EXPECT_EQ(oracle::meamed({1, 2, 3, 5}, 1), 2.5);
  EXPECT_EQ(oracle::meamed({1, nan, 2, 3, -nan}, 3), 2);
}

TEST(OracleRules, JacobiDiagonalises) {
  std::vector<oracle::Vec> a = {{4, 1, 0.5}, {1, 3, 0.2}, {0.5, 0.2, 1}};
  oracle::Vec values;
  std::vector<oracle::Vec> vectors;
  oracle::jacobi_eigen(a, values, vectors);
  ASSERT_EQ(values.size(), 3u);
  EXPECT_GE(values[0], values[1]);
  EXPECT_GE(values[1], values[2]);
  for (int r = 0; r < 3; ++r)
    for (int i = 0; i < 3; ++i) {
      double av = 0;
      for (int k = 0; k < 3; ++k) av += a[i][k] * vectors[r][k];
      EXPECT_NEAR(av, values[r] * vectors[r][i], 1e-12);
    }
  EXPECT_NEAR(values[0] + values[1] + values[2], 8.0, 1e-12);
}

TEST(OracleRules, BucketPermutationIsAPermutation) {
  const auto pi = oracle::bucket_permutation(50, 12345);
  std::vector<int> seen(50, 0);
  for (int64_t v : pi) seen[(size_t)v]++;
  for (int c : seen) EXPECT_EQ(c, 1);
  EXPECT_EQ(oracle::bucket_permutation(50, 12345), pi);
  EXPECT_NE(oracle::bucket_permutation(50, 12346), pi);
  // seed 0, n = 2: the first splitmix64 output is 0xE220A8397B1DCDAF, odd, so
  // j = 1 and pi[1] swaps with itself.
  EXPECT_EQ(oracle::bucket_permutation(2, 0), (std::vector<int64_t>{0, 1}));
  // seed 1: the first output 0x910A2DEC89025CC1 is odd as well; the second
  // draw for n = 3 (i = 2) comes first: 0x910A2DEC89025CC1 mod 3.
  const uint64_t first = 0x910A2DEC89025CC1ull;
  const auto p3 = oracle::bucket_permutation(3, 1);
  std::vector<int64_t> expect = {0, 1, 2};
  std::swap(expect[2], expect[(size_t)(first % 3)]);
  EXPECT_EQ(p3[2], expect[2]);
}

TEST(OracleRules, KrumPicksTheCentralRow) {
  ragg_config_t cfg = make_config(RAGG_RULE_KRUM, 1);
  const oracle::Rows x = {{0, 0}, {1, 0}, {0, 1}, {100, 100}, {0.5, 0.5}};
  const oracle::Result r = oracle::aggregate(cfg, x);
  ASSERT_EQ(r.status, RAGG_SUCCESS);
  EXPECT_EQ(r.out, (oracle::Vec{0.5, 0.5}));
  EXPECT_EQ(r.selected, (std::vector<int32_t>{0, 0, 0, 0, 1}));
}
