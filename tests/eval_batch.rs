//! Evaluation decodes dataset rows side by side (`--batch-size`): the dataset's common prompt
//! prefix once in the KV cache, each row's completions in their own segments holding the rest
//! of its prompt, one forward pass per token for all of them. The results must not depend on
//! the batch size, nor differ from decoding one row at a time.

mod common;

use std::path::{Path, PathBuf};

use edgerl::gpu::Gpu;
use edgerl::model::LoadedModel;
use edgerl::model::decode::{DecodeRow, common_prefix_len};
use edgerl::model::generate::SamplingOptions;
use edgerl::rl::TrainConfig;
use edgerl::rl::eval::{EvalOptions, EvalReport, evaluate};
use edgerl::rl::rollout::{Completion, Decoding, GroupSampler, prompt_ids};

/// Prompts of different lengths: 1 token up to a few dozen.
const TEXTS: [&str; 7] = [
    "Hi",
    "Tap the blue Send button.",
    "Screen: [OK (100,200,180,240)]. Instruction: press OK. Action:",
    "Open settings.",
    "Screen: [Settings (5,300,70,340)] [Home (80,300,140,340)] [Back (0,0,8,8)] [Menu (300,10,340,40)]. Open the menu, then answer with click(x, y).",
    "x",
    "Press Back. Screen: [Back (0,0,8,8)].",
];

fn sampler<'a>(gpu: &'a Gpu, m: &'a LoadedModel, eos: &'a [u32], temperature: f32) -> GroupSampler<'a> {
    GroupSampler {
        decoding: Decoding::Batched,
        gpu,
        model: &m.model,
        lora: None,
        tokenizer: Some(&m.tokenizer),
        eos,
        stop: &[],
        max_new_tokens: 9,
        opts: SamplingOptions { max_new_tokens: 9, temperature, top_k: 40, top_p: 0.95, min_p: 0.0, seed: 5 },
    }
}

fn prompts(m: &LoadedModel) -> Vec<Vec<u32>> {
    TEXTS
        .iter()
        .enumerate()
        .map(|(i, t)| if i % 2 == 0 { m.tokenizer.encode(t, true).unwrap() } else { m.tokenizer.chat_ids(t).unwrap() })
        .collect()
}

/// `sample_prompts` over several prompts gives what `sample` (one prompt's group at a time)
/// gives: the same ids, texts and ends, log-probs within rounding (rows run in other kernels,
/// the prompts' common prefix is prefilled apart); greedy and sampled.
#[test]
fn prompts_decoded_side_by_side_equal_one_prompt_at_a_time() {
    // Real binding limits: the longest prompt's prefill is larger than 64 KiB.
    for gpu in common::normal_gpus() {
        for model in ["qwen3_f16", "gemma3_f32"] {
            let m = LoadedModel::open(gpu, &common::fixtures().join("models").join(model), None).unwrap();
            let ps = prompts(&m);
            let lens: Vec<usize> = ps.iter().map(|p| p.len()).collect();
            assert!(lens.iter().min() < Some(&4) && lens.iter().max() > Some(&20), "{lens:?}");
            // Make two tokens of a first greedy run end completions (as EOS would), so samples
            // finish at different steps.
            let free = sampler(gpu, &m, &[], 0.0).sample(&ps[1], 1, 0).unwrap();
            let free2 = sampler(gpu, &m, &[], 0.0).sample(&ps[4], 1, 0).unwrap();
            let eos = [free[0].ids[3], free2[0].ids[6]];
            for (temperature, g) in [(0.0, 1), (1.3, 2)] {
                let s = sampler(gpu, &m, &eos, temperature);
                let streams: Vec<u64> = (0..ps.len() as u64).map(|i| 3 * i + 1).collect();
                let one: Vec<Vec<Completion>> =
                    ps.iter().zip(&streams).map(|(p, &st)| s.sample(p, g, st).unwrap()).collect();
                let batch: Vec<(&[u32], u64)> = ps.iter().map(|p| p.as_slice()).zip(streams.iter().copied()).collect();
                let side = s.sample_prompts(&batch, g).unwrap();
                assert_eq!(side.len(), ps.len());
                let what = format!("{model} at temperature {temperature} on {} ({} binding)", gpu.adapter.backend, gpu.max_binding);
                let mut ends = Vec::new();
                for (i, (a, b)) in one.iter().zip(&side).enumerate() {
                    assert_eq!(a.len(), g);
                    assert_eq!(b.len(), g);
                    for (j, (a, b)) in a.iter().zip(b).enumerate() {
                        assert_eq!(b.ids, a.ids, "prompt {i} sample {j}, {what}");
                        assert_eq!((&b.text, b.finished), (&a.text, a.finished), "prompt {i} sample {j}, {what}");
                        common::assert_close(&format!("log-probs {i}/{j}, {what}"), &b.logprobs, &a.logprobs, 1e-4, 1e-4);
                        common::assert_close(&format!("plain log-probs {i}/{j}, {what}"), &b.plain_logprobs, &a.plain_logprobs, 1e-4, 1e-4);
                        ends.push(b.ids.len());
                    }
                }
                // Completions end at different steps, some by the "EOS", some by the length.
                assert!(ends.iter().any(|&n| n < 9) && ends.contains(&9), "{ends:?}, {what}");
            }
        }
    }
}

/// `forward_rows` with no shared prefix, each row in its own segment after its own prompt:
/// every row's hidden state equals the single-sequence `forward` (prefill of all prompts in one
/// pass, then one decode step of all of them).
#[test]
fn rows_with_their_own_prompts_match_the_single_sequence_forward() {
    // Real binding limits: the prefill of every prompt in one pass is larger than 64 KiB.
    for gpu in common::normal_gpus() {
        // gemma3: sliding-window layers (window 8) over prompts longer than the window.
        for model in ["qwen3_f16", "gemma3_f32", "llama_f32"] {
            let m = LoadedModel::open(gpu, &common::fixtures().join("models").join(model), None).unwrap();
            let (model_, hsize) = (&m.model, m.model.cfg.hidden_size);
            let ps = prompts(&m);
            let next: Vec<u32> = (0..ps.len() as u32).map(|i| 7 + 13 * i).collect();
            // Segment of prompt i: its prompt, then one decode slot, and a gap of 3 unused slots.
            let mut starts = Vec::new();
            let mut total = 0;
            for p in &ps {
                starts.push(total);
                total += p.len() + 1 + 3;
            }
            let cache = model_.new_cache(gpu, total).unwrap();
            let prefill: Vec<DecodeRow> = ps
                .iter()
                .zip(&starts)
                .flat_map(|(p, &s)| {
                    p.iter().enumerate().map(move |(k, &id)| DecodeRow { id, position: k, slot: s + k, segment: s })
                })
                .collect();
            let h = model_.forward_rows(gpu, &prefill, 0, &cache, None).unwrap();
            let got_prefill: Vec<f32> = bytemuck::cast_slice(&gpu.read(&h.buffer, 0, h.bytes).unwrap()).to_vec();
            let step: Vec<DecodeRow> = ps
                .iter()
                .zip(&starts)
                .zip(&next)
                .map(|((p, &s), &id)| DecodeRow { id, position: p.len(), slot: s + p.len(), segment: s })
                .collect();
            // Rows in a shuffled order: a row's result must not depend on its place.
            let order = [3usize, 0, 6, 1, 5, 2, 4];
            let shuffled: Vec<DecodeRow> = order.iter().map(|&i| step[i]).collect();
            let h = model_.forward_rows(gpu, &shuffled, 0, &cache, None).unwrap();
            let got_step: Vec<f32> = bytemuck::cast_slice(&gpu.read(&h.buffer, 0, h.bytes).unwrap()).to_vec();
            let what = format!("{model} on {} ({} binding)", gpu.adapter.backend, gpu.max_binding);
            let mut at = 0;
            for (i, p) in ps.iter().enumerate() {
                let mut seq = p.clone();
                seq.push(next[i]);
                let mut c = model_.new_cache(gpu, seq.len()).unwrap();
                let w = model_.forward(gpu, &seq, &mut c, None).unwrap();
                let want: Vec<f32> = bytemuck::cast_slice(&gpu.read(&w.buffer, 0, w.bytes).unwrap()).to_vec();
                let n = p.len() * hsize;
                common::assert_close(&format!("prefill of prompt {i}, {what}"), &got_prefill[at..at + n], &want[..n], 2e-5, 2e-5);
                at += n;
                let r = order.iter().position(|&o| o == i).unwrap();
                common::assert_close(
                    &format!("decode step of prompt {i}, {what}"),
                    &got_step[r * hsize..(r + 1) * hsize],
                    &want[n..],
                    2e-5,
                    2e-5,
                );
            }
        }
    }
}

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("edgerl-eval-batch-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The example's config on a dataset of 7 rows with prompts of different lengths: strings
/// and chat messages, or (`chat`) chat messages only, whose template's opening they share.
fn config(dir: &Path, chat: bool) -> TrainConfig {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/tiny-grpo-online/run.toml");
    let mut cfg = TrainConfig::from_file(&example).unwrap();
    let rows: String = TEXTS
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let prompt = if i % 2 == 0 && !chat {
                serde_json::json!(t)
            } else {
                serde_json::json!([{"role": "user", "content": t}])
            };
            format!("{}\n", serde_json::json!({"prompt": prompt, "target_box": [0, 0, 9 + i, 9 + i]}))
        })
        .collect();
    let path = dir.join(format!("rows-{chat}.jsonl"));
    std::fs::write(&path, rows).unwrap();
    cfg.dataset = Some(path);
    cfg.max_completion_length = 10;
    cfg.success_threshold = 0.1;
    cfg
}

/// A completion's row, sample, text, tokens, end, reward and rule scores.
type Summary = (usize, usize, String, usize, bool, f64, Vec<f64>);

fn summary(r: &EvalReport) -> Vec<Summary> {
    r.completions
        .iter()
        .map(|c| (c.row, c.sample, c.completion.clone(), c.completion_tokens, c.finished, c.reward, c.rewards.clone()))
        .collect()
}

/// `edgerl eval` gives the same completions, rewards and summary at batch sizes 1, 3 (the
/// last batch partial), 7 and 64, greedy and sampled, on every backend; rows end at different
/// steps (a stop string, EOS, the length limit). On chat rows, the template's opening is the
/// prefix every batch shares.
#[test]
fn eval_results_do_not_depend_on_the_batch_size() {
    let dir = scratch("sizes");
    for gpu in common::normal_gpus() {
        for chat in [false, true] {
            batch_sizes_agree(gpu, &dir, chat);
        }
    }
}

fn batch_sizes_agree(gpu: &Gpu, dir: &Path, chat: bool) {
    let mut cfg = config(dir, chat);
    if chat {
        let m = LoadedModel::open(gpu, &cfg.model, None).unwrap();
        let rows = edgerl::data::dataset::read_checked(cfg.dataset.as_ref().unwrap(), |_| Ok(())).unwrap();
        let ids: Vec<Vec<u32>> = rows.iter().map(|r| prompt_ids(&m.tokenizer, &r.prompt).unwrap()).collect();
        let all: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
        assert!(common_prefix_len(&all) >= 4, "{ids:?}");
    }
    let opts = |batch_size, samples, temperature| EvalOptions { batch_size: Some(batch_size), samples, temperature, ..Default::default() };
    // A stop string from the middle of one greedy completion: the rows then end at
    // different steps.
    cfg.stop = vec![];
    let free = evaluate(gpu, &cfg, None, opts(1, 1, 0.0)).unwrap();
    let text: Vec<char> = free.completions[2].completion.chars().collect();
    assert!(text.len() >= 6, "{:?}", free.completions[2]);
    cfg.stop = vec![text[3..5].iter().collect()];
    for (samples, temperature) in [(1, 0.0), (2, 1.0)] {
        let base = evaluate(gpu, &cfg, None, opts(1, samples, temperature)).unwrap();
        let what = format!("{samples} samples at temperature {temperature} on {}, chat {chat}", gpu.adapter.backend);
        let tokens: Vec<usize> = base.completions.iter().map(|c| c.completion_tokens).collect();
        assert!(
            tokens.iter().any(|&n| n < 10) && tokens.contains(&10) && base.completions.iter().any(|c| c.finished),
            "{tokens:?}, {what}"
        );
        assert_eq!(base.completions.len(), 7 * samples);
        for b in [3, 7, 64] {
            let r = evaluate(gpu, &cfg, None, opts(b, samples, temperature)).unwrap();
            assert_eq!(summary(&r), summary(&base), "batch size {b}, {what}");
            assert_eq!(r.to_json(), base.to_json(), "batch size {b}, {what}");
            assert_eq!(r.completions_jsonl(), base.completions_jsonl(), "batch size {b}, {what}");
        }
    }
}

#[test]
fn a_batch_size_of_zero_is_refused() {
    let o = EvalOptions { batch_size: Some(0), ..Default::default() };
    let e = o.validate().unwrap_err().to_string();
    assert!(e.contains("--batch-size must be at least 1"), "{e}");
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/tiny-grpo-online/run.toml");
    let (code, out, err) = common::edgerl(&["eval", "--config", config.to_str().unwrap(), "--batch-size", "0"]);
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("--batch-size must be at least 1"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}
