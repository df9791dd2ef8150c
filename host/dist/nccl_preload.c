/*
 * librobustagg_nccl_preload.so: the NCCL drop-in (DESIGN §1 "The NCCL
 * drop-in"). Loaded with LD_PRELOAD, it defines ncclAllReduce,
 * ncclReduceScatter, ncclGroupStart and ncclGroupEnd; the decisions and the
 * group queue are nccl_shim.c's, NCCL is the application's own through the
 * pnccl* table (nccl_pnccl.c), and intercepted calls run
 * ragg_allreduce_nccl / ragg_reduce_scatter_nccl on a CUDA context kept per
 * thread and device.
 *
 * Group depth and the queue are per thread, as NCCL's groups are.
 */
#include <nccl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "nccl_shim.h"
#include "robustagg_nccl.h"

#define RAGG_PRELOAD_MAX_DEVICES 64

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static ragg_shim_t g_proto; /* the table and the configuration, copied into each thread */
static int g_ok;
static const char *g_why = "";

static __thread ragg_shim_t tls_shim;
static __thread int tls_ready;
static __thread ragg_context_t *tls_ctx[RAGG_PRELOAD_MAX_DEVICES];

static void shim_warn(const ragg_shim_config_t *cfg, const char *what, const char *msg) {
  if (cfg->debug) fprintf(stderr, "robustagg WARN %s: %s\n", what, msg);
}

static ncclResult_t nccl_result(ragg_status_t st) {
  switch (st) {
    case RAGG_SUCCESS: return ncclSuccess;
    case RAGG_ERR_INVALID_ARGUMENT: return ncclInvalidArgument;
    case RAGG_ERR_TOO_MANY_BYZANTINE:
    case RAGG_ERR_MISMATCH:
    case RAGG_ERR_UNSUPPORTED: return ncclInvalidUsage;
    case RAGG_ERR_CUDA:
    case RAGG_ERR_NO_DEVICE: return ncclUnhandledCudaError;
    case RAGG_ERR_OUT_OF_MEMORY: return ncclSystemError;
    default: return ncclInternalError;
  }
}

/* Runs one intercepted call (ragg_shim_robust_fn). */
static int robust_call(void *user, const ragg_shim_config_t *sc, const ragg_shim_call_t *c) {
  ragg_shim_t *s = (ragg_shim_t *)user;
  const char *what = c->kind == RAGG_SHIM_ALLREDUCE ? "ncclAllReduce" : "ncclReduceScatter";
  int dev = -1;
  int rc = s->nccl.CommCuDevice(c->comm, &dev);
  if (rc != SHIM_NCCL_SUCCESS) return rc;
  if (dev < 0 || dev >= RAGG_PRELOAD_MAX_DEVICES) {
    shim_warn(sc, what, "the communicator's CUDA device number is out of range");
    return ncclInternalError;
  }
  if (!tls_ctx[dev]) {
    ragg_status_t st = ragg_context_create(&tls_ctx[dev], RAGG_BACKEND_CUDA, dev);
    if (st != RAGG_SUCCESS) {
      shim_warn(sc, what, tls_ctx[dev] ? ragg_last_error(tls_ctx[dev]) : ragg_status_string(st));
      ragg_context_destroy(tls_ctx[dev]);
      tls_ctx[dev] = NULL;
      return nccl_result(st);
    }
  }
  ragg_context_t *ctx = tls_ctx[dev];
  ragg_config_t cfg;
  ragg_config_init(&cfg, sc->rule, sc->f);
  ragg_reduce_t reduce = c->op == SHIM_NCCL_AVG ? RAGG_REDUCE_MEAN : RAGG_REDUCE_SUM;
  ragg_status_t st =
      c->kind == RAGG_SHIM_ALLREDUCE
          ? ragg_allreduce_nccl(ctx, &cfg, c->send, c->recv, c->count, (ncclDataType_t)c->type, reduce,
                                sc->mode, (ncclComm_t)c->comm, (cudaStream_t)c->stream)
          : ragg_reduce_scatter_nccl(ctx, &cfg, c->send, c->recv, c->count, (ncclDataType_t)c->type,
                                     reduce, (ncclComm_t)c->comm, (cudaStream_t)c->stream);
  if (st != RAGG_SUCCESS) shim_warn(sc, what, ragg_last_error(ctx));
  return nccl_result(st);
}

static const char *env(const char *name) { return getenv(name); }

static void init_once(void) {
  const ragg_pnccl_t *t = ragg_pnccl_get(&g_why);
  if (!t) return;
  g_proto.nccl = *t;
  ragg_shim_config_read(&g_proto.cfg, env);
  g_proto.robust = robust_call;
  g_ok = 1;
  if (g_proto.cfg.debug)
    fprintf(stderr,
            "robustagg INFO drop-in loaded: rule=%s f=%lld mode=%s min_bytes=%zu check=%d%s%s; "
            "intercepts ncclAllReduce/ncclReduceScatter on float32/float16/bfloat16 with sum/avg\n",
            ragg_rule_name(g_proto.cfg.rule), (long long)g_proto.cfg.f,
            g_proto.cfg.mode == RAGG_MODE_REPLICATED ? "replicated" : "sharded", g_proto.cfg.min_bytes,
            g_proto.cfg.check, g_proto.cfg.valid ? "" : "; configuration invalid: ",
            g_proto.cfg.valid ? "" : g_proto.cfg.error);
}

static ragg_shim_t *shim(void) {
  pthread_once(&g_once, init_once);
  if (!g_ok) {
    static int warned;
    if (!warned) {
      warned = 1;
      fprintf(stderr, "robustagg WARN drop-in: %s\n", g_why);
    }
    return NULL;
  }
  if (!tls_ready) {
    tls_shim = g_proto;
    tls_shim.queue = NULL;
    tls_shim.queued = tls_shim.queue_cap = 0;
    tls_shim.group_depth = 0;
    tls_shim.robust_user = &tls_shim;
    tls_ready = 1;
  }
  return &tls_shim;
}

__attribute__((visibility("default"))) ncclResult_t ncclAllReduce(const void *sendbuff, void *recvbuff,
                                                                  size_t count, ncclDataType_t datatype,
                                                                  ncclRedOp_t op, ncclComm_t comm,
                                                                  cudaStream_t stream) {
  ragg_shim_t *s = shim();
  if (!s) return ncclSystemError;
  return (ncclResult_t)ragg_shim_allreduce(s, sendbuff, recvbuff, count, (int)datatype, (int)op, comm,
                                           stream);
}

__attribute__((visibility("default"))) ncclResult_t ncclReduceScatter(const void *sendbuff, void *recvbuff,
                                                                      size_t recvcount,
                                                                      ncclDataType_t datatype,
                                                                      ncclRedOp_t op, ncclComm_t comm,
                                                                      cudaStream_t stream) {
  ragg_shim_t *s = shim();
  if (!s) return ncclSystemError;
  return (ncclResult_t)ragg_shim_reduce_scatter(s, sendbuff, recvbuff, recvcount, (int)datatype, (int)op,
                                                comm, stream);
}

__attribute__((visibility("default"))) ncclResult_t ncclGroupStart(void) {
  ragg_shim_t *s = shim();
  if (!s) return ncclSystemError;
  return (ncclResult_t)ragg_shim_group_start(s);
}

__attribute__((visibility("default"))) ncclResult_t ncclGroupEnd(void) {
  ragg_shim_t *s = shim();
  if (!s) return ncclSystemError;
  return (ncclResult_t)ragg_shim_group_end(s);
}
