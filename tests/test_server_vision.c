/* The server with a CLIP model (the tiny fixture in Hugging Face layout): /health and /ready
 * report it, keyframes get CLIP scene labels with the reference's visual_context wording, text
 * queries reuse the remembered scene, and a model that cannot load stops the server with a clear
 * message. */
#include "check.h"
#include "sgtest_server.h"

static void run(const char *precision)
{
    sgt_server s;
    const char *args[] = {"--vision-model", "tests/fixtures/clip_tiny", "--vision-precision", precision,
                          "--threads", "2", NULL};
    CHECK(sgt_start(&s, NULL, args) == 0);
    /* sgt_start waits for /health; the model may still be loading: wait for /ready */
    long ready = 0;
    for (int i = 0; i < 1500 && ready != 200; i++) {
        sgt_resp r = sgt_get(&s, "/ready");
        ready = r.status;
        CHECK(r.status == 200 || (r.status == 503 && strcmp(sgt_str(r.json, "status"), "loading") == 0));
        sgt_resp_free(&r);
        if (ready != 200) {
            struct timespec ts = {0, 20 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    CHECK_EQ_INT(ready, 200);
    sgt_resp r = sgt_get(&s, "/health");
    CHECK(json_is_true(json_object_get(json_object_get(r.json, "models"), "vision")));
    char want_name[64];
    snprintf(want_name, sizeof want_name, "clip_tiny %s", precision);
    CHECK(strcmp(sgt_str(json_object_get(r.json, "model_names"), "vision"), want_name) == 0);
    sgt_resp_free(&r);

    r = sgt_request(&s, "POST", "/sessions", NULL, "{}", 2);
    char id[64];
    snprintf(id, sizeof id, "%s", sgt_str(r.json, "session_id"));
    sgt_resp_free(&r);
    char fpath[128], qpath[128];
    snprintf(fpath, sizeof fpath, "/sessions/%s/frame", id);
    snprintf(qpath, sizeof qpath, "/sessions/%s/query", id);

    char *b64 = sgt_b64_file("../shared/data/images/rocket.jpg");
    json_t *body = json_pack("{s:s}", "image_base64", b64);
    r = sgt_post_json(&s, fpath, body);
    json_decref(body);
    CHECK_EQ_INT(r.status, 200);
    json_t *scene = json_object_get(r.json, "scene");
    CHECK(strcmp(sgt_str(scene, "source"), "clip") == 0);
    CHECK_EQ_INT(json_array_size(json_object_get(scene, "scene_labels")), 3);
    CHECK(json_is_array(json_object_get(scene, "objects")));
    const char *summary = sgt_str(scene, "summary");
    CHECK_MSG(strncmp(summary, "Scene appears to be: ", 21) == 0 && strstr(summary, "(confidence: ") &&
                  strstr(summary, "%)\nAlternatively: "),
              "summary: %s", summary);
    char frame_context[512];
    snprintf(frame_context, sizeof frame_context, "%s", summary);
    /* the best label is one of the reference's ten, and its probability matches the text */
    const char *best = sgt_str(json_array_get(json_object_get(scene, "scene_labels"), 0), "label");
    CHECK(strlen(best) > 0 && strstr(summary, best) == summary + 21);
    sgt_resp_free(&r);

    r = sgt_post_str(&s, qpath, "{\"text_query\":\"what am I looking at?\"}");
    CHECK_EQ_INT(r.status, 200);
    CHECK(strcmp(sgt_str(r.json, "visual_context"), frame_context) == 0); /* remembered, not recomputed */
    json_t *meta = json_object_get(r.json, "metadata");
    CHECK(strcmp(sgt_str(json_object_get(meta, "models"), "vision"), want_name) == 0);
    CHECK(json_is_null(json_object_get(json_object_get(meta, "fallbacks"), "vision")));
    CHECK(json_real_value(json_object_get(json_object_get(meta, "latency_ms"), "vision")) == 0.0);
    sgt_resp_free(&r);

    /* an image in the query is analysed now */
    free(b64);
    b64 = sgt_b64_file("../shared/data/images/chelsea.jpg");
    body = json_pack("{s:s,s:s}", "text", "what is this?", "image", b64);
    snprintf(qpath, sizeof qpath, "/sessions/%s/multimodal", id);
    r = sgt_post_json(&s, qpath, body);
    json_decref(body);
    CHECK_EQ_INT(r.status, 200);
    CHECK(strncmp(sgt_str(r.json, "visual_context"), "Scene appears to be: ", 21) == 0);
    CHECK(json_real_value(json_object_get(json_object_get(json_object_get(r.json, "metadata"), "latency_ms"), "vision")) > 0);
    sgt_resp_free(&r);
    free(b64);
    CHECK_EQ_INT(sgt_stop(&s, SIGTERM), 0);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
    run("int8");
    run("f32");
    /* a model directory that does not load: the server says why and exits 2 */
    sgt_server s;
    const char *bad[] = {"--vision-model", "/nonexistent/clip", NULL};
    int started = sgt_start(&s, NULL, bad);
    if (started == 0) {
        /* it may answer /health while loading; it must then exit on its own */
        int st = sgt_stop(&s, 0);
        CHECK_EQ_INT(st, 2);
    } else {
        CHECK(started != 0);
    }
    curl_global_cleanup();
    return check_report("test_server_vision");
}
