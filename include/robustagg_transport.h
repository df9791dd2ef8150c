/*
 * robustagg over the caller's own collectives: the robust all-reduce and
 * reduce-scatter of robustagg_mpi.h, with the data moved by two callbacks
 * the caller supplies. This is how a framework that already owns its
 * communicator (torch.distributed with gloo, Horovod, UCC, a parameter
 * server's RPC) runs every rule sharded, with an all-reduce's traffic,
 * without MPI or NCCL. Nothing here links a communication library.
 *
 * Conventions, stated once:
 *  - Everything of robustagg_mpi.h holds: collective calls made by every rank
 *    in the same order with the same count, dtype, reduce, mode and
 *    configuration (RAGG_CHECK=1 compares them first and returns
 *    RAGG_ERR_MISMATCH on every rank when they differ); `ctx` is a
 *    CPU-backend context and every buffer host memory; sendbuf and recvbuf
 *    may overlap; RAGG_REDUCE_SUM is P times the aggregate; both modes; the
 *    report identical on every rank; every rank returns the same bits.
 *  - The callbacks move raw bytes (NaN payloads and 16-bit values must pass
 *    untouched); counts and displacements are in bytes, one per rank. Each
 *    callback is a collective: every rank calls it in the same order with
 *    consistent counts, and it returns only once this rank's part is done
 *    (its receive buffer filled and its send buffer free to reuse). A
 *    callback returns 0 on success; anything else ends the call with
 *    RAGG_ERR_TRANSPORT and the value in ragg_last_error(ctx). After a
 *    failure on one rank the others may wait in a callback: the transport's
 *    own error handling (timeouts, aborting the communicator) decides, as it
 *    does for its own collectives.
 *  - The Gram partial sums that every rank must add to the same bits travel
 *    through allgatherv and are added in rank order by the library, so the
 *    transport needs no reduction of its own.
 *  - Arguments that make no sense locally (NULL ops or callbacks, size < 1,
 *    rank outside [0, size)) are refused before any callback runs.
 */
#ifndef ROBUSTAGG_TRANSPORT_H
#define ROBUSTAGG_TRANSPORT_H

#include <stddef.h>

#include "robustagg.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ragg_transport_ops {
  int rank;   /* this rank, in [0, size) */
  int size;   /* P: the number of ranks, which is the number of inputs n */
  void *user; /* passed to every callback */
  /* This rank sends sendcounts[p] bytes at sendbuf + sdispls[p] to rank p and
   * receives recvcounts[p] bytes from rank p at recvbuf + rdispls[p], for
   * every p including itself (MPI_Alltoallv on bytes). */
  int (*alltoallv)(void *user, const void *sendbuf, const size_t *sendcounts, const size_t *sdispls,
                   void *recvbuf, const size_t *recvcounts, const size_t *rdispls);
  /* In place: rank p's block is counts[p] bytes at buf + displs[p]. This
   * rank's block is already there; every other rank's block arrives
   * (MPI_Allgatherv with MPI_IN_PLACE, on bytes). */
  int (*allgatherv)(void *user, void *buf, const size_t *counts, const size_t *displs);
} ragg_transport_ops_t;

/* recvbuf[0..count) = the robust aggregate (MEAN) or P times it (SUM) of the
 * P ranks' sendbuf[0..count). report: NULL, or capacity >= P on every rank. */
RAGG_API ragg_status_t ragg_allreduce_transport(ragg_context_t *ctx, const ragg_config_t *cfg,
                                                const void *sendbuf, void *recvbuf, size_t count,
                                                ragg_dtype_t dtype, ragg_reduce_t reduce,
                                                ragg_mode_t mode, const ragg_transport_ops_t *ops,
                                                ragg_report_t *report);
/* sendbuf holds P * recvcount values; rank r receives in recvbuf the robust
 * aggregate of values [r * recvcount, (r + 1) * recvcount) of every rank's
 * sendbuf (the sharded mode's first two steps). */
RAGG_API ragg_status_t ragg_reduce_scatter_transport(ragg_context_t *ctx, const ragg_config_t *cfg,
                                                     const void *sendbuf, void *recvbuf,
                                                     size_t recvcount, ragg_dtype_t dtype,
                                                     ragg_reduce_t reduce,
                                                     const ragg_transport_ops_t *ops,
                                                     ragg_report_t *report);

#ifdef __cplusplus
}
#endif
#endif /* ROBUSTAGG_TRANSPORT_H */
