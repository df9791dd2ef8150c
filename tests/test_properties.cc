// Properties every rule owes (DESIGN.md section 4): finite output inside the
// honest range under <= f hostile rows, permutation invariance, the same bits
// on repeated calls, refusal when n is too small for f.
#include <set>

#include "test_helpers.hh"

using namespace ragg_test;

namespace {

struct RuleCase {
  ragg_rule_t rule;
  int64_t n, d, f;
};
// f at or near each rule's limit; small d where the rule diagonalises.
const RuleCase kCases[] = {
    {RAGG_RULE_MEDIAN, 11, 37, 5},  {RAGG_RULE_TRIMMED_MEAN, 11, 37, 5},
    {RAGG_RULE_MEAMED, 11, 37, 5},  {RAGG_RULE_KRUM, 11, 37, 4},
    {RAGG_RULE_MULTI_KRUM, 11, 37, 4}, {RAGG_RULE_BULYAN, 11, 37, 2},
    {RAGG_RULE_GEOMED, 11, 37, 5},  {RAGG_RULE_BRUTE, 9, 37, 4},
    {RAGG_RULE_CENTERED_CLIP, 11, 37, 5}, {RAGG_RULE_MONNA, 11, 37, 5},
    {RAGG_RULE_CAF, 11, 5, 5},      {RAGG_RULE_SMEA, 9, 4, 4},
};

std::string case_name(const ::testing::TestParamInfo<RuleCase> &i) {
  return rule_label(i.param.rule);
}

ragg_config_t config_for(const RuleCase &c) {
  ragg_config_t cfg = make_config(c.rule, c.f);
  if (c.rule == RAGG_RULE_CENTERED_CLIP) {
    cfg.tau = 1.0;
    cfg.iters = 5;
  }
  return cfg;
}

bool coordinate_wise(ragg_rule_t r) {
  return r == RAGG_RULE_MEDIAN || r == RAGG_RULE_TRIMMED_MEAN || r == RAGG_RULE_MEAMED;
}

class Properties : public ::testing::TestWithParam<RuleCase> {};

// Honest range per coordinate; geometric median and centered clipping are
// not bounded by it exactly, so they get the slack their definitions allow:
// CC moves at most tau/n per hostile row and iteration (and starts at 0);
// the geometric median stays within (2(n-f)/(n-2f)) times the honest
// diameter of the honest points.
void expect_bounded(const RuleCase &c, const ragg_config_t &cfg, const Inputs &x,
                    const std::vector<bool> &hostile, const LibRun &r) {
  std::vector<double> lo, hi;
  honest_range(x, hostile, lo, hi);
  double slack = 0;
  if (c.rule == RAGG_RULE_CENTERED_CLIP) {
    for (int64_t k = 0; k < x.d; ++k) {
      lo[(size_t)k] = std::min(lo[(size_t)k], 0.0);
      hi[(size_t)k] = std::max(hi[(size_t)k], 0.0);
    }
    slack = (double)cfg.iters * (double)c.f * cfg.tau / (double)c.n;
  } else if (c.rule == RAGG_RULE_GEOMED) {
    double diam = 0;
    for (int64_t i = 0; i < x.n; ++i)
      for (int64_t j = 0; j < x.n; ++j) {
        if (hostile[(size_t)i] || hostile[(size_t)j]) continue;
        double s = 0;
        for (int64_t k = 0; k < x.d; ++k) s += (x.get(i, k) - x.get(j, k)) * (x.get(i, k) - x.get(j, k));
        diam = std::max(diam, std::sqrt(s));
      }
    slack = 2.0 * (double)(c.n - c.f) / (double)(c.n - 2 * c.f) * diam;
  }
  const Tol t = tol_for(x.dtype);
  for (int64_t k = 0; k < x.d; ++k) {
    const double v = r.out[(size_t)k];
    ASSERT_TRUE(std::isfinite(v)) << "out[" << k << "] = " << v;
    const double a = lo[(size_t)k] - slack, b = hi[(size_t)k] + slack;
    EXPECT_GE(v, a - t.atol - t.rtol * std::fabs(a)) << "out[" << k << "]";
    EXPECT_LE(v, b + t.atol + t.rtol * std::fabs(b)) << "out[" << k << "]";
  }
}

TEST_P(Properties, FiniteAndInsideHonestRangeUnderHostileRows) {
  const RuleCase c = GetParam();
  Context ctx;
  const ragg_config_t cfg = config_for(c);
  uint64_t salt = 1000 * (uint64_t)c.rule;
  for (ragg_dtype_t t : {RAGG_F32, RAGG_F16, RAGG_BF16})
    for (int kind = 0; kind <= HOSTILE_KINDS; ++kind) {  // HOSTILE_KINDS: a random kind per row
      const uint64_t seed = case_seed(++salt);
      SCOPED_TRACE(seed_note(seed));
      SCOPED_TRACE(std::string(dtype_name(t)) + " " +
                   (kind < HOSTILE_KINDS ? hostile_name(kind) : "random kinds"));
      std::mt19937_64 rng(seed);
      Inputs x(t, c.n, c.d);
      fill_separated(x, rng);
      const std::vector<int64_t> perm = random_permutation(c.n, rng);
      std::vector<bool> hostile((size_t)c.n, false);
      const int64_t src = perm[(size_t)c.f];  // an honest row for the sign flip
      for (int64_t h = 0; h < c.f; ++h) {
        const int64_t row = perm[(size_t)h];
        if (c.rule == RAGG_RULE_MONNA && row == cfg.trusted) continue;
        hostile[(size_t)row] = true;
        const int k = kind < HOSTILE_KINDS ? kind : (int)(rng() % HOSTILE_KINDS);
        make_hostile(x, row, k, src);
      }
      const LibRun r = run_library(ctx.ctx, cfg, x);
      ASSERT_EQ(r.status, RAGG_SUCCESS) << r.error;
      expect_bounded(c, cfg, x, hostile, r);
      // nonfinite counts the NaN/Inf values of every input
      for (int64_t i = 0; i < c.n; ++i) {
        int64_t bad = 0;
        for (int64_t k = 0; k < c.d; ++k) bad += std::isfinite(x.get(i, k)) ? 0 : 1;
        EXPECT_EQ(r.nonfinite[(size_t)i], bad) << "row " << i;
      }
    }
}

TEST_P(Properties, PermutationInvariance) {
  const RuleCase c = GetParam();
  Context ctx;
  for (ragg_dtype_t t : {RAGG_F32, RAGG_F16}) {
    const uint64_t seed = case_seed(5000 + (uint64_t)c.rule * 4 + (uint64_t)t);
    SCOPED_TRACE(seed_note(seed));
    std::mt19937_64 rng(seed);
    Inputs x(t, c.n, c.d);
    if (coordinate_wise(c.rule))
      fill_ties(x, rng, 3);  // ties must not depend on the order either
    else
      fill_separated(x, rng);
    const std::vector<int64_t> perm = random_permutation(c.n, rng);
    const Inputs y = x.permuted(perm);
    ragg_config_t cfg = config_for(c), cfg_y = cfg;
    for (int64_t i = 0; i < c.n; ++i)
      if (perm[(size_t)i] == cfg.trusted) cfg_y.trusted = i;  // MoNNA follows its input
    const LibRun a = run_library(ctx.ctx, cfg, x), b = run_library(ctx.ctx, cfg_y, y);
    ASSERT_EQ(a.status, RAGG_SUCCESS) << a.error;
    ASSERT_EQ(b.status, RAGG_SUCCESS) << b.error;
    if (coordinate_wise(c.rule)) {
      EXPECT_TRUE(same_bits(a, b));
      continue;
    }
    // Selection rules break exact ties by index (Bulyan's last rounds, where
    // mutual nearest neighbours tie, always do), so the order matters exactly
    // when the definition says it does: then each call must match its own
    // oracle; otherwise the two calls must agree.
    const oracle::Result ra = oracle::aggregate(cfg, x.rows()), rb = oracle::aggregate(cfg_y, y.rows());
    if (std::min(ra.margin, rb.margin) < kMinMargin) continue;  // too close to call
    if (all_close("oracle", ra.out, rb.out, tol_for(t))) {
      EXPECT_TRUE(all_close("permuted out", a.out, b.out, tol_for(t)));
      if (c.rule != RAGG_RULE_BULYAN && c.rule != RAGG_RULE_MEAN) {
        for (int64_t i = 0; i < c.n; ++i) {
          EXPECT_NEAR(a.weights[(size_t)perm[(size_t)i]], b.weights[(size_t)i], 1e-6) << i;
        }
      }
    } else {
      EXPECT_TRUE(all_close("out", ra.out, a.out, tol_for(t)));
      EXPECT_TRUE(all_close("permuted out", rb.out, b.out, tol_for(t)));
    }
  }
}

TEST_P(Properties, SameBitsOnRepeatedCalls) {
  const RuleCase c = GetParam();
  Context ctx, other;
  const uint64_t seed = case_seed(6000 + (uint64_t)c.rule);
  SCOPED_TRACE(seed_note(seed));
  std::mt19937_64 rng(seed);
  Inputs x(RAGG_F32, c.n, c.d, c.d + 5);
  fill_separated(x, rng);
  make_hostile(x, 1, HOSTILE_MIXED, 0);
  const ragg_config_t cfg = config_for(c);
  const LibRun a = run_library(ctx.ctx, cfg, x);
  ASSERT_EQ(a.status, RAGG_SUCCESS) << a.error;
  for (int rep = 0; rep < 3; ++rep) {
    const LibRun b = run_library(rep == 1 ? other.ctx : ctx.ctx, cfg, x);
    ASSERT_EQ(b.status, RAGG_SUCCESS) << b.error;
    EXPECT_TRUE(same_bits(a, b));
    EXPECT_EQ(std::memcmp(a.scores.data(), b.scores.data(), a.scores.size() * sizeof(double)), 0);
    EXPECT_EQ(std::memcmp(a.weights.data(), b.weights.data(), a.weights.size() * sizeof(double)), 0);
  }
  // Without a report, the same output.
  const LibRun c2 = run_library(ctx.ctx, cfg, x, Entry::Contiguous, false);
  ASSERT_EQ(c2.status, RAGG_SUCCESS) << c2.error;
  EXPECT_TRUE(same_bits(a, c2));
}

TEST_P(Properties, RefusesWhenNIsTooSmall) {
  const RuleCase c = GetParam();
  if (oracle::min_inputs(c.rule, 3) <= 1) GTEST_SKIP() << "accepts any n >= 1";
  Context ctx;
  for (int64_t f = 1; f <= 3; ++f) {
    const int64_t need = oracle::min_inputs(c.rule, f);
    EXPECT_EQ(ragg_rule_min_inputs(c.rule, f), need);
    Inputs x(RAGG_F32, need - 1, 4);
    std::mt19937_64 rng(case_seed(7000 + (uint64_t)f));
    fill_gaussian(x, rng);
    ragg_config_t cfg = config_for(c);
    cfg.f = f;
    const LibRun r = run_library(ctx.ctx, cfg, x);
    EXPECT_EQ(r.status, RAGG_ERR_TOO_MANY_BYZANTINE) << "n=" << need - 1 << " f=" << f;
    EXPECT_TRUE(out_untouched(r));
    EXPECT_NE(r.error.find('f'), std::string::npos) << r.error;
    // And one more input is accepted.
    Inputs y(RAGG_F32, need, 4);
    fill_separated(y, rng);
    const LibRun ok = run_library(ctx.ctx, cfg, y);
    EXPECT_EQ(ok.status, RAGG_SUCCESS) << "n=" << need << " f=" << f << ": " << ok.error;
    EXPECT_STREQ(ragg_last_error(ctx.ctx), "");
  }
}

INSTANTIATE_TEST_SUITE_P(Rules, Properties, ::testing::ValuesIn(kCases), case_name);

TEST(Properties, MinInputsOfMeanAndCenteredClip) {
  for (int64_t f = 0; f < 4; ++f) {
    EXPECT_EQ(ragg_rule_min_inputs(RAGG_RULE_MEAN, f), 1);
    EXPECT_EQ(ragg_rule_min_inputs(RAGG_RULE_CENTERED_CLIP, f), 1);
  }
}

}  // namespace
