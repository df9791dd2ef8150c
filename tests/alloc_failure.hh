// Allocation failure for the library's tests: malloc, calloc and realloc
// interposed in the test binary (include this header in exactly one of its
// files). Only calls made from the code of the libraries registered with
// watch_library_of() fail, told apart by the return address, so the C++
// runtime, OpenMP's and MPI's runtimes and the test itself allocate as usual.
// Not for the sanitizer builds, which interpose the same functions.
#ifndef RAGG_TESTS_ALLOC_FAILURE_HH
#define RAGG_TESTS_ALLOC_FAILURE_HH
#include <dlfcn.h>
#include <link.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <functional>

#include "test_helpers.hh"

extern "C" {
void *__libc_malloc(size_t);
void *__libc_calloc(size_t, size_t);
void *__libc_realloc(void *, size_t);
}

namespace ragg_alloc {
// >= 0: armed; the watched allocation that finds it at 0 fails, the rest pass
inline std::atomic<long> g_countdown{-1};
inline std::atomic<long> g_failures{0};
struct Range {
  uintptr_t lo, hi;
};
inline Range g_ranges[4];  // the watched libraries' mapped segments
inline std::atomic<int> g_nranges{0};

inline bool fail_now(const void *caller) {
  if (g_countdown.load(std::memory_order_relaxed) < 0) return false;
  const uintptr_t a = (uintptr_t)caller;
  bool watched = false;
  for (int r = 0; r < g_nranges; ++r) watched |= a >= g_ranges[r].lo && a < g_ranges[r].hi;
  if (!watched) return false;
  if (g_countdown.fetch_sub(1) != 0) return false;
  g_failures.fetch_add(1);
  return true;
}

inline int find_segments(struct dl_phdr_info *info, size_t, void *target) {
  uintptr_t lo = UINTPTR_MAX, hi = 0;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr) &p = info->dlpi_phdr[i];
    if (p.p_type != PT_LOAD) continue;
    const uintptr_t b = info->dlpi_addr + p.p_vaddr;
    lo = b < lo ? b : lo;
    hi = b + p.p_memsz > hi ? b + p.p_memsz : hi;
  }
  const uintptr_t t = (uintptr_t)target;
  if (t < lo || t >= hi || g_nranges >= 4) return 0;
  g_ranges[g_nranges++] = {lo, hi};
  return 1;
}

// Watches the library (or executable) whose code holds `symbol`; false when
// it was not found.
inline bool watch_library_of(const void *symbol) {
  return dl_iterate_phdr(find_segments, const_cast<void *>(symbol)) == 1;
}
}  // namespace ragg_alloc

extern "C" void *malloc(size_t n) {
  if (ragg_alloc::fail_now(__builtin_return_address(0))) return errno = ENOMEM, nullptr;
  return __libc_malloc(n);
}
extern "C" void *calloc(size_t a, size_t b) {
  if (ragg_alloc::fail_now(__builtin_return_address(0))) return errno = ENOMEM, nullptr;
  return __libc_calloc(a, b);
}
extern "C" void *realloc(void *p, size_t n) {
  if (ragg_alloc::fail_now(__builtin_return_address(0))) return errno = ENOMEM, nullptr;
  return __libc_realloc(p, n);
}

namespace ragg_alloc {
using namespace ragg_test;

// One library call on a context; writes its output bytes to `out`.
using Call = std::function<ragg_status_t(ragg_context_t *, std::vector<unsigned char> &out)>;

struct Armed {
  explicit Armed(long k) {
    g_failures = 0;
    g_countdown = k;
  }
  ~Armed() { g_countdown = -1; }
};

inline ::testing::AssertionResult same_bytes(const std::vector<unsigned char> &a,
                                             const std::vector<unsigned char> &b) {
  if (a == b) return ::testing::AssertionSuccess();
  size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
  return ::testing::AssertionFailure() << "results differ from byte " << i << " of " << a.size();
}

// Fails the watched libraries' 1st, 2nd, ... allocation of `call` until a
// call makes fewer. Each call must then return RAGG_ERR_OUT_OF_MEMORY with a
// message (or succeed with the undisturbed bits), and the next call on the
// same context must give the undisturbed bits. Returns how many allocations
// the undisturbed call makes.
inline long fail_each_allocation(const std::string &what, const Call &call) {
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
}  // namespace ragg_alloc
#endif
