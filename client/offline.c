/* Offline answers (sgclient.h, sg_offline_answer): the rule-based responder the server falls back
 * on (src/agent/responder.c, compiled into the library) or the on-device SNN student, over the
 * scene the server last described. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/responder.h"
#include "sgclient.h"
#include "status.h"

const char *sg_offline_source_name(sg_offline_source s)
{
    return s == SG_OFFLINE_LOCAL_LLM ? "local-llm" : "rules";
}

sg_client_status sg_offline_answer(sg_local_llm *llm, const char *scene, const char *question,
                                   int max_tokens, sg_local_llm_token_fn on_token, void *ud,
                                   char **text, sg_offline_source *source,
                                   char err[SG_CLIENT_ERROR_SIZE])
{
    if (text)
        *text = NULL;
    if (source)
        *source = SG_OFFLINE_RULES;
    if (!question || !text)
        return sg_client_fail(err, SG_CLIENT_EINVAL, "sg_offline_answer: no question or no text");
    bool have_scene = scene && *scene;
    sg_intent intent = sg_intent_detect(question);
    bool rules_know_better = intent == SG_INTENT_TIME || intent == SG_INTENT_HELP ||
                             intent == SG_INTENT_REMIND || intent == SG_INTENT_NAVIGATE;
    if (llm && !rules_know_better) {
        char *system = NULL;
        if (asprintf(&system,
                     "You are the assistant of smart glasses, answering on the phone without a "
                     "network. The last scene in view: %s",
                     have_scene ? scene : "unknown") < 0)
            return sg_client_fail(err, SG_CLIENT_ENOMEM, "out of memory");
        if (source)
            *source = SG_OFFLINE_LOCAL_LLM;
        sg_client_status st =
            sg_local_llm_generate(llm, system, question, max_tokens, on_token, ud, text, err);
        free(system);
        return st;
    }
    sg_responder_input in = {
        .query = question,
        .visual_context = have_scene ? scene : "No visual input",
        .scene = NULL,
        .now = time(NULL),
        .ocr_available = false,
        .ocr_text = NULL,
    };
    *text = sg_responder_answer(&in, NULL);
    if (!*text)
        return sg_client_fail(err, SG_CLIENT_ENOMEM, "out of memory");
    if (on_token)
        on_token(ud, *text, strlen(*text));
    return SG_CLIENT_OK;
}
