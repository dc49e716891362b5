/* safetensors.c: map a safetensors file and check every entry.
 *
 * Layout: an 8-byte little-endian header length N, N bytes of JSON
 *   {"name": {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}, ...,
 *    "__metadata__": {"key": "value", ...}}
 * then the data region; offsets are relative to its start.
 *
 * The file may be hostile, so the JSON parser accepts exactly this schema
 * and nothing else: it never recurses (the schema has a fixed depth of
 * three), every read is checked against the header length, and every
 * offset and size is checked with overflow-safe arithmetic before a data
 * pointer is formed.  (As with any mapping, a file truncated by another
 * process while it is mapped faults on access; weights files are expected
 * to be replaced by rename, not rewritten in place.) */
#define _POSIX_C_SOURCE 200809L
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define HEADER_MAX (UINT64_C(100) << 20)
/* Shapes of dtypes the runtime cannot use are still checked against their
 * byte ranges; no real tensor has more dims than this. */
#define SHAPE_RANK_MAX 64
#define DTYPE_LEN_MAX 16

typedef struct st_entry {
  const char *name;          /* in the arena */
  const char *dtype_str;     /* in the arena, as in the file */
  attnrt_st_kind kind;
  int rank;                  /* of the shape as written */
  int64_t dims[ATTNRT_MAX_RANK];
  int64_t numel;
  int64_t begin, end;
  void *data;                /* into the mapping, or owned (see owned) */
  bool owned;
} st_entry;

typedef struct name_ref {
  const char *name;
  int index;
} name_ref;

struct attnrt_safetensors {
  void *map;
  size_t map_len;
  char *arena;               /* every unescaped string of the header */
  st_entry *entries;         /* in file order */
  int count, cap;
  name_ref *sorted;          /* entries by name, for lookup */
};

/* ---- the JSON subset ---------------------------------------------------- */

typedef struct parser {
  const unsigned char *s;
  size_t len, pos;
  char *arena;
  size_t arena_pos, arena_cap;
  const char *path;
  char *err;
  size_t errlen;
} parser;

static bool fail_at(parser *p, const char *what) {
  /* Report a file offset: it is what a hex dump of the file shows. */
  attnrt_errf(p->err, p->errlen, "%s: bad safetensors header at byte %zu: %s",
            p->path, p->pos + 8, what);
  return false;
}

static void skip_ws(parser *p) {
  while (p->pos < p->len) {
    unsigned char c = p->s[p->pos];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
      break;
    p->pos++;
  }
}

static int peek(parser *p) {
  skip_ws(p);
  return p->pos < p->len ? p->s[p->pos] : -1;
}

static bool expect(parser *p, char c) {
  if (peek(p) == (unsigned char)c) {
    p->pos++;
    return true;
  }
  char msg[64];
  snprintf(msg, sizeof msg, "%s, expected '%c'",
           p->pos >= p->len ? "unexpected end of header" : "unexpected character", c);
  return fail_at(p, msg);
}

static attnrt_status format_error(parser *p, const char *what) {
  fail_at(p, what);
  return ATTNRT_E_FORMAT;
}

static bool arena_put(parser *p, const unsigned char *bytes, size_t n) {
  if (n > p->arena_cap - p->arena_pos)
    return fail_at(p, "string too long"); /* cannot happen: arena >= header */
  memcpy(p->arena + p->arena_pos, bytes, n);
  p->arena_pos += n;
  return true;
}

static int hex_value(unsigned char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Reads XXXX of a \uXXXX escape at pos (after the "\u"). */
static bool read_hex4(parser *p, uint32_t *out) {
  if (p->len - p->pos < 4)
    return fail_at(p, "truncated \\u escape");
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) {
    int h = hex_value(p->s[p->pos + i]);
    if (h < 0)
      return fail_at(p, "bad hex digit in \\u escape");
    v = v * 16 + (uint32_t)h;
  }
  p->pos += 4;
  *out = v;
  return true;
}

static bool put_utf8(parser *p, uint32_t cp) {
  unsigned char b[4];
  size_t n;
  if (cp < 0x80) {
    b[0] = (unsigned char)cp;
    n = 1;
  } else if (cp < 0x800) {
    b[0] = (unsigned char)(0xC0 | (cp >> 6));
    b[1] = (unsigned char)(0x80 | (cp & 0x3F));
    n = 2;
  } else if (cp < 0x10000) {
    b[0] = (unsigned char)(0xE0 | (cp >> 12));
    b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    b[2] = (unsigned char)(0x80 | (cp & 0x3F));
    n = 3;
  } else {
    b[0] = (unsigned char)(0xF0 | (cp >> 18));
    b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    b[3] = (unsigned char)(0x80 | (cp & 0x3F));
    n = 4;
  }
  return arena_put(p, b, n);
}

/* After the backslash and 'u': one code point, joining a surrogate pair. */
static bool unicode_escape(parser *p) {
  uint32_t hi;
  if (!read_hex4(p, &hi))
    return false;
  if (hi >= 0xDC00 && hi <= 0xDFFF)
    return fail_at(p, "unpaired low surrogate in \\u escape");
  if (hi < 0xD800 || hi > 0xDBFF)
    return put_utf8(p, hi);
  if (p->len - p->pos < 2 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u')
    return fail_at(p, "unpaired high surrogate in \\u escape");
  p->pos += 2;
  uint32_t lo;
  if (!read_hex4(p, &lo))
    return false;
  if (lo < 0xDC00 || lo > 0xDFFF)
    return fail_at(p, "unpaired high surrogate in \\u escape");
  return put_utf8(p, 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00));
}

static bool escape(parser *p) {
  if (p->pos >= p->len)
    return fail_at(p, "unterminated string");
  unsigned char c = p->s[p->pos++];
  unsigned char out;
  switch (c) {
  case '"': out = '"'; break;
  case '\\': out = '\\'; break;
  case '/': out = '/'; break;
  case 'b': out = '\b'; break;
  case 'f': out = '\f'; break;
  case 'n': out = '\n'; break;
  case 'r': out = '\r'; break;
  case 't': out = '\t'; break;
  case 'u': return unicode_escape(p);
  default: p->pos--; return fail_at(p, "bad escape in string");
  }
  return arena_put(p, &out, 1);
}

/* Length of the well-formed UTF-8 sequence at s (n bytes available), or 0:
 * no overlong forms, no surrogates, nothing above U+10FFFF. */
static size_t utf8_len(const unsigned char *s, size_t n) {
  unsigned char c = s[0];
  size_t len;
  uint32_t min, cp;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2; min = 0x80; cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3; min = 0x800; cp = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4; min = 0x10000; cp = c & 0x07;
  } else {
    return 0;
  }
  if (n < len)
    return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80)
      return 0;
    cp = (cp << 6) | (s[i] & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return len;
}

/* A string into the arena, NUL-terminated; *len excludes the NUL. */
static bool parse_string(parser *p, const char **out, size_t *len) {
  if (!expect(p, '"'))
    return false;
  size_t start = p->arena_pos;
  for (;;) {
    if (p->pos >= p->len)
      return fail_at(p, "unterminated string");
    unsigned char c = p->s[p->pos];
    if (c == '"') {
      p->pos++;
      break;
    }
    if (c < 0x20)
      return fail_at(p, "control character in string");
    if (c == '\\') {
      p->pos++;
      if (!escape(p))
        return false;
      continue;
    }
    size_t n = 1;
    if (c >= 0x80 && (n = utf8_len(p->s + p->pos, p->len - p->pos)) == 0)
      return fail_at(p, "invalid UTF-8 in string");
    if (!arena_put(p, p->s + p->pos, n))
      return false;
    p->pos += n;
  }
  *len = p->arena_pos - start;
  if (!arena_put(p, (const unsigned char *)"", 1))
    return false;
  *out = p->arena + start;
  return true;
}

/* A non-negative JSON integer (the only numbers the schema has). */
static bool parse_uint(parser *p, int64_t *out) {
  int c = peek(p);
  if (c == '-')
    return fail_at(p, "expected a non-negative integer");
  if (c < '0' || c > '9')
    return fail_at(p, "expected an integer");
  int64_t v = 0;
  size_t start = p->pos;
  while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
    int digit = p->s[p->pos] - '0';
    if (v > (INT64_MAX - digit) / 10)
      return fail_at(p, "integer too large");
    v = v * 10 + digit;
    p->pos++;
  }
  if (p->s[start] == '0' && p->pos - start > 1)
    return fail_at(p, "leading zero in integer");
  if (p->pos < p->len && (p->s[p->pos] == '.' || p->s[p->pos] == 'e' || p->s[p->pos] == 'E'))
    return fail_at(p, "expected an integer, not a fraction");
  *out = v;
  return true;
}

/* [n, n, ...] with at most max entries; *count gets how many. */
static bool parse_uint_array(parser *p, int64_t *vals, int max, int *count,
                             const char *too_many) {
  *count = 0;
  if (!expect(p, '['))
    return false;
  if (peek(p) == ']') {
    p->pos++;
    return true;
  }
  for (;;) {
    if (*count == max)
      return fail_at(p, too_many);
    if (!parse_uint(p, &vals[(*count)++]))
      return false;
    int c = peek(p);
    if (c == ']') {
      p->pos++;
      return true;
    }
    if (c != ',')
      return fail_at(p, c < 0 ? "unexpected end of header" : "expected ',' or ']'");
    p->pos++;
  }
}

static bool key_is(const char *key, size_t len, const char *want) {
  return len == strlen(want) && memcmp(key, want, len) == 0;
}

/* After a member's value: true with *more set, or a syntax error. */
static bool next_member(parser *p, bool *more) {
  int c = peek(p);
  if (c == ',') {
    p->pos++;
    *more = true;
    return true;
  }
  if (c == '}') {
    p->pos++;
    *more = false;
    return true;
  }
  return fail_at(p, c < 0 ? "unexpected end of header" : "expected ',' or '}'");
}

/* "__metadata__": an object of string to string; kept only as checked. */
static bool parse_metadata(parser *p) {
  if (!expect(p, '{'))
    return false;
  if (peek(p) == '}') {
    p->pos++;
    return true;
  }
  for (bool more = true; more;) {
    const char *s;
    size_t len;
    if (!parse_string(p, &s, &len) || !expect(p, ':'))
      return false;
    if (peek(p) != '"')
      return fail_at(p, "__metadata__ values must be strings");
    if (!parse_string(p, &s, &len) || !next_member(p, &more))
      return false;
  }
  return true;
}

typedef struct raw_entry {
  const char *dtype;
  int64_t shape[SHAPE_RANK_MAX];
  int rank;
  int64_t offsets[2];
  int n_offsets;
  bool have_dtype, have_shape, have_offsets;
} raw_entry;

static bool entry_field(parser *p, const char *name, const char *key, size_t klen,
                        raw_entry *r) {
  char msg[256];
  bool dup = false;
  if (key_is(key, klen, "dtype")) {
    dup = r->have_dtype;
    r->have_dtype = true;
    size_t len;
    if (!dup && peek(p) != '"')
      return fail_at(p, "dtype must be a string");
    if (!dup && !parse_string(p, &r->dtype, &len))
      return false;
  } else if (key_is(key, klen, "shape")) {
    dup = r->have_shape;
    r->have_shape = true;
    snprintf(msg, sizeof msg, "tensor '%s': shape has more than %d dims", name, SHAPE_RANK_MAX);
    if (!dup && !parse_uint_array(p, r->shape, SHAPE_RANK_MAX, &r->rank, msg))
      return false;
  } else if (key_is(key, klen, "data_offsets")) {
    dup = r->have_offsets;
    r->have_offsets = true;
    snprintf(msg, sizeof msg, "tensor '%s': data_offsets must be [begin, end]", name);
    if (!dup && !parse_uint_array(p, r->offsets, 2, &r->n_offsets, msg))
      return false;
    if (!dup && r->n_offsets != 2)
      return fail_at(p, msg);
  } else {
    snprintf(msg, sizeof msg, "tensor '%s': unknown key '%s'", name, key);
    return fail_at(p, msg);
  }
  if (dup) {
    snprintf(msg, sizeof msg, "tensor '%s': duplicate key '%s'", name, key);
    return fail_at(p, msg);
  }
  return true;
}

static bool parse_entry(parser *p, const char *name, raw_entry *r) {
  memset(r, 0, sizeof *r);
  if (!expect(p, '{'))
    return false;
  bool more = peek(p) != '}';
  if (!more)
    p->pos++;
  while (more) {
    const char *key;
    size_t klen;
    if (!parse_string(p, &key, &klen) || !expect(p, ':') ||
        !entry_field(p, name, key, klen, r) || !next_member(p, &more))
      return false;
  }
  const char *missing = !r->have_dtype ? "dtype" : !r->have_shape ? "shape"
                      : !r->have_offsets ? "data_offsets" : NULL;
  if (missing != NULL) {
    char msg[256];
    snprintf(msg, sizeof msg, "tensor '%s' has no '%s'", name, missing);
    return fail_at(p, msg);
  }
  return true;
}

/* ---- entries ------------------------------------------------------------ */

static int dtype_size(const char *d) {
  static const struct { const char *name; int size; } table[] = {
    {"BOOL", 1}, {"U8", 1}, {"I8", 1}, {"F8_E5M2", 1}, {"F8_E4M3", 1},
    {"F8_E8M0", 1}, {"I16", 2}, {"U16", 2}, {"F16", 2}, {"BF16", 2},
    {"I32", 4}, {"U32", 4}, {"F32", 4}, {"I64", 8}, {"U64", 8}, {"F64", 8},
    {"C64", 8},
  };
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
    if (strcmp(table[i].name, d) == 0)
      return table[i].size;
  return 0; /* a dtype this runtime does not know: its size is not checked */
}

static attnrt_st_kind dtype_kind(const char *d) {
  static const struct { const char *name; attnrt_st_kind kind; } table[] = {
    {"F32", ATTNRT_ST_F32}, {"I32", ATTNRT_ST_I32}, {"F16", ATTNRT_ST_F16},
    {"BF16", ATTNRT_ST_BF16}, {"F64", ATTNRT_ST_F64},
  };
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
    if (strcmp(table[i].name, d) == 0)
      return table[i].kind;
  return ATTNRT_ST_OTHER;
}

static bool dtype_well_formed(const char *d) {
  size_t n = strlen(d);
  if (n == 0 || n > DTYPE_LEN_MAX)
    return false;
  for (size_t i = 0; i < n; i++) {
    char c = d[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
      return false;
  }
  return true;
}

/* Checks one entry against the data region and fills e. */
static attnrt_status make_entry(const char *path, const char *name, const raw_entry *r,
                              int64_t data_len, st_entry *e, char *err, size_t errlen) {
  memset(e, 0, sizeof *e);
  e->name = name;
  e->dtype_str = r->dtype;
  if (!dtype_well_formed(r->dtype)) {
    attnrt_errf(err, errlen, "%s: tensor '%s' has a malformed dtype", path, name);
    return ATTNRT_E_FORMAT;
  }
  e->kind = dtype_kind(r->dtype);
  e->rank = r->rank;
  if ((e->kind == ATTNRT_ST_F32 || e->kind == ATTNRT_ST_I32) && r->rank > ATTNRT_MAX_RANK) {
    attnrt_errf(err, errlen, "%s: tensor '%s' has rank %d; %s tensors of rank above %d are not supported",
              path, name, r->rank, r->dtype, ATTNRT_MAX_RANK);
    return ATTNRT_E_FORMAT;
  }
  int64_t numel = 1;
  for (int i = 0; i < r->rank; i++) {
    if (i < ATTNRT_MAX_RANK)
      e->dims[i] = r->shape[i];
    if (!attnrt_mul_i64(numel, r->shape[i], &numel)) {
      attnrt_errf(err, errlen, "%s: tensor '%s': the element count of its shape overflows",
                path, name);
      return ATTNRT_E_FORMAT;
    }
  }
  e->numel = numel;
  e->begin = r->offsets[0];
  e->end = r->offsets[1];
  if (e->begin > e->end || e->end > data_len) {
    attnrt_errf(err, errlen,
              "%s: tensor '%s': data_offsets [%lld, %lld] are outside the data region of %lld bytes",
              path, name, (long long)e->begin, (long long)e->end, (long long)data_len);
    return ATTNRT_E_FORMAT;
  }
  int size = dtype_size(r->dtype);
  int64_t bytes = 0;
  bool fits = attnrt_mul_i64(numel, size, &bytes);
  if (size > 0 && !fits) {
    attnrt_errf(err, errlen, "%s: tensor '%s': %lld elements of %s overflow a byte count",
              path, name, (long long)numel, r->dtype);
    return ATTNRT_E_FORMAT;
  }
  if (size > 0 && bytes != e->end - e->begin) {
    attnrt_errf(err, errlen,
              "%s: tensor '%s': data_offsets [%lld, %lld] hold %lld bytes but %lld elements "
              "of %s need %lld",
              path, name, (long long)e->begin, (long long)e->end,
              (long long)(e->end - e->begin), (long long)numel, r->dtype, (long long)bytes);
    return ATTNRT_E_FORMAT;
  }
  return ATTNRT_OK;
}

static attnrt_status add_entry(attnrt_safetensors *st, const st_entry *e, const char *path,
                             char *err, size_t errlen) {
  if (st->count == st->cap) {
    if (st->cap >= INT_MAX / 2) {
      attnrt_errf(err, errlen, "%s: too many tensors", path);
      return ATTNRT_E_LIMIT;
    }
    int cap = st->cap ? st->cap * 2 : 16;
    st_entry *n = realloc(st->entries, (size_t)cap * sizeof *n);
    if (n == NULL) {
      attnrt_errf(err, errlen, "%s: out of memory reading the header", path);
      return ATTNRT_E_NOMEM;
    }
    st->entries = n;
    st->cap = cap;
  }
  st->entries[st->count++] = *e;
  return ATTNRT_OK;
}

/* The top-level object: every tensor entry, and __metadata__ at most once. */
static attnrt_status parse_header(parser *p, attnrt_safetensors *st, int64_t data_len) {
  bool seen_meta = false;
  if (!expect(p, '{'))
    return ATTNRT_E_FORMAT;
  bool more = peek(p) != '}';
  if (!more)
    p->pos++;
  while (more) {
    const char *name;
    size_t len;
    if (!parse_string(p, &name, &len) || !expect(p, ':'))
      return ATTNRT_E_FORMAT;
    if (strlen(name) != len)
      return format_error(p, "tensor name contains a NUL character");
    if (key_is(name, len, "__metadata__")) {
      if (seen_meta)
        return format_error(p, "duplicate __metadata__");
      seen_meta = true;
      if (!parse_metadata(p))
        return ATTNRT_E_FORMAT;
    } else {
      raw_entry r;
      st_entry e;
      if (!parse_entry(p, name, &r))
        return ATTNRT_E_FORMAT;
      attnrt_status s = make_entry(p->path, name, &r, data_len, &e, p->err, p->errlen);
      if (s == ATTNRT_OK)
        s = add_entry(st, &e, p->path, p->err, p->errlen);
      if (s != ATTNRT_OK)
        return s;
    }
    if (!next_member(p, &more))
      return ATTNRT_E_FORMAT;
  }
  if (peek(p) >= 0)
    return format_error(p, "data after the header object");
  return ATTNRT_OK;
}

static int cmp_name_ref(const void *a, const void *b) {
  const name_ref *x = a, *y = b;
  int c = strcmp(x->name, y->name);
  return c != 0 ? c : (x->index > y->index) - (x->index < y->index);
}

static attnrt_status build_index(attnrt_safetensors *st, const char *path, char *err, size_t errlen) {
  st->sorted = malloc((st->count > 0 ? (size_t)st->count : 1) * sizeof *st->sorted);
  if (st->sorted == NULL) {
    attnrt_errf(err, errlen, "%s: out of memory reading the header", path);
    return ATTNRT_E_NOMEM;
  }
  for (int i = 0; i < st->count; i++)
    st->sorted[i] = (name_ref){st->entries[i].name, i};
  qsort(st->sorted, (size_t)st->count, sizeof *st->sorted, cmp_name_ref);
  for (int i = 1; i < st->count; i++)
    if (strcmp(st->sorted[i - 1].name, st->sorted[i].name) == 0) {
      attnrt_errf(err, errlen, "%s: duplicate tensor '%s'", path, st->sorted[i].name);
      return ATTNRT_E_FORMAT;
    }
  return ATTNRT_OK;
}

/* Data pointers, once every entry is known to lie inside the data region.
 * Generated code loads floats directly, so an f32/i32 tensor that is
 * misaligned, or whose little-endian bytes are not the host's order, gets
 * an aligned copy in host order.  Other dtypes stay where they are: the
 * loader decodes them byte by byte when it converts them. */
static attnrt_status place_data(attnrt_safetensors *st, const unsigned char *base,
                              const char *path, char *err, size_t errlen) {
  bool le = attnrt_host_is_le();
  for (int i = 0; i < st->count; i++) {
    st_entry *e = &st->entries[i];
    const unsigned char *src = base + e->begin;
    if (e->kind != ATTNRT_ST_F32 && e->kind != ATTNRT_ST_I32) {
      e->data = (void *)src;
      continue;
    }
    size_t bytes = (size_t)(e->end - e->begin);
    if ((uintptr_t)src % 4 == 0 && le) {
      e->data = (void *)src;
      continue;
    }
    e->data = malloc(bytes > 0 ? bytes : 1);
    if (e->data == NULL) {
      attnrt_errf(err, errlen, "%s: out of memory copying tensor '%s'", path, e->name);
      return ATTNRT_E_NOMEM;
    }
    memcpy(e->data, src, bytes);
    e->owned = true;
    if (!le)
      attnrt_swap4(e->data, e->numel);
  }
  return ATTNRT_OK;
}

void attnrt_st_close(attnrt_safetensors *st) {
  if (st == NULL)
    return;
  for (int i = 0; i < st->count; i++)
    if (st->entries[i].owned)
      free(st->entries[i].data);
  if (st->map != NULL)
    munmap(st->map, st->map_len);
  free(st->entries);
  free(st->sorted);
  free(st->arena);
  free(st);
}

static uint64_t read_le64(const unsigned char *b) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--)
    v = (v << 8) | b[i];
  return v;
}

/* Open and map path; sets st->map and st->map_len. */
static attnrt_status map_file(attnrt_safetensors *st, const char *path, char *err, size_t errlen) {
  char ebuf[128];
  /* O_NONBLOCK: a FIFO given as the path fails the regular-file check
   * below instead of blocking here. */
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    attnrt_errf(err, errlen, "cannot open %s: %s", path, attnrt_errno_str(errno, ebuf, sizeof ebuf));
    return ATTNRT_E_IO;
  }
  struct stat sb;
  attnrt_status s = ATTNRT_OK;
  if (fstat(fd, &sb) != 0) {
    attnrt_errf(err, errlen, "cannot stat %s: %s", path, attnrt_errno_str(errno, ebuf, sizeof ebuf));
    s = ATTNRT_E_IO;
  } else if (!S_ISREG(sb.st_mode)) {
    attnrt_errf(err, errlen, "%s is not a regular file", path);
    s = ATTNRT_E_IO;
  } else if (sb.st_size < 8) {
    attnrt_errf(err, errlen, "%s: file of %lld bytes is too short for a safetensors header",
              path, (long long)sb.st_size);
    s = ATTNRT_E_FORMAT;
  } else if ((uint64_t)sb.st_size > SIZE_MAX) {
    attnrt_errf(err, errlen, "%s: file too large to map", path);
    s = ATTNRT_E_LIMIT;
  } else {
    void *m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      attnrt_errf(err, errlen, "cannot map %s: %s", path, attnrt_errno_str(errno, ebuf, sizeof ebuf));
      s = ATTNRT_E_IO;
    } else {
      st->map = m;
      st->map_len = (size_t)sb.st_size;
    }
  }
  close(fd);
  return s;
}

static attnrt_status open_checked(attnrt_safetensors *st, const char *path, char *err, size_t errlen) {
  attnrt_status s = map_file(st, path, err, errlen);
  if (s != ATTNRT_OK)
    return s;
  const unsigned char *bytes = st->map;
  uint64_t n = read_le64(bytes);
  if (n > st->map_len - 8) {
    attnrt_errf(err, errlen, "%s: header length %llu runs past the end of the file (%zu bytes)",
              path, (unsigned long long)n, st->map_len);
    return ATTNRT_E_FORMAT;
  }
  if (n > HEADER_MAX) {
    attnrt_errf(err, errlen, "%s: header length %llu is above the limit of %llu bytes",
              path, (unsigned long long)n, (unsigned long long)HEADER_MAX);
    return ATTNRT_E_FORMAT;
  }
  /* Unescaping never lengthens a string and each string's quotes pay for its
   * NUL, so an arena the size of the header holds every string. */
  st->arena = malloc((size_t)n + 1);
  if (st->arena == NULL) {
    attnrt_errf(err, errlen, "%s: out of memory reading the header", path);
    return ATTNRT_E_NOMEM;
  }
  parser p = {bytes + 8, (size_t)n, 0, st->arena, 0, (size_t)n + 1, path, err, errlen};
  int64_t data_len = (int64_t)(st->map_len - 8 - (size_t)n);
  s = parse_header(&p, st, data_len);
  if (s == ATTNRT_OK)
    s = build_index(st, path, err, errlen);
  if (s == ATTNRT_OK)
    s = place_data(st, bytes + 8 + n, path, err, errlen);
  return s;
}

attnrt_status attnrt_st_open(const char *path, attnrt_safetensors **out, char *err, size_t errlen) {
  if (out != NULL)
    *out = NULL;
  if (path == NULL || out == NULL) {
    attnrt_errf(err, errlen, "attnrt_st_open: %s is NULL", path == NULL ? "path" : "out");
    return ATTNRT_E_ARG;
  }
  attnrt_safetensors *st = calloc(1, sizeof *st);
  if (st == NULL) {
    attnrt_errf(err, errlen, "%s: out of memory", path);
    return ATTNRT_E_NOMEM;
  }
  attnrt_status s = open_checked(st, path, err, errlen);
  if (s != ATTNRT_OK) {
    attnrt_st_close(st);
    return s;
  }
  *out = st;
  return ATTNRT_OK;
}

int attnrt_st_count(const attnrt_safetensors *st) {
  return st != NULL ? st->count : 0;
}

const char *attnrt_st_name(const attnrt_safetensors *st, int i) {
  if (st == NULL || i < 0 || i >= st->count)
    return NULL;
  return st->entries[i].name;
}

const char *attnrt_st_dtype(const attnrt_safetensors *st, int i) {
  if (st == NULL || i < 0 || i >= st->count)
    return NULL;
  return st->entries[i].dtype_str;
}

attnrt_status attnrt_st_raw_get(const attnrt_safetensors *st, int i, attnrt_st_raw *out) {
  if (st == NULL || out == NULL)
    return ATTNRT_E_ARG;
  if (i < 0 || i >= st->count)
    return ATTNRT_E_RANGE;
  const st_entry *e = &st->entries[i];
  memset(out, 0, sizeof *out);
  out->kind = e->kind;
  out->rank = e->rank;
  for (int a = 0; a < e->rank && a < ATTNRT_MAX_RANK; a++)
    out->dims[a] = e->dims[a];
  out->numel = e->numel;
  out->bytes = e->kind == ATTNRT_ST_OTHER ? NULL : e->data;
  return ATTNRT_OK;
}

attnrt_status attnrt_st_get(const attnrt_safetensors *st, int i, attnrt_tensor *t) {
  attnrt_st_raw r;
  if (t == NULL)
    return ATTNRT_E_ARG;
  attnrt_status s = attnrt_st_raw_get(st, i, &r);
  if (s != ATTNRT_OK)
    return s;
  memset(t, 0, sizeof *t);
  /* Only what can be used as it is: other dtypes are for the loader. */
  if (r.kind != ATTNRT_ST_F32 && r.kind != ATTNRT_ST_I32) {
    t->rank = -1;
    return ATTNRT_OK;
  }
  t->dtype = r.kind == ATTNRT_ST_F32 ? ATTNRT_F32 : ATTNRT_I32;
  t->rank = r.rank;
  memcpy(t->dims, r.dims, sizeof t->dims);
  t->data = (void *)r.bytes;
  return ATTNRT_OK;
}

int attnrt_st_find(const attnrt_safetensors *st, const char *name) {
  if (st == NULL || name == NULL)
    return -1;
  int lo = 0, hi = st->count - 1;
  while (lo <= hi) {
    int mid = lo + (hi - lo) / 2;
    int c = strcmp(st->sorted[mid].name, name);
    if (c == 0)
      return st->sorted[mid].index;
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid - 1;
  }
  return -1;
}
