//! The GRPO-family objective on the CPU: advantages from rewards, and for each completion the
//! per-token derivatives of the step's loss with respect to its log-probs (a_t) and entropies
//! (b_t). The GPU turns those into gradients through the vocabulary chunks. TRL's semantics.

use super::config::{Advantage, ImportanceSampling, LossType, ScaleRewards, TrainConfig};

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
    let inner = completion_terms(
        cfg,
        &CompletionInput {
            lp: &lp,
            lp_old: &lp_old,
            lp_ref: lp_ref.as_deref(),
            entropy: &entropy,
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
            },
        );
        let full = terms(&lp, &all);
        assert_eq!((full.a, full.b, full.loss), (plain.a, plain.b, plain.loss));
        assert_ne!(base.loss, plain.loss);
    }
}
