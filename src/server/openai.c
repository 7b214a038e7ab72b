/* OpenAI's API on our models (/v1; ../shared/API.md, docs/ARCHITECTURE.md "OpenAI-compatible
 * API"): the model list, chat completions (plain and streamed as chat.completion.chunk events),
 * embeddings (CLIP text, and images as data URLs), speech, and errors in OpenAI's shape. The
 * transcription routes are openai_audio.c's. Requests are parsed on the HTTP thread; model work
 * runs on the work queue like every other route's. */
#include "server/internal.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/tts.h"
#include "agent/turn.h"
#include "base/base64.h"
#include "base/clock.h"
#include "base/json.h"
#include "base/uuid.h"
#include "server/openai.h"

/* ---- errors ---------------------------------------------------------------------------------- */

bool sg_req_is_openai(const sg_req *r)
{
    if (r->route)
        return (r->route->flags & SG_ROUTE_OPENAI) != 0;
    return r->url && (strncmp(r->url, "/v1/", 4) == 0 || strcmp(r->url, "/v1") == 0);
}

json_t *sg_openai_error_json(int status, const char *code, const char *message)
{
    const char *type = status >= 500 ? "server_error"
                       : status == 429 ? "rate_limit_error"
                       : status == 401 ? "authentication_error"
                                       : "invalid_request_error";
    char lower[48];
    size_t i = 0;
    if (strcmp(code, "UNAUTHORIZED") == 0)
        code = "invalid_api_key";
    for (; code[i] && i + 1 < sizeof lower; i++)
        lower[i] = (char)tolower((unsigned char)code[i]);
    lower[i] = 0;
    json_t *msg = json_string(message);
    return json_pack("{s:{s:o,s:s,s:n,s:s}}", "error", "message", msg ? msg : json_string("error"),
                     "type", type, "param", "code", lower);
}

/* ---- the models ------------------------------------------------------------------------------ */

/* A backend's name as a model id: lower case, runs of anything but [a-z0-9._] as one '-'. */
static void model_id(const char *name, char *out, size_t cap)
{
    size_t n = 0;
    bool dash = false;
    for (const char *p = name; *p && n + 2 < cap; p++) {
        char c = (char)tolower((unsigned char)*p);
        if (isalnum((unsigned char)c) || c == '.' || c == '_') {
            if (dash && n > 0)
                out[n++] = '-';
            out[n++] = c;
            dash = false;
        } else {
            dash = true;
        }
    }
    out[n] = 0;
}

/* OpenAI's names for its own models of a kind, taken as "this server's model of the kind": clients
 * and tools hard-code them (the SDKs' examples, the transcription and speech defaults). */
static const char *const chat_aliases[] = {NULL};
static const char *const asr_aliases[] = {"whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe",
                                          NULL};
static const char *const tts_aliases[] = {"tts-1", "tts-1-hd", "gpt-4o-mini-tts", NULL};
static const char *const embed_aliases[] = {NULL};

typedef struct model_row {
    char id[96];
    sg_v1_kind kind;
    const void *backend; /* the backend the id names (NULL: the rule-based responder) */
} model_row;

#define MAX_MODELS 6

static int list_models(const sg_backends *b, model_row *rows)
{
    int n = 0;
    if (b->llm) {
        model_id(b->llm->name, rows[n].id, sizeof rows[n].id);
        rows[n].kind = SG_V1_CHAT;
        rows[n++].backend = b->llm;
    }
    snprintf(rows[n].id, sizeof rows[n].id, "%s", SG_V1_RULE_BASED);
    rows[n].kind = SG_V1_CHAT;
    rows[n++].backend = NULL;
    if (b->asr) {
        model_id(b->asr->name, rows[n].id, sizeof rows[n].id);
        rows[n].kind = SG_V1_TRANSCRIBE;
        rows[n++].backend = b->asr;
    }
    if (b->asr_fallback) {
        model_id(b->asr_fallback->name, rows[n].id, sizeof rows[n].id);
        rows[n].kind = SG_V1_TRANSCRIBE;
        rows[n++].backend = b->asr_fallback;
    }
    if (b->tts) {
        model_id(b->tts->name, rows[n].id, sizeof rows[n].id);
        rows[n].kind = SG_V1_SPEECH;
        rows[n++].backend = b->tts;
    }
    if (b->vision && b->vision->embed_text) {
        model_id(b->vision->name, rows[n].id, sizeof rows[n].id);
        rows[n].kind = SG_V1_EMBED;
        rows[n++].backend = b->vision;
    }
    return n;
}

static const char *kind_name(sg_v1_kind k)
{
    static const char *const names[] = {"chat", "transcription", "speech", "embeddings"};
    return names[k];
}

static const void *default_backend(const sg_backends *b, sg_v1_kind kind)
{
    switch (kind) {
    case SG_V1_CHAT: return b->llm; /* NULL = the responder */
    case SG_V1_TRANSCRIBE: return b->asr;
    case SG_V1_SPEECH: return b->tts;
    case SG_V1_EMBED: return b->vision && b->vision->embed_text ? b->vision : NULL;
    }
    return NULL;
}

bool sg_v1_pick_model(sg_req *r, json_t *model, sg_v1_kind kind, const void **backend)
{
    const sg_backends *b = r->srv->b;
    const char *name = json_string_value(model);
    free(r->in.v1_model);
    r->in.v1_model = NULL;
    if (model && !json_is_null(model) && !name) {
        sg_req_error(r, 400, "INVALID_REQUEST", "\"model\" must be a string");
        return false;
    }
    static const char *const *const aliases[] = {chat_aliases, asr_aliases, tts_aliases,
                                                 embed_aliases};
    static const char *const need[] = {
        "", "no speech recognition model is loaded (start sg-edge with --asr-model)",
        "speech synthesis is off on this server (SG_TTS=off)",
        "no embedding model is loaded (start sg-edge with --vision-model: CLIP)"};
    bool alias = !name || !name[0];
    for (int i = 0; !alias && aliases[kind][i]; i++)
        alias = strcmp(name, aliases[kind][i]) == 0;
    if (alias) {
        *backend = default_backend(b, kind);
        if (!*backend && kind != SG_V1_CHAT) {
            sg_req_error(r, 503, "MODEL_UNAVAILABLE", "%s", need[kind]);
            return false;
        }
        /* answered as the id GET /v1/models lists for that backend (the responder's for NULL) */
        model_row rows[MAX_MODELS];
        const int n = list_models(b, rows);
        const char *id = SG_V1_RULE_BASED;
        for (int i = 0; i < n; i++)
            if (rows[i].kind == kind && rows[i].backend == *backend)
                id = rows[i].id;
        if (!(r->in.v1_model = strdup(name && name[0] ? name : id))) {
            sg_req_error(r, 503, "OVERLOADED", "out of memory");
            return false;
        }
        return true;
    }
    model_row rows[MAX_MODELS];
    int n = list_models(b, rows);
    for (int i = 0; i < n; i++) {
        if (strcmp(rows[i].id, name) != 0)
            continue;
        if (rows[i].kind != kind) {
            sg_req_error(r, 400, "INVALID_REQUEST", "model '%.96s' is a %s model, not a %s model",
                         name, kind_name(rows[i].kind), kind_name(kind));
            return false;
        }
        *backend = rows[i].backend;
        if (!(r->in.v1_model = strdup(name))) {
            sg_req_error(r, 503, "OVERLOADED", "out of memory");
            return false;
        }
        return true;
    }
    sg_req_error(r, 404, "MODEL_NOT_FOUND",
                 "The model '%.96s' does not exist or is not loaded on this server (GET /v1/models "
                 "lists them)", name);
    return false;
}

static json_t *model_json(const model_row *m, long long created)
{
    return json_pack("{s:s,s:s,s:I,s:s,s:s}", "id", m->id, "object", "model", "created", created,
                     "owned_by", "smartglass-edge", "kind", kind_name(m->kind));
}

void sg_handle_v1_models(sg_req *r)
{
    model_row rows[MAX_MODELS];
    int n = list_models(r->srv->b, rows);
    long long created = (long long)(time(NULL) - (time_t)((sg_now_ms() - r->srv->started_ms) / 1000));
    json_t *data = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(data, model_json(&rows[i], created));
    sg_req_json(r, 200, json_pack("{s:s,s:o}", "object", "list", "data", data));
}

void sg_handle_v1_model(sg_req *r)
{
    model_row rows[MAX_MODELS];
    int n = list_models(r->srv->b, rows);
    long long created = (long long)(time(NULL) - (time_t)((sg_now_ms() - r->srv->started_ms) / 1000));
    for (int i = 0; i < n; i++)
        if (strcmp(rows[i].id, r->session_id) == 0) {
            sg_req_json(r, 200, model_json(&rows[i], created));
            return;
        }
    sg_req_error(r, 404, "MODEL_NOT_FOUND", "The model '%s' does not exist or is not loaded here",
                 r->session_id);
}

/* ---- shared pieces ----------------------------------------------------------------------------- */

/* "data:<type>;base64,<bytes>" -> the decoded bytes (bounded by limit). An http(s) URL is refused:
 * nothing is downloaded here. */
static bool data_url(sg_req *r, const char *what, const char *url, size_t limit, uint8_t **out,
                     size_t *len)
{
    if (strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0) {
        sg_req_error(r, 400, "INVALID_REQUEST",
                     "%s: this server downloads nothing; send the image inline as a data URL "
                     "(data:image/jpeg;base64,...)", what);
        return false;
    }
    const char *comma = strncmp(url, "data:", 5) == 0 ? strchr(url, ',') : NULL;
    if (!comma || comma - url < 12 || strncmp(comma - 7, ";base64", 7) != 0) {
        sg_req_error(r, 400, "INVALID_REQUEST", "%s must be a base64 data URL "
                     "(data:image/jpeg;base64,...)", what);
        return false;
    }
    return sg_req_b64(r, what, comma + 1, "INVALID_IMAGE", limit, "FRAME_BUFFER_MAX_BYTES", out, len);
}

static bool is_data_url(const char *s) { return strncmp(s, "data:", 5) == 0; }

static double round6(double x) { return round(x * 1e6) / 1e6; }

/* ---- chat completions -------------------------------------------------------------------------- */

/* Appends a message's text to *buf (grown; bounded by the body it came from). */
static bool append_text(char **buf, size_t *len, const char *a, const char *b, const char *c)
{
    size_t add = strlen(a) + strlen(b) + strlen(c);
    char *n = realloc(*buf, *len + add + 1);
    if (!n)
        return false;
    *buf = n;
    *len += (size_t)snprintf(n + *len, add + 1, "%s%s%s", a, b, c);
    return true;
}

/* The text of a message's content (a string or parts) into *text (malloc'ed, NULL for none); its
 * last image part (a data URL) into *image (a user message only). */
static bool message_content(sg_req *r, json_t *content, int idx, bool user, char **text,
                            uint8_t **image, size_t *image_len)
{
    *text = NULL;
    if (!content || json_is_null(content))
        return true;
    const char *s = sg_json_cstr(content);
    if (s) {
        if (!(*text = strdup(s)))
            sg_req_error(r, 503, "OVERLOADED", "out of memory");
        return *text != NULL;
    }
    if (!json_is_array(content)) {
        sg_req_error(r, 400, "INVALID_REQUEST", "messages[%d].content must be a string or an "
                     "array of parts", idx);
        return false;
    }
    size_t len = 0, i;
    json_t *part;
    json_array_foreach(content, i, part) {
        const char *type = json_string_value(json_object_get(part, "type"));
        if (type && strcmp(type, "text") == 0) {
            const char *t = sg_json_cstr(json_object_get(part, "text"));
            if (!t) {
                sg_req_error(r, 400, "INVALID_REQUEST", "messages[%d].content[%zu].text must be a "
                             "string without NUL", idx, i);
                return false;
            }
            if (!append_text(text, &len, len ? "\n" : "", t, "")) {
                sg_req_error(r, 503, "OVERLOADED", "out of memory");
                return false;
            }
        } else if (type && strcmp(type, "image_url") == 0 && user) {
            json_t *iu = json_object_get(part, "image_url");
            const char *url = sg_json_cstr(json_is_object(iu) ? json_object_get(iu, "url") : iu);
            if (!url) {
                sg_req_error(r, 400, "INVALID_REQUEST",
                             "messages[%d].content[%zu].image_url.url must be a string", idx, i);
                return false;
            }
            free(*image);
            *image = NULL;
            char what[64];
            snprintf(what, sizeof what, "messages[%d].content[%zu].image_url.url", idx, i);
            if (!data_url(r, what, url, r->srv->cfg->frame_max_bytes, image, image_len))
                return false;
        } else {
            sg_req_error(r, 400, "INVALID_REQUEST", "messages[%d].content[%zu]: part type '%.32s' "
                         "is not supported here (text%s)", idx, i, type ? type : "(none)",
                         user ? ", image_url" : "");
            return false;
        }
    }
    return true;
}

/* messages -> system, history, the last user message's text and the last image of a user. */
static bool parse_messages(sg_req *r, json_t *messages)
{
    if (!json_is_array(messages) || json_array_size(messages) == 0) {
        sg_req_error(r, 400, "INVALID_REQUEST", "\"messages\" must be a non-empty array");
        return false;
    }
    if (json_array_size(messages) > SG_V1_MAX_MESSAGES) {
        sg_req_error(r, 400, "INVALID_REQUEST", "at most %d messages", SG_V1_MAX_MESSAGES);
        return false;
    }
    sg_work_input *in = &r->in;
    size_t slen = 0, hlen = 0, i;
    json_t *msg;
    int last_user = -1;
    json_array_foreach(messages, i, msg) {
        const char *role = json_string_value(json_object_get(msg, "role"));
        if (role && strcmp(role, "user") == 0)
            last_user = (int)i;
    }
    if (last_user < 0) {
        sg_req_error(r, 400, "INVALID_REQUEST", "\"messages\" has no message with role \"user\"");
        return false;
    }
    json_array_foreach(messages, i, msg) {
        const char *role = json_string_value(json_object_get(msg, "role"));
        if (!json_is_object(msg) || !role) {
            sg_req_error(r, 400, "INVALID_REQUEST", "messages[%zu] must be an object with a "
                         "\"role\"", i);
            return false;
        }
        const bool system = strcmp(role, "system") == 0 || strcmp(role, "developer") == 0;
        const bool user = strcmp(role, "user") == 0, assistant = strcmp(role, "assistant") == 0;
        if (!system && !user && !assistant) {
            sg_req_error(r, 400, "INVALID_REQUEST", "messages[%zu].role '%.32s' is not supported "
                         "(system, developer, user, assistant)", i, role);
            return false;
        }
        char *text = NULL;
        if (!message_content(r, json_object_get(msg, "content"), (int)i, user, &text,
                             &in->image, &in->image_len)) {
            free(text); /* what the parts before the bad one made */
            return false;
        }
        bool ok = true;
        if ((int)i == last_user) {
            in->text = text;
            text = NULL;
        } else if (text && system) {
            ok = append_text(&in->system, &slen, slen ? "\n" : "", text, "");
        } else if (text) {
            ok = append_text(&in->history, &hlen, user ? "User: " : "Assistant: ", text, "\n");
        }
        free(text);
        if (!ok) {
            sg_req_error(r, 503, "OVERLOADED", "out of memory");
            return false;
        }
    }
    return true;
}

/* temperature, top_p, seed: the SNN student's sampling (greedy at temperature 0, the default). */
static bool parse_sampling(sg_req *r, json_t *body)
{
    json_t *t = json_object_get(body, "temperature"), *p = json_object_get(body, "top_p"),
           *s = json_object_get(body, "seed");
    sg_work_input *in = &r->in;
    in->temperature = 0;
    in->top_p = 1;
    if (t && !json_is_null(t)) {
        if (!json_is_number(t) || json_number_value(t) < 0 || json_number_value(t) > 2) {
            sg_req_error(r, 400, "INVALID_REQUEST", "\"temperature\" must be a number in 0..2");
            return false;
        }
        in->temperature = json_number_value(t);
    }
    if (p && !json_is_null(p)) {
        if (!json_is_number(p) || json_number_value(p) <= 0 || json_number_value(p) > 1) {
            sg_req_error(r, 400, "INVALID_REQUEST", "\"top_p\" must be a number in (0, 1]");
            return false;
        }
        in->top_p = json_number_value(p);
    }
    if (s && !json_is_null(s)) {
        if (!json_is_integer(s)) {
            sg_req_error(r, 400, "INVALID_REQUEST", "\"seed\" must be an integer");
            return false;
        }
        in->seed = (unsigned long long)json_integer_value(s);
        in->has_seed = true;
    }
    return true;
}

bool sg_v1_chat_parse(sg_req *r)
{
    json_t *body;
    if (!sg_req_body(r, &body))
        return false;
    sg_work_input *in = &r->in;
    const void *backend = NULL;
    bool ok = sg_v1_pick_model(r, json_object_get(body, "model"), SG_V1_CHAT, &backend);
    bool have_max = false, have_mct = false;
    long max_tokens = 0, mct = 0;
    json_t *n = json_object_get(body, "n");
    ok = ok && parse_messages(r, json_object_get(body, "messages")) && parse_sampling(r, body) &&
         sg_req_opt_int(r, body, "max_tokens", 1, 4096, &have_max, &max_tokens) &&
         sg_req_opt_int(r, body, "max_completion_tokens", 1, 4096, &have_mct, &mct) &&
         sg_req_opt_bool(r, body, "stream", &in->v1_stream);
    if (ok && n && !json_is_null(n) && !(json_is_integer(n) && json_integer_value(n) == 1)) {
        sg_req_error(r, 400, "INVALID_REQUEST", "\"n\" must be 1 here (one choice per request)");
        ok = false;
    }
    json_t *tools = json_object_get(body, "tools");
    if (ok && tools && json_array_size(tools) > 0) {
        sg_req_error(r, 400, "INVALID_REQUEST", "\"tools\" are not supported: this server's "
                     "actions come back in the response's \"smartglass\".\"actions\"");
        ok = false;
    }
    json_t *so = json_object_get(body, "stream_options");
    in->v1_usage_chunk = json_is_true(json_object_get(so, "include_usage"));
    if (ok) {
        in->max_tokens = have_mct ? (int)mct : have_max ? (int)max_tokens : 0;
        in->v1_backend = backend;
    }
    json_decref(body);
    return ok;
}

void sg_handle_v1_chat(sg_req *r)
{
    if (!sg_v1_chat_parse(r))
        return;
    if (r->in.v1_stream &&
        !(r->sse = sg_sse_new(r->conn, r->srv->cfg->sse_buffer_bytes, r->srv->cfg->sse_stall_ms))) {
        sg_req_error(r, 503, "OVERLOADED", "out of memory");
        return;
    }
    sg_req_submit(r, sg_v1_work_chat);
}

/* ---- embeddings ------------------------------------------------------------------------------ */

static void work_embeddings(sg_req *r)
{
    const sg_vision_backend *v = r->in.v1_backend;
    json_t *inputs = r->in.v1_inputs;
    const int dim = v->embedding_dim;
    float *emb = malloc((size_t)dim * sizeof *emb);
    json_t *data = json_array();
    long long tokens = 0;
    size_t i;
    json_t *item;
    if (!emb || !data) {
        free(emb);
        json_decref(data);
        sg_req_error(r, 503, "OVERLOADED", "out of memory");
        return;
    }
    json_array_foreach(inputs, i, item) {
        const char *s = json_string_value(item);
        sg_error err = {0};
        sg_status st;
        if (is_data_url(s)) {
            uint8_t *bytes = NULL;
            size_t len = 0;
            char what[32];
            snprintf(what, sizeof what, "input[%zu]", i);
            if (!data_url(r, what, s, r->srv->cfg->frame_max_bytes, &bytes, &len))
                break;
            sg_image img;
            st = sg_image_decode(bytes, len, v->min_short_side, &img, &err);
            free(bytes);
            if (st == SG_OK) {
                st = v->embed_image(v->self, &img, emb, &err);
                sg_image_free(&img);
            }
            if (st != SG_OK) {
                sg_req_fail(r, st, "INVALID_IMAGE", &err);
                break;
            }
        } else {
            int nt = 0;
            st = v->embed_text(v->self, s, emb, &nt, &err);
            if (st != SG_OK) {
                if (st == SG_ERANGE)
                    sg_req_error(r, 400, "CONTEXT_LENGTH_EXCEEDED", "input[%zu]: %s", i, err.msg);
                else
                    sg_req_fail(r, st, "INVALID_REQUEST", &err);
                break;
            }
            tokens += nt;
        }
        json_t *e;
        if (r->in.v1_base64) {
            /* little-endian float32, as OpenAI's encoding_format "base64" */
            uint8_t *raw = malloc((size_t)dim * 4);
            char *b64 = NULL;
            if (raw) {
                for (int k = 0; k < dim; k++) {
                    uint32_t u;
                    memcpy(&u, &emb[k], 4);
                    for (int j = 0; j < 4; j++)
                        raw[4 * k + j] = (uint8_t)(u >> (8 * j));
                }
                b64 = sg_base64_encode(raw, (size_t)dim * 4, NULL);
            }
            free(raw);
            e = b64 ? json_string(b64) : NULL;
            free(b64);
        } else {
            e = json_array();
            for (int k = 0; e && k < dim; k++)
                json_array_append_new(e, json_real(round6(emb[k])));
        }
        json_array_append_new(data, json_pack("{s:s,s:I,s:o*}", "object", "embedding", "index",
                                              (json_int_t)i, "embedding", e));
    }
    free(emb);
    if (r->done) { /* an input failed */
        json_decref(data);
        return;
    }
    json_t *usage = json_pack("{s:I,s:I}", "prompt_tokens", tokens, "total_tokens", tokens);
    sg_req_json(r, 200, json_pack("{s:s,s:o,s:s,s:o}", "object", "list", "data", data, "model",
                                  r->in.v1_model, "usage", usage));
}

bool sg_v1_embeddings_parse(sg_req *r)
{
    json_t *body;
    if (!sg_req_body(r, &body))
        return false;
    sg_work_input *in = &r->in;
    const void *backend = NULL;
    bool ok = sg_v1_pick_model(r, json_object_get(body, "model"), SG_V1_EMBED, &backend);
    json_t *input = json_object_get(body, "input");
    const char *fmt = NULL;
    ok = ok && sg_req_opt_string(r, body, "encoding_format", NULL, &fmt);
    if (ok && fmt && strcmp(fmt, "float") != 0 && strcmp(fmt, "base64") != 0) {
        sg_req_error(r, 400, "INVALID_REQUEST", "\"encoding_format\" must be float or base64");
        ok = false;
    }
    in->v1_base64 = fmt && strcmp(fmt, "base64") == 0;
    if (ok && !backend) {
        sg_req_error(r, 503, "MODEL_UNAVAILABLE", "no embedding model is loaded");
        ok = false;
    }
    json_t *dims = json_object_get(body, "dimensions");
    if (ok && dims && !json_is_null(dims) &&
        json_integer_value(dims) != ((const sg_vision_backend *)backend)->embedding_dim) {
        sg_req_error(r, 400, "INVALID_REQUEST", "\"dimensions\" must be %d for this model (its "
                     "embeddings are not shortened)", ((const sg_vision_backend *)backend)->embedding_dim);
        ok = false;
    }
    json_t *list = NULL;
    if (ok) {
        list = json_is_string(input) ? json_pack("[O]", input)
               : json_is_array(input) ? json_incref(input) : NULL;
        size_t i, count = json_array_size(list);
        json_t *item;
        if (!list || count == 0 || count > SG_V1_MAX_EMBED_INPUTS) {
            sg_req_error(r, 400, "INVALID_REQUEST", "\"input\" must be a string or an array of 1..%d "
                         "strings (token arrays are not taken: the tokenizer is CLIP's)",
                         SG_V1_MAX_EMBED_INPUTS);
            ok = false;
        }
        json_array_foreach(ok ? list : NULL, i, item) {
            const char *s = sg_json_cstr(item);
            if (!s || (!s[0])) {
                sg_req_error(r, 400, "INVALID_REQUEST", "input[%zu] must be a non-empty string "
                             "(text, or an image as a data URL)", i);
                ok = false;
                break;
            }
            if (is_data_url(s) && !((const sg_vision_backend *)backend)->embed_image) {
                sg_req_error(r, 400, "INVALID_REQUEST", "this model embeds no images");
                ok = false;
                break;
            }
        }
    }
    json_decref(body);
    if (!ok) {
        json_decref(list);
        return false;
    }
    in->v1_inputs = list;
    in->v1_backend = backend;
    return true;
}

void sg_handle_v1_embeddings(sg_req *r)
{
    if (sg_v1_embeddings_parse(r))
        sg_req_submit(r, work_embeddings);
}

/* ---- speech ---------------------------------------------------------------------------------- */

/* OpenAI's voices: each is this server's voice (there is one), so a client's choice never fails. */
static const char *const openai_voices[] = {"alloy", "ash", "ballad", "coral", "echo", "fable",
                                            "nova", "onyx", "sage", "shimmer", "verse", NULL};

static void work_speech(sg_req *r)
{
    const sg_tts_backend *tts = r->in.v1_backend;
    sg_tts_audio a;
    sg_error err = {0};
    sg_status st = sg_tts_speak(tts, r->in.text, 0, r->in.v1_speed, (sg_tts_format)r->in.speak_format,
                                &a, &err);
    if (st != SG_OK) {
        sg_req_fail(r, st, "INVALID_REQUEST", &err);
        return;
    }
    r->text = (char *)a.data;
    r->text_len = a.len;
    a.data = NULL;
    r->text_type = sg_tts_format_content_type(a.format);
    r->status = 200;
    r->done = true;
    sg_tts_audio_free(&a);
}

bool sg_v1_speech_parse(sg_req *r)
{
    json_t *body;
    if (!sg_req_body(r, &body))
        return false;
    sg_work_input *in = &r->in;
    const void *backend = NULL;
    const char *input = NULL, *voice = NULL, *fmt = NULL;
    bool ok = sg_v1_pick_model(r, json_object_get(body, "model"), SG_V1_SPEECH, &backend) &&
              sg_req_opt_string(r, body, "input", NULL, &input) &&
              sg_req_opt_string(r, body, "voice", NULL, &voice) &&
              sg_req_opt_string(r, body, "response_format", NULL, &fmt);
    const sg_tts_backend *tts = backend;
    if (ok && (!input || !input[0])) {
        sg_req_error(r, 400, "INVALID_REQUEST", "\"input\" (the text to speak) is required");
        ok = false;
    }
    if (ok && strlen(input) > SG_TTS_MAX_CHARS) {
        sg_req_error(r, 400, "INVALID_REQUEST", "\"input\" is %zu bytes; at most %d are spoken per "
                     "request", strlen(input), SG_TTS_MAX_CHARS);
        ok = false;
    }
    if (ok && voice && voice[0]) {
        bool known = strcmp(voice, tts->voice) == 0;
        for (int i = 0; !known && openai_voices[i]; i++)
            known = strcmp(voice, openai_voices[i]) == 0;
        if (!known) {
            sg_req_error(r, 400, "INVALID_REQUEST", "unknown voice '%.32s' (this server speaks "
                         "with '%s'; OpenAI's voice names are taken as it)", voice, tts->voice);
            ok = false;
        }
    }
    sg_tts_format f = SG_TTS_MP3; /* OpenAI's default */
    sg_error ferr = {0};
    if (ok && fmt && sg_tts_format_parse_any(fmt, &f, &ferr) != SG_OK) {
        sg_req_error(r, 400, "INVALID_REQUEST", "\"response_format\": %s (aac is not made here)",
                     ferr.msg);
        ok = false;
    }
    json_t *speed = json_object_get(body, "speed");
    in->v1_speed = 0;
    if (ok && speed && !json_is_null(speed)) {
        double v = json_number_value(speed);
        if (!json_is_number(speed) || v < SG_TTS_RATE_MIN || v > SG_TTS_RATE_MAX) {
            sg_req_error(r, 400, "INVALID_REQUEST", "\"speed\" must be a number in %.2g..%.2g here",
                         SG_TTS_RATE_MIN, SG_TTS_RATE_MAX);
            ok = false;
        }
        in->v1_speed = v;
    }
    if (ok && !(in->text = strdup(input))) {
        sg_req_error(r, 503, "OVERLOADED", "out of memory");
        ok = false;
    }
    json_decref(body);
    if (!ok)
        return false;
    in->speak_format = (int)f;
    in->v1_backend = tts;
    return true;
}

void sg_handle_v1_speech(sg_req *r)
{
    if (sg_v1_speech_parse(r))
        sg_req_submit(r, work_speech);
}
