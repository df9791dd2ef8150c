/* Links against the installed package and checks one aggregate, and one
 * robust all-reduce over a caller's transport (a single rank, whose
 * callbacks copy its own block). */
#include <robustagg.h>
#include <robustagg_transport.h>
#include <stdio.h>
#include <string.h>

static int self_alltoallv(void *user, const void *sb, const size_t *sc, const size_t *sd, void *rb,
                          const size_t *rc, const size_t *rd) {
  (void)user;
  if (sc[0] != rc[0]) return 1;
  memmove((char *)rb + rd[0], (const char *)sb + sd[0], sc[0]);
  return 0;
}

static int self_allgatherv(void *user, void *buf, const size_t *counts, const size_t *displs) {
  (void)user, (void)buf, (void)counts, (void)displs; /* one rank: its block is there */
  return 0;
}

int main(void) {
  const float x[3][2] = {{1.0f, -2.0f}, {3.0f, 5.0f}, {2.0f, 100.0f}};
  float out[2];
  ragg_context_t *ctx = NULL;
  ragg_config_t cfg;
  if (ragg_version() != RAGG_VERSION_CODE) return 1;
  if (ragg_context_create(&ctx, RAGG_BACKEND_CPU, 0) != RAGG_SUCCESS) return 1;
  ragg_config_init(&cfg, RAGG_RULE_MEDIAN, 1);
  ragg_status_t st = ragg_aggregate(ctx, &cfg, RAGG_F32, x, 3, 2, 2, out, NULL);
  printf("median = (%g, %g)\n", out[0], out[1]);
  int ok = st == RAGG_SUCCESS && out[0] == 2.0f && out[1] == 5.0f;

  ragg_transport_ops_t ops = {0, 1, NULL, self_alltoallv, self_allgatherv};
  float g[3] = {0.5f, -1.0f, 4.0f}, r[3];
  ragg_config_init(&cfg, RAGG_RULE_MEAN, 0);
  st = ragg_allreduce_transport(ctx, &cfg, g, r, 3, RAGG_F32, RAGG_REDUCE_SUM, RAGG_MODE_SHARDED,
                                &ops, NULL);
  printf("all-reduce over one rank = (%g, %g, %g): %s\n", r[0], r[1], r[2], ragg_last_error(ctx));
  ok = ok && st == RAGG_SUCCESS && memcmp(g, r, sizeof(g)) == 0;
  ragg_context_destroy(ctx);
  return ok ? 0 : 1;
}
