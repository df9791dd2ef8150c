// Allocation failure: every allocation the library makes fails in turn, one
// per call. The call must come back with RAGG_ERR_OUT_OF_MEMORY and a message
// (or RAGG_SUCCESS and the right bits, where it could do without), never
// crash or hang, and leave its context usable: the next call on the same
// context gives the bits an undisturbed call gives.
//
// This binary interposes malloc, calloc and realloc. Only calls made from
// librobustagg's own code are failed, told apart by the return address, so
// the C++ runtime, OpenMP's runtime and the test itself allocate as usual.
// Not built with the sanitizers, which interpose the same functions.
#include <dlfcn.h>
#include <link.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <functional>

#include "robustagg_transport.h"
#include "test_helpers.hh"

extern "C" {
void *__libc_malloc(size_t);
void *__libc_calloc(size_t, size_t);
void *__libc_realloc(void *, size_t);
}

namespace {
// >= 0: armed; the library allocation that finds it at 0 fails, the rest pass
std::atomic<long> g_countdown{-1};
std::atomic<long> g_failures{0};
uintptr_t g_lo = 0, g_hi = 0;  // librobustagg's mapped segments

bool fail_now(const void *caller) {
  if (g_countdown.load(std::memory_order_relaxed) < 0) return false;
  const uintptr_t a = (uintptr_t)caller;
  if (a < g_lo || a >= g_hi) return false;
  if (g_countdown.fetch_sub(1) != 0) return false;
  g_failures.fetch_add(1);
  return true;
}

int find_library(struct dl_phdr_info *info, size_t, void *target) {
  uintptr_t lo = UINTPTR_MAX, hi = 0;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr) &p = info->dlpi_phdr[i];
    if (p.p_type != PT_LOAD) continue;
    const uintptr_t b = info->dlpi_addr + p.p_vaddr;
    lo = b < lo ? b : lo;
    hi = b + p.p_memsz > hi ? b + p.p_memsz : hi;
  }
  const uintptr_t t = (uintptr_t)target;
  if (t < lo || t >= hi) return 0;
  g_lo = lo, g_hi = hi;
  return 1;
}
}  // namespace

extern "C" void *malloc(size_t n) {
  if (fail_now(__builtin_return_address(0))) return errno = ENOMEM, nullptr;
  return __libc_malloc(n);
}
extern "C" void *calloc(size_t a, size_t b) {
  if (fail_now(__builtin_return_address(0))) return errno = ENOMEM, nullptr;
  return __libc_calloc(a, b);
}
extern "C" void *realloc(void *p, size_t n) {
  if (fail_now(__builtin_return_address(0))) return errno = ENOMEM, nullptr;
  return __libc_realloc(p, n);
}

using namespace ragg_test;

namespace {

// One library call on a context; writes its output bytes to `out`.
using Call = std::function<ragg_status_t(ragg_context_t *, std::vector<unsigned char> &out)>;

struct Armed {
  explicit Armed(long k) {
    g_failures = 0;
    g_countdown = k;
  }
  ~Armed() { g_countdown = -1; }
};

::testing::AssertionResult same_bytes(const std::vector<unsigned char> &a,
                                      const std::vector<unsigned char> &b) {
  if (a == b) return ::testing::AssertionSuccess();
  size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
  return ::testing::AssertionFailure() << "results differ from byte " << i << " of " << a.size();
}

// Fails the library's 1st, 2nd, ... allocation of `call` until a call makes
// fewer; returns how many allocations the undisturbed call makes.
long fail_each_allocation(const std::string &what, const Call &call) {
  SCOPED_TRACE(what);
  std::vector<unsigned char> ref, out;
  {
    Context c;
    EXPECT_EQ(c.status, RAGG_SUCCESS);
    EXPECT_EQ(call(c.ctx, ref), RAGG_SUCCESS) << c.last_error();
  }
  for (long k = 0; k < 1000; ++k) {
    SCOPED_TRACE("allocation " + std::to_string(k + 1) + " fails");
    Context c;
    EXPECT_EQ(c.status, RAGG_SUCCESS);
    ragg_status_t st;
    long failures;
    {
      Armed a(k);
      st = call(c.ctx, out);
      failures = g_failures;
    }
    if (failures == 0) {  // the call made k allocations or fewer: all done
      EXPECT_EQ(st, RAGG_SUCCESS) << c.last_error();
      EXPECT_TRUE(same_bytes(out, ref));
      std::printf("%-44s %ld allocation%s, each failed in turn\n", what.c_str(), k,
                  k == 1 ? "" : "s");
      return k;
    }
    if (st == RAGG_SUCCESS) {
      EXPECT_TRUE(same_bytes(out, ref)) << "succeeded without the allocation, with other bits";
    } else {
      EXPECT_EQ(st, RAGG_ERR_OUT_OF_MEMORY) << c.last_error();
      EXPECT_NE(c.last_error(), "") << "no message with " << ragg_status_string(st);
    }
    EXPECT_EQ(call(c.ctx, out), RAGG_SUCCESS) << "after a failed allocation: " << c.last_error();
    EXPECT_TRUE(same_bytes(out, ref)) << "the context's next call";
  }
  ADD_FAILURE() << "more than 1000 allocations";
  return -1;
}

struct Problem {
  ragg_dtype_t dtype = RAGG_F32;
  int64_t n = 16, d = 20011;  // n d above the threshold where OpenMP threads start
  Entry entry = Entry::Contiguous;
};

// With a report the coordinate-wise rules take the general path (it counts
// the non-finite values as it sorts); without one, the vector path.
Call aggregate(const ragg_config_t &cfg, const Problem &p, bool report = true) {
  auto x = std::make_shared<Inputs>(p.dtype, p.n, p.d);
  std::mt19937_64 rng(case_seed(4242));
  fill_separated(*x, rng);
  return [cfg, x, p, report](ragg_context_t *ctx, std::vector<unsigned char> &out) {
    const LibRun r = run_library(ctx, cfg, *x, p.entry, report);
    out = r.out_raw;
    // the report is part of the result
    for (double v : r.scores) out.insert(out.end(), (unsigned char *)&v, (unsigned char *)(&v + 1));
    for (double v : r.weights)
      out.insert(out.end(), (unsigned char *)&v, (unsigned char *)(&v + 1));
    return r.status;
  };
}

int64_t f_for(ragg_rule_t r) {
  switch (r) {
    case RAGG_RULE_BRUTE:
    case RAGG_RULE_SMEA:
      return 2;
    case RAGG_RULE_MEAN:
      return 0;
    default:
      return 3;
  }
}

struct SimdLevel {
  explicit SimdLevel(const char *level) { setenv("RAGG_CPU_SIMD", level, 1); }
  ~SimdLevel() { unsetenv("RAGG_CPU_SIMD"); }
};

class AllocFailure : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dl_iterate_phdr(find_library, (void *)&ragg_aggregate);
    ASSERT_LT(g_lo, g_hi) << "librobustagg's segments not found";
  }
};

TEST_F(AllocFailure, ContextCreation) {
  ragg_context_t *ctx = reinterpret_cast<ragg_context_t *>(0x1);
  ragg_status_t st;
  {
    Armed a(0);
    st = ragg_context_create(&ctx, RAGG_BACKEND_CPU, 0);
    EXPECT_EQ(g_failures, 1) << "the context is the library's own allocation";
  }
  EXPECT_EQ(st, RAGG_ERR_OUT_OF_MEMORY);
  EXPECT_EQ(ctx, nullptr);
}

TEST_F(AllocFailure, EveryRule) {
  for (int r = RAGG_RULE_MEAN; r <= RAGG_RULE_SMEA; ++r)
    for (bool report : {true, false}) {
      const ragg_rule_t rule = (ragg_rule_t)r;
      const long made =
          fail_each_allocation(std::string(rule_label(rule)) + (report ? " report" : ""),
                               aggregate(make_config(rule, f_for(rule)), {}, report));
      EXPECT_GE(made, 1) << rule_label(rule) << ": the context's workspace at least";
    }
}

TEST_F(AllocFailure, PreStepsLayoutsAndPaths) {
  ragg_config_t c = make_config(RAGG_RULE_MEDIAN, 3);
  c.mix = RAGG_MIX_NNM;
  fail_each_allocation("median nnm", aggregate(c, {}, false));
  c = make_config(RAGG_RULE_KRUM, 3);
  c.adaptive_clip = 1;
  fail_each_allocation("krum arc", aggregate(c, {}));
  c = make_config(RAGG_RULE_TRIMMED_MEAN, 2);
  c.mix = RAGG_MIX_BUCKETING, c.bucket_size = 2, c.seed = 11;
  fail_each_allocation("trimmed mean bucketing", aggregate(c, {}, false));
  c = make_config(RAGG_RULE_MEAMED, 3);
  c.clip_norm = 10.0;
  fail_each_allocation("meamed clip_norm", aggregate(c, {}));
  c = make_config(RAGG_RULE_MULTI_KRUM, 3);
  c.distances = RAGG_DISTANCES_DIRECT;
  fail_each_allocation("multi-krum direct", aggregate(c, {}));
  fail_each_allocation("bulyan f16 rows", aggregate(make_config(RAGG_RULE_BULYAN, 3),
                                                    {RAGG_F16, 16, 20011, Entry::Pointers}));
  for (int64_t n : {300, 1100})  // merged blocks of 256; beyond them, the radix sort
    for (bool report : {true, false})
      fail_each_allocation(
          "median n = " + std::to_string(n) + (report ? " report" : ""),
          aggregate(make_config(RAGG_RULE_MEDIAN, 20), {RAGG_F32, n, 1001}, report));
  SimdLevel general("0");
  for (ragg_rule_t r : {RAGG_RULE_MEDIAN, RAGG_RULE_MEAMED}) {
    c = make_config(r, 3);
    fail_each_allocation(std::string("general path ") + rule_label(r), aggregate(c, {}, false));
    c.mix = RAGG_MIX_NNM;
    fail_each_allocation(std::string("general path nnm ") + rule_label(r), aggregate(c, {}, false));
  }
}

// The caller's transport with one rank: the distributed path's own buffers.
int one_rank_alltoallv(void *, const void *sendbuf, const size_t *sendcounts, const size_t *sdispls,
                       void *recvbuf, const size_t *recvcounts, const size_t *rdispls) {
  if (sendcounts[0] != recvcounts[0]) return 1;
  std::memmove((char *)recvbuf + rdispls[0], (const char *)sendbuf + sdispls[0], sendcounts[0]);
  return 0;
}
int one_rank_allgatherv(void *, void *, const size_t *, const size_t *) {
  return 0;
}

TEST_F(AllocFailure, CallersTransportOneRank) {
  const ragg_transport_ops_t ops = {0, 1, nullptr, one_rank_alltoallv, one_rank_allgatherv};
  auto x = std::make_shared<std::vector<float>>(50001);
  std::mt19937_64 rng(case_seed(77));
  std::normal_distribution<float> g;
  for (float &v : *x) v = g(rng);
  for (ragg_mode_t mode : {RAGG_MODE_SHARDED, RAGG_MODE_REPLICATED})
    for (ragg_rule_t rule : {RAGG_RULE_MEDIAN, RAGG_RULE_GEOMED}) {
      const ragg_config_t cfg = make_config(rule, 0);
      fail_each_allocation(
          std::string("all-reduce ") + rule_label(rule) + (mode ? " replicated" : " sharded"),
          [=](ragg_context_t *ctx, std::vector<unsigned char> &out) {
            std::vector<float> y(x->size(), -1.0f);
            ragg_status_t st =
                ragg_allreduce_transport(ctx, &cfg, x->data(), y.data(), y.size(), RAGG_F32,
                                         RAGG_REDUCE_MEAN, mode, &ops, nullptr);
            out.assign((unsigned char *)y.data(), (unsigned char *)(y.data() + y.size()));
            return st;
          });
    }
  const ragg_config_t cfg = make_config(RAGG_RULE_TRIMMED_MEAN, 0);
  fail_each_allocation("reduce-scatter", [=](ragg_context_t *ctx, std::vector<unsigned char> &out) {
    std::vector<float> y(x->size(), -1.0f);
    ragg_status_t st = ragg_reduce_scatter_transport(ctx, &cfg, x->data(), y.data(), y.size(),
                                                     RAGG_F32, RAGG_REDUCE_SUM, &ops, nullptr);
    out.assign((unsigned char *)y.data(), (unsigned char *)(y.data() + y.size()));
    return st;
  });
}

}  // namespace
