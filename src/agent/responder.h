/* The rule-based responder: the language backend used while no LLM is configured. It answers from
 * keyword intents (navigate, identify/what is this, read/translate, remind/note, time/date, help)
 * using the visual context - a useful answer that says what it can and cannot know, never an echo
 * of the prompt. */
#ifndef SG_AGENT_RESPONDER_H
#define SG_AGENT_RESPONDER_H

#include <stdbool.h>
#include <time.h>

#include "agent/describe.h"

typedef enum sg_intent {
    SG_INTENT_NONE = 0,
    SG_INTENT_NAVIGATE,
    SG_INTENT_IDENTIFY,
    SG_INTENT_READ,
    SG_INTENT_TRANSLATE,
    SG_INTENT_REMIND,
    SG_INTENT_TIME,
    SG_INTENT_HELP,
    SG_INTENT_GREETING
} sg_intent;

typedef struct sg_responder_input {
    const char *query;          /* user's words (may be NULL or empty when only an image came) */
    const char *visual_context; /* "No visual input" or the vision stage's text */
    const sg_scene *scene;      /* pixel statistics when the fallback vision ran, else NULL */
    time_t now;                 /* for time/date answers */
    bool ocr_available;         /* an OCR backend is loaded */
    const char *ocr_text;       /* what it read in the frame in view ("" = no text), NULL when it
                                   did not read that frame */
} sg_responder_input;

sg_intent sg_intent_detect(const char *query);
const char *sg_intent_name(sg_intent intent);
/* Returns a malloc'ed answer. Mentions capability words (e.g. "navigation", "reminder") where the
 * phone can act, so the action parser picks the matching skill. */
char *sg_responder_answer(const sg_responder_input *in, sg_intent *intent_out);

#endif
