/* The CLIP vision backend: a keyframe's image embedding, zero-shot scene labels (the reference
 * agent's ten raw label strings) and object categories ("a photo of a {x}", p >= 0.15, top 5),
 * with label text embeddings computed once at load. Its visual_context is the reference's:
 * "Scene appears to be: {best} (confidence: {p:.2%})\nAlternatively: {second} ({p2:.2%})". */
#ifndef SG_AGENT_VISION_CLIP_H
#define SG_AGENT_VISION_CLIP_H

#include "agent/backends.h"
#include "models/clip.h"

typedef struct sg_clip_vision sg_clip_vision;

/* Takes ownership of model. name is reported in metadata (e.g. "clip-vit-base-patch32 int8"). */
sg_clip_vision *sg_clip_vision_new(sg_clip *model, const char *name, sg_error *err);
sg_vision_backend *sg_clip_vision_backend(sg_clip_vision *v);
sg_clip *sg_clip_vision_model(sg_clip_vision *v);
void sg_clip_vision_free(sg_clip_vision *v);

extern const char *const sg_clip_scene_labels[];   /* NULL-terminated */
extern const char *const sg_clip_object_labels[];  /* NULL-terminated */

#endif
