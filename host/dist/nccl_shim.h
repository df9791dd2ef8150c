/*
 * The NCCL drop-in's decisions, apart from the symbols it exports: which
 * calls it intercepts, its configuration from the environment, and the
 * queueing of grouped calls. The NCCL it talks to is a table of pnccl*
 * entry points (resolved with dlsym in the preload library, a fake in the
 * unit tests), so this file needs neither nccl.h nor a GPU.
 *
 * NCCL's ABI values used here are stable across NCCL 2.x.
 */
#ifndef RAGG_NCCL_SHIM_H
#define RAGG_NCCL_SHIM_H

#include <stddef.h>
#include <stdint.h>

#include "robustagg.h"

enum { SHIM_NCCL_SUCCESS = 0, SHIM_NCCL_SYSTEM_ERROR = 2, SHIM_NCCL_INVALID_USAGE = 5 };
enum { SHIM_NCCL_FLOAT16 = 6, SHIM_NCCL_FLOAT32 = 7, SHIM_NCCL_BFLOAT16 = 9 };
enum { SHIM_NCCL_SUM = 0, SHIM_NCCL_AVG = 4 };

typedef struct ragg_pnccl {
  int (*AllReduce)(const void *send, void *recv, size_t count, int type, int op, void *comm,
                   void *stream);
  int (*ReduceScatter)(const void *send, void *recv, size_t recvcount, int type, int op, void *comm,
                       void *stream);
  int (*GroupStart)(void);
  int (*GroupEnd)(void);
  int (*CommCount)(const void *comm, int *count);
  /* The robust collectives' transport (nccl_transport.c). */
  int (*Send)(const void *buf, size_t count, int type, int peer, void *comm, void *stream);
  int (*Recv)(void *buf, size_t count, int type, int peer, void *comm, void *stream);
  int (*AllGather)(const void *send, void *recv, size_t sendcount, int type, void *comm, void *stream);
  int (*AlltoAll)(const void *send, void *recv, size_t count, int type, void *comm,
                  void *stream); /* NULL where NCCL lacks it (before 2.28) */
  int (*CommUserRank)(const void *comm, int *rank);
  int (*CommCuDevice)(const void *comm, int *device);
  const char *(*GetErrorString)(int result);
  const char *(*GetLastError)(void *comm); /* NULL where NCCL lacks it */
} ragg_pnccl_t;

enum { SHIM_NCCL_UINT8 = 1, SHIM_NCCL_FLOAT64 = 8 };

/* The application's NCCL, resolved once (thread-safe): dlsym(RTLD_DEFAULT,
 * "pncclGroupStart", ...) finds the NCCL already loaded in the global scope
 * (a program linked with libnccl); otherwise dlopen("libnccl.so.2") loads it
 * or returns the one already loaded under that name (PyTorch's, loaded
 * RTLD_LOCAL). Returns NULL, with the reason in *why, when no NCCL is found
 * or one it needs lacks an entry point. Never links libnccl (nccl_pnccl.c). */
const ragg_pnccl_t *ragg_pnccl_get(const char **why);

typedef struct ragg_shim_config {
  int valid;          /* 0: the environment is wrong; intercepted calls fail */
  char error[256];    /* why, when !valid */
  ragg_rule_t rule;   /* RAGG_RULE [trimmed_mean] */
  int64_t f;          /* RAGG_F [1] */
  ragg_mode_t mode;   /* RAGG_MODE: sharded | replicated [sharded] */
  size_t min_bytes;   /* RAGG_MIN_BYTES [1048576] */
  int check;          /* RAGG_CHECK=1 */
  int debug;          /* RAGG_DEBUG=INFO */
} ragg_shim_config_t;

/* Reads the configuration through `get` (getenv, or a test's table). */
void ragg_shim_config_read(ragg_shim_config_t *cfg, const char *(*get)(const char *name));

typedef enum { RAGG_SHIM_ALLREDUCE = 0, RAGG_SHIM_REDUCE_SCATTER = 1 } ragg_shim_kind_t;

typedef struct ragg_shim_call {
  ragg_shim_kind_t kind;
  const void *send;
  void *recv;
  size_t count; /* all-reduce: count; reduce-scatter: recvcount */
  int type, op;
  void *comm, *stream;
  int nranks;
} ragg_shim_call_t;

typedef enum {
  RAGG_SHIM_FORWARD = 0,   /* handed to pnccl* untouched */
  RAGG_SHIM_INTERCEPT = 1, /* runs the robust collective */
  RAGG_SHIM_REFUSE = 2     /* would be intercepted, but the configuration cannot serve it */
} ragg_shim_decision_t;

/* Decides from rank-consistent inputs only (kind, count, type, op, the
 * communicator's size, the configuration), never from addresses or values. */
ragg_shim_decision_t ragg_shim_decide(const ragg_shim_config_t *cfg, const ragg_shim_call_t *call,
                                      const char **why);

/* Runs one intercepted call; returns an ncclResult_t value. */
typedef int (*ragg_shim_robust_fn)(void *user, const ragg_shim_config_t *cfg,
                                   const ragg_shim_call_t *call);

typedef struct ragg_shim {
  ragg_pnccl_t nccl;
  ragg_shim_config_t cfg;
  ragg_shim_robust_fn robust;
  void *robust_user;
  int group_depth;
  ragg_shim_call_t *queue; /* intercepted calls inside a group, in order */
  size_t queued, queue_cap;
  void (*log)(const char *line); /* RAGG_DEBUG=INFO lines; NULL: stderr */
} ragg_shim_t;

/* The four exported entry points' bodies; each returns an ncclResult_t value. */
int ragg_shim_allreduce(ragg_shim_t *s, const void *send, void *recv, size_t count, int type, int op,
                        void *comm, void *stream);
int ragg_shim_reduce_scatter(ragg_shim_t *s, const void *send, void *recv, size_t recvcount,
                             int type, int op, void *comm, void *stream);
int ragg_shim_group_start(ragg_shim_t *s);
int ragg_shim_group_end(ragg_shim_t *s);
void ragg_shim_fini(ragg_shim_t *s);

#endif
