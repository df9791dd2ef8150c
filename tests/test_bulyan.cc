// Bulyan (El Mhamdi et al. 2018) as DESIGN.md section 2 fixes it: theta = n-2f
// Krum rounds on the remaining set with k = min(max(|R|-f-2, 1), |R|-1),
// then per coordinate the MeaMed-style average of the beta = theta-2f values
// of S closest to their median.
#include "test_helpers.hh"

using namespace ragg_test;

TEST(Bulyan, StandardShapes) { check_gram_shapes(RAGG_RULE_BULYAN, 11, 37, 1003, 1); }

TEST(Bulyan, SmallestInputsForEachF) {
  for (int64_t f = 0; f <= 4; ++f)
    check_shape(RAGG_RULE_BULYAN, {4 * f + 3, 37, f}, 10 + (uint64_t)f, separated_fill());
}

TEST(Bulyan, RepeatedRows) {
  check_shape(RAGG_RULE_BULYAN, {11, 37, 2}, 20, repeated_rows_fill());
  check_shape(RAGG_RULE_BULYAN, {12, 16, 2}, 21, [](Inputs &x, std::mt19937_64 &rng) {
    fill_ties(x, rng, 2);
  });
}

TEST(Bulyan, HostileRowsAreExcluded) {
  for (int kind = 0; kind < HOSTILE_KINDS; ++kind) {
    SCOPED_TRACE(hostile_name(kind));
    check_shape(RAGG_RULE_BULYAN, {11, 37, 2}, 30 + (uint64_t)kind, hostile_fill(kind, 2));
  }
}

TEST(Bulyan, ManyInputs) {
  check_shape(RAGG_RULE_BULYAN, {99, 37, 24}, 40, separated_fill());
  check_shape(RAGG_RULE_BULYAN, {64, 1003, 10, RAGG_F16, 0, Entry::Pointers}, 41,
              separated_fill());
}
