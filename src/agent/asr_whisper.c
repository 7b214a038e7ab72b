/* The ASR backend over the speech pipeline: with VAD segments from the turn (the usual server
 * path) the pipeline trims silence and cuts windows at the pauses; without, it transcribes the
 * audio in plain 30 s windows. A lock keeps each transcription's encode + decode together. */
#include "agent/asr_whisper.h"
#include "models/whisper_transcribe.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sg_asr_whisper {
    sg_asr_backend backend;
    sg_whisper *model;
    sg_speech_opts opts;
    pthread_mutex_t lock;
    char name[128];
};

static sg_status run(sg_asr_whisper *a, const float *pcm, size_t n, bool have_vad,
                     const sg_speech_segment *segs, size_t nsegs, const char *language,
                     char **text, sg_error *err)
{
    *text = NULL;
    sg_speech_opts o = a->opts;
    o.language = language;
    sg_speech_result r;
    pthread_mutex_lock(&a->lock);
    sg_status st = sg_speech_transcribe_segments(a->model, pcm, n, have_vad, segs, nsegs, &o, &r, err);
    pthread_mutex_unlock(&a->lock);
    if (st != SG_OK)
        return st;
    *text = r.text; /* handed over */
    r.text = NULL;
    sg_speech_result_free(&r);
    return SG_OK;
}

static sg_status asr_transcribe(void *self, const float *pcm, size_t n, const char *language,
                                char **text, sg_error *err)
{
    return run(self, pcm, n, false, NULL, 0, language, text, err);
}

static sg_status asr_transcribe_segments(void *self, const float *pcm, size_t n,
                                         const sg_speech_segment *segs, size_t nsegs,
                                         const char *language, char **text, sg_error *err)
{
    return run(self, pcm, n, true, segs, nsegs, language, text, err);
}

static sg_status asr_transcribe_full(void *self, const float *pcm, size_t n,
                                     const sg_whisper_transcribe_opts *o,
                                     sg_whisper_transcript *out, sg_error *err)
{
    sg_asr_whisper *a = self;
    pthread_mutex_lock(&a->lock);
    sg_status st = sg_speech_transcribe_openai(a->model, pcm, n, o, out, err);
    pthread_mutex_unlock(&a->lock);
    return st;
}

static sg_whisper *asr_whisper_model(void *self) { return ((sg_asr_whisper *)self)->model; }

sg_asr_whisper *sg_asr_whisper_new(sg_whisper *model, const char *name, const sg_speech_opts *opts,
                                   sg_error *err)
{
    if (!model) {
        sg_error_set(err, SG_EINVAL, "asr: no model");
        return NULL;
    }
    if (!sg_whisper_has_vocab(model)) {
        sg_whisper_free(model);
        sg_error_set(err, SG_EINVAL, "the speech model has no vocabulary (a Hugging Face directory "
                                     "needs vocab.json + merges.txt or a *.tiktoken file), so it "
                                     "cannot produce text");
        return NULL;
    }
    sg_asr_whisper *a = calloc(1, sizeof *a);
    if (!a) {
        sg_whisper_free(model);
        sg_error_set(err, SG_ENOMEM, "asr: out of memory");
        return NULL;
    }
    a->model = model;
    if (opts)
        a->opts = *opts;
    a->opts.language = NULL;
    pthread_mutex_init(&a->lock, NULL);
    snprintf(a->name, sizeof a->name, "%s", name ? name : "whisper");
    a->backend.name = a->name;
    a->backend.transcribe = asr_transcribe;
    a->backend.transcribe_segments = asr_transcribe_segments;
    a->backend.transcribe_full = asr_transcribe_full;
    a->backend.whisper = asr_whisper_model;
    a->backend.self = a;
    return a;
}

sg_asr_backend *sg_asr_whisper_backend(sg_asr_whisper *a) { return &a->backend; }

sg_whisper *sg_asr_whisper_model(sg_asr_whisper *a) { return a->model; }

void sg_asr_whisper_free(sg_asr_whisper *a)
{
    if (!a)
        return;
    pthread_mutex_destroy(&a->lock);
    sg_whisper_free(a->model);
    free(a);
}
