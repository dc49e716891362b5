/* math.c: exp, log, tanh and GELU for f32 as generated code, and sin
 * and cos in double for positional encodings.
 *
 * LLVM lowers llvm.exp on vectors to one libm call per lane, which stops
 * the vectorizer from doing anything useful in softmax or GELU loops.
 * These are straight-line code (selects, bit casts, polynomials) built as
 * always-inline functions, so after inlining the loop vectorizer widens
 * them to the target's vector width.
 *
 * Error bounds, measured against libm in double over the whole f32 range
 * by tests/run (math_* tests, tolerance 2e-6 relative):
 *   exp   Cody-Waite reduction + Cephes expf polynomial: < 2 ulp;
 *         exp(x) = +inf for x > 88.72, flushes to 0 below -103.
 *   exp_nonpos  (x <= 8 only, for the online softmax) < 1 ulp over
 *         [-86, 8] by an f32 emulation (tests/run/fit_exp_nonpos.py);
 *         0 below -86.
 *   log   Cephes logf: < 2 ulp; log(0) = -inf, log(x<0) = NaN.
 *   tanh  odd polynomial for |x| < 0.625 (Cephes tanhf), else
 *         1 - 2/(exp(2|x|)+1): relative < 1e-6.
 *   gelu  x/2 (1 + erf(x/sqrt 2)), erf by Abramowitz-Stegun 7.1.26:
 *         absolute error < |x|/2 * 1.5e-7 + rounding (tests/run unary_gelu,
 *         atol 1e-6, rtol 4e-6, over [-20, 20]).
 * NaN propagates through all of them.
 *
 * Needs: builder.c only (constants, the fast-math float ops, cg_intrinsic,
 * cg_set_fn_attrs). */
#include <stdbool.h>
#include <stdio.h>

#include "cg.h"

/* A fresh builder so that making a math function does not disturb the
 * builder of the kernel that first asked for it.  Each function exists
 * once per argument type (f32, or a vector of f32 for the kernels that
 * use explicit vectors), named attnc.exp, attnc.exp.v16, ... */
typedef struct MathFn {
  LLVMBuilderRef saved;
  LLVMFastMathFlags fmf;
  LLVMTypeRef mty, mity;
  LLVMValueRef fn;
} MathFn;

/* True if the function must be built now (its body goes at cg->B). */
static bool begin_fn(CG *cg, const char *base, LLVMValueRef xv, MathFn *m) {
  LLVMTypeRef ty = LLVMTypeOf(xv);
  bool vec = LLVMGetTypeKind(ty) == LLVMVectorTypeKind;
  char name[64];
  snprintf(name, sizeof name, vec ? "%s.v%u" : "%s", base, vec ? LLVMGetVectorSize(ty) : 0);
  m->fn = LLVMGetNamedFunction(cg->M, name);
  if (m->fn) return false;
  LLVMTypeRef fty = LLVMFunctionType(ty, &ty, 1, 0);
  m->fn = LLVMAddFunction(cg->M, name, fty);
  LLVMSetLinkage(m->fn, LLVMInternalLinkage);
  cg_set_fn_attrs(cg, m->fn);
  unsigned kind = LLVMGetEnumAttributeKindForName("alwaysinline", 12);
  LLVMAddAttributeAtIndex(m->fn, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(cg->C, kind, 0));
  m->saved = cg->B;
  m->fmf = cg->fmf;
  m->mty = cg->mty;
  m->mity = cg->mity;
  cg->fmf = LLVMFastMathAllowContract;
  cg->mty = ty;
  cg->mity = vec ? LLVMVectorType(cg->i32, LLVMGetVectorSize(ty)) : cg->i32;
  cg->B = LLVMCreateBuilderInContext(cg->C);
  LLVMPositionBuilderAtEnd(cg->B, LLVMAppendBasicBlockInContext(cg->C, m->fn, "entry"));
  return true;
}

static void end_fn(CG *cg, MathFn *m, LLVMValueRef result) {
  LLVMBuildRet(cg->B, result);
  LLVMDisposeBuilder(cg->B);
  cg->B = m->saved;
  cg->fmf = m->fmf;
  cg->mty = m->mty;
  cg->mity = m->mity;
}

static LLVMValueRef call1(CG *cg, MathFn *m, LLVMValueRef x) {
  LLVMTypeRef ty = LLVMTypeOf(x);
  return LLVMBuildCall2(cg->B, LLVMFunctionType(ty, &ty, 1, 0), m->fn, &x, 1, "");
}

/* Constants of the type being built: splats for vectors. */
static LLVMValueRef splat(LLVMTypeRef ty, LLVMValueRef c) {
  if (LLVMGetTypeKind(ty) != LLVMVectorTypeKind) return c;
  unsigned n = LLVMGetVectorSize(ty);
  LLVMValueRef e[64];
  for (unsigned i = 0; i < n; i++) e[i] = c;
  return LLVMConstVector(e, n);
}
static LLVMValueRef fc(CG *cg, double v) { return splat(cg->mty, cg_f32(cg, v)); }
static LLVMValueRef ic(CG *cg, int64_t v) { return splat(cg->mity, cg_i32(cg, v)); }

static LLVMValueRef fcmp(CG *cg, LLVMRealPredicate p, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildFCmp(cg->B, p, a, b, "");
}

static LLVMValueRef sel(CG *cg, LLVMValueRef c, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildSelect(cg->B, c, a, b, "");
}

/* c[0] + x*(c[1] + x*(...)), highest coefficient last in the array order
 * given: poly(x, {a_n, ..., a_0}) evaluates by Horner from a_n. */
static LLVMValueRef horner(CG *cg, LLVMValueRef x, const double *c, int n) {
  LLVMValueRef acc = fc(cg, c[0]);
  for (int i = 1; i < n; i++) acc = cg_fadd(cg, cg_fmul(cg, acc, x), fc(cg, c[i]));
  return acc;
}

/* a*b + c, fused where the target has an FMA */
static LLVMValueRef fma3(CG *cg, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c) {
  return cg_intrinsic(cg, "llvm.fmuladd.f32", (LLVMValueRef[]){a, b, c}, 3);
}

static LLVMValueRef bits(CG *cg, LLVMValueRef f) { return LLVMBuildBitCast(cg->B, f, cg->mity, ""); }
static LLVMValueRef flt(CG *cg, LLVMValueRef i) { return LLVMBuildBitCast(cg->B, i, cg->mty, ""); }

/* 2^n for an integer-valued float n in [-126, 127]. */
static LLVMValueRef pow2i(CG *cg, LLVMValueRef n) {
  LLVMValueRef i = LLVMBuildFPToSI(cg->B, n, cg->mity, "");
  i = LLVMBuildAdd(cg->B, i, ic(cg, 127), "");
  return flt(cg, LLVMBuildShl(cg->B, i, ic(cg, 23), ""));
}

LLVMValueRef math_exp(CG *cg, LLVMValueRef xv) {
  MathFn mf;
  if (begin_fn(cg, "attnc.exp", xv, &mf)) {
    LLVMValueRef fn = mf.fn;
    LLVMValueRef x = LLVMGetParam(fn, 0);
    LLVMValueRef isnan = fcmp(cg, LLVMRealUNO, x, x);
    /* Clamp so that the scale factors below stay finite; the true result
     * over/underflows outside this range anyway, and the final multiply
     * by the two scales makes that happen. */
    LLVMValueRef xc = sel(cg, fcmp(cg, LLVMRealOLT, x, fc(cg, -104.0)), fc(cg, -104.0), x);
    xc = sel(cg, fcmp(cg, LLVMRealOGT, xc, fc(cg, 89.0)), fc(cg, 89.0), xc);
    xc = sel(cg, isnan, fc(cg, 0.0), xc);
    LLVMValueRef a = cg_fmul(cg, xc, fc(cg, 1.44269504088896341));
    LLVMValueRef args[1] = {cg_fadd(cg, a, fc(cg, 0.5))};
    LLVMValueRef n = cg_intrinsic(cg, "llvm.floor.f32", args, 1);
    /* Cody-Waite: r = x - n*ln2 in two steps keeps r exact enough. */
    LLVMValueRef r = cg_fsub(cg, xc, cg_fmul(cg, n, fc(cg, 0.693359375)));
    r = cg_fsub(cg, r, cg_fmul(cg, n, fc(cg, -2.12194440e-4)));
    static const double P[] = {1.9875691500E-4, 1.3981999507E-3, 8.3334519073E-3,
                               4.1665795894E-2, 1.6666665459E-1, 5.0000001201E-1};
    LLVMValueRef p = horner(cg, r, P, 6);
    LLVMValueRef y = cg_fadd(cg, cg_fadd(cg, cg_fmul(cg, cg_fmul(cg, p, r), r), r), fc(cg, 1.0));
    /* n in [-150, 129]: split 2^n into two factors that are normal floats. */
    LLVMValueRef n1 = cg_intrinsic(cg, "llvm.floor.f32", (LLVMValueRef[]){cg_fmul(cg, n, fc(cg, 0.5))}, 1);
    LLVMValueRef n2 = cg_fsub(cg, n, n1);
    y = cg_fmul(cg, cg_fmul(cg, y, pow2i(cg, n1)), pow2i(cg, n2));
    end_fn(cg, &mf, sel(cg, isnan, x, y));
  }
  return call1(cg, &mf, xv);
}

/* exp(x) for x <= 8, -inf or NaN: what the online softmax needs (scores
 * minus a running max that may be stale by up to 8), 14 vector ops where
 * attnc.exp takes about 25.
 *   - n = round(x log2 e) by adding 1.5 * 2^23 (one FMA): the sum's low
 *     mantissa bits are n, so shifting its bits left by 23 gives n's
 *     exponent field with no rounding or conversion instruction;
 *   - r = x - n ln2 by Cody-Waite (exact products even without an FMA),
 *     |r| <= ln2/2;
 *   - e^r by a degree-6 polynomial, fitted for relative error over that
 *     interval by tests/run/fit_exp_nonpos.py (1.9e-9 in double;
 *     0.72 ulp through f32 over [-86, 8]);
 *   - y = e^r * 2^n by an integer add into the exponent field: n in
 *     [-124, 12] and e^r in [0.7, 1.42] keep y a normal float.
 * Below -86 (and for -inf) the result is 0 by a select, so no operation
 * ever makes a denormal, which costs a microcode assist on x86; the lanes
 * that take it may compute garbage first.  NaN fails the compare and
 * keeps the polynomial's NaN. */
LLVMValueRef math_exp_nonpos(CG *cg, LLVMValueRef xv) {
  MathFn mf;
  if (begin_fn(cg, "attnc.exp_nonpos", xv, &mf)) {
    LLVMValueRef fn = mf.fn;
    LLVMValueRef x = LLVMGetParam(fn, 0);
    LLVMValueRef magic = fc(cg, 12582912.0);   /* 1.5 * 2^23 */
    LLVMValueRef tm = fma3(cg, x, fc(cg, 1.44269504088896341), magic);
    LLVMValueRef n = cg_fsub(cg, tm, magic);
    LLVMValueRef r = fma3(cg, n, fc(cg, -0.693359375), x);
    r = fma3(cg, n, fc(cg, 2.12194440e-4), r);
    static const double P[] = {1.3836845755577087e-3, 8.374815806746483e-3, 4.166822507977486e-2,
                               1.6666419804096222e-1, 4.9999991059303284e-1, 1.0, 1.0};
    LLVMValueRef y = fc(cg, P[0]);
    for (int i = 1; i < 7; i++) y = fma3(cg, y, r, fc(cg, P[i]));
    LLVMValueRef e = LLVMBuildShl(cg->B, bits(cg, tm), ic(cg, 23), "");
    y = flt(cg, LLVMBuildAdd(cg->B, bits(cg, y), e, ""));
    end_fn(cg, &mf, sel(cg, fcmp(cg, LLVMRealOLT, x, fc(cg, -86.0)), fc(cg, 0.0), y));
  }
  return call1(cg, &mf, xv);
}

LLVMValueRef math_log(CG *cg, LLVMValueRef xv) {
  MathFn mf;
  if (begin_fn(cg, "attnc.log", xv, &mf)) {
    LLVMValueRef fn = mf.fn;
    LLVMValueRef x = LLVMGetParam(fn, 0);
    /* Subnormals: scale into the normal range first. */
    LLVMValueRef tiny = fcmp(cg, LLVMRealOLT, x, fc(cg, 1.17549435e-38));
    LLVMValueRef xs = sel(cg, tiny, cg_fmul(cg, x, fc(cg, 8388608.0)), x);
    LLVMValueRef ebias = sel(cg, tiny, fc(cg, -23.0), fc(cg, 0.0));
    LLVMValueRef ib = bits(cg, xs);
    LLVMValueRef e = LLVMBuildAnd(cg->B, LLVMBuildLShr(cg->B, ib, ic(cg, 23), ""), ic(cg, 0xff), "");
    e = LLVMBuildSub(cg->B, e, ic(cg, 126), "");
    LLVMValueRef ef = cg_fadd(cg, LLVMBuildSIToFP(cg->B, e, cg->mty, ""), ebias);
    LLVMValueRef m = flt(cg, LLVMBuildOr(cg->B, LLVMBuildAnd(cg->B, ib, ic(cg, 0x7fffff), ""),
                                         ic(cg, 0x3f000000), ""));
    /* m in [0.5, 1): keep m - 1 small by moving [0.5, sqrt(1/2)) up. */
    LLVMValueRef lo = fcmp(cg, LLVMRealOLT, m, fc(cg, 0.707106781186547524));
    ef = sel(cg, lo, cg_fsub(cg, ef, fc(cg, 1.0)), ef);
    m = sel(cg, lo, cg_fsub(cg, cg_fadd(cg, m, m), fc(cg, 1.0)), cg_fsub(cg, m, fc(cg, 1.0)));
    LLVMValueRef z = cg_fmul(cg, m, m);
    static const double P[] = {7.0376836292E-2, -1.1514610310E-1, 1.1676998740E-1,
                               -1.2420140846E-1, 1.4249322787E-1, -1.6668057665E-1,
                               2.0000714765E-1, -2.4999993993E-1, 3.3333331174E-1};
    LLVMValueRef y = cg_fmul(cg, cg_fmul(cg, horner(cg, m, P, 9), m), z);
    y = cg_fadd(cg, y, cg_fmul(cg, ef, fc(cg, -2.12194440e-4)));
    y = cg_fsub(cg, y, cg_fmul(cg, z, fc(cg, 0.5)));
    LLVMValueRef r = cg_fadd(cg, cg_fadd(cg, m, y), cg_fmul(cg, ef, fc(cg, 0.693359375)));
    /* Special values, in the order that makes each win. */
    r = sel(cg, fcmp(cg, LLVMRealOEQ, x, fc(cg, 1.0 / 0.0)), x, r);
    r = sel(cg, fcmp(cg, LLVMRealOEQ, x, fc(cg, 0.0)), fc(cg, -1.0 / 0.0), r);
    r = sel(cg, fcmp(cg, LLVMRealULT, x, fc(cg, 0.0)), fc(cg, 0.0 / 0.0), r);
    end_fn(cg, &mf, r);
  }
  return call1(cg, &mf, xv);
}

LLVMValueRef math_tanh(CG *cg, LLVMValueRef xv) {
  MathFn mf;
  if (begin_fn(cg, "attnc.tanh", xv, &mf)) {
    LLVMValueRef fn = mf.fn;
    LLVMValueRef x = LLVMGetParam(fn, 0);
    LLVMValueRef ax = cg_intrinsic(cg, "llvm.fabs.f32", &x, 1);
    LLVMValueRef z = cg_fmul(cg, x, x);
    static const double P[] = {-5.70498872745E-3, 2.06390887954E-2, -5.37397155531E-2,
                               1.33314422036E-1, -3.33332819422E-1};
    LLVMValueRef small = cg_fadd(cg, cg_fmul(cg, cg_fmul(cg, horner(cg, z, P, 5), z), x), x);
    LLVMValueRef e = math_exp(cg, cg_fadd(cg, ax, ax));
    LLVMValueRef big = cg_fsub(cg, fc(cg, 1.0), cg_fdiv(cg, fc(cg, 2.0), cg_fadd(cg, e, fc(cg, 1.0))));
    big = cg_intrinsic(cg, "llvm.copysign.f32", (LLVMValueRef[]){big, x}, 2);
    /* NaN fails the compare and takes the exp path, which keeps it NaN. */
    end_fn(cg, &mf, sel(cg, fcmp(cg, LLVMRealOLT, ax, fc(cg, 0.625)), small, big));
  }
  return call1(cg, &mf, xv);
}

/* gelu(x) = x/2 (1 + erf(x/sqrt 2)), with erf by Abramowitz & Stegun
 * 7.1.26 over the whole line: for z = x/sqrt 2, q = t P(t) e^(-z^2) with
 * t = 1/(1 + 0.3275911 |z|) is erfc(|z|) within 1.5e-7, and 1 + erf(z) is
 * 2 - q for z >= 0, q below.  That absolute error is all GELU can use: a
 * Taylor branch near 0 for erf's relative accuracy (which attnc's erf had)
 * is lost in 1 + erf, and for x < 0 the tail q keeps its own accuracy
 * instead of cancelling in 1 - q.  e^(-z^2) <= 1 is exp_nonpos's (0
 * below -86).  39 instructions per 16 lanes with the bias add, against 70
 * for the erf it replaced: bench/'s MLP (512 -> 2048 -> 512, T = 512)
 * took 0.967x the time (A/B, 11 rounds, in either order).  NaN propagates (through the exp); gelu(+inf) = +inf and
 * gelu(-inf) = NaN (-inf * 0), as x/2 (1 + erf) gives in PyTorch. */
LLVMValueRef math_gelu(CG *cg, LLVMValueRef xv) {
  MathFn mf;
  if (begin_fn(cg, "attnc.gelu", xv, &mf)) {
    LLVMValueRef fn = mf.fn;
    LLVMValueRef x = LLVMGetParam(fn, 0);
    LLVMValueRef z = cg_fmul(cg, x, fc(cg, 0.70710678118654752440));
    LLVMValueRef az = cg_intrinsic(cg, "llvm.fabs.f32", &z, 1);
    LLVMValueRef t = cg_fdiv(cg, fc(cg, 1.0), fma3(cg, az, fc(cg, 0.3275911), fc(cg, 1.0)));
    static const double A[] = {1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592};
    LLVMValueRef poly = cg_fmul(cg, horner(cg, t, A, 5), t);
    LLVMValueRef q = cg_fmul(cg, poly, math_exp_nonpos(cg, cg_fmul(cg, LLVMBuildFNeg(cg->B, z, ""), z)));
    LLVMValueRef one_plus_erf = sel(cg, fcmp(cg, LLVMRealOGE, x, fc(cg, 0.0)), cg_fsub(cg, fc(cg, 2.0), q), q);
    end_fn(cg, &mf, cg_fmul(cg, cg_fmul(cg, x, fc(cg, 0.5)), one_plus_erf));
  }
  return call1(cg, &mf, xv);
}

/* sin and cos in double, for positional encodings, whose angles reach the
 * sequence length (thousands of radians): reduction by pi/2 in three
 * parts (Cody-Waite) stays exact for |x| < 2^20, then Taylor polynomials
 * on [-pi/4, pi/4] (error < 1e-17). */
void math_sincos_f64(CG *cg, LLVMValueRef x, LLVMValueRef *sin_out, LLVMValueRef *cos_out) {
  LLVMTypeRef f64 = LLVMDoubleTypeInContext(cg->C);
  LLVMBuilderRef b = cg->B;
#define D(v) LLVMConstReal(f64, (v))
  LLVMValueRef half = LLVMBuildFAdd(b, LLVMBuildFMul(b, x, D(0.63661977236758134308), ""), D(0.5), "");
  LLVMValueRef k = cg_intrinsic(cg, "llvm.floor.f64", &half, 1);
  LLVMValueRef r = LLVMBuildFSub(b, x, LLVMBuildFMul(b, k, D(1.5707963267341256e+00), ""), "");
  r = LLVMBuildFSub(b, r, LLVMBuildFMul(b, k, D(6.0771005065061922e-11), ""), "");
  r = LLVMBuildFSub(b, r, LLVMBuildFMul(b, k, D(2.0222662487959506e-21), ""), "");
  LLVMValueRef z = LLVMBuildFMul(b, r, r, "");
  /* sin r = r (1 - z/3! + z^2/5! - ...), cos r = 1 - z/2! + z^2/4! - ... */
  LLVMValueRef s = D(0.0), c = D(0.0);
  double fs = 1.0, fc = 1.0;
  for (int i = 1; i <= 17; i++) fs *= i;
  for (int i = 1; i <= 18; i++) fc *= i;
  for (int n = 8; n >= 0; n--) {
    double sign = (n % 2) ? -1.0 : 1.0;
    s = LLVMBuildFAdd(b, LLVMBuildFMul(b, s, z, ""), D(sign / fs), "");
    c = LLVMBuildFAdd(b, LLVMBuildFMul(b, c, z, ""), D(-sign / fc), "");
    fs /= (2 * n + 1) * (n > 0 ? 2 * n : 1);
    fc /= (2 * n + 2) * (2 * n + 1);
  }
  s = LLVMBuildFMul(b, s, r, "");
  c = LLVMBuildFAdd(b, LLVMBuildFMul(b, c, z, ""), D(1.0), "");
#undef D
  /* quadrant: sin x = s, c, -s, -c and cos x = c, -s, -c, s for k mod 4 */
  LLVMValueRef q = LLVMBuildAnd(b, LLVMBuildFPToSI(b, k, cg->i32, ""), cg_i32(cg, 3), "");
  LLVMValueRef odd = LLVMBuildICmp(b, LLVMIntNE, LLVMBuildAnd(b, q, cg_i32(cg, 1), ""), cg_i32(cg, 0), "");
  LLVMValueRef neg_s = LLVMBuildICmp(b, LLVMIntUGE, q, cg_i32(cg, 2), "");
  LLVMValueRef neg_c = LLVMBuildICmp(b, LLVMIntEQ, LLVMBuildAnd(b, LLVMBuildAdd(b, q, cg_i32(cg, 1), ""), cg_i32(cg, 2), ""),
                                     cg_i32(cg, 2), "");
  LLVMValueRef sv = LLVMBuildSelect(b, odd, c, s, ""), cv = LLVMBuildSelect(b, odd, s, c, "");
  *sin_out = LLVMBuildSelect(b, neg_s, LLVMBuildFNeg(b, sv, ""), sv, "");
  *cos_out = LLVMBuildSelect(b, neg_c, LLVMBuildFNeg(b, cv, ""), cv, "");
}
