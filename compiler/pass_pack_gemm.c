/* pass_pack_gemm.c: the B operand of every register-blocked GEMM is
 * packed once per call into the GEMM's panel layout.
 *
 * Needs: a verified graph (after fusion: an epilogue-carrying matmul is
 * final).
 * Guarantees: every live matmul that is not transpose_b and whose
 * operands both have rank >= 2 reads its B through a `pack` node of B's
 * type ([.., K, N]), placed just before the matmul.  When B is a
 * transpose used by nothing else (a Linear's W^T, made by lowering), the
 * transpose itself becomes the pack, marked `transposed`: it reads W
 * [.., N, K] directly.  Other nodes keep their order; the graph stays
 * verified, uses are recounted.
 *
 * Why: the GEMM's tasks each used to copy B's panels to their stack, so
 * B was read, with rows N floats apart, once per task (about a fifth of
 * gemm-1024's time in bench/).  Packed once, a panel is one contiguous
 * stream.  Rule from tests/ir/pack_gemm.attn; tests/ir/fuse_linear_gelu.attn
 * shows the Linear form. */
#include <string.h>

#include "ir.h"

static bool wants_pack(const Graph *g, const Node *n) {
  return !n->dead && n->op == OP_MATMUL && !n->tb && g->nodes[n->in[0]].type.rank >= 2 &&
         g->nodes[n->in[1]].type.rank >= 2 && g->nodes[n->in[1]].op != OP_PACK;
}

void pass_pack_gemm(Graph *g) {
  ir_count_uses(g);
  int extra = 0;
  for (int i = 0; i < g->n; i++) {
    Node *n = &g->nodes[i];
    if (!wants_pack(g, n)) continue;
    Node *b = &g->nodes[n->in[1]];
    if (b->op == OP_TRANSPOSE && b->uses == 1) {
      b->op = OP_PACK;
      b->tb = true;
    } else {
      extra++;
    }
  }
  if (!extra) {
    ir_count_uses(g);
    return;
  }
  /* Rebuild the node array with a pack inserted before each matmul that
   * still needs one, renumbering operands and outputs. */
  Node *old = g->nodes;
  int n_old = g->n;
  int *map = NEW_ARRAY(int, n_old);
  g->nodes = NEW_ARRAY(Node, n_old + extra);
  g->n = 0;
  g->cap = n_old + extra;
  for (int i = 0; i < n_old; i++) {
    Node n = old[i];
    for (int k = 0; k < n.nin; k++) n.in[k] = map[n.in[k]];
    if (wants_pack(g, &n)) {
      const Node *b = &g->nodes[n.in[1]];
      Node p = {.op = OP_PACK, .loc = n.loc, .type = b->type, .nin = 1, .in = {n.in[1]}, .slot = -1, .output = -1};
      g->nodes[g->n] = p;
      n.in[1] = g->n++;
    }
    g->nodes[g->n] = n;
    map[i] = g->n++;
  }
  for (int i = 0; i < g->noutputs; i++) g->outputs[i] = map[g->outputs[i]];
  ir_count_uses(g);
}
