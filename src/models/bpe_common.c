/* What CLIP's and GPT-2's BPE tokenizers share: character classes, GPT-2's byte table, the pair
 * table with its merges.txt reader, and the merge engine. libunistring 1.0 has the Unicode 14.0
 * tables while Debian 12's python3-regex, the reference the tokenizers are tested against, has
 * 15.0; the letters and numbers 15.0 added are listed here by hand (checked against regex for all
 * 0x110000 code points). 15.0 added no White_Space characters. */
#include "models/bpe_common.h"

#include <stdlib.h>
#include <string.h>

#include <unictype.h>

int sg_bpe_is_space(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

typedef struct cp_range {
    uint32_t lo, hi;
} cp_range;

/* Letters and numbers new in Unicode 15.0 (unassigned in 14.0), all above U+11000. */
static const cp_range unicode15_letters[] = {
    {0x1123F, 0x11240}, {0x11F02, 0x11F02}, {0x11F04, 0x11F10}, {0x11F12, 0x11F33},
    {0x1342F, 0x1342F}, {0x13441, 0x13446}, {0x1B132, 0x1B132}, {0x1B155, 0x1B155},
    {0x1DF25, 0x1DF2A}, {0x1E030, 0x1E06D}, {0x1E4D0, 0x1E4EB}, {0x2B739, 0x2B739},
    {0x31350, 0x323AF}};
static const cp_range unicode15_numbers[] = {
    {0x11F50, 0x11F59}, {0x1D2C0, 0x1D2D3}, {0x1E4F0, 0x1E4F9}};

static int in_ranges(uint32_t c, const cp_range *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (c >= r[i].lo && c <= r[i].hi)
            return 1;
    return 0;
}

int sg_bpe_is_letter(uint32_t c)
{
    if (c < 0x80)
        return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
    return uc_is_general_category(c, UC_CATEGORY_L) ||
           (c >= 0x11000 && in_ranges(c, unicode15_letters,
                                      sizeof unicode15_letters / sizeof *unicode15_letters));
}

int sg_bpe_is_number(uint32_t c)
{
    if (c < 0x80)
        return c >= '0' && c <= '9';
    return uc_is_general_category(c, UC_CATEGORY_N) ||
           (c >= 0x11000 && in_ranges(c, unicode15_numbers,
                                      sizeof unicode15_numbers / sizeof *unicode15_numbers));
}

/* The 68 bytes without a printable stand-in are 0x00..0x20, 0x7F..0xA0 and 0xAD, numbered from
 * U+0100 in that order. */
uint32_t sg_bpe_byte_char(uint8_t b)
{
    if (b <= 0x20)
        return 0x100u + b;
    if (b >= 0x7F && b <= 0xA0)
        return 0x121u + (uint32_t)(b - 0x7F);
    if (b == 0xAD)
        return 0x143;
    return b;
}

int sg_bpe_char_byte(uint32_t c)
{
    if ((c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF))
        return (int)c;
    if (c >= 0x100 && c <= 0x120)
        return (int)(c - 0x100);
    if (c >= 0x121 && c <= 0x142)
        return (int)(c - 0x121 + 0x7F);
    if (c == 0x143)
        return 0xAD;
    return -1;
}

/* ---------------------------------------------------------------------------------------------
 * Vocabulary file lines */

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

int sg_bpe_split_fields(const char *line, size_t n, const char **field, size_t *field_len,
                        int max)
{
    int count = 0;
    for (size_t i = 0; i < n;) {
        while (i < n && is_blank(line[i]))
            i++;
        if (i == n)
            break;
        size_t start = i;
        while (i < n && !is_blank(line[i]))
            i++;
        if (count < max) {
            field[count] = line + start;
            field_len[count] = i - start;
        }
        count++;
    }
    return count;
}

/* ---------------------------------------------------------------------------------------------
 * The pair table */

#define PAIR_EMPTY UINT64_MAX

static uint64_t pair_key(int32_t left, int32_t right)
{
    return (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
}

static size_t pair_home(const sg_bpe_pairs *p, uint64_t key)
{
    return (size_t)((key * 0x9E3779B97F4A7C15u) >> p->shift);
}

static sg_bpe_pair *pair_slot(const sg_bpe_pairs *p, uint64_t key)
{
    size_t i = pair_home(p, key);
    while (p->slots[i].key != PAIR_EMPTY && p->slots[i].key != key)
        i = (i + 1) & p->mask;
    return &p->slots[i];
}

static const sg_bpe_pair *pair_find(const sg_bpe_pairs *p, int32_t left, int32_t right)
{
    uint64_t key = pair_key(left, right);
    for (size_t i = pair_home(p, key);; i = (i + 1) & p->mask) {
        if (p->slots[i].key == key)
            return &p->slots[i];
        if (p->slots[i].key == PAIR_EMPTY)
            return NULL;
    }
}

/* Moves the pairs to a table of 2^bits slots. */
static int pairs_resize(sg_bpe_pairs *p, unsigned bits)
{
    size_t cap = (size_t)1 << bits;
    sg_bpe_pairs bigger = {malloc(cap * sizeof *p->slots), cap - 1, p->count, 64 - bits};
    if (!bigger.slots)
        return 0;
    for (size_t i = 0; i < cap; i++)
        bigger.slots[i].key = PAIR_EMPTY;
    for (size_t i = 0; p->slots && i <= p->mask; i++)
        if (p->slots[i].key != PAIR_EMPTY)
            *pair_slot(&bigger, p->slots[i].key) = p->slots[i];
    free(p->slots);
    *p = bigger;
    return 1;
}

int sg_bpe_pairs_reserve(sg_bpe_pairs *p, size_t n)
{
    unsigned bits = 4;
    while (((size_t)1 << bits) < 2 * n)
        bits++;
    return (p->slots && p->mask + 1 >= ((size_t)1 << bits)) || pairs_resize(p, bits);
}

int sg_bpe_pairs_put(sg_bpe_pairs *p, int32_t left, int32_t right, int32_t rank, int32_t merged)
{
    if (!p->slots || 2 * (p->count + 1) > p->mask + 1) {
        if (!pairs_resize(p, p->slots ? 65 - p->shift : 4))
            return 0;
    }
    uint64_t key = pair_key(left, right);
    sg_bpe_pair *s = pair_slot(p, key);
    p->count += s->key == PAIR_EMPTY;
    *s = (sg_bpe_pair){key, rank, merged};
    return 1;
}

void sg_bpe_pairs_free(sg_bpe_pairs *p)
{
    free(p->slots);
    *p = (sg_bpe_pairs){0};
}

sg_status sg_bpe_pairs_read_merges(sg_bpe_pairs *p, const char *text, size_t len,
                                   const char *path, size_t max_merges, sg_bpe_symbol_id id_of,
                                   const void *vocab, sg_error *err)
{
    while (len > 0 && (is_blank(text[len - 1]) || text[len - 1] == '\n'))
        len--;
    size_t pos = len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
    if (len - pos < 8 || memcmp(text + pos, "#version", 8) != 0)
        return sg_error_set(err, SG_EINVAL, "%s: first line is not a #version header", path);
    const char *nl = memchr(text + pos, '\n', len - pos);
    pos = nl ? (size_t)(nl - text) + 1 : len;
    size_t lines = pos < len; /* a table of the right size at once, rather than grown */
    for (const char *c = text + pos; (c = memchr(c, '\n', (size_t)(text + len - c))) != NULL; c++)
        lines++;
    char *concat = malloc(len + 1);
    if (!concat || !sg_bpe_pairs_reserve(p, lines < max_merges ? lines : max_merges)) {
        free(concat);
        return sg_error_set(err, SG_ENOMEM, "out of memory loading %s", path);
    }
    sg_status st = SG_OK;
    for (size_t rank = 0; pos < len && rank < max_merges && st == SG_OK; rank++) {
        if (rank >= (size_t)INT32_MAX - 2) {
            st = sg_error_set(err, SG_ETOOBIG, "%s: too many merges", path);
            break;
        }
        int line_no = (int)rank + 2;
        nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        const char *field[2];
        size_t field_len[2];
        if (sg_bpe_split_fields(text + pos, end - pos, field, field_len, 2) != 2) {
            st = sg_error_set(err, SG_EINVAL, "%s line %d: expected two symbols", path, line_no);
            break;
        }
        memcpy(concat, field[0], field_len[0]);
        memcpy(concat + field_len[0], field[1], field_len[1]);
        int32_t left = id_of(vocab, field[0], field_len[0]);
        int32_t right = id_of(vocab, field[1], field_len[1]);
        int32_t merged = id_of(vocab, concat, field_len[0] + field_len[1]);
        if (left < 0 || right < 0 || merged < 0) {
            size_t bad_len = left < 0    ? field_len[0]
                             : right < 0 ? field_len[1]
                                         : field_len[0] + field_len[1];
            st = sg_error_set(err, SG_EINVAL, "%s line %d: \"%.*s\" is not in the vocabulary",
                              path, line_no, bad_len > 64 ? 64 : (int)bad_len,
                              left < 0 ? field[0] : right < 0 ? field[1] : concat);
        } else if (!sg_bpe_pairs_put(p, left, right, (int32_t)rank, merged)) {
            st = sg_error_set(err, SG_ENOMEM, "out of memory loading %s", path);
        }
        pos = end + 1;
    }
    free(concat);
    return st;
}

/* ---------------------------------------------------------------------------------------------
 * The merge engine. A merge changes only the pairs on either side of it, which are updated in
 * place in the heap, so the heap never holds more than m entries and never a stale one. */

#define WORK_ARRAYS 8

/* The work's int32_t arrays, for growing and freeing them alike. */
static void work_arrays(sg_bpe_work *w, int32_t **arrays[WORK_ARRAYS])
{
    int32_t **all[WORK_ARRAYS] = {&w->id,     &w->next, &w->prev, &w->rank,
                                  &w->merged, &w->heap, &w->slot, &w->batch};
    memcpy(arrays, all, sizeof all);
}

int sg_bpe_work_grow(sg_bpe_work *w, size_t m)
{
    size_t cap = w->cap ? w->cap : 256;
    while (cap < m)
        cap *= 2;
    uint8_t *bytes = realloc(w->bytes, cap);
    if (!bytes)
        return 0;
    w->bytes = bytes;
    int32_t **arrays[WORK_ARRAYS];
    work_arrays(w, arrays);
    for (size_t k = 0; k < WORK_ARRAYS; k++) {
        int32_t *a = realloc(*arrays[k], cap * sizeof *a);
        if (!a)
            return 0;
        *arrays[k] = a;
    }
    w->cap = cap;
    return 1;
}

void sg_bpe_work_release(sg_bpe_work *w)
{
    int32_t **arrays[WORK_ARRAYS];
    work_arrays(w, arrays);
    for (size_t k = 0; k < WORK_ARRAYS; k++)
        free(*arrays[k]);
    free(w->bytes);
    *w = (sg_bpe_work){0};
}

static int heap_less(const sg_bpe_work *w, int32_t a, int32_t b)
{
    return w->rank[a] < w->rank[b] || (w->rank[a] == w->rank[b] && a < b);
}

static void heap_place(sg_bpe_work *w, size_t i, int32_t pos)
{
    w->heap[i] = pos;
    w->slot[pos] = (int32_t)i;
}

/* Moves the entry at heap index i up or down to where its key now belongs. */
static void heap_fix(sg_bpe_work *w, size_t i)
{
    int32_t pos = w->heap[i];
    while (i > 0 && heap_less(w, pos, w->heap[(i - 1) / 2])) {
        heap_place(w, i, w->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= w->heap_n)
            break;
        if (child + 1 < w->heap_n && heap_less(w, w->heap[child + 1], w->heap[child]))
            child++;
        if (!heap_less(w, w->heap[child], pos))
            break;
        heap_place(w, i, w->heap[child]);
        i = child;
    }
    heap_place(w, i, pos);
}

static void heap_remove(sg_bpe_work *w, int32_t pos)
{
    int32_t i = w->slot[pos];
    if (i < 0)
        return;
    w->slot[pos] = -1;
    int32_t last = w->heap[--w->heap_n];
    if (last != pos) {
        heap_place(w, (size_t)i, last);
        heap_fix(w, (size_t)i);
    }
}

/* Puts the pair (pos, next[pos]) in the heap, or takes pos out if the pair cannot merge. */
static void update_pair(const sg_bpe_pairs *p, sg_bpe_work *w, int32_t pos)
{
    int32_t right = w->next[pos];
    const sg_bpe_pair *pair = right >= 0 ? pair_find(p, w->id[pos], w->id[right]) : NULL;
    if (!pair) {
        heap_remove(w, pos);
        return;
    }
    w->rank[pos] = pair->rank;
    w->merged[pos] = pair->merged;
    if (w->slot[pos] < 0) {
        w->slot[pos] = (int32_t)w->heap_n;
        w->heap[w->heap_n++] = pos;
    }
    heap_fix(w, (size_t)w->slot[pos]);
}

/* Merges the symbol at pos with its right neighbour (the pair the heap holds for pos). */
static inline void merge_at(const sg_bpe_pairs *p, sg_bpe_work *w, int32_t pos)
{
    int32_t right = w->next[pos], after = w->next[right];
    heap_remove(w, right);
    w->id[pos] = w->merged[pos];
    w->id[right] = -1;
    w->next[pos] = after;
    if (after >= 0)
        w->prev[after] = pos;
    update_pair(p, w, pos);
    if (w->prev[pos] >= 0)
        update_pair(p, w, w->prev[pos]);
}

/* A piece of one or two bytes: at most one pair, so no list and no heap (most pieces are short,
 * and for them the set-up would cost more than the merging). */
static size_t merge_short(const sg_bpe_rules *r, const uint8_t *s, size_t m, int32_t *out,
                          size_t room)
{
    int32_t first = m == 1 && r->end_of_word ? r->last_byte_id[s[0]] : r->byte_id[s[0]];
    if (m == 1 || room == 0) {
        if (room > 0)
            out[0] = first;
        return room > 0;
    }
    int32_t second = r->end_of_word ? r->last_byte_id[s[1]] : r->byte_id[s[1]];
    const sg_bpe_pair *pair = r->pairs.slots ? pair_find(&r->pairs, first, second) : NULL;
    if (pair) {
        out[0] = pair->merged;
        return 1;
    }
    out[0] = first;
    if (room == 1)
        return 1;
    out[1] = second;
    return 2;
}

size_t sg_bpe_merge(const sg_bpe_rules *r, sg_bpe_work *w, const uint8_t *s, size_t m,
                    int32_t *out, size_t room)
{
    if (m <= 2)
        return merge_short(r, s, m, out, room);
    const sg_bpe_pairs *p = &r->pairs;
    for (size_t k = 0; k < m; k++) {
        w->id[k] = r->byte_id[s[k]];
        w->next[k] = (int32_t)k + 1;
        w->prev[k] = (int32_t)k - 1;
        w->slot[k] = -1;
    }
    if (r->end_of_word)
        w->id[m - 1] = r->last_byte_id[s[m - 1]];
    w->next[m - 1] = -1;
    w->heap_n = 0;
    if (p->slots) /* none: no pairs at all */
        for (size_t k = 0; k + 1 < m; k++)
            update_pair(p, w, (int32_t)k);
    if (r->order == SG_BPE_PAIR_AT_A_TIME) {
        while (w->heap_n > 0)
            merge_at(p, w, w->heap[0]);
    } else {
        /* Take every position of the lowest rank out first (in position order, as the heap
         * gives them), so that pairs those merges make wait for the next round whatever their
         * rank. A pending position is still a live symbol unless an earlier merge of the round
         * swallowed it (id -1); nothing else can change its pair before its turn. */
        while (w->heap_n > 0) {
            int32_t rank = w->rank[w->heap[0]];
            size_t taken = 0;
            while (w->heap_n > 0 && w->rank[w->heap[0]] == rank) {
                w->batch[taken++] = w->heap[0];
                heap_remove(w, w->heap[0]);
            }
            for (size_t k = 0; k < taken; k++)
                if (w->id[w->batch[k]] >= 0)
                    merge_at(p, w, w->batch[k]);
        }
    }
    size_t n = 0;
    for (int32_t pos = 0; pos >= 0 && n < room; pos = w->next[pos])
        out[n++] = w->id[pos];
    return n;
}
