// Coordinate-wise rules (median, trimmed_mean, meamed) on the CPU backend
// against the definition-level oracle (DESIGN.md section 2; order
// -Inf < finite < +Inf < NaN, -0.0 < +0.0 by bit pattern).
#include "test_helpers.hh"
#include "simd_level.hh"

using namespace ragg_test;

namespace {

class Coordinate : public ::testing::TestWithParam<ragg_rule_t> {
 protected:
  void check(const Shape &s, uint64_t salt, const Filler &fill = gaussian_fill()) {
    CheckOptions o;
    // The median is an input value or (a+b)/2 rounded once: no slack.
    o.exact = GetParam() == RAGG_RULE_MEDIAN;
    check_shape(GetParam(), s, salt * 16 + (uint64_t)GetParam(), fill, Tweak(), o);
  }
};

TEST_P(Coordinate, OddAndEvenNWithFZeroAndAtTheLimit) {
  for (int64_t n : {1, 2, 3, 4, 5, 8, 9, 16, 17, 32, 33})
    for (int64_t f : {(int64_t)0, (n - 1) / 2}) check({n, 37, f}, (uint64_t)(n * 100 + f));
}

TEST_P(Coordinate, DimensionOneAndOddDimensions) {
  check({7, 1, 3}, 1);
  check({8, 1, 2}, 2);
  check({13, 1003, 6}, 3);
  check({6, 17, 1}, 4);
}

TEST_P(Coordinate, LeadingDimensionAndRowPointers) {
  check({9, 37, 4, RAGG_F32, 64}, 5);
  check({10, 33, 3, RAGG_F32, 40}, 6);
  check({9, 37, 4, RAGG_F32, 0, Entry::Pointers}, 7);
  check({12, 1003, 5, RAGG_F32, 0, Entry::Pointers}, 8);
}

TEST_P(Coordinate, HalfAndBfloat16) {
  for (ragg_dtype_t t : {RAGG_F16, RAGG_BF16}) {
    check({11, 100, 5, t}, 9 + (uint64_t)t);
    check({10, 37, 2, t, 48}, 19 + (uint64_t)t);
    check({7, 37, 3, t, 0, Entry::Pointers}, 29 + (uint64_t)t);
  }
}

TEST_P(Coordinate, RepeatedValuesAndRows) {
  check({10, 64, 3}, 40, ties_fill(2));
  check({11, 64, 5}, 41, ties_fill(1));
  check({9, 37, 2, RAGG_F16}, 42, ties_fill(3));
  check({8, 37, 3}, 43, [](Inputs &x, std::mt19937_64 &rng) {
    fill_gaussian(x, rng);
    for (int64_t i = 1; i < x.n; i += 2) x.copy_row(i, i - 1);  // pairs of equal rows
  });
  check({6, 16, 2}, 44, [](Inputs &x, std::mt19937_64 &rng) {
    std::bernoulli_distribution b(0.5);
    for (int64_t i = 0; i < x.n; ++i)
      for (int64_t k = 0; k < x.d; ++k) x.set(i, k, b(rng) ? -0.0 : 0.0);
  });
}

TEST_P(Coordinate, HostileRowsAgreeWithOracle) {
  for (int kind = 0; kind < HOSTILE_KINDS; ++kind)
    for (ragg_dtype_t t : {RAGG_F32, RAGG_F16, RAGG_BF16}) {
      SCOPED_TRACE(hostile_name(kind));
      check({9, 37, 4, t}, 50 + (uint64_t)kind * 3 + (uint64_t)t,
            [kind](Inputs &x, std::mt19937_64 &rng) {
              fill_gaussian(x, rng);
              for (int64_t i : {1, 4, 6, 8}) make_hostile(x, i, kind, 0);
            });
    }
}

TEST_P(Coordinate, ManyInputs) {
  check({1001, 37, 500}, 80);
  check({1024, 40, 300}, 81);
  check({1000, 19, 0, RAGG_BF16}, 82);
  check({257, 1003, 100, RAGG_F16, 0, Entry::Pointers}, 83);
  // above 256 the vector path pads to a multiple of 256 (blocks of 256, then
  // Batcher's merges cut at the bucket) up to 65536 inputs; beyond, the radix
  // sort
  check({2049, 21, 1000}, 84);
  check({4096, 17, 5, RAGG_F16, 0, Entry::Pointers}, 85);
  check({65536, 2, 30000}, 86);
  check({65537, 2, 20000}, 87);
}

INSTANTIATE_TEST_SUITE_P(Rules, Coordinate,
                         ::testing::Values(RAGG_RULE_MEDIAN, RAGG_RULE_TRIMMED_MEAN,
                                           RAGG_RULE_MEAMED),
                         [](const ::testing::TestParamInfo<ragg_rule_t> &i) {
                           return std::string(rule_label(i.param));
                         });

// Hand-worked values through the library: the definitions' corner cases.
std::vector<double> run_f32(ragg_rule_t rule, int64_t f,
                            const std::vector<std::vector<float>> &rows) {
  Context ctx;
  Inputs x(RAGG_F32, (int64_t)rows.size(), (int64_t)rows[0].size());
  for (size_t i = 0; i < rows.size(); ++i)
    for (size_t k = 0; k < rows[0].size(); ++k) x.set((int64_t)i, (int64_t)k, rows[i][k]);
  const ragg_config_t cfg = make_config(rule, f);
  const LibRun r = run_library(ctx.ctx, cfg, x);
  EXPECT_EQ(r.status, RAGG_SUCCESS) << r.error;
  return r.out;
}

TEST(CoordinateDefinitions, MedianOfEvenCountIsTheMeanOfTheMiddlePair) {
  EXPECT_EQ(run_f32(RAGG_RULE_MEDIAN, 0, {{1}, {2}, {4}, {8}})[0], 3.0);
  EXPECT_EQ(run_f32(RAGG_RULE_MEDIAN, 1, {{-1}, {-2}, {-4}, {-8}})[0], -3.0);
}

TEST(CoordinateDefinitions, NanIsTrimmedAsTheLargestValue) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(run_f32(RAGG_RULE_MEDIAN, 1, {{nan}, {1}, {2}})[0], 2.0);
  EXPECT_EQ(run_f32(RAGG_RULE_MEDIAN, 1, {{-nan}, {1}, {2}})[0], 2.0);
  EXPECT_EQ(run_f32(RAGG_RULE_TRIMMED_MEAN, 1, {{-nan}, {1}, {2}, {-INFINITY}})[0], 1.5);
  EXPECT_EQ(run_f32(RAGG_RULE_MEAMED, 1, {{nan}, {1}, {2}})[0], 1.5);
}

// More hostile values than f: a NaN distance counts as +Inf (DESIGN §2), the
// median's own included, so every value ties at the boundary and the result
// is the non-finite mean of all of them, never a made-up finite value.
TEST(CoordinateDefinitions, MeamedAroundANonFiniteMedianIsNotFinite) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  // sorted 1, 2, NaN, NaN: 2m = 2 + NaN
  EXPECT_TRUE(std::isnan(run_f32(RAGG_RULE_MEAMED, 1, {{nan}, {1}, {-nan}, {2}})[0]));
  // sorted 1, Inf, Inf: 2m = +Inf; |2 - Inf| = Inf, |2 Inf - Inf| is NaN
  EXPECT_EQ(run_f32(RAGG_RULE_MEAMED, 1, {{INFINITY}, {1}, {INFINITY}})[0], INFINITY);
}

TEST(CoordinateDefinitions, MeamedBoundaryTiesShareTheSlots) {
  // 2m = 2 + 3 = 5; distances of 1,2,3,5 are 3,1,1,5: keep 3 = (2 + 3 + 1) / 3.
  EXPECT_DOUBLE_EQ(run_f32(RAGG_RULE_MEAMED, 1, {{1}, {2}, {3}, {5}})[0], 2.0);
  // keep 2 of {0, 1, 2}: 2m = 2, distances 2, 0, 2: (1 + 1 * mean(0, 2)) / 2 = 1.
  EXPECT_DOUBLE_EQ(run_f32(RAGG_RULE_MEAMED, 1, {{0}, {1}, {2}})[0], 1.0);
  // symmetric under x -> -x
  EXPECT_DOUBLE_EQ(run_f32(RAGG_RULE_MEAMED, 2, {{0}, {1}, {3}, {4}, {9}})[0],
                   -run_f32(RAGG_RULE_MEAMED, 2, {{-0.0f}, {-1}, {-3}, {-4}, {-9}})[0]);
}

}  // namespace

// The vector paths (staged tiles, mixed rows formed in registers; AVX-512 or
// AVX2) and the general path (per-coordinate radix/insertion sort, mixed rows
// written out first) give the same bits. RAGG_CPU_SIMD=0 selects the general
// path, RAGG_CPU_SIMD=avx2 stops at AVX2 on an AVX-512 CPU.
namespace {
void expect_paths_agree(ragg_rule_t rule, const Shape &s, Entry entry, const Tweak &tweak,
                        const Filler &fill, uint64_t salt) {
  Context ctx;
  ASSERT_EQ(ctx.status, RAGG_SUCCESS);
  ragg_config_t cfg = make_config(rule, s.f);
  if (tweak) tweak(cfg);
  std::mt19937_64 rng(case_seed(salt));
  Inputs x(s.dtype, s.n, s.d, s.ld);
  fill(x, rng);
  SCOPED_TRACE(describe(cfg, x, entry));
  // with the report too: its scores count each row's trimmed coordinates,
  // which the vector path counts from a copy of the tile before the sort
  for (bool report : {false, true}) {
    const LibRun vec = run_library(ctx.ctx, cfg, x, entry, report);
    ASSERT_EQ(vec.status, RAGG_SUCCESS) << vec.error;
    for (const char *level : {"0", "avx2"}) {
      SimdLevel l(level);
      const LibRun other = run_library(ctx.ctx, cfg, x, entry, report);
      ASSERT_EQ(other.status, RAGG_SUCCESS) << other.error;
      EXPECT_TRUE(same_bits(vec, other)) << "RAGG_CPU_SIMD=" << level;
      EXPECT_EQ(vec.scores, other.scores) << "RAGG_CPU_SIMD=" << level << ", report scores";
    }
  }
}
}  // namespace

TEST(CoordinatePaths, VectorAndGeneralPathsGiveTheSameBits) {
  const Tweak none,
      nnm = [](ragg_config_t &c) { c.mix = RAGG_MIX_NNM; },
      arc_nnm = [](ragg_config_t &c) { c.mix = RAGG_MIX_NNM, c.adaptive_clip = 1; },
      buckets = [](ragg_config_t &c) { c.mix = RAGG_MIX_BUCKETING, c.bucket_size = 2, c.seed = 5; };
  uint64_t salt = 9000;
  for (ragg_rule_t r : {RAGG_RULE_MEDIAN, RAGG_RULE_TRIMMED_MEAN, RAGG_RULE_MEAMED})
    for (int64_t n : {2, 5, 8, 16, 33, 64, 65, 80, 81, 100, 128, 129, 200, 256, 300})
      for (const Tweak *t : {&none, &nnm, &arc_nnm, &buckets}) {
        const int64_t nm = t == &buckets ? (n + 1) / 2 : n;
        const int64_t f = (nm - 1) / 2 > 3 ? 3 : (nm - 1) / 2;
        if (nm < 1 || (t == &buckets && nm < 2 * f + 1)) continue;
        // d: a partial last chunk and a partial last vector
        expect_paths_agree(r, {n, 1000 + 3, f}, Entry::Contiguous, *t, gaussian_fill(), ++salt);
        expect_paths_agree(r, {n, 77, f, RAGG_F16, 80}, Entry::Contiguous, *t, gaussian_fill(),
                           ++salt);
        expect_paths_agree(r, {n, 130, f, RAGG_BF16}, Entry::Pointers, *t, ties_fill(3), ++salt);
        if (n >= 8)
          expect_paths_agree(r, {n, 300, f}, Entry::Pointers, *t, hostile_fill(HOSTILE_MIXED, f),
                             ++salt);
        // more hostile rows than f: windows that must take a NaN or an
        // infinite value, and a NaN or infinite median (MeaMed's other path)
        if (n >= 8 && t == &none)
          for (int64_t h : {f + 1, n / 2})
            expect_paths_agree(r, {n, 300, f}, Entry::Contiguous, *t,
                               hostile_fill(HOSTILE_MIXED, h), ++salt);
      }
  // above 64 inputs the networks sort a padded bucket (above 128: two sorts
  // of up to 128 and a merge; above 256: sorted blocks of 256 merged in
  // loops, padded to a multiple of 256): f up to its limit, a count at each
  // end of a bucket
  for (ragg_rule_t r : {RAGG_RULE_MEDIAN, RAGG_RULE_TRIMMED_MEAN, RAGG_RULE_MEAMED})
    for (int64_t n :
         {65, 96, 97, 127, 129, 192, 193, 256, 257, 512, 513, 777, 1024, 1025, 2047, 2049, 4097})
      for (int64_t f : {int64_t{20}, (n - 1) / 2}) {
        expect_paths_agree(r, {n, 211, f}, Entry::Contiguous, none, gaussian_fill(), ++salt);
        expect_paths_agree(r, {n, 64, f}, Entry::Pointers, none, hostile_fill(HOSTILE_MIXED, f),
                           ++salt);
      }
  // MeaMed's tile keeps the window ends' distances for f < 16 and recomputes
  // them above; its core (ranks f+1 .. n-f-2) is summed without compares
  // only where no lane ties there: tied values, hostile rows, both sides of 16
  for (int64_t n : {9, 34, 40, 70})
    for (int64_t f : {int64_t{4}, int64_t{15}, int64_t{16}}) {
      if (n < 2 * f + 1) continue;
      expect_paths_agree(RAGG_RULE_MEAMED, {n, 211, f}, Entry::Contiguous, none, ties_fill(2),
                         ++salt);
      expect_paths_agree(RAGG_RULE_MEAMED, {n, 211, f}, Entry::Contiguous, none, gaussian_fill(),
                         ++salt);
      expect_paths_agree(RAGG_RULE_MEAMED, {n, 64, f}, Entry::Pointers, none,
                         hostile_fill(HOSTILE_MIXED, std::min(f + 1, n / 2)), ++salt);
      // whole tiles of one non-finite kind, up to an infinite or NaN median
      for (int kind : {HOSTILE_INF_NEG, HOSTILE_INF_POS, HOSTILE_NAN_NEG})
        for (int64_t h : {f, n / 2})
          expect_paths_agree(RAGG_RULE_MEAMED, {n, 64, f}, Entry::Contiguous, none,
                             hostile_fill(kind, h), ++salt);
    }
  // Bulyan's step over the selected (mixed) rows
  for (int64_t n : {11, 16, 64, 100, 200})
    for (const Tweak *t : {&none, &nnm})
      expect_paths_agree(RAGG_RULE_BULYAN, {n, 515, 2}, Entry::Contiguous, *t, separated_fill(),
                         ++salt);
}
