// The shared n x n solver: its device build (kernels/solve.cu, --fmad=false)
// and its host build (-ffp-contract=off) give bit-identical weights, scores,
// selections and Bulyan rows from the same distances, for every Gram-space
// rule and pre-step. Skips (visibly) where no CUDA device exists.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

extern "C" {
#include "internal.h"
}
#include "solver_check.h"
#include "solver_distances.hh"

namespace {

class CudaSolver : public ::testing::Test {
 protected:
  void SetUp() override {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
      cudaGetLastError();
      GTEST_SKIP()
          << "no CUDA device (cudaGetDeviceCount is 0): the device solver is untested here";
    }
  }
};

// One case: the host build and the device build of the solver on the same
// distances, bit for bit (weights, scores, selection, Bulyan's rows).
void expect_same_bits(ragg_rule_t rule, int pre, int64_t n, std::mt19937_64 &rng, uint64_t seed) {
  ragg_config_t cfg;
  int64_t f = rule == RAGG_RULE_BULYAN ? 1 : 2;
  ragg_config_init(&cfg, rule, f);
  if (rule == RAGG_RULE_CENTERED_CLIP) cfg.tau = 0.7;
  if (pre == 1) cfg.clip_norm = 2.0;
  if (pre == 2) cfg.adaptive_clip = 1;
  if (pre == 3) cfg.mix = RAGG_MIX_NNM;
  if (pre == 4) {
    cfg.mix = RAGG_MIX_BUCKETING;
    cfg.bucket_size = 2;
    cfg.seed = 5;
    if (rule == RAGG_RULE_BULYAN || rule == RAGG_RULE_KRUM || rule == RAGG_RULE_MULTI_KRUM)
      cfg.f = 0;
  }
  ragg_solve_params_t p;
  ragg_params_from_config(&cfg, &p);
  int anchor = rule == RAGG_RULE_CENTERED_CLIP;
  Distances dist = make_distances(n, anchor, rng, n == 12 ? 4 : -1);
  const int64_t L = dist.L;
  SCOPED_TRACE(std::string(ragg_rule_name(rule)) + " pre-step " + std::to_string(pre) +
               " n=" + std::to_string(n) + " seed=" + std::to_string(seed));

  HostSolve h(dist, /*poison=*/false);
  ragg_solve(&p, &h.io);
  const std::vector<double> &alpha = h.alpha, &scores = h.scores;
  const std::vector<int64_t> &bul = h.bul;
  const std::vector<int32_t> &sel = h.sel;

  std::vector<double> galpha((size_t)L), gscores((size_t)n);
  std::vector<int64_t> gbul((size_t)L);
  std::vector<int32_t> gsel((size_t)n);
  ASSERT_EQ(0, ragg_cuda_solve_from_host(&p, n, anchor, dist.D.data(), dist.N.data(), galpha.data(),
                                         gscores.data(), gsel.data(), gbul.data()));
  for (int64_t i = 0; i < L; ++i)
    EXPECT_EQ(0, std::memcmp(&alpha[(size_t)i], &galpha[(size_t)i], sizeof(double)))
        << "alpha[" << i << "]: host " << alpha[(size_t)i] << " device " << galpha[(size_t)i];
  for (int64_t i = 0; i < n; ++i) {
    EXPECT_EQ(0, std::memcmp(&scores[(size_t)i], &gscores[(size_t)i], sizeof(double)))
        << "scores[" << i << "]: host " << scores[(size_t)i] << " device " << gscores[(size_t)i];
    EXPECT_EQ(sel[(size_t)i], gsel[(size_t)i]) << "selected[" << i << "]";
  }
  if (rule == RAGG_RULE_BULYAN) {
    for (int64_t i = 0; i < n - 2 * f; ++i) {
      EXPECT_EQ(bul[(size_t)i], gbul[(size_t)i]) << "bulyan_rows[" << i << "]";
    }
  }
}

const ragg_rule_t kRules[] = {RAGG_RULE_MEAN,          RAGG_RULE_KRUM,   RAGG_RULE_MULTI_KRUM,
                              RAGG_RULE_BULYAN,        RAGG_RULE_GEOMED, RAGG_RULE_BRUTE,
                              RAGG_RULE_CENTERED_CLIP, RAGG_RULE_MONNA,  RAGG_RULE_CAF,
                              RAGG_RULE_SMEA};

TEST_F(CudaSolver, DeviceAndHostBuildsGiveTheSameBits) {
  const uint64_t seed = 8080;
  std::mt19937_64 rng(seed);
  for (ragg_rule_t rule : kRules)
    for (int pre = 0; pre < 5; ++pre)
      for (int64_t n : {7, 12, 70}) {
        /* n = 70: the Krum family's and the geometric median's row work over
         * several warps and blocks (the other rules' subset searches and
         * iterations at that size take the one-thread solver minutes under
         * compute-sanitizer) */
        if (n == 70 && rule != RAGG_RULE_KRUM && rule != RAGG_RULE_MULTI_KRUM &&
            rule != RAGG_RULE_BULYAN && rule != RAGG_RULE_GEOMED)
          continue;
        expect_same_bits(rule, pre, n, rng, seed);
        if (HasFatalFailure()) return;
      }
}

// Krum's and Multi-Krum's rows beyond a warp's sort (n - 1 > 4096): a thread a
// row, then Multi-Krum's order.
TEST_F(CudaSolver, KrumRowsBeyondAWarpGiveTheSameBits) {
  const uint64_t seed = 8181;
  std::mt19937_64 rng(seed);
  for (ragg_rule_t rule : {RAGG_RULE_KRUM, RAGG_RULE_MULTI_KRUM}) {
    expect_same_bits(rule, 0, 4100, rng, seed);
    if (HasFatalFailure()) return;
  }
}

}  // namespace
