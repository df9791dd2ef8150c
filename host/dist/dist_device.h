/*
 * Device-memory helpers of the distributed algorithm on CUDA contexts
 * (dist_device.cu): the transport's `dev` operations and the rank-order sum
 * behind a device engine's same-bits all-reduce. Every call is ordered on the
 * transport's stream (t->stream) and never waits for the device.
 */
#ifndef RAGG_DIST_DEVICE_H
#define RAGG_DIST_DEVICE_H

#include "transport.h"

#ifdef __cplusplus
extern "C" {
#endif

/* alloc: cudaMallocAsync; release: cudaFreeAsync; zero: cudaMemsetAsync;
 * copy: cudaMemcpyAsync;
 * scale: one kernel. */
extern const ragg_dist_device_ops_t ragg_dist_cuda_ops;

/* out[k] <- all[k] + all[n + k] + ... + all[(P-1) n + k], added in rank
 * order, so every rank that holds the same `all` derives the same bits. */
ragg_status_t ragg_dist_cuda_sum_ranks(ragg_transport_t *t, const double *all, int P, size_t n,
                                       double *out);

#ifdef __cplusplus
}
#endif
#endif
