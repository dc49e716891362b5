/* cg.h: what the files of the LLVM code generator (compiler/codegen/)
 * share: the state of the module being built, and the functions that one
 * file defines and another uses, grouped by the file that defines them.
 * Not a pass: these files together are one phase, whose interface is
 * codegen() (codegen.h).
 *
 *   builder.c      LLVM builder helpers: constants, fast-math float ops,
 *                  intrinsics, attributes, new functions, loops, explicit
 *                  vectors, dims
 *   math.c         exp, log, tanh, GELU, sincos as generated code
 *   elementwise.c  elementwise kernels and a matmul's fused epilogue
 *   reduce.c       softmax, sum / mean / max, LayerNorm
 *   data.c         gather, concat, swap_heads, posenc
 *   gemm.c         matmul (packed GEMM and plain), pack, transpose
 *   recurrent.c    LSTM and GRU, and their final state (last_step)
 *   attention.c    fused attention, plain and fast
 *   module.c       codegen(): kernels of a graph, scratch plan, body,
 *                  descriptor, entry points
 *
 * The files use each other's functions without a cycle:
 *   builder.c <- math.c <- the kernel files <- module.c
 * (each may use any file to its left); the kernel families use none of
 * each other's functions but for gemm.c, which calls elementwise.c's
 * emit_epilogue for the elementwise ops fused after a matmul. */
#ifndef ATTNC_CG_H
#define ATTNC_CG_H

#include <llvm-c/Core.h>

#include "ir.h"

typedef struct CG {
  LLVMContextRef C;
  LLVMModuleRef M;
  LLVMBuilderRef B;
  LLVMTypeRef f32, i32, i64, i8, i1, ptr, voidt;
  const char *cpu, *features;
  int threads;                /* the descriptor's default_threads */
  const char *prefix;         /* --prefix: prepended to NAME, NAME_model, NAME_scratch_size */
  int vl;                     /* f32 lanes of explicit vector code (4, 8, 16) */
  LLVMTypeRef vf;             /* <vl x float> */
  bool dpbf16;                /* AVX-512 BF16: bf16 panels of B hold pairs of k rows,
                                 the GEMV uses vdpbf16ps (gemm.c) */
  const void **embedded;      /* this graph's param data to embed, or NULL */
  const Graph *g;
  /* the function being emitted */
  LLVMValueRef fn;
  LLVMBasicBlockRef entry;
  LLVMValueRef dimv[MAX_SYMS];
  LLVMFastMathFlags fmf;      /* put on the float ops built now */
  Vec kernel_sigs, kernel_fns;/* module.c: the model's kernel bodies by signature */
  bool append_tail;           /* module.c: the kernel being emitted is an append
                                 concat's tail only (data.c, emit_concat) */

  LLVMTypeRef mty, mity;      /* math.c: the float and int types of the function being built */
} CG;

/* builder.c: constants, float ops (with cg->fmf), intrinsics, attributes,
 * functions */
LLVMValueRef cg_f32(CG *cg, double v);
LLVMValueRef cg_i32(CG *cg, int64_t v);
LLVMValueRef i64c(CG *cg, int64_t v);
LLVMValueRef cg_fadd(CG *cg, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_fsub(CG *cg, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_fmul(CG *cg, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_fdiv(CG *cg, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef reduce_fmf(CG *cg);   /* reassociable float ops from now on */
LLVMValueRef cg_intrinsic(CG *cg, const char *name, LLVMValueRef *args, int nargs);
void add_attr(CG *cg, LLVMValueRef fn, int idx, const char *name);
void cg_set_fn_attrs(CG *cg, LLVMValueRef fn);
LLVMValueRef new_fn(CG *cg, const char *name, LLVMTypeRef ty, bool internal);
LLVMValueRef entry_alloca(CG *cg, LLVMTypeRef ty, const char *name);

/* builder.c: i64 index arithmetic (nsw), f32 elements of a buffer */
LLVMValueRef add64(CG *cg, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef mul64(CG *cg, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef div64(CG *cg, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef rem64(CG *cg, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef elem_ptr(CG *cg, LLVMValueRef base, LLVMValueRef idx);
LLVMValueRef load_f(CG *cg, LLVMValueRef base, LLVMValueRef idx);
LLVMValueRef mask_nonzero(CG *cg, LLVMValueRef m);   /* elementwise.c: an f32 or i32 mask element != 0 */
void store_f(CG *cg, LLVMValueRef v, LLVMValueRef base, LLVMValueRef idx);

/* builder.c: loops */
typedef struct Loop { LLVMValueRef iv; LLVMBasicBlockRef head, exit; } Loop;

/* A loop that carries values (vector accumulators) in phis: body code
 * reads c->v[i] and hands the next values to cloop_end; after the loop
 * c->v[i] hold the final values. */
enum { MAX_CARRIED = 40 };
typedef struct CLoop { Loop l; int n; LLVMValueRef v[MAX_CARRIED]; } CLoop;

LLVMValueRef loop_begin(CG *cg, Loop *l, LLVMValueRef start, LLVMValueRef end);
void loop_end(CG *cg, Loop *l);
void loop_end_nounroll(CG *cg, Loop *l);   /* back edge: llvm.loop.unroll.disable */
LLVMValueRef cloop_begin(CG *cg, CLoop *c, LLVMValueRef start, LLVMValueRef end, LLVMValueRef *init, int n);
void cloop_end(CG *cg, CLoop *c, LLVMValueRef *next);
void prefetch(CG *cg, LLVMValueRef p, int rw);

/* builder.c: explicit vectors (cg->vl lanes of f32) */
LLVMValueRef vload(CG *cg, LLVMValueRef base, LLVMValueRef idx);
void vstore(CG *cg, LLVMValueRef v, LLVMValueRef base, LLVMValueRef idx);
LLVMValueRef vsplat(CG *cg, LLVMValueRef x);
LLVMValueRef vfc(CG *cg, double x);
LLVMValueRef vfma(CG *cg, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c);

/* builder.c: elements of a weight buffer that holds f32, or bf16 when bf
 * (pass_weights_bf16): loaded widened to f32, stored narrowed (exact for
 * values that came from bf16) */
LLVMValueRef welem_ptr(CG *cg, bool bf, LLVMValueRef base, LLVMValueRef idx);
LLVMValueRef load_w(CG *cg, bool bf, LLVMValueRef base, LLVMValueRef idx);
void store_w(CG *cg, bool bf, LLVMValueRef v, LLVMValueRef base, LLVMValueRef idx);
LLVMValueRef vload_w(CG *cg, bool bf, LLVMValueRef base, LLVMValueRef idx);
void vstore_w(CG *cg, bool bf, LLVMValueRef v, LLVMValueRef base, LLVMValueRef idx);

/* builder.c: dims of the function being built (cg->dimv) */
LLVMValueRef dim(CG *cg, Dim d);
LLVMValueRef dims_prod(CG *cg, const Type *t, int from, int to);
bool is_one(Dim d);
LLVMValueRef batch_offset(CG *cg, const Type *res, int nb, LLVMValueRef *idx,
                          const Type *op, int op_nb, LLVMValueRef matrix_size);

/* math.c: vectorizable f32 approximations, as always-inline functions
 * of the module (see docs/architecture.md for the error bounds). */
LLVMValueRef math_exp(CG *cg, LLVMValueRef x);
LLVMValueRef math_exp_nonpos(CG *cg, LLVMValueRef x);   /* x <= 8 only */
LLVMValueRef math_log(CG *cg, LLVMValueRef x);
LLVMValueRef math_tanh(CG *cg, LLVMValueRef x);
LLVMValueRef math_gelu(CG *cg, LLVMValueRef x);   /* x/2 (1 + erf(x/sqrt 2)) */
void math_sincos_f64(CG *cg, LLVMValueRef x, LLVMValueRef *sin_out, LLVMValueRef *cos_out);

/* ---- kernels ----------------------------------------------------------- */
/* module.c's emit_kernel: the kernel being emitted, for the emit_*
 * functions of the kernel files */
typedef struct Kernel {
  CG *cg;
  const Node *n;
  LLVMValueRef out;                 /* result buffer */
  LLVMValueRef in[MAX_OPERANDS];    /* operand buffers (NULL for constants) */
  LLVMValueRef begin, end;
} Kernel;

/* elementwise.c: a flat elementwise kernel's row is EW_CHUNK elements */
enum { EW_CHUNK = 1024 };
bool ew_is_flat(const Graph *g, const Node *n);
void emit_ew(Kernel *k);
void emit_epilogue(Kernel *k, LLVMValueRef row, LLVMValueRef c_off, LLVMValueRef N);

/* reduce.c */
void emit_softmax(Kernel *k);
void emit_reduce(Kernel *k);
void emit_layernorm(Kernel *k);

/* data.c */
void emit_gather(Kernel *k);
void emit_concat(Kernel *k);
void emit_swap_heads(Kernel *k);
void emit_posenc(Kernel *k);

/* gemm.c: a task of the packed GEMM is GEMM_TASK_TILES row tiles of
 * gemm_mr rows; gemm_fast: the matmul has a packed B and takes emit_gemm */
enum { GEMM_TASK_TILES = 4 };
int gemm_mr(CG *cg);
bool gemm_fast(CG *cg, const Node *n);
void emit_gemm(Kernel *k);
void emit_matmul(Kernel *k);
void emit_transpose(Kernel *k);
void emit_pack(Kernel *k);

/* recurrent.c */
void emit_recurrent(Kernel *k);
void emit_last_step(Kernel *k);

/* attention.c: a row of the plain kernel is ATT_QTILE_ROWS queries, of the
 * fast one (att_fast) att_qt */
enum { ATT_QTILE_ROWS = 4 };   /* query rows per tile of fused attention */
enum { ATT_SMALL_T = 8 };      /* fewer queries than this take the plain kernel (emit_attention_any) */
bool att_fast(CG *cg, const Node *n);
int att_qt(CG *cg);
void emit_attention(Kernel *k);
void emit_attention_fast(Kernel *k);
void emit_attention_any(Kernel *k);   /* few queries (below ATT_SMALL_T) take
                                         emit_attention_decode or emit_attention */
/* attention.c: what attention_decode.c shares with the other kernels */
typedef struct AttMask { LLVMValueRef mb, mrow, mcol; } AttMask;
Type att_type(CG *cg, const Node *n, int k);
LLVMValueRef att_rows(CG *cg, const Node *n, int k, const Type *t, int nb, LLVMValueRef *idx, LLVMValueRef *stride);
AttMask att_mask(CG *cg, const Type *t, const Type *tk, const Type *tm, int nb, LLVMValueRef *idx);
int att_add_mask(const Node *n);
int att_fill_mask(const Node *n);
LLVMValueRef tile_first_row(CG *cg, LLVMValueRef row, LLVMValueRef tiles, LLVMValueRef T);
LLVMValueRef vmax(CG *cg, LLVMValueRef a, LLVMValueRef b);

/* attention_decode.c: a few queries over many keys, keys in vector lanes;
 * a row is a tile of ATT_QTILE_ROWS queries of att_decode_heads heads */
bool att_decode_ok(CG *cg, const Node *n);
int att_decode_heads(CG *cg, const Node *n);
void emit_attention_decode(Kernel *k);

#endif
