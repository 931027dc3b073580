//! A group's sampling pass, kept (`Model::sample_group_keeping`) and put into a pack's order
//! (`Model::saved_from_rollout`), holds what the pack's own forward pass computes, and the
//! backward pass from it gives the same gradients.

mod common;

use edgerl::gpu::Gpu;
use edgerl::model::adapter::{Lora, LoraConfig, Target};
use edgerl::model::generate::SamplingOptions;
use edgerl::model::pack::Pack;
use edgerl::model::train::Saved;
use edgerl::model::{LoadedModel, Model};
use edgerl::rl::TrainConfig;
use edgerl::rl::episode::{Episode, episode_batch};
use edgerl::rl::trainer::Trainer;

fn lora(gpu: &Gpu, m: &Model) -> Lora {
    let cfg = LoraConfig { r: 4, alpha: 8.0, use_rslora: false, targets: Target::ALL.to_vec() };
    let mut rng = common::Rng::new(5);
    Lora::from_values(gpu, &m.cfg, cfg.clone(), |_, t| {
        let (d_in, d_out) = t.dims(&m.cfg);
        let a: Vec<f32> = rng.vec(cfg.r * d_in).iter().map(|v| v * 0.2).collect();
        let b: Vec<f32> = rng.vec(d_out * cfg.r).iter().map(|v| v * 0.2).collect();
        Ok((a, b))
    })
    .unwrap()
}

fn read(gpu: &Gpu, b: &edgerl::gpu::GpuBuffer, n: usize) -> Vec<f32> {
    gpu.read_f32(b, n).unwrap()
}

/// Every buffer the backward pass reads, `got` against `want`.
fn assert_saved_close(gpu: &Gpu, m: &Model, rank: usize, got: &Saved, want: &Saved, what: &str) {
    let (t, h) = (want.t, m.cfg.hidden_size);
    assert_eq!(got.t, t, "{what}: rows");
    let tol = 2e-3;
    for (li, (g, w)) in got.inputs.iter().zip(&want.inputs).enumerate() {
        common::assert_close(&format!("{what}: input of layer {li}"), &read(gpu, g, t * h), &read(gpu, w, t * h), tol, tol);
    }
    common::assert_close(&format!("{what}: final hidden"), &read(gpu, &got.hidden, t * h), &read(gpu, &want.hidden, t * h), tol, tol);
    let (gl, wl) = (got.layers.as_ref().unwrap(), want.layers.as_ref().unwrap());
    for (li, (g, w)) in gl.iter().zip(wl).enumerate() {
        let (gb, wb) = (g.row_buffers(&m.cfg, rank), w.row_buffers(&m.cfg, rank));
        assert_eq!(gb.len(), wb.len());
        for (b, ((g, width), (w, _))) in gb.iter().zip(&wb).enumerate() {
            let n = t * width;
            common::assert_close(&format!("{what}: layer {li} buffer {b}"), &read(gpu, g, n), &read(gpu, w, n), tol, tol);
        }
    }
}

/// Gradients of every adapter tensor after one backward pass of `saved`.
fn gradients(gpu: &Gpu, m: &Model, pack: &Pack, saved: &Saved) -> Vec<f32> {
    let l = lora(gpu, m);
    let rows = m.row_logprobs(gpu, &saved.hidden, pack, 1.0).unwrap();
    let coefs: Vec<(f32, f32)> = (0..pack.targets.len()).map(|i| (if i % 2 == 0 { 1.0 } else { -0.5 }, 0.01)).collect();
    m.backward(gpu, pack, saved, &rows, &coefs, 1.0, &l).unwrap();
    let mut out = Vec::new();
    for layer in &l.layers {
        for module in layer.iter().flatten() {
            let r = l.cfg.r;
            out.extend(read(gpu, &module.grad_a, r * module.d_in));
            out.extend(read(gpu, &module.grad_b, module.d_out * r));
        }
    }
    out
}

#[test]
fn a_kept_rollout_is_the_packs_forward_pass() {
    for model in ["qwen3_f16", "gemma3_f32"] {
        for gpu in common::model_gpus() {
            let m = LoadedModel::open(gpu, &common::fixtures().join("models").join(model), None).unwrap();
            let (model_ref, adapter) = (&m.model, lora(gpu, &m.model));
            let prompt = m.tokenizer.chat_ids("Tap the blue Send button.").unwrap();
            let opts: Vec<SamplingOptions> = (0..4)
                .map(|j| SamplingOptions { temperature: 1.0, top_k: 0, top_p: 1.0, min_p: 0.0, seed: 3 + j, max_new_tokens: 7 })
                .collect();
            // Samples stop at different lengths: one row fewer in the later decode steps.
            let stop_at = |j: usize, ids: &[u32]| Ok(ids.len() == 2 + j);
            let (kept_samples, kept) = model_ref
                .sample_group_keeping(gpu, &prompt, None, &opts, 7, Some(&adapter), true, stop_at)
                .unwrap();
            let plain = model_ref.sample_group(gpu, &prompt, &opts, 7, Some(&adapter), stop_at).unwrap();
            assert_eq!(kept_samples, plain, "{model}: keeping changes no draw");
            let mut kept = kept.expect("kept activations");
            // A pack that is not the sampled group: an error, not wrong activations.
            let other: Vec<u32> = kept_samples[3].ids.iter().map(|&id| id ^ 1).collect();
            let pack = Pack::new(&prompt, &[&other[..]]).unwrap();
            let err = model_ref.saved_from_rollout(gpu, &mut kept, &pack, &[3], true).err().expect("a mismatch");
            assert!(err.to_string().contains("does not match"), "{err}");
            // Two of its completions in another order (a pack of `pack_size` 2), then the whole
            // group, which takes the activations over (`release`).
            for (samples, release) in [(vec![3, 1], false), (vec![0, 1, 2, 3], true)] {
                let completions: Vec<&[u32]> = samples.iter().map(|&j| &kept_samples[j].ids[..]).collect();
                let pack = Pack::new(&prompt, &completions).unwrap();
                let want = model_ref.forward_saving(gpu, &pack, Some(&adapter), true).unwrap();
                let got = model_ref.saved_from_rollout(gpu, &mut kept, &pack, &samples, release).unwrap();
                let what = format!("{model} on {}, samples {samples:?}", gpu.adapter.backend);
                assert_saved_close(gpu, model_ref, 4, &got, &want, &what);
                let (g, w) = (gradients(gpu, model_ref, &pack, &got), gradients(gpu, model_ref, &pack, &want));
                assert!(w.iter().any(|&v| v.abs() > 1e-4), "{what}: gradients are not all zero");
                let scale = w.iter().fold(0f32, |a, v| a.max(v.abs()));
                common::assert_close(&format!("{what}: gradients"), &g, &w, 1e-3 * scale, 1e-2);
            }
            // Released: no pack gets them again.
            let completions: Vec<&[u32]> = kept_samples.iter().map(|s| &s.ids[..]).collect();
            let pack = Pack::new(&prompt, &completions).unwrap();
            let err = model_ref.saved_from_rollout(gpu, &mut kept, &pack, &[0, 1, 2, 3], true).err().expect("released");
            assert!(err.to_string().contains("earlier pack"), "{err}");
        }
    }
}

/// Inference carries q | k | v's adapters on their stacked product and gives gate's and up's
/// one x·Aᵀ (`LoraStack`); a kept rollout, as training, keeps every projection apart. The same
/// draws either way, with the same log-probs up to rounding (llama: q | k | v stacked; qwen2:
/// with their biases).
#[test]
fn stacked_adapters_sample_as_apart() {
    for model in ["llama_f32", "qwen2_bf16"] {
        for gpu in common::model_gpus() {
            let m = LoadedModel::open(gpu, &common::fixtures().join("models").join(model), None).unwrap();
            let (model_ref, adapter) = (&m.model, lora(gpu, &m.model));
            assert!(!adapter.stacks.is_empty() && model_ref.layers[0].qkv.is_some(), "{model}: stacks");
            let prompt = m.tokenizer.chat_ids("Fill the email field.").unwrap();
            let opts: Vec<SamplingOptions> = (0..3)
                .map(|j| SamplingOptions { temperature: 1.0, top_k: 0, top_p: 1.0, min_p: 0.0, seed: 11 + j, max_new_tokens: 6 })
                .collect();
            let never = |_: usize, _: &[u32]| Ok(false);
            let (apart, _) = model_ref.sample_group_keeping(gpu, &prompt, None, &opts, 6, Some(&adapter), true, never).unwrap();
            let stacked = model_ref.sample_group(gpu, &prompt, &opts, 6, Some(&adapter), never).unwrap();
            let what = format!("{model} on {}", gpu.adapter.backend);
            for (a, s) in apart.iter().zip(&stacked) {
                assert_eq!(a.ids, s.ids, "{what}");
                common::assert_close(&what, &s.logprobs, &a.logprobs, 1e-4, 1e-4);
            }
        }
    }
}

/// The stacks hold a copy of the adapter (`Lora::stack`): after an optimizer step writes A and
/// B, the next sampling pass reads them refilled — the same draws and log-probs as the
/// projections apart, and not the ones from before the step.
#[test]
fn stacks_follow_an_optimizer_step() {
    let gpu = &common::backends().normal[0];
    let dir = common::fixtures().join("models").join("llama_f32");
    let cfg = TrainConfig::from_toml(&format!(
        "model = {:?}\noutput_dir = \"unused\"\nrollouts = \"unused\"\ntemperature = 1.0\nloss_type = \"grpo\"\n\
         scale_rewards = \"none\"\noptimizer = \"sgd\"\nlearning_rate = 2.0\n[lora]\nr = 4\nalpha = 8\n",
        dir.display().to_string()
    ))
    .unwrap();
    let m = LoadedModel::open(gpu, &dir, None).unwrap();
    let adapter = lora(gpu, &m.model);
    let prompt = m.tokenizer.chat_ids("Fill the email field.").unwrap();
    let mut t = Trainer::with_lora(gpu, cfg, m.model, Some(m.tokenizer), m.eos, m.pad, adapter);
    let opts: Vec<SamplingOptions> = (0..2)
        .map(|j| SamplingOptions { temperature: 1.0, top_k: 0, top_p: 1.0, min_p: 0.0, seed: 3 + j, max_new_tokens: 5 })
        .collect();
    let never = |_: usize, _: &[u32]| Ok(false);
    let before = t.model.sample_group(gpu, &prompt, &opts, 5, Some(&t.lora), never).unwrap();

    let mut eps = Vec::new();
    for act in [[60u32, 61, 62], [90, 91, 92]] {
        let mut e = Episode::new(prompt.clone()).unwrap();
        e.push_act(&act);
        eps.push(e);
    }
    let refs: Vec<&Episode> = eps.iter().collect();
    let mut batch = episode_batch(&t, &refs, &[1.0, 0.0], 2).unwrap();
    t.step(&mut batch).unwrap();

    let (apart, _) = t.model.sample_group_keeping(gpu, &prompt, None, &opts, 5, Some(&t.lora), true, never).unwrap();
    let stacked = t.model.sample_group(gpu, &prompt, &opts, 5, Some(&t.lora), never).unwrap();
    let mut moved = 0.0f32;
    for ((a, s), b) in apart.iter().zip(&stacked).zip(&before) {
        assert_eq!(a.ids, s.ids, "after the step");
        common::assert_close("after the step", &s.logprobs, &a.logprobs, 1e-4, 1e-4);
        let same = b.ids.iter().zip(&s.ids).take_while(|(x, y)| x == y).count();
        moved = moved.max(if same < s.ids.len().min(b.ids.len()) { f32::INFINITY } else { 0.0 });
        moved = b.logprobs[..same].iter().zip(&s.logprobs).fold(moved, |d, (x, y)| d.max((x - y).abs()));
    }
    assert!(moved > 1e-2, "the step changed sampling's log-probs by only {moved}");
}
