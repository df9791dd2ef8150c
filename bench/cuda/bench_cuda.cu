// CUDA backend benchmark, nccl-tests style: one row per (rule, n, dtype),
// with the baselines measured in the same run beside ours:
//   copy      device-to-device cudaMemcpyAsync of >= 1 GiB (the floor; read + write bytes)
//   mean.ref  a plain mean kernel (the price of robustness)
//   gemmex    cuBLAS GemmEx (COMPUTE_32F, default math: no TF32) alone, the library's Gram
//             pass above 16 rows (cublasSsyrk_64 ran at 1.2 GB/s for fp32 in run 1)
//   segsort   transposed copy + cub::DeviceSegmentedSort + the middle value (transpose included)
// Times are medians over repeats with CUDA events after a warm-up; inputs
// rotate between two buffers of >= 256 MiB each (well beyond L2). GB/s counts
// one read of the n x d input and one write of d values; %copy is that rate
// over the copy's (read + write) rate.
//
// usage: ragg_bench_cuda [--mib M] [--reps R] [--quick] [--rules a,b,...] [--no-baselines]
//                        [--ns 8,16,...] [--dtypes f32,bf16]
//   --rules: only these rules (ragg_rule_name spellings; mean.ref always runs)
//   --no-baselines: skip krum.ptrs, gemmex and segsort.median
//   --ns: the numbers of inputs (default 8,16,32,64,128; --quick: 16,64)
//   --dtypes: the element types (default f32,bf16)
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cub/device/device_segmented_sort.cuh>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "robustagg.h"

#define CHECK(expr)                                                                         \
  do {                                                                                      \
    cudaError_t e_ = (expr);                                                                \
    if (e_ != cudaSuccess) {                                                                \
      std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #expr, cudaGetErrorString(e_)); \
      std::exit(1);                                                                         \
    }                                                                                       \
  } while (0)

namespace {

int g_reps = 10;

// Median time in ms of fn over reps (after one warm-up), rotating the input.
double time_ms(cudaStream_t s, const std::function<void(int)> &fn) {
  cudaEvent_t a, b;
  CHECK(cudaEventCreate(&a));
  CHECK(cudaEventCreate(&b));
  fn(0);
  CHECK(cudaStreamSynchronize(s));
  std::vector<float> t;
  for (int r = 0; r < g_reps; ++r) {
    CHECK(cudaEventRecord(a, s));
    fn(r + 1);
    CHECK(cudaEventRecord(b, s));
    CHECK(cudaEventSynchronize(b));
    float ms = 0;
    CHECK(cudaEventElapsedTime(&ms, a, b));
    t.push_back(ms);
    if (r == 1 && t[0] + t[1] > 400.0f) break;  // slow cells: fewer repeats
  }
  CHECK(cudaGetLastError());
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

__global__ void fill_kernel(unsigned short *p16, float *p32, size_t count, unsigned seed) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < count;
       i += (size_t)gridDim.x * blockDim.x) {
    unsigned h = (unsigned)i * 2654435761u ^ seed;
    h ^= h >> 13;
    h *= 0x5bd1e995u;
    h ^= h >> 15;
    float v = ((float)(h & 0xFFFFFF) / 16777216.0f - 0.5f) * 2.0f;
    if (p32) p32[i] = v;
    if (p16) p16[i] = __bfloat16_as_ushort(__float2bfloat16(v));
  }
}

template <class T>
__device__ float to_f(T v);
template <>
__device__ float to_f<float>(float v) {
  return v;
}
template <>
__device__ float to_f<__nv_bfloat16>(__nv_bfloat16 v) {
  return __bfloat162float(v);
}

template <class T>
__global__ void plain_mean_kernel(const T *x, int64_t n, int64_t d, T *out) {
  for (int64_t k = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; k < d;
       k += (int64_t)gridDim.x * blockDim.x) {
    float s = 0.0f;
    for (int64_t i = 0; i < n; ++i) s += to_f(x[i * d + k]);
    if constexpr (sizeof(T) == 4)
      out[k] = s / (float)n;
    else
      out[k] = __float2bfloat16(s / (float)n);
  }
}

template <class T>
__global__ void transpose_kernel(const T *x, int64_t n, int64_t d, float *xt) {
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n * d;
       e += (int64_t)gridDim.x * blockDim.x) {
    int64_t i = e / d, k = e % d;
    xt[k * n + i] = to_f(x[e]);
  }
}
__global__ void pick_middle_kernel(const float *sorted, int64_t n, int64_t d, float *out) {
  for (int64_t k = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; k < d;
       k += (int64_t)gridDim.x * blockDim.x)
    out[k] = (n & 1) ? sorted[k * n + n / 2]
                     : 0.5f * (sorted[k * n + n / 2 - 1] + sorted[k * n + n / 2]);
}
__global__ void offsets_kernel(int64_t *off, int64_t n, int64_t d) {
  for (int64_t k = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; k <= d;
       k += (int64_t)gridDim.x * blockDim.x)
    off[k] = k * n;
}

void row(const char *name, int64_t n, int64_t d, const char *dt, double ms, double bytes,
         double copy_gbs) {
  double gbs = bytes / (ms * 1e6);
  std::printf("%-14s %5lld %10lld %5s %11.1f %9.1f %7.1f\n", name, (long long)n, (long long)d, dt,
              ms * 1e3, gbs, 100.0 * gbs / copy_gbs);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char **argv) {
  double mib = 256;
  bool quick = false, baselines = true;
  std::string only;  // comma-separated rule names, empty: all
  std::string ns_arg, dtypes = ",f32,bf16,";
  for (int a = 1; a < argc; ++a) {
    if (!std::strcmp(argv[a], "--mib") && a + 1 < argc) mib = std::atof(argv[++a]);
    else if (!std::strcmp(argv[a], "--reps") && a + 1 < argc) g_reps = std::atoi(argv[++a]);
    else if (!std::strcmp(argv[a], "--quick")) quick = true;
    else if (!std::strcmp(argv[a], "--rules") && a + 1 < argc) only = std::string(",") + argv[++a] + ",";
    else if (!std::strcmp(argv[a], "--no-baselines")) baselines = false;
    else if (!std::strcmp(argv[a], "--ns") && a + 1 < argc)
      ns_arg = argv[++a];
    else if (!std::strcmp(argv[a], "--dtypes") && a + 1 < argc)
      dtypes = std::string(",") + argv[++a] + ",";
  }
  std::vector<int64_t> ns =
      quick ? std::vector<int64_t>{16, 64} : std::vector<int64_t>{8, 16, 32, 64, 128};
  if (!ns_arg.empty()) {
    ns.clear();
    for (const char *p = ns_arg.c_str(); *p;) {
      char *end;
      long long v = std::strtoll(p, &end, 10);
      if (end == p || v < 1) {
        std::fprintf(stderr, "--ns: a comma-separated list of positive counts\n");
        return 2;
      }
      ns.push_back(v);
      p = *end == ',' ? end + 1 : end;
    }
  }
  int dev = 0;
  cudaDeviceProp prop;
  CHECK(cudaGetDeviceProperties(&prop, dev));
  cudaStream_t s;
  CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));

  // the floor: a >= 1 GiB device-to-device copy, read + write bytes
  size_t cbytes = (size_t)1 << 30;
  void *ca, *cb;
  CHECK(cudaMalloc(&ca, cbytes));
  CHECK(cudaMalloc(&cb, cbytes));
  CHECK(cudaMemsetAsync(ca, 1, cbytes, s));
  double cms = time_ms(s, [&](int) { CHECK(cudaMemcpyAsync(cb, ca, cbytes, cudaMemcpyDeviceToDevice, s)); });
  double copy_gbs = 2.0 * (double)cbytes / (cms * 1e6);
  CHECK(cudaFree(ca));
  CHECK(cudaFree(cb));
  std::printf("# device: %s (%d SMs), robustagg %d\n", prop.name, prop.multiProcessorCount,
              ragg_version());
  std::printf("# copy: %.0f MiB device-to-device in %.1f us = %.1f GB/s (read + write)\n",
              cbytes / 1048576.0, cms * 1e3, copy_gbs);
  std::printf("# input >= %.0f MiB per buffer, 2 buffers rotated, median of %d\n", mib, g_reps);
  std::printf("%-14s %5s %10s %5s %11s %9s %7s\n", "rule", "n", "d", "dtype", "time_us", "GB/s",
              "%copy");

  ragg_context_t *ctx;
  if (ragg_context_create(&ctx, RAGG_BACKEND_CUDA, dev) != RAGG_SUCCESS) {
    std::fprintf(stderr, "no CUDA context\n");
    return 1;
  }
  ragg_context_set_stream(ctx, s);
  cublasHandle_t blas;
  cublasCreate(&blas);
  cublasSetStream(blas, s);

  const ragg_rule_t rules[] = {RAGG_RULE_MEAN,   RAGG_RULE_MEDIAN,        RAGG_RULE_TRIMMED_MEAN,
                               RAGG_RULE_MEAMED, RAGG_RULE_KRUM,          RAGG_RULE_MULTI_KRUM,
                               RAGG_RULE_GEOMED, RAGG_RULE_CENTERED_CLIP, RAGG_RULE_MONNA,
                               RAGG_RULE_BULYAN};
  for (ragg_dtype_t t : {RAGG_F32, RAGG_BF16}) {
    const char *dt = t == RAGG_F32 ? "f32" : "bf16";
    if (dtypes.find(std::string(",") + dt + ",") == std::string::npos) continue;
    size_t es = t == RAGG_F32 ? 4 : 2;
    for (int64_t n : ns) {
      int64_t d = (int64_t)(mib * 1048576.0 / (double)es / (double)n);
      size_t xbytes = (size_t)(n * d) * es;
      void *x[2], *out;
      CHECK(cudaMalloc(&x[0], xbytes));
      CHECK(cudaMalloc(&x[1], xbytes));
      CHECK(cudaMalloc(&out, (size_t)d * 4));
      for (int b = 0; b < 2; ++b)
        fill_kernel<<<4096, 256, 0, s>>>(t == RAGG_F32 ? nullptr : (unsigned short *)x[b],
                                         t == RAGG_F32 ? (float *)x[b] : nullptr, (size_t)(n * d),
                                         1234u + b);
      CHECK(cudaStreamSynchronize(s));
      double bytes = (double)xbytes + (double)d * (double)es;
      for (ragg_rule_t r : rules) {
        if (!only.empty() && only.find(std::string(",") + ragg_rule_name(r) + ",") == std::string::npos)
          continue;
        ragg_config_t cfg;
        int64_t f = r == RAGG_RULE_BULYAN ? (n - 3) / 4 : r == RAGG_RULE_KRUM || r == RAGG_RULE_MULTI_KRUM ? (n - 3) / 2 : n / 4;
        if (f > 8 && r == RAGG_RULE_BULYAN) f = 8;
        ragg_config_init(&cfg, r, f);
        if (r == RAGG_RULE_CENTERED_CLIP) cfg.tau = 10.0;
        ragg_status_t st = RAGG_SUCCESS;
        double ms = time_ms(s, [&](int i) {
          ragg_status_t q = ragg_aggregate(ctx, &cfg, t, x[i & 1], n, d, d, out, nullptr);
          if (q != RAGG_SUCCESS) st = q;
        });
        if (st != RAGG_SUCCESS) {
          std::printf("%-14s %5lld %10lld %5s  failed: %s\n", ragg_rule_name(r), (long long)n,
                      (long long)d, dt, ragg_last_error(ctx));
          continue;
        }
        row(ragg_rule_name(r), n, d, dt, ms, bytes, copy_gbs);
      }
      if (baselines) {  // Krum through row pointers: the library's own Gram kernels at every n
        ragg_config_t cfg;
        ragg_config_init(&cfg, RAGG_RULE_KRUM, (n - 3) / 2);
        std::vector<const void *> ptrs[2];
        for (int b = 0; b < 2; ++b)
          for (int64_t i = 0; i < n; ++i)
            ptrs[b].push_back((const char *)x[b] + (size_t)(i * d) * es);
        ragg_status_t st = RAGG_SUCCESS;
        double ms = time_ms(s, [&](int i) {
          ragg_status_t q = ragg_aggregate_ptrs(ctx, &cfg, t, ptrs[i & 1].data(), n, d, out, nullptr);
          if (q != RAGG_SUCCESS) st = q;
        });
        if (st == RAGG_SUCCESS) row("krum.ptrs", n, d, dt, ms, bytes, copy_gbs);
      }
      // baselines, same run, same inputs
      double ms = time_ms(s, [&](int i) {
        if (t == RAGG_F32)
          plain_mean_kernel<<<2048, 256, 0, s>>>((const float *)x[i & 1], n, d, (float *)out);
        else
          plain_mean_kernel<<<2048, 256, 0, s>>>((const __nv_bfloat16 *)x[i & 1], n, d,
                                                 (__nv_bfloat16 *)out);
      });
      row("mean.ref", n, d, dt, ms, bytes, copy_gbs);
      if (!baselines) {
        CHECK(cudaFree(x[0]));
        CHECK(cudaFree(x[1]));
        CHECK(cudaFree(out));
        continue;
      }
      float *G;
      CHECK(cudaMalloc(&G, sizeof(float) * (size_t)(n * n)));
      ms = time_ms(s, [&](int i) {
        const float one = 1.0f, zero = 0.0f;
        const cudaDataType_t ct = t == RAGG_F32 ? CUDA_R_32F : CUDA_R_16BF;
        cublasGemmEx_64(blas, CUBLAS_OP_T, CUBLAS_OP_N, n, n, d, &one, x[i & 1], ct, d, x[i & 1], ct,
                        d, &zero, G, CUDA_R_32F, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
      });
      row("gemmex", n, d, dt, ms, bytes, copy_gbs);
      CHECK(cudaFree(G));
      if (n * d < ((int64_t)1 << 31)) {  // CUB's segmented sort takes int offsets' range
        float *xt, *xs;
        int64_t *off;
        CHECK(cudaMalloc(&xt, sizeof(float) * (size_t)(n * d)));
        CHECK(cudaMalloc(&xs, sizeof(float) * (size_t)(n * d)));
        CHECK(cudaMalloc(&off, sizeof(int64_t) * (size_t)(d + 1)));
        offsets_kernel<<<1024, 256, 0, s>>>(off, n, d);
        size_t tmp_bytes = 0;
        cub::DeviceSegmentedSort::SortKeys((void *)nullptr, tmp_bytes, xt, xs, n * d, d, off,
                                           off + 1, s);
        void *tmp;
        CHECK(cudaMalloc(&tmp, tmp_bytes));
        ms = time_ms(s, [&](int i) {
          if (t == RAGG_F32)
            transpose_kernel<<<4096, 256, 0, s>>>((const float *)x[i & 1], n, d, xt);
          else
            transpose_kernel<<<4096, 256, 0, s>>>((const __nv_bfloat16 *)x[i & 1], n, d, xt);
          size_t tb = tmp_bytes;
          cub::DeviceSegmentedSort::SortKeys(tmp, tb, xt, xs, n * d, d, off, off + 1, s);
          pick_middle_kernel<<<2048, 256, 0, s>>>(xs, n, d, (float *)out);
        });
        row("segsort.median", n, d, dt, ms, bytes, copy_gbs);
        CHECK(cudaFree(tmp));
        CHECK(cudaFree(off));
        CHECK(cudaFree(xs));
        CHECK(cudaFree(xt));
      }
      CHECK(cudaFree(x[0]));
      CHECK(cudaFree(x[1]));
      CHECK(cudaFree(out));
    }
  }
  cublasDestroy(blas);
  ragg_context_destroy(ctx);
  cudaStreamDestroy(s);
  return 0;
}
