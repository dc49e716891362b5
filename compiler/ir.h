/* ir.h: the graph IR.  A Graph is one model as a list of Nodes in
 * topological order (every operand precedes its user); a node is one
 * primitive op from ops.h producing one tensor of a known Type. */
#ifndef ATTNC_IR_H
#define ATTNC_IR_H

#include <stdio.h>

#include "ast.h"

enum { T_LEAF = 1, T_EW = 2, T_REDUCE = 4 };

typedef enum Op {
#define OP(name, text, arity, traits) OP_##name,
#include "ops.h"
#undef OP
  OP_COUNT
} Op;

typedef struct OpInfo { const char *text; int arity; int traits; } OpInfo;
extern const OpInfo op_info[OP_COUNT];

#define MAX_OPERANDS 8

/* A fused elementwise program, evaluated per element: each step applies
 * an elementwise op to refs; a ref r >= 0 is operand r of the node,
 * EW_SELF the value the node computes itself (a MATMUL's element, for an
 * epilogue), and r <= -1 (not EW_SELF) the result of step -r-1.  The last
 * step's result is the node's. */
#define EW_SELF (-1000)
typedef struct EwStep { Op op; int a, b; double fval; /* FILL: the value */ } EwStep;

typedef struct Node {
  Op op;
  Loc loc;            /* the source expression it came from */
  Type type;
  int in[MAX_OPERANDS];
  int nin;
  int axis;           /* SOFTMAX, reductions */
  bool tb;            /* MATMUL: second operand is transposed ([.., N, K]) */
  bool causal;        /* SOFTMAX: key j is hidden from query i when j > i */
  bool causal_lr;     /* with causal: lower right, when j > i + S - T */
  bool safe;          /* SOFTMAX: a row with every key masked gives zeros */
  int64_t start;      /* VIEW: first row of the operand's first dim */
  bool slice;         /* VIEW: a slice, whose rows must lie in the operand's
                         first dim (checked at the call when it is symbolic) */
  const char *fused;  /* a fused op: what it replaced, for --emit-ir */
  EwStep *prog;       /* FUSED_EW: its program; MATMUL: an epilogue or NULL */
  int nprog;
  double fval;        /* CONST: value; LAYERNORM: eps; FILL: the value;
                         ATTENTION: the scale */
  bool filled;        /* ATTENTION: the last operand is a fill mask */
  int heads_inner;    /* ATTENTION: bit k set: operand k (q, k, v) is read as
                         [.., S, H, d] for [.., H, S, d]: its split heads in
                         place, not swapped into a copy */
  double fill;        /* ATTENTION with filled: the score where it is nonzero */
  int index;          /* INPUT, PARAM: index in the model's list */
  const char *name;   /* the let/output name that holds it, for --emit-ir */
  /* filled by passes: */
  int uses;           /* number of operand slots that name it, plus outputs */
  bool dead;
  int slot;           /* memory plan: scratch slot, or -1 */
  int output;         /* memory plan: output index it is written to, or -1 */
} Node;

/* A scratch slot: size in bytes = 4 * coeff * prod(dims[sym]^pow[sym]). */
typedef struct Slot { int64_t coeff; int pow[16]; } Slot;

/* NAME=VALUE from the command line */
typedef struct NamedPath { const char *name, *path; } NamedPath;

typedef struct Graph {
  const Model *model;
  Node *nodes;
  int n, cap;
  int *outputs;       /* node per model output */
  int noutputs;
  Slot *slots;        /* memory plan */
  int nslots;
} Graph;

/* ir.c */
int ir_add(Graph *g, Node node);          /* appends; returns its id */
void ir_count_uses(Graph *g);
void ir_print(FILE *f, const Graph *g);
void ir_print_dot(FILE *f, Graph **gs, int n);   /* dot.c */
void ir_verify(const Graph *g, const char *after_pass);
int64_t ir_numel_known(Type t);
int ir_view_root(const Graph *g, int id);
bool ir_reads_i32(Op op, int slot);         /* does op take an i32 operand in slot? */
/* A pack or transpose of a param (through views; the transpose not an
 * output): laid out once, when the params are bound, into the context's
 * prepared buffer, not per call.  The transpose is an LSTM's or GRU's
 * W_hh^T (lower.c): per call, it was most of a decoder step's time. */
bool ir_is_prepared(const Graph *g, const Node *n);
/* An output concat(in, x, axis=0) of an input `in` itself (design.md 5.4,
 * 5.7): the caller may pass the output's buffer as in's, with room for the
 * new rows, and the call then writes only those.  After memplan. */
bool ir_is_append(const Graph *g, const Node *n);   /* follows VIEWs to the node that owns the memory */

/* The phases; each needs a verified graph and leaves one. */
Graph *lower_model(const Model *m);        /* lower.c: checked AST -> IR */
void pass_fold_constants(Graph *g);        /* pass_fold.c */
void pass_dce(Graph *g);                   /* pass_dce.c */
void pass_fuse_attention(Graph *g, bool remarks); /* pass_fuse_attention.c */
void pass_fuse_layernorm(Graph *g);        /* pass_fuse_layernorm.c */
void pass_fuse_elementwise(Graph *g);      /* pass_fuse_elementwise.c */
void pass_pack_gemm(Graph *g);             /* pass_pack_gemm.c */
void plan_memory(Graph *g);                /* memplan.c */

#endif
