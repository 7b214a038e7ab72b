/* Issue 15's targets, measured in one run on one model and one audio file:
 *  1. what POST /v1/audio/transcriptions adds over `sg transcribe --response-format` (the same
 *     decode + log-mel + transcribe() + format, in process) - the HTTP request to a real sg-edge
 *     on loopback (multipart upload, parse, queue, response) minus the in-process time;
 *  2. what word timestamps add to the decode time (the alignment pass vs the decoding);
 *  3. what the temperature fallback costs when the first pass is accepted (six temperatures vs
 *     temperature 0 alone).
 * Medians over R runs after a warm-up.
 *   build/bench/bench_v1 MODEL AUDIO [R] [THREADS]   (sg-edge: SG_EDGE_BIN, default build/sg-edge) */
#include <curl/curl.h>
#include <math.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

#include "agent/speech.h"
#include "agent/transcript_format.h"
#include "base/clock.h"
#include "base/file.h"
#include "media/audio.h"
#include "models/whisper_transcribe.h"
#include "nn/pool.h"

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* sg transcribe --response-format verbose_json's work after loading: decode, transcribe, format. */
static double in_process(sg_whisper *m, const uint8_t *file, size_t len,
                         const sg_whisper_transcribe_opts *o, sg_whisper_transcript *keep)
{
    sg_error err = {0};
    double t0 = sg_now_ms();
    sg_audio au;
    if (sg_audio_decode(file, len, SG_AUDIO_AUTO, 0, 0, &au, &err) != SG_OK) {
        fprintf(stderr, "decode: %s\n", err.msg);
        exit(1);
    }
    sg_whisper_transcript t;
    if (sg_speech_transcribe_openai(m, au.samples, au.n, o, &t, &err) != SG_OK) {
        fprintf(stderr, "transcribe: %s\n", err.msg);
        exit(1);
    }
    char *out;
    sg_transcript_format_opts fo = {.granularities = SG_TRANSCRIPT_GRAN_SEGMENT};
    if (sg_transcript_format_write(&t, SG_TRANSCRIPT_VERBOSE_JSON, &fo, &out, NULL, &err) != SG_OK) {
        fprintf(stderr, "format: %s\n", err.msg);
        exit(1);
    }
    free(out);
    sg_audio_free(&au);
    double ms = sg_now_ms() - t0;
    if (keep)
        *keep = t;
    else
        sg_whisper_transcript_free(&t);
    return ms;
}

static double last_processing_ms; /* the last response's openai-processing-ms */

static size_t on_header(char *p, size_t s, size_t n, void *ud)
{
    (void)ud;
    if (s * n > 22 && strncasecmp(p, "openai-processing-ms:", 21) == 0)
        last_processing_ms = atof(p + 21);
    return s * n;
}

static size_t sink(char *p, size_t s, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return s * n;
}

/* One POST of the prepared form; false (said on stderr) unless it is a 200. */
static bool post(CURL *c, long *code)
{
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, code);
    if (rc != CURLE_OK || *code != 200) {
        fprintf(stderr, "POST failed: %s, HTTP %ld\n", curl_easy_strerror(rc), *code);
        return false;
    }
    return true;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    bind(fd, (struct sockaddr *)&a, sizeof a);
    getsockname(fd, (struct sockaddr *)&a, &l);
    close(fd);
    return ntohs(a.sin_port);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_v1 MODEL AUDIO [RUNS] [THREADS]\n");
        return 2;
    }
    const char *model = argv[1], *audio = argv[2];
    int runs = argc > 3 ? atoi(argv[3]) : 10, threads = argc > 4 ? atoi(argv[4]) : 2;
    const char *edge = getenv("SG_EDGE_BIN") ? getenv("SG_EDGE_BIN") : "build/sg-edge";
    size_t len = 0;
    char *bytes = NULL;
    sg_error err = {0};
    if (sg_file_read(audio, (size_t)1 << 30, &bytes, &len, &err) != SG_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    uint8_t *file = (uint8_t *)bytes;
    sg_pool *pool = sg_pool_new(threads);
    sg_whisper *m = file && pool ? sg_whisper_load(model, SG_PREC_Q8, pool, &err) : NULL;
    if (!m) {
        fprintf(stderr, "cannot load %s / %s: %s\n", model, audio, err.msg);
        return 1;
    }
    double *t = calloc((size_t)runs, sizeof *t), *dec = calloc((size_t)runs, sizeof *dec),
           *al = calloc((size_t)runs, sizeof *al), *d0 = calloc((size_t)runs, sizeof *d0);
    /* o: the server's options (openai's defaults); accepted / words / t0only: the first pass is
     * accepted (a random model's text would fail the checks: they are off), with and without word
     * timestamps, and with temperature 0 alone */
    sg_whisper_transcribe_opts o, accepted, words, t0only;
    sg_whisper_transcribe_opts_default(&o);
    /* the overhead pair: "temperature": 1 on both sides, one pass per window (a random model's
     * fallbacks would make the work, not the transport, the noise) */
    o.n_temperatures = 1;
    o.temperatures[0] = 1.0f;
    accepted = o;
    accepted.n_temperatures = 6;
    for (int k = 0; k < 6; k++)
        accepted.temperatures[k] = 0.2f * (float)k;
    accepted.compression_ratio_threshold = 0;
    accepted.logprob_threshold = -INFINITY;
    accepted.no_speech_threshold = 2;
    words = accepted;
    words.word_timestamps = true;
    t0only = accepted;
    t0only.n_temperatures = 1;
    t0only.temperatures[0] = 0;
    /* the same through a real sg-edge */
    int port = free_port();
    char portstr[16], thr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    snprintf(thr, sizeof thr, "%d", threads);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("SG_LOG_LEVEL", "warn", 1);
        execl(edge, edge, "--host", "127.0.0.1", "--port", portstr, "--threads", thr,
              "--asr-model", model, "--asr-precision", "int8", (char *)NULL);
        _exit(127);
    }
    char url[128];
    CURL *c = curl_easy_init();
    snprintf(url, sizeof url, "http://127.0.0.1:%d/ready", port);
    long code = 0;
    for (int i = 0; i < 600 && code != 200; i++) {
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
        if (curl_easy_perform(c) == CURLE_OK)
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        if (code != 200)
            usleep(100000);
    }
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/audio/transcriptions", port);
    curl_mime *mime = curl_mime_init(c);
    curl_mimepart *p = curl_mime_addpart(mime);
    curl_mime_name(p, "file");
    curl_mime_data(p, (const char *)file, len);
    curl_mime_filename(p, "audio.wav");
    curl_mime_type(p, "audio/wav");
    p = curl_mime_addpart(mime);
    curl_mime_name(p, "model");
    curl_mime_data(p, "whisper-1", CURL_ZERO_TERMINATED);
    p = curl_mime_addpart(mime);
    curl_mime_name(p, "response_format");
    curl_mime_data(p, "verbose_json", CURL_ZERO_TERMINATED);
    p = curl_mime_addpart(mime);
    curl_mime_name(p, "temperature");
    curl_mime_data(p, "1", CURL_ZERO_TERMINATED);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_MIMEPOST, mime);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    double *h = calloc((size_t)runs + 1, sizeof *h), *diff = calloc((size_t)runs, sizeof *diff);
    in_process(m, file, len, &o, NULL); /* warm-up, both sides */
    if (!post(c, &code)) {
        kill(pid, SIGTERM);
        return 1;
    }
    int fallbacks = 0;
    /* the overhead: blocks of the same work in process and through the server, twice in turn
     * (ABAB: drift in the machine's load falls on both); one process's weights do not evict the
     * other's between two runs, as the server's stay warm when it runs alone */
    for (int half = 0; half < 2; half++) {
        const int i0 = half * runs / 2, i1 = half ? runs : runs / 2;
        for (int i = i0; i < i1; i++)
            t[i] = in_process(m, file, len, &o, NULL);
        post(c, &code); /* warm the server's caches again */
        for (int i = i0; i < i1; i++) {
            double s0 = sg_now_ms();
            if (!post(c, &code)) {
                kill(pid, SIGTERM);
                return 1;
            }
            h[i] = sg_now_ms() - s0;
            diff[i] = h[i] - last_processing_ms;
        }
    }
    for (int i = 0; i < runs; i++) {
        sg_whisper_transcript tr;
        in_process(m, file, len, &accepted, &tr);
        dec[i] = tr.decode_ms;
        fallbacks += tr.n_fallbacks;
        sg_whisper_transcript_free(&tr);
        in_process(m, file, len, &words, &tr);
        al[i] = tr.align_ms / (tr.decode_ms > 0 ? tr.decode_ms : 1) * 100;
        sg_whisper_transcript_free(&tr);
        in_process(m, file, len, &t0only, &tr);
        d0[i] = tr.decode_ms;
        sg_whisper_transcript_free(&tr);
    }
    curl_mime_free(mime);
    curl_easy_cleanup(c);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    const double inproc = median(t, runs), decode = median(dec, runs), align_pct = median(al, runs),
                 decode_t0 = median(d0, runs), http = median(h, runs), adds = median(diff, runs);
    sg_whisper_free(m);
    sg_pool_free(pool);
    printf("# %s, %s (%.2f s of audio), %d runs, %d threads, int8\n", model, audio,
           (double)(len - 44) / 32000, runs, threads);
    printf("sg transcribe (in process: decode+mel+transcribe+verbose_json)  median %8.2f ms\n", inproc);
    printf("POST /v1/audio/transcriptions (loopback, multipart, verbose_json) median %8.2f ms\n", http);
    printf("  /v1 adds                                                        %8.2f ms\n",
           http - inproc);
    printf("  of which outside the server (client, loopback: total - openai-processing-ms) %.2f ms\n",
           adds);
    printf("word timestamps: alignment pass = %.1f %% of the decode time (decode %.2f ms)\n",
           align_pct, decode);
    printf("temperature fallback, first pass accepted (%d fallbacks): decode %.2f ms with six "
           "temperatures vs %.2f ms with temperature 0 alone (%+.1f %%)\n", fallbacks, decode,
           decode_t0, (decode / decode_t0 - 1) * 100);
    free(t);
    free(dec);
    free(al);
    free(d0);
    free(h);
    free(diff);
    free(file);
    return 0;
}
