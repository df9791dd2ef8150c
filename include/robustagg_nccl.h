/*
 * robustagg over NCCL: a robust all-reduce and reduce-scatter on device
 * buffers (this header uses NCCL and CUDA types, as its name says).
 *
 * Conventions, stated once:
 *  - Collective calls with NCCL's rules: every rank of `comm` makes the same
 *    call (count, type, reduce, mode, configuration) in the same order; with
 *    RAGG_CHECK=1 each call first all-gathers these and returns
 *    RAGG_ERR_MISMATCH on every rank when they differ.
 *  - `ctx` is a CUDA-backend context on the communicator's device. Buffers are
 *    device memory; the call is ordered on `stream` (which overrides the
 *    context's stream for this call) and never waits for the device.
 *    sendbuf == recvbuf is allowed (reduce-scatter in place, as in NCCL:
 *    recvbuf == sendbuf + rank * recvcount).
 *  - type: ncclFloat32, ncclFloat16 or ncclBfloat16. RAGG_REDUCE_SUM returns
 *    P times the robust aggregate of the P ranks' buffers (ncclSum's
 *    meaning), RAGG_REDUCE_MEAN the aggregate (ncclAvg's).
 *  - Modes and traffic as in robustagg_mpi.h, with one difference: a call
 *    with a report runs the replicated algorithm (all-gather, then
 *    ragg_aggregate on every rank: P/2 times the traffic) whatever `mode`
 *    says; the result is the same aggregate. In the sharded mode, calls that
 *    read distances (Gram-space rules, Bulyan, pre-steps) add each shard's
 *    Gram sums over the ranks as the MPI engine does, so they match one
 *    ragg_aggregate call within rounding, with the same bits on every rank.
 *  - Errors of NCCL come back as RAGG_ERR_NCCL with ncclGetErrorString's
 *    text (and ncclGetLastError's) in ragg_last_error(ctx).
 *  - NCCL is found at run time (the pnccl* symbols already in the process,
 *    else dlopen("libnccl.so.2")); the library never links libnccl.
 *    RAGG_CHECK=1 waits for the stream once per call (the signature's host
 *    copy); nothing else does.
 */
#ifndef ROBUSTAGG_NCCL_H
#define ROBUSTAGG_NCCL_H

#include <cuda_runtime.h>
#include <nccl.h>

#include "robustagg.h"

#ifdef __cplusplus
extern "C" {
#endif

RAGG_API ragg_status_t ragg_allreduce_nccl(ragg_context_t *ctx, const ragg_config_t *cfg,
                                           const void *sendbuf, void *recvbuf, size_t count,
                                           ncclDataType_t type, ragg_reduce_t reduce,
                                           ragg_mode_t mode, ncclComm_t comm, cudaStream_t stream);
/* The same with the report (device memory, capacity >= P), identical on every rank. */
RAGG_API ragg_status_t ragg_allreduce_nccl_report(ragg_context_t *ctx, const ragg_config_t *cfg,
                                                  const void *sendbuf, void *recvbuf, size_t count,
                                                  ncclDataType_t type, ragg_reduce_t reduce,
                                                  ragg_mode_t mode, ncclComm_t comm,
                                                  cudaStream_t stream, ragg_report_t *report);
/* sendbuf holds P * recvcount values; rank r receives the robust aggregate of
 * values [r * recvcount, (r + 1) * recvcount) of every rank's sendbuf. */
RAGG_API ragg_status_t ragg_reduce_scatter_nccl(ragg_context_t *ctx, const ragg_config_t *cfg,
                                                const void *sendbuf, void *recvbuf,
                                                size_t recvcount, ncclDataType_t type,
                                                ragg_reduce_t reduce, ncclComm_t comm,
                                                cudaStream_t stream);
/* The same with the report (device memory, capacity >= P), identical on every rank. */
RAGG_API ragg_status_t ragg_reduce_scatter_nccl_report(ragg_context_t *ctx, const ragg_config_t *cfg,
                                                       const void *sendbuf, void *recvbuf,
                                                       size_t recvcount, ncclDataType_t type,
                                                       ragg_reduce_t reduce, ncclComm_t comm,
                                                       cudaStream_t stream, ragg_report_t *report);

#ifdef __cplusplus
}
#endif
#endif /* ROBUSTAGG_NCCL_H */
