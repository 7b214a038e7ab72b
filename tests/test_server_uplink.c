/* Integration tests of the uplink features through the real sg-edge binary:
 *  - the client-keyframe hint on POST /sessions/{id}/frame (header X-Client-Keyframe for raw
 *    bodies, field "client_keyframe" in JSON bodies) and on /ws/frame (header or ?client_keyframe
 *    on the upgrade): a frame that the gate's min_gap would skip is processed with the hint, even
 *    an identical frame (the hint is not re-checked against the diff); invalid values are 422;
 *  - compressed audio on POST /sessions/{id}/audio: raw audio/ogg (Opus) and audio/flac bodies,
 *    JSON audio_base64 with format "flac"/"ogg" or sniffed, checked against the WAV upload of the
 *    same audio with the tiny Whisper fixture and the real Silero VAD; garbage behind a fLaC/OggS
 *    magic and a container that contradicts the media type are 400 INVALID_AUDIO. */
#include <signal.h>
#include <sndfile.h>

#include "base/base64.h"
#include "check.h"
#include "sgtest_http.h"
#include "sgtest_ws.h"

#define IMG(name) "../shared/data/images/" name ".jpg"
#define JFK "../shared/data/audio/jfk.wav"
#define VAD_MODEL "../shared/models/silero-vad-v6.2.0-ggml.bin"
#define ASR_MODEL "tests/fixtures/whisper_tiny"

typedef struct blob {
    uint8_t *p;
    size_t n;
} blob;

static blob load(const char *path)
{
    blob b = {0};
    b.p = (uint8_t *)sgt_read_file(path, &b.n);
    CHECK_MSG(b.p != NULL, "cannot read %s (run from the project root)", path);
    return b;
}

/* POST /frame with a raw JPEG and an optional X-Client-Keyframe value; returns the response. */
static sgt_resp post_raw_frame(const sgt_server *s, const char *sid, const blob *img, const char *hint)
{
    char path[128], h[96];
    snprintf(path, sizeof path, "/sessions/%s/frame", sid);
    if (hint && !*hint)
        snprintf(h, sizeof h, "X-Client-Keyframe;"); /* curl's way to send an empty value */
    else
        snprintf(h, sizeof h, "X-Client-Keyframe: %s", hint ? hint : "");
    const char *hdrs[] = {"Content-Type: image/jpeg", hint ? h : NULL, NULL};
    return sgt_request(s, "POST", path, hdrs, img->p, img->n);
}

/* POST /frame as JSON; hint_json is the literal JSON value of "client_keyframe" or NULL. */
static sgt_resp post_json_frame(const sgt_server *s, const char *sid, const blob *img,
                                const char *hint_json)
{
    char path[128];
    snprintf(path, sizeof path, "/sessions/%s/frame", sid);
    size_t bn;
    char *b64 = sg_base64_encode(img->p, img->n, &bn);
    size_t cap = bn + 128;
    char *body = malloc(cap);
    if (hint_json)
        snprintf(body, cap, "{\"image_base64\":\"%s\",\"client_keyframe\":%s}", b64, hint_json);
    else
        snprintf(body, cap, "{\"image_base64\":\"%s\"}", b64);
    sgt_resp r = sgt_request(s, "POST", path, NULL, body, strlen(body));
    free(b64);
    free(body);
    return r;
}

static int is_key(const sgt_resp *r)
{
    return json_is_true(json_object_get(r->json, "keyframe"));
}

static void expect_frame(sgt_resp r, int keyframe, int client, const char *what)
{
    CHECK_MSG(r.status == 200, "%s: HTTP %ld %s", what, r.status, r.body ? r.body : "");
    CHECK_MSG(is_key(&r) == keyframe, "%s: keyframe %d, want %d", what, is_key(&r), keyframe);
    CHECK_MSG(json_is_true(json_object_get(r.json, "client_keyframe")) == client,
              "%s: client_keyframe", what);
    CHECK(strcmp(sgt_str(r.json, "status"), keyframe ? "processed" : "skipped") == 0);
    sgt_resp_free(&r);
}

static void expect_422(sgt_resp r, const char *what)
{
    CHECK_MSG(r.status == 422, "%s: HTTP %ld", what, r.status);
    CHECK(strcmp(sgt_str(r.json, "error"), "INVALID_REQUEST") == 0);
    CHECK_MSG(strstr(sgt_str(r.json, "detail"), "eyframe") != NULL, "%s: %s", what,
              sgt_str(r.json, "detail"));
    sgt_resp_free(&r);
}

static void test_frame_hint(const sgt_server *s)
{
    blob a = load(IMG("astronaut")), b = load(IMG("coffee")), c = load(IMG("rocket"));
    if (!a.p || !b.p || !c.p)
        goto out;
    char *sid = sgt_new_session(s, NULL);
    /* the gate alone: the first frame is a keyframe; a big change one frame later is skipped
     * (min_gap 3 counts the frames the server sees) */
    expect_frame(post_raw_frame(s, sid, &a, NULL), 1, 0, "first frame");
    expect_frame(post_raw_frame(s, sid, &b, NULL), 0, 0, "a scene cut inside min_gap");
    /* with the hint the next frame is processed although min_gap has not passed */
    expect_frame(post_raw_frame(s, sid, &c, "true"), 1, 1, "raw + X-Client-Keyframe: true");
    expect_frame(post_json_frame(s, sid, &a, "true"), 1, 1, "JSON client_keyframe true");
    /* identical to the previous frame: the hint is trusted, the diff is not re-checked */
    expect_frame(post_json_frame(s, sid, &a, "true"), 1, 1, "identical frame with the hint");
    /* false or absent: the gate decides (one frame after a keyframe: skipped) */
    expect_frame(post_json_frame(s, sid, &b, "false"), 0, 0, "JSON client_keyframe false");
    expect_frame(post_raw_frame(s, sid, &c, "0"), 0, 0, "raw + X-Client-Keyframe: 0");
    expect_frame(post_raw_frame(s, sid, &a, "yes"), 1, 1, "raw + X-Client-Keyframe: yes");
    /* the header works on a JSON body too; the field wins when both are there */
    {
        char path[128];
        snprintf(path, sizeof path, "/sessions/%s/frame", sid);
        size_t bn;
        char *b64 = sg_base64_encode(b.p, b.n, &bn);
        char *body = malloc(bn + 96);
        snprintf(body, bn + 96, "{\"image_base64\":\"%s\"}", b64);
        const char *h1[] = {"X-Client-Keyframe: TRUE", NULL};
        expect_frame(sgt_request(s, "POST", path, h1, body, strlen(body)), 1, 1, "JSON + header");
        snprintf(body, bn + 96, "{\"image_base64\":\"%s\",\"client_keyframe\":false}", b64);
        expect_frame(sgt_request(s, "POST", path, h1, body, strlen(body)), 0, 0,
                     "JSON false + header true");
        free(body);
        free(b64);
    }
    /* invalid values: 422, and nothing is ingested */
    expect_422(post_raw_frame(s, sid, &a, "maybe"), "header maybe");
    expect_422(post_raw_frame(s, sid, &a, ""), "empty header");
    {
        sgt_resp e = post_json_frame(s, sid, &a, "\"true\"");
        CHECK_EQ_INT(e.status, 422);
        CHECK(strstr(sgt_str(e.json, "detail"), "client_keyframe") != NULL);
        sgt_resp_free(&e);
        e = post_json_frame(s, sid, &a, "1");
        CHECK_EQ_INT(e.status, 422);
        sgt_resp_free(&e);
    }
    /* the refused requests ingested nothing: the next frame is the 11th */
    sgt_resp r = post_raw_frame(s, sid, &b, NULL);
    CHECK_EQ_INT(r.status, 200);
    CHECK_EQ_INT(json_integer_value(json_object_get(r.json, "frame_index")), 11);
    sgt_resp_free(&r);
    free(sid);
out:
    free(a.p);
    free(b.p);
    free(c.p);
}

/* One frame over the socket; returns its "keyframe" (-1 on no answer). */
static int ws_frame(sgt_ws *w, const blob *img)
{
    sgt_ws_send(w, 2, img->p, img->n);
    json_t *m = sgt_ws_recv_json(w, 10000, NULL);
    CHECK(m != NULL);
    int k = m ? json_is_true(json_object_get(m, "keyframe")) : -1;
    json_decref(m);
    return k;
}

static void test_ws_hint(const sgt_server *s)
{
    blob a = load(IMG("astronaut")), b = load(IMG("coffee"));
    if (!a.p || !b.p)
        goto out;
    char *sid = sgt_new_session(s, NULL);
    char path[160];
    snprintf(path, sizeof path, "/ws/frame/%s", sid);
    sgt_ws w;
    /* without the hint: the second frame (a scene cut) is inside min_gap */
    CHECK_EQ_INT(sgt_ws_open(&w, s->port, "GET", path, NULL, NULL), 101);
    CHECK_EQ_INT(ws_frame(&w, &a), 1);
    CHECK_EQ_INT(ws_frame(&w, &b), 0);
    sgt_ws_free(&w);
    /* the header on the upgrade: every frame of the socket is a keyframe */
    CHECK_EQ_INT(sgt_ws_open(&w, s->port, "GET", path, NULL, "X-Client-Keyframe: true\r\n"), 101);
    CHECK_EQ_INT(ws_frame(&w, &a), 1);
    CHECK_EQ_INT(ws_frame(&w, &b), 1);
    CHECK_EQ_INT(ws_frame(&w, &b), 1);
    sgt_ws_free(&w);
    /* the query parameter */
    snprintf(path, sizeof path, "/ws/frame/%s?client_keyframe=1", sid);
    CHECK_EQ_INT(sgt_ws_open(&w, s->port, "GET", path, NULL, NULL), 101);
    CHECK_EQ_INT(ws_frame(&w, &a), 1);
    CHECK_EQ_INT(ws_frame(&w, &a), 1);
    sgt_ws_free(&w);
    /* invalid values refuse the upgrade with 422 */
    snprintf(path, sizeof path, "/ws/frame/%s?client_keyframe=often", sid);
    CHECK_EQ_INT(sgt_ws_open(&w, s->port, "GET", path, NULL, NULL), 422);
    CHECK(strcmp(sgt_str(w.json, "error"), "INVALID_REQUEST") == 0);
    sgt_ws_free(&w);
    snprintf(path, sizeof path, "/ws/frame/%s", sid);
    CHECK_EQ_INT(sgt_ws_open(&w, s->port, "GET", path, NULL, "X-Client-Keyframe: 2\r\n"), 422);
    sgt_ws_free(&w);
    free(sid);
out:
    free(a.p);
    free(b.p);
}

/* ---- compressed audio ---- */

typedef struct wmem {
    uint8_t *p;
    sf_count_t n, cap, pos;
} wmem;
static sf_count_t wm_len(void *u) { return ((wmem *)u)->n; }
static sf_count_t wm_tell(void *u) { return ((wmem *)u)->pos; }
static sf_count_t wm_seek(sf_count_t off, int wh, void *u)
{
    wmem *m = u;
    sf_count_t p = wh == SEEK_SET ? off : wh == SEEK_CUR ? m->pos + off : m->n + off;
    if (p < 0)
        return -1;
    m->pos = p;
    return p;
}
static sf_count_t wm_read(void *d, sf_count_t c, void *u)
{
    wmem *m = u;
    if (m->pos >= m->n)
        return 0;
    if (c > m->n - m->pos)
        c = m->n - m->pos;
    memcpy(d, m->p + m->pos, (size_t)c);
    m->pos += c;
    return c;
}
static sf_count_t wm_write(const void *src, sf_count_t c, void *u)
{
    wmem *m = u;
    if (m->pos + c > m->cap) {
        m->cap = (m->pos + c) * 2;
        m->p = realloc(m->p, (size_t)m->cap);
    }
    memcpy(m->p + m->pos, src, (size_t)c);
    m->pos += c;
    if (m->pos > m->n)
        m->n = m->pos;
    return c;
}

/* seconds [from, to) of a 16 kHz mono s16 WAV's samples, encoded by libsndfile */
static blob encode(const int16_t *pcm, size_t n, int format, double level)
{
    wmem m = {0};
    SF_VIRTUAL_IO io = {wm_len, wm_seek, wm_read, wm_write, wm_tell};
    SF_INFO info = {.samplerate = 16000, .channels = 1, .format = format};
    SNDFILE *sf = sf_open_virtual(&io, SFM_WRITE, &info, &m);
    CHECK(sf != NULL);
    if (sf) {
        if (level >= 0)
            sf_command(sf, SFC_SET_COMPRESSION_LEVEL, &level, sizeof level);
        CHECK_EQ_INT(sf_writef_short(sf, pcm, (sf_count_t)n), n);
        sf_close(sf);
    }
    blob b = {m.p, (size_t)m.n};
    return b;
}

static sgt_resp post_audio(const sgt_server *s, const char *sid, const char *ctype, const void *p,
                           size_t n)
{
    char path[128], ct[96];
    snprintf(path, sizeof path, "/sessions/%s/audio", sid);
    snprintf(ct, sizeof ct, "Content-Type: %s", ctype);
    const char *hdrs[] = {ct, NULL};
    return sgt_request(s, "POST", path, hdrs, p, n);
}

static sgt_resp post_audio_json(const sgt_server *s, const char *sid, const blob *b, const char *fmt)
{
    char path[128];
    snprintf(path, sizeof path, "/sessions/%s/audio", sid);
    size_t bn;
    char *b64 = sg_base64_encode(b->p, b->n, &bn);
    char *body = malloc(bn + 128);
    if (fmt)
        snprintf(body, bn + 128, "{\"audio_base64\":\"%s\",\"format\":\"%s\"}", b64, fmt);
    else
        snprintf(body, bn + 128, "{\"audio_base64\":\"%s\"}", b64);
    sgt_resp r = sgt_request(s, "POST", path, NULL, body, strlen(body));
    free(b64);
    free(body);
    return r;
}

static void expect_audio_ok(sgt_resp r, const char *what, int speech, double dur)
{
    CHECK_MSG(r.status == 200, "%s: HTTP %ld %s", what, r.status, r.body ? r.body : "");
    CHECK_MSG(json_is_true(json_object_get(r.json, "speech")) == speech, "%s: speech", what);
    CHECK_NEAR(json_number_value(json_object_get(r.json, "duration_s")), dur, 0.01);
    sgt_resp_free(&r);
}

static void expect_bad_audio(sgt_resp r, const char *what, const char *detail_has)
{
    CHECK_MSG(r.status == 400, "%s: HTTP %ld %s", what, r.status, r.body ? r.body : "");
    CHECK(strcmp(sgt_str(r.json, "error"), "INVALID_AUDIO") == 0);
    CHECK_MSG(strstr(sgt_str(r.json, "detail"), detail_has) != NULL, "%s: %s", what,
              sgt_str(r.json, "detail"));
    sgt_resp_free(&r);
}

static void test_compressed_audio(void)
{
    size_t len;
    uint8_t *wav = (uint8_t *)sgt_read_file(JFK, &len);
    CHECK_MSG(wav != NULL, "cannot read " JFK);
    if (!wav)
        return;
    /* jfk.wav: 16 kHz mono s16 after a LIST chunk; speech from ~0.3 s */
    const uint8_t *d = NULL;
    for (size_t i = 12; i + 8 <= len; i++)
        if (memcmp(wav + i, "data", 4) == 0) {
            d = wav + i + 8;
            break;
        }
    CHECK(d != NULL);
    if (!d) {
        free(wav);
        return;
    }
    const size_t n = 4 * 16000; /* the first 4 s: speech */
    int16_t *pcm = malloc(n * 2);
    memcpy(pcm, d, n * 2);
    int16_t *silence = calloc(16000, 2);
    blob opus = encode(pcm, n, SF_FORMAT_OGG | SF_FORMAT_OPUS, 0.928);
    blob flac = encode(pcm, n, SF_FORMAT_FLAC | SF_FORMAT_PCM_16, -1);
    blob quiet = encode(silence, 16000, SF_FORMAT_OGG | SF_FORMAT_OPUS, 0.928);
    CHECK(opus.n < n * 2 / 10); /* 24 kbit/s: under a tenth of the PCM */

    sgt_server s;
    const char *args[] = {"--asr-model", ASR_MODEL, "--vad-model", VAD_MODEL, NULL};
    CHECK(sgt_start(&s, NULL, args) == 0);
    CHECK(sgt_wait_ready(&s));
    char *sid = sgt_new_session(&s, NULL);
    expect_audio_ok(post_audio(&s, sid, "audio/ogg", opus.p, opus.n), "raw audio/ogg", 1, 4.0);
    expect_audio_ok(post_audio(&s, sid, "audio/opus", opus.p, opus.n), "raw audio/opus", 1, 4.0);
    expect_audio_ok(post_audio(&s, sid, "audio/flac", flac.p, flac.n), "raw audio/flac", 1, 4.0);
    expect_audio_ok(post_audio(&s, sid, "audio/ogg", quiet.p, quiet.n), "silence", 0, 1.0);
    expect_audio_ok(post_audio_json(&s, sid, &flac, "flac"), "JSON flac", 1, 4.0);
    expect_audio_ok(post_audio_json(&s, sid, &opus, "ogg"), "JSON ogg", 1, 4.0);
    expect_audio_ok(post_audio_json(&s, sid, &opus, NULL), "JSON sniffed", 1, 4.0);
    /* errors: garbage behind the magic, a container that contradicts the type or format */
    uint8_t junk[512];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)(i * 29 + 3);
    memcpy(junk, "OggS", 4);
    expect_bad_audio(post_audio(&s, sid, "audio/ogg", junk, sizeof junk), "garbage OggS", "Ogg");
    memcpy(junk, "fLaC", 4);
    expect_bad_audio(post_audio(&s, sid, "audio/flac", junk, sizeof junk), "garbage fLaC", "FLAC");
    expect_bad_audio(post_audio(&s, sid, "audio/flac", opus.p, opus.n), "Ogg sent as FLAC", "fLaC");
    expect_bad_audio(post_audio(&s, sid, "audio/ogg", wav, len), "WAV sent as Ogg", "OggS");
    expect_bad_audio(post_audio_json(&s, sid, &flac, "ogg"), "FLAC with format ogg", "OggS");
    expect_bad_audio(post_audio(&s, sid, "audio/ogg", opus.p, 300), "truncated Ogg", "Ogg");
    {
        sgt_resp r = post_audio_json(&s, sid, &flac, "mp3");
        CHECK_EQ_INT(r.status, 422);
        CHECK(strstr(sgt_str(r.json, "detail"), "flac") != NULL);
        sgt_resp_free(&r);
    }
    free(sid);
    CHECK_EQ_INT(sgt_stop(&s, SIGTERM), 0);
    free(opus.p);
    free(flac.p);
    free(quiet.p);
    free(silence);
    free(pcm);
    free(wav);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    sgt_server s;
    CHECK(sgt_start(&s, NULL, NULL) == 0);
    CHECK(sgt_wait_ready(&s)); /* no models: ready a moment after /health */
    test_frame_hint(&s);
    test_ws_hint(&s);
    CHECK_EQ_INT(sgt_stop(&s, SIGTERM), 0);
    test_compressed_audio();
    curl_global_cleanup();
    return check_report("test_server_uplink");
}
