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
 *   calls the layer. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "ast.h"

/* ---- the namespace of a model ----------------------------------------- */

/* A declared name, or a symbolic dim (decl NULL, sym >= 0). */
typedef struct Entry {
  const char *name;
  Decl *decl;
  int sym;
  Loc loc;            /* the declaration's name, or the dim's first use */
} Entry;

typedef struct Table {
  Entry *slots;       /* open addressing; name NULL = empty */
  int cap, len;
} Table;

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

static Entry *table_find(Table *t, const char *name) {
  if (!t->cap) return NULL;
  Entry *e = table_slot(t, name);
  return e->name ? e : NULL;
}

static void table_put(Table *t, Entry entry) {
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

typedef struct Checker {
  Model *m;
  Decl *cur;          /* the declaration being checked */
  Table names;
  Vec syms;           /* const char * */
  Vec params;         /* Param * */
  Vec inputs, outputs;
} Checker;

static const char *kind_noun(DeclKind k) {
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

/* `what` names the kind of thing looked for: "name", "function". */
static _Noreturn void unknown_name(Checker *c, Loc loc, const char *name, const char *what) {
  for (Decl *d = c->cur; d; d = d->next)
    if (strcmp(d->name, name) == 0)
      user_error(loc, "`%s` is used before its declaration (line %d)", name, d->name_loc.line);
  user_error(loc, "unknown %s `%s`", what, name);
}

static Type scalar(void) { return (Type){DT_F32, 0, {{0, -1}}}; }

static Dim fixed(int64_t n) { return (Dim){n, -1}; }

static void check_size(Checker *c, Loc loc, Type t) {
  int64_t n = 1;
  for (int i = 0; i < t.rank; i++)
    if (t.dims[i].sym < 0 && (__builtin_mul_overflow(n, t.dims[i].size, &n) || n > MAX_NUMEL))
      user_error(loc, "%s is too large (more than 2^60 elements)", type_str(c->m, t));
}

/* ---- const expressions ---------------------------------------------------- */

/* op applied to int64s: false on overflow, division by zero or a
 * remainder. */
static bool fold(int op, int64_t a, int64_t b, int64_t *r) {
  switch (op) {
  case '+': return !__builtin_add_overflow(a, b, r);
  case '-': return !__builtin_sub_overflow(a, b, r);
  case '*': return !__builtin_mul_overflow(a, b, r);
  case '/':
    if (b == 0 || (a == INT64_MIN && b == -1) || a % b != 0) return false;
    *r = a / b;
    return true;
  }
  return false;
}

/* The value of a compile-time integer expression.  `ctx` says what it is
 * for, to start messages: "a dim", "const `N`", "`axis`". */
static int64_t eval_const(Checker *c, Expr *e, const char *ctx) {
  e->type = scalar();
  switch (e->kind) {
  case E_NUM:
    if (!e->is_int) user_error(e->loc, "%s must be an integer, got `%s`", ctx, e->text);
    break;
  case E_NAME: {
    Entry *en = table_find(&c->names, e->name);
    if (!en) unknown_name(c, e->loc, e->name, "name");
    if (!en->decl) user_error(e->loc, "symbolic dim `%s` cannot be used in a const expression", e->name);
    e->decl = en->decl;
    if (en->decl->kind != D_CONST)
      user_error(e->loc, "%s must be a compile-time integer, but `%s` is %s", ctx, e->name,
                 kind_noun(en->decl->kind));
    e->ival = en->decl->ival;
    break;
  }
  case E_NEG: {
    int64_t v = eval_const(c, e->lhs, ctx);
    if (v == INT64_MIN) user_error(e->loc, "integer overflow in const expression: -(%lld)", (long long)v);
    e->ival = -v;
    break;
  }
  case E_BINARY: {
    if (e->op == '@') user_error(e->loc, "%s must be a compile-time integer; `@` is not allowed there", ctx);
    int64_t a = eval_const(c, e->lhs, ctx), b = eval_const(c, e->rhs, ctx);
    if (!fold(e->op, a, b, &e->ival)) {
      if (e->op == '/' && b == 0) user_error(e->loc, "division by zero in const expression");
      if (e->op == '/' && !(a == INT64_MIN && b == -1))
        user_error(e->loc, "const division %lld / %lld is not exact", (long long)a, (long long)b);
      user_error(e->loc, "integer overflow in const expression: %lld %c %lld", (long long)a, e->op,
                 (long long)b);
    }
    break;
  }
  case E_CALL:
    user_error(e->loc, "%s must be a compile-time integer, not a call to `%s`", ctx, e->name);
  case E_INDEX:
    user_error(e->loc, "%s must be a compile-time integer, not an indexing expression", ctx);
  }
  e->is_const = true;
  return e->ival;
}

/* A compile-time number (eps=, p=): literals, consts and + - * / of them. */
static double eval_number(Checker *c, Expr *e, const char *ctx) {
  e->type = scalar();
  switch (e->kind) {
  case E_NUM:
    return e->num;
  case E_NAME: {
    Entry *en = table_find(&c->names, e->name);
    if (!en) unknown_name(c, e->loc, e->name, "name");
    if (!en->decl) user_error(e->loc, "symbolic dim `%s` cannot be used as a value", e->name);
    if (en->decl->kind != D_CONST)
      user_error(e->loc, "%s must be a number, but `%s` is %s", ctx, e->name, kind_noun(en->decl->kind));
    e->decl = en->decl;
    return (double)en->decl->ival;
  }
  case E_NEG:
    return -eval_number(c, e->lhs, ctx);
  case E_BINARY: {
    if (e->op == '@') user_error(e->loc, "%s must be a number; `@` is not allowed there", ctx);
    double a = eval_number(c, e->lhs, ctx), b = eval_number(c, e->rhs, ctx);
    switch (e->op) {
    case '+': return a + b;
    case '-': return a - b;
    case '*': return a * b;
    default: return a / b;
    }
  }
  case E_CALL:
    user_error(e->loc, "%s must be a number, not a call to `%s`", ctx, e->name);
  case E_INDEX:
    user_error(e->loc, "%s must be a number, not an indexing expression", ctx);
  }
  internal_error("unknown expression kind %d", e->kind);
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
          user_error(e->loc, "params must have fixed shapes, but `%s` is %s", e->name,
                     en ? "a symbolic dim" : "not a const");
        if (!en) {
          table_put(&c->names, (Entry){e->name, NULL, c->syms.len, e->loc});
          vec_push(&c->syms, (void *)e->name);
          c->m->syms = (const char **)c->syms.items;
          c->m->nsyms = c->syms.len;
          en = table_find(&c->names, e->name);
        }
        e->sym = en->sym;
        t.dims[i] = (Dim){0, en->sym};
        continue;
      }
    }
    int64_t v = eval_const(c, e, "a dim");
    if (v <= 0) user_error(e->loc, "dim must be positive, got %lld", (long long)v);
    t.dims[i] = fixed(v);
  }
  check_size(c, te->loc, t);
  return t;
}

/* ---- calls: binding arguments ------------------------------------------ */

/* Binds a call's arguments to the parameter names params[0..n) as Python
 * does; the first nreq are required.  out[i] is NULL for an absent one. */
static void bind_args(Expr *call, const char *fname, const char *const *params, int n, int nreq,
                      Expr **out) {
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
    if (k == n) user_error(a->name_loc, "unknown keyword argument `%s` to `%s`", a->name, fname);
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

static void check_expr(Checker *c, Expr *e);

static void need_f32(Checker *c, Loc loc, const char *what, Type t) {
  if (t.dtype != DT_F32)
    user_error(loc, "`%s` needs f32 operands, got %s (i32 tensors can only be passed to Embedding)", what,
               type_str(c->m, t));
}

/* The tensor operand at args slot `x`: checked and f32. */
static Expr *operand(Checker *c, Expr *call, const char *fname, Expr *x) {
  check_expr(c, x);
  need_f32(c, x->loc, fname, x->type);
  call->operand[call->noperands++] = x;
  return x;
}

/* NumPy broadcasting of a[0..ra) and b[0..rb) into out; on a mismatch,
 * false with the two differing dims in *da, *db. */
static bool broadcast(const Dim *a, int ra, const Dim *b, int rb, Dim *out, int *rout, Dim *da, Dim *db) {
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
    user_error(e->loc, "shape mismatch in `%c`: %s %c %s: dims %s and %s differ", e->op, type_str(c->m, a), e->op,
               type_str(c->m, b), dim_str(c->m, da), dim_str(c->m, db));
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
  char op[2] = {(char)e->op, 0};
  need_f32(c, e->loc, op, e->lhs->type);
  need_f32(c, e->loc, op, e->rhs->type);
  if (e->op == '@') {
    e->type = check_matmul(c, e, e->lhs->type, e->rhs->type);
    return;
  }
  e->type = check_elementwise(c, e, e->lhs->type, e->rhs->type);
  if (e->lhs->is_const && e->rhs->is_const && fold(e->op, e->lhs->ival, e->rhs->ival, &e->ival))
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

/* The functions of the language (issue 3 adds the unsupported ones). */
typedef struct FnSpec {
  const char *name;
  Builtin fn;
  int n, nreq;
  const char *params[4];
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
    {"concat", B_CONCAT, 0, 0, {0}},
    {"attention", B_ATTENTION, 0, 0, {0}},
    {"split_heads", B_SPLIT_HEADS, 0, 0, {0}},
    {"merge_heads", B_MERGE_HEADS, 0, 0, {0}},
    {"positional_encoding", B_POSENC, 0, 0, {0}},
    {"causal", B_CAUSAL, 0, 0, {0}},
};

static const FnSpec *find_function(const char *name) {
  for (size_t i = 0; i < sizeof functions / sizeof functions[0]; i++)
    if (strcmp(functions[i].name, name) == 0) return &functions[i];
  return NULL;
}

static bool is_supported(const FnSpec *f) { return f->fn < B_CONCAT; }

/* Layer constructors: the supported ones, then the ones issue 3 adds. */
static const char *const layer_names[] = {
    [L_LINEAR] = "Linear", [L_LAYERNORM] = "LayerNorm", [L_EMBEDDING] = "Embedding", [L_LSTM] = "LSTM",
    [L_GRU] = "GRU", [L_MHA] = "MultiheadAttention", [L_ADDITIVE] = "AdditiveAttention",
};

static LayerKind find_layer(const char *name) {
  for (int k = L_LINEAR; k <= L_ADDITIVE; k++)
    if (strcmp(layer_names[k], name) == 0) return (LayerKind)k;
  return L_NONE;
}

static void check_layer_call(Checker *c, Expr *e, Decl *layer) {
  static const char *const params[] = {"x"};
  Expr *args[1];
  bind_args(e, layer->name, params, 1, 1, args);
  e->decl = layer;
  Expr *x = operand(c, e, layer->name, args[0]);
  Type t = x->type;
  int64_t in = layer->largs[0];  /* Linear(in, out), LayerNorm(d) */
  if (t.rank == 0 || !dim_eq(t.dims[t.rank - 1], fixed(in)))
    user_error(x->loc, "shape mismatch in `%s`: expected last dim %lld, got %s", layer->name, (long long)in,
               type_str(c->m, t));
  if (layer->layer == L_LINEAR) t.dims[t.rank - 1] = fixed(layer->largs[1]);
  e->type = t;
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
    unknown_name(c, e->loc, e->name, "function");
  }
  if (!is_supported(f)) user_error(e->loc, "`%s` is not supported yet", e->name);
  e->fn = f->fn;
  Expr *args[4];
  bind_args(e, f->name, f->params, f->n, f->nreq, args);
  Expr *x = operand(c, e, f->name, args[0]);
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
  default:  /* elementwise functions */
    break;
  }
  e->type = t;
}

static void check_name(Checker *c, Expr *e) {
  Entry *en = table_find(&c->names, e->name);
  if (!en) {
    const FnSpec *f = find_function(e->name);
    if (f && !is_supported(f)) user_error(e->loc, "`%s` is not supported yet", e->name);
    if (f) user_error(e->loc, "`%s` is a function: call it, as in `%s(x)`", e->name, e->name);
    unknown_name(c, e->loc, e->name, "name");
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

static void check_expr(Checker *c, Expr *e) {
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
    user_error(e->loc, "indexing is not supported yet");
  }
  check_size(c, e->loc, e->type);
}

/* ---- declarations ---------------------------------------------------- */

static void add_param(Checker *c, const char *name, Type t, Loc loc) {
  Param *p = NEW(Param);
  p->name = name;
  p->type = t;
  p->loc = loc;
  check_size(c, loc, t);
  vec_push(&c->params, p);
}

/* A positive integer argument of a layer constructor. */
static int64_t layer_int(Checker *c, Expr *arg, const char *param, const char *layer) {
  const char *ctx = arena_printf("argument `%s` of `%s`", param, layer);
  int64_t v = eval_const(c, arg, ctx);
  if (v <= 0) user_error(arg->loc, "%s must be positive, got %lld", ctx, (long long)v);
  return v;
}

static bool layer_bool(Expr *arg, const char *param, const char *layer) {
  if (arg->kind == E_NAME && strcmp(arg->name, "true") == 0) return true;
  if (arg->kind == E_NAME && strcmp(arg->name, "false") == 0) return false;
  user_error(arg->loc, "argument `%s` of `%s` must be `true` or `false`", param, layer);
}

static void check_layer_decl(Checker *c, Decl *d) {
  Expr *e = d->value;
  if (e->kind != E_CALL)
    user_error(e->loc, "expected a layer such as `Linear(in, out)` after `layer %s =`", d->name);
  d->layer = find_layer(e->name);
  if (d->layer == L_NONE) user_error(e->loc, "unknown layer `%s`", e->name);
  if (d->layer != L_LINEAR && d->layer != L_LAYERNORM)
    user_error(e->loc, "layer `%s` is not supported yet", e->name);
  d->param0 = c->params.len;
  if (d->layer == L_LINEAR) {
    static const char *const params[] = {"in", "out", "bias"};
    Expr *args[3];
    bind_args(e, "Linear", params, 3, 2, args);
    d->largs[0] = layer_int(c, args[0], "in", "Linear");
    d->largs[1] = layer_int(c, args[1], "out", "Linear");
    d->bias = args[2] ? layer_bool(args[2], "bias", "Linear") : true;
    add_param(c, arena_printf("%s.weight", d->name), (Type){DT_F32, 2, {fixed(d->largs[1]), fixed(d->largs[0])}},
              d->name_loc);
    if (d->bias) add_param(c, arena_printf("%s.bias", d->name), (Type){DT_F32, 1, {fixed(d->largs[1])}}, d->name_loc);
  } else {
    static const char *const params[] = {"d", "eps"};
    Expr *args[2];
    bind_args(e, "LayerNorm", params, 2, 1, args);
    d->largs[0] = layer_int(c, args[0], "d", "LayerNorm");
    d->eps = args[1] ? eval_number(c, args[1], "`eps`") : 1e-5;
    if (!(d->eps > 0) || isinf(d->eps)) user_error(args[1]->loc, "`eps` must be a positive number, got %g", d->eps);
    Type t = {DT_F32, 1, {fixed(d->largs[0])}};
    add_param(c, arena_printf("%s.weight", d->name), t, d->name_loc);
    add_param(c, arena_printf("%s.bias", d->name), t, d->name_loc);
  }
  d->nparams = c->params.len - d->param0;
}

static void check_decl(Checker *c, Decl *d) {
  Entry *prev = table_find(&c->names, d->name);
  if (prev && prev->decl)
    user_error(d->name_loc, "duplicate declaration of `%s` (first declared at line %d)", d->name,
               prev->loc.line);
  if (prev)
    user_error(d->name_loc, "declaration of `%s` conflicts with the symbolic dim `%s` (first used at line %d)",
               d->name, d->name, prev->loc.line);
  switch (d->kind) {
  case D_CONST:
    d->ival = eval_const(c, d->value, arena_printf("const `%s`", d->name));
    d->type = scalar();
    break;
  case D_INPUT:
    d->type = check_type(c, d);
    d->index = c->inputs.len;
    vec_push(&c->inputs, d);
    break;
  case D_PARAM:
    d->type = check_type(c, d);
    if (d->type.dtype != DT_F32)
      user_error(d->texpr->loc, "params must be f32, got %s", type_str(c->m, d->type));
    d->index = c->params.len;
    add_param(c, d->name, d->type, d->name_loc);
    break;
  case D_LAYER:
    check_layer_decl(c, d);
    break;
  case D_LET:
  case D_OUTPUT:
    check_expr(c, d->value);
    if (d->value->type.dtype != DT_F32)
      user_error(d->value->loc, "`%s` would be %s: i32 tensors can only be passed to Embedding", d->name,
                 type_str(c->m, d->value->type));
    d->type = d->value->type;
    if (d->kind == D_OUTPUT) {
      d->index = c->outputs.len;
      vec_push(&c->outputs, d);
    }
    break;
  }
  table_put(&c->names, (Entry){d->name, d, -1, d->name_loc});
}

static Decl **decl_array(Vec *v) {
  Decl **a = NEW_ARRAY(Decl *, v->len + 1);
  for (int i = 0; i < v->len; i++) a[i] = v->items[i];
  return a;
}

static void check_model(Model *m) {
  Checker c = {.m = m};
  for (Decl *d = m->decls; d; d = d->next) {
    c.cur = d;
    check_decl(&c, d);
  }
  if (c.outputs.len == 0)
    user_error(m->name_loc, "model `%s` has no outputs (declare one with `output NAME = ...`)", m->name);
  m->syms = (const char **)c.syms.items;
  m->nsyms = c.syms.len;
  m->params = NEW_ARRAY(Param, c.params.len + 1);
  for (int i = 0; i < c.params.len; i++) m->params[i] = *(Param *)c.params.items[i];
  m->nparams = c.params.len;
  m->inputs = decl_array(&c.inputs);
  m->ninputs = c.inputs.len;
  m->outputs = decl_array(&c.outputs);
  m->noutputs = c.outputs.len;
}

void check_program(Program *prog) {
  Table models = {0};
  for (Model *m = prog->models; m; m = m->next) {
    Entry *prev = table_find(&models, m->name);
    if (prev)
      user_error(m->name_loc, "duplicate model `%s` (first declared at line %d)", m->name, prev->loc.line);
    check_model(m);
    table_put(&models, (Entry){m->name, NULL, -1, m->name_loc});
  }
}
