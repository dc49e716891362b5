/* gemm.c: the matmul kernels: the register-blocked GEMM over a packed B
 * (one shared function per module) and plain loops for the other
 * matmuls; the kernels that lay operands out for it, pack and transpose
 * (one shared function per module each); and shared_begin/shared_end,
 * which build those shared functions in the middle of a kernel.
 *
 * Needs: builder.c; elementwise.c's emit_epilogue, for the elementwise ops
 * fused after a matmul (the one call between kernel families). */
#include <llvm-c/DebugInfo.h>
#include <string.h>

#include "cg.h"

static void transpose_regs(CG *cg, LLVMValueRef *r);   /* vl x vl, in registers (pack section) */
/* see gemm_shared; GEMM_NC: panels per column block (8 beat 16, 32 and
 * none by 0-5% on bench/'s shapes); GEMM_PF_DIST: k rows of B prefetched
 * ahead */
enum { GEMM_KC = 256, GEMM_NC = 8, GEMM_PF_DIST = 8 };   /* GEMM_TASK_TILES: cg.h */

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

/* the shared function's name: attnc.KIND[.bf16|.bf16p].vN (bf16p: the
 * k-pair panels, see pairs_of) */
static const char *shared_name(CG *cg, const char *kind, bool bf) {
  return arena_printf("attnc.%s%s.v%d", kind, bf ? (cg->dpbf16 ? ".bf16p" : ".bf16") : "", cg->vl >= 16 ? 16 : cg->vl >= 8 ? 8 : 4);
}

/* ---- k-pair panels (AVX-512 BF16) ------------------------------------------
 * With cg->dpbf16, a full bf16 panel of K rows of NR columns holds its rows
 * in pairs: pair row q (rows 2q and 2q + 1) at q * 2NR, whose 32-bit lane j
 * is (W[2q, j], W[2q+1, j]), the low half the even row: the operand of
 * vdpbf16ps.  With K odd the last row follows as a plain row of NR, so a
 * panel keeps its K x NR size.  Partial panels (N mod NR columns) keep
 * plain rows. */
static bool pairs_of(CG *cg, bool bf) { return bf && cg->dpbf16; }

/* the index, in bf16 elements from the panel's start, of (k, j) in the
 * k-pair layout of a panel of K rows (K2: K rounded down to even) */
static LLVMValueRef pair_idx(CG *cg, LLVMValueRef K2, LLVMValueRef k, LLVMValueRef j) {
  int NR = 2 * cg->vl;
  LLVMValueRef paired = add64(cg, add64(cg, mul64(cg, LLVMBuildLShr(cg->B, k, i64c(cg, 1), ""), i64c(cg, 2 * NR)), mul64(cg, j, i64c(cg, 2))),
                              LLVMBuildAnd(cg->B, k, i64c(cg, 1), ""));
  return LLVMBuildSelect(cg->B, LLVMBuildICmp(cg->B, LLVMIntSLT, k, K2, ""), paired, add64(cg, mul64(cg, k, i64c(cg, NR)), j), "");
}
static LLVMValueRef even_of(CG *cg, LLVMValueRef K) { return LLVMBuildAnd(cg->B, K, i64c(cg, ~(int64_t)1), ""); }

/* <vl x i32> of pair lanes at element idx of a bf16 buffer */
static LLVMValueRef pair_load(CG *cg, LLVMValueRef base, LLVMValueRef idx) {
  LLVMValueRef v = LLVMBuildLoad2(cg->B, LLVMVectorType(cg->i32, (unsigned)cg->vl), welem_ptr(cg, true, base, idx), "");
  LLVMSetAlignment(v, 2);
  return v;
}
/* the even (low halves) and odd rows of pair lanes, in f32 */
static LLVMValueRef pair_even(CG *cg, LLVMValueRef v) {
  return LLVMBuildBitCast(cg->B, LLVMBuildShl(cg->B, v, vsplat(cg, cg_i32(cg, 16)), ""), cg->vf, "");
}
static LLVMValueRef pair_odd(CG *cg, LLVMValueRef v) {
  return LLVMBuildBitCast(cg->B, LLVMBuildAnd(cg->B, v, vsplat(cg, cg_i32(cg, (int32_t)0xFFFF0000u)), ""), cg->vf, "");
}
/* the pair lanes of two f32 rows holding bf16 values (exact: the low
 * halves of their bits are zero) */
static LLVMValueRef pair_make(CG *cg, LLVMValueRef even, LLVMValueRef odd) {
  LLVMTypeRef vi = LLVMVectorType(cg->i32, (unsigned)cg->vl);
  LLVMValueRef e = LLVMBuildLShr(cg->B, LLVMBuildBitCast(cg->B, even, vi, ""), vsplat(cg, cg_i32(cg, 16)), "");
  return LLVMBuildOr(cg->B, e, LLVMBuildBitCast(cg->B, odd, vi, ""), "");
}
static void pair_store(CG *cg, LLVMValueRef v, LLVMValueRef base, LLVMValueRef idx) {
  LLVMValueRef st = LLVMBuildStore(cg->B, v, welem_ptr(cg, true, base, idx));
  LLVMSetAlignment(st, 2);
}

/* does this matmul's packed B hold bf16? */
static bool b_is_bf16(CG *cg, const Node *n) { return cg->g->nodes[n->in[1]].bf16; }

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
int gemm_mr(CG *cg) { return cg->vl >= 16 ? 12 : 6; }

bool gemm_fast(CG *cg, const Node *n) {
  /* pass_pack_gemm gives exactly these matmuls a packed B */
  return cg->g->nodes[n->in[1]].op == OP_PACK;
}

typedef struct GemmTile {
  Kernel *k;
  int mr;
  bool bf;                                      /* B's panels hold bf16 */
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
  LLVMValueRef init[MAX_CARRIED], next[MAX_CARRIED];
  for (int i = 0; i < mr * 2; i++) init[i] = vfc(cg, 0.0);
  LLVMValueRef *acc = init, kstart = i64c(cg, 0);
  int esz = t->bf ? 2 : 4;
  CLoop pl;
  if (pairs_of(cg, t->bf)) {
    /* k-pair panels: two k per step, the even rows the pair lanes shifted
     * left by 16, the odd ones with their low halves cleared; the odd last
     * row of an odd block is a plain row, for the loop below */
    LLVMValueRef q = cloop_begin(cg, &pl, i64c(cg, 0), LLVMBuildLShr(cg->B, t->kc, i64c(cg, 1), ""), init, mr * 2);
    LLVMValueRef row = mul64(cg, q, i64c(cg, 2 * NR));
    for (int l = 0; l < 2 * NR * esz; l += 64)
      prefetch(cg, welem_ptr(cg, true, t->bp, add64(cg, row, i64c(cg, GEMM_PF_DIST * NR + l / esz))), 0);
    LLVMValueRef v0 = pair_load(cg, t->bp, row), v1 = pair_load(cg, t->bp, add64(cg, row, i64c(cg, NR)));
    LLVMValueRef bv[2][2] = {{pair_even(cg, v0), pair_even(cg, v1)}, {pair_odd(cg, v0), pair_odd(cg, v1)}};
    for (int i = 0; i < mr * 2; i++) next[i] = pl.v[i];
    for (int h = 0; h < 2; h++) {
      LLVMValueRef arow = add64(cg, t->ap0, mul64(cg, add64(cg, mul64(cg, q, i64c(cg, 2)), i64c(cg, h)), i64c(cg, mr)));
      for (int r = 0; r < mr; r++) {
        LLVMValueRef a = vsplat(cg, load_f(cg, t->ap, add64(cg, arow, i64c(cg, r))));
        for (int v = 0; v < 2; v++) next[r * 2 + v] = vfma(cg, a, bv[h][v], next[r * 2 + v]);
      }
    }
    cloop_end(cg, &pl, next);
    acc = pl.v;
    kstart = even_of(cg, t->kc);
  }
  CLoop kl;
  LLVMValueRef kk = cloop_begin(cg, &kl, kstart, t->kc, acc, mr * 2);
  /* B's block streams from L2: fetch the rows GEMM_PF_DIST k ahead (a
   * prefetch past the block's end is harmless) */
  for (int l = 0; l < NR * esz; l += 64)
    prefetch(cg, welem_ptr(cg, t->bf, t->bp, add64(cg, mul64(cg, kk, i64c(cg, NR)), i64c(cg, GEMM_PF_DIST * NR + l / esz))), 0);
  LLVMValueRef b0 = vload_w(cg, t->bf, t->bp, mul64(cg, kk, i64c(cg, NR)));
  LLVMValueRef b1 = vload_w(cg, t->bf, t->bp, add64(cg, mul64(cg, kk, i64c(cg, NR)), i64c(cg, vl)));
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
static LLVMValueRef gemm_shared(CG *cg, bool bf) {
  const char *name = shared_name(cg, "gemm", bf);
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
  GemmTile gt = {.k = k, .mr = MR, .bf = bf, .K = K, .N = N};
  gt.bstack = entry_alloca(cg, LLVMArrayType2(cg->f32, (uint64_t)(GEMM_KC * NR)), "bpanel");
  gt.ap = entry_alloca(cg, LLVMArrayType2(cg->f32, (uint64_t)(GEMM_KC * TR)), "ablock");
  gt.ct = entry_alloca(cg, LLVMArrayType2(cg->f32, (uint64_t)(MR * NR)), "ctile");
  LLVMSetAlignment(gt.ap, 64);
  LLVMSetAlignment(gt.bstack, 64);
  LLVMSetAlignment(gt.ct, 64);
  Loop jp, kb, it;
  LLVMValueRef ntiles = div64(cg, add64(cg, LLVMBuildNSWSub(cg->B, i1, i0, ""), i64c(cg, MR - 1)), i64c(cg, MR));
  /* K = 0 (an empty symbolic dim) still takes one k block, of no rows: C
   * is then written as zeros, with its epilogue */
  LLVMValueRef nkb = div64(cg, add64(cg, K, i64c(cg, GEMM_KC - 1)), i64c(cg, GEMM_KC));
  nkb = LLVMBuildSelect(cg->B, LLVMBuildICmp(cg->B, LLVMIntSGT, nkb, i64c(cg, 0), ""), nkb, i64c(cg, 1), "");
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
    LLVMValueRef val = LLVMBuildSelect(cg->B, in, load_w(cg, bf, k->in[1], add64(cg, src, jc)), cg_f32(cg, 0.0), "");
    /* in the layout of a full panel's block of kc rows (k0 is even) */
    store_w(cg, bf, val, gt.bstack, pairs_of(cg, bf) ? pair_idx(cg, even_of(cg, gt.kc), kk, j) : add64(cg, mul64(cg, kk, i64c(cg, NR)), j));
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
  LLVMValueRef direct = welem_ptr(cg, bf, k->in[1], add64(cg, add64(cg, b_off, mul64(cg, gt.j0, K)), mul64(cg, gt.k0, i64c(cg, NR))));
  gt.bp = LLVMBuildSelect(cg->B, fullw, direct, gt.bstack, "");
  gemm_tile(&gt);
  loop_end(cg, &jp);
  loop_end(cg, &it);
  loop_end(cg, &nb);
  loop_end(cg, &kb);
  shared_end(cg, &sf);
  return fn;
}

/* ---- GEMV: one row of A against the packed B ------------------------------
 * c[0, N) = a[0, K) B for B packed in panels of NR = 2 vectors of columns
 * (K rows each; the last, partial one rows of N mod NR).  A decoding step
 * (T = 1) reads each weight once and does 2 FMAs per 2 vector loads, so it
 * runs at the speed memory streams the panels; the GEMM's tile computes 6
 * rows of which one would be real.  Four accumulators per vector break the
 * FMA chain over k. */
/* c[0, N) for the nfull full k-pair panels (cg->dpbf16) with vdpbf16ps:
 * a rounded to bf16 (to nearest even), a pair (a[2q], a[2q+1]) per 32-bit
 * lane broadcast against a pair row of the panel, whose products add in
 * f32.  The pairs of a are made once per chunk of GEMV_CH in a stack
 * buffer, each panel then runs over the chunk (C adds up the chunks). */
enum { GEMV_CH = 1024 };
/* the bf16 of f32 x to nearest even, in an i32's low half: the bits u of x
 * plus 0x7fff and u's bit 16, shifted right by 16; a NaN keeps a quiet
 * NaN's bit so that it cannot round to infinity */
static LLVMValueRef bf16_bits(CG *cg, LLVMValueRef x) {
  LLVMValueRef u = LLVMBuildBitCast(cg->B, x, cg->i32, "");
  LLVMValueRef hi = LLVMBuildLShr(cg->B, u, cg_i32(cg, 16), "");
  LLVMValueRef lsb = LLVMBuildAnd(cg->B, hi, cg_i32(cg, 1), "");
  LLVMValueRef r = LLVMBuildLShr(cg->B, LLVMBuildAdd(cg->B, u, LLVMBuildAdd(cg->B, lsb, cg_i32(cg, 0x7fff), ""), ""), cg_i32(cg, 16), "");
  LLVMValueRef nan = LLVMBuildICmp(cg->B, LLVMIntUGT, LLVMBuildAnd(cg->B, u, cg_i32(cg, 0x7fffffff), ""), cg_i32(cg, 0x7f800000), "");
  return LLVMBuildSelect(cg->B, nan, LLVMBuildOr(cg->B, hi, cg_i32(cg, 0x40), ""), r, "");
}
static void gemv_pairs(CG *cg, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c, LLVMValueRef K, LLVMValueRef nfull) {
  int vl = cg->vl, NR = 2 * vl;
  enum { U = 4 };
  LLVMTypeRef vi = LLVMVectorType(cg->i32, (unsigned)vl), vb = LLVMVectorType(LLVMBFloatTypeInContext(cg->C), (unsigned)(2 * vl));
  LLVMValueRef xp = entry_alloca(cg, LLVMArrayType2(cg->i32, GEMV_CH), "apairs");
  LLVMSetAlignment(xp, 64);
  LLVMValueRef Kp = LLVMBuildLShr(cg->B, K, i64c(cg, 1), ""), K2 = even_of(cg, K);
  /* K < 2 still takes one chunk, of no pairs: C is then written (zeros) */
  LLVMValueRef nch = div64(cg, add64(cg, Kp, i64c(cg, GEMV_CH - 1)), i64c(cg, GEMV_CH));
  nch = LLVMBuildSelect(cg->B, LLVMBuildICmp(cg->B, LLVMIntSGT, nch, i64c(cg, 0), ""), nch, i64c(cg, 1), "");
  Loop chl, pl;
  LLVMValueRef ci = loop_begin(cg, &chl, i64c(cg, 0), nch);
  LLVMValueRef q0 = mul64(cg, ci, i64c(cg, GEMV_CH));
  LLVMValueRef n = LLVMBuildNSWSub(cg->B, Kp, q0, "");
  n = LLVMBuildSelect(cg->B, LLVMBuildICmp(cg->B, LLVMIntSLT, n, i64c(cg, GEMV_CH), ""), n, i64c(cg, GEMV_CH), "");
  LLVMValueRef first = LLVMBuildICmp(cg->B, LLVMIntEQ, ci, i64c(cg, 0), "");
  {
    Loop ql;
    LLVMValueRef q = loop_begin(cg, &ql, i64c(cg, 0), n);
    LLVMValueRef pair = NULL;
    for (int h = 0; h < 2; h++) {
      LLVMValueRef r = bf16_bits(cg, load_f(cg, a, add64(cg, mul64(cg, add64(cg, q0, q), i64c(cg, 2)), i64c(cg, h))));
      pair = h ? LLVMBuildOr(cg->B, pair, LLVMBuildShl(cg->B, r, cg_i32(cg, 16), ""), "") : r;
    }
    LLVMBuildStore(cg->B, pair, LLVMBuildInBoundsGEP2(cg->B, cg->i32, xp, &q, 1, ""));
    loop_end(cg, &ql);
  }
  LLVMTypeRef dty[3] = {cg->vf, vb, vb};
  LLVMTypeRef dp_ty = LLVMFunctionType(cg->vf, dty, 3, 0);
  LLVMValueRef dp = LLVMGetNamedFunction(cg->M, "llvm.x86.avx512bf16.dpbf16ps.512");
  if (!dp) dp = LLVMAddFunction(cg->M, "llvm.x86.avx512bf16.dpbf16ps.512", dp_ty);
  LLVMValueRef p = loop_begin(cg, &pl, i64c(cg, 0), nfull);
  /* this chunk's pair rows of panel p */
  LLVMValueRef bp = add64(cg, mul64(cg, p, mul64(cg, K, i64c(cg, NR))), mul64(cg, q0, i64c(cg, 2 * NR)));
  LLVMValueRef init[2 * U], next[2 * U], acc[2];
  for (int i = 0; i < 2 * U; i++) init[i] = vfc(cg, 0.0);
  for (int pass = 0; pass < 2; pass++) {
    /* pass 0: U pairs per step, U x 2 accumulators; pass 1: the last n mod U pairs */
    int u_n = pass ? 1 : U;
    CLoop kl;
    LLVMValueRef nu = div64(cg, n, i64c(cg, U));
    LLVMValueRef st = cloop_begin(cg, &kl, pass ? mul64(cg, nu, i64c(cg, U)) : i64c(cg, 0), pass ? n : nu, pass ? acc : init,
                                  pass ? 2 : 2 * U);
    for (int u = 0; u < u_n; u++) {
      LLVMValueRef q = pass ? st : add64(cg, mul64(cg, st, i64c(cg, U)), i64c(cg, u));
      LLVMValueRef xv = LLVMBuildLoad2(cg->B, cg->i32, LLVMBuildInBoundsGEP2(cg->B, cg->i32, xp, &q, 1, ""), "");
      LLVMValueRef xs = LLVMBuildInsertElement(cg->B, LLVMGetUndef(vi), xv, cg_i32(cg, 0), "");
      xs = LLVMBuildShuffleVector(cg->B, xs, LLVMGetUndef(vi), LLVMConstNull(vi), "");
      xs = LLVMBuildBitCast(cg->B, xs, vb, "");
      LLVMValueRef row = add64(cg, bp, mul64(cg, q, i64c(cg, 2 * NR)));
      for (int v = 0; v < 2; v++) {
        LLVMValueRef w = LLVMBuildBitCast(cg->B, pair_load(cg, b, add64(cg, row, i64c(cg, v * NR))), vb, "");
        LLVMValueRef args[3] = {kl.v[u * 2 + v], xs, w};
        next[u * 2 + v] = LLVMBuildCall2(cg->B, dp_ty, dp, args, 3, "");
      }
    }
    cloop_end(cg, &kl, next);
    if (!pass)
      for (int v = 0; v < 2; v++) acc[v] = cg_fadd(cg, cg_fadd(cg, kl.v[v], kl.v[2 + v]), cg_fadd(cg, kl.v[4 + v], kl.v[6 + v]));
    else
      for (int v = 0; v < 2; v++) acc[v] = kl.v[v];
  }
  for (int v = 0; v < 2; v++) {
    LLVMValueRef ci_ = add64(cg, mul64(cg, p, i64c(cg, NR)), i64c(cg, v * vl));
    LLVMValueRef old = vload(cg, c, ci_);
    vstore(cg, LLVMBuildSelect(cg->B, first, acc[v], LLVMBuildFAdd(cg->B, acc[v], old, ""), ""), c, ci_);
  }
  loop_end(cg, &pl);
  loop_end(cg, &chl);
  /* an odd K's last row, plain: its a rounded the same way, in f32 */
  {
    LLVMBasicBlockRef odd = LLVMAppendBasicBlockInContext(cg->C, cg->fn, "gemv.odd");
    LLVMBasicBlockRef go = LLVMAppendBasicBlockInContext(cg->C, cg->fn, "gemv.odd.done");
    LLVMBuildCondBr(cg->B, LLVMBuildICmp(cg->B, LLVMIntSLT, K2, K, ""), odd, go);
    LLVMPositionBuilderAtEnd(cg->B, odd);
    LLVMValueRef av = LLVMBuildShl(cg->B, bf16_bits(cg, load_f(cg, a, K2)), cg_i32(cg, 16), "");
    av = vsplat(cg, LLVMBuildBitCast(cg->B, av, cg->f32, ""));
    Loop ol;
    LLVMValueRef p2 = loop_begin(cg, &ol, i64c(cg, 0), nfull);
    LLVMValueRef row = add64(cg, mul64(cg, p2, mul64(cg, K, i64c(cg, NR))), mul64(cg, K2, i64c(cg, NR)));
    for (int v = 0; v < 2; v++) {
      LLVMValueRef ci_ = add64(cg, mul64(cg, p2, i64c(cg, NR)), i64c(cg, v * vl));
      vstore(cg, vfma(cg, av, vload_w(cg, true, b, add64(cg, row, i64c(cg, v * vl))), vload(cg, c, ci_)), c, ci_);
    }
    loop_end(cg, &ol);
    LLVMBuildBr(cg->B, go);
    LLVMPositionBuilderAtEnd(cg->B, go);
  }
}

static LLVMValueRef gemv_shared(CG *cg, bool bf) {
  const char *name = shared_name(cg, "gemv", bf);
  LLVMValueRef fn = LLVMGetNamedFunction(cg->M, name);
  if (fn) return fn;
  SharedFn sf = shared_begin(cg);
  LLVMTypeRef params[5] = {cg->ptr, cg->ptr, cg->ptr, cg->i64, cg->i64};
  fn = new_fn(cg, name, LLVMFunctionType(cg->voidt, params, 5, 0), true);
  add_attr(cg, fn, (int)LLVMAttributeFunctionIndex, "noinline");
  for (int i = 1; i <= 3; i++) add_attr(cg, fn, i, "noalias");
  LLVMValueRef a = LLVMGetParam(fn, 0), b = LLVMGetParam(fn, 1), c = LLVMGetParam(fn, 2);
  LLVMValueRef K = LLVMGetParam(fn, 3), N = LLVMGetParam(fn, 4);
  int vl = cg->vl, NR = 2 * vl;
  enum { U = 4 };
  LLVMValueRef nfull = div64(cg, N, i64c(cg, NR));
  if (pairs_of(cg, bf)) {
    gemv_pairs(cg, a, b, c, K, nfull);
    goto partial;
  }
  LLVMValueRef k4 = div64(cg, K, i64c(cg, U));
  Loop pl;
  LLVMValueRef p = loop_begin(cg, &pl, i64c(cg, 0), nfull);
  LLVMValueRef bp = mul64(cg, p, mul64(cg, K, i64c(cg, NR)));
  LLVMValueRef init[2 * U];
  for (int i = 0; i < 2 * U; i++) init[i] = vfc(cg, 0.0);
  CLoop kl;
  LLVMValueRef kq = cloop_begin(cg, &kl, i64c(cg, 0), k4, init, 2 * U);
  LLVMValueRef next[2 * U];
  for (int u = 0; u < U; u++) {
    LLVMValueRef kk = add64(cg, mul64(cg, kq, i64c(cg, U)), i64c(cg, u));
    LLVMValueRef av = vsplat(cg, load_f(cg, a, kk));
    LLVMValueRef row = add64(cg, bp, mul64(cg, kk, i64c(cg, NR)));
    for (int v = 0; v < 2; v++)
      next[u * 2 + v] = vfma(cg, av, vload_w(cg, bf, b, add64(cg, row, i64c(cg, v * vl))), kl.v[u * 2 + v]);
  }
  cloop_end(cg, &kl, next);
  LLVMValueRef acc[2];
  for (int v = 0; v < 2; v++) acc[v] = cg_fadd(cg, cg_fadd(cg, kl.v[v], kl.v[2 + v]), cg_fadd(cg, kl.v[4 + v], kl.v[6 + v]));
  CLoop rl;   /* the last K mod 4 rows */
  LLVMValueRef kr = cloop_begin(cg, &rl, mul64(cg, k4, i64c(cg, U)), K, acc, 2);
  LLVMValueRef av = vsplat(cg, load_f(cg, a, kr));
  LLVMValueRef row = add64(cg, bp, mul64(cg, kr, i64c(cg, NR)));
  for (int v = 0; v < 2; v++) next[v] = vfma(cg, av, vload_w(cg, bf, b, add64(cg, row, i64c(cg, v * vl))), rl.v[v]);
  cloop_end(cg, &rl, next);
  for (int v = 0; v < 2; v++) vstore(cg, rl.v[v], c, add64(cg, mul64(cg, p, i64c(cg, NR)), i64c(cg, v * vl)));
  loop_end(cg, &pl);
partial:;
  /* the partial panel: w = N mod NR columns, rows of w */
  LLVMValueRef j0 = mul64(cg, nfull, i64c(cg, NR)), w = LLVMBuildNSWSub(cg->B, N, j0, "");
  LLVMValueRef base = mul64(cg, j0, K);
  Loop jl;
  LLVMValueRef j = loop_begin(cg, &jl, i64c(cg, 0), w);
  LLVMValueRef zero = cg_f32(cg, 0.0);
  CLoop sl;
  LLVMValueRef kk = cloop_begin(cg, &sl, i64c(cg, 0), K, &zero, 1);
  LLVMValueRef s = cg_fadd(cg, sl.v[0], cg_fmul(cg, load_f(cg, a, kk), load_w(cg, bf, b, add64(cg, base, add64(cg, mul64(cg, kk, w), j)))));
  cloop_end(cg, &sl, &s);
  store_f(cg, sl.v[0], c, add64(cg, j0, j));
  loop_end(cg, &jl);
  shared_end(cg, &sf);
  return fn;
}

void emit_gemm(Kernel *k) {
  CG *cg = k->cg;
  const Node *n = k->n;
  const Type *t = &n->type, *ta = &cg->g->nodes[n->in[0]].type, *tb = &cg->g->nodes[n->in[1]].type;
  int TR = gemm_mr(cg) * GEMM_TASK_TILES;
  LLVMValueRef M = dim(cg, ta->dims[ta->rank - 2]);
  LLVMValueRef K = dim(cg, ta->dims[ta->rank - 1]);
  LLVMValueRef N = dim(cg, tb->dims[tb->rank - 1]);
  int nb = t->rank - 2;
  bool bf = b_is_bf16(cg, n);
  LLVMValueRef gemm = gemm_shared(cg, bf);
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
  LLVMValueRef args[8] = {elem_ptr(cg, k->in[0], a_off), welem_ptr(cg, bf, k->in[1], b_off), elem_ptr(cg, k->out, c_off),
                          M, K, N, i0, i1};
  /* a single row (a decoding step): the GEMV */
  LLVMValueRef gemv = gemv_shared(cg, bf);
  LLVMBasicBlockRef one = LLVMAppendBasicBlockInContext(cg->C, cg->fn, "gemv");
  LLVMBasicBlockRef many = LLVMAppendBasicBlockInContext(cg->C, cg->fn, "gemm");
  LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(cg->C, cg->fn, "product");
  LLVMBuildCondBr(cg->B, LLVMBuildICmp(cg->B, LLVMIntEQ, M, i64c(cg, 1), ""), one, many);
  LLVMPositionBuilderAtEnd(cg->B, one);
  LLVMTypeRef vparams[5] = {cg->ptr, cg->ptr, cg->ptr, cg->i64, cg->i64};
  LLVMValueRef vargs[5] = {args[0], args[1], args[2], K, N};
  LLVMBuildCall2(cg->B, LLVMFunctionType(cg->voidt, vparams, 5, 0), gemv, vargs, 5, "");
  LLVMBuildBr(cg->B, done);
  LLVMPositionBuilderAtEnd(cg->B, many);
  LLVMBuildCall2(cg->B, LLVMFunctionType(cg->voidt, params, 8, 0), gemm, args, 8, "");
  LLVMBuildBr(cg->B, done);
  LLVMPositionBuilderAtEnd(cg->B, done);
  if (n->prog) {
    Loop el;
    LLVMValueRef i = loop_begin(cg, &el, i0, i1);
    emit_epilogue(k, add64(cg, mul64(cg, bidx, M), i), add64(cg, c_off, mul64(cg, i, N)), N);
    loop_end(cg, &el);
  }
  loop_end(cg, &r);
}

void emit_matmul(Kernel *k) {
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
static LLVMValueRef transpose_shared(CG *cg, bool bf) {
  /* bf: a bf16 W_hh laid out for a recurrence (pass_weights_bf16) */
  const char *name = bf ? "attnc.transpose.bf16" : "attnc.transpose";
  LLVMValueRef fn = LLVMGetNamedFunction(cg->M, name);
  if (fn) return fn;
  SharedFn sf = shared_begin(cg);
  LLVMTypeRef params[6] = {cg->ptr, cg->ptr, cg->i64, cg->i64, cg->i64, cg->i64};
  fn = new_fn(cg, name, LLVMFunctionType(cg->voidt, params, 6, 0), true);
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
  store_w(cg, bf, load_w(cg, bf, in, add64(cg, in_base, mul64(cg, j, C))), out, add64(cg, mul64(cg, row, R), j));
  loop_end(cg, &jl);
  loop_end(cg, &r);
  shared_end(cg, &sf);
  return fn;
}

void emit_transpose(Kernel *k) {
  CG *cg = k->cg;
  const Type *t = &k->n->type;
  LLVMValueRef fn = transpose_shared(cg, k->n->bf16);
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

static LLVMValueRef pack_shared(CG *cg, bool bf) {
  const char *name = shared_name(cg, "pack", bf);
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
    LLVMValueRef k2 = i64c(cg, 0);
    if (pairs_of(cg, bf)) {
      /* two rows into one of pairs */
      Loop ql;
      k2 = even_of(cg, K);
      LLVMValueRef q = loop_begin(cg, &ql, i64c(cg, 0), LLVMBuildLShr(cg->B, K, i64c(cg, 1), ""));
      LLVMValueRef s0 = add64(cg, add64(cg, base, mul64(cg, mul64(cg, q, i64c(cg, 2)), N)), j0);
      for (int v = 0; v < 2; v++) {
        LLVMValueRef e = vload_w(cg, bf, src, add64(cg, s0, i64c(cg, v * vl)));
        LLVMValueRef o = vload_w(cg, bf, src, add64(cg, add64(cg, s0, N), i64c(cg, v * vl)));
        pair_store(cg, pair_make(cg, e, o), dst, add64(cg, add64(cg, dbase, mul64(cg, q, i64c(cg, 2 * NR))), i64c(cg, v * NR)));
      }
      loop_end_nounroll(cg, &ql);
    }
    LLVMValueRef kk = loop_begin(cg, &kl, k2, K);
    LLVMValueRef s0 = add64(cg, add64(cg, base, mul64(cg, kk, N)), j0);
    LLVMValueRef d0 = add64(cg, dbase, mul64(cg, kk, i64c(cg, NR)));
    for (int v = 0; v < 2; v++)
      vstore_w(cg, bf, vload_w(cg, bf, src, add64(cg, s0, i64c(cg, v * vl))), dst, add64(cg, d0, i64c(cg, v * vl)));
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
      rows[i] = vload_w(cg, bf, src, add64(cg, add64(cg, base, mul64(cg, add64(cg, j0, add64(cg, hv, i64c(cg, i))), K)), k0));
    transpose_regs(cg, rows);
    if (pairs_of(cg, bf))   /* rows k0 + c and k0 + c + 1 make pair row (k0 + c) / 2 */
      for (int c = 0; c < vl; c += 2)
        pair_store(cg, pair_make(cg, rows[c], rows[c + 1]), dst,
                   add64(cg, add64(cg, dbase, mul64(cg, add64(cg, k0, i64c(cg, c)), i64c(cg, NR))), mul64(cg, hv, i64c(cg, 2))));
    else
      for (int c = 0; c < vl; c++)
        vstore_w(cg, bf, rows[c], dst, add64(cg, add64(cg, dbase, mul64(cg, add64(cg, k0, i64c(cg, c)), i64c(cg, NR))), hv));
    loop_end_nounroll(cg, &hl);
    loop_end_nounroll(cg, &kb);
    LLVMValueRef kk = loop_begin(cg, &kl, mul64(cg, nkb, i64c(cg, vl)), K);
    LLVMValueRef j = loop_begin(cg, &jl, i64c(cg, 0), i64c(cg, NR));
    store_w(cg, bf, load_w(cg, bf, src, add64(cg, add64(cg, base, mul64(cg, add64(cg, j0, j), K)), kk)), dst,
            add64(cg, dbase, pairs_of(cg, bf) ? pair_idx(cg, even_of(cg, K), kk, j) : add64(cg, mul64(cg, kk, i64c(cg, NR)), j)));
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
    store_w(cg, bf, load_w(cg, bf, src, s), dst, add64(cg, add64(cg, dbase, mul64(cg, kk, w)), j));
    loop_end_scalar(cg, &jl);
    loop_end(cg, &kl);
    LLVMBuildBr(cg->B, done);
  }
  LLVMPositionBuilderAtEnd(cg->B, done);
  loop_end(cg, &r);
  shared_end(cg, &sf);
  return fn;
}

void emit_pack(Kernel *k) {
  CG *cg = k->cg;
  const Type *t = &k->n->type;
  LLVMValueRef fn = pack_shared(cg, k->n->bf16);
  LLVMTypeRef params[7] = {cg->ptr, cg->ptr, cg->i64, cg->i64, cg->i64, cg->i64, cg->i64};
  LLVMValueRef args[7] = {k->in[0], k->out, dim(cg, t->dims[t->rank - 2]), dim(cg, t->dims[t->rank - 1]),
                          i64c(cg, k->n->tb), k->begin, k->end};
  LLVMBuildCall2(cg->B, LLVMFunctionType(cg->voidt, params, 7, 0), fn, args, 7, "");
}
