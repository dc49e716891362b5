/* codegen.c: graph IR -> LLVM IR, through the LLVM C API.
 *
 * Needs: graphs that went through plan_memory.
 * Guarantees: one LLVM module holding, per model NAME:
 *   - a kernel function per op: void(ptr bufs, ptr dims, i64 begin, i64 end)
 *     that computes rows [begin, end) of the op's result (what a row is,
 *     per op, is in rows_of());
 *   - NAME's body (attnrt_model_desc.body): points bufs at inputs, params,
 *     outputs and scratch slots, then runs each kernel through the
 *     runtime's attnrt_parallel_for;
 *   - its scratch size function, with overflow checks;
 *   - the constant descriptor NAME_model, the typed entry point NAME(...)
 *     and NAME_scratch_size(...), declared by the generated header.
 * Loops are plain scalar loops over symbolic dims, written so that the
 * loop vectorizer widens the innermost one to the target's vectors. */
#include <llvm-c/Analysis.h>
#include <llvm-c/DebugInfo.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cg.h"
#include "codegen.h"

/* ---- small builders --------------------------------------------------- */
LLVMValueRef cg_f32(CG *cg, double v) { return LLVMConstReal(cg->f32, v); }
LLVMValueRef cg_i32(CG *cg, int64_t v) { return LLVMConstInt(cg->i32, (unsigned long long)v, 1); }
static LLVMValueRef i64c(CG *cg, int64_t v) { return LLVMConstInt(cg->i64, (unsigned long long)v, 1); }

static LLVMValueRef with_fmf(CG *cg, LLVMValueRef v) {
  if (cg->fmf && LLVMIsAInstruction(v)) LLVMSetFastMathFlags(v, cg->fmf);
  return v;
}
LLVMValueRef cg_fadd(CG *cg, LLVMValueRef a, LLVMValueRef b) { return with_fmf(cg, LLVMBuildFAdd(cg->B, a, b, "")); }
LLVMValueRef cg_fsub(CG *cg, LLVMValueRef a, LLVMValueRef b) { return with_fmf(cg, LLVMBuildFSub(cg->B, a, b, "")); }
LLVMValueRef cg_fmul(CG *cg, LLVMValueRef a, LLVMValueRef b) { return with_fmf(cg, LLVMBuildFMul(cg->B, a, b, "")); }
LLVMValueRef cg_fdiv(CG *cg, LLVMValueRef a, LLVMValueRef b) { return with_fmf(cg, LLVMBuildFDiv(cg->B, a, b, "")); }

LLVMValueRef cg_intrinsic(CG *cg, const char *name, LLVMValueRef *args, int nargs) {
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  if (!id) internal_error("no intrinsic %s", name);
  LLVMTypeRef types[2] = {LLVMTypeOf(args[0]), LLVMTypeOf(args[0])};
  /* Overloaded on the operand type (one type for the ones used here). */
  LLVMValueRef fn = LLVMGetIntrinsicDeclaration(cg->M, id, types, 1);
  LLVMTypeRef fty = LLVMIntrinsicGetType(cg->C, id, types, 1);
  return with_fmf(cg, LLVMBuildCall2(cg->B, fty, fn, args, (unsigned)nargs, ""));
}

static void add_attr(CG *cg, LLVMValueRef fn, int idx, const char *name) {
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

static LLVMValueRef new_fn(CG *cg, const char *name, LLVMTypeRef ty, bool internal) {
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
static LLVMValueRef entry_alloca(CG *cg, LLVMTypeRef ty, const char *name) {
  LLVMBuilderRef b = LLVMCreateBuilderInContext(cg->C);
  LLVMValueRef first = LLVMGetFirstInstruction(cg->entry);
  if (first) LLVMPositionBuilderBefore(b, first);
  else LLVMPositionBuilderAtEnd(b, cg->entry);
  LLVMValueRef a = LLVMBuildAlloca(b, ty, name);
  LLVMDisposeBuilder(b);
  return a;
}

static LLVMValueRef add64(CG *cg, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildNSWAdd(cg->B, a, b, ""); }
static LLVMValueRef mul64(CG *cg, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildNSWMul(cg->B, a, b, ""); }
static LLVMValueRef div64(CG *cg, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildSDiv(cg->B, a, b, ""); }
static LLVMValueRef rem64(CG *cg, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildSRem(cg->B, a, b, ""); }

static LLVMValueRef elem_ptr(CG *cg, LLVMValueRef base, LLVMValueRef idx) {
  return LLVMBuildInBoundsGEP2(cg->B, cg->f32, base, &idx, 1, "");
}
static LLVMValueRef load_f(CG *cg, LLVMValueRef base, LLVMValueRef idx) {
  return LLVMBuildLoad2(cg->B, cg->f32, elem_ptr(cg, base, idx), "");
}
static void store_f(CG *cg, LLVMValueRef v, LLVMValueRef base, LLVMValueRef idx) {
  LLVMBuildStore(cg->B, v, elem_ptr(cg, base, idx));
}

/* ---- loops ------------------------------------------------------------ */
typedef struct Loop { LLVMValueRef iv; LLVMBasicBlockRef head, exit; } Loop;

/* for (iv = start; iv < end; iv++) { ... loop_end } */
static LLVMValueRef loop_begin(CG *cg, Loop *l, LLVMValueRef start, LLVMValueRef end) {
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

static void loop_end(CG *cg, Loop *l) {
  LLVMValueRef next = LLVMBuildNSWAdd(cg->B, l->iv, i64c(cg, 1), "");
  LLVMBasicBlockRef latch = LLVMGetInsertBlock(cg->B);
  LLVMAddIncoming(l->iv, &next, &latch, 1);
  LLVMBuildBr(cg->B, l->head);
  LLVMPositionBuilderAtEnd(cg->B, l->exit);
}

/* A loop that carries values (vector accumulators) in phis: body code
 * reads c->v[i] and hands the next values to cloop_end; after the loop
 * c->v[i] hold the final values. */
enum { MAX_CARRIED = 40 };
typedef struct CLoop { Loop l; int n; LLVMValueRef v[MAX_CARRIED]; } CLoop;

static LLVMValueRef cloop_begin(CG *cg, CLoop *c, LLVMValueRef start, LLVMValueRef end, LLVMValueRef *init, int n) {
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

/* Edge-case loops (partial tiles and panels): not unrolled and not
 * vectorized.  They run over a few elements, and LLVM's vectorized copy
 * of each (vector body, checks, remainder) was compile time spent on
 * code that hardly runs. */
static void no_vectorize(CG *cg, LLVMValueRef br) {
  LLVMMetadataRef tmp = LLVMTemporaryMDNode(cg->C, NULL, 0);
  LLVMMetadataRef ops[4] = {tmp};
  const char *keys[3] = {"llvm.loop.unroll.disable", "llvm.loop.vectorize.width", "llvm.loop.interleave.count"};
  for (int i = 0; i < 3; i++) {
    LLVMMetadataRef kv[2] = {LLVMMDStringInContext2(cg->C, keys[i], strlen(keys[i])),
                             LLVMValueAsMetadata(LLVMConstInt(cg->i32, 1, 0))};
    ops[i + 1] = LLVMMDNodeInContext2(cg->C, kv, i ? 2 : 1);
  }
  LLVMMetadataRef loop = LLVMMDNodeInContext2(cg->C, ops, 4);
  LLVMMetadataReplaceAllUsesWith(tmp, loop);
  LLVMSetMetadata(br, LLVMGetMDKindIDInContext(cg->C, "llvm.loop", 9), LLVMMetadataAsValue(cg->C, loop));
}
static void loop_end_scalar(CG *cg, Loop *l) {
  LLVMBasicBlockRef latch = LLVMGetInsertBlock(cg->B);
  loop_end(cg, l);
  no_vectorize(cg, LLVMGetBasicBlockTerminator(latch));
}

static void loop_end_nounroll(CG *cg, Loop *l) {
  LLVMBasicBlockRef latch = LLVMGetInsertBlock(cg->B);
  loop_end(cg, l);
  no_unroll(cg, LLVMGetBasicBlockTerminator(latch));
}

static void cloop_end(CG *cg, CLoop *c, LLVMValueRef *next) {
  LLVMBasicBlockRef latch = LLVMGetInsertBlock(cg->B);
  for (int i = 0; i < c->n; i++) LLVMAddIncoming(c->v[i], &next[i], &latch, 1);
  loop_end(cg, &c->l);
  /* loop_end's back edge is the latch's terminator */
  no_unroll(cg, LLVMGetBasicBlockTerminator(latch));
}

/* A data prefetch into all cache levels, for reading (rw 0) or writing */
static void prefetch(CG *cg, LLVMValueRef p, int rw) {
  LLVMValueRef args[4] = {p, cg_i32(cg, rw), cg_i32(cg, 3), cg_i32(cg, 1)};
  LLVMTypeRef pty[1] = {cg->ptr};
  unsigned id = LLVMLookupIntrinsicID("llvm.prefetch", 13);
  LLVMBuildCall2(cg->B, LLVMIntrinsicGetType(cg->C, id, pty, 1), LLVMGetIntrinsicDeclaration(cg->M, id, pty, 1), args, 4, "");
}

/* ---- explicit vectors (cg->vl lanes of f32) ------------------------------ */
static LLVMValueRef vload(CG *cg, LLVMValueRef base, LLVMValueRef idx) {
  LLVMValueRef v = LLVMBuildLoad2(cg->B, cg->vf, elem_ptr(cg, base, idx), "");
  LLVMSetAlignment(v, 4);
  return v;
}
static void vstore(CG *cg, LLVMValueRef v, LLVMValueRef base, LLVMValueRef idx) {
  LLVMValueRef st = LLVMBuildStore(cg->B, v, elem_ptr(cg, base, idx));
  LLVMSetAlignment(st, 4);
}
static LLVMValueRef vsplat(CG *cg, LLVMValueRef x) {
  if (LLVMIsConstant(x)) {
    LLVMValueRef e[64];
    for (int i = 0; i < cg->vl; i++) e[i] = x;
    return LLVMConstVector(e, (unsigned)cg->vl);
  }
  LLVMValueRef v = LLVMBuildInsertElement(cg->B, LLVMGetUndef(cg->vf), x, cg_i32(cg, 0), "");
  return LLVMBuildShuffleVector(cg->B, v, LLVMGetUndef(cg->vf), LLVMConstNull(LLVMVectorType(cg->i32, (unsigned)cg->vl)), "");
}
static LLVMValueRef vfc(CG *cg, double x) { return vsplat(cg, cg_f32(cg, x)); }
/* a*b + c, one FMA where the target has it */
static LLVMValueRef vfma(CG *cg, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c) {
  LLVMValueRef args[3] = {a, b, c};
  return cg_intrinsic(cg, "llvm.fmuladd.f32", args, 3);
}
/* a > b ? a : b, one vmaxps on x86: a NaN in a gives b */
static LLVMValueRef vmax(CG *cg, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildSelect(cg->B, LLVMBuildFCmp(cg->B, LLVMRealOGT, a, b, ""), a, b, "");
}
static LLVMValueRef viota64_splat(CG *cg, LLVMValueRef x) {
  LLVMTypeRef vi = LLVMVectorType(cg->i64, (unsigned)cg->vl);
  LLVMValueRef b = LLVMBuildInsertElement(cg->B, LLVMGetUndef(vi), x, cg_i32(cg, 0), "");
  return LLVMBuildShuffleVector(cg->B, b, LLVMGetUndef(vi), LLVMConstNull(LLVMVectorType(cg->i32, (unsigned)cg->vl)), "");
}
/* <base, base+1, ...> as i64 lanes */
static LLVMValueRef viota64(CG *cg, LLVMValueRef base) {
  LLVMTypeRef vi = LLVMVectorType(cg->i64, (unsigned)cg->vl);
  LLVMValueRef e[64];
  for (int i = 0; i < cg->vl; i++) e[i] = i64c(cg, i);
  LLVMValueRef b = LLVMBuildInsertElement(cg->B, LLVMGetUndef(vi), base, cg_i32(cg, 0), "");
  b = LLVMBuildShuffleVector(cg->B, b, LLVMGetUndef(vi), LLVMConstNull(LLVMVectorType(cg->i32, (unsigned)cg->vl)), "");
  return LLVMBuildAdd(cg->B, b, LLVMConstVector(e, (unsigned)cg->vl), "");
}

/* ---- dims ---------------------------------------------------------------- */
static void load_dims(CG *cg, LLVMValueRef dims) {
  for (int s = 0; s < cg->g->model->nsyms; s++) {
    LLVMValueRef idx = i64c(cg, s);
    LLVMValueRef p = LLVMBuildInBoundsGEP2(cg->B, cg->i64, dims, &idx, 1, "");
    cg->dimv[s] = LLVMBuildLoad2(cg->B, cg->i64, p, cg->g->model->syms[s]);
  }
}

static LLVMValueRef dim(CG *cg, Dim d) { return d.sym < 0 ? i64c(cg, d.size) : cg->dimv[d.sym]; }

/* Product of dims [from, to) of t. */
static LLVMValueRef dims_prod(CG *cg, const Type *t, int from, int to) {
  LLVMValueRef p = i64c(cg, 1);
  for (int i = from; i < to; i++) p = mul64(cg, p, dim(cg, t->dims[i]));
  return p;
}

static bool is_one(Dim d) { return d.sym < 0 && d.size == 1; }

/* ---- kernels ----------------------------------------------------------- */
enum { ATT_QTILE_ROWS = 4 };   /* query rows per tile of fused attention */
typedef struct Kernel {
  CG *cg;
  const Node *n;
  LLVMValueRef out;                 /* result buffer */
  LLVMValueRef in[MAX_OPERANDS];    /* operand buffers (NULL for constants) */
  LLVMValueRef begin, end;
} Kernel;

/* Rows of each op: the unit the thread pool splits, and the rows'
 * count as a function of the dims (emitted in the body). */
enum { EW_CHUNK = 1024 };

static bool ew_is_flat(const Graph *g, const Node *n) {
  for (int k = 0; k < n->nin; k++) {
    const Node *a = &g->nodes[n->in[k]];
    if (a->op != OP_CONST && !type_eq(a->type, n->type)) return false;
  }
  return true;
}

static bool att_fast(CG *cg, const Node *n);
static int att_qt(CG *cg);
static bool gemm_fast(CG *cg, const Node *n);
static int gemm_mr(CG *cg);
static void transpose_regs(CG *cg, LLVMValueRef *r);   /* vl x vl, in registers (pack section) */
/* see gemm_shared; GEMM_NC: panels per column block (8 beat 16, 32 and
 * none by 0-5% on bench/'s shapes); GEMM_PF_DIST: k rows of B prefetched
 * ahead */
enum { GEMM_KC = 256, GEMM_NC = 8, GEMM_TASK_TILES = 4, GEMM_PF_DIST = 8 };

static LLVMValueRef rows_of(CG *cg, const Node *n) {
  const Graph *g = cg->g;
  const Type *t = &n->type;
  if (n->op == OP_POSENC) return dim(cg, t->dims[0]);
  if (op_info[n->op].traits & T_EW) {
    if (ew_is_flat(g, n)) {
      LLVMValueRef numel = dims_prod(cg, t, 0, t->rank);
      return div64(cg, add64(cg, numel, i64c(cg, EW_CHUNK - 1)), i64c(cg, EW_CHUNK));
    }
    return dims_prod(cg, t, 0, t->rank - 1);
  }
  const Type *a = &g->nodes[n->in[0]].type;
  switch (n->op) {
  case OP_MATMUL: {
    if (gemm_fast(cg, n)) {
      /* one task per GEMM_TASK_TILES row tiles of each batch entry */
      int tr = gemm_mr(cg) * GEMM_TASK_TILES;
      LLVMValueRef M = dim(cg, a->dims[a->rank - 2]);
      return mul64(cg, dims_prod(cg, t, 0, t->rank - 2), div64(cg, add64(cg, M, i64c(cg, tr - 1)), i64c(cg, tr)));
    }
    /* one row of the result per (batch, i); a 1-D rhs makes i the last dim */
    const Type *b = &g->nodes[n->in[1]].type;
    int drop = b->rank == 1 ? 0 : 1;
    return dims_prod(cg, t, 0, t->rank - drop);
  }
  case OP_TRANSPOSE: return dims_prod(cg, t, 0, t->rank - 1);
  case OP_PACK: {
    /* one row per (batch entry, panel of 2 vectors of columns) */
    LLVMValueRef N = dim(cg, t->dims[t->rank - 1]);
    int nr = 2 * cg->vl;
    return mul64(cg, dims_prod(cg, t, 0, t->rank - 2), div64(cg, add64(cg, N, i64c(cg, nr - 1)), i64c(cg, nr)));
  }
  case OP_SOFTMAX: return mul64(cg, dims_prod(cg, t, 0, n->axis), dims_prod(cg, t, n->axis + 1, t->rank));
  case OP_SUM: case OP_MEAN: case OP_MAX:
    return dims_prod(cg, a, 0, n->axis);
  case OP_LAYERNORM: return dims_prod(cg, t, 0, t->rank - 1);
  case OP_GATHER: return dims_prod(cg, a, 0, a->rank);
  case OP_CONCAT: return dims_prod(cg, t, 0, n->axis);
  case OP_SWAP_HEADS: return dims_prod(cg, t, 0, t->rank - 1);
  case OP_LSTM_SEQ: case OP_GRU_SEQ: {
    /* one row per tile of sequences */
    int rb = 2 * (cg->vl >= 16 ? 8 : 4);   /* rec_rb */
    return div64(cg, add64(cg, dims_prod(cg, t, 0, t->rank - 2), i64c(cg, rb - 1)), i64c(cg, rb));
  }
  case OP_ATTENTION: {
    /* one row per tile of queries */
    LLVMValueRef T = dim(cg, t->dims[t->rank - 2]);
    int qt = att_fast(cg, n) ? att_qt(cg) : ATT_QTILE_ROWS;
    LLVMValueRef tiles = div64(cg, add64(cg, T, i64c(cg, qt - 1)), i64c(cg, qt));
    return mul64(cg, dims_prod(cg, t, 0, t->rank - 2), tiles);
  }
  default: internal_error("no rows for %s", op_info[n->op].text);
  }
}

/* Scalar result of an elementwise op. */
static LLVMValueRef ew_apply(CG *cg, Op op, LLVMValueRef a, LLVMValueRef b) {
  switch (op) {
  case OP_ADD: return cg_fadd(cg, a, b);
  case OP_SUB: return cg_fsub(cg, a, b);
  case OP_MUL: return cg_fmul(cg, a, b);
  case OP_DIV: return cg_fdiv(cg, a, b);
  case OP_NEG: return LLVMBuildFNeg(cg->B, a, "");
  case OP_COPY: return a;
  case OP_EXP: return math_exp(cg, a);
  case OP_LOG: return math_log(cg, a);
  case OP_SQRT: return cg_intrinsic(cg, "llvm.sqrt.f32", &a, 1);
  case OP_TANH: return math_tanh(cg, a);
  case OP_SIGMOID:
    return cg_fdiv(cg, cg_f32(cg, 1.0), cg_fadd(cg, cg_f32(cg, 1.0), math_exp(cg, LLVMBuildFNeg(cg->B, a, ""))));
  case OP_SILU:
    /* x / (1 + exp(-x)), as PyTorch computes it */
    return cg_fdiv(cg, a, cg_fadd(cg, cg_f32(cg, 1.0), math_exp(cg, LLVMBuildFNeg(cg->B, a, ""))));
  case OP_RELU:
    /* NaN stays NaN, as in PyTorch */
    return LLVMBuildSelect(cg->B, LLVMBuildFCmp(cg->B, LLVMRealOLT, a, cg_f32(cg, 0.0), ""), cg_f32(cg, 0.0), a, "");
  case OP_GELU: return math_gelu(cg, a);
  default: internal_error("%s is not elementwise", op_info[op].text);
  }
}

static LLVMValueRef operand_at(Kernel *k, int i, LLVMValueRef idx) {
  const Node *a = &k->cg->g->nodes[k->n->in[i]];
  if (a->op == OP_CONST) return cg_f32(k->cg, a->fval);
  return load_f(k->cg, k->in[i], idx);
}

/* The node's value at one element from its operands' values v (and, for
 * a matmul epilogue, the matmul's own element self). */
static LLVMValueRef ew_value(Kernel *k, LLVMValueRef *v, LLVMValueRef self) {
  const Node *n = k->n;
  if (!n->prog) return ew_apply(k->cg, n->op, v[0], n->nin > 1 ? v[1] : NULL);
  LLVMValueRef *res = NEW_ARRAY(LLVMValueRef, n->nprog);
  for (int s = 0; s < n->nprog; s++) {
    const EwStep *st = &n->prog[s];
    int refs[2] = {st->a, st->b};
    LLVMValueRef x[2];
    for (int r = 0; r < 2; r++)
      x[r] = refs[r] == EW_SELF ? self : refs[r] >= 0 ? v[refs[r]] : res[-refs[r] - 1];
    res[s] = ew_apply(k->cg, st->op, x[0], op_info[st->op].arity > 1 ? x[1] : NULL);
  }
  return res[n->nprog - 1];
}

/* For result row `row` (an index over all dims but the last), the offset
 * of each operand from `from` on, and whether it broadcasts along the last
 * dim. */
static void row_bases(Kernel *k, LLVMValueRef row, int from, LLVMValueRef *base, bool *inner_bcast) {
  CG *cg = k->cg;
  const Node *n = k->n;
  const Type *t = &n->type;
  int rank = t->rank;
  LLVMValueRef idx[MAX_RANK];
  LLVMValueRef rem = row;
  for (int ax = rank - 2; ax >= 0; ax--) {
    LLVMValueRef d = dim(cg, t->dims[ax]);
    idx[ax] = rem64(cg, rem, d);
    rem = div64(cg, rem, d);
  }
  for (int o = from; o < n->nin; o++) {
    const Type *at = &cg->g->nodes[n->in[o]].type;
    base[o] = i64c(cg, 0);
    inner_bcast[o] = true;
    if (cg->g->nodes[n->in[o]].op == OP_CONST) continue;
    int shift = rank - at->rank;
    LLVMValueRef stride = i64c(cg, 1);
    for (int ax = rank - 1; ax >= shift; ax--) {
      Dim ad = at->dims[ax - shift];
      bool bc = is_one(ad) && !is_one(t->dims[ax]);
      if (ax == rank - 1) inner_bcast[o] = bc;
      else if (!bc) base[o] = add64(cg, base[o], mul64(cg, idx[ax], stride));
      stride = mul64(cg, stride, dim(cg, ad));
    }
  }
}

static void emit_ew(Kernel *k) {
  CG *cg = k->cg;
  const Node *n = k->n;
  const Type *t = &n->type;
  Loop r, j;
  if (ew_is_flat(cg->g, n)) {
    LLVMValueRef numel = dims_prod(cg, t, 0, t->rank);
    LLVMValueRef row = loop_begin(cg, &r, k->begin, k->end);
    LLVMValueRef lo = mul64(cg, row, i64c(cg, EW_CHUNK));
    LLVMValueRef hi = add64(cg, lo, i64c(cg, EW_CHUNK));
    hi = LLVMBuildSelect(cg->B, LLVMBuildICmp(cg->B, LLVMIntSLT, hi, numel, ""), hi, numel, "");
    LLVMValueRef i = loop_begin(cg, &j, lo, hi);
    LLVMValueRef v[MAX_OPERANDS];
    for (int o = 0; o < n->nin; o++) v[o] = operand_at(k, o, i);
    store_f(cg, ew_value(k, v, NULL), k->out, i);
    loop_end(cg, &j);
    loop_end(cg, &r);
    return;
  }
  /* Broadcasting: a row is an index over all but the last dim; each
   * operand gets a stride per result axis (0 where it broadcasts). */
  int rank = t->rank;
  LLVMValueRef len = dim(cg, t->dims[rank - 1]);
  LLVMValueRef row = loop_begin(cg, &r, k->begin, k->end);
  LLVMValueRef base[MAX_OPERANDS];
  bool inner_bcast[MAX_OPERANDS];
  row_bases(k, row, 0, base, inner_bcast);
  LLVMValueRef out_base = mul64(cg, row, len);
  LLVMValueRef i = loop_begin(cg, &j, i64c(cg, 0), len);
  LLVMValueRef v[MAX_OPERANDS];
  for (int o = 0; o < n->nin; o++) v[o] = operand_at(k, o, inner_bcast[o] ? base[o] : add64(cg, base[o], i));
  store_f(cg, ew_value(k, v, NULL), k->out, add64(cg, out_base, i));
  loop_end(cg, &j);
  loop_end(cg, &r);
}

/* Offset of the batch part of an operand for the result's batch index
 * idx[0..nb): operand batch dims are aligned to the right. */
static LLVMValueRef batch_offset(CG *cg, const Type *res, int nb, LLVMValueRef *idx,
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

/* A matmul's fused elementwise ops, over its finished output row (still
 * in cache): c[j] = prog(c[j], operands...). */
static void emit_epilogue(Kernel *k, LLVMValueRef row, LLVMValueRef c_off, LLVMValueRef N) {
  if (!k->n->prog) return;
  CG *cg = k->cg;
  LLVMValueRef base[MAX_OPERANDS];
  bool inner_bcast[MAX_OPERANDS];
  /* operands 0 and 1 are the matmul's own, whose shapes are not the result's */
  row_bases(k, row, 2, base, inner_bcast);
  Loop jl;
  LLVMValueRef j = loop_begin(cg, &jl, i64c(cg, 0), N);
  LLVMValueRef v[MAX_OPERANDS];
  for (int o = 0; o < k->n->nin; o++)
    v[o] = o < 2 ? NULL : operand_at(k, o, inner_bcast[o] ? base[o] : add64(cg, base[o], j));
  LLVMValueRef cp = add64(cg, c_off, j);
  store_f(cg, ew_value(k, v, load_f(cg, k->out, cp)), k->out, cp);
  loop_end(cg, &jl);
}

/* The module-wide helper functions (one GEMM, pack and transpose per
 * module) are built with their own builder while a kernel is being
 * emitted: shared_begin saves the kernel's state, shared_end closes the
 * helper (ret void) and puts it back. */
typedef struct SharedFn {
  LLVMBuilderRef b;
  LLVMValueRef fn;
  LLVMBasicBlockRef entry;
  LLVMFastMathFlags fmf;
} SharedFn;

static SharedFn shared_begin(CG *cg) {
  SharedFn sf = {cg->B, cg->fn, cg->entry, cg->fmf};
  cg->B = LLVMCreateBuilderInContext(cg->C);
  return sf;
}

static void shared_end(CG *cg, SharedFn *sf) {
  LLVMBuildRetVoid(cg->B);
  LLVMDisposeBuilder(cg->B);
  cg->B = sf->b;
  cg->fn = sf->fn;
  cg->entry = sf->entry;
  cg->fmf = sf->fmf;
}

/* ---- GEMM: register-blocked over a packed B ---------------------------------
 * C[M, N] = A[M, K] B[K, N] (per batch entry) for a matmul whose B is a
 * `pack` (pass_pack_gemm; emit_pack writes it once per call, in panels of
 * NR = 2 vectors of columns, K rows each).  A task of the thread pool is
 * GEMM_TASK_TILES row tiles of MR rows.  For each block of KC rows it
 * packs its A rows k-major on its stack; for each panel it then runs
 * every row tile over the panel's KC x NR block, read where it is (a
 * contiguous stream): MR x 2 vector accumulators in registers, one
 * broadcast of A per row and two loads of B per k.  Tiles that pass M or
 * N go through a stack tile so that nothing outside C is touched.  A
 * fused epilogue runs over the task's finished rows. */
static int gemm_mr(CG *cg) { return cg->vl >= 16 ? 12 : 6; }

static bool gemm_fast(CG *cg, const Node *n) {
  /* pass_pack_gemm gives exactly these matmuls a packed B */
  return cg->g->nodes[n->in[1]].op == OP_PACK;
}

typedef struct GemmTile {
  Kernel *k;
  int mr;
  LLVMValueRef ap0, K, N, k0, kc, first;      /* ap0: the tile's packed A; first: k0 == 0 */
  LLVMValueRef ap, bstack, ct;                  /* stack: packed A, a partial B panel, partial tile */
  LLVMValueRef bp;                              /* this panel's B block: KC rows of NR */
  LLVMValueRef c_row0, j0, nw, rows;            /* C offset of the tile's first row; rows in the tile */
} GemmTile;

/* One MR x NR tile: rows [ii, ii + rows) of the task (rows <= MR), whose
 * A block is packed k-major (MR values per k) at t->ap0. */
static void gemm_tile(GemmTile *t) {
  Kernel *k = t->k;
  CG *cg = k->cg;
  int mr = t->mr, vl = cg->vl, NR = 2 * vl;
  LLVMValueRef full = LLVMBuildAnd(cg->B, LLVMBuildICmp(cg->B, LLVMIntEQ, t->rows, i64c(cg, mr), ""),
                                   LLVMBuildICmp(cg->B, LLVMIntEQ, t->nw, i64c(cg, NR), ""), "");
  LLVMValueRef cptr[16][2];
  for (int r = 0; r < mr; r++) {
    for (int v = 0; v < 2; v++) {
      LLVMValueRef cp = elem_ptr(cg, k->out, add64(cg, add64(cg, t->c_row0, mul64(cg, i64c(cg, r), t->N)), add64(cg, t->j0, i64c(cg, v * vl))));
      LLVMValueRef tp = elem_ptr(cg, t->ct, i64c(cg, r * NR + v * vl));
      cptr[r][v] = LLVMBuildSelect(cg->B, full, cp, tp, "");
    }
  }
  /* a partial tile continuing earlier k blocks starts from C's valid part */
  {
    LLVMBasicBlockRef copy = LLVMAppendBasicBlockInContext(cg->C, cg->fn, "ctin");
    LLVMBasicBlockRef go = LLVMAppendBasicBlockInContext(cg->C, cg->fn, "ctin.done");
    LLVMBuildCondBr(cg->B, LLVMBuildOr(cg->B, full, t->first, ""), go, copy);
    LLVMPositionBuilderAtEnd(cg->B, copy);
    Loop rl, jl;
    LLVMValueRef r = loop_begin(cg, &rl, i64c(cg, 0), t->rows);
    LLVMValueRef j = loop_begin(cg, &jl, i64c(cg, 0), t->nw);
    store_f(cg, load_f(cg, k->out, add64(cg, add64(cg, t->c_row0, mul64(cg, r, t->N)), add64(cg, t->j0, j))), t->ct,
            add64(cg, mul64(cg, r, i64c(cg, NR)), j));
    loop_end_scalar(cg, &jl);
    loop_end(cg, &rl);
    LLVMBuildBr(cg->B, go);
    LLVMPositionBuilderAtEnd(cg->B, go);
  }
  /* The accumulators start at zero and C is added after the k loop (when
   * this is not the first k block): the loads of C, prefetched here, are
   * then off the loop's critical path. */
  for (int r = 0; r < mr; r++)
    for (int v = 0; v < 2; v++) prefetch(cg, cptr[r][v], 1);
  LLVMValueRef init[MAX_CARRIED];
  for (int i = 0; i < mr * 2; i++) init[i] = vfc(cg, 0.0);
  CLoop kl;
  LLVMValueRef kk = cloop_begin(cg, &kl, i64c(cg, 0), t->kc, init, mr * 2);
  /* B's block streams from L2: fetch the rows GEMM_PF_DIST k ahead (a
   * prefetch past the block's end is harmless) */
  for (int l = 0; l < NR * 4; l += 64)
    prefetch(cg, elem_ptr(cg, t->bp, add64(cg, mul64(cg, kk, i64c(cg, NR)), i64c(cg, GEMM_PF_DIST * NR + l / 4))), 0);
  LLVMValueRef b0 = vload(cg, t->bp, mul64(cg, kk, i64c(cg, NR)));
  LLVMValueRef b1 = vload(cg, t->bp, add64(cg, mul64(cg, kk, i64c(cg, NR)), i64c(cg, vl)));
  LLVMValueRef next[MAX_CARRIED];
  LLVMValueRef arow = add64(cg, t->ap0, mul64(cg, kk, i64c(cg, mr)));
  for (int r = 0; r < mr; r++) {
    LLVMValueRef a = vsplat(cg, load_f(cg, t->ap, add64(cg, arow, i64c(cg, r))));
    next[r * 2] = vfma(cg, a, b0, kl.v[r * 2]);
    next[r * 2 + 1] = vfma(cg, a, b1, kl.v[r * 2 + 1]);
  }
  cloop_end(cg, &kl, next);
  for (int r = 0; r < mr; r++)
    for (int v = 0; v < 2; v++) {
      LLVMValueRef c = LLVMBuildLoad2(cg->B, cg->vf, cptr[r][v], "");
      LLVMSetAlignment(c, 4);
      LLVMValueRef sum = LLVMBuildSelect(cg->B, t->first, kl.v[r * 2 + v], LLVMBuildFAdd(cg->B, kl.v[r * 2 + v], c, ""), "");
      LLVMValueRef st = LLVMBuildStore(cg->B, sum, cptr[r][v]);
      LLVMSetAlignment(st, 4);
    }
  {
    LLVMBasicBlockRef copy = LLVMAppendBasicBlockInContext(cg->C, cg->fn, "ctout");
    LLVMBasicBlockRef go = LLVMAppendBasicBlockInContext(cg->C, cg->fn, "ctout.done");
    LLVMBuildCondBr(cg->B, full, go, copy);
    LLVMPositionBuilderAtEnd(cg->B, copy);
    Loop rl, jl;
    LLVMValueRef r = loop_begin(cg, &rl, i64c(cg, 0), t->rows);
    LLVMValueRef j = loop_begin(cg, &jl, i64c(cg, 0), t->nw);
    store_f(cg, load_f(cg, t->ct, add64(cg, mul64(cg, r, i64c(cg, NR)), j)), k->out,
            add64(cg, add64(cg, t->c_row0, mul64(cg, r, t->N)), add64(cg, t->j0, j)));
    loop_end_scalar(cg, &jl);
    loop_end(cg, &rl);
    LLVMBuildBr(cg->B, go);
    LLVMPositionBuilderAtEnd(cg->B, go);
  }
}

/* The GEMM of rows [i0, i1) of one batch entry: C[i, :] = A[i, :] B for
 * A [M, K], B [K, N], C [M, N] given at their entry's start.  One
 * function per module, which every matmul kernel calls: keeping one copy
 * of the register-blocked loops keeps compile time low. */
static LLVMValueRef gemm_shared(CG *cg) {
  const char *name = cg->vl >= 16 ? "attnc.gemm.v16" : cg->vl >= 8 ? "attnc.gemm.v8" : "attnc.gemm.v4";
  LLVMValueRef fn = LLVMGetNamedFunction(cg->M, name);
  if (fn) return fn;
  SharedFn sf = shared_begin(cg);
  LLVMTypeRef params[8] = {cg->ptr, cg->ptr, cg->ptr, cg->i64, cg->i64, cg->i64, cg->i64, cg->i64};
  fn = new_fn(cg, name, LLVMFunctionType(cg->voidt, params, 8, 0), true);
  add_attr(cg, fn, (int)LLVMAttributeFunctionIndex, "noinline");
  for (int i = 1; i <= 3; i++) add_attr(cg, fn, i, "noalias");
  Kernel kern = {.cg = cg};
  Kernel *k = &kern;
  k->in[0] = LLVMGetParam(fn, 0);
  k->in[1] = LLVMGetParam(fn, 1);
  k->out = LLVMGetParam(fn, 2);
  LLVMValueRef M = LLVMGetParam(fn, 3), K = LLVMGetParam(fn, 4), N = LLVMGetParam(fn, 5);
  LLVMValueRef i0 = LLVMGetParam(fn, 6), i1 = LLVMGetParam(fn, 7);
  (void)M;
  LLVMValueRef a_off = i64c(cg, 0), b_off = i64c(cg, 0), c_off = i64c(cg, 0);
  int vl = cg->vl, NR = 2 * vl, MR = gemm_mr(cg), TR = MR * GEMM_TASK_TILES;
  GemmTile gt = {.k = k, .mr = MR, .K = K, .N = N};
  gt.bstack = entry_alloca(cg, LLVMArrayType2(cg->f32, (uint64_t)(GEMM_KC * NR)), "bpanel");
  gt.ap = entry_alloca(cg, LLVMArrayType2(cg->f32, (uint64_t)(GEMM_KC * TR)), "ablock");
  gt.ct = entry_alloca(cg, LLVMArrayType2(cg->f32, (uint64_t)(MR * NR)), "ctile");
  LLVMSetAlignment(gt.ap, 64);
  LLVMSetAlignment(gt.bstack, 64);
  LLVMSetAlignment(gt.ct, 64);
  Loop jp, kb, it;
  LLVMValueRef ntiles = div64(cg, add64(cg, LLVMBuildNSWSub(cg->B, i1, i0, ""), i64c(cg, MR - 1)), i64c(cg, MR));
  LLVMValueRef nkb = div64(cg, add64(cg, K, i64c(cg, GEMM_KC - 1)), i64c(cg, GEMM_KC));
  LLVMValueRef kbi = loop_begin(cg, &kb, i64c(cg, 0), nkb);
  gt.k0 = mul64(cg, kbi, i64c(cg, GEMM_KC));
  gt.first = LLVMBuildICmp(cg->B, LLVMIntEQ, kbi, i64c(cg, 0), "");
  LLVMValueRef kc = LLVMBuildNSWSub(cg->B, K, gt.k0, "");
  gt.kc = LLVMBuildSelect(cg->B, LLVMBuildICmp(cg->B, LLVMIntSLT, kc, i64c(cg, GEMM_KC), ""), kc, i64c(cg, GEMM_KC), "");
  /* pack A[i0 .. i1, k0 .. k0+kc) as ap[tile][k][MR]; rows past i1 repeat
   * the last row (their results are never stored).  When MR rows fit a
   * vector, blocks of vl k's go through registers: MR row loads, a vl x vl
   * transpose, vl stores of MR lanes.  An element-by-element loop, which
   * LLVM vectorized into scatters, cost 1.5 cycles per element of A:
   * 0.55 ms of a 1024 x 1024 x N GEMM whatever N (attnc --bench, N = 32
   * to 512), 4% of the time at N = 1024. */
  {
    Loop tl, rl, kl, cl;
    LLVMValueRef ti = loop_begin(cg, &tl, i64c(cg, 0), ntiles);
    LLVMValueRef last = LLVMBuildNSWSub(cg->B, i1, i64c(cg, 1), "");
    LLVMValueRef tdst = mul64(cg, ti, i64c(cg, GEMM_KC * MR));
    LLVMValueRef kvec = i64c(cg, 0);
    if (MR <= vl) {
      kvec = mul64(cg, div64(cg, gt.kc, i64c(cg, vl)), i64c(cg, vl));
      LLVMValueRef src[64], rows[64], lanes[64];
      for (int r = 0; r < MR; r++) {
        LLVMValueRef i = add64(cg, i0, add64(cg, mul64(cg, ti, i64c(cg, MR)), i64c(cg, r)));
        i = LLVMBuildSelect(cg->B, LLVMBuildICmp(cg->B, LLVMIntSLT, i, last, ""), i, last, "");
        src[r] = add64(cg, add64(cg, a_off, mul64(cg, i, K)), gt.k0);
      }
      for (int l = 0; l < vl; l++) lanes[l] = LLVMConstInt(cg->i1, l < MR, 0);
      LLVMValueRef mask = LLVMConstVector(lanes, (unsigned)vl);
      LLVMTypeRef tys[2] = {cg->vf, cg->ptr};
      unsigned id = LLVMLookupIntrinsicID("llvm.masked.store", 17);
      LLVMValueRef mstore = LLVMGetIntrinsicDeclaration(cg->M, id, tys, 2);
      LLVMTypeRef mstore_ty = LLVMIntrinsicGetType(cg->C, id, tys, 2);
      LLVMValueRef kk = mul64(cg, loop_begin(cg, &cl, i64c(cg, 0), div64(cg, gt.kc, i64c(cg, vl))), i64c(cg, vl));
      for (int r = 0; r < vl; r++) rows[r] = r < MR ? vload(cg, k->in[0], add64(cg, src[r], kk)) : vfc(cg, 0.0);
      transpose_regs(cg, rows);
      for (int c = 0; c < vl; c++) {
        LLVMValueRef args[4] = {rows[c], elem_ptr(cg, gt.ap, add64(cg, tdst, mul64(cg, add64(cg, kk, i64c(cg, c)), i64c(cg, MR)))),
                                cg_i32(cg, 4), mask};
        LLVMBuildCall2(cg->B, mstore_ty, mstore, args, 4, "");
      }
      loop_end_nounroll(cg, &cl);
    }
    /* the k's past the last whole block of vl */
    LLVMValueRef rr = loop_begin(cg, &rl, i64c(cg, 0), i64c(cg, MR));
    LLVMValueRef i = add64(cg, add64(cg, i0, mul64(cg, ti, i64c(cg, MR))), rr);
    i = LLVMBuildSelect(cg->B, LLVMBuildICmp(cg->B, LLVMIntSLT, i, last, ""), i, last, "");
    LLVMValueRef src = add64(cg, add64(cg, a_off, mul64(cg, i, K)), gt.k0);
    LLVMValueRef dst = add64(cg, tdst, rr);
    LLVMValueRef kk = loop_begin(cg, &kl, kvec, gt.kc);
    store_f(cg, load_f(cg, k->in[0], add64(cg, src, kk)), gt.ap, add64(cg, dst, mul64(cg, kk, i64c(cg, MR))));
    if (MR <= vl) loop_end_scalar(cg, &kl);
    else loop_end(cg, &kl);
    loop_end(cg, &rl);
    loop_end(cg, &tl);
  }
  /* B comes packed (emit_pack): a full panel's block is read where it is;
   * the last, partial panel (rows of N mod NR floats), if any, is copied
   * once per k block to the stack with zeros past N, so that the tile
   * loop always reads NR columns. */
  LLVMValueRef nfull = div64(cg, N, i64c(cg, NR));
  LLVMValueRef npanels = div64(cg, add64(cg, N, i64c(cg, NR - 1)), i64c(cg, NR));
  LLVMValueRef last_w = LLVMBuildNSWSub(cg->B, N, mul64(cg, nfull, i64c(cg, NR)), "");
  {
    LLVMBasicBlockRef sc = LLVMAppendBasicBlockInContext(cg->C, cg->fn, "bpart");
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(cg->C, cg->fn, "bpart.done");
    LLVMBuildCondBr(cg->B, LLVMBuildICmp(cg->B, LLVMIntEQ, last_w, i64c(cg, 0), ""), done, sc);
    LLVMPositionBuilderAtEnd(cg->B, sc);
    Loop kl, jl;
    LLVMValueRef panel = mul64(cg, mul64(cg, nfull, i64c(cg, NR)), K);
    LLVMValueRef kk = loop_begin(cg, &kl, i64c(cg, 0), gt.kc);
    LLVMValueRef src = add64(cg, add64(cg, b_off, panel), mul64(cg, add64(cg, gt.k0, kk), last_w));
    LLVMValueRef j = loop_begin(cg, &jl, i64c(cg, 0), i64c(cg, NR));
    LLVMValueRef in = LLVMBuildICmp(cg->B, LLVMIntSLT, j, last_w, "");
    LLVMValueRef jc = LLVMBuildSelect(cg->B, in, j, i64c(cg, 0), "");
    LLVMValueRef val = LLVMBuildSelect(cg->B, in, load_f(cg, k->in[1], add64(cg, src, jc)), cg_f32(cg, 0.0), "");
    store_f(cg, val, gt.bstack, add64(cg, mul64(cg, kk, i64c(cg, NR)), j));
    loop_end(cg, &jl);
    loop_end(cg, &kl);
    LLVMBuildBr(cg->B, done);
    LLVMPositionBuilderAtEnd(cg->B, done);
  }
  /* Column blocks of GEMM_NC panels, then tiles, then panels: a tile's
   * packed A (MR x KC) stays in L1 while the panels of B's KC x NC block
   * (256 KiB at AVX-512, which L2 keeps) stream past it. */
  Loop nb;
  LLVMValueRef nblocks = div64(cg, add64(cg, npanels, i64c(cg, GEMM_NC - 1)), i64c(cg, GEMM_NC));
  LLVMValueRef bi = loop_begin(cg, &nb, i64c(cg, 0), nblocks);
  LLVMValueRef p0 = mul64(cg, bi, i64c(cg, GEMM_NC));
  LLVMValueRef p1 = add64(cg, p0, i64c(cg, GEMM_NC));
  p1 = LLVMBuildSelect(cg->B, LLVMBuildICmp(cg->B, LLVMIntSLT, p1, npanels, ""), p1, npanels, "");
  LLVMValueRef ti = loop_begin(cg, &it, i64c(cg, 0), ntiles);
  LLVMValueRef ii = add64(cg, i0, mul64(cg, ti, i64c(cg, MR)));
  gt.ap0 = mul64(cg, ti, i64c(cg, GEMM_KC * MR));
  gt.c_row0 = add64(cg, c_off, mul64(cg, ii, N));
  LLVMValueRef rows = LLVMBuildNSWSub(cg->B, i1, ii, "");
  gt.rows = LLVMBuildSelect(cg->B, LLVMBuildICmp(cg->B, LLVMIntSLT, rows, i64c(cg, MR), ""), rows, i64c(cg, MR), "");
  LLVMValueRef p = loop_begin(cg, &jp, p0, p1);
  gt.j0 = mul64(cg, p, i64c(cg, NR));
  LLVMValueRef fullw = LLVMBuildICmp(cg->B, LLVMIntSLT, p, nfull, "");
  gt.nw = LLVMBuildSelect(cg->B, fullw, i64c(cg, NR), last_w, "");
  LLVMValueRef direct = elem_ptr(cg, k->in[1], add64(cg, add64(cg, b_off, mul64(cg, gt.j0, K)), mul64(cg, gt.k0, i64c(cg, NR))));
  gt.bp = LLVMBuildSelect(cg->B, fullw, direct, gt.bstack, "");
  gemm_tile(&gt);
  loop_end(cg, &jp);
  loop_end(cg, &it);
  loop_end(cg, &nb);
  loop_end(cg, &kb);
  shared_end(cg, &sf);
  return fn;
}

static void emit_gemm(Kernel *k) {
  CG *cg = k->cg;
  const Node *n = k->n;
  const Type *t = &n->type, *ta = &cg->g->nodes[n->in[0]].type, *tb = &cg->g->nodes[n->in[1]].type;
  int TR = gemm_mr(cg) * GEMM_TASK_TILES;
  LLVMValueRef M = dim(cg, ta->dims[ta->rank - 2]);
  LLVMValueRef K = dim(cg, ta->dims[ta->rank - 1]);
  LLVMValueRef N = dim(cg, tb->dims[tb->rank - 1]);
  int nb = t->rank - 2;
  LLVMValueRef gemm = gemm_shared(cg);
  LLVMValueRef tasks = div64(cg, add64(cg, M, i64c(cg, TR - 1)), i64c(cg, TR));
  Loop r;
  LLVMValueRef row = loop_begin(cg, &r, k->begin, k->end);
  LLVMValueRef bidx = div64(cg, row, tasks);
  LLVMValueRef i0 = mul64(cg, rem64(cg, row, tasks), i64c(cg, TR));
  LLVMValueRef i1 = add64(cg, i0, i64c(cg, TR));
  i1 = LLVMBuildSelect(cg->B, LLVMBuildICmp(cg->B, LLVMIntSLT, i1, M, ""), i1, M, "");
  LLVMValueRef idx[MAX_RANK], rest = bidx;
  for (int ax = nb - 1; ax >= 0; ax--) {
    LLVMValueRef d = dim(cg, t->dims[ax]);
    idx[ax] = rem64(cg, rest, d);
    rest = div64(cg, rest, d);
  }
  LLVMValueRef a_off = batch_offset(cg, t, nb, idx, ta, ta->rank - 2, mul64(cg, M, K));
  LLVMValueRef b_off = batch_offset(cg, t, nb, idx, tb, tb->rank - 2, mul64(cg, K, N));
  LLVMValueRef c_off = mul64(cg, mul64(cg, bidx, M), N);
  LLVMTypeRef params[8] = {cg->ptr, cg->ptr, cg->ptr, cg->i64, cg->i64, cg->i64, cg->i64, cg->i64};
  LLVMValueRef args[8] = {elem_ptr(cg, k->in[0], a_off), elem_ptr(cg, k->in[1], b_off), elem_ptr(cg, k->out, c_off),
                          M, K, N, i0, i1};
  LLVMBuildCall2(cg->B, LLVMFunctionType(cg->voidt, params, 8, 0), gemm, args, 8, "");
  if (n->prog) {
    Loop el;
    LLVMValueRef i = loop_begin(cg, &el, i0, i1);
    emit_epilogue(k, add64(cg, mul64(cg, bidx, M), i), add64(cg, c_off, mul64(cg, i, N)), N);
    loop_end(cg, &el);
  }
  loop_end(cg, &r);
}

static void emit_matmul(Kernel *k) {
  CG *cg = k->cg;
  const Node *n = k->n;
  const Type *t = &n->type, *ta = &cg->g->nodes[n->in[0]].type, *tb = &cg->g->nodes[n->in[1]].type;
  bool a1 = ta->rank == 1, b1 = tb->rank == 1;
  if (n->tb && b1) internal_error("transposed matmul with a 1-D operand");
  LLVMValueRef M = a1 ? i64c(cg, 1) : dim(cg, ta->dims[ta->rank - 2]);
  LLVMValueRef K = dim(cg, ta->dims[ta->rank - 1]);
  LLVMValueRef N = b1 ? i64c(cg, 1) : dim(cg, tb->dims[n->tb ? tb->rank - 2 : tb->rank - 1]);
  int nb = t->rank - (a1 ? 0 : 1) - (b1 ? 0 : 1);
  Loop r, jl, kl;
  LLVMValueRef row = loop_begin(cg, &r, k->begin, k->end);
  LLVMValueRef i = rem64(cg, row, M);
  LLVMValueRef rest = div64(cg, row, M);
  LLVMValueRef idx[MAX_RANK];
  for (int ax = nb - 1; ax >= 0; ax--) {
    LLVMValueRef d = dim(cg, t->dims[ax]);
    idx[ax] = rem64(cg, rest, d);
    rest = div64(cg, rest, d);
  }
  LLVMValueRef a_off = add64(cg, batch_offset(cg, t, nb, idx, ta, a1 ? 0 : ta->rank - 2, mul64(cg, M, K)), mul64(cg, i, K));
  LLVMValueRef b_off = batch_offset(cg, t, nb, idx, tb, b1 ? 0 : tb->rank - 2, mul64(cg, K, N));
  LLVMValueRef c_off = mul64(cg, row, N);
  if (!n->tb) {
    /* c[i, :] = sum_k a[i, k] * b[k, :]: the inner loop runs along rows of
     * b and c, both contiguous. */
    LLVMValueRef j = loop_begin(cg, &jl, i64c(cg, 0), N);
    store_f(cg, cg_f32(cg, 0.0), k->out, add64(cg, c_off, j));
    loop_end(cg, &jl);
    LLVMValueRef kk = loop_begin(cg, &kl, i64c(cg, 0), K);
    LLVMValueRef av = load_f(cg, k->in[0], add64(cg, a_off, kk));
    LLVMValueRef brow = add64(cg, b_off, mul64(cg, kk, N));
    j = loop_begin(cg, &jl, i64c(cg, 0), N);
    LLVMValueRef cp = add64(cg, c_off, j);
    LLVMValueRef c = load_f(cg, k->out, cp);
    store_f(cg, cg_fadd(cg, c, cg_fmul(cg, av, load_f(cg, k->in[1], add64(cg, brow, j)))), k->out, cp);
    loop_end(cg, &jl);
    loop_end(cg, &kl);
    emit_epilogue(k, row, c_off, N);
  } else {
    /* c[i, j] = dot(a[i, :], b[j, :]): a reduction the vectorizer may
     * reassociate. */
    LLVMValueRef acc = entry_alloca(cg, cg->f32, "acc");
    LLVMValueRef j = loop_begin(cg, &jl, i64c(cg, 0), N);
    LLVMBuildStore(cg->B, cg_f32(cg, 0.0), acc);
    LLVMValueRef brow = add64(cg, b_off, mul64(cg, j, K));
    LLVMValueRef kk = loop_begin(cg, &kl, i64c(cg, 0), K);
    cg->fmf = LLVMFastMathAllowContract | LLVMFastMathAllowReassoc | LLVMFastMathNoSignedZeros;
    LLVMValueRef prod = cg_fmul(cg, load_f(cg, k->in[0], add64(cg, a_off, kk)), load_f(cg, k->in[1], add64(cg, brow, kk)));
    LLVMBuildStore(cg->B, cg_fadd(cg, LLVMBuildLoad2(cg->B, cg->f32, acc, ""), prod), acc);
    cg->fmf = LLVMFastMathAllowContract;
    loop_end(cg, &kl);
    store_f(cg, LLVMBuildLoad2(cg->B, cg->f32, acc, ""), k->out, add64(cg, c_off, j));
    loop_end(cg, &jl);
    emit_epilogue(k, row, c_off, N);
  }
  loop_end(cg, &r);
}

/* out[row][j] = in[batch][j][i] for rows [begin, end) of the result
 * (row = batch * C + i), with the operand's R rows of C columns.  One
 * function per module, called by every transpose kernel (a model has one
 * per Linear weight): one copy of the vectorized loop. */
static LLVMValueRef transpose_shared(CG *cg) {
  LLVMValueRef fn = LLVMGetNamedFunction(cg->M, "attnc.transpose");
  if (fn) return fn;
  SharedFn sf = shared_begin(cg);
  LLVMTypeRef params[6] = {cg->ptr, cg->ptr, cg->i64, cg->i64, cg->i64, cg->i64};
  fn = new_fn(cg, "attnc.transpose", LLVMFunctionType(cg->voidt, params, 6, 0), true);
  add_attr(cg, fn, (int)LLVMAttributeFunctionIndex, "noinline");
  add_attr(cg, fn, 1, "noalias");
  add_attr(cg, fn, 2, "noalias");
  LLVMValueRef in = LLVMGetParam(fn, 0), out = LLVMGetParam(fn, 1);
  LLVMValueRef R = LLVMGetParam(fn, 2), C = LLVMGetParam(fn, 3);
  Loop r, jl;
  LLVMValueRef row = loop_begin(cg, &r, LLVMGetParam(fn, 4), LLVMGetParam(fn, 5));
  LLVMValueRef i = rem64(cg, row, C);
  LLVMValueRef in_base = add64(cg, mul64(cg, div64(cg, row, C), mul64(cg, R, C)), i);
  LLVMValueRef j = loop_begin(cg, &jl, i64c(cg, 0), R);
  store_f(cg, load_f(cg, in, add64(cg, in_base, mul64(cg, j, C))), out, add64(cg, mul64(cg, row, R), j));
  loop_end(cg, &jl);
  loop_end(cg, &r);
  shared_end(cg, &sf);
  return fn;
}

static void emit_transpose(Kernel *k) {
  CG *cg = k->cg;
  const Type *t = &k->n->type;
  LLVMValueRef fn = transpose_shared(cg);
  LLVMTypeRef params[6] = {cg->ptr, cg->ptr, cg->i64, cg->i64, cg->i64, cg->i64};
  LLVMValueRef args[6] = {k->in[0], k->out, dim(cg, t->dims[t->rank - 1]), dim(cg, t->dims[t->rank - 2]), k->begin, k->end};
  LLVMBuildCall2(cg->B, LLVMFunctionType(cg->voidt, params, 6, 0), fn, args, 6, "");
}

/* ---- pack: a GEMM's B in its panel layout ----------------------------------
 * dst [.., K, N] holds, per batch entry, panel p (columns [j0, j0 + w),
 * j0 = p * NR, w = min(NR, N - j0)) at j0 * K as K rows of w floats.
 * src is B [.., K, N], or with tb W [.., N, K] (a Linear's weight, so
 * that W^T is never written out).  Rows of the kernel are (batch entry,
 * panel).  A full panel of W is transposed in registers, vl x vl at a
 * time (log2(vl) rounds of interleaving shuffles); partial panels and
 * the last K mod vl rows go element by element.  One function per
 * module, called by every pack kernel. */
static void transpose_regs(CG *cg, LLVMValueRef *r) {
  int n = cg->vl, h = n / 2;
  LLVMValueRef lo[64], hi[64];
  for (int i = 0; i < h; i++) {
    lo[2 * i] = cg_i32(cg, i);
    lo[2 * i + 1] = cg_i32(cg, n + i);
    hi[2 * i] = cg_i32(cg, h + i);
    hi[2 * i + 1] = cg_i32(cg, n + h + i);
  }
  LLVMValueRef mlo = LLVMConstVector(lo, (unsigned)n), mhi = LLVMConstVector(hi, (unsigned)n);
  for (int round = 1; round < n; round *= 2) {
    LLVMValueRef nr[64];
    for (int i = 0; i < h; i++) {
      nr[2 * i] = LLVMBuildShuffleVector(cg->B, r[i], r[i + h], mlo, "");
      nr[2 * i + 1] = LLVMBuildShuffleVector(cg->B, r[i], r[i + h], mhi, "");
    }
    for (int i = 0; i < n; i++) r[i] = nr[i];
  }
}

static LLVMValueRef pack_shared(CG *cg) {
  const char *name = cg->vl >= 16 ? "attnc.pack.v16" : cg->vl >= 8 ? "attnc.pack.v8" : "attnc.pack.v4";
  LLVMValueRef fn = LLVMGetNamedFunction(cg->M, name);
  if (fn) return fn;
  SharedFn sf = shared_begin(cg);
  LLVMTypeRef params[7] = {cg->ptr, cg->ptr, cg->i64, cg->i64, cg->i64, cg->i64, cg->i64};
  fn = new_fn(cg, name, LLVMFunctionType(cg->voidt, params, 7, 0), true);
  add_attr(cg, fn, (int)LLVMAttributeFunctionIndex, "noinline");
  add_attr(cg, fn, 1, "noalias");
  add_attr(cg, fn, 2, "noalias");
  LLVMValueRef src = LLVMGetParam(fn, 0), dst = LLVMGetParam(fn, 1);
  LLVMValueRef K = LLVMGetParam(fn, 2), N = LLVMGetParam(fn, 3), tb = LLVMGetParam(fn, 4);
  int vl = cg->vl, NR = 2 * vl;
  LLVMValueRef npanels = div64(cg, add64(cg, N, i64c(cg, NR - 1)), i64c(cg, NR));
  Loop r;
  LLVMValueRef row = loop_begin(cg, &r, LLVMGetParam(fn, 5), LLVMGetParam(fn, 6));
  LLVMValueRef base = mul64(cg, mul64(cg, div64(cg, row, npanels), K), N);
  LLVMValueRef j0 = mul64(cg, rem64(cg, row, npanels), i64c(cg, NR));
  LLVMValueRef w = LLVMBuildNSWSub(cg->B, N, j0, "");
  w = LLVMBuildSelect(cg->B, LLVMBuildICmp(cg->B, LLVMIntSLT, w, i64c(cg, NR), ""), w, i64c(cg, NR), "");
  LLVMValueRef dbase = add64(cg, base, mul64(cg, j0, K));
  LLVMValueRef full = LLVMBuildICmp(cg->B, LLVMIntEQ, w, i64c(cg, NR), "");
  LLVMValueRef istb = LLVMBuildICmp(cg->B, LLVMIntNE, tb, i64c(cg, 0), "");
  LLVMBasicBlockRef b_plain = LLVMAppendBasicBlockInContext(cg->C, cg->fn, "pack.plain");
  LLVMBasicBlockRef b_tb = LLVMAppendBasicBlockInContext(cg->C, cg->fn, "pack.tb");
  LLVMBasicBlockRef b_part = LLVMAppendBasicBlockInContext(cg->C, cg->fn, "pack.part");
  LLVMBasicBlockRef b_part_tb = LLVMAppendBasicBlockInContext(cg->C, cg->fn, "pack.part.tb");
  LLVMBasicBlockRef b_part_plain = LLVMAppendBasicBlockInContext(cg->C, cg->fn, "pack.part.plain");
  LLVMBasicBlockRef b_full = LLVMAppendBasicBlockInContext(cg->C, cg->fn, "pack.full");
  LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(cg->C, cg->fn, "pack.done");
  LLVMBuildCondBr(cg->B, full, b_full, b_part);
  LLVMPositionBuilderAtEnd(cg->B, b_full);
  LLVMBuildCondBr(cg->B, istb, b_tb, b_plain);
  {
    /* full panel of B: two vectors per row */
    LLVMPositionBuilderAtEnd(cg->B, b_plain);
    Loop kl;
    LLVMValueRef kk = loop_begin(cg, &kl, i64c(cg, 0), K);
    LLVMValueRef s0 = add64(cg, add64(cg, base, mul64(cg, kk, N)), j0);
    LLVMValueRef d0 = add64(cg, dbase, mul64(cg, kk, i64c(cg, NR)));
    for (int v = 0; v < 2; v++) vstore(cg, vload(cg, src, add64(cg, s0, i64c(cg, v * vl))), dst, add64(cg, d0, i64c(cg, v * vl)));
    loop_end_nounroll(cg, &kl);
    LLVMBuildBr(cg->B, done);
  }
  {
    /* full panel of W: blocks of vl k's, transposed in registers */
    LLVMPositionBuilderAtEnd(cg->B, b_tb);
    Loop kb, kl, jl;
    LLVMValueRef nkb = div64(cg, K, i64c(cg, vl));
    LLVMValueRef kbi = loop_begin(cg, &kb, i64c(cg, 0), nkb);
    LLVMValueRef k0 = mul64(cg, kbi, i64c(cg, vl));
    /* the two halves of the panel: a loop, not two copies, as the
     * transpose's shuffles are costly to compile (instruction selection) */
    Loop hl;
    LLVMValueRef h = loop_begin(cg, &hl, i64c(cg, 0), i64c(cg, 2));
    LLVMValueRef hv = mul64(cg, h, i64c(cg, vl));
    LLVMValueRef rows[64];
    for (int i = 0; i < vl; i++)
      rows[i] = vload(cg, src, add64(cg, add64(cg, base, mul64(cg, add64(cg, j0, add64(cg, hv, i64c(cg, i))), K)), k0));
    transpose_regs(cg, rows);
    for (int c = 0; c < vl; c++)
      vstore(cg, rows[c], dst, add64(cg, add64(cg, dbase, mul64(cg, add64(cg, k0, i64c(cg, c)), i64c(cg, NR))), hv));
    loop_end_nounroll(cg, &hl);
    loop_end_nounroll(cg, &kb);
    LLVMValueRef kk = loop_begin(cg, &kl, mul64(cg, nkb, i64c(cg, vl)), K);
    LLVMValueRef j = loop_begin(cg, &jl, i64c(cg, 0), i64c(cg, NR));
    store_f(cg, load_f(cg, src, add64(cg, add64(cg, base, mul64(cg, add64(cg, j0, j), K)), kk)), dst,
            add64(cg, add64(cg, dbase, mul64(cg, kk, i64c(cg, NR))), j));
    loop_end_scalar(cg, &jl);
    loop_end(cg, &kl);
    LLVMBuildBr(cg->B, done);
  }
  LLVMPositionBuilderAtEnd(cg->B, b_part);
  LLVMBuildCondBr(cg->B, istb, b_part_tb, b_part_plain);
  for (int t = 0; t < 2; t++) {
    /* the last panel, w < NR columns: rows of w */
    LLVMPositionBuilderAtEnd(cg->B, t ? b_part_tb : b_part_plain);
    Loop kl, jl;
    LLVMValueRef kk = loop_begin(cg, &kl, i64c(cg, 0), K);
    LLVMValueRef j = loop_begin(cg, &jl, i64c(cg, 0), w);
    LLVMValueRef s = t ? add64(cg, add64(cg, base, mul64(cg, add64(cg, j0, j), K)), kk)
                       : add64(cg, add64(cg, base, mul64(cg, kk, N)), add64(cg, j0, j));
    store_f(cg, load_f(cg, src, s), dst, add64(cg, add64(cg, dbase, mul64(cg, kk, w)), j));
    loop_end_scalar(cg, &jl);
    loop_end(cg, &kl);
    LLVMBuildBr(cg->B, done);
  }
  LLVMPositionBuilderAtEnd(cg->B, done);
  loop_end(cg, &r);
  shared_end(cg, &sf);
  return fn;
}

static void emit_pack(Kernel *k) {
  CG *cg = k->cg;
  const Type *t = &k->n->type;
  LLVMValueRef fn = pack_shared(cg);
  LLVMTypeRef params[7] = {cg->ptr, cg->ptr, cg->i64, cg->i64, cg->i64, cg->i64, cg->i64};
  LLVMValueRef args[7] = {k->in[0], k->out, dim(cg, t->dims[t->rank - 2]), dim(cg, t->dims[t->rank - 1]),
                          i64c(cg, k->n->tb), k->begin, k->end};
  LLVMBuildCall2(cg->B, LLVMFunctionType(cg->voidt, params, 7, 0), fn, args, 7, "");
}

static LLVMValueRef reduce_fmf(CG *cg) {
  cg->fmf = LLVMFastMathAllowContract | LLVMFastMathAllowReassoc | LLVMFastMathNoSignedZeros;
  return NULL;
}

static void emit_softmax(Kernel *k) {
  CG *cg = k->cg;
  const Node *node = k->n;
  const Type *t = &node->type;
  int axis = node->axis;
  LLVMValueRef n = dim(cg, t->dims[axis]);
  LLVMValueRef inner = dims_prod(cg, t, axis + 1, t->rank);
  LLVMValueRef acc = entry_alloca(cg, cg->f32, "acc");
  Loop r, jl;
  LLVMValueRef row = loop_begin(cg, &r, k->begin, k->end);
  LLVMValueRef base = add64(cg, mul64(cg, mul64(cg, div64(cg, row, inner), n), inner), rem64(cg, row, inner));
  /* causal (over the last axis): query i sees keys 0..i, top-left aligned */
  LLVMValueRef limit = n;
  if (node->causal) {
    LLVMValueRef i = rem64(cg, row, dim(cg, t->dims[t->rank - 2]));
    LLVMValueRef lim = add64(cg, i, i64c(cg, 1));
    limit = LLVMBuildSelect(cg->B, LLVMBuildICmp(cg->B, LLVMIntSLT, lim, n, ""), lim, n, "limit");
  }
  /* max; NaN inputs still give NaN rows through exp below */
  LLVMBuildStore(cg->B, cg_f32(cg, -1.0 / 0.0), acc);
  LLVMValueRef j = loop_begin(cg, &jl, i64c(cg, 0), limit);
  LLVMValueRef p = add64(cg, base, mul64(cg, j, inner));
  LLVMValueRef mx[2] = {LLVMBuildLoad2(cg->B, cg->f32, acc, ""), load_f(cg, k->in[0], p)};
  LLVMBuildStore(cg->B, cg_intrinsic(cg, "llvm.maxnum.f32", mx, 2), acc);
  loop_end(cg, &jl);
  LLVMValueRef m = LLVMBuildLoad2(cg->B, cg->f32, acc, "max");
  if (node->safe) {
    /* every key masked: exp(-inf - 0) = 0 everywhere, and the zero sum
     * below gives zeros instead of 0/0 */
    LLVMValueRef none = LLVMBuildFCmp(cg->B, LLVMRealOEQ, m, cg_f32(cg, -1.0 / 0.0), "");
    m = LLVMBuildSelect(cg->B, none, cg_f32(cg, 0.0), m, "");
  }
  LLVMBuildStore(cg->B, cg_f32(cg, 0.0), acc);
  j = loop_begin(cg, &jl, i64c(cg, 0), limit);
  p = add64(cg, base, mul64(cg, j, inner));
  LLVMValueRef e = math_exp(cg, cg_fsub(cg, load_f(cg, k->in[0], p), m));
  store_f(cg, e, k->out, p);
  reduce_fmf(cg);
  LLVMBuildStore(cg->B, cg_fadd(cg, LLVMBuildLoad2(cg->B, cg->f32, acc, ""), e), acc);
  cg->fmf = LLVMFastMathAllowContract;
  loop_end(cg, &jl);
  LLVMValueRef sum = LLVMBuildLoad2(cg->B, cg->f32, acc, "sum");
  LLVMValueRef inv = cg_fdiv(cg, cg_f32(cg, 1.0), sum);
  if (node->safe)
    inv = LLVMBuildSelect(cg->B, LLVMBuildFCmp(cg->B, LLVMRealOGT, sum, cg_f32(cg, 0.0), ""), inv, cg_f32(cg, 0.0), "");
  j = loop_begin(cg, &jl, i64c(cg, 0), limit);
  p = add64(cg, base, mul64(cg, j, inner));
  store_f(cg, cg_fmul(cg, load_f(cg, k->out, p), inv), k->out, p);
  loop_end(cg, &jl);
  if (node->causal) {
    j = loop_begin(cg, &jl, limit, n);
    store_f(cg, cg_f32(cg, 0.0), k->out, add64(cg, base, mul64(cg, j, inner)));
    loop_end(cg, &jl);
  }
  loop_end(cg, &r);
}

static LLVMValueRef combine(CG *cg, Op op, LLVMValueRef acc, LLVMValueRef v) {
  if (op == OP_MAX) {
    /* llvm.maximum propagates NaN, as torch.max does */
    LLVMValueRef args[2] = {acc, v};
    return cg_intrinsic(cg, "llvm.maximum.f32", args, 2);
  }
  return cg_fadd(cg, acc, v);
}

static void emit_reduce(Kernel *k) {
  CG *cg = k->cg;
  const Node *node = k->n;
  const Type *a = &cg->g->nodes[node->in[0]].type;
  int axis = node->axis;
  LLVMValueRef n = dim(cg, a->dims[axis]);
  Loop r, jl, il;
  LLVMValueRef row = loop_begin(cg, &r, k->begin, k->end);
  if (axis == a->rank - 1) {
    /* contiguous: one result per row */
    LLVMValueRef acc = entry_alloca(cg, cg->f32, "acc");
    LLVMValueRef base = mul64(cg, row, n);
    LLVMBuildStore(cg->B, load_f(cg, k->in[0], base), acc);
    reduce_fmf(cg);
    LLVMValueRef j = loop_begin(cg, &jl, i64c(cg, 1), n);
    LLVMBuildStore(cg->B, combine(cg, node->op, LLVMBuildLoad2(cg->B, cg->f32, acc, ""),
                                  load_f(cg, k->in[0], add64(cg, base, j))), acc);
    loop_end(cg, &jl);
    cg->fmf = LLVMFastMathAllowContract;
    LLVMValueRef v = LLVMBuildLoad2(cg->B, cg->f32, acc, "");
    if (node->op == OP_MEAN) v = cg_fdiv(cg, v, LLVMBuildSIToFP(cg->B, n, cg->f32, ""));
    store_f(cg, v, k->out, row);
  } else {
    /* strided: accumulate whole rows of `inner` results at a time, so the
     * innermost loop is contiguous */
    LLVMValueRef inner = dims_prod(cg, a, axis + 1, a->rank);
    LLVMValueRef obase = mul64(cg, row, inner);
    LLVMValueRef ibase = mul64(cg, obase, n);
    LLVMValueRef i = loop_begin(cg, &il, i64c(cg, 0), inner);
    store_f(cg, load_f(cg, k->in[0], add64(cg, ibase, i)), k->out, add64(cg, obase, i));
    loop_end(cg, &il);
    LLVMValueRef j = loop_begin(cg, &jl, i64c(cg, 1), n);
    LLVMValueRef src = add64(cg, ibase, mul64(cg, j, inner));
    i = loop_begin(cg, &il, i64c(cg, 0), inner);
    LLVMValueRef op = add64(cg, obase, i);
    store_f(cg, combine(cg, node->op, load_f(cg, k->out, op), load_f(cg, k->in[0], add64(cg, src, i))), k->out, op);
    loop_end(cg, &il);
    loop_end(cg, &jl);
    if (node->op == OP_MEAN) {
      LLVMValueRef inv = cg_fdiv(cg, cg_f32(cg, 1.0), LLVMBuildSIToFP(cg->B, n, cg->f32, ""));
      i = loop_begin(cg, &il, i64c(cg, 0), inner);
      op = add64(cg, obase, i);
      store_f(cg, cg_fmul(cg, load_f(cg, k->out, op), inv), k->out, op);
      loop_end(cg, &il);
    }
  }
  loop_end(cg, &r);
}

/* LayerNorm's input element: x, or x + the fused residual */
static LLVMValueRef ln_x(Kernel *k, bool residual, LLVMValueRef p) {
  LLVMValueRef x = load_f(k->cg, k->in[0], p);
  return residual ? cg_fadd(k->cg, x, load_f(k->cg, k->in[3], p)) : x;
}

static void emit_layernorm(Kernel *k) {
  CG *cg = k->cg;
  const Type *t = &k->n->type;
  LLVMValueRef d = dim(cg, t->dims[t->rank - 1]);
  LLVMValueRef df = LLVMBuildSIToFP(cg->B, d, cg->f32, "");
  LLVMValueRef acc = entry_alloca(cg, cg->f32, "acc");
  Loop r, jl;
  LLVMValueRef row = loop_begin(cg, &r, k->begin, k->end);
  LLVMValueRef base = mul64(cg, row, d);
  bool residual = k->n->nin > 3;
  /* two passes (mean, then the mean of squared deviations) as PyTorch:
   * the one-pass formula loses digits when |mean| >> std */
  LLVMBuildStore(cg->B, cg_f32(cg, 0.0), acc);
  LLVMValueRef j = loop_begin(cg, &jl, i64c(cg, 0), d);
  reduce_fmf(cg);
  LLVMBuildStore(cg->B, cg_fadd(cg, LLVMBuildLoad2(cg->B, cg->f32, acc, ""), ln_x(k, residual, add64(cg, base, j))), acc);
  cg->fmf = LLVMFastMathAllowContract;
  loop_end(cg, &jl);
  LLVMValueRef mean = cg_fdiv(cg, LLVMBuildLoad2(cg->B, cg->f32, acc, ""), df);
  LLVMBuildStore(cg->B, cg_f32(cg, 0.0), acc);
  j = loop_begin(cg, &jl, i64c(cg, 0), d);
  reduce_fmf(cg);
  LLVMValueRef dev = cg_fsub(cg, ln_x(k, residual, add64(cg, base, j)), mean);
  LLVMBuildStore(cg->B, cg_fadd(cg, LLVMBuildLoad2(cg->B, cg->f32, acc, ""), cg_fmul(cg, dev, dev)), acc);
  cg->fmf = LLVMFastMathAllowContract;
  loop_end(cg, &jl);
  LLVMValueRef var = cg_fdiv(cg, LLVMBuildLoad2(cg->B, cg->f32, acc, ""), df);
  LLVMValueRef sq = cg_fadd(cg, var, cg_f32(cg, k->n->fval));
  LLVMValueRef rstd = cg_fdiv(cg, cg_f32(cg, 1.0), cg_intrinsic(cg, "llvm.sqrt.f32", &sq, 1));
  j = loop_begin(cg, &jl, i64c(cg, 0), d);
  LLVMValueRef p = add64(cg, base, j);
  LLVMValueRef y = cg_fmul(cg, cg_fmul(cg, cg_fsub(cg, ln_x(k, residual, p), mean), rstd), load_f(cg, k->in[1], j));
  store_f(cg, cg_fadd(cg, y, load_f(cg, k->in[2], j)), k->out, p);
  loop_end(cg, &jl);
  loop_end(cg, &r);
}

/* dst[do + j] = src[so + j] for j < n */
static void copy_row(CG *cg, LLVMValueRef src, LLVMValueRef so, LLVMValueRef dst, LLVMValueRef dof, LLVMValueRef n) {
  Loop jl;
  LLVMValueRef j = loop_begin(cg, &jl, i64c(cg, 0), n);
  store_f(cg, load_f(cg, src, add64(cg, so, j)), dst, add64(cg, dof, j));
  loop_end(cg, &jl);
}

static void emit_gather(Kernel *k) {
  CG *cg = k->cg;
  const Type *t = &k->n->type;
  LLVMValueRef d = dim(cg, t->dims[t->rank - 1]);
  Loop r;
  LLVMValueRef row = loop_begin(cg, &r, k->begin, k->end);
  /* ids were range-checked by the body before any kernel ran */
  LLVMValueRef idp = LLVMBuildInBoundsGEP2(cg->B, cg->i32, k->in[0], &row, 1, "");
  LLVMValueRef id = LLVMBuildSExt(cg->B, LLVMBuildLoad2(cg->B, cg->i32, idp, ""), cg->i64, "");
  copy_row(cg, k->in[1], mul64(cg, id, d), k->out, mul64(cg, row, d), d);
  loop_end(cg, &r);
}

static void emit_concat(Kernel *k) {
  CG *cg = k->cg;
  const Node *n = k->n;
  const Type *ta = &cg->g->nodes[n->in[0]].type, *tb = &cg->g->nodes[n->in[1]].type;
  LLVMValueRef la = dims_prod(cg, ta, n->axis, ta->rank), lb = dims_prod(cg, tb, n->axis, tb->rank);
  LLVMValueRef lo = add64(cg, la, lb);
  Loop r;
  LLVMValueRef row = loop_begin(cg, &r, k->begin, k->end);
  LLVMValueRef ob = mul64(cg, row, lo);
  copy_row(cg, k->in[0], mul64(cg, row, la), k->out, ob, la);
  copy_row(cg, k->in[1], mul64(cg, row, lb), k->out, add64(cg, ob, la), lb);
  loop_end(cg, &r);
}

/* out [.., Y, X, d] from in [.., X, Y, d] */
static void emit_swap_heads(Kernel *k) {
  CG *cg = k->cg;
  const Type *t = &k->n->type;
  LLVMValueRef Y = dim(cg, t->dims[t->rank - 3]), X = dim(cg, t->dims[t->rank - 2]);
  LLVMValueRef d = dim(cg, t->dims[t->rank - 1]);
  Loop r;
  LLVMValueRef row = loop_begin(cg, &r, k->begin, k->end);
  LLVMValueRef x = rem64(cg, row, X), rest = div64(cg, row, X);
  LLVMValueRef y = rem64(cg, rest, Y), b = div64(cg, rest, Y);
  LLVMValueRef in_row = add64(cg, mul64(cg, add64(cg, mul64(cg, b, X), x), Y), y);
  copy_row(cg, k->in[0], mul64(cg, in_row, d), k->out, mul64(cg, row, d), d);
  loop_end(cg, &r);
}

/* pe[t, 2i] = sin(t w_i), pe[t, 2i+1] = cos(t w_i), w_i = 10000^(-2i/D):
 * the frequencies are constants, the angles are computed in double. */
static void emit_posenc(Kernel *k) {
  CG *cg = k->cg;
  const Type *t = &k->n->type;
  int64_t D = t->dims[1].size;
  LLVMTypeRef f64 = LLVMDoubleTypeInContext(cg->C);
  LLVMValueRef *w = NEW_ARRAY(LLVMValueRef, D / 2 + 1);
  for (int64_t i = 0; i < D / 2; i++) w[i] = LLVMConstReal(f64, pow(10000.0, -2.0 * (double)i / (double)D));
  LLVMValueRef init = LLVMConstArray2(f64, w, (uint64_t)(D / 2));
  LLVMValueRef gv = LLVMAddGlobal(cg->M, LLVMTypeOf(init), "attnc.posenc_freq");
  LLVMSetInitializer(gv, init);
  LLVMSetGlobalConstant(gv, 1);
  LLVMSetLinkage(gv, LLVMPrivateLinkage);
  Loop r, il;
  LLVMValueRef row = loop_begin(cg, &r, k->begin, k->end);
  LLVMValueRef tf = LLVMBuildSIToFP(cg->B, row, f64, "");
  LLVMValueRef i = loop_begin(cg, &il, i64c(cg, 0), i64c(cg, D / 2));
  LLVMValueRef wp = LLVMBuildInBoundsGEP2(cg->B, f64, gv, &i, 1, "");
  LLVMValueRef ang = LLVMBuildFMul(cg->B, tf, LLVMBuildLoad2(cg->B, f64, wp, ""), "");
  LLVMValueRef sv, cv;
  math_sincos_f64(cg, ang, &sv, &cv);
  LLVMValueRef o = add64(cg, mul64(cg, row, i64c(cg, D)), mul64(cg, i, i64c(cg, 2)));
  store_f(cg, LLVMBuildFPTrunc(cg->B, sv, cg->f32, ""), k->out, o);
  store_f(cg, LLVMBuildFPTrunc(cg->B, cv, cg->f32, ""), k->out, add64(cg, o, i64c(cg, 1)));
  loop_end(cg, &il);
  loop_end(cg, &r);
}

/* sum_k a[ao + k] * b[bo + k] for k < n, reassociable so it vectorizes */
static LLVMValueRef emit_dot(CG *cg, LLVMValueRef a, LLVMValueRef ao, LLVMValueRef b, LLVMValueRef bo, LLVMValueRef n) {
  LLVMValueRef acc = entry_alloca(cg, cg->f32, "dot");
  LLVMBuildStore(cg->B, cg_f32(cg, 0.0), acc);
  Loop kl;
  LLVMValueRef kk = loop_begin(cg, &kl, i64c(cg, 0), n);
  LLVMFastMathFlags saved = cg->fmf;
  reduce_fmf(cg);
  LLVMValueRef prod = cg_fmul(cg, load_f(cg, a, add64(cg, ao, kk)), load_f(cg, b, add64(cg, bo, kk)));
  LLVMBuildStore(cg->B, cg_fadd(cg, LLVMBuildLoad2(cg->B, cg->f32, acc, ""), prod), acc);
  cg->fmf = saved;
  loop_end(cg, &kl);
  return LLVMBuildLoad2(cg->B, cg->f32, acc, "");
}


/* sum_k a[ao + k] * b[bo + k * bs] for k < n */
static LLVMValueRef emit_dot_strided(CG *cg, LLVMValueRef a, LLVMValueRef ao, LLVMValueRef b, LLVMValueRef bo,
                                     LLVMValueRef bs, LLVMValueRef n) {
  LLVMValueRef acc = entry_alloca(cg, cg->f32, "dot");
  LLVMBuildStore(cg->B, cg_f32(cg, 0.0), acc);
  Loop kl;
  LLVMValueRef kk = loop_begin(cg, &kl, i64c(cg, 0), n);
  LLVMFastMathFlags saved = cg->fmf;
  reduce_fmf(cg);
  LLVMValueRef prod = cg_fmul(cg, load_f(cg, a, add64(cg, ao, kk)), load_f(cg, b, add64(cg, bo, mul64(cg, kk, bs))));
  LLVMBuildStore(cg->B, cg_fadd(cg, LLVMBuildLoad2(cg->B, cg->f32, acc, ""), prod), acc);
  cg->fmf = saved;
  loop_end(cg, &kl);
  return LLVMBuildLoad2(cg->B, cg->f32, acc, "");
}

/* LSTM and GRU over every step.  xp holds the input projections of all
 * steps (x W_ih^T + biases), which the kernel updates in place: the
 * gates of step t are xp[t] + h_{t-1} W_hh^T; an LSTM keeps its cell
 * state c_t in the first H slots of xp[t] once the gates are read.  h_t
 * goes straight to the output, which step t+1 reads back; a GRU first
 * puts W_hn h_{t-1} + b_hn there, which the gate loop reads and replaces
 * by h_t element by element.  Gate order as PyTorch: LSTM i, f, g, o;
 * GRU r, z, n.
 *
 * A row of the thread pool is a tile of rec_rb = 2 rec_mr sequences.
 * When H is a multiple of 4 vectors, a step's h_{t-1} W_hh^T is
 * register-blocked: each whole group of rec_mr sequences as rec_mr rows x
 * 2 vectors of gates (both groups of a tile over one block of W_hh^T
 * while it is in cache: at H = 512 W_hh^T is 4 MiB, more than L2), the
 * rest one sequence at a time as 1 row x 4 vectors (batch 1 is a GEMV).
 * Other H use plain dot products. */
static int rec_mr(CG *cg) { return cg->vl >= 16 ? 8 : 4; }
static int rec_rb(CG *cg) { return 2 * rec_mr(cg); }

/* The panel width of W_hh^T ([G / P, H, P], see lower.c) */
static int64_t rec_panel(CG *cg, const Node *n) {
  const Type *w = &cg->g->nodes[n->in[1]].type;
  return w->dims[w->rank - 1].size;
}

/* Offset of W_hh^T[k, j] in the panel layout */
static LLVMValueRef rec_w_at(CG *cg, int64_t P, LLVMValueRef H, LLVMValueRef k, LLVMValueRef j) {
  LLVMValueRef panel = mul64(cg, mul64(cg, div64(cg, j, i64c(cg, P)), H), i64c(cg, P));
  return add64(cg, add64(cg, panel, rem64(cg, j, i64c(cg, P))), mul64(cg, k, i64c(cg, P)));
}

static bool rec_fast(CG *cg, const Node *n) {
  Dim H = n->type.dims[n->type.rank - 1];
  return H.sym < 0 && rec_panel(cg, n) % (4 * cg->vl) == 0;
}

/* dst[r][j0 .. j0 + nv vectors) (+)= h_r W^T[:, jw0 ..] for r < mr:
 * hrow[r] are the offsets of h_{t-1} rows in out, drow[r] those of the
 * destination rows in dst; init from dst, or from bias[jb0 ..] */
static void rec_block(Kernel *k, int mr, int nv, LLVMValueRef *hrow, LLVMValueRef dst, LLVMValueRef *drow,
                      LLVMValueRef jw0, LLVMValueRef jd0, bool from_bias, LLVMValueRef H, LLVMValueRef G) {
  CG *cg = k->cg;
  int vl = cg->vl;
  const Node *bn = from_bias ? &cg->g->nodes[k->n->in[2]] : NULL;
  LLVMValueRef init[MAX_CARRIED];
  for (int r = 0; r < mr; r++)
    for (int v = 0; v < nv; v++)
      init[r * nv + v] = !from_bias ? vload(cg, dst, add64(cg, drow[r], add64(cg, jd0, i64c(cg, v * vl))))
                         : bn->op == OP_CONST ? vfc(cg, bn->fval)
                         : vload(cg, k->in[2], add64(cg, jw0, i64c(cg, v * vl)));
  CLoop kl;
  LLVMValueRef kk = cloop_begin(cg, &kl, i64c(cg, 0), H, init, mr * nv);
  /* a block of nv vectors lies inside one panel */
  LLVMValueRef wrow = rec_w_at(cg, rec_panel(cg, k->n), H, kk, jw0);
  (void)G;
  LLVMValueRef b[8], next[MAX_CARRIED];
  for (int v = 0; v < nv; v++) b[v] = vload(cg, k->in[1], add64(cg, wrow, i64c(cg, v * vl)));
  for (int r = 0; r < mr; r++) {
    LLVMValueRef a = vsplat(cg, load_f(cg, k->out, add64(cg, hrow[r], kk)));
    for (int v = 0; v < nv; v++) next[r * nv + v] = vfma(cg, a, b[v], kl.v[r * nv + v]);
  }
  cloop_end(cg, &kl, next);
  LLVMValueRef out = from_bias ? k->out : dst;
  for (int r = 0; r < mr; r++)
    for (int v = 0; v < nv; v++) vstore(cg, kl.v[r * nv + v], out, add64(cg, drow[r], add64(cg, jd0, i64c(cg, v * vl))));
}

/* h_{t-1} W_hh^T for ngroups groups of mr sequences from s0 at step
 * `step` (> 0).  The groups run inside the loop over blocks of gate
 * columns, so that a block of W_hh^T (H x nv vectors) read for the first
 * group is in cache for the others. */
static void rec_rows(Kernel *k, int mr, LLVMValueRef s0, LLVMValueRef step, LLVMValueRef T, LLVMValueRef H,
                     LLVMValueRef G, LLVMValueRef *hrow, LLVMValueRef *xrow, LLVMValueRef *orow) {
  CG *cg = k->cg;
  for (int r = 0; r < mr; r++) {
    LLVMValueRef seq = add64(cg, s0, i64c(cg, r));
    hrow[r] = mul64(cg, add64(cg, mul64(cg, seq, T), LLVMBuildNSWSub(cg->B, step, i64c(cg, 1), "")), H);
    xrow[r] = mul64(cg, add64(cg, mul64(cg, seq, T), step), G);
    orow[r] = mul64(cg, add64(cg, mul64(cg, seq, T), step), H);
  }
}

static void rec_step_gemm(Kernel *k, bool lstm, int mr, int nv, LLVMValueRef s0, LLVMValueRef ngroups,
                          LLVMValueRef step, LLVMValueRef T, LLVMValueRef H, LLVMValueRef G) {
  CG *cg = k->cg;
  LLVMValueRef hrow[16], xrow[16], orow[16];
  int w = nv * cg->vl;
  /* LSTM: every gate adds into xp; GRU: r and z add into xp, n goes to h_t */
  LLVMValueRef nacc = lstm ? G : mul64(cg, H, i64c(cg, 2));
  Loop pl, gl;
  LLVMValueRef p = loop_begin(cg, &pl, i64c(cg, 0), div64(cg, nacc, i64c(cg, w)));
  LLVMValueRef j0 = mul64(cg, p, i64c(cg, w));
  LLVMValueRef grp = loop_begin(cg, &gl, i64c(cg, 0), ngroups);
  rec_rows(k, mr, add64(cg, s0, mul64(cg, grp, i64c(cg, mr))), step, T, H, G, hrow, xrow, orow);
  rec_block(k, mr, nv, hrow, k->in[0], xrow, j0, j0, false, H, G);
  loop_end(cg, &gl);
  loop_end(cg, &pl);
  if (!lstm) {
    p = loop_begin(cg, &pl, i64c(cg, 0), div64(cg, H, i64c(cg, w)));
    j0 = mul64(cg, p, i64c(cg, w));
    grp = loop_begin(cg, &gl, i64c(cg, 0), ngroups);
    rec_rows(k, mr, add64(cg, s0, mul64(cg, grp, i64c(cg, mr))), step, T, H, G, hrow, xrow, orow);
    rec_block(k, mr, nv, hrow, k->out, orow, add64(cg, nacc, j0), j0, true, H, G);
    loop_end(cg, &gl);
    loop_end(cg, &pl);
  }
}

/* One step's gate nonlinearities for unit j of one sequence, or for vl
 * units from j (vec): reads the gates from xp at g, writes c_t (LSTM) to
 * xp and h_t to out at ho. */
typedef struct RecGates {
  Kernel *k;
  bool lstm, fast;
  LLVMValueRef g, gp, hp, ho, first, kmax;
} RecGates;

static LLVMValueRef rg_load(CG *cg, bool vec, LLVMValueRef buf, LLVMValueRef i) {
  return vec ? vload(cg, buf, i) : load_f(cg, buf, i);
}
static LLVMValueRef rg_const(CG *cg, bool vec, double x) { return vec ? vfc(cg, x) : cg_f32(cg, x); }
static LLVMValueRef rg_sigmoid(CG *cg, bool vec, LLVMValueRef x) {
  LLVMValueRef one = rg_const(cg, vec, 1.0);
  return cg_fdiv(cg, one, cg_fadd(cg, one, math_exp(cg, LLVMBuildFNeg(cg->B, x, ""))));
}
/* b_hh (operand 2), a param or a constant */
static LLVMValueRef rg_bias(RecGates *r, bool vec, LLVMValueRef i) {
  const Node *a = &r->k->cg->g->nodes[r->k->n->in[2]];
  if (a->op == OP_CONST) return rg_const(r->k->cg, vec, a->fval);
  return rg_load(r->k->cg, vec, r->k->in[2], i);
}

static void rec_gates(RecGates *r, LLVMValueRef j, LLVMValueRef H, bool vec) {
  Kernel *k = r->k;
  CG *cg = k->cg;
  LLVMValueRef xp = k->in[0], g = r->g, h;
  LLVMValueRef H2 = mul64(cg, H, i64c(cg, 2)), H3 = mul64(cg, H, i64c(cg, 3));
  if (r->lstm) {
    LLVMValueRef ig = rg_sigmoid(cg, vec, rg_load(cg, vec, xp, add64(cg, g, j)));
    LLVMValueRef fg = rg_sigmoid(cg, vec, rg_load(cg, vec, xp, add64(cg, add64(cg, g, H), j)));
    LLVMValueRef gg = math_tanh(cg, rg_load(cg, vec, xp, add64(cg, add64(cg, g, H2), j)));
    LLVMValueRef og = rg_sigmoid(cg, vec, rg_load(cg, vec, xp, add64(cg, add64(cg, g, H3), j)));
    LLVMValueRef cprev = LLVMBuildSelect(cg->B, r->first, rg_const(cg, vec, 0.0), rg_load(cg, vec, xp, add64(cg, r->gp, j)), "");
    LLVMValueRef c = cg_fadd(cg, cg_fmul(cg, fg, cprev), cg_fmul(cg, ig, gg));
    if (vec) vstore(cg, c, xp, add64(cg, g, j));
    else store_f(cg, c, xp, add64(cg, g, j));
    h = cg_fmul(cg, og, math_tanh(cg, c));
  } else {
    /* b_hr and b_hz are not in xp (a GRU's lowering leaves b_hh to the
     * kernel); b_hn is in hn */
    LLVMValueRef rgate = rg_sigmoid(cg, vec, cg_fadd(cg, rg_load(cg, vec, xp, add64(cg, g, j)), rg_bias(r, vec, j)));
    LLVMValueRef jz = add64(cg, H, j);
    LLVMValueRef zg = rg_sigmoid(cg, vec, cg_fadd(cg, rg_load(cg, vec, xp, add64(cg, g, jz)), rg_bias(r, vec, jz)));
    LLVMValueRef jn = add64(cg, H2, j);
    LLVMValueRef hn;
    if (r->fast)   /* W_hn h_{t-1} + b_hn, already in h_t's place (b_hn alone at t = 0) */
      hn = LLVMBuildSelect(cg->B, r->first, rg_bias(r, vec, jn), rg_load(cg, vec, k->out, add64(cg, r->ho, j)), "");
    else {
      int64_t P = rec_panel(cg, k->n);
      hn = cg_fadd(cg, emit_dot_strided(cg, k->out, r->hp, k->in[1], rec_w_at(cg, P, H, i64c(cg, 0), jn), i64c(cg, P), r->kmax),
                   rg_bias(r, vec, jn));
    }
    LLVMValueRef ng = math_tanh(cg, cg_fadd(cg, rg_load(cg, vec, xp, add64(cg, g, jn)), cg_fmul(cg, rgate, hn)));
    LLVMValueRef hprev = LLVMBuildSelect(cg->B, r->first, rg_const(cg, vec, 0.0), rg_load(cg, vec, k->out, add64(cg, r->hp, j)), "");
    h = cg_fadd(cg, cg_fmul(cg, cg_fsub(cg, rg_const(cg, vec, 1.0), zg), ng), cg_fmul(cg, zg, hprev));
  }
  if (vec) vstore(cg, h, k->out, add64(cg, r->ho, j));
  else store_f(cg, h, k->out, add64(cg, r->ho, j));
}

static void emit_recurrent(Kernel *k) {
  CG *cg = k->cg;
  const Node *n = k->n;
  bool lstm = n->op == OP_LSTM_SEQ;
  bool fast = rec_fast(cg, n);
  const Type *t = &n->type;
  int RB = rec_rb(cg);
  LLVMValueRef T = dim(cg, t->dims[t->rank - 2]);
  LLVMValueRef H = dim(cg, t->dims[t->rank - 1]);
  LLVMValueRef G = mul64(cg, H, i64c(cg, lstm ? 4 : 3));
  LLVMValueRef nseq = dims_prod(cg, t, 0, t->rank - 2);
  Loop r, tl, jl, sl;
  LLVMValueRef tile = loop_begin(cg, &r, k->begin, k->end);
  LLVMValueRef s0 = mul64(cg, tile, i64c(cg, RB));
  LLVMValueRef s1 = add64(cg, s0, i64c(cg, RB));
  s1 = LLVMBuildSelect(cg->B, LLVMBuildICmp(cg->B, LLVMIntSLT, s1, nseq, ""), s1, nseq, "");
  LLVMValueRef step = loop_begin(cg, &tl, i64c(cg, 0), T);
  LLVMValueRef first = LLVMBuildICmp(cg->B, LLVMIntEQ, step, i64c(cg, 0), "");
  if (fast) {
    /* at t = 0 the state is zero: no GEMM (a GRU's n part is b_hn alone) */
    LLVMBasicBlockRef gemm = LLVMAppendBasicBlockInContext(cg->C, cg->fn, "rec.gemm");
    LLVMBasicBlockRef whole = LLVMAppendBasicBlockInContext(cg->C, cg->fn, "rec.whole");
    LLVMBasicBlockRef part = LLVMAppendBasicBlockInContext(cg->C, cg->fn, "rec.part");
    LLVMBasicBlockRef gates = LLVMAppendBasicBlockInContext(cg->C, cg->fn, "rec.gates");
    LLVMBuildCondBr(cg->B, first, gates, gemm);
    LLVMPositionBuilderAtEnd(cg->B, gemm);
    /* whole groups of MR sequences register-blocked, then the rest (a
     * batch of 1 is all rest: a GEMV) one at a time */
    int MR = rec_mr(cg);
    LLVMValueRef ngroups = div64(cg, LLVMBuildNSWSub(cg->B, s1, s0, ""), i64c(cg, MR));
    LLVMBuildCondBr(cg->B, LLVMBuildICmp(cg->B, LLVMIntSGT, ngroups, i64c(cg, 0), ""), whole, part);
    LLVMPositionBuilderAtEnd(cg->B, whole);
    rec_step_gemm(k, lstm, MR, 2, s0, ngroups, step, T, H, G);
    LLVMBuildBr(cg->B, part);
    LLVMPositionBuilderAtEnd(cg->B, part);
    LLVMValueRef seq = loop_begin(cg, &sl, add64(cg, s0, mul64(cg, ngroups, i64c(cg, MR))), s1);
    rec_step_gemm(k, lstm, 1, 4, seq, i64c(cg, 1), step, T, H, G);
    loop_end(cg, &sl);
    LLVMBuildBr(cg->B, gates);
    LLVMPositionBuilderAtEnd(cg->B, gates);
  }
  LLVMValueRef seq = loop_begin(cg, &sl, s0, s1);
  LLVMValueRef xb = mul64(cg, mul64(cg, seq, T), G), ob = mul64(cg, mul64(cg, seq, T), H);
  LLVMValueRef g = add64(cg, xb, mul64(cg, step, G));
  /* loads that would reach step -1 point at step 0 instead and are
   * selected away */
  LLVMValueRef kmax = LLVMBuildSelect(cg->B, first, i64c(cg, 0), H, "");
  LLVMValueRef prev = LLVMBuildSelect(cg->B, first, i64c(cg, 0), LLVMBuildNSWSub(cg->B, step, i64c(cg, 1), ""), "");
  LLVMValueRef hp = add64(cg, ob, mul64(cg, prev, H));
  LLVMValueRef gp = add64(cg, xb, mul64(cg, prev, G));
  LLVMValueRef ho = add64(cg, ob, mul64(cg, step, H));
  LLVMValueRef nsum = lstm ? G : mul64(cg, H, i64c(cg, 2));
  LLVMValueRef j;
  if (!fast) {
    j = loop_begin(cg, &jl, i64c(cg, 0), nsum);
    int64_t P = rec_panel(cg, n);
    LLVMValueRef dot = emit_dot_strided(cg, k->out, hp, k->in[1], rec_w_at(cg, P, H, i64c(cg, 0), j), i64c(cg, P), kmax);
    LLVMValueRef gj = add64(cg, g, j);
    store_f(cg, cg_fadd(cg, load_f(cg, k->in[0], gj), dot), k->in[0], gj);
    loop_end(cg, &jl);
  }
  RecGates rg = {k, lstm, fast, g, gp, hp, ho, first, kmax};
  LLVMValueRef hv = i64c(cg, 0);
  if (lstm || fast) {
    /* whole vectors of units, then the rest one by one */
    hv = mul64(cg, div64(cg, H, i64c(cg, cg->vl)), i64c(cg, cg->vl));
    Loop vlp;
    LLVMValueRef jv = loop_begin(cg, &vlp, i64c(cg, 0), div64(cg, H, i64c(cg, cg->vl)));
    rec_gates(&rg, mul64(cg, jv, i64c(cg, cg->vl)), H, true);
    loop_end(cg, &vlp);
  }
  j = loop_begin(cg, &jl, hv, H);
  rec_gates(&rg, j, H, false);
  loop_end(cg, &jl);
  loop_end(cg, &sl);
  loop_end(cg, &tl);
  loop_end(cg, &r);
}

/* The first result row (over batch dims and T) of tile `row`. */
static LLVMValueRef tile_first_row(CG *cg, LLVMValueRef row, LLVMValueRef tiles, LLVMValueRef T) {
  LLVMValueRef batch = div64(cg, row, tiles);
  LLVMValueRef t0 = mul64(cg, rem64(cg, row, tiles), i64c(cg, ATT_QTILE_ROWS));
  return add64(cg, mul64(cg, batch, T), t0);
}

/* Fused attention over tiles of ATT_QTILE query rows (a row of the
 * thread pool is one tile) against blocks of ATT_BLOCK keys, with an
 * online softmax: for each key block, each query of the tile computes its
 * scores into a small stack buffer, updates its running max m and sum l,
 * rescales its accumulator (its output row) once by exp(m_old - m_new) and
 * adds p_j v_j; the block's keys and values serve all the tile's queries
 * while they are in cache.  Memory is O(tile * dv) whatever S is.  With
 * causal, key blocks past the tile's last query are never computed; inside
 * the diagonal block each query stops at its own position. */
enum { ATT_BLOCK = 64, ATT_QTILE = ATT_QTILE_ROWS };

static void emit_attention(Kernel *k) {
  CG *cg = k->cg;
  const Node *n = k->n;
  const Type *t = &n->type;
  const Type *tq = &cg->g->nodes[n->in[0]].type, *tk = &cg->g->nodes[n->in[1]].type;
  const Type *tv = &cg->g->nodes[n->in[2]].type;
  bool has_mask = n->nin > 3;
  const Type *tm = has_mask ? &cg->g->nodes[n->in[3]].type : NULL;
  LLVMValueRef T = dim(cg, t->dims[t->rank - 2]);
  LLVMValueRef dk = dim(cg, tq->dims[tq->rank - 1]);
  LLVMValueRef S = dim(cg, tk->dims[tk->rank - 2]);
  LLVMValueRef dv = dim(cg, tv->dims[tv->rank - 1]);
  LLVMValueRef tiles = div64(cg, add64(cg, T, i64c(cg, ATT_QTILE - 1)), i64c(cg, ATT_QTILE));
  int nb = t->rank - 2;
  LLVMTypeRef buf_ty = LLVMArrayType2(cg->f32, ATT_BLOCK);
  LLVMTypeRef st_ty = LLVMArrayType2(cg->f32, ATT_QTILE);
  LLVMValueRef buf = entry_alloca(cg, buf_ty, "scores");
  LLVMValueRef marr = entry_alloca(cg, st_ty, "m"), larr = entry_alloca(cg, st_ty, "l");
  LLVMValueRef bmax = entry_alloca(cg, cg->f32, "bmax"), lvar = entry_alloca(cg, cg->f32, "lq");
  Loop r, ql, jb, jl, dl;
  LLVMValueRef row = loop_begin(cg, &r, k->begin, k->end);
  LLVMValueRef t0 = mul64(cg, rem64(cg, row, tiles), i64c(cg, ATT_QTILE)), rest = div64(cg, row, tiles);
  LLVMValueRef t1 = add64(cg, t0, i64c(cg, ATT_QTILE));
  t1 = LLVMBuildSelect(cg->B, LLVMBuildICmp(cg->B, LLVMIntSLT, t1, T, ""), t1, T, "");
  LLVMValueRef idx[MAX_RANK];
  for (int ax = nb - 1; ax >= 0; ax--) {
    LLVMValueRef d = dim(cg, t->dims[ax]);
    idx[ax] = rem64(cg, rest, d);
    rest = div64(cg, rest, d);
  }
  LLVMValueRef qb = batch_offset(cg, t, nb, idx, tq, tq->rank - 2, mul64(cg, dim(cg, tq->dims[tq->rank - 2]), dk));
  LLVMValueRef ko = batch_offset(cg, t, nb, idx, tk, tk->rank - 2, mul64(cg, S, dk));
  LLVMValueRef vo = batch_offset(cg, t, nb, idx, tv, tv->rank - 2, mul64(cg, S, dv));
  LLVMValueRef ob = mul64(cg, tile_first_row(cg, row, tiles, T), dv);
  LLVMValueRef mb = NULL, mrow = NULL, mcol = NULL;
  if (has_mask) {
    /* the mask broadcasts to [.., T, S]: its last two dims may be 1 */
    Type full = *t;
    full.dims[t->rank - 1] = tk->dims[tk->rank - 2];
    Dim mT = tm->rank >= 2 ? tm->dims[tm->rank - 2] : (Dim){1, -1};
    Dim mS = tm->dims[tm->rank - 1];
    LLVMValueRef mSv = dim(cg, mS);
    LLVMValueRef msize = mul64(cg, tm->rank >= 2 ? dim(cg, mT) : i64c(cg, 1), mSv);
    mb = batch_offset(cg, &full, nb, idx, tm, tm->rank > 2 ? tm->rank - 2 : 0, msize);
    mrow = tm->rank >= 2 && !is_one(mT) ? mSv : i64c(cg, 0);
    mcol = is_one(mS) ? i64c(cg, 0) : i64c(cg, 1);
  }
  LLVMValueRef ninf = cg_f32(cg, -1.0 / 0.0);
  LLVMValueRef tile_limit = S;
  if (n->causal) tile_limit = LLVMBuildSelect(cg->B, LLVMBuildICmp(cg->B, LLVMIntSLT, t1, S, ""), t1, S, "");
  /* per query of the tile: m = -inf, l = 0, o = 0 */
  LLVMValueRef i = loop_begin(cg, &ql, t0, t1);
  LLVMValueRef q = LLVMBuildNSWSub(cg->B, i, t0, "");
  LLVMValueRef qs[2] = {i64c(cg, 0), q};
  LLVMBuildStore(cg->B, ninf, LLVMBuildInBoundsGEP2(cg->B, st_ty, marr, qs, 2, ""));
  LLVMBuildStore(cg->B, cg_f32(cg, 0.0), LLVMBuildInBoundsGEP2(cg->B, st_ty, larr, qs, 2, ""));
  LLVMValueRef oo = add64(cg, ob, mul64(cg, q, dv));
  LLVMValueRef d = loop_begin(cg, &dl, i64c(cg, 0), dv);
  store_f(cg, cg_f32(cg, 0.0), k->out, add64(cg, oo, d));
  loop_end(cg, &dl);
  loop_end(cg, &ql);
  LLVMValueRef nblocks = div64(cg, add64(cg, tile_limit, i64c(cg, ATT_BLOCK - 1)), i64c(cg, ATT_BLOCK));
  LLVMValueRef blk = loop_begin(cg, &jb, i64c(cg, 0), nblocks);
  LLVMValueRef j0 = mul64(cg, blk, i64c(cg, ATT_BLOCK));
  LLVMValueRef j1 = add64(cg, j0, i64c(cg, ATT_BLOCK));
  j1 = LLVMBuildSelect(cg->B, LLVMBuildICmp(cg->B, LLVMIntSLT, j1, tile_limit, ""), j1, tile_limit, "");
  i = loop_begin(cg, &ql, t0, t1);
  q = LLVMBuildNSWSub(cg->B, i, t0, "");
  qs[1] = q;
  LLVMValueRef mp = LLVMBuildInBoundsGEP2(cg->B, st_ty, marr, qs, 2, "");
  LLVMValueRef lp = LLVMBuildInBoundsGEP2(cg->B, st_ty, larr, qs, 2, "");
  LLVMValueRef qo = add64(cg, qb, mul64(cg, i, dk));
  oo = add64(cg, ob, mul64(cg, q, dv));
  LLVMValueRef mo = has_mask ? add64(cg, mb, mul64(cg, i, mrow)) : NULL;
  /* this query's keys in the block: up to its own position if causal */
  LLVMValueRef jend = j1;
  if (n->causal) {
    LLVMValueRef lim = add64(cg, i, i64c(cg, 1));
    jend = LLVMBuildSelect(cg->B, LLVMBuildICmp(cg->B, LLVMIntSLT, lim, j1, ""), lim, j1, "");
  }
  LLVMValueRef cnt = LLVMBuildNSWSub(cg->B, jend, j0, "");
  /* scores of this block, and their max (no keys: cnt <= 0, nothing runs) */
  LLVMBuildStore(cg->B, ninf, bmax);
  LLVMValueRef jj = loop_begin(cg, &jl, i64c(cg, 0), cnt);
  LLVMValueRef j = add64(cg, j0, jj);
  LLVMValueRef sc = cg_fmul(cg, emit_dot(cg, k->in[0], qo, k->in[1], add64(cg, ko, mul64(cg, j, dk)), dk), cg_f32(cg, n->fval));
  if (has_mask) sc = cg_fadd(cg, sc, load_f(cg, k->in[3], add64(cg, mo, mul64(cg, j, mcol))));
  LLVMValueRef slot[2] = {i64c(cg, 0), jj};
  LLVMBuildStore(cg->B, sc, LLVMBuildInBoundsGEP2(cg->B, buf_ty, buf, slot, 2, ""));
  LLVMValueRef mx[2] = {LLVMBuildLoad2(cg->B, cg->f32, bmax, ""), sc};
  LLVMBuildStore(cg->B, cg_intrinsic(cg, "llvm.maxnum.f32", mx, 2), bmax);
  loop_end(cg, &jl);
  /* rescale what is accumulated so far to the new max; with every key
   * masked so far the max stays -inf and 0 stands in for it */
  LLVMValueRef mold = LLVMBuildLoad2(cg->B, cg->f32, mp, "");
  LLVMValueRef mm[2] = {mold, LLVMBuildLoad2(cg->B, cg->f32, bmax, "")};
  LLVMValueRef mnew = cg_intrinsic(cg, "llvm.maxnum.f32", mm, 2);
  LLVMValueRef muse = LLVMBuildSelect(cg->B, LLVMBuildFCmp(cg->B, LLVMRealOEQ, mnew, ninf, ""), cg_f32(cg, 0.0), mnew, "");
  LLVMValueRef alpha = math_exp(cg, cg_fsub(cg, mold, muse));
  LLVMBuildStore(cg->B, mnew, mp);
  LLVMBuildStore(cg->B, cg_fmul(cg, LLVMBuildLoad2(cg->B, cg->f32, lp, ""), alpha), lvar);
  d = loop_begin(cg, &dl, i64c(cg, 0), dv);
  LLVMValueRef op = add64(cg, oo, d);
  store_f(cg, cg_fmul(cg, load_f(cg, k->out, op), alpha), k->out, op);
  loop_end(cg, &dl);
  /* p_j = exp(s_j - m); l += p_j; o += p_j v_j */
  jj = loop_begin(cg, &jl, i64c(cg, 0), cnt);
  j = add64(cg, j0, jj);
  slot[1] = jj;
  LLVMValueRef sv = LLVMBuildLoad2(cg->B, cg->f32, LLVMBuildInBoundsGEP2(cg->B, buf_ty, buf, slot, 2, ""), "");
  LLVMValueRef pj = math_exp(cg, cg_fsub(cg, sv, muse));
  LLVMBuildStore(cg->B, cg_fadd(cg, LLVMBuildLoad2(cg->B, cg->f32, lvar, ""), pj), lvar);
  LLVMValueRef vrow = add64(cg, vo, mul64(cg, j, dv));
  d = loop_begin(cg, &dl, i64c(cg, 0), dv);
  op = add64(cg, oo, d);
  store_f(cg, cg_fadd(cg, load_f(cg, k->out, op), cg_fmul(cg, pj, load_f(cg, k->in[2], add64(cg, vrow, d)))), k->out, op);
  loop_end(cg, &dl);
  loop_end(cg, &jl);
  LLVMBuildStore(cg->B, LLVMBuildLoad2(cg->B, cg->f32, lvar, ""), lp);
  loop_end(cg, &ql);
  loop_end(cg, &jb);
  /* o /= l; a row with no visible key has l = 0: zeros for attention(),
   * NaN where the source's softmax would have given NaN */
  i = loop_begin(cg, &ql, t0, t1);
  q = LLVMBuildNSWSub(cg->B, i, t0, "");
  qs[1] = q;
  LLVMValueRef l = LLVMBuildLoad2(cg->B, cg->f32, LLVMBuildInBoundsGEP2(cg->B, st_ty, larr, qs, 2, ""), "");
  LLVMValueRef inv = cg_fdiv(cg, cg_f32(cg, 1.0), l);
  inv = LLVMBuildSelect(cg->B, LLVMBuildFCmp(cg->B, LLVMRealOEQ, l, cg_f32(cg, 0.0), ""),
                        cg_f32(cg, n->safe ? 0.0 : 0.0 / 0.0), inv, "");
  oo = add64(cg, ob, mul64(cg, q, dv));
  d = loop_begin(cg, &dl, i64c(cg, 0), dv);
  op = add64(cg, oo, d);
  store_f(cg, cg_fmul(cg, load_f(cg, k->out, op), inv), k->out, op);
  loop_end(cg, &dl);
  loop_end(cg, &ql);
  loop_end(cg, &r);
}

/* ---- fused attention, queries in vector lanes ----------------------------
 * When the head dims dk and dv are constants (they are in every model in
 * practice), attention runs "transposed": a tile of QT = 2 vectors of
 * queries lives across the vector lanes, so every step of the online
 * softmax is vertical:
 *   - Q^T of the tile is packed once (dk x QT, pre-scaled) on the stack;
 *   - for each group of KG consecutive keys, the scores S^T[g] (KG x 2
 *     vectors, in registers) = sum_d K[j_g, d] (broadcast) * Q^T[d];
 *   - the running max m and sum l are vectors over the tile's queries; the
 *     group's max is a vertical max, p = exp(S^T - m) KG x 2 exps;
 *   - O^T (dv x QT, stack, in L1) += sum_g V[j_g, d] * p[g] (rescaled
 *     apart, when the running max moves: see att_group).
 * Each key and value element is loaded once per tile as a broadcast, so
 * the loops are FMA-bound.  KG is 8 with AVX-512: the 16 p's leave room
 * for 8 accumulators of O^T in the P.V loop (with 12 keys, 24 p's left
 * room only for O^T streamed through memory, and that loop ran at 0.77x
 * the FMA rate of the scores loop; 8 keys made the kernel 0.91x the
 * time, bench/). */
/* How far (in units of the scores) a group's max may pass the running max
 * before the tile rescales: p <= e^8 = 2981, far from overflow. */
#define ATT_STALE 8.0

static int att_kg(CG *cg) { return cg->vl >= 16 ? 8 : 6; }
static int att_qt(CG *cg) { return 2 * cg->vl; }

static bool att_fast(CG *cg, const Node *n) {
  const Type *tq = &cg->g->nodes[n->in[0]].type, *tv = &cg->g->nodes[n->in[2]].type;
  Dim dk = tq->dims[tq->rank - 1], dv = tv->dims[tv->rank - 1];
  return dk.sym < 0 && dv.sym < 0 && dk.size <= 1024 && dv.size <= 1024 && dv.size % cg->vl == 0;
}

typedef struct AttTile {
  Kernel *k;
  int kg, qv;
  int64_t dk, dv;
  LLVMValueRef qt, ot;          /* stack: Q^T and O^T of the tile */
  LLVMValueRef ko, vo;          /* K and V offsets of this batch entry */
  LLVMValueRef qidx[2];         /* the lanes' query positions (i64 vectors) */
  LLVMValueRef mrow_ptr[2];     /* additive mask: per lane, the row's base (vector of ptrs) */
  LLVMValueRef mcol;            /* the mask's stride along keys (0 or 1) */
  LLVMValueRef m, l;            /* allocas: running max and sum, [qv] vectors */
} AttTile;

/* One group of kg keys from j0.  With tail, rows are clamped to jend - 1,
 * keys at or past jend are masked, and with causal so are keys later
 * than a lane's query: the last group and the causal diagonal take this
 * copy.  Every other group takes the copy without tail, whose rows are
 * one stride apart (one base register, constant offsets, where the
 * clamped rows needed 12 and spilled them), and which has no compares
 * or selects: 8-head attention ran 0.92x the time of one masked copy for
 * every group.  The masked copy takes groups of kg/3 keys: it runs for a
 * few groups per tile, and (measured with kg = 12) at kg keys it made the
 * kernel's compile take 1.46x the instructions (valgrind); at kg/3, 1.08x,
 * and the finer diagonal made causal attention 1% faster.  Prefetches
 * of the next group's rows may pass the end of K or V: they do not
 * fault. */
static void att_group(AttTile *a, LLVMValueRef j0, LLVMValueRef jend, bool tail, int kg) {
  Kernel *k = a->k;
  CG *cg = k->cg;
  const Node *n = k->n;
  int qv = a->qv;
  LLVMValueRef row[16];
  LLVMValueRef valid[16];
  for (int g = 0; g < kg; g++) {
    LLVMValueRef j = add64(cg, j0, i64c(cg, g));
    if (tail) {
      valid[g] = LLVMBuildICmp(cg->B, LLVMIntSLT, j, jend, "");
      j = LLVMBuildSelect(cg->B, valid[g], j, LLVMBuildNSWSub(cg->B, jend, i64c(cg, 1), ""), "");
    }
    row[g] = j;
  }
  LLVMValueRef kbase[16], vbase[16];
  for (int g = 0; g < kg; g++) {
    kbase[g] = elem_ptr(cg, k->in[1], add64(cg, a->ko, mul64(cg, row[g], i64c(cg, a->dk))));
    vbase[g] = elem_ptr(cg, k->in[2], add64(cg, a->vo, mul64(cg, row[g], i64c(cg, a->dv))));
  }
  /* S^T = K_group Q^T */
  LLVMValueRef init[MAX_CARRIED];
  for (int i = 0; i < kg * qv; i++) init[i] = vfc(cg, 0.0);
  CLoop dl;
  LLVMValueRef d = cloop_begin(cg, &dl, i64c(cg, 0), i64c(cg, a->dk), init, kg * qv);
  LLVMValueRef qvv[2], next[MAX_CARRIED];
  for (int v = 0; v < qv; v++) qvv[v] = vload(cg, a->qt, add64(cg, mul64(cg, d, i64c(cg, qv * cg->vl)), i64c(cg, v * cg->vl)));
  /* the next group's V block (kg rows one stride apart, contiguous), a
   * line per d: it comes from L2 */
  if (!tail) prefetch(cg, elem_ptr(cg, vbase[0], add64(cg, i64c(cg, kg * a->dv), mul64(cg, d, i64c(cg, 16)))), 0);
  for (int g = 0; g < kg; g++) {
    LLVMValueRef kb = vsplat(cg, load_f(cg, kbase[g], d));
    for (int v = 0; v < qv; v++) next[g * qv + v] = vfma(cg, kb, qvv[v], dl.v[g * qv + v]);
  }
  cloop_end(cg, &dl, next);
  LLVMValueRef s[MAX_CARRIED];
  LLVMValueRef ninf = vfc(cg, -1.0 / 0.0);
  for (int g = 0; g < kg; g++)
    for (int v = 0; v < qv; v++) {
      LLVMValueRef x = dl.v[g * qv + v];
      if (a->mrow_ptr[0]) {
        /* additive mask: M[query lane, key j] gathered across the lanes */
        LLVMValueRef off = viota64_splat(cg, mul64(cg, row[g], a->mcol));
        LLVMValueRef ptrs = LLVMBuildInBoundsGEP2(cg->B, cg->f32, a->mrow_ptr[v], &off, 1, "");
        LLVMTypeRef pv = LLVMVectorType(cg->ptr, (unsigned)cg->vl);
        LLVMTypeRef tys[2] = {cg->vf, pv};
        unsigned id = LLVMLookupIntrinsicID("llvm.masked.gather", 18);
        LLVMValueRef fn = LLVMGetIntrinsicDeclaration(cg->M, id, tys, 2);
        LLVMValueRef ones[64];
        for (int i = 0; i < cg->vl; i++) ones[i] = LLVMConstInt(cg->i1, 1, 0);
        LLVMValueRef args[4] = {ptrs, cg_i32(cg, 4), LLVMConstVector(ones, (unsigned)cg->vl), LLVMGetUndef(cg->vf)};
        LLVMValueRef mv = LLVMBuildCall2(cg->B, LLVMIntrinsicGetType(cg->C, id, tys, 2), fn, args, 4, "");
        x = cg_fadd(cg, x, mv);
      }
      if (n->causal && tail) {
        /* key j is visible to query i when j <= i */
        LLVMValueRef later = LLVMBuildICmp(cg->B, LLVMIntSGT, viota64_splat(cg, row[g]), a->qidx[v], "");
        x = LLVMBuildSelect(cg->B, later, ninf, x, "");
      }
      if (tail) x = LLVMBuildSelect(cg->B, valid[g], x, ninf, "");
      s[g * qv + v] = x;
    }
  /* Online softmax with a stale max: m changes only when some lane's
   * group max passes it by more than ATT_STALE (then every lane's m
   * becomes its true max, and O^T and l are rescaled, in a branch taken
   * a few times per tile).  Otherwise p = exp(s - m) <= e^ATT_STALE and
   * the P.V loop has no rescale.  With an exact running max, some lane
   * out of 32 had a new max in most groups (a lane's chance at group g is
   * 1/(g+1)), so the rescale ran nearly always. */
  LLVMValueRef mp[2], lp[2], bm[2], any = NULL, p[MAX_CARRIED];
  for (int v = 0; v < qv; v++) {
    mp[v] = LLVMBuildInBoundsGEP2(cg->B, cg->vf, a->m, (LLVMValueRef[]){i64c(cg, v)}, 1, "");
    lp[v] = LLVMBuildInBoundsGEP2(cg->B, cg->vf, a->l, (LLVMValueRef[]){i64c(cg, v)}, 1, "");
    LLVMValueRef mold = LLVMBuildLoad2(cg->B, cg->vf, mp[v], "");
    /* The group's max and sum as trees (depth 3 for 8 keys, not chains
     * of 7).  vmax drops a NaN score: its p is NaN anyway, which makes
     * the row's sum and output NaN, as PyTorch's softmax would. */
    LLVMValueRef t[16];
    for (int g = 0; g < kg; g++) t[g] = s[g * qv + v];
    for (int w = kg; w > 1;) {
      int h = w / 2;
      for (int g = 0; g < h; g++) t[g] = vmax(cg, t[2 * g], t[2 * g + 1]);
      if (w & 1) t[h++] = t[w - 1];
      w = h;
    }
    bm[v] = t[0];
    /* m = -inf (no visible key yet) gives -inf here: any finite max passes */
    LLVMValueRef up = LLVMBuildFCmp(cg->B, LLVMRealOGT, bm[v], cg_fadd(cg, mold, vfc(cg, ATT_STALE)), "");
    any = any ? LLVMBuildOr(cg->B, any, up, "") : up;
  }
  any = LLVMBuildICmp(cg->B, LLVMIntNE, LLVMBuildBitCast(cg->B, any, LLVMIntTypeInContext(cg->C, (unsigned)cg->vl), ""),
                      LLVMConstInt(LLVMIntTypeInContext(cg->C, (unsigned)cg->vl), 0, 0), "");
  LLVMBasicBlockRef b_re = LLVMAppendBasicBlockInContext(cg->C, cg->fn, "att.rescale");
  LLVMBasicBlockRef b_go = LLVMAppendBasicBlockInContext(cg->C, cg->fn, "att.go");
  LLVMBuildCondBr(cg->B, any, b_re, b_go);
  LLVMPositionBuilderAtEnd(cg->B, b_re);
  {
    LLVMValueRef alpha[2];
    for (int v = 0; v < qv; v++) {
      LLVMValueRef mold = LLVMBuildLoad2(cg->B, cg->vf, mp[v], "");
      LLVMValueRef mnew = vmax(cg, bm[v], mold);
      /* with every key masked so far the max is -inf and 0 stands in for it */
      LLVMValueRef muse = LLVMBuildSelect(cg->B, LLVMBuildFCmp(cg->B, LLVMRealOEQ, mnew, ninf, ""), vfc(cg, 0.0), mnew, "");
      alpha[v] = math_exp_nonpos(cg, cg_fsub(cg, mold, muse));
      LLVMBuildStore(cg->B, mnew, mp[v]);
      LLVMBuildStore(cg->B, cg_fmul(cg, LLVMBuildLoad2(cg->B, cg->vf, lp[v], ""), alpha[v]), lp[v]);
    }
    Loop rl;
    LLVMValueRef dd = loop_begin(cg, &rl, i64c(cg, 0), i64c(cg, a->dv));
    for (int v = 0; v < qv; v++) {
      LLVMValueRef oi = add64(cg, mul64(cg, dd, i64c(cg, qv * cg->vl)), i64c(cg, v * cg->vl));
      vstore(cg, cg_fmul(cg, vload(cg, a->ot, oi), alpha[v]), a->ot, oi);
    }
    loop_end_nounroll(cg, &rl);
  }
  LLVMBuildBr(cg->B, b_go);
  LLVMPositionBuilderAtEnd(cg->B, b_go);
  for (int v = 0; v < qv; v++) {
    LLVMValueRef m = LLVMBuildLoad2(cg->B, cg->vf, mp[v], "");
    LLVMValueRef muse = LLVMBuildSelect(cg->B, LLVMBuildFCmp(cg->B, LLVMRealOEQ, m, ninf, ""), vfc(cg, 0.0), m, "");
    LLVMValueRef t[16];
    for (int g = 0; g < kg; g++) t[g] = p[g * qv + v] = math_exp_nonpos(cg, cg_fsub(cg, s[g * qv + v], muse));
    for (int w = kg; w > 1;) {
      int h = w / 2;
      for (int g = 0; g < h; g++) t[g] = cg_fadd(cg, t[2 * g], t[2 * g + 1]);
      if (w & 1) t[h++] = t[w - 1];
      w = h;
    }
    LLVMBuildStore(cg->B, cg_fadd(cg, LLVMBuildLoad2(cg->B, cg->vf, lp[v], ""), t[0]), lp[v]);
  }
  /* O^T += V_group^T P */
  if (cg->vl >= 16) {
    /* 32 registers: O^T in blocks of 4 rows (d) x qv vectors, 8
     * accumulators in registers through all the group's keys, next to
     * the 16 p's: 8 independent FMA chains keep both FMA ports busy, with
     * no merge adds and O^T loaded and stored once per block.  The loop
     * also prefetches the next group's K block, as below. */
    enum { DB = 4 };
    Loop ol;
    LLVMValueRef db = loop_begin(cg, &ol, i64c(cg, 0), i64c(cg, a->dv / DB));
    LLVMValueRef d0 = mul64(cg, db, i64c(cg, DB));
    LLVMValueRef oi[DB][2], o[DB][2];
    for (int u = 0; u < DB; u++)
      for (int v = 0; v < qv; v++) {
        oi[u][v] = add64(cg, mul64(cg, add64(cg, d0, i64c(cg, u)), i64c(cg, qv * cg->vl)), i64c(cg, v * cg->vl));
        o[u][v] = vload(cg, a->ot, oi[u][v]);
      }
    /* the next group's K block: kg * dk / 16 lines over dv / 4
     * iterations, so two lines each (past its end is harmless) */
    if (!tail)
      for (int l = 0; l < 2; l++)
        prefetch(cg, elem_ptr(cg, kbase[0], add64(cg, i64c(cg, kg * a->dk + 16 * l), mul64(cg, db, i64c(cg, 32)))), 0);
    for (int g = 0; g < kg; g++)
      for (int u = 0; u < DB; u++) {
        LLVMValueRef vb = vsplat(cg, load_f(cg, vbase[g], add64(cg, d0, i64c(cg, u))));
        for (int v = 0; v < qv; v++) o[u][v] = vfma(cg, vb, p[g * qv + v], o[u][v]);
      }
    for (int u = 0; u < DB; u++)
      for (int v = 0; v < qv; v++) vstore(cg, o[u][v], a->ot, oi[u][v]);
    loop_end_nounroll(cg, &ol);
    return;
  }
  Loop ol;
  d = loop_begin(cg, &ol, i64c(cg, 0), i64c(cg, a->dv));
  /* Below AVX-512 (16 registers) O^T streams through memory, one row d
   * per iteration.  Per lane vector two independent FMA chains, so that their latency
   * overlaps.  Keys outside, lane vectors inside: each broadcast of V is
   * dead after its qv FMAs, which leaves registers for the p's (with the
   * lane vectors outside, the 12 broadcasts stayed live and 7 p's went to
   * the stack). */
  LLVMValueRef oi[2], o[2], o2[2];
  for (int v = 0; v < qv; v++) {
    oi[v] = add64(cg, mul64(cg, d, i64c(cg, qv * cg->vl)), i64c(cg, v * cg->vl));
    o[v] = vload(cg, a->ot, oi[v]);
    o2[v] = NULL;
  }
  /* and the next group's K block */
  if (!tail) prefetch(cg, elem_ptr(cg, kbase[0], add64(cg, i64c(cg, kg * a->dk), mul64(cg, d, i64c(cg, 16)))), 0);
  for (int g = 0; g < kg; g++) {
    LLVMValueRef vb = vsplat(cg, load_f(cg, vbase[g], d));
    for (int v = 0; v < qv; v++) {
      if (g % 2 == 0) o[v] = vfma(cg, vb, p[g * qv + v], o[v]);
      else o2[v] = o2[v] ? vfma(cg, vb, p[g * qv + v], o2[v]) : cg_fmul(cg, vb, p[g * qv + v]);
    }
  }
  for (int v = 0; v < qv; v++) vstore(cg, o2[v] ? cg_fadd(cg, o[v], o2[v]) : o[v], a->ot, oi[v]);
  loop_end_nounroll(cg, &ol);
}

static void emit_attention_fast(Kernel *k) {
  CG *cg = k->cg;
  const Node *n = k->n;
  const Type *t = &n->type;
  const Type *tq = &cg->g->nodes[n->in[0]].type, *tk = &cg->g->nodes[n->in[1]].type;
  const Type *tv = &cg->g->nodes[n->in[2]].type;
  bool has_mask = n->nin > 3;
  const Type *tm = has_mask ? &cg->g->nodes[n->in[3]].type : NULL;
  int vl = cg->vl, qv = 2, QT = att_qt(cg);
  AttTile a = {.k = k, .kg = att_kg(cg), .qv = qv};
  a.dk = tq->dims[tq->rank - 1].size;
  a.dv = tv->dims[tv->rank - 1].size;
  LLVMValueRef T = dim(cg, t->dims[t->rank - 2]);
  LLVMValueRef S = dim(cg, tk->dims[tk->rank - 2]);
  LLVMValueRef tiles = div64(cg, add64(cg, T, i64c(cg, QT - 1)), i64c(cg, QT));
  int nb = t->rank - 2;
  a.qt = entry_alloca(cg, LLVMArrayType2(cg->f32, (uint64_t)(a.dk * QT)), "qt");
  a.ot = entry_alloca(cg, LLVMArrayType2(cg->f32, (uint64_t)(a.dv * QT)), "ot");
  LLVMSetAlignment(a.qt, 64);
  LLVMSetAlignment(a.ot, 64);
  a.m = entry_alloca(cg, LLVMArrayType2(cg->vf, (uint64_t)qv), "m");
  a.l = entry_alloca(cg, LLVMArrayType2(cg->vf, (uint64_t)qv), "l");
  LLVMValueRef linv = entry_alloca(cg, LLVMArrayType2(cg->f32, (uint64_t)QT), "linv");
  Loop r, ql, dl, jb;
  LLVMValueRef row = loop_begin(cg, &r, k->begin, k->end);
  LLVMValueRef t0 = mul64(cg, rem64(cg, row, tiles), i64c(cg, QT)), rest = div64(cg, row, tiles);
  LLVMValueRef t1 = add64(cg, t0, i64c(cg, QT));
  t1 = LLVMBuildSelect(cg->B, LLVMBuildICmp(cg->B, LLVMIntSLT, t1, T, ""), t1, T, "");
  LLVMValueRef tlast = LLVMBuildNSWSub(cg->B, t1, i64c(cg, 1), "");
  LLVMValueRef idx[MAX_RANK];
  for (int ax = nb - 1; ax >= 0; ax--) {
    LLVMValueRef dd = dim(cg, t->dims[ax]);
    idx[ax] = rem64(cg, rest, dd);
    rest = div64(cg, rest, dd);
  }
  LLVMValueRef qb = batch_offset(cg, t, nb, idx, tq, tq->rank - 2, mul64(cg, dim(cg, tq->dims[tq->rank - 2]), i64c(cg, a.dk)));
  a.ko = batch_offset(cg, t, nb, idx, tk, tk->rank - 2, mul64(cg, S, i64c(cg, a.dk)));
  a.vo = batch_offset(cg, t, nb, idx, tv, tv->rank - 2, mul64(cg, S, i64c(cg, a.dv)));
  /* row 0 of this batch entry in the output */
  LLVMValueRef ob = mul64(cg, mul64(cg, div64(cg, row, tiles), T), i64c(cg, a.dv));
  /* Q^T, scaled; lanes past T read the tile's last row and are not stored */
  LLVMValueRef lane = loop_begin(cg, &ql, i64c(cg, 0), i64c(cg, QT));
  LLVMValueRef qi = add64(cg, t0, lane);
  qi = LLVMBuildSelect(cg->B, LLVMBuildICmp(cg->B, LLVMIntSLT, qi, tlast, ""), qi, tlast, "");
  LLVMValueRef qrow = add64(cg, qb, mul64(cg, qi, i64c(cg, a.dk)));
  LLVMValueRef d = loop_begin(cg, &dl, i64c(cg, 0), i64c(cg, a.dk));
  store_f(cg, cg_fmul(cg, load_f(cg, k->in[0], add64(cg, qrow, d)), cg_f32(cg, n->fval)), a.qt,
          add64(cg, mul64(cg, d, i64c(cg, QT)), lane));
  loop_end(cg, &dl);
  loop_end(cg, &ql);
  LLVMValueRef e = loop_begin(cg, &dl, i64c(cg, 0), i64c(cg, a.dv * qv));
  vstore(cg, vfc(cg, 0.0), a.ot, mul64(cg, e, i64c(cg, vl)));
  loop_end(cg, &dl);
  LLVMTypeRef vi64 = LLVMVectorType(cg->i64, (unsigned)vl);
  for (int v = 0; v < qv; v++) {
    LLVMValueRef vidx = i64c(cg, v);
    LLVMBuildStore(cg->B, vfc(cg, -1.0 / 0.0), LLVMBuildInBoundsGEP2(cg->B, cg->vf, a.m, &vidx, 1, ""));
    LLVMBuildStore(cg->B, vfc(cg, 0.0), LLVMBuildInBoundsGEP2(cg->B, cg->vf, a.l, &vidx, 1, ""));
    a.qidx[v] = viota64(cg, add64(cg, t0, i64c(cg, v * vl)));
  }
  if (has_mask) {
    /* the mask broadcasts to [.., T, S]: its last two dims may be 1 */
    Type full = *t;
    full.dims[t->rank - 1] = tk->dims[tk->rank - 2];
    Dim mT = tm->rank >= 2 ? tm->dims[tm->rank - 2] : (Dim){1, -1};
    Dim mS = tm->dims[tm->rank - 1];
    LLVMValueRef mSv = dim(cg, mS);
    LLVMValueRef msize = mul64(cg, tm->rank >= 2 ? dim(cg, mT) : i64c(cg, 1), mSv);
    LLVMValueRef mb = batch_offset(cg, &full, nb, idx, tm, tm->rank > 2 ? tm->rank - 2 : 0, msize);
    LLVMValueRef mrow = tm->rank >= 2 && !is_one(mT) ? mSv : i64c(cg, 0);
    a.mcol = is_one(mS) ? i64c(cg, 0) : i64c(cg, 1);
    for (int v = 0; v < qv; v++) {
      LLVMValueRef qc = a.qidx[v];
      LLVMValueRef tl = viota64_splat(cg, tlast);
      qc = LLVMBuildSelect(cg->B, LLVMBuildICmp(cg->B, LLVMIntSLT, qc, tl, ""), qc, tl, "");
      LLVMValueRef off = LLVMBuildAdd(cg->B, viota64_splat(cg, mb), LLVMBuildMul(cg->B, qc, viota64_splat(cg, mrow), ""), "");
      a.mrow_ptr[v] = LLVMBuildInBoundsGEP2(cg->B, cg->f32, k->in[3], &off, 1, "");
    }
  }
  (void)vi64;
  /* keys: all of S, or with causal up to the tile's last query */
  LLVMValueRef jend = S;
  if (n->causal) jend = LLVMBuildSelect(cg->B, LLVMBuildICmp(cg->B, LLVMIntSLT, t1, S, ""), t1, S, "");
  /* Groups whose keys are all in range and, with causal, visible to the
   * tile's first query (so to every lane) need no masks: they take a copy
   * without them, with rows one stride apart.  The rest (the last partial
   * group, the causal diagonal) take the masked copy. */
  LLVMValueRef jfull = jend;
  if (n->causal) jfull = LLVMBuildSelect(cg->B, LLVMBuildICmp(cg->B, LLVMIntSLT, t0, jend, ""), add64(cg, t0, i64c(cg, 1)), jend, "");
  LLVMValueRef nfull = div64(cg, jfull, i64c(cg, a.kg));
  LLVMValueRef gi = loop_begin(cg, &jb, i64c(cg, 0), nfull);
  att_group(&a, mul64(cg, gi, i64c(cg, a.kg)), jend, false, a.kg);
  loop_end(cg, &jb);
  int kt = a.kg / 3;
  LLVMValueRef jt = mul64(cg, nfull, i64c(cg, a.kg));
  LLVMValueRef ntail = div64(cg, add64(cg, LLVMBuildNSWSub(cg->B, jend, jt, ""), i64c(cg, kt - 1)), i64c(cg, kt));
  gi = loop_begin(cg, &jb, i64c(cg, 0), ntail);
  att_group(&a, add64(cg, jt, mul64(cg, gi, i64c(cg, kt))), jend, true, kt);
  loop_end(cg, &jb);
  /* o = O^T / l; a lane with no visible key has l = 0: zeros for
   * attention(), NaN where the source's softmax would have given NaN */
  for (int v = 0; v < qv; v++) {
    LLVMValueRef vidx = i64c(cg, v);
    LLVMValueRef l = LLVMBuildLoad2(cg->B, cg->vf, LLVMBuildInBoundsGEP2(cg->B, cg->vf, a.l, &vidx, 1, ""), "");
    LLVMValueRef inv = cg_fdiv(cg, vfc(cg, 1.0), l);
    inv = LLVMBuildSelect(cg->B, LLVMBuildFCmp(cg->B, LLVMRealOEQ, l, vfc(cg, 0.0), ""),
                          vfc(cg, n->safe ? 0.0 : 0.0 / 0.0), inv, "");
    vstore(cg, inv, linv, i64c(cg, v * vl));
  }
  lane = loop_begin(cg, &ql, i64c(cg, 0), LLVMBuildNSWSub(cg->B, t1, t0, ""));
  LLVMValueRef li = load_f(cg, linv, lane);
  LLVMValueRef orow = add64(cg, ob, mul64(cg, add64(cg, t0, lane), i64c(cg, a.dv)));
  d = loop_begin(cg, &dl, i64c(cg, 0), i64c(cg, a.dv));
  store_f(cg, cg_fmul(cg, load_f(cg, a.ot, add64(cg, mul64(cg, d, i64c(cg, QT)), lane)), li), k->out, add64(cg, orow, d));
  loop_end(cg, &dl);
  loop_end(cg, &ql);
  loop_end(cg, &r);
}

/* The kernel of node id: a wrapper with the runtime's kernel signature
 * that loads the buffers and calls an always-inline body whose buffer
 * parameters are noalias (the memory plan guarantees it), so the
 * vectorizer needs no run-time alias checks. */
static LLVMValueRef emit_kernel(CG *cg, int id) {
  const Node *n = &cg->g->nodes[id];
  const char *mname = cg->g->model->name;
  LLVMTypeRef params[3 + MAX_OPERANDS + 2];
  int np = 0;
  params[np++] = cg->ptr;                       /* out */
  for (int k = 0; k < n->nin; k++) params[np++] = cg->ptr;
  params[np++] = cg->ptr;                       /* dims */
  params[np++] = cg->i64;
  params[np++] = cg->i64;
  LLVMTypeRef inner_ty = LLVMFunctionType(cg->voidt, params, (unsigned)np, 0);
  LLVMValueRef inner = new_fn(cg, arena_printf("attnc.%s.%d.%s.impl", mname, id, op_info[n->op].text), inner_ty, true);
  add_attr(cg, inner, (int)LLVMAttributeFunctionIndex, "alwaysinline");
  for (int k = 0; k <= n->nin; k++) add_attr(cg, inner, k + 1, "noalias");
  Kernel K = {.cg = cg, .n = n};
  K.out = LLVMGetParam(inner, 0);
  for (int k = 0; k < n->nin; k++) K.in[k] = LLVMGetParam(inner, (unsigned)(k + 1));
  load_dims(cg, LLVMGetParam(inner, (unsigned)(n->nin + 1)));
  K.begin = LLVMGetParam(inner, (unsigned)(n->nin + 2));
  K.end = LLVMGetParam(inner, (unsigned)(n->nin + 3));
  if (op_info[n->op].traits & T_EW) emit_ew(&K);
  else switch (n->op) {
    case OP_MATMUL: if (gemm_fast(cg, n)) emit_gemm(&K); else emit_matmul(&K); break;
    case OP_TRANSPOSE: emit_transpose(&K); break;
    case OP_PACK: emit_pack(&K); break;
    case OP_SOFTMAX: emit_softmax(&K); break;
    case OP_SUM: case OP_MEAN: case OP_MAX: emit_reduce(&K); break;
    case OP_LAYERNORM: emit_layernorm(&K); break;
    case OP_GATHER: emit_gather(&K); break;
    case OP_CONCAT: emit_concat(&K); break;
    case OP_SWAP_HEADS: emit_swap_heads(&K); break;
    case OP_POSENC: emit_posenc(&K); break;
    case OP_LSTM_SEQ: case OP_GRU_SEQ: emit_recurrent(&K); break;
    case OP_ATTENTION: if (att_fast(cg, n)) emit_attention_fast(&K); else emit_attention(&K); break;
    default: internal_error("no kernel for %s", op_info[n->op].text);
    }
  LLVMBuildRetVoid(cg->B);

  LLVMTypeRef kp[4] = {cg->ptr, cg->ptr, cg->i64, cg->i64};
  LLVMValueRef wrap = new_fn(cg, arena_printf("attnc.%s.%d.%s", mname, id, op_info[n->op].text),
                             LLVMFunctionType(cg->voidt, kp, 4, 0), true);
  LLVMValueRef args[3 + MAX_OPERANDS + 2];
  int na = 0;
  LLVMValueRef bufs = LLVMGetParam(wrap, 0);
  int ids[1 + MAX_OPERANDS];
  ids[0] = id;
  for (int k = 0; k < n->nin; k++) ids[k + 1] = n->in[k];
  for (int k = 0; k <= n->nin; k++) {
    if (cg->g->nodes[ids[k]].op == OP_CONST) {
      args[na++] = LLVMConstPointerNull(cg->ptr);
      continue;
    }
    LLVMValueRef idx = i64c(cg, ids[k]);
    args[na++] = LLVMBuildLoad2(cg->B, cg->ptr, LLVMBuildInBoundsGEP2(cg->B, cg->ptr, bufs, &idx, 1, ""), "");
  }
  args[na++] = LLVMGetParam(wrap, 1);
  args[na++] = LLVMGetParam(wrap, 2);
  args[na++] = LLVMGetParam(wrap, 3);
  LLVMBuildCall2(cg->B, inner_ty, inner, args, (unsigned)na, "");
  LLVMBuildRetVoid(cg->B);
  return wrap;
}

/* ---- scratch plan ------------------------------------------------------- */
/* Byte offsets of every slot (offs[nslots] is the total), each slot
 * rounded up to 64 bytes.  With ovf non-NULL the arithmetic is checked and
 * *ovf becomes true if any step overflows int64. */
static void slot_offsets(CG *cg, LLVMValueRef *offs, LLVMValueRef *ovf) {
  const Graph *g = cg->g;
  LLVMTypeRef pair[2] = {cg->i64, cg->i1};
  LLVMTypeRef res_ty = LLVMStructTypeInContext(cg->C, pair, 2, 0);
  unsigned mul_id = LLVMLookupIntrinsicID("llvm.smul.with.overflow", 23);
  unsigned add_id = LLVMLookupIntrinsicID("llvm.sadd.with.overflow", 23);
  LLVMValueRef mul_fn = LLVMGetIntrinsicDeclaration(cg->M, mul_id, &cg->i64, 1);
  LLVMValueRef add_fn = LLVMGetIntrinsicDeclaration(cg->M, add_id, &cg->i64, 1);
  LLVMTypeRef op_ty = LLVMFunctionType(res_ty, (LLVMTypeRef[]){cg->i64, cg->i64}, 2, 0);
  LLVMValueRef off = i64c(cg, 0);
  if (ovf) *ovf = LLVMConstInt(cg->i1, 0, 0);
#define CHECKED(fn, a, b, out)                                                              \
  do {                                                                                      \
    if (!ovf) { out = (fn) == mul_fn ? mul64(cg, a, b) : add64(cg, a, b); break; }          \
    LLVMValueRef r_ = LLVMBuildCall2(cg->B, op_ty, fn, (LLVMValueRef[]){a, b}, 2, "");     \
    out = LLVMBuildExtractValue(cg->B, r_, 0, "");                                          \
    *ovf = LLVMBuildOr(cg->B, *ovf, LLVMBuildExtractValue(cg->B, r_, 1, ""), "");            \
  } while (0)
  for (int s = 0; s < g->nslots; s++) {
    offs[s] = off;
    LLVMValueRef size = i64c(cg, 4 * g->slots[s].coeff);
    for (int d = 0; d < g->model->nsyms; d++)
      for (int p = 0; p < g->slots[s].pow[d]; p++) CHECKED(mul_fn, size, cg->dimv[d], size);
    CHECKED(add_fn, size, i64c(cg, 63), size);
    size = LLVMBuildAnd(cg->B, size, i64c(cg, ~(int64_t)63), "");
    CHECKED(add_fn, off, size, off);
  }
#undef CHECKED
  offs[g->nslots] = off;
}

static LLVMValueRef emit_scratch_size(CG *cg) {
  const char *m = cg->g->model->name;
  LLVMValueRef fn = new_fn(cg, arena_printf("attnc.%s.scratch_size", m),
                           LLVMFunctionType(cg->i64, &cg->ptr, 1, 0), true);
  load_dims(cg, LLVMGetParam(fn, 0));
  LLVMValueRef *offs = NEW_ARRAY(LLVMValueRef, cg->g->nslots + 1);
  LLVMValueRef ovf;
  slot_offsets(cg, offs, &ovf);
  LLVMBuildRet(cg->B, LLVMBuildSelect(cg->B, ovf, i64c(cg, -1), offs[cg->g->nslots], ""));
  return fn;
}

/* ---- body ------------------------------------------------------------------ */
static LLVMValueRef cstring(CG *cg, const char *s);
static LLVMValueRef load_ptr_at(CG *cg, LLVMValueRef arr, int i) {
  LLVMValueRef idx = i64c(cg, i);
  return LLVMBuildLoad2(cg->B, cg->ptr, LLVMBuildInBoundsGEP2(cg->B, cg->ptr, arr, &idx, 1, ""), "");
}

static LLVMValueRef fail_fn(CG *cg, LLVMTypeRef *ty) {
  *ty = LLVMFunctionType(cg->i32, (LLVMTypeRef[]){cg->ptr, cg->i32, cg->ptr, cg->i64}, 4, 0);
  LLVMValueRef f = LLVMGetNamedFunction(cg->M, "attnrt_fail_i");
  return f ? f : LLVMAddFunction(cg->M, "attnrt_fail_i", *ty);
}

/* if (bad) return attnrt_fail_i(ctx, status, msg, v); */
static void emit_fail_if(CG *cg, LLVMValueRef fn, LLVMValueRef bad, LLVMValueRef ctx, int status, const char *msg, LLVMValueRef v) {
  LLVMBasicBlockRef fail = LLVMAppendBasicBlockInContext(cg->C, fn, "fail");
  LLVMBasicBlockRef ok = LLVMAppendBasicBlockInContext(cg->C, fn, "ok");
  LLVMBuildCondBr(cg->B, bad, fail, ok);
  LLVMPositionBuilderAtEnd(cg->B, fail);
  LLVMTypeRef ty;
  LLVMValueRef f = fail_fn(cg, &ty);
  LLVMValueRef args[4] = {ctx, LLVMConstInt(cg->i32, (unsigned long long)status, 0), cstring(cg, msg), v};
  LLVMBuildRet(cg->B, LLVMBuildCall2(cg->B, ty, f, args, 4, ""));
  LLVMPositionBuilderAtEnd(cg->B, ok);
}

static const char *value_name(CG *cg, const Node *n) {
  const Model *m = cg->g->model;
  if (n->op == OP_INPUT) return arena_printf("input '%s'", m->inputs[n->index]->name);
  if (n->name) return arena_printf("'%s'", n->name);
  return arena_printf("the value at %d:%d", n->loc.line, n->loc.col);
}

/* A VIEW's pointer: its operand's plus start rows of the operand's first
 * dim (counted from the end when negative), checked against that dim when
 * it is symbolic (a fixed one was checked by the checker). */
static LLVMValueRef emit_view_ptr(CG *cg, const Node *n, LLVMValueRef base, LLVMValueRef ctx, LLVMValueRef fn) {
  if (n->start == 0) return base;
  const Node *a = &cg->g->nodes[n->in[0]];
  Dim d0 = a->type.dims[0];
  LLVMValueRef D0 = dim(cg, d0);
  LLVMValueRef start = n->start >= 0 ? i64c(cg, n->start) : add64(cg, D0, i64c(cg, n->start));
  if (d0.sym >= 0) {
    LLVMValueRef bad = n->start >= 0 ? LLVMBuildICmp(cg->B, LLVMIntSGE, start, D0, "")
                                     : LLVMBuildICmp(cg->B, LLVMIntSLT, start, i64c(cg, 0), "");
    const char *msg = arena_printf("index %lld at %d:%d is out of range: the first dim of %s (%s) is %%lld",
                                   (long long)n->start, n->loc.line, n->loc.col, value_name(cg, a),
                                   dim_str(cg->g->model, d0));
    emit_fail_if(cg, fn, bad, ctx, 7 /* ATTNRT_E_RANGE */, msg, D0);
  }
  LLVMValueRef row = dims_prod(cg, &a->type, 1, a->type.rank);
  LLVMValueRef off = mul64(cg, mul64(cg, start, row), i64c(cg, 4));
  return LLVMBuildInBoundsGEP2(cg->B, cg->i8, base, &off, 1, "");
}

static void emit_id_check(CG *cg, const Node *n, LLVMValueRef ids, LLVMValueRef ctx, LLVMValueRef fn) {
  const Node *a = &cg->g->nodes[n->in[0]];
  const Node *table = &cg->g->nodes[n->in[1]];
  int64_t rows = table->type.dims[0].size;
  LLVMValueRef count = dims_prod(cg, &a->type, 0, a->type.rank);
  Loop l;
  LLVMValueRef i = loop_begin(cg, &l, i64c(cg, 0), count);
  LLVMValueRef idp = LLVMBuildInBoundsGEP2(cg->B, cg->i32, ids, &i, 1, "");
  LLVMValueRef id = LLVMBuildSExt(cg->B, LLVMBuildLoad2(cg->B, cg->i32, idp, ""), cg->i64, "");
  /* one unsigned compare catches negative ids too */
  LLVMValueRef bad = LLVMBuildICmp(cg->B, LLVMIntUGE, id, i64c(cg, rows), "");
  const char *layer = cg->g->model->params[table->index].name;
  const char *msg = arena_printf("%s: id %%lld is out of range [0, %lld) for %s", value_name(cg, a), (long long)rows, layer);
  emit_fail_if(cg, fn, bad, ctx, 7 /* ATTNRT_E_RANGE */, msg, id);
  loop_end(cg, &l);
}

static LLVMValueRef emit_body(CG *cg, LLVMValueRef *kernels) {
  const Graph *g = cg->g;
  LLVMTypeRef pt[6] = {cg->ptr, cg->ptr, cg->ptr, cg->ptr, cg->ptr, cg->ptr};
  LLVMValueRef fn = new_fn(cg, arena_printf("attnc.%s.body", g->model->name), LLVMFunctionType(cg->i32, pt, 6, 0), true);
  LLVMValueRef ctx = LLVMGetParam(fn, 0), params = LLVMGetParam(fn, 1), inputs = LLVMGetParam(fn, 2);
  LLVMValueRef outputs = LLVMGetParam(fn, 3), dims = LLVMGetParam(fn, 4), scratch = LLVMGetParam(fn, 5);
  load_dims(cg, dims);
  LLVMValueRef *offs = NEW_ARRAY(LLVMValueRef, g->nslots + 1);
  slot_offsets(cg, offs, NULL);
  LLVMValueRef bufs = LLVMBuildArrayAlloca(cg->B, cg->ptr, i64c(cg, g->n > 0 ? g->n : 1), "bufs");
  LLVMValueRef *ptrs = NEW_ARRAY(LLVMValueRef, g->n + 1);
  for (int i = 0; i < g->n; i++) {
    const Node *n = &g->nodes[i];
    if (n->dead || n->op == OP_CONST) continue;
    LLVMValueRef p;
    if (n->op == OP_INPUT) p = load_ptr_at(cg, inputs, n->index);
    else if (n->op == OP_PARAM) p = load_ptr_at(cg, params, n->index);
    else if (n->op == OP_VIEW) p = emit_view_ptr(cg, n, ptrs[n->in[0]], ctx, fn);
    else if (n->output >= 0) p = load_ptr_at(cg, outputs, n->output);
    else if (n->slot >= 0) p = LLVMBuildInBoundsGEP2(cg->B, cg->i8, scratch, &offs[n->slot], 1, "");
    else internal_error("%%%d has no buffer", i);
    ptrs[i] = p;
    LLVMValueRef idx = i64c(cg, i);
    LLVMBuildStore(cg->B, p, LLVMBuildInBoundsGEP2(cg->B, cg->ptr, bufs, &idx, 1, ""));
  }
  /* Ids are checked before any kernel runs, so a bad id leaves the
   * outputs untouched and no kernel ever reads out of bounds. */
  for (int i = 0; i < g->n; i++) {
    const Node *n = &g->nodes[i];
    if (!n->dead && n->op == OP_GATHER) emit_id_check(cg, n, ptrs[n->in[0]], ctx, fn);
  }
  LLVMTypeRef pf_params[6] = {cg->ptr, cg->ptr, cg->ptr, cg->ptr, cg->i64, cg->i64};
  LLVMTypeRef pf_ty = LLVMFunctionType(cg->voidt, pf_params, 6, 0);
  LLVMValueRef pf = LLVMGetNamedFunction(cg->M, "attnrt_parallel_for");
  if (!pf) pf = LLVMAddFunction(cg->M, "attnrt_parallel_for", pf_ty);
  for (int i = 0; i < g->n; i++) {
    const Node *n = &g->nodes[i];
    if (n->dead || (op_info[n->op].traits & T_LEAF) || n->op == OP_VIEW) continue;
    LLVMValueRef rows = rows_of(cg, n);
    /* a few hundred microseconds of work per task at the least */
    LLVMValueRef grain = i64c(cg, 1);
    LLVMValueRef args[6] = {ctx, kernels[i], bufs, dims, rows, grain};
    LLVMBuildCall2(cg->B, pf_ty, pf, args, 6, "");
  }
  LLVMBuildRet(cg->B, LLVMConstInt(cg->i32, 0, 0));
  return fn;
}

/* ---- descriptor and entry points --------------------------------------- */
static LLVMValueRef cstring(CG *cg, const char *s) {
  return LLVMBuildGlobalStringPtr(cg->B, s, "str");
}

static LLVMValueRef const_str(CG *cg, const char *s) {
  LLVMValueRef init = LLVMConstStringInContext(cg->C, s, (unsigned)strlen(s), 0);
  LLVMValueRef gv = LLVMAddGlobal(cg->M, LLVMTypeOf(init), "attnc.str");
  LLVMSetInitializer(gv, init);
  LLVMSetGlobalConstant(gv, 1);
  LLVMSetLinkage(gv, LLVMPrivateLinkage);
  LLVMSetUnnamedAddress(gv, LLVMGlobalUnnamedAddr);
  return gv;
}

static LLVMTypeRef tensor_desc_ty(CG *cg) {
  LLVMTypeRef f[4] = {cg->ptr, cg->i64, cg->i64, LLVMArrayType2(cg->i64, ATTNRT_MAX_RANK_CG)};
  return LLVMStructTypeInContext(cg->C, f, 4, 0);
}

static LLVMValueRef tensor_descs(CG *cg, const char *what, int n, const char **names, const Type *types) {
  if (n == 0) return LLVMConstPointerNull(cg->ptr);
  LLVMTypeRef ty = tensor_desc_ty(cg);
  LLVMValueRef *elems = NEW_ARRAY(LLVMValueRef, n);
  for (int i = 0; i < n; i++) {
    LLVMValueRef dims[ATTNRT_MAX_RANK_CG];
    for (int d = 0; d < ATTNRT_MAX_RANK_CG; d++) {
      int64_t v = 0;
      if (d < types[i].rank) v = types[i].dims[d].sym < 0 ? types[i].dims[d].size : -(int64_t)types[i].dims[d].sym - 1;
      dims[d] = i64c(cg, v);
    }
    LLVMValueRef f[4] = {const_str(cg, names[i]), i64c(cg, types[i].dtype == DT_F32 ? 0 : 1), i64c(cg, types[i].rank),
                         LLVMConstArray2(cg->i64, dims, ATTNRT_MAX_RANK_CG)};
    elems[i] = LLVMConstNamedStruct(ty, f, 4);
  }
  LLVMValueRef init = LLVMConstArray2(ty, elems, (uint64_t)n);
  LLVMValueRef gv = LLVMAddGlobal(cg->M, LLVMTypeOf(init), arena_printf("attnc.%s.%s", cg->g->model->name, what));
  LLVMSetInitializer(gv, init);
  LLVMSetGlobalConstant(gv, 1);
  LLVMSetLinkage(gv, LLVMPrivateLinkage);
  return gv;
}

/* Weights given at compile time become read-only data of the object, one
 * 64-byte-aligned constant per param, and an array of pointers to them. */
static LLVMValueRef emit_embedded(CG *cg) {
  const Model *m = cg->g->model;
  if (!cg->embedded) return LLVMConstPointerNull(cg->ptr);
  LLVMValueRef *ptrs = NEW_ARRAY(LLVMValueRef, m->nparams + 1);
  for (int i = 0; i < m->nparams; i++) {
    size_t bytes = (size_t)ir_numel_known(m->params[i].type) * 4;
    LLVMValueRef init = LLVMConstStringInContext2(cg->C, cg->embedded[i], bytes, 1);
    LLVMValueRef gv = LLVMAddGlobal(cg->M, LLVMTypeOf(init), arena_printf("attnc.%s.weight.%d", m->name, i));
    LLVMSetInitializer(gv, init);
    LLVMSetGlobalConstant(gv, 1);
    LLVMSetLinkage(gv, LLVMPrivateLinkage);
    LLVMSetAlignment(gv, 64);
    ptrs[i] = gv;
  }
  LLVMValueRef init = LLVMConstArray2(cg->ptr, ptrs, (uint64_t)m->nparams);
  LLVMValueRef gv = LLVMAddGlobal(cg->M, LLVMTypeOf(init), arena_printf("attnc.%s.embedded", m->name));
  LLVMSetInitializer(gv, init);
  LLVMSetGlobalConstant(gv, 1);
  LLVMSetLinkage(gv, LLVMPrivateLinkage);
  return gv;
}

static LLVMValueRef emit_desc(CG *cg, LLVMValueRef body, LLVMValueRef scratch) {
  const Model *m = cg->g->model;
  const char **pn = NEW_ARRAY(const char *, m->nparams + 1);
  Type *pt = NEW_ARRAY(Type, m->nparams + 1);
  for (int i = 0; i < m->nparams; i++) pn[i] = m->params[i].name, pt[i] = m->params[i].type;
  const char **in = NEW_ARRAY(const char *, m->ninputs + 1);
  Type *it = NEW_ARRAY(Type, m->ninputs + 1);
  for (int i = 0; i < m->ninputs; i++) in[i] = m->inputs[i]->name, it[i] = m->inputs[i]->type;
  const char **on = NEW_ARRAY(const char *, m->noutputs + 1);
  Type *ot = NEW_ARRAY(Type, m->noutputs + 1);
  for (int i = 0; i < m->noutputs; i++) on[i] = m->outputs[i]->name, ot[i] = m->outputs[i]->type;

  LLVMValueRef dn = LLVMConstPointerNull(cg->ptr);
  if (m->nsyms) {
    LLVMValueRef *names = NEW_ARRAY(LLVMValueRef, m->nsyms);
    for (int i = 0; i < m->nsyms; i++) names[i] = const_str(cg, m->syms[i]);
    LLVMValueRef init = LLVMConstArray2(cg->ptr, names, (uint64_t)m->nsyms);
    dn = LLVMAddGlobal(cg->M, LLVMTypeOf(init), arena_printf("attnc.%s.dim_names", m->name));
    LLVMSetInitializer(dn, init);
    LLVMSetGlobalConstant(dn, 1);
    LLVMSetLinkage(dn, LLVMPrivateLinkage);
  }
  LLVMValueRef f[14] = {
      i64c(cg, 1), const_str(cg, m->name),
      i64c(cg, m->nparams), i64c(cg, m->ninputs), i64c(cg, m->noutputs), i64c(cg, m->nsyms),
      tensor_descs(cg, "params", m->nparams, pn, pt),
      tensor_descs(cg, "inputs", m->ninputs, in, it),
      tensor_descs(cg, "outputs", m->noutputs, on, ot),
      dn, body, scratch, emit_embedded(cg), i64c(cg, cg->threads == 0 ? -1 : cg->threads)};
  LLVMValueRef init = LLVMConstStructInContext(cg->C, f, 14, 0);
  LLVMValueRef gv = LLVMAddGlobal(cg->M, LLVMTypeOf(init), arena_printf("%s_model", m->name));
  LLVMSetInitializer(gv, init);
  LLVMSetGlobalConstant(gv, 1);
  LLVMSetAlignment(gv, 8);
  return gv;
}

/* attnrt_status NAME(attnrt_ctx *ctx, inputs..., outputs..., dims...) */
static void emit_entry(CG *cg, LLVMValueRef desc) {
  const Model *m = cg->g->model;
  int np = 1 + m->ninputs + m->noutputs + m->nsyms;
  LLVMTypeRef *pt = NEW_ARRAY(LLVMTypeRef, np);
  int k = 0;
  pt[k++] = cg->ptr;
  for (int i = 0; i < m->ninputs + m->noutputs; i++) pt[k++] = cg->ptr;
  for (int i = 0; i < m->nsyms; i++) pt[k++] = cg->i64;
  LLVMValueRef fn = new_fn(cg, m->name, LLVMFunctionType(cg->i32, pt, (unsigned)np, 0), false);
  LLVMValueRef ctx = LLVMGetParam(fn, 0);

  LLVMTypeRef model_ty = LLVMFunctionType(cg->ptr, &cg->ptr, 1, 0);
  LLVMValueRef model_fn = LLVMGetNamedFunction(cg->M, "attnrt_ctx_model");
  if (!model_fn) model_fn = LLVMAddFunction(cg->M, "attnrt_ctx_model", model_ty);
  LLVMTypeRef fail_ty = LLVMFunctionType(cg->i32, (LLVMTypeRef[]){cg->ptr, cg->i32, cg->ptr}, 3, 0);
  LLVMValueRef fail_fn = LLVMGetNamedFunction(cg->M, "attnrt_fail");
  if (!fail_fn) fail_fn = LLVMAddFunction(cg->M, "attnrt_fail", fail_ty);
  LLVMTypeRef run_ty = LLVMFunctionType(cg->i32, (LLVMTypeRef[]){cg->ptr, cg->ptr, cg->ptr, cg->ptr}, 4, 0);
  LLVMValueRef run_fn = LLVMGetNamedFunction(cg->M, "attnrt_run");
  if (!run_fn) run_fn = LLVMAddFunction(cg->M, "attnrt_run", run_ty);

  /* A ctx made for another model would run this body on its params. */
  LLVMBasicBlockRef null_bb = LLVMAppendBasicBlockInContext(cg->C, fn, "null_ctx");
  LLVMBasicBlockRef check_bb = LLVMAppendBasicBlockInContext(cg->C, fn, "check");
  LLVMBasicBlockRef bad_bb = LLVMAppendBasicBlockInContext(cg->C, fn, "other_model");
  LLVMBasicBlockRef run_bb = LLVMAppendBasicBlockInContext(cg->C, fn, "run");
  LLVMBuildCondBr(cg->B, LLVMBuildIsNull(cg->B, ctx, ""), null_bb, check_bb);
  LLVMPositionBuilderAtEnd(cg->B, null_bb);
  LLVMBuildRet(cg->B, LLVMConstInt(cg->i32, 1, 0));
  LLVMPositionBuilderAtEnd(cg->B, check_bb);
  LLVMValueRef mdl = LLVMBuildCall2(cg->B, model_ty, model_fn, &ctx, 1, "");
  LLVMBuildCondBr(cg->B, LLVMBuildICmp(cg->B, LLVMIntEQ, mdl, desc, ""), run_bb, bad_bb);
  LLVMPositionBuilderAtEnd(cg->B, bad_bb);
  LLVMValueRef msg = cstring(cg, arena_printf("%s: the context was made for another model", m->name));
  LLVMBuildRet(cg->B, LLVMBuildCall2(cg->B, fail_ty, fail_fn, (LLVMValueRef[]){ctx, LLVMConstInt(cg->i32, 1, 0), msg}, 3, ""));
  LLVMPositionBuilderAtEnd(cg->B, run_bb);
  int na = m->ninputs + m->noutputs;
  LLVMValueRef in = LLVMBuildArrayAlloca(cg->B, cg->ptr, i64c(cg, m->ninputs + 1), "inputs");
  LLVMValueRef out = LLVMBuildArrayAlloca(cg->B, cg->ptr, i64c(cg, m->noutputs + 1), "outputs");
  LLVMValueRef dims = LLVMBuildArrayAlloca(cg->B, cg->i64, i64c(cg, m->nsyms + 1), "dims");
  for (int i = 0; i < na; i++) {
    bool is_in = i < m->ninputs;
    LLVMValueRef idx = i64c(cg, is_in ? i : i - m->ninputs);
    LLVMBuildStore(cg->B, LLVMGetParam(fn, (unsigned)(1 + i)),
                   LLVMBuildInBoundsGEP2(cg->B, cg->ptr, is_in ? in : out, &idx, 1, ""));
  }
  for (int i = 0; i < m->nsyms; i++) {
    LLVMValueRef idx = i64c(cg, i);
    LLVMBuildStore(cg->B, LLVMGetParam(fn, (unsigned)(1 + na + i)), LLVMBuildInBoundsGEP2(cg->B, cg->i64, dims, &idx, 1, ""));
  }
  LLVMBuildRet(cg->B, LLVMBuildCall2(cg->B, run_ty, run_fn, (LLVMValueRef[]){ctx, in, out, dims}, 4, ""));
}

/* int64_t NAME_scratch_size(dims...) */
static void emit_scratch_entry(CG *cg, LLVMValueRef scratch_fn) {
  const Model *m = cg->g->model;
  LLVMTypeRef *pt = NEW_ARRAY(LLVMTypeRef, m->nsyms + 1);
  for (int i = 0; i < m->nsyms; i++) pt[i] = cg->i64;
  LLVMValueRef fn = new_fn(cg, arena_printf("%s_scratch_size", m->name), LLVMFunctionType(cg->i64, pt, (unsigned)m->nsyms, 0), false);
  LLVMValueRef dims = LLVMBuildArrayAlloca(cg->B, cg->i64, i64c(cg, m->nsyms + 1), "dims");
  for (int i = 0; i < m->nsyms; i++) {
    LLVMValueRef idx = i64c(cg, i);
    LLVMBuildStore(cg->B, LLVMGetParam(fn, (unsigned)i), LLVMBuildInBoundsGEP2(cg->B, cg->i64, dims, &idx, 1, ""));
  }
  LLVMTypeRef ty = LLVMFunctionType(cg->i64, &cg->ptr, 1, 0);
  LLVMBuildRet(cg->B, LLVMBuildCall2(cg->B, ty, scratch_fn, &dims, 1, ""));
}

LLVMModuleRef codegen(LLVMContextRef C, Graph **graphs, int ngraphs, const CodegenOptions *opt) {
  CG cg = {0};
  cg.C = C;
  cg.M = LLVMModuleCreateWithNameInContext(opt->module_name, C);
  cg.B = LLVMCreateBuilderInContext(C);
  cg.f32 = LLVMFloatTypeInContext(C);
  cg.i32 = LLVMInt32TypeInContext(C);
  cg.i64 = LLVMInt64TypeInContext(C);
  cg.i8 = LLVMInt8TypeInContext(C);
  cg.i1 = LLVMInt1TypeInContext(C);
  cg.ptr = LLVMPointerTypeInContext(C, 0);
  cg.voidt = LLVMVoidTypeInContext(C);
  cg.cpu = opt->cpu;
  cg.features = opt->features;
  cg.threads = opt->threads;
  cg.vl = opt->lanes >= 4 ? opt->lanes : 4;
  cg.vf = LLVMVectorType(cg.f32, (unsigned)cg.vl);
  for (int gi = 0; gi < ngraphs; gi++) {
    cg.g = graphs[gi];
    cg.embedded = opt->embedded ? opt->embedded[gi] : NULL;
    LLVMValueRef *kernels = NEW_ARRAY(LLVMValueRef, cg.g->n + 1);
    for (int i = 0; i < cg.g->n; i++) {
      const Node *n = &cg.g->nodes[i];
      if (!n->dead && !(op_info[n->op].traits & T_LEAF) && n->op != OP_VIEW) kernels[i] = emit_kernel(&cg, i);
    }
    LLVMValueRef scratch = emit_scratch_size(&cg);
    LLVMValueRef body = emit_body(&cg, kernels);
    LLVMValueRef desc = emit_desc(&cg, body, scratch);
    emit_entry(&cg, desc);
    emit_scratch_entry(&cg, scratch);
  }
  LLVMDisposeBuilder(cg.B);
  char *err = NULL;
  if (LLVMVerifyModule(cg.M, LLVMReturnStatusAction, &err)) {
    fprintf(stderr, "%s\n", err);
    internal_error("generated LLVM module does not verify");
  }
  LLVMDisposeMessage(err);
  return cg.M;
}
