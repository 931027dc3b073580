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
 *  - The reward callback runs on the thread that called edgerl_session_step, while no GPU lock
 *    is held: it may call edgerl on other sessions and models, and edgerl_cancel/
 *    edgerl_last_error on its own session; other calls on its own session return
 *    EDGERL_ERR_BUSY.
 *  - edgerl_last_error() reports the last failed call *of the calling thread*.
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
#define EDGERL_ERR_CANCELLED -6        /* edgerl_cancel() or edgerl_session_free() stopped it */
#define EDGERL_ERR_CALLBACK -7         /* the reward callback failed or gave NaN/Inf */
#define EDGERL_ERR_PANIC -8            /* an internal error (a bug): please report it */
#define EDGERL_ERR_BUFFER_TOO_SMALL -9 /* the output was cut; see the size out-parameter */
#define EDGERL_ERR_BUSY -10            /* the session (or its model) is running another call */
#define EDGERL_ERR_NONFINITE -11       /* a NaN/Inf loss or gradient: that update was skipped */

/* Prompt flags of edgerl_generate and edgerl_session_step. */
#define EDGERL_PROMPT_RAW 0  /* the text as is, tokenized with the tokenizer's special tokens */
#define EDGERL_PROMPT_CHAT 1 /* one user message, rendered with the model's chat template and
                                the generation prompt (as `edgerl generate --chat` does) */

typedef uint64_t edgerl_runtime; /* a GPU device */
typedef uint64_t edgerl_model;   /* weights + tokenizer loaded on a runtime */
typedef uint64_t edgerl_session; /* a training session: trainer, adapter, optimizer state */

/* Scores one sampled completion: write the reward to *reward_out and return 0. Returning
 * non-zero aborts the step with EDGERL_ERR_CALLBACK; so does a NaN or infinite reward. An
 * aborted step leaves the adapter unchanged. `completion` is valid only during the call. */
typedef int32_t (*edgerl_reward_fn)(void *user_data, size_t prompt_index, size_t completion_index,
                                    const char *completion, double *reward_out);

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

/* ---- errors ---- */

/* Copies the calling thread's last error message into buf (cut to len - 1 bytes on a UTF-8
 * boundary, always NUL-terminated when len > 0) and returns the message's full length in
 * bytes, without the NUL; 0 when the thread's last call succeeded. buf may be NULL when len
 * is 0. This function returns a length, not a status. */
size_t edgerl_last_error(char *buf, size_t len);

/* The name of a status code ("EDGERL_ERR_IO"), a static string; "unknown" for others. */
const char *edgerl_status_name(int32_t status);

/* ---- runtime ---- */

/* Opens a GPU device. backend: "vulkan", "metal", "dx12", "gl", or NULL/"" for the best
 * available. memory_budget: bytes of device memory the app allows (0 = none); recorded and
 * reported by edgerl_runtime_memory, not enforced yet. */
int32_t edgerl_runtime_create(const char *backend, uint64_t memory_budget, edgerl_runtime *out);

int32_t edgerl_runtime_free(edgerl_runtime runtime);

/* Device memory edgerl holds now (live), the most it held (peak), and the budget given at
 * creation. Each out-pointer may be NULL. */
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
 * bytes without the NUL. If it does not fit, out holds a prefix and the call returns
 * EDGERL_ERR_BUFFER_TOO_SMALL (the same seed generates the same text again). */
int32_t edgerl_generate(edgerl_model model, edgerl_session session, const char *prompt,
                        uint32_t flags, uint32_t max_new_tokens, float temperature, uint64_t seed,
                        char *out, size_t out_len, size_t *needed);

/* Log-probability of each token of text (tokenized with special tokens) given the tokens
 * before it: *n gets the count (tokens - 1). session as for edgerl_generate. If cap < *n, the
 * first cap values are written and the call returns EDGERL_ERR_BUFFER_TOO_SMALL; logprobs may
 * be NULL when cap is 0. */
int32_t edgerl_score(edgerl_model model, edgerl_session session, const char *text,
                     float *logprobs, size_t cap, size_t *n);

/* ---- training sessions ---- */

/* Creates a training session on a model with a fresh LoRA adapter. config_toml: a TOML string
 * with edgerl's TRL-named keys (num_generations, max_completion_length, temperature, top_k,
 * stop, learning_rate, optimizer, loss_type, beta, seed, [lora] r/alpha/target_modules,
 * init_adapter, [[rewards]] rules, ... as in README's config section), or NULL for defaults.
 * `model`, `output_dir`, `dataset` and `rollouts` are the session's and rejected. max_steps
 * only sets the learning-rate schedule's length; without it (and without lr_scheduler_type)
 * the learning rate is constant. prompts_per_step and dynamic_sampling do not apply (the app
 * picks the prompts). The session takes the model's weights until
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
 * EDGERL_ERR_NONFINITE, and the session can go on with the next step. */
int32_t edgerl_session_step(edgerl_session session, const char *const *prompts, size_t n_prompts,
                            uint32_t flags, edgerl_reward_fn cb, void *user_data,
                            edgerl_step_metrics *metrics);

/* Asks the session's running step to stop at its next check (between prompts, completions
 * and before the update), returning EDGERL_ERR_CANCELLED; with no step running, the next
 * step is the one cancelled. Safe from any thread. */
int32_t edgerl_cancel(edgerl_session session);

/* Writes the session's adapter to dir in PEFT format (adapter_config.json,
 * adapter_model.safetensors; each written to a temp file and renamed). Creates dir. */
int32_t edgerl_session_save_adapter(edgerl_session session, const char *dir);

/* Replaces the session's adapter with the PEFT adapter in dir; optimizer state restarts. */
int32_t edgerl_session_load_adapter(edgerl_session session, const char *dir);

#ifdef __cplusplus
}
#endif

#endif /* EDGERL_H */
