/* check.c: names, consts, types and shapes (see the "checker:" fields in
 * ast.h for what it fills in).
 *
 * Each model is checked declaration by declaration, in source order, so a
 * name must be declared before it is used.  All of a model's names share one
 * namespace: consts, inputs, params, layers, lets, outputs and the symbolic
 * dims of input types.  The first problem is a user_error.
 *
 * Decisions the brief leaves open:
 * - const expressions are int64; `/` must divide exactly, and overflow or
 *   division by zero is an error.  In tensor expressions, + - * / of
 *   integer constants are folded only when the result is exact (is_const);
 *   otherwise they are f32 arithmetic (x * (1/3) means a third).
 * - A dim that is a lone undeclared name is a symbolic dim; symbolic dims
 *   cannot take part in const expressions, and params cannot have them.
 * - A symbolic dim and a fixed size never match, except a fixed 1 that
 *   broadcasts.
 * - Arguments bind as in Python: positionals in order, then keywords by
 *   name (so softmax(x, 0) and softmax(x, axis=0) are the same).
 * - Names may shadow functions: `layer relu = Linear(...)`, then relu(x)
 *   calls the layer.  Likewise a declared `causal` is an ordinary tensor,
 *   also as a mask=; otherwise `causal` is valid only as a mask= value.
 * - Keyword names are those of the brief's signatures: concat(a, b, axis),
 *   attention(q, k, v, mask, scale), split_heads(x, H),
 *   positional_encoding(T, D); layer calls: Linear/LayerNorm/LSTM/GRU (x),
 *   Embedding (ids), MultiheadAttention (query, key, value, mask),
 *   AdditiveAttention (query, keys, values).
 * - concat: axis defaults to 0 (NumPy); the other dims broadcast as for
 *   `+`, the lower-rank operand left-padded with 1s (design.md 5.7); the
 *   joined dims must both be fixed sizes (a sum of symbolic dims has no
 *   name yet).
 * - x[i]: i is a const integer, negative from the end; a fixed first dim
 *   is range-checked here, a symbolic one by the generated code.  i32
 *   tensors may be indexed (the result is i32, for Embedding).
 * - attention: q [..., T, dk], k [..., S, dk], v [..., S, dv], rank 2 to 4,
 *   batch dims broadcast as for `@`.  scale= must be a positive number;
 *   without it the scale is 1/sqrt(dk), so a symbolic dk needs scale=.
 *   A mask tensor must broadcast to the scores [..., T, S] (it cannot widen
 *   them).
 * - Tensors have rank 4 at most, also inside the ops lowering expands:
 *   split_heads takes rank 2 to 3; MultiheadAttention and
 *   AdditiveAttention take inputs of rank 2 to 3 (one batch dim: the heads,
 *   or the [T, S, hidden] scores, take one more); Embedding ids rank 3 at
 *   most.  LSTM and GRU take [..., T, in] (rank 2 or more), layers <= 256.
 * - MultiheadAttention's mask has no heads dim: it broadcasts to
 *   [..., T, S] and applies to every head. */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <string.h>

#include "checker.h"

/* ---- the namespace of a model (or of a block call) ------------------------ */

static uint32_t hash_str(const char *s) {
  uint32_t h = 2166136261u;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

static Entry *table_slot(Table *t, const char *name) {
  uint32_t i = hash_str(name) & (uint32_t)(t->cap - 1);
  while (t->slots[i].name && strcmp(t->slots[i].name, name) != 0) i = (i + 1) & (uint32_t)(t->cap - 1);
  return &t->slots[i];
}

Entry *table_find(Table *t, const char *name) {
  if (!t->cap) return NULL;
  Entry *e = table_slot(t, name);
  return e->name ? e : NULL;
}

void table_put(Table *t, Entry entry) {
  if (2 * (t->len + 1) > t->cap) {
    Table bigger = {NEW_ARRAY(Entry, t->cap ? 2 * t->cap : 16), t->cap ? 2 * t->cap : 16, 0};
    for (int i = 0; i < t->cap; i++)
      if (t->slots[i].name) *table_slot(&bigger, t->slots[i].name) = t->slots[i];
    bigger.len = t->len;
    *t = bigger;
  }
  Entry *e = table_slot(t, entry.name);
  if (!e->name) t->len++;
  *e = entry;
}

const char *kind_noun(DeclKind k) {
  switch (k) {
  case D_CONST: return "a const";
  case D_INPUT: return "an input";
  case D_PARAM: return "a param";
  case D_LAYER: return "a layer";
  case D_LET: return "a `let` value";
  case D_OUTPUT: return "an output";
  }
  return "a declaration";
}

/* `causal` anywhere but as a mask= value. */
static _Noreturn void causal_misuse(Loc loc, const char *name) {
  user_error(loc, "`%s` is only a `mask=` value, as in `attention(q, k, v, mask=%s)`", name, name);
}

/* ---- "did you mean": the closest known name -------------------------------- */

/* The optimal string alignment distance (Levenshtein with transpositions of
 * adjacent characters, each edit 1) of a and b, or INT_MAX for names longer
 * than MAX_SUGGEST_LEN. */
#define MAX_SUGGEST_LEN 256
static int edit_distance(const char *a, const char *b) {
  int n = (int)strlen(a), m = (int)strlen(b);
  if (n > MAX_SUGGEST_LEN || m > MAX_SUGGEST_LEN) return INT_MAX;
  static int rows[3][MAX_SUGGEST_LEN + 1];
  int *prev2 = rows[0], *prev = rows[1], *cur = rows[2];
  for (int j = 0; j <= m; j++) prev[j] = j;
  for (int i = 1; i <= n; i++) {
    cur[0] = i;
    for (int j = 1; j <= m; j++) {
      int sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
      int del = prev[j] + 1, ins = cur[j - 1] + 1;
      int d = sub < del ? sub : del;
      if (ins < d) d = ins;
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && prev2[j - 2] + 1 < d) d = prev2[j - 2] + 1;
      cur[j] = d;
    }
    int *t = prev2;
    prev2 = prev, prev = cur, cur = t;
  }
  return prev[m];
}

typedef struct Suggestion {
  const char *name;   /* what was not found */
  const char *best;   /* the closest candidate so far, or NULL */
  int dist;
} Suggestion;

/* A candidate is close when its distance is at most max(1, len / 3) and
 * less than len (len: the unknown name's length, so `z` never suggests
 * `x`); the closest wins, ties by strcmp order. */
static void consider(Suggestion *s, const char *cand) {
  int len = (int)strlen(s->name);
  int d = edit_distance(s->name, cand);
  int limit = len / 3 > 1 ? len / 3 : 1;
  if (d > limit || d >= len || strcmp(cand, s->name) == 0) return;
  if (!s->best || d < s->dist || (d == s->dist && strcmp(cand, s->best) < 0)) s->best = cand, s->dist = d;
}


/* A name that is neither declared (before this point) nor built in; a call
 * too, whose name may be a function's or a layer's. */
_Noreturn void unknown_name(Checker *c, Loc loc, const char *name) {
  for (Decl *d = c->cur; d; d = d->next)
    if (strcmp(d->local ? d->local : d->name, name) == 0)
      user_error(loc, "`%s` is used before its declaration (line %d)", name, d->name_loc.line);
  if (strcmp(name, "causal") == 0 || strcmp(name, "causal_lower_right") == 0) causal_misuse(loc, name);
  user_error(loc, "unknown name `%s`%s", name, did_you_mean(c, name, true));
}


void check_size(Checker *c, Loc loc, Type t) {
  int64_t n = 1;
  for (int i = 0; i < t.rank; i++)
    if (t.dims[i].sym < 0 && (__builtin_mul_overflow(n, t.dims[i].size, &n) || n > MAX_NUMEL))
      user_error(loc, "%s is too large (more than 2^60 elements)", type_str(c->m, t));
}

/* ---- types of declarations -------------------------------------------- */

static Type check_type(Checker *c, Decl *d) {
  TypeExpr *te = d->texpr;
  if (te->ndims > MAX_RANK)
    user_error(te->dims[MAX_RANK]->loc, "too many dims: tensors have rank %d at most", MAX_RANK);
  Type t = {te->dtype, te->ndims, {{0}}};
  for (int i = 0; i < te->ndims; i++) {
    Expr *e = te->dims[i];
    e->type = scalar();
    if (e->kind == E_NAME) {
      Entry *en = table_find(&c->names, e->name);
      if (en && en->decl && en->decl->kind != D_CONST)
        user_error(e->loc, "`%s` is %s; a dim must be an integer, a const or a symbolic name", e->name,
                   kind_noun(en->decl->kind));
      if (!en || !en->decl) {
        if (d->kind == D_PARAM)
          user_error(e->loc, "params must have fixed shapes, but `%s` is %s%s", e->name,
                     en ? "a symbolic dim" : "not a const", en ? "" : did_you_mean(c, e->name, true));
        if (!en) {
          table_put(&c->names, (Entry){e->name, NULL, c->syms->len, e->loc, false, {0, -1}});
          vec_push(c->syms, (void *)e->name);
          vec_push(c->sums, NULL);
          c->m->syms = (const char **)c->syms->items;
          c->m->sums = (SymSum **)c->sums->items;
          c->m->nsyms = c->syms->len;
          en = table_find(&c->names, e->name);
        }
        e->sym = en->sym;
        t.dims[i] = (Dim){0, en->sym};
        continue;
      }
    }
    t.dims[i] = eval_dim(c, e);
    if (t.dims[i].sym >= 0 && d->kind == D_PARAM)
      user_error(e->loc, "params must have fixed shapes, but this dim is %s", dim_str(c->m, t.dims[i]));
  }
  check_size(c, te->loc, t);
  return t;
}

/* ---- calls: binding arguments ------------------------------------------ */

/* Binds a call's arguments to the parameter names params[0..n) as Python
 * does; the first nreq are required.  out[i] is NULL for an absent one. */
void bind_args(Expr *call, const char *fname, const char *const *params, int n, int nreq, Expr **out) {
  int npos = 0;
  bool any_kw = false;
  for (int i = 0; i < call->nargs; i++) {
    if (call->args[i].name) any_kw = true;
    else npos++;
  }
  for (int i = 0; i < n; i++) out[i] = NULL;
  int pos = 0;
  for (int i = 0; i < call->nargs; i++) {
    Arg *a = &call->args[i];
    if (!a->name) {
      if (pos >= n) {
        if (nreq == n)
          user_error(a->value->loc, "`%s` takes %d argument%s, got %d", fname, n, n == 1 ? "" : "s", npos);
        user_error(a->value->loc, "`%s` takes at most %d arguments, got %d", fname, n, npos);
      }
      out[pos++] = a->value;
      continue;
    }
    int k = 0;
    while (k < n && strcmp(params[k], a->name) != 0) k++;
    if (k == n) {
      const char *list = n ? "" : "no arguments";
      for (int j = 0; j < n; j++) list = arena_printf("%s%s%s", list, j ? ", " : "", params[j]);
      user_error(a->name_loc, "unknown keyword argument `%s` to `%s`; %s takes %s", a->name, fname, fname, list);
    }
    if (out[k]) user_error(a->name_loc, "argument `%s` given twice", a->name);
    out[k] = a->value;
  }
  for (int k = 0; k < nreq; k++) {
    if (out[k]) continue;
    if (any_kw) user_error(call->loc, "missing argument `%s` to `%s`", params[k], fname);
    if (nreq == n)
      user_error(call->loc, "`%s` takes %d argument%s, got %d", fname, n, n == 1 ? "" : "s", npos);
    user_error(call->loc, "`%s` takes at least %d argument%s, got %d", fname, nreq, nreq == 1 ? "" : "s", npos);
  }
}

/* ---- expressions ---------------------------------------------------------- */



void need_f32(Checker *c, Loc loc, const char *what, Type t) {
  if (t.dtype != DT_F32)
    user_error(loc, "`%s` needs f32 operands, got %s (i32 tensors can be compared, used as masks and passed to "
               "Embedding; `x != 0` is f32)", what, type_str(c->m, t));
}

/* The tensor operand at args slot `x`: checked and f32. */
Expr *operand(Checker *c, Expr *call, const char *fname, Expr *x) {
  check_expr(c, x);
  need_f32(c, x->loc, fname, x->type);
  call->operand[call->noperands++] = x;
  return x;
}

/* The tensor operand at args slot `x`, checked, f32 or i32 (views and
 * masks). */
Expr *operand_any(Checker *c, Expr *call, Expr *x) {
  check_expr(c, x);
  call->operand[call->noperands++] = x;
  return x;
}

/* NumPy broadcasting of a[0..ra) and b[0..rb) into out; on a mismatch,
 * false with the two differing dims in *da, *db. */
bool broadcast(const Dim *a, int ra, const Dim *b, int rb, Dim *out, int *rout, Dim *da, Dim *db) {
  int r = ra > rb ? ra : rb;
  for (int i = 1; i <= r; i++) {
    Dim x = i <= ra ? a[ra - i] : fixed(1), y = i <= rb ? b[rb - i] : fixed(1), z;
    if (dim_eq(x, y) || (y.sym < 0 && y.size == 1)) z = x;
    else if (x.sym < 0 && x.size == 1) z = y;
    else {
      *da = x;
      *db = y;
      return false;
    }
    out[r - i] = z;
  }
  *rout = r;
  return true;
}

static Type check_elementwise(Checker *c, Expr *e, Type a, Type b) {
  Type t = {DT_F32, 0, {{0}}};
  Dim da, db;
  if (!broadcast(a.dims, a.rank, b.dims, b.rank, t.dims, &t.rank, &da, &db))
    user_error(e->loc, "shape mismatch in `%s`: %s %s %s: dims %s and %s differ", binop_text(e->op), type_str(c->m, a),
               binop_text(e->op), type_str(c->m, b), dim_str(c->m, da), dim_str(c->m, db));
  return t;
}

/* `@` as NumPy's matmul: a 1-D lhs [K] acts as [1, K] and a 1-D rhs [K] as
 * [K, 1], the added dim dropped from the result; batch dims broadcast. */
static Type check_matmul(Checker *c, Expr *e, Type a, Type b) {
  if (a.rank == 0 || b.rank == 0)
    user_error(e->loc, "`@` needs operands of rank 1 or more: %s @ %s (use `*` to scale)", type_str(c->m, a),
               type_str(c->m, b));
  Dim A[MAX_RANK + 1], B[MAX_RANK + 1];
  int ra = a.rank, rb = b.rank;
  memcpy(A, a.dims, sizeof(Dim) * (size_t)ra);
  memcpy(B, b.dims, sizeof(Dim) * (size_t)rb);
  if (ra == 1) {
    A[1] = A[0];
    A[0] = fixed(1);
    ra = 2;
  }
  if (rb == 1) {
    B[1] = fixed(1);
    rb = 2;
  }
  Dim k1 = A[ra - 1], k2 = B[rb - 2];
  if (!dim_eq(k1, k2))
    user_error(e->loc, "shape mismatch in `@`: %s @ %s: inner dims %s and %s differ", type_str(c->m, a),
               type_str(c->m, b), dim_str(c->m, k1), dim_str(c->m, k2));
  Type t = {DT_F32, 0, {{0}}};
  Dim da, db;
  if (!broadcast(A, ra - 2, B, rb - 2, t.dims, &t.rank, &da, &db))
    user_error(e->loc, "shape mismatch in `@`: %s @ %s: batch dims %s and %s differ", type_str(c->m, a),
               type_str(c->m, b), dim_str(c->m, da), dim_str(c->m, db));
  if (a.rank > 1) t.dims[t.rank++] = A[ra - 2];
  if (b.rank > 1) t.dims[t.rank++] = B[rb - 1];
  return t;
}

static void check_binary(Checker *c, Expr *e) {
  check_expr(c, e->lhs);
  check_expr(c, e->rhs);
  if (binop_is_cmp(e->op)) {
    /* design.md 5.6: f32 or i32 operands, broadcasting; an f32 1.0/0.0
     * result (lowering decides how exactly: i32 against i32 or an
     * integer compares exactly) */
    e->type = check_elementwise(c, e, e->lhs->type, e->rhs->type);
    return;
  }
  const char *op = binop_text(e->op);
  need_f32(c, e->loc, op, e->lhs->type);
  need_f32(c, e->loc, op, e->rhs->type);
  if (e->op == '@') {
    e->type = check_matmul(c, e, e->lhs->type, e->rhs->type);
    return;
  }
  e->type = check_elementwise(c, e, e->lhs->type, e->rhs->type);
  if (e->lhs->is_const && e->rhs->is_const && fold_int(e->op, e->lhs->ival, e->rhs->ival, &e->ival))
    e->is_const = true;
}

/* The axis argument (NULL: `dflt`), made non-negative for rank `t`. */
static int check_axis(Checker *c, Expr *call, Expr *axis, int64_t dflt, Type t) {
  int64_t a = axis ? eval_const(c, axis, "`axis`") : dflt;
  if (a < -t.rank || a >= t.rank)
    user_error(axis ? axis->loc : call->loc, "axis %lld is out of range for %s", (long long)a,
               type_str(c->m, t));
  return (int)(a < 0 ? a + t.rank : a);
}

static Type drop_axis(Type t, int axis) {
  for (int i = axis; i + 1 < t.rank; i++) t.dims[i] = t.dims[i + 1];
  t.rank--;
  return t;
}

/* A positive compile-time integer argument of a function or a layer
 * constructor ("argument `heads` of `MultiheadAttention`"). */
int64_t positive_arg(Checker *c, Expr *arg, const char *param, const char *fname) {
  const char *ctx = arena_printf("argument `%s` of `%s`", param, fname);
  int64_t v = eval_const(c, arg, ctx);
  if (v <= 0) user_error(arg->loc, "%s must be positive, got %lld", ctx, (long long)v);
  return v;
}

/* The functions of the language. */
typedef struct FnSpec {
  const char *name;
  Builtin fn;
  int n, nreq;
  const char *params[5];
} FnSpec;

static const FnSpec functions[] = {
    {"transpose", B_TRANSPOSE, 1, 1, {"x"}},
    {"softmax", B_SOFTMAX, 2, 1, {"x", "axis"}},
    {"exp", B_EXP, 1, 1, {"x"}},
    {"log", B_LOG, 1, 1, {"x"}},
    {"sqrt", B_SQRT, 1, 1, {"x"}},
    {"tanh", B_TANH, 1, 1, {"x"}},
    {"sigmoid", B_SIGMOID, 1, 1, {"x"}},
    {"relu", B_RELU, 1, 1, {"x"}},
    {"gelu", B_GELU, 1, 1, {"x"}},
    {"silu", B_SILU, 1, 1, {"x"}},
    {"sum", B_SUM, 2, 1, {"x", "axis"}},
    {"mean", B_MEAN, 2, 1, {"x", "axis"}},
    {"max", B_MAX, 2, 1, {"x", "axis"}},
    {"layernorm", B_LAYERNORM, 4, 3, {"x", "w", "b", "eps"}},
    {"dropout", B_DROPOUT, 2, 2, {"x", "p"}},
    {"concat", B_CONCAT, 3, 2, {"a", "b", "axis"}},
    {"attention", B_ATTENTION, 5, 3, {"q", "k", "v", "mask", "scale"}},
    {"split_heads", B_SPLIT_HEADS, 2, 2, {"x", "H"}},
    {"merge_heads", B_MERGE_HEADS, 1, 1, {"x"}},
    {"positional_encoding", B_POSENC, 2, 2, {"T", "D"}},
    {"causal", B_CAUSAL, 0, 0, {0}},
    {"causal_lower_right", B_CAUSAL, 0, 0, {0}},
    {"unsqueeze", B_UNSQUEEZE, 2, 2, {"x", "axis"}},
    {"squeeze", B_SQUEEZE, 2, 2, {"x", "axis"}},
    {"reshape", B_RESHAPE, 5, 2, {"x", "d0", "d1", "d2", "d3"}},
    {"masked_fill", B_MASKED_FILL, 3, 3, {"x", "mask", "value"}},
};

static const FnSpec *find_function(const char *name) {
  for (size_t i = 0; i < sizeof functions / sizeof functions[0]; i++)
    if (strcmp(functions[i].name, name) == 0) return &functions[i];
  return NULL;
}

/* "; did you mean `NAME`?" for the closest of: when `values`, the names in
 * scope (consts, inputs, params, layers, lets, outputs, symbolic dims) and
 * the built-in functions; always the layer types and the blocks declared
 * before the current model or block.  "" when none is close. */
const char *did_you_mean(Checker *c, const char *name, bool values) {
  Suggestion s = {name, NULL, 0};
  if (values) {
    for (int i = 0; i < c->names.cap; i++)
      if (c->names.slots[i].name) consider(&s, c->names.slots[i].name);
    for (size_t i = 0; i < sizeof functions / sizeof functions[0]; i++) consider(&s, functions[i].name);
  }
  for (int k = L_LINEAR; k <= L_ADDITIVE; k++) consider(&s, layer_type_name((LayerKind)k));
  for (Block *b = c->prog->blocks; b; b = b->next)
    if (b->order < c->order) consider(&s, b->name);
  return s.best ? arena_printf("; did you mean `%s`?", s.best) : "";
}

/* ---- function calls ------------------------------------------------------ */

/* positional_encoding(T, D): T a symbolic dim or a positive const, D a
 * positive even const; f32[T, D], no operands. */
static Type check_posenc(Checker *c, Expr *const args[2]) {
  Expr *len = args[0];
  Dim t;
  Entry *en = len->kind == E_NAME ? table_find(&c->names, len->name) : NULL;
  if (en && !en->decl) {
    len->type = scalar();
    len->sym = en->is_bound ? en->bound.sym : en->sym;
    t = en->is_bound ? en->bound : (Dim){0, en->sym};
  } else {
    t = fixed(positive_arg(c, len, "T", "positional_encoding"));
  }
  int64_t d = positive_arg(c, args[1], "D", "positional_encoding");
  if (d % 2)
    user_error(args[1]->loc, "argument `D` of `positional_encoding` must be even, got %lld", (long long)d);
  /* code generation makes a table of D/2 frequencies: bounded, so that
   * every program --check accepts compiles in bounded memory and time */
  if (d > MAX_POSENC_D)
    user_error(args[1]->loc, "argument `D` of `positional_encoding` must be at most %d, got %lld", MAX_POSENC_D,
               (long long)d);
  return (Type){DT_F32, 2, {t, fixed(d)}};
}

static void check_call(Checker *c, Expr *e) {
  Entry *en = table_find(&c->names, e->name);
  if (en) {
    if (!en->decl) user_error(e->loc, "symbolic dim `%s` is not a function", e->name);
    if (en->decl->kind != D_LAYER)
      user_error(e->loc, "`%s` is %s, not a function or a layer", e->name, kind_noun(en->decl->kind));
    check_layer_call(c, e, en->decl);
    return;
  }
  const FnSpec *f = find_function(e->name);
  if (!f) {
    if (find_layer(e->name))
      user_error(e->loc, "`%s` is a layer type: declare one with `layer NAME = %s(...)` and call NAME", e->name,
                 e->name);
    unknown_name(c, e->loc, e->name);
  }
  if (f->fn == B_CAUSAL) causal_misuse(e->loc, f->name);
  e->fn = f->fn;
  Expr *args[5];
  bind_args(e, f->name, f->params, f->n, f->nreq, args);
  if (f->fn == B_POSENC) {
    e->type = check_posenc(c, args);
    return;
  }
  /* views take i32 tensors too: a mask reshaped to broadcast */
  bool view_fn = f->fn == B_UNSQUEEZE || f->fn == B_SQUEEZE || f->fn == B_RESHAPE;
  Expr *x = view_fn ? operand_any(c, e, args[0]) : operand(c, e, f->name, args[0]);
  Type t = x->type;
  switch (f->fn) {
  case B_TRANSPOSE: {
    if (t.rank < 2)
      user_error(x->loc, "`transpose` needs a tensor of rank 2 or more, got %s", type_str(c->m, t));
    Dim d = t.dims[t.rank - 1];
    t.dims[t.rank - 1] = t.dims[t.rank - 2];
    t.dims[t.rank - 2] = d;
    break;
  }
  case B_SOFTMAX:
    e->axis = check_axis(c, e, args[1], -1, t);
    break;
  case B_SUM: case B_MEAN: case B_MAX:
    if (args[1]) {
      e->axis = check_axis(c, e, args[1], 0, t);
      t = drop_axis(t, e->axis);
    } else {
      e->axis = -1;
      t.rank = 0;
    }
    break;
  case B_LAYERNORM: {
    if (t.rank == 0) user_error(x->loc, "`layernorm` needs a tensor of rank 1 or more, got %s", type_str(c->m, t));
    Type want = {DT_F32, 1, {t.dims[t.rank - 1]}};
    for (int i = 1; i <= 2; i++) {
      Expr *wb = operand(c, e, f->name, args[i]);
      if (!type_eq(wb->type, want))
        user_error(wb->loc, "shape mismatch in `layernorm`: `%s` must be %s to match %s, got %s", f->params[i],
                   type_str(c->m, want), type_str(c->m, t), type_str(c->m, wb->type));
    }
    e->fval = args[3] ? eval_number(c, args[3], "`eps`") : 1e-5;
    if (!(e->fval > 0) || isinf(e->fval))
      user_error(args[3]->loc, "`eps` must be a positive number, got %g", e->fval);
    break;
  }
  case B_DROPOUT:
    e->fval = eval_number(c, args[1], "`p` of `dropout`");
    if (!(e->fval >= 0 && e->fval < 1))
      user_error(args[1]->loc, "`p` of `dropout` must be in [0, 1), got %g", e->fval);
    break;
  case B_CONCAT: {
    /* design.md 5.7: the lower-rank operand is left-padded with 1s, every
     * dim but axis broadcasts as for `+`, and axis counts in the result's
     * rank (a learned [1, D] row joins [B, T, D]) */
    Expr *b = operand(c, e, f->name, args[1]);
    Type u = b->type;
    int rank = t.rank > u.rank ? t.rank : u.rank;
    if (rank == 0) user_error(x->loc, "`concat` needs tensors of rank 1 or more, got %s", type_str(c->m, t));
    Type r = {DT_F32, rank, {{0}}};
    int axis = e->axis = check_axis(c, e, args[2], 0, t.rank >= u.rank ? t : u);
    Dim pt[MAX_RANK], pu[MAX_RANK];
    for (int i = 0; i < rank; i++) {
      pt[i] = i < rank - t.rank ? fixed(1) : t.dims[i - (rank - t.rank)];
      pu[i] = i < rank - u.rank ? fixed(1) : u.dims[i - (rank - u.rank)];
    }
    for (int i = 0; i < rank; i++) {
      if (i == axis) continue;
      Dim d1 = pt[i], d2 = pu[i];
      if (dim_eq(d1, d2) || (d2.sym < 0 && d2.size == 1)) r.dims[i] = d1;
      else if (d1.sym < 0 && d1.size == 1) r.dims[i] = d2;
      else
        user_error(e->loc, "shape mismatch in `concat` along axis %d: %s and %s: dims %s and %s differ", axis,
                   type_str(c->m, t), type_str(c->m, u), dim_str(c->m, d1), dim_str(c->m, d2));
    }
    /* along the axis the sizes add: a sum dim where one is symbolic
     * (design.md 5.3: concat(past_k, k, axis=0) is [P+T, d]) */
    r.dims[axis] = dim_sum(c, pt[axis], pu[axis], 1, e->loc, "the joined axis of `concat`");
    t = r;
    break;
  }
  case B_ATTENTION: {
    static const char *const names[3] = {"q", "k", "v"};
    Expr *qkv[3] = {x, operand(c, e, f->name, args[1]), operand(c, e, f->name, args[2])};
    check_attention_ranks(c, f->name, names, qkv, MAX_RANK);
    Dim dq = last_dim(qkv[0]->type), dk = last_dim(qkv[1]->type);
    if (!dim_eq(dq, dk))
      user_error(qkv[1]->loc, "shape mismatch in `attention`: `q` is %s but `k` is %s: the key dims %s and %s differ",
                 type_str(c->m, qkv[0]->type), type_str(c->m, qkv[1]->type), dim_str(c->m, dq), dim_str(c->m, dk));
    t = attention_scores(c, e, f->name, names, qkv);
    check_mask(c, e, f->name, args[3], t);
    if (args[4]) {
      e->fval = eval_number(c, args[4], "`scale` of `attention`");
      if (!(e->fval > 0) || isinf(e->fval))
        user_error(args[4]->loc, "`scale` of `attention` must be a positive number, got %g", e->fval);
    } else if (dk.sym >= 0) {
      user_error(e->loc, "`attention` needs `scale=` here: the key dim %s of %s is symbolic", dim_str(c->m, dk),
                 type_str(c->m, qkv[0]->type));
    } else {
      e->fval = 1.0 / sqrt((double)dk.size);
    }
    t.dims[t.rank - 1] = last_dim(qkv[2]->type);
    break;
  }
  case B_SPLIT_HEADS: {
    if (t.rank < 2 || t.rank > MAX_RANK - 1)
      user_error(x->loc, "`split_heads` takes a tensor of rank 2 to %d ([..., T, D]), got %s", MAX_RANK - 1,
                 type_str(c->m, t));
    int64_t h = e->heads = positive_arg(c, args[1], "H", "split_heads");
    Dim d = last_dim(t);
    if (d.sym >= 0)
      user_error(x->loc, "`split_heads` cannot split %s into %lld heads: its last dim %s is symbolic",
                 type_str(c->m, t), (long long)h, dim_str(c->m, d));
    if (d.size % h)
      user_error(args[1]->loc, "`split_heads` cannot split %s into %lld heads: %lld is not divisible by %lld",
                 type_str(c->m, t), (long long)h, (long long)d.size, (long long)h);
    /* [..., T, D] -> [..., H, T, D/H] */
    int r = t.rank;
    t.dims[r] = fixed(d.size / h);
    t.dims[r - 1] = t.dims[r - 2];
    t.dims[r - 2] = fixed(h);
    t.rank = r + 1;
    break;
  }
  case B_UNSQUEEZE:
  case B_SQUEEZE:
  case B_RESHAPE:
    t = check_view_fn(c, e, f->fn, args, t);
    break;
  case B_MASKED_FILL: {
    /* design.md 5.6: `value` where mask != 0, else x; the mask (f32 or
     * i32) broadcasts to x's shape, which the result keeps */
    Expr *m = operand_any(c, e, args[1]);
    Type b = {DT_F32, 0, {{0}}};
    Dim da, db;
    if (!broadcast(m->type.dims, m->type.rank, t.dims, t.rank, b.dims, &b.rank, &da, &db) || !type_eq(b, t))
      user_error(m->loc, "shape mismatch in `masked_fill`: the mask %s does not broadcast to x's shape %s",
                 type_str(c->m, m->type), type_str(c->m, t));
    e->fval = eval_number(c, args[2], "`value` of `masked_fill`");
    if (isnan(e->fval) || (!isinf(e->fval) && fabs(e->fval) > FLT_MAX))
      user_error(args[2]->loc, "`value` of `masked_fill` must be an f32 number or `inf`/`-inf`, got %g", e->fval);
    break;
  }
  case B_MERGE_HEADS: {
    if (t.rank < 3)
      user_error(x->loc, "`merge_heads` takes a tensor of rank 3 or more ([..., H, T, d]), got %s",
                 type_str(c->m, t));
    int r = t.rank;
    Dim h = t.dims[r - 3], d = t.dims[r - 1];
    if (h.sym >= 0 || d.sym >= 0)
      user_error(x->loc, "`merge_heads` needs a fixed head count and head size, got %s (%s is symbolic)",
                 type_str(c->m, t), dim_str(c->m, h.sym >= 0 ? h : d));
    e->heads = h.size;
    /* [..., H, T, d] -> [..., T, H*d]; H*d is at most the size of x */
    t.dims[r - 3] = t.dims[r - 2];
    t.dims[r - 2] = fixed(h.size * d.size);
    t.rank = r - 1;
    break;
  }
  default:  /* elementwise functions */
    break;
  }
  e->type = t;
}

/* x[i]: i a const integer (negative counts from the end) on the first dim,
 * which the result drops. */
static void check_index(Checker *c, Expr *e) {
  check_expr(c, e->lhs);
  Type t = e->lhs->type;
  if (t.rank == 0) user_error(e->loc, "indexing needs a tensor of rank 1 or more, got %s", type_str(c->m, t));
  int64_t i = eval_const(c, e->rhs, "an index");
  Dim d = t.dims[0];
  if (d.sym < 0 && (i < -d.size || i >= d.size))
    user_error(e->rhs->loc, "index %lld is out of range for %s", (long long)i, type_str(c->m, t));
  e->index = i;
  e->type = drop_axis(t, 0);
}

/* x[a:b], x[a:], x[:b] (design.md 5.3, 5.7): the first dim, Python's
 * bounds (negative from the end) as compile-time integers, not clamped:
 * a fixed dim's slice is checked here (an empty one is an error), a
 * symbolic dim's at the call (the view's rows must lie in the dim: else
 * ATTNRT_E_RANGE); the result is a view of rows start... (e->index) */
static void check_slice(Checker *c, Expr *e) {
  check_expr(c, e->lhs);
  Type t = e->lhs->type;
  if (t.rank == 0) user_error(e->loc, "slicing needs a tensor of rank 1 or more, got %s", type_str(c->m, t));
  int64_t lo = e->rhs ? eval_const(c, e->rhs, "a slice bound") : 0;
  int64_t hi = e->hi ? eval_const(c, e->hi, "a slice bound") : 0;
  Dim d = t.dims[0], len;
  const char *text = arena_printf("[%s:%s]", e->rhs ? arena_printf("%lld", (long long)lo) : "",
                                  e->hi ? arena_printf("%lld", (long long)hi) : "");
  if (d.sym < 0) {
    int64_t n = d.size, a = lo < 0 ? lo + n : lo, b = !e->hi ? n : hi < 0 ? hi + n : hi;
    if (a < 0 || a > n || b < 0 || b > n)
      user_error(e->loc, "slice %s is out of range for %s (slices are not clamped)", text, type_str(c->m, t));
    if (b <= a) user_error(e->loc, "slice %s of %s is empty", text, type_str(c->m, t));
    lo = a;
    len = fixed(b - a);
  } else {
    len = slice_len(c, d, e->rhs != NULL, lo, e->hi != NULL, hi, e->loc);
  }
  e->index = lo;   /* the view's first row; < 0 from the end of a symbolic dim */
  t.dims[0] = len;
  e->type = t;
}

static void check_name(Checker *c, Expr *e) {
  Entry *en = table_find(&c->names, e->name);
  if (!en && is_inf_name(c, e)) {
    /* the predeclared number (design.md 5.6): a literal from here on */
    e->kind = E_NUM;
    e->num = INFINITY;
    e->text = "inf";
    e->type = scalar();
    return;
  }
  if (!en) {
    const FnSpec *f = find_function(e->name);
    if (f && f->fn == B_CAUSAL) causal_misuse(e->loc, f->name);
    if (f) user_error(e->loc, "`%s` is a function: call it, as in `%s(x)`", e->name, e->name);
    unknown_name(c, e->loc, e->name);
  }
  if (!en->decl) {
    e->sym = en->sym;
    user_error(e->loc, "symbolic dim `%s` cannot be used as a value", e->name);
  }
  Decl *d = en->decl;
  e->decl = d;
  switch (d->kind) {
  case D_CONST:
    e->type = scalar();
    e->is_const = true;
    e->ival = d->ival;
    break;
  case D_LAYER:
    user_error(e->loc, "layer `%s` cannot be used as a value; call it, as in `%s(x)`", e->name, e->name);
  default:
    e->type = d->type;
    break;
  }
}

/* At most how many graph operations lowering makes for e itself (its
 * operands counted apart): one per operator, call, index or number, more
 * for the layers and functions made of several.  A checked estimate keeps
 * the limit in the front end, with the expression to point at. */
static int op_cost(const Expr *e) {
  switch (e->kind) {
  case E_NAME:
    return e->decl && e->decl->kind == D_CONST;   /* a const becomes a node */
  case E_CALL:
    if (e->scan || e->bcall) return 1;   /* the instances' calls count themselves */
    if (e->decl) {
      switch (e->decl->layer) {
      /* per layer, and the views of a given state */
      case L_LSTM: case L_GRU: return (e->noperands > 1 ? 6 : 4) * (int)e->decl->largs[2];
      case L_LSTM_CELL: case L_GRU_CELL: return 12;
      case L_MHA: return 32;
      case L_ADDITIVE: return 12;
      case L_LINEAR: return 2;
      default: return 1;
      }
    }
    switch (e->fn) {
    case B_ATTENTION: return 6;
    case B_SPLIT_HEADS: case B_MERGE_HEADS: return 2;
    case B_SUM: case B_MEAN: case B_MAX:
      return e->axis < 0 && e->operand[0]->type.rank > 1 ? e->operand[0]->type.rank : 1;
    default: return 1;
    }
  case E_RESULT:
    /* h_n, c_n: each layer's last step, stacked over the layers */
    if (e->index > 0 && e->lhs->kind == E_CALL && e->lhs->decl && !e->lhs->scan &&
        (e->lhs->decl->layer == L_LSTM || e->lhs->decl->layer == L_GRU))
      return 3 * (int)e->lhs->decl->largs[2];
    return 1;
  default:
    return 1;
  }
}

void count_ops(Checker *c, Loc loc, int n) {
  *c->ops += n;
  if (*c->ops > MAX_OPS)
    user_error(loc, "too many operations: at most %d in one file", MAX_OPS);
}

/* What every checked expression gets: a call's results, the size limit and
 * the operation count. */
static void finish_expr(Checker *c, Expr *e) {
  if (e->kind == E_CALL) {
    e->checked = true;
    if (e->nresults == 0) {
      e->nresults = 1;
      e->rtypes = &e->type;
    }
  }
  check_size(c, e->loc, e->type);
  count_ops(c, e->loc, op_cost(e));
}

void check_expr(Checker *c, Expr *e) {
  switch (e->kind) {
  case E_NUM:
    e->type = scalar();
    if (e->is_int) e->is_const = true;
    else if (fabs(e->num) > FLT_MAX) user_error(e->loc, "number `%s` is out of range for f32", e->text);
    break;
  case E_NAME:
    check_name(c, e);
    break;
  case E_NEG:
    check_expr(c, e->lhs);
    need_f32(c, e->loc, "-", e->lhs->type);
    e->type = e->lhs->type;
    if (e->lhs->is_const && e->lhs->ival != INT64_MIN) {
      e->is_const = true;
      e->ival = -e->lhs->ival;
    }
    break;
  case E_BINARY:
    check_binary(c, e);
    break;
  case E_CALL:
    check_call(c, e);
    break;
  case E_INDEX:
    check_index(c, e);
    break;
  case E_SLICE:
    check_slice(c, e);
    break;
  case E_RESULT:
    check_result(c, e);
    return;   /* its call was sized and counted */
  }
  finish_expr(c, e);
}

void check_call_to(Checker *c, Expr *e, Decl *layer) {
  check_layer_call(c, e, layer);
  finish_expr(c, e);
}

/* ---- declarations ---------------------------------------------------- */

void check_decl(Checker *c, Decl *d) {
  const char *key = d->local ? d->local : d->name;
  Entry *prev = table_find(&c->names, key);
  if (prev && prev->decl)
    user_error(d->name_loc, "duplicate declaration of `%s` (first declared at line %d)", key, prev->loc.line);
  if (prev)
    user_error(d->name_loc, "declaration of `%s` conflicts with the symbolic dim `%s` (first used at line %d)", key,
               key, prev->loc.line);
  switch (d->kind) {
  case D_CONST:
    d->ival = eval_const(c, d->value, arena_printf("const `%s`", d->name));
    d->type = scalar();
    break;
  case D_INPUT:
    d->type = check_type(c, d);
    count_ops(c, d->name_loc, 1);
    d->index = c->inputs.len;
    vec_push(&c->inputs, d);
    break;
  case D_PARAM:
    d->type = check_type(c, d);
    if (d->type.dtype != DT_F32)
      user_error(d->texpr->loc, "params must be f32, got %s", type_str(c->m, d->type));
    d->index = c->params->len;
    add_param(c, d->name, d->type, d->name_loc);
    break;
  case D_LAYER:
    check_layer_decl(c, d);
    break;
  case D_LET:
  case D_OUTPUT:
    check_expr(c, d->value);
    /* an i32 let names an input or a view of one (a mask); outputs are f32 */
    if (d->value->type.dtype != DT_F32 && d->kind == D_OUTPUT)
      user_error(d->value->loc, "output `%s` would be %s: outputs are f32 (compare an i32 tensor, as in `x != 0`, "
                 "for 1.0/0.0)", d->name, type_str(c->m, d->value->type));
    d->type = d->value->type;
    if (d->kind == D_OUTPUT && c->block) {
      d->index = c->outputs.len;   /* a result of the block's call */
      vec_push(&c->outputs, d);
    } else if (d->kind == D_OUTPUT) {
      count_ops(c, d->name_loc, 1);   /* a copy, if it names another value */
      d->index = c->outputs.len;
      vec_push(&c->outputs, d);
    }
    break;
  }
  table_put(&c->names, (Entry){key, d, -1, d->name_loc, false, {0, -1}});
}

static Decl **decl_array(Vec *v) {
  Decl **a = NEW_ARRAY(Decl *, v->len + 1);
  for (int i = 0; i < v->len; i++) a[i] = v->items[i];
  return a;
}

static void check_model(Program *prog, Model *m, int *ops) {
  Checker c = {.m = m, .prog = prog, .order = m->order, .ops = ops, .syms = NEW(Vec), .sums = NEW(Vec),
               .params = NEW(Vec)};
  for (Decl *d = m->decls; d; d = d->next) {
    c.cur = d;
    check_decl(&c, d);
  }
  if (c.outputs.len == 0)
    user_error(m->name_loc, "model `%s` has no outputs (declare one with `output NAME = ...`)", m->name);
  m->syms = (const char **)c.syms->items;
  m->sums = (SymSum **)c.sums->items;
  m->nsyms = c.syms->len;
  m->params = NEW_ARRAY(Param, c.params->len + 1);
  for (int i = 0; i < c.params->len; i++) m->params[i] = *(Param *)c.params->items[i];
  m->nparams = c.params->len;
  m->inputs = decl_array(&c.inputs);
  m->ninputs = c.inputs.len;
  m->outputs = decl_array(&c.outputs);
  m->noutputs = c.outputs.len;
}

void check_program(Program *prog) {
  diag_clear_context();
  Table models = {0};
  int ops = 0;
  for (Model *m = prog->models; m; m = m->next) {
    Entry *prev = table_find(&models, m->name);
    if (prev)
      user_error(m->name_loc, "duplicate model `%s` (first declared at line %d)", m->name, prev->loc.line);
    check_model(prog, m, &ops);
    table_put(&models, (Entry){m->name, NULL, -1, m->name_loc, false, {0, -1}});
  }
  /* Model `m` defines the C symbols m, m_model and m_scratch_size: a model
   * named `m_model` would define m_model twice. */
  static const char *const suffixes[] = {"_model", "_scratch_size"};
  for (Model *m = prog->models; m; m = m->next)
    for (int i = 0; i < 2; i++) {
      size_t n = strlen(m->name), k = strlen(suffixes[i]);
      if (n <= k || strcmp(m->name + n - k, suffixes[i]) != 0) continue;
      Entry *other = table_find(&models, arena_printf("%.*s", (int)(n - k), m->name));
      if (other)
        user_error(m->name_loc, "model name `%s` cannot be used: model `%.*s` (line %d) defines the C symbol `%s`",
                   m->name, (int)(n - k), m->name, other->loc.line, m->name);
    }
}
