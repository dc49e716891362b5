/* module.c: graph IR -> LLVM IR, through the LLVM C API.
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
 *     and NAME_scratch_size(...), declared by the generated header; with
 *     --prefix P they are PNAME_model, PNAME and PNAME_scratch_size.  They
 *     are the only global definitions: everything else is private.
 *   With CodegenOptions.variant (one CPU of --cpu A,B,...: cpus.c) only the
 *   kernels, the body and the scratch-size function, the last two as hidden
 *   globals with the variant's tag; with .dispatch no kernels, and a body
 *   and scratch-size function that call the variant's that the runtime's
 *   attnrt_cpu_pick chose on the first call.
 * Loops are plain scalar loops over symbolic dims, written so that the
 * loop vectorizer widens the innermost one to the target's vectors.
 *
 * This file: codegen(), and what makes a model of the kernels:
 * emit_kernel (each op's kernel, built by a kernel file, in a function of
 * the runtime's kernel signature), rows_of, the scratch plan, the body
 * with its run-time checks (views, gather ids), the descriptor and the
 * entry points.  cg.h lists the other files of compiler/codegen/; this
 * one uses builder.c and the entry points of every kernel file
 * (elementwise.c, reduce.c, data.c, gemm.c, recurrent.c, attention.c). */
#include <llvm-c/Analysis.h>
#include <stdio.h>
#include <string.h>

#include "cg.h"
#include "codegen.h"

/* ---- kernels ----------------------------------------------------------- */
/* cg->dimv: the model's dims, from the dims argument of the function being
 * built */
static void load_dims(CG *cg, LLVMValueRef dims) {
  for (int s = 0; s < cg->g->model->nsyms; s++) {
    LLVMValueRef idx = i64c(cg, s);
    LLVMValueRef p = LLVMBuildInBoundsGEP2(cg->B, cg->i64, dims, &idx, 1, "");
    cg->dimv[s] = LLVMBuildLoad2(cg->B, cg->i64, p, cg->g->model->syms[s]);
  }
}

/* Rows of each op: the unit the thread pool splits, and the rows'
 * count as a function of the dims (emitted in the body). */
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
  case OP_LAST_STEP: return dims_prod(cg, t, 0, t->rank - 1);   /* one per sequence */
  case OP_ATTENTION: {
    /* one row per tile of queries */
    LLVMValueRef T = dim(cg, t->dims[t->rank - 2]);
    int qt = att_fast(cg, n) ? att_qt(cg) : ATT_QTILE_ROWS;
    LLVMValueRef tiles = div64(cg, add64(cg, T, i64c(cg, qt - 1)), i64c(cg, qt));
    LLVMValueRef rows = mul64(cg, dims_prod(cg, t, 0, t->rank - 2), tiles);
    if (att_fast(cg, n)) {
      /* emit_attention_any: few queries take the plain or decode kernel's
       * tiles, the decode kernel's of att_decode_heads heads each */
      LLVMValueRef small = div64(cg, add64(cg, T, i64c(cg, ATT_QTILE_ROWS - 1)), i64c(cg, ATT_QTILE_ROWS));
      int hr = att_decode_ok(cg, n) ? att_decode_heads(cg, n) : 1;
      small = mul64(cg, dims_prod(cg, t, 0, t->rank - 2 - (hr > 1)), small);
      rows = LLVMBuildSelect(cg->B, LLVMBuildICmp(cg->B, LLVMIntSLT, T, i64c(cg, ATT_SMALL_T), ""), small, rows, "");
    }
    return rows;
  }
  default: internal_error("no rows for %s", op_info[n->op].text);
  }
}

static LLVMValueRef emit_kernel_wrapper(CG *cg, int id, LLVMValueRef inner, LLVMTypeRef inner_ty);

/* ---- kernels shared by identical nodes -------------------------------------- */
/* A kernel body reads its node (op, type, attributes, the fused program),
 * its operands' ops, types and constant values, the symbolic dims, and
 * nothing else of the graph (the buffers are its parameters): two nodes
 * with the same signature get the same code.  The six layers of a block
 * array (examples/encoder_stack.attn) then compile each kernel once. */
static const char *type_sig(const Type *t) {
  char *s = arena_printf("%d[", (int)t->dtype);
  for (int i = 0; i < t->rank; i++)
    s = t->dims[i].sym >= 0 ? arena_printf("%ss%d,", s, t->dims[i].sym) : arena_printf("%s%lld,", s, (long long)t->dims[i].size);
  return arena_printf("%s]", s);
}

static const char *kernel_sig(const CG *cg, const Node *n) {
  char *s = arena_printf("%d %s a%d t%d c%d s%d st%lld f%a n%d", (int)n->op, type_sig(&n->type), n->axis, n->tb, n->causal,
                         n->safe, (long long)n->start, n->fval, n->nin);
  for (int k = 0; k < n->nin; k++) {
    const Node *a = &cg->g->nodes[n->in[k]];
    s = arena_printf("%s |%d %s%s", s, (int)a->op, type_sig(&a->type), a->bf16 ? " bf16" : "");
    if (a->op == OP_CONST) s = arena_printf("%s=%a", s, a->fval);
  }
  for (int i = 0; i < n->nprog; i++)
    s = arena_printf("%s p%d,%d,%d,%a", s, (int)n->prog[i].op, n->prog[i].a, n->prog[i].b, n->prog[i].fval);
  if (n->filled) s = arena_printf("%s fill%a", s, n->fill);
  if (n->causal_lr) s = arena_printf("%s lr", s);
  if (n->heads_inner) s = arena_printf("%s hi%d", s, n->heads_inner);
  if (cg->append_tail) s = arena_printf("%s tail", s);
  if (n->bf16) s = arena_printf("%s bf16", s);
  return s;
}

/* The kernel of node id: a wrapper with the runtime's kernel signature
 * that loads the buffers and calls a body whose buffer parameters are
 * noalias (the memory plan guarantees it), so the vectorizer needs no
 * run-time alias checks.  The body is always-inline while one node uses
 * it; a second node with the same signature shares it, and it becomes a
 * function of its own (noinline), compiled once. */
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
  const char *sig = kernel_sig(cg, n);
  LLVMValueRef inner = NULL;
  for (int i = 0; i < cg->kernel_sigs.len && !inner; i++)
    if (strcmp(cg->kernel_sigs.items[i], sig) == 0) inner = cg->kernel_fns.items[i];
  if (inner) {
    unsigned always = LLVMGetEnumAttributeKindForName("alwaysinline", 12);
    if (LLVMGetEnumAttributeAtIndex(inner, LLVMAttributeFunctionIndex, always)) {
      LLVMRemoveEnumAttributeAtIndex(inner, LLVMAttributeFunctionIndex, always);
      add_attr(cg, inner, (int)LLVMAttributeFunctionIndex, "noinline");
    }
    return emit_kernel_wrapper(cg, id, inner, inner_ty);
  }
  inner = new_fn(cg, arena_printf("attnc.%s.%d.%s%s.impl", mname, id, op_info[n->op].text, cg->append_tail ? ".tail" : ""),
                 inner_ty, true);
  vec_push(&cg->kernel_sigs, (void *)sig);
  vec_push(&cg->kernel_fns, inner);
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
    case OP_LAST_STEP: emit_last_step(&K); break;
    case OP_ATTENTION: if (att_fast(cg, n)) emit_attention_any(&K); else emit_attention(&K); break;
    default: internal_error("no kernel for %s", op_info[n->op].text);
    }
  LLVMBuildRetVoid(cg->B);
  return emit_kernel_wrapper(cg, id, inner, inner_ty);
}

/* The runtime's kernel signature for node id: loads its buffers from the
 * body's array and calls inner. */
static LLVMValueRef emit_kernel_wrapper(CG *cg, int id, LLVMValueRef inner, LLVMTypeRef inner_ty) {
  const Node *n = &cg->g->nodes[id];
  const char *mname = cg->g->model->name;
  LLVMTypeRef kp[4] = {cg->ptr, cg->ptr, cg->i64, cg->i64};
  LLVMValueRef wrap = new_fn(cg, arena_printf("attnc.%s.%d.%s%s", mname, id, op_info[n->op].text,
                                              cg->append_tail ? ".tail" : ""),
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
  const Node *a = &cg->g->nodes[n->in[0]];
  Dim d0 = a->type.dims[0];
  if (n->slice && d0.sym >= 0) {
    /* rows [start, start + len) of the operand's first dim D0 */
    LLVMValueRef D0 = dim(cg, d0);
    LLVMValueRef start = n->start >= 0 ? i64c(cg, n->start) : add64(cg, D0, i64c(cg, n->start));
    LLVMValueRef end = add64(cg, start, dim(cg, n->type.dims[0]));
    LLVMValueRef bad = LLVMBuildOr(cg->B, LLVMBuildICmp(cg->B, LLVMIntSLT, start, i64c(cg, 0), ""),
                                   LLVMBuildICmp(cg->B, LLVMIntSGT, end, D0, ""), "");
    const char *msg = arena_printf("the slice at %d:%d is out of range for %s, whose first dim %s is %%lld "
                                   "(slices are not clamped)", n->loc.line, n->loc.col, value_name(cg, a),
                                   dim_str(cg->g->model, d0));
    emit_fail_if(cg, fn, bad, ctx, 7 /* ATTNRT_E_RANGE */, msg, D0);
    if (n->start == 0) return base;
    LLVMValueRef row = dims_prod(cg, &a->type, 1, a->type.rank);
    LLVMValueRef off = mul64(cg, mul64(cg, start, row), i64c(cg, n->bf16 ? 2 : 4));
    return LLVMBuildInBoundsGEP2(cg->B, cg->i8, base, &off, 1, "");
  }
  if (n->start == 0) return base;
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
  /* a view of a bf16 param (pass_weights_bf16) counts 2-byte elements */
  LLVMValueRef off = mul64(cg, mul64(cg, start, row), i64c(cg, n->bf16 ? 2 : 4));
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
  /* "input 'ids': ids[1, 3] = 50 is out of range [0, 50) for emb.weight":
   * attnrt_fail_at puts the position of element i at %@ */
  const char *elem = a->op == OP_INPUT ? cg->g->model->inputs[a->index]->name : a->name ? a->name : "id";
  const char *msg = arena_printf("%s: %s%%@ = %%lld is out of range [0, %lld) for %s", value_name(cg, a), elem,
                                 (long long)rows, layer);
  LLVMBasicBlockRef fail = LLVMAppendBasicBlockInContext(cg->C, fn, "fail");
  LLVMBasicBlockRef ok = LLVMAppendBasicBlockInContext(cg->C, fn, "ok");
  LLVMBuildCondBr(cg->B, bad, fail, ok);
  LLVMPositionBuilderAtEnd(cg->B, fail);
  int rank = a->type.rank;
  LLVMValueRef shape = LLVMBuildArrayAlloca(cg->B, cg->i64, i64c(cg, rank > 0 ? rank : 1), "shape");
  for (int d = 0; d < rank; d++) {
    LLVMValueRef k = i64c(cg, d);
    LLVMBuildStore(cg->B, dim(cg, a->type.dims[d]), LLVMBuildInBoundsGEP2(cg->B, cg->i64, shape, &k, 1, ""));
  }
  LLVMTypeRef fty = LLVMFunctionType(cg->i32, (LLVMTypeRef[]){cg->ptr, cg->i32, cg->ptr, cg->i64, cg->i64, cg->i32, cg->ptr},
                                     7, 0);
  LLVMValueRef f = LLVMGetNamedFunction(cg->M, "attnrt_fail_at");
  if (!f) f = LLVMAddFunction(cg->M, "attnrt_fail_at", fty);
  LLVMValueRef args[7] = {ctx, LLVMConstInt(cg->i32, 7 /* ATTNRT_E_RANGE */, 0), cstring(cg, msg), id, i,
                          LLVMConstInt(cg->i32, (unsigned long long)rank, 0), shape};
  LLVMBuildRet(cg->B, LLVMBuildCall2(cg->B, fty, f, args, 7, ""));
  LLVMPositionBuilderAtEnd(cg->B, ok);
  loop_end(cg, &l);
}

/* Where each prepared node (a param's pack, ir_is_prepared) lives in the
 * context's prepared buffer: 64-byte aligned offsets; returns the total.
 * Params have fixed shapes, so these are constants. */
static int64_t prepared_offsets(const Graph *g, int64_t *off) {
  int64_t total = 0;
  for (int i = 0; i < g->n; i++) {
    off[i] = -1;
    if (!ir_is_prepared(g, &g->nodes[i])) continue;
    off[i] = total;
    total += (ir_numel_known(g->nodes[i].type) * (g->nodes[i].bf16 ? 2 : 4) + 63) / 64 * 64;
  }
  return total;
}

static LLVMValueRef parallel_for_fn(CG *cg, LLVMTypeRef *ty) {
  LLVMTypeRef pf_params[6] = {cg->ptr, cg->ptr, cg->ptr, cg->ptr, cg->i64, cg->i64};
  *ty = LLVMFunctionType(cg->voidt, pf_params, 6, 0);
  LLVMValueRef pf = LLVMGetNamedFunction(cg->M, "attnrt_parallel_for");
  return pf ? pf : LLVMAddFunction(cg->M, "attnrt_parallel_for", *ty);
}

/* int32_t prepare(ctx, params, prepared): lays the params out for the
 * kernels that read them (the GEMMs' packed panels) into prepared, once
 * per binding (the runtime calls it before the first call after a bind),
 * so that no call packs a weight.  NULL if the model has nothing to
 * prepare. */
static LLVMValueRef emit_prepare(CG *cg, LLVMValueRef *kernels) {
  const Graph *g = cg->g;
  int64_t *off = NEW_ARRAY(int64_t, g->n + 1);
  if (prepared_offsets(g, off) == 0) return NULL;
  LLVMTypeRef pt[3] = {cg->ptr, cg->ptr, cg->ptr};
  LLVMValueRef fn = new_fn(cg, arena_printf("attnc.%s.prepare", g->model->name), LLVMFunctionType(cg->i32, pt, 3, 0), true);
  LLVMValueRef ctx = LLVMGetParam(fn, 0), params = LLVMGetParam(fn, 1), prepared = LLVMGetParam(fn, 2);
  /* the kernels' dims argument: unused, as every shape here is fixed */
  LLVMValueRef dims = LLVMBuildArrayAlloca(cg->B, cg->i64, i64c(cg, g->model->nsyms + 1), "dims");
  for (int s = 0; s <= g->model->nsyms; s++) {
    LLVMValueRef idx = i64c(cg, s);
    LLVMBuildStore(cg->B, i64c(cg, 1), LLVMBuildInBoundsGEP2(cg->B, cg->i64, dims, &idx, 1, ""));
  }
  load_dims(cg, dims);
  LLVMValueRef bufs = LLVMBuildArrayAlloca(cg->B, cg->ptr, i64c(cg, g->n > 0 ? g->n : 1), "bufs");
  LLVMValueRef *ptrs = NEW_ARRAY(LLVMValueRef, g->n + 1);
  for (int i = 0; i < g->n; i++) {
    const Node *n = &g->nodes[i];
    LLVMValueRef p = NULL;
    if (n->dead) continue;
    if (n->op == OP_PARAM) p = load_ptr_at(cg, params, n->index);
    else if (n->op == OP_VIEW && ptrs[n->in[0]]) p = emit_view_ptr(cg, n, ptrs[n->in[0]], ctx, fn);
    else if (off[i] >= 0) p = LLVMBuildInBoundsGEP2(cg->B, cg->i8, prepared, (LLVMValueRef[]){i64c(cg, off[i])}, 1, "");
    if (!p) continue;
    ptrs[i] = p;
    LLVMValueRef idx = i64c(cg, i);
    LLVMBuildStore(cg->B, p, LLVMBuildInBoundsGEP2(cg->B, cg->ptr, bufs, &idx, 1, ""));
  }
  LLVMTypeRef pf_ty;
  LLVMValueRef pf = parallel_for_fn(cg, &pf_ty);
  for (int i = 0; i < g->n; i++) {
    if (off[i] < 0) continue;
    LLVMValueRef args[6] = {ctx, kernels[i], bufs, dims, rows_of(cg, &g->nodes[i]), i64c(cg, 1)};
    LLVMBuildCall2(cg->B, pf_ty, pf, args, 6, "");
  }
  LLVMBuildRet(cg->B, LLVMConstInt(cg->i32, 0, 0));
  return fn;
}

/* int64_t prepared_size(dims): the prepared buffer's bytes (dims unused) */
static LLVMValueRef emit_prepared_size(CG *cg) {
  int64_t *off = NEW_ARRAY(int64_t, cg->g->n + 1);
  int64_t total = prepared_offsets(cg->g, off);
  if (total == 0) return NULL;
  LLVMValueRef fn = new_fn(cg, arena_printf("attnc.%s.prepared_size", cg->g->model->name),
                           LLVMFunctionType(cg->i64, &cg->ptr, 1, 0), true);
  LLVMBuildRet(cg->B, i64c(cg, total));
  return fn;
}

/* The layer stride, in elements, of a stacked input or of an output that
 * stacks its layers (memplan_stack.c): the capacity the caller set for the
 * input (attnrt_capacity, 0 when none) or else the dense one of type t. */
static LLVMValueRef layer_stride(CG *cg, LLVMValueRef ctx, int input, const Type *t) {
  LLVMTypeRef ty = LLVMFunctionType(cg->i64, (LLVMTypeRef[]){cg->ptr, cg->i64}, 2, 0);
  LLVMValueRef f = LLVMGetNamedFunction(cg->M, "attnrt_capacity");
  if (!f) f = LLVMAddFunction(cg->M, "attnrt_capacity", ty);
  LLVMValueRef cap = LLVMBuildCall2(cg->B, ty, f, (LLVMValueRef[]){ctx, i64c(cg, input)}, 2, "capacity");
  LLVMValueRef rows = LLVMBuildSelect(cg->B, LLVMBuildICmp(cg->B, LLVMIntSGT, cap, i64c(cg, 0), ""), cap,
                                      dim(cg, t->dims[1]), "");
  return mul64(cg, rows, dims_prod(cg, t, 2, t->rank));
}

/* ptr + layer * stride floats */
static LLVMValueRef layer_ptr(CG *cg, LLVMValueRef base, int64_t layer, LLVMValueRef stride) {
  if (layer == 0) return base;
  LLVMValueRef off = mul64(cg, mul64(cg, i64c(cg, layer), stride), i64c(cg, 4));
  return LLVMBuildInBoundsGEP2(cg->B, cg->i8, base, &off, 1, "");
}

static LLVMValueRef emit_body(CG *cg, LLVMValueRef *kernels, LLVMValueRef *tails) {
  const Graph *g = cg->g;
  LLVMTypeRef pt[7] = {cg->ptr, cg->ptr, cg->ptr, cg->ptr, cg->ptr, cg->ptr, cg->ptr};
  LLVMValueRef fn = new_fn(cg, arena_printf("attnc.%s.body", g->model->name), LLVMFunctionType(cg->i32, pt, 7, 0), true);
  LLVMValueRef ctx = LLVMGetParam(fn, 0), params = LLVMGetParam(fn, 1), inputs = LLVMGetParam(fn, 2);
  LLVMValueRef outputs = LLVMGetParam(fn, 3), dims = LLVMGetParam(fn, 4), scratch = LLVMGetParam(fn, 5);
  LLVMValueRef prepared = LLVMGetParam(fn, 6);
  int64_t *poff = NEW_ARRAY(int64_t, g->n + 1);
  prepared_offsets(g, poff);
  load_dims(cg, dims);
  LLVMValueRef *offs = NEW_ARRAY(LLVMValueRef, g->nslots + 1);
  slot_offsets(cg, offs, NULL);
  LLVMValueRef bufs = LLVMBuildArrayAlloca(cg->B, cg->ptr, i64c(cg, g->n > 0 ? g->n : 1), "bufs");
  LLVMValueRef *ptrs = NEW_ARRAY(LLVMValueRef, g->n + 1);
  /* stacked caches: the layer strides of the inputs and of the outputs */
  LLVMValueRef *stride = NEW_ARRAY(LLVMValueRef, g->n + 1);
  LLVMValueRef *out_stride = NEW_ARRAY(LLVMValueRef, g->noutputs + 1);
  for (int i = 0; i < g->n; i++) {
    const Node *n = &g->nodes[i];
    if (n->dead || !ir_is_stacked_append(g, n) || out_stride[n->stack_out]) continue;
    const Node *x = &g->nodes[g->nodes[n->in[0]].in[0]];
    out_stride[n->stack_out] = layer_stride(cg, ctx, x->index, &g->nodes[g->outputs[n->stack_out]].type);
  }
  for (int i = 0; i < g->n; i++) {
    const Node *n = &g->nodes[i];
    if (n->dead || n->op == OP_CONST) continue;
    LLVMValueRef p;
    if (n->op == OP_INPUT) {
      p = load_ptr_at(cg, inputs, n->index);
      if (n->stacked) stride[i] = layer_stride(cg, ctx, n->index, &n->type);
    } else if (n->op == OP_PARAM) p = load_ptr_at(cg, params, n->index);
    else if (n->op == OP_VIEW && stride[n->in[0]]) p = layer_ptr(cg, ptrs[n->in[0]], n->start, stride[n->in[0]]);
    else if (n->op == OP_VIEW) p = emit_view_ptr(cg, n, ptrs[n->in[0]], ctx, fn);
    else if (n->stack_out >= 0)
      p = layer_ptr(cg, load_ptr_at(cg, outputs, n->stack_out), n->stack_part, out_stride[n->stack_out]);
    else if (n->elided && n->output < 0) p = ptrs[n->in[0]];   /* a stack's inner concat: read by no kernel */
    else if (poff[i] >= 0) p = LLVMBuildInBoundsGEP2(cg->B, cg->i8, prepared, (LLVMValueRef[]){i64c(cg, poff[i])}, 1, "");
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
  LLVMTypeRef pf_ty;
  LLVMValueRef pf = parallel_for_fn(cg, &pf_ty);
  for (int i = 0; i < g->n; i++) {
    const Node *n = &g->nodes[i];
    if (n->dead || (op_info[n->op].traits & T_LEAF) || n->op == OP_VIEW || poff[i] >= 0 || n->elided) continue;
    LLVMValueRef rows = rows_of(cg, n);
    /* a few hundred microseconds of work per task at the least */
    LLVMValueRef grain = i64c(cg, 1);
    LLVMValueRef kernel = kernels[i];
    if (tails[i]) {
      /* the caller passed the input's buffer as the output: only the new rows */
      LLVMValueRef same = LLVMBuildICmp(cg->B, LLVMIntEQ, ptrs[i], ptrs[n->in[0]], "");
      kernel = LLVMBuildSelect(cg->B, same, tails[i], kernels[i], "");
    }
    LLVMValueRef args[6] = {ctx, kernel, bufs, dims, rows, grain};
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

/* dtype codes of attnrt_dtype: ATTNRT_F32, ATTNRT_I32, ATTNRT_BF16 (a
 * param pass_weights_bf16 stores in bf16) */
static int64_t desc_dtype(CG *cg, const char *what, int i, const Type *t) {
  if (!strcmp(what, "params") && ir_param_bf16(cg->g, i)) return 2;
  return t->dtype == DT_F32 ? 0 : 1;
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
    LLVMValueRef f[4] = {const_str(cg, names[i]), i64c(cg, desc_dtype(cg, what, i, &types[i])), i64c(cg, types[i].rank),
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
    size_t bytes = (size_t)ir_numel_known(m->params[i].type) * (ir_param_bf16(cg->g, i) ? 2 : 4);
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

/* n_outputs int64 entries, or NULL when every one is -1 */
static LLVMValueRef output_table(CG *cg, const char *what, const int64_t *v) {
  const Model *m = cg->g->model;
  bool any = false;
  for (int o = 0; o < m->noutputs; o++) any |= v[o] >= 0;
  if (!any) return LLVMConstPointerNull(cg->ptr);
  LLVMValueRef *c = NEW_ARRAY(LLVMValueRef, m->noutputs);
  for (int o = 0; o < m->noutputs; o++) c[o] = i64c(cg, v[o]);
  LLVMValueRef init = LLVMConstArray2(cg->i64, c, (uint64_t)m->noutputs);
  LLVMValueRef gv = LLVMAddGlobal(cg->M, LLVMTypeOf(init), arena_printf("attnc.%s.%s", m->name, what));
  LLVMSetInitializer(gv, init);
  LLVMSetGlobalConstant(gv, 1);
  LLVMSetLinkage(gv, LLVMPrivateLinkage);
  return gv;
}

static LLVMValueRef emit_desc(CG *cg, LLVMValueRef body, LLVMValueRef scratch, LLVMValueRef prepare,
                              LLVMValueRef prepared_size) {
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
  LLVMValueRef sums = LLVMConstPointerNull(cg->ptr);
  bool any_sum = false;
  for (int i = 0; i < m->nsyms; i++) any_sum |= m->sums && m->sums[i];
  if (any_sum) {
    /* attnrt_dim_sum: n_terms, k, sym[8], coef[8] */
    LLVMValueRef *defs = NEW_ARRAY(LLVMValueRef, m->nsyms);
    for (int i = 0; i < m->nsyms; i++) {
      const SymSum *f = m->sums[i];
      LLVMValueRef v[2 + 2 * MAX_SUM_TERMS];
      v[0] = i64c(cg, f ? f->n : 0);
      v[1] = i64c(cg, f ? f->k : 0);
      for (int t = 0; t < MAX_SUM_TERMS; t++) {
        v[2 + t] = i64c(cg, f && t < f->n ? f->sym[t] : 0);
        v[2 + MAX_SUM_TERMS + t] = i64c(cg, f && t < f->n ? f->coef[t] : 0);
      }
      defs[i] = LLVMConstArray2(cg->i64, v, 2 + 2 * MAX_SUM_TERMS);
    }
    LLVMValueRef init = LLVMConstArray2(LLVMTypeOf(defs[0]), defs, (uint64_t)m->nsyms);
    sums = LLVMAddGlobal(cg->M, LLVMTypeOf(init), arena_printf("attnc.%s.dim_sums", m->name));
    LLVMSetInitializer(sums, init);
    LLVMSetGlobalConstant(sums, 1);
    LLVMSetLinkage(sums, LLVMPrivateLinkage);
  }
  /* per output: the input it may be appended to in place, unbatched
   * (appends) or stacked over a layer array (stacks), or -1 */
  int64_t *ap = NEW_ARRAY(int64_t, m->noutputs + 1), *st = NEW_ARRAY(int64_t, m->noutputs + 1);
  for (int o = 0; o < m->noutputs; o++) {
    const Node *n = &cg->g->nodes[cg->g->outputs[o]];
    ap[o] = ir_is_append(cg->g, n) ? cg->g->nodes[n->in[0]].index : -1;
    st[o] = -1;
  }
  for (int i = 0; i < cg->g->n; i++) {
    const Node *n = &cg->g->nodes[i];
    if (ir_is_stacked_append(cg->g, n)) st[n->stack_out] = cg->g->nodes[cg->g->nodes[n->in[0]].in[0]].index;
  }
  LLVMValueRef appends = output_table(cg, "appends", ap), stacks = output_table(cg, "stacks", st);
  LLVMValueRef f[19] = {
      i64c(cg, ATTNRT_ABI_VERSION_CG), const_str(cg, m->name),
      i64c(cg, m->nparams), i64c(cg, m->ninputs), i64c(cg, m->noutputs), i64c(cg, m->nsyms),
      tensor_descs(cg, "params", m->nparams, pn, pt),
      tensor_descs(cg, "inputs", m->ninputs, in, it),
      tensor_descs(cg, "outputs", m->noutputs, on, ot),
      dn, body, scratch, emit_embedded(cg), i64c(cg, cg->threads == 0 ? -1 : cg->threads), sums,
      prepare ? prepare : LLVMConstPointerNull(cg->ptr), prepared_size ? prepared_size : LLVMConstPointerNull(cg->ptr),
      appends, stacks};
  LLVMValueRef init = LLVMConstStructInContext(cg->C, f, 19, 0);
  LLVMValueRef gv = LLVMAddGlobal(cg->M, LLVMTypeOf(init), arena_printf("%s%s_model", cg->prefix, m->name));
  LLVMSetInitializer(gv, init);
  LLVMSetGlobalConstant(gv, 1);
  LLVMSetAlignment(gv, 8);
  return gv;
}

/* attnrt_status NAME(attnrt_ctx *ctx, inputs..., outputs..., dims...) */
static void emit_entry(CG *cg, LLVMValueRef desc) {
  const Model *m = cg->g->model;
  int nbase = 0;
  for (int i = 0; i < m->nsyms; i++) nbase += !is_sum_dim(m, i);
  int np = 1 + m->ninputs + m->noutputs + nbase;
  LLVMTypeRef *pt = NEW_ARRAY(LLVMTypeRef, np);
  int k = 0;
  pt[k++] = cg->ptr;
  for (int i = 0; i < m->ninputs + m->noutputs; i++) pt[k++] = cg->ptr;
  for (int i = 0; i < nbase; i++) pt[k++] = cg->i64;
  LLVMValueRef fn = new_fn(cg, arena_printf("%s%s", cg->prefix, m->name), LLVMFunctionType(cg->i32, pt, (unsigned)np, 0), false);
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
  LLVMValueRef msg = cstring(cg, arena_printf("%s%s: the context was made for another model", cg->prefix, m->name));
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
  /* the base dims from the arguments; the runtime computes the sums */
  for (int i = 0, a = 0; i < m->nsyms; i++) {
    LLVMValueRef idx = i64c(cg, i);
    LLVMValueRef v = is_sum_dim(m, i) ? i64c(cg, 0) : LLVMGetParam(fn, (unsigned)(1 + na + a++));
    LLVMBuildStore(cg->B, v, LLVMBuildInBoundsGEP2(cg->B, cg->i64, dims, &idx, 1, ""));
  }
  LLVMBuildRet(cg->B, LLVMBuildCall2(cg->B, run_ty, run_fn, (LLVMValueRef[]){ctx, in, out, dims}, 4, ""));
}

/* int64_t NAME_scratch_size(dims...) */
/* The runtime's attnrt_scratch_size checks the dims (each in [1, 2^31), -1
 * otherwise) before it calls the model's size function: the typed entry
 * goes through it, so that both give the same answer for any dims. */
static void emit_scratch_entry(CG *cg, LLVMValueRef desc) {
  const Model *m = cg->g->model;
  int nbase = 0;
  for (int i = 0; i < m->nsyms; i++) nbase += !is_sum_dim(m, i);
  LLVMTypeRef *pt = NEW_ARRAY(LLVMTypeRef, nbase + 1);
  for (int i = 0; i < nbase; i++) pt[i] = cg->i64;
  LLVMValueRef fn = new_fn(cg, arena_printf("%s%s_scratch_size", cg->prefix, m->name), LLVMFunctionType(cg->i64, pt, (unsigned)nbase, 0), false);
  LLVMValueRef dims = LLVMBuildArrayAlloca(cg->B, cg->i64, i64c(cg, m->nsyms + 1), "dims");
  for (int i = 0, a = 0; i < m->nsyms; i++) {
    LLVMValueRef idx = i64c(cg, i);
    LLVMValueRef v = is_sum_dim(m, i) ? i64c(cg, 0) : LLVMGetParam(fn, (unsigned)a++);
    LLVMBuildStore(cg->B, v, LLVMBuildInBoundsGEP2(cg->B, cg->i64, dims, &idx, 1, ""));
  }
  LLVMTypeRef ty = LLVMFunctionType(cg->i64, (LLVMTypeRef[]){cg->ptr, cg->ptr}, 2, 0);
  LLVMValueRef rt = LLVMGetNamedFunction(cg->M, "attnrt_scratch_size");
  if (!rt) rt = LLVMAddFunction(cg->M, "attnrt_scratch_size", ty);
  LLVMBuildRet(cg->B, LLVMBuildCall2(cg->B, ty, rt, (LLVMValueRef[]){desc, dims}, 2, ""));
}

/* ---- several CPUs (--cpu A,B,...) ------------------------------------------- */
/* i32 attnc.cpu(): the variant this object runs, asked of the runtime on
 * the first call and kept in attnc.cpu.choice.  Two threads that make the
 * first call at once both ask and get the same answer, so a relaxed
 * atomic load and store suffice. */
static LLVMValueRef emit_cpu_choice(CG *cg, const CpuDispatch *d) {
  LLVMValueRef fn = LLVMGetNamedFunction(cg->M, "attnc.cpu");
  if (fn) return fn;
  LLVMValueRef choice = LLVMAddGlobal(cg->M, cg->i32, "attnc.cpu.choice");
  LLVMSetInitializer(choice, LLVMConstInt(cg->i32, (unsigned long long)-1, 1));
  LLVMSetLinkage(choice, LLVMInternalLinkage);
  LLVMSetAlignment(choice, 4);
  LLVMValueRef *names = NEW_ARRAY(LLVMValueRef, d->n), *feats = NEW_ARRAY(LLVMValueRef, d->n);
  for (int i = 0; i < d->n; i++) names[i] = const_str(cg, d->names[i]), feats[i] = const_str(cg, d->features[i]);
  LLVMValueRef tables[2];
  for (int k = 0; k < 2; k++) {
    LLVMValueRef init = LLVMConstArray2(cg->ptr, k ? feats : names, (uint64_t)d->n);
    tables[k] = LLVMAddGlobal(cg->M, LLVMTypeOf(init), k ? "attnc.cpu.features" : "attnc.cpu.names");
    LLVMSetInitializer(tables[k], init);
    LLVMSetGlobalConstant(tables[k], 1);
    LLVMSetLinkage(tables[k], LLVMPrivateLinkage);
  }
  fn = new_fn(cg, "attnc.cpu", LLVMFunctionType(cg->i32, NULL, 0, 0), true);
  LLVMBasicBlockRef ask = LLVMAppendBasicBlockInContext(cg->C, fn, "ask");
  LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(cg->C, fn, "done");
  LLVMValueRef c = LLVMBuildLoad2(cg->B, cg->i32, choice, "choice");
  LLVMSetOrdering(c, LLVMAtomicOrderingMonotonic);
  LLVMSetAlignment(c, 4);
  LLVMBuildCondBr(cg->B, LLVMBuildICmp(cg->B, LLVMIntSLT, c, LLVMConstInt(cg->i32, 0, 0), ""), ask, done);
  LLVMPositionBuilderAtEnd(cg->B, ask);
  LLVMTypeRef pick_ty = LLVMFunctionType(cg->i32, (LLVMTypeRef[]){cg->ptr, cg->ptr, cg->i32}, 3, 0);
  LLVMValueRef pick = LLVMGetNamedFunction(cg->M, "attnrt_cpu_pick");
  if (!pick) pick = LLVMAddFunction(cg->M, "attnrt_cpu_pick", pick_ty);
  LLVMValueRef args[3] = {tables[0], tables[1], LLVMConstInt(cg->i32, (unsigned long long)d->n, 0)};
  LLVMValueRef got = LLVMBuildCall2(cg->B, pick_ty, pick, args, 3, "");
  LLVMValueRef st = LLVMBuildStore(cg->B, got, choice);
  LLVMSetOrdering(st, LLVMAtomicOrderingMonotonic);
  LLVMSetAlignment(st, 4);
  LLVMBuildRet(cg->B, got);
  LLVMPositionBuilderAtEnd(cg->B, done);
  LLVMBuildRet(cg->B, c);
  return fn;
}

/* The model's `what` (body or scratch_size) of type ty: calls the chosen
 * variant's with the same arguments; an answer out of range runs the
 * baseline, the last. */
static LLVMValueRef emit_dispatch(CG *cg, const CpuDispatch *d, const char *what, LLVMTypeRef ty) {
  const char *m = cg->g->model->name;
  LLVMValueRef which = emit_cpu_choice(cg, d);
  LLVMValueRef fn = new_fn(cg, arena_printf("attnc.%s.%s", m, what), ty, true);
  unsigned np = LLVMCountParamTypes(ty);
  LLVMValueRef *args = NEW_ARRAY(LLVMValueRef, np + 1);
  for (unsigned i = 0; i < np; i++) args[i] = LLVMGetParam(fn, i);
  LLVMValueRef c = LLVMBuildCall2(cg->B, LLVMFunctionType(cg->i32, NULL, 0, 0), which, NULL, 0, "cpu");
  LLVMBasicBlockRef *bb = NEW_ARRAY(LLVMBasicBlockRef, d->n);
  for (int i = 0; i < d->n; i++) bb[i] = LLVMAppendBasicBlockInContext(cg->C, fn, d->tags[i]);
  LLVMValueRef sw = LLVMBuildSwitch(cg->B, c, bb[d->n - 1], (unsigned)(d->n - 1));
  for (int i = 0; i < d->n - 1; i++) LLVMAddCase(sw, LLVMConstInt(cg->i32, (unsigned long long)i, 0), bb[i]);
  for (int i = 0; i < d->n; i++) {
    LLVMPositionBuilderAtEnd(cg->B, bb[i]);
    const char *name = arena_printf("attnc.%s.%s.%s", m, what, d->tags[i]);
    LLVMValueRef callee = LLVMGetNamedFunction(cg->M, name);
    if (!callee) {
      callee = LLVMAddFunction(cg->M, name, ty);
      LLVMSetVisibility(callee, LLVMHiddenVisibility);
    }
    LLVMValueRef r = LLVMBuildCall2(cg->B, ty, callee, args, np, "");
    LLVMSetTailCall(r, 1);
    LLVMBuildRet(cg->B, r);
  }
  return fn;
}

/* A variant's body or scratch-size function, reached from the dispatch
 * module's object (joined with this one's by cpus.c, which makes the
 * symbol local again). */
static void export_variant(LLVMValueRef fn, const char *tag) {
  size_t len;
  const char *name = LLVMGetValueName2(fn, &len);
  const char *tagged = arena_printf("%s.%s", name, tag);
  LLVMSetValueName2(fn, tagged, strlen(tagged));
  LLVMSetLinkage(fn, LLVMExternalLinkage);
  LLVMSetVisibility(fn, LLVMHiddenVisibility);
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
  cg.prefix = opt->prefix ? opt->prefix : "";
  cg.vl = opt->lanes >= 4 ? opt->lanes : 4;
  cg.vf = LLVMVectorType(cg.f32, (unsigned)cg.vl);
  cg.dpbf16 = opt->bf16_dot && cg.vl == 16;
  for (int gi = 0; gi < ngraphs; gi++) {
    cg.g = graphs[gi];
    cg.embedded = opt->embedded ? opt->embedded[gi] : NULL;
    cg.kernel_sigs = (Vec){0};   /* kernels are shared within a model (its dims) */
    cg.kernel_fns = (Vec){0};
    LLVMValueRef scratch, body, prepare = NULL, prepared_size = NULL;
    if (opt->dispatch) {
      LLVMTypeRef pt[7] = {cg.ptr, cg.ptr, cg.ptr, cg.ptr, cg.ptr, cg.ptr, cg.ptr};
      scratch = emit_dispatch(&cg, opt->dispatch, "scratch_size", LLVMFunctionType(cg.i64, &cg.ptr, 1, 0));
      body = emit_dispatch(&cg, opt->dispatch, "body", LLVMFunctionType(cg.i32, pt, 7, 0));
      /* every CPU's code prepares the same nodes, each in its own layout */
      int64_t *off = NEW_ARRAY(int64_t, cg.g->n + 1);
      if (prepared_offsets(cg.g, off) > 0) {
        prepare = emit_dispatch(&cg, opt->dispatch, "prepare", LLVMFunctionType(cg.i32, pt, 3, 0));
        prepared_size = emit_dispatch(&cg, opt->dispatch, "prepared_size", LLVMFunctionType(cg.i64, &cg.ptr, 1, 0));
      }
    } else {
      LLVMValueRef *kernels = NEW_ARRAY(LLVMValueRef, cg.g->n + 1);
      for (int i = 0; i < cg.g->n; i++) {
        const Node *n = &cg.g->nodes[i];
        if (!n->dead && !(op_info[n->op].traits & T_LEAF) && n->op != OP_VIEW && !n->elided)
          kernels[i] = emit_kernel(&cg, i);
      }
      LLVMValueRef *tails = NEW_ARRAY(LLVMValueRef, cg.g->n + 1);
      for (int i = 0; i < cg.g->n; i++)
        if (ir_is_append(cg.g, &cg.g->nodes[i]) || ir_is_stacked_append(cg.g, &cg.g->nodes[i])) {
          cg.append_tail = true;
          tails[i] = emit_kernel(&cg, i);
          cg.append_tail = false;
        }
      scratch = emit_scratch_size(&cg);
      body = emit_body(&cg, kernels, tails);
      prepare = emit_prepare(&cg, kernels);
      prepared_size = emit_prepared_size(&cg);
    }
    if (opt->variant) {
      export_variant(scratch, opt->variant);
      export_variant(body, opt->variant);
      if (prepare) export_variant(prepare, opt->variant);
      if (prepared_size) export_variant(prepared_size, opt->variant);
      continue;
    }
    LLVMValueRef desc = emit_desc(&cg, body, scratch, prepare, prepared_size);
    emit_entry(&cg, desc);
    emit_scratch_entry(&cg, desc);
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
