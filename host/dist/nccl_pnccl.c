/*
 * The table of the application's pncclX entry points (nccl_shim.h). NCCL
 * exports every public function twice, ncclX and pncclX (its profiling
 * interface); calling only pncclX never reaches a preloaded ncclX, so the
 * drop-in cannot recurse into itself, and the job keeps the NCCL it ships.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "nccl_shim.h"

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static ragg_pnccl_t g_table;
static int g_ok;
static char g_why[512];

static void *sym(void *handle, const char *name) { return dlsym(handle, name); }

/* Fills t from one handle; returns the first missing required name, or NULL. */
static const char *fill(void *h, ragg_pnccl_t *t) {
  memset(t, 0, sizeof(*t));
#define REQ(field, name)                                     \
  do {                                                       \
    *(void **)(&t->field) = sym(h, name);                    \
    if (!t->field) return name;                              \
  } while (0)
  REQ(GroupStart, "pncclGroupStart");
  REQ(GroupEnd, "pncclGroupEnd");
  REQ(AllReduce, "pncclAllReduce");
  REQ(ReduceScatter, "pncclReduceScatter");
  REQ(CommCount, "pncclCommCount");
  REQ(Send, "pncclSend");
  REQ(Recv, "pncclRecv");
  REQ(AllGather, "pncclAllGather");
  REQ(CommUserRank, "pncclCommUserRank");
  REQ(CommCuDevice, "pncclCommCuDevice");
  REQ(GetErrorString, "pncclGetErrorString");
#undef REQ
  *(void **)(&t->AlltoAll) = sym(h, "pncclAlltoAll");
  *(void **)(&t->GetLastError) = sym(h, "pncclGetLastError");
  return NULL;
}

static void resolve(void) {
  const char *missing = NULL;
  if (dlsym(RTLD_DEFAULT, "pncclGroupStart")) {
    missing = fill(RTLD_DEFAULT, &g_table);
    if (!missing) {
      g_ok = 1;
      return;
    }
  }
  void *h = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char *e = dlerror();
    snprintf(g_why, sizeof(g_why),
             "no NCCL in the process (no pncclGroupStart symbol) and dlopen(\"libnccl.so.2\") failed: %s",
             e ? e : "unknown error");
    return;
  }
  missing = fill(h, &g_table);
  if (missing) {
    snprintf(g_why, sizeof(g_why), "the NCCL found lacks %s", missing);
    return;
  }
  g_ok = 1; /* the handle stays open for the process's lifetime */
}

const ragg_pnccl_t *ragg_pnccl_get(const char **why) {
  pthread_once(&g_once, resolve);
  if (why) *why = g_ok ? "" : g_why;
  return g_ok ? &g_table : NULL;
}
