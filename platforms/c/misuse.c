/*
 * Misuse of the C ABI must give the documented status and a message, never a crash:
 * NULL pointers and strings, handle 0, freed and wrong-type handles, a wrong model path, reward
 * callbacks that fail or give NaN (the adapter stays as it was), cancellation, re-entry;
 * episodes (bad arguments, an episode of another session, no act, NaN rewards, group sizes),
 * progress callbacks that cancel (at the final report, neither that step nor the next), the
 * log callback.
 * Run by tests/c_abi.rs (also under AddressSanitizer):
 *
 *   ./misuse tests/fixtures/models/qwen3_f16 SCRATCH_DIR
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "edgerl.h"

static int failures = 0;
static char msg[1024];

/* Expects `call` to return `want` (and, for errors, a non-empty message containing `needle`). */
#define EXPECT(call, want, needle) expect_((call), (want), (needle), #call, __LINE__)

static void expect_(int32_t got, int32_t want, const char *needle, const char *what, int line) {
    size_t len = edgerl_last_error(msg, sizeof msg);
    int ok = got == want;
    if (ok && want != EDGERL_OK) {
        ok = len > 0 && strlen(msg) == (len < sizeof msg ? len : sizeof msg - 1) &&
             (needle == NULL || strstr(msg, needle) != NULL);
    }
    if (ok && want == EDGERL_OK) ok = len == 0;
    printf("%s line %d: %s -> %s \"%s\"\n", ok ? "ok  " : "FAIL", line, what,
           edgerl_status_name(got), msg);
    if (!ok) {
        printf("     wanted %s%s%s\n", edgerl_status_name(want), needle ? " with " : "",
               needle ? needle : "");
        failures++;
    }
}

static void require(int cond, const char *what) {
    printf("%s %s\n", cond ? "ok  " : "FAIL", what);
    if (!cond) failures++;
}

static char *read_file(const char *path, long *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)*size);
    if (fread(buf, 1, (size_t)*size, f) != (size_t)*size) *size = -1;
    fclose(f);
    return buf;
}

static int same_file(const char *a, const char *b) {
    long na = 0, nb = 0;
    char *x = read_file(a, &na), *y = read_file(b, &nb);
    int same = x && y && na == nb && na > 0 && memcmp(x, y, (size_t)na) == 0;
    free(x);
    free(y);
    return same;
}

/* Callbacks. */
static int32_t give_nan(void *u, size_t p, size_t c, const char *t, double *r) {
    (void)u, (void)p, (void)t;
    *r = c == 2 ? NAN : 0.5; /* one bad reward among good ones */
    return 0;
}
static int32_t give_inf(void *u, size_t p, size_t c, const char *t, double *r) {
    (void)u, (void)p, (void)c, (void)t;
    *r = INFINITY;
    return 0;
}
static int32_t fail_at_3(void *u, size_t p, size_t c, const char *t, double *r) {
    (void)u, (void)p, (void)t;
    *r = 1.0;
    return c == 3 ? 42 : 0;
}
static int32_t by_index(void *u, size_t p, size_t c, const char *t, double *r) {
    (void)u, (void)p, (void)t;
    *r = (double)c; /* 0, 1, 2, 3: mean 1.5 */
    return 0;
}
struct reentry {
    edgerl_model model;
    edgerl_session session;
    int32_t save_rc, generate_rc, cancel_rc;
    const char *dir;
};
/* Calls back into edgerl on its own session: other calls are BUSY, cancel works. */
static int32_t reenter(void *u, size_t p, size_t c, const char *t, double *r) {
    struct reentry *e = u;
    (void)p, (void)t;
    *r = (double)c;
    if (c == 0) {
        char out[64];
        e->save_rc = edgerl_session_save_adapter(e->session, e->dir);
        e->generate_rc = edgerl_generate(e->model, 0, "hi", EDGERL_PROMPT_RAW, 2, 0.0f, 0, out,
                                         sizeof out, NULL);
        e->cancel_rc = edgerl_cancel(e->session);
    }
    return 0;
}

/* Progress callbacks: one that cancels before the first update, one that calls back into its
 * own session's episode (BUSY: the session runs the step). */
static int32_t cancel_update(void *u, int32_t phase, size_t done, size_t total) {
    (void)u, (void)total;
    return phase == EDGERL_PHASE_UPDATE && done == 0 ? 5 : 0;
}
struct progress_reentry {
    edgerl_episode ep;
    int32_t observe_rc;
    int calls;
};
static int32_t reenter_progress(void *u, int32_t phase, size_t done, size_t total) {
    struct progress_reentry *p = u;
    (void)phase, (void)done, (void)total;
    if (p->calls++ == 0) p->observe_rc = edgerl_episode_observe(p->ep, "x");
    return 1; /* cancels the step (before its update) */
}
/* At the final report (the update is applied) asks to cancel both ways: nothing is left to
 * stop, and the cancel must not carry over to the next step. */
struct cancel_last {
    edgerl_session session;
    int finals;
};
static int32_t cancel_at_last(void *u, int32_t phase, size_t done, size_t total) {
    struct cancel_last *c = u;
    if (phase != EDGERL_PHASE_UPDATE || done != total) return 0;
    c->finals++;
    edgerl_cancel(c->session);
    return 7;
}
static int log_calls = 0;
static void count_log(void *u, int32_t level, const char *m) {
    (void)u, (void)level, (void)m;
    log_calls++;
}

/* Cancel from another thread: the callback waits until the other thread has cancelled. */
static atomic_int started, cancelled;
static int32_t wait_for_cancel(void *u, size_t p, size_t c, const char *t, double *r) {
    (void)u, (void)p, (void)t;
    *r = (double)c;
    if (c == 0) {
        atomic_store(&started, 1);
        struct timespec ms = {0, 1000000};
        for (int i = 0; i < 20000 && !atomic_load(&cancelled); i++) nanosleep(&ms, NULL);
    }
    return 0;
}
struct canceller {
    edgerl_session session;
    int32_t rc;
};
static void *cancel_thread(void *arg) {
    struct canceller *k = arg;
    struct timespec ms = {0, 1000000};
    while (!atomic_load(&started)) nanosleep(&ms, NULL);
    k->rc = edgerl_cancel(k->session);
    atomic_store(&cancelled, 1);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL SCRATCH_DIR\n", argv[0]);
        return 2;
    }
    const char *model_path = argv[1];
    char before[1024], after[1024], file_before[1100], file_after[1100], unused[1024];
    snprintf(before, sizeof before, "%s/before", argv[2]);
    snprintf(after, sizeof after, "%s/after", argv[2]);
    snprintf(unused, sizeof unused, "%s/never-written", argv[2]);
    snprintf(file_before, sizeof file_before, "%s/adapter_model.safetensors", before);
    snprintf(file_after, sizeof file_after, "%s/adapter_model.safetensors", after);

    edgerl_runtime rt = 0;
    edgerl_model model = 0;
    edgerl_session session = 0;
    char out[256];
    size_t needed = 0, n = 0;
    float lp[8];

    /* Runtime: NULL out-pointer, unknown backend. */
    EXPECT(edgerl_runtime_create(NULL, 0, NULL), EDGERL_ERR_INVALID_ARGUMENT, "out");
    EXPECT(edgerl_runtime_create("nosuchbackend", 0, &rt), EDGERL_ERR_INVALID_ARGUMENT, "nosuchbackend");
    EXPECT(edgerl_runtime_create(NULL, 123456789, &rt), EDGERL_OK, NULL);
    uint64_t budget = 0;
    EXPECT(edgerl_runtime_memory(rt, NULL, NULL, &budget), EDGERL_OK, NULL);
    require(budget == 123456789, "the memory budget is reported back");

    /* Models: NULL strings and pointers, wrong paths, handle 0, never-issued and wrong-type handles. */
    EXPECT(edgerl_model_load(rt, NULL, &model), EDGERL_ERR_INVALID_ARGUMENT, "path");
    EXPECT(edgerl_model_load(rt, model_path, NULL), EDGERL_ERR_INVALID_ARGUMENT, "out");
    EXPECT(edgerl_model_load(rt, "/no/such/model-dir", &model), EDGERL_ERR_IO, "/no/such/model-dir");
    EXPECT(edgerl_model_load(0, model_path, &model), EDGERL_ERR_UNKNOWN_HANDLE, "0");
    EXPECT(edgerl_model_load(987654321, model_path, &model), EDGERL_ERR_UNKNOWN_HANDLE, "987654321");
    require(model == 0, "failed loads leave *out alone");
    EXPECT(edgerl_model_load(rt, model_path, &model), EDGERL_OK, NULL);
    EXPECT(edgerl_model_load(model, model_path, &model), EDGERL_ERR_UNKNOWN_HANDLE, "is a model, not a runtime");

    /* Generate and score on the base model. */
    EXPECT(edgerl_generate(model, 0, NULL, EDGERL_PROMPT_RAW, 4, 0.0f, 0, out, sizeof out, &needed),
           EDGERL_ERR_INVALID_ARGUMENT, "prompt");
    EXPECT(edgerl_generate(model, 0, "hi", 7, 4, 0.0f, 0, out, sizeof out, &needed),
           EDGERL_ERR_INVALID_ARGUMENT, "flags");
    EXPECT(edgerl_generate(model, 0, "hi", EDGERL_PROMPT_RAW, 4, -1.0f, 0, out, sizeof out, &needed),
           EDGERL_ERR_INVALID_ARGUMENT, "temperature");
    EXPECT(edgerl_generate(model, 0, "hi", EDGERL_PROMPT_RAW, 4, 0.0f, 0, NULL, 10, &needed),
           EDGERL_ERR_INVALID_ARGUMENT, "out");
    EXPECT(edgerl_generate(rt, 0, "hi", EDGERL_PROMPT_RAW, 4, 0.0f, 0, out, sizeof out, &needed),
           EDGERL_ERR_UNKNOWN_HANDLE, "not a model");
    EXPECT(edgerl_generate(model, 0, "hi", EDGERL_PROMPT_CHAT, 6, 0.0f, 0, out, sizeof out, &needed),
           EDGERL_OK, NULL);
    require(strlen(out) == needed, "generate: *needed is the text's length");
    size_t full = needed;
    if (full > 0) {
        char tiny[2] = {'x', 'x'};
        EXPECT(edgerl_generate(model, 0, "hi", EDGERL_PROMPT_CHAT, 6, 0.0f, 0, tiny, 1, &needed),
               EDGERL_ERR_BUFFER_TOO_SMALL, "bytes");
        require(tiny[0] == 0 && tiny[1] == 'x' && needed == full, "a short buffer gets a NUL and the length");
    }
    EXPECT(edgerl_score(model, 0, "hello world", lp, 8, NULL), EDGERL_ERR_INVALID_ARGUMENT, "`n`");
    EXPECT(edgerl_score(model, 0, NULL, lp, 8, &n), EDGERL_ERR_INVALID_ARGUMENT, "text");
    EXPECT(edgerl_score(model, 0, "hello world", NULL, 0, &n), EDGERL_ERR_BUFFER_TOO_SMALL, "cap");
    require(n >= 1, "score: a size query gives the count");
    EXPECT(edgerl_score(model, 0, "hello world", lp, 8, &n), EDGERL_OK, NULL);
    require(n >= 1 && lp[0] < 0.0f && isfinite(lp[0]), "score: finite negative log-probs");

    /* Last error: truncation keeps a NUL, the return value is the full length. */
    EXPECT(edgerl_model_load(rt, "/no/such/model-dir", &model), EDGERL_ERR_IO, "/no/such/model-dir");
    char small[8];
    memset(small, 'x', sizeof small);
    size_t len = edgerl_last_error(small, sizeof small);
    require(len > 7 && strlen(small) == 7, "edgerl_last_error truncates with a NUL");
    require(edgerl_last_error(NULL, 0) == len, "edgerl_last_error(NULL, 0) gives the length");

    /* Sessions: bad configs, wrong handles. */
    EXPECT(edgerl_session_create(model, NULL, NULL), EDGERL_ERR_INVALID_ARGUMENT, "out");
    EXPECT(edgerl_session_create(rt, NULL, &session), EDGERL_ERR_UNKNOWN_HANDLE, "is a runtime, not a model");
    EXPECT(edgerl_session_create(model, "num_generations = ", &session), EDGERL_ERR_INVALID_ARGUMENT, "config");
    EXPECT(edgerl_session_create(model, "no_such_key = 1", &session), EDGERL_ERR_INVALID_ARGUMENT, "no_such_key");
    EXPECT(edgerl_session_create(model, "model = \"x\"", &session), EDGERL_ERR_INVALID_ARGUMENT, "model");
    EXPECT(edgerl_session_create(model, "learning_rate = -1.0", &session), EDGERL_ERR_INVALID_ARGUMENT, "learning_rate");
    EXPECT(edgerl_session_create(model, "init_adapter = \"/no/such/adapter\"", &session), EDGERL_ERR_IO, "/no/such/adapter");
    const char *cfg = "num_generations = 4\nmax_completion_length = 4\nlearning_rate = 0.05\n[lora]\nr = 4\n";
    EXPECT(edgerl_session_create(model, cfg, &session), EDGERL_OK, NULL);
    edgerl_session second = 0;
    EXPECT(edgerl_session_create(model, cfg, &second), EDGERL_ERR_BUSY, "one session per model");
    EXPECT(edgerl_session_save_adapter(session, NULL), EDGERL_ERR_INVALID_ARGUMENT, "dir");
    EXPECT(edgerl_session_save_adapter(model, before), EDGERL_ERR_UNKNOWN_HANDLE, "is a model, not a session");
    EXPECT(edgerl_session_save_adapter(session, before), EDGERL_OK, NULL);
    EXPECT(edgerl_session_load_adapter(session, "/no/such/adapter"), EDGERL_ERR_IO, "/no/such/adapter");

    /* Steps that must fail and leave the adapter alone. */
    const char *prompts[] = {"Say hello.", "Name a color."};
    const char *with_null[] = {"Say hello.", NULL};
    edgerl_step_metrics m;
    EXPECT(edgerl_session_step(session, NULL, 2, EDGERL_PROMPT_CHAT, give_nan, NULL, &m), EDGERL_ERR_INVALID_ARGUMENT, "prompts");
    EXPECT(edgerl_session_step(session, with_null, 2, EDGERL_PROMPT_CHAT, give_nan, NULL, &m), EDGERL_ERR_INVALID_ARGUMENT, "prompts[1]");
    EXPECT(edgerl_session_step(session, prompts, 0, EDGERL_PROMPT_CHAT, give_nan, NULL, &m), EDGERL_ERR_INVALID_ARGUMENT, "n_prompts");
    EXPECT(edgerl_session_step(session, prompts, 2, EDGERL_PROMPT_CHAT, NULL, NULL, &m), EDGERL_ERR_INVALID_ARGUMENT, "no reward callback");
    EXPECT(edgerl_session_step(session, prompts, 2, EDGERL_PROMPT_CHAT, give_nan, NULL, &m), EDGERL_ERR_CALLBACK, "NaN");
    EXPECT(edgerl_session_step(session, prompts, 2, EDGERL_PROMPT_CHAT, give_inf, NULL, &m), EDGERL_ERR_CALLBACK, "inf");
    EXPECT(edgerl_session_step(session, prompts, 2, EDGERL_PROMPT_CHAT, fail_at_3, NULL, &m), EDGERL_ERR_CALLBACK, "returned 42");
    EXPECT(edgerl_cancel(session), EDGERL_OK, NULL);
    EXPECT(edgerl_session_step(session, prompts, 2, EDGERL_PROMPT_CHAT, fail_at_3, NULL, &m), EDGERL_ERR_CANCELLED, "cancelled");
    struct reentry e = {model, session, 0, 0, 0, unused};
    EXPECT(edgerl_session_step(session, prompts, 2, EDGERL_PROMPT_CHAT, reenter, &e, &m), EDGERL_ERR_CANCELLED, "cancelled");
    require(e.save_rc == EDGERL_ERR_BUSY, "inside its callback, saving the session is BUSY");
    require(e.generate_rc == EDGERL_ERR_BUSY, "inside its callback, generating on the lent model is BUSY");
    require(e.cancel_rc == EDGERL_OK, "inside its callback, cancel works");
    struct canceller k = {session, 1};
    pthread_t th;
    pthread_create(&th, NULL, cancel_thread, &k);
    EXPECT(edgerl_session_step(session, prompts, 2, EDGERL_PROMPT_CHAT, wait_for_cancel, NULL, &m), EDGERL_ERR_CANCELLED, "cancelled");
    pthread_join(th, NULL);
    require(k.rc == EDGERL_OK, "edgerl_cancel from another thread");

    /* Episodes: bad arguments to begin / act / observe. */
    edgerl_episode ep = 0, ep2 = 0, chat = 0, fresh = 0, other_prompt = 0, foreign = 0, gone = 0;
    EXPECT(edgerl_episode_begin(session, NULL, EDGERL_PROMPT_RAW, &ep), EDGERL_ERR_INVALID_ARGUMENT, "prompt");
    EXPECT(edgerl_episode_begin(session, "Say hello.", 7, &ep), EDGERL_ERR_INVALID_ARGUMENT, "flags");
    EXPECT(edgerl_episode_begin(session, "Say hello.", EDGERL_PROMPT_RAW, NULL), EDGERL_ERR_INVALID_ARGUMENT, "out");
    EXPECT(edgerl_episode_begin(model, "Say hello.", EDGERL_PROMPT_RAW, &ep), EDGERL_ERR_UNKNOWN_HANDLE, "is a model, not a session");
    EXPECT(edgerl_episode_begin(session, "Say hello.", EDGERL_PROMPT_RAW, &ep), EDGERL_OK, NULL);
    EXPECT(edgerl_episode_begin(session, "Say hello.", EDGERL_PROMPT_RAW, &ep2), EDGERL_OK, NULL);
    EXPECT(edgerl_episode_begin(session, "Say hello.", EDGERL_PROMPT_CHAT, &chat), EDGERL_OK, NULL);
    EXPECT(edgerl_episode_begin(session, "Say hello.", EDGERL_PROMPT_RAW, &fresh), EDGERL_OK, NULL);
    EXPECT(edgerl_episode_begin(session, "Name a color.", EDGERL_PROMPT_RAW, &other_prompt), EDGERL_OK, NULL);
    EXPECT(edgerl_episode_observe(chat, "the screen"), EDGERL_ERR_INVALID_ARGUMENT, "answers an act");
    EXPECT(edgerl_episode_observe(ep, NULL), EDGERL_ERR_INVALID_ARGUMENT, "text");
    EXPECT(edgerl_episode_observe(session, "x"), EDGERL_ERR_UNKNOWN_HANDLE, "is a session, not an episode");
    EXPECT(edgerl_episode_act(ep, 3, NULL, 10, &needed), EDGERL_ERR_INVALID_ARGUMENT, "out");
    /* A size query keeps the act aside; the next call hands over that same act. */
    size_t asked = 0;
    EXPECT(edgerl_episode_act(ep, 3, NULL, 0, &asked), EDGERL_ERR_BUFFER_TOO_SMALL, "kept");
    EXPECT(edgerl_episode_observe(ep, " ok"), EDGERL_ERR_INVALID_ARGUMENT, "not handed over");
    EXPECT(edgerl_episode_act(ep, 3, out, sizeof out, &needed), EDGERL_OK, NULL);
    require(needed == asked && strlen(out) == needed, "act: the kept act is the one handed over");
    EXPECT(edgerl_episode_observe(ep, " ok"), EDGERL_OK, NULL);
    EXPECT(edgerl_episode_act(ep, 3, out, sizeof out, NULL), EDGERL_OK, NULL);
    EXPECT(edgerl_episode_act(chat, 3, out, sizeof out, NULL), EDGERL_OK, NULL);
    EXPECT(edgerl_episode_observe(chat, "the screen"), EDGERL_OK, NULL);
    EXPECT(edgerl_episode_act(chat, 3, out, sizeof out, NULL), EDGERL_OK, NULL);
    EXPECT(edgerl_episode_act(other_prompt, 3, out, sizeof out, NULL), EDGERL_OK, NULL);
    EXPECT(edgerl_episode_act(ep2, 3, out, sizeof out, NULL), EDGERL_OK, NULL);
    EXPECT(edgerl_cancel(session), EDGERL_OK, NULL);
    EXPECT(edgerl_episode_act(fresh, 3, out, sizeof out, NULL), EDGERL_ERR_CANCELLED, "cancelled");
    EXPECT(edgerl_episode_begin(session, "Say hello.", EDGERL_PROMPT_RAW, &gone), EDGERL_OK, NULL);
    EXPECT(edgerl_episode_free(gone), EDGERL_OK, NULL);
    EXPECT(edgerl_episode_free(gone), EDGERL_ERR_UNKNOWN_HANDLE, "unknown");
    EXPECT(edgerl_episode_act(gone, 3, out, sizeof out, NULL), EDGERL_ERR_UNKNOWN_HANDLE, "unknown");
    /* An episode of another session (on a second model). */
    edgerl_model model2 = 0;
    edgerl_session session2 = 0;
    EXPECT(edgerl_model_load(rt, model_path, &model2), EDGERL_OK, NULL);
    EXPECT(edgerl_session_create(model2, cfg, &session2), EDGERL_OK, NULL);
    EXPECT(edgerl_episode_begin(session2, "Say hello.", EDGERL_PROMPT_RAW, &foreign), EDGERL_OK, NULL);
    EXPECT(edgerl_episode_act(foreign, 3, out, sizeof out, NULL), EDGERL_OK, NULL);

    /* Episode steps that must fail and leave the adapter alone. */
    edgerl_episode two[] = {ep, ep2}, three[] = {ep, ep2, ep}, no_act[] = {ep, fresh};
    edgerl_episode mixed[] = {ep, other_prompt}, raw_chat[] = {ep, chat}, theirs[] = {ep, foreign};
    edgerl_episode freed[] = {ep, gone};
    edgerl_episode wrong_type[] = {ep, session};
    double good[] = {1.0, 0.0, 0.5}, with_nan[] = {1.0, NAN};
    EXPECT(edgerl_session_step_episodes(session, two, good, 0, 1, &m), EDGERL_ERR_INVALID_ARGUMENT, "`n`");
    EXPECT(edgerl_session_step_episodes(session, NULL, good, 2, 1, &m), EDGERL_ERR_INVALID_ARGUMENT, "episodes");
    EXPECT(edgerl_session_step_episodes(session, two, NULL, 2, 1, &m), EDGERL_ERR_INVALID_ARGUMENT, "rewards");
    EXPECT(edgerl_session_step_episodes(session, two, good, 2, 0, &m), EDGERL_ERR_INVALID_ARGUMENT, "group_size 0");
    EXPECT(edgerl_session_step_episodes(session, three, good, 3, 2, &m), EDGERL_ERR_INVALID_ARGUMENT, "twice");
    EXPECT(edgerl_session_step_episodes(session, two, good, 2, 3, &m), EDGERL_ERR_INVALID_ARGUMENT, "group_size 3");
    EXPECT(edgerl_session_step_episodes(session, two, with_nan, 2, 2, &m), EDGERL_ERR_INVALID_ARGUMENT, "rewards[1] is NaN");
    EXPECT(edgerl_session_step_episodes(session, no_act, good, 2, 2, &m), EDGERL_ERR_INVALID_ARGUMENT, "episodes[1] has no act");
    EXPECT(edgerl_session_step_episodes(session, mixed, good, 2, 2, &m), EDGERL_ERR_INVALID_ARGUMENT, "another prompt");
    EXPECT(edgerl_session_step_episodes(session, raw_chat, good, 2, 2, &m), EDGERL_ERR_INVALID_ARGUMENT, "another prompt");
    EXPECT(edgerl_session_step_episodes(session, theirs, good, 2, 1, &m), EDGERL_ERR_INVALID_ARGUMENT, "belongs to session");
    EXPECT(edgerl_session_step_episodes(session, freed, good, 2, 1, &m), EDGERL_ERR_UNKNOWN_HANDLE, "episodes[1]");
    EXPECT(edgerl_session_step_episodes(session, wrong_type, good, 2, 1, &m), EDGERL_ERR_UNKNOWN_HANDLE, "not an episode");
    EXPECT(edgerl_session_set_progress(session, cancel_update, NULL), EDGERL_OK, NULL);
    EXPECT(edgerl_session_step_episodes(session, two, good, 2, 2, &m), EDGERL_ERR_CANCELLED, "progress callback");
    EXPECT(edgerl_session_step(session, prompts, 2, EDGERL_PROMPT_CHAT, by_index, NULL, &m), EDGERL_ERR_CANCELLED, "progress callback");
    struct progress_reentry pr = {ep, 0, 0};
    EXPECT(edgerl_session_set_progress(session, reenter_progress, &pr), EDGERL_OK, NULL);
    EXPECT(edgerl_session_step(session, prompts, 2, EDGERL_PROMPT_CHAT, by_index, NULL, &m), EDGERL_ERR_CANCELLED, "sample 4/8");
    require(pr.observe_rc == EDGERL_ERR_BUSY, "inside its progress callback, observing an episode of the session is BUSY");
    EXPECT(edgerl_session_set_progress(session, NULL, NULL), EDGERL_OK, NULL);
    EXPECT(edgerl_session_set_progress(model, NULL, NULL), EDGERL_ERR_UNKNOWN_HANDLE, "not a session");
    EXPECT(edgerl_set_log_callback(count_log, NULL, 9), EDGERL_ERR_INVALID_ARGUMENT, "max_level");

    EXPECT(edgerl_session_save_adapter(session, after), EDGERL_OK, NULL);
    require(same_file(file_before, file_after), "failed steps leave the adapter unchanged");

    /* An episode step that works changes the adapter (and logs its metrics). */
    EXPECT(edgerl_set_log_callback(count_log, NULL, EDGERL_LOG_INFO), EDGERL_OK, NULL);
    EXPECT(edgerl_session_step_episodes(session, two, good, 2, 2, &m), EDGERL_OK, NULL);
    require(m.step == 1 && isfinite(m.loss) && m.reward_mean == 0.5, "episode step metrics");
    EXPECT(edgerl_set_log_callback(NULL, NULL, EDGERL_LOG_INFO), EDGERL_OK, NULL);
    require(log_calls >= 1, "the log callback saw the step");
    int seen = log_calls;
    EXPECT(edgerl_session_save_adapter(session, after), EDGERL_OK, NULL);
    require(!same_file(file_before, file_after), "an episode step changes the adapter");
    EXPECT(edgerl_session_load_adapter(session, before), EDGERL_OK, NULL);
    require(log_calls == seen, "no log records after the callback is removed");
    EXPECT(edgerl_session_free(session2), EDGERL_OK, NULL);
    EXPECT(edgerl_episode_act(foreign, 3, out, sizeof out, NULL), EDGERL_ERR_UNKNOWN_HANDLE, "is freed");
    EXPECT(edgerl_episode_free(foreign), EDGERL_OK, NULL);
    EXPECT(edgerl_model_free(model2), EDGERL_OK, NULL);
    EXPECT(edgerl_episode_free(chat), EDGERL_OK, NULL);
    EXPECT(edgerl_episode_free(ep2), EDGERL_OK, NULL);
    EXPECT(edgerl_episode_free(fresh), EDGERL_OK, NULL);
    EXPECT(edgerl_episode_free(other_prompt), EDGERL_OK, NULL);
    EXPECT(edgerl_episode_free(ep), EDGERL_OK, NULL);

    /* While the session lives, the base model is reached through it. */
    EXPECT(edgerl_generate(model, 0, "hi", EDGERL_PROMPT_CHAT, 6, 0.0f, 0, out, sizeof out, &needed), EDGERL_OK, NULL);
    require(needed == full, "the lent model still generates, without the adapter");
    EXPECT(edgerl_generate(rt, session, "hi", EDGERL_PROMPT_CHAT, 6, 0.0f, 0, out, sizeof out, &needed),
           EDGERL_ERR_INVALID_ARGUMENT, "trains model");

    /* A step that works changes the adapter; loading the saved one brings it back. */
    EXPECT(edgerl_session_step(session, prompts, 2, EDGERL_PROMPT_CHAT, by_index, NULL, &m), EDGERL_OK, NULL);
    require(m.step == 2 && isfinite(m.loss) && m.reward_mean == 1.5, "step metrics (after the episode step)");
    EXPECT(edgerl_session_save_adapter(session, after), EDGERL_OK, NULL);
    require(!same_file(file_before, file_after), "a step changes the adapter");
    EXPECT(edgerl_session_load_adapter(session, before), EDGERL_OK, NULL);
    EXPECT(edgerl_session_save_adapter(session, after), EDGERL_OK, NULL);
    require(same_file(file_before, file_after), "load_adapter restores the saved adapter");

    /* A cancel asked for at the final report fails neither that step nor the next. */
    struct cancel_last cl = {session, 0};
    EXPECT(edgerl_session_set_progress(session, cancel_at_last, &cl), EDGERL_OK, NULL);
    EXPECT(edgerl_session_step(session, prompts, 2, EDGERL_PROMPT_CHAT, by_index, NULL, &m), EDGERL_OK, NULL);
    require(cl.finals == 1 && m.step == 3, "the final report came once, after the update");
    EXPECT(edgerl_session_set_progress(session, NULL, NULL), EDGERL_OK, NULL);
    EXPECT(edgerl_session_step(session, prompts, 2, EDGERL_PROMPT_CHAT, by_index, NULL, &m), EDGERL_OK, NULL);
    require(m.step == 4, "the step after a final-report cancel runs");

    /* Freed handles: every use is UNKNOWN_HANDLE, so is a second free. */
    EXPECT(edgerl_session_free(session), EDGERL_OK, NULL);
    EXPECT(edgerl_session_free(session), EDGERL_ERR_UNKNOWN_HANDLE, "unknown");
    EXPECT(edgerl_cancel(session), EDGERL_ERR_UNKNOWN_HANDLE, "unknown");
    EXPECT(edgerl_session_step(session, prompts, 2, EDGERL_PROMPT_CHAT, give_nan, NULL, &m), EDGERL_ERR_UNKNOWN_HANDLE, "unknown");
    EXPECT(edgerl_session_save_adapter(session, unused), EDGERL_ERR_UNKNOWN_HANDLE, "unknown");
    EXPECT(edgerl_generate(0, session, "hi", EDGERL_PROMPT_RAW, 2, 0.0f, 0, out, sizeof out, &needed), EDGERL_ERR_UNKNOWN_HANDLE, "unknown");
    EXPECT(edgerl_cancel(0), EDGERL_ERR_UNKNOWN_HANDLE, "0");
    /* The weights came back: a new session on the model works. */
    EXPECT(edgerl_session_create(model, NULL, &second), EDGERL_OK, NULL);
    EXPECT(edgerl_model_free(model), EDGERL_OK, NULL);
    EXPECT(edgerl_model_free(model), EDGERL_ERR_UNKNOWN_HANDLE, "unknown");
    EXPECT(edgerl_score(model, 0, "hello", lp, 8, &n), EDGERL_ERR_UNKNOWN_HANDLE, "unknown");
    /* The session keeps its (freed) model alive. */
    EXPECT(edgerl_generate(0, second, "hi", EDGERL_PROMPT_RAW, 2, 0.0f, 0, out, sizeof out, &needed), EDGERL_OK, NULL);
    EXPECT(edgerl_runtime_free(rt), EDGERL_OK, NULL);
    EXPECT(edgerl_runtime_free(rt), EDGERL_ERR_UNKNOWN_HANDLE, "unknown");
    EXPECT(edgerl_model_load(rt, model_path, &model), EDGERL_ERR_UNKNOWN_HANDLE, "unknown");
    EXPECT(edgerl_session_free(second), EDGERL_OK, NULL);
    require(strcmp(edgerl_status_name(EDGERL_ERR_IO), "EDGERL_ERR_IO") == 0, "status names");
    require(strcmp(edgerl_status_name(12345), "unknown") == 0, "unknown status name");

    if (failures) {
        printf("%d check(s) failed\n", failures);
        return 1;
    }
    printf("all misuse checks passed\n");
    return 0;
}
