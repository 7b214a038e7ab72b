/* The answer on /ws/audio (issue 14) through the real sg-edge with the tiny Whisper and Silero VAD:
 * a socket that asks for answers ({"type":"config","answer":true,"speak":true} or
 * ?answer=true&speak=true) gets each final answered as a stream (token, audio, done; numbered by
 * "answer"); the wearer speaking again while an answer streams cancels it (answer_cancelled,
 * nothing more of it is sent) and the new utterance is answered; a socket closed mid-answer leaves
 * the server and the session usable. SG_DEBUG_ANSWER_DELAY_MS holds each answer before its first
 * text so that the next utterance's speech always arrives while it runs. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "media/audio.h"
#include "sgtest_http.h"
#include "sgtest_proc.h"
#include "sgtest_ws.h"

#define VAD_MODEL "../shared/models/silero-vad-v6.2.0-ggml.bin"
#define ASR_MODEL "tests/fixtures/whisper_tiny"
#define JFK "../shared/data/audio/jfk.wav"

static int16_t *jfk(size_t *n)
{
    size_t len;
    uint8_t *wav = (uint8_t *)sgt_read_file(JFK, &len);
    sg_audio a;
    sg_error err = {0};
    CHECK(wav && sg_audio_decode(wav, len, SG_AUDIO_AUTO, 0, 0, &a, &err) == SG_OK);
    free(wav);
    int16_t *s = malloc(a.n * sizeof *s);
    for (size_t i = 0; i < a.n; i++) {
        float v = a.samples[i] * 32768.0f;
        s[i] = (int16_t)(v > 32767 ? 32767 : v < -32768 ? -32768 : lrintf(v));
    }
    *n = a.n;
    sg_audio_free(&a);
    return s;
}

#define MAX_ANSWERS 16

typedef struct answers {
    json_t *all; /* every message, in order */
    int finals, nonempty_finals, cancelled, ends;
    long long cancelled_id[MAX_ANSWERS];
    bool after_cancel[MAX_ANSWERS]; /* a token/audio/done of a cancelled answer came after it */
    json_t *done[MAX_ANSWERS];      /* by answer number */
} answers;

static long long id_of(json_t *m) { return json_integer_value(json_object_get(m, "answer")); }

static void note(answers *A, json_t *m)
{
    json_array_append(A->all, m);
    const char *type = json_string_value(json_object_get(m, "type"));
    if (!type)
        return;
    if (strcmp(type, "final") == 0) {
        A->finals++;
        const char *t = json_string_value(json_object_get(m, "text"));
        A->nonempty_finals += t && strspn(t, " ") < strlen(t);
    } else if (strcmp(type, "end") == 0) {
        A->ends++;
    } else if (strcmp(type, "answer_cancelled") == 0) {
        CHECK(json_is_string(json_object_get(m, "reason")) && id_of(m) >= 1);
        if (A->cancelled < MAX_ANSWERS)
            A->cancelled_id[A->cancelled++] = id_of(m);
    } else if (strcmp(type, "token") == 0 || strcmp(type, "audio") == 0 ||
               strcmp(type, "done") == 0) {
        for (int i = 0; i < A->cancelled; i++)
            if (A->cancelled_id[i] == id_of(m))
                A->after_cancel[i] = true;
        if (strcmp(type, "done") == 0 && id_of(m) >= 1 && id_of(m) < MAX_ANSWERS)
            A->done[id_of(m)] = json_incref(json_object_get(m, "result"));
    }
}

/* Reads until pred holds or timeout. */
static void read_until(sgt_ws *w, answers *A, int timeout_ms, bool (*pred)(const answers *))
{
    const double deadline = sgt_ws_now_ms() + timeout_ms;
    while (!pred(A) && sgt_ws_now_ms() < deadline) {
        json_t *m = sgt_ws_recv_json(w, (int)(deadline - sgt_ws_now_ms()) + 1, NULL);
        if (!m)
            break;
        note(A, m);
        json_decref(m);
    }
}

static bool ended(const answers *A) { return A->ends > 0; }

/* The answer to the last non-empty final is done (or there is nothing to answer). */
static bool last_done(const answers *A)
{
    long long last = 0;
    size_t i;
    json_t *m;
    json_array_foreach(A->all, i, m) if (id_of(m) > last) last = id_of(m);
    return A->ends > 0 && (A->nonempty_finals == 0 || (last > 0 && last < MAX_ANSWERS &&
                                                       A->done[last] != NULL));
}

/* The text of answer id's tokens, concatenated. */
static char *answer_text(const answers *A, long long id, int *naudio)
{
    char *t = calloc(1, 1);
    size_t len = 0, i;
    json_t *m;
    *naudio = 0;
    json_array_foreach(A->all, i, m) {
        if (id_of(m) != id)
            continue;
        const char *type = json_string_value(json_object_get(m, "type"));
        if (type && strcmp(type, "reset") == 0)
            len = 0, t[0] = 0;
        if (type && strcmp(type, "audio") == 0)
            (*naudio)++;
        if (!type || strcmp(type, "token") != 0)
            continue;
        const char *p = json_string_value(json_object_get(m, "text"));
        size_t n = strlen(p);
        t = realloc(t, len + n + 1);
        memcpy(t + len, p, n + 1);
        len += n;
    }
    return t;
}

static void send_audio(sgt_ws *w, answers *A, const int16_t *s, size_t n, int chunk_sleep_ms)
{
    for (size_t at = 0; at < n; at += 1600) {
        size_t k = n - at < 1600 ? n - at : 1600;
        sgt_ws_send(w, 2, s + at, k * 2);
        sgt_sleep_ms(chunk_sleep_ms);
        for (json_t *m; (m = sgt_ws_recv_json(w, 0, NULL));) {
            note(A, m);
            json_decref(m);
        }
    }
}

int main(void)
{
    size_t n;
    int16_t *pcm = jfk(&n);
    sgt_server s;
    const char *env[] = {"SG_DEBUG_ANSWER_DELAY_MS=2500", NULL};
    const char *args[] = {"--asr-model", ASR_MODEL, "--vad-model", VAD_MODEL, NULL};
    CHECK(sgt_start(&s, env, args) == 0);
    CHECK(sgt_wait_ready(&s));
    char *sid = sgt_new_session(&s, NULL);

    /* jfk.wav at 4x real time on a socket that asks for spoken answers: its utterances follow
     * each other within the 2.5 s an answer is held, so each answer but the last is cut short */
    sgt_ws w;
    CHECK_EQ_INT(sgt_ws_connect(s.port, &w, "audio", sid), 101);
    sgt_ws_send_text(&w, "{\"type\":\"config\",\"answer\":true,\"speak\":true}");
    answers A = {.all = json_array()};
    send_audio(&w, &A, pcm, n, 25);
    sgt_ws_send_text(&w, "{\"type\":\"end\"}");
    read_until(&w, &A, 60000, ended);
    read_until(&w, &A, 60000, last_done);
    for (size_t i = 0; getenv("SG_TEST_VERBOSE") && i < json_array_size(A.all); i++) { char *d = json_dumps(json_array_get(A.all, i), 0); printf("%.160s\n", d); free(d); }
    printf("jfk: %d finals (%d with words), %d answers cancelled, %zu messages\n", A.finals,
           A.nonempty_finals, A.cancelled, json_array_size(A.all));
    CHECK(A.finals >= 2 && A.nonempty_finals >= 2);
    CHECK_MSG(A.cancelled >= 1, "no answer was cancelled by the next utterance");
    for (int i = 0; i < A.cancelled; i++)
        CHECK_MSG(!A.after_cancel[i], "answer %lld sent text, audio or done after its cancel",
                  A.cancelled_id[i]);
    long long last = 0;
    for (long long k = 1; k < MAX_ANSWERS; k++)
        if (A.done[k])
            last = k;
    CHECK_MSG(last >= 1, "no answer finished");
    if (last >= 1) {
        int naudio;
        char *t = answer_text(&A, last, &naudio);
        const char *resp = json_string_value(json_object_get(A.done[last], "response"));
        CHECK_MSG(resp && strcmp(t, resp) == 0, "answer %lld: tokens \"%s\" != \"%s\"", last, t,
                  resp ? resp : "");
        CHECK_MSG(naudio >= 1, "answer %lld: no audio", last);
        json_t *lat = json_object_get(json_object_get(A.done[last], "metadata"), "latency_ms");
        CHECK(json_is_number(json_object_get(lat, "first_token")) &&
              json_is_number(json_object_get(lat, "first_audio")));
        free(t);
    }
    for (int k = 0; k < MAX_ANSWERS; k++)
        json_decref(A.done[k]);
    json_decref(A.all);
    sgt_ws_free(&w);

    /* ?answer=true&speak=false: answered as text; closed while the answer is held */
    char path[160];
    snprintf(path, sizeof path, "/ws/audio/%s?answer=true&speak=false", sid);
    CHECK_EQ_INT(sgt_ws_open(&w, s.port, "GET", path, NULL, NULL), 101);
    answers B = {.all = json_array()};
    send_audio(&w, &B, pcm, 48000, 5); /* the first 3 s */
    sgt_ws_send_text(&w, "{\"type\":\"end\"}");
    read_until(&w, &B, 60000, ended);
    sgt_ws_free(&w); /* gone mid-answer */
    json_decref(B.all);
    snprintf(path, sizeof path, "/sessions/%s/query", sid);
    sgt_resp r = sgt_post_str(&s, path, "{\"text_query\":\"help\"}");
    CHECK_EQ_INT(r.status, 200);
    sgt_resp_free(&r);
    /* a bad flag is refused before the upgrade */
    snprintf(path, sizeof path, "/ws/audio/%s?answer=maybe", sid);
    CHECK_EQ_INT(sgt_ws_open(&w, s.port, "GET", path, NULL, NULL), 422);
    sgt_ws_free(&w);

    free(sid);
    free(pcm);
    CHECK_EQ_INT(sgt_stop(&s, SIGTERM), 0);
    return check_report("test_server_ws_answer");
}
