// 64-bit sizes: one call with d above 2^31 values per row (fp16, so the
// inputs take 4 GiB), through the row-pointer entry point with the same row
// three times so that the median's network runs on every coordinate.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "robustagg.h"

namespace {

// fp16 bits of small integers 0..7 (exact), a pattern that changes along d.
uint16_t pattern(int64_t k) {
  static const uint16_t h[8] = {0x0000, 0x3C00, 0x4000, 0x4200, 0x4400, 0x4500, 0x4600, 0x4700};
  return h[(k / 4099) % 8];
}

TEST(LargeSizes, MedianBeyondTwoToThe31Values) {
  const int64_t d = (int64_t{1} << 31) + 4099;
  uint16_t *row = static_cast<uint16_t *>(std::malloc(sizeof(uint16_t) * d));
  uint16_t *out = static_cast<uint16_t *>(std::malloc(sizeof(uint16_t) * d));
  if (!row || !out) {
    std::free(row);
    std::free(out);
    GTEST_SKIP() << "needs 8 GiB of memory";
  }
  for (int64_t k = 0; k < d; ++k) row[k] = pattern(k);
  std::memset(out, 0xFF, sizeof(uint16_t) * d);  // NaN everywhere: an unwritten value shows
  ragg_context_t *ctx = nullptr;
  ASSERT_EQ(ragg_context_create(&ctx, RAGG_BACKEND_CPU, 0), RAGG_SUCCESS);
  ragg_config_t cfg;
  ragg_config_init(&cfg, RAGG_RULE_MEDIAN, 1);
  const void *rows[3] = {row, row, row};
  ASSERT_EQ(ragg_aggregate_ptrs(ctx, &cfg, RAGG_F16, rows, 3, d, out, nullptr), RAGG_SUCCESS)
      << ragg_last_error(ctx);
  int64_t bad = 0, first_bad = -1;
  for (int64_t k = 0; k < d; ++k)
    if (out[k] != row[k] && bad++ == 0) first_bad = k;
  EXPECT_EQ(bad, 0) << "first mismatch at k = " << first_bad;
  ragg_context_destroy(ctx);
  std::free(row);
  std::free(out);
}

}  // namespace
