//! Fault injection into `edgerl train`: NaN gradients (written into a gradient buffer on the
//! GPU by `EDGERL_FAULT_NONFINITE_STEPS`, so the real detection runs) skip their update and are
//! counted; too many in a row stop the run with a resumable checkpoint.

mod offline_case;

use offline_case::{adapter_bytes, case_dir, edgerl, metrics, read, run_ok, steps, tensors};

fn ckpt(dir: &std::path::Path, step: usize, file: &str) -> Vec<u8> {
    read(&dir.join(format!("out/checkpoint-{step}/{file}")))
}

#[test]
fn a_nan_step_is_skipped_counted_and_the_run_goes_on() {
    let dir = case_dir("faults-nan-once", 4, "");
    run_ok(edgerl(&dir, false).env("EDGERL_FAULT_NONFINITE_STEPS", "2"));
    // Step 2 left the adapter and Adam's moments as step 1 had them; step 3 changed them.
    for file in ["adapter_model.safetensors", "optimizer.safetensors"] {
        assert_eq!(ckpt(&dir, 1, file), ckpt(&dir, 2, file), "{file} changed by the skipped step");
        assert_ne!(ckpt(&dir, 2, file), ckpt(&dir, 3, file), "{file} unchanged by step 3");
    }
    let m = metrics(&dir);
    assert_eq!(steps(&dir), [1, 2, 3, 4]);
    let skipped: Vec<u64> = m.iter().map(|l| l["skipped_steps"].as_u64().unwrap()).collect();
    assert_eq!(skipped, [0, 1, 1, 1]);
    assert!(m[1]["grad_norm"].is_null(), "{}", m[1]);
    assert!(m.iter().enumerate().all(|(i, l)| i == 1 || l["grad_norm"].as_f64().unwrap().is_finite()));

    // Resuming after the skip continues exactly: the checkpoint carries the skip count, which
    // Adam's bias correction depends on.
    let full = adapter_bytes(&dir);
    for d in ["checkpoint-3", "checkpoint-4", "adapter"] {
        std::fs::remove_dir_all(dir.join("out").join(d)).unwrap();
    }
    run_ok(&mut edgerl(&dir, true));
    assert_eq!(adapter_bytes(&dir), full, "resumed after a skipped step: adapter differs");
    assert_eq!(steps(&dir), [1, 2, 3, 4]);
}

#[test]
fn adams_step_count_skips_with_the_update() {
    // Step 1 skipped: step 2 is Adam's first update, whose bias-corrected step on a fresh
    // lora_B (zero, with gradients far above adam_epsilon) moves its largest entry by the
    // learning rate itself. Had Adam counted the skipped step, it would move by 0.74 of it.
    let dir = case_dir("faults-nan-first", 2, "");
    run_ok(edgerl(&dir, false).env("EDGERL_FAULT_NONFINITE_STEPS", "1"));
    let b_max = |step: usize| {
        tensors(&dir.join(format!("out/checkpoint-{step}/adapter_model.safetensors")))
            .iter()
            .filter(|(n, _)| n.contains("lora_B"))
            .flat_map(|(_, v)| v.iter().map(|x| x.abs()))
            .fold(0.0f32, f32::max)
    };
    assert_eq!(b_max(1), 0.0, "the skipped first step changed lora_B");
    let moved = b_max(2) / 5e-3;
    assert!((moved - 1.0).abs() < 0.01, "largest lora_B step is {moved} x the learning rate");
}

#[test]
fn nan_at_every_step_stops_with_a_resumable_checkpoint() {
    let dir = case_dir("faults-nan-always", 5, "max_consecutive_skips = 3");
    let fresh = {
        let d = case_dir("faults-nan-fresh", 1, "");
        run_ok(edgerl(&d, false).env("EDGERL_FAULT_NONFINITE_STEPS", "1"));
        ckpt(&d, 1, "adapter_model.safetensors")
    };
    let out = edgerl(&dir, false).env("EDGERL_FAULT_NONFINITE_STEPS", "1,2,3,4,5").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("training stopped at step 3")
            && stderr.contains("max_consecutive_skips = 3")
            && stderr.contains("checkpoint-3")
            && stderr.contains("--resume"),
        "{stderr}"
    );
    assert!(!dir.join("out/adapter").exists(), "a stopped run wrote a final adapter");
    assert_eq!(ckpt(&dir, 3, "adapter_model.safetensors"), fresh, "the checkpoint is not the last good adapter");
    let skipped: Vec<u64> = metrics(&dir).iter().map(|l| l["skipped_steps"].as_u64().unwrap()).collect();
    assert_eq!(skipped, [1, 2, 3]);
    // Once the cause is gone, --resume finishes the run from there.
    run_ok(&mut edgerl(&dir, true));
    assert_eq!(steps(&dir), [1, 2, 3, 4, 5]);
    assert_eq!(metrics(&dir)[4]["skipped_steps"], 3);
    assert_ne!(adapter_bytes(&dir), fresh);
}

/// Device bytes at the peak through each step of an uncapped run of `dir`'s config, measured
/// in this process on the device the CLI picks (same allocations, same order).
fn peaks_per_step(dir: &std::path::Path) -> Vec<u64> {
    let gpu = edgerl::gpu::Gpu::from_env().unwrap();
    let mut cfg = edgerl::rl::TrainConfig::from_file(&dir.join("run.toml")).unwrap();
    cfg.output_dir = dir.join("probe");
    // As `edgerl train` runs it: `gradient_checkpointing = "auto"` (the default) settled.
    edgerl::plan::settle_auto_checkpointing(&mut cfg, gpu.max_binding);
    let mut peaks = Vec::new();
    edgerl::rl::trainer::train(&gpu, cfg, |_| peaks.push(gpu.memory.peak())).unwrap();
    peaks
}

#[test]
fn out_of_memory_mid_run_explains_and_resumes_bit_identically() {
    let full = case_dir("faults-oom-full", 6, "");
    run_ok(&mut edgerl(&full, false));
    let dir = case_dir("faults-oom", 6, "");
    // Later batches have longer sequences: a cap at the peak through step k-1 lets the steps
    // before k run and step k fail.
    let peaks = peaks_per_step(&dir);
    let k = 1 + peaks.iter().position(|&p| p > peaks[0]).expect("the peak never grows after step 1");
    let cap = peaks[k - 2];
    let out = edgerl(&dir, false).env("EDGERL_DEVICE_MEMORY_LIMIT", cap.to_string()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("GPU out of memory allocating")
            && stderr.contains("of device memory in use (peak")
            && stderr.contains("edgerl plan --config")
            && stderr.contains("--memory-budget"),
        "{stderr}"
    );
    assert_eq!(steps(&dir), (1..k as u64).collect::<Vec<_>>(), "cap {cap}, peaks {peaks:?}: {stderr}");
    // The newest checkpoint is the uncapped run's, and resuming without the cap ends the same.
    for file in ["adapter_model.safetensors", "optimizer.safetensors", "trainer_state.bin"] {
        assert_eq!(ckpt(&dir, k - 1, file), ckpt(&full, k - 1, file), "{file}");
    }
    run_ok(&mut edgerl(&dir, true));
    assert_eq!(adapter_bytes(&dir), adapter_bytes(&full));
    assert_eq!(steps(&dir), [1, 2, 3, 4, 5, 6]);
}

#[test]
fn a_lost_device_is_named() {
    // Its own device per backend: destroying one is for good.
    for backend in ["vulkan", "gl"] {
        let opts = edgerl::gpu::GpuOptions { backend: Some(backend.into()), ..Default::default() };
        let gpu = match edgerl::gpu::Gpu::new(&opts) {
            Ok(g) => g,
            Err(e) if std::env::var_os("CI").is_none() => {
                eprintln!("skipping {backend}: {e}");
                continue;
            }
            Err(e) => panic!("CI must have a {backend} adapter: {e}"),
        };
        let buf = gpu.upload(&[1, 2, 3, 4], "before").unwrap();
        gpu.device.destroy();
        let e = gpu.wait().and_then(|_| gpu.read(&buf.buffer, 0, 4).map(|_| ())).unwrap_err().to_string();
        assert!(e.contains("device lost"), "{backend}: {e}");
        let e = gpu.alloc(16, "after").unwrap_err().to_string();
        assert!(e.contains("device lost") && e.contains("--resume"), "{backend}: {e}");
        eprintln!("{backend}: {e}");
    }
}
