/* pass_fold.c: fold elementwise ops on constants.
 *
 * Needs: a verified graph.
 * Guarantees: no elementwise op has only CONST operands (e.g. the
 * `sqrt(64)` of examples/sdpa.attn becomes `const 8`); the graph stays
 * verified.  Folding uses the same double precision arithmetic as a user
 * would expect of a constant expression, then rounds once to f32. */
#include <math.h>

#include "ir.h"

static bool fold(Op op, double a, double b, double fval, double *r) {
  switch (op) {
  case OP_EQ: *r = a == b; return true;
  case OP_NE: *r = a != b; return true;
  case OP_LT: *r = a < b; return true;
  case OP_LE: *r = a <= b; return true;
  case OP_GT: *r = a > b; return true;
  case OP_GE: *r = a >= b; return true;
  case OP_FILL: *r = b != 0 ? fval : a; return true;
  case OP_ADD: *r = a + b; return true;
  case OP_SUB: *r = a - b; return true;
  case OP_MUL: *r = a * b; return true;
  case OP_DIV: *r = a / b; return true;
  case OP_NEG: *r = -a; return true;
  case OP_EXP: *r = exp(a); return true;
  case OP_LOG: *r = log(a); return true;
  case OP_SQRT: *r = sqrt(a); return true;
  case OP_TANH: *r = tanh(a); return true;
  case OP_SIGMOID: *r = 1.0 / (1.0 + exp(-a)); return true;
  case OP_RELU: *r = a > 0 ? a : 0; return true;
  case OP_GELU: *r = 0.5 * a * (1.0 + erf(a / sqrt(2.0))); return true;
  case OP_SILU: *r = a / (1.0 + exp(-a)); return true;
  default: return false;
  }
}

void pass_fold_constants(Graph *g) {
  for (int i = 0; i < g->n; i++) {
    Node *n = &g->nodes[i];
    if (n->dead || !(op_info[n->op].traits & T_EW) || n->op == OP_COPY || n->type.rank != 0) continue;
    bool all_const = true;
    for (int k = 0; k < n->nin; k++) all_const &= g->nodes[n->in[k]].op == OP_CONST;
    if (!all_const) continue;
    double a = g->nodes[n->in[0]].fval, b = n->nin > 1 ? g->nodes[n->in[1]].fval : 0, r;
    if (!fold(n->op, a, b, n->fval, &r)) continue;
    n->op = OP_CONST;
    n->nin = 0;
    n->fval = (float)r;
  }
  ir_count_uses(g);
}
