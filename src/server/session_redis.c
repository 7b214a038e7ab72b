/* The Redis session store (server/session.h): every session's persistent state lives in Redis, so
 * any sg-edge instance on the same Redis serves any session, and a restart of every instance
 * loses none. A handle is process-local and made per get; the work lock is a Redis key with an
 * owner token and an expiry, taken and loaded in one script and saved and released in another
 * that checks the token, so an instance whose lock expired never overwrites a newer state.
 * Keys (format version in the name; the {ID} hash tag keeps one session's keys in one slot):
 *   sg:v1:{ID}:meta   metadata (privacy, created, listing counters), session_codec.h
 *   sg:v1:{ID}:state  working state (scene, gate, embedding, transcripts, history)
 *   sg:v1:{ID}:raw    raw frames and audio, only when the session's privacy flags allow them
 *   sg:v1:{ID}:lock   the work lock: the owner's token, PX SG_SESSION_LOCK_TTL_MS
 *   sg:v1:{ID}:dat, :datw, :datq   the DAT stream (dat_redis.c)
 *   sg:v1:{ID}:rate   the token bucket (tokens, at)
 *   sg:v1:sessions    sorted set of live ids scored by last use (Redis TIME, ms)
 * Every key of a session expires SG_SESSION_TTL_S after its last use (refreshed by get, touch,
 * lock and unlock); the reaper sweeps ids idle past the TTL from the index. See
 * docs/ARCHITECTURE.md "Sessions in Redis" for the faults. */
#include "server/session.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/uuid.h"
#include "server/redis_conn.h"
#include "server/session_codec.h"

#define V "sg:v1:"
#define INDEX_KEY V "sessions"
enum { K_META, K_STATE, K_RAW, K_LOCK, K_DAT, K_DATW, K_DATQ, K_RATE, NKEYS };
static const char *const key_suffix[NKEYS] = {"meta", "state", "raw", "lock",
                                              "dat", "datw", "datq", "rate"};
#define SWEEP_BATCH 256
#define LIST_BATCH 512
#define TOUCH_EVERY_MS 1000.0 /* a handle refreshes the TTLs at most this often (WebSockets) */

typedef struct redis_store {
    sg_session_store base;
    const sg_config *cfg;
    sg_redis *redis;
    atomic_long created, lost_locks, corrupt, last_count;
} redis_store;

/* A handle: what one holder sees of a session (process-local, one per get). */
typedef struct redis_session {
    sg_session s;          /* first: the handle requests hold */
    atomic_int refs;
    redis_store *st;
    char keys[NKEYS][64];
    sg_dat_redis dat;
    char token[37];        /* the lock's owner token while held */
    bool locked;           /* holds the work lock: unlock saves */
    _Atomic double touched_ms;
} redis_session;

/* Every script that refreshes TTLs gets the 8 session keys first (KEYS[1..8] in the order of
 * key_suffix) and the index as KEYS[9]. */
#define LUA_COMMON                                                                               \
    "local function now_ms() local t = redis.call('TIME')\n"                                     \
    "  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) end\n"                   \
    "local function refresh(ttl) for i = 1, 8 do\n"                                              \
    "  if i ~= 4 then redis.call('PEXPIRE', KEYS[i], ttl) end end end\n"

/* ARGV: id, meta, ttl, max sessions. 1 made, 0 at the cap, -1 the id exists. */
static sg_redis_script create_lua = {"create", LUA_COMMON
    "local now, ttl = now_ms(), tonumber(ARGV[3])\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[9], '-inf', now - ttl)\n"
    "if redis.call('ZCARD', KEYS[9]) >= tonumber(ARGV[4]) then return 0 end\n"
    "if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end\n"
    "redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)\n"
    "redis.call('ZADD', KEYS[9], now, ARGV[1])\n"
    "return 1\n", "", false};

/* ARGV: id, ttl. The metadata (TTLs refreshed), or nil. */
static sg_redis_script get_lua = {"get", LUA_COMMON
    "local meta = redis.call('GET', KEYS[1])\n"
    "if not meta then redis.call('ZREM', KEYS[9], ARGV[1]) return false end\n"
    "refresh(ARGV[2])\n"
    "redis.call('ZADD', KEYS[9], now_ms(), ARGV[1])\n"
    "return meta\n", "", false};

/* ARGV: id. 1 when it existed; every key goes. */
static sg_redis_script remove_lua = {"remove", LUA_COMMON
    "local existed = redis.call('EXISTS', KEYS[1])\n"
    "redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8])\n"
    "redis.call('ZREM', KEYS[9], ARGV[1])\n"
    "return existed\n", "", false};

/* KEYS[1] index. ARGV: ttl, limit. {cutoff, id…}: ids idle past the TTL. */
static sg_redis_script idle_lua = {"idle",
    "local t = redis.call('TIME')\n"
    "local cutoff = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(ARGV[1])\n"
    "local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', cutoff, 'LIMIT', 0, ARGV[2])\n"
    "table.insert(ids, 1, string.format('%.0f', cutoff))\n"
    "return ids\n", "", false};

/* ARGV: id, cutoff. Removes the session when it is still idle past the cutoff. */
static sg_redis_script sweep_lua = {"sweep",
    "local sc = redis.call('ZSCORE', KEYS[9], ARGV[1])\n"
    "if not sc or tonumber(sc) > tonumber(ARGV[2]) then return 0 end\n"
    "redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8])\n"
    "redis.call('ZREM', KEYS[9], ARGV[1])\n"
    "return 1\n", "", false};

/* KEYS[1] index. ARGV: ttl, limit (0: count them only). The live ids, or their number. */
static sg_redis_script live_lua = {"live",
    "local t = redis.call('TIME')\n"
    "local from = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(ARGV[1])\n"
    "if ARGV[2] == '0' then\n"
    "  return redis.call('ZCOUNT', KEYS[1], '(' .. string.format('%.0f', from), '+inf') end\n"
    "return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. string.format('%.0f', from), '+inf',\n"
    "                  'LIMIT', 0, ARGV[2])\n", "", false};

/* ARGV: token, lock ttl, want raw (1/0), state max, raw max, ttl.
 * {1, meta, state, raw} locked; {0, pttl} taken; {-1} the session is gone; {-2, part} a stored
 * part over its bound (the lock is not kept). */
static sg_redis_script lock_lua = {"lock", LUA_COMMON
    "if not redis.call('SET', KEYS[4], ARGV[1], 'NX', 'PX', ARGV[2]) and\n"
    "   redis.call('GET', KEYS[4]) ~= ARGV[1] then\n"
    "  return {0, redis.call('PTTL', KEYS[4])}\n"
    "end\n"
    "local meta = redis.call('GET', KEYS[1])\n"
    "if not meta then redis.call('DEL', KEYS[4]) return {-1} end\n"
    "if redis.call('STRLEN', KEYS[2]) > tonumber(ARGV[4]) then\n"
    "  redis.call('DEL', KEYS[4]) return {-2, 'state'} end\n"
    "local raw = ''\n"
    "if ARGV[3] == '1' then\n"
    "  if redis.call('STRLEN', KEYS[3]) > tonumber(ARGV[5]) then\n"
    "    redis.call('DEL', KEYS[4]) return {-2, 'raw media'} end\n"
    "  raw = redis.call('GET', KEYS[3]) or ''\n"
    "end\n"
    "refresh(ARGV[6])\n"
    "return {1, meta, redis.call('GET', KEYS[2]) or '', raw}\n", "", false};

/* ARGV: token, id, ttl, meta, state, raw mode (0 keep, 1 set, 2 delete), raw. 1 saved and
 * released; 0 the lock is not ours any more (expired, or the session was deleted): nothing
 * written. */
static sg_redis_script unlock_lua = {"unlock", LUA_COMMON
    "if redis.call('GET', KEYS[4]) ~= ARGV[1] then return 0 end\n"
    "local ttl = ARGV[3]\n"
    "redis.call('SET', KEYS[1], ARGV[4], 'PX', ttl)\n"
    "redis.call('SET', KEYS[2], ARGV[5], 'PX', ttl)\n"
    "if ARGV[6] == '1' then redis.call('SET', KEYS[3], ARGV[7], 'PX', ttl)\n"
    "elseif ARGV[6] == '2' then redis.call('DEL', KEYS[3]) end\n"
    "redis.call('DEL', KEYS[4])\n"
    "refresh(ttl)\n"
    "redis.call('ZADD', KEYS[9], now_ms(), ARGV[2])\n"
    "return 1\n", "", false};

/* KEYS[1] lock. ARGV: token. Releases without saving. */
static sg_redis_script release_lua = {"release",
    "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end\n"
    "return 0\n", "", false};

/* KEYS[1] rate. ARGV: rate per second, burst, ttl. {1|0, tokens as text}. */
static sg_redis_script rate_lua = {"rate",
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000\n"
    "local rps, burst = tonumber(ARGV[1]), tonumber(ARGV[2])\n"
    "local h = redis.call('HMGET', KEYS[1], 'tokens', 'at')\n"
    "local tokens, at = tonumber(h[1] or ''), tonumber(h[2] or '')\n"
    "if not tokens or not at or tokens ~= tokens then tokens, at = burst, now end\n"
    "tokens = math.min(burst, tokens + math.max(0, now - at) / 1000 * rps)\n"
    "local ok = 0\n"
    "if tokens >= 1 then tokens, ok = tokens - 1, 1 end\n"
    "redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'at',\n"
    "           string.format('%.17g', now))\n"
    "redis.call('PEXPIRE', KEYS[1], ARGV[3])\n"
    "return {ok, string.format('%.17g', tokens)}\n", "", false};

static redis_session *handle_of(sg_session *s) { return (redis_session *)s; }

static long long ttl_ms(const redis_store *t) { return (long long)t->cfg->session_ttl_s * 1000; }

static void make_keys(char keys[NKEYS][64], const char *id)
{
    for (int k = 0; k < NKEYS; k++)
        snprintf(keys[k], sizeof keys[k], V "{%s}:%s", id, key_suffix[k]);
}

/* A script call's arguments: the 8 session keys and the index, then the caller's. */
static void session_keys(sg_redis_cmd *c, char keys[NKEYS][64])
{
    memset(c, 0, sizeof *c);
    for (int k = 0; k < NKEYS; k++)
        sg_redis_arg(c, keys[k], (size_t)-1);
    sg_redis_arg(c, INDEX_KEY, (size_t)-1);
}

/* A value read from the store could not be decoded: said once per value in the log, counted. */
static sg_status corrupt(redis_store *t, const char *id, sg_error *err)
{
    atomic_fetch_add(&t->corrupt, 1);
    char why[sizeof err->msg];
    snprintf(why, sizeof why, "%s", err->msg);
    sg_log(SG_LOG_ERROR, "session store: session %s: %s", id, why);
    return sg_error_set(err, SG_ECORRUPT, "the stored state of session %s cannot be read (%s); "
                        "create a new session", id, why);
}

static redis_session *handle_new(redis_store *t, const char *id, const sg_session_meta *m)
{
    redis_session *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    sg_session_state_init(&h->s, &t->base, &m->privacy);
    memcpy(h->s.id, id, 37);
    h->s.created_wall_s = m->created_wall_s;
    atomic_store(&h->s.query_count, m->queries);
    atomic_store(&h->s.frame_count, m->frames);
    atomic_store(&h->s.transcript_count, m->transcripts);
    atomic_store(&h->s.has_frame, m->has_frame);
    atomic_init(&h->refs, 1);
    h->st = t;
    make_keys(h->keys, id);
    sg_dat_redis_init(&h->dat, t->redis, t->cfg, id);
    h->s.dat = (sg_dat_stream){&sg_dat_redis_ops, &h->dat};
    atomic_store(&h->touched_ms, sg_now_ms());
    return h;
}

static void rs_release(void *self, sg_session *s)
{
    (void)self;
    redis_session *h = handle_of(s);
    if (atomic_fetch_sub(&h->refs, 1) != 1)
        return;
    sg_session_state_free(&h->s);
    free(h);
}

static sg_status rs_create(void *self, const sg_privacy *privacy, sg_session **out, sg_error *err)
{
    redis_store *t = self;
    *out = NULL;
    sg_session_meta m = {*privacy, sg_wall_s(), 0, 0, 0, false};
    for (int attempt = 0; attempt < 3; attempt++) {
        char id[37];
        sg_uuid4(id);
        uint8_t *meta;
        size_t meta_len;
        sg_status st = sg_session_meta_encode(&m, &meta, &meta_len, err);
        if (st != SG_OK)
            return st;
        char keys[NKEYS][64], a[3][24];
        make_keys(keys, id);
        sg_redis_cmd c;
        session_keys(&c, keys);
        sg_redis_arg(&c, id, 36);
        sg_redis_arg(&c, meta, meta_len);
        sg_redis_argf(&c, a[0], sizeof a[0], "%lld", ttl_ms(t));
        sg_redis_argf(&c, a[1], sizeof a[1], "%d", t->cfg->max_sessions);
        redisReply *rep;
        st = sg_redis_eval(t->redis, &create_lua, 9, &c, &rep, err);
        free(meta);
        if (st != SG_OK)
            return st;
        long long made = rep->type == REDIS_REPLY_INTEGER ? rep->integer : -2;
        freeReplyObject(rep);
        if (made == 0)
            return sg_error_set(err, SG_ETOOBIG,
                                "session limit reached: %d sessions are open (SG_MAX_SESSIONS, "
                                "counted in the session store); delete one or wait for idle "
                                "sessions to expire",
                                t->cfg->max_sessions);
        if (made == 1) {
            redis_session *h = handle_new(t, id, &m);
            if (!h)
                return sg_error_set(err, SG_ENOMEM, "out of memory creating a session");
            atomic_fetch_add(&t->created, 1);
            *out = &h->s;
            return SG_OK;
        }
        /* -1: a UUID v4 that is already there (never seen in practice): another one */
    }
    return sg_error_set(err, SG_EINTERNAL, "could not find a free session id");
}

static sg_session *rs_get(void *self, const char *id, sg_error *err)
{
    redis_store *t = self;
    char key[37];
    if (!sg_session_id_key(id, key))
        return NULL; /* not a session id: unknown */
    char keys[NKEYS][64], a[24];
    make_keys(keys, key);
    sg_redis_cmd c;
    session_keys(&c, keys);
    sg_redis_arg(&c, key, 36);
    sg_redis_argf(&c, a, sizeof a, "%lld", ttl_ms(t));
    redisReply *rep;
    if (sg_redis_eval(t->redis, &get_lua, 9, &c, &rep, err) != SG_OK)
        return NULL;
    if (rep->type != REDIS_REPLY_STRING) { /* nil: unknown */
        freeReplyObject(rep);
        return NULL;
    }
    sg_session_meta m;
    sg_status st = sg_session_meta_decode((const uint8_t *)rep->str, rep->len, &m, err);
    freeReplyObject(rep);
    if (st != SG_OK) {
        corrupt(t, key, err);
        return NULL;
    }
    redis_session *h = handle_new(t, key, &m);
    if (!h)
        sg_error_set(err, SG_ENOMEM, "out of memory");
    return h ? &h->s : NULL;
}

static bool rs_remove(void *self, const char *id, sg_error *err)
{
    redis_store *t = self;
    char key[37];
    if (!sg_session_id_key(id, key))
        return false;
    char keys[NKEYS][64];
    make_keys(keys, key);
    sg_redis_cmd c;
    session_keys(&c, keys);
    sg_redis_arg(&c, key, 36);
    redisReply *rep;
    if (sg_redis_eval(t->redis, &remove_lua, 9, &c, &rep, err) != SG_OK)
        return false;
    bool existed = rep->type == REDIS_REPLY_INTEGER && rep->integer == 1;
    freeReplyObject(rep);
    return existed;
}

static int rs_expire(void *self, double now_ms)
{
    (void)now_ms; /* Redis TIME is the one clock every instance shares */
    redis_store *t = self;
    sg_redis_cmd c = {0};
    char a[2][24];
    sg_redis_arg(&c, INDEX_KEY, (size_t)-1);
    sg_redis_argf(&c, a[0], sizeof a[0], "%lld", ttl_ms(t));
    sg_redis_argf(&c, a[1], sizeof a[1], "%d", SWEEP_BATCH);
    redisReply *rep;
    sg_error err = {0};
    if (sg_redis_eval(t->redis, &idle_lua, 1, &c, &rep, &err) != SG_OK)
        return 0;
    int swept = 0;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements > 1 &&
        rep->element[0]->type == REDIS_REPLY_STRING) {
        const char *cutoff = rep->element[0]->str;
        for (size_t i = 1; i < rep->elements; i++) {
            const redisReply *e = rep->element[i];
            char key[37];
            if (e->type != REDIS_REPLY_STRING || e->len != 36 || !sg_session_id_key(e->str, key))
                continue;
            char keys[NKEYS][64];
            make_keys(keys, key);
            sg_redis_cmd s;
            session_keys(&s, keys);
            sg_redis_arg(&s, key, 36);
            sg_redis_arg(&s, cutoff, (size_t)-1);
            redisReply *r2;
            if (sg_redis_eval(t->redis, &sweep_lua, 9, &s, &r2, &err) != SG_OK)
                break;
            swept += r2->type == REDIS_REPLY_INTEGER && r2->integer == 1;
            freeReplyObject(r2);
        }
    }
    freeReplyObject(rep);
    return swept;
}

static long rs_count(void *self)
{
    redis_store *t = self;
    sg_redis_cmd c = {0};
    char a[24];
    sg_redis_arg(&c, INDEX_KEY, (size_t)-1);
    sg_redis_argf(&c, a, sizeof a, "%lld", ttl_ms(t));
    sg_redis_arg(&c, "0", 1);
    redisReply *rep;
    sg_error err = {0};
    if (sg_redis_eval(t->redis, &live_lua, 1, &c, &rep, &err) == SG_OK) {
        if (rep->type == REDIS_REPLY_INTEGER)
            atomic_store(&t->last_count, (long)rep->integer);
        freeReplyObject(rep);
    }
    return atomic_load(&t->last_count);
}

static long rs_created(void *self) { return atomic_load(&((redis_store *)self)->created); }

/* Appends the listing entries of ids[0..n) (their metadata, read pipelined). */
static sg_status list_batch(redis_store *t, redisReply **ids, size_t n, json_t *arr, sg_error *err)
{
    sg_redis_cmd *cmds = calloc(n, sizeof *cmds);
    redisReply **metas = calloc(n, sizeof *metas);
    char (*keys)[64] = calloc(n, 64);
    if (!cmds || !metas || !keys) {
        free(cmds);
        free(metas);
        free(keys);
        return sg_error_set(err, SG_ENOMEM, "out of memory listing sessions");
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        char key[37];
        if (ids[i]->type != REDIS_REPLY_STRING || ids[i]->len != 36 || !sg_session_id_key(ids[i]->str, key))
            continue;
        snprintf(keys[k], 64, V "{%s}:meta", key);
        sg_redis_arg(&cmds[k], "GET", 3);
        sg_redis_arg(&cmds[k], keys[k], (size_t)-1);
        k++;
    }
    sg_status st = k ? sg_redis_run(t->redis, cmds, (int)k, metas, err) : SG_OK;
    for (size_t i = 0; st == SG_OK && i < k; i++) {
        if (metas[i]->type != REDIS_REPLY_STRING)
            continue; /* expired since */
        sg_session_meta m;
        sg_error merr = {0};
        char id[37];
        memcpy(id, keys[i] + strlen(V "{"), 36);
        id[36] = 0;
        if (sg_session_meta_decode((const uint8_t *)metas[i]->str, metas[i]->len, &m, &merr)) {
            sg_log(SG_LOG_WARN, "session store: session %s left out of the listing: %s", id,
                   merr.msg);
            continue;
        }
        json_array_append_new(arr, json_pack("{s:s,s:I,s:b,s:I,s:I}", "session_id", id,
                                             "transcript_count", (json_int_t)m.transcripts,
                                             "has_frame", m.has_frame, "query_count",
                                             (json_int_t)m.queries, "frame_count",
                                             (json_int_t)m.frames));
    }
    for (size_t i = 0; st == SG_OK && i < k; i++)
        freeReplyObject(metas[i]);
    free(cmds);
    free(metas);
    free(keys);
    return st;
}

static json_t *rs_list_json(void *self, sg_error *err)
{
    redis_store *t = self;
    sg_redis_cmd c = {0};
    char a[2][24];
    sg_redis_arg(&c, INDEX_KEY, (size_t)-1);
    sg_redis_argf(&c, a[0], sizeof a[0], "%lld", ttl_ms(t));
    sg_redis_argf(&c, a[1], sizeof a[1], "%d", t->cfg->max_sessions);
    redisReply *rep;
    if (sg_redis_eval(t->redis, &live_lua, 1, &c, &rep, err) != SG_OK)
        return NULL;
    json_t *arr = json_array();
    sg_status st = arr ? SG_OK : sg_error_set(err, SG_ENOMEM, "out of memory listing sessions");
    if (rep->type == REDIS_REPLY_ARRAY)
        for (size_t i = 0; st == SG_OK && i < rep->elements; i += LIST_BATCH)
            st = list_batch(t, rep->element + i,
                            rep->elements - i < LIST_BATCH ? rep->elements - i : LIST_BATCH, arr,
                            err);
    freeReplyObject(rep);
    if (st != SG_OK) {
        json_decref(arr);
        return NULL;
    }
    atomic_store(&t->last_count, (long)json_array_size(arr));
    return arr;
}

static void rs_touch(void *self, sg_session *s)
{
    redis_store *t = self;
    redis_session *h = handle_of(s);
    double now = sg_now_ms();
    if (now - atomic_load(&h->touched_ms) < TOUCH_EVERY_MS)
        return;
    atomic_store(&h->touched_ms, now);
    sg_redis_cmd c;
    char a[24];
    session_keys(&c, h->keys);
    sg_redis_arg(&c, s->id, 36);
    sg_redis_argf(&c, a, sizeof a, "%lld", ttl_ms(t));
    redisReply *rep;
    sg_error err = {0};
    if (sg_redis_eval(t->redis, &get_lua, 9, &c, &rep, &err) == SG_OK)
        freeReplyObject(rep);
}

/* The largest state and raw values a server with this configuration writes: a stored value over
 * them is not one of ours (and is never read into memory). History keeps up to 4 turns of text
 * as long as a body; raw media is bounded by the frame and audio buffers. */
static size_t state_max(const sg_config *cfg) { return 16 * cfg->max_body_bytes + (16u << 20); }
static size_t raw_max(const sg_config *cfg)
{
    return cfg->frame_max_bytes + cfg->audio_max_bytes + (1u << 20);
}

static void release_lock(redis_store *t, redis_session *h)
{
    sg_redis_cmd c = {0};
    sg_redis_arg(&c, h->keys[K_LOCK], (size_t)-1);
    sg_redis_arg(&c, h->token, 36);
    redisReply *rep;
    sg_error err = {0};
    if (sg_redis_eval(t->redis, &release_lua, 1, &c, &rep, &err) == SG_OK)
        freeReplyObject(rep);
}

static void sleep_ms(double ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(fmod(ms, 1000.0) * 1e6)};
    nanosleep(&ts, NULL);
}

/* Loads what the lock script answered into the handle: the counters, the state and the raw
 * media (empty strings: a session that never saved any). */
static sg_status load(redis_store *t, redis_session *h, const redisReply *rep, sg_error *err)
{
    sg_session *s = &h->s;
    sg_session_state_reset(s);
    for (size_t i = 1; i < 4; i++)
        if (rep->element[i]->type != REDIS_REPLY_STRING)
            return sg_error_set(err, SG_EINTERNAL, "the lock script answered an unexpected reply");
    sg_session_meta m;
    const redisReply *meta = rep->element[1], *state = rep->element[2], *raw = rep->element[3];
    sg_status st = sg_session_meta_decode((const uint8_t *)meta->str, meta->len, &m, err);
    if (st == SG_OK && state->len)
        st = sg_session_decode(s, SG_SESSION_PART_STATE, (const uint8_t *)state->str, state->len,
                               err);
    if (st == SG_OK && raw->len)
        st = sg_session_decode(s, SG_SESSION_PART_RAW, (const uint8_t *)raw->str, raw->len, err);
    if (st != SG_OK) {
        sg_session_state_reset(s);
        return st == SG_ECORRUPT ? corrupt(t, s->id, err) : st;
    }
    atomic_store(&s->query_count, m.queries);
    atomic_store(&s->frame_count, m.frames);
    atomic_store(&s->transcript_count, m.transcripts);
    atomic_store(&s->has_frame, m.has_frame);
    s->raw_dirty = false;
    return SG_OK;
}

static sg_status rs_lock(void *self, sg_session *s, sg_error *err)
{
    redis_store *t = self;
    redis_session *h = handle_of(s);
    const sg_config *cfg = t->cfg;
    bool want_raw = s->privacy.store_raw_frames || s->privacy.store_raw_audio;
    sg_uuid4(h->token);
    char a[5][24];
    sg_redis_cmd c;
    session_keys(&c, h->keys);
    c.argc--; /* no index for this one */
    sg_redis_arg(&c, h->token, 36);
    sg_redis_argf(&c, a[0], sizeof a[0], "%d", cfg->lock_ttl_ms);
    sg_redis_arg(&c, want_raw ? "1" : "0", 1);
    sg_redis_argf(&c, a[1], sizeof a[1], "%zu", state_max(cfg));
    sg_redis_argf(&c, a[2], sizeof a[2], "%zu", raw_max(cfg));
    sg_redis_argf(&c, a[3], sizeof a[3], "%lld", ttl_ms(t));
    double deadline = sg_now_ms() + cfg->lock_wait_ms, pause = 1;
    for (;;) {
        redisReply *rep;
        sg_status st = sg_redis_eval(t->redis, &lock_lua, 8, &c, &rep, err);
        if (st != SG_OK)
            return st;
        long long code = rep->type == REDIS_REPLY_ARRAY && rep->elements >= 1 &&
                                 rep->element[0]->type == REDIS_REPLY_INTEGER
                             ? rep->element[0]->integer : -3;
        if (code == 1 && rep->elements == 4) {
            st = load(t, h, rep, err);
            freeReplyObject(rep);
            if (st != SG_OK) {
                release_lock(t, h);
                return st;
            }
            h->locked = true;
            return SG_OK;
        }
        if (code == -1) { /* deleted meanwhile: work on an empty state that is never saved, as
                             a reference to a deleted in-process session does */
            freeReplyObject(rep);
            sg_session_state_reset(s);
            h->locked = false;
            return SG_OK;
        }
        if (code == -2) {
            sg_error_set(err, SG_ECORRUPT, "its stored %s is larger than this server ever writes",
                         rep->elements > 1 && rep->element[1]->type == REDIS_REPLY_STRING
                             ? rep->element[1]->str : "state");
            freeReplyObject(rep);
            return corrupt(t, s->id, err);
        }
        freeReplyObject(rep);
        if (code != 0)
            return sg_error_set(err, SG_EINTERNAL, "the lock script answered code %lld", code);
        double left = deadline - sg_now_ms();
        if (left <= 0)
            return sg_error_set(err, SG_EBUSY, "session %s is busy: another request has held its "
                                "work lock for longer than SG_SESSION_LOCK_WAIT_MS=%d ms; try "
                                "again", s->id, cfg->lock_wait_ms);
        /* the holder is running a turn: poll fast first (frames take milliseconds), then
         * every 10 ms */
        sleep_ms(pause < left ? pause : left);
        pause = pause * 2 > 10 ? 10 : pause * 2;
    }
}

static void rs_unlock(void *self, sg_session *s)
{
    redis_store *t = self;
    redis_session *h = handle_of(s);
    if (!h->locked)
        return; /* the session was gone when the lock was asked for */
    h->locked = false;
    uint8_t *meta = NULL, *state = NULL, *raw = NULL;
    size_t meta_len = 0, state_len = 0, raw_len = 0;
    const char *raw_mode = "0";
    sg_error err = {0};
    sg_status st = sg_session_encode(s, SG_SESSION_PART_META, &meta, &meta_len, &err);
    if (st == SG_OK)
        st = sg_session_encode(s, SG_SESSION_PART_STATE, &state, &state_len, &err);
    if (st == SG_OK && s->raw_dirty) {
        bool any = s->frames_n > 0 || s->audio_n > 0;
        raw_mode = any ? "1" : "2";
        if (any)
            st = sg_session_encode(s, SG_SESSION_PART_RAW, &raw, &raw_len, &err);
    }
    if (st == SG_OK) {
        sg_redis_cmd c;
        char a[24];
        session_keys(&c, h->keys);
        sg_redis_arg(&c, h->token, 36);
        sg_redis_arg(&c, s->id, 36);
        sg_redis_argf(&c, a, sizeof a, "%lld", ttl_ms(t));
        sg_redis_arg(&c, meta, meta_len);
        sg_redis_arg(&c, state, state_len);
        sg_redis_arg(&c, raw_mode, 1);
        sg_redis_arg(&c, raw ? (const void *)raw : "", raw_len);
        redisReply *rep;
        st = sg_redis_eval(t->redis, &unlock_lua, 9, &c, &rep, &err);
        if (st == SG_OK) {
            if (rep->type == REDIS_REPLY_INTEGER && rep->integer == 0) {
                /* our lock expired under a slow turn (another instance may have taken it and
                 * saved a newer state) or the session was deleted: nothing is written */
                atomic_fetch_add(&t->lost_locks, 1);
                sg_log(SG_LOG_WARN, "session %s: its work lock expired or the session was "
                       "deleted before the turn ended (SG_SESSION_LOCK_TTL_MS=%d): this turn's "
                       "changes were not saved", s->id, t->cfg->lock_ttl_ms);
            }
            freeReplyObject(rep);
        }
    }
    if (st != SG_OK) {
        sg_log(SG_LOG_WARN, "session %s: this turn's changes were not saved: %s", s->id, err.msg);
        if (st != SG_EUNAVAILABLE)
            release_lock(t, h);
    }
    s->raw_dirty = false;
    free(meta);
    free(state);
    free(raw);
}

static bool rs_rate_ok(void *self, sg_session *s, double rps, int *retry_after_s)
{
    if (rps <= 0)
        return true;
    redis_store *t = self;
    redis_session *h = handle_of(s);
    double burst = rps * 2 < 1 ? 1 : rps * 2;
    sg_redis_cmd c = {0};
    char a[3][32];
    sg_redis_arg(&c, h->keys[K_RATE], (size_t)-1);
    sg_redis_argf(&c, a[0], sizeof a[0], "%.17g", rps);
    sg_redis_argf(&c, a[1], sizeof a[1], "%.17g", burst);
    sg_redis_argf(&c, a[2], sizeof a[2], "%lld", ttl_ms(t));
    redisReply *rep;
    sg_error err = {0};
    if (sg_redis_eval(t->redis, &rate_lua, 1, &c, &rep, &err) != SG_OK)
        return true; /* the lookup just reached the store; its work will report an outage */
    bool ok = true;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
        rep->element[0]->type == REDIS_REPLY_INTEGER && rep->element[1]->type == REDIS_REPLY_STRING) {
        ok = rep->element[0]->integer == 1;
        double tokens = strtod(rep->element[1]->str, NULL);
        if (!ok)
            *retry_after_s = (int)ceil((1.0 - tokens) / rps);
    }
    freeReplyObject(rep);
    return ok;
}

static sg_status rs_ping(void *self, sg_error *err)
{
    redis_store *t = self;
    return sg_redis_ping(t->redis, err);
}

static json_t *rs_stats_json(void *self)
{
    redis_store *t = self;
    return json_pack("{s:s,s:s,s:b,s:I,s:I,s:I}", "backend", "redis", "url", t->cfg->store.shown,
                     "reachable", sg_redis_up(t->redis), "unavailable_errors",
                     (json_int_t)sg_redis_failures(t->redis), "lost_locks",
                     (json_int_t)atomic_load(&t->lost_locks), "corrupt_values",
                     (json_int_t)atomic_load(&t->corrupt));
}

static void rs_free(void *self)
{
    redis_store *t = self;
    sg_redis_free(t->redis);
    free(t);
}

static const sg_session_store_ops redis_ops = {
    .name = "redis",
    .create = rs_create,
    .get = rs_get,
    .release = rs_release,
    .remove = rs_remove,
    .expire = rs_expire,
    .count = rs_count,
    .created = rs_created,
    .list_json = rs_list_json,
    .touch = rs_touch,
    .lock = rs_lock,
    .unlock = rs_unlock,
    .rate_ok = rs_rate_ok,
    .ping = rs_ping,
    .stats_json = rs_stats_json,
    .free = rs_free,
};

sg_session_store *sg_session_store_redis_new(const sg_config *cfg, sg_error *err)
{
    redis_store *t = calloc(1, sizeof *t);
    int conns = cfg->store_connections > 0 ? cfg->store_connections
                                           : cfg->http_threads + cfg->workers + 4;
    if (t)
        t->redis = sg_redis_new(&cfg->store, cfg->store_timeout_ms, conns);
    if (!t || !t->redis) {
        free(t);
        sg_error_set(err, SG_ENOMEM, "out of memory creating the session store");
        return NULL;
    }
    t->cfg = cfg;
    t->base.ops = &redis_ops;
    t->base.self = t;
    sg_error perr = {0};
    if (sg_redis_ping(t->redis, &perr) == SG_OK)
        sg_log(SG_LOG_INFO, "session store: %s (%d connections at most, timeout %d ms, lock TTL "
               "%d ms, lock wait %d ms)", cfg->store.shown, conns, cfg->store_timeout_ms,
               cfg->lock_ttl_ms, cfg->lock_wait_ms);
    else
        sg_log(SG_LOG_WARN, "session store: %s; starting anyway: /ready and session routes answer "
               "503 STORE_UNAVAILABLE until it can be reached", perr.msg);
    return &t->base;
}
