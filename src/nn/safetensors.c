/* safetensors reader and writer. The whole header is validated at open, following the reference
 * implementation (huggingface/safetensors): header length <= 100 MB, header starts with '{', every
 * entry well typed, and the tensors' byte ranges tile the data section exactly, with no gap,
 * overlap or trailing byte. After that every sg_st_tensor points at bytes that exist, so lookups
 * and conversions cannot read out of bounds. The JSON is parsed with jansson, then names and
 * metadata are copied into one block owned by the file and the JSON tree is freed. */
#include "nn/safetensors.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "base/file.h"
#include "base/utf8.h"
#include "nn/shape.h"

/* The format is little-endian; tensor bytes are copied as they are. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host"
#endif

/* Bytes of a tensor name quoted in a message (cut at a UTF-8 boundary), so that messages fit
 * sg_error.msg whole and stay valid UTF-8. */
#define NAME_CLIP 48

typedef struct st_entry {
    sg_st_tensor t;
    uint64_t begin, end; /* data_offsets, relative to the data section */
    size_t order;        /* position in the header, to sort ties (zero-size tensors) stably */
} st_entry;

struct sg_st_file {
    const unsigned char *base; /* the whole file */
    size_t len;
    sg_file_map file; /* what sg_st_open mapped; empty for a borrowed buffer */
    char label[SG_FILE_LABEL_SIZE];
    st_entry *entries; /* in data-offset order */
    size_t n;
    size_t *slots; /* open-addressing table of entry index + 1 (0 = empty), nslots a power of 2 */
    size_t nslots;
    uint64_t seed; /* of name_hash */
    const char **meta; /* key, value pairs */
    size_t nmeta;
    char *strings; /* names and metadata */
};

/* ---- messages ---------------------------------------------------------------------------- */

#define QUOTE(buf, s) sg_utf8_quote(buf, NAME_CLIP, (s), strlen(s), false)

/* ---- dtypes ------------------------------------------------------------------------------ */

static const struct {
    const char *name;
    sg_dtype dt;
    size_t size;
} dtype_table[] = {
    {"F32", SG_DT_F32, 4}, {"F16", SG_DT_F16, 2}, {"BF16", SG_DT_BF16, 2}, {"F64", SG_DT_F64, 8},
    {"I8", SG_DT_I8, 1},   {"U8", SG_DT_U8, 1},   {"I16", SG_DT_I16, 2},   {"I32", SG_DT_I32, 4},
    {"I64", SG_DT_I64, 8}, {"BOOL", SG_DT_BOOL, 1},
};
#define NDTYPES (sizeof dtype_table / sizeof dtype_table[0])

/* Dtypes the format defines that this reader does not convert: they get a clear
 * "unsupported" rather than "unknown". */
static const char *const unsupported_dtypes[] = {
    "F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4", "U16", "U32", "U64", "C64",
};

size_t sg_dtype_size(sg_dtype t)
{
    for (size_t i = 0; i < NDTYPES; i++)
        if (dtype_table[i].dt == t)
            return dtype_table[i].size;
    return 0;
}

const char *sg_dtype_name(sg_dtype t)
{
    for (size_t i = 0; i < NDTYPES; i++)
        if (dtype_table[i].dt == t)
            return dtype_table[i].name;
    return "?";
}

static bool dtype_from_name(const char *s, sg_dtype *out)
{
    for (size_t i = 0; i < NDTYPES; i++)
        if (strcmp(dtype_table[i].name, s) == 0) {
            *out = dtype_table[i].dt;
            return true;
        }
    return false;
}

/* ---- conversion to f32 ------------------------------------------------------------------- */

static inline float f32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint32_t f32_to_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* IEEE half -> single without tables or branches (compare masks, so that GCC and clang both
 * vectorise loops over it). With the exponent and mantissa moved to their float positions:
 * normal numbers rebias the exponent by 127 - 15; inf/NaN (exponent 31) get the rest of the way
 * to 255, payload kept; subnormals m * 2^-24 are computed exactly as (2^-14 + m * 2^-24) - 2^-14,
 * the first term built from the bits (exponent 113 = 127 - 14), which never needs float
 * subnormals (so FTZ/DAZ modes cannot change the result). */
static inline float f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t mag = (uint32_t)(h & 0x7FFFu) << 13;
    uint32_t infnan = 0u - (uint32_t)(mag >= 0x7C00u << 13);
    uint32_t subnormal = 0u - (uint32_t)(mag < 0x0400u << 13);
    uint32_t normal = mag + ((uint32_t)(127 - 15) << 23) + (infnan & (uint32_t)(128 - 16) << 23);
    uint32_t sub = f32_to_bits(f32_from_bits(mag + (113u << 23)) - f32_from_bits(113u << 23));
    return f32_from_bits(sign | (subnormal & sub) | (~subnormal & normal));
}

static inline float bf16_to_f32(uint16_t h)
{
    return f32_from_bits((uint32_t)h << 16);
}

/* Elements are copied in blocks into aligned scratch and converted from there: the source may be
 * unaligned, and a fixed trip count lets the compiler vectorise the conversion without an
 * epilogue even at -O2. */
#define CONV_BLOCK 256

#define DEFINE_CONVERT(fn, T, EXPR)                                                          \
    static void fn(const unsigned char *src, size_t n, float *dst)                           \
    {                                                                                        \
        T tmp[CONV_BLOCK];                                                                   \
        size_t i = 0;                                                                        \
        for (; i + CONV_BLOCK <= n; i += CONV_BLOCK) {                                       \
            memcpy(tmp, src + i * sizeof(T), sizeof tmp);                                    \
            for (size_t j = 0; j < CONV_BLOCK; j++) {                                        \
                T v = tmp[j];                                                                \
                dst[i + j] = (EXPR);                                                         \
            }                                                                                \
        }                                                                                    \
        size_t rest = n - i;                                                                 \
        memcpy(tmp, src + i * sizeof(T), rest * sizeof(T));                                 \
        for (size_t j = 0; j < rest; j++) {                                                  \
            T v = tmp[j];                                                                    \
            dst[i + j] = (EXPR);                                                             \
        }                                                                                    \
    }

DEFINE_CONVERT(convert_f16, uint16_t, f16_to_f32(v))
DEFINE_CONVERT(convert_bf16, uint16_t, bf16_to_f32(v))
DEFINE_CONVERT(convert_f64, double, (float)v)
DEFINE_CONVERT(convert_i8, int8_t, (float)v)
DEFINE_CONVERT(convert_u8, uint8_t, (float)v)
DEFINE_CONVERT(convert_i16, int16_t, (float)v)
DEFINE_CONVERT(convert_i32, int32_t, (float)v)
DEFINE_CONVERT(convert_i64, int64_t, (float)v)
DEFINE_CONVERT(convert_bool, uint8_t, v ? 1.0f : 0.0f)

void sg_dtype_to_f32(sg_dtype t, const void *src, size_t n, float *dst)
{
    const unsigned char *s = src;
    if (n == 0)
        return;
    switch (t) {
    case SG_DT_F32: memcpy(dst, s, n * sizeof(float)); break;
    case SG_DT_F16: convert_f16(s, n, dst); break;
    case SG_DT_BF16: convert_bf16(s, n, dst); break;
    case SG_DT_F64: convert_f64(s, n, dst); break;
    case SG_DT_I8: convert_i8(s, n, dst); break;
    case SG_DT_U8: convert_u8(s, n, dst); break;
    case SG_DT_I16: convert_i16(s, n, dst); break;
    case SG_DT_I32: convert_i32(s, n, dst); break;
    case SG_DT_I64: convert_i64(s, n, dst); break;
    case SG_DT_BOOL: convert_bool(s, n, dst); break;
    }
}

/* ---- header parsing ---------------------------------------------------------------------- */

static uint64_t rd_u64le(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* A JSON integer >= 0, as uint64. */
static bool json_nonneg_int(const json_t *v, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return false;
    *out = (uint64_t)json_integer_value(v);
    return true;
}

/* Fills e from the header entry v of tensor name; data_len is the data section's size. */
static sg_status parse_entry(const sg_st_file *f, const char *name, json_t *v, uint64_t data_len,
                             st_entry *e, sg_error *err)
{
    char nb[NAME_CLIP + 4], sb[96];
    const char *L = f->label;
    if (!json_is_object(v))
        return sg_error_set(err, SG_EINVAL, "%s: header entry for tensor '%s' is not an object",
                            L, QUOTE(nb, name));

    json_t *dt = json_object_get(v, "dtype");
    if (!dt)
        return sg_error_set(err, SG_EINVAL, "%s: tensor '%s' has no \"dtype\"", L,
                            QUOTE(nb, name));
    if (!json_is_string(dt))
        return sg_error_set(err, SG_EINVAL, "%s: tensor '%s': \"dtype\" is not a string", L,
                            QUOTE(nb, name));
    const char *dts = json_string_value(dt);
    if (!dtype_from_name(dts, &e->t.dtype)) {
        char db[NAME_CLIP + 4];
        for (size_t i = 0; i < sizeof unsupported_dtypes / sizeof *unsupported_dtypes; i++)
            if (strcmp(dts, unsupported_dtypes[i]) == 0)
                return sg_error_set(err, SG_EUNSUPPORTED,
                                    "%s: tensor '%s' has dtype %s, which is not supported "
                                    "(F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL are)",
                                    L, QUOTE(nb, name), dts);
        return sg_error_set(err, SG_EINVAL, "%s: tensor '%s' has unknown dtype \"%s\"", L,
                            QUOTE(nb, name), QUOTE(db, dts));
    }

    json_t *shape = json_object_get(v, "shape");
    if (!shape)
        return sg_error_set(err, SG_EINVAL, "%s: tensor '%s' has no \"shape\"", L,
                            QUOTE(nb, name));
    if (!json_is_array(shape))
        return sg_error_set(err, SG_EINVAL, "%s: tensor '%s': \"shape\" is not an array", L,
                            QUOTE(nb, name));
    size_t ndim = json_array_size(shape);
    if (ndim > SG_ST_MAX_DIMS)
        return sg_error_set(err, SG_EUNSUPPORTED,
                            "%s: tensor '%s' has %zu dimensions; at most %d are supported", L,
                            QUOTE(nb, name), ndim, SG_ST_MAX_DIMS);
    e->t.ndim = (int)ndim;
    /* Element and byte counts in the order the reference checks them: overflow is an error
     * even when a later dimension is 0. */
    uint64_t numel = 1;
    for (size_t i = 0; i < ndim; i++) {
        uint64_t d;
        if (!json_nonneg_int(json_array_get(shape, i), &d))
            return sg_error_set(err, SG_EINVAL,
                                "%s: tensor '%s': shape[%zu] is not a non-negative integer", L,
                                QUOTE(nb, name), i);
        e->t.shape[i] = (int64_t)d;
        if (d != 0 && numel > (uint64_t)INT64_MAX / d)
            return sg_error_set(err, SG_EINVAL, "%s: tensor '%s': element count overflows", L,
                                QUOTE(nb, name));
        numel *= d;
    }
    size_t esize = sg_dtype_size(e->t.dtype);
    if (numel > (uint64_t)INT64_MAX / esize)
        return sg_error_set(err, SG_EINVAL, "%s: tensor '%s': byte count overflows", L,
                            QUOTE(nb, name));
    uint64_t need = numel * esize;

    json_t *off = json_object_get(v, "data_offsets");
    if (!off)
        return sg_error_set(err, SG_EINVAL, "%s: tensor '%s' has no \"data_offsets\"", L,
                            QUOTE(nb, name));
    uint64_t b, en;
    if (!json_is_array(off) || json_array_size(off) != 2 ||
        !json_nonneg_int(json_array_get(off, 0), &b) ||
        !json_nonneg_int(json_array_get(off, 1), &en))
        return sg_error_set(err, SG_EINVAL,
                            "%s: tensor '%s': \"data_offsets\" is not two non-negative integers",
                            L, QUOTE(nb, name));
    if (b > en)
        return sg_error_set(err, SG_EINVAL,
                            "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
                            "]: begin is after end",
                            L, QUOTE(nb, name), b, en);
    if (en > data_len)
        return sg_error_set(err, SG_EINVAL,
                            "%s: truncated: tensor '%s' needs bytes [%" PRIu64 ",%" PRIu64
                            ") but the file's data section has %" PRIu64 " bytes",
                            L, QUOTE(nb, name), b, en, data_len);
    if (en - b != need)
        return sg_error_set(err, SG_EINVAL,
                            "%s: tensor '%s': data_offsets span %" PRIu64
                            " bytes but %s %s needs %" PRIu64,
                            L, QUOTE(nb, name), en - b, sg_dtype_name(e->t.dtype),
                            sg_shape_str(sb, sizeof sb, e->t.ndim, e->t.shape), need);
    e->begin = b;
    e->end = en;
    e->t.nbytes = (size_t)(en - b);
    return SG_OK;
}

static int entry_cmp(const void *pa, const void *pb)
{
    const st_entry *a = pa, *b = pb;
    if (a->begin != b->begin)
        return a->begin < b->begin ? -1 : 1;
    if (a->end != b->end)
        return a->end < b->end ? -1 : 1;
    return a->order < b->order ? -1 : a->order > b->order;
}

/* FNV-1a from a per-file random basis, then a splitmix64 finaliser: names come from the file,
 * and an unseeded hash would let a crafted header put every name in one probe chain. */
static uint64_t name_hash(const char *s, uint64_t seed)
{
    uint64_t h = 0xcbf29ce484222325u ^ seed;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3u;
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9u;
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebu;
    return h ^ (h >> 31);
}

static uint64_t hash_seed(const sg_st_file *f)
{
    uint64_t seed;
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) == (ssize_t)sizeof seed)
        return seed;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)(uintptr_t)f ^ (uint64_t)ts.tv_nsec << 20 ^ (uint64_t)ts.tv_sec;
}

static sg_status build_index(sg_st_file *f, sg_error *err)
{
    size_t cap = 8;
    while (cap < 2 * f->n)
        cap *= 2;
    f->slots = calloc(cap, sizeof *f->slots);
    if (!f->slots)
        return sg_error_set(err, SG_ENOMEM, "%s: out of memory for the tensor index", f->label);
    f->nslots = cap;
    f->seed = hash_seed(f);
    for (size_t i = 0; i < f->n; i++) {
        size_t s = (size_t)name_hash(f->entries[i].t.name, f->seed) & (cap - 1);
        while (f->slots[s]) {
            /* unreachable: the parser rejects duplicate keys */
            if (strcmp(f->entries[f->slots[s] - 1].t.name, f->entries[i].t.name) == 0) {
                char nb[NAME_CLIP + 4];
                return sg_error_set(err, SG_EINVAL, "%s: duplicate tensor name '%s'", f->label,
                                    QUOTE(nb, f->entries[i].t.name));
            }
            s = (s + 1) & (cap - 1);
        }
        f->slots[s] = i + 1;
    }
    return SG_OK;
}

/* Checks that the sorted entries tile [0, data_len) exactly, as the reference requires. */
static sg_status check_tiling(const sg_st_file *f, uint64_t data_len, sg_error *err)
{
    char nb[NAME_CLIP + 4], pb[NAME_CLIP + 4];
    uint64_t pos = 0;
    for (size_t i = 0; i < f->n; i++) {
        const st_entry *e = &f->entries[i];
        if (e->begin < pos)
            return sg_error_set(err, SG_EINVAL,
                                "%s: tensors '%s' and '%s' overlap at data offset %" PRIu64
                                " (safetensors requires tensors to tile the data section "
                                "contiguously)",
                                f->label, QUOTE(pb, f->entries[i - 1].t.name),
                                QUOTE(nb, e->t.name), e->begin);
        if (e->begin > pos)
            return sg_error_set(err, SG_EINVAL,
                                "%s: gap of %" PRIu64 " unused bytes before tensor '%s' "
                                "(safetensors requires tensors to tile the data section "
                                "contiguously)",
                                f->label, e->begin - pos, QUOTE(nb, e->t.name));
        pos = e->end;
    }
    if (pos != data_len)
        return sg_error_set(err, SG_EINVAL,
                            "%s: %" PRIu64 " trailing bytes after the last tensor (the data "
                            "section has %" PRIu64 " bytes; safetensors requires tensors to "
                            "cover it exactly)",
                            f->label, data_len - pos, data_len);
    return SG_OK;
}

/* Copies the metadata object's pairs into f; *sp is the string block's cursor. */
static sg_status parse_metadata(sg_st_file *f, json_t *md, char **sp, sg_error *err)
{
    const char *k;
    json_t *v;
    f->meta = calloc(2 * json_object_size(md) + 1, sizeof *f->meta);
    if (!f->meta)
        return sg_error_set(err, SG_ENOMEM, "%s: out of memory for metadata", f->label);
    json_object_foreach(md, k, v) {
        char kb[NAME_CLIP + 4];
        if (!json_is_string(v))
            return sg_error_set(err, SG_EINVAL,
                                "%s: __metadata__ value for key '%s' is not a string", f->label,
                                QUOTE(kb, k));
        size_t kl = strlen(k) + 1, vl = strlen(json_string_value(v)) + 1;
        memcpy(*sp, k, kl);
        f->meta[2 * f->nmeta] = *sp;
        *sp += kl;
        memcpy(*sp, json_string_value(v), vl);
        f->meta[2 * f->nmeta + 1] = *sp;
        *sp += vl;
        f->nmeta++;
    }
    return SG_OK;
}

static sg_status parse_header(sg_st_file *f, sg_error *err)
{
    const char *L = f->label;
    if (f->len < 8)
        return sg_error_set(err, SG_EINVAL,
                            "%s: file is %zu bytes, shorter than the 8-byte header length", L,
                            f->len);
    uint64_t hlen = rd_u64le(f->base);
    if (hlen > SG_ST_MAX_HEADER_BYTES)
        return sg_error_set(err, SG_ETOOBIG,
                            "%s: header length %" PRIu64 " exceeds the limit of %u bytes", L,
                            hlen, SG_ST_MAX_HEADER_BYTES);
    if (hlen > f->len - 8)
        return sg_error_set(err, SG_EINVAL,
                            "%s: header length %" PRIu64 " is larger than the file (%zu bytes "
                            "after the length)",
                            L, hlen, f->len - 8);
    const char *hdr = (const char *)f->base + 8;
    if (hlen == 0 || hdr[0] != '{')
        return sg_error_set(err, SG_EINVAL, "%s: header does not start with '{'", L);
    uint64_t data_len = f->len - 8 - hlen;

    json_error_t jerr;
    json_t *root = json_loadb(hdr, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        /* jansson quotes the input near the error: clip it like any untrusted text */
        char jb[100 + 4];
        sg_utf8_quote(jb, 100, jerr.text, strlen(jerr.text), false);
        if (json_error_code(&jerr) == json_error_duplicate_key)
            return sg_error_set(err, SG_EINVAL, "%s: duplicate key in header: %s", L, jb);
        if (json_error_code(&jerr) == json_error_out_of_memory)
            return sg_error_set(err, SG_ENOMEM, "%s: out of memory parsing the header", L);
        return sg_error_set(err, SG_EINVAL, "%s: header is not valid JSON: %s (at byte %d)", L,
                            jb, jerr.position);
    }
    sg_status st = SG_OK;
    if (!json_is_object(root)) { /* unreachable after the '{' check; kept for clarity */
        st = sg_error_set(err, SG_EINVAL, "%s: header is not a JSON object", L);
        goto done;
    }

    /* Size the string block: every key and metadata value, NUL-terminated. */
    json_t *md = json_object_get(root, "__metadata__");
    if (md && !json_is_object(md) && !json_is_null(md)) {
        st = sg_error_set(err, SG_EINVAL, "%s: __metadata__ is not an object", L);
        goto done;
    }
    size_t strbytes = 1;
    const char *k;
    json_t *v;
    json_object_foreach(root, k, v) strbytes += strlen(k) + 1;
    if (json_is_object(md))
        json_object_foreach(md, k, v) {
            strbytes += strlen(k) + 1;
            if (json_is_string(v))
                strbytes += strlen(json_string_value(v)) + 1;
        }
    size_t ntensors = json_object_size(root) - (md ? 1 : 0);
    f->strings = malloc(strbytes);
    f->entries = calloc(ntensors ? ntensors : 1, sizeof *f->entries);
    if (!f->strings || !f->entries) {
        st = sg_error_set(err, SG_ENOMEM, "%s: out of memory for %zu tensor entries", L,
                          ntensors);
        goto done;
    }
    char *sp = f->strings;
    if (json_is_object(md) && (st = parse_metadata(f, md, &sp, err)) != SG_OK)
        goto done;

    json_object_foreach(root, k, v) {
        if (strcmp(k, "__metadata__") == 0)
            continue;
        st_entry *e = &f->entries[f->n];
        if ((st = parse_entry(f, k, v, data_len, e, err)) != SG_OK)
            goto done;
        size_t kl = strlen(k) + 1;
        memcpy(sp, k, kl);
        e->t.name = sp;
        sp += kl;
        e->order = f->n++;
    }
    qsort(f->entries, f->n, sizeof *f->entries, entry_cmp);
    if ((st = check_tiling(f, data_len, err)) != SG_OK)
        goto done;
    const unsigned char *data = f->base + 8 + hlen;
    for (size_t i = 0; i < f->n; i++)
        f->entries[i].t.data = data + f->entries[i].begin;
    st = build_index(f, err);
done:
    json_decref(root);
    return st;
}

/* ---- open / close ------------------------------------------------------------------------ */

static sg_st_file *st_new(const char *label, sg_error *err)
{
    sg_st_file *f = calloc(1, sizeof *f);
    if (!f) {
        sg_error_set(err, SG_ENOMEM, "out of memory opening %s", label);
        return NULL;
    }
    sg_file_label(f->label, label);
    return f;
}

/* Reads f over base[0..len); closes f and returns NULL when it is refused. */
static sg_st_file *st_read(sg_st_file *f, const unsigned char *base, size_t len, sg_error *err)
{
    f->base = base;
    f->len = len;
    if (parse_header(f, err) == SG_OK)
        return f;
    sg_st_close(f);
    return NULL;
}

sg_st_file *sg_st_open_memory(const void *buf, size_t len, sg_error *err)
{
    if (!buf && len) {
        sg_error_set(err, SG_EINVAL, "sg_st_open_memory: NULL buffer");
        return NULL;
    }
    sg_st_file *f = st_new("<memory>", err);
    return f ? st_read(f, buf, len, err) : NULL;
}

sg_st_file *sg_st_open(const char *path, sg_error *err)
{
    if (!path) {
        sg_error_set(err, SG_EINVAL, "sg_st_open: NULL path");
        return NULL;
    }
    sg_st_file *f = st_new(path, err);
    if (f && sg_file_map_open(path, SIZE_MAX, &f->file, err) != SG_OK) {
        sg_st_close(f);
        return NULL;
    }
    return f ? st_read(f, f->file.data, f->file.len, err) : NULL;
}

void sg_st_close(sg_st_file *f)
{
    if (!f)
        return;
    sg_file_map_close(&f->file);
    free(f->entries);
    free(f->slots);
    free(f->meta);
    free(f->strings);
    free(f);
}

/* ---- lookups ----------------------------------------------------------------------------- */

size_t sg_st_count(const sg_st_file *f)
{
    return f ? f->n : 0;
}

const sg_st_tensor *sg_st_at(const sg_st_file *f, size_t i)
{
    return f && i < f->n ? &f->entries[i].t : NULL;
}

const sg_st_tensor *sg_st_find(const sg_st_file *f, const char *name)
{
    if (!f || !name || !f->nslots)
        return NULL;
    size_t mask = f->nslots - 1;
    for (size_t s = (size_t)name_hash(name, f->seed) & mask; f->slots[s]; s = (s + 1) & mask) {
        const sg_st_tensor *t = &f->entries[f->slots[s] - 1].t;
        if (strcmp(t->name, name) == 0)
            return t;
    }
    return NULL;
}

const char *sg_st_metadata(const sg_st_file *f, const char *key)
{
    if (!f || !key)
        return NULL;
    for (size_t i = 0; i < f->nmeta; i++)
        if (strcmp(f->meta[2 * i], key) == 0)
            return f->meta[2 * i + 1];
    return NULL;
}

int64_t sg_st_numel(const sg_st_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->shape[i]; /* cannot overflow: checked at open */
    return n;
}

/* Finds name and checks its shape against the expectation. */
static const sg_st_tensor *find_checked(const sg_st_file *f, const char *name, int ndim,
                                        const int64_t *shape, sg_error *err)
{
    char nb[NAME_CLIP + 4];
    if (!f || !name) {
        sg_error_set(err, SG_EINVAL, "sg_st_read_f32: NULL file or name");
        return NULL;
    }
    const sg_st_tensor *t = sg_st_find(f, name);
    if (!t) {
        sg_error_set(err, SG_EINVAL, "tensor '%s' not found in %s", QUOTE(nb, name), f->label);
        return NULL;
    }
    if (!shape)
        return t;
    if (ndim < 0 || ndim > SG_ST_MAX_DIMS) {
        sg_error_set(err, SG_EINVAL, "tensor '%s': expected ndim %d is out of range",
                     QUOTE(nb, name), ndim);
        return NULL;
    }
    if (!sg_shape_matches(t->ndim, t->shape, ndim, shape)) {
        char have[64], want[64];
        sg_error_set(err, SG_EINVAL, "%s: tensor '%s' has shape %s, expected %s", f->label,
                     QUOTE(nb, name), sg_shape_str(have, sizeof have, t->ndim, t->shape),
                     sg_shape_str(want, sizeof want, ndim, shape));
        return NULL;
    }
    return t;
}

sg_status sg_st_read_f32(const sg_st_file *f, const char *name, int ndim, const int64_t *shape,
                         float *out, sg_error *err)
{
    const sg_st_tensor *t = find_checked(f, name, ndim, shape, err);
    if (!t)
        return err ? err->code : SG_EINVAL;
    size_t n = (size_t)sg_st_numel(t);
    if (n && !out)
        return sg_error_set(err, SG_EINVAL, "sg_st_read_f32: NULL output buffer");
    if (sg_dtype_size(t->dtype) == 0) { /* unreachable: open accepts only convertible dtypes */
        char nb[NAME_CLIP + 4];
        return sg_error_set(err, SG_EUNSUPPORTED, "%s: tensor '%s': dtype %s is not convertible",
                            f->label, QUOTE(nb, name), sg_dtype_name(t->dtype));
    }
    sg_dtype_to_f32(t->dtype, t->data, n, out);
    return SG_OK;
}

float *sg_st_get_f32(const sg_st_file *f, const char *name, int ndim, const int64_t *shape,
                     sg_error *err)
{
    const sg_st_tensor *t = find_checked(f, name, ndim, shape, err);
    if (!t)
        return NULL;
    int64_t n = sg_st_numel(t);
    char nb[NAME_CLIP + 4];
    if ((uint64_t)n > SIZE_MAX / sizeof(float)) {
        sg_error_set(err, SG_ETOOBIG, "%s: tensor '%s' is too large to convert to f32",
                     f->label, QUOTE(nb, name));
        return NULL;
    }
    float *out = malloc(n ? (size_t)n * sizeof(float) : 1);
    if (!out) {
        sg_error_set(err, SG_ENOMEM, "%s: out of memory for tensor '%s' (%" PRId64 " floats)",
                     f->label, QUOTE(nb, name), n);
        return NULL;
    }
    if (sg_st_read_f32(f, name, -1, NULL, out, err) != SG_OK) {
        free(out);
        return NULL;
    }
    return out;
}

/* ---- writer ------------------------------------------------------------------------------ */

/* The header JSON for tensors (data laid out in order) and metadata; *data_bytes gets the data
 * section's size. */
static json_t *build_header(const sg_st_out *tensors, size_t n, const char *const *kv,
                            uint64_t *data_bytes, sg_error *err)
{
    char nb[NAME_CLIP + 4];
    json_t *root = json_object();
    if (!root)
        goto oom;
    if (kv && kv[0]) {
        json_t *md = json_object();
        if (!md || json_object_set_new(root, "__metadata__", md) != 0)
            goto oom;
        for (size_t i = 0; kv[i]; i += 2) {
            if (!kv[i + 1]) {
                sg_error_set(err, SG_EINVAL, "sg_st_write: metadata key '%s' has no value",
                             QUOTE(nb, kv[i]));
                goto fail;
            }
            json_t *s = json_string(kv[i + 1]);
            if (!s || json_object_set_new(md, kv[i], s) != 0) {
                sg_error_set(err, SG_EINVAL,
                             "sg_st_write: metadata key '%s' or its value is not valid UTF-8",
                             QUOTE(nb, kv[i]));
                goto fail;
            }
        }
    }
    uint64_t off = 0;
    for (size_t i = 0; i < n; i++) {
        const sg_st_out *t = &tensors[i];
        if (!t->name) {
            sg_error_set(err, SG_EINVAL, "sg_st_write: tensor %zu has no name", i);
            goto fail;
        }
        if (strcmp(t->name, "__metadata__") == 0 || json_object_get(root, t->name)) {
            sg_error_set(err, SG_EINVAL, "sg_st_write: duplicate or reserved tensor name '%s'",
                         QUOTE(nb, t->name));
            goto fail;
        }
        size_t esize = sg_dtype_size(t->dtype);
        if (!esize || t->ndim < 0 || t->ndim > SG_ST_MAX_DIMS) {
            sg_error_set(err, SG_EINVAL, "sg_st_write: tensor '%s' has an invalid dtype or ndim",
                         QUOTE(nb, t->name));
            goto fail;
        }
        json_t *e = json_object(), *shape = json_array();
        if (!e) {
            json_decref(shape);
            goto oom;
        }
        /* set_new takes the reference even when it fails */
        if (json_object_set_new(e, "shape", shape) != 0 ||
            json_object_set_new(e, "dtype", json_string(sg_dtype_name(t->dtype))) != 0) {
            json_decref(e);
            goto oom;
        }
        uint64_t numel = 1;
        bool bad = false;
        for (int d = 0; d < t->ndim; d++) {
            int64_t dim = t->shape[d];
            if (dim < 0 || (dim && numel > (uint64_t)INT64_MAX / (uint64_t)dim)) {
                bad = true;
                break;
            }
            numel *= (uint64_t)dim;
            if (json_array_append_new(shape, json_integer(dim)) != 0) {
                json_decref(e);
                goto oom;
            }
        }
        if (bad || numel > (uint64_t)INT64_MAX / esize ||
            off + numel * esize > (uint64_t)INT64_MAX || numel * esize > SIZE_MAX) {
            json_decref(e);
            sg_error_set(err, SG_EINVAL, "sg_st_write: tensor '%s' has an invalid shape",
                         QUOTE(nb, t->name));
            goto fail;
        }
        uint64_t bytes = numel * esize;
        if (bytes && !t->data) {
            json_decref(e);
            sg_error_set(err, SG_EINVAL, "sg_st_write: tensor '%s' has no data",
                         QUOTE(nb, t->name));
            goto fail;
        }
        json_t *offs = json_pack("[II]", (json_int_t)off, (json_int_t)(off + bytes));
        if (!offs || json_object_set_new(e, "data_offsets", offs) != 0) {
            json_decref(e);
            goto oom;
        }
        if (json_object_set_new(root, t->name, e) != 0) {
            sg_error_set(err, SG_EINVAL, "sg_st_write: tensor name '%s' is not valid UTF-8",
                         QUOTE(nb, t->name));
            goto fail;
        }
        off += bytes;
    }
    *data_bytes = off;
    return root;
oom:
    sg_error_set(err, SG_ENOMEM, "sg_st_write: out of memory building the header");
fail:
    json_decref(root);
    return NULL;
}

static bool write_all(int fd, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    while (len) {
        ssize_t w = write(fd, p, len > (1u << 30) ? (1u << 30) : len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        len -= (size_t)w;
    }
    return true;
}

sg_status sg_st_write(const char *path, const sg_st_out *tensors, size_t n,
                      const char *const *metadata_kv, sg_error *err)
{
    char lb[SG_FILE_LABEL_SIZE];
    if (!path || (n && !tensors))
        return sg_error_set(err, SG_EINVAL, "sg_st_write: NULL path or tensors");
    sg_file_label(lb, path);
    uint64_t data_bytes;
    json_t *root = build_header(tensors, n, metadata_kv, &data_bytes, err);
    if (!root)
        return err ? err->code : SG_EINVAL;
    char *json = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (!json)
        return sg_error_set(err, SG_ENOMEM, "sg_st_write: out of memory serialising the header");

    /* Pad with spaces so the data section starts 8-aligned, as the reference writer does. */
    size_t jl = strlen(json), hl = (jl + 7) & ~(size_t)7;
    unsigned char *head = malloc(8 + hl);
    char *tmp = malloc(strlen(path) + 8);
    sg_status st = SG_OK;
    int fd = -1;
    bool created = false;
    if (!head || !tmp) {
        st = sg_error_set(err, SG_ENOMEM, "sg_st_write: out of memory");
        goto done;
    }
    for (int i = 0; i < 8; i++)
        head[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(head + 8, json, jl);
    memset(head + 8 + jl, ' ', hl - jl);

    sprintf(tmp, "%s.XXXXXX", path);
    fd = mkstemp(tmp);
    if (fd < 0) {
        st = sg_error_set(err, SG_EIO, "%s: cannot create a temporary file: %s", lb,
                          strerror(errno));
        goto done;
    }
    created = true;
    bool ok = write_all(fd, head, 8 + hl);
    for (size_t i = 0; ok && i < n; i++) {
        uint64_t numel = 1; /* validated by build_header */
        for (int d = 0; d < tensors[i].ndim; d++)
            numel *= (uint64_t)tensors[i].shape[d];
        ok = write_all(fd, tensors[i].data, (size_t)numel * sg_dtype_size(tensors[i].dtype));
    }
    /* mkstemp creates 0600; a weight file is meant to be readable like any other. */
    if (!ok || fchmod(fd, 0644) != 0 || fsync(fd) != 0) {
        st = sg_error_set(err, SG_EIO, "%s: write failed: %s", lb, strerror(errno));
        goto done;
    }
    int rc = close(fd);
    fd = -1;
    if (rc != 0) {
        st = sg_error_set(err, SG_EIO, "%s: write failed: %s", lb, strerror(errno));
        goto done;
    }
    if (rename(tmp, path) != 0) {
        st = sg_error_set(err, SG_EIO, "%s: cannot rename the temporary file into place: %s",
                          lb, strerror(errno));
        goto done;
    }
    created = false; /* renamed: nothing to clean up */
done:
    if (fd >= 0)
        close(fd);
    if (created && st != SG_OK)
        unlink(tmp);
    free(tmp);
    free(head);
    free(json);
    return st;
}

void sg_st_release(const sg_st_file *f, const sg_st_tensor *t)
{
    if (f && t)
        sg_file_map_release(&f->file, t->data, t->nbytes);
}
