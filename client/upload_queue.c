/* The bounded upload queue: frames are disposable (a newer one says more than an old one), audio and
 * questions are not. Items are kept in push order in a small array (capacities are tens of items,
 * so removing from the middle is a short memmove); the queue never allocates after _new. */
#include <stdlib.h>
#include <string.h>

#include "sgclient_policy.h"

struct sg_upload_queue {
    sg_upload_item *items; /* push order */
    int n, capacity, max_frames;
    long long seq;
    sg_upload_queue_stats stats;
};

static const char *const kind_names[SG_UPLOAD_KINDS] = {"frame", "audio", "query", "control"};

const char *sg_upload_kind_name(sg_upload_kind k)
{
    return (k >= 0 && k < SG_UPLOAD_KINDS) ? kind_names[k] : "?";
}

sg_client_status sg_upload_queue_new(int capacity, int max_frames, sg_upload_queue **out)
{
    *out = NULL;
    if (capacity < 1 || capacity > 1000000 || max_frames < 0)
        return SG_CLIENT_EINVAL;
    sg_upload_queue *q = calloc(1, sizeof *q);
    if (q)
        q->items = calloc((size_t)capacity, sizeof *q->items);
    if (!q || !q->items) {
        free(q);
        return SG_CLIENT_ENOMEM;
    }
    q->capacity = capacity;
    q->max_frames = max_frames < capacity ? max_frames : capacity;
    *out = q;
    return SG_CLIENT_OK;
}

void sg_upload_queue_free(sg_upload_queue *q)
{
    if (q)
        free(q->items);
    free(q);
}

void sg_upload_queue_get_stats(const sg_upload_queue *q, sg_upload_queue_stats *out)
{
    *out = q->stats;
}

int sg_upload_queue_count(const sg_upload_queue *q, sg_upload_kind kind)
{
    if (kind == SG_UPLOAD_KINDS)
        return q->n;
    int c = 0;
    for (int i = 0; i < q->n; i++)
        c += q->items[i].kind == kind;
    return c;
}

static void remove_at(sg_upload_queue *q, int i)
{
    memmove(q->items + i, q->items + i + 1, (size_t)(q->n - i - 1) * sizeof *q->items);
    q->n--;
}

/* Drops the frame at old for a newer item (handed to *evicted when asked). */
static sg_client_status evict_frame(sg_upload_queue *q, int old, sg_upload_item *evicted)
{
    if (evicted)
        *evicted = q->items[old];
    remove_at(q, old);
    q->stats.evicted_frames++;
    return SG_CLIENT_DROPPED_OLDEST;
}

static int oldest_of(const sg_upload_queue *q, sg_upload_kind kind)
{
    for (int i = 0; i < q->n; i++)
        if (q->items[i].kind == kind)
            return i;
    return -1;
}

sg_client_status sg_upload_queue_push(sg_upload_queue *q, sg_upload_item item, sg_upload_item *evicted)
{
    if (!q || item.kind < 0 || item.kind >= SG_UPLOAD_CONTROL)
        return SG_CLIENT_EINVAL;
    bool frame = item.kind == SG_UPLOAD_FRAME;
    if (frame && q->max_frames == 0) {
        q->stats.dropped_new_frames++;
        return SG_CLIENT_DROPPED_NEW;
    }
    bool need_room = q->n >= q->capacity ||
                     (frame && sg_upload_queue_count(q, SG_UPLOAD_FRAME) >= q->max_frames);
    sg_client_status st = SG_CLIENT_OK;
    if (need_room) {
        int old = oldest_of(q, SG_UPLOAD_FRAME);
        if (old < 0) {
            /* full of audio and questions: a frame is the one thing we may drop */
            if (frame) {
                q->stats.dropped_new_frames++;
                return SG_CLIENT_DROPPED_NEW;
            }
            q->stats.refused[item.kind]++;
            return SG_CLIENT_FULL;
        }
        st = evict_frame(q, old, evicted);
    }
    item.seq = ++q->seq;
    q->items[q->n++] = item;
    q->stats.pushed[item.kind]++;
    return st;
}

sg_client_status sg_upload_queue_requeue(sg_upload_queue *q, sg_upload_item item,
                                         sg_upload_item *evicted)
{
    if (!q || item.kind < 0 || item.kind >= SG_UPLOAD_CONTROL)
        return SG_CLIENT_EINVAL;
    bool frame = item.kind == SG_UPLOAD_FRAME;
    sg_client_status st = SG_CLIENT_OK;
    if (q->n >= q->capacity || (frame && sg_upload_queue_count(q, SG_UPLOAD_FRAME) >= q->max_frames)) {
        int old = oldest_of(q, SG_UPLOAD_FRAME);
        if (frame && (old < 0 || q->items[old].seq > item.seq)) {
            q->stats.dropped_new_frames++; /* it is the oldest frame: it goes */
            return SG_CLIENT_DROPPED_NEW;
        }
        if (old < 0) {
            q->stats.refused[item.kind]++;
            return SG_CLIENT_FULL;
        }
        st = evict_frame(q, old, evicted);
    }
    int i = 0;
    while (i < q->n && q->items[i].seq < item.seq)
        i++;
    memmove(q->items + i + 1, q->items + i, (size_t)(q->n - i) * sizeof *q->items);
    q->items[i] = item;
    q->n++;
    return st;
}

bool sg_upload_queue_pop(sg_upload_queue *q, sg_upload_item *out)
{
    static const sg_upload_kind order[] = {SG_UPLOAD_QUERY, SG_UPLOAD_AUDIO, SG_UPLOAD_FRAME};
    for (size_t k = 0; k < sizeof order / sizeof order[0]; k++) {
        int i = oldest_of(q, order[k]);
        if (i >= 0) {
            *out = q->items[i];
            remove_at(q, i);
            return true;
        }
    }
    return false;
}

bool sg_upload_queue_has_newer_frame(const sg_upload_queue *q, long long seq)
{
    for (int i = 0; i < q->n; i++)
        if (q->items[i].kind == SG_UPLOAD_FRAME && q->items[i].seq > seq)
            return true;
    return false;
}
