// Definition-level oracles (DESIGN.md section 2). Each rule is the literal
// definition on d-vectors in double; distances come from differences, never
// from a Gram matrix, so the oracle does not share the library's cancellation.
#include "oracle/oracle.hh"

#include <algorithm>
#include <cfloat>
#include <cstring>
#include <numeric>
#include <utility>

namespace oracle {
namespace {

using Mat = std::vector<Vec>;
using Index = std::vector<int64_t>;
constexpr double kInf = INFINITY;

// What a rule returns on the rows it was given (after any pre-step).
struct RuleOut {
  Vec out;
  Vec beta;                     // weights over the rule's rows; empty: not a combination
  std::vector<int32_t> chosen;  // Bulyan's S over the rule's rows
  Vec scores;                   // over the rule's rows
  bool coordinate = false;
  double margin = kInf;
};

// Relative gap of a ranking decision; equal values are exact ties decided by
// index, and an infinite side is never a rounding question.
double rel_gap(double a, double b) {
  if (a == b || !std::isfinite(a) || !std::isfinite(b)) return kInf;
  const double s = std::max(std::fabs(a), std::fabs(b));
  return std::fabs(a - b) / s;
}

double sq_dist(const Vec &a, const Vec &b) {
  double s = 0;
  for (size_t k = 0; k < a.size(); ++k) {
    const double t = a[k] - b[k];
    s += t * t;
  }
  return s;
}
double norm(const Vec &a) {
  double s = 0;
  for (double v : a) s += v * v;
  return std::sqrt(s);
}

std::vector<bool> excluded_rows(const Rows &x) {
  std::vector<bool> e(x.size());
  for (size_t i = 0; i < x.size(); ++i) e[i] = row_excluded(x[i]);
  return e;
}

// D[i][j] = ||x_i - x_j||^2; +Inf to or from an excluded row (i != j).
Mat distances(const Rows &x, const std::vector<bool> &exc) {
  const size_t n = x.size();
  Mat D(n, Vec(n, 0.0));
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < n; ++j)
      if (i != j) D[i][j] = (exc[i] || exc[j]) ? kInf : sq_dist(x[i], x[j]);
  return D;
}

// sum_j beta_j x_j over the nonzero beta_j only: 0 * NaN must not leak.
Vec combine(const Rows &x, const Vec &beta, size_t d) {
  Vec out(d, 0.0);
  for (size_t j = 0; j < x.size(); ++j) {
    if (beta[j] == 0) continue;
    for (size_t k = 0; k < d; ++k) out[k] += beta[j] * x[j][k];
  }
  return out;
}

Vec distance_scores(const Rows &x, const std::vector<bool> &exc, const Vec &out) {
  Vec s(x.size());
  for (size_t i = 0; i < x.size(); ++i) s[i] = exc[i] ? kInf : std::sqrt(sq_dist(x[i], out));
  return s;
}

Vec column(const Rows &x, size_t k) {
  Vec c(x.size());
  for (size_t i = 0; i < x.size(); ++i) c[i] = x[i][k];
  return c;
}

void sort_by_key(Vec &c) {
  std::sort(c.begin(), c.end(),
            [](double a, double b) { return order_key(a) < order_key(b); });
}

// Indices sorted by (value, index): the lower index wins ties.
Index order_by(const Vec &v) {
  Index idx(v.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(),
                   [&](int64_t a, int64_t b) { return v[(size_t)a] < v[(size_t)b]; });
  return idx;
}

long double binomial(int64_t n, int64_t k) {
  long double c = 1;
  for (int64_t i = 0; i < k; ++i) c = c * (long double)(n - i) / (long double)(i + 1);
  return c;
}

// Visits every size-s subset of 0..n-1 in lexicographic order.
template <class Visit>
void for_each_subset(int64_t n, int64_t s, Visit visit) {
  Index c((size_t)s);
  std::iota(c.begin(), c.end(), 0);
  for (;;) {
    visit(c);
    int64_t i = s - 1;
    while (i >= 0 && c[(size_t)i] == n - s + i) --i;
    if (i < 0) return;
    ++c[(size_t)i];
    for (int64_t j = i + 1; j < s; ++j) c[(size_t)j] = c[(size_t)j - 1] + 1;
  }
}

// ---------------------------------------------------------------- coordinate
// Fraction of coordinates where x_i lies strictly below the key of rank f or
// strictly above the key of rank n-1-f.
Vec coordinate_scores(const Rows &x, int64_t f) {
  const size_t n = x.size(), d = x[0].size();
  Vec s(n, 0.0);
  for (size_t k = 0; k < d; ++k) {
    Vec c = column(x, k);
    sort_by_key(c);
    const uint64_t lo = order_key(c[(size_t)f]), hi = order_key(c[n - 1 - (size_t)f]);
    for (size_t i = 0; i < n; ++i) {
      const uint64_t key = order_key(x[i][k]);
      if (key < lo || key > hi) s[i] += 1;
    }
  }
  for (double &v : s) v /= (double)d;
  return s;
}

double trimmed_mean(Vec c, int64_t f) {
  sort_by_key(c);
  const int64_t n = (int64_t)c.size();
  double s = 0;
  for (int64_t r = f; r < n - f; ++r) s += c[(size_t)r];  // ascending rank order
  return s / (double)(n - 2 * f);
}

RuleOut coordinate_rule(const Rows &x, const ragg_config_t &cfg) {
  RuleOut r;
  r.coordinate = true;
  const size_t d = x[0].size();
  const int64_t n = (int64_t)x.size(), f = cfg.f;
  r.out.resize(d);
  for (size_t k = 0; k < d; ++k) {
    const Vec c = column(x, k);
    switch (cfg.rule) {
      case RAGG_RULE_MEDIAN: r.out[k] = median(c); break;
      case RAGG_RULE_TRIMMED_MEAN: r.out[k] = trimmed_mean(c, f); break;
      default: r.out[k] = meamed(c, n - f); break;
    }
  }
  r.scores = coordinate_scores(x, f);
  return r;
}

// -------------------------------------------------------------------- Krum
// score(i) = sum of the k smallest D[i][j], j in R, j != i, added in
// ascending order.
Vec krum_scores(const Mat &D, const Index &R, int64_t k) {
  Vec s(R.size());
  for (size_t a = 0; a < R.size(); ++a) {
    Vec ds;
    for (size_t b = 0; b < R.size(); ++b)
      if (b != a) ds.push_back(D[(size_t)R[a]][(size_t)R[b]]);
    std::sort(ds.begin(), ds.end());
    double sum = 0;
    for (int64_t t = 0; t < k && t < (int64_t)ds.size(); ++t) sum += ds[(size_t)t];
    s[a] = sum;
  }
  return s;
}

Index all_rows(size_t n) {
  Index R(n);
  std::iota(R.begin(), R.end(), 0);
  return R;
}

RuleOut krum(const Rows &x, const ragg_config_t &cfg) {
  RuleOut r;
  const int64_t n = (int64_t)x.size(), f = cfg.f;
  const std::vector<bool> exc = excluded_rows(x);
  const Mat D = distances(x, exc);
  r.scores = krum_scores(D, all_rows((size_t)n), n - f - 2);
  const Index ord = order_by(r.scores);
  const int64_t m =
      cfg.rule == RAGG_RULE_KRUM ? 1 : (cfg.m == 0 ? n - f : cfg.m);
  r.beta.assign((size_t)n, 0.0);
  for (int64_t t = 0; t < m; ++t) r.beta[(size_t)ord[(size_t)t]] = 1.0 / (double)m;
  if (m < n) r.margin = rel_gap(r.scores[(size_t)ord[(size_t)m - 1]], r.scores[(size_t)ord[(size_t)m]]);
  r.out = combine(x, r.beta, x[0].size());
  return r;
}

RuleOut bulyan(const Rows &x, const ragg_config_t &cfg) {
  RuleOut r;
  const int64_t n = (int64_t)x.size(), f = cfg.f;
  const std::vector<bool> exc = excluded_rows(x);
  const Mat D = distances(x, exc);
  const int64_t theta = n - 2 * f, beta = theta - 2 * f;
  Index R = all_rows((size_t)n), S;
  r.chosen.assign((size_t)n, 0);
  for (int64_t round = 0; round < theta; ++round) {
    const int64_t size = (int64_t)R.size();
    const int64_t k = std::min(std::max(size - f - 2, (int64_t)1), size - 1);
    const Vec s = krum_scores(D, R, k);
    if (round == 0) r.scores = s;
    const Index ord = order_by(s);  // R is kept ascending: ties go to the lower input index
    if (size > 1) r.margin = std::min(r.margin, rel_gap(s[(size_t)ord[0]], s[(size_t)ord[1]]));
    const int64_t pick = R[(size_t)ord[0]];
    S.push_back(pick);
    r.chosen[(size_t)pick] = 1;
    R.erase(R.begin() + ord[0]);
  }
  const size_t d = x[0].size();
  r.out.resize(d);
  for (size_t k = 0; k < d; ++k) {
    Vec c;
    for (int64_t i : S) c.push_back(x[(size_t)i][k]);
    r.out[k] = meamed(c, beta);
  }
  return r;
}

// ------------------------------------------------------- geometric median
RuleOut geomed(const Rows &x, const ragg_config_t &cfg) {
  RuleOut r;
  const size_t n = x.size(), d = x[0].size();
  const std::vector<bool> exc = excluded_rows(x);
  const Mat D = distances(x, exc);
  int64_t medoid = -1;
  double best = kInf;
  for (size_t i = 0; i < n; ++i) {
    if (exc[i]) continue;
    double s = 0;
    for (size_t j = 0; j < n; ++j)
      if (j != i && !exc[j]) s += std::sqrt(D[i][j]);
    if (medoid < 0 || s < best) medoid = (int64_t)i, best = s;
  }
  r.beta.assign(n, 0.0);
  if (medoid < 0) {  // every row excluded: nothing to start from
    r.out.assign(d, NAN);
    r.scores.assign(n, kInf);
    return r;
  }
  r.beta[(size_t)medoid] = 1.0;
  Vec z = combine(x, r.beta, d);
  auto objective = [&](const Vec &zz) {
    double F = 0;
    for (size_t i = 0; i < n; ++i)
      if (!exc[i]) F += std::sqrt(sq_dist(x[i], zz));
    return F;
  };
  double F = objective(z);
  for (int64_t it = 1; it <= cfg.max_iters; ++it) {
    Vec w(n, 0.0);
    double wsum = 0;
    for (size_t i = 0; i < n; ++i) {
      if (exc[i]) continue;
      w[i] = 1.0 / std::max(cfg.nu, std::sqrt(sq_dist(x[i], z)));
      wsum += w[i];
    }
    for (size_t i = 0; i < n; ++i) r.beta[i] = w[i] / wsum;
    z = combine(x, r.beta, d);
    const double F2 = objective(z);
    if (std::fabs(F - F2) <= cfg.tol * F2) break;
    F = F2;
  }
  r.out = z;
  r.scores = distance_scores(x, exc, z);
  return r;
}

// ------------------------------------------------------- Brute and SMEA
// Largest eigenvalue of (1/|S|) sum (x_i - mu)(x_i - mu)^T over S.
double top_cov_eigen(const Rows &x, const Index &S) {
  const size_t d = x[0].size();
  Vec mu(d, 0.0);
  for (int64_t i : S)
    for (size_t k = 0; k < d; ++k) mu[k] += x[(size_t)i][k];
  for (double &v : mu) v /= (double)S.size();
  Mat C(d, Vec(d, 0.0));
  for (int64_t i : S)
    for (size_t a = 0; a < d; ++a)
      for (size_t b = 0; b < d; ++b)
        C[a][b] += (x[(size_t)i][a] - mu[a]) * (x[(size_t)i][b] - mu[b]);
  for (auto &row : C)
    for (double &v : row) v /= (double)S.size();
  Vec values;
  Mat vectors;
  jacobi_eigen(C, values, vectors);
  return values[0];
}

// The size n-f subset with the smallest objective; ties to the
// lexicographically smallest subset (the first one met in this order).
RuleOut best_subset(const Rows &x, const ragg_config_t &cfg) {
  RuleOut r;
  const int64_t n = (int64_t)x.size(), f = cfg.f;
  const std::vector<bool> exc = excluded_rows(x);
  const Mat D = distances(x, exc);
  double best = kInf, second = kInf;
  Index bestS;
  for_each_subset(n, n - f, [&](const Index &S) {
    bool any_exc = false;
    for (int64_t i : S) any_exc = any_exc || exc[(size_t)i];
    double v = kInf;
    if (!any_exc) {
      if (cfg.rule == RAGG_RULE_BRUTE) {
        v = 0;
        for (size_t a = 0; a < S.size(); ++a)
          for (size_t b = a + 1; b < S.size(); ++b)
            v = std::max(v, D[(size_t)S[a]][(size_t)S[b]]);
      } else {
        v = top_cov_eigen(x, S);
      }
    }
    if (bestS.empty() || v < best) {
      if (!bestS.empty() && best != v) second = best;
      best = v;
      bestS = S;
    } else if (v != best && v < second) {
      second = v;
    }
  });
  r.margin = rel_gap(best, second);
  r.beta.assign((size_t)n, 0.0);
  for (int64_t i : bestS) r.beta[(size_t)i] = 1.0 / (double)(n - f);
  r.out = combine(x, r.beta, x[0].size());
  r.scores = distance_scores(x, exc, r.out);
  return r;
}

// -------------------------------------------------------- centered clipping
RuleOut centered_clip(const Rows &x, const ragg_config_t &cfg, const Vec &centre) {
  RuleOut r;
  const size_t n = x.size(), d = x[0].size();
  const std::vector<bool> exc = excluded_rows(x);
  Vec v = centre.empty() ? Vec(d, 0.0) : centre;
  r.beta.assign(n, 0.0);  // v = gamma v_0 + sum_j beta_j x_j
  for (int64_t it = 0; it < cfg.iters; ++it) {
    Vec c(n, 0.0);
    double csum = 0;
    for (size_t i = 0; i < n; ++i) {
      if (exc[i]) continue;
      const double dist = std::sqrt(sq_dist(x[i], v));
      c[i] = dist == 0 ? 1.0 : std::min(1.0, cfg.tau / dist);
      csum += c[i];
    }
    Vec step(d, 0.0);
    for (size_t i = 0; i < n; ++i) {
      if (c[i] == 0) continue;
      for (size_t k = 0; k < d; ++k) step[k] += c[i] * (x[i][k] - v[k]);
    }
    for (size_t k = 0; k < d; ++k) v[k] += step[k] / (double)n;
    for (size_t i = 0; i < n; ++i) r.beta[i] = r.beta[i] * (1.0 - csum / (double)n) + c[i] / (double)n;
  }
  r.out = v;
  r.scores = distance_scores(x, exc, v);
  return r;
}

// -------------------------------------------------------------------- MoNNA
RuleOut monna(const Rows &x, const ragg_config_t &cfg) {
  RuleOut r;
  const int64_t n = (int64_t)x.size(), f = cfg.f;
  const std::vector<bool> exc = excluded_rows(x);
  const Mat D = distances(x, exc);
  const Index ord = order_by(D[(size_t)cfg.trusted]);  // D[t][t] = 0
  r.beta.assign((size_t)n, 0.0);
  for (int64_t t = 0; t < n - f; ++t) r.beta[(size_t)ord[(size_t)t]] = 1.0 / (double)(n - f);
  if (f > 0)
    r.margin = rel_gap(D[(size_t)cfg.trusted][(size_t)ord[(size_t)(n - f - 1)]],
                       D[(size_t)cfg.trusted][(size_t)ord[(size_t)(n - f)]]);
  r.out = combine(x, r.beta, x[0].size());
  r.scores = distance_scores(x, exc, r.out);
  return r;
}

// ---------------------------------------------------------------------- CAF
RuleOut caf(const Rows &x, const ragg_config_t &cfg) {
  RuleOut r;
  const int64_t n = (int64_t)x.size(), f = cfg.f;
  const size_t d = x[0].size();
  const std::vector<bool> exc = excluded_rows(x);
  Vec c((size_t)n);
  for (int64_t i = 0; i < n; ++i) c[(size_t)i] = exc[(size_t)i] ? 0.0 : 1.0;
  auto total = [&](const Vec &w) { return std::accumulate(w.begin(), w.end(), 0.0); };
  Vec kept;
  if (f == 0) {
    kept = c;
  } else {
    double best = kInf;
    while (total(c) > (double)(n - 2 * f)) {
      const double W = total(c);
      Vec mu(d, 0.0);
      for (int64_t i = 0; i < n; ++i)
        if (c[(size_t)i] > 0)
          for (size_t k = 0; k < d; ++k) mu[k] += c[(size_t)i] * x[(size_t)i][k];
      for (double &v : mu) v /= W;
      Mat sigma(d, Vec(d, 0.0));
      for (int64_t i = 0; i < n; ++i) {
        if (c[(size_t)i] <= 0) continue;
        for (size_t a = 0; a < d; ++a)
          for (size_t b = 0; b < d; ++b)
            sigma[a][b] += c[(size_t)i] * (x[(size_t)i][a] - mu[a]) * (x[(size_t)i][b] - mu[b]);
      }
      for (auto &row : sigma)
        for (double &v : row) v /= W;
      Vec values;
      Mat vectors;
      jacobi_eigen(sigma, values, vectors);
      const double lambda = values[0];
      // A near-degenerate top eigenvalue leaves its eigenvector undetermined.
      if (d > 1 && lambda > 0) r.margin = std::min(r.margin, (values[0] - values[1]) / lambda);
      r.margin = std::min(r.margin, rel_gap(lambda, best));
      if (lambda < best) best = lambda, kept = c;
      Vec tau((size_t)n, 0.0);
      double tau_max = 0;
      for (int64_t i = 0; i < n; ++i) {
        if (c[(size_t)i] <= 0) continue;
        double dot = 0;
        for (size_t k = 0; k < d; ++k) dot += (x[(size_t)i][k] - mu[k]) * vectors[0][k];
        tau[(size_t)i] = dot * dot;
        tau_max = std::max(tau_max, tau[(size_t)i]);
      }
      if (tau_max == 0) break;
      for (int64_t i = 0; i < n; ++i)
        if (c[(size_t)i] > 0) c[(size_t)i] *= 1.0 - tau[(size_t)i] / tau_max;
    }
  }
  r.beta.assign((size_t)n, 0.0);
  if (kept.empty()) {
    r.out.assign(d, NAN);
  } else {
    const double W = total(kept);
    for (int64_t i = 0; i < n; ++i) r.beta[(size_t)i] = kept[(size_t)i] / W;
    r.out = combine(x, r.beta, d);
  }
  r.scores = distance_scores(x, exc, r.out);
  return r;
}

RuleOut mean_rule(const Rows &x) {
  RuleOut r;
  const size_t n = x.size(), d = x[0].size();
  r.out.assign(d, 0.0);
  for (size_t i = 0; i < n; ++i)
    for (size_t k = 0; k < d; ++k) r.out[k] += x[i][k];
  for (double &v : r.out) v /= (double)n;
  r.beta.assign(n, 1.0 / (double)n);
  r.scores = distance_scores(x, excluded_rows(x), r.out);
  return r;
}

RuleOut run_rule(const Rows &x, const ragg_config_t &cfg, const Vec &centre) {
  switch (cfg.rule) {
    case RAGG_RULE_MEAN: return mean_rule(x);
    case RAGG_RULE_MEDIAN:
    case RAGG_RULE_TRIMMED_MEAN:
    case RAGG_RULE_MEAMED: return coordinate_rule(x, cfg);
    case RAGG_RULE_KRUM:
    case RAGG_RULE_MULTI_KRUM: return krum(x, cfg);
    case RAGG_RULE_BULYAN: return bulyan(x, cfg);
    case RAGG_RULE_GEOMED: return geomed(x, cfg);
    case RAGG_RULE_BRUTE:
    case RAGG_RULE_SMEA: return best_subset(x, cfg);
    case RAGG_RULE_CENTERED_CLIP: return centered_clip(x, cfg, centre);
    case RAGG_RULE_MONNA: return monna(x, cfg);
    default: return caf(x, cfg);
  }
}

// ------------------------------------------------------------- pre-steps
// Per-row clip scale s_i (DESIGN "Pre-aggregation", step 1).
Vec clip_scales(const Rows &x, const ragg_config_t &cfg, double &margin) {
  const int64_t n = (int64_t)x.size(), f = cfg.f;
  const std::vector<bool> exc = excluded_rows(x);
  Vec norms((size_t)n), s((size_t)n, 1.0);
  for (int64_t i = 0; i < n; ++i) norms[(size_t)i] = exc[(size_t)i] ? kInf : norm(x[(size_t)i]);
  if (cfg.clip_norm > 0) {
    for (int64_t i = 0; i < n; ++i)
      if (norms[(size_t)i] > 0) s[(size_t)i] = std::min(1.0, cfg.clip_norm / norms[(size_t)i]);
  } else if (cfg.adaptive_clip) {
    // ARC: the k largest norms (the higher index counts as larger on a tie)
    // are scaled to the largest norm among the others.
    const int64_t k = (2 * f * (n - f)) / n;
    const Index ord = order_by(norms);  // ascending (norm, index)
    if (k > 0 && k < n) {
      const double thr = norms[(size_t)ord[(size_t)(n - 1 - k)]];
      margin = std::min(margin, rel_gap(thr, norms[(size_t)ord[(size_t)(n - k)]]));
      for (int64_t t = n - k; t < n; ++t) {
        const size_t i = (size_t)ord[(size_t)t];
        if (norms[i] > 0) s[i] = std::min(1.0, thr / norms[i]);
      }
    } else if (k >= n) {
      for (double &v : s) v = 0;  // no "others" to scale to
    }
  }
  for (int64_t i = 0; i < n; ++i)
    if (exc[(size_t)i]) s[(size_t)i] = 0;
  return s;
}

// Rows of the mixing matrix A as (input, coefficient) lists.
using Mixing = std::vector<std::vector<std::pair<int64_t, double>>>;

Mixing mixing_matrix(const Rows &clipped, const ragg_config_t &cfg, double &margin) {
  const int64_t n = (int64_t)clipped.size(), f = cfg.f;
  Mixing A;
  if (cfg.mix == RAGG_MIX_NNM) {
    const Mat D = distances(clipped, excluded_rows(clipped));
    for (int64_t i = 0; i < n; ++i) {
      const Index ord = order_by(D[(size_t)i]);  // D[i][i] = 0
      std::vector<std::pair<int64_t, double>> row;
      for (int64_t t = 0; t < n - f; ++t) row.push_back({ord[(size_t)t], 1.0 / (double)(n - f)});
      if (f > 0)
        margin = std::min(margin, rel_gap(D[(size_t)i][(size_t)ord[(size_t)(n - f - 1)]],
                                          D[(size_t)i][(size_t)ord[(size_t)(n - f)]]));
      A.push_back(row);
    }
  } else if (cfg.mix == RAGG_MIX_BUCKETING) {
    const std::vector<int64_t> pi = bucket_permutation(n, cfg.seed);
    const int64_t s = cfg.bucket_size;
    for (int64_t start = 0; start < n; start += s) {
      const int64_t end = std::min(n, start + s);
      std::vector<std::pair<int64_t, double>> row;
      for (int64_t t = start; t < end; ++t) row.push_back({pi[(size_t)t], 1.0 / (double)(end - start)});
      A.push_back(row);
    }
  } else {
    for (int64_t i = 0; i < n; ++i) A.push_back({{i, 1.0}});
  }
  return A;
}

// Row i = sum over the nonzero coefficients of coef * x_j.
Rows apply_linear(const Rows &x, const Mixing &A) {
  const size_t d = x[0].size();
  Rows y;
  for (const auto &row : A) {
    Vec v(d, 0.0);
    for (const auto &[j, coef] : row) {
      if (coef == 0) continue;
      for (size_t k = 0; k < d; ++k) v[k] += coef * x[(size_t)j][k];
    }
    y.push_back(v);
  }
  return y;
}

}  // namespace

uint64_t order_key(double v) {
  if (std::isnan(v)) return UINT64_MAX;
  uint64_t u;
  std::memcpy(&u, &v, sizeof u);
  return (u >> 63) ? ~u : (u | (1ull << 63));
}

bool row_excluded(const Vec &row) {
  double s = 0;
  for (double v : row) s += v * v;
  return !(s <= (double)FLT_MAX);
}

double median(Vec c) {
  sort_by_key(c);
  const size_t n = c.size();
  return (n % 2) ? c[n / 2] : (c[n / 2 - 1] + c[n / 2]) / 2;
}

// MeaMed on one coordinate: the keep values closest to the median, distances
// |2v - 2m| in double (2m = the sum of the two middle values for an even
// count); the k boundary slots take k times the mean of all values tied at
// the boundary distance. A NaN distance counts as +Inf.
double meamed(Vec c, int64_t keep) {
  Vec s = c;
  sort_by_key(s);
  const size_t n = s.size();
  const double m2 = (n % 2) ? 2 * s[n / 2] : s[n / 2 - 1] + s[n / 2];
  Vec dist(n);
  for (size_t i = 0; i < n; ++i) {
    const double t = std::fabs(2 * c[i] - m2);
    dist[i] = std::isnan(t) ? kInf : t;
  }
  Vec sd = dist;
  std::sort(sd.begin(), sd.end());
  const double t = sd[(size_t)keep - 1];
  double less = 0, tied = 0;
  int64_t nless = 0, ntied = 0;
  for (size_t i = 0; i < n; ++i) {
    if (dist[i] < t) less += c[i], ++nless;
    else if (dist[i] == t) tied += c[i], ++ntied;
  }
  return (less + (double)(keep - nless) * (tied / (double)ntied)) / (double)keep;
}

void jacobi_eigen(std::vector<Vec> a, Vec &values, std::vector<Vec> &vectors) {
  const size_t n = a.size();
  Mat V(n, Vec(n, 0.0));
  for (size_t i = 0; i < n; ++i) V[i][i] = 1;
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0, diag = 0;
    for (size_t p = 0; p < n; ++p) {
      diag += a[p][p] * a[p][p];
      for (size_t q = p + 1; q < n; ++q) off += a[p][q] * a[p][q];
    }
    if (off == 0 || off < 1e-32 * diag) break;
    for (size_t p = 0; p < n; ++p)
      for (size_t q = p + 1; q < n; ++q) {
        if (a[p][q] == 0) continue;
        const double theta = (a[q][q] - a[p][p]) / (2 * a[p][q]);
        const double t = (theta >= 0 ? 1.0 : -1.0) / (std::fabs(theta) + std::sqrt(theta * theta + 1));
        const double c = 1 / std::sqrt(t * t + 1), s = t * c;
        for (size_t k = 0; k < n; ++k) {  // columns p, q
          const double akp = a[k][p], akq = a[k][q];
          a[k][p] = c * akp - s * akq;
          a[k][q] = s * akp + c * akq;
        }
        for (size_t k = 0; k < n; ++k) {  // rows p, q
          const double apk = a[p][k], aqk = a[q][k];
          a[p][k] = c * apk - s * aqk;
          a[q][k] = s * apk + c * aqk;
        }
        for (size_t k = 0; k < n; ++k) {
          const double vkp = V[k][p], vkq = V[k][q];
          V[k][p] = c * vkp - s * vkq;
          V[k][q] = s * vkp + c * vkq;
        }
      }
  }
  Index ord(n);
  std::iota(ord.begin(), ord.end(), 0);
  std::stable_sort(ord.begin(), ord.end(),
                   [&](int64_t x, int64_t y) { return a[(size_t)x][(size_t)x] > a[(size_t)y][(size_t)y]; });
  values.assign(n, 0.0);
  vectors.assign(n, Vec(n, 0.0));
  for (size_t r = 0; r < n; ++r) {
    values[r] = a[(size_t)ord[r]][(size_t)ord[r]];
    for (size_t k = 0; k < n; ++k) vectors[r][k] = V[k][(size_t)ord[r]];
  }
}

std::vector<int64_t> bucket_permutation(int64_t n, uint64_t seed) {
  std::vector<int64_t> pi((size_t)n);
  std::iota(pi.begin(), pi.end(), 0);
  uint64_t state = seed;
  auto next = [&]() {
    state += 0x9E3779B97F4A7C15ull;
    uint64_t z = state;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  };
  for (int64_t i = n - 1; i >= 1; --i) {
    const int64_t j = (int64_t)(next() % (uint64_t)(i + 1));
    std::swap(pi[(size_t)i], pi[(size_t)j]);
  }
  return pi;
}

int64_t min_inputs(ragg_rule_t rule, int64_t f) {
  switch (rule) {
    case RAGG_RULE_MEAN:
    case RAGG_RULE_CENTERED_CLIP: return 1;
    case RAGG_RULE_KRUM:
    case RAGG_RULE_MULTI_KRUM: return 2 * f + 3;
    case RAGG_RULE_BULYAN: return 4 * f + 3;
    default: return 2 * f + 1;
  }
}

Result aggregate(const ragg_config_t &cfg, const Rows &x, const Vec &cc_center) {
  Result res;
  const int64_t n = (int64_t)x.size();
  for (const Vec &row : x) {
    int64_t bad = 0;
    for (double v : row) bad += std::isfinite(v) ? 0 : 1;
    res.nonfinite.push_back(bad);
  }
  const bool clipping = cfg.clip_norm > 0 || cfg.adaptive_clip;
  const bool pre = clipping || cfg.mix != RAGG_MIX_NONE;

  const int64_t n_rule =
      cfg.mix == RAGG_MIX_BUCKETING ? (n + cfg.bucket_size - 1) / cfg.bucket_size : n;
  if (n_rule < min_inputs(cfg.rule, cfg.f)) {
    res.status = RAGG_ERR_TOO_MANY_BYZANTINE;
    return res;
  }
  if ((cfg.rule == RAGG_RULE_BRUTE || cfg.rule == RAGG_RULE_SMEA) &&
      binomial(n_rule, cfg.f) > (long double)cfg.brute_limit) {
    res.status = RAGG_ERR_UNSUPPORTED;
    return res;
  }

  // Clipping is a diagonal S; rows with s_i = 0 become zero rows (the zero
  // entry is skipped, so a NaN row does not survive as 0 * NaN).
  Vec s = clip_scales(x, cfg, res.margin);
  if (!clipping) s.assign((size_t)n, 1.0);
  Mixing diag;
  for (int64_t i = 0; i < n; ++i) diag.push_back({{i, s[(size_t)i]}});
  const Rows clipped = clipping ? apply_linear(x, diag) : x;
  const Mixing A = mixing_matrix(clipped, cfg, res.margin);
  Mixing AS = A;  // the composed map A S on the original rows
  for (auto &row : AS)
    for (auto &entry : row) entry.second *= s[(size_t)entry.first];
  const Rows z = pre ? apply_linear(x, AS) : x;

  const RuleOut r = run_rule(z, cfg, cc_center);
  res.out = r.out;
  res.margin = std::min(res.margin, r.margin);
  if (r.coordinate) {
    res.selected.assign((size_t)n, -1);
  } else if (cfg.rule == RAGG_RULE_BULYAN) {
    if (!pre) res.selected = r.chosen;
  } else {
    // alpha = S A^T beta over the original inputs.
    res.weights.assign((size_t)n, 0.0);
    for (size_t i = 0; i < AS.size(); ++i)
      for (const auto &[j, coef] : AS[i]) res.weights[(size_t)j] += coef * r.beta[i];
    for (double w : res.weights) res.selected.push_back(w != 0 ? 1 : 0);
  }
  if (!pre) res.scores = r.scores;
  return res;
}

}  // namespace oracle
