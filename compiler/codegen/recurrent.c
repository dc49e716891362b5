/* recurrent.c: the LSTM and GRU kernels, each over every step of its
 * sequences: h_{t-1} W_hh^T register-blocked (or as dot products), then
 * the gates; and last_step, which takes a layer's final state out of what
 * the kernel leaves.
 *
 * Needs: builder.c; math.c for exp (sigmoid) and tanh. */
#include "cg.h"

/* sum_k a[ao + k] * b[bo + k * bs] for k < n; b is W_hh^T, bf16 when bf */
static LLVMValueRef emit_dot_strided(CG *cg, LLVMValueRef a, LLVMValueRef ao, bool bf, LLVMValueRef b, LLVMValueRef bo,
                                     LLVMValueRef bs, LLVMValueRef n) {
  LLVMValueRef acc = entry_alloca(cg, cg->f32, "dot");
  LLVMBuildStore(cg->B, cg_f32(cg, 0.0), acc);
  Loop kl;
  LLVMValueRef kk = loop_begin(cg, &kl, i64c(cg, 0), n);
  LLVMFastMathFlags saved = cg->fmf;
  reduce_fmf(cg);
  LLVMValueRef prod = cg_fmul(cg, load_f(cg, a, add64(cg, ao, kk)), load_w(cg, bf, b, add64(cg, bo, mul64(cg, kk, bs))));
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
 * The state before step 0 is the const 0 (nothing to read: step 0 skips
 * the product with W_hh) or a buffer [.., H] (h0; an LSTM's c0 too), read
 * where step t > 0 reads row t-1: the choice of buffer and offset is a
 * select per step and sequence, outside the loops over units and k, and
 * code for the zero state has none of it.
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

/* The step being built: where h_{t-1} lives (hbuf: out, or at step 0
 * the given h0) */
typedef struct RecStep {
  LLVMValueRef step, first, T, H, G, hbuf;
  bool h0;   /* an initial h is given (operand rec_h0) */
} RecStep;

static int rec_h0(const Node *n) { return n->op == OP_LSTM_SEQ ? 2 : 3; }

/* Offset of h_{t-1} of sequence seq in st->hbuf */
static LLVMValueRef rec_hprev(CG *cg, const RecStep *st, LLVMValueRef seq) {
  LLVMValueRef prev = mul64(cg, add64(cg, mul64(cg, seq, st->T), LLVMBuildNSWSub(cg->B, st->step, i64c(cg, 1), "")), st->H);
  return st->h0 ? LLVMBuildSelect(cg->B, st->first, mul64(cg, seq, st->H), prev, "") : prev;
}

/* dst[r][j0 .. j0 + nv vectors) (+)= h_r W^T[:, jw0 ..] for r < mr:
 * hrow[r] are the offsets of h_{t-1} rows in hbuf, drow[r] those of the
 * destination rows in dst; init from dst, or from bias[jb0 ..] */
static void rec_block(Kernel *k, int mr, int nv, LLVMValueRef hbuf, LLVMValueRef *hrow, LLVMValueRef dst,
                      LLVMValueRef *drow, LLVMValueRef jw0, LLVMValueRef jd0, bool from_bias, LLVMValueRef H,
                      LLVMValueRef G) {
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
  bool bf = cg->g->nodes[k->n->in[1]].bf16;   /* W_hh^T in bf16 (pass_weights_bf16) */
  for (int v = 0; v < nv; v++) b[v] = vload_w(cg, bf, k->in[1], add64(cg, wrow, i64c(cg, v * vl)));
  for (int r = 0; r < mr; r++) {
    LLVMValueRef a = vsplat(cg, load_f(cg, hbuf, add64(cg, hrow[r], kk)));
    for (int v = 0; v < nv; v++) next[r * nv + v] = vfma(cg, a, b[v], kl.v[r * nv + v]);
  }
  cloop_end(cg, &kl, next);
  LLVMValueRef out = from_bias ? k->out : dst;
  for (int r = 0; r < mr; r++)
    for (int v = 0; v < nv; v++) vstore(cg, kl.v[r * nv + v], out, add64(cg, drow[r], add64(cg, jd0, i64c(cg, v * vl))));
}

/* h_{t-1} W_hh^T for ngroups groups of mr sequences from s0 at step
 * st->step (> 0, or 0 with a given h0).  The groups run inside the loop
 * over blocks of gate columns, so that a block of W_hh^T (H x nv vectors)
 * read for the first group is in cache for the others. */
static void rec_rows(Kernel *k, const RecStep *st, int mr, LLVMValueRef s0, LLVMValueRef *hrow, LLVMValueRef *xrow,
                     LLVMValueRef *orow) {
  CG *cg = k->cg;
  for (int r = 0; r < mr; r++) {
    LLVMValueRef seq = add64(cg, s0, i64c(cg, r));
    hrow[r] = rec_hprev(cg, st, seq);
    xrow[r] = mul64(cg, add64(cg, mul64(cg, seq, st->T), st->step), st->G);
    orow[r] = mul64(cg, add64(cg, mul64(cg, seq, st->T), st->step), st->H);
  }
}

static void rec_step_gemm(Kernel *k, const RecStep *st, bool lstm, int mr, int nv, LLVMValueRef s0,
                          LLVMValueRef ngroups) {
  CG *cg = k->cg;
  LLVMValueRef H = st->H, G = st->G;
  LLVMValueRef hrow[16], xrow[16], orow[16];
  int w = nv * cg->vl;
  /* LSTM: every gate adds into xp; GRU: r and z add into xp, n goes to h_t */
  LLVMValueRef nacc = lstm ? G : mul64(cg, H, i64c(cg, 2));
  Loop pl, gl;
  LLVMValueRef p = loop_begin(cg, &pl, i64c(cg, 0), div64(cg, nacc, i64c(cg, w)));
  LLVMValueRef j0 = mul64(cg, p, i64c(cg, w));
  LLVMValueRef grp = loop_begin(cg, &gl, i64c(cg, 0), ngroups);
  rec_rows(k, st, mr, add64(cg, s0, mul64(cg, grp, i64c(cg, mr))), hrow, xrow, orow);
  rec_block(k, mr, nv, st->hbuf, hrow, k->in[0], xrow, j0, j0, false, H, G);
  loop_end(cg, &gl);
  loop_end(cg, &pl);
  if (!lstm) {
    p = loop_begin(cg, &pl, i64c(cg, 0), div64(cg, H, i64c(cg, w)));
    j0 = mul64(cg, p, i64c(cg, w));
    grp = loop_begin(cg, &gl, i64c(cg, 0), ngroups);
    rec_rows(k, st, mr, add64(cg, s0, mul64(cg, grp, i64c(cg, mr))), hrow, xrow, orow);
    rec_block(k, mr, nv, st->hbuf, hrow, k->out, orow, add64(cg, nacc, j0), j0, true, H, G);
    loop_end(cg, &gl);
    loop_end(cg, &pl);
  }
}

/* One step's gate nonlinearities for unit j of one sequence, or for vl
 * units from j (vec): reads the gates from xp at g, h_{t-1} from hbuf at
 * hp (when h0, else zero at step 0), c_{t-1} from cbuf at cp (when c0,
 * else zero at step 0); writes c_t (LSTM) to xp and h_t to out at ho. */
typedef struct RecGates {
  Kernel *k;
  bool lstm, fast, h0, c0;
  LLVMValueRef g, hbuf, hp, cbuf, cp, ho, first, kmax;
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
    LLVMValueRef cprev = rg_load(cg, vec, r->cbuf, add64(cg, r->cp, j));
    if (!r->c0) cprev = LLVMBuildSelect(cg->B, r->first, rg_const(cg, vec, 0.0), cprev, "");
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
    if (r->fast) {  /* W_hn h_{t-1} + b_hn, already in h_t's place (b_hn alone at t = 0 from zero) */
      hn = rg_load(cg, vec, k->out, add64(cg, r->ho, j));
      if (!r->h0) hn = LLVMBuildSelect(cg->B, r->first, rg_bias(r, vec, jn), hn, "");
    } else {
      int64_t P = rec_panel(cg, k->n);
      hn = cg_fadd(cg, emit_dot_strided(cg, r->hbuf, r->hp, cg->g->nodes[k->n->in[1]].bf16, k->in[1], rec_w_at(cg, P, H, i64c(cg, 0), jn), i64c(cg, P), r->kmax),
                   rg_bias(r, vec, jn));
    }
    LLVMValueRef ng = math_tanh(cg, cg_fadd(cg, rg_load(cg, vec, xp, add64(cg, g, jn)), cg_fmul(cg, rgate, hn)));
    LLVMValueRef hprev = rg_load(cg, vec, r->hbuf, add64(cg, r->hp, j));
    if (!r->h0) hprev = LLVMBuildSelect(cg->B, r->first, rg_const(cg, vec, 0.0), hprev, "");
    h = cg_fadd(cg, cg_fmul(cg, cg_fsub(cg, rg_const(cg, vec, 1.0), zg), ng), cg_fmul(cg, zg, hprev));
  }
  if (vec) vstore(cg, h, k->out, add64(cg, r->ho, j));
  else store_f(cg, h, k->out, add64(cg, r->ho, j));
}

/* Is operand i of n the zero state (the const 0) rather than a buffer? */
static bool rec_zero(CG *cg, const Node *n, int i) {
  const Node *a = &cg->g->nodes[n->in[i]];
  if (a->op != OP_CONST) return false;
  if (a->fval != 0.0) internal_error("%s: an initial state of the const %g", op_info[n->op].text, a->fval);
  return true;
}

void emit_recurrent(Kernel *k) {
  CG *cg = k->cg;
  const Node *n = k->n;
  bool lstm = n->op == OP_LSTM_SEQ;
  bool fast = rec_fast(cg, n);
  bool h0 = !rec_zero(cg, n, rec_h0(n)), c0 = lstm && !rec_zero(cg, n, 3);
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
  LLVMValueRef hbuf = h0 ? LLVMBuildSelect(cg->B, first, k->in[rec_h0(n)], k->out, "") : k->out;
  RecStep st = {step, first, T, H, G, hbuf, h0};
  if (fast) {
    /* at t = 0 from the zero state: no GEMM (a GRU's n part is b_hn alone) */
    LLVMBasicBlockRef gemm = LLVMAppendBasicBlockInContext(cg->C, cg->fn, "rec.gemm");
    LLVMBasicBlockRef whole = LLVMAppendBasicBlockInContext(cg->C, cg->fn, "rec.whole");
    LLVMBasicBlockRef part = LLVMAppendBasicBlockInContext(cg->C, cg->fn, "rec.part");
    LLVMBasicBlockRef gates = LLVMAppendBasicBlockInContext(cg->C, cg->fn, "rec.gates");
    if (h0) LLVMBuildBr(cg->B, gemm);
    else LLVMBuildCondBr(cg->B, first, gates, gemm);
    LLVMPositionBuilderAtEnd(cg->B, gemm);
    /* whole groups of MR sequences register-blocked, then the rest (a
     * batch of 1 is all rest: a GEMV) one at a time */
    int MR = rec_mr(cg);
    LLVMValueRef ngroups = div64(cg, LLVMBuildNSWSub(cg->B, s1, s0, ""), i64c(cg, MR));
    LLVMBuildCondBr(cg->B, LLVMBuildICmp(cg->B, LLVMIntSGT, ngroups, i64c(cg, 0), ""), whole, part);
    LLVMPositionBuilderAtEnd(cg->B, whole);
    rec_step_gemm(k, &st, lstm, MR, 2, s0, ngroups);
    LLVMBuildBr(cg->B, part);
    LLVMPositionBuilderAtEnd(cg->B, part);
    LLVMValueRef seq = loop_begin(cg, &sl, add64(cg, s0, mul64(cg, ngroups, i64c(cg, MR))), s1);
    rec_step_gemm(k, &st, lstm, 1, 4, seq, i64c(cg, 1));
    loop_end(cg, &sl);
    LLVMBuildBr(cg->B, gates);
    LLVMPositionBuilderAtEnd(cg->B, gates);
  }
  LLVMValueRef seq = loop_begin(cg, &sl, s0, s1);
  LLVMValueRef xb = mul64(cg, mul64(cg, seq, T), G), ob = mul64(cg, mul64(cg, seq, T), H);
  LLVMValueRef g = add64(cg, xb, mul64(cg, step, G));
  /* from the zero state, loads that would reach step -1 point at step 0
   * instead and are selected away */
  LLVMValueRef kmax = h0 ? H : LLVMBuildSelect(cg->B, first, i64c(cg, 0), H, "");
  LLVMValueRef prev = LLVMBuildSelect(cg->B, first, i64c(cg, 0), LLVMBuildNSWSub(cg->B, step, i64c(cg, 1), ""), "");
  LLVMValueRef hp = add64(cg, ob, mul64(cg, prev, H));
  LLVMValueRef gp = add64(cg, xb, mul64(cg, prev, G));
  LLVMValueRef at0 = mul64(cg, seq, H);   /* the sequence's row of h0 and c0 */
  if (h0) hp = LLVMBuildSelect(cg->B, first, at0, hp, "");
  LLVMValueRef cbuf = c0 ? LLVMBuildSelect(cg->B, first, k->in[3], k->in[0], "") : k->in[0];
  if (c0) gp = LLVMBuildSelect(cg->B, first, at0, gp, "");
  LLVMValueRef ho = add64(cg, ob, mul64(cg, step, H));
  LLVMValueRef nsum = lstm ? G : mul64(cg, H, i64c(cg, 2));
  LLVMValueRef j;
  if (!fast) {
    j = loop_begin(cg, &jl, i64c(cg, 0), nsum);
    int64_t P = rec_panel(cg, n);
    LLVMValueRef dot = emit_dot_strided(cg, hbuf, hp, cg->g->nodes[k->n->in[1]].bf16, k->in[1], rec_w_at(cg, P, H, i64c(cg, 0), j), i64c(cg, P), kmax);
    LLVMValueRef gj = add64(cg, g, j);
    store_f(cg, cg_fadd(cg, load_f(cg, k->in[0], gj), dot), k->in[0], gj);
    loop_end(cg, &jl);
  }
  RecGates rg = {k, lstm, fast, h0, c0, g, hbuf, hp, cbuf, gp, ho, first, kmax};
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

/* last_step: per sequence (a row), the first H of row T-1 of seq [.., T,
 * W]; at T = 0, where seq holds nothing, the initial state. */
void emit_last_step(Kernel *k) {
  CG *cg = k->cg;
  const Node *n = k->n;
  const Type *s = &cg->g->nodes[n->in[0]].type, *t = &n->type;
  const Node *init = &cg->g->nodes[n->in[1]];
  LLVMValueRef T = dim(cg, s->dims[s->rank - 2]), W = dim(cg, s->dims[s->rank - 1]);
  LLVMValueRef H = dim(cg, t->dims[t->rank - 1]);
  LLVMBasicBlockRef last = LLVMAppendBasicBlockInContext(cg->C, cg->fn, "last.step");
  LLVMBasicBlockRef none = LLVMAppendBasicBlockInContext(cg->C, cg->fn, "last.init");
  LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(cg->C, cg->fn, "last.done");
  LLVMBuildCondBr(cg->B, LLVMBuildICmp(cg->B, LLVMIntSGT, T, i64c(cg, 0), ""), last, none);
  for (int from_init = 0; from_init < 2; from_init++) {
    LLVMPositionBuilderAtEnd(cg->B, from_init ? none : last);
    Loop rl, jl;
    LLVMValueRef row = loop_begin(cg, &rl, k->begin, k->end);
    LLVMValueRef o = mul64(cg, row, H);
    LLVMValueRef src = from_init ? o : mul64(cg, add64(cg, mul64(cg, row, T), LLVMBuildNSWSub(cg->B, T, i64c(cg, 1), "")), W);
    LLVMValueRef j = loop_begin(cg, &jl, i64c(cg, 0), H);
    LLVMValueRef v = !from_init ? load_f(cg, k->in[0], add64(cg, src, j))
                     : init->op == OP_CONST ? cg_f32(cg, init->fval) : load_f(cg, k->in[1], add64(cg, src, j));
    store_f(cg, v, k->out, add64(cg, o, j));
    loop_end(cg, &jl);
    loop_end(cg, &rl);
    LLVMBuildBr(cg->B, done);
  }
  LLVMPositionBuilderAtEnd(cg->B, done);
}
