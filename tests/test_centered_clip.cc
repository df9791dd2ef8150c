// Centered clipping (Karimireddy et al. 2021): iters steps of
// v <- v + (1/n) sum_i min(1, tau / ||x_i - v||) (x_i - v) from cc_center.
#include "test_helpers.hh"

using namespace ragg_test;

namespace {
Tweak radius(double tau, int64_t iters) {
  return [tau, iters](ragg_config_t &c) {
    c.tau = tau;
    c.iters = iters;
  };
}
}  // namespace

TEST(CenteredClip, StandardShapes) {
  check_gram_shapes(RAGG_RULE_CENTERED_CLIP, 11, 37, 1003, 1);  // default tau = 100: no clipping
  check_gram_shapes(RAGG_RULE_CENTERED_CLIP, 11, 37, 1003, 2, radius(2.0, 3));
}

TEST(CenteredClip, RadiiAndIterations) {
  uint64_t s = 10;
  for (double tau : {0.1, 1.0, 5.0, 1e3})
    for (int64_t iters : {1, 2, 5, 20})
      check_shape(RAGG_RULE_CENTERED_CLIP, {10, 37, 3}, ++s, separated_fill(), radius(tau, iters));
}

TEST(CenteredClip, StartsFromTheGivenCentre) {
  uint64_t s = 40;
  for (ragg_dtype_t t : {RAGG_F32, RAGG_F16, RAGG_BF16})
    for (int64_t iters : {1, 4}) {
      const int64_t d = 37;
      std::mt19937_64 rng(case_seed(++s));
      Inputs centre(t, 1, d);
      fill_gaussian(centre, rng, 2.0);
      CheckOptions o;
      o.centre = centre.row_values(0);
      const void *ptr = centre.data();
      check_shape(RAGG_RULE_CENTERED_CLIP, {9, d, 2, t}, ++s, separated_fill(),
                  [ptr, iters](ragg_config_t &c) {
                    c.cc_center = ptr;
                    c.tau = 1.5;
                    c.iters = iters;
                  },
                  o);
    }
}

TEST(CenteredClip, RepeatedRowsAndZeroDistance) {
  check_shape(RAGG_RULE_CENTERED_CLIP, {10, 37, 3}, 60, repeated_rows_fill(), radius(1.0, 4));
  // Rows equal to the start point: distance 0 counts as c_i = 1.
  check_shape(RAGG_RULE_CENTERED_CLIP, {6, 8, 0}, 61, [](Inputs &x, std::mt19937_64 &rng) {
    fill_gaussian(x, rng);
    for (int64_t k = 0; k < x.d; ++k) x.set(2, k, 0.0);
  }, radius(0.5, 3));
}

TEST(CenteredClip, HostileRowsAreExcluded) {
  for (int kind = 0; kind < HOSTILE_KINDS; ++kind) {
    SCOPED_TRACE(hostile_name(kind));
    check_shape(RAGG_RULE_CENTERED_CLIP, {11, 37, 5}, 70 + (uint64_t)kind, hostile_fill(kind, 5),
                radius(2.0, 5));
  }
}

TEST(CenteredClip, ManyInputs) {
  check_shape(RAGG_RULE_CENTERED_CLIP, {100, 37, 0}, 80, separated_fill(), radius(3.0, 10));
  check_shape(RAGG_RULE_CENTERED_CLIP, {100, 1003, 0, RAGG_F16, 0, Entry::Pointers}, 81,
              separated_fill(), radius(10.0, 3));
}
