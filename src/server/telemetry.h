/* Client telemetry: what the wearers' phones say about themselves (battery, charging, frame rate,
 * upload rate, their memory), aggregated without a label per session. A phone sends a report in
 * the X-Client-Telemetry header of a request it makes anyway (libsgclient: at most every 30 s);
 * the server keeps each session's last report for SG_TELEMETRY_WINDOW_S and exports, at each
 * scrape, the sessions that reported in that window by battery band: how many, their mean battery
 * level, frame rate and upload rate, how many charge, their mean and largest memory. See
 * docs/ARCHITECTURE.md "Client telemetry" for why a header and not a route. */
#ifndef SG_SERVER_TELEMETRY_H
#define SG_SERVER_TELEMETRY_H

#include <stddef.h>

#include "base/error.h"

#define SG_TELEMETRY_HEADER "X-Client-Telemetry"
#define SG_TELEMETRY_MAX_BYTES 512 /* a longer header is refused (422) */
#define SG_TELEMETRY_WINDOW_S 300.0 /* a report counts for 5 minutes */

/* One report. Fields the client did not send are negative (charging: -1). */
typedef struct sg_client_report {
    double battery_pct;       /* 0..100, required */
    int charging;             /* 1, 0, -1 = not said */
    double fps;               /* frames a second it sent, 0..1000 */
    double upload_kb_per_min; /* what it uploaded, KB (1024 bytes) a minute, 0..1e6 */
    double memory_bytes;      /* its resident memory, 0..1e12 */
} sg_client_report;

/* Parses a header value: "battery=72.5; charging=0; fps=9.8; upload_kb_per_min=412; memory=1e7"
 * (pairs separated by ';' or ','; spaces around them ignored; keys the server does not know are
 * skipped, so newer clients can say more). SG_EINVAL with the reason for: over
 * SG_TELEMETRY_MAX_BYTES or 16 pairs, a pair without '=', a key given twice, a number that is not
 * one (or not finite, or out of its range), charging other than 0/1/true/false, no battery. */
sg_status sg_client_report_parse(const char *s, size_t len, sg_client_report *out, sg_error *err);

typedef enum sg_battery_band {
    SG_BAND_LOW = 0, /* < 20 % */
    SG_BAND_MID,     /* 20 .. 50 % */
    SG_BAND_HIGH,    /* >= 50 %: libsgclient's bands (sg_budget_kb_per_min_for) */
    SG_BAND_COUNT
} sg_battery_band;
sg_battery_band sg_battery_band_of(double battery_pct);
const char *sg_battery_band_name(sg_battery_band b); /* "low", "mid", "high" */

typedef struct sg_telemetry sg_telemetry;

/* capacity: sessions remembered at once (rounded up to a power of two, 64..65536). NULL on ENOMEM. */
sg_telemetry *sg_telemetry_new(int capacity, double window_s);
void sg_telemetry_free(sg_telemetry *t);
/* Records session_id's report at now_s (monotonic seconds), replacing its last. When the table
 * has no room (every place the id may go holds a session that reported within the window), the
 * place of the oldest report is taken and counted in `evicted`. */
void sg_telemetry_report(sg_telemetry *t, const char *session_id, const sg_client_report *r,
                         double now_s);
/* A deleted session stops counting at once. */
void sg_telemetry_forget(sg_telemetry *t, const char *session_id);

typedef struct sg_telemetry_band {
    long sessions;                     /* reported within the window */
    double battery_sum;
    long fps_n, upload_n;              /* of them, those that said fps / upload rate */
    double fps_sum, upload_sum;
} sg_telemetry_band;

typedef struct sg_telemetry_snapshot {
    sg_telemetry_band band[SG_BAND_COUNT];
    long charging;                     /* sessions that said they charge */
    long memory_n;
    double memory_sum, memory_max;
    long reports, evicted;             /* since start */
} sg_telemetry_snapshot;
void sg_telemetry_snapshot_at(sg_telemetry *t, double now_s, sg_telemetry_snapshot *out);

#endif
