// The robust all-reduce and reduce-scatter over MPI, checked against
// ragg_aggregate on the gathered rows in one process: bit-exact for the
// coordinate-wise rules and the mean (and for every rule in replicated mode,
// which runs ragg_aggregate itself), within tolerance(dtype) for the
// Gram-space rules in sharded mode (their Gram sums are added shard by
// shard). Every call runs on every rank, so a failed expectation never
// leaves a rank behind in a collective.
//
// With RAGG_TEST_ENGINE=transport every collective of run_case goes through
// ragg_allreduce_transport / ragg_reduce_scatter_transport instead, with
// callbacks that move bytes over MPI (a caller's transport), and is checked
// against the same reference and, bit for bit, against the MPI engine's
// result for the same call.
#include <climits>
#include <cstdlib>

#include "robustagg_transport.h"
#include "test_mpi_helpers.hh"

using namespace mpi_test;

namespace {

bool transport_engine() {
  const char *e = std::getenv("RAGG_TEST_ENGINE");
  return e && std::string(e) == "transport";
}

// A caller's transport over MPI_COMM_WORLD: byte counts (the test's sizes fit
// in int), MPI_BYTE, no reduction. `calls` counts the callbacks run.
int ints(const size_t *a, int P, std::vector<int> &dst) {
  dst.resize((size_t)P);
  for (int p = 0; p < P; ++p) {
    if (a[p] > (size_t)INT_MAX) return 1;
    dst[(size_t)p] = (int)a[p];
  }
  return 0;
}
struct MpiBytes {
  int calls = 0, fail_at = -1; // fail_at: the callback number that returns 7
  ragg_transport_ops_t ops;
  MpiBytes() {
    ops.rank = rank();
    ops.size = size();
    ops.user = this;
    ops.alltoallv = [](void *u, const void *sbuf, const size_t *sc, const size_t *sd, void *rbuf,
                       const size_t *rc, const size_t *rd) -> int {
      auto *m = (MpiBytes *)u;
      if (m->calls++ == m->fail_at) return 7;
      int P = m->ops.size;
      std::vector<int> a, b, c, d;
      if (ints(sc, P, a) || ints(sd, P, b) || ints(rc, P, c) || ints(rd, P, d)) return 1;
      return MPI_Alltoallv(sbuf, a.data(), b.data(), MPI_BYTE, rbuf, c.data(), d.data(), MPI_BYTE,
                           MPI_COMM_WORLD);
    };
    ops.allgatherv = [](void *u, void *buf, const size_t *cnt, const size_t *dsp) -> int {
      auto *m = (MpiBytes *)u;
      if (m->calls++ == m->fail_at) return 7;
      int P = m->ops.size;
      std::vector<int> a, b;
      if (ints(cnt, P, a) || ints(dsp, P, b)) return 1;
      return MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, a.data(), b.data(), MPI_BYTE,
                            MPI_COMM_WORLD);
    };
  }
};

struct Case {
  ragg_config_t cfg;
  ragg_dtype_t dt = RAGG_F32;
  size_t count = 37; // all-reduce: values per rank; reduce-scatter: recvcount
  ragg_reduce_t reduce = RAGG_REDUCE_MEAN;
  ragg_mode_t mode = RAGG_MODE_SHARDED;
  bool reduce_scatter = false, in_place = false, report = false;
  std::vector<int> hostile; // kind per rank (HONEST where absent)
  uint64_t seed = 1;
  bool expect_finite = false;
  bool compare_values = true; // false: status, finiteness and agreement only
};

std::string describe(const Case &c) {
  std::string s = std::string(c.reduce_scatter ? "reduce_scatter" : "allreduce") + " rule=" +
                  ragg_rule_name(c.cfg.rule) + " f=" + std::to_string(c.cfg.f) +
                  " P=" + std::to_string(size()) + " count=" + std::to_string(c.count) + " " +
                  dtype_name(c.dt) + (c.mode == RAGG_MODE_SHARDED ? " sharded" : " replicated") +
                  (c.reduce == RAGG_REDUCE_SUM ? " sum" : " mean") + (c.in_place ? " in-place" : "") +
                  " seed=" + std::to_string(c.seed);
  if (!c.hostile.empty()) {
    s += " hostile=";
    for (int h : c.hostile) s += std::to_string(h) + ",";
  }
  return s;
}

struct Report {
  std::vector<double> scores, weights;
  std::vector<int32_t> selected;
  std::vector<int64_t> nonfinite;
  ragg_report_t r;
  explicit Report(int P) : scores(P, -7.0), weights(P, -7.0), selected(P, 7), nonfinite(P, 7) {
    r = {P, scores.data(), weights.data(), selected.data(), nonfinite.data()};
  }
};

void compare_reports(const Report &got, const Report &ref, bool exact, const std::string &what) {
  int P = (int)got.scores.size();
  for (int i = 0; i < P; ++i) {
    EXPECT_EQ(got.selected[i], ref.selected[i]) << what << ": report.selected[" << i << "]";
    EXPECT_EQ(got.nonfinite[i], ref.nonfinite[i]) << what << ": report.nonfinite[" << i << "]";
    auto near = [&](double a, double b) {
      if (exact) return std::memcmp(&a, &b, sizeof a) == 0;
      return a == b || std::fabs(a - b) <= 1e-9 + 1e-6 * std::fabs(b);
    };
    EXPECT_TRUE(near(got.scores[i], ref.scores[i]))
        << what << ": report.scores[" << i << "] " << got.scores[i] << " vs " << ref.scores[i];
    EXPECT_TRUE(near(got.weights[i], ref.weights[i]))
        << what << ": report.weights[" << i << "] " << got.weights[i] << " vs " << ref.weights[i];
  }
}

// One collective on every rank, compared with the reference.
void run_case(const Case &c) {
  const int P = size(), r = rank();
  const std::string what = describe(c);
  SCOPED_TRACE(what);
  const size_t es = esize(c.dt);
  const size_t total = c.reduce_scatter ? c.count * (size_t)P : c.count;
  const size_t outn = c.reduce_scatter ? c.count : total;
  auto rows = all_rows(c.seed, P, total, c.dt, c.hostile);
  std::vector<unsigned char> send(rows.begin() + (ptrdiff_t)(r * total * es),
                                  rows.begin() + (ptrdiff_t)((r + 1) * total * es));
  std::vector<unsigned char> out(outn * es + 1, 0xAB);
  const void *sendbuf = send.data();
  void *recvbuf = out.data();
  if (c.in_place) {
    sendbuf = send.data();
    recvbuf = c.reduce_scatter ? send.data() + (size_t)r * c.count * es : send.data();
  }
  Ctx ctx, ref_ctx;
  Report rep(P), ref_rep(P);
  // The MPI engine's result, kept for the transport engine's comparison.
  std::vector<unsigned char> by_mpi;
  ragg_status_t mpi_st = RAGG_SUCCESS;
  auto run_mpi = [&](const void *sb, void *rb, ragg_report_t *rp) {
    return c.reduce_scatter ? ragg_reduce_scatter_mpi_report(ctx.c, &c.cfg, sb, rb, c.count, c.dt,
                                                            c.reduce, MPI_COMM_WORLD, rp)
                            : ragg_allreduce_mpi_report(ctx.c, &c.cfg, sb, rb, c.count, c.dt,
                                                        c.reduce, c.mode, MPI_COMM_WORLD, rp);
  };
  ragg_status_t st;
  if (transport_engine()) {
    by_mpi.assign(outn * es, 0);
    Report mpi_rep(P);
    mpi_st = run_mpi(send.data(), by_mpi.data(), c.report ? &mpi_rep.r : nullptr);
    MpiBytes t;
    ragg_report_t *rp = c.report ? &rep.r : nullptr;
    st = c.reduce_scatter ? ragg_reduce_scatter_transport(ctx.c, &c.cfg, sendbuf, recvbuf, c.count,
                                                          c.dt, c.reduce, &t.ops, rp)
                          : ragg_allreduce_transport(ctx.c, &c.cfg, sendbuf, recvbuf, c.count, c.dt,
                                                     c.reduce, c.mode, &t.ops, rp);
    EXPECT_EQ(st, mpi_st) << what << ": the transport engine and the MPI engine disagree";
  } else {
    st = run_mpi(sendbuf, recvbuf, c.report ? &rep.r : nullptr);
  }
  expect_status_everywhere(st, what);
  const unsigned char *got = (const unsigned char *)recvbuf;
  // The same algorithm on the same bytes: the same bits (the MPI engine adds
  // the Gram sums in rank order too, unless a test sends them through
  // MPI_Reduce).
  if (transport_engine() && st == RAGG_SUCCESS && mpi_st == RAGG_SUCCESS)
    expect_match(c.dt, got, by_mpi.data(), outn, !std::getenv("RAGG_MPI_GATHER_SUM_BYTES"),
                 what + " (transport engine vs MPI engine)");

  std::vector<unsigned char> ref(total * es);
  ragg_status_t rst = ragg_aggregate(ref_ctx.c, &c.cfg, c.dt, rows.data(), P, (int64_t)total,
                                     (int64_t)total, ref.data(), c.report ? &ref_rep.r : nullptr);
  EXPECT_EQ(st, rst) << what << ": " << ragg_last_error(ctx.c) << " | reference: "
                     << ragg_last_error(ref_ctx.c);
  if (st != RAGG_SUCCESS || rst != RAGG_SUCCESS) return;
  if (c.reduce == RAGG_REDUCE_SUM) scale(c.dt, ref.data(), total, P);
  bool exact = c.mode == RAGG_MODE_REPLICATED || is_exact_rule(c.cfg);
  const unsigned char *refp = ref.data() + (c.reduce_scatter ? (size_t)r * c.count * es : 0);
  if (c.compare_values) expect_match(c.dt, got, refp, outn, exact, what);
  if (!c.in_place) {
    EXPECT_EQ(out[outn * es], 0xAB) << what << ": wrote past recvbuf";
  }
  if (c.expect_finite)
    for (size_t k = 0; k < outn; ++k)
      if (!std::isfinite(load(c.dt, got, k))) {
        ADD_FAILURE() << what << ": non-finite value " << load(c.dt, got, k) << " at " << k;
        break;
      }
  if (!c.reduce_scatter) expect_same_everywhere(got, outn * es, what + " result");
  if (c.report && c.compare_values) {
    // the mean's scores come from the Gram pass: exact only when replicated
    bool exact_report = c.mode == RAGG_MODE_REPLICATED ||
                        (is_exact_rule(c.cfg) && c.cfg.rule != RAGG_RULE_MEAN);
    compare_reports(rep, ref_rep, exact_report, what);
    expect_same_everywhere(rep.scores.data(), P * sizeof(double), what + " report.scores");
    expect_same_everywhere(rep.selected.data(), P * sizeof(int32_t), what + " report.selected");
  }
}

Case rule_case(ragg_rule_t rule, int64_t fmax = 2) {
  Case c;
  int64_t f = feasible_f(rule, size(), fmax);
  rule_config(&c.cfg, rule, f < 0 ? fmax : f); // f < 0: refused, on every rank alike
  c.seed = 100 + (uint64_t)rule;
  return c;
}

const ragg_mode_t kModes[] = {RAGG_MODE_SHARDED, RAGG_MODE_REPLICATED};

}  // namespace

TEST(MpiAllreduce, EveryRuleBothModesBothReductions) {
  for (int rule = 0; rule < RAGG_NUM_RULES; ++rule)
    for (ragg_mode_t mode : kModes)
      for (ragg_reduce_t red : {RAGG_REDUCE_MEAN, RAGG_REDUCE_SUM}) {
        Case c = rule_case((ragg_rule_t)rule);
        c.mode = mode;
        c.reduce = red;
        run_case(c);
      }
}

TEST(MpiAllreduce, ReportOnEveryRank) {
  for (int rule = 0; rule < RAGG_NUM_RULES; ++rule)
    for (ragg_mode_t mode : kModes) {
      Case c = rule_case((ragg_rule_t)rule);
      c.mode = mode;
      c.report = true;
      c.hostile = {HONEST, H_NAN}; // nonfinite counts are summed over the shards
      if (c.cfg.f < 1) c.hostile.clear();
      run_case(c);
    }
}

TEST(MpiAllreduce, HalfPrecision) {
  for (ragg_dtype_t dt : {RAGG_F16, RAGG_BF16})
    for (int rule = 0; rule < RAGG_NUM_RULES; ++rule)
      for (ragg_mode_t mode : kModes) {
        Case c = rule_case((ragg_rule_t)rule);
        c.dt = dt;
        c.mode = mode;
        c.reduce = rule % 2 ? RAGG_REDUCE_SUM : RAGG_REDUCE_MEAN;
        run_case(c);
      }
}

TEST(MpiAllreduce, InPlace) {
  for (ragg_rule_t rule : {RAGG_RULE_MEAN, RAGG_RULE_MEDIAN, RAGG_RULE_KRUM, RAGG_RULE_GEOMED,
                           RAGG_RULE_BULYAN, RAGG_RULE_CENTERED_CLIP})
    for (ragg_mode_t mode : kModes) {
      Case c = rule_case(rule);
      c.mode = mode;
      c.in_place = true;
      run_case(c);
      c.reduce_scatter = true;
      c.count = 5;
      run_case(c);
    }
}

TEST(MpiReduceScatter, EveryRule) {
  for (int rule = 0; rule < RAGG_NUM_RULES; ++rule)
    for (ragg_dtype_t dt : {RAGG_F32, RAGG_BF16}) {
      Case c = rule_case((ragg_rule_t)rule);
      c.reduce_scatter = true;
      c.count = 6;
      c.dt = dt;
      c.reduce = rule % 2 ? RAGG_REDUCE_MEAN : RAGG_REDUCE_SUM;
      c.report = rule % 3 == 0;
      run_case(c);
    }
}

TEST(MpiAllreduce, UnevenAndTinyCounts) {
  const size_t P = (size_t)size();
  for (size_t count : {(size_t)1, P - 1, P + 1, 2 * P + 3, (size_t)1000})
    for (ragg_rule_t rule : {RAGG_RULE_MEAN, RAGG_RULE_MEDIAN, RAGG_RULE_TRIMMED_MEAN, RAGG_RULE_KRUM,
                             RAGG_RULE_GEOMED, RAGG_RULE_BULYAN, RAGG_RULE_CENTERED_CLIP})
      for (ragg_mode_t mode : kModes) {
        if (count == 0) continue;
        Case c = rule_case(rule);
        c.count = count;
        c.mode = mode;
        c.report = rule == RAGG_RULE_MEDIAN; // coordinate fractions over every shard
        run_case(c);
      }
}

TEST(MpiAllreduce, PreSteps) {
  for (int pre = 0; pre < 4; ++pre)
    for (ragg_rule_t rule : {RAGG_RULE_MEAN, RAGG_RULE_MEDIAN, RAGG_RULE_MEAMED, RAGG_RULE_KRUM,
                             RAGG_RULE_BULYAN, RAGG_RULE_GEOMED})
      for (ragg_mode_t mode : kModes) {
        Case c = rule_case(rule, 1);
        if (pre == 0) c.cfg.clip_norm = 2.0;
        if (pre == 1) c.cfg.adaptive_clip = 1;
        if (pre == 2) c.cfg.mix = RAGG_MIX_NNM;
        if (pre == 3) {
          c.cfg.mix = RAGG_MIX_BUCKETING;
          c.cfg.bucket_size = 2;
          c.cfg.seed = 42;
          int64_t f = feasible_f(rule, (size() + 1) / 2, 1);
          c.cfg.f = f < 0 ? 1 : f;
        }
        c.mode = mode;
        c.report = pre == 2;
        c.seed += 1000 * (uint64_t)pre;
        // The pre-step's transformed distances are not exactly symmetric, so
        // the exact ties of Bulyan's last rounds (mutual nearest neighbours,
        // k = 1) are broken by rounding: Gram sums added shard by shard may
        // select another set than the single-process reference. Every rank
        // still agrees, which is what is checked.
        c.compare_values = !(rule == RAGG_RULE_BULYAN && mode == RAGG_MODE_SHARDED);
        c.expect_finite = true;
        run_case(c);
      }
}

TEST(MpiAllreduce, CenteredClipAnchor) {
  const int P = size();
  for (bool rs : {false, true})
    for (ragg_mode_t mode : kModes) {
      if (rs && mode == RAGG_MODE_REPLICATED) continue;
      Case c = rule_case(RAGG_RULE_CENTERED_CLIP);
      c.reduce_scatter = rs;
      c.count = rs ? 5 : 29;
      c.mode = mode;
      c.report = true;
      size_t total = rs ? c.count * (size_t)P : c.count;
      auto center = make_row(999, 0, total, c.dt); // the same v_0 on every rank
      c.cfg.cc_center = center.data();
      run_case(c);
    }
}

TEST(MpiAllreduce, HostileRanksNeverPutNaNIntoAResult) {
  const int P = size();
  for (int rule = 1; rule < RAGG_NUM_RULES; ++rule) { // every rule but mean
    int64_t f = feasible_f((ragg_rule_t)rule, P, 3);
    if (f < 1) continue;
    for (int kind = 0; kind < H_KINDS; ++kind)
      for (ragg_dtype_t dt : {RAGG_F32, RAGG_BF16}) {
        Case c = rule_case((ragg_rule_t)rule, 3);
        c.dt = dt;
        c.mode = kind % 2 ? RAGG_MODE_REPLICATED : RAGG_MODE_SHARDED;
        c.reduce = kind % 3 ? RAGG_REDUCE_SUM : RAGG_REDUCE_MEAN;
        c.hostile.assign((size_t)P, HONEST);
        int64_t h = f < P - 1 ? f : P - 1; // at most f hostile ranks, at least one honest
        for (int64_t j = 0; j < h; ++j) // at the front or at the back, mixed kinds
          c.hostile[(size_t)(kind % 2 ? P - 1 - j : j)] = (kind + (int)j) % H_KINDS;
        if (rule == RAGG_RULE_MONNA) // MoNNA's trusted input is honest by definition
          c.cfg.trusted = kind % 2 ? 0 : P - 1;
        c.expect_finite = true;
        c.seed = 7000 + (uint64_t)(rule * 31 + kind);
        run_case(c);
      }
  }
}

TEST(MpiAllreduce, ChunkedTransfersAndReducedGramSums) {
  // Messages of 3 elements force the point-to-point path; a 0-byte gather
  // limit sends the Gram sums through reduce + broadcast.
  setenv("RAGG_MPI_MAX_MSG", "3", 1);
  setenv("RAGG_MPI_GATHER_SUM_BYTES", "0", 1);
  for (ragg_rule_t rule : {RAGG_RULE_MEDIAN, RAGG_RULE_KRUM, RAGG_RULE_GEOMED, RAGG_RULE_MEAN})
    for (ragg_mode_t mode : kModes)
      for (bool rs : {false, true}) {
        if (rs && mode == RAGG_MODE_REPLICATED) continue;
        Case c = rule_case(rule);
        c.mode = mode;
        c.reduce_scatter = rs;
        c.count = rs ? 7 : 53;
        c.report = true;
        run_case(c);
      }
  unsetenv("RAGG_MPI_MAX_MSG");
  unsetenv("RAGG_MPI_GATHER_SUM_BYTES");
}

TEST(MpiAllreduce, RepeatedCallsGiveTheSameBits) {
  const int P = size(), r = rank();
  ragg_config_t cfg;
  rule_config(&cfg, RAGG_RULE_GEOMED, feasible_f(RAGG_RULE_GEOMED, P, 1));
  auto row = make_row(5, r, 101, RAGG_F32);
  std::vector<float> a(101), b(101);
  Ctx ctx;
  EXPECT_EQ(ragg_allreduce_mpi(ctx.c, &cfg, row.data(), a.data(), 101, RAGG_F32, RAGG_REDUCE_MEAN,
                               RAGG_MODE_SHARDED, MPI_COMM_WORLD), RAGG_SUCCESS);
  EXPECT_EQ(ragg_allreduce_mpi(ctx.c, &cfg, row.data(), b.data(), 101, RAGG_F32, RAGG_REDUCE_MEAN,
                               RAGG_MODE_SHARDED, MPI_COMM_WORLD), RAGG_SUCCESS);
  EXPECT_EQ(std::memcmp(a.data(), b.data(), sizeof(float) * 101), 0);
}

TEST(MpiAllreduce, TooFewRanksForFRefusedOnEveryRank) {
  const int P = size();
  for (int check = 0; check < 2; ++check) {
    if (check) setenv("RAGG_CHECK", "1", 1);
    for (ragg_rule_t rule : {RAGG_RULE_KRUM, RAGG_RULE_MEDIAN, RAGG_RULE_BULYAN}) {
      ragg_config_t cfg;
      ragg_config_init(&cfg, rule, P); // needs more than P inputs
      std::vector<float> x(10, 1.0f), y(10);
      Ctx ctx;
      ragg_status_t st = ragg_allreduce_mpi(ctx.c, &cfg, x.data(), y.data(), 10, RAGG_F32,
                                            RAGG_REDUCE_SUM, RAGG_MODE_SHARDED, MPI_COMM_WORLD);
      EXPECT_EQ(st, RAGG_ERR_TOO_MANY_BYZANTINE) << ragg_last_error(ctx.c);
      std::string msg = ragg_last_error(ctx.c);
      EXPECT_NE(msg.find("ragg_allreduce_mpi"), std::string::npos) << msg;
      EXPECT_NE(msg.find("n = P = " + std::to_string(P)), std::string::npos) << msg;
      std::vector<float> z(10 * (size_t)P, 1.0f);
      st = ragg_reduce_scatter_mpi(ctx.c, &cfg, z.data(), y.data(), 10, RAGG_F32, RAGG_REDUCE_SUM,
                                   MPI_COMM_WORLD);
      EXPECT_EQ(st, RAGG_ERR_TOO_MANY_BYZANTINE) << ragg_last_error(ctx.c);
    }
    unsetenv("RAGG_CHECK");
  }
}

TEST(MpiAllreduce, InvalidArgumentsRefused) {
  const int P = size();
  std::vector<float> x(8, 1.0f), y(8);
  ragg_config_t cfg;
  ragg_config_init(&cfg, RAGG_RULE_MEAN, 0);
  Ctx ctx;
  EXPECT_EQ(ragg_allreduce_mpi(ctx.c, nullptr, x.data(), y.data(), 8, RAGG_F32, RAGG_REDUCE_MEAN,
                               RAGG_MODE_SHARDED, MPI_COMM_WORLD), RAGG_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ragg_allreduce_mpi(nullptr, &cfg, x.data(), y.data(), 8, RAGG_F32, RAGG_REDUCE_MEAN,
                               RAGG_MODE_SHARDED, MPI_COMM_WORLD), RAGG_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ragg_allreduce_mpi(ctx.c, &cfg, x.data(), y.data(), 8, (ragg_dtype_t)3, RAGG_REDUCE_MEAN,
                               RAGG_MODE_SHARDED, MPI_COMM_WORLD), RAGG_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ragg_allreduce_mpi(ctx.c, &cfg, x.data(), y.data(), 8, RAGG_F32, (ragg_reduce_t)5,
                               RAGG_MODE_SHARDED, MPI_COMM_WORLD), RAGG_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ragg_allreduce_mpi(ctx.c, &cfg, x.data(), y.data(), 8, RAGG_F32, RAGG_REDUCE_MEAN,
                               (ragg_mode_t)9, MPI_COMM_WORLD), RAGG_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ragg_allreduce_mpi(ctx.c, &cfg, x.data(), nullptr, 8, RAGG_F32, RAGG_REDUCE_MEAN,
                               RAGG_MODE_SHARDED, MPI_COMM_WORLD), RAGG_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ragg_allreduce_mpi(ctx.c, &cfg, x.data(), y.data(), 8, RAGG_F32, RAGG_REDUCE_MEAN,
                               RAGG_MODE_SHARDED, MPI_COMM_NULL), RAGG_ERR_INVALID_ARGUMENT);
  Report small(P > 1 ? P - 1 : 0);
  small.r.capacity = P - 1;
  EXPECT_EQ(ragg_allreduce_mpi_report(ctx.c, &cfg, x.data(), y.data(), 8, RAGG_F32, RAGG_REDUCE_MEAN,
                                      RAGG_MODE_SHARDED, MPI_COMM_WORLD, &small.r),
            RAGG_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(ragg_last_error(ctx.c)).find("capacity"), std::string::npos);
  // count 0 is a no-op, as in MPI
  EXPECT_EQ(ragg_allreduce_mpi(ctx.c, &cfg, nullptr, nullptr, 0, RAGG_F32, RAGG_REDUCE_MEAN,
                               RAGG_MODE_SHARDED, MPI_COMM_WORLD), RAGG_SUCCESS);
}

// RAGG_CHECK=1: a mismatch fails on every rank with a message naming it.
TEST(MpiCheck, MismatchDetectedOnEveryRank) {
  const int P = size(), r = rank();
  setenv("RAGG_CHECK", "1", 1);
  Ctx ctx;
  std::vector<float> x(64, 1.0f), y(64);
  std::vector<Report> reps;
  auto call = [&](size_t count, ragg_dtype_t dt, ragg_mode_t mode, const ragg_config_t &cfg,
                  ragg_report_t *rep, void *recv) {
    return ragg_allreduce_mpi_report(ctx.c, &cfg, x.data(), recv, count, dt, RAGG_REDUCE_SUM, mode,
                                     MPI_COMM_WORLD, rep);
  };
  ragg_config_t cfg, other;
  ragg_config_init(&cfg, RAGG_RULE_MEDIAN, 0);
  other = cfg;
  other.f = 0;
  other.clip_norm = 3.0;
  Report rep(P);
  struct {
    const char *field;
    ragg_status_t st;
  } cases[] = {{"count", RAGG_ERR_MISMATCH},  {"dtype", RAGG_ERR_MISMATCH},
               {"mode", RAGG_ERR_MISMATCH},   {"configuration", RAGG_ERR_MISMATCH},
               {"report", RAGG_ERR_MISMATCH}, {"rejected", RAGG_ERR_INVALID_ARGUMENT},
               {"", RAGG_SUCCESS}};
  for (int i = 0; i < 7; ++i) {
    bool odd = r == P - 1; // the last rank disagrees
    ragg_status_t st;
    switch (i) {
      case 0: st = call(odd ? 63 : 64, RAGG_F32, RAGG_MODE_SHARDED, cfg, nullptr, y.data()); break;
      case 1: st = call(32, odd ? RAGG_BF16 : RAGG_F32, RAGG_MODE_SHARDED, cfg, nullptr, y.data()); break;
      case 2:
        st = call(64, RAGG_F32, odd ? RAGG_MODE_REPLICATED : RAGG_MODE_SHARDED, cfg, nullptr, y.data());
        break;
      case 3: st = call(64, RAGG_F32, RAGG_MODE_SHARDED, odd ? other : cfg, nullptr, y.data()); break;
      case 4: st = call(64, RAGG_F32, RAGG_MODE_SHARDED, cfg, odd ? &rep.r : nullptr, y.data()); break;
      case 5: st = call(64, RAGG_F32, RAGG_MODE_SHARDED, cfg, nullptr, odd ? nullptr : y.data()); break;
      default: st = call(64, RAGG_F32, RAGG_MODE_SHARDED, cfg, nullptr, y.data()); break;
    }
    std::string msg = ragg_last_error(ctx.c);
    EXPECT_EQ(st, cases[i].st) << cases[i].field << ": " << msg;
    // the rank that rejected its arguments keeps its own message
    const char *field = i == 5 && odd ? "recvbuf is NULL" : cases[i].field;
    EXPECT_NE(msg.find(field), std::string::npos) << msg;
    if (i < 5) {
      EXPECT_NE(msg.find("RAGG_CHECK"), std::string::npos) << msg;
    }
    expect_status_everywhere(st, cases[i].field);
  }
  unsetenv("RAGG_CHECK");
}

// A caller's transport: local argument checks before any callback, a failing
// callback reported on every rank, and RAGG_CHECK through the callbacks.
TEST(TransportOps, InvalidOpsRefusedBeforeAnyCallback) {
  const int P = size();
  std::vector<float> x(8, 1.0f), y(8);
  ragg_config_t cfg;
  ragg_config_init(&cfg, RAGG_RULE_MEDIAN, 0);
  Ctx ctx;
  MpiBytes t;
  auto call = [&](const ragg_transport_ops_t *ops) {
    return ragg_allreduce_transport(ctx.c, &cfg, x.data(), y.data(), 8, RAGG_F32, RAGG_REDUCE_MEAN,
                                    RAGG_MODE_SHARDED, ops, nullptr);
  };
  EXPECT_EQ(call(nullptr), RAGG_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(ragg_last_error(ctx.c)).find("ops is NULL"), std::string::npos);
  ragg_transport_ops_t bad = t.ops;
  bad.allgatherv = nullptr;
  EXPECT_EQ(call(&bad), RAGG_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(ragg_last_error(ctx.c)).find("ops->allgatherv is NULL"), std::string::npos);
  bad = t.ops;
  bad.size = 0;
  EXPECT_EQ(call(&bad), RAGG_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(ragg_last_error(ctx.c)).find("ops->size = 0"), std::string::npos);
  bad = t.ops;
  bad.rank = P;
  EXPECT_EQ(call(&bad), RAGG_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(ragg_last_error(ctx.c)).find("outside [0, " + std::to_string(P) + ")"),
            std::string::npos)
      << ragg_last_error(ctx.c);
  EXPECT_EQ(ragg_allreduce_transport(nullptr, &cfg, x.data(), y.data(), 8, RAGG_F32,
                                     RAGG_REDUCE_MEAN, RAGG_MODE_SHARDED, &t.ops, nullptr),
            RAGG_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(t.calls, 0) << "a callback ran for a call refused locally";
  // refused by the configuration with n = P, before any callback
  ragg_config_t krum;
  ragg_config_init(&krum, RAGG_RULE_KRUM, P);
  EXPECT_EQ(ragg_allreduce_transport(ctx.c, &krum, x.data(), y.data(), 8, RAGG_F32,
                                     RAGG_REDUCE_MEAN, RAGG_MODE_SHARDED, &t.ops, nullptr),
            RAGG_ERR_TOO_MANY_BYZANTINE);
  EXPECT_NE(std::string(ragg_last_error(ctx.c)).find("ragg_allreduce_transport"), std::string::npos);
  EXPECT_EQ(t.calls, 0);
}

TEST(TransportOps, FailingCallbackReportedOnEveryRank) {
  const int P = size(), r = rank();
  ragg_config_t cfg;
  rule_config(&cfg, RAGG_RULE_KRUM, feasible_f(RAGG_RULE_KRUM, P, 1));
  if (feasible_f(RAGG_RULE_KRUM, P, 1) < 0) ragg_config_init(&cfg, RAGG_RULE_GEOMED, 0);
  auto row = make_row(11, r, 40, RAGG_F32);
  std::vector<float> y(40);
  Ctx ctx;
  // Fail at the first callback (the all-to-all), then at the second (the
  // Gram sums' gather), then at the third (the all-gather of the result):
  // every rank fails at the same step, so none waits for another.
  for (int at = 0; at < 3; ++at) {
    MpiBytes t;
    t.fail_at = at;
    ragg_status_t st = ragg_allreduce_transport(ctx.c, &cfg, row.data(), y.data(), 40, RAGG_F32,
                                                RAGG_REDUCE_MEAN, RAGG_MODE_SHARDED, &t.ops, nullptr);
    if (P == 1 && at > 0) continue; // one rank: no Gram sums to gather
    EXPECT_EQ(st, RAGG_ERR_TRANSPORT) << "fail_at " << at << ": " << ragg_last_error(ctx.c);
    std::string msg = ragg_last_error(ctx.c);
    EXPECT_NE(msg.find(at == 0 ? "alltoallv callback returned 7" : "allgatherv callback returned 7"),
              std::string::npos)
        << msg;
    EXPECT_NE(msg.find("ragg_allreduce_transport"), std::string::npos) << msg;
  }
}

TEST(TransportOps, MismatchDetectedThroughTheCallbacks) {
  const int P = size(), r = rank();
  setenv("RAGG_CHECK", "1", 1);
  ragg_config_t cfg;
  ragg_config_init(&cfg, RAGG_RULE_MEDIAN, 0);
  std::vector<float> x(64, 1.0f), y(64);
  Ctx ctx;
  MpiBytes t;
  size_t count = r == P - 1 && P > 1 ? 63 : 64;
  ragg_status_t st = ragg_allreduce_transport(ctx.c, &cfg, x.data(), y.data(), count, RAGG_F32,
                                              RAGG_REDUCE_SUM, RAGG_MODE_SHARDED, &t.ops, nullptr);
  EXPECT_EQ(st, P > 1 ? RAGG_ERR_MISMATCH : RAGG_SUCCESS) << ragg_last_error(ctx.c);
  if (P > 1) {
    EXPECT_NE(std::string(ragg_last_error(ctx.c)).find("count"), std::string::npos);
  }
  st = ragg_allreduce_transport(ctx.c, &cfg, x.data(), y.data(), 64, RAGG_F32, RAGG_REDUCE_SUM,
                                RAGG_MODE_SHARDED, &t.ops, nullptr);
  EXPECT_EQ(st, RAGG_SUCCESS) << ragg_last_error(ctx.c);
  for (float v : y) EXPECT_EQ(v, (float)P);
  unsetenv("RAGG_CHECK");
}
