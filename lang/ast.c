/* ast.c: the builders the grammar's actions call, and type printing. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ast.h"

/* ---- expressions ------------------------------------------------------- */

static Expr *new_expr(ExprKind kind, Loc loc, int depth) {
  if (depth > MAX_EXPR_DEPTH)
    user_error(loc, "expression nested too deeply (max depth %d)", MAX_EXPR_DEPTH);
  Expr *e = NEW(Expr);
  e->kind = kind;
  e->loc = loc;
  e->depth = depth;
  e->sym = -1;
  return e;
}

static int max_int(int a, int b) { return a > b ? a : b; }

Expr *ast_num(Loc loc, const char *text, int len) {
  Expr *e = new_expr(E_NUM, loc, 1);
  e->text = arena_strndup(text, (size_t)len);
  e->is_int = !strpbrk(e->text, ".eE");
  if (e->is_int) {
    /* The lexer made sure it fits in int64. */
    int64_t v = 0;
    for (int i = 0; i < len; i++) v = v * 10 + (text[i] - '0');
    e->ival = v;
    e->num = (double)v;
  } else {
    errno = 0;
    e->num = strtod(e->text, NULL);
    if (isinf(e->num)) user_error(loc, "number `%s` is out of range", e->text);
  }
  return e;
}

Expr *ast_name(Loc loc, const char *text, int len) {
  Expr *e = new_expr(E_NAME, loc, 1);
  e->name = arena_strndup(text, (size_t)len);
  return e;
}

Expr *ast_binary(Loc op_loc, int op, Expr *lhs, Expr *rhs) {
  Expr *e = new_expr(E_BINARY, op_loc, 1 + max_int(lhs->depth, rhs->depth));
  e->op = op;
  e->lhs = lhs;
  e->rhs = rhs;
  return e;
}

Expr *ast_neg(Loc op_loc, Expr *operand) {
  Expr *e = new_expr(E_NEG, op_loc, 1 + operand->depth);
  e->lhs = operand;
  return e;
}

Expr *ast_call(Expr *callee_name, Arg *args, int nargs) {
  int depth = 1;
  for (int i = 0; i < nargs; i++) depth = max_int(depth, 1 + args[i].value->depth);
  Expr *e = new_expr(E_CALL, callee_name->loc, depth);
  e->name = callee_name->name;
  e->args = args;
  e->nargs = nargs;
  return e;
}

Expr *ast_index(Loc bracket_loc, Expr *base, Expr *index) {
  Expr *e = new_expr(E_INDEX, bracket_loc, 1 + max_int(base->depth, index->depth));
  e->lhs = base;
  e->rhs = index;
  return e;
}

/* ---- lists and calls ----------------------------------------------------- */

Vec *ast_list_new(void) { return NEW(Vec); }

Vec *ast_list_add(Vec *list, void *item) {
  if (!list) list = ast_list_new();
  vec_push(list, item);
  return list;
}

Arg *ast_arg(Loc name_loc, const char *name, int len, Expr *value) {
  Arg *a = NEW(Arg);
  a->name = name ? arena_strndup(name, (size_t)len) : NULL;
  a->name_loc = name_loc;
  a->value = value;
  return a;
}

Vec *ast_args_add(Vec *list, Arg *arg) {
  if (list && list->len > 0) {
    Arg *last = list->items[list->len - 1];
    if (last->name && !arg->name)
      user_error(arg->value->loc, "positional argument after keyword argument `%s`", last->name);
  }
  return ast_list_add(list, arg);
}

Expr *ast_call_args(Loc name_loc, const char *name, int len, Vec *args) {
  Arg *arr = NEW_ARRAY(Arg, args->len + 1);
  for (int i = 0; i < args->len; i++) arr[i] = *(Arg *)args->items[i];
  return ast_call(ast_name(name_loc, name, len), arr, args->len);
}

/* ---- declarations ------------------------------------------------------ */

TypeExpr *ast_type(DType dtype, Loc loc, Vec *dims) {
  TypeExpr *t = NEW(TypeExpr);
  t->dtype = dtype;
  t->loc = loc;
  t->dims = (Expr **)dims->items;
  t->ndims = dims->len;
  return t;
}

Decl *ast_decl(DeclKind kind, Loc kw_loc, Loc name_loc, const char *name, int len,
               Expr *value, TypeExpr *texpr) {
  Decl *d = NEW(Decl);
  d->kind = kind;
  d->loc = kw_loc;
  d->name = arena_strndup(name, (size_t)len);
  d->name_loc = name_loc;
  d->value = value;
  d->texpr = texpr;
  return d;
}

Model *ast_model(Loc kw_loc, Loc name_loc, const char *name, int len, Vec *decls) {
  Model *m = NEW(Model);
  m->loc = kw_loc;
  m->name = arena_strndup(name, (size_t)len);
  m->name_loc = name_loc;
  for (int i = decls->len - 1; i >= 0; i--) {
    Decl *d = decls->items[i];
    d->next = m->decls;
    m->decls = d;
  }
  return m;
}

Program *ast_program(const Source *src, Vec *models) {
  Program *p = NEW(Program);
  p->src = src;
  for (int i = models->len - 1; i >= 0; i--) {
    Model *m = models->items[i];
    m->next = p->models;
    p->models = m;
  }
  return p;
}

/* ---- types ------------------------------------------------------------ */

const char *dim_str(const Model *m, Dim d) {
  if (d.sym < 0) return arena_printf("%lld", (long long)d.size);
  if (m && d.sym < m->nsyms) return m->syms[d.sym];
  return arena_printf("<sym%d>", d.sym);
}

const char *type_str(const Model *m, Type t) {
  const char *s = t.dtype == DT_I32 ? "i32[" : "f32[";
  for (int i = 0; i < t.rank && i < MAX_RANK; i++)
    s = arena_printf("%s%s%s", s, i ? ", " : "", dim_str(m, t.dims[i]));
  return arena_printf("%s]", s);
}

bool dim_eq(Dim a, Dim b) {
  if (a.sym >= 0 || b.sym >= 0) return a.sym == b.sym;
  return a.size == b.size;
}

bool type_eq(Type a, Type b) {
  if (a.dtype != b.dtype || a.rank != b.rank) return false;
  for (int i = 0; i < a.rank; i++)
    if (!dim_eq(a.dims[i], b.dims[i])) return false;
  return true;
}

int64_t type_numel_known(Type t) {
  int64_t n = 1;
  for (int i = 0; i < t.rank; i++)
    if (t.dims[i].sym < 0 && __builtin_mul_overflow(n, t.dims[i].size, &n)) return INT64_MAX;
  return n;
}
