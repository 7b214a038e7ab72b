/* libFuzzer target for the OpenAI routes' request parsing (server/openai.h): the first byte picks
 * chat completions, embeddings, speech or a transcription (multipart, with the tiny Whisper
 * fixture as the model when it loads); the rest is the body. Each parse must either fill the
 * request's inputs or answer an error in OpenAI's shape with a 4xx/503 status, never a 500. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/asr_whisper.h"
#include "agent/tts.h"
#include "fuzz_util.h"
#include "server/openai.h"

static sg_config cfg;
static sg_backends backends;
static sg_server srv;
static sg_tts_backend tts = {.name = "flite-2.2 cmu_us_slt", .voice = "slt", .sample_rate = 16000};
static sg_llm_backend llm = {.name = "snn_tiny f32"};
static sg_vision_backend vision = {.name = "clip_tiny int8", .embedding_dim = 8, .context = 77};

static sg_status no_embed(void *self, const char *text, float *out, int *n, sg_error *err)
{
    (void)self, (void)text, (void)out, (void)n;
    return sg_error_set(err, SG_EINVAL, "not called by the parser");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    sg_config_defaults(&cfg);
    vision.embed_text = no_embed;
    backends = (sg_backends){.tts = &tts, .llm = &llm, .vision = &vision};
    sg_error err = {0};
    sg_whisper *w = sg_whisper_load("tests/fixtures/whisper_ml/ggml-model.bin", SG_PREC_F32, NULL, &err);
    sg_asr_whisper *a = w ? sg_asr_whisper_new(w, "whisper_ml f32", NULL, &err) : NULL;
    if (a)
        backends.asr = sg_asr_whisper_backend(a); /* kept for the process */
    srv.cfg = &cfg;
    srv.b = &backends;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const char *const paths[] = {"/v1/chat/completions", "/v1/embeddings",
                                        "/v1/audio/speech", "/v1/audio/transcriptions",
                                        "/v1/audio/translations"};
    const int k = data[0] % 5;
    sg_req *r = calloc(1, sizeof *r);
    if (!r)
        return 0;
    char sid[40];
    r->srv = &srv;
    r->method = "POST";
    r->url = paths[k];
    r->route = sg_route_match("POST", paths[k], sid);
    r->body = (char *)fuzz_exact_copy(data + 1, size - 1);
    r->body_len = r->body_cap = size - 1;
    snprintf(r->content_type, sizeof r->content_type, "%s",
             k >= 3 ? "multipart/form-data; boundary=b" : "application/json");
    bool ok = k == 0 ? sg_v1_chat_parse(r)
              : k == 1 ? sg_v1_embeddings_parse(r)
              : k == 2 ? sg_v1_speech_parse(r)
                       : sg_v1_transcription_parse(r);
    if (!ok && (!r->done || r->status < 400 || r->status == 500 ||
                !json_is_object(json_object_get(r->json, "error"))))
        abort();
    if (ok && r->done)
        abort();
    json_decref(r->json);
    sg_work_input_free(&r->in);
    free(r->body);
    free(r);
    return 0;
}
