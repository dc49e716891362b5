/* cg.h: state shared by the LLVM code generator's files (codegen.c,
 * mathfn.c).  Not a pass: these files together are one phase. */
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
  int vl;                     /* f32 lanes of explicit vector code (4, 8, 16) */
  LLVMTypeRef vf;             /* <vl x float> */
  const void **embedded;      /* this graph's param data to embed, or NULL */
  const Graph *g;
  /* the function being emitted */
  LLVMValueRef fn;
  LLVMBasicBlockRef entry;
  LLVMValueRef dimv[MAX_SYMS];
  LLVMFastMathFlags fmf;      /* put on the float ops built now */
  
  LLVMTypeRef mty, mity;      /* mathfn.c: the float and int types of the function being built */
} CG;

/* codegen.c helpers used by mathfn.c */
LLVMValueRef cg_f32(CG *cg, double v);
LLVMValueRef cg_i32(CG *cg, int64_t v);
LLVMValueRef cg_fadd(CG *cg, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_fsub(CG *cg, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_fmul(CG *cg, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_fdiv(CG *cg, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_intrinsic(CG *cg, const char *name, LLVMValueRef *args, int nargs);
void cg_set_fn_attrs(CG *cg, LLVMValueRef fn);

/* mathfn.c: vectorizable f32 approximations, as always-inline functions
 * of the module (see docs/architecture.md for the error bounds). */
LLVMValueRef math_exp(CG *cg, LLVMValueRef x);
LLVMValueRef math_exp_nonpos(CG *cg, LLVMValueRef x);   /* x <= 8 only */
LLVMValueRef math_log(CG *cg, LLVMValueRef x);
LLVMValueRef math_tanh(CG *cg, LLVMValueRef x);
LLVMValueRef math_gelu(CG *cg, LLVMValueRef x);   /* x/2 (1 + erf(x/sqrt 2)) */
void math_sincos_f64(CG *cg, LLVMValueRef x, LLVMValueRef *sin_out, LLVMValueRef *cos_out);

#endif
