/*
 * JNI shim between dev.edgerl (Edgerl.kt) and the C ABI (platforms/c/edgerl.h).
 *
 * Strings cross as NUL-terminated UTF-8 byte arrays (Kotlin encodes and decodes them), because
 * JNI's own string functions use "modified UTF-8". A failed call throws
 * dev.edgerl.EdgerlException(status, message); the shim never returns a half-filled result.
 *
 * While a Java exception is pending (thrown by a Kotlin callback, or by a JNI call that ran
 * out of memory) the shim makes no JNI call but the exception-safe ones (ExceptionCheck,
 * Release*ArrayElements, DeleteLocalRef) and returns: Android's CheckJNI aborts otherwise.
 */
#include <jni.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __ANDROID__
#include <android/log.h>
#endif

#include "edgerl.h"

#define EXC_CLASS "dev/edgerl/EdgerlException"

/* Throws EdgerlException(status, msg: len bytes of UTF-8) unless a Java exception is pending
 * already (one thrown by a reward callback wins). */
static void throw_edgerl(JNIEnv *env, int32_t status, const char *msg, size_t len) {
    if ((*env)->ExceptionCheck(env)) return;
    /* Each JNI call below may fail with an exception (out of memory): stop at the first. */
    jclass cls = (*env)->FindClass(env, EXC_CLASS);
    jmethodID init = cls ? (*env)->GetMethodID(env, cls, "<init>", "(ILjava/lang/String;)V") : NULL;
    /* The message is UTF-8; decode it as Java does for byte arrays. */
    jstring jmsg = NULL;
    jbyteArray bytes = init && msg ? (*env)->NewByteArray(env, (jsize)len) : NULL;
    jclass str_cls = bytes ? (*env)->FindClass(env, "java/lang/String") : NULL;
    jmethodID str_init = str_cls ? (*env)->GetMethodID(env, str_cls, "<init>", "([BLjava/lang/String;)V") : NULL;
    jstring charset = str_init ? (*env)->NewStringUTF(env, "UTF-8") : NULL;
    if (charset) {
        (*env)->SetByteArrayRegion(env, bytes, 0, (jsize)len, (const jbyte *)msg);
        jmsg = (*env)->NewObject(env, str_cls, str_init, bytes, charset);
    }
    /* Never a null message (the Kotlin type is non-null): a fixed one when memory ran out. */
    if (!jmsg && !(*env)->ExceptionCheck(env)) jmsg = (*env)->NewStringUTF(env, "edgerl: out of memory building the error message");
    if (init && !(*env)->ExceptionCheck(env)) {
        jobject exc = (*env)->NewObject(env, cls, init, (jint)status, jmsg);
        if (exc) (*env)->Throw(env, exc);
    }
}

/* Throws EdgerlException(status, edgerl_last_error()) for a failed edgerl call. Returns 1 when
 * status is not EDGERL_OK. */
static int fail(JNIEnv *env, int32_t status) {
    if (status == EDGERL_OK) return 0;
    if ((*env)->ExceptionCheck(env)) return 1;
    size_t len = edgerl_last_error(NULL, 0);
    char *msg = malloc(len + 1);
    if (msg) edgerl_last_error(msg, len + 1);
    throw_edgerl(env, status, msg, msg ? len : 0);
    free(msg);
    return 1;
}

/* An argument the shim itself refuses: its own message, not a stale edgerl_last_error(). */
static int invalid(JNIEnv *env, const char *msg) {
    throw_edgerl(env, EDGERL_ERR_INVALID_ARGUMENT, msg, strlen(msg));
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
    if (max_new < 0) return invalid(env, "maxNewTokens must be >= 0"), NULL;
    cstr p = cstr_get(env, prompt);
    /* A first try in 4 KiB; a longer text is kept aside by edgerl and handed over in full by
     * the retry (the same arguments, nothing called in between), not generated again. */
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
    /* Asks for the count first (cap 0); edgerl keeps the values for the second call. */
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

/* The images of a call (Kotlin's RgbaImage list as parallel arrays: the pixel arrays, and
 * width, height, rowStride per image in dims), each array's bytes held for the call. */
typedef struct {
    size_t n;
    edgerl_image *images;
    cstr *held;
} images_arg;

static void images_release(JNIEnv *env, images_arg *a) {
    for (size_t i = 0; a->held && i < a->n; i++) {
        cstr_release(env, a->held[i]);
        if (a->held[i].array) (*env)->DeleteLocalRef(env, a->held[i].array);
    }
    free(a->images);
    free(a->held);
    a->images = NULL;
    a->held = NULL;
}

/* Holds the arrays' bytes; checks each array holds its pixels (edgerl trusts the pointers it
 * gets: this is where the sizes are known). Returns 1 (with an exception thrown) on failure. */
static int images_get(JNIEnv *env, jobjectArray arrays, jintArray dims, images_arg *a) {
    a->n = 0;
    a->images = NULL;
    a->held = NULL;
    jsize n = arrays ? (*env)->GetArrayLength(env, arrays) : 0;
    if (!dims || (*env)->GetArrayLength(env, dims) != 3 * n) return invalid(env, "images: 3 dims per image");
    a->images = calloc(n ? (size_t)n : 1, sizeof *a->images);
    a->held = calloc(n ? (size_t)n : 1, sizeof *a->held);
    jint *d = a->images && a->held ? (*env)->GetIntArrayElements(env, dims, NULL) : NULL;
    if (!d) {
        images_release(env, a);
        return (*env)->ExceptionCheck(env) ? 1 : invalid(env, "images: out of memory");
    }
    a->n = (size_t)n;
    int bad = (*env)->EnsureLocalCapacity(env, n + 16) != 0;
    char why[256] = "";
    for (jsize i = 0; !bad && i < n; i++) {
        jint w = d[3 * i], h = d[3 * i + 1], stride = d[3 * i + 2];
        if (w < 0 || h < 0 || stride < 0) {
            snprintf(why, sizeof why, "images[%d]: a negative width, height or rowStride (%d, %d, %d)", (int)i, (int)w,
                     (int)h, (int)stride);
            break;
        }
        jbyteArray px = (jbyteArray)(*env)->GetObjectArrayElement(env, arrays, i);
        if (!px) {
            bad = 1; /* Kotlin's types say non-null: out of memory, an exception is pending */
            break;
        }
        /* Bytes the pixels span (64-bit: no overflow for 32-bit sides); 0x0 is edgerl's to refuse. */
        uint64_t row = (uint64_t)w * 4, step = stride ? (uint64_t)stride : row;
        uint64_t span = w && h && step >= row ? (uint64_t)(h - 1) * step + row : 0;
        jsize len = (*env)->GetArrayLength(env, px);
        if (span > (uint64_t)len) {
            (*env)->DeleteLocalRef(env, px);
            snprintf(why, sizeof why, "images[%d]: %dx%d pixels with a row stride of %llu bytes need %llu bytes, the array has %d",
                     (int)i, (int)w, (int)h, (unsigned long long)step, (unsigned long long)span, (int)len);
            break;
        }
        a->held[i] = cstr_get(env, px);
        if (!a->held[i].bytes) {
            bad = 1;
            break;
        }
        edgerl_image im = {(const uint8_t *)a->held[i].bytes, (uint32_t)w, (uint32_t)h, (uint32_t)stride};
        a->images[i] = im;
    }
    (*env)->ReleaseIntArrayElements(env, dims, d, JNI_ABORT);
    if (!bad && !why[0]) return 0;
    images_release(env, a);
    if (why[0]) return invalid(env, why);
    return (*env)->ExceptionCheck(env) ? 1 : invalid(env, "images: the pixel arrays could not be read");
}

JNIEXPORT jbyteArray JNICALL Java_dev_edgerl_Native_generateImages(JNIEnv *env, jclass c, jlong model, jlong session,
                                                                  jbyteArray prompt, jobjectArray pixels,
                                                                  jintArray dims, jint flags, jint max_new,
                                                                  jfloat temperature, jlong seed) {
    (void)c;
    if (max_new < 0) return invalid(env, "maxNewTokens must be >= 0"), NULL;
    images_arg im;
    if (images_get(env, pixels, dims, &im)) return NULL;
    cstr p = cstr_get(env, prompt);
    /* As generate: a first try in 4 KiB, a longer text handed over by the retry. */
    size_t cap = 4096, needed = 0;
    char *out = malloc(cap);
    int32_t st = out ? edgerl_generate_images((edgerl_model)model, (edgerl_session)session, (const char *)p.bytes,
                                              im.images, im.n, (uint32_t)flags, (uint32_t)max_new, temperature,
                                              (uint64_t)seed, out, cap, &needed)
                     : EDGERL_ERR_INVALID_ARGUMENT;
    if (st == EDGERL_ERR_BUFFER_TOO_SMALL) {
        free(out);
        cap = needed + 1;
        out = malloc(cap);
        st = out ? edgerl_generate_images((edgerl_model)model, (edgerl_session)session, (const char *)p.bytes,
                                          im.images, im.n, (uint32_t)flags, (uint32_t)max_new, temperature,
                                          (uint64_t)seed, out, cap, &needed)
                 : EDGERL_ERR_INVALID_ARGUMENT;
    }
    cstr_release(env, p);
    images_release(env, &im);
    jbyteArray r = fail(env, st) ? NULL : to_bytes(env, out, needed);
    free(out);
    return r;
}

JNIEXPORT jfloatArray JNICALL Java_dev_edgerl_Native_scoreImages(JNIEnv *env, jclass c, jlong model, jlong session,
                                                                jbyteArray text, jobjectArray pixels,
                                                                jintArray dims) {
    (void)c;
    images_arg im;
    if (images_get(env, pixels, dims, &im)) return NULL;
    cstr t = cstr_get(env, text);
    size_t n = 0;
    /* As score: the count first, then the values edgerl kept. */
    int32_t st = edgerl_score_images((edgerl_model)model, (edgerl_session)session, (const char *)t.bytes, im.images,
                                     im.n, NULL, 0, &n);
    float *lp = NULL;
    if (st == EDGERL_ERR_BUFFER_TOO_SMALL || (st == EDGERL_OK && n > 0)) {
        lp = malloc(n * sizeof *lp);
        st = lp ? edgerl_score_images((edgerl_model)model, (edgerl_session)session, (const char *)t.bytes, im.images,
                                      im.n, lp, n, &n)
                : EDGERL_ERR_INVALID_ARGUMENT;
    }
    cstr_release(env, t);
    images_release(env, &im);
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

/* The progress callback, like the reward callback, runs on the stepping thread. Kotlin
 * serializes a session's steps, so the context set for one step is the one its reports see. */
typedef struct {
    JNIEnv *env;
    jobject bridge;
    jmethodID call;
} progress_ctx;

static int32_t progress_trampoline(void *user, int32_t phase, size_t done, size_t total) {
    progress_ctx *ctx = user;
    JNIEnv *env = ctx->env;
    (*env)->CallVoidMethod(env, ctx->bridge, ctx->call, (jint)phase, (jlong)done, (jlong)total);
    if (!(*env)->ExceptionCheck(env)) return 0;
    /* At the final report the update is applied and the step succeeds: the listener's
     * exception cannot fail it (as in Swift), so it is dropped. */
    if (phase == EDGERL_PHASE_UPDATE && done == total) {
        (*env)->ExceptionClear(env);
        return 0;
    }
    /* Elsewhere it cancels the step and is rethrown when the step returns. */
    return 1;
}

/* Sets (bridge non-NULL) or clears the session's progress callback for one step. */
static int32_t set_progress(JNIEnv *env, jlong session, jobject bridge, progress_ctx *ctx) {
    ctx->env = env;
    ctx->bridge = bridge;
    ctx->call = NULL;
    if (!bridge) return edgerl_session_set_progress((edgerl_session)session, NULL, NULL);
    jclass bc = (*env)->GetObjectClass(env, bridge);
    ctx->call = (*env)->GetMethodID(env, bc, "call", "(IJJ)V");
    if (!ctx->call) return EDGERL_ERR_INVALID_ARGUMENT;
    return edgerl_session_set_progress((edgerl_session)session, progress_trampoline, ctx);
}

static jobject metrics_object(JNIEnv *env, const edgerl_step_metrics *m) {
    jclass mc = (*env)->FindClass(env, "dev/edgerl/StepMetrics");
    jmethodID init = mc ? (*env)->GetMethodID(env, mc, "<init>", "(JDDDDDDDD)V") : NULL;
    if (!init) return NULL;
    return (*env)->NewObject(env, mc, init, (jlong)m->step, m->loss, m->reward_mean, m->reward_std, m->grad_norm,
                             m->learning_rate, m->completion_mean_length, m->clipped_ratio, m->seconds);
}

JNIEXPORT jobject JNICALL Java_dev_edgerl_Native_sessionStep(JNIEnv *env, jclass c, jlong session,
                                                            jobjectArray prompts, jint flags, jobject bridge,
                                                            jobject progress) {
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
        if (!ptrs[i]) st = EDGERL_ERR_INVALID_ARGUMENT; /* out of memory: an exception is pending */
    }
    reward_ctx ctx = {env, bridge, NULL};
    if (st == EDGERL_OK && bridge) {
        jclass bc = (*env)->GetObjectClass(env, bridge);
        ctx.call = (*env)->GetMethodID(env, bc, "call", "(II[B)D");
        if (!ctx.call) st = EDGERL_ERR_INVALID_ARGUMENT;
    }
    edgerl_step_metrics m;
    memset(&m, 0, sizeof m);
    progress_ctx pctx;
    if (st == EDGERL_OK) st = set_progress(env, session, progress, &pctx);
    if (st == EDGERL_OK)
        st = edgerl_session_step((edgerl_session)session, ptrs, (size_t)n, (uint32_t)flags,
                                 bridge ? reward_trampoline : NULL, &ctx, &m);
    /* The exception takes the step's message before clearing the callback resets it. A
     * pending exception (a callback's) wins over the status, even a success. */
    int failed = fail(env, st) || (*env)->ExceptionCheck(env);
    if (progress) edgerl_session_set_progress((edgerl_session)session, NULL, NULL);
    for (jsize i = 0; held && i < n; i++) cstr_release(env, held[i]);
    free(ptrs);
    free(held);
    return failed ? NULL : metrics_object(env, &m);
}

/* Session.stepRows, with or without images (none: edgerl_session_step_rows_images is
 * edgerl_session_step_rows). */
JNIEXPORT jobject JNICALL Java_dev_edgerl_Native_sessionStepRows(JNIEnv *env, jclass c, jlong session,
                                                                jbyteArray rows_json, jobjectArray pixels,
                                                                jintArray dims, jobject bridge,
                                                                jobject progress) {
    (void)c;
    images_arg im;
    if (images_get(env, pixels, dims, &im)) return NULL;
    cstr rows = cstr_get(env, rows_json); /* NULL bytes: edgerl names `rows_json` */
    int32_t st = EDGERL_OK;
    reward_ctx ctx = {env, bridge, NULL};
    if (st == EDGERL_OK && bridge) {
        jclass bc = (*env)->GetObjectClass(env, bridge);
        ctx.call = (*env)->GetMethodID(env, bc, "call", "(II[B)D");
        if (!ctx.call) st = EDGERL_ERR_INVALID_ARGUMENT;
    }
    edgerl_step_metrics m;
    memset(&m, 0, sizeof m);
    progress_ctx pctx;
    if (st == EDGERL_OK) st = set_progress(env, session, progress, &pctx);
    if (st == EDGERL_OK)
        st = edgerl_session_step_rows_images((edgerl_session)session, (const char *)rows.bytes, im.images, im.n,
                                             bridge ? reward_trampoline : NULL, &ctx, &m);
    /* As sessionStep: the step's message first, a callback's pending exception wins. */
    int failed = fail(env, st) || (*env)->ExceptionCheck(env);
    if (progress) edgerl_session_set_progress((edgerl_session)session, NULL, NULL);
    cstr_release(env, rows);
    images_release(env, &im);
    return failed ? NULL : metrics_object(env, &m);
}

static jobject sft_metrics_object(JNIEnv *env, const edgerl_sft_metrics *m) {
    jclass mc = (*env)->FindClass(env, "dev/edgerl/SftMetrics");
    jmethodID init = mc ? (*env)->GetMethodID(env, mc, "<init>", "(JDDDJJDDD)V") : NULL;
    if (!init) return NULL;
    return (*env)->NewObject(env, mc, init, (jlong)m->step, m->loss, m->grad_norm, m->learning_rate,
                             (jlong)m->num_tokens, (jlong)m->trained_tokens, m->mean_token_accuracy,
                             m->entropy, m->seconds);
}

JNIEXPORT jobject JNICALL Java_dev_edgerl_Native_sessionSftStep(JNIEnv *env, jclass c, jlong session,
                                                               jbyteArray rows_json, jobject progress) {
    (void)c;
    cstr rows = cstr_get(env, rows_json); /* NULL bytes: edgerl names `rows_json` */
    edgerl_sft_metrics m;
    memset(&m, 0, sizeof m);
    progress_ctx pctx;
    int32_t st = set_progress(env, session, progress, &pctx);
    if (st == EDGERL_OK) st = edgerl_session_sft_step((edgerl_session)session, (const char *)rows.bytes, &m);
    /* As sessionStep: the step's message first, a progress listener's pending exception wins. */
    int failed = fail(env, st) || (*env)->ExceptionCheck(env);
    if (progress) edgerl_session_set_progress((edgerl_session)session, NULL, NULL);
    cstr_release(env, rows);
    return failed ? NULL : sft_metrics_object(env, &m);
}

/* Session.stepEpisodes; rewards null: the config's rules score the episodes. */
JNIEXPORT jobject JNICALL Java_dev_edgerl_Native_stepEpisodes(JNIEnv *env, jclass c, jlong session,
                                                             jlongArray episodes, jdoubleArray rewards,
                                                             jint group_size, jobject progress) {
    (void)c;
    jsize n = (*env)->GetArrayLength(env, episodes);
    if ((rewards && (*env)->GetArrayLength(env, rewards) != n) || group_size < 0)
        return invalid(env, "stepEpisodes needs one reward per episode (or none) and groupSize >= 0"), NULL;
    jlong *eps = (*env)->GetLongArrayElements(env, episodes, NULL);
    jdouble *rs = eps && rewards ? (*env)->GetDoubleArrayElements(env, rewards, NULL) : NULL;
    /* jlong and edgerl_episode are both 64-bit, jdouble and double the same type. */
    edgerl_episode *ids = calloc(n ? (size_t)n : 1, sizeof *ids);
    int32_t st = eps && (rs || !rewards) && ids ? EDGERL_OK : EDGERL_ERR_INVALID_ARGUMENT;
    for (jsize i = 0; st == EDGERL_OK && i < n; i++) ids[i] = (edgerl_episode)eps[i];
    edgerl_step_metrics m;
    memset(&m, 0, sizeof m);
    progress_ctx pctx;
    if (st == EDGERL_OK) st = set_progress(env, session, progress, &pctx);
    if (st == EDGERL_OK)
        st = edgerl_session_step_episodes((edgerl_session)session, ids, rs, (size_t)n, (size_t)group_size, &m);
    int failed = fail(env, st) || (*env)->ExceptionCheck(env);
    if (progress) edgerl_session_set_progress((edgerl_session)session, NULL, NULL);
    free(ids);
    if (eps) (*env)->ReleaseLongArrayElements(env, episodes, eps, JNI_ABORT);
    if (rs) (*env)->ReleaseDoubleArrayElements(env, rewards, rs, JNI_ABORT);
    return failed ? NULL : metrics_object(env, &m);
}

JNIEXPORT jlong JNICALL Java_dev_edgerl_Native_episodeGroupsNeeded(JNIEnv *env, jclass c, jlong session) {
    (void)c;
    size_t needed = 0;
    return fail(env, edgerl_session_episode_groups_needed((edgerl_session)session, &needed)) ? 0 : (jlong)needed;
}

JNIEXPORT jlong JNICALL Java_dev_edgerl_Native_episodeBeginRow(JNIEnv *env, jclass c, jlong session,
                                                              jbyteArray row_json) {
    (void)c;
    cstr r = cstr_get(env, row_json); /* NULL bytes: edgerl names `row_json` */
    edgerl_episode ep = 0;
    int32_t st = edgerl_episode_begin_row((edgerl_session)session, (const char *)r.bytes, &ep);
    cstr_release(env, r);
    return fail(env, st) ? 0 : (jlong)ep;
}

JNIEXPORT jlong JNICALL Java_dev_edgerl_Native_episodeBegin(JNIEnv *env, jclass c, jlong session,
                                                           jbyteArray prompt, jint flags) {
    (void)c;
    cstr p = cstr_get(env, prompt);
    edgerl_episode ep = 0;
    int32_t st = edgerl_episode_begin((edgerl_session)session, (const char *)p.bytes, (uint32_t)flags, &ep);
    cstr_release(env, p);
    return fail(env, st) ? 0 : (jlong)ep;
}

JNIEXPORT jbyteArray JNICALL Java_dev_edgerl_Native_episodeAct(JNIEnv *env, jclass c, jlong episode,
                                                              jint max_new) {
    (void)c;
    if (max_new < 0) return invalid(env, "maxNewTokens must be >= 0"), NULL;
    /* A first try in 4 KiB; a longer act is kept aside by edgerl and handed over in full. */
    size_t cap = 4096, needed = 0;
    char *out = malloc(cap);
    int32_t st = out ? edgerl_episode_act((edgerl_episode)episode, (uint32_t)max_new, out, cap, &needed)
                     : EDGERL_ERR_INVALID_ARGUMENT;
    if (st == EDGERL_ERR_BUFFER_TOO_SMALL) {
        free(out);
        cap = needed + 1;
        out = malloc(cap);
        st = out ? edgerl_episode_act((edgerl_episode)episode, (uint32_t)max_new, out, cap, &needed)
                 : EDGERL_ERR_INVALID_ARGUMENT;
    }
    jbyteArray r = fail(env, st) ? NULL : to_bytes(env, out, needed);
    free(out);
    return r;
}

JNIEXPORT void JNICALL Java_dev_edgerl_Native_episodeObserve(JNIEnv *env, jclass c, jlong episode,
                                                            jbyteArray text) {
    (void)c;
    cstr t = cstr_get(env, text);
    int32_t st = edgerl_episode_observe((edgerl_episode)episode, (const char *)t.bytes);
    cstr_release(env, t);
    fail(env, st);
}

JNIEXPORT void JNICALL Java_dev_edgerl_Native_episodeFree(JNIEnv *env, jclass c, jlong episode) {
    (void)c;
    fail(env, edgerl_episode_free((edgerl_episode)episode));
}

/* Log records may come from any thread, so they go straight to logcat (stderr off Android)
 * instead of into the JVM. */
static void log_record(void *user, int32_t level, const char *message) {
    (void)user;
#ifdef __ANDROID__
    static const int prio[] = {ANDROID_LOG_INFO, ANDROID_LOG_ERROR, ANDROID_LOG_WARN, ANDROID_LOG_INFO,
                               ANDROID_LOG_DEBUG, ANDROID_LOG_VERBOSE};
    __android_log_write(prio[level >= 1 && level <= 5 ? level : 0], "edgerl", message);
#else
    fprintf(stderr, "edgerl [%d] %s\n", (int)level, message);
#endif
}

JNIEXPORT void JNICALL Java_dev_edgerl_Native_setLogLevel(JNIEnv *env, jclass c, jint level) {
    (void)c;
    if (level <= 0)
        fail(env, edgerl_set_log_callback(NULL, NULL, EDGERL_LOG_ERROR));
    else
        fail(env, edgerl_set_log_callback(log_record, NULL, level));
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
