//! `Recorder::linear_qkv_rope` (a batched decode step's stacked q | k | v product with RoPE and
//! the cache stores in its store, `ROPE` in shaders/matmul_rope.wgsl) against a CPU reference in
//! f64, on every backend `common::all_gpus()` gives: grouped runs (Q8_0 / Q4_0 / Q4_1: a pair's
//! halves in lanes j and j ^ 4) and strided ones (Q5_0, K-quants: both halves in one thread),
//! rows past a run's end, biases, GQA groups. It must take the product exactly where the narrow
//! run does and write nothing but q's rows and the rows' cache slots; elsewhere it records
//! nothing and says so.

mod common;

use edgerl::gpu::kernels::KvRows;
use edgerl::gpu::{DType, Gpu, GpuBuffer, MatvecForm, Recorder, Tensor, quant};

fn up(gpu: &Gpu, data: &[f32]) -> GpuBuffer {
    gpu.upload(bytemuck::cast_slice(data), "test").unwrap()
}

/// Rotate-half RoPE of one 64-wide head row at `pos`, cos/sin as the CPU tables build them.
fn rope(row: &[f64], pos: usize) -> Vec<f64> {
    let mut out = row.to_vec();
    for j in 0..32 {
        let a = pos as f64 * 10000f64.powf(-(2.0 * j as f64) / 64.0);
        let (c, s) = ((a.cos() as f32) as f64, (a.sin() as f32) as f64);
        out[j] = row[j] * c - row[j + 32] * s;
        out[j + 32] = row[j + 32] * c + row[j] * s;
    }
    out
}

#[test]
fn qkv_product_ropes_into_q_and_the_caches() {
    const DTYPES: [DType; 7] = [DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q4_K, DType::F16, DType::Q6_K];
    // (rows, heads, kv_heads, bias)
    let shapes = [(2, 3, 1, false), (5, 9, 3, true), (8, 4, 2, false), (13, 9, 3, false), (16, 3, 1, true)];
    let hd = 64;
    for gpu in common::all_gpus() {
        for dtype in DTYPES {
            let k = if dtype.block() == 256 { 256 } else { 96 };
            let mut rng = common::Rng::new(11 + dtype.code() as u64);
            let mut r = Recorder::new(gpu);
            let mut cases = Vec::new();
            for &(t, heads, kv, with_bias) in &shapes {
                let what = format!("{} {}: linear_qkv_rope {dtype:?} t={t} heads={heads} kv={kv} bias={with_bias}", gpu.adapter.backend, gpu.max_binding);
                let n = (heads + 2 * kv) * hd;
                let wb = quant::quantize(dtype, &rng.vec(n * k)).unwrap();
                let ws = quant::dequantize(dtype, &wb).unwrap();
                let Ok(w) = Tensor::from_bytes(gpu, "qkv", dtype, n, k, &wb) else { continue };
                let bias = rng.vec(n);
                let x = rng.vec(t * k);
                // Row i: position 20 + 3i, its slot after a 7-slot prefix, segments of 4 (the
                // last slot of each, so slots are scattered).
                let pos: Vec<usize> = (0..t).map(|i| 20 + 3 * i).collect();
                let slot: Vec<usize> = (0..t).map(|i| 7 + 4 * i + 3).collect();
                let spans: Vec<u32> = (0..t).flat_map(|i| [(7 + 4 * i) as u32, slot[i] as u32 + 1]).collect();
                let mut cs = vec![0f32; 2 * t * 32];
                for i in 0..t {
                    for j in 0..32 {
                        let a = pos[i] as f64 * 10000f64.powf(-(2.0 * j as f64) / 64.0);
                        cs[i * 32 + j] = a.cos() as f32;
                        cs[t * 32 + i * 32 + j] = a.sin() as f32;
                    }
                }
                let slots = 7 + 4 * t + 2;
                let kv_cols = kv * hd;
                let (xb, csb, sb) = (up(gpu, &x), up(gpu, &cs), gpu.upload(bytemuck::cast_slice(&spans), "spans").unwrap());
                let bb = up(gpu, &bias);
                let qb = up(gpu, &vec![f32::NAN; (t + 1) * heads * hd]);
                let (kc, vc) = (up(gpu, &vec![f32::NAN; slots * kv_cols]), up(gpu, &vec![f32::NAN; slots * kv_cols]));
                let rows = KvRows::Slots { spans: &sb, max_slot: *slot.iter().max().unwrap() };
                let takes = r.matvec.resolve(gpu) == MatvecForm::Run
                    && gpu.features.subgroups
                    && t < 16
                    && !matches!(dtype, DType::Q6_K | DType::F16)
                    && w.pieces.len() == 1
                    && [&xb, &qb, &csb, &kc, &vc, &sb].iter().all(|b| b.bytes <= gpu.max_binding);
                let b = with_bias.then_some(&bb);
                let took = r
                    .linear_qkv_rope(&xb, t, &w, b, &qb, &csb, (&kc, &vc), (heads, kv, hd), &rows)
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_eq!(took, takes, "{what}: took the product");
                if !took {
                    continue;
                }
                let mut want_q = vec![f32::NAN; (t + 1) * heads * hd];
                let (mut want_k, mut want_v) = (vec![f32::NAN; slots * kv_cols], vec![f32::NAN; slots * kv_cols]);
                for i in 0..t {
                    let y: Vec<f64> = (0..n)
                        .map(|j| {
                            let d: f64 = (0..k).map(|c| x[i * k + c] as f64 * ws[j * k + c] as f64).sum();
                            d + if with_bias { bias[j] as f64 } else { 0.0 }
                        })
                        .collect();
                    for (h, head) in y.chunks(hd).enumerate() {
                        let out = if h < heads + kv { rope(head, pos[i]) } else { head.to_vec() };
                        let dst = match h {
                            h if h < heads => &mut want_q[(i * heads + h) * hd..][..hd],
                            h if h < heads + kv => &mut want_k[slot[i] * kv_cols + (h - heads) * hd..][..hd],
                            h => &mut want_v[slot[i] * kv_cols + (h - heads - kv) * hd..][..hd],
                        };
                        dst.iter_mut().zip(&out).for_each(|(d, o)| *d = *o as f32);
                    }
                }
                cases.push((what, [(qb, want_q), (kc, want_k), (vc, want_v)], w, xb));
            }
            r.submit().unwrap_or_else(|e| panic!("{dtype:?}: submit: {e}"));
            for (what, outs, _, _) in &cases {
                for (name, (buf, want)) in ["q", "k cache", "v cache"].iter().zip(outs) {
                    let got = gpu.read_f32(buf, want.len()).unwrap();
                    for (i, (g, w)) in got.iter().zip(want).enumerate() {
                        assert_eq!(g.is_nan(), w.is_nan(), "{what}: {name}[{i}] is {g}, want {w}");
                    }
                    let keep = |v: &[f32]| v.iter().copied().filter(|v| !v.is_nan()).collect::<Vec<f32>>();
                    common::assert_close(&format!("{what} {name}"), &keep(&got), &keep(want), 2e-4 + 2e-6 * 256.0, 2e-4);
                }
            }
        }
    }
}
