/* conversions.h: written by gen_conversions.py (NumPy 1.24.2, PyTorch 1.13.0a0);
 * do not edit.  Source bits, the f32 bits the oracle made of them, and what
 * the case is for. */
#ifndef ATTNRT_TEST_CONVERSIONS_H
#define ATTNRT_TEST_CONVERSIONS_H

#include <stdint.h>

typedef struct conv16 { uint16_t in; uint32_t out; const char *why; } conv16;
typedef struct conv64 { uint64_t in; uint32_t out; const char *why; } conv64;

static const conv16 F16_CASES[] = {
  {0x0000, 0x00000000, "+0"},
  {0x8000, 0x80000000, "-0"},
  {0x3C00, 0x3F800000, "1"},
  {0xC000, 0xC0000000, "-2"},
  {0x3555, 0x3EAAA000, "0.333251953125, the f16 nearest 1/3"},
  {0x7BFF, 0x477FE000, "65504, the largest f16"},
  {0xFBFF, 0xC77FE000, "-65504"},
  {0x0400, 0x38800000, "2^-14, the smallest normal"},
  {0x8400, 0xB8800000, "-2^-14"},
  {0x03FF, 0x387FC000, "1023 * 2^-24, the largest subnormal"},
  {0x0200, 0x38000000, "2^-15, a subnormal"},
  {0x0155, 0x37AA8000, "341 * 2^-24, a subnormal of alternating bits"},
  {0x0001, 0x33800000, "2^-24, the smallest subnormal"},
  {0x8001, 0xB3800000, "-2^-24"},
  {0x7C00, 0x7F800000, "+inf"},
  {0xFC00, 0xFF800000, "-inf"},
  {0x7E00, 0x7FC00000, "the quiet NaN"},
  {0xFE00, 0xFFC00000, "a negative quiet NaN"},
  {0x7E55, 0x7FCAA000, "a quiet NaN with a payload: widened"},
  {0x7C01, 0x7F802000, "a signalling NaN: widened as it is, still signalling"},
};

static const conv16 BF16_CASES[] = {
  {0x0000, 0x00000000, "+0"},
  {0x8000, 0x80000000, "-0"},
  {0x3F80, 0x3F800000, "1"},
  {0xC040, 0xC0400000, "-3"},
  {0x3DCD, 0x3DCD0000, "0.10009765625, the bf16 nearest 0.1"},
  {0x7F7F, 0x7F7F0000, "the largest bf16, 0x1.fep127"},
  {0xFF7F, 0xFF7F0000, "the most negative bf16"},
  {0x0080, 0x00800000, "2^-126, the smallest normal"},
  {0x007F, 0x007F0000, "the largest subnormal"},
  {0x0001, 0x00010000, "2^-133, the smallest subnormal"},
  {0x8001, 0x80010000, "-2^-133"},
  {0x7F80, 0x7F800000, "+inf"},
  {0xFF80, 0xFF800000, "-inf"},
  {0x7FC0, 0x7FC00000, "the quiet NaN"},
  {0x7FC1, 0x7FC10000, "a quiet NaN with a payload"},
  {0x7F81, 0x7F810000, "a signalling NaN: PyTorch shifts it as it is"},
};

static const conv64 F64_CASES[] = {
  {0x0000000000000000, 0x00000000, "+0"},
  {0x8000000000000000, 0x80000000, "-0"},
  {0x3FF0000000000000, 0x3F800000, "1"},
  {0x3FB999999999999A, 0x3DCCCCCD, "0.1: rounds up to 0x3dcccccd"},
  {0xBFD5555555555555, 0xBEAAAAAB, "-1/3: rounds down in magnitude"},
  {0x400921FB54442D18, 0x40490FDB, "pi"},
  {0x3FF0000010000000, 0x3F800000, "1 + 2^-24, a tie: to the even 1"},
  {0x3FF0000030000000, 0x3F800002, "1 + 3 * 2^-24, a tie: to the even 1 + 2^-22"},
  {0x3FF0000010000001, 0x3F800001, "just above the tie 1 + 2^-24: up"},
  {0x3FEFFFFFF0000000, 0x3F800000, "1 - 2^-25, a tie below 1: to the even 1"},
  {0xBFF0000010000000, 0xBF800000, "-(1 + 2^-24): ties to even in magnitude"},
  {0x47EFFFFFE0000000, 0x7F7FFFFF, "FLT_MAX, exact"},
  {0x47EFFFFFEFFFFFFF, 0x7F7FFFFF, "just below FLT_MAX + half an ulp: FLT_MAX"},
  {0xC7EFFFFFEFFFFFFF, 0xFF7FFFFF, "its negative: -FLT_MAX"},
  {0x46293E5939A08CEA, 0x7149F2CA, "1e30"},
  {0x3810000000000000, 0x00800000, "2^-126, the smallest f32 normal"},
  {0x36A0000000000000, 0x00000001, "2^-149, the smallest f32 subnormal"},
  {0x3690000000000000, 0x00000000, "2^-150, a tie: to the even 0"},
  {0xB690000000000000, 0x80000000, "-2^-150: to -0"},
  {0x3690000000000004, 0x00000001, "just above 2^-150: up to 2^-149"},
  {0x36A8000000000000, 0x00000002, "3 * 2^-150, a tie: to the even 2^-148"},
  {0x358DEE7A4AD4B81F, 0x00000000, "1e-50: below every f32, 0"},
  {0x7FF0000000000000, 0x7F800000, "+inf"},
  {0xFFF0000000000000, 0xFF800000, "-inf"},
  {0x7FF8000000000000, 0x7FC00000, "the quiet NaN"},
  {0xFFF8000000000000, 0xFFC00000, "a negative quiet NaN"},
  {0x7FF8000020000000, 0x7FC00001, "a quiet NaN with a payload: its top bits kept"},
};

#endif
