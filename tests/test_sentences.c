/* Tests of the sentence feeder (agent/sentences.h): where sentences end in tricky text
 * (abbreviations, decimals, ellipses, ?!, closing quotes, lists, newlines), that a sentence is
 * handed on as soon as the characters deciding it arrive, that feeding any pieces gives the same
 * sentences as feeding the whole, and the bounds (long sentences cut, invalid UTF-8, nothing for
 * empty or punctuation-only text). */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "agent/sentences.h"
#include "base/utf8.h"
#include "check.h"

#define MAXS 512

typedef struct list {
    char *s[MAXS];
    size_t n;
    size_t stop_after; /* return SG_ETOOBIG after this many (0: never) */
} list;

static sg_status collect(void *user, const char *sentence, size_t len, sg_error *err)
{
    list *l = user;
    if (strlen(sentence) != len)
        return sg_error_set(err, SG_EINTERNAL, "len mismatch");
    if (l->n < MAXS)
        l->s[l->n++] = strdup(sentence);
    if (l->stop_after && l->n >= l->stop_after)
        return sg_error_set(err, SG_ETOOBIG, "enough");
    return SG_OK;
}

static void list_free(list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->s[i]);
    l->n = 0;
}

/* Feeds text in pieces of the given sizes (cycled; NULL = whole) and finishes. */
static void run(const char *text, size_t max, const size_t *sizes, size_t nsizes, list *out)
{
    memset(out, 0, sizeof *out);
    sg_sentences *s = sg_sentences_new(max);
    sg_error err = {0};
    size_t len = strlen(text), at = 0, k = 0;
    while (at < len) {
        size_t step = sizes ? sizes[k++ % nsizes] : len;
        if (step > len - at)
            step = len - at;
        CHECK(sg_sentences_feed(s, text + at, step, collect, out, &err) == SG_OK);
        at += step;
    }
    CHECK(sg_sentences_finish(s, collect, out, &err) == SG_OK);
    sg_sentences_free(s);
}

static bool same(const list *a, const list *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->s[i], b->s[i]) != 0)
            return false;
    return true;
}

/* The sentences of text (fed whole) must be exactly want[0..nwant), and feeding it byte by byte or
 * in pieces of 2, 3, 5 and 7 bytes must give the same. */
static void expect(const char *text, const char *const *want, size_t nwant)
{
    list whole;
    run(text, 0, NULL, 0, &whole);
    bool ok = whole.n == nwant;
    for (size_t i = 0; ok && i < nwant; i++)
        ok = strcmp(whole.s[i], want[i]) == 0;
    CHECK_MSG(ok, "text \"%s\": got %zu sentences", text, whole.n);
    if (!ok)
        for (size_t i = 0; i < whole.n; i++)
            fprintf(stderr, "   [%zu] \"%s\"\n", i, whole.s[i]);
    static const size_t one[] = {1}, mixed[] = {2, 3, 5, 7};
    list pieces;
    run(text, 0, one, 1, &pieces);
    CHECK_MSG(same(&whole, &pieces), "byte by byte differs for \"%s\"", text);
    list_free(&pieces);
    run(text, 0, mixed, 4, &pieces);
    CHECK_MSG(same(&whole, &pieces), "pieces differ for \"%s\"", text);
    list_free(&pieces);
    list_free(&whole);
}

#define EXPECT(text, ...)                                                                   \
    do {                                                                                    \
        static const char *const want_[] = {__VA_ARGS__};                                   \
        expect(text, want_, sizeof want_ / sizeof *want_);                                  \
    } while (0)

static void test_rules(void)
{
    EXPECT("Hello world. How are you? I'm fine!", "Hello world.", "How are you?", "I'm fine!");
    EXPECT("Dr. Smith went to Washington. He arrived at 3.5 p.m. on Friday.",
           "Dr. Smith went to Washington.", "He arrived at 3.5 p.m. on Friday.");
    EXPECT("Use a tool, e.g. Hammers work. Mr. and Mrs. Jones agree.",
           "Use a tool, e.g. Hammers work.", "Mr. and Mrs. Jones agree.");
    EXPECT("It costs $3.50 today. Visit example.com now.", "It costs $3.50 today.",
           "Visit example.com now.");
    EXPECT("Wait... what happened? Well\xe2\x80\xa6 I don't know.", "Wait... what happened?",
           "Well\xe2\x80\xa6", "I don't know.");
    EXPECT("I see. And then... Nothing.", "I see.", "And then...", "Nothing.");
    EXPECT("She said \"Stop!\" Then she left.", "She said \"Stop!\"", "Then she left.");
    EXPECT("He asked (quietly.) Nobody answered.", "He asked (quietly.)", "Nobody answered.");
    EXPECT("It was \xe2\x80\x9cgreat.\xe2\x80\x9d Really?! Yes!!", "It was \xe2\x80\x9cgreat.\xe2\x80\x9d",
           "Really?!", "Yes!!");
    EXPECT("J. R. R. Tolkien wrote it. The end", "J. R. R. Tolkien wrote it.", "The end");
    EXPECT("Items:\n- eggs\n- milk\n\nDone", "Items:", "- eggs", "- milk", "Done");
    EXPECT("1. Go north.\n2. Turn left. Then stop.", "1. Go north.", "2. Turn left.", "Then stop.");
    EXPECT("No terminator at the end", "No terminator at the end");
    EXPECT("   lots   of\t\tspace   here.   ", "lots of space here.");
    EXPECT("Version 2.0.1 is out. Go", "Version 2.0.1 is out.", "Go");
    EXPECT("Why? because.", "Why? because.");
    /* nothing to speak */
    list l;
    run("", 0, NULL, 0, &l);
    CHECK_EQ_INT(l.n, 0);
    run("   \n\t \r\n  ", 0, NULL, 0, &l);
    CHECK_EQ_INT(l.n, 0);
    run("... !! ?\n- *", 0, NULL, 0, &l);
    CHECK_EQ_INT(l.n, 0);
    EXPECT("... Hello.", "Hello.");
}

/* A sentence is handed on once the characters after its end arrive, not later. */
static void test_prompt(void)
{
    sg_sentences *s = sg_sentences_new(0);
    sg_error err = {0};
    list l = {0};
    CHECK(sg_sentences_feed(s, "Hello world.", 12, collect, &l, &err) == SG_OK);
    CHECK_EQ_INT(l.n, 0); /* "world." might be followed by a closing quote or ".com" */
    CHECK(sg_sentences_feed(s, " ", 1, collect, &l, &err) == SG_OK);
    CHECK_EQ_INT(l.n, 0); /* "Hello world. and" would go on */
    CHECK(sg_sentences_feed(s, "The", 3, collect, &l, &err) == SG_OK);
    CHECK_EQ_INT(l.n, 1);
    CHECK(l.n == 1 && strcmp(l.s[0], "Hello world.") == 0);
    CHECK(sg_sentences_feed(s, " next one", 9, collect, &l, &err) == SG_OK);
    CHECK_EQ_INT(l.n, 1);
    CHECK(sg_sentences_finish(s, collect, &l, &err) == SG_OK);
    CHECK(l.n == 2 && strcmp(l.s[1], "The next one") == 0);
    CHECK_EQ_INT(sg_sentences_count(s), 2);
    list_free(&l);
    /* the feeder is reusable after finish */
    CHECK(sg_sentences_feed(s, "Again.\n", 7, collect, &l, &err) == SG_OK);
    CHECK(l.n == 1 && strcmp(l.s[0], "Again.") == 0);
    list_free(&l);
    /* a callback's error stops the feed and comes back */
    sg_sentences_reset(s);
    l.stop_after = 2;
    CHECK(sg_sentences_feed(s, "One. Two. Three. Four.", 22, collect, &l, &err) == SG_ETOOBIG);
    CHECK_EQ_INT(l.n, 2);
    list_free(&l);
    sg_sentences_free(s);
    CHECK(sg_sentences_new(5) == NULL);
    CHECK(sg_sentences_new(SG_SENTENCE_LIMIT_BYTES + 1) == NULL);
}

/* Long text without ends is cut at spaces (or character boundaries) within the limit. */
static void test_bounds(void)
{
    char text[4096];
    size_t o = 0;
    for (int i = 0; o + 16 < sizeof text; i++)
        o += (size_t)snprintf(text + o, sizeof text - o, "word%d ", i);
    text[o] = 0;
    list l;
    run(text, 100, NULL, 0, &l);
    CHECK(l.n >= 30);
    /* every piece within the limit, and together they are the words of the text in order */
    char joined[4096];
    size_t j = 0;
    bool within = true;
    for (size_t i = 0; i < l.n; i++) {
        within = within && strlen(l.s[i]) <= 100 && l.s[i][0] != ' ';
        j += (size_t)snprintf(joined + j, sizeof joined - j, "%s ", l.s[i]);
    }
    CHECK(within);
    CHECK(strcmp(joined, text) == 0);
    list_free(&l);

    /* one long word: cut at the limit, and multi-byte characters are never split */
    char word[2048];
    for (int i = 0; i < 600; i++)
        memcpy(word + 2 * i, "\xc3\xa9", 2);
    word[1200] = 0;
    run(word, 65, NULL, 0, &l);
    size_t total = 0;
    bool valid = true;
    for (size_t i = 0; i < l.n; i++) {
        size_t n = strlen(l.s[i]);
        valid = valid && n <= 65 && sg_utf8_valid((const unsigned char *)l.s[i], n);
        total += n;
    }
    CHECK(valid);
    CHECK_EQ_INT(total, 1200);
    list_free(&l);

    /* invalid UTF-8 becomes U+FFFD, a truncated sequence at the end too */
    EXPECT("Bad \xff byte. Next \xc3", "Bad \xef\xbf\xbd byte.", "Next \xef\xbf\xbd");
    EXPECT("Over\xc0\xaflong. A \xed\xa0\x80 surrogate.", "Over\xef\xbf\xbdlong.",
           "A \xef\xbf\xbd surrogate.");

    /* a large input in one piece is linear, not quadratic, in CPU time */
    size_t big = 1 << 20;
    char *huge = malloc(big + 1);
    for (size_t i = 0; i < big; i++)
        huge[i] = "abc def. Gh ij? kl"[i % 18];
    huge[big] = 0;
    double t0 = check_thread_cpu_s();
    list many = {0};
    sg_sentences *s = sg_sentences_new(0);
    sg_error err;
    CHECK(sg_sentences_feed(s, huge, big, collect, &many, &err) == SG_OK);
    CHECK(sg_sentences_count(s) > 50000);
    sg_sentences_free(s);
    CHECK_MSG(check_thread_cpu_s() - t0 < 10.0, "1 MB took %.1f s of CPU", check_thread_cpu_s() - t0);
    list_free(&many);
    free(huge);
}

/* Random text from tricky fragments: whole and pieces agree, every sentence is clean. */
static void test_random(void)
{
    static const char *const frags[] = {
        "Dr.", " ", "Hello", ".", "?", "!", "...", "\xe2\x80\xa6", "\"", "\xe2\x80\x9d", ")", "3",
        ".5", "e.g.", "\n", "\n\n", "  ", "the", "The", "\t", "\xc3\xa9", "\xff", "\xe2\x80",
        "word", "A.", "1.", "x"};
    uint32_t seed = 12345;
    for (int round = 0; round < 300; round++) {
        char text[600];
        size_t o = 0;
        int nf = 5 + round % 60;
        for (int k = 0; k < nf; k++) {
            seed = seed * 1103515245u + 12345u;
            const char *f = frags[(seed >> 16) % (sizeof frags / sizeof *frags)];
            size_t fl = strlen(f);
            if (o + fl >= sizeof text)
                break;
            memcpy(text + o, f, fl);
            o += fl;
        }
        text[o] = 0;
        size_t max = 16 + round % 40;
        list whole, pieces;
        run(text, max, NULL, 0, &whole);
        static const size_t one[] = {1}, mixed[] = {3, 1, 4, 1, 5};
        run(text, max, round % 2 ? one : mixed, round % 2 ? 1 : 5, &pieces);
        CHECK_MSG(same(&whole, &pieces), "round %d: pieces differ", round);
        bool clean = true;
        for (size_t i = 0; i < whole.n; i++) {
            size_t n = strlen(whole.s[i]);
            clean = clean && n > 0 && n <= max && whole.s[i][0] != ' ' &&
                    whole.s[i][n - 1] != ' ' && !strchr(whole.s[i], '\n') &&
                    sg_utf8_valid((const unsigned char *)whole.s[i], n);
        }
        CHECK_MSG(clean, "round %d: a sentence is not clean", round);
        list_free(&whole);
        list_free(&pieces);
    }
}

int main(void)
{
    test_rules();
    test_prompt();
    test_bounds();
    test_random();
    return check_report("test_sentences");
}
