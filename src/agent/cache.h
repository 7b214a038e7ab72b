/* The response cache: answers of the language backend, kept in an LRU keyed by the normalised
 * prompt (system prompt + prompt, trimmed, whitespace runs collapsed to one space, lower-cased)
 * plus max_tokens, so a repeated question is answered without generating again (greedy
 * generation is deterministic, so a hit is exactly what generation would say, up to the
 * normalisation). Bounded by a number of entries (SG_CACHE_ENTRIES, default 256; 0 turns it
 * off). Thread-safe: one mutex around the table. */
#ifndef SG_AGENT_CACHE_H
#define SG_AGENT_CACHE_H

#include <stddef.h>
#include <stdint.h>

#define SG_CACHE_DEFAULT_ENTRIES 256

typedef struct sg_cache sg_cache;

typedef struct sg_cache_stats {
    uint64_t hits, misses, insertions, evictions;
    size_t entries, capacity;
} sg_cache_stats;

/* A cache of at most max_entries answers (0: keeps nothing, every lookup misses). NULL when out
 * of memory. */
sg_cache *sg_cache_new(size_t max_entries);
void sg_cache_free(sg_cache *c);

/* A malloc'ed copy of the answer cached for (system, prompt, max_tokens), which becomes the most
 * recently used entry; NULL on a miss (or out of memory). system may be NULL. */
char *sg_cache_get(sg_cache *c, const char *system, const char *prompt, int max_tokens);
/* Stores a copy of text for the key, evicting the least recently used entry when full; replaces
 * an existing entry of the same key. Out of memory leaves the cache unchanged. */
void sg_cache_put(sg_cache *c, const char *system, const char *prompt, int max_tokens,
                  const char *text);
void sg_cache_get_stats(sg_cache *c, sg_cache_stats *out);

/* The normalisation of the key (malloc'ed; NULL when out of memory): leading and trailing white
 * space removed, every run of white space (Unicode White_Space, as libunistring classifies it)
 * replaced by one space, letters lower-cased (Unicode simple case mapping); invalid UTF-8 bytes
 * are kept as they are. Exposed for tests. */
char *sg_cache_normalize(const char *text);

/* SG_CACHE_ENTRIES as a capacity: unset or empty gives SG_CACHE_DEFAULT_ENTRIES; returns -1 for
 * a value that is not a whole number in 0..1000000. */
long sg_cache_entries_from_env(void);

#endif
