/* multipart/form-data (server/multipart.h): the body the openai SDK sends for
 * /v1/audio/transcriptions (fields, a repeated timestamp_granularities[], a WAV file), curl's
 * quoted boundary with preamble, epilogue, escapes and a near-delimiter inside data, and bad
 * bodies that are refused with the status and a message naming the problem. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "server/multipart.h"

#define B "0f3c5e7a9b1d2f4e6a8c0b2d4f6e8a1c"
#define CT "multipart/form-data; boundary=" B

static const char wav_bytes[] = "RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00"
                                "\x80\x3e\x00\x00\x00\x7d\x00\x00\x02\x00\x10\x00data\x00\x00\x00\x00"
                                "\r\n-- not a delimiter\r\n--" B "x still data";
#define WAV_LEN (sizeof wav_bytes - 1)

static size_t openai_body(uint8_t *out)
{
    size_t n = 0;
#define PUT(s) (memcpy(out + n, s, strlen(s)), n += strlen(s))
    PUT("--" B "\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n");
    PUT("--" B "\r\nContent-Disposition: form-data; name=\"response_format\"\r\n\r\nverbose_json\r\n");
    PUT("--" B "\r\nContent-Disposition: form-data; name=\"timestamp_granularities[]\"\r\n\r\nword\r\n");
    PUT("--" B "\r\nContent-Disposition: form-data; name=\"timestamp_granularities[]\"\r\n\r\nsegment\r\n");
    PUT("--" B "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"speech.wav\"\r\n"
        "Content-Type: audio/wav\r\n\r\n");
    memcpy(out + n, wav_bytes, WAV_LEN);
    n += WAV_LEN;
    PUT("\r\n--" B "--\r\n");
#undef PUT
    return n;
}

static bool field_is(const sg_multipart_part *p, const char *v)
{
    return p && p->len == strlen(v) && memcmp(p->data, v, p->len) == 0;
}

static void test_openai(void)
{
    uint8_t body[2048];
    size_t n = openai_body(body);
    sg_multipart mp;
    sg_error err = {0};
    sg_status st = sg_multipart_parse(body, n, CT, NULL, &mp, &err);
    CHECK_MSG(st == SG_OK, "%s", err.msg);
    CHECK(mp.n_parts == 5);
    CHECK(field_is(sg_multipart_find(&mp, "model"), "whisper-1"));
    CHECK(field_is(sg_multipart_find(&mp, "response_format"), "verbose_json"));
    CHECK(sg_multipart_find(&mp, "model")->filename == NULL);
    CHECK(sg_multipart_find(&mp, "model")->content_type == NULL);
    CHECK(sg_multipart_find(&mp, "language") == NULL);
    CHECK(sg_multipart_count(&mp, "timestamp_granularities[]") == 2);
    const sg_multipart_part *g = sg_multipart_next(&mp, NULL, "timestamp_granularities[]");
    CHECK(field_is(g, "word"));
    g = sg_multipart_next(&mp, g, "timestamp_granularities[]");
    CHECK(field_is(g, "segment"));
    CHECK(sg_multipart_next(&mp, g, "timestamp_granularities[]") == NULL);
    const sg_multipart_part *f = sg_multipart_find(&mp, "file");
    CHECK(f && f->filename && strcmp(f->filename, "speech.wav") == 0);
    CHECK(f && f->content_type && strcmp(f->content_type, "audio/wav") == 0);
    /* the data is the file's bytes, in place, near-delimiters included */
    CHECK(f && f->len == WAV_LEN && memcmp(f->data, wav_bytes, WAV_LEN) == 0);
    CHECK(f && f->data > body && f->data + f->len < body + n);
    sg_multipart_free(&mp);
    CHECK(mp.parts == NULL && mp.n_parts == 0);
    sg_multipart_free(&mp); /* twice is harmless */
}

static void test_curl_style(void)
{
    const char *ct = "Multipart/Form-Data; charset=utf-8; boundary=\"--xy:z ?'(q)\"";
    const char *body = "preamble, ignored\r\n"
                       "----xy:z ?'(q)\r\n"
                       "content-disposition: form-data; name=a\r\n\r\n"
                       "\r\n"
                       "----xy:z ?'(q) \t\r\n"
                       "Content-Disposition: form-data; filename*=UTF-8''%C3%A9.txt; "
                       "name=\"b\\\"c\"; filename=\"dir\\\\\xc3\xa9.txt\"\r\n"
                       "X-Other: ignored\r\n"
                       "Content-Type:  text/plain ; charset=utf-8  \r\n"
                       "Content-Transfer-Encoding: Binary\r\n\r\n"
                       "line1\r\n----xy:z ?'(q)x\r\n\r\n"
                       "----xy:z ?'(q)--\r\nepilogue ----xy:z ?'(q)\r\nnot parsed";
    sg_multipart mp;
    sg_error err = {0};
    sg_status st = sg_multipart_parse((const uint8_t *)body, strlen(body), ct, NULL, &mp, &err);
    CHECK_MSG(st == SG_OK, "%s", err.msg);
    CHECK(mp.n_parts == 2);
    if (mp.n_parts == 2) {
        CHECK(strcmp(mp.parts[0].name, "a") == 0 && mp.parts[0].len == 0);
        CHECK(strcmp(mp.parts[1].name, "b\"c") == 0);
        CHECK(mp.parts[1].filename && strcmp(mp.parts[1].filename, "dir\\\xc3\xa9.txt") == 0);
        CHECK(mp.parts[1].content_type &&
              strcmp(mp.parts[1].content_type, "text/plain ; charset=utf-8") == 0);
        CHECK(field_is(&mp.parts[1], "line1\r\n----xy:z ?'(q)x\r\n"));
    }
    sg_multipart_free(&mp);

    /* a form with no fields; the first delimiter after a preamble line */
    st = sg_multipart_parse((const uint8_t *)"--x--", 5, "multipart/form-data;boundary=x", NULL,
                            &mp, &err);
    CHECK(st == SG_OK && mp.n_parts == 0);
    sg_multipart_free(&mp);
    const char *b2 = "junk--x\r\nmore\r\n--x\r\nContent-Disposition: form-data; name=k\r\n\r\nv\r\n--x--";
    st = sg_multipart_parse((const uint8_t *)b2, strlen(b2), "multipart/form-data; boundary=x", NULL,
                            &mp, &err);
    CHECK_MSG(st == SG_OK && mp.n_parts == 1 && field_is(sg_multipart_find(&mp, "k"), "v"), "%s",
              err.msg);
    sg_multipart_free(&mp);
}

static void test_boundary(void)
{
    char b[SG_MULTIPART_MAX_BOUNDARY + 1];
    sg_error err = {0};
    CHECK(sg_multipart_boundary("multipart/form-data; boundary=abc", b, &err) == SG_OK &&
          strcmp(b, "abc") == 0);
    CHECK(sg_multipart_boundary("multipart/form-data ; BOUNDARY=\"a b\" ;", b, &err) == SG_OK &&
          strcmp(b, "a b") == 0);
    struct {
        const char *ct, *msg;
    } bad[] = {
        {NULL, "no Content-Type"},
        {"", "no Content-Type"},
        {"application/json", "not multipart/form-data"},
        {"multipart/mixed; boundary=x", "not multipart/form-data"},
        {"multipart/form-data", "no boundary"},
        {"multipart/form-data; charset=utf-8", "no boundary"},
        {"multipart/form-data; boundary=", "no valid value"},
        {"multipart/form-data; boundary=\"\"", "of 0 characters"},
        {"multipart/form-data; boundary=\"abc", "no valid value"},
        {"multipart/form-data; boundary=\"ab \"", "ends in a space"},
        {"multipart/form-data; boundary=\"a;b\"", "not allowed"},
        {"multipart/form-data; boundary=a; boundary=b", "more than one boundary"},
        {"multipart/form-data; boundary=a b", "unexpected"},
        {"multipart/form-data; boundary=01234567890123456789012345678901234567890123456789"
         "012345678901234567890", "of 71 characters"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err = (sg_error){0};
        sg_status st = sg_multipart_boundary(bad[i].ct, b, &err);
        CHECK_MSG(st == SG_EINVAL && strstr(err.msg, bad[i].msg), "%s: %d %s",
                  bad[i].ct ? bad[i].ct : "(null)", st, err.msg);
    }
    /* 70 is the longest */
    CHECK(sg_multipart_boundary("multipart/form-data; boundary=01234567890123456789012345678901234"
                                "56789012345678901234567890123456789", b, &err) == SG_OK);
}

static void expect(const char *body, const sg_multipart_limits *lim, sg_status want, const char *msg)
{
    sg_multipart mp;
    sg_error err = {0};
    sg_status st = sg_multipart_parse((const uint8_t *)body, strlen(body),
                                      "multipart/form-data; boundary=X", lim, &mp, &err);
    CHECK_MSG(st == want && strstr(err.msg, msg) && mp.parts == NULL && mp.n_parts == 0,
              "%.60s: got %s \"%s\", want %s \"%s\"", body, sg_status_name(st), err.msg,
              sg_status_name(want), msg);
}

#define CD "Content-Disposition: form-data; name=\"f\"\r\n"

static void test_bad(void)
{
    expect("", NULL, SG_EINVAL, "empty");
    expect("no delimiter at all", NULL, SG_EINVAL, "no multipart delimiter \"--X\"");
    expect("--Xy\r\n" CD "\r\nv\r\n--Xz", NULL, SG_EINVAL, "no multipart delimiter");
    expect("--X\r\n" CD "\r\nv", NULL, SG_EINVAL, "before the closing delimiter");
    expect("--X\r\n" CD "\r\nv\r\n--X\r\n", NULL, SG_EINVAL, "part 2: the body ends inside");
    expect("--X\r\n" CD "\r\nv\r\n--X", NULL, SG_EINVAL, "before the closing delimiter");
    expect("--X\r\n" CD, NULL, SG_EINVAL, "ends inside its headers");
    expect("--X\nContent-Disposition: form-data; name=f\n\nv\n--X--\n", NULL, SG_EINVAL,
           "no multipart delimiter"); /* bare LF: not a delimiter line */
    expect("--X\r\nContent-Disposition: form-data; name=f\n\r\nv\r\n--X--", NULL, SG_EINVAL,
           "part 1: header line 1 does not end in CRLF");
    expect("--X\r\n\r\nv\r\n--X--", NULL, SG_EINVAL, "part 1 has no Content-Disposition");
    expect("--X\r\nContent-Type: text/plain\r\n\r\nv\r\n--X--", NULL, SG_EINVAL,
           "no Content-Disposition");
    expect("--X\r\nContent-Disposition: attachment; name=f\r\n\r\nv\r\n--X--", NULL, SG_EINVAL,
           "is not form-data");
    expect("--X\r\nContent-Disposition: form-data; filename=a\r\n\r\nv\r\n--X--", NULL, SG_EINVAL,
           "no name parameter");
    expect("--X\r\nContent-Disposition: form-data; name=\"\"\r\n\r\nv\r\n--X--", NULL, SG_EINVAL,
           "empty name");
    expect("--X\r\nContent-Disposition: form-data; name=\"f\r\n\r\nv\r\n--X--", NULL, SG_EINVAL,
           "parameter name has no valid value");
    expect("--X\r\nContent-Disposition: form-data; name=a; name=b\r\n\r\nv\r\n--X--", NULL,
           SG_EINVAL, "has name twice");
    expect("--X\r\n" CD CD "\r\nv\r\n--X--", NULL, SG_EINVAL, "more than one Content-Disposition");
    expect("--X\r\n" CD "Content-Type: a\r\ncontent-type: b\r\n\r\nv\r\n--X--", NULL, SG_EINVAL,
           "more than one Content-Type");
    expect("--X\r\n" CD " folded\r\n\r\nv\r\n--X--", NULL, SG_EINVAL, "folded header line 2");
    expect("--X\r\n" CD "No colon\r\n\r\nv\r\n--X--", NULL, SG_EINVAL, "header line 2 is not");
    expect("--X\r\n" CD "Bad\x01: x\r\n\r\nv\r\n--X--", NULL, SG_EINVAL, "control byte 0x01");
    expect("--X\r\n" CD "Content-Transfer-Encoding: base64\r\n\r\nv\r\n--X--", NULL, SG_EINVAL,
           "Content-Transfer-Encoding \"base64\" is not supported");
    /* limits */
    sg_multipart_limits lim;
    sg_multipart_limits_default(&lim);
    CHECK(lim.max_parts == 32 && lim.max_field_bytes == 65536);
    lim.max_parts = 2;
    const char *three = "--X\r\n" CD "\r\n1\r\n--X\r\n" CD "\r\n2\r\n--X\r\n" CD "\r\n3\r\n--X--";
    expect(three, &lim, SG_ETOOBIG, "more than 2 parts");
    lim.max_parts = 3;
    sg_multipart mp;
    sg_error err = {0};
    CHECK(sg_multipart_parse((const uint8_t *)three, strlen(three), "multipart/form-data; boundary=X",
                             &lim, &mp, &err) == SG_OK && sg_multipart_count(&mp, "f") == 3);
    sg_multipart_free(&mp);
    sg_multipart_limits_default(&lim);
    lim.max_field_bytes = 4;
    expect("--X\r\n" CD "\r\n12345\r\n--X--", &lim, SG_ETOOBIG,
           "field \"f\" has 5 bytes, over the limit of 4");
    /* a file is not a field: no field limit */
    const char *file = "--X\r\nContent-Disposition: form-data; name=f; filename=a\r\n\r\n12345\r\n--X--";
    CHECK(sg_multipart_parse((const uint8_t *)file, strlen(file), "multipart/form-data; boundary=X",
                             &lim, &mp, &err) == SG_OK && mp.n_parts == 1 && mp.parts[0].len == 5);
    sg_multipart_free(&mp);
    sg_multipart_limits_default(&lim);
    lim.max_headers = 2;
    expect("--X\r\n" CD "A: 1\r\nB: 2\r\n\r\nv\r\n--X--", &lim, SG_ETOOBIG, "more than 2 header lines");
    sg_multipart_limits_default(&lim);
    lim.max_header_bytes = 60;
    expect("--X\r\n" CD "A: 12345678901234567890\r\n\r\nv\r\n--X--", &lim, SG_ETOOBIG,
           "headers over 60 bytes");
    /* default header limit against a long line with no end */
    char *big = malloc(20000);
    if (big) {
        memcpy(big, "--X\r\n", 5);
        memset(big + 5, 'a', 20000 - 6);
        big[19999] = 0;
        expect(big, NULL, SG_ETOOBIG, "headers over 8192 bytes");
        free(big);
    }
    /* not multipart */
    err = (sg_error){0};
    CHECK(sg_multipart_parse((const uint8_t *)"{}", 2, "application/json", NULL, &mp, &err) ==
              SG_EINVAL && strstr(err.msg, "not multipart/form-data"));
}

int main(void)
{
    test_openai();
    test_curl_style();
    test_boundary();
    test_bad();
    return check_report("test_multipart");
}
