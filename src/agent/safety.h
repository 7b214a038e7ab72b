/* Keyword moderation with the reference runtime's categories: violence, medical advice,
 * dangerous activity (e.g. "while driving") and privacy violation. Applied to the user's query and
 * to the generated response; a block replaces the response with a fallback sentence. */
#ifndef SG_AGENT_SAFETY_H
#define SG_AGENT_SAFETY_H

#include <stdbool.h>

typedef struct sg_safety_result {
    bool blocked;
    const char *category; /* "violence", "medical_advice", "dangerous_activity", "privacy_violation"; NULL when not blocked */
    char reason[160];     /* human readable, e.g. "dangerous_activity: matched \"while driving\"" */
} sg_safety_result;

/* Case-insensitive, whole-word/phrase matching (so "skill" never matches "kill"). */
void sg_safety_check(const char *text, sg_safety_result *out);
/* The sentence returned instead of a blocked response. */
const char *sg_safety_fallback(void);

#endif
