/*
 * The MPI engine of the transport interface, and the public MPI entry points.
 *
 * MPI counts and displacements are int (Open MPI 4.1 has no large-count
 * calls): a transfer whose counts and displacements all fit goes through the
 * collective (MPI_Alltoallv, MPI_Allgatherv); otherwise it goes through
 * nonblocking point-to-point messages of at most max_msg elements each (the
 * same bytes on the wire, in several messages).
 *
 * The Gram partial sums must come out with the same bits on every rank. An
 * MPI_Allreduce with MPI_SUM need not give that (recursive doubling adds in a
 * different order on each rank for P > 2), so small sums are all-gathered and
 * added in rank order on every rank, and large ones are reduced to rank 0 and
 * broadcast.
 *
 * Testing and tuning knobs, read at each call (both must be set alike on every
 * rank): RAGG_MPI_MAX_MSG (elements per message, default and maximum INT_MAX)
 * and RAGG_MPI_GATHER_SUM_BYTES (largest P * n * 8 summed by all-gather,
 * default 4 MiB).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "robustagg_mpi.h"
#include "transport.h"

enum { RAGG_MPI_TAG = 0x7261 };

typedef struct mpi_engine {
  MPI_Comm comm;
  size_t max_msg;
  size_t gather_sum_bytes;
} mpi_engine_t;

static size_t env_size(const char *name, size_t dflt, size_t lo, size_t hi) {
  const char *e = getenv(name);
  if (!e || !*e) return dflt;
  char *end = NULL;
  unsigned long long v = strtoull(e, &end, 10);
  if (*end || v < lo) return dflt;
  return v > hi ? hi : (size_t)v;
}

static ragg_status_t mpi_fail(ragg_transport_t *t, const char *call, int rc) {
  char msg[MPI_MAX_ERROR_STRING + 1] = "";
  int len = 0;
  if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof(msg), "error code %d", rc);
  msg[len < MPI_MAX_ERROR_STRING ? len : MPI_MAX_ERROR_STRING] = '\0';
  return ragg_set_error(t->ctx, RAGG_ERR_MPI, "%s: %s failed: %s", t->fn, call, msg);
}

/* Moves raw bits: NaN payloads and 16-bit values pass untouched. */
static MPI_Datatype bits_type(size_t esize) {
  switch (esize) {
    case 2: return MPI_UINT16_T;
    case 4: return MPI_UINT32_T;
    case 8: return MPI_UINT64_T;
    default: return MPI_BYTE;
  }
}

static int fits(const size_t *a, int P, size_t lim) {
  for (int p = 0; p < P; ++p)
    if (a[p] > lim) return 0;
  return 1;
}

/* Point-to-point exchange: to every peer p, send[p] elements at sbuf +
 * sdispl[p] (sbuf NULL: nothing to send), and receive rcount[p] at rbuf +
 * rdispl[p]; messages of at most max_msg elements. The own block is copied. */
static ragg_status_t exchange_p2p(ragg_transport_t *t, const void *sbuf, const size_t *scount,
                                  const size_t *sdispl, void *rbuf, const size_t *rcount,
                                  const size_t *rdispl, size_t esize) {
  mpi_engine_t *e = (mpi_engine_t *)t->engine;
  int P = t->size, r = t->rank;
  size_t nreq = 0;
  for (int p = 0; p < P; ++p) {
    if (p == r) continue;
    nreq += (scount[p] + e->max_msg - 1) / e->max_msg + (rcount[p] + e->max_msg - 1) / e->max_msg;
  }
  MPI_Request *req = (MPI_Request *)malloc(sizeof(MPI_Request) * (nreq ? nreq : 1));
  if (!req) return ragg_set_error(t->ctx, RAGG_ERR_OUT_OF_MEMORY, "%s: out of memory", t->fn);
  MPI_Datatype ty = bits_type(esize);
  size_t unit = ty == MPI_BYTE ? 1 : esize, k = 0;
  int rc = MPI_SUCCESS;
  for (int p = 0; p < P && rc == MPI_SUCCESS; ++p) {
    if (p == r) continue;
    char *dst = (char *)rbuf + rdispl[p] * esize;
    for (size_t o = 0; o < rcount[p] && rc == MPI_SUCCESS; o += e->max_msg) {
      size_t len = rcount[p] - o < e->max_msg ? rcount[p] - o : e->max_msg;
      rc = MPI_Irecv(dst + o * esize, (int)(len * esize / unit), ty, p, RAGG_MPI_TAG, e->comm, &req[k++]);
    }
  }
  for (int q = 1; q < P && rc == MPI_SUCCESS; ++q) {
    int p = (r + q) % P; /* staggered, so no single rank receives from everyone first */
    const char *src = (const char *)sbuf + sdispl[p] * esize;
    for (size_t o = 0; o < scount[p] && rc == MPI_SUCCESS; o += e->max_msg) {
      size_t len = scount[p] - o < e->max_msg ? scount[p] - o : e->max_msg;
      rc = MPI_Isend(src + o * esize, (int)(len * esize / unit), ty, p, RAGG_MPI_TAG, e->comm, &req[k++]);
    }
  }
  if (sbuf && rcount[r] && (const char *)sbuf + sdispl[r] * esize != (char *)rbuf + rdispl[r] * esize)
    memcpy((char *)rbuf + rdispl[r] * esize, (const char *)sbuf + sdispl[r] * esize, rcount[r] * esize);
  int rc2 = MPI_Waitall((int)k, req, MPI_STATUSES_IGNORE);
  free(req);
  if (rc != MPI_SUCCESS) return mpi_fail(t, "MPI_Isend/MPI_Irecv", rc);
  if (rc2 != MPI_SUCCESS) return mpi_fail(t, "MPI_Waitall", rc2);
  return RAGG_SUCCESS;
}

static ragg_status_t mpi_alltoallv(ragg_transport_t *t, const void *sbuf, const size_t *scount,
                                   const size_t *sdispl, void *rbuf, const size_t *rcount,
                                   const size_t *rdispl, size_t esize) {
  mpi_engine_t *e = (mpi_engine_t *)t->engine;
  int P = t->size;
  if (!(fits(scount, P, e->max_msg) && fits(sdispl, P, INT_MAX) && fits(rcount, P, e->max_msg) &&
        fits(rdispl, P, INT_MAX)))
    return exchange_p2p(t, sbuf, scount, sdispl, rbuf, rcount, rdispl, esize);
  int *a = (int *)malloc(sizeof(int) * 4 * (size_t)P);
  if (!a) return ragg_set_error(t->ctx, RAGG_ERR_OUT_OF_MEMORY, "%s: out of memory", t->fn);
  for (int p = 0; p < P; ++p) {
    a[p] = (int)scount[p];
    a[P + p] = (int)sdispl[p];
    a[2 * P + p] = (int)rcount[p];
    a[3 * P + p] = (int)rdispl[p];
  }
  MPI_Datatype ty = bits_type(esize);
  int rc = MPI_Alltoallv(sbuf, a, a + P, ty, rbuf, a + 2 * P, a + 3 * P, ty, e->comm);
  free(a);
  return rc == MPI_SUCCESS ? RAGG_SUCCESS : mpi_fail(t, "MPI_Alltoallv", rc);
}

static ragg_status_t mpi_allgatherv(ragg_transport_t *t, void *buf, const size_t *count,
                                    const size_t *displ, size_t esize) {
  mpi_engine_t *e = (mpi_engine_t *)t->engine;
  int P = t->size, r = t->rank;
  if (!(fits(count, P, e->max_msg) && fits(displ, P, INT_MAX))) {
    /* every peer gets this rank's block; every peer's block arrives */
    size_t *s = (size_t *)malloc(sizeof(size_t) * 2 * (size_t)P);
    if (!s) return ragg_set_error(t->ctx, RAGG_ERR_OUT_OF_MEMORY, "%s: out of memory", t->fn);
    for (int p = 0; p < P; ++p) {
      s[p] = count[r];
      s[P + p] = displ[r];
    }
    ragg_status_t st = exchange_p2p(t, buf, s, s + P, buf, count, displ, esize);
    free(s);
    return st;
  }
  int *a = (int *)malloc(sizeof(int) * 2 * (size_t)P);
  if (!a) return ragg_set_error(t->ctx, RAGG_ERR_OUT_OF_MEMORY, "%s: out of memory", t->fn);
  for (int p = 0; p < P; ++p) {
    a[p] = (int)count[p];
    a[P + p] = (int)displ[p];
  }
  int rc = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, a, a + P, bits_type(esize), e->comm);
  free(a);
  return rc == MPI_SUCCESS ? RAGG_SUCCESS : mpi_fail(t, "MPI_Allgatherv", rc);
}

static ragg_status_t mpi_allreduce_sum_f64(ragg_transport_t *t, double *buf, size_t n) {
  mpi_engine_t *e = (mpi_engine_t *)t->engine;
  int P = t->size;
  if (P == 1 || n == 0) return RAGG_SUCCESS;
  if (n > INT_MAX)
    return ragg_set_error(t->ctx, RAGG_ERR_INTERNAL, "%s: %zu partial sums exceed one MPI message",
                          t->fn, n);
  int rc;
  if ((size_t)P * n * sizeof(double) <= e->gather_sum_bytes) {
    double *all = (double *)malloc(sizeof(double) * (size_t)P * n);
    if (!all) return ragg_set_error(t->ctx, RAGG_ERR_OUT_OF_MEMORY, "%s: out of memory", t->fn);
    rc = MPI_Allgather(buf, (int)n, MPI_DOUBLE, all, (int)n, MPI_DOUBLE, e->comm);
    if (rc == MPI_SUCCESS) ragg_sum_in_rank_order(all, P, n, buf);
    free(all);
    return rc == MPI_SUCCESS ? RAGG_SUCCESS : mpi_fail(t, "MPI_Allgather", rc);
  }
  if (t->rank == 0)
    rc = MPI_Reduce(MPI_IN_PLACE, buf, (int)n, MPI_DOUBLE, MPI_SUM, 0, e->comm);
  else
    rc = MPI_Reduce(buf, NULL, (int)n, MPI_DOUBLE, MPI_SUM, 0, e->comm);
  if (rc != MPI_SUCCESS) return mpi_fail(t, "MPI_Reduce", rc);
  rc = MPI_Bcast(buf, (int)n, MPI_DOUBLE, 0, e->comm);
  return rc == MPI_SUCCESS ? RAGG_SUCCESS : mpi_fail(t, "MPI_Bcast", rc);
}

/* ---- public entry points ---------------------------------------------------- */

static ragg_status_t run_mpi(ragg_context_t *ctx, const ragg_config_t *cfg, ragg_coll_t *c,
                             MPI_Comm comm, const char *fn) {
  if (ctx) ctx->err[0] = '\0';
  int init = 0, fin = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  if (!init || fin)
    return ragg_set_error(ctx, RAGG_ERR_MPI, "%s: MPI is not initialized (or already finalized)", fn);
  if (comm == MPI_COMM_NULL)
    return ragg_set_error(ctx, RAGG_ERR_INVALID_ARGUMENT, "%s: comm is MPI_COMM_NULL", fn);
  MPI_Errhandler old;
  int rc = MPI_Comm_get_errhandler(comm, &old);
  if (rc != MPI_SUCCESS) return ragg_set_error(ctx, RAGG_ERR_MPI, "%s: comm is not a valid communicator", fn);
  MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
  mpi_engine_t e = {comm, env_size("RAGG_MPI_MAX_MSG", INT_MAX, 1, INT_MAX),
                    env_size("RAGG_MPI_GATHER_SUM_BYTES", (size_t)4 << 20, 0, SIZE_MAX)};
  ragg_transport_t t;
  memset(&t, 0, sizeof(t));
  t.ctx = ctx;
  t.fn = fn;
  t.engine = &e;
  t.alltoallv = mpi_alltoallv;
  t.allgatherv = mpi_allgatherv;
  t.allreduce_sum_f64 = mpi_allreduce_sum_f64;
  ragg_status_t st;
  if ((rc = MPI_Comm_rank(comm, &t.rank)) != MPI_SUCCESS || (rc = MPI_Comm_size(comm, &t.size)) != MPI_SUCCESS)
    st = mpi_fail(&t, "MPI_Comm_rank/MPI_Comm_size", rc);
  else {
    c->check = ragg_dist_check_env();
    st = ragg_dist_run(ctx, cfg, c, &t);
  }
  MPI_Comm_set_errhandler(comm, old);
  MPI_Errhandler_free(&old);
  return st;
}

ragg_status_t ragg_allreduce_mpi_report(ragg_context_t *ctx, const ragg_config_t *cfg,
                                        const void *sendbuf, void *recvbuf, size_t count,
                                        ragg_dtype_t dtype, ragg_reduce_t reduce, ragg_mode_t mode,
                                        MPI_Comm comm, ragg_report_t *report) {
  ragg_coll_t c = {RAGG_COLL_ALLREDUCE, dtype, sendbuf, recvbuf, count, reduce, mode, report, 0};
  return run_mpi(ctx, cfg, &c, comm, report ? "ragg_allreduce_mpi_report" : "ragg_allreduce_mpi");
}

ragg_status_t ragg_allreduce_mpi(ragg_context_t *ctx, const ragg_config_t *cfg, const void *sendbuf,
                                 void *recvbuf, size_t count, ragg_dtype_t dtype, ragg_reduce_t reduce,
                                 ragg_mode_t mode, MPI_Comm comm) {
  return ragg_allreduce_mpi_report(ctx, cfg, sendbuf, recvbuf, count, dtype, reduce, mode, comm, NULL);
}

ragg_status_t ragg_reduce_scatter_mpi_report(ragg_context_t *ctx, const ragg_config_t *cfg,
                                             const void *sendbuf, void *recvbuf, size_t recvcount,
                                             ragg_dtype_t dtype, ragg_reduce_t reduce, MPI_Comm comm,
                                             ragg_report_t *report) {
  ragg_coll_t c = {RAGG_COLL_REDUCE_SCATTER, dtype, sendbuf, recvbuf, recvcount, reduce,
                   RAGG_MODE_SHARDED, report, 0};
  return run_mpi(ctx, cfg, &c, comm,
                 report ? "ragg_reduce_scatter_mpi_report" : "ragg_reduce_scatter_mpi");
}

ragg_status_t ragg_reduce_scatter_mpi(ragg_context_t *ctx, const ragg_config_t *cfg, const void *sendbuf,
                                      void *recvbuf, size_t recvcount, ragg_dtype_t dtype,
                                      ragg_reduce_t reduce, MPI_Comm comm) {
  return ragg_reduce_scatter_mpi_report(ctx, cfg, sendbuf, recvbuf, recvcount, dtype, reduce, comm,
                                        NULL);
}
