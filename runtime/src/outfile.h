/* outfile.h: output files written whole or not at all (outfile.c).  Shared
 * by the runtime's npy writer and by attnc, which links libattnrt; not
 * part of the public header. */
#ifndef ATTNRT_OUTFILE_H
#define ATTNRT_OUTFILE_H

#include "internal.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct attnrt_outfile {
  const char *path;   /* as the caller named it: messages use it */
  const char *dest;   /* what the rename replaces (a link's target) */
  char *resolved;     /* owned: a symbolic link's target */
  char *tmp;          /* owned: the temporary file, NULL when in place */
  int fd;
  bool in_place;      /* a device, FIFO or socket: written directly */
} attnrt_outfile;

/* Opens path for writing (see outfile.c for what each kind of file gets).
 * On failure the message names path and nothing is left behind. */
attnrt_status attnrt_out_open(attnrt_outfile *f, const char *path, char *err, size_t errlen);
/* Appends; on failure the file is aborted. */
attnrt_status attnrt_out_write(attnrt_outfile *f, const void *data, size_t n, char *err, size_t errlen);
/* Closes and renames into place; on failure the file is aborted. */
attnrt_status attnrt_out_commit(attnrt_outfile *f, char *err, size_t errlen);
/* Closes and removes the temporary file; safe to call twice. */
void attnrt_out_abort(attnrt_outfile *f);

/* Both paths name the same file: the same device and inode where both
 * exist, else the same directory (resolved) and the same last component.
 * Character devices (/dev/null) are never "the same" as anything: writing
 * two outputs there is harmless. */
bool attnrt_same_file(const char *a, const char *b);

#endif
