// The public surface: argument checks (status, the argument named in
// ragg_last_error, nothing written on error), names, versions, defaults,
// workspaces and the CUDA backend's answer on this machine.
#include <set>

#include "test_helpers.hh"

using namespace ragg_test;

namespace {

struct Call {
  ragg_config_t cfg;
  ragg_dtype_t dtype = RAGG_F32;
  const void *x;
  int64_t n, d, ld;
  void *out;
  ragg_report_t *report;
  bool ptrs = false;
  const void *const *rows = nullptr;
  ragg_context_t *ctx;
  bool null_cfg = false;
};

struct BadCase {
  const char *what;
  std::function<void(Call &)> mutate;
  ragg_status_t expect;
  std::vector<const char *> names;  // the message contains one of these
};

class BadArguments : public ::testing::Test {
 protected:
  static constexpr int64_t kN = 9, kD = 8;
  Context ctx;
  Inputs x{RAGG_F32, kN, kD, kD + 4};
  std::vector<unsigned char> out = std::vector<unsigned char>(kD * 4 + 64, kOutPoison);
  std::vector<double> scores = std::vector<double>(kN, kScorePoison);
  std::vector<int32_t> selected = std::vector<int32_t>(kN, kSelectedPoison);
  ragg_report_t report{};
  std::vector<const void *> rows;

  void SetUp() override {
    std::mt19937_64 rng(case_seed(1));
    fill_gaussian(x, rng);
    report.capacity = kN;
    report.scores = scores.data();
    report.selected = selected.data();
    rows = x.row_ptrs();
  }
  Call base(ragg_rule_t rule, int64_t f = 2) {
    Call c;
    c.cfg = make_config(rule, f);
    c.x = x.data();
    c.n = kN;
    c.d = kD;
    c.ld = x.ld;
    c.out = out.data();
    c.report = &report;
    c.rows = rows.data();
    c.ctx = ctx.ctx;
    return c;
  }
  ragg_status_t invoke(Call &c) {
    if (c.ptrs) return ragg_aggregate_ptrs(c.ctx, &c.cfg, c.dtype, c.rows, c.n, c.d, c.out, c.report);
    return ragg_aggregate(c.ctx, &c.cfg, c.dtype, c.x, c.n, c.d, c.ld, c.out, c.report);
  }
  void run(const BadCase &b, ragg_rule_t rule = RAGG_RULE_MEDIAN) {
    SCOPED_TRACE(b.what);
    SCOPED_TRACE(rule_label(rule));
    std::fill(out.begin(), out.end(), kOutPoison);
    const std::vector<unsigned char> xbefore = x.buf;
    Call c = base(rule);
    b.mutate(c);
    ragg_status_t st;
    if (c.null_cfg)
      st = c.ptrs ? ragg_aggregate_ptrs(c.ctx, nullptr, c.dtype, c.rows, c.n, c.d, c.out, c.report)
                  : ragg_aggregate(c.ctx, nullptr, c.dtype, c.x, c.n, c.d, c.ld, c.out, c.report);
    else
      st = invoke(c);
    EXPECT_EQ(st, b.expect) << ragg_status_string(st);
    for (unsigned char v : out) {
      if (v != kOutPoison) {
        ADD_FAILURE() << "out written on error";
        break;
      }
    }
    for (double v : scores) EXPECT_EQ(v, kScorePoison) << "report written on error";
    EXPECT_EQ(x.buf, xbefore) << "input modified";
    if (c.ctx) {
      const std::string msg = ctx.last_error();
      bool named = false;
      for (const char *n : b.names) named = named || msg.find(n) != std::string::npos;
      EXPECT_TRUE(named) << "last error \"" << msg << "\" names none of the expected arguments";
    }
  }
};


}  // namespace

using M = std::function<void(Call &)>;

TEST_F(BadArguments, Pointers) {
  run({"NULL ctx", [](Call &c) { c.ctx = nullptr; }, RAGG_ERR_INVALID_ARGUMENT, {}});
  run({"NULL cfg", [](Call &c) { c.null_cfg = true; }, RAGG_ERR_INVALID_ARGUMENT, {"cfg"}});
  run({"NULL x", [](Call &c) { c.x = nullptr; }, RAGG_ERR_INVALID_ARGUMENT, {"x"}});
  run({"NULL out", [](Call &c) { c.out = nullptr; }, RAGG_ERR_INVALID_ARGUMENT, {"out"}});
  run({"NULL rows", [](Call &c) { c.ptrs = true; c.rows = nullptr; }, RAGG_ERR_INVALID_ARGUMENT,
       {"rows"}});
  static std::vector<const void *> holey;
  run({"NULL row", [this](Call &c) {
         holey = rows;
         holey[3] = nullptr;
         c.ptrs = true;
         c.rows = holey.data();
       }, RAGG_ERR_INVALID_ARGUMENT, {"rows"}});
  run({"out is x", [this](Call &c) { c.out = x.buf.data(); }, RAGG_ERR_INVALID_ARGUMENT, {"out"}});
  run({"out inside x", [this](Call &c) { c.out = x.buf.data() + 4 * (x.ld * 3 + 1); },
       RAGG_ERR_INVALID_ARGUMENT, {"out"}});
  run({"out overlaps a row", [this](Call &c) {
         c.ptrs = true;
         c.out = (unsigned char *)const_cast<void *>(rows[5]) - 8;
       }, RAGG_ERR_INVALID_ARGUMENT, {"out"}});
}

TEST_F(BadArguments, Sizes) {
  run({"n = 0", [](Call &c) { c.n = 0; }, RAGG_ERR_INVALID_ARGUMENT, {"n"}});
  run({"n = -1", [](Call &c) { c.n = -1; }, RAGG_ERR_INVALID_ARGUMENT, {"n"}});
  run({"d = 0", [](Call &c) { c.d = 0; }, RAGG_ERR_INVALID_ARGUMENT, {"d"}});
  run({"d = -3", [](Call &c) { c.d = -3; }, RAGG_ERR_INVALID_ARGUMENT, {"d"}});
  run({"ld < d", [](Call &c) { c.ld = c.d - 1; }, RAGG_ERR_INVALID_ARGUMENT, {"ld"}});
  run({"f < 0", [](Call &c) { c.cfg.f = -1; }, RAGG_ERR_INVALID_ARGUMENT, {"f"}});
  run({"report capacity < n", [](Call &c) { c.report->capacity = c.n - 1; },
       RAGG_ERR_INVALID_ARGUMENT, {"capacity"}});
  run({"unknown dtype", [](Call &c) { c.dtype = (ragg_dtype_t)3; }, RAGG_ERR_INVALID_ARGUMENT,
       {"dtype"}});
  run({"unknown rule", [](Call &c) { c.cfg.rule = (ragg_rule_t)99; }, RAGG_ERR_INVALID_ARGUMENT,
       {"rule"}});
  run({"struct_size 0", [](Call &c) { c.cfg.struct_size = 0; }, RAGG_ERR_INVALID_ARGUMENT,
       {"struct_size"}});
  run({"struct_size too small", [](Call &c) { c.cfg.struct_size = sizeof(size_t); },
       RAGG_ERR_INVALID_ARGUMENT, {"struct_size"}});
  run({"unknown mix", [](Call &c) { c.cfg.mix = (ragg_mix_t)9; }, RAGG_ERR_INVALID_ARGUMENT,
       {"mix"}});
  run({"unknown distances", [](Call &c) { c.cfg.distances = (ragg_distances_t)9; },
       RAGG_ERR_INVALID_ARGUMENT, {"distances"}});
}

TEST_F(BadArguments, RuleParameters) {
  auto with = [&](ragg_rule_t r, const char *what, M m, ragg_status_t st,
                  std::vector<const char *> names) { run({what, m, st, names}, r); };
  const ragg_status_t bad = RAGG_ERR_INVALID_ARGUMENT;
  with(RAGG_RULE_MULTI_KRUM, "m > n-f", [](Call &c) { c.cfg.m = c.n - c.cfg.f + 1; }, bad, {"m"});
  with(RAGG_RULE_MULTI_KRUM, "m < 0", [](Call &c) { c.cfg.m = -1; }, bad, {"m"});
  with(RAGG_RULE_CENTERED_CLIP, "tau = 0", [](Call &c) { c.cfg.tau = 0; }, bad, {"tau"});
  with(RAGG_RULE_CENTERED_CLIP, "tau < 0", [](Call &c) { c.cfg.tau = -1; }, bad, {"tau"});
  with(RAGG_RULE_CENTERED_CLIP, "tau NaN", [](Call &c) { c.cfg.tau = NAN; }, bad, {"tau"});
  with(RAGG_RULE_CENTERED_CLIP, "iters = 0", [](Call &c) { c.cfg.iters = 0; }, bad, {"iters"});
  with(RAGG_RULE_GEOMED, "nu = 0", [](Call &c) { c.cfg.nu = 0; }, bad, {"nu"});
  with(RAGG_RULE_GEOMED, "nu < 0", [](Call &c) { c.cfg.nu = -1e-3; }, bad, {"nu"});
  with(RAGG_RULE_GEOMED, "max_iters = 0", [](Call &c) { c.cfg.max_iters = 0; }, bad,
       {"max_iters"});
  with(RAGG_RULE_GEOMED, "tol < 0", [](Call &c) { c.cfg.tol = -1e-9; }, bad, {"tol"});
  with(RAGG_RULE_BRUTE, "brute_limit = 0", [](Call &c) { c.cfg.brute_limit = 0; }, bad,
       {"brute_limit"});
  with(RAGG_RULE_BRUTE, "C(n,f) > brute_limit", [](Call &c) { c.cfg.brute_limit = 35; },
       RAGG_ERR_UNSUPPORTED, {"brute_limit"});  // C(9, 2) = 36
  with(RAGG_RULE_SMEA, "C(n,f) > brute_limit", [](Call &c) { c.cfg.brute_limit = 35; },
       RAGG_ERR_UNSUPPORTED, {"brute_limit"});
  with(RAGG_RULE_MONNA, "trusted = n", [](Call &c) { c.cfg.trusted = c.n; }, bad, {"trusted"});
  with(RAGG_RULE_MONNA, "trusted < 0", [](Call &c) { c.cfg.trusted = -1; }, bad, {"trusted"});
  with(RAGG_RULE_MEDIAN, "clip_norm with adaptive_clip",
       [](Call &c) { c.cfg.clip_norm = 1.0; c.cfg.adaptive_clip = 1; }, bad,
       {"clip_norm", "adaptive_clip"});
  with(RAGG_RULE_MEDIAN, "clip_norm < 0", [](Call &c) { c.cfg.clip_norm = -1.0; }, bad,
       {"clip_norm"});
  with(RAGG_RULE_MEDIAN, "bucket_size 0",
       [](Call &c) { c.cfg.mix = RAGG_MIX_BUCKETING; c.cfg.bucket_size = 0; }, bad,
       {"bucket_size"});
  with(RAGG_RULE_KRUM, "n too small", [](Call &c) { c.cfg.f = 4; }, RAGG_ERR_TOO_MANY_BYZANTINE,
       {"f"});
}

TEST_F(BadArguments, ErrorClearsAfterSuccess) {
  Call c = base(RAGG_RULE_MEDIAN);
  c.ld = 1;
  EXPECT_EQ(invoke(c), RAGG_ERR_INVALID_ARGUMENT);
  EXPECT_STRNE(ragg_last_error(ctx.ctx), "");
  c = base(RAGG_RULE_MEDIAN);
  EXPECT_EQ(invoke(c), RAGG_SUCCESS) << ctx.last_error();
  EXPECT_STREQ(ragg_last_error(ctx.ctx), "");
}

TEST(Api, StatusStrings) {
  std::set<std::string> seen;
  for (int s = 0; s <= 12; ++s) {
    const char *str = ragg_status_string((ragg_status_t)s);
    ASSERT_NE(str, nullptr) << s;
    EXPECT_GT(std::strlen(str), 0u) << s;
    seen.insert(str);
  }
  EXPECT_EQ(seen.size(), 13u) << "every status has its own string";
  EXPECT_NE(ragg_status_string((ragg_status_t)1234), nullptr);
}

TEST(Api, RuleNamesRoundTrip) {
  const char *names[RAGG_NUM_RULES] = {"mean",   "median", "trimmed_mean",  "meamed",
                                       "krum",   "multi_krum", "bulyan",    "geomed",
                                       "brute",  "centered_clip", "monna",   "caf", "smea"};
  for (int r = 0; r < RAGG_NUM_RULES; ++r) {
    ASSERT_NE(ragg_rule_name((ragg_rule_t)r), nullptr) << r;
    EXPECT_STREQ(ragg_rule_name((ragg_rule_t)r), names[r]);
    ragg_rule_t back = (ragg_rule_t)-1;
    EXPECT_EQ(ragg_rule_from_name(names[r], &back), RAGG_SUCCESS) << names[r];
    EXPECT_EQ(back, (ragg_rule_t)r);
  }
  EXPECT_EQ(ragg_rule_name((ragg_rule_t)RAGG_NUM_RULES), nullptr);
  EXPECT_EQ(ragg_rule_name((ragg_rule_t)-1), nullptr);
  ragg_rule_t r;
  EXPECT_EQ(ragg_rule_from_name("no_such_rule", &r), RAGG_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ragg_rule_from_name("", &r), RAGG_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ragg_rule_from_name(nullptr, &r), RAGG_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ragg_rule_from_name("krum", nullptr), RAGG_ERR_INVALID_ARGUMENT);
}

TEST(Api, Version) {
  EXPECT_EQ(ragg_version(), RAGG_VERSION_CODE);
  EXPECT_EQ(RAGG_VERSION_CODE, RAGG_VERSION_MAJOR * 10000 + RAGG_VERSION_MINOR * 100 +
                                   RAGG_VERSION_PATCH);
}

TEST(Api, ConfigDefaults) {
  for (int r = 0; r < RAGG_NUM_RULES; ++r) {
    const ragg_config_t c = make_config((ragg_rule_t)r, 3);
    EXPECT_EQ(c.struct_size, sizeof(ragg_config_t));
    EXPECT_EQ(c.rule, (ragg_rule_t)r);
    EXPECT_EQ(c.f, 3);
    EXPECT_EQ(c.m, 0);
    EXPECT_EQ(c.clip_norm, 0.0);
    EXPECT_EQ(c.tau, 100.0);
    EXPECT_EQ(c.iters, 1);
    EXPECT_EQ(c.cc_center, nullptr);
    EXPECT_EQ(c.nu, 1e-8);
    EXPECT_EQ(c.max_iters, 1000);
    EXPECT_EQ(c.tol, 1e-12);
    EXPECT_EQ(c.brute_limit, 1000000);
    EXPECT_EQ(c.distances, RAGG_DISTANCES_GRAM);
    EXPECT_EQ(c.trusted, 0);
    EXPECT_EQ(c.adaptive_clip, 0);
    EXPECT_EQ(c.mix, RAGG_MIX_NONE);
    EXPECT_EQ(c.bucket_size, 2);
    EXPECT_EQ(c.seed, 0u);
  }
}

TEST(Api, ContextLifecycle) {
  ragg_context_destroy(nullptr);
  EXPECT_EQ(ragg_context_create(nullptr, RAGG_BACKEND_CPU, 0), RAGG_ERR_INVALID_ARGUMENT);
  ragg_context_t *ctx = nullptr;
  EXPECT_NE(ragg_context_create(&ctx, (ragg_backend_t)7, 0), RAGG_SUCCESS);
  ragg_context_destroy(ctx);
  ctx = nullptr;
  ASSERT_EQ(ragg_context_create(&ctx, RAGG_BACKEND_CPU, 0), RAGG_SUCCESS);
  ASSERT_NE(ctx, nullptr);
  EXPECT_STREQ(ragg_last_error(ctx), "");
  ragg_context_destroy(ctx);
}

TEST(Api, CallerWorkspace) {
  Context ctx;
  Inputs x(RAGG_F32, 11, 37);
  std::mt19937_64 rng(case_seed(9));
  fill_separated(x, rng);
  const auto nnm = [](ragg_config_t c) { return c.mix = RAGG_MIX_NNM, c; };
  const auto buckets = [](ragg_config_t c) {
    return c.mix = RAGG_MIX_BUCKETING, c.bucket_size = 2, c.seed = 3, c;
  };
  for (const ragg_config_t &cfg :
       {make_config(RAGG_RULE_MEDIAN, 2), make_config(RAGG_RULE_MEAMED, 2),
        make_config(RAGG_RULE_MEAN, 0), make_config(RAGG_RULE_KRUM, 2),
        make_config(RAGG_RULE_GEOMED, 2), make_config(RAGG_RULE_BULYAN, 2),
        nnm(make_config(RAGG_RULE_TRIMMED_MEAN, 2)), buckets(make_config(RAGG_RULE_MEAN, 0))})
    for (bool report : {true, false}) {
      SCOPED_TRACE(::testing::Message() << rule_label(cfg.rule) << (cfg.mix ? " mixed" : "")
                                        << (report ? ", report" : ""));
      size_t bytes = 0;
      ASSERT_EQ(ragg_workspace_size(ctx.ctx, &cfg, RAGG_F32, x.n, x.d, &bytes), RAGG_SUCCESS)
          << ctx.last_error();
      std::vector<unsigned char> ws(bytes);  // exactly the size: the sanitizer build sees overruns
      ASSERT_EQ(ragg_context_set_workspace(ctx.ctx, ws.data(), bytes), RAGG_SUCCESS)
          << ctx.last_error();
      const LibRun a = run_library(ctx.ctx, cfg, x, Entry::Contiguous, report);
      ASSERT_EQ(a.status, RAGG_SUCCESS) << a.error;
      ASSERT_EQ(ragg_context_set_workspace(ctx.ctx, nullptr, 0), RAGG_SUCCESS);
      const LibRun b = run_library(ctx.ctx, cfg, x, Entry::Contiguous, report);
      ASSERT_EQ(b.status, RAGG_SUCCESS) << b.error;
      EXPECT_TRUE(same_bits(a, b));
      EXPECT_TRUE(all_close("out", oracle::aggregate(cfg, x.rows()).out, a.out, tol_for(RAGG_F32)));
    }
}

// A coordinate-wise rule needs O(n) bytes of workspace besides its pass; the
// n x n pieces belong to the Gram-space rules, the pre-steps and the mean's
// report (its scores are distances, and ragg_workspace_size sizes for a
// report). Before, a median of 32768 inputs asked for 60 GB.
TEST(Api, WorkspaceOfCoordinateRulesIsLinearInN) {
  Context ctx;
  const int64_t n = 40000;
  for (ragg_rule_t rule : {RAGG_RULE_MEDIAN, RAGG_RULE_TRIMMED_MEAN, RAGG_RULE_MEAMED}) {
    SCOPED_TRACE(rule_label(rule));
    const ragg_config_t cfg = make_config(rule, 100);
    size_t bytes = 0;
    ASSERT_EQ(ragg_workspace_size(ctx.ctx, &cfg, RAGG_F32, n, 3, &bytes), RAGG_SUCCESS)
        << ctx.last_error();
    EXPECT_LE(bytes, (size_t)256 * (size_t)n);
    Inputs x(RAGG_F32, n, 3);
    std::mt19937_64 rng(case_seed(10));
    fill_gaussian(x, rng);
    std::vector<unsigned char> ws(bytes);
    ASSERT_EQ(ragg_context_set_workspace(ctx.ctx, ws.data(), bytes), RAGG_SUCCESS)
        << ctx.last_error();
    const LibRun a = run_library(ctx.ctx, cfg, x);
    ASSERT_EQ(a.status, RAGG_SUCCESS) << a.error;
    EXPECT_TRUE(all_close("out", oracle::aggregate(cfg, x.rows()).out, a.out, tol_for(RAGG_F32)));
    ASSERT_EQ(ragg_context_set_workspace(ctx.ctx, nullptr, 0), RAGG_SUCCESS);
  }
  const ragg_config_t krum = make_config(RAGG_RULE_KRUM, 100);
  size_t bytes = 0;
  ASSERT_EQ(ragg_workspace_size(ctx.ctx, &krum, RAGG_F32, n, 3, &bytes), RAGG_SUCCESS);
  EXPECT_GE(bytes, (size_t)8 * (size_t)n * (size_t)n);  // D: n x n doubles
}

TEST(Api, CudaBackendWorksOrSaysWhy) {
  ragg_context_t *ctx = nullptr;
  const ragg_status_t st = ragg_context_create(&ctx, RAGG_BACKEND_CUDA, 0);
  if (st == RAGG_SUCCESS) {
    ASSERT_NE(ctx, nullptr);
    EXPECT_EQ(ragg_context_set_stream(ctx, nullptr), RAGG_SUCCESS) << ragg_last_error(ctx);
    ragg_context_destroy(ctx);
    return;
  }
  EXPECT_TRUE(st == RAGG_ERR_NO_DEVICE || st == RAGG_ERR_UNSUPPORTED)
      << ragg_status_string(st);
  EXPECT_GT(std::strlen(ragg_status_string(st)), 0u);
  if (ctx) {  // a context that explains itself
    EXPECT_STRNE(ragg_last_error(ctx), "");
    ragg_context_destroy(ctx);
  } else {
    const char *msg = ragg_last_error(nullptr);
    EXPECT_NE(msg, nullptr) << "ragg_last_error(NULL) must still return a string";
  }
}
