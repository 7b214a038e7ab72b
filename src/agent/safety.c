/* Keyword moderation. The categories and the fallback sentence are the reference runtime's
 * (src/safety/content_moderation.py, RuleBasedModerator); the keyword lists are longer, and
 * matching is on whole words and phrases instead of substrings, because the reference blocked
 * "skill" (it contains "kill") and "what's the speed limit here" - normal questions for a wearer
 * who is walking somewhere. Patterns are lowercase; a space matches any run of whitespace, an
 * apostrophe also matches U+2019, and '*' matches the rest of a word ("murder*" covers "murdered"). */
#include "agent/safety.h"

#include <stdio.h>
#include <string.h>

#include "base/phrase.h"

static const char *const violence[] = {
    "kill", "kills", "killed", "killing", "killer", "killers", "murder*", "shoot", "shoots",
    "shooting", "shooter", "shot him", "shot her", "shot them", "shot someone", "stab", "stabs",
    "stabbed", "stabbing", "bomb", "bombs", "bombing", "bomb threat", "explosive device",
    "weapon", "weapons", "assault*", "attack someone", "attack somebody", "attack him",
    "attack her", "attack them", "attack people", "attacking someone", "hurt someone",
    "hurt somebody", "hurt him", "hurt her", "hurt them", "hurt people", "beat someone up",
    "beat him up", "beat her up", "beat up someone", "strangle*", "poison someone", "poison him",
    "poison her", "poison them", "torture*", "massacre*", "behead*", "terrorist attack",
    NULL};

static const char *const medical_advice[] = {
    "diagnose", "diagnosing", "diagnose me", "prescription", "prescriptions", "prescribe",
    "prescribed", "dosage", "dosages", "overdose*", "how many pills", "how many tablets",
    "how much medicine", "how much medication", "what medication should", "what medicine should",
    "which medication should", "which medicine should", "what pills should",
    "take this medication", "take medication", "take this pill", "take these pills", "cure for",
    "how much ibuprofen", "how much paracetamol", "how much acetaminophen", "how much aspirin",
    "is it safe to take", "medication should i take", "medicine should i take",
    "pills should i take", "dose should i take", "how much of this medication",
    "how much of this medicine", "how much of my medication", "how much of my medicine",
    "what dose", "what dosage", NULL};

static const char *const dangerous_activity[] = {
    "while driving", "while i drive", "while i'm driving", "while i am driving", "drunk driving",
    "drive drunk", "driving drunk", "drink and drive", "drink driving", "drive faster",
    "run a red light", "run the red", "run red light", "running a red light", "run the red light",
    "ignore the speed limit", "exceed the speed limit", "break the speed limit", "jump off",
    "stare at the sun", "look directly at the sun", NULL};

static const char *const privacy_violation[] = {
    "facial recognition", "face recognition", "recogni* this face", "recogni* that face",
    "recogni* his face", "recogni* her face", "identify this person", "identify that person",
    "identify the person", "identify this man", "identify this woman", "identify this guy",
    "identify him", "identify her", "identify people", "identify faces", "who is this person",
    "who is that person", "who's this person", "who's that person", "who is this guy",
    "who is that guy", "who's this guy", "who's that guy", "who is this man", "who is that man",
    "who is this woman", "who is that woman", "what is his name", "what is her name",
    "what's his name", "what's her name", "home address of", "where does he live",
    "where does she live", "where do they live", "track someone", "track somebody", "track him",
    "track her", "follow her home", "follow him home", "stalk", "stalking", "stalker", "spy on",
    "look up this person", "who owns this car", "run this plate", "look up this license plate",
    "share your password", "give me your password", "tell me your ssn",
    "social security number", "credit card number", "read her messages", "read his messages",
    "secretly record*", "dox", "doxx*", NULL};

/* Harmless phrases that contain a keyword; words inside a match are not checked. */
static const char *const exempt[] = {
    "killer whale*", "kill time", "killing time", "kill the lights", "kill the engine",
    "photo shoot*", "video shoot*", "shoot* a photo", "shoot* a photograph", "shoot* a picture",
    "shoot* a video", "shoot* photos", "shoot* pictures", "shoot* video", "shoot* videos",
    "shoot* some photos", "shoot* some pictures", "shoot* some video", "shoot* the photo",
    "shoot* the video", "shooting star*", "bamboo shoot*", "bath bomb*", "prescription glasses",
    "prescription lens*", "prescription sunglasses", "prescription frames", "celery stalk*",
    "stalk of", NULL};

typedef struct safety_category {
    const char *name;
    const char *const *patterns;
} safety_category;

static const safety_category categories[] = {
    {"violence", violence},
    {"medical_advice", medical_advice},
    {"dangerous_activity", dangerous_activity},
    {"privacy_violation", privacy_violation},
};

static size_t match_any(const unsigned char *t, const char *const *patterns)
{
    unsigned char first = sg_phrase_lower(t[0]);
    for (size_t k = 0; patterns[k]; k++) {
        if ((unsigned char)patterns[k][0] != first)
            continue;
        size_t m = sg_phrase_match(t, patterns[k]);
        if (m)
            return m;
    }
    return 0;
}

/* The matched words for the reason: lowercase ASCII, whitespace collapsed, other bytes as '?'. */
static void describe_match(const unsigned char *t, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 1 < cap;) {
        if (sg_phrase_is_space(t[i])) {
            out[o++] = ' ';
            while (i < len && sg_phrase_is_space(t[i]))
                i++;
        } else if (t[i] == 0xE2 && i + 2 < len && t[i + 1] == 0x80 && t[i + 2] == 0x99) {
            out[o++] = '\'';
            i += 3;
        } else if (t[i] >= 0x80) {
            out[o++] = '?';
            i += sg_phrase_char_len(t + i);
        } else {
            out[o++] = (char)sg_phrase_lower(t[i]);
            i++;
        }
    }
    out[o] = '\0';
}

void sg_safety_check(const char *text, sg_safety_result *out)
{
    if (!out)
        return;
    out->blocked = false;
    out->category = NULL;
    out->reason[0] = '\0';
    if (!text)
        return;
    const unsigned char *t = (const unsigned char *)text;
    size_t exempt_until = 0;
    bool prev_word = false;
    for (size_t i = 0; t[i];) {
        bool w = sg_phrase_word_at(t + i);
        if (w && !prev_word) {
            size_t e = match_any(t + i, exempt);
            if (e && i + e > exempt_until)
                exempt_until = i + e;
            if (i >= exempt_until) {
                for (size_t c = 0; c < sizeof categories / sizeof categories[0]; c++) {
                    size_t m = match_any(t + i, categories[c].patterns);
                    if (m) {
                        char words[64];
                        describe_match(t + i, m, words, sizeof words);
                        out->blocked = true;
                        out->category = categories[c].name;
                        snprintf(out->reason, sizeof out->reason, "%s: matched \"%s\"",
                                 categories[c].name, words);
                        return;
                    }
                }
            }
        }
        prev_word = w;
        i += sg_phrase_char_len(t + i);
    }
}

const char *sg_safety_fallback(void)
{
    return "I'm not able to help with that request. Please consult a professional.";
}

const char *sg_safety_fallback_for(const char *category)
{
    if (!category)
        return sg_safety_fallback();
    if (strcmp(category, "violence") == 0)
        return "I can't help with that request. If you or someone near you is in danger, please "
               "call your local emergency number.";
    if (strcmp(category, "medical_advice") == 0)
        return "I can't give medical advice. Please ask a doctor or pharmacist, and in an "
               "emergency call your local emergency number.";
    if (strcmp(category, "dangerous_activity") == 0)
        return "I can't help with that because it could put you or others at risk. If you are "
               "driving, please stop somewhere safe first.";
    if (strcmp(category, "privacy_violation") == 0)
        return "I can't help with recognising people or finding personal details about them. I can "
               "describe the scene instead.";
    return sg_safety_fallback();
}

const char *sg_safety_reason(const sg_safety_result *r)
{
    return r && r->blocked ? r->reason : NULL;
}
