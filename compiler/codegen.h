/* codegen.h: the back end's phases: LLVM IR generation (codegen/), the
 * target machine, optimization and output (emit.c), the C header
 * (header.c). */
#ifndef ATTNC_CODEGEN_H
#define ATTNC_CODEGEN_H

#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>

#include "ir.h"

#define ATTNRT_MAX_RANK_CG 4   /* attnrt.h's ATTNRT_MAX_RANK */
#define ATTNRT_ABI_VERSION_CG 3  /* attnrt.h's ATTNRT_ABI_VERSION: the descriptor layout */

/* A module that runs one of several CPUs' code of each model (--cpu A,B,...;
 * compiler/cpus.c): per variant, best first and the baseline last, the tag
 * of its symbols, its name as given to --cpu, and its LLVM features for
 * the runtime's attnrt_cpu_pick. */
typedef struct CpuDispatch {
  int n;
  const char *const *tags, *const *names, *const *features;
} CpuDispatch;

typedef struct CodegenOptions {
  const char *module_name;
  const char *cpu;          /* target-cpu attribute, "" for the target's default */
  const char *features;     /* target-features attribute */
  int threads;              /* default threads of a new context (0 = all CPUs) */
  int lanes;                /* Target.f32_lanes: the width of explicit vector code */
  bool bf16_dot;            /* Target.bf16_dot: bf16 GEMVs use vdpbf16ps (AVX-512 BF16) */
  const void ***embedded;   /* NULL, or per graph the data of each param to embed */
  const char *prefix;       /* --prefix P, or NULL: the global symbols are PNAME, PNAME_model,
                               PNAME_scratch_size (the descriptor's name stays NAME) */
  /* --cpu with a list of CPUs: one module per CPU and one that dispatches.
   * variant (a tag): this CPU's kernels, body and scratch-size function of
   * each model and nothing else, the last two as hidden globals
   * attnc.NAME.body.TAG and attnc.NAME.scratch_size.TAG.  dispatch: no
   * kernels; each model's descriptor and entry points as usual, whose body
   * and scratch-size function call those of the variant that
   * attnrt_cpu_pick chose on the object's first call. */
  const char *variant;
  const CpuDispatch *dispatch;
} CodegenOptions;

LLVMModuleRef codegen(LLVMContextRef C, Graph **graphs, int ngraphs, const CodegenOptions *opt);

/* emit.c */
typedef struct Target {
  const char *triple;       /* NULL: the host */
  const char *cpu;          /* NULL: the host's CPU (when the triple is the host's) */
  int opt_level;            /* 0..3 */
  /* filled by target_init: */
  char *triple_s, *cpu_s, *features_s;
  LLVMTargetMachineRef tm;
  int f32_lanes;            /* f32 lanes of the target's vector registers: 4, 8 or 16 */
  bool bf16_dot;            /* 16 lanes and AVX-512 BF16 (vcvtneps2bf16, vdpbf16ps) */
} Target;

void target_init(Target *t);
/* A new target machine like t->tm (the caller disposes it), for a thread
 * of its own: a target machine serves one thread at a time.  Needs
 * target_init(t) first. */
LLVMTargetMachineRef target_machine(const Target *t);
/* Hand C and m to emit.c, which disposes them at exit (or the JIT does). */
void emit_own(LLVMContextRef C, LLVMModuleRef m);
void optimize_module(LLVMModuleRef m, const Target *t);
typedef enum { OUT_ASM, OUT_LLVM } OutKind;   /* objects: compile_object (split.h) */
/* Writes through a temporary file and a rename: never a half-written file. */
void write_module(LLVMModuleRef m, const Target *t, OutKind kind, const char *path);
/* Write bytes whole or not at all ("-": stdout); a failure to write a
 * file ends attnc with a message (fatal).  False (and errno) only when
 * stdout fails. */
bool write_file_atomic(const char *path, const char *data, size_t len);
/* Write n files whole, both or neither: every file is created and written
 * before any is renamed into place (runtime/src/outfile.c); a failure ends
 * attnc with a message and leaves every destination as it was. */
void write_outputs(int n, const char *const *paths, const char *const *data, const size_t *lens);

/* JIT: compiles the module (which it takes over) and returns the address
 * of symbol, or fails with a message. */
typedef struct Jit Jit;
LLVMContextRef jit_context(void);  /* the context JIT modules are made in */
Jit *jit_create(LLVMModuleRef m, LLVMContextRef C, const Target *t);
void *jit_lookup(Jit *j, const char *symbol);
void jit_dispose(Jit *j);

/* header.c */
/* prefix: --prefix, or NULL (see CodegenOptions) */
char *header_text(Graph **graphs, int ngraphs, const char *source_path, const char *guard, bool embedded,
                  const char *prefix);

#endif
