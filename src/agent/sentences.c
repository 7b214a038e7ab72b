/* The sentence feeder (agent/sentences.h). Input is decoded character by character into a buffer
 * of normalised text (one space for any run of white space, U+FFFD for invalid UTF-8); after each
 * character the buffer is scanned for the first sentence end. The scan answers from the buffer
 * alone - an end, no end, or "not yet known" when the characters that decide it have not arrived -
 * so piece boundaries never change the result. A buffer that reaches max_bytes without an end is
 * cut at its last space. */
#include "agent/sentences.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <unictype.h>
#include <unistr.h>

struct sg_sentences {
    size_t max;        /* the cut */
    size_t n;          /* bytes in buf */
    uint8_t pend[4];   /* an incomplete UTF-8 sequence carried between pieces */
    size_t npend, need; /* bytes in pend, and how many the sequence takes */
    size_t count;
    char *buf;         /* max + 8: room for one more character past the cut */
    char *out;         /* the sentence handed on, NUL-terminated */
};

sg_sentences *sg_sentences_new(size_t max_bytes)
{
    if (max_bytes == 0)
        max_bytes = SG_SENTENCE_MAX_BYTES;
    if (max_bytes < SG_SENTENCE_MIN_BYTES || max_bytes > SG_SENTENCE_LIMIT_BYTES)
        return NULL;
    sg_sentences *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->max = max_bytes;
    s->buf = malloc(max_bytes + 8);
    s->out = malloc(max_bytes + 8);
    if (!s->buf || !s->out) {
        sg_sentences_free(s);
        return NULL;
    }
    return s;
}

void sg_sentences_free(sg_sentences *s)
{
    if (!s)
        return;
    free(s->buf);
    free(s->out);
    free(s);
}

void sg_sentences_reset(sg_sentences *s)
{
    s->n = 0;
    s->npend = s->need = 0;
}

size_t sg_sentences_count(const sg_sentences *s) { return s->count; }

/* ---- characters ------------------------------------------------------------------------------ */

/* The character at buf[i] (i < n), its length in *len. The buffer holds valid UTF-8 only. */
static ucs4_t char_at(const sg_sentences *s, size_t i, size_t *len)
{
    ucs4_t c;
    int l = u8_mbtouc(&c, (const uint8_t *)s->buf + i, s->n - i);
    *len = l > 0 ? (size_t)l : 1;
    return c;
}

static bool is_terminator(ucs4_t c) { return c == '.' || c == '!' || c == '?' || c == 0x2026; }

static bool is_closer(ucs4_t c)
{
    return c == '"' || c == '\'' || c == ')' || c == ']' || c == '}' || c == 0x201D ||
           c == 0x2019 || c == 0x00BB || c == 0x203A;
}

static bool is_space_char(ucs4_t c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f' || c < 0x20 || c == 0x7F ||
           (c >= 0x80 && c < 0xA0) || c == 0x00A0 || c == 0xFEFF || uc_is_space(c);
}

static bool is_newline(ucs4_t c) { return c == '\n' || c == 0x2028 || c == 0x2029 || c == 0x85; }

/* ---- the sentence end rules ------------------------------------------------------------------ */

static const char *const abbreviations[] = {
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "mt", "ft", "approx", "fig", "dept",
    "est", "gen", "gov", "lt", "col", "sgt", "capt", "rev", "no", "vol", "ch", "sec", "cf", "al",
    "inc", "ltd", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov",
    "dec"};

/* Does the period at buf[dot] follow a word that takes a period without ending a sentence? */
static bool is_abbreviation(const sg_sentences *s, size_t dot)
{
    size_t b = dot;
    while (b > 0 && s->buf[b - 1] != ' ' && s->buf[b - 1] != '\n')
        b--;
    /* opening quotes and brackets are not part of the word */
    while (b < dot && strchr("\"'([{", s->buf[b]))
        b++;
    size_t len = dot - b;
    if (len == 0)
        return false;
    const char *w = s->buf + b;
    if (memchr(w, '.', len)) /* e.g. / U.S. / p.m. */
        return true;
    if (len == 1 && ((w[0] >= 'a' && w[0] <= 'z') || (w[0] >= 'A' && w[0] <= 'Z')))
        return true; /* an initial */
    bool digits = true;
    for (size_t i = 0; i < len; i++)
        digits = digits && w[i] >= '0' && w[i] <= '9';
    if (digits && b == 0 && len <= 3)
        return true; /* "1. First step" at the start of a line */
    for (size_t a = 0; a < sizeof abbreviations / sizeof *abbreviations; a++)
        if (strlen(abbreviations[a]) == len && strncasecmp(abbreviations[a], w, len) == 0)
            return true;
    return false;
}

enum { SCAN_NONE, SCAN_END, SCAN_WAIT };

/* The first sentence end in buf: SCAN_END with the sentence in [0, *end) and the next one starting
 * at *next; SCAN_WAIT when the first candidate needs characters not yet seen (final: there are none
 * to come, so it ends there); SCAN_NONE when there is no candidate. */
static int scan(const sg_sentences *s, bool final, size_t *end, size_t *next)
{
    size_t i = 0, len;
    while (i < s->n) {
        ucs4_t c = char_at(s, i, &len);
        if (c == '\n') {
            *end = i;
            *next = i + 1;
            return SCAN_END;
        }
        if (!is_terminator(c)) {
            i += len;
            continue;
        }
        size_t first = i, j = i;
        bool only_period = true;
        int periods = 0;
        while (j < s->n) {
            ucs4_t d = char_at(s, j, &len);
            if (is_terminator(d)) {
                only_period = only_period && d == '.';
                periods += d == '.';
            } else if (!is_closer(d)) {
                break;
            }
            j += len;
        }
        if (j == s->n || (s->buf[j] == ' ' && j + 1 == s->n)) {
            if (!final)
                return SCAN_WAIT;
            *end = j;
            *next = j < s->n ? j + 1 : j;
            return SCAN_END;
        }
        if (s->buf[j] == '\n') {
            *end = j;
            *next = j + 1;
            return SCAN_END;
        }
        if (s->buf[j] != ' ') { /* 3.5, example.com, "?x" */
            i = j;
            continue;
        }
        ucs4_t after = char_at(s, j + 1, &len);
        bool ends = !uc_is_lower(after);
        if (ends && only_period && periods == 1 && is_abbreviation(s, first))
            ends = false;
        if (ends) {
            *end = j;
            *next = j + 1;
            return SCAN_END;
        }
        i = j;
    }
    return SCAN_NONE;
}

/* ---- handing sentences on -------------------------------------------------------------------- */

/* Hands on buf[0, end) (if it has a letter or digit) and drops buf[0, next). */
static sg_status emit(sg_sentences *s, size_t end, size_t next, sg_sentence_fn fn, void *user,
                      sg_error *err)
{
    while (end > 0 && (s->buf[end - 1] == ' ' || s->buf[end - 1] == '\n'))
        end--;
    size_t start = 0;
    while (start < end && s->buf[start] == ' ')
        start++;
    bool speakable = false;
    for (size_t i = start, len; i < end && !speakable; i += len) {
        ucs4_t c = char_at(s, i, &len);
        speakable = uc_is_alnum(c);
    }
    sg_status st = SG_OK;
    if (speakable) {
        memcpy(s->out, s->buf + start, end - start);
        s->out[end - start] = 0;
        s->count++;
        st = fn(user, s->out, end - start, err);
    }
    /* the next sentence starts after the separator, without leading spaces */
    while (next < s->n && s->buf[next] == ' ')
        next++;
    memmove(s->buf, s->buf + next, s->n - next);
    s->n -= next;
    return st;
}

/* Hands on every sentence the buffer completes, and cuts one that has grown to the limit. */
static sg_status drain(sg_sentences *s, bool final, sg_sentence_fn fn, void *user, sg_error *err)
{
    for (;;) {
        size_t end, next;
        int r = scan(s, final, &end, &next);
        if (r == SCAN_END) {
            sg_status st = emit(s, end, next, fn, user, err);
            if (st != SG_OK)
                return st;
            continue;
        }
        if (s->n >= s->max) {
            /* too long without an end: cut at the last space before the limit, else at the last
             * character boundary */
            size_t cut = s->max < s->n ? s->max : s->n - 1;
            while (cut > 0 && s->buf[cut] != ' ')
                cut--;
            if (cut == 0) {
                cut = s->max;
                while (cut > 0 && cut < s->n && ((uint8_t)s->buf[cut] & 0xC0) == 0x80)
                    cut--;
            }
            sg_status st = emit(s, cut, cut, fn, user, err);
            if (st != SG_OK)
                return st;
            continue;
        }
        if (final && s->n > 0) {
            sg_status st = emit(s, s->n, s->n, fn, user, err);
            if (st != SG_OK)
                return st;
        }
        return SG_OK;
    }
}

/* Appends one decoded character (normalising white space) and drains. */
static sg_status push_char(sg_sentences *s, ucs4_t c, sg_sentence_fn fn, void *user, sg_error *err)
{
    char last = s->n ? s->buf[s->n - 1] : '\n';
    if (is_newline(c)) {
        if (last == '\n')
            return SG_OK;
        if (last == ' ')
            s->n--;
        s->buf[s->n++] = '\n';
    } else if (is_space_char(c)) {
        if (last == ' ' || last == '\n')
            return SG_OK;
        s->buf[s->n++] = ' ';
    } else {
        int l = u8_uctomb((uint8_t *)s->buf + s->n, c, 4);
        if (l <= 0)
            l = u8_uctomb((uint8_t *)s->buf + s->n, 0xFFFD, 4);
        s->n += (size_t)l;
    }
    return drain(s, false, fn, user, err);
}

sg_status sg_sentences_feed(sg_sentences *s, const char *piece, size_t len, sg_sentence_fn fn,
                            void *user, sg_error *err)
{
    const uint8_t *p = (const uint8_t *)piece;
    for (size_t i = 0; i < len; i++) {
        uint8_t b = p[i];
        if (s->npend > 0) {
            if ((b & 0xC0) == 0x80) {
                s->pend[s->npend++] = b;
                if (s->npend < s->need)
                    continue;
                ucs4_t c;
                int l = u8_mbtouc(&c, s->pend, s->npend);
                s->npend = 0;
                /* overlong forms and surrogates decode to U+FFFD: they are invalid */
                sg_status st = push_char(s, l == (int)s->need ? c : 0xFFFD, fn, user, err);
                if (st != SG_OK)
                    return st;
                continue;
            }
            /* the sequence broke off: it was invalid; b starts afresh */
            s->npend = 0;
            sg_status st = push_char(s, 0xFFFD, fn, user, err);
            if (st != SG_OK)
                return st;
        }
        size_t need = b < 0x80 ? 1 : (b & 0xE0) == 0xC0 ? 2 : (b & 0xF0) == 0xE0 ? 3
                    : (b & 0xF8) == 0xF0 ? 4 : 0;
        if (need == 1 || need == 0) {
            sg_status st = push_char(s, need ? b : 0xFFFD, fn, user, err);
            if (st != SG_OK)
                return st;
            continue;
        }
        s->pend[0] = b;
        s->npend = 1;
        s->need = need;
    }
    return SG_OK;
}

sg_status sg_sentences_finish(sg_sentences *s, sg_sentence_fn fn, void *user, sg_error *err)
{
    sg_status st = SG_OK;
    if (s->npend > 0) {
        s->npend = 0;
        st = push_char(s, 0xFFFD, fn, user, err);
    }
    if (st == SG_OK)
        st = drain(s, true, fn, user, err);
    sg_sentences_reset(s);
    return st;
}
