/* libFuzzer target for the text the agent layer takes from models and users: the action parser,
 * moderation, intent detection and the rule-based answer (which quotes a destination from the
 * query). Every answer must be non-empty valid UTF-8 - it goes into a JSON response - and every
 * action list an array. The registry is loaded once from the source tree (or SG_SKILLS_PATH). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/actions.h"
#include "agent/responder.h"
#include "agent/safety.h"

static sg_skills *registry;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    sg_error err = {0};
    registry = sg_skills_load_default(&err);
    if (!registry) {
        fprintf(stderr, "fuzz_actions: %s\n", err.msg);
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    json_t *actions = sg_actions_parse(registry, text);
    if (!json_is_array(actions) || json_array_size(actions) > SG_ACTIONS_MAX)
        abort();
    json_decref(actions);

    sg_safety_result r;
    sg_safety_check(text, &r);
    if (r.blocked != (r.category != NULL) || strlen(r.reason) >= sizeof r.reason)
        abort();

    sg_intent intent = sg_intent_detect(text);

    /* The same bytes as the query and as the vision stage's text, with and without a scene. */
    sg_scene scene;
    memset(&scene, 0, sizeof scene);
    scene.brightness_label = "dim";
    scene.sharpness_label = "soft";
    strcpy(scene.colors[0].name, "green");
    scene.ncolors = 1;
    scene.text_like = size & 1;
    for (int k = 0; k < 2; k++) {
        sg_responder_input in = {.query = text, .visual_context = text,
                                 .scene = k ? &scene : NULL, .now = (time_t)size * 977};
        sg_intent got;
        char *answer = sg_responder_answer(&in, &got);
        if (!answer || !*answer)
            abort();
        if (got != intent && !(intent == SG_INTENT_NONE && got == SG_INTENT_IDENTIFY))
            abort();
        json_t *s = json_string(answer); /* NULL when not valid UTF-8 */
        if (!s)
            abort();
        json_decref(s);
        free(answer);
    }
    free(text);
    return 0;
}
