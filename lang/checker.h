/* checker.h: what check.c (names, consts, types, shapes) and blocks.c
 * (blocks, layer arrays, calls with several results) share.  Not used
 * outside lang/. */
#ifndef ATTNC_CHECKER_H
#define ATTNC_CHECKER_H

#include "ast.h"

/* A declared name, a symbolic dim of the model (decl NULL, sym >= 0), or,
 * inside a block call, a symbolic name of the block's input types bound to
 * the argument's dim (decl NULL, is_bound). */
typedef struct Entry {
  const char *name;
  Decl *decl;
  int sym;
  Loc loc;            /* the declaration's name, or the dim's first use */
  bool is_bound;
  Dim bound;
} Entry;

typedef struct Table {
  Entry *slots;       /* open addressing; name NULL = empty */
  int cap, len;
} Table;

typedef struct Checker {
  Model *m;
  Program *prog;
  int order;          /* the model's or block's place in the file: only
                         blocks declared before it may be used */
  Block *block;       /* the block being checked, or NULL in a model */
  const char *prefix; /* in a block: the instance's path ("layers.1") */
  Decl *cur;          /* the declaration being checked */
  int *ops;           /* operations of the whole file so far (see op_cost) */
  Table names;
  Vec *syms;          /* const char *: the model's symbolic dims */
  Vec *sums;          /* SymSum *, parallel to syms: NULL for a base dim */
  Vec *params;        /* Param *: the model's params */
  Vec inputs, outputs;
} Checker;

Entry *table_find(Table *t, const char *name);
void table_put(Table *t, Entry entry);

static inline Type scalar(void) { return (Type){DT_F32, 0, {{0, -1}}}; }
static inline Dim fixed(int64_t n) { return (Dim){n, -1}; }

/* check.c */
void check_expr(Checker *c, Expr *e);
void check_decl(Checker *c, Decl *d);
void check_layer_decl(Checker *c, Decl *d);
/* A call e of the layer (an instance; not looked up by e's name). */
void check_call_to(Checker *c, Expr *e, Decl *layer);
int64_t eval_const(Checker *c, Expr *e, const char *ctx);   /* consts.c */
bool fold_int(int op, int64_t a, int64_t b, int64_t *r);     /* consts.c: false on overflow or a remainder */
void bind_args(Expr *call, const char *fname, const char *const *params, int n, int nreq, Expr **out);
void count_ops(Checker *c, Loc loc, int n);

/* check.c: helpers the other checker files share */
_Noreturn void unknown_name(Checker *c, Loc loc, const char *name);
const char *kind_noun(DeclKind k);     /* "an input", "a layer", ... */
void need_f32(Checker *c, Loc loc, const char *what, Type t);
/* The tensor operand x of call: checked, f32, appended to call->operand. */
Expr *operand(Checker *c, Expr *call, const char *fname, Expr *x);
Expr *operand_any(Checker *c, Expr *call, Expr *x);
bool is_inf_name(Checker *c, Expr *e);
/* NumPy broadcasting of a[0..ra) and b[0..rb); on a mismatch, false with
 * the two differing dims. */
bool broadcast(const Dim *a, int ra, const Dim *b, int rb, Dim *out, int *rout, Dim *da, Dim *db);
int64_t positive_arg(Checker *c, Expr *arg, const char *param, const char *fname);
double eval_number(Checker *c, Expr *e, const char *ctx);
void check_size(Checker *c, Loc loc, Type t);
/* "; did you mean `NAME`?" for the closest known name, or "": values adds
 * the names in scope and the functions to the layer types and blocks. */
const char *did_you_mean(Checker *c, const char *name, bool values);

/* dims.c: dims that are sums */
Dim dim_sum(Checker *c, Dim a, Dim b, int64_t sign, Loc loc, const char *what);   /* a + sign*b */
Dim eval_dim(Checker *c, Expr *e);          /* a dim written in a type */
bool dim_is_sum(const Model *m, Dim d);
Dim slice_len(Checker *c, Dim d, bool has_lo, int64_t lo, bool has_hi, int64_t hi, Loc loc);

/* layers.c */
const char *layer_type_name(LayerKind k);
LayerKind find_layer(const char *name);     /* L_NONE if not a layer type */
void check_layer_call(Checker *c, Expr *e, Decl *layer);
void add_param(Checker *c, const char *name, Type t, Loc loc);
/* `true` or `false`, the argument `param` of the layer type `layer` */
bool layer_bool(Expr *arg, const char *param, const char *layer);
/* a * b as a dim of d's params, refused past MAX_NUMEL */
int64_t param_dim(Decl *d, int64_t a, int64_t b);
/* attention shape rules, shared with attention() */
bool is_causal(Checker *c, Expr *x);
Dim last_dim(Type t);
void check_attention_ranks(Checker *c, const char *fname, const char *const names[3], Expr *const x[3], int maxrank);
Type attention_scores(Checker *c, Expr *call, const char *fname, const char *const names[3], Expr *const x[3]);
void check_mask(Checker *c, Expr *call, const char *fname, Expr *mask, Type scores);

/* recurrent.c: LSTM, GRU, LSTMCell, GRUCell: a `layer` declaration (its
 * params) and a call (the state given or zero, the results) */
void check_recurrent_decl(Checker *c, Decl *d);
void check_recurrent_call(Checker *c, Expr *e, Decl *layer);

/* shapes.c: unsqueeze(x, axis), squeeze(x, axis), reshape(x, d0, ...):
 * the type of the view of x (of type t) that e makes. */
Type check_view_fn(Checker *c, Expr *e, Builtin fn, Expr *const *args, Type t);

/* blocks.c */
/* The block `name` declared before c's model or block, or NULL; a block
 * used in its own body or before its declaration is a user_error. */
Block *find_block(Checker *c, const char *name, Loc loc);
/* `layer d = B(args)`: binds B's parameters and checks a copy of its
 * consts, params and layers under the path d->name (their params are
 * d->name.layer.param). */
void check_block_instance(Checker *c, Decl *d, Block *b);
/* `layer d[N] = Type(args)`: N instances named d->name.0 ... */
void check_layer_array(Checker *c, Decl *d);
/* A call of a block instance: its body checked for these arguments. */
void check_block_call(Checker *c, Expr *e, Decl *inst);
/* A call of a layer array as a whole: the instances applied in turn. */
void check_scan(Checker *c, Expr *e, Decl *arr);
/* `layers[i](...)`: the instance i of the array arr. */
Decl *array_element(Checker *c, Expr *e, Decl *arr);
/* E_RESULT: result e->index of its call. */
void check_result(Checker *c, Expr *e);

#endif
