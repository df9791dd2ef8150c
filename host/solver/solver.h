/*
 * The n x n solvers of the Gram-space rules, written once.
 *
 * Everything here works on squared distances D between "points" (the
 * inputs, optionally one extra anchor point: centered clipping's v_0) and on
 * squared norms N, in double, using only + - * / and sqrt in a fixed order.
 * The CPU backend compiles these files as C with -ffp-contract=off; the CUDA
 * backend compiles the same files as device code with --fmad=false, so every
 * backend and every rank derives bit-identical weights from bit-identical D.
 *
 * No allocation: the caller passes scratch of ragg_solver_scratch_doubles()
 * doubles and ragg_solver_scratch_ints() int64 values. (The CPU backend's
 * parallel subset search for Brute and SMEA allocates per-thread scratch,
 * and runs the same scan in one thread where that fails.)
 */
#ifndef RAGG_SOLVER_H
#define RAGG_SOLVER_H

#include <stdint.h>
#if !defined(__CUDACC__)
#include <math.h>
#endif

/* A translation unit may define RAGG_HD itself: the CUDA solver kernel
 * compiles these files as device-only code. */
#if !defined(RAGG_HD)
#if defined(__CUDACC__)
#define RAGG_HD __host__ __device__
#else
#define RAGG_HD
#endif
#endif

/* RAGG_SOLVER_NO_EXTERN_C: a C++ translation unit that compiles the solver
 * inside a namespace of its own (the CUDA solver kernel) keeps C++ linkage,
 * so its symbols never clash with the C build's. */
#if defined(__cplusplus) && !defined(RAGG_SOLVER_NO_EXTERN_C)
extern "C" {
#endif

/* Which family a rule belongs to (values of ragg_rule_t). */
RAGG_HD int ragg_rule_is_coordinatewise(int rule); /* median, trimmed mean, MeaMed */
RAGG_HD int ragg_rule_needs_distances(int rule);   /* Gram-space rules and Bulyan */

/* splitmix64 as DESIGN §2 specifies it (bucketing permutation). */
RAGG_HD uint64_t ragg_splitmix64_next(uint64_t *state);

typedef struct ragg_solve_params {
  int rule;
  int64_t f, m, iters, max_iters, brute_limit, trusted, bucket_size;
  double tau, nu, tol, clip_norm;
  int adaptive_clip, mix;
  uint64_t seed;
} ragg_solve_params_t;

typedef struct ragg_solve_io {
  int64_t n;       /* inputs */
  int has_anchor;  /* 1: point n is the anchor (centered clipping's v_0) */
  const double *D; /* (n+has_anchor)^2 squared distances, +Inf for excluded rows */
  const double *N; /* n + has_anchor squared norms (distance to the origin) */
  /* outputs */
  double *alpha;        /* n + has_anchor: out = sum alpha_j x_j (+ alpha_n v_0) */
  double *scores;       /* n: the report's scores over the original inputs */
  int32_t *selected;    /* n: the report's selection */
  int64_t *bulyan_rows; /* Bulyan: theta selected (transformed) rows, ascending */
  int64_t n_mixed;      /* rows after mixing (n' ); set by ragg_solve */
  double *mix;          /* n' x n transform W (rows: mixed points; cols: inputs) */
  double *scratch;
  int64_t *iscratch;
  /* 1: the work ragg_presolve_rows describes is done (the CUDA backend runs
   * it in parallel ahead of ragg_solve); 0 on the CPU. */
  int presolved;
} ragg_solve_io_t;

RAGG_HD int64_t ragg_solver_scratch_doubles(int64_t n);
RAGG_HD int64_t ragg_solver_scratch_ints(int64_t n);
/* Rows after the mixing pre-step: n, or ceil(n / bucket_size). */
RAGG_HD int64_t ragg_mixed_rows(const ragg_solve_params_t *p, int64_t n);
/* Whether a pre-step is active (then `mix` holds the transform). */
RAGG_HD int ragg_has_prestep(const ragg_solve_params_t *p);

/* Builds the pre-step transform W (n' x n) from D and N. */
RAGG_HD void ragg_build_transform(const ragg_solve_params_t *p, ragg_solve_io_t *io);
/* alpha = W^T beta over the original inputs (and the anchor) for weights beta
 * over the np transformed points (alpha = beta without a pre-step). */
RAGG_HD void ragg_weights_over_inputs(const ragg_solve_params_t *p, ragg_solve_io_t *io,
                                      const double *beta, int64_t np);
/* Runs the rule; returns 0, or 1 when the rule met no finite candidate. */
RAGG_HD int ragg_solve(const ragg_solve_params_t *p, ragg_solve_io_t *io);
/* Work the CUDA backend runs in parallel ahead of ragg_solve, which then
 * skips it (io->presolved set): without a pre-step, n rows for Krum and
 * Multi-Krum (each row's score, from ragg_presolve_row or a kernel with the
 * same bits; Multi-Krum also the rows in ascending (score, index) order,
 * excluded rows' scores +Inf, at the start of iscratch), Bulyan (its whole
 * selection: ragg_presolve_row sorts row i's distances, then the
 * ragg_bulyan_ pieces run its rounds) and the geometric median (its weights,
 * from the ragg_geomed_ pieces); else 0. ragg_presolve_row(p, io, i, tmp)
 * writes only row i's part of the scratch; rows may run in any order or at
 * once. tmp: n doubles of the caller's for the row's work, or NULL (row i's
 * own part of the scratch). */
RAGG_HD int64_t ragg_presolve_rows(const ragg_solve_params_t *p, int64_t n);
RAGG_HD void ragg_presolve_row(const ragg_solve_params_t *p, ragg_solve_io_t *io, int64_t i,
                               double *tmp);

/* What one rule sees: n points (the mixed inputs), the anchor at index n when
 * has_anchor, distances with leading dimension ld = n + has_anchor. */
typedef struct ragg_rule_io {
  int64_t n, ld;
  int has_anchor;
  const double *D, *N;
  double *beta;         /* ld: output weights over the points */
  double *krum_scores;  /* n: Krum family scores (Bulyan: first round) */
  int64_t *bulyan_rows; /* Bulyan: theta rows */
  double *scratch;      /* 3 ld^2 + 8 ld doubles */
  int64_t *iscratch;    /* 2 ld ints */
  int presolved;        /* ragg_presolve_rows' work is done (see there) */
} ragg_rule_io_t;

RAGG_HD void ragg_solve_krum(const ragg_solve_params_t *p, ragg_rule_io_t *io);
RAGG_HD void ragg_solve_multi_krum(const ragg_solve_params_t *p, ragg_rule_io_t *io);
RAGG_HD void ragg_solve_bulyan(const ragg_solve_params_t *p, ragg_rule_io_t *io);
RAGG_HD void ragg_solve_geomed(const ragg_solve_params_t *p, ragg_rule_io_t *io);
RAGG_HD void ragg_solve_brute(const ragg_solve_params_t *p, ragg_rule_io_t *io);
RAGG_HD void ragg_solve_centered_clip(const ragg_solve_params_t *p, ragg_rule_io_t *io);
RAGG_HD void ragg_solve_monna(const ragg_solve_params_t *p, ragg_rule_io_t *io);
RAGG_HD void ragg_solve_caf(const ragg_solve_params_t *p, ragg_rule_io_t *io);
RAGG_HD void ragg_solve_smea(const ragg_solve_params_t *p, ragg_rule_io_t *io);
/* Row i's share of the Krum family's work that needs no other row's result:
 * its score (Krum, Multi-Krum), its sorted distance list (Bulyan). */
RAGG_HD void ragg_krum_prework_row(const ragg_solve_params_t *p, ragg_rule_io_t *io, int64_t i,
                                   double *tmp);
RAGG_HD void ragg_bulyan_prework_row(ragg_rule_io_t *io, int64_t i);
/* Bulyan's rounds in pieces (ragg_solve_bulyan runs them in order): begin,
 * then for each round every row's score (independent of one another), then
 * the round's pick (after all of them). */
RAGG_HD void ragg_bulyan_begin(ragg_rule_io_t *io);
RAGG_HD void ragg_bulyan_row_score(const ragg_solve_params_t *p, ragg_rule_io_t *io, int64_t round,
                                   int64_t i);
RAGG_HD void ragg_bulyan_pick(const ragg_solve_params_t *p, ragg_rule_io_t *io, int64_t round);
/* The geometric median in pieces (ragg_solve_geomed runs them): medoid rows,
 * start, Db rows, objective, then until reweight returns 0, max_iters or
 * convergence: Db rows, objective. Row pieces are independent of one another. */
RAGG_HD void ragg_geomed_medoid_row(ragg_rule_io_t *io, int64_t i);
RAGG_HD void ragg_geomed_start(ragg_rule_io_t *io);
RAGG_HD void ragg_geomed_db_row(ragg_rule_io_t *io, int64_t i);
RAGG_HD double ragg_geomed_objective(ragg_rule_io_t *io);
RAGG_HD int ragg_geomed_reweight(const ragg_solve_params_t *p, ragg_rule_io_t *io);
RAGG_HD int ragg_geomed_converged(const ragg_solve_params_t *p, double F, double F2);
/* The rule's view ragg_solve gives a rule without a pre-step. */
RAGG_HD void ragg_presolve_rule_io(ragg_solve_io_t *io, ragg_rule_io_t *rio);
/* Next combination of k out of n in lexicographic order; 0 when done. */
RAGG_HD int ragg_next_combination(int64_t *c, int64_t k, int64_t n);
/* Binomial coefficient, saturating at INT64_MAX. */
RAGG_HD int64_t ragg_binomial(int64_t n, int64_t k);
/* The combination of k out of n with lexicographic rank r (0: 0 .. k-1). */
RAGG_HD void ragg_unrank_combination(int64_t r, int64_t k, int64_t n, int64_t *c);

/* A subset search's scan (Brute, SMEA): from the combination c holds on entry
 * (k out of io->n), `count` combinations in lexicographic order; best <- the
 * first with the smallest value that is not NaN, returned (NaN when every
 * value was), *first_nan <- whether the first one's value was NaN. A whole
 * search from rank 0 picks the first combination if its value is NaN (no
 * value compares below a NaN), else the scan's best. */
typedef double (*ragg_subset_scan_fn)(const ragg_rule_io_t *io, int64_t k, int64_t count,
                                      int64_t *c, int64_t *best, double *scratch, int *first_nan);
#if defined(_OPENMP) && !defined(__CUDACC__)
/* The CPU backend's search over all `total` combinations, split into ranges
 * of ranks scanned on OpenMP threads and combined in rank order, so the
 * subset is the one a single scan finds. `work` estimates the operations;
 * below a threshold, with one thread, or where its allocations (the ranges'
 * results, scratch_doubles per thread) fail, it returns 0 and leaves the
 * search to the caller's single scan. */
int ragg_subsets_parallel(const ragg_rule_io_t *io, int64_t k, int64_t total, double work,
                          ragg_subset_scan_fn scan, int64_t scratch_doubles, int64_t *best);
#define RAGG_SUBSETS_PARALLEL(...) ragg_subsets_parallel(__VA_ARGS__)
#else
#define RAGG_SUBSETS_PARALLEL(...) 0
#endif

/* Put before a loop over i < n whose iterations each write only row i's
 * results (a variable n must be in scope): the CPU build runs it on its
 * OpenMP threads from 256 rows on, with the bits of the serial loop; the
 * device build runs it as written. */
#if defined(_OPENMP) && !defined(__CUDACC__)
#define RAGG_PARALLEL_ROWS _Pragma("omp parallel for if (n >= 256) schedule(static)")
#else
#define RAGG_PARALLEL_ROWS
#endif

/* Shared pieces the rules use. */
RAGG_HD void ragg_sort_doubles(double *v, int64_t n); /* ascending, NaN last */
RAGG_HD void ragg_argsort_pairs(const double *key, int64_t *idx, int64_t n); /* by (key, idx) */
/* key and val (n each) sorted together by (key, val), NaN keys last. */
RAGG_HD void ragg_sort_pairs(double *key, double *val, int64_t n);
RAGG_HD double ragg_affine_sqdist(const double *D, const double *N, int64_t ld, const double *c,
                                  int64_t np);
RAGG_HD double ragg_top_eigenvalue(double *A, int64_t n, double *vec, double *work);
RAGG_HD int ragg_is_excluded_norm(double n2);

#if defined(__cplusplus) && !defined(RAGG_SOLVER_NO_EXTERN_C)
}
#endif
#endif
