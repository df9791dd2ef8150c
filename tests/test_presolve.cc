// The shared solver's presolved contract (host/solver/solver.h,
// ragg_presolve_rows): the CUDA backend does the Krum family's and the
// geometric median's row work in parallel ahead of ragg_solve, which then
// skips it. Here the same pieces run on the CPU the way a parallel device
// would order them (rows shuffled, each row's working space its own), and
// Multi-Krum's order is formed independently of the library's argsort; the
// solve that follows must give the bits of the plain serial solve. Scratch is
// filled with NaN first, so a piece that reads what no piece wrote shows.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

extern "C" {
#include "internal.h"
}
#include "solver_distances.hh"

namespace {

// a < b in (value, index) order, NaN values last: written here from the
// contract, not taken from the library's sort.
bool before(double va, int64_t a, double vb, int64_t b) {
  const bool na = std::isnan(va), nb = std::isnan(vb);
  if (na != nb) return nb;
  if (!na && va != vb) return va < vb;
  return a < b;
}

// The row work of ragg_presolve_rows, in the order `rows` gives.
void presolve(const ragg_solve_params_t &p, ragg_solve_io_t &io, const std::vector<int64_t> &rows) {
  ragg_rule_io_t rio;
  ragg_presolve_rule_io(&io, &rio);
  const int64_t n = io.n;
  std::vector<double> tmp((size_t)n, NAN);
  if (p.rule == RAGG_RULE_GEOMED) {
    for (int64_t i : rows) ragg_geomed_medoid_row(&rio, i);
    ragg_geomed_start(&rio);
    for (int64_t i : rows) ragg_geomed_db_row(&rio, i);
    double F = ragg_geomed_objective(&rio);
    for (int64_t it = 0; it < p.max_iters; ++it) {
      if (!ragg_geomed_reweight(&p, &rio)) break;
      for (int64_t i : rows) ragg_geomed_db_row(&rio, i);
      double F2 = ragg_geomed_objective(&rio);
      const int done = ragg_geomed_converged(&p, F, F2);
      F = F2;
      if (done) break;
    }
    return;
  }
  // half the rows in the caller's working space, half in their own scratch row
  for (int64_t i : rows) ragg_presolve_row(&p, &io, i, i % 2 ? tmp.data() : nullptr);
  if (p.rule == RAGG_RULE_MULTI_KRUM) {
    std::vector<double> s((size_t)n);
    for (int64_t i = 0; i < n; ++i)
      s[(size_t)i] = ragg_is_excluded_norm(io.N[i]) ? INFINITY : rio.krum_scores[i];
    std::vector<int64_t> order((size_t)n);
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
      return before(s[(size_t)a], a, s[(size_t)b], b);
    });
    std::copy(order.begin(), order.end(), io.iscratch);
  }
  if (p.rule == RAGG_RULE_BULYAN) {
    ragg_bulyan_begin(&rio);
    for (int64_t round = 0; round < n - 2 * p.f; ++round) {
      for (int64_t i : rows) ragg_bulyan_row_score(&p, &rio, round, i);
      ragg_bulyan_pick(&p, &rio, round);
    }
  }
}

template <class T>
void expect_same_bits(const std::vector<T> &a, const std::vector<T> &b, const char *what) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_EQ(0, std::memcmp(&a[i], &b[i], sizeof(T))) << what << "[" << i << "]";
}

TEST(Presolve, RowsInAnyOrderGiveTheSerialSolvesBits) {
  const uint64_t seed = 4242;
  std::mt19937_64 rng(seed);
  const ragg_rule_t rules[] = {RAGG_RULE_KRUM, RAGG_RULE_MULTI_KRUM, RAGG_RULE_BULYAN,
                               RAGG_RULE_GEOMED};
  for (ragg_rule_t rule : rules)
    for (int64_t n : {3, 7, 12, 33, 70})
      for (int excl = 0; excl < 2; ++excl) {
        const int64_t f = rule == RAGG_RULE_GEOMED ? 0 : rule == RAGG_RULE_BULYAN ? (n - 3) / 4
                                                                                   : (n - 3) / 2;
        if (rule == RAGG_RULE_BULYAN && n < 3) continue;
        ragg_config_t cfg;
        ragg_config_init(&cfg, rule, f);
        if (rule == RAGG_RULE_MULTI_KRUM && n > 7) cfg.m = 3;
        ragg_solve_params_t p;
        ragg_params_from_config(&cfg, &p);
        SCOPED_TRACE(std::string(ragg_rule_name(rule)) + " n=" + std::to_string(n) +
                     (excl ? " one row excluded" : "") + " seed=" + std::to_string(seed));
        ASSERT_EQ(ragg_presolve_rows(&p, n), n);
        Distances dist = make_distances(n, 0, rng, excl ? n / 2 : -1);

        HostSolve serial(dist, /*poison=*/true);
        ASSERT_EQ(0, ragg_solve(&p, &serial.io));

        std::vector<int64_t> rows((size_t)n);
        std::iota(rows.begin(), rows.end(), 0);
        std::shuffle(rows.begin(), rows.end(), rng);
        HostSolve pre(dist, /*poison=*/true);
        presolve(p, pre.io, rows);
        pre.io.presolved = 1;
        ASSERT_EQ(0, ragg_solve(&p, &pre.io));

        expect_same_bits(serial.alpha, pre.alpha, "alpha");
        expect_same_bits(serial.scores, pre.scores, "scores");
        expect_same_bits(serial.sel, pre.sel, "selected");
        if (rule == RAGG_RULE_BULYAN) expect_same_bits(serial.bul, pre.bul, "bulyan_rows");
      }
}

// A pre-step transforms the distances inside ragg_solve: no row work can run
// ahead of it, and a presolved flag must not make the solve skip anything.
TEST(Presolve, NoRowWorkAheadOfAPreStep) {
  std::mt19937_64 rng(99);
  for (ragg_rule_t rule : {RAGG_RULE_KRUM, RAGG_RULE_MULTI_KRUM, RAGG_RULE_BULYAN,
                           RAGG_RULE_GEOMED}) {
    ragg_config_t cfg;
    ragg_config_init(&cfg, rule, 1);
    cfg.clip_norm = 1.5;
    ragg_solve_params_t p;
    ragg_params_from_config(&cfg, &p);
    SCOPED_TRACE(ragg_rule_name(rule));
    EXPECT_EQ(ragg_presolve_rows(&p, 12), 0);
    Distances dist = make_distances(12, 0, rng, -1);
    HostSolve a(dist, true), b(dist, true);
    ASSERT_EQ(0, ragg_solve(&p, &a.io));
    b.io.presolved = 1;
    ASSERT_EQ(0, ragg_solve(&p, &b.io));
    expect_same_bits(a.alpha, b.alpha, "alpha");
    expect_same_bits(a.scores, b.scores, "scores");
  }
  for (ragg_rule_t rule : {RAGG_RULE_MEAN, RAGG_RULE_MEDIAN, RAGG_RULE_CENTERED_CLIP,
                           RAGG_RULE_MONNA, RAGG_RULE_BRUTE, RAGG_RULE_CAF, RAGG_RULE_SMEA}) {
    ragg_config_t cfg;
    ragg_config_init(&cfg, rule, 1);
    ragg_solve_params_t p;
    ragg_params_from_config(&cfg, &p);
    EXPECT_EQ(ragg_presolve_rows(&p, 12), 0) << ragg_rule_name(rule);
  }
}

}  // namespace
