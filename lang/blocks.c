/* blocks.c: user-defined blocks, layer arrays and calls with several results
 * (docs/language.md, "Blocks and layer arrays").
 *
 * A block is checked per instantiation, as a C++ template is: `layer enc =
 * B(64, 4)` checks a copy of B's consts, params and layers under the path
 * `enc`, once (their params are `enc.norm1.weight`: the state_dict keys of a
 * PyTorch submodule); each call `enc(x)` checks a fresh copy of B's inputs,
 * lets and outputs, B's symbolic dims bound to the argument's dims.  An error
 * inside names the instance and the call in notes.  Lowering inlines the
 * checked copies (compiler/lower.c).
 *
 * Needs: a parsed program; check.c for everything but blocks.
 * Guarantees: a block call's Expr has its BlockCall, an array call its ArrayScan,
 * every call its results (nresults, rtypes, rnames). */
#include <string.h>

#include "checker.h"

/* Layer arrays have at most this many instances (each counts toward every
 * other limit too). */
#define MAX_ARRAY 4096

Block *find_block(Checker *c, const char *name, Loc loc) {
  for (Block *b = c->prog->blocks; b; b = b->next) {
    if (strcmp(b->name, name) != 0) continue;
    if (b->order < c->order) return b;
    if (c->block == b) user_error(loc, "block `%s` cannot use itself: blocks may not be recursive", name);
    user_error(loc, "block `%s` is used before its declaration (line %d)", name, b->loc.line);
  }
  return NULL;
}

static Checker nested(Checker *c, Block *b, const char *prefix) {
  Checker n = {.m = c->m, .prog = c->prog, .order = b->order, .block = b, .prefix = prefix, .ops = c->ops,
               .syms = c->syms, .sums = c->sums, .params = c->params};
  return n;
}

static Decl *const_decl(const char *name, Loc loc, int64_t v) {
  Decl *d = NEW(Decl);
  d->kind = D_CONST;
  d->name = name;
  d->loc = d->name_loc = loc;
  d->ival = v;
  d->type = scalar();
  return d;
}

void check_block_instance(Checker *c, Decl *d, Block *b) {
  Expr *call = d->value;
  d->layer = L_BLOCK;
  d->block = b;
  d->param0 = c->params->len;
  Checker ic = nested(c, b, d->name);
  /* arguments are the caller's compile-time integers; a default is the
   * block's own expression, over the parameters before it */
  const char **pnames = NEW_ARRAY(const char *, b->nparams + 1);
  int nreq = 0;
  for (int i = 0; i < b->nparams; i++) {
    pnames[i] = b->params[i].name;
    if (!b->params[i].dflt) nreq = i + 1;
  }
  Expr **args = NEW_ARRAY(Expr *, b->nparams + 1);
  bind_args(call, b->name, pnames, b->nparams, nreq, args);
  int64_t *vals = NEW_ARRAY(int64_t, b->nparams + 1);
  for (int i = 0; i < b->nparams; i++)
    if (args[i]) vals[i] = eval_const(c, args[i], arena_printf("argument `%s` of `%s`", pnames[i], b->name));
  diag_push_context(d->name_loc, arena_printf("in `%s`, an instance of block `%s`", d->name, b->name));
  d->inst_args = NEW_ARRAY(Decl *, b->nparams + 1);
  for (int i = 0; i < b->nparams; i++) {
    if (!args[i]) vals[i] = eval_const(&ic, b->params[i].dflt, arena_printf("the default of `%s`", pnames[i]));
    d->inst_args[i] = const_decl(pnames[i], b->params[i].loc, vals[i]);
    table_put(&ic.names, (Entry){pnames[i], d->inst_args[i], -1, b->params[i].loc, false, {0, -1}});
  }
  Decl *copy = ast_copy_decls(b->decls);
  for (Decl *x = copy; x; x = x->next) {
    x->local = x->name;
    x->name = arena_printf("%s.%s", d->name, x->local);
    if (x->kind == D_CONST || x->kind == D_PARAM || x->kind == D_LAYER) {
      ic.cur = x;
      check_decl(&ic, x);
    }
  }
  d->inst_decls = copy;
  d->nparams = c->params->len - d->param0;
  diag_pop_context();
}

void check_layer_array(Checker *c, Decl *d) {
  const char *name = d->local ? d->local : d->name;
  int64_t n = eval_const(c, d->count, arena_printf("the size of layer array `%s`", name));
  if (n < 1) user_error(d->count->loc, "layer array `%s` needs at least one instance, got %lld", name, (long long)n);
  if (n > MAX_ARRAY)
    user_error(d->count->loc, "layer array `%s` has %lld instances; at most %d are supported", name, (long long)n,
               MAX_ARRAY);
  d->param0 = c->params->len;
  d->nelems = (int)n;
  d->elems = NEW_ARRAY(Decl *, n + 1);
  for (int i = 0; i < n; i++) {
    Decl *x = NEW(Decl);
    x->kind = D_LAYER;
    x->loc = d->loc;
    x->name = arena_printf("%s.%d", d->name, i);
    x->name_loc = d->name_loc;
    x->value = d->value;
    check_layer_decl(c, x);
    d->elems[i] = x;
  }
  d->layer = d->elems[0]->layer;
  d->block = d->elems[0]->block;
  d->nparams = c->params->len - d->param0;
}

Decl *array_element(Checker *c, Expr *e, Decl *arr) {
  if (!arr->nelems)
    user_error(e->callee_index->loc, "`%s` is not a layer array (`layer %s[N] = ...`): it cannot be indexed",
               e->name, e->name);
  int64_t i = eval_const(c, e->callee_index, "an index");
  if (i < -arr->nelems || i >= arr->nelems)
    user_error(e->callee_index->loc, "index %lld is out of range for layer array `%s` of %d instances",
               (long long)i, e->name, arr->nelems);
  return arr->elems[i < 0 ? i + arr->nelems : i];
}

/* "f32[T, D]" as an input of a block declares it. */
static const char *declared_str(Checker *c, const TypeExpr *te) {
  char *s = arena_printf("%s[", te->dtype == DT_F32 ? "f32" : "i32");
  for (int i = 0; i < te->ndims; i++) {
    const Expr *x = te->dims[i];
    const char *d = x->kind == E_NAME ? x->name : x->is_const ? arena_printf("%lld", (long long)x->ival) : "?";
    s = arena_printf("%s%s%s", s, i ? ", " : "", d);
  }
  return arena_printf("%s]", s);
}

/* A block's input takes its argument's type exactly: each symbolic name of
 * the declared type is bound to the argument's dim (the first time it
 * appears in this call) or must equal it; a const dim must equal it. */
static void bind_input(Checker *c, Decl *d, Expr *arg, Block *b) {
  TypeExpr *te = d->texpr;
  Type t = arg->type;
  if (te->ndims > MAX_RANK)
    user_error(te->dims[MAX_RANK]->loc, "too many dims: tensors have rank %d at most", MAX_RANK);
  int bad = -1;
  for (int i = 0; i < te->ndims && i < t.rank && bad < 0; i++) {
    Expr *x = te->dims[i];
    x->type = scalar();
    if (x->kind == E_NAME) {
      Entry *en = table_find(&c->names, x->name);
      if (!en) {
        table_put(&c->names, (Entry){x->name, NULL, -1, x->loc, true, t.dims[i]});
        continue;
      }
      if (en->is_bound) {
        if (!dim_eq(en->bound, t.dims[i])) bad = i;
        continue;
      }
      if (en->decl && en->decl->kind != D_CONST)
        user_error(x->loc, "`%s` is %s; a dim must be an integer, a const or a symbolic name", x->name,
                   en->decl->kind == D_INPUT ? "an input" : "not a const");
    }
    if (!dim_eq(t.dims[i], eval_dim(c, x))) bad = i;
  }
  if (te->dtype != t.dtype || te->ndims != t.rank || bad >= 0) {
    const char *why = te->dtype != t.dtype ? "the dtypes differ"
                    : te->ndims != t.rank  ? arena_printf("rank %d is not %d", t.rank, te->ndims)
                                           : arena_printf("dim %d is %s", bad, dim_str(c->m, t.dims[bad]));
    if (bad >= 0 && te->dims[bad]->kind == E_NAME) {
      Entry *en = table_find(&c->names, te->dims[bad]->name);
      if (en && en->is_bound)
        why = arena_printf("%s, but `%s` is %s here", why, te->dims[bad]->name, dim_str(c->m, en->bound));
      else if (en && en->decl)
        why = arena_printf("%s, but `%s` is %lld", why, te->dims[bad]->name, (long long)en->decl->ival);
    }
    user_error(arg->loc, "shape mismatch: input `%s` of block `%s` is %s, got %s: %s", d->local, b->name,
               declared_str(c, te), type_str(c->m, t), why);
  }
  d->type = t;
}

static Decl **decl_vec(Vec *v) {
  Decl **a = NEW_ARRAY(Decl *, v->len + 1);
  for (int i = 0; i < v->len; i++) a[i] = v->items[i];
  return a;
}

void check_block_call(Checker *c, Expr *e, Decl *inst) {
  Block *b = inst->block;
  Decl *copy = ast_copy_decls(b->decls);
  int nin = 0;
  for (Decl *x = copy; x; x = x->next) nin += x->kind == D_INPUT;
  const char **inames = NEW_ARRAY(const char *, nin + 1);
  nin = 0;
  for (Decl *x = copy; x; x = x->next)
    if (x->kind == D_INPUT) inames[nin++] = x->name;
  BlockCall *bc = NEW(BlockCall);
  bc->args = NEW_ARRAY(Expr *, nin + 1);
  bc->inputs = NEW_ARRAY(Decl *, nin + 1);
  bc->ninputs = nin;
  bind_args(e, inst->name, inames, nin, nin, bc->args);
  for (int i = 0; i < nin; i++)
    if (!bc->args[i]->checked || bc->args[i]->kind != E_CALL) check_expr(c, bc->args[i]);

  diag_push_context(e->loc, arena_printf("in this call of `%s`, an instance of block `%s`", inst->name, b->name));
  Checker cc = nested(c, b, inst->name);
  for (int i = 0; i < b->nparams; i++)
    table_put(&cc.names, (Entry){b->params[i].name, inst->inst_args[i], -1, b->params[i].loc, false, {0, -1}});
  Vec body = {0};
  Decl *idecl = inst->inst_decls;
  int k = 0;
  for (Decl *x = copy; x; x = x->next, idecl = idecl->next) {
    if (x->kind == D_CONST || x->kind == D_PARAM || x->kind == D_LAYER) {
      table_put(&cc.names, (Entry){idecl->local, idecl, -1, idecl->name_loc, false, {0, -1}});
      continue;
    }
    x->local = x->name;
    x->name = arena_printf("%s.%s", inst->name, x->local);
    cc.cur = x;
    if (x->kind == D_INPUT) {
      Entry *prev = table_find(&cc.names, x->local);
      if (prev && prev->decl)
        user_error(x->name_loc, "duplicate declaration of `%s` (first declared at line %d)", x->local,
                   prev->loc.line);
      bind_input(&cc, x, bc->args[k], b);
      x->index = k;
      bc->inputs[k++] = x;
      table_put(&cc.names, (Entry){x->local, x, -1, x->name_loc, false, {0, -1}});
      continue;
    }
    check_decl(&cc, x);
    vec_push(&body, x);
  }
  if (cc.outputs.len == 0)
    user_error(b->name_loc, "block `%s` has no outputs (its results are declared with `output NAME = ...`)", b->name);
  if (cc.outputs.len > MAX_RESULTS)
    user_error(b->name_loc, "block `%s` has %d outputs; at most %d are supported", b->name, cc.outputs.len, MAX_RESULTS);
  Decl **list = decl_vec(&body);
  for (int i = 0; i < body.len; i++) list[i]->next = i + 1 < body.len ? list[i + 1] : NULL;
  bc->decls = body.len ? list[0] : NULL;
  bc->outputs = decl_vec(&cc.outputs);
  bc->noutputs = cc.outputs.len;
  e->bcall = bc;
  e->inst_name = inst->name;
  e->nresults = bc->noutputs;
  e->rtypes = NEW_ARRAY(Type, bc->noutputs);
  e->rnames = NEW_ARRAY(const char *, bc->noutputs);
  for (int i = 0; i < bc->noutputs; i++) {
    e->rtypes[i] = bc->outputs[i]->type;
    e->rnames[i] = bc->outputs[i]->local;
  }
  e->type = e->rtypes[0];
  diag_pop_context();
}

/* The declared rank of the block input that argument k of call e binds. */
static int input_rank(const Block *b, const Expr *e, int k) {
  int pos = 0;
  for (const Decl *x = b->decls; x; x = x->next) {
    if (x->kind != D_INPUT) continue;
    if (e->args[k].name ? strcmp(e->args[k].name, x->name) == 0 : pos == k) return x->texpr->ndims;
    pos++;
  }
  return -1;
}

static Expr *int_literal(Loc loc, int64_t v) {
  Expr *n = NEW(Expr);
  n->kind = E_NUM;
  n->loc = loc;
  n->num = (double)v;
  n->ival = v;
  n->is_int = true;
  n->text = arena_printf("%lld", (long long)v);
  n->depth = 1;
  n->sym = -1;
  return n;
}

void check_scan(Checker *c, Expr *e, Decl *arr) {
  int n = arr->nelems;
  if (e->nargs == 0 || e->args[0].name)
    user_error(e->loc, "calling layer array `%s` as a whole needs a first, positional argument: it goes through "
               "the instances in turn", e->name);
  for (int k = 0; k < e->nargs; k++) check_expr(c, e->args[k].value);
  Type first = e->args[0].value->type;
  ArrayScan *sc = NEW(ArrayScan);
  sc->calls = NEW_ARRAY(Expr *, n + 1);
  sc->n = n;
  for (int i = 0; i < n; i++) {
    Decl *el = arr->elems[i];
    Expr *ci = NEW(Expr);
    ci->kind = E_CALL;
    ci->loc = e->loc;
    ci->name = el->name;
    ci->depth = e->depth;
    ci->sym = -1;
    ci->nargs = e->nargs;
    ci->args = NEW_ARRAY(Arg, e->nargs + 1);
    for (int k = 0; k < e->nargs; k++) {
      ci->args[k] = e->args[k];
      Expr *a = e->args[k].value;
      if (k == 0 && i > 0) {
        Expr *r = NEW(Expr);
        r->kind = E_RESULT;
        r->loc = a->loc;
        r->lhs = sc->calls[i - 1];
        r->depth = a->depth;
        r->sym = -1;
        ci->args[k].value = r;
      } else if (k > 0 && el->layer == L_BLOCK && a->type.rank == input_rank(el->block, e, k) + 1 &&
                 a->type.dims[0].sym < 0 && a->type.dims[0].size == n) {
        /* each instance's own row of [N, ...]: a view, never a copy */
        Expr *x = NEW(Expr);
        x->kind = E_INDEX;
        x->loc = a->loc;
        x->lhs = a;
        x->rhs = int_literal(a->loc, i);
        x->depth = a->depth + 1;
        x->sym = -1;
        ci->args[k].value = x;
      }
    }
    check_call_to(c, ci, el);
    if (!type_eq(ci->type, first))
      user_error(e->loc, "instance `%s` of layer array `%s` returns %s, but its first argument is %s: an array "
                 "called as a whole passes each instance's first result to the next", el->name, e->name,
                 type_str(c->m, ci->type), type_str(c->m, first));
    sc->calls[i] = ci;
  }
  Expr *c0 = sc->calls[0];
  e->nresults = c0->nresults;
  e->rnames = c0->rnames;
  e->rtypes = NEW_ARRAY(Type, e->nresults);
  e->rtypes[0] = sc->calls[n - 1]->type;
  for (int k = 1; k < e->nresults; k++) {
    Type t = c0->rtypes[k];
    if (t.rank + 1 > MAX_RANK)
      user_error(e->loc, "result `%s` of layer array `%s`, %s stacked over its %d instances, would have rank %d; "
                 "tensors have rank %d at most", c0->rnames[k], e->name, type_str(c->m, t), n, t.rank + 1, MAX_RANK);
    memmove(t.dims + 1, t.dims, sizeof(Dim) * (size_t)t.rank);
    t.dims[0] = fixed(n);
    t.rank++;
    e->rtypes[k] = t;
  }
  e->scan = sc;
  e->decl = arr;
  e->type = e->rtypes[0];
}

void check_result(Checker *c, Expr *e) {
  Expr *call = e->lhs;
  if (call->kind != E_CALL || !call->checked) check_expr(c, call);
  int n = call->kind == E_CALL ? call->nresults : 1;
  if (e->group && e->group != n) {
    const char *what = call->kind == E_CALL ? arena_printf("`%s(...)`", call->name) : "this expression";
    if (n == 1) user_error(call->loc, "%d names are bound, but %s gives 1 result", e->group, what);
    const char *list = "";
    for (int i = 0; i < n; i++) list = arena_printf("%s%s`%s`", list, i ? ", " : "", call->rnames[i]);
    user_error(call->loc, "%d names are bound, but %s gives %d results: %s", e->group, what, n, list);
  }
  e->type = call->kind == E_CALL ? call->rtypes[e->index] : call->type;
}
