/* The SNN student (models/snn.h) as the turn's language backend: generate(system, prompt, params)
 * is the reference's "{system}\n\n{prompt}", exactly max_tokens tokens (or up to end-of-text when
 * asked), decoded to text; greedy at temperature 0, else sampled with top_p and the seed
 * (models/snn.h: sg_snn_generate_ex); usage counts the prompt's and the reply's tokens. */
#ifndef SG_AGENT_LLM_SNN_H
#define SG_AGENT_LLM_SNN_H

#include <stdbool.h>

#include "agent/backends.h"
#include "models/snn.h"

typedef struct sg_llm_snn sg_llm_snn;

/* Takes ownership of model (also on failure). name is reported in metadata.models.llm (e.g.
 * "snn_student f32"). stop_at_eos: end a reply at the tokenizer's <|endoftext|>. */
sg_llm_snn *sg_llm_snn_new(sg_snn *model, const char *name, bool stop_at_eos, sg_error *err);
sg_llm_backend *sg_llm_snn_backend(sg_llm_snn *b);
sg_snn *sg_llm_snn_model(sg_llm_snn *b);
void sg_llm_snn_free(sg_llm_snn *b);

#endif
