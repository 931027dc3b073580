//! Not a test: the weight products' speed in GFLOP per CPU-second (process user + system time,
//! /proc/self/stat), which a busy shared machine disturbs far less than wall time. Run with
//! `cargo test --release --test matmul_cpu_time -- --ignored --nocapture` (EDGERL_PROBE_DTYPES,
//! EDGERL_PROBE_T override q4_1 / 256). Two cores fully busy give about twice these figures.

use std::time::Instant;

use edgerl::gpu::{DType, Gpu, GpuOptions, Recorder, Tensor, quant};

fn cpu_seconds() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap();
    let f: Vec<&str> = s[s.rfind(')').unwrap() + 2..].split(' ').collect();
    // utime and stime are fields 14 and 15 (1-based), 11 and 12 after the name.
    (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / 100.0
}

fn rand(seed: &mut u64, len: usize) -> Vec<f32> {
    (0..len)
        .map(|_| {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            ((*seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// GFLOP per CPU-second of `op` (`flops` each), repeated until about `cpu_s` CPU-seconds.
fn measure(gpu: &Gpu, flops: f64, cpu_s: f64, op: &dyn Fn(&mut Recorder)) -> (f64, f64) {
    let mut r = Recorder::new(gpu);
    op(&mut r);
    r.submit().unwrap();
    gpu.wait().unwrap();
    let (c0, w0) = (cpu_seconds(), Instant::now());
    let mut done = 0.0;
    while cpu_seconds() - c0 < cpu_s {
        let mut r = Recorder::new(gpu);
        for _ in 0..8 {
            op(&mut r);
        }
        r.submit().unwrap();
        gpu.wait().unwrap();
        done += 8.0 * flops;
    }
    let (c, w) = (cpu_seconds() - c0, w0.elapsed().as_secs_f64());
    (done / c / 1e9, done / w / 1e9)
}

#[test]
#[ignore]
fn matmul_cpu_time() {
    let gpu = Gpu::new(&GpuOptions { backend: Some("vulkan".into()), ..Default::default() }).unwrap();
    let dtypes = std::env::var("EDGERL_PROBE_DTYPES").unwrap_or("q4_1".into());
    let t: usize = std::env::var("EDGERL_PROBE_T").map(|s| s.parse().unwrap()).unwrap_or(256);
    let cpu_s: f64 = std::env::var("EDGERL_PROBE_CPU_S").map(|s| s.parse().unwrap()).unwrap_or(1.5);
    for name in dtypes.split(',') {
        let dtype = DType::from_name(name).unwrap();
        for (k, n) in [(576, 1536), (1536, 576), (576, 576), (576, 192)] {
            let mut seed = (k * 31 + n) as u64 | 1;
            let bytes = quant::quantize(dtype, &rand(&mut seed, n * k)).unwrap();
            let w = Tensor::from_bytes(&gpu, "w", dtype, n, k, &bytes).unwrap();
            let x = gpu.upload(bytemuck::cast_slice(&rand(&mut seed, t * k)), "x").unwrap();
            let y = gpu.alloc((t * n * 4) as u64, "y").unwrap();
            let dy = gpu.upload(bytemuck::cast_slice(&rand(&mut seed, t * n)), "dy").unwrap();
            let dx = gpu.alloc((t * k * 4) as u64, "dx").unwrap();
            let flops = 2.0 * (t * k * n) as f64;
            let (fc, fw) = measure(&gpu, flops, cpu_s, &|r| r.linear(&x, t, &w, None, &y, false).unwrap());
            let (bc, bw) = measure(&gpu, flops, cpu_s, &|r| {
                r.matmul_backward_input(&dy, t, n, &w, 0..n, &dx, false).unwrap()
            });
            println!(
                "{name} t{t} k{k} n{n}: matmul {fc:.1} GFLOP/cpu-s ({fw:.1} wall), backward {bc:.1} ({bw:.1} wall)"
            );
        }
    }
}
