/*
 * The robust all-reduce and reduce-scatter, written once over the transport
 * interface (transport.h); DESIGN §1 "Distributed".
 *
 * Sharded mode, rank r of P (input p = rank p's buffer):
 *   1. all-to-all: rank r receives coordinate shard r of every rank's buffer
 *      (P rows of about count/P values);
 *   2. coordinate-wise rules aggregate the shard on their own. Gram-space
 *      rules, Bulyan and every pre-step sum the raw P x P Gram (or direct)
 *      partial sums of the shards with a same-bits-everywhere all-reduce, so
 *      every rank derives the same D, N and solver output; the combination
 *      (or Bulyan's coordinate step, or the pre-step's mixing) then runs on
 *      the local shard;
 *   3. all-gather of the aggregated shards (all-reduce only).
 * Replicated mode: all-gather every buffer, aggregate everything on every rank.
 *
 * Which collectives run depends only on rank-consistent inputs (P, count,
 * dtype, reduce, mode, configuration, whether a report is passed), never on
 * data values or addresses.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cpu/convert.h"
#include "../cpu/cpu.h"
#include "transport.h"

#define FAILC(st, ...) return ragg_set_error(ctx, st, __VA_ARGS__)

int ragg_dist_check_env(void) {
  const char *e = getenv("RAGG_CHECK");
  return e && e[0] == '1' && e[1] == '\0';
}

/* ---- agreement (RAGG_CHECK) ------------------------------------------------ */

static void fnv_mix(uint64_t *h, const void *p, size_t n) {
  const unsigned char *b = (const unsigned char *)p;
  for (size_t i = 0; i < n; ++i) {
    *h ^= b[i];
    *h *= 0x100000001B3ull;
  }
}
#define FNV_FIELD(h, v)      \
  do {                       \
    __typeof__(v) tmp_ = (v); \
    fnv_mix(h, &tmp_, sizeof(tmp_)); \
  } while (0)

/* Hash of every configuration field that changes the result (not the
 * address of cc_center, only whether it is set). */
static uint64_t config_hash(const ragg_config_t *cfg) {
  if (!cfg || cfg->struct_size != sizeof(ragg_config_t)) return 0;
  uint64_t h = 0xCBF29CE484222325ull;
  FNV_FIELD(&h, (int64_t)cfg->rule);
  FNV_FIELD(&h, cfg->f);
  FNV_FIELD(&h, cfg->m);
  FNV_FIELD(&h, cfg->clip_norm);
  FNV_FIELD(&h, cfg->tau);
  FNV_FIELD(&h, cfg->iters);
  FNV_FIELD(&h, (int64_t)(cfg->cc_center != NULL));
  FNV_FIELD(&h, cfg->nu);
  FNV_FIELD(&h, cfg->max_iters);
  FNV_FIELD(&h, cfg->tol);
  FNV_FIELD(&h, cfg->brute_limit);
  FNV_FIELD(&h, (int64_t)cfg->distances);
  FNV_FIELD(&h, cfg->trusted);
  FNV_FIELD(&h, (int64_t)cfg->adaptive_clip);
  FNV_FIELD(&h, (int64_t)cfg->mix);
  FNV_FIELD(&h, cfg->bucket_size);
  FNV_FIELD(&h, cfg->seed);
  return h;
}

static int64_t report_mask(const ragg_report_t *r) {
  if (!r) return 0;
  return 1 | (r->scores ? 2 : 0) | (r->weights ? 4 : 0) | (r->selected ? 8 : 0) |
         (r->nonfinite ? 16 : 0);
}

enum { SIG_MAGIC, SIG_KIND, SIG_COUNT, SIG_DTYPE, SIG_REDUCE, SIG_MODE, SIG_CONFIG, SIG_REPORT,
       SIG_STATUS, SIG_LEN };
static const char *const k_sig_names[SIG_LEN] = {
    "library version", "collective", "count", "dtype", "reduce", "mode",
    "configuration (a ragg_config_t field)", "report (passed on some ranks only)", "status"};

/* All-gathers the call's signature and compares it with rank 0's. On a
 * difference every rank returns RAGG_ERR_MISMATCH with the same message; when
 * the signatures agree but a rank rejected its arguments, every rank fails
 * with that rank's status. */
static ragg_status_t agree(ragg_context_t *ctx, const ragg_config_t *cfg, const ragg_coll_t *c,
                           ragg_transport_t *t, ragg_status_t local) {
  int P = t->size;
  int64_t *all = (int64_t *)calloc((size_t)P * SIG_LEN, sizeof(int64_t));
  size_t *cnt = (size_t *)malloc(sizeof(size_t) * 2 * (size_t)P);
  if (!all || !cnt) {
    free(all);
    free(cnt);
    FAILC(RAGG_ERR_OUT_OF_MEMORY, "%s: RAGG_CHECK: out of memory", t->fn);
  }
  int64_t *mine = all + (size_t)t->rank * SIG_LEN;
  mine[SIG_MAGIC] = 0x52414747ll * 100000 + RAGG_VERSION_CODE;
  mine[SIG_KIND] = c->kind;
  mine[SIG_COUNT] = (int64_t)c->count;
  mine[SIG_DTYPE] = c->dtype;
  mine[SIG_REDUCE] = c->reduce;
  mine[SIG_MODE] = c->mode;
  mine[SIG_CONFIG] = (int64_t)config_hash(cfg);
  mine[SIG_REPORT] = report_mask(c->report);
  mine[SIG_STATUS] = local;
  for (int p = 0; p < P; ++p) {
    cnt[p] = SIG_LEN;
    cnt[P + p] = (size_t)p * SIG_LEN;
  }
  char saved[RAGG_ERRMSG_LEN] = "";
  if (ctx) memcpy(saved, ctx->err, sizeof(saved));
  ragg_status_t st = (t->allgatherv_host ? t->allgatherv_host : t->allgatherv)(t, all, cnt, cnt + P,
                                                                              sizeof(int64_t));
  if (st == RAGG_SUCCESS) {
    for (int field = 0; field < SIG_STATUS && st == RAGG_SUCCESS; ++field)
      for (int p = 1; p < P; ++p) {
        int64_t a = all[field], b = all[(size_t)p * SIG_LEN + field];
        if (a == b) continue;
        if (field == SIG_CONFIG || field == SIG_REPORT)
          st = ragg_set_error(ctx, RAGG_ERR_MISMATCH,
                              "%s: RAGG_CHECK: ranks disagree on the %s: rank %d differs from rank 0",
                              t->fn, k_sig_names[field], p);
        else
          st = ragg_set_error(ctx, RAGG_ERR_MISMATCH,
                              "%s: RAGG_CHECK: ranks disagree on the %s: rank 0 passes %lld, rank %d "
                              "passes %lld", t->fn, k_sig_names[field], (long long)a, p, (long long)b);
        break;
      }
    if (st == RAGG_SUCCESS && local != RAGG_SUCCESS) {
      st = local; /* keep this rank's own message */
      if (ctx) memcpy(ctx->err, saved, sizeof(saved));
    }
    for (int p = 0; p < P && st == RAGG_SUCCESS; ++p) {
      int64_t s = all[(size_t)p * SIG_LEN + SIG_STATUS];
      if (s != RAGG_SUCCESS)
        st = ragg_set_error(ctx, (ragg_status_t)s, "%s: rank %d rejected its arguments (%s)", t->fn,
                            p, ragg_status_string((ragg_status_t)s));
    }
  }
  free(all);
  free(cnt);
  return st;
}

/* ---- argument checks (local, before any communication) ------------------- */

static int overlaps(const void *a, size_t abytes, const void *b, size_t bbytes) {
  uintptr_t a0 = (uintptr_t)a, b0 = (uintptr_t)b;
  return a0 < b0 + bbytes && b0 < a0 + abytes;
}

static ragg_status_t check_args(ragg_context_t *ctx, const ragg_config_t *cfg, const ragg_coll_t *c,
                                const ragg_transport_t *t) {
  const char *fn = t->fn;
  if (!ctx) return RAGG_ERR_INVALID_ARGUMENT;
  if (!t->dev && ctx->backend != RAGG_BACKEND_CPU)
    FAILC(RAGG_ERR_INVALID_ARGUMENT, "%s: ctx must be a CPU-backend context (host buffers)", fn);
  if (t->dev && ctx->backend != RAGG_BACKEND_CUDA)
    FAILC(RAGG_ERR_INVALID_ARGUMENT, "%s: ctx must be a CUDA-backend context (device buffers)", fn);
  if (c->dtype != RAGG_F32 && c->dtype != RAGG_F16 && c->dtype != RAGG_BF16)
    FAILC(RAGG_ERR_INVALID_ARGUMENT, "%s: dtype = %d is not a ragg_dtype_t", fn, (int)c->dtype);
  if (c->reduce != RAGG_REDUCE_MEAN && c->reduce != RAGG_REDUCE_SUM)
    FAILC(RAGG_ERR_INVALID_ARGUMENT, "%s: reduce = %d is not a ragg_reduce_t", fn, (int)c->reduce);
  if (c->mode != RAGG_MODE_SHARDED && c->mode != RAGG_MODE_REPLICATED)
    FAILC(RAGG_ERR_INVALID_ARGUMENT, "%s: mode = %d is not a ragg_mode_t", fn, (int)c->mode);
  size_t P = (size_t)t->size, es = ragg_dtype_size(c->dtype);
  size_t total = c->count; /* values in each rank's input */
  if (c->kind == RAGG_COLL_REDUCE_SCATTER) {
    if (c->count > (SIZE_MAX / 8) / P)
      FAILC(RAGG_ERR_INVALID_ARGUMENT, "%s: recvcount = %zu times P = %zu overflows", fn, c->count, P);
    total = c->count * P;
  }
  if (total > (size_t)INT64_MAX / 8 / P)
    FAILC(RAGG_ERR_INVALID_ARGUMENT, "%s: count = %zu is too large for P = %zu ranks", fn, c->count, P);
  if (total > 0 && (!c->sendbuf || !c->recvbuf))
    FAILC(RAGG_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn, c->sendbuf ? "recvbuf" : "sendbuf");
  if (!cfg) FAILC(RAGG_ERR_INVALID_ARGUMENT, "%s: cfg is NULL", fn);
  /* The configuration's checks with n = P: the same verdict on every rank. */
  size_t ws = 0;
  ragg_status_t st = ragg_workspace_size(ctx, cfg, c->dtype, (int64_t)P, 1, &ws);
  if (st != RAGG_SUCCESS) {
    char tail[RAGG_ERRMSG_LEN];
    const char *pre = "ragg_aggregate: ";
    size_t skip = strncmp(ctx->err, pre, strlen(pre)) == 0 ? strlen(pre) : 0;
    memcpy(tail, ctx->err + skip, sizeof(tail) - skip);
    return ragg_set_error(ctx, st, "%s: %s (n = P = %zu ranks)", fn, tail, P);
  }
  size_t obytes = (c->kind == RAGG_COLL_ALLREDUCE ? total : c->count) * es;
  if (cfg->rule == RAGG_RULE_CENTERED_CLIP && cfg->cc_center && total > 0 &&
      overlaps(cfg->cc_center, total * es, c->recvbuf, obytes))
    FAILC(RAGG_ERR_INVALID_ARGUMENT, "%s: cfg->cc_center overlaps recvbuf", fn);
  if (c->report && c->report->capacity < (int64_t)P)
    FAILC(RAGG_ERR_INVALID_ARGUMENT, "%s: report->capacity = %lld is below P = %zu", fn,
          (long long)c->report->capacity, P);
  return RAGG_SUCCESS;
}

/* ---- workspace -------------------------------------------------------------- */

typedef struct dist_ws {
  char *base;
  void *own; /* malloc'ed for this call, or NULL */
} dist_ws_t;

/* The context's own workspace (grown, kept for the next call), the caller's
 * when it is large enough, or else a buffer for this call. */
static ragg_status_t ws_get(ragg_context_t *ctx, const char *fn, size_t bytes, dist_ws_t *w) {
  w->own = NULL;
  w->base = NULL;
  if (bytes == 0) bytes = 1;
  if (ctx->ws_user && ctx->ws_bytes >= bytes) {
    w->base = (char *)ctx->ws;
    return RAGG_SUCCESS;
  }
  if (!ctx->ws_user) {
    if (ctx->own_ws_bytes < bytes) {
      void *p = realloc(ctx->own_ws, bytes);
      if (p) {
        ctx->own_ws = p;
        ctx->own_ws_bytes = bytes;
      }
    }
    if (ctx->own_ws_bytes >= bytes) {
      w->base = (char *)ctx->own_ws;
      return RAGG_SUCCESS;
    }
  }
  w->base = (char *)(w->own = malloc(bytes));
  if (!w->base)
    FAILC(RAGG_ERR_OUT_OF_MEMORY, "%s: could not allocate a %zu-byte workspace", fn, bytes);
  return RAGG_SUCCESS;
}

#define ALIGN64(x) (((size_t)(x) + 63) & ~(size_t)63)
#define ALIGN256(x) (((size_t)(x) + 255) & ~(size_t)255) /* device blocks: the CUDA layout's alignment */

/* ---- the sharded mode's local step ----------------------------------------- */

typedef struct shard {
  int64_t P, c;      /* rows (ranks), local values per row */
  int64_t total;     /* values per input (for the report's fractions) */
  size_t offset;     /* the shard's first value in the full vector (cc_center) */
  const void **rows; /* P (+1) row pointers into the staging area */
  void *out;         /* c values */
} shard_t;

typedef struct shard_layout {
  size_t D, N, parts, alpha, mix, terms, scratch, iscratch, bulyan, ptrs2, sel, Y, cnt, total;
} shard_layout_t;

static void shard_plan(const ragg_config_t *cfg, const ragg_report_t *report, int64_t P, int64_t c,
                       int *need_dist, int *materialize, int64_t *nm, shard_layout_t *lo) {
  ragg_solve_params_t p;
  ragg_params_from_config(cfg, &p);
  int64_t L = P + (cfg->rule == RAGG_RULE_CENTERED_CLIP);
  int pre = ragg_has_prestep(&p);
  *nm = ragg_mixed_rows(&p, P);
  /* Every pre-step takes the distances' path (the mean behind one goes
   * through the solver); where the transform reads the norms alone
   * (ragg_plan_norms_only) the pass forms only those. */
  *need_dist = ragg_plan_needs_distances(cfg, report) || pre;
  *materialize = pre && !ragg_cpu_mixes_in_pass(cfg, P, *nm) &&
                 (ragg_rule_is_coordinatewise((int)cfg->rule) || cfg->rule == RAGG_RULE_BULYAN);
  size_t off = 0, l = (size_t)L;
#define TAKE(field, bytes) (lo->field = off, off += ALIGN64(bytes))
  /* the n x n pieces (D, mix, the solver's scratch) only with distances,
   * which every pre-step brings: a coordinate-wise rule or the mean alone
   * needs O(P) bytes besides its shard */
  TAKE(D, *need_dist ? sizeof(double) * (l * l + 1) : 0); /* + 1: global_distances' failure count */
  TAKE(N, sizeof(double) * l);
  /* gram_raw runs on L rows, or on P when the origin is the anchor */
  size_t cc = (size_t)(c > 0 ? c : 1), pl = (size_t)ragg_cpu_gram_parts(L, (int64_t)cc) * l * l,
         pp = (size_t)ragg_cpu_gram_parts(P, (int64_t)cc) * (size_t)P * (size_t)P;
  TAKE(parts, *need_dist ? sizeof(double) * (pl > pp ? pl : pp) : 0);
  TAKE(alpha, sizeof(double) * l);
  TAKE(mix, *need_dist ? sizeof(double) * (l * l + 1) : 0);
  TAKE(terms, pre && ragg_cpu_mixes_in_pass(cfg, P, *nm) ? ragg_cpu_mix_terms_bytes(P, *nm) : 0);
  TAKE(scratch, *need_dist ? sizeof(double) * (size_t)ragg_solver_scratch_doubles(P) : 0);
  TAKE(iscratch, sizeof(int64_t) * (size_t)ragg_solver_scratch_ints(P));
  TAKE(bulyan, sizeof(int64_t) * l);
  TAKE(ptrs2, sizeof(void *) * l);
  TAKE(sel, sizeof(void *) * l);
  TAKE(Y, *materialize ? sizeof(float) * (size_t)*nm * (size_t)c : 0);
  TAKE(cnt, (sizeof(double) + sizeof(int64_t)) * l);
#undef TAKE
  lo->total = off;
}

/* D (L x L) and N (L) from the raw sums of every shard, the same bits on
 * every rank. Centered clipping without cc_center puts the origin at point P,
 * as the CPU backend does. */
static ragg_status_t global_distances(const ragg_config_t *cfg, ragg_transport_t *t, ragg_dtype_t dt,
                                      const shard_t *s, int anchor_row, int pairs, char *ws,
                                      const shard_layout_t *lo) {
  int64_t P = s->P, L = P + (cfg->rule == RAGG_RULE_CENTERED_CLIP);
  int64_t Lg = anchor_row ? L : P; /* rows that carry data */
  double *D = (double *)(ws + lo->D), *N = (double *)(ws + lo->N);
  double *R = L > Lg ? (double *)(ws + lo->mix) : D;
  /* A rank whose Gram pass could not allocate its buffers still takes part
   * in the all-reduce, adding zeros and a failure count behind the sums, so
   * that every rank returns the same status instead of waiting or going on
   * with partial sums. */
  int failed = s->c > 0 && ragg_cpu_gram_raw(dt, s->rows, Lg, s->c, cfg->distances, pairs, R,
                                             (double *)(ws + lo->parts));
  if (s->c <= 0 || failed) memset(R, 0, sizeof(double) * (size_t)(Lg * Lg));
  R[Lg * Lg] = failed ? 1.0 : 0.0;
  ragg_status_t st = t->allreduce_sum_f64(t, R, (size_t)(Lg * Lg + 1));
  if (st != RAGG_SUCCESS) return st;
  if (R[Lg * Lg] != 0.0)
    return ragg_set_error(t->ctx, RAGG_ERR_OUT_OF_MEMORY,
                          "%s: out of memory in the Gram pass (on %.0f of %lld ranks)", t->fn,
                          R[Lg * Lg], (long long)P);
  ragg_distances_finalize(R, Lg, cfg->distances, R, N);
  if (L > Lg) {
    for (int64_t i = P - 1; i >= 0; --i) /* R and D are distinct here */
      for (int64_t j = 0; j < P; ++j) D[i * L + j] = R[i * P + j];
    for (int64_t i = 0; i < P; ++i)
      D[i * L + P] = D[P * L + i] = ragg_is_excluded_norm(N[i]) ? 1.0 / 0.0 : N[i];
    D[P * L + P] = 0.0;
    N[P] = 0.0;
  }
  return RAGG_SUCCESS;
}

/* Per-row counts summed over the shards (exact: integers below 2^53). */
static ragg_status_t sum_counts(ragg_transport_t *t, const int64_t *local, int64_t n, double *buf,
                                int64_t *sum) {
  for (int64_t i = 0; i < n; ++i) buf[i] = (double)local[i];
  ragg_status_t st = t->allreduce_sum_f64(t, buf, (size_t)n);
  if (st != RAGG_SUCCESS) return st;
  for (int64_t i = 0; i < n; ++i) sum[i] = (int64_t)buf[i];
  return RAGG_SUCCESS;
}

/* The CPU backend's plan for one call (cpu_backend.c), on the local shard,
 * with the distances and the report's counts summed over every shard. */
static ragg_status_t shard_aggregate(ragg_context_t *ctx, const ragg_config_t *cfg, ragg_transport_t *t,
                                     ragg_dtype_t dt, shard_t *s, ragg_report_t *report, char *ws,
                                     const shard_layout_t *lo, int need_dist, int materialize,
                                     int64_t nm) {
  int64_t n = s->P, c = s->c, L = n + (cfg->rule == RAGG_RULE_CENTERED_CLIP);
  size_t es = ragg_dtype_size(dt);
  int anchor_row = L > n && cfg->cc_center;
  if (anchor_row) s->rows[n] = (const char *)cfg->cc_center + s->offset * es;
  double *D = (double *)(ws + lo->D), *N = (double *)(ws + lo->N);
  double *cbuf = (double *)(ws + lo->cnt);
  int64_t *icnt = (int64_t *)(cbuf + L);
  ragg_status_t st;
  if (need_dist) {
    /* behind clipping, ARC or bucketing a coordinate-wise rule or the mean
     * reads the norms alone: the shards' diagonals (the same bits) */
    int pairs = ragg_plan_norms_only(cfg, report) ? RAGG_PAIRS_DIAG : RAGG_PAIRS_ALL;
    st = global_distances(cfg, t, dt, s, anchor_row, pairs, ws, lo);
    if (st != RAGG_SUCCESS) return st;
  }
  if (report && report->nonfinite) {
    if (c > 0)
      ragg_cpu_count_nonfinite(dt, s->rows, n, c, icnt);
    else
      memset(icnt, 0, sizeof(int64_t) * (size_t)n);
    st = sum_counts(t, icnt, n, cbuf, report->nonfinite);
    if (st != RAGG_SUCCESS) return st;
  }
  ragg_solve_params_t p;
  ragg_params_from_config(cfg, &p);
  double *alpha = (double *)(ws + lo->alpha);
  ragg_solve_io_t io;
  memset(&io, 0, sizeof(io));
  io.n = n;
  io.has_anchor = L > n;
  io.D = need_dist ? D : NULL;
  io.N = need_dist ? N : NULL;
  io.alpha = alpha;
  io.mix = (double *)(ws + lo->mix);
  io.scratch = (double *)(ws + lo->scratch);
  io.iscratch = (int64_t *)(ws + lo->iscratch);
  io.bulyan_rows = (int64_t *)(ws + lo->bulyan);
  int pre = ragg_has_prestep(&p);

  const void *const *crow = s->rows;
  ragg_dtype_t ct = dt;
  int64_t cn = n;
  int inpass = pre && ragg_cpu_mixes_in_pass(cfg, n, nm); /* mixed rows formed in the pass */
  if (materialize || inpass) {
    ragg_build_transform(&p, &io);
    cn = nm;
  }
  if (materialize) {
    float *Y = (float *)(ws + lo->Y);
    if (c > 0) ragg_cpu_transform_rows(dt, s->rows, n, io.mix, L, nm, c, Y);
    const void **yr = (const void **)(ws + lo->ptrs2);
    for (int64_t i = 0; i < nm; ++i) yr[i] = Y + (size_t)i * (size_t)c;
    crow = yr;
    ct = RAGG_F32;
  }

  if (ragg_rule_is_coordinatewise((int)cfg->rule)) {
    ragg_coord_op_t op = {cfg->rule, cfg->f, cn - cfg->f};
    int want_counts = report && report->scores && !pre;
    if (want_counts) memset(icnt, 0, sizeof(int64_t) * (size_t)n);
    st = RAGG_SUCCESS; /* an empty shard (c = 0) has no pass */
    if (c > 0 && inpass)
      st = ragg_cpu_coordinate_mixed(dt, s->rows, n, c, io.mix, L, NULL, nm, &op, dt, s->out,
                                     ws + lo->terms);
    else if (c > 0)
      st = ragg_cpu_coordinate(ct, crow, cn, c, &op, dt, s->out, want_counts ? icnt : NULL);
    if (st != RAGG_SUCCESS)
      return ragg_set_error(ctx, st, "%s: out of memory in the coordinate pass", t->fn);
    if (want_counts) {
      st = sum_counts(t, icnt, n, cbuf, icnt);
      if (st != RAGG_SUCCESS) return st;
    }
    if (report)
      for (int64_t i = 0; i < n; ++i) {
        if (report->selected) report->selected[i] = -1;
        if (report->scores) report->scores[i] = want_counts ? (double)icnt[i] / (double)s->total : 0.0;
      }
    return RAGG_SUCCESS;
  }

  if (cfg->rule == RAGG_RULE_MEAN && !need_dist) {
    for (int64_t i = 0; i < nm; ++i) alpha[i] = 1.0 / (double)nm;
    if (c > 0) ragg_cpu_combine(ct, crow, alpha, cn, c, dt, s->out);
    if (report)
      for (int64_t i = 0; i < n; ++i) {
        if (report->selected) report->selected[i] = 1;
        if (report->weights && !pre) report->weights[i] = 1.0 / (double)n;
      }
    return RAGG_SUCCESS;
  }

  io.scores = report ? report->scores : NULL;
  io.selected = report ? report->selected : NULL;
  ragg_solve(&p, &io);

  if (cfg->rule == RAGG_RULE_BULYAN) {
    int64_t theta = nm - 2 * cfg->f;
    const void **srows = (const void **)(ws + lo->sel);
    for (int64_t i = 0; i < theta; ++i) srows[i] = crow[io.bulyan_rows[i]];
    ragg_coord_op_t op = {RAGG_RULE_MEAMED, cfg->f, theta - 2 * cfg->f};
    st = RAGG_SUCCESS;
    if (c > 0 && inpass)
      st = ragg_cpu_coordinate_mixed(dt, s->rows, n, c, io.mix, L, io.bulyan_rows, theta, &op,
                                     dt, s->out, ws + lo->terms);
    else if (c > 0)
      st = ragg_cpu_coordinate(ct, srows, theta, c, &op, dt, s->out, NULL);
    if (st != RAGG_SUCCESS)
      return ragg_set_error(ctx, st, "%s: out of memory in the coordinate pass", t->fn);
    return RAGG_SUCCESS;
  }

  if (c > 0) ragg_cpu_combine(dt, s->rows, alpha, anchor_row ? L : n, c, dt, s->out);
  if (report && report->weights)
    for (int64_t i = 0; i < n; ++i) report->weights[i] = alpha[i];
  return RAGG_SUCCESS;
}

/* RAGG_REDUCE_SUM: P times the aggregate, formed in double and rounded once. */
static void scale_output(ragg_dtype_t dt, void *out, size_t len, int P) {
  if (P == 1) return;
#pragma omp parallel for schedule(static) if (len > 65536)
  for (int64_t k = 0; k < (int64_t)len; ++k)
    ragg_store(dt, out, k, (double)ragg_load(dt, out, k) * (double)P);
}

/* The sharded mode's exchange: rank p sends scount[p] values at sdispl[p] of
 * its input to each peer (an all-reduce's shard p; a reduce-scatter's block
 * p) and receives its own shard, `my` values, from every rank at p * my; the
 * all-gather reuses scount / sdispl. cnt: 4 P counts. Returns my. */
static size_t shard_counts(const ragg_coll_t *c, int P, int r, size_t *cnt) {
  size_t *scount = cnt, *sdispl = cnt + P, *rcount = cnt + 2 * P, *rdispl = cnt + 3 * P;
  for (int p = 0; p < P; ++p) {
    if (c->kind == RAGG_COLL_ALLREDUCE)
      ragg_shard(c->count, P, p, &sdispl[p], &scount[p]);
    else {
      scount[p] = c->count;
      sdispl[p] = (size_t)p * c->count;
    }
  }
  size_t my = scount[r];
  for (int p = 0; p < P; ++p) {
    rcount[p] = my;
    rdispl[p] = (size_t)p * my;
  }
  return my;
}

/* ragg_aggregate on the collective's own buffers (host or device, as the
 * context's backend), with the workspace lent from this call's block; errors
 * keep the backend's message behind the entry point's name. */
static ragg_status_t lent_aggregate(ragg_context_t *ctx, const ragg_config_t *cfg, ragg_transport_t *t,
                                    ragg_dtype_t dt, const void *x, int64_t n, int64_t d, void *out,
                                    ragg_report_t *report, void *ws, size_t ws_bytes,
                                    const char *what, const ragg_raw_reducer_t *rr) {
  int saved_user = ctx->ws_user;
  void *saved_ws = ctx->ws;
  size_t saved_bytes = ctx->ws_bytes;
  ctx->ws_user = 1;
  ctx->ws = ws;
  ctx->ws_bytes = ws_bytes;
  ragg_status_t st = rr ? ragg_aggregate_shard(ctx, cfg, dt, x, n, d, out, rr)
                        : ragg_aggregate(ctx, cfg, dt, x, n, d, d, out, report);
  ctx->ws_user = saved_user;
  ctx->ws = saved_ws;
  ctx->ws_bytes = saved_bytes;
  if (st != RAGG_SUCCESS) {
    char msg[RAGG_ERRMSG_LEN];
    memcpy(msg, ctx->err, sizeof(msg));
    ragg_set_error(ctx, st, "%s (%s): %s", t->fn, what, msg);
  }
  return st;
}

static ragg_status_t run_sharded(ragg_context_t *ctx, const ragg_config_t *cfg, const ragg_coll_t *c,
                                 ragg_transport_t *t) {
  int P = t->size, r = t->rank;
  size_t es = ragg_dtype_size(c->dtype);
  int allreduce = c->kind == RAGG_COLL_ALLREDUCE;
  size_t total = allreduce ? c->count : c->count * (size_t)P;
  size_t *cnt = (size_t *)malloc(sizeof(size_t) * 4 * (size_t)P);
  if (!cnt) FAILC(RAGG_ERR_OUT_OF_MEMORY, "%s: out of memory", t->fn);
  size_t *scount = cnt, *sdispl = cnt + P, *rcount = cnt + 2 * P, *rdispl = cnt + 3 * P;
  size_t my = shard_counts(c, P, r, cnt);

  int need_dist, materialize;
  int64_t nm;
  shard_layout_t lo;
  shard_plan(cfg, c->report, P, (int64_t)my, &need_dist, &materialize, &nm, &lo);
  int64_t L = P + (cfg->rule == RAGG_RULE_CENTERED_CLIP);
  size_t stage_bytes = ALIGN64((size_t)P * my * es), rows_bytes = ALIGN64(sizeof(void *) * (size_t)L);
  dist_ws_t w;
  ragg_status_t st = ws_get(ctx, t->fn, stage_bytes + rows_bytes + lo.total, &w);
  if (st != RAGG_SUCCESS) {
    free(cnt);
    return st;
  }
  char *stage = w.base, *ws = w.base + stage_bytes + rows_bytes;
  shard_t s;
  s.P = P;
  s.c = (int64_t)my;
  s.total = (int64_t)total;
  s.offset = sdispl[r];
  s.rows = (const void **)(w.base + stage_bytes);
  for (int p = 0; p < P; ++p) s.rows[p] = stage + (size_t)p * my * es;
  s.out = allreduce ? (char *)c->recvbuf + sdispl[r] * es : c->recvbuf;

  /* 1. all-to-all: sendbuf is read in full here, so recvbuf may alias it. */
  st = t->alltoallv(t, c->sendbuf, scount, sdispl, stage, rcount, rdispl, es);
  /* 2. the shard's aggregate */
  if (st == RAGG_SUCCESS)
    st = shard_aggregate(ctx, cfg, t, c->dtype, &s, c->report, ws, &lo, need_dist, materialize, nm);
  if (st == RAGG_SUCCESS && c->reduce == RAGG_REDUCE_SUM) scale_output(c->dtype, s.out, my, P);
  /* 3. all-gather of the aggregated shards */
  if (st == RAGG_SUCCESS && allreduce) st = t->allgatherv(t, c->recvbuf, scount, sdispl, es);
  free(w.own);
  free(cnt);
  return st;
}

static ragg_status_t run_replicated(ragg_context_t *ctx, const ragg_config_t *cfg, const ragg_coll_t *c,
                                    ragg_transport_t *t) {
  int P = t->size, r = t->rank;
  size_t es = ragg_dtype_size(c->dtype), count = c->count;
  size_t stage_bytes = ALIGN64((size_t)P * count * es);
  size_t agg_bytes = ragg_cpu_workspace_size(cfg, c->dtype, P, (int64_t)count);
  size_t *cnt = (size_t *)malloc(sizeof(size_t) * 2 * (size_t)P);
  if (!cnt) FAILC(RAGG_ERR_OUT_OF_MEMORY, "%s: out of memory", t->fn);
  for (int p = 0; p < P; ++p) {
    cnt[p] = count;
    cnt[P + p] = (size_t)p * count;
  }
  /* The staging area, then ragg_aggregate's workspace lent to it. */
  dist_ws_t w;
  ragg_status_t st = ws_get(ctx, t->fn, stage_bytes + agg_bytes, &w);
  if (st != RAGG_SUCCESS) {
    free(cnt);
    return st;
  }
  char *stage = w.base;
  memcpy(stage + (size_t)r * count * es, c->sendbuf, count * es);
  st = t->allgatherv(t, stage, cnt, cnt + P, es);
  if (st == RAGG_SUCCESS)
    st = lent_aggregate(ctx, cfg, t, c->dtype, stage, P, (int64_t)count, c->recvbuf, c->report,
                        stage + stage_bytes, agg_bytes, "replicated mode", NULL);
  if (st == RAGG_SUCCESS && c->reduce == RAGG_REDUCE_SUM) scale_output(c->dtype, c->recvbuf, count, P);
  free(w.own);
  free(cnt);
  return st;
}

/* ---- device engines (CUDA-backend context) ---------------------------------
 *
 * The same three steps with the CUDA backend for the local aggregation, every
 * step ordered on the transport's stream:
 *  - sharded mode without a report: rank r aggregates its shard (P contiguous
 *    rows of count/P values) and the all-gather assembles the vector, an
 *    all-reduce's traffic. Coordinate-wise rules and the mean need nothing
 *    else: each coordinate's result depends on that coordinate alone. Every
 *    call that reads distances (Gram-space rules, Bulyan's selection, norm
 *    clipping, ARC, NNM) has the backend compute its shard's raw Lraw x Lraw
 *    sums in double with its own kernel and add them over the ranks with the
 *    transport's same-bits all-reduce (ragg_aggregate_shard), so every rank
 *    forms the same D and N and the device solver gives it the same weights;
 *    the combination, Bulyan's coordinate step and the pre-step's mixing then
 *    run on the shard. A rank whose shard is empty (count < P) still adds its
 *    zeros, so every rank makes the same collective calls.
 *  - replicated mode, or a report (its counts and scores are over the whole
 *    vector): all-gather every buffer, aggregate all of it on every rank
 *    (P/2 times the traffic); every rank gets the same bits on a homogeneous
 *    job. A reduce-scatter keeps its shard of the full aggregate.
 * The choice depends only on the mode and whether a report is passed, so
 * every rank takes the same path.
 */
int ragg_dist_device_sharded(const ragg_coll_t *c) {
  return c->mode == RAGG_MODE_SHARDED && !c->report;
}

static ragg_status_t sum_over_ranks(void *user, double *raw, size_t count) {
  ragg_transport_t *t = (ragg_transport_t *)user;
  return t->allreduce_sum_f64(t, raw, count);
}

static ragg_status_t run_device_sharded(ragg_context_t *ctx, const ragg_config_t *cfg,
                                        const ragg_coll_t *c, ragg_transport_t *t) {
  int P = t->size, r = t->rank;
  size_t es = ragg_dtype_size(c->dtype);
  int allreduce = c->kind == RAGG_COLL_ALLREDUCE;
  size_t *cnt = (size_t *)malloc(sizeof(size_t) * 4 * (size_t)P);
  if (!cnt) FAILC(RAGG_ERR_OUT_OF_MEMORY, "%s: out of memory", t->fn);
  size_t *scount = cnt, *sdispl = cnt + P, *rcount = cnt + 2 * P, *rdispl = cnt + 3 * P;
  size_t my = shard_counts(c, P, r, cnt);
  int64_t raw = ragg_cuda_shard_raw_rows(cfg, P); /* what the backend will reduce */
  /* centered clipping's centre, cut to this shard like the inputs */
  ragg_config_t scfg = *cfg;
  if (scfg.cc_center) scfg.cc_center = (const char *)cfg->cc_center + sdispl[r] * es;
  ragg_raw_reducer_t rr = {sum_over_ranks, t};
  size_t stage_bytes = ALIGN256((size_t)P * my * es), agg_bytes = 0;
  size_t zero_bytes = my == 0 && raw > 0 ? ALIGN256(sizeof(double) * (size_t)(raw * raw)) : 0;
  ragg_status_t st = RAGG_SUCCESS;
  if (my > 0) st = ragg_workspace_size(ctx, &scfg, c->dtype, P, (int64_t)my, &agg_bytes);
  void *block = NULL;
  if (st == RAGG_SUCCESS) st = t->dev->alloc(t, stage_bytes + agg_bytes + zero_bytes, &block);
  if (st != RAGG_SUCCESS) {
    free(cnt);
    return st;
  }
  char *stage = (char *)block;
  void *out = allreduce ? (char *)c->recvbuf + sdispl[r] * es : c->recvbuf;
  /* 1. all-to-all (sendbuf is read in full before anything writes recvbuf) */
  st = t->alltoallv(t, c->sendbuf, scount, sdispl, stage, rcount, rdispl, es);
  /* 2. the shard's aggregate: P contiguous rows of my values, with the raw
   *    sums of every shard where the call reads distances */
  if (st == RAGG_SUCCESS && my > 0)
    st = lent_aggregate(ctx, &scfg, t, c->dtype, stage, P, (int64_t)my, out, NULL, stage + stage_bytes,
                        agg_bytes, "the shard's aggregate", raw > 0 ? &rr : NULL);
  if (st == RAGG_SUCCESS && my == 0 && raw > 0) {
    double *zeros = (double *)(stage + stage_bytes + agg_bytes);
    st = t->dev->zero(t, zeros, sizeof(double) * (size_t)(raw * raw));
    if (st == RAGG_SUCCESS) st = t->allreduce_sum_f64(t, zeros, (size_t)(raw * raw));
  }
  if (st == RAGG_SUCCESS && c->reduce == RAGG_REDUCE_SUM && P > 1 && my > 0)
    st = t->dev->scale(t, c->dtype, out, my, (double)P);
  /* 3. all-gather of the aggregated shards */
  if (st == RAGG_SUCCESS && allreduce) st = t->allgatherv(t, c->recvbuf, scount, sdispl, es);
  t->dev->release(t, block);
  free(cnt);
  return st;
}

static ragg_status_t run_device_replicated(ragg_context_t *ctx, const ragg_config_t *cfg,
                                           const ragg_coll_t *c, ragg_transport_t *t) {
  int P = t->size, r = t->rank;
  size_t es = ragg_dtype_size(c->dtype);
  int allreduce = c->kind == RAGG_COLL_ALLREDUCE;
  size_t total = allreduce ? c->count : c->count * (size_t)P; /* values in each rank's input */
  size_t stage_bytes = ALIGN256((size_t)P * total * es);
  size_t full_bytes = allreduce ? 0 : ALIGN256(total * es); /* the whole aggregate (reduce-scatter) */
  size_t agg_bytes = 0;
  ragg_status_t st = ragg_workspace_size(ctx, cfg, c->dtype, P, (int64_t)total, &agg_bytes);
  size_t *cnt = (size_t *)malloc(sizeof(size_t) * 2 * (size_t)P);
  if (!cnt) FAILC(RAGG_ERR_OUT_OF_MEMORY, "%s: out of memory", t->fn);
  for (int p = 0; p < P; ++p) {
    cnt[p] = total;
    cnt[P + p] = (size_t)p * total;
  }
  void *block = NULL;
  if (st == RAGG_SUCCESS) st = t->dev->alloc(t, stage_bytes + full_bytes + agg_bytes, &block);
  if (st != RAGG_SUCCESS) {
    free(cnt);
    return st;
  }
  char *stage = (char *)block, *full = stage + stage_bytes;
  void *out = allreduce ? c->recvbuf : (void *)full;
  size_t olen = allreduce ? total : c->count;
  void *res = allreduce ? c->recvbuf : (void *)(full + (size_t)r * c->count * es);
  st = t->dev->copy(t, stage + (size_t)r * total * es, c->sendbuf, total * es);
  if (st == RAGG_SUCCESS) st = t->allgatherv(t, stage, cnt, cnt + P, es);
  if (st == RAGG_SUCCESS)
    st = lent_aggregate(ctx, cfg, t, c->dtype, stage, P, (int64_t)total, out, c->report,
                          full + full_bytes, agg_bytes, "replicated algorithm", NULL);
  if (st == RAGG_SUCCESS && c->reduce == RAGG_REDUCE_SUM && P > 1)
    st = t->dev->scale(t, c->dtype, res, olen, (double)P);
  if (st == RAGG_SUCCESS && !allreduce) st = t->dev->copy(t, c->recvbuf, res, olen * es);
  t->dev->release(t, block);
  free(cnt);
  return st;
}

ragg_status_t ragg_dist_run(ragg_context_t *ctx, const ragg_config_t *cfg, const ragg_coll_t *c,
                            ragg_transport_t *t) {
  if (ctx) ctx->err[0] = '\0';
  ragg_status_t st = check_args(ctx, cfg, c, t);
  if (c->check) st = agree(ctx, cfg, c, t, st);
  if (st != RAGG_SUCCESS) return st;
  if (c->count == 0) return RAGG_SUCCESS;
  if (t->dev)
    return ragg_dist_device_sharded(c) ? run_device_sharded(ctx, cfg, c, t)
                                            : run_device_replicated(ctx, cfg, c, t);
  return c->mode == RAGG_MODE_REPLICATED ? run_replicated(ctx, cfg, c, t) : run_sharded(ctx, cfg, c, t);
}
