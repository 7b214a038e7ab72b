/* libFuzzer target for the request-side parsers that see raw client bytes before any handler:
 * route matching on the URL path and the PORTS / boolean configuration parsers. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "server/config.h"
#include "server/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_cstring(data, size);
    if (!s)
        return 0;
    char sid[40];
    static const char *const methods[] = {"GET", "POST", "DELETE", "PUT"};
    const sg_route *r = sg_route_match(methods[size % 4], s, sid);
    if (strlen(sid) >= 40 || (r && (r < sg_routes || r >= sg_routes + sg_routes_count)))
        abort();
    int port = 5000; /* a PORTS without an http entry leaves it as it was */
    if (sg_parse_ports(s, &port) && (port < 1 || port > 65535))
        abort();
    bool b;
    sg_parse_bool(s, &b);
    free(s);
    return 0;
}
