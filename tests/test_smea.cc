// SMEA: the n-f subset whose covariance has the smallest top eigenvalue,
// averaged; ties to the lexicographically smallest subset; C(n, f) above
// brute_limit is refused. Small d: the oracle diagonalises d x d covariances.
#include "test_helpers.hh"

using namespace ragg_test;

TEST(Smea, StandardShapes) { check_gram_shapes(RAGG_RULE_SMEA, 9, 4, 6, 1); }

TEST(Smea, HostileRowsAreExcluded) {
  for (int kind = 0; kind < HOSTILE_KINDS; ++kind) {
    SCOPED_TRACE(hostile_name(kind));
    check_shape(RAGG_RULE_SMEA, {9, 4, 4}, 20 + (uint64_t)kind, hostile_fill(kind, 4));
  }
}

TEST(Smea, SubsetLimit) {
  // C(11, 4) = 330.
  check_shape(RAGG_RULE_SMEA, {11, 3, 4}, 30, separated_fill(),
              [](ragg_config_t &c) { c.brute_limit = 329; });
  check_shape(RAGG_RULE_SMEA, {11, 3, 4}, 31, separated_fill(),
              [](ragg_config_t &c) { c.brute_limit = 330; });
}

TEST(Smea, LargerN) { check_shape(RAGG_RULE_SMEA, {16, 5, 3, RAGG_BF16}, 40, separated_fill()); }

TEST(Smea, TiesAcrossTheThreadsRanges) { expect_tie_goes_to_the_first_subset(RAGG_RULE_SMEA); }

// Past the threshold of the parallel subset search, against the oracle.
TEST(Smea, ManySubsets) { check_shape(RAGG_RULE_SMEA, {20, 5, 3}, 41, separated_fill()); }
