/* The response cache: a chained hash table of keys (normalised text + max_tokens) over a doubly
 * linked recency list, all under one mutex. Entries own their key and answer. */
#include "agent/cache.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unicase.h>
#include <unictype.h>
#include <unistr.h>

typedef struct entry {
    char *key;           /* normalised "system\n\nprompt" */
    int max_tokens;
    uint64_t hash;
    char *text;
    struct entry *next;  /* hash chain */
    struct entry *newer, *older;
} entry;

struct sg_cache {
    pthread_mutex_t lock;
    size_t cap, count, nbuckets;
    entry **buckets;
    entry *newest, *oldest;
    sg_cache_stats st;
};

sg_cache *sg_cache_new(size_t max_entries)
{
    sg_cache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->cap = max_entries;
    c->nbuckets = 16;
    while (c->nbuckets < 2 * max_entries)
        c->nbuckets *= 2;
    c->buckets = calloc(c->nbuckets, sizeof *c->buckets);
    if (!c->buckets) {
        free(c);
        return NULL;
    }
    pthread_mutex_init(&c->lock, NULL);
    return c;
}

static void entry_free(entry *e)
{
    free(e->key);
    free(e->text);
    free(e);
}

void sg_cache_free(sg_cache *c)
{
    if (!c)
        return;
    for (entry *e = c->newest; e;) {
        entry *older = e->older;
        entry_free(e);
        e = older;
    }
    free(c->buckets);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

char *sg_cache_normalize(const char *text)
{
    if (!text)
        text = "";
    const size_t n = strlen(text);
    /* lower-casing can lengthen a character's encoding (a few code points go from 2 to 3 bytes) */
    char *out = malloc(n * 3 / 2 + 8);
    if (!out)
        return NULL;
    size_t o = 0;
    bool space = false; /* a space is pending (only emitted before the next non-space) */
    const uint8_t *s = (const uint8_t *)text, *end = s + n;
    while (s < end) {
        ucs4_t c;
        int len = u8_mbtoucr(&c, s, (size_t)(end - s));
        if (len < 0) { /* invalid or truncated: keep the byte */
            if (space && o > 0)
                out[o++] = ' ';
            space = false;
            out[o++] = (char)*s++;
            continue;
        }
        s += len;
        if (uc_is_property_white_space(c)) {
            space = true;
            continue;
        }
        if (space && o > 0)
            out[o++] = ' ';
        space = false;
        uint8_t buf[6];
        int w = u8_uctomb(buf, uc_tolower(c), (int)sizeof buf);
        if (w <= 0) { /* cannot happen for a valid scalar value; keep the original */
            memcpy(out + o, s - len, (size_t)len);
            o += (size_t)len;
        } else {
            memcpy(out + o, buf, (size_t)w);
            o += (size_t)w;
        }
    }
    out[o] = 0;
    return out;
}

/* FNV-1a over the key and max_tokens */
static uint64_t key_hash(const char *key, int max_tokens)
{
    uint64_t h = 1469598103934665603ull;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    for (int i = 0; i < 4; i++)
        h = (h ^ (unsigned char)((unsigned)max_tokens >> (8 * i))) * 1099511628211ull;
    return h;
}

static char *make_key(const char *system, const char *prompt)
{
    char *raw = NULL;
    if (asprintf(&raw, "%s\n\n%s", system ? system : "", prompt ? prompt : "") < 0)
        return NULL;
    char *key = sg_cache_normalize(raw);
    free(raw);
    return key;
}

static entry **find(sg_cache *c, const char *key, int max_tokens, uint64_t h)
{
    entry **pp = &c->buckets[h & (c->nbuckets - 1)];
    for (; *pp; pp = &(*pp)->next)
        if ((*pp)->hash == h && (*pp)->max_tokens == max_tokens && strcmp((*pp)->key, key) == 0)
            return pp;
    return pp;
}

static void unlink_recency(sg_cache *c, entry *e)
{
    if (e->newer)
        e->newer->older = e->older;
    else
        c->newest = e->older;
    if (e->older)
        e->older->newer = e->newer;
    else
        c->oldest = e->newer;
    e->newer = e->older = NULL;
}

static void push_newest(sg_cache *c, entry *e)
{
    e->older = c->newest;
    e->newer = NULL;
    if (c->newest)
        c->newest->newer = e;
    c->newest = e;
    if (!c->oldest)
        c->oldest = e;
}

char *sg_cache_get(sg_cache *c, const char *system, const char *prompt, int max_tokens)
{
    if (!c)
        return NULL;
    char *key = make_key(system, prompt);
    if (!key)
        return NULL;
    const uint64_t h = key_hash(key, max_tokens);
    char *out = NULL;
    pthread_mutex_lock(&c->lock);
    entry *e = c->cap ? *find(c, key, max_tokens, h) : NULL;
    if (e) {
        unlink_recency(c, e);
        push_newest(c, e);
        out = strdup(e->text);
    }
    if (out)
        c->st.hits++;
    else
        c->st.misses++;
    pthread_mutex_unlock(&c->lock);
    free(key);
    return out;
}

void sg_cache_put(sg_cache *c, const char *system, const char *prompt, int max_tokens,
                  const char *text)
{
    if (!c || c->cap == 0 || !text)
        return;
    char *key = make_key(system, prompt), *copy = strdup(text);
    entry *fresh = calloc(1, sizeof *fresh);
    if (!key || !copy || !fresh) {
        free(key);
        free(copy);
        free(fresh);
        return;
    }
    const uint64_t h = key_hash(key, max_tokens);
    pthread_mutex_lock(&c->lock);
    entry **pp = find(c, key, max_tokens, h);
    if (*pp) { /* same key: a newer answer replaces the old one */
        entry *e = *pp;
        free(e->text);
        e->text = copy;
        unlink_recency(c, e);
        push_newest(c, e);
        free(key);
        free(fresh);
    } else {
        if (c->count == c->cap) { /* evict the least recently used */
            entry *old = c->oldest;
            entry **op = find(c, old->key, old->max_tokens, old->hash);
            *op = old->next;
            unlink_recency(c, old);
            entry_free(old);
            c->count--;
            c->st.evictions++;
            pp = find(c, key, max_tokens, h); /* the chain may have changed */
        }
        fresh->key = key;
        fresh->max_tokens = max_tokens;
        fresh->hash = h;
        fresh->text = copy;
        fresh->next = NULL;
        *pp = fresh;
        push_newest(c, fresh);
        c->count++;
        c->st.insertions++;
    }
    pthread_mutex_unlock(&c->lock);
}

void sg_cache_get_stats(sg_cache *c, sg_cache_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    *out = c->st;
    out->entries = c->count;
    out->capacity = c->cap;
    pthread_mutex_unlock(&c->lock);
}

long sg_cache_entries_from_env(void)
{
    const char *v = getenv("SG_CACHE_ENTRIES");
    if (!v || !*v)
        return SG_CACHE_DEFAULT_ENTRIES;
    char *end;
    long n = strtol(v, &end, 10);
    if (*end || end == v || n < 0 || n > 1000000)
        return -1;
    return n;
}
