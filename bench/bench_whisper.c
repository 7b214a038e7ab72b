/* Whisper benchmark at one precision (run it once per precision, so that peak RSS is that of one
 * model): load, log-mel, the encoder on a 30 s window (3000 frames) and on a reduced 3 s window
 * (300 frames, whisper.cpp's audio_ctx), greedy decoding per token on the 30 s window, end to end
 * for the clip (mel + encode + decode), and a 3 s utterance with VAD (Silero finds the speech in
 * the first 3 s of the clip, the speech alone goes through mel, a reduced-context encode and the
 * decoder). Medians of RUNS after one warm-up; then one JSON line with every figure, the tokens
 * of the end-to-end run, VmRSS after load and the peak RSS (ru_maxrss) of the process.
 *   bench_whisper --model DIR [--precision f32|int8] [--threads N] [--runs N] [--audio WAV]
 *                 [--vad GGML] [--max-tokens N] [--utt-tokens N] [--utt-seconds S]
 *                 [--only encode|decode]   (for profilers: load, then only that part, RUNS times)
 * max-tokens (default 28 = the 27 text tokens of base.en's real transcript of jfk.wav + eot) caps
 * the decoding of the clip, utt-tokens (default 8) that of the utterance: a random-weight model
 * does not know when to stop, and these are the lengths a trained one produces. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "base/clock.h"
#include "base/file.h"
#include "media/audio.h"
#include "media/mel.h"
#include "models/silero_vad.h"
#include "models/whisper.h"
#include "nn/cpu.h"
#include "nn/pool.h"

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static long vm_rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = atol(line + 6);
    if (f)
        fclose(f);
    return kb;
}

#define FAIL(...)                                                                          \
    do {                                                                                   \
        fprintf(stderr, "bench_whisper: " __VA_ARGS__);                                    \
        fputc('\n', stderr);                                                               \
        exit(1);                                                                           \
    } while (0)

/* mel (frames even) of pcm[0..n): natural length rounded up to even, or padded to 3000 */
static float *mel_of(const float *pcm, size_t n, int pad30, int *frames)
{
    sg_error err = {0};
    float *mel = NULL;
    int want = pad30 ? SG_MEL_FRAMES_30S : (int)((n / SG_MEL_HOP + 1) / 2 * 2);
    if (want < 2)
        want = 2;
    if (sg_log_mel(pcm, n, 80, NULL, want, &mel, frames, &err) != SG_OK)
        FAIL("mel: %s", err.msg);
    return mel;
}

static double encode_ms(sg_whisper *m, const float *mel, int frames)
{
    sg_error err = {0};
    double t0 = sg_now_ms();
    if (sg_whisper_encode(m, mel, frames, NULL, &err) != SG_OK)
        FAIL("encode: %s", err.msg);
    return sg_now_ms() - t0;
}

static double decode_ms(sg_whisper *m, int max_tokens, sg_whisper_result *res)
{
    sg_error err = {0};
    double t0 = sg_now_ms();
    if (sg_whisper_decode_greedy(m, max_tokens, res, &err) != SG_OK)
        FAIL("decode: %s", err.msg);
    return sg_now_ms() - t0;
}

int main(int argc, char **argv)
{
    const char *model = NULL, *audio = "../shared/data/audio/jfk.wav",
               *vad_path = "../shared/models/silero-vad-v6.2.0-ggml.bin", *prec_name = "int8";
    int threads = 2, runs = 10, max_tokens = 28, utt_tokens = 8;
    double utt_s = 3.0;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            FAIL("usage: bench_whisper --model DIR [--precision f32|int8] [--threads N] [--runs N] "
                 "[--audio WAV] [--vad GGML] [--max-tokens N] [--utt-tokens N] [--utt-seconds S]");
        if (!strcmp(a, "--model"))
            model = v;
        else if (!strcmp(a, "--precision"))
            prec_name = v;
        else if (!strcmp(a, "--threads"))
            threads = atoi(v);
        else if (!strcmp(a, "--runs"))
            runs = atoi(v);
        else if (!strcmp(a, "--audio"))
            audio = v;
        else if (!strcmp(a, "--vad"))
            vad_path = v;
        else if (!strcmp(a, "--max-tokens"))
            max_tokens = atoi(v);
        else if (!strcmp(a, "--utt-tokens"))
            utt_tokens = atoi(v);
        else if (!strcmp(a, "--utt-seconds"))
            utt_s = atof(v);
        else if (!strcmp(a, "--only"))
            only = v;
        else
            FAIL("unknown option %s", a);
        i++;
    }
    if (!model)
        FAIL("--model DIR is required");
    sg_precision prec;
    if (!strcmp(prec_name, "f32"))
        prec = SG_PREC_F32;
    else if (!strcmp(prec_name, "int8"))
        prec = SG_PREC_Q8;
    else
        FAIL("--precision must be f32 or int8");
    if (runs < 1)
        runs = 1;
    double *t = malloc((size_t)runs * sizeof *t);

    size_t len;
    char *wav;
    sg_audio clip = {0};
    sg_error err = {0};
    if (sg_file_read(audio, (size_t)1 << 30, &wav, &len, &err) != SG_OK ||
        sg_audio_decode((const uint8_t *)wav, len, SG_AUDIO_AUTO, 0, 0, &clip, &err) != SG_OK)
        FAIL("%s: %s", audio, err.msg);
    free(wav);
    sg_silero *vad = sg_silero_load(vad_path, &err);
    if (!vad)
        FAIL("%s: %s", vad_path, err.msg);

    sg_pool *pool = sg_pool_new(threads);
    double t0 = sg_now_ms();
    sg_whisper *m = sg_whisper_load(model, prec, pool, &err);
    const double load_ms = sg_now_ms() - t0;
    if (!m)
        FAIL("%s: %s", model, err.msg);
    const long rss_loaded = vm_rss_kb();
    const sg_whisper_info *I = sg_whisper_get_info(m);
    printf("# whisper d_model %d, layers %d+%d, vocab %d, %s, %d threads, cpu %s, load %.0f ms, "
           "weights %.1f MB, VmRSS after load %.1f MB\n", I->d_model, I->enc_layers, I->dec_layers,
           I->vocab, prec_name, threads, sg_cpu_level_name(sg_cpu_level_get()), load_ms,
           I->weight_bytes / 1e6, rss_loaded / 1024.0);

    /* log-mel of the clip padded to the 30 s window */
    int frames = 0;
    float *mel = NULL;
    for (int r = 0; r < runs; r++) {
        free(mel);
        double s = sg_now_ms();
        mel = mel_of(clip.samples, clip.n, 1, &frames);
        t[r] = sg_now_ms() - s;
    }
    const double mel_ms = median(t, runs);

    if (only) { /* profiling: just the encoder or just decoding on the 30 s window */
        sg_whisper_result rr;
        encode_ms(m, mel, frames);
        for (int r = 0; r < runs; r++) {
            if (!strcmp(only, "encode")) {
                t[r] = encode_ms(m, mel, frames);
            } else {
                t[r] = decode_ms(m, max_tokens, &rr) / (double)rr.n_logprobs;
                sg_whisper_result_free(&rr);
            }
        }
        printf("%s: median %.3f ms%s\n", only, median(t, runs), strcmp(only, "encode") ? " per token" : "");
        sg_whisper_free(m);
        sg_pool_free(pool);
        sg_silero_free(vad);
        sg_audio_free(&clip);
        free(mel);
        free(t);
        return 0;
    }

    /* encoder, 30 s window */
    encode_ms(m, mel, frames);
    for (int r = 0; r < runs; r++)
        t[r] = encode_ms(m, mel, frames);
    const double enc30_ms = median(t, runs);

    /* decoding on the 30 s window */
    sg_whisper_result res = {0};
    decode_ms(m, max_tokens, &res);
    const size_t steps = res.n_logprobs;
    sg_whisper_result_free(&res);
    for (int r = 0; r < runs; r++) {
        t[r] = decode_ms(m, max_tokens, &res) / (double)res.n_logprobs;
        if (r < runs - 1)
            sg_whisper_result_free(&res);
    }
    const double tok_ms = median(t, runs);

    /* end to end: mel + encode + decode of the clip */
    for (int r = 0; r < runs; r++) {
        double s = sg_now_ms();
        int fr;
        float *mm = mel_of(clip.samples, clip.n, 1, &fr);
        sg_whisper_result rr;
        if (sg_whisper_encode(m, mm, fr, NULL, &err) != SG_OK ||
            sg_whisper_decode_greedy(m, max_tokens, &rr, &err) != SG_OK)
            FAIL("end to end: %s", err.msg);
        t[r] = sg_now_ms() - s;
        sg_whisper_result_free(&rr);
        free(mm);
    }
    const double e2e_ms = median(t, runs);

    /* encoder, reduced 3 s window */
    int fr3;
    size_t n3 = clip.n < 3 * 16000 ? clip.n : 3 * 16000;
    float *mel3 = mel_of(clip.samples, n3, 0, &fr3);
    encode_ms(m, mel3, fr3);
    for (int r = 0; r < runs; r++)
        t[r] = encode_ms(m, mel3, fr3);
    const double enc3_ms = median(t, runs);
    free(mel3);

    /* a short utterance with VAD: the first utt_s seconds of the clip */
    size_t nu = (size_t)(utt_s * 16000);
    if (nu > clip.n)
        nu = clip.n;
    double utt_start = 0, utt_end = 0, vad_ms = 0;
    int utt_frames = 0;
    size_t utt_n = 0;
    for (int r = 0; r < runs + 1; r++) {
        double s = sg_now_ms();
        float *probs = NULL;
        size_t np = 0, nseg = 0;
        sg_vad_segment *seg = NULL;
        if (sg_silero_probs(vad, clip.samples, nu, &probs, &np, &err) != SG_OK ||
            sg_vad_segments(probs, np, nu, NULL, &seg, &nseg, &err) != SG_OK)
            FAIL("vad: %s", err.msg);
        double sv = sg_now_ms();
        if (nseg == 0)
            FAIL("vad found no speech in the first %.1f s", utt_s);
        size_t a = (size_t)(seg[0].start_s * 16000), b = (size_t)(seg[nseg - 1].end_s * 16000);
        if (b > nu)
            b = nu;
        utt_start = seg[0].start_s;
        utt_end = seg[nseg - 1].end_s;
        float *mu = mel_of(clip.samples + a, b - a, 0, &utt_frames);
        sg_whisper_result rr;
        if (sg_whisper_encode(m, mu, utt_frames, NULL, &err) != SG_OK ||
            sg_whisper_decode_greedy(m, utt_tokens, &rr, &err) != SG_OK)
            FAIL("utterance: %s", err.msg);
        if (r > 0) {
            t[r - 1] = sg_now_ms() - s;
            vad_ms += (sv - s) / runs;
        }
        utt_n = rr.n_logprobs;
        sg_whisper_result_free(&rr);
        free(mu);
        free(seg);
        free(probs);
    }
    const double utt_ms = median(t, runs);

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("  log-mel (11 s clip, padded to 30 s)  %8.2f ms\n", mel_ms);
    printf("  encoder, 30 s window (1500 pos)      %8.1f ms\n", enc30_ms);
    printf("  encoder, 3 s window (150 pos)        %8.1f ms\n", enc3_ms);
    printf("  decoding, per token (30 s window)    %8.2f ms  (%zu steps)\n", tok_ms, steps);
    printf("  end to end, 11 s clip                %8.1f ms\n", e2e_ms);
    printf("  3 s utterance with VAD               %8.1f ms  (VAD %.1f ms, speech %.2f-%.2f s, "
           "%d frames, %zu steps)\n", utt_ms, vad_ms, utt_start, utt_end, utt_frames, utt_n);
    printf("  peak RSS %.1f MB, VmRSS after load %.1f MB\n", ru.ru_maxrss / 1024.0,
           rss_loaded / 1024.0);
    printf("{\"impl\":\"smartglass-edge %s\",\"threads\":%d,\"runs\":%d,\"cpu\":\"%s\",\"load_ms\":%.1f,"
           "\"mel_ms\":%.3f,\"encode_30s_ms\":%.2f,\"encode_3s_ms\":%.2f,\"decode_ms_per_token\":%.3f,"
           "\"decode_steps\":%zu,\"end_to_end_ms\":%.2f,\"utterance_3s_vad_ms\":%.2f,\"vad_ms\":%.2f,"
           "\"utterance_frames\":%d,\"utterance_steps\":%zu,\"peak_rss_mb\":%.1f,"
           "\"rss_after_load_mb\":%.1f,\"tokens\":[",
           prec_name, threads, runs, sg_cpu_level_name(sg_cpu_level_get()), load_ms, mel_ms,
           enc30_ms, enc3_ms, tok_ms, steps, e2e_ms, utt_ms, vad_ms, utt_frames, utt_n,
           ru.ru_maxrss / 1024.0, rss_loaded / 1024.0);
    for (size_t i = 0; i < res.n; i++)
        printf("%s%d", i ? "," : "", res.tokens[i]);
    printf("],\"avg_logprob\":%.6f,\"no_speech_prob\":%.6f}\n", res.avg_logprob, res.no_speech_prob);
    sg_whisper_result_free(&res);
    sg_whisper_free(m);
    sg_pool_free(pool);
    sg_silero_free(vad);
    sg_audio_free(&clip);
    free(mel);
    free(t);
    return 0;
}
