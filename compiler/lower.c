/* lower.c: checked AST -> graph IR.
 *
 * Needs: a model that check_program accepted (every Expr typed, names
 * resolved, calls mapped to builtins or layers).
 * Guarantees: a verified Graph in topological order, with a node per
 * input and param, and a distinct node per output (outputs that name an
 * input, a param or another output get a COPY). */
#include <string.h>

#include "ir.h"

typedef struct Lower {
  Graph *g;
  const Model *m;
  int *param_node;    /* per model param, created on first use */
  Vec decl_nodes;     /* pairs (Decl*, node id + 1) */
} Lower;

static int add(Lower *L, Op op, Loc loc, Type t, int a, int b, int c) {
  Node n = {0};
  n.op = op;
  n.loc = loc;
  n.type = t;
  int ins[3] = {a, b, c};
  for (int k = 0; k < 3 && ins[k] >= 0; k++) n.in[n.nin++] = ins[k];
  return ir_add(L->g, n);
}

static int add_const(Lower *L, Loc loc, double v) {
  Type t = {DT_F32, 0, {{0}}};
  int id = add(L, OP_CONST, loc, t, -1, -1, -1);
  L->g->nodes[id].fval = v;
  return id;
}

static int param_node(Lower *L, int p) {
  if (L->param_node[p] < 0) {
    int id = add(L, OP_PARAM, L->m->params[p].loc, L->m->params[p].type, -1, -1, -1);
    L->g->nodes[id].index = p;
    L->param_node[p] = id;
  }
  return L->param_node[p];
}

static void bind_decl(Lower *L, Decl *d, int node) {
  vec_push(&L->decl_nodes, d);
  vec_push(&L->decl_nodes, (void *)(intptr_t)(node + 1));
}

static int decl_node(Lower *L, Decl *d) {
  for (int i = 0; i < L->decl_nodes.len; i += 2)
    if (L->decl_nodes.items[i] == d) return (int)(intptr_t)L->decl_nodes.items[i + 1] - 1;
  internal_error("declaration `%s` used before it was lowered", d->name);
}

/* Type of x with one axis removed. */
static Type drop_axis(Type t, int axis) {
  for (int i = axis; i + 1 < t.rank; i++) t.dims[i] = t.dims[i + 1];
  t.rank--;
  return t;
}

static int lower_expr(Lower *L, Expr *e);

static int reduce(Lower *L, Op op, Expr *e, int x) {
  Type t = L->g->nodes[x].type;
  if (e->axis >= 0) {
    int id = add(L, op, e->loc, e->type, x, -1, -1);
    L->g->nodes[id].axis = e->axis;
    return id;
  }
  /* Over every axis: one axis at a time.  Equal counts per step make the
   * mean of means the mean, and the max of maxes the max. */
  while (t.rank > 0) {
    t = drop_axis(t, 0);
    x = add(L, op, e->loc, t, x, -1, -1);
    L->g->nodes[x].axis = 0;
  }
  return x;
}

static int lower_layer_call(Lower *L, Expr *e) {
  Decl *layer = e->decl;
  int x = lower_expr(L, e->operand[0]);
  switch (layer->layer) {
  case L_LINEAR: {
    /* y = x @ W^T + b, with W as PyTorch stores it: [out, in]. */
    int w = param_node(L, layer->param0);
    int y = add(L, OP_MATMUL, e->loc, e->type, x, w, -1);
    L->g->nodes[y].tb = true;
    if (layer->bias) y = add(L, OP_ADD, e->loc, e->type, y, param_node(L, layer->param0 + 1), -1);
    return y;
  }
  case L_LAYERNORM: {
    int y = add(L, OP_LAYERNORM, e->loc, e->type, x, param_node(L, layer->param0),
                param_node(L, layer->param0 + 1));
    L->g->nodes[y].fval = layer->eps;
    return y;
  }
  default:
    user_error(e->loc, "layer `%s` cannot be compiled yet", layer->name);
  }
}

static int lower_call(Lower *L, Expr *e) {
  if (e->decl) return lower_layer_call(L, e);
  static const Op unary[] = {
      [B_EXP] = OP_EXP, [B_LOG] = OP_LOG, [B_SQRT] = OP_SQRT, [B_TANH] = OP_TANH,
      [B_SIGMOID] = OP_SIGMOID, [B_RELU] = OP_RELU, [B_GELU] = OP_GELU, [B_SILU] = OP_SILU,
  };
  int x = lower_expr(L, e->operand[0]);
  switch (e->fn) {
  case B_EXP: case B_LOG: case B_SQRT: case B_TANH:
  case B_SIGMOID: case B_RELU: case B_GELU: case B_SILU:
    return add(L, unary[e->fn], e->loc, e->type, x, -1, -1);
  case B_DROPOUT:
    return x;   /* inference only: the identity */
  case B_TRANSPOSE:
    return add(L, OP_TRANSPOSE, e->loc, e->type, x, -1, -1);
  case B_SOFTMAX: {
    int id = add(L, OP_SOFTMAX, e->loc, e->type, x, -1, -1);
    L->g->nodes[id].axis = e->axis;
    return id;
  }
  case B_SUM: return reduce(L, OP_SUM, e, x);
  case B_MEAN: return reduce(L, OP_MEAN, e, x);
  case B_MAX: return reduce(L, OP_MAX, e, x);
  case B_LAYERNORM: {
    int w = lower_expr(L, e->operand[1]);
    int b = lower_expr(L, e->operand[2]);
    int id = add(L, OP_LAYERNORM, e->loc, e->type, x, w, b);
    L->g->nodes[id].fval = e->fval;
    return id;
  }
  default:
    user_error(e->loc, "`%s` cannot be compiled yet", e->name);
  }
}

static int lower_expr(Lower *L, Expr *e) {
  switch (e->kind) {
  case E_NUM:
    return add_const(L, e->loc, e->num);
  case E_NAME:
    if (!e->decl) user_error(e->loc, "symbolic dim `%s` cannot be used as a value", e->name);
    switch (e->decl->kind) {
    case D_CONST: return add_const(L, e->loc, (double)e->decl->ival);
    case D_PARAM: return param_node(L, e->decl->index);
    default: return decl_node(L, e->decl);
    }
  case E_NEG:
    return add(L, OP_NEG, e->loc, e->type, lower_expr(L, e->lhs), -1, -1);
  case E_BINARY: {
    int a = lower_expr(L, e->lhs), b = lower_expr(L, e->rhs);
    Op op = e->op == '@' ? OP_MATMUL : e->op == '+' ? OP_ADD : e->op == '-' ? OP_SUB
          : e->op == '*' ? OP_MUL : OP_DIV;
    return add(L, op, e->loc, e->type, a, b, -1);
  }
  case E_CALL:
    return lower_call(L, e);
  case E_INDEX:
    user_error(e->loc, "indexing cannot be compiled yet");
  }
  internal_error("unknown expression kind %d", e->kind);
}

/* The model's name becomes C symbols (NAME, NAME_model, ...). */
static void check_c_name(const Model *m) {
  static const char *c_keywords[] = {
      "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else", "enum",
      "extern", "float", "for", "goto", "if", "inline", "int", "long", "register", "restrict", "return",
      "short", "signed", "sizeof", "static", "struct", "switch", "typedef", "union", "unsigned", "void",
      "volatile", "while", "main", NULL};
  for (int i = 0; c_keywords[i]; i++)
    if (!strcmp(m->name, c_keywords[i]))
      user_error(m->name_loc, "model name `%s` cannot be used: it is reserved in C", m->name);
  if (!strncmp(m->name, "attn_", 5) || !strncmp(m->name, "attnc", 5))
    user_error(m->name_loc, "model name `%s` cannot be used: names starting with `attn` belong to the runtime", m->name);
}

Graph *lower_model(const Model *m) {
  check_c_name(m);
  if (m->nsyms > MAX_SYMS)
    user_error(m->name_loc, "model `%s` has %d symbolic dims; at most %d are supported", m->name, m->nsyms, MAX_SYMS);
  Graph *g = NEW(Graph);
  g->model = m;
  Lower L = {.g = g, .m = m};
  L.param_node = NEW_ARRAY(int, m->nparams + 1);
  for (int i = 0; i < m->nparams; i++) L.param_node[i] = -1;
  g->outputs = NEW_ARRAY(int, m->noutputs + 1);

  for (Decl *d = m->decls; d; d = d->next) {
    switch (d->kind) {
    case D_INPUT: {
      int id = add(&L, OP_INPUT, d->name_loc, d->type, -1, -1, -1);
      g->nodes[id].index = d->index;
      bind_decl(&L, d, id);
      break;
    }
    case D_LET: case D_OUTPUT: {
      int id = lower_expr(&L, d->value);
      Op op = g->nodes[id].op;
      if (d->kind == D_OUTPUT) {
        /* An output owns its buffer: copy values that live elsewhere. */
        bool taken = op == OP_INPUT || op == OP_PARAM || op == OP_CONST;
        for (int k = 0; k < g->noutputs; k++) taken |= g->outputs[k] == id;
        if (taken) id = add(&L, OP_COPY, d->value->loc, d->type, id, -1, -1);
        g->outputs[g->noutputs++] = id;
      }
      if (!g->nodes[id].name && op != OP_INPUT && op != OP_PARAM) g->nodes[id].name = d->name;
      bind_decl(&L, d, id);
      break;
    }
    default:
      break;
    }
  }
  ir_count_uses(g);
  ir_verify(g, "lowering");
  return g;
}
