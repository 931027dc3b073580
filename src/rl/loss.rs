//! The GRPO-family objective on the CPU: advantages from rewards, and for each completion the
//! per-token derivatives of the step's loss with respect to its log-probs (a_t) and entropies
//! (b_t). The GPU turns those into gradients through the vocabulary chunks. TRL's semantics.

use super::config::{Advantage, ImportanceSampling, LossType, SamplerCorrection, ScaleRewards, TrainConfig};
use super::rollouts::Group;
use crate::error::{Error, Result};

/// Mean and unbiased (Bessel) standard deviation; 0 for fewer than two values.
pub fn mean_std(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n.max(1.0);
    if x.len() < 2 {
        return (mean, 0.0);
    }
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

pub struct AdvantageStats {
    /// One advantage per completion, groups in order.
    pub advantages: Vec<f64>,
    pub reward_mean: f64,
    /// Standard deviation of all the step's rewards (TRL's `reward_std`).
    pub reward_std: f64,
    pub frac_reward_zero_std: f64,
    /// Whether each group has identical rewards (no signal under a group baseline).
    pub zero_std: Vec<bool>,
}

pub fn advantages(cfg: &TrainConfig, rewards: &[Vec<f64>]) -> AdvantageStats {
    let all: Vec<f64> = rewards.iter().flatten().copied().collect();
    let (_, batch_std) = mean_std(&all);
    let mut advantages = Vec::with_capacity(all.len());
    let mut zero_std = Vec::new();
    for group in rewards {
        let (mean, std) = mean_std(group);
        zero_std.push(std.abs() < 1e-8);
        for &r in group {
            let a = match cfg.advantage {
                Advantage::Grpo => match cfg.scale_rewards {
                    ScaleRewards::Group => (r - mean) / (std + 1e-4),
                    ScaleRewards::Batch => (r - mean) / (batch_std + 1e-4),
                    ScaleRewards::None => r - mean,
                },
                // Binary rewards: correct when r > 0.5.
                Advantage::WReinforce => {
                    if r > 0.5 {
                        cfg.w_reinforce_lambda
                    } else {
                        -1.0
                    }
                }
                Advantage::Psr => r,
                Advantage::Nsr => r - 1.0,
            };
            advantages.push(a);
        }
    }
    let n = rewards.len().max(1) as f64;
    AdvantageStats {
        reward_mean: all.iter().sum::<f64>() / all.len().max(1) as f64,
        reward_std: batch_std,
        // In batch mode TRL judges "zero std" by the batch std.
        frac_reward_zero_std: if cfg.scale_rewards == ScaleRewards::Batch {
            (batch_std.abs() < 1e-8) as u8 as f64
        } else {
            zero_std.iter().filter(|&&z| z).count() as f64 / n
        },
        advantages,
        zero_std,
    }
}

/// The divisor that turns Σ_t m·ℓ of completion i into its share of the step's loss.
/// `active[i]` = loss tokens of completion i (0 when masked out), `max_len` = L.
pub fn normalizers(loss: LossType, active: &[usize], max_len: usize) -> Vec<f64> {
    let b = active.len() as f64;
    let total = active.iter().sum::<usize>().max(1) as f64;
    active
        .iter()
        .map(|&t| match loss {
            LossType::Grpo => b * t.max(1) as f64,
            LossType::Bnpo | LossType::Dapo | LossType::Cispo => total,
            LossType::DrGrpo => b * max_len as f64,
        })
        .collect()
}

/// `normalizers` for a step under `cfg`: Dr. GRPO divides by `cfg.dr_grpo_divisor()`
/// (`loss_divisor`, or TRL's `max_completion_length`) instead of L. GUI-G1's loss,
/// mean_i(w_q · Σ_t ℓ / C), is `dr_grpo` with `loss_divisor = C`.
pub fn step_normalizers(cfg: &TrainConfig, active: &[usize]) -> Vec<f64> {
    if cfg.loss_type == LossType::DrGrpo {
        let b = active.len() as f64;
        return vec![b * cfg.dr_grpo_divisor(); active.len()];
    }
    normalizers(cfg.loss_type, active, cfg.max_completion_length)
}

/// GUI-G1's difficulty weight from a group's own results (`difficulty_weight = true`):
/// 1 − p, p = the fraction of the group's rewards at or above `threshold` (the run's
/// `success_threshold`). A prompt the policy always solves weighs 0, one it never solves 1.
/// The paper's released code instead reads a precomputed per-prompt `rate` column, which is
/// `weight_column` here.
pub fn difficulty_weight(rewards: &[f64], threshold: f64) -> f64 {
    if rewards.is_empty() {
        return 1.0;
    }
    let passed = rewards.iter().filter(|&&r| r >= threshold).count();
    1.0 - passed as f64 / rewards.len() as f64
}

/// What one completion contributes: its loss share, per-token coefficients, and metric sums.
#[derive(Default, Debug)]
pub struct CompletionTerms {
    /// ∂loss/∂lp_t (already scaled by weight / normalizer and the mask).
    pub a: Vec<f32>,
    /// ∂loss/∂H_t.
    pub b: Vec<f32>,
    pub loss: f64,
    pub low_clipped: usize,
    pub high_clipped: usize,
    pub kl_sum: f64,
    /// With a sampler correction: |lp_old − lp_sampler| of each loss token, and the
    /// importance-sampling ratios TRL's metrics see (one per token, or one per completion in
    /// the sequence modes), after truncation or masking.
    pub logp_diffs: Vec<f64>,
    pub is_ratios: Vec<f64>,
}

pub struct CompletionInput<'a> {
    pub advantage: f64,
    pub weight: f64,
    /// 1/N_i from `normalizers`.
    pub inv_norm: f64,
    /// 1 / (active tokens in the whole step): the entropy bonus is a mean over them (TRL).
    pub inv_active_total: f64,
    /// false: masked out (e.g. truncated with mask_truncated_completions).
    pub active: bool,
    pub lp: &'a [f32],
    pub lp_old: &'a [f32],
    pub lp_ref: Option<&'a [f32]>,
    pub entropy: &'a [f32],
    /// The sampler's log-probs of the tokens (`sampler_logps_of`): with a sampler correction
    /// configured, each policy-gradient term is weighted by `sampler_weights`.
    pub lp_sampler: Option<&'a [f32]>,
}

/// TRL's `vllm_importance_sampling_mode` weights of one completion's tokens, from
/// d_t = lp_old_t − lp_sampler_t (a NaN difference counts as 0, as in TRL): ratio exp(d_t) per
/// token, or exp(Σ_t d_t) for every token of the completion in the sequence modes; then
/// clamped to [clip_min, clip_max] (`*_truncate`) or set to 0 outside it (`*_mask`). The
/// weights depend on no trained quantity: they multiply the policy-gradient terms as
/// constants. IcePop is `token_mask` with [1/β, β].
pub fn sampler_weights(k: &SamplerCorrection, lp_old: &[f32], lp_sampler: &[f32]) -> Vec<f64> {
    let d: Vec<f64> = lp_old
        .iter()
        .zip(lp_sampler)
        .map(|(&o, &s)| {
            let d = o as f64 - s as f64;
            if d.is_nan() { 0.0 } else { d }
        })
        .collect();
    let keep = |r: f64| {
        if k.mode.mask() {
            if r < k.clip_min || r > k.clip_max { 0.0 } else { r }
        } else {
            r.max(k.clip_min).min(k.clip_max)
        }
    };
    if k.mode.sequence() {
        let w = keep(d.iter().sum::<f64>().exp());
        vec![w; d.len()]
    } else {
        d.iter().map(|&x| keep(x.exp())).collect()
    }
}

/// The sampler log-probs completion `j` of `group` is corrected with: `None` without a sampler
/// correction. A group without them is an error on its first use (offline rollouts without a
/// `sampler_logps` column, or episodes), and uncorrected on later uses of a batch restored
/// from a checkpoint older than version 4 (`first_use` false: those did not keep sampler
/// log-probs; from version 4 they come back with the batch).
pub fn sampler_logps_of<'a>(cfg: &TrainConfig, group: &'a Group, j: usize, first_use: bool) -> Result<Option<&'a [f32]>> {
    if cfg.sampler_correction().is_none() {
        return Ok(None);
    }
    match &group.sampler_logps {
        Some(lps) => lps
            .get(j)
            .map(|v| Some(&v[..]))
            .ok_or_else(|| Error::Invalid(format!("no sampler log-probs for completion {j} of a group"))),
        None if first_use => Err(Error::Invalid(
            "the importance-sampling correction (`vllm_importance_sampling_correction` / `icepop_beta`) needs the sampler's log-prob of every completion token: online runs record them; offline rollouts must carry `sampler_logps` (one list per completion, one log-prob per token)".into(),
        )),
        None => {
            if j == 0 {
                log::warn!("a batch restored from a checkpoint written before trainer state version 4 has no sampler log-probs: its remaining updates run without the importance-sampling correction");
            }
            Ok(None)
        }
    }
}

/// TRL's `sampling/…` metrics of a step from the completions' `logp_diffs` and `is_ratios`
/// (0 where there is nothing to average, as TRL).
pub fn sampling_metrics(logp_diffs: &[f64], is_ratios: &[f64]) -> Vec<(&'static str, f64)> {
    let mean = |x: &[f64]| if x.is_empty() { 0.0 } else { x.iter().sum::<f64>() / x.len() as f64 };
    let fold = |x: &[f64], f: fn(f64, f64) -> f64| x.iter().copied().reduce(f).unwrap_or(0.0);
    vec![
        ("sampling/sampling_logp_difference/mean", mean(logp_diffs)),
        ("sampling/sampling_logp_difference/max", fold(logp_diffs, f64::max)),
        ("sampling/importance_sampling_ratio/min", fold(is_ratios, f64::min)),
        ("sampling/importance_sampling_ratio/mean", mean(is_ratios)),
        ("sampling/importance_sampling_ratio/max", fold(is_ratios, f64::max)),
    ]
}

/// d min(x, y) / d(x, y) as torch.minimum: to the smaller, split evenly on ties.
fn min_grad(x: f64, y: f64) -> (f64, f64) {
    if x < y {
        (1.0, 0.0)
    } else if y < x {
        (0.0, 1.0)
    } else {
        (0.5, 0.5)
    }
}

pub fn completion_terms(cfg: &TrainConfig, c: &CompletionInput) -> CompletionTerms {
    let t = c.lp.len();
    let mut out = CompletionTerms {
        a: vec![0.0; t],
        b: vec![0.0; t],
        ..Default::default()
    };
    if !c.active || t == 0 {
        return out;
    }
    let (eps_lo, eps_hi) = (cfg.epsilon, cfg.epsilon_high());
    let adv = c.advantage;
    let scale = c.weight * c.inv_norm; // every token's loss is multiplied by this
    let log_ratio: Vec<f64> = (0..t)
        .map(|i| c.lp[i] as f64 - c.lp_old[i] as f64)
        .collect();
    // TRL multiplies each policy-gradient term (not the KL, not the entropy bonus) by the
    // sampler correction's weight.
    let correction = cfg.sampler_correction().zip(c.lp_sampler);
    let w_is: Option<Vec<f64>> = correction.map(|(k, s)| sampler_weights(&k, c.lp_old, s));
    if let (Some((k, s)), Some(w)) = (correction, &w_is) {
        out.logp_diffs = c.lp_old.iter().zip(s).map(|(&o, &s)| (o as f64 - s as f64).abs()).filter(|d| !d.is_nan()).collect();
        out.is_ratios = if k.mode.sequence() { w[..1].to_vec() } else { w.clone() };
    }
    let seq = cfg.importance_sampling_level == ImportanceSampling::Sequence;
    let seq_log_w = log_ratio.iter().sum::<f64>() / t as f64;
    // ∂loss/∂(log importance weight) summed over tokens, for the sequence-level chain rule.
    let mut d_seq = 0.0;
    for i in 0..t {
        let lw = if seq { seq_log_w } else { log_ratio[i] };
        let rho = lw.exp();
        let (mut loss_i, d_lw, mut d_lp);
        if cfg.loss_type == LossType::Cispo {
            // -stopgrad(min(ρ, ε_high)) · A · lp: no gradient through ρ.
            let coef = rho.min(eps_hi);
            loss_i = -coef * adv * c.lp[i] as f64;
            d_lp = -coef * adv;
            d_lw = 0.0;
        } else {
            d_lp = 0.0;
            let (coef1, d_coef1) = match cfg.delta {
                Some(delta) if rho > delta => (delta, 0.0),
                _ => (rho, rho),
            };
            let lo = 1.0 - eps_lo;
            let hi = 1.0 + eps_hi;
            let (coef2, d_coef2) = if rho < lo {
                (lo, 0.0)
            } else if rho > hi {
                (hi, 0.0)
            } else {
                (rho, rho)
            };
            let (g1, g2) = min_grad(coef1 * adv, coef2 * adv);
            loss_i = -(coef1 * adv).min(coef2 * adv);
            d_lw = -(g1 * d_coef1 + g2 * d_coef2) * adv;
        }
        let w = w_is.as_ref().map_or(1.0, |w| w[i]);
        loss_i *= w;
        d_lp *= w;
        let d_lw = d_lw * w;
        // TRL's clip metrics look at the ratio after the `delta` cap; at sequence level
        // they count completions, not tokens.
        let capped = cfg.delta.map_or(rho, |d| rho.min(d));
        if i == 0 || !seq {
            out.low_clipped += (capped < 1.0 - eps_lo && adv < 0.0) as usize;
            out.high_clipped += (capped > 1.0 + eps_hi && adv > 0.0) as usize;
        }
        let mut d_lw = d_lw;
        if let Some(r) = c.lp_ref {
            // k3 estimator times the importance ratio (TRL's use_bias_correction_kl, default on).
            let diff = r[i] as f64 - c.lp[i] as f64;
            let k3 = diff.exp() - diff - 1.0;
            out.kl_sum += k3 * rho;
            loss_i += cfg.beta * k3 * rho;
            d_lp += cfg.beta * rho * (1.0 - diff.exp());
            d_lw += cfg.beta * k3 * rho;
        }
        out.loss += loss_i * scale;
        // The entropy bonus is −c · (mean entropy over the step's active tokens), unweighted.
        out.loss -= cfg.entropy_coef * c.entropy[i] as f64 * c.inv_active_total;
        out.b[i] = (-cfg.entropy_coef * c.inv_active_total) as f32;
        if seq {
            d_seq += d_lw;
            out.a[i] = (d_lp * scale) as f32;
        } else {
            out.a[i] = ((d_lp + d_lw) * scale) as f32;
        }
    }
    if seq {
        // log w = mean_t log ratio_t, so each token gets 1/T of the summed derivative.
        for i in 0..t {
            out.a[i] += (d_seq * scale / t as f64) as f32;
        }
    }
    out
}

/// `completion_terms` over the tokens where `mask` is true (an episode's own tokens): the
/// objective sees only those, as one completion of that length (so sequence-level ratios and
/// Dr. GRPO-style means run over the model's tokens), and the other tokens get zero
/// coefficients.
pub fn masked_terms(cfg: &TrainConfig, c: &CompletionInput, mask: &[bool]) -> CompletionTerms {
    let pick = |x: &[f32]| -> Vec<f32> {
        x.iter().zip(mask).filter(|(_, m)| **m).map(|(v, _)| *v).collect()
    };
    let (lp, lp_old, entropy) = (pick(c.lp), pick(c.lp_old), pick(c.entropy));
    let lp_ref = c.lp_ref.map(pick);
    let lp_sampler = c.lp_sampler.map(pick);
    let inner = completion_terms(
        cfg,
        &CompletionInput {
            lp: &lp,
            lp_old: &lp_old,
            lp_ref: lp_ref.as_deref(),
            entropy: &entropy,
            lp_sampler: lp_sampler.as_deref(),
            ..*c
        },
    );
    let mut out = CompletionTerms {
        a: vec![0.0; c.lp.len()],
        b: vec![0.0; c.lp.len()],
        ..inner
    };
    let at = mask.iter().enumerate().filter(|(_, m)| **m).map(|(i, _)| i);
    for (k, i) in at.enumerate() {
        out.a[i] = inner.a[k];
        out.b[i] = inner.b[k];
    }
    out
}

#[cfg(test)]
mod tests;
