/* Unit tests for server/session_codec: a session's parts (metadata, working state, raw media) and
 * DAT chunk records survive a round trip field for field; every cut, foreign or other-version
 * value is SG_ECORRUPT with a message naming what is wrong; a decoded frame ring keeps working
 * when FRAME_HISTORY_SIZE differs from what wrote it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "server/session_codec.h"

/* A session with every field of the working state set. */
static void fill(sg_session *s, const sg_config *cfg)
{
    sg_privacy all = {true, true, true};
    sg_session_state_init(s, NULL, &all);
    sg_visual_memory *m = &s->vision;
    m->gate.has_prev = true;
    for (int i = 0; i < 64; i++) {
        m->gate.prev[i] = (float)i * 1.5f;
        m->gate.key[i] = 255.0f - (float)i;
    }
    m->gate.acc = 3.25f;
    m->gate.since_key = 2;
    m->gate.frames = 9;
    m->gate.keyframes = 4;
    m->has_scene = true;
    snprintf(m->visual_context, sizeof m->visual_context, "a dim scene, mostly ünïcode blue");
    m->scene = json_pack("{s:s,s:[i,i],s:f}", "summary", "x", "size", 1, 2, "conf", 0.5);
    m->pixels_valid = true;
    m->pixels.width = 640;
    m->pixels.height = 480;
    m->pixels.brightness = 90.5f;
    m->pixels.brightness_label = "dim";
    m->pixels.ncolors = 2;
    snprintf(m->pixels.colors[0].name, sizeof m->pixels.colors[0].name, "blue");
    m->pixels.colors[0].fraction = 0.6f;
    snprintf(m->pixels.colors[1].name, sizeof m->pixels.colors[1].name, "gray");
    m->pixels.colors[1].fraction = 0.3f;
    m->pixels.sharpness_label = "sharp";
    m->pixels.change = -1;
    snprintf(m->pixels.summary, sizeof m->pixels.summary, "summary");
    m->embedding = malloc(8 * sizeof(float));
    for (int i = 0; i < 8; i++)
        m->embedding[i] = (float)i / 8;
    m->embedding_dim = 8;
    m->ocr_text = strdup("EMERGENCY EXIT\nKEEP CLEAR");
    m->frames = 9;
    m->keyframes = 4;
    s->dat_frame_analysed = 77;
    for (int i = 0; i < SG_TRANSCRIPTS_KEPT + 3; i++) { /* wraps the ring */
        char t[32];
        snprintf(t, sizeof t, "transcript %d", i);
        sg_session_add_transcript(s, t);
    }
    sg_session_add_turn(s, "q1", "r1");
    sg_session_add_turn(s, "q2", NULL);
    sg_error err = {0};
    for (int i = 0; i < 4; i++) {
        uint8_t frame[10];
        memset(frame, 'a' + i, sizeof frame);
        CHECK(sg_session_keep_frame(s, cfg, frame, sizeof frame, &err) == SG_OK);
    }
    float pcm[100];
    for (int i = 0; i < 100; i++)
        pcm[i] = sinf((float)i);
    CHECK(sg_session_keep_audio(s, cfg, pcm, 100, &err) == SG_OK);
}

static sg_status roundtrip(const sg_session *s, sg_session_part part, sg_session *out,
                           uint8_t **buf, size_t *len)
{
    sg_error err = {0};
    CHECK(sg_session_encode(s, part, buf, len, &err) == SG_OK);
    return sg_session_decode(out, part, *buf, *len, &err);
}

static void test_roundtrip(void)
{
    sg_config cfg;
    sg_config_defaults(&cfg);
    cfg.frame_history = 3;
    sg_session s = {0}, d = {0};
    fill(&s, &cfg);
    sg_privacy all = {true, true, true};
    sg_session_state_init(&d, NULL, &all);
    uint8_t *state, *raw;
    size_t state_len, raw_len;
    CHECK(roundtrip(&s, SG_SESSION_PART_STATE, &d, &state, &state_len) == SG_OK);
    CHECK(roundtrip(&s, SG_SESSION_PART_RAW, &d, &raw, &raw_len) == SG_OK);
    const sg_visual_memory *a = &s.vision, *b = &d.vision;
    CHECK(memcmp(&a->gate, &b->gate, sizeof a->gate) == 0);
    CHECK(b->has_scene && strcmp(a->visual_context, b->visual_context) == 0);
    CHECK(json_equal(a->scene, b->scene));
    CHECK(b->pixels_valid && b->pixels.width == 640 && b->pixels.ncolors == 2);
    CHECK(strcmp(b->pixels.brightness_label, "dim") == 0 && strcmp(b->pixels.sharpness_label, "sharp") == 0);
    CHECK(strcmp(b->pixels.colors[1].name, "gray") == 0 && b->pixels.change == -1);
    CHECK(b->embedding_dim == 8 && memcmp(a->embedding, b->embedding, 8 * sizeof(float)) == 0);
    CHECK(b->ocr_text && strcmp(b->ocr_text, "EMERGENCY EXIT\nKEEP CLEAR") == 0);
    CHECK(b->frames == 9 && b->keyframes == 4 && d.dat_frame_analysed == 77);
    CHECK_EQ_INT(d.transcripts_n, SG_TRANSCRIPTS_KEPT);
    CHECK(strcmp(d.transcripts[0], "transcript 3") == 0); /* oldest kept first */
    CHECK(strcmp(d.transcripts[SG_TRANSCRIPTS_KEPT - 1], "transcript 34") == 0);
    CHECK_EQ_INT(d.history_n, 2);
    CHECK(strcmp(d.history[1][0], "q2") == 0 && d.history[1][1] == NULL);
    CHECK_EQ_INT(d.frames_n, 3);
    CHECK(d.frames[0].data[0] == 'b' && d.frames[2].data[0] == 'd');
    CHECK_EQ_INT((long)d.frames_bytes, 30);
    CHECK_EQ_INT((long)d.audio_n, 100);
    CHECK(memcmp(d.audio, s.audio, 100 * sizeof(float)) == 0);
    /* encoding what was decoded gives the same bytes */
    uint8_t *again;
    size_t again_len;
    sg_error err = {0};
    CHECK(sg_session_encode(&d, SG_SESSION_PART_STATE, &again, &again_len, &err) == SG_OK);
    CHECK(again_len == state_len && memcmp(again, state, state_len) == 0);
    free(again);
    /* the ring decoded with 3 slots follows FRAME_HISTORY_SIZE when it changed */
    cfg.frame_history = 5;
    uint8_t frame[4] = {'z', 'z', 'z', 'z'};
    CHECK(sg_session_keep_frame(&d, &cfg, frame, 4, &err) == SG_OK);
    CHECK_EQ_INT(d.frames_n, 4);
    CHECK_EQ_INT(d.frames_cap, 5);
    cfg.frame_history = 2;
    CHECK(sg_session_keep_frame(&d, &cfg, frame, 4, &err) == SG_OK);
    CHECK_EQ_INT(d.frames_n, 2);
    CHECK_EQ_INT((long)d.frames_bytes, 8);

    /* metadata */
    atomic_store(&s.query_count, 12);
    atomic_store(&s.frame_count, 5);
    atomic_store(&s.has_frame, true);
    s.created_wall_s = 1700000000.25;
    uint8_t *meta;
    size_t meta_len;
    CHECK(sg_session_encode(&s, SG_SESSION_PART_META, &meta, &meta_len, &err) == SG_OK);
    sg_session_meta m;
    CHECK(sg_session_meta_decode(meta, meta_len, &m, &err) == SG_OK);
    CHECK(m.privacy.store_raw_audio && m.privacy.store_raw_frames && m.privacy.store_transcripts);
    CHECK(m.queries == 12 && m.frames == 5 && m.has_frame && m.transcripts == SG_TRANSCRIPTS_KEPT);
    CHECK(m.created_wall_s == 1700000000.25);

    /* every cut of every part is an error (never a crash); the message names the part */
    const struct {
        uint8_t *buf;
        size_t len;
        sg_session_part part;
    } parts[] = {{state, state_len, SG_SESSION_PART_STATE},
                 {raw, raw_len, SG_SESSION_PART_RAW},
                 {meta, meta_len, SG_SESSION_PART_META}};
    for (int p = 0; p < 3; p++) {
        int bad = 0;
        for (size_t n = 0; n < parts[p].len; n++) {
            sg_session x = {0};
            sg_session_state_init(&x, NULL, &all);
            sg_error e = {0};
            sg_status st = parts[p].part == SG_SESSION_PART_META
                               ? sg_session_meta_decode(parts[p].buf, n, &m, &e)
                               : sg_session_decode(&x, parts[p].part, parts[p].buf, n, &e);
            /* a cut between fields is a shorter valid value unless a required field is gone */
            bad += st == SG_ECORRUPT;
            CHECK_MSG(st == SG_OK || (st == SG_ECORRUPT && strstr(e.msg, "the session's")),
                      "part %d cut at %zu: %d %s", p, n, st, e.msg);
            sg_session_state_free(&x);
        }
        CHECK(bad > 0);
    }
    free(state);
    free(raw);
    free(meta);
    sg_session_state_free(&s);
    sg_session_state_free(&d);
}

static void expect_corrupt(sg_session_part part, const void *buf, size_t len, const char *says)
{
    sg_privacy p = {0};
    sg_session x = {0};
    sg_session_state_init(&x, NULL, &p);
    sg_error err = {0};
    sg_session_meta m;
    sg_status st = part == SG_SESSION_PART_META ? sg_session_meta_decode(buf, len, &m, &err)
                                                : sg_session_decode(&x, part, buf, len, &err);
    CHECK_MSG(st == SG_ECORRUPT && strstr(err.msg, says), "want \"%s\", got %d \"%s\"", says, st,
              err.msg);
    sg_session_state_free(&x);
}

static void test_foreign(void)
{
    expect_corrupt(SG_SESSION_PART_STATE, "", 0, "not in this server's format");
    expect_corrupt(SG_SESSION_PART_STATE, "{\"json\":1}", 10, "not in this server's format");
    expect_corrupt(SG_SESSION_PART_STATE, "SGSS\x02\x02", 6, "format version 2");
    expect_corrupt(SG_SESSION_PART_STATE, "SGSS\x01\x03", 6, "another part");
    expect_corrupt(SG_SESSION_PART_STATE, "SGSS\x01\x02", 6, "no keyframe gate field");
    expect_corrupt(SG_SESSION_PART_META, "SGSS\x01\x01\x01\x01\x00\x00\x00\x08", 12,
                   "unknown privacy bits");
    expect_corrupt(SG_SESSION_PART_META, "SGSS\x01\x01\x01\x01\x00\x00\x00\x01\x01\x01\x00\x00\x00\x01",
                   18, "repeated");
    expect_corrupt(SG_SESSION_PART_META, "SGSS\x01\x01\x63\x00\x00\x00\x00", 11, "unknown here");
    expect_corrupt(SG_SESSION_PART_RAW, "SGSS\x01\x03\x14\x04\x00\x00\x00\xff\xff\xff\xff", 15,
                   "frame count out of range");
    /* a NaN in the gate, a transcript with a NUL */
    sg_session s = {0};
    sg_privacy all = {true, true, true};
    sg_session_state_init(&s, NULL, &all);
    s.vision.gate.acc = NAN;
    uint8_t *buf;
    size_t len;
    sg_error err = {0};
    CHECK(sg_session_encode(&s, SG_SESSION_PART_STATE, &buf, &len, &err) == SG_OK);
    expect_corrupt(SG_SESSION_PART_STATE, buf, len, "not finite");
    free(buf);
    s.vision.gate.acc = 0;
    sg_session_add_transcript(&s, "abc");
    CHECK(sg_session_encode(&s, SG_SESSION_PART_STATE, &buf, &len, &err) == SG_OK);
    uint8_t *at = memmem(buf, len, "abc", 3);
    CHECK(at != NULL);
    if (at)
        at[1] = 0;
    expect_corrupt(SG_SESSION_PART_STATE, buf, len, "NUL byte");
    free(buf);
    sg_session_state_free(&s);
}

static void test_dat_record(void)
{
    sg_dat_audio_fmt fmt = {SG_AUDIO_PCM_F32LE, 48000, 2};
    float pcm[8] = {0.5f, -0.5f, 0, 1, 0.25f, 0.25f, -1, 0};
    uint8_t *rec;
    size_t len;
    sg_error err = {0};
    CHECK(sg_dat_record_encode(42, &fmt, (const uint8_t *)pcm, sizeof pcm, 1.0 / 12000, &rec, &len,
                               &err) == SG_OK);
    CHECK_EQ_INT((long)len, SG_DAT_RECORD_HEADER + 32);
    double sec;
    memcpy(&sec, rec + 20, 8); /* where the store's scripts read it */
    CHECK(sec == 1.0 / 12000);
    sg_dat_chunk c;
    CHECK(sg_dat_record_decode(rec, len, &c, &err) == SG_OK);
    CHECK(c.seq == 42 && c.len == 32 && c.fmt.format == SG_AUDIO_PCM_F32LE && c.fmt.channels == 2);
    CHECK(c.fmt.sample_rate == 48000 && fabs(c.seconds - 4.0 / 48000) < 1e-12);
    CHECK(memcmp(c.data, pcm, 32) == 0);
    free(c.data);
    /* bad headers and payloads */
    for (size_t n = 0; n <= SG_DAT_RECORD_HEADER; n++)
        CHECK(sg_dat_record_decode(rec, n, &c, &err) == SG_ECORRUPT && !c.data);
    CHECK(sg_dat_record_decode(rec, len - 1, &c, &err) == SG_ECORRUPT); /* not whole frames */
    uint8_t save = rec[6];
    rec[6] = 3;
    CHECK(sg_dat_record_decode(rec, len, &c, &err) == SG_ECORRUPT);
    rec[6] = save;
    rec[4] = 9;
    CHECK(sg_dat_record_decode(rec, len, &c, &err) == SG_ECORRUPT && strstr(err.msg, "version 9"));
    rec[4] = SG_SESSION_CODEC_VERSION;
    float nan = NAN;
    memcpy(rec + SG_DAT_RECORD_HEADER, &nan, 4);
    CHECK(sg_dat_record_decode(rec, len, &c, &err) == SG_ECORRUPT && strstr(err.msg, "non-finite"));
    free(rec);
}

int main(void)
{
    test_roundtrip();
    test_foreign();
    test_dat_record();
    return check_report("test_session_codec");
}
