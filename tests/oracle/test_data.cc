#include "oracle/test_data.hh"

#include <algorithm>
#include <cmath>
#include <limits>

#include "test_helpers.hh"

namespace ragg_test {

Inputs::Inputs(ragg_dtype_t dtype_, int64_t n_, int64_t d_, int64_t ld_)
    : dtype(dtype_), n(n_), d(d_), ld(ld_ > 0 ? ld_ : d_) {
  buf.assign((size_t)(n * ld) * dtype_size(dtype), 0);
  const double qnan = std::numeric_limits<double>::quiet_NaN();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = d; k < ld; ++k) store_value(dtype, buf.data(), i * ld + k, qnan);
}

const void *Inputs::row(int64_t i) const {
  return buf.data() + (size_t)(i * ld) * dtype_size(dtype);
}
double Inputs::get(int64_t i, int64_t k) const { return load_value(dtype, buf.data(), i * ld + k); }
void Inputs::set(int64_t i, int64_t k, double v) { store_value(dtype, buf.data(), i * ld + k, v); }

std::vector<double> Inputs::row_values(int64_t i) const {
  std::vector<double> r((size_t)d);
  for (int64_t k = 0; k < d; ++k) r[(size_t)k] = get(i, k);
  return r;
}
std::vector<std::vector<double>> Inputs::rows() const {
  std::vector<std::vector<double>> r;
  for (int64_t i = 0; i < n; ++i) r.push_back(row_values(i));
  return r;
}
std::vector<const void *> Inputs::row_ptrs() const {
  std::vector<const void *> p;
  for (int64_t i = 0; i < n; ++i) p.push_back(row(i));
  return p;
}
Inputs Inputs::permuted(const std::vector<int64_t> &perm) const {
  Inputs y(dtype, n, d, ld);
  const size_t bytes = (size_t)ld * dtype_size(dtype);
  for (int64_t i = 0; i < n; ++i)
    std::memcpy(y.buf.data() + (size_t)i * bytes, buf.data() + (size_t)perm[(size_t)i] * bytes,
                bytes);
  return y;
}
void Inputs::copy_row(int64_t dst, int64_t src) {
  for (int64_t k = 0; k < d; ++k) set(dst, k, get(src, k));
}

void fill_gaussian(Inputs &x, std::mt19937_64 &rng, double scale) {
  std::normal_distribution<double> g(0.0, scale);
  for (int64_t i = 0; i < x.n; ++i)
    for (int64_t k = 0; k < x.d; ++k) x.set(i, k, g(rng));
}

void fill_separated(Inputs &x, std::mt19937_64 &rng, double centre_scale) {
  std::normal_distribution<double> g(0.0, 1.0);
  std::vector<double> centre((size_t)x.d);
  for (auto &c : centre) c = centre_scale * g(rng);
  const std::vector<int64_t> ladder = random_permutation(x.n, rng);
  for (int64_t i = 0; i < x.n; ++i) {
    const double r = 1.0 + 0.15 * (double)ladder[(size_t)i];
    for (int64_t k = 0; k < x.d; ++k) x.set(i, k, centre[(size_t)k] + r * g(rng));
  }
}

void fill_ties(Inputs &x, std::mt19937_64 &rng, int range) {
  std::uniform_int_distribution<int> u(-range, range);
  for (int64_t i = 0; i < x.n; ++i)
    for (int64_t k = 0; k < x.d; ++k) x.set(i, k, (double)u(rng));
}

const char *hostile_name(int kind) {
  static const char *names[] = {"+NaN", "-NaN", "+Inf", "-Inf", "+max", "-max", "-1e6*honest",
                                "mixed"};
  return kind >= 0 && kind < HOSTILE_KINDS ? names[kind] : "?";
}

void make_hostile(Inputs &x, int64_t row, int kind, int64_t honest) {
  const double inf = std::numeric_limits<double>::infinity();
  const double big = dtype_max(x.dtype);
  // Negative NaN: the sign bit set on a quiet NaN, stored bit-exactly.
  const double nan_pos = std::numeric_limits<double>::quiet_NaN();
  const double nan_neg = -nan_pos;
  const double cycle[6] = {nan_pos, nan_neg, inf, -inf, big, -big};
  for (int64_t k = 0; k < x.d; ++k) {
    double v = 0;
    switch (kind) {
      case HOSTILE_NAN_POS: v = nan_pos; break;
      case HOSTILE_NAN_NEG: v = nan_neg; break;
      case HOSTILE_INF_POS: v = inf; break;
      case HOSTILE_INF_NEG: v = -inf; break;
      case HOSTILE_MAX_POS: v = big; break;
      case HOSTILE_MAX_NEG: v = -big; break;
      case HOSTILE_FLIP_1E6: v = -1e6 * x.get(honest, k); break;
      default: v = cycle[k % 6]; break;
    }
    x.set(row, k, v);
  }
}

std::vector<int64_t> random_permutation(int64_t n, std::mt19937_64 &rng) {
  std::vector<int64_t> p((size_t)n);
  for (int64_t i = 0; i < n; ++i) p[(size_t)i] = i;
  std::shuffle(p.begin(), p.end(), rng);
  return p;
}

}  // namespace ragg_test
