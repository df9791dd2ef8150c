// Brute / MDA: the n-f subset of smallest diameter (max pairwise squared
// distance), ties to the lexicographically smallest subset; C(n, f) above
// brute_limit is refused with RAGG_ERR_UNSUPPORTED.
#include "test_helpers.hh"

using namespace ragg_test;

TEST(Brute, StandardShapes) { check_gram_shapes(RAGG_RULE_BRUTE, 9, 37, 1003, 1); }

TEST(Brute, RepeatedRows) {
  check_shape(RAGG_RULE_BRUTE, {10, 37, 3}, 10, repeated_rows_fill());
  check_shape(RAGG_RULE_BRUTE, {9, 8, 4}, 11, ties_fill(1));
}

TEST(Brute, HostileRowsAreExcluded) {
  for (int kind = 0; kind < HOSTILE_KINDS; ++kind) {
    SCOPED_TRACE(hostile_name(kind));
    check_shape(RAGG_RULE_BRUTE, {9, 37, 4}, 20 + (uint64_t)kind, hostile_fill(kind, 4));
  }
}

TEST(Brute, SubsetLimit) {
  // C(12, 5) = 792: refused under a limit of 791, accepted at 792.
  check_shape(RAGG_RULE_BRUTE, {12, 16, 5}, 30, separated_fill(),
              [](ragg_config_t &c) { c.brute_limit = 791; });
  check_shape(RAGG_RULE_BRUTE, {12, 16, 5}, 31, separated_fill(),
              [](ragg_config_t &c) { c.brute_limit = 792; });
  // C(60, 29) is about 1.1e17, far above the default limit.
  Context ctx;
  Inputs x(RAGG_F32, 60, 4);
  std::mt19937_64 rng(case_seed(32));
  fill_gaussian(x, rng);
  const LibRun r = run_library(ctx.ctx, make_config(RAGG_RULE_BRUTE, 29), x);
  EXPECT_EQ(r.status, RAGG_ERR_UNSUPPORTED);
  EXPECT_NE(r.error.find("brute_limit"), std::string::npos) << r.error;
  EXPECT_TRUE(out_untouched(r));
}

TEST(Brute, LargerN) {
  check_shape(RAGG_RULE_BRUTE, {20, 37, 2}, 40, separated_fill());
  check_shape(RAGG_RULE_BRUTE, {14, 37, 6, RAGG_F16}, 41, separated_fill());
}

TEST(Brute, TiesAcrossTheThreadsRanges) { expect_tie_goes_to_the_first_subset(RAGG_RULE_BRUTE); }

// Past the threshold of the parallel subset search, against the oracle.
TEST(Brute, ManySubsets) {
  check_shape(RAGG_RULE_BRUTE, {24, 9, 4}, 42, separated_fill());
  check_shape(RAGG_RULE_BRUTE, {24, 9, 4}, 43, repeated_rows_fill());
}
