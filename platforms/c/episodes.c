/*
 * Multi-turn episodes from C: the model acts, the app answers with observations, each episode
 * gets one reward at its end, and two GRPO steps train the adapter on groups of episodes. Also
 * shows the log and progress callbacks.
 *
 *   cargo build --release
 *   gcc platforms/c/episodes.c -Iplatforms/c target/release/libedgerl.a \
 *       -ldl -lgcc_s -lutil -lrt -lpthread -lm -lc -o episodes
 *   ./episodes tests/fixtures/models/qwen3_f16 /tmp/adapter [/tmp/adapter-before]
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "edgerl.h"

#define CHECK(call)                                                                    \
    do {                                                                               \
        int32_t rc_ = (call);                                                          \
        if (rc_ != EDGERL_OK) {                                                        \
            char msg_[512];                                                            \
            edgerl_last_error(msg_, sizeof msg_);                                      \
            fprintf(stderr, "%s failed: %s: %s\n", #call, edgerl_status_name(rc_), msg_); \
            return 1;                                                                  \
        }                                                                              \
    } while (0)

#define TASKS 2
#define GROUP 4 /* episodes per task: one GRPO group */
#define TURNS 2 /* acts per episode */

/* Log records: counts edgerl's per-step lines and prints them. */
static int step_lines = 0;
static void on_log(void *user_data, int32_t level, const char *message) {
    (void)user_data;
    if (level <= EDGERL_LOG_INFO && strstr(message, "edgerl") == message) {
        printf("log: %s\n", message);
        if (strstr(message, ": step ")) step_lines++;
    }
}

/* Progress: counts the update reports; 0 = keep going. */
static int32_t on_progress(void *user_data, int32_t phase, size_t done, size_t total) {
    int *updates = user_data;
    if (phase == EDGERL_PHASE_UPDATE) {
        printf("progress: update %zu/%zu\n", done, total);
        (*updates)++;
    }
    return 0;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The environment's score of one act: the share of letters 'e' and 'a' (a GUI agent would
 * check whether the tap opened the right screen). */
static double letters(const char *text) {
    size_t n = strlen(text), hits = 0;
    for (size_t i = 0; i < n; i++) hits += text[i] == 'e' || text[i] == 'a';
    return n ? (double)hits / (double)n : 0.0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL ADAPTER_OUT_DIR [ADAPTER_BEFORE_DIR]\n", argv[0]);
        return 2;
    }
    CHECK(edgerl_set_log_callback(on_log, NULL, EDGERL_LOG_INFO));
    edgerl_runtime rt = 0;
    edgerl_model model = 0;
    edgerl_session session = 0;
    CHECK(edgerl_runtime_create(NULL, 0, &rt));
    CHECK(edgerl_model_load(rt, argv[1], &model));
    const char *config =
        "max_completion_length = 6\n"
        "temperature = 1.0\n"
        "learning_rate = 0.05\n"
        "optimizer = \"adamw\"\n"
        "loss_type = \"dapo\"\n"
        "seed = 7\n"
        "[lora]\n"
        "r = 4\n"
        "alpha = 8\n";
    CHECK(edgerl_session_create(model, config, &session));
    int updates = 0;
    CHECK(edgerl_session_set_progress(session, on_progress, &updates));
    if (argc > 3) CHECK(edgerl_session_save_adapter(session, argv[3]));

    const char *tasks[TASKS] = {"Open the settings.", "Find the clock."};
    double act_seconds = 0.0;
    for (int step = 0; step < 2; step++) {
        edgerl_episode eps[TASKS * GROUP];
        double rewards[TASKS * GROUP];
        for (int i = 0; i < TASKS * GROUP; i++) {
            CHECK(edgerl_episode_begin(session, tasks[i / GROUP], EDGERL_PROMPT_CHAT, &eps[i]));
            double score = 0.0;
            for (int turn = 0; turn < TURNS; turn++) {
                char action[256];
                double t0 = now();
                CHECK(edgerl_episode_act(eps[i], 0, action, sizeof action, NULL));
                act_seconds += now() - t0;
                score += letters(action);
                if (turn + 1 < TURNS) {
                    char screen[300];
                    snprintf(screen, sizeof screen, "Screen after \"%s\": a list of apps.", action);
                    CHECK(edgerl_episode_observe(eps[i], screen));
                }
            }
            rewards[i] = score / TURNS; /* one reward for the whole episode */
        }
        edgerl_step_metrics m;
        CHECK(edgerl_session_step_episodes(session, eps, rewards, TASKS * GROUP, GROUP, &m));
        printf("step %llu: reward %.4f (std %.4f), loss %.6f, grad_norm %.4f, "
               "mean act tokens %.2f, %.2f s\n",
               (unsigned long long)m.step, m.reward_mean, m.reward_std, m.loss, m.grad_norm,
               m.completion_mean_length, m.seconds);
        for (int i = 0; i < TASKS * GROUP; i++) CHECK(edgerl_episode_free(eps[i]));
    }
    CHECK(edgerl_session_save_adapter(session, argv[2]));
    printf("acts: %d in %.2f s\n", 2 * TASKS * GROUP * TURNS, act_seconds);
    printf("progress update reports: %d, log step lines: %d\n", updates, step_lines);
    CHECK(edgerl_session_free(session));
    CHECK(edgerl_model_free(model));
    CHECK(edgerl_runtime_free(rt));
    CHECK(edgerl_set_log_callback(NULL, NULL, EDGERL_LOG_INFO));
    /* One update per step (num_iterations = 1): a report before it and one after. */
    return updates == 2 * 2 && step_lines == 2 ? 0 : 1;
}
