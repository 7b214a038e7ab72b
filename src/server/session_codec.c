/* The formats of a shared session store's values (session_codec.h): a writer that lays out a
 * session's parts as tagged, length-prefixed little-endian fields, and a reader that checks every
 * length against what is left, every count against its bound and every number against what the
 * code using it assumes, so that a decoded session is one the server could have made itself.
 *
 * Fields (all integers little-endian; a string is a u32 length and its bytes, no NUL inside):
 *   META   1 privacy  u8 bits (1 raw audio, 2 raw frames, 4 transcripts)
 *          2 created  f64 wall-clock seconds
 *          3 counters i64 queries, i64 frames, i64 transcripts, u8 has_frame
 *   STATE 10 gate     f32 diff_tau, i32 min_gap, u8 has_prev, f32 prev[64], f32 key[64], f32 acc,
 *                     i32 since_key, i64 frames, i64 keyframes
 *         11 scene    u8 has_scene, str visual_context, i64 frames, i64 keyframes,
 *                     str scene JSON ("" = none), i64 number of the DAT frame analysed (-1)
 *         12 pixels   (when the pixel describer made the scene) i32 width, i32 height,
 *                     f32 brightness, u8 brightness label, f32 contrast, u8 colours,
 *                     3 x (str name, f32 fraction), f32 sharpness, u8 sharpness label,
 *                     f32 edge density, u8 text_like, f32 change, str summary
 *         13 embedding u32 dim, f32[dim]
 *         14 transcripts u32 n <= SG_TRANSCRIPTS_KEPT, str[n] oldest first
 *         15 history  u32 n <= SG_HISTORY_TURNS, n x (u8 1 query | 2 response, the strings)
 *         16 ocr      str the text OCR read on the last keyframe (<= SG_OCR_TEXT_MAX bytes;
 *                     absent when OCR did not run on it)
 *   RAW   20 frames   u32 n, n x (u32 length, bytes) oldest first
 *         21 audio    u64 n, f32[n] */
#include "server/session_codec.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"

#define MAGIC "SGSS"
#define HEADER 6 /* magic, version, part */
#define EMBEDDING_DIM_MAX 65536
#define FRAMES_MAX 1000 /* FRAME_HISTORY_SIZE's ceiling */

enum {
    F_PRIVACY = 1, F_CREATED = 2, F_COUNTERS = 3,
    F_GATE = 10, F_SCENE = 11, F_PIXELS = 12, F_EMBEDDING = 13, F_TRANSCRIPTS = 14, F_HISTORY = 15,
    F_OCR = 16,
    F_FRAMES = 20, F_AUDIO = 21,
};

/* The describer's labels, by index (sg_scene keeps pointers to static strings). */
static const char *const brightness_labels[] = {"very dark", "dark", "dim", "moderately lit",
                                                "bright", "very bright"};
static const char *const sharpness_labels[] = {"blurry", "soft", "sharp"};

/* ---- writing ------------------------------------------------------------------------------ */

typedef struct writer {
    uint8_t *p;
    size_t n, cap;
    bool oom;
    size_t field_at; /* where the open field's length goes */
} writer;

static void put(writer *w, const void *src, size_t n)
{
    if (w->oom || n == 0)
        return;
    if (w->n + n > w->cap) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap < w->n + n)
            cap *= 2;
        uint8_t *q = realloc(w->p, cap);
        if (!q) {
            w->oom = true;
            return;
        }
        w->p = q;
        w->cap = cap;
    }
    memcpy(w->p + w->n, src, n);
    w->n += n;
}

/* x86-64 and every target this builds for is little-endian: values are their memory bytes. */
static void put_u8(writer *w, unsigned v) { uint8_t b = (uint8_t)v; put(w, &b, 1); }
static void put_u32(writer *w, uint32_t v) { put(w, &v, 4); }
static void put_i32(writer *w, int32_t v) { put(w, &v, 4); }
static void put_i64(writer *w, int64_t v) { put(w, &v, 8); }
static void put_f32(writer *w, float v) { put(w, &v, 4); }
static void put_f64(writer *w, double v) { put(w, &v, 8); }

static void put_str(writer *w, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    put_u32(w, (uint32_t)n);
    put(w, s, n);
}

static void field_begin(writer *w, unsigned tag)
{
    put_u8(w, tag);
    w->field_at = w->n;
    put_u32(w, 0);
}

static void field_end(writer *w)
{
    if (w->oom)
        return;
    uint32_t len = (uint32_t)(w->n - w->field_at - 4);
    memcpy(w->p + w->field_at, &len, 4);
}

static void header(writer *w, sg_session_part part)
{
    put(w, MAGIC, 4);
    put_u8(w, SG_SESSION_CODEC_VERSION);
    put_u8(w, part);
}

static sg_status finish(writer *w, uint8_t **out, size_t *len, sg_error *err)
{
    if (w->oom || w->n > UINT32_MAX) { /* a field's length is 32 bits */
        free(w->p);
        *out = NULL;
        *len = 0;
        return sg_error_set(err, SG_ENOMEM, "out of memory encoding the session");
    }
    *out = w->p;
    *len = w->n;
    return SG_OK;
}

static int label_index(const char *label, const char *const *labels, int n)
{
    for (int i = 0; i < n; i++)
        if (label && strcmp(label, labels[i]) == 0)
            return i;
    return 0;
}

static void put_pixels(writer *w, const sg_scene *sc)
{
    put_i32(w, sc->width);
    put_i32(w, sc->height);
    put_f32(w, sc->brightness);
    put_u8(w, (unsigned)label_index(sc->brightness_label, brightness_labels, 6));
    put_f32(w, sc->contrast);
    put_u8(w, (unsigned)sc->ncolors);
    for (int i = 0; i < 3; i++) {
        put_str(w, i < sc->ncolors ? sc->colors[i].name : "");
        put_f32(w, i < sc->ncolors ? sc->colors[i].fraction : 0);
    }
    put_f32(w, sc->sharpness);
    put_u8(w, (unsigned)label_index(sc->sharpness_label, sharpness_labels, 3));
    put_f32(w, sc->edge_density);
    put_u8(w, sc->text_like);
    put_f32(w, sc->change);
    put_str(w, sc->summary);
}

static void put_state(writer *w, const sg_session *s)
{
    const sg_visual_memory *m = &s->vision;
    const sg_keyframe_gate *g = &m->gate;
    field_begin(w, F_GATE);
    put_f32(w, g->diff_tau);
    put_i32(w, g->min_gap);
    put_u8(w, g->has_prev);
    put(w, g->prev, sizeof g->prev);
    put(w, g->key, sizeof g->key);
    put_f32(w, g->acc);
    put_i32(w, g->since_key);
    put_i64(w, g->frames);
    put_i64(w, g->keyframes);
    field_end(w);

    char *scene = m->scene ? json_dumps(m->scene, JSON_COMPACT) : NULL;
    if (m->scene && !scene)
        w->oom = true;
    field_begin(w, F_SCENE);
    put_u8(w, m->has_scene);
    put_str(w, m->visual_context);
    put_i64(w, m->frames);
    put_i64(w, m->keyframes);
    put_str(w, scene);
    put_i64(w, s->dat_frame_analysed);
    field_end(w);
    free(scene);

    if (m->pixels_valid) {
        field_begin(w, F_PIXELS);
        put_pixels(w, &m->pixels);
        field_end(w);
    }
    if (m->embedding && m->embedding_dim > 0) {
        field_begin(w, F_EMBEDDING);
        put_u32(w, (uint32_t)m->embedding_dim);
        put(w, m->embedding, (size_t)m->embedding_dim * sizeof(float));
        field_end(w);
    }
    if (m->ocr_text) {
        field_begin(w, F_OCR);
        put_str(w, m->ocr_text);
        field_end(w);
    }
    if (s->transcripts_n > 0) {
        field_begin(w, F_TRANSCRIPTS);
        put_u32(w, (uint32_t)s->transcripts_n);
        for (int i = 0; i < s->transcripts_n; i++)
            put_str(w, s->transcripts[(s->transcripts_head + i) % SG_TRANSCRIPTS_KEPT]);
        field_end(w);
    }
    if (s->history_n > 0) {
        field_begin(w, F_HISTORY);
        put_u32(w, (uint32_t)s->history_n);
        for (int i = 0; i < s->history_n; i++) {
            char *const *turn = s->history[(s->history_head + i) % SG_HISTORY_TURNS];
            put_u8(w, (turn[0] ? 1u : 0u) | (turn[1] ? 2u : 0u));
            if (turn[0])
                put_str(w, turn[0]);
            if (turn[1])
                put_str(w, turn[1]);
        }
        field_end(w);
    }
}

static void put_raw(writer *w, const sg_session *s)
{
    if (s->frames_n > 0) {
        field_begin(w, F_FRAMES);
        put_u32(w, (uint32_t)s->frames_n);
        for (int i = 0; i < s->frames_n; i++) {
            const sg_blob *b = &s->frames[(s->frames_head + i) % s->frames_cap];
            put_u32(w, (uint32_t)b->len);
            put(w, b->data, b->len);
        }
        field_end(w);
    }
    if (s->audio_n > 0) {
        field_begin(w, F_AUDIO);
        put_i64(w, (int64_t)s->audio_n);
        put(w, s->audio, s->audio_n * sizeof(float));
        field_end(w);
    }
}

sg_status sg_session_encode(const sg_session *s, sg_session_part part, uint8_t **out,
                            size_t *len, sg_error *err)
{
    writer w = {0};
    header(&w, part);
    if (part == SG_SESSION_PART_STATE) {
        put_state(&w, s);
    } else if (part == SG_SESSION_PART_RAW) {
        put_raw(&w, s);
    } else {
        sg_session_meta m = {s->privacy, s->created_wall_s, atomic_load(&s->query_count),
                             atomic_load(&s->frame_count), atomic_load(&s->transcript_count),
                             atomic_load(&s->has_frame)};
        free(w.p);
        return sg_session_meta_encode(&m, out, len, err);
    }
    return finish(&w, out, len, err);
}

sg_status sg_session_meta_encode(const sg_session_meta *m, uint8_t **out, size_t *len,
                                 sg_error *err)
{
    writer w = {0};
    header(&w, SG_SESSION_PART_META);
    field_begin(&w, F_PRIVACY);
    put_u8(&w, (m->privacy.store_raw_audio ? 1u : 0u) | (m->privacy.store_raw_frames ? 2u : 0u) |
                   (m->privacy.store_transcripts ? 4u : 0u));
    field_end(&w);
    field_begin(&w, F_CREATED);
    put_f64(&w, m->created_wall_s);
    field_end(&w);
    field_begin(&w, F_COUNTERS);
    put_i64(&w, m->queries);
    put_i64(&w, m->frames);
    put_i64(&w, m->transcripts);
    put_u8(&w, m->has_frame);
    field_end(&w);
    return finish(&w, out, len, err);
}

/* ---- reading ------------------------------------------------------------------------------ */

typedef struct reader {
    const uint8_t *p;
    size_t n, at;
    const char *what; /* the field being read, for the message */
    sg_error *err;
    bool bad;
} reader;

static bool fail(reader *r, const char *why)
{
    if (!r->bad)
        sg_error_set(r->err, SG_ECORRUPT, "%s: %s", r->what, why);
    r->bad = true;
    return false;
}

static bool get(reader *r, void *dst, size_t n)
{
    if (r->bad)
        return false;
    if (n > r->n - r->at)
        return fail(r, "cut short");
    memcpy(dst, r->p + r->at, n);
    r->at += n;
    return true;
}

static uint8_t get_u8(reader *r) { uint8_t v = 0; get(r, &v, 1); return v; }
static uint32_t get_u32(reader *r) { uint32_t v = 0; get(r, &v, 4); return v; }
static int32_t get_i32(reader *r) { int32_t v = 0; get(r, &v, 4); return v; }
static int64_t get_i64(reader *r) { int64_t v = 0; get(r, &v, 8); return v; }

static float get_f32(reader *r)
{
    float v = 0;
    if (get(r, &v, 4) && !isfinite(v))
        fail(r, "a number that is not finite");
    return v;
}

static double get_f64(reader *r)
{
    double v = 0;
    if (get(r, &v, 8) && !isfinite(v))
        fail(r, "a number that is not finite");
    return v;
}

static bool get_bool(reader *r)
{
    uint8_t v = get_u8(r);
    if (v > 1)
        fail(r, "a flag that is not 0 or 1");
    return v == 1;
}

static int64_t get_count(reader *r, int64_t lo, int64_t hi)
{
    int64_t v = get_i64(r);
    if (!r->bad && (v < lo || v > hi))
        fail(r, "a count out of range");
    return v;
}

/* The next string into a new C string (NULL after an error). */
static char *get_str(reader *r, size_t max)
{
    uint32_t n = get_u32(r);
    if (r->bad)
        return NULL;
    if (n > max || n > r->n - r->at) {
        fail(r, n > max ? "a string over its limit" : "cut short");
        return NULL;
    }
    if (memchr(r->p + r->at, 0, n)) {
        fail(r, "a NUL byte inside a string");
        return NULL;
    }
    char *s = malloc((size_t)n + 1);
    if (!s) {
        sg_error_set(r->err, SG_ENOMEM, "out of memory decoding the session");
        r->bad = true;
        return NULL;
    }
    memcpy(s, r->p + r->at, n);
    s[n] = 0;
    r->at += n;
    return s;
}

/* The next string into a fixed buffer of cap bytes. */
static void get_str_into(reader *r, char *out, size_t cap)
{
    char *s = get_str(r, cap - 1);
    if (s)
        memcpy(out, s, strlen(s) + 1);
    free(s);
}

static void *alloc(reader *r, size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        sg_error_set(r->err, SG_ENOMEM, "out of memory decoding the session");
        r->bad = true;
    }
    return p;
}

static void read_gate(reader *r, sg_keyframe_gate *g)
{
    g->diff_tau = get_f32(r);
    g->min_gap = get_i32(r);
    g->has_prev = get_bool(r);
    for (int i = 0; i < 64; i++)
        g->prev[i] = get_f32(r);
    for (int i = 0; i < 64; i++)
        g->key[i] = get_f32(r);
    g->acc = get_f32(r);
    g->since_key = get_i32(r);
    g->frames = (long)get_count(r, 0, INT64_MAX);
    g->keyframes = (long)get_count(r, 0, INT64_MAX);
    if (!r->bad && (g->min_gap < 0 || g->since_key < 0 || g->diff_tau < 0 || g->acc < 0))
        fail(r, "a negative gate setting");
}

static void read_scene(reader *r, sg_session *s)
{
    sg_visual_memory *m = &s->vision;
    m->has_scene = get_bool(r);
    get_str_into(r, m->visual_context, sizeof m->visual_context);
    m->frames = (long)get_count(r, 0, INT64_MAX);
    m->keyframes = (long)get_count(r, 0, INT64_MAX);
    char *scene = get_str(r, r->n);
    if (scene && scene[0]) {
        sg_error jerr = {0};
        m->scene = sg_json_parse(scene, strlen(scene), &jerr);
        if (!json_is_object(m->scene)) {
            json_decref(m->scene);
            m->scene = NULL;
            fail(r, "the scene is not a JSON object");
        }
    }
    free(scene);
    s->dat_frame_analysed = get_count(r, -1, SG_DAT_SEQ_MAX);
}

static void read_pixels(reader *r, sg_visual_memory *m)
{
    sg_scene *sc = &m->pixels;
    sc->width = get_i32(r);
    sc->height = get_i32(r);
    sc->brightness = get_f32(r);
    unsigned bl = get_u8(r);
    sc->contrast = get_f32(r);
    unsigned nc = get_u8(r);
    for (int i = 0; i < 3; i++) {
        get_str_into(r, sc->colors[i].name, sizeof sc->colors[i].name);
        sc->colors[i].fraction = get_f32(r);
    }
    sc->sharpness = get_f32(r);
    unsigned sl = get_u8(r);
    sc->edge_density = get_f32(r);
    sc->text_like = get_bool(r);
    sc->change = get_f32(r);
    get_str_into(r, sc->summary, sizeof sc->summary);
    if (r->bad)
        return;
    if (bl >= 6 || sl >= 3 || nc > 3)
        fail(r, "a label or colour count out of range");
    sc->brightness_label = brightness_labels[bl < 6 ? bl : 0];
    sc->sharpness_label = sharpness_labels[sl < 3 ? sl : 0];
    sc->ncolors = (int)(nc <= 3 ? nc : 0);
    m->pixels_valid = !r->bad;
}

static void read_embedding(reader *r, sg_visual_memory *m)
{
    uint32_t dim = get_u32(r);
    if (r->bad)
        return;
    if (dim == 0 || dim > EMBEDDING_DIM_MAX || (size_t)dim * 4 > r->n - r->at) {
        fail(r, "a dimension out of range");
        return;
    }
    m->embedding = alloc(r, (size_t)dim * sizeof(float));
    if (!m->embedding)
        return;
    m->embedding_dim = (int)dim;
    for (uint32_t i = 0; i < dim; i++)
        m->embedding[i] = get_f32(r);
}

static void read_transcripts(reader *r, sg_session *s)
{
    uint32_t n = get_u32(r);
    if (!r->bad && n > SG_TRANSCRIPTS_KEPT) {
        fail(r, "more transcripts than a session keeps");
        return;
    }
    for (uint32_t i = 0; i < n && !r->bad; i++) {
        s->transcripts[i] = get_str(r, r->n);
        if (s->transcripts[i])
            s->transcripts_n = (int)i + 1;
    }
}

static void read_history(reader *r, sg_session *s)
{
    uint32_t n = get_u32(r);
    if (!r->bad && n > SG_HISTORY_TURNS) {
        fail(r, "more turns than a session keeps");
        return;
    }
    for (uint32_t i = 0; i < n && !r->bad; i++) {
        uint8_t has = get_u8(r);
        if (!r->bad && has > 3) {
            fail(r, "a turn's flags out of range");
            return;
        }
        s->history_n = (int)i + 1; /* so that a reset frees what this turn got */
        if (has & 1)
            s->history[i][0] = get_str(r, r->n);
        if (has & 2)
            s->history[i][1] = get_str(r, r->n);
    }
}

static void read_frames(reader *r, sg_session *s)
{
    uint32_t n = get_u32(r);
    if (r->bad)
        return;
    /* each frame is at least its 4-byte length and 1 byte: bounds the array by the input */
    if (n == 0 || n > FRAMES_MAX || (size_t)n * 5 > r->n - r->at) {
        fail(r, "a frame count out of range");
        return;
    }
    s->frames = calloc(n, sizeof *s->frames);
    if (!s->frames) {
        sg_error_set(r->err, SG_ENOMEM, "out of memory decoding the session");
        r->bad = true;
        return;
    }
    s->frames_cap = (int)n;
    for (uint32_t i = 0; i < n && !r->bad; i++) {
        uint32_t len = get_u32(r);
        if (r->bad)
            return;
        if (len == 0 || len > r->n - r->at) {
            fail(r, "a frame's length out of range");
            return;
        }
        uint8_t *d = alloc(r, len);
        if (!d)
            return;
        get(r, d, len);
        s->frames[i] = (sg_blob){d, len};
        s->frames_n = (int)i + 1;
        s->frames_bytes += len;
    }
}

static void read_audio(reader *r, sg_session *s)
{
    int64_t n = get_i64(r);
    if (r->bad)
        return;
    if (n <= 0 || (uint64_t)n > (r->n - r->at) / 4) {
        fail(r, "a sample count out of range");
        return;
    }
    s->audio = alloc(r, (size_t)n * sizeof(float));
    if (!s->audio)
        return;
    s->audio_cap = (size_t)n;
    for (int64_t i = 0; i < n && !r->bad; i++)
        s->audio[i] = get_f32(r);
    s->audio_n = r->bad ? 0 : (size_t)n;
}

static const char *field_name(unsigned tag)
{
    switch (tag) {
    case F_PRIVACY: return "privacy";
    case F_CREATED: return "created";
    case F_COUNTERS: return "counters";
    case F_GATE: return "keyframe gate";
    case F_SCENE: return "scene";
    case F_PIXELS: return "pixel statistics";
    case F_EMBEDDING: return "embedding";
    case F_TRANSCRIPTS: return "transcripts";
    case F_HISTORY: return "history";
    case F_OCR: return "ocr text";
    case F_FRAMES: return "raw frames";
    case F_AUDIO: return "raw audio";
    }
    return "field";
}

/* The fields each part may hold, and those it must. */
static bool tag_allowed(sg_session_part part, unsigned tag)
{
    switch (part) {
    case SG_SESSION_PART_META: return tag >= F_PRIVACY && tag <= F_COUNTERS;
    case SG_SESSION_PART_STATE: return tag >= F_GATE && tag <= F_OCR;
    case SG_SESSION_PART_RAW: return tag == F_FRAMES || tag == F_AUDIO;
    }
    return false;
}

static uint64_t required(sg_session_part part)
{
    switch (part) {
    case SG_SESSION_PART_META:
        return 1ull << F_PRIVACY | 1ull << F_CREATED | 1ull << F_COUNTERS;
    case SG_SESSION_PART_STATE: return 1ull << F_GATE | 1ull << F_SCENE;
    case SG_SESSION_PART_RAW: return 0;
    }
    return 0;
}

/* Walks the value's fields, calling each(ctx, tag, reader on its payload); checks the header, the
 * order-free at-most-once rule, the required fields and that each payload is read exactly. */
static sg_status walk(const uint8_t *buf, size_t len, sg_session_part part,
                      void (*each)(void *ctx, unsigned tag, reader *fr), void *ctx, sg_error *err)
{
    static const char *const part_names[] = {"", "metadata", "state", "raw media"};
    const char *pn = part_names[part];
    if (!buf || len < HEADER || memcmp(buf, MAGIC, 4) != 0)
        return sg_error_set(err, SG_ECORRUPT, "the session's %s is not in this server's format "
                            "(no SGSS header)", pn);
    if (buf[4] != SG_SESSION_CODEC_VERSION)
        return sg_error_set(err, SG_ECORRUPT, "the session's %s is format version %u; this server "
                            "reads version %d", pn, buf[4], SG_SESSION_CODEC_VERSION);
    if (buf[5] != part)
        return sg_error_set(err, SG_ECORRUPT, "the session's %s holds another part (%u)", pn,
                            buf[5]);
    uint64_t seen = 0;
    size_t at = HEADER;
    while (at < len) {
        if (len - at < 5)
            return sg_error_set(err, SG_ECORRUPT, "the session's %s: a field header is cut short",
                                pn);
        unsigned tag = buf[at];
        uint32_t flen;
        memcpy(&flen, buf + at + 1, 4);
        at += 5;
        if (!tag_allowed(part, tag))
            return sg_error_set(err, SG_ECORRUPT, "the session's %s: field %u is unknown here", pn,
                                tag);
        if (seen >> tag & 1)
            return sg_error_set(err, SG_ECORRUPT, "the session's %s: field %s is repeated", pn,
                                field_name(tag));
        if (flen > len - at)
            return sg_error_set(err, SG_ECORRUPT, "the session's %s: field %s is cut short", pn,
                                field_name(tag));
        seen |= 1ull << tag;
        reader fr = {buf + at, flen, 0, field_name(tag), err, false};
        each(ctx, tag, &fr);
        if (!fr.bad && fr.at != fr.n)
            fail(&fr, "bytes left over");
        if (fr.bad) {
            if (err && err->code == SG_ECORRUPT) {
                char why[sizeof err->msg];
                snprintf(why, sizeof why, "%s", err->msg);
                sg_error_set(err, SG_ECORRUPT, "the session's %s: %s", pn, why);
            }
            return err ? err->code : SG_ECORRUPT;
        }
        at += flen;
    }
    uint64_t missing = required(part) & ~seen;
    if (missing) {
        unsigned tag = 0;
        while (!(missing >> tag & 1))
            tag++;
        return sg_error_set(err, SG_ECORRUPT, "the session's %s has no %s field", pn,
                            field_name(tag));
    }
    return SG_OK;
}

static void each_session_field(void *ctx, unsigned tag, reader *r)
{
    sg_session *s = ctx;
    switch (tag) {
    case F_GATE: read_gate(r, &s->vision.gate); break;
    case F_SCENE: read_scene(r, s); break;
    case F_PIXELS: read_pixels(r, &s->vision); break;
    case F_EMBEDDING: read_embedding(r, &s->vision); break;
    case F_TRANSCRIPTS: read_transcripts(r, s); break;
    case F_HISTORY: read_history(r, s); break;
    case F_OCR: s->vision.ocr_text = get_str(r, SG_OCR_TEXT_MAX); break;
    case F_FRAMES: read_frames(r, s); break;
    case F_AUDIO: read_audio(r, s); break;
    default: fail(r, "unknown field"); break;
    }
}

sg_status sg_session_decode(sg_session *s, sg_session_part part, const uint8_t *buf, size_t len,
                            sg_error *err)
{
    if (part != SG_SESSION_PART_STATE && part != SG_SESSION_PART_RAW)
        return sg_error_set(err, SG_EINTERNAL, "sg_session_decode reads state or raw parts");
    sg_error local;
    if (!err)
        err = &local;
    err->code = SG_OK;
    return walk(buf, len, part, each_session_field, s, err);
}

static void each_meta_field(void *ctx, unsigned tag, reader *r)
{
    sg_session_meta *m = ctx;
    if (tag == F_PRIVACY) {
        uint8_t bits = get_u8(r);
        if (!r->bad && bits > 7)
            fail(r, "unknown privacy bits");
        m->privacy.store_raw_audio = bits & 1;
        m->privacy.store_raw_frames = bits & 2;
        m->privacy.store_transcripts = bits & 4;
    } else if (tag == F_CREATED) {
        m->created_wall_s = get_f64(r);
        if (!r->bad && m->created_wall_s < 0)
            fail(r, "a negative time");
    } else {
        m->queries = (long)get_count(r, 0, INT64_MAX);
        m->frames = (long)get_count(r, 0, INT64_MAX);
        m->transcripts = (long)get_count(r, 0, SG_TRANSCRIPTS_KEPT);
        m->has_frame = get_bool(r);
    }
}

sg_status sg_session_meta_decode(const uint8_t *buf, size_t len, sg_session_meta *m,
                                 sg_error *err)
{
    memset(m, 0, sizeof *m);
    sg_error local;
    if (!err)
        err = &local;
    err->code = SG_OK;
    return walk(buf, len, SG_SESSION_PART_META, each_meta_field, m, err);
}

/* ---- DAT audio chunk records ------------------------------------------------------------------ */

#define DAT_MAGIC "SGDC"
#define DAT_S16 1
#define DAT_F32 2

sg_status sg_dat_record_encode(long long seq, const sg_dat_audio_fmt *fmt, const uint8_t *data,
                               size_t len, double seconds, uint8_t **out, size_t *out_len,
                               sg_error *err)
{
    uint8_t *p = malloc(SG_DAT_RECORD_HEADER + len);
    if (!p)
        return sg_error_set(err, SG_ENOMEM, "out of memory buffering audio");
    uint32_t rate = (uint32_t)fmt->sample_rate;
    int64_t s64 = seq;
    memcpy(p, DAT_MAGIC, 4);
    p[4] = SG_SESSION_CODEC_VERSION;
    p[5] = fmt->format == SG_AUDIO_PCM_F32LE ? DAT_F32 : DAT_S16;
    p[6] = (uint8_t)fmt->channels;
    p[7] = 0;
    memcpy(p + 8, &rate, 4);
    memcpy(p + 12, &s64, 8);
    memcpy(p + 20, &seconds, 8);
    memcpy(p + SG_DAT_RECORD_HEADER, data, len);
    *out = p;
    *out_len = SG_DAT_RECORD_HEADER + len;
    return SG_OK;
}

sg_status sg_dat_record_decode(const uint8_t *buf, size_t len, sg_dat_chunk *c, sg_error *err)
{
    memset(c, 0, sizeof *c);
    if (!buf || len <= SG_DAT_RECORD_HEADER || memcmp(buf, DAT_MAGIC, 4) != 0)
        return sg_error_set(err, SG_ECORRUPT, "a buffered DAT audio chunk is not in this server's "
                            "format");
    if (buf[4] != SG_SESSION_CODEC_VERSION)
        return sg_error_set(err, SG_ECORRUPT, "a buffered DAT audio chunk is format version %u; "
                            "this server reads version %d", buf[4], SG_SESSION_CODEC_VERSION);
    uint32_t rate;
    int64_t seq;
    memcpy(&rate, buf + 8, 4);
    memcpy(&seq, buf + 12, 8);
    sg_dat_audio_fmt fmt = {buf[5] == DAT_F32 ? SG_AUDIO_PCM_F32LE : SG_AUDIO_PCM_S16LE,
                            (int)rate, buf[6]};
    size_t n = len - SG_DAT_RECORD_HEADER, frame = (buf[5] == DAT_F32 ? 4u : 2u) * buf[6];
    if ((buf[5] != DAT_S16 && buf[5] != DAT_F32) || buf[6] < 1 || buf[6] > 2 || buf[7] != 0 ||
        rate < 8000 || rate > 192000 || seq < 0 || seq > SG_DAT_SEQ_MAX || n % frame != 0)
        return sg_error_set(err, SG_ECORRUPT, "a buffered DAT audio chunk has a header out of "
                            "range (format %u, %u channels, %u Hz, %zu bytes)", buf[5], buf[6],
                            rate, n);
    const uint8_t *pcm = buf + SG_DAT_RECORD_HEADER;
    if (fmt.format == SG_AUDIO_PCM_F32LE)
        for (size_t i = 0; i < n; i += 4) {
            float x;
            memcpy(&x, pcm + i, 4);
            if (!isfinite(x))
                return sg_error_set(err, SG_ECORRUPT, "a buffered DAT audio chunk holds a "
                                    "non-finite sample");
        }
    c->data = malloc(n);
    if (!c->data)
        return sg_error_set(err, SG_ENOMEM, "out of memory reading buffered audio");
    memcpy(c->data, pcm, n);
    c->len = n;
    c->seq = seq;
    c->fmt = fmt;
    c->seconds = sg_dat_chunk_seconds(&fmt, n);
    return SG_OK;
}
