/* The sentence feeder: text arrives in pieces as it is generated (token by token, or all at once)
 * and each sentence is handed on as soon as it is certainly complete, so speech synthesis can
 * start on the first sentence while the rest is still being generated.
 *
 * A sentence ends at a newline, or at a cluster of terminators (. ! ? and the ellipsis U+2026, with
 * closing quotes and brackets after them) that is followed by a space and then by something that
 * is not a lowercase letter. A period does not end a sentence after a known abbreviation ("Dr.",
 * "Mr.", "vs."), a single letter ("J. Smith"), a word with inner periods ("e.g.", "U.S.", "p.m."),
 * or a leading list number ("1. Go north."); one followed by a non-space ("3.5", "example.com")
 * never does. Deciding needs up to two characters after the cluster, so a sentence is handed on
 * when those arrive (usually with the next token), or at sg_sentences_finish.
 *
 * Bounded: a sentence longer than max_bytes is cut at its last space before the limit (at a
 * character boundary when it has none), so memory is O(max_bytes) whatever the input. Runs of
 * white space (and control characters) become one space; invalid UTF-8 becomes U+FFFD; sentences
 * with no letter or digit ("...", "!!") are dropped. Feeding the same text in any pieces gives the
 * same sentences as feeding it whole: the feeder decides character by character. */
#ifndef SG_AGENT_SENTENCES_H
#define SG_AGENT_SENTENCES_H

#include <stddef.h>

#include "base/error.h"

#define SG_SENTENCE_MAX_BYTES 400 /* the default cut for a sentence without an end */
#define SG_SENTENCE_MIN_BYTES 16
#define SG_SENTENCE_LIMIT_BYTES 8192

typedef struct sg_sentences sg_sentences;

/* Called with each complete sentence: trimmed, valid UTF-8, NUL-terminated at sentence[len],
 * borrowed for the call. A status other than SG_OK stops the feed (or finish) and is returned. */
typedef sg_status (*sg_sentence_fn)(void *user, const char *sentence, size_t len, sg_error *err);

/* max_bytes: 0 = SG_SENTENCE_MAX_BYTES, else SG_SENTENCE_MIN_BYTES..SG_SENTENCE_LIMIT_BYTES
 * (NULL otherwise, or when out of memory). */
sg_sentences *sg_sentences_new(size_t max_bytes);
void sg_sentences_free(sg_sentences *s);

/* Appends len bytes of text; fn gets every sentence that this completes, in order. */
sg_status sg_sentences_feed(sg_sentences *s, const char *piece, size_t len, sg_sentence_fn fn,
                            void *user, sg_error *err);
/* Ends the text: what is left is handed on as the last sentence(s). The feeder is then empty and
 * can take a new text. */
sg_status sg_sentences_finish(sg_sentences *s, sg_sentence_fn fn, void *user, sg_error *err);
/* Drops whatever is pending (after a stopped feed, or to start over). */
void sg_sentences_reset(sg_sentences *s);

/* Sentences handed on since the feeder was made (dropped ones not counted). */
size_t sg_sentences_count(const sg_sentences *s);

#endif
