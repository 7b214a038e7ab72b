/* Actions for the phone: parsed from a response (and the query) and resolved against the skills
 * registry (data/skills.json). Three sources, in this order, deduplicated by skill id:
 *   "json_block"       fenced ```json blocks holding an action object or an array of them,
 *   "skill_mention"    literal skill_NNN ids that exist in the registry,
 *   "capability_hint"  capability words of a skill (e.g. "navigate", "translate", "remind").
 * Each action is {"type":"skill_invocation","skill_id":"skill_001","payload":{…},"source":"…"};
 * json_block actions may carry other types and their payload as given. */
#ifndef SG_AGENT_ACTIONS_H
#define SG_AGENT_ACTIONS_H

#include <jansson.h>

#include "base/error.h"

typedef struct sg_skills sg_skills;

sg_skills *sg_skills_load(const char *path, sg_error *err);
/* The registry committed in the repo, looked up next to the binary's source tree or installed
 * data dir; NULL with err set when it cannot be found or parsed. */
sg_skills *sg_skills_load_default(sg_error *err);
void sg_skills_free(sg_skills *s);
size_t sg_skills_count(const sg_skills *s);
/* The registry as JSON (borrowed reference). */
const json_t *sg_skills_json(const sg_skills *s);

/* Returns a new JSON array of actions found in text (never NULL unless out of memory). */
json_t *sg_actions_parse(const sg_skills *s, const char *text);

#endif
