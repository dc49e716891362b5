/* tagger.c: run examples/tagger.attn (token ids in, per-token scores out:
 * an embedding plus positional encoding, a GRU, additive attention) on
 * weights exported from PyTorch.
 *
 *   attnc tagger.attn -o tagger.o            # writes tagger.o and tagger.h
 *   cc tagger.c tagger.o -lattnrt -lm -lpthread -o tagger
 *   ./tagger [WEIGHTS [REFERENCE]]
 *
 * WEIGHTS (default examples/weights/tagger.safetensors) is the state_dict
 * of a torch module with a parameter w [128, 9] and the submodules emb =
 * nn.Embedding(5000, 128), gru = nn.GRU(128, 128) and att (an additive
 * attention with parameters wq, wk, v; see examples/export_weights.py).
 * With REFERENCE (examples/weights/tagger.ref.safetensors), the output is
 * compared with PyTorch's for the same ids.  An id out of range is refused
 * with a message. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "reference.h"
#include "tagger.h"

enum { T = 10, VOCAB = 5000, TAGS = 9 };

int main(int argc, char **argv) {
  const char *weights = argc > 1 ? argv[1] : "examples/weights/tagger.safetensors";
  static int32_t ids[T];
  static float tags[T * TAGS];
  unsigned state = 3;                 /* the same LCG as the other examples */
  for (int i = 0; i < T; i++) {
    state = state * 1664525u + 1013904223u;
    ids[i] = (int32_t)((state >> 8) % VOCAB);
  }

  attnrt_ctx *ctx = attnrt_ctx_new(&tagger_model);
  if (!ctx) return 1;
  attnrt_status st = attnrt_ctx_load_weights(ctx, weights);
  if (st == ATTNRT_OK) st = tagger(ctx, ids, tags, T);    /* dims: T */
  if (st != ATTNRT_OK) {
    fprintf(stderr, "tagger: %s: %s\n", attnrt_status_str(st), attnrt_ctx_error(ctx));
    attnrt_ctx_free(ctx);
    return 1;
  }
  printf("tagger: %d token ids -> %d scores each; the best tag of each token:\n", T, TAGS);
  for (int t = 0; t < T; t++) {
    int best = 0;
    for (int j = 1; j < TAGS; j++)
      if (tags[t * TAGS + j] > tags[t * TAGS + best]) best = j;
    printf("  id %4d -> tag %d  (scores %8.5f %8.5f %8.5f ...)\n", (int)ids[t], best,
           tags[t * TAGS], tags[t * TAGS + 1], tags[t * TAGS + 2]);
  }

  int bad = 0;
  if (argc > 2) {
    attnrt_safetensors *ref = reference_open(argv[2]);
    if (!ref) bad = 1;
    else {
      bad |= reference_check(ref, "ids", ATTNRT_I32, ids, T, 0, 0);
      bad |= reference_check(ref, "tags", ATTNRT_F32, tags, T * TAGS, 1e-4, 1e-4);
      attnrt_st_close(ref);
    }
  }

  /* Bad input at the boundary is an error status with a message. */
  int32_t saved = ids[4];
  ids[4] = VOCAB;
  st = tagger(ctx, ids, tags, T);
  printf("  with an id of %d: status %d (%s): %s\n", VOCAB, st, attnrt_status_str(st),
         attnrt_ctx_error(ctx));
  ids[4] = saved;
  if (st == ATTNRT_OK) bad = 1;
  attnrt_ctx_free(ctx);
  return bad;
}
