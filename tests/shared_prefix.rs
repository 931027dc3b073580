//! Prompts decoded side by side share their common prefix: it is prefilled once, and each
//! prompt's own tokens are prefilled on top of it. A prefill in two pieces adds in another
//! order than one whole prefill (other kernels for other row counts), so the shared path is
//! held to the unshared one within rounding: the same tokens, log-probs within 1e-4.

mod common;

use edgerl::gpu::Gpu;
use edgerl::model::decode::{PromptPrefill, PromptSamples, common_prefix_len};
use edgerl::model::generate::SamplingOptions;
use edgerl::model::{LoadedModel, Model};
use edgerl::rl::rollout::{Completion, Decoding, GroupSampler};

const NEW: usize = 6;

fn read(gpu: &Gpu, b: &edgerl::gpu::GpuBuffer) -> Vec<f32> {
    bytemuck::cast_slice(&gpu.read(&b.buffer, 0, b.bytes).unwrap()).to_vec()
}

fn open(gpu: &Gpu, name: &str) -> LoadedModel {
    LoadedModel::open(gpu, &common::fixtures().join("models").join(name), None).unwrap()
}

/// `n` pseudo-random ids of the vocabulary, none of them below 16 (those start the tails).
fn ids(rng: &mut common::Rng, vocab: usize, n: usize) -> Vec<u32> {
    (0..n).map(|_| 16 + rng.next_u32() % (vocab as u32 - 16)).collect()
}

/// `head` followed by `tail`, whose first token is `first`.
fn cat(head: &[u32], first: u32, tail: &[u32]) -> Vec<u32> {
    [head, &[first], tail].concat()
}

/// The batches of the edge cases, each with the shared prefix its prompts have by
/// construction (each prompt keeping one token of its own).
fn cases(vocab: usize) -> Vec<(&'static str, Vec<Vec<u32>>, usize)> {
    let mut rng = common::Rng::new(11);
    let mut r = |n| ids(&mut rng, vocab, n);
    // Longer than gemma3's sliding window (8); tails of 1, 5, 17 and 40 tokens take the
    // one-row, few-row and tiled kernels.
    let head = r(30);
    let long = vec![
        cat(&head, 1, &[]),
        cat(&head, 2, &r(4)),
        cat(&head, 3, &r(16)),
        cat(&head, 4, &r(39)),
    ];
    let same = r(20);
    let short = r(12);
    let x = r(1);
    let lone = r(25);
    // 600 own tokens: over one pass of the batch's prefill (`PREFILL_ROWS` = 512), the second
    // prompt's rows split between two passes.
    let head2 = r(10);
    let wide = vec![cat(&head2, 1, &r(299)), cat(&head2, 2, &r(239)), cat(&head2, 3, &r(59))];
    assert!(wide.iter().map(|p| p.len() - 10).sum::<usize>() > edgerl::model::decode::PREFILL_ROWS);
    vec![
        ("a long common prefix", long, 30),
        ("identical prompts", vec![same.clone(), same.clone(), same], 19),
        ("one prompt a prefix of another", vec![[short.clone(), r(9)].concat(), short], 11),
        ("no common prefix", vec![cat(&[], 1, &r(7)), cat(&[], 2, &r(3))], 0),
        ("a prefix of one token", vec![cat(&x, 1, &r(6)), cat(&x, 2, &r(10)), cat(&x, 3, &[])], 1),
        ("a batch of one", vec![lone], 24),
        ("more own tokens than one prefill pass", wide, 10),
    ]
}

fn sampler<'a>(gpu: &'a Gpu, model: &'a Model, eos: &'a [u32], temperature: f32) -> GroupSampler<'a> {
    GroupSampler {
        decoding: Decoding::Batched,
        gpu,
        model,
        lora: None,
        tokenizer: None,
        eos,
        stop: &[],
        max_new_tokens: NEW,
        opts: SamplingOptions { max_new_tokens: NEW, temperature, top_k: 40, top_p: 0.95, min_p: 0.0, seed: 9 },
    }
}

fn assert_same(what: &str, got: &[Vec<Completion>], want: &[Vec<Completion>]) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert_eq!(a.len(), b.len(), "{what}");
        for (j, (a, b)) in a.iter().zip(b).enumerate() {
            assert_eq!((&a.ids, a.finished), (&b.ids, b.finished), "prompt {i} sample {j}, {what}");
            common::assert_close(&format!("log-probs {i}/{j}, {what}"), &a.logprobs, &b.logprobs, 1e-4, 1e-4);
            common::assert_close(&format!("plain log-probs {i}/{j}, {what}"), &a.plain_logprobs, &b.plain_logprobs, 1e-4, 1e-4);
        }
    }
}

/// The edge cases' prefixes are what `common_prefix_len` finds.
#[test]
fn the_common_prefix_leaves_every_prompt_a_token() {
    for (what, prompts, want) in cases(400) {
        let all: Vec<&[u32]> = prompts.iter().map(Vec::as_slice).collect();
        assert_eq!(common_prefix_len(&all), want, "{what}");
    }
    assert_eq!(common_prefix_len(&[]), 0);
    assert_eq!(common_prefix_len(&[&[5, 6], &[]]), 0, "an empty prompt");
}

/// Prompts decoded after their shared prefix give what each prompt's own whole prefill gives
/// (`sample`), greedy and sampled, on every edge case, with the prompts prefilled together and
/// one by one; so does an explicit empty prefix (the unshared side-by-side path), and a fixed
/// prefix shorter than the batch's own.
#[test]
fn shared_prefix_decoding_matches_whole_prompts() {
    for gpu in common::normal_gpus() {
        for (form, name) in [PromptPrefill::Together, PromptPrefill::OneByOne]
            .into_iter()
            .flat_map(|f| ["qwen3_f16", "gemma3_f32"].map(|n| (f, n)))
        {
            form.set(gpu);
            let m = open(gpu, name);
            for (case, prompts, l) in cases(m.model.cfg.vocab_size) {
                // A token of a first greedy run ends completions (as EOS would), so samples
                // finish at different steps.
                let free = sampler(gpu, &m.model, &[], 0.0).sample(&prompts[0], 1, 0).unwrap();
                let eos = [free[0].ids[2]];
                for (temperature, g) in [(0.0, 1), (1.3, 2)] {
                    let s = sampler(gpu, &m.model, &eos, temperature);
                    let what = format!("{case}, {name} at temperature {temperature} on {}, {form:?}", gpu.adapter.backend);
                    let one: Vec<Vec<Completion>> =
                        prompts.iter().enumerate().map(|(i, p)| s.sample(p, g, 5 + i as u64).unwrap()).collect();
                    let batch: Vec<(&[u32], u64)> =
                        prompts.iter().enumerate().map(|(i, p)| (p.as_slice(), 5 + i as u64)).collect();
                    assert_same(&format!("shared, {what}"), &s.sample_prompts(&batch, g).unwrap(), &one);
                    let with: Vec<_> = batch.iter().map(|&(p, st)| (p, None, st)).collect();
                    for fixed in [0, l / 2] {
                        let prefix = s.prefill_prefix(&prompts[0][..fixed]).unwrap();
                        let got = s.sample_prompts_after(&prefix, &with, g).unwrap();
                        assert_same(&format!("a fixed prefix of {fixed}, {what}"), &got, &one);
                    }
                }
            }
        }
        PromptPrefill::reset(gpu);
    }
}

/// `forward` continuing a cache of L positions with several tokens gives the hidden states
/// and keys / values of one whole prefill, within rounding: positions, the causal mask and
/// gemma3's sliding window (8) carry across the two pieces.
#[test]
fn a_prefill_in_two_pieces_matches_one_whole_prefill() {
    for gpu in common::normal_gpus() {
        for name in ["qwen3_f16", "gemma3_f32", "llama_f32"] {
            let m = open(gpu, name);
            let (model, h) = (&m.model, m.model.cfg.hidden_size);
            let p = ids(&mut common::Rng::new(3), model.cfg.vocab_size, 60);
            let mut whole = model.new_cache(gpu, p.len()).unwrap();
            let want = read(gpu, &model.forward(gpu, &p, &mut whole, None).unwrap());
            for l in [1, 5, 17, 59] {
                let what = format!("{name}, a prefix of {l} on {}", gpu.adapter.backend);
                let mut c = model.new_cache(gpu, p.len()).unwrap();
                model.forward(gpu, &p[..l], &mut c, None).unwrap();
                let got = read(gpu, &model.forward(gpu, &p[l..], &mut c, None).unwrap());
                assert_eq!(c.len, p.len(), "{what}");
                common::assert_close(&format!("hidden, {what}"), &got, &want[l * h..], 2e-5, 2e-5);
                for li in 0..model.layers.len() {
                    for (a, b) in [(&c.k[li], &whole.k[li]), (&c.v[li], &whole.v[li])] {
                        common::assert_close(&format!("layer {li} cache, {what}"), &read(gpu, a), &read(gpu, b), 2e-5, 2e-5);
                    }
                }
            }
        }
    }
}

/// Prompts that do not continue the prefix given, or an empty prompt, are refused with the
/// reason, before anything runs.
#[test]
fn prompts_that_do_not_continue_the_prefix_are_refused() {
    let gpu = &common::backends().normal[0];
    let m = open(gpu, "qwen3_f16");
    let opts = [SamplingOptions { max_new_tokens: 2, temperature: 0.0, top_k: 0, top_p: 1.0, min_p: 0.0, seed: 0 }];
    let prefix = m.model.prefill_prefix(gpu, &[20, 21, 22], None).unwrap();
    let cases: [(&[u32], &str); 4] = [
        (&[20, 21, 23, 24], "prompt 1 (4 tokens) does not continue the shared prefix of 3 tokens"),
        (&[20, 21, 22], "prompt 1 (3 tokens) does not continue the shared prefix of 3 tokens"),
        (&[20, 21], "prompt 1 (2 tokens) does not continue the shared prefix of 3 tokens"),
        (&[], "the prompt is empty"),
    ];
    for (bad, want) in cases {
        let prompts = [
            PromptSamples { prompt: &[20, 21, 22, 30], images: None, opts: &opts },
            PromptSamples { prompt: bad, images: None, opts: &opts },
        ];
        let e = m.model.sample_prompts_after(gpu, &prefix, &prompts, 2, None, |_, _, _| Ok(false)).unwrap_err();
        assert!(e.to_string().contains(want), "{bad:?}: {e}");
        let e = m.model.sample_prompts(gpu, &prompts[1..], 2, None, |_, _, _| Ok(false));
        assert_eq!(e.is_err(), bad.is_empty(), "{bad:?} alone: {e:?}");
    }
}

#[test]
fn a_cache_too_large_to_size_is_an_error() {
    // Its byte size would wrap around usize: a clear error, not a tiny cache.
    let gpu = common::model_gpus().next().unwrap();
    let m = open(gpu, "qwen3_f16");
    let e = m.model.new_cache(gpu, usize::MAX / 2).err().expect("refused").to_string();
    assert!(e.contains("too large"), "{e}");
}
