/* split.c: a module's object code, optimized and compiled in parts on
 * threads, then joined into one object (elfmerge.c).  LLVM spends nearly
 * all of attnc's time in a module's functions one at a time, so parts of
 * the module compile side by side as LTO partitions do.
 *
 * Needs: a verified module from codegen, not yet optimized, whose
 * functions and global variables all have names; a Target from
 * target_init.
 * Guarantees: the object defines and exports the symbols the whole
 * module's object would; each function goes through the same pipeline as
 * in one part, on its part's copy of the module (which may list uses in
 * another order, and knows only its own callers of a big callee, below);
 * the object depends on `jobs` and on the module, not on the machine or
 * the threads' timing.
 *
 * Units of work: a function, with the small or always-inline functions
 * it calls directly (so that they are inlined as before) and the global
 * variables it uses, all transitively.  Two exceptions keep units small:
 * - a callee of BIG_CALLEE instructions or more is a unit of its own: the
 *   GEMM and pack helpers that every matmul kernel calls would otherwise
 *   make one unit of half the module (examples/encoder.attn);
 * - an internal always-inline helper with more than one caller (exp,
 *   tanh, GELU of codegen/math.c) is copied into every part that uses it, and
 *   its instructions count for each caller: otherwise every kernel that
 *   calls exp is one unit (bench/models/attention.attn: 0.25 s in 2 parts
 *   of 2031 and 144 instructions; 0.09 s once copied).
 * Parts are filled by weight (the units' instruction counts), heaviest
 * unit first into the lightest part.  A function reached from another
 * part (a kernel whose address the model's body passes to the thread
 * pool, a big callee) is made hidden and global for the parts' objects,
 * and local again in the joined one. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <llvm-c/Analysis.h>
#include <llvm-c/BitReader.h>
#include <llvm-c/BitWriter.h>
#include <llvm-c/Core.h>

#include "split.h"

enum { BIG_CALLEE = 256 };

typedef struct Plan {
  int nfuncs, nglobals, nparts;
  const char **fname, **gname;   /* to check that a part's copy lists them alike */
  int *fpart, *gpart;            /* -1: a declaration (or a copied helper) */
  long *finstr;                  /* a function's instructions (BIG_CALLEE, -v) */
  const char **localize;
  int nlocalize;
} Plan;

/* ---- the plan ------------------------------------------------------------ */

typedef struct Scan {
  LLVMValueRef *vals;   /* node -> value: functions, then globals */
  int n;
  int *parent;          /* union-find over the nodes */
  int *weight;          /* a function's instruction count */
  LLVMValueRef *hkeys;  /* value -> node, open addressing */
  int *hvals, hcap;
  int *ref_from, *ref_to, nrefs, refcap;   /* address-taken references and big calls */
} Scan;

static unsigned hash_ptr(const void *p, int cap) {
  uintptr_t x = (uintptr_t)p;
  x ^= x >> 17;
  x *= 0x9E3779B97F4A7C15ull;
  return (unsigned)(x >> 32) & (unsigned)(cap - 1);
}

static void node_add(Scan *s, LLVMValueRef v, int node) {
  unsigned h = hash_ptr(v, s->hcap);
  while (s->hkeys[h]) h = (h + 1) & (unsigned)(s->hcap - 1);
  s->hkeys[h] = v;
  s->hvals[h] = node;
}

static int node_of(const Scan *s, LLVMValueRef v) {
  unsigned h = hash_ptr(v, s->hcap);
  while (s->hkeys[h]) {
    if (s->hkeys[h] == v) return s->hvals[h];
    h = (h + 1) & (unsigned)(s->hcap - 1);
  }
  return -1;
}

static int find(Scan *s, int x) {
  while (s->parent[x] != x) x = s->parent[x] = s->parent[s->parent[x]];
  return x;
}

static void unite(Scan *s, int a, int b) {
  a = find(s, a), b = find(s, b);
  if (a != b) s->parent[a > b ? a : b] = a < b ? a : b;
}

static void add_ref(Scan *s, int from, int to) {
  if (s->nrefs == s->refcap) {
    s->refcap = s->refcap ? 2 * s->refcap : 64;
    int *f = NEW_ARRAY(int, s->refcap), *t = NEW_ARRAY(int, s->refcap);
    if (s->nrefs) {
      memcpy(f, s->ref_from, sizeof *f * (size_t)s->nrefs);
      memcpy(t, s->ref_to, sizeof *t * (size_t)s->nrefs);
    }
    s->ref_from = f, s->ref_to = t;
  }
  s->ref_from[s->nrefs] = from;
  s->ref_to[s->nrefs++] = to;
}

/* What value v, used by node `from`, ties it to: a global variable joins
 * its unit; a function (not called, or called but big) is a reference
 * across units; constants are searched for either. */
static void scan_use(Scan *s, int from, LLVMValueRef v, int depth) {
  if (LLVMIsAFunction(v)) {
    int to = node_of(s, v);
    if (to >= 0) add_ref(s, from, to);
  } else if (LLVMIsAGlobalVariable(v)) {
    int to = node_of(s, v);
    if (to >= 0) unite(s, from, to);
  } else if (LLVMIsAConstant(v) && depth < 64) {
    int n = LLVMGetNumOperands(v);
    for (int k = 0; k < n; k++) scan_use(s, from, LLVMGetOperand(v, (unsigned)k), depth + 1);
  }
}

static bool always_inline(LLVMValueRef f) {
  static unsigned kind;
  if (!kind) kind = LLVMGetEnumAttributeKindForName("alwaysinline", 12);
  return LLVMGetEnumAttributeAtIndex(f, LLVMAttributeFunctionIndex, kind) != NULL;
}

static bool local_linkage(LLVMValueRef v) {
  LLVMLinkage l = LLVMGetLinkage(v);
  return l == LLVMInternalLinkage || l == LLVMPrivateLinkage;
}

/* Whether f uses no global variable and calls or names no defined
 * function but copied ones (constants are searched too). */
static bool refs_ok(const Scan *s, const bool *copied, LLVMValueRef v, int depth) {
  if (LLVMIsAFunction(v)) {
    int to = node_of(s, v);
    return to < 0 || LLVMIsDeclaration(v) || copied[to];
  }
  if (LLVMIsAGlobalVariable(v)) return false;
  if (LLVMIsAConstant(v)) {
    if (depth >= 64) return false;
    int n = LLVMGetNumOperands(v);
    for (int k = 0; k < n; k++)
      if (!refs_ok(s, copied, LLVMGetOperand(v, (unsigned)k), depth + 1)) return false;
  }
  return true;
}

static bool only_copied_refs(const Scan *s, const bool *copied, LLVMValueRef f) {
  for (LLVMBasicBlockRef b = LLVMGetFirstBasicBlock(f); b; b = LLVMGetNextBasicBlock(b))
    for (LLVMValueRef i = LLVMGetFirstInstruction(b); i; i = LLVMGetNextInstruction(i)) {
      int nops = LLVMGetNumOperands(i);
      for (int o = 0; o < nops; o++)
        if (!refs_ok(s, copied, LLVMGetOperand(i, (unsigned)o), 0)) return false;
    }
  return true;
}

static Plan *make_plan(LLVMModuleRef m, int jobs) {
  if (LLVMGetFirstGlobalAlias(m) || LLVMGetFirstGlobalIFunc(m)) return NULL;
  Plan *p = NEW(Plan);
  for (LLVMValueRef f = LLVMGetFirstFunction(m); f; f = LLVMGetNextFunction(f)) p->nfuncs++;
  for (LLVMValueRef g = LLVMGetFirstGlobal(m); g; g = LLVMGetNextGlobal(g)) {
    if (LLVMGetLinkage(g) == LLVMAppendingLinkage) return NULL;   /* llvm.used and the like */
    p->nglobals++;
  }
  int n = p->nfuncs + p->nglobals;
  Scan s = {.n = n, .vals = NEW_ARRAY(LLVMValueRef, n + 1), .parent = NEW_ARRAY(int, n + 1),
            .weight = NEW_ARRAY(int, n + 1)};
  for (s.hcap = 16; s.hcap < 2 * n; s.hcap *= 2) {}
  s.hkeys = NEW_ARRAY(LLVMValueRef, s.hcap);
  s.hvals = NEW_ARRAY(int, s.hcap);
  p->fname = NEW_ARRAY(const char *, p->nfuncs + 1);
  p->gname = NEW_ARRAY(const char *, p->nglobals + 1);
  p->fpart = NEW_ARRAY(int, p->nfuncs + 1);
  p->finstr = NEW_ARRAY(long, p->nfuncs + 1);
  p->gpart = NEW_ARRAY(int, p->nglobals + 1);
  int k = 0;
  for (LLVMValueRef f = LLVMGetFirstFunction(m); f; f = LLVMGetNextFunction(f), k++) {
    size_t len;
    /* Copies: part 0's optimizer frees the names of what it deletes while
     * the other parts' threads still read these. */
    p->fname[k] = arena_strdup(LLVMGetValueName2(f, &len));
    if (!len) return NULL;
    s.vals[k] = f;
    node_add(&s, f, k);
    /* LLVM's time for a function: about 0.07 ms per instruction and 12
     * instructions' worth per basic block (a fit over 190 units of 10
     * models, compiled one per part: mean error 22%, against 31% for
     * instructions alone). */
    for (LLVMBasicBlockRef b = LLVMGetFirstBasicBlock(f); b; b = LLVMGetNextBasicBlock(b)) {
      s.weight[k] += 12;
      for (LLVMValueRef i = LLVMGetFirstInstruction(b); i; i = LLVMGetNextInstruction(i)) s.weight[k]++, p->finstr[k]++;
    }
  }
  for (LLVMValueRef g = LLVMGetFirstGlobal(m); g; g = LLVMGetNextGlobal(g), k++) {
    size_t len;
    p->gname[k - p->nfuncs] = arena_strdup(LLVMGetValueName2(g, &len));
    if (!len) return NULL;
    s.vals[k] = g;
    node_add(&s, g, k);
  }
  for (int x = 0; x < n; x++) s.parent[x] = x;

  /* Copied helpers: internal always-inline functions (attnc.exp*, the
   * math of codegen/math.c) that use no global variable and call only copied
   * helpers.  Every part keeps its own copy, inlined where it is used, so
   * that two kernels calling exp do not become one unit (the two
   * attention models of bench/models/attention.attn, the four recurrent
   * ones of rnn.attn). */
  bool *copied = NEW_ARRAY(bool, p->nfuncs + 1);
  int *ncallers = NEW_ARRAY(int, p->nfuncs + 1), *last_caller = NEW_ARRAY(int, p->nfuncs + 1);
  for (int x = 0; x < p->nfuncs; x++) last_caller[x] = -1;
  for (int x = 0; x < p->nfuncs; x++)
    for (LLVMBasicBlockRef b = LLVMGetFirstBasicBlock(s.vals[x]); b; b = LLVMGetNextBasicBlock(b))
      for (LLVMValueRef i = LLVMGetFirstInstruction(b); i; i = LLVMGetNextInstruction(i)) {
        LLVMValueRef callee = LLVMIsACallInst(i) ? LLVMGetCalledValue(i) : NULL;
        int to = callee && LLVMIsAFunction(callee) ? node_of(&s, callee) : -1;
        if (to >= 0 && last_caller[to] != x) ncallers[to]++, last_caller[to] = x;
      }
  /* (one caller: the kernel of an always-inline body, which stays with it) */
  for (int x = 0; x < p->nfuncs; x++)
    copied[x] = !LLVMIsDeclaration(s.vals[x]) && local_linkage(s.vals[x]) && always_inline(s.vals[x]) &&
                ncallers[x] > 1;
  for (bool changed = true; changed;) {
    changed = false;
    for (int x = 0; x < p->nfuncs; x++)
      if (copied[x] && !only_copied_refs(&s, copied, s.vals[x])) copied[x] = false, changed = true;
  }

  for (int x = 0; x < n; x++) {
    LLVMValueRef v = s.vals[x];
    if (x >= p->nfuncs) {
      LLVMValueRef init = LLVMGetInitializer(v);
      if (init) scan_use(&s, x, init, 0);
      continue;
    }
    for (LLVMBasicBlockRef b = LLVMGetFirstBasicBlock(v); b; b = LLVMGetNextBasicBlock(b))
      for (LLVMValueRef i = LLVMGetFirstInstruction(b); i; i = LLVMGetNextInstruction(i)) {
        int nops = LLVMGetNumOperands(i);
        LLVMValueRef callee = LLVMIsACallInst(i) ? LLVMGetCalledValue(i) : NULL;
        int to = callee && LLVMIsAFunction(callee) ? node_of(&s, callee) : -1;
        if (to >= 0 && copied[to])
          s.weight[x] += s.weight[to];   /* inlined here: its work is the caller's */
        else if (to >= 0 && !LLVMIsDeclaration(callee) && (p->finstr[to] < BIG_CALLEE || always_inline(callee)))
          unite(&s, x, to);
        else if (to >= 0) add_ref(&s, x, to);
        for (int o = 0; o < nops; o++) {
          LLVMValueRef op = LLVMGetOperand(i, (unsigned)o);
          if (op != callee) scan_use(&s, x, op, 0);
        }
      }
  }

  /* Units by weight, heaviest first (ties: the first in the module), each
   * into the lightest part so far. */
  int *unit_w = NEW_ARRAY(int, n + 1), *order = NEW_ARRAY(int, n + 1), nunits = 0, nheavy = 0;
  for (int x = 0; x < n; x++) unit_w[find(&s, x)] += x < p->nfuncs && copied[x] ? 0 : s.weight[x];
  for (int x = 0; x < n; x++)
    if (find(&s, x) == x) {
      order[nunits++] = x;
      nheavy += unit_w[x] > 0;
    }
  /* (2 or 3 parts per thread, taken as threads come free, timed no
   * better on examples/encoder.attn, sentiment.attn, bench's rnn.attn) */
  p->nparts = jobs < nheavy ? jobs : nheavy;
  if (p->nparts > 64) p->nparts = 64;
  if (p->nparts < 2) return NULL;
  for (int a = 1; a < nunits; a++)
    for (int b = a; b > 0 && unit_w[order[b]] > unit_w[order[b - 1]]; b--) {
      int t = order[b];
      order[b] = order[b - 1], order[b - 1] = t;
    }
  int *part_of_unit = NEW_ARRAY(int, n + 1);
  long *load = arena_alloc(sizeof(long) * (size_t)p->nparts);
  for (int u = 0; u < nunits; u++) {
    int best = 0;
    for (int q = 1; q < p->nparts; q++)
      if (load[q] < load[best]) best = q;
    part_of_unit[order[u]] = best;
    load[best] += unit_w[order[u]];
  }
  for (int x = 0; x < n; x++) {
    int q = part_of_unit[find(&s, x)];
    if (x < p->nfuncs) p->fpart[x] = LLVMIsDeclaration(s.vals[x]) || copied[x] ? -1 : q;
    else p->gpart[x - p->nfuncs] = LLVMIsDeclaration(s.vals[x]) ? -1 : q;
  }

  /* What crosses parts is reached through a symbol of the object. */
  p->localize = NEW_ARRAY(const char *, p->nfuncs + 1);
  for (int r = 0; r < s.nrefs; r++) {
    int from = s.ref_from[r], to = s.ref_to[r];
    LLVMValueRef f = s.vals[to];
    if (LLVMIsDeclaration(f) || copied[to] || part_of_unit[find(&s, from)] == part_of_unit[find(&s, to)] ||
        !local_linkage(f))
      continue;
    LLVMSetLinkage(f, LLVMExternalLinkage);
    LLVMSetVisibility(f, LLVMHiddenVisibility);
    p->localize[p->nlocalize++] = p->fname[to];
  }
  return p;
}

/* ---- one part -------------------------------------------------------------- */

/* Leaves in m the bodies and initializers of part q only, and the copied
 * helpers that they use.  What another part defines becomes a
 * declaration if this part refers to it, and goes if not; nothing of it
 * is emitted.  (A global variable of another part keeps a zero
 * initializer and available_externally linkage if a constant LLVM keeps
 * for itself still names it: LLVM then drops it unemitted.) */
static void keep_part(LLVMModuleRef m, const Plan *p, int q) {
  int nf = 0, ng = 0;
  LLVMValueRef *fs = malloc(sizeof *fs * (size_t)(p->nfuncs + 1));
  LLVMValueRef *gs = malloc(sizeof *gs * (size_t)(p->nglobals + 1));
  if (!fs || !gs) internal_error("out of memory");
  for (LLVMValueRef f = LLVMGetFirstFunction(m); f; f = LLVMGetNextFunction(f)) {
    size_t len;
    if (nf >= p->nfuncs || strcmp(LLVMGetValueName2(f, &len), p->fname[nf]) != 0)
      internal_error("part %d lists functions differently", q);
    fs[nf++] = f;
  }
  for (LLVMValueRef g = LLVMGetFirstGlobal(m); g; g = LLVMGetNextGlobal(g)) {
    size_t len;
    if (ng >= p->nglobals || strcmp(LLVMGetValueName2(g, &len), p->gname[ng]) != 0)
      internal_error("part %d lists globals differently", q);
    gs[ng++] = g;
  }
  if (nf != p->nfuncs || ng != p->nglobals) internal_error("part %d lists the module differently", q);
  for (int k = 0; k < nf; k++) {
    LLVMValueRef f = fs[k];
    if (p->fpart[k] < 0 || p->fpart[k] == q) continue;
    /* Values first, so that no instruction is in use when it goes;
     * blocks last, when no branch names them. */
    for (LLVMBasicBlockRef b = LLVMGetFirstBasicBlock(f); b; b = LLVMGetNextBasicBlock(b))
      for (LLVMValueRef i = LLVMGetFirstInstruction(b); i; i = LLVMGetNextInstruction(i))
        if (LLVMGetTypeKind(LLVMTypeOf(i)) != LLVMVoidTypeKind) LLVMReplaceAllUsesWith(i, LLVMGetPoison(LLVMTypeOf(i)));
    for (LLVMBasicBlockRef b = LLVMGetFirstBasicBlock(f); b; b = LLVMGetNextBasicBlock(b))
      while (LLVMGetFirstInstruction(b)) LLVMInstructionEraseFromParent(LLVMGetFirstInstruction(b));
    while (LLVMGetFirstBasicBlock(f)) LLVMDeleteBasicBlock(LLVMGetFirstBasicBlock(f));
    LLVMSetLinkage(f, LLVMExternalLinkage);
  }
  for (int k = 0; k < ng; k++)
    if (p->gpart[k] >= 0 && p->gpart[k] != q) LLVMSetInitializer(gs[k], LLVMConstNull(LLVMGlobalGetValueType(gs[k])));
  for (int k = 0; k < ng; k++) {
    if (p->gpart[k] < 0 || p->gpart[k] == q) continue;
    if (!LLVMGetFirstUse(gs[k])) LLVMDeleteGlobal(gs[k]);
    else LLVMSetLinkage(gs[k], LLVMAvailableExternallyLinkage);
  }
  /* Declarations of other parts' functions and copied helpers that
   * nothing here uses (a helper may use another: until none goes). */
  for (bool changed = true; changed;) {
    changed = false;
    for (int k = 0; k < nf; k++) {
      LLVMValueRef f = fs[k];
      if (!f) continue;
      bool other = p->fpart[k] >= 0 && p->fpart[k] != q;
      bool helper = p->fpart[k] < 0 && !LLVMIsDeclaration(f) && local_linkage(f);
      if (!(other || helper) || LLVMGetFirstUse(f)) continue;
      LLVMDeleteFunction(f);
      fs[k] = NULL;
      changed = true;
    }
  }
  free(fs);
  free(gs);
  char *err = NULL;
  if (LLVMVerifyModule(m, LLVMReturnStatusAction, &err)) {
    fprintf(stderr, "%s\n", err);
    internal_error("part %d of the module does not verify", q);
  }
  LLVMDisposeMessage(err);
}

typedef struct Job {
  const Plan *plan;
  const Target *t;
  int part;
  LLVMMemoryBufferRef bitcode;   /* the whole module, for parts other than 0 */
  LLVMModuleRef m;               /* part 0: the module itself */
  LLVMMemoryBufferRef obj;
  double seconds;
  char err[512];
} Job;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void *compile_part(void *arg) {
  Job *j = arg;
  double t0 = now();
  LLVMContextRef C = NULL;
  LLVMModuleRef m = j->m;
  if (!m) {
    C = LLVMContextCreate();
    LLVMMemoryBufferRef view = LLVMCreateMemoryBufferWithMemoryRange(
        LLVMGetBufferStart(j->bitcode), LLVMGetBufferSize(j->bitcode), "attnc.part", 0);
    bool bad = LLVMParseBitcodeInContext2(C, view, &m);
    LLVMDisposeMemoryBuffer(view);
    if (bad) {
      snprintf(j->err, sizeof j->err, "cannot read back the module's bitcode");
      LLVMContextDispose(C);
      return NULL;
    }
  }
  keep_part(m, j->plan, j->part);
  Target t = *j->t;
  t.tm = C ? target_machine(j->t) : j->t->tm;
  if (!t.tm) {
    snprintf(j->err, sizeof j->err, "cannot make a target machine for `%s`", t.triple_s);
  } else {
    optimize_module(m, &t);
    char *msg = NULL;
    if (LLVMTargetMachineEmitToMemoryBuffer(t.tm, m, LLVMObjectFile, &msg, &j->obj)) {
      snprintf(j->err, sizeof j->err, "code generation failed: %s", msg);
      j->obj = NULL;
    }
    LLVMDisposeMessage(msg);
  }
  if (C) {
    if (t.tm) LLVMDisposeTargetMachine(t.tm);
    LLVMDisposeModule(m);
    LLVMContextDispose(C);
  }
  j->seconds = now() - t0;
  return NULL;
}

typedef struct Queue { Job *jobs; int n, next; } Queue;

static void *worker(void *arg) {
  Queue *qu = arg;
  for (int q; (q = __atomic_fetch_add(&qu->next, 1, __ATOMIC_RELAXED)) < qu->n;) compile_part(&qu->jobs[q]);
  return NULL;
}

/* ELF64 with RELA relocations, which elfmerge.c joins: x86-64 and AArch64
 * (little-endian) Linux and bare-metal triples. */
static bool joinable_target(const char *triple) {
  bool arch = !strncmp(triple, "x86_64-", 7) || !strncmp(triple, "aarch64-", 8);
  return arch && !strstr(triple, "darwin") && !strstr(triple, "macos") && !strstr(triple, "ios") &&
         !strstr(triple, "windows") && !strstr(triple, "win32") && !strstr(triple, "mingw") &&
         !strstr(triple, "cygwin") && !strstr(triple, "uefi");
}

static char *object_bytes(LLVMMemoryBufferRef buf, size_t *len) {
  *len = LLVMGetBufferSize(buf);
  char *out = arena_alloc(*len + 1);
  memcpy(out, LLVMGetBufferStart(buf), *len);
  LLVMDisposeMemoryBuffer(buf);
  return out;
}

int split_check(LLVMModuleRef m, int jobs) {
  Plan *p = make_plan(m, jobs);
  if (!p) return 1;
  int *defined = NEW_ARRAY(int, p->nfuncs + 1);
  for (int q = 0; q < p->nparts; q++) {
    LLVMModuleRef part = LLVMCloneModule(m);
    keep_part(part, p, q);
    int k = 0;
    for (LLVMValueRef f = LLVMGetFirstFunction(part); f; f = LLVMGetNextFunction(f)) {
      size_t len;
      const char *name = LLVMGetValueName2(f, &len);
      while (k < p->nfuncs && strcmp(p->fname[k], name) != 0) k++;   /* keep_part deletes, never reorders */
      if (k == p->nfuncs) internal_error("part %d has a function the module lacks: %s", q, name);
      if (!LLVMIsDeclaration(f) && p->fpart[k] >= 0) defined[k]++;
    }
    LLVMDisposeModule(part);
  }
  for (int k = 0; k < p->nfuncs; k++)
    if (p->fpart[k] >= 0 && defined[k] != 1) internal_error("%s is defined in %d parts", p->fname[k], defined[k]);
  return p->nparts;
}

char *compile_object(LLVMModuleRef m, const Target *t, int jobs, size_t *len, SplitStats *stats) {
  Plan *p = jobs > 1 && LLVMIsMultithreaded() && joinable_target(t->triple_s) ? make_plan(m, jobs) : NULL;
  if (!p) {
    double t0 = now();
    if (stats) {
      *stats = (SplitStats){.nparts = 1};
      for (LLVMValueRef f = LLVMGetFirstFunction(m); f; f = LLVMGetNextFunction(f)) {
        stats->funcs[0] += !LLVMIsDeclaration(f);
        for (LLVMBasicBlockRef b = LLVMGetFirstBasicBlock(f); b; b = LLVMGetNextBasicBlock(b))
          for (LLVMValueRef i = LLVMGetFirstInstruction(b); i; i = LLVMGetNextInstruction(i)) stats->instrs[0]++;
      }
    }
    optimize_module(m, t);
    LLVMMemoryBufferRef buf;
    char *msg = NULL;
    if (LLVMTargetMachineEmitToMemoryBuffer(t->tm, m, LLVMObjectFile, &msg, &buf)) {
      char *copy = arena_strdup(msg);
      LLVMDisposeMessage(msg);
      fatal("code generation failed: %s", copy);
    }
    if (stats) stats->seconds[0] = now() - t0;
    return object_bytes(buf, len);
  }
  LLVMSetTarget(m, t->triple_s);
  LLVMMemoryBufferRef bitcode = LLVMWriteBitcodeToMemoryBuffer(m);
  Job *jobv = NEW_ARRAY(Job, p->nparts);
  for (int q = 0; q < p->nparts; q++)
    jobv[q] = (Job){.plan = p, .t = t, .part = q, .bitcode = bitcode, .m = q == 0 ? m : NULL};
  /* The threads (this one too) take the parts in order as they come
   * free; which thread compiles a part does not change its object. */
  Queue qu = {.jobs = jobv, .n = p->nparts};
  int nthreads = jobs < p->nparts ? jobs : p->nparts;
  pthread_t *tid = NEW_ARRAY(pthread_t, nthreads);
  bool *started = NEW_ARRAY(bool, nthreads);
  for (int w = 1; w < nthreads; w++) started[w] = pthread_create(&tid[w], NULL, worker, &qu) == 0;
  worker(&qu);
  for (int w = 1; w < nthreads; w++)
    if (started[w]) pthread_join(tid[w], NULL);
  LLVMDisposeMemoryBuffer(bitcode);
  ObjPart *parts = NEW_ARRAY(ObjPart, p->nparts);
  for (int q = 0; q < p->nparts; q++) {
    if (!jobv[q].obj) fatal("%s", jobv[q].err);
    parts[q].data = object_bytes(jobv[q].obj, &parts[q].len);
  }
  if (stats) {
    *stats = (SplitStats){.nparts = p->nparts};
    for (int q = 0; q < p->nparts; q++) stats->seconds[q] = jobv[q].seconds;
    for (int k = 0; k < p->nfuncs; k++)
      if (p->fpart[k] >= 0) stats->funcs[p->fpart[k]]++, stats->instrs[p->fpart[k]] += p->finstr[k];
  }
  char *out, err[512];
  if (!elf_merge(parts, p->nparts, p->localize, p->nlocalize, &out, len, err, sizeof err))
    internal_error("%s", err);
  return out;
}
