/* The classic sign-flip experiment: 32 workers report noisy copies of one
 * gradient of dimension 20 whose first coordinate is +1; 3 of them send -40
 * along that coordinate instead. Each rule's distance to the honest workers'
 * mean is printed beside the plain mean's, with the sign of coordinate 0. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "robustagg.h"

enum { N = 32, D = 20, F = 3 };

static double gauss(unsigned *s) {
  double u1 = ((*s = *s * 1103515245u + 12345u) >> 8) / 16777216.0 + 1e-12;
  double u2 = ((*s = *s * 1103515245u + 12345u) >> 8) / 16777216.0;
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

int main(void) {
  static float x[N][D], out[D];
  double honest[D] = {0};
  unsigned seed = 42;
  for (int i = 0; i < N; ++i)
    for (int k = 0; k < D; ++k) {
      x[i][k] = (float)((k == 0 ? 1.0 : 0.0) + 0.1 * gauss(&seed));
      if (i >= N - F && k == 0) x[i][k] = -40.0f;
      if (i < N - F) honest[k] += x[i][k] / (double)(N - F);
    }
  ragg_context_t *ctx;
  if (ragg_context_create(&ctx, RAGG_BACKEND_CPU, 0) != RAGG_SUCCESS) return 1;
  printf("robustagg %d.%d.%d: n = %d workers, d = %d, f = %d send -40 on coordinate 0\n\n",
         RAGG_VERSION_MAJOR, RAGG_VERSION_MINOR, RAGG_VERSION_PATCH, N, D, F);
  printf("%-14s %22s %14s\n", "rule", "||out - honest mean||", "sign(out[0])");
  int status = 0;
  for (int r = 0; r < RAGG_NUM_RULES; ++r) {
    ragg_config_t cfg;
    ragg_config_init(&cfg, (ragg_rule_t)r, F);
    if (r == RAGG_RULE_CENTERED_CLIP) cfg.tau = 1.0, cfg.iters = 3;
    ragg_status_t st = ragg_aggregate(ctx, &cfg, RAGG_F32, x, N, D, D, out, NULL);
    if (st != RAGG_SUCCESS) {
      printf("%-14s %s\n", ragg_rule_name((ragg_rule_t)r), ragg_last_error(ctx));
      if (st != RAGG_ERR_UNSUPPORTED) status = 1;
      continue;
    }
    double dist = 0.0;
    for (int k = 0; k < D; ++k) dist += (out[k] - honest[k]) * (out[k] - honest[k]);
    printf("%-14s %22.4f %14s\n", ragg_rule_name((ragg_rule_t)r), sqrt(dist), out[0] > 0 ? "+" : "-");
  }
  ragg_context_destroy(ctx);
  return status;
}
