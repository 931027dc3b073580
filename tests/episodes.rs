//! Multi-turn episodes (`rl::episode`): observation tokens are attended to but carry no loss.
//!
//! - The gradient of a step on two episodes equals the gradient of the same packed sequences
//!   with hand-made coefficients (−A_i / (B·T_i) on the model's tokens, 0 on observations,
//!   T_i = the model's tokens) run through `Model::backward` directly; without the mask it
//!   differs.
//! - An episode with one act and no observation trains exactly like an ordinary GRPO
//!   completion (two updates on one batch, so the importance ratios and the KL term move).
//! - Chat-mode observations are the chat template's user turn and generation prompt.

mod common;

use std::path::{Path, PathBuf};

use edgerl::gpu::{Gpu, Recorder};
use edgerl::lora::Lora;
use edgerl::model::LoadedModel;
use edgerl::model::pack::Pack;
use edgerl::rl::TrainConfig;
use edgerl::rl::episode::{Episode, chat_observation_ids, episode_batch};
use edgerl::rl::rollouts::Group;
use edgerl::rl::trainer::Trainer;

fn model_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models/qwen3_f16")
}

fn config(extra: &str) -> TrainConfig {
    TrainConfig::from_toml(&format!(
        "model = {:?}\noutput_dir = \"unused\"\nrollouts = \"unused\"\ntemperature = 1.0\n{extra}\n[lora]\nr = 4\nalpha = 8\n",
        model_dir().display().to_string()
    ))
    .unwrap()
}

/// A trainer whose adapter has non-zero A and B (a fresh one has B = 0, which hides A's
/// gradient), the same values for every call.
fn trainer(gpu: &'static Gpu, cfg: &TrainConfig) -> Trainer<'static> {
    let m = LoadedModel::open(gpu, &cfg.model, None).unwrap();
    let mut seed = 12345u64;
    let mut next = move || {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.2
    };
    let lora = Lora::from_values(gpu, &m.model.cfg, cfg.lora_config().unwrap(), |_, t| {
        let (d_in, d_out) = t.dims(&m.model.cfg);
        Ok(((0..4 * d_in).map(|_| next()).collect(), (0..d_out * 4).map(|_| next()).collect()))
    })
    .unwrap();
    Trainer::with_lora(gpu, cfg.clone(), m.model, Some(m.tokenizer), m.eos, m.pad, lora)
}

fn read_all(gpu: &Gpu, lora: &Lora, grads: bool) -> Vec<f32> {
    let mut out = Vec::new();
    for (_, _, m) in lora.modules() {
        let r = lora.cfg.r;
        let (a, b) = if grads { (&m.grad_a, &m.grad_b) } else { (&m.a, &m.b) };
        out.extend(gpu.read_f32(a, r * m.d_in).unwrap());
        out.extend(gpu.read_f32(b, m.d_out * r).unwrap());
    }
    out
}

fn max_diff(x: &[f32], y: &[f32]) -> f32 {
    assert_eq!(x.len(), y.len());
    x.iter().zip(y).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max)
}

fn max_abs(x: &[f32]) -> f32 {
    x.iter().fold(0.0f32, |m, v| m.max(v.abs()))
}

/// Two episodes of one task: acts and observations interleaved (token ids of the fixture's
/// 403-token vocabulary; 402 is EOS).
fn two_episodes() -> Vec<Episode> {
    let prompt = vec![5u32, 17, 29, 41];
    let mut a = Episode::new(prompt.clone()).unwrap();
    a.push_act(&[60, 61, 402]);
    a.push_observation(&[70, 71, 72]);
    a.push_act(&[80, 81]);
    let mut b = Episode::new(prompt).unwrap();
    b.push_act(&[90, 402]);
    b.push_observation(&[100]);
    b.push_act(&[110, 111, 112, 402]);
    vec![a, b]
}

#[test]
fn observation_tokens_carry_no_gradient() {
    for gpu in common::normal_gpus() {
        let cfg = config("loss_type = \"grpo\"\nscale_rewards = \"none\"\noptimizer = \"sgd\"\nlearning_rate = 0.1");
        let eps = two_episodes();
        let refs: Vec<&Episode> = eps.iter().collect();
        let rewards = [1.0, 0.0];

        // Through the trainer: the batch's masks and the loss's coefficients.
        let mut t = trainer(gpu, &cfg);
        let mut batch = episode_batch(&t, &refs, &rewards, 2).unwrap();
        assert_eq!(batch.norms, vec![2.0 * 5.0, 2.0 * 6.0], "B·T_i with T_i = the model's tokens");
        t.step(&mut batch).unwrap();
        let masked = read_all(gpu, &t.lora, true);

        // By hand: scale_rewards none gives A = r − mean = ±0.5; at the first update the
        // ratio is 1, so ∂loss/∂lp_t = −A_i / (B·T_i) on the model's tokens.
        let h = trainer(gpu, &cfg);
        let completions: Vec<&[u32]> = eps.iter().map(|e| &e.tokens[..]).collect();
        let pack = Pack::new(&eps[0].prompt_ids, &completions).unwrap();
        let mut coefs = Vec::new();
        for (e, adv) in eps.iter().zip([0.5, -0.5]) {
            let t_i = e.sampled.iter().filter(|&&s| s).count() as f64;
            for &s in &e.sampled {
                coefs.push((if s { (-adv / (2.0 * t_i)) as f32 } else { 0.0 }, 0.0));
            }
        }
        let saved = h.model.forward_saving(gpu, &pack, Some(&h.lora), true).unwrap();
        let rows = h.model.row_logprobs(gpu, &saved.hidden, &pack, 1.0).unwrap();
        let mut r = Recorder::new(gpu);
        for (_, _, m) in h.lora.modules() {
            r.zero(&m.grad_a);
            r.zero(&m.grad_b);
        }
        r.submit().unwrap();
        h.model.backward(gpu, &pack, &saved, &rows, &coefs, 1.0, &h.lora).unwrap();
        let by_hand = read_all(gpu, &h.lora, true);
        let scale = max_abs(&by_hand);
        assert!(scale > 1e-4, "the gradient is not trivially zero: {scale}");
        let d = max_diff(&masked, &by_hand);
        eprintln!("{} ({}): masked vs by hand: max |Δgrad| {d:.3e} (max |grad| {scale:.3e})", gpu.adapter.name, gpu.adapter.backend);
        assert!(d <= 1e-4 * scale, "masked episode gradient vs hand coefficients: {d} (scale {scale})");

        // Without the mask (the same tokens as ordinary completions) the gradient differs.
        let mut u = trainer(gpu, &cfg);
        let group = Group {
            prompt_ids: eps[0].prompt_ids.clone(),
            completions: eps.iter().map(|e| e.tokens.clone()).collect(),
            rewards: rewards.to_vec(),
            weight: 1.0,
            sampler_logps: None,
            images: None,
        };
        let mut plain = u.batch(&[&group]);
        u.step(&mut plain).unwrap();
        let unmasked = read_all(gpu, &u.lora, true);
        let d = max_diff(&unmasked, &masked);
        assert!(d > 0.05 * scale, "dropping the mask must change the gradient: {d} (scale {scale})");
    }
}

#[test]
fn single_act_episode_trains_like_a_completion() {
    for gpu in common::normal_gpus() {
        let cfg = config(
            "loss_type = \"grpo\"\nbeta = 0.1\nnum_iterations = 2\nmask_truncated_completions = true\noptimizer = \"adamw\"\nlearning_rate = 0.05",
        );
        let prompt = vec![5u32, 17, 29, 41];
        let completions: Vec<Vec<u32>> = vec![vec![60, 61, 402], vec![90, 91, 92, 93], vec![110, 402]];
        let rewards = [1.0, 0.0, 0.5];

        let mut g = trainer(gpu, &cfg);
        let before = read_all(gpu, &g.lora, false);
        let group = Group { prompt_ids: prompt.clone(), completions: completions.clone(), rewards: rewards.to_vec(), weight: 1.0, sampler_logps: None, images: None };
        let mut plain = g.batch(&[&group]);
        for _ in 0..2 {
            g.step(&mut plain).unwrap();
        }

        let mut e = trainer(gpu, &cfg);
        let eps: Vec<Episode> = completions
            .iter()
            .map(|c| {
                let mut ep = Episode::new(prompt.clone()).unwrap();
                ep.push_act(c);
                ep
            })
            .collect();
        let refs: Vec<&Episode> = eps.iter().collect();
        let mut batch = episode_batch(&e, &refs, &rewards, 3).unwrap();
        let flags = |b: &edgerl::rl::trainer::Batch| -> Vec<(bool, bool)> { b.items.iter().map(|it| (it.truncated, it.active)).collect() };
        assert_eq!(flags(&batch), vec![(false, true), (true, false), (false, true)]);
        assert_eq!(flags(&batch), flags(&plain));
        assert_eq!(batch.norms, plain.norms);
        for _ in 0..2 {
            e.step(&mut batch).unwrap();
        }
        let (a, b) = (read_all(gpu, &g.lora, false), read_all(gpu, &e.lora, false));
        let moved = max_diff(&a, &before);
        assert!(moved > 1e-3, "two updates moved the adapter: {moved}");
        let d = max_diff(&a, &b);
        eprintln!("{} ({}): episode vs completion adapters: max |Δ| {d:.3e} (moved {moved:.3e})", gpu.adapter.name, gpu.adapter.backend);
        assert!(d <= 1e-6, "a one-act episode trains like a completion: max |Δ| {d}");
    }
}

#[test]
fn chat_observations_are_user_turns() {
    let tok = edgerl::model::Tokenizer::open(&model_dir()).unwrap();
    let end = tok.encode("<|im_end|>", false).unwrap();
    assert_eq!(end, vec![402], "the fixture's turn end is its EOS");
    // The fixture's template is ChatML: the text after an assistant turn's content.
    let want = |closing: &str| tok.encode(&format!("{closing}\n<|im_start|>user\nthe screen<|im_end|>\n<|im_start|>assistant\n"), false).unwrap();
    assert_eq!(chat_observation_ids(&tok, "the screen", Some(402)).unwrap(), want(""));
    assert_eq!(chat_observation_ids(&tok, "the screen", Some(60)).unwrap(), want("<|im_end|>"));

    // An act cut short anywhere in the episode makes it truncated; masks follow acts.
    let mut e = Episode::new(vec![1, 2]).unwrap();
    e.push_act(&[3, 4]);
    e.push_observation(&[5]);
    e.push_act(&[6, 402]);
    assert_eq!(e.sampled, vec![true, true, false, true, true]);
    assert_eq!(e.context(), vec![1, 2, 3, 4, 5, 6, 402]);
    assert!(e.last_is_act() && e.acts == 2);
}

/// Qwen3's real template renders earlier assistant turns differently from the last one (it
/// strips their thinking); the observation is still the plain ChatML user turn.
#[test]
fn chat_observations_with_qwen3s_template() {
    let Some(dir) = std::env::var_os("EDGERL_QWEN3_TOKENIZER_DIR") else {
        assert!(std::env::var_os("CI").is_none(), "CI must set EDGERL_QWEN3_TOKENIZER_DIR (see .ci/run)");
        eprintln!("skipping: EDGERL_QWEN3_TOKENIZER_DIR is not set");
        return;
    };
    let tok = edgerl::model::Tokenizer::open(Path::new(&dir)).unwrap();
    let end = tok.encode("<|im_end|>", false).unwrap();
    assert_eq!(end.len(), 1);
    let want = tok.encode("\n<|im_start|>user\nthe screen<|im_end|>\n<|im_start|>assistant\n", false).unwrap();
    assert_eq!(chat_observation_ids(&tok, "the screen", Some(end[0])).unwrap(), want);
}
