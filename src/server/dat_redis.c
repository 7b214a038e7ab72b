/* A DAT stream's state in Redis (server/dat_state.h, sg_dat_redis_ops), the same rules as the
 * in-process sg_dat_state: each operation is one Lua script on the session's keys, so it is
 * atomic across every instance and never waits for the session's work lock.
 *   sg:v1:{ID}:dat    hash: hi0..hi2 (newest number per chunk type), consumed (last audio number
 *                     a turn took), flatest (newest frame sent to analysis), the turn's counters
 *                     (frames, imu, imus, dup, trimmed) and the buffer's totals (bytes, secs)
 *   sg:v1:{ID}:datw   string: the windows, SG_DAT_WINDOW bits per chunk type
 *   sg:v1:{ID}:datq   sorted set: audio chunk records (session_codec.h) scored by number
 * Numbers are Lua doubles in the scripts: exact up to SG_DAT_SEQ_MAX, the route's limit; they go
 * back to Redis as text with %.0f (a Lua number as an argument would be cut to 14 digits). */
#include "server/dat_state.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "server/redis_conn.h"
#include "server/session_codec.h"

/* KEYS[1] dat, KEYS[2] datw, KEYS[3] datq; the last ARGV is the TTL in ms. */
#define DAT_LUA_COMMON                                                                           \
    "local W = 1024\n"                                                                           \
    "local function hi_of(t) return tonumber(redis.call('HGET', KEYS[1], 'hi' .. t) or '-1') end\n" \
    "local function peek(t, seq)\n"                                                              \
    "  local hi = hi_of(t)\n"                                                                    \
    "  if seq > hi then return 0, hi end\n"                                                      \
    "  if seq <= hi - W then return 2, hi end\n"                                                 \
    "  return redis.call('GETBIT', KEYS[2], t * W + seq % W), hi\n"                              \
    "end\n"                                                                                      \
    "local function mark(t, seq, hi)\n"                                                          \
    "  if seq > hi then\n"                                                                       \
    "    if hi < 0 or seq - hi >= W then\n"                                                      \
    "      redis.call('SETRANGE', KEYS[2], t * W / 8, string.rep('\\0', W / 8))\n"               \
    "    else\n"                                                                                 \
    "      for k = hi + 1, seq do redis.call('SETBIT', KEYS[2], t * W + k % W, 0) end\n"         \
    "    end\n"                                                                                  \
    "    redis.call('HSET', KEYS[1], 'hi' .. t, string.format('%.0f', seq))\n"                   \
    "  end\n"                                                                                    \
    "  redis.call('SETBIT', KEYS[2], t * W + seq % W, 1)\n"                                      \
    "end\n"                                                                                      \
    "local function refresh() for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[#ARGV]) end end\n"

/* ARGV: type, seq, ttl. Returns the sg_dat_seen. */
static sg_redis_script claim_lua = {"dat claim", DAT_LUA_COMMON
    "local t, seq = tonumber(ARGV[1]), tonumber(ARGV[2])\n"
    "local r, hi = peek(t, seq)\n"
    "if r == 0 then mark(t, seq, hi) else redis.call('HINCRBY', KEYS[1], 'dup', 1) end\n"
    "refresh()\n"
    "return r\n", "", false};

/* ARGV: type, seq, ttl. */
static sg_redis_script unclaim_lua = {"dat unclaim", DAT_LUA_COMMON
    "local t, seq = tonumber(ARGV[1]), tonumber(ARGV[2])\n"
    "local hi = hi_of(t)\n"
    "if seq <= hi and seq > hi - W then redis.call('SETBIT', KEYS[2], t * W + seq % W, 0) end\n"
    "return 0\n", "", false};

/* ARGV: seq, record, bytes, seconds, max chunks, max bytes, max seconds, reject (1/0), ttl.
 * Returns {code, kept, dropped, chunks, bytes, seconds as text}: code 0 buffered, 1 duplicate,
 * 2 too old, 3 over a limit alone, 4 full under reject. */
static sg_redis_script add_lua = {"dat add_audio", DAT_LUA_COMMON
    "local seq, len, sec = tonumber(ARGV[1]), tonumber(ARGV[3]), tonumber(ARGV[4])\n"
    "local maxc, maxb, maxs = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]) + 1e-9\n"
    "local h = redis.call('HMGET', KEYS[1], 'consumed', 'bytes', 'secs')\n"
    "local consumed = tonumber(h[1] or '-1') or -1\n"
    "local bytes, secs = tonumber(h[2] or '0') or 0, tonumber(h[3] or '0') or 0\n"
    "local n = redis.call('ZCARD', KEYS[3])\n"
    "local function stats(code, kept, drop)\n"
    "  return {code, kept, drop, n, bytes, string.format('%.17g', secs)} end\n"
    "local seen, hi = 1, -1\n"
    "if seq > consumed then seen, hi = peek(0, seq) end\n"
    "if seen ~= 0 then\n"
    "  redis.call('HINCRBY', KEYS[1], 'dup', 1)\n"
    "  refresh()\n"
    "  return stats(seen, 0, 0)\n"
    "end\n"
    "if len > maxb or sec > maxs then return stats(3, 0, 0) end\n"
    "if ARGV[8] == '1' and (n + 1 > maxc or bytes + len > maxb or secs + sec > maxs) then\n"
    "  return stats(4, 0, 0) end\n"
    "redis.call('ZADD', KEYS[3], ARGV[1], ARGV[2])\n"
    "n, bytes, secs = n + 1, bytes + len, secs + sec\n"
    "mark(0, seq, hi)\n"
    "local kept, drop = 1, 0\n"
    "while n > 0 and (n > maxc or bytes > maxb or secs > maxs) do\n"
    "  local p = redis.call('ZPOPMIN', KEYS[3])\n"
    "  local m = p[1]\n"
    "  if tonumber(p[2]) == seq then kept = 0 end\n"
    "  if #m >= 28 then\n"
    "    bytes = bytes - (#m - 28)\n"
    "    secs = secs - struct.unpack('<d', m, 21)\n"
    "  end\n"
    "  n, drop = n - 1, drop + 1\n"
    "end\n"
    "if n == 0 then secs = 0 end\n"
    "if drop > 0 then redis.call('HINCRBY', KEYS[1], 'trimmed', drop) end\n"
    "redis.call('HSET', KEYS[1], 'bytes', string.format('%.0f', bytes), 'secs',\n"
    "           string.format('%.17g', secs))\n"
    "refresh()\n"
    "return stats(0, kept, drop)\n", "", false};

/* ARGV: type, samples, ttl. */
static sg_redis_script count_lua = {"dat count", DAT_LUA_COMMON
    "if ARGV[1] == '1' then redis.call('HINCRBY', KEYS[1], 'frames', 1)\n"
    "elseif ARGV[1] == '2' then\n"
    "  redis.call('HINCRBY', KEYS[1], 'imu', 1)\n"
    "  redis.call('HINCRBY', KEYS[1], 'imus', ARGV[2])\n"
    "end\n"
    "refresh()\n"
    "return 0\n", "", false};

/* ARGV: seq, ttl. Returns 1 when seq is the newest frame (recorded), else 0. */
static sg_redis_script newest_lua = {"dat frame_newest", DAT_LUA_COMMON
    "local seq = tonumber(ARGV[1])\n"
    "if seq >= (tonumber(redis.call('HGET', KEYS[1], 'flatest') or '-1') or -1) then\n"
    "  redis.call('HSET', KEYS[1], 'flatest', string.format('%.0f', seq))\n"
    "  refresh()\n"
    "  return 1\n"
    "end\n"
    "return 0\n", "", false};

/* ARGV: max chunks, max bytes of records, ttl. Returns {1, frames, imu chunks, imu samples,
 * duplicates, trimmed, record…} and empties the buffer; {-1} (buffer dropped) when the stored
 * chunks are over what add_audio could ever have buffered. */
static sg_redis_script take_lua = {"dat take_turn", DAT_LUA_COMMON
    "local n = redis.call('ZCARD', KEYS[3])\n"
    "local m = n <= tonumber(ARGV[1]) and redis.call('ZRANGE', KEYS[3], 0, -1, 'WITHSCORES') or {}\n"
    "local total = 0\n"
    "for i = 1, #m, 2 do total = total + #m[i] end\n"
    "redis.call('DEL', KEYS[3])\n"
    "if n > tonumber(ARGV[1]) or total > tonumber(ARGV[2]) then return {-1} end\n"
    "local h = redis.call('HMGET', KEYS[1], 'frames', 'imu', 'imus', 'dup', 'trimmed', 'consumed')\n"
    "if #m > 0 and tonumber(m[#m]) > (tonumber(h[6] or '-1') or -1) then\n"
    "  redis.call('HSET', KEYS[1], 'consumed', m[#m]) end\n"
    "redis.call('HDEL', KEYS[1], 'frames', 'imu', 'imus', 'dup', 'trimmed', 'bytes', 'secs')\n"
    "refresh()\n"
    "local out = {1}\n"
    "for i = 1, 5 do out[#out + 1] = tonumber(h[i] or '0') or 0 end\n"
    "for i = 1, #m, 2 do out[#out + 1] = m[i] end\n"
    "return out\n", "", false};

void sg_dat_redis_init(sg_dat_redis *d, struct sg_redis *redis, const sg_config *cfg,
                       const char *session_id)
{
    d->redis = redis;
    d->cfg = cfg;
    snprintf(d->key_state, sizeof d->key_state, "sg:v%d:{%s}:dat", SG_SESSION_CODEC_VERSION,
             session_id);
    snprintf(d->key_window, sizeof d->key_window, "sg:v%d:{%s}:datw", SG_SESSION_CODEC_VERSION,
             session_id);
    snprintf(d->key_chunks, sizeof d->key_chunks, "sg:v%d:{%s}:datq", SG_SESSION_CODEC_VERSION,
             session_id);
}

/* Runs script s on the three keys with nargs integer arguments and the TTL. */
static sg_status dat_eval(sg_dat_redis *d, sg_redis_script *s, int nargs, const long long *args,
                          redisReply **rep, sg_error *err)
{
    sg_redis_cmd c = {0};
    char buf[5][24];
    sg_redis_arg(&c, d->key_state, (size_t)-1);
    sg_redis_arg(&c, d->key_window, (size_t)-1);
    sg_redis_arg(&c, d->key_chunks, (size_t)-1);
    for (int i = 0; i < nargs && i < 4; i++)
        sg_redis_argf(&c, buf[i], sizeof buf[i], "%lld", args[i]);
    sg_redis_argf(&c, buf[4], sizeof buf[4], "%lld", (long long)d->cfg->session_ttl_s * 1000);
    return sg_redis_eval(d->redis, s, 3, &c, rep, err);
}

/* An integer reply (or an integer element), else def. */
static long long int_of(const redisReply *r, long long def)
{
    return r && r->type == REDIS_REPLY_INTEGER ? r->integer : def;
}

static sg_dat_seen redis_claim(void *self, sg_dat_type t, long long seq)
{
    redisReply *rep;
    if (dat_eval(self, &claim_lua, 2, (long long[]){t, seq}, &rep, NULL) != SG_OK)
        return SG_DAT_FAILED;
    long long v = int_of(rep, -1);
    freeReplyObject(rep);
    return v >= SG_DAT_NEW && v <= SG_DAT_TOO_OLD ? (sg_dat_seen)v : SG_DAT_FAILED;
}

static void redis_unclaim(void *self, sg_dat_type t, long long seq)
{
    redisReply *rep;
    if (t != SG_DAT_AUDIO && dat_eval(self, &unclaim_lua, 2, (long long[]){t, seq}, &rep, NULL) == SG_OK)
        freeReplyObject(rep);
}

static sg_status redis_add_audio(void *self, const sg_config *cfg, long long seq,
                                 const sg_dat_audio_fmt *fmt, uint8_t *data, size_t len,
                                 sg_dat_seen *seen, sg_dat_stats *stats, sg_error *err)
{
    sg_dat_redis *d = self;
    memset(stats, 0, sizeof *stats);
    *seen = SG_DAT_NEW;
    double sec = sg_dat_chunk_seconds(fmt, len);
    uint8_t *rec;
    size_t rec_len;
    sg_status st = sg_dat_record_encode(seq, fmt, data, len, sec, &rec, &rec_len, err);
    free(data);
    if (st != SG_OK)
        return st;
    sg_redis_cmd c = {0};
    char a[8][32];
    sg_redis_arg(&c, d->key_state, (size_t)-1);
    sg_redis_arg(&c, d->key_window, (size_t)-1);
    sg_redis_arg(&c, d->key_chunks, (size_t)-1);
    sg_redis_argf(&c, a[0], sizeof a[0], "%lld", seq);
    sg_redis_arg(&c, rec, rec_len);
    sg_redis_argf(&c, a[1], sizeof a[1], "%zu", len);
    sg_redis_argf(&c, a[2], sizeof a[2], "%.17g", sec);
    sg_redis_argf(&c, a[3], sizeof a[3], "%d", SG_DAT_MAX_CHUNKS);
    sg_redis_argf(&c, a[4], sizeof a[4], "%zu", cfg->audio_max_bytes);
    sg_redis_argf(&c, a[5], sizeof a[5], "%.17g", cfg->audio_max_seconds);
    sg_redis_arg(&c, cfg->audio_policy == SG_POLICY_REJECT ? "1" : "0", 1);
    sg_redis_argf(&c, a[6], sizeof a[6], "%lld", (long long)cfg->session_ttl_s * 1000);
    redisReply *rep;
    st = sg_redis_eval(d->redis, &add_lua, 3, &c, &rep, err);
    free(rec);
    if (st != SG_OK)
        return st;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 6 ||
        rep->element[5]->type != REDIS_REPLY_STRING) {
        freeReplyObject(rep);
        return sg_error_set(err, SG_EINTERNAL, "the DAT add_audio script answered an unexpected "
                            "reply");
    }
    long long code = int_of(rep->element[0], -1);
    stats->kept = int_of(rep->element[1], 0) == 1;
    stats->trimmed = (long)int_of(rep->element[2], 0);
    stats->chunks = (size_t)int_of(rep->element[3], 0);
    stats->bytes = (size_t)int_of(rep->element[4], 0);
    stats->seconds = strtod(rep->element[5]->str, NULL);
    freeReplyObject(rep);
    switch (code) {
    case 0: return SG_OK;
    case 1: *seen = SG_DAT_DUPLICATE; return SG_OK;
    case 2: *seen = SG_DAT_TOO_OLD; return SG_OK;
    case 3: return sg_dat_error_chunk_over(err, cfg, len, sec);
    case 4: return sg_dat_error_full(err, cfg, stats->chunks, stats->seconds, stats->bytes);
    }
    return sg_error_set(err, SG_EINTERNAL, "the DAT add_audio script answered code %lld", code);
}

static void redis_count(void *self, sg_dat_type t, long samples)
{
    redisReply *rep;
    if (dat_eval(self, &count_lua, 2, (long long[]){t, samples}, &rep, NULL) == SG_OK)
        freeReplyObject(rep);
}

static bool redis_frame_newest(void *self, long long seq)
{
    redisReply *rep;
    if (dat_eval(self, &newest_lua, 1, &seq, &rep, NULL) != SG_OK)
        return true; /* the work lock that follows reports the store */
    bool newest = int_of(rep, 1) != 0;
    freeReplyObject(rep);
    return newest;
}

static sg_status redis_take_turn(void *self, sg_dat_turn *out, sg_error *err)
{
    sg_dat_redis *d = self;
    memset(out, 0, sizeof *out);
    long long limits[2] = {SG_DAT_MAX_CHUNKS, (long long)d->cfg->audio_max_bytes +
                                                  (long long)SG_DAT_MAX_CHUNKS * SG_DAT_RECORD_HEADER};
    redisReply *rep;
    sg_status st = dat_eval(d, &take_lua, 2, limits, &rep, err);
    if (st != SG_OK)
        return st;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 || int_of(rep->element[0], -1) != 1 ||
        rep->elements < 6) {
        bool over = rep->type == REDIS_REPLY_ARRAY && rep->elements == 1;
        freeReplyObject(rep);
        sg_log(SG_LOG_ERROR, "session store: %s holds more than a turn can buffer; dropped",
               d->key_chunks);
        return sg_error_set(err, over ? SG_ECORRUPT : SG_EINTERNAL, "the session's buffered DAT "
                            "audio in the store is unreadable (more than a turn can hold); it was "
                            "dropped");
    }
    out->frames = (long)int_of(rep->element[1], 0);
    out->imu_chunks = (long)int_of(rep->element[2], 0);
    out->imu_samples = (long)int_of(rep->element[3], 0);
    out->duplicates = (long)int_of(rep->element[4], 0);
    out->trimmed = (long)int_of(rep->element[5], 0);
    size_t n = rep->elements - 6;
    out->chunks = n ? calloc(n, sizeof *out->chunks) : NULL;
    if (n && !out->chunks) {
        freeReplyObject(rep);
        return sg_error_set(err, SG_ENOMEM, "out of memory taking the buffered audio");
    }
    st = SG_OK;
    for (size_t i = 0; i < n && st == SG_OK; i++) {
        const redisReply *e = rep->element[6 + i];
        if (e->type != REDIS_REPLY_STRING)
            st = sg_error_set(err, SG_ECORRUPT, "a buffered DAT audio chunk is not a string");
        else
            st = sg_dat_record_decode((const uint8_t *)e->str, e->len, &out->chunks[i], err);
        if (st == SG_OK && i && out->chunks[i].seq <= out->chunks[i - 1].seq)
            st = sg_error_set(err, SG_ECORRUPT, "the buffered DAT audio chunks are out of order");
        if (st == SG_OK || out->chunks[i].data) {
            out->n = i + 1;
            out->bytes += out->chunks[i].len;
            out->seconds += out->chunks[i].seconds;
        }
    }
    freeReplyObject(rep);
    if (st != SG_OK) {
        sg_log(SG_LOG_ERROR, "session store: %s: %s", d->key_chunks, err ? err->msg : "");
        sg_dat_turn_free(out);
    }
    return st;
}

const sg_dat_ops sg_dat_redis_ops = {
    .claim = redis_claim,
    .unclaim = redis_unclaim,
    .add_audio = redis_add_audio,
    .count = redis_count,
    .frame_newest = redis_frame_newest,
    .take_turn = redis_take_turn,
};
