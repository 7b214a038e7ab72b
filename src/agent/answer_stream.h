/* A turn's answer handed on as it is made (streamed routes: SSE, the answer on /ws/audio).
 *
 * The language model's text arrives piece by piece. A sentence feeder (agent/sentences.h) finds
 * where sentences end; at each end the moderation (agent/safety.h) runs on all the text so far,
 * and only when it passes are the pieces held so far released as text (on_text) and the sentence
 * handed on (on_sentence: the server speaks it). So nothing is released that the moderation
 * would block at that point, and a sentence is spoken before the next one is generated.
 *
 * At the end the turn's final response decides: when it is the generated text, what is still held
 * is released; when it differs (the whole answer was blocked and replaced by the fallback
 * sentence), on_reset withdraws what was released and the final response follows as text and
 * sentences. So the text released after the last reset is always the final response. */
#ifndef SG_AGENT_ANSWER_STREAM_H
#define SG_AGENT_ANSWER_STREAM_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/error.h"

typedef struct sg_turn_stream {
    /* "transcript" ({"text", "language"}) when audio came, "vision" ({"visual_context", "scene"?})
     * for the scene used: once each, before any text. data is borrowed. */
    void (*on_stage)(void *ud, const char *event, json_t *data);
    /* Released text, in order; false stops the turn (the client went away, barge-in). */
    bool (*on_text)(void *ud, const char *piece, size_t len);
    /* The text released so far is withdrawn (see above); false stops the turn. */
    bool (*on_reset)(void *ud);
    /* The n-th complete sentence (from 0), after its text; false stops the turn. */
    bool (*on_sentence)(void *ud, int n, const char *sentence);
    void *ud;
} sg_turn_stream;

typedef struct sg_answer_stream sg_answer_stream;

/* NULL when out of memory. */
sg_answer_stream *sg_answer_stream_new(const sg_turn_stream *cb);
void sg_answer_stream_free(sg_answer_stream *a);

/* A piece of generated text (the LLM backend's sg_text_fn). false: stop generating (the stream's
 * callbacks said stop, or out of memory). */
bool sg_answer_stream_piece(void *a, const char *piece, size_t len);

/* The turn's final response: releases what is held (or resets and sends final), and the last
 * sentences. SG_OK, SG_ENOMEM; *stopped: a callback said stop (the rest was not sent). */
sg_status sg_answer_stream_end(sg_answer_stream *a, const char *final, bool *stopped,
                               sg_error *err);

/* Whether a callback has said stop. */
bool sg_answer_stream_stopped(const sg_answer_stream *a);

/* Timing of the first released text and the first handed-on sentence (sg_now_ms), -1 = none. */
double sg_answer_stream_first_text_ms(const sg_answer_stream *a);

#endif
