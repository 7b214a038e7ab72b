/* libFuzzer target for libsgclient's text/event-stream parser (client/sse.c) and its /ws/audio
 * message reader (client/answer.c): bytes from a server are untrusted. The input is fed in pieces
 * whose sizes come from its first byte; every event's data is NUL-terminated at its length and
 * within the bound; a message either reads or is EFORMAT. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sgclient.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool on_event(void *ud, const char *event, const char *d, size_t len)
{
    (void)ud;
    if (!event[0] || strlen(d) != len || len > 4096)
        abort();
    return true;
}

static bool on_answer(void *ud, const sg_answer_event *ev)
{
    (void)ud;
    if (!ev->type || (ev->audio_len && !ev->audio))
        abort();
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const size_t step = (size_t)(data[0] % 17) + 1;
    sg_sse_parser *p;
    if (sg_sse_parser_new(4096, &p) != SG_CLIENT_OK)
        return 0;
    for (size_t at = 1; at < size; at += step) {
        sg_client_status st = sg_sse_parser_feed(p, (const char *)data + at,
                                                 size - at < step ? size - at : step, on_event, NULL);
        if (st != SG_CLIENT_OK && st != SG_CLIENT_EFORMAT && st != SG_CLIENT_ENOMEM)
            abort();
        if (st != SG_CLIENT_OK)
            break;
    }
    sg_sse_parser_free(p);
    sg_client_status st = sg_answer_ws_message((const char *)data + 1, size - 1, on_answer, NULL);
    if (st != SG_CLIENT_OK && st != SG_CLIENT_EFORMAT)
        abort();
    return 0;
}
