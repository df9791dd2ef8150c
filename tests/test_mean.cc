// Mean: (1/n) sum x_i in double, rounded once; the report's weights are 1/n.
#include "test_helpers.hh"

using namespace ragg_test;

TEST(Mean, StandardShapes) {
  check_gram_shapes(RAGG_RULE_MEAN, 11, 37, 1003, 1, Tweak(), gaussian_fill());
  check_shape(RAGG_RULE_MEAN, {1, 37, 0}, 2, gaussian_fill());
}

TEST(Mean, ManyInputs) {
  check_shape(RAGG_RULE_MEAN, {1000, 37, 0}, 3, gaussian_fill());
  check_shape(RAGG_RULE_MEAN, {1001, 1003, 0, RAGG_BF16, 0, Entry::Pointers}, 4, gaussian_fill());
}

TEST(Mean, NonFiniteInputsPropagate) {
  // The mean is not robust: NaN and Inf reach the output, counted in the report.
  for (int kind : {HOSTILE_NAN_POS, HOSTILE_INF_POS, HOSTILE_MIXED}) {
    SCOPED_TRACE(hostile_name(kind));
    Context ctx;
    Inputs x(RAGG_F32, 5, 12);
    std::mt19937_64 rng(case_seed(10 + (uint64_t)kind));
    fill_gaussian(x, rng);
    make_hostile(x, 3, kind, 0);
    const LibRun r = run_library(ctx.ctx, make_config(RAGG_RULE_MEAN, 0), x);
    ASSERT_EQ(r.status, RAGG_SUCCESS) << r.error;
    const oracle::Result ref = oracle::aggregate(make_config(RAGG_RULE_MEAN, 0), x.rows());
    for (int64_t k = 0; k < x.d; ++k) {
      if (std::isnan(ref.out[(size_t)k])) {
        EXPECT_TRUE(std::isnan(r.out[(size_t)k])) << k;
      } else {
        EXPECT_TRUE(close_enough(ref.out[(size_t)k], r.out[(size_t)k], tol_for(RAGG_F32)))
            << k << ": " << r.out[(size_t)k] << " vs " << ref.out[(size_t)k];
      }
    }
    EXPECT_EQ(r.nonfinite, ref.nonfinite);
  }
}
