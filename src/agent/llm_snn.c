/* The SNN student behind sg_llm_backend. The model serialises its own calls, so the backend is
 * only the adapter: generate, keep the text, drop the ids. */
#include "agent/llm_snn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sg_llm_snn {
    sg_llm_backend backend;
    sg_snn *model;
    bool stop_at_eos;
    char name[128];
};

static sg_status snn_generate(void *self, const char *system, const char *prompt,
                              const sg_llm_params *p, sg_text_fn on_text, void *ud, char **text,
                              sg_llm_usage *usage, sg_error *err)
{
    sg_llm_snn *b = self;
    *text = NULL;
    /* temperature 0: the greedy path, exactly the reference's tokens */
    const sg_snn_sampling smp = {(float)p->temperature, (float)p->top_p, p->seed};
    sg_snn_result r;
    sg_status st = sg_snn_generate_ex(b->model, system, prompt, p->max_tokens, b->stop_at_eos,
                                      p->temperature > 0 ? &smp : NULL, on_text, ud, &r, err);
    if (st != SG_OK)
        return st;
    if (usage) {
        usage->prompt_tokens = r.n_prompt;
        usage->completion_tokens = r.n_tokens;
        usage->hit_max_tokens = r.n_tokens >= p->max_tokens;
    }
    *text = r.text; /* handed over */
    r.text = NULL;
    sg_snn_result_free(&r);
    return SG_OK;
}

sg_llm_snn *sg_llm_snn_new(sg_snn *model, const char *name, bool stop_at_eos, sg_error *err)
{
    if (!model) {
        sg_error_set(err, SG_EINVAL, "no model");
        return NULL;
    }
    if (!sg_snn_get_info(model)->has_tokenizer) {
        sg_snn_free(model);
        sg_error_set(err, SG_EINVAL, "the language model has no tokenizer: put vocab.json + merges.txt "
                                     "or a *.tiktoken file in its directory, or name one with "
                                     "--llm-tokenizer / SG_LLM_TOKENIZER");
        return NULL;
    }
    sg_llm_snn *b = calloc(1, sizeof *b);
    if (!b) {
        sg_snn_free(model);
        sg_error_set(err, SG_ENOMEM, "out of memory");
        return NULL;
    }
    b->model = model;
    b->stop_at_eos = stop_at_eos;
    snprintf(b->name, sizeof b->name, "%s", name ? name : "snn");
    b->backend.name = b->name;
    b->backend.generate = snn_generate;
    b->backend.self = b;
    return b;
}

sg_llm_backend *sg_llm_snn_backend(sg_llm_snn *b) { return &b->backend; }

sg_snn *sg_llm_snn_model(sg_llm_snn *b) { return b->model; }

void sg_llm_snn_free(sg_llm_snn *b)
{
    if (!b)
        return;
    sg_snn_free(b->model);
    free(b);
}
