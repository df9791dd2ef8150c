/*
 * Robust all-reduce and reduce-scatter over MPI against MPI's own collective
 * on the same buffers, in one run; nccl-tests style table.
 *
 *   mpirun -np P mpi_bench [min_bytes] [max_bytes] [iters] [rule] [dtype]
 *   defaults: 1 MiB, 64 MiB, 10 iterations, trimmed_mean, f32
 *
 * Time: the slowest rank's time of each iteration (MPI_MAX), median over the
 * iterations after two warm-up calls. algbw = bytes / time; busbw as
 * nccl-tests counts it: all-reduce 2 (P-1)/P algbw, reduce-scatter
 * (P-1)/P algbw with bytes = the full input of a rank. ratio = time / the
 * MPI collective's time on the same row's buffers. f is the largest the rule
 * accepts with n = P inputs, at most (P-1)/2.
 */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "robustagg.h"
#include "robustagg_mpi.h"

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

typedef enum { OP_MPI_ALLREDUCE, OP_MPI_REDUCE_SCATTER, OP_RAGG_SHARDED, OP_RAGG_REPLICATED,
               OP_RAGG_REDUCE_SCATTER } op_t;

static double time_op(op_t op, ragg_context_t *ctx, const ragg_config_t *cfg, ragg_dtype_t dt,
                      const void *send, void *recv, size_t count, int iters, int P, int *failed) {
  double *t = (double *)malloc(sizeof(double) * (size_t)iters);
  MPI_Datatype mt = dt == RAGG_F32 ? MPI_FLOAT : MPI_UINT16_T;
  for (int it = -2; it < iters; ++it) {
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    ragg_status_t st = RAGG_SUCCESS;
    switch (op) {
      case OP_MPI_ALLREDUCE:
        /* 16-bit values summed as MPI_SHORT would be meaningless: time fp32 only */
        MPI_Allreduce(send, recv, (int)count, mt == MPI_FLOAT ? MPI_FLOAT : MPI_SHORT, MPI_SUM,
                      MPI_COMM_WORLD);
        break;
      case OP_MPI_REDUCE_SCATTER:
        MPI_Reduce_scatter_block(send, recv, (int)(count / (size_t)P),
                                 mt == MPI_FLOAT ? MPI_FLOAT : MPI_SHORT, MPI_SUM, MPI_COMM_WORLD);
        break;
      case OP_RAGG_SHARDED:
      case OP_RAGG_REPLICATED:
        st = ragg_allreduce_mpi(ctx, cfg, send, recv, count, dt, RAGG_REDUCE_SUM,
                                op == OP_RAGG_SHARDED ? RAGG_MODE_SHARDED : RAGG_MODE_REPLICATED,
                                MPI_COMM_WORLD);
        break;
      case OP_RAGG_REDUCE_SCATTER:
        st = ragg_reduce_scatter_mpi(ctx, cfg, send, recv, count / (size_t)P, dt, RAGG_REDUCE_SUM,
                                     MPI_COMM_WORLD);
        break;
    }
    if (st != RAGG_SUCCESS && !*failed) {
      fprintf(stderr, "robust collective failed: %s\n", ragg_last_error(ctx));
      *failed = 1;
    }
    double mine = MPI_Wtime() - t0, slowest = 0.0;
    MPI_Allreduce(&mine, &slowest, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    if (it >= 0) t[it] = slowest;
  }
  qsort(t, (size_t)iters, sizeof(double), cmp_double);
  double med = t[iters / 2];
  free(t);
  return med;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int P = 1, r = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &P);
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  size_t minb = argc > 1 ? strtoull(argv[1], NULL, 10) : (size_t)1 << 20;
  size_t maxb = argc > 2 ? strtoull(argv[2], NULL, 10) : (size_t)64 << 20;
  int iters = argc > 3 ? atoi(argv[3]) : 10;
  ragg_rule_t rule = RAGG_RULE_TRIMMED_MEAN;
  if (argc > 4 && ragg_rule_from_name(argv[4], &rule) != RAGG_SUCCESS) {
    if (r == 0) fprintf(stderr, "unknown rule %s\n", argv[4]);
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  ragg_dtype_t dt = argc > 5 && strcmp(argv[5], "bf16") == 0 ? RAGG_BF16
                    : argc > 5 && strcmp(argv[5], "f16") == 0 ? RAGG_F16 : RAGG_F32;
  if (iters < 1) iters = 1;
  int64_t f = (P - 1) / 2;
  while (f > 0 && ragg_rule_min_inputs(rule, f) > P) --f;
  ragg_config_t cfg;
  ragg_config_init(&cfg, rule, f);
  ragg_context_t *ctx = NULL;
  ragg_context_create(&ctx, RAGG_BACKEND_CPU, 0);
  size_t es = dt == RAGG_F32 ? 4 : 2;
  if (r == 0) {
    printf("# robustagg MPI bench: P = %d ranks, rule %s, f = %lld, dtype %s, %d iterations (median)\n",
           P, ragg_rule_name(rule), (long long)f, dt == RAGG_F32 ? "f32" : dt == RAGG_F16 ? "f16" : "bf16",
           iters);
    printf("# %12s %12s %-22s %12s %10s %10s %8s\n", "size(B)", "count", "collective", "time(us)",
           "algbw(GB/s)", "busbw(GB/s)", "ratio");
  }
  for (size_t bytes = minb; bytes <= maxb; bytes *= 4) {
    size_t count = bytes / es / (size_t)P * (size_t)P; /* divisible, for the reduce-scatter rows */
    if (count == 0) continue;
    unsigned char *send = (unsigned char *)malloc(count * es), *recv = (unsigned char *)malloc(count * es);
    for (size_t k = 0; k < count * es; k += 2) {
      uint16_t v = (uint16_t)(0x3C00u + ((k * 2654435761u + (size_t)r * 97u) & 0x3FFu)); /* finite */
      if (dt == RAGG_F32) {
        float x = (float)(v & 0x3FF) / 1024.0f + (float)r;
        if (k % 4 == 0) memcpy(send + k, &x, 4);
      } else {
        memcpy(send + k, &v, 2);
      }
    }
    memset(recv, 0, count * es);
    struct { const char *name; op_t op; int rs; } rows[] = {
        {"MPI_Allreduce", OP_MPI_ALLREDUCE, 0},
        {"robust sharded", OP_RAGG_SHARDED, 0},
        {"robust replicated", OP_RAGG_REPLICATED, 0},
        {"MPI_Reduce_scatter", OP_MPI_REDUCE_SCATTER, 1},
        {"robust reduce-scatter", OP_RAGG_REDUCE_SCATTER, 1}};
    double base[2] = {0, 0};
    for (int i = 0; i < 5; ++i) {
      int failed = 0;
      double t = time_op(rows[i].op, ctx, &cfg, dt, send, recv, count, iters, P, &failed);
      if (rows[i].op == OP_MPI_ALLREDUCE) base[0] = t;
      if (rows[i].op == OP_MPI_REDUCE_SCATTER) base[1] = t;
      double algbw = (double)(count * es) / t / 1e9;
      double busbw = algbw * (rows[i].rs ? 1.0 : 2.0) * (double)(P - 1) / (double)P;
      if (r == 0)
        printf("  %12zu %12zu %-22s %12.1f %10.2f %10.2f %8.2f%s\n", count * es, count, rows[i].name,
               t * 1e6, algbw, busbw, t / base[rows[i].rs], failed ? " FAILED" : "");
    }
    free(send);
    free(recv);
  }
  ragg_context_destroy(ctx);
  MPI_Finalize();
  return 0;
}
