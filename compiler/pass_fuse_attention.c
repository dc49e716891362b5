/* pass_fuse_attention.c: matmul-softmax-matmul chains become one fused
 * attention op, which never builds the [T, S] score matrix.
 *
 * Needs: a verified graph with counted uses, after constant folding (so
 * that `/ sqrt(64)` is `/ const 8`).
 * Guarantees: every chain
 *     p = softmax(masked_fill?(q @ k^T [* c | / c] [+ mask], fm, value), axis=-1);  o = p @ v
 * whose intermediates have no other user becomes
 *     o = attention(q, k, v[, mask][, fm]), scale = c (or 1/c), fill = value
 * with the softmax's causal and masked-rows-zero flags; the replaced nodes
 * are dead (pass_dce removes them).  k^T may be written transpose(k) or
 * come from a Linear-style transposed matmul; a constant scale may also sit
 * on q or on k.  Nothing else changes; the graph stays verified.
 *
 * Each rule below names the test that motivated it (tests/ir/). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ir.h"

typedef struct Chain {
  int q, k, v, mask, fill_mask;
  double scale, fill;
  Vec replaced;           /* node ids that the fused op replaces */
} Chain;

static Node *node(Graph *g, int id) { return &g->nodes[id]; }

static bool is_const(Graph *g, int id) { return node(g, id)->op == OP_CONST; }

static void remark(bool on, const Node *n, const char *why) {
  if (on) user_remark(n->loc, "attention-like chain not fused: %s", why);
}

/* A value used only by the chain: fusing it away loses nothing.  Rule
 * from tests/ir/nofuse_scores_output.attn: scores that are also an output
 * must stay. */
static bool private(Graph *g, int id) { return node(g, id)->uses == 1; }

/* x * c, c * x or x / c with c a constant: returns x and folds c into
 * *scale (tests/ir/fuse_div_sqrt.attn, fuse_mul_scale.attn). */
static int strip_scale(Graph *g, int id, double *scale, Chain *c) {
  Node *n = node(g, id);
  if (!private(g, id)) return id;
  if (n->op == OP_MUL && is_const(g, n->in[1])) {
    *scale *= node(g, n->in[1])->fval;
  } else if (n->op == OP_MUL && is_const(g, n->in[0])) {
    *scale *= node(g, n->in[0])->fval;
    vec_push(&c->replaced, (void *)(intptr_t)id);
    return n->in[1];
  } else if (n->op == OP_DIV && is_const(g, n->in[1])) {
    *scale /= node(g, n->in[1])->fval;
  } else {
    return id;
  }
  vec_push(&c->replaced, (void *)(intptr_t)id);
  return n->in[0];
}

/* Does type m broadcast to the scores type s without changing it? */
static bool mask_fits(const Type *m, const Type *s) {
  if (m->rank > s->rank) return false;
  for (int i = 0; i < m->rank; i++) {
    Dim md = m->dims[i], sd = s->dims[s->rank - m->rank + i];
    if (!dim_eq(md, sd) && !(md.sym < 0 && md.size == 1)) return false;
  }
  return true;
}

static bool match(Graph *g, int out, Chain *c, bool remarks) {
  Node *pv = node(g, out);
  if (pv->op != OP_MATMUL || pv->tb) return false;
  int p = pv->in[0];
  Node *sm = node(g, p);
  if (sm->op != OP_SOFTMAX) return false;
  /* tests/ir/nofuse_softmax_axis0.attn: softmax over the queries is not
   * attention */
  if (sm->axis != sm->type.rank - 1) {
    remark(remarks, sm, "softmax is not over the key axis");
    return false;
  }
  /* tests/ir/nofuse_probs_output.attn: the probabilities are wanted */
  if (!private(g, p)) {
    /* tests/ir/mha_weights_unfused.attn: `let o, w = mha(...)` reads them */
    bool weights = false;
    for (int i = p + 1; i < g->n; i++)
      weights |= !g->nodes[i].dead && g->nodes[i].op == OP_MEAN && g->nodes[i].nin == 1 && g->nodes[i].in[0] == p;
    remark(remarks, sm, weights ? "the attention weights (MultiheadAttention's second result) are used, so the "
                                  "probabilities are kept"
                                : "the softmax result has another user");
    return false;
  }
  memset(c, 0, sizeof *c);
  c->scale = 1.0;
  c->mask = -1;
  c->fill_mask = -1;
  c->v = pv->in[1];
  vec_push(&c->replaced, (void *)(intptr_t)p);
  vec_push(&c->replaced, (void *)(intptr_t)out);
  int x = sm->in[0];
  Type st = sm->type;
  /* masked_fill(scores, m, value) (tests/ir/fuse_masked_fill.attn): the
   * kernel sets those scores to value, as the fill would, so the result
   * is the unfused one (design.md 5.7), -1e9 and -inf alike; a fill of
   * +inf or NaN stays a fill */
  if (node(g, x)->op == OP_FILL && private(g, x)) {
    Node *f = node(g, x);
    int m = f->in[1];
    if (!(f->fval < INFINITY)) {
      remark(remarks, f, "the fill value is not a finite number or -inf");
      return false;
    }
    if (mask_fits(&node(g, m)->type, &st) && !is_const(g, m)) {
      c->fill_mask = m;
      c->fill = f->fval;
      vec_push(&c->replaced, (void *)(intptr_t)x);
      x = f->in[0];
    }
  }
  /* + mask (tests/ir/fuse_mask_tensor.attn) */
  if (node(g, x)->op == OP_ADD && private(g, x)) {
    Node *a = node(g, x);
    for (int side = 0; side < 2; side++) {
      int s = a->in[side], m = a->in[1 - side];
      int inner = strip_scale(g, s, &(double){1.0}, &(Chain){0});
      Node *in = node(g, inner);
      if (in->op == OP_MATMUL && mask_fits(&node(g, m)->type, &st) && !is_const(g, m)) {
        c->mask = m;
        vec_push(&c->replaced, (void *)(intptr_t)x);
        x = s;
        break;
      }
    }
  }
  x = strip_scale(g, x, &c->scale, c);
  Node *qk = node(g, x);
  if (qk->op != OP_MATMUL || !private(g, x)) {
    if (qk->op == OP_MATMUL) remark(remarks, qk, "the scores have another user");
    return false;
  }
  vec_push(&c->replaced, (void *)(intptr_t)x);
  c->q = qk->in[0];
  c->k = qk->in[1];
  if (!qk->tb) {
    /* q @ transpose(k) (tests/ir/fuse_sdpa.attn) */
    if (node(g, c->k)->op != OP_TRANSPOSE) return false;
    if (private(g, c->k)) vec_push(&c->replaced, (void *)(intptr_t)c->k);
    c->k = node(g, c->k)->in[0];
  }
  /* a scale on q or k (tests/ir/fuse_scaled_q.attn) */
  c->q = strip_scale(g, c->q, &c->scale, c);
  c->k = strip_scale(g, c->k, &c->scale, c);
  const Type *tq = &node(g, c->q)->type, *tk = &node(g, c->k)->type, *tv = &node(g, c->v)->type;
  /* tests/ir/nofuse_vector_query.attn: 1-D operands are matrix-vector
   * products, not attention */
  if (tq->rank < 2 || tk->rank < 2 || tv->rank < 2) return false;
  return true;
}

/* q, k or v as split_heads makes them, swap_heads(view [.., S, H, d] of
 * [.., S, D]) with no other user: the kernel reads the heads where they
 * are (Node.heads_inner), so no copy is made of them; with a cache of P
 * keys that copy was the whole cache at every step (bench/decode.sh).
 * Rule from tests/ir/fuse_heads_in_place.attn. */
static void absorb_head_swaps(Graph *g, Node *n) {
  for (int k = 0; k < 3; k++) {
    Node *s = node(g, n->in[k]);
    if (s->op != OP_SWAP_HEADS || s->uses != 1 || s->type.rank < 3) continue;
    n->in[k] = s->in[0];
    n->heads_inner |= 1 << k;
    s->dead = true;
  }
}

static const char *describe(Graph *g, Chain *c) {
  /* in graph order, which is the order of evaluation */
  char *s = "";
  for (int i = 0; i < g->n; i++)
    for (int r = 0; r < c->replaced.len; r++)
      if ((intptr_t)c->replaced.items[r] == i) {
        Node *n = node(g, i);
        s = arena_printf("%s%s%s (%d:%d)", s, *s ? ", " : "", op_info[n->op].text, n->loc.line, n->loc.col);
      }
  return s;
}

void pass_fuse_attention(Graph *g, bool remarks) {
  ir_count_uses(g);
  for (int i = 0; i < g->n; i++) {
    Chain c;
    if (g->nodes[i].dead || !match(g, i, &c, remarks)) continue;
    const char *what = describe(g, &c);
    Node *sm = node(g, g->nodes[i].in[0]);
    bool causal = sm->causal, causal_lr = sm->causal_lr, safe = sm->safe;
    for (int r = 0; r < c.replaced.len; r++) {
      int id = (int)(intptr_t)c.replaced.items[r];
      if (id != i) node(g, id)->dead = true;
    }
    Node *n = node(g, i);
    n->op = OP_ATTENTION;
    n->in[0] = c.q;
    n->in[1] = c.k;
    n->in[2] = c.v;
    n->nin = 3;
    if (c.mask >= 0) n->in[n->nin++] = c.mask;
    n->filled = c.fill_mask >= 0;
    if (n->filled) n->in[n->nin++] = c.fill_mask;
    n->fill = c.fill;
    n->fval = c.scale;
    absorb_head_swaps(g, n);
    n->causal = causal;
    n->causal_lr = causal_lr;
    n->safe = safe;
    n->tb = false;
    n->fused = what;
    ir_count_uses(g);
  }
}
