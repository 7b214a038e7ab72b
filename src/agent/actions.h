/* Actions for the phone: parsed from a response (and the query) and resolved against the skills
 * registry (data/skills.json). Three sources, in this order, deduplicated by skill id:
 *   "json_block"       fenced ```json blocks holding an action object or an array of them,
 *   "skill_mention"    literal skill_NNN ids that exist in the registry,
 *   "capability_hint"  capability words of a skill (e.g. "navigate", "translate", "remind").
 * Each action is {"type":"skill_invocation","skill_id":"skill_001","payload":{…},"source":"…"};
 * json_block actions may carry other types and their payload as given (deduplicated by type when
 * they name no skill). Mention and capability payloads are {} and {"capability_hint":"…"}.
 * Matching is on whole words, case-insensitive for capabilities and exact for ids; text inside
 * fences (and after an unterminated fence) is not scanned for mentions or capability words. */
#ifndef SG_AGENT_ACTIONS_H
#define SG_AGENT_ACTIONS_H

#include <jansson.h>
#include <stdbool.h>

#include "base/error.h"

typedef struct sg_skills sg_skills;

sg_skills *sg_skills_load(const char *path, sg_error *err);
/* The registry committed in the repo: the file named by env SG_SKILLS_PATH when set (and only
 * that one), else SG_SOURCE_DIR "/data/skills.json", else /usr/share/smartglass-edge/skills.json.
 * NULL with err set when it cannot be found or parsed. */
sg_skills *sg_skills_load_default(sg_error *err);
void sg_skills_free(sg_skills *s);
size_t sg_skills_count(const sg_skills *s);
/* The registry as JSON (borrowed reference). */
const json_t *sg_skills_json(const sg_skills *s);

/* True when id names a skill of the registry. */
bool sg_skills_has(const sg_skills *s, const char *id);

/* At most this many actions come out of one parse; the rest of the text is not scanned. */
#define SG_ACTIONS_MAX 8

/* Returns a new JSON array of actions found in text (never NULL unless out of memory). A NULL
 * registry or text gives an empty array. Work is linear in the length of text. */
json_t *sg_actions_parse(const sg_skills *s, const char *text);

#endif
