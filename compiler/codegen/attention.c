/* attention.c: the fused attention kernels (pass_fuse_attention's
 * ATTENTION nodes): the plain one, an online softmax over tiles of query
 * rows for any head dims, and the fast one, queries in vector lanes, for
 * constant head dims; att_fast says which a node gets.
 *
 * Needs: builder.c; math.c for exp and exp_nonpos. */
#include "cg.h"

/* a > b ? a : b, one vmaxps on x86: a NaN in a gives b */
LLVMValueRef vmax(CG *cg, LLVMValueRef a, LLVMValueRef b) {
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

/* A mask operand broadcast to the scores [.., T, S] (its last two dims may
 * be 1): the offset of this batch entry's block (*mb), its stride per
 * query row (*mrow, 0 or S) and per key (*mcol, 0 or 1). */
AttMask att_mask(CG *cg, const Type *t, const Type *tk, const Type *tm, int nb, LLVMValueRef *idx) {
  Type full = *t;
  full.dims[t->rank - 1] = tk->dims[tk->rank - 2];
  Dim mT = tm->rank >= 2 ? tm->dims[tm->rank - 2] : (Dim){1, -1};
  Dim mS = tm->dims[tm->rank - 1];
  LLVMValueRef mSv = dim(cg, mS);
  LLVMValueRef msize = mul64(cg, tm->rank >= 2 ? dim(cg, mT) : i64c(cg, 1), mSv);
  AttMask m;
  m.mb = batch_offset(cg, &full, nb, idx, tm, tm->rank > 2 ? tm->rank - 2 : 0, msize);
  m.mrow = tm->rank >= 2 && !is_one(mT) ? mSv : i64c(cg, 0);
  m.mcol = is_one(mS) ? i64c(cg, 0) : i64c(cg, 1);
  return m;
}

/* Operand k (q, k, v) of attention n as the kernels see it, [.., H, S, d]
 * (Node.heads_inner: stored as [.., S, H, d], its dims -3 and -2 swapped). */
Type att_type(CG *cg, const Node *n, int k) {
  Type t = cg->g->nodes[n->in[k]].type;
  if (n->heads_inner & (1 << k)) {
    Dim h = t.dims[t.rank - 2];
    t.dims[t.rank - 2] = t.dims[t.rank - 3];
    t.dims[t.rank - 3] = h;
  }
  return t;
}

/* Where operand k's rows of the batch entry idx (of the result t, nb
 * batch dims) start, and *stride, the distance between its rows: d, or
 * H*d when its heads are read in place. */
LLVMValueRef att_rows(CG *cg, const Node *n, int k, const Type *t, int nb, LLVMValueRef *idx,
                             LLVMValueRef *stride) {
  Type lt = att_type(cg, n, k);
  int r = lt.rank;
  LLVMValueRef d = dim(cg, lt.dims[r - 1]), S = dim(cg, lt.dims[r - 2]);
  if (!(n->heads_inner & (1 << k))) {
    *stride = d;
    return batch_offset(cg, t, nb, idx, &lt, r - 2, mul64(cg, S, d));
  }
  /* [B.., S, H, d]: the head is the last batch axis of both */
  LLVMValueRef H = dim(cg, lt.dims[r - 3]);
  *stride = mul64(cg, H, d);
  Type outer = lt;
  outer.rank = r - 3;
  LLVMValueRef off = batch_offset(cg, t, nb - 1, idx, &outer, r - 3, mul64(cg, S, *stride));
  return add64(cg, off, mul64(cg, idx[nb - 1], d));
}

/* The operands of an ATTENTION node: an additive mask (or -1), and a fill
 * mask (or -1) whose nonzero entries make a score n->fill. */
int att_add_mask(const Node *n) { return n->nin - n->filled > 3 ? 3 : -1; }
int att_fill_mask(const Node *n) { return n->filled ? n->nin - 1 : -1; }

/* The first result row (over batch dims and T) of tile `row`. */
LLVMValueRef tile_first_row(CG *cg, LLVMValueRef row, LLVMValueRef tiles, LLVMValueRef T) {
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

void emit_attention(Kernel *k) {
  CG *cg = k->cg;
  const Node *n = k->n;
  const Type *t = &n->type;
  Type lq = att_type(cg, n, 0), lk = att_type(cg, n, 1), lv = att_type(cg, n, 2);
  const Type *tq = &lq, *tk = &lk, *tv = &lv;
  int am = att_add_mask(n), fm = att_fill_mask(n);
  bool has_mask = am >= 0;
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
  LLVMValueRef qstride, kstride, vstride;
  LLVMValueRef qb = att_rows(cg, n, 0, t, nb, idx, &qstride);
  LLVMValueRef ko = att_rows(cg, n, 1, t, nb, idx, &kstride);
  LLVMValueRef vo = att_rows(cg, n, 2, t, nb, idx, &vstride);
  LLVMValueRef ob = mul64(cg, tile_first_row(cg, row, tiles, T), dv);
  AttMask ma = {0}, mf = {0};
  if (has_mask) ma = att_mask(cg, t, tk, &cg->g->nodes[n->in[am]].type, nb, idx);
  if (fm >= 0) mf = att_mask(cg, t, tk, &cg->g->nodes[n->in[fm]].type, nb, idx);
  bool fint = fm >= 0 && cg->g->nodes[n->in[fm]].type.dtype == DT_I32;
  LLVMValueRef ninf = cg_f32(cg, -1.0 / 0.0);
  /* causal: query i sees keys up to i + off (off = S - T lower right) */
  LLVMValueRef off = n->causal_lr ? LLVMBuildNSWSub(cg->B, S, T, "") : i64c(cg, 0);
  LLVMValueRef tile_limit = S;
  if (n->causal) {
    LLVMValueRef lim = add64(cg, t1, off);
    tile_limit = LLVMBuildSelect(cg->B, LLVMBuildICmp(cg->B, LLVMIntSLT, lim, S, ""), lim, S, "");
    tile_limit = LLVMBuildSelect(cg->B, LLVMBuildICmp(cg->B, LLVMIntSGT, tile_limit, i64c(cg, 0), ""), tile_limit,
                                 i64c(cg, 0), "");
  }
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
  LLVMValueRef qo = add64(cg, qb, mul64(cg, i, qstride));
  oo = add64(cg, ob, mul64(cg, q, dv));
  LLVMValueRef mo = has_mask ? add64(cg, ma.mb, mul64(cg, i, ma.mrow)) : NULL;
  LLVMValueRef fo = fm >= 0 ? add64(cg, mf.mb, mul64(cg, i, mf.mrow)) : NULL;
  /* this query's keys in the block: up to its own position if causal */
  LLVMValueRef jend = j1;
  if (n->causal) {
    LLVMValueRef lim = add64(cg, add64(cg, i, i64c(cg, 1)), off);
    jend = LLVMBuildSelect(cg->B, LLVMBuildICmp(cg->B, LLVMIntSLT, lim, j1, ""), lim, j1, "");
  }
  LLVMValueRef cnt = LLVMBuildNSWSub(cg->B, jend, j0, "");
  /* scores of this block, and their max (no keys: cnt <= 0, nothing runs) */
  LLVMBuildStore(cg->B, ninf, bmax);
  LLVMValueRef jj = loop_begin(cg, &jl, i64c(cg, 0), cnt);
  LLVMValueRef j = add64(cg, j0, jj);
  LLVMValueRef sc = cg_fmul(cg, emit_dot(cg, k->in[0], qo, k->in[1], add64(cg, ko, mul64(cg, j, kstride)), dk), cg_f32(cg, n->fval));
  if (has_mask) sc = cg_fadd(cg, sc, load_f(cg, k->in[am], add64(cg, mo, mul64(cg, j, ma.mcol))));
  if (fm >= 0) {
    LLVMValueRef fp = elem_ptr(cg, k->in[fm], add64(cg, fo, mul64(cg, j, mf.mcol)));
    LLVMValueRef fv = LLVMBuildLoad2(cg->B, fint ? cg->i32 : cg->f32, fp, "");
    sc = LLVMBuildSelect(cg->B, mask_nonzero(cg, fv), cg_f32(cg, n->fill), sc, "");
  }
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
  LLVMValueRef vrow = add64(cg, vo, mul64(cg, j, vstride));
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
int att_qt(CG *cg) { return 2 * cg->vl; }

bool att_fast(CG *cg, const Node *n) {
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
  LLVMValueRef ks, vs;          /* ... and their row strides (dk, dv, or H times them) */
  LLVMValueRef qidx[2];         /* the lanes' query positions (i64 vectors) */
  LLVMValueRef cidx[2];         /* causal: the last key each lane sees (qidx + S - T lower right) */
  LLVMValueRef mrow_ptr[2];     /* additive mask: per lane, the row's base (vector of ptrs) */
  LLVMValueRef mcol;            /* the mask's stride along keys (0 or 1) */
  LLVMValueRef frow_ptr[2];     /* fill mask: as the additive mask's */
  LLVMValueRef fcol;
  bool fint;                    /* the fill mask is i32 */
  LLVMValueRef m, l;            /* allocas: running max and sum, [qv] vectors */
} AttTile;

/* base[lane][off] for each lane: f32 lanes, or i32 ones with i32. */
static LLVMValueRef gather_lanes(CG *cg, LLVMValueRef base, LLVMValueRef off, bool i32) {
  LLVMValueRef offv = viota64_splat(cg, off);
  LLVMValueRef ptrs = LLVMBuildInBoundsGEP2(cg->B, cg->f32, base, &offv, 1, "");
  LLVMTypeRef vt = i32 ? LLVMVectorType(cg->i32, (unsigned)cg->vl) : cg->vf;
  LLVMTypeRef tys[2] = {vt, LLVMVectorType(cg->ptr, (unsigned)cg->vl)};
  unsigned id = LLVMLookupIntrinsicID("llvm.masked.gather", 18);
  LLVMValueRef fn = LLVMGetIntrinsicDeclaration(cg->M, id, tys, 2);
  LLVMValueRef ones[64];
  for (int i = 0; i < cg->vl; i++) ones[i] = LLVMConstInt(cg->i1, 1, 0);
  LLVMValueRef args[4] = {ptrs, cg_i32(cg, 4), LLVMConstVector(ones, (unsigned)cg->vl), LLVMGetUndef(vt)};
  return LLVMBuildCall2(cg->B, LLVMIntrinsicGetType(cg->C, id, tys, 2), fn, args, 4, "");
}

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
    kbase[g] = elem_ptr(cg, k->in[1], add64(cg, a->ko, mul64(cg, row[g], a->ks)));
    vbase[g] = elem_ptr(cg, k->in[2], add64(cg, a->vo, mul64(cg, row[g], a->vs)));
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
  if (!tail) prefetch(cg, elem_ptr(cg, vbase[0], add64(cg, mul64(cg, i64c(cg, kg), a->vs), mul64(cg, d, i64c(cg, 16)))), 0);
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
      /* additive mask: M[query lane, key j] gathered across the lanes */
      if (a->mrow_ptr[0]) x = cg_fadd(cg, x, gather_lanes(cg, a->mrow_ptr[v], mul64(cg, row[g], a->mcol), false));
      if (a->frow_ptr[0]) {
        /* fill mask: the score is n->fill where F[query lane, key j] != 0 */
        LLVMValueRef fv = gather_lanes(cg, a->frow_ptr[v], mul64(cg, row[g], a->fcol), a->fint);
        x = LLVMBuildSelect(cg->B, mask_nonzero(cg, fv), vfc(cg, n->fill), x, "");
      }
      if (n->causal && tail) {
        /* key j is visible to query i when j <= i */
        LLVMValueRef later = LLVMBuildICmp(cg->B, LLVMIntSGT, viota64_splat(cg, row[g]), a->cidx[v], "");
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
        prefetch(cg, elem_ptr(cg, kbase[0], add64(cg, add64(cg, mul64(cg, i64c(cg, kg), a->ks), i64c(cg, 16 * l)),
                                                  mul64(cg, db, i64c(cg, 32)))), 0);
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
  if (!tail) prefetch(cg, elem_ptr(cg, kbase[0], add64(cg, mul64(cg, i64c(cg, kg), a->ks), mul64(cg, d, i64c(cg, 16)))), 0);
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

/* With few queries (a decoding step: T = 1 after a cache of P keys) the
 * fast kernel would fill one lane of its 2 vectors of queries and compute
 * the other lanes' scores for nothing: below ATT_SMALL_T queries the
 * decode kernel (attention_decode.c, keys in lanes) runs instead, or the
 * plain one where the key head dim is not a multiple of the vector width.
 * Both take tiles of ATT_QTILE_ROWS queries.  Chosen per call on T;
 * rows_of counts the rows to match. */
void emit_attention_any(Kernel *k) {
  CG *cg = k->cg;
  const Type *t = &k->n->type;
  LLVMValueRef T = dim(cg, t->dims[t->rank - 2]);
  LLVMBasicBlockRef small = LLVMAppendBasicBlockInContext(cg->C, cg->fn, "att.small");
  LLVMBasicBlockRef big = LLVMAppendBasicBlockInContext(cg->C, cg->fn, "att.big");
  LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(cg->C, cg->fn, "att.done");
  LLVMBuildCondBr(cg->B, LLVMBuildICmp(cg->B, LLVMIntSLT, T, i64c(cg, ATT_SMALL_T), ""), small, big);
  LLVMPositionBuilderAtEnd(cg->B, small);
  if (att_decode_ok(cg, k->n)) emit_attention_decode(k);
  else emit_attention(k);
  LLVMBuildBr(cg->B, done);
  LLVMPositionBuilderAtEnd(cg->B, big);
  emit_attention_fast(k);
  LLVMBuildBr(cg->B, done);
  LLVMPositionBuilderAtEnd(cg->B, done);
}

void emit_attention_fast(Kernel *k) {
  CG *cg = k->cg;
  const Node *n = k->n;
  const Type *t = &n->type;
  Type lq = att_type(cg, n, 0), lk = att_type(cg, n, 1), lv = att_type(cg, n, 2);
  const Type *tq = &lq, *tk = &lk, *tv = &lv;
  int am = att_add_mask(n), fm = att_fill_mask(n);
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
  LLVMValueRef qstride;
  LLVMValueRef qb = att_rows(cg, n, 0, t, nb, idx, &qstride);
  a.ko = att_rows(cg, n, 1, t, nb, idx, &a.ks);
  a.vo = att_rows(cg, n, 2, t, nb, idx, &a.vs);
  /* row 0 of this batch entry in the output */
  LLVMValueRef ob = mul64(cg, mul64(cg, div64(cg, row, tiles), T), i64c(cg, a.dv));
  /* Q^T, scaled; lanes past T read the tile's last row and are not stored */
  LLVMValueRef lane = loop_begin(cg, &ql, i64c(cg, 0), i64c(cg, QT));
  LLVMValueRef qi = add64(cg, t0, lane);
  qi = LLVMBuildSelect(cg->B, LLVMBuildICmp(cg->B, LLVMIntSLT, qi, tlast, ""), qi, tlast, "");
  LLVMValueRef qrow = add64(cg, qb, mul64(cg, qi, qstride));
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
  /* the masks' row per lane (lanes past T read the tile's last row) */
  for (int which = 0; which < 2; which++) {
    int op = which ? fm : am;
    if (op < 0) continue;
    AttMask mk = att_mask(cg, t, tk, &cg->g->nodes[n->in[op]].type, nb, idx);
    for (int v = 0; v < qv; v++) {
      LLVMValueRef qc = a.qidx[v];
      LLVMValueRef tl = viota64_splat(cg, tlast);
      qc = LLVMBuildSelect(cg->B, LLVMBuildICmp(cg->B, LLVMIntSLT, qc, tl, ""), qc, tl, "");
      LLVMValueRef off = LLVMBuildAdd(cg->B, viota64_splat(cg, mk.mb), LLVMBuildMul(cg->B, qc, viota64_splat(cg, mk.mrow), ""), "");
      LLVMValueRef p = LLVMBuildInBoundsGEP2(cg->B, cg->f32, k->in[op], &off, 1, "");
      if (which) a.frow_ptr[v] = p;
      else a.mrow_ptr[v] = p;
    }
    if (which) a.fcol = mk.mcol;
    else a.mcol = mk.mcol;
  }
  a.fint = fm >= 0 && cg->g->nodes[n->in[fm]].type.dtype == DT_I32;
  (void)vi64;
  /* keys: all of S, or with causal up to the tile's last query's (its
   * position + off, off = S - T lower right, clamped to [0, S]) */
  LLVMValueRef off = n->causal_lr ? LLVMBuildNSWSub(cg->B, S, T, "") : i64c(cg, 0);
  for (int v = 0; v < qv; v++) a.cidx[v] = LLVMBuildAdd(cg->B, a.qidx[v], viota64_splat(cg, off), "");
  LLVMValueRef jend = S;
  if (n->causal) {
    LLVMValueRef lim = add64(cg, t1, off);
    jend = LLVMBuildSelect(cg->B, LLVMBuildICmp(cg->B, LLVMIntSLT, lim, S, ""), lim, S, "");
    jend = LLVMBuildSelect(cg->B, LLVMBuildICmp(cg->B, LLVMIntSGT, jend, i64c(cg, 0), ""), jend, i64c(cg, 0), "");
  }
  /* Groups whose keys are all in range and, with causal, visible to the
   * tile's first query (so to every lane) need no masks: they take a copy
   * without them, with rows one stride apart.  The rest (the last partial
   * group, the causal diagonal) take the masked copy. */
  LLVMValueRef jfull = jend;
  if (n->causal) {
    LLVMValueRef first = add64(cg, add64(cg, t0, i64c(cg, 1)), off);   /* keys the first query sees */
    jfull = LLVMBuildSelect(cg->B, LLVMBuildICmp(cg->B, LLVMIntSLT, first, jend, ""), first, jend, "");
    jfull = LLVMBuildSelect(cg->B, LLVMBuildICmp(cg->B, LLVMIntSGT, jfull, i64c(cg, 0), ""), jfull, i64c(cg, 0), "");
  }
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
