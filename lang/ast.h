/* ast.h: the syntax tree of a .attn file, and the types the checker gives it.
 *
 * The parser builds it through the ast_* builders (one call per grammar
 * action); check_program() then resolves every name, folds const
 * expressions, and gives every expression a Type.  Lowering (compiler/)
 * reads only checked trees: everything it needs is filled in by the checker,
 * as the "checker:" comments below say. */
#ifndef ATTNC_AST_H
#define ATTNC_AST_H

#include "base.h"

/* ---- types ------------------------------------------------------------ */
typedef enum DType { DT_F32, DT_I32 } DType;

#define MAX_RANK 4
/* Expressions nest at most this deep (the parser refuses deeper ones), so
 * recursive walks over them are bounded. */
#define MAX_EXPR_DEPTH 256
/* The checker makes sure the known dims of every tensor (symbolic ones
 * counted as 1) multiply to at most this, so byte counts fit in int64. */
#define MAX_NUMEL ((int64_t)1 << 60)
#define MAX_POSENC_D 65536   /* positional_encoding's D: its frequency table is code */
/* A file compiles to at most this many graph operations (inputs, outputs
 * and every operation its expressions lower to, over all its models), so
 * that compile time and memory stay bounded; a model has at most
 * MAX_PARAMS params. */
#define MAX_OPS 4096
#define MAX_PARAMS 4096

/* A dim is a known size (sym < 0), or a symbolic dim bound at call time
 * (sym >= 0 indexes the model's symbol table; size is then 0). */
typedef struct Dim { int64_t size; int sym; } Dim;

typedef struct Type {
  DType dtype;
  int rank;                 /* 0..MAX_RANK */
  Dim dims[MAX_RANK];
} Type;

/* ---- expressions -------------------------------------------------------- */
typedef enum ExprKind {
  E_NUM,      /* number literal: num, is_int */
  E_NAME,     /* name */
  E_BINARY,   /* lhs op rhs; op is one of '@' '+' '-' '*' '/' or a BinCmp */
  E_NEG,      /* -lhs */
  E_CALL,     /* name(args) */
  E_INDEX,    /* lhs[rhs] */
  E_SLICE,    /* lhs[rhs:hi], either bound NULL when omitted */
  E_RESULT,   /* result `index` of the call lhs, bound by `let a, b = f(...)`;
                 lhs is shared by the group's E_RESULTs, group names count */
} ExprKind;

/* E_BINARY's comparisons (the arithmetic ops are their characters). */
typedef enum BinCmp { BIN_EQ = 256, BIN_NE, BIN_LT, BIN_LE, BIN_GT, BIN_GE } BinCmp;
const char *binop_text(int op);   /* "+", "==", ... */
static inline bool binop_is_cmp(int op) { return op >= BIN_EQ && op <= BIN_GE; }

/* The functions of the language.  The checker maps a call's name to one. */
typedef enum Builtin {
  B_NONE,
  B_TRANSPOSE, B_SOFTMAX, B_EXP, B_LOG, B_SQRT, B_TANH, B_SIGMOID, B_RELU,
  B_GELU, B_SILU, B_SUM, B_MEAN, B_MAX, B_LAYERNORM, B_DROPOUT,
  /* issue 3 widens the language with these */
  B_CONCAT, B_ATTENTION, B_SPLIT_HEADS, B_MERGE_HEADS, B_POSENC, B_CAUSAL,
  /* issue 19: views */
  B_UNSQUEEZE, B_SQUEEZE, B_RESHAPE,
  /* issue 19: masks */
  B_MASKED_FILL,
} Builtin;

typedef enum LayerKind {
  L_NONE, L_LINEAR, L_LAYERNORM,
  /* issue 3 */
  L_EMBEDDING, L_LSTM, L_GRU,
  /* issue 15: one step of an LSTM or GRU */
  L_LSTM_CELL, L_GRU_CELL,
  L_MHA, L_ADDITIVE,
  /* issue 14: an instance of a user-defined block */
  L_BLOCK,
} LayerKind;

/* Calls return at most this many results (a block's outputs, an array's
 * stacked ones). */
#define MAX_RESULTS 16

typedef struct Expr Expr;
typedef struct Decl Decl;
typedef struct Block Block;
typedef struct BlockCall BlockCall;
typedef struct ArrayScan ArrayScan;

typedef struct Arg {
  const char *name;   /* keyword argument name, or NULL if positional */
  Loc name_loc;
  Expr *value;
} Arg;

struct Expr {
  ExprKind kind;
  Loc loc;            /* the operator for E_BINARY/E_NEG/E_INDEX, the first
                         character of the name for E_NAME/E_CALL */
  double num;         /* E_NUM */
  bool is_int;        /* E_NUM: written without '.', 'e' */
  const char *text;   /* E_NUM: the literal as written */
  int depth;          /* nesting depth of this subtree: 1 for a leaf */
  const char *name;   /* E_NAME, E_CALL */
  int op;             /* E_BINARY */
  Expr *lhs, *rhs;    /* E_BINARY, E_NEG (lhs), E_INDEX (lhs[rhs]), E_SLICE (lhs[rhs:hi]) */
  Expr *hi;           /* E_SLICE: the end, or NULL */
  Arg *args;          /* E_CALL, in source order */
  int nargs;

  /* checker: */
  Type type;          /* every expression */
  Decl *decl;         /* E_NAME: the declaration it names (NULL for a
                         symbolic dim: then sym is set); E_CALL of a layer:
                         the layer */
  int sym;            /* E_NAME of a symbolic dim: its index, else -1 */
  bool is_const;      /* a compile-time integer (const names, int literals,
                         + - * / of those): value is in ival */
  int64_t ival;
  Builtin fn;         /* E_CALL of a function */
  Expr *operand[3];   /* E_CALL: the tensor operands in order, keyword
                         arguments removed (softmax: x; layernorm: x, w, b;
                         concat: a, b; attention: q, k, v; a layer call: its
                         inputs; an AdditiveAttention call without values:
                         query, keys, keys, noperands 3; LSTM: x, h0, c0,
                         GRU: x, h0, LSTMCell: x, h, c, GRUCell: x, h, with
                         noperands 1 for the zero state).  Not mask=, and
                         none for positional_encoding (its T and D are in
                         type) */
  int noperands;
  int axis;           /* softmax/sum/mean/max/concat: the axis, made
                         non-negative; -1 for sum/mean/max over every axis
                         (no axis=); concat's default is 0 (NumPy's) */
  double fval;        /* layernorm: eps; dropout: p; attention and a
                         MultiheadAttention call: the scale (scale=, or
                         1/sqrt(head dim) by default) */
  /* issue 3: */
  Expr *mask;         /* attention, MultiheadAttention call: the mask=
                         tensor (f32, broadcasts to [..., T, S]), or NULL;
                         [..., T, S] is the result's batch dims, then T, S:
                         for MultiheadAttention it has no heads dim (the
                         mask is the same for every head) */
  bool causal;        /* attention, MultiheadAttention call: mask=causal */
  bool causal_lr;     /* ... mask=causal_lower_right (causal too) */
  Expr *past_key, *past_value;  /* MultiheadAttention call: the cache form's
                         past_key=, past_value= ([..., P, d]), or NULL */
  Expr *pad_mask;     /* MultiheadAttention call: key_padding_mask=, [..., S],
                         nonzero hides a key */
  int64_t heads;      /* split_heads(x, H): H; merge_heads(x): the H it
                         merges (x's dim -3) */
  int64_t index;      /* E_INDEX: the index as written (may be negative);
                         for a fixed first dim it is checked in range; for
                         a symbolic one the generated code checks it;
                         E_RESULT: which result */
  /* issue 14: */
  Expr *callee_index; /* E_CALL `layers[i](...)`: the const index i */
  int group;          /* E_RESULT: how many names its `let` binds (with `_`) */
  bool checked;       /* E_CALL: checked already (shared by E_RESULTs) */
  int nresults;       /* E_CALL (checker): how many results it gives; 1
                         for every function and most layers */
  Type *rtypes;       /* E_CALL (checker): each result's type; rtypes[0] is
                         type */
  const char **rnames;/* E_CALL (checker): each result's name, for messages */
  Decl *callee;       /* E_CALL of an array element or an array instance
                         (checker): the instance called */
  BlockCall *bcall;   /* E_CALL of a block instance (checker): its body as
                         checked for this call */
  ArrayScan *scan;         /* E_CALL of a layer array as a whole (checker) */
  const char *inst_name; /* E_CALL of a block (checker): the instance's
                         path, for notes ("layers.1") */
};

/* A block called once: the block's declarations copied and checked for this
 * call's argument types.  Lowering binds inputs[i] to the call's operand i
 * and lowers decls in order; the results are outputs'. */
struct BlockCall {
  Decl *decls;        /* its lets and outputs, in source order (its consts,
                         params and layers are the instance's) */
  Decl **inputs, **outputs;
  Expr **args;        /* the argument bound to each input */
  int ninputs, noutputs;
};

/* A layer array called as a whole: the instances' calls in order, each the
 * next one's first argument (through an E_RESULT); results past the first
 * are stacked over the instances. */
struct ArrayScan {
  Expr **calls;
  int n;
};

/* ---- declarations ------------------------------------------------------ */
typedef enum DeclKind { D_CONST, D_INPUT, D_PARAM, D_LAYER, D_LET, D_OUTPUT } DeclKind;

/* A compile-time parameter of a block: `block B(D, heads, FF=2048)`. */
typedef struct BlockParam {
  const char *name;
  Loc loc;
  Expr *dflt;         /* NULL: required */
} BlockParam;

typedef struct TypeExpr {
  DType dtype;
  Loc loc;            /* of the dtype keyword */
  Expr **dims;        /* each a const expression or a lone symbolic name */
  int ndims;
} TypeExpr;

/* A parameter tensor of the model: a `param`, or one a layer owns
 * ("linear1.weight").  Its name is what a weights file must hold. */
typedef struct Param {
  const char *name;
  Type type;
  Loc loc;
} Param;

struct Decl {
  DeclKind kind;
  Loc loc;            /* the keyword */
  const char *name;
  Loc name_loc;
  Expr *value;        /* D_CONST, D_LET, D_OUTPUT; D_LAYER: the constructor call */
  TypeExpr *texpr;    /* D_INPUT, D_PARAM */
  Decl *next;

  /* checker: */
  Type type;          /* D_INPUT, D_PARAM, D_LET, D_OUTPUT */
  int64_t ival;       /* D_CONST */
  int index;          /* D_INPUT: input index; D_PARAM: param index;
                         D_OUTPUT: output index */
  LayerKind layer;    /* D_LAYER */
  int64_t largs[4];   /* D_LAYER: Linear(in, out); LayerNorm(d);
                         Embedding(n, d); LSTM/GRU(in, hidden, layers);
                         LSTMCell/GRUCell(in, hidden, 1);
                         MultiheadAttention(d, heads);
                         AdditiveAttention(qdim, kdim, hidden) */
  bool bias;          /* D_LAYER: bias= of Linear, LSTM, GRU, the cells,
                         MultiheadAttention */
  double eps;         /* D_LAYER: LayerNorm eps= */
  int param0;         /* D_LAYER: index of its first param in Model.params;
                         Linear: weight [out, in], then bias [out] if bias;
                         LayerNorm: weight [d], bias [d];
                         Embedding: weight [n, d];
                         LSTM (G = 4) / GRU (G = 3), per layer k = 0..L-1:
                           weight_ih_l{k} [G*H, in_k], weight_hh_l{k} [G*H, H],
                           then if bias: bias_ih_l{k} [G*H], bias_hh_l{k} [G*H]
                           (in_0 = in, in_k = H), i.e. 2 or 4 params a layer;
                         LSTMCell / GRUCell: as one layer of LSTM / GRU,
                           named weight_ih, weight_hh, bias_ih, bias_hh;
                         MultiheadAttention: in_proj_weight [3d, d],
                           in_proj_bias [3d] (if bias), out_proj.weight [d, d],
                           out_proj.bias [d] (if bias);
                         AdditiveAttention: wq [hidden, qdim],
                           wk [hidden, kdim], v [hidden] */
  int nparams;
  /* issue 14: */
  Expr *count;        /* D_LAYER `layer NAME[count] = ...`: an array */
  const char *local;  /* a declaration copied from a block: its name in the
                         block (name is then the path: `layers.1.norm1`) */
  Block *block;       /* D_LAYER (checker): the block it is an instance of */
  Decl *inst_decls;   /* D_LAYER of a block (checker): the instance's
                         consts, params and layers, checked once */
  Decl **inst_args;   /* D_LAYER of a block (checker): its parameters'
                         values, as consts (block->nparams of them) */
  Decl **elems;       /* D_LAYER array (checker): its instances, named
                         NAME.0 ... */
  int nelems;
};

/* `block NAME(params) { decls }`: a user-defined layer.  Its inputs are the
 * call's arguments, its outputs the call's results; it is checked for each
 * call (its copies live in BlockCall). */
struct Block {
  const char *name;
  Loc loc, name_loc;
  BlockParam *params;
  int nparams;
  Decl *decls;
  int order;          /* position among the file's models and blocks */
  Block *next;
};

/* A symbolic dim that is a sum (design.md 5.3, 5.7): k + sum of coef[i] *
 * (base dim sym[i]), over base dims only (a sum's value never comes from
 * another sum), terms in order of the dims' first appearance, no zero
 * coefficient, and never a lone base dim (that is the dim itself).  Its
 * name is its printed form ("T+1", "4*T", "P+T-1"). */
#define MAX_SUM_TERMS 8
#define MAX_SYMS 16        /* symbolic dims of a model, sums included */
typedef struct SymSum {
  int n;
  int sym[MAX_SUM_TERMS];
  int64_t coef[MAX_SUM_TERMS];
  int64_t k;
} SymSum;

/* Is symbolic dim i of m a sum (not given by the caller)? */
#define is_sum_dim(m, i) ((m)->sums && (m)->sums[i])

typedef struct Model {
  const char *name;
  Loc loc;            /* the `model` keyword */
  Loc name_loc;
  Decl *decls;        /* in source order */
  struct Model *next;
  int order;          /* position among the file's models and blocks */

  /* checker: */
  const char **syms;  /* symbolic dim names, in order of first appearance
                         in input and param types: the entry point takes
                         them in this order */
  int nsyms;
  SymSum **sums;      /* per symbolic dim: NULL for a base dim (the caller
                         gives it), else the sum it is (computed at the call) */
  Param *params;      /* `param`s and layer params, in declaration order */
  int nparams;
  Decl **inputs, **outputs;
  int ninputs, noutputs;
} Model;

typedef struct Program {
  const Source *src;
  Model *models;      /* in source order */
  Block *blocks;      /* in source order */
  int nitems;
} Program;

/* ---- builders (called from the grammar's actions) ---------------------- */
Expr *ast_num(Loc loc, const char *text, int len);
Expr *ast_name(Loc loc, const char *text, int len);
Expr *ast_binary(Loc op_loc, int op, Expr *lhs, Expr *rhs);
Expr *ast_neg(Loc op_loc, Expr *operand);
Expr *ast_call(Expr *callee_name, Arg *args, int nargs);
Expr *ast_index(Loc bracket_loc, Expr *base, Expr *index);
Expr *ast_slice(Loc bracket_loc, Expr *base, Expr *lo, Expr *hi);
/* Lists built left to right by the grammar (Vec of pointers). */
Vec *ast_list_new(void);
Vec *ast_list_add(Vec *list, void *item);     /* list NULL: a new list */
/* A call argument; name NULL for a positional one. */
Arg *ast_arg(Loc name_loc, const char *name, int len, Expr *value);
/* Appends to a list of Arg*; a positional argument after a keyword one is
 * a user_error. */
Vec *ast_args_add(Vec *list, Arg *arg);
Expr *ast_call_args(Loc name_loc, const char *name, int len, Vec *args);
/* callee(args): callee a name, or an element of a layer array
 * (`layers[1](x)`); anything else is a user_error. */
Expr *ast_call_on(Expr *callee, Vec *args);
TypeExpr *ast_type(DType dtype, Loc loc, Vec *dims);
/* value for D_CONST/D_LAYER/D_LET/D_OUTPUT, texpr for D_INPUT/D_PARAM */
Decl *ast_decl(DeclKind kind, Loc kw_loc, Loc name_loc, const char *name, int len,
               Expr *value, TypeExpr *texpr);
/* `let a, b = e` / `output a, b = e`: names is a list of E_NAME (`_` for a
 * discarded result); a list of one Decl per bound name. */
Vec *ast_decls(DeclKind kind, Loc kw_loc, Vec *names, Expr *value);
Vec *ast_decl1(Decl *d);                      /* a list of one */
/* `layer NAME[count] = value` */
Decl *ast_layer_array(Loc kw_loc, Loc name_loc, const char *name, int len, Expr *count, Expr *value);
BlockParam *ast_block_param(Loc loc, const char *name, int len, Expr *dflt);
Block *ast_block(Loc kw_loc, Loc name_loc, const char *name, int len, Vec *params, Vec *decls);
Model *ast_model(Loc kw_loc, Loc name_loc, const char *name, int len, Vec *decls);
/* Appends a model or a block (the other NULL); p NULL: a new program. */
Program *ast_program_add(Program *p, Model *m, Block *b);
Program *ast_program(const Source *src, Program *p);
/* A deep copy of a block's declarations for one instance or call:
 * expressions, types and argument lists are new, names and locations
 * shared; an E_RESULT group keeps sharing its call. */
Decl *ast_copy_decls(const Decl *decls);

/* ---- the front end's entry points -------------------------------------- */
/* Lex and parse; stops at the first syntax error (user_error). */
Program *parse_program(const Source *src);
/* Resolve names, fold consts, give types and check shapes; user_error on
 * the first problem. */
void check_program(Program *prog);

/* "f32[T, 64]" with the model's symbol names; arena-allocated. */
const char *type_str(const Model *m, Type t);
const char *dim_str(const Model *m, Dim d);
bool dim_eq(Dim a, Dim b);
bool type_eq(Type a, Type b);
int64_t type_numel_known(Type t);     /* product of known sizes; symbolic dims count as 1 */

#endif
