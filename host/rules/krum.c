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

RAGG_HD void ragg_krum_scores(const double *D, int64_t ld, int64_t n, const unsigned char *mask,
                              int64_t k, double *scores, double *tmp) {
  for (int64_t i = 0; i < n; ++i) {
    if (!mask[i]) continue;
    int64_t c = 0;
    for (int64_t j = 0; j < n; ++j)
      if (j != i && mask[j]) tmp[c++] = D[i * ld + j];
    ragg_sort_doubles(tmp, c);
    double s = 0.0;
    for (int64_t j = 0; j < k && j < c; ++j) s += tmp[j];
    scores[i] = s;
  }
}

static RAGG_HD void all_scores(ragg_rule_io_t *io, int64_t k, double *scores) {
  unsigned char *mask = (unsigned char *)io->iscratch;
  for (int64_t i = 0; i < io->n; ++i) mask[i] = 1;
  ragg_krum_scores(io->D, io->ld, io->n, mask, k, scores, io->scratch);
}

/* An excluded row sits at +Inf from every row: its own score is +Inf too. */
static RAGG_HD void mark_excluded_scores(const ragg_rule_io_t *io, double *scores) {
  for (int64_t i = 0; i < io->n; ++i)
    if (ragg_is_excluded_norm(io->N[i])) scores[i] = 1.0 / 0.0;
}

RAGG_HD void ragg_solve_krum(const ragg_solve_params_t *p, ragg_rule_io_t *io) {
  double *scores = io->krum_scores;
  all_scores(io, io->n - p->f - 2, scores);
  mark_excluded_scores(io, scores);
  int64_t best = 0;
  for (int64_t i = 1; i < io->n; ++i)
    if (scores[i] < scores[best]) best = i;
  for (int64_t i = 0; i < io->ld; ++i) io->beta[i] = 0.0;
  io->beta[best] = 1.0;
}

RAGG_HD void ragg_solve_multi_krum(const ragg_solve_params_t *p, ragg_rule_io_t *io) {
  double *scores = io->krum_scores;
  all_scores(io, io->n - p->f - 2, scores);
  mark_excluded_scores(io, scores);
  int64_t m = p->m == 0 ? io->n - p->f : p->m;
  int64_t *idx = io->iscratch;
  for (int64_t i = 0; i < io->n; ++i) idx[i] = i;
  ragg_argsort_pairs(scores, idx, io->n);
  for (int64_t i = 0; i < io->ld; ++i) io->beta[i] = 0.0;
  for (int64_t i = 0; i < m; ++i) io->beta[idx[i]] = 1.0 / (double)m;
}

/* Bulyan's selection. Row i's distances to the others are sorted once (by
 * value, then column); each round's score of i is then the sum of the first
 * k entries of that list whose column is still in R, in ascending order:
 * the values, and the order of the adds, that sorting the remaining
 * distances afresh every round gives (equal values add the same in either
 * order), in O(n) per row and round instead of O(n log n). Scratch: the
 * sorted values and their columns, 2 n^2 doubles after the scores. */
RAGG_HD void ragg_solve_bulyan(const ragg_solve_params_t *p, ragg_rule_io_t *io) {
  int64_t n = io->n, theta = n - 2 * p->f;
  unsigned char *mask = (unsigned char *)io->iscratch;
  int64_t *idx = io->iscratch + io->ld;
  double *scores = io->scratch + n, *sorted = scores + n, *cols = sorted + n * n;
  for (int64_t i = 0; i < n; ++i) {
    const double *Di = io->D + i * io->ld;
    int64_t c = 0;
    for (int64_t j = 0; j < n; ++j)
      if (j != i) idx[c++] = j;
    ragg_argsort_pairs(Di, idx, c);
    for (int64_t t = 0; t < c; ++t) {
      sorted[i * n + t] = Di[idx[t]];
      cols[i * n + t] = (double)idx[t];
    }
  }
  for (int64_t i = 0; i < n; ++i) mask[i] = 1;
  for (int64_t i = 0; i < io->ld; ++i) io->beta[i] = 0.0;
  for (int64_t round = 0; round < theta; ++round) {
    int64_t r = n - round;
    int64_t k = r - p->f - 2;
    if (k < 1) k = 1;
    if (k > r - 1) k = r - 1;
    for (int64_t i = 0; i < n; ++i) {
      if (!mask[i]) continue;
      double s = 0.0;
      for (int64_t t = 0, taken = 0; t < n - 1 && taken < k; ++t)
        if (mask[(int64_t)cols[i * n + t]]) {
          s += sorted[i * n + t];
          ++taken;
        }
      scores[i] = s;
    }
    mark_excluded_scores(io, scores);
    if (round == 0)
      for (int64_t i = 0; i < n; ++i) io->krum_scores[i] = scores[i];
    int64_t best = -1;
    for (int64_t i = 0; i < n; ++i)
      if (mask[i] && (best < 0 || scores[i] < scores[best])) best = i;
    mask[best] = 0;
    io->beta[best] = 1.0 / (double)theta;
  }
  int64_t c = 0;
  for (int64_t i = 0; i < n; ++i)
    if (io->beta[i] != 0.0) io->bulyan_rows[c++] = i;
}
