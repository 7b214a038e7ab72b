/* POST /v1/chat/completions, the work: one turn (agent/turn.h) on the request's messages with no
 * session (chat completions are stateless: the client sends the conversation each time), answered
 * as a chat.completion or streamed as chat.completion.chunk events ending in "data: [DONE]". */
#include "server/openai.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/turn.h"
#include "base/clock.h"
#include "base/uuid.h"

typedef struct chat_sink {
    sg_req *r;
    char id[48];
    long long created;
    bool role_sent;
    bool reset; /* the moderation withdrew what was sent: the rest is not sent */
} chat_sink;

/* {"id","object":"chat.completion.chunk","created","model","choices":[{index,delta,finish_reason}]} */
static bool send_chunk(chat_sink *k, json_t *delta, const char *finish, json_t *usage)
{
    json_t *choices = delta ? json_pack("[{s:i,s:o,s:s?}]", "index", 0, "delta", delta,
                                        "finish_reason", finish)
                            : json_array();
    json_t *c = json_pack("{s:s,s:s,s:I,s:s,s:o,s:o*}", "id", k->id, "object",
                          "chat.completion.chunk", "created", k->created, "model", k->r->in.v1_model,
                          "choices", choices, "usage", usage);
    char *s = c ? json_dumps(c, JSON_COMPACT) : NULL;
    bool ok = s && sg_sse_data(k->r->sse, s);
    free(s);
    json_decref(c);
    return ok;
}

static bool chat_text(void *ud, const char *piece, size_t len)
{
    chat_sink *k = ud;
    if (k->reset)
        return !sg_sse_broken(k->r->sse);
    if (!k->role_sent) {
        k->role_sent = true;
        if (!send_chunk(k, json_pack("{s:s,s:s}", "role", "assistant", "content", ""), NULL, NULL))
            return false;
    }
    return send_chunk(k, json_pack("{s:s%}", "content", piece, len), NULL, NULL);
}

static bool chat_reset(void *ud)
{
    chat_sink *k = ud;
    k->reset = true; /* OpenAI's stream cannot take text back: it ends with content_filter */
    return !sg_sse_broken(k->r->sse);
}

static bool chat_sentence(void *ud, int n, const char *sentence)
{
    (void)n;
    (void)sentence;
    chat_sink *k = ud;
    return !sg_sse_broken(k->r->sse);
}

static void chat_stage(void *ud, const char *event, json_t *data)
{
    (void)ud;
    (void)event;
    (void)data;
}

/* OpenAI's finish_reason for the turn. */
static const char *finish_reason(const sg_turn_output *out, bool reset)
{
    if (out->blocked || reset)
        return "content_filter";
    return out->usage.hit_max_tokens ? "length" : "stop";
}

/* Token counts: the language model's own; the rule-based responder's words stand in for tokens. */
static json_t *usage_json(const sg_turn_output *out)
{
    int p = out->usage.prompt_tokens, c = out->usage.completion_tokens;
    if (p == 0 && c == 0 && out->response) {
        for (const char *s = out->response; *s; s++)
            c += (s[0] != ' ') && (s[1] == ' ' || s[1] == 0);
        for (const char *s = out->query; s && *s; s++)
            p += (s[0] != ' ') && (s[1] == ' ' || s[1] == 0);
    }
    return json_pack("{s:i,s:i,s:i}", "prompt_tokens", p, "completion_tokens", c, "total_tokens",
                     p + c);
}

/* Our extension, which OpenAI's SDKs pass through untouched: what the turn saw and decided. */
static json_t *smartglass_json(const sg_turn_output *out)
{
    json_t *res = out->result;
    return json_pack("{s:O,s:O,s:O}", "visual_context", json_object_get(res, "visual_context"),
                     "actions", json_object_get(res, "actions"), "metadata",
                     json_object_get(res, "metadata"));
}

static void record(sg_server *srv, const sg_turn_output *out, const sg_req *r, bool image)
{
    if (image) {
        sg_metrics_count(srv->metrics, SG_COUNTER_FRAMES, 1);
        sg_metrics_count(srv->metrics, SG_COUNTER_KEYFRAMES, 1);
    }
    sg_metrics_count(srv->metrics, SG_COUNTER_QUERIES, 1);
    sg_metrics_record(srv->metrics, SG_STAGE_VISION, out->t.vision);
    sg_metrics_record(srv->metrics, SG_STAGE_LLM, out->t.llm);
    sg_metrics_record(srv->metrics, SG_STAGE_E2E, sg_now_ms() - r->t_start);
}

void sg_v1_work_chat(sg_req *r)
{
    sg_server *srv = r->srv;
    sg_work_input *in = &r->in;
    chat_sink k = {.r = r, .created = (long long)time(NULL)};
    char uuid[37];
    sg_uuid4(uuid);
    snprintf(k.id, sizeof k.id, "chatcmpl-%.32s", uuid);
    const sg_turn_stream cb = {chat_stage, chat_text, chat_reset, chat_sentence, &k};
    /* "rule-based" asks for the responder even where a language model is loaded */
    const sg_turn_degrade responder = {.llm_rule_based = true};
    sg_turn_input ti = {.text = in->text, .image = in->image, .image_len = in->image_len,
                        .max_tokens = in->max_tokens, .system = in->system,
                        .history = in->history, .temperature = in->temperature,
                        .top_p = in->top_p, .seed = in->has_seed ? in->seed : (unsigned long long)k.created,
                        .stream = r->sse ? &cb : NULL, .no_cache = true,
                        .degrade = srv->b->llm && !in->v1_backend ? &responder : NULL};
    sg_visual_memory mem;
    sg_visual_memory_init(&mem);
    sg_turn_output out;
    sg_error err = {0};
    sg_status st = sg_turn_run(srv->b, &mem, &ti, &out, &err);
    sg_visual_memory_free(&mem);
    if (st == SG_OK && out.stopped) { /* the client went away or stopped reading */
        sg_turn_output_free(&out);
        r->done = true;
        r->status = 200;
        return;
    }
    if (st != SG_OK) {
        sg_turn_output_free(&out);
        sg_req_fail(r, st, "INVALID_REQUEST", &err);
        if (r->sse && sg_sse_started(r->sse)) {
            char *e = json_dumps(r->json, JSON_COMPACT);
            if (e)
                sg_sse_data(r->sse, e);
            free(e);
        }
        return;
    }
    record(srv, &out, r, in->image != NULL);
    const char *finish = finish_reason(&out, k.reset);
    if (r->sse) {
        if (!k.role_sent) /* nothing was released (an empty answer) */
            send_chunk(&k, json_pack("{s:s,s:s}", "role", "assistant", "content", ""), NULL, NULL);
        send_chunk(&k, json_object(), finish, NULL);
        if (in->v1_usage_chunk)
            send_chunk(&k, NULL, NULL, usage_json(&out));
        sg_sse_data(r->sse, "[DONE]");
        sg_turn_output_free(&out);
        r->done = true;
        r->status = 200;
        return;
    }
    json_t *o = json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:{s:s,s:s,s:n},s:n,s:s}],s:o,s:o}", "id", k.id,
                          "object", "chat.completion", "created", k.created, "model", in->v1_model,
                          "choices", "index", 0, "message", "role", "assistant", "content",
                          out.response ? out.response : "", "refusal", "logprobs",
                          "finish_reason", finish, "usage", usage_json(&out), "smartglass",
                          smartglass_json(&out));
    sg_turn_output_free(&out);
    if (!o)
        sg_req_error(r, 503, "OVERLOADED", "out of memory");
    else
        sg_req_json(r, 200, o);
}
