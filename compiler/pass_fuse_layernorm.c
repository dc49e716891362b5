/* pass_fuse_layernorm.c: a residual add feeding a LayerNorm becomes part
 * of the LayerNorm, so the sum is never written to memory.
 *
 * Needs: a verified graph with counted uses.
 * Guarantees: every layernorm(a + r, w, b) whose sum has no other user and
 * whose a and r have the result's exact type (no broadcasting) becomes
 * layernorm(a, w, b, r), marked fused; the add is dead (pass_dce removes
 * it).  The graph stays verified.
 *
 * Rule from tests/ir/fuse_residual_layernorm.attn (the encoder's
 * norm1(x + self_attn(...))); tests/ir/nofuse_residual_used.attn keeps a
 * sum that is also an output. */
#include "ir.h"

void pass_fuse_layernorm(Graph *g) {
  ir_count_uses(g);
  for (int i = 0; i < g->n; i++) {
    Node *ln = &g->nodes[i];
    if (ln->dead || ln->op != OP_LAYERNORM || ln->nin != 3) continue;
    Node *sum = &g->nodes[ln->in[0]];
    if (sum->op != OP_ADD || sum->uses != 1) continue;
    const Node *a = &g->nodes[sum->in[0]], *r = &g->nodes[sum->in[1]];
    if (!type_eq(a->type, ln->type) || !type_eq(r->type, ln->type)) continue;
    ln->fused = arena_printf("add (%d:%d), layernorm (%d:%d)", sum->loc.line, sum->loc.col, ln->loc.line, ln->loc.col);
    ln->in[0] = sum->in[0];
    ln->in[3] = sum->in[1];
    ln->nin = 4;
    sum->dead = true;
    ir_count_uses(g);
  }
}
