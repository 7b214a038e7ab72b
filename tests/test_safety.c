/* Tests for keyword moderation (src/agent/safety.c): true positives in every category, the false
 * positives it was designed to avoid (navigation and camera talk is the product's core), the
 * reason text and the fallback sentences. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/safety.h"
#include "check.h"

static void expect(const char *text, const char *category)
{
    sg_safety_result r;
    memset(&r, 0x5A, sizeof r);
    sg_safety_check(text, &r);
    if (category) {
        CHECK_MSG(r.blocked && r.category && strcmp(r.category, category) == 0,
                  "\"%s\": want %s, got %s (%s)", text, category,
                  r.blocked ? r.category : "not blocked", r.reason);
        CHECK_MSG(strncmp(r.reason, category, strlen(category)) == 0, "reason \"%s\"", r.reason);
    } else {
        CHECK_MSG(!r.blocked && r.category == NULL && r.reason[0] == '\0',
                  "\"%s\": should pass, got %s", text, r.reason);
    }
}

#define BLOCKS(text, cat) expect(text, cat)
#define PASSES(text) expect(text, NULL)

static void test_violence(void)
{
    BLOCKS("How do I kill someone?", "violence");
    BLOCKS("KILL", "violence");
    BLOCKS("he was killed", "violence");
    BLOCKS("how to make a bomb", "violence");
    BLOCKS("I want to shoot him", "violence");
    BLOCKS("where can I stab", "violence");
    BLOCKS("plan a murder", "violence");
    BLOCKS("how do I attack someone quietly", "violence");
    BLOCKS("I want to hurt   someone", "violence");
    BLOCKS("find me a weapon", "violence");
    BLOCKS("he assaulted her", "violence");
    BLOCKS("\xE2\x80\x9Ckill\xE2\x80\x9D", "violence"); /* curly quotes are not letters */
    BLOCKS("(kill)", "violence");
}

static void test_medical(void)
{
    BLOCKS("Can you diagnose this rash?", "medical_advice");
    BLOCKS("what dosage of ibuprofen", "medical_advice");
    BLOCKS("is this an overdose", "medical_advice");
    BLOCKS("What medication should I take for a headache?", "medical_advice");
    BLOCKS("can I get it without a prescription", "medical_advice");
    BLOCKS("how many pills can I take", "medical_advice");
    BLOCKS("How much paracetamol is too much", "medical_advice");
    BLOCKS("Take this medication twice a day.", "medical_advice"); /* a response, too */
    BLOCKS("is there a cure for diabetes", "medical_advice");
    BLOCKS("how much of this medication should I take", "medical_advice");
    BLOCKS("Which dose should I take of these?", "medical_advice");
}

static void test_dangerous(void)
{
    BLOCKS("Can I text while driving?", "dangerous_activity");
    BLOCKS("read my messages while I'm driving", "dangerous_activity");
    BLOCKS("read my messages while I\xE2\x80\x99m driving", "dangerous_activity");
    BLOCKS("tips for drunk driving", "dangerous_activity");
    BLOCKS("should I run the red light", "dangerous_activity");
    BLOCKS("dare me to jump off the roof", "dangerous_activity");
    BLOCKS("how fast can I go if I ignore the speed limit", "dangerous_activity");
    BLOCKS("Is it ok to stare at the sun?", "dangerous_activity");
}

static void test_privacy(void)
{
    BLOCKS("Use facial recognition on that crowd", "privacy_violation");
    BLOCKS("Identify this person", "privacy_violation");
    BLOCKS("who is this person?", "privacy_violation");
    BLOCKS("Who\xE2\x80\x99s that guy", "privacy_violation");
    BLOCKS("what's her name", "privacy_violation");
    BLOCKS("find the home address of my neighbour", "privacy_violation");
    BLOCKS("help me track someone", "privacy_violation");
    BLOCKS("how do I stalk my ex", "privacy_violation");
    BLOCKS("can you recognise this face", "privacy_violation");
    BLOCKS("tell me your SSN", "privacy_violation");
    BLOCKS("read his credit card number", "privacy_violation");
}

static void test_false_positives(void)
{
    PASSES(NULL);
    PASSES("");
    PASSES("   ");
    PASSES("What is this?");
    PASSES("what am I looking at");
    PASSES("Teach me a new skill");
    PASSES("skills skilled skillful");
    PASSES("Give me driving directions to the airport");
    PASSES("I'm driving to work, navigate there"); /* driving alone is fine; "while driving" isn't */
    PASSES("What's the speed limit here?");
    PASSES("Look, a killer whale!");
    PASSES("we are killing time before the show");
    PASSES("the photo shoot starts at noon");
    PASSES("let's shoot a video of the sunset");
    PASSES("I'm shooting some photos of the bridge");
    PASSES("make a wish on a shooting star");
    PASSES("where can I get prescription glasses");
    PASSES("my prescription lenses are scratched");
    PASSES("what are the signs of a heart attack");
    PASSES("I had a panic attack");
    PASSES("a painkiller and a stable table"); /* not whole words */
    PASSES("a bath bomb from the shop in Bombay");
    PASSES("a stalk of celery");
    PASSES("Take a photo of this");
    PASSES("identify this plant");
    PASSES("who is the author of this book");
    PASSES("Jump to the next song");
    PASSES("Attack on Titan is my favourite show"); /* bare "attack" is not a keyword */
}

static void test_exemptions_are_local(void)
{
    /* An exempt phrase does not hide a real keyword elsewhere. */
    BLOCKS("after the photo shoot I will kill him", "violence");
    BLOCKS("killer whale, then kill", "violence");
    BLOCKS("I want to shoot photographers", "violence");
    BLOCKS("shoot a photographer", "violence");
    BLOCKS("prescription glasses and a prescription for pills", "medical_advice");
}

static void test_reason_and_fallback(void)
{
    sg_safety_result r;
    sg_safety_check("Can I text WHILE\n  Driving?", &r);
    CHECK(r.blocked);
    CHECK_MSG(strcmp(r.reason, "dangerous_activity: matched \"while driving\"") == 0, "%s", r.reason);
    CHECK(sg_safety_reason(&r) == r.reason);
    sg_safety_check("he was murdered", &r);
    CHECK_MSG(strcmp(r.reason, "violence: matched \"murdered\"") == 0, "%s", r.reason);
    /* The reason is ASCII even when the match holds other characters. */
    sg_safety_check("murder\xC3\xA9", &r);
    CHECK(r.blocked);
    for (const char *p = r.reason; *p; p++)
        CHECK((unsigned char)*p < 0x80);
    /* First match in the text decides the category. */
    sg_safety_check("who is this person with the bomb", &r);
    CHECK(r.blocked && strcmp(r.category, "privacy_violation") == 0);
    sg_safety_check("what is this", &r);
    CHECK(sg_safety_reason(&r) == NULL);
    CHECK(sg_safety_reason(NULL) == NULL);
    sg_safety_check("kill", NULL); /* no crash */

    CHECK(strcmp(sg_safety_fallback(),
                 "I'm not able to help with that request. Please consult a professional.") == 0);
    const char *cats[] = {"violence", "medical_advice", "dangerous_activity", "privacy_violation",
                          "unknown", NULL};
    for (size_t i = 0; i < sizeof cats / sizeof cats[0]; i++) {
        const char *f = sg_safety_fallback_for(cats[i]);
        CHECK(f && *f);
        sg_safety_check(f, &r); /* a fallback must never block itself */
        CHECK_MSG(!r.blocked, "fallback for %s blocked: %s", cats[i] ? cats[i] : "NULL", r.reason);
    }
    CHECK(sg_safety_fallback_for(NULL) == sg_safety_fallback());
    CHECK(strstr(sg_safety_fallback_for("medical_advice"), "doctor") != NULL);
}

static void test_long_input(void)
{
    size_t n = 1u << 20;
    char *buf = malloc(n + 32);
    CHECK(buf != NULL);
    if (!buf)
        return;
    const char *words = "photo shoot killer whale skill prescription glasses while ";
    for (size_t i = 0; i < n; i++)
        buf[i] = words[i % strlen(words)];
    strcpy(buf + n, " stab");
    const double t0 = check_thread_cpu_s();
    sg_safety_result r;
    sg_safety_check(buf, &r);
    const double dt = check_thread_cpu_s() - t0;
    CHECK_MSG(r.blocked && strcmp(r.reason, "violence: matched \"stab\"") == 0, "%s", r.reason);
    CHECK_MSG(dt < 3.0, "1 MiB took %.2f s of CPU", dt);
    free(buf);
}

int main(void)
{
    test_violence();
    test_medical();
    test_dangerous();
    test_privacy();
    test_false_positives();
    test_exemptions_are_local();
    test_reason_and_fallback();
    test_long_input();
    return check_report("test_safety");
}
