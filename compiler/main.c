/* main.c: the attnc driver.
 *
 * main() is the pipeline, one phase per line: each phase takes one whole
 * structure and returns the next (source -> AST -> checked AST -> graph IR
 * -> optimized IR -> memory plan -> LLVM module -> object/header/JIT). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <attnrt.h>

#include "bench.h"
#include "codegen.h"
#include "cpus.h"
#include "split.h"
#include "ir.h"
#include "outfile.h"


typedef struct Options {
  const char *input, *output, *header, *model, *weights, *weights_prefix, *triple, *cpu, *prefix;
  bool check, emit_ir, emit_dot, emit_llvm, emit_asm, no_fuse, remarks, run, bench, verbose, cpu_list;
  bool weights_bf16;   /* --weights-dtype bf16 */
  int opt_level, threads, jobs;
  NamedPath inputs[64], outputs[64], dims[16];
  int ninputs, noutputs, ndims;
} Options;

static const char usage_text[] =
    "usage: attnc FILE.attn [options]\n"
    "\n"
    "Outputs (default: FILE.o and FILE.h in the current directory):\n"
    "  -o PATH              the output file ('-' for stdout with text outputs)\n"
    "  --header PATH        where to write the C header (default: the object's path with .h)\n"
    "  --check              parse and check only\n"
    "  --emit-ir            the graph IR after optimization (stdout unless -o)\n"
    "  --emit-dot           the optimized graph for Graphviz, fused ops as clusters\n"
    "  --emit-llvm          LLVM IR (stdout unless -o)\n"
    "  -S                   assembly (stdout unless -o)\n"
    "  --run                JIT-compile and run once (see below)\n"
    "\n"
    "Code generation:\n"
    "  -O0 -O1 -O2 -O3      optimization level (default -O2)\n"
    "  --no-fuse            turn the fusion passes off\n"
    "  --remarks            say why attention-like chains were not fused (with --no-fuse:\n"
    "                       one note that fusion is off)\n"
    "  --target TRIPLE      target triple (default: the host)\n"
    "  --cpu NAME           target CPU, e.g. x86-64, haswell, znver4 (default: the host's)\n"
    "  --cpu A,B,...        compile an object for each CPU (x86-64 targets; host is this\n"
    "                       machine's); the code runs on the best one the machine has,\n"
    "                       else on x86-64, which is always included\n"
    "  --threads N          the generated code's default thread count, also for --run\n"
    "                       (default 1; 0 = all CPUs)\n"
    "  -j N                 compile an object in up to N parts side by side\n"
    "                       (default 2; the object depends on N, not on the machine)\n"
    "  -v, --verbose        print each phase's time, and the parts of the object\n"
    "  --prefix P           prefix the global symbols: PNAME, PNAME_model and\n"
    "                       PNAME_scratch_size, so two builds of a model link together\n"
    "                       (P: letters, digits, _; not a digit first, not attnrt_)\n"
    "\n"
    "Weights (compiling: embedded in the object; --check, --emit-ir, --emit-dot:\n"
    "checked; --run, --bench: bound at run time):\n"
    "  --weights FILE       safetensors file with the model's params: F32, or F16,\n"
    "                       BF16, F64 converted to f32 (I32 for i32 params)\n"
    "  --weights-prefix P   bind param p to the tensor named P + p, for a state_dict\n"
    "                       saved from a bigger module (--weights-prefix encoder.)\n"
    "  --weights-dtype T    f32 (default) or bf16: store the weight matrices (params\n"
    "                       read only as a product's weights: Linear, attention\n"
    "                       projections, LSTM/GRU W_ih and W_hh, `x @ w`) in bf16,\n"
    "                       rounded to nearest even; products still accumulate in\n"
    "                       f32 (also --run, --bench)\n"
    "\n"
    "Running (--run):\n"
    "  --model NAME         the model to run (default: the first in the file); also\n"
    "                       when compiling or with --emit-*: that model alone\n"
    "  --input NAME=FILE    an input as .npy (symbolic dims are bound from the shapes;\n"
    "                       float64 and int64 files are converted to f32 and i32)\n"
    "  --output NAME=FILE   write an output as .npy; without any, each output's\n"
    "                       shape and leading values are printed\n"
    "\n"
    "Timing (--bench): JIT-compile, run on random inputs (and random params unless\n"
    "--weights gives them), print the median ms and GFLOP/s and the threads used;\n"
    "--model, --weights, --weights-prefix, --threads as for --run, and\n"
    "  --dim NAME=SIZE      the size of a symbolic dim (each one that no --input\n"
    "                       binds is needed)\n"
    "  --input NAME=FILE    real data for that input (.npy, as for --run)\n"
    "\n"
    "  --help               this text\n"
    "  --version            the version\n"
    "\n"
    "Exit status: 0 on success, 1 on an error in the input, 2 on bad usage.\n";

static const char *default_output(const char *input, const char *ext);
static const char *header_for(const Options *o);

static NamedPath named_path(const char *flag, const char *arg) {
  const char *eq = strchr(arg, '=');
  if (!eq || eq == arg || !eq[1]) usage_error("%s wants NAME=VALUE, got '%s'", flag, arg);
  return (NamedPath){arena_strndup(arg, (size_t)(eq - arg)), eq + 1};
}

static Options parse_args(int argc, char **argv) {
  Options o = {.opt_level = 2, .threads = 1, .jobs = 2};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
#define VALUE() (i + 1 < argc ? argv[++i] : (usage_error("%s needs a value", a), ""))
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      fputs(usage_text, stdout);
      exit(0);
    } else if (!strcmp(a, "--version")) {
      printf("attnc %s (LLVM %d.%d.%d)\n", ATTNC_VERSION, 19, 1, 7);
      exit(0);
    } else if (!strcmp(a, "-o")) o.output = VALUE();
    else if (!strcmp(a, "--header")) o.header = VALUE();
    else if (!strcmp(a, "--check")) o.check = true;
    else if (!strcmp(a, "--emit-ir")) o.emit_ir = true;
    else if (!strcmp(a, "--emit-dot")) o.emit_dot = true;
    else if (!strcmp(a, "--emit-llvm")) o.emit_llvm = true;
    else if (!strcmp(a, "-S")) o.emit_asm = true;
    else if (!strcmp(a, "--no-fuse")) o.no_fuse = true;
    else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) o.verbose = true;
    else if (!strcmp(a, "--remarks")) o.remarks = true;
    else if (!strcmp(a, "--run")) o.run = true;
    else if (!strcmp(a, "--bench")) o.bench = true;
    else if (!strcmp(a, "--model")) o.model = VALUE();
    else if (!strcmp(a, "--weights")) o.weights = VALUE();
    else if (!strcmp(a, "--weights-prefix")) o.weights_prefix = VALUE();
    else if (!strcmp(a, "--weights-dtype")) {
      const char *v = VALUE();
      if (strcmp(v, "f32") && strcmp(v, "bf16")) usage_error("--weights-dtype wants f32 or bf16, got '%s'", v);
      o.weights_bf16 = !strcmp(v, "bf16");
    }
    else if (!strcmp(a, "--target")) o.triple = VALUE();
    else if (!strcmp(a, "--cpu")) o.cpu = VALUE();
    else if (!strcmp(a, "--prefix")) o.prefix = VALUE();
    else if (!strcmp(a, "--threads")) {
      const char *v = VALUE();
      char *end;
      long n = strtol(v, &end, 10);
      if (*end || end == v || n < 0 || n > 1024) usage_error("--threads wants a number from 0 to 1024, got '%s'", v);
      o.threads = (int)n;
    } else if (!strncmp(a, "-j", 2)) {   /* -j N or -jN */
      const char *v = a[2] ? a + 2 : VALUE();
      char *end;
      long n = strtol(v, &end, 10);
      if (*end || end == v || n < 1 || n > 64) usage_error("-j wants a number from 1 to 64, got '%s'", v);
      o.jobs = (int)n;
    } else if (!strcmp(a, "--input") || !strcmp(a, "--output") || !strcmp(a, "--dim")) {
      NamedPath np = named_path(a, VALUE());
      bool in = !strcmp(a, "--input"), out = !strcmp(a, "--output");
      NamedPath *arr = in ? o.inputs : out ? o.outputs : o.dims;
      int *n = in ? &o.ninputs : out ? &o.noutputs : &o.ndims;
      int cap = in || out ? 64 : 16;
      if (*n == cap) usage_error("too many %s options (at most %d)", a, cap);
      for (int k = 0; k < *n; k++)
        if (!strcmp(arr[k].name, np.name)) usage_error("%s %s is given twice", a, np.name);
      arr[(*n)++] = np;
    } else if (a[0] == '-' && a[1] == 'O' && a[2] >= '0' && a[2] <= '3' && !a[3]) o.opt_level = a[2] - '0';
    else if (a[0] == '-' && a[1]) usage_error("unknown option '%s'", a);
    else if (o.input) usage_error("more than one input file ('%s' and '%s')", o.input, a);
    else o.input = a;
#undef VALUE
  }
  if (!o.input) usage_error("no input file");
  int modes = o.check + o.emit_ir + o.emit_dot + o.emit_llvm + o.emit_asm + o.run + o.bench;
  if (modes > 1) usage_error("choose one of --check, --emit-ir, --emit-dot, --emit-llvm, -S, --run, --bench");
  if (o.ninputs && !o.run && !o.bench) usage_error("--input goes with --run and --bench");
  if (o.noutputs && !o.run) usage_error("--output goes with --run");
  if (o.ndims && !o.bench) usage_error("--dim goes with --bench");
  if (o.weights_prefix && !o.weights) usage_error("--weights-prefix goes with --weights FILE");
  if (o.prefix) {
    const char *p = o.prefix;
    bool ok = *p && !(*p >= '0' && *p <= '9');
    for (; *p && ok; p++)
      ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_';
    if (!ok)
      usage_error("--prefix wants the start of a C identifier (letters, digits and _, not a digit first), got '%s'",
                  o.prefix);
    if (!strncmp(o.prefix, "attnrt_", 7))
      usage_error("--prefix '%s': names starting with attnrt_ belong to the runtime", o.prefix);
    if (o.check || o.emit_ir || o.emit_dot)
      usage_error("--prefix goes with compiling, --emit-llvm, -S, --run and --bench (this mode makes no symbols)");
  }
  if (o.cpu && (o.cpu_list = cpu_is_list(o.cpu)) && (o.emit_llvm || o.emit_asm || o.run || o.bench))
    usage_error("--cpu with a list of CPUs makes an object; %s takes one CPU",
                o.run ? "--run" : o.bench ? "--bench" : o.emit_asm ? "-S" : "--emit-llvm");
  if (o.header && (modes || !o.output)) usage_error("--header goes with -o when compiling to an object");
  if (o.output && (o.check || o.run || o.bench))
    usage_error("-o goes with compiling and the --emit options; %s",
                o.run ? "--run writes outputs with --output NAME=FILE" : "this mode writes no file");
  return o;
}

/* ---- outputs that would overwrite each other or an input ------------------ */
typedef struct FileRole { const char *path, *role; } FileRole;

static void add_role(FileRole *r, int *n, const char *path, const char *role) {
  if (path && strcmp(path, "-")) r[(*n)++] = (FileRole){path, role};
}

/* Every file this invocation writes, with what it is. */
static int output_files(const Options *o, FileRole *r) {
  int n = 0;
  bool object = !(o->check || o->emit_ir || o->emit_dot || o->emit_llvm || o->emit_asm || o->run || o->bench);
  if (object) {
    add_role(r, &n, o->output ? o->output : default_output(o->input, ".o"), "the object (-o)");
    add_role(r, &n, header_for(o), "the header");
  } else if (!o->run) {
    add_role(r, &n, o->output, "the output (-o)");
  }
  for (int i = 0; i < o->noutputs; i++)
    add_role(r, &n, o->outputs[i].path, arena_printf("--output %s", o->outputs[i].name));
  return n;
}

/* Two outputs on one file, or an output on an input, would lose one of
 * them (attnc m.attn -o m.attn would replace the source): refused before
 * anything is written. */
static void check_output_collisions(const Options *o) {
  FileRole out[128], in[80];
  int nout = output_files(o, out), nin = 0;
  add_role(in, &nin, o->input, "the source file");
  add_role(in, &nin, o->weights, "the weights file (--weights)");
  for (int i = 0; i < o->ninputs; i++)
    add_role(in, &nin, o->inputs[i].path, arena_printf("--input %s", o->inputs[i].name));
  for (int i = 0; i < nout; i++) {
    for (int k = 0; k < nin; k++)
      if (attnrt_same_file(out[i].path, in[k].path))
        usage_error("%s would overwrite %s: '%s' and '%s' are the same file", out[i].role, in[k].role, out[i].path,
                    in[k].path);
    for (int k = 0; k < i; k++)
      if (attnrt_same_file(out[i].path, out[k].path))
        usage_error("%s and %s are the same file ('%s' and '%s')", out[k].role, out[i].role, out[k].path, out[i].path);
  }
}

/* ---- phases ------------------------------------------------------------ */
static Source *read_source(const char *path) {
  Source *src = source_read(path);
  if (!src) fatal("cannot read %s: %s", path, strerror(errno));
  diag_set_source(src);
  return src;
}

static Graph **lower_program(const Program *prog, const char *only, int *ngraphs) {
  int n = 0;
  for (Model *m = prog->models; m; m = m->next) n++;
  Graph **gs = NEW_ARRAY(Graph *, n + 1);
  *ngraphs = 0;
  for (Model *m = prog->models; m; m = m->next)
    if (!only || !strcmp(only, m->name)) gs[(*ngraphs)++] = lower_model(m);
  if (only && !*ngraphs) fatal("%s has no model `%s`", prog->src->path, only);
  return gs;
}

static void verify_after(Graph *g, const char *pass) {
#ifdef ATTNC_VERIFY_EACH_PASS
  ir_verify(g, pass);
#else
  (void)g, (void)pass;
#endif
}

static void optimize_graphs(Graph **gs, int n, const Options *o) {
  for (int i = 0; i < n; i++) {
    pass_fold_constants(gs[i]);
    verify_after(gs[i], "fold_constants");
    pass_dce(gs[i]);
    verify_after(gs[i], "dce");
    if (!o->no_fuse) {
      pass_fuse_attention(gs[i], o->remarks);
      verify_after(gs[i], "fuse_attention");
      pass_fuse_layernorm(gs[i]);
      verify_after(gs[i], "fuse_layernorm");
      pass_fuse_elementwise(gs[i]);
      verify_after(gs[i], "fuse_elementwise");
      pass_dce(gs[i]);
      verify_after(gs[i], "dce");
    }
    /* a layout choice, not a fusion: --no-fuse keeps it */
    pass_pack_gemm(gs[i]);
    verify_after(gs[i], "pack_gemm");
    if (o->weights_bf16) pass_weights_bf16(gs[i]);
  }
}

static void plan_all(Graph **gs, int n) {
  for (int i = 0; i < n; i++) plan_memory(gs[i]);
}

static void print_ir(Graph **gs, int n, const char *out, bool dot) {
  FILE *f = stdout;
  char *buf = NULL;
  size_t len = 0;
  if (out && strcmp(out, "-")) f = open_memstream(&buf, &len);
  if (dot) ir_print_dot(f, gs, n);
  for (int i = 0; i < n && !dot; i++) {
    if (i) fputc('\n', f);
    ir_print(f, gs[i]);
  }
  if (f != stdout) {
    fclose(f);
    bool ok = write_file_atomic(out, buf, len);
    free(buf);
    if (!ok) fatal("cannot write %s: %s", out, strerror(errno));
  }
}

static const char *default_output(const char *input, const char *ext) {
  const char *base = strrchr(input, '/');
  base = base ? base + 1 : input;
  const char *dot = strrchr(base, '.');
  size_t n = dot && dot != base ? (size_t)(dot - base) : strlen(base);
  return arena_printf("%.*s%s", (int)n, base, ext);
}

static const char *header_path(const char *object) {
  const char *slash = strrchr(object, '/');
  const char *dot = strrchr(object, '.');
  size_t n = dot && (!slash || dot > slash + 1) ? (size_t)(dot - object) : strlen(object);
  return arena_printf("%.*s.h", (int)n, object);
}

/* ATTNC_ + the prefix + the header's file name, upper case, _ for the rest */
static const char *guard_for(const char *path, const char *prefix) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  char *g = arena_printf("ATTNC_%s%s_", prefix ? prefix : "", base);
  for (char *p = g; *p; p++) {
    if (*p >= 'a' && *p <= 'z') *p = (char)(*p - 'a' + 'A');
    else if (!((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9'))) *p = '_';
  }
  return g;
}

/* Where the header goes: --header, else beside the object with .h; none
 * when the object goes to stdout, a device or a FIFO (-o /dev/null) and no
 * --header says where. */
static const char *header_for(const Options *o) {
  if (o->header) return o->header;
  const char *object = o->output ? o->output : default_output(o->input, ".o");
  if (!strcmp(object, "-")) return NULL;
  struct stat st;
  if (stat(object, &st) == 0 && !S_ISREG(st.st_mode)) return NULL;
  return header_path(object);
}

/* The object and its header, both or neither. */
static void write_object(Graph **gs, int n, const Options *o, const char *bytes, size_t len) {
  const char *object = o->output ? o->output : default_output(o->input, ".o");
  const char *hpath = header_for(o);
  const char *text =
      hpath ? header_text(gs, n, o->input, guard_for(hpath, o->prefix), o->weights != NULL, o->prefix) : NULL;
  if (!strcmp(object, "-")) {
    if (!write_file_atomic("-", bytes, len)) fatal("cannot write the object to stdout: %s", strerror(errno));
    if (hpath) write_file_atomic(hpath, text, strlen(text));
    return;
  }
  const char *paths[2] = {object, hpath};
  const char *data[2] = {bytes, text};
  size_t lens[2] = {len, text ? strlen(text) : 0};
  write_outputs(hpath ? 2 : 1, paths, data, lens);
}

/* ---- --weights at compile time --------------------------------------------- */
static int32_t never_called(struct attnrt_ctx *ctx, void *const *p, void *const *i, void *const *o,
                            const int64_t *d, void *s, void *pr) {
  return ATTNRT_E_ARG;
}

static attnrt_ctx **weight_ctxs;
static int n_weight_ctxs;

static void free_weight_ctxs(void) {
  for (int i = 0; i < n_weight_ctxs; i++) attnrt_ctx_free(weight_ctxs[i]);
  n_weight_ctxs = 0;
}

/* Load and check each model's params from the weights file with the
 * runtime's own loader (the same checks, conversions to f32 and messages
 * as at run time), and return per model the data to embed.  The data stays
 * mapped (or, converted, owned by the contexts) until exit; codegen copies
 * it into the module. */
static const void ***load_embedded_weights(Graph **gs, int n, const char *path, const char *prefix) {
  const void ***data = NEW_ARRAY(const void **, n);
  weight_ctxs = NEW_ARRAY(attnrt_ctx *, n);
  atexit(free_weight_ctxs);
  for (int gi = 0; gi < n; gi++) {
    const Model *m = gs[gi]->model;
    attnrt_tensor_desc *pd = NEW_ARRAY(attnrt_tensor_desc, m->nparams + 1);
    for (int i = 0; i < m->nparams; i++) {
      pd[i].name = m->params[i].name;
      pd[i].dtype = ir_param_bf16(gs[gi], i) ? ATTNRT_BF16 : m->params[i].type.dtype == DT_F32 ? ATTNRT_F32 : ATTNRT_I32;
      pd[i].rank = m->params[i].type.rank;
      for (int d = 0; d < m->params[i].type.rank; d++) pd[i].dims[d] = m->params[i].type.dims[d].size;
    }
    attnrt_model_desc *desc = NEW(attnrt_model_desc);
    desc->abi_version = ATTNRT_ABI_VERSION;
    desc->name = m->name;
    desc->n_params = m->nparams;
    desc->params = pd;
    desc->body = never_called;
    attnrt_ctx *ctx = attnrt_ctx_new(desc);
    if (!ctx) fatal("out of memory");
    weight_ctxs[n_weight_ctxs++] = ctx;
    load_weights_or_exit(ctx, path, prefix);
    data[gi] = NEW_ARRAY(const void *, m->nparams + 1);
    for (int i = 0; i < m->nparams; i++) data[gi][i] = attnrt_ctx_param_data(ctx, i);
  }
  return data;
}

/* ---- --run ------------------------------------------------------------- */
static const char *tensor_shape_str(const attnrt_tensor *t) {
  char *s = arena_printf("%s[", t->dtype == ATTNRT_F32 ? "f32" : "i32");
  for (int i = 0; i < t->rank; i++) s = arena_printf("%s%s%lld", s, i ? ", " : "", (long long)t->dims[i]);
  return arena_printf("%s]", s);
}

static const char *name_list(const attnrt_tensor_desc *d, int64_t n) {
  char *s = "";
  for (int64_t i = 0; i < n; i++) s = arena_printf("%s%s%s", s, i ? ", " : "", d[i].name);
  return n ? s : "(none)";
}

/* What --run allocates outside the arena; freed at exit, also when an
 * error ends the run early. */
static struct RunState {
  attnrt_ctx *ctx;
  attnrt_tensor *in, *out;
  int64_t nin, nout;
} run_state;

static void run_cleanup(void) {
  struct RunState *r = &run_state;
  for (int64_t k = 0; k < r->nout; k++) free(r->out[k].data);
  for (int64_t k = 0; k < r->nin; k++) attnrt_tensor_free(&r->in[k]);
  attnrt_ctx_free(r->ctx);
  memset(r, 0, sizeof *r);
}

static int run_model(Jit *jit, const Graph *g, const Options *o) {
  atexit(run_cleanup);
  struct RunState *rs = &run_state;
  const attnrt_model_desc *desc = jit_lookup(jit, arena_printf("%s%s_model", o->prefix ? o->prefix : "", g->model->name));
  char err[512];
  for (int i = 0; i < o->ninputs; i++) {
    bool found = false;
    for (int64_t k = 0; k < desc->n_inputs; k++) found |= !strcmp(desc->inputs[k].name, o->inputs[i].name);
    if (!found)
      fatal("model `%s` has no input `%s`; its inputs are %s", desc->name, o->inputs[i].name,
            name_list(desc->inputs, desc->n_inputs));
  }
  for (int i = 0; i < o->noutputs; i++) {
    bool found = false;
    for (int64_t k = 0; k < desc->n_outputs; k++) found |= !strcmp(desc->outputs[k].name, o->outputs[i].name);
    if (!found)
      fatal("model `%s` has no output `%s`; its outputs are %s", desc->name, o->outputs[i].name,
            name_list(desc->outputs, desc->n_outputs));
  }
  attnrt_ctx *ctx = rs->ctx = attnrt_ctx_new(desc);
  if (!ctx) fatal("out of memory");
  if (attnrt_ctx_set_threads(ctx, o->threads) != ATTNRT_OK) fatal("%s", attnrt_ctx_error(ctx));
  if (o->weights) {
    load_weights_or_exit(ctx, o->weights, o->weights_prefix);
  } else if (desc->n_params > 0 && !desc->embedded) {
    fatal("model `%s` has %lld params (%s): give them with --weights FILE.safetensors", desc->name,
          (long long)desc->n_params, name_list(desc->params, desc->n_params));
  }
  attnrt_tensor *in = rs->in = NEW_ARRAY(attnrt_tensor, desc->n_inputs + 1);
  void **in_ptrs = NEW_ARRAY(void *, desc->n_inputs + 1);
  for (int64_t k = 0; k < desc->n_inputs; k++) {
    const char *path = NULL;
    for (int i = 0; i < o->ninputs; i++)
      if (!strcmp(desc->inputs[k].name, o->inputs[i].name)) path = o->inputs[i].path;
    if (!path) fatal("model `%s` needs input `%s`: give it with --input %s=FILE.npy", desc->name, desc->inputs[k].name,
                     desc->inputs[k].name);
    const char *from;
    if (attnrt_npy_read_as(path, (int)desc->inputs[k].dtype, desc->inputs[k].name, &from, &in[k], err, sizeof err) !=
        ATTNRT_OK)
      fatal("input `%s`: %s", desc->inputs[k].name, err);
    if (from)
      fprintf(stderr, "attnc: note: input `%s`: converted %s to %s\n", desc->inputs[k].name, from,
              in[k].dtype == ATTNRT_F32 ? "f32" : "i32");
    rs->nin = k + 1;
    in_ptrs[k] = in[k].data;
  }
  int64_t dims[MAX_SYMS + 1] = {0};
  if (attnrt_bind_dims(ctx, in, dims) != ATTNRT_OK) fatal("%s", attnrt_ctx_error(ctx));
  attnrt_tensor *out = rs->out = NEW_ARRAY(attnrt_tensor, desc->n_outputs + 1);
  void **out_ptrs = NEW_ARRAY(void *, desc->n_outputs + 1);
  for (int64_t k = 0; k < desc->n_outputs; k++) {
    if (attnrt_output_shape(desc, (int)k, dims, &out[k]) != ATTNRT_OK) fatal("output `%s` is too large", desc->outputs[k].name);
    int64_t numel = attnrt_tensor_numel(&out[k]);
    out[k].data = numel >= 0 && (uint64_t)numel < ((uint64_t)1 << 40) ? calloc((size_t)(numel ? numel : 1), 4) : NULL;
    rs->nout = k + 1;
    if (!out[k].data) fatal("cannot allocate output `%s` (%s)", desc->outputs[k].name, tensor_shape_str(&out[k]));
    out_ptrs[k] = out[k].data;
  }
  attnrt_status st = attnrt_run(ctx, in_ptrs, out_ptrs, dims);
  if (st != ATTNRT_OK) fatal("%s", attnrt_ctx_error(ctx));
  for (int64_t k = 0; k < desc->n_outputs; k++) {
    const char *path = NULL;
    for (int i = 0; i < o->noutputs; i++)
      if (!strcmp(desc->outputs[k].name, o->outputs[i].name)) path = o->outputs[i].path;
    if (path) {
      if (attnrt_npy_write(path, &out[k], err, sizeof err) != ATTNRT_OK) fatal("output `%s`: %s", desc->outputs[k].name, err);
    } else if (!o->noutputs) {
      int64_t numel = attnrt_tensor_numel(&out[k]);
      printf("%s: %s = [", desc->outputs[k].name, tensor_shape_str(&out[k]));
      for (int64_t i = 0; i < numel && i < 8; i++) printf("%s%.6g", i ? ", " : "", ((float *)out[k].data)[i]);
      printf("%s]\n", numel > 8 ? ", ..." : "");
    }
  }
  return 0;
}

/* -v: the time since the last phase ended, on stderr. */
static void phase_done(const Options *o, const char *what) {
  static double last;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  double t = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
  if (o->verbose && what) fprintf(stderr, "attnc: %-34s %8.1f ms\n", what, 1e3 * (t - last));
  last = t;
}

static void print_parts(const SplitStats *st, int jobs) {
  if (st->nparts == 1) fprintf(stderr, "attnc:   in 1 part (-j%d)\n", jobs);
  else fprintf(stderr, "attnc:   in %d parts (-j%d), side by side:\n", st->nparts, jobs);
  for (int q = 0; q < st->nparts; q++)
    fprintf(stderr, "attnc:     part %d: %3d functions, %6ld instructions, %8.1f ms\n", q, st->funcs[q], st->instrs[q],
            1e3 * st->seconds[q]);
}

/* --cpu A,B,...: one object for several CPUs (cpus.c). */
static int compile_for_cpus(Graph **graphs, int ng, const Options *o) {
  CpuVariant v[MAX_CPUS];
  int n = cpu_variants(o->cpu, o->triple, o->opt_level, v);
  phase_done(o, "target machines");
  CodegenOptions cgo = {.module_name = o->input, .threads = o->threads, .prefix = o->prefix};
  if (o->weights) cgo.embedded = load_embedded_weights(graphs, ng, o->weights, o->weights_prefix);
  size_t len;
  SplitStats st[MAX_CPUS + 1];
  char *bytes = compile_cpus(graphs, ng, &cgo, v, n, o->jobs, &len, st);
  phase_done(o, "generate and compile, per CPU");
  for (int i = 0; o->verbose && i <= n; i++) {
    if (i < n) fprintf(stderr, "attnc:   %s (%s, %d-lane vectors):\n", v[i].name, v[i].t.cpu_s, v[i].t.f32_lanes);
    else fprintf(stderr, "attnc:   the dispatch code (x86-64):\n");
    print_parts(&st[i], i < n ? o->jobs : 1);
  }
  write_object(graphs, ng, o, bytes, len);
  phase_done(o, "header and write");
  return 0;
}

int main(int argc, char **argv) {
  atexit(arena_free_all);
  Options o = parse_args(argc, argv);
  check_output_collisions(&o);
  if (!o.check && !o.emit_ir && !o.emit_dot && !o.emit_llvm && !o.emit_asm && !o.run && !o.bench && o.output &&
      !strcmp(o.output, "-") && isatty(STDOUT_FILENO))
    usage_error("refusing to write an object file to a terminal (-o -); redirect stdout or name a file");
  phase_done(&o, NULL);
  Source *src = read_source(o.input);
  Program *prog = parse_program(src);
  check_program(prog);
  phase_done(&o, "parse and check");
  int ng;
  Graph **graphs = lower_program(prog, o.model, &ng);
  phase_done(&o, "lower to graphs");
  /* --weights with --check or --emit-ir: the file is checked against every
   * param, as compiling with it would. */
  if (o.weights && (o.check || o.emit_ir || o.emit_dot)) load_embedded_weights(graphs, ng, o.weights, o.weights_prefix);
  if (o.check) return 0;   /* lowering has its own checks (names reserved in C) */
  if (o.remarks && o.no_fuse) fprintf(stderr, "attnc: note: --remarks: fusion is off (--no-fuse), so nothing is fused\n");
  optimize_graphs(graphs, ng, &o);
  phase_done(&o, "optimize graphs");
  if ((o.run || o.bench) && !o.model && !o.emit_ir && !o.emit_dot) ng = 1;   /* the first model */
  plan_all(graphs, ng);
  phase_done(&o, "plan memory");
  if (o.emit_ir || o.emit_dot) {   /* with the plan's stacked caches */
    print_ir(graphs, ng, o.output, o.emit_dot);
    return 0;
  }
  if (o.cpu_list) return compile_for_cpus(graphs, ng, &o);
  Target target = {.triple = o.triple, .cpu = o.cpu, .opt_level = o.opt_level};
  target_init(&target);
  phase_done(&o, "target machine");
  bool jit = o.run || o.bench;
  LLVMContextRef C = jit ? jit_context() : LLVMContextCreate();
  CodegenOptions cgo = {.module_name = o.input, .cpu = target.cpu_s, .features = target.features_s, .threads = o.threads,
                        .lanes = target.f32_lanes, .bf16_dot = target.bf16_dot, .prefix = o.prefix};
  if (o.weights && !jit) cgo.embedded = load_embedded_weights(graphs, ng, o.weights, o.weights_prefix);
  LLVMModuleRef mod = codegen(C, graphs, ng, &cgo);
  emit_own(C, mod);
  phase_done(&o, "LLVM IR");
  if (!jit && !o.emit_llvm && !o.emit_asm) {
    /* Embedded weights would be copied into every part: one part then. */
    int jobs = cgo.embedded ? 1 : o.jobs;
    size_t len;
    SplitStats st;
    char *bytes = compile_object(mod, &target, jobs, &len, &st);
    phase_done(&o, "optimize and compile the object");
    if (o.verbose) print_parts(&st, jobs);
    write_object(graphs, ng, &o, bytes, len);
    phase_done(&o, "header and write");
    return 0;
  }
  optimize_module(mod, &target);
  phase_done(&o, "optimize LLVM IR");
  if (o.run) return run_model(jit_create(mod, C, &target), graphs[0], &o);
  if (o.bench) {
    Jit *j = jit_create(mod, C, &target);
    const attnrt_model_desc *desc = jit_lookup(j, arena_printf("%s%s_model", o.prefix ? o.prefix : "", graphs[0]->model->name));
    BenchOptions bo = {.dims = o.dims, .ndims = o.ndims, .inputs = o.inputs, .ninputs = o.ninputs,
                       .threads = o.threads, .weights = o.weights,
                       .weights_prefix = o.weights_prefix,
                       .fused = !o.no_fuse, .min_reps = 5, .min_seconds = 1.0,
                       .cpu_note = arena_printf(", cpu %s, %d-lane vectors", target.cpu_s, target.f32_lanes)};
    return bench_model(desc, graphs[0], &bo);
  }
  write_module(mod, &target, o.emit_llvm ? OUT_LLVM : OUT_ASM, o.output ? o.output : "-");
  return 0;
}
