/* The fp32-run Gram block (gram32.h), written once for each vector width.
 * The includer defines V (VW floats), VZERO, VLOAD(p), VFMA(c, x, y) =
 * fused c + x y, VFLUSH(a, c) = a[l] += (double)c[l] for l < VW, the tile
 * shape TR x TC (TC = 4; TR 2 or 4, by the registers the ISA has) and the
 * tile's and the single pair's names GRAM32_FN and PAIR32_FN (and with
 * TR = TC the diagonal tile's, DIAG32_FN). With VW = 8 the 16 lanes are formed
 * as two halves one after the other: each lane's sums are independent of the others'. */
#include <string.h>

#include "gram32.h"

#define LN RAGG_GRAM32_LANES
#define STEP_K (RAGG_GRAM32_LANES)                  /* coordinates per step */
#define RUN_K (RAGG_GRAM32_LANES * RAGG_GRAM32_RUN) /* coordinates per run */

/* A pair's 16 double lanes in one fixed order. */
static double reduce16(const double *a) {
  double h[8];
  for (int l = 0; l < 8; ++l) h[l] = a[l] + a[l + 8];
  return ((h[0] + h[4]) + (h[2] + h[6])) + ((h[1] + h[5]) + (h[3] + h[7]));
}

void GRAM32_FN(const float *buf, int64_t bs, int64_t i, int64_t j, int64_t L, double *G) {
  double acc[TR * TC][LN];
  memset(acc, 0, sizeof(acc));
  for (int h = 0; h < LN / VW; ++h) {
    for (int64_t k0 = 0; k0 < bs; k0 += RUN_K) {
      const int64_t k1 = k0 + RUN_K < bs ? k0 + RUN_K : bs;
      V c[TR * TC];
      for (int p = 0; p < TR * TC; ++p) c[p] = VZERO;
      for (int64_t k = k0 + h * VW; k < k1; k += STEP_K) {
        V x[TR], y[TC];
        for (int r = 0; r < TR; ++r) x[r] = VLOAD(buf + (i + r) * bs + k);
        for (int q = 0; q < TC; ++q) y[q] = VLOAD(buf + (j + q) * bs + k);
        for (int r = 0; r < TR; ++r)
          for (int q = 0; q < TC; ++q) c[r * TC + q] = VFMA(c[r * TC + q], x[r], y[q]);
      }
      for (int p = 0; p < TR * TC; ++p) VFLUSH(acc[p] + h * VW, c[p]);
    }
  }
  for (int r = 0; r < TR; ++r)
    for (int q = 0; q < TC; ++q) {
      const int64_t a = i + r, b = j + q;
      if (a < L && b < L && b >= a) G[a * L + b] += reduce16(acc[r * TC + q]);
    }
}

#if TR == TC
/* A tile on the diagonal (j == i): its ten pairs q >= r only, each row
 * loaded once a step, lane for lane as the full tile forms them. */
void DIAG32_FN(const float *buf, int64_t bs, int64_t i, int64_t j, int64_t L, double *G) {
  (void)j;
  enum { NP = TR * (TR + 1) / 2 };
  double acc[NP][LN];
  memset(acc, 0, sizeof(acc));
  for (int h = 0; h < LN / VW; ++h) {
    for (int64_t k0 = 0; k0 < bs; k0 += RUN_K) {
      const int64_t k1 = k0 + RUN_K < bs ? k0 + RUN_K : bs;
      V c[NP];
      for (int p = 0; p < NP; ++p) c[p] = VZERO;
      for (int64_t k = k0 + h * VW; k < k1; k += STEP_K) {
        V x[TR];
        for (int r = 0; r < TR; ++r) x[r] = VLOAD(buf + (i + r) * bs + k);
        int p = 0;
        for (int r = 0; r < TR; ++r)
          for (int q = r; q < TR; ++q, ++p) c[p] = VFMA(c[p], x[r], x[q]);
      }
      for (int p = 0; p < NP; ++p) VFLUSH(acc[p] + h * VW, c[p]);
    }
  }
  int p = 0;
  for (int r = 0; r < TR; ++r)
    for (int q = r; q < TR; ++q, ++p)
      if (i + q < L) G[(i + r) * L + i + q] += reduce16(acc[p]);
}
#endif

/* One pair (a, b) alone, lane for lane as a tile forms it (the norms-only
 * and anchor passes). */
void PAIR32_FN(const float *buf, int64_t bs, int64_t a, int64_t b, int64_t L, double *G) {
  double acc[LN];
  memset(acc, 0, sizeof(acc));
  for (int h = 0; h < LN / VW; ++h)
    for (int64_t k0 = 0; k0 < bs; k0 += RUN_K) {
      const int64_t k1 = k0 + RUN_K < bs ? k0 + RUN_K : bs;
      V c = VZERO;
      for (int64_t k = k0 + h * VW; k < k1; k += STEP_K)
        c = VFMA(c, VLOAD(buf + a * bs + k), VLOAD(buf + b * bs + k));
      VFLUSH(acc + h * VW, c);
    }
  G[a * L + b] += reduce16(acc);
}
