/* Whisper (models/whisper.h) through the speech pipeline (agent/speech.h) as the turn's ASR
 * backend. One transcription runs at a time per backend (the decoder reads the window the encoder
 * left behind, so encode + decode must not interleave); each uses the whole thread pool. */
#ifndef SG_AGENT_ASR_WHISPER_H
#define SG_AGENT_ASR_WHISPER_H

#include "agent/backends.h"
#include "agent/speech.h"
#include "models/whisper.h"

typedef struct sg_asr_whisper sg_asr_whisper;

/* Takes ownership of model (also on failure). name is reported in metadata.models.asr (e.g.
 * "whisper-tiny.en int8"); opts (may be NULL: defaults) apply to every call, except the language,
 * which comes from each request. A model without a vocabulary is refused (SG_EINVAL): it could
 * only produce token ids. */
sg_asr_whisper *sg_asr_whisper_new(sg_whisper *model, const char *name, const sg_speech_opts *opts,
                                   sg_error *err);
sg_asr_backend *sg_asr_whisper_backend(sg_asr_whisper *a);
sg_whisper *sg_asr_whisper_model(sg_asr_whisper *a);
void sg_asr_whisper_free(sg_asr_whisper *a);

#endif
