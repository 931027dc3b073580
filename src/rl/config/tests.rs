use super::*;

const MIN: &str = "model = \"m\"\noutput_dir = \"o\"\nrollouts = \"r.jsonl\"\n";

#[test]
fn defaults_follow_trl() {
    let c = TrainConfig::from_toml(MIN).unwrap();
    assert_eq!(c.loss_type, LossType::Dapo);
    assert_eq!(c.scale_rewards, ScaleRewards::Group);
    assert_eq!(c.epsilon_high(), 0.2);
    assert_eq!(c.lora_config().unwrap().targets.len(), 7);
}

#[test]
fn unknown_keys_are_named() {
    let e = TrainConfig::from_toml(&format!("{MIN}lerning_rate = 1.0\n")).unwrap_err();
    assert!(e.contains("lerning_rate"), "{e}");
    let e = TrainConfig::from_toml(&format!("{MIN}[lora]\nrank = 4\n")).unwrap_err();
    assert!(e.contains("rank"), "{e}");
    let e = TrainConfig::from_toml(&format!("{MIN}loss_type = \"ppo\"\n")).unwrap_err();
    assert!(e.contains("ppo"), "{e}");
}

#[test]
fn counts_have_upper_bounds_naming_the_key() {
    for (line, key, max) in [
        ("num_generations", "num_generations", MAX_GENERATIONS),
        ("prompts_per_step", "prompts_per_step", MAX_PROMPTS),
        (
            "max_completion_length",
            "max_completion_length",
            MAX_COMPLETION,
        ),
        ("num_iterations", "num_iterations", MAX_ITERATIONS),
        ("max_refill", "max_refill", MAX_REFILL),
        ("top_k", "top_k", MAX_TOP_K),
        ("[lora]\nr", "r", MAX_RANK),
    ] {
        // The bound itself is accepted, one more is refused with the key and the limit.
        assert!(
            TrainConfig::from_toml(&format!("{MIN}{line} = {max}\n")).is_ok(),
            "{key}"
        );
        let e = TrainConfig::from_toml(&format!("{MIN}{line} = {}\n", max + 1)).unwrap_err();
        assert!(
            e.contains(&format!("`{key}`")) && e.contains(&max.to_string()),
            "{e}"
        );
    }
}

#[test]
fn schedules() {
    let mut c =
        TrainConfig::from_toml(&format!("{MIN}learning_rate = 1.0\nwarmup_steps = 2\n"))
            .unwrap();
    assert_eq!(c.lr_at(0, 10), 0.0);
    assert_eq!(c.lr_at(1, 10), 0.5);
    assert_eq!(c.lr_at(2, 10), 1.0);
    assert!((c.lr_at(6, 10) - 0.5).abs() < 1e-12);
    c.lr_scheduler_type = Schedule::Cosine;
    assert!((c.lr_at(6, 10) - 0.5).abs() < 1e-12);
    c.lr_scheduler_type = Schedule::Constant;
    assert_eq!(c.lr_at(9, 10), 1.0);
}

#[test]
fn gui_g1_keys() {
    let c = TrainConfig::from_toml(MIN).unwrap();
    assert!(!c.difficulty_weight && c.shuffle_dataset && c.loss_divisor.is_none());
    assert_eq!(c.dr_grpo_divisor(), 256.0);
    let c = TrainConfig::from_toml(&format!(
        "{MIN}loss_type = \"dr_grpo\"\nloss_divisor = 64.0\ndifficulty_weight = true\nshuffle_dataset = false\n"
    ))
    .unwrap();
    assert_eq!(c.dr_grpo_divisor(), 64.0);
    assert!(c.difficulty_weight && !c.shuffle_dataset);
    for bad in ["0.0", "-1.0", "inf"] {
        let e = TrainConfig::from_toml(&format!("{MIN}loss_type = \"dr_grpo\"\nloss_divisor = {bad}\n")).unwrap_err();
        assert!(e.contains("loss_divisor"), "{e}");
    }
    let e = TrainConfig::from_toml(&format!("{MIN}loss_divisor = 64.0\n")).unwrap_err();
    assert!(e.contains("loss_divisor") && e.contains("dr_grpo"), "{e}");
}

#[test]
fn lora_alpha_must_be_finite_and_positive() {
    for alpha in ["0.0", "-8.0", "1e39", "nan"] {
        let e = TrainConfig::from_toml(&format!("{MIN}[lora]\nalpha = {alpha}\n")).unwrap_err();
        assert!(e.contains("alpha"), "{alpha}: {e}");
    }
    assert!(TrainConfig::from_toml(&format!("{MIN}[lora]\nalpha = 16.0\n")).is_ok());
}

#[test]
fn sampler_correction_keys() {
    let c = TrainConfig::from_toml(MIN).unwrap();
    assert!(!c.vllm_importance_sampling_correction && c.icepop_beta.is_none());
    assert_eq!(c.vllm_importance_sampling_mode, IsMode::SequenceMask);
    assert_eq!(c.sampler_logprobs, SamplerLogprobs::Processed);
    let c = TrainConfig::from_toml(&format!("{MIN}vllm_importance_sampling_correction = true\nvllm_importance_sampling_clip_max = inf\nvllm_importance_sampling_mode = \"token_mask\"\nvllm_importance_sampling_clip_min = 0.5\n")).unwrap();
    let k = c.sampler_correction().unwrap();
    assert_eq!((k.mode, k.clip_min, k.clip_max), (IsMode::TokenMask, 0.5, f64::INFINITY));
    for (extra, needle) in [
        ("vllm_importance_sampling_cap = 2.0\nvllm_importance_sampling_clip_max = 2.0", "vllm_importance_sampling_cap"),
        ("vllm_importance_sampling_clip_max = -1.0", "vllm_importance_sampling_clip_max"),
        ("vllm_importance_sampling_clip_min = 2.0\nvllm_importance_sampling_clip_max = 1.0", "vllm_importance_sampling_clip_min"),
        ("icepop_beta = 1.0", "icepop_beta"),
        ("icepop_beta = 5.0\nvllm_importance_sampling_correction = true", "icepop_beta"),
        ("vllm_importance_sampling_mode = \"token\"", "token"),
    ] {
        let e = TrainConfig::from_toml(&format!("{MIN}{extra}\n")).unwrap_err();
        assert!(e.contains(needle), "{extra}: {e}");
    }
}
