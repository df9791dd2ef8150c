/* Krum, Multi-Krum and Bulyan's selection, on squared distances.
 *
 * Krum (Blanchard et al., NeurIPS 2017, §4): score(i) = sum of the n-f-2
 * smallest ||x_i - x_j||^2 over j != i; output the input with the lowest
 * score, ties to the lower index. Multi-Krum: the m lowest scores (computed
 * once) averaged, 1 <= m <= n-f (0 means n-f).
 * Bulyan (El Mhamdi et al., ICML 2018, §3): theta = n-2f rounds of Krum on
 * the remaining set R, each moving its choice into S, with
 * k = min(max(|R|-f-2, 1), |R|-1) neighbours; the coordinate-wise step on S
 * runs in the backend (it needs the values). */
#include "../solver/solver.h"

/* Row i's score: its k smallest distances to the other points, added in
 * ascending order. */
static RAGG_HD double row_score(const double *D, int64_t ld, int64_t n, int64_t k, int64_t i,
                                double *tmp) {
  int64_t c = 0;
  for (int64_t j = 0; j < n; ++j)
    if (j != i) tmp[c++] = D[i * ld + j];
  ragg_sort_doubles(tmp, c);
  double s = 0.0;
  for (int64_t j = 0; j < k && j < c; ++j) s += tmp[j];
  return s;
}

/* Bulyan's scratch: the round's scores (n, from scratch + n), then row i's
 * distances to the others sorted by (value, column) at sorted + i n, their
 * columns at cols = sorted + n^2, + i n; iscratch: the mask of R. */
static RAGG_HD double *bulyan_scores(const ragg_rule_io_t *io) {
  return io->scratch + io->n;
}
static RAGG_HD double *bulyan_sorted(const ragg_rule_io_t *io) {
  return io->scratch + 2 * io->n;
}
static RAGG_HD unsigned char *bulyan_mask(const ragg_rule_io_t *io) {
  return (unsigned char *)io->iscratch; /* 1: still in R */
}

RAGG_HD void ragg_bulyan_prework_row(ragg_rule_io_t *io, int64_t i) {
  int64_t n = io->n;
  double *sorted = bulyan_sorted(io) + i * n, *cols = bulyan_sorted(io) + n * n + i * n;
  int64_t c = 0;
  for (int64_t j = 0; j < n; ++j)
    if (j != i) {
      sorted[c] = io->D[i * io->ld + j];
      cols[c++] = (double)j;
    }
  ragg_sort_pairs(sorted, cols, c);
}

RAGG_HD void ragg_krum_prework_row(const ragg_solve_params_t *p, ragg_rule_io_t *io, int64_t i,
                                   double *tmp) {
  /* without tmp, a row of scratch each, so that rows can run at once */
  io->krum_scores[i] =
      row_score(io->D, io->ld, io->n, io->n - p->f - 2, i, tmp ? tmp : io->scratch + i * io->n);
}

static RAGG_HD void all_scores(const ragg_solve_params_t *p, ragg_rule_io_t *io) {
  if (io->presolved) return;
  const int64_t n = io->n;
  RAGG_PARALLEL_ROWS
  for (int64_t i = 0; i < n; ++i) ragg_krum_prework_row(p, io, i, (double *)0);
}

/* An excluded row sits at +Inf from every row: its own score is +Inf too. */
static RAGG_HD void mark_excluded_scores(const ragg_rule_io_t *io, double *scores) {
  for (int64_t i = 0; i < io->n; ++i)
    if (ragg_is_excluded_norm(io->N[i])) scores[i] = 1.0 / 0.0;
}

RAGG_HD void ragg_solve_krum(const ragg_solve_params_t *p, ragg_rule_io_t *io) {
  double *scores = io->krum_scores;
  all_scores(p, io);
  mark_excluded_scores(io, scores);
  int64_t best = 0;
  for (int64_t i = 1; i < io->n; ++i)
    if (scores[i] < scores[best]) best = i;
  for (int64_t i = 0; i < io->ld; ++i) io->beta[i] = 0.0;
  io->beta[best] = 1.0;
}

RAGG_HD void ragg_solve_multi_krum(const ragg_solve_params_t *p, ragg_rule_io_t *io) {
  double *scores = io->krum_scores;
  all_scores(p, io);
  mark_excluded_scores(io, scores);
  int64_t m = p->m == 0 ? io->n - p->f : p->m;
  int64_t *idx = io->iscratch; /* presolved: the order is there already */
  if (!io->presolved) {
    for (int64_t i = 0; i < io->n; ++i) idx[i] = i;
    ragg_argsort_pairs(scores, idx, io->n);
  }
  for (int64_t i = 0; i < io->ld; ++i) io->beta[i] = 0.0;
  for (int64_t i = 0; i < m; ++i) io->beta[idx[i]] = 1.0 / (double)m;
}

RAGG_HD void ragg_bulyan_begin(ragg_rule_io_t *io) {
  for (int64_t i = 0; i < io->n; ++i) bulyan_mask(io)[i] = 1;
  for (int64_t i = 0; i < io->ld; ++i) io->beta[i] = 0.0;
}

RAGG_HD void ragg_bulyan_row_score(const ragg_solve_params_t *p, ragg_rule_io_t *io, int64_t round,
                                   int64_t i) {
  int64_t n = io->n, r = n - round, k = r - p->f - 2;
  if (k < 1) k = 1;
  if (k > r - 1) k = r - 1;
  const unsigned char *mask = bulyan_mask(io);
  if (!mask[i]) return;
  const double *sorted = bulyan_sorted(io) + i * n, *cols = bulyan_sorted(io) + n * n + i * n;
  double s = 0.0;
  for (int64_t t = 0, taken = 0; t < n - 1 && taken < k; ++t)
    if (mask[(int64_t)cols[t]]) {
      s += sorted[t];
      ++taken;
    }
  bulyan_scores(io)[i] = s;
}

RAGG_HD void ragg_bulyan_pick(const ragg_solve_params_t *p, ragg_rule_io_t *io, int64_t round) {
  int64_t n = io->n, theta = n - 2 * p->f;
  unsigned char *mask = bulyan_mask(io);
  double *scores = bulyan_scores(io);
  mark_excluded_scores(io, scores);
  if (round == 0)
    for (int64_t i = 0; i < n; ++i) io->krum_scores[i] = scores[i];
  int64_t best = -1;
  for (int64_t i = 0; i < n; ++i)
    if (mask[i] && (best < 0 || scores[i] < scores[best])) best = i;
  mask[best] = 0;
  io->beta[best] = 1.0 / (double)theta;
  if (round == theta - 1) {
    int64_t c = 0;
    for (int64_t i = 0; i < n; ++i)
      if (io->beta[i] != 0.0) io->bulyan_rows[c++] = i;
  }
}

/* Bulyan's selection. Row i's distances to the others are sorted once (by
 * value, then column); each round's score of i is then the sum of the first
 * k entries of that list whose column is still in R, in ascending order:
 * the values, and the order of the adds, that sorting the remaining
 * distances afresh every round gives (equal values add the same in either
 * order), in O(n) per row and round instead of O(n log n). Scratch: the
 * round's scores, then the sorted values and their columns, 2 n^2 doubles.
 * Presolved (the CUDA backend), every round has run already: the rows'
 * scores a thread each, the pick in one thread between barriers. */
RAGG_HD void ragg_solve_bulyan(const ragg_solve_params_t *p, ragg_rule_io_t *io) {
  if (io->presolved) return;
  int64_t n = io->n, theta = n - 2 * p->f;
  RAGG_PARALLEL_ROWS
  for (int64_t i = 0; i < n; ++i) ragg_bulyan_prework_row(io, i);
  ragg_bulyan_begin(io);
  for (int64_t round = 0; round < theta; ++round) {
    RAGG_PARALLEL_ROWS
    for (int64_t i = 0; i < n; ++i) ragg_bulyan_row_score(p, io, round, i);
    ragg_bulyan_pick(p, io, round);
  }
}
