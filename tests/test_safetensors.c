/* Tests for nn/safetensors: write/read round trips in every dtype, F16 and BF16 edge values (and
 * all 65536 halves against an independent decoder), shape checks, hashed lookups, metadata, a
 * file written by torch (py/gen_safetensors_fixture.py), writer argument errors, and every
 * class of malformed file, built in memory, with its status and message. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "nn/safetensors.h"

#ifdef SG_SOURCE_DIR
#define FIXTURE SG_SOURCE_DIR "/tests/fixtures/safetensors/torch_written.safetensors"
#else
#define FIXTURE "tests/fixtures/safetensors/torch_written.safetensors"
#endif

/* ---- helpers ----------------------------------------------------------------------------- */

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* A fresh path in /tmp (the file mkstemp made is removed: the writer must create it). */
static void tmp_path(char *buf, size_t cap)
{
    snprintf(buf, cap, "/tmp/sg_st_test_XXXXXX");
    int fd = mkstemp(buf);
    CHECK(fd >= 0);
    if (fd >= 0) {
        close(fd);
        unlink(buf);
    }
}

/* The bits a half should convert to, computed another way: ldexp on the fields. */
static uint32_t ref_f16_bits(uint16_t h)
{
    int sign = h >> 15, e = (h >> 10) & 0x1F, m = h & 0x3FF;
    float v;
    if (e == 0x1F)
        return (uint32_t)sign << 31 | 0x7F800000u | (uint32_t)m << 13; /* inf/nan, payload kept */
    if (e == 0)
        v = ldexpf((float)m, -24);
    else
        v = ldexpf((float)(m + 1024), e - 25);
    return f32_bits(sign ? -v : v);
}

/* A safetensors image in memory: prefix, header, data_len bytes of data (0xAB). */
static unsigned char *mem_file(const char *header, size_t data_len, size_t *len)
{
    size_t hl = strlen(header);
    *len = 8 + hl + data_len;
    unsigned char *b = malloc(*len);
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(b + 8, header, hl);
    memset(b + 8 + hl, 0xAB, data_len);
    return b;
}

/* Expects header (+ data_len bytes) to be refused with code and a message containing every
 * NULL-terminated fragment. */
#define REJECTS(header, data_len, code, ...)                                                     \
    check_rejects(__LINE__, header, data_len, code, (const char *[]){__VA_ARGS__, NULL})

static void check_rejects_raw(int line, const unsigned char *b, size_t len, sg_status code,
                              const char **frags)
{
    sg_error err = {0};
    sg_st_file *f = sg_st_open_memory(b, len, &err);
    CHECK_MSG(f == NULL, "line %d: accepted", line);
    sg_st_close(f);
    CHECK_MSG(err.code == code, "line %d: code %s, want %s (%s)", line,
              sg_status_name(err.code), sg_status_name(code), err.msg);
    CHECK_MSG(strstr(err.msg, "<memory>") != NULL, "line %d: \"%s\" lacks the file", line,
              err.msg);
    for (int i = 0; frags[i]; i++)
        CHECK_MSG(strstr(err.msg, frags[i]) != NULL, "line %d: \"%s\" lacks \"%s\"", line,
                  err.msg, frags[i]);
}

static void check_rejects(int line, const char *header, size_t data_len, sg_status code,
                          const char **frags)
{
    size_t len;
    unsigned char *b = mem_file(header, data_len, &len);
    check_rejects_raw(line, b, len, code, frags);
    free(b);
}

static sg_st_file *open_ok(const char *header, size_t data_len, unsigned char **keep)
{
    size_t len;
    sg_error err = {0};
    *keep = mem_file(header, data_len, &len);
    sg_st_file *f = sg_st_open_memory(*keep, len, &err);
    CHECK_MSG(f != NULL, "%s: %s", header, err.msg);
    return f;
}

/* ---- round trips ------------------------------------------------------------------------- */

static void test_roundtrip_all_dtypes(void)
{
    static const float f32[6] = {0.5f, -1.25f, 3.0e-39f, 1e30f, -0.0f, 7.0f};
    static const double f64[4] = {0.1, -1e300, 1e-300, 12345.678};
    static const uint16_t f16[3] = {0x3C00, 0xC000, 0x3555};       /* 1, -2, 0.33325 */
    static const uint16_t bf16[3] = {0x3F80, 0xC049, 0x0001};       /* 1, -3.140625, 2^-133 */
    static const int8_t i8[4] = {-128, -1, 0, 127};
    static const uint8_t u8[3] = {0, 128, 255};
    static const int16_t i16[3] = {-32768, 0, 32767};
    static const int32_t i32[3] = {-2147483647 - 1, 16777217, 7};
    static const int64_t i64[3] = {INT64_MIN, 9007199254740993LL, -5};
    static const uint8_t bools[4] = {0, 1, 2, 255};
    static const char small[3] = {1, 2, 3};
    sg_st_out outs[] = {
        {"i8_first", SG_DT_I8, 1, {3}, small}, /* makes every later offset odd */
        {"w.f32", SG_DT_F32, 2, {2, 3}, f32},
        {"w.f64", SG_DT_F64, 2, {2, 2}, f64},
        {"w.f16", SG_DT_F16, 1, {3}, f16},
        {"w.bf16", SG_DT_BF16, 1, {3}, bf16},
        {"w.i8", SG_DT_I8, 1, {4}, i8},
        {"w.u8", SG_DT_U8, 1, {3}, u8},
        {"w.i16", SG_DT_I16, 1, {3}, i16},
        {"w.i32", SG_DT_I32, 1, {3}, i32},
        {"w.i64", SG_DT_I64, 1, {3}, i64},
        {"w.bool", SG_DT_BOOL, 2, {2, 2}, bools},
        {"scalar", SG_DT_F32, 0, {0}, &f32[1]},
        {"empty", SG_DT_F16, 3, {4, 0, 2}, NULL},
    };
    const size_t n = sizeof outs / sizeof outs[0];
    static const char *const meta[] = {"format", "pt", "note", "h\xC3\xA9llo \"q\"", NULL};
    char path[64];
    tmp_path(path, sizeof path);
    sg_error err = {0};
    CHECK_MSG(sg_st_write(path, outs, n, meta, &err) == SG_OK, "%s", err.msg);
    struct stat sb;
    CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0644);

    sg_st_file *f = sg_st_open(path, &err);
    CHECK_MSG(f != NULL, "%s", err.msg);
    if (!f)
        return;
    CHECK_EQ_INT(sg_st_count(f), n);
    /* data order = write order; each tensor's bytes and header fields come back as written */
    for (size_t i = 0; i < n; i++) {
        const sg_st_tensor *t = sg_st_at(f, i);
        CHECK(t && strcmp(t->name, outs[i].name) == 0);
        CHECK(sg_st_find(f, outs[i].name) == t);
        CHECK_EQ_INT(t->dtype, outs[i].dtype);
        CHECK_EQ_INT(t->ndim, outs[i].ndim);
        for (int d = 0; d < t->ndim; d++)
            CHECK_EQ_INT(t->shape[d], outs[i].shape[d]);
        CHECK_EQ_INT(t->nbytes, (size_t)sg_st_numel(t) * sg_dtype_size(t->dtype));
        CHECK(t->nbytes == 0 || memcmp(t->data, outs[i].data, t->nbytes) == 0);
    }
    CHECK(sg_st_at(f, n) == NULL);
    CHECK(strcmp(sg_st_metadata(f, "format"), "pt") == 0);
    CHECK(strcmp(sg_st_metadata(f, "note"), "h\xC3\xA9llo \"q\"") == 0);
    CHECK(sg_st_metadata(f, "missing") == NULL);

    float out[8];
    CHECK(sg_st_read_f32(f, "w.f32", 2, (const int64_t[]){2, 3}, out, &err) == SG_OK);
    for (int i = 0; i < 6; i++)
        CHECK_EQ_INT(f32_bits(out[i]), f32_bits(f32[i]));
    CHECK(sg_st_read_f32(f, "w.f64", 2, (const int64_t[]){2, 2}, out, &err) == SG_OK);
    CHECK(out[0] == 0.1f && isinf(out[1]) && out[1] < 0 && out[2] == 0.0f &&
          out[3] == 12345.678f);
    CHECK(sg_st_read_f32(f, "w.f16", 1, NULL, out, &err) == SG_OK);
    CHECK(out[0] == 1.0f && out[1] == -2.0f && out[2] == 0.333251953125f);
    CHECK(sg_st_read_f32(f, "w.bf16", 1, NULL, out, &err) == SG_OK);
    CHECK(out[0] == 1.0f && out[1] == -3.140625f && out[2] == ldexpf(1.0f, -133));
    CHECK(sg_st_read_f32(f, "w.i8", 1, NULL, out, &err) == SG_OK);
    CHECK(out[0] == -128.0f && out[1] == -1.0f && out[2] == 0.0f && out[3] == 127.0f);
    CHECK(sg_st_read_f32(f, "w.u8", 1, NULL, out, &err) == SG_OK);
    CHECK(out[0] == 0.0f && out[1] == 128.0f && out[2] == 255.0f);
    CHECK(sg_st_read_f32(f, "w.i16", 1, NULL, out, &err) == SG_OK);
    CHECK(out[0] == -32768.0f && out[1] == 0.0f && out[2] == 32767.0f);
    CHECK(sg_st_read_f32(f, "w.i32", 1, NULL, out, &err) == SG_OK);
    CHECK(out[0] == -2147483648.0f && out[1] == 16777216.0f && out[2] == 7.0f); /* rounds */
    CHECK(sg_st_read_f32(f, "w.i64", 1, NULL, out, &err) == SG_OK);
    CHECK(out[0] == -9223372036854775808.0f && out[1] == 9007199254740992.0f && out[2] == -5.0f);
    CHECK(sg_st_read_f32(f, "w.bool", 2, NULL, out, &err) == SG_OK);
    CHECK(out[0] == 0.0f && out[1] == 1.0f && out[2] == 1.0f && out[3] == 1.0f);
    CHECK(sg_st_read_f32(f, "scalar", 0, (const int64_t[]){0}, out, &err) == SG_OK);
    CHECK(out[0] == -1.25f);
    CHECK(sg_st_read_f32(f, "empty", 3, (const int64_t[]){4, 0, 2}, NULL, &err) == SG_OK);

    float *g = sg_st_get_f32(f, "w.i16", 1, (const int64_t[]){-1}, &err);
    CHECK_MSG(g != NULL, "%s", err.msg);
    if (g)
        CHECK(g[0] == -32768.0f && g[2] == 32767.0f);
    free(g);
    g = sg_st_get_f32(f, "empty", -1, NULL, &err);
    CHECK(g != NULL);
    free(g);
    sg_st_close(f);

    /* the same bytes through the memory API */
    size_t len = 0;
    unsigned char *buf = check_read_file(path, &len);
    CHECK(buf && len > 8 && len < 2048);
    CHECK(buf && (buf[0] | buf[1] << 8) % 8 == 0); /* header padded to 8 bytes */
    f = buf ? sg_st_open_memory(buf, len, &err) : NULL;
    CHECK_MSG(f != NULL, "%s", err.msg);
    CHECK(f && sg_st_count(f) == n && sg_st_find(f, "w.bool") != NULL);
    sg_st_close(f);
    free(buf);
    unlink(path);
}

static void test_f16_edges(void)
{
    static const struct {
        uint16_t h;
        float want;
    } cases[] = {
        {0x0000, 0.0f},     {0x8000, -0.0f},           {0x0001, 0x1p-24f},
        {0x03FF, 0x1.ff8p-15f}, {0x0400, 0x1p-14f},    {0x3C00, 1.0f},
        {0xC000, -2.0f},    {0x7BFF, 65504.0f},        {0xFBFF, -65504.0f},
        {0x7C00, INFINITY}, {0xFC00, -INFINITY},       {0x3555, 0.333251953125f},
        {0x8001, -0x1p-24f},
    };
    uint16_t h[16];
    float out[16];
    size_t n = sizeof cases / sizeof cases[0];
    for (size_t i = 0; i < n; i++)
        h[i] = cases[i].h;
    sg_dtype_to_f32(SG_DT_F16, h, n, out);
    for (size_t i = 0; i < n; i++)
        CHECK_MSG(f32_bits(out[i]) == f32_bits(cases[i].want), "0x%04x -> %a, want %a",
                  cases[i].h, (double)out[i], (double)cases[i].want);
    uint16_t nans[3] = {0x7E00, 0xFE00, 0x7C01};
    sg_dtype_to_f32(SG_DT_F16, nans, 3, out);
    CHECK(isnan(out[0]) && !signbit(out[0]) && isnan(out[1]) && signbit(out[1]));
    CHECK_EQ_INT(f32_bits(out[0]), 0x7FC00000u);
    CHECK_EQ_INT(f32_bits(out[2]), 0x7F802000u); /* signalling payload kept, not quietened */

    /* all 65536 halves, from an unaligned source, in one call long enough for the block path */
    unsigned char *raw = malloc(2 * 65536 + 1);
    float *all = malloc(65536 * sizeof *all);
    for (uint32_t i = 0; i < 65536; i++) {
        raw[1 + 2 * i] = (unsigned char)i;
        raw[2 + 2 * i] = (unsigned char)(i >> 8);
    }
    sg_dtype_to_f32(SG_DT_F16, raw + 1, 65536, all);
    int bad = 0;
    for (uint32_t i = 0; i < 65536; i++)
        if (f32_bits(all[i]) != ref_f16_bits((uint16_t)i) && bad++ < 5)
            fprintf(stderr, "f16 0x%04x -> 0x%08x, want 0x%08x\n", i, f32_bits(all[i]),
                    ref_f16_bits((uint16_t)i));
    CHECK_EQ_INT(bad, 0);
    free(raw);
    free(all);
}

static void test_bf16_and_others(void)
{
    uint16_t b[9] = {0x0000, 0x8000, 0x0001, 0x3F80, 0xC049, 0x7F7F, 0x7F80, 0xFF80, 0x7FC1};
    float out[9];
    sg_dtype_to_f32(SG_DT_BF16, b, 9, out);
    for (int i = 0; i < 9; i++)
        CHECK_EQ_INT(f32_bits(out[i]), (uint32_t)b[i] << 16); /* exact, NaN payload included */
    CHECK(out[5] == 3.3895313892515355e38f);

    /* long unaligned runs of each dtype cross the block boundary (256) */
    enum { N = 1000 };
    unsigned char *raw = malloc(8 * N + 1);
    float *o = malloc(N * sizeof *o);
    for (int i = 0; i < N; i++) {
        int32_t v = i * 7919 - 3000000;
        memcpy(raw + 1 + 4 * i, &v, 4);
    }
    sg_dtype_to_f32(SG_DT_I32, raw + 1, N, o);
    int bad = 0;
    for (int i = 0; i < N; i++)
        bad += o[i] != (float)(i * 7919 - 3000000);
    CHECK_EQ_INT(bad, 0);
    for (int i = 0; i < N; i++) {
        double v = i * 0.37 - 100;
        memcpy(raw + 1 + 8 * i, &v, 8);
    }
    sg_dtype_to_f32(SG_DT_F64, raw + 1, N, o);
    bad = 0;
    for (int i = 0; i < N; i++)
        bad += o[i] != (float)(i * 0.37 - 100);
    CHECK_EQ_INT(bad, 0);
    for (int i = 0; i < N; i++)
        raw[1 + i] = (unsigned char)i;
    sg_dtype_to_f32(SG_DT_I8, raw + 1, N, o);
    bad = 0;
    for (int i = 0; i < N; i++)
        bad += o[i] != (float)(int8_t)(unsigned char)i;
    CHECK_EQ_INT(bad, 0);
    free(raw);
    free(o);

    CHECK_EQ_INT(sg_dtype_size(SG_DT_F32), 4);
    CHECK_EQ_INT(sg_dtype_size(SG_DT_BF16), 2);
    CHECK_EQ_INT(sg_dtype_size(SG_DT_F64), 8);
    CHECK_EQ_INT(sg_dtype_size(SG_DT_BOOL), 1);
    CHECK(strcmp(sg_dtype_name(SG_DT_BF16), "BF16") == 0);
    CHECK(strcmp(sg_dtype_name(SG_DT_BOOL), "BOOL") == 0);
    CHECK(strcmp(sg_dtype_name((sg_dtype)99), "?") == 0);
}

/* ---- lookups and shape checks ------------------------------------------------------------ */

static void test_shapes_and_lookups(void)
{
    unsigned char *keep;
    sg_st_file *f = open_ok("{\"a.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],"
                            "\"data_offsets\":[0,24]},\"b\":{\"dtype\":\"I8\",\"shape\":[4],"
                            "\"data_offsets\":[24,28]}}",
                            28, &keep);
    if (!f) {
        free(keep);
        return;
    }
    float out[8];
    sg_error err = {0};
    CHECK(sg_st_read_f32(f, "a.weight", 2, (const int64_t[]){2, 3}, out, &err) == SG_OK);
    CHECK(sg_st_read_f32(f, "a.weight", 2, (const int64_t[]){-1, 3}, out, &err) == SG_OK);
    CHECK(sg_st_read_f32(f, "a.weight", 2, (const int64_t[]){-1, -1}, out, &err) == SG_OK);
    CHECK(sg_st_read_f32(f, "a.weight", 2, NULL, out, &err) == SG_OK);

    CHECK(sg_st_read_f32(f, "a.weight", 2, (const int64_t[]){3, 2}, out, &err) == SG_EINVAL);
    CHECK_MSG(strstr(err.msg, "tensor 'a.weight' has shape [2, 3], expected [3, 2]"), "%s",
              err.msg);
    CHECK(strstr(err.msg, "<memory>") != NULL);
    CHECK(sg_st_read_f32(f, "a.weight", 1, (const int64_t[]){6}, out, &err) == SG_EINVAL);
    CHECK_MSG(strstr(err.msg, "has shape [2, 3], expected [6]"), "%s", err.msg);
    CHECK(sg_st_read_f32(f, "a.weight", 3, (const int64_t[]){2, 3, -1}, out, &err) == SG_EINVAL);
    CHECK_MSG(strstr(err.msg, "expected [2, 3, *]"), "%s", err.msg);
    CHECK(sg_st_read_f32(f, "a.weight", 9, (const int64_t[9]){0}, out, &err) == SG_EINVAL);

    CHECK(sg_st_read_f32(f, "a.bias", -1, NULL, out, &err) == SG_EINVAL);
    CHECK_MSG(strcmp(err.msg, "tensor 'a.bias' not found in <memory>") == 0, "%s", err.msg);
    CHECK(sg_st_get_f32(f, "nope", -1, NULL, &err) == NULL);
    CHECK(strstr(err.msg, "tensor 'nope' not found") != NULL);
    CHECK(sg_st_get_f32(f, "b", 1, (const int64_t[]){5}, &err) == NULL);
    CHECK(strstr(err.msg, "has shape [4], expected [5]") != NULL);
    CHECK(sg_st_find(f, "") == NULL && sg_st_find(f, "a") == NULL && sg_st_find(f, NULL) == NULL);
    CHECK(sg_st_metadata(f, "x") == NULL);

    /* a long name is quoted cut, and the message stays within sg_error */
    char longname[400];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    CHECK(sg_st_read_f32(f, longname, -1, NULL, out, &err) == SG_EINVAL);
    CHECK(strstr(err.msg, "...' not found in <memory>") != NULL);
    sg_st_close(f);
    free(keep);

    /* many tensors: every name found through the hash table */
    enum { N = 2000 };
    sg_st_out *outs = calloc(N, sizeof *outs);
    char (*names)[32] = malloc(N * sizeof *names);
    uint8_t *vals = malloc(N);
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "layers.%d.w", i);
        vals[i] = (uint8_t)i;
        outs[i] = (sg_st_out){names[i], SG_DT_U8, 1, {1}, &vals[i]};
    }
    char path[64];
    tmp_path(path, sizeof path);
    CHECK_MSG(sg_st_write(path, outs, N, NULL, &err) == SG_OK, "%s", err.msg);
    f = sg_st_open(path, &err);
    CHECK_MSG(f != NULL, "%s", err.msg);
    if (f) {
        int bad = 0;
        for (int i = 0; i < N; i++) {
            const sg_st_tensor *t = sg_st_find(f, names[i]);
            float v = -1;
            bad += !t || sg_st_read_f32(f, names[i], 1, (const int64_t[]){1}, &v, &err) ||
                   v != (float)(uint8_t)i;
        }
        CHECK_EQ_INT(bad, 0);
        CHECK(sg_st_find(f, "layers.2000.w") == NULL);
        CHECK(sg_st_metadata(f, "format") == NULL);
        sg_st_close(f);
    }
    unlink(path);
    free(outs);
    free(names);
    free(vals);
}

/* ---- the torch-written fixture ----------------------------------------------------------- */

static void test_torch_fixture(void)
{
    sg_error err = {0};
    sg_st_file *f = sg_st_open(FIXTURE, &err);
    CHECK_MSG(f != NULL, "%s", err.msg);
    if (!f)
        return;
    CHECK_EQ_INT(sg_st_count(f), 7);
    CHECK(strcmp(sg_st_metadata(f, "format"), "pt") == 0);
    CHECK(strcmp(sg_st_metadata(f, "source"), "py/gen_safetensors_fixture.py") == 0);
    /* data order, not the header's (name) order */
    static const char *order[] = {"i8.q",    "f16.edge", "f32.weight", "bf16.vals",
                                  "i64.ids", "scalar",   "empty"};
    for (size_t i = 0; i < 7; i++)
        CHECK(sg_st_at(f, i) && strcmp(sg_st_at(f, i)->name, order[i]) == 0);

    float o[16];
    CHECK(sg_st_read_f32(f, "i8.q", 1, (const int64_t[]){5}, o, &err) == SG_OK);
    CHECK(o[0] == -128.0f && o[1] == -1.0f && o[2] == 0.0f && o[3] == 1.0f && o[4] == 127.0f);

    const sg_st_tensor *t = sg_st_find(f, "f16.edge");
    CHECK(t && t->dtype == SG_DT_F16 && ((uintptr_t)t->data & 1) == 1); /* odd address */
    CHECK(sg_st_read_f32(f, "f16.edge", 1, (const int64_t[]){11}, o, &err) == SG_OK);
    CHECK(f32_bits(o[0]) == 0 && f32_bits(o[1]) == 0x80000000u);
    CHECK(o[2] == 1.0f && o[3] == -2.0f && o[4] == 65504.0f && o[5] == 0x1p-14f &&
          o[6] == 0x1p-24f);
    CHECK(isinf(o[7]) && o[7] > 0 && isinf(o[8]) && o[8] < 0 && isnan(o[9]));
    CHECK(o[10] == 0.333251953125f); /* torch rounded 1/3 to 0x3555 */

    CHECK(sg_st_read_f32(f, "f32.weight", 2, (const int64_t[]){2, 3}, o, &err) == SG_OK);
    CHECK(o[0] == 0.5f && o[1] == -1.25f && o[2] == 3.0f && o[3] == 1e-3f &&
          f32_bits(o[4]) == 0x80000000u && o[5] == 123456.789f);

    CHECK(sg_st_read_f32(f, "bf16.vals", 2, (const int64_t[]){2, 2}, o, &err) == SG_OK);
    CHECK(o[0] == 1.0f && o[1] == 3.140625f && o[2] == 3.3895313892515355e38f &&
          o[3] == 0x1p-133f);

    CHECK(sg_st_read_f32(f, "i64.ids", 1, (const int64_t[]){3}, o, &err) == SG_OK);
    CHECK(o[0] == -1099511627776.0f && o[1] == 0.0f && o[2] == 50256.0f);

    t = sg_st_find(f, "scalar");
    CHECK(t && t->ndim == 0 && sg_st_numel(t) == 1);
    CHECK(sg_st_read_f32(f, "scalar", 0, (const int64_t[]){0}, o, &err) == SG_OK && o[0] == 42.0f);
    t = sg_st_find(f, "empty");
    CHECK(t && t->ndim == 2 && t->shape[0] == 0 && t->shape[1] == 3 && sg_st_numel(t) == 0 &&
          t->nbytes == 0);
    CHECK_MSG(sg_st_read_f32(f, "empty", 2, (const int64_t[]){0, 3}, o, &err) == SG_OK, "%s",
              err.msg);
    sg_st_close(f);
}

/* ---- writer and open errors -------------------------------------------------------------- */

static void test_writer_errors(void)
{
    static const float v[4] = {1, 2, 3, 4};
    char path[64];
    tmp_path(path, sizeof path);
    sg_error err = {0};
    struct {
        sg_st_out t[2];
        size_t n;
        const char *frag;
    } cases[] = {
        {{{"a", SG_DT_F32, 1, {2}, v}, {"a", SG_DT_F32, 1, {2}, v}}, 2, "duplicate"},
        {{{"__metadata__", SG_DT_F32, 1, {2}, v}}, 1, "reserved"},
        {{{"bad\xFFutf8", SG_DT_F32, 1, {2}, v}}, 1, "UTF-8"},
        {{{NULL, SG_DT_F32, 1, {2}, v}}, 1, "no name"},
        {{{"a", (sg_dtype)42, 1, {2}, v}}, 1, "invalid dtype"},
        {{{"a", SG_DT_F32, 9, {2}, v}}, 1, "invalid dtype or ndim"},
        {{{"a", SG_DT_F32, 1, {-2}, v}}, 1, "invalid shape"},
        {{{"a", SG_DT_F32, 2, {INT64_MAX, 4}, v}}, 1, "invalid shape"},
        {{{"a", SG_DT_F32, 1, {2}, NULL}}, 1, "no data"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK_MSG(sg_st_write(path, cases[i].t, cases[i].n, NULL, &err) == SG_EINVAL, "case %zu",
                  i);
        CHECK_MSG(strstr(err.msg, cases[i].frag) != NULL, "case %zu: %s", i, err.msg);
        CHECK_MSG(access(path, F_OK) != 0, "case %zu left a file", i);
    }
    const sg_st_out one = {"a", SG_DT_F32, 1, {2}, v};
    CHECK(sg_st_write(path, &one, 1, (const char *const[]){"k", NULL, NULL}, &err) == SG_EINVAL);
    CHECK(sg_st_write(path, &one, 1, (const char *const[]){"k", "\xC0\x80", NULL}, &err) ==
          SG_EINVAL);
    CHECK(strstr(err.msg, "UTF-8") != NULL);
    CHECK(sg_st_write("/nonexistent-dir/x.safetensors", &one, 1, NULL, &err) == SG_EIO);
    CHECK_MSG(strstr(err.msg, "/nonexistent-dir/x.safetensors") != NULL, "%s", err.msg);

    /* zero tensors, no metadata: "{}" padded to 8, like the reference writer's empty file */
    CHECK(sg_st_write(path, NULL, 0, NULL, &err) == SG_OK);
    size_t len = 0;
    unsigned char *buf = check_read_file(path, &len);
    CHECK(buf && len == 16 && buf[0] == 8 && memcmp(buf + 8, "{}      ", 8) == 0);
    free(buf);
    sg_st_file *f = sg_st_open(path, &err);
    CHECK(f && sg_st_count(f) == 0 && sg_st_at(f, 0) == NULL && sg_st_find(f, "a") == NULL);
    sg_st_close(f);

    /* overwriting an existing file replaces it whole */
    CHECK(sg_st_write(path, &one, 1, NULL, &err) == SG_OK);
    f = sg_st_open(path, &err);
    CHECK(f && sg_st_count(f) == 1);
    sg_st_close(f);
    unlink(path);

    /* open errors */
    CHECK(sg_st_open("/nonexistent-dir/x.safetensors", &err) == NULL);
    CHECK(err.code == SG_EIO && strstr(err.msg, "/nonexistent-dir/x.safetensors: cannot open"));
    CHECK(sg_st_open("/tmp", &err) == NULL);
    CHECK(err.code == SG_EIO && strstr(err.msg, "not a regular file"));
    FILE *fp = fopen(path, "wb");
    if (fp) {
        fwrite("\x02\0\0", 1, 3, fp);
        fclose(fp);
    }
    CHECK(sg_st_open(path, &err) == NULL);
    CHECK_MSG(err.code == SG_EINVAL && strstr(err.msg, "shorter than the 8-byte"), "%s", err.msg);
    CHECK(strstr(err.msg, path) != NULL);
    fp = fopen(path, "wb");
    if (fp)
        fclose(fp);
    CHECK(sg_st_open(path, &err) == NULL && strstr(err.msg, "file is 0 bytes"));
    unlink(path);

    /* a very long path is quoted by its end */
    char lp[600];
    memset(lp, 'd', sizeof lp);
    memcpy(lp, "/tmp/", 5);
    strcpy(lp + sizeof lp - 20, "/end.safetensors");
    CHECK(sg_st_open(lp, &err) == NULL);
    CHECK_MSG(strncmp(err.msg, "...", 3) == 0 && strstr(err.msg, "/end.safetensors: cannot"),
              "%s", err.msg);
}

/* ---- malformed files --------------------------------------------------------------------- */

#define T1(dtype, shape, offs) "{\"t\":{\"dtype\":" dtype ",\"shape\":" shape ",\"data_offsets\":" offs "}}"

static void test_malformed(void)
{
    /* prefix */
    check_rejects_raw(__LINE__, (const unsigned char *)"", 0, SG_EINVAL,
                      (const char *[]){"file is 0 bytes, shorter than the 8-byte", NULL});
    check_rejects_raw(__LINE__, (const unsigned char *)"\x02\0\0\0\0\0\0", 7, SG_EINVAL,
                      (const char *[]){"file is 7 bytes", NULL});
    {
        unsigned char b[16] = {9, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
        check_rejects_raw(__LINE__, b, 10, SG_EINVAL,
                          (const char *[]){"header length 9 is larger than the file (2 bytes",
                                          NULL});
        b[0] = 0x01;
        b[1] = 0xE1;
        b[2] = 0xF5;
        b[3] = 0x05; /* 100000001 */
        check_rejects_raw(__LINE__, b, 16, SG_ETOOBIG,
                          (const char *[]){"header length 100000001 exceeds the limit", NULL});
        memset(b, 0xFF, 8);
        check_rejects_raw(__LINE__, b, 16, SG_ETOOBIG,
                          (const char *[]){"18446744073709551615 exceeds", NULL});
        memset(b, 0, 8);
        check_rejects_raw(__LINE__, b, 16, SG_EINVAL,
                          (const char *[]){"does not start with '{'", NULL});
    }
    /* JSON */
    REJECTS("[1, 2]", 0, SG_EINVAL, "does not start with '{'");
    REJECTS(" {}", 0, SG_EINVAL, "does not start with '{'");
    REJECTS("{\"a\": }", 0, SG_EINVAL, "header is not valid JSON");
    REJECTS("{} x", 0, SG_EINVAL, "header is not valid JSON");
    {
        const unsigned char nul_pad[12] = {4, 0, 0, 0, 0, 0, 0, 0, '{', '}', 0, 0};
        check_rejects_raw(__LINE__, nul_pad, 12, SG_EINVAL, /* NUL is not padding */
                          (const char *[]){"not valid JSON", NULL});
    }
    REJECTS("{\"\xFF\":1}", 0, SG_EINVAL, "not valid JSON");
    REJECTS("{\"a\\u0000b\":{}}", 0, SG_EINVAL, "not valid JSON");
    REJECTS("{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
            "\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
            8, SG_EINVAL, "duplicate key");
    /* entries */
    REJECTS("{\"t\":5}", 0, SG_EINVAL, "entry for tensor 't' is not an object");
    REJECTS("{\"t\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, SG_EINVAL,
            "tensor 't' has no \"dtype\"");
    REJECTS("{\"t\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, SG_EINVAL,
            "tensor 't' has no \"shape\"");
    REJECTS("{\"t\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, SG_EINVAL,
            "tensor 't' has no \"data_offsets\"");
    REJECTS(T1("32", "[1]", "[0,4]"), 4, SG_EINVAL, "\"dtype\" is not a string");
    REJECTS(T1("\"F33\"", "[1]", "[0,4]"), 4, SG_EINVAL, "tensor 't' has unknown dtype \"F33\"");
    REJECTS(T1("\"f32\"", "[1]", "[0,4]"), 4, SG_EINVAL, "unknown dtype");
    REJECTS(T1("\"F8_E4M3\"", "[1]", "[0,1]"), 1, SG_EUNSUPPORTED,
            "tensor 't' has dtype F8_E4M3, which is not supported");
    REJECTS(T1("\"F8_E5M2\"", "[1]", "[0,1]"), 1, SG_EUNSUPPORTED, "F8_E5M2");
    REJECTS(T1("\"U16\"", "[1]", "[0,2]"), 2, SG_EUNSUPPORTED, "U16");
    REJECTS(T1("\"F32\"", "4", "[0,16]"), 16, SG_EINVAL, "\"shape\" is not an array");
    REJECTS(T1("\"F32\"", "[2,-2]", "[0,16]"), 16, SG_EINVAL,
            "shape[1] is not a non-negative integer");
    REJECTS(T1("\"F32\"", "[2.0]", "[0,8]"), 8, SG_EINVAL, "shape[0] is not a non-negative");
    REJECTS(T1("\"F32\"", "[\"2\"]", "[0,8]"), 8, SG_EINVAL, "shape[0] is not");
    REJECTS(T1("\"F32\"", "[null]", "[0,8]"), 8, SG_EINVAL, "shape[0] is not");
    REJECTS(T1("\"U8\"", "[1,1,1,1,1,1,1,1,1]", "[0,1]"), 1, SG_EUNSUPPORTED,
            "tensor 't' has 9 dimensions; at most 8");
    REJECTS(T1("\"U8\"", "[4294967296,4294967296,0]", "[0,0]"), 0, SG_EINVAL,
            "element count overflows");
    REJECTS(T1("\"F32\"", "[4611686018427387904]", "[0,0]"), 0, SG_EINVAL,
            "byte count overflows");
    REJECTS(T1("\"U8\"", "[99999999999999999999]", "[0,0]"), 0, SG_EINVAL, "not valid JSON");
    /* data_offsets */
    REJECTS(T1("\"F32\"", "[1]", "4"), 4, SG_EINVAL,
            "\"data_offsets\" is not two non-negative integers");
    REJECTS(T1("\"F32\"", "[1]", "[4]"), 4, SG_EINVAL, "not two non-negative integers");
    REJECTS(T1("\"F32\"", "[1]", "[0,4,8]"), 8, SG_EINVAL, "not two non-negative integers");
    REJECTS(T1("\"F32\"", "[1]", "[0,\"4\"]"), 4, SG_EINVAL, "not two non-negative integers");
    REJECTS(T1("\"F32\"", "[1]", "[-4,0]"), 4, SG_EINVAL, "not two non-negative integers");
    REJECTS(T1("\"F32\"", "[1]", "[0,4.0]"), 4, SG_EINVAL, "not two non-negative integers");
    REJECTS(T1("\"F32\"", "[1]", "[8,4]"), 8, SG_EINVAL, "data_offsets [8, 4]: begin is after end");
    REJECTS(T1("\"F32\"", "[4]", "[0,16]"), 8, SG_EINVAL,
            "truncated: tensor 't' needs bytes [0,16) but the file's data section has 8 bytes");
    REJECTS(T1("\"F32\"", "[2,3]", "[0,20]"), 20, SG_EINVAL,
            "tensor 't': data_offsets span 20 bytes but F32 [2, 3] needs 24");
    REJECTS(T1("\"BF16\"", "[0]", "[0,2]"), 2, SG_EINVAL, "span 2 bytes but BF16 [0] needs 0");
    /* tiling */
    REJECTS("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
            "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
            12, SG_EINVAL, "tensors 'a' and 'b' overlap at data offset 4",
            "tile the data section contiguously");
    REJECTS("{\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
            "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
            8, SG_EINVAL, "tensors 'b' and 'a' overlap at data offset 0");
    REJECTS("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
            "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
            12, SG_EINVAL, "gap of 4 unused bytes before tensor 'b'", "contiguously");
    REJECTS(T1("\"F32\"", "[1]", "[4,8]"), 8, SG_EINVAL, "gap of 4 unused bytes before tensor 't'");
    REJECTS(T1("\"F32\"", "[1]", "[0,4]"), 6, SG_EINVAL,
            "2 trailing bytes after the last tensor (the data section has 6 bytes");
    REJECTS("{}", 1, SG_EINVAL, "1 trailing bytes");
    /* metadata */
    REJECTS("{\"__metadata__\":{\"a\":\"x\",\"n\":1}}", 0, SG_EINVAL,
            "__metadata__ value for key 'n' is not a string");
    REJECTS("{\"__metadata__\":[\"a\"]}", 0, SG_EINVAL, "__metadata__ is not an object");
    REJECTS("{\"__metadata__\":\"a\"}", 0, SG_EINVAL, "__metadata__ is not an object");
    /* a control character in a name is quoted as '?' */
    REJECTS("{\"a\\nb\":5}", 0, SG_EINVAL, "tensor 'a?b' is not an object");
}

/* Files the reference accepts that the checks above must not refuse. */
static void test_accepted_variants(void)
{
    unsigned char *keep;
    sg_st_file *f;
    /* space padding, newlines inside the JSON, unknown keys in an entry, null metadata */
    f = open_ok("{\"__metadata__\":null,\n \"t\":{\"dtype\":\"I16\",\"shape\":[2],"
                "\"data_offsets\":[0,4],\"extra\":[1,{}]}}     ",
                4, &keep);
    CHECK(f && sg_st_count(f) == 1 && sg_st_metadata(f, "format") == NULL);
    if (f) {
        float o[2];
        sg_error err = {0};
        CHECK(sg_st_read_f32(f, "t", 1, NULL, o, &err) == SG_OK);
        CHECK(o[0] == (float)(int16_t)0xABAB && o[1] == o[0]);
    }
    sg_st_close(f);
    free(keep);
    /* zero-size tensors anywhere in the tiling, an empty name, a UTF-8 name */
    f = open_ok("{\"z1\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
                "\"\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                "\"z2\":{\"dtype\":\"F64\",\"shape\":[3,0],\"data_offsets\":[1,1]},"
                "\"\xC3\xA9t\xC3\xA9\":{\"dtype\":\"BOOL\",\"shape\":[],\"data_offsets\":[1,2]},"
                "\"z3\":{\"dtype\":\"I64\",\"shape\":[0],\"data_offsets\":[2,2]}}",
                2, &keep);
    CHECK(f && sg_st_count(f) == 5);
    if (f) {
        static const char *order[] = {"z1", "", "z2", "\xC3\xA9t\xC3\xA9", "z3"};
        for (int i = 0; i < 5; i++)
            CHECK(strcmp(sg_st_at(f, (size_t)i)->name, order[i]) == 0);
        CHECK(sg_st_find(f, "") == sg_st_at(f, 1));
        float o = 0;
        sg_error err = {0};
        CHECK(sg_st_read_f32(f, "\xC3\xA9t\xC3\xA9", 0, NULL, &o, &err) == SG_OK && o == 1.0f);
    }
    sg_st_close(f);
    free(keep);
}

int main(void)
{
    test_roundtrip_all_dtypes();
    test_f16_edges();
    test_bf16_and_others();
    test_shapes_and_lookups();
    test_torch_fixture();
    test_writer_errors();
    test_malformed();
    test_accepted_variants();
    return check_report("test_safetensors");
}
