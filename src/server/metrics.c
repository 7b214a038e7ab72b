/* Metrics store. Each stage keeps running totals plus a ring of the last SG_METRICS_WINDOW samples
 * for percentiles, and cumulative histogram buckets for Prometheus. */
#include "server/metrics.h"

#include "server/degrade.h"
#include "server/procstat.h"

#include <float.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double bucket_s[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                  0.25,  0.5,    1.0,   2.5,  5.0,   10.0};
#define NBUCKETS (sizeof bucket_s / sizeof bucket_s[0])

typedef struct stage_data {
    pthread_mutex_t lock;
    long count;
    double sum, min, max;
    double ring[SG_METRICS_WINDOW];
    size_t ring_next, ring_n;
    long buckets[NBUCKETS]; /* non-cumulative; summed when exported */
} stage_data;

#define MAX_ROUTE_CODES 128

typedef struct route_code {
    const char *route; /* static string */
    int status;
    atomic_long n;
} route_code;

/* API.md's error codes: the values of smartglass_error_responses_total's label, plus "other". */
static const char *const error_codes[] = {
    "INVALID_REQUEST", "INVALID_SESSION",   "INVALID_IMAGE",     "INVALID_AUDIO",
    "PAYLOAD_TOO_LARGE", "UNAUTHORIZED",    "RATE_LIMITED",      "OVERLOADED",
    "MODEL_UNAVAILABLE", "STORE_UNAVAILABLE", "INTERNAL_ERROR",  "other"};
#define NERROR_CODES (sizeof error_codes / sizeof error_codes[0])

/* smartglass_degraded_total's reasons (a fixed set, so every series exists from the start) */
static const char *const degrade_reasons[] = {"budget"};
#define NDEGRADE_REASONS (sizeof degrade_reasons / sizeof degrade_reasons[0])

static const char *const model_kinds[SG_MODEL_COUNT] = {"vision", "asr", "asr_fallback", "vad",
                                                        "llm"};

struct sg_metrics {
    stage_data stages[SG_STAGE_COUNT];
    atomic_long counters[SG_COUNTER_COUNT];
    pthread_mutex_t routes_lock;
    route_code routes[MAX_ROUTE_CODES];
    atomic_int nroutes;
    atomic_bool model_configured[SG_MODEL_COUNT], model_loaded[SG_MODEL_COUNT];
    atomic_bool store_up;
    atomic_long store_errors;
    atomic_long error_responses[NERROR_CODES];
    atomic_long degraded[SG_DEG_STAGES][NDEGRADE_REASONS];
};

static const char *stage_names[SG_STAGE_COUNT] = {"vad", "asr", "vision", "llm", "e2e",
                                                  "ingest_frame", "ingest_audio"};
static const char *counter_names[SG_COUNTER_COUNT] = {"queries", "sessions", "frames",
                                                      "keyframes", "errors", "rejected"};

const char *sg_stage_name(sg_stage stage) { return stage_names[stage]; }

sg_metrics *sg_metrics_new(void)
{
    sg_metrics *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    for (int i = 0; i < SG_STAGE_COUNT; i++)
        pthread_mutex_init(&m->stages[i].lock, NULL);
    pthread_mutex_init(&m->routes_lock, NULL);
    atomic_store(&m->store_up, true);
    return m;
}

void sg_metrics_free(sg_metrics *m)
{
    if (!m)
        return;
    for (int i = 0; i < SG_STAGE_COUNT; i++)
        pthread_mutex_destroy(&m->stages[i].lock);
    pthread_mutex_destroy(&m->routes_lock);
    free(m);
}

void sg_metrics_record(sg_metrics *m, sg_stage stage, double ms)
{
    if (ms < 0)
        return;
    stage_data *s = &m->stages[stage];
    size_t b = 0;
    while (b < NBUCKETS && ms / 1000.0 > bucket_s[b])
        b++;
    pthread_mutex_lock(&s->lock);
    if (s->count == 0 || ms < s->min)
        s->min = ms;
    if (s->count == 0 || ms > s->max)
        s->max = ms;
    s->count++;
    s->sum += ms;
    s->ring[s->ring_next] = ms;
    s->ring_next = (s->ring_next + 1) % SG_METRICS_WINDOW;
    if (s->ring_n < SG_METRICS_WINDOW)
        s->ring_n++;
    if (b < NBUCKETS)
        s->buckets[b]++;
    pthread_mutex_unlock(&s->lock);
}

void sg_metrics_count(sg_metrics *m, sg_counter c, long delta) { atomic_fetch_add(&m->counters[c], delta); }

long sg_metrics_counter(sg_metrics *m, sg_counter c) { return atomic_load(&m->counters[c]); }

void sg_metrics_request(sg_metrics *m, const char *route, int status)
{
    int n = atomic_load(&m->nroutes);
    for (int i = 0; i < n; i++) {
        if (m->routes[i].status == status && strcmp(m->routes[i].route, route) == 0) {
            atomic_fetch_add(&m->routes[i].n, 1);
            return;
        }
    }
    pthread_mutex_lock(&m->routes_lock);
    n = atomic_load(&m->nroutes);
    for (int i = 0; i < n; i++) {
        if (m->routes[i].status == status && strcmp(m->routes[i].route, route) == 0) {
            atomic_fetch_add(&m->routes[i].n, 1);
            pthread_mutex_unlock(&m->routes_lock);
            return;
        }
    }
    if (n < MAX_ROUTE_CODES) {
        m->routes[n].route = route;
        m->routes[n].status = status;
        atomic_store(&m->routes[n].n, 1);
        atomic_store(&m->nroutes, n + 1); /* publish after the entry is complete */
    }
    pthread_mutex_unlock(&m->routes_lock);
}

void sg_metrics_model(sg_metrics *m, sg_model_kind kind, bool configured, bool loaded)
{
    if ((unsigned)kind >= SG_MODEL_COUNT)
        return;
    atomic_store(&m->model_configured[kind], configured);
    atomic_store(&m->model_loaded[kind], loaded);
}

void sg_metrics_store_up(sg_metrics *m, bool up) { atomic_store(&m->store_up, up); }

void sg_metrics_store_error(sg_metrics *m) { atomic_fetch_add(&m->store_errors, 1); }

void sg_metrics_error_code(sg_metrics *m, const char *code)
{
    size_t i = 0;
    while (i < NERROR_CODES - 1 && (!code || strcmp(code, error_codes[i]) != 0))
        i++;
    atomic_fetch_add(&m->error_responses[i], 1);
}

void sg_metrics_degraded(sg_metrics *m, int stage, const char *reason)
{
    if (stage < 0 || stage >= SG_DEG_STAGES)
        return;
    for (size_t i = 0; i < NDEGRADE_REASONS; i++)
        if (reason && strcmp(reason, degrade_reasons[i]) == 0)
            atomic_fetch_add(&m->degraded[stage][i], 1);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double sg_percentile(const double *sorted, size_t n, double p)
{
    if (n == 0)
        return 0.0;
    if (p <= 0)
        return sorted[0];
    if (p >= 100)
        return sorted[n - 1];
    double rank = p / 100.0 * (double)(n - 1);
    size_t lo = (size_t)rank;
    double frac = rank - (double)lo;
    if (lo + 1 >= n)
        return sorted[n - 1];
    return sorted[lo] + (sorted[lo + 1] - sorted[lo]) * frac;
}

void sg_metrics_stage(sg_metrics *m, sg_stage stage, sg_stage_stats *out)
{
    stage_data *s = &m->stages[stage];
    static _Thread_local double buf[SG_METRICS_WINDOW];
    pthread_mutex_lock(&s->lock);
    out->count = s->count;
    out->sum = s->sum;
    out->avg = s->count ? s->sum / (double)s->count : 0.0;
    out->min = s->min;
    out->max = s->max;
    size_t n = s->ring_n;
    memcpy(buf, s->ring, n * sizeof(double));
    pthread_mutex_unlock(&s->lock);
    qsort(buf, n, sizeof(double), cmp_double);
    out->p50 = sg_percentile(buf, n, 50);
    out->p95 = sg_percentile(buf, n, 95);
    out->p99 = sg_percentile(buf, n, 99);
}

static double r3(double x) { return (double)(long long)(x * 1000.0 + 0.5) / 1000.0; }

/* The Python runtime's latency tags for our stages (its src/utils/metrics.py recorded "ASR",
 * "Vision" and "LLM" around the models, the DAT names around ingest and turns) and its
 * {count,total,avg,min,max} in seconds; "all" aggregates them as its registry did. */
static const struct {
    const char *name;
    sg_stage stage;
} upstream_stages[] = {
    {"ASR", SG_STAGE_ASR},
    {"Vision", SG_STAGE_VISION},
    {"LLM", SG_STAGE_LLM},
    {"dat_ingest_audio_latency_ms", SG_STAGE_INGEST_AUDIO},
    {"dat_ingest_frame_latency_ms", SG_STAGE_INGEST_FRAME},
    {"end_to_end_turn_latency_ms", SG_STAGE_E2E},
};

static double r6(double x) { return (double)(long long)(x * 1e6 + 0.5) / 1e6; }

static json_t *upstream_entry(long count, double sum_ms, double min_ms, double max_ms)
{
    double total = sum_ms / 1000.0;
    return json_pack("{s:I,s:f,s:f,s:f,s:f}", "count", (json_int_t)count, "total", r6(total),
                     "avg", count ? r6(total / (double)count) : 0.0, "min", r6(min_ms / 1000.0),
                     "max", r6(max_ms / 1000.0));
}

json_t *sg_metrics_json(sg_metrics *m)
{
    json_t *lat = json_object();
    sg_stage_stats all[SG_STAGE_COUNT];
    for (int i = 0; i < SG_STAGE_COUNT; i++) {
        sg_stage_stats st;
        sg_metrics_stage(m, (sg_stage)i, &st);
        all[i] = st;
        json_object_set_new(lat, stage_names[i],
                            json_pack("{s:I,s:f,s:f,s:f,s:f,s:f,s:f}", "count", (json_int_t)st.count,
                                      "avg", r3(st.avg), "min", r3(st.min), "max", r3(st.max),
                                      "p50", r3(st.p50), "p95", r3(st.p95), "p99", r3(st.p99)));
    }
    long n = 0;
    double sum = 0, lo = 0, hi = 0;
    for (size_t k = 0; k < sizeof upstream_stages / sizeof *upstream_stages; k++) {
        const sg_stage_stats *st = &all[upstream_stages[k].stage];
        json_object_set_new(lat, upstream_stages[k].name,
                            upstream_entry(st->count, st->sum, st->count ? st->min : 0,
                                           st->count ? st->max : 0));
        if (st->count) {
            lo = n == 0 || st->min < lo ? st->min : lo;
            hi = n == 0 || st->max > hi ? st->max : hi;
            n += st->count;
            sum += st->sum;
        }
    }
    json_object_set_new(lat, "all", upstream_entry(n, sum, lo, hi));
    json_t *cnt = json_object();
    for (int i = 0; i < SG_COUNTER_COUNT; i++)
        json_object_set_new(cnt, counter_names[i], json_integer(sg_metrics_counter(m, (sg_counter)i)));
    return json_pack("{s:o,s:o,s:{s:I}}", "latencies", lat, "counters", cnt, "queries", "total",
                     (json_int_t)sg_metrics_counter(m, SG_COUNTER_QUERIES));
}

typedef struct strbuf {
    char *p;
    size_t n, cap;
    int failed;
} strbuf;

static void sb_printf(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(strbuf *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int w = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
        va_end(ap);
        if (w < 0) {
            b->failed = 1;
            return;
        }
        if ((size_t)w < b->cap - b->n) {
            b->n += (size_t)w;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)w;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

/* The operations block: model slots, the session store, error codes, the work queue. */
static void prometheus_ops(strbuf *b, sg_metrics *m, const sg_metrics_live *live)
{
    sb_printf(b, "# HELP smartglass_model_configured 1 when the model of this kind is configured.\n"
                 "# TYPE smartglass_model_configured gauge\n");
    for (int k = 0; k < SG_MODEL_COUNT; k++)
        sb_printf(b, "smartglass_model_configured{kind=\"%s\"} %d\n", model_kinds[k],
                  atomic_load(&m->model_configured[k]) ? 1 : 0);
    sb_printf(b, "# HELP smartglass_model_loaded 1 when the model of this kind is loaded and serving.\n"
                 "# TYPE smartglass_model_loaded gauge\n");
    for (int k = 0; k < SG_MODEL_COUNT; k++)
        sb_printf(b, "smartglass_model_loaded{kind=\"%s\"} %d\n", model_kinds[k],
                  atomic_load(&m->model_loaded[k]) ? 1 : 0);
    sb_printf(b, "# HELP smartglass_store_up 1 when the session store can be reached.\n"
                 "# TYPE smartglass_store_up gauge\nsmartglass_store_up %d\n"
                 "# HELP smartglass_store_errors_total Session-store operations that failed.\n"
                 "# TYPE smartglass_store_errors_total counter\nsmartglass_store_errors_total %ld\n",
              atomic_load(&m->store_up) ? 1 : 0, atomic_load(&m->store_errors));
    sb_printf(b, "# HELP smartglass_error_responses_total Error responses by their API error code.\n"
                 "# TYPE smartglass_error_responses_total counter\n");
    for (size_t i = 0; i < NERROR_CODES; i++)
        sb_printf(b, "smartglass_error_responses_total{error=\"%s\"} %ld\n", error_codes[i],
                  atomic_load(&m->error_responses[i]));
    sb_printf(b, "# HELP smartglass_queue_jobs Work-queue jobs queued or running.\n"
                 "# TYPE smartglass_queue_jobs gauge\nsmartglass_queue_jobs %d\n"
                 "# HELP smartglass_queue_capacity Jobs the work queue holds (workers + depth) "
                 "before 503 OVERLOADED.\n"
                 "# TYPE smartglass_queue_capacity gauge\nsmartglass_queue_capacity %d\n",
              live->queue_jobs, live->queue_capacity);
    sb_printf(b, "# HELP smartglass_degraded_total Turn stages served below their normal model to "
                 "keep within SG_LATENCY_BUDGET_MS, by stage and reason.\n"
                 "# TYPE smartglass_degraded_total counter\n");
    for (int s = 0; s < SG_DEG_STAGES; s++)
        for (size_t i = 0; i < NDEGRADE_REASONS; i++)
            sb_printf(b, "smartglass_degraded_total{stage=\"%s\",reason=\"%s\"} %ld\n",
                      sg_deg_stage_name((sg_deg_stage)s), degrade_reasons[i],
                      atomic_load(&m->degraded[s][i]));
    sb_printf(b, "# HELP smartglass_degraded_level The degradation ladder's step in effect per "
                 "stage (0 = normal).\n# TYPE smartglass_degraded_level gauge\n");
    for (int s = 0; s < SG_DEG_STAGES; s++)
        sb_printf(b, "smartglass_degraded_level{stage=\"%s\"} %d\n",
                  sg_deg_stage_name((sg_deg_stage)s), live->degraded_level[s]);
}

/* The clients' telemetry by battery band. The means are over the sessions that said the value;
 * a band without such sessions has no sample (no data, rather than a mean of 0). */
static void prometheus_clients(strbuf *b, const sg_telemetry_snapshot *c)
{
    static const sg_telemetry_snapshot none;
    if (!c)
        c = &none;
    sb_printf(b, "# HELP smartglass_client_sessions Sessions whose client reported telemetry in "
                 "the last %.0f s, by battery band.\n# TYPE smartglass_client_sessions gauge\n",
              SG_TELEMETRY_WINDOW_S);
    for (int k = 0; k < SG_BAND_COUNT; k++)
        sb_printf(b, "smartglass_client_sessions{band=\"%s\"} %ld\n",
                  sg_battery_band_name((sg_battery_band)k), c->band[k].sessions);
    static const struct {
        const char *name, *help;
    } means[] = {
        {"smartglass_battery_level", "Mean battery level (percent) of the reporting clients."},
        {"smartglass_client_fps", "Mean frames a second the reporting clients send."},
        {"smartglass_client_upload_kb_per_min", "Mean KB a minute the reporting clients upload."},
    };
    for (int i = 0; i < 3; i++) {
        sb_printf(b, "# HELP %s %s\n# TYPE %s gauge\n", means[i].name, means[i].help, means[i].name);
        for (int k = 0; k < SG_BAND_COUNT; k++) {
            const sg_telemetry_band *t = &c->band[k];
            const long n = i == 0 ? t->sessions : i == 1 ? t->fps_n : t->upload_n;
            const double sum = i == 0 ? t->battery_sum : i == 1 ? t->fps_sum : t->upload_sum;
            if (n > 0)
                sb_printf(b, "%s{band=\"%s\"} %.6g\n", means[i].name,
                          sg_battery_band_name((sg_battery_band)k), sum / (double)n);
        }
    }
    sb_printf(b, "# HELP smartglass_client_charging Reporting clients that are charging.\n"
                 "# TYPE smartglass_client_charging gauge\nsmartglass_client_charging %ld\n"
                 "# HELP smartglass_client_memory_bytes Resident memory of the reporting clients: "
                 "their mean and the largest.\n# TYPE smartglass_client_memory_bytes gauge\n",
              c->charging);
    if (c->memory_n > 0)
        sb_printf(b, "smartglass_client_memory_bytes{stat=\"mean\"} %.0f\n"
                     "smartglass_client_memory_bytes{stat=\"max\"} %.0f\n",
                  c->memory_sum / (double)c->memory_n, c->memory_max);
    sb_printf(b, "# HELP smartglass_client_reports_total Telemetry reports received.\n"
                 "# TYPE smartglass_client_reports_total counter\nsmartglass_client_reports_total %ld\n",
              c->reports);
}

/* The standard process metrics, named and typed as the Prometheus client libraries export them. */
static void prometheus_process(strbuf *b)
{
    sg_procstat ps;
    if (!sg_procstat_read(&ps))
        return;
    sb_printf(b, "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
                 "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %.2f\n"
                 "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
                 "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %.0f\n"
                 "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
                 "# TYPE process_virtual_memory_bytes gauge\nprocess_virtual_memory_bytes %.0f\n",
              ps.cpu_seconds, ps.resident_bytes, ps.virtual_bytes);
    if (ps.start_time_s >= 0)
        sb_printf(b, "# HELP process_start_time_seconds Start time of the process since unix epoch "
                     "in seconds.\n# TYPE process_start_time_seconds gauge\n"
                     "process_start_time_seconds %.2f\n",
                  ps.start_time_s);
    if (ps.open_fds >= 0)
        sb_printf(b, "# HELP process_open_fds Number of open file descriptors.\n"
                     "# TYPE process_open_fds gauge\nprocess_open_fds %ld\n",
                  ps.open_fds);
    if (ps.max_fds >= 0)
        sb_printf(b, "# HELP process_max_fds Maximum number of open file descriptors.\n"
                     "# TYPE process_max_fds gauge\nprocess_max_fds %ld\n",
                  ps.max_fds);
}

char *sg_metrics_prometheus(sg_metrics *m, const sg_metrics_live *live)
{
    strbuf b = {malloc(8192), 0, 8192, 0};
    if (!b.p)
        return NULL;
    sb_printf(&b, "# HELP smartglass_query_duration_seconds Latency of each pipeline stage.\n"
                  "# TYPE smartglass_query_duration_seconds histogram\n");
    for (int i = 0; i < SG_STAGE_COUNT; i++) {
        stage_data *s = &m->stages[i];
        long buckets[NBUCKETS], count;
        double sum;
        pthread_mutex_lock(&s->lock);
        memcpy(buckets, s->buckets, sizeof buckets);
        count = s->count;
        sum = s->sum;
        pthread_mutex_unlock(&s->lock);
        long cum = 0;
        for (size_t k = 0; k < NBUCKETS; k++) {
            cum += buckets[k];
            sb_printf(&b, "smartglass_query_duration_seconds_bucket{stage=\"%s\",le=\"%g\"} %ld\n",
                      stage_names[i], bucket_s[k], cum);
        }
        sb_printf(&b, "smartglass_query_duration_seconds_bucket{stage=\"%s\",le=\"+Inf\"} %ld\n",
                  stage_names[i], count);
        sb_printf(&b, "smartglass_query_duration_seconds_sum{stage=\"%s\"} %.6f\n", stage_names[i],
                  sum / 1000.0);
        sb_printf(&b, "smartglass_query_duration_seconds_count{stage=\"%s\"} %ld\n", stage_names[i],
                  count);
    }
    sb_printf(&b, "# HELP smartglass_active_sessions Sessions currently open.\n"
                  "# TYPE smartglass_active_sessions gauge\nsmartglass_active_sessions %ld\n",
              live->active_sessions);
    sb_printf(&b, "# HELP smartglass_websockets_open WebSockets open or being upgraded.\n"
                  "# TYPE smartglass_websockets_open gauge\nsmartglass_websockets_open %ld\n",
              live->open_websockets);
    sb_printf(&b, "# HELP smartglass_sessions_created_total Sessions created since start.\n"
                  "# TYPE smartglass_sessions_created_total counter\nsmartglass_sessions_created_total %ld\n",
              live->created_sessions);
    for (int i = 0; i < SG_COUNTER_COUNT; i++) {
        sb_printf(&b, "# TYPE smartglass_%s_total counter\nsmartglass_%s_total %ld\n",
                  counter_names[i], counter_names[i], sg_metrics_counter(m, (sg_counter)i));
    }
    sb_printf(&b, "# HELP smartglass_requests_total HTTP requests by route template and status.\n"
                  "# TYPE smartglass_requests_total counter\n");
    int n = atomic_load(&m->nroutes);
    for (int i = 0; i < n; i++)
        sb_printf(&b, "smartglass_requests_total{route=\"%s\",code=\"%d\"} %ld\n", m->routes[i].route,
                  m->routes[i].status, atomic_load(&m->routes[i].n));
    sb_printf(&b, "# TYPE smartglass_uptime_seconds gauge\nsmartglass_uptime_seconds %.3f\n",
              live->uptime_s);
    prometheus_ops(&b, m, live);
    prometheus_clients(&b, live->clients);
    prometheus_process(&b);
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
