/* The answer handed on as it is made: pieces held until their sentence passes the moderation
 * (answer_stream.h). */
#include "agent/answer_stream.h"

#include <stdlib.h>
#include <string.h>

#include "agent/safety.h"
#include "agent/sentences.h"
#include "base/clock.h"

#define MAX_TEXT_BYTES (1u << 20) /* an answer longer than this stops (the LLM's is ~64 tokens) */

struct sg_answer_stream {
    sg_turn_stream cb;
    sg_sentences *feeder;
    char *raw;              /* all the text so far, NUL-terminated */
    size_t len, cap;
    size_t released;        /* raw[0..released) has gone out as text */
    size_t *ends;           /* where each piece ends in raw: text goes out piece by piece */
    size_t nends, capends;
    char **held;            /* complete sentences waiting for the moderation to pass */
    size_t nheld, capheld;
    int sentences;          /* handed on */
    bool stopped, failed;
    double first_text_ms;
};

sg_answer_stream *sg_answer_stream_new(const sg_turn_stream *cb)
{
    sg_answer_stream *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->cb = *cb;
    a->feeder = sg_sentences_new(0);
    a->raw = malloc(256);
    if (!a->feeder || !a->raw) {
        sg_answer_stream_free(a);
        return NULL;
    }
    a->raw[0] = 0;
    a->cap = 256;
    a->first_text_ms = -1;
    return a;
}

static void drop_held(sg_answer_stream *a)
{
    for (size_t i = 0; i < a->nheld; i++)
        free(a->held[i]);
    a->nheld = 0;
}

void sg_answer_stream_free(sg_answer_stream *a)
{
    if (!a)
        return;
    sg_sentences_free(a->feeder);
    drop_held(a);
    free(a->held);
    free(a->ends);
    free(a->raw);
    free(a);
}

bool sg_answer_stream_stopped(const sg_answer_stream *a) { return a->stopped; }
double sg_answer_stream_first_text_ms(const sg_answer_stream *a) { return a->first_text_ms; }

/* Every piece up to upto goes out as text. */
static void release(sg_answer_stream *a, size_t upto)
{
    size_t from = a->released;
    for (size_t i = 0; i < a->nends && !a->stopped; i++) {
        const size_t end = a->ends[i];
        if (end <= from || end > upto)
            continue;
        if (a->first_text_ms < 0)
            a->first_text_ms = sg_now_ms();
        if (a->cb.on_text && !a->cb.on_text(a->cb.ud, a->raw + from, end - from))
            a->stopped = true;
        from = end;
    }
    a->released = from;
}

static void speak(sg_answer_stream *a, const char *sentence)
{
    if (!a->stopped && a->cb.on_sentence && !a->cb.on_sentence(a->cb.ud, a->sentences, sentence))
        a->stopped = true;
    a->sentences++;
}

/* The feeder's sentence: the text so far passes the moderation -> release it and speak what
 * waited; otherwise the sentence waits too. */
static sg_status on_sentence(void *user, const char *sentence, size_t len, sg_error *err)
{
    sg_answer_stream *a = user;
    (void)len;
    sg_safety_result s;
    sg_safety_check(a->raw, &s);
    if (s.blocked) {
        if (a->nheld == a->capheld) {
            size_t cap = a->capheld ? a->capheld * 2 : 8;
            char **h = realloc(a->held, cap * sizeof *h);
            if (!h)
                return sg_error_set(err, SG_ENOMEM, "out of memory");
            a->held = h;
            a->capheld = cap;
        }
        if (!(a->held[a->nheld] = strdup(sentence)))
            return sg_error_set(err, SG_ENOMEM, "out of memory");
        a->nheld++;
        return SG_OK;
    }
    release(a, a->len);
    for (size_t i = 0; i < a->nheld; i++)
        speak(a, a->held[i]);
    drop_held(a);
    speak(a, sentence);
    return a->stopped ? SG_EINVAL : SG_OK; /* stops the feed: nothing more is wanted */
}

static bool append(sg_answer_stream *a, const char *piece, size_t len)
{
    if (a->len + len > MAX_TEXT_BYTES)
        return false;
    if (a->len + len + 1 > a->cap) {
        size_t cap = (a->len + len + 1) * 2;
        char *r = realloc(a->raw, cap);
        if (!r)
            return false;
        a->raw = r;
        a->cap = cap;
    }
    if (a->nends == a->capends) {
        size_t cap = a->capends ? a->capends * 2 : 64;
        size_t *e = realloc(a->ends, cap * sizeof *e);
        if (!e)
            return false;
        a->ends = e;
        a->capends = cap;
    }
    memcpy(a->raw + a->len, piece, len);
    a->len += len;
    a->raw[a->len] = 0;
    a->ends[a->nends++] = a->len;
    return true;
}

bool sg_answer_stream_piece(void *user, const char *piece, size_t len)
{
    sg_answer_stream *a = user;
    if (a->stopped || a->failed)
        return false;
    if (len == 0)
        return true;
    if (!append(a, piece, len)) {
        a->failed = true;
        return false;
    }
    sg_error err = {0};
    if (sg_sentences_feed(a->feeder, piece, len, on_sentence, a, &err) != SG_OK && !a->stopped)
        a->failed = true;
    return !a->stopped && !a->failed;
}

sg_status sg_answer_stream_end(sg_answer_stream *a, const char *final, bool *stopped,
                               sg_error *err)
{
    *stopped = a->stopped;
    if (a->stopped)
        return SG_OK;
    if (!final)
        final = "";
    if (a->failed || strcmp(final, a->raw) != 0) {
        /* the response is not the text generated (the moderation replaced it): start over */
        sg_sentences_reset(a->feeder);
        drop_held(a);
        if (a->released > 0 && a->cb.on_reset && !a->cb.on_reset(a->cb.ud))
            a->stopped = true;
        a->len = a->released = a->nends = 0;
        a->raw[0] = 0;
        a->failed = false;
        if (!a->stopped && !sg_answer_stream_piece(a, final, strlen(final)) && !a->stopped)
            return sg_error_set(err, SG_ENOMEM, "out of memory streaming the answer");
    }
    if (!a->stopped) {
        sg_error ferr = {0};
        if (sg_sentences_finish(a->feeder, on_sentence, a, &ferr) != SG_OK && !a->stopped)
            return sg_error_set(err, ferr.code ? ferr.code : SG_ENOMEM, "%s", ferr.msg);
    }
    /* the final response passed the moderation (else it would be the fallback): the rest goes */
    release(a, a->len);
    for (size_t i = 0; i < a->nheld; i++)
        speak(a, a->held[i]);
    drop_held(a);
    *stopped = a->stopped;
    return SG_OK;
}
