//! The trainer: per step, advantages from the rewards, one packed forward pass per group
//! (prompt once, completions after it), the objective's per-token coefficients on the CPU, the
//! backward pass on the GPU, clipping and the optimizer step; the adapter in PEFT format.
//! `edgerl train`'s loop around it is in run.rs.

use std::path::PathBuf;
use std::time::Instant;


use super::config::{ImportanceSampling, Optimizer, TrainConfig};
use super::loss::{CompletionInput, advantages, completion_terms, masked_terms, sampler_logps_of, sampling_metrics, step_normalizers};
use super::rollouts::{self, Group};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, GpuBuffer, Recorder};
use crate::lora::Lora;
use crate::model::keep::KeptRollout;
use crate::model::pack::Pack;
use crate::model::{LoadedModel, Model, Tokenizer};

pub use super::metrics::{RewardMetrics, RuleReward, SamplingMetrics, StepMetrics};

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
    /// Which of `targets` carry loss (`None`: all). An episode's observation tokens are
    /// attended to but masked out, and count in no normaliser (`rl::episode`).
    pub loss_mask: Option<Vec<bool>>,
}

impl Item {
    /// The tokens that carry loss (T_i of the normalisers).
    pub fn loss_tokens(&self) -> usize {
        self.loss_mask.as_ref().map_or(self.targets.len(), |m| m.iter().filter(|&&b| b).count())
    }
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

/// One sequence of a supervised step (`Trainer::step_supervised`): its pack and one (a, b)
/// coefficient pair per predicted token (`Pack::targets`).
pub struct Supervised {
    pub pack: Pack,
    pub coefs: Vec<(f32, f32)>,
    /// The features of the image tokens in the pack's prompt (a vision row; `None`: text).
    pub images: Option<GpuBuffer>,
}

/// A pack's rows after a supervised step's forward pass.
pub struct SupervisedRows {
    pub lp: Vec<f32>,
    pub entropy: Vec<f32>,
    /// The target was the most likely token.
    pub top1: Vec<bool>,
}

/// What `Trainer::step_supervised` did.
pub struct SupervisedStep {
    /// Σ a·lp + b·H over every pack.
    pub loss: f64,
    /// Before clipping (NaN/Inf when the update was skipped for it).
    pub grad_norm: f64,
    pub lr: f64,
    pub skipped: bool,
    pub rows: Vec<SupervisedRows>,
}

/// A tokenizer's decoding of token ids.
pub type Decode<'a> = &'a dyn Fn(&[u32]) -> Result<String>;

/// Finishes a batch's items: a truncated completion (no loss mask: episodes end their acts
/// otherwise and keep their verdict) whose last token completes one of `cfg.stop` is finished,
/// not truncated (for `mask_truncated_completions` and `completions/clipped_ratio`), as the
/// sampler stopped there. `decode`: the tokenizer's (`None`: stop strings can't be seen; a
/// decoding error counts as no stop). Returns the step's normalisers and active token total.
pub(crate) fn settle(cfg: &TrainConfig, decode: Option<Decode>, items: &mut [Item]) -> (Vec<f64>, usize) {
    if let Some(decode) = decode.filter(|_| !cfg.stop.is_empty()) {
        for it in items.iter_mut().filter(|it| it.truncated && it.loss_mask.is_none()) {
            if super::rollout::ends_with_stop(decode, &cfg.stop, &it.targets).unwrap_or(false) {
                it.truncated = false;
                it.active = true;
            }
        }
    }
    let active: Vec<usize> = items.iter().map(|it| if it.active { it.loss_tokens() } else { 0 }).collect();
    (step_normalizers(cfg, &active), active.iter().sum())
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
    /// Optimizer steps taken so far, skipped ones included (they advance the schedule).
    pub optimizer_steps: usize,
    pub(crate) tokens_seen: usize,
    /// Steps whose loss, gradients or gradient norm were NaN/Inf: their update was skipped.
    pub skipped_steps: usize,
    /// Skipped steps since the last applied one (`max_consecutive_skips` stops the run).
    pub consecutive_skips: usize,
    /// Test-only fault injection: at these steps (1-based, as in metrics.jsonl) a NaN is written
    /// into a gradient buffer on the GPU before the update. Set from
    /// `EDGERL_FAULT_NONFINITE_STEPS=2,3`.
    #[doc(hidden)]
    pub fault_nonfinite_steps: Vec<usize>,
    /// The run's fingerprint (`fingerprint::of`), written into checkpoints and compared on
    /// restore; empty outside `edgerl train` (nothing to compare).
    pub run_fingerprint: Vec<(String, String)>,
    /// A vision-language model's processor and tower (rows with images; `None`: text only).
    pub vision: Option<crate::vision::ImageSide>,
    /// The sampled groups' activations, kept for their first training pass (`keeps_rollouts`).
    pub(super) kept: std::sync::Mutex<Vec<super::kept::KeptGroup>>,
}


/// What one update did.
struct Update {
    /// Global gradient norm before clipping (NaN/Inf when skipped for it).
    grad_norm: f64,
    lr: f64,
    /// A non-finite loss or gradient: parameters and optimizer state are untouched.
    skipped: bool,
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
        let mut t = Trainer::with_model(gpu, cfg, m.model, Some(m.tokenizer), m.eos, m.pad)?;
        t.vision = m.vision;
        Ok(t)
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
            skipped_steps: 0,
            consecutive_skips: 0,
            fault_nonfinite_steps: super::faults::nonfinite_steps(),
            run_fingerprint: Vec::new(),
            vision: None,
            kept: Default::default(),
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
        self.masked_batch(groups, &[])
    }

    /// `batch` with a loss mask per completion (`masks` empty: none; else one per completion,
    /// groups in order). A completion is truncated when one of its runs of loss tokens (an
    /// episode's act) does not end in EOS or padding; unmasked, that is TRL's rule, except
    /// that a completion whose last token completes one of the config's `stop` strings is
    /// finished too (`settle`). The normalisers are `loss::step_normalizers` (Dr. GRPO's
    /// `loss_divisor`).
    pub fn masked_batch(&self, groups: &[&Group], masks: &[Vec<bool>]) -> Batch {
        let cfg = &self.cfg;
        let eos = &self.eos;
        let rewards: Vec<Vec<f64>> = groups.iter().map(|g| g.rewards.clone()).collect();
        let adv = advantages(cfg, &rewards);
        let mut items = Vec::new();
        for (gi, g) in groups.iter().enumerate() {
            for c in &g.completions {
                let mask = masks.get(items.len()).cloned();
                let ends_ok = |id: Option<u32>| id.is_some_and(|id| eos.contains(&id) || Some(id) == self.pad);
                let truncated = match &mask {
                    // TRL: truncated when the last token is neither EOS nor padding.
                    None => !ends_ok(c.last().copied()),
                    Some(m) => (0..c.len()).any(|i| m[i] && m.get(i + 1) != Some(&true) && !ends_ok(Some(c[i]))),
                };
                items.push(Item {
                    group: gi,
                    targets: c.clone(),
                    advantage: adv.advantages[items.len()],
                    weight: g.weight,
                    active: !(cfg.mask_truncated_completions && truncated),
                    truncated,
                    lp_old: None,
                    lp_ref: None,
                    loss_mask: mask,
                });
            }
        }
        let decode = |ids: &[u32]| match &self.tokenizer {
            Some(tok) => tok.decode(ids),
            None => Err(Error::Invalid("no tokenizer".into())),
        };
        let (norms, total_active) = settle(cfg, self.tokenizer.as_ref().map(|_| &decode as Decode), &mut items);
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
    pub fn step(&mut self, batch: &mut Batch) -> Result<StepMetrics> {
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
        // The sampler correction's per-token |lp_old − lp_sampler| and ratios (TRL's `sampling/…`).
        let (mut logp_diffs, mut is_ratios) = (Vec::new(), Vec::new());
        let inv_active_total = 1.0 / batch.total_active.max(1) as f64;
        // One packed forward and backward per group (or per `pack_size` of its completions):
        // its prompt once, its completions after it.
        let mut first = 0;
        // The kept sampling pass of the group in hand (`usize::MAX`: none yet).
        let mut kept_for: (usize, Option<KeptRollout>) = (usize::MAX, None);
        while first < batch.items.len() {
            let gi = batch.items[first].group;
            let same = batch.items[first..].iter().take_while(|it| it.group == gi).count();
            let end = first + same.min(self.pack_size.unwrap_or(usize::MAX).max(1));
            // The group's first item: completion `first + k - g0` of the group.
            let g0 = batch.items.iter().position(|it| it.group == gi).unwrap_or(first);
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
            let images = batch.groups[gi].images.as_ref().map(|f| &*f.0);
            let first_use = items[0].lp_old.is_none();
            // The group's sampling kept this pass's activations: rearranged, not recomputed.
            if first_use && gi != kept_for.0 {
                kept_for = (gi, self.take_kept(&batch.groups[gi]));
            }
            // The group's last pack takes the kept activations over, layer by layer.
            let last = end == first + same;
            let from_rollout = match (&mut kept_for.1, first_use) {
                (Some(k), true) => {
                    let samples: Vec<usize> = (first - g0..end - g0).collect();
                    let saved = model.saved_from_rollout(gpu, k, &pack, &samples, last);
                    saved.inspect_err(|e| log::debug!("{e}; running the forward pass")).ok()
                }
                _ => None,
            };
            if last {
                kept_for.1 = None;
            }
            let saved = match from_rollout {
                Some(saved) => saved,
                None => model.forward_saving_with_images(
                    gpu,
                    &pack,
                    images,
                    Some(&self.lora),
                    !cfg.gradient_checkpointing.recomputes(),
                )?,
            };
            let rows = model.row_logprobs(gpu, &saved.hidden, &pack, temp)?;
            if items[0].lp_old.is_none() {
                let base = if cfg.beta > 0.0 {
                    let saved = model.forward_saving_with_images(gpu, &pack, images, None, false)?;
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
                let input = CompletionInput {
                    advantage: it.advantage,
                    weight: it.weight,
                    inv_norm: 1.0 / batch.norms[first + k],
                    inv_active_total,
                    active: it.active,
                    lp,
                    lp_old: it.lp_old.as_deref().unwrap_or(lp),
                    lp_ref: it.lp_ref.as_deref(),
                    entropy,
                    lp_sampler: sampler_logps_of(cfg, &batch.groups[gi], first + k - g0, first_use)?,
                };
                let terms = match &it.loss_mask {
                    None => completion_terms(cfg, &input),
                    Some(mask) => masked_terms(cfg, &input, mask),
                };
                loss += terms.loss;
                if it.active {
                    kl_sum += terms.kl_sum;
                    ent_sum += entropy
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| it.loss_mask.as_ref().is_none_or(|m| m[*i]))
                        .map(|(_, &e)| e as f64)
                        .sum::<f64>();
                    low += terms.low_clipped;
                    high += terms.high_clipped;
                    logp_diffs.extend(terms.logp_diffs);
                    is_ratios.extend(terms.is_ratios);
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
        drop(kept_for);
        // Whatever is still kept was sampled for another batch or adapter.
        self.kept_groups().clear();
        let Update { grad_norm, lr, skipped } = self.update(loss)?;

        let items = &batch.items;
        let lens: Vec<usize> = items.iter().map(Item::loss_tokens).collect();
        let n_active = batch.total_active.max(1) as f64;
        // Like TRL's num_tokens: prompt + completion tokens of each batch, counted once.
        if !batch.counted {
            let prompt = |it: &Item| batch.groups[it.group].prompt_ids.len();
            self.tokens_seen += items.iter().map(|it| prompt(it) + it.targets.len()).sum::<usize>();
            batch.counted = true;
        }
        let adv = &batch.adv;
        let sampling = cfg.sampler_correction().is_some().then(|| {
            let mut s = SamplingMetrics::default();
            for (k, v) in sampling_metrics(&logp_diffs, &is_ratios) {
                match k {
                    "sampling/sampling_logp_difference/mean" => s.logp_difference_mean = v,
                    "sampling/sampling_logp_difference/max" => s.logp_difference_max = v,
                    "sampling/importance_sampling_ratio/min" => s.importance_sampling_ratio_min = v,
                    "sampling/importance_sampling_ratio/mean" => s.importance_sampling_ratio_mean = v,
                    "sampling/importance_sampling_ratio/max" => s.importance_sampling_ratio_max = v,
                    _ => {}
                }
            }
            s
        });
        let clip_den = if cfg.importance_sampling_level == ImportanceSampling::Sequence {
            items.len() as f64
        } else {
            n_active
        };
        if skipped {
            log::warn!("step {}: loss {loss}, gradient norm {grad_norm}: not finite, update skipped", self.optimizer_steps);
        }
        Ok(StepMetrics {
            step: self.optimizer_steps,
            loss,
            reward: adv.reward_mean,
            reward_std: adv.reward_std,
            frac_reward_zero_std: adv.frac_reward_zero_std,
            completion_mean_length: lens.iter().sum::<usize>() as f64 / lens.len() as f64,
            completion_min_length: lens.iter().min().copied(),
            completion_max_length: lens.iter().max().copied(),
            clipped_ratio: items.iter().filter(|it| it.truncated).count() as f64 / items.len() as f64,
            kl: (cfg.beta > 0.0).then(|| kl_sum / n_active),
            entropy: ent_sum / n_active,
            sampling,
            clip_ratio_low: low as f64 / clip_den,
            clip_ratio_high: high as f64 / clip_den,
            clip_ratio_region: (low + high) as f64 / clip_den,
            grad_norm,
            learning_rate: lr,
            num_tokens: self.tokens_seen,
            skipped_steps: self.skipped_steps,
            step_time: t0.elapsed().as_secs_f64(),
            rewards: RewardMetrics::default(),
        })
    }

    /// One optimizer update on given sequences whose loss  Σ_t a_t·lp_t + b_t·H_t  has
    /// coefficients that do not depend on the log-probs (supervised fine-tuning's NLL: `rl::sft`):
    /// a forward and backward pass per pack (logits at temperature 1), then the same clipping
    /// and optimizer as `step`. Returns the loss, the update, and each pack's rows.
    pub fn step_supervised(&mut self, seqs: &[Supervised]) -> Result<SupervisedStep> {
        let gpu = self.gpu;
        let mut r = Recorder::new(gpu);
        for (_, grad, _) in tensors(&self.lora) {
            r.zero(grad);
        }
        r.submit()?;
        let mut loss = 0.0;
        let mut out = Vec::with_capacity(seqs.len());
        for s in seqs {
            if s.coefs.len() != s.pack.targets.len() {
                return Err(Error::Invalid("supervised step: coefficients do not match the pack's rows".into()));
            }
            let keep = !self.cfg.gradient_checkpointing.recomputes();
            let saved = self.model.forward_saving_with_images(gpu, &s.pack, s.images.as_ref(), Some(&self.lora), keep)?;
            let rows = self.model.row_logprobs(gpu, &saved.hidden, &s.pack, 1.0)?;
            // The target is the top-1 token when its logit is the maximum (same values, same
            // chunks: equal exactly).
            let st = gpu.read_f32(&rows.state, rows.rows * 4)?;
            let top1 = (0..rows.rows).map(|i| st[i * 4 + 2] >= st[i * 4]).collect();
            loss += s
                .coefs
                .iter()
                .zip(rows.lp.iter().zip(&rows.entropy))
                .map(|(&(a, b), (&lp, &h))| a as f64 * lp as f64 + b as f64 * h as f64)
                .sum::<f64>();
            if s.coefs.iter().any(|&(a, b)| a != 0.0 || b != 0.0) {
                self.model.backward(gpu, &s.pack, &saved, &rows, &s.coefs, 1.0, &self.lora)?;
            }
            out.push(SupervisedRows { lp: rows.lp.clone(), entropy: rows.entropy.clone(), top1 });
        }
        let Update { grad_norm, lr, skipped } = self.update(loss)?;
        if skipped {
            log::warn!("step {}: loss {loss}, gradient norm {grad_norm}: not finite, update skipped", self.optimizer_steps);
        }
        Ok(SupervisedStep { loss, grad_norm, lr, skipped, rows: out })
    }

    /// Global-norm clipping and one optimizer update, or none when `loss` or the gradients
    /// are not finite (a NaN anywhere makes the global norm NaN, an Inf makes it Inf).
    fn update(&mut self, loss: f64) -> Result<Update> {
        let gpu = self.gpu;
        let cfg = &self.cfg;
        let ts = tensors(&self.lora);
        if self.fault_nonfinite_steps.contains(&(self.optimizer_steps + 1)) {
            super::faults::poison(gpu, ts[0].1);
        }
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
        let lr = cfg.lr_at(self.optimizer_steps, cfg.max_steps);
        self.optimizer_steps += 1;
        if !(loss.is_finite() && norm.is_finite()) {
            self.skipped_steps += 1;
            self.consecutive_skips += 1;
            return Ok(Update { grad_norm: norm, lr, skipped: true });
        }
        self.consecutive_skips = 0;
        let scale = if cfg.max_grad_norm > 0.0 && norm > cfg.max_grad_norm {
            cfg.max_grad_norm / (norm + 1e-6)
        } else {
            1.0
        };
        if cfg.optimizer == Optimizer::Adamw && self.moments.is_empty() {
            // All or nothing: an allocation failing halfway (a memory budget) must not leave
            // fewer moments than tensors for the next update to index.
            self.moments = ts
                .iter()
                .map(|(_, _, n)| {
                    Ok(Moments {
                        m: gpu.alloc((*n * 4) as u64, "adam m")?,
                        v: gpu.alloc((*n * 4) as u64, "adam v")?,
                    })
                })
                .collect::<Result<_>>()?;
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
                        // Adam's step count (bias correction) counts applied updates only.
                        (self.optimizer_steps - self.skipped_steps) as u32,
                        scale as f32,
                    )?
                }
            }
        }
        let done = r.submit();
        // A and B may have changed even where the submit reports an error.
        self.lora.changed();
        done?;
        Ok(Update { grad_norm: norm, lr, skipped: false })
    }

    /// Adam's (m, v, n) per adapter tensor; empty before the first AdamW step or with SGD.
    pub(crate) fn moment_buffers(&self) -> Vec<(&GpuBuffer, &GpuBuffer, usize)> {
        self.moments.iter().zip(self.tensor_sizes()).map(|(m, n)| (&m.m, &m.v, n)).collect()
    }

    pub(crate) fn tensor_sizes(&self) -> Vec<usize> {
        tensors(&self.lora).iter().map(|t| t.2).collect()
    }

    /// Device bytes this trainer holds between steps: the weights, the adapter and its
    /// gradients, and Adam's moments (the C ABI's budget subtracts the rest of the runtime).
    pub fn held_bytes(&self) -> u64 {
        let modules: u64 = self.lora.modules().map(|(_, _, m)| m.a.bytes + m.b.bytes + m.grad_a.bytes + m.grad_b.bytes).sum();
        let adapter = modules + self.lora.stacks.iter().map(|s| s.bytes()).sum::<u64>();
        let moments: u64 = self.moments.iter().map(|m| m.m.bytes + m.v.bytes).sum();
        self.model.weight_bytes() + adapter + moments
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

    /// Batched group sampling with the current adapter and the config's sampling settings and
    /// stop strings, at most `max_new_tokens` a completion.
    pub fn sampler(&self, max_new_tokens: usize) -> super::rollout::GroupSampler<'_> {
        super::rollout::GroupSampler {
            decoding: super::rollout::Decoding::Batched,
            gpu: self.gpu,
            model: &self.model,
            lora: Some(&self.lora),
            tokenizer: self.tokenizer.as_ref(),
            eos: &self.eos,
            stop: &self.cfg.stop,
            max_new_tokens,
            opts: self.cfg.sampling(self.cfg.temperature),
        }
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

pub use super::run::{Start, train, train_packed, train_with};

#[cfg(test)]
mod tests;
