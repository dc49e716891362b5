/* elfjoin: elf_merge (compiler/elfmerge.c) as a command, for its tests.
 *   elfjoin OUT.o [-l NAME]... IN.o...
 * joins the objects IN.o into OUT.o; each -l NAME makes the global symbol
 * NAME local in OUT.o.  Exit 1 with a message when they cannot be joined
 * (and OUT.o is not written), 2 on bad usage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "split.h"

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *buf = NULL;
  size_t cap = 0, n = 0, got;
  do {
    if (n == cap) {
      cap = cap ? 2 * cap : 65536;
      char *nb = arena_alloc(cap);
      if (n) memcpy(nb, buf, n);
      buf = nb;
    }
    got = fread(buf + n, 1, cap - n, f);
    n += got;
  } while (got > 0);
  fclose(f);
  *len = n;
  return buf;
}

int main(int argc, char **argv) {
  atexit(arena_free_all);
  if (argc < 3) {
    fprintf(stderr, "usage: elfjoin OUT.o [-l NAME]... IN.o...\n");
    return 2;
  }
  const char **local = NEW_ARRAY(const char *, argc);
  ObjPart *parts = NEW_ARRAY(ObjPart, argc);
  int nlocal = 0, nparts = 0;
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "-l") && i + 1 < argc) {
      local[nlocal++] = argv[++i];
      continue;
    }
    parts[nparts].data = slurp(argv[i], &parts[nparts].len);
    if (!parts[nparts].data) {
      fprintf(stderr, "elfjoin: cannot read %s\n", argv[i]);
      return 1;
    }
    nparts++;
  }
  char *out, err[512];
  size_t len;
  if (!elf_merge(parts, nparts, local, nlocal, &out, &len, err, sizeof err)) {
    fprintf(stderr, "elfjoin: %s\n", err);
    return 1;
  }
  if (!write_file_atomic(argv[1], out, len)) {
    fprintf(stderr, "elfjoin: cannot write %s\n", argv[1]);
    return 1;
  }
  return 0;
}
