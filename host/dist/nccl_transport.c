/*
 * The NCCL engine of the transport interface, and the public NCCL entry
 * points (robustagg_nccl.h). Buffers are device memory; every step is ordered
 * on the call's stream.
 *
 * NCCL is reached only through the table of pnccl* entry points that the
 * drop-in uses (nccl_shim.h, resolved at run time); this library never links
 * libnccl. Data moves as raw bytes (ncclUint8), so NaN payloads and 16-bit
 * values pass untouched and counts are size_t throughout.
 *  - all-to-all: pncclAlltoAll where every peer's count is the same and the
 *    NCCL in use has it; otherwise one group of pncclSend/pncclRecv with
 *    per-peer counts (the own block is a device copy).
 *  - all-gather: pncclAllGather in place where the blocks are equal;
 *    otherwise one group of pncclSend/pncclRecv.
 *  - the double all-reduce (Gram partial sums, same bits on every rank):
 *    pncclAllGather of the P partial arrays into device scratch, then one
 *    kernel adds them in rank order on the device. No host copy, no wait; an
 *    ncclAllReduce would not do, since its summation order may differ
 *    between ranks.
 *  - the RAGG_CHECK signature (host memory): copied to the device, gathered,
 *    copied back; this step waits for the stream (RAGG_CHECK only).
 *
 * Testing knob, read at each call and set alike on every rank:
 * RAGG_NCCL_P2P=1 sends the equal-count cases through the send/recv groups too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist_device.h"
#include "nccl_shim.h"
#include "robustagg_nccl.h"
#include "transport.h"

typedef struct nccl_engine {
  const ragg_pnccl_t *nccl;
  void *comm;
  int p2p_only;
} nccl_engine_t;

static ragg_status_t nccl_fail(ragg_transport_t *t, const char *call, int rc) {
  nccl_engine_t *e = (nccl_engine_t *)t->engine;
  const char *msg = e->nccl->GetErrorString(rc);
  const char *last = e->nccl->GetLastError ? e->nccl->GetLastError(e->comm) : NULL;
  return ragg_set_error(t->ctx, RAGG_ERR_NCCL, "%s: %s failed: %s%s%s", t->fn, call,
                        msg ? msg : "unknown NCCL error", last && *last ? ": " : "",
                        last && *last ? last : "");
}

static int regular(const size_t *count, const size_t *displ, int P, size_t *n) {
  *n = count[0];
  for (int p = 0; p < P; ++p)
    if (count[p] != *n || displ[p] != (size_t)p * *n) return 0;
  return 1;
}

static ragg_status_t nccl_alltoallv(ragg_transport_t *t, const void *sbuf, const size_t *scount,
                                    const size_t *sdispl, void *rbuf, const size_t *rcount,
                                    const size_t *rdispl, size_t esize) {
  nccl_engine_t *e = (nccl_engine_t *)t->engine;
  int P = t->size, r = t->rank;
  size_t n, m;
  if (!e->p2p_only && e->nccl->AlltoAll && regular(scount, sdispl, P, &n) &&
      regular(rcount, rdispl, P, &m) && n == m) {
    if (n == 0) return RAGG_SUCCESS;
    int rc = e->nccl->AlltoAll(sbuf, rbuf, n * esize, SHIM_NCCL_UINT8, e->comm, t->stream);
    return rc == SHIM_NCCL_SUCCESS ? RAGG_SUCCESS : nccl_fail(t, "ncclAlltoAll", rc);
  }
  ragg_status_t st = t->dev->copy(t, (char *)rbuf + rdispl[r] * esize,
                                  (const char *)sbuf + sdispl[r] * esize, rcount[r] * esize);
  if (st != RAGG_SUCCESS || P == 1) return st;
  int rc = e->nccl->GroupStart();
  if (rc != SHIM_NCCL_SUCCESS) return nccl_fail(t, "ncclGroupStart", rc);
  const char *call = "ncclSend";
  for (int q = 1; q < P && rc == SHIM_NCCL_SUCCESS; ++q) {
    int p = (r + q) % P;
    if (scount[p]) {
      rc = e->nccl->Send((const char *)sbuf + sdispl[p] * esize, scount[p] * esize, SHIM_NCCL_UINT8, p,
                         e->comm, t->stream);
      call = "ncclSend";
    }
    int s = (r - q + P) % P;
    if (rc == SHIM_NCCL_SUCCESS && rcount[s]) {
      rc = e->nccl->Recv((char *)rbuf + rdispl[s] * esize, rcount[s] * esize, SHIM_NCCL_UINT8, s,
                         e->comm, t->stream);
      call = "ncclRecv";
    }
  }
  int rc2 = e->nccl->GroupEnd();
  if (rc != SHIM_NCCL_SUCCESS) return nccl_fail(t, call, rc);
  return rc2 == SHIM_NCCL_SUCCESS ? RAGG_SUCCESS : nccl_fail(t, "ncclGroupEnd", rc2);
}

static ragg_status_t nccl_allgatherv(ragg_transport_t *t, void *buf, const size_t *count,
                                     const size_t *displ, size_t esize) {
  nccl_engine_t *e = (nccl_engine_t *)t->engine;
  int P = t->size, r = t->rank;
  size_t n;
  if (P == 1) return RAGG_SUCCESS;
  if (!e->p2p_only && regular(count, displ, P, &n)) {
    if (n == 0) return RAGG_SUCCESS;
    int rc = e->nccl->AllGather((char *)buf + (size_t)r * n * esize, buf, n * esize, SHIM_NCCL_UINT8,
                                e->comm, t->stream);
    return rc == SHIM_NCCL_SUCCESS ? RAGG_SUCCESS : nccl_fail(t, "ncclAllGather", rc);
  }
  int rc = e->nccl->GroupStart();
  if (rc != SHIM_NCCL_SUCCESS) return nccl_fail(t, "ncclGroupStart", rc);
  const char *call = "ncclSend";
  for (int q = 1; q < P && rc == SHIM_NCCL_SUCCESS; ++q) {
    int p = (r + q) % P;
    if (count[r]) {
      rc = e->nccl->Send((const char *)buf + displ[r] * esize, count[r] * esize, SHIM_NCCL_UINT8, p,
                         e->comm, t->stream);
      call = "ncclSend";
    }
    int s = (r - q + P) % P;
    if (rc == SHIM_NCCL_SUCCESS && count[s]) {
      rc = e->nccl->Recv((char *)buf + displ[s] * esize, count[s] * esize, SHIM_NCCL_UINT8, s, e->comm,
                         t->stream);
      call = "ncclRecv";
    }
  }
  int rc2 = e->nccl->GroupEnd();
  if (rc != SHIM_NCCL_SUCCESS) return nccl_fail(t, call, rc);
  return rc2 == SHIM_NCCL_SUCCESS ? RAGG_SUCCESS : nccl_fail(t, "ncclGroupEnd", rc2);
}

static ragg_status_t nccl_allreduce_sum_f64(ragg_transport_t *t, double *buf, size_t n) {
  nccl_engine_t *e = (nccl_engine_t *)t->engine;
  int P = t->size;
  if (P == 1 || n == 0) return RAGG_SUCCESS;
  void *all = NULL;
  ragg_status_t st = t->dev->alloc(t, sizeof(double) * (size_t)P * n, &all);
  if (st != RAGG_SUCCESS) return st;
  int rc = e->nccl->AllGather(buf, all, n * sizeof(double), SHIM_NCCL_UINT8, e->comm, t->stream);
  if (rc != SHIM_NCCL_SUCCESS)
    st = nccl_fail(t, "ncclAllGather", rc);
  else
    st = ragg_dist_cuda_sum_ranks(t, (const double *)all, P, n, buf);
  t->dev->release(t, all);
  return st;
}

static ragg_status_t cuda_fail(ragg_transport_t *t, const char *what, cudaError_t e) {
  return ragg_set_error(t->ctx, RAGG_ERR_CUDA, "%s: %s: %s", t->fn, what, cudaGetErrorString(e));
}

/* Host buffers (the RAGG_CHECK signature): through the device, then waits. */
static ragg_status_t nccl_allgatherv_host(ragg_transport_t *t, void *buf, const size_t *count,
                                          const size_t *displ, size_t esize) {
  size_t end = 0;
  for (int p = 0; p < t->size; ++p)
    if (displ[p] + count[p] > end) end = displ[p] + count[p];
  void *dbuf = NULL;
  ragg_status_t st = t->dev->alloc(t, end * esize, &dbuf);
  if (st != RAGG_SUCCESS) return st;
  cudaStream_t s = (cudaStream_t)t->stream;
  cudaError_t e = cudaMemcpyAsync(dbuf, buf, end * esize, cudaMemcpyHostToDevice, s);
  if (e != cudaSuccess) st = cuda_fail(t, "cudaMemcpyAsync (RAGG_CHECK signature)", e);
  if (st == RAGG_SUCCESS) st = nccl_allgatherv(t, dbuf, count, displ, esize);
  if (st == RAGG_SUCCESS && (e = cudaMemcpyAsync(buf, dbuf, end * esize, cudaMemcpyDeviceToHost, s)) != cudaSuccess)
    st = cuda_fail(t, "cudaMemcpyAsync (RAGG_CHECK signature)", e);
  t->dev->release(t, dbuf);
  if (st == RAGG_SUCCESS && (e = cudaStreamSynchronize(s)) != cudaSuccess)
    st = cuda_fail(t, "cudaStreamSynchronize (RAGG_CHECK)", e);
  return st;
}

/* ---- public entry points ---------------------------------------------------- */

static int dtype_of(ncclDataType_t type, ragg_dtype_t *dt) {
  switch (type) {
    case ncclFloat32: *dt = RAGG_F32; return 1;
    case ncclFloat16: *dt = RAGG_F16; return 1;
    case ncclBfloat16: *dt = RAGG_BF16; return 1;
    default: return 0;
  }
}

static ragg_status_t run_nccl(ragg_context_t *ctx, const ragg_config_t *cfg, ragg_coll_t *c,
                              ncclDataType_t type, ncclComm_t comm, cudaStream_t stream, const char *fn) {
  if (!ctx) return RAGG_ERR_INVALID_ARGUMENT;
  ctx->err[0] = '\0';
  if (ctx->backend != RAGG_BACKEND_CUDA)
    return ragg_set_error(ctx, RAGG_ERR_INVALID_ARGUMENT,
                          "%s: ctx must be a CUDA-backend context (device buffers)", fn);
  if (!dtype_of(type, &c->dtype))
    return ragg_set_error(ctx, RAGG_ERR_INVALID_ARGUMENT,
                          "%s: type = %d is not ncclFloat32, ncclFloat16 or ncclBfloat16", fn, (int)type);
  if (!comm) return ragg_set_error(ctx, RAGG_ERR_INVALID_ARGUMENT, "%s: comm is NULL", fn);
  const char *why = "";
  const ragg_pnccl_t *nccl = ragg_pnccl_get(&why);
  if (!nccl) return ragg_set_error(ctx, RAGG_ERR_NCCL, "%s: %s", fn, why);
  const char *e_env = getenv("RAGG_NCCL_P2P");
  nccl_engine_t e = {nccl, (void *)comm, e_env && strcmp(e_env, "1") == 0};
  ragg_transport_t t;
  memset(&t, 0, sizeof(t));
  t.ctx = ctx;
  t.fn = fn;
  t.engine = &e;
  t.alltoallv = nccl_alltoallv;
  t.allgatherv = nccl_allgatherv;
  t.allreduce_sum_f64 = nccl_allreduce_sum_f64;
  t.dev = &ragg_dist_cuda_ops;
  t.stream = (void *)stream;
  t.allgatherv_host = nccl_allgatherv_host;
  int dev = -1, rc;
  if ((rc = nccl->CommUserRank(comm, &t.rank)) != SHIM_NCCL_SUCCESS ||
      (rc = nccl->CommCount(comm, &t.size)) != SHIM_NCCL_SUCCESS ||
      (rc = nccl->CommCuDevice(comm, &dev)) != SHIM_NCCL_SUCCESS)
    return nccl_fail(&t, "ncclCommUserRank/ncclCommCount/ncclCommCuDevice", rc);
  if (dev != ctx->device)
    return ragg_set_error(ctx, RAGG_ERR_INVALID_ARGUMENT,
                          "%s: comm is on CUDA device %d, ctx on device %d", fn, dev, ctx->device);
  int prev_dev = -1;
  if (cudaGetDevice(&prev_dev) != cudaSuccess) prev_dev = -1;
  if (prev_dev != dev) cudaSetDevice(dev);
  void *prev_stream = ctx->stream;
  ragg_status_t st = ragg_context_set_stream(ctx, (void *)stream);
  if (st == RAGG_SUCCESS) {
    c->check = ragg_dist_check_env();
    st = ragg_dist_run(ctx, cfg, c, &t);
    char msg[RAGG_ERRMSG_LEN];
    memcpy(msg, ctx->err, sizeof(msg));
    ragg_status_t st2 = ragg_context_set_stream(ctx, prev_stream);
    if (st != RAGG_SUCCESS || st2 == RAGG_SUCCESS)
      memcpy(ctx->err, msg, sizeof(msg));
    if (st == RAGG_SUCCESS) st = st2;
  }
  if (prev_dev >= 0 && prev_dev != dev) cudaSetDevice(prev_dev);
  return st;
}

ragg_status_t ragg_allreduce_nccl_report(ragg_context_t *ctx, const ragg_config_t *cfg,
                                         const void *sendbuf, void *recvbuf, size_t count,
                                         ncclDataType_t type, ragg_reduce_t reduce, ragg_mode_t mode,
                                         ncclComm_t comm, cudaStream_t stream, ragg_report_t *report) {
  ragg_coll_t c = {RAGG_COLL_ALLREDUCE, RAGG_F32, sendbuf, recvbuf, count, reduce, mode, report, 0};
  return run_nccl(ctx, cfg, &c, type, comm, stream,
                  report ? "ragg_allreduce_nccl_report" : "ragg_allreduce_nccl");
}

ragg_status_t ragg_allreduce_nccl(ragg_context_t *ctx, const ragg_config_t *cfg, const void *sendbuf,
                                  void *recvbuf, size_t count, ncclDataType_t type, ragg_reduce_t reduce,
                                  ragg_mode_t mode, ncclComm_t comm, cudaStream_t stream) {
  return ragg_allreduce_nccl_report(ctx, cfg, sendbuf, recvbuf, count, type, reduce, mode, comm, stream,
                                    NULL);
}

ragg_status_t ragg_reduce_scatter_nccl_report(ragg_context_t *ctx, const ragg_config_t *cfg,
                                              const void *sendbuf, void *recvbuf, size_t recvcount,
                                              ncclDataType_t type, ragg_reduce_t reduce, ncclComm_t comm,
                                              cudaStream_t stream, ragg_report_t *report) {
  ragg_coll_t c = {RAGG_COLL_REDUCE_SCATTER, RAGG_F32, sendbuf, recvbuf, recvcount, reduce,
                   RAGG_MODE_SHARDED, report, 0};
  return run_nccl(ctx, cfg, &c, type, comm, stream,
                  report ? "ragg_reduce_scatter_nccl_report" : "ragg_reduce_scatter_nccl");
}

ragg_status_t ragg_reduce_scatter_nccl(ragg_context_t *ctx, const ragg_config_t *cfg, const void *sendbuf,
                                       void *recvbuf, size_t recvcount, ncclDataType_t type,
                                       ragg_reduce_t reduce, ncclComm_t comm, cudaStream_t stream) {
  return ragg_reduce_scatter_nccl_report(ctx, cfg, sendbuf, recvbuf, recvcount, type, reduce, comm, stream,
                                         NULL);
}
