/*
 * edgerl from C: a supervised warm start in a session (edgerl_session_sft_step, TRL
 * SFTTrainer's loss on TRL rows), then a GRPO step in the same session. Four SFT steps on two
 * conversations lower the loss; the adapter is saved; bad rows are refused, naming the row,
 * and train nothing.
 *
 *   cargo build --release
 *   gcc platforms/c/sft.c -Iplatforms/c target/release/libedgerl.a \
 *       -ldl -lgcc_s -lutil -lrt -lpthread -lm -lc -o sft
 *   ./sft tests/fixtures/models/qwen3_f16 /tmp/adapter [/tmp/adapter-before]
 *
 * Also writes ADAPTER-again (after the refused calls: the same as ADAPTER).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

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

/* Expects `call` to fail with `status` and a message containing both needles. */
static int expect_fail(int32_t rc, int32_t status, const char *needle1, const char *needle2,
                       const char *what) {
    char msg[512];
    edgerl_last_error(msg, sizeof msg);
    if (rc != status || !strstr(msg, needle1) || !strstr(msg, needle2)) {
        fprintf(stderr, "FAIL %s: %s: %s\n", what, edgerl_status_name(rc), msg);
        return 1;
    }
    printf("ok: %s -> %s: %s\n", what, edgerl_status_name(rc), msg);
    return 0;
}

/* Counts the update-phase progress reports. */
static int32_t on_progress(void *user, int32_t phase, size_t done, size_t total) {
    (void)done;
    (void)total;
    if (phase == EDGERL_PHASE_UPDATE) ++*(int *)user;
    return 0;
}

/* The GRPO step's reward: 1 for a completion that contains a digit. */
static int32_t has_digit(void *user, size_t p, size_t c, const char *completion, double *reward) {
    (void)user;
    (void)p;
    (void)c;
    *reward = strpbrk(completion, "0123456789") ? 1.0 : 0.0;
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

    int bad = 0;
    /* Batch sizes belong to `edgerl sft`'s dataset loop: a session trains each call's rows. */
    bad |= expect_fail(edgerl_session_create(model, "per_device_train_batch_size = 4\n", &session),
                       EDGERL_ERR_INVALID_ARGUMENT, "per_device_train_batch_size", "session",
                       "a batch size in a session config");

    /* One config for both kinds of step: the SFT keys (TRL SFTConfig names) and the GRPO ones. */
    const char *config =
        "learning_rate = 5e-3\n"
        "optimizer = \"adamw\"\n"
        "seed = 1\n"
        "assistant_only_loss = true\n"
        "max_length = 96\n"
        "num_generations = 4\n"
        "max_completion_length = 8\n"
        "temperature = 1.0\n"
        "[lora]\n"
        "r = 8\n"
        "alpha = 16\n";
    CHECK(edgerl_session_create(model, config, &session));
    if (argc > 3) CHECK(edgerl_session_save_adapter(session, argv[3]));
    int reports = 0;
    CHECK(edgerl_session_set_progress(session, on_progress, &reports));

    /* Example turns, as lines of a TRL conversational dataset: only the assistant's tokens
     * are trained (assistant_only_loss). */
    const char *rows =
        "[{\"messages\": [{\"role\": \"user\", \"content\": \"Tap Send. Screen: [Send (10,20,60,40)]\"},"
        " {\"role\": \"assistant\", \"content\": \"click(35, 30)\"}]},"
        " {\"messages\": [{\"role\": \"system\", \"content\": \"You control a phone.\"},"
        " {\"role\": \"user\", \"content\": \"Press OK. Screen: [OK (100,200,180,240)]\"},"
        " {\"role\": \"assistant\", \"content\": \"click(140, 220)\"}]}]";
    double first = NAN, last = NAN;
    for (int step = 0; step < 4; step++) {
        edgerl_sft_metrics m;
        CHECK(edgerl_session_sft_step(session, rows, &m));
        printf("sft step %llu: loss %.6f, grad_norm %.4f, accuracy %.3f, %llu trained of %llu tokens, %.2f s\n",
               (unsigned long long)m.step, m.loss, m.grad_norm, m.mean_token_accuracy,
               (unsigned long long)m.trained_tokens, (unsigned long long)m.num_tokens, m.seconds);
        if (m.step != (uint64_t)step + 1 || !isfinite(m.loss) || !(m.grad_norm > 0) ||
            m.trained_tokens == 0 || m.num_tokens < (uint64_t)(step + 1) * m.trained_tokens) {
            fprintf(stderr, "FAIL: sft step %d metrics\n", step + 1);
            bad = 1;
        }
        if (step == 0) first = m.loss;
        last = m.loss;
    }
    if (!(last < first)) {
        fprintf(stderr, "FAIL: the loss did not fall: %.6f -> %.6f\n", first, last);
        bad = 1;
    }
    if (reports != 2 * 4) {
        fprintf(stderr, "FAIL: %d update progress reports, want 8 (0/1 and 1/1 a step)\n", reports);
        bad = 1;
    }
    CHECK(edgerl_session_set_progress(session, NULL, NULL));
    CHECK(edgerl_session_save_adapter(session, argv[2]));

    /* Rows are checked and tokenized before anything is trained. */
    edgerl_sft_metrics m;
    m.step = 99;
    bad |= expect_fail(edgerl_session_sft_step(session,
                                               "[{\"text\": \"one\"}, {\"prompt\": \"no completion\"}]", &m),
                       EDGERL_ERR_INVALID_ARGUMENT, "rows_json[1]", "completion", "a prompt without a completion");
    bad |= expect_fail(edgerl_session_sft_step(session, "[{\"text\": \"plain text\"}]", &m),
                       EDGERL_ERR_INVALID_ARGUMENT, "rows_json[0]", "assistant_only_loss",
                       "assistant_only_loss on plain text");
    bad |= expect_fail(edgerl_session_sft_step(session,
                                               "[{\"messages\": [{\"role\": \"user\", \"content\": \"a\"},"
                                               " {\"role\": \"assistant\", \"content\": \"b\"}]},"
                                               " {\"prompt\": \"a\", \"completion\": \"b\"}]", &m),
                       EDGERL_ERR_INVALID_ARGUMENT, "rows_json[1]", "format", "rows of two formats");
    bad |= expect_fail(edgerl_session_sft_step(session,
                                               "[{\"messages\": [{\"role\": \"user\", \"content\": \"no answer\"}]}]", &m),
                       EDGERL_ERR_INVALID_ARGUMENT, "rows_json[0]", "assistant", "a row without an assistant turn");
    bad |= expect_fail(edgerl_session_sft_step(session, "{\"text\": \"a\"}", &m),
                       EDGERL_ERR_INVALID_ARGUMENT, "rows_json", "array", "rows that are not an array");
    bad |= expect_fail(edgerl_session_sft_step(session, "[]", &m),
                       EDGERL_ERR_INVALID_ARGUMENT, "rows_json", "empty", "no rows");
    bad |= expect_fail(edgerl_session_sft_step(session, NULL, &m),
                       EDGERL_ERR_INVALID_ARGUMENT, "rows_json", "NULL", "NULL rows");
    if (m.step != 99) {
        fprintf(stderr, "FAIL: a refused step wrote metrics\n");
        bad = 1;
    }
    char again[4096];
    snprintf(again, sizeof again, "%s-again", argv[2]);
    CHECK(edgerl_session_save_adapter(session, again));

    /* The warm-started session goes on with GRPO: same adapter, same optimizer. */
    const char *prompts[] = {"Tap Send. Screen: [Send (10,20,60,40)]"};
    edgerl_step_metrics g;
    CHECK(edgerl_session_step(session, prompts, 1, EDGERL_PROMPT_CHAT, has_digit, NULL, &g));
    printf("grpo step %llu: reward %.4f, loss %.6f\n", (unsigned long long)g.step, g.reward_mean, g.loss);
    if (g.step != 5) {
        fprintf(stderr, "FAIL: the GRPO step after 4 SFT steps is step %llu\n", (unsigned long long)g.step);
        bad = 1;
    }

    CHECK(edgerl_session_free(session));
    CHECK(edgerl_model_free(model));
    CHECK(edgerl_runtime_free(rt));
    if (!bad) printf("all sft checks passed\n");
    return bad;
}
