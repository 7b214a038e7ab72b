/* libsgclient's on-device language model (sg_local_llm_*, client/local_llm.c): on the tiny SNN
 * fixture, f32 (student.pt, model.safetensors) and the int8 directory sg_snn_quantize writes (as
 * `sg quantize`), its text, pieces and tokens equal sg_snn_generate's; a cancel from another thread
 * stops a long generation (synchronised by a condition variable, never by time); bad directories
 * and arguments give an error status with a message. Last, the int8 model is loaded and run in a
 * fresh process (this program re-executed with --measure) which prints the file size and its peak
 * RSS (figures only: nothing is gated on them). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "models/snn.h"
#include "sgclient.h"
#include "sgtest_proc.h"

#define PT_DIR "tests/fixtures/snn_tiny"
#define ST_DIR "tests/fixtures/snn_tiny_st"
#define MAX_TOKENS 24

typedef struct pieces {
    char buf[8192];
    size_t len;
    int calls;
} pieces;

static bool collect(void *ud, const char *piece, size_t len)
{
    pieces *p = ud;
    if (p->len + len < sizeof p->buf) {
        memcpy(p->buf + p->len, piece, len);
        p->len += len;
        p->buf[p->len] = '\0';
    }
    p->calls++;
    return true;
}

/* The reference: sg_snn_generate on the same directory at the same precision. */
static void check_same(const char *dir, sg_precision prec, int lprec, const char *system,
                       const char *prompt)
{
    sg_error e = {0};
    sg_snn_options so = {.precision = prec};
    sg_snn *m = sg_snn_load(dir, &so, NULL, &e);
    CHECK_MSG(m != NULL, "%s: %s", dir, e.msg);
    if (!m)
        return;
    sg_snn_result ref = {0};
    CHECK_MSG(sg_snn_generate(m, system, prompt, MAX_TOKENS, false, &ref, &e) == SG_OK, "%s", e.msg);

    sg_local_llm_options o;
    sg_local_llm_options_default(&o);
    o.precision = lprec;
    o.threads = 2;
    sg_local_llm *h = NULL;
    char err[SG_CLIENT_ERROR_SIZE] = "";
    CHECK_MSG(sg_local_llm_open(dir, &o, &h, err) == SG_CLIENT_OK, "%s: %s", dir, err);
    if (h) {
        sg_local_llm_info info;
        sg_local_llm_get_info(h, &info);
        CHECK(info.int8 == (prec == SG_PREC_Q8) && info.vocab == 3584 && info.dim == 32);
        pieces p = {.len = 0};
        char *text = NULL;
        sg_client_status st = sg_local_llm_generate(h, system, prompt, MAX_TOKENS, collect, &p,
                                                    &text, err);
        CHECK_MSG(st == SG_CLIENT_OK, "%s: %s", sg_client_status_name(st), err);
        CHECK_MSG(text && ref.text && strcmp(text, ref.text) == 0, "%s: '%s' vs '%s'", dir,
                  text ? text : "(null)", ref.text ? ref.text : "(null)");
        CHECK(ref.text && strcmp(p.buf, ref.text) == 0 && p.calls > 0);
        int32_t ids[MAX_TOKENS];
        CHECK_EQ_INT(sg_local_llm_last_tokens(h, NULL, 0), ref.n_tokens);
        CHECK_EQ_INT(sg_local_llm_last_tokens(h, ids, MAX_TOKENS), MAX_TOKENS);
        CHECK(ref.n_tokens == MAX_TOKENS && memcmp(ids, ref.tokens, sizeof ids) == 0);
        printf("%s %s: %d tokens, '%.40s...'\n", dir, info.int8 ? "int8" : "f32", ref.n_tokens,
               text ? text : "");
        free(text);
        sg_local_llm_close(h);
    }
    sg_snn_result_free(&ref);
    sg_snn_free(m);
}

/* ---- cancel from another thread ---- */
typedef struct cancel_ctx {
    sg_local_llm *h;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int tokens;       /* pieces heard */
    bool cancelled;   /* the other thread has called sg_local_llm_cancel */
} cancel_ctx;

static bool on_piece_wait(void *ud, const char *piece, size_t len)
{
    (void)piece, (void)len;
    cancel_ctx *c = ud;
    pthread_mutex_lock(&c->mu);
    if (++c->tokens == 3) {
        pthread_cond_broadcast(&c->cv);
        while (!c->cancelled) /* hold generation until the cancel has been made */
            pthread_cond_wait(&c->cv, &c->mu);
    }
    pthread_mutex_unlock(&c->mu);
    return true;
}

static void *canceller(void *arg)
{
    cancel_ctx *c = arg;
    pthread_mutex_lock(&c->mu);
    while (c->tokens < 3)
        pthread_cond_wait(&c->cv, &c->mu);
    sg_local_llm_cancel(c->h);
    c->cancelled = true;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

static void test_cancel(const char *dir)
{
    sg_local_llm *h = NULL;
    char err[SG_CLIENT_ERROR_SIZE] = "";
    CHECK_MSG(sg_local_llm_open(dir, NULL, &h, err) == SG_CLIENT_OK, "%s", err);
    if (!h)
        return;
    cancel_ctx c = {.h = h};
    pthread_mutex_init(&c.mu, NULL);
    pthread_cond_init(&c.cv, NULL);
    pthread_t th;
    CHECK(pthread_create(&th, NULL, canceller, &c) == 0);
    char *text = NULL;
    sg_client_status st = sg_local_llm_generate(h, NULL, "The glasses see a", 1000, on_piece_wait,
                                                &c, &text, err);
    pthread_join(th, NULL);
    CHECK_MSG(st == SG_CLIENT_CANCELLED, "%s: %s", sg_client_status_name(st), err);
    int n = sg_local_llm_last_tokens(h, NULL, 0);
    CHECK_MSG(n >= 3 && n < 10, "%d tokens after the cancel", n);
    CHECK(text != NULL && strstr(err, "cancel") != NULL);
    printf("cancelled after %d of 1000 tokens: '%s'\n", n, text ? text : "");
    free(text);
    /* the next generation is not affected by the old cancel */
    CHECK(sg_local_llm_generate(h, NULL, "hello", 4, NULL, NULL, NULL, err) == SG_CLIENT_OK);
    CHECK_EQ_INT(sg_local_llm_last_tokens(h, NULL, 0), 4);
    /* a callback that says stop: ABANDONED */
    sg_local_llm_cancel(NULL); /* a no-op */
    sg_local_llm_close(h);
    pthread_mutex_destroy(&c.mu);
    pthread_cond_destroy(&c.cv);
}

static bool stop_now(void *ud, const char *piece, size_t len)
{
    (void)ud, (void)piece, (void)len;
    return false;
}

static void test_errors(void)
{
    sg_local_llm *h = (sg_local_llm *)&h;
    char err[SG_CLIENT_ERROR_SIZE] = "";
    CHECK(sg_local_llm_open("tests/fixtures/no_such_model", NULL, &h, err) == SG_CLIENT_EFORMAT);
    CHECK_MSG(h == NULL && strstr(err, "no_such_model") != NULL, "%s", err);
    err[0] = '\0';
    CHECK(sg_local_llm_open("tests/fixtures", NULL, &h, err) == SG_CLIENT_EFORMAT && err[0]);
    printf("a directory without a model: %s\n", err);
    CHECK(sg_local_llm_open(NULL, NULL, &h, err) == SG_CLIENT_EINVAL && err[0]);
    CHECK(sg_local_llm_open(PT_DIR, NULL, &h, NULL) == SG_CLIENT_OK); /* err may be NULL */
    sg_local_llm_options o;
    sg_local_llm_options_default(&o);
    o.precision = 7;
    sg_local_llm *h2 = NULL;
    CHECK(sg_local_llm_open(PT_DIR, &o, &h2, err) == SG_CLIENT_EINVAL && h2 == NULL);
    if (h) {
        char *text = (char *)"x";
        CHECK(sg_local_llm_generate(h, NULL, "hi", 0, NULL, NULL, &text, err) == SG_CLIENT_EINVAL);
        CHECK(text == NULL && strstr(err, "max_tokens"));
        CHECK(sg_local_llm_generate(h, NULL, NULL, 4, NULL, NULL, NULL, err) == SG_CLIENT_EINVAL);
        CHECK(sg_local_llm_generate(h, NULL, "hi", 8, stop_now, NULL, &text, err) ==
              SG_CLIENT_ABANDONED);
        CHECK(text != NULL && sg_local_llm_last_tokens(h, NULL, 0) < 8);
        free(text);
    }
    sg_local_llm_close(h);
    sg_local_llm_close(NULL);
    CHECK(strcmp(sg_client_status_name(SG_CLIENT_CANCELLED), "cancelled") == 0);
}

/* sg_offline_answer: rules without a model or for the time; the model for a scene question. */
static void test_offline(const char *dir)
{
    char *text = NULL, err[SG_CLIENT_ERROR_SIZE] = "";
    sg_offline_source src = SG_OFFLINE_LOCAL_LLM;
    const char *scene = "A desk with a laptop and a red mug.";
    CHECK(sg_offline_answer(NULL, scene, "What am I looking at?", 16, NULL, NULL, &text, &src, err) ==
          SG_CLIENT_OK);
    CHECK_MSG(src == SG_OFFLINE_RULES && text && strstr(text, "laptop"), "%s", text ? text : "");
    printf("offline, rules: %s\n", text ? text : "");
    free(text);
    sg_local_llm *h = NULL;
    CHECK(sg_local_llm_open(dir, NULL, &h, err) == SG_CLIENT_OK);
    pieces p = {.len = 0};
    CHECK(sg_offline_answer(h, scene, "What am I looking at?", 16, collect, &p, &text, &src, err) ==
          SG_CLIENT_OK);
    CHECK(src == SG_OFFLINE_LOCAL_LLM && text && *text && strcmp(text, p.buf) == 0);
    CHECK_EQ_INT(sg_local_llm_last_tokens(h, NULL, 0), 16);
    printf("offline, local-llm: %s\n", text ? text : "");
    free(text);
    CHECK(sg_offline_answer(h, NULL, "What time is it?", 16, NULL, NULL, &text, &src, err) ==
          SG_CLIENT_OK);
    CHECK(src == SG_OFFLINE_RULES && text && *text);
    free(text);
    CHECK(sg_offline_answer(h, NULL, NULL, 16, NULL, NULL, &text, &src, err) == SG_CLIENT_EINVAL);
    CHECK(strcmp(sg_offline_source_name(SG_OFFLINE_LOCAL_LLM), "local-llm") == 0);
    sg_local_llm_close(h);
}

/* --measure DIR: load the int8 model, generate 64 tokens, print the figures. */
static long status_kb(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t kl = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, key, kl) == 0 && line[kl] == ':')
            v = strtol(line + kl + 1, NULL, 10);
    if (f)
        fclose(f);
    return v;
}

static int measure(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    struct stat sb;
    long long fsize = stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
    long base = status_kb("VmHWM");
    sg_local_llm *h = NULL;
    char err[SG_CLIENT_ERROR_SIZE] = "";
    if (sg_local_llm_open(dir, NULL, &h, err) != SG_CLIENT_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    long loaded = status_kb("VmRSS");
    char *text = NULL;
    sg_client_status st = sg_local_llm_generate(h, NULL, "What am I looking at?", 64, NULL, NULL,
                                                &text, err);
    sg_local_llm_info info;
    sg_local_llm_get_info(h, &info);
    printf("measure %s: model.safetensors %lld bytes (%s, weights held %llu bytes); peak RSS %ld kB "
           "before loading, %ld kB loaded, %ld kB peak after generating 64 tokens (%s)\n",
           dir, fsize, info.int8 ? "int8" : "f32", info.weight_bytes, base, loaded,
           status_kb("VmHWM"), sg_client_status_name(st));
    free(text);
    sg_local_llm_close(h);
    return st == SG_CLIENT_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--measure") == 0)
        return measure(argv[2]);
    char tmp_root[] = "/tmp/sg-test-local-llm-XXXXXX", qdir[64];
    CHECK(mkdtemp(tmp_root) != NULL);
    snprintf(qdir, sizeof qdir, "%s/q8", tmp_root);
    sg_error e = {0};
    CHECK_MSG(sg_snn_quantize(PT_DIR, qdir, &e) == SG_OK, "%s", e.msg);

    check_same(PT_DIR, SG_PREC_F32, SG_LOCAL_LLM_AUTO, NULL, "The glasses see a");
    check_same(ST_DIR, SG_PREC_F32, SG_LOCAL_LLM_F32, "You are a helpful assistant.", "hello");
    check_same(PT_DIR, SG_PREC_Q8, SG_LOCAL_LLM_INT8, NULL, "The glasses see a"); /* on the fly */
    check_same(qdir, SG_PREC_Q8, SG_LOCAL_LLM_AUTO, NULL, "The glasses see a");    /* the file */
    check_same(qdir, SG_PREC_Q8, SG_LOCAL_LLM_AUTO, "Answer briefly.", "What am I looking at?");
    test_cancel(qdir);
    test_errors();
    test_offline(qdir);

    /* the figures, from a process that holds nothing else (under an emulator its RSS is the
       emulator's too) */
    char *args[] = {(char *)"--measure", qdir, NULL};
    CHECK(sgt_run_self(args) == 0);

    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp_root);
    CHECK(system(cmd) == 0);
    return check_report("test_client_local_llm");
}
