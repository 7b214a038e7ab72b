/* The text/event-stream parser (sgclient_policy.h, "Server-Sent Events"). Pure: libc. A line is
 * gathered in a buffer (bounded), then read as a field; the event's data grows in another. */
#include "sgclient_policy.h"

#include <stdlib.h>
#include <string.h>

#define MAX_NAME 64

struct sg_sse_parser {
    size_t max;
    char *line;          /* the line being read */
    size_t line_len, line_cap;
    bool after_cr;       /* the last byte was a CR: an LF right after it ends nothing */
    char name[MAX_NAME]; /* "" = "message" */
    char *data;
    size_t data_len, data_cap;
    bool has_data;
    bool broken;
};

sg_client_status sg_sse_parser_new(size_t max_event_bytes, sg_sse_parser **out)
{
    sg_sse_parser *p = calloc(1, sizeof *p);
    *out = p;
    if (!p)
        return SG_CLIENT_ENOMEM;
    p->max = max_event_bytes ? max_event_bytes : SG_SSE_DEFAULT_MAX_EVENT;
    return SG_CLIENT_OK;
}

void sg_sse_parser_free(sg_sse_parser *p)
{
    if (!p)
        return;
    free(p->line);
    free(p->data);
    free(p);
}

static bool grow(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return true;
    size_t c = *cap ? *cap : 256;
    while (c < need)
        c *= 2;
    char *b = realloc(*buf, c);
    if (!b)
        return false;
    *buf = b;
    *cap = c;
    return true;
}

/* A complete line (without its end): a field, or the empty line that dispatches. */
static sg_client_status line_done(sg_sse_parser *p, sg_sse_event_fn fn, void *ud)
{
    const char *l = p->line ? p->line : "";
    const size_t n = p->line_len;
    p->line_len = 0;
    if (n == 0) {
        if (!p->has_data) {
            p->name[0] = 0; /* an event without data is not dispatched */
            return SG_CLIENT_OK;
        }
        if (!grow(&p->data, &p->data_cap, p->data_len + 1))
            return SG_CLIENT_ENOMEM;
        p->data[p->data_len] = 0;
        const bool go_on = fn(ud, p->name[0] ? p->name : "message", p->data, p->data_len);
        p->name[0] = 0;
        p->data_len = 0;
        p->has_data = false;
        return go_on ? SG_CLIENT_OK : SG_CLIENT_ABANDONED;
    }
    if (l[0] == ':')
        return SG_CLIENT_OK; /* a comment (keep-alive) */
    const char *colon = memchr(l, ':', n);
    const size_t fn_len = colon ? (size_t)(colon - l) : n;
    const char *v = colon ? colon + 1 : l + n;
    size_t vn = n - (size_t)(v - l);
    if (vn && *v == ' ') {
        v++;
        vn--;
    }
    if (fn_len == 5 && memcmp(l, "event", 5) == 0) {
        if (vn >= MAX_NAME)
            return SG_CLIENT_EFORMAT;
        memcpy(p->name, v, vn);
        p->name[vn] = 0;
    } else if (fn_len == 4 && memcmp(l, "data", 4) == 0) {
        const size_t need = p->data_len + (p->has_data ? 1 : 0) + vn + 1;
        if (need > p->max)
            return SG_CLIENT_EFORMAT;
        if (!grow(&p->data, &p->data_cap, need))
            return SG_CLIENT_ENOMEM;
        if (p->has_data)
            p->data[p->data_len++] = '\n';
        memcpy(p->data + p->data_len, v, vn);
        p->data_len += vn;
        p->has_data = true;
    }
    return SG_CLIENT_OK; /* id:, retry: and unknown fields: nothing to do here */
}

sg_client_status sg_sse_parser_feed(sg_sse_parser *p, const char *bytes, size_t n,
                                    sg_sse_event_fn fn, void *ud)
{
    if (!p || !fn || (n && !bytes))
        return SG_CLIENT_EINVAL;
    if (p->broken)
        return SG_CLIENT_EFORMAT;
    for (size_t i = 0; i < n; i++) {
        const char ch = bytes[i];
        if (ch == '\n' && p->after_cr) {
            p->after_cr = false;
            continue;
        }
        p->after_cr = ch == '\r';
        sg_client_status st = SG_CLIENT_OK;
        if (ch == '\n' || ch == '\r') {
            st = line_done(p, fn, ud);
        } else if (ch == 0) {
            st = SG_CLIENT_EFORMAT;
        } else {
            if (p->line_len + 2 > p->max + 16)
                st = SG_CLIENT_EFORMAT;
            else if (!grow(&p->line, &p->line_cap, p->line_len + 2))
                st = SG_CLIENT_ENOMEM;
            else
                p->line[p->line_len++] = ch;
            if (p->line)
                p->line[p->line_len] = 0;
        }
        if (st != SG_CLIENT_OK) {
            if (st != SG_CLIENT_ABANDONED)
                p->broken = true;
            return st;
        }
    }
    return SG_CLIENT_OK;
}
