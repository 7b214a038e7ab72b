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

/* Case-insensitive, whole-word/phrase matching (so "skill" never matches "kill"); the first match
 * in the text decides the category. Harmless phrases that contain a keyword ("photo shoot",
 * "killer whale", "prescription glasses") are exempt, and bare words with common harmless uses are
 * not keywords ("attack someone" is, "attack" is not, so "heart attack" passes). NULL or empty
 * text is not blocked. */
void sg_safety_check(const char *text, sg_safety_result *out);
/* The sentence returned instead of a blocked response: the reference runtime's wording. */
const char *sg_safety_fallback(void);
/* A fallback worded for the category (e.g. medical advice points to a doctor and emergency
 * number); sg_safety_fallback() for NULL or an unknown category. Never itself blocked. */
const char *sg_safety_fallback_for(const char *category);
/* The human readable reason of a blocked result ("category: matched \"phrase\"", ASCII only, so
 * it can go into JSON or a log as is); NULL when r is NULL or not blocked. */
const char *sg_safety_reason(const sg_safety_result *r);

#endif
