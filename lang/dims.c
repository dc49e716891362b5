/* dims.c: dims that are sums of symbolic dims and an integer (design.md
 * 5.3, 5.7): `T+1` from a concat, `T-1` from a slice, `P+T` written in an
 * input type.
 *
 * A sum is a symbolic dim of the model like any other (Dim.sym), whose
 * Model.sums entry says what it is, always over the base dims (those the
 * caller gives).  Sums are interned by their normal form (terms in the
 * order of the dims' first appearance, then the integer): `T+S` and `S+T`
 * are one dim, and two dims match iff they are the same dim.  Sums never
 * broadcast (they are never a fixed 1).  The entry point computes them from
 * the base dims and checks each at the call (runtime/src/run.c). */
#include <stdio.h>
#include <string.h>

#include "checker.h"

/* The largest coefficient a sum may have: 2^31 dims times 2^20 keeps a
 * sum's value far inside int64. */
#define MAX_SUM_COEF (1 << 20)

/* d as a sum: a fixed size is k alone, a base dim one term. */
static SymSum form_of(Checker *c, Dim d) {
  SymSum f = {0};
  if (d.sym < 0) {
    f.k = d.size;
  } else if (d.sym < c->sums->len && c->sums->items[d.sym]) {
    f = *(SymSum *)c->sums->items[d.sym];
  } else {
    f.n = 1;
    f.sym[0] = d.sym;
    f.coef[0] = 1;
  }
  return f;
}

static const char *form_str(Checker *c, const SymSum *f) {
  char *s = "";
  for (int i = 0; i < f->n; i++) {
    int64_t a = f->coef[i];
    const char *sign = a < 0 ? "-" : *s ? "+" : "";
    int64_t m = a < 0 ? -a : a;
    s = m == 1 ? arena_printf("%s%s%s", s, sign, c->m->syms[f->sym[i]])
               : arena_printf("%s%s%lld*%s", s, sign, (long long)m, c->m->syms[f->sym[i]]);
  }
  if (f->k || !*s) s = arena_printf("%s%s%lld", s, f->k >= 0 && *s ? "+" : "", (long long)f->k);
  return s;
}

/* a + sign * b, each over base dims; false if a coefficient or the
 * integer leaves the limits or there are too many terms. */
static bool form_add(const SymSum *a, const SymSum *b, int64_t sign, SymSum *out) {
  SymSum r = *a;
  for (int i = 0; i < b->n; i++) {
    int j = 0;
    while (j < r.n && r.sym[j] != b->sym[i]) j++;
    if (j == r.n) {
      if (r.n == MAX_SUM_TERMS) return false;
      r.sym[r.n] = b->sym[i];
      r.coef[r.n++] = 0;
    }
    r.coef[j] += sign * b->coef[i];
    if (r.coef[j] > MAX_SUM_COEF || r.coef[j] < -MAX_SUM_COEF) return false;
  }
  if (__builtin_mul_overflow(sign, b->k, &(int64_t){0}) || __builtin_add_overflow(r.k, sign * b->k, &r.k) ||
      r.k > MAX_NUMEL || r.k < -MAX_NUMEL)
    return false;
  /* drop zero terms, order by the dims' first appearance */
  int n = 0;
  for (int i = 0; i < r.n; i++)
    if (r.coef[i]) {
      r.sym[n] = r.sym[i];
      r.coef[n++] = r.coef[i];
    }
  r.n = n;
  for (int i = 1; i < r.n; i++)
    for (int j = i; j > 0 && r.sym[j - 1] > r.sym[j]; j--) {
      int s = r.sym[j];
      r.sym[j] = r.sym[j - 1];
      r.sym[j - 1] = s;
      int64_t cf = r.coef[j];
      r.coef[j] = r.coef[j - 1];
      r.coef[j - 1] = cf;
    }
  *out = r;
  return true;
}

/* The dim a normal form stands for: a fixed size (which must be at least
 * 1: `what` says where it came from), a base dim, or the model's sum dim
 * with that form, made the first time. */
static Dim form_dim(Checker *c, const SymSum *f, Loc loc, const char *what) {
  if (f->n == 0) {
    if (f->k < 1) user_error(loc, "%s is %lld: a fixed dim must be at least 1", what, (long long)f->k);
    return fixed(f->k);
  }
  if (f->n == 1 && f->coef[0] == 1 && f->k == 0) return (Dim){0, f->sym[0]};
  for (int s = 0; s < c->syms->len; s++) {
    SymSum *g = c->sums->len > s ? c->sums->items[s] : NULL;
    if (g && g->n == f->n && g->k == f->k && !memcmp(g->sym, f->sym, sizeof(int) * (size_t)f->n) &&
        !memcmp(g->coef, f->coef, sizeof(int64_t) * (size_t)f->n))
      return (Dim){0, s};
  }
  if (c->syms->len >= MAX_SYMS)
    user_error(loc, "%s needs the dim %s, but a model has at most %d symbolic dims (sums included)", what,
               form_str(c, f), MAX_SYMS);
  SymSum *copy = NEW(SymSum);
  *copy = *f;
  vec_push(c->syms, (void *)form_str(c, f));
  vec_push(c->sums, copy);
  c->m->syms = (const char **)c->syms->items;
  c->m->sums = (SymSum **)c->sums->items;
  c->m->nsyms = c->syms->len;
  return (Dim){0, c->syms->len - 1};
}

Dim dim_sum(Checker *c, Dim a, Dim b, int64_t sign, Loc loc, const char *what) {
  SymSum fa = form_of(c, a), fb = form_of(c, b), r;
  if (!form_add(&fa, &fb, sign, &r))
    user_error(loc, "%s would be %s %c %s, a sum past the limits (%d terms, coefficients up to 2^20)", what,
               dim_str(c->m, a), sign < 0 ? '-' : '+', dim_str(c->m, b), MAX_SUM_TERMS);
  return form_dim(c, &r, loc, what);
}

/* The length of the slice [lo:hi] of a dim d (either bound absent: its
 * has_ flag false; negative bounds count from the end), as a dim: d - lo
 * for [lo:], hi - lo for [lo:hi] with both of one sign, ...  A fixed
 * length must be at least 1. */
Dim slice_len(Checker *c, Dim d, bool has_lo, int64_t lo, bool has_hi, int64_t hi, Loc loc) {
  SymSum fd = form_of(c, d), zero = {0}, start, end, len;
  SymSum flo = {0}, fhi = {0};
  flo.k = lo;
  fhi.k = hi;
  bool ok = true;
  if (!has_lo) start = zero;
  else if (lo >= 0) start = flo;
  else ok &= form_add(&fd, &flo, 1, &start);
  if (!has_hi) end = fd;
  else if (hi >= 0) end = fhi;
  else ok &= form_add(&fd, &fhi, 1, &end);
  if (!ok || !form_add(&end, &start, -1, &len)) user_error(loc, "this slice's length is past the limits of a sum");
  if (len.n == 0 && len.k < 1)
    user_error(loc, "this slice of %s is empty (its length would be %lld)", dim_str(c->m, d), (long long)len.k);
  return form_dim(c, &len, loc, "the length of this slice");
}

bool dim_is_sum(const Model *m, Dim d) { return d.sym >= 0 && m->sums && m->sums[d.sym]; }

/* A dim written in a type as an expression over integers, consts and
 * symbolic names introduced before (`P+T`, `T-1`, `2*T`): its normal form
 * in *f.  Names resolve through `lookup` (the names table, where a block
 * input's name is bound to its argument's dim). */
static void eval_form(Checker *c, Expr *e, SymSum *f, bool *symbolic) {
  e->type = scalar();
  switch (e->kind) {
  case E_NAME: {
    Entry *en = table_find(&c->names, e->name);
    if (en && en->decl) break;   /* a const: below */
    if (!en)
      user_error(e->loc, "unknown name `%s` in the dim: a dim that is a sum may only use symbolic dims "
                 "introduced before it (in an earlier input or dim) and consts", e->name);
    *f = form_of(c, en->is_bound ? en->bound : (Dim){0, en->sym});
    *symbolic = true;
    return;
  }
  case E_NEG: {
    SymSum a, zero = {0};
    eval_form(c, e->lhs, &a, symbolic);
    if (!form_add(&zero, &a, -1, f)) user_error(e->loc, "this dim is past the limits of a sum");
    return;
  }
  case E_BINARY:
    if (e->op == '+' || e->op == '-') {
      SymSum a, b;
      bool sa = false, sb = false;
      eval_form(c, e->lhs, &a, &sa);
      eval_form(c, e->rhs, &b, &sb);
      if (!sa && !sb) break;
      if (!form_add(&a, &b, e->op == '+' ? 1 : -1, f)) user_error(e->loc, "this dim is past the limits of a sum");
      *symbolic = true;
      return;
    }
    if (e->op == '*') {
      SymSum a, b, zero = {0};
      bool sa = false, sb = false;
      eval_form(c, e->lhs, &a, &sa);
      eval_form(c, e->rhs, &b, &sb);
      if (!sa && !sb) break;
      if (sa && sb) user_error(e->loc, "a dim may be a sum of symbolic dims, not a product of two");
      SymSum *s = sa ? &a : &b;
      int64_t k = sa ? b.k : a.k;
      *f = zero;
      for (int i = 0; i < s->n; i++) {
        if (__builtin_mul_overflow(s->coef[i], k, &s->coef[i]) || s->coef[i] > MAX_SUM_COEF ||
            s->coef[i] < -MAX_SUM_COEF)
          user_error(e->loc, "this dim is past the limits of a sum");
      }
      if (__builtin_mul_overflow(s->k, k, &s->k)) user_error(e->loc, "this dim is past the limits of a sum");
      if (!form_add(&zero, s, 1, f)) user_error(e->loc, "this dim is past the limits of a sum");
      *symbolic = true;
      return;
    }
    break;
  default:
    break;
  }
  /* no symbolic name below: an integer */
  *f = (SymSum){0};
  f->k = eval_const(c, e, "a dim");
}

Dim eval_dim(Checker *c, Expr *e) {
  SymSum f;
  bool symbolic = false;
  eval_form(c, e, &f, &symbolic);
  if (!symbolic) {
    if (f.k <= 0) user_error(e->loc, "dim must be positive, got %lld", (long long)f.k);
    return fixed(f.k);
  }
  return form_dim(c, &f, e->loc, "this dim");
}
