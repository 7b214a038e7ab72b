/* libFuzzer target for agent/sentences (the sentence feeder over generated, untrusted text): the
 * first byte picks the cut (16..271 bytes) and a split point; the rest is the text. Fed whole and
 * in two pieces (the second byte by byte) it must give the same sentences, each non-empty, within
 * the cut, trimmed, without newlines, and valid UTF-8. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/sentences.h"
#include "base/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct seen {
    char *all; /* the sentences joined by \x01 */
    size_t n, cap, max;
} seen;

static sg_status collect(void *user, const char *s, size_t len, sg_error *err)
{
    (void)err;
    seen *l = user;
    if (len == 0 || len > l->max || strlen(s) != len || s[0] == ' ' || s[len - 1] == ' ' ||
        memchr(s, '\n', len) || !sg_utf8_valid((const unsigned char *)s, len))
        abort();
    if (l->n + len + 1 > l->cap) {
        l->cap = (l->n + len + 1) * 2;
        l->all = realloc(l->all, l->cap);
        if (!l->all)
            abort();
    }
    memcpy(l->all + l->n, s, len);
    l->n += len;
    l->all[l->n++] = 1;
    return SG_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t max = 16 + data[0];
    size_t split = data[1] % (size - 1);
    const char *text = (const char *)data + 2;
    size_t len = size - 2;
    if (split > len)
        split = len;
    seen a = {.max = max}, b = {.max = max};
    sg_error err;
    sg_sentences *s = sg_sentences_new(max);
    if (!s)
        abort();
    if (sg_sentences_feed(s, text, len, collect, &a, &err) != SG_OK ||
        sg_sentences_finish(s, collect, &a, &err) != SG_OK)
        abort();
    if (sg_sentences_feed(s, text, split, collect, &b, &err) != SG_OK)
        abort();
    for (size_t i = split; i < len; i++)
        if (sg_sentences_feed(s, text + i, 1, collect, &b, &err) != SG_OK)
            abort();
    if (sg_sentences_finish(s, collect, &b, &err) != SG_OK)
        abort();
    if (a.n != b.n || (a.n && memcmp(a.all, b.all, a.n) != 0))
        abort();
    sg_sentences_free(s);
    free(a.all);
    free(b.all);
    return 0;
}
