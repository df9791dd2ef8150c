// Geometric median by smoothed Weiszfeld from the medoid (DESIGN.md section 2):
// alpha_i proportional to 1 / max(nu, ||x_i - z||), stop when the objective
// changes by at most tol F or after max_iters.
#include "test_helpers.hh"

using namespace ragg_test;

TEST(Geomed, StandardShapes) { check_gram_shapes(RAGG_RULE_GEOMED, 11, 37, 1003, 1); }

TEST(Geomed, IterationCapsAndTolerances) {
  uint64_t s = 10;
  for (int64_t it : {1, 2, 3, 10})
    check_shape(RAGG_RULE_GEOMED, {9, 37, 4}, ++s, separated_fill(),
                [it](ragg_config_t &c) { c.max_iters = it; });
  for (double tol : {0.0, 1e-6, 1e-2})
    check_shape(RAGG_RULE_GEOMED, {10, 37, 3}, ++s, separated_fill(),
                [tol](ragg_config_t &c) { c.tol = tol; c.max_iters = 200; });
  // nu above every distance: Weiszfeld's weights all equal, the mean.
  check_shape(RAGG_RULE_GEOMED, {9, 37, 4}, ++s, separated_fill(),
              [](ragg_config_t &c) { c.nu = 1e6; });
}

TEST(Geomed, RepeatedRows) {
  check_shape(RAGG_RULE_GEOMED, {10, 37, 3}, 20, repeated_rows_fill());
  check_shape(RAGG_RULE_GEOMED, {9, 37, 4}, 21, [](Inputs &x, std::mt19937_64 &rng) {
    fill_separated(x, rng);
    for (int64_t i = 1; i < 6; ++i) x.copy_row(i, 0);  // a majority on one point
  });
}

TEST(Geomed, HostileRowsAreExcluded) {
  for (int kind = 0; kind < HOSTILE_KINDS; ++kind) {
    SCOPED_TRACE(hostile_name(kind));
    check_shape(RAGG_RULE_GEOMED, {11, 37, 5}, 30 + (uint64_t)kind, hostile_fill(kind, 5));
  }
}

TEST(Geomed, ManyInputs) {
  check_shape(RAGG_RULE_GEOMED, {100, 37, 49}, 40, separated_fill());
  check_shape(RAGG_RULE_GEOMED, {101, 1003, 10, RAGG_BF16, 0, Entry::Pointers}, 41,
              separated_fill());
}
