//! PEFT's on-disk format: `adapter_config.json` + `adapter_model.safetensors` with tensor names
//! like `base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight` (`model.text_model.` in a
//! vision-language model), so
//! `PeftModel.from_pretrained(base, dir)` loads what edgerl writes and the reverse.

use std::collections::HashMap;
use std::path::Path;

use serde_json::{Value, json};

use super::{Lora, LoraConfig, Target};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::model::ModelConfig;
use crate::model::weights::{SafetensorsWeights, WeightSource, to_f32};

pub const CONFIG_FILE: &str = "adapter_config.json";
pub const WEIGHTS_FILE: &str = "adapter_model.safetensors";
/// The largest LoRA rank an adapter may have.
pub const MAX_RANK: usize = 1 << 16;

/// PEFT's name of a LoRA matrix; `prefix` is where the base model's layers are named
/// ("model." for a causal LM, "model.text_model." in a vision-language model).
pub fn tensor_name(prefix: &str, layer: usize, t: Target, which: char) -> String {
    format!(
        "base_model.model.{prefix}layers.{layer}.{}.lora_{which}.weight",
        t.module_path()
    )
}

/// Reads adapter_config.json into a `LoraConfig`, refusing what edgerl cannot reproduce.
pub fn read_config(dir: &Path) -> Result<LoraConfig> {
    let path = dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| Error::file(&path, e))?;
    parse_config(&text, &path)
}

/// `read_config` on the text of `path` (errors name `path`).
pub fn parse_config(text: &str, path: &Path) -> Result<LoraConfig> {
    let v: Value = serde_json::from_str(text)
        .map_err(|e| Error::file(&path, format!("not valid JSON: {e}")))?;
    let bad = |m: String| Error::file(path, m);
    if let Some(p) = v.get("peft_type").and_then(|p| p.as_str()) {
        if p != "LORA" {
            return Err(bad(format!("peft_type {p:?} is not LORA")));
        }
    }
    let r = v
        .get("r")
        .and_then(|r| r.as_u64())
        .ok_or_else(|| bad("missing integer `r`".into()))? as usize;
    let alpha = v.get("lora_alpha").and_then(|a| a.as_f64()).unwrap_or(8.0) as f32;
    let use_rslora = v
        .get("use_rslora")
        .and_then(|b| b.as_bool())
        .unwrap_or(false);
    let targets = match v.get("target_modules") {
        Some(t) => super::peft_modules::selected(t, v.get("exclude_modules")).map_err(bad)?,
        None => return Err(bad("missing `target_modules`".into())),
    };
    for (key, ok) in [
        (
            "use_dora",
            v.get("use_dora")
                .map_or(true, |x| x == &json!(false) || x.is_null()),
        ),
        ("bias", v.get("bias").map_or(true, |x| x == &json!("none"))),
        (
            "fan_in_fan_out",
            v.get("fan_in_fan_out").map_or(true, |x| x == &json!(false)),
        ),
        (
            "layers_to_transform",
            v.get("layers_to_transform").map_or(true, Value::is_null),
        ),
        (
            "modules_to_save",
            v.get("modules_to_save")
                .map_or(true, |x| x.is_null() || x == &json!([])),
        ),
        (
            "rank_pattern",
            v.get("rank_pattern")
                .map_or(true, |x| x.is_null() || x == &json!({})),
        ),
        (
            "alpha_pattern",
            v.get("alpha_pattern")
                .map_or(true, |x| x.is_null() || x == &json!({})),
        ),
    ] {
        if !ok {
            return Err(bad(format!("`{key}` = {} is not supported", v[key])));
        }
    }
    if r == 0 {
        return Err(bad("r must be at least 1".into()));
    }
    if targets.is_empty() {
        return Err(bad("target_modules is empty: an adapter needs at least one module".into()));
    }
    // The scale alpha / r (or / sqrt r) multiplies every update: it must be a finite f32 > 0.
    if !(alpha.is_finite() && alpha > 0.0) {
        return Err(bad(format!("lora_alpha {alpha} must be a finite number > 0")));
    }
    // Far above any useful rank; bounds every size computed from it.
    if r > MAX_RANK {
        return Err(bad(format!("r = {r} is larger than edgerl supports ({MAX_RANK})")));
    }
    Ok(LoraConfig {
        r,
        alpha,
        use_rslora,
        targets,
    })
}

impl Lora {
    /// Loads a PEFT adapter directory for a model of config `model`.
    pub fn load_peft(gpu: &Gpu, dir: &Path, model: &ModelConfig) -> Result<Lora> {
        recover(dir);
        let cfg = read_config(dir)?;
        let weights_path = dir.join(WEIGHTS_FILE);
        if !weights_path.exists() {
            return Err(Error::file(&weights_path, "missing"));
        }
        let w = SafetensorsWeights::open_file(&weights_path)?;
        let mut expected = 0;
        let lora = Lora::from_values(gpu, model, cfg.clone(), |l, t| {
            let (d_in, d_out) = t.dims(model);
            let mut get = |which: char, shape: [usize; 2]| -> Result<Vec<f32>> {
                let name = tensor_name(model.text_prefix, l, t, which);
                expected += 1;
                let raw = w
                    .get(&name)?
                    .ok_or_else(|| Error::file(&weights_path, format!("missing tensor {name}")))?;
                if raw.shape != shape {
                    return Err(Error::file(
                        &weights_path,
                        format!(
                            "tensor {name} has shape {:?}; r={} and the model imply {:?}",
                            raw.shape, cfg.r, shape
                        ),
                    ));
                }
                to_f32(&raw)
            };
            Ok((get('A', [cfg.r, d_in])?, get('B', [d_out, cfg.r])?))
        })?;
        let extra: Vec<&str> = w
            .names()
            .filter(|n| {
                !(0..model.num_layers).any(|l| {
                    cfg.targets
                        .iter()
                        .any(|&t| {
                            let name = |w| tensor_name(model.text_prefix, l, t, w);
                            *n == name('A') || *n == name('B')
                        })
                })
            })
            .collect();
        if let Some(n) = extra.first() {
            return Err(Error::file(
                &weights_path,
                format!(
                    "tensor {n} does not belong to a {}-layer model with targets {:?}",
                    model.num_layers,
                    cfg.targets.iter().map(|t| t.name()).collect::<Vec<_>>()
                ),
            ));
        }
        debug_assert!(expected > 0);
        Ok(lora)
    }

    /// Writes the adapter in PEFT format; each file is written to a temp file and renamed.
    pub fn save_peft(&self, gpu: &Gpu, dir: &Path, base_model: &str) -> Result<()> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::file(dir, format!("cannot create: {e}")))?;
        let mut host: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
        for (l, t, m) in self.modules() {
            let a = gpu.read(&m.a.buffer, 0, (self.cfg.r * m.d_in * 4) as u64)?;
            let b = gpu.read(&m.b.buffer, 0, (m.d_out * self.cfg.r * 4) as u64)?;
            host.push((tensor_name(self.text_prefix, l, t, 'A'), vec![self.cfg.r, m.d_in], a));
            host.push((tensor_name(self.text_prefix, l, t, 'B'), vec![m.d_out, self.cfg.r], b));
        }
        let views: Vec<(String, safetensors::tensor::TensorView)> = host
            .iter()
            .map(|(n, s, d)| {
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), d)
                    .map(|v| (n.clone(), v))
                    .map_err(|e| Error::Invalid(format!("{n}: {e}")))
            })
            .collect::<Result<_>>()?;
        let text =
            serde_json::to_string_pretty(&self.peft_config(base_model)).map_err(|e| Error::Invalid(e.to_string()))?;
        let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
        let bytes = safetensors::tensor::serialize(views, Some(meta))
            .map_err(|e| Error::Invalid(format!("serializing adapter: {e}")))?;
        publish_pair(dir, &bytes, text.as_bytes())
    }

    fn peft_config(&self, base_model: &str) -> Value {
        json!({
            "peft_type": "LORA",
            "task_type": "CAUSAL_LM",
            "base_model_name_or_path": base_model,
            "r": self.cfg.r,
            "lora_alpha": self.cfg.alpha,
            "use_rslora": self.cfg.use_rslora,
            "target_modules": self.cfg.targets.iter().map(|t| t.name()).collect::<Vec<_>>(),
            "lora_dropout": 0.0,
            "bias": "none",
            "fan_in_fan_out": false,
            "init_lora_weights": true,
            "inference_mode": true,
            "modules_to_save": null,
            "layers_to_transform": null,
            "use_dora": false,
            // A vision-language model: PEFT matches the projection names in the vision tower
            // too, which edgerl leaves frozen.
            "exclude_modules": (self.text_prefix != "model.").then_some(".*vision_model.*"),
        })
    }
}

/// Publishes the two files of an adapter together. Both are written and flushed under temp
/// names sharing one writer tag (weights first), then renamed, weights first. So a config
/// temp file without its weights twin exists only after a crash between the two renames, is
/// complete, and belongs with the weights in place: `recover` (run by every load) renames it.
fn publish_pair(dir: &Path, weights: &[u8], config: &[u8]) -> Result<()> {
    let (wpath, cpath) = (dir.join(WEIGHTS_FILE), dir.join(CONFIG_FILE));
    let tag = crate::io::writer_tag();
    let temp = |file: &str| dir.join(format!(".{file}{}{tag}", crate::io::TMP_MARK));
    let (wtmp, ctmp) = (temp(WEIGHTS_FILE), temp(CONFIG_FILE));
    let cleanup = || {
        let _ = std::fs::remove_file(&wtmp);
        let _ = std::fs::remove_file(&ctmp);
    };
    let written = crate::io::write_synced(&wtmp, weights)
        .map_err(|e| Error::file(&wpath, format!("cannot write: {e}")))
        .and_then(|_| crate::io::write_synced(&ctmp, config).map_err(|e| Error::file(&cpath, format!("cannot write: {e}"))))
        .and_then(|_| crate::io::rename_synced(&wtmp, &wpath));
    if let Err(e) = written {
        cleanup();
        return Err(e);
    }
    crate::io::rename_synced(&ctmp, &cpath).inspect_err(|_| cleanup())
}

/// Completes a save interrupted between its two renames (see `publish_pair`) and removes the
/// temp files of saves interrupted earlier. Only edgerl's own temp names are touched.
pub fn recover(dir: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    let names: Vec<String> = rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    let tag_of = |file: &str, n: &str| n.strip_prefix('.').and_then(|r| r.strip_prefix(file)).and_then(|r| r.strip_prefix(crate::io::TMP_MARK)).map(str::to_string);
    let weights_tags: Vec<String> = names.iter().filter_map(|n| tag_of(WEIGHTS_FILE, n)).collect();
    for n in &names {
        if let Some(tag) = tag_of(CONFIG_FILE, n) {
            if !weights_tags.contains(&tag) {
                match crate::io::rename_synced(&dir.join(n), &dir.join(CONFIG_FILE)) {
                    Ok(()) => log::warn!("{}: completed an interrupted save ({n})", dir.display()),
                    Err(e) => log::warn!("{e}"),
                }
                continue;
            }
            let _ = std::fs::remove_file(dir.join(n));
        } else if tag_of(WEIGHTS_FILE, n).is_some() {
            let _ = std::fs::remove_file(dir.join(n));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(tag: &str, files: &[(&str, &str)]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("edgerl-peft-{tag}-{}", crate::io::writer_tag()));
        std::fs::create_dir_all(&dir).unwrap();
        for (n, text) in files {
            std::fs::write(dir.join(n), text).unwrap();
        }
        dir
    }

    fn read(dir: &Path, n: &str) -> String {
        std::fs::read_to_string(dir.join(n)).unwrap()
    }

    #[test]
    fn a_save_cut_between_its_renames_is_completed() {
        // The weights are renamed in, the config's temp twin is all that is left: roll forward.
        let d = dir_with("forward", &[(WEIGHTS_FILE, "new w"), (CONFIG_FILE, "old c"), (".adapter_config.json.tmp-7-3", "new c")]);
        recover(&d);
        assert_eq!((read(&d, WEIGHTS_FILE), read(&d, CONFIG_FILE)), ("new w".into(), "new c".into()));
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 2);
        // Cut before any rename: both temps go, the old pair stays.
        let d2 = dir_with("back", &[(WEIGHTS_FILE, "old w"), (CONFIG_FILE, "old c"), (".adapter_model.safetensors.tmp-7-4", "new w"), (".adapter_config.json.tmp-7-4", "new"), ("notes.tmp-1", "mine")]);
        recover(&d2);
        assert_eq!((read(&d2, WEIGHTS_FILE), read(&d2, CONFIG_FILE)), ("old w".into(), "old c".into()));
        assert_eq!(std::fs::read_dir(&d2).unwrap().count(), 3, "a file not edgerl's was touched");
        for d in [d, d2] {
            let _ = std::fs::remove_dir_all(d);
        }
    }

    #[test]
    fn empty_target_modules_and_bad_alphas_are_refused() {
        let text = r#"{"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": []}"#;
        let e = parse_config(text, Path::new("a/adapter_config.json")).unwrap_err().to_string();
        assert!(e.contains("adapter_config.json") && e.contains("target_modules is empty"), "{e}");
        for alpha in ["1e39", "0", "-2"] {
            let text = format!(r#"{{"peft_type": "LORA", "r": 4, "lora_alpha": {alpha}, "target_modules": ["q_proj"]}}"#);
            let e = parse_config(&text, Path::new("a/adapter_config.json")).unwrap_err().to_string();
            assert!(e.contains("lora_alpha"), "{alpha}: {e}");
        }
        let ok = r#"{"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj"]}"#;
        assert_eq!(parse_config(ok, Path::new("a")).unwrap().targets.len(), 1);
    }
}
