/* Server metrics: per-stage latency (count/avg/min/max over the whole run, p50/p95/p99 over a
 * window of the most recent samples, Prometheus histogram buckets), counters, and per-route
 * request counts. Thread-safe; recording takes one short mutex per stage. */
#ifndef SG_SERVER_METRICS_H
#define SG_SERVER_METRICS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "server/telemetry.h"

typedef enum sg_stage {
    SG_STAGE_VAD = 0,
    SG_STAGE_ASR,
    SG_STAGE_VISION,
    SG_STAGE_LLM,
    SG_STAGE_E2E,
    SG_STAGE_INGEST_FRAME,
    SG_STAGE_INGEST_AUDIO,
    SG_STAGE_COUNT
} sg_stage;

typedef enum sg_counter {
    SG_COUNTER_QUERIES = 0,
    SG_COUNTER_SESSIONS,
    SG_COUNTER_FRAMES,
    SG_COUNTER_KEYFRAMES,
    SG_COUNTER_ERRORS,   /* responses with a 4xx/5xx status other than those below */
    SG_COUNTER_REJECTED, /* 503 OVERLOADED and 429 RATE_LIMITED */
    SG_COUNTER_COUNT
} sg_counter;

#define SG_METRICS_WINDOW 4096

typedef struct sg_metrics sg_metrics;

sg_metrics *sg_metrics_new(void);
void sg_metrics_free(sg_metrics *m);
void sg_metrics_record(sg_metrics *m, sg_stage stage, double ms);
void sg_metrics_count(sg_metrics *m, sg_counter c, long delta);
long sg_metrics_counter(sg_metrics *m, sg_counter c);
/* route: a route template such as "/sessions/{id}/query". */
void sg_metrics_request(sg_metrics *m, const char *route, int status);

typedef struct sg_stage_stats {
    long count;
    double sum, avg, min, max, p50, p95, p99;
} sg_stage_stats;
void sg_metrics_stage(sg_metrics *m, sg_stage stage, sg_stage_stats *out);
const char *sg_stage_name(sg_stage stage);

/* Percentile with linear interpolation between closest ranks (numpy's default) of sorted[0..n). */
double sg_percentile(const double *sorted, size_t n, double p);

/* GET /metrics body (latencies and counters; the server adds sessions and uptime). Beside ours
 * (milliseconds, API.md's shape) latencies also holds the Python runtime's entries - "ASR",
 * "Vision", "LLM", "dat_ingest_audio_latency_ms", "dat_ingest_frame_latency_ms",
 * "end_to_end_turn_latency_ms" and their aggregate "all", each {count,total,avg,min,max} in
 * seconds as it measured them - and the body has its "queries": {"total"}, so a dashboard built
 * on that runtime keeps working. */
json_t *sg_metrics_json(sg_metrics *m);
/* ---- what operators alert on (deploy/prometheus/alerts.yml) ------------------------------ */

/* The model slots of a server. Each is exported as smartglass_model_configured{kind} and
 * smartglass_model_loaded{kind} (1/0), every kind always, so a model that is named but never
 * becomes ready is visible (configured 1, loaded 0) and so is an instance started without one. */
typedef enum sg_model_kind {
    SG_MODEL_VISION = 0,
    SG_MODEL_ASR,
    SG_MODEL_ASR_FALLBACK,
    SG_MODEL_VAD,
    SG_MODEL_LLM,
    SG_MODEL_COUNT
} sg_model_kind;
void sg_metrics_model(sg_metrics *m, sg_model_kind kind, bool configured, bool loaded);

/* The session store's reachability (smartglass_store_up; starts at 1: the in-process store is
 * always up) and its failed operations (smartglass_store_errors_total). A shared store reports
 * both as it talks to its server. */
void sg_metrics_store_up(sg_metrics *m, bool up);
void sg_metrics_store_error(sg_metrics *m);

/* An error response by its API code ("OVERLOADED", ...): smartglass_error_responses_total{error},
 * which tells a 503 OVERLOADED from a 503 MODEL_UNAVAILABLE or STORE_UNAVAILABLE. A code outside
 * API.md's list counts as "other", so the label's values stay a fixed set. */
void sg_metrics_error_code(sg_metrics *m, const char *code);

/* Graceful degradation (server/degrade.h): a step a turn took below its normal model, by stage
 * (0 asr, 1 llm, 2 vision: sg_deg_stage) and reason ("budget": the turn would have broken
 * SG_LATENCY_BUDGET_MS) - smartglass_degraded_total{stage,reason}, every pair exported from the
 * start at 0. */
void sg_metrics_degraded(sg_metrics *m, int stage, const char *reason);

/* What the server passes in at each scrape: values that live elsewhere. */
typedef struct sg_metrics_live {
    long active_sessions, created_sessions, open_websockets;
    double uptime_s;
    int queue_jobs;     /* work-queue jobs queued or running */
    int queue_capacity; /* workers + queue depth: beyond it, 503 OVERLOADED */
    int degraded_level[3]; /* the ladder's step in effect per stage (asr, llm, vision), 0 = normal:
                              smartglass_degraded_level{stage} */
    const sg_telemetry_snapshot *clients; /* the clients' reports (NULL: none) */
} sg_metrics_live;

/* Prometheus text exposition, with the process's own metrics (process_cpu_seconds_total,
 * process_resident_memory_bytes, ... as Prometheus client libraries name them). Returns malloc'ed
 * text. */
char *sg_metrics_prometheus(sg_metrics *m, const sg_metrics_live *live);

#endif
