// The distributed algorithm's device path (dist.c on CUDA contexts) with
// P > 1 ranks on one GPU: each rank is a thread with its own CUDA context and
// stream, and an in-process transport moves the bytes with device copies.
// This checks what NCCL would run (both paths, every rule, uneven counts,
// in place, fp16/bf16, sum, reduce-scatter, reports, RAGG_CHECK) where NCCL
// itself cannot put several ranks on one device. Skips without a device.
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "test_nccl_helpers.hh"
extern "C" {
#include "dist_device.h"
#include "transport.h"
}

using namespace ragg_nccl_test;

namespace {

class Barrier {
 public:
  explicit Barrier(int n) : n_(n) {}
  void wait() {
    std::unique_lock<std::mutex> lk(m_);
    int gen = gen_;
    if (++count_ == n_) {
      count_ = 0;
      ++gen_;
      cv_.notify_all();
    } else if (!cv_.wait_for(lk, std::chrono::seconds(120), [&] { return gen != gen_; })) {
      // a rank left the collective early: fail loudly instead of hanging
      fprintf(stderr, "test_nccl_algorithm: a rank waited 120 s at a collective; aborting\n");
      std::_Exit(3);
    }
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  int n_, count_ = 0, gen_ = 0;
};

struct Shared {
  explicit Shared(int P) : P(P), bar(P), ptr(P), displ(P) {}
  int P;
  Barrier bar;
  std::vector<const void *> ptr;
  std::vector<const size_t *> displ;
};

struct Engine {
  Shared *sh;
  cudaStream_t stream;
};

Engine *eng(ragg_transport_t *t) { return (Engine *)t->engine; }
void sync(ragg_transport_t *t) { cudaStreamSynchronize(eng(t)->stream); }

ragg_status_t t_alltoallv(ragg_transport_t *t, const void *sbuf, const size_t *, const size_t *sdispl,
                          void *rbuf, const size_t *rcount, const size_t *rdispl, size_t es) {
  Shared *sh = eng(t)->sh;
  int r = t->rank;
  sh->ptr[r] = sbuf;
  sh->displ[r] = sdispl;
  sync(t);
  sh->bar.wait();
  for (int p = 0; p < t->size; ++p)
    if (rcount[p])
      cudaMemcpyAsync((char *)rbuf + rdispl[p] * es, (const char *)sh->ptr[p] + sh->displ[p][r] * es,
                      rcount[p] * es, cudaMemcpyDeviceToDevice, eng(t)->stream);
  sync(t);
  sh->bar.wait();
  return RAGG_SUCCESS;
}

ragg_status_t gather(ragg_transport_t *t, void *buf, const size_t *count, const size_t *displ, size_t es,
                     bool host) {
  Shared *sh = eng(t)->sh;
  sh->ptr[t->rank] = buf;
  sync(t);
  sh->bar.wait();
  for (int p = 0; p < t->size; ++p) {
    if (p == t->rank || !count[p]) continue;
    char *dst = (char *)buf + displ[p] * es;
    const char *src = (const char *)sh->ptr[p] + displ[p] * es;
    if (host)
      memcpy(dst, src, count[p] * es);
    else
      cudaMemcpyAsync(dst, src, count[p] * es, cudaMemcpyDeviceToDevice, eng(t)->stream);
  }
  sync(t);
  sh->bar.wait();
  return RAGG_SUCCESS;
}
ragg_status_t t_allgatherv(ragg_transport_t *t, void *buf, const size_t *count, const size_t *displ,
                           size_t es) {
  return gather(t, buf, count, displ, es, false);
}
ragg_status_t t_allgatherv_host(ragg_transport_t *t, void *buf, const size_t *count, const size_t *displ,
                                size_t es) {
  return gather(t, buf, count, displ, es, true);
}
ragg_status_t t_allreduce_sum_f64(ragg_transport_t *t, double *buf, size_t n) {
  int P = t->size;
  double *all = nullptr;
  cudaMalloc(&all, sizeof(double) * P * n);
  std::vector<size_t> cnt(P, n), displ(P);
  for (int p = 0; p < P; ++p) displ[p] = p * n;
  cudaMemcpyAsync(all + t->rank * n, buf, sizeof(double) * n, cudaMemcpyDeviceToDevice, eng(t)->stream);
  gather(t, all, cnt.data(), displ.data(), sizeof(double), false);
  ragg_status_t st = ragg_dist_cuda_sum_ranks(t, all, P, n, buf);
  sync(t);
  cudaFree(all);
  return st;
}

struct Call {
  ragg_coll_kind_t kind = RAGG_COLL_ALLREDUCE;
  ragg_dtype_t dt = RAGG_F32;
  size_t count = 1000;  // all-reduce: values per rank; reduce-scatter: recvcount
  ragg_reduce_t reduce = RAGG_REDUCE_MEAN;
  ragg_mode_t mode = RAGG_MODE_SHARDED;
  bool in_place = false, report = false, check = false;
  std::vector<size_t> count_of_rank;  // RAGG_CHECK: a different count on some rank
  int hostile = -1;                     // this rank's row is NaN / Inf / huge
};

struct Result {
  std::vector<ragg_status_t> st;
  std::vector<std::string> msg;
  std::vector<std::vector<uint8_t>> out;             // per rank
  std::vector<std::vector<double>> scores, weights;  // per rank (report)
  std::vector<std::vector<int32_t>> selected;
  std::vector<std::vector<int64_t>> nonfinite;
  std::vector<uint8_t> rows;                         // the P inputs, stacked
};

Result run(int P, const ragg_config_t &cfg, const Call &c) {
  Shared sh(P);
  Result R;
  R.st.resize(P);
  R.msg.resize(P);
  R.out.resize(P);
  R.scores.resize(P);
  R.weights.resize(P);
  R.selected.resize(P);
  R.nonfinite.resize(P);
  size_t es = esize(c.dt);
  size_t total = c.kind == RAGG_COLL_ALLREDUCE ? c.count : c.count * P;
  std::vector<std::vector<uint8_t>> rows(P);
  for (int p = 0; p < P; ++p) {
    rows[p] = make_row(c.dt, total, p, 7);
    if (p == c.hostile)
      for (size_t k = 0; k < total; ++k)
        ragg_store(c.dt, rows[p].data(), (int64_t)k, k % 3 == 0 ? NAN : k % 3 == 1 ? INFINITY : 1e30);
    R.rows.insert(R.rows.end(), rows[p].begin(), rows[p].end());
  }
  auto body = [&](int r) {
    ragg_context_t *ctx = nullptr;
    ragg_context_create(&ctx, RAGG_BACKEND_CUDA, 0);
    cudaStream_t stream;
    cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
    ragg_context_set_stream(ctx, stream);
    Engine e{&sh, stream};
    ragg_transport_t t;
    memset(&t, 0, sizeof(t));
    t.rank = r;
    t.size = P;
    t.ctx = ctx;
    t.fn = "test_collective";
    t.engine = &e;
    t.alltoallv = t_alltoallv;
    t.allgatherv = t_allgatherv;
    t.allreduce_sum_f64 = t_allreduce_sum_f64;
    t.dev = &ragg_dist_cuda_ops;
    t.stream = stream;
    t.allgatherv_host = t_allgatherv_host;
    size_t count = c.count_of_rank.empty() ? c.count : c.count_of_rank[r];
    size_t olen = c.kind == RAGG_COLL_ALLREDUCE ? count : count;
    char *send = (char *)to_device(rows[r].data(), total * es);
    char *recv = c.in_place ? (c.kind == RAGG_COLL_ALLREDUCE ? send : send + (size_t)r * c.count * es)
                            : (char *)to_device(nullptr, 0);
    if (!c.in_place) {
      cudaFree(recv);
      cudaMalloc(&recv, olen * es + 1);
    }
    double *sc = nullptr, *w = nullptr;
    int32_t *sel = nullptr;
    int64_t *nf = nullptr;
    ragg_report_t rep{P, nullptr, nullptr, nullptr, nullptr};
    if (c.report) {
      cudaMalloc(&sc, sizeof(double) * P);
      cudaMalloc(&w, sizeof(double) * P);
      cudaMalloc(&sel, sizeof(int32_t) * P);
      cudaMalloc(&nf, sizeof(int64_t) * P);
      cudaMemset(w, 0, sizeof(double) * P);
      rep = ragg_report_t{P, sc, w, sel, nf};
    }
    ragg_coll_t coll{c.kind, c.dt, send, recv, count, c.reduce, c.mode, c.report ? &rep : nullptr,
                     c.check ? 1 : 0};
    R.st[r] = ragg_dist_run(ctx, &cfg, &coll, &t);
    R.msg[r] = ragg_last_error(ctx);
    cudaStreamSynchronize(stream);
    R.out[r] = to_host(recv, olen * es);
    if (c.report) {
      R.scores[r].resize(P);
      R.weights[r].resize(P);
      R.selected[r].resize(P);
      R.nonfinite[r].resize(P);
      cudaMemcpy(R.scores[r].data(), sc, sizeof(double) * P, cudaMemcpyDeviceToHost);
      cudaMemcpy(R.weights[r].data(), w, sizeof(double) * P, cudaMemcpyDeviceToHost);
      cudaMemcpy(R.selected[r].data(), sel, sizeof(int32_t) * P, cudaMemcpyDeviceToHost);
      cudaMemcpy(R.nonfinite[r].data(), nf, sizeof(int64_t) * P, cudaMemcpyDeviceToHost);
      cudaFree(sc);
      cudaFree(w);
      cudaFree(sel);
      cudaFree(nf);
    }
    if (!c.in_place) cudaFree(recv);
    cudaFree(send);
    ragg_context_destroy(ctx);
    cudaStreamDestroy(stream);
  };
  std::vector<std::thread> th;
  for (int r = 0; r < P; ++r) th.emplace_back(body, r);
  for (auto &x : th) x.join();
  return R;
}

// ragg_aggregate on the P stacked rows in one context: the reference.
std::vector<uint8_t> reference(int P, const ragg_config_t &cfg, ragg_dtype_t dt, const std::vector<uint8_t> &rows,
                               ragg_report_t *host_report = nullptr) {
  size_t es = esize(dt), total = rows.size() / es / P;
  ragg_context_t *ctx = nullptr;
  ragg_context_create(&ctx, RAGG_BACKEND_CUDA, 0);
  void *x = to_device(rows.data(), rows.size());
  void *out = to_device(nullptr, total * es);
  double *sc = nullptr, *w = nullptr;
  int32_t *sel = nullptr;
  int64_t *nf = nullptr;
  ragg_report_t rep{P, nullptr, nullptr, nullptr, nullptr};
  if (host_report) {
    cudaMalloc(&sc, sizeof(double) * P);
    cudaMalloc(&w, sizeof(double) * P);
    cudaMalloc(&sel, sizeof(int32_t) * P);
    cudaMalloc(&nf, sizeof(int64_t) * P);
    cudaMemset(w, 0, sizeof(double) * P);
    rep = ragg_report_t{P, sc, w, sel, nf};
  }
  ragg_status_t st = ragg_aggregate(ctx, &cfg, dt, x, P, (int64_t)total, (int64_t)total, out,
                                    host_report ? &rep : nullptr);
  EXPECT_EQ(st, RAGG_SUCCESS) << ragg_last_error(ctx);
  cudaDeviceSynchronize();
  std::vector<uint8_t> h = to_host(out, total * es);
  if (host_report) {
    cudaMemcpy(host_report->scores, sc, sizeof(double) * P, cudaMemcpyDeviceToHost);
    cudaMemcpy(host_report->weights, w, sizeof(double) * P, cudaMemcpyDeviceToHost);
    cudaMemcpy(host_report->selected, sel, sizeof(int32_t) * P, cudaMemcpyDeviceToHost);
    cudaMemcpy(host_report->nonfinite, nf, sizeof(int64_t) * P, cudaMemcpyDeviceToHost);
    cudaFree(sc);
    cudaFree(w);
    cudaFree(sel);
    cudaFree(nf);
  }
  cudaFree(x);
  cudaFree(out);
  ragg_context_destroy(ctx);
  return h;
}

// The largest f the rule accepts with P inputs, and below P/2 (mean and
// centered clipping accept any f).
int64_t largest_f(ragg_rule_t rule, int P) {
  int64_t f = 0;
  while (2 * (f + 1) < P && ragg_rule_min_inputs(rule, f + 1) <= P) ++f;
  return f;
}

// Whether the sharded algorithm reads distances: then the Gram sums are
// added shard by shard, in another order than in one ragg_aggregate call.
bool sums_gram_by_shard(const ragg_config_t &cfg, const Call &c) {
  bool pre = cfg.clip_norm > 0 || cfg.adaptive_clip || cfg.mix != RAGG_MIX_NONE;
  bool coordinate = cfg.rule == RAGG_RULE_MEDIAN || cfg.rule == RAGG_RULE_TRIMMED_MEAN ||
                    cfg.rule == RAGG_RULE_MEAMED || cfg.rule == RAGG_RULE_MEAN;
  return c.mode == RAGG_MODE_SHARDED && !c.report && (pre || !coordinate);
}

// Every rank succeeds with the same bits, equal to the reference: bit for
// bit, except the mean's shards (within rounding) and the sharded calls that
// read distances (within the per-dtype tolerance of the MPI suites).
void expect_matches(int P, const ragg_config_t &cfg, const Call &c, const Result &R, const std::string &what) {
  for (int r = 0; r < P; ++r) ASSERT_EQ(R.st[r], RAGG_SUCCESS) << what << " rank " << r << ": " << R.msg[r];
  for (int r = 1; r < P; ++r) {
    if (c.kind == RAGG_COLL_ALLREDUCE) {
      EXPECT_TRUE(R.out[r] == R.out[0]) << what << ": rank " << r << " differs";
    }
  }
  std::vector<uint8_t> full = reference(P, cfg, c.dt, R.rows);
  if (c.reduce == RAGG_REDUCE_SUM) full = times(c.dt, full, P);
  size_t es = esize(c.dt);
  for (int r = 0; r < P; ++r) {
    std::vector<uint8_t> want = full;
    if (c.kind == RAGG_COLL_REDUCE_SCATTER)
      want.assign(full.begin() + r * c.count * es, full.begin() + (r + 1) * c.count * es);
    if (sums_gram_by_shard(cfg, c))
      EXPECT_LE(max_rel_diff(c.dt, R.out[r], want), c.dt == RAGG_F32 ? 1e-4 : c.dt == RAGG_F16 ? 4e-3 : 1.6e-2)
          << what << " rank " << r;
    else if (cfg.rule == RAGG_RULE_MEAN)
      EXPECT_LE(max_rel_diff(c.dt, R.out[r], want), c.dt == RAGG_F32 ? 1e-6 : 1e-2) << what << " rank " << r;
    else
      EXPECT_TRUE(R.out[r] == want) << what << " rank " << r << ": differs from ragg_aggregate (max rel "
                                    << max_rel_diff(c.dt, R.out[r], want) << ")";
  }
}

const ragg_rule_t kAllRules[] = {RAGG_RULE_MEAN,  RAGG_RULE_MEDIAN, RAGG_RULE_TRIMMED_MEAN, RAGG_RULE_MEAMED,
                                 RAGG_RULE_KRUM,  RAGG_RULE_MULTI_KRUM, RAGG_RULE_BULYAN, RAGG_RULE_GEOMED,
                                 RAGG_RULE_BRUTE, RAGG_RULE_CENTERED_CLIP, RAGG_RULE_MONNA, RAGG_RULE_CAF,
                                 RAGG_RULE_SMEA};

}  // namespace

TEST(NcclAlgorithm, EveryRuleBothModesMatchesAggregateOnEveryRank) {
  RAGG_REQUIRE_DEVICE();
  for (int P : {2, 3, 5, 7})
    for (ragg_rule_t rule : kAllRules) {
      if (ragg_rule_min_inputs(rule, 0) > P) continue;
      ragg_config_t cfg;
      ragg_config_init(&cfg, rule, largest_f(rule, P));
      for (ragg_mode_t mode : {RAGG_MODE_SHARDED, RAGG_MODE_REPLICATED}) {
        Call c;
        c.mode = mode;
        c.count = 1003;  // not divisible by P
        std::string what = std::string(ragg_rule_name(rule)) + " P=" + std::to_string(P) +
                           (mode == RAGG_MODE_SHARDED ? " sharded" : " replicated");
        expect_matches(P, cfg, c, run(P, cfg, c), what);
      }
    }
}

TEST(NcclAlgorithm, DtypesSumInPlaceAndTinyCounts) {
  RAGG_REQUIRE_DEVICE();
  for (ragg_rule_t rule : {RAGG_RULE_TRIMMED_MEAN, RAGG_RULE_MEDIAN, RAGG_RULE_MEAN, RAGG_RULE_KRUM})
    for (ragg_dtype_t dt : {RAGG_F32, RAGG_F16, RAGG_BF16})
      for (size_t count : {(size_t)2, (size_t)4096, (size_t)5001})
        for (bool in_place : {false, true}) {
          int P = 5;
          ragg_config_t cfg;
          ragg_config_init(&cfg, rule, 1);
          Call c;
          c.dt = dt;
          c.count = count;
          c.in_place = in_place;
          c.reduce = count == 4096 ? RAGG_REDUCE_MEAN : RAGG_REDUCE_SUM;
          std::string what = std::string(ragg_rule_name(rule)) + " " + dtype_name(dt) + " count=" +
                             std::to_string(count) + (in_place ? " in place" : "");
          expect_matches(P, cfg, c, run(P, cfg, c), what);
        }
}

TEST(NcclAlgorithm, ReduceScatterEveryPath) {
  RAGG_REQUIRE_DEVICE();
  for (ragg_rule_t rule : {RAGG_RULE_MEDIAN, RAGG_RULE_MEAMED, RAGG_RULE_GEOMED, RAGG_RULE_BULYAN})
    for (bool in_place : {false, true})
      for (ragg_reduce_t reduce : {RAGG_REDUCE_MEAN, RAGG_REDUCE_SUM}) {
        int P = 7;
        ragg_config_t cfg;
        ragg_config_init(&cfg, rule, 1);
        Call c;
        c.kind = RAGG_COLL_REDUCE_SCATTER;
        c.count = 301;
        c.in_place = in_place;
        c.reduce = reduce;
        c.dt = rule == RAGG_RULE_GEOMED ? RAGG_F32 : RAGG_BF16;
        expect_matches(P, cfg, c, run(P, cfg, c),
                       std::string("reduce-scatter ") + ragg_rule_name(rule) + (in_place ? " in place" : ""));
      }
}

TEST(NcclAlgorithm, EveryCallWithoutAReportRunsSharded) {
  RAGG_REQUIRE_DEVICE();
  ragg_config_t cfg;
  ragg_config_init(&cfg, RAGG_RULE_MEDIAN, 1);
  cfg.clip_norm = 5.0;
  Call c;
  ragg_coll_t probe{};
  probe.mode = RAGG_MODE_SHARDED;
  EXPECT_EQ(ragg_dist_device_sharded(&probe), 1);
  ragg_report_t rep{5, nullptr, nullptr, nullptr, nullptr};
  probe.report = &rep;
  EXPECT_EQ(ragg_dist_device_sharded(&probe), 0);
  probe.report = nullptr;
  probe.mode = RAGG_MODE_REPLICATED;
  EXPECT_EQ(ragg_dist_device_sharded(&probe), 0);
  expect_matches(5, cfg, c, run(5, cfg, c), "median with clip_norm");
  ragg_config_init(&cfg, RAGG_RULE_TRIMMED_MEAN, 1);
  cfg.mix = RAGG_MIX_NNM;
  expect_matches(5, cfg, c, run(5, cfg, c), "trimmed_mean with NNM");
  ragg_config_init(&cfg, RAGG_RULE_KRUM, 1);
  cfg.adaptive_clip = 1;
  expect_matches(5, cfg, c, run(5, cfg, c), "krum with ARC");
  ragg_config_init(&cfg, RAGG_RULE_BULYAN, 1);
  cfg.mix = RAGG_MIX_BUCKETING;
  cfg.bucket_size = 1;
  expect_matches(7, cfg, c, run(7, cfg, c), "bulyan with bucketing");
  // centered clipping around a given centre: its shard is the anchor row
  ragg_config_init(&cfg, RAGG_RULE_CENTERED_CLIP, 1);
  std::vector<uint8_t> centre = make_row(c.dt, c.count, 9, 3);
  void *dcentre = to_device(centre.data(), centre.size());
  cfg.cc_center = dcentre;
  cfg.tau = 0.5;
  expect_matches(5, cfg, c, run(5, cfg, c), "centered_clip around cc_center");
  cudaFree(dcentre);
  // more ranks than values: the empty shards still add their zeros
  ragg_config_init(&cfg, RAGG_RULE_GEOMED, 1);
  c.count = 3;
  expect_matches(7, cfg, c, run(7, cfg, c), "geomed with count < P");
}

TEST(NcclAlgorithm, ReportIsTheAggregatesOnEveryRank) {
  RAGG_REQUIRE_DEVICE();
  for (ragg_rule_t rule : {RAGG_RULE_KRUM, RAGG_RULE_MEDIAN}) {
    int P = 5;
    ragg_config_t cfg;
    ragg_config_init(&cfg, rule, 1);
    Call c;
    c.report = true;
    c.hostile = 3;
    Result R = run(P, cfg, c);
    expect_matches(P, cfg, c, R, std::string("report ") + ragg_rule_name(rule));
    std::vector<double> sc(P), w(P);
    std::vector<int32_t> sel(P);
    std::vector<int64_t> nf(P);
    ragg_report_t hr{P, sc.data(), w.data(), sel.data(), nf.data()};
    reference(P, cfg, c.dt, R.rows, &hr);
    for (int r = 0; r < P; ++r) {
      EXPECT_EQ(R.scores[r], sc) << "rank " << r;
      EXPECT_EQ(R.weights[r], w) << "rank " << r;
      EXPECT_EQ(R.selected[r], sel) << "rank " << r;
      EXPECT_EQ(R.nonfinite[r], nf) << "rank " << r;
    }
    EXPECT_GT(nf[3], 0);
  }
}

TEST(NcclAlgorithm, HostileRankPutsNoNaNIntoAnyResult) {
  RAGG_REQUIRE_DEVICE();
  for (ragg_rule_t rule : {RAGG_RULE_MEDIAN, RAGG_RULE_TRIMMED_MEAN, RAGG_RULE_KRUM, RAGG_RULE_GEOMED}) {
    int P = 5;
    ragg_config_t cfg;
    ragg_config_init(&cfg, rule, 1);
    Call c;
    c.hostile = 2;
    Result R = run(P, cfg, c);
    for (int r = 0; r < P; ++r) {
      ASSERT_EQ(R.st[r], RAGG_SUCCESS) << R.msg[r];
      for (size_t k = 0; k < c.count; ++k)
        ASSERT_TRUE(std::isfinite(ragg_load(c.dt, R.out[r].data(), (int64_t)k)))
            << ragg_rule_name(rule) << " rank " << r << " value " << k;
    }
  }
}

TEST(NcclAlgorithm, CheckedMismatchFailsOnEveryRank) {
  RAGG_REQUIRE_DEVICE();
  int P = 3;
  ragg_config_t cfg;
  ragg_config_init(&cfg, RAGG_RULE_MEDIAN, 1);
  Call c;
  c.check = true;
  c.count_of_rank = {1000, 1000, 999};
  Result R = run(P, cfg, c);
  for (int r = 0; r < P; ++r) {
    EXPECT_EQ(R.st[r], RAGG_ERR_MISMATCH) << R.msg[r];
    EXPECT_NE(R.msg[r].find("count"), std::string::npos) << R.msg[r];
  }
  c.count_of_rank.clear();  // agreeing ranks pass the check
  expect_matches(P, cfg, c, run(P, cfg, c), "checked");
}

TEST(NcclAlgorithm, TooFewRanksRefusedBeforeAnyCommunication) {
  RAGG_REQUIRE_DEVICE();
  ragg_config_t cfg;
  ragg_config_init(&cfg, RAGG_RULE_KRUM, 1);  // needs 5
  Call c;
  Result R = run(4, cfg, c);
  for (int r = 0; r < 4; ++r) EXPECT_EQ(R.st[r], RAGG_ERR_TOO_MANY_BYZANTINE) << R.msg[r];
}
