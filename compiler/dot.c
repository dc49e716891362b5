/* dot.c: the graph IR for Graphviz (--emit-dot).  One box per live op,
 * edges from operands to users; a fused op is drawn as a cluster holding
 * the ops it replaced (dashed, in evaluation order) and the fused op. */
#include "ir.h"

static void label(FILE *f, const Graph *g, const Node *n) {
  const Model *m = g->model;
  fprintf(f, "%s", op_info[n->op].text);
  if (n->op == OP_INPUT) fprintf(f, " %s", m->inputs[n->index]->name);
  if (n->op == OP_PARAM) fprintf(f, " %s", m->params[n->index].name);
  if (n->op == OP_CONST) fprintf(f, " %g", n->fval);
  if (n->name) fprintf(f, "\\n%s", n->name);
  /* type_str only makes names, digits, brackets and commas: safe in a label */
  fprintf(f, "\\n%s", type_str(m, n->type));
}

void ir_print_dot(FILE *f, Graph **gs, int n) {
  fprintf(f, "digraph attnc {\n  rankdir=TB;\n  node [shape=box, fontname=\"monospace\", fontsize=10];\n");
  for (int gi = 0; gi < n; gi++) {
    const Graph *g = gs[gi];
    const char *mn = g->model->name;
    fprintf(f, "  subgraph cluster_model_%d {\n    label=\"model %s\";\n", gi, mn);
    for (int i = 0; i < g->n; i++) {
      const Node *node = &g->nodes[i];
      if (node->dead) continue;
      if (node->fused) {
        fprintf(f, "    subgraph cluster_%d_fused_%d {\n      label=\"fused\"; style=filled; color=lightblue;\n", gi, i);
        /* the replaced ops, "op (line:col)" each, separated by ", " */
        const char *p = node->fused;
        int k = 0;
        while (*p) {
          const char *e = p;
          while (*e && !(e[0] == ',' && e[1] == ' ')) e++;
          fprintf(f, "      m%d_f%d_%d [label=\"%.*s\", style=dashed];\n", gi, i, k, (int)(e - p), p);
          if (k) fprintf(f, "      m%d_f%d_%d -> m%d_f%d_%d [style=dashed];\n", gi, i, k - 1, gi, i, k);
          k++;
          p = *e ? e + 2 : e;
        }
        fprintf(f, "      m%d_n%d [label=\"", gi, i);
        label(f, g, node);
        fprintf(f, "\", style=\"filled,bold\", fillcolor=white];\n");
        if (k) fprintf(f, "      m%d_f%d_%d -> m%d_n%d [style=dashed];\n", gi, i, k - 1, gi, i);
        fprintf(f, "    }\n");
      } else {
        fprintf(f, "    m%d_n%d [label=\"", gi, i);
        label(f, g, node);
        fprintf(f, "\"%s];\n", node->op == OP_INPUT || node->op == OP_PARAM ? ", shape=ellipse" : "");
      }
      for (int k = 0; k < node->nin; k++) fprintf(f, "    m%d_n%d -> m%d_n%d;\n", gi, node->in[k], gi, i);
    }
    for (int o = 0; o < g->noutputs; o++) {
      fprintf(f, "    m%d_out%d [label=\"output %s\", shape=ellipse];\n", gi, o, g->model->outputs[o]->name);
      fprintf(f, "    m%d_n%d -> m%d_out%d;\n", gi, g->outputs[o], gi, o);
    }
    fprintf(f, "  }\n");
  }
  fprintf(f, "}\n");
}
