/* The CPU backend's plan for one call:
 *   coordinate-wise rules: [pre-steps: distances, then W] -> coordinate pass (on W X,
 *                          formed in registers tile by tile where the networks apply,
 *                          otherwise materialised as Y = W X first);
 *   Gram-space rules:      distances -> n x n solver -> combination;
 *   Bulyan:                distances -> solver's selection -> coordinate step on S;
 *   mean:                  combination with alpha = 1/n, or W^T (1/n') behind a pre-step
 *                          (distances only for the report or the pre-step). */
#include <stdlib.h>
#include <string.h>

#include "cpu.h"

typedef struct plan {
  int64_t n, L, nm, d;
  int need_dist, pre, inpass, materialize;
  int norms_only;  /* the pre-step's clipping needs the norms alone (no NNM) */
  int solver;      /* the n x n solver or the pre-step's transform runs */
  int anchor_only; /* centered clipping's one step from v_0 reads ||x_i - v_0|| alone */
} plan_t;

static void make_plan(const ragg_config_t *cfg, const ragg_report_t *report, int64_t n, int64_t d,
                      plan_t *pl) {
  ragg_solve_params_t p;
  ragg_params_from_config(cfg, &p);
  pl->n = n;
  pl->d = d;
  pl->L = n + (cfg->rule == RAGG_RULE_CENTERED_CLIP);
  pl->pre = ragg_has_prestep(&p);
  pl->nm = ragg_mixed_rows(&p, n);
  pl->need_dist = ragg_plan_needs_distances(cfg, report);
  /* a coordinate-wise rule or the mean behind norm clipping or ARC (and
   * bucketing): the transform reads the norms alone, one read's worth of
   * arithmetic instead of the n x n pass (the same bits) */
  pl->norms_only = pl->need_dist && ragg_plan_norms_only(cfg, report);
  pl->solver = pl->need_dist || pl->pre;
  pl->inpass = pl->pre && ragg_cpu_mixes_in_pass(cfg, n, pl->nm);
  pl->anchor_only = cfg->rule == RAGG_RULE_CENTERED_CLIP && cfg->iters == 1 && !pl->pre &&
                    !(report && report->scores);
  /* the mean behind a pre-step combines the inputs with W^T weights */
  pl->materialize = pl->pre && !pl->inpass &&
                    (ragg_rule_is_coordinatewise((int)cfg->rule) || cfg->rule == RAGG_RULE_BULYAN);
}

/* Workspace layout, in this order (8-byte aligned pieces). */
typedef struct layout {
  size_t rows, D, N, parts, alpha, mix, terms, scratch, iscratch, bulyan, ptrs2, sel, Y, total;
} layout_t;

static void make_layout(const plan_t *pl, layout_t *lo) {
  size_t L = (size_t)pl->L, off = 0;
#define TAKE(field, bytes) (lo->field = off, off += ((size_t)(bytes) + 63) & ~(size_t)63)
  TAKE(rows, sizeof(void *) * L);
  TAKE(D, pl->need_dist ? sizeof(double) * L * L : 0);
  TAKE(N, pl->need_dist ? sizeof(double) * L : 0);
  TAKE(parts,
       pl->need_dist ? sizeof(double) * L * L * (size_t)ragg_cpu_gram_parts(pl->L, pl->d) : 0);
  TAKE(alpha, sizeof(double) * L);
  /* the n x n pieces only where the solver or its pre-step transform runs: a
   * coordinate-wise rule or the mean alone needs O(n) bytes (the mean's
   * weights live in scratch) */
  TAKE(mix, pl->solver ? sizeof(double) * L * L : 0);
  TAKE(terms, pl->inpass ? ragg_cpu_mix_terms_bytes(pl->n, pl->nm) : 0);
  TAKE(scratch, sizeof(double) * (pl->solver ? (size_t)ragg_solver_scratch_doubles(pl->n) : L));
  TAKE(iscratch, sizeof(int64_t) * (size_t)ragg_solver_scratch_ints(pl->n));
  TAKE(bulyan, sizeof(int64_t) * L);
  TAKE(ptrs2, sizeof(void *) * L);
  TAKE(sel, sizeof(void *) * L);
  TAKE(Y, pl->materialize ? sizeof(float) * (size_t)pl->nm * (size_t)pl->d : 0);
#undef TAKE
  lo->total = off;
}

size_t ragg_cpu_workspace_size(const ragg_config_t *cfg, ragg_dtype_t dtype, int64_t n, int64_t d) {
  (void)dtype;
  plan_t pl;
  layout_t lo;
  ragg_report_t all = {n, (double *)1, NULL, NULL, NULL}; /* the largest plan */
  make_plan(cfg, &all, n, d, &pl);
  make_layout(&pl, &lo);
  return lo.total;
}

static ragg_status_t get_workspace(ragg_context_t *ctx, size_t bytes, char **ws) {
  if (ctx->ws_user) return ragg_user_workspace(ctx, bytes, (void **)ws);
  if (ctx->own_ws_bytes < bytes) {
    void *p = realloc(ctx->own_ws, bytes);
    if (!p)
      return ragg_set_error(ctx, RAGG_ERR_OUT_OF_MEMORY,
                            "ragg_aggregate: could not allocate a %zu-byte workspace", bytes);
    ctx->own_ws = p;
    ctx->own_ws_bytes = bytes;
  }
  *ws = (char *)ctx->own_ws;
  return RAGG_SUCCESS;
}

ragg_status_t ragg_cpu_aggregate(ragg_context_t *ctx, const ragg_config_t *cfg,
                                 const ragg_input_t *in, void *out, ragg_report_t *report) {
  plan_t pl;
  layout_t lo;
  make_plan(cfg, report, in->n, in->d, &pl);
  make_layout(&pl, &lo);
  char *ws = NULL;
  ragg_status_t st = get_workspace(ctx, lo.total, &ws);
  if (st != RAGG_SUCCESS) return st;
  int64_t n = in->n, d = in->d, L = pl.L;
  size_t es = ragg_dtype_size(in->dtype);
  const void **rows = (const void **)(ws + lo.rows);
  for (int64_t i = 0; i < n; ++i)
    rows[i] = in->rows ? in->rows[i] : (const char *)in->base + (size_t)i * (size_t)in->ld * es;
  /* Centered clipping's v_0 is one more row of every pass; NULL is the origin,
   * a row of zeros would cost a read, so its distances are the norms. */
  int anchor_row = L > n && cfg->cc_center;
  if (L > n) rows[n] = cfg->cc_center;
  double *D = (double *)(ws + lo.D), *N = (double *)(ws + lo.N);
  if (pl.need_dist) {
    if (L > n && !anchor_row) {
      /* distances of the inputs, then the origin as point n */
      double *Dn = (double *)(ws + lo.mix); /* n x n staging */
      if (ragg_cpu_distances(in->dtype, rows, n, d, cfg->distances,
                             pl.anchor_only ? RAGG_PAIRS_DIAG : RAGG_PAIRS_ALL, Dn, N,
                             (double *)(ws + lo.parts)))
        return ragg_set_error(ctx, RAGG_ERR_OUT_OF_MEMORY,
                              "ragg_aggregate: out of memory in the Gram pass");
      for (int64_t i = 0; i < n; ++i) {
        for (int64_t j = 0; j < n; ++j) D[i * L + j] = Dn[i * n + j];
        D[i * L + n] = D[n * L + i] = ragg_is_excluded_norm(N[i]) ? 1.0 / 0.0 : N[i];
      }
      D[n * L + n] = 0.0;
      N[n] = 0.0;
    } else {
      int pairs = pl.anchor_only  ? RAGG_PAIRS_LAST
                  : pl.norms_only ? RAGG_PAIRS_DIAG
                                  : RAGG_PAIRS_ALL;
      if (ragg_cpu_distances(in->dtype, rows, L, d, cfg->distances, pairs, D, N,
                             (double *)(ws + lo.parts)))
        return ragg_set_error(ctx, RAGG_ERR_OUT_OF_MEMORY,
                              "ragg_aggregate: out of memory in the Gram pass");
    }
  }
  ragg_solve_params_t p;
  ragg_params_from_config(cfg, &p);
  double *alpha = (double *)(ws + lo.alpha);
  ragg_solve_io_t io;
  memset(&io, 0, sizeof(io));
  io.n = n;
  io.has_anchor = L > n;
  io.D = D;
  io.N = N;
  io.alpha = alpha;
  io.mix = (double *)(ws + lo.mix);
  io.scratch = (double *)(ws + lo.scratch);
  io.iscratch = (int64_t *)(ws + lo.iscratch);
  io.bulyan_rows = (int64_t *)(ws + lo.bulyan);
  int coordinatewise = ragg_rule_is_coordinatewise((int)cfg->rule);

  /* Rows the coordinate pass (or the mean) reads: the inputs, or Y = W X. */
  const void *const *crow = rows;
  ragg_dtype_t ct = in->dtype;
  int64_t cn = n;
  /* the mean without its distance scores: W^T (1/n') straight from the transform */
  const int mean_alone = cfg->rule == RAGG_RULE_MEAN && (!pl.need_dist || pl.norms_only);
  if (pl.materialize || pl.inpass || (mean_alone && pl.pre)) {
    if (!pl.need_dist) /* bucketing alone needs no distances */
      D = N = NULL;
    if (pl.norms_only) /* nor clipping: the norms alone */
      D = NULL;
    io.D = D;
    io.N = N;
    ragg_build_transform(&p, &io);
    cn = pl.nm;
  }
  if (pl.materialize) {
    float *Y = (float *)(ws + lo.Y);
    ragg_cpu_transform_rows(in->dtype, rows, n, io.mix, L, pl.nm, d, Y);
    const void **yr = (const void **)(ws + lo.ptrs2);
    for (int64_t i = 0; i < pl.nm; ++i) yr[i] = Y + (size_t)i * (size_t)d;
    crow = yr;
    ct = RAGG_F32;
  }

  if (report && report->nonfinite)
    ragg_cpu_count_nonfinite(in->dtype, rows, n, d, report->nonfinite);

  if (coordinatewise) {
    ragg_coord_op_t op = {cfg->rule, cfg->f, cn - cfg->f};
    int64_t *counts = NULL;
    if (report && report->scores && !pl.pre) counts = (int64_t *)io.iscratch;
    if (pl.inpass)
      st = ragg_cpu_coordinate_mixed(in->dtype, rows, n, d, io.mix, L, NULL, pl.nm, &op, in->dtype,
                                     out, ws + lo.terms);
    else
      st = ragg_cpu_coordinate(ct, crow, cn, d, &op, in->dtype, out, counts);
    if (st != RAGG_SUCCESS)
      return ragg_set_error(ctx, st, "ragg_aggregate: out of memory in the coordinate pass");
    if (report) {
      for (int64_t i = 0; i < n; ++i) {
        if (report->selected) report->selected[i] = -1;
        if (report->scores) report->scores[i] = counts ? (double)counts[i] / (double)d : 0.0;
      }
    }
    return RAGG_SUCCESS;
  }

  if (mean_alone) {
    /* behind bucketing, clipping or ARC: the mean of the n' transformed rows
     * as weights over the inputs, the sums ragg_solve forms when distances
     * are at hand */
    double *beta = io.scratch;
    for (int64_t i = 0; i < pl.nm; ++i) beta[i] = 1.0 / (double)pl.nm;
    ragg_weights_over_inputs(&p, &io, beta, pl.nm);
    ragg_cpu_combine(in->dtype, rows, alpha, n, d, in->dtype, out);
    if (report) {
      for (int64_t i = 0; i < n; ++i) {
        if (report->selected) report->selected[i] = alpha[i] != 0.0;
        if (report->weights) report->weights[i] = alpha[i];
      }
    }
    return RAGG_SUCCESS;
  }

  double *scores = report && report->scores ? report->scores : NULL;
  int32_t *selected = report && report->selected ? report->selected : NULL;
  io.scores = scores;
  io.selected = selected;
  ragg_solve(&p, &io);

  if (cfg->rule == RAGG_RULE_BULYAN) {
    int64_t theta = pl.nm - 2 * cfg->f;
    /* the selected rows, through an index list (no copy of the data) */
    ragg_coord_op_t op = {RAGG_RULE_MEAMED, cfg->f, theta - 2 * cfg->f};
    if (pl.inpass) { /* the selected rows of W, mixed in the step */
      st = ragg_cpu_coordinate_mixed(in->dtype, rows, n, d, io.mix, L, io.bulyan_rows, theta, &op,
                                     in->dtype, out, ws + lo.terms);
    } else {
      const void **srows = (const void **)(ws + lo.sel);
      for (int64_t i = 0; i < theta; ++i) srows[i] = crow[io.bulyan_rows[i]];
      st = ragg_cpu_coordinate(ct, srows, theta, d, &op, in->dtype, out, NULL);
    }
    if (st != RAGG_SUCCESS)
      return ragg_set_error(ctx, st, "ragg_aggregate: out of memory in the coordinate pass");
    return RAGG_SUCCESS;
  }

  ragg_cpu_combine(in->dtype, rows, alpha, anchor_row ? L : n, d, in->dtype, out);
  if (report && report->weights)
    for (int64_t i = 0; i < n; ++i) report->weights[i] = alpha[i];
  return RAGG_SUCCESS;
}
