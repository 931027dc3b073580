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
    let g = Group { prompt_ids: vec![1], completions: vec![vec![2, 3]], rewards: vec![1.0], weight: 1.0, sampler_logps: None, images: None };
    assert_eq!(sampler_logps_of(&cfg(""), &g, 0, true).unwrap(), None);
    let on = cfg("icepop_beta = 2.0");
    let e = sampler_logps_of(&on, &g, 0, true).unwrap_err().to_string();
    assert!(e.contains("sampler_logps") && e.contains("icepop_beta"), "{e}");
    assert_eq!(sampler_logps_of(&on, &g, 0, false).unwrap(), None);
    let with = Group { sampler_logps: Some(vec![vec![-0.5, -1.0]]), ..g };
    assert_eq!(sampler_logps_of(&on, &with, 0, true).unwrap(), Some(&[-0.5f32, -1.0][..]));
}
