/* Tests for models/gpt2_tokenizer: every case of tests/fixtures/gpt2_tokenizer/cases.json (written
 * by py/gpt2_tokenizer_reference.py) with ../shared/tokenizers/gpt2.tiktoken, decode round
 * trips (random bytes too), the small Hugging Face fixture against the same ranks loaded from a
 * .tiktoken file, Whisper's multilingual.tiktoken, load errors for both formats, bad arguments,
 * and 8 threads encoding at once. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "check.h"
#include "models/gpt2_tokenizer.h"

#define FIXTURES "tests/fixtures/gpt2_tokenizer"
#define SHARED "../shared/tokenizers"

typedef struct tok_case {
    const char *name;
    char *text; /* malloc'ed bytes of the case */
    size_t len;
    int32_t *want, *want_small;
    size_t n_want, n_small;
} tok_case;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static char *from_hex(const char *hex, size_t *len)
{
    size_t n = strlen(hex) / 2;
    char *out = malloc(n + 1);
    for (size_t i = 0; out && i < n; i++) {
        unsigned v = 0;
        sscanf(hex + 2 * i, "%2x", &v);
        out[i] = (char)v;
    }
    if (out)
        out[n] = '\0';
    *len = n;
    return out;
}

static int32_t *read_ids(const json_t *arr, size_t *n)
{
    size_t i;
    json_t *v;
    *n = json_array_size(arr);
    int32_t *ids = malloc((*n ? *n : 1) * sizeof *ids);
    if (ids)
        json_array_foreach(arr, i, v) ids[i] = (int32_t)json_integer_value(v);
    return ids;
}

static int same_ids(const int32_t *a, size_t na, const int32_t *b, size_t nb)
{
    return na == nb && (na == 0 || memcmp(a, b, na * sizeof *a) == 0);
}

static void print_ids(const char *label, const int32_t *ids, size_t n)
{
    fprintf(stderr, "  %s:", label);
    for (size_t i = 0; i < n && i < 40; i++)
        fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, n > 40 ? " ...\n" : "\n");
}

/* Reads cases.json; returns the number of cases (0 on failure). Names point into *doc. */
static size_t load_cases(json_t **doc, tok_case **cases)
{
    json_error_t jerr;
    *doc = json_load_file(FIXTURES "/cases.json", JSON_ALLOW_NUL, &jerr);
    if (!*doc) {
        fprintf(stderr, "cases.json: %s\n", jerr.text);
        return 0;
    }
    json_t *arr = json_object_get(*doc, "cases"), *small = json_object_get(*doc, "small");
    size_t n = json_array_size(arr);
    CHECK_EQ_INT(json_array_size(small), n);
    *cases = calloc(n ? n : 1, sizeof **cases);
    for (size_t i = 0; i < n && *cases; i++) {
        json_t *c = json_array_get(arr, i), *text = json_object_get(c, "text");
        tok_case *tc = &(*cases)[i];
        tc->name = json_string_value(json_object_get(c, "name"));
        if (text) {
            tc->len = json_string_length(text);
            tc->text = malloc(tc->len + 1);
            if (tc->text)
                memcpy(tc->text, json_string_value(text), tc->len + 1);
        } else {
            tc->text = from_hex(json_string_value(json_object_get(c, "hex")), &tc->len);
        }
        tc->want = read_ids(json_object_get(c, "ids"), &tc->n_want);
        tc->want_small = read_ids(json_object_get(json_array_get(small, i), "ids"), &tc->n_small);
        CHECK_MSG(tc->name && tc->text && tc->want && tc->want_small, "case %zu malformed", i);
    }
    return *cases ? n : 0;
}

static void free_cases(tok_case *cases, size_t n)
{
    for (size_t i = 0; cases && i < n; i++) {
        free(cases[i].text);
        free(cases[i].want);
        free(cases[i].want_small);
    }
    free(cases);
}

/* Encodes every case with t and compares with the full (small = 0) or small-vocabulary ids; also
 * decodes back to the case's bytes. Returns the number of mismatching cases. */
static int check_cases(const sg_bpe *t, const tok_case *cases, size_t n, int small,
                       const char *label)
{
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        const tok_case *c = &cases[i];
        const int32_t *want = small ? c->want_small : c->want;
        size_t n_want = small ? c->n_small : c->n_want;
        int32_t *ids = NULL;
        size_t n_ids = 0;
        sg_error err = {0};
        sg_status st = sg_bpe_encode(t, c->text, c->len, &ids, &n_ids, &err);
        int ok = st == SG_OK && same_ids(ids, n_ids, want, n_want);
        CHECK_MSG(ok, "%s: case \"%s\": %s", label, c->name, st ? err.msg : "wrong ids");
        if (!ok && st == SG_OK) {
            print_ids("got ", ids, n_ids);
            print_ids("want", want, n_want);
        }
        char *text = NULL;
        size_t len = 0;
        st = sg_bpe_decode(t, ids, n_ids, &text, &len, &err);
        CHECK_MSG(st == SG_OK && len == c->len && memcmp(text, c->text, len) == 0 &&
                      text[len] == '\0',
                  "%s: case \"%s\" does not decode back", label, c->name);
        bad += !ok;
        free(ids);
        free(text);
    }
    return bad;
}

static int encodes_to(const sg_bpe *t, const char *text, size_t len, const int32_t *want,
                      size_t n_want)
{
    int32_t *ids = NULL;
    size_t n = 0;
    int ok = sg_bpe_encode(t, text, len, &ids, &n, NULL) == SG_OK && same_ids(ids, n, want, n_want);
    free(ids);
    return ok;
}

static void test_decodes(const sg_bpe *t, const json_t *doc)
{
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(doc, "decodes"), i, d) {
        size_t n = 0, n_want = 0, len = 0;
        int32_t *ids = read_ids(json_object_get(d, "ids"), &n);
        char *want = from_hex(json_string_value(json_object_get(d, "hex")), &n_want);
        char *got = NULL;
        sg_error err = {0};
        CHECK_MSG(sg_bpe_decode(t, ids, n, &got, &len, &err) == SG_OK && len == n_want &&
                      memcmp(got, want, len) == 0 && got[len] == '\0',
                  "decode %zu: %s", i, err.msg);
        free(ids);
        free(want);
        free(got);
    }

    int32_t eot = sg_bpe_eot(t);
    size_t len = 0;
    const char *bytes = sg_bpe_token_bytes(t, eot, &len);
    CHECK(bytes && len == 13 && strcmp(bytes, "<|endoftext|>") == 0);
    bytes = sg_bpe_token_bytes(t, 0, &len);
    CHECK(bytes && len == 1 && bytes[0] == '!');
    bytes = sg_bpe_token_bytes(t, 220, &len); /* "Ġ": the byte 0x20 */
    CHECK(bytes && len == 1 && bytes[0] == ' ');
    bytes = sg_bpe_token_bytes(t, 262, &len); /* " the" */
    CHECK(bytes && len == 4 && memcmp(bytes, " the", 4) == 0);
    CHECK(sg_bpe_token_bytes(t, -1, &len) == NULL && len == 0);
    CHECK(sg_bpe_token_bytes(t, sg_bpe_vocab_size(t), &len) == NULL);
    CHECK(sg_bpe_token_bytes(NULL, 0, NULL) == NULL);

    /* The text "<|endoftext|>" is not the special token. */
    int32_t *ids = NULL;
    size_t n = 0;
    CHECK(sg_bpe_encode(t, "<|endoftext|>", 13, &ids, &n, NULL) == SG_OK && n > 1);
    for (size_t k = 0; k < n; k++)
        CHECK(ids[k] != eot);
    free(ids);

    /* Unknown ids are refused, and say where. */
    const int32_t bad[][3] = {{262, -1, 262}, {262, 50257, 262}, {262, INT32_MAX, 262}};
    for (size_t k = 0; k < 3; k++) {
        char *out = (char *)1;
        sg_error err = {0};
        CHECK_EQ_INT(sg_bpe_decode(t, bad[k], 3, &out, &len, &err), SG_EINVAL);
        CHECK(out == NULL && len == 0 && strstr(err.msg, "at 1") != NULL);
    }
    char *out = NULL;
    CHECK_EQ_INT(sg_bpe_decode(t, NULL, 0, &out, &len, NULL), SG_OK);
    CHECK(out && len == 0 && out[0] == '\0');
    free(out);
    CHECK_EQ_INT(sg_bpe_decode(t, NULL, 1, &out, &len, NULL), SG_EINVAL);
    CHECK_EQ_INT(sg_bpe_decode(NULL, bad[0], 1, &out, &len, NULL), SG_EINVAL);
    CHECK_EQ_INT(sg_bpe_decode(t, bad[0], 1, NULL, &len, NULL), SG_EINVAL);
}

static void test_bad_arguments(const sg_bpe *t)
{
    int32_t *ids = (int32_t *)1;
    size_t n = 7;
    sg_error err = {0};
    CHECK_EQ_INT(sg_bpe_encode(t, "", 0, &ids, &n, &err), SG_OK);
    CHECK(ids == NULL && n == 0);
    CHECK_EQ_INT(sg_bpe_encode(t, NULL, 0, &ids, &n, &err), SG_OK);
    CHECK_EQ_INT(sg_bpe_encode(t, NULL, 1, &ids, &n, &err), SG_EINVAL);
    CHECK(ids == NULL && n == 0 && err.msg[0]);
    CHECK_EQ_INT(sg_bpe_encode(NULL, "a", 1, &ids, &n, NULL), SG_EINVAL);
    CHECK_EQ_INT(sg_bpe_encode(t, "a", 1, NULL, &n, NULL), SG_EINVAL);
    CHECK_EQ_INT(sg_bpe_encode(t, "a", 1, &ids, NULL, NULL), SG_EINVAL);
    CHECK_EQ_INT(sg_bpe_encode(t, "a", (size_t)INT32_MAX + 1, &ids, &n, &err), SG_ETOOBIG);
    CHECK_EQ_INT(sg_bpe_vocab_size(NULL), 0);
    CHECK_EQ_INT(sg_bpe_eot(NULL), -1);
    sg_bpe_free(NULL);
}

/* xorshift: the same bytes on every run */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Any bytes come back from decode(encode(b)) unchanged, valid UTF-8 or not. */
static void test_round_trips(const sg_bpe *t)
{
    static const char *const atoms[] = {
        "a", "Z", "7", " ", "  ", "\n", "\r\n", "\t", "'", "'s", "'ll", ".", "!?", "\xc3\xa9",
        "e\xcc\x81", "\xe4\xb8\x96", "\xf0\x9f\x98\x80", "\xe2\x80\x8d", "\xc2\xa0",
        "\xe3\x80\x80", "\xff", "\x80", "\xc3", "\xe2\x82", "\xed\xa0\x80", "\xc0\xaf",
        "\xf4\x90\x80\x80", "\xf0\x9f\x98", " the", "ing", "\x00", "<|endoftext|>"};
    uint64_t s = 0x9E3779B97F4A7C15u;
    int failures = 0;
    char buf[512];
    for (int round = 0; round < 3000; round++) {
        size_t len = 0, pieces = rng_next(&s) % 40;
        for (size_t k = 0; k < pieces; k++) {
            const char *a = atoms[rng_next(&s) % (sizeof atoms / sizeof *atoms)];
            size_t n = a[0] ? strlen(a) : 1; /* the "\x00" atom is one NUL byte */
            if (rng_next(&s) % 8 == 0) { /* or a random byte */
                buf[len++] = (char)(rng_next(&s) & 0xFF);
                continue;
            }
            memcpy(buf + len, a, n);
            len += n;
        }
        int32_t *ids = NULL;
        size_t n = 0;
        char *back = NULL;
        size_t back_len = 0;
        if (sg_bpe_encode(t, buf, len, &ids, &n, NULL) != SG_OK ||
            sg_bpe_decode(t, ids, n, &back, &back_len, NULL) != SG_OK || back_len != len ||
            memcmp(back, buf, len) != 0)
            failures++;
        for (size_t k = 0; k < n; k++)
            if (ids[k] < 0 || ids[k] >= sg_bpe_eot(t))
                failures++;
        free(ids);
        free(back);
    }
    CHECK_EQ_INT(failures, 0);
}

/* 1 MB of mixed text and one 1 MB word: correct round trips and a time to show (not gated). */
static void test_large(const sg_bpe *t, const tok_case *cases, size_t n_cases)
{
    size_t cap = (size_t)1 << 20, len = 0;
    char *text = malloc(cap);
    if (!text)
        return;
    for (size_t i = 0; len < cap; i = (i + 1) % n_cases) {
        size_t n = cases[i].len < cap - len ? cases[i].len : cap - len;
        memcpy(text + len, cases[i].text, n);
        len += n;
    }
    uint64_t s = 12345;
    for (int kind = 0; kind < 2; kind++) {
        if (kind == 1) /* a single 1 MB piece of random lower-case letters */
            for (size_t i = 0; i < len; i++)
                text[i] = (char)('a' + rng_next(&s) % 26);
        int32_t *ids = NULL;
        size_t n = 0, back_len = 0;
        char *back = NULL;
        double t0 = now_ms();
        sg_status st = sg_bpe_encode(t, text, len, &ids, &n, NULL);
        double t1 = now_ms();
        CHECK(st == SG_OK && sg_bpe_decode(t, ids, n, &back, &back_len, NULL) == SG_OK &&
              back_len == len && memcmp(back, text, len) == 0);
        fprintf(stderr, "encode 1 MB %s: %zu tokens in %.1f ms\n",
                kind ? "single word" : "mixed text", n, t1 - t0);
        free(ids);
        free(back);
    }
    free(text);
}

typedef struct thread_arg {
    const sg_bpe *t;
    const tok_case *cases;
    size_t n;
    int mismatches;
} thread_arg;

static void *encode_all(void *p)
{
    thread_arg *a = p;
    for (int round = 0; round < 10; round++)
        for (size_t i = 0; i < a->n; i++)
            a->mismatches += !encodes_to(a->t, a->cases[i].text, a->cases[i].len,
                                         a->cases[i].want, a->cases[i].n_want);
    return NULL;
}

static void test_threads(const sg_bpe *t, const tok_case *cases, size_t n)
{
    enum { NT = 8 };
    pthread_t th[NT];
    thread_arg args[NT];
    for (int i = 0; i < NT; i++) {
        args[i] = (thread_arg){t, cases, n, 0};
        CHECK(pthread_create(&th[i], NULL, encode_all, &args[i]) == 0);
    }
    for (int i = 0; i < NT; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ_INT(args[i].mismatches, 0);
    }
}

/* A scratch directory for the files the load tests write. */
static char scratch[] = "/tmp/test_gpt2_tokenizer.XXXXXX";

static const char *scratch_path(const char *name)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", scratch, name);
    return path;
}

static const char *scratch_file(const char *name, const char *content, size_t len)
{
    const char *path = scratch_path(name);
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(content, 1, len, f);
        fclose(f);
    }
    return path;
}

/* The first `lines` lines of gpt2.tiktoken (ranks 0..lines-1) as a scratch file. */
static const char *head_of_gpt2(const char *name, int lines)
{
    FILE *in = fopen(SHARED "/gpt2.tiktoken", "rb"), *out = fopen(scratch_path(name), "wb");
    char line[1024];
    for (int i = 0; in && out && i < lines && fgets(line, sizeof line, in); i++)
        fputs(line, out);
    if (in)
        fclose(in);
    if (out)
        fclose(out);
    return scratch_path(name);
}

/* The small Hugging Face fixture (ranks < 5000) and the same ranks from a .tiktoken file must
 * give the reference's ids. */
static void test_small_vocab(const tok_case *cases, size_t n, const json_t *doc)
{
    int32_t small_eot = (int32_t)json_integer_value(json_object_get(doc, "small_eot"));
    sg_error err = {0};
    sg_bpe *hf = sg_bpe_load_hf(FIXTURES "/small/vocab.json", FIXTURES "/small/merges.txt", &err);
    CHECK_MSG(hf != NULL, "small HF: %s", err.msg);
    sg_bpe *dir = sg_bpe_load_dir(FIXTURES "/small", &err);
    CHECK_MSG(dir != NULL, "small dir: %s", err.msg);
    sg_bpe *tk = sg_bpe_load_tiktoken(head_of_gpt2("small.tiktoken", small_eot), &err);
    CHECK_MSG(tk != NULL, "small tiktoken: %s", err.msg);
    sg_bpe *all[] = {hf, dir, tk};
    const char *label[] = {"small HF", "small dir", "small tiktoken"};
    for (int k = 0; k < 3; k++) {
        if (!all[k])
            continue;
        CHECK_EQ_INT(sg_bpe_eot(all[k]), small_eot);
        CHECK_EQ_INT(sg_bpe_vocab_size(all[k]), small_eot + 1);
        CHECK_EQ_INT(check_cases(all[k], cases, n, 1, label[k]), 0);
        size_t len = 0;
        const char *b = sg_bpe_token_bytes(all[k], 220, &len);
        CHECK(b && len == 1 && b[0] == ' ');
        b = sg_bpe_token_bytes(all[k], small_eot, &len);
        CHECK(b && len == 13 && memcmp(b, "<|endoftext|>", 13) == 0);
        sg_bpe_free(all[k]);
    }
}

static void test_multilingual(const json_t *doc)
{
    sg_error err = {0};
    double t0 = now_ms();
    sg_bpe *t = sg_bpe_load_tiktoken(SHARED "/multilingual.tiktoken", &err);
    double t1 = now_ms();
    CHECK_MSG(t != NULL, "multilingual: %s", err.msg);
    if (!t)
        return;
    fprintf(stderr, "load multilingual.tiktoken: %.1f ms\n", t1 - t0);
    CHECK_EQ_INT(sg_bpe_eot(t), json_integer_value(json_object_get(doc, "multilingual_eot")));
    CHECK_EQ_INT(sg_bpe_vocab_size(t), sg_bpe_eot(t) + 1);
    size_t i, len = 7;
    json_t *c;
    json_array_foreach(json_object_get(doc, "multilingual"), i, c) {
        const char *text = json_string_value(json_object_get(c, "text"));
        size_t n_want = 0;
        int32_t *want = read_ids(json_object_get(c, "ids"), &n_want);
        CHECK_MSG(encodes_to(t, text, strlen(text), want, n_want), "multilingual \"%s\"", text);
        free(want);
    }
    /* its rank 50256 is the empty token ("=" in the file) */
    CHECK(sg_bpe_token_bytes(t, 50256, &len) != NULL && len == 0);
    sg_bpe_free(t);
}

static void check_load_fails(sg_bpe *t, const sg_error *err, sg_status want, const char *needle,
                             const char *what)
{
    CHECK_MSG(t == NULL, "loading %s should fail", what);
    sg_bpe_free(t);
    CHECK_MSG(err->code == want, "%s: got %s (%s)", what, sg_status_name(err->code), err->msg);
    CHECK_MSG(strstr(err->msg, needle) != NULL, "%s: message \"%s\" lacks \"%s\"", what,
              err->msg, needle);
}

/* A ranks file: the 256 single bytes in order, then `extra`. */
static const char *bytes_tiktoken(const char *extra)
{
    static char buf[8192];
    size_t n = 0;
    static const char b64[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int b = 0; b < 256; b++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%c%c== %d\n", b64[b >> 2],
                              b64[(b & 3) << 4], b);
    n += (size_t)snprintf(buf + n, sizeof buf - n, "%s", extra);
    return scratch_file("bytes.tiktoken", buf, n);
}

static void test_tiktoken_errors(void)
{
    static const struct {
        const char *extra, *needle;
        sg_status code;
    } bad[] = {
        {"aGk= 256\naGk= 257\n", "line 258: the token of line 257 again", SG_EINVAL},
        {"aGk= 256\r\naGk= 257\r", "line 258: the token of line 257 again", SG_EINVAL},
        {"aGk= 256\nb2s= 256\n", "line 258: rank 256 already on line 257", SG_EINVAL},
        {"aGk= 258\nb2s= 256\n", "line 257: rank 258 out of range", SG_EINVAL},
        {"aGk= -1\n", "line 257: bad rank", SG_EINVAL},
        {"aGk= 1.5\n", "line 257: bad rank", SG_EINVAL},
        {"aGk= 99999999999\n", "line 257: bad rank", SG_EINVAL},
        {"aGk= x\n", "line 257: bad rank", SG_EINVAL},
        {"aGk=\n", "line 257: expected", SG_EINVAL},
        {"aGk= 256 7\n", "line 257: expected", SG_EINVAL},
        {"aG!= 256\n", "line 257: bad base64", SG_EINVAL},
        {"aGk 256\n", "line 257: bad base64", SG_EINVAL},
        {"a=Gk 256\n", "line 257: bad base64", SG_EINVAL},
        {"data:x;base64,aGk= 256\n", "line 257: bad base64", SG_EINVAL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        sg_error err = {0};
        sg_bpe *t = sg_bpe_load_tiktoken(bytes_tiktoken(bad[i].extra), &err);
        check_load_fails(t, &err, bad[i].code, bad[i].needle, bad[i].extra);
    }
    sg_error err = {0};
    sg_bpe *t = sg_bpe_load_tiktoken(scratch_file("empty.tiktoken", "\n\n", 2), &err);
    check_load_fails(t, &err, SG_EINVAL, "no tokens", "empty file");
    t = sg_bpe_load_tiktoken(scratch_file("nobytes.tiktoken", "aGk= 0\nIQ== 1\n", 14), &err);
    check_load_fails(t, &err, SG_EINVAL, "no token for the byte 0x00", "no single bytes");
    t = sg_bpe_load_tiktoken(scratch_path("missing.tiktoken"), &err);
    check_load_fails(t, &err, SG_EIO, "missing.tiktoken", "missing file");
    t = sg_bpe_load_tiktoken(scratch, &err);
    check_load_fails(t, &err, SG_EIO, "regular file", "a directory");
    t = sg_bpe_load_tiktoken(NULL, &err);
    check_load_fails(t, &err, SG_EINVAL, "path", "NULL path");

    /* CRLF or CR line ends, blank lines and any line order are fine; then "hi" is a token, and
     * " hi" is " h" + "i" (the rank of " h" is lower than that of "hi"). */
    t = sg_bpe_load_tiktoken(bytes_tiktoken("aGk= 257\r\n\r\n\rIGg= 256\r"), &err);
    CHECK_MSG(t != NULL, "CRLF: %s", err.msg);
    if (t) {
        CHECK_EQ_INT(sg_bpe_eot(t), 258);
        const int32_t want[] = {257, '!', 256, 'i'};
        CHECK(encodes_to(t, "hi! hi", 6, want, 4));
        sg_bpe_free(t);
    }
}

static void test_hf_errors(void)
{
    const char *vocab = FIXTURES "/small/vocab.json", *merges = FIXTURES "/small/merges.txt";
    static const struct {
        const char *json, *needle;
    } bad_vocab[] = {
        {"{\"a\": 1, \"b\": }", "invalid JSON"},
        {"[1, 2, 3]", "expected an object"},
        {"{}", "expected an object"},
        {"{\"a\": 1.5}", "\"a\""},
        {"{\"a\": -1}", "\"a\""},
        {"{\"a\": \"0\"}", "\"a\""},
        {"{\"a\": 0, \"b\": 2}", "\"b\""},    /* ids must be 0..n-1 */
        {"{\"a\": 0, \"b\": 0}", "id 0 is given twice"},
        {"{\"!\": 0, \"<|endoftext|>\": 1}", "byte 0x00"},
        {"{\"\xff\": 0}", "invalid JSON"},
    };
    for (size_t i = 0; i < sizeof bad_vocab / sizeof *bad_vocab; i++) {
        sg_error err = {0};
        sg_bpe *t = sg_bpe_load_hf(
            scratch_file("bad.json", bad_vocab[i].json, strlen(bad_vocab[i].json)), merges, &err);
        check_load_fails(t, &err, SG_EINVAL, bad_vocab[i].needle, bad_vocab[i].json);
    }

    static const struct {
        const char *text, *needle;
    } bad_merges[] = {
        {"#version: 0.2\n\xc4\xa0 t\nh e r\n", "line 3: expected two symbols"},
        {"#version: 0.2\n\xc4\xa0 t\n\nh e\n", "line 3: expected two symbols"},
        {"#version: 0.2\nh\n", "line 2: expected two symbols"},
        {"#version: 0.2\nzzzzqqqq xxxxkkkk\n", "line 2: \"zzzzqqqq\""},
        {"#version: 0.2\nh zzzzqqqq\n", "line 2: \"zzzzqqqq\""},
        {"#version: 0.2\nx x\n", "line 2: \"xx\""}, /* the merged token is not in the vocab */
        {"h e\n", "#version"},
        {"", "#version"},
    };
    for (size_t i = 0; i < sizeof bad_merges / sizeof *bad_merges; i++) {
        sg_error err = {0};
        sg_bpe *t = sg_bpe_load_hf(
            vocab, scratch_file("bad.txt", bad_merges[i].text, strlen(bad_merges[i].text)), &err);
        check_load_fails(t, &err, SG_EINVAL, bad_merges[i].needle, bad_merges[i].text);
    }

    sg_error err = {0};
    sg_bpe *t = sg_bpe_load_hf(scratch_path("missing.json"), merges, &err);
    check_load_fails(t, &err, SG_EIO, "missing.json", "missing vocab.json");
    t = sg_bpe_load_hf(vocab, scratch_path("missing.txt"), &err);
    check_load_fails(t, &err, SG_EIO, "missing.txt", "missing merges.txt");
    t = sg_bpe_load_hf(NULL, merges, &err);
    check_load_fails(t, &err, SG_EINVAL, "path", "NULL path");

    /* Without <|endoftext|>: the small vocab with that entry renamed. */
    size_t n = 0;
    char *buf = check_read_file(vocab, &n);
    char *eot = buf ? strstr(buf, "<|endoftext|>") : NULL;
    CHECK(eot != NULL);
    if (eot) {
        eot[2] = 'E';
        t = sg_bpe_load_hf(scratch_file("noeot.json", buf, n), merges, &err);
        check_load_fails(t, &err, SG_EINVAL, "<|endoftext|>", "no <|endoftext|>");
        eot[2] = 'e';
    }

    /* A merges.txt with a BOM, CRLF, trailing blank lines and the single merge "h e": every
     * "he" merges and nothing else does (the space stays a token of its own). */
    static const char tiny[] = "\xEF\xBB\xBF#version: 0.2\r\nh e\r\n\n\n";
    t = sg_bpe_load_hf(vocab, scratch_file("tiny.txt", tiny, strlen(tiny)), &err);
    CHECK_MSG(t != NULL, "tiny merges: %s", err.msg);
    if (t) {
        const int32_t want[] = {258, 220, 258, 220, 258, 75, 75, 78};
        CHECK(encodes_to(t, "he he hello", 11, want, 8));
        sg_bpe_free(t);
    }

    /* Keys outside GPT-2's byte characters are tokens of their own UTF-8 (added tokens). */
    static const char added[] = "{\"<|endoftext|>\": 5000, \"my token\": 5001, "
                                "\"\\u00e9t\\u00e9\": 5002}";
    const char *path = scratch_path("added.json");
    FILE *out = fopen(path, "wb");
    /* replace the last member ("<|endoftext|>": 5000) by the three above */
    char *last = buf ? strstr(buf, "\"<|endoftext|>\"") : NULL;
    if (out && last) {
        fwrite(buf, 1, (size_t)(last - buf), out);
        fputs(added + 1, out);
    }
    if (out)
        fclose(out);
    free(buf);
    t = sg_bpe_load_hf(path, merges, &err);
    CHECK_MSG(t != NULL, "added tokens: %s", err.msg);
    if (t) {
        size_t len = 0;
        const char *b = sg_bpe_token_bytes(t, 5001, &len);
        CHECK(b && len == 8 && memcmp(b, "my token", 8) == 0);
        b = sg_bpe_token_bytes(t, 5002, &len); /* "été" spelled in byte characters */
        CHECK(b && len == 3 && memcmp(b, "\xE9t\xE9", 3) == 0);
        CHECK_EQ_INT(sg_bpe_vocab_size(t), 5003);
        sg_bpe_free(t);
    }
}

static void test_load_dir(void)
{
    sg_error err = {0};
    /* ../shared/tokenizers has no vocab.json: its first .tiktoken is gpt2.tiktoken */
    sg_bpe *t = sg_bpe_load_dir(SHARED, &err);
    CHECK_MSG(t != NULL, "load_dir: %s", err.msg);
    CHECK_EQ_INT(sg_bpe_eot(t), 50256);
    sg_bpe_free(t);
    t = sg_bpe_load_dir(scratch_path("nothing"), &err);
    check_load_fails(t, &err, SG_EIO, "nothing", "missing directory");
    char empty[600];
    snprintf(empty, sizeof empty, "%s", scratch_path("empty"));
    CHECK(mkdir(empty, 0700) == 0);
    t = sg_bpe_load_dir(empty, &err);
    check_load_fails(t, &err, SG_EIO, "no vocab.json", "empty directory");
    t = sg_bpe_load_dir(NULL, &err);
    check_load_fails(t, &err, SG_EINVAL, "directory", "NULL directory");
    rmdir(empty);
}

int main(void)
{
    if (!mkdtemp(scratch)) {
        perror("mkdtemp");
        return 1;
    }
    json_t *doc = NULL;
    tok_case *cases = NULL;
    size_t n = load_cases(&doc, &cases);
    CHECK_MSG(n >= 70, "only %zu cases", n);

    sg_error err = {0};
    double t0 = now_ms();
    sg_bpe *t = sg_bpe_load_tiktoken(SHARED "/gpt2.tiktoken", &err);
    double t1 = now_ms();
    CHECK_MSG(t != NULL, "load gpt2.tiktoken: %s", err.msg);
    if (t && n > 0) {
        fprintf(stderr, "load gpt2.tiktoken: %.1f ms\n", t1 - t0);
        CHECK_EQ_INT(sg_bpe_vocab_size(t), json_integer_value(json_object_get(doc, "vocab_size")));
        CHECK_EQ_INT(sg_bpe_eot(t), 50256);
        CHECK_EQ_INT(check_cases(t, cases, n, 0, "gpt2"), 0);
        test_decodes(t, doc);
        test_bad_arguments(t);
        test_round_trips(t);
        test_large(t, cases, n);
        test_threads(t, cases, n);
    }
    sg_bpe_free(t);
    if (n > 0) {
        test_small_vocab(cases, n, doc);
        test_multilingual(doc);
    }
    test_tiktoken_errors();
    test_hf_errors();
    test_load_dir();

    const char *files[] = {"bytes.tiktoken", "empty.tiktoken", "nobytes.tiktoken",
                           "small.tiktoken", "bad.json",       "bad.txt",
                           "noeot.json",     "tiny.txt",       "added.json"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++)
        unlink(scratch_path(files[i]));
    rmdir(scratch);
    free_cases(cases, n);
    json_decref(doc);
    return check_report("test_gpt2_tokenizer");
}
