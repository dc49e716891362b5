/* ops.h: the primitive ops of the graph IR, one row each.
 *
 * Included with OP defined; traits:
 *   LEAF    no operands; a value that comes from outside (or a constant)
 *   EW      elementwise with NumPy broadcasting of its operands
 *   REDUCE  reduces one axis (attr axis), dropping it
 * An arity of -1 means 3 or 4 operands, -2 one to MAX_OPERANDS.
 *
 *   name        text          arity  traits */
OP(INPUT,      "input",      0,     T_LEAF)
OP(PARAM,      "param",      0,     T_LEAF)
OP(CONST,      "const",      0,     T_LEAF)     /* a rank-0 f32 value: fval */
OP(ADD,        "add",        2,     T_EW)
OP(SUB,        "sub",        2,     T_EW)
OP(MUL,        "mul",        2,     T_EW)
OP(DIV,        "div",        2,     T_EW)
OP(NEG,        "neg",        1,     T_EW)
OP(EXP,        "exp",        1,     T_EW)
OP(LOG,        "log",        1,     T_EW)
OP(SQRT,       "sqrt",       1,     T_EW)
OP(TANH,       "tanh",       1,     T_EW)
OP(SIGMOID,    "sigmoid",    1,     T_EW)
OP(RELU,       "relu",       1,     T_EW)
OP(GELU,       "gelu",       1,     T_EW)
OP(SILU,       "silu",       1,     T_EW)
OP(COPY,       "copy",       1,     T_EW)       /* an output that is another value */
OP(EQ,         "eq",         2,     T_EW)       /* comparisons: f32 1.0 or 0.0; operands f32 or i32,  */
OP(NE,         "ne",         2,     T_EW)       /*   i32 with i32 (or an i32 const) compared exactly, */
OP(LT,         "lt",         2,     T_EW)       /*   else in f32 */
OP(LE,         "le",         2,     T_EW)
OP(GT,         "gt",         2,     T_EW)
OP(GE,         "ge",         2,     T_EW)
OP(FILL,       "fill",       2,     T_EW)       /* x, mask (f32 or i32): fval where mask != 0, else x */
OP(FUSED_EW,   "elementwise", -2,   T_EW)       /* a chain of elementwise ops in one loop: prog */
OP(MATMUL,     "matmul",     2,     0)          /* over the last two dims; tb: b is [.., N, K] */
OP(TRANSPOSE,  "transpose",  1,     0)          /* swaps the last two dims */
OP(PACK,       "pack",       1,     0)          /* a GEMM's B [.., K, N] in panels of NR = 2 vectors of
                                                   columns, each K rows of NR floats (the last, partial
                                                   one: rows of N mod NR); tb: reads [.., N, K] */
OP(SOFTMAX,    "softmax",    1,     0)          /* over axis */
OP(SUM,        "sum",        1,     T_REDUCE)
OP(MEAN,       "mean",       1,     T_REDUCE)
OP(MAX,        "max",        1,     T_REDUCE)
OP(LAYERNORM,  "layernorm",  -1,    0)          /* x, weight, bias[, residual added to x] over the
                                                   last dim; fval = eps */
OP(VIEW,       "view",       1,     0)          /* the operand's memory as another type, from row
                                                   `start` of its first dim (< 0: from the end); no copy */
OP(GATHER,     "gather",     2,     0)          /* rows of a table [n, d] by i32 ids: ids, table */
OP(CONCAT,     "concat",     2,     0)          /* along axis */
OP(SWAP_HEADS, "swap_heads", 1,     0)          /* swaps dims -3 and -2: [.., T, H, d] <-> [.., H, T, d] */
OP(POSENC,     "posenc",     0,     0)          /* sinusoidal positional encoding [T, D] */
OP(LSTM_SEQ,   "lstm_seq",   4,     0)          /* xp [.., T, 4H] (consumed: row t ends up holding c_t in its
                                                   first H), w_hh^T in panels [4H/P, H, P], h0, c0 [.., H] or
                                                   the const 0 -> h [.., T, H] */
OP(GRU_SEQ,    "gru_seq",    4,     0)          /* xp [.., T, 3H] (consumed), w_hh^T in panels, b_hh, h0 -> h */
OP(LAST_STEP,  "last_step",  3,     0)          /* seq [.., T, W], init [.., H] or a const, the recurrent op
                                                   that wrote seq (read by nothing; it orders this op after
                                                   it): the first H of seq's row T-1, or init when T = 0 */
OP(ATTENTION,  "attention",  -2,    0)          /* fused softmax(q k^T * fval + mask) v: q, k, v[, mask]
                                                   [, fill mask (filled): a score is `fill` where it is
                                                   nonzero]; causal, safe as SOFTMAX; no [T, S] buffer */
