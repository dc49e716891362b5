/* attention_decode.c: fused attention for a few queries over many keys
 * (a decoding step: T = 1 after a cache of P keys), keys in vector lanes.
 *
 * The plain kernel (attention.c) computes each score as a dot product
 * reduced across the lanes, then one exp and one pass over the value row
 * per key: 30 ns a key and head with the cache in L2, so one query over a
 * long cache ran at 0.6x the memory's speed.  Here a group of vl keys is
 * the unit:
 *   - scores: for each key of the group a vector of partial products,
 *     q[d..d+vl) * k_j[d..d+vl) summed over the head dim (vl independent
 *     FMA chains), then the vl vectors fold into one vector of vl scores
 *     by a transpose-add tree (vl - 1 adds, 2 shuffles each: no reduction
 *     per key);
 *   - masks, the causal limit and the key count: vertical, per group;
 *   - online softmax: one max across the lanes per group, a rescale of
 *     the accumulator only when it moves (a branch, rare after the first
 *     groups), one vector exp for the vl keys, the sum l kept as a vector;
 *   - values: out += p_j v_j, p_j broadcast from its lane, over blocks of
 *     the value dims in two sets of register accumulators.
 * A row is a tile of ATT_QTILE_ROWS queries (as emit_attention's) of one
 * head, or of every head when K and V are read in place (att_decode_heads);
 * the tile's queries take turns over blocks of DEC_BLOCK keys, so that the
 * block comes from memory once.  The head dims must be constants and
 * multiples of vl (att_decode_ok); others take the plain kernel.  The
 * scores' rounding differs from the plain kernel's (q is scaled first,
 * the sums are in another order); tests/golden/attention_decode.
 *
 * Needs: builder.c, math.c (exp_nonpos), attention.c's operand helpers. */
#include "cg.h"

bool att_decode_ok(CG *cg, const Node *n) {
  const Type *tq = &cg->g->nodes[n->in[0]].type;
  return att_fast(cg, n) && tq->dims[tq->rank - 1].size % cg->vl == 0;
}

static LLVMValueRef shuffle(CG *cg, LLVMValueRef a, LLVMValueRef b, const int *mask) {
  LLVMValueRef m[64];
  for (int i = 0; i < cg->vl; i++) m[i] = cg_i32(cg, mask[i]);
  return LLVMBuildShuffleVector(cg->B, a, b, LLVMConstVector(m, (unsigned)cg->vl), "");
}

/* lane `lane` of x in every lane */
static LLVMValueRef lane_splat(CG *cg, LLVMValueRef x, int lane) {
  int m[64];
  for (int i = 0; i < cg->vl; i++) m[i] = lane;
  return shuffle(cg, x, LLVMGetUndef(cg->vf), m);
}

/* max (or sum) of x's lanes, in every lane */
static LLVMValueRef across(CG *cg, LLVMValueRef x, bool sum) {
  for (int h = cg->vl / 2; h >= 1; h /= 2) {
    int m[64];
    for (int i = 0; i < cg->vl; i++) m[i] = i ^ h;
    LLVMValueRef y = shuffle(cg, x, LLVMGetUndef(cg->vf), m);
    x = sum ? cg_fadd(cg, x, y) : vmax(cg, x, y);
  }
  return x;
}

/* vl vectors in, one out whose lane i is the sum of the lanes of v[r(i)],
 * r the bit reversal of the lane index: each level pairs the vectors and
 * folds each half of every block of 2h lanes onto the other, a's into the
 * block's lower h lanes, b's into its upper ones. */
static LLVMValueRef transpose_add(CG *cg, LLVMValueRef *v) {
  int vl = cg->vl, n = vl;
  for (int h = vl / 2; h >= 1; h /= 2, n /= 2) {
    int m1[64], m2[64];
    for (int lane = 0; lane < vl; lane++) {
      int b = lane / (2 * h) * 2 * h, x = lane % (2 * h);
      int src = x < h ? b + x : vl + b + x - h;
      m1[lane] = src;
      m2[lane] = src + h;
    }
    for (int i = 0; i < n / 2; i++)
      v[i] = cg_fadd(cg, shuffle(cg, v[2 * i], v[2 * i + 1], m1), shuffle(cg, v[2 * i], v[2 * i + 1], m2));
  }
  return v[0];
}

static int bitrev(int i, int vl) {
  int r = 0;
  for (int b = 1; b < vl; b <<= 1, i >>= 1) r = r << 1 | (i & 1);
  return r;
}

/* Heads per row: with K and V read in place from [.., S, H, d] (a cache
 * of merged heads), one row takes every head of its tile, so that a group
 * of keys is H * d contiguous floats per key, read once for all heads:
 * one head per row read d floats of every H * d, and one thread streamed
 * that at 0.75x the bandwidth of a contiguous read (26 against 35 GB/s
 * on the bench machine, stride test with 8 heads of 64).  The state of
 * every head of the tile must fit the stack. */
int att_decode_heads(CG *cg, const Node *n) {
  if ((n->heads_inner & 6) != 6) return 1;
  const Type *t = &n->type;
  Dim h = t->dims[t->rank - 3];
  const Type *tq = &cg->g->nodes[n->in[0]].type;
  int64_t per = ATT_QTILE_ROWS * (tq->dims[tq->rank - 1].size + t->dims[t->rank - 1].size) * 4;
  if (h.sym >= 0 || h.size < 1 || h.size * per > 64 * 1024) return 1;
  return (int)h.size;
}

/* Keys per block: the tile's queries take turns over a block of keys, all
 * heads (up to 256 KB with 8 heads of 64: in L2), so that with T > 1 the
 * block comes from memory once.  Inside, LLVM hoisted the loads of a
 * group's keys and values out of a query loop around them (invariant in
 * it) and spilled all 128 vectors. */
enum { DEC_BLOCK = 64 };

typedef struct Dec {
  Kernel *k;
  int kc, vc, hr;               /* the head dims in vectors (dk / vl, dv / vl); heads per row */
  int nb;                       /* batch dims of the result (the head the last) */
  LLVMValueRef idx[MAX_RANK];   /* this row's batch index (the head's set per head) */
  LLVMValueRef qs, os, m, l;    /* stack: scaled queries, outputs, running max (f32) and sum (vector) per query */
  LLVMValueRef t0, t1, T;       /* the tile's queries, of T */
  LLVMValueRef off;             /* causal: query i sees keys j <= i + off */
  LLVMValueRef tile_limit;      /* keys the tile's last query sees */
  int am, fm;                   /* mask operands, or -1 */
  bool acol, fcol, fint;        /* the masks vary along keys; the fill mask is i32 */
  /* of the current head: */
  LLVMValueRef slot;            /* its first state slot: head * ATT_QTILE_ROWS */
  LLVMValueRef qb, qstride, ko, ks, vo, vs, ob;
  AttMask ma, mf;
} Dec;

/* Offsets of head h (of the row's heads) into the operands. */
static void dec_head(Dec *a, LLVMValueRef h) {
  Kernel *k = a->k;
  CG *cg = k->cg;
  const Node *n = k->n;
  const Type *t = &n->type;
  if (a->hr > 1) a->idx[a->nb - 1] = h;
  a->slot = mul64(cg, h, i64c(cg, ATT_QTILE_ROWS));
  Type lk = att_type(cg, n, 1);
  a->qb = att_rows(cg, n, 0, t, a->nb, a->idx, &a->qstride);
  a->ko = att_rows(cg, n, 1, t, a->nb, a->idx, &a->ks);
  a->vo = att_rows(cg, n, 2, t, a->nb, a->idx, &a->vs);
  if (a->am >= 0) a->ma = att_mask(cg, t, &lk, &cg->g->nodes[n->in[a->am]].type, a->nb, a->idx);
  if (a->fm >= 0) a->mf = att_mask(cg, t, &lk, &cg->g->nodes[n->in[a->fm]].type, a->nb, a->idx);
  /* the result's row 0 of this batch entry */
  LLVMValueRef b = i64c(cg, 0);
  for (int ax = 0; ax < a->nb; ax++) b = add64(cg, mul64(cg, b, dim(cg, t->dims[ax])), a->idx[ax]);
  a->ob = mul64(cg, mul64(cg, b, a->T), i64c(cg, a->vc * cg->vl));
}

/* the keys query i sees: S, or with causal i + 1 + off clamped to [0, S] */
static LLVMValueRef keys_seen(CG *cg, const Node *n, LLVMValueRef i, LLVMValueRef off, LLVMValueRef S) {
  if (!n->causal) return S;
  LLVMValueRef lim = add64(cg, add64(cg, i, i64c(cg, 1)), off);
  lim = LLVMBuildSelect(cg->B, LLVMBuildICmp(cg->B, LLVMIntSLT, lim, S, ""), lim, S, "");
  return LLVMBuildSelect(cg->B, LLVMBuildICmp(cg->B, LLVMIntSGT, lim, i64c(cg, 0), ""), lim, i64c(cg, 0), "");
}

/* A mask's entries for keys j0 .. j0 + vl of the row at mo: one vector
 * load, a broadcast (a mask constant along keys), or with tail one load
 * per lane with the key clamped below tile_limit. */
static LLVMValueRef mask_keys(Dec *a, LLVMValueRef buf, LLVMValueRef mo, bool col, bool i32, LLVMValueRef j0,
                              bool tail) {
  CG *cg = a->k->cg;
  LLVMTypeRef et = i32 ? cg->i32 : cg->f32;
  LLVMTypeRef vt = LLVMVectorType(et, (unsigned)cg->vl);
  if (!col) {
    LLVMValueRef x = LLVMBuildLoad2(cg->B, et, elem_ptr(cg, buf, mo), "");
    LLVMValueRef v = LLVMBuildInsertElement(cg->B, LLVMGetUndef(vt), x, cg_i32(cg, 0), "");
    return LLVMBuildShuffleVector(cg->B, v, LLVMGetUndef(vt), LLVMConstNull(LLVMVectorType(cg->i32, (unsigned)cg->vl)), "");
  }
  if (!tail) {
    LLVMValueRef v = LLVMBuildLoad2(cg->B, vt, elem_ptr(cg, buf, add64(cg, mo, j0)), "");
    LLVMSetAlignment(v, 4);
    return v;
  }
  LLVMValueRef v = LLVMGetUndef(vt), last = LLVMBuildNSWSub(cg->B, a->tile_limit, i64c(cg, 1), "");
  for (int g = 0; g < cg->vl; g++) {
    LLVMValueRef j = add64(cg, j0, i64c(cg, g));
    j = LLVMBuildSelect(cg->B, LLVMBuildICmp(cg->B, LLVMIntSLT, j, last, ""), j, last, "");
    v = LLVMBuildInsertElement(cg->B, v, LLVMBuildLoad2(cg->B, et, elem_ptr(cg, buf, add64(cg, mo, j)), ""), cg_i32(cg, g), "");
  }
  return v;
}

/* Query i against the group of vl keys from j0, for head h of the row.
 * With tail the rows are clamped below tile_limit and keys the query does
 * not see (past S, or causal) score -inf: the last groups take this copy,
 * every other group the one without compares. */
static void dec_step(Dec *a, LLVMValueRef i, LLVMValueRef h, LLVMValueRef j0, bool tail) {
  Kernel *k = a->k;
  CG *cg = k->cg;
  const Node *n = k->n;
  int vl = cg->vl;
  dec_head(a, h);
  LLVMValueRef kp[64], vp[64];
  LLVMValueRef last = tail ? LLVMBuildNSWSub(cg->B, a->tile_limit, i64c(cg, 1), "") : NULL;
  for (int g = 0; g < vl; g++) {
    LLVMValueRef j = add64(cg, j0, i64c(cg, g));
    if (tail) j = LLVMBuildSelect(cg->B, LLVMBuildICmp(cg->B, LLVMIntSLT, j, last, ""), j, last, "");
    kp[g] = elem_ptr(cg, k->in[1], add64(cg, a->ko, mul64(cg, j, a->ks)));
    vp[g] = elem_ptr(cg, k->in[2], add64(cg, a->vo, mul64(cg, j, a->vs)));
  }
  LLVMValueRef q = add64(cg, a->slot, LLVMBuildNSWSub(cg->B, i, a->t0, ""));
  LLVMValueRef qo = mul64(cg, q, i64c(cg, a->kc * vl)), oo = mul64(cg, q, i64c(cg, a->vc * vl));
  /* scores: accumulator p holds key bitrev(p), so that lane j of the
   * folded vector is key j0 + j; the keys' rows are read in order */
  LLVMValueRef acc[64], qv[64];
  for (int p = 0; p < vl; p++) acc[p] = vfc(cg, 0.0);
  for (int c = 0; c < a->kc; c++) qv[c] = vload(cg, a->qs, add64(cg, qo, i64c(cg, c * vl)));
  for (int g = 0; g < vl; g++)
    for (int c = 0; c < a->kc; c++) {
      int p = bitrev(g, vl);
      acc[p] = vfma(cg, vload(cg, kp[g], i64c(cg, c * vl)), qv[c], acc[p]);
    }
  LLVMValueRef s = transpose_add(cg, acc);
  if (a->am >= 0) {
    LLVMValueRef mo = add64(cg, a->ma.mb, mul64(cg, i, a->ma.mrow));
    s = cg_fadd(cg, s, mask_keys(a, k->in[a->am], mo, a->acol, false, j0, tail));
  }
  if (a->fm >= 0) {
    LLVMValueRef fo = add64(cg, a->mf.mb, mul64(cg, i, a->mf.mrow));
    LLVMValueRef fv = mask_keys(a, k->in[a->fm], fo, a->fcol, a->fint, j0, tail);
    s = LLVMBuildSelect(cg->B, mask_nonzero(cg, fv), vfc(cg, n->fill), s, "");
  }
  if (tail) {
    LLVMTypeRef vi = LLVMVectorType(cg->i64, (unsigned)vl);
    LLVMValueRef e[64];
    for (int g = 0; g < vl; g++) e[g] = i64c(cg, g);
    LLVMValueRef lim = LLVMBuildNSWSub(cg->B, keys_seen(cg, n, i, a->off, a->tile_limit), j0, "");
    LLVMValueRef lv = LLVMBuildInsertElement(cg->B, LLVMGetUndef(vi), lim, cg_i32(cg, 0), "");
    lv = LLVMBuildShuffleVector(cg->B, lv, LLVMGetUndef(vi), LLVMConstNull(LLVMVectorType(cg->i32, (unsigned)vl)), "");
    LLVMValueRef seen = LLVMBuildICmp(cg->B, LLVMIntSLT, LLVMConstVector(e, (unsigned)vl), lv, "");
    s = LLVMBuildSelect(cg->B, seen, s, vfc(cg, -1.0 / 0.0), "");
  }
  /* the running max moves: rescale what is accumulated (from m = -inf,
   * alpha is 0).  vmax drops a NaN group max: the NaN score's p makes
   * the row NaN anyway, as softmax would. */
  LLVMValueRef mp = elem_ptr(cg, a->m, q);
  LLVMValueRef lp = LLVMBuildInBoundsGEP2(cg->B, cg->vf, a->l, &q, 1, "");
  LLVMValueRef mold = LLVMBuildLoad2(cg->B, cg->f32, mp, "");
  LLVMValueRef gmax = LLVMBuildExtractElement(cg->B, across(cg, s, false), cg_i32(cg, 0), "");
  LLVMBasicBlockRef b_re = LLVMAppendBasicBlockInContext(cg->C, cg->fn, "dec.rescale");
  LLVMBasicBlockRef b_go = LLVMAppendBasicBlockInContext(cg->C, cg->fn, "dec.go");
  LLVMBuildCondBr(cg->B, LLVMBuildFCmp(cg->B, LLVMRealOGT, gmax, mold, ""), b_re, b_go);
  LLVMPositionBuilderAtEnd(cg->B, b_re);
  LLVMValueRef alpha = vsplat(cg, math_exp_nonpos(cg, cg_fsub(cg, mold, gmax)));
  LLVMBuildStore(cg->B, gmax, mp);
  LLVMBuildStore(cg->B, cg_fmul(cg, LLVMBuildLoad2(cg->B, cg->vf, lp, ""), alpha), lp);
  for (int c = 0; c < a->vc; c++) {
    LLVMValueRef oi = add64(cg, oo, i64c(cg, c * vl));
    vstore(cg, cg_fmul(cg, vload(cg, a->os, oi), alpha), a->os, oi);
  }
  LLVMBuildBr(cg->B, b_go);
  LLVMPositionBuilderAtEnd(cg->B, b_go);
  /* p = exp(s - m); with every key so far masked m is -inf and 0 stands in */
  LLVMValueRef m = LLVMBuildLoad2(cg->B, cg->f32, mp, "");
  LLVMValueRef muse = LLVMBuildSelect(cg->B, LLVMBuildFCmp(cg->B, LLVMRealOEQ, m, cg_f32(cg, -1.0 / 0.0), ""),
                                      cg_f32(cg, 0.0), m, "");
  LLVMValueRef p = math_exp_nonpos(cg, cg_fsub(cg, s, vsplat(cg, muse)));
  LLVMBuildStore(cg->B, cg_fadd(cg, LLVMBuildLoad2(cg->B, cg->vf, lp, ""), p), lp);
  /* out += sum_j p_j v_j: blocks of DB vectors of the value dims, keys
   * alternating between two sets of accumulators (2 DB FMA chains) */
  LLVMValueRef pb[64];
  for (int g = 0; g < vl; g++) pb[g] = lane_splat(cg, p, g);
  int DB = vl >= 16 ? 4 : 2;
  for (int c0 = 0; c0 < a->vc; c0 += DB) {
    int nb = a->vc - c0 < DB ? a->vc - c0 : DB;
    LLVMValueRef o[2][4];
    for (int u = 0; u < nb; u++) {
      o[0][u] = vload(cg, a->os, add64(cg, oo, i64c(cg, (c0 + u) * vl)));
      o[1][u] = NULL;
    }
    for (int g = 0; g < vl; g++)
      for (int u = 0; u < nb; u++) {
        LLVMValueRef x = vload(cg, vp[g], i64c(cg, (c0 + u) * vl));
        LLVMValueRef *dst = &o[g & 1][u];
        *dst = *dst ? vfma(cg, pb[g], x, *dst) : cg_fmul(cg, pb[g], x);
      }
    for (int u = 0; u < nb; u++)
      vstore(cg, cg_fadd(cg, o[0][u], o[1][u]), a->os, add64(cg, oo, i64c(cg, (c0 + u) * vl)));
  }
}

/* Groups [g0, g1) of the tile's queries, every head of the row for each
 * group (so a group's keys of all heads are one contiguous block). */
static void dec_groups(Dec *a, LLVMValueRef g0, LLVMValueRef g1, bool tail) {
  CG *cg = a->k->cg;
  Loop ql, gl, hl;
  LLVMValueRef i = loop_begin(cg, &ql, a->t0, a->t1);
  LLVMValueRef gi = loop_begin(cg, &gl, g0, g1);
  LLVMValueRef h = loop_begin(cg, &hl, i64c(cg, 0), i64c(cg, a->hr));
  dec_step(a, i, h, mul64(cg, gi, i64c(cg, cg->vl)), tail);
  loop_end_nounroll(cg, &hl);
  loop_end_nounroll(cg, &gl);
  loop_end_nounroll(cg, &ql);
}

void emit_attention_decode(Kernel *k) {
  CG *cg = k->cg;
  const Node *n = k->n;
  const Type *t = &n->type;
  Type lq = att_type(cg, n, 0), lk = att_type(cg, n, 1);
  int vl = cg->vl, QT = ATT_QTILE_ROWS;
  Dec a = {.k = k, .am = att_add_mask(n), .fm = att_fill_mask(n), .hr = att_decode_heads(cg, n), .nb = t->rank - 2};
  a.kc = (int)(lq.dims[lq.rank - 1].size / vl);
  a.vc = (int)(t->dims[t->rank - 1].size / vl);
  int64_t dk = a.kc * vl, dv = a.vc * vl;
  a.T = dim(cg, t->dims[t->rank - 2]);
  LLVMValueRef S = dim(cg, lk.dims[lk.rank - 2]);
  LLVMValueRef tiles = div64(cg, add64(cg, a.T, i64c(cg, QT - 1)), i64c(cg, QT));
  uint64_t slots = (uint64_t)(a.hr * QT);
  a.qs = entry_alloca(cg, LLVMArrayType2(cg->f32, slots * (uint64_t)dk), "dec.q");
  a.os = entry_alloca(cg, LLVMArrayType2(cg->f32, slots * (uint64_t)dv), "dec.o");
  LLVMSetAlignment(a.qs, 64);
  LLVMSetAlignment(a.os, 64);
  a.m = entry_alloca(cg, LLVMArrayType2(cg->f32, slots), "dec.m");
  a.l = entry_alloca(cg, LLVMArrayType2(cg->vf, slots), "dec.l");
  Loop r, hl, ql, gl;
  LLVMValueRef row = loop_begin(cg, &r, k->begin, k->end);
  a.t0 = mul64(cg, rem64(cg, row, tiles), i64c(cg, QT));
  LLVMValueRef rest = div64(cg, row, tiles);
  LLVMValueRef t1 = add64(cg, a.t0, i64c(cg, QT));
  a.t1 = LLVMBuildSelect(cg->B, LLVMBuildICmp(cg->B, LLVMIntSLT, t1, a.T, ""), t1, a.T, "");
  /* the row's batch index; with every head in the row, its head is set
   * per head (dec_head) */
  for (int ax = a.nb - 1 - (a.hr > 1); ax >= 0; ax--) {
    LLVMValueRef d = dim(cg, t->dims[ax]);
    a.idx[ax] = rem64(cg, rest, d);
    rest = div64(cg, rest, d);
  }
  if (a.am >= 0) {
    const Type *tm = &cg->g->nodes[n->in[a.am]].type;
    a.acol = !is_one(tm->dims[tm->rank - 1]);
  }
  if (a.fm >= 0) {
    const Type *tm = &cg->g->nodes[n->in[a.fm]].type;
    a.fcol = !is_one(tm->dims[tm->rank - 1]);
    a.fint = tm->dtype == DT_I32;
  }
  a.off = n->causal_lr ? LLVMBuildNSWSub(cg->B, S, a.T, "") : i64c(cg, 0);
  a.tile_limit = keys_seen(cg, n, LLVMBuildNSWSub(cg->B, a.t1, i64c(cg, 1), ""), a.off, S);
  /* per head and query: its row scaled, m = -inf, l = 0, out = 0 */
  LLVMValueRef h = loop_begin(cg, &hl, i64c(cg, 0), i64c(cg, a.hr));
  dec_head(&a, h);
  LLVMValueRef i = loop_begin(cg, &ql, a.t0, a.t1);
  LLVMValueRef q = add64(cg, a.slot, LLVMBuildNSWSub(cg->B, i, a.t0, ""));
  LLVMValueRef qrow = add64(cg, a.qb, mul64(cg, i, a.qstride));
  for (int c = 0; c < a.kc; c++)
    vstore(cg, cg_fmul(cg, vload(cg, k->in[0], add64(cg, qrow, i64c(cg, c * vl))), vfc(cg, n->fval)), a.qs,
           add64(cg, mul64(cg, q, i64c(cg, dk)), i64c(cg, c * vl)));
  for (int c = 0; c < a.vc; c++) vstore(cg, vfc(cg, 0.0), a.os, add64(cg, mul64(cg, q, i64c(cg, dv)), i64c(cg, c * vl)));
  store_f(cg, cg_f32(cg, -1.0 / 0.0), a.m, q);
  LLVMBuildStore(cg->B, vfc(cg, 0.0), LLVMBuildInBoundsGEP2(cg->B, cg->vf, a.l, &q, 1, ""));
  loop_end(cg, &ql);
  loop_end(cg, &hl);
  /* groups every query of the tile sees whole (up to the first query's
   * limit) take the copy without compares; the rest up to the last's the
   * masked one */
  LLVMValueRef nfull = div64(cg, keys_seen(cg, n, a.t0, a.off, S), i64c(cg, vl));
  LLVMValueRef bg = i64c(cg, DEC_BLOCK / vl);
  LLVMValueRef g0 = mul64(cg, loop_begin(cg, &gl, i64c(cg, 0), div64(cg, add64(cg, nfull, i64c(cg, DEC_BLOCK / vl - 1)), bg)), bg);
  LLVMValueRef g1 = add64(cg, g0, bg);
  dec_groups(&a, g0, LLVMBuildSelect(cg->B, LLVMBuildICmp(cg->B, LLVMIntSLT, g1, nfull, ""), g1, nfull, ""), false);
  loop_end_nounroll(cg, &gl);
  dec_groups(&a, nfull, div64(cg, add64(cg, a.tile_limit, i64c(cg, vl - 1)), i64c(cg, vl)), true);
  /* out = o / l; a query with no visible key has l = 0: zeros for
   * attention(), NaN where the source's softmax would have given NaN */
  h = loop_begin(cg, &hl, i64c(cg, 0), i64c(cg, a.hr));
  dec_head(&a, h);
  i = loop_begin(cg, &ql, a.t0, a.t1);
  q = add64(cg, a.slot, LLVMBuildNSWSub(cg->B, i, a.t0, ""));
  LLVMValueRef lv = LLVMBuildLoad2(cg->B, cg->vf, LLVMBuildInBoundsGEP2(cg->B, cg->vf, a.l, &q, 1, ""), "");
  LLVMValueRef l = LLVMBuildExtractElement(cg->B, across(cg, lv, true), cg_i32(cg, 0), "");
  LLVMValueRef inv = cg_fdiv(cg, cg_f32(cg, 1.0), l);
  inv = vsplat(cg, LLVMBuildSelect(cg->B, LLVMBuildFCmp(cg->B, LLVMRealOEQ, l, cg_f32(cg, 0.0), ""),
                                   cg_f32(cg, n->safe ? 0.0 : 0.0 / 0.0), inv, ""));
  LLVMValueRef orow = add64(cg, a.ob, mul64(cg, i, i64c(cg, dv)));
  for (int c = 0; c < a.vc; c++)
    vstore(cg, cg_fmul(cg, vload(cg, a.os, add64(cg, mul64(cg, q, i64c(cg, dv)), i64c(cg, c * vl))), inv), k->out,
           add64(cg, orow, i64c(cg, c * vl)));
  loop_end(cg, &ql);
  loop_end(cg, &hl);
  loop_end(cg, &r);
}
