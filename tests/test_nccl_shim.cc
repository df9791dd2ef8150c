// The NCCL drop-in's decisions and group queueing against a fake pnccl*
// table: no GPU, no NCCL.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

extern "C" {
#include "nccl_shim.h"
}

namespace {

struct Fake {
  std::vector<std::string> log; // every pnccl* and robust call, in order
  int nranks = 8;
};
Fake *g_fake = nullptr;
std::map<std::string, std::string> g_env;

const char *get_env(const char *name) {
  auto it = g_env.find(name);
  return it == g_env.end() ? nullptr : it->second.c_str();
}

int fake_allreduce(const void *, void *, size_t count, int type, int op, void *, void *) {
  g_fake->log.push_back("pAllReduce " + std::to_string(count) + " t" + std::to_string(type) + " o" +
                        std::to_string(op));
  return 0;
}
int fake_reduce_scatter(const void *, void *, size_t count, int type, int op, void *, void *) {
  g_fake->log.push_back("pReduceScatter " + std::to_string(count) + " t" + std::to_string(type) +
                        " o" + std::to_string(op));
  return 0;
}
int fake_group_start() {
  g_fake->log.push_back("pGroupStart");
  return 0;
}
int fake_group_end() {
  g_fake->log.push_back("pGroupEnd");
  return 0;
}
int fake_comm_count(const void *, int *n) {
  *n = g_fake->nranks;
  return 0;
}
int fake_robust(void *, const ragg_shim_config_t *cfg, const ragg_shim_call_t *c) {
  g_fake->log.push_back(std::string(c->kind == RAGG_SHIM_ALLREDUCE ? "robust AllReduce " : "robust ReduceScatter ") +
                        std::to_string(c->count) + " " + ragg_rule_name(cfg->rule) +
                        (c->op == SHIM_NCCL_AVG ? " avg" : " sum"));
  return 0;
}

class NcclShim : public ::testing::Test {
 protected:
  Fake fake;
  ragg_shim_t s{};
  void SetUp() override {
    g_fake = &fake;
    g_env.clear();
    configure();
  }
  void TearDown() override { ragg_shim_fini(&s); }
  void configure() {
    ragg_shim_fini(&s);
    s = ragg_shim_t{};
    s.nccl = ragg_pnccl_t{};
    s.nccl.AllReduce = fake_allreduce;
    s.nccl.ReduceScatter = fake_reduce_scatter;
    s.nccl.GroupStart = fake_group_start;
    s.nccl.GroupEnd = fake_group_end;
    s.nccl.CommCount = fake_comm_count;
    ragg_shim_config_read(&s.cfg, get_env);
    s.robust = fake_robust;
    s.log = [](const char *) {};
  }
  const size_t big = 1 << 20; // values: 4 MiB of fp32, above the default threshold
};

}  // namespace

TEST_F(NcclShim, DefaultsFromAnEmptyEnvironment) {
  EXPECT_TRUE(s.cfg.valid);
  EXPECT_EQ(s.cfg.rule, RAGG_RULE_TRIMMED_MEAN);
  EXPECT_EQ(s.cfg.f, 1);
  EXPECT_EQ(s.cfg.mode, RAGG_MODE_SHARDED);
  EXPECT_EQ(s.cfg.min_bytes, (size_t)1 << 20);
  EXPECT_FALSE(s.cfg.check);
  EXPECT_FALSE(s.cfg.debug);
}

TEST_F(NcclShim, EnvironmentParsed) {
  g_env = {{"RAGG_RULE", "krum"}, {"RAGG_F", "2"}, {"RAGG_MODE", "replicated"},
           {"RAGG_MIN_BYTES", "4096"}, {"RAGG_CHECK", "1"}, {"RAGG_DEBUG", "INFO"}};
  configure();
  EXPECT_TRUE(s.cfg.valid) << s.cfg.error;
  EXPECT_EQ(s.cfg.rule, RAGG_RULE_KRUM);
  EXPECT_EQ(s.cfg.f, 2);
  EXPECT_EQ(s.cfg.mode, RAGG_MODE_REPLICATED);
  EXPECT_EQ(s.cfg.min_bytes, 4096u);
  EXPECT_TRUE(s.cfg.check);
  EXPECT_TRUE(s.cfg.debug);
}

TEST_F(NcclShim, BadEnvironmentRefusesWhatItWouldInterceptAndForwardsTheRest) {
  for (auto bad : std::vector<std::pair<std::string, std::string>>{
           {"RAGG_RULE", "krumm"}, {"RAGG_F", "-1"}, {"RAGG_MODE", "both"}, {"RAGG_MIN_BYTES", "1k"}}) {
    g_env = {bad};
    configure();
    EXPECT_FALSE(s.cfg.valid) << bad.first;
    EXPECT_NE(std::string(s.cfg.error).find(bad.first), std::string::npos) << s.cfg.error;
    fake.log.clear();
    EXPECT_EQ(ragg_shim_allreduce(&s, nullptr, nullptr, big, SHIM_NCCL_FLOAT32, SHIM_NCCL_SUM, nullptr,
                                  nullptr), SHIM_NCCL_INVALID_USAGE);
    EXPECT_EQ(ragg_shim_allreduce(&s, nullptr, nullptr, big, 2 /* int32 */, SHIM_NCCL_SUM, nullptr,
                                  nullptr), SHIM_NCCL_SUCCESS);
    EXPECT_EQ(fake.log, std::vector<std::string>{"pAllReduce 1048576 t2 o0"});
  }
}

TEST_F(NcclShim, InterceptsOnlyFloatTypesWithSumOrAvgAboveTheThreshold) {
  ragg_shim_call_t c{RAGG_SHIM_ALLREDUCE, nullptr, nullptr, big, SHIM_NCCL_FLOAT32, SHIM_NCCL_SUM,
                     nullptr, nullptr, 8};
  EXPECT_EQ(ragg_shim_decide(&s.cfg, &c, nullptr), RAGG_SHIM_INTERCEPT);
  for (int type = 0; type < 12; ++type) {
    c.type = type;
    bool floaty = type == SHIM_NCCL_FLOAT32 || type == SHIM_NCCL_FLOAT16 || type == SHIM_NCCL_BFLOAT16;
    EXPECT_EQ(ragg_shim_decide(&s.cfg, &c, nullptr), floaty ? RAGG_SHIM_INTERCEPT : RAGG_SHIM_FORWARD)
        << "type " << type;
  }
  c.type = SHIM_NCCL_BFLOAT16;
  for (int op = 0; op < 8; ++op) { // 5 and up: PreMulSum and other dynamic ops
    c.op = op;
    bool sumavg = op == SHIM_NCCL_SUM || op == SHIM_NCCL_AVG;
    EXPECT_EQ(ragg_shim_decide(&s.cfg, &c, nullptr), sumavg ? RAGG_SHIM_INTERCEPT : RAGG_SHIM_FORWARD)
        << "op " << op;
  }
  c.op = SHIM_NCCL_AVG;
  c.count = (1 << 20) / 2 - 1; // one value under 1 MiB of bf16
  EXPECT_EQ(ragg_shim_decide(&s.cfg, &c, nullptr), RAGG_SHIM_FORWARD);
  c.count += 1;
  EXPECT_EQ(ragg_shim_decide(&s.cfg, &c, nullptr), RAGG_SHIM_INTERCEPT);
  // reduce-scatter: the threshold applies to the input, nranks * recvcount values
  c.kind = RAGG_SHIM_REDUCE_SCATTER;
  c.count = (1 << 20) / 2 / 8;
  EXPECT_EQ(ragg_shim_decide(&s.cfg, &c, nullptr), RAGG_SHIM_INTERCEPT);
}

TEST_F(NcclShim, TooFewRanksForTheRuleRefused) {
  g_env = {{"RAGG_RULE", "krum"}, {"RAGG_F", "2"}}; // needs 7 ranks
  configure();
  fake.nranks = 6;
  EXPECT_EQ(ragg_shim_allreduce(&s, nullptr, nullptr, big, SHIM_NCCL_FLOAT32, SHIM_NCCL_SUM, nullptr,
                                nullptr), SHIM_NCCL_INVALID_USAGE);
  fake.nranks = 7;
  EXPECT_EQ(ragg_shim_allreduce(&s, nullptr, nullptr, big, SHIM_NCCL_FLOAT32, SHIM_NCCL_SUM, nullptr,
                                nullptr), SHIM_NCCL_SUCCESS);
  EXPECT_EQ(fake.log, std::vector<std::string>{"robust AllReduce 1048576 krum sum"});
}

TEST_F(NcclShim, UngroupedCallsRunAtOnce) {
  ragg_shim_allreduce(&s, nullptr, nullptr, big, SHIM_NCCL_FLOAT16, SHIM_NCCL_AVG, nullptr, nullptr);
  ragg_shim_allreduce(&s, nullptr, nullptr, 10, SHIM_NCCL_FLOAT32, SHIM_NCCL_SUM, nullptr, nullptr);
  ragg_shim_reduce_scatter(&s, nullptr, nullptr, big, SHIM_NCCL_FLOAT32, 2 /* max */, nullptr, nullptr);
  ragg_shim_reduce_scatter(&s, nullptr, nullptr, big, SHIM_NCCL_FLOAT32, SHIM_NCCL_SUM, nullptr, nullptr);
  EXPECT_EQ(fake.log, (std::vector<std::string>{
                          "robust AllReduce 1048576 trimmed_mean avg", "pAllReduce 10 t7 o0",
                          "pReduceScatter 1048576 t7 o2", "robust ReduceScatter 1048576 trimmed_mean sum"}));
}

TEST_F(NcclShim, GroupedCallsQueuedUntilTheOutermostGroupEnd) {
  ragg_shim_group_start(&s);
  ragg_shim_allreduce(&s, nullptr, nullptr, big, SHIM_NCCL_FLOAT32, SHIM_NCCL_SUM, nullptr, nullptr);
  ragg_shim_allreduce(&s, nullptr, nullptr, big, 8 /* fp64 */, SHIM_NCCL_SUM, nullptr, nullptr);
  ragg_shim_group_start(&s);
  ragg_shim_reduce_scatter(&s, nullptr, nullptr, big, SHIM_NCCL_BFLOAT16, SHIM_NCCL_AVG, nullptr, nullptr);
  ragg_shim_group_end(&s); // inner: nothing runs yet
  EXPECT_EQ(fake.log, (std::vector<std::string>{"pGroupStart", "pAllReduce 1048576 t8 o0", "pGroupStart",
                                                "pGroupEnd"}));
  ragg_shim_allreduce(&s, nullptr, nullptr, big + 1, SHIM_NCCL_FLOAT32, SHIM_NCCL_AVG, nullptr, nullptr);
  EXPECT_EQ(ragg_shim_group_end(&s), SHIM_NCCL_SUCCESS);
  EXPECT_EQ(fake.log,
            (std::vector<std::string>{"pGroupStart", "pAllReduce 1048576 t8 o0", "pGroupStart", "pGroupEnd",
                                      "pGroupEnd", "robust AllReduce 1048576 trimmed_mean sum",
                                      "robust ReduceScatter 1048576 trimmed_mean avg",
                                      "robust AllReduce 1048577 trimmed_mean avg"}));
  // the queue is empty afterwards
  fake.log.clear();
  ragg_shim_group_start(&s);
  ragg_shim_group_end(&s);
  EXPECT_EQ(fake.log, (std::vector<std::string>{"pGroupStart", "pGroupEnd"}));
}

TEST_F(NcclShim, DebugLinesNameEachDecision) {
  static std::vector<std::string> lines;
  lines.clear();
  g_env = {{"RAGG_DEBUG", "INFO"}};
  configure();
  s.log = [](const char *l) { lines.push_back(l); };
  ragg_shim_allreduce(&s, nullptr, nullptr, big, SHIM_NCCL_FLOAT32, SHIM_NCCL_SUM, nullptr, nullptr);
  ragg_shim_allreduce(&s, nullptr, nullptr, 4, SHIM_NCCL_FLOAT32, SHIM_NCCL_SUM, nullptr, nullptr);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[0].find("robust"), std::string::npos) << lines[0];
  EXPECT_NE(lines[1].find("forwarded (below RAGG_MIN_BYTES)"), std::string::npos) << lines[1];
}
