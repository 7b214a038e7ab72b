/* Unit tests for server/session (the in-process store: table, expiry, cap, privacy-bounded
 * buffers, token bucket), server/dat_state (sequence windows, ordered audio chunks, limits, turns)
 * and server/workq (bounded queue). */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/uuid.h"
#include "check.h"
#include "server/session.h"
#include "server/workq.h"

static void test_table(void)
{
    sg_config cfg;
    sg_config_defaults(&cfg);
    cfg.max_sessions = 3;
    cfg.session_ttl_s = 1;
    sg_session_store *t = sg_session_store_memory_new(&cfg);
    sg_privacy p = {0};
    sg_error err = {0};
    sg_session *s[4];
    for (int i = 0; i < 3; i++) {
        CHECK(sg_session_create(t, &p, &s[i], &err) == SG_OK);
        CHECK(sg_uuid_valid(s[i]->id));
    }
    CHECK(strcmp(s[0]->id, s[1]->id) != 0);
    CHECK(sg_session_create(t, &p, &s[3], &err) == SG_ETOOBIG);
    CHECK(strstr(err.msg, "SG_MAX_SESSIONS") != NULL);
    CHECK_EQ_INT(sg_session_count(t), 3);

    /* lookup is case-insensitive, unknown ids give NULL */
    char upper[37];
    for (int i = 0; i < 37; i++)
        upper[i] = (s[0]->id[i] >= 'a' && s[0]->id[i] <= 'f') ? (char)(s[0]->id[i] - 32) : s[0]->id[i];
    sg_session *g = sg_session_get(t, upper, NULL);
    CHECK(g == s[0]);
    sg_session_release(g);
    CHECK(sg_session_get(t, "nope", NULL) == NULL);
    CHECK(sg_session_get(t, NULL, NULL) == NULL);

    /* delete keeps in-flight references valid */
    sg_session *held = sg_session_get(t, s[1]->id, NULL);
    CHECK(sg_session_delete(t, s[1]->id, NULL));
    CHECK(!sg_session_delete(t, s[1]->id, NULL));
    CHECK(sg_session_get(t, held->id, NULL) == NULL);
    atomic_fetch_add(&held->query_count, 1); /* still usable */
    sg_session_release(held);
    sg_session_release(s[1]);
    CHECK_EQ_INT(sg_session_count(t), 2);

    /* expiry: idle beyond the TTL and not in use */
    sg_session *busy = sg_session_get(t, s[2]->id, NULL);
    sg_session_release(s[0]);
    sg_session_release(s[2]);
    CHECK_EQ_INT(sg_session_expire(t, sg_now_ms()), 0);
    CHECK_EQ_INT(sg_session_expire(t, sg_now_ms() + 5000), 1); /* s[2] is referenced: kept */
    sg_session_release(busy);
    CHECK_EQ_INT(sg_session_expire(t, sg_now_ms() + 5000), 1);
    CHECK_EQ_INT(sg_session_count(t), 0);
    json_t *list = sg_session_list_json(t, NULL);
    CHECK_EQ_INT(json_array_size(list), 0);
    json_decref(list);
    CHECK_EQ_INT(sg_session_created(t), 3);
    sg_session_store_free(t);
}

static void test_buffers(void)
{
    sg_config cfg;
    sg_config_defaults(&cfg);
    cfg.frame_history = 3;
    cfg.frame_max_bytes = 100;
    cfg.audio_max_seconds = 1;
    sg_session_store *t = sg_session_store_memory_new(&cfg);
    sg_error err = {0};
    sg_session *off, *on;
    sg_privacy none = {0}, all = {true, true, true};
    CHECK(sg_session_create(t, &none, &off, &err) == SG_OK);
    CHECK(sg_session_create(t, &all, &on, &err) == SG_OK);
    uint8_t frame[40] = {1};
    float pcm[12000] = {0};

    /* privacy off: nothing raw is kept */
    CHECK(sg_session_keep_frame(off, &cfg, frame, sizeof frame, &err) == SG_OK);
    CHECK_EQ_INT(off->frames_n, 0);
    CHECK(sg_session_keep_audio(off, &cfg, pcm, 12000, &err) == SG_OK);
    CHECK_EQ_INT(off->audio_n, 0);
    sg_session_add_transcript(off, "hello");
    CHECK_EQ_INT(atomic_load(&off->transcript_count), 0);

    /* trim policy: bytes and count bounded, oldest dropped */
    for (int i = 0; i < 5; i++) {
        frame[0] = (uint8_t)i;
        CHECK(sg_session_keep_frame(on, &cfg, frame, sizeof frame, &err) == SG_OK);
    }
    CHECK_EQ_INT(on->frames_n, 2); /* 3 x 40 > 100 bytes */
    CHECK(on->frames_bytes <= 100);
    CHECK_EQ_INT(on->frames[(on->frames_head + 1) % on->frames_cap].data[0], 4);
    for (int i = 0; i < 3; i++)
        CHECK(sg_session_keep_audio(on, &cfg, pcm, 12000, &err) == SG_OK);
    CHECK_EQ_INT(on->audio_n, 16000);
    for (int i = 0; i < 40; i++)
        sg_session_add_transcript(on, "words");
    CHECK_EQ_INT(atomic_load(&on->transcript_count), SG_TRANSCRIPTS_KEPT);

    /* reject policy */
    cfg.frame_policy = SG_POLICY_REJECT;
    cfg.audio_policy = SG_POLICY_REJECT;
    CHECK(sg_session_keep_frame(on, &cfg, frame, sizeof frame, &err) == SG_ETOOBIG);
    CHECK(sg_session_keep_audio(on, &cfg, pcm, 10, &err) == SG_ETOOBIG);
    CHECK(strstr(err.msg, "AUDIO_BUFFER_POLICY") != NULL);
    sg_session_release(off);
    sg_session_release(on);
    sg_session_store_free(t);
}

/* DAT stream state (server/dat_state.h): sequence windows, audio buffering in order, limits,
 * taking a turn; then the same through the store. */
static void test_dat(void)
{
    sg_config cfg;
    sg_config_defaults(&cfg);
    cfg.audio_max_bytes = 1000;
    cfg.audio_max_seconds = 100;
    cfg.audio_policy = SG_POLICY_REJECT;
    sg_dat_state d;
    sg_dat_state_init(&d);
    const sg_dat_ops *ops = &sg_dat_state_ops;
    sg_error err = {0};

    /* window: new, duplicate, out of order, slide, too old */
    CHECK(ops->claim(&d, SG_DAT_IMU, 5) == SG_DAT_NEW);
    CHECK(ops->claim(&d, SG_DAT_IMU, 5) == SG_DAT_DUPLICATE);
    CHECK(ops->claim(&d, SG_DAT_FRAME, 5) == SG_DAT_NEW); /* per chunk type */
    CHECK(ops->claim(&d, SG_DAT_IMU, 3) == SG_DAT_NEW);
    CHECK(ops->claim(&d, SG_DAT_IMU, 3) == SG_DAT_DUPLICATE);
    const long long W = SG_DAT_WINDOW;
    CHECK(ops->claim(&d, SG_DAT_IMU, 5 + W) == SG_DAT_NEW);
    CHECK(ops->claim(&d, SG_DAT_IMU, 5) == SG_DAT_TOO_OLD);
    CHECK(ops->claim(&d, SG_DAT_IMU, 6) == SG_DAT_NEW); /* inside the slid window, never seen */
    CHECK(ops->claim(&d, SG_DAT_IMU, 6 + W) == SG_DAT_NEW); /* 6's slot, reused */
    CHECK(ops->claim(&d, SG_DAT_IMU, 6 + W) == SG_DAT_DUPLICATE);
    CHECK(ops->claim(&d, SG_DAT_IMU, 6) == SG_DAT_TOO_OLD);
    CHECK(ops->claim(&d, SG_DAT_IMU, 6 + 3 * W) == SG_DAT_NEW); /* jump: window cleared */
    CHECK(ops->claim(&d, SG_DAT_IMU, 6 + W) == SG_DAT_TOO_OLD);
    CHECK(ops->claim(&d, SG_DAT_IMU, 6 + 2 * W + 1) == SG_DAT_NEW);
    ops->unclaim(&d, SG_DAT_IMU, 6 + 2 * W + 1);
    CHECK(ops->claim(&d, SG_DAT_IMU, 6 + 2 * W + 1) == SG_DAT_NEW);
    CHECK(ops->claim(&d, SG_DAT_IMU, 6 + 2 * W + 1) == SG_DAT_DUPLICATE);

    sg_dat_turn turn;
    ops->take_turn(&d, &turn, NULL); /* counters start again */
    CHECK_EQ_INT(turn.n, 0);
    CHECK_EQ_INT(turn.duplicates, 7);
    sg_dat_turn_free(&turn);

    /* audio: in sequence order whatever the arrival order; duplicates not buffered */
    sg_dat_audio_fmt f16 = {SG_AUDIO_PCM_S16LE, 16000, 1};
    sg_dat_seen seen;
    sg_dat_stats st;
    long long order[] = {20, 10, 15, 15, 30};
    for (int i = 0; i < 5; i++) {
        uint8_t *chunk = malloc(200);
        memset(chunk, (int)order[i], 200);
        CHECK(ops->add_audio(&d, &cfg, order[i], &f16, chunk, 200, &seen, &st, &err) == SG_OK);
        CHECK(seen == (i == 3 ? SG_DAT_DUPLICATE : SG_DAT_NEW));
    }
    CHECK_EQ_INT(st.chunks, 4);
    CHECK_EQ_INT(st.bytes, 800);
    CHECK_NEAR(st.seconds, 0.025, 1e-12);
    /* reject: 800 + 300 > 1000; a chunk alone over the limit is refused under any policy */
    uint8_t *chunk = malloc(300);
    CHECK(ops->add_audio(&d, &cfg, 40, &f16, chunk, 300, &seen, &st, &err) == SG_ETOOBIG);
    CHECK(strstr(err.msg, "reject") != NULL);
    cfg.audio_policy = SG_POLICY_TRIM;
    chunk = malloc(1002);
    CHECK(ops->add_audio(&d, &cfg, 40, &f16, chunk, 1002, &seen, &st, &err) == SG_ETOOBIG);
    /* trim: the oldest go (the refused number 40 is still free) */
    chunk = malloc(400);
    memset(chunk, 40, 400);
    CHECK(ops->add_audio(&d, &cfg, 40, &f16, chunk, 400, &seen, &st, &err) == SG_OK);
    CHECK(seen == SG_DAT_NEW && st.kept);
    CHECK_EQ_INT(st.trimmed, 1); /* 10 */
    CHECK_EQ_INT(st.chunks, 4);
    CHECK_EQ_INT(st.bytes, 1000);
    /* a late chunk older than everything in a full buffer is the one dropped */
    chunk = malloc(2);
    CHECK(ops->add_audio(&d, &cfg, 12, &f16, chunk, 2, &seen, &st, &err) == SG_OK);
    CHECK(seen == SG_DAT_NEW && !st.kept);
    CHECK_EQ_INT(st.trimmed, 1);
    CHECK_EQ_INT(st.chunks, 4);
    chunk = malloc(2);
    CHECK(ops->add_audio(&d, &cfg, 12, &f16, chunk, 2, &seen, &st, &err) == SG_OK);
    CHECK(seen == SG_DAT_DUPLICATE); /* dropped, but received */
    chunk = malloc(2);
    CHECK(ops->add_audio(&d, &cfg, 1000, &f16, chunk, 2, &seen, &st, &err) == SG_OK);
    CHECK(st.kept);
    CHECK_EQ_INT(st.trimmed, 1); /* 15 */
    CHECK_EQ_INT(st.bytes, 802);

    ops->take_turn(&d, &turn, NULL);
    CHECK_EQ_INT(turn.n, 4);
    CHECK_EQ_INT(turn.chunks[0].seq, 20);
    CHECK_EQ_INT(turn.chunks[0].data[0], 20);
    CHECK_EQ_INT(turn.chunks[1].seq, 30);
    CHECK_EQ_INT(turn.chunks[2].seq, 40);
    CHECK_EQ_INT(turn.chunks[2].data[399], 40);
    CHECK_EQ_INT(turn.chunks[3].seq, 1000);
    CHECK_EQ_INT(turn.bytes, 802);
    CHECK_EQ_INT(turn.duplicates, 2);
    CHECK_EQ_INT(turn.trimmed, 3);
    sg_dat_turn_free(&turn);
    sg_dat_state_stats(&d, &st);
    CHECK_EQ_INT(st.chunks, 0);
    /* after the turn: numbers it consumed (and below) are late, later ones start the next turn */
    chunk = malloc(2);
    CHECK(ops->add_audio(&d, &cfg, 999, &f16, chunk, 2, &seen, &st, &err) == SG_OK);
    CHECK(seen == SG_DAT_DUPLICATE);
    CHECK_EQ_INT(st.chunks, 0);
    chunk = malloc(4);
    sg_dat_audio_fmt st2 = {SG_AUDIO_PCM_S16LE, 8000, 2};
    CHECK(ops->add_audio(&d, &cfg, 1001, &st2, chunk, 4, &seen, &st, &err) == SG_OK);
    CHECK(seen == SG_DAT_NEW);
    CHECK_NEAR(st.seconds, 1.0 / 8000, 1e-12);
    ops->count(&d, SG_DAT_IMU, 12);
    ops->count(&d, SG_DAT_FRAME, 0);
    CHECK(ops->frame_newest(&d, 7));
    CHECK(ops->frame_newest(&d, 7));
    CHECK(!ops->frame_newest(&d, 6));

    /* joining a turn's chunks: runs of one format decoded in one piece, stereo down-mixed */
    int16_t mono[4] = {1000, -1000, 2000, 0}, stereo[4] = {1000, 3000, -2000, -2000};
    float f44[441];
    for (int i = 0; i < 441; i++)
        f44[i] = 0.5f;
    sg_dat_chunk ch[4] = {
        {1, {SG_AUDIO_PCM_S16LE, 16000, 1}, (uint8_t *)mono, 8, 0},
        {2, {SG_AUDIO_PCM_S16LE, 16000, 2}, (uint8_t *)stereo, 8, 0},
        {3, {SG_AUDIO_PCM_S16LE, 16000, 1}, (uint8_t *)mono, 8, 0},
        {4, {SG_AUDIO_PCM_F32LE, 44100, 1}, (uint8_t *)f44, sizeof f44, 0},
    };
    sg_dat_turn jt = {ch, 3, 24, 10.0 / 16000, 0, 0, 0, 0, 0};
    sg_audio a;
    CHECK(sg_dat_turn_audio(&jt, &a, &err) == SG_OK);
    CHECK_EQ_INT(a.n, 10);
    CHECK_NEAR(a.samples[0], 1000 / 32768.0, 1e-7);
    CHECK_NEAR(a.samples[1], -1000 / 32768.0, 1e-7);
    CHECK_NEAR(a.samples[4], 2000 / 32768.0, 1e-7); /* (1000 + 3000) / 2 */
    CHECK_NEAR(a.samples[5], -2000 / 32768.0, 1e-7);
    CHECK_NEAR(a.samples[8], 2000 / 32768.0, 1e-7);
    sg_audio_free(&a);
    jt.n = 4; /* + 10 ms at 44.1 kHz, resampled */
    CHECK(sg_dat_turn_audio(&jt, &a, &err) == SG_OK);
    CHECK(a.n >= 10 + 158 && a.n <= 10 + 162);
    CHECK_NEAR(a.samples[10 + 80], 0.5, 0.02);
    sg_audio_free(&a);
    jt.n = 0;
    CHECK(sg_dat_turn_audio(&jt, &a, &err) == SG_OK);
    CHECK(a.samples == NULL && a.n == 0);

    sg_dat_state_free(&d);

    /* through the store: a session's DAT state, freed at once by deletion even while a request
     * still holds the session */
    sg_session_store *t = sg_session_store_memory_new(&cfg);
    sg_session *s;
    sg_privacy p = {0};
    CHECK(sg_session_create(t, &p, &s, &err) == SG_OK);
    CHECK(s->dat.ops->claim(s->dat.self, SG_DAT_FRAME, 3) == SG_DAT_NEW);
    CHECK(s->dat.ops->claim(s->dat.self, SG_DAT_FRAME, 3) == SG_DAT_DUPLICATE);
    chunk = malloc(4);
    CHECK(s->dat.ops->add_audio(s->dat.self, &cfg, 1, &f16, chunk, 4, &seen, &st, &err) ==
          SG_OK);
    CHECK(seen == SG_DAT_NEW && st.chunks == 1);
    sg_session *held = sg_session_get(t, s->id, NULL);
    CHECK(sg_session_delete(t, s->id, NULL));
    held->dat.ops->take_turn(held->dat.self, &turn, NULL);
    CHECK_EQ_INT(turn.n, 0);
    CHECK_EQ_INT(turn.duplicates, 0); /* the turn's counters went with it */
    sg_dat_turn_free(&turn);
    sg_session_release(held);
    sg_session_release(s);
    sg_session_store_free(t);
}

static void test_rate(void)
{
    sg_config cfg;
    sg_config_defaults(&cfg);
    sg_session_store *t = sg_session_store_memory_new(&cfg);
    sg_privacy p = {0};
    sg_error err = {0};
    sg_session *s;
    CHECK(sg_session_create(t, &p, &s, &err) == SG_OK);
    int retry = 0, ok = 0;
    CHECK(sg_session_rate_ok(s, 0, &retry)); /* off */
    for (int i = 0; i < 10; i++)
        ok += sg_session_rate_ok(s, 2, &retry);
    CHECK_EQ_INT(ok, 4); /* burst = 2 x rate */
    CHECK(retry >= 1);
    struct timespec ts = {0, 600 * 1000 * 1000};
    nanosleep(&ts, NULL);
    CHECK(sg_session_rate_ok(s, 2, &retry)); /* refilled */
    sg_session_release(s);
    sg_session_store_free(t);
}

static atomic_int ran;
static atomic_bool gate_open;

/* Holds its worker until the test opens the gate, so no job can finish (and free a place) while
 * the test counts what the queue accepts, however the threads are scheduled. */
static void gated_job(void *arg)
{
    (void)arg;
    while (!atomic_load(&gate_open)) {
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    atomic_fetch_add(&ran, 1);
}

static void test_workq(void)
{
    sg_workq *q = sg_workq_new(2, 3);
    int accepted = 0;
    for (int i = 0; i < 10; i++)
        accepted += sg_workq_submit(q, gated_job, NULL);
    CHECK_EQ_INT(accepted, 5); /* 2 running + 3 waiting */
    atomic_store(&gate_open, true);
    sg_workq_free(q);          /* runs what was accepted */
    CHECK_EQ_INT(atomic_load(&ran), 5);
}

int main(void)
{
    test_table();
    test_buffers();
    test_dat();
    test_rate();
    test_workq();
    return check_report("test_session");
}
