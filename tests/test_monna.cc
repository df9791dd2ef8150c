// MoNNA (Farhadkhani et al. 2023): the average of the n-f nearest neighbours
// of the trusted input (itself included at distance 0, ties to the lower index).
#include "test_helpers.hh"

using namespace ragg_test;

TEST(Monna, StandardShapes) { check_gram_shapes(RAGG_RULE_MONNA, 11, 37, 1003, 1); }

TEST(Monna, EveryTrustedIndex) {
  const int64_t n = 9;
  for (int64_t t = 0; t < n; ++t)
    check_shape(RAGG_RULE_MONNA, {n, 37, 3}, 10 + (uint64_t)t, separated_fill(),
                [t](ragg_config_t &c) { c.trusted = t; });
}

TEST(Monna, RepeatedRows) {
  check_shape(RAGG_RULE_MONNA, {10, 37, 4}, 20, repeated_rows_fill(),
              [](ragg_config_t &c) { c.trusted = 2; });
}

TEST(Monna, HostileRowsAreExcluded) {
  for (int kind = 0; kind < HOSTILE_KINDS; ++kind) {
    SCOPED_TRACE(hostile_name(kind));
    check_shape(RAGG_RULE_MONNA, {11, 37, 5}, 30 + (uint64_t)kind, hostile_fill(kind, 5),
                [](ragg_config_t &c) { c.trusted = 4; });
  }
}

TEST(Monna, ManyInputs) {
  check_shape(RAGG_RULE_MONNA, {100, 37, 49}, 40, separated_fill(),
              [](ragg_config_t &c) { c.trusted = 57; });
}
