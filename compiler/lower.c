/* lower.c: checked AST -> graph IR.
 *
 * Needs: a model that check_program accepted (every Expr typed, names
 * resolved, calls mapped to builtins or layers).
 * Guarantees: a verified Graph in topological order, with a node per
 * input and param, and a distinct node per output (outputs that name an
 * input, a param or another output get a COPY). */
#include <math.h>
#include <string.h>

#include "ir.h"

/* An expression lowered already: its node, or for a call each result's. */
typedef struct Lowered {
  const Expr *e;
  int *res;
} Lowered;

typedef struct Lower {
  Graph *g;
  const Model *m;
  int *param_node;    /* per model param, created on first use */
  Vec decl_nodes;     /* pairs (Decl*, node id + 1) */
  Lowered *memo;      /* open addressing by Expr pointer: an expression
                         shared by several uses (a layer array's arguments,
                         the call of `let a, b = f(x)`) is lowered once */
  int memo_cap, memo_len;
} Lower;

static Lowered *memo_slot(Lower *L, const Expr *e) {
  uintptr_t h = ((uintptr_t)e >> 4) * 0x9E3779B97F4A7C15u;
  int i = (int)(h >> 40) & (L->memo_cap - 1);
  while (L->memo[i].e && L->memo[i].e != e) i = (i + 1) & (L->memo_cap - 1);
  return &L->memo[i];
}

static int *memo_find(Lower *L, const Expr *e) {
  if (!L->memo_cap) return NULL;
  Lowered *s = memo_slot(L, e);
  return s->e ? s->res : NULL;
}

static void memo_put(Lower *L, const Expr *e, int *res) {
  if (2 * (L->memo_len + 1) > L->memo_cap) {
    Lowered *old = L->memo;
    int cap = L->memo_cap;
    L->memo_cap = cap ? 2 * cap : 256;
    L->memo = NEW_ARRAY(Lowered, L->memo_cap);
    for (int i = 0; i < cap; i++)
      if (old[i].e) *memo_slot(L, old[i].e) = old[i];
  }
  Lowered *s = memo_slot(L, e);
  if (!s->e) L->memo_len++;
  *s = (Lowered){e, res};
}

/* Every value lowering makes, not only those the source names, stays within
 * the 2^60 elements the checker allows a written type, so that every size
 * attnc computes for it (memplan.c, the scratch plan) fits in int64:
 * AdditiveAttention's [T, S, hidden] and the unfused [H, T, S] scores are
 * bigger than anything the program writes. */
static void check_value_size(Lower *L, Op op, Loc loc, Type t) {
  int64_t n = 1;
  for (int i = 0; i < t.rank; i++)
    if (t.dims[i].sym < 0 && (__builtin_mul_overflow(n, t.dims[i].size, &n) || n > MAX_NUMEL))
      user_error(loc, "this computes an intermediate value %s (op `%s`) of more than 2^60 elements",
                 type_str(L->m, t), op_info[op].text);
}

static int add(Lower *L, Op op, Loc loc, Type t, int a, int b, int c) {
  check_value_size(L, op, loc, t);
  Node n = {0};
  n.op = op;
  n.loc = loc;
  n.type = t;
  int ins[3] = {a, b, c};
  for (int k = 0; k < 3 && ins[k] >= 0; k++) n.in[n.nin++] = ins[k];
  return ir_add(L->g, n);
}

static int add_const(Lower *L, Loc loc, double v) {
  Type t = {DT_F32, 0, {{0}}};
  int id = add(L, OP_CONST, loc, t, -1, -1, -1);
  L->g->nodes[id].fval = v;
  return id;
}

static int param_node(Lower *L, int p) {
  if (L->param_node[p] < 0) {
    int id = add(L, OP_PARAM, L->m->params[p].loc, L->m->params[p].type, -1, -1, -1);
    L->g->nodes[id].index = p;
    L->param_node[p] = id;
  }
  return L->param_node[p];
}

static void bind_decl(Lower *L, Decl *d, int node) {
  vec_push(&L->decl_nodes, d);
  vec_push(&L->decl_nodes, (void *)(intptr_t)(node + 1));
}

static int decl_node(Lower *L, Decl *d) {
  for (int i = 0; i < L->decl_nodes.len; i += 2)
    if (L->decl_nodes.items[i] == d) return (int)(intptr_t)L->decl_nodes.items[i + 1] - 1;
  internal_error("declaration `%s` used before it was lowered", d->name);
}

/* Type of x with one axis removed. */
static Type drop_axis(Type t, int axis) {
  for (int i = axis; i + 1 < t.rank; i++) t.dims[i] = t.dims[i + 1];
  t.rank--;
  return t;
}

static int lower_expr(Lower *L, Expr *e);
static int lower_expr1(Lower *L, Expr *e);

static int reduce(Lower *L, Op op, Expr *e, int x) {
  Type t = L->g->nodes[x].type;
  if (e->axis >= 0) {
    int id = add(L, op, e->loc, e->type, x, -1, -1);
    L->g->nodes[id].axis = e->axis;
    return id;
  }
  /* Over every axis: one axis at a time.  Equal counts per step make the
   * mean of means the mean, and the max of maxes the max. */
  while (t.rank > 0) {
    t = drop_axis(t, 0);
    x = add(L, op, e->loc, t, x, -1, -1);
    L->g->nodes[x].axis = 0;
  }
  return x;
}


/* ---- helpers for the layers built from several ops ---------------------- */
static Type type_of(Lower *L, int id) { return L->g->nodes[id].type; }

static Type make_type(int rank, const Dim *dims) {
  Type t = {DT_F32, rank, {{0}}};
  for (int i = 0; i < rank; i++) t.dims[i] = dims[i];
  return t;
}

static Dim fixed(int64_t n) { return (Dim){n, -1}; }

/* The operand's memory seen with type t, from row `start` of its first
 * dim: a reshape (start 0) or a slice of rows; no copy. */
static int view(Lower *L, Loc loc, int x, Type t, int64_t start) {
  int id = add(L, OP_VIEW, loc, t, x, -1, -1);
  L->g->nodes[id].start = start;
  return id;
}

/* t with a dim of size 1 inserted before position pos. */
static Type insert_one(Type t, int pos) {
  if (t.rank >= MAX_RANK) internal_error("rank too high to insert a dim");
  for (int i = t.rank; i > pos; i--) t.dims[i] = t.dims[i - 1];
  t.dims[pos] = fixed(1);
  t.rank++;
  return t;
}

/* NumPy broadcast of two shapes' leading (batch) dims: a and b without
 * their last `keep` dims. */
static int broadcast_batch(Type a, Type b, int keep, Dim *out) {
  int na = a.rank - keep, nb = b.rank - keep, n = na > nb ? na : nb;
  for (int i = 0; i < n; i++) {
    int ia = i - (n - na), ib = i - (n - nb);
    Dim da = ia >= 0 ? a.dims[ia] : fixed(1), db = ib >= 0 ? b.dims[ib] : fixed(1);
    out[i] = (da.sym < 0 && da.size == 1) ? db : da;
  }
  return n;
}

/* x @ W^T for a weight W [out, in] as PyTorch stores it.  W^T is made
 * explicit, once per call: the GEMM kernel then reads B as [K, N] rows,
 * which it packs with vector copies (a transposed B would need a
 * transposing pack per task). */
static int matmul_wt(Lower *L, Loc loc, Type t, int x, int w) {
  Type tw = type_of(L, w);
  Dim d0 = tw.dims[tw.rank - 2];
  tw.dims[tw.rank - 2] = tw.dims[tw.rank - 1];
  tw.dims[tw.rank - 1] = d0;
  int wt = add(L, OP_TRANSPOSE, loc, tw, w, -1, -1);
  return add(L, OP_MATMUL, loc, t, x, wt, -1);
}

/* x @ W^T (+ b): a Linear with W as PyTorch stores it, [out, in]. */
static int linear(Lower *L, Loc loc, int x, int w, int b) {
  Type t = type_of(L, x);
  t.dims[t.rank - 1] = type_of(L, w).dims[0];
  int y = matmul_wt(L, loc, t, x, w);
  if (b >= 0) y = add(L, OP_ADD, loc, t, y, b, -1);
  return y;
}

/* softmax(q @ k^T * scale + mask) @ v over the last two dims, with rows
 * whose keys are all masked giving zeros; scores where pad (if >= 0, a
 * key padding mask [.., 1, S]) is nonzero are -inf; *probs (if not NULL)
 * gets the softmax. */
static int attention_core(Lower *L, Loc loc, int q, int k, int v, int mask, int pad, bool causal, bool causal_lr,
                          double scale, int *probs) {
  Type tq = type_of(L, q), tk = type_of(L, k), tv = type_of(L, v);
  Dim d[MAX_RANK];
  int nb = broadcast_batch(tq, tk, 2, d);
  d[nb] = tq.dims[tq.rank - 2];
  d[nb + 1] = tk.dims[tk.rank - 2];
  Type ts = make_type(nb + 2, d);
  int s = add(L, OP_MATMUL, loc, ts, q, k, -1);
  L->g->nodes[s].tb = true;
  s = add(L, OP_MUL, loc, ts, s, add_const(L, loc, scale), -1);
  if (mask >= 0) s = add(L, OP_ADD, loc, ts, s, mask, -1);
  if (pad >= 0) {
    s = add(L, OP_FILL, loc, ts, s, pad, -1);
    L->g->nodes[s].fval = -INFINITY;
  }
  int p = add(L, OP_SOFTMAX, loc, ts, s, -1, -1);
  Node *pn = &L->g->nodes[p];
  pn->axis = ts.rank - 1;
  pn->causal = causal;
  pn->causal_lr = causal_lr;
  pn->safe = true;
  if (probs) *probs = p;
  nb = broadcast_batch(ts, tv, 2, d);
  d[nb] = ts.dims[ts.rank - 2];
  d[nb + 1] = tv.dims[tv.rank - 1];
  return add(L, OP_MATMUL, loc, make_type(nb + 2, d), p, v, -1);
}

/* [.., T, H*dh] -> [.., H, T, dh] */
static int split_heads(Lower *L, Loc loc, int x, int64_t heads) {
  Type t = type_of(L, x);
  if (t.rank + 1 > MAX_RANK) user_error(loc, "splitting heads of %s needs rank %d; at most %d is supported",
                                        type_str(L->m, t), t.rank + 1, MAX_RANK);
  Dim D = t.dims[t.rank - 1];
  Type v = t;
  v.rank++;
  v.dims[t.rank - 1] = fixed(heads);
  v.dims[t.rank] = fixed(D.size / heads);
  x = view(L, loc, x, v, 0);
  Type s = v;
  s.dims[v.rank - 3] = v.dims[v.rank - 2];
  s.dims[v.rank - 2] = v.dims[v.rank - 3];
  return add(L, OP_SWAP_HEADS, loc, s, x, -1, -1);
}

/* [.., H, T, dh] -> [.., T, H*dh] */
static int merge_heads(Lower *L, Loc loc, int x) {
  Type t = type_of(L, x);
  Type s = t;
  s.dims[t.rank - 3] = t.dims[t.rank - 2];
  s.dims[t.rank - 2] = t.dims[t.rank - 3];
  x = add(L, OP_SWAP_HEADS, loc, s, x, -1, -1);
  Type m = s;
  m.rank--;
  m.dims[m.rank - 1] = fixed(t.dims[t.rank - 3].size * t.dims[t.rank - 1].size);
  return view(L, loc, x, m, 0);
}

/* MultiheadAttention: attn_output, and attn_weights, the attention
 * probabilities averaged over the heads (PyTorch's need_weights=True).  An
 * unused weights node goes in dead-code elimination, and the attention
 * fuses; a used one keeps the probabilities, and fusion says why not. */
static void lower_mha(Lower *L, Expr *e, Decl *layer, int *res) {
  int q = lower_expr(L, e->operand[0]), k = lower_expr(L, e->operand[1]), v = lower_expr(L, e->operand[2]);
  int64_t d = layer->largs[0], heads = layer->largs[1];
  int p = layer->param0;
  int w = param_node(L, p++);
  int b = layer->bias ? param_node(L, p++) : -1;
  int wo = param_node(L, p++);
  int bo = layer->bias ? param_node(L, p++) : -1;
  int ids[3] = {q, k, v};
  for (int i = 0; i < 3; i++) {
    /* in_proj_weight holds W_q, W_k, W_v one under the other. */
    Dim sq[2] = {fixed(d), fixed(d)};
    int wi = view(L, e->loc, w, make_type(2, sq), i * d);
    int bi = b >= 0 ? view(L, e->loc, b, make_type(1, sq), i * d) : -1;
    ids[i] = linear(L, e->loc, ids[i], wi, bi);
    if (i > 0 && e->past_key) {
      /* the cache form: the cache is the past rows, then the new ones */
      int past = lower_expr(L, i == 1 ? e->past_key : e->past_value);
      Type ct = e->rtypes[i];
      ids[i] = add(L, OP_CONCAT, e->loc, ct, past, ids[i], -1);
      L->g->nodes[ids[i]].axis = ct.rank - 2;
      res[i] = ids[i];
    }
    ids[i] = split_heads(L, e->loc, ids[i], heads);
  }
  int mask = -1;
  if (e->mask) {
    mask = lower_expr(L, e->mask);
    /* a mask with batch dims applies to every head */
    Type mt = type_of(L, mask);
    if (mt.rank > 2) mask = view(L, e->loc, mask, insert_one(mt, mt.rank - 2), 0);
  }
  int pad = -1;
  if (e->pad_mask) {
    /* [.., S] hides key j from every query and head: [.., 1, 1, S] */
    pad = lower_expr(L, e->pad_mask);
    Type pt = type_of(L, pad);
    pt = insert_one(pt, pt.rank - 1);
    pad = view(L, e->loc, pad, insert_one(pt, pt.rank - 2), 0);
  }
  int probs;
  int o = attention_core(L, e->loc, ids[0], ids[1], ids[2], mask, pad, e->causal, e->causal_lr, e->fval, &probs);
  res[0] = linear(L, e->loc, merge_heads(L, e->loc, o), wo, bo);
  if (e->past_key) return;
  int w8 = add(L, OP_MEAN, e->loc, e->rtypes[1], probs, -1, -1);
  L->g->nodes[w8].axis = type_of(L, probs).rank - 3;
  res[1] = w8;
}

/* AdditiveAttention: the context, and the weights (the softmax). */
static void lower_additive(Lower *L, Expr *e, Decl *layer, int *res) {
  int q = lower_expr(L, e->operand[0]), k = lower_expr(L, e->operand[1]);
  /* without values= the checker passes the keys' expression again */
  int v = e->noperands > 2 && e->operand[2] != e->operand[1] ? lower_expr(L, e->operand[2]) : k;
  int wq = param_node(L, layer->param0), wk = param_node(L, layer->param0 + 1), vv = param_node(L, layer->param0 + 2);
  int qp = linear(L, e->loc, q, wq, -1), kp = linear(L, e->loc, k, wk, -1);
  Type tq = type_of(L, qp), tk = type_of(L, kp);
  if (tq.rank + 1 > MAX_RANK || tk.rank + 1 > MAX_RANK)
    user_error(e->loc, "`%s` over rank-%d inputs needs rank %d inside; at most %d is supported", layer->name,
               tq.rank, tq.rank + 2, MAX_RANK);
  /* score[.., i, j] = v . tanh(Wq q_i + Wk k_j): broadcast [.., T, 1, h] + [.., 1, S, h] */
  int qe = view(L, e->loc, qp, insert_one(tq, tq.rank - 1), 0);
  int ke = view(L, e->loc, kp, insert_one(tk, tk.rank - 2), 0);
  Type te = type_of(L, qe), tke = type_of(L, ke);
  Dim d[MAX_RANK];
  int nb = broadcast_batch(te, tke, 0, d);
  Type tsum = make_type(nb, d);
  int t = add(L, OP_TANH, e->loc, tsum, add(L, OP_ADD, e->loc, tsum, qe, ke, -1), -1, -1);
  Type ts = tsum;
  ts.rank--;
  int s = add(L, OP_MATMUL, e->loc, ts, t, vv, -1);
  int p = add(L, OP_SOFTMAX, e->loc, ts, s, -1, -1);
  L->g->nodes[p].axis = ts.rank - 1;
  res[0] = add(L, OP_MATMUL, e->loc, e->type, p, v, -1);
  res[1] = p;
}

static int stack(Lower *L, Loc loc, Type t, const int *ids, int n);

/* LSTM, GRU and their cells: res gets PyTorch's results (recurrent.c in
 * lang/).  A cell is one layer over a sequence of length 1.  Each layer's
 * initial state is row l of the given h0 (c0), or the const 0; its last
 * state is a `last_step`: the last row of the layer's output (h), or of
 * its gates, where the LSTM kernel leaves c_t; the state at T = 0 is the
 * initial one.  Unused, those nodes go in dead-code elimination. */
static void lower_recurrent(Lower *L, Expr *e, Decl *layer, int *res) {
  bool cell = layer->layer == L_LSTM_CELL || layer->layer == L_GRU_CELL;
  bool lstm = layer->layer == L_LSTM || layer->layer == L_LSTM_CELL;
  int x = lower_expr(L, e->operand[0]);
  int h0 = e->noperands > 1 ? lower_expr(L, e->operand[1]) : -1;
  int c0 = e->noperands > 2 ? lower_expr(L, e->operand[2]) : -1;
  if (cell) x = view(L, e->loc, x, insert_one(type_of(L, x), type_of(L, x).rank - 1), 0);
  int64_t H = layer->largs[1], G = lstm ? 4 : 3, nl = layer->largs[2];
  /* a layer's state [.., H]: the state's type without its layers dim */
  Type ts = e->rtypes[1 % e->nresults];
  if (!cell) ts = drop_axis(ts, 0);
  int *hn = NEW_ARRAY(int, nl), *cn = NEW_ARRAY(int, nl);
  int zero = add_const(L, e->loc, 0.0);
  int p = layer->param0;
  for (int64_t l = 0; l < nl; l++) {
    int w_ih = param_node(L, p++), w_hh = param_node(L, p++);
    int b_ih = layer->bias ? param_node(L, p++) : -1, b_hh = layer->bias ? param_node(L, p++) : -1;
    int hl = h0 < 0 ? zero : cell ? h0 : view(L, e->loc, h0, ts, l);
    int cl = c0 < 0 ? zero : cell ? c0 : view(L, e->loc, c0, ts, l);
    /* The input projection of every step at once, as one GEMM; the
     * recurrence then adds W_hh h_{t-1} step by step. */
    Type tx = type_of(L, x);
    Type tp = tx;
    tp.dims[tp.rank - 1] = fixed(G * H);
    int xp = matmul_wt(L, e->loc, tp, x, w_ih);
    if (b_ih >= 0) xp = add(L, OP_ADD, e->loc, tp, xp, b_ih, -1);
    Type th = tx;
    th.dims[th.rank - 1] = fixed(H);
    /* The recurrence reads W_hh^T in panels of P gate columns,
     * [G / P, H, P]: a step is then h_{t-1} W_hh^T with vectors along the
     * gates, and a panel's rows are P floats apart (the rows of a plain
     * [H, G] transpose, 4H floats apart, fall into the same cache sets
     * when 4H is a power of two).  The kernel takes P from this type. */
    int64_t P = H % 64 == 0 ? 64 : H % 32 == 0 ? 32 : H % 16 == 0 ? 16 : G * H;
    Type tv = make_type(3, (Dim[]){fixed(G * H / P), fixed(P), fixed(H)});
    Type twt = make_type(3, (Dim[]){fixed(G * H / P), fixed(H), fixed(P)});
    int w_hh_t = add(L, OP_TRANSPOSE, e->loc, twt, view(L, e->loc, w_hh, tv, 0), -1, -1);
    int seq;
    if (lstm) {
      /* both LSTM biases add to the gates before any nonlinearity */
      if (b_hh >= 0) xp = add(L, OP_ADD, e->loc, tp, xp, b_hh, -1);
      seq = add(L, OP_LSTM_SEQ, e->loc, th, xp, w_hh_t, hl);
    } else {
      /* GRU's b_hn sits inside r * (W_hn h + b_hn): the kernel adds it */
      seq = add(L, OP_GRU_SEQ, e->loc, th, xp, w_hh_t, b_hh >= 0 ? b_hh : zero);
    }
    Node *sn = &L->g->nodes[seq];
    sn->in[sn->nin++] = lstm ? cl : hl;
    hn[l] = add(L, OP_LAST_STEP, e->loc, ts, seq, hl, seq);
    /* xp's rows hold c_t once the kernel has run: seq orders it after */
    if (lstm) cn[l] = add(L, OP_LAST_STEP, e->loc, ts, xp, cl, seq);
    x = seq;
  }
  if (cell) {
    res[0] = view(L, e->loc, x, e->rtypes[0], 0);
    if (lstm) res[1] = cn[0];
    return;
  }
  res[0] = x;
  res[1] = stack(L, e->loc, e->rtypes[1], hn, (int)nl);
  if (lstm) res[2] = stack(L, e->loc, e->rtypes[2], cn, (int)nl);
}

static int *lower_results(Lower *L, Expr *e);

/* A block's call: its inputs bound to the arguments, its body lowered in
 * place (the inlining blocks.c's per-call copies make possible). */
static void lower_block_call(Lower *L, Expr *e, int *res) {
  BlockCall *bc = e->bcall;
  for (int i = 0; i < bc->ninputs; i++) bind_decl(L, bc->inputs[i], lower_expr(L, bc->args[i]));
  diag_push_context(e->loc, arena_printf("in this call of `%s`, an instance of block `%s`", e->inst_name,
                                         e->decl->block->name));
  for (Decl *d = bc->decls; d; d = d->next) {
    int id = lower_expr(L, d->value);
    Op op = L->g->nodes[id].op;
    if (!L->g->nodes[id].name && op != OP_INPUT && op != OP_PARAM) L->g->nodes[id].name = d->name;
    bind_decl(L, d, id);
  }
  for (int i = 0; i < bc->noutputs; i++) res[i] = decl_node(L, bc->outputs[i]);
  diag_pop_context();
}

/* ids[0..n) stacked along a new first dim into t [n, ...]: each a view with
 * a leading 1, joined by a balanced tree of concats (each element is copied
 * log2(n) times at most). */
static int stack(Lower *L, Loc loc, Type t, const int *ids, int n) {
  if (n == 1) return view(L, loc, ids[0], (t.dims[0] = fixed(1), t), 0);
  int h = n / 2;
  Type ta = t, tb = t;
  ta.dims[0] = fixed(h);
  tb.dims[0] = fixed(n - h);
  int a = stack(L, loc, ta, ids, h), b = stack(L, loc, tb, ids + h, n - h);
  t.dims[0] = fixed(n);
  int id = add(L, OP_CONCAT, loc, t, a, b, -1);
  L->g->nodes[id].axis = 0;
  return id;
}

/* A layer array called as a whole: the instances in turn (each call's
 * first argument is the previous call's first result); the last first
 * result, then each further result stacked over the instances. */
static void lower_scan(Lower *L, Expr *e, int *res) {
  ArrayScan *sc = e->scan;
  int **r = NEW_ARRAY(int *, sc->n);
  for (int i = 0; i < sc->n; i++) r[i] = lower_results(L, sc->calls[i]);
  res[0] = r[sc->n - 1][0];
  int *ids = NEW_ARRAY(int, sc->n);
  for (int k = 1; k < e->nresults; k++) {
    for (int i = 0; i < sc->n; i++) ids[i] = r[i][k];
    res[k] = stack(L, e->loc, e->rtypes[k], ids, sc->n);
  }
}

static int lower_layer_call(Lower *L, Expr *e) {
  Decl *layer = e->decl;
  int x = lower_expr(L, e->operand[0]);
  switch (layer->layer) {
  case L_EMBEDDING:
    return add(L, OP_GATHER, e->loc, e->type, x, param_node(L, layer->param0), -1);
  case L_LINEAR: {
    /* y = x @ W^T + b, with W as PyTorch stores it: [out, in]. */
    int w = param_node(L, layer->param0);
    int y = matmul_wt(L, e->loc, e->type, x, w);
    if (layer->bias) y = add(L, OP_ADD, e->loc, e->type, y, param_node(L, layer->param0 + 1), -1);
    return y;
  }
  case L_LAYERNORM: {
    int y = add(L, OP_LAYERNORM, e->loc, e->type, x, param_node(L, layer->param0),
                param_node(L, layer->param0 + 1));
    L->g->nodes[y].fval = layer->eps;
    return y;
  }
  default:
    user_error(e->loc, "layer `%s` cannot be compiled yet", layer->name);
  }
}

static int lower_call(Lower *L, Expr *e) {
  if (e->decl) return lower_layer_call(L, e);
  switch (e->fn) {
  case B_POSENC:
    return add(L, OP_POSENC, e->loc, e->type, -1, -1, -1);
  case B_ATTENTION: {
    int q = lower_expr(L, e->operand[0]), k = lower_expr(L, e->operand[1]), v = lower_expr(L, e->operand[2]);
    int mask = e->mask ? lower_expr(L, e->mask) : -1;
    return attention_core(L, e->loc, q, k, v, mask, -1, e->causal, e->causal_lr, e->fval, NULL);
  }
  case B_MASKED_FILL: {
    int y = add(L, OP_FILL, e->loc, e->type, lower_expr(L, e->operand[0]), lower_expr(L, e->operand[1]), -1);
    L->g->nodes[y].fval = e->fval;
    return y;
  }
  case B_CONCAT: {
    int a = lower_expr(L, e->operand[0]), b = lower_expr(L, e->operand[1]);
    /* an operand that broadcasts is copied out at the result's shape
     * (its own size along the axis) first: the kernel joins equal shapes */
    for (int k = 0; k < 2; k++) {
      int *x = k ? &b : &a;
      Type want = e->type;
      Type have = type_of(L, *x);
      int at = e->axis - (e->type.rank - have.rank);   /* < 0: in the padding */
      want.dims[e->axis] = at >= 0 ? have.dims[at] : fixed(1);
      if (!type_eq(want, have)) *x = add(L, OP_COPY, e->loc, want, *x, -1, -1);
    }
    int id = add(L, OP_CONCAT, e->loc, e->type, a, b, -1);
    L->g->nodes[id].axis = e->axis;
    return id;
  }
  case B_SPLIT_HEADS: return split_heads(L, e->loc, lower_expr(L, e->operand[0]), e->heads);
  case B_UNSQUEEZE:
  case B_SQUEEZE:
  case B_RESHAPE: {
    /* a view of x's memory; a constant has none, so it is copied out */
    int x = lower_expr(L, e->operand[0]);
    if (L->g->nodes[x].op == OP_CONST) return add(L, OP_COPY, e->loc, e->type, x, -1, -1);
    return view(L, e->loc, x, e->type, 0);
  }
  case B_MERGE_HEADS: return merge_heads(L, e->loc, lower_expr(L, e->operand[0]));
  default: break;
  }
  static const Op unary[] = {
      [B_EXP] = OP_EXP, [B_LOG] = OP_LOG, [B_SQRT] = OP_SQRT, [B_TANH] = OP_TANH,
      [B_SIGMOID] = OP_SIGMOID, [B_RELU] = OP_RELU, [B_GELU] = OP_GELU, [B_SILU] = OP_SILU,
  };
  int x = lower_expr(L, e->operand[0]);
  switch (e->fn) {
  case B_EXP: case B_LOG: case B_SQRT: case B_TANH:
  case B_SIGMOID: case B_RELU: case B_GELU: case B_SILU:
    return add(L, unary[e->fn], e->loc, e->type, x, -1, -1);
  case B_DROPOUT:
    return x;   /* inference only: the identity */
  case B_TRANSPOSE:
    return add(L, OP_TRANSPOSE, e->loc, e->type, x, -1, -1);
  case B_SOFTMAX: {
    int id = add(L, OP_SOFTMAX, e->loc, e->type, x, -1, -1);
    L->g->nodes[id].axis = e->axis;
    return id;
  }
  case B_SUM: return reduce(L, OP_SUM, e, x);
  case B_MEAN: return reduce(L, OP_MEAN, e, x);
  case B_MAX: return reduce(L, OP_MAX, e, x);
  case B_LAYERNORM: {
    int w = lower_expr(L, e->operand[1]);
    int b = lower_expr(L, e->operand[2]);
    int id = add(L, OP_LAYERNORM, e->loc, e->type, x, w, b);
    L->g->nodes[id].fval = e->fval;
    return id;
  }
  default:
    user_error(e->loc, "`%s` cannot be compiled yet", e->name);
  }
}

/* Every result of the call e, lowered once. */
static int *lower_results(Lower *L, Expr *e) {
  int *res = memo_find(L, e);
  if (res) return res;
  res = NEW_ARRAY(int, e->nresults > 1 ? e->nresults : 1);
  if (e->scan) lower_scan(L, e, res);
  else if (e->bcall) lower_block_call(L, e, res);
  else if (e->decl && e->decl->layer == L_MHA) lower_mha(L, e, e->decl, res);
  else if (e->decl && e->decl->layer == L_ADDITIVE) lower_additive(L, e, e->decl, res);
  else if (e->decl && (e->decl->layer == L_LSTM || e->decl->layer == L_GRU || e->decl->layer == L_LSTM_CELL ||
                       e->decl->layer == L_GRU_CELL))
    lower_recurrent(L, e, e->decl, res);
  else res[0] = lower_call(L, e);
  memo_put(L, e, res);
  return res;
}

static int lower_expr(Lower *L, Expr *e) {
  int *done = e->kind != E_CALL ? memo_find(L, e) : NULL;
  if (done) return done[0];
  int id;
  switch (e->kind) {
  case E_CALL:
    return lower_results(L, e)[0];
  case E_RESULT:
    return lower_results(L, e->lhs)[e->index];
  default:
    id = lower_expr1(L, e);
    break;
  }
  int *res = NEW(int);
  *res = id;
  memo_put(L, e, res);
  return id;
}

/* A comparison: f32 1.0/0.0.  An i32 tensor against an integer constant
 * compares exactly: the constant becomes an i32 const (design.md 5.7). */
static int lower_compare(Lower *L, Expr *e) {
  static const Op ops[] = {OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE};
  Expr *x[2] = {e->lhs, e->rhs};
  int id[2];
  for (int k = 0; k < 2; k++) {
    if (x[k]->is_const && x[1 - k]->type.dtype == DT_I32) {
      id[k] = add(L, OP_CONST, x[k]->loc, (Type){DT_I32, 0, {{0}}}, -1, -1, -1);
      L->g->nodes[id[k]].fval = (double)x[k]->ival;
    } else {
      id[k] = lower_expr(L, x[k]);
    }
  }
  return add(L, ops[e->op - BIN_EQ], e->loc, e->type, id[0], id[1], -1);
}

static int lower_expr1(Lower *L, Expr *e) {
  switch (e->kind) {
  case E_NUM:
    return add_const(L, e->loc, e->num);
  case E_NAME:
    if (!e->decl) user_error(e->loc, "symbolic dim `%s` cannot be used as a value", e->name);
    switch (e->decl->kind) {
    case D_CONST: return add_const(L, e->loc, (double)e->decl->ival);
    case D_PARAM: return param_node(L, e->decl->index);
    default: return decl_node(L, e->decl);
    }
  case E_NEG:
    return add(L, OP_NEG, e->loc, e->type, lower_expr(L, e->lhs), -1, -1);
  case E_BINARY: {
    if (binop_is_cmp(e->op)) return lower_compare(L, e);
    int a = lower_expr(L, e->lhs), b = lower_expr(L, e->rhs);
    Op op = e->op == '@' ? OP_MATMUL : e->op == '+' ? OP_ADD : e->op == '-' ? OP_SUB
          : e->op == '*' ? OP_MUL : OP_DIV;
    return add(L, op, e->loc, e->type, a, b, -1);
  }
  case E_INDEX:
    return view(L, e->loc, lower_expr(L, e->lhs), e->type, e->index);
  case E_SLICE: {
    int v = view(L, e->loc, lower_expr(L, e->lhs), e->type, e->index);
    L->g->nodes[v].slice = true;
    return v;
  }
  case E_CALL:
  case E_RESULT:
    break;
  }
  internal_error("unknown expression kind %d", e->kind);
}

/* The model's name becomes C symbols (NAME, NAME_model, ...). */
static void check_c_name(const Model *m) {
  static const char *c_keywords[] = {
      "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else", "enum",
      "extern", "float", "for", "goto", "if", "inline", "int", "long", "register", "restrict", "return",
      "short", "signed", "sizeof", "static", "struct", "switch", "typedef", "union", "unsigned", "void",
      "volatile", "while", "main", NULL};
  for (int i = 0; c_keywords[i]; i++)
    if (!strcmp(m->name, c_keywords[i]))
      user_error(m->name_loc, "model name `%s` cannot be used: it is reserved in C", m->name);
  if (!strncmp(m->name, "attnrt_", 7))
    user_error(m->name_loc, "model name `%s` cannot be used: names starting with `attnrt_` belong to the runtime",
               m->name);
}

Graph *lower_model(const Model *m) {
  check_c_name(m);
  if (m->nsyms > MAX_SYMS)
    user_error(m->name_loc, "model `%s` has %d symbolic dims; at most %d are supported", m->name, m->nsyms, MAX_SYMS);
  Graph *g = NEW(Graph);
  g->model = m;
  Lower L = {.g = g, .m = m};
  L.param_node = NEW_ARRAY(int, m->nparams + 1);
  for (int i = 0; i < m->nparams; i++) L.param_node[i] = -1;
  g->outputs = NEW_ARRAY(int, m->noutputs + 1);

  for (Decl *d = m->decls; d; d = d->next) {
    switch (d->kind) {
    case D_INPUT: {
      int id = add(&L, OP_INPUT, d->name_loc, d->type, -1, -1, -1);
      g->nodes[id].index = d->index;
      bind_decl(&L, d, id);
      break;
    }
    case D_LET: case D_OUTPUT: {
      int id = lower_expr(&L, d->value);
      Op op = g->nodes[id].op;
      if (d->kind == D_OUTPUT) {
        /* An output owns its buffer: copy values that live elsewhere. */
        bool taken = op == OP_INPUT || op == OP_PARAM || op == OP_CONST || op == OP_VIEW;
        for (int k = 0; k < g->noutputs; k++) taken |= g->outputs[k] == id;
        if (taken) id = add(&L, OP_COPY, d->value->loc, d->type, id, -1, -1);
        g->outputs[g->noutputs++] = id;
      }
      if (!g->nodes[id].name && op != OP_INPUT && op != OP_PARAM) g->nodes[id].name = d->name;
      bind_decl(&L, d, id);
      break;
    }
    default:
      break;
    }
  }
  ir_count_uses(g);
  ir_verify(g, "lowering");
  return g;
}
