/* libFuzzer target over whole raw HTTP requests: the bytes are split into request line and header
 * fields the way libmicrohttpd 0.9.75 splits them (src/server/edge.h says what it keeps), then
 * run through what the server does after that parse — the edge's checks of the head, the decoding
 * of the path and the route table — with the invariants the server relies on checked. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "server/edge.h"
#include "server/internal.h"

enum { MAX_FIELDS = 256 };

/* The next line of [p, end): its length without CR LF (a bare LF ends a line too, as in
 * libmicrohttpd); *next after it. False when no line end is left. */
static bool next_line(const char *p, const char *end, size_t *len, const char **next)
{
    const char *lf = memchr(p, '\n', (size_t)(end - p));
    if (!lf)
        return false;
    *len = (size_t)(lf - p) - (lf > p && lf[-1] == '\r');
    *next = lf + 1;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a private, NUL-terminated copy: libmicrohttpd parses in place and its strings end there */
    char *buf = fuzz_cstring(data, size);
    if (!buf)
        return 0;
    const char *p = buf, *end = buf + size;
    size_t len;
    const char *next;
    if (!next_line(p, end, &len, &next)) {
        free(buf);
        return 0;
    }
    /* request line: method SP target SP version, the version after the last space */
    char *line = buf;
    line[len] = 0;
    char *sp = memchr(line, ' ', len);
    char *last = line + len;
    while (last > line && last[-1] == ' ')
        last--;
    char *vsp = last;
    while (vsp > line && *vsp != ' ')
        vsp--;
    if (!sp || vsp <= sp) { /* libmicrohttpd refuses these itself */
        free(buf);
        return 0;
    }
    *sp = 0;
    char *target = sp + 1;
    while (*target == ' ' && target < vsp)
        target++;
    *vsp = 0;
    *last = 0;
    sg_edge_head h = {line, target, (size_t)(vsp - target), vsp + 1, NULL, 0};

    /* header fields up to the empty line; a line without ':' is libmicrohttpd's own 400 */
    static sg_http_field fields[MAX_FIELDS];
    for (p = next; next_line(p, end, &len, &next); p = next) {
        if (len == 0)
            break;
        char *l = (char *)p;
        l[len] = 0;
        char *colon = memchr(l, ':', len);
        if (!colon || h.n_fields == MAX_FIELDS) {
            free(buf);
            return 0;
        }
        *colon = 0;
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        /* as C strings: a NUL in a name or value ends it there */
        fields[h.n_fields++] = (sg_http_field){l, strlen(l), v, strlen(v)};
    }
    h.fields = fields;

    static sg_config cfg;
    if (!cfg.http_max_headers)
        sg_config_defaults(&cfg);
    const sg_edge_limits lim = {cfg.http_max_target_bytes, cfg.http_max_header_bytes,
                                (size_t)cfg.http_max_headers};
    sg_edge_verdict v;
    bool ok = sg_edge_check_head(&h, &lim, &v);
    if (ok != (v.status == 0))
        abort();
    if (!ok) {
        static const int allowed[] = {400, 414, 431, 501, 505};
        bool known = false;
        for (size_t i = 0; i < sizeof allowed / sizeof *allowed; i++)
            known |= v.status == allowed[i];
        /* the detail goes into JSON as it is: printable ASCII only */
        for (const char *d = v.detail; *d; d++)
            if (*d < 0x20 || *d > 0x7e)
                abort();
        if (!known || !v.code || !v.detail[0])
            abort();
        free(buf);
        return 0;
    }
    /* accepted: the path decodes whole, without NUL or control bytes, and routes */
    char *path = malloc(h.target_len + 1);
    size_t plen;
    if (!path || !sg_edge_decode_path(h.target, h.target_len, path, &plen))
        abort();
    if (strlen(path) != plen)
        abort();
    for (size_t i = 0; i < plen; i++)
        if ((unsigned char)path[i] < 0x20 || path[i] == 0x7f)
            abort();
    char sid[40];
    const sg_route *r = sg_route_match(h.method, path, sid);
    if (strlen(sid) >= 40 || (r && (r < sg_routes || r >= sg_routes + sg_routes_count)))
        abort();
    if (v.framing == SG_BODY_FRAMING_NONE && v.content_length)
        abort();
    free(path);
    free(buf);
    return 0;
}
