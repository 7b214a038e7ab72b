/* Tests for base/base64: RFC 4648 vectors both ways, random round trips, and every way the strict
 * decoder must refuse input (alphabet, padding, non-canonical bits, data: prefix), plus
 * concurrent first use from several threads. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/base64.h"
#include "check.h"

/* Decodes a NUL-terminated string; returns the status and leaves the result in *out. */
static sg_status dec(const char *s, uint8_t **out, size_t *n, sg_error *err)
{
    return sg_base64_decode(s, strlen(s), out, n, err);
}

/* Expects s to decode to want (want_len bytes). */
static void check_decodes(const char *s, const char *want, size_t want_len)
{
    uint8_t *out = NULL;
    size_t n = 0;
    sg_error err = {0};
    sg_status st = dec(s, &out, &n, &err);
    CHECK_MSG(st == SG_OK, "\"%s\": %s", s, err.msg);
    if (st == SG_OK) {
        CHECK_MSG(n == want_len && memcmp(out, want, n) == 0, "\"%s\" decoded wrong", s);
        CHECK(out[n] == 0); /* NUL-terminated for convenience */
    }
    free(out);
}

/* Expects s to be refused with SG_EINVAL and a message containing `needle` (if not NULL). */
static void check_rejects(const char *s, size_t len, const char *needle)
{
    uint8_t *out = (uint8_t *)&out; /* must be reset to NULL */
    size_t n = 99;
    sg_error err = {0};
    sg_status st = sg_base64_decode(s, len, &out, &n, &err);
    CHECK_MSG(st == SG_EINVAL, "\"%.*s\" accepted", (int)len, s);
    CHECK(out == NULL && n == 0);
    if (st == SG_OK)
        free(out);
    else if (needle)
        CHECK_MSG(strstr(err.msg, needle) != NULL, "\"%.*s\": \"%s\" lacks \"%s\"", (int)len, s,
                  err.msg, needle);
}

static void test_rfc4648(void)
{
    static const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *coded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        size_t n = 99;
        char *e = sg_base64_encode((const uint8_t *)plain[i], strlen(plain[i]), &n);
        CHECK(e != NULL);
        if (e) {
            CHECK_MSG(strcmp(e, coded[i]) == 0, "encode(\"%s\") = \"%s\"", plain[i], e);
            CHECK_EQ_INT(n, strlen(coded[i]));
        }
        free(e);
        if (i > 0)
            check_decodes(coded[i], plain[i], strlen(plain[i]));
    }
    /* out_len is optional */
    char *e = sg_base64_encode((const uint8_t *)"foo", 3, NULL);
    CHECK(e && strcmp(e, "Zm9v") == 0);
    free(e);
    /* the whole alphabet */
    check_decodes("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
                  "\x00\x10\x83\x10\x51\x87\x20\x92\x8b\x30\xd3\x8f\x41\x14\x93\x51\x55\x97"
                  "\x61\x96\x9b\x71\xd7\x9f\x82\x18\xa3\x92\x59\xa7\xa2\x9a\xab\xb2\xdb\xaf"
                  "\xc3\x1c\xb3\xd3\x5d\xb7\xe3\x9e\xbb\xf3\xdf\xbf",
                  48);
}

static uint32_t rng_state = 12345;

static uint8_t rng_byte(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return (uint8_t)(rng_state >> 24);
}

static void test_round_trips(void)
{
    uint8_t buf[300];
    int bad = 0;
    for (size_t len = 1; len <= 300; len++) {
        for (int rep = 0; rep < 3; rep++) {
            for (size_t i = 0; i < len; i++)
                buf[i] = rng_byte();
            size_t elen;
            char *e = sg_base64_encode(buf, len, &elen);
            uint8_t *d = NULL;
            size_t dlen = 0;
            sg_error err = {0};
            if (!e || elen != (len + 2) / 3 * 4 || strlen(e) != elen ||
                sg_base64_decode(e, elen, &d, &dlen, &err) != SG_OK || dlen != len ||
                memcmp(d, buf, len) != 0)
                bad++;
            free(e);
            free(d);
        }
    }
    CHECK_EQ_INT(bad, 0);

    /* every byte value, including NUL, survives */
    uint8_t all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    char *e = sg_base64_encode(all, sizeof all, NULL);
    uint8_t *d = NULL;
    size_t dlen = 0;
    sg_error err = {0};
    CHECK(e && sg_base64_decode(e, strlen(e), &d, &dlen, &err) == SG_OK);
    CHECK(dlen == 256 && d && memcmp(d, all, 256) == 0);
    free(e);
    free(d);
}

static void test_invalid_characters(void)
{
    check_rejects("Zm9v YmFy", 9, "offset 4");
    check_rejects(" Zm9v", 5, "offset 0");
    check_rejects("Zm9v\t", 5, "offset 4");
    check_rejects("Zm-v", 4, "offset 2");  /* base64url alphabet is not accepted */
    check_rejects("Zm_v", 4, "offset 2");
    check_rejects("Zm9*", 4, "offset 3");
    check_rejects("Zm\xc3\xa9", 4, "offset 2");
    check_rejects("Zm9v\x80YmFy", 9, "offset 4");
    check_rejects("Zm9v\0YmFy", 9, "offset 4"); /* an embedded NUL is not the end */
    check_rejects("Zm9v.", 5, "invalid character");
}

static void test_padding(void)
{
    check_rejects("Zg=", 3, NULL);
    check_rejects("Zg===", 5, "padding");
    check_rejects("Z===", 4, "padding");
    check_rejects("====", 4, "offset 0");
    check_rejects("=Zg=", 4, "offset 0");
    check_rejects("Zg==Zg==", 8, "offset 4");
    check_rejects("Zm9v=", 5, "offset 4");
    check_rejects("Zg=a", 4, "offset 3");
    /* missing padding */
    check_rejects("Zg", 2, "multiple of 4");
    check_rejects("Zm8", 3, "multiple of 4");
    check_rejects("Zm9vY", 5, "multiple of 4");
    check_rejects("Z", 1, NULL);
    /* non-canonical: bits below the last whole byte must be zero */
    check_rejects("Zh==", 4, "non-canonical");
    check_rejects("Zm9=", 4, "non-canonical");
    check_decodes("Zm8=", "fo", 2);
    check_decodes("Zg==", "f", 1);
    /* empty payload */
    check_rejects("", 0, "empty");
    check_rejects("\r\n", 2, "empty");
    uint8_t *out = NULL;
    size_t n = 0;
    sg_error err = {0};
    CHECK_EQ_INT(sg_base64_decode(NULL, 0, &out, &n, &err), SG_EINVAL);
    CHECK(out == NULL);
}

static void test_line_breaks(void)
{
    check_decodes("Zm9v\r\nYmFy", "foobar", 6);
    check_decodes("Zm9v\nYmFy\n", "foobar", 6);
    check_decodes("\r\nZm9vYg==\r\n", "foob", 4);
    check_decodes("Zm\n9v", "foo", 3);

    /* a MIME-style body: 76-column lines with CRLF, as Android's Base64.DEFAULT writes */
    uint8_t raw[200];
    for (size_t i = 0; i < sizeof raw; i++)
        raw[i] = rng_byte();
    size_t elen;
    char *e = sg_base64_encode(raw, sizeof raw, &elen);
    CHECK(e != NULL);
    if (!e)
        return;
    char wrapped[400];
    size_t w = 0;
    for (size_t i = 0; i < elen; i += 76) {
        size_t k = elen - i < 76 ? elen - i : 76;
        memcpy(wrapped + w, e + i, k);
        w += k;
        wrapped[w++] = '\r';
        wrapped[w++] = '\n';
    }
    free(e);
    uint8_t *d = NULL;
    size_t dlen = 0;
    sg_error err = {0};
    CHECK_EQ_INT(sg_base64_decode(wrapped, w, &d, &dlen, &err), SG_OK);
    CHECK(dlen == sizeof raw && d && memcmp(d, raw, sizeof raw) == 0);
    free(d);
}

static void test_data_url(void)
{
    check_decodes("data:image/jpeg;base64,Zm9vYmFy", "foobar", 6);
    check_decodes("data:audio/wav;base64,Zm9v\r\nYmFy", "foobar", 6);
    check_decodes("data:;base64,Zg==", "f", 1);
    check_rejects("data:image/jpeg,Zm9v", 20, "data: URL");
    check_rejects("data:image/jpegZm9v", 19, "data: URL");
    check_rejects("data:text/plain;charset=utf-8,Zm9v", 34, "data: URL");
    check_rejects("data:,Zm9v", 10, "data: URL");
    check_rejects("data:image/png;base64,", 22, "empty");
    /* offsets count from the start of the whole input, prefix included */
    check_rejects("data:image/png;base64,Zm9v!", 27, "offset 26");
    /* the prefix is only recognised at the very start */
    check_rejects(" data:image/png;base64,Zm9v", 27, "offset 0");
    /* a prefix longer than 256 bytes is not searched for a comma */
    char longurl[400] = "data:";
    memset(longurl + 5, 'a', 300);
    strcpy(longurl + 305, ";base64,Zm9v");
    check_rejects(longurl, strlen(longurl), "data: URL");
}

/* Several threads decoding at once, from the very first call. */
static pthread_barrier_t start_line;

static void *decode_many(void *arg)
{
    int *fails = arg;
    pthread_barrier_wait(&start_line);
    for (int i = 0; i < 200; i++) {
        uint8_t *d = NULL;
        size_t n = 0;
        sg_error err;
        if (sg_base64_decode("Zm9vYmFy", 8, &d, &n, &err) != SG_OK || n != 6 ||
            memcmp(d, "foobar", 6) != 0)
            (*fails)++;
        free(d);
    }
    return NULL;
}

static void test_threads(void)
{
    enum { NT = 8 };
    pthread_t t[NT];
    int fails[NT] = {0};
    pthread_barrier_init(&start_line, NULL, NT);
    for (int i = 0; i < NT; i++)
        pthread_create(&t[i], NULL, decode_many, &fails[i]);
    int total = 0;
    for (int i = 0; i < NT; i++) {
        pthread_join(t[i], NULL);
        total += fails[i];
    }
    pthread_barrier_destroy(&start_line);
    CHECK_EQ_INT(total, 0);
}

int main(void)
{
    test_threads(); /* first, so it exercises first use */
    test_rfc4648();
    test_round_trips();
    test_invalid_characters();
    test_padding();
    test_line_breaks();
    test_data_url();
    return check_report("test_base64");
}
