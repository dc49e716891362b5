/* reduce.c: the kernels that reduce along an axis: softmax, sum, mean,
 * max, and LayerNorm (with its fused residual).
 *
 * Needs: builder.c (reduce_fmf makes the sums reassociable); math.c for
 * exp. */
#include "cg.h"

void emit_softmax(Kernel *k) {
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
  /* causal (over the last axis): query i sees keys 0..i, top-left aligned,
   * or 0..i+S-T lower right (none at all when that is below 0) */
  LLVMValueRef limit = n;
  if (node->causal) {
    LLVMValueRef T = dim(cg, t->dims[t->rank - 2]);
    LLVMValueRef i = rem64(cg, row, T);
    LLVMValueRef lim = add64(cg, i, i64c(cg, 1));
    if (node->causal_lr) lim = add64(cg, lim, LLVMBuildNSWSub(cg->B, n, T, ""));
    limit = LLVMBuildSelect(cg->B, LLVMBuildICmp(cg->B, LLVMIntSLT, lim, n, ""), lim, n, "");
    limit = LLVMBuildSelect(cg->B, LLVMBuildICmp(cg->B, LLVMIntSGT, limit, i64c(cg, 0), ""), limit, i64c(cg, 0), "limit");
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

/* buf[p] where n > 0, else the op's identity (0, or -inf for max: the
 * design.md 5.7 results over an empty axis, mean's 0/0 NaN included),
 * never reading an empty axis. */
static LLVMValueRef first_or_identity(CG *cg, Op op, LLVMValueRef buf, LLVMValueRef p, LLVMValueRef n) {
  LLVMValueRef id = cg_f32(cg, op == OP_MAX ? -1.0 / 0.0 : 0.0);
  LLVMBasicBlockRef pre = LLVMGetInsertBlock(cg->B);
  LLVMBasicBlockRef ld = LLVMAppendBasicBlockInContext(cg->C, cg->fn, "first");
  LLVMBasicBlockRef join = LLVMAppendBasicBlockInContext(cg->C, cg->fn, "init");
  LLVMBuildCondBr(cg->B, LLVMBuildICmp(cg->B, LLVMIntSGT, n, i64c(cg, 0), ""), ld, join);
  LLVMPositionBuilderAtEnd(cg->B, ld);
  LLVMValueRef v = load_f(cg, buf, p);
  LLVMBuildBr(cg->B, join);
  LLVMPositionBuilderAtEnd(cg->B, join);
  LLVMValueRef phi = LLVMBuildPhi(cg->B, cg->f32, "");
  LLVMAddIncoming(phi, &id, &pre, 1);
  LLVMAddIncoming(phi, &v, &ld, 1);
  return phi;
}

void emit_reduce(Kernel *k) {
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
    LLVMBuildStore(cg->B, first_or_identity(cg, node->op, k->in[0], base, n), acc);
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
    store_f(cg, first_or_identity(cg, node->op, k->in[0], add64(cg, ibase, i), n), k->out, add64(cg, obase, i));
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

void emit_layernorm(Kernel *k) {
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
