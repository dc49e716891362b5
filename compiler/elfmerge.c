/* elfmerge.c: joins the ELF objects of a module's parts (split.c) into
 * one relocatable object, as `ld -r` would for the few kinds of section
 * LLVM emits for attnc's code.
 *
 * Needs: little-endian ELF64 ET_REL objects of one machine, with RELA
 * relocations, one symbol table each, no section groups and no
 * SHF_LINK_ORDER sections; each global symbol defined in at most one part.
 * The objects come from LLVM, but every offset and index in them is
 * checked before use all the same.
 * Guarantees: sections of one name, type, flags and entry size are
 * concatenated in part order, each part's piece at its own alignment;
 * symbols and relocations follow their sections (a relocation against a
 * section symbol gets its piece's offset added to the addend); the global
 * symbols named in `localize` (functions that were internal to the module
 * and were made global only so that another part could reach them) become
 * local again, so the object exports what the whole module's would; an
 * undefined symbol that another part defines resolves to that definition.
 * .llvm_addrsig, a hint for the linker's identical-code folding, is
 * dropped: it lists symbol indices. */
#include <elf.h>
#include <stdlib.h>
#include <string.h>

#include "split.h"

#ifndef SHT_LLVM_ADDRSIG
#define SHT_LLVM_ADDRSIG 0x6fff4c03
#endif

typedef struct Buf { unsigned char *p; size_t len, cap; } Buf;

static void buf_reserve(Buf *b, size_t n) {
  if (b->len + n <= b->cap) return;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + n) cap *= 2;
  unsigned char *p = arena_alloc(cap);
  if (b->len) memcpy(p, b->p, b->len);
  b->p = p;
  b->cap = cap;
}

static void buf_put(Buf *b, const void *src, size_t n) {
  buf_reserve(b, n);
  if (n) memcpy(b->p + b->len, src, n);
  b->len += n;
}

static void buf_pad(Buf *b, size_t align) {
  static const unsigned char zeros[64];
  while (align > 1 && b->len % align) buf_put(b, zeros, align - b->len % align < 64 ? align - b->len % align : 64);
}

static uint32_t buf_str(Buf *b, const char *s) {
  uint32_t off = (uint32_t)b->len;
  buf_put(b, s, strlen(s) + 1);
  return off;
}

typedef struct OutSec {
  const char *name;
  uint32_t type;
  uint64_t flags, entsize, align, size;
  Buf data, rela;
} OutSec;

typedef struct InSec { int out; uint64_t base; } InSec;   /* out = -1: dropped */

typedef struct Obj {
  const unsigned char *p;
  size_t len;
  const Elf64_Ehdr *eh;
  const Elf64_Shdr *sh;
  const char *shstr;
  size_t shstr_len;
  InSec *map;
  const Elf64_Sym *syms;
  size_t nsyms;
  const char *str;
  size_t str_len;
  uint32_t *symmap;   /* input symbol index -> output symbol index */
} Obj;

typedef struct Merge {
  char *err;
  size_t errlen;
  OutSec *secs;
  int nsecs, cap;
  Elf64_Sym *syms;
  int nsyms, symcap;
  int first_global;     /* the symbol table's sh_info: locals come first */
  Buf strtab;
  const char **names;   /* output symbol names, for resolving by name */
} Merge;

static bool fail(Merge *m, const char *what, const char *name) {
  snprintf(m->err, m->errlen, "cannot join the parts' objects: %s%s%s", what, name ? " " : "", name ? name : "");
  return false;
}

static const char *str_at(const char *tab, size_t len, uint64_t off) {
  if (off >= len || !memchr(tab + off, 0, len - off)) return NULL;
  return tab + off;
}

static bool parse_obj(Merge *m, Obj *o, const Elf64_Ehdr *first) {
  if (o->len < sizeof(Elf64_Ehdr)) return fail(m, "truncated ELF header", NULL);
  o->eh = (const Elf64_Ehdr *)o->p;
  const Elf64_Ehdr *e = o->eh;
  if (memcmp(e->e_ident, ELFMAG, SELFMAG) || e->e_ident[EI_CLASS] != ELFCLASS64 ||
      e->e_ident[EI_DATA] != ELFDATA2LSB || e->e_type != ET_REL || e->e_shentsize != sizeof(Elf64_Shdr))
    return fail(m, "not a little-endian ELF64 relocatable object", NULL);
  if (first && (e->e_machine != first->e_machine || e->e_flags != first->e_flags))
    return fail(m, "parts of different machines", NULL);
  if (e->e_shnum == 0 || e->e_shnum >= SHN_LORESERVE || e->e_shoff > o->len ||
      (o->len - e->e_shoff) / sizeof(Elf64_Shdr) < e->e_shnum || e->e_shstrndx >= e->e_shnum ||
      e->e_shoff % 8)
    return fail(m, "bad section header table", NULL);
  o->sh = (const Elf64_Shdr *)(o->p + e->e_shoff);
  for (int j = 1; j < e->e_shnum; j++) {
    const Elf64_Shdr *s = &o->sh[j];
    if (s->sh_type != SHT_NOBITS && (s->sh_offset > o->len || o->len - s->sh_offset < s->sh_size))
      return fail(m, "section outside the file", NULL);
    if (s->sh_addralign > 4096 || (s->sh_addralign & (s->sh_addralign - 1)))
      return fail(m, "section alignment not a power of two up to 4096", NULL);
  }
  if (e->e_shstrndx == 0 || o->sh[e->e_shstrndx].sh_type != SHT_STRTAB)
    return fail(m, "bad section name table", NULL);
  const Elf64_Shdr *ss = &o->sh[e->e_shstrndx];
  o->shstr = (const char *)o->p + ss->sh_offset;
  o->shstr_len = ss->sh_size;
  o->map = NEW_ARRAY(InSec, e->e_shnum);
  for (int j = 0; j < e->e_shnum; j++) o->map[j].out = -1;
  return true;
}

/* Every section but the tables and relocations goes to the output section
 * of its name, type, flags and entry size. */
static bool place_sections(Merge *m, Obj *o) {
  int symtab = 0;
  for (int j = 1; j < o->eh->e_shnum; j++) {
    const Elf64_Shdr *s = &o->sh[j];
    const char *name = str_at(o->shstr, o->shstr_len, s->sh_name);
    if (!name) return fail(m, "bad section name", NULL);
    switch (s->sh_type) {
    case SHT_SYMTAB:
      if (symtab) return fail(m, "two symbol tables", NULL);
      symtab = j;
      continue;
    case SHT_STRTAB: case SHT_RELA: case SHT_LLVM_ADDRSIG:
      continue;
    case SHT_REL: case SHT_GROUP: case SHT_SYMTAB_SHNDX: case SHT_DYNSYM: case SHT_DYNAMIC:
      return fail(m, "unsupported section", name);
    }
    if (s->sh_flags & (SHF_LINK_ORDER | SHF_GROUP)) return fail(m, "unsupported section", name);
    int k = 0;
    while (k < m->nsecs && !(strcmp(m->secs[k].name, name) == 0 && m->secs[k].type == s->sh_type &&
                             m->secs[k].flags == s->sh_flags && m->secs[k].entsize == s->sh_entsize))
      k++;
    if (k == m->nsecs) {
      if (m->nsecs == m->cap) {
        m->cap = m->cap ? 2 * m->cap : 16;
        OutSec *n = NEW_ARRAY(OutSec, m->cap);
        if (m->nsecs) memcpy(n, m->secs, sizeof *n * (size_t)m->nsecs);
        m->secs = n;
      }
      m->secs[m->nsecs++] = (OutSec){.name = name, .type = s->sh_type, .flags = s->sh_flags,
                                     .entsize = s->sh_entsize, .align = 1};
    }
    OutSec *out = &m->secs[k];
    uint64_t align = s->sh_addralign ? s->sh_addralign : 1;
    if (align > out->align) out->align = align;
    uint64_t base = (out->size + align - 1) / align * align;
    if (s->sh_type != SHT_NOBITS) {
      buf_pad(&out->data, align);
      buf_put(&out->data, o->p + s->sh_offset, s->sh_size);
    }
    out->size = base + s->sh_size;
    o->map[j] = (InSec){k, base};
  }
  if (!symtab) return fail(m, "no symbol table", NULL);
  const Elf64_Shdr *st = &o->sh[symtab];
  if (st->sh_entsize != sizeof(Elf64_Sym) || st->sh_size % sizeof(Elf64_Sym) || st->sh_link == 0 ||
      st->sh_link >= o->eh->e_shnum ||
      o->sh[st->sh_link].sh_type != SHT_STRTAB || st->sh_offset % 8 || st->sh_info > st->sh_size / sizeof(Elf64_Sym))
    return fail(m, "bad symbol table", NULL);
  o->syms = (const Elf64_Sym *)(o->p + st->sh_offset);
  o->nsyms = st->sh_size / sizeof(Elf64_Sym);
  o->str = (const char *)o->p + o->sh[st->sh_link].sh_offset;
  o->str_len = o->sh[st->sh_link].sh_size;
  o->symmap = NEW_ARRAY(uint32_t, o->nsyms + 1);
  return true;
}

static uint32_t add_sym(Merge *m, const char *name, Elf64_Sym s) {
  if (m->nsyms == m->symcap) {
    m->symcap = m->symcap ? 2 * m->symcap : 256;
    Elf64_Sym *n = NEW_ARRAY(Elf64_Sym, m->symcap);
    const char **nn = NEW_ARRAY(const char *, m->symcap);
    if (m->nsyms) {
      memcpy(n, m->syms, sizeof *n * (size_t)m->nsyms);
      memcpy(nn, m->names, sizeof *nn * (size_t)m->nsyms);
    }
    m->syms = n;
    m->names = nn;
  }
  s.st_name = name && name[0] ? buf_str(&m->strtab, name) : 0;
  m->names[m->nsyms] = name ? name : "";
  m->syms[m->nsyms] = s;
  return (uint32_t)m->nsyms++;
}

/* The output index of the first defined symbol named `name` from index
 * `from` on, or 0. */
static uint32_t find_sym(const Merge *m, const char *name, int from) {
  for (int k = from; k < m->nsyms; k++)
    if (m->syms[k].st_shndx != SHN_UNDEF && strcmp(m->names[k], name) == 0) return (uint32_t)k;
  return 0;
}

static bool is_localized(const char *name, const char *const *localize, int nlocalize) {
  for (int k = 0; k < nlocalize; k++)
    if (strcmp(localize[k], name) == 0) return true;
  return false;
}

/* A defined symbol's copy for the output: its section and value move with
 * its piece of the output section. */
static bool moved(Merge *m, const Obj *o, Elf64_Sym *s) {
  if (s->st_shndx == SHN_ABS) return true;
  if (s->st_shndx == SHN_COMMON || s->st_shndx >= SHN_LORESERVE) return fail(m, "common or extended symbol", NULL);
  if (s->st_shndx >= o->eh->e_shnum || o->map[s->st_shndx].out < 0)
    return fail(m, "symbol in a dropped section", NULL);
  s->st_value += o->map[s->st_shndx].base;
  s->st_shndx = (uint16_t)(o->map[s->st_shndx].out + 1);
  return true;
}

static bool merge_symbols(Merge *m, Obj *objs, int n, const char *const *localize, int nlocalize) {
  add_sym(m, NULL, (Elf64_Sym){0});
  /* One section symbol per output section: output section k is section k+1. */
  for (int k = 0; k < m->nsecs; k++)
    add_sym(m, NULL, (Elf64_Sym){.st_info = ELF64_ST_INFO(STB_LOCAL, STT_SECTION), .st_shndx = (uint16_t)(k + 1)});
  bool have_file = false;
  for (int i = 0; i < n; i++) {
    Obj *o = &objs[i];
    for (size_t k = 1; k < o->nsyms; k++) {
      Elf64_Sym s = o->syms[k];
      const char *name = str_at(o->str, o->str_len, s.st_name);
      if (!name) return fail(m, "bad symbol name", NULL);
      int type = ELF64_ST_TYPE(s.st_info), bind = ELF64_ST_BIND(s.st_info);
      if ((type == STT_SECTION || type == STT_FILE) && bind != STB_LOCAL)
        return fail(m, "global section or file symbol", name);
      if (type == STT_SECTION) {
        if (s.st_shndx >= o->eh->e_shnum) return fail(m, "bad section symbol", NULL);
        o->symmap[k] = o->map[s.st_shndx].out < 0 ? 0 : (uint32_t)(o->map[s.st_shndx].out + 1);
      } else if (type == STT_FILE) {
        if (!have_file) o->symmap[k] = add_sym(m, name, s);
        have_file = true;
      } else if (bind == STB_LOCAL) {
        if (s.st_shndx == SHN_UNDEF) return fail(m, "undefined local symbol", name);
        if (!moved(m, o, &s)) return false;
        o->symmap[k] = add_sym(m, name, s);
      } else if (s.st_shndx != SHN_UNDEF && is_localized(name, localize, nlocalize)) {
        if (!moved(m, o, &s)) return false;
        s.st_info = ELF64_ST_INFO(STB_LOCAL, type);
        s.st_other = STV_DEFAULT;
        o->symmap[k] = add_sym(m, name, s);
      }
    }
  }
  int first_global = m->nsyms;
  for (int i = 0; i < n; i++) {
    Obj *o = &objs[i];
    for (size_t k = 1; k < o->nsyms; k++) {
      Elf64_Sym s = o->syms[k];
      const char *name = o->str + s.st_name;
      if (ELF64_ST_BIND(s.st_info) == STB_LOCAL || s.st_shndx == SHN_UNDEF || is_localized(name, localize, nlocalize))
        continue;
      if (find_sym(m, name, first_global)) return fail(m, "defined in two parts:", name);
      if (!moved(m, o, &s)) return false;
      o->symmap[k] = add_sym(m, name, s);
    }
  }
  /* Undefined symbols: a definition in another part, else one undefined
   * symbol per name. */
  for (int i = 0; i < n; i++) {
    Obj *o = &objs[i];
    for (size_t k = 1; k < o->nsyms; k++) {
      Elf64_Sym s = o->syms[k];
      const char *name = o->str + s.st_name;
      if (ELF64_ST_BIND(s.st_info) == STB_LOCAL || s.st_shndx != SHN_UNDEF) continue;
      uint32_t def = find_sym(m, name, 1);
      if (def && ELF64_ST_BIND(m->syms[def].st_info) == STB_LOCAL &&
          !is_localized(name, localize, nlocalize))
        def = 0;   /* a local of one part is not what another part's undefined name means */
      if (!def)
        for (int q = first_global; q < m->nsyms && !def; q++)
          if (m->syms[q].st_shndx == SHN_UNDEF && strcmp(m->names[q], name) == 0) def = (uint32_t)q;
      if (!def) {
        if (is_localized(name, localize, nlocalize)) return fail(m, "defined in no part:", name);
        def = add_sym(m, name, s);
      }
      o->symmap[k] = def;
    }
  }
  m->first_global = first_global;
  return true;
}

static bool merge_relocations(Merge *m, Obj *objs, int n) {
  for (int i = 0; i < n; i++) {
    Obj *o = &objs[i];
    for (int j = 1; j < o->eh->e_shnum; j++) {
      const Elf64_Shdr *r = &o->sh[j];
      if (r->sh_type != SHT_RELA) continue;
      if (r->sh_info >= o->eh->e_shnum || r->sh_entsize != sizeof(Elf64_Rela) || r->sh_size % sizeof(Elf64_Rela) ||
          r->sh_offset % 8 || r->sh_link >= o->eh->e_shnum || o->sh[r->sh_link].sh_type != SHT_SYMTAB)
        return fail(m, "bad relocation section", NULL);
      InSec target = o->map[r->sh_info];
      if (target.out < 0) continue;   /* relocations of a dropped section */
      const Elf64_Rela *rel = (const Elf64_Rela *)(o->p + r->sh_offset);
      for (size_t k = 0; k < r->sh_size / sizeof(Elf64_Rela); k++) {
        Elf64_Rela x = rel[k];
        uint64_t sym = ELF64_R_SYM(x.r_info);
        if (sym >= o->nsyms || x.r_offset >= o->sh[r->sh_info].sh_size)
          return fail(m, "bad relocation", NULL);
        if (sym) {
          const Elf64_Sym *s = &o->syms[sym];
          if (ELF64_ST_TYPE(s->st_info) == STT_SECTION) {
            if (o->symmap[sym] == 0) return fail(m, "relocation against a dropped section", NULL);
            x.r_addend = (int64_t)((uint64_t)x.r_addend + o->map[s->st_shndx].base);
          }
          if (o->symmap[sym] == 0) return fail(m, "relocation against a dropped symbol", NULL);
        }
        x.r_offset += target.base;
        x.r_info = ELF64_R_INFO(sym ? o->symmap[sym] : 0, ELF64_R_TYPE(x.r_info));
        buf_put(&m->secs[target.out].rela, &x, sizeof x);
      }
    }
  }
  return true;
}

static void write_object(Merge *m, const Elf64_Ehdr *first, char **out, size_t *outlen) {
  Buf shstr = {0};
  buf_put(&shstr, "", 1);
  int nrela = 0;
  for (int k = 0; k < m->nsecs; k++) nrela += m->secs[k].rela.len > 0;
  int symtab = 1 + m->nsecs + nrela, strtab = symtab + 1, shstrtab = symtab + 2, shnum = symtab + 3;
  Elf64_Shdr *sh = NEW_ARRAY(Elf64_Shdr, shnum);
  Buf f = {0};
  Elf64_Ehdr eh = *first;
  buf_put(&f, &eh, sizeof eh);
  for (int k = 0; k < m->nsecs; k++) {
    OutSec *s = &m->secs[k];
    buf_pad(&f, s->align);
    sh[k + 1] = (Elf64_Shdr){.sh_name = buf_str(&shstr, s->name), .sh_type = s->type, .sh_flags = s->flags,
                             .sh_offset = f.len, .sh_size = s->size, .sh_addralign = s->align,
                             .sh_entsize = s->entsize};
    if (s->type != SHT_NOBITS) buf_put(&f, s->data.p, s->data.len);
  }
  int r = 1 + m->nsecs;
  for (int k = 0; k < m->nsecs; k++) {
    OutSec *s = &m->secs[k];
    if (!s->rela.len) continue;
    buf_pad(&f, 8);
    sh[r++] = (Elf64_Shdr){.sh_name = buf_str(&shstr, arena_printf(".rela%s", s->name)), .sh_type = SHT_RELA,
                           .sh_flags = SHF_INFO_LINK, .sh_offset = f.len, .sh_size = s->rela.len,
                           .sh_link = (uint32_t)symtab, .sh_info = (uint32_t)(k + 1), .sh_addralign = 8,
                           .sh_entsize = sizeof(Elf64_Rela)};
    buf_put(&f, s->rela.p, s->rela.len);
  }
  buf_pad(&f, 8);
  sh[symtab] = (Elf64_Shdr){.sh_name = buf_str(&shstr, ".symtab"), .sh_type = SHT_SYMTAB, .sh_offset = f.len,
                            .sh_size = sizeof(Elf64_Sym) * (size_t)m->nsyms, .sh_link = (uint32_t)strtab,
                            .sh_info = (uint32_t)m->first_global, .sh_addralign = 8, .sh_entsize = sizeof(Elf64_Sym)};
  buf_put(&f, m->syms, sizeof(Elf64_Sym) * (size_t)m->nsyms);
  if (m->strtab.len == 0) buf_put(&m->strtab, "", 1);
  sh[strtab] = (Elf64_Shdr){.sh_name = buf_str(&shstr, ".strtab"), .sh_type = SHT_STRTAB, .sh_offset = f.len,
                            .sh_size = m->strtab.len, .sh_addralign = 1};
  buf_put(&f, m->strtab.p, m->strtab.len);
  uint32_t shstr_name = buf_str(&shstr, ".shstrtab");
  sh[shstrtab] = (Elf64_Shdr){.sh_name = shstr_name, .sh_type = SHT_STRTAB, .sh_offset = f.len,
                              .sh_size = shstr.len, .sh_addralign = 1};
  buf_put(&f, shstr.p, shstr.len);
  buf_pad(&f, 8);
  Elf64_Ehdr *e = (Elf64_Ehdr *)f.p;
  e->e_shoff = f.len;
  e->e_shnum = (uint16_t)shnum;
  e->e_shstrndx = (uint16_t)shstrtab;
  e->e_phoff = 0;
  e->e_phnum = 0;
  e->e_entry = 0;
  buf_put(&f, sh, sizeof(Elf64_Shdr) * (size_t)shnum);
  *out = (char *)f.p;
  *outlen = f.len;
}

bool elf_merge(const ObjPart *parts, int n, const char *const *localize, int nlocalize, char **out, size_t *outlen,
               char *err, size_t errlen) {
  Merge m = {.err = err, .errlen = errlen};
  if (n < 1) return fail(&m, "no objects", NULL);
  /* The string table starts with its empty name. */
  buf_put(&m.strtab, "", 1);
  Obj *objs = NEW_ARRAY(Obj, n);
  for (int i = 0; i < n; i++) {
    objs[i] = (Obj){.p = (const unsigned char *)parts[i].data, .len = parts[i].len};
    if (!parse_obj(&m, &objs[i], i ? objs[0].eh : NULL)) return false;
  }
  for (int i = 0; i < n; i++)
    if (!place_sections(&m, &objs[i])) return false;
  if (2 * m.nsecs + 4 >= SHN_LORESERVE) return fail(&m, "too many sections", NULL);   /* each with its .rela */
  if (!merge_symbols(&m, objs, n, localize, nlocalize)) return false;
  if (!merge_relocations(&m, objs, n)) return false;
  write_object(&m, objs[0].eh, out, outlen);
  return true;
}
