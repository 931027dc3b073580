/*
 * edgerl from C with rule rewards and per-prompt data, no callback: each prompt comes as a
 * dataset row (TRL style) with its `target_box`, which the config's point_in_box rule reads.
 * Two GRPO steps, then the adapter is saved; a row without its target is refused.
 *
 *   cargo build --release
 *   gcc platforms/c/rows.c -Iplatforms/c target/release/libedgerl.a \
 *       -ldl -lgcc_s -lutil -lrt -lpthread -lm -lc -o rows
 *   ./rows tests/fixtures/models/qwen3_f16 /tmp/adapter [/tmp/adapter-before]
 */
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

    /* The GUI agent's rules: the clicked point lies in the row's target_box (point_in_box),
     * plus a rule a model with random weights satisfies now and then, so that the groups
     * have some variance to learn from. */
    const char *config =
        "num_generations = 4\n"
        "max_completion_length = 12\n"
        "temperature = 1.0\n"
        "top_k = 50\n"
        "stop = [\"\\n\\n\"]\n"
        "learning_rate = 5e-3\n"
        "optimizer = \"adamw\"\n"
        "loss_type = \"dapo\"\n"
        "seed = 1\n"
        "[lora]\n"
        "r = 8\n"
        "alpha = 16\n"
        "[[rewards]]\n"
        "type = \"point_in_box\"\n"
        "name = \"hit\"\n"
        "extract = \"regex\"\n"
        "pattern = 'click\\((\\d+),\\s*(\\d+)\\)'\n"
        "target = \"target_box\"\n"
        "weight = 0.8\n"
        "[[rewards]]\n"
        "type = \"regex\"\n"
        "name = \"has_e\"\n"
        "pattern = '.*e.*'\n"
        "weight = 0.1\n";
    CHECK(edgerl_session_create(model, config, &session));
    if (argc > 3) CHECK(edgerl_session_save_adapter(session, argv[3]));

    /* One JSON object per prompt, as a line of a TRL prompt dataset: a chat prompt (message
     * list) or a plain-text one, and the row's own target. */
    const char *rows =
        "[{\"prompt\": [{\"role\": \"user\", \"content\": \"Tap the Send button. Screen: [Send "
        "(10,20,60,40)] [Back (0,0,8,8)]. Answer with click(x, y).\"}], \"target_box\": [10, 20, 60, 40]},"
        " {\"prompt\": \"Screen: [OK (100,200,180,240)]. Instruction: press OK. Action:\", "
        "\"target_box\": [100, 200, 180, 240]}]";
    for (int step = 0; step < 2; step++) {
        edgerl_step_metrics m;
        CHECK(edgerl_session_step_rows(session, rows, NULL, NULL, &m));
        printf("step %llu: reward %.4f (std %.4f), loss %.6f, grad_norm %.4f, %.2f s\n",
               (unsigned long long)m.step, m.reward_mean, m.reward_std, m.loss, m.grad_norm,
               m.seconds);
    }
    CHECK(edgerl_session_save_adapter(session, argv[2]));

    /* Rows are checked like dataset lines before anything is sampled: nothing is trained. */
    int bad = 0;
    edgerl_step_metrics m;
    m.step = 99;
    bad |= expect_fail(edgerl_session_step_rows(session,
                                                "[{\"prompt\": \"a\", \"target_box\": [1, 2, 3, 4]},"
                                                " {\"prompt\": \"no box\"}]",
                                                NULL, NULL, &m),
                       EDGERL_ERR_INVALID_ARGUMENT, "rows_json[1]", "target_box", "a row without its target");
    bad |= expect_fail(edgerl_session_step_rows(session, "[{\"prompt\": \"a\", \"target_box\": \"left\"}]",
                                                NULL, NULL, &m),
                       EDGERL_ERR_INVALID_ARGUMENT, "rows_json[0]", "target_box", "a target the rule cannot read");
    bad |= expect_fail(edgerl_session_step_rows(session, "{\"prompt\": \"a\"}", NULL, NULL, &m),
                       EDGERL_ERR_INVALID_ARGUMENT, "rows_json", "array", "rows that are not an array");
    bad |= expect_fail(edgerl_session_step_rows(session, "[{\"target_box\": [1, 2, 3, 4]}]", NULL, NULL, &m),
                       EDGERL_ERR_INVALID_ARGUMENT, "rows_json[0]", "prompt", "a row without a prompt");
    bad |= expect_fail(edgerl_session_step_rows(session, "[]", NULL, NULL, &m),
                       EDGERL_ERR_INVALID_ARGUMENT, "rows_json", "empty", "no rows");
    bad |= expect_fail(edgerl_session_step_rows(session, NULL, NULL, NULL, &m),
                       EDGERL_ERR_INVALID_ARGUMENT, "rows_json", "NULL", "NULL rows");
    if (m.step != 99) {
        fprintf(stderr, "FAIL: a refused step wrote metrics\n");
        bad = 1;
    }
    /* The refused steps trained nothing: the adapter is the one saved after step 2. */
    char again[4096];
    snprintf(again, sizeof again, "%s-again", argv[2]);
    CHECK(edgerl_session_save_adapter(session, again));

    CHECK(edgerl_session_free(session));
    CHECK(edgerl_model_free(model));
    CHECK(edgerl_runtime_free(rt));
    if (!bad) printf("all rows checks passed\n");
    return bad;
}
