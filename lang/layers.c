/* layers.c: the built-in layers (docs/language.md section 7): the params a
 * `layer` declaration owns, with PyTorch's names and shapes, and the shape
 * rules of a call; and the attention shape rules that attention(),
 * MultiheadAttention and AdditiveAttention share.
 *
 * Needs: check.c for expressions, arguments and sizes; blocks.c for
 * blocks and layer arrays; recurrent.c for LSTM, GRU and their cells.
 * Guarantees: a checked layer declaration has its kind, its compile-time
 * arguments and its params (param0, nparams); a checked call has its
 * operands, type and results. */
#include <math.h>
#include <string.h>

#include "checker.h"

/* Layer constructors. */
static const char *const layer_names[] = {
    [L_LINEAR] = "Linear", [L_LAYERNORM] = "LayerNorm", [L_EMBEDDING] = "Embedding", [L_LSTM] = "LSTM",
    [L_GRU] = "GRU", [L_LSTM_CELL] = "LSTMCell", [L_GRU_CELL] = "GRUCell", [L_MHA] = "MultiheadAttention",
    [L_ADDITIVE] = "AdditiveAttention",
};

const char *layer_type_name(LayerKind k) { return layer_names[k]; }

LayerKind find_layer(const char *name) {
  for (int k = L_LINEAR; k <= L_ADDITIVE; k++)
    if (strcmp(layer_names[k], name) == 0) return (LayerKind)k;
  return L_NONE;
}

/* ---- attention: shared by attention(), MultiheadAttention and
 * AdditiveAttention ------------------------------------------------------- */

/* Is `x` the mask `causal` or `causal_lower_right` (and not a declared
 * name that shadows it)? */
bool is_causal(Checker *c, Expr *x) {
  return x->kind == E_NAME && (strcmp(x->name, "causal") == 0 || strcmp(x->name, "causal_lower_right") == 0) &&
         !table_find(&c->names, x->name);
}

Dim last_dim(Type t) { return t.dims[t.rank - 1]; }

/* q, k, v (x[0..3), called names[0..3) in messages) of the attention
 * `fname` must have rank 2 to maxrank: [..., T, dq], [..., S, dk],
 * [..., S, dv]. */
void check_attention_ranks(Checker *c, const char *fname, const char *const names[3], Expr *const x[3],
                           int maxrank) {
  for (int i = 0; i < 3; i++)
    if (x[i]->type.rank < 2 || x[i]->type.rank > maxrank)
      user_error(x[i]->loc, "`%s` takes `%s` of rank 2 to %d ([..., %s, dim]), got %s", fname, names[i], maxrank,
                 i == 0 ? "T" : "S", type_str(c->m, x[i]->type));
}

/* The rest of the shape rules of an attention (after its ranks and last
 * dims are checked): k and v have the same number of keys S, and the batch
 * dims of q, k and v broadcast.  Returns the scores' shape [..., T, S]. */
Type attention_scores(Checker *c, Expr *call, const char *fname, const char *const names[3],
                      Expr *const x[3]) {
  Type q = x[0]->type, k = x[1]->type, v = x[2]->type;
  Dim sk = k.dims[k.rank - 2], sv = v.dims[v.rank - 2];
  if (!dim_eq(sk, sv))
    user_error(x[2]->loc, "shape mismatch in `%s`: `%s` is %s but `%s` is %s: the key counts %s and %s differ", fname,
               names[1], type_str(c->m, k), names[2], type_str(c->m, v), dim_str(c->m, sk), dim_str(c->m, sv));
  /* Pairwise compatible batch dims broadcast together. */
  static const int pairs[3][2] = {{0, 1}, {0, 2}, {1, 2}};
  for (int p = 0; p < 3; p++) {
    Type a = x[pairs[p][0]]->type, b = x[pairs[p][1]]->type;
    Dim out[MAX_RANK], da, db;
    int r;
    if (!broadcast(a.dims, a.rank - 2, b.dims, b.rank - 2, out, &r, &da, &db))
      user_error(call->loc, "shape mismatch in `%s`: `%s` is %s but `%s` is %s: batch dims %s and %s differ", fname,
                 names[pairs[p][0]], type_str(c->m, a), names[pairs[p][1]], type_str(c->m, b), dim_str(c->m, da),
                 dim_str(c->m, db));
  }
  Type s = {DT_F32, 0, {{0}}}, qk = s;
  Dim da, db;
  broadcast(q.dims, q.rank - 2, k.dims, k.rank - 2, qk.dims, &qk.rank, &da, &db);
  broadcast(qk.dims, qk.rank, v.dims, v.rank - 2, s.dims, &s.rank, &da, &db);
  s.dims[s.rank++] = q.dims[q.rank - 2];
  s.dims[s.rank++] = sk;
  return s;
}

/* mask= of the attention `fname` (NULL: none): `causal`, or an f32 tensor
 * that broadcasts to the scores' shape. */
void check_mask(Checker *c, Expr *call, const char *fname, Expr *mask, Type scores) {
  if (!mask) return;
  if (is_causal(c, mask)) {
    /* causal_lower_right (design.md 5.3, 5.7): query i sees keys 0 .. i +
     * S - T, so that with a cache each new query sees the earlier ones */
    mask->type = scalar();
    call->causal = true;
    call->causal_lr = strcmp(mask->name, "causal_lower_right") == 0;
    return;
  }
  check_expr(c, mask);
  if (mask->type.dtype != DT_F32)
    user_error(mask->loc, "`mask` of `%s` is added to the scores and must be f32, got %s (to hide the keys where an "
               "i32 mask is nonzero, use `masked_fill(scores, m, -inf)` before softmax, or key_padding_mask=)",
               fname, type_str(c->m, mask->type));
  Type b = {DT_F32, 0, {{0}}};
  Dim da, db;
  if (!broadcast(mask->type.dims, mask->type.rank, scores.dims, scores.rank, b.dims, &b.rank, &da, &db) ||
      !type_eq(b, scores))
    user_error(mask->loc, "shape mismatch in `mask` of `%s`: %s does not broadcast to the scores' shape %s", fname,
               type_str(c->m, mask->type), type_str(c->m, scores));
  call->mask = mask;
}

/* key_padding_mask= of MultiheadAttention `fname` (NULL: none): f32 or i32
 * [..., S], nonzero hiding a key from every query (PyTorch's bool mask);
 * its batch dims broadcast to the scores' [..., T, S]. */
static void check_key_padding_mask(Checker *c, Expr *call, const char *fname, Expr *m, Type scores) {
  if (!m) return;
  check_expr(c, m);
  Type t = m->type;
  Dim S = scores.dims[scores.rank - 1];
  if (t.rank == 0 || t.rank >= MAX_RANK || !dim_eq(last_dim(t), S))
    user_error(m->loc, "shape mismatch in `key_padding_mask` of `%s`: expected [..., %s], one entry per key, got %s",
               fname, dim_str(c->m, S), type_str(c->m, t));
  /* as [..., 1, S] against the scores */
  Type v = t;
  v.dims[v.rank] = S;
  v.dims[v.rank - 1] = fixed(1);
  v.rank++;
  Type b = {DT_F32, 0, {{0}}};
  Dim da, db;
  if (!broadcast(v.dims, v.rank, scores.dims, scores.rank, b.dims, &b.rank, &da, &db) || !type_eq(b, scores))
    user_error(m->loc, "shape mismatch in `key_padding_mask` of `%s`: %s does not broadcast to the batch dims of "
               "the scores %s", fname, type_str(c->m, t), type_str(c->m, scores));
  call->pad_mask = m;
}

/* MultiheadAttention's cache form (design.md 5.2): past_key= and
 * past_value= (both or neither) are the projected keys and values of P
 * earlier positions, heads merged, [..., P, d] with the batch dims of key
 * and value exactly; the results are attn_output, key_cache = concat(pk,
 * k @ Wk^T + bk, axis=-2) [..., P+S, d] and value_cache likewise. */
static void check_mha_cache(Checker *c, Expr *e, const char *fname, Expr *pk, Expr *pv, Expr *const x[3]) {
  if (!pk || !pv)
    user_error((pk ? pk : pv)->loc, "`%s` takes past_key= and past_value= together (the cache form)", fname);
  Expr *past[2] = {pk, pv};
  static const char *const names[2] = {"past_key", "past_value"};
  Dim P = {0, -1};
  e->nresults = 3;
  e->rtypes = NEW_ARRAY(Type, 3);
  for (int i = 0; i < 2; i++) {
    check_expr(c, past[i]);
    need_f32(c, past[i]->loc, fname, past[i]->type);
    Type want = x[i + 1]->type, got = past[i]->type;
    bool ok = got.rank == want.rank && dim_eq(last_dim(got), last_dim(want));
    for (int a = 0; ok && a < want.rank - 2; a++) ok = dim_eq(got.dims[a], want.dims[a]);
    if (ok && i == 1) ok = dim_eq(got.dims[got.rank - 2], P);
    if (!ok) {
      want.dims[want.rank - 2] = i == 1 ? P : (Dim){0, -2};
      const char *w = i == 1 ? type_str(c->m, want)
                             : arena_printf("[..., P, %s] with the batch dims of `key`, %s",
                                            dim_str(c->m, last_dim(want)), type_str(c->m, x[1]->type));
      user_error(past[i]->loc, "shape mismatch in `%s` of `%s`: expected %s, got %s", names[i], fname, w,
                 type_str(c->m, got));
    }
    P = got.dims[got.rank - 2];
    Type cache = x[i + 1]->type;
    cache.dims[cache.rank - 2] = dim_sum(c, P, cache.dims[cache.rank - 2], 1, past[i]->loc, "the cache's length");
    e->rtypes[i + 1] = cache;
  }
  e->past_key = pk;
  e->past_value = pv;
  static const char *const rnames[] = {"attn_output", "key_cache", "value_cache"};
  e->rnames = (const char **)rnames;
}

/* ---- layer calls ----------------------------------------------------------- */

void check_layer_call(Checker *c, Expr *e, Decl *layer) {
  if (layer->nelems && !e->callee_index) {
    check_scan(c, e, layer);
    return;
  }
  if (e->callee_index) layer = array_element(c, e, layer);
  const char *name = layer->name;
  e->decl = layer;
  switch (layer->layer) {
  case L_BLOCK:
    check_block_call(c, e, layer);
    return;
  case L_LSTM:
  case L_GRU:
  case L_LSTM_CELL:
  case L_GRU_CELL:
    check_recurrent_call(c, e, layer);
    return;
  case L_LINEAR:
  case L_LAYERNORM: {
    static const char *const params[] = {"x"};
    Expr *args[1];
    bind_args(e, name, params, 1, 1, args);
    Expr *x = operand(c, e, name, args[0]);
    Type t = x->type;
    int64_t in = layer->largs[0];  /* Linear(in, out), LayerNorm(d) */
    if (t.rank == 0 || !dim_eq(last_dim(t), fixed(in)))
      user_error(x->loc, "shape mismatch in `%s`: expected last dim %lld, got %s", name, (long long)in,
                 type_str(c->m, t));
    if (layer->layer != L_LAYERNORM) t.dims[t.rank - 1] = fixed(layer->largs[1]);
    e->type = t;
    return;
  }
  case L_EMBEDDING: {
    static const char *const params[] = {"ids"};
    Expr *args[1];
    bind_args(e, name, params, 1, 1, args);
    Expr *x = args[0];
    check_expr(c, x);
    e->operand[e->noperands++] = x;
    Type t = x->type;
    if (t.dtype != DT_I32)
      user_error(x->loc, "`%s` is an Embedding: it takes i32 ids, got %s", name, type_str(c->m, t));
    if (t.rank >= MAX_RANK)
      user_error(x->loc, "`%s` takes ids of rank %d at most (the embedding adds a dim), got %s", name, MAX_RANK - 1,
                 type_str(c->m, t));
    t.dtype = DT_F32;
    t.dims[t.rank++] = fixed(layer->largs[1]);
    e->type = t;
    return;
  }
  case L_MHA: {
    static const char *const params[] = {"query", "key", "value", "mask", "key_padding_mask", "past_key",
                                         "past_value"};
    Expr *args[7];
    bind_args(e, name, params, 7, 3, args);
    Expr *x[3];
    for (int i = 0; i < 3; i++) x[i] = operand(c, e, name, args[i]);
    /* the heads take a dim inside: rank 3 at most */
    check_attention_ranks(c, name, params, x, MAX_RANK - 1);
    int64_t d = layer->largs[0];
    for (int i = 0; i < 3; i++)
      if (!dim_eq(last_dim(x[i]->type), fixed(d)))
        user_error(x[i]->loc, "shape mismatch in `%s`: expected `%s` with last dim %lld, got %s", name, params[i],
                   (long long)d, type_str(c->m, x[i]->type));
    Type s = attention_scores(c, e, name, params, x);
    if (args[5] || args[6]) {
      check_mha_cache(c, e, name, args[5], args[6], x);
      /* the attention runs over the P cached keys and the S new ones */
      s.dims[s.rank - 1] = e->rtypes[1].dims[e->rtypes[1].rank - 2];
    }
    check_mask(c, e, name, args[3], s);
    check_key_padding_mask(c, e, name, args[4], s);
    e->fval = 1.0 / sqrt((double)(d / layer->largs[1]));
    if (e->past_key) {
      s.dims[s.rank - 1] = fixed(d);
      e->type = e->rtypes[0] = s;
      return;
    }
    /* attn_output, then attn_weights [..., T, S] averaged over the heads */
    e->nresults = 2;
    e->rtypes = NEW_ARRAY(Type, 2);
    e->rtypes[1] = s;
    static const char *const rnames[] = {"attn_output", "attn_weights"};
    e->rnames = (const char **)rnames;
    s.dims[s.rank - 1] = fixed(d);
    e->type = e->rtypes[0] = s;
    return;
  }
  case L_ADDITIVE: {
    static const char *const params[] = {"query", "keys", "values"};
    Expr *args[3];
    bind_args(e, name, params, 3, 2, args);
    Expr *x[3];
    x[0] = operand(c, e, name, args[0]);
    x[1] = operand(c, e, name, args[1]);
    if (args[2]) x[2] = operand(c, e, name, args[2]);
    else e->operand[e->noperands++] = x[2] = x[1];  /* values default to the keys */
    /* the scores take an extra dim inside: rank 3 at most */
    check_attention_ranks(c, name, params, x, MAX_RANK - 1);
    for (int i = 0; i < 2; i++)
      if (!dim_eq(last_dim(x[i]->type), fixed(layer->largs[i])))
        user_error(x[i]->loc, "shape mismatch in `%s`: expected `%s` with last dim %lld, got %s", name, params[i],
                   (long long)layer->largs[i], type_str(c->m, x[i]->type));
    Type s = attention_scores(c, e, name, params, x);
    /* context, then the weights [..., T, S] */
    e->nresults = 2;
    e->rtypes = NEW_ARRAY(Type, 2);
    e->rtypes[1] = s;
    static const char *const rnames[] = {"context", "weights"};
    e->rnames = (const char **)rnames;
    s.dims[s.rank - 1] = last_dim(x[2]->type);
    e->type = e->rtypes[0] = s;
    return;
  }
  case L_NONE:
    break;
  }
  internal_error("layer `%s` has no kind", name);
}

/* ---- layer declarations ---------------------------------------------------- */

void add_param(Checker *c, const char *name, Type t, Loc loc) {
  if (c->params->len == MAX_PARAMS)
    user_error(loc, "too many params: a model has at most %d", MAX_PARAMS);
  Param *p = NEW(Param);
  p->name = name;
  p->type = t;
  p->loc = loc;
  check_size(c, loc, t);
  vec_push(c->params, p);
}

bool layer_bool(Expr *arg, const char *param, const char *layer) {
  if (arg->kind == E_NAME && strcmp(arg->name, "true") == 0) return true;
  if (arg->kind == E_NAME && strcmp(arg->name, "false") == 0) return false;
  user_error(arg->loc, "argument `%s` of `%s` must be `true` or `false`", param, layer);
}

/* a * b for a param's dim; d's params would be too large if it is more
 * than MAX_NUMEL. */
int64_t param_dim(Decl *d, int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r) || r > MAX_NUMEL)
    user_error(d->name_loc, "the params of `%s` would be too large (more than 2^60 elements)", d->name);
  return r;
}

void check_layer_decl(Checker *c, Decl *d) {
  Expr *e = d->value;
  if (e->kind != E_CALL || e->callee_index)
    user_error(e->loc, "expected a layer such as `Linear(in, out)` after `layer %s =`", d->local ? d->local : d->name);
  if (d->count) {
    check_layer_array(c, d);
    return;
  }
  d->layer = find_layer(e->name);
  if (d->layer == L_NONE) {
    Block *b = find_block(c, e->name, e->loc);
    if (!b) user_error(e->loc, "unknown layer `%s`%s", e->name, did_you_mean(c, e->name, false));
    check_block_instance(c, d, b);
    return;
  }
  const char *lname = layer_names[d->layer];
  d->param0 = c->params->len;
  Expr *args[4];
#define PARAM(T, ...) add_param(c, arena_printf(__VA_ARGS__), T, d->name_loc)
  switch (d->layer) {
  case L_LINEAR: {
    static const char *const params[] = {"in", "out", "bias"};
    bind_args(e, lname, params, 3, 2, args);
    int64_t in = d->largs[0] = positive_arg(c, args[0], "in", lname);
    int64_t out = d->largs[1] = positive_arg(c, args[1], "out", lname);
    d->bias = args[2] ? layer_bool(args[2], "bias", lname) : true;
    PARAM(((Type){DT_F32, 2, {fixed(out), fixed(in)}}), "%s.weight", d->name);
    if (d->bias) PARAM(((Type){DT_F32, 1, {fixed(out)}}), "%s.bias", d->name);
    break;
  }
  case L_LAYERNORM: {
    static const char *const params[] = {"d", "eps"};
    bind_args(e, lname, params, 2, 1, args);
    d->largs[0] = positive_arg(c, args[0], "d", lname);
    d->eps = args[1] ? eval_number(c, args[1], "`eps`") : 1e-5;
    if (!(d->eps > 0) || isinf(d->eps)) user_error(args[1]->loc, "`eps` must be a positive number, got %g", d->eps);
    Type t = {DT_F32, 1, {fixed(d->largs[0])}};
    PARAM(t, "%s.weight", d->name);
    PARAM(t, "%s.bias", d->name);
    break;
  }
  case L_EMBEDDING: {
    static const char *const params[] = {"n", "d"};
    bind_args(e, lname, params, 2, 2, args);
    int64_t n = d->largs[0] = positive_arg(c, args[0], "n", lname);
    int64_t dim = d->largs[1] = positive_arg(c, args[1], "d", lname);
    PARAM(((Type){DT_F32, 2, {fixed(n), fixed(dim)}}), "%s.weight", d->name);
    break;
  }
  case L_LSTM:
  case L_GRU:
  case L_LSTM_CELL:
  case L_GRU_CELL:
    check_recurrent_decl(c, d);
    break;
  case L_MHA: {
    static const char *const params[] = {"d", "heads", "bias"};
    bind_args(e, lname, params, 3, 2, args);
    int64_t dim = d->largs[0] = positive_arg(c, args[0], "d", lname);
    int64_t heads = d->largs[1] = positive_arg(c, args[1], "heads", lname);
    if (dim % heads)
      user_error(args[1]->loc, "`%s` cannot have %lld heads: `d` = %lld is not divisible by %lld", lname,
                 (long long)heads, (long long)dim, (long long)heads);
    d->bias = args[2] ? layer_bool(args[2], "bias", lname) : true;
    int64_t d3 = param_dim(d, 3, dim);
    PARAM(((Type){DT_F32, 2, {fixed(d3), fixed(dim)}}), "%s.in_proj_weight", d->name);
    if (d->bias) PARAM(((Type){DT_F32, 1, {fixed(d3)}}), "%s.in_proj_bias", d->name);
    PARAM(((Type){DT_F32, 2, {fixed(dim), fixed(dim)}}), "%s.out_proj.weight", d->name);
    if (d->bias) PARAM(((Type){DT_F32, 1, {fixed(dim)}}), "%s.out_proj.bias", d->name);
    break;
  }
  case L_ADDITIVE: {
    static const char *const params[] = {"qdim", "kdim", "hidden"};
    bind_args(e, lname, params, 3, 3, args);
    int64_t qdim = d->largs[0] = positive_arg(c, args[0], "qdim", lname);
    int64_t kdim = d->largs[1] = positive_arg(c, args[1], "kdim", lname);
    int64_t h = d->largs[2] = positive_arg(c, args[2], "hidden", lname);
    PARAM(((Type){DT_F32, 2, {fixed(h), fixed(qdim)}}), "%s.wq", d->name);
    PARAM(((Type){DT_F32, 2, {fixed(h), fixed(kdim)}}), "%s.wk", d->name);
    PARAM(((Type){DT_F32, 1, {fixed(h)}}), "%s.v", d->name);
    break;
  }
  case L_NONE:
  case L_BLOCK:
    break;
  }
#undef PARAM
  d->nparams = c->params->len - d->param0;
}

