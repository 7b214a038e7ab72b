/* The skills registry (data/skills.json) and the parser that turns a model's answer into actions
 * for the phone. The parser follows the reference runtime's order - fenced JSON blocks, then
 * literal skill_NNN ids, then capability words - but matches whole words only (the reference used
 * substring tests, so "vision" fired inside "television") and does bounded, linear work, because
 * the text is whatever a model or a user produced. */
#include "agent/actions.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/file.h"
#include "base/phrase.h"

#define SKILLS_MAX_FILE_BYTES (1u << 20)
#define SKILL_ID_MAX 32
#define CAPABILITY_MAX 63
#define ACTION_TYPE_MAX 64

typedef struct skill_cap {
    char *phrase;  /* lowercase, single spaces */
    size_t skill;  /* index into ids */
} skill_cap;

struct sg_skills {
    json_t *root;
    size_t n;
    const char **ids; /* borrowed from root */
    skill_cap *caps;  /* grouped by first byte, registry order within a group */
    size_t ncaps;
    size_t bucket[257]; /* caps starting with byte b are caps[bucket[b] .. bucket[b + 1]) */
};

/* ---- registry ------------------------------------------------------------------------------ */

static bool valid_skill_id(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > SKILL_ID_MAX || !(id[0] >= 'a' && id[0] <= 'z'))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}

/* Lowercases a capability into out; false when it is empty, too long, or has characters other
 * than letters, digits, '_', '-', '\'' and single inner spaces (or does not start and end with a
 * letter, digit or '_'). */
static bool normalize_capability(const char *cap, char *out)
{
    size_t n = strlen(cap);
    if (n == 0 || n > CAPABILITY_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = sg_phrase_lower((unsigned char)cap[i]);
        bool wordc = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
        if (!wordc && c != '-' && c != '\'' && c != ' ')
            return false;
        if (!wordc && (i == 0 || i == n - 1))
            return false;
        if (c == ' ' && cap[i + 1] == ' ')
            return false;
        out[i] = (char)c;
    }
    out[n] = '\0';
    return true;
}

static void skills_free_parts(sg_skills *s)
{
    if (s->caps)
        for (size_t i = 0; i < s->ncaps; i++)
            free(s->caps[i].phrase);
    free(s->caps);
    free(s->ids);
    json_decref(s->root);
}

void sg_skills_free(sg_skills *s)
{
    if (!s)
        return;
    skills_free_parts(s);
    free(s);
}

/* Checks one entry of "skills" and records its id and capabilities. */
static sg_status load_skill(sg_skills *s, const char *path, size_t i, const json_t *e,
                            sg_error *err)
{
    if (!json_is_object(e))
        return sg_error_set(err, SG_EINVAL, "skills registry %.120s: skills[%zu] is not an object",
                            path, i);
    const json_t *jid = json_object_get(e, "id");
    if (!json_is_string(jid))
        return sg_error_set(err, SG_EINVAL,
                            "skills registry %.120s: skills[%zu] has no string \"id\"", path, i);
    const char *id = json_string_value(jid);
    if (!valid_skill_id(id))
        return sg_error_set(err, SG_EINVAL,
                            "skills registry %.120s: skills[%zu]: bad id \"%.40s\" (want "
                            "lowercase letters, digits and '_', e.g. skill_001)",
                            path, i, id);
    for (size_t k = 0; k < s->n; k++)
        if (strcmp(s->ids[k], id) == 0)
            return sg_error_set(err, SG_EINVAL, "skills registry %.120s: duplicate id \"%s\"",
                                path, id);
    const json_t *name = json_object_get(e, "name");
    if (!json_is_string(name) || json_string_length(name) == 0)
        return sg_error_set(err, SG_EINVAL, "skills registry %.120s: %s has no \"name\"", path,
                            id);
    const char *opt[] = {"category", "description"};
    for (size_t k = 0; k < 2; k++) {
        const json_t *v = json_object_get(e, opt[k]);
        if (v && !json_is_string(v))
            return sg_error_set(err, SG_EINVAL,
                                "skills registry %.120s: %s: \"%s\" is not a string", path, id,
                                opt[k]);
    }
    const json_t *caps = json_object_get(e, "capabilities");
    if (!json_is_array(caps))
        return sg_error_set(err, SG_EINVAL,
                            "skills registry %.120s: %s: \"capabilities\" must be an array", path,
                            id);
    s->ids[s->n] = id;
    size_t ci;
    const json_t *c;
    json_array_foreach(caps, ci, c) {
        char norm[CAPABILITY_MAX + 1];
        if (!json_is_string(c) || !normalize_capability(json_string_value(c), norm))
            return sg_error_set(err, SG_EINVAL,
                                "skills registry %.120s: %s: capabilities[%zu] must be a word or "
                                "phrase of at most %d letters, digits, '_', '-', '\\''",
                                path, id, ci, CAPABILITY_MAX);
        for (size_t k = 0; k < s->ncaps; k++)
            if (strcmp(s->caps[k].phrase, norm) == 0)
                return sg_error_set(err, SG_EINVAL,
                                    "skills registry %.120s: capability \"%s\" is listed by both "
                                    "%s and %s",
                                    path, norm, s->ids[s->caps[k].skill], id);
        skill_cap *nc = realloc(s->caps, (s->ncaps + 1) * sizeof *nc);
        if (!nc)
            return sg_error_set(err, SG_ENOMEM, "skills registry: out of memory");
        s->caps = nc;
        s->caps[s->ncaps].phrase = strdup(norm);
        s->caps[s->ncaps].skill = s->n;
        if (!s->caps[s->ncaps].phrase)
            return sg_error_set(err, SG_ENOMEM, "skills registry: out of memory");
        s->ncaps++;
    }
    s->n++;
    return SG_OK;
}

/* Groups capabilities by first byte (a stable counting sort) for the scanner. */
static sg_status index_caps(sg_skills *s, sg_error *err)
{
    size_t count[256] = {0};
    for (size_t i = 0; i < s->ncaps; i++)
        count[(unsigned char)s->caps[i].phrase[0]]++;
    s->bucket[0] = 0;
    for (size_t b = 0; b < 256; b++)
        s->bucket[b + 1] = s->bucket[b] + count[b];
    if (s->ncaps == 0)
        return SG_OK;
    skill_cap *sorted = malloc(s->ncaps * sizeof *sorted);
    if (!sorted)
        return sg_error_set(err, SG_ENOMEM, "skills registry: out of memory");
    size_t next[256];
    memcpy(next, s->bucket, sizeof next);
    for (size_t i = 0; i < s->ncaps; i++)
        sorted[next[(unsigned char)s->caps[i].phrase[0]]++] = s->caps[i];
    free(s->caps);
    s->caps = sorted;
    return SG_OK;
}

sg_skills *sg_skills_load(const char *path, sg_error *err)
{
    if (!path || !*path) {
        sg_error_set(err, SG_EINVAL, "skills registry: no path given");
        return NULL;
    }
    char *buf = NULL;
    size_t len = 0;
    if (sg_file_read(path, SKILLS_MAX_FILE_BYTES, &buf, &len, err) != SG_OK)
        return NULL;
    json_error_t jerr;
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    free(buf);
    if (!root) {
        sg_error_set(err, SG_EINVAL, "skills registry %.120s: invalid JSON at line %d, column %d: %.80s",
                     path, jerr.line, jerr.column, jerr.text);
        return NULL;
    }
    sg_skills *s = calloc(1, sizeof *s);
    if (!s) {
        json_decref(root);
        sg_error_set(err, SG_ENOMEM, "skills registry: out of memory");
        return NULL;
    }
    s->root = root;
    const json_t *version = json_object_get(root, "version");
    const json_t *skills = json_object_get(root, "skills");
    sg_status st = SG_OK;
    if (!json_is_object(root))
        st = sg_error_set(err, SG_EINVAL, "skills registry %.120s: top level is not an object",
                          path);
    else if (version && !(json_is_integer(version) && json_integer_value(version) == 1))
        st = sg_error_set(err, SG_EINVAL,
                          "skills registry %.120s: unsupported \"version\" (only 1 is known)", path);
    else if (!json_is_array(skills))
        st = sg_error_set(err, SG_EINVAL, "skills registry %.120s: \"skills\" must be an array",
                          path);
    else if (!(s->ids = malloc((json_array_size(skills) + 1) * sizeof *s->ids)))
        st = sg_error_set(err, SG_ENOMEM, "skills registry: out of memory");
    for (size_t i = 0; st == SG_OK && i < json_array_size(skills); i++)
        st = load_skill(s, path, i, json_array_get(skills, i), err);
    if (st == SG_OK)
        st = index_caps(s, err);
    if (st != SG_OK) {
        sg_skills_free(s);
        return NULL;
    }
    return s;
}

sg_skills *sg_skills_load_default(sg_error *err)
{
    const char *env = getenv("SG_SKILLS_PATH");
    if (env && *env)
        return sg_skills_load(env, err);
    const char *candidates[] = {
#ifdef SG_SOURCE_DIR
        SG_SOURCE_DIR "/data/skills.json",
#endif
        "/usr/share/smartglass-edge/skills.json",
    };
    size_t ncand = sizeof candidates / sizeof candidates[0];
    for (size_t i = 0; i < ncand; i++)
        if (access(candidates[i], F_OK) == 0)
            return sg_skills_load(candidates[i], err);
    sg_error_set(err, SG_EIO, "skills registry not found: set SG_SKILLS_PATH (looked in %.100s%s%.100s)",
                 candidates[0], ncand > 1 ? ", " : "", ncand > 1 ? candidates[ncand - 1] : "");
    return NULL;
}

size_t sg_skills_count(const sg_skills *s)
{
    return s ? s->n : 0;
}

const json_t *sg_skills_json(const sg_skills *s)
{
    return s ? s->root : NULL;
}

static long find_skill(const sg_skills *s, const char *id)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->ids[i], id) == 0)
            return (long)i;
    return -1;
}

bool sg_skills_has(const sg_skills *s, const char *id)
{
    return s && id && find_skill(s, id) >= 0;
}

/* ---- action parsing ------------------------------------------------------------------------ */

typedef struct parse_ctx {
    const sg_skills *s;
    json_t *out;
    size_t n;
    bool oom;
    char keys[SG_ACTIONS_MAX][ACTION_TYPE_MAX + 3]; /* "s:<skill id>" or "t:<type>" */
} parse_ctx;

static bool full(const parse_ctx *c)
{
    return c->oom || c->n >= SG_ACTIONS_MAX;
}

/* Appends an action unless its key was seen. payload is a new reference (stolen). */
static void add_action(parse_ctx *c, const char *type, long skill, json_t *payload,
                       const char *source)
{
    char key[ACTION_TYPE_MAX + 3];
    snprintf(key, sizeof key, "%s:%s", skill >= 0 ? "s" : "t",
             skill >= 0 ? c->s->ids[skill] : type);
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->keys[i], key) == 0) {
            json_decref(payload);
            return;
        }
    json_t *a = payload ? json_object() : NULL;
    if (!a) {
        json_decref(payload);
        c->oom = true;
        return;
    }
    /* json_object_set_new and json_array_append_new consume their value even when they fail. */
    bool ok = !json_object_set_new(a, "type", json_string(type)) &&
              (skill < 0 || !json_object_set_new(a, "skill_id", json_string(c->s->ids[skill])));
    if (!ok)
        json_decref(payload);
    ok = ok && !json_object_set_new(a, "payload", payload) &&
         !json_object_set_new(a, "source", json_string(source));
    if (!ok) {
        json_decref(a);
        c->oom = true;
        return;
    }
    if (json_array_append_new(c->out, a)) {
        c->oom = true;
        return;
    }
    memcpy(c->keys[c->n++], key, sizeof key);
}

static bool valid_action_type(const char *t)
{
    size_t n = strlen(t);
    if (n == 0 || n > ACTION_TYPE_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = t[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-' || ch == '.'))
            return false;
    }
    return true;
}

/* One action object from a JSON block, shaped like the reference's: "type" (alias "action",
 * default "skill_invocation"), "skill_id" (alias "skill"), "payload" - or, without one, the
 * object's other keys as the payload. Unknown skills and malformed objects are dropped. */
static void add_block_object(parse_ctx *c, json_t *obj)
{
    if (!json_is_object(obj))
        return;
    json_t *jt = json_object_get(obj, "type");
    if (!jt)
        jt = json_object_get(obj, "action");
    json_t *js = json_object_get(obj, "skill_id");
    if (!js)
        js = json_object_get(obj, "skill");
    if (!jt && !js)
        return;
    const char *type = "skill_invocation";
    if (jt) {
        if (!json_is_string(jt) || !valid_action_type(json_string_value(jt)))
            return;
        type = json_string_value(jt);
    }
    long skill = -1;
    if (js) {
        if (!json_is_string(js) || (skill = find_skill(c->s, json_string_value(js))) < 0)
            return;
    }
    if (skill < 0 && strcmp(type, "skill_invocation") == 0)
        return;
    json_t *payload = json_object_get(obj, "payload");
    if (payload) {
        if (!json_is_object(payload))
            return;
        json_incref(payload);
    } else {
        static const char *const reserved[] = {"type", "action", "skill", "skill_id", "source",
                                               "result"};
        payload = json_object();
        const char *k;
        json_t *v;
        json_object_foreach(obj, k, v) {
            bool skip = false;
            for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
                skip = skip || strcmp(k, reserved[i]) == 0;
            if (!skip && payload && json_object_set(payload, k, v)) {
                json_decref(payload);
                payload = NULL;
            }
        }
    }
    add_action(c, type, skill, payload, "json_block");
}

static void parse_block(parse_ctx *c, const char *body, const char *end)
{
    while (body < end && sg_phrase_is_space((unsigned char)*body))
        body++;
    if (body == end || (*body != '{' && *body != '['))
        return;
    json_error_t jerr;
    json_t *root = json_loadb(body, (size_t)(end - body), 0, &jerr);
    if (!root)
        return; /* not valid JSON: plain text that happens to be fenced */
    if (json_is_array(root)) {
        for (size_t i = 0; i < json_array_size(root) && !full(c); i++)
            add_block_object(c, json_array_get(root, i));
    } else {
        add_block_object(c, root);
    }
    json_decref(root);
}

/* The next ``` at or after p, NULL at the end of the string. A plain loop rather than strstr:
 * sanitizer interceptors take strlen of the haystack on every call, which made a text full of
 * backticks quadratic. */
static const char *find_fence(const char *p)
{
    for (; *p; p++)
        if (p[0] == '`' && p[1] == '`' && p[2] == '`')
            return p;
    return NULL;
}

/* Fenced blocks: ``` with an optional "json" tag; blocks tagged with another language are skipped.
 * Every fenced region - and everything after an unterminated fence - is blanked in *masked (a copy
 * of text made on the first fence) so the word scans that follow do not pick ids or capability
 * words out of code or out of JSON that was dropped. */
static void scan_json_blocks(parse_ctx *c, const char *text, char **masked)
{
    const char *p = text;
    while (!full(c)) {
        const char *open = find_fence(p);
        if (!open)
            return;
        if (!*masked && !(*masked = strdup(text))) {
            c->oom = true;
            return;
        }
        const unsigned char *body = (const unsigned char *)open + 3;
        bool other_lang = false;
        if (sg_phrase_lower(body[0]) == 'j' && sg_phrase_lower(body[1]) == 's' && sg_phrase_lower(body[2]) == 'o' &&
            sg_phrase_lower(body[3]) == 'n' && !sg_phrase_word_at(body + 4))
            body += 4;
        else if (sg_phrase_word_at(body))
            other_lang = true;
        const char *close = find_fence((const char *)body);
        char *m = *masked + (open - text);
        if (!close) {
            memset(m, ' ', strlen(m));
            return;
        }
        memset(m, ' ', (size_t)(close + 3 - open));
        if (!other_lang)
            parse_block(c, (const char *)body, close);
        p = close + 3;
    }
}

/* skill_NNN at a word start, exactly three digits, registry ids only. */
static void scan_mentions(parse_ctx *c, const unsigned char *t)
{
    bool prev_word = false;
    for (size_t i = 0; t[i] && !full(c);) {
        bool w = sg_phrase_word_at(t + i);
        if (w && !prev_word && t[i] == 's' && strncmp((const char *)t + i, "skill_", 6) == 0) {
            const unsigned char *d = t + i + 6;
            if (d[0] >= '0' && d[0] <= '9' && d[1] >= '0' && d[1] <= '9' && d[2] >= '0' &&
                d[2] <= '9' && !sg_phrase_word_at(d + 3)) {
                char id[10];
                memcpy(id, t + i, 9);
                id[9] = '\0';
                long skill = find_skill(c->s, id);
                if (skill >= 0)
                    add_action(c, "skill_invocation", skill, json_object(), "skill_mention");
            }
        }
        prev_word = w;
        i += sg_phrase_char_len(t + i);
    }
}

static void scan_capabilities(parse_ctx *c, const unsigned char *t)
{
    if (c->s->ncaps == 0)
        return;
    bool prev_word = false;
    for (size_t i = 0; t[i] && !full(c);) {
        bool w = sg_phrase_word_at(t + i);
        size_t step = sg_phrase_char_len(t + i);
        if (w && !prev_word) {
            unsigned char b = sg_phrase_lower(t[i]);
            for (size_t k = c->s->bucket[b]; k < c->s->bucket[b + 1]; k++) {
                const skill_cap *cap = &c->s->caps[k];
                size_t m = sg_phrase_match(t + i, cap->phrase);
                if (m) {
                    json_t *payload = json_pack("{s:s}", "capability_hint", cap->phrase);
                    add_action(c, "skill_invocation", (long)cap->skill, payload,
                               "capability_hint");
                    step = m; /* the match ends at a word boundary */
                    w = false;
                    break;
                }
            }
        }
        prev_word = w;
        i += step;
    }
}

json_t *sg_actions_parse(const sg_skills *s, const char *text)
{
    json_t *out = json_array();
    if (!out || !s || !text)
        return out;
    parse_ctx c = {.s = s, .out = out};
    char *masked = NULL;
    scan_json_blocks(&c, text, &masked);
    const unsigned char *prose = (const unsigned char *)(masked ? masked : text);
    scan_mentions(&c, prose);
    scan_capabilities(&c, prose);
    free(masked);
    if (c.oom) {
        json_decref(out);
        return NULL;
    }
    return out;
}
