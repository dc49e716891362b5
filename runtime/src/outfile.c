/* outfile.c: writing an output file the way a careful tool does, for
 * attnrt_npy_write and for every file attnc writes (object, header, IR).
 *
 * A regular file (or a name that does not exist yet) is written to a
 * temporary file in the same directory and renamed over the destination
 * only when everything was written: a failure leaves the old file, or no
 * file, never half of one.  A symbolic link is followed: its target is
 * replaced, the link stays.  A character or block device, a FIFO or a
 * socket is written in place (`-o /dev/null` discards, as with cc); a
 * directory is refused.
 *
 * Files are opened in two steps (attnrt_out_open, then attnrt_out_commit or
 * attnrt_out_abort) so that a program writing several outputs can create all
 * of them before it renames any: both or neither. */
#define _XOPEN_SOURCE 700
#include "outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The process umask, read without changing it: umask(2) can only be read by
 * setting it, which races with other threads creating files. */
static mode_t current_umask(void) {
  FILE *f = fopen("/proc/self/status", "re");
  mode_t mask = 022;
  if (f == NULL)
    return mask;
  char line[256];
  while (fgets(line, sizeof line, f) != NULL) {
    unsigned int m;
    if (sscanf(line, "Umask: %o", &m) == 1) {
      mask = (mode_t)(m & 0777);
      break;
    }
  }
  fclose(f);
  return mask;
}

static attnrt_status fail(attnrt_outfile *f, const char *what, int e, char *err, size_t errlen) {
  char ebuf[128];
  attnrt_errf(err, errlen, "cannot %s %s: %s", what, f->path, attnrt_errno_str(e, ebuf, sizeof ebuf));
  attnrt_out_abort(f);
  return ATTNRT_E_IO;
}

/* The temporary file is named .attnc-XXXXXX in the destination's directory,
 * so that a destination name near NAME_MAX still gets one (a suffix on the
 * name itself would pass the limit). */
static char *temp_name(const char *dest) {
  const char *slash = strrchr(dest, '/');
  size_t dlen = slash != NULL ? (size_t)(slash - dest) + 1 : 0;
  static const char base[] = ".attnc-XXXXXX";
  char *t = malloc(dlen + sizeof base);
  if (t != NULL) {
    memcpy(t, dest, dlen);
    memcpy(t + dlen, base, sizeof base);
  }
  return t;
}

attnrt_status attnrt_out_open(attnrt_outfile *f, const char *path, char *err, size_t errlen) {
  memset(f, 0, sizeof *f);
  f->fd = -1;
  f->path = path;
  if (path == NULL || path[0] == '\0') {
    attnrt_errf(err, errlen, "cannot write a file with an empty name");
    return ATTNRT_E_ARG;
  }
  struct stat st;
  const char *dest = path;
  if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
    f->resolved = realpath(path, NULL);
    if (f->resolved == NULL) {
      /* A dangling link: writing through it creates its target, in place,
       * as any program opening the link for writing would. */
      f->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0666);
      if (f->fd < 0)
        return fail(f, "write", errno, err, errlen);
      f->in_place = true;
      return ATTNRT_OK;
    }
    dest = f->resolved;
  }
  if (stat(dest, &st) == 0) {
    if (S_ISDIR(st.st_mode))
      return fail(f, "write", EISDIR, err, errlen);
    if (!S_ISREG(st.st_mode)) {
      /* A device, FIFO or socket: no rename could ever replace it. */
      f->fd = open(dest, O_WRONLY | O_CLOEXEC | O_NOCTTY);
      if (f->fd < 0)
        return fail(f, "write", errno, err, errlen);
      f->in_place = true;
      return ATTNRT_OK;
    }
  } else if (errno != ENOENT) {
    return fail(f, "write", errno, err, errlen);
  }
  f->dest = dest;
  f->tmp = temp_name(dest);
  if (f->tmp == NULL)
    return fail(f, "write", ENOMEM, err, errlen);
  f->fd = mkstemp(f->tmp);
  if (f->fd < 0) {
    int e = errno;
    free(f->tmp);
    f->tmp = NULL;
    return fail(f, "write", e, err, errlen);
  }
  /* mkstemp makes the file 0600; an output gets the usual permissions. */
  if (fchmod(f->fd, 0666 & ~current_umask()) != 0)
    return fail(f, "write", errno, err, errlen);
  return ATTNRT_OK;
}

attnrt_status attnrt_out_write(attnrt_outfile *f, const void *data, size_t n, char *err, size_t errlen) {
  const unsigned char *p = data;
  while (n > 0) {
    ssize_t w = write(f->fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return fail(f, "write", w < 0 ? errno : EIO, err, errlen);
    p += w;
    n -= (size_t)w;
  }
  return ATTNRT_OK;
}

attnrt_status attnrt_out_commit(attnrt_outfile *f, char *err, size_t errlen) {
  if (f->in_place) {
    int fd = f->fd;
    f->fd = -1;
    if (close(fd) != 0)
      return fail(f, "write", errno, err, errlen);
    attnrt_out_abort(f);
    return ATTNRT_OK;
  }
  /* Flushed before the rename, so a crash never leaves a short file under
   * the final name. */
  int fd = f->fd;
  f->fd = -1;
  int ok = fsync(fd) == 0;
  int e = errno;
  if (close(fd) != 0 && ok) {
    ok = 0;
    e = errno;
  }
  if (!ok)
    return fail(f, "write", e, err, errlen);
  if (rename(f->tmp, f->dest) != 0)
    return fail(f, "write", errno, err, errlen);
  free(f->tmp);
  f->tmp = NULL;
  attnrt_out_abort(f);
  return ATTNRT_OK;
}

void attnrt_out_abort(attnrt_outfile *f) {
  if (f->fd >= 0)
    close(f->fd);
  f->fd = -1;
  if (f->tmp != NULL)
    unlink(f->tmp);
  free(f->tmp);
  f->tmp = NULL;
  free(f->resolved);
  f->resolved = NULL;
}

/* realpath of the directory part, then the last component; NULL when the
 * directory does not resolve. */
static char *canonical(const char *p) {
  const char *slash = strrchr(p, '/');
  char *dir = slash == NULL ? strdup(".") : slash == p ? strdup("/") : strndup(p, (size_t)(slash - p));
  if (dir == NULL)
    return NULL;
  char *rdir = realpath(dir, NULL);
  free(dir);
  if (rdir == NULL)
    return NULL;
  const char *base = slash != NULL ? slash + 1 : p;
  size_t n = strlen(rdir) + strlen(base) + 2;
  char *c = malloc(n);
  if (c != NULL)
    snprintf(c, n, "%s/%s", rdir, base);
  free(rdir);
  return c;
}

bool attnrt_same_file(const char *a, const char *b) {
  struct stat sa, sb;
  int ea = stat(a, &sa), eb = stat(b, &sb);
  if (ea == 0 && eb == 0)
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino && !S_ISCHR(sa.st_mode);
  if (ea == 0 || eb == 0)
    return false;
  char *ca = canonical(a), *cb = canonical(b);
  bool same = ca != NULL && cb != NULL && strcmp(ca, cb) == 0;
  free(ca);
  free(cb);
  return same;
}
