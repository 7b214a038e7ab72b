/* deploy/grafana/smartglass.json is a dashboard Grafana imports (Grafana is not in Debian, so the
 * JSON model is checked here): the ${DS_PROMETHEUS} input, schemaVersion, unique panel ids, a
 * 24-column grid without overlaps, every query on that datasource, every variable defined, the
 * guide's panels present, and every PromQL query parsed by promtool (with the Grafana variables
 * put in as a scrape would see them). */
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "sgtest_promql.h"

#define DS "${DS_PROMETHEUS}"

static const char *str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static bool datasource_ok(json_t *o)
{
    json_t *ds = json_object_get(o, "datasource");
    return strcmp(str(ds, "uid"), DS) == 0 && strcmp(str(ds, "type"), "prometheus") == 0;
}

typedef struct rect {
    long x, y, w, h;
    int id;
} rect;

/* Every $var / ${var} / [[var]] of an expression is a templating variable or a Grafana built-in. */
static void check_variables(const char *expr, json_t *vars)
{
    static const char *const builtins[] = {"__rate_interval", "__interval", "__range", "__interval_ms",
                                           "__range_s", NULL};
    for (const char *p = strchr(expr, '$'); p; p = strchr(p + 1, '$')) {
        const char *n = p + 1 + (p[1] == '{');
        size_t len = 0;
        while (sgt_ident_char((unsigned char)n[len]))
            len++;
        bool known = false;
        for (int i = 0; builtins[i] && !known; i++)
            known = strlen(builtins[i]) == len && strncmp(builtins[i], n, len) == 0;
        size_t i;
        json_t *v;
        json_array_foreach(vars, i, v)
        {
            const char *name = str(v, "name");
            known |= strlen(name) == len && strncmp(name, n, len) == 0;
        }
        CHECK_MSG(known, "undefined variable $%.*s in %s", (int)len, n, expr);
    }
}

/* The expression as Prometheus would get it from Grafana: variables replaced, and a variable's
 * label_values(selector, label) as the selector Grafana asks the series of. */
static char *substitute(const char *expr)
{
    static const struct {
        const char *var, *value;
    } subs[] = {{"$__rate_interval", "1m"}, {"$__interval", "15s"}, {"$__range", "1h"},
                {"$job", ".*"},             {"$instance", ".*"}};
    const char *comma = strrchr(expr, ',');
    char *s = strncmp(expr, "label_values(", 13) == 0 && comma
                  ? strndup(expr + 13, (size_t)(comma - (expr + 13)))
                  : strdup(expr);
    for (size_t k = 0; k < sizeof subs / sizeof *subs; k++) {
        char *at;
        while ((at = strstr(s, subs[k].var))) {
            const size_t vl = strlen(subs[k].var), nl = strlen(subs[k].value);
            char *t = malloc(strlen(s) - vl + nl + 1);
            memcpy(t, s, (size_t)(at - s));
            memcpy(t + (at - s), subs[k].value, nl);
            strcpy(t + (at - s) + nl, at + vl);
            free(s);
            s = t;
        }
    }
    return s;
}

/* promtool parses every query: written as recording rules of a temporary rules file. */
static void check_promql(const sgt_strs *exprs)
{
    char path[] = "/tmp/sg-dashboard-rules-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    FILE *f = fdopen(fd, "w");
    fprintf(f, "groups:\n  - name: dashboard\n    rules:\n");
    for (size_t i = 0; i < exprs->n; i++) {
        char *e = substitute(exprs->v[i]);
        json_t *js = json_string(e);
        char *quoted = json_dumps(js, JSON_ENCODE_ANY); /* a JSON string is a YAML string */
        fprintf(f, "      - record: dashboard_query_%zu\n        expr: %s\n", i, quoted);
        free(quoted);
        json_decref(js);
        free(e);
    }
    fclose(f);
    pid_t pid = fork();
    if (pid == 0) {
        execlp("promtool", "promtool", "check", "rules", path, (char *)NULL);
        fprintf(stderr, "promtool not found: install Debian's prometheus package (scripts/deps.sh)\n");
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "promtool check rules on the dashboard's queries exited %d (its errors above)",
              WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    unlink(path);
}

/* The guide's panels: a title and what its queries must hold. */
static const struct {
    const char *title, *needs[4];
} required[] = {
    {"End-to-end latency", {"stage=\"e2e\"", "histogram_quantile(0.5,", "histogram_quantile(0.95,", "histogram_quantile(0.99,"}},
    {"CLIP", {"stage=\"vision\"", "histogram_quantile(0.5,", "histogram_quantile(0.95,", "histogram_quantile(0.99,"}},
    {"Whisper", {"stage=\"asr\"", "histogram_quantile(0.5,", "histogram_quantile(0.95,", "histogram_quantile(0.99,"}},
    {"Language model", {"stage=\"llm\"", "histogram_quantile(0.5,", "histogram_quantile(0.95,", "histogram_quantile(0.99,"}},
    {"VAD", {"stage=\"vad\"", "histogram_quantile(0.5,", "histogram_quantile(0.95,", "histogram_quantile(0.99,"}},
    {"Active sessions", {"smartglass_active_sessions"}},
    {"Model inference time", {"smartglass_query_duration_seconds_sum", "smartglass_query_duration_seconds_count"}},
    {"Memory", {"process_resident_memory_bytes"}},
    {"CPU", {"rate(process_cpu_seconds_total"}},
    {"Error rate", {"code=~\"5..\""}},
    {"Upload KB/min by battery band", {"smartglass_client_upload_kb_per_min", "by (band)"}},
    {"Frame rate by battery band", {"smartglass_client_fps", "by (band)"}},
    {"Battery drain by band", {"smartglass_battery_level", "[1h]", "by (band)"}},
    {"Degraded turns", {"smartglass_degraded_total"}},
};

int main(void)
{
    json_error_t jerr;
    json_t *d = json_load_file("deploy/grafana/smartglass.json", JSON_REJECT_DUPLICATES, &jerr);
    CHECK_MSG(d != NULL, "deploy/grafana/smartglass.json:%d: %s", jerr.line, jerr.text);
    if (!d)
        return check_report("test_ops_dashboard");

    /* import: one datasource input, DS_PROMETHEUS, of the Prometheus plugin */
    json_t *inputs = json_object_get(d, "__inputs");
    CHECK(json_array_size(inputs) == 1);
    json_t *in = json_array_get(inputs, 0);
    CHECK(strcmp(str(in, "name"), "DS_PROMETHEUS") == 0 && strcmp(str(in, "type"), "datasource") == 0 &&
          strcmp(str(in, "pluginId"), "prometheus") == 0);
    CHECK(json_integer_value(json_object_get(d, "schemaVersion")) >= 36);
    CHECK(str(d, "title")[0] && str(d, "uid")[0] && strlen(str(d, "uid")) <= 40);
    CHECK(json_is_null(json_object_get(d, "id"))); /* Grafana assigns it at import */

    json_t *vars = json_object_get(json_object_get(d, "templating"), "list");
    size_t i;
    json_t *v;
    json_array_foreach(vars, i, v)
    {
        CHECK_MSG(str(v, "name")[0], "variable %zu without a name", i);
        if (strcmp(str(v, "type"), "query") == 0)
            CHECK_MSG(datasource_ok(v), "variable %s: datasource", str(v, "name"));
    }

    json_t *panels = json_object_get(d, "panels");
    CHECK(json_array_size(panels) >= 20);
    rect rects[256];
    size_t nrect = 0;
    int ids[256];
    size_t nids = 0;
    json_t *p;
    json_array_foreach(panels, i, p)
    {
        const char *type = str(p, "type"), *title = str(p, "title");
        const int id = (int)json_integer_value(json_object_get(p, "id"));
        CHECK_MSG(id > 0, "panel %zu (%s): id", i, title);
        for (size_t k = 0; k < nids; k++)
            CHECK_MSG(ids[k] != id, "panel id %d twice", id);
        if (nids < 256)
            ids[nids++] = id;
        CHECK_MSG(title[0], "panel %d without a title", id);
        static const char *const types[] = {"row", "timeseries", "stat", "gauge", "bargauge",
                                            "table", "state-timeline", "text", NULL};
        bool known = false;
        for (int k = 0; types[k]; k++)
            known |= strcmp(types[k], type) == 0;
        CHECK_MSG(known, "panel %d: type %s", id, type);
        json_t *g = json_object_get(p, "gridPos");
        rect r = {json_integer_value(json_object_get(g, "x")), json_integer_value(json_object_get(g, "y")),
                  json_integer_value(json_object_get(g, "w")), json_integer_value(json_object_get(g, "h")), id};
        CHECK_MSG(json_is_integer(json_object_get(g, "x")) && json_is_integer(json_object_get(g, "y")) &&
                      r.x >= 0 && r.y >= 0 && r.w >= 1 && r.h >= 1 && r.x + r.w <= 24,
                  "panel %d (%s): gridPos", id, title);
        for (size_t k = 0; k < nrect; k++) {
            const rect *o = &rects[k];
            const bool overlap = r.x < o->x + o->w && o->x < r.x + r.w && r.y < o->y + o->h &&
                                 o->y < r.y + r.h;
            CHECK_MSG(!overlap, "panels %d and %d overlap", o->id, id);
        }
        if (nrect < 256)
            rects[nrect++] = r;
        if (strcmp(type, "row") == 0) {
            CHECK_MSG(r.w == 24 && r.h == 1 && r.x == 0, "row %d: a full-width line", id);
            continue;
        }
        if (strcmp(type, "text") == 0)
            continue;
        CHECK_MSG(datasource_ok(p), "panel %d (%s): datasource", id, title);
        json_t *targets = json_object_get(p, "targets"), *t;
        CHECK_MSG(json_array_size(targets) >= 1, "panel %d (%s): no query", id, title);
        size_t k;
        json_array_foreach(targets, k, t)
        {
            CHECK_MSG(datasource_ok(t), "panel %d (%s) query %zu: datasource", id, title, k);
            CHECK_MSG(str(t, "expr")[0], "panel %d (%s) query %zu: empty", id, title, k);
            check_variables(str(t, "expr"), vars);
            for (size_t l = 0; l < k; l++)
                CHECK_MSG(strcmp(str(json_array_get(targets, l), "refId"), str(t, "refId")) != 0,
                          "panel %d: refId %s twice", id, str(t, "refId"));
        }
    }

    /* the guide's panels, each by its title, with what its queries must hold */
    for (size_t r = 0; r < sizeof required / sizeof *required; r++) {
        json_t *found = NULL;
        json_array_foreach(panels, i, p) if (!found && strstr(str(p, "title"), required[r].title)) found = p;
        CHECK_MSG(found != NULL, "no panel titled \"%s\"", required[r].title);
        if (!found)
            continue;
        for (int n = 0; n < 4 && required[r].needs[n]; n++) {
            bool has = false;
            size_t k;
            json_t *t;
            json_array_foreach(json_object_get(found, "targets"), k, t) has |=
                strstr(str(t, "expr"), required[r].needs[n]) != NULL;
            CHECK_MSG(has, "panel \"%s\": no query with %s", str(found, "title"), required[r].needs[n]);
        }
    }

    sgt_strs exprs = {0};
    sgt_dashboard_exprs(d, &exprs);
    CHECK(exprs.n >= 40);
    check_promql(&exprs);
    sgt_strs_free(&exprs);
    json_decref(d);
    return check_report("test_ops_dashboard");
}
