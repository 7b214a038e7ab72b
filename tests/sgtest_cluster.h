/* Helpers for tests that need the cluster: scripts/cluster.sh (redis-server, sg-edge instances,
 * nginx with TLS and HTTP/2) started on free loopback ports in a temporary folder of the test's own,
 * and stopped again (cluster.sh down stops exactly what up started). nginx, redis-server and
 * openssl must be installed (scripts/deps.sh): a test without them fails, it does not skip. */
#ifndef SG_TESTS_CLUSTER_H
#define SG_TESTS_CLUSTER_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sgtest_http.h"

typedef struct sgt_cluster {
    int port;             /* nginx's TLS port */
    int edge_ports[8];
    int instances;
    char dir[256];        /* SG_CLUSTER_DIR */
    char url[64];         /* https://127.0.0.1:port */
    char ca[320];         /* the self-signed certificate to trust */
    char access_log[320]; /* nginx's, in the format sg_edge of deploy/nginx/sg-edge.conf */
    bool up;
} sgt_cluster;

/* cluster.sh with the cluster's ports in the environment; returns its exit status. */
static int sgt_cluster_run(const sgt_cluster *c, const char *verb, const char *quiet)
{
    char cmd[1024], ports[128] = "";
    for (int i = 0; i < c->instances; i++)
        snprintf(ports + strlen(ports), sizeof ports - strlen(ports), "%s%d", i ? " " : "",
                 c->edge_ports[i]);
    snprintf(cmd, sizeof cmd,
             "SG_CLUSTER_PORT=%d SG_CLUSTER_INSTANCES=%d SG_CLUSTER_EDGE_PORTS='%s' "
             "SG_CLUSTER_REDIS_PORT=%d SG_CLUSTER_DIR='%s' SG_EDGE_BIN='%s' scripts/cluster.sh %s %s",
             c->port, c->instances, ports, c->edge_ports[7], c->dir, SG_EDGE_BIN, verb, quiet);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Starts a cluster of `instances` sg-edge (1..7) with "NAME=value" settings added to their
 * environment (NULL-terminated, or NULL). 0 when it is up. */
__attribute__((unused)) static int sgt_cluster_up(sgt_cluster *c, int instances, const char **env)
{
    memset(c, 0, sizeof *c);
    if (instances < 1 || instances > 7)
        return -1;
    c->instances = instances;
    c->port = sgt_free_port();
    for (int i = 0; i < 8; i++) /* [7] is Redis's */
        c->edge_ports[i] = sgt_free_port();
    snprintf(c->dir, sizeof c->dir, "%s/sgt-cluster.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(c->dir))
        return -1;
    snprintf(c->url, sizeof c->url, "https://127.0.0.1:%d", c->port);
    snprintf(c->ca, sizeof c->ca, "%s/tls/cert.pem", c->dir);
    snprintf(c->access_log, sizeof c->access_log, "%s/nginx/logs/access.log", c->dir);
    for (int i = 0; env && env[i]; i++)
        putenv((char *)env[i]); /* inherited by the instances through cluster.sh */
    int rc = sgt_cluster_run(c, "up", ">/dev/null");
    c->up = rc == 0;
    if (!c->up) {
        fprintf(stderr, "sgtest_cluster: scripts/cluster.sh up failed (%d); logs in %s/logs\n", rc, c->dir);
        return -1;
    }
    return 0;
}

/* Stops the cluster and removes its folder (kept, with its logs, when a check has failed);
 * returns cluster.sh down's exit status. */
__attribute__((unused)) static int sgt_cluster_down(sgt_cluster *c)
{
    int rc = 0;
    if (c->up)
        rc = sgt_cluster_run(c, "down", ">/dev/null");
    c->up = false;
    if (check_failed) {
        fprintf(stderr, "sgtest_cluster: logs kept in %s/logs and %s\n", c->dir, c->access_log);
    } else if (c->dir[0] && strncmp(c->dir + strlen(c->dir) - 19, "/sgt-cluster.", 13) == 0) {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", c->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "sgtest_cluster: could not remove %s\n", c->dir);
    }
    return rc;
}

/* Field i (0-based) of a tab-separated access log line (log_format sg_edge of
 * deploy/nginx/sg-edge.conf: msec, request_time, connection, protocol, request line, status,
 * upstream_addr, upstream_status, upstream_response_time, request id, remote_addr) into out. */
__attribute__((unused)) static const char *sgt_log_field(const char *line, int i, char *out, size_t cap)
{
    const char *p = line;
    for (; i > 0 && p; i--) {
        p = strchr(p, '\t');
        if (p)
            p++;
    }
    size_t n = p ? strcspn(p, "\t\n") : 0;
    if (n >= cap)
        n = cap - 1;
    memcpy(out, p ? p : "", n);
    out[n] = 0;
    return out;
}

/* The access log's lines whose field `field` equals value, copied into out (at most max);
 * returns how many. */
__attribute__((unused)) static int sgt_cluster_log_lines(const sgt_cluster *c, int field,
                                                         const char *value, char out[][512], int max)
{
    FILE *f = fopen(c->access_log, "r");
    if (!f)
        return 0;
    char line[512], v[256];
    int n = 0;
    while (n < max && fgets(line, sizeof line, f))
        if (strcmp(sgt_log_field(line, field, v, sizeof v), value) == 0)
            snprintf(out[n++], 512, "%s", line);
    fclose(f);
    return n;
}

#endif
