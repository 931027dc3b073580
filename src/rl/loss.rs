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
/// from a checkpoint (`first_use` false: checkpoints do not keep sampler log-probs).
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
                log::warn!("a batch restored from a checkpoint has no sampler log-probs: its remaining updates run without the importance-sampling correction");
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
mod tests {
    use super::*;

    fn cfg(extra: &str) -> TrainConfig {
        TrainConfig::from_toml(&format!(
            "model = \"m\"\noutput_dir = \"o\"\nrollouts = \"r\"\n{extra}"
        ))
        .unwrap()
    }

    #[test]
    fn group_advantages_use_bessel_std() {
        let c = cfg("scale_rewards = \"group\"");
        let s = advantages(&c, &[vec![1.0, 0.0, 0.0, 1.0], vec![2.0, 2.0]]);
        let std = (4.0f64 * 0.25 / 3.0).sqrt();
        assert!((s.advantages[0] - 0.5 / (std + 1e-4)).abs() < 1e-12);
        assert_eq!(&s.advantages[4..], &[0.0, 0.0]);
        assert_eq!(s.frac_reward_zero_std, 0.5);
        let c = cfg("advantage = \"w_reinforce\"");
        assert_eq!(
            advantages(&c, &[vec![1.0, 0.0]]).advantages,
            vec![0.1, -1.0]
        );
    }

    /// `loss_divisor` replaces L in Dr. GRPO's divisor: every coefficient and the loss scale
    /// by exactly L / divisor (a power of two here, so bit for bit); TRL's default is L.
    #[test]
    fn dr_grpo_divisor_scales_the_gradient_exactly() {
        let trl = cfg("loss_type = \"dr_grpo\"\nmax_completion_length = 256\nbeta = 0.05");
        let g1 = cfg("loss_type = \"dr_grpo\"\nmax_completion_length = 256\nloss_divisor = 64.0\nbeta = 0.05");
        let active = [3usize, 0, 4];
        let (n_trl, n_g1) = (step_normalizers(&trl, &active), step_normalizers(&g1, &active));
        assert_eq!(n_trl, normalizers(LossType::DrGrpo, &active, 256));
        assert_eq!(n_trl, vec![3.0 * 256.0; 3]);
        assert_eq!(n_g1, vec![3.0 * 64.0; 3]);
        // Other loss types are untouched by the key's absence.
        let dapo = cfg("loss_type = \"dapo\"");
        assert_eq!(step_normalizers(&dapo, &active), normalizers(LossType::Dapo, &active, 256));
        let lp_old = [-1.0f32, -2.0, -0.5, -3.0];
        let lp = [-0.98f32, -2.1, -0.45, -2.7];
        let lp_ref = [-1.2f32, -1.9, -0.6, -3.1];
        let ent = [1.0f32, 2.0, 0.5, 1.5];
        let terms = |c: &TrainConfig, norm: f64| {
            completion_terms(
                c,
                &CompletionInput {
                    advantage: -0.6,
                    weight: 1.0,
                    inv_norm: 1.0 / norm,
                    inv_active_total: 0.0,
                    active: true,
                    lp: &lp,
                    lp_old: &lp_old,
                    lp_ref: Some(&lp_ref),
                    entropy: &ent,
                    lp_sampler: None,
                },
            )
        };
        let (a, b) = (terms(&trl, n_trl[0]), terms(&g1, n_g1[0]));
        for (x, y) in a.a.iter().zip(&b.a) {
            assert!(*x != 0.0);
            assert_eq!(*y, *x * 4.0);
        }
        assert_eq!(b.loss, a.loss * 4.0);
    }

    /// Harder groups weigh more; the weight multiplies every coefficient as `weight_column`'s
    /// does, and the two combine by product.
    #[test]
    fn difficulty_weight_from_the_pass_rate() {
        assert_eq!(difficulty_weight(&[1.0, 1.0, 1.0, 1.0], 1.0), 0.0);
        assert_eq!(difficulty_weight(&[0.0, 0.0, 0.0, 0.0], 1.0), 1.0);
        assert_eq!(difficulty_weight(&[1.0, 0.0, 0.2, 1.3], 1.0), 0.5);
        assert_eq!(difficulty_weight(&[0.9, 0.5, 0.2, 0.1], 0.5), 0.5);
        assert_eq!(difficulty_weight(&[1.125, 0.25, 0.0], 1.0), 1.0 - 1.0 / 3.0);
        assert_eq!(difficulty_weight(&[], 1.0), 1.0);
        let c = cfg("loss_type = \"grpo\"");
        let lp = [-0.5f32, -1.5];
        let ent = [0.0f32; 2];
        let with = |weight: f64| {
            completion_terms(
                &c,
                &CompletionInput {
                    advantage: 1.0,
                    weight,
                    inv_norm: 0.5,
                    inv_active_total: 0.0,
                    active: true,
                    lp: &lp,
                    lp_old: &lp,
                    lp_ref: None,
                    entropy: &ent,
                    lp_sampler: None,
                },
            )
            .a
        };
        let column = 4.0;
        let d = difficulty_weight(&[1.0, 1.0, 0.0, 0.0], 1.0); // 0.5
        let both = with(column * d);
        for (x, y) in both.iter().zip(with(1.0)) {
            assert!(y != 0.0);
            assert_eq!(*x, y * 2.0);
        }
    }

    /// The analytic coefficients match a finite difference of the loss itself.
    #[test]
    fn coefficients_match_finite_differences() {
        for extra in [
            "loss_type = \"grpo\"\nbeta = 0.1\nentropy_coef = 0.01",
            "loss_type = \"dapo\"\nimportance_sampling_level = \"sequence\"\nepsilon = 0.05",
            "loss_type = \"cispo\"\nepsilon_high = 1.1",
            "loss_type = \"bnpo\"\ndelta = 1.05\nepsilon = 0.3",
        ] {
            let c = cfg(extra);
            let lp_old = [-1.0f32, -2.0, -0.5, -3.0];
            let lp = [-0.98f32, -2.1, -0.45, -2.7];
            let lp_ref = [-1.2f32, -1.9, -0.6, -3.1];
            let ent = [1.0f32, 2.0, 0.5, 1.5];
            for adv in [0.7, -1.3] {
                let input = |lp: &[f32]| {
                    let inp = CompletionInput {
                        advantage: adv,
                        weight: 0.8,
                        inv_norm: 0.25,
                        inv_active_total: 0.1,
                        active: true,
                        lp,
                        lp_old: &lp_old,
                        lp_ref: Some(&lp_ref),
                        entropy: &ent,
                        lp_sampler: None,
                    };
                    completion_terms(&c, &inp)
                };
                let base = input(&lp);
                for i in 0..4 {
                    let h = 1e-3f32;
                    let (mut up, mut dn) = (lp, lp);
                    up[i] += h;
                    dn[i] -= h;
                    let fd = (input(&up).loss - input(&dn).loss) / (2.0 * h as f64);
                    if c.loss_type == LossType::Cispo {
                        // The ratio is detached: the coefficient is -min(ρ, ε_high)·A (beta = 0 here).
                        let rho = ((lp[i] - lp_old[i]) as f64).exp();
                        let want = -rho.min(1.1) * adv * 0.8 * 0.25;
                        assert!((want - base.a[i] as f64).abs() < 1e-6, "cispo token {i}");
                        continue;
                    }
                    assert!(
                        (fd - base.a[i] as f64).abs() < 1e-3,
                        "{extra} adv {adv} token {i}: fd {fd} vs {}",
                        base.a[i]
                    );
                }
            }
        }
    }

    /// Masked-out tokens are not in the loss at all (sequence-level ratios included): moving
    /// their log-probs changes nothing and their coefficients are 0; the others match finite
    /// differences; an all-true mask is the plain objective.
    #[test]
    fn masked_tokens_are_outside_the_loss() {
        let c = cfg("loss_type = \"dapo\"\nimportance_sampling_level = \"sequence\"\nbeta = 0.1\nentropy_coef = 0.01");
        let mask = [true, false, true, true, false];
        let lp_old = [-1.0f32, -2.0, -0.5, -3.0, -1.5];
        let lp = [-0.9f32, -2.5, -0.45, -2.8, -0.2];
        let lp_ref = [-1.2f32, -1.9, -0.6, -3.1, -1.0];
        let ent = [1.0f32, 2.0, 0.5, 1.5, 3.0];
        let terms = |lp: &[f32], mask: &[bool]| {
            let inp = CompletionInput {
                advantage: 0.7,
                weight: 1.0,
                inv_norm: 1.0 / 3.0,
                inv_active_total: 1.0 / 3.0,
                active: true,
                lp,
                lp_old: &lp_old,
                lp_ref: Some(&lp_ref),
                entropy: &ent,
                lp_sampler: None,
            };
            masked_terms(&c, &inp, mask)
        };
        let base = terms(&lp, &mask);
        for i in 0..5 {
            let h = 1e-3f32;
            let (mut up, mut dn) = (lp, lp);
            up[i] += h;
            dn[i] -= h;
            let fd = (terms(&up, &mask).loss - terms(&dn, &mask).loss) / (2.0 * h as f64);
            if mask[i] {
                assert!((fd - base.a[i] as f64).abs() < 1e-3, "token {i}: fd {fd} vs {}", base.a[i]);
            } else {
                assert_eq!((fd, base.a[i], base.b[i]), (0.0, 0.0, 0.0), "masked-out token {i}");
            }
        }
        let all = [true; 5];
        let plain = completion_terms(
            &c,
            &CompletionInput {
                advantage: 0.7,
                weight: 1.0,
                inv_norm: 1.0 / 3.0,
                inv_active_total: 1.0 / 3.0,
                active: true,
                lp: &lp,
                lp_old: &lp_old,
                lp_ref: Some(&lp_ref),
                entropy: &ent,
                lp_sampler: None,
            },
        );
        let full = terms(&lp, &all);
        assert_eq!((full.a, full.b, full.loss), (plain.a, plain.b, plain.loss));
        assert_ne!(base.loss, plain.loss);
    }

    /// TRL's four `vllm_importance_sampling_mode`s and IcePop, on hand-worked ratios.
    #[test]
    fn sampler_weights_follow_trl_modes() {
        use super::super::config::{IsMode, SamplerCorrection};
        let lp_old = [-1.0f32, -2.0, -0.5, -3.0];
        // d = lp_old − lp_sampler = [ln 4, −ln 4, 0, ln 1.5]
        let lp_s = [-1.0 - 4f32.ln(), -2.0 + 4f32.ln(), -0.5, -3.0 - 1.5f32.ln()];
        let k = |mode, clip_min, clip_max| SamplerCorrection { mode, clip_min, clip_max };
        let close = |a: &[f64], b: &[f64]| a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5);
        let w = sampler_weights(&k(IsMode::TokenTruncate, f64::NEG_INFINITY, 3.0), &lp_old, &lp_s);
        assert!(close(&w, &[3.0, 0.25, 1.0, 1.5]), "{w:?}");
        let w = sampler_weights(&k(IsMode::TokenTruncate, 0.5, 3.0), &lp_old, &lp_s);
        assert!(close(&w, &[3.0, 0.5, 1.0, 1.5]), "{w:?}");
        let w = sampler_weights(&k(IsMode::TokenMask, 0.5, 3.0), &lp_old, &lp_s);
        assert!(close(&w, &[0.0, 0.0, 1.0, 1.5]), "{w:?}");
        // Sequence modes: exp(Σ d) = 4 · 1/4 · 1 · 1.5 = 1.5 for every token.
        let w = sampler_weights(&k(IsMode::SequenceTruncate, f64::NEG_INFINITY, 1.2), &lp_old, &lp_s);
        assert!(close(&w, &[1.2; 4]), "{w:?}");
        let w = sampler_weights(&k(IsMode::SequenceMask, f64::NEG_INFINITY, 1.2), &lp_old, &lp_s);
        assert!(close(&w, &[0.0; 4]), "{w:?}");
        let w = sampler_weights(&k(IsMode::SequenceMask, f64::NEG_INFINITY, 3.0), &lp_old, &lp_s);
        assert!(close(&w, &[1.5; 4]), "{w:?}");
        // A NaN difference counts as 0 (ratio 1), as TRL's nan_to_num.
        let w = sampler_weights(&k(IsMode::TokenTruncate, f64::NEG_INFINITY, 3.0), &[-1.0], &[f32::NAN]);
        assert_eq!(w, vec![1.0]);
        // IcePop: token_mask over [1/β, β].
        let c = cfg("icepop_beta = 2.0");
        assert_eq!(c.sampler_correction(), Some(k(IsMode::TokenMask, 0.5, 2.0)));
        // TRL's defaults once switched on: sequence_mask, C_max 3, no C_min; the deprecated cap.
        let c = cfg("vllm_importance_sampling_correction = true");
        assert_eq!(c.sampler_correction(), Some(k(IsMode::SequenceMask, f64::NEG_INFINITY, 3.0)));
        let c = cfg("vllm_importance_sampling_correction = true\nvllm_importance_sampling_cap = 2.0\nvllm_importance_sampling_mode = \"token_truncate\"");
        assert_eq!(c.sampler_correction(), Some(k(IsMode::TokenTruncate, f64::NEG_INFINITY, 2.0)));
        assert_eq!(cfg("").sampler_correction(), None);
    }

    /// With a sampler correction, the coefficients handed to the backward pass are the
    /// derivative of the corrected objective (finite differences), the policy term of each
    /// token is TRL's per_token_loss × weight, and the KL and entropy terms are not weighted.
    #[test]
    fn corrected_coefficients_match_finite_differences() {
        let lp_old = [-1.0f32, -2.0, -0.5, -3.0];
        let lp = [-0.98f32, -2.1, -0.45, -2.7];
        let lp_ref = [-1.2f32, -1.9, -0.6, -3.1];
        let ent = [1.0f32, 2.0, 0.5, 1.5];
        let lp_s = [-1.6f32, -1.95, -0.5, -3.3];
        for extra in [
            "loss_type = \"grpo\"\nbeta = 0.1\nentropy_coef = 0.01\nvllm_importance_sampling_correction = true\nvllm_importance_sampling_mode = \"token_truncate\"\nvllm_importance_sampling_clip_max = 1.5",
            "loss_type = \"dapo\"\nbeta = 0.05\nvllm_importance_sampling_correction = true\nvllm_importance_sampling_mode = \"token_mask\"\nvllm_importance_sampling_clip_min = 0.9\nvllm_importance_sampling_clip_max = 1.5",
            "loss_type = \"dapo\"\nimportance_sampling_level = \"sequence\"\nepsilon = 0.05\nvllm_importance_sampling_correction = true\nvllm_importance_sampling_mode = \"sequence_truncate\"\nvllm_importance_sampling_clip_max = 2.0",
            "loss_type = \"bnpo\"\ndelta = 1.05\nvllm_importance_sampling_correction = true",
            "loss_type = \"cispo\"\nepsilon_high = 1.1\nicepop_beta = 1.5",
            "loss_type = \"grpo\"\nbeta = 0.1\nicepop_beta = 1.5\nsampler_logprobs = \"unfiltered\"",
        ] {
            let c = cfg(extra);
            let k = c.sampler_correction().unwrap();
            let w = sampler_weights(&k, &lp_old, &lp_s);
            for adv in [0.7, -1.3] {
                let terms = |lp: &[f32], sampler: Option<&[f32]>, c: &TrainConfig| {
                    completion_terms(
                        c,
                        &CompletionInput {
                            advantage: adv,
                            weight: 0.8,
                            inv_norm: 0.25,
                            inv_active_total: 0.1,
                            active: true,
                            lp,
                            lp_old: &lp_old,
                            lp_ref: Some(&lp_ref),
                            entropy: &ent,
                            lp_sampler: sampler,
                        },
                    )
                };
                let base = terms(&lp, Some(&lp_s), &c);
                // CISPO's ratio is detached (no finite difference); the product check below covers it.
                for i in (0..4).filter(|_| c.loss_type != LossType::Cispo) {
                    let h = 1e-3f32;
                    let (mut up, mut dn) = (lp, lp);
                    up[i] += h;
                    dn[i] -= h;
                    let fd = (terms(&up, Some(&lp_s), &c).loss - terms(&dn, Some(&lp_s), &c).loss) / (2.0 * h as f64);
                    assert!((fd - base.a[i] as f64).abs() < 1e-3, "{extra} adv {adv} token {i}: fd {fd} vs {}", base.a[i]);
                }
                // The uncorrected objective, its KL and entropy parts taken out, scaled per token
                // by the weights, is the corrected one (token-level ratios only: GSPO's
                // sequence ratio mixes the tokens' derivatives).
                let mut plain_cfg = c.clone();
                plain_cfg.vllm_importance_sampling_correction = false;
                plain_cfg.icepop_beta = None;
                let mut bare = plain_cfg.clone();
                bare.beta = 0.0;
                bare.entropy_coef = 0.0;
                let policy = terms(&lp, None, &bare);
                let plain = terms(&lp, None, &plain_cfg);
                if c.importance_sampling_level == ImportanceSampling::Token {
                    for (i, wi) in w.iter().enumerate() {
                        let want = policy.a[i] as f64 * wi + (plain.a[i] - policy.a[i]) as f64;
                        assert!((want - base.a[i] as f64).abs() < 1e-6, "{extra} token {i}: {want} vs {}", base.a[i]);
                    }
                }
                // Without sampler log-probs the correction does nothing.
                let none = terms(&lp, None, &c);
                assert_eq!((none.a, none.loss), (plain.a, plain.loss));
                assert!(none.is_ratios.is_empty() && none.logp_diffs.is_empty());
                // Metrics: |lp_old − lp_sampler| per token, and TRL's ratios.
                let diffs: Vec<f64> = lp_old.iter().zip(&lp_s).map(|(&o, &s)| (o as f64 - s as f64).abs()).collect();
                assert_eq!(base.logp_diffs, diffs);
                assert_eq!(base.is_ratios, if k.mode.sequence() { w[..1].to_vec() } else { w.clone() });
            }
        }
    }

    #[test]
    fn sampling_metrics_are_trls() {
        let m = sampling_metrics(&[0.1, 0.3], &[0.5, 1.0, 3.0]);
        let get = |k: &str| m.iter().find(|(n, _)| *n == k).unwrap().1;
        assert!((get("sampling/sampling_logp_difference/mean") - 0.2).abs() < 1e-12);
        assert_eq!(get("sampling/sampling_logp_difference/max"), 0.3);
        assert_eq!(get("sampling/importance_sampling_ratio/min"), 0.5);
        assert_eq!(get("sampling/importance_sampling_ratio/mean"), 1.5);
        assert_eq!(get("sampling/importance_sampling_ratio/max"), 3.0);
        assert!(sampling_metrics(&[], &[]).iter().all(|(_, v)| *v == 0.0));
    }

    /// Offline groups without sampler log-probs are refused on first use when the correction is
    /// on; a batch restored from a checkpoint (not its first use) goes uncorrected.
    #[test]
    fn missing_sampler_logps_are_refused_on_first_use() {
        let g = Group { prompt_ids: vec![1], completions: vec![vec![2, 3]], rewards: vec![1.0], weight: 1.0, sampler_logps: None };
        assert_eq!(sampler_logps_of(&cfg(""), &g, 0, true).unwrap(), None);
        let on = cfg("icepop_beta = 2.0");
        let e = sampler_logps_of(&on, &g, 0, true).unwrap_err().to_string();
        assert!(e.contains("sampler_logps") && e.contains("icepop_beta"), "{e}");
        assert_eq!(sampler_logps_of(&on, &g, 0, false).unwrap(), None);
        let with = Group { sampler_logps: Some(vec![vec![-0.5, -1.0]]), ..g };
        assert_eq!(sampler_logps_of(&on, &with, 0, true).unwrap(), Some(&[-0.5f32, -1.0][..]));
    }

}
