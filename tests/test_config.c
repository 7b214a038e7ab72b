/* Unit tests for server/config (environment parsing) and server/routes (request routing). */
#include <stdio.h>
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
    /* the Python runtime's other forms: a comma list (the last http entry wins, a bare port is
     * http's), string values in JSON; without an http entry the port stays as it was */
    CHECK(sg_parse_ports("http:8004,metrics:9000", &port) && port == 8004);
    CHECK(sg_parse_ports("metrics:9000, http : 8005,", &port) && port == 8005);
    CHECK(sg_parse_ports("8006,metrics:9000", &port) && port == 8006);
    CHECK(sg_parse_ports("{\"http\":\"8007\",\"metrics\":9000}", &port) && port == 8007);
    CHECK(sg_parse_ports("metrics:9000", &port) && port == 8007);
    CHECK(sg_parse_ports("{\"ws\":80}", &port) && port == 8007);
    CHECK(sg_parse_ports(" 8_008 ", &port) && port == 8008);
    const char *badp[] = {"", "0", "65536", "http:", "http:x", "{\"http\":\"x\"}", "{\"http\":0}",
                          "{", "8000abc", "-1", "http:8000,metrics:x", "[8000]", "0x50"};
    for (int i = 0; i < 13; i++)
        CHECK_MSG(!sg_parse_ports(badp[i], &port), "\"%s\" accepted", badp[i]);
}

/* What the Python runtime's config.py took (int() for bytes and counts, float() for seconds,
 * stripped and case-folded policies and booleans) starts this server; what it refused is refused
 * with its message first. Ranges: seconds above 0 up to a day, bytes from 1. */
static void test_python_era_values(void)
{
    sg_config c;
    sg_error err = {0};
    static const struct {
        const char *value;
        double want; /* 0: refused */
    } secs[] = {
        {"0.05", 0.05}, {"2.5", 2.5}, {" 2.5 ", 2.5}, {".5", 0.5}, {"5.", 5}, {"1e2", 100},
        {"+3", 3}, {"1_0.5", 10.5}, {"120", 120}, {"86400", 86400}, {"2.5E-1", 0.25},
        {"abc", 0}, {"0x10", 0}, {"1,5", 0}, {"0", 0}, {"-1", 0}, {"nan", 0}, {"inf", 0},
        {"86401", 0}, {"1__0", 0}, {"_1", 0}, {"1_", 0}, {"1e", 0}, {".", 0}, {"1e999", 0},
        {"2.5s", 0},
    };
    for (size_t i = 0; i < sizeof secs / sizeof *secs; i++) {
        sg_config_defaults(&c);
        setenv("AUDIO_BUFFER_MAX_SECONDS", secs[i].value, 1);
        sg_status st = sg_config_from_env(&c, &err);
        if (secs[i].want > 0) {
            CHECK_MSG(st == SG_OK, "AUDIO_BUFFER_MAX_SECONDS=%s refused: %s", secs[i].value, err.msg);
            CHECK_NEAR(c.audio_max_seconds, secs[i].want, 1e-12);
        } else {
            CHECK_MSG(st == SG_EINVAL && strstr(err.msg, "AUDIO_BUFFER_MAX_SECONDS"),
                      "AUDIO_BUFFER_MAX_SECONDS=%s accepted", secs[i].value);
        }
    }
    /* a value longer than any number here is refused, not overrun */
    char longv[300];
    memset(longv, '1', sizeof longv - 1);
    longv[sizeof longv - 1] = 0;
    setenv("AUDIO_BUFFER_MAX_SECONDS", longv, 1);
    CHECK(sg_config_from_env(&c, &err) == SG_EINVAL);
    setenv("AUDIO_BUFFER_MAX_BYTES", longv, 1);
    CHECK(sg_config_from_env(&c, &err) == SG_EINVAL && strstr(err.msg, "AUDIO_BUFFER_MAX_BYTES"));
    unsetenv("AUDIO_BUFFER_MAX_BYTES");
    /* the runtime's own words for what float() refused; a number out of range says the range */
    setenv("AUDIO_BUFFER_MAX_SECONDS", "abc", 1);
    CHECK(sg_config_from_env(&c, &err) == SG_EINVAL &&
          strncmp(err.msg, "Invalid float value: abc", 24) == 0);
    setenv("AUDIO_BUFFER_MAX_SECONDS", "0", 1);
    CHECK(sg_config_from_env(&c, &err) == SG_EINVAL && strstr(err.msg, "above 0"));
    unsetenv("AUDIO_BUFFER_MAX_SECONDS");

    sg_config_defaults(&c);
    setenv("FRAME_BUFFER_MAX_BYTES", "300", 1);
    setenv("AUDIO_BUFFER_MAX_BYTES", " 1_000 ", 1);
    setenv("FRAME_HISTORY_SIZE", "+2", 1);
    setenv("AUDIO_BUFFER_POLICY", " Trim ", 1);
    setenv("FRAME_BUFFER_POLICY", "REJECT", 1);
    setenv("STORE_RAW_AUDIO", " yes ", 1);
    CHECK_MSG(sg_config_from_env(&c, &err) == SG_OK, "%s", err.msg);
    CHECK_EQ_INT(c.frame_max_bytes, 300);
    CHECK_EQ_INT(c.audio_max_bytes, 1000);
    CHECK_EQ_INT(c.frame_history, 2);
    CHECK(c.audio_policy == SG_POLICY_TRIM && c.frame_policy == SG_POLICY_REJECT);
    CHECK(c.privacy.store_raw_audio);
    setenv("FRAME_BUFFER_MAX_BYTES", "1", 1);
    CHECK(sg_config_from_env(&c, &err) == SG_OK && c.frame_max_bytes == 1);
    setenv("FRAME_BUFFER_MAX_BYTES", "12.5", 1);
    CHECK(sg_config_from_env(&c, &err) == SG_EINVAL &&
          strncmp(err.msg, "Invalid integer value: 12.5", 27) == 0 &&
          strstr(err.msg, "FRAME_BUFFER_MAX_BYTES"));
    setenv("FRAME_BUFFER_MAX_BYTES", "0", 1);
    CHECK(sg_config_from_env(&c, &err) == SG_EINVAL && strstr(err.msg, "FRAME_BUFFER_MAX_BYTES"));
    unsetenv("FRAME_BUFFER_MAX_BYTES");
    setenv("AUDIO_BUFFER_MAX_BYTES", "-5", 1);
    CHECK(sg_config_from_env(&c, &err) == SG_EINVAL && strstr(err.msg, "AUDIO_BUFFER_MAX_BYTES"));
    unsetenv("AUDIO_BUFFER_MAX_BYTES");
    setenv("AUDIO_BUFFER_POLICY", "drop", 1);
    CHECK(sg_config_from_env(&c, &err) == SG_EINVAL &&
          strcmp(err.msg, "Invalid buffer policy 'drop'. Choose one of: reject, trim "
                          "(AUDIO_BUFFER_POLICY)") == 0);
    unsetenv("AUDIO_BUFFER_POLICY");
    setenv("STORE_RAW_AUDIO", "perhaps", 1);
    CHECK(sg_config_from_env(&c, &err) == SG_EINVAL &&
          strncmp(err.msg, "Invalid boolean value; use one of:", 34) == 0);
    unsetenv("STORE_RAW_AUDIO");
    unsetenv("FRAME_HISTORY_SIZE");
    unsetenv("FRAME_BUFFER_POLICY");
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
    struct {
        const char *method, *url;
        const char *want; /* the row's path template; NULL: no row */
        unsigned methods; /* the row's methods */
        const char *sid;
    } cases[] = {
        {"GET", "/health", "/health", SG_HTTP_GET | SG_HTTP_HEAD, ""},
        {"GET", "/health/", "/health", SG_HTTP_GET | SG_HTTP_HEAD, ""},
        {"POST", "/health", "/health", SG_HTTP_GET | SG_HTTP_HEAD, ""}, /* the dispatcher's 405 */
        {"GET", "/ready", "/ready", SG_HTTP_GET | SG_HTTP_HEAD, ""},
        {"GET", "/sessions", "/sessions", SG_HTTP_GET | SG_HTTP_HEAD, ""},
        {"POST", "/sessions/", "/sessions", SG_HTTP_POST, ""},
        {"PUT", "/sessions", "/sessions", SG_HTTP_GET | SG_HTTP_HEAD, ""},
        {"DELETE", "/sessions/abc", "/sessions/{id}", SG_HTTP_DELETE, "abc"},
        {"POST", "/sessions/0b8e1a9e-3c7d-4a55-9a43-0c1b2d3e4f50/frame", "/sessions/{id}/frame",
         SG_HTTP_POST, "0b8e1a9e-3c7d-4a55-9a43-0c1b2d3e4f50"},
        {"POST", "/sessions/x/audio", "/sessions/{id}/audio", SG_HTTP_POST, "x"},
        {"POST", "/sessions/x/query", "/sessions/{id}/query", SG_HTTP_POST, "x"},
        {"GET", "/sessions/x/query", "/sessions/{id}/query", SG_HTTP_POST, "x"},
        {"POST", "/sessions/x/multimodal", "/sessions/{id}/multimodal", SG_HTTP_POST, "x"},
        {"POST", "/sessions/x/other", NULL, 0, ""},
        {"POST", "/sessions/x/query/extra", NULL, 0, ""},
        {"POST", "/sessions//query", "/sessions/{id}/query", SG_HTTP_POST, ""},
        {"GET", "/metrics", "/metrics", SG_HTTP_GET | SG_HTTP_HEAD, ""},
        {"GET", "/metrics//", "/metrics", SG_HTTP_GET | SG_HTTP_HEAD, ""},
        {"GET", "/metrics/summary", "/metrics/summary", SG_HTTP_GET | SG_HTTP_HEAD, ""},
        {"GET", "/metrics/prometheus", "/metrics/prometheus", SG_HTTP_GET | SG_HTTP_HEAD, ""},
        {"GET", "/metrics/other", NULL, 0, ""},
        {"GET", "/ws/audio/x", "/ws/audio/{id}", SG_HTTP_GET, "x"},
        {"GET", "/ws/frame/x/", "/ws/frame/{id}", SG_HTTP_GET, "x"},
        {"GET", "/ws/video/x", NULL, 0, ""},
        {"POST", "/dat/turn/complete", "/dat/turn/complete", SG_HTTP_POST, ""},
        {"GET", "/", NULL, 0, ""},
        {"GET", "", NULL, 0, ""},
        {"GET", "health", NULL, 0, ""},
        {"GET", "/healthz", NULL, 0, ""},
        {"GET", "/Health", NULL, 0, ""},
        {"GET", "/a/b/c/d/e/f/g", NULL, 0, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const sg_route *r = sg_route_match(cases[i].method, cases[i].url, sid);
        const char *got = r ? r->path : NULL;
        CHECK_MSG(got == cases[i].want || (got && cases[i].want && strcmp(got, cases[i].want) == 0),
                  "%s %s -> %s, want %s", cases[i].method, cases[i].url, got ? got : "none",
                  cases[i].want ? cases[i].want : "none");
        CHECK_MSG(!r || r->methods == cases[i].methods, "%s %s: methods %u", cases[i].method,
                  cases[i].url, r->methods);
        CHECK_MSG(strcmp(sid, cases[i].sid) == 0, "%s -> session \"%s\"", cases[i].url, sid);
    }
    /* an over-long id is not copied (and so never matches a session) */
    char longurl[200] = "/sessions/";
    memset(longurl + 10, 'a', 100);
    strcpy(longurl + 110, "/query");
    const sg_route *r = sg_route_match("POST", longurl, sid);
    CHECK(r && strcmp(r->path, "/sessions/{id}/query") == 0 && sid[0] == 0);

    /* every row is reachable: its own path (with an id) and method lead back to it */
    for (size_t k = 0; k < sg_routes_count; k++) {
        char url[128];
        const char *id = strstr(sg_routes[k].path, "{id}");
        if (id)
            snprintf(url, sizeof url, "%.*s%s%s", (int)(id - sg_routes[k].path), sg_routes[k].path,
                     "0b8e1a9e-3c7d-4a55-9a43-0c1b2d3e4f50", id + 4);
        else
            snprintf(url, sizeof url, "%s", sg_routes[k].path);
        const char *m = sg_routes[k].methods & SG_HTTP_GET ? "GET"
                        : sg_routes[k].methods & SG_HTTP_POST ? "POST" : "DELETE";
        CHECK_MSG(sg_route_match(m, url, sid) == &sg_routes[k], "row %zu (%s %s) unreachable", k, m,
                  sg_routes[k].path);
        CHECK_MSG(sg_routes[k].handler != NULL, "row %zu has no handler", k);
        /* the flags hang together: a path session is session work, sockets are GET */
        CHECK(!(sg_routes[k].flags & SG_ROUTE_SESSION) || (sg_routes[k].flags & SG_ROUTE_SESSION_ID));
        CHECK(!(sg_routes[k].flags & SG_ROUTE_SESSION) || id);
        CHECK(!(sg_routes[k].flags & SG_ROUTE_WEBSOCKET) || sg_routes[k].methods == SG_HTTP_GET);
    }
}

/* The route table and ../shared/API.md's route list name the same method + path pairs (HEAD,
 * which every GET route but the WebSocket ones also takes, is not listed there). */
static void test_routes_match_api_md(void)
{
    FILE *f = fopen("../shared/API.md", "r");
    CHECK_MSG(f != NULL, "cannot read ../shared/API.md");
    if (!f)
        return;
    char line[2048], doc[64][80];
    int ndoc = 0;
    bool in_routes = false;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "## ", 3) == 0)
            in_routes = strncmp(line, "## Routes", 9) == 0;
        /* a row: "| METHOD /path[, /path…] | request | response |" */
        char method[16];
        int at;
        if (!in_routes || sscanf(line, "| %15[A-Z] %n", method, &at) != 1 || line[at] != '/')
            continue;
        char *cell = line + at, *end = strchr(cell, '|');
        if (!end)
            continue;
        *end = 0;
        for (char *path = strtok(cell, ", "); path && ndoc < 64; path = strtok(NULL, ", "))
            snprintf(doc[ndoc++], sizeof doc[0], "%s %s", method, path);
    }
    fclose(f);
    /* the OpenAI section names its routes in backticks: `POST /v1/x` (and `/v1/y`, the same
     * method); GET /v1/models/{id} is OpenAI's models.retrieve, which the SDKs call */
    f = fopen("../shared/API.md", "r");
    bool in_v1 = false;
    char v1_method[16] = "";
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, "## ", 3) == 0)
            in_v1 = strstr(line, "(`/v1`)") != NULL;
        for (char *p = line; in_v1 && (p = strchr(p, '`')) != NULL;) {
            char *q = strchr(p + 1, '`');
            if (!q)
                break;
            *q = 0;
            char m[16], path[64];
            if (sscanf(p + 1, "%15[A-Z] %63s", m, path) == 2 && path[0] == '/') {
                snprintf(v1_method, sizeof v1_method, "%s", m);
                snprintf(doc[ndoc++ % 64], sizeof doc[0], "%s %s", m, path);
            } else if (p[1] == '/' && strncmp(p + 1, "/v1/", 4) == 0 && v1_method[0] &&
                       sscanf(p + 1, "%63s", path) == 1) {
                snprintf(doc[ndoc++ % 64], sizeof doc[0], "%s %s", v1_method, path);
            }
            p = q + 1;
        }
    }
    if (f)
        fclose(f);
    if (ndoc < 64)
        snprintf(doc[ndoc++], sizeof doc[0], "GET /v1/models/{id}");
    CHECK_MSG(ndoc >= 10, "only %d routes found in API.md", ndoc);
    static const char *const names[] = {"GET", "HEAD", "POST", "DELETE"};
    int ntable = 0;
    for (size_t k = 0; k < sg_routes_count; k++) {
        for (unsigned i = 0; i < 4; i++) {
            if (!(sg_routes[k].methods & (1u << i)) || (1u << i) == SG_HTTP_HEAD)
                continue;
            char pair[80];
            snprintf(pair, sizeof pair, "%s %s", names[i], sg_routes[k].path);
            bool found = false;
            for (int d = 0; d < ndoc && !found; d++)
                found = strcmp(doc[d], pair) == 0;
            CHECK_MSG(found, "route %s is not in ../shared/API.md", pair);
            ntable++;
        }
    }
    CHECK_MSG(ntable == ndoc, "API.md lists %d routes, the table %d", ndoc, ntable);
}

/* SG_SESSION_STORE / --session-store: the forms the issue names and what each parses to; the
 * password never shows in what is logged. (Refusals: test_server_store.c, through the binary.) */
static void test_store_url(void)
{
    sg_store_url u;
    sg_error err = {0};
    CHECK(sg_store_url_parse("memory", &u, &err) == SG_OK && u.kind == SG_STORE_MEMORY);
    CHECK(sg_store_url_parse("", &u, &err) == SG_OK && u.kind == SG_STORE_MEMORY);
    CHECK(sg_store_url_parse("redis://10.0.0.5:6380/2", &u, &err) == SG_OK);
    CHECK(u.kind == SG_STORE_REDIS_TCP && strcmp(u.host, "10.0.0.5") == 0 && u.port == 6380 &&
          u.db == 2 && !u.password[0]);
    CHECK(strcmp(u.shown, "redis://10.0.0.5:6380/2") == 0);
    CHECK(sg_store_url_parse("redis://redis.internal", &u, &err) == SG_OK && u.port == 6379 &&
          u.db == 0 && strcmp(u.host, "redis.internal") == 0);
    CHECK(sg_store_url_parse("redis://:s3cr%40t@127.0.0.1:7000/", &u, &err) == SG_OK);
    CHECK(strcmp(u.password, "s3cr@t") == 0 && !u.user[0] && u.port == 7000 && u.db == 0);
    CHECK_MSG(!strstr(u.shown, "s3cr") && strstr(u.shown, "***"), "shown: %s", u.shown);
    CHECK(sg_store_url_parse("redis://edge:pw@[::1]:6379/1", &u, &err) == SG_OK);
    CHECK(strcmp(u.user, "edge") == 0 && strcmp(u.password, "pw") == 0 && strcmp(u.host, "::1") == 0);
    CHECK_MSG(strcmp(u.shown, "redis://edge:***@[::1]:6379/1") == 0, "shown: %s", u.shown);
    CHECK(sg_store_url_parse("unix:///run/redis/redis.sock", &u, &err) == SG_OK);
    CHECK(u.kind == SG_STORE_REDIS_UNIX && strcmp(u.path, "/run/redis/redis.sock") == 0 && u.db == 0);
    CHECK(sg_store_url_parse("unix://:pw@/tmp/r.sock?db=4", &u, &err) == SG_OK);
    CHECK(strcmp(u.path, "/tmp/r.sock") == 0 && u.db == 4 && strcmp(u.password, "pw") == 0);
    CHECK_MSG(strcmp(u.shown, "unix://:***@/tmp/r.sock?db=4") == 0, "shown: %s", u.shown);
    static const char *const bad[] = {"redis://", "redis://:@h", "redis://h:0", "redis://h:65536",
                                      "redis://h:12x", "redis://h/1/2", "redis://h?x", "redis://a b",
                                      "redis://:%zz@h", "unix://", "unix:///", "http://h",
                                      "unix:///a?db=x"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        CHECK_MSG(sg_store_url_parse(bad[i], &u, &err) == SG_EINVAL, "%s was taken", bad[i]);
    CHECK(sg_store_url_parse("redis://:hunter2@h:99999", &u, &err) == SG_EINVAL &&
          !strstr(err.msg, "hunter2"));
}

int main(void)
{
    test_store_url();
    test_bool_and_ports();
    test_env();
    test_python_era_values();
    test_routes();
    test_routes_match_api_md();
    return check_report("test_config");
}
