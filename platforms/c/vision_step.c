/*
 * A GRPO training step with an image from C: edgerl_session_step_rows_images on a
 * vision-language model (SmolVLM / Idefics3), a TRL row whose {"type": "image"} part takes the
 * app's RGBA pixels and whose target_box a point_in_box rule reads; then the same row naming
 * the image as a file (an "images" column), and the mistakes an app can make. Run by
 * tests/c_abi.rs (also under AddressSanitizer), which compares the adapters with
 * `edgerl train`'s on the same row, image (a PNG of the same pixels), config and seed:
 *
 *   ./vision_step MODEL_DIR IMAGE.rgba WIDTH HEIGHT CONFIG.toml ROWS_JSON ROWS_WITH_FILES_JSON \
 *       TEXT_MODEL_DIR OUT_DIR
 *
 * Writes OUT_DIR/adapter (the pixels' step), OUT_DIR/adapter-files (the file's step, in a
 * fresh session) and OUT_DIR/adapter-again (the first session after the refused steps);
 * prints "all vision step checks passed".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgerl.h"

static int failures = 0;
static char msg[1024];

/* Expects `call` to return `want` and, for errors, a message containing `needle`. */
#define EXPECT(call, want, needle) expect_((call), (want), (needle), #call, __LINE__)

static void expect_(int32_t got, int32_t want, const char *needle, const char *what, int line) {
    size_t len = edgerl_last_error(msg, sizeof msg);
    int ok = got == want && (want == EDGERL_OK ? len == 0 : len > 0 && (!needle || strstr(msg, needle)));
    printf("%s line %d: %s -> %s \"%s\"\n", ok ? "ok  " : "FAIL", line, what, edgerl_status_name(got), msg);
    if (!ok) failures++;
}

static void require(int cond, const char *what) {
    printf("%s %s\n", cond ? "ok  " : "FAIL", what);
    if (!cond) failures++;
}

/* The whole file as a NUL-terminated string (NULL if unreadable); *len its size. */
static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (buf && fread(buf, 1, (size_t)n, f) == (size_t)n) {
        buf[n] = 0;
        *len = (size_t)n;
    } else {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

static void path_in(char *out, size_t cap, const char *dir, const char *name) {
    snprintf(out, cap, "%s/%s", dir, name);
}

int main(int argc, char **argv) {
    if (argc != 10) {
        fprintf(stderr,
                "usage: %s MODEL_DIR IMAGE.rgba WIDTH HEIGHT CONFIG.toml ROWS_JSON ROWS_WITH_FILES_JSON "
                "TEXT_MODEL_DIR OUT_DIR\n",
                argv[0]);
        return 2;
    }
    const char *rows = argv[6], *rows_files = argv[7], *out_dir = argv[9];
    uint32_t w = (uint32_t)atoi(argv[3]), h = (uint32_t)atoi(argv[4]);
    size_t size = (size_t)w * 4 * h, got = 0, config_len = 0;
    uint8_t *pixels = (uint8_t *)slurp(argv[2], &got);
    char *config = slurp(argv[5], &config_len);
    if (!pixels || got != size || !config) {
        fprintf(stderr, "%s: not %ux%u RGBA pixels, or %s unreadable\n", argv[2], w, h, argv[5]);
        return 2;
    }
    char adapter[4096], adapter_files[4096], adapter_again[4096];
    path_in(adapter, sizeof adapter, out_dir, "adapter");
    path_in(adapter_files, sizeof adapter_files, out_dir, "adapter-files");
    path_in(adapter_again, sizeof adapter_again, out_dir, "adapter-again");

    edgerl_runtime rt = 0;
    edgerl_model model = 0, text_model = 0;
    edgerl_session session = 0, text_session = 0;
    EXPECT(edgerl_runtime_create(NULL, 0, &rt), EDGERL_OK, NULL);
    EXPECT(edgerl_model_load(rt, argv[1], &model), EDGERL_OK, NULL);
    EXPECT(edgerl_session_create(model, config, &session), EDGERL_OK, NULL);
    if (failures) return 1;

    /* One step: the row's image place takes the pixels. */
    edgerl_image image = {pixels, w, h, 0};
    edgerl_step_metrics m;
    memset(&m, 0, sizeof m);
    EXPECT(edgerl_session_step_rows_images(session, rows, &image, 1, NULL, NULL, &m), EDGERL_OK, NULL);
    printf("step %llu: reward %.4f (std %.4f), loss %.6f, grad_norm %.4f, %.2f s\n", (unsigned long long)m.step,
           m.reward_mean, m.reward_std, m.loss, m.grad_norm, m.seconds);
    require(m.step == 1, "one optimizer step taken");
    EXPECT(edgerl_session_save_adapter(session, adapter), EDGERL_OK, NULL);

    /* Misuse: each refused before anything is sampled, nothing trained, no metrics written. */
    edgerl_image two[2] = {image, image}, bad = image;
    m.step = 99;
    EXPECT(edgerl_session_step_rows_images(session, rows, NULL, 0, NULL, NULL, &m), EDGERL_ERR_INVALID_ARGUMENT,
           "0 images for 1 image places");
    EXPECT(edgerl_session_step_rows(session, rows, NULL, NULL, &m), EDGERL_ERR_INVALID_ARGUMENT, "rows_json[0]: 1");
    EXPECT(edgerl_session_step_rows_images(session, rows, two, 2, NULL, NULL, &m), EDGERL_ERR_INVALID_ARGUMENT,
           "2 images for 1 image places");
    EXPECT(edgerl_session_step_rows_images(session, rows, NULL, 1, NULL, NULL, &m), EDGERL_ERR_INVALID_ARGUMENT,
           "`images` is NULL");
    bad.stride_bytes = w * 4 - 1;
    EXPECT(edgerl_session_step_rows_images(session, rows, &bad, 1, NULL, NULL, &m), EDGERL_ERR_INVALID_ARGUMENT,
           "images[0]: `stride_bytes`");
    bad = image;
    bad.rgba = NULL;
    EXPECT(edgerl_session_step_rows_images(session, rows, &bad, 1, NULL, NULL, &m), EDGERL_ERR_INVALID_ARGUMENT,
           "images[0]: `rgba` is NULL");
    EXPECT(edgerl_session_step_rows_images(session, NULL, &image, 1, NULL, NULL, &m), EDGERL_ERR_INVALID_ARGUMENT,
           "rows_json");
    /* A row naming its file takes no pixels from the array; a missing file is an I/O error. */
    EXPECT(edgerl_session_step_rows_images(session, rows_files, &image, 1, NULL, NULL, &m),
           EDGERL_ERR_INVALID_ARGUMENT, "1 images for 0 image places");
    const char *missing =
        "[{\"prompt\": \"User:<image>Tap.<end_of_utterance>\\nAssistant:\", \"images\": [\"no-such-image.png\"],"
        " \"target_box\": [0, 0, 10, 10]}]";
    EXPECT(edgerl_session_step_rows_images(session, missing, NULL, 0, NULL, NULL, &m), EDGERL_ERR_IO,
           "no-such-image.png");
    const char *miscounted =
        "[{\"prompt\": \"<image><image>Tap.\", \"images\": [\"a.png\"], \"target_box\": [0, 0, 10, 10]}]";
    EXPECT(edgerl_session_step_rows_images(session, miscounted, NULL, 0, NULL, NULL, &m),
           EDGERL_ERR_INVALID_ARGUMENT, "rows_json[0]: 1 images for 2 image places");
    /* Two rows: the second row's place is counted too. */
    char two_rows[8192];
    snprintf(two_rows, sizeof two_rows, "[%.*s, %s", (int)strlen(rows) - 2, rows + 1, rows + 1);
    EXPECT(edgerl_session_step_rows_images(session, two_rows, &image, 1, NULL, NULL, &m),
           EDGERL_ERR_INVALID_ARGUMENT, "rows_json[1]: 1");
    require(m.step == 99, "a refused step writes no metrics");
    EXPECT(edgerl_session_save_adapter(session, adapter_again), EDGERL_OK, NULL);
    EXPECT(edgerl_session_free(session), EDGERL_OK, NULL);

    /* The same step from the image file (a fresh session on the model handed back). */
    EXPECT(edgerl_session_create(model, config, &session), EDGERL_OK, NULL);
    EXPECT(edgerl_session_step_rows(session, rows_files, NULL, NULL, &m), EDGERL_OK, NULL);
    EXPECT(edgerl_session_save_adapter(session, adapter_files), EDGERL_OK, NULL);
    EXPECT(edgerl_session_free(session), EDGERL_OK, NULL);

    /* A text model takes no images, as pixels or as files. */
    EXPECT(edgerl_model_load(rt, argv[8], &text_model), EDGERL_OK, NULL);
    EXPECT(edgerl_session_create(text_model, config, &text_session), EDGERL_OK, NULL);
    EXPECT(edgerl_session_step_rows_images(text_session, rows, &image, 1, NULL, NULL, &m),
           EDGERL_ERR_INVALID_ARGUMENT, "no vision tower");
    EXPECT(edgerl_session_step_rows(text_session, rows_files, NULL, NULL, &m), EDGERL_ERR_INVALID_ARGUMENT,
           "no vision tower");
    EXPECT(edgerl_session_free(text_session), EDGERL_OK, NULL);
    EXPECT(edgerl_model_free(text_model), EDGERL_OK, NULL);

    EXPECT(edgerl_model_free(model), EDGERL_OK, NULL);
    EXPECT(edgerl_runtime_free(rt), EDGERL_OK, NULL);
    free(pixels);
    free(config);
    if (failures) {
        printf("%d vision step checks failed\n", failures);
        return 1;
    }
    printf("all vision step checks passed\n");
    return 0;
}
