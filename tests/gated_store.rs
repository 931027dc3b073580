//! The one-row weight products' gated store (`Recorder::linear_gated`: y = act(y) · (x Wᵀ +
//! bias), a decoding step's up projection written over the gate projection's output) against a
//! CPU reference in f64, through every decode form (`MatvecForm`), float and quantized weights,
//! SiLU and GELU-tanh, with and without bias and up's LoRA term, on every device of
//! `common::all_gpus()` (each backend, with split weights, and the portable kernels). The
//! decode layer takes this store where it used to dispatch `act_mul` after the product.

mod common;

use edgerl::Error;
use edgerl::gpu::kernels::Activation;
use edgerl::gpu::{DType, Gpu, GpuBuffer, MatvecForm, Recorder, Tensor, quant};

fn label(gpu: &Gpu) -> String {
    let tiny = if gpu.max_binding == common::TINY_BINDING { ", 4096-byte bindings" } else { "" };
    let sg = if gpu.features.subgroups { ", subgroups" } else { "" };
    format!("{} ({}{tiny}{sg})", gpu.adapter.backend, gpu.adapter.name)
}

fn up(gpu: &Gpu, data: &[f32]) -> GpuBuffer {
    gpu.upload(bytemuck::cast_slice(data), "test data").unwrap()
}

/// The activations as the HF models define them (SiLU; GELU with the tanh approximation).
fn act(a: Activation, g: f64) -> f64 {
    match a {
        Activation::Silu => g / (1.0 + (-g).exp()),
        Activation::GeluTanh => {
            let c = (2.0 / std::f64::consts::PI).sqrt();
            0.5 * g * (1.0 + (c * (g + 0.044715 * g * g * g)).tanh())
        }
    }
}

struct Case {
    what: String,
    y: GpuBuffer,
    want: Vec<f32>,
    k: usize,
    _keep: (Tensor, GpuBuffer, GpuBuffer, GpuBuffer, GpuBuffer),
}

/// y0 (the gate's output, random), then the gated product over it; the CPU's y in f64 from
/// exactly the weight values the GPU sees. `lora`: up's adapter's term inside the product, as
/// the decode layer gives it (u holding gate's x·Aᵀ then up's, `segs` [0, ∞]): the decode
/// kernels (`MatvecForm` blocked; run and auto at one row on CPU devices) take it where B fits
/// a binding, the others record nothing and say so (y keeps y0).
#[allow(clippy::too_many_arguments)]
fn gated_case(
    gpu: &Gpu,
    r: &mut Recorder,
    dtype: DType,
    (k, n): (usize, usize),
    has_bias: bool,
    a: Activation,
    lora: bool,
    what: String,
    rng: &mut common::Rng,
) -> Option<Case> {
    // Gate values over [-4, 4): both tails of each activation.
    let vals = rng.vec(n * k);
    let bytes = quant::quantize(dtype, &vals).unwrap();
    let seen = quant::dequantize(dtype, &bytes).unwrap();
    let w = Tensor::from_bytes(gpu, "w", dtype, n, k, &bytes).unwrap();
    let t = 1;
    let (x, bias) = (rng.vec(t * k), rng.vec(n));
    let y0: Vec<f32> = rng.vec(t * n).iter().map(|v| 4.0 * v).collect();
    let (xb, bb, yb) = (up(gpu, &x), up(gpu, &bias), up(gpu, &y0));
    let (rank, scale) = (5, 0.75);
    let (u, b) = (rng.vec(t * 2 * rank), rng.vec(n * rank));
    let (ub, lb) = (up(gpu, &u), up(gpu, &b));
    let term = edgerl::gpu::LoraTerm { u: &ub, b: &lb, r: rank, scale, ld: 2 * rank, segs: [0, usize::MAX] };
    let res = r.linear_gated(&xb, &w, has_bias.then_some(&bb), a, lora.then_some(term), &yb);
    if (k.max(n) * 4) as u64 > gpu.max_binding {
        assert!(matches!(res, Err(Error::Invalid(_)) | Ok(false)), "{what}: over the limit, got {res:?}");
        return None;
    }
    let taken = res.unwrap_or_else(|e| panic!("{what}: {e}"));
    let decode_kernel = k % 32 == 0 && !matches!(r.matvec, MatvecForm::Split | MatvecForm::General);
    let fits = lb.bytes <= gpu.max_binding;
    assert_eq!(taken, !lora || (decode_kernel && fits), "{what}: taken");
    let mut want = y0.clone();
    for i in 0..t {
        for j in 0..n {
            let mut s: f64 = (0..k).map(|q| x[i * k + q] as f64 * seen[j * k + q] as f64).sum();
            if has_bias {
                s += bias[j] as f64;
            }
            if lora {
                s += scale as f64 * (0..rank).map(|l| u[i * 2 * rank + rank + l] as f64 * b[j * rank + l] as f64).sum::<f64>();
            }
            if taken {
                want[i * n + j] = (act(a, y0[i * n + j] as f64) * s) as f32;
            }
        }
    }
    Some(Case { what, y: yb, want, k, _keep: (w, xb, bb, ub, lb) })
}

/// Every decode form: blocked (the vec4 one-row kernel and its grouped reads, the others'
/// blocked kernel), split and workgroup-per-column, and the general kernel at k not a multiple
/// of 32; `Auto` is the device's own.
#[test]
fn gated_store_every_decode_form() {
    const DTYPES: [DType; 6] = [DType::F32, DType::F16, DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q4_K];
    let forms = [MatvecForm::Auto, MatvecForm::Blocked, MatvecForm::Run, MatvecForm::Split, MatvecForm::General];
    common::each_gpu_in_parallel(|gpu| {
        for dtype in DTYPES {
            let b = dtype.block().max(32);
            let mut rng = common::Rng::new(71 + dtype.code() as u64);
            let mut shapes = vec![(b, 72), (2 * b, 7), (b, 130), (3 * b, 576)];
            if !dtype.is_quantized() {
                shapes.extend([(67, 9), (5, 33)]); // the general kernel
            }
            for form in forms {
                let mut r = Recorder::new(gpu);
                r.matvec = form;
                let mut cases = Vec::new();
                for (i, &shape) in shapes.iter().enumerate() {
                    let a = if i % 2 == 0 { Activation::Silu } else { Activation::GeluTanh };
                    let (has_bias, lora) = (i % 3 != 1, i >= 2);
                    let what = format!("{}: {form:?} gated {dtype:?} {shape:?} {a:?} bias={has_bias} lora={lora}", label(gpu));
                    cases.extend(gated_case(gpu, &mut r, dtype, shape, has_bias, a, lora, what, &mut rng));
                }
                r.submit().unwrap_or_else(|e| panic!("{}: submit: {e}", label(gpu)));
                for c in &cases {
                    let got = gpu.read_f32(&c.y, c.want.len()).unwrap();
                    common::assert_close(&c.what, &got, &c.want, 2e-5 + 4e-7 * c.k as f32, 2e-5);
                }
            }
        }
    });
}

/// The gated MLP's gate and up in one product (`Recorder::linear_glu`: y = act(x Wgᵀ) ·
/// (x Wuᵀ) from gate's rows stacked over up's, `Layer::gate_up`) against a CPU reference in
/// f64: the 8-row and 16-row runs, grouped (Q4_0 / Q4_1 / Q8_0 on CPU devices) and not, rows
/// and columns past a tile's end, SiLU and GELU-tanh, with and without gate's and up's LoRA
/// terms (added before the activation). It must take the product exactly where a
/// run does (the CPU devices with subgroups, the types read as vec4s) and store nothing past
/// y's rows; elsewhere it records nothing and says so.
#[test]
fn paired_gate_up_store() {
    const DTYPES: [DType; 8] =
        [DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::F16];
    let shapes = [(2, 8), (5, 136), (8, 64), (13, 72), (16, 136), (21, 64), (37, 200)];
    common::each_gpu_in_parallel(|gpu| {
        for dtype in DTYPES {
            let k = if dtype.block() == 256 { 512 } else { 96 };
            let mut rng = common::Rng::new(97 + dtype.code() as u64);
            let mut r = Recorder::new(gpu);
            let mut cases = Vec::new();
            for (i, &(t, n)) in shapes.iter().enumerate() {
                let a = if i % 2 == 0 { Activation::Silu } else { Activation::GeluTanh };
                let what = format!("{}: linear_glu {dtype:?} t={t} k={k} n={n} {a:?}", label(gpu));
                let (gate, up_w) = (rng.vec(n * k), rng.vec(n * k));
                let (gb, ub) = (quant::quantize(dtype, &gate).unwrap(), quant::quantize(dtype, &up_w).unwrap());
                let (gs, us) = (quant::dequantize(dtype, &gb).unwrap(), quant::dequantize(dtype, &ub).unwrap());
                let Ok((pair, _views)) = Tensor::stack(gpu, "gate_up", dtype, k, [(n, &gb[..]), (n, &ub[..])]) else {
                    let bytes = 2 * n as u64 * dtype.row_bytes(k).unwrap() as u64;
                    assert!(bytes > gpu.max_binding, "{what}: refused to stack {bytes} bytes");
                    continue;
                };
                // Gate values spread over both tails of each activation.
                let x: Vec<f32> = rng.vec(t * k).iter().map(|v| 3.0 * v).collect();
                let pad = 8;
                let xb = up(gpu, &x);
                let yb = up(gpu, &vec![f32::NAN; t * n + pad]);
                let takes = r.matvec.resolve(gpu) == MatvecForm::Run
                    && gpu.features.subgroups
                    && !matches!(dtype, DType::Q6_K | DType::F16);
                // Every other case with gate's and up's adapters (`LoraStack`): u holds gate's
                // x·Aᵀ, then up's, rows ld apart; B gate's rows, then up's.
                let (rank, ld, scale) = (5, 13, 0.5);
                let with_lora = i % 2 == 1;
                let (lu, lb) = (rng.vec(t * ld), rng.vec(2 * n * rank));
                let (lub, lbb) = (up(gpu, &lu), up(gpu, &lb));
                let term = edgerl::gpu::LoraTerm { u: &lub, b: &lbb, r: rank, scale, ld, segs: [n, usize::MAX] };
                let what = format!("{what} lora={with_lora}");
                let took = r
                    .linear_glu(&xb, t, &pair, a, with_lora.then_some(term), &yb)
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_eq!(took, takes, "{what}: took the paired product");
                if !took {
                    continue;
                }
                let dot = |w: &[f32], i: usize, j: usize| -> f64 {
                    (0..k).map(|q| x[i * k + q] as f64 * w[j * k + q] as f64).sum()
                };
                // scale · u[i, col..col + r] · B[row]
                let term_at = |i: usize, col: usize, row: usize| -> f64 {
                    let d: f64 = (0..rank).map(|l| lu[i * ld + col + l] as f64 * lb[row * rank + l] as f64).sum();
                    if with_lora { scale as f64 * d } else { 0.0 }
                };
                let mut want = vec![f32::NAN; t * n + pad];
                for i in 0..t {
                    for j in 0..n {
                        let g = dot(&gs, i, j) + term_at(i, 0, j);
                        let u = dot(&us, i, j) + term_at(i, rank, n + j);
                        want[i * n + j] = (act(a, g) * u) as f32;
                    }
                }
                cases.push((what, yb, want, pair, xb, lub, lbb));
            }
            r.submit().unwrap_or_else(|e| panic!("{}: submit: {e}", label(gpu)));
            for (what, yb, want, ..) in &cases {
                let got = gpu.read_f32(yb, want.len()).unwrap();
                let n = want.len() - 8;
                assert!(got[n..].iter().all(|v| v.is_nan()), "{what}: wrote past y: {:?}", &got[n..]);
                common::assert_close(what, &got[..n], &want[..n], 2e-4 + 2e-6 * k as f32, 2e-4);
            }
        }
    });
}
