/* Unit tests for server/metrics: percentiles, running stats, counters, Prometheus output. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "server/metrics.h"

int main(void)
{
    /* numpy.percentile(x, p) with linear interpolation */
    double a[] = {1, 2, 3, 4};
    CHECK_NEAR(sg_percentile(a, 4, 50), 2.5, 1e-12);
    CHECK_NEAR(sg_percentile(a, 4, 95), 3.85, 1e-12);
    CHECK_NEAR(sg_percentile(a, 4, 99), 3.97, 1e-12);
    CHECK_NEAR(sg_percentile(a, 4, 0), 1, 1e-12);
    CHECK_NEAR(sg_percentile(a, 4, 100), 4, 1e-12);
    double one[] = {7};
    CHECK_NEAR(sg_percentile(one, 1, 95), 7, 1e-12);
    CHECK_NEAR(sg_percentile(NULL, 0, 50), 0, 1e-12);
    double hundred[101];
    for (int i = 0; i <= 100; i++)
        hundred[i] = i;
    CHECK_NEAR(sg_percentile(hundred, 101, 95), 95, 1e-9);
    CHECK_NEAR(sg_percentile(hundred, 101, 99), 99, 1e-9);

    sg_metrics *m = sg_metrics_new();
    CHECK(m != NULL);
    sg_stage_stats st;
    sg_metrics_stage(m, SG_STAGE_LLM, &st);
    CHECK_EQ_INT(st.count, 0);
    /* samples recorded out of order: stats must sort */
    for (int i = 100; i >= 1; i--)
        sg_metrics_record(m, SG_STAGE_LLM, i);
    sg_metrics_record(m, SG_STAGE_LLM, -1); /* a stage that did not run is not a sample */
    sg_metrics_stage(m, SG_STAGE_LLM, &st);
    CHECK_EQ_INT(st.count, 100);
    CHECK_NEAR(st.avg, 50.5, 1e-9);
    CHECK_NEAR(st.min, 1, 1e-9);
    CHECK_NEAR(st.max, 100, 1e-9);
    CHECK_NEAR(st.p50, 50.5, 1e-9);
    CHECK_NEAR(st.p95, 95.05, 1e-9);
    CHECK_NEAR(st.p99, 99.01, 1e-9);
    /* the percentile window keeps the most recent SG_METRICS_WINDOW samples; totals keep all */
    for (int i = 0; i < SG_METRICS_WINDOW; i++)
        sg_metrics_record(m, SG_STAGE_E2E, 1000);
    for (int i = 0; i < SG_METRICS_WINDOW; i++)
        sg_metrics_record(m, SG_STAGE_E2E, 10);
    sg_metrics_stage(m, SG_STAGE_E2E, &st);
    CHECK_EQ_INT(st.count, 2 * SG_METRICS_WINDOW);
    CHECK_NEAR(st.p99, 10, 1e-9);
    CHECK_NEAR(st.max, 1000, 1e-9);
    CHECK_NEAR(st.avg, 505, 1e-9);

    sg_metrics_count(m, SG_COUNTER_QUERIES, 3);
    sg_metrics_count(m, SG_COUNTER_QUERIES, 2);
    CHECK_EQ_INT(sg_metrics_counter(m, SG_COUNTER_QUERIES), 5);
    sg_metrics_request(m, "/health", 200);
    sg_metrics_request(m, "/health", 200);
    sg_metrics_request(m, "/sessions/{id}/query", 422);

    json_t *j = sg_metrics_json(m);
    json_t *llm = json_object_get(json_object_get(j, "latencies"), "llm");
    CHECK_EQ_INT(json_integer_value(json_object_get(llm, "count")), 100);
    CHECK_NEAR(json_real_value(json_object_get(llm, "p95")), 95.05, 1e-9);
    CHECK_EQ_INT(json_integer_value(json_object_get(json_object_get(j, "counters"), "queries")), 5);
    /* the Python runtime's keys beside ours: its stage names, seconds, count/total/avg/min/max,
     * the "all" aggregate, queries.total */
    json_t *lat = json_object_get(j, "latencies");
    json_t *up = json_object_get(lat, "LLM");
    CHECK_EQ_INT(json_integer_value(json_object_get(up, "count")), 100);
    CHECK_NEAR(json_real_value(json_object_get(up, "total")), 5.05, 1e-9);
    CHECK_NEAR(json_real_value(json_object_get(up, "avg")), 0.0505, 1e-9);
    CHECK_NEAR(json_real_value(json_object_get(up, "min")), 0.001, 1e-9);
    CHECK_NEAR(json_real_value(json_object_get(up, "max")), 0.1, 1e-9);
    json_t *e2e = json_object_get(lat, "end_to_end_turn_latency_ms");
    CHECK_EQ_INT(json_integer_value(json_object_get(e2e, "count")), 2 * SG_METRICS_WINDOW);
    CHECK_NEAR(json_real_value(json_object_get(e2e, "total")), SG_METRICS_WINDOW * 1.01, 1e-6);
    static const char *const upstream[] = {"ASR", "Vision", "dat_ingest_audio_latency_ms",
                                           "dat_ingest_frame_latency_ms"};
    for (int i = 0; i < 4; i++) { /* present before their first sample, all zero */
        json_t *e = json_object_get(lat, upstream[i]);
        CHECK_MSG(json_is_object(e) && json_integer_value(json_object_get(e, "count")) == 0 &&
                      json_real_value(json_object_get(e, "max")) == 0.0,
                  "latencies.%s", upstream[i]);
    }
    json_t *all = json_object_get(lat, "all");
    CHECK_EQ_INT(json_integer_value(json_object_get(all, "count")), 100 + 2 * SG_METRICS_WINDOW);
    CHECK_NEAR(json_real_value(json_object_get(all, "total")), 5.05 + SG_METRICS_WINDOW * 1.01, 1e-6);
    CHECK_NEAR(json_real_value(json_object_get(all, "min")), 0.001, 1e-9);
    CHECK_NEAR(json_real_value(json_object_get(all, "max")), 1.0, 1e-9);
    CHECK_EQ_INT(json_integer_value(json_object_get(json_object_get(j, "queries"), "total")), 5);
    json_decref(j);

    sg_metrics_live live = {.active_sessions = 2, .created_sessions = 3, .open_websockets = 4,
                            .uptime_s = 1.5, .queue_jobs = 5, .queue_capacity = 130};
    char *p = sg_metrics_prometheus(m, &live);
    CHECK(p != NULL);
    CHECK(strstr(p, "# TYPE smartglass_query_duration_seconds histogram") != NULL);
    /* 100 llm samples of 1..100 ms: 10 are <= 10 ms, 25 <= 25 ms, all <= 0.1 s */
    CHECK(strstr(p, "smartglass_query_duration_seconds_bucket{stage=\"llm\",le=\"0.01\"} 10\n") != NULL);
    CHECK(strstr(p, "smartglass_query_duration_seconds_bucket{stage=\"llm\",le=\"0.025\"} 25\n") != NULL);
    CHECK(strstr(p, "smartglass_query_duration_seconds_bucket{stage=\"llm\",le=\"0.1\"} 100\n") != NULL);
    CHECK(strstr(p, "smartglass_query_duration_seconds_bucket{stage=\"llm\",le=\"+Inf\"} 100\n") != NULL);
    CHECK(strstr(p, "smartglass_query_duration_seconds_sum{stage=\"llm\"} 5.050000\n") != NULL);
    CHECK(strstr(p, "smartglass_active_sessions 2\n") != NULL);
    CHECK(strstr(p, "# TYPE smartglass_websockets_open gauge\nsmartglass_websockets_open 4\n") != NULL);
    CHECK(strstr(p, "smartglass_requests_total{route=\"/health\",code=\"200\"} 2\n") != NULL);
    CHECK(strstr(p, "smartglass_requests_total{route=\"/sessions/{id}/query\",code=\"422\"} 1\n") != NULL);
    CHECK(strstr(p, "smartglass_queries_total 5\n") != NULL);
    /* every model kind, store and error code is there before anything happened: alerts and
     * rate() need the series from the start */
    CHECK(strstr(p, "smartglass_model_configured{kind=\"asr_fallback\"} 0\n") != NULL);
    CHECK(strstr(p, "smartglass_model_loaded{kind=\"vision\"} 0\n") != NULL);
    CHECK(strstr(p, "smartglass_store_up 1\n") != NULL);
    CHECK(strstr(p, "smartglass_store_errors_total 0\n") != NULL);
    CHECK(strstr(p, "smartglass_error_responses_total{error=\"STORE_UNAVAILABLE\"} 0\n") != NULL);
    CHECK(strstr(p, "# TYPE smartglass_queue_jobs gauge\nsmartglass_queue_jobs 5\n") != NULL);
    CHECK(strstr(p, "# TYPE smartglass_queue_capacity gauge\nsmartglass_queue_capacity 130\n") != NULL);
    CHECK(strstr(p, "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total ") != NULL);
    CHECK(strstr(p, "# TYPE process_resident_memory_bytes gauge\n") != NULL);
    CHECK(strstr(p, "# TYPE process_start_time_seconds gauge\n") != NULL);
    CHECK(strstr(p, "# TYPE process_open_fds gauge\n") != NULL);
    free(p);

    sg_metrics_model(m, SG_MODEL_VISION, true, false); /* configured, still loading */
    sg_metrics_model(m, SG_MODEL_LLM, true, true);
    sg_metrics_model(m, SG_MODEL_COUNT, true, true);   /* out of range: ignored */
    sg_metrics_store_up(m, false);
    sg_metrics_store_error(m);
    sg_metrics_store_error(m);
    sg_metrics_error_code(m, "OVERLOADED");
    sg_metrics_error_code(m, "OVERLOADED");
    sg_metrics_error_code(m, "NO_SUCH_CODE");
    sg_metrics_error_code(m, NULL);
    p = sg_metrics_prometheus(m, &live);
    CHECK(p != NULL);
    CHECK(strstr(p, "smartglass_model_configured{kind=\"vision\"} 1\n") != NULL);
    CHECK(strstr(p, "smartglass_model_loaded{kind=\"vision\"} 0\n") != NULL);
    CHECK(strstr(p, "smartglass_model_loaded{kind=\"llm\"} 1\n") != NULL);
    CHECK(strstr(p, "smartglass_store_up 0\n") != NULL);
    CHECK(strstr(p, "smartglass_store_errors_total 2\n") != NULL);
    CHECK(strstr(p, "smartglass_error_responses_total{error=\"OVERLOADED\"} 2\n") != NULL);
    CHECK(strstr(p, "smartglass_error_responses_total{error=\"other\"} 2\n") != NULL);
    free(p);
    sg_metrics_free(m);
    return check_report("test_metrics");
}
