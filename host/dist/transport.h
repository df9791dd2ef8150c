/*
 * The transport interface the distributed algorithm runs on: three
 * collectives, each with an engine behind it (MPI for host buffers; NCCL for
 * device buffers). The algorithm (dist.c) is written once against this.
 *
 * Every call is collective over the transport's ranks and must be made by
 * every rank in the same order with rank-consistent counts. Counts and
 * displacements are in elements of `esize` bytes and 64-bit: an engine with
 * 32-bit counts splits its transfers.
 *
 * Buffers live where the engine's data lives: host memory for a host engine
 * (MPI, CPU-backend context), device memory for a device engine (NCCL,
 * CUDA-backend context), whose calls are ordered on `stream` and never wait
 * for the device. A device engine also fills `dev` (memory helpers on the
 * same stream) and `allgatherv_host` (the agreement check's host buffers).
 */
#ifndef RAGG_DIST_TRANSPORT_H
#define RAGG_DIST_TRANSPORT_H

#include <stddef.h>

#include "internal.h"

typedef struct ragg_transport ragg_transport_t;

/* A device engine's memory helpers, ordered on the transport's stream. */
typedef struct ragg_dist_device_ops {
  /* Device memory for this call (released by `release`, stream-ordered). */
  ragg_status_t (*alloc)(ragg_transport_t *t, size_t bytes, void **p);
  void (*release)(ragg_transport_t *t, void *p);
  /* bytes zero bytes at p. */
  ragg_status_t (*zero)(ragg_transport_t *t, void *p, size_t bytes);
  /* Device-to-device copy of `bytes` bytes. */
  ragg_status_t (*copy)(ragg_transport_t *t, void *dst, const void *src, size_t bytes);
  /* buf[k] <- buf[k] * factor for k < len, formed in double and rounded once
   * (float, then 16 bits) as the CPU backend stores its results. */
  ragg_status_t (*scale)(ragg_transport_t *t, ragg_dtype_t dt, void *buf, size_t len, double factor);
} ragg_dist_device_ops_t;

struct ragg_transport {
  int rank, size;
  ragg_context_t *ctx; /* where errors go (ragg_set_error) */
  const char *fn;      /* the public entry point, for messages */
  void *engine;        /* the engine's own state */
  /* Rank r sends scount[p] elements at sbuf + sdispl[p] to every peer p and
   * receives rcount[p] elements from peer p at rbuf + rdispl[p]. */
  ragg_status_t (*alltoallv)(ragg_transport_t *t, const void *sbuf, const size_t *scount,
                             const size_t *sdispl, void *rbuf, const size_t *rcount,
                             const size_t *rdispl, size_t esize);
  /* In place: block p (count[p] elements at buf + displ[p]) is rank p's;
   * this rank's block is already there, every other block arrives. */
  ragg_status_t (*allgatherv)(ragg_transport_t *t, void *buf, const size_t *count,
                              const size_t *displ, size_t esize);
  /* buf[0..n) <- the sum over ranks, the same bits on every rank (the Gram
   * partial sums: every rank must solve the same problem). */
  ragg_status_t (*allreduce_sum_f64)(ragg_transport_t *t, double *buf, size_t n);
  /* Device engines only (NULL for host engines). */
  const ragg_dist_device_ops_t *dev;
  void *stream; /* cudaStream_t of this call */
  /* allgatherv on host memory (the RAGG_CHECK signature); may wait for the stream */
  ragg_status_t (*allgatherv_host)(ragg_transport_t *t, void *buf, const size_t *count,
                                   const size_t *displ, size_t esize);
};

/* One collective call of the public API. */
typedef enum { RAGG_COLL_ALLREDUCE = 0, RAGG_COLL_REDUCE_SCATTER = 1 } ragg_coll_kind_t;

typedef struct ragg_coll {
  ragg_coll_kind_t kind;
  ragg_dtype_t dtype;
  const void *sendbuf;
  void *recvbuf;
  size_t count; /* all-reduce: values per buffer; reduce-scatter: recvcount */
  ragg_reduce_t reduce;
  ragg_mode_t mode;
  ragg_report_t *report;
  int check; /* 1: all-gather the call's signature first (RAGG_CHECK) */
} ragg_coll_t;

/* Runs one robust collective on the transport. Returns the same status on
 * every rank for rank-consistent arguments (and, with check, for any). */
ragg_status_t ragg_dist_run(ragg_context_t *ctx, const ragg_config_t *cfg, const ragg_coll_t *c,
                            ragg_transport_t *t);

/* Device engines: whether the call runs the sharded algorithm (1) or the
 * replicated one (0); see dist.c. Depends only on rank-consistent inputs. */
int ragg_dist_device_sharded(const ragg_coll_t *c);

/* Whether RAGG_CHECK=1 is set in the environment. */
int ragg_dist_check_env(void);

/* Shard p of `count` values split over P ranks: the first count % P shards
 * hold one value more. */
static inline void ragg_shard(size_t count, int P, int p, size_t *off, size_t *len) {
  size_t q = count / (size_t)P, r = count % (size_t)P, pp = (size_t)p;
  *len = q + (pp < r);
  *off = pp * q + (pp < r ? pp : r);
}

/* out[k] = the sum over p of all[p * n + k], added in rank order (p = 0, 1,
 * ...): every rank that holds the same P gathered blocks gets the same bits.
 * The host engines' same-bits all-reduce of the Gram partial sums. */
static inline void ragg_sum_in_rank_order(const double *all, int P, size_t n, double *out) {
  for (size_t k = 0; k < n; ++k) {
    double s = all[k];
    for (int p = 1; p < P; ++p) s += all[(size_t)p * n + k];
    out[k] = s;
  }
}

#endif
