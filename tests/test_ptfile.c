/* Tests for nn/ptfile: every tensor of the torch-written fixtures (py/gen_ptfile_fixtures.py)
 * against the values torch itself converted to f32, views included; shape checks; the legacy
 * format's refusal; every byte-prefix of a real file; and, in archives and pickles built here
 * byte by byte, each class of malformed or hostile input with its status and message: ZIP
 * structure (truncation, directory, ZIP64, CRC, compression, duplicates), storages (missing, too
 * small, inconsistent), views (out of range, negative stride, overflow) and the pickle machine
 * (foreign globals, unknown opcodes, nesting, lengths, memo, stack, top-level shape). */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <zlib.h>

#include "check.h"
#include "nn/ptfile.h"

#ifdef SG_SOURCE_DIR
#define FIXTURES SG_SOURCE_DIR "/tests/fixtures/ptfile/"
#else
#define FIXTURES "tests/fixtures/ptfile/"
#endif

/* ---- byte buffers ------------------------------------------------------------------------ */

typedef struct bytes {
    unsigned char *p;
    size_t n, cap;
} bytes;

static void put(bytes *b, const void *s, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        if (!b->p)
            abort();
    }
    if (n)
        memcpy(b->p + b->n, s, n);
    b->n += n;
}

static void put8(bytes *b, unsigned v)
{
    unsigned char c = (unsigned char)v;
    put(b, &c, 1);
}

static void put16(bytes *b, unsigned v)
{
    put8(b, v & 0xFF);
    put8(b, (v >> 8) & 0xFF);
}

static void put32(bytes *b, uint32_t v)
{
    put16(b, v & 0xFFFF);
    put16(b, v >> 16);
}

static void put64(bytes *b, uint64_t v)
{
    put32(b, (uint32_t)v);
    put32(b, (uint32_t)(v >> 32));
}

/* ---- pickles ------------------------------------------------------------------------------- */

static void p_str(bytes *b, const char *s)
{
    put8(b, 'X');
    put32(b, (uint32_t)strlen(s));
    put(b, s, strlen(s));
}

static void p_int(bytes *b, int64_t v)
{
    if (v >= 0 && v < 256) {
        put8(b, 'K');
        put8(b, (unsigned)v);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
        put8(b, 'J');
        put32(b, (uint32_t)(int32_t)v);
    } else {
        put8(b, 0x8a);
        put8(b, 8);
        put64(b, (uint64_t)v);
    }
}

static void p_global(bytes *b, const char *mod, const char *name)
{
    put8(b, 'c');
    put(b, mod, strlen(mod));
    put8(b, '\n');
    put(b, name, strlen(name));
    put8(b, '\n');
}

static void p_float(bytes *b, double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    put8(b, 'G');
    for (int i = 7; i >= 0; i--)
        put8(b, (unsigned)(u >> (8 * i)) & 0xFF);
}

static void p_ints_tuple(bytes *b, int n, const int64_t *v)
{
    put8(b, '(');
    for (int i = 0; i < n; i++)
        p_int(b, v[i]);
    put8(b, 't');
}

/* The persistent id torch writes for a storage. */
static void p_storage(bytes *b, const char *type, const char *key, int64_t numel)
{
    put8(b, '(');
    p_str(b, "storage");
    p_global(b, "torch", type);
    p_str(b, key);
    p_str(b, "cpu");
    p_int(b, numel);
    put8(b, 't');
    put8(b, 'Q');
}

/* _rebuild_tensor_v2(storage, offset, shape, stride, False, OrderedDict()), as torch writes it. */
static void p_tensor(bytes *b, const char *type, const char *key, int64_t numel, int64_t offset,
                     int ndim, const int64_t *shape, const int64_t *stride)
{
    p_global(b, "torch._utils", "_rebuild_tensor_v2");
    put8(b, '(');
    p_storage(b, type, key, numel);
    p_int(b, offset);
    p_ints_tuple(b, ndim, shape);
    p_ints_tuple(b, ndim, stride);
    put8(b, 0x89);
    p_global(b, "collections", "OrderedDict");
    put8(b, ')');
    put8(b, 'R');
    put8(b, 't');
    put8(b, 'R');
}

/* ---- pickles as data --------------------------------------------------------------------- */

/* A pickle written as a list of steps, each one opcode or a few of the builders above, so that a
 * test case is one table row (see test_pickles). */
typedef enum pkl_kind {
    OP_END,
    OP_RAW,     /* a: bytes, n of them */
    OP_STR,     /* a: BINUNICODE text */
    OP_INT,     /* n */
    OP_FLOAT,   /* f */
    OP_GLOBAL,  /* a.b */
    OP_INTS,    /* a tuple of n ints: shape */
    OP_STORAGE, /* torch's persistent id: type a, key b, numel */
    OP_TENSOR,  /* _rebuild_tensor_v2: storage (a, b, numel), offset, n dims: shape, stride */
    OP_REPEAT   /* body, n times */
} pkl_kind;

typedef struct pkl_op {
    pkl_kind kind;
    const char *a, *b;
    int64_t n, numel, offset;
    double f;
    const int64_t *shape, *stride;
    const struct pkl_op *body;
} pkl_op;

#define PICKLE(...) ((const pkl_op[]){__VA_ARGS__, {OP_END}})
#define RAW(s) {OP_RAW, .a = (s), .n = sizeof(s) - 1}
#define STR(s) {OP_STR, .a = (s)}
#define INT(v) {OP_INT, .n = (v)}
#define FLOAT(v) {OP_FLOAT, .f = (v)}
#define GLOBAL(m_, name_) {OP_GLOBAL, .a = (m_), .b = (name_)}
#define DIMS(...) ((const int64_t[]){__VA_ARGS__})
#define INTS(nd_, ...) {OP_INTS, .n = (nd_), .shape = DIMS(__VA_ARGS__)}
#define STORAGE(type_, key_, numel_) {OP_STORAGE, .a = (type_), .b = (key_), .numel = (numel_)}
#define TENSOR(type_, key_, numel_, offset_, nd_, shape_, stride_)                               \
    {OP_TENSOR, .a = (type_), .b = (key_), .numel = (numel_), .offset = (offset_), .n = (nd_),     \
     .shape = (shape_), .stride = (stride_)}
#define REPEAT(count_, ...) {OP_REPEAT, .n = (count_), .body = PICKLE(__VA_ARGS__)}
/* PROTO 2, EMPTY_DICT, MARK ... SETITEMS, STOP around the (key, value) steps given */
#define STATE_DICT(...) PICKLE(RAW("\x80\x02}("), __VA_ARGS__, RAW("u."))
/* FloatStorage "0" of numel elements viewed as shape [n] */
#define VIEW1(numel_, n_, offset_, stride_)                                                      \
    TENSOR("FloatStorage", "0", numel_, offset_, 1, DIMS(n_), DIMS(stride_))
#define REBUILD GLOBAL("torch._utils", "_rebuild_tensor_v2")

static void assemble(bytes *b, const pkl_op *op)
{
    for (; op->kind != OP_END; op++) {
        switch (op->kind) {
        case OP_RAW: put(b, op->a, (size_t)op->n); break;
        case OP_STR: p_str(b, op->a); break;
        case OP_INT: p_int(b, op->n); break;
        case OP_FLOAT: p_float(b, op->f); break;
        case OP_GLOBAL: p_global(b, op->a, op->b); break;
        case OP_INTS: p_ints_tuple(b, (int)op->n, op->shape); break;
        case OP_STORAGE: p_storage(b, op->a, op->b, op->numel); break;
        case OP_TENSOR:
            p_tensor(b, op->a, op->b, op->numel, op->offset, (int)op->n, op->shape, op->stride);
            break;
        case OP_REPEAT:
            for (int64_t i = 0; i < op->n; i++)
                assemble(b, op->body);
            break;
        case OP_END: break;
        }
    }
}

static bytes assembled(const pkl_op *ops)
{
    bytes b = {0};
    assemble(&b, ops);
    return b;
}

/* ---- ZIP archives ------------------------------------------------------------------------ */

typedef struct zfile {
    const char *name;
    const void *data;
    size_t len;
    unsigned method; /* written as is; the data stays raw */
    bool bad_crc;
} zfile;

enum { Z_PLAIN = 0, Z_ZIP64 = 1, Z_TORCH64 = 2 };

/* A ZIP archive of files, data 64-byte aligned with torch's "FB" padding field. Z_ZIP64
 * saturates every size and offset in the directory and writes ZIP64 records for them; Z_TORCH64
 * writes the ZIP64 end records beside a complete plain one, as torch does. */
static bytes zip_build(const zfile *files, size_t n, int mode)
{
    bytes z = {0};
    size_t *local = calloc(n, sizeof *local);
    uint32_t *crc = calloc(n, sizeof *crc);
    for (size_t i = 0; i < n; i++) {
        const zfile *f = &files[i];
        size_t nl = strlen(f->name);
        crc[i] = (uint32_t)crc32(0, f->data, (uInt)f->len) ^ (f->bad_crc ? 1u : 0u);
        local[i] = z.n;
        size_t pad = (64 - (z.n + 30 + nl + 4) % 64) % 64;
        put32(&z, 0x04034b50);
        put16(&z, 20);
        put16(&z, 0);
        put16(&z, f->method);
        put32(&z, 0);
        put32(&z, crc[i]);
        put32(&z, (uint32_t)f->len);
        put32(&z, (uint32_t)f->len);
        put16(&z, (unsigned)nl);
        put16(&z, (unsigned)(4 + pad));
        put(&z, f->name, nl);
        put(&z, "FB", 2);
        put16(&z, (unsigned)pad);
        for (size_t k = 0; k < pad; k++)
            put8(&z, 'Z');
        put(&z, f->data, f->len);
    }
    size_t cd = z.n;
    for (size_t i = 0; i < n; i++) {
        const zfile *f = &files[i];
        size_t nl = strlen(f->name);
        bool z64 = mode == Z_ZIP64;
        put32(&z, 0x02014b50);
        put16(&z, 45);
        put16(&z, 45);
        put16(&z, 0);
        put16(&z, f->method);
        put32(&z, 0);
        put32(&z, crc[i]);
        put32(&z, z64 ? 0xFFFFFFFFu : (uint32_t)f->len);
        put32(&z, z64 ? 0xFFFFFFFFu : (uint32_t)f->len);
        put16(&z, (unsigned)nl);
        put16(&z, z64 ? 28 : 0);
        put16(&z, 0);
        put16(&z, 0);
        put16(&z, 0);
        put32(&z, 0);
        put32(&z, z64 ? 0xFFFFFFFFu : (uint32_t)local[i]);
        put(&z, f->name, nl);
        if (z64) {
            put16(&z, 1);
            put16(&z, 24);
            put64(&z, f->len);
            put64(&z, f->len);
            put64(&z, local[i]);
        }
    }
    size_t cd_size = z.n - cd;
    if (mode != Z_PLAIN) {
        size_t z64 = z.n;
        put32(&z, 0x06064b50);
        put64(&z, 44);
        put16(&z, 45);
        put16(&z, 45);
        put32(&z, 0);
        put32(&z, 0);
        put64(&z, n);
        put64(&z, n);
        put64(&z, cd_size);
        put64(&z, cd);
        put32(&z, 0x07064b50);
        put32(&z, 0);
        put64(&z, z64);
        put32(&z, 1);
    }
    bool sat = mode == Z_ZIP64;
    put32(&z, 0x06054b50);
    put16(&z, 0);
    put16(&z, 0);
    put16(&z, sat ? 0xFFFF : (unsigned)n);
    put16(&z, sat ? 0xFFFF : (unsigned)n);
    put32(&z, sat ? 0xFFFFFFFFu : (uint32_t)cd_size);
    put32(&z, sat ? 0xFFFFFFFFu : (uint32_t)cd);
    put16(&z, 0);
    free(local);
    free(crc);
    return z;
}

static const float STORAGE0[2] = {1.5f, -2.0f};

/* "arch/data.pkl" = pk, "arch/data/0" = STORAGE0, "arch/version". */
static bytes std_archive(const bytes *pk, int mode)
{
    zfile fs[] = {
        {"arch/data.pkl", pk->p, pk->n, 0, false},
        {"arch/data/0", STORAGE0, sizeof STORAGE0, 0, false},
        {"arch/version", "3\n", 2, 0, false},
    };
    return zip_build(fs, 3, mode);
}

/* ---- expectations ------------------------------------------------------------------------ */

static bool has_all(const char *msg, const char *const *frags)
{
    for (; *frags; frags++)
        if (!strstr(msg, *frags))
            return false;
    return true;
}

/* Expects buf (case `what` id, for messages) to be refused with code and every fragment. */
static void check_rejects(const char *what, int id, const void *buf, size_t len, sg_status code,
                          const char *const *frags)
{
    sg_error err = {0};
    sg_pt_file *f = sg_pt_open_memory(buf, len, &err);
    CHECK_MSG(f == NULL, "%s %d: accepted", what, id);
    sg_pt_close(f);
    CHECK_MSG(err.code == code, "%s %d: status %s, expected %s (%s)", what, id,
              sg_status_name(err.code), sg_status_name(code), err.msg);
    CHECK_MSG(has_all(err.msg, frags), "%s %d: message '%s'", what, id, err.msg);
}

/* Expects the archive in bytes z to be refused with code and every message fragment. */
#define REJECTS(z, code, ...)                                                                  \
    check_rejects("line", __LINE__, (z).p, (z).n, code, (const char *[]){__VA_ARGS__, NULL})

/* Opens z, which must succeed, and returns the file (NULL after a failed check). */
static sg_pt_file *opens(int line, const bytes *z)
{
    sg_error err = {0};
    sg_pt_file *f = sg_pt_open_memory(z->p, z->n, &err);
    CHECK_MSG(f != NULL, "line %d: refused: %s", line, err.msg);
    return f;
}

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* ---- the torch-written fixtures ---------------------------------------------------------- */

/* Checks every tensor of one fixture file against its expected.json record. */
static void check_fixture(const char *file, json_t *rec, sg_pt_file *f)
{
    json_t *tensors = json_object_get(rec, "tensors");
    CHECK_MSG(sg_pt_count(f) == json_array_size(tensors), "%s: %zu tensors", file,
              sg_pt_count(f));
    size_t i;
    json_t *e;
    json_array_foreach(tensors, i, e) {
        const char *name = json_string_value(json_object_get(e, "name"));
        const sg_pt_tensor *t = sg_pt_at(f, i);
        if (!t || strcmp(t->name, name) != 0) {
            CHECK_MSG(false, "%s: tensor %zu is '%s', expected '%s'", file, i,
                      t ? t->name : "(none)", name);
            continue;
        }
        CHECK_MSG(sg_pt_find(f, name) == t, "%s: find '%s'", file, name);
        CHECK_MSG(strcmp(sg_dtype_name(t->dtype),
                         json_string_value(json_object_get(e, "dtype"))) == 0,
                  "%s: '%s' dtype %s", file, name, sg_dtype_name(t->dtype));
        json_t *shape = json_object_get(e, "shape"), *stride = json_object_get(e, "stride");
        CHECK_MSG(t->ndim == (int)json_array_size(shape), "%s: '%s' ndim %d", file, name,
                  t->ndim);
        int64_t want[SG_PT_MAX_DIMS] = {0};
        for (int d = 0; d < t->ndim && d < SG_PT_MAX_DIMS; d++) {
            want[d] = json_integer_value(json_array_get(shape, (size_t)d));
            CHECK_MSG(t->shape[d] == want[d], "%s: '%s' shape[%d]", file, name, d);
            CHECK_MSG(t->stride[d] == json_integer_value(json_array_get(stride, (size_t)d)),
                      "%s: '%s' stride[%d] = %lld", file, name, d, (long long)t->stride[d]);
        }
        CHECK_MSG(t->offset == json_integer_value(json_object_get(e, "offset")),
                  "%s: '%s' offset %lld", file, name, (long long)t->offset);
        json_t *bits = json_object_get(e, "bits");
        size_t n = json_array_size(bits);
        CHECK_MSG((size_t)sg_pt_numel(t) == n, "%s: '%s' numel", file, name);
        float *out = malloc((n + 1) * sizeof *out);
        sg_error err = {0};
        sg_status st = sg_pt_read_f32(f, name, t->ndim, want, out, &err);
        CHECK_MSG(st == SG_OK, "%s: read '%s': %s", file, name, err.msg);
        size_t bad = 0;
        for (size_t k = 0; st == SG_OK && k < n; k++)
            if (f32_bits(out[k]) != (uint32_t)json_integer_value(json_array_get(bits, k))) {
                if (!bad)
                    fprintf(stderr, "%s: '%s'[%zu] = %08x, expected %08x\n", file, name, k,
                            f32_bits(out[k]),
                            (uint32_t)json_integer_value(json_array_get(bits, k)));
                bad++;
            }
        CHECK_MSG(bad == 0, "%s: '%s': %zu values differ", file, name, bad);
        float *got = sg_pt_get_f32(f, name, -1, NULL, &err);
        CHECK_MSG(got && (n == 0 || memcmp(got, out, n * sizeof *out) == 0),
                  "%s: get_f32 '%s'", file, name);
        free(got);
        free(out);
    }
}

static void test_fixtures(void)
{
    json_error_t jerr;
    json_t *exp = json_load_file(FIXTURES "expected.json", 0, &jerr);
    CHECK_MSG(exp != NULL, "expected.json: %s", jerr.text);
    if (!exp)
        return;
    const char *file;
    json_t *rec;
    json_object_foreach(exp, file, rec) {
        char path[512];
        snprintf(path, sizeof path, "%s%s", FIXTURES, file);
        sg_error err = {0};
        sg_pt_file *f = sg_pt_open(path, &err);
        CHECK_MSG(f != NULL, "%s: %s", file, err.msg);
        if (f)
            check_fixture(file, rec, f);
        sg_pt_close(f);
        /* the same from memory */
        size_t len = 0;
        unsigned char *buf = check_read_file(path, &len);
        CHECK(buf != NULL);
        f = buf ? sg_pt_open_memory(buf, len, &err) : NULL;
        CHECK_MSG(f != NULL, "%s from memory: %s", file, err.msg);
        if (f)
            check_fixture(file, rec, f);
        sg_pt_close(f);
        free(buf);
    }
    json_decref(exp);
}

static void test_views_share_storage(void)
{
    sg_error err = {0};
    sg_pt_file *f = sg_pt_open(FIXTURES "views.pt", &err);
    CHECK_MSG(f != NULL, "%s", err.msg);
    if (!f)
        return;
    const sg_pt_tensor *t = sg_pt_find(f, "t"), *row = sg_pt_find(f, "row0"),
                       *tail = sg_pt_find(f, "tail"), *elem = sg_pt_find(f, "elem");
    CHECK(t && row && tail && elem);
    if (t && row && tail && elem) {
        CHECK(t->storage == row->storage && row->storage == tail->storage &&
              tail->storage == elem->storage);
        CHECK_EQ_INT(t->storage_bytes, 12 * 4);
        CHECK_EQ_INT(tail->offset, 9);
        CHECK_EQ_INT(elem->ndim, 0);
        CHECK_EQ_INT(elem->offset, 6);
        CHECK_EQ_INT((uintptr_t)t->storage % 64, 0); /* torch aligns storages */
    }
    /* shape checks */
    float out[12];
    CHECK(sg_pt_read_f32(f, "t", 2, (int64_t[]){4, 3}, out, &err) == SG_OK);
    CHECK(sg_pt_read_f32(f, "t", 2, (int64_t[]){-1, 3}, out, &err) == SG_OK);
    CHECK(sg_pt_read_f32(f, "t", 2, NULL, out, &err) == SG_OK);
    CHECK(sg_pt_read_f32(f, "t", 2, (int64_t[]){3, 4}, out, &err) == SG_EINVAL);
    CHECK_MSG(strstr(err.msg, "tensor 't' has shape [4, 3], expected [3, 4]") != NULL, "%s",
              err.msg);
    CHECK(sg_pt_read_f32(f, "t", 1, (int64_t[]){12}, out, &err) == SG_EINVAL);
    CHECK(sg_pt_read_f32(f, "elem", 0, (int64_t[]){0}, out, &err) == SG_OK);
    CHECK_EQ_INT(out[0], 2.0f); /* base[1, 2] = 6 * 0.5 - 1 */
    CHECK(sg_pt_read_f32(f, "nope", -1, NULL, out, &err) == SG_EINVAL);
    CHECK_MSG(strstr(err.msg, "tensor 'nope' not found in") != NULL, "%s", err.msg);
    CHECK(sg_pt_read_f32(f, "t", 2, (int64_t[]){4, 3}, NULL, &err) == SG_EINVAL);
    CHECK(sg_pt_read_f32(f, "empty", 2, (int64_t[]){0, 3}, NULL, &err) == SG_OK);
    CHECK(sg_pt_get_f32(f, "t", 2, (int64_t[]){4, 4}, &err) == NULL);
    CHECK(sg_pt_find(f, NULL) == NULL && sg_pt_at(f, 99) == NULL);
    sg_pt_close(f);
}

static void test_skipped_scalars(void)
{
    sg_error err = {0};
    sg_pt_file *f = sg_pt_open(FIXTURES "params.pt", &err);
    CHECK_MSG(f != NULL, "%s", err.msg);
    CHECK_EQ_INT(sg_pt_count(f), 2); /* weight, frozen; epoch, lr, big, ... skipped */
    CHECK(sg_pt_find(f, "epoch") == NULL);
    sg_pt_close(f);
}

static void test_legacy_and_not_zip(void)
{
    sg_error err = {0};
    CHECK(sg_pt_open(FIXTURES "legacy.pt", &err) == NULL);
    CHECK_EQ_INT(err.code, SG_EUNSUPPORTED);
    CHECK_MSG(strstr(err.msg, "legacy (pre-1.6) torch.save format is not supported; re-save "
                              "with torch>=1.6") != NULL,
              "%s", err.msg);
    CHECK(strstr(err.msg, "legacy.pt") != NULL);
    CHECK(sg_pt_open(FIXTURES "does-not-exist.pt", &err) == NULL);
    CHECK_EQ_INT(err.code, SG_EIO);
    CHECK(sg_pt_open(FIXTURES, &err) == NULL); /* a directory */
    CHECK_EQ_INT(err.code, SG_EIO);
    char longpath[300];
    memset(longpath, 'd', sizeof longpath);
    memcpy(longpath, "/nonexistent/", 13);
    memcpy(longpath + sizeof longpath - 12, "/the-end.pt", 12);
    CHECK(sg_pt_open(longpath, &err) == NULL);
    CHECK_MSG(strncmp(err.msg, "...", 3) == 0 && strstr(err.msg, "the-end.pt: cannot open") &&
                  strlen(err.msg) < 160,
              "%s", err.msg);
    CHECK(sg_pt_open(NULL, &err) == NULL);
    CHECK(sg_pt_open_memory(NULL, 5, &err) == NULL);
    bytes text = {0};
    put(&text, "hello, this is not a checkpoint at all, just some text", 54);
    REJECTS(text, SG_EINVAL, "no ZIP end-of-central-directory record");
    bytes empty = {0};
    REJECTS(empty, SG_EINVAL, "too short for a ZIP archive");
    bytes preview = {0};
    put(&preview, "PYTORCH1 and more bytes after it........", 40);
    REJECTS(preview, SG_EUNSUPPORTED, "preview-release");
    free(text.p);
    free(preview.p);
}

/* Every prefix of a real file is refused cleanly, and every single-byte change either refused
 * or read without fault. */
static void test_truncations_and_flips(void)
{
    size_t len = 0;
    unsigned char *buf = check_read_file(FIXTURES "views.pt", &len);
    CHECK(buf != NULL);
    if (!buf)
        return;
    size_t refused = 0;
    for (size_t n = 0; n < len; n++) {
        unsigned char *cut = malloc(n ? n : 1);
        memcpy(cut, buf, n);
        sg_error err = {0};
        sg_pt_file *f = sg_pt_open_memory(cut, n, &err);
        refused += f == NULL && err.code != SG_OK && err.msg[0];
        sg_pt_close(f);
        free(cut);
    }
    CHECK_EQ_INT(refused, len);
    float out[64];
    for (size_t i = 0; i < len; i++) {
        buf[i] ^= 0x41;
        sg_error err = {0};
        sg_pt_file *f = sg_pt_open_memory(buf, len, &err);
        CHECK_MSG(f || (err.code != SG_OK && err.msg[0]), "flip at %zu: silent refusal", i);
        for (size_t k = 0; f && k < sg_pt_count(f); k++) {
            const sg_pt_tensor *t = sg_pt_at(f, k);
            if (sg_pt_numel(t) <= 64)
                CHECK(sg_pt_read_f32(f, t->name, -1, NULL, out, &err) == SG_OK);
        }
        sg_pt_close(f);
        buf[i] ^= 0x41;
    }
    free(buf);
}

/* ---- archives built here ----------------------------------------------------------------- */

static void test_built_archives(void)
{
    bytes pk = assembled(STATE_DICT(STR("w"), VIEW1(2, 2, 0, 1)));
    for (int mode = Z_PLAIN; mode <= Z_TORCH64; mode++) {
        bytes z = std_archive(&pk, mode);
        sg_pt_file *f = opens(__LINE__, &z);
        float out[2] = {0};
        sg_error err = {0};
        CHECK(f && sg_pt_read_f32(f, "w", 1, (int64_t[]){2}, out, &err) == SG_OK);
        CHECK(out[0] == 1.5f && out[1] == -2.0f);
        sg_pt_close(f);
        free(z.p);
    }

    /* a stem other than "archive", byteorder little / big / nonsense */
    const char *orders[] = {"little", "big", "middle"};
    for (int i = 0; i < 3; i++) {
        zfile fs[] = {
            {"my model/data.pkl", pk.p, pk.n, 0, false},
            {"my model/data/0", STORAGE0, sizeof STORAGE0, 0, false},
            {"my model/byteorder", orders[i], strlen(orders[i]), 0, false},
        };
        bytes z = zip_build(fs, 3, Z_TORCH64);
        if (i == 0) {
            sg_pt_file *f = opens(__LINE__, &z);
            CHECK(f && sg_pt_count(f) == 1);
            sg_pt_close(f);
        } else if (i == 1) {
            REJECTS(z, SG_EUNSUPPORTED, "big-endian");
        } else {
            REJECTS(z, SG_EINVAL, "byteorder entry holds \"middle\"");
        }
        free(z.p);
    }

    /* missing data.pkl; two pickles; TorchScript */
    {
        zfile fs[] = {{"arch/data/0", STORAGE0, 8, 0, false}, {"arch/version", "3\n", 2, 0, false}};
        bytes z = zip_build(fs, 2, Z_TORCH64);
        REJECTS(z, SG_EINVAL, "no '<name>/data.pkl' entry");
        free(z.p);
        zfile two[] = {{"a/data.pkl", pk.p, pk.n, 0, false}, {"b/data.pkl", pk.p, pk.n, 0, false}};
        z = zip_build(two, 2, Z_TORCH64);
        REJECTS(z, SG_EINVAL, "two pickles");
        free(z.p);
        zfile ts[] = {{"a/data.pkl", pk.p, pk.n, 0, false}, {"a/constants.pkl", pk.p, pk.n, 0, false}};
        z = zip_build(ts, 2, Z_TORCH64);
        REJECTS(z, SG_EUNSUPPORTED, "TorchScript");
        free(z.p);
    }
    /* missing storage entry, storage too small, compressed, encrypted-looking, bad CRC, dups */
    {
        zfile fs[] = {{"arch/data.pkl", pk.p, pk.n, 0, false}, {"arch/data/1", STORAGE0, 8, 0, false}};
        bytes z = zip_build(fs, 2, Z_TORCH64);
        REJECTS(z, SG_EINVAL, "storage '0' has no entry 'arch/data/0'");
        free(z.p);
        zfile small[] = {{"arch/data.pkl", pk.p, pk.n, 0, false}, {"arch/data/0", STORAGE0, 7, 0, false}};
        z = zip_build(small, 2, Z_TORCH64);
        REJECTS(z, SG_EINVAL, "storage '0' declares 2 F32 elements but its entry holds 7 bytes");
        free(z.p);
        zfile defl[] = {{"arch/data.pkl", pk.p, pk.n, 0, false}, {"arch/data/0", STORAGE0, 8, 8, false}};
        z = zip_build(defl, 2, Z_TORCH64);
        REJECTS(z, SG_EUNSUPPORTED, "entry 'arch/data/0' is compressed (ZIP method 8)");
        free(z.p);
        zfile crc[] = {{"arch/data.pkl", pk.p, pk.n, 0, false}, {"arch/data/0", STORAGE0, 8, 0, true}};
        z = zip_build(crc, 2, Z_TORCH64);
        REJECTS(z, SG_EINVAL, "entry 'arch/data/0' is corrupt: CRC-32");
        free(z.p);
        zfile pcrc[] = {{"arch/data.pkl", pk.p, pk.n, 0, true}, {"arch/data/0", STORAGE0, 8, 0, false}};
        z = zip_build(pcrc, 2, Z_TORCH64);
        REJECTS(z, SG_EINVAL, "entry 'arch/data.pkl' is corrupt");
        free(z.p);
        zfile dup[] = {{"arch/data.pkl", pk.p, pk.n, 0, false}, {"arch/data/0", STORAGE0, 8, 0, false},
                       {"arch/data/0", STORAGE0, 8, 0, false}};
        z = zip_build(dup, 3, Z_TORCH64);
        REJECTS(z, SG_EINVAL, "duplicate ZIP entry 'arch/data/0'");
        free(z.p);
        /* a storage bigger than the view: fine, storage_bytes is the declared size */
        float four[4] = {1, 2, 3, 4};
        bytes pk4 = assembled(STATE_DICT(STR("w"), VIEW1(3, 2, 1, 1)));
        zfile big[] = {{"arch/data.pkl", pk4.p, pk4.n, 0, false}, {"arch/data/0", four, 16, 0, false}};
        z = zip_build(big, 2, Z_TORCH64);
        sg_pt_file *f = opens(__LINE__, &z);
        float out[2];
        sg_error err = {0};
        CHECK(f && sg_pt_at(f, 0)->storage_bytes == 12);
        CHECK(f && sg_pt_read_f32(f, "w", -1, NULL, out, &err) == SG_OK && out[0] == 2 &&
              out[1] == 3);
        sg_pt_close(f);
        free(z.p);
        free(pk4.p);
    }

    /* structural damage to a good archive */
    bytes good = std_archive(&pk, Z_TORCH64);
    size_t eocd = good.n - 22, loc = eocd - 20, z64 = loc - 56;
    uint32_t cd = 0;
    memcpy(&cd, good.p + eocd + 16, 4);
    {
        bytes z = {0};
        put(&z, good.p, good.n);
        z.p[cd] = 'X'; /* first central signature */
        REJECTS(z, SG_EINVAL, "central directory entry 0: bad signature");
        memcpy(z.p, good.p, good.n);
        put64(&(bytes){z.p + z64 + 48, 0, 8}, (uint64_t)good.n); /* cd offset past the end */
        REJECTS(z, SG_EINVAL, "central directory", "lies outside the file");
        memcpy(z.p, good.p, good.n);
        put64(&(bytes){z.p + z64 + 24, 0, 16}, 4); /* 4 entries declared, 3 present */
        put64(&(bytes){z.p + z64 + 32, 0, 8}, 4);
        REJECTS(z, SG_EINVAL, "central directory of 174 bytes cannot hold 4 entries");
        memcpy(z.p, good.p, good.n);
        put64(&(bytes){z.p + z64 + 24, 0, 16}, 2); /* 2 entries declared, 3 present */
        put64(&(bytes){z.p + z64 + 32, 0, 8}, 2);
        REJECTS(z, SG_EINVAL, "central directory has 58 bytes after its 2 entries");
        memcpy(z.p, good.p, good.n);
        put64(&(bytes){z.p + loc + 8, 0, 8}, 3); /* locator points at a local header */
        REJECTS(z, SG_EINVAL, "ZIP64 end record missing or out of place");
        memcpy(z.p, good.p, good.n);
        put32(&(bytes){z.p + z64 + 16, 0, 4}, 1); /* disk number */
        REJECTS(z, SG_EUNSUPPORTED, "multi-disk");
        memcpy(z.p, good.p, good.n);
        put32(&(bytes){z.p + 0, 0, 4}, 0x12345678); /* first local header */
        REJECTS(z, SG_EINVAL, "entry 'arch/data.pkl': no local header at offset 0");
        memcpy(z.p, good.p, good.n);
        z.p[30] = 'b'; /* the local header's name */
        REJECTS(z, SG_EINVAL, "names another file");
        free(z.p);
    }
    {
        /* an entry whose size runs past the end of the file */
        bytes z = std_archive(&pk, Z_TORCH64);
        unsigned char *c = memmem(z.p + cd, z.n - cd, "arch/data/0", 11);
        CHECK(c != NULL);
        if (c) {
            put32(&(bytes){c - 46 + 20, 0, 4}, 100000);
            put32(&(bytes){c - 46 + 24, 0, 4}, 100000);
            REJECTS(z, SG_EINVAL, "truncated: entry 'arch/data/0' needs bytes");
        }
        free(z.p);
        z = zip_build(NULL, 0, Z_TORCH64);
        REJECTS(z, SG_EINVAL, "ZIP archive holds no entries");
        free(z.p);
    }
    {
        /* a plain archive whose end record claims ZIP64 without the records */
        bytes z = std_archive(&pk, Z_PLAIN);
        put32(&(bytes){z.p + z.n - 22 + 16, 0, 4}, 0xFFFFFFFFu);
        REJECTS(z, SG_EINVAL, "ZIP64 record, which is missing");
        free(z.p);
        /* ZIP64 directory entry whose extra field is too short */
        z = std_archive(&pk, Z_ZIP64);
        unsigned char *x = memmem(z.p, z.n, "\x01\x00\x18\x00", 4);
        CHECK(x != NULL);
        if (x) {
            x[2] = 8; /* the extra field now claims 8 bytes: the 3 fields no longer fit */
            REJECTS(z, SG_EINVAL, "ZIP64 extra field missing or short");
        }
        free(z.p);
    }
    free(good.p);
    free(pk.p);
}

/* ---- pickles built here ------------------------------------------------------------------ */

/* One hand-built pickle and what must come of it, both in the standard archive (std_archive)
 * and through the pickle-only entry point: refused with code and every fragment in the
 * archive's message (the same code from the pickle alone, or SG_OK when archive_only), or
 * accepted (code SG_OK) with the tensors names, in order, whose elements are values. */
typedef struct pickle_case {
    const pkl_op *pickle;
    sg_status code;
    const char *frags[3];
    bool archive_only; /* refused only when its storages meet the archive */
    const char *names[4];
    const float *values;
    size_t nvalues;
} pickle_case;

#define REFUSED(pickle_, code_, ...) {.pickle = (pickle_), .code = (code_), .frags = {__VA_ARGS__}}
#define ACCEPTED(pickle_, ...) {.pickle = (pickle_), .code = SG_OK, __VA_ARGS__}
#define VALUES(...)                                                                            \
    .values = (const float[]){__VA_ARGS__},                                                    \
    .nvalues = sizeof((const float[]){__VA_ARGS__}) / sizeof(float)
/* An opcode this machine does not know, after PROTO 2 and NONE */
#define UNKNOWN_OPCODE(op, hex)                                                                \
    REFUSED(PICKLE(RAW("\x80\x02N" op ".")), SG_EUNSUPPORTED,                                  \
            "unsupported pickle opcode 0x" hex " at offset 3")
#define FOREIGN_GLOBAL(mod, name)                                                              \
    REFUSED(PICKLE(RAW("\x80\x02"), GLOBAL(mod, name), RAW(".")), SG_EUNSUPPORTED,             \
            "unsupported global", "at offset 2")
/* _rebuild_tensor_v2(storage, 0, size, (1,), requires_grad, hooks) with one argument wrong */
#define REBUILD_ARGS(storage, size, requires_grad, hooks)                                      \
    PICKLE(REBUILD, RAW("("), storage, INT(0), size, INTS(1, 1), RAW(requires_grad), RAW(hooks), \
           RAW("tR"))
#define BAD_UTF8(s) REFUSED(PICKLE(STR(s)), SG_EINVAL, "string is not valid UTF-8")

static size_t count_names(const pickle_case *c)
{
    size_t n = 0;
    while (n < 4 && c->names[n])
        n++;
    return n;
}

/* Checks an accepted case's tensors: names in order, found by name, elements. */
static void check_accepted(size_t i, const pickle_case *c, const sg_pt_file *f)
{
    size_t n = count_names(c), at = 0;
    CHECK_MSG(sg_pt_count(f) == n, "case %zu: %zu tensors, expected %zu", i, sg_pt_count(f), n);
    for (size_t k = 0; k < n && k < sg_pt_count(f); k++) {
        const sg_pt_tensor *t = sg_pt_at(f, k);
        CHECK_MSG(strcmp(t->name, c->names[k]) == 0 && sg_pt_find(f, c->names[k]) == t,
                  "case %zu: tensor %zu is '%s', expected '%s'", i, k, t->name, c->names[k]);
        float out[8];
        int64_t numel = sg_pt_numel(t);
        sg_error err = {0};
        CHECK_MSG(numel <= 8 && at + (size_t)numel <= c->nvalues &&
                      sg_pt_read_f32(f, t->name, t->ndim, t->shape, out, &err) == SG_OK &&
                      (numel == 0 || memcmp(out, c->values + at, (size_t)numel * sizeof *out) == 0),
                  "case %zu: '%s' read wrong (%s)", i, t->name, err.msg);
        at += (size_t)numel;
    }
    CHECK_MSG(at == c->nvalues, "case %zu: %zu elements, expected %zu", i, at, c->nvalues);
    CHECK(sg_pt_at(f, n) == NULL && sg_pt_find(f, "not a tensor") == NULL);
}

static void check_pickle_case(size_t i, const pickle_case *c)
{
    bytes pk = assembled(c->pickle);
    bytes z = std_archive(&pk, Z_TORCH64);
    if (c->code != SG_OK) {
        check_rejects("case", (int)i, z.p, z.n, c->code, c->frags);
    } else {
        sg_pt_file *f = opens((int)i, &z);
        if (f)
            check_accepted(i, c, f);
        sg_pt_close(f);
    }
    sg_error err = {0};
    size_t nt = 99;
    sg_status st = sg_pt_parse_pickle_for_fuzz(pk.p, pk.n, &nt, &err);
    sg_status want = c->archive_only ? SG_OK : c->code;
    CHECK_MSG(st == want && (st == SG_OK || err.code == st), "case %zu: pickle entry: %s (%s)", i,
              sg_status_name(st), err.msg);
    CHECK_MSG(c->code != SG_OK || nt == count_names(c), "case %zu: pickle entry: %zu tensors", i,
              nt);
    free(z.p);
    free(pk.p);
}

static void test_pickles(void)
{
    /* os.system("touch MARKER") must be refused when named, never run */
    char marker[64], cmd[96];
    snprintf(marker, sizeof marker, "/tmp/sg_ptfile_pwned_%d", (int)getpid());
    snprintf(cmd, sizeof cmd, "touch %s", marker);
    const char *utf8[] = {"na\xC3\xAFve.\xC3\x9F", "\xE6\x97\xA5\xE6\x9C\xAC", "\xF0\x9F\x98\x80"};
    const pickle_case cases[] = {
        /* views against their storages */
        REFUSED(STATE_DICT(STR("w"), VIEW1(2, 3, 0, 1)), SG_EINVAL,
                "tensor 'w' (shape [3], stride [1], offset 0) addresses element 2 of storage "
                "'0', which holds 2"),
        REFUSED(STATE_DICT(STR("w"), VIEW1(2, 2, 1, 1)), SG_EINVAL, "addresses element 2"),
        REFUSED(STATE_DICT(STR("w"), VIEW1(2, 2, 0, -1)), SG_EINVAL,
                "negative strides are refused"),
        REFUSED(STATE_DICT(STR("w"), VIEW1(2, 2, -1, 1)), SG_EINVAL,
                "storage offset is not a non-negative integer"),
        REFUSED(STATE_DICT(STR("w"), VIEW1(2, INT64_C(1) << 62, 0, 4)), SG_EINVAL, "overflows"),
        /* empty, but its offset is past the storage */
        REFUSED(STATE_DICT(STR("w"), VIEW1(2, 0, 3, 1)), SG_EINVAL, "addresses element 3"),
        /* stride 0 (an expand) and an empty view at the end are fine */
        ACCEPTED(STATE_DICT(STR("w"), VIEW1(2, 5, 1, 0)), .names = {"w"},
                 VALUES(-2.0f, -2.0f, -2.0f, -2.0f, -2.0f)),
        ACCEPTED(STATE_DICT(STR("w"), VIEW1(2, 0, 2, 1)), .names = {"w"}),
        REFUSED(STATE_DICT(STR("w"), TENSOR("FloatStorage", "0", 2, 0, 9,
                                            DIMS(1, 1, 1, 1, 1, 1, 1, 1, 1),
                                            DIMS(1, 1, 1, 1, 1, 1, 1, 1, 1))),
                SG_EUNSUPPORTED, "tensor has 9 dimensions; at most 8"),
        /* one storage declared with two dtypes: the pickle alone cannot tell */
        {.pickle = STATE_DICT(STR("a"), VIEW1(2, 2, 0, 1), STR("b"),
                              TENSOR("HalfStorage", "0", 4, 0, 1, DIMS(4), DIMS(1))),
         .code = SG_EINVAL,
         .frags = {"storage '0' is declared as F32[2] and as F16[4]"},
         .archive_only = true},

        /* hostile globals: GLOBAL + REDUCE as a state dict value, and STACK_GLOBAL (protocol 4) */
        REFUSED(STATE_DICT(STR("w"), GLOBAL("os", "system"), STR(cmd), RAW("\x85R")),
                SG_EUNSUPPORTED, "arch/data.pkl: unsupported global 'os.system'", "at offset 10"),
        REFUSED(PICKLE(RAW("\x80\x04"), STR("builtins"), STR("eval"), RAW("\x93"), STR("1+1"),
                       RAW("\x85R.")),
                SG_EUNSUPPORTED, "unsupported global 'builtins.eval'"),
        FOREIGN_GLOBAL("__builtin__", "getattr"),
        FOREIGN_GLOBAL("torch._utils", "_rebuild_qtensor"),
        FOREIGN_GLOBAL("torch", "ComplexFloatStorage"),
        FOREIGN_GLOBAL("torch._utils", "_rebuild_tensor_v3"),
        FOREIGN_GLOBAL("torch.storage", "_load_from_bytes"),
        FOREIGN_GLOBAL("collections", "OrderedDict\x01"),
        FOREIGN_GLOBAL("numpy.core.multiarray", "_reconstruct"),
        /* calling a storage type, or REDUCE on something that is not a global */
        REFUSED(PICKLE(RAW("\x80\x02"), GLOBAL("torch", "FloatStorage"), RAW(")R.")),
                SG_EUNSUPPORTED, "calling torch.FloatStorage is not supported"),
        REFUSED(PICKLE(STR("x"), RAW(")R.")), SG_EINVAL, "REDUCE calls a str"),
        REFUSED(PICKLE(GLOBAL("collections", "OrderedDict"), RAW("]\x85R.")), SG_EINVAL,
                "OrderedDict() with arguments"),
        /* a GLOBAL line with no end */
        REFUSED(PICKLE(RAW("c"), REPEAT(300, RAW("a"))), SG_EINVAL, "GLOBAL name unterminated"),

        /* INST, OBJ, NEWOBJ, NEWOBJ_EX, STRING, INT, LONG, LONG4, PERSID, EXT1, BINBYTES,
         * SHORT_BINBYTES, BINSTRING, EMPTY_SET, ADDITEMS, FROZENSET, BYTEARRAY8, NEXT_BUFFER,
         * READONLY_BUFFER, POP, DUP, POP_MARK, FLOAT, UNICODE, GET, PUT, BINBYTES8, 0x00, 0xff */
        UNKNOWN_OPCODE("i", "69"), UNKNOWN_OPCODE("o", "6f"), UNKNOWN_OPCODE("\x81", "81"),
        UNKNOWN_OPCODE("\x92", "92"), UNKNOWN_OPCODE("S", "53"), UNKNOWN_OPCODE("I", "49"),
        UNKNOWN_OPCODE("L", "4c"), UNKNOWN_OPCODE("\x8b", "8b"), UNKNOWN_OPCODE("P", "50"),
        UNKNOWN_OPCODE("\x82", "82"), UNKNOWN_OPCODE("B", "42"), UNKNOWN_OPCODE("C", "43"),
        UNKNOWN_OPCODE("T", "54"), UNKNOWN_OPCODE("\x8f", "8f"), UNKNOWN_OPCODE("\x90", "90"),
        UNKNOWN_OPCODE("\x91", "91"), UNKNOWN_OPCODE("\x96", "96"), UNKNOWN_OPCODE("\x97", "97"),
        UNKNOWN_OPCODE("\x98", "98"), UNKNOWN_OPCODE("0", "30"), UNKNOWN_OPCODE("2", "32"),
        UNKNOWN_OPCODE("1", "31"), UNKNOWN_OPCODE("F", "46"), UNKNOWN_OPCODE("V", "56"),
        UNKNOWN_OPCODE("g", "67"), UNKNOWN_OPCODE("p", "70"), UNKNOWN_OPCODE("\x8e", "8e"),
        UNKNOWN_OPCODE("\x00", "00"), UNKNOWN_OPCODE("\xff", "ff"),
        REFUSED(PICKLE(RAW("\x80\x06")), SG_EUNSUPPORTED, "pickle protocol 6"),

        /* limits */
        REFUSED(PICKLE(REPEAT(300, RAW("("))), SG_ETOOBIG, "MARKs nested deeper than 256"),
        /* lists nested 200000 deep cost no recursion; the top is then not a dict */
        REFUSED(PICKLE(REPEAT(200000, RAW("]")), REPEAT(199999, RAW("a")), RAW(".")), SG_EINVAL,
                "holds a list, not a dict of tensors"),
        /* a list holding itself */
        REFUSED(PICKLE(RAW("]q\x00h\x00" "a.")), SG_EINVAL, "holds a list"),
        REFUSED(PICKLE(REPEAT(SG_PT_MAX_STACK + 1, RAW("N"))), SG_ETOOBIG,
                "pickle stack deeper than"),
        /* too many objects: lists appended to one list, so the stack stays shallow */
        REFUSED(PICKLE(RAW("]"), REPEAT(SG_PT_MAX_OBJECTS, RAW("]a"))), SG_ETOOBIG,
                "pickle creates more than 2097152 objects"),
        /* too many container items: batches of APPENDS, each under the stack limit */
        REFUSED(PICKLE(RAW("]q\x00"),
                       REPEAT(SG_PT_MAX_ITEMS / (SG_PT_MAX_STACK / 2) + 1, RAW("("),
                              REPEAT(SG_PT_MAX_STACK / 2, RAW("h\x00")), RAW("e"))),
                SG_ETOOBIG, "containers hold more than 8388608 items"),
        /* huge and short lengths */
        REFUSED(PICKLE(RAW("X\xff\xff\xff\xff")), SG_ETOOBIG,
                "string of 4294967295 bytes exceeds the limit"),
        REFUSED(PICKLE(RAW("\x8d\0\0\0\0\0\0\0\x80")), SG_ETOOBIG,
                "string of 9223372036854775808 bytes"),
        REFUSED(PICKLE(RAW("X\x64\0\0\0" "short")), SG_EINVAL,
                "truncated: opcode needs 100 bytes, 5 remain", "offset 0"),
        REFUSED(PICKLE(RAW("\x8c\x02\xC3\x28")), SG_EINVAL, "string is not valid UTF-8"),
        REFUSED(PICKLE(RAW("\x8a\xc8")), SG_EUNSUPPORTED,
                "integer of 200 bytes does not fit 64 bits"),
        REFUSED(PICKLE(RAW("\x80\x04\x95\0\0\0\0\0\x01\0\0")), SG_EINVAL,
                "frame of 1099511627776 bytes runs past the end"),
        REFUSED(PICKLE(RAW("J\x01")), SG_EINVAL, "truncated"),

        /* the memo and the stack */
        REFUSED(PICKLE(RAW("h\x05")), SG_EINVAL, "memo index 5 out of range (memo holds 0)"),
        REFUSED(PICKLE(RAW("Nq\x00j\xff\xff\xff\xff")), SG_EINVAL,
                "memo index 4294967295 out of range (memo holds 1)"),
        REFUSED(PICKLE(RAW("Nr\x07\0\0\0")), SG_EINVAL, "memo index 7 skips ahead"),
        REFUSED(PICKLE(RAW("q\x00")), SG_EINVAL, "pickle stack underflow", "offset 0"),
        REFUSED(PICKLE(RAW("R")), SG_EINVAL, "pickle stack underflow"),
        /* a MARK hides what is below it: the list under it is out of APPEND's reach */
        REFUSED(PICKLE(RAW("](Na")), SG_EINVAL, "pickle stack underflow", "offset 3"),
        REFUSED(PICKLE(RAW("NNa")), SG_EINVAL, "APPEND to a None"),
        REFUSED(PICKLE(RAW("](a")), SG_EINVAL, "pickle stack underflow"),
        REFUSED(PICKLE(RAW("(Nu")), SG_EINVAL, "pickle stack underflow"),
        REFUSED(PICKLE(RAW("NNNs")), SG_EINVAL, "SETITEM on a None"),
        REFUSED(PICKLE(RAW("t")), SG_EINVAL, "no MARK to pop"),
        REFUSED(PICKLE(RAW("N\x87")), SG_EINVAL, "pickle stack underflow"),
        REFUSED(PICKLE(RAW("(Nd")), SG_EINVAL, "odd number of items (1) for a dict"),
        REFUSED(PICKLE(RAW("}]Ns")), SG_EINVAL, "a list as a dict key is not supported"),
        /* STOP problems */
        REFUSED(PICKLE(RAW("}")), SG_EINVAL, "truncated: no STOP opcode"),
        REFUSED(PICKLE(RAW("}.N")), SG_EINVAL, "1 bytes after STOP"),
        REFUSED(PICKLE(RAW("}}.")), SG_EINVAL, "STOP with 2 values on the stack"),
        REFUSED(PICKLE(RAW("}(.")), SG_EINVAL, "STOP with a MARK still open"),
        REFUSED(PICKLE(RAW(".")), SG_EINVAL, "STOP with 0 values on the stack"),

        /* the top level: a nested dict (a training checkpoint), keys, names, not a dict */
        REFUSED(STATE_DICT(STR("model"), RAW("}")), SG_EUNSUPPORTED,
                "value of 'model' is a dict; only a flat state dict"),
        REFUSED(STATE_DICT(INT(3), VIEW1(2, 2, 0, 1)), SG_EINVAL,
                "state dict key 0 is a int, not a string"),
        REFUSED(STATE_DICT(RAW("\x8c\x03" "a\0b"), VIEW1(2, 2, 0, 1)), SG_EINVAL,
                "holds a NUL byte"),
        REFUSED(STATE_DICT(STR("w"), VIEW1(2, 2, 0, 1), STR("w"), VIEW1(2, 2, 0, 1)), SG_EINVAL,
                "duplicate tensor name 'w'"),
        REFUSED(PICKLE(STR("just a string"), RAW(".")), SG_EINVAL,
                "holds a str, not a dict of tensors"),
        /* rebuild arguments */
        REFUSED(STATE_DICT(STR("w"), REBUILD, RAW("("), STORAGE("FloatStorage", "0", 2), INT(0),
                           RAW("tR")),
                SG_EINVAL, "_rebuild_tensor_v2 takes 6 or 7 arguments, not 2"),
        REFUSED(STATE_DICT(STR("w"), REBUILD, RAW("("), STORAGE("FloatStorage", "0", 2), INT(0),
                           INTS(1, 2), INTS(1, 1), RAW("\x89}}"), STR("neg"), RAW("\x88stR")),
                SG_EUNSUPPORTED, "tensor metadata"),
        /* persistent ids */
        REFUSED(PICKLE(RAW("("), STR("storage"), RAW("tQ")), SG_EINVAL,
                "persistent id is not a 5-tuple"),
        REFUSED(PICKLE(STORAGE("FloatStorage",
                               "0123456789012345678901234567890123456789012345678901234567"
                               "89012345678901234567890123456789",
                               2)),
                SG_EINVAL, "storage key is not a string of 1 to 64 bytes"),
        REFUSED(PICKLE(STORAGE("FloatStorage", "0", -1)), SG_EINVAL,
                "storage size is not a non-negative integer"),
        REFUSED(PICKLE(RAW("("), STR("storagE"), GLOBAL("torch", "FloatStorage"), STR("0"),
                       STR("cpu"), INT(2), RAW("tQ")),
                SG_EINVAL, "does not start with 'storage'"),
        REFUSED(PICKLE(RAW("("), STR("storage"), GLOBAL("collections", "OrderedDict"), STR("0"),
                       STR("cpu"), INT(2), RAW("tQ")),
                SG_EINVAL, "names no storage type"),
        REFUSED(PICKLE(RAW("("), STR("storage"), GLOBAL("torch", "FloatStorage"), STR("0"),
                       INT(0), INT(2), RAW("tQ")),
                SG_EINVAL, "storage location is not a string"),
        /* what _rebuild_tensor_v2 is given */
        REFUSED(REBUILD_ARGS(RAW("N"), INTS(1, 2), "\x89", "}"), SG_EINVAL,
                "argument 1 is a None, not a storage"),
        REFUSED(REBUILD_ARGS(STORAGE("FloatStorage", "0", 2), INTS(1, -2), "\x89", "}"),
                SG_EINVAL, "size is not a tuple of non-negative integers"),
        REFUSED(REBUILD_ARGS(STORAGE("FloatStorage", "0", 2), INTS(1, 2), "N", "}"), SG_EINVAL,
                "requires_grad is not a bool"),
        REFUSED(REBUILD_ARGS(STORAGE("FloatStorage", "0", 2), INTS(1, 2), "\x89", "]"),
                SG_EINVAL, "backward_hooks is not a dict"),
        /* BUILD on a tensor */
        REFUSED(PICKLE(VIEW1(2, 2, 0, 1), RAW("}b")), SG_EINVAL,
                "BUILD of a tensor with a dict is not supported"),

        /* What a state dict legitimately holds: _metadata via BUILD, a Parameter with state, a
         * tensor under two names (tied weights, through the memo), protocol 4 opcodes (FRAME
         * sizes are hints), a dict built with DICT, scalars skipped. */
        ACCEPTED(PICKLE(RAW("\x80\x04\x95\0\0\0\0\0\0\0\0"), GLOBAL("collections", "OrderedDict"),
                        RAW(")R\x94("), STR("w"),
                        GLOBAL("torch._utils", "_rebuild_parameter_with_state"), RAW("("),
                        VIEW1(2, 2, 0, 1), RAW("\x88}}tRq\x01"), /* memo 1: the parameter */
                        STR("step"), FLOAT(1.5), STR("alias"), RAW("h\x01"), STR("last"),
                        TENSOR("FloatStorage", "0", 2, 1, 0, NULL, NULL),
                        RAW("\x8d\x04\0\0\0\0\0\0\0" "meta" "Nu"),
                        /* BUILD with {"_metadata": OrderedDict(("", {"version": 1}))} */
                        RAW("}"), STR("_metadata"), GLOBAL("collections", "OrderedDict"),
                        RAW(")R("), STR(""), RAW("("), STR("version"), INT(1), RAW("dusb.")),
                 .names = {"w", "alias", "last"}, VALUES(1.5f, -2.0f, 1.5f, -2.0f, -2.0f)),
        /* empty containers from MARK on an empty stack (a fuzzer finding: NULL + 0) */
        ACCEPTED(PICKLE(RAW("(d.")), .names = {NULL}),
        REFUSED(PICKLE(RAW("(l(t(d\x86\x86.")), SG_EINVAL, "holds a tuple"),
        REFUSED(PICKLE(RAW("(dq\x00h\x00\x85.")), SG_EINVAL, "STOP with 2 values on the stack"),
        /* names in UTF-8 are kept as they are; invalid UTF-8 (overlong, surrogate, > U+10FFFF)
         * is refused as Python's decoder refuses it */
        ACCEPTED(STATE_DICT(STR(utf8[0]), TENSOR("FloatStorage", "0", 2, 0, 0, NULL, NULL),
                            STR(utf8[1]), TENSOR("FloatStorage", "0", 2, 1, 0, NULL, NULL),
                            STR(utf8[2]), TENSOR("FloatStorage", "0", 2, 0, 0, NULL, NULL)),
                 .names = {utf8[0], utf8[1], utf8[2]}, VALUES(1.5f, -2.0f, 1.5f)),
        BAD_UTF8("\xE0\x80\x80"), BAD_UTF8("\xED\xA0\x80"), BAD_UTF8("\xF4\x90\x80\x80"),
        BAD_UTF8("\xC0\xAF"), BAD_UTF8("\xF0\x9F\x98"),
        /* an empty state dict is a valid file with no tensors */
        ACCEPTED(PICKLE(RAW("}.")), .names = {NULL}),
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_pickle_case(i, &cases[i]);
    CHECK(access(marker, F_OK) != 0);
}

int main(void)
{
    test_fixtures();
    test_views_share_storage();
    test_skipped_scalars();
    test_legacy_and_not_zip();
    test_truncations_and_flips();
    test_built_archives();
    test_pickles();
    return check_report("test_ptfile");
}
