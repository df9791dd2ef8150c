/* Internal interface between the API layer and the backends. */
#ifndef RAGG_INTERNAL_H
#define RAGG_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "robustagg.h"
#include "solver/solver.h"

#define RAGG_ERRMSG_LEN 512

/* One call's input: n rows of d values, reached through row pointers (the
 * contiguous entry point fills rows from base + i * ld as well, so both
 * entry points share every code path). */
typedef struct ragg_input {
  ragg_dtype_t dtype;
  int64_t n, d;
  const void *base;        /* contiguous input, or NULL for the row-pointer entry point */
  int64_t ld;              /* elements between rows of base */
  const void *const *rows; /* n row pointers (host array) */
} ragg_input_t;

struct ragg_context {
  ragg_backend_t backend;
  int device;
  void *stream;
  char err[RAGG_ERRMSG_LEN];
  void *ws; /* workspace in use */
  size_t ws_bytes;
  int ws_user;  /* 1: caller's workspace */
  void *own_ws; /* the context's own, grown on demand */
  size_t own_ws_bytes;
  void *backend_state; /* CUDA: handles, events */
};

/* Sets ctx->err (printf-style) and returns status. */
ragg_status_t ragg_set_error(ragg_context_t *ctx, ragg_status_t status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

size_t ragg_dtype_size(ragg_dtype_t t);
/* The caller's workspace (ctx->ws_user set), checked against the bytes a call
 * needs; both backends use it. */
ragg_status_t ragg_user_workspace(ragg_context_t *ctx, size_t bytes, void **ws);
void ragg_params_from_config(const ragg_config_t *cfg, ragg_solve_params_t *p);
/* Whether the call needs the n x n distances (Gram or direct pass). */
int ragg_plan_needs_distances(const ragg_config_t *cfg, const ragg_report_t *report);
/* Whether the distances such a call needs are the norms alone (the pass's
 * diagonal): a coordinate-wise rule or the mean behind norm clipping, ARC or
 * bucketing (not NNM), without the mean's distance scores. */
int ragg_plan_norms_only(const ragg_config_t *cfg, const ragg_report_t *report);

/* CPU backend. */
size_t ragg_cpu_workspace_size(const ragg_config_t *cfg, ragg_dtype_t dtype, int64_t n, int64_t d);
ragg_status_t ragg_cpu_aggregate(ragg_context_t *ctx, const ragg_config_t *cfg,
                                 const ragg_input_t *in, void *out, ragg_report_t *report);

/* CUDA backend (kernels/); stubs answer RAGG_ERR_NO_DEVICE where it is not built. */
ragg_status_t ragg_cuda_context_init(ragg_context_t *ctx, int device);
void ragg_cuda_context_fini(ragg_context_t *ctx);
ragg_status_t ragg_cuda_set_stream(ragg_context_t *ctx, void *stream);
size_t ragg_cuda_workspace_size(const ragg_config_t *cfg, ragg_dtype_t dtype, int64_t n, int64_t d);
ragg_status_t ragg_cuda_aggregate(ragg_context_t *ctx, const ragg_config_t *cfg,
                                  const ragg_input_t *in, void *out, ragg_report_t *report);

/* The sharded collectives on device buffers (host/dist/dist.c): `sum` adds a
 * shard's raw Lraw x Lraw Gram (or direct) partial sums over every rank, in
 * place, with the same bits on each, so every rank solves the same problem. */
typedef struct ragg_raw_reducer {
  ragg_status_t (*sum)(void *user, double *raw, size_t count);
  void *user;
} ragg_raw_reducer_t;
/* ragg_aggregate (no report) on n contiguous rows that are one shard of each
 * input: the distances come from the raw sums of every rank's shard, reduced
 * through rr, and everything else runs on the shard. Lraw = n, plus one for
 * centered clipping with cfg->cc_center (its shard is the anchor row). */
ragg_status_t ragg_aggregate_shard(ragg_context_t *ctx, const ragg_config_t *cfg, ragg_dtype_t dtype,
                                   const void *x, int64_t n, int64_t d, void *out,
                                   const ragg_raw_reducer_t *rr);
ragg_status_t ragg_cuda_aggregate_shard(ragg_context_t *ctx, const ragg_config_t *cfg,
                                        const ragg_input_t *in, void *out,
                                        const ragg_raw_reducer_t *rr);
/* Lraw of the raw sums ragg_cuda_aggregate_shard reduces on n rows, or 0 when
 * the call reads no distances (its plan's answer: a rank with an empty shard
 * joins the same reductions without running the plan). */
int64_t ragg_cuda_shard_raw_rows(const ragg_config_t *cfg, int64_t n);

#endif
