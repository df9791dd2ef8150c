// The LD_PRELOAD drop-in on real NCCL calls: this program links libnccl and
// runs with librobustagg_nccl_preload.so preloaded (the test's environment),
// RAGG_RULE=median RAGG_F=0 RAGG_MIN_BYTES=4096 RAGG_DEBUG=INFO. Its
// ncclAllReduce must be the drop-in's, intercept a float sum on a
// single-rank communicator (the median of one input is that input), forward
// an int32 sum and a small one, and run a grouped call after the group ends.
#include <dlfcn.h>
#include <nccl.h>

#include <cstdlib>

#include "test_nccl_helpers.hh"

using namespace ragg_nccl_test;

namespace {

bool preloaded() {
  const char *p = getenv("LD_PRELOAD");
  return p && std::string(p).find("robustagg_nccl_preload") != std::string::npos;
}
#define RAGG_REQUIRE_PRELOAD() \
  if (!preloaded()) GTEST_SKIP() << "run under LD_PRELOAD=librobustagg_nccl_preload.so (ctest does)"

}  // namespace

TEST(NcclPreload, TheProcessCallsTheDropInsEntryPoints) {
  RAGG_REQUIRE_PRELOAD();
  for (void *fn : {(void *)&ncclAllReduce, (void *)&ncclReduceScatter, (void *)&ncclGroupStart,
                   (void *)&ncclGroupEnd}) {
    Dl_info info{};
    ASSERT_NE(dladdr(fn, &info), 0);
    EXPECT_NE(std::string(info.dli_fname).find("robustagg_nccl_preload"), std::string::npos) << info.dli_fname;
  }
  // while the p-names stay NCCL's own
  Dl_info info{};
  ASSERT_NE(dladdr((void *)&pncclAllReduce, &info), 0);
  EXPECT_NE(std::string(info.dli_fname).find("libnccl"), std::string::npos) << info.dli_fname;
}

TEST(NcclPreload, InterceptsForwardsAndQueuesOnARealCommunicator) {
  RAGG_REQUIRE_PRELOAD();
  RAGG_REQUIRE_DEVICE();
  testing::internal::CaptureStderr();  // from the start: the drop-in prints its configuration once
  ncclComm_t comm;
  int dev = 0;
  if (ncclCommInitAll(&comm, 1, &dev) != ncclSuccess) {
    std::string early = testing::internal::GetCapturedStderr();
    FAIL() << "ncclCommInitAll failed: " << early;
  }
  cudaStream_t s;
  cudaStreamCreate(&s);
  const size_t n = 1 << 16;  // 256 KiB of float32: above RAGG_MIN_BYTES
  std::vector<uint8_t> row = make_row(RAGG_F32, n, 0, 1);
  void *send = to_device(row.data(), row.size()), *recv = to_device(nullptr, row.size());

  EXPECT_EQ(ncclAllReduce(send, recv, n, ncclFloat32, ncclSum, comm, s), ncclSuccess);
  cudaStreamSynchronize(s);
  EXPECT_TRUE(to_host(recv, row.size()) == row);  // median of one input, times P = 1

  std::vector<int32_t> ints(n, 7);
  void *isend = to_device(ints.data(), n * 4), *irecv = to_device(nullptr, n * 4);
  EXPECT_EQ(ncclAllReduce(isend, irecv, n, ncclInt32, ncclSum, comm, s), ncclSuccess);
  EXPECT_EQ(ncclAllReduce(send, recv, 16, ncclFloat32, ncclSum, comm, s), ncclSuccess);  // below the threshold
  cudaStreamSynchronize(s);
  std::vector<uint8_t> ih = to_host(irecv, n * 4);
  EXPECT_EQ(memcmp(ih.data(), ints.data(), n * 4), 0);

  cudaMemset(recv, 0, row.size());
  EXPECT_EQ(ncclGroupStart(), ncclSuccess);
  EXPECT_EQ(ncclAllReduce(send, recv, n, ncclFloat32, ncclAvg, comm, s), ncclSuccess);
  EXPECT_EQ(ncclGroupEnd(), ncclSuccess);
  cudaStreamSynchronize(s);
  EXPECT_TRUE(to_host(recv, row.size()) == row);
  EXPECT_EQ(ncclReduceScatter(send, recv, n, ncclFloat32, ncclSum, comm, s), ncclSuccess);
  cudaStreamSynchronize(s);
  EXPECT_TRUE(to_host(recv, row.size()) == row);
  std::string log = testing::internal::GetCapturedStderr();

  EXPECT_NE(log.find("drop-in loaded: rule=median f=0"), std::string::npos) << log;
  EXPECT_NE(log.find("ncclAllReduce count=65536 type=7 op=0 nranks=1: robust"), std::string::npos) << log;
  EXPECT_NE(log.find("type=2 op=0 nranks=1: forwarded (dtype"), std::string::npos) << log;
  EXPECT_NE(log.find("count=16 type=7 op=0 nranks=1: forwarded (below RAGG_MIN_BYTES)"), std::string::npos) << log;
  EXPECT_NE(log.find("op=4 nranks=1: queued until ncclGroupEnd"), std::string::npos) << log;
  EXPECT_NE(log.find("ncclReduceScatter count=65536 type=7 op=0 nranks=1: robust"), std::string::npos) << log;
  EXPECT_EQ(log.find("WARN"), std::string::npos) << log;

  cudaFree(send);
  cudaFree(recv);
  cudaFree(isend);
  cudaFree(irecv);
  cudaStreamDestroy(s);
  ncclCommDestroy(comm);
}
