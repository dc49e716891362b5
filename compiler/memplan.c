/* memplan.c: plan the scratch memory at compile time.
 *
 * Needs: a verified graph after the last pass that adds or removes nodes.
 * Guarantees: every live node that is not an input, param, constant or
 * output has a scratch slot (Node.slot); outputs write straight into the
 * caller's buffers (Node.output).  A slot is reused once the value in it is
 * dead, but only by a value it provably holds for every binding of the
 * symbolic dims: its size is a monomial coeff * prod(dim^pow) with the same
 * powers and a coefficient at least as large.  A value never shares a slot
 * with one of its own operands, so kernels may treat them as not aliased.
 * A VIEW owns no memory: it keeps the value it views alive as long as the
 * view itself is used.  A prepared node (a param's pack, ir_is_prepared)
 * lives in the context's prepared buffer (module.c), not in scratch, and
 * the layers of a stacked cache live in their output (memplan_stack.c). */
#include <string.h>

#include "ir.h"

static Slot size_of(const Type *t) {
  Slot s;
  memset(&s, 0, sizeof s);
  s.coeff = 1;
  for (int i = 0; i < t->rank; i++) {
    if (t->dims[i].sym < 0) s.coeff *= t->dims[i].size;
    else s.pow[t->dims[i].sym]++;
  }
  return s;
}

static bool fits(const Slot *have, const Slot *want) {
  return memcmp(have->pow, want->pow, sizeof have->pow) == 0 && have->coeff >= want->coeff;
}

void plan_memory(Graph *g) {
  ir_count_uses(g);
  int *last_use = NEW_ARRAY(int, g->n);
  for (int i = 0; i < g->n; i++) {
    last_use[i] = -1;
    g->nodes[i].slot = -1;
    g->nodes[i].output = -1;
  }
  for (int i = 0; i < g->n; i++) {
    Node *n = &g->nodes[i];
    if (n->dead) continue;
    for (int k = 0; k < n->nin; k++) last_use[ir_view_root(g, n->in[k])] = i;
  }
  for (int o = 0; o < g->noutputs; o++) g->nodes[g->outputs[o]].output = o;
  plan_stacked_outputs(g);

  g->slots = NEW_ARRAY(Slot, g->n + 1);
  g->nslots = 0;
  bool *busy = NEW_ARRAY(bool, g->n + 1);
  for (int i = 0; i < g->n; i++) {
    Node *n = &g->nodes[i];
    if (n->dead) continue;
    if (!(op_info[n->op].traits & T_LEAF) && n->op != OP_VIEW && n->output < 0 && n->stack_out < 0 &&
        !n->elided && !ir_is_prepared(g, n)) {
      Slot want = size_of(&n->type);
      int best = -1;
      for (int s = 0; s < g->nslots; s++)
        if (!busy[s] && fits(&g->slots[s], &want) && (best < 0 || g->slots[s].coeff < g->slots[best].coeff))
          best = s;
      if (best < 0) {
        best = g->nslots++;
        g->slots[best] = want;
      }
      busy[best] = true;
      n->slot = best;
    }
    /* Operands die after the node that uses them last is placed, so the
     * node cannot be given its own operand's slot. */
    for (int k = 0; k < n->nin; k++) {
      int r = ir_view_root(g, n->in[k]);
      if (last_use[r] == i && g->nodes[r].slot >= 0) busy[g->nodes[r].slot] = false;
    }
    /* A value nobody reads (possible only for inputs) holds no slot. */
    if (n->slot >= 0 && last_use[i] < 0) busy[n->slot] = false;
  }
}
