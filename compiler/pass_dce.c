/* pass_dce.c: remove nodes whose values nobody uses.
 *
 * Needs: a verified graph with counted uses.
 * Guarantees: every live non-output node has a live user; input nodes
 * stay (they define the entry point).  Uses are recounted. */
#include "ir.h"

void pass_dce(Graph *g) {
  ir_count_uses(g);
  /* Users follow their operands, so one backward sweep finds all. */
  for (int i = g->n - 1; i >= 0; i--) {
    Node *n = &g->nodes[i];
    if (n->dead || n->uses > 0 || n->op == OP_INPUT) continue;
    n->dead = true;
    for (int k = 0; k < n->nin; k++) g->nodes[n->in[k]].uses--;
  }
  ir_count_uses(g);
}
