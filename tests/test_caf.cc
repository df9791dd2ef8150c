// CAF (Allouah, Guerraoui & Stephan 2025) exactly as DESIGN.md section 2:
// down-weight along the top eigenvector of the weighted covariance until the
// weights sum to n-2f, output the mean of the round with the smallest top
// eigenvalue. Small d: the oracle diagonalises d x d covariances.
#include "test_helpers.hh"

using namespace ragg_test;

TEST(Caf, StandardShapes) { check_gram_shapes(RAGG_RULE_CAF, 9, 5, 7, 1); }

TEST(Caf, RepeatedRows) { check_shape(RAGG_RULE_CAF, {10, 4, 3}, 10, repeated_rows_fill()); }

TEST(Caf, HostileRowsAreExcluded) {
  for (int kind = 0; kind < HOSTILE_KINDS; ++kind) {
    SCOPED_TRACE(hostile_name(kind));
    check_shape(RAGG_RULE_CAF, {11, 5, 4}, 20 + (uint64_t)kind, hostile_fill(kind, 4));
  }
}

TEST(Caf, ManyInputs) {
  check_shape(RAGG_RULE_CAF, {60, 6, 29}, 30, separated_fill());
  check_shape(RAGG_RULE_CAF, {40, 8, 10, RAGG_F16}, 31, separated_fill());
}
