// Brute's and SMEA's subset search: the unranking that starts each range of
// the CPU backend's parallel search, and the search itself against one scan
// of every combination in lexicographic order (values with many ties and
// NaN, a value computed from the combination alone). librobustagg does not
// export these, so the test compiles the files that hold them, as the
// library does.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "solver/solver.h"

namespace {

// The reference: every combination in lexicographic order, by std::next-free
// counting (an odometer over increasing sequences), written here on its own.
std::vector<std::vector<int64_t>> all_combinations(int64_t n, int64_t k) {
  std::vector<std::vector<int64_t>> out;
  std::vector<int64_t> c((size_t)k);
  for (int64_t i = 0; i < k; ++i) c[(size_t)i] = i;
  for (;;) {
    out.push_back(c);
    int64_t i = k - 1;
    while (i >= 0 && c[(size_t)i] == n - k + i) --i;
    if (i < 0) return out;
    ++c[(size_t)i];
    for (int64_t j = i + 1; j < k; ++j) c[(size_t)j] = c[(size_t)j - 1] + 1;
  }
}

int g_nan_every = 13;  // value NaN where the combination's code is a multiple
bool g_first_nan = false;

double value_of(const int64_t *c, int64_t k) {
  int64_t code = 0;
  for (int64_t i = 0; i < k; ++i) code += c[i] * (i + 1) * (c[i] + 3);
  bool first = true;
  for (int64_t i = 0; i < k; ++i) first = first && c[i] == i;
  if ((first && g_first_nan) || code % g_nan_every == 0) return NAN;
  return (double)(code % 7);  // seven values: ties everywhere
}

// A ragg_subset_scan_fn over value_of, written to its contract.
double scan(const ragg_rule_io_t *io, int64_t k, int64_t count, int64_t *c, int64_t *best,
            double *scratch, int *first_nan) {
  EXPECT_NE(scratch, nullptr);  // the search hands each thread its scratch
  double b = NAN;
  for (int64_t r = 0; r < count; ++r) {
    if (r) ragg_next_combination(c, k, io->n);
    double v = value_of(c, k);
    if (r == 0) *first_nan = std::isnan(v);
    if (v < b || (std::isnan(b) && !std::isnan(v))) {
      b = v;
      for (int64_t i = 0; i < k; ++i) best[i] = c[i];
    }
  }
  return b;
}

}  // namespace

TEST(Subsets, UnrankGivesTheCombinationOfEachRank) {
  for (int64_t n : {1, 2, 5, 9, 16})
    for (int64_t k = 1; k <= n; ++k) {
      const auto all = all_combinations(n, k);
      ASSERT_EQ((int64_t)all.size(), ragg_binomial(n, k));
      std::vector<int64_t> c((size_t)k);
      for (size_t r = 0; r < all.size(); ++r) {
        ragg_unrank_combination((int64_t)r, k, n, c.data());
        ASSERT_EQ(c, all[r]) << "n " << n << " k " << k << " rank " << r;
      }
      // a rank past the last ends at the last combination (and returns)
      ragg_unrank_combination((int64_t)all.size(), k, n, c.data());
      EXPECT_EQ(c, all.back()) << "n " << n << " k " << k;
    }
}

TEST(Subsets, ParallelSearchPicksWhatOneScanPicks) {
  omp_set_num_threads(4);  // 32 ranges, whatever the machine
  for (bool first_nan : {false, true})
    for (int nan_every : {13, 2, 1})
      for (int64_t n : {6, 12, 20})
        for (int64_t k : {int64_t{1}, n / 2, n - 3, n - 1}) {
          g_first_nan = first_nan;
          g_nan_every = nan_every;
          SCOPED_TRACE("n " + std::to_string(n) + " k " + std::to_string(k) + " nan every " +
                       std::to_string(nan_every) + (first_nan ? ", first NaN" : ""));
          const auto all = all_combinations(n, k);
          // one scan's pick: the first combination if its value is NaN (no
          // value compares below it), else the first smallest value
          size_t want = 0;
          if (!std::isnan(value_of(all[0].data(), k)))
            for (size_t r = 1; r < all.size(); ++r)
              if (value_of(all[r].data(), k) < value_of(all[want].data(), k)) want = r;
          ragg_rule_io_t io{};
          io.n = n;
          io.ld = n;
          std::vector<int64_t> best((size_t)k, -1);
          int done = ragg_subsets_parallel(&io, k, (int64_t)all.size(), 1e12, scan, 8, best.data());
          if (all.size() < 2) {
            EXPECT_EQ(done, 0);
            continue;
          }
          ASSERT_EQ(done, 1);
          EXPECT_EQ(best, all[want]);
        }
  // too little work, or one thread: the caller's single scan runs instead
  ragg_rule_io_t io{};
  io.n = 20;
  io.ld = 20;
  std::vector<int64_t> best(10);
  EXPECT_EQ(ragg_subsets_parallel(&io, 10, ragg_binomial(20, 10), 1e3, scan, 8, best.data()), 0);
  omp_set_num_threads(1);
  EXPECT_EQ(ragg_subsets_parallel(&io, 10, ragg_binomial(20, 10), 1e12, scan, 8, best.data()), 0);
}
