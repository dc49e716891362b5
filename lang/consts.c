/* consts.c: compile-time integers and numbers: const expressions (exact
 * int64 arithmetic: consts, dims, axis=, layer sizes, indices) and
 * compile-time numbers (double: eps=, scale=, masked_fill's value, with the
 * predeclared `inf`).
 *
 * Needs: check.c's names table and messages (unknown_name, kind_noun). */
#include <math.h>
#include <string.h>

#include "checker.h"

/* Is `e` the predeclared number `inf` (and not a declared name)? */
bool is_inf_name(Checker *c, Expr *e) {
  return e->kind == E_NAME && strcmp(e->name, "inf") == 0 && !table_find(&c->names, e->name);
}

/* ---- const expressions ---------------------------------------------------- */

/* op applied to int64s: false on overflow, division by zero or a
 * remainder. */
bool fold_int(int op, int64_t a, int64_t b, int64_t *r) {
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
int64_t eval_const(Checker *c, Expr *e, const char *ctx) {
  e->type = scalar();
  switch (e->kind) {
  case E_NUM:
    if (!e->is_int) user_error(e->loc, "%s must be an integer, got `%s`", ctx, e->text);
    break;
  case E_NAME: {
    Entry *en = table_find(&c->names, e->name);
    if (!en && is_inf_name(c, e))
      user_error(e->loc, "%s must be a compile-time integer, but `inf` is not an integer", ctx);
    if (!en) unknown_name(c, e->loc, e->name);
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
    if (e->op == '@' || binop_is_cmp(e->op))
      user_error(e->loc, "%s must be a compile-time integer; `%s` is not allowed there", ctx, binop_text(e->op));
    int64_t a = eval_const(c, e->lhs, ctx), b = eval_const(c, e->rhs, ctx);
    if (!fold_int(e->op, a, b, &e->ival)) {
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
  case E_SLICE:
    user_error(e->loc, "%s must be a compile-time integer, not a slice", ctx);
  case E_RESULT:
    user_error(e->loc, "%s must be a compile-time integer, not a call's result", ctx);
  }
  e->is_const = true;
  return e->ival;
}

/* A compile-time number (eps=, p=): literals, consts and + - * / of them. */
double eval_number(Checker *c, Expr *e, const char *ctx) {
  e->type = scalar();
  switch (e->kind) {
  case E_NUM:
    return e->num;
  case E_NAME: {
    Entry *en = table_find(&c->names, e->name);
    if (!en && is_inf_name(c, e)) return INFINITY;
    if (!en) unknown_name(c, e->loc, e->name);
    if (!en->decl) user_error(e->loc, "symbolic dim `%s` cannot be used as a value", e->name);
    if (en->decl->kind != D_CONST)
      user_error(e->loc, "%s must be a number, but `%s` is %s", ctx, e->name, kind_noun(en->decl->kind));
    e->decl = en->decl;
    return (double)en->decl->ival;
  }
  case E_NEG:
    return -eval_number(c, e->lhs, ctx);
  case E_BINARY: {
    if (e->op == '@' || binop_is_cmp(e->op))
      user_error(e->loc, "%s must be a number; `%s` is not allowed there", ctx, binop_text(e->op));
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
  case E_SLICE:
    user_error(e->loc, "%s must be a number, not a slice", ctx);
  case E_RESULT:
    user_error(e->loc, "%s must be a number, not a call's result", ctx);
  }
  internal_error("unknown expression kind %d", e->kind);
}
