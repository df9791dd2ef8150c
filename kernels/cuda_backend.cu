/* CUDA backend entry points (contexts, streams). The rules' kernels land in
 * this directory; until a rule has one, the call answers RAGG_ERR_UNSUPPORTED. */
#include <cuda_runtime.h>

extern "C" {
#include "internal.h"
}

extern "C" ragg_status_t ragg_cuda_context_init(ragg_context_t *ctx, int device) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    cudaGetLastError();
    return RAGG_ERR_NO_DEVICE;
  }
  if (device < 0 || device >= count) return RAGG_ERR_NO_DEVICE;
  ctx->device = device;
  return RAGG_SUCCESS;
}
extern "C" void ragg_cuda_context_fini(ragg_context_t *ctx) { (void)ctx; }
extern "C" ragg_status_t ragg_cuda_set_stream(ragg_context_t *ctx, void *stream) {
  ctx->stream = stream;
  return RAGG_SUCCESS;
}
extern "C" size_t ragg_cuda_workspace_size(const ragg_config_t *, ragg_dtype_t, int64_t, int64_t) {
  return 0;
}
extern "C" ragg_status_t ragg_cuda_aggregate(ragg_context_t *ctx, const ragg_config_t *cfg,
                                             const ragg_input_t *, void *, ragg_report_t *) {
  return ragg_set_error(ctx, RAGG_ERR_UNSUPPORTED, "ragg_aggregate: rule %s has no CUDA kernel yet",
                        ragg_rule_name(cfg->rule));
}
