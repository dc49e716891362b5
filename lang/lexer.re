/* lexer.re: the re2c lexer of .attn files (see lex.h).
 *
 * It reads the source text up to its NUL sentinel: a NUL at the end is the
 * end of input, one before the end is a stray byte.  Columns count bytes
 * from 1.  Tokens: keywords (model const input param layer let output f32
 * i32), identifiers [A-Za-z_][A-Za-z0-9_]*, numbers (12, 1.5, .5, 2., 1e-5)
 * and the punctuation @ + - * / = , : ( ) [ ] { }.  A `.` right after an
 * identifier (`layers.0.norm`) is an error of its own, not a stray
 * character: it explains where nested names come from. */
#include <ctype.h>
#include <stdio.h>

#include "lex.h"
#include "parser.h"

void lexer_init(Lexer *lx, const Source *src) {
  lx->src = src;
  lx->cur = (const unsigned char *)src->text;
  lx->lim = lx->cur + src->len;
  lx->line_start = lx->cur;
  lx->line = 1;
  lx->depth = 0;
  lx->last_end = (Loc){1, 1};
  lx->any = false;
}

static Loc loc_at(const Lexer *lx, const unsigned char *p) {
  return (Loc){lx->line, (int)(p - lx->line_start) + 1};
}

static _Noreturn void stray(const Lexer *lx, const unsigned char *p) {
  if (*p >= 0x21 && *p <= 0x7e)
    user_error(loc_at(lx, p), "stray character '%c'", *p);
  user_error(loc_at(lx, p), "stray byte 0x%02x", *p);
}

/* An integer literal must fit in int64. */
static void check_int(const Lexer *lx, const unsigned char *p, int len) {
  int64_t v = 0;
  for (int i = 0; i < len; i++) {
    if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, p[i] - '0', &v))
      user_error(loc_at(lx, p), "integer literal `%.*s` is too large (max %lld)", len,
                 (const char *)p, (long long)INT64_MAX);
  }
}

int lexer_next(Lexer *lx, Token *tok) {
  const unsigned char *YYMARKER = NULL;
  int code;
  for (;;) {
    const unsigned char *start = lx->cur;
    const unsigned char *YYCURSOR = lx->cur;
    tok->loc = loc_at(lx, start);
    tok->text = (const char *)start;
    /*!re2c
      re2c:define:YYCTYPE = "unsigned char";
      re2c:yyfill:enable = 0;
      re2c:sentinel = 0;
      re2c:indent:top = 2;

      digits = [0-9]+;
      exponent = [eE] [+-]? digits;
      integer = digits;
      decimal = digits "." [0-9]* exponent? | "." digits exponent? | digits exponent;
      ident = [A-Za-z_][A-Za-z0-9_]*;

      "\x00" {
        if (start < lx->lim) stray(lx, start);
        tok->loc = lx->last_end;
        tok->len = 0;
        return 0;
      }
      [ \t\r]+              { lx->cur = YYCURSOR; continue; }
      "\n"                  { lx->cur = YYCURSOR; lx->line++; lx->line_start = YYCURSOR; continue; }
      "#" [^\n\x00]*        { lx->cur = YYCURSOR; continue; }

      "model"  { code = TK_MODEL; goto done; }
      "block"  { code = TK_BLOCK; goto done; }
      "_"      { code = TK_UNDERSCORE; goto done; }
      "const"  { code = TK_CONST; goto done; }
      "input"  { code = TK_INPUT; goto done; }
      "param"  { code = TK_PARAM; goto done; }
      "layer"  { code = TK_LAYER; goto done; }
      "let"    { code = TK_LET; goto done; }
      "output" { code = TK_OUTPUT; goto done; }
      "f32"    { code = TK_F32; goto done; }
      "i32"    { code = TK_I32; goto done; }

      ident {
        if (YYCURSOR - start > MAX_NAME_LEN)
          user_error(tok->loc, "identifier too long (max %d characters)", MAX_NAME_LEN);
        code = TK_IDENT;
        goto done;
      }
      ident ("." [A-Za-z0-9_]*)+ {
        /* `layers.0.norm(x)`, `self_attn.in_proj_weight`: a path as a
         * state_dict spells it */
        const unsigned char *dot = start;
        while (*dot != '.') dot++;
        int n = (int)(YYCURSOR - start);
        if (n > 64) n = 64;
        user_error(loc_at(lx, dot),
                   "`.` in `%.*s%s`: names cannot hold `.`; nested names come from blocks and layer arrays "
                   "(`layers[0](x)`), and from --weights-prefix for a weights file's tensors",
                   n, (const char *)start, YYCURSOR - start > 64 ? "..." : "");
      }
      integer {
        if (YYCURSOR - start > MAX_NAME_LEN)
          user_error(tok->loc, "number too long (max %d characters)", MAX_NAME_LEN);
        check_int(lx, start, (int)(YYCURSOR - start));
        code = TK_NUMBER;
        goto done;
      }
      decimal {
        if (YYCURSOR - start > MAX_NAME_LEN)
          user_error(tok->loc, "number too long (max %d characters)", MAX_NAME_LEN);
        code = TK_NUMBER;
        goto done;
      }
      (integer | decimal) [A-Za-z0-9_.]+ {
        int n = (int)(YYCURSOR - start);
        if (n > 40) user_error(tok->loc, "malformed number");
        user_error(tok->loc, "malformed number `%.*s`", n, (const char *)start);
      }

      "@" { code = TK_AT; goto done; }
      "+" { code = TK_PLUS; goto done; }
      "-" { code = TK_MINUS; goto done; }
      "*" { code = TK_STAR; goto done; }
      "/" { code = TK_SLASH; goto done; }
      "==" { code = TK_EQEQ; goto done; }
      "!=" { code = TK_NE; goto done; }
      "<=" { code = TK_LE; goto done; }
      ">=" { code = TK_GE; goto done; }
      "<" { code = TK_LT; goto done; }
      ">" { code = TK_GT; goto done; }
      "=" { code = TK_EQ; goto done; }
      "," { code = TK_COMMA; goto done; }
      ":" { code = TK_COLON; goto done; }
      "(" { code = TK_LPAREN; goto open; }
      "[" { code = TK_LBRACKET; goto open; }
      ")" { code = TK_RPAREN; goto close; }
      "]" { code = TK_RBRACKET; goto close; }
      "{" { code = TK_LBRACE; goto done; }
      "}" { code = TK_RBRACE; goto done; }

      * { stray(lx, start); }
    */
  open:
    if (++lx->depth > MAX_BRACKET_DEPTH)
      user_error(tok->loc, "expression nested too deeply (max %d levels of brackets)",
                 MAX_BRACKET_DEPTH);
    goto done;
  close:
    if (lx->depth == 0) user_error(tok->loc, "unmatched `%c`", *start);
    lx->depth--;
  done:
    lx->cur = YYCURSOR;
    tok->len = (int)(YYCURSOR - start);
    lx->last_end = loc_at(lx, YYCURSOR);
    lx->any = true;
    return code;
  }
}

const char *token_kind_str(int code) {
  switch (code) {
  case 0: return "end of input";
  case TK_MODEL: return "`model`";
  case TK_BLOCK: return "`block`";
  case TK_UNDERSCORE: return "`_`";
  case TK_CONST: return "`const`";
  case TK_INPUT: return "`input`";
  case TK_PARAM: return "`param`";
  case TK_LAYER: return "`layer`";
  case TK_LET: return "`let`";
  case TK_OUTPUT: return "`output`";
  case TK_F32: return "`f32`";
  case TK_I32: return "`i32`";
  case TK_IDENT: return "a name";
  case TK_NUMBER: return "a number";
  case TK_AT: return "`@`";
  case TK_PLUS: return "`+`";
  case TK_MINUS: return "`-`";
  case TK_STAR: return "`*`";
  case TK_SLASH: return "`/`";
  case TK_EQ: return "`=`";
  case TK_EQEQ: return "`==`";
  case TK_NE: return "`!=`";
  case TK_LT: return "`<`";
  case TK_LE: return "`<=`";
  case TK_GT: return "`>`";
  case TK_GE: return "`>=`";
  case TK_COMMA: return "`,`";
  case TK_COLON: return "`:`";
  case TK_LPAREN: return "`(`";
  case TK_RPAREN: return "`)`";
  case TK_LBRACKET: return "`[`";
  case TK_RBRACKET: return "`]`";
  case TK_LBRACE: return "`{`";
  case TK_RBRACE: return "`}`";
  default: return NULL;
  }
}
