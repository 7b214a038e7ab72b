/* Silero VAD (models/silero_vad.h) as the turn's VAD backend: speech segments of 16 kHz mono audio
 * with fixed segment parameters (silero's defaults unless given). */
#ifndef SG_AGENT_VAD_SILERO_H
#define SG_AGENT_VAD_SILERO_H

#include "agent/backends.h"
#include "models/silero_vad.h"

typedef struct sg_vad_silero sg_vad_silero;

/* Takes ownership of model (also on failure). params NULL = sg_vad_params_default(). The backend
 * is named "silero-vad-v6.2". */
sg_vad_silero *sg_vad_silero_new(sg_silero *model, const sg_vad_params *params, sg_error *err);
/* Loads the model file and wraps it (the common case). */
sg_vad_silero *sg_vad_silero_open(const char *path, const sg_vad_params *params, sg_error *err);
sg_vad_backend *sg_vad_silero_backend(sg_vad_silero *v);
sg_silero *sg_vad_silero_model(sg_vad_silero *v);
void sg_vad_silero_free(sg_vad_silero *v);

#endif
