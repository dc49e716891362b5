/* cpu.c: which of an object's CPU variants this machine runs (attnc --cpu
 * with a list of CPUs).
 *
 * An object compiled for several CPUs holds each model's code once per
 * CPU, and a table: per variant its name as given to --cpu and the LLVM
 * x86 feature names that its code may use, best variant first, the
 * baseline x86-64 last.  On its first call the object asks
 * attnrt_cpu_pick which one to run and keeps the answer.
 *
 * A feature counts as present when cpuid reports it and, for the ones
 * whose instructions use the AVX, AVX-512 or AMX register state, when the
 * OS saves that state (XCR0, read with xgetbv): a kernel without AVX
 * support in the OS faults on the first ymm instruction even on a CPU
 * that has AVX.  Each feature also needs the features its instructions
 * build on (avx512bw needs avx512f, avx2 needs avx, ...), so that a
 * hypervisor that hides a base feature hides what builds on it as well.
 * The tables hold every feature that LLVM 19 lists for a 64-bit x86 CPU
 * (attnc refuses a CPU with a feature not in them). */
#define _POSIX_C_SOURCE 200809L
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define ATTNRT_X86 1
#endif

enum { EAX, EBX, ECX, EDX };
/* XCR0 state components */
#define XS_AVX 0x6u         /* SSE and the upper halves of ymm */
#define XS_AVX512 0xE6u     /* and the opmask registers and zmm */
#define XS_AMX 0x60006u     /* and the tile config and tile data */
#define XS_APX 0x80006u     /* and the extended general registers */

typedef struct Feature {
  const char *name;         /* LLVM's */
  unsigned leaf, sub;       /* cpuid leaf and subleaf */
  int reg, bit;
  unsigned xstate;          /* XCR0 bits the OS must enable, 0 if none */
  const char *needs;        /* comma-separated features it builds on, or NULL */
} Feature;

static const Feature features[] = {
    {"x87", 1, 0, EDX, 0, 0, NULL},
    {"cx8", 1, 0, EDX, 8, 0, NULL},
    {"cmov", 1, 0, EDX, 15, 0, NULL},
    {"mmx", 1, 0, EDX, 23, 0, NULL},
    {"fxsr", 1, 0, EDX, 24, 0, NULL},
    {"sse", 1, 0, EDX, 25, 0, NULL},
    {"sse2", 1, 0, EDX, 26, 0, "sse"},
    {"64bit", 0x80000001, 0, EDX, 29, 0, NULL},
    {"sse3", 1, 0, ECX, 0, 0, "sse2"},
    {"pclmul", 1, 0, ECX, 1, 0, "sse2"},
    {"ssse3", 1, 0, ECX, 9, 0, "sse3"},
    {"fma", 1, 0, ECX, 12, XS_AVX, "avx"},
    {"cx16", 1, 0, ECX, 13, 0, NULL},
    {"sse4.1", 1, 0, ECX, 19, 0, "ssse3"},
    {"sse4.2", 1, 0, ECX, 20, 0, "sse4.1"},
    {"crc32", 1, 0, ECX, 20, 0, NULL},        /* the SSE4.2 bit */
    {"movbe", 1, 0, ECX, 22, 0, NULL},
    {"popcnt", 1, 0, ECX, 23, 0, NULL},
    {"aes", 1, 0, ECX, 25, 0, "sse2"},
    {"avx", 1, 0, ECX, 28, XS_AVX, "sse4.2"},
    {"f16c", 1, 0, ECX, 29, XS_AVX, "avx"},
    {"bmi", 7, 0, EBX, 3, 0, NULL},
    {"avx2", 7, 0, EBX, 5, XS_AVX, "avx"},
    {"bmi2", 7, 0, EBX, 8, 0, NULL},
    {"avx512f", 7, 0, EBX, 16, XS_AVX512, "avx2,fma,f16c"},
    {"evex512", 7, 0, EBX, 16, XS_AVX512, "avx512f"},   /* 512-bit EVEX: AVX-512 itself */
    {"avx512dq", 7, 0, EBX, 17, XS_AVX512, "avx512f"},
    {"adx", 7, 0, EBX, 19, 0, NULL},
    {"avx512ifma", 7, 0, EBX, 21, XS_AVX512, "avx512f"},
    {"avx512cd", 7, 0, EBX, 28, XS_AVX512, "avx512f"},
    {"sha", 7, 0, EBX, 29, 0, "sse2"},
    {"avx512bw", 7, 0, EBX, 30, XS_AVX512, "avx512f"},
    {"avx512vl", 7, 0, EBX, 31, XS_AVX512, "avx512f"},
    {"prefetchwt1", 7, 0, ECX, 0, 0, NULL},
    {"avx512vbmi", 7, 0, ECX, 1, XS_AVX512, "avx512bw"},
    {"avx512vbmi2", 7, 0, ECX, 6, XS_AVX512, "avx512bw"},
    {"gfni", 7, 0, ECX, 8, 0, "sse2"},
    {"vaes", 7, 0, ECX, 9, XS_AVX, "avx,aes"},
    {"vpclmulqdq", 7, 0, ECX, 10, XS_AVX, "avx,pclmul"},
    {"avx512vnni", 7, 0, ECX, 11, XS_AVX512, "avx512f"},
    {"avx512bitalg", 7, 0, ECX, 12, XS_AVX512, "avx512bw"},
    {"avx512vpopcntdq", 7, 0, ECX, 14, XS_AVX512, "avx512f"},
    {"avx512vp2intersect", 7, 0, EDX, 8, XS_AVX512, "avx512f"},
    {"amx-bf16", 7, 0, EDX, 22, XS_AMX, "amx-tile"},
    {"avx512fp16", 7, 0, EDX, 23, XS_AVX512, "avx512bw"},
    {"amx-tile", 7, 0, EDX, 24, XS_AMX, NULL},
    {"amx-int8", 7, 0, EDX, 25, XS_AMX, "amx-tile"},
    {"sha512", 7, 1, EAX, 0, XS_AVX, "avx2"},
    {"sm3", 7, 1, EAX, 1, XS_AVX, "avx"},
    {"sm4", 7, 1, EAX, 2, XS_AVX, "avx2"},
    {"raoint", 7, 1, EAX, 3, 0, NULL},
    {"avxvnni", 7, 1, EAX, 4, XS_AVX, "avx2"},
    {"avx512bf16", 7, 1, EAX, 5, XS_AVX512, "avx512bw"},
    {"cmpccxadd", 7, 1, EAX, 7, 0, NULL},
    {"amx-fp16", 7, 1, EAX, 21, XS_AMX, "amx-tile"},
    {"avxifma", 7, 1, EAX, 23, XS_AVX, "avx2"},
    {"avxvnniint8", 7, 1, EDX, 4, XS_AVX, "avx2"},
    {"avxneconvert", 7, 1, EDX, 5, XS_AVX, "avx2"},
    {"amx-complex", 7, 1, EDX, 8, XS_AMX, "amx-tile"},
    {"avxvnniint16", 7, 1, EDX, 10, XS_AVX, "avx2"},
    {"prefetchi", 7, 1, EDX, 14, 0, NULL},
    {"egpr", 7, 1, EDX, 21, XS_APX, NULL},    /* APX */
    {"push2pop2", 7, 1, EDX, 21, XS_APX, NULL},
    {"ppx", 7, 1, EDX, 21, XS_APX, NULL},
    {"ndd", 7, 1, EDX, 21, XS_APX, NULL},
    {"ccmp", 7, 1, EDX, 21, XS_APX, NULL},
    {"nf", 7, 1, EDX, 21, XS_APX, NULL},
    {"cf", 7, 1, EDX, 21, XS_APX, NULL},
    {"sahf", 0x80000001, 0, ECX, 0, 0, NULL},
    {"lzcnt", 0x80000001, 0, ECX, 5, 0, NULL},
    {"sse4a", 0x80000001, 0, ECX, 6, 0, "sse3"},
    {"prfchw", 0x80000001, 0, ECX, 8, 0, NULL},
    {"xop", 0x80000001, 0, ECX, 11, XS_AVX, "fma4"},
    {"fma4", 0x80000001, 0, ECX, 16, XS_AVX, "avx,sse4a"},
    {"tbm", 0x80000001, 0, ECX, 21, 0, NULL},
};
enum { NFEATURES = sizeof features / sizeof features[0] };

/* Features that LLVM's code generator emits only for their own intrinsics
 * (system and special-purpose instructions), which attnc's code never
 * calls: they count as present.  Hypervisors often hide some of them
 * (this one's CPU has Haswell's ISA but no invpcid). */
static const char *const unchecked[] = {
    "invpcid", "sgx", "pconfig", "ptwrite", "fsgsbase", "rdrnd", "rdseed", "rdpid", "rdpru",
    "xsave", "xsaveopt", "xsavec", "xsaves", "clflushopt", "clwb", "clzero", "wbnoinvd", "mwaitx",
    "waitpkg", "serialize", "tsxldtrk", "rtm", "shstk", "uintr", "hreset", "kl", "widekl", "enqcmd",
    "movdiri", "movdir64b", "cldemote", "lwp", "pku", "usermsr"};
enum { NUNCHECKED = sizeof unchecked / sizeof unchecked[0] };

/* The row of features[], NFEATURES + k for unchecked[k], -1 if neither */
static int feature_index(const char *name, size_t len) {
  for (int i = 0; i < NFEATURES + NUNCHECKED; i++) {
    const char *f = i < NFEATURES ? features[i].name : unchecked[i - NFEATURES];
    if (strlen(f) == len && memcmp(f, name, len) == 0) return i;
  }
  return -1;
}

/* What this machine has: cpuid's registers per (leaf, subleaf) asked for,
 * and XCR0. */
static bool cpuid_regs(unsigned leaf, unsigned sub, unsigned r[4]) {
#ifdef ATTNRT_X86
  unsigned max = __get_cpuid_max(leaf & 0x80000000u, NULL);
  if (max < leaf) return false;
  __cpuid_count(leaf, sub, r[EAX], r[EBX], r[ECX], r[EDX]);
  return true;
#else
  (void)leaf, (void)sub, (void)r;
  return false;
#endif
}

static unsigned long long xcr0(void) {
#ifdef ATTNRT_X86
  unsigned r[4];
  /* OSXSAVE: the OS enabled xgetbv and XCR0 */
  if (!cpuid_regs(1, 0, r) || !(r[ECX] >> 27 & 1)) return 0;
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (unsigned long long)hi << 32 | lo;
#else
  return 0;
#endif
}

/* Features hidden by ATTNRT_CPU_HIDE (testing: what this machine would
 * pick without them). */
static bool hidden(const char *name) {
  const char *h = getenv("ATTNRT_CPU_HIDE");
  size_t n = strlen(name);
  for (const char *p = h; p && *p;) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len == n && memcmp(p, name, n) == 0) return true;
    p = e ? e + 1 : NULL;
  }
  return false;
}

static bool has_feature(int i, int depth) {
  if (i >= NFEATURES) return true;
  const Feature *f = &features[i];
  unsigned r[4];
  if (depth > 16 || hidden(f->name) || !cpuid_regs(f->leaf, f->sub, r) || !(r[f->reg] >> f->bit & 1)) return false;
  if (f->xstate && (xcr0() & f->xstate) != f->xstate) return false;
  for (const char *p = f->needs; p && *p;) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    int k = feature_index(p, len);
    if (k < 0 || !has_feature(k, depth + 1)) return false;
    p = e ? e + 1 : NULL;
  }
  return true;
}

/* Appends name[0..n) to the comma-separated list in out. */
static void list_add(char *out, size_t len, size_t *o, const char *name, size_t n) {
  if (!out || !len || *o + n + 2 > len) return;
  if (*o) out[(*o)++] = ',';
  memcpy(out + *o, name, n);
  *o += n;
  out[*o] = '\0';
}

int attnrt_cpu_has(const char *list, char *missing, size_t len) {
  size_t o = 0;
  bool lacks = false;
  if (missing && len) missing[0] = '\0';
  for (int pass = 0; pass < 2; pass++) {
    for (const char *p = list; p && *p;) {
      const char *e = strchr(p, ',');
      size_t n = e ? (size_t)(e - p) : strlen(p);
      int k = feature_index(p, n);
      if (pass == 0 && k < 0) {
        list_add(missing, len, &o, p, n);
        return -1;
      }
      if (pass == 1 && !has_feature(k, 0)) {
        list_add(missing, len, &o, p, n);
        lacks = true;
      }
      p = e ? e + 1 : NULL;
    }
  }
  return lacks ? 0 : 1;
}

int32_t attnrt_cpu_pick(const char *const *names, const char *const *feats, int32_t n) {
  if (n <= 1) return 0;
  int32_t best = n - 1;   /* the baseline always runs */
  for (int32_t i = 0; i < n - 1; i++)
    if (attnrt_cpu_has(feats[i], NULL, 0) == 1) {
      best = i;
      break;
    }
  const char *want = getenv("ATTNRT_CPU");
  if (!want || !*want) return best;
  for (int32_t i = 0; i < n; i++) {
    if (strcmp(names[i], want) != 0) continue;
    char missing[512];
    if (i == n - 1 || attnrt_cpu_has(feats[i], missing, sizeof missing) == 1) return i;
    fprintf(stderr, "attnrt: ATTNRT_CPU=%s: this machine lacks %s; running the %s code\n", want, missing, names[best]);
    return best;
  }
  char list[512] = "";
  size_t o = 0;
  for (int32_t i = 0; i < n && o < sizeof list; i++)
    o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", i ? ", " : "", names[i]);
  fprintf(stderr, "attnrt: ATTNRT_CPU=%s is not one of this object's CPUs (%s); running the %s code\n", want, list,
          names[best]);
  return best;
}
