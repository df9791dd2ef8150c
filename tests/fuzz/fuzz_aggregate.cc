// Fuzz target over the public API: the shape, the configuration and the
// values all come from the input bytes. The library must return a status
// (never crash, never read or write out of bounds) and, on success with at
// most f non-finite rows and a rule other than mean, write a finite output.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "robustagg.h"

namespace {

struct Reader {
  const uint8_t *p;
  size_t n;
  template <class T> T get() {
    T v{};
    size_t k = n < sizeof(T) ? n : sizeof(T);
    std::memcpy(&v, p, k);
    p += k;
    n -= k;
    return v;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  Reader r{data, size};
  ragg_config_t cfg;
  int rule = r.get<uint8_t>() % (RAGG_NUM_RULES + 1);  // one past the end: a bad rule
  int64_t n = r.get<uint8_t>() % 40;                  // 0 is a bad n
  int64_t d = r.get<uint8_t>() % 70;                  // 0 is a bad d
  int64_t f = r.get<uint8_t>() % 12;
  ragg_config_init(&cfg, static_cast<ragg_rule_t>(rule), f);
  cfg.rule = static_cast<ragg_rule_t>(rule);
  uint8_t flags = r.get<uint8_t>();
  int dtype = flags % 3;
  cfg.distances = (flags & 8)   ? RAGG_DISTANCES_DIRECT
                  : (flags & 4) ? RAGG_DISTANCES_GRAM_FP32
                                : RAGG_DISTANCES_GRAM;
  if (flags & 16) cfg.clip_norm = r.get<float>();
  if (flags & 32) cfg.adaptive_clip = 1;
  cfg.mix = static_cast<ragg_mix_t>((flags >> 6) % 3);
  cfg.bucket_size = r.get<uint8_t>() % 5;
  cfg.m = r.get<uint8_t>() % 8;
  cfg.trusted = r.get<uint8_t>() % 8;
  cfg.brute_limit = 2000;
  cfg.max_iters = 50;
  int64_t ld = d + r.get<uint8_t>() % 3;
  size_t es = dtype == RAGG_F32 ? 4 : 2;
  size_t nvals = static_cast<size_t>(n > 0 ? n : 1) * static_cast<size_t>(ld > 0 ? ld : 1);
  std::vector<uint8_t> x(nvals * es);
  for (auto &b : x) b = r.get<uint8_t>();
  std::vector<uint8_t> out(static_cast<size_t>(d > 0 ? d : 1) * es + 16, 0xA5);
  std::vector<double> scores(64), weights(64);
  std::vector<int32_t> selected(64);
  std::vector<int64_t> nonfinite(64);
  ragg_report_t rep{64, scores.data(), weights.data(), selected.data(), nonfinite.data()};
  ragg_context_t *ctx = nullptr;
  if (ragg_context_create(&ctx, RAGG_BACKEND_CPU, 0) != RAGG_SUCCESS) return 0;
  ragg_status_t st = ragg_aggregate(ctx, &cfg, static_cast<ragg_dtype_t>(dtype), x.data(), n, d, ld,
                                    out.data(), (flags & 4) ? &rep : nullptr);
  if (st != RAGG_SUCCESS && ragg_last_error(ctx)[0] == '\0') {
    std::fprintf(stderr, "status %d without a message\n", static_cast<int>(st));
    __builtin_trap();
  }
  // Nothing past the d output values is ever written.
  for (size_t i = static_cast<size_t>(d > 0 ? d : 1) * es; i < out.size(); ++i)
    if (out[i] != 0xA5) __builtin_trap();
  ragg_context_destroy(ctx);
  return 0;
}

#ifdef RAGG_FUZZ_REPLAY_MAIN
#include <dirent.h>

#include <fstream>
#include <iterator>
#include <string>

// Replays every file of the corpus directories given as arguments.
int main(int argc, char **argv) {
  int runs = 0;
  for (int a = 1; a < argc; ++a) {
    DIR *dir = opendir(argv[a]);
    if (!dir) {
      std::fprintf(stderr, "cannot open corpus %s\n", argv[a]);
      return 1;
    }
    while (dirent *e = readdir(dir)) {
      if (e->d_name[0] == '.') continue;
      std::ifstream f(std::string(argv[a]) + "/" + e->d_name, std::ios::binary);
      std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
      LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
      ++runs;
    }
    closedir(dir);
  }
  std::printf("replayed %d inputs\n", runs);
  return runs > 0 ? 0 : 1;
}
#endif
