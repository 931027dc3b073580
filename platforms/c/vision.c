/*
 * Images from C: edgerl_score_images and edgerl_generate_images on a vision-language model
 * (SmolVLM / Idefics3), with pixels the app holds as RGBA bytes, and the mistakes an app can
 * make with them. Run by tests/c_abi.rs (also under AddressSanitizer), which compares what it
 * writes with `edgerl score / generate --image` on the same image as a PNG:
 *
 *   ./vision MODEL_DIR IMAGE.rgba WIDTH HEIGHT "SCORE TEXT with <image>" "CHAT TEXT" \
 *       TEXT_MODEL_DIR OUT_DIR
 *
 * Writes OUT_DIR/score.f32 (the log-probs, little-endian floats) and OUT_DIR/generate.txt (6
 * greedy tokens after the chat turn with the image); prints "all vision checks passed".
 */
#include <math.h>
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

/* The log-probs of text with the images, asked for in two calls as an app does: the count
 * (cap 0), then the values (handed over, not computed again). NULL on failure. */
static float *score(edgerl_model model, edgerl_session session, const char *text, const edgerl_image *images,
                    size_t n_images, size_t *n) {
    *n = 0;
    int32_t st = edgerl_score_images(model, session, text, images, n_images, NULL, 0, n);
    if (st != EDGERL_ERR_BUFFER_TOO_SMALL) {
        EXPECT(st, EDGERL_ERR_BUFFER_TOO_SMALL, "kept");
        return NULL;
    }
    float *lp = malloc(*n * sizeof *lp);
    EXPECT(edgerl_score_images(model, session, text, images, n_images, lp, *n, n), EDGERL_OK, NULL);
    return lp;
}

static double max_diff(const float *a, const float *b, size_t n) {
    double d = 0;
    for (size_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - (double)b[i]));
    return d;
}

static int write_file(const char *dir, const char *name, const void *data, size_t len) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    int ok = fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok;
}

int main(int argc, char **argv) {
    if (argc != 9) {
        fprintf(stderr, "usage: %s MODEL_DIR IMAGE.rgba WIDTH HEIGHT SCORE_TEXT CHAT_TEXT TEXT_MODEL_DIR OUT_DIR\n",
                argv[0]);
        return 2;
    }
    const char *score_text = argv[5], *chat = argv[6], *out_dir = argv[8];
    uint32_t w = (uint32_t)atoi(argv[3]), h = (uint32_t)atoi(argv[4]);
    size_t row = (size_t)w * 4, size = row * h;
    uint8_t *pixels = malloc(size);
    FILE *f = fopen(argv[2], "rb");
    if (!f || fread(pixels, 1, size, f) != size || fgetc(f) != EOF) {
        fprintf(stderr, "%s: not %ux%u RGBA pixels\n", argv[2], w, h);
        return 2;
    }
    fclose(f);

    edgerl_runtime rt = 0;
    edgerl_model model = 0, text_model = 0;
    EXPECT(edgerl_runtime_create(NULL, 0, &rt), EDGERL_OK, NULL);
    EXPECT(edgerl_model_load(rt, argv[1], &model), EDGERL_OK, NULL);
    if (failures) return 1;

    /* Score: rows packed (stride 0), then the same rows 12 bytes apart with junk between. */
    edgerl_image image = {pixels, w, h, 0};
    size_t n = 0, n_padded = 0;
    float *lp = score(model, 0, score_text, &image, 1, &n);
    require(lp && n > 20, "log-probs of the text with its image");
    if (!lp) return 1;
    require(write_file(out_dir, "score.f32", lp, n * sizeof *lp), "score.f32 written");
    size_t stride = row + 12;
    uint8_t *padded = malloc(stride * h);
    memset(padded, 0xAB, stride * h);
    for (uint32_t y = 0; y < h; y++) memcpy(padded + y * stride, pixels + y * row, row);
    edgerl_image strided = {padded, w, h, (uint32_t)stride};
    float *lp_padded = score(model, 0, score_text, &strided, 1, &n_padded);
    require(lp_padded && n_padded == n && memcmp(lp, lp_padded, n * sizeof *lp) == 0,
            "a stride with padding reads the same pixels");
    free(lp_padded);
    /* The pixels matter: the same image inverted scores otherwise. */
    for (size_t i = 0; i < size; i++) padded[i] = i % 4 == 3 ? pixels[i] : (uint8_t)(255 - pixels[i]);
    edgerl_image inverted = {padded, w, h, 0};
    size_t n_inverted = 0;
    float *lp_inverted = score(model, 0, score_text, &inverted, 1, &n_inverted);
    require(lp_inverted && n_inverted == n && max_diff(lp, lp_inverted, n) > 1e-3, "another image, other log-probs");
    free(lp_inverted);

    /* Generate: one chat turn with the image, greedy; first asking for the size (the text is
     * kept and handed over by the retry, not generated again). */
    char text[4096];
    size_t needed = 0, needed_again = 0;
    EXPECT(edgerl_generate_images(model, 0, chat, &image, 1, EDGERL_PROMPT_CHAT, 6, 0.0f, 0, NULL, 0, &needed),
           EDGERL_ERR_BUFFER_TOO_SMALL, "kept");
    require(needed < sizeof text, "the generated text's length");
    EXPECT(edgerl_generate_images(model, 0, chat, &image, 1, EDGERL_PROMPT_CHAT, 6, 0.0f, 0, text, sizeof text,
                                  &needed_again),
           EDGERL_OK, NULL);
    require(needed_again == needed && strlen(text) == needed, "the retry hands over the text");
    require(write_file(out_dir, "generate.txt", text, strlen(text)), "generate.txt written");

    /* No images: the _images calls are the plain ones. */
    float plain[256], none[256];
    size_t n_plain = 0, n_none = 0;
    EXPECT(edgerl_score(model, 0, chat, plain, 256, &n_plain), EDGERL_OK, NULL);
    EXPECT(edgerl_score_images(model, 0, chat, NULL, 0, none, 256, &n_none), EDGERL_OK, NULL);
    require(n_plain > 0 && n_plain == n_none && memcmp(plain, none, n_plain * sizeof *plain) == 0,
            "no images: edgerl_score_images is edgerl_score");

    /* Misuse: each refused before any GPU work, with the image named. */
    float buf[8];
    size_t k = 0;
    edgerl_image bad = image;
    EXPECT(edgerl_score_images(model, 0, score_text, NULL, 1, buf, 8, &k), EDGERL_ERR_INVALID_ARGUMENT,
           "`images` is NULL");
    edgerl_image two[2] = {image, image};
    two[1].rgba = NULL;
    EXPECT(edgerl_score_images(model, 0, score_text, two, 2, buf, 8, &k), EDGERL_ERR_INVALID_ARGUMENT,
           "images[1]: `rgba` is NULL");
    bad.width = 0;
    EXPECT(edgerl_score_images(model, 0, score_text, &bad, 1, buf, 8, &k), EDGERL_ERR_INVALID_ARGUMENT, "empty");
    bad = image;
    bad.height = 16385;
    EXPECT(edgerl_generate_images(model, 0, chat, &bad, 1, EDGERL_PROMPT_CHAT, 2, 0.0f, 0, text, sizeof text, NULL),
           EDGERL_ERR_INVALID_ARGUMENT, "too large");
    bad = image;
    bad.width = UINT32_MAX; /* width * 4 would overflow 32 bits */
    EXPECT(edgerl_score_images(model, 0, score_text, &bad, 1, buf, 8, &k), EDGERL_ERR_INVALID_ARGUMENT, "too large");
    bad = image;
    bad.stride_bytes = (uint32_t)row - 1;
    EXPECT(edgerl_score_images(model, 0, score_text, &bad, 1, buf, 8, &k), EDGERL_ERR_INVALID_ARGUMENT,
           "stride_bytes");
    EXPECT(edgerl_score_images(model, 0, "<image> and <image>", &image, 1, buf, 8, &k), EDGERL_ERR_INVALID_ARGUMENT,
           "placeholder");
    EXPECT(edgerl_generate_images(model, 0, chat, &image, 1, 7, 2, 0.0f, 0, text, sizeof text, NULL),
           EDGERL_ERR_INVALID_ARGUMENT, "flags");
    EXPECT(edgerl_score_images(model, 0, NULL, &image, 1, buf, 8, &k), EDGERL_ERR_INVALID_ARGUMENT, "`text`");
    EXPECT(edgerl_model_load(rt, argv[7], &text_model), EDGERL_OK, NULL);
    EXPECT(edgerl_score_images(text_model, 0, "<image> hi", &image, 1, buf, 8, &k), EDGERL_ERR_INVALID_ARGUMENT,
           "no vision tower");
    EXPECT(edgerl_model_free(text_model), EDGERL_OK, NULL);

    /* A session: its fresh adapter (B = 0) changes nothing, through the session and through
     * the model it borrows; once freed, the model has its images side back. */
    edgerl_session session = 0;
    EXPECT(edgerl_session_create(model, "[lora]\nr = 2\n", &session), EDGERL_OK, NULL);
    size_t n_s = 0, n_lent = 0, n_back = 0;
    float *lp_session = score(0, session, score_text, &image, 1, &n_s);
    require(lp_session && n_s == n && max_diff(lp, lp_session, n) < 1e-5, "the session's log-probs with the image");
    float *lp_lent = score(model, 0, score_text, &image, 1, &n_lent);
    require(lp_lent && n_lent == n && max_diff(lp, lp_lent, n) < 1e-5, "the lent model's log-probs with the image");
    EXPECT(edgerl_generate_images(0, session, chat, &image, 1, EDGERL_PROMPT_CHAT, 6, 0.0f, 0, text, sizeof text,
                                  NULL),
           EDGERL_OK, NULL);
    EXPECT(edgerl_session_free(session), EDGERL_OK, NULL);
    float *lp_back = score(model, 0, score_text, &image, 1, &n_back);
    require(lp_back && n_back == n && memcmp(lp, lp_back, n * sizeof *lp) == 0,
            "the model handed back scores its image as before");
    free(lp_session);
    free(lp_lent);
    free(lp_back);

    EXPECT(edgerl_model_free(model), EDGERL_OK, NULL);
    EXPECT(edgerl_runtime_free(rt), EDGERL_OK, NULL);
    free(lp);
    free(padded);
    free(pixels);
    if (failures) {
        printf("%d vision checks failed\n", failures);
        return 1;
    }
    printf("all vision checks passed\n");
    return 0;
}
