/* What the byte-level BPE tokenizers (GPT-2's and CLIP's) share: the character classes their
 * pre-tokenisation patterns are written in, as Debian 12's python3-regex sees them; GPT-2's
 * byte <-> printable-character table that Hugging Face vocab.json / merges.txt files spell tokens
 * with; the table of mergeable pairs and its merges.txt reader; and the merge engine itself. */
#ifndef SG_MODELS_BPE_COMMON_H
#define SG_MODELS_BPE_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

/* regex's \s: Unicode White_Space (not U+001C..U+001F, which Python's str.isspace() adds). */
int sg_bpe_is_space(uint32_t c);
/* \p{L} and \p{N}: libunistring 1.0's general categories (Unicode 14.0) plus the letters and
 * numbers Unicode 15.0 added, so that they agree with python3-regex 2022.10.31 (Unicode 15.0)
 * on every code point. */
int sg_bpe_is_letter(uint32_t c);
int sg_bpe_is_number(uint32_t c);

/* GPT-2's bytes_to_unicode(): the character that stands for byte b (printable Latin-1 bytes
 * stand for themselves, the other 68 get U+0100, U+0101, ... in byte order). */
uint32_t sg_bpe_byte_char(uint8_t b);
/* Its inverse: the byte character c stands for, or -1. */
int sg_bpe_char_byte(uint32_t c);

/* Splits line[0..n) at runs of blanks (space, \t, \r, \v, \f) into at most `max` fields;
 * returns how many fields there are (which may exceed max). */
int sg_bpe_split_fields(const char *line, size_t n, const char **field, size_t *field_len,
                        int max);

/* ---- Mergeable pairs: (left id, right id) -> (rank, id of the merged symbol) ----------------- */

typedef struct sg_bpe_pair {
    uint64_t key; /* left id << 32 | right id; UINT64_MAX: a free slot */
    int32_t rank;
    int32_t merged;
} sg_bpe_pair;

/* Zero-initialise; open addressing with linear probing and Fibonacci hashing, kept at most half
 * full. */
typedef struct sg_bpe_pairs {
    sg_bpe_pair *slots;
    size_t mask, count; /* capacity - 1 (a power of two), pairs held */
    unsigned shift;     /* 64 - log2(capacity) */
} sg_bpe_pairs;

/* Room for n pairs without growing (the table grows by itself too); 0 when out of memory. */
int sg_bpe_pairs_reserve(sg_bpe_pairs *p, size_t n);
/* Adds a pair; a pair added again keeps its later rank and merged id (as Python's
 * dict(zip(merges, ranks)) does). Returns 0 when out of memory. */
int sg_bpe_pairs_put(sg_bpe_pairs *p, int32_t left, int32_t right, int32_t rank, int32_t merged);
void sg_bpe_pairs_free(sg_bpe_pairs *p);

/* The id of symbol s[0..n) in a vocabulary, or -1. */
typedef int32_t (*sg_bpe_symbol_id)(const void *vocab, const char *s, size_t n);

/* Reads merges.txt (text[0..len), named path in messages) into p as Hugging Face does: an
 * optional UTF-8 BOM, a "#version" line, then one "left right" pair per line, ranked by its
 * place from 0, the two symbols and their concatenation all in vocab; blank lines at the end are
 * ignored and so is everything after the first max_merges pairs. Errors: SG_EINVAL (a bad line,
 * naming it), SG_ETOOBIG, SG_ENOMEM. */
sg_status sg_bpe_pairs_read_merges(sg_bpe_pairs *p, const char *text, size_t len,
                                   const char *path, size_t max_merges, sg_bpe_symbol_id id_of,
                                   const void *vocab, sg_error *err);

/* ---- The merge engine ---------------------------------------------------------------------- */

/* Which mergeable pair goes next. Both take the lowest rank; they differ only where a merge
 * makes a pair that ranks no higher than the one just merged, which real vocabularies never do. */
typedef enum sg_bpe_order {
    SG_BPE_PAIR_AT_A_TIME, /* tiktoken: the lowest-ranked pair (leftmost on a tie), then look
                              again */
    SG_BPE_RANK_AT_A_TIME, /* openai's bpe() (CLIP): every occurrence of the lowest-ranked pair,
                              left to right without overlap, before looking again */
} sg_bpe_order;

/* How a byte-level BPE merges a piece: each byte starts as its own symbol, then mergeable
 * adjacent pairs are merged in the given order until none is left. */
typedef struct sg_bpe_rules {
    int32_t byte_id[256];      /* the symbol byte b starts as */
    int32_t last_byte_id[256]; /* when end_of_word, the piece's last byte starts as this one
                                  instead (CLIP's symbols ending in "</w>") */
    bool end_of_word;
    sg_bpe_order order;
    sg_bpe_pairs pairs;
} sg_bpe_rules;

/* Scratch space for merging pieces, reused across them; zero-initialise, one per thread. Symbols
 * are a linked list over the positions of the piece's bytes (a symbol lives at its first byte);
 * the positions with a mergeable right neighbour sit in a min-heap keyed by (rank of that pair,
 * position), updated in place as merges change their neighbours, so a piece of m bytes costs
 * O(m log m). */
typedef struct sg_bpe_work {
    uint8_t *bytes;         /* for a caller that has to build the piece's bytes (CLIP) */
    int32_t *id;            /* symbol at each position; -1 once merged into its left neighbour */
    int32_t *next, *prev;   /* the symbol list; -1 at the ends */
    int32_t *rank, *merged; /* of the pair (p, next[p]) while p is in the heap */
    int32_t *heap, *slot;   /* heap of positions; slot[p] = index in heap or -1 */
    int32_t *batch;         /* SG_BPE_RANK_AT_A_TIME: the positions of the rank being merged */
    size_t cap, heap_n;
} sg_bpe_work;

/* Room for pieces of up to m bytes (m <= INT32_MAX); 0 when out of memory. Inline because it is
 * asked once per piece and nearly always already true. */
int sg_bpe_work_grow(sg_bpe_work *w, size_t m);
static inline int sg_bpe_work_reserve(sg_bpe_work *w, size_t m)
{
    return m <= w->cap || sg_bpe_work_grow(w, m);
}
void sg_bpe_work_release(sg_bpe_work *w);

/* Merges the piece s[0..m) (1 <= m, room reserved in w; s may be w->bytes) by the rules; writes
 * the first `room` ids of the result to out and returns how many it wrote. */
size_t sg_bpe_merge(const sg_bpe_rules *r, sg_bpe_work *w, const uint8_t *s, size_t m,
                    int32_t *out, size_t room);

#endif
