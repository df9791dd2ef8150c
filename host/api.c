/* Public entry points: contexts, configuration, argument checks and dispatch
 * to a backend. Nothing here prints, aborts or exits. */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static const char *const k_rule_names[RAGG_NUM_RULES] = {
    "mean",   "median", "trimmed_mean",  "meamed", "krum", "multi_krum", "bulyan",
    "geomed", "brute",  "centered_clip", "monna",  "caf",  "smea"};

int ragg_version(void) {
  return RAGG_VERSION_CODE;
}

const char *ragg_status_string(ragg_status_t s) {
  switch (s) {
    case RAGG_SUCCESS:
      return "RAGG_SUCCESS: no error";
    case RAGG_ERR_INVALID_ARGUMENT:
      return "RAGG_ERR_INVALID_ARGUMENT: an argument is out of range";
    case RAGG_ERR_TOO_MANY_BYZANTINE:
      return "RAGG_ERR_TOO_MANY_BYZANTINE: too few inputs for f";
    case RAGG_ERR_UNSUPPORTED:
      return "RAGG_ERR_UNSUPPORTED: not supported by this build or backend";
    case RAGG_ERR_OUT_OF_MEMORY:
      return "RAGG_ERR_OUT_OF_MEMORY: allocation failed";
    case RAGG_ERR_NO_DEVICE:
      return "RAGG_ERR_NO_DEVICE: no CUDA device or no CUDA backend";
    case RAGG_ERR_CUDA:
      return "RAGG_ERR_CUDA: a CUDA runtime call failed";
    case RAGG_ERR_CUBLAS:
      return "RAGG_ERR_CUBLAS: a cuBLAS call failed";
    case RAGG_ERR_NCCL:
      return "RAGG_ERR_NCCL: an NCCL call failed";
    case RAGG_ERR_MPI:
      return "RAGG_ERR_MPI: an MPI call failed";
    case RAGG_ERR_INTERNAL:
      return "RAGG_ERR_INTERNAL: internal error";
    case RAGG_ERR_MISMATCH:
      return "RAGG_ERR_MISMATCH: arguments differ across ranks";
    case RAGG_ERR_TRANSPORT:
      return "RAGG_ERR_TRANSPORT: a transport callback failed";
  }
  return "unknown ragg_status_t value";
}

const char *ragg_rule_name(ragg_rule_t r) {
  if ((int)r < 0 || (int)r >= RAGG_NUM_RULES) return NULL;
  return k_rule_names[r];
}

ragg_status_t ragg_rule_from_name(const char *name, ragg_rule_t *r) {
  if (!name || !r) return RAGG_ERR_INVALID_ARGUMENT;
  for (int i = 0; i < RAGG_NUM_RULES; ++i)
    if (strcmp(name, k_rule_names[i]) == 0) {
      *r = (ragg_rule_t)i;
      return RAGG_SUCCESS;
    }
  return RAGG_ERR_INVALID_ARGUMENT;
}

int64_t ragg_rule_min_inputs(ragg_rule_t r, int64_t f) {
  switch (r) {
    case RAGG_RULE_MEAN:
    case RAGG_RULE_CENTERED_CLIP:
      return 1;
    case RAGG_RULE_KRUM:
    case RAGG_RULE_MULTI_KRUM:
      return 2 * f + 3;
    case RAGG_RULE_BULYAN:
      return 4 * f + 3;
    default:
      return 2 * f + 1;
  }
}

void ragg_config_init(ragg_config_t *cfg, ragg_rule_t rule, int64_t f) {
  if (!cfg) return;
  memset(cfg, 0, sizeof(*cfg));
  cfg->struct_size = sizeof(ragg_config_t);
  cfg->rule = rule;
  cfg->f = f;
  cfg->m = 0;
  cfg->clip_norm = 0.0;
  cfg->tau = 100.0;
  cfg->iters = 1;
  cfg->cc_center = NULL;
  cfg->nu = 1e-8;
  cfg->max_iters = 1000;
  cfg->tol = 1e-12;
  cfg->brute_limit = 1000000;
  cfg->distances = RAGG_DISTANCES_GRAM;
  cfg->trusted = 0;
  cfg->adaptive_clip = 0;
  cfg->mix = RAGG_MIX_NONE;
  cfg->bucket_size = 2;
  cfg->seed = 0;
}

ragg_status_t ragg_set_error(ragg_context_t *ctx, ragg_status_t status, const char *fmt, ...) {
  if (ctx) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->err, sizeof(ctx->err), fmt, ap);
    va_end(ap);
  }
  return status;
}

const char *ragg_last_error(const ragg_context_t *ctx) {
  return ctx ? ctx->err : "";
}

size_t ragg_dtype_size(ragg_dtype_t t) {
  return t == RAGG_F32 ? 4 : 2;
}

void ragg_params_from_config(const ragg_config_t *cfg, ragg_solve_params_t *p) {
  memset(p, 0, sizeof(*p));
  p->rule = (int)cfg->rule;
  p->f = cfg->f;
  p->m = cfg->m;
  p->iters = cfg->iters;
  p->max_iters = cfg->max_iters;
  p->brute_limit = cfg->brute_limit;
  p->trusted = cfg->trusted;
  p->bucket_size = cfg->bucket_size;
  p->tau = cfg->tau;
  p->nu = cfg->nu;
  p->tol = cfg->tol;
  p->clip_norm = cfg->clip_norm;
  p->adaptive_clip = cfg->adaptive_clip;
  p->mix = (int)cfg->mix;
  p->seed = cfg->seed;
}

int ragg_plan_needs_distances(const ragg_config_t *cfg, const ragg_report_t *report) {
  if (ragg_rule_needs_distances((int)cfg->rule)) return 1;
  if (cfg->clip_norm > 0.0 || cfg->adaptive_clip || cfg->mix == RAGG_MIX_NNM) return 1;
  return cfg->rule == RAGG_RULE_MEAN && report && report->scores;
}

int ragg_plan_norms_only(const ragg_config_t *cfg, const ragg_report_t *report) {
  return !ragg_rule_needs_distances((int)cfg->rule) && cfg->mix != RAGG_MIX_NNM &&
         !(cfg->rule == RAGG_RULE_MEAN && report && report->scores);
}

/* ---- contexts ---------------------------------------------------------- */

ragg_status_t ragg_context_create(ragg_context_t **ctx, ragg_backend_t backend, int device) {
  if (!ctx) return RAGG_ERR_INVALID_ARGUMENT;
  *ctx = NULL;
  if (backend != RAGG_BACKEND_CPU && backend != RAGG_BACKEND_CUDA) return RAGG_ERR_INVALID_ARGUMENT;
  ragg_context_t *c = (ragg_context_t *)calloc(1, sizeof(*c));
  if (!c) return RAGG_ERR_OUT_OF_MEMORY;
  c->backend = backend;
  c->device = device;
  if (backend == RAGG_BACKEND_CUDA) {
    ragg_status_t st = ragg_cuda_context_init(c, device);
    if (st != RAGG_SUCCESS) {
      free(c);
      return st;
    }
  }
  *ctx = c;
  return RAGG_SUCCESS;
}

void ragg_context_destroy(ragg_context_t *ctx) {
  if (!ctx) return;
  if (ctx->backend == RAGG_BACKEND_CUDA)
    ragg_cuda_context_fini(ctx);
  else
    free(ctx->own_ws);
  free(ctx);
}

ragg_status_t ragg_context_set_stream(ragg_context_t *ctx, void *stream) {
  if (!ctx) return RAGG_ERR_INVALID_ARGUMENT;
  ctx->err[0] = '\0';
  if (ctx->backend != RAGG_BACKEND_CUDA) {
    ctx->stream = stream;
    return RAGG_SUCCESS; /* the CPU backend has no streams; the value is kept */
  }
  return ragg_cuda_set_stream(ctx, stream);
}

ragg_status_t ragg_user_workspace(ragg_context_t *ctx, size_t bytes, void **ws) {
  if (ctx->ws_bytes < bytes)
    return ragg_set_error(ctx, RAGG_ERR_INVALID_ARGUMENT,
                          "ragg_aggregate: the workspace set by ragg_context_set_workspace holds "
                          "%zu bytes, this call needs %zu (ragg_workspace_size)",
                          ctx->ws_bytes, bytes);
  *ws = ctx->ws;
  return RAGG_SUCCESS;
}

ragg_status_t ragg_context_set_workspace(ragg_context_t *ctx, void *ptr, size_t bytes) {
  if (!ctx) return RAGG_ERR_INVALID_ARGUMENT;
  ctx->err[0] = '\0';
  if ((ptr == NULL) != (bytes == 0))
    return ragg_set_error(ctx, RAGG_ERR_INVALID_ARGUMENT,
                          "ragg_context_set_workspace: ptr and bytes must both be set or both be 0 "
                          "(ptr=%p, bytes=%zu)",
                          ptr, bytes);
  ctx->ws_user = ptr != NULL;
  ctx->ws = ptr ? ptr : ctx->own_ws;
  ctx->ws_bytes = ptr ? bytes : ctx->own_ws_bytes;
  return RAGG_SUCCESS;
}

/* ---- argument checks ------------------------------------------------------ */

#define FAIL(st, ...) return ragg_set_error(ctx, st, __VA_ARGS__)

static ragg_status_t check_config(ragg_context_t *ctx, const ragg_config_t *cfg, int64_t n) {
  const char *fn = "ragg_aggregate";
  if (!cfg) FAIL(RAGG_ERR_INVALID_ARGUMENT, "%s: cfg is NULL", fn);
  if (cfg->struct_size != sizeof(ragg_config_t))
    FAIL(RAGG_ERR_INVALID_ARGUMENT,
         "%s: cfg->struct_size = %zu, expected sizeof(ragg_config_t) = %zu (call ragg_config_init)",
         fn, cfg->struct_size, sizeof(ragg_config_t));
  if ((int)cfg->rule < 0 || (int)cfg->rule >= RAGG_NUM_RULES)
    FAIL(RAGG_ERR_INVALID_ARGUMENT, "%s: cfg->rule = %d is not a ragg_rule_t (0..%d)", fn,
         (int)cfg->rule, RAGG_NUM_RULES - 1);
  const char *rn = ragg_rule_name(cfg->rule);
  if (cfg->f < 0)
    FAIL(RAGG_ERR_INVALID_ARGUMENT, "%s: cfg->f = %lld must be >= 0", fn, (long long)cfg->f);
  if (cfg->distances != RAGG_DISTANCES_GRAM && cfg->distances != RAGG_DISTANCES_DIRECT &&
      cfg->distances != RAGG_DISTANCES_GRAM_FP32)
    FAIL(RAGG_ERR_INVALID_ARGUMENT, "%s: cfg->distances = %d is not a ragg_distances_t (0..2)", fn,
         (int)cfg->distances);
  if (!(cfg->clip_norm >= 0.0) || isinf(cfg->clip_norm))
    FAIL(RAGG_ERR_INVALID_ARGUMENT, "%s: cfg->clip_norm = %g must be finite and >= 0", fn,
         cfg->clip_norm);
  if (cfg->adaptive_clip != 0 && cfg->adaptive_clip != 1)
    FAIL(RAGG_ERR_INVALID_ARGUMENT, "%s: cfg->adaptive_clip = %d must be 0 or 1", fn,
         (int)cfg->adaptive_clip);
  if (cfg->adaptive_clip && cfg->clip_norm > 0.0)
    FAIL(RAGG_ERR_INVALID_ARGUMENT,
         "%s: cfg->adaptive_clip = 1 and cfg->clip_norm = %g: choose one clipping pre-step", fn,
         cfg->clip_norm);
  if ((int)cfg->mix < 0 || (int)cfg->mix > RAGG_MIX_BUCKETING)
    FAIL(RAGG_ERR_INVALID_ARGUMENT, "%s: cfg->mix = %d is not a ragg_mix_t", fn, (int)cfg->mix);
  if (cfg->mix == RAGG_MIX_BUCKETING && cfg->bucket_size < 1)
    FAIL(RAGG_ERR_INVALID_ARGUMENT, "%s: cfg->bucket_size = %lld must be >= 1 with bucketing", fn,
         (long long)cfg->bucket_size);
  if (cfg->mix == RAGG_MIX_NNM && n - cfg->f < 1)
    FAIL(RAGG_ERR_TOO_MANY_BYZANTINE, "%s: NNM needs n - f >= 1 (n = %lld, f = %lld)", fn,
         (long long)n, (long long)cfg->f);
  ragg_solve_params_t p;
  ragg_params_from_config(cfg, &p);
  int64_t nm = ragg_mixed_rows(&p, n), need = ragg_rule_min_inputs(cfg->rule, cfg->f);
  if (nm < need) {
    if (nm != n)
      FAIL(RAGG_ERR_TOO_MANY_BYZANTINE,
           "%s: rule %s needs at least %lld inputs for f = %lld, but bucketing leaves n' = %lld "
           "(n = %lld, bucket_size = %lld)",
           fn, rn, (long long)need, (long long)cfg->f, (long long)nm, (long long)n,
           (long long)cfg->bucket_size);
    FAIL(RAGG_ERR_TOO_MANY_BYZANTINE, "%s: rule %s needs n >= %lld for f = %lld, got n = %lld", fn,
         rn, (long long)need, (long long)cfg->f, (long long)n);
  }
  switch (cfg->rule) {
    case RAGG_RULE_MULTI_KRUM:
      if (cfg->m < 0 || cfg->m > nm - cfg->f)
        FAIL(RAGG_ERR_INVALID_ARGUMENT, "%s: cfg->m = %lld must be in 0..n-f = %lld (0 means n-f)",
             fn, (long long)cfg->m, (long long)(nm - cfg->f));
      break;
    case RAGG_RULE_CENTERED_CLIP:
      if (!(cfg->tau > 0.0) || isinf(cfg->tau))
        FAIL(RAGG_ERR_INVALID_ARGUMENT, "%s: cfg->tau = %g must be finite and > 0", fn, cfg->tau);
      if (cfg->iters < 1)
        FAIL(RAGG_ERR_INVALID_ARGUMENT, "%s: cfg->iters = %lld must be >= 1", fn,
             (long long)cfg->iters);
      break;
    case RAGG_RULE_GEOMED:
      if (!(cfg->nu > 0.0) || isinf(cfg->nu))
        FAIL(RAGG_ERR_INVALID_ARGUMENT, "%s: cfg->nu = %g must be finite and > 0", fn, cfg->nu);
      if (cfg->max_iters < 1)
        FAIL(RAGG_ERR_INVALID_ARGUMENT, "%s: cfg->max_iters = %lld must be >= 1", fn,
             (long long)cfg->max_iters);
      if (!(cfg->tol >= 0.0))
        FAIL(RAGG_ERR_INVALID_ARGUMENT, "%s: cfg->tol = %g must be >= 0", fn, cfg->tol);
      break;
    case RAGG_RULE_BRUTE:
    case RAGG_RULE_SMEA: {
      if (cfg->brute_limit < 1)
        FAIL(RAGG_ERR_INVALID_ARGUMENT, "%s: cfg->brute_limit = %lld must be >= 1", fn,
             (long long)cfg->brute_limit);
      int64_t subsets = ragg_binomial(nm, cfg->f);
      if (subsets > cfg->brute_limit)
        FAIL(RAGG_ERR_UNSUPPORTED,
             "%s: rule %s would enumerate C(%lld, %lld) = %lld subsets, above cfg->brute_limit = "
             "%lld",
             fn, rn, (long long)nm, (long long)cfg->f, (long long)subsets,
             (long long)cfg->brute_limit);
      break;
    }
    case RAGG_RULE_MONNA:
      if (cfg->trusted < 0 || cfg->trusted >= nm)
        FAIL(RAGG_ERR_INVALID_ARGUMENT, "%s: cfg->trusted = %lld must be in 0..%lld", fn,
             (long long)cfg->trusted, (long long)(nm - 1));
      break;
    default:
      break;
  }
  return RAGG_SUCCESS;
}

static int overlaps(const void *a, size_t abytes, const void *b, size_t bbytes) {
  uintptr_t a0 = (uintptr_t)a, b0 = (uintptr_t)b;
  return a0 < b0 + bbytes && b0 < a0 + abytes;
}

static ragg_status_t check_call(ragg_context_t *ctx, const ragg_config_t *cfg,
                                const ragg_input_t *in, const void *out,
                                const ragg_report_t *report) {
  const char *fn = in->base || !in->rows ? "ragg_aggregate" : "ragg_aggregate_ptrs";
  if (in->dtype != RAGG_F32 && in->dtype != RAGG_F16 && in->dtype != RAGG_BF16)
    FAIL(RAGG_ERR_INVALID_ARGUMENT, "%s: dtype = %d is not a ragg_dtype_t", fn, (int)in->dtype);
  if (in->n < 1) FAIL(RAGG_ERR_INVALID_ARGUMENT, "%s: n = %lld must be >= 1", fn, (long long)in->n);
  if (in->d < 1) FAIL(RAGG_ERR_INVALID_ARGUMENT, "%s: d = %lld must be >= 1", fn, (long long)in->d);
  size_t es = ragg_dtype_size(in->dtype);
  if ((uint64_t)in->d > (uint64_t)INT64_MAX / 8)
    FAIL(RAGG_ERR_INVALID_ARGUMENT, "%s: d = %lld is too large", fn, (long long)in->d);
  if (!out) FAIL(RAGG_ERR_INVALID_ARGUMENT, "%s: out is NULL", fn);
  size_t obytes = (size_t)in->d * es;
  if (in->rows) {
    for (int64_t i = 0; i < in->n; ++i) {
      if (!in->rows[i]) FAIL(RAGG_ERR_INVALID_ARGUMENT, "%s: rows[%lld] is NULL", fn, (long long)i);
      if (overlaps(out, obytes, in->rows[i], obytes))
        FAIL(RAGG_ERR_INVALID_ARGUMENT,
             "%s: out overlaps input row %lld (inputs are never modified)", fn, (long long)i);
    }
  }
  if (in->base) {
    if (in->ld < in->d)
      FAIL(RAGG_ERR_INVALID_ARGUMENT, "%s: ld = %lld is below d = %lld (ld >= d required)", fn,
           (long long)in->ld, (long long)in->d);
    if ((uint64_t)in->ld > (uint64_t)INT64_MAX / 8 / (uint64_t)in->n)
      FAIL(RAGG_ERR_INVALID_ARGUMENT, "%s: ld = %lld times n = %lld overflows", fn,
           (long long)in->ld, (long long)in->n);
    size_t xbytes = ((size_t)(in->n - 1) * (size_t)in->ld + (size_t)in->d) * es;
    if (overlaps(out, obytes, in->base, xbytes))
      FAIL(RAGG_ERR_INVALID_ARGUMENT, "%s: out overlaps the input x (inputs are never modified)",
           fn);
  }
  ragg_status_t st = check_config(ctx, cfg, in->n);
  if (st != RAGG_SUCCESS) return st;
  if (cfg->cc_center && cfg->rule == RAGG_RULE_CENTERED_CLIP &&
      overlaps(out, obytes, cfg->cc_center, obytes))
    FAIL(RAGG_ERR_INVALID_ARGUMENT, "%s: out overlaps cfg->cc_center", fn);
  if (report && report->capacity < in->n)
    FAIL(RAGG_ERR_INVALID_ARGUMENT, "%s: report->capacity = %lld is below n = %lld", fn,
         (long long)report->capacity, (long long)in->n);
  return RAGG_SUCCESS;
}

/* rr: a shard of each input (ragg_aggregate_shard; CUDA contexts only). */
static ragg_status_t dispatch(ragg_context_t *ctx, const ragg_config_t *cfg, const ragg_input_t *in,
                              void *out, ragg_report_t *report, const ragg_raw_reducer_t *rr) {
  if (!ctx) return RAGG_ERR_INVALID_ARGUMENT;
  ctx->err[0] = '\0';
  ragg_status_t st = check_call(ctx, cfg, in, out, report);
  if (st != RAGG_SUCCESS) return st;
  if (rr) {
    if (ctx->backend != RAGG_BACKEND_CUDA)
      return ragg_set_error(ctx, RAGG_ERR_INVALID_ARGUMENT,
                            "ragg_aggregate (shard): a shard needs a CUDA context");
    return ragg_cuda_aggregate_shard(ctx, cfg, in, out, rr);
  }
  if (ctx->backend == RAGG_BACKEND_CUDA) return ragg_cuda_aggregate(ctx, cfg, in, out, report);
  return ragg_cpu_aggregate(ctx, cfg, in, out, report);
}

ragg_status_t ragg_aggregate(ragg_context_t *ctx, const ragg_config_t *cfg, ragg_dtype_t dtype,
                             const void *x, int64_t n, int64_t d, int64_t ld, void *out,
                             ragg_report_t *report) {
  if (!ctx) return RAGG_ERR_INVALID_ARGUMENT;
  if (!x) {
    ctx->err[0] = '\0';
    return ragg_set_error(ctx, RAGG_ERR_INVALID_ARGUMENT, "ragg_aggregate: x is NULL");
  }
  ragg_input_t in = {dtype, n, d, x, ld, NULL};
  return dispatch(ctx, cfg, &in, out, report, NULL);
}

ragg_status_t ragg_aggregate_shard(ragg_context_t *ctx, const ragg_config_t *cfg, ragg_dtype_t dtype,
                                   const void *x, int64_t n, int64_t d, void *out,
                                   const ragg_raw_reducer_t *rr) {
  if (!ctx) return RAGG_ERR_INVALID_ARGUMENT;
  ctx->err[0] = '\0';
  if (!x || !rr)
    return ragg_set_error(ctx, RAGG_ERR_INVALID_ARGUMENT, "ragg_aggregate (shard): %s is NULL",
                          x ? "the reducer" : "x");
  ragg_input_t in = {dtype, n, d, x, d, NULL};
  return dispatch(ctx, cfg, &in, out, NULL, rr);
}

ragg_status_t ragg_aggregate_ptrs(ragg_context_t *ctx, const ragg_config_t *cfg, ragg_dtype_t dtype,
                                  const void *const *rows, int64_t n, int64_t d, void *out,
                                  ragg_report_t *report) {
  if (!ctx) return RAGG_ERR_INVALID_ARGUMENT;
  if (!rows) {
    ctx->err[0] = '\0';
    return ragg_set_error(ctx, RAGG_ERR_INVALID_ARGUMENT, "ragg_aggregate_ptrs: rows is NULL");
  }
  ragg_input_t in = {dtype, n, d, NULL, d, rows};
  return dispatch(ctx, cfg, &in, out, report, NULL);
}

ragg_status_t ragg_workspace_size(ragg_context_t *ctx, const ragg_config_t *cfg, ragg_dtype_t dtype,
                                  int64_t n, int64_t d, size_t *bytes) {
  if (!ctx) return RAGG_ERR_INVALID_ARGUMENT;
  ctx->err[0] = '\0';
  if (!bytes)
    return ragg_set_error(ctx, RAGG_ERR_INVALID_ARGUMENT, "ragg_workspace_size: bytes is NULL");
  if (n < 1 || d < 1)
    return ragg_set_error(ctx, RAGG_ERR_INVALID_ARGUMENT,
                          "ragg_workspace_size: n = %lld and d = %lld must be >= 1", (long long)n,
                          (long long)d);
  ragg_status_t st = check_config(ctx, cfg, n);
  if (st != RAGG_SUCCESS) return st;
  *bytes = ctx->backend == RAGG_BACKEND_CUDA ? ragg_cuda_workspace_size(cfg, dtype, n, d)
                                             : ragg_cpu_workspace_size(cfg, dtype, n, d);
  return RAGG_SUCCESS;
}
