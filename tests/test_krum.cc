// Krum and Multi-Krum (Blanchard et al. 2017) on the CPU backend against the
// oracle: score(i) = sum of the n-f-2 smallest squared distances, ties to
// the lower index; Multi-Krum averages the m lowest scores (m = 0: n-f).
#include "test_helpers.hh"

using namespace ragg_test;

TEST(Krum, StandardShapes) { check_gram_shapes(RAGG_RULE_KRUM, 11, 37, 1003, 1); }

TEST(MultiKrum, StandardShapes) { check_gram_shapes(RAGG_RULE_MULTI_KRUM, 11, 37, 1003, 2); }

TEST(MultiKrum, EveryM) {
  const int64_t n = 12, f = 3;
  for (int64_t m = 0; m <= n - f; ++m)
    check_shape(RAGG_RULE_MULTI_KRUM, {n, 37, f}, 100 + (uint64_t)m, separated_fill(),
                [m](ragg_config_t &c) { c.m = m; });
}

TEST(Krum, RepeatedRowsTieToLowerIndex) {
  check_shape(RAGG_RULE_KRUM, {10, 37, 2}, 3, repeated_rows_fill());
  check_shape(RAGG_RULE_MULTI_KRUM, {10, 37, 2}, 4, repeated_rows_fill(),
              [](ragg_config_t &c) { c.m = 3; });
  // All rows equal: every score is 0, the first row wins.
  check_shape(RAGG_RULE_KRUM, {7, 16, 2}, 5, [](Inputs &x, std::mt19937_64 &rng) {
    fill_gaussian(x, rng);
    for (int64_t i = 1; i < x.n; ++i) x.copy_row(i, 0);
  });
}

TEST(Krum, HostileRowsAreExcluded) {
  for (int kind = 0; kind < HOSTILE_KINDS; ++kind) {
    SCOPED_TRACE(hostile_name(kind));
    check_shape(RAGG_RULE_KRUM, {11, 37, 4}, 10 + (uint64_t)kind, hostile_fill(kind, 4));
    check_shape(RAGG_RULE_MULTI_KRUM, {11, 37, 4}, 20 + (uint64_t)kind, hostile_fill(kind, 4));
  }
}

TEST(Krum, ManyInputs) {
  check_shape(RAGG_RULE_KRUM, {100, 37, 48}, 30, separated_fill());
  check_shape(RAGG_RULE_MULTI_KRUM, {101, 37, 20, RAGG_F16}, 31, separated_fill());
  check_shape(RAGG_RULE_MULTI_KRUM, {100, 1003, 30, RAGG_F32, 0, Entry::Pointers}, 32,
              separated_fill());
}

TEST(Krum, DirectDistancesGiveTheSameChoice) {
  check_shape(RAGG_RULE_KRUM, {11, 37, 4}, 40, separated_fill(),
              [](ragg_config_t &c) { c.distances = RAGG_DISTANCES_DIRECT; });
  check_shape(RAGG_RULE_MULTI_KRUM, {12, 1003, 3, RAGG_BF16}, 41, separated_fill(),
              [](ragg_config_t &c) { c.distances = RAGG_DISTANCES_DIRECT; });
}

// fp32 runs (RAGG_DISTANCES_GRAM_FP32): on inputs whose ranking gaps exceed
// fp32's bound the oracle's choice, for each entry point and dtype.
TEST(Krum, Fp32DistancesGiveTheSameChoice) {
  const auto fp32 = [](ragg_config_t &c) { c.distances = RAGG_DISTANCES_GRAM_FP32; };
  check_shape(RAGG_RULE_KRUM, {11, 1003, 4}, 50, separated_fill(), fp32);
  check_shape(RAGG_RULE_MULTI_KRUM, {23, 1003, 5, RAGG_BF16}, 51, separated_fill(), fp32);
  check_shape(RAGG_RULE_MULTI_KRUM, {64, 4099, 8, RAGG_F32, 0, Entry::Pointers}, 52,
              separated_fill(), fp32);
  // every hostile kind, above 16 rows where the fp32 runs form G: a row whose
  // run overflows fp32 (+-max) has G_ii = +Inf and is excluded
  for (int kind = 0; kind < HOSTILE_KINDS; ++kind) {
    SCOPED_TRACE(hostile_name(kind));
    check_shape(RAGG_RULE_KRUM, {23, 37, 5}, 60 + (uint64_t)kind, hostile_fill(kind, 5), fp32);
    check_shape(RAGG_RULE_MULTI_KRUM, {23, 37, 5}, 70 + (uint64_t)kind, hostile_fill(kind, 5),
                fp32);
  }
}
