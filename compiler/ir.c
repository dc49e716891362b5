/* ir.c: building, printing and verifying the graph IR. */
#include <string.h>

#include "ir.h"

const OpInfo op_info[OP_COUNT] = {
#define OP(name, text, arity, traits) {text, arity, traits},
#include "ops.h"
#undef OP
};

int ir_add(Graph *g, Node node) {
  if (g->n == g->cap) {
    int cap = g->cap ? g->cap * 2 : 64;
    Node *nodes = NEW_ARRAY(Node, cap);
    if (g->n) memcpy(nodes, g->nodes, sizeof(Node) * (size_t)g->n);
    g->nodes = nodes;
    g->cap = cap;
  }
  node.slot = -1;
  node.output = -1;
  g->nodes[g->n] = node;
  return g->n++;
}

void ir_count_uses(Graph *g) {
  for (int i = 0; i < g->n; i++) g->nodes[i].uses = 0;
  for (int i = 0; i < g->n; i++) {
    Node *n = &g->nodes[i];
    if (n->dead) continue;
    for (int k = 0; k < n->nin; k++) g->nodes[n->in[k]].uses++;
  }
  for (int i = 0; i < g->noutputs; i++) g->nodes[g->outputs[i]].uses++;
}

int64_t ir_numel_known(Type t) {
  int64_t n = 1;
  for (int i = 0; i < t.rank; i++)
    if (t.dims[i].sym < 0) n *= t.dims[i].size;
  return n;
}

bool ir_is_prepared(const Graph *g, const Node *n) {
  if (n->dead || (n->op != OP_PACK && !(n->op == OP_TRANSPOSE && n->output < 0))) return false;
  return g->nodes[ir_view_root(g, n->in[0])].op == OP_PARAM;
}

bool ir_is_append(const Graph *g, const Node *n) {
  return !n->dead && n->op == OP_CONCAT && n->axis == 0 && n->output >= 0 && g->nodes[n->in[0]].op == OP_INPUT;
}

int ir_view_root(const Graph *g, int id) {
  while (g->nodes[id].op == OP_VIEW) id = g->nodes[id].in[0];
  return id;
}

/* Live nodes get consecutive numbers in the printout, so that a pass that
 * kills nodes does not leave holes a reader has to skip. */
void ir_print(FILE *f, const Graph *g) {
  const Model *m = g->model;
  int *num = NEW_ARRAY(int, g->n);
  fprintf(f, "model %s(", m->name);
  for (int i = 0; i < m->nsyms; i++) fprintf(f, "%s%s", i ? ", " : "", m->syms[i]);
  fprintf(f, ")\n");
  int k = 0;
  for (int i = 0; i < g->n; i++) {
    const Node *n = &g->nodes[i];
    if (n->dead) continue;
    num[i] = k++;
    fprintf(f, "  %%%d = %s", num[i], op_info[n->op].text);
    switch (n->op) {
    case OP_INPUT: fprintf(f, " %s", m->inputs[n->index]->name); break;
    case OP_PARAM: fprintf(f, " %s", m->params[n->index].name); break;
    case OP_CONST: fprintf(f, n->type.dtype == DT_I32 ? " %.0f" : " %.9g", n->fval); break;
    default: break;
    }
    for (int j = 0; j < n->nin; j++) fprintf(f, "%s%%%d", j ? ", " : " ", num[n->in[j]]);
    if (n->op == OP_SOFTMAX || (op_info[n->op].traits & T_REDUCE)) fprintf(f, ", axis=%d", n->axis);
    if (n->op == OP_MATMUL && n->tb) fprintf(f, ", transpose_b");
    if (n->op == OP_PACK && n->tb) fprintf(f, ", transposed");
    if (n->op == OP_SOFTMAX && n->causal) fprintf(f, n->causal_lr ? ", causal_lower_right" : ", causal");
    if (n->op == OP_SOFTMAX && n->safe) fprintf(f, ", masked_rows_zero");
    if (n->op == OP_CONCAT) fprintf(f, ", axis=%d", n->axis);
    if (n->op == OP_VIEW && n->start) fprintf(f, ", start=%lld", (long long)n->start);
    if (n->op == OP_ATTENTION) {
      fprintf(f, ", scale=%.9g", n->fval);
      if (n->causal) fprintf(f, n->causal_lr ? ", causal_lower_right" : ", causal");
      if (n->safe) fprintf(f, ", masked_rows_zero");
      if (n->filled) fprintf(f, ", fill=%.9g", n->fill);
      if (n->heads_inner)
        fprintf(f, ", heads_in_place=%s%s%s", n->heads_inner & 1 ? "q" : "", n->heads_inner & 2 ? "k" : "",
                n->heads_inner & 4 ? "v" : "");
    }
    if (n->op == OP_FILL) fprintf(f, ", value=%.9g", n->fval);
    if (n->op == OP_LAYERNORM) fprintf(f, ", eps=%g", n->fval);
    if (n->op == OP_MATMUL && n->prog) fprintf(f, ", epilogue");
    fprintf(f, " : %s", type_str(m, n->type));
    if (n->name && n->fused) fprintf(f, "  # %s; fused: %s", n->name, n->fused);
    else if (n->fused) fprintf(f, "  # fused: %s", n->fused);
    else if (n->name) fprintf(f, "  # %s", n->name);
    fprintf(f, "\n");
  }
  for (int i = 0; i < g->noutputs; i++)
    fprintf(f, "  output %s = %%%d\n", m->outputs[i]->name, num[g->outputs[i]]);
}

bool ir_reads_i32(Op op, int slot) {
  return (op >= OP_EQ && op <= OP_GE) || (op == OP_FILL && slot == 1);
}

/* Elementwise results are f32; an operand may be i32 only where the op
 * (every step of a program that reads it) takes one. */
static void check_ew_dtypes(const Graph *g, const Node *n, const char *pass) {
  if (n->type.dtype != DT_F32) internal_error("IR after %s: %s gives a non-f32 result", pass, op_info[n->op].text);
  for (int k = 0; k < n->nin; k++) {
    if (g->nodes[n->in[k]].type.dtype == DT_F32) continue;
    bool ok = n->prog || ir_reads_i32(n->op, k);
    for (int s = 0; s < n->nprog; s++)
      ok &= !((n->prog[s].a == k && !ir_reads_i32(n->prog[s].op, 0)) ||
              (op_info[n->prog[s].op].arity > 1 && n->prog[s].b == k && !ir_reads_i32(n->prog[s].op, 1)));
    if (!ok) internal_error("IR after %s: %s reads i32 operand %d as f32", pass, op_info[n->op].text, k);
  }
}

/* Checks the invariants every pass relies on: operands precede their
 * users and are alive, arities match the op table, and each op's result
 * type is consistent with its operands. */
void ir_verify(const Graph *g, const char *pass) {
  for (int i = 0; i < g->n; i++) {
    const Node *n = &g->nodes[i];
    if (n->dead) continue;
    const OpInfo *info = &op_info[n->op];
    /* a matmul with an epilogue also reads the epilogue's operands */
    bool epilogue = n->op == OP_MATMUL && n->prog;
    if (epilogue ? n->nin < 2 || n->nin > MAX_OPERANDS
        : info->arity >= 0 ? n->nin != info->arity
        : info->arity == -1 ? n->nin < 3 || n->nin > 4 : n->nin < 1 || n->nin > MAX_OPERANDS)
      internal_error("IR after %s: %%%d %s has %d operands, wants %d", pass, i, info->text, n->nin, info->arity);
    if (n->type.rank < 0 || n->type.rank > MAX_RANK)
      internal_error("IR after %s: %%%d has rank %d", pass, i, n->type.rank);
    for (int k = 0; k < n->nin; k++) {
      int a = n->in[k];
      if (a < 0 || a >= i) internal_error("IR after %s: %%%d uses %%%d, which does not precede it", pass, i, a);
      if (g->nodes[a].dead) internal_error("IR after %s: %%%d uses dead %%%d", pass, i, a);
      /* a pack's layout is only the GEMM's: codegen reads it nowhere else */
      if (g->nodes[a].op == OP_PACK && !(n->op == OP_MATMUL && k == 1 && !n->tb && g->nodes[n->in[0]].type.rank >= 2))
        internal_error("IR after %s: %%%d reads pack %%%d as operand %d, not as a GEMM's B", pass, i, a, k);
    }
    const Type *t = &n->type;
    /* lowering refuses values above 2^60 elements (lower.c); a pass may pad
     * (a pack's panels), never grow a value past 2^61 */
    int64_t numel = 1;
    for (int d = 0; d < t->rank; d++)
      if (t->dims[d].sym < 0 && (__builtin_mul_overflow(numel, t->dims[d].size, &numel) || numel > 2 * MAX_NUMEL))
        internal_error("IR after %s: %%%d has more than 2^61 elements", pass, i);
    switch (n->op) {
    case OP_CONST:
      if (t->rank != 0) internal_error("IR after %s: const %%%d is not a scalar", pass, i);
      break;
    case OP_ATTENTION:
      if (n->nin - n->filled < 3 || n->nin - n->filled > 4)
        internal_error("IR after %s: attention %%%d has %d operands", pass, i, n->nin);
      for (int k = 0; k < n->nin - n->filled; k++)
        if (g->nodes[n->in[k]].type.dtype != DT_F32)
          internal_error("IR after %s: attention %%%d operand %d is not f32", pass, i, k);
      break;
    case OP_SOFTMAX:
    case OP_TRANSPOSE:
      if (!type_eq(g->nodes[n->in[0]].type, *t) && n->op == OP_SOFTMAX)
        internal_error("IR after %s: softmax %%%d changes the type", pass, i);
      if (n->op == OP_SOFTMAX && (n->axis < 0 || n->axis >= t->rank))
        internal_error("IR after %s: softmax %%%d axis %d", pass, i, n->axis);
      break;
    case OP_PACK: {
      const Type *a = &g->nodes[n->in[0]].type;
      bool ok = a->rank == t->rank && t->rank >= 2;
      for (int d = 0; ok && d < t->rank - 2; d++) ok = dim_eq(a->dims[d], t->dims[d]);
      int r = t->rank;
      if (ok && n->tb) ok = dim_eq(a->dims[r - 2], t->dims[r - 1]) && dim_eq(a->dims[r - 1], t->dims[r - 2]);
      else if (ok) ok = dim_eq(a->dims[r - 2], t->dims[r - 2]) && dim_eq(a->dims[r - 1], t->dims[r - 1]);
      if (!ok) internal_error("IR after %s: pack %%%d does not match its operand", pass, i);
      break;
    }
    case OP_LSTM_SEQ: case OP_GRU_SEQ: case OP_LAST_STEP: {
      /* a state (LSTM: h0, c0; GRU: h0; last_step: init) is the const 0
       * or exactly [.., H] of the sequences */
      Type st = *t;
      if (n->op != OP_LAST_STEP) st.dims[--st.rank - 1] = t->dims[t->rank - 1];
      int from = n->op == OP_LSTM_SEQ ? 2 : n->op == OP_GRU_SEQ ? 3 : 1, to = n->op == OP_LAST_STEP ? 1 : 3;
      for (int k = from; k <= to; k++) {
        const Node *a = &g->nodes[n->in[k]];
        if (!(a->op == OP_CONST && a->fval == 0.0) && !type_eq(a->type, st))
          internal_error("IR after %s: %%%d %s: state operand %d is neither 0 nor [.., H]", pass, i, info->text, k);
      }
      if (n->op == OP_LAST_STEP && g->nodes[n->in[2]].op != OP_LSTM_SEQ && g->nodes[n->in[2]].op != OP_GRU_SEQ)
        internal_error("IR after %s: last_step %%%d does not follow a recurrent op", pass, i);
      break;
    }
    case OP_SUM: case OP_MEAN: case OP_MAX: {
      const Type *a = &g->nodes[n->in[0]].type;
      if (n->axis < 0 || n->axis >= a->rank || t->rank != a->rank - 1)
        internal_error("IR after %s: reduction %%%d axis %d over rank %d", pass, i, n->axis, a->rank);
      break;
    }
    default:
      break;
    }
    if (n->prog) {
      for (int st = 0; st < n->nprog; st++) {
        int refs[2] = {n->prog[st].a, n->prog[st].b};
        for (int r = 0; r < 2; r++)
          if (refs[r] == EW_SELF ? !epilogue : refs[r] >= 0 ? refs[r] >= n->nin : -refs[r] - 1 >= st)
            internal_error("IR after %s: %%%d step %d has a bad operand %d", pass, i, st, refs[r]);
      }
    }
    if (info->traits & T_EW) {
      check_ew_dtypes(g, n, pass);
      for (int k = 0; k < n->nin; k++) {
        const Type *a = &g->nodes[n->in[k]].type;
        if (a->rank > t->rank) internal_error("IR after %s: %%%d operand %d has higher rank", pass, i, k);
        for (int d = 0; d < a->rank; d++) {
          Dim ad = a->dims[d], od = t->dims[t->rank - a->rank + d];
          if (!dim_eq(ad, od) && !(ad.sym < 0 && ad.size == 1))
            internal_error("IR after %s: %%%d operand %d does not broadcast", pass, i, k);
        }
      }
    }
  }
  for (int i = 0; i < g->noutputs; i++) {
    int o = g->outputs[i];
    if (o < 0 || o >= g->n || g->nodes[o].dead) internal_error("IR after %s: output %d is not a live node", pass, i);
    if (g->nodes[o].op == OP_PACK) internal_error("IR after %s: output %d is a pack", pass, i);
  }
}
