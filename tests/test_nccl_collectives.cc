// The NCCL entry points on a real communicator: a single-rank communicator
// runs the whole path (NCCL all-to-all / all-gather, the CUDA backend, the
// sum scaling) and must equal ragg_aggregate on the one input. Several ranks
// on one device are tried too; NCCL refuses duplicate devices in one
// communicator, and then that case skips (the P > 1 algorithm is checked by
// test_nccl_algorithm). Every case skips without a device.
#include <nccl.h>

#include <cstdlib>
#include <thread>

#include "robustagg_nccl.h"
#include "test_nccl_helpers.hh"

using namespace ragg_nccl_test;

namespace {

ncclDataType_t nccl_type(ragg_dtype_t dt) {
  return dt == RAGG_F32 ? ncclFloat32 : dt == RAGG_F16 ? ncclFloat16 : ncclBfloat16;
}

class NcclOneRank : public ::testing::Test {
 protected:
  ncclComm_t comm = nullptr;
  ragg_context_t *ctx = nullptr;
  cudaStream_t stream = nullptr;
  void SetUp() override {
    RAGG_REQUIRE_DEVICE();
    int dev = 0;
    ASSERT_EQ(ncclCommInitAll(&comm, 1, &dev), ncclSuccess);
    ASSERT_EQ(ragg_context_create(&ctx, RAGG_BACKEND_CUDA, 0), RAGG_SUCCESS);
    ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  }
  void TearDown() override {
    if (comm) ncclCommDestroy(comm);
    ragg_context_destroy(ctx);
    if (stream) cudaStreamDestroy(stream);
  }
  // ragg_aggregate on the single input, in the same context.
  std::vector<uint8_t> reference(const ragg_config_t &cfg, ragg_dtype_t dt, const std::vector<uint8_t> &row,
                                 ragg_report_t *rep = nullptr) {
    size_t es = esize(dt), n = row.size() / es;
    void *x = to_device(row.data(), row.size()), *out = to_device(nullptr, row.size());
    EXPECT_EQ(ragg_aggregate(ctx, &cfg, dt, x, 1, (int64_t)n, (int64_t)n, out, rep), RAGG_SUCCESS)
        << ragg_last_error(ctx);
    cudaDeviceSynchronize();
    std::vector<uint8_t> h = to_host(out, row.size());
    cudaFree(x);
    cudaFree(out);
    return h;
  }
};

}  // namespace

TEST_F(NcclOneRank, AllReduceEqualsAggregateEveryDtypeModeAndReduce) {
  for (ragg_rule_t rule : {RAGG_RULE_MEAN, RAGG_RULE_MEDIAN, RAGG_RULE_TRIMMED_MEAN, RAGG_RULE_MEAMED,
                           RAGG_RULE_GEOMED, RAGG_RULE_CENTERED_CLIP})
    for (ragg_dtype_t dt : {RAGG_F32, RAGG_F16, RAGG_BF16})
      for (ragg_mode_t mode : {RAGG_MODE_SHARDED, RAGG_MODE_REPLICATED})
        for (bool in_place : {false, true}) {
          ragg_config_t cfg;
          ragg_config_init(&cfg, rule, 0);
          size_t count = 4099;
          std::vector<uint8_t> row = make_row(dt, count, 0, 3);
          char *send = (char *)to_device(row.data(), row.size());
          char *recv = in_place ? send : (char *)to_device(nullptr, row.size());
          ragg_reduce_t reduce = in_place ? RAGG_REDUCE_SUM : RAGG_REDUCE_MEAN;
          ragg_status_t st =
              ragg_allreduce_nccl(ctx, &cfg, send, recv, count, nccl_type(dt), reduce, mode, comm, stream);
          ASSERT_EQ(st, RAGG_SUCCESS) << ragg_last_error(ctx);
          ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
          std::vector<uint8_t> got = to_host(recv, row.size());
          EXPECT_TRUE(got == reference(cfg, dt, row))
              << ragg_rule_name(rule) << " " << dtype_name(dt) << (in_place ? " in place" : "")
              << " max rel " << max_rel_diff(dt, got, reference(cfg, dt, row));
          if (!in_place) cudaFree(recv);
          cudaFree(send);
        }
}

TEST_F(NcclOneRank, ReduceScatterAndReport) {
  ragg_config_t cfg;
  ragg_config_init(&cfg, RAGG_RULE_GEOMED, 0);
  std::vector<uint8_t> row = make_row(RAGG_F32, 1000, 0, 5);
  void *send = to_device(row.data(), row.size()), *recv = to_device(nullptr, row.size());
  double *sc;
  int64_t *nf;
  cudaMalloc(&sc, sizeof(double));
  cudaMalloc(&nf, sizeof(int64_t));
  ragg_report_t rep{1, sc, nullptr, nullptr, nf};
  ASSERT_EQ(ragg_reduce_scatter_nccl_report(ctx, &cfg, send, recv, 1000, ncclFloat32, RAGG_REDUCE_SUM, comm,
                                            stream, &rep),
            RAGG_SUCCESS)
      << ragg_last_error(ctx);
  cudaStreamSynchronize(stream);
  EXPECT_TRUE(to_host(recv, row.size()) == reference(cfg, RAGG_F32, row));
  int64_t hnf = -1;
  cudaMemcpy(&hnf, nf, sizeof(hnf), cudaMemcpyDeviceToHost);
  EXPECT_EQ(hnf, 0);
  ASSERT_EQ(ragg_reduce_scatter_nccl(ctx, &cfg, send, recv, 1000, ncclBfloat16, RAGG_REDUCE_MEAN, comm, stream),
            RAGG_SUCCESS)
      << ragg_last_error(ctx);
  cudaFree(sc);
  cudaFree(nf);
  cudaFree(send);
  cudaFree(recv);
}

TEST_F(NcclOneRank, SendRecvGroupsAndCheckedCalls) {
  setenv("RAGG_NCCL_P2P", "1", 1);
  setenv("RAGG_CHECK", "1", 1);
  ragg_config_t cfg;
  ragg_config_init(&cfg, RAGG_RULE_TRIMMED_MEAN, 0);
  std::vector<uint8_t> row = make_row(RAGG_F16, 777, 0, 9);
  void *send = to_device(row.data(), row.size()), *recv = to_device(nullptr, row.size());
  for (ragg_mode_t mode : {RAGG_MODE_SHARDED, RAGG_MODE_REPLICATED}) {
    ASSERT_EQ(ragg_allreduce_nccl(ctx, &cfg, send, recv, 777, ncclFloat16, RAGG_REDUCE_MEAN, mode, comm, stream),
              RAGG_SUCCESS)
        << ragg_last_error(ctx);
    cudaStreamSynchronize(stream);
    EXPECT_TRUE(to_host(recv, row.size()) == reference(cfg, RAGG_F16, row));
  }
  unsetenv("RAGG_NCCL_P2P");
  unsetenv("RAGG_CHECK");
  cudaFree(send);
  cudaFree(recv);
}

TEST_F(NcclOneRank, ArgumentErrors) {
  ragg_config_t cfg;
  ragg_config_init(&cfg, RAGG_RULE_KRUM, 0);  // needs 3 ranks
  void *buf = to_device(nullptr, 4096);
  EXPECT_EQ(ragg_allreduce_nccl(ctx, &cfg, buf, buf, 1024, ncclFloat32, RAGG_REDUCE_SUM, RAGG_MODE_SHARDED, comm,
                                stream),
            RAGG_ERR_TOO_MANY_BYZANTINE);
  EXPECT_NE(std::string(ragg_last_error(ctx)).find("ragg_allreduce_nccl"), std::string::npos)
      << ragg_last_error(ctx);
  ragg_config_init(&cfg, RAGG_RULE_MEDIAN, 0);
  EXPECT_EQ(ragg_allreduce_nccl(ctx, &cfg, buf, buf, 1024, ncclInt32, RAGG_REDUCE_SUM, RAGG_MODE_SHARDED, comm,
                                stream),
            RAGG_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ragg_allreduce_nccl(ctx, &cfg, buf, buf, 1024, ncclFloat32, RAGG_REDUCE_SUM, RAGG_MODE_SHARDED,
                                nullptr, stream),
            RAGG_ERR_INVALID_ARGUMENT);
  ragg_context_t *cpu = nullptr;
  ASSERT_EQ(ragg_context_create(&cpu, RAGG_BACKEND_CPU, 0), RAGG_SUCCESS);
  EXPECT_EQ(ragg_allreduce_nccl(cpu, &cfg, buf, buf, 1024, ncclFloat32, RAGG_REDUCE_SUM, RAGG_MODE_SHARDED, comm,
                                stream),
            RAGG_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(ragg_last_error(cpu)).find("CUDA-backend"), std::string::npos) << ragg_last_error(cpu);
  ragg_context_destroy(cpu);
  cudaFree(buf);
}

// Several ranks on one device, one thread each: NCCL 2.28 usually refuses a
// duplicate device in one communicator; then the case skips, saying so.
TEST(NcclSeveralRanksOneDevice, MedianAndGeomedWhereNcclAllowsIt) {
  RAGG_REQUIRE_DEVICE();
  const int P = 2;
  int devs[P] = {0, 0};
  ncclComm_t comms[P] = {};
  ncclResult_t rc = ncclCommInitAll(comms, P, devs);
  if (rc != ncclSuccess)
    GTEST_SKIP() << "NCCL refuses " << P << " ranks on one device (" << ncclGetErrorString(rc)
                 << "); multi-rank NCCL runs are untested here";
  for (ragg_rule_t rule : {RAGG_RULE_MEDIAN, RAGG_RULE_GEOMED}) {
    ragg_config_t cfg;
    ragg_config_init(&cfg, rule, 0);
    size_t count = 1001;
    std::vector<std::vector<uint8_t>> rows(P), outs(P);
    std::vector<uint8_t> stacked;
    for (int p = 0; p < P; ++p) {
      rows[p] = make_row(RAGG_F32, count, p, 11);
      stacked.insert(stacked.end(), rows[p].begin(), rows[p].end());
    }
    std::vector<ragg_status_t> st(P);
    std::vector<std::thread> th;
    for (int r = 0; r < P; ++r)
      th.emplace_back([&, r] {
        ragg_context_t *c = nullptr;
        ragg_context_create(&c, RAGG_BACKEND_CUDA, 0);
        cudaStream_t s;
        cudaStreamCreate(&s);
        void *b = to_device(rows[r].data(), rows[r].size());
        st[r] = ragg_allreduce_nccl(c, &cfg, b, b, count, ncclFloat32, RAGG_REDUCE_MEAN, RAGG_MODE_SHARDED,
                                    comms[r], s);
        cudaStreamSynchronize(s);
        outs[r] = to_host(b, rows[r].size());
        cudaFree(b);
        cudaStreamDestroy(s);
        ragg_context_destroy(c);
      });
    for (auto &t : th) t.join();
    ragg_context_t *c = nullptr;
    ragg_context_create(&c, RAGG_BACKEND_CUDA, 0);
    void *x = to_device(stacked.data(), stacked.size()), *o = to_device(nullptr, count * 4);
    ASSERT_EQ(ragg_aggregate(c, &cfg, RAGG_F32, x, P, (int64_t)count, (int64_t)count, o, nullptr), RAGG_SUCCESS);
    cudaDeviceSynchronize();
    std::vector<uint8_t> want = to_host(o, count * 4);
    for (int r = 0; r < P; ++r) {
      EXPECT_EQ(st[r], RAGG_SUCCESS);
      EXPECT_TRUE(outs[r] == want) << ragg_rule_name(rule) << " rank " << r;
    }
    cudaFree(x);
    cudaFree(o);
    ragg_context_destroy(c);
  }
  for (int p = 0; p < P; ++p) ncclCommDestroy(comms[p]);
}
