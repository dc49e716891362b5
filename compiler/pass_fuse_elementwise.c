/* pass_fuse_elementwise.c: chains of elementwise ops run as one loop, and
 * the elementwise ops after a matmul (a Linear's bias, an activation) run
 * in the matmul's epilogue while its output row is in cache.
 *
 * Needs: a verified graph with counted uses, after the other fusions.
 * Guarantees:
 *   - an elementwise op whose operand is an elementwise op of the same
 *     result type with no other user absorbs it: both become one
 *     FUSED_EW node (tests/ir/fuse_elementwise_chain.attn);
 *   - a MATMUL (not matrix-vector) whose only user is an elementwise node
 *     of the same result type becomes that node, with the elementwise
 *     program as its epilogue (tests/ir/fuse_linear_gelu.attn);
 *   - a value with another user, or one that the user broadcasts, stays
 *     (tests/ir/nofuse_elementwise_shared.attn);
 *   - no node has more than MAX_OPERANDS operands.
 * The absorbed nodes are dead (pass_dce removes them). */
#include <string.h>

#include "ir.h"

/* Make n's program explicit: a plain elementwise op is one step. */
static void as_program(Node *n) {
  if (n->prog || n->op == OP_MATMUL) return;
  n->fused = arena_printf("%s (%d:%d)", op_info[n->op].text, n->loc.line, n->loc.col);
  n->prog = NEW_ARRAY(EwStep, 1);
  n->prog[0] = (EwStep){n->op, 0, n->nin > 1 ? 1 : 0, n->fval};
  n->nprog = 1;
  n->op = OP_FUSED_EW;
}

static const char *describe(const Node *n) {
  if (n->fused) return n->fused;
  return arena_printf("%s (%d:%d)", op_info[n->op].text, n->loc.line, n->loc.col);
}

/* A node fused from one op only is that op again, for a readable IR. */
static void unwrap_single(Node *n) {
  if (n->op == OP_FUSED_EW && n->nprog == 1 && n->prog[0].a >= 0) {
    n->op = n->prog[0].op;
    n->fval = n->prog[0].fval;
    n->prog = NULL;
    n->nprog = 0;
    n->fused = NULL;
  }
}

static int find_or_add(int *ins, int *nin, int id, int from) {
  for (int i = from; i < *nin; i++)
    if (ins[i] == id) return i;
  if (*nin == MAX_OPERANDS) return -1;
  ins[*nin] = id;
  return (*nin)++;
}

/* Fold producer p (operand slot `slot` of consumer c) into c.  With
 * self_matmul, p is a MATMUL and c becomes it, with c's program as the
 * epilogue.  Returns false (changing nothing) if the operands do not fit. */
static bool absorb(Graph *g, Node *c, int slot, Node *p, bool self_matmul) {
  int ins[MAX_OPERANDS], nin = 0;
  int pmap[MAX_OPERANDS], cmap[MAX_OPERANDS];
  int pid = c->in[slot];
  if (self_matmul) {
    ins[nin++] = p->in[0];
    ins[nin++] = p->in[1];
  } else {
    for (int i = 0; i < p->nin; i++)
      if ((pmap[i] = find_or_add(ins, &nin, p->in[i], 0)) < 0) return false;
  }
  for (int i = 0; i < c->nin; i++) {
    if (c->in[i] == pid) continue;
    /* an epilogue reads only its own operands, never the matmul's two */
    if ((cmap[i] = find_or_add(ins, &nin, c->in[i], self_matmul ? 2 : 0)) < 0) return false;
  }
  int np = self_matmul ? 0 : p->nprog;
  EwStep *prog = NEW_ARRAY(EwStep, np + c->nprog);
  for (int s = 0; s < np; s++) {
    EwStep st = p->prog[s];
    if (st.a >= 0) st.a = pmap[st.a];
    if (st.b >= 0) st.b = pmap[st.b];
    prog[s] = st;
  }
  int pres = self_matmul ? EW_SELF : -np;   /* where p's value now comes from */
  for (int s = 0; s < c->nprog; s++) {
    EwStep st = c->prog[s];
    int *refs[2] = {&st.a, &st.b};
    for (int r = 0; r < 2; r++) {
      if (*refs[r] >= 0) *refs[r] = c->in[*refs[r]] == pid ? pres : cmap[*refs[r]];
      else if (*refs[r] != EW_SELF) *refs[r] -= np;
    }
    prog[np + s] = st;
  }
  c->fused = arena_printf("%s, %s", describe(p), describe(c));
  memcpy(c->in, ins, sizeof(int) * (size_t)nin);
  c->nin = nin;
  c->prog = prog;
  c->nprog = np + c->nprog;
  if (self_matmul) {
    c->op = OP_MATMUL;
    c->tb = p->tb;
  }
  p->dead = true;
  return true;
}

/* Phase 1 (matmuls = false) builds the elementwise chains; phase 2 folds
 * each whole chain into the matmul that feeds it. */
static void fuse(Graph *g, bool matmuls) {
  for (int i = 0; i < g->n; i++) {
    Node *c = &g->nodes[i];
    if (c->dead || !(op_info[c->op].traits & T_EW) || c->op == OP_COPY) continue;
    for (bool again = true; again && c->op != OP_MATMUL;) {
      again = false;
      for (int k = 0; k < c->nin && !again; k++) {
        Node *p = &g->nodes[c->in[k]];
        if (p->uses != 1 || !type_eq(p->type, c->type)) continue;
        bool ew = !matmuls && (op_info[p->op].traits & T_EW) && p->op != OP_COPY;
        bool mm = matmuls && p->op == OP_MATMUL && !p->prog && g->nodes[p->in[1]].type.rank >= 2;
        if (!ew && !mm) continue;
        Node saved = *c;
        as_program(c);
        if (ew) as_program(p);
        if (absorb(g, c, k, p, mm)) {
          ir_count_uses(g);
          again = true;
        } else {
          *c = saved;
        }
      }
    }
  }
}

void pass_fuse_elementwise(Graph *g) {
  ir_count_uses(g);
  fuse(g, false);
  fuse(g, true);
  for (int i = 0; i < g->n; i++)
    if (!g->nodes[i].dead) unwrap_single(&g->nodes[i]);
  ir_count_uses(g);
}
