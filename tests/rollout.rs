//! Group sampling (batched, or one at a time over a shared prefill) gives what separate
//! generation gives.

mod common;

use edgerl::model::generate::{SamplingOptions, generate};
use edgerl::model::LoadedModel;
use edgerl::rl::rollout::{Decoding, GroupSampler, sample_seed};

#[test]
fn shared_prefill_samples_equal_independent_generation() {
    for gpu in common::model_gpus() {
        let m = LoadedModel::open(gpu, &common::fixtures().join("models/qwen3_f16"), None).unwrap();
        let prompt = m.tokenizer.chat_ids("Tap the blue Send button.").unwrap();
        let mut sampled_logprobs = Vec::new();
        for (temperature, decoding) in [
            (0.0, Decoding::Separate),
            (1.3, Decoding::SharedPrefill),
            (0.0, Decoding::Batched),
            (1.3, Decoding::Batched),
        ] {
            let opts = SamplingOptions { max_new_tokens: 10, temperature, top_k: 40, top_p: 0.95, min_p: 0.0, seed: 11 };
            let sampler = GroupSampler {
                decoding,
                gpu,
                model: &m.model,
                lora: None,
                tokenizer: Some(&m.tokenizer),
                eos: &m.eos,
                stop: &[],
                max_new_tokens: 10,
                opts: opts.clone(),
            };
            let group = sampler.sample(&prompt, 4, 3).unwrap();
            assert_eq!(group.len(), 4);
            for (j, c) in group.iter().enumerate() {
                let o = SamplingOptions { seed: sample_seed(11, 3, j), ..opts.clone() };
                let alone = generate(gpu, &m.model, None, &prompt, &m.eos, &o).unwrap();
                assert_eq!(c.ids, alone, "sample {j} at temperature {temperature}, {decoding:?}, on {}", gpu.adapter.backend);
                assert_eq!(c.text, m.tokenizer.decode(&alone).unwrap());
                assert_eq!(c.finished, alone.last().is_some_and(|id| m.eos.contains(id)));
            }
            if temperature > 0.0 {
                assert!(group.iter().any(|c| c.ids != group[0].ids), "samples of a group differ");
                sampled_logprobs.push(group.iter().flat_map(|c| c.logprobs.clone()).collect::<Vec<f32>>());
            }
        }
        // The sampler's log-probs agree too (one at a time vs batched).
        common::assert_close("batched log-probs", &sampled_logprobs[1], &sampled_logprobs[0], 1e-4, 1e-4);
    }
}

#[test]
fn stop_strings_end_a_completion() {
    let gpu = &common::backends().normal[0];
    let m = LoadedModel::open(gpu, &common::fixtures().join("models/llama_f32"), None).unwrap();
    let prompt = m.tokenizer.encode("The", true).unwrap();
    let opts = SamplingOptions { max_new_tokens: 24, temperature: 0.0, ..Default::default() };
    let free = generate(gpu, &m.model, None, &prompt, &m.eos, &opts).unwrap();
    let text = m.tokenizer.decode(&free).unwrap();
    // Stop at the first two characters the greedy text produces after its first token.
    let first = m.tokenizer.decode(&free[..1]).unwrap();
    let stop: String = text[first.len()..].chars().take(2).collect();
    assert!(!stop.is_empty(), "greedy text {text:?} too short for the test");
    let stops = vec![stop.clone()];
    let sampler = GroupSampler { decoding: Decoding::Batched, gpu, model: &m.model, lora: None, tokenizer: Some(&m.tokenizer), eos: &m.eos, stop: &stops, max_new_tokens: 24, opts };
    let c = &sampler.sample(&prompt, 1, 0).unwrap()[0];
    assert!(c.finished && c.text.contains(&stop), "{c:?}");
    assert!(c.ids.len() < free.len() && free.starts_with(&c.ids), "{c:?} vs {free:?}");
}
