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

const char *binop_text(int op) {
  static const char *const cmp[] = {"==", "!=", "<", "<=", ">", ">="};
  if (binop_is_cmp(op)) return cmp[op - BIN_EQ];
  static char ch[5][2] = {"@", "+", "-", "*", "/"};
  for (int i = 0; i < 5; i++)
    if (ch[i][0] == op) return ch[i];
  internal_error("unknown binary operator %d", op);
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

Expr *ast_slice(Loc bracket_loc, Expr *base, Expr *lo, Expr *hi) {
  int d = base->depth;
  if (lo) d = max_int(d, lo->depth);
  if (hi) d = max_int(d, hi->depth);
  Expr *e = new_expr(E_SLICE, bracket_loc, 1 + d);
  e->lhs = base;
  e->rhs = lo;
  e->hi = hi;
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

Expr *ast_call_on(Expr *callee, Vec *args) {
  Arg *arr = NEW_ARRAY(Arg, args->len + 1);
  for (int i = 0; i < args->len; i++) arr[i] = *(Arg *)args->items[i];
  if (callee->kind == E_NAME) return ast_call(callee, arr, args->len);
  if (callee->kind == E_INDEX && callee->lhs->kind == E_NAME) {
    Expr *e = ast_call(callee->lhs, arr, args->len);
    e->callee_index = callee->rhs;
    e->depth = max_int(e->depth, callee->depth + 1);
    return e;
  }
  user_error(callee->loc, "only a function, a layer or an element of a layer array (`layers[0](x)`) can be called");
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

Vec *ast_decl1(Decl *d) { return ast_list_add(NULL, d); }

Vec *ast_decls(DeclKind kind, Loc kw_loc, Vec *names, Expr *value) {
  Vec *out = ast_list_new();
  if (names->len == 1) {
    Expr *n = names->items[0];
    if (strcmp(n->name, "_") == 0)
      user_error(n->loc, "`_` discards one of several results; `%s _ = ...` binds nothing",
                 kind == D_LET ? "let" : "output");
    return ast_list_add(out, ast_decl(kind, kw_loc, n->loc, n->name, (int)strlen(n->name), value, NULL));
  }
  for (int i = 0; i < names->len; i++) {
    Expr *n = names->items[i];
    for (int k = 0; k < i; k++) {
      Expr *o = names->items[k];
      if (strcmp(n->name, "_") != 0 && strcmp(n->name, o->name) == 0)
        user_error(n->loc, "`%s` is bound twice in one `%s`", n->name, kind == D_LET ? "let" : "output");
    }
    if (strcmp(n->name, "_") == 0) continue;
    Expr *r = new_expr(E_RESULT, n->loc, value->depth + 1);
    r->lhs = value;
    r->index = i;
    r->group = names->len;
    ast_list_add(out, ast_decl(kind, kw_loc, n->loc, n->name, (int)strlen(n->name), r, NULL));
  }
  if (out->len == 0) user_error(kw_loc, "every name is `_`: this `%s` binds nothing", kind == D_LET ? "let" : "output");
  return out;
}

Decl *ast_layer_array(Loc kw_loc, Loc name_loc, const char *name, int len, Expr *count, Expr *value) {
  Decl *d = ast_decl(D_LAYER, kw_loc, name_loc, name, len, value, NULL);
  d->count = count;
  return d;
}

BlockParam *ast_block_param(Loc loc, const char *name, int len, Expr *dflt) {
  BlockParam *p = NEW(BlockParam);
  p->name = arena_strndup(name, (size_t)len);
  p->loc = loc;
  p->dflt = dflt;
  return p;
}

static Decl *link_decls(Vec *decls) {
  Decl *head = NULL;
  for (int i = decls->len - 1; i >= 0; i--) {
    Vec *group = decls->items[i];
    for (int k = group->len - 1; k >= 0; k--) {
      Decl *d = group->items[k];
      d->next = head;
      head = d;
    }
  }
  return head;
}

Block *ast_block(Loc kw_loc, Loc name_loc, const char *name, int len, Vec *params, Vec *decls) {
  Block *b = NEW(Block);
  b->loc = kw_loc;
  b->name = arena_strndup(name, (size_t)len);
  b->name_loc = name_loc;
  b->params = NEW_ARRAY(BlockParam, params->len + 1);
  for (int i = 0; i < params->len; i++) {
    BlockParam *p = params->items[i];
    for (int k = 0; k < i; k++)
      if (strcmp(b->params[k].name, p->name) == 0)
        user_error(p->loc, "block `%s` has two parameters named `%s`", b->name, p->name);
    if (i > 0 && b->params[i - 1].dflt && !p->dflt)
      user_error(p->loc, "parameter `%s` without a default follows one with a default", p->name);
    b->params[i] = *p;
  }
  b->nparams = params->len;
  b->decls = link_decls(decls);
  return b;
}

Model *ast_model(Loc kw_loc, Loc name_loc, const char *name, int len, Vec *decls) {
  Model *m = NEW(Model);
  m->loc = kw_loc;
  m->name = arena_strndup(name, (size_t)len);
  m->name_loc = name_loc;
  m->decls = link_decls(decls);
  return m;
}

Program *ast_program_add(Program *p, Model *m, Block *b) {
  if (!p) p = NEW(Program);
  if (m) {
    m->order = p->nitems++;
    Model **tail = &p->models;
    while (*tail) tail = &(*tail)->next;
    *tail = m;
  } else {
    b->order = p->nitems++;
    Block **tail = &p->blocks;
    while (*tail) tail = &(*tail)->next;
    *tail = b;
  }
  return p;
}

Program *ast_program(const Source *src, Program *p) {
  p->src = src;
  if (!p->models) {
    Block *last = p->blocks;
    while (last->next) last = last->next;
    user_error(last->loc, "the file declares blocks but no model (expected `model NAME { ... }`)");
  }
  return p;
}

/* ---- copies of a block's declarations ------------------------------------ */

typedef struct CopyMap { Vec from, to; } CopyMap;   /* E_CALLs shared by E_RESULTs */

static Expr *copy_expr(const Expr *e, CopyMap *cm) {
  if (!e) return NULL;
  if (e->kind == E_CALL)
    for (int i = 0; i < cm->from.len; i++)
      if (cm->from.items[i] == e) return cm->to.items[i];
  Expr *c = NEW(Expr);
  *c = *e;
  c->lhs = copy_expr(e->lhs, cm);
  c->rhs = copy_expr(e->rhs, cm);
  c->hi = copy_expr(e->hi, cm);
  c->callee_index = copy_expr(e->callee_index, cm);
  if (e->kind == E_CALL) {
    c->args = NEW_ARRAY(Arg, e->nargs + 1);
    for (int i = 0; i < e->nargs; i++) {
      c->args[i] = e->args[i];
      c->args[i].value = copy_expr(e->args[i].value, cm);
    }
    vec_push(&cm->from, (void *)e);
    vec_push(&cm->to, c);
  }
  return c;
}

static TypeExpr *copy_type(const TypeExpr *t, CopyMap *cm) {
  if (!t) return NULL;
  TypeExpr *c = NEW(TypeExpr);
  *c = *t;
  c->dims = NEW_ARRAY(Expr *, t->ndims + 1);
  for (int i = 0; i < t->ndims; i++) c->dims[i] = copy_expr(t->dims[i], cm);
  return c;
}

Decl *ast_copy_decls(const Decl *decls) {
  CopyMap cm = {0};
  Decl *head = NULL, **tail = &head;
  for (const Decl *d = decls; d; d = d->next) {
    Decl *c = NEW(Decl);
    c->kind = d->kind;
    c->loc = d->loc;
    c->name = d->name;
    c->name_loc = d->name_loc;
    c->value = copy_expr(d->value, &cm);
    c->texpr = copy_type(d->texpr, &cm);
    c->count = copy_expr(d->count, &cm);
    *tail = c;
    tail = &c->next;
  }
  return head;
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
