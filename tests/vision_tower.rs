//! The SmolVLM / Idefics3 vision tower on the GPU (`edgerl::vision::tower`) against
//! transformers' `get_image_features`, through the tiny random checkpoint and references made by
//! tests/fixtures/vision_tower/make_vision_tower_fixture.py: on Vulkan (lavapipe) and GL
//! (llvmpipe), and with a storage-binding limit that splits the tower's weights. Then the
//! tower's new kernels (LayerNorm with bias, the ungated activation, bidirectional attention
//! with a key mask, the pixel shuffle's gather) against plain-Rust references on awkward sizes.

mod common;

use std::path::{Path, PathBuf};

use edgerl::Error;
use edgerl::gpu::kernels::Activation;
use edgerl::gpu::rows::gather_index;
use edgerl::gpu::{DType, Gpu, GpuOptions, Recorder};
use edgerl::model::weights::{RawTensor, SafetensorsWeights, WeightSource};
use edgerl::vision::preprocess::{ImageProcessor, RgbImage};
use edgerl::vision::tower::{
    Pixels, VisionConfig, VisionTower, bucket_boundaries, pixel_shuffle_sources, position_ids,
    tower_output_bytes, tower_run_bytes, tower_weight_bytes,
};

use common::{Rng, assert_close};

fn fixture() -> PathBuf {
    common::fixtures().join("vision_tower")
}

struct Reference {
    bytes: Vec<u8>,
}

impl Reference {
    fn load() -> Reference {
        let bytes = std::fs::read(fixture().join("reference.safetensors")).unwrap();
        Reference { bytes }
    }
    /// A tensor's values and shape.
    fn get(&self, name: &str) -> (Vec<f32>, Vec<usize>) {
        let st = safetensors::SafeTensors::deserialize(&self.bytes).unwrap();
        let t = st.tensor(name).unwrap();
        assert_eq!(t.dtype(), safetensors::Dtype::F32, "{name}");
        (bytemuck::pod_collect_to_vec(t.data()), t.shape().to_vec())
    }
}

fn load_tower(gpu: &Gpu) -> VisionTower {
    let dir = fixture().join("model");
    let cfg = VisionConfig::load(&dir).unwrap();
    let src = SafetensorsWeights::open(&dir).unwrap();
    VisionTower::load(gpu, cfg, &src, None).unwrap()
}

fn label(gpu: &Gpu) -> String {
    format!("{} ({}-byte bindings)", gpu.adapter.backend, gpu.max_binding)
}

/// The batch's 6 images (two of them padding) and the no-mask pair, against transformers.
fn check_against_transformers(gpu: &Gpu, tower: &VisionTower) {
    let r = Reference::load();
    let what = label(gpu);
    let (pixels, shape) = r.get("pixel_values");
    let (mask, _) = r.get("pixel_attention_mask");
    let mask: Vec<u8> = mask.iter().map(|&m| (m != 0.0) as u8).collect();
    let px = Pixels {
        values: &pixels,
        mask: Some(&mask),
        images: shape[0] * shape[1],
        height: shape[3],
        width: shape[4],
    };
    let t0 = std::time::Instant::now();
    let out = tower.run(gpu, &px, true).unwrap();
    eprintln!("{what}: 4 images through the tower in {:.2?}", t0.elapsed());
    // Batch 1's last two images are all zeros: dropped, as transformers drops them.
    assert_eq!(out.real, vec![0, 1, 2, 3], "{what}");
    assert_eq!((out.tokens_per_image, out.width), (16, 48), "{what}");
    let (hidden, _) = r.get("vision_hidden");
    assert_close(&format!("{what}: vision hidden"), out.vision_hidden.as_ref().unwrap(), &hidden, 1e-4, 0.0);
    let (features, _) = r.get("features");
    let worst = out.values.iter().zip(&features).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    let scale = features.iter().map(|v| v.abs()).fold(0.0, f32::max);
    eprintln!("{what}: features within {worst:.2e} of transformers (largest |value| {scale:.2})");
    assert_close(&format!("{what}: features"), &out.values, &features, 1e-4, 0.0);
    // The reference is not trivially matched: masking changes the partial images' features.
    let unmasked = tower
        .image_features(gpu, &Pixels { mask: None, ..px })
        .unwrap();
    let per = 16 * 48;
    let moved = (0..per).map(|i| (unmasked.values[per + i] - features[per + i]).abs()).fold(0.0, f32::max);
    assert!(moved > 1e-2, "{what}: the mask should matter, moved {moved}");

    let (pixels, shape) = r.get("nomask_pixel_values");
    let px = Pixels { values: &pixels, mask: None, images: shape[1], height: shape[3], width: shape[4] };
    let out = tower.image_features(gpu, &px).unwrap();
    let (want, _) = r.get("nomask_features");
    assert_eq!(out.real, vec![0, 1]);
    assert_close(&format!("{what}: features without a mask"), &out.values, &want, 1e-4, 0.0);
}

#[test]
fn tower_matches_transformers_on_each_backend() {
    for gpu in common::normal_gpus() {
        let tower = load_tower(gpu);
        check_against_transformers(gpu, &tower);
    }
}

/// Image bytes through edgerl's Idefics3 processor and then the tower, against transformers'
/// processor and `get_image_features` on the same bytes: two samples of 5 and 3 tiles, so the
/// batch carries two padding tiles, which are dropped.
#[test]
fn images_through_the_processor_and_tower_match_transformers() {
    let r = Reference::load();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&r.bytes).unwrap();
    let fixture: serde_json::Value =
        serde_json::from_str(&meta.metadata().as_ref().unwrap()["fixture"]).unwrap();
    let processor = ImageProcessor::from_json(&fixture["e2e_processor"].to_string()).unwrap();
    let image = |name: &str| {
        let (v, shape) = r.get(name);
        RgbImage::from_rgb(shape[1], shape[0], v.iter().map(|&b| b as u8).collect()).unwrap()
    };
    let pv = processor
        .process_batch(&[vec![image("e2e_image_a")], vec![image("e2e_image_b")]])
        .unwrap();
    assert_eq!(pv.shape[..2], [2, 5]);
    let (want, shape) = r.get("e2e_features");
    for gpu in common::normal_gpus() {
        let tower = load_tower(gpu);
        let out = tower.image_features(gpu, &Pixels::from(&pv)).unwrap();
        assert_eq!(out.real, vec![0, 1, 2, 3, 4, 5, 6, 7], "{}", label(gpu));
        assert_eq!(out.real.len(), shape[0]);
        assert_close(&format!("{}: processor + tower", label(gpu)), &out.values, &want, 1e-4, 0.0);
    }
}

/// The bucket edges (torch's float32 arange) and the position ids on a 26-a-side grid, where
/// valid rows and columns land exactly on edges, equal transformers' bit for bit.
#[test]
fn bucket_edges_and_position_ids_match_transformers() {
    let r = Reference::load();
    for n in [26, 33, 49] {
        let (want, _) = r.get(&format!("boundaries_n{n}"));
        assert_eq!(bucket_boundaries(n), want, "n = {n}");
    }
    let (masks, shape) = r.get("positions_mask");
    let (ids, _) = r.get("positions_ids");
    let per = shape[1] * shape[2];
    for case in 0..shape[0] {
        let mask: Vec<bool> = masks[case * per..(case + 1) * per].iter().map(|&m| m != 0.0).collect();
        let got = position_ids(&mask, 26, 26, 26, &bucket_boundaries(26));
        let want: Vec<u32> = ids[case * per..(case + 1) * per].iter().map(|&v| v as u32).collect();
        assert_eq!(got, want, "case {case}");
    }
}

/// A limit of one image's widest activation (64 patches × 112 MLP columns × 4 bytes): the
/// attention, MLP and projection weights split into row pieces, the batch runs an image a chunk.
#[test]
fn tower_matches_transformers_with_split_weights() {
    let limit = 64 * 112 * 4;
    let gpu = Gpu::new(&GpuOptions { max_binding: Some(limit), ..Default::default() }).unwrap();
    let tower = load_tower(&gpu);
    let l = &tower.layers[1];
    for (name, t) in [("q", &l.q), ("o", &l.o), ("fc1", &l.fc1), ("fc2", &l.fc2), ("projection", &tower.projection)] {
        assert!(t.pieces.len() > 1, "{name} should split at {limit} bytes, has {} piece(s)", t.pieces.len());
    }
    check_against_transformers(&gpu, &tower);
    // Below one image's activations the tower refuses clearly.
    let small = Gpu::new(&GpuOptions { max_binding: Some(limit / 2), ..Default::default() }).unwrap();
    let tower = load_tower(&small);
    let (pixels, _) = Reference::load().get("nomask_pixel_values");
    let px = Pixels { values: &pixels, mask: None, images: 2, height: 32, width: 32 };
    let e = tower.image_features(&small, &px).unwrap_err().to_string();
    assert!(e.contains("binding limit"), "{e}");
}

/// The plan's bytes (weights, and a run's peak above them) equal what the memory counter
/// measures, with real limits and with split weights; with the matrices stored in bf16 the
/// features match transformers on the same rounded matrices.
#[test]
fn tower_plan_equals_measured_bytes() {
    let dir = fixture().join("model");
    let cfg = VisionConfig::load(&dir).unwrap();
    let src = SafetensorsWeights::open(&dir).unwrap();
    let r = Reference::load();
    let (pixels, _) = r.get("pixel_values");
    let (mask, _) = r.get("pixel_attention_mask");
    let mask: Vec<u8> = mask.iter().map(|&m| (m != 0.0) as u8).collect();
    let px = Pixels { values: &pixels, mask: Some(&mask), images: 6, height: 32, width: 32 };
    let (f32_features, _) = r.get("features");
    for (limit, dtype) in [(None, None), (Some(64 * 112 * 4), None), (None, Some(DType::BF16))] {
        // A device of its own: the memory counter sees only this test.
        let gpu = Gpu::new(&GpuOptions { max_binding: limit, ..Default::default() }).unwrap();
        let what = format!("{} with {dtype:?} weights", label(&gpu));
        let before = gpu.memory.live();
        let planned = tower_weight_bytes(&cfg, &src, dtype, gpu.max_binding).unwrap();
        let tower = VisionTower::load(&gpu, cfg.clone(), &src, dtype).unwrap();
        assert_eq!(gpu.memory.live() - before, planned, "{what}: weights");
        assert_eq!(tower.weight_bytes(), planned, "{what}: weights");
        gpu.memory.reset_peak();
        let base = gpu.memory.live();
        let out = tower.image_features(&gpu, &px).unwrap();
        let run = tower_run_bytes(&cfg, out.real.len(), 8, gpu.max_binding).unwrap();
        assert_eq!(gpu.memory.peak() - base, run, "{what}: run peak");
        assert_eq!(gpu.memory.live(), base, "{what}: the run leaves nothing behind");
        let off = out.values.iter().zip(&f32_features).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        eprintln!("{what}: weights {planned} bytes, run peak {run} bytes, {off:.1e} from the f32 features");
        // Left on the GPU: the same values, and the features buffer on top of the run's peak.
        gpu.memory.reset_peak();
        let (meta, buf) = tower.image_features_on_gpu(&gpu, &px).unwrap();
        let output = tower_output_bytes(&cfg, meta.real.len(), 8);
        assert_eq!((gpu.memory.peak() - base, buf.bytes), (run + output, output), "{what}");
        assert_eq!(gpu.memory.live(), base + output, "{what}: only the features stay");
        assert_eq!(gpu.read_f32(&buf, out.values.len()).unwrap(), out.values, "{what}");
        // bf16 matrices against transformers on the same rounded matrices.
        let (want, _) = r.get(if dtype.is_none() { "features" } else { "features_bf16" });
        assert_close(&what, &out.values, &want, 1e-4, 0.0);
    }
}

// ---- bad input --------------------------------------------------------------------------------

/// The fixture's weights with one tensor hidden or replaced by a wrongly shaped one.
struct Tampered {
    inner: SafetensorsWeights,
    hide: &'static str,
    reshape: bool,
}

impl WeightSource for Tampered {
    fn get(&self, name: &str) -> edgerl::Result<Option<RawTensor<'_>>> {
        if name != self.hide {
            return self.inner.get(name);
        }
        if !self.reshape {
            return Ok(None);
        }
        Ok(self.inner.get(name)?.map(|mut t| {
            t.shape = vec![t.shape.iter().product::<usize>()];
            t
        }))
    }
    fn has(&self, name: &str) -> bool {
        self.inner.has(name) && (self.reshape || name != self.hide)
    }
    fn origin(&self) -> PathBuf {
        self.inner.origin()
    }
}

#[test]
fn bad_inputs_are_clear_errors() {
    let gpu = &common::backends().normal[0];
    let dir = fixture().join("model");
    let cfg = VisionConfig::load(&dir).unwrap();
    let fc1 = "model.vision_model.encoder.layers.1.mlp.fc1.weight";
    for reshape in [false, true] {
        let src = Tampered { inner: SafetensorsWeights::open(&dir).unwrap(), hide: fc1, reshape };
        let e = VisionTower::load(gpu, cfg.clone(), &src, None).err().expect("must fail").to_string();
        assert!(e.contains(fc1) && e.contains(if reshape { "shape" } else { "missing" }), "{e}");
    }
    // A text-only checkpoint: no tower.
    let text_only = common::fixtures().join("models/llama_f32");
    let src = SafetensorsWeights::open(&text_only).unwrap();
    let e = VisionTower::load(gpu, cfg.clone(), &src, None).err().unwrap().to_string();
    assert!(e.contains("no vision tower"), "{e}");
    let e = VisionConfig::load(&text_only).unwrap_err().to_string();
    assert!(e.contains("vision_config"), "{e}");
    assert!(VisionConfig::load(Path::new("/nonexistent")).is_err());

    let tower = load_tower(gpu);
    let pixels = vec![0.5f32; 3 * 32 * 32];
    let run = |values: &[f32], mask: Option<&[u8]>, h: usize, w: usize| {
        tower.image_features(gpu, &Pixels { values, mask, images: 1, height: h, width: w })
    };
    assert!(matches!(run(&pixels[1..], None, 32, 32), Err(Error::Invalid(_))));
    assert!(matches!(run(&pixels, Some(&[1u8; 10]), 32, 32), Err(Error::Invalid(_))));
    let e = run(&pixels[..3 * 32 * 16], None, 32, 16).unwrap_err().to_string();
    assert!(e.contains("square"), "{e}");
    let e = run(&pixels, Some(&[0u8; 32 * 32]), 32, 32).unwrap_err().to_string();
    assert!(e.contains("no patch"), "{e}");
    // All padding: nothing goes through.
    let out = run(&[0.0; 3 * 32 * 32], None, 32, 32).unwrap();
    assert!(out.real.is_empty() && out.values.is_empty());
}

// ---- kernels against CPU references --------------------------------------------------------------

/// Kernel tests run on each backend's real limits and on Vulkan's portable kernels (the
/// activations here are larger than the 4096-byte tiny-binding devices take).
fn kernel_gpus() -> impl Iterator<Item = &'static Gpu> {
    let b = common::backends();
    common::in_turn(b.normal.iter().chain(b.portable.iter()))
}

fn upload(gpu: &Gpu, v: &[f32]) -> edgerl::gpu::GpuBuffer {
    gpu.upload(bytemuck::cast_slice(v), "test").unwrap()
}

#[test]
fn layernorm_matches_cpu() {
    let mut rng = Rng::new(3);
    for gpu in kernel_gpus() {
        for (rows, d) in [(1, 1), (37, 67), (5, 300), (70, 96)] {
            // A mean far from zero: the two-pass variance must hold.
            let x: Vec<f32> = rng.vec(rows * d).iter().map(|v| 20.0 + 3.0 * v).collect();
            let (w, b) = (rng.vec(d), rng.vec(d));
            let eps = 1e-5;
            let mut want = vec![0.0f32; rows * d];
            for r in 0..rows {
                let row = &x[r * d..(r + 1) * d];
                let mean = row.iter().map(|&v| v as f64).sum::<f64>() / d as f64;
                let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / d as f64;
                for i in 0..d {
                    let n = (row[i] as f64 - mean) / (var + eps as f64).sqrt();
                    want[r * d + i] = (n * w[i] as f64 + b[i] as f64) as f32;
                }
            }
            let (xb, wb, bb) = (upload(gpu, &x), upload(gpu, &w), upload(gpu, &b));
            let y = gpu.alloc((rows * d * 4) as u64, "y").unwrap();
            let mut rec = Recorder::new(gpu);
            rec.layernorm(&xb, &wb, &bb, &y, rows, d, eps).unwrap();
            rec.submit().unwrap();
            let got = gpu.read_f32(&y, rows * d).unwrap();
            assert_close(&format!("layernorm {rows}×{d} on {}", label(gpu)), &got, &want, 2e-4, 1e-4);
        }
    }
}

#[test]
fn gelu_tanh_in_place_matches_cpu() {
    let mut rng = Rng::new(5);
    for gpu in kernel_gpus() {
        for n in [1usize, 255, 1000, 70_001] {
            let x: Vec<f32> = rng.vec(n).iter().map(|v| 8.0 * v).collect();
            let want: Vec<f32> = x
                .iter()
                .map(|&g| {
                    let g = g as f64;
                    let inner = (2.0 / std::f64::consts::PI).sqrt() * (g + 0.044715 * g.powi(3));
                    (0.5 * g * (1.0 + inner.tanh())) as f32
                })
                .collect();
            let b = upload(gpu, &x);
            let mut rec = Recorder::new(gpu);
            rec.act(Activation::GeluTanh, &b, n).unwrap();
            rec.submit().unwrap();
            let got = gpu.read_f32(&b, n).unwrap();
            assert_close(&format!("gelu_tanh {n} on {}", label(gpu)), &got, &want, 1e-5, 1e-5);
        }
    }
}

/// Plain softmax attention per (image, query, head) over the image's unmasked keys, in f64.
#[allow(clippy::too_many_arguments)]
fn attention_cpu(q: &[f32], k: &[f32], v: &[f32], mask: &[u32], seq: usize, heads: usize, hd: usize, scale: f32) -> Vec<f32> {
    let t = mask.len();
    let mut out = vec![0.0f32; t * heads * hd];
    for i in 0..t {
        let img = i / seq;
        for h in 0..heads {
            let qi = &q[(i * heads + h) * hd..][..hd];
            let keys: Vec<usize> = (img * seq..(img + 1) * seq).filter(|&j| mask[j] != 0).collect();
            let scores: Vec<f64> = keys
                .iter()
                .map(|&j| {
                    let kj = &k[(j * heads + h) * hd..][..hd];
                    qi.iter().zip(kj).map(|(a, b)| *a as f64 * *b as f64).sum::<f64>() * scale as f64
                })
                .collect();
            let m = scores.iter().cloned().fold(f64::MIN, f64::max);
            let e: Vec<f64> = scores.iter().map(|s| (s - m).exp()).collect();
            let z: f64 = e.iter().sum();
            for d in 0..hd {
                let acc: f64 = keys.iter().zip(&e).map(|(&j, w)| w * v[(j * heads + h) * hd + d] as f64).sum();
                out[(i * heads + h) * hd + d] = (acc / z) as f32;
            }
        }
    }
    out
}

#[test]
fn bidirectional_attention_matches_cpu() {
    let mut rng = Rng::new(7);
    for gpu in kernel_gpus() {
        // head_dims on the narrow path (≤ 64) and the vec4 one; images longer than one 64-key block.
        for (images, seq, heads, hd) in [(3, 37, 3, 16), (2, 130, 2, 72), (1, 1, 1, 5), (2, 64, 4, 64)] {
            let t = images * seq;
            let n = t * heads * hd;
            let (q, k, v) = (rng.vec(n), rng.vec(n), rng.vec(n));
            let q: Vec<f32> = q.iter().map(|x| 3.0 * x).collect();
            // Random keys masked, image 0 down to its last key alone.
            let mut mask: Vec<u32> = (0..t).map(|_| !rng.next_u32().is_multiple_of(3) as u32).collect();
            for (j, m) in mask.iter_mut().enumerate().take(seq) {
                *m = (j == seq - 1) as u32;
            }
            for img in 0..images {
                mask[img * seq + seq - 1] = 1;
            }
            let scale = 1.0 / (hd as f32).sqrt();
            let want = attention_cpu(&q, &k, &v, &mask, seq, heads, hd, scale);
            let (qb, kb, vb) = (upload(gpu, &q), upload(gpu, &k), upload(gpu, &v));
            let mb = gpu.upload(bytemuck::cast_slice(&mask), "mask").unwrap();
            let out = gpu.alloc((n * 4) as u64, "out").unwrap();
            let mut rec = Recorder::new(gpu);
            rec.attention_bidirectional(&qb, &kb, &vb, &out, &mb, images, seq, heads, hd, scale).unwrap();
            rec.submit().unwrap();
            let got = gpu.read_f32(&out, n).unwrap();
            let what = format!("attention {images}×{seq} tokens, {heads} heads × {hd} on {}", label(gpu));
            assert_close(&what, &got, &want, 2e-5, 1e-4);
        }
        // Short buffers and unsupported shapes are refused before anything is recorded.
        let small = gpu.alloc(64, "small").unwrap();
        let mut rec = Recorder::new(gpu);
        assert!(rec.attention_bidirectional(&small, &small, &small, &small, &small, 2, 8, 1, 4, 1.0).is_err());
        assert!(rec.attention_bidirectional(&small, &small, &small, &small, &small, 1, 1, 1, 300, 1.0).is_err());
        assert!(rec.is_empty());
    }
}

/// The pixel shuffle as a GPU row gather against `Idefics3Connector.pixel_shuffle` (from the
/// fixture), for scale factors 2 (a 6 × 6 grid) and 4 (SmolVLM's).
#[test]
fn pixel_shuffle_gather_matches_transformers() {
    let r = Reference::load();
    for gpu in kernel_gpus() {
        for (name, factor) in [("shuffle_r2", 2), ("shuffle_r4", 4)] {
            let (x, shape) = r.get(&format!("{name}_in"));
            let (want, _) = r.get(&format!("{name}_out"));
            let (images, seq, d) = (shape[0], shape[1], shape[2]);
            let side = (seq as f64).sqrt() as usize;
            let index = gather_index(&pixel_shuffle_sources(images, side, factor));
            let ib = gpu.upload(bytemuck::cast_slice(&index), "index").unwrap();
            let (xb, out) = (upload(gpu, &x), gpu.alloc((x.len() * 4) as u64, "out").unwrap());
            let mut rec = Recorder::new(gpu);
            rec.gather_rows(&xb, &ib, &out, images * seq, d).unwrap();
            rec.submit().unwrap();
            assert_eq!(gpu.read_f32(&out, x.len()).unwrap(), want, "{name} on {}", label(gpu));
        }
    }
}

/// SmolVLM-256M's tower shape (SigLIP 768 wide, 12 layers, 512-pixel tiles of 16-pixel patches,
/// scale factor 4 into SmolLM2-135M's 576) with random bf16 weights: time and device peak of
/// `EDGERL_TOWER_TILES` tiles (default 1; a full image is 13), the peak checked against the
/// plan. `EDGERL_TOWER_LAYERS` cuts the layers (quicker looks), `EDGERL_PROFILE=1` prints the
/// time by kernel. Slow on a CPU device, so only on request:
/// `cargo test --release --test vision_tower -- --ignored --nocapture`.
#[test]
#[ignore = "SmolVLM-256M-shaped: minutes on lavapipe; run with --ignored"]
fn smolvlm_256m_shaped_tower_time_and_peak() {
    let v = serde_json::json!({
        "scale_factor": 4,
        "text_config": {"hidden_size": 576},
        "vision_config": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
                          "num_attention_heads": 12, "patch_size": 16, "image_size": 512}
    });
    let mut cfg = VisionConfig::from_json(&v).unwrap();
    let env = |k: &str| std::env::var(k).ok().and_then(|s| s.parse::<usize>().ok());
    cfg.num_layers = env("EDGERL_TOWER_LAYERS").unwrap_or(cfg.num_layers);
    let shapes = cfg.tower_tensors().map(|t| (format!("model.{}", t.name), t.shape)).collect();
    let src = edgerl::model::weights::RandomWeights { dtype: DType::BF16, shapes, seed: 19 };
    let tiles = env("EDGERL_TOWER_TILES").unwrap_or(1);
    let gpu = Gpu::new(&GpuOptions::from_env().unwrap()).unwrap();
    let weights = tower_weight_bytes(&cfg, &src, None, gpu.max_binding).unwrap();
    let tower = VisionTower::load(&gpu, cfg.clone(), &src, None).unwrap();
    assert_eq!(tower.weight_bytes(), weights);
    let mut rng = Rng::new(11);
    let pixels = rng.vec(tiles * 3 * 512 * 512);
    let px = Pixels { values: &pixels, mask: None, images: tiles, height: 512, width: 512 };
    // A first run builds the pipelines; the second is timed.
    tower.image_features(&gpu, &px).unwrap();
    gpu.memory.reset_peak();
    let base = gpu.memory.live();
    let t0 = std::time::Instant::now();
    let out = tower.image_features(&gpu, &px).unwrap();
    let secs = t0.elapsed().as_secs_f64();
    let run = tower_run_bytes(&cfg, tiles, 32, gpu.max_binding).unwrap();
    assert_eq!(gpu.memory.peak() - base, run);
    assert_eq!(out.values.len(), tiles * 64 * 576);
    assert!(out.values.iter().all(|v| v.is_finite()));
    eprintln!(
        "SmolVLM-256M-shaped tower ({} layers) on {} ({}): {tiles} tile(s) in {secs:.2} s; weights {weights} bytes (bf16), run peak {run} bytes above them",
        cfg.num_layers, gpu.adapter.backend, gpu.adapter.name
    );
    for (kernel, n, s) in gpu.profile_report() {
        eprintln!("  {kernel:<28} {n:>6} dispatches {s:>9.3} s");
    }
}
