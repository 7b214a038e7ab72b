/* A Whisper transcript (models/whisper_transcribe.h) in the response formats of OpenAI's
 * POST /v1/audio/transcriptions and /translations:
 *  - json          {"text": "..."}
 *  - text          the text and a newline
 *  - srt, vtt      openai/whisper's WriteSRT / WriteVTT (whisper/utils.py) over the segments:
 *                  format_timestamp (milliseconds = round(seconds * 1000), ties to even as
 *                  Python's round; SRT always "HH:MM:SS,mmm", VTT "MM:SS.mmm" with "HH:" only from
 *                  an hour on), each segment's text stripped with "-->" written "->"; SRT numbers
 *                  the cues from 1, VTT starts "WEBVTT\n\n". The cues are the segments even when
 *                  words were timed (whisper's word-level subtitles need its line-width options,
 *                  which the API does not have).
 *  - verbose_json  OpenAI's shape: task, language (openai's full lower-case name, "english"),
 *                  duration, text, segments [{id, seek, start, end, text, tokens, temperature,
 *                  avg_logprob, compression_ratio, no_speech_prob}] and words [{word, start, end}].
 *                  As OpenAI: segments when the segment granularity is asked or none is, words
 *                  only when the word granularity is asked (the words of every segment, in order,
 *                  spaces stripped as OpenAI sends them; [] when the transcript has none).
 * The top-level text is stripped of surrounding white space (Whisper's starts with one); segment
 * texts are kept as decoded (OpenAI's keep the leading space). Invalid UTF-8 in a text becomes
 * U+FFFD so the JSON is always valid. */
#ifndef SG_AGENT_TRANSCRIPT_FORMAT_H
#define SG_AGENT_TRANSCRIPT_FORMAT_H

#include <stdbool.h>
#include <stddef.h>

#include "base/error.h"
#include "models/whisper_transcribe.h"

typedef enum sg_transcript_format {
    SG_TRANSCRIPT_JSON = 0,
    SG_TRANSCRIPT_TEXT,
    SG_TRANSCRIPT_SRT,
    SG_TRANSCRIPT_VTT,
    SG_TRANSCRIPT_VERBOSE_JSON,
} sg_transcript_format;

/* timestamp_granularities[] as bits */
#define SG_TRANSCRIPT_GRAN_SEGMENT 1u
#define SG_TRANSCRIPT_GRAN_WORD 2u

typedef struct sg_transcript_format_opts {
    bool translate;            /* task "translate" instead of "transcribe" */
    const char *language;      /* the language code (sg_whisper_language_code); NULL: "en" (an
                                  .en model's transcript) */
    unsigned granularities;    /* SG_TRANSCRIPT_GRAN_* bits; 0: segment, as OpenAI */
} sg_transcript_format_opts;

/* "json", "text", "srt", "verbose_json", "vtt" (exactly, as OpenAI) into *out; SG_EINVAL naming
 * the accepted values otherwise. */
sg_status sg_transcript_format_parse(const char *name, sg_transcript_format *out, sg_error *err);
const char *sg_transcript_format_name(sg_transcript_format f);
/* The HTTP Content-Type of a format's body: application/json for the JSON ones,
 * "text/plain; charset=utf-8" for text and srt, "text/vtt; charset=utf-8" for vtt. */
const char *sg_transcript_format_content_type(sg_transcript_format f);

/* "word" / "segment" into its SG_TRANSCRIPT_GRAN_* bit; SG_EINVAL otherwise. */
sg_status sg_transcript_granularity_parse(const char *name, unsigned *bit, sg_error *err);

/* The transcript in format f: *out malloc'ed, NUL-terminated, *len its length (len may be NULL).
 * opts NULL: transcribe, English, segment granularity. Errors: SG_EINVAL (an unknown format or
 * language code, a negative or non-finite time in srt/vtt), SG_ENOMEM. */
sg_status sg_transcript_format_write(const sg_whisper_transcript *t, sg_transcript_format f,
                                     const sg_transcript_format_opts *opts, char **out, size_t *len,
                                     sg_error *err);

/* openai/whisper's LANGUAGES: the lower-case English name of a language code ("de" -> "german"),
 * NULL for a code Whisper does not have. */
const char *sg_whisper_language_name(const char *code);
/* The code of a name or code, case-insensitive, with openai's aliases (TO_LANGUAGE_CODE:
 * "burmese", "valencian", "flemish", ...): "German" -> "de", "de" -> "de"; NULL when unknown. */
const char *sg_whisper_language_lookup(const char *name_or_code);

/* openai/whisper's format_timestamp into buf (>= 16 bytes): "[HH:]MM:SS<marker>mmm". Returns
 * false (buf "") for a negative or non-finite time. */
bool sg_transcript_timestamp(double seconds, bool always_include_hours, char decimal_marker,
                             char *buf, size_t cap);

#endif
