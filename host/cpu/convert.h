/* Scalar conversions between the storage dtypes and float/double.
 * 16-bit values widen to float exactly; narrowing rounds to nearest even and
 * keeps NaN a NaN. */
#ifndef RAGG_CONVERT_H
#define RAGG_CONVERT_H

#include <stdint.h>
#include <string.h>

#include "robustagg.h"

/* Usable from device code too (the distributed path's scaling kernel), so
 * every backend rounds with the same code. */
#if defined(__CUDACC__)
#define RAGG_CONVERT_FN static inline __host__ __device__
#else
#define RAGG_CONVERT_FN static inline
#endif

RAGG_CONVERT_FN float ragg_bits_to_float(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}
RAGG_CONVERT_FN uint32_t ragg_float_to_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}

RAGG_CONVERT_FN float ragg_half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1Fu, man = h & 0x3FFu;
  if (exp == 0x1F) return ragg_bits_to_float(sign | 0x7F800000u | (man << 13)); /* Inf, NaN */
  if (exp == 0) {
    if (man == 0) return ragg_bits_to_float(sign);
    /* subnormal: man * 2^-24 */
    float v = (float)man * 5.9604644775390625e-8f;
    return sign ? -v : v;
  }
  return ragg_bits_to_float(sign | ((exp + 112u) << 23) | (man << 13));
}

RAGG_CONVERT_FN uint16_t ragg_float_to_half(float f) {
  uint32_t u = ragg_float_to_bits(f);
  uint32_t sign = (u >> 16) & 0x8000u, a = u & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return (uint16_t)(sign | 0x7E00u);  /* NaN */
  if (a >= 0x477FF000u) return (uint16_t)(sign | 0x7C00u); /* rounds to Inf */
  if (a < 0x38800000u) {                                   /* subnormal or 0 */
    if (a < 0x33000000u) return (uint16_t)sign;            /* below half the least subnormal */
    uint32_t e = a >> 23, man = (a & 0x7FFFFFu) | 0x800000u;
    uint32_t shift = 126u - e; /* 14 + (113 - e) - 1 ... */
    /* value = man * 2^(e-150); subnormal unit = 2^-24 -> q = man >> (126 - e) */
    uint32_t q = man >> shift, rem = man & ((1u << shift) - 1u), half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (q & 1u))) ++q;
    return (uint16_t)(sign | q);
  }
  uint32_t q = ((a >> 13) - (112u << 10));
  uint32_t rem = a & 0x1FFFu;
  if (rem > 0x1000u || (rem == 0x1000u && (q & 1u))) ++q;
  return (uint16_t)(sign | q);
}

RAGG_CONVERT_FN float ragg_bf16_to_float(uint16_t b) {
  return ragg_bits_to_float((uint32_t)b << 16);
}

RAGG_CONVERT_FN uint16_t ragg_float_to_bf16(float f) {
  uint32_t u = ragg_float_to_bits(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 0x40u); /* quiet NaN */
  u += 0x7FFFu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}

RAGG_CONVERT_FN float ragg_load(ragg_dtype_t t, const void *p, int64_t k) {
  if (t == RAGG_F32) return ((const float *)p)[k];
  if (t == RAGG_F16) return ragg_half_to_float(((const uint16_t *)p)[k]);
  return ragg_bf16_to_float(((const uint16_t *)p)[k]);
}

/* Rounds a double result once to float, then (16-bit outputs) to 16 bits. */
RAGG_CONVERT_FN void ragg_store(ragg_dtype_t t, void *p, int64_t k, double v) {
  float f = (float)v;
  if (t == RAGG_F32)
    ((float *)p)[k] = f;
  else if (t == RAGG_F16)
    ((uint16_t *)p)[k] = ragg_float_to_half(f);
  else
    ((uint16_t *)p)[k] = ragg_float_to_bf16(f);
}

/* Order-preserving integer key of a float: -Inf < finite < +Inf < NaN, any
 * NaN (either sign, any payload) mapped to the top (DESIGN §2). */
RAGG_CONVERT_FN int32_t ragg_float_key(float f) {
  uint32_t u = ragg_float_to_bits(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return INT32_MAX;
  int32_t k = (int32_t)u;
  return k < 0 ? k ^ 0x7FFFFFFF : k;
}
RAGG_CONVERT_FN float ragg_key_float(int32_t k) {
  return ragg_bits_to_float((uint32_t)(k < 0 ? k ^ 0x7FFFFFFF : k));
}

#endif
