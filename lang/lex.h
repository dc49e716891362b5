/* lex.h: the lexer's interface, shared by lexer.re and parser.y only.
 *
 * The lexer turns a Source (its text ends in a NUL sentinel) into tokens
 * whose codes are the TK_* values of the Lemon-generated parser.h.  The
 * language is newline-insensitive: newlines, spaces, tabs, carriage returns
 * and `#` comments separate tokens and are otherwise ignored.  Bad bytes,
 * malformed or oversized literals, a `)` or `]` with nothing open, and
 * too-deep bracket nesting are user_errors at the offending byte. */
#ifndef ATTNC_LEX_H
#define ATTNC_LEX_H

#include "ast.h"

#define MAX_NAME_LEN 256      /* identifiers and number literals, in bytes */
#define MAX_BRACKET_DEPTH 64  /* nested ( and [ */

typedef struct Token {
  Loc loc;            /* its first byte; for the end of input: just past
                         the last token ({1,1} when there is none) */
  const char *text;   /* into the source text; not NUL-terminated */
  int len;
} Token;

typedef struct Lexer {
  const Source *src;
  const unsigned char *cur;         /* next byte to read */
  const unsigned char *lim;         /* the NUL sentinel: src->text + src->len */
  const unsigned char *line_start;  /* first byte of the current line */
  int line;
  int depth;                        /* open ( and [ */
  Loc last_end;                     /* just past the last token returned */
  bool any;                         /* a token was returned */
} Lexer;

void lexer_init(Lexer *lx, const Source *src);
/* The next token's TK_* code, and its location and text in *tok; 0 at the
 * end of input. */
int lexer_next(Lexer *lx, Token *tok);
/* How a token kind reads in "expected ..." messages ("`)`", "a name"). */
const char *token_kind_str(int code);

#endif
