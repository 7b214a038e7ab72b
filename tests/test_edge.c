/* The HTTP edge's pure parts without a server: the head checks (including what libmicrohttpd never
 * lets through to the server, such as 505), path decoding, the accept policy's per-address limit
 * and reserve, the body budget, and the configuration rules of the edge's variables. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "server/config.h"
#include "server/edge.h"

static const sg_edge_limits lim = {4096, 8192, 100};

/* The verdict on a head with these fields ("Name: value" each, NULL-terminated). */
static sg_edge_verdict check(const char *method, const char *target, const char *version,
                             const char **fields)
{
    static sg_http_field f[16];
    size_t n = 0;
    for (; fields && fields[n]; n++) {
        const char *colon = strchr(fields[n], ':');
        const char *v = colon + 1;
        while (*v == ' ')
            v++;
        f[n] = (sg_http_field){fields[n], (size_t)(colon - fields[n]), v, strlen(v)};
    }
    sg_edge_head h = {method, target, strlen(target), version, f, n};
    sg_edge_verdict verdict;
    bool ok = sg_edge_check_head(&h, &lim, &verdict);
    CHECK(ok == (verdict.status == 0));
    return verdict;
}

static void test_head(void)
{
    const char *host[] = {"Host: a", NULL};
    CHECK_EQ_INT(check("GET", "/health", "HTTP/1.1", host).status, 0);
    CHECK_EQ_INT(check("GET", "/health", "HTTP/2.0", host).status, 505);
    CHECK_EQ_INT(check("GET", "/health", "HTTP/1.10", host).status, 505);
    CHECK_EQ_INT(check("GET", "/health", "HTTP/1.9", host).status, 0);
    CHECK_EQ_INT(check("GET", "/health", "HTTP/1.0", NULL).status, 0);
    CHECK_EQ_INT(check("GET", "/health", "HTTP/1.1", NULL).status, 400);
    CHECK_EQ_INT(check("G@T", "/health", "HTTP/1.1", host).status, 400);
    CHECK_EQ_INT(check("GET", "/a%1F", "HTTP/1.1", host).status, 400);
    CHECK_EQ_INT(check("GET", "/a%2", "HTTP/1.1", host).status, 0);   /* not an escape */
    CHECK_EQ_INT(check("GET", "/a%zz%", "HTTP/1.1", host).status, 0);
    const char *cl[] = {"Host: a", "content-length: 12", NULL};
    sg_edge_verdict v = check("POST", "/sessions", "HTTP/1.1", cl);
    CHECK(v.status == 0 && v.framing == SG_BODY_FRAMING_LENGTH && v.content_length == 12);
    const char *te[] = {"Host: a", "Transfer-Encoding: CHUNKED", NULL};
    v = check("POST", "/sessions", "HTTP/1.1", te);
    CHECK(v.status == 0 && v.framing == SG_BODY_FRAMING_CHUNKED);
    const char *huge[] = {"Host: a", "Content-Length: 99999999999999999999", NULL};
    CHECK_EQ_INT(check("POST", "/sessions", "HTTP/1.1", huge).status, 400);
    const char *mimic[] = {"Host: a", "Content-Lengthy: 1", NULL};
    CHECK_EQ_INT(check("POST", "/sessions", "HTTP/1.1", mimic).status, 400);
    const char *tab[] = {"Host: a", "X-A: a\tb", NULL};
    CHECK_EQ_INT(check("GET", "/", "HTTP/1.1", tab).status, 0);
    /* over the count, fields may be absent: the count alone refuses */
    sg_edge_head h = {"GET", "/", 1, "HTTP/1.1", NULL, 101};
    CHECK(!sg_edge_check_head(&h, &lim, &v) && v.status == 431);
    char big[5000];
    memset(big, 'a', sizeof big - 1);
    big[0] = '/';
    big[sizeof big - 1] = 0;
    CHECK_EQ_INT(check("GET", big, "HTTP/1.1", host).status, 414);

    char out[64];
    size_t n;
    CHECK(sg_edge_decode_path("/a%2Fb%41?x=%00", 15, out, &n) && n == 5 && strcmp(out, "/a/bA") == 0);
    CHECK(!sg_edge_decode_path("/a%00b", 6, out, &n));
    CHECK(sg_edge_decode_path("/a%4", 4, out, &n) && strcmp(out, "/a%4") == 0);
}

static struct sockaddr_in addr_of(const char *ip)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    inet_pton(AF_INET, ip, &a.sin_addr);
    return a;
}

static void test_admit_and_budget(void)
{
    sg_config cfg;
    sg_config_defaults(&cfg);
    cfg.max_connections = 20;
    cfg.max_connections_per_ip = 8;
    cfg.connection_reserve = 4;
    cfg.max_inflight_body_bytes = 1000;
    sg_error err;
    sg_edge *e = sg_edge_new(&cfg, &err);
    CHECK(e != NULL);
    if (!e)
        return;
    struct sockaddr_in a = addr_of("10.0.0.1"), b = addr_of("10.0.0.2"), c = addr_of("10.0.0.3");
    sg_edge_conn *held[32];
    int n = 0;
    while (n < 32 && sg_edge_admit(e, (struct sockaddr *)&a, sizeof a))
        held[n++] = sg_edge_conn_open(e, -1, (struct sockaddr *)&a);
    CHECK_EQ_INT(n, 8); /* the per-address limit */
    for (int i = 0; i < 8; i++) /* b fills up to the reserve: 16 of 20 */
        if (sg_edge_admit(e, (struct sockaddr *)&b, sizeof b))
            held[n++] = sg_edge_conn_open(e, -1, (struct sockaddr *)&b);
    CHECK_EQ_INT(n, 16);
    /* in the reserve: a and b hold their fair share (8 of 16 over 2), c holds none */
    CHECK(!sg_edge_admit(e, (struct sockaddr *)&b, sizeof b));
    CHECK(sg_edge_admit(e, (struct sockaddr *)&c, sizeof c));
    held[n++] = sg_edge_conn_open(e, -1, (struct sockaddr *)&c);
    CHECK(sg_edge_admit(e, (struct sockaddr *)&c, sizeof c)); /* 1 < 17 / 3 */
    sg_edge_conn_close(e, held[0]); /* a, down to 7, still holds more than its share (16 / 3) */
    CHECK(!sg_edge_admit(e, (struct sockaddr *)&a, sizeof a));
    for (int i = 1; i < n; i++)
        sg_edge_conn_close(e, held[i]);
    CHECK(sg_edge_admit(e, (struct sockaddr *)&a, sizeof a)); /* all gone: the counts are back */

    CHECK(sg_edge_budget_take(e, 600));
    CHECK(!sg_edge_budget_take(e, 401));
    CHECK(sg_edge_budget_take(e, 400));
    CHECK(!sg_edge_budget_take(e, 1));
    sg_edge_budget_give(e, 1000);
    CHECK(sg_edge_budget_take(e, 1000));
    CHECK(!sg_edge_budget_take(e, (size_t)-1));
    sg_edge_budget_give(e, 1000);
    sg_edge_free(e);
}

static sg_status config_with(const char *name, const char *value)
{
    sg_config c;
    sg_config_defaults(&c);
    setenv(name, value, 1);
    sg_error err;
    sg_status st = sg_config_from_env(&c, &err);
    unsetenv(name);
    return st;
}

static void test_config(void)
{
    CHECK_EQ_INT(config_with("SG_HTTP_HEADER_TIMEOUT_S", "0"), SG_EINVAL);
    CHECK_EQ_INT(config_with("SG_MAX_CONNECTIONS_PER_IP", "0"), SG_OK);
    CHECK_EQ_INT(config_with("SG_CONNECTION_RESERVE", "2048"), SG_EINVAL); /* >= the limit */
    CHECK_EQ_INT(config_with("SG_MAX_INFLIGHT_BODY_BYTES", "16777216"), SG_EINVAL); /* = body */
    CHECK_EQ_INT(config_with("SG_HTTP_POOL_BYTES", "16384"), SG_EINVAL); /* limits do not fit */
    CHECK_EQ_INT(config_with("SG_HTTP_MIN_BODY_RATE", "0"), SG_OK);
    CHECK_EQ_INT(config_with("SG_HTTP_MAX_HEADERS", "lots"), SG_EINVAL);
}

int main(void)
{
    test_head();
    test_admit_and_budget();
    test_config();
    return check_report("test_edge");
}
