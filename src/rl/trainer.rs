//! The training loop for offline rollouts: per step, advantages from the rewards, one forward
//! pass per completion (prompt + completion, keeping layer inputs), the objective's per-token
//! coefficients on the CPU, the backward pass on the GPU, clipping and the optimizer step.
//! Writes `metrics.jsonl` (TRL's metric names) and the adapter in PEFT format.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use serde_json::{Map, Value, json};

use super::config::{ImportanceSampling, Optimizer, TrainConfig};
use super::loss::{CompletionInput, advantages, completion_terms, normalizers};
use super::rollouts::{self, Group};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, GpuBuffer, Recorder};
use crate::data::dataset::{self, Row};
use crate::lora::Lora;
use crate::reward::RewardSet;
use super::rollout::{Decoding, GroupSampler};
use crate::model::pack::Pack;
use crate::model::{LoadedModel, Model, Tokenizer};

/// One completion of a rollout batch.
pub struct Item {
    /// Its group in `Batch::groups` (whose prompt it completes).
    pub group: usize,
    /// The completion's tokens.
    pub targets: Vec<u32>,
    pub advantage: f64,
    pub weight: f64,
    /// false: masked out of the loss (a truncated completion with mask_truncated_completions).
    pub active: bool,
    /// No EOS among its tokens.
    pub truncated: bool,
    /// Log-probs when the batch was first used (the "old" policy), and under the base model.
    pub lp_old: Option<Vec<f32>>,
    pub lp_ref: Option<Vec<f32>>,
}

pub struct Batch {
    /// The groups it was made from (kept for checkpoints).
    pub groups: Vec<Group>,
    pub items: Vec<Item>,
    pub norms: Vec<f64>,
    pub total_active: usize,
    pub adv: super::loss::AdvantageStats,
    /// Whether its tokens were added to `num_tokens` already.
    pub counted: bool,
}

/// Adam moments of one adapter tensor.
struct Moments {
    m: GpuBuffer,
    v: GpuBuffer,
}

pub struct Trainer<'g> {
    pub(crate) gpu: &'g Gpu,
    pub cfg: TrainConfig,
    pub model: Model,
    /// Needed only to read text rollouts.
    pub tokenizer: Option<Tokenizer>,
    /// Ids that end a completion (EOS) or pad it: completions ending otherwise are truncated.
    pub eos: Vec<u32>,
    pub pad: Option<u32>,
    pub lora: Lora,
    moments: Vec<Moments>,
    /// Completions per packed forward/backward pass (`None`: a whole group in one pass). Smaller
    /// packs need less memory and run the prompt once per pack; 1 trains each completion alone.
    pub pack_size: Option<usize>,
    /// Optimizer steps taken so far.
    pub optimizer_steps: usize,
    pub(crate) tokens_seen: usize,
}

/// Every adapter tensor as (param, grad, element count), in a fixed order.
fn tensors(lora: &Lora) -> Vec<(&GpuBuffer, &GpuBuffer, usize)> {
    let r = lora.cfg.r;
    lora.modules()
        .flat_map(|(_, _, m)| {
            [
                (&m.a, &m.grad_a, r * m.d_in),
                (&m.b, &m.grad_b, m.d_out * r),
            ]
        })
        .collect()
}

impl<'g> Trainer<'g> {
    /// Loads `cfg.model` and the initial adapter (`init_adapter`, or a fresh one).
    pub fn new(gpu: &'g Gpu, cfg: TrainConfig) -> Result<Trainer<'g>> {
        let m = LoadedModel::open(gpu, &cfg.model, None)?;
        Trainer::with_model(gpu, cfg, m.model, Some(m.tokenizer), m.eos, m.pad)
    }

    /// A trainer over a model already on the GPU (benchmarks use random weights).
    pub fn with_model(gpu: &'g Gpu, cfg: TrainConfig, model: Model, tokenizer: Option<Tokenizer>, eos: Vec<u32>, pad: Option<u32>) -> Result<Trainer<'g>> {
        let lora = Trainer::initial_lora(gpu, &cfg, &model)?;
        Ok(Trainer::with_lora(gpu, cfg, model, tokenizer, eos, pad, lora))
    }

    /// The adapter a new trainer starts from: `init_adapter`, or a fresh one.
    pub fn initial_lora(gpu: &Gpu, cfg: &TrainConfig, model: &Model) -> Result<Lora> {
        match &cfg.init_adapter {
            Some(dir) => Lora::load_peft(gpu, dir, &model.cfg),
            None => Lora::init(gpu, &model.cfg, cfg.lora_config()?, cfg.seed),
        }
    }

    /// A trainer from parts that cannot fail (the C ABI keeps the model if the adapter fails).
    pub fn with_lora(gpu: &'g Gpu, cfg: TrainConfig, model: Model, tokenizer: Option<Tokenizer>, eos: Vec<u32>, pad: Option<u32>, lora: Lora) -> Trainer<'g> {
        Trainer {
            gpu,
            cfg,
            model,
            tokenizer,
            eos,
            pad,
            lora,
            moments: Vec::new(),
            pack_size: None,
            optimizer_steps: 0,
            tokens_seen: 0,
        }
    }

    pub fn read_rollouts(&self) -> Result<Vec<Group>> {
        let path = self
            .cfg
            .rollouts
            .as_ref()
            .ok_or_else(|| Error::Invalid("`rollouts` is required".into()))?;
        rollouts::read(
            path,
            self.tokenizer.as_ref().ok_or_else(|| Error::Invalid("reading rollouts needs the model's tokenizer".into()))?,
            self.cfg.weight_column.as_deref(),
            self.model.cfg.vocab_size,
            self.cfg.max_completion_length,
        )
    }

    /// One rollout batch: groups flattened to completions, advantages and normalisers fixed.
    pub fn batch(&self, groups: &[&Group]) -> Batch {
        let cfg = &self.cfg;
        let eos = &self.eos;
        let rewards: Vec<Vec<f64>> = groups.iter().map(|g| g.rewards.clone()).collect();
        let adv = advantages(cfg, &rewards);
        let mut items = Vec::new();
        for (gi, g) in groups.iter().enumerate() {
            for c in &g.completions {
                // TRL: truncated when the last token is neither EOS nor padding.
                let last = c.last().copied();
                let truncated = !last.is_some_and(|id| eos.contains(&id) || Some(id) == self.pad);
                items.push(Item {
                    group: gi,
                    targets: c.clone(),
                    advantage: adv.advantages[items.len()],
                    weight: g.weight,
                    active: !(cfg.mask_truncated_completions && truncated),
                    truncated,
                    lp_old: None,
                    lp_ref: None,
                });
            }
        }
        let active: Vec<usize> = items
            .iter()
            .map(|it| if it.active { it.targets.len() } else { 0 })
            .collect();
        let norms = normalizers(cfg.loss_type, &active, cfg.max_completion_length);
        let total_active = active.iter().sum::<usize>();
        Batch {
            groups: groups.iter().map(|g| (*g).clone()).collect(),
            items,
            norms,
            total_active,
            adv,
            counted: false,
        }
    }

    /// One optimizer update on `batch` (TRL's step): forward and backward over every
    /// completion, then clipping and the optimizer. The first update on a batch records the
    /// old (and reference) log-probs; later ones (num_iterations > 1) reuse them.
    pub fn step(&mut self, batch: &mut Batch) -> Result<Map<String, Value>> {
        let t0 = Instant::now();
        let cfg = &self.cfg.clone();
        let gpu = self.gpu;
        let temp = cfg.temperature as f32;
        let mut r = Recorder::new(gpu);
        for (_, grad, _) in tensors(&self.lora) {
            r.zero(grad);
        }
        r.submit()?;
        let (mut loss, mut kl_sum, mut ent_sum, mut low, mut high) =
            (0.0, 0.0, 0.0, 0usize, 0usize);
        let inv_active_total = 1.0 / batch.total_active.max(1) as f64;
        // One packed forward and backward per group (or per `pack_size` of its completions):
        // its prompt once, its completions after it.
        let mut first = 0;
        while first < batch.items.len() {
            let gi = batch.items[first].group;
            let same = batch.items[first..].iter().take_while(|it| it.group == gi).count();
            let end = first + same.min(self.pack_size.unwrap_or(usize::MAX).max(1));
            let model = &self.model;
            let items = &mut batch.items[first..end];
            let completions: Vec<&[u32]> = items.iter().map(|it| &it.targets[..]).collect();
            let pack = Pack::new(&batch.groups[gi].prompt_ids, &completions)?;
            if pack.targets.is_empty() {
                // Completions without tokens: nothing to score or train.
                items.iter_mut().for_each(|it| it.lp_old = Some(Vec::new()));
                first = end;
                continue;
            }
            let saved = model.forward_saving(
                gpu,
                &pack,
                Some(&self.lora),
                !cfg.gradient_checkpointing,
            )?;
            let rows = model.row_logprobs(gpu, &saved.hidden, &pack, temp)?;
            if items[0].lp_old.is_none() {
                let base = if cfg.beta > 0.0 {
                    let saved = model.forward_saving(gpu, &pack, None, false)?;
                    Some(model.row_logprobs(gpu, &saved.hidden, &pack, temp)?.lp)
                } else {
                    None
                };
                for (it, range) in items.iter_mut().zip(&pack.completions) {
                    it.lp_old = Some(rows.lp[range.clone()].to_vec());
                    it.lp_ref = base.as_ref().map(|b| b[range.clone()].to_vec());
                }
            }
            let mut coefs = Vec::with_capacity(pack.targets.len());
            for (k, (it, range)) in items.iter().zip(&pack.completions).enumerate() {
                let (lp, entropy) = (&rows.lp[range.clone()], &rows.entropy[range.clone()]);
                let terms = completion_terms(
                    cfg,
                    &CompletionInput {
                        advantage: it.advantage,
                        weight: it.weight,
                        inv_norm: 1.0 / batch.norms[first + k],
                        inv_active_total,
                        active: it.active,
                        lp,
                        lp_old: it.lp_old.as_deref().unwrap_or(lp),
                        lp_ref: it.lp_ref.as_deref(),
                        entropy,
                    },
                );
                loss += terms.loss;
                if it.active {
                    kl_sum += terms.kl_sum;
                    ent_sum += entropy.iter().map(|&e| e as f64).sum::<f64>();
                    low += terms.low_clipped;
                    high += terms.high_clipped;
                }
                coefs.extend(terms.a.iter().zip(&terms.b).map(|(&a, &b)| (a, b)));
            }
            // A group whose every coefficient is zero (zero advantages, no KL, no entropy
            // bonus) adds nothing to the gradient: skip its backward pass. Its tokens still
            // count in the normaliser, as in TRL.
            if coefs.iter().any(|&(a, b)| a != 0.0 || b != 0.0) {
                model.backward(gpu, &pack, &saved, &rows, &coefs, temp, &self.lora)?;
            }
            first = end;
        }
        let (grad_norm, lr) = self.update()?;

        let items = &batch.items;
        let lens: Vec<usize> = items.iter().map(|it| it.targets.len()).collect();
        let n_active = batch.total_active.max(1) as f64;
        // Like TRL's num_tokens: prompt + completion tokens of each batch, counted once.
        if !batch.counted {
            let prompt = |it: &Item| batch.groups[it.group].prompt_ids.len();
            self.tokens_seen += items.iter().map(|it| prompt(it) + it.targets.len()).sum::<usize>();
            batch.counted = true;
        }
        let adv = &batch.adv;
        let mut m = Map::new();
        let mut put = |k: &str, v: Value| {
            m.insert(k.to_string(), v);
        };
        put("step", json!(self.optimizer_steps));
        put("loss", json!(loss));
        put("reward", json!(adv.reward_mean));
        put("reward_std", json!(adv.reward_std));
        put("frac_reward_zero_std", json!(adv.frac_reward_zero_std));
        put(
            "completions/mean_length",
            json!(lens.iter().sum::<usize>() as f64 / lens.len() as f64),
        );
        put("completions/min_length", json!(lens.iter().min()));
        put("completions/max_length", json!(lens.iter().max()));
        put(
            "completions/clipped_ratio",
            json!(items.iter().filter(|it| it.truncated).count() as f64 / items.len() as f64),
        );
        if cfg.beta > 0.0 {
            put("kl", json!(kl_sum / n_active));
        }
        put("entropy", json!(ent_sum / n_active));
        let clip_den = if cfg.importance_sampling_level == ImportanceSampling::Sequence {
            items.len() as f64
        } else {
            n_active
        };
        put("clip_ratio/low_mean", json!(low as f64 / clip_den));
        put("clip_ratio/high_mean", json!(high as f64 / clip_den));
        put("clip_ratio/region_mean", json!((low + high) as f64 / clip_den));
        put("grad_norm", json!(grad_norm));
        put("learning_rate", json!(lr));
        put("num_tokens", json!(self.tokens_seen));
        put("step_time", json!(t0.elapsed().as_secs_f64()));
        Ok(m)
    }

    /// Global-norm clipping and one optimizer update. Returns (grad norm before clipping, lr).
    fn update(&mut self) -> Result<(f64, f64)> {
        let gpu = self.gpu;
        let cfg = &self.cfg;
        let ts = tensors(&self.lora);
        let sums = gpu.alloc((ts.len() * 4) as u64, "gradient norms")?;
        let mut r = Recorder::new(gpu);
        for (i, (_, g, n)) in ts.iter().enumerate() {
            r.sum_squares(g, *n, &sums, i)?;
        }
        r.submit()?;
        let norm = gpu
            .read_f32(&sums, ts.len())?
            .iter()
            .map(|&x| x as f64)
            .sum::<f64>()
            .sqrt();
        if !norm.is_finite() {
            return Err(Error::Gpu(format!("gradient norm is {norm}")));
        }
        let scale = if cfg.max_grad_norm > 0.0 && norm > cfg.max_grad_norm {
            cfg.max_grad_norm / (norm + 1e-6)
        } else {
            1.0
        };
        let lr = cfg.lr_at(self.optimizer_steps, cfg.max_steps);
        self.optimizer_steps += 1;
        if cfg.optimizer == Optimizer::Adamw && self.moments.is_empty() {
            for (_, _, n) in &ts {
                self.moments.push(Moments {
                    m: gpu.alloc((*n * 4) as u64, "adam m")?,
                    v: gpu.alloc((*n * 4) as u64, "adam v")?,
                });
            }
        }
        let mut r = Recorder::new(gpu);
        for (i, (p, g, n)) in ts.iter().enumerate() {
            match cfg.optimizer {
                Optimizer::Sgd => {
                    r.sgd(p, g, *n, lr as f32, cfg.weight_decay as f32, scale as f32)?
                }
                Optimizer::Adamw => {
                    let mm = &self.moments[i];
                    r.adamw(
                        p,
                        g,
                        &mm.m,
                        &mm.v,
                        *n,
                        lr as f32,
                        cfg.adam_beta1 as f32,
                        cfg.adam_beta2 as f32,
                        cfg.adam_epsilon as f32,
                        cfg.weight_decay as f32,
                        self.optimizer_steps as u32,
                        scale as f32,
                    )?
                }
            }
        }
        r.submit()?;
        Ok((norm, lr))
    }

    /// Adam's (m, v, n) per adapter tensor; empty before the first AdamW step or with SGD.
    pub(crate) fn moment_buffers(&self) -> Vec<(&GpuBuffer, &GpuBuffer, usize)> {
        self.moments.iter().zip(self.tensor_sizes()).map(|(m, n)| (&m.m, &m.v, n)).collect()
    }

    pub(crate) fn tensor_sizes(&self) -> Vec<usize> {
        tensors(&self.lora).iter().map(|t| t.2).collect()
    }

    pub(crate) fn clear_moments(&mut self) {
        self.moments.clear();
    }

    pub(crate) fn set_moments(&mut self, host: Vec<(Vec<f32>, Vec<f32>)>) -> Result<()> {
        self.moments = host
            .iter()
            .map(|(m, v)| {
                Ok(Moments { m: self.gpu.upload(bytemuck::cast_slice(m), "adam m")?, v: self.gpu.upload(bytemuck::cast_slice(v), "adam v")? })
            })
            .collect::<Result<_>>()?;
        Ok(())
    }

    pub fn adapter_dir(&self) -> PathBuf {
        self.cfg.output_dir.join("adapter")
    }

    pub fn save(&self) -> Result<()> {
        self.lora.save_peft(
            self.gpu,
            &self.adapter_dir(),
            &self.cfg.model.to_string_lossy(),
        )
    }
}

/// Where a run's groups come from: given completions, or prompts sampled and scored here.
enum Source {
    Offline(Vec<Group>),
    Online { rows: Vec<Row>, rewards: RewardSet, log: std::fs::File, log_path: PathBuf },
}

impl Trainer<'_> {
    /// Samples `num_generations` completions for each row with the current adapter and scores
    /// them. Returns the groups, the per-rule reward metrics, and one log line per completion.
    pub fn sample_groups(&self, rows: &[&Row], stream: u64, rewards: &RewardSet) -> Result<(Vec<Group>, Map<String, Value>, Vec<Value>)> {
        let cfg = &self.cfg;
        let tok = self.tokenizer.as_ref().ok_or_else(|| Error::Invalid("sampling needs the model's tokenizer".into()))?;
        let sampler = GroupSampler {
            decoding: Decoding::Batched,
            gpu: self.gpu,
            model: &self.model,
            lora: Some(&self.lora),
            tokenizer: Some(tok),
            eos: &self.eos,
            stop: &cfg.stop,
            max_new_tokens: cfg.max_completion_length,
            opts: cfg.sampling(cfg.temperature),
        };
        let names = rewards.names();
        let mut per_rule: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
        let mut groups = Vec::with_capacity(rows.len());
        let mut log = Vec::new();
        for (j, row) in rows.iter().enumerate() {
            let prompt_ids = super::rollout::prompt_ids(tok, &row.prompt)?;
            let weight = match &cfg.weight_column {
                None => 1.0,
                Some(col) => row.columns.get(col).and_then(|v| v.as_f64()).filter(|w| w.is_finite()).ok_or_else(|| {
                    Error::Invalid(format!("dataset: weight column `{col}` is missing or not a number"))
                })?,
            };
            let completions = sampler.sample(&prompt_ids, cfg.num_generations, stream.wrapping_mul(1 << 20) + j as u64)?;
            let mut totals = Vec::with_capacity(completions.len());
            for c in &completions {
                let sc = rewards.score(&c.text, c.ids.len(), &row.columns)?;
                for (k, v) in sc.per_rule.iter().enumerate() {
                    per_rule[k].push(*v);
                }
                let by_rule: Map<String, Value> = names.iter().cloned().zip(sc.per_rule.iter().map(|v| json!(v))).collect();
                log.push(json!({ "prompt": tok.decode(&prompt_ids)?, "completion": c.text, "reward": sc.total, "rewards": by_rule }));
                totals.push(sc.total);
            }
            groups.push(Group { prompt_ids, completions: completions.into_iter().map(|c| c.ids).collect(), rewards: totals, weight });
        }
        let mut m = Map::new();
        for (name, vals) in names.iter().zip(&per_rule) {
            let (mean, std) = super::loss::mean_std(vals);
            m.insert(format!("rewards/{name}/mean"), json!(mean));
            m.insert(format!("rewards/{name}/std"), json!(std));
        }
        Ok((groups, m, log))
    }
}

/// `edgerl train`: runs `max_steps` optimizer steps over the rollouts (cycling through them,
/// prompts_per_step groups a batch), appending one JSON line per step to output_dir/metrics.jsonl, then saves the
/// adapter. `on_step` sees each step's metrics.
pub fn train(gpu: &Gpu, cfg: TrainConfig, on_step: impl FnMut(&Map<String, Value>)) -> Result<PathBuf> {
    train_with(gpu, cfg, false, on_step)
}

/// Keeps the lines of a JSONL log whose "step" is at most `step` (a resumed run rewrites what
/// came after its checkpoint).
fn truncate_log(path: &std::path::Path, step: usize) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else { return Ok(()) };
    let kept: String = text
        .lines()
        .filter(|l| serde_json::from_str::<Value>(l).ok().and_then(|v| v["step"].as_u64()).is_some_and(|s| s as usize <= step))
        .map(|l| format!("{l}\n"))
        .collect();
    crate::io::write_atomic(path, kept.as_bytes())
}

fn open_log(path: &std::path::Path, append: bool) -> Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(path)
        .map_err(|e| Error::file(path, e))
}

/// metrics.csv and reward.svg from metrics.jsonl.
fn refresh_reports(out: &std::path::Path) -> Result<()> {
    let jsonl = out.join("metrics.jsonl");
    super::report::write_csv(&jsonl, &out.join("metrics.csv"))?;
    super::report::plot_rewards(&jsonl, &out.join("reward.svg"))
}

/// `train`, optionally resuming from the newest complete checkpoint in `output_dir`.
pub fn train_with(gpu: &Gpu, cfg: TrainConfig, resume: bool, on_step: impl FnMut(&Map<String, Value>)) -> Result<PathBuf> {
    train_packed(gpu, cfg, resume, None, on_step)
}

/// `train_with` with `Trainer::pack_size` set (completions per packed pass; `None`: a whole
/// group), as `edgerl train --memory-budget` picks it.
pub fn train_packed(gpu: &Gpu, cfg: TrainConfig, resume: bool, pack_size: Option<usize>, mut on_step: impl FnMut(&Map<String, Value>)) -> Result<PathBuf> {
    let mut t = Trainer::new(gpu, cfg)?;
    t.pack_size = pack_size;
    let out = t.cfg.output_dir.clone();
    let mut start = 0;
    let mut restored: Option<super::checkpoint::State> = None;
    if resume {
        match super::checkpoint::latest(&out) {
            Some(dir) => {
                let st = t.restore(&dir)?;
                log::info!("resuming from {} (step {})", dir.display(), st.step);
                start = st.step;
                restored = Some(st);
            }
            None => eprintln!("no complete checkpoint in {}: starting from scratch", out.display()),
        }
    }
    let mut source = match &t.cfg.dataset {
        None => Source::Offline(t.read_rollouts()?),
        Some(path) => {
            let rewards = RewardSet::new(&t.cfg.rewards, t.cfg.reward_all_or_nothing)?;
            let rows = dataset::read_for(path, &rewards)?;
            std::fs::create_dir_all(&out).map_err(|e| Error::file(&out, format!("cannot create: {e}")))?;
            let log_path = out.join("completions.jsonl");
            if restored.is_some() {
                truncate_log(&log_path, start)?;
            }
            let log = open_log(&log_path, restored.is_some())?;
            Source::Online { rows, rewards, log, log_path }
        }
    };
    std::fs::create_dir_all(&out).map_err(|e| Error::file(&out, format!("cannot create: {e}")))?;
    let metrics_path = out.join("metrics.jsonl");
    if restored.is_some() {
        truncate_log(&metrics_path, start)?;
    }
    let mut metrics = open_log(&metrics_path, restored.is_some())?;
    // TRL's semantics: max_steps counts optimizer steps, and each rollout batch serves
    // num_iterations consecutive steps.
    let per = t.cfg.prompts_per_step;
    let mut batch = None;
    let mut reward_metrics = Map::new();
    let restored_cursor = restored.as_ref().map(|st| st.cursor);
    if let Some(st) = restored {
        // Mid-batch (num_iterations > 1): the batch and its first-use log-probs come back too.
        if let Some(sb) = st.batch.filter(|_| start % t.cfg.num_iterations != 0) {
            let refs: Vec<&Group> = sb.groups.iter().collect();
            let mut b = t.batch(&refs);
            for ((it, old), rf) in b.items.iter_mut().zip(sb.lp_old).zip(sb.lp_ref) {
                it.lp_old = old;
                it.lp_ref = rf;
            }
            b.counted = sb.counted;
            batch = Some(b);
            if let Ok(Value::Object(m)) = serde_json::from_str(&st.reward_metrics) {
                reward_metrics = m;
            }
        }
    }
    let save_steps = t.cfg.save_steps;
    // Next dataset row to sample (dynamic sampling may consume more than prompts_per_step).
    let mut cursor = restored_cursor.unwrap_or(start / t.cfg.num_iterations * per);
    for step in start..t.cfg.max_steps {
        if step % t.cfg.num_iterations == 0 {
            let b = step / t.cfg.num_iterations;
            let groups: Vec<Group> = match &mut source {
                Source::Offline(all) => (0..per).map(|j| all[(b * per + j) % all.len()].clone()).collect(),
                Source::Online { rows, rewards, log, log_path } => {
                    let picked: Vec<&Row> = (0..per).map(|j| &rows[(cursor + j) % rows.len()]).collect();
                    cursor += per;
                    let (mut groups, mut m, mut lines) = t.sample_groups(&picked, b as u64, rewards)?;
                    // DAPO's dynamic sampling: groups whose rewards are all equal carry no signal;
                    // replace them with fresh prompts, at most `max_refill` extra rounds.
                    let mut refills = 0;
                    if t.cfg.dynamic_sampling {
                        groups.retain(|g| super::loss::mean_std(&g.rewards).1 > 1e-8);
                        while groups.len() < per && refills < t.cfg.max_refill {
                            refills += 1;
                            let need = per - groups.len();
                            let more: Vec<&Row> = (0..need).map(|j| &rows[(cursor + j) % rows.len()]).collect();
                            cursor += need;
                            let stream = b as u64 | ((refills as u64) << 40);
                            let (g2, m2, l2) = t.sample_groups(&more, stream, rewards)?;
                            groups.extend(g2.into_iter().filter(|g| super::loss::mean_std(&g.rewards).1 > 1e-8));
                            lines.extend(l2);
                            m = m2; // per-rule means of the last round; the batch's reward is below
                        }
                        if groups.is_empty() {
                            return Err(Error::Invalid(format!(
                                "dynamic sampling: every group had identical rewards after {refills} refills (max_refill = {}); the rules give this model no signal",
                                t.cfg.max_refill
                            )));
                        }
                        m.insert("dynamic_sampling/refills".into(), json!(refills));
                    }
                    for mut l in lines {
                        l["step"] = json!(step + 1);
                        writeln!(log, "{l}").map_err(|e| Error::file(log_path, e))?;
                    }
                    reward_metrics = m;
                    groups
                }
            };
            let refs: Vec<&Group> = groups.iter().collect();
            batch = Some(t.batch(&refs));
        }
        let Some(batch) = batch.as_mut() else {
            continue;
        };
        let mut m = t.step(batch)?;
        m.extend(reward_metrics.clone());
        writeln!(metrics, "{}", Value::Object(m.clone()))
            .map_err(|e| Error::file(&metrics_path, e))?;
        metrics.sync_data().map_err(|e| Error::file(&metrics_path, e))?;
        on_step(&m);
        if save_steps > 0 && (step + 1) % save_steps == 0 && step + 1 < t.cfg.max_steps {
            t.checkpoint(Some(&*batch), &reward_metrics, cursor)?;
            refresh_reports(&out)?;
        }
    }
    t.checkpoint(batch.as_ref(), &reward_metrics, cursor)?;
    refresh_reports(&out)?;
    t.save()?;
    Ok(t.adapter_dir())
}
