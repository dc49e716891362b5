/* parser.y: the Lemon grammar of .attn files.
 *
 * Every action is one builder call from ast.c (or passes a value through),
 * with the rule above its code.  Precedence, loosest first:
 *
 *     == != < <= > >=   comparisons, which do not chain (`a < b < c` is
 *                  a syntax error, reported as such by report_syntax_error)
 *     + -          binary, left-associative
 *     * / @        binary, left-associative (`@` ranks with `*` as in Python)
 *     - (unary)    so -a @ b is (-a) @ b, and a * -b is a * (-b)
 *     x[i]  f(x)   postfix, tightest: -x[0] is -(x[0]); a call's callee is
 *                  a name or an array element (`layers[1](x)`, ast_call_on)
 *
 * parse_program() (at the end) drives the lexer and this parser.  Before
 * each token is handed to the parser, it is checked against the parser's
 * tables; a token the parser cannot take is reported with what the parser
 * expected there ("expected an expression, found `)`"), and parsing stops.
 * Nesting is bounded three ways: the lexer refuses more than 64 open
 * brackets, the builders refuse expressions deeper than MAX_EXPR_DEPTH, and
 * the fixed parser stack reports an overflow as a user error. */

%name Parse
%token_prefix TK_
%token_type {Token}
%default_type {void *}
%extra_argument {ParseState *ps}
%stack_size 1000
%start_symbol program

%include {
#include <string.h>

#include "ast.h"
#include "lex.h"

typedef struct ParseState {
  const Source *src;
  Program *prog;
  Token tok;          /* the token being parsed */
  int prev;           /* the code of the token before it (0 at the start) */
} ParseState;

static _Noreturn void report_syntax_error(void *parser, ParseState *ps, int code);
}

%syntax_error {
  report_syntax_error(yypParser, ps, yymajor);
}

%parse_failure {
  user_error(ps->tok.loc, "cannot parse the program here");
}

%stack_overflow {
  user_error(ps->tok.loc, "expression nested too deeply");
}

%token MODEL BLOCK CONST INPUT PARAM LAYER LET OUTPUT F32 I32 IDENT NUMBER UNDERSCORE
       EQ COMMA COLON RPAREN RBRACKET LBRACE RBRACE.

%nonassoc EQEQ NE LT LE GT GE.
%left PLUS MINUS.
%left STAR SLASH AT.
%right NEG.
%left LBRACKET LPAREN.

%type items {Program *}
%type model {Model *}
%type block {Block *}
%type bparams {Vec *}
%type bparamlist {Vec *}
%type bparam {BlockParam *}
%type names {Vec *}
%type name {Expr *}
%type decls {Vec *}
%type decl {Vec *}
%type type {TypeExpr *}
%type dims {Vec *}
%type dimlist {Vec *}
%type expr {Expr *}
%type args {Vec *}
%type arglist {Vec *}
%type arg {Arg *}

/* ---- models and declarations ----------------------------------------- */

program ::= items(P).
    { ps->prog = ast_program(ps->src, P); }

items(A) ::= model(M).
    { A = ast_program_add(NULL, M, NULL); }
items(A) ::= block(B).
    { A = ast_program_add(NULL, NULL, B); }
items(A) ::= items(P) model(M).
    { A = ast_program_add(P, M, NULL); }
items(A) ::= items(P) block(B).
    { A = ast_program_add(P, NULL, B); }

model(A) ::= MODEL(K) IDENT(N) LBRACE decls(D) RBRACE.
    { A = ast_model(K.loc, N.loc, N.text, N.len, D); }

/* block EncoderLayer(D, heads, FF=2048) { ... } */
block(A) ::= BLOCK(K) IDENT(N) LPAREN bparams(P) RPAREN LBRACE decls(D) RBRACE.
    { A = ast_block(K.loc, N.loc, N.text, N.len, P, D); }

bparams(A) ::= .
    { A = ast_list_new(); }
bparams(A) ::= bparamlist(L).
    { A = L; }

bparamlist(A) ::= bparam(X).
    { A = ast_list_add(NULL, X); }
bparamlist(A) ::= bparamlist(L) COMMA bparam(X).
    { A = ast_list_add(L, X); }

bparam(A) ::= IDENT(N).
    { A = ast_block_param(N.loc, N.text, N.len, NULL); }
bparam(A) ::= IDENT(N) EQ expr(E).
    { A = ast_block_param(N.loc, N.text, N.len, E); }

/* A list of declarations, each a list: `let a, b = f(x)` declares two. */
decls(A) ::= .
    { A = ast_list_new(); }
decls(A) ::= decls(L) decl(D).
    { A = ast_list_add(L, D); }

decl(A) ::= CONST(K) IDENT(N) EQ expr(E).
    { A = ast_decl1(ast_decl(D_CONST, K.loc, N.loc, N.text, N.len, E, NULL)); }
decl(A) ::= INPUT(K) IDENT(N) COLON type(T).
    { A = ast_decl1(ast_decl(D_INPUT, K.loc, N.loc, N.text, N.len, NULL, T)); }
decl(A) ::= PARAM(K) IDENT(N) COLON type(T).
    { A = ast_decl1(ast_decl(D_PARAM, K.loc, N.loc, N.text, N.len, NULL, T)); }
decl(A) ::= LAYER(K) IDENT(N) EQ expr(E).
    { A = ast_decl1(ast_decl(D_LAYER, K.loc, N.loc, N.text, N.len, E, NULL)); }
decl(A) ::= LAYER(K) IDENT(N) LBRACKET expr(C) RBRACKET EQ expr(E).
    { A = ast_decl1(ast_layer_array(K.loc, N.loc, N.text, N.len, C, E)); }
decl(A) ::= LET(K) names(L) EQ expr(E).
    { A = ast_decls(D_LET, K.loc, L, E); }
decl(A) ::= OUTPUT(K) names(L) EQ expr(E).
    { A = ast_decls(D_OUTPUT, K.loc, L, E); }

/* a, b, _ */
names(A) ::= name(X).
    { A = ast_list_add(NULL, X); }
names(A) ::= names(L) COMMA name(X).
    { A = ast_list_add(L, X); }

name(A) ::= IDENT(T).
    { A = ast_name(T.loc, T.text, T.len); }
name(A) ::= UNDERSCORE(T).
    { A = ast_name(T.loc, T.text, T.len); }

/* ---- types: f32[T, 64], i32[T], f32[] ---------------------------------- */

type(A) ::= F32(K) LBRACKET dims(D) RBRACKET.
    { A = ast_type(DT_F32, K.loc, D); }
type(A) ::= I32(K) LBRACKET dims(D) RBRACKET.
    { A = ast_type(DT_I32, K.loc, D); }

dims(A) ::= .
    { A = ast_list_new(); }
dims(A) ::= dimlist(L).
    { A = L; }

dimlist(A) ::= expr(E).
    { A = ast_list_add(NULL, E); }
dimlist(A) ::= dimlist(L) COMMA expr(E).
    { A = ast_list_add(L, E); }

/* ---- expressions ---------------------------------------------------- */

expr(A) ::= expr(L) EQEQ(O) expr(R).
    { A = ast_binary(O.loc, BIN_EQ, L, R); }
expr(A) ::= expr(L) NE(O) expr(R).
    { A = ast_binary(O.loc, BIN_NE, L, R); }
expr(A) ::= expr(L) LT(O) expr(R).
    { A = ast_binary(O.loc, BIN_LT, L, R); }
expr(A) ::= expr(L) LE(O) expr(R).
    { A = ast_binary(O.loc, BIN_LE, L, R); }
expr(A) ::= expr(L) GT(O) expr(R).
    { A = ast_binary(O.loc, BIN_GT, L, R); }
expr(A) ::= expr(L) GE(O) expr(R).
    { A = ast_binary(O.loc, BIN_GE, L, R); }
expr(A) ::= expr(L) PLUS(O) expr(R).
    { A = ast_binary(O.loc, '+', L, R); }
expr(A) ::= expr(L) MINUS(O) expr(R).
    { A = ast_binary(O.loc, '-', L, R); }
expr(A) ::= expr(L) STAR(O) expr(R).
    { A = ast_binary(O.loc, '*', L, R); }
expr(A) ::= expr(L) SLASH(O) expr(R).
    { A = ast_binary(O.loc, '/', L, R); }
expr(A) ::= expr(L) AT(O) expr(R).
    { A = ast_binary(O.loc, '@', L, R); }
expr(A) ::= MINUS(O) expr(E). [NEG]
    { A = ast_neg(O.loc, E); }
expr(A) ::= expr(B) LBRACKET(O) expr(I) RBRACKET.
    { A = ast_index(O.loc, B, I); }
expr(A) ::= expr(B) LBRACKET(O) expr(I) COLON expr(J) RBRACKET.
    { A = ast_slice(O.loc, B, I, J); }
expr(A) ::= expr(B) LBRACKET(O) expr(I) COLON RBRACKET.
    { A = ast_slice(O.loc, B, I, NULL); }
expr(A) ::= expr(B) LBRACKET(O) COLON expr(J) RBRACKET.
    { A = ast_slice(O.loc, B, NULL, J); }
expr(A) ::= LPAREN expr(E) RPAREN.
    { A = E; }
expr(A) ::= NUMBER(T).
    { A = ast_num(T.loc, T.text, T.len); }
expr(A) ::= IDENT(T).
    { A = ast_name(T.loc, T.text, T.len); }
expr(A) ::= expr(F) LPAREN args(L) RPAREN.
    { A = ast_call_on(F, L); }

/* Positional arguments, then keyword arguments (ast_args_add checks). */
args(A) ::= .
    { A = ast_list_new(); }
args(A) ::= arglist(L).
    { A = L; }

arglist(A) ::= arg(X).
    { A = ast_args_add(NULL, X); }
arglist(A) ::= arglist(L) COMMA arg(X).
    { A = ast_args_add(L, X); }

arg(A) ::= expr(E).
    { A = ast_arg((Loc){0, 0}, NULL, 0, E); }
arg(A) ::= IDENT(N) EQ expr(E).
    { A = ast_arg(N.loc, N.text, N.len, E); }

%code {

/* ---- syntax errors ----------------------------------------------------- */

/* Would the parser, in its present state, shift the token `code` (possibly
 * after some reductions)?  This replays Parse()'s table lookups on a copy
 * of the state stack, so it agrees with Parse() exactly. */
static bool parser_accepts(yyParser *p, int code) {
  YYACTIONTYPE st[YYSTACKDEPTH + 2];
  int sp = (int)(p->yytos - p->yystack);
  for (int i = 0; i <= sp; i++) st[i] = p->yystack[i].stateno;
  YYACTIONTYPE act = st[sp];
  for (int steps = 0; steps < 100000; steps++) {
    act = yy_find_shift_action((YYCODETYPE)code, act);
    if (act >= YY_MIN_REDUCE) {
      unsigned rule = act - YY_MIN_REDUCE;
      int base = sp + yyRuleInfoNRhs[rule];
      if (base < 0) return false;
      act = yy_find_reduce_action(st[base], (YYCODETYPE)yyRuleInfoLhs[rule]);
      sp = base + 1;
      if (sp >= YYSTACKDEPTH + 1) return true;  /* Parse() reports the overflow */
      st[sp] = act;
    } else if (act <= YY_MAX_SHIFTREDUCE || act == YY_ACCEPT_ACTION) {
      return true;
    } else {
      return false;
    }
  }
  return false;
}

static bool has(const bool *set, int code) { return set[code]; }

/* "expected an expression", "expected `,` or `)`", ... from the set of
 * tokens the parser could take here. */
static const char *expected_str(yyParser *p, int prev) {
  bool set[YYNTOKEN];
  for (int t = 0; t < YYNTOKEN; t++) set[t] = token_kind_str(t) && parser_accepts(p, t);

  const char *items[YYNTOKEN + 2];
  int n = 0;
  if (has(set, TK_IDENT) && has(set, TK_NUMBER) && has(set, TK_LPAREN) && has(set, TK_MINUS)) {
    items[n++] = "an expression";
    set[TK_IDENT] = set[TK_NUMBER] = set[TK_LPAREN] = set[TK_MINUS] = false;
  } else if (has(set, TK_PLUS) || has(set, TK_STAR) || has(set, TK_AT)) {
    /* after a complete expression: name what may follow it, not the
       operators that could continue it */
    static const int cont[] = {TK_PLUS, TK_MINUS, TK_STAR, TK_SLASH, TK_AT, TK_LBRACKET, TK_LPAREN,
                               TK_EQEQ, TK_NE, TK_LT, TK_LE, TK_GT, TK_GE};
    for (size_t i = 0; i < sizeof cont / sizeof cont[0]; i++) set[cont[i]] = false;
  }
  if (has(set, TK_MODEL) && has(set, TK_BLOCK)) {
    items[n++] = "`model` or `block`";
    set[TK_MODEL] = set[TK_BLOCK] = false;
  }
  if (has(set, TK_IDENT) && has(set, TK_UNDERSCORE)) set[TK_UNDERSCORE] = false;  /* let a, _: "a name" */
  if (has(set, TK_CONST) && has(set, TK_INPUT) && has(set, TK_PARAM) && has(set, TK_LAYER) &&
      has(set, TK_LET) && has(set, TK_OUTPUT)) {
    items[n++] = "a declaration (`const`, `input`, `param`, `layer`, `let` or `output`)";
    set[TK_CONST] = set[TK_INPUT] = set[TK_PARAM] = set[TK_LAYER] = set[TK_LET] = set[TK_OUTPUT] = false;
  }
  if (has(set, TK_F32) && has(set, TK_I32)) {
    items[n++] = "a type such as `f32[T, 64]`";
    set[TK_F32] = set[TK_I32] = false;
  }
  if (has(set, TK_IDENT)) {
    items[n++] = prev == TK_MODEL ? "a model name"
               : prev == TK_BLOCK ? "a block name"
               : prev == TK_COMMA || prev == TK_LPAREN ? "a name"
               : prev ? arena_printf("a name after %s", token_kind_str(prev)) : "a name";
    set[TK_IDENT] = false;
  }
  /* f(x y): "expected `,`", not `x=`; let h x: "expected `=`", not `let h, i` */
  if (has(set, TK_EQ) && has(set, TK_COMMA)) set[has(set, TK_RPAREN) ? TK_EQ : TK_COMMA] = false;
  bool eof = set[0];
  set[0] = false;
  for (int t = 1; t < YYNTOKEN; t++)
    if (set[t]) items[n++] = token_kind_str(t);
  if (eof) items[n++] = "end of input";
  if (n == 0) return NULL;

  const char *s = items[0];
  for (int i = 1; i < n; i++) s = arena_printf("%s%s%s", s, i == n - 1 ? " or " : ", ", items[i]);
  return s;
}

static _Noreturn void report_syntax_error(void *parser, ParseState *ps, int code) {
  const char *expected = expected_str(parser, ps->prev);
  if (code == 0) {
    if (expected) user_error(ps->tok.loc, "unexpected end of input, expected %s", expected);
    user_error(ps->tok.loc, "unexpected end of input");
  }
  const char *found = arena_printf("`%.*s`", ps->tok.len, ps->tok.text);
  /* after a complete expression a comparison is refused only when it
     would chain onto another one */
  bool cmp = code == TK_EQEQ || code == TK_NE || code == TK_LT || code == TK_LE || code == TK_GT || code == TK_GE;
  if (cmp && parser_accepts(parser, TK_PLUS))
    user_error(ps->tok.loc, "comparisons do not chain: `a < b < c` must be written with parentheses, as "
                            "`(a < b) * (b < c)` for both, found %s", found);
  if (expected) user_error(ps->tok.loc, "expected %s, found %s", expected, found);
  user_error(ps->tok.loc, "unexpected %s", found);
}

/* ---- the driver ------------------------------------------------------- */

Program *parse_program(const Source *src) {
  if (src->len > MAX_SOURCE_LEN)
    user_error((Loc){0, 0}, "the file is larger than %d bytes, the limit for a source file", MAX_SOURCE_LEN);
  ParseState ps = {.src = src};
  Lexer lx;
  lexer_init(&lx, src);
  yyParser *parser = ParseAlloc(arena_alloc);
  int code;
  do {
    code = lexer_next(&lx, &ps.tok);
    if (code == 0 && !lx.any)
      user_error(ps.tok.loc, "the file declares no model (expected `model NAME { ... }`)");
    if (!parser_accepts(parser, code)) report_syntax_error(parser, &ps, code);
    Parse(parser, code, ps.tok, &ps);
    ps.prev = code;
  } while (code != 0);
  if (!ps.prog) internal_error("the parser accepted no program");
  return ps.prog;
}

}
