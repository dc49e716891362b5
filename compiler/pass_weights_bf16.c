/* pass_weights_bf16.c: --weights-dtype bf16: which params are stored in
 * bf16 (2 bytes an element, round to nearest even) instead of f32.
 *
 * Needs: a verified graph after pass_pack_gemm (the packs are final).
 * Guarantees: g->param_bf16[p] is true exactly for the f32 params every
 * live use of which (through views) is the source of a layout laid out
 * once by the model's prepare function (ir_is_prepared): a `pack` (a
 * GEMM's or GEMV's B) or the `transpose` of an LSTM's or GRU's W_hh.
 * Those params, their views and those layouts have n->bf16 set: the
 * layout kernel reads bf16 and writes bf16, which the GEMM, the GEMV and
 * the recurrences widen to f32 in registers (compiler/codegen/gemm.c,
 * recurrent.c).  A param also read another way (a bias, a LayerNorm
 * weight, an Embedding table, an elementwise operand, an output) stays
 * f32: every other kernel reads f32.
 *
 * Why: a decoding step (T = 1) reads every weight once per token and is
 * bound by memory bandwidth; bf16 panels halve the bytes read
 * (docs/cli.md, "--weights-dtype"). */
#include <string.h>

#include "ir.h"

bool ir_param_bf16(const Graph *g, int param) {
  return g->param_bf16 && g->param_bf16[param];
}

void pass_weights_bf16(Graph *g) {
  int np = g->model->nparams;
  bool *bad = NEW_ARRAY(bool, np + 1), *used = NEW_ARRAY(bool, np + 1);
  memset(bad, 0, sizeof(bool) * (size_t)(np + 1));
  memset(used, 0, sizeof(bool) * (size_t)(np + 1));
  for (int i = 0; i < g->n; i++) {
    const Node *n = &g->nodes[i];
    if (n->dead || n->op == OP_VIEW) continue;   /* a view's users are seen through it */
    for (int k = 0; k < n->nin; k++) {
      const Node *r = &g->nodes[ir_view_root(g, n->in[k])];
      if (r->op != OP_PARAM) continue;
      used[r->index] = true;
      if (!((n->op == OP_PACK || (n->op == OP_TRANSPOSE && ir_is_prepared(g, n))) && k == 0)) bad[r->index] = true;
    }
  }
  for (int o = 0; o < g->noutputs; o++) {
    const Node *r = &g->nodes[ir_view_root(g, g->outputs[o])];
    if (r->op == OP_PARAM) bad[r->index] = true;
  }
  g->param_bf16 = NEW_ARRAY(bool, np + 1);
  for (int p = 0; p < np; p++) g->param_bf16[p] = used[p] && !bad[p] && g->model->params[p].type.dtype == DT_F32;
  for (int i = 0; i < g->n; i++) {
    Node *n = &g->nodes[i];
    bool layout = n->op == OP_PACK || (n->op == OP_TRANSPOSE && ir_is_prepared(g, n));
    const Node *r = &g->nodes[ir_view_root(g, layout ? n->in[0] : i)];
    n->bf16 = !n->dead && (n->op == OP_PARAM || n->op == OP_VIEW || layout) && r->op == OP_PARAM &&
              g->param_bf16[r->index];
  }
}
