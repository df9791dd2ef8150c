// Shared test helpers: dtype conversions written independently of the
// library, the one tolerance table, contexts, seeds and comparisons.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <functional>

#include "oracle/oracle.hh"
#include "oracle/test_data.hh"
#include "robustagg.h"

namespace ragg_test {

// ---------------------------------------------------------------------------
// Conversions. 16-bit values convert exactly to float; float -> 16-bit rounds
// to nearest even and keeps NaN a NaN (the quiet bit is forced so that a
// payload living only in the dropped low bits cannot turn into an Inf).

inline uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}
inline float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

inline float half_to_float(uint16_t h) {
  const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t man = h & 0x3ffu;
  if (exp == 0x1f) return bits_float(sign | 0x7f800000u | (man << 13));
  if (exp != 0) return bits_float(sign | ((exp + 112u) << 23) | (man << 13));
  // Subnormal (or zero): man * 2^-24, exact in float.
  const float mag = (float)man * 5.9604644775390625e-08f;
  return sign ? -mag : mag;
}

inline uint16_t float_to_half(float f) {
  const uint32_t x = float_bits(f);
  const uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
  const uint32_t ax = x & 0x7fffffffu;
  if (ax > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
  // 65520 = 65504 + half an ulp; the tie goes to the even neighbour, Inf.
  if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);
  if (ax >= 0x38800000u) {  // normal half
    uint32_t h = (ax - 0x38000000u) >> 13;
    const uint32_t rem = ax & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;
    return (uint16_t)(sign | h);
  }
  // Subnormal half: round |f| / 2^-24 to the nearest even integer (exact in double).
  const double scaled = (double)bits_float(ax) * 16777216.0;
  double fl = std::floor(scaled);
  const double rem = scaled - fl;
  if (rem > 0.5 || (rem == 0.5 && std::fmod(fl, 2.0) == 1.0)) fl += 1.0;
  return (uint16_t)(sign | (uint16_t)fl);
}

inline float bf16_to_float(uint16_t b) { return bits_float((uint32_t)b << 16); }

inline uint16_t float_to_bf16(float f) {
  const uint32_t x = float_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x0040u);
  return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

inline size_t dtype_size(ragg_dtype_t t) { return t == RAGG_F32 ? 4 : 2; }

// Every result is formed in double and rounded once to float; 16-bit outputs
// then round float -> 16-bit.
inline double load_value(ragg_dtype_t t, const void *p, int64_t i) {
  if (t == RAGG_F32) return ((const float *)p)[i];
  const uint16_t u = ((const uint16_t *)p)[i];
  return t == RAGG_F16 ? half_to_float(u) : bf16_to_float(u);
}
inline void store_value(ragg_dtype_t t, void *p, int64_t i, double v) {
  const float f = (float)v;
  if (t == RAGG_F32)
    ((float *)p)[i] = f;
  else
    ((uint16_t *)p)[i] = t == RAGG_F16 ? float_to_half(f) : float_to_bf16(f);
}
inline double round_to_dtype(ragg_dtype_t t, double v) {
  unsigned char buf[4];
  store_value(t, buf, 0, v);
  return load_value(t, buf, 0);
}
// Largest finite value of the dtype (FLT_MAX itself rounds to Inf in 16 bits).
inline double dtype_max(ragg_dtype_t t) {
  return t == RAGG_F32 ? (double)FLT_MAX : t == RAGG_F16 ? 65504.0 : (double)bf16_to_float(0x7f7f);
}
inline const char *dtype_name(ragg_dtype_t t) {
  return t == RAGG_F32 ? "f32" : t == RAGG_F16 ? "f16" : "bf16";
}

// ---------------------------------------------------------------------------
// Tolerances, written down once: |got - ref| <= atol + rtol * |ref|, for data
// of unit scale. fp32 leaves room for a Gram matrix accumulated in fp32 and
// for iterative solvers; 16-bit is dominated by the final rounding (2^-11 and
// 2^-8 relative) plus mixed rows that may be staged in the input dtype.
struct Tol {
  double atol, rtol;
};
inline Tol tol_for(ragg_dtype_t t) {
  switch (t) {
    case RAGG_F32: return {2e-5, 2e-5};
    case RAGG_F16: return {2e-3, 2e-3};
    default: return {1.6e-2, 1.6e-2};
  }
}
// Report entries are doubles (scores, weights): computed from the same inputs
// but possibly through an fp32 Gram matrix.
inline Tol report_tol(ragg_dtype_t t) {
  const Tol v = tol_for(t);
  return {std::max(1e-5, v.atol), std::max(1e-4, v.rtol)};
}

inline bool close_enough(double ref, double got, Tol tol) {
  if (std::isnan(ref)) return std::isnan(got);
  if (std::isinf(ref)) return got == ref;
  if (!std::isfinite(got)) return false;
  return std::fabs(got - ref) <= tol.atol + tol.rtol * std::fabs(ref);
}

// Compares arrays element by element; reports the first few mismatches with
// the index, both values and the tolerance used.
inline ::testing::AssertionResult all_close(const char *what, const std::vector<double> &ref,
                                            const std::vector<double> &got, Tol tol) {
  if (ref.size() != got.size())
    return ::testing::AssertionFailure()
           << what << ": size " << got.size() << ", expected " << ref.size();
  std::ostringstream msg;
  int64_t bad = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (close_enough(ref[i], got[i], tol)) continue;
    if (bad < 8) {
      msg.precision(17);
      msg << "\n  " << what << "[" << i << "]: got " << got[i] << ", oracle " << ref[i]
          << ", tolerance " << tol.atol << " + " << tol.rtol << " * |oracle| = "
          << tol.atol + tol.rtol * std::fabs(ref[i]);
    }
    ++bad;
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << bad << " of " << ref.size() << " mismatches" << msg.str();
}

// ---------------------------------------------------------------------------
// Seeds: RAGG_TEST_SEED fixes the run; otherwise fresh each run. Every test
// prints its seed through SCOPED_TRACE so a failure can be replayed.
inline uint64_t base_seed() {
  static const uint64_t seed = [] {
    const char *env = std::getenv("RAGG_TEST_SEED");
    if (env && *env) return (uint64_t)std::strtoull(env, nullptr, 0);
    std::random_device rd;
    return ((uint64_t)rd() << 32) ^ rd();
  }();
  return seed;
}
inline uint64_t case_seed(uint64_t salt) {
  uint64_t z = base_seed() + 0x9E3779B97F4A7C15ull * (salt + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
inline std::string seed_note(uint64_t seed) {
  std::ostringstream s;
  s << "seed " << seed << " (base RAGG_TEST_SEED=" << base_seed() << ")";
  return s.str();
}

// ---------------------------------------------------------------------------
struct Context {
  ragg_context_t *ctx = nullptr;
  explicit Context(ragg_backend_t backend = RAGG_BACKEND_CPU, int device = 0) {
    status = ragg_context_create(&ctx, backend, device);
  }
  ~Context() { ragg_context_destroy(ctx); }
  Context(const Context &) = delete;
  Context &operator=(const Context &) = delete;
  ragg_status_t status;
  std::string last_error() const {
    const char *e = ragg_last_error(ctx);
    return e ? std::string(e) : std::string("(null)");
  }
};

inline ragg_config_t make_config(ragg_rule_t rule, int64_t f) {
  ragg_config_t cfg;
  std::memset(&cfg, 0xA5, sizeof cfg);  // init must set every field
  ragg_config_init(&cfg, rule, f);
  return cfg;
}

inline const char *rule_label(ragg_rule_t r) {
  const char *s = ragg_rule_name(r);
  return s ? s : "?";
}

// ---------------------------------------------------------------------------
// Running the library.

enum class Entry { Contiguous, Pointers };
inline const char *entry_name(Entry e) { return e == Entry::Contiguous ? "x+ld" : "rows"; }

// Poison patterns: whatever the library leaves unwritten keeps them.
constexpr unsigned char kOutPoison = 0x7B;
constexpr double kScorePoison = -777.25;
constexpr int32_t kSelectedPoison = -77;
constexpr int64_t kNonfinitePoison = -99;

struct LibRun {
  ragg_status_t status = RAGG_ERR_INTERNAL;
  std::string error;
  std::vector<unsigned char> out_raw;
  std::vector<double> out;  // out_raw read back as doubles
  std::vector<double> scores, weights;
  std::vector<int32_t> selected;
  std::vector<int64_t> nonfinite;
};

inline LibRun run_library(ragg_context_t *ctx, const ragg_config_t &cfg, const Inputs &x,
                          Entry entry = Entry::Contiguous, bool want_report = true) {
  LibRun r;
  const size_t es = dtype_size(x.dtype);
  r.out_raw.assign((size_t)x.d * es, kOutPoison);
  const size_t n = (size_t)x.n;
  r.scores.assign(n, kScorePoison);
  r.weights.assign(n, kScorePoison);
  r.selected.assign(n, kSelectedPoison);
  r.nonfinite.assign(n, kNonfinitePoison);
  ragg_report_t rep;
  rep.capacity = x.n;
  rep.scores = r.scores.data();
  rep.weights = r.weights.data();
  rep.selected = r.selected.data();
  rep.nonfinite = r.nonfinite.data();
  if (entry == Entry::Contiguous) {
    r.status = ragg_aggregate(ctx, &cfg, x.dtype, x.data(), x.n, x.d, x.ld, r.out_raw.data(),
                              want_report ? &rep : nullptr);
  } else {
    const std::vector<const void *> rows = x.row_ptrs();
    r.status = ragg_aggregate_ptrs(ctx, &cfg, x.dtype, rows.data(), x.n, x.d, r.out_raw.data(),
                                   want_report ? &rep : nullptr);
  }
  const char *e = ragg_last_error(ctx);
  r.error = e ? e : "(null)";
  for (int64_t k = 0; k < x.d; ++k) r.out.push_back(load_value(x.dtype, r.out_raw.data(), k));
  return r;
}

inline bool out_untouched(const LibRun &r) {
  for (unsigned char b : r.out_raw)
    if (b != kOutPoison) return false;
  return true;
}

inline std::string describe(const ragg_config_t &cfg, const Inputs &x, Entry entry) {
  std::ostringstream s;
  s << rule_label(cfg.rule) << " n=" << x.n << " d=" << x.d << " ld=" << x.ld << " f=" << cfg.f
    << " dtype=" << dtype_name(x.dtype) << " entry=" << entry_name(entry);
  if (cfg.m) s << " m=" << cfg.m;
  if (cfg.clip_norm > 0) s << " clip_norm=" << cfg.clip_norm;
  if (cfg.adaptive_clip) s << " arc";
  if (cfg.mix == RAGG_MIX_NNM) s << " nnm";
  if (cfg.mix == RAGG_MIX_BUCKETING) s << " bucket=" << cfg.bucket_size << " seed=" << cfg.seed;
  return s.str();
}

// Bitwise equality of two outputs of the same dtype (the raw bytes).
inline ::testing::AssertionResult same_bits(const LibRun &a, const LibRun &b) {
  if (a.out_raw == b.out_raw) return ::testing::AssertionSuccess();
  for (size_t i = 0; i < a.out.size(); ++i)
    if (std::memcmp(&a.out_raw[i * (a.out_raw.size() / a.out.size())],
                    &b.out_raw[i * (b.out_raw.size() / b.out.size())],
                    a.out_raw.size() / a.out.size()) != 0) {
      std::ostringstream s;
      s.precision(17);
      s << "outputs differ at [" << i << "]: " << a.out[i] << " vs " << b.out[i];
      return ::testing::AssertionFailure() << s.str();
    }
  return ::testing::AssertionFailure() << "outputs differ in size";
}

// ---------------------------------------------------------------------------
// Library against oracle.

// Rankings whose relative gap is below this could flip under the rounding of
// an fp32 Gram matrix; such draws are replaced.
constexpr double kMinMargin = 1e-4;

struct CheckOptions {
  bool report = true;
  bool exact = false;  // output must equal the once-rounded oracle bit for bit
  oracle::Vec centre;  // centered clipping v_0 as exact values (cfg.cc_center set by caller)
};

// Compares one library call with the oracle: status, output, report.
inline void expect_matches(ragg_context_t *ctx, const ragg_config_t &cfg, const Inputs &x,
                           Entry entry, const oracle::Result &ref,
                           const CheckOptions &opt = CheckOptions()) {
  SCOPED_TRACE(describe(cfg, x, entry));
  const LibRun got = run_library(ctx, cfg, x, entry, opt.report);
  ASSERT_EQ(got.status, ref.status) << "library: " << ragg_status_string(got.status) << " / "
                                    << got.error;
  if (ref.status != RAGG_SUCCESS) {
    EXPECT_TRUE(out_untouched(got)) << "out written on error";
    return;
  }
  EXPECT_TRUE(all_close("out", ref.out, got.out, tol_for(x.dtype)));
  if (opt.exact) {
    std::vector<double> rounded;
    for (double v : ref.out) rounded.push_back(round_to_dtype(x.dtype, v));
    EXPECT_TRUE(all_close("out (exact)", rounded, got.out, Tol{0, 0}));
  }
  if (!opt.report) return;
  // Asking for the report changes nothing in the output (without it some
  // plans do less: centered clipping's single step reads only ||x_i - v_0||,
  // coordinate-wise rules skip the per-row counts).
  const LibRun bare = run_library(ctx, cfg, x, entry, false);
  ASSERT_EQ(bare.status, RAGG_SUCCESS) << bare.error;
  EXPECT_TRUE(same_bits(got, bare)) << "output with the report vs without";
  const Tol rt = report_tol(x.dtype);
  EXPECT_EQ(got.nonfinite, ref.nonfinite) << "report.nonfinite";
  if (!ref.selected.empty()) {
    EXPECT_EQ(got.selected, ref.selected) << "report.selected";
  }
  if (!ref.weights.empty()) {
    EXPECT_TRUE(all_close("weights", ref.weights, got.weights, rt));
  } else if (cfg.mix == RAGG_MIX_NONE && cfg.clip_norm <= 0 && !cfg.adaptive_clip) {
    // Coordinate-wise rules and Bulyan leave weights unwritten.
    for (double w : got.weights) {
      EXPECT_EQ(w, kScorePoison) << "report.weights written";
      break;
    }
  }
  if (!ref.scores.empty()) {
    EXPECT_TRUE(all_close("scores", ref.scores, got.scores, rt));
  }
}

using Filler = std::function<void(Inputs &, std::mt19937_64 &)>;
using Tweak = std::function<void(ragg_config_t &)>;

struct Shape {
  int64_t n, d, f;
  ragg_dtype_t dtype = RAGG_F32;
  int64_t ld = 0;  // 0: ld = d
  Entry entry = Entry::Contiguous;
};

inline Filler gaussian_fill(double scale = 1.0) {
  return [scale](Inputs &x, std::mt19937_64 &rng) { fill_gaussian(x, rng, scale); };
}
inline Filler separated_fill() {
  return [](Inputs &x, std::mt19937_64 &rng) { fill_separated(x, rng); };
}
inline Filler ties_fill(int range) {
  return [range](Inputs &x, std::mt19937_64 &rng) { fill_ties(x, rng, range); };
}

// Draws inputs of the given shape (replacing draws whose rankings are too
// close to call) and checks the library against the oracle.
inline void check_shape(ragg_rule_t rule, const Shape &s, uint64_t salt, const Filler &fill,
                        const Tweak &tweak = Tweak(), CheckOptions opt = CheckOptions()) {
  Context ctx;
  ASSERT_EQ(ctx.status, RAGG_SUCCESS);
  ragg_config_t cfg = make_config(rule, s.f);
  if (tweak) tweak(cfg);
  for (int attempt = 0; attempt < 50; ++attempt) {
    const uint64_t seed = case_seed(salt * 1000 + (uint64_t)attempt);
    std::mt19937_64 rng(seed);
    Inputs x(s.dtype, s.n, s.d, s.ld);
    fill(x, rng);
    const oracle::Result ref = oracle::aggregate(cfg, x.rows(), opt.centre);
    if (ref.margin < kMinMargin) continue;
    SCOPED_TRACE(seed_note(seed));
    expect_matches(ctx.ctx, cfg, x, s.entry, ref, opt);
    return;
  }
  FAIL() << "no draw with an unambiguous ranking in 50 tries";
}

// The honest per-coordinate range [lo, hi] of the rows not in `hostile`.
inline void honest_range(const Inputs &x, const std::vector<bool> &hostile, std::vector<double> &lo,
                         std::vector<double> &hi) {
  lo.assign((size_t)x.d, INFINITY);
  hi.assign((size_t)x.d, -INFINITY);
  for (int64_t i = 0; i < x.n; ++i) {
    if (hostile[(size_t)i]) continue;
    for (int64_t k = 0; k < x.d; ++k) {
      lo[(size_t)k] = std::min(lo[(size_t)k], x.get(i, k));
      hi[(size_t)k] = std::max(hi[(size_t)k], x.get(i, k));
    }
  }
}

// Largest f the rule accepts for n inputs.
inline int64_t f_limit(ragg_rule_t rule, int64_t n) {
  int64_t f = 0;
  while (oracle::min_inputs(rule, f + 1) <= n && f + 1 < n) ++f;
  return f;
}

// The shapes every Gram-space rule is checked on: odd and even n, f = 0 and
// at the limit, d = 1, a d that no tile divides, ld > d, row pointers, fp16
// and bf16; well-separated data so rankings are unambiguous.
inline void check_gram_shapes(ragg_rule_t rule, int64_t n_odd, int64_t d_main, int64_t d_odd,
                              uint64_t salt, const Tweak &tweak = Tweak(),
                              const Filler &fill = separated_fill()) {
  uint64_t s = salt * 100;
  for (int64_t n : {n_odd, n_odd + 1})
    for (int64_t f : {(int64_t)0, f_limit(rule, n)}) {
      check_shape(rule, {n, d_main, f}, ++s, fill, tweak);
      check_shape(rule, {n, 1, f}, ++s, fill, tweak);
      check_shape(rule, {n, d_odd, f}, ++s, fill, tweak);
    }
  const int64_t n = n_odd, f = f_limit(rule, n);
  check_shape(rule, {n, d_main, f, RAGG_F32, d_main + 11}, ++s, fill, tweak);
  check_shape(rule, {n, d_odd, f, RAGG_F32, 0, Entry::Pointers}, ++s, fill, tweak);
  for (ragg_dtype_t t : {RAGG_F16, RAGG_BF16}) {
    check_shape(rule, {n, d_main, f, t}, ++s, fill, tweak);
    check_shape(rule, {n + 1, d_odd, f, t, d_odd + 3}, ++s, fill, tweak);
    check_shape(rule, {n, d_main, f, t, 0, Entry::Pointers}, ++s, fill, tweak);
  }
}

// Separated rows with some rows repeated exactly (ties decided by index).
inline Filler repeated_rows_fill() {
  return [](Inputs &x, std::mt19937_64 &rng) {
    fill_separated(x, rng);
    for (int64_t i = 2; i < x.n; i += 3) x.copy_row(i, i - 2);
  };
}

// Brute's and SMEA's tie rule where the CPU backend cuts the C(n, f) subsets
// into ranges scanned on several threads (n = 24, f = 4: 10626 subsets, above
// its threshold): rows 0, 21 and 22 far apart, the other 21 equal, so the 21
// subsets of 20 equal rows tie at a diameter (and a top eigenvalue) of
// exactly 0. The lexicographically smallest, rows 1-20, has rank C(23, 4) =
// 8855 (the first subset without row 0); the others lie between it and the
// last rank, over several ranges.
inline void expect_tie_goes_to_the_first_subset(ragg_rule_t rule) {
  const int64_t n = 24, f = 4, d = 6;
  Context ctx;
  ASSERT_EQ(ctx.status, RAGG_SUCCESS);
  Inputs x(RAGG_F32, n, d);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < d; ++k)
      x.set(i, k, i == 0 || i == 21 || i == 22 ? 100.0 * (double)(i + 1) + (double)k : 0.25);
  const LibRun r = run_library(ctx.ctx, make_config(rule, f), x);
  ASSERT_EQ(r.status, RAGG_SUCCESS) << r.error;
  for (int64_t i = 0; i < n; ++i)
    EXPECT_EQ(r.selected[(size_t)i], i >= 1 && i <= 20 ? 1 : 0) << "row " << i;
  for (int64_t k = 0; k < d; ++k) EXPECT_EQ(r.out[(size_t)k], 0.25);
}

// Separated rows with rows 1, 3, 5... (up to `count`) made hostile of `kind`.
inline Filler hostile_fill(int kind, int64_t count) {
  return [kind, count](Inputs &x, std::mt19937_64 &rng) {
    fill_separated(x, rng);
    for (int64_t t = 0; t < count; ++t) make_hostile(x, 1 + 2 * t, kind, 0);
  };
}

}  // namespace ragg_test
