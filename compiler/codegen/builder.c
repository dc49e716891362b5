/* builder.c: the LLVM building blocks of the code generator, which every
 * kernel uses: constants, float ops under the current fast-math flags,
 * intrinsics, function attributes and new functions, entry-block allocas,
 * i64 index arithmetic, f32 loads and stores, counted loops (plain, not
 * unrolled, or carrying values in phis), prefetches, explicit vectors of
 * cg->vl lanes (load, store, splat, FMA), and the dims of the function
 * being built (a dim's value, products of dims, batch offsets under
 * broadcasting).
 *
 * Needs: the LLVM C API and the graph IR only; no other file of
 * compiler/codegen/. */
#include <llvm-c/DebugInfo.h>
#include <string.h>

#include "cg.h"

/* ---- small builders --------------------------------------------------- */
LLVMValueRef cg_f32(CG *cg, double v) { return LLVMConstReal(cg->f32, v); }
LLVMValueRef cg_i32(CG *cg, int64_t v) { return LLVMConstInt(cg->i32, (unsigned long long)v, 1); }
LLVMValueRef i64c(CG *cg, int64_t v) { return LLVMConstInt(cg->i64, (unsigned long long)v, 1); }

static LLVMValueRef with_fmf(CG *cg, LLVMValueRef v) {
  if (cg->fmf && LLVMIsAInstruction(v)) LLVMSetFastMathFlags(v, cg->fmf);
  return v;
}
LLVMValueRef cg_fadd(CG *cg, LLVMValueRef a, LLVMValueRef b) { return with_fmf(cg, LLVMBuildFAdd(cg->B, a, b, "")); }
LLVMValueRef cg_fsub(CG *cg, LLVMValueRef a, LLVMValueRef b) { return with_fmf(cg, LLVMBuildFSub(cg->B, a, b, "")); }
LLVMValueRef cg_fmul(CG *cg, LLVMValueRef a, LLVMValueRef b) { return with_fmf(cg, LLVMBuildFMul(cg->B, a, b, "")); }
LLVMValueRef cg_fdiv(CG *cg, LLVMValueRef a, LLVMValueRef b) { return with_fmf(cg, LLVMBuildFDiv(cg->B, a, b, "")); }
/* Float ops built from now on may be reassociated and ignore the sign of
 * zero (sums and dot products, which then vectorize); the caller puts
 * cg->fmf back. */
LLVMValueRef reduce_fmf(CG *cg) {
  cg->fmf = LLVMFastMathAllowContract | LLVMFastMathAllowReassoc | LLVMFastMathNoSignedZeros;
  return NULL;
}

LLVMValueRef cg_intrinsic(CG *cg, const char *name, LLVMValueRef *args, int nargs) {
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  if (!id) internal_error("no intrinsic %s", name);
  LLVMTypeRef types[2] = {LLVMTypeOf(args[0]), LLVMTypeOf(args[0])};
  /* Overloaded on the operand type (one type for the ones used here). */
  LLVMValueRef fn = LLVMGetIntrinsicDeclaration(cg->M, id, types, 1);
  LLVMTypeRef fty = LLVMIntrinsicGetType(cg->C, id, types, 1);
  return with_fmf(cg, LLVMBuildCall2(cg->B, fty, fn, args, (unsigned)nargs, ""));
}

void add_attr(CG *cg, LLVMValueRef fn, int idx, const char *name) {
  unsigned kind = LLVMGetEnumAttributeKindForName(name, strlen(name));
  if (!kind) internal_error("no attribute %s", name);
  LLVMAddAttributeAtIndex(fn, (LLVMAttributeIndex)idx, LLVMCreateEnumAttribute(cg->C, kind, 0));
}

static void add_str_attr(CG *cg, LLVMValueRef fn, const char *k, const char *v) {
  LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                          LLVMCreateStringAttribute(cg->C, k, (unsigned)strlen(k), v, (unsigned)strlen(v)));
}

/* The target CPU and features go on every function: they pick the vector
 * ISA for the vectorizer's cost model and for instruction selection. */
void cg_set_fn_attrs(CG *cg, LLVMValueRef fn) {
  add_attr(cg, fn, (int)LLVMAttributeFunctionIndex, "nounwind");
  if (cg->cpu && *cg->cpu) add_str_attr(cg, fn, "target-cpu", cg->cpu);
  if (cg->features && *cg->features) add_str_attr(cg, fn, "target-features", cg->features);
  /* LLVM defaults to 256-bit vectors on some AVX-512 CPUs (skylake-avx512)
   * to avoid their clock drop; the kernels here are long dense loops that
   * gain from full width.  A target without 512-bit vectors ignores it. */
  add_str_attr(cg, fn, "prefer-vector-width", "512");
}

LLVMValueRef new_fn(CG *cg, const char *name, LLVMTypeRef ty, bool internal) {
  LLVMValueRef fn = LLVMAddFunction(cg->M, name, ty);
  if (internal) LLVMSetLinkage(fn, LLVMInternalLinkage);
  cg_set_fn_attrs(cg, fn);
  cg->fn = fn;
  cg->entry = LLVMAppendBasicBlockInContext(cg->C, fn, "entry");
  LLVMPositionBuilderAtEnd(cg->B, cg->entry);
  cg->fmf = LLVMFastMathAllowContract;
  return fn;
}

/* An alloca in the entry block, where mem2reg can promote it. */
LLVMValueRef entry_alloca(CG *cg, LLVMTypeRef ty, const char *name) {
  LLVMBuilderRef b = LLVMCreateBuilderInContext(cg->C);
  LLVMValueRef first = LLVMGetFirstInstruction(cg->entry);
  if (first) LLVMPositionBuilderBefore(b, first);
  else LLVMPositionBuilderAtEnd(b, cg->entry);
  LLVMValueRef a = LLVMBuildAlloca(b, ty, name);
  LLVMDisposeBuilder(b);
  return a;
}

LLVMValueRef add64(CG *cg, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildNSWAdd(cg->B, a, b, ""); }
LLVMValueRef mul64(CG *cg, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildNSWMul(cg->B, a, b, ""); }
LLVMValueRef div64(CG *cg, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildSDiv(cg->B, a, b, ""); }
LLVMValueRef rem64(CG *cg, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildSRem(cg->B, a, b, ""); }

LLVMValueRef elem_ptr(CG *cg, LLVMValueRef base, LLVMValueRef idx) {
  return LLVMBuildInBoundsGEP2(cg->B, cg->f32, base, &idx, 1, "");
}
LLVMValueRef load_f(CG *cg, LLVMValueRef base, LLVMValueRef idx) {
  return LLVMBuildLoad2(cg->B, cg->f32, elem_ptr(cg, base, idx), "");
}
void store_f(CG *cg, LLVMValueRef v, LLVMValueRef base, LLVMValueRef idx) {
  LLVMBuildStore(cg->B, v, elem_ptr(cg, base, idx));
}

/* ---- loops ------------------------------------------------------------ */
/* for (iv = start; iv < end; iv++) { ... loop_end } */
LLVMValueRef loop_begin(CG *cg, Loop *l, LLVMValueRef start, LLVMValueRef end) {
  LLVMBasicBlockRef pre = LLVMGetInsertBlock(cg->B);
  l->head = LLVMAppendBasicBlockInContext(cg->C, cg->fn, "loop");
  LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(cg->C, cg->fn, "body");
  l->exit = LLVMAppendBasicBlockInContext(cg->C, cg->fn, "done");
  LLVMBuildBr(cg->B, l->head);
  LLVMPositionBuilderAtEnd(cg->B, l->head);
  l->iv = LLVMBuildPhi(cg->B, cg->i64, "i");
  LLVMAddIncoming(l->iv, &start, &pre, 1);
  LLVMBuildCondBr(cg->B, LLVMBuildICmp(cg->B, LLVMIntSLT, l->iv, end, ""), body, l->exit);
  LLVMPositionBuilderAtEnd(cg->B, body);
  return l->iv;
}

void loop_end(CG *cg, Loop *l) {
  LLVMValueRef next = LLVMBuildNSWAdd(cg->B, l->iv, i64c(cg, 1), "");
  LLVMBasicBlockRef latch = LLVMGetInsertBlock(cg->B);
  LLVMAddIncoming(l->iv, &next, &latch, 1);
  LLVMBuildBr(cg->B, l->head);
  LLVMPositionBuilderAtEnd(cg->B, l->exit);
}

LLVMValueRef cloop_begin(CG *cg, CLoop *c, LLVMValueRef start, LLVMValueRef end, LLVMValueRef *init, int n) {
  LLVMBasicBlockRef pre = LLVMGetInsertBlock(cg->B);
  LLVMValueRef iv = loop_begin(cg, &c->l, start, end);
  /* the phis go in the head, before its compare */
  LLVMBasicBlockRef body = LLVMGetInsertBlock(cg->B);
  LLVMPositionBuilderBefore(cg->B, LLVMGetNextInstruction(c->l.iv));
  c->n = n;
  for (int i = 0; i < n; i++) {
    c->v[i] = LLVMBuildPhi(cg->B, LLVMTypeOf(init[i]), "acc");
    LLVMAddIncoming(c->v[i], &init[i], &pre, 1);
  }
  LLVMPositionBuilderAtEnd(cg->B, body);
  return iv;
}

/* The register-blocked loops are already as wide as the registers allow:
 * unrolling them (fully, for a constant head dim) only multiplies the
 * code the back end has to allocate registers for, which is most of
 * attnc's compile time.  The back edge gets llvm.loop.unroll.disable. */
static void no_unroll(CG *cg, LLVMValueRef br) {
  LLVMMetadataRef tmp = LLVMTemporaryMDNode(cg->C, NULL, 0);
  LLVMMetadataRef str = LLVMMDStringInContext2(cg->C, "llvm.loop.unroll.disable", 24);
  LLVMMetadataRef dis = LLVMMDNodeInContext2(cg->C, &str, 1);
  LLVMMetadataRef ops[2] = {tmp, dis};
  LLVMMetadataRef loop = LLVMMDNodeInContext2(cg->C, ops, 2);
  LLVMMetadataReplaceAllUsesWith(tmp, loop);
  LLVMSetMetadata(br, LLVMGetMDKindIDInContext(cg->C, "llvm.loop", 9), LLVMMetadataAsValue(cg->C, loop));
}

void loop_end_nounroll(CG *cg, Loop *l) {
  LLVMBasicBlockRef latch = LLVMGetInsertBlock(cg->B);
  loop_end(cg, l);
  no_unroll(cg, LLVMGetBasicBlockTerminator(latch));
}

void cloop_end(CG *cg, CLoop *c, LLVMValueRef *next) {
  LLVMBasicBlockRef latch = LLVMGetInsertBlock(cg->B);
  for (int i = 0; i < c->n; i++) LLVMAddIncoming(c->v[i], &next[i], &latch, 1);
  loop_end(cg, &c->l);
  /* loop_end's back edge is the latch's terminator */
  no_unroll(cg, LLVMGetBasicBlockTerminator(latch));
}

/* A data prefetch into all cache levels, for reading (rw 0) or writing */
void prefetch(CG *cg, LLVMValueRef p, int rw) {
  LLVMValueRef args[4] = {p, cg_i32(cg, rw), cg_i32(cg, 3), cg_i32(cg, 1)};
  LLVMTypeRef pty[1] = {cg->ptr};
  unsigned id = LLVMLookupIntrinsicID("llvm.prefetch", 13);
  LLVMBuildCall2(cg->B, LLVMIntrinsicGetType(cg->C, id, pty, 1), LLVMGetIntrinsicDeclaration(cg->M, id, pty, 1), args, 4, "");
}

/* ---- explicit vectors (cg->vl lanes of f32) ------------------------------ */
LLVMValueRef vload(CG *cg, LLVMValueRef base, LLVMValueRef idx) {
  LLVMValueRef v = LLVMBuildLoad2(cg->B, cg->vf, elem_ptr(cg, base, idx), "");
  LLVMSetAlignment(v, 4);
  return v;
}
void vstore(CG *cg, LLVMValueRef v, LLVMValueRef base, LLVMValueRef idx) {
  LLVMValueRef st = LLVMBuildStore(cg->B, v, elem_ptr(cg, base, idx));
  LLVMSetAlignment(st, 4);
}
LLVMValueRef vsplat(CG *cg, LLVMValueRef x) {
  if (LLVMIsConstant(x)) {
    LLVMValueRef e[64];
    for (int i = 0; i < cg->vl; i++) e[i] = x;
    return LLVMConstVector(e, (unsigned)cg->vl);
  }
  LLVMValueRef v = LLVMBuildInsertElement(cg->B, LLVMGetUndef(cg->vf), x, cg_i32(cg, 0), "");
  return LLVMBuildShuffleVector(cg->B, v, LLVMGetUndef(cg->vf), LLVMConstNull(LLVMVectorType(cg->i32, (unsigned)cg->vl)), "");
}
LLVMValueRef vfc(CG *cg, double x) { return vsplat(cg, cg_f32(cg, x)); }
/* a*b + c, one FMA where the target has it */
LLVMValueRef vfma(CG *cg, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c) {
  LLVMValueRef args[3] = {a, b, c};
  return cg_intrinsic(cg, "llvm.fmuladd.f32", args, 3);
}

/* ---- dims ---------------------------------------------------------------- */
LLVMValueRef dim(CG *cg, Dim d) { return d.sym < 0 ? i64c(cg, d.size) : cg->dimv[d.sym]; }

/* Product of dims [from, to) of t. */
LLVMValueRef dims_prod(CG *cg, const Type *t, int from, int to) {
  LLVMValueRef p = i64c(cg, 1);
  for (int i = from; i < to; i++) p = mul64(cg, p, dim(cg, t->dims[i]));
  return p;
}

bool is_one(Dim d) { return d.sym < 0 && d.size == 1; }

/* Offset of the batch part of an operand for the result's batch index
 * idx[0..nb): operand batch dims are aligned to the right. */
LLVMValueRef batch_offset(CG *cg, const Type *res, int nb, LLVMValueRef *idx,
                          const Type *op, int op_nb, LLVMValueRef matrix_size) {
  LLVMValueRef off = i64c(cg, 0), stride = matrix_size;
  int shift = nb - op_nb;
  for (int ax = nb - 1; ax >= shift; ax--) {
    Dim d = op->dims[ax - shift];
    if (!(is_one(d) && !is_one(res->dims[ax]))) off = add64(cg, off, mul64(cg, idx[ax], stride));
    stride = mul64(cg, stride, dim(cg, d));
  }
  return off;
}

/* ---- bf16 weights (--weights-dtype bf16, pass_weights_bf16) -----------------
 * A bf16 param and what is laid out from it hold bf16 elements (2 bytes).
 * A bf16 value is the upper half of an f32: widening is exact (zero
 * extend, shift left by 16: one instruction each, or a load that extends,
 * on any x86 with AVX2 and on NEON), and so is narrowing a value that came
 * from bf16 (shift right by 16, truncate), which is all a layout kernel
 * (pack, transpose) does.  So every
 * product still multiplies and accumulates in f32; only the weights'
 * storage is rounded (by the runtime, to nearest even, when they are
 * bound).  bf selects the element type of the buffer in the *_w functions
 * below: the packed panels of a GEMM's B (gemm.c) and W_hh^T of a
 * recurrence (recurrent.c). */
static LLVMTypeRef bf_vty(CG *cg) { return LLVMVectorType(LLVMInt16TypeInContext(cg->C), (unsigned)cg->vl); }

static LLVMValueRef bf_splat16(CG *cg) {
  LLVMValueRef e[64];
  for (int i = 0; i < cg->vl; i++) e[i] = cg_i32(cg, 16);
  return LLVMConstVector(e, (unsigned)cg->vl);
}

static LLVMValueRef bf_widen(CG *cg, LLVMValueRef v, bool vec) {
  LLVMValueRef w = LLVMBuildZExt(cg->B, v, vec ? LLVMVectorType(cg->i32, (unsigned)cg->vl) : cg->i32, "");
  w = LLVMBuildShl(cg->B, w, vec ? bf_splat16(cg) : cg_i32(cg, 16), "");
  return LLVMBuildBitCast(cg->B, w, vec ? cg->vf : cg->f32, "");
}

static LLVMValueRef bf_narrow(CG *cg, LLVMValueRef f, bool vec) {
  LLVMValueRef w = LLVMBuildBitCast(cg->B, f, vec ? LLVMVectorType(cg->i32, (unsigned)cg->vl) : cg->i32, "");
  w = LLVMBuildLShr(cg->B, w, vec ? bf_splat16(cg) : cg_i32(cg, 16), "");
  return LLVMBuildTrunc(cg->B, w, vec ? bf_vty(cg) : LLVMInt16TypeInContext(cg->C), "");
}

LLVMValueRef welem_ptr(CG *cg, bool bf, LLVMValueRef base, LLVMValueRef idx) {
  return bf ? LLVMBuildInBoundsGEP2(cg->B, LLVMInt16TypeInContext(cg->C), base, &idx, 1, "") : elem_ptr(cg, base, idx);
}

LLVMValueRef load_w(CG *cg, bool bf, LLVMValueRef base, LLVMValueRef idx) {
  if (!bf) return load_f(cg, base, idx);
  return bf_widen(cg, LLVMBuildLoad2(cg->B, LLVMInt16TypeInContext(cg->C), welem_ptr(cg, bf, base, idx), ""), false);
}

void store_w(CG *cg, bool bf, LLVMValueRef v, LLVMValueRef base, LLVMValueRef idx) {
  if (!bf) store_f(cg, v, base, idx);
  else LLVMBuildStore(cg->B, bf_narrow(cg, v, false), welem_ptr(cg, bf, base, idx));
}

LLVMValueRef vload_w(CG *cg, bool bf, LLVMValueRef base, LLVMValueRef idx) {
  if (!bf) return vload(cg, base, idx);
  LLVMValueRef v = LLVMBuildLoad2(cg->B, bf_vty(cg), welem_ptr(cg, bf, base, idx), "");
  LLVMSetAlignment(v, 2);
  return bf_widen(cg, v, true);
}

void vstore_w(CG *cg, bool bf, LLVMValueRef v, LLVMValueRef base, LLVMValueRef idx) {
  if (!bf) {
    vstore(cg, v, base, idx);
    return;
  }
  LLVMValueRef st = LLVMBuildStore(cg->B, bf_narrow(cg, v, true), welem_ptr(cg, bf, base, idx));
  LLVMSetAlignment(st, 2);
}
