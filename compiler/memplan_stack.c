/* memplan_stack.c: stacked caches written in place (design.md 5.4).
 *
 * A layer array that extends a stacked cache lowers to, per layer i,
 * c_i = concat(past[i], x_i, axis=0) of an input past [N, P, ...], and the
 * output [N, P+T, ...] to a tree of concats of the c_i (lower.c `stack`),
 * which copies every cache row log2(N) + 1 times.  Here each c_i is placed
 * in its layer of the output instead, so the tree has nothing left to do.
 *
 * The layer stride of past and of the output is then a run-time value: the
 * dims' (P, P+T) by default, or the capacity the caller set for past
 * (attnrt_ctx_set_capacity), the same for both; with it, the output may be
 * given past's buffer and each layer writes only its new rows (module.c
 * selects the concat's tail kernel, as for an unbatched append).
 *
 * Needs: a graph after the last pass, outputs marked (Node.output), uses
 * counted.  Guarantees: for each output matched, its c_i have stack_out and
 * stack_part, the tree's concats are elided (no kernel, no memory), and
 * past is marked stacked; every use of a stacked input is a view of one of
 * its layers, so module.c can point each view with the run-time stride.
 * Nothing else changes: an output that does not match keeps its copies. */
#include "ir.h"

/* Does a view of the input select exactly its layer `start`? */
static bool is_layer_view(const Node *in, const Node *v) {
  if (v->op != OP_VIEW || v->dead || v->slice || v->type.rank != in->type.rank - 1) return false;
  if (v->start < 0 || v->start >= in->type.dims[0].size) return false;
  for (int a = 1; a < in->type.rank; a++)
    if (v->type.dims[a - 1].size != in->type.dims[a].size || v->type.dims[a - 1].sym != in->type.dims[a].sym)
      return false;
  return true;
}

/* The layers of a stack tree rooted at id, in order, into parts; false if
 * it is not one (a concat along 0 of views [1, ...] of whole values). */
static bool collect(Graph *g, int id, bool root, int *parts, int *n, int max) {
  Node *c = &g->nodes[id];
  if (c->op == OP_CONCAT && c->axis == 0 && (root || (c->uses == 1 && c->output < 0)))
    return collect(g, c->in[0], false, parts, n, max) && collect(g, c->in[1], false, parts, n, max);
  if (c->op != OP_VIEW || c->start != 0 || c->uses != 1 || c->type.rank < 1 || c->type.dims[0].sym >= 0 ||
      c->type.dims[0].size != 1 || *n >= max)
    return false;
  const Node *part = &g->nodes[c->in[0]];
  if (part->type.rank != c->type.rank - 1) return false;
  parts[(*n)++] = c->in[0];
  return true;
}

static void elide(Graph *g, int id) {
  Node *c = &g->nodes[id];
  if (c->op != OP_CONCAT) return;
  c->elided = true;
  elide(g, c->in[0]);
  elide(g, c->in[1]);
}

/* Is every use of input node x a view of one of its layers? */
static bool only_layer_views(const Graph *g, int x) {
  const Node *in = &g->nodes[x];
  for (int o = 0; o < g->noutputs; o++)
    if (g->outputs[o] == x) return false;
  for (int i = 0; i < g->n; i++) {
    const Node *n = &g->nodes[i];
    if (n->dead) continue;
    for (int k = 0; k < n->nin; k++)
      if (n->in[k] == x && !is_layer_view(in, n)) return false;
  }
  return true;
}

static void match_output(Graph *g, int o) {
  int root = g->outputs[o];
  Node *r = &g->nodes[root];
  /* read by nothing but the caller: its layout may have a capacity */
  if (r->op != OP_CONCAT || r->axis != 0 || r->uses != 1 || r->type.rank < 2 || r->type.dims[0].sym >= 0) return;
  for (int p = 0; p < g->noutputs; p++)
    if (p != o && g->outputs[p] == root) return;    /* one value, two outputs */
  int64_t N = r->type.dims[0].size;
  int *parts = NEW_ARRAY(int, N + 1);
  int n = 0;
  if (!collect(g, root, true, parts, &n, (int)N) || n != N) return;
  int x = -1;
  for (int i = 0; i < n; i++) {
    const Node *c = &g->nodes[parts[i]];
    if (c->op != OP_CONCAT || c->axis != 0 || c->output >= 0 || c->stack_out >= 0) return;
    const Node *v = &g->nodes[c->in[0]];
    if (v->op != OP_VIEW || g->nodes[v->in[0]].op != OP_INPUT) return;
    if (x >= 0 && v->in[0] != x) return;
    x = v->in[0];
    if (!is_layer_view(&g->nodes[x], v) || v->start != i) return;
  }
  const Node *in = &g->nodes[x];
  if (in->type.rank != r->type.rank || in->type.dims[0].sym >= 0 || in->type.dims[0].size != N) return;
  if (!only_layer_views(g, x)) return;
  for (int i = 0; i < n; i++) {
    g->nodes[parts[i]].stack_out = o;
    g->nodes[parts[i]].stack_part = i;
  }
  elide(g, root);
  g->nodes[x].stacked = true;
}

void plan_stacked_outputs(Graph *g) {
  for (int i = 0; i < g->n; i++) {
    g->nodes[i].stack_out = -1;
    g->nodes[i].elided = false;
    g->nodes[i].stacked = false;
  }
  for (int o = 0; o < g->noutputs; o++) match_output(g, o);
}
