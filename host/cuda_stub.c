/* The CUDA entry points of a build without the CUDA backend. */
#include "internal.h"

ragg_status_t ragg_cuda_context_init(ragg_context_t *ctx, int device) {
  (void)ctx;
  (void)device;
  return RAGG_ERR_NO_DEVICE; /* no context exists to carry a message */
}
void ragg_cuda_context_fini(ragg_context_t *ctx) {
  (void)ctx;
}
ragg_status_t ragg_cuda_set_stream(ragg_context_t *ctx, void *stream) {
  (void)stream;
  return ragg_set_error(ctx, RAGG_ERR_NO_DEVICE, "this build of robustagg has no CUDA backend");
}
size_t ragg_cuda_workspace_size(const ragg_config_t *cfg, ragg_dtype_t dtype, int64_t n,
                                int64_t d) {
  (void)cfg;
  (void)dtype;
  (void)n;
  (void)d;
  return 0;
}
ragg_status_t ragg_cuda_aggregate(ragg_context_t *ctx, const ragg_config_t *cfg,
                                  const ragg_input_t *in, void *out, ragg_report_t *report) {
  (void)cfg;
  (void)in;
  (void)out;
  (void)report;
  return ragg_set_error(ctx, RAGG_ERR_NO_DEVICE, "this build of robustagg has no CUDA backend");
}
int64_t ragg_cuda_shard_raw_rows(const ragg_config_t *cfg, int64_t n) {
  (void)cfg;
  (void)n;
  return 0;
}
ragg_status_t ragg_cuda_aggregate_shard(ragg_context_t *ctx, const ragg_config_t *cfg,
                                        const ragg_input_t *in, void *out,
                                        const ragg_raw_reducer_t *rr) {
  (void)cfg;
  (void)in;
  (void)out;
  (void)rr;
  return ragg_set_error(ctx, RAGG_ERR_NO_DEVICE, "this build of robustagg has no CUDA backend");
}
