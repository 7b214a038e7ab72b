/* Every metric the alert rules (deploy/prometheus/alerts.yml) and the Grafana dashboard
 * (deploy/grafana/smartglass.json) query must be one sg-edge exports, with the label values they
 * select: the real binary is started without models and with the tiny test models, given a
 * session, a frame, a turn, audio, a 404 and a 429, and its /metrics/prometheus is compared with
 * the selectors parsed out of both files and with issue 13's metric-name contract. Also: the
 * model, store, queue and process metrics say what the server is doing. */
#include <string.h>

#include "check.h"
#include "sgtest_http.h"
#include "sgtest_proc.h"
#include "sgtest_promql.h"

#define VAD "../shared/models/silero-vad-v6.2.0-ggml.bin"

/* The metric-name contract of issue 13 (the degradation ladder, the model slots, the session
 * store, the client telemetry) and the process metrics: exported whether or not a rule or panel
 * queries them yet. */
static const char *const contract[] = {
    "smartglass_degraded_total",     "smartglass_degraded_level",  "smartglass_model_configured",
    "smartglass_model_loaded",       "smartglass_store_up",        "smartglass_store_errors_total",
    "smartglass_battery_level",      "smartglass_client_sessions", "smartglass_client_charging",
    "smartglass_client_fps",         "smartglass_client_upload_kb_per_min",
    "smartglass_client_memory_bytes", "process_resident_memory_bytes", "process_cpu_seconds_total",
    "process_start_time_seconds",    "process_open_fds",           NULL};

/* Series Prometheus makes itself for every target. */
static const char *const synthetic[] = {"up", "scrape_duration_seconds", "scrape_samples_scraped",
                                        NULL};
/* Labels the scrape adds (the target's), not the server. */
static const char *const target_labels[] = {"job", "instance", "cluster", NULL};

static bool in_list(const char *s, const char *const *list)
{
    for (int i = 0; list[i]; i++)
        if (strcmp(s, list[i]) == 0)
            return true;
    return false;
}

/* The selector parser on the shapes the two files use. */
static void check_extraction(void)
{
    sgt_selectors s = {0};
    sgt_promql_selectors("histogram_quantile(0.95,\n sum by (job, le) (rate(a_bucket{stage=\"e2e\","
                         "le!=\"x\"}[5m]))\n) > 5",
                         "t", &s);
    CHECK_EQ_INT(s.n, 1);
    CHECK(s.n == 1 && strcmp(s.v[0].name, "a_bucket") == 0 && s.v[0].nmatch == 2 &&
          strcmp(s.v[0].match[0].label, "stage") == 0 && strcmp(s.v[0].match[0].op, "=") == 0 &&
          strcmp(s.v[0].match[0].value, "e2e") == 0 && strcmp(s.v[0].match[1].op, "!=") == 0);
    sgt_selectors_free(&s);
    sgt_promql_selectors("sum(rate(x_total[$__rate_interval])) / on (job) group_left(kind) "
                         "y{job=~\"$job\"} and z offset 5m > bool 1e3 unless w @ start() # c{d}\n"
                         " or max(v) without (le)",
                         "t", &s);
    const char *want[] = {"x_total", "y", "z", "w", "v"};
    CHECK_EQ_INT(s.n, 5);
    for (size_t i = 0; i < s.n && i < 5; i++)
        CHECK_MSG(strcmp(s.v[i].name, want[i]) == 0, "selector %zu: %s", i, s.v[i].name);
    sgt_selectors_free(&s);
    sgt_promql_selectors("label_values(m{job=~\"$job\"}, instance)", "t", &s);
    CHECK(s.n == 1 && strcmp(s.v[0].name, "m") == 0);
    sgt_selectors_free(&s);
    sgt_promql_selectors("avg by (band) (-deriv(c{a=\"b,}\"}[1h])) * 3600 > ${x}", "t", &s);
    CHECK(s.n == 1 && strcmp(s.v[0].name, "c") == 0 && strcmp(s.v[0].match[0].value, "b,}") == 0);
    sgt_selectors_free(&s);

    sgt_strs e = {0};
    sgt_rules_exprs("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: |\n"
                    "          a > 1\n\n          and b\n        for: 5m\n      - alert: B\n"
                    "        expr: \"c{x=\\\"y\\\"}\"\n      - record: r\n        expr: d\n",
                    &e);
    CHECK_EQ_INT(e.n, 3);
    if (e.n == 3) {
        CHECK(strstr(e.v[0], "a > 1") && strstr(e.v[0], "and b") && !strstr(e.v[0], "for"));
        CHECK(strcmp(e.v[1], "c{x=\"y\"}") == 0);
        CHECK(strcmp(e.v[2], "d") == 0);
    }
    sgt_strs_free(&e);
}

static char *scrape(const sgt_server *s)
{
    sgt_resp r = sgt_get(s, "/metrics/prometheus");
    CHECK_EQ_INT(r.status, 200);
    char *text = strdup(r.body ? r.body : "");
    sgt_resp_free(&r);
    return text;
}

/* A session with a frame and a turn; with models, audio too. */
static void session_traffic(const sgt_server *s, bool audio)
{
    char *sid = sgt_new_session(s, NULL);
    char path[128];
    size_t len;
    char *jpeg = sgt_read_file("../shared/data/images/coffee.jpg", &len);
    const char *jpeg_ct[] = {"Content-Type: image/jpeg", NULL};
    snprintf(path, sizeof path, "/sessions/%s/frame", sid);
    sgt_resp r = sgt_request(s, "POST", path, jpeg_ct, jpeg, len);
    CHECK_EQ_INT(r.status, 200);
    sgt_resp_free(&r);
    free(jpeg);
    snprintf(path, sizeof path, "/sessions/%s/query", sid);
    r = sgt_post_str(s, path, "{\"text_query\":\"what am I looking at?\"}");
    CHECK_EQ_INT(r.status, 200);
    sgt_resp_free(&r);
    if (audio) {
        char *wav = sgt_read_file("../shared/data/audio/jfk.wav", &len);
        const char *wav_ct[] = {"Content-Type: audio/wav", NULL};
        snprintf(path, sizeof path, "/sessions/%s/audio", sid);
        r = sgt_request(s, "POST", path, wav_ct, wav, len);
        CHECK_EQ_INT(r.status, 200);
        sgt_resp_free(&r);
        free(wav);
    }
    r = sgt_get(s, "/no/such/route");
    CHECK_EQ_INT(r.status, 404);
    sgt_resp_free(&r);
    free(sid);
}

/* Requests on one session until the rate limit answers 429 (SG_RATE_LIMIT_RPS=1: burst 2). */
static void rate_limited_traffic(const sgt_server *s)
{
    char *sid = sgt_new_session(s, NULL);
    char path[128];
    snprintf(path, sizeof path, "/sessions/%s/query", sid);
    bool limited = false;
    for (int i = 0; i < 20 && !limited; i++) {
        sgt_resp r = sgt_post_str(s, path, "{\"text_query\":\"what time is it?\"}");
        limited = r.status == 429;
        sgt_resp_free(&r);
    }
    CHECK(limited);
    free(sid);
}

static bool has_line(const char *text, const char *line)
{
    const size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)); p++)
        if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == 0))
            return true;
    return false;
}

/* The metric value of a line starting with prefix (name and labels), or -1. */
static double value_of(const char *text, const char *prefix)
{
    const size_t n = strlen(prefix);
    for (const char *p = text; (p = strstr(p, prefix)); p++)
        if ((p == text || p[-1] == '\n') && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    return -1;
}

static void check_server_state(const char *plain, const char *models)
{
    static const char *const kinds[] = {"vision", "asr", "vad", "llm"};
    char line[128];
    for (int i = 0; i < 4; i++) {
        snprintf(line, sizeof line, "smartglass_model_configured{kind=\"%s\"} 0", kinds[i]);
        CHECK_MSG(has_line(plain, line), "no models: %s", line);
        snprintf(line, sizeof line, "smartglass_model_configured{kind=\"%s\"} 1", kinds[i]);
        CHECK_MSG(has_line(models, line), "models: %s", line);
        snprintf(line, sizeof line, "smartglass_model_loaded{kind=\"%s\"} 1", kinds[i]);
        CHECK_MSG(has_line(models, line), "models: %s", line);
    }
    CHECK(has_line(models, "smartglass_model_configured{kind=\"asr_fallback\"} 0"));
    CHECK(has_line(plain, "smartglass_store_up 1"));
    CHECK(has_line(plain, "smartglass_store_errors_total 0"));
    /* 3 workers + 5 queue places; nothing waits between requests */
    CHECK(has_line(plain, "smartglass_queue_capacity 8"));
    CHECK(has_line(plain, "smartglass_queue_jobs 0"));
    CHECK(value_of(plain, "smartglass_error_responses_total{error=\"RATE_LIMITED\"}") >= 1);
    CHECK(value_of(plain, "smartglass_error_responses_total{error=\"INVALID_REQUEST\"}") >= 1);
    CHECK(value_of(plain, "smartglass_error_responses_total{error=\"OVERLOADED\"}") == 0);
    /* the process metrics: what a process holding models looks like */
    const double now = (double)time(NULL);
    const double start = value_of(models, "process_start_time_seconds");
    CHECK_MSG(start > now - 300 && start <= now + 2, "process_start_time_seconds %.2f", start);
    CHECK(value_of(models, "process_resident_memory_bytes") > 4e6);
    CHECK(value_of(models, "process_cpu_seconds_total") > 0);
    CHECK(value_of(models, "process_open_fds") >= 5); /* stdio, the listening socket, epoll... */
    CHECK(value_of(models, "process_max_fds") >= value_of(models, "process_open_fds"));
    static const char *const stages[] = {"e2e", "vision", "llm", "asr", "vad"};
    for (int i = 0; i < 5; i++) {
        snprintf(line, sizeof line, "smartglass_query_duration_seconds_count{stage=\"%s\"}",
                 stages[i]);
        CHECK_MSG(value_of(models, line) >= 1, "%s", line);
    }
}

/* Reads the rules and the dashboard into selectors. */
static bool queried_selectors(sgt_selectors *out)
{
    size_t len;
    char *rules = sgt_read_file("deploy/prometheus/alerts.yml", &len);
    json_error_t jerr;
    json_t *dash = json_load_file("deploy/grafana/smartglass.json", 0, &jerr);
    CHECK_MSG(rules != NULL, "deploy/prometheus/alerts.yml");
    CHECK_MSG(dash != NULL, "deploy/grafana/smartglass.json: %s", jerr.text);
    if (!rules || !dash) {
        free(rules);
        json_decref(dash);
        return false;
    }
    sgt_strs exprs = {0};
    sgt_rules_exprs(rules, &exprs);
    const size_t nrules = exprs.n;
    CHECK_MSG(nrules >= 19, "%zu rule expressions", nrules);
    for (size_t i = 0; i < nrules; i++)
        sgt_promql_selectors(exprs.v[i], "alerts.yml", out);
    sgt_dashboard_exprs(dash, &exprs);
    CHECK_MSG(exprs.n - nrules >= 40, "%zu dashboard queries", exprs.n - nrules);
    for (size_t i = nrules; i < exprs.n; i++)
        sgt_promql_selectors(exprs.v[i], "smartglass.json", out);
    printf("%zu rule expressions and %zu dashboard queries: %zu metric selectors\n", nrules,
           exprs.n - nrules, out->n);
    sgt_strs_free(&exprs);
    free(rules);
    json_decref(dash);
    return true;
}

int main(void)
{
    check_extraction();

    sgt_server s;
    const char *plain_env[] = {"SG_RATE_LIMIT_RPS=1", "SG_WORKERS=3", "SG_QUEUE_DEPTH=5", NULL};
    CHECK(sgt_start(&s, plain_env, NULL) == 0);
    session_traffic(&s, false);
    rate_limited_traffic(&s);
    /* a worker counts its job done just after the answer has gone out: the scrape waits for the
     * last one (a few microseconds) to say the queue is empty */
    char *plain = scrape(&s);
    for (int i = 0; i < 100 && !has_line(plain, "smartglass_queue_jobs 0"); i++) {
        free(plain);
        sgt_sleep_ms(20);
        plain = scrape(&s);
    }
    CHECK_EQ_INT(sgt_stop(&s, SIGTERM), 0);

    const char *model_args[] = {"--vision-model", "tests/fixtures/clip_tiny",
                                "--llm-model",    "tests/fixtures/snn_tiny",
                                "--asr-model",    "tests/fixtures/whisper_tiny",
                                "--vad-model",    VAD,
                                "--threads",      "2",
                                NULL};
    CHECK(sgt_start(&s, NULL, model_args) == 0);
    CHECK(sgt_wait_ready(&s));
    session_traffic(&s, true);
    char *models = scrape(&s);
    CHECK_EQ_INT(sgt_stop(&s, SIGTERM), 0);

    check_server_state(plain, models);

    sgt_exposition x = {0};
    sgt_exposition_add(&x, plain);
    sgt_exposition_add(&x, models);
    sgt_selectors sel = {0};
    if (queried_selectors(&sel)) {
        /* each name once: exported or not, and its label matchers seen */
        int missing = 0, names = 0;
        for (size_t i = 0; i < sel.n; i++) {
            bool first = true;
            for (size_t j = 0; j < i && first; j++)
                first = strcmp(sel.v[j].name, sel.v[i].name) != 0;
            const sgt_selector *q = &sel.v[i];
            if (in_list(q->name, synthetic))
                continue;
            char base[128];
            sgt_base_name(&x, q->name, base, sizeof base);
            if (!sgt_exported(&x, q->name)) {
                if (first) {
                    bool in_rules = false, in_dash = false;
                    for (size_t j = 0; j < sel.n; j++) {
                        if (strcmp(sel.v[j].name, q->name) != 0)
                            continue;
                        in_rules |= strcmp(sel.v[j].origin, "alerts.yml") == 0;
                        in_dash |= strcmp(sel.v[j].origin, "smartglass.json") == 0;
                    }
                    fprintf(stderr, "NOT EXPORTED: %s (queried by%s%s)\n", base,
                            in_rules ? " alerts.yml" : "", in_dash ? " smartglass.json" : "");
                    missing++;
                    names++;
                }
                continue;
            }
            names += first;
            for (int m = 0; m < q->nmatch; m++) {
                const sgt_matcher *mt = &q->match[m];
                if (in_list(mt->label, target_labels) || strchr(mt->value, '$'))
                    continue;
                CHECK_MSG(sgt_matcher_seen(&x, q->name, mt), "%s: %s queries %s%s\"%s\", never exported",
                          q->origin, q->name, mt->label, mt->op, mt->value);
            }
        }
        for (int c = 0; contract[c]; c++) {
            bool queried = false;
            for (size_t i = 0; i < sel.n && !queried; i++) {
                char base[128];
                sgt_base_name(&x, sel.v[i].name, base, sizeof base);
                queried = strcmp(base, contract[c]) == 0;
            }
            if (!queried && !sgt_exported(&x, contract[c])) {
                fprintf(stderr, "NOT EXPORTED: %s (issue 13's metric-name contract)\n", contract[c]);
                missing++;
            }
        }
        printf("%d metric names queried, %d queried or contracted names not exported by this "
               "server\n",
               names, missing);
        CHECK_MSG(missing == 0, "%d metric names queried by the rules or the dashboard, or in the "
                                "contract, are not exported (listed above)",
                  missing);
    }
    sgt_selectors_free(&sel);
    sgt_exposition_free(&x);
    free(plain);
    free(models);
    return check_report("test_ops_metrics");
}
