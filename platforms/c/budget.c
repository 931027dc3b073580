/*
 * The runtime's memory budget and adapter choice from C: a budget below a model's weights
 * fails its load with EDGERL_ERR_GPU (nothing left allocated, the runtime still loads a
 * smaller model); a budget that holds the model but not the configured whole-group step runs
 * the step with the pack the plan shrank, its peak within the budget and below the
 * unbudgeted one; a budget that holds no step fails it before sampling, adapter unchanged;
 * "BACKEND:ADAPTER" picks an adapter, and one that matches nothing is a clear error.
 * Every budget is measured here, from an unbudgeted run of the same work; runs under a budget
 * give the same loss and gradient norm as without.
 * Run by tests/c_abi.rs (also under AddressSanitizer):
 *
 *   ./budget tests/fixtures/models SCRATCH_DIR BACKEND:ADAPTER
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgerl.h"

static int failures = 0;
static char msg[2048];

static void require(int cond, const char *what) {
    printf("%s %s\n", cond ? "ok  " : "FAIL", what);
    if (!cond) failures++;
}

/* Expects `got` to be `want`, and for errors a message containing each of the needles. */
static void expect(int32_t got, int32_t want, const char *what, const char *needle1,
                   const char *needle2) {
    edgerl_last_error(msg, sizeof msg);
    int ok = got == want;
    if (ok && want != EDGERL_OK)
        ok = (!needle1 || strstr(msg, needle1)) && (!needle2 || strstr(msg, needle2));
    printf("%s %s -> %s \"%s\"\n", ok ? "ok  " : "FAIL", what, edgerl_status_name(got), msg);
    if (!ok) failures++;
}

#define MUST(call)                                                                     \
    do {                                                                               \
        int32_t rc_ = (call);                                                          \
        if (rc_ != EDGERL_OK) {                                                        \
            edgerl_last_error(msg, sizeof msg);                                        \
            fprintf(stderr, "%s: %s: %s\n", #call, edgerl_status_name(rc_), msg);      \
            exit(1);                                                                   \
        }                                                                              \
    } while (0)

static int reward(void *user_data, size_t p, size_t c, const char *completion, double *out) {
    (void)p;
    int *calls = user_data;
    ++*calls;
    *out = (double)(strlen(completion) % 5) + (double)c * 0.1;
    return 0;
}

/* The planner's log line when it changed a step's knobs. */
static int plan_lines = 0;
static void on_log(void *user_data, int32_t level, const char *message) {
    (void)user_data;
    (void)level;
    if (strstr(message, "memory budget: this step runs with") && strstr(message, "pack size")) {
        printf("log: %s\n", message);
        plan_lines++;
    }
}

static const char *CONFIG = "num_generations = 8\n"
                            "max_completion_length = 12\n"
                            "gradient_checkpointing = false\n"
                            "temperature = 1.0\n"
                            "learning_rate = 0.05\n"
                            "seed = 3\n"
                            "[lora]\n"
                            "r = 4\n"
                            "alpha = 8\n";
/* Episodes' acts draw from a stream named by the episode's handle, which differs between
 * runs: top_k = 1 makes them the same, so that runs can be compared (the episodes differ in
 * their acts' lengths). */
static const char *EPISODE_CONFIG = "num_generations = 4\n"
                                    "max_completion_length = 12\n"
                                    "gradient_checkpointing = false\n"
                                    "top_k = 1\n"
                                    "learning_rate = 0.05\n"
                                    "[lora]\n"
                                    "r = 4\n"
                                    "alpha = 8\n";
static const char *PROMPTS[] = {"Name a fruit."};

struct mem {
    uint64_t live, peak;
};

static struct mem memory(edgerl_runtime rt) {
    struct mem m = {0, 0};
    MUST(edgerl_runtime_memory(rt, &m.live, &m.peak, NULL));
    return m;
}

static char *slurp(const char *path, long *size) {
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
    char *x = slurp(a, &na), *y = slurp(b, &nb);
    int same = x && y && na == nb && na > 0 && memcmp(x, y, (size_t)na) == 0;
    free(x);
    free(y);
    return same;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s MODELS_DIR SCRATCH_DIR BACKEND:ADAPTER\n", argv[0]);
        return 2;
    }
    char small[1024], big[1024], before[1024], after[1024], file_a[1100], file_b[1100];
    snprintf(small, sizeof small, "%s/qwen3_f16", argv[1]);
    snprintf(big, sizeof big, "%s/llama_f32", argv[1]);
    snprintf(before, sizeof before, "%s/before", argv[2]);
    snprintf(after, sizeof after, "%s/after", argv[2]);
    MUST(edgerl_set_log_callback(on_log, NULL, EDGERL_LOG_INFO));

    /* Unbudgeted: the small model's weights, the session's weights and adapter, the peak of
     * one whole-group step; then the big model's weights. */
    edgerl_runtime rt = 0;
    edgerl_model model = 0;
    edgerl_session session = 0;
    int calls = 0;
    MUST(edgerl_runtime_create(NULL, 0, &rt));
    MUST(edgerl_model_load(rt, small, &model));
    uint64_t small_weights = memory(rt).live;
    MUST(edgerl_session_create(model, CONFIG, &session));
    uint64_t session_held = memory(rt).live;
    edgerl_step_metrics free_m;
    MUST(edgerl_session_step(session, PROMPTS, 1, EDGERL_PROMPT_CHAT, reward, &calls, &free_m));
    uint64_t free_peak = memory(rt).peak;
    MUST(edgerl_session_free(session));
    MUST(edgerl_model_free(model));
    require(memory(rt).live == 0, "unbudgeted: everything freed");
    MUST(edgerl_model_load(rt, big, &model));
    uint64_t big_weights = memory(rt).live;
    MUST(edgerl_model_free(model));
    MUST(edgerl_runtime_free(rt));
    printf("measured: small weights %llu, session %llu, step peak %llu, big weights %llu\n",
           (unsigned long long)small_weights, (unsigned long long)session_held,
           (unsigned long long)free_peak, (unsigned long long)big_weights);
    require(small_weights < big_weights && session_held < free_peak, "measurements ordered");

    /* A budget between the two models' weights: the big one fails, nothing stays allocated,
     * the small one loads. */
    uint64_t budget = small_weights + (big_weights - small_weights) / 2;
    MUST(edgerl_runtime_create(NULL, budget, &rt));
    uint64_t reported = 0;
    MUST(edgerl_runtime_memory(rt, NULL, NULL, &reported));
    require(reported == budget, "edgerl_runtime_memory reports the budget");
    model = 0;
    expect(edgerl_model_load(rt, big, &model), EDGERL_ERR_GPU, "load above the budget",
           "out of memory allocating", "memory budget");
    require(model == 0 && memory(rt).live == 0, "failed load: no handle, nothing allocated");
    MUST(edgerl_model_load(rt, small, &model));
    require(memory(rt).live == small_weights, "the small model loads on the same runtime");
    MUST(edgerl_model_free(model));
    MUST(edgerl_runtime_free(rt));

    /* A budget that holds the session but not the configured step (three quarters of the
     * unbudgeted step's transient bytes): the plan shrinks the pack, the step runs within. */
    budget = session_held + (free_peak - session_held) * 3 / 4;
    MUST(edgerl_runtime_create(NULL, budget, &rt));
    MUST(edgerl_model_load(rt, small, &model));
    MUST(edgerl_session_create(model, CONFIG, &session));
    calls = 0;
    edgerl_step_metrics m;
    expect(edgerl_session_step(session, PROMPTS, 1, EDGERL_PROMPT_CHAT, reward, &calls, &m),
           EDGERL_OK, "step under a budget below the whole-group peak", NULL, NULL);
    struct mem b = memory(rt);
    printf("budget %llu: peak %llu (unbudgeted %llu), %d reward calls, loss %g\n",
           (unsigned long long)budget, (unsigned long long)b.peak,
           (unsigned long long)free_peak, calls, m.loss);
    require(calls == 8 && m.step == 1, "the step sampled and trained");
    printf("loss %.9g vs unbudgeted %.9g, grad_norm %.9g vs %.9g, reward %.9g vs %.9g\n",
           m.loss, free_m.loss, m.grad_norm, free_m.grad_norm, m.reward_mean,
           free_m.reward_mean);
    require(m.reward_mean == free_m.reward_mean && m.completion_mean_length ==
                free_m.completion_mean_length, "the same completions as unbudgeted");
    require(fabs(m.loss - free_m.loss) <= 1e-5 * (1.0 + fabs(free_m.loss)) &&
                free_m.grad_norm > 0 &&
                fabs(m.grad_norm - free_m.grad_norm) <= 1e-4 * free_m.grad_norm,
            "the same loss and gradient as unbudgeted");
    require(plan_lines == 1, "the plan changed the pack size (logged)");
    require(b.peak <= budget && b.peak < free_peak, "peak within the budget, below unbudgeted");
    /* The plan follows the step's prompts: a long one does not fit. What the session holds
     * now (its Adam moments too) is not counted as another's. */
    size_t unit = strlen(PROMPTS[0]) + 1, reps = 400;
    char *long_prompt = malloc(unit * reps + 1);
    for (size_t i = 0; i < reps; i++) snprintf(long_prompt + i * unit, unit + 1, "%s ", PROMPTS[0]);
    const char *long_prompts[] = {PROMPTS[0], long_prompt};
    calls = 0;
    expect(edgerl_session_step(session, long_prompts, 2, EDGERL_PROMPT_CHAT, reward, &calls, &m),
           EDGERL_ERR_GPU, "step with a long prompt", "cannot be met",
           "(0 bytes) is held by other models");
    require(calls == 0, "long prompt: nothing sampled");
    free(long_prompt);
    MUST(edgerl_session_free(session));
    MUST(edgerl_model_free(model));
    MUST(edgerl_runtime_free(rt));

    /* A budget that holds another model and the session, nothing more: no step fits; it
     * fails before sampling (no reward call) with the planner's reason and what the other
     * model holds, and the adapter is unchanged. */
    edgerl_model other = 0;
    MUST(edgerl_runtime_create(NULL, small_weights + session_held, &rt));
    MUST(edgerl_model_load(rt, small, &other));
    MUST(edgerl_model_load(rt, small, &model));
    MUST(edgerl_session_create(model, CONFIG, &session));
    MUST(edgerl_session_save_adapter(session, before));
    calls = 0;
    char held[128];
    snprintf(held, sizeof held, "(%llu bytes) is held by other models",
             (unsigned long long)small_weights);
    expect(edgerl_session_step(session, PROMPTS, 1, EDGERL_PROMPT_CHAT, reward, &calls, NULL),
           EDGERL_ERR_GPU, "step under a budget no plan meets", "cannot be met", held);
    require(strstr(msg, "nothing sampled, adapter unchanged") != NULL, "the message says so");
    require(calls == 0, "no completion was sampled");
    require(memory(rt).live == small_weights + session_held,
            "nothing left allocated by the failed step");
    MUST(edgerl_session_save_adapter(session, after));
    snprintf(file_a, sizeof file_a, "%s/adapter_model.safetensors", before);
    snprintf(file_b, sizeof file_b, "%s/adapter_model.safetensors", after);
    require(same_file(file_a, file_b), "adapter unchanged");
    MUST(edgerl_session_free(session));
    MUST(edgerl_model_free(model));
    MUST(edgerl_model_free(other));
    MUST(edgerl_runtime_free(rt));

    /* Episodes (four of one task, one act each): unbudgeted; then a budget three quarters
     * of the way from the session's bytes to that step's peak (the acts fit, the whole
     * group does not: the plan shrinks it); then the acts' peak alone (no step fits: it
     * fails with the planner's reason, adapter unchanged). */
    uint64_t ep_held = 0, acts_peak = 0, ep_peak = 0;
    edgerl_step_metrics ep_free;
    for (int pass = 0; pass < 3; pass++) {
        uint64_t ep_budget = pass == 0   ? 0
                             : pass == 1 ? ep_held + (ep_peak - ep_held) * 3 / 4
                                         : acts_peak;
        MUST(edgerl_runtime_create(NULL, ep_budget, &rt));
        MUST(edgerl_model_load(rt, small, &model));
        MUST(edgerl_session_create(model, EPISODE_CONFIG, &session));
        ep_held = memory(rt).live;
        edgerl_episode eps[4];
        double rewards[4] = {0.0, 1.0, 0.5, 0.25};
        char act[512];
        for (int i = 0; i < 4; i++) {
            MUST(edgerl_episode_begin(session, PROMPTS[0], EDGERL_PROMPT_CHAT, &eps[i]));
            MUST(edgerl_episode_act(eps[i], (uint32_t)(3 + 2 * i), act, sizeof act, NULL));
        }
        if (pass == 0) acts_peak = memory(rt).peak;
        int lines = plan_lines;
        if (pass < 2) {
            MUST(edgerl_session_step_episodes(session, eps, rewards, 4, 4, &m));
            struct mem e = memory(rt);
            printf("episodes, budget %llu: acts peak %llu, step peak %llu, grad_norm %.9g\n",
                   (unsigned long long)ep_budget, (unsigned long long)acts_peak,
                   (unsigned long long)e.peak, m.grad_norm);
            if (pass == 0) {
                ep_peak = e.peak;
                ep_free = m;
            } else {
                require(plan_lines == lines + 1, "episodes: the plan changed the pack (logged)");
                require(e.peak <= ep_budget && e.peak < ep_peak,
                        "episodes: peak within the budget, below unbudgeted");
                require(ep_free.grad_norm > 0 &&
                            fabs(m.grad_norm - ep_free.grad_norm) <= 1e-4 * ep_free.grad_norm,
                        "episodes: the same gradient as unbudgeted");
            }
        } else {
            MUST(edgerl_session_save_adapter(session, before));
            expect(edgerl_session_step_episodes(session, eps, rewards, 4, 4, NULL),
                   EDGERL_ERR_GPU, "episode step under a budget no plan meets", "cannot be met",
                   "step not run (adapter unchanged)");
            MUST(edgerl_session_save_adapter(session, after));
            require(same_file(file_a, file_b), "episodes: adapter unchanged");
        }
        for (int i = 0; i < 4; i++) MUST(edgerl_episode_free(eps[i]));
        MUST(edgerl_session_free(session));
        MUST(edgerl_model_free(model));
        MUST(edgerl_runtime_free(rt));
    }

    /* Adapter choice: an adapter that exists (any case), and one that does not. */
    expect(edgerl_runtime_create(argv[3], 0, &rt), EDGERL_OK, argv[3], NULL, NULL);
    MUST(edgerl_runtime_free(rt));
    const char *any_backend = strchr(argv[3], ':');
    expect(edgerl_runtime_create(any_backend, 0, &rt), EDGERL_OK, any_backend, NULL, NULL);
    MUST(edgerl_runtime_free(rt));
    rt = 0;
    expect(edgerl_runtime_create("vulkan:nonexistent", 0, &rt), EDGERL_ERR_GPU,
           "vulkan:nonexistent", "\"nonexistent\"", "found [");
    require(rt == 0, "no runtime for an adapter that matches nothing");
    expect(edgerl_runtime_create("warp:x", 0, &rt), EDGERL_ERR_INVALID_ARGUMENT,
           "unknown backend", "unknown backend", NULL);
    MUST(edgerl_set_log_callback(NULL, NULL, EDGERL_LOG_INFO));

    if (failures) {
        printf("%d budget checks FAILED\n", failures);
        return 1;
    }
    printf("all budget checks passed\n");
    return 0;
}
