/* Links against the installed package and checks one aggregate. */
#include <robustagg.h>
#include <stdio.h>

int main(void) {
  const float x[3][2] = {{1.0f, -2.0f}, {3.0f, 5.0f}, {2.0f, 100.0f}};
  float out[2];
  ragg_context_t *ctx = NULL;
  ragg_config_t cfg;
  if (ragg_version() != RAGG_VERSION_CODE) return 1;
  if (ragg_context_create(&ctx, RAGG_BACKEND_CPU, 0) != RAGG_SUCCESS) return 1;
  ragg_config_init(&cfg, RAGG_RULE_MEDIAN, 1);
  ragg_status_t st = ragg_aggregate(ctx, &cfg, RAGG_F32, x, 3, 2, 2, out, NULL);
  ragg_context_destroy(ctx);
  printf("median = (%g, %g)\n", out[0], out[1]);
  return st == RAGG_SUCCESS && out[0] == 2.0f && out[1] == 5.0f ? 0 : 1;
}
