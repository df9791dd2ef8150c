/*
 * robustagg: Byzantine-robust aggregation of n vectors of dimension d.
 *
 * Conventions, stated once:
 *  - Every entry point returns ragg_status_t. On error nothing is written to
 *    `out` or to the report, and ragg_last_error(ctx) names the argument, the
 *    value and the bound it broke. The library never prints, aborts or exits.
 *  - Inputs are never modified. The output dtype equals the input dtype;
 *    fp16 and bf16 inputs are accumulated in at least fp32 (the CPU backend
 *    uses double), every average is formed in double and rounded once.
 *  - Sizes and indices are 64-bit.
 *  - CPU backend: every pointer is a host pointer. CUDA backend: `x`,
 *    `rows[i]`, `out`, `cc_center` and the report's arrays are device (or
 *    managed) pointers, the call is ordered on the context's stream and never
 *    waits for the device; `rows` itself (the array of n pointers) is a host
 *    array on both backends.
 *  - A context is not thread-safe: use one context per host thread.
 */
#ifndef ROBUSTAGG_H
#define ROBUSTAGG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RAGG_VERSION_MAJOR 0
#define RAGG_VERSION_MINOR 1
#define RAGG_VERSION_PATCH 0
/* 10000 * major + 100 * minor + patch, as ragg_version() returns it. */
#define RAGG_VERSION_CODE \
  (RAGG_VERSION_MAJOR * 10000 + RAGG_VERSION_MINOR * 100 + RAGG_VERSION_PATCH)

#if defined(_WIN32)
#define RAGG_API
#else
#define RAGG_API __attribute__((visibility("default")))
#endif

/* Values are pinned and never reused. */
typedef enum {
  RAGG_SUCCESS = 0,
  RAGG_ERR_INVALID_ARGUMENT = 1,
  RAGG_ERR_TOO_MANY_BYZANTINE = 2,
  RAGG_ERR_UNSUPPORTED = 3,
  RAGG_ERR_OUT_OF_MEMORY = 4,
  RAGG_ERR_NO_DEVICE = 5,
  RAGG_ERR_CUDA = 6,
  RAGG_ERR_CUBLAS = 7,
  RAGG_ERR_NCCL = 8,
  RAGG_ERR_MPI = 9,
  RAGG_ERR_INTERNAL = 10,
  RAGG_ERR_MISMATCH = 11,
  RAGG_ERR_TRANSPORT = 12 /* a caller-supplied transport callback failed (robustagg_transport.h) */
} ragg_status_t;

typedef enum {
  RAGG_RULE_MEAN = 0,
  RAGG_RULE_MEDIAN = 1,
  RAGG_RULE_TRIMMED_MEAN = 2,
  RAGG_RULE_MEAMED = 3,
  RAGG_RULE_KRUM = 4,
  RAGG_RULE_MULTI_KRUM = 5,
  RAGG_RULE_BULYAN = 6,
  RAGG_RULE_GEOMED = 7,
  RAGG_RULE_BRUTE = 8,
  RAGG_RULE_CENTERED_CLIP = 9,
  RAGG_RULE_MONNA = 10,
  RAGG_RULE_CAF = 11,
  RAGG_RULE_SMEA = 12
} ragg_rule_t;
#define RAGG_NUM_RULES 13

typedef enum { RAGG_MIX_NONE = 0, RAGG_MIX_NNM = 1, RAGG_MIX_BUCKETING = 2 } ragg_mix_t;
typedef enum { RAGG_F32 = 0, RAGG_F16 = 1, RAGG_BF16 = 2 } ragg_dtype_t;
typedef enum { RAGG_BACKEND_CPU = 0, RAGG_BACKEND_CUDA = 1 } ragg_backend_t;
/* How Gram-space rules form D (README, "Accuracy of Gram distances"): GRAM
 * from G = X X^T accumulated in double on the CPU; DIRECT from differences,
 * no cancellation; GRAM_FP32 from G with fp32 multiply-adds in runs of 16
 * products per lane added in double (from 17 rows on the CPU, 1.3-1.5x
 * faster there, fp32's accuracy; up to 16 rows, and on the CUDA backend, as
 * GRAM). */
typedef enum {
  RAGG_DISTANCES_GRAM = 0,
  RAGG_DISTANCES_DIRECT = 1,
  RAGG_DISTANCES_GRAM_FP32 = 2
} ragg_distances_t;
typedef enum { RAGG_MODE_SHARDED = 0, RAGG_MODE_REPLICATED = 1 } ragg_mode_t;
typedef enum { RAGG_REDUCE_MEAN = 0, RAGG_REDUCE_SUM = 1 } ragg_reduce_t;

typedef struct ragg_context ragg_context_t; /* opaque */

/* Filled by ragg_config_init; set fields after it. Defaults in brackets. */
typedef struct ragg_config {
  size_t struct_size; /* sizeof(ragg_config_t); set by ragg_config_init */
  ragg_rule_t rule;
  int64_t f;             /* declared Byzantine inputs, >= 0 */
  int64_t m;             /* Multi-Krum: inputs averaged, 1..n-f; 0 = n-f [0] */
  double clip_norm;      /* > 0: norm clipping pre-step; 0: off [0] */
  double tau;            /* centered clipping radius, > 0 [100] */
  int64_t iters;         /* centered clipping iterations, >= 1 [1] */
  const void *cc_center; /* centered clipping v_0: d values, same dtype and memory as x; NULL: 0 */
  double nu;             /* geometric median smoothing, > 0 [1e-8] */
  int64_t max_iters;     /* geometric median iteration cap, >= 1 [1000] */
  double tol;            /* geometric median: relative objective change to stop, >= 0 [1e-12] */
  int64_t brute_limit;   /* Brute, SMEA: most subsets C(n,f) enumerated, >= 1 [1000000] */
  ragg_distances_t distances; /* [RAGG_DISTANCES_GRAM] */
  int64_t trusted;            /* MoNNA: index of the trusted input, 0..n-1 [0] */
  int32_t adaptive_clip;      /* 1: ARC pre-step (not with clip_norm > 0) [0] */
  ragg_mix_t mix;             /* NNM or bucketing pre-step [RAGG_MIX_NONE] */
  int64_t bucket_size;        /* bucketing: s >= 1 [2] */
  uint64_t seed;              /* bucketing permutation; the same on every rank [0] */
} ragg_config_t;

RAGG_API void ragg_config_init(ragg_config_t *cfg, ragg_rule_t rule, int64_t f);

/* Per-call audit trail. NULL members are skipped; on CUDA all four arrays
 * live in device memory. */
typedef struct ragg_report {
  int64_t capacity;   /* length of each array below; >= n */
  double *scores;     /* Krum family: Krum score (Bulyan: first round); geomed, CC, mean, Brute,
                         MoNNA, CAF, SMEA: ||x_i - output||; coordinate-wise: fraction of
                         coordinates at which x_i lay below the (f+1)-th smallest or above the
                         (f+1)-th largest value */
  double *weights;    /* Gram-space rules and mean: alpha_i of the output; coordinate-wise
                         rules and Bulyan: unwritten */
  int32_t *selected;  /* 1: contributed (alpha_i != 0, or in Bulyan's S); 0: excluded;
                         coordinate-wise rules: -1 */
  int64_t *nonfinite; /* NaN/Inf values in each input */
} ragg_report_t;

RAGG_API ragg_status_t ragg_context_create(ragg_context_t **ctx, ragg_backend_t backend,
                                           int device);
RAGG_API void ragg_context_destroy(ragg_context_t *ctx); /* NULL is fine */
/* CUDA backend: the cudaStream_t to order calls on (NULL: the legacy default stream). */
RAGG_API ragg_status_t ragg_context_set_stream(ragg_context_t *ctx, void *cuda_stream);
/* Caller-owned workspace of at least ragg_workspace_size bytes (CPU: host memory;
 * CUDA: device memory). ptr = NULL, bytes = 0 returns to the context's own. */
RAGG_API ragg_status_t ragg_context_set_workspace(ragg_context_t *ctx, void *ptr, size_t bytes);
RAGG_API ragg_status_t ragg_workspace_size(ragg_context_t *ctx, const ragg_config_t *cfg,
                                           ragg_dtype_t dtype, int64_t n, int64_t d, size_t *bytes);
/* x: n rows of d values, row i at x + i * ld elements (ld >= d). */
RAGG_API ragg_status_t ragg_aggregate(ragg_context_t *ctx, const ragg_config_t *cfg,
                                      ragg_dtype_t dtype, const void *x, int64_t n, int64_t d,
                                      int64_t ld, void *out, ragg_report_t *report);
/* rows: host array of n pointers to d values each. */
RAGG_API ragg_status_t ragg_aggregate_ptrs(ragg_context_t *ctx, const ragg_config_t *cfg,
                                           ragg_dtype_t dtype, const void *const *rows, int64_t n,
                                           int64_t d, void *out, ragg_report_t *report);

RAGG_API const char *ragg_status_string(ragg_status_t s);
RAGG_API const char *ragg_last_error(const ragg_context_t *ctx); /* "" after success */
RAGG_API const char *ragg_rule_name(
    ragg_rule_t r); /* "krum", "trimmed_mean", ...; NULL if unknown */
RAGG_API ragg_status_t ragg_rule_from_name(const char *name, ragg_rule_t *r);
RAGG_API int ragg_version(void); /* RAGG_VERSION_CODE of the library loaded */
/* Smallest n the rule accepts for f (before bucketing). */
RAGG_API int64_t ragg_rule_min_inputs(ragg_rule_t r, int64_t f);

#ifdef __cplusplus
}
#endif
#endif /* ROBUSTAGG_H */
