/* base.c: arena, source files and diagnostics. */
#include "base.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena ------------------------------------------------------------ */
typedef struct Chunk { struct Chunk *next; size_t used, cap; _Alignas(16) char data[]; } Chunk;
static Chunk *chunks;

void *arena_alloc(size_t n) {
  n = (n + 15) & ~(size_t)15;
  if (!chunks || chunks->cap - chunks->used < n) {
    /* 64 KiB: a large allocation is an mmap and a page fault per page, for
     * each input of a fuzzer; chunks this size come from the malloc heap. */
    size_t cap = n > (1u << 16) ? n : (1u << 16);
    Chunk *c = malloc(sizeof(Chunk) + cap);
    if (!c) {
      fprintf(stderr, "attnc: error: out of memory\n");
      exit(1);
    }
    c->next = chunks;
    c->used = 0;
    c->cap = cap;
    chunks = c;
  }
  void *p = chunks->data + chunks->used;
  chunks->used += n;
  memset(p, 0, n);
  return p;
}

void arena_free_all(void) {
  while (chunks) {
    Chunk *next = chunks->next;
    free(chunks);
    chunks = next;
  }
}

char *arena_strndup(const char *s, size_t n) {
  char *p = arena_alloc(n + 1);
  memcpy(p, s, n);
  p[n] = 0;
  return p;
}

char *arena_strdup(const char *s) { return arena_strndup(s, strlen(s)); }

char *arena_printf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *p = arena_alloc((size_t)n + 1);
  va_start(ap, fmt);
  vsnprintf(p, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return p;
}

void vec_push(Vec *v, void *item) {
  if (v->len == v->cap) {
    int cap = v->cap ? v->cap * 2 : 8;
    void **items = arena_alloc(sizeof(void *) * (size_t)cap);
    if (v->len) memcpy(items, v->items, sizeof(void *) * (size_t)v->len);
    v->items = items;
    v->cap = cap;
  }
  v->items[v->len++] = item;
}

/* ---- sources ---------------------------------------------------------- */
static const Source *cur_src;
static diag_hook exit_hook;
static FILE *diag_stream;   /* NULL: stderr */

void diag_set_source(const Source *src) { cur_src = src; }
void diag_set_exit_hook(diag_hook hook) { exit_hook = hook; }
void diag_set_stream(FILE *f) { diag_stream = f; }

/* Reads at most MAX_SOURCE_LEN + 1 bytes: enough for parse_program to see
 * that a file is over the limit, without reading all of a huge file (or of
 * a device that never ends). */
Source *source_read(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 4096, len = 0, want = (size_t)MAX_SOURCE_LEN + 1;
  char *buf = malloc(cap);
  while (buf && len < want) {
    if (len == cap) {
      cap *= 2;
      char *nb = realloc(buf, cap);
      if (!nb) free(buf);
      buf = nb;
      if (!buf) break;
    }
    size_t room = cap - len < want - len ? cap - len : want - len;
    size_t n = fread(buf + len, 1, room, f);
    len += n;
    if (n < room) break;
  }
  int err = ferror(f);
  fclose(f);
  if (!buf) {
    errno = ENOMEM;
    return NULL;
  }
  if (err) {
    free(buf);
    errno = EIO;
    return NULL;
  }
  Source *s = source_from_bytes(path, buf, len);
  free(buf);
  return s;
}

Source *source_from_bytes(const char *path, const char *bytes, size_t len) {
  Source *s = NEW(Source);
  char *text = arena_alloc(len + 1);
  if (len) memcpy(text, bytes, len);
  text[len] = 0;
  s->path = arena_strdup(path);
  s->text = text;
  s->len = len;
  return s;
}

/* ---- diagnostics -------------------------------------------------------- */
static _Noreturn void die(void) {
  fflush(stdout);
  if (exit_hook) exit_hook();
  exit(1);
}

static FILE *diag_out(void) { return diag_stream ? diag_stream : stderr; }

/* Print the source line of loc and a caret under its column.  Tabs in the
 * prefix are kept so the caret lines up in a terminal; other control bytes
 * are shown as '?' so a hostile file cannot drive the terminal. */
static void show_line(Loc loc) {
  FILE *out = diag_out();
  if (!cur_src || loc.line <= 0) return;
  const char *p = cur_src->text, *end = cur_src->text + cur_src->len;
  for (int l = 1; l < loc.line && p < end; p++)
    if (*p == '\n') l++;
  const char *q = p;
  while (q < end && *q != '\n') q++;
  if (q > p && q[-1] == '\r') q--;
  fputs("    ", out);
  for (const char *c = p; c < q; c++) {
    unsigned char ch = (unsigned char)*c;
    fputc(ch == '\t' || ch >= 0x20 ? ch : '?', out);
  }
  fputs("\n    ", out);
  for (int i = 1; i < loc.col && p + i - 1 < q; i++) fputc(p[i - 1] == '\t' ? '\t' : ' ', out);
  fputs("^\n", out);
}

static void vdiag(Loc loc, const char *kind, const char *fmt, va_list ap) {
  FILE *out = diag_out();
  fflush(stdout);
  if (cur_src && loc.line > 0)
    fprintf(out, "%s:%d:%d: %s: ", cur_src->path, loc.line, loc.col, kind);
  else if (cur_src)
    fprintf(out, "%s: %s: ", cur_src->path, kind);
  else
    fprintf(out, "attnc: %s: ", kind);
  vfprintf(out, fmt, ap);
  fputc('\n', out);
  show_line(loc);
}

/* Where the diagnostics of a block's body came from: each call or instance
 * being checked (innermost last), printed as notes under an error, as clang
 * prints "in instantiation of ..." for templates. */
#define MAX_DIAG_CONTEXT 64
static struct { Loc loc; const char *what; } diag_context[MAX_DIAG_CONTEXT];
static int n_diag_context;

void diag_push_context(Loc loc, const char *what) {
  if (n_diag_context < MAX_DIAG_CONTEXT) {
    diag_context[n_diag_context].loc = loc;
    diag_context[n_diag_context].what = what;
  }
  n_diag_context++;
}

void diag_pop_context(void) {
  if (n_diag_context > 0) n_diag_context--;
}

void diag_clear_context(void) { n_diag_context = 0; }

static void print_context(void) {
  int n = n_diag_context < MAX_DIAG_CONTEXT ? n_diag_context : MAX_DIAG_CONTEXT;
  for (int i = n - 1; i >= 0; i--) user_note(diag_context[i].loc, "%s", diag_context[i].what);
}

void user_error(Loc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vdiag(loc, "error", fmt, ap);
  va_end(ap);
  print_context();
  n_diag_context = 0;
  die();
}

void user_warning(Loc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vdiag(loc, "warning", fmt, ap);
  va_end(ap);
}

void user_remark(Loc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vdiag(loc, "remark", fmt, ap);
  va_end(ap);
}

void user_note(Loc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vdiag(loc, "note", fmt, ap);
  va_end(ap);
}

void fatal(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fflush(stdout);
  FILE *out = diag_out();
  fputs("attnc: error: ", out);
  vfprintf(out, fmt, ap);
  fputc('\n', out);
  va_end(ap);
  die();
}

void usage_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fflush(stdout);
  fputs("attnc: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputs("\nTry 'attnc --help'.\n", stderr);
  va_end(ap);
  exit(2);
}

void internal_error_at(const char *file, int line, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fflush(stdout);
  fprintf(stderr, "attnc: internal error at %s:%d: ", file, line);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  abort();
}
