// Allocation failure in the MPI collectives, at one rank (mpiexec -np 1):
// every allocation librobustagg_mpi and librobustagg make fails in turn (see
// alloc_failure.hh) and the call returns RAGG_ERR_OUT_OF_MEMORY with a
// message, its context then giving the undisturbed bits. With more ranks a
// rank that fails alone leaves the others waiting in a collective, which is
// the engine's error handling to settle, so one rank is what can be tested.
#include <mpi.h>

#include "alloc_failure.hh"
#include "robustagg_mpi.h"

using namespace ragg_test;
using namespace ragg_alloc;

namespace {

struct EnvVar {
  EnvVar(const char *name, const char *value) : name_(name) { setenv(name, value, 1); }
  ~EnvVar() { unsetenv(name_); }
  const char *name_;
};

class MpiAllocFailure : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_TRUE(watch_library_of((const void *)&ragg_aggregate)) << "librobustagg not found";
    ASSERT_TRUE(watch_library_of((const void *)&ragg_allreduce_mpi))
        << "librobustagg_mpi not found";
  }
  void SetUp() override {
    int size = 0;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size != 1) GTEST_SKIP() << "runs at one rank (mpiexec -np 1), not " << size;
  }
  std::vector<float> input(size_t count, uint64_t salt) {
    std::vector<float> x(count);
    std::mt19937_64 rng(case_seed(salt));
    std::normal_distribution<float> g;
    for (float &v : x) v = g(rng);
    return x;
  }
};

Call allreduce(ragg_rule_t rule, ragg_mode_t mode, const std::vector<float> &x) {
  const ragg_config_t cfg = make_config(rule, 0);
  return [cfg, mode, x](ragg_context_t *ctx, std::vector<unsigned char> &out) {
    std::vector<float> y(x.size(), -1.0f);
    double scores[1] = {-1}, weights[1] = {-1};
    int32_t selected[1] = {-1};
    int64_t nonfinite[1] = {-1};
    ragg_report_t rep = {};
    rep.capacity = 1, rep.scores = scores, rep.weights = weights, rep.selected = selected;
    rep.nonfinite = nonfinite;
    const ragg_status_t st =
        ragg_allreduce_mpi_report(ctx, &cfg, x.data(), y.data(), y.size(), RAGG_F32,
                                  RAGG_REDUCE_MEAN, mode, MPI_COMM_WORLD, &rep);
    out.assign((unsigned char *)y.data(), (unsigned char *)(y.data() + y.size()));
    out.insert(out.end(), (unsigned char *)scores, (unsigned char *)(scores + 1));
    return st;
  };
}

TEST_F(MpiAllocFailure, AllReduceEveryModeAndRule) {
  const std::vector<float> x = input(70001, 1);
  for (ragg_mode_t mode : {RAGG_MODE_SHARDED, RAGG_MODE_REPLICATED})
    for (ragg_rule_t rule : {RAGG_RULE_MEAN, RAGG_RULE_MEDIAN, RAGG_RULE_MEAMED, RAGG_RULE_GEOMED,
                             RAGG_RULE_CENTERED_CLIP}) {
      const std::string what = std::string("all-reduce ") + rule_label(rule) +
                               (mode == RAGG_MODE_SHARDED ? " sharded" : " replicated");
      EXPECT_GE(fail_each_allocation(what, allreduce(rule, mode, x)), 1);
    }
}

TEST_F(MpiAllocFailure, ConsistencyCheckAndReduceScatter) {
  const std::vector<float> x = input(50001, 2);
  {
    EnvVar check("RAGG_CHECK", "1");  // the cross-rank signature check allocates too
    fail_each_allocation("all-reduce median RAGG_CHECK=1",
                         allreduce(RAGG_RULE_MEDIAN, RAGG_MODE_SHARDED, x));
  }
  const ragg_config_t cfg = make_config(RAGG_RULE_TRIMMED_MEAN, 0);
  fail_each_allocation("reduce-scatter", [&](ragg_context_t *ctx, std::vector<unsigned char> &out) {
    std::vector<float> y(x.size(), -1.0f);
    const ragg_status_t st = ragg_reduce_scatter_mpi(ctx, &cfg, x.data(), y.data(), y.size(),
                                                     RAGG_F32, RAGG_REDUCE_SUM, MPI_COMM_WORLD);
    out.assign((unsigned char *)y.data(), (unsigned char *)(y.data() + y.size()));
    return st;
  });
}

}  // namespace
