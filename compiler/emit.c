/* emit.c: the target machine, the optimization pipeline, and the three
 * ways out of the compiler: files (object, assembly, LLVM IR) and the JIT. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <llvm-c/Core.h>
#include <llvm-c/ErrorHandling.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>

#include "codegen.h"
#include "outfile.h"

/* Everything LLVM allocated for this process is disposed at exit, also
 * when a diagnostic ends the run early, so that LeakSanitizer stays
 * quiet and a leak of our own stands out. */
static LLVMTargetMachineRef owned_tms[8 + 2 * 16];   /* a --cpu list's too (cpus.h) */
static int n_owned_tms;
static LLVMContextRef owned_ctx;
static LLVMModuleRef owned_mod;
static Jit *owned_jit;
static LLVMOrcThreadSafeContextRef jit_tsc;   /* the context JIT modules are made in */

static void llvm_cleanup(void) {
  if (owned_jit) jit_dispose(owned_jit);
  if (owned_mod) LLVMDisposeModule(owned_mod);
  if (owned_ctx && jit_tsc && owned_ctx == LLVMOrcThreadSafeContextGetContext(jit_tsc)) {
    LLVMOrcDisposeThreadSafeContext(jit_tsc);
    jit_tsc = NULL;
  } else if (owned_ctx) {
    LLVMContextDispose(owned_ctx);
  }
  for (int i = 0; i < n_owned_tms; i++) LLVMDisposeTargetMachine(owned_tms[i]);
  n_owned_tms = 0;
  owned_mod = NULL;
  owned_ctx = NULL;
}

/* LLVM's own fatal errors (a compiler bug) end the process like
 * internal_error, without exit(): exit would run llvm_cleanup while
 * another thread still compiles a part of the module (split.c). */
static void llvm_fatal(const char *reason) {
  fprintf(stderr, "attnc: internal error in LLVM: %s\n", reason);
  abort();
}

/* LLVM is C++: when it cannot allocate, operator new throws std::bad_alloc,
 * which no C caller can catch, and the process would abort.  A new-handler
 * runs instead of the throw; it reports the condition as an error of the
 * input's size and ends the process without exit() (another thread may be
 * compiling, as above).  No output is open while LLVM runs: outputs are
 * written after compilation (write_outputs).  std::set_new_handler is
 * declared here by its mangled name, the only way to reach it from C. */
void (*_ZSt15set_new_handlerPFvvE(void (*handler)(void)))(void);

static void llvm_out_of_memory(void) {
  static const char msg[] = "attnc: error: out of memory in LLVM: the program is too large to compile "
                            "within this process's memory limit\n";
  ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
  (void)w;
  _exit(1);
}

void emit_own(LLVMContextRef C, LLVMModuleRef m) {
  owned_ctx = C;
  owned_mod = m;
}

static int probe_f32_lanes(const Target *t);
static bool probe_bf16_dot(const Target *t);

static LLVMCodeGenOptLevel codegen_level(int opt_level) {
  return opt_level == 0 ? LLVMCodeGenLevelNone
       : opt_level == 1 ? LLVMCodeGenLevelLess
       : opt_level == 2 ? LLVMCodeGenLevelDefault : LLVMCodeGenLevelAggressive;
}

LLVMTargetMachineRef target_machine(const Target *t) {
  LLVMTargetRef target;
  char *err = NULL;
  if (LLVMGetTargetFromTriple(t->triple_s, &target, &err)) {
    LLVMDisposeMessage(err);
    return NULL;
  }
  return LLVMCreateTargetMachine(target, t->triple_s, t->cpu_s, t->features_s, codegen_level(t->opt_level),
                                 LLVMRelocPIC, LLVMCodeModelDefault);
}

void target_init(Target *t) {
  static bool registered;
  if (!registered) {
    atexit(llvm_cleanup);
    LLVMInstallFatalErrorHandler(llvm_fatal);
    _ZSt15set_new_handlerPFvvE(llvm_out_of_memory);
    registered = true;
  }
  LLVMInitializeAllTargetInfos();
  LLVMInitializeAllTargets();
  LLVMInitializeAllTargetMCs();
  LLVMInitializeAllAsmPrinters();
  LLVMInitializeAllAsmParsers();
  char *host = LLVMGetDefaultTargetTriple();
  bool is_host = !t->triple || strcmp(t->triple, host) == 0;
  t->triple_s = t->triple ? arena_strdup(t->triple) : arena_strdup(host);
  LLVMDisposeMessage(host);
  if (t->cpu && strcmp(t->cpu, "native") != 0) {
    /* A named CPU brings its own features. */
    t->cpu_s = arena_strdup(t->cpu);
    t->features_s = arena_strdup("");
  } else if (is_host) {
    char *cpu = LLVMGetHostCPUName(), *feat = LLVMGetHostCPUFeatures();
    t->cpu_s = arena_strdup(cpu);
    t->features_s = arena_strdup(feat);
    LLVMDisposeMessage(cpu);
    LLVMDisposeMessage(feat);
  } else {
    t->cpu_s = arena_strdup("generic");
    t->features_s = arena_strdup("");
  }
  LLVMTargetRef target;
  char *err = NULL;
  if (LLVMGetTargetFromTriple(t->triple_s, &target, &err)) {
    char *msg = arena_printf("unknown target '%s': %s", t->triple_s, err);
    LLVMDisposeMessage(err);
    usage_error("%s", msg);
  }
  LLVMCodeGenOptLevel lvl = codegen_level(t->opt_level);
  /* LLVM only warns about an unknown CPU on stderr and then ignores it;
   * catch that warning so that a typo in --cpu is an error. */
  fflush(stderr);
  FILE *cap = tmpfile();
  int saved = dup(2);
  if (cap && saved >= 0) dup2(fileno(cap), 2);
  t->tm = LLVMCreateTargetMachine(target, t->triple_s, t->cpu_s, t->features_s, lvl, LLVMRelocPIC, LLVMCodeModelDefault);
  char warn[512] = "";
  if (cap && saved >= 0) {
    fflush(stderr);
    dup2(saved, 2);
    rewind(cap);
    size_t n = fread(warn, 1, sizeof warn - 1, cap);
    warn[n] = 0;
  }
  if (saved >= 0) close(saved);
  if (cap) fclose(cap);
  if (strstr(warn, "is not a recognized processor")) {
    bool arm = !strncmp(t->triple_s, "aarch64", 7) || !strncmp(t->triple_s, "arm64", 5);
    usage_error("unknown CPU '%s' for target '%s' (try %s)", t->cpu_s, t->triple_s,
                arm ? "generic, cortex-a72, neoverse-n1, neoverse-v1 or apple-m1"
                    : "x86-64, x86-64-v3, haswell, skylake-avx512, znver4 or native");
  }
  if (warn[0]) fputs(warn, stderr);
  if (!t->tm) fatal("cannot make a target machine for `%s` (cpu `%s`)", t->triple_s, t->cpu_s);
  if (n_owned_tms < (int)(sizeof owned_tms / sizeof owned_tms[0])) owned_tms[n_owned_tms++] = t->tm;
  t->f32_lanes = probe_f32_lanes(t);
  t->bf16_dot = t->f32_lanes == 16 && probe_bf16_dot(t);
}

/* The assembly LLVM makes for the target machine of one small function
 * of a <16 x float> (fadd, or with to_bf16 an fptrunc to <16 x bfloat>),
 * in the arena, or "" if it cannot.  Reading it answers questions about
 * the CPU: a CPU-name table would go stale, LLVM knows every CPU. */
static const char *probe_asm(const Target *t, bool to_bf16) {
  LLVMContextRef C = LLVMContextCreate();
  LLVMModuleRef m = LLVMModuleCreateWithNameInContext("attnc.probe", C);
  LLVMSetTarget(m, t->triple_s);
  LLVMTypeRef v16 = LLVMVectorType(LLVMFloatTypeInContext(C), 16);
  LLVMTypeRef ret = to_bf16 ? LLVMVectorType(LLVMBFloatTypeInContext(C), 16) : v16;
  LLVMTypeRef params[2] = {v16, v16};
  LLVMValueRef fn = LLVMAddFunction(m, "probe", LLVMFunctionType(ret, params, 2, 0));
  const char *attrs[][2] = {{"target-cpu", t->cpu_s}, {"target-features", t->features_s}, {"prefer-vector-width", "512"}};
  for (int i = 0; i < 3; i++)
    if (attrs[i][1][0])
      LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                              LLVMCreateStringAttribute(C, attrs[i][0], (unsigned)strlen(attrs[i][0]), attrs[i][1],
                                                        (unsigned)strlen(attrs[i][1])));
  LLVMBuilderRef b = LLVMCreateBuilderInContext(C);
  LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(C, fn, "entry"));
  LLVMValueRef x = LLVMBuildFAdd(b, LLVMGetParam(fn, 0), LLVMGetParam(fn, 1), "");
  LLVMBuildRet(b, to_bf16 ? LLVMBuildFPTrunc(b, x, ret, "") : x);
  LLVMDisposeBuilder(b);
  LLVMMemoryBufferRef buf = NULL;
  char *err = NULL;
  char *text = "";
  if (!LLVMTargetMachineEmitToMemoryBuffer(t->tm, m, LLVMAssemblyFile, &err, &buf)) {
    size_t n = LLVMGetBufferSize(buf);
    text = arena_alloc(n + 1);
    memcpy(text, LLVMGetBufferStart(buf), n);
    text[n] = 0;
    LLVMDisposeMemoryBuffer(buf);
  }
  LLVMDisposeMessage(err);
  LLVMDisposeModule(m);
  LLVMContextDispose(C);
  return text;
}

/* The f32 lanes of the widest vector the target machine computes in one
 * register: those of the registers a 16-lane add compiles to. */
static int probe_f32_lanes(const Target *t) {
  const char *text = probe_asm(t, false);
  return strstr(text, "zmm") ? 16 : strstr(text, "ymm") ? 8 : 4;
}

/* AVX-512 BF16 (vdpbf16ps, for gemm.c's bf16 GEMV): LLVM rounds f32 to
 * bf16 with its vcvtneps2bf16, else with integer code or libcalls. */
static bool probe_bf16_dot(const Target *t) { return strstr(probe_asm(t, true), "vcvtneps2bf16") != NULL; }

void optimize_module(LLVMModuleRef m, const Target *t) {
  LLVMSetTarget(m, t->triple_s);
  LLVMTargetDataRef dl = LLVMCreateTargetDataLayout(t->tm);
  LLVMSetModuleDataLayout(m, dl);
  LLVMDisposeTargetData(dl);
  LLVMPassBuilderOptionsRef o = LLVMCreatePassBuilderOptions();
  LLVMPassBuilderOptionsSetLoopVectorization(o, t->opt_level >= 2);
  LLVMPassBuilderOptionsSetSLPVectorization(o, t->opt_level >= 2);
  /* The loops that carry the work are register-blocked by hand (and
   * marked not to unroll); LLVM's unroller on the rest cost 15% of
   * compile time (examples/encoder.attn) for at most 2% of run time in
   * bench/, so it runs at -O3 only. */
  LLVMPassBuilderOptionsSetLoopUnrolling(o, t->opt_level >= 3);
  char passes[32];
  snprintf(passes, sizeof passes, "default<O%d>", t->opt_level);
  LLVMErrorRef e = LLVMRunPasses(m, passes, t->tm, o);
  LLVMDisposePassBuilderOptions(o);
  if (e) {
    char *msg = LLVMGetErrorMessage(e);
    internal_error("LLVM pass pipeline failed: %s", msg);
  }
}

bool write_file_atomic(const char *path, const char *data, size_t len) {
  if (strcmp(path, "-") == 0) {
    return fwrite(data, 1, len, stdout) == len && fflush(stdout) == 0;
  }
  write_outputs(1, &path, &data, &len);
  return true;
}

void write_outputs(int n, const char *const *paths, const char *const *data, const size_t *lens) {
  attnrt_outfile *f = NEW_ARRAY(attnrt_outfile, n);
  char err[1024];
  for (int i = 0; i < n; i++) {
    if (attnrt_out_open(&f[i], paths[i], err, sizeof err) != ATTNRT_OK ||
        attnrt_out_write(&f[i], data[i], lens[i], err, sizeof err) != ATTNRT_OK) {
      for (int k = 0; k < i; k++) attnrt_out_abort(&f[k]);
      fatal("%s", err);
    }
  }
  for (int i = 0; i < n; i++)
    if (attnrt_out_commit(&f[i], err, sizeof err) != ATTNRT_OK) {
      for (int k = i + 1; k < n; k++) attnrt_out_abort(&f[k]);
      fatal("%s", err);
    }
}

void write_module(LLVMModuleRef m, const Target *t, OutKind kind, const char *path) {
  if (kind == OUT_LLVM) {
    char *s = LLVMPrintModuleToString(m);
    bool ok = write_file_atomic(path, s, strlen(s));
    LLVMDisposeMessage(s);
    if (!ok) fatal("cannot write %s: %s", path, strerror(errno));
    return;
  }
  LLVMMemoryBufferRef buf;
  char *err = NULL;
  if (LLVMTargetMachineEmitToMemoryBuffer(t->tm, m, LLVMAssemblyFile, &err, &buf)) {
    char *msg = arena_printf("%s", err);
    LLVMDisposeMessage(err);
    fatal("code generation failed: %s", msg);
  }
  bool ok = write_file_atomic(path, LLVMGetBufferStart(buf), LLVMGetBufferSize(buf));
  LLVMDisposeMemoryBuffer(buf);
  if (!ok) fatal("cannot write %s: %s", path, strerror(errno));
}

/* ---- JIT ----------------------------------------------------------------- */
struct Jit { LLVMOrcLLJITRef jit; LLVMOrcThreadSafeContextRef tsc; };

static _Noreturn void jit_fail(LLVMErrorRef e, const char *what) {
  char *msg = LLVMGetErrorMessage(e);
  char *copy = arena_strdup(msg);
  LLVMDisposeErrorMessage(msg);
  fatal("JIT: %s: %s", what, copy);
}

LLVMContextRef jit_context(void) {
  if (!jit_tsc) jit_tsc = LLVMOrcCreateNewThreadSafeContext();
  return LLVMOrcThreadSafeContextGetContext(jit_tsc);
}

Jit *jit_create(LLVMModuleRef m, LLVMContextRef C, const Target *t) {
  if (!jit_tsc || C != LLVMOrcThreadSafeContextGetContext(jit_tsc))
    internal_error("JIT modules must be made in jit_context()");
  Jit *j = NEW(Jit);
  j->tsc = jit_tsc;
  /* The JIT gets its own target machine, made like the one for files, so
   * --cpu and -O mean the same for both. */
  Target jt = *t;
  target_init(&jt);
  LLVMOrcLLJITBuilderRef b = LLVMOrcCreateLLJITBuilder();
  LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(b, LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(jt.tm));
  if (n_owned_tms > 0 && owned_tms[n_owned_tms - 1] == jt.tm) n_owned_tms--;
  LLVMErrorRef e = LLVMOrcCreateLLJIT(&j->jit, b);
  if (e) jit_fail(e, "cannot create the JIT");
  /* The generated code calls the runtime, which is linked into attnc. */
  LLVMOrcDefinitionGeneratorRef gen;
  e = LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(&gen, LLVMOrcLLJITGetGlobalPrefix(j->jit), NULL, NULL);
  if (e) jit_fail(e, "cannot search this process for the runtime");
  LLVMOrcJITDylibAddGenerator(LLVMOrcLLJITGetMainJITDylib(j->jit), gen);
  LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(m, j->tsc);
  if (owned_mod == m) owned_mod = NULL;
  if (owned_ctx == C) owned_ctx = NULL;  /* the thread-safe context owns it */
  owned_jit = j;
  e = LLVMOrcLLJITAddLLVMIRModule(j->jit, LLVMOrcLLJITGetMainJITDylib(j->jit), tsm);
  if (e) jit_fail(e, "cannot add the module");
  return j;
}

void *jit_lookup(Jit *j, const char *symbol) {
  LLVMOrcExecutorAddress addr = 0;
  LLVMErrorRef e = LLVMOrcLLJITLookup(j->jit, &addr, symbol);
  if (e) jit_fail(e, arena_printf("cannot find `%s`", symbol));
  return (void *)(uintptr_t)addr;
}

void jit_dispose(Jit *j) {
  if (!j) return;
  if (owned_jit == j) owned_jit = NULL;
  LLVMErrorRef e = LLVMOrcDisposeLLJIT(j->jit);
  if (e) LLVMConsumeError(e);
  LLVMOrcDisposeThreadSafeContext(j->tsc);
  jit_tsc = NULL;
}
