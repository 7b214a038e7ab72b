/* The sg-edge HTTP server: libmicrohttpd's thread pool speaks HTTP; model work is handed to the
 * bounded work queue while the connection is suspended, so HTTP threads stay free for /health and
 * cheap routes. See docs/ARCHITECTURE.md for the path of a request. */
#ifndef SG_SERVER_SERVER_H
#define SG_SERVER_SERVER_H

#include <stdbool.h>

#include "agent/backends.h"
#include "base/error.h"
#include "server/config.h"
#include "server/metrics.h"

typedef struct sg_server sg_server;

/* The server keeps pointers to cfg and backends; both must outlive it. */
sg_server *sg_server_new(const sg_config *cfg, const sg_backends *backends, sg_error *err);
/* Binds and starts serving. */
sg_status sg_server_start(sg_server *s, sg_error *err);
/* The bound port (useful with port 0). */
int sg_server_port(sg_server *s);
/* /ready answers 200 once this is true (after models have loaded). */
void sg_server_set_ready(sg_server *s, bool ready);
/* The server's metrics: main() reports each model's state there (sg_metrics_model). */
sg_metrics *sg_server_metrics(sg_server *s);
/* The degradation controller (server/degrade.h): main() offers it the ASR fallback step once that
 * model has loaded. */
struct sg_degrade *sg_server_degrade(sg_server *s);
/* Graceful stop: stops accepting connections, lets in-flight requests finish (up to
 * grace_s seconds), then shuts the daemon down. */
void sg_server_stop(sg_server *s, double grace_s);
void sg_server_free(sg_server *s);

#endif
