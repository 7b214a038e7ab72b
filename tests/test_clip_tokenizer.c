/* Tests for models/clip_tokenizer: every case of tests/fixtures/clip_tokenizer/cases.json (written
 * by py/clip_tokenizer_reference.py) at CLIP's context and truncated to shorter ones, invalid
 * UTF-8 and bad arguments, load errors (missing files, malformed JSON, bad merges lines), and the
 * same cases tokenized from several threads at once. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "check.h"
#include "models/clip_tokenizer.h"

#define FIXTURES "tests/fixtures/clip_tokenizer"

typedef struct tok_case {
    const char *name;
    const char *text;
    int32_t want[SG_CLIP_CONTEXT]; /* what this tokenizer must give at context 77 */
    int n_want;
    int differs_from_openai; /* the case carries "ids_sg": a documented deviation */
} tok_case;

static int read_ids(const json_t *arr, int32_t *out)
{
    size_t i;
    json_t *v;
    if (!json_is_array(arr) || json_array_size(arr) > SG_CLIP_CONTEXT)
        return -1;
    json_array_foreach(arr, i, v) out[i] = (int32_t)json_integer_value(v);
    return (int)json_array_size(arr);
}

/* Loads the cases; returns how many (0 on failure). Strings point into *doc. */
static int load_cases(json_t **doc, tok_case **cases)
{
    json_error_t jerr;
    *doc = json_load_file(FIXTURES "/cases.json", 0, &jerr);
    if (!*doc) {
        fprintf(stderr, "cases.json: %s\n", jerr.text);
        return 0;
    }
    CHECK_EQ_INT(json_integer_value(json_object_get(*doc, "context")), SG_CLIP_CONTEXT);
    json_t *arr = json_object_get(*doc, "cases");
    size_t n = json_array_size(arr);
    *cases = calloc(n ? n : 1, sizeof **cases);
    for (size_t i = 0; i < n; i++) {
        json_t *c = json_array_get(arr, i);
        tok_case *tc = &(*cases)[i];
        int32_t openai[SG_CLIP_CONTEXT];
        tc->name = json_string_value(json_object_get(c, "name"));
        tc->text = json_string_value(json_object_get(c, "text"));
        int n_openai = read_ids(json_object_get(c, "ids"), openai);
        json_t *sg = json_object_get(c, "ids_sg");
        tc->differs_from_openai = sg != NULL;
        tc->n_want = sg ? read_ids(sg, tc->want) : read_ids(json_object_get(c, "ids"), tc->want);
        CHECK_MSG(tc->name && tc->text && n_openai >= 2 && tc->n_want >= 2, "case %zu malformed", i);
        if (sg) /* keep the deviation honest: it must really differ from openai */
            CHECK_MSG(n_openai != tc->n_want ||
                          memcmp(openai, tc->want, (size_t)n_openai * sizeof *openai) != 0,
                      "case \"%s\": ids_sg equals ids", tc->name);
    }
    return (int)n;
}

static int same_ids(const int32_t *a, int na, const int32_t *b, int nb)
{
    return na == nb && memcmp(a, b, (size_t)na * sizeof *a) == 0;
}

static void print_ids(const char *label, const int32_t *ids, int n)
{
    fprintf(stderr, "  %s:", label);
    for (int i = 0; i < n; i++)
        fprintf(stderr, " %d", ids[i]);
    fputc('\n', stderr);
}

/* Expected output at a context ctx <= 77: sot, the first ctx - 2 content ids, eot. */
static int want_at(const tok_case *c, int ctx, int32_t *out)
{
    int content = c->n_want - 2;
    if (content > ctx - 2)
        content = ctx - 2;
    memcpy(out, c->want, (size_t)(content + 1) * sizeof *out);
    out[content + 1] = c->want[c->n_want - 1];
    return content + 2;
}

static void test_cases(const sg_clip_tokenizer *t, const tok_case *cases, int n)
{
    static const int contexts[] = {2, 3, 4, 10, 76, SG_CLIP_CONTEXT};
    int gaps = 0;
    for (int i = 0; i < n; i++) {
        const tok_case *c = &cases[i];
        gaps += c->differs_from_openai;
        for (size_t k = 0; k < sizeof contexts / sizeof *contexts; k++) {
            int32_t got[SG_CLIP_CONTEXT], want[SG_CLIP_CONTEXT];
            int ctx = contexts[k];
            int nw = want_at(c, ctx, want);
            sg_error err = {0};
            int ng = sg_clip_tokenize(t, c->text, got, ctx, &err);
            CHECK_MSG(ng >= 0 && same_ids(got, ng, want, nw), "case \"%s\" at context %d: %s",
                      c->name, ctx, ng < 0 ? err.msg : "wrong ids");
            if (ng >= 0 && !same_ids(got, ng, want, nw) && ctx == SG_CLIP_CONTEXT) {
                print_ids("got ", got, ng);
                print_ids("want", want, nw);
            }
        }
        /* Untruncated cases come out the same with room to spare. */
        if (c->n_want < SG_CLIP_CONTEXT) {
            int32_t big[1000];
            int ng = sg_clip_tokenize(t, c->text, big, 1000, NULL);
            CHECK_MSG(same_ids(big, ng, c->want, c->n_want), "case \"%s\" at context 1000",
                      c->name);
        }
    }
    CHECK_MSG(n >= 60, "only %d cases", n);
    CHECK_MSG(gaps == 1, "%d cases differ from openai on purpose, expected 1", gaps);
}

static void check_refused(const sg_clip_tokenizer *t, const char *text, int ctx, sg_status want)
{
    int32_t ids[SG_CLIP_CONTEXT];
    sg_error err = {0};
    int n = sg_clip_tokenize(t, text, ids, ctx, &err);
    CHECK_EQ_INT(n, -1);
    CHECK_MSG(err.code == want && err.msg[0], "got %s: %s", sg_status_name(err.code), err.msg);
}

static void test_bad_input(const sg_clip_tokenizer *t)
{
    check_refused(t, "\xff", SG_CLIP_CONTEXT, SG_EINVAL);
    check_refused(t, "ok \xc3", SG_CLIP_CONTEXT, SG_EINVAL);         /* truncated sequence */
    check_refused(t, "\xc0\xaf", SG_CLIP_CONTEXT, SG_EINVAL);        /* overlong '/' */
    check_refused(t, "\xed\xa0\x80", SG_CLIP_CONTEXT, SG_EINVAL);    /* surrogate D800 */
    check_refused(t, "\xf4\x90\x80\x80", SG_CLIP_CONTEXT, SG_EINVAL); /* above U+10FFFF */
    check_refused(t, "caf\x80", SG_CLIP_CONTEXT, SG_EINVAL);         /* stray continuation */
    check_refused(t, "a", 1, SG_EINVAL);
    check_refused(t, "a", 0, SG_EINVAL);
    check_refused(t, NULL, SG_CLIP_CONTEXT, SG_EINVAL);
    check_refused(NULL, "a", SG_CLIP_CONTEXT, SG_EINVAL);

    /* The message says where the bad byte is. */
    int32_t ids[4];
    sg_error err = {0};
    CHECK_EQ_INT(sg_clip_tokenize(t, "abc\xfe", ids, 4, &err), -1);
    CHECK_MSG(strstr(err.msg, "byte 3") != NULL, "%s", err.msg);

    /* Too long is refused before any work; just below the limit still works. */
    size_t big = SG_CLIP_MAX_TEXT_BYTES + 1;
    char *text = malloc(big + 1);
    if (text) {
        memset(text, 'a', big);
        text[big] = '\0';
        check_refused(t, text, SG_CLIP_CONTEXT, SG_ETOOBIG);
        /* 1 MB of words: the whole text is cleaned, only the first 75 tokens kept. */
        size_t n = 1u << 20;
        for (size_t i = 0; i < n; i++)
            text[i] = "a cat "[i % 6];
        text[n] = '\0';
        int32_t out[SG_CLIP_CONTEXT];
        int got = sg_clip_tokenize(t, text, out, SG_CLIP_CONTEXT, NULL);
        CHECK_EQ_INT(got, SG_CLIP_CONTEXT);
        CHECK_EQ_INT(out[0], 49406);
        CHECK_EQ_INT(out[1], 320);  /* a</w> */
        CHECK_EQ_INT(out[2], 2368); /* cat</w> */
        CHECK_EQ_INT(out[SG_CLIP_CONTEXT - 1], 49407);
        free(text);
    }
}

static void check_load_fails(const char *vocab, const char *merges, sg_status want,
                             const char *needle)
{
    sg_error err = {0};
    sg_clip_tokenizer *t = sg_clip_tokenizer_load(vocab, merges, &err);
    CHECK_MSG(t == NULL, "loading %s + %s should fail", vocab, merges);
    sg_clip_tokenizer_free(t);
    CHECK_MSG(err.code == want, "%s + %s: got %s (%s)", vocab, merges, sg_status_name(err.code),
              err.msg);
    CHECK_MSG(strstr(err.msg, needle) != NULL, "message \"%s\" lacks \"%s\"", err.msg, needle);
}

/* A scratch directory for the files the load tests write. */
static char scratch[] = "/tmp/test_clip_tokenizer.XXXXXX";

static const char *scratch_file(const char *name, const char *content, size_t len)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", scratch, name);
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(content, 1, len, f);
        fclose(f);
    }
    return path;
}

static void test_load_errors(void)
{
    const char *vocab = FIXTURES "/vocab.json", *merges = FIXTURES "/merges.txt";
    static const struct {
        const char *json, *needle;
    } bad_vocab[] = {
        {"{\"a\": 1, \"b\": }", "\"b\""},
        {"[1, 2, 3]", "expected an object"},
        {"", "expected an object"},
        {"{}", "empty"},
        {"{\"a\": 1.5}", "\"a\""},
        {"{\"a\": 1e3}", "\"a\""},
        {"{\"a\": -1}", "\"a\""},
        {"{\"a\": 01}", "\"a\""},
        {"{\"a\": 2147483648}", "\"a\""},
        {"{\"a\": \"1\"}", "\"a\""},
        {"{\"a\": 1,}", "string key"},
        {"{\"a\": 1 \"b\": 2}", "',' or '}'"},
        {"{\"a\" 1}", "':'"},
        {"{\"a\": 1} x", "after the object"},
        {"{\"a", "unterminated"},
        {"{\"a\\", "unterminated"},
        {"{\"a\\q\": 1}", "bad escape"},
        {"{\"\\u12\": 1}", "bad escape"},
        {"{\"\\ud800\": 1}", "surrogate"},
        {"{\"\\udc00\\ud800\": 1}", "surrogate"},
        {"{\"a\tb\": 1}", "control character"},
        {"{\"\xff\": 1}", "not UTF-8 at byte 2"},
        {"{\"<|startoftext|>\": 0, \"<|endoftext|>\": 1}", "byte 0x00"}, /* no byte symbols */
    };
    for (size_t i = 0; i < sizeof bad_vocab / sizeof *bad_vocab; i++)
        check_load_fails(scratch_file("bad.json", bad_vocab[i].json, strlen(bad_vocab[i].json)),
                         merges, SG_EINVAL, bad_vocab[i].needle);

    static const struct {
        const char *text, *needle;
    } bad_merges[] = {
        {"#version: 0.2\ni n\nt h e\n", "line 3: expected two symbols"},
        {"#version: 0.2\ni n\n\nt h\n", "line 3: expected two symbols"},
        {"#version: 0.2\ni n\nzzzzqqqq xxxxkkkk\n", "\"zzzzqqqq\""},
        {"#version: 0.2\nx</w> x</w>\n", "\"x</w>x</w>\""}, /* the merged symbol is not a token */
        {"i n\nt h\n", "#version"},
        {"", "#version"},
    };
    for (size_t i = 0; i < sizeof bad_merges / sizeof *bad_merges; i++)
        check_load_fails(vocab, scratch_file("bad.txt", bad_merges[i].text,
                                             strlen(bad_merges[i].text)),
                         SG_EINVAL, bad_merges[i].needle);

    check_load_fails(FIXTURES "/missing.json", merges, SG_EIO, "missing.json");
    check_load_fails(vocab, FIXTURES "/missing.txt", SG_EIO, "missing.txt");
    check_load_fails(FIXTURES, merges, SG_EIO, "regular file");
    sg_error err = {0};
    CHECK(sg_clip_tokenizer_load_dir(scratch, &err) == NULL && err.code == SG_EIO);
    CHECK(sg_clip_tokenizer_load_dir(NULL, &err) == NULL && err.code == SG_EINVAL);
    CHECK(sg_clip_tokenizer_load(NULL, merges, &err) == NULL && err.code == SG_EINVAL);

    /* With the single merge "i n" (CRLF, a BOM and trailing blank lines are fine): ranks come
     * from the file, and "in" ending a word is "i" + "n</w>" because no merge joins those. */
    static const char tiny[] = "\xEF\xBB\xBF#version: 0.2\r\ni n\r\n\n\n";
    sg_clip_tokenizer *t =
        sg_clip_tokenizer_load(vocab, scratch_file("tiny.txt", tiny, strlen(tiny)), &err);
    CHECK_MSG(t != NULL, "%s", err.msg);
    if (t) {
        int32_t ids[8];
        CHECK_EQ_INT(sg_clip_tokenize(t, "in", ids, 8, NULL), 4);
        CHECK_EQ_INT(ids[1], 72);       /* i */
        CHECK_EQ_INT(ids[2], 256 + 77); /* n</w> */
        CHECK_EQ_INT(sg_clip_tokenize(t, "inn", ids, 8, NULL), 4);
        CHECK_EQ_INT(ids[1], 512); /* in, the first merge */
        sg_clip_tokenizer_free(t);
    }
}

/* Appends src to dst[*n], replacing every occurrence of from by to. dst must have room. */
static void replace_all(char *dst, size_t *n, const char *src, const char *from, const char *to)
{
    size_t lf = strlen(from), lt = strlen(to);
    for (const char *p = src; *p;) {
        if (strncmp(p, from, lf) == 0) {
            memcpy(dst + *n, to, lt);
            *n += lt;
            p += lf;
        } else {
            dst[(*n)++] = *p++;
        }
    }
}

/* The same vocabulary written differently must load to the same tokenizer: pretty-printed (as
 * Hugging Face's save_vocabulary writes it), with escaped keys, and with a repeated key and an
 * extra non-BMP key (vocab_size counts distinct keys). */
static void test_vocab_spellings(const tok_case *cases, int n)
{
    size_t len = 0;
    char *orig = check_read_file(FIXTURES "/vocab.json", &len);
    char *buf = orig ? malloc(3 * len + 256) : NULL;
    if (!buf) {
        CHECK_MSG(0, "cannot read vocab.json");
        free(orig);
        return;
    }
    for (int variant = 0; variant < 2; variant++) {
        size_t m = 0;
        if (variant == 0) {
            replace_all(buf, &m, orig, ", \"", ",\n  \"");
        } else {
            replace_all(buf, &m, orig, "\"a\": 64,", "\"\\u0061\": 64,");
            while (m > 0 && buf[m - 1] != '}')
                m--;
            m--; /* drop the closing brace, then add two more members */
            const char *more = ", \"\\ud83d\\ude00\\/\\n\" : 49408 , \"a\":64 }\n";
            memcpy(buf + m, more, strlen(more));
            m += strlen(more);
        }
        sg_error err = {0};
        sg_clip_tokenizer *t = sg_clip_tokenizer_load(
            scratch_file("variant.json", buf, m), FIXTURES "/merges.txt", &err);
        CHECK_MSG(t != NULL, "variant %d: %s", variant, err.msg);
        if (!t)
            continue;
        CHECK_EQ_INT(sg_clip_tokenizer_vocab_size(t), variant == 0 ? 49408 : 49409);
        int mismatches = 0;
        for (int i = 0; i < n; i++) {
            int32_t got[SG_CLIP_CONTEXT];
            int ng = sg_clip_tokenize(t, cases[i].text, got, SG_CLIP_CONTEXT, NULL);
            mismatches += !same_ids(got, ng, cases[i].want, cases[i].n_want);
        }
        CHECK_MSG(mismatches == 0, "variant %d: %d cases differ", variant, mismatches);
        sg_clip_tokenizer_free(t);
    }
    free(buf);
    free(orig);
}

typedef struct thread_arg {
    const sg_clip_tokenizer *t;
    const tok_case *cases;
    int n, mismatches;
} thread_arg;

static void *tokenize_all(void *p)
{
    thread_arg *a = p;
    for (int round = 0; round < 20; round++)
        for (int i = 0; i < a->n; i++) {
            int32_t got[SG_CLIP_CONTEXT];
            int ng = sg_clip_tokenize(a->t, a->cases[i].text, got, SG_CLIP_CONTEXT, NULL);
            a->mismatches += !same_ids(got, ng, a->cases[i].want, a->cases[i].n_want);
        }
    return NULL;
}

static void test_threads(const sg_clip_tokenizer *t, const tok_case *cases, int n)
{
    enum { NT = 8 };
    pthread_t th[NT];
    thread_arg args[NT];
    for (int i = 0; i < NT; i++) {
        args[i] = (thread_arg){t, cases, n, 0};
        CHECK(pthread_create(&th[i], NULL, tokenize_all, &args[i]) == 0);
    }
    for (int i = 0; i < NT; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ_INT(args[i].mismatches, 0);
    }
}

int main(void)
{
    sg_error err = {0};
    sg_clip_tokenizer *t = sg_clip_tokenizer_load_dir(FIXTURES, &err);
    CHECK_MSG(t != NULL, "load: %s", err.msg);
    if (!t)
        return check_report("test_clip_tokenizer");
    CHECK_EQ_INT(sg_clip_tokenizer_vocab_size(t), 49408);
    CHECK_EQ_INT(sg_clip_tokenizer_sot(t), 49406);
    CHECK_EQ_INT(sg_clip_tokenizer_eot(t), 49407);

    json_t *doc = NULL;
    tok_case *cases = NULL;
    int n = load_cases(&doc, &cases);
    CHECK_MSG(n > 0, "no cases loaded");
    test_cases(t, cases, n);
    test_bad_input(t);
    if (mkdtemp(scratch)) {
        test_load_errors();
        test_vocab_spellings(cases, n);
        static const char *const names[] = {"bad.json", "bad.txt", "tiny.txt", "variant.json"};
        for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
            char path[256];
            snprintf(path, sizeof path, "%s/%s", scratch, names[i]);
            remove(path);
        }
        rmdir(scratch);
    } else {
        CHECK_MSG(0, "mkdtemp failed");
    }
    test_threads(t, cases, n);

    free(cases);
    json_decref(doc);
    sg_clip_tokenizer_free(t);
    return check_report("test_clip_tokenizer");
}
