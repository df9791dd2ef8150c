// The CUDA backend against the CPU backend on the same inputs: every rule x
// dtype x layout x distance mode, pre-steps, hostile rows, reports, repeated
// calls, CUDA-graph capture. Skips (visibly) where no CUDA device exists.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "robustagg.h"

namespace {

// ---------------------------------------------------------------------------
// Values, written independently of the library.

float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
  if (exp == 0x1f) return bits_float(sign | 0x7f800000u | (man << 13));
  if (exp != 0) return bits_float(sign | ((exp + 112u) << 23) | (man << 13));
  float mag = (float)man * 5.9604644775390625e-08f;
  return sign ? -mag : mag;
}
uint16_t float_to_half(float f) {  // round to nearest even (normal range and Inf/NaN suffice here)
  uint32_t x = float_bits(f), sign = (x >> 16) & 0x8000u, ax = x & 0x7fffffffu;
  if (ax > 0x7f800000u) return (uint16_t)(sign | 0x7e00u);
  if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);
  if (ax < 0x38800000u) return (uint16_t)sign;  // tests draw no half subnormals
  uint32_t h = (ax - 0x38000000u) >> 13, rem = ax & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;
  return (uint16_t)(sign | h);
}
float bf16_to_float(uint16_t b) { return bits_float((uint32_t)b << 16); }
uint16_t float_to_bf16(float f) {
  uint32_t x = float_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u);
  return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}
size_t esize(ragg_dtype_t t) { return t == RAGG_F32 ? 4 : 2; }
const char *dname(ragg_dtype_t t) { return t == RAGG_F32 ? "f32" : t == RAGG_F16 ? "f16" : "bf16"; }
double get(ragg_dtype_t t, const std::vector<unsigned char> &b, int64_t i) {
  if (t == RAGG_F32) return ((const float *)b.data())[i];
  uint16_t u = ((const uint16_t *)b.data())[i];
  return t == RAGG_F16 ? half_to_float(u) : bf16_to_float(u);
}
// The first few outputs whose bits differ, as failures.
void expect_same_bits(ragg_dtype_t t, const std::vector<unsigned char> &gpu,
                      const std::vector<unsigned char> &cpu, int64_t d) {
  int bad = 0;
  for (int64_t k = 0; k < d && bad < 3; ++k)
    if (std::memcmp(&gpu[(size_t)k * esize(t)], &cpu[(size_t)k * esize(t)], esize(t))) {
      ++bad;
      ADD_FAILURE() << "out[" << k << "]: gpu " << get(t, gpu, k) << " cpu " << get(t, cpu, k)
                    << " differ in their bits";
    }
}
void put(ragg_dtype_t t, std::vector<unsigned char> &b, int64_t i, double v) {
  if (t == RAGG_F32)
    ((float *)b.data())[i] = (float)v;
  else
    ((uint16_t *)b.data())[i] = t == RAGG_F16 ? float_to_half((float)v) : float_to_bf16((float)v);
}
double dtype_max(ragg_dtype_t t) {
  return t == RAGG_F32 ? (double)FLT_MAX : t == RAGG_F16 ? 65504.0 : (double)bf16_to_float(0x7f7f);
}

// ---------------------------------------------------------------------------
// Tolerances of GPU vs CPU, written down once: |gpu - cpu| <= atol + rtol |cpu|
// on data of unit scale. The coordinate-wise family gives the CPU's bits; the
// Gram-space family differs by the fp32 Gram matrix (cuBLAS) against the
// CPU's double one, which moves iterative weights (geometric median, CAF) a
// little, and in 16 bits by one rounding of the output.
struct Tol {
  double atol, rtol;
};
Tol tol_for(ragg_dtype_t t) {
  switch (t) {
    case RAGG_F32: return {2e-4, 2e-4};
    case RAGG_F16: return {2e-3, 2e-3};
    default: return {1.6e-2, 1.6e-2};
  }
}

// ---------------------------------------------------------------------------
// Inputs.

struct Host {
  ragg_dtype_t t;
  int64_t n, d, ld;
  std::vector<unsigned char> buf;
  Host(ragg_dtype_t t_, int64_t n_, int64_t d_, int64_t ld_)
      : t(t_), n(n_), d(d_), ld(ld_), buf((size_t)(n_ * ld_) * esize(t_)) {
    for (int64_t q = 0; q < n * ld; ++q) put(t, buf, q, std::nan(""));  // padding is NaN
  }
  void set(int64_t i, int64_t k, double v) { put(t, buf, i * ld + k, v); }
  double at(int64_t i, int64_t k) const { return get(t, buf, i * ld + k); }
};

// Rows spread at distinct radii around a centre, so rankings of distances
// have gaps far above the rounding of an fp32 Gram matrix.
void fill_separated(Host &x, std::mt19937_64 &rng) {
  std::normal_distribution<double> g(0.0, 1.0);
  std::vector<double> c((size_t)x.d);
  for (auto &v : c) v = 0.5 * g(rng);
  std::vector<int64_t> order((size_t)x.n);
  for (int64_t i = 0; i < x.n; ++i) order[(size_t)i] = i;
  std::shuffle(order.begin(), order.end(), rng);
  for (int64_t i = 0; i < x.n; ++i) {
    double r = (1.0 + 0.15 * (double)order[(size_t)i]) / std::sqrt((double)x.d);
    for (int64_t k = 0; k < x.d; ++k) x.set(i, k, c[(size_t)k] + r * g(rng));
  }
}
void fill_gaussian(Host &x, std::mt19937_64 &rng) {
  std::normal_distribution<double> g(0.0, 1.0);
  for (int64_t i = 0; i < x.n; ++i)
    for (int64_t k = 0; k < x.d; ++k) x.set(i, k, g(rng));
}
void make_hostile(Host &x, int64_t row, int kind) {
  const double m = dtype_max(x.t), inf = INFINITY;
  const double pattern[6] = {std::nan(""), -std::nan(""), inf, -inf, m, -m};
  for (int64_t k = 0; k < x.d; ++k) x.set(row, k, kind < 6 ? pattern[kind] : pattern[k % 6]);
}

enum Layout { CONTIGUOUS = 0, POINTERS = 1 };

std::string describe(const ragg_config_t &c, const Host &x, Layout lay, uint64_t seed) {
  return std::string(ragg_rule_name(c.rule)) + " " + dname(x.t) + " n=" + std::to_string(x.n) +
         " d=" + std::to_string(x.d) + " ld=" + std::to_string(x.ld) + " f=" + std::to_string(c.f) +
         (lay == POINTERS ? " row pointers" : " contiguous") +
         (c.distances == RAGG_DISTANCES_DIRECT ? " direct" : " gram") + " seed=" + std::to_string(seed);
}

#define CUDA_OK(expr) ASSERT_EQ(cudaSuccess, (expr)) << #expr

class CudaBackend : public ::testing::Test {
 protected:
  void SetUp() override {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
      cudaGetLastError();
      GTEST_SKIP() << "no CUDA device (cudaGetDeviceCount is 0): the CUDA backend is untested here";
    }
    ASSERT_EQ(RAGG_SUCCESS, ragg_context_create(&cpu_, RAGG_BACKEND_CPU, 0));
    ASSERT_EQ(RAGG_SUCCESS, ragg_context_create(&gpu_, RAGG_BACKEND_CUDA, 0));
  }
  void TearDown() override {
    ragg_context_destroy(cpu_);
    ragg_context_destroy(gpu_);
  }

  struct Result {
    std::vector<unsigned char> out;
    std::vector<double> scores, weights;
    std::vector<int32_t> selected;
    std::vector<int64_t> nonfinite;
  };

  // Runs the call on the CPU backend (host) and on the GPU (device copies,
  // output and report poisoned first). Returns false on a failed assertion.
  void run_cpu(const ragg_config_t &cfg, const Host &x, Result &r, bool report) {
    r.out.assign((size_t)x.d * esize(x.t), 0xFF);
    ragg_report_t rep{x.n, nullptr, nullptr, nullptr, nullptr};
    if (report) {
      r.scores.assign((size_t)x.n, -7.0);
      r.weights.assign((size_t)x.n, -7.0);
      r.selected.assign((size_t)x.n, 7);
      r.nonfinite.assign((size_t)x.n, 7);
      rep = {x.n, r.scores.data(), r.weights.data(), r.selected.data(), r.nonfinite.data()};
    }
    ASSERT_EQ(RAGG_SUCCESS, ragg_aggregate(cpu_, &cfg, x.t, x.buf.data(), x.n, x.d, x.ld,
                                           r.out.data(), report ? &rep : nullptr))
        << ragg_last_error(cpu_);
  }

  void run_gpu(const ragg_config_t &cfg_in, const Host &x, Layout lay, Result &r, bool report,
               const void *cc_center_host = nullptr) {
    const size_t es = esize(x.t), xbytes = (size_t)(x.n * x.ld) * es, obytes = (size_t)x.d * es;
    ragg_config_t cfg = cfg_in;
    char *dx = nullptr, *dout = nullptr, *dcc = nullptr;
    CUDA_OK(cudaMalloc(&dx, xbytes));
    CUDA_OK(cudaMalloc(&dout, obytes));
    CUDA_OK(cudaMemset(dout, 0xFF, obytes));  // NaN in every dtype: an unwritten element fails
    std::vector<const void *> rows((size_t)x.n);
    if (lay == CONTIGUOUS) {
      CUDA_OK(cudaMemcpy(dx, x.buf.data(), xbytes, cudaMemcpyHostToDevice));
    } else {  // rows stored in reverse order: pointers, not positions, give the order
      for (int64_t i = 0; i < x.n; ++i) {
        char *slot = dx + (size_t)((x.n - 1 - i) * x.ld) * es;
        CUDA_OK(cudaMemcpy(slot, x.buf.data() + (size_t)(i * x.ld) * es, (size_t)x.d * es,
                           cudaMemcpyHostToDevice));
        rows[(size_t)i] = slot;
      }
    }
    if (cc_center_host) {
      CUDA_OK(cudaMalloc(&dcc, obytes));
      CUDA_OK(cudaMemcpy(dcc, cc_center_host, obytes, cudaMemcpyHostToDevice));
      cfg.cc_center = dcc;
    }
    double *ds = nullptr, *dw = nullptr;
    int32_t *dsel = nullptr;
    int64_t *dnf = nullptr;
    ragg_report_t rep{x.n, nullptr, nullptr, nullptr, nullptr};
    if (report) {
      CUDA_OK(cudaMalloc(&ds, sizeof(double) * (size_t)x.n));
      CUDA_OK(cudaMalloc(&dw, sizeof(double) * (size_t)x.n));
      CUDA_OK(cudaMalloc(&dsel, sizeof(int32_t) * (size_t)x.n));
      CUDA_OK(cudaMalloc(&dnf, sizeof(int64_t) * (size_t)x.n));
      // the same poison as run_cpu's arrays, so unwritten entries compare equal
      std::vector<double> p7((size_t)x.n, -7.0);
      std::vector<int32_t> s7((size_t)x.n, 7);
      std::vector<int64_t> n7((size_t)x.n, 7);
      CUDA_OK(cudaMemcpy(ds, p7.data(), sizeof(double) * x.n, cudaMemcpyHostToDevice));
      CUDA_OK(cudaMemcpy(dw, p7.data(), sizeof(double) * x.n, cudaMemcpyHostToDevice));
      CUDA_OK(cudaMemcpy(dsel, s7.data(), sizeof(int32_t) * x.n, cudaMemcpyHostToDevice));
      CUDA_OK(cudaMemcpy(dnf, n7.data(), sizeof(int64_t) * x.n, cudaMemcpyHostToDevice));
      rep = {x.n, ds, dw, dsel, dnf};
    }
    ragg_status_t st = lay == CONTIGUOUS
                           ? ragg_aggregate(gpu_, &cfg, x.t, dx, x.n, x.d, x.ld, dout,
                                            report ? &rep : nullptr)
                           : ragg_aggregate_ptrs(gpu_, &cfg, x.t, rows.data(), x.n, x.d, dout,
                                                 report ? &rep : nullptr);
    ASSERT_EQ(RAGG_SUCCESS, st) << ragg_last_error(gpu_);
    CUDA_OK(cudaDeviceSynchronize());
    r.out.resize(obytes);
    CUDA_OK(cudaMemcpy(r.out.data(), dout, obytes, cudaMemcpyDeviceToHost));
    if (report) {
      r.scores.resize((size_t)x.n);
      r.weights.resize((size_t)x.n);
      r.selected.resize((size_t)x.n);
      r.nonfinite.resize((size_t)x.n);
      CUDA_OK(cudaMemcpy(r.scores.data(), ds, sizeof(double) * x.n, cudaMemcpyDeviceToHost));
      CUDA_OK(cudaMemcpy(r.weights.data(), dw, sizeof(double) * x.n, cudaMemcpyDeviceToHost));
      CUDA_OK(cudaMemcpy(r.selected.data(), dsel, sizeof(int32_t) * x.n, cudaMemcpyDeviceToHost));
      CUDA_OK(cudaMemcpy(r.nonfinite.data(), dnf, sizeof(int64_t) * x.n, cudaMemcpyDeviceToHost));
    }
    cudaFree(dx);
    cudaFree(dout);
    cudaFree(dcc);
    cudaFree(ds);
    cudaFree(dw);
    cudaFree(dsel);
    cudaFree(dnf);
  }

  // GPU vs CPU on one input; returns the number of mismatches (printed).
  void compare(const ragg_config_t &cfg, const Host &x, Layout lay, uint64_t seed, bool report,
               const void *cc_center_host = nullptr) {
    SCOPED_TRACE(describe(cfg, x, lay, seed));
    ragg_config_t ccfg = cfg;
    if (cc_center_host) ccfg.cc_center = cc_center_host;
    Result c, g;
    run_cpu(ccfg, x, c, report);
    if (HasFatalFailure()) return;
    run_gpu(cfg, x, lay, g, report, cc_center_host);
    if (HasFatalFailure()) return;
    Tol tol = tol_for(x.t);
    int bad = 0;
    for (int64_t k = 0; k < x.d && bad < 5; ++k) {
      double a = get(x.t, g.out, k), b = get(x.t, c.out, k);
      double lim = tol.atol + tol.rtol * std::fabs(b);
      bool ok = (std::isnan(a) && std::isnan(b)) || std::fabs(a - b) <= lim;
      if (!ok) {
        ++bad;
        ADD_FAILURE() << "out[" << k << "]: gpu " << a << " cpu " << b << " tolerance " << lim;
      }
    }
    if (!report) return;
    for (int64_t i = 0; i < x.n; ++i) {
      EXPECT_EQ(c.nonfinite[(size_t)i], g.nonfinite[(size_t)i]) << "nonfinite[" << i << "]";
      EXPECT_EQ(c.selected[(size_t)i], g.selected[(size_t)i]) << "selected[" << i << "]";
      double a = g.scores[(size_t)i], b = c.scores[(size_t)i];
      bool ok = a == b || (std::isnan(a) && std::isnan(b)) ||
                std::fabs(a - b) <= 1e-3 * (1.0 + std::fabs(b));
      EXPECT_TRUE(ok) << "scores[" << i << "]: gpu " << a << " cpu " << b;
      a = g.weights[(size_t)i];
      b = c.weights[(size_t)i];
      ok = a == b || std::fabs(a - b) <= 1e-3 * (1.0 + std::fabs(b));
      EXPECT_TRUE(ok) << "weights[" << i << "]: gpu " << a << " cpu " << b;
    }
  }

  ragg_context_t *cpu_ = nullptr, *gpu_ = nullptr;
};

// The largest f each rule accepts for n inputs.
int64_t f_limit(ragg_rule_t r, int64_t n) {
  switch (r) {
    case RAGG_RULE_MEAN:
    case RAGG_RULE_CENTERED_CLIP: return n / 3;
    case RAGG_RULE_KRUM:
    case RAGG_RULE_MULTI_KRUM: return (n - 3) / 2;
    case RAGG_RULE_BULYAN: return (n - 3) / 4;
    default: return (n - 1) / 2;
  }
}

const ragg_rule_t kRules[] = {RAGG_RULE_MEAN,        RAGG_RULE_MEDIAN, RAGG_RULE_TRIMMED_MEAN,
                              RAGG_RULE_MEAMED,      RAGG_RULE_KRUM,   RAGG_RULE_MULTI_KRUM,
                              RAGG_RULE_BULYAN,      RAGG_RULE_GEOMED, RAGG_RULE_BRUTE,
                              RAGG_RULE_CENTERED_CLIP, RAGG_RULE_MONNA, RAGG_RULE_CAF,
                              RAGG_RULE_SMEA};
const ragg_dtype_t kDtypes[] = {RAGG_F32, RAGG_F16, RAGG_BF16};

bool gram_space(ragg_rule_t r) {
  return r != RAGG_RULE_MEAN && r != RAGG_RULE_MEDIAN && r != RAGG_RULE_TRIMMED_MEAN &&
         r != RAGG_RULE_MEAMED;
}

TEST_F(CudaBackend, EveryRuleDtypeLayoutAndDistanceModeMatchesTheCpu) {
  const uint64_t seed = 20261;
  std::mt19937_64 rng(seed);
  const int64_t ns[] = {9, 10};
  for (ragg_rule_t rule : kRules)
    for (ragg_dtype_t t : kDtypes)
      for (int64_t n : ns)
        for (int fl = 0; fl < 2; ++fl)
          for (int lay = 0; lay < 2; ++lay)
            for (int dm = 0; dm < (gram_space(rule) ? 2 : 1); ++dm) {
              int64_t f = fl ? f_limit(rule, n) : 0, d = 1000 + 37;
              ragg_config_t cfg;
              ragg_config_init(&cfg, rule, f);
              cfg.distances = dm ? RAGG_DISTANCES_DIRECT : RAGG_DISTANCES_GRAM;
              if (rule == RAGG_RULE_CENTERED_CLIP) cfg.tau = 0.5;
              Host x(t, n, d, lay == CONTIGUOUS ? d + 5 : d);
              fill_separated(x, rng);
              compare(cfg, x, (Layout)lay, seed, /*report=*/true);
            }
}

TEST_F(CudaBackend, CoordinateWiseBucketsAndSharedMemoryTiles) {
  const uint64_t seed = 777;
  std::mt19937_64 rng(seed);
  // every register bucket edge, the shared-memory tile, and row pointers
  // beyond the kernel-parameter limit
  const int64_t ns[] = {1,  2,  3,  7,   8,   9,   16,  17,  32,
                        33, 63, 64, 65, 100, 127, 128, 129, 130, 257, 1100};
  const ragg_rule_t rules[] = {RAGG_RULE_MEDIAN, RAGG_RULE_TRIMMED_MEAN, RAGG_RULE_MEAMED};
  for (int64_t n : ns)
    for (ragg_rule_t rule : rules)
      for (int fl = 0; fl < 2; ++fl) {
        ragg_dtype_t t = kDtypes[(n + fl) % 3];
        int64_t d = n > 200 ? 301 : 1 + 97 * fl;
        ragg_config_t cfg;
        ragg_config_init(&cfg, rule, fl ? (n - 1) / 2 : 0);
        Host x(t, n, d, d);
        fill_gaussian(x, rng);
        // exact ties: a few repeated values per coordinate
        for (int64_t k = 0; k < d; k += 3) x.set(n - 1, k, x.at(0, k));
        compare(cfg, x, n > 1024 ? POINTERS : (Layout)(n % 2), seed, /*report=*/fl == 1);
      }
}

// Rows on 16-byte boundaries take the vectorised combination and the
// coordinate networks' V-element loads (4 coordinates a thread for n <= 16,
// 2 for n <= 32; and their scalar tails when d is no multiple of the vector);
// n = 33 and 100 the one-coordinate networks (N = 64, 128); n <= 16 takes the one-pass Gram
// kernel, n = 20 cuBLAS (contiguous) or the tiled kernel (row pointers). The
// mean and the coordinate-wise rules give the CPU's bits exactly.
TEST_F(CudaBackend, AlignedRowsVectorPathsAndTheirTailsMatchTheCpu) {
  const uint64_t seed = 9090;
  std::mt19937_64 rng(seed);
  const ragg_rule_t rules[] = {RAGG_RULE_MEAN,   RAGG_RULE_MEDIAN, RAGG_RULE_TRIMMED_MEAN,
                               RAGG_RULE_MEAMED, RAGG_RULE_KRUM,   RAGG_RULE_GEOMED,
                               RAGG_RULE_CENTERED_CLIP};
  for (ragg_dtype_t t : kDtypes)
    for (int64_t n : {5, 8, 16, 20, 33, 100})
      for (int64_t d : {1024, 1029})
        for (int lay = 0; lay < 2; ++lay)
          for (ragg_rule_t rule : rules) {
            ragg_config_t cfg;
            ragg_config_init(&cfg, rule, rule == RAGG_RULE_KRUM ? (n - 3) / 2 : n / 4);
            if (rule == RAGG_RULE_CENTERED_CLIP) cfg.tau = 0.5;
            Host x(t, n, d, lay == CONTIGUOUS ? 1032 : d);  // 1032 elements: 16-byte rows
            fill_separated(x, rng);
            compare(cfg, x, (Layout)lay, seed, /*report=*/false);
            if (gram_space(rule)) continue;
            SCOPED_TRACE(describe(cfg, x, (Layout)lay, seed) + " (bits)");
            Result c, g;
            run_cpu(cfg, x, c, false);
            run_gpu(cfg, x, (Layout)lay, g, false);
            if (HasFatalFailure()) return;
            expect_same_bits(t, g.out, c.out, x.d);
          }
}

TEST_F(CudaBackend, PreStepsMatchTheCpu) {
  const uint64_t seed = 4242;
  std::mt19937_64 rng(seed);
  const ragg_rule_t rules[] = {RAGG_RULE_MEAN, RAGG_RULE_MEDIAN, RAGG_RULE_KRUM, RAGG_RULE_BULYAN,
                               RAGG_RULE_GEOMED};
  for (ragg_rule_t rule : rules)
    for (int pre = 0; pre < 4; ++pre) {
      int64_t n = 15, f = 2, d = 513;
      ragg_config_t cfg;
      ragg_config_init(&cfg, rule, f);
      if (pre == 0) cfg.clip_norm = 0.8;
      if (pre == 1) cfg.adaptive_clip = 1;
      if (pre == 2) cfg.mix = RAGG_MIX_NNM;
      if (pre == 3) {
        cfg.mix = RAGG_MIX_BUCKETING;
        cfg.bucket_size = 2;
        cfg.seed = 99;
        if (rule == RAGG_RULE_BULYAN || rule == RAGG_RULE_KRUM) cfg.f = 1;
      }
      Host x(RAGG_F32, n, d, d);
      fill_separated(x, rng);
      compare(cfg, x, (Layout)(pre % 2), seed, /*report=*/true);
      // NNM's and bucketing's weights are exact (1/(n-f), 1/s), and both
      // backends form the mixed rows with the same float arithmetic, so the
      // median of them has the CPU's bits.
      if (rule == RAGG_RULE_MEDIAN && pre >= 2) {
        SCOPED_TRACE(describe(cfg, x, (Layout)(pre % 2), seed) + " (bits)");
        Result c, g;
        run_cpu(cfg, x, c, false);
        run_gpu(cfg, x, (Layout)(pre % 2), g, false);
        if (HasFatalFailure()) return;
        expect_same_bits(RAGG_F32, g.out, c.out, x.d);
      }
    }
}

TEST_F(CudaBackend, CenteredClippingFromAStartPoint) {
  const uint64_t seed = 31;
  std::mt19937_64 rng(seed);
  for (ragg_dtype_t t : kDtypes)
    for (int lay = 0; lay < 2; ++lay) {
      int64_t n = 11, d = 777;
      ragg_config_t cfg;
      ragg_config_init(&cfg, RAGG_RULE_CENTERED_CLIP, 3);
      cfg.tau = 0.3;
      cfg.iters = 3;
      Host x(t, n, d, d);
      fill_separated(x, rng);
      Host v0(t, 1, d, d);
      fill_gaussian(v0, rng);
      compare(cfg, x, (Layout)lay, seed, true, v0.buf.data());
    }
}

TEST_F(CudaBackend, HostileRowsGiveFiniteOutputsAndMatchTheCpu) {
  const uint64_t seed = 5150;
  std::mt19937_64 rng(seed);
  for (ragg_rule_t rule : kRules) {
    if (rule == RAGG_RULE_MEAN) continue;
    for (ragg_dtype_t t : kDtypes)
      for (int kind = 0; kind < 7; ++kind) {
        int64_t n = 11, d = 300;
        int64_t f = rule == RAGG_RULE_CENTERED_CLIP ? 2 : std::min<int64_t>(2, f_limit(rule, n));
        ragg_config_t cfg;
        ragg_config_init(&cfg, rule, f);
        if (rule == RAGG_RULE_CENTERED_CLIP) cfg.tau = 0.5;
        Host x(t, n, d, d);
        fill_separated(x, rng);
        for (int64_t h = 0; h < f; ++h) make_hostile(x, 3 * h + 1, (kind + (int)h) % 7);
        SCOPED_TRACE("hostile kind " + std::to_string(kind));
        compare(cfg, x, (Layout)(kind % 2), seed, true);
        Result g;
        run_gpu(cfg, x, (Layout)(kind % 2), g, false);
        for (int64_t k = 0; k < d; ++k)
          ASSERT_TRUE(std::isfinite(get(t, g.out, k)))
              << ragg_rule_name(rule) << " " << dname(t) << " out[" << k << "] = " << get(t, g.out, k);
      }
  }
}

TEST_F(CudaBackend, RepeatedCallsGiveTheSameBits) {
  std::mt19937_64 rng(9);
  for (ragg_rule_t rule : kRules) {
    ragg_config_t cfg;
    ragg_config_init(&cfg, rule, 2);
    if (rule == RAGG_RULE_CENTERED_CLIP) cfg.tau = 0.5;
    Host x(RAGG_F32, 12, 4099, 4099);
    fill_separated(x, rng);
    Result a, b;
    run_gpu(cfg, x, CONTIGUOUS, a, true);
    run_gpu(cfg, x, CONTIGUOUS, b, true);
    EXPECT_EQ(0, std::memcmp(a.out.data(), b.out.data(), a.out.size())) << ragg_rule_name(rule);
    EXPECT_EQ(0, std::memcmp(a.weights.data(), b.weights.data(), sizeof(double) * 12))
        << ragg_rule_name(rule);
  }
}

TEST_F(CudaBackend, CapturedInACudaGraphAndReplayedWithNewValues) {
  std::mt19937_64 rng(1234);
  const int64_t n = 13, d = 2049;
  const ragg_rule_t rules[] = {RAGG_RULE_MEDIAN, RAGG_RULE_KRUM, RAGG_RULE_GEOMED, RAGG_RULE_BULYAN,
                               RAGG_RULE_MEAN};
  cudaStream_t s;
  CUDA_OK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  ASSERT_EQ(RAGG_SUCCESS, ragg_context_set_stream(gpu_, s)) << ragg_last_error(gpu_);
  for (ragg_rule_t rule : rules) {
    ragg_config_t cfg;
    ragg_config_init(&cfg, rule, 2);
    Host x(RAGG_F32, n, d, d);
    fill_separated(x, rng);
    size_t bytes = 0;
    ASSERT_EQ(RAGG_SUCCESS, ragg_workspace_size(gpu_, &cfg, RAGG_F32, n, d, &bytes));
    void *ws = nullptr, *dx = nullptr, *dout = nullptr;
    CUDA_OK(cudaMalloc(&ws, bytes));
    CUDA_OK(cudaMalloc(&dx, x.buf.size()));
    CUDA_OK(cudaMalloc(&dout, sizeof(float) * d));
    ASSERT_EQ(RAGG_SUCCESS, ragg_context_set_workspace(gpu_, ws, bytes));
    CUDA_OK(cudaMemcpy(dx, x.buf.data(), x.buf.size(), cudaMemcpyHostToDevice));
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    CUDA_OK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    ragg_status_t st = ragg_aggregate(gpu_, &cfg, RAGG_F32, dx, n, d, d, dout, nullptr);
    CUDA_OK(cudaStreamEndCapture(s, &graph));
    ASSERT_EQ(RAGG_SUCCESS, st) << ragg_last_error(gpu_);
    CUDA_OK(cudaGraphInstantiate(&exec, graph, 0));
    for (int round = 0; round < 2; ++round) {
      fill_separated(x, rng);  // new values, same buffers
      CUDA_OK(cudaMemcpyAsync(dx, x.buf.data(), x.buf.size(), cudaMemcpyHostToDevice, s));
      CUDA_OK(cudaMemsetAsync(dout, 0xFF, sizeof(float) * d, s));
      CUDA_OK(cudaGraphLaunch(exec, s));
      CUDA_OK(cudaStreamSynchronize(s));
      std::vector<float> got((size_t)d);
      CUDA_OK(cudaMemcpy(got.data(), dout, sizeof(float) * d, cudaMemcpyDeviceToHost));
      Result c;
      run_cpu(cfg, x, c, false);
      for (int64_t k = 0; k < d; ++k) {
        double b = get(RAGG_F32, c.out, k);
        ASSERT_NEAR(got[(size_t)k], b, 2e-4 + 2e-4 * std::fabs(b))
            << ragg_rule_name(rule) << " replay " << round << " out[" << k << "]";
      }
    }
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    ASSERT_EQ(RAGG_SUCCESS, ragg_context_set_workspace(gpu_, nullptr, 0));
    cudaFree(ws);
    cudaFree(dx);
    cudaFree(dout);
  }
  ASSERT_EQ(RAGG_SUCCESS, ragg_context_set_stream(gpu_, nullptr));
  cudaStreamDestroy(s);
}

TEST_F(CudaBackend, ErrorsNameTheirCause) {
  ragg_context_t *bad = nullptr;
  EXPECT_EQ(RAGG_ERR_NO_DEVICE, ragg_context_create(&bad, RAGG_BACKEND_CUDA, 4096));
  EXPECT_EQ(nullptr, bad);
  ragg_config_t cfg;
  ragg_config_init(&cfg, RAGG_RULE_KRUM, 1);
  void *ws = nullptr, *dx = nullptr, *dout = nullptr;
  CUDA_OK(cudaMalloc(&ws, 64));
  CUDA_OK(cudaMalloc(&dx, sizeof(float) * 8 * 100));
  CUDA_OK(cudaMalloc(&dout, sizeof(float) * 100));
  ASSERT_EQ(RAGG_SUCCESS, ragg_context_set_workspace(gpu_, ws, 64));
  EXPECT_EQ(RAGG_ERR_INVALID_ARGUMENT,
            ragg_aggregate(gpu_, &cfg, RAGG_F32, dx, 8, 100, 100, dout, nullptr));
  EXPECT_NE(nullptr, std::strstr(ragg_last_error(gpu_), "ragg_workspace_size"));
  ASSERT_EQ(RAGG_SUCCESS, ragg_context_set_workspace(gpu_, nullptr, 0));
  cudaFree(ws);
  cudaFree(dx);
  cudaFree(dout);
}

}  // namespace
