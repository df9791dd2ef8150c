/*
 * The NCCL drop-in's logic (nccl_shim.h): configuration, the intercept or
 * forward decision, and group queueing. Calls NCCL only through the pnccl
 * table, so it never recurses into the exported ncclAllReduce.
 */
#include "nccl_shim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t type_size(int type) {
  switch (type) {
    case SHIM_NCCL_FLOAT32: return 4;
    case SHIM_NCCL_FLOAT16:
    case SHIM_NCCL_BFLOAT16: return 2;
    default: return 0; /* not intercepted */
  }
}

static int parse_u64(const char *s, unsigned long long *v) {
  if (!s || !*s) return 0;
  char *end = NULL;
  *v = strtoull(s, &end, 10);
  return *end == '\0' && s[0] != '-';
}

void ragg_shim_config_read(ragg_shim_config_t *cfg, const char *(*get)(const char *name)) {
  memset(cfg, 0, sizeof(*cfg));
  cfg->valid = 1;
  cfg->rule = RAGG_RULE_TRIMMED_MEAN;
  cfg->f = 1;
  cfg->mode = RAGG_MODE_SHARDED;
  cfg->min_bytes = (size_t)1 << 20;
  const char *v;
  unsigned long long u;
  if ((v = get("RAGG_RULE")) && *v && ragg_rule_from_name(v, &cfg->rule) != RAGG_SUCCESS) {
    cfg->valid = 0;
    snprintf(cfg->error, sizeof(cfg->error), "RAGG_RULE=%s is not a rule name (median, krum, ...)", v);
  }
  if ((v = get("RAGG_F")) && *v) {
    if (parse_u64(v, &u) && u < (1ull << 31))
      cfg->f = (int64_t)u;
    else {
      cfg->valid = 0;
      snprintf(cfg->error, sizeof(cfg->error), "RAGG_F=%s is not a count >= 0", v);
    }
  }
  if ((v = get("RAGG_MODE")) && *v) {
    if (strcmp(v, "sharded") == 0)
      cfg->mode = RAGG_MODE_SHARDED;
    else if (strcmp(v, "replicated") == 0)
      cfg->mode = RAGG_MODE_REPLICATED;
    else {
      cfg->valid = 0;
      snprintf(cfg->error, sizeof(cfg->error), "RAGG_MODE=%s is neither sharded nor replicated", v);
    }
  }
  if ((v = get("RAGG_MIN_BYTES")) && *v) {
    if (parse_u64(v, &u))
      cfg->min_bytes = (size_t)u;
    else {
      cfg->valid = 0;
      snprintf(cfg->error, sizeof(cfg->error), "RAGG_MIN_BYTES=%s is not a byte count", v);
    }
  }
  cfg->check = (v = get("RAGG_CHECK")) && strcmp(v, "1") == 0;
  cfg->debug = (v = get("RAGG_DEBUG")) && strcmp(v, "INFO") == 0;
}

ragg_shim_decision_t ragg_shim_decide(const ragg_shim_config_t *cfg, const ragg_shim_call_t *c,
                                      const char **why) {
  const char *dummy;
  if (!why) why = &dummy;
  size_t es = type_size(c->type);
  if (!es) {
    *why = "dtype not float32/float16/bfloat16";
    return RAGG_SHIM_FORWARD;
  }
  if (c->op != SHIM_NCCL_SUM && c->op != SHIM_NCCL_AVG) {
    *why = "op not sum/avg (PreMulSum, prod, min, max pass through)";
    return RAGG_SHIM_FORWARD;
  }
  size_t values = c->kind == RAGG_SHIM_REDUCE_SCATTER ? c->count * (size_t)c->nranks : c->count;
  if (values * es < cfg->min_bytes) {
    *why = "below RAGG_MIN_BYTES";
    return RAGG_SHIM_FORWARD;
  }
  if (!cfg->valid) {
    *why = cfg->error;
    return RAGG_SHIM_REFUSE;
  }
  if (ragg_rule_min_inputs(cfg->rule, cfg->f) > c->nranks) {
    *why = "too few ranks for RAGG_F with RAGG_RULE";
    return RAGG_SHIM_REFUSE;
  }
  *why = "robust";
  return RAGG_SHIM_INTERCEPT;
}

static void shim_log(ragg_shim_t *s, const char *fmt, const ragg_shim_call_t *c, const char *why) {
  if (!s->cfg.debug) return;
  char line[512];
  snprintf(line, sizeof(line), fmt, c->kind == RAGG_SHIM_ALLREDUCE ? "ncclAllReduce" : "ncclReduceScatter",
           c->count, c->type, c->op, c->nranks, why);
  if (s->log)
    s->log(line);
  else
    fprintf(stderr, "%s\n", line);
}

static int run_or_queue(ragg_shim_t *s, const ragg_shim_call_t *c) {
  const char *why = "";
  ragg_shim_decision_t d = ragg_shim_decide(&s->cfg, c, &why);
  if (d == RAGG_SHIM_FORWARD) {
    shim_log(s, "robustagg INFO %s count=%zu type=%d op=%d nranks=%d: forwarded (%s)", c, why);
    return c->kind == RAGG_SHIM_ALLREDUCE
               ? s->nccl.AllReduce(c->send, c->recv, c->count, c->type, c->op, c->comm, c->stream)
               : s->nccl.ReduceScatter(c->send, c->recv, c->count, c->type, c->op, c->comm, c->stream);
  }
  if (d == RAGG_SHIM_REFUSE) {
    shim_log(s, "robustagg WARN %s count=%zu type=%d op=%d nranks=%d: refused (%s)", c, why);
    return SHIM_NCCL_INVALID_USAGE;
  }
  shim_log(s, "robustagg INFO %s count=%zu type=%d op=%d nranks=%d: %s", c,
           s->group_depth > 0 ? "queued until ncclGroupEnd" : "robust");
  if (s->group_depth == 0) return s->robust(s->robust_user, &s->cfg, c);
  if (s->queued == s->queue_cap) {
    size_t cap = s->queue_cap ? 2 * s->queue_cap : 16;
    ragg_shim_call_t *q = (ragg_shim_call_t *)realloc(s->queue, cap * sizeof(*q));
    if (!q) return SHIM_NCCL_SYSTEM_ERROR;
    s->queue = q;
    s->queue_cap = cap;
  }
  s->queue[s->queued++] = *c;
  return SHIM_NCCL_SUCCESS;
}

static int make_call(ragg_shim_t *s, ragg_shim_kind_t kind, const void *send, void *recv, size_t count,
                     int type, int op, void *comm, void *stream, ragg_shim_call_t *c) {
  c->kind = kind;
  c->send = send;
  c->recv = recv;
  c->count = count;
  c->type = type;
  c->op = op;
  c->comm = comm;
  c->stream = stream;
  c->nranks = 0;
  return s->nccl.CommCount(comm, &c->nranks);
}

int ragg_shim_allreduce(ragg_shim_t *s, const void *send, void *recv, size_t count, int type, int op,
                        void *comm, void *stream) {
  ragg_shim_call_t c;
  int rc = make_call(s, RAGG_SHIM_ALLREDUCE, send, recv, count, type, op, comm, stream, &c);
  return rc != SHIM_NCCL_SUCCESS ? rc : run_or_queue(s, &c);
}

int ragg_shim_reduce_scatter(ragg_shim_t *s, const void *send, void *recv, size_t recvcount, int type,
                             int op, void *comm, void *stream) {
  ragg_shim_call_t c;
  int rc = make_call(s, RAGG_SHIM_REDUCE_SCATTER, send, recv, recvcount, type, op, comm, stream, &c);
  return rc != SHIM_NCCL_SUCCESS ? rc : run_or_queue(s, &c);
}

int ragg_shim_group_start(ragg_shim_t *s) {
  int rc = s->nccl.GroupStart();
  if (rc == SHIM_NCCL_SUCCESS) ++s->group_depth;
  return rc;
}

/* The group's own pncclGroupEnd first (the forwarded calls inside it), then
 * the queued robust calls in their order, once the outermost group closes. */
int ragg_shim_group_end(ragg_shim_t *s) {
  int rc = s->nccl.GroupEnd();
  if (s->group_depth > 0) --s->group_depth;
  if (s->group_depth > 0) return rc;
  for (size_t i = 0; i < s->queued; ++i) {
    int r = rc == SHIM_NCCL_SUCCESS ? s->robust(s->robust_user, &s->cfg, &s->queue[i]) : rc;
    if (rc == SHIM_NCCL_SUCCESS) rc = r;
  }
  s->queued = 0;
  return rc;
}

void ragg_shim_fini(ragg_shim_t *s) {
  free(s->queue);
  s->queue = NULL;
  s->queued = s->queue_cap = 0;
}
