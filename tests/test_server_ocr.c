/* OCR through the real sg-edge: /health reports it; a generated sign sent as a frame is read on
 * its keyframe and the text kept with the scene; "read the sign" then says the sign's words, and
 * the prompt carries them; a frame without text costs no OCR; a sign in the query itself is read
 * for a question that asks to read; a server whose Tesseract data is missing says so and serves
 * without OCR; SG_OCR_LANG=off turns it off. */
#include "check.h"
#include "sgtest_server.h"

#define SIGN "tests/fixtures/signs/sign_01.jpg" /* EMERGENCY EXIT / KEEP CLEAR */

/* POST a frame with the client's keyframe hint (frames this close together would otherwise be
 * within the gate's minimum gap) */
static sgt_resp post_keyframe(const sgt_server *s, const char *path, const char *b64)
{
    json_t *body = json_pack("{s:s}", "image_base64", b64);
    char *text = json_dumps(body, JSON_COMPACT);
    const char *h[] = {"X-Client-Keyframe: true", NULL};
    sgt_resp r = sgt_request(s, "POST", path, h, text, strlen(text));
    free(text);
    json_decref(body);
    return r;
}

static json_t *latency(json_t *o)
{
    return json_object_get(json_object_get(o, "metadata"), "latency_ms");
}

static void with_ocr(void)
{
    sgt_server s;
    CHECK(sgt_start(&s, NULL, NULL) == 0);
    sgt_resp r = sgt_get(&s, "/health");
    CHECK(json_is_true(json_object_get(json_object_get(r.json, "models"), "ocr")));
    CHECK_MSG(strncmp(sgt_str(json_object_get(r.json, "model_names"), "ocr"), "tesseract ", 10) == 0,
              "ocr model name: %s", sgt_str(json_object_get(r.json, "model_names"), "ocr"));
    sgt_resp_free(&r);

    char *id = sgt_new_session(&s, NULL);
    char fpath[128], qpath[128], mpath[128];
    snprintf(fpath, sizeof fpath, "/sessions/%s/frame", id);
    snprintf(qpath, sizeof qpath, "/sessions/%s/query", id);
    snprintf(mpath, sizeof mpath, "/sessions/%s/multimodal", id);

    /* a frame without text first: a keyframe, no OCR on it */
    char *photo = sgt_b64_file("../shared/data/images/chelsea.jpg");
    r = post_keyframe(&s, fpath, photo);
    CHECK_EQ_INT(r.status, 200);
    CHECK(json_is_true(json_object_get(r.json, "keyframe")));
    CHECK(json_object_get(json_object_get(r.json, "scene"), "text") == NULL);
    CHECK(json_object_get(json_object_get(r.json, "latency_ms"), "ocr") == NULL);
    sgt_resp_free(&r);
    r = sgt_post_str(&s, qpath, "{\"text_query\":\"read the sign for me\"}");
    CHECK_EQ_INT(r.status, 200);
    CHECK(strcmp(sgt_str(json_object_get(r.json, "metadata"), "intent"), "read") == 0);
    CHECK_MSG(strstr(sgt_str(r.json, "response"), "didn't find text"), "response: %s",
              sgt_str(r.json, "response"));
    CHECK(strstr(sgt_str(json_object_get(r.json, "raw"), "prompt"), "Text in view") == NULL);
    sgt_resp_free(&r);

    /* the sign as a frame: read on its keyframe, kept with the scene */
    char *sign = sgt_b64_file(SIGN);
    CHECK(sign != NULL);
    r = post_keyframe(&s, fpath, sign);
    CHECK_EQ_INT(r.status, 200);
    CHECK(json_is_true(json_object_get(r.json, "keyframe")));
    json_t *text = json_object_get(json_object_get(r.json, "scene"), "text");
    CHECK_MSG(strstr(sgt_str(text, "text"), "EMERGENCY EXIT"), "scene text: %s", sgt_str(text, "text"));
    json_t *line = json_array_get(json_object_get(text, "lines"), 0);
    CHECK(json_real_value(json_object_get(line, "confidence")) > 50);
    CHECK_EQ_INT(json_array_size(json_object_get(line, "box")), 4);
    CHECK(json_real_value(json_object_get(json_object_get(r.json, "latency_ms"), "ocr")) > 0);
    sgt_resp_free(&r);

    /* "read the sign" answers from the remembered frame */
    r = sgt_post_str(&s, qpath, "{\"text_query\":\"read the sign\"}");
    CHECK_EQ_INT(r.status, 200);
    const char *resp = sgt_str(r.json, "response");
    CHECK_MSG(strstr(resp, "The sign says: \"EMERGENCY EXIT, KEEP CLEAR\""), "response: %s", resp);
    CHECK_MSG(strstr(sgt_str(json_object_get(r.json, "raw"), "prompt"),
                     "\nText in view: EMERGENCY EXIT / KEEP CLEAR\nUser query: read the sign"),
              "prompt: %s", sgt_str(json_object_get(r.json, "raw"), "prompt"));
    CHECK(strcmp(sgt_str(json_object_get(json_object_get(r.json, "metadata"), "models"), "ocr"), "") != 0);
    CHECK(json_real_value(json_object_get(latency(r.json), "ocr")) == 0.0); /* not run again */
    sgt_resp_free(&r);

    /* a sign in the question itself is read now */
    char *other = sgt_b64_file("tests/fixtures/signs/sign_09.jpg"); /* WET FLOOR */
    json_t *body = json_pack("{s:s,s:s}", "text", "what does the sign say?", "image", other);
    r = sgt_post_json(&s, mpath, body);
    json_decref(body);
    CHECK_EQ_INT(r.status, 200);
    resp = sgt_str(r.json, "response");
    CHECK_MSG(strstr(resp, "WET FLOOR"), "response: %s", resp);
    CHECK(json_real_value(json_object_get(latency(r.json), "ocr")) > 0);
    sgt_resp_free(&r);

    free(photo);
    free(sign);
    free(other);
    free(id);
    CHECK_EQ_INT(sgt_stop(&s, SIGTERM), 0);
}

/* Without its data OCR is unavailable, said in the log, and the server serves on. */
static void without_ocr(const char *env_entry, const char *why)
{
    sgt_server s;
    const char *env[] = {env_entry, NULL};
    CHECK_MSG(sgt_start(&s, env, NULL) == 0, "%s: the server did not start", why);
    sgt_resp r = sgt_get(&s, "/health");
    CHECK_MSG(json_is_false(json_object_get(json_object_get(r.json, "models"), "ocr")), "%s", why);
    sgt_resp_free(&r);
    char *id = sgt_new_session(&s, NULL);
    char *sign = sgt_b64_file(SIGN);
    char qpath[128];
    snprintf(qpath, sizeof qpath, "/sessions/%s/query", id);
    json_t *body = json_pack("{s:s,s:s}", "text", "read the sign", "image", sign);
    r = sgt_post_json(&s, qpath, body);
    json_decref(body);
    CHECK_EQ_INT(r.status, 200);
    CHECK_MSG(strstr(sgt_str(r.json, "response"), "OCR") &&
                  !strstr(sgt_str(r.json, "response"), "EMERGENCY"),
              "%s: %s", why, sgt_str(r.json, "response"));
    sgt_resp_free(&r);
    free(sign);
    free(id);
    CHECK_EQ_INT(sgt_stop(&s, SIGTERM), 0);
}

int main(void)
{
    with_ocr();
    without_ocr("SG_OCR_TESSDATA=/nonexistent/tessdata", "missing data");
    without_ocr("SG_OCR_LANG=off", "off");
    return check_report("test_server_ocr");
}
