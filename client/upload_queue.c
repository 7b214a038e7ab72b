/* The bounded upload queue: frames are disposable (a newer one says more than an old one), audio and
 * questions are not. Items are kept in push order in a small array (capacities are tens of items,
 * so removing from the middle is a short memmove); the queue never allocates after init. */
#include <stdlib.h>
#include <string.h>

#include "sgclient.h"

static const char *const kind_names[SG_UPLOAD_KINDS] = {"frame", "audio", "query", "control"};

const char *sg_upload_kind_name(sg_upload_kind k)
{
    return (k >= 0 && k < SG_UPLOAD_KINDS) ? kind_names[k] : "?";
}

int sg_upq_init(sg_upload_queue *q, int capacity, int max_frames)
{
    memset(q, 0, sizeof *q);
    if (capacity < 1 || capacity > 1000000 || max_frames < 0)
        return -1;
    q->items = calloc((size_t)capacity, sizeof *q->items);
    if (!q->items)
        return -1;
    q->capacity = capacity;
    q->max_frames = max_frames < capacity ? max_frames : capacity;
    return 0;
}

void sg_upq_free(sg_upload_queue *q)
{
    free(q->items);
    memset(q, 0, sizeof *q);
}

int sg_upq_count(const sg_upload_queue *q, sg_upload_kind kind)
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

static int oldest_of(const sg_upload_queue *q, sg_upload_kind kind)
{
    for (int i = 0; i < q->n; i++)
        if (q->items[i].kind == kind)
            return i;
    return -1;
}

sg_upq_status sg_upq_push(sg_upload_queue *q, sg_upload_item item, sg_upload_item *evicted)
{
    if (!q->items || item.kind < 0 || item.kind >= SG_UPLOAD_CONTROL)
        return SG_UPQ_EINVAL;
    bool frame = item.kind == SG_UPLOAD_FRAME;
    if (frame && q->max_frames == 0) {
        q->dropped_new_frames++;
        return SG_UPQ_DROPPED_NEW;
    }
    bool need_room = q->n >= q->capacity || (frame && sg_upq_count(q, SG_UPLOAD_FRAME) >= q->max_frames);
    sg_upq_status st = SG_UPQ_OK;
    if (need_room) {
        int old = oldest_of(q, SG_UPLOAD_FRAME);
        if (old < 0) {
            /* full of audio and questions: a frame is the one thing we may drop */
            if (frame) {
                q->dropped_new_frames++;
                return SG_UPQ_DROPPED_NEW;
            }
            q->refused[item.kind]++;
            return SG_UPQ_FULL;
        }
        if (evicted)
            *evicted = q->items[old];
        remove_at(q, old);
        q->evicted_frames++;
        st = SG_UPQ_DROPPED_OLDEST;
    }
    item.seq = ++q->seq;
    q->items[q->n++] = item;
    q->pushed[item.kind]++;
    return st;
}

bool sg_upq_pop(sg_upload_queue *q, sg_upload_item *out)
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

bool sg_upq_has_newer_frame(const sg_upload_queue *q, long long seq)
{
    for (int i = 0; i < q->n; i++)
        if (q->items[i].kind == SG_UPLOAD_FRAME && q->items[i].seq > seq)
            return true;
    return false;
}
