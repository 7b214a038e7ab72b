/* Client telemetry end to end (issue 13): the X-Client-Telemetry parser (every refusal), the
 * server's table of reports (bands, means, the window, forgetting a deleted session, eviction at
 * capacity), libsgclient's header and usage meter on a fake clock, and the real sg-edge: a report
 * on a frame upload shows in /metrics/prometheus by battery band, a malformed one is a 422 JSON
 * error that leaves the table as it was, a deleted session stops counting, and an sg_client with
 * a battery level sends its report on a session route once per interval (never on POST /sessions). */
#include <math.h>
#include <string.h>

#include "check.h"
#include "server/telemetry.h"
#include "sgclient.h"
#include "sgtest_http.h"

static sg_status parse(const char *s, sg_client_report *r)
{
    sg_error err = {0};
    sg_status st = sg_client_report_parse(s, strlen(s), r, &err);
    CHECK_MSG(st == SG_OK || err.msg[0], "%s: a refusal without a reason", s);
    return st;
}

static void check_parser(void)
{
    sg_client_report r;
    CHECK(parse("battery=72.5; charging=1; fps=9.8; upload_kb_per_min=412; memory=18350080", &r) ==
          SG_OK);
    CHECK_NEAR(r.battery_pct, 72.5, 1e-9);
    CHECK_EQ_INT(r.charging, 1);
    CHECK_NEAR(r.fps, 9.8, 1e-9);
    CHECK_NEAR(r.upload_kb_per_min, 412, 1e-9);
    CHECK_NEAR(r.memory_bytes, 18350080, 1e-3);
    /* only the battery is required; the rest unknown; ',' separates too; spaces and empty pairs */
    CHECK(parse(" battery = 10 ,, ", &r) == SG_OK);
    CHECK(r.battery_pct == 10 && r.charging == -1 && r.fps < 0 && r.upload_kb_per_min < 0 &&
          r.memory_bytes < 0);
    CHECK(parse("BATTERY=0;Charging=false;future_key=whatever", &r) == SG_OK);
    CHECK(r.battery_pct == 0 && r.charging == 0);
    CHECK(parse("battery=100;memory=1e6", &r) == SG_OK && r.memory_bytes == 1e6);

    static const char *const bad[] = {
        "",                      /* no battery */
        "fps=10",                /* no battery */
        "battery=101",           /* out of range */
        "battery=-1",
        "battery=nan",           /* not a number here */
        "battery=inf",
        "battery=0x10",
        "battery=1e999",         /* not finite */
        "battery=",              /* empty */
        "battery=5 5",
        "battery=50;battery=60", /* twice */
        "battery=50;charging=2",
        "battery=50;charging=1;charging=0",
        "battery=50;fps=-1",
        "battery=50;fps=1001",
        "battery=50;upload_kb_per_min=2e6",
        "battery=50;memory=1e13",
        "battery=50;fps",        /* no '=' */
        "battery=50;a=1;b=1;c=1;d=1;e=1;f=1;g=1;h=1;i=1;j=1;k=1;l=1;m=1;n=1;o=1;p=1", /* 17 pairs */
        NULL};
    for (int i = 0; bad[i]; i++)
        CHECK_MSG(parse(bad[i], &r) == SG_EINVAL, "accepted \"%s\"", bad[i]);
    char huge[SG_TELEMETRY_MAX_BYTES + 2];
    memset(huge, ' ', sizeof huge - 1);
    memcpy(huge, "battery=5;", 10);
    huge[sizeof huge - 1] = 0;
    CHECK(parse(huge, &r) == SG_EINVAL);
    /* a header with a NUL inside is cut at the length given, never read past it */
    sg_error err = {0};
    CHECK(sg_client_report_parse("battery=5\0;x", 9, &r, &err) == SG_OK && r.battery_pct == 5);

    CHECK_EQ_INT(sg_battery_band_of(19.9), SG_BAND_LOW);
    CHECK_EQ_INT(sg_battery_band_of(20), SG_BAND_MID);
    CHECK_EQ_INT(sg_battery_band_of(49.9), SG_BAND_MID);
    CHECK_EQ_INT(sg_battery_band_of(50), SG_BAND_HIGH);
    CHECK(strcmp(sg_battery_band_name(SG_BAND_HIGH), "high") == 0);
}

static void check_table(void)
{
    sg_telemetry *t = sg_telemetry_new(64, 300);
    CHECK(t != NULL);
    sg_client_report a = {80, 1, 10, 400, 1e8}, b = {60, 0, 20, -1, 3e8}, c = {10, -1, -1, 100, -1};
    sg_telemetry_report(t, "s-a", &a, 1000);
    sg_telemetry_report(t, "s-b", &b, 1001);
    sg_telemetry_report(t, "s-c", &c, 1002);
    sg_telemetry_snapshot s;
    sg_telemetry_snapshot_at(t, 1010, &s);
    CHECK_EQ_INT(s.band[SG_BAND_HIGH].sessions, 2);
    CHECK_NEAR(s.band[SG_BAND_HIGH].battery_sum / 2, 70, 1e-9);
    CHECK_EQ_INT(s.band[SG_BAND_HIGH].fps_n, 2);
    CHECK_NEAR(s.band[SG_BAND_HIGH].fps_sum, 30, 1e-9);
    CHECK_EQ_INT(s.band[SG_BAND_HIGH].upload_n, 1); /* b did not say */
    CHECK_EQ_INT(s.band[SG_BAND_LOW].sessions, 1);
    CHECK_EQ_INT(s.band[SG_BAND_MID].sessions, 0);
    CHECK_EQ_INT(s.charging, 1);
    CHECK_EQ_INT(s.memory_n, 2);
    CHECK_NEAR(s.memory_max, 3e8, 1);
    CHECK_EQ_INT(s.reports, 3);
    /* a new report replaces the session's last: a moves to the low band */
    a.battery_pct = 15;
    sg_telemetry_report(t, "s-a", &a, 1020);
    sg_telemetry_snapshot_at(t, 1020, &s);
    CHECK_EQ_INT(s.band[SG_BAND_HIGH].sessions, 1);
    CHECK_EQ_INT(s.band[SG_BAND_LOW].sessions, 2);
    /* forgotten, and out of the window */
    sg_telemetry_forget(t, "s-c");
    sg_telemetry_snapshot_at(t, 1305, &s); /* b reported at 1001: 304 s ago */
    CHECK_EQ_INT(s.band[SG_BAND_HIGH].sessions, 0);
    CHECK_EQ_INT(s.band[SG_BAND_LOW].sessions, 1); /* a, 285 s ago */
    sg_telemetry_free(t);

    /* far more sessions than places: memory stays the table's, the newest reports count */
    t = sg_telemetry_new(64, 300);
    for (int i = 0; i < 5000; i++) {
        char id[40];
        snprintf(id, sizeof id, "session-%d", i);
        sg_telemetry_report(t, id, &b, 2000 + i * 0.01);
    }
    sg_telemetry_snapshot_at(t, 2050, &s);
    CHECK_MSG(s.band[SG_BAND_HIGH].sessions > 0 && s.band[SG_BAND_HIGH].sessions <= 64,
              "%ld sessions in a 64-place table", s.band[SG_BAND_HIGH].sessions);
    CHECK(s.evicted >= 5000 - 64);
    sg_telemetry_report(t, "", &b, 2050); /* ignored, as is an overlong id */
    sg_telemetry_report(t, "0123456789012345678901234567890123456789x", &b, 2050);
    sg_telemetry_snapshot_at(t, 2050, &s);
    CHECK_EQ_INT(s.reports, 5000);
    sg_telemetry_free(t);
}

/* ---- libsgclient ------------------------------------------------------------------------------ */

static void check_client_policy(void)
{
    char h[SG_TELEMETRY_HEADER_SIZE];
    sg_client_telemetry t = {NAN, 1, 5, 100, 1e7};
    CHECK(sg_client_telemetry_header(&t, h) == SG_CLIENT_EINVAL && h[0] == 0);
    t.battery_pct = 101;
    CHECK(sg_client_telemetry_header(&t, h) == SG_CLIENT_EINVAL);
    t.battery_pct = 42;
    CHECK(sg_client_telemetry_header(&t, h) == SG_CLIENT_OK);
    CHECK(strcmp(h, "X-Client-Telemetry: battery=42.0; charging=1; fps=5.00; "
                    "upload_kb_per_min=100.0; memory=10000000") == 0);
    /* what the library writes the server reads, at the extremes too */
    sg_client_telemetry ext = {100, -1, 5000, 1e9, 1e15};
    CHECK(sg_client_telemetry_header(&ext, h) == SG_CLIENT_OK);
    CHECK(strlen(h) < SG_TELEMETRY_HEADER_SIZE - 1);
    const char *v = h + strlen("X-Client-Telemetry: ");
    sg_client_report r;
    sg_error err = {0};
    CHECK_MSG(sg_client_report_parse(v, strlen(v), &r, &err) == SG_OK, "%s: %s", h, err.msg);
    CHECK(r.fps == 1000 && r.upload_kb_per_min == 1e6 && r.memory_bytes == 1e12 && r.charging == -1);

    sg_usage_meter *m;
    CHECK(sg_usage_meter_new(&m) == SG_CLIENT_OK);
    double fps, kb;
    sg_usage_meter_rates(m, 5000, &fps, &kb);
    CHECK(fps == 0 && kb == 0);
    /* 10 frames a second of 5,120 bytes for 2 minutes: the last minute is 10 fps, 3,000 KB/min */
    for (int i = 0; i < 1200; i++)
        sg_usage_meter_add(m, 100000 + i * 100.0, 5120, 1);
    sg_usage_meter_rates(m, 100000 + 1199 * 100.0, &fps, &kb);
    CHECK_NEAR(fps, 10, 0.2);
    CHECK_NEAR(kb, 3000, 60);
    /* 30 s of silence: the minute holds half */
    sg_usage_meter_rates(m, 100000 + 1199 * 100.0 + 30000, &fps, &kb);
    CHECK_NEAR(fps, 5, 0.3);
    /* 2 minutes of silence: nothing */
    sg_usage_meter_rates(m, 100000 + 1199 * 100.0 + 120000, &fps, &kb);
    CHECK(fps == 0 && kb == 0);
    sg_usage_meter_free(m);
    /* a young meter: 5 frames in its first 2.5 s is 5 frames / 3 whole seconds, not / 60 */
    CHECK(sg_usage_meter_new(&m) == SG_CLIENT_OK);
    for (int i = 0; i < 5; i++)
        sg_usage_meter_add(m, 7000 + i * 500.0, 1024, 1);
    sg_usage_meter_rates(m, 9500, &fps, &kb);
    CHECK_NEAR(fps, 5.0 / 3.0, 1e-9);
    CHECK_NEAR(kb, 5.0 / 3.0 * 60.0, 1e-6);
    sg_usage_meter_free(m);
}

/* ---- the real server -------------------------------------------------------------------------- */

static double metric(const sgt_server *s, const char *prefix)
{
    sgt_resp r = sgt_get(s, "/metrics/prometheus");
    double v = NAN;
    const size_t n = strlen(prefix);
    for (const char *p = r.body; p && (p = strstr(p, prefix)); p++)
        if ((p == r.body || p[-1] == '\n') && p[n] == ' ') {
            v = strtod(p + n + 1, NULL);
            break;
        }
    sgt_resp_free(&r);
    return v;
}

static int frame_with(const sgt_server *s, const char *sid, const char *telemetry, sgt_resp *out)
{
    char path[128], hdr[700];
    snprintf(path, sizeof path, "/sessions/%s/frame", sid);
    snprintf(hdr, sizeof hdr, "X-Client-Telemetry: %s", telemetry);
    size_t len;
    char *jpeg = sgt_read_file("../shared/data/images/coffee.jpg", &len);
    const char *h[] = {"Content-Type: image/jpeg", hdr, NULL};
    sgt_resp r = sgt_request(s, "POST", path, h, jpeg, len);
    free(jpeg);
    int st = (int)r.status;
    if (out)
        *out = r;
    else
        sgt_resp_free(&r);
    return st;
}

/* sg_client's fake clock: the test moves it. */
static double fake_ms = 1e6;
static double fake_now(void *ud)
{
    (void)ud;
    return fake_ms;
}

static void check_server(void)
{
    sgt_server s;
    CHECK(sgt_start(&s, NULL, NULL) == 0);
    /* nothing reported yet: the sessions gauges at 0, the means without samples */
    CHECK(metric(&s, "smartglass_client_sessions{band=\"high\"}") == 0);
    CHECK(isnan(metric(&s, "smartglass_battery_level{band=\"high\"}")));
    CHECK(metric(&s, "smartglass_client_charging") == 0);

    char *a = sgt_new_session(&s, NULL), *b = sgt_new_session(&s, NULL);
    CHECK_EQ_INT(frame_with(&s, a, "battery=80; charging=1; fps=10; upload_kb_per_min=500; "
                                   "memory=100000000", NULL), 200);
    CHECK_EQ_INT(frame_with(&s, b, "battery=60; fps=20; memory=300000000", NULL), 200);
    CHECK(metric(&s, "smartglass_client_sessions{band=\"high\"}") == 2);
    CHECK(metric(&s, "smartglass_client_sessions{band=\"low\"}") == 0);
    CHECK_NEAR(metric(&s, "smartglass_battery_level{band=\"high\"}"), 70, 1e-6);
    CHECK_NEAR(metric(&s, "smartglass_client_fps{band=\"high\"}"), 15, 1e-6);
    CHECK_NEAR(metric(&s, "smartglass_client_upload_kb_per_min{band=\"high\"}"), 500, 1e-6);
    CHECK(metric(&s, "smartglass_client_charging") == 1);
    CHECK_NEAR(metric(&s, "smartglass_client_memory_bytes{stat=\"mean\"}"), 2e8, 1);
    CHECK_NEAR(metric(&s, "smartglass_client_memory_bytes{stat=\"max\"}"), 3e8, 1);

    /* a malformed report: 422 with a JSON error naming the header; the frame is not taken and
     * the table is as it was */
    sgt_resp r;
    CHECK_EQ_INT(frame_with(&s, a, "battery=abc", &r), 422);
    CHECK(r.json && strcmp(sgt_str(r.json, "error"), "INVALID_REQUEST") == 0 &&
          strstr(sgt_str(r.json, "detail"), "X-Client-Telemetry"));
    sgt_resp_free(&r);
    char longv[700];
    memset(longv, '1', sizeof longv - 1);
    longv[sizeof longv - 1] = 0;
    memcpy(longv, "battery=5;x=", 12);
    CHECK_EQ_INT(frame_with(&s, a, longv, NULL), 422);
    CHECK_NEAR(metric(&s, "smartglass_battery_level{band=\"high\"}"), 70, 1e-6);

    /* a session that moves band, a deleted one stops counting */
    CHECK_EQ_INT(frame_with(&s, b, "battery=15", NULL), 200);
    CHECK(metric(&s, "smartglass_client_sessions{band=\"low\"}") == 1);
    char path[128];
    snprintf(path, sizeof path, "/sessions/%s", b);
    r = sgt_request(&s, "DELETE", path, NULL, NULL, 0);
    CHECK_EQ_INT(r.status, 200);
    sgt_resp_free(&r);
    CHECK(metric(&s, "smartglass_client_sessions{band=\"low\"}") == 0);
    CHECK(metric(&s, "smartglass_client_sessions{band=\"high\"}") == 1);

    /* libsgclient: nothing without a battery level; then one report per interval, on a session
     * route only */
    sg_client_config cc;
    sg_client_config_default(&cc, s.base);
    cc.now_ms = fake_now;
    sg_client *c;
    char err[SG_CLIENT_ERROR_SIZE];
    CHECK(sg_client_new(&cc, &c, err) == SG_CLIENT_OK);
    char sid[SG_CLIENT_SESSION_ID_SIZE];
    CHECK(sg_client_create_session(c, sid, NULL) == SG_CLIENT_OK);
    size_t len;
    char *jpeg = sgt_read_file("../shared/data/images/coffee.jpg", &len);
    const double reports0 = metric(&s, "smartglass_client_reports_total");
    CHECK(sg_client_upload_frame(c, sid, (const uint8_t *)jpeg, len, NULL) == SG_CLIENT_OK);
    CHECK(metric(&s, "smartglass_client_reports_total") == reports0); /* no battery: no report */
    sg_client_set_device(c, 30, 0);
    CHECK(sg_client_set_telemetry_interval(c, -1) == SG_CLIENT_EINVAL);
    CHECK(sg_client_set_telemetry_interval(c, 10000) == SG_CLIENT_OK);
    for (int i = 0; i < 5; i++) { /* 5 frames 1 s apart: one report */
        fake_ms += 1000;
        CHECK(sg_client_upload_frame(c, sid, (const uint8_t *)jpeg, len, NULL) == SG_CLIENT_OK);
    }
    CHECK(metric(&s, "smartglass_client_reports_total") == reports0 + 1);
    CHECK(metric(&s, "smartglass_client_sessions{band=\"mid\"}") == 1);
    CHECK_NEAR(metric(&s, "smartglass_battery_level{band=\"mid\"}"), 30, 1e-6);
    fake_ms += 10000; /* the interval has passed: the next session request reports */
    sg_client_set_device(c, 25, 1);
    char other[SG_CLIENT_SESSION_ID_SIZE];
    CHECK(sg_client_create_session(c, other, NULL) == SG_CLIENT_OK); /* not a session route */
    CHECK(metric(&s, "smartglass_client_reports_total") == reports0 + 1);
    CHECK(sg_client_query(c, sid, "what is this?", NULL, 0, NULL) == SG_CLIENT_OK);
    CHECK(metric(&s, "smartglass_client_reports_total") == reports0 + 2);
    CHECK_NEAR(metric(&s, "smartglass_battery_level{band=\"mid\"}"), 25, 1e-6);
    CHECK(metric(&s, "smartglass_client_charging") == 2);
    /* what it reported is what it measured: 6 frames over its young minute */
    sg_client_telemetry t;
    sg_client_get_telemetry(c, &t);
    CHECK(t.battery_pct == 25 && t.charging == 1 && t.fps > 0 && t.upload_kb_per_min > 0 &&
          t.memory_bytes > 1e6);
    CHECK(metric(&s, "smartglass_client_fps{band=\"mid\"}") > 0);
    free(jpeg);
    sg_client_free(c);
    free(a);
    free(b);
    CHECK_EQ_INT(sgt_stop(&s, SIGTERM), 0);
}

int main(void)
{
    check_parser();
    check_table();
    check_client_policy();
    check_server();
    return check_report("test_client_telemetry");
}
