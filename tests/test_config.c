/* Unit tests for server/config (environment parsing) and server/routes (request routing). */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "server/config.h"
#include "server/internal.h"

static void test_bool_and_ports(void)
{
    bool b;
    const char *yes[] = {"1", "true", "TRUE", "Yes", "on"}, *no[] = {"0", "false", "No", "OFF"};
    for (int i = 0; i < 5; i++)
        CHECK(sg_parse_bool(yes[i], &b) && b);
    for (int i = 0; i < 4; i++)
        CHECK(sg_parse_bool(no[i], &b) && !b);
    const char *bad[] = {"", "2", "maybe", "truee", " true", "y"};
    for (int i = 0; i < 6; i++)
        CHECK_MSG(!sg_parse_bool(bad[i], &b), "\"%s\" accepted", bad[i]);

    int port = 0;
    CHECK(sg_parse_ports("8000", &port) && port == 8000);
    CHECK(sg_parse_ports("{\"http\":8001}", &port) && port == 8001);
    CHECK(sg_parse_ports(" { \"http\" : 8002 } ", &port) && port == 8002);
    CHECK(sg_parse_ports("http:8003", &port) && port == 8003);
    const char *badp[] = {"", "0", "65536", "http:", "http:x", "{\"http\":\"80\"}", "{\"ws\":80}",
                          "{", "8000abc", "-1"};
    for (int i = 0; i < 10; i++)
        CHECK_MSG(!sg_parse_ports(badp[i], &port), "\"%s\" accepted", badp[i]);
}

static void test_env(void)
{
    sg_config c;
    sg_error err = {0};
    sg_config_defaults(&c);
    CHECK_EQ_INT(c.port, 5000);
    CHECK(!c.privacy.store_raw_audio && !c.privacy.store_raw_frames && !c.privacy.store_transcripts);
    CHECK_EQ_INT(c.max_body_bytes, 16u << 20);
    CHECK_EQ_INT(c.session_ttl_s, 3600);

    setenv("PORTS", "{\"http\":8100}", 1);
    setenv("STORE_TRANSCRIPTS", "yes", 1);
    setenv("AUDIO_BUFFER_POLICY", "reject", 1);
    setenv("SG_MAX_BODY_BYTES", "2048", 1);
    setenv("EDGE_RUNTIME_AUTH_TOKEN", "tok", 1);
    CHECK(sg_config_from_env(&c, &err) == SG_OK);
    CHECK_EQ_INT(c.port, 8100);
    CHECK(c.privacy.store_transcripts);
    CHECK(c.audio_policy == SG_POLICY_REJECT);
    CHECK_EQ_INT(c.max_body_bytes, 2048);
    CHECK(strcmp(c.api_key, "tok") == 0);
    setenv("EDGE_RUNTIME_API_KEY", "key", 1); /* the API key wins over the token */
    CHECK(sg_config_from_env(&c, &err) == SG_OK && strcmp(c.api_key, "key") == 0);
    setenv("SG_PORT", "8200", 1); /* SG_PORT wins over PORTS */
    CHECK(sg_config_from_env(&c, &err) == SG_OK && c.port == 8200);

    setenv("STORE_RAW_FRAMES", "perhaps", 1);
    CHECK(sg_config_from_env(&c, &err) == SG_EINVAL);
    CHECK(strstr(err.msg, "STORE_RAW_FRAMES") != NULL);
    setenv("STORE_RAW_FRAMES", "off", 1);
    setenv("SG_SESSION_TTL_S", "0", 1);
    CHECK(sg_config_from_env(&c, &err) == SG_EINVAL && strstr(err.msg, "SG_SESSION_TTL_S"));
    unsetenv("SG_SESSION_TTL_S");
    setenv("SG_RATE_LIMIT_RPS", "fast", 1);
    CHECK(sg_config_from_env(&c, &err) == SG_EINVAL);
    setenv("SG_RATE_LIMIT_RPS", "2.5", 1);
    CHECK(sg_config_from_env(&c, &err) == SG_OK);
    CHECK_NEAR(c.rate_limit_rps, 2.5, 1e-12);
    /* keep-alive idle timeout: above the load tests' 60 s think time by default, bounded */
    CHECK_EQ_INT(c.http_idle_s, 75);
    setenv("SG_HTTP_IDLE_S", "0", 1);
    CHECK(sg_config_from_env(&c, &err) == SG_EINVAL && strstr(err.msg, "SG_HTTP_IDLE_S"));
    setenv("SG_HTTP_IDLE_S", "120", 1);
    CHECK(sg_config_from_env(&c, &err) == SG_OK && c.http_idle_s == 120);
    unsetenv("SG_HTTP_IDLE_S");
}

static void test_routes(void)
{
    char sid[40];
    const char *name;
    struct {
        const char *url;
        sg_route want;
        const char *sid;
    } cases[] = {
        {"/health", SG_ROUTE_HEALTH, ""},
        {"/health/", SG_ROUTE_HEALTH, ""},
        {"/ready", SG_ROUTE_READY, ""},
        {"/sessions", SG_ROUTE_SESSIONS, ""},
        {"/sessions/", SG_ROUTE_SESSIONS, ""},
        {"/sessions/abc", SG_ROUTE_SESSION, "abc"},
        {"/sessions/0b8e1a9e-3c7d-4a55-9a43-0c1b2d3e4f50/frame", SG_ROUTE_FRAME,
         "0b8e1a9e-3c7d-4a55-9a43-0c1b2d3e4f50"},
        {"/sessions/x/audio", SG_ROUTE_AUDIO, "x"},
        {"/sessions/x/query", SG_ROUTE_QUERY, "x"},
        {"/sessions/x/multimodal", SG_ROUTE_MULTIMODAL, "x"},
        {"/sessions/x/other", SG_ROUTE_NONE, ""},
        {"/sessions/x/query/extra", SG_ROUTE_NONE, ""},
        {"/sessions//query", SG_ROUTE_QUERY, ""},
        {"/metrics", SG_ROUTE_METRICS, ""},
        {"/metrics/summary", SG_ROUTE_METRICS_SUMMARY, ""},
        {"/metrics/prometheus", SG_ROUTE_METRICS_PROMETHEUS, ""},
        {"/metrics/other", SG_ROUTE_NONE, ""},
        {"/ws/audio/x", SG_ROUTE_WS_AUDIO, "x"},
        {"/ws/frame/x/", SG_ROUTE_WS_FRAME, "x"},
        {"/ws/video/x", SG_ROUTE_NONE, ""},
        {"/dat/turn/complete", SG_ROUTE_DAT_TURN, ""},
        {"/", SG_ROUTE_NONE, ""},
        {"", SG_ROUTE_NONE, ""},
        {"health", SG_ROUTE_NONE, ""},
        {"/healthz", SG_ROUTE_NONE, ""},
        {"/a/b/c/d/e/f/g", SG_ROUTE_NONE, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        sg_route r = sg_route_match(cases[i].url, sid, &name);
        CHECK_MSG(r == cases[i].want, "%s -> %d, want %d", cases[i].url, r, cases[i].want);
        CHECK_MSG(strcmp(sid, cases[i].sid) == 0, "%s -> session \"%s\"", cases[i].url, sid);
        CHECK(name != NULL);
    }
    /* an over-long id is not copied (and so never matches a session) */
    char longurl[200] = "/sessions/";
    memset(longurl + 10, 'a', 100);
    strcpy(longurl + 110, "/query");
    CHECK(sg_route_match(longurl, sid, &name) == SG_ROUTE_QUERY && sid[0] == 0);
}

int main(void)
{
    test_bool_and_ports();
    test_env();
    test_routes();
    return check_report("test_config");
}
