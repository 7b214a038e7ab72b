/* The JNI layer of libsgclient (issue 16): the Java classes in ../java/com/smartglass/edge
 * (LocalSnnEngine, FrameRateController, UploadClient) over the C API of sgclient.h. Handles are
 * the C pointers in a Java long; every failure becomes a com.smartglass.edge.SgClientException
 * (status number, status name, message) thrown on return; text crosses as UTF-8 byte arrays
 * (decoded in Java, so characters outside the BMP survive). Builds against any jni.h: Debian's
 * OpenJDK here, the NDK's for Android. Never prints, exits or aborts. */
#include <jni.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sgclient.h"

#define PKG "com/smartglass/edge/"

static void throw_status(JNIEnv *env, sg_client_status st, const char *msg)
{
    if ((*env)->ExceptionCheck(env))
        return; /* one already pending (e.g. from a listener) */
    jclass cls = (*env)->FindClass(env, PKG "SgClientException");
    if (!cls)
        return;
    jmethodID ctor = (*env)->GetMethodID(env, cls, "<init>", "(ILjava/lang/String;Ljava/lang/String;)V");
    jstring name = (*env)->NewStringUTF(env, sg_client_status_name(st));
    jstring m = (*env)->NewStringUTF(env, msg && *msg ? msg : sg_client_strerror(st));
    if (ctor && name && m) {
        jobject ex = (*env)->NewObject(env, cls, ctor, (jint)st, name, m);
        if (ex)
            (*env)->Throw(env, (jthrowable)ex);
    }
}

/* A Java String as malloc'ed UTF-8 (NULL for null; *ok false when out of memory). Modified UTF-8
 * from GetStringUTFChars differs only for NUL and supplementary characters; the Java side hands
 * text over as byte[] where that matters (utf8_bytes). */
static char *utf8_bytes(JNIEnv *env, jbyteArray a, bool *ok)
{
    *ok = true;
    if (!a)
        return NULL;
    jsize n = (*env)->GetArrayLength(env, a);
    char *s = malloc((size_t)n + 1);
    if (!s) {
        *ok = false;
        return NULL;
    }
    (*env)->GetByteArrayRegion(env, a, 0, n, (jbyte *)s);
    s[n] = '\0';
    return s;
}

static jbyteArray to_bytes(JNIEnv *env, const char *s, size_t n)
{
    jbyteArray a = (*env)->NewByteArray(env, (jsize)n);
    if (a && n)
        (*env)->SetByteArrayRegion(env, a, 0, (jsize)n, (const jbyte *)s);
    return a;
}

/* ==== LocalSnnEngine ============================================================================ */

JNIEXPORT jlong JNICALL Java_com_smartglass_edge_LocalSnnEngine_nativeOpen(JNIEnv *env, jclass cls,
                                                                           jbyteArray dir,
                                                                           jint precision,
                                                                           jint threads)
{
    (void)cls;
    bool ok;
    char *d = utf8_bytes(env, dir, &ok);
    char err[SG_CLIENT_ERROR_SIZE] = "";
    sg_local_llm_options o;
    sg_local_llm_options_default(&o);
    o.precision = precision;
    o.threads = threads;
    sg_local_llm *h = NULL;
    sg_client_status st = ok ? sg_local_llm_open(d, &o, &h, err) : SG_CLIENT_ENOMEM;
    free(d);
    if (st != SG_CLIENT_OK)
        throw_status(env, st, err);
    return (jlong)(intptr_t)h;
}

typedef struct listener {
    JNIEnv *env;
    jclass cls;      /* LocalSnnEngine: its static deliver(listener, bytes) decodes and calls */
    jobject l;       /* the TokenListener, or NULL */
    jmethodID deliver;
} listener;

static bool on_token(void *ud, const char *piece, size_t len)
{
    listener *L = ud;
    JNIEnv *env = L->env;
    jbyteArray b = to_bytes(env, piece, len);
    if (!b)
        return false;
    jboolean go = (*env)->CallStaticBooleanMethod(env, L->cls, L->deliver, L->l, b);
    (*env)->DeleteLocalRef(env, b);
    return !(*env)->ExceptionCheck(env) && go;
}

/* Returns the text as UTF-8 bytes; status[0] gets the sg_client_status (OK, CANCELLED,
 * ABANDONED); other failures throw. */
static jbyteArray generate(JNIEnv *env, sg_local_llm *h, sg_local_llm *llm_or_null,
                           bool offline, jbyteArray scene_or_system, jbyteArray prompt,
                           jint max_tokens, jobject l, jintArray status)
{
    bool ok1, ok2;
    char *sys = utf8_bytes(env, scene_or_system, &ok1);
    char *p = utf8_bytes(env, prompt, &ok2);
    char err[SG_CLIENT_ERROR_SIZE] = "", *text = NULL;
    listener L = {env, (*env)->FindClass(env, PKG "LocalSnnEngine"), l, NULL};
    if (L.cls)
        L.deliver = (*env)->GetStaticMethodID(env, L.cls, "deliver",
                                              "(L" PKG "LocalSnnEngine$TokenListener;[B)Z");
    if (!L.deliver) {
        free(sys);
        free(p);
        return NULL; /* NoSuchMethodError pending */
    }
    sg_client_status st;
    jint source = 0;
    if (!ok1 || !ok2) {
        st = SG_CLIENT_ENOMEM;
    } else if (offline) {
        sg_offline_source src = SG_OFFLINE_RULES;
        st = sg_offline_answer(llm_or_null, sys, p, max_tokens, l ? on_token : NULL, &L, &text,
                               &src, err);
        source = (jint)src;
    } else {
        st = sg_local_llm_generate(h, sys, p, max_tokens, l ? on_token : NULL, &L, &text, err);
    }
    free(sys);
    free(p);
    jbyteArray out = NULL;
    if (st == SG_CLIENT_OK || st == SG_CLIENT_CANCELLED || st == SG_CLIENT_ABANDONED) {
        jint v[2] = {(jint)st, source};
        if (status && (*env)->GetArrayLength(env, status) >= 2)
            (*env)->SetIntArrayRegion(env, status, 0, 2, v);
        if (!(*env)->ExceptionCheck(env))
            out = to_bytes(env, text ? text : "", text ? strlen(text) : 0);
    } else {
        throw_status(env, st, err);
    }
    free(text);
    return out;
}

JNIEXPORT jbyteArray JNICALL Java_com_smartglass_edge_LocalSnnEngine_nativeGenerate(
    JNIEnv *env, jobject self, jlong h, jbyteArray system, jbyteArray prompt, jint max_tokens,
    jobject l, jintArray status)
{
    (void)self;
    return generate(env, (sg_local_llm *)(intptr_t)h, NULL, false, system, prompt, max_tokens,
                    l, status);
}

JNIEXPORT jbyteArray JNICALL Java_com_smartglass_edge_LocalSnnEngine_nativeOfflineAnswer(
    JNIEnv *env, jclass cls, jlong h, jbyteArray scene, jbyteArray question, jint max_tokens,
    jobject l, jintArray status)
{
    (void)cls;
    return generate(env, NULL, (sg_local_llm *)(intptr_t)h, true, scene, question, max_tokens,
                    l, status);
}

JNIEXPORT jintArray JNICALL Java_com_smartglass_edge_LocalSnnEngine_nativeLastTokens(JNIEnv *env,
                                                                                    jclass cls,
                                                                                    jlong h)
{
    (void)cls;
    sg_local_llm *m = (sg_local_llm *)(intptr_t)h;
    int n = sg_local_llm_last_tokens(m, NULL, 0);
    jintArray a = (*env)->NewIntArray(env, n);
    if (!a || n == 0)
        return a;
    int32_t *ids = malloc((size_t)n * sizeof *ids);
    if (!ids) {
        throw_status(env, SG_CLIENT_ENOMEM, "out of memory");
        return NULL;
    }
    n = sg_local_llm_last_tokens(m, ids, n);
    (*env)->SetIntArrayRegion(env, a, 0, n, (const jint *)ids);
    free(ids);
    return a;
}

JNIEXPORT jintArray JNICALL Java_com_smartglass_edge_LocalSnnEngine_nativeInfo(JNIEnv *env,
                                                                              jclass cls, jlong h)
{
    (void)cls;
    sg_local_llm_info in;
    sg_local_llm_get_info((sg_local_llm *)(intptr_t)h, &in);
    jint v[6] = {in.vocab, in.dim, in.depth, in.heads, in.int8, in.prequantized};
    jintArray a = (*env)->NewIntArray(env, 6);
    if (a)
        (*env)->SetIntArrayRegion(env, a, 0, 6, v);
    return a;
}

JNIEXPORT void JNICALL Java_com_smartglass_edge_LocalSnnEngine_nativeCancel(JNIEnv *env, jclass cls,
                                                                            jlong h)
{
    (void)env, (void)cls;
    sg_local_llm_cancel((sg_local_llm *)(intptr_t)h);
}

JNIEXPORT void JNICALL Java_com_smartglass_edge_LocalSnnEngine_nativeClose(JNIEnv *env, jclass cls,
                                                                           jlong h)
{
    (void)env, (void)cls;
    sg_local_llm_close((sg_local_llm *)(intptr_t)h);
}

JNIEXPORT jstring JNICALL Java_com_smartglass_edge_LocalSnnEngine_nativeVersion(JNIEnv *env,
                                                                               jclass cls)
{
    (void)cls;
    return (*env)->NewStringUTF(env, sg_client_version());
}

/* ==== FrameRateController ======================================================================= */

JNIEXPORT jlong JNICALL Java_com_smartglass_edge_FrameRateController_nativeNew(JNIEnv *env,
                                                                              jclass cls)
{
    (void)cls;
    sg_rate_controller *rc = NULL;
    sg_client_status st = sg_rate_controller_new(NULL, &rc);
    if (st != SG_CLIENT_OK)
        throw_status(env, st, "cannot make the frame-rate controller");
    return (jlong)(intptr_t)rc;
}

JNIEXPORT void JNICALL Java_com_smartglass_edge_FrameRateController_nativeFree(JNIEnv *env,
                                                                              jclass cls, jlong h)
{
    (void)env, (void)cls;
    sg_rate_controller_free((sg_rate_controller *)(intptr_t)h);
}

JNIEXPORT void JNICALL Java_com_smartglass_edge_FrameRateController_nativeInteraction(
    JNIEnv *env, jclass cls, jlong h, jdouble now_ms)
{
    (void)env, (void)cls;
    sg_rate_interaction((sg_rate_controller *)(intptr_t)h, now_ms);
}

JNIEXPORT void JNICALL Java_com_smartglass_edge_FrameRateController_nativeForceMode(
    JNIEnv *env, jclass cls, jlong h, jint mode)
{
    (void)env, (void)cls;
    sg_rate_force_mode((sg_rate_controller *)(intptr_t)h, mode);
}

/* out: {capture, mode, target_fps, user_active, boosted} */
JNIEXPORT void JNICALL Java_com_smartglass_edge_FrameRateController_nativeOnFrame(
    JNIEnv *env, jclass cls, jlong h, jdouble now_ms, jdouble battery, jdouble motion,
    jdoubleArray out)
{
    (void)cls;
    sg_rate_decision d = sg_rate_on_frame((sg_rate_controller *)(intptr_t)h, now_ms, battery, motion);
    jdouble v[5] = {d.capture, (double)d.mode, d.target_fps, d.user_active, d.boosted};
    (*env)->SetDoubleArrayRegion(env, out, 0, 5, v);
}

/* {frames, captured} */
JNIEXPORT jlongArray JNICALL Java_com_smartglass_edge_FrameRateController_nativeStats(JNIEnv *env,
                                                                                     jclass cls,
                                                                                     jlong h)
{
    (void)cls;
    sg_rate_stats st;
    sg_rate_get_stats((sg_rate_controller *)(intptr_t)h, &st);
    jlong v[2] = {st.frames, st.captured};
    jlongArray a = (*env)->NewLongArray(env, 2);
    if (a)
        (*env)->SetLongArrayRegion(env, a, 0, 2, v);
    return a;
}

JNIEXPORT jint JNICALL Java_com_smartglass_edge_FrameRateController_modeFor(JNIEnv *env, jclass cls,
                                                                            jdouble battery,
                                                                            jboolean active)
{
    (void)env, (void)cls;
    return (jint)sg_rate_mode_for(battery, active);
}

JNIEXPORT jint JNICALL Java_com_smartglass_edge_FrameRateController_modeFps(JNIEnv *env, jclass cls,
                                                                            jint mode)
{
    (void)env, (void)cls;
    return sg_rate_mode_fps((sg_rate_mode)mode);
}

JNIEXPORT jstring JNICALL Java_com_smartglass_edge_FrameRateController_modeName(JNIEnv *env,
                                                                               jclass cls,
                                                                               jint mode)
{
    (void)cls;
    return (*env)->NewStringUTF(env, sg_rate_mode_name((sg_rate_mode)mode));
}

/* ==== UploadClient ============================================================================== */

JNIEXPORT jlong JNICALL Java_com_smartglass_edge_UploadClient_nativeNew(JNIEnv *env, jclass cls,
                                                                       jbyteArray base,
                                                                       jbyteArray key,
                                                                       jlong timeout_ms)
{
    (void)cls;
    bool ok1, ok2;
    char *b = utf8_bytes(env, base, &ok1), *k = utf8_bytes(env, key, &ok2);
    char err[SG_CLIENT_ERROR_SIZE] = "";
    sg_client *c = NULL;
    sg_client_status st = SG_CLIENT_ENOMEM;
    if (ok1 && ok2) {
        sg_client_config cfg;
        sg_client_config_default(&cfg, b);
        cfg.api_key = k;
        if (timeout_ms > 0)
            cfg.timeout_ms = (long)timeout_ms;
        st = sg_client_new(&cfg, &c, err);
    }
    free(b);
    free(k);
    if (st != SG_CLIENT_OK)
        throw_status(env, st, err);
    return (jlong)(intptr_t)c;
}

JNIEXPORT void JNICALL Java_com_smartglass_edge_UploadClient_nativeFree(JNIEnv *env, jclass cls,
                                                                       jlong h)
{
    (void)env, (void)cls;
    sg_client_free((sg_client *)(intptr_t)h);
}

/* A request's result as UploadClient.Response(outcome, httpStatus, attempts, error, detail,
 * body bytes). */
static jobject response(JNIEnv *env, const sg_client_result *r)
{
    jclass cls = (*env)->FindClass(env, PKG "UploadClient$Response");
    if (!cls)
        return NULL;
    jmethodID ctor = (*env)->GetMethodID(env, cls, "<init>", "(IIILjava/lang/String;[B[B)V");
    if (!ctor)
        return NULL;
    jstring err = (*env)->NewStringUTF(env, r->error);
    jbyteArray detail = to_bytes(env, r->detail, strlen(r->detail));
    jbyteArray body = r->body ? to_bytes(env, r->body, r->body_len) : NULL;
    if (!err || !detail || (r->body && !body))
        return NULL;
    return (*env)->NewObject(env, cls, ctor, (jint)r->outcome, (jint)r->status, (jint)r->attempts,
                             err, detail, body);
}

JNIEXPORT jobject JNICALL Java_com_smartglass_edge_UploadClient_nativeCreateSession(JNIEnv *env,
                                                                                   jclass cls,
                                                                                   jlong h,
                                                                                   jobjectArray sid)
{
    (void)cls;
    char id[SG_CLIENT_SESSION_ID_SIZE] = "";
    sg_client_result r;
    sg_client_create_session((sg_client *)(intptr_t)h, id, &r);
    jstring s = (*env)->NewStringUTF(env, id);
    if (s)
        (*env)->SetObjectArrayElement(env, sid, 0, s);
    jobject out = response(env, &r);
    sg_client_result_clear(&r);
    return out;
}

JNIEXPORT jobject JNICALL Java_com_smartglass_edge_UploadClient_nativeRequest(
    JNIEnv *env, jclass cls, jlong h, jint what, jbyteArray sid, jbyteArray data, jboolean hint)
{
    (void)cls;
    bool ok1, ok2;
    char *id = utf8_bytes(env, sid, &ok1);
    jsize n = data ? (*env)->GetArrayLength(env, data) : 0;
    char *d = utf8_bytes(env, data, &ok2); /* NUL-terminated copy: text or bytes */
    sg_client_result r;
    memset(&r, 0, sizeof r);
    sg_client *c = (sg_client *)(intptr_t)h;
    if (!ok1 || !ok2) {
        free(id);
        free(d);
        throw_status(env, SG_CLIENT_ENOMEM, "out of memory");
        return NULL;
    }
    switch (what) {
    case 0: sg_client_upload_frame_hint(c, id, (const uint8_t *)d, (size_t)n, hint, &r); break;
    case 1: sg_client_upload_audio(c, id, (const uint8_t *)d, (size_t)n, &r); break;
    case 2: sg_client_query(c, id, d, NULL, 0, &r); break;
    default: sg_client_delete_session(c, id, &r); break;
    }
    free(id);
    free(d);
    jobject out = response(env, &r);
    sg_client_result_clear(&r);
    return out;
}

JNIEXPORT jbyteArray JNICALL Java_com_smartglass_edge_UploadClient_encodeJpeg(JNIEnv *env,
                                                                             jclass cls,
                                                                             jbyteArray rgb,
                                                                             jint w, jint h,
                                                                             jint quality)
{
    (void)cls;
    if (!rgb || w <= 0 || h <= 0 || (long long)(*env)->GetArrayLength(env, rgb) < 3LL * w * h) {
        throw_status(env, SG_CLIENT_EINVAL, "encodeJpeg: rgb must hold width*height*3 bytes");
        return NULL;
    }
    sg_jpeg_encoder *e = NULL;
    char err[SG_CLIENT_ERROR_SIZE] = "";
    sg_client_status st = sg_jpeg_encoder_new(&e);
    uint8_t *out = NULL;
    size_t len = 0;
    if (st == SG_CLIENT_OK) {
        jbyte *px = (*env)->GetByteArrayElements(env, rgb, NULL);
        st = px ? sg_jpeg_encode(e, (const uint8_t *)px, w, h, 0, 0, quality, &out, &len, err)
                : SG_CLIENT_ENOMEM;
        if (px)
            (*env)->ReleaseByteArrayElements(env, rgb, px, JNI_ABORT);
    }
    sg_jpeg_encoder_free(e);
    jbyteArray a = NULL;
    if (st == SG_CLIENT_OK)
        a = to_bytes(env, (const char *)out, len);
    else
        throw_status(env, st, err);
    free(out);
    return a;
}
