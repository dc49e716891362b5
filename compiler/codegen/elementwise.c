/* elementwise.c: the elementwise kernels (one op, or a chain of them that
 * pass_fuse_elementwise fused into a node's EwStep program), flat or
 * broadcasting, and the same ops after a matmul as its fused epilogue
 * (emit_epilogue, which gemm.c calls).
 *
 * Needs: builder.c; math.c for exp, log, tanh and GELU. */
#include <math.h>

#include "cg.h"

/* An elementwise node whose operands all have its shape (or are constants):
 * its kernel runs over the elements as one flat range, EW_CHUNK per row. */
bool ew_is_flat(const Graph *g, const Node *n) {
  for (int k = 0; k < n->nin; k++) {
    const Node *a = &g->nodes[n->in[k]];
    Type at = a->type;
    at.dtype = n->type.dtype;   /* an i32 operand of the same shape is flat too */
    if (a->op != OP_CONST && !type_eq(at, n->type)) return false;
  }
  return true;
}

/* an integer scalar or vector */
static bool is_int(LLVMValueRef v) {
  LLVMTypeRef t = LLVMTypeOf(v);
  if (LLVMGetTypeKind(t) == LLVMVectorTypeKind) t = LLVMGetElementType(t);
  return LLVMGetTypeKind(t) == LLVMIntegerTypeKind;
}

/* A comparison, 1.0 or 0.0.  Integer operands (i32 tensors, i64 for an
 * i32 const) compare exactly, widened to i64; with a float operand the
 * integer one is converted to f32 first, as PyTorch promotes int32 and
 * float32 to float32.  Float compares are ordered, except != (NaN != x
 * is true, as in C and PyTorch). */
static LLVMValueRef ew_compare(CG *cg, Op op, LLVMValueRef a, LLVMValueRef b) {
  static const LLVMIntPredicate ip[] = {LLVMIntEQ, LLVMIntNE, LLVMIntSLT, LLVMIntSLE, LLVMIntSGT, LLVMIntSGE};
  static const LLVMRealPredicate fp[] = {LLVMRealOEQ, LLVMRealUNE, LLVMRealOLT, LLVMRealOLE, LLVMRealOGT, LLVMRealOGE};
  LLVMValueRef c;
  if (is_int(a) && is_int(b)) {
    a = LLVMBuildSExt(cg->B, a, cg->i64, "");
    b = LLVMBuildSExt(cg->B, b, cg->i64, "");
    c = LLVMBuildICmp(cg->B, ip[op - OP_EQ], a, b, "");
  } else {
    if (is_int(a)) a = LLVMBuildSIToFP(cg->B, a, cg->f32, "");
    if (is_int(b)) b = LLVMBuildSIToFP(cg->B, b, cg->f32, "");
    c = LLVMBuildFCmp(cg->B, fp[op - OP_EQ], a, b, "");
  }
  return LLVMBuildSelect(cg->B, c, cg_f32(cg, 1.0), cg_f32(cg, 0.0), "");
}

/* Is a mask element (f32 or i32) nonzero?  A NaN is: it is not 0. */
LLVMValueRef mask_nonzero(CG *cg, LLVMValueRef m) {
  if (is_int(m)) return LLVMBuildICmp(cg->B, LLVMIntNE, m, LLVMConstNull(LLVMTypeOf(m)), "");
  return LLVMBuildFCmp(cg->B, LLVMRealUNE, m, LLVMConstNull(LLVMTypeOf(m)), "");
}

/* Scalar result of an elementwise op; fval is FILL's value. */
static LLVMValueRef ew_apply(CG *cg, Op op, LLVMValueRef a, LLVMValueRef b, double fval) {
  switch (op) {
  case OP_EQ: case OP_NE: case OP_LT: case OP_LE: case OP_GT: case OP_GE: return ew_compare(cg, op, a, b);
  case OP_FILL: return LLVMBuildSelect(cg->B, mask_nonzero(cg, b), cg_f32(cg, fval), a, "");
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

/* Operand i at element idx: f32, or for an i32 operand i32 (an i32 const
 * as i64, which holds any integer literal exactly). */
static LLVMValueRef operand_at(Kernel *k, int i, LLVMValueRef idx) {
  CG *cg = k->cg;
  const Node *a = &cg->g->nodes[k->n->in[i]];
  bool i32 = a->type.dtype == DT_I32;
  /* beyond +-2^62 an integer compares with every i32 as 2^62 does */
  if (a->op == OP_CONST) return i32 ? i64c(cg, (int64_t)fmax(-0x1p62, fmin(0x1p62, a->fval))) : cg_f32(cg, a->fval);
  if (i32) return LLVMBuildLoad2(cg->B, cg->i32, elem_ptr(cg, k->in[i], idx), "");
  return load_f(cg, k->in[i], idx);
}

/* The node's value at one element from its operands' values v (and, for
 * a matmul epilogue, the matmul's own element self). */
static LLVMValueRef ew_value(Kernel *k, LLVMValueRef *v, LLVMValueRef self) {
  const Node *n = k->n;
  if (!n->prog) return ew_apply(k->cg, n->op, v[0], n->nin > 1 ? v[1] : NULL, n->fval);
  LLVMValueRef *res = NEW_ARRAY(LLVMValueRef, n->nprog);
  for (int s = 0; s < n->nprog; s++) {
    const EwStep *st = &n->prog[s];
    int refs[2] = {st->a, st->b};
    LLVMValueRef x[2];
    for (int r = 0; r < 2; r++)
      x[r] = refs[r] == EW_SELF ? self : refs[r] >= 0 ? v[refs[r]] : res[-refs[r] - 1];
    res[s] = ew_apply(k->cg, st->op, x[0], op_info[st->op].arity > 1 ? x[1] : NULL, st->fval);
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

void emit_ew(Kernel *k) {
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

/* A matmul's fused elementwise ops, over its finished output row (still
 * in cache): c[j] = prog(c[j], operands...). */
void emit_epilogue(Kernel *k, LLVMValueRef row, LLVMValueRef c_off, LLVMValueRef N) {
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
