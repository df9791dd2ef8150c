// Shared pieces of the MPI suites: the world, seeded rows any rank can
// regenerate, the single-process reference (ragg_aggregate on the gathered
// rows) and the comparisons. Tolerances are stated once, here.
#pragma once

#include <mpi.h>

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

extern "C" {
#include "cpu/convert.h"
}
#include "robustagg.h"
#include "robustagg_mpi.h"

namespace mpi_test {

inline int rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}
inline int size() {
  int p = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &p);
  return p;
}

inline size_t esize(ragg_dtype_t t) { return t == RAGG_F32 ? 4 : 2; }
inline const char *dtype_name(ragg_dtype_t t) {
  return t == RAGG_F32 ? "f32" : t == RAGG_F16 ? "f16" : "bf16";
}
inline float load(ragg_dtype_t t, const void *p, size_t k) { return ragg_load(t, p, (int64_t)k); }
inline void store(ragg_dtype_t t, void *p, size_t k, double v) { ragg_store(t, p, (int64_t)k, v); }

inline uint64_t mix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
// A standard normal value that depends only on (seed, row, k).
inline double gauss(uint64_t seed, int row, size_t k) {
  uint64_t a = mix64(seed * 0x100000001B3ull ^ mix64((uint64_t)row * 0x9E37u + 1) ^ mix64(k + 7));
  uint64_t b = mix64(a);
  double u1 = ((double)(a >> 11) + 0.5) / 9007199254740992.0, u2 = (double)(b >> 11) / 9007199254740992.0;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

enum Hostile { HONEST = -1, H_NAN = 0, H_INF, H_FLTMAX, H_FLIP, H_MIXED, H_NEG_NAN, H_KINDS };

// Row p of a seeded problem: mu + 0.1 noise, or a hostile row.
inline std::vector<unsigned char> make_row(uint64_t seed, int p, size_t count, ragg_dtype_t t,
                                           int hostile = HONEST) {
  std::vector<unsigned char> b(count * esize(t));
  for (size_t k = 0; k < count; ++k) {
    double mu = std::sin(0.37 * (double)k + 0.1 * (double)(seed % 7));
    double v = mu + 0.1 * gauss(seed, p, k);
    switch (hostile) {
      case H_NAN: v = NAN; break;
      case H_INF: v = (k & 1) ? INFINITY : -INFINITY; break;
      case H_FLTMAX: v = (k & 1) ? -FLT_MAX : FLT_MAX; break;
      case H_FLIP: v = -1e6 * mu; break;
      case H_MIXED: v = k % 3 == 0 ? NAN : k % 3 == 1 ? -INFINITY : 3e38; break;
      case H_NEG_NAN: v = -NAN; break;
      default: break;
    }
    store(t, b.data(), k, v);
  }
  return b;
}

// Every rank's row, contiguous (what the reference sees).
inline std::vector<unsigned char> all_rows(uint64_t seed, int P, size_t count, ragg_dtype_t t,
                                           const std::vector<int> &hostile = {}) {
  std::vector<unsigned char> x;
  for (int p = 0; p < P; ++p) {
    int h = p < (int)hostile.size() ? hostile[p] : HONEST;
    auto r = make_row(seed, p, count, t, h);
    x.insert(x.end(), r.begin(), r.end());
  }
  return x;
}

// RAGG_REDUCE_SUM: P times the aggregate, formed as the library forms it.
inline void scale(ragg_dtype_t t, void *out, size_t n, int P) {
  if (P == 1) return;
  for (size_t k = 0; k < n; ++k) store(t, out, k, (double)load(t, out, k) * (double)P);
}

// Tolerances for results whose Gram sums were added in another order:
// |got - ref| <= atol + rtol |ref|, per dtype.
struct Tol {
  double atol, rtol;
};
inline Tol tolerance(ragg_dtype_t t) {
  if (t == RAGG_F32) return {1e-5, 1e-4};
  if (t == RAGG_F16) return {2e-3, 4e-3};
  return {1.6e-2, 1.6e-2};
}

inline bool is_exact_rule(const ragg_config_t &cfg) {
  bool pre = cfg.clip_norm > 0 || cfg.adaptive_clip || cfg.mix != RAGG_MIX_NONE;
  return !pre && (cfg.rule == RAGG_RULE_MEDIAN || cfg.rule == RAGG_RULE_TRIMMED_MEAN ||
                  cfg.rule == RAGG_RULE_MEAMED || cfg.rule == RAGG_RULE_MEAN);
}

// exact: the same bits at every index; otherwise within tolerance(t).
inline void expect_match(ragg_dtype_t t, const void *got, const void *ref, size_t n, bool exact,
                         const std::string &what) {
  size_t es = esize(t), bad = 0;
  Tol tol = tolerance(t);
  for (size_t k = 0; k < n; ++k) {
    float g = load(t, got, k), r = load(t, ref, k);
    bool ok;
    if (exact)
      ok = std::memcmp((const char *)got + k * es, (const char *)ref + k * es, es) == 0;
    else
      ok = (std::isnan(g) && std::isnan(r)) || g == r ||
           std::fabs((double)g - (double)r) <= tol.atol + tol.rtol * std::fabs((double)r);
    if (!ok && bad++ < 3)
      ADD_FAILURE() << what << ": index " << k << " got " << g << " expected " << r
                    << (exact ? " (bit-exact)" : " (atol " + std::to_string(tol.atol) + ", rtol " +
                                                     std::to_string(tol.rtol) + ")");
  }
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << n << " values differ";
}

inline uint64_t fnv(const void *p, size_t n) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ ((const unsigned char *)p)[i]) * 0x100000001B3ull;
  return h;
}

// Every rank holds the same bytes.
inline void expect_same_everywhere(const void *p, size_t n, const std::string &what) {
  uint64_t h = fnv(p, n);
  std::vector<uint64_t> all((size_t)size());
  MPI_Allgather(&h, 1, MPI_UINT64_T, all.data(), 1, MPI_UINT64_T, MPI_COMM_WORLD);
  for (size_t q = 1; q < all.size(); ++q)
    EXPECT_EQ(all[q], all[0]) << what << ": rank " << q << " holds other bits than rank 0";
}

// Every rank got the same status.
inline void expect_status_everywhere(int st, const std::string &what) {
  std::vector<int> all((size_t)size());
  MPI_Allgather(&st, 1, MPI_INT, all.data(), 1, MPI_INT, MPI_COMM_WORLD);
  for (size_t q = 1; q < all.size(); ++q)
    EXPECT_EQ(all[q], all[0]) << what << ": rank " << q << " returned another status than rank 0";
}

// The largest f <= fmax the rule accepts with n = P inputs; -1 if none.
inline int64_t feasible_f(ragg_rule_t r, int P, int64_t fmax) {
  for (int64_t f = fmax; f >= 0; --f)
    if (ragg_rule_min_inputs(r, f) <= P) return f;
  return -1;
}

// A configuration that makes each rule do real work on the seeded rows.
inline void rule_config(ragg_config_t *cfg, ragg_rule_t r, int64_t f) {
  ragg_config_init(cfg, r, f);
  if (r == RAGG_RULE_CENTERED_CLIP) {
    cfg->tau = 0.3;
    cfg->iters = 3;
  }
}

struct Ctx {
  ragg_context_t *c = nullptr;
  Ctx() { ragg_context_create(&c, RAGG_BACKEND_CPU, 0); }
  ~Ctx() { ragg_context_destroy(c); }
};

}  // namespace mpi_test
