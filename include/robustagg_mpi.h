/*
 * robustagg over MPI: a robust all-reduce and reduce-scatter on host buffers.
 *
 * Conventions, stated once:
 *  - Collective calls: every rank of `comm` makes the same call with the same
 *    count, dtype, reduce, mode and configuration (and passes a report on
 *    every rank or on none). With RAGG_CHECK=1 in the environment of every
 *    rank, each call first all-gathers these and returns RAGG_ERR_MISMATCH on
 *    every rank when they differ; without it a mismatch is undefined (a hang
 *    or a wrong result), as with MPI's own collectives.
 *  - Rank r's buffer is input r: n = P, the size of `comm`. A rule that needs
 *    more inputs than P for cfg->f is refused on every rank alike, before
 *    any communication (RAGG_ERR_TOO_MANY_BYZANTINE).
 *  - `ctx` is a CPU-backend context (ragg_context_create(&ctx,
 *    RAGG_BACKEND_CPU, 0)); every buffer is host memory. sendbuf and recvbuf
 *    may be the same buffer (or overlap in any way): the input is read in
 *    full before the output is written. cfg->cc_center, when set, holds the
 *    full vector (count values) on every rank and must not overlap recvbuf.
 *  - RAGG_REDUCE_MEAN returns the robust aggregate of the P inputs;
 *    RAGG_REDUCE_SUM returns P times it (what a sum all-reduce's caller
 *    expects: DDP divides each gradient by P before it). Thresholds
 *    (clip_norm, tau, nu) apply to the values as passed in.
 *  - Modes: RAGG_MODE_SHARDED (default; the traffic of a ring all-reduce;
 *    trusts every rank to aggregate its shard honestly) and
 *    RAGG_MODE_REPLICATED (all-gathers every buffer and aggregates all of it
 *    on every rank: P/2 times the traffic, no trust in another rank's
 *    aggregation). Every rank returns the same bits in both modes.
 *  - Errors of the MPI library come back as RAGG_ERR_MPI with MPI's error
 *    string in ragg_last_error(ctx); the communicator's error handler is set
 *    to MPI_ERRORS_RETURN for the duration of the call and restored after.
 *  - Environment, read at each call: RAGG_CHECK=1 (agreement check above).
 */
#ifndef ROBUSTAGG_MPI_H
#define ROBUSTAGG_MPI_H

#include <mpi.h>

#include "robustagg.h"

#ifdef __cplusplus
extern "C" {
#endif

/* recvbuf[0..count) = the robust aggregate (MEAN) or P times it (SUM) of the
 * P ranks' sendbuf[0..count). A count not divisible by P is fine. */
RAGG_API ragg_status_t ragg_allreduce_mpi(ragg_context_t *ctx, const ragg_config_t *cfg,
                                          const void *sendbuf, void *recvbuf, size_t count,
                                          ragg_dtype_t dtype, ragg_reduce_t reduce,
                                          ragg_mode_t mode, MPI_Comm comm);
/* The same with the call's report, identical on every rank (capacity >= P). */
RAGG_API ragg_status_t ragg_allreduce_mpi_report(ragg_context_t *ctx, const ragg_config_t *cfg,
                                                 const void *sendbuf, void *recvbuf, size_t count,
                                                 ragg_dtype_t dtype, ragg_reduce_t reduce,
                                                 ragg_mode_t mode, MPI_Comm comm,
                                                 ragg_report_t *report);
/* sendbuf holds P * recvcount values; rank r receives in recvbuf the robust
 * aggregate of values [r * recvcount, (r + 1) * recvcount) of every rank's
 * sendbuf (the sharded mode's first two steps). */
RAGG_API ragg_status_t ragg_reduce_scatter_mpi(ragg_context_t *ctx, const ragg_config_t *cfg,
                                               const void *sendbuf, void *recvbuf,
                                               size_t recvcount, ragg_dtype_t dtype,
                                               ragg_reduce_t reduce, MPI_Comm comm);
RAGG_API ragg_status_t ragg_reduce_scatter_mpi_report(ragg_context_t *ctx,
                                                      const ragg_config_t *cfg,
                                                      const void *sendbuf, void *recvbuf,
                                                      size_t recvcount, ragg_dtype_t dtype,
                                                      ragg_reduce_t reduce, MPI_Comm comm,
                                                      ragg_report_t *report);

#ifdef __cplusplus
}
#endif
#endif /* ROBUSTAGG_MPI_H */
