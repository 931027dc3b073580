/*
 * edgerl from C: load a model, train a LoRA adapter for two GRPO steps with rewards computed
 * by the app, save the adapter.
 *
 *   cargo build --release
 *   gcc platforms/c/example.c -Iplatforms/c target/release/libedgerl.a \
 *       -ldl -lgcc_s -lutil -lrt -lpthread -lm -lc -o example
 *   ./example tests/fixtures/models/qwen3_f16 /tmp/adapter [/tmp/adapter-before]
 *
 * argv[3], when given, receives the adapter before training (tests compare the two).
 */
#include <stdio.h>
#include <string.h>

#include "edgerl.h"

/* Prints the failed call's status and message, then leaves main with 1. */
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

/* The app's reward: here, the share of letters 'e' and 'a' in the completion, so the adapter
 * learns to write them. A GUI agent would tap the predicted element and check the screen. */
static int32_t reward(void *user_data, size_t prompt_index, size_t completion_index,
                      const char *completion, double *reward_out) {
    int *calls = user_data;
    size_t n = strlen(completion), hits = 0;
    for (size_t i = 0; i < n; i++) hits += completion[i] == 'e' || completion[i] == 'a';
    *reward_out = n ? (double)hits / (double)n : 0.0;
    (*calls)++;
    (void)prompt_index;
    (void)completion_index;
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL_DIR_OR_GGUF ADAPTER_OUT_DIR [ADAPTER_BEFORE_DIR]\n", argv[0]);
        return 2;
    }
    edgerl_runtime rt = 0;
    edgerl_model model = 0;
    edgerl_session session = 0;
    CHECK(edgerl_runtime_create(NULL, 0, &rt));
    CHECK(edgerl_model_load(rt, argv[1], &model));

    const char *config =
        "num_generations = 4\n"
        "max_completion_length = 8\n"
        "temperature = 1.0\n"
        "learning_rate = 0.05\n"
        "optimizer = \"adamw\"\n"
        "loss_type = \"dapo\"\n"
        "seed = 7\n"
        "[lora]\n"
        "r = 4\n"
        "alpha = 8\n";
    CHECK(edgerl_session_create(model, config, &session));
    if (argc > 3) CHECK(edgerl_session_save_adapter(session, argv[3]));

    const char *prompts[] = {"Name a fruit.", "Say hello."};
    int calls = 0;
    for (int step = 0; step < 2; step++) {
        edgerl_step_metrics m;
        CHECK(edgerl_session_step(session, prompts, 2, EDGERL_PROMPT_CHAT, reward, &calls, &m));
        printf("step %llu: reward %.4f (std %.4f), loss %.6f, grad_norm %.4f, lr %g, "
               "mean length %.2f, %.2f s\n",
               (unsigned long long)m.step, m.reward_mean, m.reward_std, m.loss, m.grad_norm,
               m.learning_rate, m.completion_mean_length, m.seconds);
    }
    printf("reward callback calls: %d\n", calls);

    char text[256];
    size_t needed = 0;
    CHECK(edgerl_generate(0, session, prompts[0], EDGERL_PROMPT_CHAT, 8, 0.0f, 0, text,
                          sizeof text, &needed));
    printf("greedy with the adapter: \"%s\"\n", text);

    float lp[64];
    size_t n = 0;
    CHECK(edgerl_score(model, session, "hello world", lp, 64, &n));
    double total = 0;
    for (size_t i = 0; i < n; i++) total += lp[i];
    printf("score(\"hello world\"): %zu tokens scored, total log-prob %.4f\n", n, total);

    CHECK(edgerl_session_save_adapter(session, argv[2]));
    uint64_t peak = 0;
    CHECK(edgerl_runtime_memory(rt, NULL, &peak, NULL));
    printf("adapter saved to %s; peak GPU memory %.1f MiB\n", argv[2], peak / 1048576.0);

    CHECK(edgerl_session_free(session));
    CHECK(edgerl_model_free(model));
    CHECK(edgerl_runtime_free(rt));
    return calls == 2 * 4 * 2 ? 0 : 1;
}
