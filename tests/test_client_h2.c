/* libsgclient over HTTP/2 through the cluster's nginx (scripts/cluster.sh: TLS with a self-signed
 * certificate, HTTP/2 and HTTP/1.1 by ALPN, one sg-edge instance with slowed-down work): the client
 * negotiates HTTP/2; requests made one after another share one connection; frames and audio
 * chunks uploaded at the same time from four threads through one sg_client run side by side as
 * streams of that one connection (nginx's access log: one $connection, overlapping times), where
 * HTTP/1.1 needs a connection each; the certificate is checked (no CA file: refused; --insecure:
 * accepted). Also checks cluster.sh up / status / down. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sgclient.h"
#include "sgtest_cluster.h"
#include "sgtest_proc.h"

#define THREADS 4

typedef struct upload_job {
    sg_client *client;
    char sid[SG_CLIENT_SESSION_ID_SIZE];
    const uint8_t *data;
    size_t len;
    bool audio;
    pthread_barrier_t *start;
    sg_client_status st;
    int status;
} upload_job;

static void *upload_thread(void *arg)
{
    upload_job *j = arg;
    sg_client_result r;
    pthread_barrier_wait(j->start);
    j->st = j->audio ? sg_client_upload_audio(j->client, j->sid, j->data, j->len, &r)
                     : sg_client_upload_frame(j->client, j->sid, j->data, j->len, &r);
    j->status = r.status;
    sg_client_result_clear(&r);
    return NULL;
}

/* Four uploads at once (two frames, two audio chunks) on four sessions through one client. */
static void upload_together(sg_client *c, char sids[THREADS][SG_CLIENT_SESSION_ID_SIZE],
                            const uint8_t *jpeg, size_t jpeg_len, const uint8_t *wav, size_t wav_len)
{
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, THREADS);
    upload_job jobs[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        jobs[i] = (upload_job){.client = c, .audio = i >= 2, .start = &start};
        snprintf(jobs[i].sid, sizeof jobs[i].sid, "%s", sids[i]);
        jobs[i].data = jobs[i].audio ? wav : jpeg;
        jobs[i].len = jobs[i].audio ? wav_len : jpeg_len;
        pthread_create(&th[i], NULL, upload_thread, &jobs[i]);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        /* without an ASR model audio is answered 503 MODEL_UNAVAILABLE: an answer all the same */
        CHECK_MSG(jobs[i].audio ? jobs[i].status == 200 || jobs[i].status == 503
                                : jobs[i].st == SG_CLIENT_OK,
                  "upload %d: %s, HTTP %d", i, sg_client_status_name(jobs[i].st), jobs[i].status);
    }
    pthread_barrier_destroy(&start);
}

/* An access log request line "POST /sessions/ID/frame HTTP/2.0" of an upload. */
static bool is_upload(const char *request)
{
    return strncmp(request, "POST ", 5) == 0 && (strstr(request, "/frame ") || strstr(request, "/audio "));
}

static sg_client *new_client(const sgt_cluster *cl, const char *ca, bool verify)
{
    sg_client_config cfg;
    sg_client_config_default(&cfg, cl->url);
    cfg.retry.max_attempts = 1;
    char err[SG_CLIENT_ERROR_SIZE];
    sg_client *c = NULL;
    CHECK(sg_client_new(&cfg, &c, err) == SG_CLIENT_OK);
    if (c && (ca || !verify))
        CHECK(sg_client_set_tls(c, ca, verify, err) == SG_CLIENT_OK);
    return c;
}

int main(void)
{
    size_t jpeg_len = 0;
    uint8_t *jpeg = (uint8_t *)sgt_read_file("../shared/data/images/coffee.jpg", &jpeg_len);
    /* one second of silence as a WAV audio chunk */
    int16_t pcm[16000] = {0};
    static uint8_t wav[44 + sizeof pcm];
    size_t wav_len = sg_wav_pcm16(pcm, 16000, 16000, wav);
    CHECK(jpeg != NULL);

    /* Slow work makes the four uploads overlap for certain; four workers run them in parallel. */
    static const char *env[] = {"SG_WORKERS=4", "SG_DEBUG_WORK_DELAY_MS=300", NULL};
    sgt_cluster cl;
    if (sgt_cluster_up(&cl, 1, env) != 0) {
        CHECK_MSG(false, "the cluster did not start (nginx, redis-server, openssl installed? "
                         "scripts/deps.sh)");
        sgt_cluster_down(&cl);
        free(jpeg);
        return check_report("test_client_h2");
    }
    CHECK_EQ_INT(sgt_cluster_run(&cl, "status", ">/dev/null"), 0);

    /* HTTP/2, one connection for requests made one after another */
    sg_client *c = new_client(&cl, cl.ca, true);
    char sids[THREADS][SG_CLIENT_SESSION_ID_SIZE];
    for (int i = 0; i < THREADS; i++) {
        sg_client_result r;
        CHECK(sg_client_create_session(c, sids[i], &r) == SG_CLIENT_OK);
        sg_client_result_clear(&r);
    }
    CHECK_MSG(strcmp(sg_client_http_version(c), "2") == 0, "HTTP version '%s', want 2",
              sg_client_http_version(c));
    CHECK_EQ_INT((int)sg_client_connections(c), 1);

    /* four uploads at once: streams of that same connection */
    upload_together(c, sids, jpeg, jpeg_len, wav, wav_len);
    CHECK_MSG(sg_client_connections(c) == 1, "%llu connections after concurrent uploads, want 1",
              (unsigned long long)sg_client_connections(c));
    /* nginx logs a request after its answer has left: wait (at most 5 s) for the four lines */
    static char lines[64][512];
    char conn0[32] = "", f[160];
    int n = 0, uploads = 0;
    for (int tries = 0; tries < 100; tries++) {
        n = sgt_cluster_log_lines(&cl, 3, "HTTP/2.0", lines, 64);
        uploads = 0;
        for (int i = 0; i < n; i++)
            uploads += is_upload(sgt_log_field(lines[i], 4, f, sizeof f));
        if (uploads >= THREADS)
            break;
        sgt_sleep_ms(50);
    }
    uploads = 0;
    double latest_start = 0, earliest_end = 1e300;
    for (int i = 0; i < n; i++) {
        if (!is_upload(sgt_log_field(lines[i], 4, f, sizeof f)))
            continue;
        uploads++;
        char conn[32], proto[32], end_s[32], took_s[32];
        sgt_log_field(lines[i], 2, conn, sizeof conn);
        CHECK_MSG(strcmp(sgt_log_field(lines[i], 3, proto, sizeof proto), "HTTP/2.0") == 0,
                  "upload over %s", proto);
        if (!conn0[0])
            snprintf(conn0, sizeof conn0, "%s", conn);
        CHECK_MSG(strcmp(conn, conn0) == 0, "uploads on nginx connections %s and %s", conn0, conn);
        double end = atof(sgt_log_field(lines[i], 0, end_s, sizeof end_s));
        double start = end - atof(sgt_log_field(lines[i], 1, took_s, sizeof took_s));
        latest_start = start > latest_start ? start : latest_start;
        earliest_end = end < earliest_end ? end : earliest_end;
    }
    CHECK_EQ_INT(uploads, THREADS);
    /* every upload was in flight while every other was: they ran side by side */
    CHECK_MSG(latest_start < earliest_end, "uploads did not overlap: last start %.3f, first end %.3f",
              latest_start, earliest_end);
    sg_client_free(c);

    /* the same over HTTP/1.1: a connection per concurrent request */
    c = new_client(&cl, cl.ca, true);
    sg_client_set_http(c, SG_CLIENT_HTTP_1_1);
    upload_together(c, sids, jpeg, jpeg_len, wav, wav_len);
    CHECK_MSG(strcmp(sg_client_http_version(c), "1.1") == 0, "HTTP version '%s', want 1.1",
              sg_client_http_version(c));
    CHECK_MSG(sg_client_connections(c) >= 2, "%llu connections for concurrent HTTP/1.1 uploads",
              (unsigned long long)sg_client_connections(c));
    sg_client_free(c);

    /* the certificate is verified: not trusted without the CA file, accepted with verify off */
    c = new_client(&cl, NULL, true);
    sg_client_result r;
    char sid[SG_CLIENT_SESSION_ID_SIZE];
    CHECK(sg_client_create_session(c, sid, &r) == SG_CLIENT_GAVE_UP);
    CHECK_EQ_INT(r.status, 0);
    CHECK_MSG(strstr(r.detail, "SSL") || strstr(r.detail, "certificate"), "detail: %s", r.detail);
    sg_client_result_clear(&r);
    sg_client_free(c);
    c = new_client(&cl, NULL, false);
    CHECK(sg_client_create_session(c, sid, &r) == SG_CLIENT_OK);
    sg_client_result_clear(&r);
    CHECK(strcmp(sg_client_http_version(c), "2") == 0);
    sg_client_free(c);

    CHECK_EQ_INT(sgt_cluster_down(&cl), 0);
    /* down stopped nginx: its port refuses connections */
    sgt_server gone = {.port = cl.port};
    snprintf(gone.base, sizeof gone.base, "http://127.0.0.1:%d", cl.port);
    sgt_resp g = sgt_get(&gone, "/health");
    CHECK_EQ_INT((int)g.status, 0);
    sgt_resp_free(&g);
    free(jpeg);
    return check_report("test_client_h2");
}
