/* Debug only: simulated model cost. SG_DEBUG_MODEL_DELAY_MS="vision=300,asr=400,asr_fallback=120,
 * llm=600" wraps the loaded backends in ones that sleep that long before each call (the LLM's per
 * SG_DEFAULT_MAX_TOKENS tokens, scaled by the call's max_tokens, as generation is linear in them).
 * Unlike SG_DEBUG_WORK_DELAY_MS (a sleep per job, which no step saves) the cost sits in the stage
 * where a real model spends it, so the degradation ladder saves it as it would a real model's:
 * load figures made with the tiny test models (loadtest/degrade.sh) use it where no real-size
 * weights are at hand, and say so. Never for production. */
#ifndef SG_AGENT_SLOW_H
#define SG_AGENT_SLOW_H

#include "agent/backends.h"
#include "base/error.h"

typedef struct sg_model_delays {
    int vision, asr, asr_fallback, llm; /* ms, 0 = none */
} sg_model_delays;

/* "name=ms" pairs separated by commas (names vision, asr, asr_fallback, llm; ms 0..60000);
 * anything else is SG_EINVAL with a message naming the bad part. */
sg_status sg_model_delays_parse(const char *s, sg_model_delays *out, sg_error *err);

typedef struct sg_slow_backends sg_slow_backends;

/* Replaces b's vision, asr, asr_fallback and llm (those loaded, with a delay) by sleeping
 * wrappers; NULL on out of memory (b unchanged). sg_slow_free after the last use of b. */
sg_slow_backends *sg_slow_wrap(sg_backends *b, const sg_model_delays *d);
void sg_slow_free(sg_slow_backends *s);

#endif
