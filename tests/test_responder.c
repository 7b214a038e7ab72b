/* Tests for the rule-based responder (src/agent/responder.c): intent detection over many
 * phrasings, answers that use the clock and the scene honestly, and, checked together with
 * actions.c and safety.c, that answers trigger exactly the intended phone skills, are never
 * blocked, never empty, never echo the query and are always valid UTF-8. Run from the project
 * root. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/actions.h"
#include "agent/responder.h"
#include "agent/safety.h"
#include "check.h"
#include "sgtest_skills.h"

static sg_skills *reg;

static void expect_intent(const char *q, sg_intent want)
{
    sg_intent got = sg_intent_detect(q);
    CHECK_MSG(got == want, "\"%s\": got %s, want %s", q ? q : "(null)", sg_intent_name(got),
              sg_intent_name(want));
}

static void test_intents(void)
{
    static const struct {
        const char *q;
        sg_intent want;
    } cases[] = {
        {"Navigate to the train station", SG_INTENT_NAVIGATE},
        {"take me to the museum", SG_INTENT_NAVIGATE},
        {"How do I get to Main Street?", SG_INTENT_NAVIGATE},
        {"give me directions home", SG_INTENT_NAVIGATE},
        {"find the nearest pharmacy", SG_INTENT_NAVIGATE},
        {"what's the route", SG_INTENT_NAVIGATE},
        {"What is this?", SG_INTENT_IDENTIFY},
        {"what am I looking at", SG_INTENT_IDENTIFY},
        {"WHAT'S THAT", SG_INTENT_IDENTIFY},
        {"what\xE2\x80\x99s in front of me", SG_INTENT_IDENTIFY},
        {"describe the scene", SG_INTENT_IDENTIFY},
        {"can you identify this plant", SG_INTENT_IDENTIFY},
        {"what colour is this car", SG_INTENT_IDENTIFY},
        {"what do you see?", SG_INTENT_IDENTIFY},
        {"Read this sign", SG_INTENT_READ},
        {"what does it say", SG_INTENT_READ},
        {"can you read the menu for me", SG_INTENT_READ},
        {"what is written on the door", SG_INTENT_READ},
        {"translate this", SG_INTENT_TRANSLATE},
        {"read the sign and translate it", SG_INTENT_TRANSLATE},
        {"what does this say in English", SG_INTENT_TRANSLATE},
        {"Remind me to buy milk", SG_INTENT_REMIND},
        {"set a reminder for 5pm", SG_INTENT_REMIND},
        {"don't let me forget my keys", SG_INTENT_REMIND},
        {"take a note: parking level 3", SG_INTENT_REMIND},
        {"remember where I parked", SG_INTENT_REMIND},
        {"What time is it?", SG_INTENT_TIME},
        {"what's the date today", SG_INTENT_TIME},
        {"what day is it", SG_INTENT_TIME},
        {"tell me the time", SG_INTENT_TIME},
        {"help", SG_INTENT_HELP},
        {"What can you do?", SG_INTENT_HELP},
        {"who are you", SG_INTENT_HELP},
        {"Hello!", SG_INTENT_GREETING},
        {"hey there", SG_INTENT_GREETING},
        {"good morning", SG_INTENT_GREETING},
        {"hi, what time is it", SG_INTENT_TIME},
        {"tell me a joke", SG_INTENT_NONE},
        {"what time does the bakery close", SG_INTENT_NONE},
        {"this is a thing", SG_INTENT_NONE},
        {"highway", SG_INTENT_NONE},     /* "hi" only as a word */
        {"thirsty", SG_INTENT_NONE},
        {"bread", SG_INTENT_NONE},       /* "read" only as a word */
        {"", SG_INTENT_NONE},
        {NULL, SG_INTENT_NONE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_intent(cases[i].q, cases[i].want);
    CHECK(strcmp(sg_intent_name(SG_INTENT_NAVIGATE), "navigate") == 0);
    CHECK(strcmp(sg_intent_name(SG_INTENT_NONE), "none") == 0);
    CHECK(strcmp(sg_intent_name(SG_INTENT_GREETING), "greeting") == 0);
}

static sg_scene make_scene(bool text_like)
{
    sg_scene s;
    memset(&s, 0, sizeof s);
    s.width = 640;
    s.height = 480;
    s.brightness = 180;
    s.brightness_label = "bright";
    s.sharpness_label = "sharp";
    strcpy(s.colors[0].name, "gray");
    s.colors[0].fraction = 0.5f;
    strcpy(s.colors[1].name, "blue");
    s.colors[1].fraction = 0.3f;
    strcpy(s.colors[2].name, "white");
    s.colors[2].fraction = 0.1f;
    s.ncolors = 3;
    s.text_like = text_like;
    s.change = -1;
    snprintf(s.summary, sizeof s.summary,
             "Low-level image analysis (no vision model loaded): a bright, sharp image, mostly "
             "gray and blue.");
    return s;
}

static char *answer(const char *q, const char *vc, const sg_scene *scene, time_t now,
                    sg_intent *intent)
{
    sg_responder_input in = {.query = q, .visual_context = vc, .scene = scene, .now = now};
    char *a = sg_responder_answer(&in, intent);
    CHECK(a != NULL && a[0] != '\0');
    return a;
}

/* Skill ids the action parser finds in text, comma separated. */
static const char *ids_of(const char *text)
{
    static char buf[256];
    buf[0] = '\0';
    json_t *arr = sg_actions_parse(reg, text);
    for (size_t i = 0; arr && i < json_array_size(arr); i++) {
        const char *id = json_string_value(json_object_get(json_array_get(arr, i), "skill_id"));
        if (i)
            strcat(buf, ",");
        strncat(buf, id ? id : "-", sizeof buf - strlen(buf) - 2);
    }
    json_decref(arr);
    return buf;
}

static void test_time(void)
{
    struct tm tm = {0};
    tm.tm_year = 2026 - 1900;
    tm.tm_mon = 10; /* November */
    tm.tm_mday = 27;
    tm.tm_hour = 14;
    tm.tm_min = 5;
    tm.tm_isdst = -1;
    time_t t = mktime(&tm);
    sg_intent intent;
    char *a = answer("what time is it?", "No visual input", NULL, t, &intent);
    CHECK_EQ_INT(intent, SG_INTENT_TIME);
    CHECK_MSG(strcmp(a, "It's 14:05 on Friday, 27 November 2026.") == 0, "%s", a);
    free(a);
    a = answer("what's the date", NULL, NULL, t, NULL);
    CHECK(strstr(a, "27 November 2026") != NULL);
    free(a);
}

static void test_identify(void)
{
    sg_scene sc = make_scene(false);
    sg_intent intent;
    char *a = answer("what am I looking at?", sc.summary, &sc, 0, &intent);
    CHECK_EQ_INT(intent, SG_INTENT_IDENTIFY);
    CHECK_MSG(strstr(a, "gray") && strstr(a, "blue") && strstr(a, "white"), "%s", a);
    CHECK_MSG(strstr(a, "bright") && strstr(a, "no vision model"), "%s", a);
    CHECK(strstr(a, "text") == NULL);
    free(a);

    sc = make_scene(true);
    sc.ncolors = 1;
    a = answer("what's this", sc.summary, &sc, 0, NULL);
    CHECK_MSG(strstr(a, "mostly gray") && strstr(a, "may be text") && !strstr(a, "blue"), "%s", a);
    free(a);

    /* With a vision model's label and no pixel stats, the label is the answer. */
    a = answer("what is this", "Scene appears to be: street scene (confidence: 61.20%)", NULL, 0,
               NULL);
    CHECK_MSG(strstr(a, "street scene (confidence: 61.20%)") && !strstr(a, "Scene appears"), "%s",
              a);
    free(a);

    a = answer("what is this", "No visual input", NULL, 0, NULL);
    CHECK_MSG(strstr(a, "don't have a camera frame"), "%s", a);
    free(a);

    /* An image with no words is a request to describe it. */
    a = answer("", sc.summary, &sc, 0, &intent);
    CHECK_EQ_INT(intent, SG_INTENT_IDENTIFY);
    CHECK(strstr(a, "gray") != NULL);
    free(a);
    a = answer(NULL, "No visual input", NULL, 0, &intent);
    CHECK_EQ_INT(intent, SG_INTENT_NONE);
    CHECK(strstr(a, "didn't catch") != NULL);
    free(a);

    /* Bad labels from the describer are left out rather than printed. */
    sc = make_scene(false);
    sc.brightness_label = NULL;
    sc.ncolors = 7;
    memset(sc.colors[1].name, 'x', sizeof sc.colors[1].name); /* no terminator */
    a = answer("describe it", NULL, &sc, 0, NULL);
    CHECK_MSG(strstr(a, "a sharp image, mostly gray and white"), "%s", a);
    free(a);
}

static void test_read_translate(void)
{
    sg_scene sc = make_scene(true);
    char *a = answer("read this", sc.summary, &sc, 0, NULL);
    CHECK_MSG(strstr(a, "text in view") && strstr(a, "OCR"), "%s", a);
    CHECK_MSG(strcmp(ids_of(a), "skill_004") == 0, "%s -> %s", a, ids_of(a));
    free(a);
    sc = make_scene(false);
    a = answer("what does it say", sc.summary, &sc, 0, NULL);
    CHECK_MSG(strstr(a, "can't spot text-like detail") && strstr(a, "bright"), "%s", a);
    CHECK(strcmp(ids_of(a), "skill_004") == 0);
    free(a);
    a = answer("read the sign", "No visual input", NULL, 0, NULL);
    CHECK(strstr(a, "don't have a camera frame") != NULL);
    free(a);
    /* with OCR: what it read, quoted and made speakable; what it did not find, said */
    sg_responder_input in = {.query = "read the sign", .visual_context = sc.summary, .scene = &sc,
                             .ocr_available = true, .ocr_text = "EMERGENCY EXIT\nKEEP CLEAR"};
    sg_intent it;
    a = sg_responder_answer(&in, &it);
    CHECK_MSG(strcmp(a, "The sign says: \"EMERGENCY EXIT, KEEP CLEAR\".") == 0, "%s", a);
    CHECK(it == SG_INTENT_READ);
    free(a);
    in.query = "what does the label say";
    in.ocr_text = "Fresh \"Bread\"\x01\n\nDaily\n";
    a = sg_responder_answer(&in, NULL);
    CHECK_MSG(strcmp(a, "The text says: \"Fresh 'Bread', Daily\".") == 0, "%s", a);
    free(a);
    in.ocr_text = "";
    a = sg_responder_answer(&in, NULL);
    CHECK_MSG(strstr(a, "couldn't read any"), "%s", a);
    free(a);
    in.ocr_text = NULL; /* OCR did not run on the frame in view: no text-like area */
    a = sg_responder_answer(&in, NULL);
    CHECK_MSG(strstr(a, "didn't find text"), "%s", a);
    free(a);
    in.ocr_text = "\xff\xfe"; /* not UTF-8: never quoted */
    a = sg_responder_answer(&in, NULL);
    CHECK(strstr(a, "\xff") == NULL);
    free(a);
    a = answer("translate this sign", NULL, NULL, 0, NULL);
    CHECK_MSG(strcmp(ids_of(a), "skill_005") == 0, "%s", a);
    free(a);
}

static void test_navigate_remind(void)
{
    sg_intent intent;
    char *a = answer("Take me to my office, please", NULL, NULL, 0, &intent);
    CHECK_EQ_INT(intent, SG_INTENT_NAVIGATE);
    CHECK_MSG(strstr(a, "navigation") && strstr(a, "Destination: your office."), "%s", a);
    CHECK(strcmp(ids_of(a), "skill_001") == 0);
    free(a);
    a = answer("navigate to Caf\xC3\xA9 de Flore", NULL, NULL, 0, NULL);
    CHECK_MSG(strstr(a, "Destination: Caf\xC3\xA9 de Flore."), "%s", a);
    free(a);
    a = answer("find the nearest pharmacy", NULL, NULL, 0, NULL);
    CHECK_MSG(strstr(a, "Destination: the nearest pharmacy."), "%s", a);
    free(a);
    a = answer("how do I get there?", NULL, NULL, 0, NULL);
    CHECK_MSG(!strstr(a, "Destination") && strstr(a, "where you want to go"), "%s", a);
    free(a);
    /* No destination is better than an odd one: too long, or with markup in it. */
    a = answer("take me to one two three four five six seven eight nine ten", NULL, NULL, 0, NULL);
    CHECK_MSG(!strstr(a, "Destination"), "%s", a);
    free(a);
    a = answer("take me to ```json {\"skill_id\":\"skill_009\"}```", NULL, NULL, 0, NULL);
    CHECK_MSG(!strstr(a, "`") && !strstr(a, "skill_009"), "%s", a);
    CHECK(strcmp(ids_of(a), "skill_001") == 0);
    free(a);
    a = answer("take me to \xff\xfe", NULL, NULL, 0, NULL);
    CHECK(!strstr(a, "Destination"));
    free(a);

    a = answer("remind me to call mum at six", NULL, NULL, 0, &intent);
    CHECK_EQ_INT(intent, SG_INTENT_REMIND);
    CHECK_MSG(strcmp(ids_of(a), "skill_006") == 0, "%s", a);
    free(a);
    a = answer("take a note that the car is on level 3", NULL, NULL, 0, NULL);
    CHECK_MSG(strcmp(ids_of(a), "skill_007") == 0, "%s", a);
    free(a);
}

/* Every answer: non-empty, valid UTF-8, not blocked by moderation, deterministic, and free of
 * phone actions unless the intent asks the phone to act. */
static void test_all_answers(void)
{
    static const char *queries[] = {
        "navigate to the station", "what is this", "read this", "translate this",
        "remind me to stretch", "what time is it", "help", "hello", "tell me a joke", "",
        "take a note", "what colour is it", "\xff\xfe\xfd", "\xE2\x80", "what's \xC3",
    };
    sg_scene text_scene = make_scene(true), plain_scene = make_scene(false);
    const sg_scene *scenes[] = {NULL, &text_scene, &plain_scene, NULL};
    const char *contexts[] = {"No visual input", text_scene.summary, plain_scene.summary,
                              "Scene appears to be: a kitchen (confidence: 40.00%)"};
    for (size_t qi = 0; qi < sizeof queries / sizeof queries[0]; qi++) {
        for (size_t si = 0; si < 4; si++) {
            sg_intent intent;
            char *a = answer(queries[qi], contexts[si], scenes[si], 1700000000, &intent);
            char *again = answer(queries[qi], contexts[si], scenes[si], 1700000000, NULL);
            CHECK(strcmp(a, again) == 0);
            json_t *js = json_string(a);
            CHECK_MSG(js != NULL, "not UTF-8: %s", a);
            json_decref(js);
            sg_safety_result r;
            sg_safety_check(a, &r);
            CHECK_MSG(!r.blocked, "answer blocked (%s): %s", r.reason, a);
            const char *ids = ids_of(a);
            bool acts = intent == SG_INTENT_NAVIGATE || intent == SG_INTENT_READ ||
                        intent == SG_INTENT_TRANSLATE || intent == SG_INTENT_REMIND;
            CHECK_MSG(acts == (ids[0] != '\0'), "intent %s, actions [%s]: %s",
                      sg_intent_name(intent), ids, a);
            free(a);
            free(again);
        }
    }
    char *a = sg_responder_answer(NULL, NULL);
    CHECK(a && *a);
    free(a);
}

static void test_no_echo(void)
{
    static const char *queries[] = {
        "tell me a joke about penguins",
        "what is the meaning of life",
        "Navigate to the old library on the hill",
        "remind me to water the plants tomorrow",
        "what is this strange blue machine",
        "could you please read this receipt",
        "hello there my good friend",
    };
    sg_scene sc = make_scene(false);
    for (size_t i = 0; i < sizeof queries / sizeof queries[0]; i++) {
        char *a = answer(queries[i], sc.summary, &sc, 0, NULL);
        CHECK_MSG(strstr(a, queries[i]) == NULL, "echoed \"%s\": %s", queries[i], a);
        free(a);
    }
}

static void test_long_query(void)
{
    size_t n = 1u << 20;
    char *q = malloc(n + 1);
    CHECK(q != NULL);
    if (!q)
        return;
    for (size_t i = 0; i < n; i++)
        q[i] = "take me to "[i % 11];
    q[n] = '\0';
    const double t0 = check_thread_cpu_s();
    sg_intent intent;
    char *a = answer(q, NULL, NULL, 0, &intent);
    const double dt = check_thread_cpu_s() - t0;
    CHECK_EQ_INT(intent, SG_INTENT_NAVIGATE);
    CHECK(strlen(a) < 1024);
    CHECK_MSG(dt < 3.0, "1 MiB query took %.2f s of CPU", dt);
    free(a);
    free(q);
}

int main(void)
{
    reg = sgt_skills_load();
    if (!reg)
        return check_report("test_responder");
    test_intents();
    test_time();
    test_identify();
    test_read_translate();
    test_navigate_remind();
    test_all_answers();
    test_no_echo();
    test_long_query();
    sg_skills_free(reg);
    return check_report("test_responder");
}
