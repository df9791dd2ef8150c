/* The CUDA backend's dispatch layer: contexts, streams, the workspace, and
 * the plan of one call, the CPU backend's plan (host/cpu/cpu_backend.c) on
 * the device:
 *   coordinate-wise rules: [pre-steps: distances, transform W, Y = W X] -> coordinate pass;
 *   Gram-space rules:      Gram pass -> finalize -> solver kernel -> combination;
 *   Bulyan:                Gram pass -> finalize -> solver's selection -> coordinate step on S;
 *   mean:                  combination with alpha = 1/n (distances only for the report).
 * Every step is enqueued on the context's stream: no allocation once the
 * workspace is sized, no synchronisation, no copy between host and device
 * (row-pointer inputs beyond kParamRows rows excepted: their pointer array
 * is copied once), so a call can be captured in a CUDA graph. */
#include <cublas_v2.h>
#include <nvtx3/nvToolsExt.h>

#include <new>
#include <vector>

#include "launch.cuh"

using namespace ragg_cuda;

namespace {

constexpr size_t kCublasWorkspaceBytes = 32u << 20; /* cuBLAS's advice for Hopper */

struct CudaState {
  cublasHandle_t blas;
  void *blas_ws;
  cudaEvent_t handoff; /* orders a new stream after the previous one */
};

CudaState *state_of(ragg_context_t *ctx) { return (CudaState *)ctx->backend_state; }

/* Makes the context's device current for the call and restores the caller's. */
class DeviceScope {
 public:
  explicit DeviceScope(int device) {
    if (cudaGetDevice(&prev_) != cudaSuccess) prev_ = -1;
    if (prev_ != device) cudaSetDevice(device);
  }
  ~DeviceScope() {
    int now = -1;
    if (prev_ >= 0 && cudaGetDevice(&now) == cudaSuccess && now != prev_) cudaSetDevice(prev_);
  }

 private:
  int prev_ = -1;
};

/* An NVTX range for the length of a scope: nsys shows one per phase. */
class Phase {
 public:
  explicit Phase(const char *name) { nvtxRangePushA(name); }
  ~Phase() { nvtxRangePop(); }
};

ragg_status_t cuda_fail(ragg_context_t *ctx, const char *where, cudaError_t e) {
  return ragg_set_error(ctx, RAGG_ERR_CUDA, "%s: %s (%s)", where, cudaGetErrorString(e),
                        cudaGetErrorName(e));
}
ragg_status_t cublas_fail(ragg_context_t *ctx, const char *where, const char *call,
                          cublasStatus_t s) {
  return ragg_set_error(ctx, RAGG_ERR_CUBLAS, "%s: %s: %s (%s)", where, call,
                        cublasGetStatusString(s), cublasGetStatusName(s));
}

#define RAGG_CUDA_TRY(where, expr)                      \
  do {                                                  \
    cudaError_t e_ = (expr);                            \
    if (e_ != cudaSuccess) return cuda_fail(ctx, where, e_); \
  } while (0)

/* ---- the plan of one call ---------------------------------------------- */

struct Plan {
  int64_t n, L, nm, d, Lraw;
  int need_dist, pre, materialize, anchor_row, origin_anchor, use_cublas, dev_ptrs, direct;
};

/* shard: the raw sums are reduced over ranks (ragg_aggregate_shard), so they
 * come from our own kernel in double, never from a cuBLAS G. */
Plan make_plan(const ragg_config_t *cfg, const ragg_report_t *report, int64_t n, int64_t d,
               int contiguous, int shard = 0) {
  ragg_solve_params_t p;
  ragg_params_from_config(cfg, &p);
  Plan pl;
  pl.n = n;
  pl.d = d;
  int cc = cfg->rule == RAGG_RULE_CENTERED_CLIP;
  pl.L = n + cc;
  pl.pre = ragg_has_prestep(&p);
  pl.nm = ragg_mixed_rows(&p, n);
  pl.materialize = pl.pre && (ragg_rule_is_coordinatewise((int)cfg->rule) ||
                              cfg->rule == RAGG_RULE_BULYAN || cfg->rule == RAGG_RULE_MEAN);
  /* bucketing alone reads no distances: the solver's transform runs without them */
  pl.need_dist = ragg_plan_needs_distances(cfg, report);
  pl.anchor_row = cc && cfg->cc_center != NULL;
  pl.direct = cfg->distances == RAGG_DISTANCES_DIRECT;
  pl.origin_anchor = cc && cfg->cc_center == NULL;
  pl.Lraw = n + pl.anchor_row;
  pl.use_cublas =
      contiguous && !shard && !pl.anchor_row && !pl.direct && !gram_prefers_own_kernel(pl.Lraw);
  pl.dev_ptrs = !contiguous && pl.L > kParamRows;
  return pl;
}

struct Layout {
  size_t D, N, alpha, mix, scratch, iscratch, bulyan, parts, G, counts, ptrs, Y, coord, total;
};

/* worst: the largest layout over both input layouts (ragg_workspace_size). */
Layout make_layout(const Plan &pl, int worst) {
  Layout lo;
  size_t off = 0, L = (size_t)pl.L, Lr = (size_t)pl.Lraw;
  auto take = [&](size_t bytes) {
    size_t at = off;
    off += (bytes + 255) & ~(size_t)255;
    return at;
  };
  int tiles = pl.need_dist && (worst || !pl.use_cublas);
  int blas = pl.need_dist && (worst || pl.use_cublas);
  /* the n x n pieces only where the solver or its pre-step transform runs: a
   * coordinate-wise rule or the mean alone needs O(n) bytes besides its pass */
  int solver = pl.need_dist || pl.pre;
  lo.D = take(pl.need_dist ? sizeof(double) * L * L : 0);
  lo.N = take(sizeof(double) * L);
  lo.alpha = take(sizeof(double) * L);
  lo.mix = take(solver ? sizeof(double) * L * L : 0);
  lo.scratch = take(solver ? sizeof(double) * (size_t)ragg_solver_scratch_doubles(pl.n) : 0);
  lo.iscratch = take(sizeof(int64_t) * (size_t)ragg_solver_scratch_ints(pl.n));
  lo.bulyan = take(sizeof(int64_t) * L);
  /* worst: the larger of the two modes' splits */
  size_t splits = (size_t)gram_splits(pl.Lraw, pl.d, pl.direct);
  if (worst) {
    size_t other = (size_t)gram_splits(pl.Lraw, pl.d, !pl.direct);
    if (other > splits) splits = other;
  }
  /* the cuBLAS slots are added into one split of parts */
  lo.parts = take(tiles ? sizeof(double) * Lr * Lr * splits : blas ? sizeof(double) * Lr * Lr : 0);
  lo.G = take(blas ? sizeof(float) * Lr * Lr * (size_t)gram_blas_slots(pl.Lraw, pl.d) : 0);
  lo.counts = take(sizeof(int64_t) * (size_t)pl.n);
  lo.ptrs = take(worst || pl.dev_ptrs ? sizeof(void *) * L : 0);
  lo.Y = take(pl.materialize ? sizeof(float) * (size_t)pl.nm * (size_t)pl.d : 0);
  lo.coord = take(coord_scratch_bytes(pl.nm > pl.n ? pl.nm : pl.n, pl.d));
  lo.total = off;
  return lo;
}

ragg_status_t get_workspace(ragg_context_t *ctx, size_t bytes, char **ws) {
  if (ctx->ws_user) return ragg_user_workspace(ctx, bytes, (void **)ws);
  if (ctx->own_ws_bytes < bytes) {
    cudaStream_t s = (cudaStream_t)ctx->stream;
    if (ctx->own_ws) {
      cudaError_t e = cudaFreeAsync(ctx->own_ws, s);
      ctx->own_ws = NULL;
      ctx->own_ws_bytes = 0;
      if (e != cudaSuccess) return cuda_fail(ctx, "ragg_aggregate: cudaFreeAsync (workspace)", e);
    }
    void *p = NULL;
    cudaError_t e = cudaMallocAsync(&p, bytes, s);
    if (e != cudaSuccess) {
      cudaGetLastError();
      return ragg_set_error(ctx, e == cudaErrorMemoryAllocation ? RAGG_ERR_OUT_OF_MEMORY : RAGG_ERR_CUDA,
                            "ragg_aggregate: cudaMallocAsync of a %zu-byte workspace: %s", bytes,
                            cudaGetErrorString(e));
    }
    ctx->own_ws = p;
    ctx->own_ws_bytes = bytes;
  }
  ctx->ws = ctx->own_ws;
  ctx->ws_bytes = ctx->own_ws_bytes;
  *ws = (char *)ctx->own_ws;
  return RAGG_SUCCESS;
}

/* rr: a shard of each input (ragg_aggregate_shard, no report): the raw sums
 * are reduced over every rank before the distances are formed. */
ragg_status_t aggregate(ragg_context_t *ctx, const ragg_config_t *cfg, const ragg_input_t *in,
                        void *out, ragg_report_t *report, const ragg_raw_reducer_t *rr = NULL) {
  const char *fn = in->base ? "ragg_aggregate" : "ragg_aggregate_ptrs";
  Plan pl = make_plan(cfg, report, in->n, in->d, in->base != NULL, rr != NULL);
  Layout lo = make_layout(pl, 0);
  char *ws = NULL;
  ragg_status_t st = get_workspace(ctx, lo.total, &ws);
  if (st != RAGG_SUCCESS) return st;
  cudaStream_t stream = (cudaStream_t)ctx->stream;
  const int64_t n = pl.n, d = pl.d, L = pl.L;
  const ragg_dtype_t dt = in->dtype;
  double *D = (double *)(ws + lo.D), *N = (double *)(ws + lo.N), *alpha = (double *)(ws + lo.alpha);
  int64_t *bulyan_rows = (int64_t *)(ws + lo.bulyan);

  RowSource src{in->base, in->ld, in->rows, NULL, n, NULL, dt};
  if (pl.dev_ptrs) {
    std::vector<const void *> host(in->rows, in->rows + n);
    if (L > n) host.push_back(cfg->cc_center);
    RAGG_CUDA_TRY("ragg_aggregate_ptrs: cudaMemcpyAsync (row pointers)",
                  cudaMemcpyAsync(ws + lo.ptrs, host.data(), sizeof(void *) * host.size(),
                                  cudaMemcpyHostToDevice, stream));
    src.dev = (const void *const *)(ws + lo.ptrs);
  }
  RowSource with_anchor = src;
  if (pl.anchor_row) with_anchor.extra = cfg->cc_center;

  if (report && report->nonfinite) {
    Phase ph("ragg nonfinite count");
    RAGG_CUDA_TRY("ragg_aggregate: non-finite count kernel",
                  launch_count_nonfinite(src, n, d, report->nonfinite, stream));
  }

  if (pl.need_dist) {
    RawSums raw{NULL, 0, pl.Lraw};
    {
      Phase ph("ragg gram");
      if (pl.use_cublas) {
        CudaState *cs = state_of(ctx);
        const char *call = "";
        float *G = (float *)(ws + lo.G);
        cublasStatus_t s = gram_cublas(cs->blas, dt, in->base, n, d, in->ld, G, &call);
        if (s != CUBLAS_STATUS_SUCCESS) return cublas_fail(ctx, fn, call, s);
        raw.parts = (double *)(ws + lo.parts);
        raw.nsplit = 1;
        RAGG_CUDA_TRY("ragg_aggregate: Gram slot sum kernel",
                      launch_sum_gram_slots(G, n, gram_blas_slots(n, d), raw.parts, stream));
      } else {
        double *parts = (double *)(ws + lo.parts);
        RAGG_CUDA_TRY("ragg_aggregate: Gram kernel",
                      launch_gram_tiles(with_anchor, pl.Lraw, d,
                                        cfg->distances == RAGG_DISTANCES_DIRECT, parts, stream));
        raw.parts = parts;
        raw.nsplit = gram_splits(pl.Lraw, d, cfg->distances == RAGG_DISTANCES_DIRECT);
      }
    }
    if (rr) {
      Phase ph("ragg gram sum over ranks");
      RAGG_CUDA_TRY("ragg_aggregate: Gram split sum kernel",
                    launch_reduce_parts(raw.parts, pl.Lraw, raw.nsplit, stream));
      raw.nsplit = 1;
      st = rr->sum(rr->user, raw.parts, (size_t)(pl.Lraw * pl.Lraw));
      if (st != RAGG_SUCCESS) return st;
    }
    Phase ph("ragg finalize");
    RAGG_CUDA_TRY("ragg_aggregate: distance finalisation kernel",
                  launch_finalize(raw, pl.origin_anchor, cfg->distances == RAGG_DISTANCES_DIRECT,
                                  D, N, stream));
  }

  SolveArgs sa;
  ragg_params_from_config(cfg, &sa.p);
  sa.n = n;
  sa.has_anchor = L > n;
  sa.D = pl.need_dist ? D : NULL;
  sa.N = pl.need_dist ? N : NULL;
  sa.alpha = alpha;
  sa.mix = (double *)(ws + lo.mix);
  sa.scratch = (double *)(ws + lo.scratch);
  sa.iscratch = (int64_t *)(ws + lo.iscratch);
  sa.bulyan_rows = bulyan_rows;
  sa.scores = NULL;
  sa.selected = NULL;
  sa.weights = NULL;
  sa.transform_only = 0;

  /* Rows the coordinate pass (or the mean) reads: the inputs, or Y = W X. */
  RowSource crow = src;
  int64_t cn = n;
  if (pl.materialize) {
    Phase ph("ragg clip/mix (pre-step)");
    SolveArgs ta = sa;
    ta.transform_only = 1;
    RAGG_CUDA_TRY("ragg_aggregate: pre-step transform kernel", launch_solve(ta, stream));
    float *Y = (float *)(ws + lo.Y);
    RAGG_CUDA_TRY("ragg_aggregate: pre-step rows kernel",
                  launch_transform_rows(src, n, d, sa.mix, L, pl.nm, Y, stream));
    crow = RowSource{Y, d, NULL, NULL, pl.nm, NULL, RAGG_F32};
    cn = pl.nm;
  }
  void *coord_scratch = ws + lo.coord;

  if (ragg_rule_is_coordinatewise((int)cfg->rule)) {
    Phase ph("ragg coordinate pass");
    int64_t *counts = report && report->scores && !pl.pre ? (int64_t *)(ws + lo.counts) : NULL;
    CoordOp op{(int)cfg->rule, cfg->f, cn - cfg->f};
    RAGG_CUDA_TRY("ragg_aggregate: coordinate kernel",
                  launch_coordinate(crow, cn, d, NULL, op, dt, out, counts, coord_scratch, stream));
    if (report && (report->scores || report->selected))
      RAGG_CUDA_TRY("ragg_aggregate: report kernel",
                    launch_report_fill(n, d, -1, counts, report->scores, report->selected, 0.0,
                                       NULL, stream));
    return RAGG_SUCCESS;
  }

  if (cfg->rule == RAGG_RULE_MEAN && !ragg_plan_needs_distances(cfg, report)) {
    Phase ph("ragg combine");
    RAGG_CUDA_TRY("ragg_aggregate: combination kernel",
                  launch_combine(crow, cn, d, NULL, 1.0 / (double)cn, dt, out, stream));
    if (report && (report->selected || (report->weights && !pl.pre)))
      RAGG_CUDA_TRY("ragg_aggregate: report kernel",
                    launch_report_fill(n, d, 1, NULL, NULL, report->selected, 1.0 / (double)n,
                                       pl.pre ? NULL : report->weights, stream));
    return RAGG_SUCCESS;
  }

  {
    Phase ph("ragg solve");
    sa.scores = report ? report->scores : NULL;
    sa.selected = report ? report->selected : NULL;
    sa.weights = report && cfg->rule != RAGG_RULE_BULYAN ? report->weights : NULL;
    RAGG_CUDA_TRY("ragg_aggregate: solver kernel", launch_solve(sa, stream));
  }

  if (cfg->rule == RAGG_RULE_BULYAN) {
    Phase ph("ragg coordinate pass (Bulyan)");
    int64_t theta = pl.nm - 2 * cfg->f;
    CoordOp op{RAGG_RULE_MEAMED, cfg->f, theta - 2 * cfg->f};
    RAGG_CUDA_TRY("ragg_aggregate: coordinate kernel (Bulyan)",
                  launch_coordinate(crow, theta, d, bulyan_rows, op, dt, out, NULL, coord_scratch,
                                    stream));
    return RAGG_SUCCESS;
  }

  Phase ph("ragg combine");
  RAGG_CUDA_TRY("ragg_aggregate: combination kernel",
                launch_combine(with_anchor, pl.anchor_row ? L : n, d, alpha, 0.0, dt, out, stream));
  return RAGG_SUCCESS;
}

}  // namespace

/* ---- the backend interface (host/internal.h) ---------------------------- */

extern "C" ragg_status_t ragg_cuda_context_init(ragg_context_t *ctx, int device) {
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    cudaGetLastError();
    return ragg_set_error(ctx, RAGG_ERR_NO_DEVICE, "ragg_context_create: no CUDA device (%s)",
                          e != cudaSuccess ? cudaGetErrorString(e) : "count is 0");
  }
  if (device < 0 || device >= count)
    return ragg_set_error(ctx, RAGG_ERR_NO_DEVICE,
                          "ragg_context_create: device = %d, but %d CUDA devices exist", device,
                          count);
  DeviceScope scope(device);
  CudaState *cs = new (std::nothrow) CudaState();
  if (!cs) return RAGG_ERR_OUT_OF_MEMORY;
  cublasStatus_t s = cublasCreate(&cs->blas);
  if (s != CUBLAS_STATUS_SUCCESS) {
    delete cs;
    return cublas_fail(ctx, "ragg_context_create", "cublasCreate", s);
  }
  e = cudaMalloc(&cs->blas_ws, kCublasWorkspaceBytes);
  if (e == cudaSuccess) e = cudaEventCreateWithFlags(&cs->handoff, cudaEventDisableTiming);
  if (e != cudaSuccess) {
    cudaGetLastError();
    cublasDestroy(cs->blas);
    cudaFree(cs->blas_ws);
    delete cs;
    return cuda_fail(ctx, "ragg_context_create", e);
  }
  /* the default math mode: fp32 stays fp32 (no TF32) */
  s = cublasSetMathMode(cs->blas, CUBLAS_DEFAULT_MATH);
  if (s == CUBLAS_STATUS_SUCCESS) s = cublasSetStream(cs->blas, NULL);
  if (s == CUBLAS_STATUS_SUCCESS) s = cublasSetWorkspace(cs->blas, cs->blas_ws, kCublasWorkspaceBytes);
  if (s != CUBLAS_STATUS_SUCCESS) {
    cublasDestroy(cs->blas);
    cudaFree(cs->blas_ws);
    cudaEventDestroy(cs->handoff);
    delete cs;
    return cublas_fail(ctx, "ragg_context_create", "cublasSetWorkspace", s);
  }
  ctx->device = device;
  ctx->stream = NULL;
  ctx->backend_state = cs;
  return RAGG_SUCCESS;
}

extern "C" void ragg_cuda_context_fini(ragg_context_t *ctx) {
  CudaState *cs = state_of(ctx);
  DeviceScope scope(ctx->device);
  /* destruction may wait: the workspace must outlive the calls that use it */
  if (ctx->own_ws) cudaFree(ctx->own_ws);
  ctx->own_ws = NULL;
  if (cs) {
    cublasDestroy(cs->blas);
    cudaFree(cs->blas_ws);
    cudaEventDestroy(cs->handoff);
    delete cs;
  }
  ctx->backend_state = NULL;
}

extern "C" ragg_status_t ragg_cuda_set_stream(ragg_context_t *ctx, void *stream) {
  CudaState *cs = state_of(ctx);
  DeviceScope scope(ctx->device);
  cudaStream_t prev = (cudaStream_t)ctx->stream, next = (cudaStream_t)stream;
  if (prev != next) {
    /* the workspace last used on prev is used on next only after prev's work */
    cudaError_t e = cudaEventRecord(cs->handoff, prev);
    if (e == cudaSuccess) e = cudaStreamWaitEvent(next, cs->handoff, 0);
    if (e != cudaSuccess) return cuda_fail(ctx, "ragg_context_set_stream", e);
  }
  cublasStatus_t s = cublasSetStream(cs->blas, next);
  if (s != CUBLAS_STATUS_SUCCESS) return cublas_fail(ctx, "ragg_context_set_stream", "cublasSetStream", s);
  /* setting the stream resets cuBLAS's workspace to its default pool */
  s = cublasSetWorkspace(cs->blas, cs->blas_ws, kCublasWorkspaceBytes);
  if (s != CUBLAS_STATUS_SUCCESS)
    return cublas_fail(ctx, "ragg_context_set_stream", "cublasSetWorkspace", s);
  ctx->stream = stream;
  return RAGG_SUCCESS;
}

extern "C" size_t ragg_cuda_workspace_size(const ragg_config_t *cfg, ragg_dtype_t dtype, int64_t n,
                                           int64_t d) {
  (void)dtype;
  ragg_report_t all = {n, (double *)1, NULL, NULL, NULL}; /* the largest plan */
  Plan pl = make_plan(cfg, &all, n, d, 0);
  return make_layout(pl, 1).total;
}

extern "C" ragg_status_t ragg_cuda_aggregate(ragg_context_t *ctx, const ragg_config_t *cfg,
                                             const ragg_input_t *in, void *out,
                                             ragg_report_t *report) {
  DeviceScope scope(ctx->device);
  Phase ph(ragg_rule_name(cfg->rule));
  return aggregate(ctx, cfg, in, out, report);
}

extern "C" int64_t ragg_cuda_shard_raw_rows(const ragg_config_t *cfg, int64_t n) {
  Plan pl = make_plan(cfg, NULL, n, 1, 1, 1);
  return pl.need_dist ? pl.Lraw : 0;
}

extern "C" ragg_status_t ragg_cuda_aggregate_shard(ragg_context_t *ctx, const ragg_config_t *cfg,
                                                   const ragg_input_t *in, void *out,
                                                   const ragg_raw_reducer_t *rr) {
  DeviceScope scope(ctx->device);
  Phase ph(ragg_rule_name(cfg->rule));
  return aggregate(ctx, cfg, in, out, NULL, rr);
}
