/*
 * Multi-turn episodes from C with the config's rule rewards and per-episode data, no reward of
 * the app's: each episode begins from a dataset row (TRL style) with its `target_box`, and the
 * point_in_box rule scores the episode's last act against it. With dynamic_sampling on, a
 * step whose groups have too little signal asks for more groups (EDGERL_ERR_MORE_GROUPS), and
 * the app runs them. Then the same with the app's own rewards, where the counts are known, and
 * the errors an app would meet.
 *
 *   cargo build --release
 *   gcc platforms/c/episode_rows.c -Iplatforms/c target/release/libedgerl.a \
 *       -ldl -lgcc_s -lutil -lrt -lpthread -lm -lc -o episode_rows
 *   ./episode_rows tests/fixtures/models/qwen3_f16 /tmp/adapter [/tmp/adapter-before]
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

#define TASKS 2
#define GROUP 4     /* episodes per task: one GRPO group */
#define TURNS 2     /* acts per episode */
#define MAX_GROUPS 8

/* Expects `rc` to be `status` with a message containing both needles. */
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

static int expect(int ok, const char *what) {
    if (!ok) fprintf(stderr, "FAIL: %s\n", what);
    return !ok;
}

/* The tasks: one JSON object each, as a line of a TRL prompt dataset, with its own target. */
static const char *rows[TASKS] = {
    "{\"prompt\": [{\"role\": \"user\", \"content\": \"Tap the Send button. Screen: [Send (10,20,60,40)] "
    "[Back (0,0,8,8)]. Answer with click(x, y).\"}], \"target_box\": [10, 20, 60, 40]}",
    "{\"prompt\": \"Screen: [OK (100,200,180,240)]. Instruction: press OK. Action:\", "
    "\"target_box\": [100, 200, 180, 240]}",
};

/* Runs GROUP episodes of one row into eps: act, the environment answers, act again. */
static int run_group(edgerl_session session, const char *row, edgerl_episode *eps) {
    for (int i = 0; i < GROUP; i++) {
        CHECK(edgerl_episode_begin_row(session, row, &eps[i]));
        for (int turn = 0; turn < TURNS; turn++) {
            char action[256];
            CHECK(edgerl_episode_act(eps[i], 0, action, sizeof action, NULL));
            if (turn + 1 < TURNS) {
                char screen[300];
                snprintf(screen, sizeof screen, "Screen after \"%s\": nothing changed.", action);
                CHECK(edgerl_episode_observe(eps[i], screen));
            }
        }
    }
    return 0;
}

static void free_all(edgerl_episode *eps, size_t n) {
    for (size_t i = 0; i < n; i++) edgerl_episode_free(eps[i]);
}

/* One training step on rule rewards: a group per task, then as many more groups as the session
 * asks for while too few have signal. */
static int rule_step(edgerl_session session, int *next_task) {
    edgerl_episode eps[MAX_GROUPS * GROUP];
    size_t n = 0;
    for (int t = 0; t < TASKS; t++, n += GROUP)
        if (run_group(session, rows[t], &eps[n])) return 1;
    edgerl_step_metrics m;
    int32_t rc = edgerl_session_step_episodes(session, eps, NULL, n, GROUP, &m);
    while (rc == EDGERL_ERR_MORE_GROUPS) {
        char msg[512];
        edgerl_last_error(msg, sizeof msg); /* before the next call, which resets it */
        free_all(eps, n);                   /* the session kept what it needs */
        size_t needed = 0;
        CHECK(edgerl_session_episode_groups_needed(session, &needed));
        printf("more groups: %zu (%s)\n", needed, msg);
        if (needed == 0 || needed > MAX_GROUPS) return 1;
        for (n = 0; n < needed * GROUP; n += GROUP)
            if (run_group(session, rows[(*next_task)++ % TASKS], &eps[n])) return 1;
        rc = edgerl_session_step_episodes(session, eps, NULL, n, GROUP, &m);
    }
    free_all(eps, n);
    CHECK(rc);
    printf("step %llu: reward %.4f (std %.4f), loss %.6f, grad_norm %.4f, mean act tokens %.2f, %.2f s\n",
           (unsigned long long)m.step, m.reward_mean, m.reward_std, m.loss, m.grad_norm,
           m.completion_mean_length, m.seconds);
    return 0;
}

/* GROUP episodes from one plain prompt, one short act each. */
static int acted(edgerl_session session, edgerl_episode *eps) {
    for (int i = 0; i < GROUP; i++) {
        char action[64];
        CHECK(edgerl_episode_begin(session, "Open the settings.", EDGERL_PROMPT_CHAT, &eps[i]));
        CHECK(edgerl_episode_act(eps[i], 3, action, sizeof action, NULL));
    }
    return 0;
}

/* Dynamic sampling with the app's own rewards (known counts): groups whose rewards are all
 * equal are dropped, the app is asked for that many more, and the kept ones train together. */
static int app_reward_rounds(edgerl_session session) {
    int bad = 0;
    edgerl_episode a[2 * GROUP], c[GROUP], d[GROUP];
    if (acted(session, a) || acted(session, a + GROUP) || acted(session, c) || acted(session, d)) return 1;
    const double ab[2 * GROUP] = {1, 0, 0, 1, /* informative */ 1, 1, 1, 1 /* not */};
    const double flat[GROUP] = {0, 0, 0, 0}, one[GROUP] = {0, 1, 0, 0};
    edgerl_step_metrics m;
    m.step = 99;
    size_t needed = 7;
    bad |= expect_fail(edgerl_session_step_episodes(session, a, ab, 2 * GROUP, GROUP, &m), EDGERL_ERR_MORE_GROUPS,
                       "1 of this call's 2 groups", "run 1 more", "one flat group of two");
    CHECK(edgerl_session_episode_groups_needed(session, &needed));
    bad |= expect(needed == 1 && m.step == 99, "one more group needed, nothing trained");
    bad |= expect_fail(edgerl_session_step_episodes(session, c, flat, GROUP, 2, &m), EDGERL_ERR_INVALID_ARGUMENT,
                       "groups of 4", "not 2", "a refill with another group size");
    bad |= expect_fail(edgerl_session_step_episodes(session, c, flat, GROUP, GROUP, &m), EDGERL_ERR_MORE_GROUPS,
                       "refill 1 of max_refill 2", "run 1 more", "a flat refill");
    CHECK(edgerl_session_step_episodes(session, d, one, GROUP, GROUP, &m));
    CHECK(edgerl_session_episode_groups_needed(session, &needed));
    /* The kept groups: a's first {1,0,0,1} and d {0,1,0,0}; the flat ones are dropped. */
    bad |= expect(m.step == 1 && fabs(m.reward_mean - 3.0 / 8.0) < 1e-12 && needed == 0,
                  "the step trained once on the two informative groups (reward 3/8)");
    printf("dynamic step %llu: reward %.4f (std %.4f)\n", (unsigned long long)m.step, m.reward_mean, m.reward_std);

    /* A round whose refills are spent with no signal ends with an error, nothing trained. */
    bad |= expect_fail(edgerl_session_step_episodes(session, c, flat, GROUP, GROUP, &m), EDGERL_ERR_MORE_GROUPS,
                       "0 informative", "run 1 more", "a flat round");
    bad |= expect_fail(edgerl_session_step_episodes(session, d, flat, GROUP, GROUP, &m), EDGERL_ERR_MORE_GROUPS,
                       "refill 1", "run 1 more", "a flat refill");
    bad |= expect_fail(edgerl_session_step_episodes(session, a, flat, GROUP, GROUP, &m), EDGERL_ERR_INVALID_ARGUMENT,
                       "identical rewards", "after 2 refills", "the refills spent");
    CHECK(edgerl_session_episode_groups_needed(session, &needed));
    bad |= expect(needed == 0 && m.step == 1, "the round ended without training");

    /* Without [[rewards]] rules, the app must give rewards. */
    bad |= expect_fail(edgerl_session_step_episodes(session, d, NULL, GROUP, GROUP, &m), EDGERL_ERR_INVALID_ARGUMENT,
                       "`rewards` is NULL", "rules", "no rewards and no rules");
    bad |= expect_fail(edgerl_session_episode_groups_needed(session, NULL), EDGERL_ERR_INVALID_ARGUMENT, "needed",
                       "NULL", "NULL needed");
    free_all(a, 2 * GROUP);
    free_all(c, GROUP);
    free_all(d, GROUP);
    return bad;
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

    /* The GUI agent's rules on the last act: the clicked point lies in the row's target_box,
     * plus a rule a model with random weights satisfies now and then, so that groups have
     * some variance. dynamic_sampling drops the groups without any. */
    const char *config =
        "max_completion_length = 8\n"
        "temperature = 1.0\n"
        "top_k = 50\n"
        "learning_rate = 5e-3\n"
        "optimizer = \"adamw\"\n"
        "loss_type = \"dapo\"\n"
        "dynamic_sampling = true\n"
        "max_refill = 4\n"
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
        "weight = 0.2\n";
    CHECK(edgerl_session_create(model, config, &session));
    if (argc > 3) CHECK(edgerl_session_save_adapter(session, argv[3]));
    int next_task = 0;
    for (int step = 0; step < 2; step++)
        if (rule_step(session, &next_task)) return 1;
    CHECK(edgerl_session_save_adapter(session, argv[2]));

    /* Rows are checked as edgerl_session_step_rows checks them; no episode is made. */
    int bad = 0;
    edgerl_episode ep = 0;
    bad |= expect_fail(edgerl_episode_begin_row(session, "{\"prompt\": \"no box\"}", &ep), EDGERL_ERR_INVALID_ARGUMENT,
                       "row_json", "no `target_box` column", "a row without its target");
    bad |= expect_fail(edgerl_episode_begin_row(session, "{\"prompt\": \"a\", \"target_box\": \"left\"}", &ep),
                       EDGERL_ERR_INVALID_ARGUMENT, "row_json", "target_box", "a target the rule cannot read");
    bad |= expect_fail(edgerl_episode_begin_row(session, "[{\"prompt\": \"a\"}]", &ep), EDGERL_ERR_INVALID_ARGUMENT,
                       "row_json", "object", "a row that is not an object");
    bad |= expect_fail(edgerl_episode_begin_row(session, "{\"prompt\": ", &ep), EDGERL_ERR_INVALID_ARGUMENT,
                       "row_json", "JSON", "a row that is not JSON");
    bad |= expect_fail(edgerl_episode_begin_row(session, "{\"target_box\": [1, 2, 3, 4]}", &ep),
                       EDGERL_ERR_INVALID_ARGUMENT, "row_json", "prompt", "a row without a prompt");
    bad |= expect_fail(edgerl_episode_begin_row(session,
                                                "{\"prompt\": \"<image>Tap.\", \"images\": [\"s.png\"], \"target_box\": [1, 2, 3, 4]}",
                                                &ep),
                       EDGERL_ERR_INVALID_ARGUMENT, "row_json", "no images", "a row with images");
    bad |= expect_fail(edgerl_episode_begin_row(session, NULL, &ep), EDGERL_ERR_INVALID_ARGUMENT, "row_json", "NULL",
                       "NULL row");
    bad |= expect_fail(edgerl_episode_begin_row(session, rows[0], NULL), EDGERL_ERR_INVALID_ARGUMENT, "out", "NULL",
                       "NULL out");
    bad |= expect(ep == 0, "no episode was made");
    /* One group, two rows with the same prompt but other targets: not one task. */
    edgerl_episode pair[2];
    CHECK(edgerl_episode_begin_row(session, "{\"prompt\": \"Tap.\", \"target_box\": [1, 2, 3, 4]}", &pair[0]));
    CHECK(edgerl_episode_begin_row(session, "{\"prompt\": \"Tap.\", \"target_box\": [5, 6, 7, 8]}", &pair[1]));
    char act[64];
    for (int i = 0; i < 2; i++) CHECK(edgerl_episode_act(pair[i], 3, act, sizeof act, NULL));
    edgerl_step_metrics m;
    bad |= expect_fail(edgerl_session_step_episodes(session, pair, NULL, 2, 2, &m), EDGERL_ERR_INVALID_ARGUMENT,
                       "episodes[0..2]", "same row", "a group from two rows");
    free_all(pair, 2);
    char again[4096];
    snprintf(again, sizeof again, "%s-again", argv[2]);
    CHECK(edgerl_session_save_adapter(session, again));
    CHECK(edgerl_session_free(session));

    /* The app's own rewards, no rules: dynamic sampling with known counts. */
    const char *plain =
        "max_completion_length = 4\n"
        "temperature = 1.0\n"
        "learning_rate = 5e-3\n"
        "dynamic_sampling = true\n"
        "max_refill = 2\n"
        "seed = 3\n"
        "[lora]\n"
        "r = 4\n"
        "alpha = 8\n";
    CHECK(edgerl_session_create(model, plain, &session));
    bad |= app_reward_rounds(session);
    CHECK(edgerl_session_free(session));
    CHECK(edgerl_model_free(model));
    CHECK(edgerl_runtime_free(rt));
    if (!bad) printf("all episode rows checks passed\n");
    return bad;
}
