/* Unit tests for server/session and server/workq: table, expiry, cap, privacy-bounded buffers,
 * token bucket, bounded queue. */
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
    sg_session_table *t = sg_session_table_new(&cfg);
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
    sg_session *g = sg_session_get(t, upper);
    CHECK(g == s[0]);
    sg_session_release(g);
    CHECK(sg_session_get(t, "nope") == NULL);
    CHECK(sg_session_get(t, NULL) == NULL);

    /* delete keeps in-flight references valid */
    sg_session *held = sg_session_get(t, s[1]->id);
    CHECK(sg_session_delete(t, s[1]->id));
    CHECK(!sg_session_delete(t, s[1]->id));
    CHECK(sg_session_get(t, held->id) == NULL);
    atomic_fetch_add(&held->query_count, 1); /* still usable */
    sg_session_release(held);
    sg_session_release(s[1]);
    CHECK_EQ_INT(sg_session_count(t), 2);

    /* expiry: idle beyond the TTL and not in use */
    sg_session *busy = sg_session_get(t, s[2]->id);
    sg_session_release(s[0]);
    sg_session_release(s[2]);
    CHECK_EQ_INT(sg_session_expire(t, sg_now_ms()), 0);
    CHECK_EQ_INT(sg_session_expire(t, sg_now_ms() + 5000), 1); /* s[2] is referenced: kept */
    sg_session_release(busy);
    CHECK_EQ_INT(sg_session_expire(t, sg_now_ms() + 5000), 1);
    CHECK_EQ_INT(sg_session_count(t), 0);
    json_t *list = sg_session_list_json(t);
    CHECK_EQ_INT(json_array_size(list), 0);
    json_decref(list);
    CHECK_EQ_INT(sg_session_created(t), 3);
    sg_session_table_free(t);
}

static void test_buffers(void)
{
    sg_config cfg;
    sg_config_defaults(&cfg);
    cfg.frame_history = 3;
    cfg.frame_max_bytes = 100;
    cfg.audio_max_seconds = 1;
    sg_session_table *t = sg_session_table_new(&cfg);
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
    sg_session_table_free(t);
}

static void test_rate(void)
{
    sg_config cfg;
    sg_config_defaults(&cfg);
    sg_session_table *t = sg_session_table_new(&cfg);
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
    sg_session_table_free(t);
}

static atomic_int ran;
static void slow_job(void *arg)
{
    (void)arg;
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
    atomic_fetch_add(&ran, 1);
}

static void test_workq(void)
{
    sg_workq *q = sg_workq_new(2, 3);
    int accepted = 0;
    for (int i = 0; i < 10; i++)
        accepted += sg_workq_submit(q, slow_job, NULL);
    CHECK_EQ_INT(accepted, 5); /* 2 running + 3 waiting */
    sg_workq_free(q);          /* runs what was accepted */
    CHECK_EQ_INT(atomic_load(&ran), 5);
}

int main(void)
{
    test_table();
    test_buffers();
    test_rate();
    test_workq();
    return check_report("test_session");
}
