//! Shared helpers of the backward / optimizer kernel tests (tests/backward_kernels.rs,
//! tests/attention_logprob_backward.rs, tests/optim_kernels.rs).
#![allow(dead_code)]

use std::ops::Range;

use edgerl::Error;
use edgerl::gpu::{DType, Gpu, GpuBuffer, Tensor};
use half::{bf16, f16};

pub const NO_TARGET: u32 = 0xffff_ffff;

pub fn is_tiny(gpu: &Gpu) -> bool {
    gpu.max_binding == crate::common::TINY_BINDING
}

pub fn label(gpu: &Gpu) -> String {
    format!(
        "{} ({}{})",
        gpu.adapter.backend,
        gpu.adapter.name,
        if is_tiny(gpu) {
            ", 4096-byte bindings"
        } else {
            ""
        }
    )
}

pub fn fits(gpu: &Gpu, bufs: &[&GpuBuffer]) -> bool {
    bufs.iter().all(|b| b.bytes <= gpu.max_binding)
}

pub fn assert_refused(what: &str, res: edgerl::Result<()>) {
    assert!(
        matches!(res, Err(Error::Invalid(_))),
        "{what}: must be refused with Error::Invalid, got {res:?}"
    );
}

pub fn up(gpu: &Gpu, data: &[f32]) -> GpuBuffer {
    gpu.upload(bytemuck::cast_slice(data), "test data").unwrap()
}

pub fn up_u32(gpu: &Gpu, data: &[u32]) -> GpuBuffer {
    gpu.upload(bytemuck::cast_slice(data), "test ids").unwrap()
}

pub fn close(what: &str, got: &[f32], want: &[f64], atol: f64, rtol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let tol = atol + rtol * w.abs();
        assert!(
            g.is_finite() && (g as f64 - w).abs() <= tol,
            "{what}: element {i}: got {g}, want {w} (tol {tol:e})"
        );
    }
}

/// Central differences of `f` at `x`, in f64.
pub fn fd_grad(x: &[f64], h: f64, f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    let mut x = x.to_vec();
    (0..x.len())
        .map(|i| {
            let x0 = x[i];
            x[i] = x0 + h;
            let fp = f(&x);
            x[i] = x0 - h;
            let fm = f(&x);
            x[i] = x0;
            (fp - fm) / (2.0 * h)
        })
        .collect()
}

pub fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// A weight tensor of `dtype` and the values the GPU sees (rounded to the dtype).
pub fn weight(
    gpu: &Gpu,
    dtype: DType,
    rows: usize,
    cols: usize,
    vals: &[f32],
) -> (Tensor, Vec<f32>) {
    let (bytes, seen): (Vec<u8>, Vec<f32>) = match dtype {
        DType::F32 => (bytemuck::cast_slice(vals).to_vec(), vals.to_vec()),
        DType::F16 => (
            vals.iter()
                .flat_map(|&v| f16::from_f32(v).to_le_bytes())
                .collect(),
            vals.iter().map(|&v| f16::from_f32(v).to_f32()).collect(),
        ),
        DType::BF16 => (
            vals.iter()
                .flat_map(|&v| bf16::from_f32(v).to_le_bytes())
                .collect(),
            vals.iter().map(|&v| bf16::from_f32(v).to_f32()).collect(),
        ),
        q => {
            let bytes = edgerl::gpu::quant::quantize(q, vals).unwrap();
            let seen = edgerl::gpu::quant::dequantize(q, &bytes).unwrap();
            (bytes, seen)
        }
    };
    (
        Tensor::from_bytes(gpu, "w", dtype, rows, cols, &bytes).unwrap(),
        seen,
    )
}

pub fn pieces_touched(w: &Tensor, r: &Range<usize>) -> usize {
    w.pieces
        .iter()
        .filter(|p| r.start.max(p.row_start) < r.end.min(p.row_start + p.rows))
        .count()
}

/// One recorded case: the buffer to read back and what it must hold.
pub struct Case {
    pub what: String,
    pub buf: GpuBuffer,
    pub want: Vec<f64>,
    pub atol: f64,
    pub rtol: f64,
}

pub fn check_cases(gpu: &Gpu, cases: &[Case]) {
    for c in cases {
        let got = gpu.read_f32(&c.buf, c.want.len()).unwrap();
        close(&c.what, &got, &c.want, c.atol, c.rtol);
    }
}

#[allow(clippy::too_many_arguments)]
pub fn cpu_gemm(
    a: &[f32],
    ao: usize,
    ars: usize,
    acs: usize,
    b: &[f32],
    bo: usize,
    brs: usize,
    bcs: usize,
    c: &mut [f64],
    co: usize,
    ldc: usize,
    m: usize,
    n: usize,
    k: usize,
    alpha: f64,
    acc: bool,
) {
    for i in 0..m {
        for j in 0..n {
            let s: f64 = (0..k)
                .map(|p| a[ao + i * ars + p * acs] as f64 * b[bo + p * brs + j * bcs] as f64)
                .sum();
            let idx = co + i * ldc + j;
            c[idx] = alpha * s + if acc { c[idx] } else { 0.0 };
        }
    }
}
