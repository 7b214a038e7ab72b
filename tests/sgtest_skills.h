/* The skills registry the agent tests share: data/skills.json (tests run from the project root),
 * else the built-in default; a failure to load either is a failed check. */
#ifndef SG_TESTS_SKILLS_H
#define SG_TESTS_SKILLS_H

#include "agent/actions.h"
#include "check.h"

static sg_skills *sgt_skills_load(void)
{
    sg_error err = {0};
    sg_skills *reg = sg_skills_load("data/skills.json", &err);
    if (!reg)
        reg = sg_skills_load_default(&err);
    CHECK_MSG(reg != NULL, "load data/skills.json: %s (run from the project root)", err.msg);
    return reg;
}

#endif
