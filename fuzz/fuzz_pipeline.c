/* fuzz_pipeline.c: bytes -> the whole compiler short of emitting code:
 * parse, check, lower, the optimization passes (as compiler/main.c runs
 * them, with ir_verify after each, as in Debug builds), --emit-ir and
 * --emit-dot printing, the memory plan, the C header, LLVM code
 * generation and LLVMVerifyModule, and the split of the module into the
 * parts attnc -j compiles on threads (split_check).  Each input is compiled twice, with
 * the fusion passes and without (--no-fuse).
 *
 * Code generation costs milliseconds per operation, so inputs above 8 KiB
 * are skipped: the front end target covers long inputs, and the limits
 * (MAX_OPS) bound what a long one can ask of code generation.  Errors
 * come back through the exit hook as in fuzz_frontend.c; an LLVM context
 * left behind by one is disposed of here. */
#include <setjmp.h>
#include <string.h>

#include <llvm-c/Analysis.h>

#include "codegen.h"
#include "fuzz.h"
#include "split.h"

#define MAX_INPUT 8192

static jmp_buf on_error;
static LLVMContextRef live_ctx;   /* disposed of after an error too */

static _Noreturn void back_to_target(void) { longjmp(on_error, 1); }

/* compiler/main.c's optimize_graphs, verifying after every pass. */
static void optimize(Graph *g, bool fuse) {
  pass_fold_constants(g);
  ir_verify(g, "fold_constants");
  pass_dce(g);
  ir_verify(g, "dce");
  if (!fuse) return;
  pass_fuse_attention(g, true);
  ir_verify(g, "fuse_attention");
  pass_fuse_layernorm(g);
  ir_verify(g, "fuse_layernorm");
  pass_fuse_elementwise(g);
  ir_verify(g, "fuse_elementwise");
  pass_dce(g);
  ir_verify(g, "dce");
}

static void compile(const Program *prog, bool fuse) {
  int n = 0;
  for (Model *m = prog->models; m; m = m->next) n++;
  Graph **gs = NEW_ARRAY(Graph *, n + 1);
  n = 0;
  for (Model *m = prog->models; m; m = m->next) gs[n++] = lower_model(m);
  for (int i = 0; i < n; i++) optimize(gs[i], fuse);
  FILE *null = fuzz_devnull();
  for (int i = 0; i < n; i++) ir_print(null, gs[i]);
  ir_print_dot(null, gs, n);
  for (int i = 0; i < n; i++) plan_memory(gs[i]);
  char *h = header_text(gs, n, "fuzz.attn", "ATTNC_FUZZ_H_", false, NULL);
  FUZZ_CHECK(h && strstr(h, "ATTNC_FUZZ_H_"));
  live_ctx = LLVMContextCreate();
  CodegenOptions opt = {.module_name = "fuzz.attn", .cpu = "", .features = "", .threads = 1};
  LLVMModuleRef mod = codegen(live_ctx, gs, n, &opt);
  char *msg = NULL;
  if (LLVMVerifyModule(mod, LLVMReturnStatusAction, &msg)) {
    fprintf(stderr, "%s\n", msg);
    FUZZ_CHECK(!"the generated module verifies");
  }
  LLVMDisposeMessage(msg);
  /* attnc -j3's split of the module into parts, each checked */
  int parts = split_check(mod, 3);
  FUZZ_CHECK(parts >= 1 && parts <= 3);
  if (getenv("FUZZ_VERBOSE"))
    fprintf(stderr, "fuzz_pipeline: %d models, %s, %zu bytes of header: module verified, %d parts checked\n", n,
            fuse ? "fused" : "unfused", strlen(h), parts);
  LLVMDisposeModule(mod);
  LLVMContextDispose(live_ctx);
  live_ctx = NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > MAX_INPUT) return 0;
  diag_set_exit_hook(back_to_target);
  diag_set_stream(fuzz_devnull());
  if (setjmp(on_error) == 0) {
    Source *src = source_from_bytes("fuzz.attn", (const char *)data, size);
    diag_set_source(src);
    Program *prog = parse_program(src);
    check_program(prog);
    compile(prog, true);
    compile(prog, false);
  }
  if (live_ctx) LLVMContextDispose(live_ctx);
  live_ctx = NULL;
  diag_set_source(NULL);
  arena_free_all();
  return 0;
}
