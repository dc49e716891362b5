/* base.h: what every phase of attnc shares: the arena, source locations,
 * and the two kinds of error.
 *
 * user_error() is for mistakes in the user's program: it prints
 *   file:line:col: error: message
 *       the source line
 *       ^
 * and exits with status 1.  internal_error() is for broken invariants in
 * the compiler itself: it names the C file and line and aborts.  Compiler
 * memory is never freed piecemeal: it lives in one arena freed at exit. */
#ifndef ATTNC_BASE_H
#define ATTNC_BASE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define ATTNC_VERSION "0.1.0"

/* ---- arena ------------------------------------------------------------ */
void *arena_alloc(size_t n);            /* zeroed, 16-byte aligned; never NULL */
char *arena_strdup(const char *s);
char *arena_strndup(const char *s, size_t n);
char *arena_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void arena_free_all(void);              /* registered with atexit by the driver */
#define NEW(T) ((T *)arena_alloc(sizeof(T)))
#define NEW_ARRAY(T, n) ((T *)arena_alloc(sizeof(T) * (size_t)(n)))

/* A growable array of pointers, arena-backed (old storage is abandoned). */
typedef struct Vec { void **items; int len, cap; } Vec;
void vec_push(Vec *v, void *item);

/* ---- sources and locations ------------------------------------------- */
typedef struct Source {
  const char *path;   /* as given on the command line */
  const char *text;   /* the bytes, followed by one NUL (the lexer's sentinel) */
  size_t len;         /* without the sentinel; the text may hold other NULs */
} Source;

/* line and col count from 1; col counts bytes. {0,0} means "no location". */
typedef struct Loc { int line, col; } Loc;

/* Source files are at most this long; parse_program refuses longer ones. */
#define MAX_SOURCE_LEN (1 << 20)

/* The source diagnostics point into; set once by the driver. */
void diag_set_source(const Source *src);
/* NULL and errno on failure.  Reads at most MAX_SOURCE_LEN + 1 bytes, so a
 * longer file is seen to be too long without being read whole. */
Source *source_read(const char *path);
/* A Source holding a copy of len bytes (which may hold NULs), in the arena. */
Source *source_from_bytes(const char *path, const char *bytes, size_t len);

/* Source errors: print the diagnostic with the line and a caret, exit(1). */
_Noreturn void user_error(Loc loc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A warning with the same shape; compilation goes on. */
void user_warning(Loc loc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* An optimizer remark (attnc --remarks): same shape, compilation goes on. */
void user_remark(Loc loc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A note attached to the previous diagnostic (e.g. "first declared here"). */
void user_note(Loc loc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A context for the diagnostics that follow until the matching pop: a
 * user_error prints a note for each, innermost first ("in `layers.1`, an
 * instance of block `EncoderLayer`"). */
void diag_push_context(Loc loc, const char *what);
void diag_pop_context(void);
void diag_clear_context(void);
/* Errors with no location (bad files, usage). Prints "attnc: error: ...", exit(1). */
_Noreturn void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Bad command-line usage: "attnc: ...", a hint to try --help, exit(2). */
_Noreturn void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Broken compiler invariants: "attnc: internal error at FILE:LINE: ...", abort(). */
_Noreturn void internal_error_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define internal_error(...) internal_error_at(__FILE__, __LINE__, __VA_ARGS__)
#define ASSERT(c) ((c) ? (void)0 : internal_error("assertion failed: %s", #c))

/* Diagnostics go through a hook so that a fuzzer can catch user_error
 * instead of exiting; NULL means print and exit. */
typedef void (*diag_hook)(void);
void diag_set_exit_hook(diag_hook hook); /* called instead of exit(1); must not return */
/* Where user diagnostics and fatal() go (NULL: stderr); a fuzzer passes
 * /dev/null.  Internal errors and usage errors always go to stderr. */
void diag_set_stream(FILE *f);

#endif
