/* Tests of `sg stream` (the glasses simulator) against a real sg-edge, a few simulated seconds at
 * 10x speed: the JSON report's fields are present and add up (captured = pre-filter skipped +
 * budget skipped + encoded + encode errors,
 * encoded = sent + failed + abandoned + dropped + unsent, audio never dropped, every question
 * answered with a latency), the battery bands give the controller's rates (10 % -> 1 fps), the
 * pre-filter agrees with the server's gate in shadow mode, a Y4M clip works as the camera, the
 * defaults (Opus audio, the upload budget, the client-keyframe hint: the server analyses every
 * frame sent) keep the upload within the budget and lose no audio, a tight budget skips frames but
 * never audio, FLAC chunks work, and bad arguments or an unreachable server give clear errors. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "sgtest_cli.h"
#include "sgtest_http.h"

static json_t *stream_json(const sgt_server *srv, const char *extra)
{
    char cmd[1024], *out;
    snprintf(cmd, sizeof cmd,
             SG_CLI_BIN " stream --server %s --frames ../shared/data/images --speed 10 --json %s",
             srv->base, extra);
    int rc = sgt_run(cmd, &out);
    CHECK_MSG(rc == 0, "exit %d: %s", rc, cmd);
    json_t *j = json_loads(out, 0, NULL);
    CHECK_MSG(j != NULL, "not JSON: %s", out);
    free(out);
    return j;
}

static double reports_total(const sgt_server *srv)
{
    sgt_resp r = sgt_get(srv, "/metrics/prometheus");
    const char *p = r.body ? strstr(r.body, "\nsmartglass_client_reports_total ") : NULL;
    double v = p ? strtod(p + strlen("\nsmartglass_client_reports_total "), NULL) : -1;
    sgt_resp_free(&r);
    return v;
}

static long long geti(json_t *j, const char *a, const char *b)
{
    json_t *o = b ? json_object_get(json_object_get(j, a), b) : json_object_get(j, a);
    CHECK_MSG(json_is_integer(o), "%s.%s missing or not an integer", a, b ? b : "");
    return (long long)json_integer_value(o);
}

static double getn(json_t *j, const char *a, const char *b)
{
    json_t *o = b ? json_object_get(json_object_get(j, a), b) : json_object_get(j, a);
    CHECK_MSG(json_is_number(o), "%s.%s missing or not a number", a, b ? b : "");
    return json_number_value(o);
}

/* The accounting identities every report must satisfy. */
static void check_consistent(json_t *j)
{
    long long captured = geti(j, "frames", "captured");
    CHECK_EQ_INT(captured, geti(j, "controller", "captured"));
    CHECK_EQ_INT(captured, geti(j, "frames", "prefilter_skipped") + geti(j, "frames", "budget_skipped") +
                               geti(j, "frames", "encoded") + geti(j, "frames", "encode_errors"));
    CHECK_EQ_INT(geti(j, "frames", "encoded"),
                 geti(j, "frames", "sent") + geti(j, "frames", "failed") + geti(j, "frames", "abandoned") +
                     geti(j, "frames", "dropped") + geti(j, "frames", "unsent"));
    CHECK_EQ_INT(geti(j, "frames", "sent"),
                 geti(j, "frames", "server_keyframes") + geti(j, "frames", "server_skipped"));
    CHECK_EQ_INT(geti(j, "audio", "dropped"), 0);
    CHECK_EQ_INT(geti(j, "audio", "chunks"),
                 geti(j, "audio", "sent") + geti(j, "audio", "failed") + geti(j, "audio", "unsent"));
    CHECK_EQ_INT(geti(j, "audio", "sent"),
                 geti(j, "audio", "transcribed") + geti(j, "audio", "not_transcribed"));
    CHECK_EQ_INT(geti(j, "queries", "asked"), geti(j, "queries", "answered") +
                                                  geti(j, "queries", "failed") + geti(j, "queries", "unsent"));
    CHECK_EQ_INT(geti(j, "turn_latency_ms", "count"), geti(j, "queries", "answered"));
    CHECK_EQ_INT(geti(j, "camera", "frames"), (long long)(getn(j, "duration_s", NULL) * 30 + 0.5));
}

int main(void)
{
    sgt_server srv;
    CHECK(sgt_start(&srv, NULL, NULL) == 0);

    /* full battery, audio as WAV, no budget (the pre-budget behaviour), a question every 2 s, 6
     * simulated seconds */
    json_t *j = stream_json(&srv, "--audio ../shared/data/audio/jfk.wav --duration 6 --question-every 2 "
                                  "--audio-codec pcm --upload-budget 0");
    if (j) {
        check_consistent(j);
        CHECK_NEAR(getn(j, "duration_s", NULL), 6.0, 1e-9);
        CHECK(geti(j, "frames", "sent") > 0);
        CHECK(geti(j, "frames", "prefilter_skipped") > 0); /* the gate holds still frames back */
        CHECK(geti(j, "frames", "failed") == 0 && geti(j, "frames", "dropped") == 0);
        double fps = getn(j, "controller", "effective_fps");
        CHECK_MSG(fps >= 9.9 && fps <= 15.0, "effective fps %g at full battery (MEDIUM 10, x1.5 on cuts)", fps);
        CHECK(getn(json_object_get(j, "controller"), "mode_seconds", "MEDIUM") == 6.0);
        CHECK_EQ_INT(geti(j, "audio", "chunks"), 5); /* at 1, 2, ..., 5 s */
        CHECK_EQ_INT(geti(j, "audio", "failed"), 0);
        CHECK_EQ_INT(geti(j, "queries", "asked"), 2); /* at 2 and 4 s */
        CHECK_EQ_INT(geti(j, "queries", "answered"), 2);
        double p50 = getn(j, "turn_latency_ms", "p50"), p95 = getn(j, "turn_latency_ms", "p95");
        CHECK(p50 > 0 && p95 >= p50);
        CHECK(getn(j, "upload", "kb_per_min") > 0);
        CHECK(getn(j, "upload", "frames_kb_per_min") > 0 && getn(j, "upload", "audio_kb_per_min") > 0);
        /* 1 s of 16 kHz s16 mono = 32044 bytes of WAV a chunk, plus headers */
        CHECK(getn(j, "upload", "audio_kb_per_min") * 6.0 / 60.0 * 1024.0 > 5 * 32044.0);
        CHECK(getn(j, "frames", "jpeg_quality_avg") == 85.0);
        CHECK_EQ_INT(geti(j, "frames", "upload_width"), 640);
        json_t *pm = json_object_get(json_object_get(j, "upload"), "per_minute");
        CHECK(json_array_size(pm) == 1);
        CHECK_NEAR(getn(json_array_get(pm, 0), "kb", NULL) / 6.0 * 60.0, getn(j, "upload", "kb_per_min"), 0.5);
        CHECK(geti(j, "http", "retries") == 0);
        CHECK_EQ_INT(geti(j, "frames", "budget_skipped"), 0);
        CHECK(json_is_null(json_object_get(json_object_get(j, "budget"), "kb_per_min")));
        /* the pre-filter's frames go up with the hint: the server analyses every one */
        CHECK_EQ_INT(geti(j, "frames", "server_keyframes"), geti(j, "frames", "sent"));
        CHECK_EQ_INT(geti(j, "frames", "hinted"), geti(j, "frames", "sent"));
        json_decref(j);
    }

    /* the defaults: Opus chunks, the 600 KB/min budget at full battery, 20 simulated seconds */
    j = stream_json(&srv, "--audio ../shared/data/audio/jfk.wav --duration 20 --question-every 5");
    if (j) {
        check_consistent(j);
        json_t *a = json_object_get(j, "audio");
        CHECK(strcmp(json_string_value(json_object_get(a, "codec")), "opus") == 0);
        CHECK_EQ_INT(geti(j, "audio", "chunks"), 19);
        CHECK_EQ_INT(geti(j, "audio", "failed") + geti(j, "audio", "unsent"), 0);
        double kbc = getn(j, "audio", "kb_per_chunk");
        CHECK_MSG(kbc > 1.0 && kbc < 4.0, "%g KB per 1 s Opus chunk", kbc);
        CHECK(getn(j, "budget", "kb_per_min") == 600 && getn(j, "budget", "burst_kb") == 60);
        /* the budget's contract (sgclient_policy.h): a frame goes only if it fits the bucket,
         * which starts with burst_kb and refills at kb_per_min - burst_kb a minute of the
         * simulated clock (the camera's, however slow the machine), so the upload over duration_s
         * is at most burst + refill x duration: 240 KB here. Audio and questions overdraw the
         * bucket only when they alone outrun the refill (3 KB/s of Opus does not), and each
         * upload's real headers weigh less than the SG_BUDGET_OVERHEAD_BYTES charged for it, so
         * the correction after it gives bytes back. 0.01 KB: the report's rounding. */
        double kb = getn(j, "upload", "kb_total"), dur = getn(j, "duration_s", NULL);
        double burst = getn(j, "budget", "burst_kb"), kb_per_min = getn(j, "budget", "kb_per_min");
        double allowed = burst + (kb_per_min - burst) * dur / 60.0;
        CHECK_MSG(kb <= allowed + 0.01, "%g KB in %g s, the budget allows %g KB", kb, dur, allowed);
        CHECK(geti(j, "frames", "sent") >= 3);
        CHECK_EQ_INT(geti(j, "frames", "server_keyframes"), geti(j, "frames", "sent"));
        CHECK_EQ_INT(geti(j, "frames", "server_skipped"), 0);
        double q = getn(j, "frames", "jpeg_quality_avg");
        CHECK_MSG(q >= 40 && q <= 85, "quality %g", q);
        json_decref(j);
    }

    /* a budget that WAV audio alone overspends: frames are skipped, audio is all sent */
    j = stream_json(&srv, "--audio ../shared/data/audio/jfk.wav --duration 6 --question-every 0 "
                          "--audio-codec pcm --upload-budget 300");
    if (j) {
        check_consistent(j);
        CHECK(getn(j, "budget", "kb_per_min") == 300);
        CHECK(geti(j, "frames", "budget_skipped") > 0);
        CHECK(geti(j, "frames", "sent") <= 1); /* the first frame may use the 48 KB burst */
        CHECK_EQ_INT(geti(j, "audio", "chunks"), 5);
        CHECK_EQ_INT(geti(j, "audio", "sent"), 5);
        json_decref(j);
    }

    /* FLAC chunks; a budget given explicitly */
    j = stream_json(&srv, "--audio ../shared/data/audio/jfk.wav --duration 3 --question-every 0 "
                          "--audio-codec flac --upload-budget 2000 --battery 25");
    if (j) {
        check_consistent(j);
        CHECK(strcmp(json_string_value(json_object_get(json_object_get(j, "audio"), "codec")), "flac") == 0);
        CHECK_EQ_INT(geti(j, "audio", "sent"), 2);
        CHECK(getn(j, "budget", "kb_per_min") == 2000);
        json_decref(j);
    }

    /* battery 10 %: MINIMAL, 1 fps, JPEG quality 60; its telemetry (battery 10, charging) rides on
     * its first upload and the server counts it (the session is deleted at the end, so the band's
     * gauges are back at 0: the report counter says it came) */
    const double reports0 = reports_total(&srv);
    j = stream_json(&srv, "--battery 10 --duration 6 --question-every 0 --charging");
    CHECK_MSG(reports_total(&srv) >= reports0 + 1, "sg stream sent no telemetry (%g -> %g)",
              reports0, reports_total(&srv));
    if (j) {
        check_consistent(j);
        CHECK_EQ_INT(geti(j, "frames", "captured"), 6);
        CHECK_NEAR(getn(j, "controller", "effective_fps"), 1.0, 1e-9);
        CHECK(getn(json_object_get(j, "controller"), "mode_seconds", "MINIMAL") == 6.0);
        if (geti(j, "frames", "encoded") > 0)
            CHECK(getn(j, "frames", "jpeg_quality_avg") <= 60.0); /* 60, lower if the budget says so */
        CHECK(getn(j, "budget", "kb_per_min") == 300);
        CHECK_EQ_INT(geti(j, "audio", "chunks"), 0);
        json_decref(j);
    }

    /* battery 45 %, nobody asks anything: LOW (5 fps), boosted to 7.5 for a second after the cut at
     * 4 s; quality 75 */
    j = stream_json(&srv, "--battery 45 --duration 6 --question-every 0 --upload-budget 0");
    if (j) {
        check_consistent(j);
        double fps = getn(j, "controller", "effective_fps");
        CHECK_MSG(fps >= 5.0 && fps <= 5.6, "effective fps %g at 45 %% idle", fps);
        CHECK(getn(json_object_get(j, "controller"), "mode_seconds", "LOW") == 6.0);
        CHECK(getn(j, "frames", "jpeg_quality_avg") == 75.0);
        json_decref(j);
    }

    /* shadow mode: every captured frame is uploaded and the pre-filter's decision compared with the
     * server's gate on the same stream (a queue that holds them all: on a loaded machine the
     * uploader can lag at 10x, and a frame dropped from a full queue changes what the gate sees) */
    j = stream_json(&srv, "--duration 4 --question-every 0 --prefilter shadow --upload-budget 0 --queue 128");
    if (j) {
        check_consistent(j);
        CHECK_EQ_INT(geti(j, "frames", "prefilter_skipped"), 0);
        CHECK_EQ_INT(geti(j, "frames", "sent"), geti(j, "frames", "captured"));
        json_t *agree = json_object_get(json_object_get(j, "frames"), "prefilter_agreement");
        CHECK_MSG(json_is_number(agree) && json_number_value(agree) >= 0.95, "agreement %g",
                  json_number_value(agree));
        json_decref(j);
    }

    /* a Y4M clip as the camera: a bright square moving across a grey 4:2:0 64x48 picture, 15 fps */
    char y4m[] = "/tmp/sg_stream_test_XXXXXX.y4m";
    int fd = mkstemps(y4m, 4);
    CHECK(fd >= 0);
    FILE *f = fdopen(fd, "wb");
    fprintf(f, "YUV4MPEG2 W64 H48 F15:1 Ip A1:1 C420jpeg\n");
    static uint8_t planes[64 * 48 + 2 * 32 * 24];
    for (int k = 0; k < 20; k++) {
        memset(planes, 128, sizeof planes);
        for (int y = 16; y < 32; y++)
            for (int x = 0; x < 16; x++)
                planes[y * 64 + (x + k * 3) % 64] = 235;
        fprintf(f, "FRAME\n");
        fwrite(planes, 1, sizeof planes, f);
    }
    fclose(f);
    char extra[256];
    snprintf(extra, sizeof extra, "--duration 3 --question-every 1 --size 0 --frames %s", y4m);
    j = stream_json(&srv, extra); /* the later --frames wins */
    if (j) {
        check_consistent(j);
        CHECK(strcmp(json_string_value(json_object_get(json_object_get(j, "camera"), "source")), "y4m") == 0);
        CHECK_EQ_INT(geti(j, "camera", "width"), 64);
        CHECK_EQ_INT(geti(j, "frames", "upload_width"), 64);
        CHECK(geti(j, "frames", "sent") >= 2); /* the moving square makes keyframes */
        CHECK_EQ_INT(geti(j, "queries", "answered"), 2);
        json_decref(j);
    }

    /* the text report */
    char cmd[1024], *out;
    snprintf(cmd, sizeof cmd, SG_CLI_BIN " stream --server %s --frames %s --duration 1 --speed 10", srv.base, y4m);
    CHECK_EQ_INT(sgt_run(cmd, &out), 0);
    CHECK(strstr(out, "fps effective") && strstr(out, "KB/min") && strstr(out, "latency p50"));
    free(out);
    unlink(y4m);

    /* bad arguments: exit 2 with a message that names what is wrong; an unreachable server: exit 1 */
    CHECK_EQ_INT(sgt_run(SG_CLI_BIN " stream --frames ../shared/data/images 2>/dev/null", &out), 2);
    free(out);
    static const struct {
        const char *args, *says; /* says NULL: any message */
    } bad[] = {
        {"--frames /nonexistent/dir", "/nonexistent/dir"},
        {"--frames ../shared/data/images --battery 120", "--battery"},
        {"--frames ../shared/data/images --audio-codec mp3", "--audio-codec"},
        {"--frames ../shared/data/images --upload-budget -5", "--upload-budget"},
        {"--frames ../shared/data/images --audio ../shared/data/images/text.jpg", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(cmd, sizeof cmd, SG_CLI_BIN " stream --server %s %s 2>&1", srv.base, bad[i].args);
        CHECK_EQ_INT(sgt_run(cmd, &out), 2);
        CHECK_MSG(!bad[i].says || strstr(out, bad[i].says), "%s: %s", bad[i].args, out);
        free(out);
    }
    snprintf(cmd, sizeof cmd, SG_CLI_BIN " stream --server http://127.0.0.1:%d --frames ../shared/data/images --speed 100 2>&1",
             sgt_free_port());
    CHECK_EQ_INT(sgt_run(cmd, &out), 1);
    CHECK(strstr(out, "cannot create a session") != NULL);
    free(out);

    sgt_stop(&srv, SIGTERM);
    return check_report("test_cli_stream");
}
