/* Raw-socket HTTP for the edge's integration tests (tests/test_server_edge*.c): requests exactly
 * as written (curl would normalise what these tests must send wrong), from a chosen loopback
 * address, responses read with deadlines, pipelined ones in order. Header-only so each test file
 * stays standalone. */
#ifndef SG_TESTS_RAW_H
#define SG_TESTS_RAW_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* One connection and the bytes read from it that no response has consumed yet. */
typedef struct sgt_conn {
    int fd;
    char buf[1 << 16];
    size_t len;
    bool eof;  /* the server closed (or reset) its side */
} sgt_conn;

typedef struct sgt_raw {
    int status;     /* 0: no response before the deadline or the close */
    char head[8192];/* status line and header fields */
    char *body;
    size_t body_len;
    json_t *json;   /* the body when it is JSON */
} sgt_raw;

__attribute__((unused)) static double sgt_raw_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

/* A blocking TCP connection to 127.0.0.1:port from src (e.g. "127.0.0.2"; NULL: any); -1 when it
 * fails. */
__attribute__((unused)) static int sgt_raw_connect_fd(int port, const char *src)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    if (src) {
        inet_pton(AF_INET, src, &a.sin_addr);
        if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) {
            close(fd);
            return -1;
        }
    }
    a.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    struct timeval tv = {3, 0}; /* bounds connect too, should the listen queue be full */
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

__attribute__((unused)) static sgt_conn *sgt_raw_open(int port, const char *src)
{
    sgt_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->fd = sgt_raw_connect_fd(port, src);
    if (c->fd < 0) {
        free(c);
        return NULL;
    }
    return c;
}

__attribute__((unused)) static void sgt_raw_close(sgt_conn *c)
{
    if (!c)
        return;
    close(c->fd);
    free(c);
}

/* Sends all of p; false when the server closed or reset the connection. */
__attribute__((unused)) static bool sgt_raw_send(sgt_conn *c, const void *p, size_t n)
{
    const char *b = p;
    while (n) {
        ssize_t k = send(c->fd, b, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return false;
        b += k;
        n -= (size_t)k;
    }
    return true;
}

__attribute__((unused)) static bool sgt_raw_send_str(sgt_conn *c, const char *s)
{
    return sgt_raw_send(c, s, strlen(s));
}

/* Reads what arrives within timeout_ms (until more data, the close, or the deadline); false when
 * nothing new came. */
static bool sgt_raw_fill(sgt_conn *c, double deadline_ms)
{
    if (c->eof || c->len == sizeof c->buf)
        return false;
    double left = deadline_ms - sgt_raw_now_ms();
    struct pollfd p = {c->fd, POLLIN, 0};
    if (left <= 0 || poll(&p, 1, (int)left + 1) <= 0)
        return false;
    ssize_t k = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
    if (k <= 0) {
        c->eof = true;
        return false;
    }
    c->len += (size_t)k;
    return true;
}

__attribute__((unused)) static void sgt_raw_free(sgt_raw *r)
{
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

/* Value of a header field of r (case-insensitive name) into out; false when absent. */
__attribute__((unused)) static bool sgt_raw_header(const sgt_raw *r, const char *name, char *out,
                                                   size_t cap)
{
    size_t n = strlen(name);
    for (const char *p = strstr(r->head, "\r\n"); p && p[2];) {
        p += 2;
        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            while (*v == ' ')
                v++;
            size_t vl = strcspn(v, "\r\n");
            if (vl >= cap)
                vl = cap - 1;
            memcpy(out, v, vl);
            out[vl] = 0;
            return true;
        }
        p = strstr(p, "\r\n");
    }
    return false;
}

/* The next response on c (its body by Content-Length, else up to the close), waiting at most
 * timeout_ms; status 0 when none came. */
__attribute__((unused)) static sgt_raw sgt_raw_response(sgt_conn *c, int timeout_ms)
{
    sgt_raw r;
    memset(&r, 0, sizeof r);
    double deadline = sgt_raw_now_ms() + timeout_ms;
    char *end;
    for (;;) {
        end = c->len >= 4 ? memmem(c->buf, c->len, "\r\n\r\n", 4) : NULL;
        if (end || !sgt_raw_fill(c, deadline))
            break;
    }
    if (!end)
        return r;
    size_t head_len = (size_t)(end - c->buf) + 4;
    size_t keep = head_len < sizeof r.head ? head_len : sizeof r.head - 1;
    memcpy(r.head, c->buf, keep);
    r.head[keep] = 0;
    if (sscanf(r.head, "HTTP/1.%*d %d", &r.status) != 1)
        r.status = -1;
    char cl[32];
    bool framed = sgt_raw_header(&r, "Content-Length", cl, sizeof cl);
    size_t want = framed ? strtoul(cl, NULL, 10) : (size_t)-1;
    while (c->len - head_len < want && sgt_raw_fill(c, deadline))
        ;
    size_t have = c->len - head_len < want ? c->len - head_len : want;
    r.body = malloc(have + 1);
    memcpy(r.body, c->buf + head_len, have);
    r.body[have] = 0;
    r.body_len = have;
    r.json = json_loadb(r.body, have, 0, NULL);
    memmove(c->buf, c->buf + head_len + have, c->len - head_len - have);
    c->len -= head_len + have;
    return r;
}

/* Whether the server closes c within timeout_ms (bytes that arrive first are kept). */
__attribute__((unused)) static bool sgt_raw_closed(sgt_conn *c, int timeout_ms)
{
    double deadline = sgt_raw_now_ms() + timeout_ms;
    while (!c->eof && sgt_raw_now_ms() < deadline) {
        if (!sgt_raw_fill(c, deadline) && c->len == sizeof c->buf)
            c->len = 0; /* a flood we do not read: drop it, keep waiting for the close */
    }
    return c->eof;
}

/* One request on a fresh connection from 127.0.0.1, its response within timeout_ms. */
__attribute__((unused)) static sgt_raw sgt_raw_exchange(int port, const void *req, size_t len,
                                                        int timeout_ms)
{
    sgt_raw r;
    memset(&r, 0, sizeof r);
    sgt_conn *c = sgt_raw_open(port, NULL);
    if (!c)
        return r;
    if (sgt_raw_send(c, req, len))
        r = sgt_raw_response(c, timeout_ms);
    sgt_raw_close(c);
    return r;
}

/* Raises the open-file limit to at least want; false (with a message) when the hard limit is
 * lower. The server started after this inherits it. */
__attribute__((unused)) static bool sgt_raise_nofile(rlim_t want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return false;
    if (rl.rlim_cur >= want)
        return true;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want) {
        printf("SKIP: the open-file hard limit %llu is under the %llu this test needs\n",
               (unsigned long long)rl.rlim_max, (unsigned long long)want);
        return false;
    }
    rl.rlim_cur = want;
    return setrlimit(RLIMIT_NOFILE, &rl) == 0;
}

/* VmRSS of process pid in bytes (0 when unreadable). */
__attribute__((unused)) static size_t sgt_rss_bytes(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    size_t kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %zu kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb * 1024;
}

#endif
