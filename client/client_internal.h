/* libsgclient's private header: the client handle's fields, shared by http.c (requests) and
 * answer.c (streamed answers). Not installed. */
#ifndef SGCLIENT_INTERNAL_H
#define SGCLIENT_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>

#include <curl/curl.h>

#include "sgclient.h"

#define SPARE_EASY_HANDLES 4 /* idle easy handles kept for reuse (each holds a few KB) */

struct transfer;

struct sg_client {
    CURLM *multi;
    char *base;
    char *api_key_header;
    sg_client_config cfg;
    /* transport options (sg_client_set_tls, sg_client_set_http) */
    char *ca_file;
    bool verify_peer;
    sg_client_http http;
    /* under mu: */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool driving;       /* a caller is running the multi handle */
    struct transfer *pending; /* submitted, not yet added to the multi handle */
    CURL *spare[SPARE_EASY_HANDLES];
    int nspare;
    sg_rng rng;
    sg_client_stats stats;
    long last_http_version; /* CURL_HTTP_VERSION_* of the last response, 0 = none yet */
    uint64_t connections;   /* connections opened (CURLINFO_NUM_CONNECTS summed) */
    /* telemetry (sg_client_set_device): what the device said, what was sent when */
    double battery_pct;     /* NaN: not said, nothing is sent */
    int charging;
    double telemetry_interval_ms;
    double telemetry_sent_ms; /* config clock; -1: never */
    sg_usage_meter *usage;
};

/* A finished request in the client's statistics and usage meter (res->outcome set). */
void sg_client_account(sg_client *c, sg_upload_kind kind, const sg_client_result *res, int frames);
/* CLOCK_MONOTONIC in ms. */
double sg_client_mono_ms(void);
/* The telemetry header line into line when one is due on a request to path (and notes it sent). */
bool sg_client_telemetry_due(sg_client *c, const char *path, char line[SG_TELEMETRY_HEADER_SIZE]);

#endif
