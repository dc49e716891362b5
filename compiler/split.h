/* split.h: compiling a module's object code in parts, one thread each
 * (split.c), and joining the parts' ELF objects into one (elfmerge.c). */
#ifndef ATTNC_SPLIT_H
#define ATTNC_SPLIT_H

#include "codegen.h"

/* Optimizes m and compiles it for t to one object in at most `jobs` parts
 * compiled on as many threads: the bytes (arena) and their count.  One
 * part (no threads) when jobs is 1, when the module has one unit of
 * work, or when the target's objects are not ELF64 with RELA relocations.
 * The object defines and exports the same symbols as the whole module's. */
typedef struct SplitStats {
  int nparts;
  int funcs[64];          /* per part: the functions it compiled */
  long instrs[64];        /* their LLVM instructions, before optimization */
  double seconds[64];     /* its thread's time to optimize and compile it */
} SplitStats;
char *compile_object(LLVMModuleRef m, const Target *t, int jobs, size_t *len, SplitStats *stats);

/* For the fuzzer (fuzz/fuzz_pipeline.c): splits m as compile_object
 * would for `jobs` and checks every part (a copy of m) without compiling
 * it: each part verifies, and each function is defined in exactly one.
 * Returns the number of parts; internal_error on a broken invariant.
 * Changes m's linkage as compile_object does. */
int split_check(LLVMModuleRef m, int jobs);

typedef struct ObjPart { const char *data; size_t len; } ObjPart;

/* Joins n relocatable ELF64 objects into one (*out in the arena); the
 * global symbols named in localize[0..nlocalize) become local.  False and
 * a message in err when an object is not of the kind elfmerge.c handles. */
bool elf_merge(const ObjPart *parts, int n, const char *const *localize, int nlocalize, char **out, size_t *outlen,
               char *err, size_t errlen);

#endif
