/*
 * JNI shim between dev.edgerl (Edgerl.kt) and the C ABI (platforms/c/edgerl.h).
 *
 * Strings cross as NUL-terminated UTF-8 byte arrays (Kotlin encodes and decodes them), because
 * JNI's own string functions use "modified UTF-8". A failed call throws
 * dev.edgerl.EdgerlException(status, message); the shim never returns a half-filled result.
 */
#include <jni.h>
#include <stdlib.h>
#include <string.h>

#include "edgerl.h"

#define EXC_CLASS "dev/edgerl/EdgerlException"

/* Throws EdgerlException(status, edgerl_last_error()) unless a Java exception is pending
 * already (one thrown by a reward callback wins). Returns 1 when status is not EDGERL_OK. */
static int fail(JNIEnv *env, int32_t status) {
    if (status == EDGERL_OK) return 0;
    if ((*env)->ExceptionCheck(env)) return 1;
    size_t len = edgerl_last_error(NULL, 0);
    char *msg = malloc(len + 1);
    if (msg) edgerl_last_error(msg, len + 1);
    jclass cls = (*env)->FindClass(env, EXC_CLASS);
    jmethodID init = cls ? (*env)->GetMethodID(env, cls, "<init>", "(ILjava/lang/String;)V") : NULL;
    /* The message is edgerl's UTF-8; decode it as Java does for byte arrays. */
    jstring jmsg = NULL;
    if (init && msg) {
        jbyteArray bytes = (*env)->NewByteArray(env, (jsize)len);
        jclass str_cls = (*env)->FindClass(env, "java/lang/String");
        jmethodID str_init = (*env)->GetMethodID(env, str_cls, "<init>", "([BLjava/lang/String;)V");
        if (bytes && str_init) {
            (*env)->SetByteArrayRegion(env, bytes, 0, (jsize)len, (const jbyte *)msg);
            jmsg = (*env)->NewObject(env, str_cls, str_init, bytes, (*env)->NewStringUTF(env, "UTF-8"));
        }
    }
    free(msg);
    if (init && !(*env)->ExceptionCheck(env)) {
        jobject exc = (*env)->NewObject(env, cls, init, (jint)status, jmsg);
        if (exc) (*env)->Throw(env, exc);
    }
    return 1;
}

/* A byte array's bytes (NUL-terminated by Kotlin's cString) for the duration of a call. */
typedef struct {
    jbyteArray array;
    jbyte *bytes;
} cstr;

static cstr cstr_get(JNIEnv *env, jbyteArray a) {
    cstr s = {a, a ? (*env)->GetByteArrayElements(env, a, NULL) : NULL};
    return s;
}

static void cstr_release(JNIEnv *env, cstr s) {
    if (s.bytes) (*env)->ReleaseByteArrayElements(env, s.array, s.bytes, JNI_ABORT);
}

static jbyteArray to_bytes(JNIEnv *env, const char *p, size_t n) {
    jbyteArray a = (*env)->NewByteArray(env, (jsize)n);
    if (a) (*env)->SetByteArrayRegion(env, a, 0, (jsize)n, (const jbyte *)p);
    return a;
}

JNIEXPORT jlong JNICALL Java_dev_edgerl_Native_runtimeCreate(JNIEnv *env, jclass c, jbyteArray backend,
                                                            jlong budget) {
    (void)c;
    cstr b = cstr_get(env, backend);
    edgerl_runtime rt = 0;
    int32_t st = edgerl_runtime_create((const char *)b.bytes, (uint64_t)budget, &rt);
    cstr_release(env, b);
    return fail(env, st) ? 0 : (jlong)rt;
}

JNIEXPORT void JNICALL Java_dev_edgerl_Native_runtimeFree(JNIEnv *env, jclass c, jlong rt) {
    (void)c;
    fail(env, edgerl_runtime_free((edgerl_runtime)rt));
}

JNIEXPORT jlongArray JNICALL Java_dev_edgerl_Native_runtimeMemory(JNIEnv *env, jclass c, jlong rt) {
    (void)c;
    uint64_t v[3] = {0, 0, 0};
    if (fail(env, edgerl_runtime_memory((edgerl_runtime)rt, &v[0], &v[1], &v[2]))) return NULL;
    jlong out[3] = {(jlong)v[0], (jlong)v[1], (jlong)v[2]};
    jlongArray a = (*env)->NewLongArray(env, 3);
    if (a) (*env)->SetLongArrayRegion(env, a, 0, 3, out);
    return a;
}

JNIEXPORT jlong JNICALL Java_dev_edgerl_Native_modelLoad(JNIEnv *env, jclass c, jlong rt, jbyteArray path) {
    (void)c;
    cstr p = cstr_get(env, path);
    edgerl_model m = 0;
    int32_t st = edgerl_model_load((edgerl_runtime)rt, (const char *)p.bytes, &m);
    cstr_release(env, p);
    return fail(env, st) ? 0 : (jlong)m;
}

JNIEXPORT void JNICALL Java_dev_edgerl_Native_modelFree(JNIEnv *env, jclass c, jlong m) {
    (void)c;
    fail(env, edgerl_model_free((edgerl_model)m));
}

JNIEXPORT jbyteArray JNICALL Java_dev_edgerl_Native_generate(JNIEnv *env, jclass c, jlong model, jlong session,
                                                            jbyteArray prompt, jint flags, jint max_new,
                                                            jfloat temperature, jlong seed) {
    (void)c;
    if (max_new < 0) return fail(env, EDGERL_ERR_INVALID_ARGUMENT), NULL;
    cstr p = cstr_get(env, prompt);
    /* A first try in 4 KiB; if the text is longer, the same seed gives it again in full. */
    size_t cap = 4096, needed = 0;
    char *out = malloc(cap);
    int32_t st = out ? edgerl_generate((edgerl_model)model, (edgerl_session)session, (const char *)p.bytes,
                                       (uint32_t)flags, (uint32_t)max_new, temperature, (uint64_t)seed, out,
                                       cap, &needed)
                     : EDGERL_ERR_INVALID_ARGUMENT;
    if (st == EDGERL_ERR_BUFFER_TOO_SMALL) {
        free(out);
        cap = needed + 1;
        out = malloc(cap);
        st = out ? edgerl_generate((edgerl_model)model, (edgerl_session)session, (const char *)p.bytes,
                                   (uint32_t)flags, (uint32_t)max_new, temperature, (uint64_t)seed, out, cap,
                                   &needed)
                 : EDGERL_ERR_INVALID_ARGUMENT;
    }
    cstr_release(env, p);
    jbyteArray r = fail(env, st) ? NULL : to_bytes(env, out, needed);
    free(out);
    return r;
}

JNIEXPORT jfloatArray JNICALL Java_dev_edgerl_Native_score(JNIEnv *env, jclass c, jlong model, jlong session,
                                                          jbyteArray text) {
    (void)c;
    cstr t = cstr_get(env, text);
    size_t n = 0;
    /* Asks for the count first (cap 0), then for the values. */
    int32_t st = edgerl_score((edgerl_model)model, (edgerl_session)session, (const char *)t.bytes, NULL, 0, &n);
    float *lp = NULL;
    if (st == EDGERL_ERR_BUFFER_TOO_SMALL || (st == EDGERL_OK && n > 0)) {
        lp = malloc(n * sizeof *lp);
        st = lp ? edgerl_score((edgerl_model)model, (edgerl_session)session, (const char *)t.bytes, lp, n, &n)
                : EDGERL_ERR_INVALID_ARGUMENT;
    }
    cstr_release(env, t);
    jfloatArray r = NULL;
    if (!fail(env, st)) {
        r = (*env)->NewFloatArray(env, (jsize)n);
        if (r && n) (*env)->SetFloatArrayRegion(env, r, 0, (jsize)n, lp);
    }
    free(lp);
    return r;
}

JNIEXPORT jlong JNICALL Java_dev_edgerl_Native_sessionCreate(JNIEnv *env, jclass c, jlong model,
                                                            jbyteArray config) {
    (void)c;
    cstr cfg = cstr_get(env, config);
    edgerl_session s = 0;
    int32_t st = edgerl_session_create((edgerl_model)model, (const char *)cfg.bytes, &s);
    cstr_release(env, cfg);
    return fail(env, st) ? 0 : (jlong)s;
}

JNIEXPORT void JNICALL Java_dev_edgerl_Native_sessionFree(JNIEnv *env, jclass c, jlong s) {
    (void)c;
    fail(env, edgerl_session_free((edgerl_session)s));
}

/* The reward callback runs on the thread that called sessionStep, so the JNIEnv is valid. */
typedef struct {
    JNIEnv *env;
    jobject bridge;
    jmethodID call;
} reward_ctx;

static int32_t reward_trampoline(void *user, size_t prompt_index, size_t completion_index,
                                 const char *completion, double *reward_out) {
    reward_ctx *ctx = user;
    JNIEnv *env = ctx->env;
    jbyteArray text = to_bytes(env, completion, strlen(completion));
    if (!text) return 1;
    jdouble r = (*env)->CallDoubleMethod(env, ctx->bridge, ctx->call, (jint)prompt_index,
                                         (jint)completion_index, text);
    (*env)->DeleteLocalRef(env, text);
    /* A Kotlin exception stays pending; edgerl aborts the step and sessionStep rethrows it. */
    if ((*env)->ExceptionCheck(env)) return 1;
    *reward_out = r;
    return 0;
}

JNIEXPORT jobject JNICALL Java_dev_edgerl_Native_sessionStep(JNIEnv *env, jclass c, jlong session,
                                                            jobjectArray prompts, jint flags, jobject bridge) {
    (void)c;
    jsize n = prompts ? (*env)->GetArrayLength(env, prompts) : 0;
    const char **ptrs = calloc(n ? (size_t)n : 1, sizeof *ptrs);
    cstr *held = calloc(n ? (size_t)n : 1, sizeof *held);
    int32_t st = ptrs && held ? EDGERL_OK : EDGERL_ERR_INVALID_ARGUMENT;
    /* Each prompt's array stays referenced until its bytes are released below. */
    if (st == EDGERL_OK && (*env)->EnsureLocalCapacity(env, n + 16) != 0) st = EDGERL_ERR_INVALID_ARGUMENT;
    for (jsize i = 0; st == EDGERL_OK && i < n; i++) {
        held[i] = cstr_get(env, (jbyteArray)(*env)->GetObjectArrayElement(env, prompts, i));
        ptrs[i] = (const char *)held[i].bytes;
    }
    reward_ctx ctx = {env, bridge, NULL};
    if (st == EDGERL_OK && bridge) {
        jclass bc = (*env)->GetObjectClass(env, bridge);
        ctx.call = (*env)->GetMethodID(env, bc, "call", "(II[B)D");
        if (!ctx.call) st = EDGERL_ERR_INVALID_ARGUMENT;
    }
    edgerl_step_metrics m;
    memset(&m, 0, sizeof m);
    if (st == EDGERL_OK)
        st = edgerl_session_step((edgerl_session)session, ptrs, (size_t)n, (uint32_t)flags,
                                 bridge ? reward_trampoline : NULL, &ctx, &m);
    for (jsize i = 0; held && i < n; i++) cstr_release(env, held[i]);
    free(ptrs);
    free(held);
    if (fail(env, st)) return NULL;
    jclass mc = (*env)->FindClass(env, "dev/edgerl/StepMetrics");
    jmethodID init = mc ? (*env)->GetMethodID(env, mc, "<init>", "(JDDDDDDDD)V") : NULL;
    if (!init) return NULL;
    return (*env)->NewObject(env, mc, init, (jlong)m.step, m.loss, m.reward_mean, m.reward_std, m.grad_norm,
                             m.learning_rate, m.completion_mean_length, m.clipped_ratio, m.seconds);
}

JNIEXPORT void JNICALL Java_dev_edgerl_Native_cancel(JNIEnv *env, jclass c, jlong s) {
    (void)c;
    fail(env, edgerl_cancel((edgerl_session)s));
}

JNIEXPORT void JNICALL Java_dev_edgerl_Native_saveAdapter(JNIEnv *env, jclass c, jlong s, jbyteArray dir) {
    (void)c;
    cstr d = cstr_get(env, dir);
    int32_t st = edgerl_session_save_adapter((edgerl_session)s, (const char *)d.bytes);
    cstr_release(env, d);
    fail(env, st);
}

JNIEXPORT void JNICALL Java_dev_edgerl_Native_loadAdapter(JNIEnv *env, jclass c, jlong s, jbyteArray dir) {
    (void)c;
    cstr d = cstr_get(env, dir);
    int32_t st = edgerl_session_load_adapter((edgerl_session)s, (const char *)d.bytes);
    cstr_release(env, d);
    fail(env, st);
}
