// Definition-level oracles for every robustagg rule and pre-step, written from
// DESIGN.md section 2 ("The rules, exactly", "Pre-aggregation", "Non-finite
// and hostile values") on d-dimensional vectors in double precision: sort each
// coordinate, enumerate every subset, form covariances and diagonalise them
// with a plain Jacobi. Slow on purpose; keep n and d small where subsets or
// d x d matrices are involved.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "robustagg.h"

namespace oracle {

using Vec = std::vector<double>;
using Rows = std::vector<Vec>;

struct Result {
  ragg_status_t status = RAGG_SUCCESS;
  Vec out;                        // d values in double, before rounding to the dtype
  Vec scores;                     // one per original input; empty: not defined here
  Vec weights;                    // alpha over the original inputs; empty: unwritten
  std::vector<int32_t> selected;  // one per original input; empty: not defined here
  std::vector<int64_t> nonfinite;
  // Smallest relative gap between two candidates of a ranking decision the
  // rule took (Krum order, subset objective, neighbour boundary...). A tiny
  // margin means the decision could flip under rounding: redraw the data.
  // Exact ties (decided by index) do not count.
  double margin = INFINITY;
};

// cc_center: centered clipping v_0 as exact values (empty: zero).
Result aggregate(const ragg_config_t &cfg, const Rows &x, const Vec &cc_center = Vec());

int64_t min_inputs(ragg_rule_t rule, int64_t f);

// Building blocks, exposed for focused tests.
// Order-preserving key: -Inf < finite < +Inf < NaN (any sign, any payload)
// and -0.0 < +0.0, because the key is taken from the bit pattern.
uint64_t order_key(double v);
bool row_excluded(const Vec &row);  // squared norm NaN, Inf or above FLT_MAX
double median(Vec column);
double meamed(Vec column, int64_t keep);
// Eigenvalues (descending) and matching unit eigenvectors of a symmetric matrix.
void jacobi_eigen(std::vector<Vec> a, Vec &values, std::vector<Vec> &vectors);
// splitmix64-driven Fisher-Yates permutation of 0..n-1 (DESIGN, bucketing).
std::vector<int64_t> bucket_permutation(int64_t n, uint64_t seed);

}  // namespace oracle
