/* recurrent.c: the recurrent layers (docs/language.md section 7): LSTM and
 * GRU over a sequence, LSTMCell and GRUCell for one step.  Their params,
 * with PyTorch's names and shapes, and the rules of a call: the initial
 * state (`h0=`, `c0=` of a sequence layer, `h`, `c` of a cell) and the
 * results (output, h_n, c_n; h', c').
 *
 * Needs: check.c for arguments and operands; layers.c for params.
 * Guarantees: a checked recurrent layer has largs (in, hidden, layers; a
 * cell 1 layer) and its params in the order of Decl.param0; a checked call
 * has operand[0] = x and, when a state is given, operand[1] = h0 (and
 * operand[2] = c0), each of exactly the state's type; noperands 1 means the
 * zero state.  Its results are PyTorch's (brief 5.2): LSTM output
 * [..., T, H], h_n, c_n [L, ..., H]; GRU output, h_n; LSTMCell h', c'
 * [..., H]; GRUCell h'. */
#include <string.h>

#include "checker.h"

/* LSTM and GRU stack at most this many layers. */
#define MAX_RNN_LAYERS 256

static bool is_lstm(LayerKind k) { return k == L_LSTM || k == L_LSTM_CELL; }
static bool is_cell(LayerKind k) { return k == L_LSTM_CELL || k == L_GRU_CELL; }

void check_recurrent_decl(Checker *c, Decl *d) {
  static const char *const seq_params[] = {"in", "hidden", "layers", "bias"};
  static const char *const cell_params[] = {"in", "hidden", "bias"};
  const char *lname = layer_type_name(d->layer);
  bool cell = is_cell(d->layer);
  Expr *args[4];
  bind_args(d->value, lname, cell ? cell_params : seq_params, cell ? 3 : 4, 2, args);
  Expr *bias = cell ? args[2] : args[3];
  int64_t in = d->largs[0] = positive_arg(c, args[0], "in", lname);
  int64_t h = d->largs[1] = positive_arg(c, args[1], "hidden", lname);
  int64_t nl = d->largs[2] = !cell && args[2] ? positive_arg(c, args[2], "layers", lname) : 1;
  if (nl > MAX_RNN_LAYERS)
    user_error(args[2]->loc, "argument `layers` of `%s` must be at most %d, got %lld", lname, MAX_RNN_LAYERS,
               (long long)nl);
  d->bias = bias ? layer_bool(bias, "bias", lname) : true;
  int64_t gh = param_dim(d, is_lstm(d->layer) ? 4 : 3, h);  /* the gates, stacked */
  /* nn.LSTM's names end in the layer (weight_ih_l0), nn.LSTMCell's do not */
  for (int k = 0; k < nl; k++) {
    const char *sfx = cell ? "" : arena_printf("_l%d", k);
    add_param(c, arena_printf("%s.weight_ih%s", d->name, sfx), (Type){DT_F32, 2, {fixed(gh), fixed(k ? h : in)}},
              d->name_loc);
    add_param(c, arena_printf("%s.weight_hh%s", d->name, sfx), (Type){DT_F32, 2, {fixed(gh), fixed(h)}},
              d->name_loc);
    if (d->bias) {
      add_param(c, arena_printf("%s.bias_ih%s", d->name, sfx), (Type){DT_F32, 1, {fixed(gh)}}, d->name_loc);
      add_param(c, arena_printf("%s.bias_hh%s", d->name, sfx), (Type){DT_F32, 1, {fixed(gh)}}, d->name_loc);
    }
  }
}

/* The type a state argument must have, and how to say it: [L, ..., H] for
 * a sequence layer over x [..., T, in], [..., H] for a cell over x [...,
 * in]; the batch dims exactly x's (PyTorch does not broadcast them). */
static Type state_type(Decl *layer, Type x) {
  Type s = {DT_F32, 0, {{0}}};
  bool cell = is_cell(layer->layer);
  if (!cell) s.dims[s.rank++] = fixed(layer->largs[2]);
  for (int i = 0; i < x.rank - (cell ? 1 : 2); i++) s.dims[s.rank++] = x.dims[i];
  s.dims[s.rank++] = fixed(layer->largs[1]);
  return s;
}

void check_recurrent_call(Checker *c, Expr *e, Decl *layer) {
  static const char *const lstm_params[] = {"x", "h0", "c0"}, *const gru_params[] = {"x", "h0"};
  static const char *const lstm_cell_params[] = {"x", "h", "c"}, *const gru_cell_params[] = {"x", "h"};
  const char *name = layer->name;
  bool lstm = is_lstm(layer->layer), cell = is_cell(layer->layer);
  const char *const *params = cell ? (lstm ? lstm_cell_params : gru_cell_params) : lstm ? lstm_params : gru_params;
  int n = lstm ? 3 : 2;
  Expr *args[3];
  bind_args(e, name, params, n, 1, args);
  Expr *x = operand(c, e, name, args[0]);
  Type t = x->type;
  int64_t in = layer->largs[0];
  if (!cell && t.rank < 2)
    user_error(x->loc, "`%s` takes a sequence of rank 2 or more ([..., T, %lld]), got %s", name, (long long)in,
               type_str(c->m, t));
  /* one step runs as a sequence of length 1: [..., 1, in] has rank 4 at most */
  if (cell && t.rank > MAX_RANK - 1)
    user_error(x->loc, "`%s` takes `x` of rank 1 to %d ([..., %lld]), got %s", name, MAX_RANK - 1, (long long)in,
               type_str(c->m, t));
  if (t.rank == 0 || !dim_eq(last_dim(t), fixed(in)))
    user_error(x->loc, "shape mismatch in `%s`: expected last dim %lld, got %s", name, (long long)in,
               type_str(c->m, t));
  /* an LSTM's state is h and c: both, or neither (the zero state) */
  if (lstm && !args[1] != !args[2]) {
    Expr *given = args[1] ? args[1] : args[2];
    user_error(given->loc, "`%s` is an %s: its state is `%s` and `%s` together, but `%s` is missing (give "
               "both, or neither for the zero state)", name, layer_type_name(layer->layer), params[1], params[2],
               params[args[1] ? 2 : 1]);
  }
  Type st = state_type(layer, t);
  for (int k = 1; k < n && args[k]; k++) {
    Expr *s = operand(c, e, name, args[k]);
    if (!type_eq(s->type, st))
      user_error(s->loc, "shape mismatch in `%s`: `%s` must be %s (%s), got %s", name, params[k],
                 type_str(c->m, st),
                 cell ? "the batch dims of `x`, then hidden" : "layers, the batch dims of `x`, then hidden",
                 type_str(c->m, s->type));
  }
  Type out = st;
  if (!cell) {
    out = t;
    out.dims[out.rank - 1] = fixed(layer->largs[1]);
  }
  static const char *const lstm_names[] = {"output", "h_n", "c_n"}, *const gru_names[] = {"output", "h_n"};
  static const char *const lstm_cell_names[] = {"h_1", "c_1"}, *const gru_cell_names[] = {"h_1"};
  e->nresults = cell ? (lstm ? 2 : 1) : (lstm ? 3 : 2);
  e->rnames = (const char **)(cell ? (lstm ? lstm_cell_names : gru_cell_names) : lstm ? lstm_names : gru_names);
  e->rtypes = NEW_ARRAY(Type, e->nresults);
  e->rtypes[0] = out;
  for (int k = 1; k < e->nresults; k++) e->rtypes[k] = st;
  e->type = out;
}
