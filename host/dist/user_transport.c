/*
 * The caller's transport (include/robustagg_transport.h) as an engine of the
 * transport interface: element counts become byte counts for the callbacks,
 * and the same-bits sum of the Gram partial sums is an all-gather added in
 * rank order here, so a transport needs no reduction of its own.
 */
#include <stdlib.h>
#include <string.h>

#include "robustagg_transport.h"
#include "transport.h"

typedef struct user_engine {
  const ragg_transport_ops_t *ops;
  size_t *bytes; /* 4 P byte counts and displacements for the callbacks */
} user_engine_t;

static ragg_status_t callback_failed(ragg_transport_t *t, const char *what, int rc) {
  return ragg_set_error(t->ctx, RAGG_ERR_TRANSPORT, "%s: the transport's %s callback returned %d",
                        t->fn, what, rc);
}

static const size_t *in_bytes(const size_t *elems, size_t esize, int P, size_t *dst) {
  for (int p = 0; p < P; ++p) dst[p] = elems[p] * esize;
  return dst;
}

static ragg_status_t user_alltoallv(ragg_transport_t *t, const void *sbuf, const size_t *scount,
                                    const size_t *sdispl, void *rbuf, const size_t *rcount,
                                    const size_t *rdispl, size_t esize) {
  user_engine_t *e = (user_engine_t *)t->engine;
  int P = t->size;
  size_t *b = e->bytes;
  int rc = e->ops->alltoallv(e->ops->user, sbuf, in_bytes(scount, esize, P, b),
                             in_bytes(sdispl, esize, P, b + P), rbuf,
                             in_bytes(rcount, esize, P, b + 2 * P), in_bytes(rdispl, esize, P, b + 3 * P));
  return rc == 0 ? RAGG_SUCCESS : callback_failed(t, "alltoallv", rc);
}

static ragg_status_t user_allgatherv(ragg_transport_t *t, void *buf, const size_t *count,
                                     const size_t *displ, size_t esize) {
  user_engine_t *e = (user_engine_t *)t->engine;
  int P = t->size;
  size_t *b = e->bytes;
  int rc = e->ops->allgatherv(e->ops->user, buf, in_bytes(count, esize, P, b),
                              in_bytes(displ, esize, P, b + P));
  return rc == 0 ? RAGG_SUCCESS : callback_failed(t, "allgatherv", rc);
}

/* Every rank's n partial sums gathered, then added in rank order: the same
 * additions in the same order on every rank, hence the same bits. */
static ragg_status_t user_allreduce_sum_f64(ragg_transport_t *t, double *buf, size_t n) {
  int P = t->size, r = t->rank;
  if (P == 1 || n == 0) return RAGG_SUCCESS;
  if (n > SIZE_MAX / sizeof(double) / (size_t)P)
    return ragg_set_error(t->ctx, RAGG_ERR_INTERNAL, "%s: %zu partial sums overflow", t->fn, n);
  double *all = (double *)malloc(sizeof(double) * (size_t)P * n);
  size_t *cnt = (size_t *)malloc(sizeof(size_t) * 2 * (size_t)P);
  ragg_status_t st = RAGG_SUCCESS;
  if (!all || !cnt) {
    st = ragg_set_error(t->ctx, RAGG_ERR_OUT_OF_MEMORY, "%s: out of memory", t->fn);
  } else {
    for (int p = 0; p < P; ++p) {
      cnt[p] = n;
      cnt[P + p] = (size_t)p * n;
    }
    memcpy(all + (size_t)r * n, buf, sizeof(double) * n);
    st = user_allgatherv(t, all, cnt, cnt + P, sizeof(double));
    if (st == RAGG_SUCCESS) ragg_sum_in_rank_order(all, P, n, buf);
  }
  free(cnt);
  free(all);
  return st;
}

static ragg_status_t run_user(ragg_context_t *ctx, const ragg_config_t *cfg, ragg_coll_t *c,
                              const ragg_transport_ops_t *ops, const char *fn) {
  if (!ctx) return RAGG_ERR_INVALID_ARGUMENT;
  ctx->err[0] = '\0';
  if (!ops) return ragg_set_error(ctx, RAGG_ERR_INVALID_ARGUMENT, "%s: ops is NULL", fn);
  if (!ops->alltoallv || !ops->allgatherv)
    return ragg_set_error(ctx, RAGG_ERR_INVALID_ARGUMENT, "%s: ops->%s is NULL", fn,
                          ops->alltoallv ? "allgatherv" : "alltoallv");
  if (ops->size < 1)
    return ragg_set_error(ctx, RAGG_ERR_INVALID_ARGUMENT, "%s: ops->size = %d must be at least 1",
                          fn, ops->size);
  if (ops->rank < 0 || ops->rank >= ops->size)
    return ragg_set_error(ctx, RAGG_ERR_INVALID_ARGUMENT, "%s: ops->rank = %d is outside [0, %d)",
                          fn, ops->rank, ops->size);
  user_engine_t e = {ops, (size_t *)malloc(sizeof(size_t) * 4 * (size_t)ops->size)};
  if (!e.bytes) return ragg_set_error(ctx, RAGG_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
  ragg_transport_t t;
  memset(&t, 0, sizeof(t));
  t.rank = ops->rank;
  t.size = ops->size;
  t.ctx = ctx;
  t.fn = fn;
  t.engine = &e;
  t.alltoallv = user_alltoallv;
  t.allgatherv = user_allgatherv;
  t.allreduce_sum_f64 = user_allreduce_sum_f64;
  c->check = ragg_dist_check_env();
  ragg_status_t st = ragg_dist_run(ctx, cfg, c, &t);
  free(e.bytes);
  return st;
}

ragg_status_t ragg_allreduce_transport(ragg_context_t *ctx, const ragg_config_t *cfg,
                                       const void *sendbuf, void *recvbuf, size_t count,
                                       ragg_dtype_t dtype, ragg_reduce_t reduce, ragg_mode_t mode,
                                       const ragg_transport_ops_t *ops, ragg_report_t *report) {
  ragg_coll_t c = {RAGG_COLL_ALLREDUCE, dtype, sendbuf, recvbuf, count, reduce, mode, report, 0};
  return run_user(ctx, cfg, &c, ops, "ragg_allreduce_transport");
}

ragg_status_t ragg_reduce_scatter_transport(ragg_context_t *ctx, const ragg_config_t *cfg,
                                            const void *sendbuf, void *recvbuf, size_t recvcount,
                                            ragg_dtype_t dtype, ragg_reduce_t reduce,
                                            const ragg_transport_ops_t *ops, ragg_report_t *report) {
  ragg_coll_t c = {RAGG_COLL_REDUCE_SCATTER, dtype, sendbuf, recvbuf, recvcount, reduce,
                   RAGG_MODE_SHARDED, report, 0};
  return run_user(ctx, cfg, &c, ops, "ragg_reduce_scatter_transport");
}
