/* fuzz_frontend.c: bytes -> lexer, parser, checker, lowering to the graph
 * IR (which ir_verify checks).  Every input must end in a diagnostic or a
 * verified graph.
 *
 * user_error and fatal() end in the exit hook, which jumps back here
 * instead of exiting; everything the front end allocated is in the arena,
 * freed after each input.  Diagnostics are printed to /dev/null: printing
 * them (the source line and the caret) is part of what must not crash. */
#include <setjmp.h>

#include "fuzz.h"
#include "ir.h"

static jmp_buf on_error;

static _Noreturn void back_to_target(void) { longjmp(on_error, 1); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  diag_set_exit_hook(back_to_target);
  diag_set_stream(fuzz_devnull());
  if (setjmp(on_error) == 0) {
    Source *src = source_from_bytes("fuzz.attn", (const char *)data, size);
    diag_set_source(src);
    Program *prog = parse_program(src);
    check_program(prog);
    for (Model *m = prog->models; m; m = m->next) lower_model(m);
  }
  diag_set_source(NULL);
  arena_free_all();
  return 0;
}
