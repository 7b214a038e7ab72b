/* Helpers for integration tests: start build/sg-edge on a free port with extra environment, speak
 * HTTP to it with libcurl, stop it with a signal. Header-only so each test file stays standalone. */
#ifndef SG_TESTS_HTTP_H
#define SG_TESTS_HTTP_H

#include <curl/curl.h>

#include "check.h"
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct sgt_server {
    pid_t pid;
    int port;
    char base[64];
} sgt_server;

typedef struct sgt_resp {
    long status;
    char *body;
    size_t len;
    char headers[4096];
    json_t *json; /* parsed body when it is JSON, else NULL */
} sgt_resp;

__attribute__((unused)) static int sgt_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, (struct sockaddr *)&a, sizeof a);
    socklen_t l = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &l);
    close(fd);
    return ntohs(a.sin_port);
}

__attribute__((unused)) static size_t sgt_write_cb(char *p, size_t sz, size_t n, void *ud)
{
    sgt_resp *r = ud;
    size_t add = sz * n;
    char *nb = realloc(r->body, r->len + add + 1);
    if (!nb)
        return 0;
    r->body = nb;
    memcpy(r->body + r->len, p, add);
    r->len += add;
    r->body[r->len] = 0;
    return add;
}

__attribute__((unused)) static size_t sgt_header_cb(char *p, size_t sz, size_t n, void *ud)
{
    sgt_resp *r = ud;
    size_t add = sz * n, used = strlen(r->headers);
    if (used + add < sizeof r->headers) {
        memcpy(r->headers + used, p, add);
        r->headers[used + add] = 0;
    }
    return add;
}

__attribute__((unused)) static void sgt_resp_free(sgt_resp *r)
{
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

/* Value of a response header (case-insensitive name) copied into out; false when absent. */
__attribute__((unused)) static int sgt_header(const sgt_resp *r, const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);
    for (const char *p = r->headers; *p;) {
        const char *eol = strstr(p, "\r\n");
        if (!eol)
            break;
        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            while (*v == ' ')
                v++;
            size_t vl = (size_t)(eol - v);
            if (vl >= cap)
                vl = cap - 1;
            memcpy(out, v, vl);
            out[vl] = 0;
            return 1;
        }
        p = eol + 2;
    }
    return 0;
}

/* One request. headers: NULL-terminated "Name: value" list or NULL. body may be NULL. */
__attribute__((unused)) static sgt_resp sgt_request(const sgt_server *s, const char *method, const char *path,
                            const char **headers, const void *body, size_t len)
{
    sgt_resp r;
    memset(&r, 0, sizeof r);
    CURL *c = curl_easy_init();
    char url[512];
    snprintf(url, sizeof url, "%s%s", s->base, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sgt_write_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, sgt_header_cb);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    struct curl_slist *hl = NULL;
    int has_ct = 0;
    for (int i = 0; headers && headers[i]; i++) {
        hl = curl_slist_append(hl, headers[i]);
        if (strncasecmp(headers[i], "Content-Type:", 13) == 0)
            has_ct = 1;
        if (strncasecmp(headers[i], "Accept-Encoding:", 16) == 0)
            curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, headers[i] + 17); /* decode it for us */
    }
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        if (!has_ct)
            hl = curl_slist_append(hl, "Content-Type: application/json");
    }
    hl = curl_slist_append(hl, "Expect:");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    if (r.body)
        r.json = json_loadb(r.body, r.len, 0, NULL);
    return r;
}

__attribute__((unused)) static sgt_resp sgt_get(const sgt_server *s, const char *path) { return sgt_request(s, "GET", path, NULL, NULL, 0); }

__attribute__((unused)) static sgt_resp sgt_post_json(const sgt_server *s, const char *path, json_t *body)
{
    char *txt = json_dumps(body, JSON_COMPACT);
    sgt_resp r = sgt_request(s, "POST", path, NULL, txt, strlen(txt));
    free(txt);
    return r;
}

__attribute__((unused)) static sgt_resp sgt_post_str(const sgt_server *s, const char *path, const char *body)
{
    return sgt_request(s, "POST", path, NULL, body, strlen(body));
}

__attribute__((unused)) static const char *sgt_str(json_t *o, const char *key)
{
    json_t *v = o ? json_object_get(o, key) : NULL;
    return json_is_string(v) ? json_string_value(v) : "";
}

/* Monotonic milliseconds, for tests whose bounds depend on elapsed time. */
__attribute__((unused)) static double sgt_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

/* True when the arguments or environment name a model: such a server answers /health while the
 * model loads and /ready only after (tests of the loading state rely on that). */
static bool sgt_loads_models(const char **env, const char **args)
{
    for (int i = 0; args && args[i]; i++)
        if (strncmp(args[i], "--", 2) == 0 && strstr(args[i], "-model"))
            return true;
    for (int i = 0; env && env[i]; i++)
        if (strncmp(env[i], "SG_", 3) == 0 && strstr(env[i], "_MODEL="))
            return true;
    return false;
}

/* Starts sg-edge with "NAME=value" entries added to the environment; waits (up to 30 s) for
 * /health, and for /ready too when no model is named: main() marks the server ready a moment after
 * it starts answering, and a request in between would see "loading". Graceful degradation is off
 * (SG_LATENCY_BUDGET_MS=0) unless env sets the budget: on a loaded machine (or under the
 * sanitizers) a slow turn would otherwise step the next ones down, and a test of what a model
 * answers would see the rule-based responder. tests/test_server_degrade.c turns it on. */
__attribute__((unused)) static int sgt_start(sgt_server *s, const char **env, const char **args)
{
    s->port = sgt_free_port();
    snprintf(s->base, sizeof s->base, "http://127.0.0.1:%d", s->port);
    const char *probe = sgt_loads_models(env, args) ? "/health" : "/ready";
    s->pid = fork();
    if (s->pid == 0) {
        putenv((char *)"SG_LATENCY_BUDGET_MS=0");
        for (int i = 0; env && env[i]; i++)
            putenv((char *)env[i]);
        char port[16];
        snprintf(port, sizeof port, "%d", s->port);
        const char *argv[32] = {SG_EDGE_BIN, "--host", "127.0.0.1", "--port", port, "--log-level", "warn"};
        int n = 7;
        for (int i = 0; args && args[i] && n < 31; i++)
            argv[n++] = args[i];
        argv[n] = NULL;
        execv(SG_EDGE_BIN, (char **)argv);
        _exit(127);
    }
    for (int i = 0; i < 1200; i++) {
        int st;
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
            s->pid = 0;
            return -1; /* exited */
        }
        sgt_resp r = sgt_get(s, probe);
        long code = r.status;
        sgt_resp_free(&r);
        if (code == 200)
            return 0;
        struct timespec ts = {0, 25 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return -1;
}

/* Sends sig and returns the exit status (or -1 when killed by a signal / timeout). */
__attribute__((unused)) static int sgt_stop(sgt_server *s, int sig)
{
    if (s->pid <= 0)
        return -1;
    kill(s->pid, sig);
    for (int i = 0; i < 600; i++) {
        int st;
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
            s->pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        }
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
    return -1;
}

/* Polls GET /ready every 20 ms until it answers 200 (true) or 30 s have passed (false): model
 * loading can take a while, above all under the sanitizers. */
__attribute__((unused)) static bool sgt_wait_ready(const sgt_server *s)
{
    for (int i = 0; i < 1500; i++) {
        sgt_resp r = sgt_get(s, "/ready");
        long code = r.status;
        sgt_resp_free(&r);
        if (code == 200)
            return true;
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return false;
}

/* POST /sessions with extra request headers (NULL-terminated, or NULL); the new session id
 * (malloc'ed), checked to be a 200. */
__attribute__((unused)) static char *sgt_new_session(const sgt_server *s, const char **headers)
{
    sgt_resp r = sgt_request(s, "POST", "/sessions", headers, "{}", 2);
    CHECK_EQ_INT(r.status, 200);
    char *id = strdup(sgt_str(r.json, "session_id"));
    sgt_resp_free(&r);
    return id;
}

/* The session's entry in GET /sessions (a new reference), NULL when absent. */
__attribute__((unused)) static json_t *sgt_session_entry(const sgt_server *s, const char *id)
{
    sgt_resp r = sgt_get(s, "/sessions");
    json_t *found = NULL, *e;
    size_t i;
    json_array_foreach(json_object_get(r.json, "sessions"), i, e)
        if (strcmp(sgt_str(e, "session_id"), id) == 0)
            found = json_incref(e);
    sgt_resp_free(&r);
    return found;
}

__attribute__((unused)) static char *sgt_read_file(const char *path, size_t *len)
{
    return check_read_file(path, len);
}

#endif
