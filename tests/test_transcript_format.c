/* Whisper transcripts in OpenAI's response formats (agent/transcript_format.h), on a transcript
 * built by hand: two segments with words, a non-ASCII text, an "-->" in a text, times past an hour
 * (SRT and VTT hours), Python's round-half-even milliseconds, the verbose_json shape with each
 * granularity choice, language names, and the errors. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/transcript_format.h"
#include "check.h"

static sg_whisper_word W(const char *w, float a, float b)
{
    return (sg_whisper_word){strdup(w), a, b, 0.9f};
}

/* Built as sg_whisper_transcribe builds one (every pointer malloc'ed), so that
 * sg_whisper_transcript_free could free it; freed here by hand since this test does not need the
 * transcription code. */
static void build(sg_whisper_transcript *t)
{
    memset(t, 0, sizeof *t);
    t->text = strdup(" Grüße aus München --> Berlin. Second part.");
    t->language = 50261;
    t->duration = 3725.5f;
    t->n_segments = 2;
    t->segments = calloc(2, sizeof *t->segments);
    sg_whisper_segment *s = t->segments;
    s[0].id = 0;
    s[0].seek = 0;
    s[0].start = 0.0f;
    s[0].end = 2.5f;
    s[0].text = strdup(" Grüße aus München --> Berlin.");
    s[0].n_tokens = 3;
    s[0].tokens = malloc(3 * sizeof(int32_t));
    s[0].tokens[0] = 50364;
    s[0].tokens[1] = 1033;
    s[0].tokens[2] = 50489;
    s[0].temperature = 0.0f;
    s[0].avg_logprob = -0.25f;
    s[0].compression_ratio = 1.5f;
    s[0].no_speech_prob = 0.125f;
    s[0].n_words = 4;
    s[0].words = malloc(4 * sizeof(sg_whisper_word));
    s[0].words[0] = W(" Grüße", 0.0f, 0.5f);
    s[0].words[1] = W(" aus", 0.5f, 1.0f);
    s[0].words[2] = W(" München", 1.0f, 1.75f);
    s[0].words[3] = W(" --> Berlin.", 1.75f, 2.5f);
    s[1].id = 1;
    s[1].seek = 372000;
    s[1].start = 3723.0005f; /* 3723000.5 ms as a float is 3723000.49..: rounds down */
    s[1].end = 3725.5f;
    s[1].text = strdup(" Second part.");
    s[1].n_tokens = 1;
    s[1].tokens = malloc(sizeof(int32_t));
    s[1].tokens[0] = 5;
    s[1].temperature = 0.2f;
    s[1].avg_logprob = -0.5f;
    s[1].compression_ratio = 1.0f;
    s[1].no_speech_prob = 0.0f;
    s[1].n_words = 2;
    s[1].words = malloc(2 * sizeof(sg_whisper_word));
    s[1].words[0] = W(" Second", 3723.0f, 3724.0f);
    s[1].words[1] = W(" part.", 3724.0f, 3725.5f);
}

static void drop(sg_whisper_transcript *t)
{
    for (size_t i = 0; i < t->n_segments; i++) {
        for (size_t k = 0; k < t->segments[i].n_words; k++)
            free(t->segments[i].words[k].word);
        free(t->segments[i].words);
        free(t->segments[i].tokens);
        free(t->segments[i].text);
    }
    free(t->segments);
    free(t->text);
}

static char *fmt(const sg_whisper_transcript *t, sg_transcript_format f,
                 const sg_transcript_format_opts *o)
{
    char *s = NULL;
    size_t n = 0;
    sg_error err = {0};
    sg_status st = sg_transcript_format_write(t, f, o, &s, &n, &err);
    CHECK_MSG(st == SG_OK && s && strlen(s) == n, "%s: %s", sg_transcript_format_name(f), err.msg);
    return s;
}

static void test_timestamps(void)
{
    char b[32];
    CHECK(sg_transcript_timestamp(0.0, false, '.', b, sizeof b) && strcmp(b, "00:00.000") == 0);
    CHECK(sg_transcript_timestamp(0.0, true, ',', b, sizeof b) && strcmp(b, "00:00:00,000") == 0);
    CHECK(sg_transcript_timestamp(61.25, false, '.', b, sizeof b) && strcmp(b, "01:01.250") == 0);
    CHECK(sg_transcript_timestamp(3600.0, false, '.', b, sizeof b) && strcmp(b, "01:00:00.000") == 0);
    CHECK(sg_transcript_timestamp(3599.9996, false, '.', b, sizeof b) && strcmp(b, "01:00:00.000") == 0);
    CHECK(sg_transcript_timestamp(3599.9994, false, '.', b, sizeof b) && strcmp(b, "59:59.999") == 0);
    CHECK(sg_transcript_timestamp(36000.0 * 3 + 1.5, true, ',', b, sizeof b) &&
          strcmp(b, "30:00:01,500") == 0);
    /* ties to even, as Python's round(): 0.0625 s = 62.5 ms exactly -> 62; 0.1875 -> 187.5 -> 188 */
    CHECK(sg_transcript_timestamp(0.0625, false, '.', b, sizeof b) && strcmp(b, "00:00.062") == 0);
    CHECK(sg_transcript_timestamp(0.1875, false, '.', b, sizeof b) && strcmp(b, "00:00.188") == 0);
    CHECK(!sg_transcript_timestamp(-0.001, false, '.', b, sizeof b) && b[0] == 0);
    CHECK(!sg_transcript_timestamp(NAN, false, '.', b, sizeof b));
    CHECK(!sg_transcript_timestamp(INFINITY, false, '.', b, sizeof b));
}

static void test_text_formats(const sg_whisper_transcript *t)
{
    char *s = fmt(t, SG_TRANSCRIPT_TEXT, NULL);
    CHECK(s && strcmp(s, "Grüße aus München --> Berlin. Second part.\n") == 0);
    free(s);
    s = fmt(t, SG_TRANSCRIPT_JSON, NULL);
    CHECK_MSG(s && strcmp(s, "{\"text\":\"Grüße aus München --> Berlin. Second part.\"}") == 0,
              "%s", s);
    free(s);
    s = fmt(t, SG_TRANSCRIPT_SRT, NULL);
    const char *srt = "1\n00:00:00,000 --> 00:00:02,500\nGrüße aus München -> Berlin.\n\n"
                      "2\n01:02:03,000 --> 01:02:05,500\nSecond part.\n\n";
    CHECK_MSG(s && strcmp(s, srt) == 0, "%s", s);
    free(s);
    s = fmt(t, SG_TRANSCRIPT_VTT, NULL);
    const char *vtt = "WEBVTT\n\n00:00.000 --> 00:02.500\nGrüße aus München -> Berlin.\n\n"
                      "01:02:03.000 --> 01:02:05.500\nSecond part.\n\n";
    CHECK_MSG(s && strcmp(s, vtt) == 0, "%s", s);
    free(s);
}

static void check_segment(json_t *s, int id, int seek, double start, double end, const char *text,
                          size_t ntok, double temp)
{
    CHECK(json_integer_value(json_object_get(s, "id")) == id);
    CHECK(json_integer_value(json_object_get(s, "seek")) == seek);
    CHECK(json_real_value(json_object_get(s, "start")) == start);
    CHECK(json_real_value(json_object_get(s, "end")) == end);
    CHECK(strcmp(json_string_value(json_object_get(s, "text")), text) == 0);
    CHECK(json_array_size(json_object_get(s, "tokens")) == ntok);
    CHECK(json_real_value(json_object_get(s, "temperature")) == temp);
    CHECK(json_is_real(json_object_get(s, "avg_logprob")));
    CHECK(json_is_real(json_object_get(s, "compression_ratio")));
    CHECK(json_is_real(json_object_get(s, "no_speech_prob")));
    CHECK(json_object_size(s) == 10);
}

static json_t *verbose(const sg_whisper_transcript *t, const sg_transcript_format_opts *o)
{
    char *s = fmt(t, SG_TRANSCRIPT_VERBOSE_JSON, o);
    json_error_t je;
    json_t *j = s ? json_loads(s, 0, &je) : NULL;
    CHECK_MSG(j != NULL, "%s", s);
    free(s);
    return j;
}

static void test_verbose(const sg_whisper_transcript *t)
{
    sg_transcript_format_opts o = {.language = "de"};
    json_t *j = verbose(t, &o);
    if (j) {
        CHECK(strcmp(json_string_value(json_object_get(j, "task")), "transcribe") == 0);
        CHECK(strcmp(json_string_value(json_object_get(j, "language")), "german") == 0);
        CHECK(json_real_value(json_object_get(j, "duration")) == 3725.5);
        CHECK(strcmp(json_string_value(json_object_get(j, "text")),
                     "Grüße aus München --> Berlin. Second part.") == 0);
        json_t *segs = json_object_get(j, "segments");
        CHECK(json_array_size(segs) == 2);
        check_segment(json_array_get(segs, 0), 0, 0, 0.0, 2.5, " Grüße aus München --> Berlin.", 3,
                      0.0);
        check_segment(json_array_get(segs, 1), 1, 372000, (double)3723.0005f, 3725.5,
                      " Second part.", 1, (double)0.2f);
        CHECK(json_integer_value(json_array_get(json_object_get(json_array_get(segs, 0), "tokens"),
                                                2)) == 50489);
        CHECK(json_object_get(j, "words") == NULL); /* not asked */
        /* the key order OpenAI sends */
        const char *keys[] = {"task", "language", "duration", "text", "segments"};
        size_t i = 0;
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v) {
            CHECK(i < 5 && strcmp(k, keys[i]) == 0);
            i++;
        }
        json_decref(j);
    }
    /* words only */
    o = (sg_transcript_format_opts){.language = "en", .translate = true,
                                    .granularities = SG_TRANSCRIPT_GRAN_WORD};
    j = verbose(t, &o);
    if (j) {
        CHECK(strcmp(json_string_value(json_object_get(j, "task")), "translate") == 0);
        CHECK(strcmp(json_string_value(json_object_get(j, "language")), "english") == 0);
        CHECK(json_object_get(j, "segments") == NULL);
        json_t *w = json_object_get(j, "words");
        CHECK(json_array_size(w) == 6);
        json_t *w2 = json_array_get(w, 2), *w5 = json_array_get(w, 5);
        CHECK(strcmp(json_string_value(json_object_get(w2, "word")), "München") == 0);
        CHECK(json_real_value(json_object_get(w2, "start")) == 1.0);
        CHECK(json_real_value(json_object_get(w2, "end")) == 1.75);
        CHECK(json_object_size(w2) == 3);
        CHECK(strcmp(json_string_value(json_object_get(w5, "word")), "part.") == 0);
        CHECK(json_real_value(json_object_get(w5, "end")) == 3725.5);
        json_decref(j);
    }
    /* both; NULL language = English (.en models) */
    o = (sg_transcript_format_opts){.granularities = SG_TRANSCRIPT_GRAN_WORD | SG_TRANSCRIPT_GRAN_SEGMENT};
    j = verbose(t, &o);
    if (j) {
        CHECK(strcmp(json_string_value(json_object_get(j, "language")), "english") == 0);
        CHECK(json_array_size(json_object_get(j, "segments")) == 2);
        CHECK(json_array_size(json_object_get(j, "words")) == 6);
        json_decref(j);
    }
    /* an empty transcript, invalid UTF-8 made valid */
    sg_whisper_transcript e = {0};
    char bad[] = " caf\xc3 x\xff";
    e.text = bad;
    j = verbose(&e, NULL);
    if (j) {
        CHECK(strcmp(json_string_value(json_object_get(j, "text")), "caf\xEF\xBF\xBD x\xEF\xBF\xBD") == 0);
        CHECK(json_array_size(json_object_get(j, "segments")) == 0);
        json_decref(j);
    }
    char *s = fmt(&e, SG_TRANSCRIPT_SRT, NULL);
    CHECK(s && s[0] == 0);
    free(s);
    s = fmt(&e, SG_TRANSCRIPT_VTT, NULL);
    CHECK(s && strcmp(s, "WEBVTT\n\n") == 0);
    free(s);
    e.text = NULL;
    s = fmt(&e, SG_TRANSCRIPT_TEXT, NULL);
    CHECK(s && strcmp(s, "\n") == 0);
    free(s);
}

static void test_names_and_errors(const sg_whisper_transcript *t)
{
    CHECK(strcmp(sg_whisper_language_name("en"), "english") == 0);
    CHECK(strcmp(sg_whisper_language_name("ht"), "haitian creole") == 0);
    CHECK(strcmp(sg_whisper_language_name("yue"), "cantonese") == 0);
    CHECK(strcmp(sg_whisper_language_name("haw"), "hawaiian") == 0);
    CHECK(sg_whisper_language_name("xx") == NULL && sg_whisper_language_name(NULL) == NULL);
    CHECK(strcmp(sg_whisper_language_lookup("German"), "de") == 0);
    CHECK(strcmp(sg_whisper_language_lookup("DE"), "de") == 0);
    CHECK(strcmp(sg_whisper_language_lookup("burmese"), "my") == 0);
    CHECK(strcmp(sg_whisper_language_lookup("mandarin"), "zh") == 0);
    CHECK(sg_whisper_language_lookup("klingon") == NULL);

    sg_transcript_format f;
    sg_error err = {0};
    const char *names[] = {"json", "text", "srt", "vtt", "verbose_json"};
    for (int i = 0; i < 5; i++) {
        CHECK(sg_transcript_format_parse(names[i], &f, &err) == SG_OK && (int)f == i);
        CHECK(strcmp(sg_transcript_format_name(f), names[i]) == 0);
    }
    CHECK(sg_transcript_format_parse("JSON", &f, &err) == SG_EINVAL && strstr(err.msg, "\"JSON\""));
    CHECK(sg_transcript_format_parse(NULL, &f, &err) == SG_EINVAL);
    CHECK(strcmp(sg_transcript_format_content_type(SG_TRANSCRIPT_VERBOSE_JSON), "application/json") == 0);
    CHECK(strncmp(sg_transcript_format_content_type(SG_TRANSCRIPT_VTT), "text/vtt", 8) == 0);
    CHECK(strncmp(sg_transcript_format_content_type(SG_TRANSCRIPT_SRT), "text/plain", 10) == 0);
    unsigned bit = 0;
    CHECK(sg_transcript_granularity_parse("word", &bit, &err) == SG_OK && bit == SG_TRANSCRIPT_GRAN_WORD);
    CHECK(sg_transcript_granularity_parse("segment", &bit, &err) == SG_OK &&
          bit == SG_TRANSCRIPT_GRAN_SEGMENT);
    CHECK(sg_transcript_granularity_parse("char", &bit, &err) == SG_EINVAL && strstr(err.msg, "char"));

    char *s = (char *)1;
    sg_transcript_format_opts o = {.language = "xx"};
    CHECK(sg_transcript_format_write(t, SG_TRANSCRIPT_JSON, &o, &s, NULL, &err) == SG_EINVAL &&
          s == NULL && strstr(err.msg, "\"xx\""));
    CHECK(sg_transcript_format_write(t, (sg_transcript_format)9, NULL, &s, NULL, &err) == SG_EINVAL);
    sg_whisper_transcript neg = *t;
    sg_whisper_segment seg = t->segments[0];
    seg.start = -1.0f;
    neg.segments = &seg;
    neg.n_segments = 1;
    CHECK(sg_transcript_format_write(&neg, SG_TRANSCRIPT_SRT, NULL, &s, NULL, &err) == SG_EINVAL &&
          s == NULL && strstr(err.msg, "segment 0"));
}

int main(void)
{
    sg_whisper_transcript t;
    build(&t);
    test_timestamps();
    test_text_formats(&t);
    test_verbose(&t);
    test_names_and_errors(&t);
    drop(&t);
    return check_report("test_transcript_format");
}
