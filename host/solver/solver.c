/* The solver's driver: pre-steps as a transform W of the inputs, distances
 * between the transformed points, the rule, and the weights over the
 * original inputs (alpha = W^T beta). DESIGN §2 "Pre-aggregation". */
#include "solver.h"

enum {
  RULE_MEAN = 0,
  RULE_MEDIAN = 1,
  RULE_TRIMMED = 2,
  RULE_MEAMED = 3,
  RULE_KRUM = 4,
  RULE_MULTI_KRUM = 5,
  RULE_BULYAN = 6,
  RULE_GEOMED = 7,
  RULE_BRUTE = 8,
  RULE_CC = 9,
  RULE_MONNA = 10,
  RULE_CAF = 11,
  RULE_SMEA = 12
};
enum { MIX_NONE = 0, MIX_NNM = 1, MIX_BUCKETING = 2 };

RAGG_HD int ragg_rule_is_coordinatewise(int rule) {
  return rule == RULE_MEDIAN || rule == RULE_TRIMMED || rule == RULE_MEAMED;
}
RAGG_HD int ragg_rule_needs_distances(int rule) {
  return rule >= RULE_KRUM && rule <= RULE_SMEA;
}

RAGG_HD int64_t ragg_solver_scratch_doubles(int64_t n) {
  int64_t L = n + 1;
  return 6 * L * L + 16 * L;
}
RAGG_HD int64_t ragg_solver_scratch_ints(int64_t n) {
  return 4 * (n + 1) + 16;
}

RAGG_HD int64_t ragg_mixed_rows(const ragg_solve_params_t *p, int64_t n) {
  if (p->mix == MIX_BUCKETING && p->bucket_size > 0)
    return (n + p->bucket_size - 1) / p->bucket_size;
  return n;
}

RAGG_HD int ragg_has_prestep(const ragg_solve_params_t *p) {
  return p->clip_norm > 0.0 || p->adaptive_clip || p->mix != MIX_NONE;
}

/* Clip scales: static (clip_norm) or ARC (Allouah et al. 2024): the
 * k = floor(2f(n-f)/n) largest norms, ties towards the higher index, scaled to
 * the largest norm among the others. Excluded rows get 0 under either. */
static RAGG_HD void clip_scales(const ragg_solve_params_t *p, int64_t n, const double *N, double *s,
                                double *key, int64_t *idx) {
  for (int64_t i = 0; i < n; ++i) s[i] = 1.0;
  if (p->clip_norm <= 0.0 && !p->adaptive_clip) return; /* N may be absent then */
  for (int64_t i = 0; i < n; ++i)
    if (ragg_is_excluded_norm(N[i])) s[i] = 0.0;
  if (p->clip_norm > 0.0) {
    for (int64_t i = 0; i < n; ++i) {
      double norm = sqrt(N[i]);
      if (s[i] != 0.0 && norm > p->clip_norm) s[i] = p->clip_norm / norm;
    }
  } else if (p->adaptive_clip) {
    int64_t k = (2 * p->f * (n - p->f)) / n;
    if (k <= 0) return;
    /* Ascending by (norm, index): the last k are the largest, the higher
     * index counting as larger on ties. */
    for (int64_t i = 0; i < n; ++i) {
      key[i] = ragg_is_excluded_norm(N[i]) ? 1.0 / 0.0 : sqrt(N[i]);
      idx[i] = i;
    }
    ragg_argsort_pairs(key, idx, n);
    double cap = key[idx[n - 1 - k]];
    for (int64_t r = n - k; r < n; ++r) {
      int64_t i = idx[r];
      if (s[i] != 0.0 && key[i] > 0.0) s[i] = cap / key[i];
    }
  }
}

/* ||s_i x_i - s_j x_j||^2 without 0 * Inf. */
static RAGG_HD double scaled_sqdist(const double *D, const double *N, int64_t ld, const double *s,
                                    int64_t i, int64_t j) {
  if (i == j) return 0.0;
  double si = s[i], sj = s[j];
  if (si == sj) return si == 0.0 ? 0.0 : si * si * D[i * ld + j];
  if (si == 0.0) return sj * sj * N[j];
  if (sj == 0.0) return si * si * N[i];
  double r = (si - sj) * (si * N[i] - sj * N[j]) + si * sj * D[i * ld + j];
  return r > 0.0 ? r : 0.0;
}

RAGG_HD void ragg_build_transform(const ragg_solve_params_t *p, ragg_solve_io_t *io) {
  int64_t n = io->n, A = io->has_anchor, lin = n + A, nm = ragg_mixed_rows(p, n);
  double *W = io->mix, *s = io->scratch, *key = s + lin;
  int64_t *idx = io->iscratch;
  for (int64_t q = 0; q < (nm + A) * lin; ++q) W[q] = 0.0;
  clip_scales(p, n, io->N, s, key, idx);
  if (p->mix == MIX_NNM) {
    /* Nearest neighbour mixing (Allouah et al., AISTATS 2023): each row
     * becomes the average of its n-f nearest (itself included, ties to the
     * lower index), measured between the clipped rows. */
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        key[j] = scaled_sqdist(io->D, io->N, lin, s, i, j);
        idx[j] = j;
      }
      ragg_argsort_pairs(key, idx, n);
      for (int64_t r = 0; r < n - p->f; ++r) W[i * lin + idx[r]] = s[idx[r]] / (double)(n - p->f);
    }
  } else if (p->mix == MIX_BUCKETING) {
    /* Bucketing (Karimireddy, He & Jaggi, ICLR 2022): Fisher-Yates driven by
     * splitmix64 from the seed, then groups of s consecutive inputs. */
    uint64_t state = p->seed;
    for (int64_t i = 0; i < n; ++i) idx[i] = i;
    for (int64_t i = n - 1; i >= 1; --i) {
      int64_t j = (int64_t)(ragg_splitmix64_next(&state) % (uint64_t)(i + 1));
      int64_t t = idx[i];
      idx[i] = idx[j];
      idx[j] = t;
    }
    for (int64_t g = 0; g < nm; ++g) {
      int64_t lo = g * p->bucket_size, hi = lo + p->bucket_size;
      if (hi > n) hi = n;
      for (int64_t r = lo; r < hi; ++r) W[g * lin + idx[r]] = s[idx[r]] / (double)(hi - lo);
    }
  } else {
    for (int64_t i = 0; i < n; ++i) W[i * lin + i] = s[i];
  }
  if (A) W[nm * lin + n] = 1.0;
  io->n_mixed = nm;
}

/* Distances between the transformed points p = W_p . x:
 *   ||a.x - b.x||^2 = (sa - sb)(a.N - b.N) - 1/2 (a^T D a + b^T D b - 2 a^T D b)
 * with sa = sum a. Out: Dp (np x np), Np (np). u: np * lin doubles. */
static RAGG_HD void transform_distances(const ragg_solve_io_t *io, int64_t np, double *Dp,
                                        double *Np, double *u, double *sig, double *r, double *q,
                                        unsigned char *excl) {
  int64_t lin = io->n + io->has_anchor;
  const double *W = io->mix;
  for (int64_t a = 0; a < np; ++a) {
    const double *wa = W + a * lin;
    double sa = 0.0, ra = 0.0;
    excl[a] = 0;
    for (int64_t j = 0; j < lin; ++j)
      if (wa[j] != 0.0) {
        sa += wa[j];
        ra += wa[j] * io->N[j];
        if (ragg_is_excluded_norm(io->N[j])) excl[a] = 1;
      }
    sig[a] = sa;
    r[a] = ra;
    double qa = 0.0;
    for (int64_t l = 0; l < lin; ++l) {
      double t = 0.0;
      if (!excl[a])
        for (int64_t j = 0; j < lin; ++j)
          if (wa[j] != 0.0 && j != l) t += wa[j] * io->D[j * lin + l];
      u[a * lin + l] = t;
      if (wa[l] != 0.0) qa += wa[l] * t;
    }
    q[a] = qa;
    double na = sa * ra - 0.5 * qa;
    Np[a] = excl[a] ? 1.0 / 0.0 : (na > 0.0 ? na : 0.0);
  }
  /* One triangle, mirrored: D' is exactly symmetric, so ties between a and b
   * compare equal bits from either side. */
  for (int64_t a = 0; a < np; ++a)
    for (int64_t b = a; b < np; ++b) {
      if (a == b) {
        Dp[a * np + b] = 0.0;
        continue;
      }
      if (excl[a] || excl[b]) {
        Dp[a * np + b] = Dp[b * np + a] = 1.0 / 0.0;
        continue;
      }
      /* a^T D b formed from both sides and added: a function of the pair,
       * not of which is a, so two identical mixed points (two inputs with
       * the same neighbours) get bit-identical distances to a third one
       * and their exact ties stay ties. */
      const double *wa = W + a * lin, *wb = W + b * lin;
      double ab = 0.0, ba = 0.0;
      for (int64_t l = 0; l < lin; ++l) {
        if (wb[l] != 0.0) ab += wb[l] * u[a * lin + l];
        if (wa[l] != 0.0) ba += wa[l] * u[b * lin + l];
      }
      double v = (sig[a] - sig[b]) * (r[a] - r[b]) - 0.5 * (q[a] + q[b] - (ab + ba));
      Dp[a * np + b] = Dp[b * np + a] = v > 0.0 ? v : 0.0;
    }
}

/* ||x_i - out|| for every input from alpha: with c = e_i - alpha,
 * ||c.x||^2 = (1 - sum alpha)(N_i - alpha.N) - 1/2 (alpha^T D alpha - 2 (D alpha)_i). */
static RAGG_HD void output_distances(const ragg_solve_io_t *io, double *Da) {
  int64_t n = io->n, lin = n + io->has_anchor;
  const double *al = io->alpha;
  double asum = 0.0, aN = 0.0, aDa = 0.0;
  int bad = 0;
  for (int64_t j = 0; j < lin; ++j)
    if (al[j] != 0.0) {
      asum += al[j];
      aN += al[j] * io->N[j];
      if (ragg_is_excluded_norm(io->N[j])) bad = 1;
    }
  for (int64_t i = 0; i < lin; ++i) {
    double t = 0.0;
    if (!bad)
      for (int64_t j = 0; j < lin; ++j)
        if (al[j] != 0.0 && j != i) t += al[j] * io->D[i * lin + j];
    Da[i] = t;
    if (al[i] != 0.0) aDa += al[i] * t;
  }
  for (int64_t i = 0; i < n; ++i) {
    if (bad || ragg_is_excluded_norm(io->N[i])) {
      io->scores[i] = 1.0 / 0.0;
      continue;
    }
    double sg = 1.0 - asum, nterm = sg != 0.0 ? sg * (io->N[i] - aN) : 0.0;
    double sq = nterm - 0.5 * (aDa - 2.0 * Da[i]);
    io->scores[i] = sqrt(sq > 0.0 ? sq : 0.0);
  }
}

RAGG_HD void ragg_weights_over_inputs(const ragg_solve_params_t *p, ragg_solve_io_t *io,
                                      const double *beta, int64_t np) {
  int64_t lin = io->n + io->has_anchor;
  int pre = ragg_has_prestep(p);
  for (int64_t j = 0; j < lin; ++j) {
    if (!pre) {
      io->alpha[j] = beta[j];
      continue;
    }
    double a = 0.0;
    for (int64_t b = 0; b < np; ++b)
      if (beta[b] != 0.0 && io->mix[b * lin + j] != 0.0) a += beta[b] * io->mix[b * lin + j];
    io->alpha[j] = a;
  }
}

/* What the rule sees: nm points with distances Dp and norms Np (the inputs',
 * or the pre-step's), its weights, scores and scratch from sc on. */
static RAGG_HD void rule_io(const ragg_solve_io_t *io, int64_t nm, const double *Dp,
                            const double *Np, double *sc, ragg_rule_io_t *rio) {
  int64_t np = nm + io->has_anchor;
  rio->n = nm;
  rio->ld = np;
  rio->has_anchor = io->has_anchor;
  rio->D = Dp;
  rio->N = Np;
  rio->beta = sc;
  rio->krum_scores = sc + np;
  rio->scratch = sc + 2 * np;
  rio->iscratch = io->iscratch;
  rio->bulyan_rows = io->bulyan_rows;
  rio->presolved = 0;
}

RAGG_HD void ragg_presolve_rule_io(ragg_solve_io_t *io, ragg_rule_io_t *rio) {
  rule_io(io, io->n, io->D, io->N, io->scratch, rio);
}

RAGG_HD int64_t ragg_presolve_rows(const ragg_solve_params_t *p, int64_t n) {
  int krum_family = p->rule == RULE_KRUM || p->rule == RULE_MULTI_KRUM || p->rule == RULE_BULYAN;
  return (krum_family || p->rule == RULE_GEOMED) && !ragg_has_prestep(p) ? n : 0;
}

RAGG_HD void ragg_presolve_row(const ragg_solve_params_t *p, ragg_solve_io_t *io, int64_t i,
                               double *tmp) {
  ragg_rule_io_t rio;
  ragg_presolve_rule_io(io, &rio);
  if (p->rule == RULE_BULYAN)
    ragg_bulyan_prework_row(&rio, i);
  else if (p->rule != RULE_GEOMED)
    ragg_krum_prework_row(p, &rio, i, tmp);
}

RAGG_HD int ragg_solve(const ragg_solve_params_t *p, ragg_solve_io_t *io) {
  int64_t n = io->n, A = io->has_anchor, lin = n + A;
  int pre = ragg_has_prestep(p);
  int64_t nm = pre ? ragg_mixed_rows(p, n) : n, np = nm + A;
  double *sc = io->scratch;
  const double *Dp = io->D, *Np = io->N;
  io->n_mixed = nm;
  if (pre) {
    ragg_build_transform(p, io);
    double *Dw = sc, *Nw = Dw + np * np, *u = Nw + np, *sig = u + np * lin, *r = sig + np,
           *q = r + np;
    transform_distances(io, np, Dw, Nw, u, sig, r, q, (unsigned char *)io->iscratch);
    Dp = Dw;
    Np = Nw;
    sc = Nw + np;
  }
  ragg_rule_io_t rio;
  rule_io(io, nm, Dp, Np, sc, &rio);
  rio.presolved = io->presolved && !pre;
  switch (p->rule) {
    case RULE_KRUM:
      ragg_solve_krum(p, &rio);
      break;
    case RULE_MULTI_KRUM:
      ragg_solve_multi_krum(p, &rio);
      break;
    case RULE_BULYAN:
      ragg_solve_bulyan(p, &rio);
      break;
    case RULE_GEOMED:
      ragg_solve_geomed(p, &rio);
      break;
    case RULE_BRUTE:
      ragg_solve_brute(p, &rio);
      break;
    case RULE_CC:
      ragg_solve_centered_clip(p, &rio);
      break;
    case RULE_MONNA:
      ragg_solve_monna(p, &rio);
      break;
    case RULE_CAF:
      ragg_solve_caf(p, &rio);
      break;
    case RULE_SMEA:
      ragg_solve_smea(p, &rio);
      break;
    default:
      for (int64_t i = 0; i < np; ++i) rio.beta[i] = i < nm ? 1.0 / (double)nm : 0.0;
      break;
  }
  ragg_weights_over_inputs(p, io, rio.beta, np);
  if (io->selected)
    for (int64_t i = 0; i < n; ++i) io->selected[i] = io->alpha[i] != 0.0;
  if (io->scores) {
    int krum_family = p->rule == RULE_KRUM || p->rule == RULE_MULTI_KRUM || p->rule == RULE_BULYAN;
    if (krum_family && nm == n)
      for (int64_t i = 0; i < n; ++i) io->scores[i] = rio.krum_scores[i];
    else
      output_distances(io, rio.scratch);
  }
  return 0;
}
