/* torch.save reader in three stages, each validating what the next relies on:
 *   1. ZIP: the end record (ZIP64 when present: torch always writes it), the central directory
 *      (sorted by name for lookups, duplicates refused), and, for each entry read, its local
 *      header, bounds and CRC-32. Only stored entries are read; DEFLATE is refused (see ptfile.h).
 *   2. Pickle: a stack machine over data.pkl that knows the opcodes of protocols 2-4 a state dict
 *      uses and the globals listed in pk_globals; it builds plain values in an index-linked
 *      arena (no recursion anywhere, so deep or cyclic structures cost nothing), bounded by the
 *      SG_PT_MAX_* limits. Nothing in the pickle is ever called or imported: REDUCE on a known
 *      global is interpreted here, and any other global is refused when it is named.
 *   3. Tensors: the top-level dict's tensor values, each view checked against its storage's
 *      declared size and each storage against its "<stem>/data/<key>" entry. */
#include "nn/ptfile.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "base/file.h"
#include "base/utf8.h"
#include "nn/shape.h"

/* Storages are little-endian and handed to sg_dtype_to_f32 as they are. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "ptfile.c assumes a little-endian host"
#endif

/* Bytes of a name quoted in a message, so that messages fit sg_error.msg. */
#define NAME_CLIP 48
/* Longest storage key accepted (torch's are decimal numbers). */
#define MAX_KEY 64
/* Longest module or name of a GLOBAL opcode. */
#define MAX_GLOBAL_LINE 256

/* ---- small helpers ----------------------------------------------------------------------- */

static uint16_t rd16(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const unsigned char *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

#define QUOTE(buf, s, len) sg_utf8_quote(buf, NAME_CLIP, (s), (len), false)
#define QUOTEZ(buf, s) sg_utf8_quote(buf, NAME_CLIP, (s), strlen(s), false)

static int bytes_cmp(const unsigned char *a, size_t al, const unsigned char *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    return c ? c : (al < bl ? -1 : al > bl);
}

/* ---- the file ------------------------------------------------------------------------------ */

typedef struct pt_entry {
    const unsigned char *name;
    size_t name_len;
    uint64_t csize, usize, local; /* local: offset of the local header */
    uint32_t crc;
    uint16_t flags, method;
    const unsigned char *data; /* set by entry_data once checked */
    bool used;                 /* as a storage: the dtype and size it was declared with */
    sg_dtype dtype;
    uint64_t numel;
} pt_entry;

struct sg_pt_file {
    const unsigned char *base;
    size_t len;
    sg_file_map file; /* what sg_pt_open mapped; empty for a borrowed buffer */
    char label[SG_FILE_LABEL_SIZE];
    pt_entry *entries; /* sorted by name */
    size_t nentries;
    const unsigned char *stem; /* "archive" of "archive/data.pkl" */
    size_t stem_len;
    pt_entry *pkl; /* "<stem>/data.pkl" */
    sg_pt_tensor *tensors; /* in dict order */
    size_t n;
    const sg_pt_tensor **by_name; /* sorted by name */
    char *names;
};

static sg_status zfail(const sg_pt_file *f, sg_error *err, sg_status code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static sg_status zfail(const sg_pt_file *f, sg_error *err, sg_status code, const char *fmt, ...)
{
    char msg[224];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return sg_error_set(err, code, "%s: %s", f->label, msg);
}

/* ---- 1. ZIP -------------------------------------------------------------------------------- */

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_END 0x06054b50u
#define SIG_END64 0x06064b50u
#define SIG_LOCATOR64 0x07064b50u
#define SAT16 0xFFFFu
#define SAT32 0xFFFFFFFFu

/* The files torch wrote before the ZIP format (and its preview release) start differently. */
static sg_status check_legacy(const sg_pt_file *f, sg_error *err)
{
    const unsigned char *b = f->base;
    if ((f->len >= 2 && b[0] == 0x80 && b[1] >= 2 && b[1] <= 5) ||
        (f->len >= 262 && memcmp(b + 257, "ustar", 5) == 0))
        return zfail(f, err, SG_EUNSUPPORTED,
                     "legacy (pre-1.6) torch.save format is not supported; re-save with "
                     "torch>=1.6");
    if (f->len >= 8 && memcmp(b, "PYTORCH1", 8) == 0)
        return zfail(f, err, SG_EUNSUPPORTED,
                     "torch preview-release archive format is not supported; re-save with "
                     "torch>=1.6");
    return SG_OK;
}

/* Reads the ZIP64 extended-information extra field: each saturated value of the central
 * record is replaced, in the order the format fixes. False when a needed value is missing. */
static bool zip64_extra(const unsigned char *x, size_t xlen, uint64_t *usize, uint64_t *csize,
                        uint64_t *local, uint32_t *disk)
{
    while (xlen >= 4) {
        size_t id = rd16(x), sz = rd16(x + 2);
        if (sz > xlen - 4)
            return false;
        if (id == 0x0001) {
            const unsigned char *q = x + 4;
            size_t left = sz;
            uint64_t *fields[3] = {usize, csize, local};
            for (int i = 0; i < 3; i++) {
                if (*fields[i] != SAT32)
                    continue;
                if (left < 8)
                    return false;
                *fields[i] = rd64(q);
                q += 8;
                left -= 8;
            }
            if (*disk == SAT16) {
                if (left < 4)
                    return false;
                *disk = rd32(q);
            }
            return true;
        }
        x += 4 + sz;
        xlen -= 4 + sz;
    }
    return *usize != SAT32 && *csize != SAT32 && *local != SAT32 && *disk != SAT16;
}

static int entry_cmp(const void *pa, const void *pb)
{
    const pt_entry *a = pa, *b = pb;
    return bytes_cmp(a->name, a->name_len, b->name, b->name_len);
}

/* Compares name with stem + "/" + suffix, in the order of bytes_cmp. */
static int cmp_joined(const unsigned char *name, size_t len, const unsigned char *stem,
                      size_t stem_len, const char *suffix, size_t slen)
{
    int c = memcmp(name, stem, len < stem_len ? len : stem_len);
    if (c || len < stem_len)
        return c ? c : -1;
    name += stem_len;
    len -= stem_len;
    if (len == 0)
        return -1;
    if (name[0] != '/')
        return name[0] < '/' ? -1 : 1;
    return bytes_cmp(name + 1, len - 1, (const unsigned char *)suffix, slen);
}

/* The entry "<stem>/<suffix>", or NULL. */
static pt_entry *zip_find_in_stem(const sg_pt_file *f, const char *suffix, size_t slen)
{
    size_t lo = 0, hi = f->nentries;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const pt_entry *e = &f->entries[mid];
        int c = cmp_joined(e->name, e->name_len, f->stem, f->stem_len, suffix, slen);
        if (c == 0)
            return &f->entries[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Finds the end record(s) and parses the central directory into f->entries. */
static sg_status zip_read_directory(sg_pt_file *f, sg_error *err)
{
    const unsigned char *b = f->base;
    size_t len = f->len;
    if (len < 22)
        return zfail(f, err, SG_EINVAL, "file is %zu bytes, too short for a ZIP archive", len);
    /* the end record is the last 22 bytes plus a comment of up to 65535 */
    size_t eocd = SIZE_MAX, lo = len - 22 > 65535 ? len - 22 - 65535 : 0;
    for (size_t p = len - 22 + 1; p-- > lo;)
        if (rd32(b + p) == SIG_END && p + 22 + rd16(b + p + 20) == len) {
            eocd = p;
            break;
        }
    if (eocd == SIZE_MAX)
        return zfail(f, err, SG_EINVAL,
                     "no ZIP end-of-central-directory record: not a torch.save file, or "
                     "truncated");
    uint64_t disk = rd16(b + eocd + 4), cd_disk = rd16(b + eocd + 6);
    uint64_t n_disk = rd16(b + eocd + 8), n = rd16(b + eocd + 10);
    uint64_t cd_size = rd32(b + eocd + 12), cd_off = rd32(b + eocd + 16);
    uint64_t cd_limit = eocd; /* the directory ends before the end records */
    if (eocd >= 20 && rd32(b + eocd - 20) == SIG_LOCATOR64) {
        size_t loc = eocd - 20;
        uint64_t z = rd64(b + loc + 8);
        if (rd32(b + loc + 4) != 0 || rd32(b + loc + 16) > 1)
            return zfail(f, err, SG_EUNSUPPORTED, "multi-disk ZIP archives are not supported");
        if (z > loc || loc - z < 56 || rd32(b + z) != SIG_END64)
            return zfail(f, err, SG_EINVAL, "ZIP64 end record missing or out of place (offset %"
                         PRIu64 ")", z);
        disk = rd32(b + z + 16);
        cd_disk = rd32(b + z + 20);
        n_disk = rd64(b + z + 24);
        n = rd64(b + z + 32);
        cd_size = rd64(b + z + 40);
        cd_off = rd64(b + z + 48);
        cd_limit = z;
    } else if (n == SAT16 || cd_size == SAT32 || cd_off == SAT32) {
        return zfail(f, err, SG_EINVAL, "ZIP end record needs a ZIP64 record, which is missing");
    }
    if (disk != 0 || cd_disk != 0 || n_disk != n)
        return zfail(f, err, SG_EUNSUPPORTED, "multi-disk ZIP archives are not supported");
    if (cd_off > cd_limit || cd_size > cd_limit - cd_off)
        return zfail(f, err, SG_EINVAL,
                     "central directory (offset %" PRIu64 ", %" PRIu64
                     " bytes) lies outside the file",
                     cd_off, cd_size);
    if (n == 0)
        return zfail(f, err, SG_EINVAL, "ZIP archive holds no entries");
    if (n > SG_PT_MAX_ENTRIES)
        return zfail(f, err, SG_ETOOBIG, "ZIP archive holds %" PRIu64 " entries; the limit is %u",
                     n, SG_PT_MAX_ENTRIES);
    if (n > cd_size / 46)
        return zfail(f, err, SG_EINVAL,
                     "central directory of %" PRIu64 " bytes cannot hold %" PRIu64 " entries",
                     cd_size, n);
    f->entries = calloc((size_t)n, sizeof *f->entries);
    if (!f->entries)
        return zfail(f, err, SG_ENOMEM, "out of memory for %" PRIu64 " ZIP entries", n);
    const unsigned char *p = b + cd_off, *end = p + cd_size;
    for (size_t i = 0; i < n; i++) {
        pt_entry *e = &f->entries[i];
        if ((size_t)(end - p) < 46 || rd32(p) != SIG_CENTRAL)
            return zfail(f, err, SG_EINVAL,
                         "central directory entry %zu: bad signature at offset %zu", i,
                         (size_t)(p - b));
        size_t nlen = rd16(p + 28), xlen = rd16(p + 30), clen = rd16(p + 32);
        if (46 + nlen + xlen + clen > (size_t)(end - p))
            return zfail(f, err, SG_EINVAL,
                         "central directory entry %zu runs past the end of the directory", i);
        e->flags = rd16(p + 8);
        e->method = rd16(p + 10);
        e->crc = rd32(p + 16);
        e->csize = rd32(p + 20);
        e->usize = rd32(p + 24);
        e->local = rd32(p + 42);
        e->name = p + 46;
        e->name_len = nlen;
        uint32_t dstart = rd16(p + 34);
        if (!zip64_extra(p + 46 + nlen, xlen, &e->usize, &e->csize, &e->local, &dstart)) {
            char nb[NAME_CLIP + 4];
            return zfail(f, err, SG_EINVAL, "entry '%s': ZIP64 extra field missing or short",
                         QUOTE(nb, e->name, nlen));
        }
        if (dstart != 0)
            return zfail(f, err, SG_EUNSUPPORTED, "multi-disk ZIP archives are not supported");
        p += 46 + nlen + xlen + clen;
    }
    if (p != end)
        return zfail(f, err, SG_EINVAL, "central directory has %zu bytes after its %" PRIu64
                     " entries", (size_t)(end - p), n);
    f->nentries = (size_t)n;
    qsort(f->entries, f->nentries, sizeof *f->entries, entry_cmp);
    for (size_t i = 1; i < f->nentries; i++)
        if (entry_cmp(&f->entries[i - 1], &f->entries[i]) == 0) {
            char nb[NAME_CLIP + 4];
            return zfail(f, err, SG_EINVAL, "duplicate ZIP entry '%s'",
                         QUOTE(nb, f->entries[i].name, f->entries[i].name_len));
        }
    return SG_OK;
}

/* Locates entry e's bytes (local header, bounds, stored, CRC) once; e->data afterwards. */
static sg_status entry_data(const sg_pt_file *f, pt_entry *e, sg_error *err)
{
    if (e->data)
        return SG_OK;
    char nb[NAME_CLIP + 4];
    const char *N = QUOTE(nb, e->name, e->name_len);
    if (e->flags & 1)
        return zfail(f, err, SG_EUNSUPPORTED, "entry '%s' is encrypted", N);
    if (e->method != 0)
        return zfail(f, err, SG_EUNSUPPORTED,
                     "entry '%s' is compressed (ZIP method %u); torch.save stores entries "
                     "uncompressed, so the archive was repacked: re-save it with torch.save",
                     N, e->method);
    if (e->csize != e->usize)
        return zfail(f, err, SG_EINVAL,
                     "stored entry '%s' has compressed size %" PRIu64 " but size %" PRIu64, N,
                     e->csize, e->usize);
    const unsigned char *b = f->base;
    if (e->local > f->len || f->len - e->local < 30 || rd32(b + e->local) != SIG_LOCAL)
        return zfail(f, err, SG_EINVAL, "entry '%s': no local header at offset %" PRIu64, N,
                     e->local);
    const unsigned char *h = b + e->local;
    size_t nlen = rd16(h + 26), xlen = rd16(h + 28);
    if (rd16(h + 8) != e->method)
        return zfail(f, err, SG_EINVAL,
                     "entry '%s': local and central headers disagree on the compression", N);
    uint64_t data = e->local + 30 + nlen + xlen;
    if (data > f->len || nlen != e->name_len || memcmp(h + 30, e->name, nlen) != 0)
        return zfail(f, err, SG_EINVAL,
                     "entry '%s': local header at offset %" PRIu64 " names another file", N,
                     e->local);
    if (e->usize > f->len - data)
        return zfail(f, err, SG_EINVAL,
                     "truncated: entry '%s' needs bytes [%" PRIu64 ", %" PRIu64
                     ") but the file has %zu",
                     N, data, data + e->usize, f->len);
    uLong crc = crc32(0L, Z_NULL, 0);
    for (uint64_t o = 0; o < e->usize;) {
        uInt chunk = e->usize - o > (1u << 30) ? (1u << 30) : (uInt)(e->usize - o);
        crc = crc32(crc, b + data + o, chunk);
        o += chunk;
    }
    if ((uint32_t)crc != e->crc)
        return zfail(f, err, SG_EINVAL, "entry '%s' is corrupt: CRC-32 %08" PRIx32
                     ", the directory says %08" PRIx32, N, (uint32_t)crc, e->crc);
    e->data = b + data;
    return SG_OK;
}

/* Finds the one "<stem>/data.pkl" and sets f->stem. */
static sg_status find_stem(sg_pt_file *f, sg_error *err)
{
    static const char suffix[] = "/data.pkl";
    const size_t sl = sizeof suffix - 1;
    pt_entry *found = NULL;
    for (size_t i = 0; i < f->nentries; i++) {
        pt_entry *e = &f->entries[i];
        if (e->name_len <= sl || memcmp(e->name + e->name_len - sl, suffix, sl) != 0 ||
            memchr(e->name, '/', e->name_len - sl))
            continue;
        if (found) {
            char a[NAME_CLIP + 4], b2[NAME_CLIP + 4];
            return zfail(f, err, SG_EINVAL, "two pickles, '%s' and '%s': not a torch.save file",
                         QUOTE(a, found->name, found->name_len), QUOTE(b2, e->name, e->name_len));
        }
        found = e;
    }
    if (!found)
        return zfail(f, err, SG_EINVAL,
                     "no '<name>/data.pkl' entry in the ZIP archive: not a torch.save file");
    f->pkl = found;
    f->stem = found->name;
    f->stem_len = found->name_len - sl;
    if (zip_find_in_stem(f, "constants.pkl", 13))
        return zfail(f, err, SG_EUNSUPPORTED,
                     "a TorchScript archive (torch.jit.save) is not a state dict; save "
                     "model.state_dict() with torch.save");
    return SG_OK;
}

static sg_status check_byteorder(sg_pt_file *f, sg_error *err)
{
    pt_entry *e = zip_find_in_stem(f, "byteorder", 9);
    if (!e)
        return SG_OK; /* torch < 2.1 does not write it, and was little-endian only */
    sg_status st = entry_data(f, e, err);
    if (st != SG_OK)
        return st;
    if (e->usize == 6 && memcmp(e->data, "little", 6) == 0)
        return SG_OK;
    if (e->usize == 3 && memcmp(e->data, "big", 3) == 0)
        return zfail(f, err, SG_EUNSUPPORTED,
                     "big-endian checkpoint (byteorder \"big\") is not supported");
    char vb[NAME_CLIP + 4];
    return zfail(f, err, SG_EINVAL, "byteorder entry holds \"%s\", not \"little\" or \"big\"",
                 QUOTE(vb, e->data, e->usize > 40 ? 40 : (size_t)e->usize));
}

/* ---- 2. the pickle machine ------------------------------------------------------------- */

typedef enum pk_kind {
    PK_NONE,
    PK_BOOL,
    PK_INT,
    PK_FLOAT,
    PK_STR,
    PK_TUPLE,
    PK_LIST,
    PK_DICT, /* items: key, value, key, value, ... */
    PK_GLOBAL,
    PK_STORAGE,
    PK_TENSOR
} pk_kind;

static const char *const pk_kind_names[] = {"None",   "bool", "int",    "float",   "str",   "tuple",
                                            "list",   "dict", "global", "storage", "tensor"};

typedef struct pk_obj {
    uint8_t kind;
    uint8_t sub;     /* BOOL: value; GLOBAL: index in pk_globals */
    uint32_t n, cap; /* STR: length; containers: items used and allocated */
    union {
        int64_t i;
        double f;
        const unsigned char *s; /* into data.pkl */
        uint32_t *items;
        uint32_t ref; /* STORAGE, TENSOR: index into the machine's tables */
    } u;
} pk_obj;

/* The globals a state dict uses; nothing else is ever accepted. */
enum { G_ORDERED_DICT, G_REBUILD_TENSOR, G_REBUILD_PARAMETER, G_REBUILD_PARAMETER_STATE };
static const struct {
    const char *module, *name;
    int dtype; /* a storage type's sg_dtype, or -1 */
} pk_globals[] = {
    {"collections", "OrderedDict", -1},
    {"torch._utils", "_rebuild_tensor_v2", -1},
    {"torch._utils", "_rebuild_parameter", -1},
    {"torch._utils", "_rebuild_parameter_with_state", -1},
    {"torch", "FloatStorage", SG_DT_F32},
    {"torch", "HalfStorage", SG_DT_F16},
    {"torch", "BFloat16Storage", SG_DT_BF16},
    {"torch", "DoubleStorage", SG_DT_F64},
    {"torch", "LongStorage", SG_DT_I64},
    {"torch", "IntStorage", SG_DT_I32},
    {"torch", "ShortStorage", SG_DT_I16},
    {"torch", "CharStorage", SG_DT_I8},
    {"torch", "ByteStorage", SG_DT_U8},
    {"torch", "BoolStorage", SG_DT_BOOL},
};
#define NGLOBALS (sizeof pk_globals / sizeof pk_globals[0])

typedef struct pk_storage {
    sg_dtype dtype;
    const unsigned char *key;
    size_t key_len;
    uint64_t numel;
} pk_storage;

typedef struct pk_tensor {
    uint32_t storage;
    int ndim;
    int64_t offset;
    int64_t shape[SG_PT_MAX_DIMS], stride[SG_PT_MAX_DIMS];
    size_t op_off; /* of its REDUCE, for messages */
    bool checked;  /* view checked against the storage */
} pk_tensor;

/* A (name, tensor) pair of the top-level dict. */
typedef struct pk_out {
    const unsigned char *name;
    size_t name_len;
    uint32_t tensor;
} pk_out;

typedef struct pk_machine {
    const unsigned char *start, *p, *end;
    const char *label; /* the file, for messages */
    char what[NAME_CLIP + 4]; /* the pickle's entry name */
    sg_error *err;
    size_t op_off;
    pk_obj *objs;
    uint32_t nobjs, capobjs;
    uint32_t *stack;
    uint32_t sp, capstack;
    uint32_t marks[SG_PT_MAX_MARKS];
    uint32_t nmarks;
    uint32_t *memo;
    uint32_t nmemo, capmemo;
    uint64_t items;
    pk_storage *storages;
    uint32_t nstorages, capstorages;
    pk_tensor *tensors;
    uint32_t ntensors, captensors;
    pk_out *out;
    size_t nout;
} pk_machine;

enum { OBJ_NONE, OBJ_FALSE, OBJ_TRUE, OBJ_FIRST_FREE };

static sg_status pk_fail(pk_machine *m, sg_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static sg_status pk_fail(pk_machine *m, sg_status code, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return sg_error_set(m->err, code, "%s: %s: %s at offset %zu", m->label, m->what, msg,
                        m->op_off);
}

/* arr (capacity *cap elements of size el) with room for need >= 1 elements, at most limit:
 * arr itself, or a larger copy, or NULL when out of memory (arr is then untouched). */
static void *grow(void *arr, uint32_t *cap, uint32_t need, size_t el, uint32_t limit)
{
    if (need <= *cap)
        return arr;
    uint64_t c = *cap ? (uint64_t)*cap * 2 : 16;
    if (c < need)
        c = need;
    if (c > limit)
        c = limit;
    void *q = realloc(arr, (size_t)c * el);
    if (q)
        *cap = (uint32_t)c;
    return q;
}

static void pk_free(pk_machine *m)
{
    for (uint32_t i = 0; i < m->nobjs; i++) {
        uint8_t k = m->objs[i].kind;
        if (k == PK_TUPLE || k == PK_LIST || k == PK_DICT)
            free(m->objs[i].u.items);
    }
    free(m->objs);
    free(m->stack);
    free(m->memo);
    free(m->storages);
    free(m->tensors);
    free(m->out);
}

static sg_status pk_new(pk_machine *m, pk_kind kind, uint32_t *idx)
{
    if (m->nobjs >= SG_PT_MAX_OBJECTS)
        return pk_fail(m, SG_ETOOBIG, "pickle creates more than %u objects", SG_PT_MAX_OBJECTS);
    pk_obj *objs = grow(m->objs, &m->capobjs, m->nobjs + 1, sizeof *objs, SG_PT_MAX_OBJECTS);
    if (!objs)
        return pk_fail(m, SG_ENOMEM, "out of memory for pickle objects");
    m->objs = objs;
    pk_obj *o = &m->objs[m->nobjs];
    memset(o, 0, sizeof *o);
    o->kind = (uint8_t)kind;
    *idx = m->nobjs++;
    return SG_OK;
}

static sg_status pk_push(pk_machine *m, uint32_t idx)
{
    if (m->sp >= SG_PT_MAX_STACK)
        return pk_fail(m, SG_ETOOBIG, "pickle stack deeper than %u", SG_PT_MAX_STACK);
    uint32_t *stack = grow(m->stack, &m->capstack, m->sp + 1, sizeof *stack, SG_PT_MAX_STACK);
    if (!stack)
        return pk_fail(m, SG_ENOMEM, "out of memory for the pickle stack");
    m->stack = stack;
    m->stack[m->sp++] = idx;
    return SG_OK;
}

/* Like Python's unpickler, a MARK starts a new stack: nothing below it is reachable. */
static uint32_t pk_base(const pk_machine *m)
{
    return m->nmarks ? m->marks[m->nmarks - 1] : 0;
}

static sg_status pk_pop(pk_machine *m, uint32_t *idx)
{
    if (m->sp <= pk_base(m))
        return pk_fail(m, SG_EINVAL, "pickle stack underflow");
    *idx = m->stack[--m->sp];
    return SG_OK;
}

static sg_status pk_top(pk_machine *m, uint32_t *idx)
{
    if (m->sp <= pk_base(m))
        return pk_fail(m, SG_EINVAL, "pickle stack underflow");
    *idx = m->stack[m->sp - 1];
    return SG_OK;
}

/* Pops the top MARK: the items above it are stack[*first .. sp). */
static sg_status pk_pop_mark(pk_machine *m, uint32_t *first)
{
    if (!m->nmarks)
        return pk_fail(m, SG_EINVAL, "no MARK to pop");
    *first = m->marks[--m->nmarks];
    return SG_OK;
}

static sg_status pk_need(pk_machine *m, uint64_t n)
{
    if ((uint64_t)(m->end - m->p) < n)
        return pk_fail(m, SG_EINVAL, "truncated: opcode needs %" PRIu64 " bytes, %zu remain", n,
                       (size_t)(m->end - m->p));
    return SG_OK;
}

static sg_status pk_str(pk_machine *m, uint64_t len)
{
    sg_status st;
    if (len > SG_PT_MAX_STRING)
        return pk_fail(m, SG_ETOOBIG, "string of %" PRIu64 " bytes exceeds the limit of %u", len,
                       SG_PT_MAX_STRING);
    if ((st = pk_need(m, len)) != SG_OK)
        return st;
    if (!sg_utf8_valid(m->p, (size_t)len))
        return pk_fail(m, SG_EINVAL, "string is not valid UTF-8");
    uint32_t o;
    if ((st = pk_new(m, PK_STR, &o)) != SG_OK)
        return st;
    m->objs[o].u.s = m->p;
    m->objs[o].n = (uint32_t)len;
    m->p += len;
    return pk_push(m, o);
}

static sg_status pk_int(pk_machine *m, int64_t v)
{
    uint32_t o;
    sg_status st = pk_new(m, PK_INT, &o);
    if (st != SG_OK)
        return st;
    m->objs[o].u.i = v;
    return pk_push(m, o);
}

/* Appends n object indices to container c. */
static sg_status pk_append(pk_machine *m, uint32_t c, const uint32_t *src, uint32_t n)
{
    if (m->items + n > SG_PT_MAX_ITEMS)
        return pk_fail(m, SG_ETOOBIG, "containers hold more than %u items", SG_PT_MAX_ITEMS);
    pk_obj *o = &m->objs[c];
    if (n == 0)
        return SG_OK;
    uint32_t *items = grow(o->u.items, &o->cap, o->n + n, sizeof *items, SG_PT_MAX_ITEMS);
    if (!items)
        return pk_fail(m, SG_ENOMEM, "out of memory for container items");
    o->u.items = items;
    memcpy(o->u.items + o->n, src, (size_t)n * sizeof *src);
    o->n += n;
    m->items += n;
    return SG_OK;
}

/* A new container of kind holding stack[first .. sp), which it replaces. */
static sg_status pk_collect(pk_machine *m, pk_kind kind, uint32_t first)
{
    uint32_t c;
    sg_status st = pk_new(m, kind, &c);
    if (st == SG_OK)
        st = pk_append(m, c, m->stack + first, m->sp - first);
    if (st != SG_OK)
        return st;
    m->sp = first;
    return pk_push(m, c);
}

static bool pk_is(const pk_machine *m, uint32_t o, pk_kind k)
{
    return m->objs[o].kind == k;
}

static const char *pk_kind_of(const pk_machine *m, uint32_t o)
{
    return pk_kind_names[m->objs[o].kind];
}

/* Dict keys must be hashable; the scalars are all a state dict uses. */
static sg_status pk_check_keys(pk_machine *m, const uint32_t *kv, uint32_t n)
{
    if (n % 2)
        return pk_fail(m, SG_EINVAL, "odd number of items (%" PRIu32 ") for a dict", n);
    for (uint32_t i = 0; i < n; i += 2)
        if (m->objs[kv[i]].kind > PK_STR)
            return pk_fail(m, SG_EINVAL, "a %s as a dict key is not supported",
                           pk_kind_of(m, kv[i]));
    return SG_OK;
}

static sg_status pk_global(pk_machine *m, const unsigned char *mod, size_t ml,
                           const unsigned char *name, size_t nl)
{
    for (size_t g = 0; g < NGLOBALS; g++)
        if (strlen(pk_globals[g].module) == ml && memcmp(pk_globals[g].module, mod, ml) == 0 &&
            strlen(pk_globals[g].name) == nl && memcmp(pk_globals[g].name, name, nl) == 0) {
            uint32_t o;
            sg_status st = pk_new(m, PK_GLOBAL, &o);
            if (st != SG_OK)
                return st;
            m->objs[o].sub = (uint8_t)g;
            return pk_push(m, o);
        }
    char a[NAME_CLIP + 4], b[NAME_CLIP + 4];
    return pk_fail(m, SG_EUNSUPPORTED,
                   "unsupported global '%s.%s' (only plain state dicts of dense tensors are read)",
                   QUOTE(a, mod, ml), QUOTE(b, name, nl));
}

/* One '\n'-terminated line of a GLOBAL opcode. */
static sg_status pk_line(pk_machine *m, const unsigned char **s, size_t *len)
{
    size_t avail = (size_t)(m->end - m->p);
    const unsigned char *nl = memchr(m->p, '\n', avail < MAX_GLOBAL_LINE ? avail : MAX_GLOBAL_LINE);
    if (!nl)
        return pk_fail(m, SG_EINVAL, "GLOBAL name unterminated or longer than %d bytes",
                       MAX_GLOBAL_LINE - 1);
    *s = m->p;
    *len = (size_t)(nl - m->p);
    m->p = nl + 1;
    return SG_OK;
}

/* BINPERSID: ('storage', <storage type>, key, location, numel), as torch's persistent_id. */
static sg_status pk_persistent(pk_machine *m)
{
    uint32_t pid = 0, o;
    sg_status st = pk_pop(m, &pid);
    if (st != SG_OK)
        return st;
    const pk_obj *t = &m->objs[pid];
    if (t->kind != PK_TUPLE || t->n != 5)
        return pk_fail(m, SG_EINVAL, "persistent id is not a 5-tuple ('storage', type, key, "
                                     "location, numel)");
    const pk_obj *tag = &m->objs[t->u.items[0]], *type = &m->objs[t->u.items[1]],
                 *key = &m->objs[t->u.items[2]], *loc = &m->objs[t->u.items[3]],
                 *numel = &m->objs[t->u.items[4]];
    if (tag->kind != PK_STR || tag->n != 7 || memcmp(tag->u.s, "storage", 7) != 0)
        return pk_fail(m, SG_EINVAL, "persistent id does not start with 'storage'");
    if (type->kind != PK_GLOBAL || pk_globals[type->sub].dtype < 0)
        return pk_fail(m, SG_EINVAL, "persistent id names no storage type");
    if (key->kind != PK_STR || key->n == 0 || key->n > MAX_KEY || memchr(key->u.s, 0, key->n))
        return pk_fail(m, SG_EINVAL, "storage key is not a string of 1 to %d bytes", MAX_KEY);
    if (loc->kind != PK_STR)
        return pk_fail(m, SG_EINVAL, "storage location is not a string");
    if (numel->kind != PK_INT || numel->u.i < 0)
        return pk_fail(m, SG_EINVAL, "storage size is not a non-negative integer");
    if (m->nstorages >= SG_PT_MAX_TENSORS)
        return pk_fail(m, SG_ETOOBIG, "more than %u storages", SG_PT_MAX_TENSORS);
    pk_storage *ss =
        grow(m->storages, &m->capstorages, m->nstorages + 1, sizeof *ss, SG_PT_MAX_TENSORS);
    if (!ss)
        return pk_fail(m, SG_ENOMEM, "out of memory for storages");
    m->storages = ss;
    pk_storage *s = &m->storages[m->nstorages];
    s->dtype = (sg_dtype)pk_globals[type->sub].dtype;
    s->key = key->u.s;
    s->key_len = key->n;
    s->numel = (uint64_t)numel->u.i;
    if ((st = pk_new(m, PK_STORAGE, &o)) != SG_OK)
        return st;
    m->objs[o].u.ref = m->nstorages++;
    return pk_push(m, o);
}

/* A tuple of at most SG_PT_MAX_DIMS non-negative ints into v; its length, or -1. */
static int pk_dims(const pk_machine *m, uint32_t o, int64_t *v)
{
    const pk_obj *t = &m->objs[o];
    if (t->kind != PK_TUPLE || t->n > SG_PT_MAX_DIMS)
        return -1;
    for (uint32_t i = 0; i < t->n; i++) {
        const pk_obj *d = &m->objs[t->u.items[i]];
        if (d->kind != PK_INT || d->u.i < 0)
            return -1;
        v[i] = d->u.i;
    }
    return (int)t->n;
}

/* _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks
 * [, metadata]): the view is checked against the storage later, by name. */
static sg_status pk_rebuild_tensor(pk_machine *m, const pk_obj *args, uint32_t *res)
{
    const uint32_t *a = args->u.items;
    if (args->n != 6 && args->n != 7)
        return pk_fail(m, SG_EINVAL, "_rebuild_tensor_v2 takes 6 or 7 arguments, not %" PRIu32,
                       args->n);
    if (!pk_is(m, a[0], PK_STORAGE))
        return pk_fail(m, SG_EINVAL, "_rebuild_tensor_v2: argument 1 is a %s, not a storage",
                       pk_kind_of(m, a[0]));
    if (!pk_is(m, a[1], PK_INT) || m->objs[a[1]].u.i < 0)
        return pk_fail(m, SG_EINVAL, "_rebuild_tensor_v2: storage offset is not a "
                                     "non-negative integer");
    pk_tensor t = {0};
    t.storage = m->objs[a[0]].u.ref;
    t.offset = m->objs[a[1]].u.i;
    t.op_off = m->op_off;
    int nd = pk_dims(m, a[2], t.shape);
    if (nd < 0) {
        const pk_obj *s = &m->objs[a[2]];
        if (s->kind == PK_TUPLE && s->n > SG_PT_MAX_DIMS)
            return pk_fail(m, SG_EUNSUPPORTED, "tensor has %" PRIu32 " dimensions; at most %d "
                           "are supported", s->n, SG_PT_MAX_DIMS);
        return pk_fail(m, SG_EINVAL, "_rebuild_tensor_v2: size is not a tuple of non-negative "
                                     "integers");
    }
    if (pk_dims(m, a[3], t.stride) != nd)
        return pk_fail(m, SG_EINVAL, "_rebuild_tensor_v2: stride is not a tuple of %d "
                                     "non-negative integers (negative strides are refused)", nd);
    t.ndim = nd;
    if (!pk_is(m, a[4], PK_BOOL))
        return pk_fail(m, SG_EINVAL, "_rebuild_tensor_v2: requires_grad is not a bool");
    if (!pk_is(m, a[5], PK_DICT))
        return pk_fail(m, SG_EINVAL, "_rebuild_tensor_v2: backward_hooks is not a dict");
    if (args->n == 7 && !pk_is(m, a[6], PK_NONE) &&
        !(pk_is(m, a[6], PK_DICT) && m->objs[a[6]].n == 0))
        return pk_fail(m, SG_EUNSUPPORTED, "tensor metadata (conjugate or negative views) is "
                                           "not supported");
    if (m->ntensors >= SG_PT_MAX_TENSORS)
        return pk_fail(m, SG_ETOOBIG, "more than %u tensors", SG_PT_MAX_TENSORS);
    pk_tensor *ts =
        grow(m->tensors, &m->captensors, m->ntensors + 1, sizeof *ts, SG_PT_MAX_TENSORS);
    if (!ts)
        return pk_fail(m, SG_ENOMEM, "out of memory for tensors");
    m->tensors = ts;
    sg_status st = pk_new(m, PK_TENSOR, res);
    if (st != SG_OK)
        return st;
    m->tensors[m->ntensors] = t;
    m->objs[*res].u.ref = m->ntensors++;
    return SG_OK;
}

/* REDUCE: the callable is always one of pk_globals, interpreted here. */
static sg_status pk_reduce(pk_machine *m)
{
    uint32_t args_i = 0, fn_i = 0, res = 0;
    sg_status st;
    if ((st = pk_pop(m, &args_i)) != SG_OK || (st = pk_top(m, &fn_i)) != SG_OK)
        return st;
    const pk_obj *args = &m->objs[args_i], *fn = &m->objs[fn_i];
    if (fn->kind != PK_GLOBAL)
        return pk_fail(m, SG_EINVAL, "REDUCE calls a %s", pk_kind_of(m, fn_i));
    if (args->kind != PK_TUPLE)
        return pk_fail(m, SG_EINVAL, "REDUCE arguments are a %s, not a tuple",
                       pk_kind_of(m, args_i));
    switch (fn->sub) {
    case G_ORDERED_DICT:
        if (args->n != 0)
            return pk_fail(m, SG_EINVAL, "OrderedDict() with arguments is not supported");
        if ((st = pk_new(m, PK_DICT, &res)) != SG_OK)
            return st;
        break;
    case G_REBUILD_TENSOR:
        if ((st = pk_rebuild_tensor(m, args, &res)) != SG_OK)
            return st;
        break;
    case G_REBUILD_PARAMETER:
    case G_REBUILD_PARAMETER_STATE: {
        /* (data, requires_grad, backward_hooks[, state]): the Parameter is its data */
        uint32_t want = fn->sub == G_REBUILD_PARAMETER ? 3 : 4;
        if (args->n != want || !pk_is(m, args->u.items[0], PK_TENSOR) ||
            !pk_is(m, args->u.items[1], PK_BOOL) || !pk_is(m, args->u.items[2], PK_DICT))
            return pk_fail(m, SG_EINVAL, "%s takes (tensor, bool, dict%s)",
                           pk_globals[fn->sub].name, want == 4 ? ", state" : "");
        res = args->u.items[0];
        break;
    }
    default:
        return pk_fail(m, SG_EUNSUPPORTED, "calling torch.%s is not supported",
                       pk_globals[fn->sub].name);
    }
    m->stack[m->sp - 1] = res;
    return SG_OK;
}

/* Runs the opcodes to STOP; *result is the unpickled object. Accepted, and nothing else:
 *   protocol   PROTO (2..5), FRAME (a hint: only checked to lie inside the pickle)
 *   values     NONE NEWTRUE NEWFALSE BININT BININT1 BININT2 LONG1 (<= 8 bytes) BINFLOAT
 *              BINUNICODE SHORT_BINUNICODE BINUNICODE8 (strict UTF-8)
 *   containers EMPTY_TUPLE TUPLE TUPLE1 TUPLE2 TUPLE3 EMPTY_LIST LIST APPEND APPENDS
 *              EMPTY_DICT DICT SETITEM SETITEMS (scalar keys only) MARK
 *   memo       BINPUT LONG_BINPUT MEMOIZE (numbered in order) BINGET LONG_BINGET
 *   torch      GLOBAL STACK_GLOBAL (pk_globals only) REDUCE (on those) BUILD (dict on a dict:
 *              the OrderedDict's _metadata, ignored) BINPERSID (torch's storage ids) STOP */
static sg_status pk_run(pk_machine *m, uint32_t *result)
{
    sg_status st = SG_OK;
    uint32_t a = 0, b = 0, c, first = 0;
    const unsigned char *s1 = NULL, *s2 = NULL;
    size_t l1 = 0, l2 = 0;
    while (st == SG_OK) {
        if (m->p >= m->end) {
            m->op_off = (size_t)(m->p - m->start);
            return pk_fail(m, SG_EINVAL, "truncated: no STOP opcode");
        }
        m->op_off = (size_t)(m->p - m->start);
        unsigned char op = *m->p++;
        switch (op) {
        case 0x80: /* PROTO */
            if ((st = pk_need(m, 1)) != SG_OK)
                break;
            if (*m->p > 5)
                return pk_fail(m, SG_EUNSUPPORTED, "pickle protocol %u", *m->p);
            m->p++;
            break;
        case 0x95: /* FRAME: a framing hint; the bytes that follow are read as usual */
            if ((st = pk_need(m, 8)) != SG_OK)
                break;
            if (rd64(m->p) > (uint64_t)(m->end - m->p - 8))
                return pk_fail(m, SG_EINVAL, "frame of %" PRIu64 " bytes runs past the end",
                               rd64(m->p));
            m->p += 8;
            break;
        case '}': /* EMPTY_DICT */
        case ']': /* EMPTY_LIST */
        case ')': /* EMPTY_TUPLE */
            if ((st = pk_new(m, op == '}' ? PK_DICT : op == ']' ? PK_LIST : PK_TUPLE, &a)) ==
                SG_OK)
                st = pk_push(m, a);
            break;
        case '(': /* MARK */
            if (m->nmarks >= SG_PT_MAX_MARKS)
                return pk_fail(m, SG_ETOOBIG, "MARKs nested deeper than %d", SG_PT_MAX_MARKS);
            m->marks[m->nmarks++] = m->sp;
            break;
        case 'q':  /* BINPUT */
        case 'r':  /* LONG_BINPUT */
        case 0x94: /* MEMOIZE */
            if (op == 'q') {
                if ((st = pk_need(m, 1)) != SG_OK)
                    break;
                b = *m->p++;
            } else if (op == 'r') {
                if ((st = pk_need(m, 4)) != SG_OK)
                    break;
                b = rd32(m->p);
                m->p += 4;
            } else {
                b = m->nmemo;
            }
            if ((st = pk_top(m, &a)) != SG_OK)
                break;
            /* picklers number memo entries 0, 1, 2, ...: a sparse memo is refused */
            if (b > m->nmemo)
                return pk_fail(m, SG_EINVAL, "memo index %" PRIu32 " skips ahead (memo holds %"
                               PRIu32 ")", b, m->nmemo);
            if (b == m->nmemo) {
                if (m->nmemo >= SG_PT_MAX_MEMO)
                    return pk_fail(m, SG_ETOOBIG, "more than %u memo entries", SG_PT_MAX_MEMO);
                uint32_t *memo =
                    grow(m->memo, &m->capmemo, m->nmemo + 1, sizeof *memo, SG_PT_MAX_MEMO);
                if (!memo)
                    return pk_fail(m, SG_ENOMEM, "out of memory for the memo");
                m->memo = memo;
                m->nmemo++;
            }
            m->memo[b] = a;
            break;
        case 'h': /* BINGET */
        case 'j': /* LONG_BINGET */
            if ((st = pk_need(m, op == 'h' ? 1 : 4)) != SG_OK)
                break;
            b = op == 'h' ? *m->p : rd32(m->p);
            m->p += op == 'h' ? 1 : 4;
            if (b >= m->nmemo)
                return pk_fail(m, SG_EINVAL, "memo index %" PRIu32 " out of range (memo holds %"
                               PRIu32 ")", b, m->nmemo);
            st = pk_push(m, m->memo[b]);
            break;
        case 'c': /* GLOBAL */
            if ((st = pk_line(m, &s1, &l1)) == SG_OK && (st = pk_line(m, &s2, &l2)) == SG_OK)
                st = pk_global(m, s1, l1, s2, l2);
            break;
        case 0x93: /* STACK_GLOBAL */
            if ((st = pk_pop(m, &b)) != SG_OK || (st = pk_pop(m, &a)) != SG_OK)
                break;
            if (!pk_is(m, a, PK_STR) || !pk_is(m, b, PK_STR))
                return pk_fail(m, SG_EINVAL, "STACK_GLOBAL needs two strings");
            st = pk_global(m, m->objs[a].u.s, m->objs[a].n, m->objs[b].u.s, m->objs[b].n);
            break;
        case 'X': /* BINUNICODE */
            if ((st = pk_need(m, 4)) == SG_OK) {
                uint32_t n = rd32(m->p);
                m->p += 4;
                st = pk_str(m, n);
            }
            break;
        case 0x8c: /* SHORT_BINUNICODE */
            if ((st = pk_need(m, 1)) == SG_OK) {
                uint32_t n = *m->p++;
                st = pk_str(m, n);
            }
            break;
        case 0x8d: /* BINUNICODE8 */
            if ((st = pk_need(m, 8)) == SG_OK) {
                uint64_t n = rd64(m->p);
                m->p += 8;
                st = pk_str(m, n);
            }
            break;
        case 'J': /* BININT */
            if ((st = pk_need(m, 4)) == SG_OK) {
                int32_t v = (int32_t)rd32(m->p);
                m->p += 4;
                st = pk_int(m, v);
            }
            break;
        case 'K': /* BININT1 */
            if ((st = pk_need(m, 1)) == SG_OK)
                st = pk_int(m, *m->p++);
            break;
        case 'M': /* BININT2 */
            if ((st = pk_need(m, 2)) == SG_OK) {
                int64_t v = rd16(m->p);
                m->p += 2;
                st = pk_int(m, v);
            }
            break;
        case 0x8a: { /* LONG1: little-endian two's complement */
            if ((st = pk_need(m, 1)) != SG_OK)
                break;
            size_t n = *m->p++;
            if (n > 8)
                return pk_fail(m, SG_EUNSUPPORTED, "integer of %zu bytes does not fit 64 bits", n);
            if ((st = pk_need(m, n)) != SG_OK)
                break;
            uint64_t v = 0;
            for (size_t i = 0; i < n; i++)
                v |= (uint64_t)m->p[i] << (8 * i);
            if (n && n < 8 && (m->p[n - 1] & 0x80))
                v |= ~(uint64_t)0 << (8 * n);
            m->p += n;
            st = pk_int(m, (int64_t)v);
            break;
        }
        case 'G': { /* BINFLOAT: big-endian double */
            if ((st = pk_need(m, 8)) != SG_OK)
                break;
            uint64_t bits = 0;
            for (int i = 0; i < 8; i++)
                bits = bits << 8 | m->p[i];
            m->p += 8;
            if ((st = pk_new(m, PK_FLOAT, &a)) != SG_OK)
                break;
            memcpy(&m->objs[a].u.f, &bits, sizeof bits);
            st = pk_push(m, a);
            break;
        }
        case 'N': /* NONE */
            st = pk_push(m, OBJ_NONE);
            break;
        case 0x88: /* NEWTRUE */
        case 0x89: /* NEWFALSE */
            st = pk_push(m, op == 0x88 ? OBJ_TRUE : OBJ_FALSE);
            break;
        case 't': /* TUPLE */
        case 'l': /* LIST */
        case 'd': /* DICT */
            if ((st = pk_pop_mark(m, &first)) != SG_OK)
                break;
            if (op == 'd' && (st = pk_check_keys(m, m->stack + first, m->sp - first)) != SG_OK)
                break;
            st = pk_collect(m, op == 't' ? PK_TUPLE : op == 'l' ? PK_LIST : PK_DICT, first);
            break;
        case 0x85: /* TUPLE1 */
        case 0x86: /* TUPLE2 */
        case 0x87: /* TUPLE3 */
            c = (uint32_t)(op - 0x84);
            if (m->sp - pk_base(m) < c)
                return pk_fail(m, SG_EINVAL, "pickle stack underflow");
            st = pk_collect(m, PK_TUPLE, m->sp - c);
            break;
        case 'a': /* APPEND */
            if ((st = pk_pop(m, &b)) != SG_OK || (st = pk_top(m, &a)) != SG_OK)
                break;
            if (!pk_is(m, a, PK_LIST))
                return pk_fail(m, SG_EINVAL, "APPEND to a %s", pk_kind_of(m, a));
            st = pk_append(m, a, &b, 1);
            break;
        case 'e': /* APPENDS */
        case 'u': /* SETITEMS */
            if ((st = pk_pop_mark(m, &first)) != SG_OK)
                break;
            if (first <= pk_base(m))
                return pk_fail(m, SG_EINVAL, "pickle stack underflow");
            a = m->stack[first - 1];
            if (!pk_is(m, a, op == 'e' ? PK_LIST : PK_DICT))
                return pk_fail(m, SG_EINVAL, "%s to a %s", op == 'e' ? "APPENDS" : "SETITEMS",
                               pk_kind_of(m, a));
            if (op == 'u' && (st = pk_check_keys(m, m->stack + first, m->sp - first)) != SG_OK)
                break;
            if ((st = pk_append(m, a, m->stack + first, m->sp - first)) == SG_OK)
                m->sp = first;
            break;
        case 's': { /* SETITEM */
            uint32_t kv[2];
            if ((st = pk_pop(m, &kv[1])) != SG_OK || (st = pk_pop(m, &kv[0])) != SG_OK ||
                (st = pk_top(m, &a)) != SG_OK)
                break;
            if (!pk_is(m, a, PK_DICT))
                return pk_fail(m, SG_EINVAL, "SETITEM on a %s", pk_kind_of(m, a));
            if ((st = pk_check_keys(m, kv, 2)) == SG_OK)
                st = pk_append(m, a, kv, 2);
            break;
        }
        case 'R': /* REDUCE */
            st = pk_reduce(m);
            break;
        case 'b': /* BUILD: only the attributes of a state dict's OrderedDict (_metadata) */
            if ((st = pk_pop(m, &b)) != SG_OK || (st = pk_top(m, &a)) != SG_OK)
                break;
            if (!pk_is(m, a, PK_DICT) || !pk_is(m, b, PK_DICT))
                return pk_fail(m, SG_EINVAL, "BUILD of a %s with a %s is not supported",
                               pk_kind_of(m, a), pk_kind_of(m, b));
            break;
        case 'Q': /* BINPERSID */
            st = pk_persistent(m);
            break;
        case '.': /* STOP */
            if (m->nmarks)
                return pk_fail(m, SG_EINVAL, "STOP with a MARK still open");
            if (m->sp != 1)
                return pk_fail(m, SG_EINVAL, "STOP with %" PRIu32 " values on the stack, not 1",
                               m->sp);
            if (m->p != m->end)
                return pk_fail(m, SG_EINVAL, "%zu bytes after STOP", (size_t)(m->end - m->p));
            *result = m->stack[0];
            return SG_OK;
        default:
            return pk_fail(m, SG_EUNSUPPORTED, "unsupported pickle opcode 0x%02x", op);
        }
    }
    return st;
}

/* Number of elements of t's view (*numel) and one past the highest element it addresses
 * (*span; the offset when empty). False on overflow. */
static bool view_extent(const pk_tensor *t, uint64_t *numel, uint64_t *span)
{
    uint64_t n = 1, hi = (uint64_t)t->offset;
    for (int d = 0; d < t->ndim; d++) {
        uint64_t s = (uint64_t)t->shape[d];
        if (s && n > (uint64_t)INT64_MAX / s)
            return false;
        n *= s;
    }
    *numel = n;
    if (n == 0) {
        *span = hi;
        return true;
    }
    for (int d = 0; d < t->ndim; d++) {
        uint64_t s = (uint64_t)t->shape[d] - 1, st = (uint64_t)t->stride[d];
        if (s && st > ((uint64_t)INT64_MAX - 1 - hi) / s)
            return false;
        hi += s * st;
    }
    *span = hi + 1;
    return true;
}

/* Checks that tensor ti's view lies in its storage's declared elements; name may be NULL. */
static sg_status pk_check_view(pk_machine *m, uint32_t ti, const unsigned char *name,
                               size_t name_len)
{
    pk_tensor *t = &m->tensors[ti];
    if (t->checked)
        return SG_OK;
    const pk_storage *s = &m->storages[t->storage];
    uint64_t numel, span;
    char who[NAME_CLIP + 40], kb[NAME_CLIP + 4], sb[96], tb[96];
    if (name) {
        char nb[NAME_CLIP + 4];
        snprintf(who, sizeof who, "tensor '%s'", QUOTE(nb, name, name_len));
    } else {
        snprintf(who, sizeof who, "the tensor built at offset %zu", t->op_off);
    }
    if (!view_extent(t, &numel, &span))
        return sg_error_set(m->err, SG_EINVAL, "%s: %s: shape %s, stride %s overflows", m->label,
                            who, sg_shape_str(sb, sizeof sb, t->ndim, t->shape),
                            sg_shape_str(tb, sizeof tb, t->ndim, t->stride));
    if (span > s->numel)
        return sg_error_set(m->err, SG_EINVAL,
                            "%s: %s (shape %s, stride %s, offset %" PRId64 ") addresses element %"
                            PRIu64 " of storage '%s', which holds %" PRIu64,
                            m->label, who, sg_shape_str(sb, sizeof sb, t->ndim, t->shape),
                            sg_shape_str(tb, sizeof tb, t->ndim, t->stride), t->offset,
                            span - 1 + (numel == 0), QUOTE(kb, s->key, s->key_len), s->numel);
    t->checked = true;
    return SG_OK;
}

static int out_name_cmp(const void *pa, const void *pb)
{
    const pk_out *a = pa, *b = pb;
    return bytes_cmp(a->name, a->name_len, b->name, b->name_len);
}

/* The top-level dict: its tensor values into m->out, scalars skipped, anything else refused;
 * then every view checked. */
static sg_status pk_collect_tensors(pk_machine *m, uint32_t top)
{
    const pk_obj *d = &m->objs[top];
    if (d->kind != PK_DICT)
        return sg_error_set(m->err, SG_EINVAL,
                            "%s: %s holds a %s, not a dict of tensors (a state dict)", m->label,
                            m->what, pk_kind_of(m, top));
    m->out = calloc(d->n / 2 + 1, sizeof *m->out);
    if (!m->out)
        return sg_error_set(m->err, SG_ENOMEM, "%s: out of memory", m->label);
    char nb[NAME_CLIP + 4];
    for (uint32_t i = 0; i < d->n; i += 2) {
        const pk_obj *k = &m->objs[d->u.items[i]];
        uint32_t v = d->u.items[i + 1];
        if (k->kind != PK_STR)
            return sg_error_set(m->err, SG_EINVAL, "%s: state dict key %" PRIu32
                                " is a %s, not a string", m->label, i / 2, pk_kind_names[k->kind]);
        if (memchr(k->u.s, 0, k->n))
            return sg_error_set(m->err, SG_EINVAL, "%s: state dict key '%s' holds a NUL byte",
                                m->label, QUOTE(nb, k->u.s, k->n));
        uint8_t vk = m->objs[v].kind;
        if (vk == PK_TENSOR) {
            m->out[m->nout++] = (pk_out){k->u.s, k->n, m->objs[v].u.ref};
        } else if (vk > PK_STR) {
            return sg_error_set(m->err, SG_EUNSUPPORTED,
                                "%s: value of '%s' is a %s; only a flat state dict of tensors "
                                "is supported (save model.state_dict() itself)",
                                m->label, QUOTE(nb, k->u.s, k->n), pk_kind_of(m, v));
        }
    }
    sg_status st;
    for (size_t i = 0; i < m->nout; i++)
        if ((st = pk_check_view(m, m->out[i].tensor, m->out[i].name, m->out[i].name_len)) !=
            SG_OK)
            return st;
    for (uint32_t i = 0; i < m->ntensors; i++)
        if ((st = pk_check_view(m, i, NULL, 0)) != SG_OK)
            return st;
    /* duplicate names: a sorted copy */
    if (m->nout > 1) {
        pk_out *sorted = malloc(m->nout * sizeof *sorted);
        if (!sorted)
            return sg_error_set(m->err, SG_ENOMEM, "%s: out of memory", m->label);
        memcpy(sorted, m->out, m->nout * sizeof *sorted);
        qsort(sorted, m->nout, sizeof *sorted, out_name_cmp);
        for (size_t i = 1; i < m->nout; i++)
            if (out_name_cmp(&sorted[i - 1], &sorted[i]) == 0) {
                sg_error_set(m->err, SG_EINVAL, "%s: duplicate tensor name '%s'", m->label,
                             QUOTE(nb, sorted[i].name, sorted[i].name_len));
                free(sorted);
                return SG_EINVAL;
            }
        free(sorted);
    }
    return SG_OK;
}

/* Runs the machine over buf (pickle entry what of file label) up to the checked tensor list. */
static sg_status pk_parse(pk_machine *m, const unsigned char *buf, size_t len, const char *label,
                          const char *what, size_t what_len, sg_error *err)
{
    memset(m, 0, sizeof *m);
    m->start = m->p = buf;
    m->end = buf + len;
    m->label = label;
    m->err = err;
    QUOTE(m->what, what, what_len);
    uint32_t o, top = 0;
    sg_status st;
    /* None, False, True, shared by every use */
    if ((st = pk_new(m, PK_NONE, &o)) != SG_OK || (st = pk_new(m, PK_BOOL, &o)) != SG_OK ||
        (st = pk_new(m, PK_BOOL, &o)) != SG_OK)
        return st;
    m->objs[OBJ_TRUE].sub = 1;
    /* a stack exists from the start: "MARK DICT" on an empty one uses m->stack + 0 */
    uint32_t *stack = grow(NULL, &m->capstack, 1, sizeof *stack, SG_PT_MAX_STACK);
    if (!stack)
        return pk_fail(m, SG_ENOMEM, "out of memory for the pickle stack");
    m->stack = stack;
    if ((st = pk_run(m, &top)) != SG_OK)
        return st;
    return pk_collect_tensors(m, top);
}

sg_status sg_pt_parse_pickle_for_fuzz(const void *buf, size_t len, size_t *ntensors,
                                      sg_error *err)
{
    if (!buf && len)
        return sg_error_set(err, SG_EINVAL, "sg_pt_parse_pickle_for_fuzz: NULL buffer");
    pk_machine m;
    static const unsigned char empty[1];
    sg_status st = pk_parse(&m, len ? buf : empty, len, "<pickle>", "data.pkl", 8, err);
    if (st == SG_OK && ntensors)
        *ntensors = m.nout;
    pk_free(&m);
    return st;
}

/* ---- 3. tensors -------------------------------------------------------------------------- */

/* The entry of storage s, checked to hold its declared elements, with one dtype and size for
 * all its uses. */
static sg_status resolve_storage(sg_pt_file *f, const pk_storage *s, pt_entry **out,
                                 sg_error *err)
{
    char name[MAX_KEY + 8], kb[NAME_CLIP + 4], sb[NAME_CLIP + 4];
    memcpy(name, "data/", 5);
    memcpy(name + 5, s->key, s->key_len);
    pt_entry *e = zip_find_in_stem(f, name, 5 + s->key_len);
    QUOTE(kb, s->key, s->key_len);
    if (!e)
        return zfail(f, err, SG_EINVAL, "storage '%s' has no entry '%s/data/%s' in the archive",
                     kb, QUOTE(sb, f->stem, f->stem_len), kb);
    if (e->used && (e->dtype != s->dtype || e->numel != s->numel))
        return zfail(f, err, SG_EINVAL,
                     "storage '%s' is declared as %s[%" PRIu64 "] and as %s[%" PRIu64 "]",
                     kb, sg_dtype_name(e->dtype), e->numel, sg_dtype_name(s->dtype), s->numel);
    sg_status st = entry_data(f, e, err);
    if (st != SG_OK)
        return st;
    size_t es = sg_dtype_size(s->dtype);
    if (s->numel > e->usize / es)
        return zfail(f, err, SG_EINVAL,
                     "storage '%s' declares %" PRIu64 " %s elements but its entry holds %" PRIu64
                     " bytes",
                     kb, s->numel, sg_dtype_name(s->dtype), e->usize);
    e->used = true;
    e->dtype = s->dtype;
    e->numel = s->numel;
    *out = e;
    return SG_OK;
}

static int by_name_cmp(const void *pa, const void *pb)
{
    const sg_pt_tensor *const *a = pa, *const *b = pb;
    return strcmp((*a)->name, (*b)->name);
}

/* Builds f->tensors from the machine's checked output. */
static sg_status build_tensors(sg_pt_file *f, pk_machine *m, sg_error *err)
{
    /* every storage the pickle names, used or not, must exist */
    pt_entry **ent = calloc(m->nstorages + 1, sizeof *ent);
    if (!ent)
        return zfail(f, err, SG_ENOMEM, "out of memory");
    sg_status st = SG_OK;
    for (uint32_t i = 0; i < m->nstorages && st == SG_OK; i++)
        st = resolve_storage(f, &m->storages[i], &ent[i], err);
    size_t bytes = 1;
    for (size_t i = 0; i < m->nout; i++)
        bytes += m->out[i].name_len + 1;
    if (st == SG_OK) {
        f->tensors = calloc(m->nout + 1, sizeof *f->tensors);
        f->by_name = calloc(m->nout + 1, sizeof *f->by_name);
        f->names = malloc(bytes);
        if (!f->tensors || !f->by_name || !f->names)
            st = zfail(f, err, SG_ENOMEM, "out of memory for %zu tensors", m->nout);
    }
    char *sp = f->names;
    for (size_t i = 0; i < m->nout && st == SG_OK; i++) {
        const pk_tensor *t = &m->tensors[m->out[i].tensor];
        const pk_storage *s = &m->storages[t->storage];
        sg_pt_tensor *o = &f->tensors[i];
        memcpy(sp, m->out[i].name, m->out[i].name_len);
        sp[m->out[i].name_len] = '\0';
        o->name = sp;
        sp += m->out[i].name_len + 1;
        o->dtype = s->dtype;
        o->ndim = t->ndim;
        memcpy(o->shape, t->shape, sizeof o->shape);
        memcpy(o->stride, t->stride, sizeof o->stride);
        o->offset = t->offset;
        o->storage = ent[t->storage]->data;
        o->storage_bytes = (size_t)s->numel * sg_dtype_size(s->dtype);
        f->by_name[i] = o;
    }
    free(ent);
    if (st != SG_OK)
        return st;
    f->n = m->nout;
    qsort(f->by_name, f->n, sizeof *f->by_name, by_name_cmp);
    return SG_OK;
}

/* ---- open / close ------------------------------------------------------------------------ */

static sg_status pt_parse(sg_pt_file *f, sg_error *err)
{
    sg_status st;
    if ((st = check_legacy(f, err)) != SG_OK || (st = zip_read_directory(f, err)) != SG_OK ||
        (st = find_stem(f, err)) != SG_OK || (st = check_byteorder(f, err)) != SG_OK)
        return st;
    pt_entry *pkl = f->pkl;
    if (pkl->usize > SG_PT_MAX_PICKLE_BYTES)
        return zfail(f, err, SG_ETOOBIG, "data.pkl is %" PRIu64 " bytes; the limit is %u",
                     pkl->usize, SG_PT_MAX_PICKLE_BYTES);
    if ((st = entry_data(f, pkl, err)) != SG_OK)
        return st;
    pk_machine m;
    st = pk_parse(&m, pkl->data, (size_t)pkl->usize, f->label, (const char *)pkl->name,
                  pkl->name_len, err);
    if (st == SG_OK)
        st = build_tensors(f, &m, err);
    pk_free(&m);
    return st;
}

static sg_pt_file *pt_new(const char *label, sg_error *err)
{
    sg_pt_file *f = calloc(1, sizeof *f);
    if (!f) {
        sg_error_set(err, SG_ENOMEM, "out of memory opening %s", label);
        return NULL;
    }
    sg_file_label(f->label, label);
    return f;
}

sg_pt_file *sg_pt_open_memory(const void *buf, size_t len, sg_error *err)
{
    if (!buf && len) {
        sg_error_set(err, SG_EINVAL, "sg_pt_open_memory: NULL buffer");
        return NULL;
    }
    sg_pt_file *f = pt_new("<memory>", err);
    if (!f)
        return NULL;
    static const unsigned char empty[1];
    f->base = len ? buf : empty;
    f->len = len;
    if (pt_parse(f, err) != SG_OK) {
        sg_pt_close(f);
        return NULL;
    }
    return f;
}

sg_pt_file *sg_pt_open(const char *path, sg_error *err)
{
    if (!path) {
        sg_error_set(err, SG_EINVAL, "sg_pt_open: NULL path");
        return NULL;
    }
    sg_pt_file *f = pt_new(path, err);
    if (!f)
        return NULL;
    if (sg_file_map_open(path, SIZE_MAX, &f->file, err) != SG_OK) {
        sg_pt_close(f);
        return NULL;
    }
    f->base = f->file.data;
    f->len = f->file.len;
    if (pt_parse(f, err) != SG_OK) {
        sg_pt_close(f);
        return NULL;
    }
    return f;
}

void sg_pt_close(sg_pt_file *f)
{
    if (!f)
        return;
    sg_file_map_close(&f->file);
    free(f->entries);
    free(f->tensors);
    free(f->by_name);
    free(f->names);
    free(f);
}

/* ---- lookups and reads ------------------------------------------------------------------- */

size_t sg_pt_count(const sg_pt_file *f)
{
    return f ? f->n : 0;
}

const sg_pt_tensor *sg_pt_at(const sg_pt_file *f, size_t i)
{
    return f && i < f->n ? &f->tensors[i] : NULL;
}

const sg_pt_tensor *sg_pt_find(const sg_pt_file *f, const char *name)
{
    if (!f || !name)
        return NULL;
    size_t lo = 0, hi = f->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const sg_pt_tensor *t = f->by_name[mid];
        int c = strcmp(t->name, name);
        if (c == 0)
            return t;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

int64_t sg_pt_numel(const sg_pt_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->shape[i]; /* cannot overflow: checked at open */
    return n;
}

static const sg_pt_tensor *find_checked(const sg_pt_file *f, const char *name, int ndim,
                                        const int64_t *shape, sg_error *err)
{
    char nb[NAME_CLIP + 4];
    if (!f || !name) {
        sg_error_set(err, SG_EINVAL, "sg_pt_read_f32: NULL file or name");
        return NULL;
    }
    const sg_pt_tensor *t = sg_pt_find(f, name);
    if (!t) {
        sg_error_set(err, SG_EINVAL, "tensor '%s' not found in %s", QUOTEZ(nb, name), f->label);
        return NULL;
    }
    if (!shape)
        return t;
    if (ndim < 0 || ndim > SG_PT_MAX_DIMS) {
        sg_error_set(err, SG_EINVAL, "tensor '%s': expected ndim %d is out of range",
                     QUOTEZ(nb, name), ndim);
        return NULL;
    }
    if (!sg_shape_matches(t->ndim, t->shape, ndim, shape)) {
        char have[64], want[64];
        sg_error_set(err, SG_EINVAL, "%s: tensor '%s' has shape %s, expected %s", f->label,
                     QUOTEZ(nb, name), sg_shape_str(have, sizeof have, t->ndim, t->shape),
                     sg_shape_str(want, sizeof want, ndim, shape));
        return NULL;
    }
    return t;
}

/* Elements gathered per conversion call when the innermost stride is not 1. */
#define GATHER 256

/* Converts the view t, row-major, into out. */
static void gather_f32(const sg_pt_tensor *t, float *out)
{
    size_t es = sg_dtype_size(t->dtype);
    const unsigned char *base = (const unsigned char *)t->storage + (size_t)t->offset * es;
    int64_t numel = sg_pt_numel(t);
    if (numel == 0)
        return;
    /* contiguous (dims of size 1 may have any stride) */
    bool contig = true;
    int64_t expect = 1;
    for (int d = t->ndim - 1; d >= 0 && contig; d--) {
        if (t->shape[d] != 1 && t->stride[d] != expect)
            contig = false;
        expect *= t->shape[d];
    }
    if (contig) {
        sg_dtype_to_f32(t->dtype, base, (size_t)numel, out);
        return;
    }
    int last = t->ndim - 1; /* >= 0: a scalar is contiguous */
    int64_t inner = t->shape[last], istride = t->stride[last];
    int64_t idx[SG_PT_MAX_DIMS] = {0};
    unsigned char tmp[GATHER * 8];
    for (int64_t done = 0; done < numel; done += inner) {
        int64_t pos = 0;
        for (int d = 0; d < last; d++)
            pos += idx[d] * t->stride[d];
        const unsigned char *row = base + (size_t)pos * es;
        if (istride == 1) {
            sg_dtype_to_f32(t->dtype, row, (size_t)inner, out + done);
        } else {
            for (int64_t j = 0; j < inner; j += GATHER) {
                int64_t n = inner - j < GATHER ? inner - j : GATHER;
                for (int64_t k = 0; k < n; k++)
                    memcpy(tmp + k * es, row + (size_t)((j + k) * istride) * es, es);
                sg_dtype_to_f32(t->dtype, tmp, (size_t)n, out + done + j);
            }
        }
        for (int d = last - 1; d >= 0; d--) {
            if (++idx[d] < t->shape[d])
                break;
            idx[d] = 0;
        }
    }
}

sg_status sg_pt_read_f32(const sg_pt_file *f, const char *name, int ndim, const int64_t *shape,
                         float *out, sg_error *err)
{
    const sg_pt_tensor *t = find_checked(f, name, ndim, shape, err);
    if (!t)
        return err ? err->code : SG_EINVAL;
    if (sg_pt_numel(t) && !out)
        return sg_error_set(err, SG_EINVAL, "sg_pt_read_f32: NULL output buffer");
    gather_f32(t, out);
    return SG_OK;
}

float *sg_pt_get_f32(const sg_pt_file *f, const char *name, int ndim, const int64_t *shape,
                     sg_error *err)
{
    const sg_pt_tensor *t = find_checked(f, name, ndim, shape, err);
    if (!t)
        return NULL;
    int64_t n = sg_pt_numel(t);
    char nb[NAME_CLIP + 4];
    if ((uint64_t)n > SIZE_MAX / sizeof(float)) {
        sg_error_set(err, SG_ETOOBIG, "%s: tensor '%s' is too large to convert to f32",
                     f->label, QUOTEZ(nb, name));
        return NULL;
    }
    float *out = malloc(n ? (size_t)n * sizeof(float) : 1);
    if (!out) {
        sg_error_set(err, SG_ENOMEM, "%s: out of memory for tensor '%s' (%" PRId64 " floats)",
                     f->label, QUOTEZ(nb, name), n);
        return NULL;
    }
    gather_f32(t, out);
    return out;
}
