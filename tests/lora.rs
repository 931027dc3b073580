//! LoRA adapters: PEFT-format save/load round trip, PEFT's default init, and adapters that
//! do not fit the model rejected with a clear error.

mod common;

use std::path::PathBuf;

use edgerl::lora::{Lora, LoraConfig, Target, peft};
use edgerl::model::ModelConfig;
use edgerl::model::weights::{SafetensorsWeights, WeightSource, to_f32};

fn model_cfg(name: &str) -> ModelConfig {
    ModelConfig::from_file(
        &common::fixtures()
            .join("models")
            .join(name)
            .join("config.json"),
    )
    .unwrap()
}

fn tmp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("edgerl-lora-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn random_lora(gpu: &edgerl::gpu::Gpu, mc: &ModelConfig, targets: Vec<Target>) -> Lora {
    let cfg = LoraConfig {
        r: 3,
        alpha: 5.0,
        use_rslora: true,
        targets,
    };
    let mut rng = common::Rng::new(5);
    Lora::from_values(gpu, mc, cfg, |_, t| {
        let (i, o) = t.dims(mc);
        Ok((rng.vec(3 * i), rng.vec(o * 3)))
    })
    .unwrap()
}

#[test]
fn peft_round_trip_keeps_names_shapes_and_values() {
    let gpu = &common::backends().normal[0];
    let mc = model_cfg("qwen3_f16");
    let lora = random_lora(gpu, &mc, vec![Target::Q, Target::V, Target::Down]);
    let dir = tmp("roundtrip");
    lora.save_peft(gpu, &dir, "base").unwrap();
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("adapter_config.json")).unwrap())
            .unwrap();
    assert_eq!(cfg["r"], 3);
    assert_eq!(cfg["use_rslora"], true);
    assert_eq!(
        cfg["target_modules"],
        serde_json::json!(["q_proj", "v_proj", "down_proj"])
    );
    let w = SafetensorsWeights::open_file(&dir.join("adapter_model.safetensors")).unwrap();
    let mut names: Vec<&str> = w.names().collect();
    names.sort();
    assert_eq!(names.len(), mc.num_layers * 3 * 2);
    assert!(
        names.contains(&"base_model.model.model.layers.1.mlp.down_proj.lora_B.weight"),
        "{names:?}"
    );
    let a = w
        .get("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight")
        .unwrap()
        .unwrap();
    assert_eq!(a.shape, vec![3, mc.hidden_size]);

    let back = Lora::load_peft(gpu, &dir, &mc).unwrap();
    assert_eq!(back.cfg, lora.cfg);
    for ((l1, t1, m1), (l2, t2, m2)) in lora.modules().zip(back.modules()) {
        assert_eq!((l1, t1), (l2, t2));
        let n = 3 * m1.d_in;
        assert_eq!(
            gpu.read_f32(&m1.a, n).unwrap(),
            gpu.read_f32(&m2.a, n).unwrap()
        );
        let n = 3 * m1.d_out;
        assert_eq!(
            gpu.read_f32(&m1.b, n).unwrap(),
            gpu.read_f32(&m2.b, n).unwrap()
        );
    }
    // The values on disk are the values on the GPU.
    let on_disk = to_f32(
        &w.get("base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight")
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    let m = lora.module(1, Target::V).unwrap();
    assert_eq!(on_disk, gpu.read_f32(&m.b, 3 * m.d_out).unwrap());
}

#[test]
fn default_init_is_peft_kaiming_uniform_and_zero_b() {
    let gpu = &common::backends().normal[0];
    let mc = model_cfg("llama_f32");
    let cfg = LoraConfig {
        r: 8,
        alpha: 16.0,
        use_rslora: false,
        targets: Target::ALL.to_vec(),
    };
    assert_eq!(cfg.scale(), 2.0);
    let lora = Lora::init(gpu, &mc, cfg, 7).unwrap();
    let m = lora.module(0, Target::Gate).unwrap();
    let a = gpu.read_f32(&m.a, 8 * m.d_in).unwrap();
    let bound = 1.0 / (m.d_in as f32).sqrt();
    assert!(a.iter().all(|v| v.abs() <= bound));
    let max = a.iter().fold(0f32, |x, v| x.max(v.abs()));
    assert!(max > 0.9 * bound, "uniform over the whole range");
    assert!(
        gpu.read_f32(&m.b, m.d_out * 8)
            .unwrap()
            .iter()
            .all(|&v| v == 0.0)
    );
    assert_eq!(
        lora.num_params(),
        mc.num_layers
            * Target::ALL
                .iter()
                .map(|t| {
                    let (i, o) = t.dims(&mc);
                    8 * (i + o)
                })
                .sum::<usize>()
    );
}

#[test]
fn adapters_that_do_not_fit_are_refused() {
    let gpu = &common::backends().normal[0];
    let mc = model_cfg("llama_f32");
    let lora = random_lora(gpu, &mc, vec![Target::Q]);
    let dir = tmp("misfit");
    lora.save_peft(gpu, &dir, "base").unwrap();
    let cfg_path = dir.join(peft::CONFIG_FILE);
    let original = std::fs::read_to_string(&cfg_path).unwrap();

    // Rank disagrees with the tensors.
    std::fs::write(&cfg_path, original.replace("\"r\": 3", "\"r\": 4")).unwrap();
    let e = Lora::load_peft(gpu, &dir, &mc).err().unwrap().to_string();
    assert!(
        e.contains("adapter_model.safetensors") && e.contains("shape"),
        "{e}"
    );
    // A target the tensors do not have.
    std::fs::write(
        &cfg_path,
        original.replace("\"q_proj\"", "\"q_proj\", \"k_proj\""),
    )
    .unwrap();
    let e = Lora::load_peft(gpu, &dir, &mc).err().unwrap().to_string();
    assert!(e.contains("missing tensor") && e.contains("k_proj"), "{e}");
    // A target edgerl does not know.
    std::fs::write(&cfg_path, original.replace("\"q_proj\"", "\"lm_head\"")).unwrap();
    let e = Lora::load_peft(gpu, &dir, &mc).err().unwrap().to_string();
    assert!(e.contains("lm_head"), "{e}");
    // A model with other shapes.
    std::fs::write(&cfg_path, &original).unwrap();
    let e = Lora::load_peft(gpu, &dir, &model_cfg("smollm_tied_f32"))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("shape") || e.contains("does not belong"), "{e}");
    // Not JSON.
    std::fs::write(&cfg_path, "{").unwrap();
    let e = Lora::load_peft(gpu, &dir, &mc).err().unwrap().to_string();
    assert!(
        e.contains("adapter_config.json") && e.contains("JSON"),
        "{e}"
    );
}
