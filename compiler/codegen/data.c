/* data.c: the kernels that move data: gather (embedding rows by id),
 * concat and swap_heads, and posenc, which writes sinusoidal positional
 * encodings.  Views need no kernel: the body points them into their
 * operand (module.c).
 *
 * Needs: builder.c; math.c for sin and cos (posenc). */
#include <math.h>

#include "cg.h"

/* dst[do + j] = src[so + j] for j < n */
static void copy_row(CG *cg, LLVMValueRef src, LLVMValueRef so, LLVMValueRef dst, LLVMValueRef dof, LLVMValueRef n) {
  Loop jl;
  LLVMValueRef j = loop_begin(cg, &jl, i64c(cg, 0), n);
  store_f(cg, load_f(cg, src, add64(cg, so, j)), dst, add64(cg, dof, j));
  loop_end(cg, &jl);
}

void emit_gather(Kernel *k) {
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

void emit_concat(Kernel *k) {
  CG *cg = k->cg;
  const Node *n = k->n;
  const Type *ta = &cg->g->nodes[n->in[0]].type, *tb = &cg->g->nodes[n->in[1]].type;
  LLVMValueRef la = dims_prod(cg, ta, n->axis, ta->rank), lb = dims_prod(cg, tb, n->axis, tb->rank);
  LLVMValueRef lo = add64(cg, la, lb);
  Loop r;
  LLVMValueRef row = loop_begin(cg, &r, k->begin, k->end);
  LLVMValueRef ob = mul64(cg, row, lo);
  /* an in-place append (ir_is_append) leaves the first part, which is
   * already there, alone */
  if (!cg->append_tail) copy_row(cg, k->in[0], mul64(cg, row, la), k->out, ob, la);
  copy_row(cg, k->in[1], mul64(cg, row, lb), k->out, add64(cg, ob, la), lb);
  loop_end(cg, &r);
}

/* out [.., Y, X, d] from in [.., X, Y, d] */
void emit_swap_heads(Kernel *k) {
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
void emit_posenc(Kernel *k) {
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
