/* flite (CMU's small synthesiser, Debian's libflite1, linked as a library) as the TTS backend,
 * with its US English voices. Why flite and not espeak-ng, and why this is safe under the worker
 * pool: docs/ARCHITECTURE.md, Decisions, 2026-12-07. */
#ifndef SG_AGENT_TTS_FLITE_H
#define SG_AGENT_TTS_FLITE_H

#include "agent/tts.h"

typedef struct sg_tts_flite sg_tts_flite;

/* The voices this build has: "slt kal kal16 awb rms". */
#define SG_TTS_FLITE_VOICES "slt kal kal16 awb rms"
#define SG_TTS_FLITE_DEFAULT_VOICE "slt"

/* voice: a name from SG_TTS_FLITE_VOICES (also with its "cmu_us_" prefix); NULL or "" = slt.
 * rate: SG_TTS_RATE_MIN..SG_TTS_RATE_MAX, 0 = 1. An unknown voice or a rate out of range is
 * SG_EINVAL with the choices in the message. The backend is named "flite-2.2 cmu_us_<voice>". */
sg_tts_flite *sg_tts_flite_open(const char *voice, double rate, sg_error *err);
sg_tts_backend *sg_tts_flite_backend(sg_tts_flite *f);
void sg_tts_flite_free(sg_tts_flite *f);

/* Parses a speaking rate ("1", "1.5"): SG_EINVAL unless a number in SG_TTS_RATE_MIN..MAX. */
sg_status sg_tts_rate_parse(const char *s, double *out, sg_error *err);

#endif
