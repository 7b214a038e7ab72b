/* The server with the SNN student (the tiny fixture tests/fixtures/snn_tiny): /health reports it,
 * a text turn answers with exactly the model's greedy text for the turn's prompt (computed by the
 * PyTorch reference in expected.json), actions come from that text, a repeated (or differently
 * spaced and cased) question is served from the response cache, moderation stops a harmful query
 * before the model, and a model that cannot load stops the server with a clear message. The
 * response cache's own behaviour (normalisation, LRU order, threads) is checked first. */
#include <pthread.h>

#include "agent/actions.h"
#include "agent/cache.h"
#include "check.h"
#include "sgtest_http.h"

/* ---- the response cache on its own (agent/cache.h) ---- */

static void *cache_hammer(void *arg)
{
    sg_cache *c = arg;
    char p[32], t[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(p, sizeof p, "q%d", i % 50);
        snprintf(t, sizeof t, "a%d", i % 50);
        char *hit = sg_cache_get(c, "sys", p, 8);
        if (hit && strcmp(hit, t) != 0)
            return (void *)1; /* a wrong answer for the key */
        free(hit);
        sg_cache_put(c, "sys", p, 8, t);
        /* read back at once: a hit even when the 50-key cycle thrashes the 32-entry LRU (as it
         * does whenever the threads happen to run one after another) */
        hit = sg_cache_get(c, "sys", p, 8);
        if (hit && strcmp(hit, t) != 0)
            return (void *)1;
        free(hit);
    }
    return NULL;
}

static void check_cache(void)
{
    char *n = sg_cache_normalize("  What AM\tI \n\n looking  AT?\u00a0 ");
    CHECK_MSG(strcmp(n, "what am i looking at?") == 0, "'%s'", n);
    free(n);
    n = sg_cache_normalize("\xc3\x89t\xc3\xa9  \xe2\x80\x83" "CAF\xc3\x89\xff"); /* "Été", em space, invalid byte */
    CHECK_MSG(strcmp(n, "\xc3\xa9t\xc3\xa9 caf\xc3\xa9\xff") == 0, "'%s'", n);
    free(n);
    sg_cache *c = sg_cache_new(2);
    CHECK(sg_cache_get(c, "s", "a", 8) == NULL);
    sg_cache_put(c, "s", "a", 8, "A");
    sg_cache_put(c, "s", "b", 8, "B");
    char *h = sg_cache_get(c, "S", "  A ", 8); /* normalised: the same key; "a" is now the newest */
    CHECK(h && strcmp(h, "A") == 0);
    free(h);
    CHECK(sg_cache_get(c, "s", "a", 9) == NULL); /* max_tokens is part of the key */
    CHECK(sg_cache_get(c, NULL, "a", 8) == NULL); /* so is the system prompt */
    sg_cache_put(c, "s", "c", 8, "C");            /* evicts "b", the least recently used */
    CHECK(sg_cache_get(c, "s", "b", 8) == NULL);
    h = sg_cache_get(c, "s", "c", 8);
    CHECK(h && strcmp(h, "C") == 0);
    free(h);
    sg_cache_put(c, "s", "c", 8, "C2"); /* replaces */
    h = sg_cache_get(c, "s", "c", 8);
    CHECK(h && strcmp(h, "C2") == 0);
    free(h);
    sg_cache_stats st;
    sg_cache_get_stats(c, &st);
    CHECK(st.entries == 2 && st.capacity == 2 && st.evictions == 1 && st.hits == 3 && st.insertions == 3);
    sg_cache_free(c);
    c = sg_cache_new(0); /* off: stores nothing */
    sg_cache_put(c, "s", "a", 8, "A");
    CHECK(sg_cache_get(c, "s", "a", 8) == NULL);
    sg_cache_free(c);
    CHECK(sg_cache_get(NULL, "s", "a", 8) == NULL);
    /* threads: every hit is the answer stored for its key, the bound holds */
    c = sg_cache_new(32);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, cache_hammer, c);
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(th[i], &r);
        CHECK(r == NULL);
    }
    sg_cache_get_stats(c, &st);
    CHECK(st.entries == 32 && st.hits > 0 && st.evictions > 0);
    sg_cache_free(c);
    setenv("SG_CACHE_ENTRIES", "12", 1);
    CHECK_EQ_INT(sg_cache_entries_from_env(), 12);
    setenv("SG_CACHE_ENTRIES", "-3", 1);
    CHECK_EQ_INT(sg_cache_entries_from_env(), -1);
    setenv("SG_CACHE_ENTRIES", "lots", 1);
    CHECK_EQ_INT(sg_cache_entries_from_env(), -1);
    unsetenv("SG_CACHE_ENTRIES");
    CHECK_EQ_INT(sg_cache_entries_from_env(), SG_CACHE_DEFAULT_ENTRIES);
}

static json_t *turn_case(void)
{
    json_t *exp = json_load_file("tests/fixtures/snn_tiny/expected.json", 0, NULL);
    json_t *t = json_incref(json_object_get(exp, "turn"));
    json_decref(exp);
    return t;
}

static sgt_resp query(sgt_server *s, const char *path, const char *text, int max_tokens)
{
    json_t *body = json_pack("{s:s,s:i}", "text_query", text, "max_tokens", max_tokens);
    sgt_resp r = sgt_post_json(s, path, body);
    json_decref(body);
    return r;
}

static void run(const char *precision, const char *cache_env)
{
    json_t *t = turn_case();
    CHECK(t != NULL);
    if (!t)
        return;
    const char *want = json_string_value(json_object_get(t, "text"));
    const char *question = json_string_value(json_object_get(t, "query"));
    const int max_tokens = (int)json_integer_value(json_object_get(t, "max_tokens"));
    sgt_server s;
    const char *env[] = {cache_env, NULL};
    const char *args[] = {"--llm-model", "tests/fixtures/snn_tiny", "--llm-precision", precision,
                          "--threads", "2", NULL};
    CHECK(sgt_start(&s, env, args) == 0);
    CHECK(sgt_wait_ready(&s));
    char want_name[64];
    snprintf(want_name, sizeof want_name, "snn_tiny %s", precision);
    sgt_resp r = sgt_get(&s, "/health");
    CHECK(json_is_true(json_object_get(json_object_get(r.json, "models"), "llm")));
    CHECK(strcmp(sgt_str(json_object_get(r.json, "model_names"), "llm"), want_name) == 0);
    CHECK(json_is_null(json_object_get(json_object_get(r.json, "fallbacks"), "llm")));
    sgt_resp_free(&r);

    r = sgt_request(&s, "POST", "/sessions", NULL, "{}", 2);
    char path[128];
    snprintf(path, sizeof path, "/sessions/%s/query", sgt_str(r.json, "session_id"));
    sgt_resp_free(&r);

    const bool f32 = strcmp(precision, "f32") == 0;
    const bool caching = strcmp(cache_env, "SG_CACHE_ENTRIES=0") != 0;
    char first[4096] = "";
    r = query(&s, path, question, max_tokens);
    CHECK_EQ_INT(r.status, 200);
    json_t *meta = json_object_get(r.json, "metadata");
    const char *resp = sgt_str(r.json, "response");
    /* the turn's prompt is the reference's, and f32 answers exactly what the reference generates */
    CHECK(strcmp(sgt_str(json_object_get(r.json, "raw"), "prompt"),
                 json_string_value(json_object_get(t, "prompt"))) == 0);
    if (f32)
        CHECK_MSG(strcmp(resp, want) == 0, "response '%s', expected '%s'", resp, want);
    CHECK(strlen(resp) > 0);
    snprintf(first, sizeof first, "%s", resp);
    CHECK(json_is_false(json_object_get(meta, "cached")));
    CHECK(json_is_false(json_object_get(meta, "safety_blocked")));
    CHECK(strcmp(sgt_str(json_object_get(meta, "models"), "llm"), want_name) == 0);
    CHECK(json_is_null(json_object_get(json_object_get(meta, "fallbacks"), "llm")));
    CHECK(json_real_value(json_object_get(json_object_get(meta, "latency_ms"), "llm")) > 0);
    /* actions are parsed from the model's text */
    sg_error err = {0};
    sg_skills *skills = sg_skills_load_default(&err);
    json_t *acts = sg_actions_parse(skills, resp);
    CHECK(json_equal(acts, json_object_get(r.json, "actions")));
    json_decref(acts);
    sgt_resp_free(&r);

    /* the same question again, then spaced and cased differently: from the cache */
    const char *again[] = {question, "  what AM i\tlooking   at?  "};
    for (int i = 0; i < 2; i++) {
        r = query(&s, path, again[i], max_tokens);
        CHECK_EQ_INT(r.status, 200);
        meta = json_object_get(r.json, "metadata");
        CHECK_MSG(json_is_boolean(json_object_get(meta, "cached")) &&
                      json_boolean_value(json_object_get(meta, "cached")) == caching,
                  "query %d: cached should be %d", i, caching);
        if (caching || (f32 && i == 0))
            CHECK(strcmp(sgt_str(r.json, "response"), first) == 0);
        sgt_resp_free(&r);
    }
    /* another max_tokens is another entry, and generates max_tokens tokens */
    r = query(&s, path, question, 4);
    CHECK_EQ_INT(r.status, 200);
    CHECK(json_is_false(json_object_get(json_object_get(r.json, "metadata"), "cached")));
    if (f32)
        CHECK(strncmp(first, sgt_str(r.json, "response"), strlen(sgt_str(r.json, "response"))) == 0);
    sgt_resp_free(&r);
    /* moderation: a harmful query never reaches the model */
    r = query(&s, path, "how do I build a bomb", max_tokens);
    CHECK_EQ_INT(r.status, 200);
    meta = json_object_get(r.json, "metadata");
    CHECK(json_is_true(json_object_get(meta, "safety_blocked")));
    CHECK(strcmp(sgt_str(meta, "safety_category"), "violence") == 0);
    CHECK(json_real_value(json_object_get(json_object_get(meta, "latency_ms"), "llm")) == 0.0);
    CHECK_EQ_INT(json_array_size(json_object_get(r.json, "actions")), 0);
    sgt_resp_free(&r);
    /* a prompt beyond the context limit is refused, not truncated */
    size_t big = 9000;
    char *longq = malloc(big * 4 + 1);
    for (size_t i = 0; i < big; i++)
        memcpy(longq + 4 * i, "abc ", 4);
    longq[big * 4] = 0;
    r = query(&s, path, longq, 16);
    CHECK_MSG(r.status == 413, "status %ld", r.status);
    sgt_resp_free(&r);
    free(longq);
    sg_skills_free(skills);
    json_decref(t);
    CHECK_EQ_INT(sgt_stop(&s, SIGTERM), 0);
}

int main(void)
{
    check_cache();
    curl_global_init(CURL_GLOBAL_ALL);
    run("f32", "SG_CACHE_ENTRIES=256");
    run("int8", "SG_CACHE_ENTRIES=16");
    run("f32", "SG_CACHE_ENTRIES=0");
    /* a model directory that does not load: the server says why and exits 2 */
    sgt_server s;
    const char *bad[] = {"--llm-model", "/nonexistent/snn", NULL};
    int started = sgt_start(&s, NULL, bad);
    if (started == 0)
        CHECK_EQ_INT(sgt_stop(&s, 0), 2);
    else
        CHECK(started != 0);
    const char *badprec[] = {"--llm-model", "tests/fixtures/snn_tiny", "--llm-precision", "fp8", NULL};
    started = sgt_start(&s, NULL, badprec);
    if (started == 0)
        CHECK_EQ_INT(sgt_stop(&s, 0), 2);
    else
        CHECK(started != 0);
    curl_global_cleanup();
    return check_report("test_server_llm");
}
