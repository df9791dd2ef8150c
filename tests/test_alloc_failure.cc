// Allocation failure: every allocation the library makes fails in turn, one
// per call. The call must come back with RAGG_ERR_OUT_OF_MEMORY and a message
// (or RAGG_SUCCESS and the right bits, where it could do without), never
// crash or hang, and leave its context usable: the next call on the same
// context gives the bits an undisturbed call gives.
//
// Only librobustagg's own allocations fail (alloc_failure.hh). Not built
// with the sanitizers, which interpose the same functions.
#include "alloc_failure.hh"
#include "robustagg_transport.h"
#include "simd_level.hh"

using namespace ragg_test;
using namespace ragg_alloc;

namespace {

struct Problem {
  ragg_dtype_t dtype = RAGG_F32;
  int64_t n = 16, d = 20011;  // n d above the threshold where OpenMP threads start
  Entry entry = Entry::Contiguous;
};

// With a report the coordinate-wise rules take the general path (it counts
// the non-finite values as it sorts); without one, the vector path.
Call aggregate(const ragg_config_t &cfg, const Problem &p, bool report = true) {
  auto x = std::make_shared<Inputs>(p.dtype, p.n, p.d);
  std::mt19937_64 rng(case_seed(4242));
  fill_separated(*x, rng);
  return [cfg, x, p, report](ragg_context_t *ctx, std::vector<unsigned char> &out) {
    const LibRun r = run_library(ctx, cfg, *x, p.entry, report);
    out = r.out_raw;
    // the report is part of the result
    for (double v : r.scores) out.insert(out.end(), (unsigned char *)&v, (unsigned char *)(&v + 1));
    for (double v : r.weights)
      out.insert(out.end(), (unsigned char *)&v, (unsigned char *)(&v + 1));
    return r.status;
  };
}

int64_t f_for(ragg_rule_t r) {
  switch (r) {
    case RAGG_RULE_BRUTE:
    case RAGG_RULE_SMEA:
      return 2;
    case RAGG_RULE_MEAN:
      return 0;
    default:
      return 3;
  }
}

class AllocFailure : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_TRUE(watch_library_of((const void *)&ragg_aggregate)) << "librobustagg not found";
  }
};

TEST_F(AllocFailure, ContextCreation) {
  ragg_context_t *ctx = reinterpret_cast<ragg_context_t *>(0x1);
  ragg_status_t st;
  {
    Armed a(0);
    st = ragg_context_create(&ctx, RAGG_BACKEND_CPU, 0);
    EXPECT_EQ(g_failures, 1) << "the context is the library's own allocation";
  }
  EXPECT_EQ(st, RAGG_ERR_OUT_OF_MEMORY);
  EXPECT_EQ(ctx, nullptr);
}

TEST_F(AllocFailure, EveryRule) {
  for (int r = RAGG_RULE_MEAN; r <= RAGG_RULE_SMEA; ++r)
    for (bool report : {true, false}) {
      const ragg_rule_t rule = (ragg_rule_t)r;
      const long made =
          fail_each_allocation(std::string(rule_label(rule)) + (report ? " report" : ""),
                               aggregate(make_config(rule, f_for(rule)), {}, report));
      EXPECT_GE(made, 1) << rule_label(rule) << ": the context's workspace at least";
    }
}

TEST_F(AllocFailure, PreStepsLayoutsAndPaths) {
  ragg_config_t c = make_config(RAGG_RULE_MEDIAN, 3);
  c.mix = RAGG_MIX_NNM;
  fail_each_allocation("median nnm", aggregate(c, {}, false));
  c = make_config(RAGG_RULE_KRUM, 3);
  c.adaptive_clip = 1;
  fail_each_allocation("krum arc", aggregate(c, {}));
  c = make_config(RAGG_RULE_TRIMMED_MEAN, 2);
  c.mix = RAGG_MIX_BUCKETING, c.bucket_size = 2, c.seed = 11;
  fail_each_allocation("trimmed mean bucketing", aggregate(c, {}, false));
  c = make_config(RAGG_RULE_MEAMED, 3);
  c.clip_norm = 10.0;
  fail_each_allocation("meamed clip_norm", aggregate(c, {}));
  c = make_config(RAGG_RULE_MULTI_KRUM, 3);
  c.distances = RAGG_DISTANCES_DIRECT;
  fail_each_allocation("multi-krum direct", aggregate(c, {}));
  fail_each_allocation("bulyan f16 rows", aggregate(make_config(RAGG_RULE_BULYAN, 3),
                                                    {RAGG_F16, 16, 20011, Entry::Pointers}));
  // merged blocks of 256; beyond 65536 inputs, the radix sort
  for (int64_t n : {300, 1100, 65537})
    for (bool report : {true, false})
      fail_each_allocation(
          "median n = " + std::to_string(n) + (report ? " report" : ""),
          aggregate(make_config(RAGG_RULE_MEDIAN, 20), {RAGG_F32, n, n > 4096 ? 3 : 1001}, report));
  SimdLevel general("0");
  for (ragg_rule_t r : {RAGG_RULE_MEDIAN, RAGG_RULE_MEAMED}) {
    c = make_config(r, 3);
    fail_each_allocation(std::string("general path ") + rule_label(r), aggregate(c, {}, false));
    c.mix = RAGG_MIX_NNM;
    fail_each_allocation(std::string("general path nnm ") + rule_label(r), aggregate(c, {}, false));
  }
}

// The caller's transport with one rank: the distributed path's own buffers.
int one_rank_alltoallv(void *, const void *sendbuf, const size_t *sendcounts, const size_t *sdispls,
                       void *recvbuf, const size_t *recvcounts, const size_t *rdispls) {
  if (sendcounts[0] != recvcounts[0]) return 1;
  std::memmove((char *)recvbuf + rdispls[0], (const char *)sendbuf + sdispls[0], sendcounts[0]);
  return 0;
}
int one_rank_allgatherv(void *, void *, const size_t *, const size_t *) {
  return 0;
}

TEST_F(AllocFailure, CallersTransportOneRank) {
  const ragg_transport_ops_t ops = {0, 1, nullptr, one_rank_alltoallv, one_rank_allgatherv};
  auto x = std::make_shared<std::vector<float>>(50001);
  std::mt19937_64 rng(case_seed(77));
  std::normal_distribution<float> g;
  for (float &v : *x) v = g(rng);
  for (ragg_mode_t mode : {RAGG_MODE_SHARDED, RAGG_MODE_REPLICATED})
    for (ragg_rule_t rule : {RAGG_RULE_MEDIAN, RAGG_RULE_GEOMED}) {
      const ragg_config_t cfg = make_config(rule, 0);
      fail_each_allocation(
          std::string("all-reduce ") + rule_label(rule) + (mode ? " replicated" : " sharded"),
          [=](ragg_context_t *ctx, std::vector<unsigned char> &out) {
            std::vector<float> y(x->size(), -1.0f);
            double score = -1, weight = -1;  // the report is part of the result
            int32_t selected = -1;
            int64_t nonfinite = -1;
            ragg_report_t rep = {};
            rep.capacity = 1, rep.scores = &score, rep.weights = &weight;
            rep.selected = &selected, rep.nonfinite = &nonfinite;
            ragg_status_t st =
                ragg_allreduce_transport(ctx, &cfg, x->data(), y.data(), y.size(), RAGG_F32,
                                         RAGG_REDUCE_MEAN, mode, &ops, &rep);
            out.assign((unsigned char *)y.data(), (unsigned char *)(y.data() + y.size()));
            out.insert(out.end(), (unsigned char *)&score, (unsigned char *)(&score + 1));
            return st;
          });
    }
  const ragg_config_t cfg = make_config(RAGG_RULE_TRIMMED_MEAN, 0);
  fail_each_allocation("reduce-scatter", [=](ragg_context_t *ctx, std::vector<unsigned char> &out) {
    std::vector<float> y(x->size(), -1.0f);
    ragg_status_t st = ragg_reduce_scatter_transport(ctx, &cfg, x->data(), y.data(), y.size(),
                                                     RAGG_F32, RAGG_REDUCE_SUM, &ops, nullptr);
    out.assign((unsigned char *)y.data(), (unsigned char *)(y.data() + y.size()));
    return st;
  });
}

}  // namespace
