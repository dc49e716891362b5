/* cpus.h: one object for several CPUs (--cpu A,B,...; cpus.c). */
#ifndef ATTNC_CPUS_H
#define ATTNC_CPUS_H

#include "split.h"

enum { MAX_CPUS = 16 };   /* CPUs in a --cpu list, the baseline included */

typedef struct CpuVariant {
  const char *name;       /* as given to --cpu ("host" and "native": the host's) */
  Target t;               /* from target_init: its target machine and f32 lanes */
  const char *features;   /* LLVM's x86 features its code may use, comma-separated */
  int nfeatures;
} CpuVariant;

/* Whether --cpu's value is a list (has a comma); its syntax (no empty or
 * repeated name, at most MAX_CPUS - 1 names) is checked here, with a usage
 * error. */
bool cpu_is_list(const char *arg);

/* The variants of the list for triple (NULL: the host), best first: wider
 * vectors first, then more features, then the order given; the baseline
 * x86-64 last, added if the list lacks it.  Usage errors: a target that is
 * not x86-64, an unknown CPU, one whose features attnc cannot tell or the
 * runtime cannot detect. */
int cpu_variants(const char *list, const char *triple, int opt_level, CpuVariant *out);

/* The object: each variant's code (codegen with base's options and
 * CodegenOptions.variant) compiled for its own target machine in up to
 * `jobs` parts, and the dispatch module (descriptors, entry points,
 * embedded weights) for the baseline, joined into one ELF object.  stats
 * (n + 1 entries, the dispatch module's last) may be NULL. */
char *compile_cpus(Graph **gs, int ng, const CodegenOptions *base, const CpuVariant *v, int n, int jobs,
                   size_t *len, SplitStats *stats);

#endif
