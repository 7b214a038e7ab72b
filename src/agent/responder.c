/* The rule-based responder used while no language model is configured. It finds one intent from
 * keyword phrases (a fixed priority decides when several match) and answers from what the server
 * really knows: the clock, and the vision stage's output - a vision model's label or, without
 * one, pixel statistics. It never claims to recognise what it cannot, never repeats the query, and
 * names a phone capability ("navigation", "set a reminder") only where the phone should act, so
 * the action parser (actions.c) suggests exactly those skills. */
#include "agent/responder.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/phrase.h"

/* ---- text helpers (phrase matching lives in base/phrase.c) ------------------------------------ */

/* Length of the valid UTF-8 prefix of s[0..n) that ends on a character boundary, or (size_t)-1
 * when s has an invalid sequence before n. */
static size_t utf8_valid_prefix(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t len;
        unsigned lo = 0x80, hi = 0xBF;
        if (c < 0x80)
            len = 1;
        else if (c >= 0xC2 && c <= 0xDF)
            len = 2;
        else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            if (c == 0xE0)
                lo = 0xA0;
            if (c == 0xED)
                hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            if (c == 0xF0)
                lo = 0x90;
            if (c == 0xF4)
                hi = 0x8F;
        } else
            return (size_t)-1;
        if (i + len > n)
            return i; /* cut at the limit: keep the whole characters before it */
        for (size_t k = 1; k < len; k++) {
            unsigned char d = s[i + k];
            if (d < (k == 1 ? lo : 0x80) || d > (k == 1 ? hi : 0xBF))
                return (size_t)-1;
        }
        i += len;
    }
    return i;
}

/* ---- intents ------------------------------------------------------------------------------- */

/* Where a navigation phrase puts the destination: after it ("take me to | the station"), or
 * from its own start ("find the | nearest pharmacy"). */
enum { DEST_NONE, DEST_AFTER, DEST_FROM_START };

typedef struct intent_phrase {
    const char *pat;
    int dest;
} intent_phrase;

static const intent_phrase translate_phrases[] = {
    {"translate", 0}, {"translated", 0}, {"translating", 0}, {"translation", 0},
    {"translator", 0}, {"in english", 0}, {"into english", 0}, {"what language", 0},
    {"what does this mean in", 0}, {NULL, 0}};

static const intent_phrase read_phrases[] = {
    {"read", 0}, {"reading", 0}, {"read out", 0}, {"what does it say", 0},
    {"what does this say", 0}, {"what does that say", 0}, {"what does the sign say", 0},
    {"what does the label say", 0}, {"what does the menu say", 0}, {"what's written", 0},
    {"what is written", 0}, {"ocr", 0}, {"text recognition", 0}, {NULL, 0}};

static const intent_phrase navigate_phrases[] = {
    {"navigate", DEST_AFTER}, {"navigation", DEST_AFTER}, {"navigating", DEST_AFTER},
    {"directions", DEST_AFTER}, {"direction to", DEST_AFTER}, {"take me to", DEST_AFTER},
    {"how do i get to", DEST_AFTER}, {"how can i get to", DEST_AFTER},
    {"how to get to", DEST_AFTER}, {"how do i get there", DEST_NONE}, {"get to", DEST_AFTER},
    {"route to", DEST_AFTER}, {"route", DEST_NONE}, {"way to", DEST_AFTER},
    {"guide me to", DEST_AFTER}, {"walk me to", DEST_AFTER}, {"lead me to", DEST_AFTER},
    {"nearest", DEST_FROM_START}, {NULL, 0}};

/* The first NOTE_PHRASES entries of remind_phrases ask for a note rather than a reminder. */
#define NOTE_PHRASES 12
static const intent_phrase remind_phrases[] = {
    {"take a note", 0}, {"make a note", 0}, {"add a note", 0}, {"save a note", 0},
    {"note this", 0}, {"note that", 0}, {"note down", 0}, {"write down", 0},
    {"write this down", 0}, {"jot down", 0}, {"remember that", 0}, {"remember where", 0},
    {"remind*", 0}, {"reminder", 0}, {"reminders", 0}, {"set a reminder", 0},
    {"don't let me forget", 0}, {"don't forget", 0}, {"remember to", 0}, {"remember this", 0},
    {NULL, 0}};

static const intent_phrase time_phrases[] = {
    {"what time is it", 0}, {"what's the time", 0}, {"what is the time", 0}, {"time is it", 0},
    {"tell me the time", 0}, {"current time", 0}, {"the time now", 0}, {"what day is it", 0},
    {"what day is today", 0}, {"which day is it", 0}, {"what's the date", 0},
    {"what is the date", 0}, {"what date is it", 0}, {"today's date", 0},
    {"what year is it", 0}, {"what month is it", 0}, {NULL, 0}};

static const intent_phrase identify_phrases[] = {
    {"what is this", 0}, {"what's this", 0}, {"what is that", 0}, {"what's that", 0},
    {"what is it", 0}, {"what are these", 0}, {"what are those", 0},
    {"what am i looking at", 0}, {"what i'm looking at", 0}, {"what do you see", 0},
    {"what can you see", 0}, {"what's in front of me", 0}, {"what is in front of me", 0},
    {"what's around me", 0}, {"what is around me", 0}, {"describe*", 0}, {"identify*", 0},
    {"recogni*", 0}, {"look at this", 0}, {"tell me what you see", 0}, {"what colour*", 0},
    {"what color*", 0}, {NULL, 0}};

static const intent_phrase help_phrases[] = {
    {"help", 0}, {"what can you do", 0}, {"what can i ask", 0}, {"what can i say", 0},
    {"how do i use", 0}, {"how does this work", 0}, {"what are your features", 0},
    {"who are you", 0}, {"what are you", 0}, {"what do you do", 0}, {NULL, 0}};

static const intent_phrase greeting_phrases[] = {
    {"hello", 0}, {"hi", 0}, {"hey", 0}, {"hiya", 0}, {"howdy", 0}, {"good morning", 0},
    {"good afternoon", 0}, {"good evening", 0}, {"greetings", 0}, {NULL, 0}};

/* Priority order: the more specific request wins ("read the sign and translate it" is a
 * translation; "remind me what time the train leaves" a reminder). */
static const struct {
    sg_intent intent;
    const intent_phrase *phrases;
} intent_table[] = {
    {SG_INTENT_TRANSLATE, translate_phrases}, {SG_INTENT_READ, read_phrases},
    {SG_INTENT_NAVIGATE, navigate_phrases},   {SG_INTENT_REMIND, remind_phrases},
    {SG_INTENT_TIME, time_phrases},           {SG_INTENT_IDENTIFY, identify_phrases},
    {SG_INTENT_HELP, help_phrases},           {SG_INTENT_GREETING, greeting_phrases},
};
#define NINTENTS (sizeof intent_table / sizeof intent_table[0])

typedef struct intent_hit {
    bool found;
    size_t start, end; /* byte offsets of the first match */
    size_t phrase;     /* index into the intent's phrase table */
} intent_hit;

/* One pass over the word starts of q, recording each intent's first match. */
static void find_intents(const unsigned char *q, intent_hit hits[NINTENTS])
{
    memset(hits, 0, sizeof(intent_hit) * NINTENTS);
    size_t remaining = NINTENTS;
    bool prev_word = false;
    for (size_t i = 0; q[i] && remaining;) {
        bool w = sg_phrase_word_at(q + i);
        if (w && !prev_word) {
            unsigned char first = sg_phrase_lower(q[i]);
            for (size_t n = 0; n < NINTENTS; n++) {
                if (hits[n].found)
                    continue;
                const intent_phrase *ph = intent_table[n].phrases;
                for (size_t k = 0; ph[k].pat; k++) {
                    if ((unsigned char)ph[k].pat[0] != first)
                        continue;
                    size_t m = sg_phrase_match(q + i, ph[k].pat);
                    if (m) {
                        hits[n] = (intent_hit){true, i, i + m, k};
                        remaining--;
                        break;
                    }
                }
            }
        }
        prev_word = w;
        i += sg_phrase_char_len(q + i);
    }
}

static sg_intent pick_intent(const intent_hit hits[NINTENTS], size_t *which)
{
    for (size_t n = 0; n < NINTENTS; n++)
        if (hits[n].found) {
            if (which)
                *which = n;
            return intent_table[n].intent;
        }
    return SG_INTENT_NONE;
}

sg_intent sg_intent_detect(const char *query)
{
    if (!query)
        return SG_INTENT_NONE;
    intent_hit hits[NINTENTS];
    find_intents((const unsigned char *)query, hits);
    return pick_intent(hits, NULL);
}

const char *sg_intent_name(sg_intent intent)
{
    switch (intent) {
    case SG_INTENT_NONE: return "none";
    case SG_INTENT_NAVIGATE: return "navigate";
    case SG_INTENT_IDENTIFY: return "identify";
    case SG_INTENT_READ: return "read";
    case SG_INTENT_TRANSLATE: return "translate";
    case SG_INTENT_REMIND: return "remind";
    case SG_INTENT_TIME: return "time";
    case SG_INTENT_HELP: return "help";
    case SG_INTENT_GREETING: return "greeting";
    }
    return "unknown";
}

/* ---- answer text --------------------------------------------------------------------------- */

typedef struct sbuf {
    char buf[2048];
    size_t len;
} sbuf;

__attribute__((format(printf, 2, 3))) static void sb_printf(sbuf *b, const char *fmt, ...)
{
    if (b->len + 1 >= sizeof b->buf)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->buf + b->len, sizeof b->buf - b->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        b->len += (size_t)n < sizeof b->buf - b->len ? (size_t)n : sizeof b->buf - b->len - 1;
}

#define DEST_MAX_BYTES 60
#define DEST_MAX_WORDS 8

static bool word_is(const unsigned char *w, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    if (n != l)
        return false;
    for (size_t i = 0; i < n; i++)
        if (sg_phrase_lower(w[i]) != (unsigned char)lit[i])
            return false;
    return true;
}

/* The destination named after a navigation phrase, in the assistant's voice ("my office" becomes
 * "your office"): up to DEST_MAX_WORDS words of letters, digits, '\'', '-' and '&', ending at
 * punctuation or a filler word ("please", "now"). Empty when there is none or it is too long to
 * be a place name, so the answer never carries an arbitrary slice of the query. */
static void extract_destination(const unsigned char *t, bool skip_to, char *out, size_t cap)
{
    static const char *const stop[] = {"please", "now", "quickly", "asap", "by", "via", "using",
                                       NULL};
    size_t o = 0, words = 0, i = 0;
    out[0] = '\0';
    while (sg_phrase_is_space(t[i]))
        i++;
    if (skip_to && sg_phrase_lower(t[i]) == 't' && sg_phrase_lower(t[i + 1]) == 'o' && !sg_phrase_word_at(t + i + 2)) {
        i += 2;
        while (sg_phrase_is_space(t[i]))
            i++;
    }
    for (;;) {
        size_t ws = i;
        while (t[i] && (sg_phrase_word_at(t + i) || t[i] == '\'' || t[i] == '-' || t[i] == '&' ||
                        (t[i] == 0xE2 && t[i + 1] == 0x80 && t[i + 2] == 0x99)))
            i += sg_phrase_char_len(t + i);
        size_t wn = i - ws;
        if (wn == 0)
            break;
        bool stopword = false;
        for (size_t k = 0; stop[k]; k++)
            stopword = stopword || word_is(t + ws, wn, stop[k]);
        if (stopword)
            break;
        if (++words > DEST_MAX_WORDS || utf8_valid_prefix(t + ws, wn) != wn) {
            out[0] = '\0';
            return;
        }
        const char *src = (const char *)t + ws;
        size_t len = wn;
        if (word_is(t + ws, wn, "my") || word_is(t + ws, wn, "our")) {
            src = "your";
            len = 4;
        } else if (word_is(t + ws, wn, "me")) {
            src = "you";
            len = 3;
        }
        if (o + (o ? 1 : 0) + len >= DEST_MAX_BYTES || o + (o ? 1 : 0) + len >= cap) {
            out[0] = '\0';
            return;
        }
        if (o)
            out[o++] = ' ';
        memcpy(out + o, src, len);
        o += len;
        out[o] = '\0';
        size_t sp = i;
        while (t[sp] == ' ' || t[sp] == '\t')
            sp++;
        if (sp == i || !sg_phrase_word_at(t + sp))
            break;
        i = sp;
    }
}

/* A label from sg_scene: short, lowercase letters, spaces and '-' only. */
static bool label_ok(const char *s, size_t cap)
{
    if (!s)
        return false;
    size_t n = strnlen(s, cap);
    if (n == 0 || n == cap)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == ' ' || s[i] == '-'))
            return false;
    return true;
}

/* "a bright, sharp image, mostly gray, blue and white" from the pixel statistics. */
static void sb_scene(sbuf *b, const sg_scene *sc)
{
    const char *bl = label_ok(sc->brightness_label, 24) ? sc->brightness_label : NULL;
    const char *sl = label_ok(sc->sharpness_label, 24) ? sc->sharpness_label : NULL;
    if (bl && sl)
        sb_printf(b, "a %s, %s image", bl, sl);
    else if (bl || sl)
        sb_printf(b, "a %s image", bl ? bl : sl);
    else
        sb_printf(b, "an image");
    const char *names[3];
    size_t k = 0;
    int nc = sc->ncolors < 0 ? 0 : sc->ncolors > 3 ? 3 : sc->ncolors;
    for (int i = 0; i < nc; i++)
        if (label_ok(sc->colors[i].name, sizeof sc->colors[i].name))
            names[k++] = sc->colors[i].name;
    if (k == 1)
        sb_printf(b, ", mostly %s", names[0]);
    else if (k == 2)
        sb_printf(b, ", mostly %s and %s", names[0], names[1]);
    else if (k == 3)
        sb_printf(b, ", mostly %s, %s and %s", names[0], names[1], names[2]);
}

static bool prefix_ci(const char *s, const char *lit)
{
    for (; *lit; s++, lit++)
        if (sg_phrase_lower((unsigned char)*s) != (unsigned char)*lit)
            return false;
    return true;
}

/* The vision stage's text made safe to quote: "Scene appears to be: " dropped, control
 * characters and backticks replaced, at most cap-1 bytes cut on a character boundary. Returns its
 * length; 0 when there is no visual input or the text is not valid UTF-8. */
static size_t clean_visual(const char *vc, char *out, size_t cap)
{
    out[0] = '\0';
    if (!vc)
        return 0;
    while (sg_phrase_is_space((unsigned char)*vc))
        vc++;
    if (prefix_ci(vc, "no visual input"))
        return 0;
    if (prefix_ci(vc, "scene appears to be:"))
        vc += strlen("scene appears to be:");
    while (sg_phrase_is_space((unsigned char)*vc))
        vc++;
    size_t n = strnlen(vc, cap - 1);
    size_t valid = utf8_valid_prefix((const unsigned char *)vc, n);
    if (valid == (size_t)-1)
        return 0;
    while (valid > 0 && (sg_phrase_is_space((unsigned char)vc[valid - 1]) || vc[valid - 1] == '.'))
        valid--;
    for (size_t i = 0; i < valid; i++) {
        unsigned char c = (unsigned char)vc[i];
        out[i] = (c < 0x20 || c == 0x7F) ? ' ' : c == '`' ? '\'' : (char)c;
    }
    out[valid] = '\0';
    return valid;
}

static void answer_time(sbuf *b, time_t now)
{
    static const char *const days[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                       "Thursday", "Friday", "Saturday"};
    static const char *const months[] = {"January", "February", "March",     "April",
                                         "May",     "June",     "July",      "August",
                                         "September", "October", "November", "December"};
    struct tm tm;
    if (!localtime_r(&now, &tm) || tm.tm_wday < 0 || tm.tm_wday > 6 || tm.tm_mon < 0 ||
        tm.tm_mon > 11) {
        sb_printf(b, "Sorry, I can't read the clock right now.");
        return;
    }
    sb_printf(b, "It's %02d:%02d on %s, %d %s %lld.", tm.tm_hour, tm.tm_min, days[tm.tm_wday],
              tm.tm_mday, months[tm.tm_mon], (long long)tm.tm_year + 1900);
}

static void answer_identify(sbuf *b, const sg_scene *sc, const char *visual)
{
    if (sc) {
        sb_printf(b, "I can't name objects yet because no vision model is loaded. From the pixels "
                     "alone I see ");
        sb_scene(b, sc);
        sb_printf(b, "%s.", sc->text_like ? ", with fine high-contrast detail that may be text" : "");
    } else if (*visual) {
        sb_printf(b, "The vision model's best match: %s.", visual);
    } else {
        sb_printf(b, "I don't have a camera frame to look at. Send one with your question and "
                     "I'll describe what I can.");
    }
}

/* OCR's text made safe to speak and quote: lines joined by ", ", control characters, quotes and
 * backticks replaced, at most cap-1 bytes cut on a character boundary; 0 when the text is empty
 * or not valid UTF-8. */
static size_t clean_ocr(const char *t, char *out, size_t cap)
{
    size_t o = 0, n = strlen(t);
    size_t valid = utf8_valid_prefix((const unsigned char *)t, n);
    if (valid == (size_t)-1)
        return 0;
    for (size_t i = 0; i < valid && o + 3 < cap;) {
        unsigned char c = (unsigned char)t[i];
        if (c == '\n') { /* blank lines add nothing */
            while (o > 0 && (out[o - 1] == ' ' || out[o - 1] == ','))
                o--;
            if (o > 0) {
                out[o++] = ',';
                out[o++] = ' ';
            }
            i++;
            continue;
        }
        size_t l = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
        if (o + l + 1 >= cap)
            break;
        if (l == 1)
            out[o++] = (c < 0x20 || c == 0x7F) ? ' ' : c == '"' || c == '`' ? '\'' : (char)c;
        else
            memcpy(out + o, t + i, l), o += l;
        i += l;
    }
    while (o > 0 && (out[o - 1] == ' ' || out[o - 1] == ','))
        o--;
    out[o] = '\0';
    return o;
}

static void answer_read(sbuf *b, const sg_scene *sc, const char *visual, const char *query,
                        bool ocr, const char *ocr_text)
{
    char text[400];
    if (ocr && ocr_text && clean_ocr(ocr_text, text, sizeof text)) {
        /* "The sign says" when the wearer asked about a sign, else what the text is */
        bool sign = false;
        for (const unsigned char *q = (const unsigned char *)query; *q && !sign; q++)
            sign = (q == (const unsigned char *)query || !sg_phrase_word_at(q - 1)) &&
                   sg_phrase_match(q, "sign*") > 0;
        sb_printf(b, "%s says: \"%s\".", sign ? "The sign" : "The text", text);
        return;
    }
    if (ocr && ocr_text) {
        sb_printf(b, "I looked for text in this frame but couldn't read any. Try holding still a "
                     "little closer to it, with the text filling more of the view.");
        return;
    }
    if (ocr && (sc || *visual)) {
        sb_printf(b, "I didn't find text to read in the last frame. Point the camera at the text "
                     "and ask again with the frame, and I'll read it out.");
        return;
    }
    if (ocr) {
        sb_printf(b, "I don't have a camera frame to read from. Point the camera at the text and "
                     "ask again, and I'll read it out.");
        return;
    }
    if (sc && sc->text_like) {
        sb_printf(b, "There seems to be text in view (dense, fine, high-contrast detail), but text "
                     "recognition (OCR) isn't loaded on this server, so I can't read the words "
                     "out. I've passed the request to your phone in case it can.");
    } else if (sc) {
        sb_printf(b, "I can't spot text-like detail in this frame (I see ");
        sb_scene(b, sc);
        sb_printf(b, "), and text recognition (OCR) isn't loaded on this server. Try holding still "
                     "a little closer to the text; I've also passed the request to your phone.");
    } else if (*visual) {
        sb_printf(b, "The vision model's best match is %s, but text recognition (OCR) isn't "
                     "loaded on this server, so I can't read the words. I've passed the request "
                     "to your phone in case it can.",
                  visual);
    } else {
        sb_printf(b, "I don't have a camera frame to read from, and text recognition (OCR) isn't "
                     "loaded on this server. Point the camera at the text and ask again; I've "
                     "passed the request to your phone in case it can help.");
    }
}

static void answer_translate(sbuf *b, const sg_scene *sc)
{
    sb_printf(b, "Translation needs a language model that isn't loaded on this server, so I've "
                 "passed the request to your phone.");
    if (sc && sc->text_like)
        sb_printf(b, " There does seem to be text in view.");
}

static void answer_navigate(sbuf *b, const unsigned char *q, const intent_hit *hit)
{
    char dest[DEST_MAX_BYTES + 8];
    int mode = navigate_phrases[hit->phrase].dest;
    dest[0] = '\0';
    if (mode == DEST_AFTER) {
        extract_destination(q + hit->end, true, dest, sizeof dest);
    } else if (mode == DEST_FROM_START) {
        memcpy(dest, "the ", 5);
        extract_destination(q + hit->start, false, dest + 4, sizeof dest - 4);
        if (dest[4] == '\0')
            dest[0] = '\0';
    }
    sb_printf(b, "I'm handing navigation over to your phone, which has maps and your location.");
    if (dest[0])
        sb_printf(b, " Destination: %s.", dest);
    else
        sb_printf(b, " Tell me where you want to go if you haven't yet.");
    sb_printf(b, " Stay aware of traffic and your surroundings as you go.");
}

static void answer_generic(sbuf *b, bool blank_query, const sg_scene *sc, const char *visual)
{
    if (blank_query)
        sb_printf(b, "I didn't catch a question. ");
    sb_printf(b, "Without a language model I can handle simple requests: describing what the "
                 "camera sees, spotting text, telling the time and date, and passing routes, "
                 "reminders, notes and language help on to your phone.");
    if (sc) {
        sb_printf(b, " Right now I see ");
        sb_scene(b, sc);
        sb_printf(b, ".");
    } else if (*visual) {
        sb_printf(b, " The vision model's best match for the current view: %s.", visual);
    }
}

char *sg_responder_answer(const sg_responder_input *in, sg_intent *intent_out)
{
    static const sg_responder_input none = {0};
    if (!in)
        in = &none;
    const unsigned char *q = (const unsigned char *)(in->query ? in->query : "");
    intent_hit hits[NINTENTS];
    find_intents(q, hits);
    size_t which = 0;
    sg_intent intent = pick_intent(hits, &which);

    bool blank_query = true;
    for (const unsigned char *p = q; *p && blank_query; p++)
        blank_query = sg_phrase_is_space(*p);
    char visual[320];
    if (in->scene || !clean_visual(in->visual_context, visual, sizeof visual))
        visual[0] = '\0';
    /* An image with no words is a request to describe it. */
    if (intent == SG_INTENT_NONE && blank_query && (in->scene || visual[0]))
        intent = SG_INTENT_IDENTIFY;

    sbuf b;
    b.len = 0;
    b.buf[0] = '\0';
    switch (intent) {
    case SG_INTENT_NAVIGATE: answer_navigate(&b, q, &hits[which]); break;
    case SG_INTENT_IDENTIFY: answer_identify(&b, in->scene, visual); break;
    case SG_INTENT_READ:
        answer_read(&b, in->scene, visual, (const char *)q, in->ocr_available, in->ocr_text);
        break;
    case SG_INTENT_TRANSLATE: answer_translate(&b, in->scene); break;
    case SG_INTENT_REMIND:
        if (hits[which].phrase < NOTE_PHRASES)
            sb_printf(&b, "I'll ask your phone to save a note with that.");
        else
            sb_printf(&b, "I'll ask your phone to set a reminder for that, so it can alert you at "
                          "the right time.");
        break;
    case SG_INTENT_TIME: answer_time(&b, in->now); break;
    case SG_INTENT_HELP:
        sb_printf(&b, "I'm your glasses assistant, running without a language model for now. Ask "
                      "me what you're looking at, whether there's text in view, or what time it "
                      "is, and I'll pass routes, reminders, notes and language help on to your "
                      "phone.");
        break;
    case SG_INTENT_GREETING:
        sb_printf(&b, "Hi! I'm your glasses assistant. Ask me what you're looking at or what time "
                      "it is, or ask for help to hear what else I can do.");
        break;
    case SG_INTENT_NONE: answer_generic(&b, blank_query, in->scene, visual); break;
    }
    if (intent_out)
        *intent_out = intent;
    return strdup(b.buf);
}
