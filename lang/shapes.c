/* shapes.c: the functions that view a tensor with another shape, as
 * PyTorch code writes them (design.md 5.6): unsqueeze, squeeze, reshape.
 * They change the type only; lowering makes each a view of the same
 * memory (compiler/lower.c), never a copy.
 *
 * Needs: check.c's checked operand x.
 * Guarantees: the result has as many elements as x, provably for every
 * binding of the symbolic dims. */
#include <string.h>

#include "checker.h"

/* The dim an argument of reshape names: a compile-time integer (-1 for
 * "the rest"), or a symbolic dim of the model or of the block call. */
static Dim reshape_dim(Checker *c, Expr *d, bool *rest) {
  *rest = false;
  if (d->kind == E_NAME) {
    Entry *en = table_find(&c->names, d->name);
    if (en && !en->decl) {
      d->type = scalar();
      return en->is_bound ? en->bound : (Dim){0, en->sym};
    }
  }
  int64_t v = eval_const(c, d, "a dim of `reshape`");
  if (v == -1) {
    *rest = true;
    return fixed(1);
  }
  if (v <= 0) user_error(d->loc, "a dim of `reshape` must be positive or -1, got %lld", (long long)v);
  return fixed(v);
}

/* The known sizes' product and each symbolic dim's count of t's dims, the
 * dims at skip excluded (-1 for none). */
static int64_t count_dims(const Type *t, int skip, int *syms, int nsyms) {
  int64_t n = 1;
  memset(syms, 0, sizeof(int) * (size_t)nsyms);
  for (int i = 0; i < t->rank; i++) {
    if (i == skip) continue;
    if (t->dims[i].sym >= 0) syms[t->dims[i].sym]++;
    else n *= t->dims[i].size;   /* at most 2^60 (check_size) */
  }
  return n;
}

Type check_view_fn(Checker *c, Expr *e, Builtin fn, Expr *const *args, Type t) {
  switch (fn) {
  case B_UNSQUEEZE: {
    int64_t a = eval_const(c, args[1], "`axis` of `unsqueeze`");
    if (a < -(t.rank + 1) || a > t.rank)
      user_error(args[1]->loc, "axis %lld is out of range for `unsqueeze` of %s (from %d to %d)", (long long)a,
                 type_str(c->m, t), -(t.rank + 1), t.rank);
    if (t.rank + 1 > MAX_RANK)
      user_error(e->loc, "too many dims: `unsqueeze` of %s would have rank %d; tensors have rank %d at most",
                 type_str(c->m, t), t.rank + 1, MAX_RANK);
    int ax = (int)(a < 0 ? a + t.rank + 1 : a);
    memmove(t.dims + ax + 1, t.dims + ax, sizeof(Dim) * (size_t)(t.rank - ax));
    t.dims[ax] = fixed(1);
    t.rank++;
    e->axis = ax;
    return t;
  }
  case B_SQUEEZE: {
    int64_t a = eval_const(c, args[1], "`axis` of `squeeze`");
    if (a < -t.rank || a >= t.rank)
      user_error(args[1]->loc, "axis %lld is out of range for `squeeze` of %s", (long long)a, type_str(c->m, t));
    int ax = (int)(a < 0 ? a + t.rank : a);
    if (t.dims[ax].sym >= 0 || t.dims[ax].size != 1)
      user_error(args[1]->loc, "`squeeze` needs dim %d of %s to be a fixed 1, got %s", ax, type_str(c->m, t),
                 dim_str(c->m, t.dims[ax]));
    memmove(t.dims + ax, t.dims + ax + 1, sizeof(Dim) * (size_t)(t.rank - ax - 1));
    t.rank--;
    e->axis = ax;
    return t;
  }
  case B_RESHAPE: {
    Type r = {t.dtype, 0, {{0}}};
    int rest = -1;
    for (int i = 1; i <= MAX_RANK && args[i]; i++) {
      bool minus1;
      r.dims[r.rank] = reshape_dim(c, args[i], &minus1);
      if (minus1 && rest >= 0) user_error(args[i]->loc, "`reshape` takes at most one -1");
      if (minus1) rest = r.rank;
      r.rank++;
    }
    int ns = c->syms->len + 1;
    int *have = NEW_ARRAY(int, ns), *want = NEW_ARRAY(int, ns);
    int64_t nh = count_dims(&t, -1, have, ns), nw = count_dims(&r, rest, want, ns);
    int left = -1, nleft = 0;
    bool ok = true;
    for (int s = 0; s < ns; s++) {
      if (want[s] > have[s]) ok = false;
      if (have[s] > want[s]) left = s, nleft += have[s] - want[s];
    }
    if (ok && rest < 0) ok = nleft == 0 && nh == nw;
    else if (ok) {
      /* -1 must be exactly one dim: the fixed rest, or one symbolic dim */
      ok = nh % nw == 0 && (nleft == 0 || (nleft == 1 && nh == nw));
      if (ok) r.dims[rest] = nleft ? (Dim){0, left} : fixed(nh / nw);
    }
    if (!ok) {
      char *want_s = "[";
      for (int i = 0; i < r.rank && i < MAX_RANK; i++)
        want_s = arena_printf("%s%s%s", want_s, i ? ", " : "", i == rest ? "-1" : dim_str(c->m, r.dims[i]));
      want_s = arena_printf("%s]", want_s);
      bool counts = true;
      for (int s2 = 0; s2 < ns; s2++) counts &= want[s2] <= have[s2];
      if (rest >= 0 && counts && nh % nw == 0) {
        /* the -1 would be a product: name it */
        char *p = nh / nw != 1 ? arena_printf("%lld", (long long)(nh / nw)) : "";
        for (int s2 = 0; s2 < ns; s2++)
          for (int k = want[s2]; k < have[s2]; k++) p = arena_printf("%s%s%s", p, *p ? "*" : "", c->m->syms[s2]);
        user_error(e->loc, "`reshape` cannot view %s as %s: the -1 would be %s, not one dim", type_str(c->m, t),
                   want_s, p);
      }
      user_error(e->loc, "`reshape` cannot view %s as %s: the element counts are not provably equal",
                 type_str(c->m, t), want_s);
    }
    return r;
  }
  default:
    internal_error("not a view function");
  }
}
