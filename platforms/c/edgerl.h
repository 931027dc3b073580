/*
 * edgerl.h — the C ABI of edgerl: on-device LoRA + GRPO training of small language models.
 *
 * Written by hand; tests/c_abi.rs checks that every function declared here is exported by
 * libedgerl and the other way round, and that the status codes equal the Rust constants
 * (src/ffi/mod.rs).
 *
 * Build: `cargo build --release` gives target/release/libedgerl.so and libedgerl.a.
 * Link (static, Linux): gcc app.c -Iplatforms/c target/release/libedgerl.a \
 *                          -ldl -lgcc_s -lutil -lrt -lpthread -lm -lc
 *
 * CONVENTIONS
 *  - Every function returns an int32_t status: EDGERL_OK (0) or a negative EDGERL_ERR_*.
 *    On failure, edgerl_last_error() gives a message naming what went wrong (the path of a
 *    missing file, the argument that was NULL, ...). No Rust panic crosses the boundary: one
 *    becomes EDGERL_ERR_PANIC.
 *  - Strings in and out are NUL-terminated UTF-8. Out-pointers must not be NULL unless the
 *    function says so.
 *  - Handles are opaque uint64_t ids, never pointers; 0 is never a valid handle. A freed,
 *    never-issued or wrong-type handle gives EDGERL_ERR_UNKNOWN_HANDLE, never a crash. Ids are
 *    not reused.
 *  - Objects are reference-counted: freeing a handle drops the id; the object itself goes once
 *    nothing uses it (a model keeps its runtime alive, a session its model). Free every handle
 *    you create; the order does not matter.
 *
 * THREAD SAFETY
 *  - Every function may be called from any thread.
 *  - GPU work on one runtime is serialized: calls on different models or sessions of the same
 *    runtime may be made concurrently, but they run one after the other on the GPU (a call
 *    blocks until the runtime is free). Different runtimes run independently.
 *  - Calls on one session must not overlap: a call on a session that is already running
 *    another call (a step, a save, a generate with that session) returns EDGERL_ERR_BUSY at
 *    once instead of blocking.
 *  - A session owns its model's weights while it lives (one session per model at a time):
 *    generate/score on the model with session = 0 then run the base model through that
 *    session, so they also return EDGERL_ERR_BUSY while it runs a step.
 *  - edgerl_cancel() may be called from any thread at any time, also from a reward callback.
 *  - The reward callback runs on the thread that called edgerl_session_step(_rows), while no GPU lock
 *    is held: it may call edgerl on other sessions and models, and edgerl_cancel/
 *    edgerl_last_error on its own session; other calls on its own session return
 *    EDGERL_ERR_BUSY.
 *  - The progress callback runs like the reward callback: on the calling thread, no GPU lock
 *    held, the same rules for calls back into edgerl.
 *  - Calls on one episode must not overlap (EDGERL_ERR_BUSY, as for sessions). Beginning an
 *    episode, acting and observing also use its session, so they return EDGERL_ERR_BUSY while
 *    the session runs a step (also from its callbacks), and a step listing an episode that is
 *    acting returns EDGERL_ERR_BUSY. Acts on different episodes of one session share it, so
 *    they must not overlap either (the later one gets EDGERL_ERR_BUSY); run episodes of one
 *    session one after the other, or on sessions of different models.
 *  - The log callback may be called from any thread, also concurrently, and while edgerl holds
 *    its locks: it must not call edgerl. Once edgerl_set_log_callback returns, the previous
 *    callback is no longer running and is not called again.
 *  - edgerl_last_error() reports the last failed call *of the calling thread*.
 *  - A generate or score result that did not fit is kept per thread, for that thread's next
 *    call (edgerl_generate, edgerl_score, and their _images forms).
 */
#ifndef EDGERL_H
#define EDGERL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes. */
#define EDGERL_OK 0
#define EDGERL_ERR_INVALID_ARGUMENT -1 /* NULL pointer, bad value, bad config, bad UTF-8 */
#define EDGERL_ERR_UNKNOWN_HANDLE -2   /* 0, freed, never issued, or of the wrong type */
#define EDGERL_ERR_IO -3               /* a file or directory: missing, unreadable, malformed */
#define EDGERL_ERR_MODEL -4            /* the model is unsupported or inconsistent */
#define EDGERL_ERR_GPU -5              /* no adapter, out of memory, a device error */
#define EDGERL_ERR_CANCELLED -6        /* edgerl_cancel(), edgerl_session_free() or the progress
                                          callback stopped it */
#define EDGERL_ERR_CALLBACK -7         /* the reward callback failed or gave NaN/Inf */
#define EDGERL_ERR_PANIC -8            /* an internal error (a bug): please report it */
#define EDGERL_ERR_BUFFER_TOO_SMALL -9 /* the output was cut; see the size out-parameter */
#define EDGERL_ERR_BUSY -10            /* the session (or its model) is running another call */
#define EDGERL_ERR_NONFINITE -11       /* a NaN/Inf loss or gradient: that update was skipped */
#define EDGERL_ERR_MORE_GROUPS -12     /* dynamic sampling: too few episode groups with signal;
                                          run more (edgerl_session_step_episodes) */

/* Prompt flags of edgerl_generate and edgerl_session_step (edgerl_session_step_rows takes a
 * row's "prompt" as a dataset line gives it: a string as is, a message list as chat). */
#define EDGERL_PROMPT_RAW 0  /* the text as is, tokenized with the tokenizer's special tokens */
#define EDGERL_PROMPT_CHAT 1 /* one user message, rendered with the model's chat template and
                                the generation prompt (as `edgerl generate --chat` does) */

typedef uint64_t edgerl_runtime; /* a GPU device */
typedef uint64_t edgerl_model;   /* weights + tokenizer loaded on a runtime */
typedef uint64_t edgerl_session; /* a training session: trainer, adapter, optimizer state */
typedef uint64_t edgerl_episode; /* a multi-turn trajectory of a session: prompt, acts, observations */

/* Log levels (edgerl_set_log_callback). */
#define EDGERL_LOG_ERROR 1
#define EDGERL_LOG_WARN 2
#define EDGERL_LOG_INFO 3
#define EDGERL_LOG_DEBUG 4
#define EDGERL_LOG_TRACE 5

/* Progress phases (edgerl_progress_fn). */
#define EDGERL_PHASE_SAMPLE 1 /* edgerl_session_step(_rows): completions sampled so far, of all */
#define EDGERL_PHASE_UPDATE 2 /* every step: optimizer updates taken so far, of num_iterations
                                 (edgerl_session_sft_step: of 1) */

/* Scores one sampled completion: write the reward to *reward_out and return 0. Returning
 * non-zero aborts the step with EDGERL_ERR_CALLBACK; so does a NaN or infinite reward. An
 * aborted step leaves the adapter unchanged. `completion` is valid only during the call. */
typedef int32_t (*edgerl_reward_fn)(void *user_data, size_t prompt_index, size_t completion_index,
                                    const char *completion, double *reward_out);

/* Receives one log record: level (EDGERL_LOG_*) and "target: message" (target is the Rust
 * module, e.g. "edgerl::ffi::session" or "wgpu_core::..."), valid only during the call. */
typedef void (*edgerl_log_fn)(void *user_data, int32_t level, const char *message);

/* Reports a step's progress: `done` of `total` in `phase` (EDGERL_PHASE_*). Returning non-zero
 * cancels the call (EDGERL_ERR_CANCELLED). For EDGERL_PHASE_SAMPLE it is called after each
 * prompt's completions are sampled; for EDGERL_PHASE_UPDATE before each optimizer update (done
 * = updates taken) and once after the last. Cancelling before the first update leaves the
 * adapter unchanged; cancelling later (num_iterations > 1) keeps the updates taken, which
 * the message says.
 * The final report (EDGERL_PHASE_UPDATE, done == total) comes after the last update is
 * applied: it cannot cancel. Its answer is ignored, and an edgerl_cancel() made from it (or
 * from another thread after the step's last check) is dropped when the step returns, so it
 * does not cancel the next call either: the step returns EDGERL_OK (or EDGERL_ERR_NONFINITE)
 * with its metrics. */
typedef int32_t (*edgerl_progress_fn)(void *user_data, int32_t phase, size_t done, size_t total);

/* One training step's metrics (TRL's metric names in the comments). */
typedef struct edgerl_step_metrics {
    uint64_t step;                 /* optimizer steps taken by the session so far */
    double loss;                   /* loss */
    double reward_mean;            /* reward: mean over the step's completions */
    double reward_std;             /* reward_std */
    double grad_norm;              /* grad_norm (before clipping) */
    double learning_rate;          /* learning_rate */
    double completion_mean_length; /* completions/mean_length, in tokens */
    double clipped_ratio;          /* completions/clipped_ratio: share without EOS */
    double seconds;                /* wall time of the call */
} edgerl_step_metrics;

/* One supervised (SFT) step's metrics (edgerl_session_sft_step; TRL SFTTrainer's names). */
typedef struct edgerl_sft_metrics {
    uint64_t step;              /* optimizer steps taken by the session so far (GRPO and SFT) */
    double loss;                /* loss: mean -log p over the step's trained tokens */
    double grad_norm;           /* grad_norm (before clipping) */
    double learning_rate;       /* learning_rate */
    uint64_t num_tokens;        /* num_tokens: tokens of the rows of the session's SFT steps so far */
    uint64_t trained_tokens;    /* tokens that carried loss in this step */
    double mean_token_accuracy; /* mean_token_accuracy: share of trained tokens predicted top-1 */
    double entropy;             /* entropy: mean over the trained tokens */
    double seconds;             /* wall time of the call */
} edgerl_sft_metrics;

/* ---- errors ---- */

/* Copies the calling thread's last error message into buf (cut to len - 1 bytes on a UTF-8
 * boundary, always NUL-terminated when len > 0) and returns the message's full length in
 * bytes, without the NUL; 0 when the thread's last call succeeded. buf may be NULL when len
 * is 0. This function returns a length, not a status. */
size_t edgerl_last_error(char *buf, size_t len);

/* Routes edgerl's log records (and those of the libraries it uses, e.g. wgpu) at max_level
 * (EDGERL_LOG_*) or more severe to cb, process-wide; cb NULL stops routing. Off until first
 * called. EDGERL_ERR_INVALID_ARGUMENT if another Rust library in the process installed its
 * own `log` logger first. Each session step logs one EDGERL_LOG_INFO line with its metrics
 * (and, under a memory budget, one more when the plan changed the step's knobs). */
int32_t edgerl_set_log_callback(edgerl_log_fn cb, void *user_data, int32_t max_level);

/* The name of a status code ("EDGERL_ERR_IO"), a static string; "unknown" for others. */
const char *edgerl_status_name(int32_t status);

/* ---- runtime ---- */

/* Opens a GPU device.
 *
 * backend: "vulkan", "metal", "dx12", "gl", or NULL/"" for the best available; optionally
 * followed by ":ADAPTER" to pick an adapter by its name: "vulkan:llvmpipe", "metal:apple",
 * ":adreno" (any backend; an empty part means any). ADAPTER is a case-insensitive
 * substring of the adapter's name; among several matches a discrete GPU is preferred over an
 * integrated one, then a virtual one, then a CPU rasterizer, and native APIs over GL. An unknown backend is
 * EDGERL_ERR_INVALID_ARGUMENT; no adapter matching is EDGERL_ERR_GPU, with a message listing
 * the adapters the backend(s) found.
 *
 * memory_budget: bytes of device memory edgerl may hold on this runtime, for every model,
 * session and step on it together (0 = no budget). It is enforced two ways:
 *  - A hard cap: an allocation that would take the runtime past the budget fails with
 *    EDGERL_ERR_GPU ("GPU out of memory allocating WHAT (SIZE), with LIVE of device memory in
 *    use (peak PEAK). The runtime's memory budget is ..."); whatever the failed call had
 *    allocated is freed (a model load above the budget leaves nothing behind, and the
 *    runtime goes on working). The count is edgerl's own buffers (edgerl_runtime_memory),
 *    not the driver's overhead.
 *  - Planned steps: before edgerl_session_step and edgerl_session_step_episodes sample or
 *    train, the step's iteration is planned (as `edgerl plan` does) against what the session
 *    may use: the budget minus everything the runtime holds for others (other models and
 *    sessions). If the session's configured knobs do not fit, that step runs with gradient
 *    checkpointing on and/or a smaller pack (fewer completions per forward/backward pass);
 *    same results, more time. If nothing fits, the step fails first. See those functions.
 * The plan is an estimate (within about 10 % of the measured peak), and what others hold is
 * read when the step is planned (a step of another session running at the same time may
 * allocate more meanwhile): the hard cap is what guarantees the budget. A step that meets
 * the cap fails with EDGERL_ERR_GPU; the update it was in is not applied (with
 * num_iterations > 1, the updates before it stay, as with a cancel). */
int32_t edgerl_runtime_create(const char *backend, uint64_t memory_budget, edgerl_runtime *out);

int32_t edgerl_runtime_free(edgerl_runtime runtime);

/* Device memory edgerl holds now (live), the most it held (peak), and the budget given at
 * creation (0: none), in bytes. Each out-pointer may be NULL. */
int32_t edgerl_runtime_memory(edgerl_runtime runtime, uint64_t *live, uint64_t *peak,
                              uint64_t *budget);

/* ---- models ---- */

/* Loads a Hugging Face model directory (config.json, model.safetensors, tokenizer.json) or a
 * .gguf file onto the runtime. A wrong path gives EDGERL_ERR_IO and a message naming it. */
int32_t edgerl_model_load(edgerl_runtime runtime, const char *path, edgerl_model *out);

int32_t edgerl_model_free(edgerl_model model);

/* Generates up to max_new_tokens after prompt (flags: EDGERL_PROMPT_*). temperature 0 is
 * greedy; otherwise sampling is seeded by seed. session = 0 uses the base model; a session
 * created on this model (model may then be 0) uses the session's adapter. The text (special
 * tokens dropped) is written to out, NUL-terminated; *needed (may be NULL) gets its length in
 * bytes without the NUL. If it does not fit, out holds a prefix (out may be NULL with out_len
 * 0 to ask for the size), the call returns EDGERL_ERR_BUFFER_TOO_SMALL and the text is kept
 * aside for the calling thread: if the thread's very next edgerl call is edgerl_generate with
 * the same model, session, prompt, flags, max_new_tokens, temperature and seed (out and
 * out_len may differ), it hands over that text instead of generating again; any other call
 * drops it. */
int32_t edgerl_generate(edgerl_model model, edgerl_session session, const char *prompt,
                        uint32_t flags, uint32_t max_new_tokens, float temperature, uint64_t seed,
                        char *out, size_t out_len, size_t *needed);

/* Log-probability of each token of text (tokenized with special tokens) given the tokens
 * before it: *n gets the count (tokens - 1). session as for edgerl_generate. If cap < *n, the
 * first cap values are written and the call returns EDGERL_ERR_BUFFER_TOO_SMALL; logprobs may
 * be NULL when cap is 0. The values are then kept as edgerl_generate keeps a text: the
 * thread's very next call, if it is edgerl_score with the same model, session and text, hands
 * them over without computing them again. */
int32_t edgerl_score(edgerl_model model, edgerl_session session, const char *text,
                     float *logprobs, size_t cap, size_t *n);

/* ---- images (vision-language models: SmolVLM, Idefics3) ---- */

/* One image: height rows of width RGBA pixels, 8 bits a channel, straight (not premultiplied)
 * alpha, rows top to bottom, each stride_bytes after the one before (0: width * 4, packed).
 * Transparent pixels are composited onto white, as transformers' processor does (an opaque
 * image is taken as is). Android: a Bitmap in ARGB_8888 copied with copyPixelsToBuffer gives
 * these bytes (note its pixels are premultiplied: draw it over white first when it has
 * transparency; Bitmap.toRgbaImage() in EdgerlBitmap.kt does). iOS: draw the CGImage over
 * white into an RGBA8 context (RgbaImage(cgImage:) in EdgerlImages.swift does).
 * width and height are 1 ..= 16384; the pixels are read during the call only. */
typedef struct edgerl_image {
    const uint8_t *rgba;
    uint32_t width;
    uint32_t height;
    uint32_t stride_bytes;
} edgerl_image;

/* edgerl_generate with images for a vision-language model (a model directory whose
 * config.json has a vision tower): with EDGERL_PROMPT_RAW, prompt holds one "<image>" per
 * image, each replaced by that image's tokens in order (as transformers' processor expands
 * them); with EDGERL_PROMPT_CHAT, the user turn is the images, then the prompt's text (as
 * `edgerl generate --chat TEXT --image FILE` renders it). n_images 0 (images may then be NULL)
 * is edgerl_generate. Everything else (session, out, needed, the text kept aside when it does
 * not fit, now for the same images too) as for edgerl_generate. EDGERL_ERR_INVALID_ARGUMENT,
 * before any GPU work, for: images NULL with n_images > 0, a NULL rgba, a width or height of
 * 0 or above 16384, stride_bytes below width * 4 (the message names the image:
 * "images[1]: ..."); and, after the images are read, a text model ("this model has no vision
 * tower"), or as many "<image>" places as images not matching. A session on the model uses
 * its adapter on the image prompt as on a text one. */
int32_t edgerl_generate_images(edgerl_model model, edgerl_session session, const char *prompt,
                               const edgerl_image *images, size_t n_images, uint32_t flags,
                               uint32_t max_new_tokens, float temperature, uint64_t seed,
                               char *out, size_t out_len, size_t *needed);

/* edgerl_score of a text whose "<image>" places take images, in order (as `edgerl score
 * --text TEXT --image FILE`): the log-probs of every token, image tokens included, given the
 * ones before. Images, errors and the values kept aside as for edgerl_generate_images and
 * edgerl_score. */
int32_t edgerl_score_images(edgerl_model model, edgerl_session session, const char *text,
                            const edgerl_image *images, size_t n_images, float *logprobs,
                            size_t cap, size_t *n);

/* ---- training sessions ---- */

/* Creates a training session on a model with a fresh LoRA adapter. config_toml: a TOML string
 * with edgerl's TRL-named keys (num_generations, max_completion_length, temperature, top_k,
 * stop, learning_rate, optimizer, loss_type, beta, seed, [lora] r/alpha/target_modules,
 * init_adapter, [[rewards]] rules, ... as in README's config section), or NULL for defaults.
 * `model`, `output_dir`, `dataset` and `rollouts` are the session's and rejected. max_steps
 * only sets the learning-rate schedule's length; without it (and without lr_scheduler_type)
 * the learning rate is constant. prompts_per_step does not apply (the app picks the prompts);
 * dynamic_sampling (with max_refill) does, as in `edgerl train`: a step's groups whose rewards
 * are all equal are replaced by re-sampling the call's own prompts (see
 * edgerl_session_step_rows), and an episode step asks the app for more groups (see
 * edgerl_session_step_episodes). The SFT keys assistant_only_loss, completion_only_loss and max_length
 * set how edgerl_session_sft_step tokenizes its rows. The session takes the model's weights until
 * it is freed (no copy; one session per model: a second gives EDGERL_ERR_BUSY). */
int32_t edgerl_session_create(edgerl_model model, const char *config_toml, edgerl_session *out);

/* Frees the session; a step running on it is cancelled and the weights return to the model
 * once it has returned. */
int32_t edgerl_session_free(edgerl_session session);

/* One GRPO step: for each of the n_prompts prompts (flags: EDGERL_PROMPT_*), samples
 * num_generations completions with the current adapter; calls cb(user_data, prompt_index,
 * completion_index, text, &reward) for each, in order (cb NULL: the config's [[rewards]]
 * rules score them); then takes num_iterations optimizer updates on the batch. metrics may be
 * NULL. The adapter changes only in the update, after every completion was scored: a step
 * that fails before it (EDGERL_ERR_CALLBACK, EDGERL_ERR_CANCELLED, a bad prompt) leaves the
 * adapter unchanged. An update whose loss or gradients are NaN/Inf is skipped (adapter and
 * optimizer unchanged); the call then writes metrics (grad_norm NaN) and returns
 * EDGERL_ERR_NONFINITE, and the session can go on with the next step.
 *
 * Under a memory budget (edgerl_runtime_create), the step is planned before any sampling,
 * for its real workload: the longest of its prompts in tokens, num_generations completions
 * of max_completion_length tokens, a reference pass if beta > 0, the session's LoRA rank and
 * optimizer (Adam's moments counted). What the session may use is the budget minus what the
 * runtime holds outside this session's weights, adapter, gradients and optimizer state. If
 * the configured gradient_checkpointing and a whole group per pass fit, the step runs as
 * configured; else it runs with what the plan picks (sampling's activations not kept for the
 * update, then gradient checkpointing on, then the pack halved down to one completion per
 * pass) for this step only, and logs one
 * EDGERL_LOG_INFO line saying so. If nothing fits, the step returns EDGERL_ERR_GPU before
 * sampling (the reward callback is not called, the adapter is unchanged) with a message
 * giving the budget, what others hold, the smallest plan's peak and what takes the room
 * (lower max_completion_length or num_generations, a shorter prompt, a smaller rank, or a
 * smaller model). Sampling does not depend on the pack: the same rewards and the same update
 * (up to float rounding) as without a budget.
 *
 * With gradient_checkpointing = "auto" in the session's config, each step is planned as above
 * from every activation kept (no recomputation: a faster backward pass); under a budget the
 * plan turns checkpointing on only when keeping them would not fit, and without a budget it
 * keeps them when the iteration peaks within 1 GiB. One EDGERL_LOG_INFO line says which. A
 * planned step (auto, or a budget) with activations kept also has sampling keep each group's
 * for the update, which then skips its forward pass (every group of the step holds them until
 * its pass; the plan gives that up first).
 *
 * The prompts carry no data columns: the rules see an empty row (a rule with a `target` fails),
 * and a config with weight_column is refused (EDGERL_ERR_INVALID_ARGUMENT). Give rules their
 * targets with edgerl_session_step_rows. A callback given here replaces the rules. */
int32_t edgerl_session_step(edgerl_session session, const char *const *prompts, size_t n_prompts,
                            uint32_t flags, edgerl_reward_fn cb, void *user_data,
                            edgerl_step_metrics *metrics);

/* One GRPO step on dataset rows, as `edgerl train` takes a step on its dataset's lines:
 * rows_json is a JSON array with one object per prompt, each exactly what a line of a TRL
 * prompt dataset would be: "prompt" (a string, tokenized as is with the tokenizer's special
 * tokens; or a list of {"role", "content"} messages, rendered with the model's chat template
 * and the generation prompt) and the row's data columns, which the config's [[rewards]] rules
 * read as their targets, e.g.
 *   [{"prompt": [{"role": "user", "content": "Tap Send."}], "target_box": [40, 300, 120, 340]},
 *    {"prompt": "Where is Cancel?", "target_box": [10, 300, 30, 340]}]
 * So point_in_box, iou, box_size, action, exact, numeric ... score on the device with no
 * callback. The rows are checked before anything is sampled, as `edgerl train` checks its
 * dataset: a row that is not an object, lacks "prompt", lacks a column a rule reads, has a
 * target a rule cannot parse, or lacks a numeric weight_column (when the config names one)
 * fails the call with EDGERL_ERR_INVALID_ARGUMENT, its message naming the row
 * ("rows_json[2]: no `target_box` column, which a reward rule reads"); nothing is trained.
 *
 * Rewards: completion k of row j gets the rules' total (reward_weights, reward_all_or_nothing
 * as configured) PLUS cb's value when cb is not NULL: the callback adds one more reward
 * function to the rules (TRL sums its reward functions the same way), it does not replace
 * them. With no [[rewards]] in the config the callback alone gives the reward; with neither,
 * EDGERL_ERR_INVALID_ARGUMENT. (edgerl_session_step, whose prompts have no columns, is
 * different: there a callback replaces the rules.) cb's prompt_index is the row's index.
 *
 * Groups are weighted as in `edgerl train`: weight_column's value times the difficulty
 * weight (difficulty_weight = true). With the same config, seed and rows, a session's steps
 * sample and train exactly as `edgerl train`'s (one call = one batch of prompts_per_step
 * rows).
 *
 * Dynamic sampling (DAPO; dynamic_sampling = true in the config, as `edgerl train`): a row
 * whose completions all got the same reward teaches nothing; its group is dropped and the
 * call draws again, continuing through its own rows in order (draw d of the call is row
 * d mod n: the row after the last one is row 0 again) with a fresh sampling seed per round,
 * at most max_refill extra rounds, until it has as many groups as rows. cb is called for
 * the re-drawn completions too, with the row's index. When every group still has equal
 * rewards, EDGERL_ERR_INVALID_ARGUMENT and nothing is trained. A call on n rows refills
 * exactly as `edgerl train` refills a batch on a dataset of those n rows (prompts_per_step =
 * n, shuffle_dataset = false) whose draws start at the first row, the same seed and step.
 * edgerl_session_step does the same over its prompts.
 *
 * Everything else (metrics, errors, cancel, progress, the memory budget, NaN updates) as for
 * edgerl_session_step. */
int32_t edgerl_session_step_rows(edgerl_session session, const char *rows_json,
                                 edgerl_reward_fn cb, void *user_data,
                                 edgerl_step_metrics *metrics);

/* edgerl_session_step_rows on a vision-language model (SmolVLM / Idefics3) with images: the
 * rows' image places ({"type": "image"} content parts, or "<image>" in a string prompt or
 * message) take images in order across the rows, e.g. with 2 images
 *   [{"prompt": [{"role": "user", "content": [{"type": "image"},
 *                 {"type": "text", "text": "Tap Send."}]}], "target_box": [40, 300, 120, 340]},
 *    {"prompt": "User:<image>Where is Cancel?<end_of_utterance>\nAssistant:", "target_box": [...]}]
 * A row may instead name its image files in an "images" column (as a line of `edgerl train`'s
 * dataset; paths relative to the current directory): it takes no images from the array.
 * Images as for edgerl_score_images (RGBA, any stride, composited over white). Each prompt's
 * images go through the vision tower once, before sampling; the features serve its sampling,
 * its re-draws under dynamic sampling and the updates. With the same rows, the same pixels (as
 * image files for the CLI), config and seed, the step samples and trains exactly as
 * `edgerl train`'s. Errors, before anything is sampled (EDGERL_ERR_INVALID_ARGUMENT, adapter
 * unchanged): n_images not equal to the image places of the rows without an "images" column
 * (the message counts them per row), a bad image (named "images[i]"), images on a model with
 * no vision tower; a missing or unreadable image file is EDGERL_ERR_IO. edgerl_session_step_rows
 * is this call with no images: on a vision-language model its rows' image places need an
 * "images" column. Everything else as for edgerl_session_step_rows. */
int32_t edgerl_session_step_rows_images(edgerl_session session, const char *rows_json,
                                        const edgerl_image *images, size_t n_images,
                                        edgerl_reward_fn cb, void *user_data,
                                        edgerl_step_metrics *metrics);

/* One supervised step (TRL SFTTrainer's loss, as `edgerl sft`): one optimizer update of the
 * session's adapter, with the session's optimizer and learning-rate schedule (the same ones
 * its GRPO steps use: warm-start with a few SFT steps, then go on with edgerl_session_step_rows
 * in the same session), on the token-mean negative log-likelihood of the trained tokens of all
 * rows_json's rows together (one batch: N = the trained tokens of every row). rows_json is a
 * JSON array of TRL SFT rows, what lines of an `edgerl sft` dataset would be, all of one format:
 *   {"messages": [{"role": "user", "content": "Tap Send."},
 *                 {"role": "assistant", "content": "click(60, 320)"}]}   (a conversation)
 *   {"prompt": ..., "completion": ...}    (strings, or message lists: the prompt is not trained
 *                                          unless completion_only_loss = false)
 *   {"text": "..."}                       (plain language modelling)
 * The session config's SFT keys say how rows are tokenized, as in `edgerl sft`:
 * assistant_only_loss, completion_only_loss, max_length (TRL SFTConfig names and defaults);
 * the session config's optimizer, max_grad_norm, [lora] ... apply, and its learning_rate and
 * schedule (GRPO's default 1e-6 when not set, where `edgerl sft`'s is 2e-5) unless the config
 * has an [sft] table: then SFT steps take [sft] learning_rate (2e-5 when not set),
 * lr_scheduler_type, warmup_steps, warmup_ratio and max_steps (without max_steps the rate is
 * constant), and GRPO steps keep the top-level ones. Both schedules run on the session's one
 * step count (GRPO and SFT steps), and the AdamW moments are shared. per_device_train_batch_size,
 * gradient_accumulation_steps, packing, packing_strategy and padding_free are refused at
 * edgerl_session_create (the call's rows are the batch: nothing is packed). With the same
 * config, seed and rows (in the order of the run's batch), the first SFT step of a fresh
 * session gives the loss and update of `edgerl sft`'s first step.
 *
 * Rows are checked and tokenized before anything is trained: JSON that is not an array of row
 * objects, a row without `messages`, `prompt`/`completion` or `text`, a row of another format
 * than rows_json[0]'s, assistant_only_loss on non-conversational rows or a row without an
 * assistant turn, a token outside the vocabulary, or no trained token at all fail with
 * EDGERL_ERR_INVALID_ARGUMENT, the message naming the row ("rows_json[1]: ..."); nothing is
 * trained and metrics are not written. Rows that max_length leaves without a trained token are
 * dropped (as TRL drops them). Progress: EDGERL_PHASE_UPDATE 0 of 1 before the update (cancel
 * there: adapter unchanged), 1 of 1 after it. Cancel, the memory budget (the step planned for
 * its longest row, no sampling), NaN/Inf updates (metrics written, EDGERL_ERR_NONFINITE) and
 * EDGERL_ERR_BUSY as for edgerl_session_step. metrics may be NULL. */
int32_t edgerl_session_sft_step(edgerl_session session, const char *rows_json,
                                edgerl_sft_metrics *metrics);

/* Asks the session's running call to stop at its next check, returning EDGERL_ERR_CANCELLED;
 * with none running, the session's next call that checks is the one cancelled. Safe from any
 * thread. A check consumes the request. Checks: in the steps between prompts, completions and
 * before each update; at the start of edgerl_episode_act; and while a chat template is
 * rendered for a call of the session (EDGERL_PROMPT_CHAT prompts of a step, of
 * edgerl_episode_begin and edgerl_generate with this session, chat observations). A call of
 * the session that fails while a cancel is requested reports EDGERL_ERR_CANCELLED, its message
 * naming what stopped it. A request made after a step's last check (during its last update,
 * or from its final progress report) is dropped when that step returns: the update is applied
 * and the next call is not cancelled (see edgerl_progress_fn). Calls with session = 0 (on the
 * base model) neither check nor consume it. */
int32_t edgerl_cancel(edgerl_session session);

/* Sets the session's progress callback (cb NULL: none), used from the session's next call on.
 * May be called at any time, also while a step runs (that step keeps the callback it began
 * with). */
int32_t edgerl_session_set_progress(edgerl_session session, edgerl_progress_fn cb,
                                    void *user_data);

/* Writes the session's adapter to dir in PEFT format (adapter_config.json,
 * adapter_model.safetensors; each written to a temp file and renamed). Creates dir. */
int32_t edgerl_session_save_adapter(edgerl_session session, const char *dir);

/* Replaces the session's adapter with the PEFT adapter in dir; optimizer state restarts. */
int32_t edgerl_session_load_adapter(edgerl_session session, const char *dir);

/* ---- multi-turn episodes ----
 *
 * An agent's trajectory (WebAgent-R1, Mobile-R1): a prompt, then the model's acts and the
 * environment's observations in turn, and one reward for the whole episode. Training runs one
 * sequence per episode, the prompt and everything after it; only the tokens the model sampled
 * in its acts carry loss and count in the loss normalisers, the observations are attended to
 * but masked out. Episodes of one task form a GRPO group: an episode's advantage (from the
 * group's rewards, as the config's scale_rewards etc. say) goes to every token of its acts.
 *
 *   edgerl_episode ep;
 *   edgerl_episode_begin(session, "Open the settings.", EDGERL_PROMPT_CHAT, &ep);
 *   while (!done) {
 *       edgerl_episode_act(ep, 0, action, sizeof action, NULL);
 *       ... run the action, look at the screen ...
 *       edgerl_episode_observe(ep, screen_text);
 *   }
 *   ... G episodes per task, then, with one reward each:
 *   edgerl_session_step_episodes(session, eps, rewards, n, G, &metrics);
 *   ... edgerl_episode_free each ...
 *
 * Or with the config's [[rewards]] rules and no reward of the app's: begin each episode from a
 * dataset row carrying the rules' targets, and pass rewards = NULL; the rules score each
 * episode's LAST ACT (the model's final action) against its row:
 *   edgerl_episode_begin_row(session,
 *       "{\"prompt\": [{\"role\": \"user\", \"content\": \"Tap Send.\"}], \"target_box\": [40, 300, 120, 340]}",
 *       &ep);
 *   ... act / observe as above ...
 *   edgerl_session_step_episodes(session, eps, NULL, n, G, &metrics);
 */

/* Starts an episode of the session from prompt. flags as for edgerl_session_step: with
 * EDGERL_PROMPT_CHAT the prompt is a user turn plus the generation prompt, and observations
 * become user turns (see edgerl_episode_observe). The episode refers to its session by id: it
 * does not keep it alive (once the session is freed, using the episode gives
 * EDGERL_ERR_UNKNOWN_HANDLE). */
int32_t edgerl_episode_begin(edgerl_session session, const char *prompt, uint32_t flags,
                             edgerl_episode *out);

/* Starts an episode of the session from a dataset row: row_json is one JSON object, what one
 * element of edgerl_session_step_rows's rows_json would be, checked the same way (a "prompt":
 * a string, tokenized as is with the tokenizer's special tokens, or a list of {"role",
 * "content"} messages, rendered with the chat template and the generation prompt; and the
 * row's data columns: each column a [[rewards]] rule reads, with a target the rule can parse,
 * and weight_column's number when the config names one). A message-list prompt makes a chat
 * episode (observations become user turns, as EDGERL_PROMPT_CHAT), a string a raw one. The
 * row's columns stay with the episode for edgerl_session_step_episodes's rules. Episodes take
 * no images: a row with an "images" column, or with image places on a vision-language model,
 * is refused. Errors (EDGERL_ERR_INVALID_ARGUMENT, no episode made): invalid JSON, not an
 * object, no "prompt", a missing or unparseable target ("row_json: no `target_box` column,
 * which a reward rule reads"). Everything else as edgerl_episode_begin. */
int32_t edgerl_episode_begin_row(edgerl_session session, const char *row_json, edgerl_episode *out);

/* The model acts: samples up to max_new_tokens (0: the config's max_completion_length) after
 * everything so far, with the session's current adapter and sampling settings (temperature,
 * top_k, top_p, min_p, seed), stopping at EOS or at one of the config's stop strings, and
 * appends the tokens to the episode. The text (special tokens dropped) goes to out as in
 * edgerl_generate, *needed (may be NULL) its length without the NUL. If it does not fit, the
 * call returns EDGERL_ERR_BUFFER_TOO_SMALL and keeps the act aside: the next call hands over
 * that same act (appending it) instead of sampling; out may be NULL with out_len 0 to ask for
 * the size. Checks edgerl_cancel's flag first (EDGERL_ERR_CANCELLED). */
int32_t edgerl_episode_act(edgerl_episode episode, uint32_t max_new_tokens, char *out,
                           size_t out_len, size_t *needed);

/* Appends text the environment wrote (masked out of the loss). EDGERL_PROMPT_RAW episodes:
 * the text is tokenized as is, without special tokens, right after the previous tokens (put
 * your own separators in it; empty text adds nothing). EDGERL_PROMPT_CHAT episodes: the
 * model's turn is closed, text becomes a user turn, and the generation prompt follows, all as
 * the model's chat template writes them (the closing token is not repeated when the act ended
 * with it); such an observation must follow an act (EDGERL_ERR_INVALID_ARGUMENT otherwise). */
int32_t edgerl_episode_observe(edgerl_episode episode, const char *text);

/* Frees the episode (a step that already took it is not affected). */
int32_t edgerl_episode_free(edgerl_episode episode);

/* One GRPO step on n episodes of this session: episodes[k*group_size .. (k+1)*group_size)
 * form group k (one task: the same prompt and flags, or the same row). Then num_iterations
 * optimizer updates, as edgerl_session_step. metrics as for edgerl_session_step, with
 * completion_mean_length and clipped_ratio over the acts' tokens (an episode is clipped when
 * one of its acts ended without EOS). Episodes stay valid (they can be trained on again, or
 * freed).
 *
 * Rewards. rewards (n values) gives the app's reward of each episode; it may be NULL when the
 * config has [[rewards]] rules. The rules score an episode's LAST ACT: the text
 * edgerl_episode_act returned for it (special tokens dropped) and its token count, against the
 * data columns of the row the episode began from (edgerl_episode_begin_row): the reward
 * `edgerl train` gives that text as a completion of that row (reward_weights,
 * reward_all_or_nothing as configured). Earlier acts and observations are not scored; an app
 * that scores them passes its own rewards. With both, as edgerl_session_step_rows does with
 * its callback: an episode begun from a row gets the rules' total PLUS its rewards[i] (the
 * app's reward adds one more reward function); an episode begun from a prompt
 * (edgerl_episode_begin) gets rewards[i] alone (as edgerl_session_step's callback replaces the
 * rules: there are no columns), and with rewards NULL the rules see an empty row (a rule with a
 * target fails). Groups are weighted as in `edgerl train`: weight_column's value (episodes from
 * rows) times the difficulty weight (difficulty_weight = true).
 *
 * Dynamic sampling (dynamic_sampling = true in the config, DAPO): a group whose rewards are all
 * equal teaches nothing and is dropped. edgerl cannot re-run an episode (the app runs the
 * environment), so the app refills: the first call of a round sets its target, its number of
 * groups (n / group_size, as edgerl_session_step_rows needs as many groups as rows), and keeps
 * its informative groups (a copy: the episodes may be freed). When fewer than the target are
 * kept, the call trains nothing and returns EDGERL_ERR_MORE_GROUPS, its message giving the
 * counts; edgerl_session_episode_groups_needed says how many more groups the round needs. Run
 * that many new groups (new tasks or the same ones again) and call again with just those, with
 * the same group_size (another is EDGERL_ERR_INVALID_ARGUMENT, round unchanged): each such call
 * is one refill and adds its informative groups. Once the kept groups reach the target, or
 * after max_refill refills, the call trains on every kept group and the round ends; if none
 * was kept by then, EDGERL_ERR_INVALID_ARGUMENT, nothing trained, and the round ends (as
 * `edgerl train`: "every group had identical rewards after N refills"). The step's log line
 * "dynamic_sampling/refills: N" (EDGERL_LOG_INFO) counts the round's refills, and
 * "rewards/<rule>: mean" lines give the rules' means over the call's scored episodes, as the
 * other steps log them. A call that fails before its first update (cancel, the memory plan)
 * leaves the round as it was before the call. Other calls of the session do not touch the
 * round: kept groups train with the adapter of the step that trains them, as any episode.
 *
 * Errors, all before the adapter changes: n 0, group_size 0 or not dividing n, a reward NaN or
 * infinite, rewards NULL with no [[rewards]] in the config, an episode of another session,
 * listed twice, without an act, or starting from another prompt than its group, a group
 * whose episodes began from different rows (or some from a prompt), a rule failing on an
 * episode from a prompt (no target column), weight_column with episodes from a prompt
 * (EDGERL_ERR_INVALID_ARGUMENT); an unknown episode (EDGERL_ERR_UNKNOWN_HANDLE, naming its
 * index). Under a memory budget the step is planned as in edgerl_session_step, before
 * training, for its groups of group_size sequences (the longest prompt, the longest episode
 * after it; no sampling, the acts were sampled by edgerl_episode_act, each under the hard
 * cap): it runs with the knobs that fit, or fails with EDGERL_ERR_GPU and the planner's
 * message, adapter unchanged. */
int32_t edgerl_session_step_episodes(edgerl_session session, const edgerl_episode *episodes,
                                     const double *rewards, size_t n, size_t group_size,
                                     edgerl_step_metrics *metrics);

/* How many more informative groups the session's open dynamic-sampling round of
 * edgerl_session_step_episodes needs (see there): written to *needed; 0 when no round is open
 * (the last episode step trained, failed, or there was none). EDGERL_ERR_BUSY while a call of
 * the session runs. */
int32_t edgerl_session_episode_groups_needed(edgerl_session session, size_t *needed);

#ifdef __cplusplus
}
#endif

#endif /* EDGERL_H */
