/* cpus.c: one object for several CPUs (--cpu x86-64-v3,x86-64-v4).
 *
 * Each CPU of the list gets the whole of each model's code, generated for
 * its vector width and compiled by its own target machine exactly as a
 * single --cpu compiles it; only the body and scratch-size functions are
 * renamed (attnc.NAME.body.cpuK) so that the CPUs' code can live side by
 * side.  A small dispatch module, compiled for the baseline x86-64, holds
 * what the object exports (NAME_model, NAME, NAME_scratch_size) and the
 * embedded weights, once: its body asks the runtime on the first call
 * which CPU's code this machine runs (attnrt_cpu_pick: cpuid and XCR0
 * against each CPU's features) and calls it.  The objects are joined by
 * elfmerge.c, which makes the renamed functions local again.
 *
 * Needs: a triple of x86-64 (the runtime's check is cpuid); LLVM 19, whose
 * X86 target parser says which features a named CPU has.
 * Guarantees: the baseline x86-64 is always one of the CPUs, the last, and
 * runs whatever the machine lacks; every feature a CPU's code may use is
 * one the runtime can detect. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <attnrt.h>
#include <llvm-c/Core.h>

#include "cpus.h"

/* LLVM's C API cannot list a named CPU's features; its X86 target parser
 * (what clang's -march uses) can, and libLLVM exports it.  Reached by its
 * C++ names, as emit.c reaches std::set_new_handler: a StringRef is
 * {pointer, length}, passed by value; a SmallVectorImpl<StringRef> is
 * {begin, uint32 size, uint32 capacity} followed here by room for
 * MAX_FEATURES, so that it never grows. */
typedef struct StrRef { const char *p; size_t n; } StrRef;
enum { MAX_FEATURES = 256 };
typedef struct StrVec { StrRef *begin; uint32_t size, cap; StrRef inl[MAX_FEATURES]; } StrVec;
/* llvm::X86::parseArchX86(StringRef CPU, bool Only64Bit): 0 (CK_None) if unknown */
int _ZN4llvm3X8612parseArchX86ENS_9StringRefEb(StrRef cpu, bool only64);
/* llvm::X86::getFeaturesForCPU(StringRef CPU, SmallVectorImpl<StringRef> &, bool NeedPlus) */
void _ZN4llvm3X8617getFeaturesForCPUENS_9StringRefERNS_15SmallVectorImplIS1_EEb(StrRef cpu, StrVec *out, bool plus);

static bool is_host(const char *name) { return !strcmp(name, "host") || !strcmp(name, "native"); }

bool cpu_is_list(const char *arg) {
  if (!strchr(arg, ',')) return false;
  const char *names[MAX_CPUS];
  size_t lens[MAX_CPUS];
  int n = 0;
  for (const char *p = arg;;) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (!len) usage_error("--cpu '%s': a list of CPUs has an empty name", arg);
    for (int k = 0; k < n; k++)
      if ((lens[k] == len && !memcmp(names[k], p, len)) ||
          (is_host(arena_strndup(p, len)) && is_host(arena_strndup(names[k], lens[k]))))
        usage_error("--cpu '%s' names %.*s twice", arg, (int)len, p);
    if (n == MAX_CPUS - 1) usage_error("--cpu '%s': at most %d CPUs", arg, MAX_CPUS - 1);
    names[n] = p, lens[n++] = len;
    if (!e) break;
    p = e + 1;
  }
  return true;
}

/* The features v's code may use, for the runtime: a named CPU's from
 * LLVM's X86 target parser, the host's those LLVM detected (+f). */
static void variant_features(CpuVariant *v) {
  char *s = "";
  int n = 0;
  if (is_host(v->name)) {
    for (const char *p = v->t.features_s; *p;) {
      const char *e = strchr(p, ',');
      size_t len = e ? (size_t)(e - p) : strlen(p);
      if (*p == '+') s = arena_printf("%s%s%.*s", s, n++ ? "," : "", (int)len - 1, p + 1);
      p = e ? e + 1 : p + len;
    }
  } else {
    StrRef cpu = {v->name, strlen(v->name)};
    StrVec f = {.cap = MAX_FEATURES};
    f.begin = f.inl;
    _ZN4llvm3X8617getFeaturesForCPUENS_9StringRefERNS_15SmallVectorImplIS1_EEb(cpu, &f, false);
    if (f.begin != f.inl || f.size > MAX_FEATURES) internal_error("%s has more than %d features", v->name, MAX_FEATURES);
    for (uint32_t i = 0; i < f.size; i++) s = arena_printf("%s%s%.*s", s, n++ ? "," : "", (int)f.begin[i].n, f.begin[i].p);
  }
  char bad[256];
  if (attnrt_cpu_has(s, bad, sizeof bad) < 0)
    usage_error("--cpu %s: its feature '%s' is one the runtime cannot detect, so it cannot be in a list", v->name, bad);
  v->features = s;
  v->nfeatures = n;
}

int cpu_variants(const char *list, const char *triple, int opt_level, CpuVariant *out) {
  char *host = LLVMGetDefaultTargetTriple();
  const char *tr = arena_strdup(triple ? triple : host);
  bool on_host = !strcmp(tr, host);
  LLVMDisposeMessage(host);
  if (strncmp(tr, "x86_64", 6) != 0)
    usage_error("--cpu with a list of CPUs needs an x86-64 target ('%s' is not one): the choice at run time "
                "is made with cpuid", tr);
  int n = 0;
  for (const char *p = list;;) {
    const char *e = strchr(p, ',');
    CpuVariant *v = &out[n++];
    *v = (CpuVariant){.name = e ? arena_strndup(p, (size_t)(e - p)) : p};
    if (is_host(v->name) && !on_host)
      usage_error("--cpu %s in a list means this machine's CPU, which --target %s is not", v->name, tr);
    /* before LLVM makes a target machine, which aborts for a 32-bit CPU */
    StrRef cpu = {v->name, strlen(v->name)};
    if (!is_host(v->name) && !_ZN4llvm3X8612parseArchX86ENS_9StringRefEb(cpu, true)) {
      if (_ZN4llvm3X8612parseArchX86ENS_9StringRefEb(cpu, false))
        usage_error("--cpu %s is a 32-bit CPU; a list names 64-bit x86 CPUs", v->name);
      usage_error("--cpu %s: not a 64-bit x86 CPU that LLVM's target parser knows, so attnc cannot tell which "
                  "features its code may use; a list names CPUs as -march knows them (x86-64-v3, haswell, "
                  "skylake-avx512, znver4, ...)", v->name);
    }
    v->t = (Target){.triple = triple, .cpu = is_host(v->name) ? "native" : v->name, .opt_level = opt_level};
    target_init(&v->t);
    variant_features(v);
    if (!e) break;
    p = e + 1;
  }
  /* best first: wider vectors, then more features, then the order given */
  for (int a = 1; a < n; a++)
    for (int b = a; b > 0; b--) {
      CpuVariant *x = &out[b - 1], *y = &out[b];
      if (y->t.f32_lanes < x->t.f32_lanes || (y->t.f32_lanes == x->t.f32_lanes && y->nfeatures <= x->nfeatures))
        break;
      CpuVariant tmp = *x;
      *x = *y, *y = tmp;
    }
  int base = -1;
  for (int i = 0; i < n; i++)
    if (!strcmp(out[i].name, "x86-64")) base = i;
  if (base < 0) {
    out[n] = (CpuVariant){.name = "x86-64"};
    out[n].t = (Target){.triple = triple, .cpu = "x86-64", .opt_level = opt_level};
    target_init(&out[n].t);
    variant_features(&out[n]);
    n++;
  } else {
    CpuVariant b = out[base];
    memmove(&out[base], &out[base + 1], sizeof *out * (size_t)(n - 1 - base));
    out[n - 1] = b;
  }
  return n;
}

char *compile_cpus(Graph **gs, int ng, const CodegenOptions *base, const CpuVariant *v, int n, int jobs,
                   size_t *len, SplitStats *stats) {
  LLVMContextRef C = LLVMContextCreate();
  ObjPart *parts = NEW_ARRAY(ObjPart, n + 1);
  const char **tags = NEW_ARRAY(const char *, n), **names = NEW_ARRAY(const char *, n);
  const char **feats = NEW_ARRAY(const char *, n);
  const char **localize = NEW_ARRAY(const char *, 4 * ng * n + 1);
  int nlocal = 0;
  for (int i = 0; i <= n; i++) {
    bool dispatch = i == n;
    const CpuVariant *cv = &v[dispatch ? n - 1 : i];   /* the dispatch module: the baseline's */
    CodegenOptions o = *base;
    o.cpu = cv->t.cpu_s;
    o.features = cv->t.features_s;
    o.lanes = cv->t.f32_lanes;
    o.bf16_dot = cv->t.bf16_dot;
    CpuDispatch d = {.n = n, .tags = tags, .names = names, .features = feats};
    if (dispatch) {
      o.dispatch = &d;
    } else {
      tags[i] = arena_printf("cpu%d", i);
      names[i] = cv->name;
      feats[i] = cv->features;
      o.variant = tags[i];
      o.embedded = NULL;   /* the descriptor's, in the dispatch module */
      for (int g = 0; g < ng; g++) {
        localize[nlocal++] = arena_printf("attnc.%s.body.%s", gs[g]->model->name, tags[i]);
        localize[nlocal++] = arena_printf("attnc.%s.scratch_size.%s", gs[g]->model->name, tags[i]);
        localize[nlocal++] = arena_printf("attnc.%s.prepare.%s", gs[g]->model->name, tags[i]);
        localize[nlocal++] = arena_printf("attnc.%s.prepared_size.%s", gs[g]->model->name, tags[i]);
      }
    }
    LLVMModuleRef m = codegen(C, gs, ng, &o);
    emit_own(C, m);   /* disposed at exit if compiling fails */
    parts[i].data = compile_object(m, &cv->t, dispatch ? 1 : jobs, &parts[i].len, stats ? &stats[i] : NULL);
    LLVMDisposeModule(m);
    emit_own(C, NULL);
  }
  emit_own(NULL, NULL);
  LLVMContextDispose(C);
  char *out, err[512];
  if (!elf_merge(parts, n + 1, localize, nlocal, &out, len, err, sizeof err)) internal_error("%s", err);
  return out;
}
