/* Tests for the skills registry and the action parser (src/agent/actions.c): registry validation
 * errors, the three action sources and their order, deduplication, hostile input, and bounded
 * work on a megabyte of text. Run from the project root. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/actions.h"
#include "check.h"
#include "sgtest_skills.h"

static sg_skills *reg;

static json_t *parse(const char *text)
{
    json_t *a = sg_actions_parse(reg, text);
    CHECK(a != NULL && json_is_array(a));
    return a;
}

static const char *field(json_t *arr, size_t i, const char *key)
{
    json_t *v = json_object_get(json_array_get(arr, i), key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static bool str_is(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

/* The skill ids of a parse, comma separated, e.g. "skill_001,skill_005". */
static const char *ids_of(const char *text)
{
    static char buf[256];
    json_t *a = parse(text);
    buf[0] = '\0';
    for (size_t i = 0; a && i < json_array_size(a); i++) {
        const char *id = field(a, i, "skill_id");
        if (i)
            strcat(buf, ",");
        strncat(buf, id ? id : "-", sizeof buf - strlen(buf) - 2);
    }
    json_decref(a);
    return buf;
}

#define CHECK_IDS(text, want)                                                                  \
    do {                                                                                       \
        const char *got_ = ids_of(text);                                                       \
        CHECK_MSG(strcmp(got_, want) == 0, "text \"%.60s\": got [%s], want [%s]", text, got_, \
                  want);                                                                       \
    } while (0)

static char *write_temp(const char *content)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/sg_skills_test_XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0)
        return NULL;
    size_t n = strlen(content);
    if (write(fd, content, n) != (ssize_t)n) {
        close(fd);
        return NULL;
    }
    close(fd);
    return path;
}

/* Loads content as a registry; returns the error code (SG_OK when it loaded). */
static sg_status load_text(const char *content, sg_error *err)
{
    char *path = write_temp(content);
    CHECK(path != NULL);
    if (!path)
        return SG_EIO;
    memset(err, 0, sizeof *err);
    sg_skills *s = sg_skills_load(path, err);
    unlink(path);
    sg_status st = s ? SG_OK : err->code;
    sg_skills_free(s);
    return st;
}

static void test_registry(void)
{
    sg_error err = {0};
    CHECK_EQ_INT(sg_skills_count(reg), 14);
    CHECK(sg_skills_has(reg, "skill_001"));
    CHECK(sg_skills_has(reg, "skill_014"));
    CHECK(!sg_skills_has(reg, "skill_015"));
    CHECK(!sg_skills_has(reg, NULL));
    CHECK(!sg_skills_has(NULL, "skill_001"));
    const json_t *root = sg_skills_json(reg);
    CHECK(json_is_array(json_object_get(root, "skills")));
    CHECK_EQ_INT(sg_skills_count(NULL), 0);
    CHECK(sg_skills_json(NULL) == NULL);
    sg_skills_free(NULL);

    /* Every skill has a name, a category and a description. */
    size_t i;
    json_t *sk;
    json_array_foreach(json_object_get(root, "skills"), i, sk) {
        CHECK(json_string_length(json_object_get(sk, "name")) > 0);
        CHECK(json_string_length(json_object_get(sk, "category")) > 0);
        CHECK(json_string_length(json_object_get(sk, "description")) > 0);
    }

    /* The default loader finds the same file, and honours SG_SKILLS_PATH exclusively. */
    sg_skills *d = sg_skills_load_default(&err);
    CHECK_MSG(d != NULL, "%s", err.msg);
    CHECK_EQ_INT(sg_skills_count(d), 14);
    sg_skills_free(d);
    char *path = write_temp("{\"skills\":[{\"id\":\"skill_001\",\"name\":\"Only\","
                            "\"capabilities\":[\"navigate\"]}]}");
    CHECK(path != NULL);
    setenv("SG_SKILLS_PATH", path, 1);
    d = sg_skills_load_default(&err);
    CHECK(d != NULL && sg_skills_count(d) == 1);
    sg_skills_free(d);
    unlink(path);
    setenv("SG_SKILLS_PATH", "/nonexistent/skills.json", 1);
    d = sg_skills_load_default(&err);
    CHECK(d == NULL && err.code == SG_EIO && strstr(err.msg, "/nonexistent/skills.json"));
    unsetenv("SG_SKILLS_PATH");

    /* Clear errors for each kind of bad registry. */
    CHECK(sg_skills_load("/nonexistent/dir/skills.json", &err) == NULL);
    CHECK(err.code == SG_EIO && strstr(err.msg, "No such file"));
    CHECK(sg_skills_load(NULL, &err) == NULL && err.code == SG_EINVAL);
    CHECK(sg_skills_load("/nonexistent", NULL) == NULL); /* err may be NULL */

    CHECK_EQ_INT(load_text("{\"skills\": [", &err), SG_EINVAL);
    CHECK_MSG(strstr(err.msg, "invalid JSON at line 1"), "%s", err.msg);
    CHECK_EQ_INT(load_text("", &err), SG_EINVAL);
    CHECK_EQ_INT(load_text("[1,2]", &err), SG_EINVAL);
    CHECK(strstr(err.msg, "top level"));
    CHECK_EQ_INT(load_text("{\"skills\": {}}", &err), SG_EINVAL);
    CHECK(strstr(err.msg, "\"skills\" must be an array"));
    CHECK_EQ_INT(load_text("{\"version\": 2, \"skills\": []}", &err), SG_EINVAL);
    CHECK(strstr(err.msg, "version"));
    CHECK_EQ_INT(load_text("{\"skills\": [3]}", &err), SG_EINVAL);
    CHECK(strstr(err.msg, "skills[0] is not an object"));
    CHECK_EQ_INT(load_text("{\"skills\": [{\"name\":\"x\",\"capabilities\":[]}]}", &err),
                 SG_EINVAL);
    CHECK(strstr(err.msg, "no string \"id\""));
    CHECK_EQ_INT(load_text("{\"skills\": [{\"id\":\"Skill 1\",\"name\":\"x\",\"capabilities\":[]}]}",
                           &err),
                 SG_EINVAL);
    CHECK(strstr(err.msg, "bad id"));
    CHECK_EQ_INT(load_text("{\"skills\": [{\"id\":\"skill_001\",\"name\":\"a\",\"capabilities\":[]},"
                           "{\"id\":\"skill_001\",\"name\":\"b\",\"capabilities\":[]}]}",
                           &err),
                 SG_EINVAL);
    CHECK(strstr(err.msg, "duplicate id \"skill_001\""));
    CHECK_EQ_INT(load_text("{\"skills\": [{\"id\":\"skill_001\",\"capabilities\":[]}]}", &err),
                 SG_EINVAL);
    CHECK(strstr(err.msg, "\"name\""));
    CHECK_EQ_INT(load_text("{\"skills\": [{\"id\":\"skill_001\",\"name\":\"a\"}]}", &err), SG_EINVAL);
    CHECK(strstr(err.msg, "capabilities"));
    CHECK_EQ_INT(load_text("{\"skills\": [{\"id\":\"skill_001\",\"name\":\"a\","
                           "\"capabilities\":[\" navigate\"]}]}",
                           &err),
                 SG_EINVAL);
    CHECK_EQ_INT(load_text("{\"skills\": [{\"id\":\"skill_001\",\"name\":\"a\","
                           "\"capabilities\":[\"go*\"]}]}",
                           &err),
                 SG_EINVAL);
    CHECK_EQ_INT(load_text("{\"skills\": [{\"id\":\"skill_001\",\"name\":\"a\",\"capabilities\":[\"x\"]},"
                           "{\"id\":\"skill_002\",\"name\":\"b\",\"capabilities\":[\"X\"]}]}",
                           &err),
                 SG_EINVAL);
    CHECK(strstr(err.msg, "listed by both skill_001 and skill_002"));
    CHECK_EQ_INT(load_text("{\"skills\": [{\"id\":\"skill_001\",\"name\":\"a\","
                           "\"category\":7,\"capabilities\":[]}]}",
                           &err),
                 SG_EINVAL);
    CHECK_EQ_INT(load_text("{\"skills\": [], \"skills\": []}", &err), SG_EINVAL);
    CHECK_EQ_INT(load_text("{\"version\":1,\"skills\": []}", &err), SG_OK);
}

static void test_empty(void)
{
    json_t *a = sg_actions_parse(reg, NULL);
    CHECK(json_is_array(a) && json_array_size(a) == 0);
    json_decref(a);
    a = sg_actions_parse(NULL, "navigate to skill_001");
    CHECK(json_is_array(a) && json_array_size(a) == 0);
    json_decref(a);
    CHECK_IDS("", "");
    CHECK_IDS("It's a sunny day and the street looks busy.", "");
    CHECK_IDS("```", "");
    CHECK_IDS("``````", "");
}

static void test_json_blocks(void)
{
    json_t *a = parse("Sure.\n```json\n{\"skill_id\": \"skill_001\", \"payload\": "
                      "{\"destination\": \"Central Station\"}}\n```\nHave a nice trip.");
    CHECK_EQ_INT(json_array_size(a), 1);
    CHECK(str_is(field(a, 0, "type"), "skill_invocation"));
    CHECK(str_is(field(a, 0, "skill_id"), "skill_001"));
    CHECK(str_is(field(a, 0, "source"), "json_block"));
    json_t *p = json_object_get(json_array_get(a, 0), "payload");
    CHECK(str_is(json_string_value(json_object_get(p, "destination")), "Central Station"));
    json_decref(a);

    /* An array, in order; the tag is case-insensitive and optional. */
    CHECK_IDS("```JSON\n[{\"skill_id\":\"skill_005\"},{\"skill_id\":\"skill_006\"}]\n```",
              "skill_005,skill_006");
    CHECK_IDS("```\n{\"skill_id\":\"skill_012\"}\n```", "skill_012");
    CHECK_IDS("```json{\"skill_id\":\"skill_012\"}```", "skill_012");
    /* Another language's block is not an action. */
    CHECK_IDS("```python\n{\"skill_id\":\"skill_012\"}\n```", "");
    /* Not JSON, or not an object/array: ignored, the rest still parsed. */
    CHECK_IDS("```json\n{\"skill_id\": \"skill_001\",}\n```\nskill_002", "skill_002");
    CHECK_IDS("```json\n\"skill_001\"\n```", "");
    /* Fenced text is code or data, never prose: no mentions or capability words from it. */
    CHECK_IDS("```python\nnavigate(skill_001)\n``` and then translate", "skill_005");
    CHECK_IDS("Run `skill_001` then ```json\n{\"skill_id\":\"skill_999\"}\n```", "skill_001");
    CHECK_IDS("```json\n42\n```", "");
    CHECK_IDS("```json\n[1, \"x\", null, [], {\"skill_id\":\"skill_003\"}]\n```", "skill_003");
    /* Unterminated fence: the block is ignored, mentions before it still count. */
    CHECK_IDS("skill_002 ```json\n{\"skill_id\":\"skill_009\", \"payload\": {}}", "skill_002");
    CHECK_IDS("```json\n{\"skill_id\":\"skill_009\"", "");
    /* Unknown skills, non-string ids and objects without skill_id or type are dropped. */
    CHECK_IDS("```json\n{\"skill_id\":\"skill_999\",\"payload\":{}}\n```", "");
    CHECK_IDS("```json\n{\"skill_id\":1}\n```", "");
    CHECK_IDS("```json\n{\"payload\":{\"x\":1}}\n```", "");
    CHECK_IDS("```json\n{\"type\":\"skill_invocation\"}\n```", "");
    CHECK_IDS("```json\n{\"skill_id\":\"skill_001\",\"payload\":\"go\"}\n```", "");
    CHECK_IDS("```json\n{\"type\":\"bad type!\",\"skill_id\":\"skill_001\"}\n```", "");
    /* Several blocks; the first of a skill wins. */
    a = parse("```json\n{\"skill_id\":\"skill_001\",\"payload\":{\"n\":1}}\n```\n"
              "then\n```json\n{\"skill_id\":\"skill_001\",\"payload\":{\"n\":2}}\n```\n"
              "```json\n{\"skill\":\"skill_004\",\"action\":\"skill_invocation\"}\n```");
    CHECK_EQ_INT(json_array_size(a), 2);
    p = json_object_get(json_array_get(a, 0), "payload");
    CHECK_EQ_INT(json_integer_value(json_object_get(p, "n")), 1);
    CHECK(str_is(field(a, 1, "skill_id"), "skill_004"));
    json_decref(a);
    /* Without "payload" the other keys are the payload; other types pass with their payload. */
    a = parse("```json\n{\"skill_id\":\"skill_001\",\"destination\":\"Home\",\"source\":\"x\"}\n```"
              "```json\n{\"type\":\"show_card\",\"payload\":{\"title\":\"Hi\"}}\n```");
    CHECK_EQ_INT(json_array_size(a), 2);
    p = json_object_get(json_array_get(a, 0), "payload");
    CHECK(str_is(json_string_value(json_object_get(p, "destination")), "Home"));
    CHECK(json_object_get(p, "skill_id") == NULL && json_object_get(p, "source") == NULL);
    CHECK(str_is(field(a, 0, "source"), "json_block"));
    CHECK(str_is(field(a, 1, "type"), "show_card"));
    CHECK(field(a, 1, "skill_id") == NULL);
    json_decref(a);
}

static void test_mentions(void)
{
    json_t *a = parse("I'll use skill_004 for that.");
    CHECK_EQ_INT(json_array_size(a), 1);
    CHECK(str_is(field(a, 0, "source"), "skill_mention"));
    CHECK(json_object_size(json_object_get(json_array_get(a, 0), "payload")) == 0);
    json_decref(a);
    CHECK_IDS("(skill_003).", "skill_003");
    CHECK_IDS("skill_999", "");
    CHECK_IDS("skill_0012", "");
    CHECK_IDS("skill_01", "");
    CHECK_IDS("myskill_001", "");
    CHECK_IDS("skill_001x", "");
    CHECK_IDS("skill_001_beta", "");
    CHECK_IDS("SKILL_003", ""); /* ids are case-sensitive, as in the reference */
    CHECK_IDS("skill_010, skill_002 and skill_010 again", "skill_010,skill_002");
    CHECK_IDS("\xE2\x80\x9Cskill_003\xE2\x80\x9D", "skill_003"); /* curly quotes separate words */
}

static void test_capabilities(void)
{
    json_t *a = parse("Starting navigation now.");
    CHECK_EQ_INT(json_array_size(a), 1);
    CHECK(str_is(field(a, 0, "skill_id"), "skill_001"));
    CHECK(str_is(field(a, 0, "source"), "capability_hint"));
    json_t *p = json_object_get(json_array_get(a, 0), "payload");
    CHECK(str_is(json_string_value(json_object_get(p, "capability_hint")), "navigation"));
    json_decref(a);

    CHECK_IDS("NAVIGATING to the park", "skill_001");
    CHECK_IDS("Here are the directions.", "skill_001");
    CHECK_IDS("I'll translate it", "skill_005");
    CHECK_IDS("Translated: hello", "skill_005");
    CHECK_IDS("Remind   me\nat five", "skill_006");
    CHECK_IDS("I'll set a reminder.", "skill_006");
    CHECK_IDS("Take a photo!", "skill_012");
    CHECK_IDS("Use OCR on it", "skill_004");
    CHECK_IDS("read_signage", "skill_004");
    CHECK_IDS("Play music please", "skill_011");
    CHECK_IDS("How's the weather?", "skill_013");
    /* Specific words only: generic or partial words never fire. */
    CHECK_IDS("What time is it? I can see a television.", "");
    CHECK_IDS("You need a reminder? Remindme.", "");
    CHECK_IDS("navigate2 renavigate navigational", "");
    CHECK_IDS("I remember the photo you took.", "");
    CHECK_IDS("the vision model is not loaded; speech was clear", "");
    /* Text order within capability hints, one action per skill. */
    CHECK_IDS("I'll translate it, then navigate there, then translate again", "skill_005,skill_001");
}

static void test_order_and_cap(void)
{
    /* json_block first, then mentions, then capability words, deduplicated by skill id. */
    json_t *a = parse("Navigation and translation: skill_001.\n```json\n{\"skill_id\":\"skill_005\"}\n```");
    CHECK_EQ_INT(json_array_size(a), 2);
    CHECK(str_is(field(a, 0, "skill_id"), "skill_005") && str_is(field(a, 0, "source"), "json_block"));
    CHECK(str_is(field(a, 1, "skill_id"), "skill_001") &&
          str_is(field(a, 1, "source"), "skill_mention"));
    json_decref(a);

    char all[512] = "";
    for (int i = 1; i <= 14; i++) {
        char id[24];
        snprintf(id, sizeof id, "skill_%03d ", i);
        strcat(all, id);
    }
    a = parse(all);
    CHECK_EQ_INT(json_array_size(a), SG_ACTIONS_MAX);
    CHECK(str_is(field(a, 7, "skill_id"), "skill_008"));
    json_decref(a);
}

/* A megabyte of pattern repeated; parse must end quickly (a generous bound on its CPU time, ASan
 * included: a quadratic parse would take minutes). */
static void check_big(const char *pattern, const char *tail)
{
    size_t n = 1u << 20, pl = strlen(pattern), tl = tail ? strlen(tail) : 0;
    char *buf = malloc(n + tl + 1);
    CHECK(buf != NULL);
    if (!buf)
        return;
    for (size_t i = 0; i < n; i++)
        buf[i] = pattern[i % pl];
    memcpy(buf + n, tail ? tail : "", tl + 1);
    const double t0 = check_thread_cpu_s();
    json_t *a = sg_actions_parse(reg, buf);
    const double dt = check_thread_cpu_s() - t0;
    CHECK(a != NULL);
    CHECK_MSG(dt < 3.0, "pattern \"%s\": %.2f s of CPU", pattern, dt);
    json_decref(a);
    free(buf);
}

static void test_big_inputs(void)
{
    check_big("the quick brown fox takes a walk ", " navigate");
    check_big("`", NULL);
    check_big("``` ", NULL);
    check_big("```json\n{\"a\":[", NULL);
    check_big("skill_", NULL);
    check_big("skill_00", NULL);
    check_big("take me ", NULL);
    check_big("remind\t", NULL);
    check_big("\xE2\x80\x99", NULL);
    check_big("\xff\xfe", NULL);
    /* A long fenced array of unknown skills, then one real one. */
    size_t n = 1u << 20;
    char *buf = malloc(n + 64);
    CHECK(buf != NULL);
    if (buf) {
        size_t o = (size_t)sprintf(buf, "```json\n[");
        const char *item = "{\"skill_id\":\"skill_999\"},";
        while (o + strlen(item) < n)
            o += (size_t)sprintf(buf + o, "%s", item);
        sprintf(buf + o, "{\"skill_id\":\"skill_002\"}]\n```");
        CHECK_IDS(buf, "skill_002");
        free(buf);
    }
}

int main(void)
{
    reg = sgt_skills_load();
    if (!reg)
        return check_report("test_actions");
    test_registry();
    test_empty();
    test_json_blocks();
    test_mentions();
    test_capabilities();
    test_order_and_cap();
    test_big_inputs();
    sg_skills_free(reg);
    return check_report("test_actions");
}
