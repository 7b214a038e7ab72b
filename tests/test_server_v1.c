/* OpenAI's API through the real binary (issue 15), the checks the official SDK test
 * (tests/openai/) cannot make or that must also run under the sanitizers: errors in OpenAI's shape
 * with the right statuses (and our own routes keeping theirs), hostile chat and multipart bodies,
 * transcriptions equal to `sg transcribe --response-format` byte for byte, speech formats, the
 * embeddings' limits, and a server without models saying which model it lacks. */
#include <curl/curl.h>

#include "check.h"
#include "sgtest_cli.h"
#include "sgtest_server.h"

#define JFK "../shared/data/audio/jfk.wav"
#define ASR "tests/fixtures/whisper_ml/ggml-model.bin"

/* An OpenAI error: {"error":{"message": non-empty, "type", "param": null, "code"}} with status. */
static void expect_openai_error(const sgt_resp *r, long status, const char *code, const char *what)
{
    CHECK_MSG(r->status == status, "%s: status %ld, want %ld (%s)", what, r->status, status,
              r->body ? r->body : "");
    json_t *e = json_object_get(r->json, "error");
    CHECK_MSG(json_is_object(e), "%s: no error object: %s", what, r->body ? r->body : "");
    CHECK_MSG(strlen(sgt_str(e, "message")) > 0, "%s: no message", what);
    CHECK_MSG(strlen(sgt_str(e, "type")) > 0, "%s: no type", what);
    CHECK_MSG(json_is_null(json_object_get(e, "param")), "%s: param", what);
    if (code)
        CHECK_MSG(strcmp(sgt_str(e, "code"), code) == 0, "%s: code %s, want %s", what,
                  sgt_str(e, "code"), code);
}

typedef struct field {
    const char *name, *value;
} field;

/* A multipart POST (libcurl's encoder, as any client's): file (NULL: none) and fields. */
static sgt_resp post_form(const sgt_server *s, const char *path, const char *file, const void *data,
                          size_t len, const field *fields)
{
    sgt_resp r;
    memset(&r, 0, sizeof r);
    CURL *c = curl_easy_init();
    char url[256];
    snprintf(url, sizeof url, "%s%s", s->base, path);
    curl_mime *mime = curl_mime_init(c);
    if (file) {
        curl_mimepart *p = curl_mime_addpart(mime);
        curl_mime_name(p, "file");
        if (data)
            curl_mime_data(p, data, len);
        else
            curl_mime_filedata(p, file);
        curl_mime_filename(p, "audio.wav");
        curl_mime_type(p, "audio/wav");
    }
    for (int i = 0; fields && fields[i].name; i++) {
        curl_mimepart *p = curl_mime_addpart(mime);
        curl_mime_name(p, fields[i].name);
        curl_mime_data(p, fields[i].value, CURL_ZERO_TERMINATED);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_MIMEPOST, mime);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sgt_write_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, sgt_header_cb);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
    struct curl_slist *hl = curl_slist_append(NULL, "Expect:");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_slist_free_all(hl);
    curl_mime_free(mime);
    curl_easy_cleanup(c);
    if (r.body)
        r.json = json_loadb(r.body, r.len, 0, NULL);
    return r;
}

static void errors_and_chat(const sgt_server *s)
{
    /* OpenAI's shape on /v1, ours elsewhere */
    sgt_resp r = sgt_get(s, "/v1/no-such-thing");
    expect_openai_error(&r, 404, NULL, "unknown /v1 route");
    sgt_resp_free(&r);
    r = sgt_get(s, "/v1/chat/completions");
    expect_openai_error(&r, 405, NULL, "GET on chat");
    sgt_resp_free(&r);
    r = sgt_get(s, "/sessions/00000000-0000-4000-8000-000000000000/nothing");
    CHECK(r.status == 404 && json_is_string(json_object_get(r.json, "detail")));
    sgt_resp_free(&r);
    r = sgt_get(s, "/v1/models/nothing-like-it");
    expect_openai_error(&r, 404, "model_not_found", "retrieve unknown model");
    sgt_resp_free(&r);

    static const struct {
        const char *body, *what, *code;
        long status;
    } bad[] = {
        {"{", "malformed JSON", NULL, 400},
        {"[]", "not an object", NULL, 400},
        {"{\"model\":\"rule-based\"}", "no messages", NULL, 400},
        {"{\"messages\":[]}", "empty messages", NULL, 400},
        {"{\"messages\":[{\"role\":\"system\",\"content\":\"x\"}]}", "no user message", NULL, 400},
        {"{\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"},{\"role\":\"user\",\"content\":\"x\"}]}",
         "unknown role", NULL, 400},
        {"{\"messages\":[{\"role\":\"user\",\"content\":7}]}", "content not text", NULL, 400},
        {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_audio\"}]}]}",
         "unsupported part", NULL, 400},
        {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":"
         "{\"url\":\"http://127.0.0.1:1/x.jpg\"}}]}]}", "http image", NULL, 400},
        {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":"
         "{\"url\":\"data:image/jpeg;base64,@@@@\"}}]}]}", "bad base64 image", NULL, 400},
        {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":"
         "{\"url\":\"data:image/jpeg;base64,aGVsbG8=\"}}]}]}", "not an image", NULL, 400},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"temperature\":3}", "temperature", NULL, 400},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"top_p\":0}", "top_p", NULL, 400},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"seed\":1.5}", "seed", NULL, 400},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"n\":2}", "n", NULL, 400},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":0}", "max_tokens", NULL, 400},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"tools\":[{\"type\":\"function\"}]}",
         "tools", NULL, 400},
        {"{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", "unknown model",
         "model_not_found", 404},
        {"{\"model\":\"whisper-1\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
         "a transcription model for chat", "model_not_found", 404},
        {"{\"model\":7,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", "model not a string", NULL, 400},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        r = sgt_post_str(s, "/v1/chat/completions", bad[i].body);
        expect_openai_error(&r, bad[i].status, bad[i].code, bad[i].what);
        sgt_resp_free(&r);
    }

    /* a plain answer from the responder, with our extension */
    r = sgt_post_str(s, "/v1/chat/completions",
                     "{\"model\":\"rule-based\",\"messages\":[{\"role\":\"user\",\"content\":\"What time is it?\"}]}");
    CHECK_EQ_INT(r.status, 200);
    json_t *msg = json_object_get(json_array_get(json_object_get(r.json, "choices"), 0), "message");
    CHECK(strlen(sgt_str(msg, "content")) > 0);
    CHECK(json_is_array(json_object_get(json_object_get(r.json, "smartglass"), "actions")));
    sgt_resp_free(&r);

    /* streamed: data-only events, the last "[DONE]" */
    const char *h[] = {"Content-Type: application/json", NULL};
    const char *body = "{\"model\":\"rule-based\",\"stream\":true,\"messages\":[{\"role\":\"user\","
                       "\"content\":\"hello\"}]}";
    r = sgt_request(s, "POST", "/v1/chat/completions", h, body, strlen(body));
    CHECK_EQ_INT(r.status, 200);
    CHECK(r.body && strstr(r.body, "event:") == NULL);
    CHECK(r.body && strstr(r.body, "\"object\":\"chat.completion.chunk\"") != NULL);
    CHECK(r.len > 14 && strcmp(r.body + r.len - 14, "data: [DONE]\n\n") == 0);
    sgt_resp_free(&r);
}

static void audio_routes(const sgt_server *s)
{
    /* transcriptions: the same bytes as the CLI, in every format */
    static const char *const formats[] = {"json", "text", "srt", "vtt", "verbose_json"};
    for (size_t i = 0; i < 5; i++) {
        field f[] = {{"model", "whisper-1"}, {"response_format", formats[i]}, {NULL, NULL}};
        sgt_resp r = post_form(s, "/v1/audio/transcriptions", JFK, NULL, 0, f);
        CHECK_MSG(r.status == 200, "%s: %ld %s", formats[i], r.status, r.body ? r.body : "");
        char cmd[512], *out;
        snprintf(cmd, sizeof cmd, "%s transcribe --model %s --response-format %s %s", SG_CLI_BIN,
                 ASR, formats[i], JFK);
        CHECK(sgt_run(cmd, &out) == 0);
        CHECK_MSG(r.body && strcmp(r.body, out) == 0, "%s: server and CLI differ:\n%s\n---\n%s",
                  formats[i], r.body ? r.body : "", out);
        free(out);
        sgt_resp_free(&r);
    }

    /* hostile or wrong forms */
    field none[] = {{NULL, NULL}};
    sgt_resp r = post_form(s, "/v1/audio/transcriptions", NULL, NULL, 0, (field[]){{"model", "whisper-1"}, {NULL, NULL}});
    expect_openai_error(&r, 400, NULL, "no file part");
    sgt_resp_free(&r);
    r = post_form(s, "/v1/audio/transcriptions", "x", "not audio", 9, none);
    expect_openai_error(&r, 400, NULL, "not audio");
    sgt_resp_free(&r);
    r = post_form(s, "/v1/audio/transcriptions", JFK, NULL, 0,
                  (field[]){{"response_format", "docx"}, {NULL, NULL}});
    expect_openai_error(&r, 400, NULL, "unknown format");
    sgt_resp_free(&r);
    r = post_form(s, "/v1/audio/transcriptions", JFK, NULL, 0,
                  (field[]){{"timestamp_granularities[]", "word"}, {NULL, NULL}});
    expect_openai_error(&r, 400, NULL, "words without verbose_json");
    sgt_resp_free(&r);
    r = post_form(s, "/v1/audio/transcriptions", JFK, NULL, 0,
                  (field[]){{"language", "klingon"}, {NULL, NULL}});
    expect_openai_error(&r, 400, NULL, "unknown language");
    sgt_resp_free(&r);
    r = post_form(s, "/v1/audio/transcriptions", JFK, NULL, 0,
                  (field[]){{"temperature", "2"}, {NULL, NULL}});
    expect_openai_error(&r, 400, NULL, "temperature");
    sgt_resp_free(&r);
    r = post_form(s, "/v1/audio/transcriptions", JFK, NULL, 0,
                  (field[]){{"model", "flite-2.2-cmu_us_slt"}, {NULL, NULL}});
    expect_openai_error(&r, 400, NULL, "a speech model for transcription");
    sgt_resp_free(&r);
    const char *h[] = {"Content-Type: multipart/form-data", NULL};
    r = sgt_request(s, "POST", "/v1/audio/transcriptions", h, "x", 1);
    expect_openai_error(&r, 400, NULL, "no boundary");
    sgt_resp_free(&r);
    const char *h2[] = {"Content-Type: multipart/form-data; boundary=b", NULL};
    const char *cut = "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\nRIFF";
    r = sgt_request(s, "POST", "/v1/audio/transcriptions", h2, cut, strlen(cut));
    expect_openai_error(&r, 400, NULL, "no closing delimiter");
    sgt_resp_free(&r);
    r = sgt_post_str(s, "/v1/audio/transcriptions", "{\"file\":\"x\"}");
    CHECK(r.status == 400 || r.status == 415);
    CHECK(json_is_object(json_object_get(r.json, "error")));
    sgt_resp_free(&r);

    /* speech: the format's bytes and media type */
    static const struct {
        const char *fmt, *ctype, *magic;
    } sp[] = {{"wav", "audio/wav", "RIFF"}, {"flac", "audio/flac", "fLaC"}, {"opus", "audio/ogg", "OggS"},
              {"mp3", "audio/mpeg", NULL}, {"pcm", "audio/pcm", NULL}};
    for (size_t i = 0; i < 5; i++) {
        char body[160], ct[64] = "";
        snprintf(body, sizeof body, "{\"model\":\"tts-1\",\"voice\":\"alloy\",\"input\":\"Turn left "
                 "here.\",\"response_format\":\"%s\",\"speed\":1.2}", sp[i].fmt);
        r = sgt_post_str(s, "/v1/audio/speech", body);
        CHECK_MSG(r.status == 200, "speech %s: %ld", sp[i].fmt, r.status);
        sgt_header(&r, "Content-Type", ct, sizeof ct);
        CHECK_MSG(strcmp(ct, sp[i].ctype) == 0, "speech %s: %s", sp[i].fmt, ct);
        CHECK(r.len > 1000);
        if (sp[i].magic)
            CHECK_MSG(r.body && memcmp(r.body, sp[i].magic, 4) == 0, "speech %s magic", sp[i].fmt);
        if (strcmp(sp[i].fmt, "pcm") == 0)
            CHECK(r.len % 2 == 0);
        sgt_resp_free(&r);
    }
    static const char *const bad_speech[] = {
        "{\"input\":\"\"}", "{\"input\":\"hi\",\"voice\":\"nobody\"}",
        "{\"input\":\"hi\",\"response_format\":\"aac\"}", "{\"input\":\"hi\",\"speed\":4}",
        "{\"voice\":\"alloy\"}"};
    for (size_t i = 0; i < 5; i++) {
        r = sgt_post_str(s, "/v1/audio/speech", bad_speech[i]);
        expect_openai_error(&r, 400, NULL, bad_speech[i]);
        sgt_resp_free(&r);
    }

    /* embeddings: limits */
    char long_text[4000] = "{\"input\":\"";
    for (int i = 0; i < 300; i++)
        strcat(long_text, "word ");
    strcat(long_text, "\"}");
    r = sgt_post_str(s, "/v1/embeddings", long_text);
    expect_openai_error(&r, 400, "context_length_exceeded", "over CLIP's context");
    sgt_resp_free(&r);
    static const char *const bad_embed[] = {"{\"input\":[]}", "{\"input\":[1,2]}", "{\"input\":\"\"}",
                                            "{\"input\":\"x\",\"dimensions\":3}",
                                            "{\"input\":\"x\",\"encoding_format\":\"hex\"}",
                                            "{\"input\":\"data:image/png;base64,AAAA\"}"};
    for (size_t i = 0; i < 6; i++) {
        r = sgt_post_str(s, "/v1/embeddings", bad_embed[i]);
        expect_openai_error(&r, 400, NULL, bad_embed[i]);
        sgt_resp_free(&r);
    }
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
    /* a key: OpenAI's Authorization: Bearer, and its 401 */
    sgt_server s;
    const char *env[] = {"EDGE_RUNTIME_API_KEY=test-key-v1", NULL};
    const char *args[] = {"--asr-model", ASR, "--llm-model", "tests/fixtures/snn_tiny",
                          "--vision-model", "tests/fixtures/clip_tiny", NULL};
    CHECK(sgt_start(&s, env, args) == 0);
    sgt_resp r = sgt_get(&s, "/v1/models");
    expect_openai_error(&r, 401, "invalid_api_key", "no key");
    sgt_resp_free(&r);
    sgt_stop(&s, SIGTERM);

    CHECK(sgt_start(&s, NULL, args) == 0);
    CHECK(sgt_wait_ready(&s));
    r = sgt_get(&s, "/v1/models");
    CHECK_EQ_INT(r.status, 200);
    CHECK(json_array_size(json_object_get(r.json, "data")) == 5); /* snn, responder, whisper, flite, clip */
    sgt_resp_free(&r);
    errors_and_chat(&s);
    audio_routes(&s);
    sgt_stop(&s, SIGTERM);

    /* no models: each kind says what it lacks */
    const char *bare_env[] = {"SG_TTS=off", NULL};
    CHECK(sgt_start(&s, bare_env, NULL) == 0);
    r = post_form(&s, "/v1/audio/transcriptions", JFK, NULL, 0, (field[]){{"model", "whisper-1"}, {NULL, NULL}});
    expect_openai_error(&r, 503, "model_unavailable", "no ASR model");
    sgt_resp_free(&r);
    r = sgt_post_str(&s, "/v1/embeddings", "{\"input\":\"x\"}");
    expect_openai_error(&r, 503, "model_unavailable", "no CLIP");
    sgt_resp_free(&r);
    r = sgt_post_str(&s, "/v1/audio/speech", "{\"input\":\"x\",\"model\":\"tts-1\"}");
    expect_openai_error(&r, 503, "model_unavailable", "TTS off");
    sgt_resp_free(&r);
    r = sgt_post_str(&s, "/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"what can you do?\"}]}");
    CHECK_EQ_INT(r.status, 200); /* the responder answers without a model */
    sgt_resp_free(&r);
    sgt_stop(&s, SIGTERM);
    curl_global_cleanup();
    return check_report("test_server_v1");
}
