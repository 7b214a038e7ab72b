/* sg-edge: the smartglass-edge server. Configuration comes from the environment (see README) and
 * these flags; SIGTERM/SIGINT stop it gracefully (stop accepting, finish in-flight requests,
 * exit 0). */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/actions.h"
#include "agent/asr_whisper.h"
#include "agent/backends.h"
#include "agent/cache.h"
#include "agent/llm_snn.h"
#include "agent/slow.h"
#include "agent/turn.h"
#include "agent/tts_flite.h"
#include "agent/vad_silero.h"
#include "agent/ocr_tesseract.h"
#include "agent/vision_clip.h"
#include "base/clock.h"
#include "base/log.h"
#include "nn/cpu.h"
#include "nn/pool.h"
#include "server/config.h"
#include "server/degrade.h"
#include "server/server.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sg-edge [options]\n"
            "  --host ADDR          IPv4 address to listen on (default 0.0.0.0)\n"
            "  --port N             port (default 5000; env SG_PORT or PORTS)\n"
            "  --http-threads N     HTTP thread pool size (env SG_HTTP_THREADS)\n"
            "  --workers N          model-work threads (env SG_WORKERS)\n"
            "  --queue-depth N      jobs that may wait for a worker (env SG_QUEUE_DEPTH)\n"
            "  --skills PATH        skills registry JSON (env SG_SKILLS_PATH)\n"
            "  --vision-model DIR   CLIP model directory, Hugging Face layout (env SG_VISION_MODEL)\n"
            "  --vision-precision P int8 (default) or f32 (env SG_VISION_PRECISION)\n"
            "  --llm-model DIR      SNN student directory: student.pt or model.safetensors +\n"
            "                       metadata.json (env SG_LLM_MODEL)\n"
            "  --llm-precision P    f32 (default, exact) or int8 (env SG_LLM_PRECISION)\n"
            "  --llm-tokenizer PATH GPT-2 tokenizer (*.tiktoken, vocab.json or a directory) when the\n"
            "                       model directory has none (env SG_LLM_TOKENIZER)\n"
            "                       (env SG_CACHE_ENTRIES: response cache size, default 256, 0 = off;\n"
            "                       SG_LLM_STOP_AT_EOS=1: end replies at <|endoftext|>)\n"
            "  --threads N          inference threads (env SG_THREADS; default: cores)\n"
            "  --vad-model PATH     Silero VAD v6.2 in whisper.cpp's ggml layout (env SG_VAD_MODEL)\n"
            "  --asr-model PATH     Whisper: Hugging Face directory or whisper.cpp ggml-*.bin\n"
            "                       (env SG_ASR_MODEL)\n"
            "  --asr-precision P    int8 (default) or f32 (env SG_ASR_PRECISION)\n"
            "  --ocr-lang L         Tesseract languages for OCR, e.g. eng+deu (env SG_OCR_LANG;\n"
            "                       default eng; off: no OCR)\n"
            "  --ocr-tessdata DIR   Tesseract's data directory (env SG_OCR_TESSDATA; default\n"
            "                       Debian's /usr/share/tesseract-ocr/5/tessdata)\n"
            "  --asr-fallback-model PATH  a smaller Whisper (e.g. tiny for base) that turns step\n"
            "                       down to when they would break the latency budget\n"
            "                       (env SG_ASR_FALLBACK_MODEL; budget: SG_LATENCY_BUDGET_MS,\n"
            "                       default 2000, 0 = never degrade)\n"
            "  --session-store URL  where sessions live: memory (default), redis://[:password@]host:port[/db]\n"
            "                       or unix:///path/redis.sock (env SG_SESSION_STORE)\n"
            "  --log-level LEVEL    debug|info|warn|error (env SG_LOG_LEVEL)\n"
            "  --version, --help\n"
            "Without --vision-model, vision uses pixel statistics; without --llm-model, answers come\n"
            "from the rule-based responder; every response says which models ran.\n"
            "Speech synthesis (flite): env SG_TTS=off disables it; SG_TTS_VOICE slt (default), kal,\n"
            "kal16, awb or rms; SG_TTS_RATE 0.5..2 (default 1).\n");
}

static int parse_int_arg(const char *name, const char *v, int lo, int hi, int *out)
{
    char *end;
    long x = strtol(v, &end, 10);
    if (*end || end == v || x < lo || x > hi) {
        fprintf(stderr, "sg-edge: %s must be a whole number in %d..%d\n", name, lo, hi);
        return -1;
    }
    *out = (int)x;
    return 0;
}

static int set_log_level(const char *v)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++) {
        if (strcmp(v, names[i]) == 0) {
            sg_log_set_level((sg_log_level)i);
            return 0;
        }
    }
    fprintf(stderr, "sg-edge: log level must be debug, info, warn or error\n");
    return -1;
}

/* A Whisper model as the turn's ASR backend, named "<size> <precision>"; NULL with err. */
static sg_asr_whisper *load_asr(const char *path, bool int8, sg_pool *pool, sg_error *err)
{
    sg_whisper *wm = sg_whisper_load(path, int8 ? SG_PREC_Q8 : SG_PREC_F32, pool, err);
    if (!wm)
        return NULL;
    char base[96], name[128];
    sg_speech_model_name(wm, path, base, sizeof base);
    snprintf(name, sizeof name, "%s %s", base, int8 ? "int8" : "f32");
    return sg_asr_whisper_new(wm, name, NULL, err);
}

int main(int argc, char **argv)
{
    sg_config cfg;
    sg_error err = {0};
    sg_config_defaults(&cfg);
    if (getenv("SG_LOG_LEVEL") && set_log_level(getenv("SG_LOG_LEVEL")) != 0)
        return 2;
    if (sg_config_from_env(&cfg, &err) != SG_OK) {
        fprintf(stderr, "sg-edge: configuration error: %s\n", err.msg);
        return 2;
    }
    static const struct option opts[] = {
        {"host", required_argument, 0, 'H'},         {"port", required_argument, 0, 'p'},
        {"http-threads", required_argument, 0, 't'}, {"workers", required_argument, 0, 'w'},
        {"queue-depth", required_argument, 0, 'q'},  {"skills", required_argument, 0, 's'},
        {"log-level", required_argument, 0, 'l'},    {"version", no_argument, 0, 'V'},
        {"vision-model", required_argument, 0, 'M'}, {"vision-precision", required_argument, 0, 'P'},
        {"threads", required_argument, 0, 'T'},      {"llm-model", required_argument, 0, 'L'},
        {"llm-precision", required_argument, 0, 'R'}, {"llm-tokenizer", required_argument, 0, 'K'},
        {"vad-model", required_argument, 0, 'D'},    {"asr-model", required_argument, 0, 'A'},
        {"asr-precision", required_argument, 0, 'B'}, {"session-store", required_argument, 0, 'S'},
        {"ocr-lang", required_argument, 0, 'O'},     {"ocr-tessdata", required_argument, 0, 'Y'},
        {"asr-fallback-model", required_argument, 0, 'F'},
        {"help", no_argument, 0, 'h'},               {0, 0, 0, 0}};
    const char *llm_model = getenv("SG_LLM_MODEL"), *llm_precision = getenv("SG_LLM_PRECISION");
    const char *llm_tokenizer = getenv("SG_LLM_TOKENIZER");
    const char *vad_model = getenv("SG_VAD_MODEL");
    const char *asr_model = getenv("SG_ASR_MODEL"), *asr_precision = getenv("SG_ASR_PRECISION");
    const char *ocr_lang = getenv("SG_OCR_LANG"), *ocr_tessdata = getenv("SG_OCR_TESSDATA");
    const char *asr_fallback_model = getenv("SG_ASR_FALLBACK_MODEL");
    int c;
    while ((c = getopt_long(argc, argv, "H:p:t:w:q:s:l:M:P:T:L:R:K:D:A:B:S:O:Y:F:Vh", opts, NULL)) != -1) {
        int rc = 0;
        switch (c) {
        case 'H':
            snprintf(cfg.host, sizeof cfg.host, "%s", optarg);
            break;
        case 'p': rc = parse_int_arg("--port", optarg, 0, 65535, &cfg.port); break;
        case 't': rc = parse_int_arg("--http-threads", optarg, 1, 256, &cfg.http_threads); break;
        case 'w': rc = parse_int_arg("--workers", optarg, 1, 256, &cfg.workers); break;
        case 'q': rc = parse_int_arg("--queue-depth", optarg, 0, 1000000, &cfg.queue_depth); break;
        case 's': cfg.skills_path = optarg; break;
        case 'M': cfg.vision_model = optarg; break;
        case 'P':
            if (strcmp(optarg, "int8") && strcmp(optarg, "f32")) {
                fprintf(stderr, "sg-edge: --vision-precision must be int8 or f32\n");
                return 2;
            }
            cfg.vision_int8 = strcmp(optarg, "int8") == 0;
            break;
        case 'T': rc = parse_int_arg("--threads", optarg, 1, 256, &cfg.threads); break;
        case 'L': llm_model = optarg; break;
        case 'D': vad_model = optarg; break;
        case 'A': asr_model = optarg; break;
        case 'B': asr_precision = optarg; break;
        case 'F': asr_fallback_model = optarg; break;
        case 'R': llm_precision = optarg; break;
        case 'O': ocr_lang = optarg; break;
        case 'Y': ocr_tessdata = optarg; break;
        case 'K': llm_tokenizer = optarg; break;
        case 'S':
            if (sg_store_url_parse(optarg, &cfg.store, &err) != SG_OK) {
                fprintf(stderr, "sg-edge: --session-store: %s\n", err.msg);
                return 2;
            }
            break;
        case 'l': rc = set_log_level(optarg); break;
        case 'V': printf("sg-edge %s\n", SG_VERSION); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
        if (rc)
            return 2;
    }
    if (optind < argc) {
        fprintf(stderr, "sg-edge: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (llm_model && !*llm_model)
        llm_model = NULL;
    if (vad_model && !*vad_model)
        vad_model = NULL;
    if (llm_tokenizer && !*llm_tokenizer)
        llm_tokenizer = NULL;
    if (llm_precision && *llm_precision && strcmp(llm_precision, "f32") && strcmp(llm_precision, "int8")) {
        fprintf(stderr, "sg-edge: --llm-precision (SG_LLM_PRECISION) must be f32 or int8\n");
        return 2;
    }
    const bool llm_int8 = llm_precision && strcmp(llm_precision, "int8") == 0;
    if (asr_model && !*asr_model)
        asr_model = NULL;
    if (asr_precision && *asr_precision && strcmp(asr_precision, "f32") && strcmp(asr_precision, "int8")) {
        fprintf(stderr, "sg-edge: --asr-precision (SG_ASR_PRECISION) must be int8 or f32\n");
        return 2;
    }
    const bool asr_int8 = !(asr_precision && strcmp(asr_precision, "f32") == 0);
    if (asr_fallback_model && !*asr_fallback_model)
        asr_fallback_model = NULL;
    if (asr_fallback_model && !asr_model) {
        fprintf(stderr, "sg-edge: --asr-fallback-model (SG_ASR_FALLBACK_MODEL) needs --asr-model: "
                "it stands in for that model when a turn would break the latency budget\n");
        return 2;
    }
    /* debug only (loadtest/degrade.sh with the tiny models): simulated model cost per stage */
    sg_model_delays delays = {0};
    const char *delay_spec = getenv("SG_DEBUG_MODEL_DELAY_MS");
    if (delay_spec && *delay_spec && sg_model_delays_parse(delay_spec, &delays, &err) != SG_OK) {
        fprintf(stderr, "sg-edge: SG_DEBUG_MODEL_DELAY_MS: %s\n", err.msg);
        return 2;
    }
    sg_slow_backends *slow = NULL;
    /* speech synthesis (flite, agent/tts_flite.h): on unless SG_TTS=off; voice and rate checked
     * here so a typo stops the server with the choices rather than speaking with a default */
    const char *tts_env = getenv("SG_TTS"), *tts_voice = getenv("SG_TTS_VOICE");
    const char *tts_rate_env = getenv("SG_TTS_RATE");
    const bool tts_on = !(tts_env && (strcmp(tts_env, "off") == 0 || strcmp(tts_env, "0") == 0));
    if (tts_env && *tts_env && tts_on && strcmp(tts_env, "on") && strcmp(tts_env, "1")) {
        fprintf(stderr, "sg-edge: SG_TTS must be on or off\n");
        return 2;
    }
    double tts_rate = 1.0;
    if (tts_rate_env && *tts_rate_env && sg_tts_rate_parse(tts_rate_env, &tts_rate, &err) != SG_OK) {
        fprintf(stderr, "sg-edge: SG_TTS_RATE: %s\n", err.msg);
        return 2;
    }
    const long cache_entries = sg_cache_entries_from_env();
    if (cache_entries < 0) {
        fprintf(stderr, "sg-edge: SG_CACHE_ENTRIES must be a whole number in 0..1000000\n");
        return 2;
    }

    /* Tesseract's OpenMP threads would fight the workers: one thread per engine, set before any
     * thread starts (setenv is not thread-safe) */
    sg_ocr_tesseract_thread_env();
    /* Block the stop signals before any thread starts, so only sigwait below sees them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    sg_backends backends = {0};
    backends.skills = cfg.skills_path ? sg_skills_load(cfg.skills_path, &err) : sg_skills_load_default(&err);
    if (!backends.skills) {
        fprintf(stderr, "sg-edge: skills registry: %s\n", err.msg);
        return 2;
    }
    /* OCR starts before the server listens: its first engine takes ~0.1-0.3 s, and a server with
     * no model to load is ready as soon as it answers (nothing for /ready to wait for) */
    sg_ocr_tesseract *ocr = NULL;
    if (ocr_lang && strcmp(ocr_lang, "off") == 0) {
        sg_log(SG_LOG_INFO, "ocr: off (SG_OCR_LANG=off); the read intent says text cannot be read");
    } else {
        double t0 = sg_now_ms();
        sg_ocr_tesseract_options oo = {ocr_lang, ocr_tessdata, cfg.workers};
        ocr = sg_ocr_tesseract_open(&oo, &err);
        if (ocr) {
            backends.ocr = sg_ocr_tesseract_backend(ocr);
            sg_log(SG_LOG_INFO, "ocr: %s loaded in %.0f ms (up to %d engines); keyframes with "
                   "text-like areas are read", backends.ocr->name, sg_now_ms() - t0, cfg.workers);
        } else {
            /* OCR is an extra, not a reason to stop: say so and serve without it */
            sg_log(SG_LOG_WARN, "ocr: unavailable: %s", err.msg);
            err = (sg_error){0};
        }
    }
    sg_server *srv = sg_server_new(&cfg, &backends, &err);
    if (!srv || sg_server_start(srv, &err) != SG_OK) {
        fprintf(stderr, "sg-edge: %s\n", err.msg);
        sg_server_free(srv);
        sg_ocr_tesseract_free(ocr);
        sg_skills_free(backends.skills);
        return 1;
    }
    sg_log(SG_LOG_INFO, "sg-edge %s listening on http://%s:%d (%d http threads, %d workers, queue %d)",
           SG_VERSION, cfg.host, sg_server_port(srv), cfg.http_threads, cfg.workers, cfg.queue_depth);
    if (cfg.api_key[0])
        sg_log(SG_LOG_INFO, "auth: on (header %s or Authorization: Bearer)", cfg.auth_header);

    /* Models load while the server already answers /health and /ready ("loading"); one that
     * cannot load stops the server (exit 2) through the shared clean-up at the end. */
    int rc = 2;
    /* every named model is "configured" from now on and "loaded" once it serves: a load that
     * hangs shows as configured 1, loaded 0 (an alert in deploy/prometheus/alerts.yml) */
    sg_metrics *metrics = sg_server_metrics(srv);
    sg_metrics_model(metrics, SG_MODEL_VISION, cfg.vision_model != NULL, false);
    sg_metrics_model(metrics, SG_MODEL_LLM, llm_model != NULL, false);
    sg_metrics_model(metrics, SG_MODEL_VAD, vad_model != NULL, false);
    sg_metrics_model(metrics, SG_MODEL_ASR, asr_model != NULL, false);
    sg_metrics_model(metrics, SG_MODEL_ASR_FALLBACK, asr_fallback_model != NULL, false);
    sg_pool *pool = NULL;
    sg_clip_vision *vision = NULL;
    sg_llm_snn *llm = NULL;
    sg_cache *cache = NULL;
    sg_vad_silero *vad = NULL;
    sg_asr_whisper *asr = NULL, *asr_fallback = NULL;
    sg_tts_flite *tts = NULL;
    if (tts_on) {
        double t0 = sg_now_ms();
        tts = sg_tts_flite_open(tts_voice, tts_rate, &err);
        if (!tts) {
            sg_log(SG_LOG_ERROR, "cannot start speech synthesis (SG_TTS_VOICE, SG_TTS_RATE): %s",
                   err.msg);
            goto done;
        }
        backends.tts = sg_tts_flite_backend(tts);
        sg_log(SG_LOG_INFO, "tts: %s (%d Hz, rate %.2f) ready in %.0f ms; \"speak\": true adds "
               "the answer's audio", backends.tts->name, backends.tts->sample_rate, tts_rate,
               sg_now_ms() - t0);
    } else {
        sg_log(SG_LOG_INFO, "tts: off (SG_TTS=off); \"speak\": true is answered without audio");
    }
    if (cfg.vision_model) {
        double t0 = sg_now_ms();
        pool = sg_pool_new(cfg.threads);
        sg_precision prec = cfg.vision_int8 ? SG_PREC_Q8 : SG_PREC_F32;
        sg_clip *clip = pool ? sg_clip_load(cfg.vision_model, prec, pool, &err) : NULL;
        if (clip) {
            char name[160];
            const char *base = strrchr(cfg.vision_model, '/');
            base = base && base[1] ? base + 1 : cfg.vision_model;
            snprintf(name, sizeof name, "%s %s", base, cfg.vision_int8 ? "int8" : "f32");
            vision = sg_clip_vision_new(clip, name, &err);
        }
        if (!vision) {
            sg_log(SG_LOG_ERROR, "cannot load the vision model %s: %s", cfg.vision_model,
                   err.msg[0] ? err.msg : "out of memory");
            goto done;
        }
        backends.vision = sg_clip_vision_backend(vision);
        sg_metrics_model(metrics, SG_MODEL_VISION, true, true);
        const sg_clip_info *ci = sg_clip_get_info(sg_clip_vision_model(vision));
        sg_log(SG_LOG_INFO, "vision: %s (%d layers, width %d, %.1f MB of weights, %d threads, "
               "kernels %s) loaded in %.0f ms", backends.vision->name, ci->vision_layers,
               ci->vision_width, (double)ci->weight_bytes / 1e6, sg_pool_size(pool),
               sg_cpu_level_name(sg_cpu_level_get()), sg_now_ms() - t0);
    } else {
        sg_log(SG_LOG_INFO, "vision: no model (--vision-model); using pixel statistics");
    }
    if (llm_model) {
        double t0 = sg_now_ms();
        if (!pool)
            pool = sg_pool_new(cfg.threads);
        sg_snn_options o = {llm_int8 ? SG_PREC_Q8 : SG_PREC_F32, llm_tokenizer};
        sg_snn *snn = pool ? sg_snn_load(llm_model, &o, pool, &err) : NULL;
        if (snn) {
            char name[160];
            const char *base = strrchr(llm_model, '/');
            base = base && base[1] ? base + 1 : llm_model;
            snprintf(name, sizeof name, "%s %s", base, llm_int8 ? "int8" : "f32");
            const char *eos = getenv("SG_LLM_STOP_AT_EOS");
            llm = sg_llm_snn_new(snn, name, eos && strcmp(eos, "1") == 0, &err);
        }
        cache = llm ? sg_cache_new((size_t)cache_entries) : NULL;
        if (!llm || !cache) {
            sg_log(SG_LOG_ERROR, "cannot load the language model %s: %s", llm_model,
                   err.msg[0] ? err.msg : "out of memory");
            goto done;
        }
        backends.cache = cache;
        backends.llm = sg_llm_snn_backend(llm);
        sg_metrics_model(metrics, SG_MODEL_LLM, true, true);
        const sg_snn_info *li = sg_snn_get_info(sg_llm_snn_model(llm));
        sg_log(SG_LOG_INFO, "language: %s (SNN student, vocabulary %d, width %d, %d blocks, %s, "
               "%.1f MB of weights, cache %ld entries) loaded in %.0f ms", backends.llm->name,
               li->vocab, li->dim, li->depth, li->weights, (double)li->weight_bytes / 1e6,
               cache_entries, sg_now_ms() - t0);
    } else {
        sg_log(SG_LOG_INFO, "language: no model (--llm-model); using the rule-based responder");
    }
    if (vad_model) {
        double t0 = sg_now_ms();
        vad = sg_vad_silero_open(vad_model, NULL, &err);
        if (!vad) {
            sg_log(SG_LOG_ERROR, "cannot load the VAD model %s: %s", vad_model,
                   err.msg[0] ? err.msg : "out of memory");
            goto done;
        }
        backends.vad = sg_vad_silero_backend(vad);
        sg_metrics_model(metrics, SG_MODEL_VAD, true, true);
        sg_log(SG_LOG_INFO, "vad: %s loaded in %.0f ms; audio without speech is answered "
               "\"speech\": false", backends.vad->name, sg_now_ms() - t0);
    }
    if (asr_model) {
        double t0 = sg_now_ms();
        if (!pool)
            pool = sg_pool_new(cfg.threads);
        asr = pool ? load_asr(asr_model, asr_int8, pool, &err) : NULL;
        if (!asr) {
            sg_log(SG_LOG_ERROR, "cannot load the speech model %s: %s", asr_model,
                   err.msg[0] ? err.msg : "out of memory");
            goto done;
        }
        backends.asr = sg_asr_whisper_backend(asr);
        sg_metrics_model(metrics, SG_MODEL_ASR, true, true);
        const sg_whisper_info *wi = sg_whisper_get_info(sg_asr_whisper_model(asr));
        sg_log(SG_LOG_INFO, "speech: %s (%s, %d+%d layers, width %d, %.1f MB of weights) loaded in "
               "%.0f ms%s", backends.asr->name, wi->format ? wi->format : "hf", wi->enc_layers,
               wi->dec_layers, wi->d_model, (double)wi->weight_bytes / 1e6, sg_now_ms() - t0,
               backends.vad ? "" : "; no --vad-model: all audio is transcribed, silence included");
    } else {
        sg_log(SG_LOG_INFO, "speech: no ASR model (--asr-model); audio with speech is answered 503 "
               "MODEL_UNAVAILABLE");
    }
    if (asr_fallback_model) {
        double t0 = sg_now_ms();
        asr_fallback = load_asr(asr_fallback_model, asr_int8, pool, &err);
        if (!asr_fallback) {
            sg_log(SG_LOG_ERROR, "cannot load the fallback speech model %s: %s", asr_fallback_model,
                   err.msg[0] ? err.msg : "out of memory");
            goto done;
        }
        backends.asr_fallback = sg_asr_whisper_backend(asr_fallback);
        /* one untimed transcription of a second of silence: the first turn that steps down to the
         * fallback is measured warm (a cold first call, measured slower than the model, would
         * keep turns from ever stepping down to it again) */
        static const float silence[SG_AUDIO_RATE];
        char *warm = NULL;
        if (backends.asr_fallback->transcribe(backends.asr_fallback->self, silence, SG_AUDIO_RATE,
                                              NULL, &warm, &err) != SG_OK)
            sg_log(SG_LOG_WARN, "the fallback speech model's warm-up failed: %s", err.msg);
        free(warm);
        sg_metrics_model(metrics, SG_MODEL_ASR_FALLBACK, true, true);
        /* until the fallback has been measured, its time is guessed from the weights' sizes; a
         * fallback no smaller than the model is never stepped down to (never slower) */
        const sg_whisper_info *full = sg_whisper_get_info(sg_asr_whisper_model(asr));
        const sg_whisper_info *fb = sg_whisper_get_info(sg_asr_whisper_model(asr_fallback));
        double ratio = full->weight_bytes ? (double)fb->weight_bytes / (double)full->weight_bytes : 1;
        sg_degrade_set_step(sg_server_degrade(srv), SG_DEG_ASR, 1, true, ratio);
        sg_log(SG_LOG_INFO, "speech fallback: %s (%.1f MB of weights, %.2f of the model's) loaded in "
               "%.0f ms; turns step down to it beyond SG_LATENCY_BUDGET_MS=%d", backends.asr_fallback->name,
               (double)fb->weight_bytes / 1e6, ratio, sg_now_ms() - t0, cfg.latency_budget_ms);
        if (ratio >= 1)
            sg_log(SG_LOG_WARN, "the fallback speech model is not smaller than --asr-model: turns "
                   "never step down to it (it would not be faster)");
    }
    if (delay_spec && *delay_spec) {
        if (!(slow = sg_slow_wrap(&backends, &delays)))
            goto done;
        sg_log(SG_LOG_WARN, "SG_DEBUG_MODEL_DELAY_MS=%s: every model call sleeps first (simulated "
               "model cost, for load figures only)", delay_spec);
    }
    sg_server_set_ready(srv, true);

    int sig = 0;
    sigwait(&stop, &sig);
    sg_log(SG_LOG_INFO, "received %s: stopping (finishing in-flight requests)",
           sig == SIGTERM ? "SIGTERM" : "SIGINT");
    rc = 0;
done:
    sg_server_stop(srv, rc == 0 ? 30.0 : 5.0);
    sg_server_free(srv);
    sg_slow_free(slow);
    sg_cache_free(cache);
    sg_llm_snn_free(llm);
    sg_clip_vision_free(vision);
    sg_vad_silero_free(vad);
    sg_asr_whisper_free(asr);
    sg_asr_whisper_free(asr_fallback);
    sg_tts_flite_free(tts);
    sg_ocr_tesseract_free(ocr);
    sg_pool_free(pool);
    sg_skills_free(backends.skills);
    if (rc == 0)
        sg_log(SG_LOG_INFO, "stopped");
    return rc;
}
