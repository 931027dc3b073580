//! Every kernel wrapper in `edgerl::gpu::kernels` against a plain-Rust CPU reference, on awkward
//! sizes (odd, prime, larger than one workgroup or tile, larger than one binding piece), on every
//! backend `common::all_gpus()` gives: Vulkan (lavapipe) and GL (llvmpipe), each also with a
//! 4096-byte storage-binding limit so weight tensors split into several row pieces.
//!
//! CPU references accumulate in f64 from exactly the values the GPU sees (weights rounded to
//! f16 / bf16 first), so tolerances only cover f32 rounding on the GPU side.

mod common;

use std::ops::Range;

use edgerl::Error;
use edgerl::gpu::backward::{
    AdamwParams, GemmParams, MatmulBackwardParams, NormBackwardParams, SgdParams, SumSquaresParams,
};
use edgerl::gpu::kernels::{
    self, AttentionParams, ElementwiseParams, EmbedParams, Kernel, LogprobParams, MatmulParams,
    NormParams, PeakParams, RopeParams,
};
use edgerl::gpu::sample::{SampleParams, SamplerSettings};
use edgerl::gpu::{DType, Gpu, GpuBuffer, MatvecForm, Recorder, Tensor};
use half::{bf16, f16};

// ---------------------------------------------------------------------------------------------
// helpers

const DTYPES: [DType; 3] = [DType::F32, DType::F16, DType::BF16];
const NO_TARGET: u32 = 0xffff_ffff;

fn is_tiny(gpu: &Gpu) -> bool {
    gpu.max_binding == common::TINY_BINDING
}

/// Whether every buffer fits the device's binding limit; a kernel handed a larger one must
/// refuse it with `Error::Invalid` rather than bind past the limit.
fn fits(gpu: &Gpu, bufs: &[&edgerl::gpu::GpuBuffer]) -> bool {
    bufs.iter().all(|b| b.bytes <= gpu.max_binding)
}

fn assert_refused(what: &str, res: edgerl::Result<()>) {
    assert!(
        matches!(res, Err(Error::Invalid(_))),
        "{what}: a binding over the limit must be refused, got {res:?}"
    );
}

fn label(gpu: &Gpu) -> String {
    format!(
        "{} ({}{}{})",
        gpu.adapter.backend,
        gpu.adapter.name,
        if is_tiny(gpu) {
            ", 4096-byte bindings"
        } else {
            ""
        },
        if gpu.features.subgroups { ", subgroups" } else { "" }
    )
}

fn up_f32(gpu: &Gpu, data: &[f32], what: &str) -> GpuBuffer {
    gpu.upload(bytemuck::cast_slice(data), what).unwrap()
}

fn up_u32(gpu: &Gpu, data: &[u32], what: &str) -> GpuBuffer {
    gpu.upload(bytemuck::cast_slice(data), what).unwrap()
}

/// The values as the GPU will see them after storing them as `dtype`.
fn round_to(dtype: DType, vals: &[f32]) -> Vec<f32> {
    match dtype {
        DType::F32 => vals.to_vec(),
        DType::F16 => vals.iter().map(|&v| f16::from_f32(v).to_f32()).collect(),
        DType::BF16 => vals.iter().map(|&v| bf16::from_f32(v).to_f32()).collect(),
        q => unreachable!("{q:?}: quantized weights are tested in tests/quant_kernels.rs"),
    }
}

/// Little-endian bytes of `vals` stored as `dtype` (16-bit types: two per u32 word, element
/// 2i in the low half).
fn bytes_of(dtype: DType, vals: &[f32]) -> Vec<u8> {
    match dtype {
        DType::F32 => bytemuck::cast_slice(vals).to_vec(),
        DType::F16 => vals
            .iter()
            .flat_map(|&v| f16::from_f32(v).to_le_bytes())
            .collect(),
        DType::BF16 => vals
            .iter()
            .flat_map(|&v| bf16::from_f32(v).to_le_bytes())
            .collect(),
        q => unreachable!("{q:?}: quantized weights are tested in tests/quant_kernels.rs"),
    }
}

/// A `rows × cols` weight tensor of `dtype`, and the f32 values the GPU sees.
fn weight(
    gpu: &Gpu,
    name: &str,
    dtype: DType,
    rows: usize,
    cols: usize,
    vals: &[f32],
) -> (Tensor, Vec<f32>) {
    assert_eq!(vals.len(), rows * cols);
    let t = Tensor::from_bytes(gpu, name, dtype, rows, cols, &bytes_of(dtype, vals)).unwrap();
    // The pieces cover the rows in order, without gaps, each within the binding limit.
    let mut next = 0;
    for p in &t.pieces {
        assert_eq!(p.row_start, next, "{name}: piece order");
        assert!(
            p.buf.bytes() <= gpu.max_binding,
            "{name}: piece of {} bytes over the limit",
            p.buf.bytes()
        );
        next += p.rows;
    }
    assert_eq!(next, rows, "{name}: pieces cover all rows");
    let bytes = rows * dtype.row_bytes(cols).unwrap();
    if is_tiny(gpu) && bytes > common::TINY_BINDING as usize {
        assert!(
            t.pieces.len() > 1,
            "{name}: {bytes} bytes should have been split"
        );
    }
    (t, round_to(dtype, vals))
}

/// How many pieces of `w` rows `r` touches.
fn pieces_touched(w: &Tensor, r: &Range<usize>) -> usize {
    w.pieces
        .iter()
        .filter(|p| r.start.max(p.row_start) < r.end.min(p.row_start + p.rows))
        .count()
}

/// Like `common::assert_close`, with the case named.
fn close(what: &str, got: &[f32], want: &[f32], atol: f32, rtol: f32) {
    common::assert_close(what, got, want, atol, rtol);
}

fn exact(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            g.to_bits() == w.to_bits(),
            "{what}: element {i}: got {g:e}, want {w:e} (bit-exact)"
        );
    }
}

/// f32 tolerance for a k-term dot product (plus bias / residual).
fn matmul_tol(k: usize) -> (f32, f32) {
    (1e-5 + 2e-7 * k as f32, 1e-5)
}

// ---------------------------------------------------------------------------------------------
// matmul / linear

/// y[i, n_off + j] (+)= x[i, :] · W[rows.start + j, :] + bias[rows.start + j]
#[allow(clippy::too_many_arguments)]
fn cpu_matmul(
    x: &[f32],
    t: usize,
    k: usize,
    w: &[f32],
    rows: Range<usize>,
    bias: Option<&[f32]>,
    y: &mut [f32],
    ldy: usize,
    n_off: usize,
    accumulate: bool,
) {
    for i in 0..t {
        for (j, r) in rows.clone().enumerate() {
            let mut acc = 0f64;
            for q in 0..k {
                acc += x[i * k + q] as f64 * w[r * k + q] as f64;
            }
            if let Some(b) = bias {
                acc += b[r] as f64;
            }
            let idx = i * ldy + n_off + j;
            if accumulate {
                acc += y[idx] as f64;
            }
            y[idx] = acc as f32;
        }
    }
}

struct MatmulCase {
    what: String,
    y: GpuBuffer,
    want: Vec<f32>,
    k: usize,
}

/// The full grid of shapes through `linear`, for each weight dtype; bias and accumulate vary
/// with the shape so each is seen with and without on every t, k and n. On the tiny-binding
/// devices, cases whose activations exceed the limit must be refused with `Error::Invalid`.
#[test]
fn matmul_grid_all_dtypes() {
    // k a multiple of 32 takes the register-blocked kernels: t = 1 (dot products), 2..=4 and
    // 5..=8 (one or two groups of four rows) the matrix-vector one, more the 32 × 64 tiles;
    // other k take the general kernels (matrix-vector up to 4 rows, 16 × 16 tiles above).
    const TS: [usize; 8] = [1, 3, 4, 5, 8, 17, 33, 70];
    const KS: [usize; 6] = [1, 5, 16, 32, 67, 96];
    const NS: [usize; 4] = [1, 7, 61, 130];
    for gpu in common::all_gpus() {
        let mut split_cases = 0;
        for dtype in DTYPES {
            let mut rng = common::Rng::new(11 + dtype.code() as u64);
            let mut r = Recorder::new(gpu);
            let mut cases = Vec::new();
            let mut keep = Vec::new();
            for (ti, &t) in TS.iter().enumerate() {
                for (ki, &k) in KS.iter().enumerate() {
                    for (ni, &n) in NS.iter().enumerate() {
                        let has_bias = (ti + ki + ni) % 2 == 0;
                        let accumulate = (ti + ni) % 2 == 1;
                        let what = format!(
                            "{}: matmul {dtype:?} t={t} k={k} n={n} bias={has_bias} accumulate={accumulate}",
                            label(gpu)
                        );
                        let x = rng.vec(t * k);
                        let (w, w_seen) = weight(gpu, &what, dtype, n, k, &rng.vec(n * k));
                        let bias = rng.vec(n);
                        let y0 = rng.vec(t * n);
                        let xb = up_f32(gpu, &x, "x");
                        let bb = up_f32(gpu, &bias, "bias");
                        let yb = up_f32(gpu, &y0, "y");
                        let res = r.linear(&xb, t, &w, has_bias.then_some(&bb), &yb, accumulate);
                        let fits = ((t * k * 4) as u64) <= gpu.max_binding
                            && ((t * n * 4) as u64) <= gpu.max_binding;
                        if !fits {
                            assert!(is_tiny(gpu));
                            assert!(
                                matches!(res, Err(Error::Invalid(_))),
                                "{what}: activations over the limit must be refused, got {res:?}"
                            );
                            continue;
                        }
                        res.unwrap_or_else(|e| panic!("{what}: {e}"));
                        if w.pieces.len() > 1 {
                            split_cases += 1;
                        }
                        let mut want = y0.clone();
                        cpu_matmul(
                            &x,
                            t,
                            k,
                            &w_seen,
                            0..n,
                            has_bias.then_some(&bias[..]),
                            &mut want,
                            n,
                            0,
                            accumulate,
                        );
                        cases.push(MatmulCase {
                            what,
                            y: yb,
                            want,
                            k,
                        });
                        keep.push((xb, bb, w));
                    }
                }
            }
            r.submit()
                .unwrap_or_else(|e| panic!("{}: submit: {e}", label(gpu)));
            for c in &cases {
                let got = gpu.read_f32(&c.y, c.want.len()).unwrap();
                let (atol, rtol) = matmul_tol(c.k);
                close(&c.what, &got, &c.want, atol, rtol);
            }
        }
        if is_tiny(gpu) {
            assert!(
                split_cases >= 10,
                "{}: only {split_cases} matmul cases ran on split weights",
                label(gpu)
            );
        }
    }
}

/// The float weight dtypes' products through decode form `form` (the quantized ones:
/// tests/quant_kernels.rs) on `shapes` (t, k as a multiple of 32 or of the dtype's block, n),
/// with bias and accumulate in turn, against the CPU product.
fn matvec_form_float_dtypes(form: MatvecForm, seed: u64, shapes: &dyn Fn(usize) -> Vec<(usize, usize, usize)>) {
    for gpu in common::all_gpus() {
        for dtype in DTYPES {
            let mut rng = common::Rng::new(seed + dtype.code() as u64);
            let mut r = Recorder::new(gpu);
            r.matvec = form;
            let mut cases = Vec::new();
            let mut keep = Vec::new();
            for (ci, (t, k, n)) in shapes(dtype.block().max(32)).into_iter().enumerate() {
                let (has_bias, accumulate) = (ci % 2 == 0, ci % 3 == 1);
                let what = format!("{}: {form:?} matvec {dtype:?} t={t} k={k} n={n}", label(gpu));
                let x = rng.vec(t * k);
                let (w, w_seen) = weight(gpu, &what, dtype, n, k, &rng.vec(n * k));
                let (bias, y0) = (rng.vec(n), rng.vec(t * n));
                let (xb, bb, yb) = (up_f32(gpu, &x, "x"), up_f32(gpu, &bias, "bias"), up_f32(gpu, &y0, "y"));
                let res = r.linear(&xb, t, &w, has_bias.then_some(&bb), &yb, accumulate);
                if ((t * k * 4) as u64) > gpu.max_binding {
                    assert!(matches!(res, Err(Error::Invalid(_))), "{what}: over the limit, got {res:?}");
                    continue;
                }
                res.unwrap_or_else(|e| panic!("{what}: {e}"));
                let mut want = y0.clone();
                cpu_matmul(&x, t, k, &w_seen, 0..n, has_bias.then_some(&bias[..]), &mut want, n, 0, accumulate);
                cases.push(MatmulCase { what, y: yb, want, k });
                keep.push((xb, bb, w));
            }
            r.submit().unwrap_or_else(|e| panic!("{}: submit: {e}", label(gpu)));
            for c in &cases {
                let (atol, rtol) = matmul_tol(c.k);
                close(&c.what, &gpu.read_f32(&c.y, c.want.len()).unwrap(), &c.want, atol, rtol);
            }
        }
    }
}

/// The GPU-shaped decode product (`MatvecForm::Split`) for the float weight dtypes: 1..=33 rows
/// (above 8, groups of 8 rows), 32-element chunks per row below, at and above its 16 lanes,
/// columns not a multiple of 4.
#[test]
fn split_matvec_float_dtypes() {
    matvec_form_float_dtypes(MatvecForm::Split, 71, &|_| {
        vec![(1, 32, 7), (3, 544, 130), (4, 512, 61), (6, 96, 33), (8, 992, 5), (1, 992, 66), (12, 160, 9), (33, 64, 70)]
    });
}

/// The workgroup-per-column decode product (`MatvecForm::General`: threads split k, then
/// reduce) at aligned k too, for the float weight dtypes, 1..=4 rows; 5 rows keep the
/// register-blocked kernel.
#[test]
fn general_matvec_float_dtypes() {
    matvec_form_float_dtypes(MatvecForm::General, 31, &|b| vec![(1, b, 7), (3, 2 * b, 130), (4, 3 * b, 61), (5, b, 33)]);
}

/// A row sub-range of the weights (as for vocabulary chunks) written at a column offset into a
/// wider y; on the tiny-binding devices the ranges straddle piece boundaries. Columns outside
/// the written block must keep their contents.
#[test]
fn matmul_row_range_across_pieces() {
    let (t, k, v) = (3, 16, 300);
    // (rows, ldy, n_off); ldy > rows.len() + n_off leaves untouched columns on both sides.
    let ranges: [(Range<usize>, usize, usize); 5] = [
        (50..140, 97, 4),
        (120..137, 20, 3),
        (0..300, 300, 0),
        (299..300, 3, 1),
        (63..66, 5, 2),
    ];
    for gpu in common::all_gpus() {
        for dtype in DTYPES {
            let mut rng = common::Rng::new(23 + dtype.code() as u64);
            let x = rng.vec(t * k);
            let (w, w_seen) = weight(gpu, "w", dtype, v, k, &rng.vec(v * k));
            if is_tiny(gpu) {
                // f32 rows are 64 bytes (64 rows a piece), 16-bit rows 32 bytes (128 a piece).
                assert!(
                    pieces_touched(&w, &(50..140)) >= 2,
                    "{dtype:?}: 50..140 should straddle pieces"
                );
                assert!(
                    pieces_touched(&w, &(120..137)) >= 2,
                    "{dtype:?}: 120..137 should straddle pieces"
                );
            }
            let bias = rng.vec(v);
            let xb = up_f32(gpu, &x, "x");
            let bb = up_f32(gpu, &bias, "bias");
            let mut r = Recorder::new(gpu);
            let mut cases = Vec::new();
            for (ri, (rows, ldy, n_off)) in ranges.iter().enumerate() {
                for variant in 0..3 {
                    let (has_bias, accumulate) =
                        [(false, false), (true, false), (true, true)][variant];
                    let what = format!(
                        "{}: matmul {dtype:?} rows {rows:?} ldy={ldy} n_off={n_off} bias={has_bias} accumulate={accumulate}",
                        label(gpu)
                    );
                    let y0: Vec<f32> = (0..t * ldy)
                        .map(|i| 1000.0 + i as f32 + ri as f32)
                        .collect();
                    let yb = up_f32(gpu, &y0, "y");
                    r.matmul(
                        &xb,
                        t,
                        &w,
                        rows.clone(),
                        has_bias.then_some(&bb),
                        &yb,
                        *ldy,
                        *n_off,
                        accumulate,
                    )
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
                    let mut want = y0.clone();
                    cpu_matmul(
                        &x,
                        t,
                        k,
                        &w_seen,
                        rows.clone(),
                        has_bias.then_some(&bias[..]),
                        &mut want,
                        *ldy,
                        *n_off,
                        accumulate,
                    );
                    cases.push((what, yb, want));
                }
            }
            r.submit().unwrap();
            let (atol, rtol) = matmul_tol(k);
            for (what, yb, want) in &cases {
                let got = gpu.read_f32(yb, want.len()).unwrap();
                close(what, &got, want, atol, rtol);
            }
        }
    }
}

/// The same with k a multiple of 32 (the register-blocked and matrix-vector kernels) for every
/// row class: 1, 2..=4, 5..=8 rows, and more than one 32-row tile; y sub-blocks at a column
/// offset, straddling pieces on the tiny-binding devices, where outputs over the limit must
/// be refused.
#[test]
fn matmul_row_range_aligned_k() {
    let (k, v) = (64, 300);
    let ranges: [(Range<usize>, usize, usize); 5] = [
        (50..140, 97, 4),
        (120..237, 120, 3),
        (0..300, 300, 0),
        (299..300, 3, 1),
        (63..130, 70, 2),
    ];
    for gpu in common::all_gpus() {
        for dtype in DTYPES {
            let mut rng = common::Rng::new(29 + dtype.code() as u64);
            let (w, w_seen) = weight(gpu, "w", dtype, v, k, &rng.vec(v * k));
            if is_tiny(gpu) {
                assert!(pieces_touched(&w, &(50..140)) >= 2, "{dtype:?}: 50..140");
                assert!(pieces_touched(&w, &(120..237)) >= 2, "{dtype:?}: 120..237");
            }
            let bias = rng.vec(v);
            let bb = up_f32(gpu, &bias, "bias");
            let mut r = Recorder::new(gpu);
            let mut cases = Vec::new();
            for t in [1, 2, 6, 8, 37] {
                let x = rng.vec(t * k);
                let xb = up_f32(gpu, &x, "x");
                for (ri, (rows, ldy, n_off)) in ranges.iter().enumerate() {
                    for (has_bias, accumulate) in [(false, false), (true, true)] {
                        let what = format!(
                            "{}: matmul {dtype:?} t={t} k={k} rows {rows:?} ldy={ldy} n_off={n_off} bias={has_bias} accumulate={accumulate}",
                            label(gpu)
                        );
                        let y0: Vec<f32> = (0..t * ldy)
                            .map(|i| 1000.0 + i as f32 + ri as f32)
                            .collect();
                        let yb = up_f32(gpu, &y0, "y");
                        let b = has_bias.then_some(&bb);
                        let res =
                            r.matmul(&xb, t, &w, rows.clone(), b, &yb, *ldy, *n_off, accumulate);
                        if !fits(gpu, &[&xb, &yb]) {
                            assert_refused(&what, res);
                            continue;
                        }
                        res.unwrap_or_else(|e| panic!("{what}: {e}"));
                        let mut want = y0.clone();
                        let b = has_bias.then_some(&bias[..]);
                        cpu_matmul(
                            &x,
                            t,
                            k,
                            &w_seen,
                            rows.clone(),
                            b,
                            &mut want,
                            *ldy,
                            *n_off,
                            accumulate,
                        );
                        cases.push((what, yb, want));
                    }
                }
            }
            r.submit().unwrap();
            let (atol, rtol) = matmul_tol(k);
            for (what, yb, want) in &cases {
                let got = gpu.read_f32(yb, want.len()).unwrap();
                close(what, &got, want, atol, rtol);
            }
        }
    }
}

/// `linear` writing q, k and v side by side into one buffer by calling `matmul` with full
/// row ranges at column offsets: each bias belongs to its own weight.
#[test]
fn matmul_column_offset_with_own_bias() {
    let (t, k) = (5, 24);
    let widths = [16, 8, 8];
    let ldy: usize = widths.iter().sum();
    for gpu in common::all_gpus() {
        for dtype in DTYPES {
            let mut rng = common::Rng::new(31 + dtype.code() as u64);
            let x = rng.vec(t * k);
            let xb = up_f32(gpu, &x, "x");
            let y0 = vec![-77.0f32; t * ldy];
            let yb = up_f32(gpu, &y0, "qkv");
            let mut want = y0.clone();
            let mut keep = Vec::new();
            let mut r = Recorder::new(gpu);
            let mut off = 0;
            for &n in &widths {
                let (w, w_seen) = weight(gpu, "w", dtype, n, k, &rng.vec(n * k));
                let bias = rng.vec(n);
                let bb = up_f32(gpu, &bias, "bias");
                r.matmul(&xb, t, &w, 0..n, Some(&bb), &yb, ldy, off, false)
                    .unwrap();
                cpu_matmul(
                    &x,
                    t,
                    k,
                    &w_seen,
                    0..n,
                    Some(&bias),
                    &mut want,
                    ldy,
                    off,
                    false,
                );
                off += n;
                keep.push((w, bb));
            }
            r.submit().unwrap();
            let got = gpu.read_f32(&yb, t * ldy).unwrap();
            let (atol, rtol) = matmul_tol(k);
            close(
                &format!("{}: fused qkv {dtype:?}", label(gpu)),
                &got,
                &want,
                atol,
                rtol,
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// rmsnorm

fn cpu_rmsnorm(x: &[f32], w: &[f32], rows: usize, d: usize, eps: f32) -> Vec<f32> {
    let mut y = vec![0f32; rows * d];
    for r in 0..rows {
        let row = &x[r * d..(r + 1) * d];
        let ms = row.iter().map(|&v| v as f64 * v as f64).sum::<f64>() / d as f64;
        let inv = 1.0 / (ms + eps as f64).sqrt();
        for i in 0..d {
            y[r * d + i] = (row[i] as f64 * inv * w[i] as f64) as f32;
        }
    }
    y
}

#[test]
fn rmsnorm_sizes_and_eps() {
    for gpu in common::all_gpus() {
        let mut rng = common::Rng::new(41);
        let mut r = Recorder::new(gpu);
        let mut cases = Vec::new();
        // d a multiple of 4 takes the lanes kernel where `norm_lanes` is set (4: one vec4, 7
        // threads idle; 300: 75 vec4s, uneven over the 8 threads).
        for (d, lanes) in [1, 4, 7, 64, 65, 300].into_iter().flat_map(|d| [(d, false), (d, true)]) {
            for rows in [1, 2, 5] {
                for eps in [1e-6f32, 0.5] {
                    r.norm_lanes = lanes;
                    let what = format!("{}: rmsnorm rows={rows} d={d} eps={eps} lanes={lanes}", label(gpu));
                    // Rows of different magnitudes (eps matters most for the small ones), and an
                    // all-zero row where only eps keeps the result finite.
                    let mut x = rng.vec(rows * d);
                    for row in 0..rows {
                        let scale = [1.0f32, 0.0, 0.01, 30.0, 0.3][row];
                        x[row * d..(row + 1) * d]
                            .iter_mut()
                            .for_each(|v| *v *= scale);
                    }
                    let w: Vec<f32> = rng.vec(d).iter().map(|v| v + 1.0).collect();
                    let xb = up_f32(gpu, &x, "x");
                    let wb = up_f32(gpu, &w, "w");
                    let yb = up_f32(gpu, &vec![f32::NAN; rows * d], "y");
                    let res = r.rmsnorm(&xb, &wb, &yb, rows, d, eps);
                    if (rows * d * 4) as u64 > gpu.max_binding {
                        assert!(
                            matches!(res, Err(Error::Invalid(_))),
                            "{what}: must be refused, got {res:?}"
                        );
                        continue;
                    }
                    res.unwrap();
                    cases.push((what, yb, cpu_rmsnorm(&x, &w, rows, d, eps), xb, wb));
                }
            }
        }
        r.submit().unwrap();
        for (what, yb, want, _, _) in &cases {
            let got = gpu.read_f32(yb, want.len()).unwrap();
            close(what, &got, want, 1e-6, 1e-5);
        }
        // eps really enters: the same data with two eps values must differ (row of scale 0.01).
        let a = cases
            .iter()
            .find(|c| c.0.contains("rows=5 d=65 eps=0.000001"));
        let b = cases.iter().find(|c| c.0.contains("rows=5 d=65 eps=0.5"));
        if let (Some(a), Some(b)) = (a, b) {
            let diff = (2 * 65..3 * 65)
                .map(|i| (a.2[i] - b.2[i]).abs())
                .fold(0f32, f32::max);
            assert!(
                diff > 0.1,
                "eps should change the small row (max difference {diff})"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// rope

/// cos/sin for positions pos0 .. pos0+t, laid out [2, t, hd/2] with cos first.
fn cos_sin(pos0: usize, t: usize, hd: usize, base: f64) -> Vec<f32> {
    let half = hd / 2;
    let mut cs = vec![0f32; 2 * t * half];
    for i in 0..t {
        for j in 0..half {
            let inv_freq = base.powf(-(2.0 * j as f64) / hd as f64);
            let a = (pos0 + i) as f64 * inv_freq;
            cs[i * half + j] = a.cos() as f32;
            cs[t * half + i * half + j] = a.sin() as f32;
        }
    }
    cs
}

fn cpu_rope(x: &[f32], cs: &[f32], t: usize, heads: usize, hd: usize) -> Vec<f32> {
    let half = hd / 2;
    let mut y = x.to_vec();
    for i in 0..t {
        for h in 0..heads {
            let base = (i * heads + h) * hd;
            for j in 0..half {
                let c = cs[i * half + j] as f64;
                let s = cs[t * half + i * half + j] as f64;
                let x1 = x[base + j] as f64;
                let x2 = x[base + j + half] as f64;
                y[base + j] = (x1 * c - x2 * s) as f32;
                y[base + j + half] = (x2 * c + x1 * s) as f32;
            }
        }
    }
    y
}

#[test]
fn rope_rotate_half() {
    for gpu in common::all_gpus() {
        let mut rng = common::Rng::new(51);
        let mut r = Recorder::new(gpu);
        let mut cases = Vec::new();
        // head_dim a multiple of 8 takes the vec4 kernel, else (2, 12) a pair a thread.
        for hd in [2, 12, 16, 24, 64] {
            for (t, heads, pos0) in [(1, 1, 0), (5, 3, 0), (13, 4, 1000), (1, 2, 4095)] {
                let what = format!(
                    "{}: rope t={t} heads={heads} hd={hd} pos0={pos0}",
                    label(gpu)
                );
                let x = rng.vec(t * heads * hd);
                let cs = cos_sin(pos0, t, hd, 10000.0);
                let xb = up_f32(gpu, &x, "x");
                let csb = up_f32(gpu, &cs, "cos_sin");
                let res = r.rope(&xb, &csb, t, heads, hd);
                if !fits(gpu, &[&xb, &csb]) {
                    assert_refused(&what, res);
                    continue;
                }
                res.unwrap();
                cases.push((what, xb, cpu_rope(&x, &cs, t, heads, hd), csb));
            }
        }
        r.submit().unwrap();
        for (what, xb, want, _) in &cases {
            let got = gpu.read_f32(xb, want.len()).unwrap();
            close(what, &got, want, 1e-6, 1e-6);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// attention

/// Causal softmax(q·k·scale)·v per head; q [t, heads, hd] at positions p0 .. p0+t, caches
/// [max_seq, kv_heads, hd]. With a sliding `window` W > 0 the query at position P sees the keys
/// at P - W + 1 ..= P only.
#[allow(clippy::too_many_arguments)]
fn cpu_attention(
    q: &[f32],
    kc: &[f32],
    vc: &[f32],
    t: usize,
    heads: usize,
    kv: usize,
    hd: usize,
    p0: usize,
    scale: f32,
    window: usize,
) -> Vec<f32> {
    let mut out = vec![0f32; t * heads * hd];
    let group = heads / kv;
    for i in 0..t {
        for h in 0..heads {
            let kvh = h / group;
            let qv = &q[(i * heads + h) * hd..][..hd];
            let ctx = p0 + i + 1;
            let lo = if window == 0 { 0 } else { ctx.saturating_sub(window) };
            let scores: Vec<f64> = (lo..ctx)
                .map(|s| {
                    let kr = &kc[(s * kv + kvh) * hd..][..hd];
                    qv.iter()
                        .zip(kr)
                        .map(|(&a, &b)| a as f64 * b as f64)
                        .sum::<f64>()
                        * scale as f64
                })
                .collect();
            let m = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = scores.iter().map(|s| (s - m).exp()).collect();
            let z: f64 = e.iter().sum();
            for d in 0..hd {
                let acc: f64 = (lo..ctx)
                    .map(|s| e[s - lo] * vc[(s * kv + kvh) * hd + d] as f64)
                    .sum();
                out[(i * heads + h) * hd + d] = (acc / z) as f32;
            }
        }
    }
    out
}

/// Records every (heads, kv_heads, head_dim, p0, t) case on each device, twice (plain and with
/// peaked scores), submits once, and checks each against `cpu_attention`. Where a buffer is over
/// the forced 4096-byte binding limit the call must be refused.
fn check_attention_cases(seed: u64, cases_in: &[(usize, usize, usize, usize, usize)]) {
    let cases: Vec<_> = cases_in.iter().map(|&(h, kv, hd, p0, t)| (h, kv, hd, p0, t, 0)).collect();
    check_windowed_attention_cases(seed, &cases);
}

/// `check_attention_cases` with a sliding window per case: (heads, kv_heads, head_dim, p0, t,
/// window).
fn check_windowed_attention_cases(
    seed: u64,
    cases_in: &[(usize, usize, usize, usize, usize, usize)],
) {
    for (gpu, general) in common::all_gpus().flat_map(|g| [(g, false), (g, true)]) {
        let mut rng = common::Rng::new(seed);
        let mut r = Recorder::new(gpu);
        r.general_attention = general;
        let mut cases = Vec::new();
        for &(heads, kv, hd, p0, t, window) in cases_in {
            // One case with peaked scores, to exercise the running max of the online softmax.
            for q_gain in [1.0f32, 6.0] {
                let what = format!(
                    "{}: attention heads={heads} kv={kv} hd={hd} p0={p0} t={t} window={window} q_gain={q_gain} general={general}",
                    label(gpu)
                );
                let max_seq = p0 + t + 9;
                let filled = (p0 + t) * kv * hd;
                let mut kc = rng.vec(max_seq * kv * hd);
                let mut vc = rng.vec(max_seq * kv * hd);
                // Past the last position: poison, so reading it shows up as NaN.
                kc[filled..].iter_mut().for_each(|v| *v = f32::NAN);
                vc[filled..].iter_mut().for_each(|v| *v = f32::NAN);
                let q: Vec<f32> = rng.vec(t * heads * hd).iter().map(|v| v * q_gain).collect();
                let scale = 1.0 / (hd as f32).sqrt();
                let qb = up_f32(gpu, &q, "q");
                let kb = up_f32(gpu, &kc, "k cache");
                let vb = up_f32(gpu, &vc, "v cache");
                let ob = up_f32(gpu, &vec![f32::NAN; t * heads * hd], "out");
                let res = r.attention(&qb, &kb, &vb, &ob, t, heads, kv, hd, p0, scale, window);
                if !fits(gpu, &[&qb, &kb, &vb, &ob]) {
                    assert_refused(&what, res);
                    continue;
                }
                res.unwrap();
                let want = cpu_attention(&q, &kc, &vc, t, heads, kv, hd, p0, scale, window);
                if window > 0 && window < p0 + t && q_gain == 1.0 {
                    // The window hides keys here, so the test can tell it apart from none.
                    let full = cpu_attention(&q, &kc, &vc, t, heads, kv, hd, p0, scale, 0);
                    let diff = want
                        .iter()
                        .zip(&full)
                        .map(|(a, b)| (a - b).abs())
                        .fold(0f32, f32::max);
                    assert!(
                        diff > 1e-3,
                        "{what}: the window changes the reference by only {diff}"
                    );
                }
                cases.push((what, ob, want, (qb, kb, vb)));
            }
        }
        r.submit().unwrap();
        for (what, ob, want, _) in &cases {
            let got = gpu.read_f32(ob, want.len()).unwrap();
            close(what, &got, want, 2e-5, 1e-5);
        }
    }
}

#[test]
fn attention_gqa_prefill_and_decode() {
    // (heads, kv_heads, head_dim): 96 and 197 take the 2- and 4-dims-per-thread paths.
    let configs = [
        (4, 2, 16),
        (3, 3, 24),
        (6, 1, 128),
        (2, 1, 24),
        (4, 2, 96),
        (2, 1, 197),
        (4, 1, 256),
        (2, 2, 128),
    ];
    // (p0, t): prefill from 0, and decode steps against a filled cache.
    let steps = [(0, 1), (0, 7), (0, 70), (5, 1), (37, 3), (64, 1)];
    let cases: Vec<_> = configs
        .iter()
        .flat_map(|&(h, kv, hd)| steps.iter().map(move |&(p0, t)| (h, kv, hd, p0, t)))
        .collect();
    check_attention_cases(61, &cases);
}

/// Long contexts: one invocation walking every key and head dim passed llvmpipe's cap on loop
/// iterations per invocation (65,535) once context × head_dim was past ~32k, and its loops
/// silently stopped early.
#[test]
fn attention_long_context() {
    check_attention_cases(
        67,
        &[
            // (heads, kv_heads, head_dim, p0, t): prefill, then decode against a long cache.
            (4, 2, 128, 0, 300),
            (9, 3, 64, 0, 600),
            (4, 2, 128, 1500, 1),
            (9, 3, 64, 4000, 2),
            (2, 1, 256, 2000, 1),
        ],
    );
}

/// Sliding-window attention over a cache (Gemma 3's local layers): prefill from 0 and from
/// p0 > 0, decode steps, W = 1, windows across the 64-key blocks and tiles, one key short of
/// the whole context; the tiled kernels (t ≥ 16, head_dim a multiple of 8 up to 128) and the
/// per-row ones (`general_attention`, and head_dim 197).
#[test]
fn attention_sliding_window() {
    check_windowed_attention_cases(
        83,
        &[
            // (heads, kv_heads, head_dim, p0, t, window)
            (4, 2, 16, 0, 70, 1),
            (4, 2, 16, 0, 70, 13),
            (4, 2, 16, 37, 40, 29),
            (3, 3, 24, 5, 1, 3),
            (6, 1, 128, 20, 33, 64),
            (2, 1, 197, 64, 3, 50),
            (4, 2, 96, 10, 20, 7),
            (9, 3, 64, 300, 100, 130),
            (4, 2, 16, 5, 20, 24),
            (4, 1, 256, 0, 40, 17),
            (2, 1, 256, 30, 2, 9),
            (2, 2, 128, 100, 3, 20),
        ],
    );
}

/// A window covering every position is no window: the same results, bit for bit, as 0.
#[test]
fn attention_window_past_the_context_is_none() {
    for (gpu, general) in common::all_gpus().flat_map(|g| [(g, false), (g, true)]) {
        let mut rng = common::Rng::new(89);
        let (heads, kv, hd) = (4, 2, 16);
        for (p0, t) in [(0, 30), (9, 20), (12, 1)] {
            let mut r = Recorder::new(gpu);
            r.general_attention = general;
            let scale = 0.25;
            let (q, kc, vc) = (
                rng.vec(t * heads * hd),
                rng.vec((p0 + t) * kv * hd),
                rng.vec((p0 + t) * kv * hd),
            );
            let (qb, kb, vb) = (up_f32(gpu, &q, "q"), up_f32(gpu, &kc, "k"), up_f32(gpu, &vc, "v"));
            if !fits(gpu, &[&qb, &kb, &vb]) {
                continue;
            }
            let windows = [0, p0 + t, p0 + t + 1, 1 << 40];
            let outs: Vec<GpuBuffer> = windows
                .iter()
                .map(|&w| {
                    let ob = up_f32(gpu, &vec![f32::NAN; q.len()], "out");
                    r.attention(&qb, &kb, &vb, &ob, t, heads, kv, hd, p0, scale, w)
                        .unwrap();
                    ob
                })
                .collect();
            r.submit().unwrap();
            let none = gpu.read_f32(&outs[0], q.len()).unwrap();
            let what = format!("{}: p0={p0} t={t} general={general}", label(gpu));
            close(
                &what,
                &none,
                &cpu_attention(&q, &kc, &vc, t, heads, kv, hd, p0, scale, 0),
                2e-5,
                1e-5,
            );
            for (w, ob) in windows.iter().zip(&outs).skip(1) {
                exact(&format!("{what}: window {w}"), &gpu.read_f32(ob, q.len()).unwrap(), &none);
            }
        }
    }
}

/// Batched decoding (`Packing` with `decode`): one query per sample, each seeing the shared
/// prefix and its own segment of the cache, [segment start, end). Unwritten slots hold NaN.
/// Each case also runs with sliding windows: within the segment, across the prompt / segment
/// boundary, and W = 1.
#[test]
fn attention_batched_decode() {
    // (heads, kv_heads, head_dim, prefix, segment size, each query's filled length)
    type DecodeCase = (usize, usize, usize, usize, usize, &'static [usize]);
    let configs: [DecodeCase; 6] = [
        (4, 2, 16, 5, 3, &[1, 3, 2]),
        (4, 1, 256, 20, 5, &[5, 1, 3]),
        // 17 samples: past `TILED_ATTENTION_MIN_QUERIES`, so the tiled kernel decodes too.
        (4, 2, 16, 9, 4, &[1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4, 2]),
        (6, 1, 128, 70, 9, &[9, 1, 4, 7, 2, 5, 8, 3]),
        (2, 2, 24, 1, 4, &[2]),
        (3, 1, 197, 64, 65, &[65, 1]),
    ];
    for (gpu, general) in common::all_gpus().flat_map(|g| [(g, false), (g, true)]) {
        let mut rng = common::Rng::new(73);
        let mut r = Recorder::new(gpu);
        r.general_attention = general;
        let mut cases = Vec::new();
        for (&(heads, kv, hd, prefix, seg, filled), window) in configs
            .iter()
            .flat_map(|c| [0, 1, 3, 7, 12].map(|w| (c, w)))
        {
            let what = format!(
                "{}: batched decode heads={heads} kv={kv} hd={hd} prefix={prefix} filled={filled:?} window={window} general={general}",
                label(gpu)
            );
            let t = filled.len();
            let slots = prefix + t * seg;
            let (mut kc, mut vc) = (rng.vec(slots * kv * hd), rng.vec(slots * kv * hd));
            let row = kv * hd;
            let mut keys = Vec::new();
            let mut spans = Vec::new();
            for (j, &n) in filled.iter().enumerate() {
                let start = prefix + j * seg;
                for s in start + n..start + seg {
                    kc[s * row..][..row].iter_mut().for_each(|v| *v = f32::NAN);
                    vc[s * row..][..row].iter_mut().for_each(|v| *v = f32::NAN);
                }
                keys.push((0..prefix).chain(start..start + n).collect::<Vec<_>>());
                spans.extend([start as u32, (start + n) as u32]);
            }
            let q = rng.vec(t * heads * hd);
            let scale = 1.0 / (hd as f32).sqrt();
            let (qb, kb, vb) = (up_f32(gpu, &q, "q"), up_f32(gpu, &kc, "k"), up_f32(gpu, &vc, "v"));
            let ob = up_f32(gpu, &vec![f32::NAN; t * heads * hd], "out");
            let sb = gpu.upload(bytemuck::cast_slice(&spans), "spans").unwrap();
            if !fits(gpu, &[&qb, &kb, &vb, &ob]) {
                continue;
            }
            let packing = edgerl::gpu::Packing {
                prefix,
                spans: &sb,
                decode: true,
                host_spans: None,
            };
            r.attention_packed(&qb, &kb, &vb, &ob, t, heads, kv, hd, scale, &packing, window)
                .unwrap();
            // The reference: gather each query's keys into a cache of its own (positions
            // 0 ..= its own) and run it causal, with the window.
            let mut want = Vec::new();
            for (i, ks) in keys.iter().enumerate() {
                let gather = |c: &[f32]| -> Vec<f32> {
                    ks.iter().flat_map(|&s| c[s * row..][..row].to_vec()).collect()
                };
                let qi = &q[i * heads * hd..][..heads * hd];
                let (ki, vi) = (gather(&kc), gather(&vc));
                let p = ks.len() - 1;
                want.extend(cpu_attention(qi, &ki, &vi, 1, heads, kv, hd, p, scale, window));
            }
            cases.push((what, ob, want));
        }
        r.submit().unwrap();
        for (what, ob, want) in &cases {
            let got = gpu.read_f32(ob, want.len()).unwrap();
            close(what, &got, want, 2e-5, 1e-5);
        }
    }
}

#[test]
fn attention_rejects_unsupported_shapes() {
    for gpu in common::all_gpus() {
        let b = gpu.alloc(4, "dummy").unwrap();
        let mut r = Recorder::new(gpu);
        assert!(
            r.attention(&b, &b, &b, &b, 1, 4, 3, 16, 0, 1.0, 0).is_err(),
            "heads not a multiple of kv_heads"
        );
        assert!(
            r.attention(&b, &b, &b, &b, 1, 2, 1, 320, 0, 1.0, 0).is_err(),
            "head_dim over 256"
        );
        assert!(r.is_empty());
    }
}

// ---------------------------------------------------------------------------------------------
// elementwise

#[test]
fn silu_mul_and_add() {
    for gpu in common::all_gpus() {
        let mut rng = common::Rng::new(71);
        let mut r = Recorder::new(gpu);
        let mut cases = Vec::new();
        for n in [1, 255, 256, 257, 70000] {
            let gate: Vec<f32> = rng.vec(n).iter().map(|v| v * 12.0).collect();
            let up = rng.vec(n);
            // One element past n must stay untouched.
            let mut up_buf = up.clone();
            up_buf.push(123.0);
            let gb = up_f32(gpu, &gate, "gate");
            let ub = up_f32(gpu, &up_buf, "up");
            let res = r.silu_mul(&gb, &ub, n);
            if !fits(gpu, &[&gb, &ub]) {
                assert_refused(&format!("{}: silu_mul n={n}", label(gpu)), res);
                continue;
            }
            res.unwrap();
            let mut want: Vec<f32> = gate
                .iter()
                .zip(&up)
                .map(|(&g, &u)| (g as f64 / (1.0 + (-g as f64).exp()) * u as f64) as f32)
                .collect();
            want.push(123.0);
            cases.push((
                format!("{}: silu_mul n={n}", label(gpu)),
                ub,
                want,
                gb,
                true,
            ));

            let a = rng.vec(n);
            let mut b = rng.vec(n);
            b.push(-5.0);
            let ab = up_f32(gpu, &a, "a");
            let bb = up_f32(gpu, &b, "b");
            r.add(&ab, &bb, n).unwrap();
            let mut want: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
            want.push(-5.0);
            cases.push((format!("{}: add n={n}", label(gpu)), bb, want, ab, false));
        }
        r.submit().unwrap();
        for (what, buf, want, _, approx) in &cases {
            let got = gpu.read_f32(buf, want.len()).unwrap();
            if *approx {
                close(what, &got, want, 1e-6, 1e-5);
            } else {
                exact(what, &got, want); // f32 addition is correctly rounded on both sides
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// embed

#[test]
fn embed_across_pieces_all_dtypes() {
    // (vocab, d, ids)
    let cases: [(usize, usize, Vec<u32>); 3] = [
        (
            200,
            23,
            vec![0, 199, 43, 44, 88, 89, 177, 178, 100, 0, 45, 133],
        ),
        (
            5000,
            1,
            vec![2047, 2048, 4999, 0, 1023, 1024, 4096, 4095, 3],
        ),
        (70, 64, vec![15, 16, 31, 32, 69, 0, 8, 7]),
    ];
    for gpu in common::all_gpus() {
        for dtype in DTYPES {
            let mut rng = common::Rng::new(81 + dtype.code() as u64);
            let mut r = Recorder::new(gpu);
            let mut out = Vec::new();
            for (v, d, ids) in &cases {
                let (v, d) = (*v, *d);
                let mut vals = rng.vec(v * d);
                // Specials: zeros, the largest f16, its smallest normal and subnormals (bf16 rounds them).
                vals[0] = 0.0;
                vals[1] = -0.0;
                vals[2] = 65504.0;
                vals[3] = -0.5;
                vals[4] = f16::MIN_POSITIVE.to_f32(); // smallest normal f16
                vals[5] = -f16::MIN_POSITIVE.to_f32() / 2.0; // f16 subnormal
                vals[6] = f16::MIN_POSITIVE_SUBNORMAL.to_f32();
                let (table, seen) = weight(gpu, "embed", dtype, v, d, &vals);
                let what = format!(
                    "{}: embed {dtype:?} V={v} d={d} pieces={}",
                    label(gpu),
                    table.pieces.len()
                );
                if is_tiny(gpu) {
                    let mut hit: Vec<usize> = ids
                        .iter()
                        .map(|&id| {
                            table
                                .pieces
                                .iter()
                                .position(|p| {
                                    (id as usize) >= p.row_start
                                        && (id as usize) < p.row_start + p.rows
                                })
                                .unwrap()
                        })
                        .collect();
                    hit.sort();
                    hit.dedup();
                    assert!(hit.len() >= 2, "{what}: ids should land in several pieces");
                }
                let t = ids.len();
                let ib = up_u32(gpu, ids, "ids");
                let ob = up_f32(gpu, &vec![f32::NAN; t * d], "out");
                r.embed(&ib, t, &table, &ob).unwrap();
                let want: Vec<f32> = ids
                    .iter()
                    .flat_map(|&id| seen[id as usize * d..][..d].to_vec())
                    .collect();
                out.push((what, ob, want, ib, table));
            }
            r.submit().unwrap();
            for (what, ob, want, _, _) in &out {
                let got = gpu.read_f32(ob, want.len()).unwrap();
                exact(what, &got, want); // a conversion, not arithmetic: bit-exact
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// log-sum-exp over vocabulary chunks

struct LseWant {
    m: Vec<f32>,
    lse: Vec<f64>,
    target_z: Vec<f32>,
    /// H = lse - E_p[z]
    entropy: Vec<f64>,
    /// max |z| of the row: the scale of the rounding in w = Σ exp(z - m) z.
    max_abs_z: Vec<f64>,
}

/// z = logit * inv_temp in f32 (as the GPU computes it); lse in f64.
fn cpu_lse(logits: &[f32], t: usize, v: usize, targets: &[u32], inv_temp: f32) -> LseWant {
    let mut w = LseWant {
        m: vec![],
        lse: vec![],
        target_z: vec![],
        entropy: vec![],
        max_abs_z: vec![],
    };
    for i in 0..t {
        let z: Vec<f32> = logits[i * v..(i + 1) * v]
            .iter()
            .map(|&l| l * inv_temp)
            .collect();
        let m = z.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        let s: f64 = z.iter().map(|&x| (x as f64 - m as f64).exp()).sum();
        w.m.push(m);
        w.lse.push(m as f64 + s.ln());
        let mean_z: f64 = z
            .iter()
            .map(|&x| (x as f64 - m as f64).exp() * x as f64)
            .sum::<f64>()
            / s;
        w.entropy.push(m as f64 + s.ln() - mean_z);
        w.max_abs_z
            .push(z.iter().fold(0f64, |a, &x| a.max((x as f64).abs())));
        let tz = if targets[i] == NO_TARGET {
            0.0
        } else {
            z[targets[i] as usize]
        };
        w.target_z.push(tz);
    }
    w
}

/// The fourth state slot w = Σ exp(z - m) z gives the entropy H = m + ln s - w / s. In f32,
/// w / s ≈ E_p[z] carries rounding of order 1e-7·|z|, so the tolerance scales with max |z|.
fn check_lse(what: &str, state: &[f32], want: &LseWant, lse_atol: f64) {
    for i in 0..want.m.len() {
        let (m, s, tz, w) = (
            state[4 * i],
            state[4 * i + 1],
            state[4 * i + 2],
            state[4 * i + 3],
        );
        assert!(
            m == want.m[i],
            "{what}: row {i}: running max {m}, want {}",
            want.m[i]
        );
        let lse = m as f64 + (s as f64).ln();
        assert!(
            (lse - want.lse[i]).abs() <= lse_atol + 1e-6 * want.lse[i].abs(),
            "{what}: row {i}: m + ln s = {lse}, want {}",
            want.lse[i]
        );
        assert!(
            tz.to_bits() == want.target_z[i].to_bits(),
            "{what}: row {i}: target z {tz}, want {}",
            want.target_z[i]
        );
        let h = m as f64 + (s as f64).ln() - w as f64 / s as f64;
        let h_tol = lse_atol + 1e-6 * want.max_abs_z[i];
        assert!(
            (h - want.entropy[i]).abs() <= h_tol,
            "{what}: row {i}: entropy {h}, want {} (tol {h_tol})",
            want.entropy[i]
        );
    }
}

#[test]
fn lse_chunks_uneven() {
    // (vocab, chunk widths, targets)
    let cases: [(usize, Vec<usize>, Vec<u32>); 2] = [
        (
            1000,
            vec![300, 300, 400],
            vec![0, 299, 300, NO_TARGET, 999, 600, 517],
        ),
        (37, vec![37], vec![36, NO_TARGET, 0, 18]),
    ];
    for gpu in common::all_gpus() {
        let mut rng = common::Rng::new(91);
        for (v, widths, targets) in &cases {
            // Offsets: far from zero, w = Σ exp(z - m) z is dominated by m; the entropy must not be.
            for (inv_temp, offset) in [
                (1.0f32, 0.0f32),
                (1.0 / 0.7, 0.0),
                (1.0, -300.0),
                (1.0 / 0.7, 150.0),
            ] {
                let t = targets.len();
                let what = format!(
                    "{}: lse V={v} chunks={widths:?} inv_temp={inv_temp} offset={offset}",
                    label(gpu)
                );
                let mut logits: Vec<f32> =
                    rng.vec(t * v).iter().map(|x| x * 8.0 + offset).collect();
                // Row 1 peaked (entropy near 0), row 2 flat (entropy ln V).
                logits[v + v / 2] += 60.0;
                logits[2 * v..3 * v].iter_mut().for_each(|x| *x = offset);
                let tb = up_u32(gpu, targets, "targets");
                // Dirty state: lse_init must reset every slot.
                let sb = up_f32(gpu, &vec![42.0; t * 4], "state");
                let mut r = Recorder::new(gpu);
                r.lse_init(&sb, t).unwrap();
                let mut chunks = Vec::new();
                let mut v0 = 0;
                for &c in widths {
                    let chunk: Vec<f32> = (0..t)
                        .flat_map(|i| logits[i * v + v0..i * v + v0 + c].to_vec())
                        .collect();
                    let cb = up_f32(gpu, &chunk, "chunk");
                    let res = r.lse_chunk(&cb, &tb, &sb, t, c, v0, inv_temp);
                    if !fits(gpu, &[&cb, &tb, &sb]) {
                        assert_refused(&what, res);
                        v0 = usize::MAX;
                        break;
                    }
                    res.unwrap();
                    chunks.push(cb);
                    v0 += c;
                }
                if v0 == usize::MAX {
                    continue; // refused on a tiny-binding device, as it must be
                }
                assert_eq!(v0, *v);
                r.submit().unwrap();
                let state = gpu.read_f32(&sb, t * 4).unwrap();
                check_lse(
                    &what,
                    &state,
                    &cpu_lse(&logits, t, *v, targets, inv_temp),
                    2e-5,
                );
            }
        }
    }
}

/// The vocabulary-chunk flow of the forward pass in one submit: lm-head rows `v0..v0+c` into
/// one reused chunk buffer (`matmul` with a row range), folded into the state after each chunk.
#[test]
fn vocab_chunk_matmul_into_lse() {
    let (t, k, v, chunk) = (4, 24, 301, 128);
    let targets = [0u32, 300, 128, NO_TARGET];
    for gpu in common::all_gpus() {
        for dtype in DTYPES {
            let mut rng = common::Rng::new(101 + dtype.code() as u64);
            let x: Vec<f32> = rng.vec(t * k).iter().map(|v| v * 2.0).collect();
            let (w, w_seen) = weight(gpu, "lm_head", dtype, v, k, &rng.vec(v * k));
            let xb = up_f32(gpu, &x, "hidden");
            let tb = up_u32(gpu, &targets, "targets");
            let sb = gpu.alloc((t * 4 * 4) as u64, "state").unwrap();
            let cb = gpu.alloc((t * chunk * 4) as u64, "chunk").unwrap();
            let inv_temp = 1.0 / 0.7;
            let mut r = Recorder::new(gpu);
            r.lse_init(&sb, t).unwrap();
            let mut v0 = 0;
            let (mut chunks, mut touched) = (0, 0);
            while v0 < v {
                let n = chunk.min(v - v0);
                chunks += 1;
                touched += pieces_touched(&w, &(v0..v0 + n));
                r.matmul(&xb, t, &w, v0..v0 + n, None, &cb, n, 0, false)
                    .unwrap();
                r.lse_chunk(&cb, &tb, &sb, t, n, v0, inv_temp).unwrap();
                v0 += n;
            }
            if is_tiny(gpu) {
                assert!(touched > chunks, "{dtype:?}: chunks should straddle pieces");
            }
            r.submit().unwrap();
            let state = gpu.read_f32(&sb, t * 4).unwrap();
            let mut logits = vec![0f32; t * v];
            cpu_matmul(&x, t, k, &w_seen, 0..v, None, &mut logits, v, 0, false);
            let want = cpu_lse(&logits, t, v, &targets, inv_temp);
            // The logits carry the matmul's rounding (lse is 1-Lipschitz in them), plus lse's own.
            let (atol, rtol) = matmul_tol(k);
            let max_logit = logits.iter().fold(0f32, |a, &b| a.max(b.abs()));
            let tol = ((atol + rtol * max_logit) * inv_temp) as f64;
            let what = format!("{}: vocab chunks {dtype:?}", label(gpu));
            for i in 0..t {
                let (m, s, tz) = (state[4 * i], state[4 * i + 1], state[4 * i + 2]);
                assert!(
                    (m - want.m[i]).abs() as f64 <= tol,
                    "{what}: row {i}: max {m}, want {}",
                    want.m[i]
                );
                let lse = m as f64 + (s as f64).ln();
                assert!(
                    (lse - want.lse[i]).abs() <= tol + 2e-5,
                    "{what}: row {i}: lse {lse}, want {}",
                    want.lse[i]
                );
                assert!(
                    (tz - want.target_z[i]).abs() as f64 <= tol,
                    "{what}: row {i}: target z {tz}, want {}",
                    want.target_z[i]
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 2-D dispatch fold (more than 32768 workgroups in x)

#[test]
fn two_d_dispatch_fold() {
    for gpu in common::normal_gpus() {
        let mut rng = common::Rng::new(111);
        // rmsnorm: one workgroup per row.
        let (rows, d) = (40_000, 3);
        let x = rng.vec(rows * d);
        let w = rng.vec(d);
        let xb = up_f32(gpu, &x, "x");
        let wb = up_f32(gpu, &w, "w");
        let yb = up_f32(gpu, &vec![f32::NAN; rows * d], "y");
        // lse_chunk: one workgroup per row.
        let (t, c) = (40_000, 3);
        let logits: Vec<f32> = rng.vec(t * c).iter().map(|v| v * 5.0).collect();
        let targets: Vec<u32> = (0..t as u32)
            .map(|i| if i % 7 == 3 { NO_TARGET } else { i % c as u32 })
            .collect();
        let lb = up_f32(gpu, &logits, "logits");
        let tb = up_u32(gpu, &targets, "targets");
        let sb = gpu.alloc((t * 16) as u64, "state").unwrap();
        // attention: one workgroup per (query, head).
        let (at, heads, kv, hd) = (2, 20_000, 5, 3);
        let aq = rng.vec(at * heads * hd);
        let akc = rng.vec(at * kv * hd);
        let avc = rng.vec(at * kv * hd);
        let aqb = up_f32(gpu, &aq, "q");
        let akb = up_f32(gpu, &akc, "k cache");
        let avb = up_f32(gpu, &avc, "v cache");
        let aob = up_f32(gpu, &vec![f32::NAN; at * heads * hd], "out");
        let mut r = Recorder::new(gpu);
        r.rmsnorm(&xb, &wb, &yb, rows, d, 1e-5).unwrap();
        r.lse_init(&sb, t).unwrap();
        r.lse_chunk(&lb, &tb, &sb, t, c, 0, 1.0).unwrap();
        r.attention(&aqb, &akb, &avb, &aob, at, heads, kv, hd, 0, 0.5, 0)
            .unwrap();
        r.submit().unwrap();
        let got = gpu.read_f32(&aob, at * heads * hd).unwrap();
        close(
            &format!("{}: attention t={at} heads={heads} (2-D fold)", label(gpu)),
            &got,
            &cpu_attention(&aq, &akc, &avc, at, heads, kv, hd, 0, 0.5, 0),
            2e-5,
            1e-5,
        );
        let got = gpu.read_f32(&yb, rows * d).unwrap();
        close(
            &format!("{}: rmsnorm rows={rows} (2-D fold)", label(gpu)),
            &got,
            &cpu_rmsnorm(&x, &w, rows, d, 1e-5),
            1e-6,
            1e-5,
        );
        let state = gpu.read_f32(&sb, t * 4).unwrap();
        check_lse(
            &format!("{}: lse t={t} (2-D fold)", label(gpu)),
            &state,
            &cpu_lse(&logits, t, c, &targets, 1.0),
            2e-5,
        );
    }
}

// ---------------------------------------------------------------------------------------------
// pipelines and parameter structs

/// Every weight dtype, for the kernels keyed by one.
const ALL_DTYPES: [DType; 9] = [
    DType::F32,
    DType::F16,
    DType::BF16,
    DType::Q8_0,
    DType::Q4_0,
    DType::Q4_1,
    DType::Q5_0,
    DType::Q4_K,
    DType::Q6_K,
];

fn all_kernels() -> Vec<Kernel> {
    let mut ks = Vec::new();
    for d in ALL_DTYPES {
        if !d.is_quantized() {
            // Quantized rows are whole 32-element blocks, so never take the general kernels but
            // for the decode product under `MatvecForm::General`.
            ks.push(Kernel::MatmulGeneral(d));
            ks.push(Kernel::MatmulBackwardInputGeneral(d));
        }
        ks.push(Kernel::MatvecGeneral(d));
        ks.push(Kernel::MatvecSplit(d));
        ks.extend([
            Kernel::Matmul(d),
            Kernel::Matvec(d),
            Kernel::MatvecShared(d),
            Kernel::Embed(d),
            Kernel::MatmulBackwardInput(d),
        ]);
        if edgerl::gpu::quant::scales_factor_out(d) {
            ks.push(Kernel::MatmulRun(d));
        }
        if matches!(d, DType::Q8_0 | DType::Q4_0 | DType::Q4_1 | DType::Q5_0 | DType::Q5_1 | DType::Q4_K | DType::Q5_K) {
            // The runs' GROUPED forms for Q8_0 / Q4_0 / Q4_1 (kernels::run_grouped), the one-row
            // product's for Q4_0 / Q4_1.
            let grouped = matches!(d, DType::Q8_0 | DType::Q4_0 | DType::Q4_1);
            let groups: &[bool] = if grouped { &[false, true] } else { &[false] };
            ks.push(Kernel::MatmulVec4(d));
            for &g in groups {
                if !g || d != DType::Q8_0 {
                    ks.push(Kernel::MatvecOneVec4(d, g)); // one_row_grouped: Q4_0 / Q4_1
                }
                ks.extend([Kernel::MatmulRunVec4(d, g), Kernel::MatmulRun16Vec4(d, g), Kernel::MatmulRun16WideVec4(d, g)]);
                if g {
                    ks.push(Kernel::MatmulRunWideVec4(d, g)); // grouped only (`kernels::matmul`)
                }
                // The paired gate | up runs (`Recorder::linear_glu`), GELU-tanh for one type.
                let act = if d == DType::Q4_K { kernels::Activation::GeluTanh } else { kernels::Activation::Silu };
                ks.extend([Kernel::MatmulRunGluVec4(d, g, act), Kernel::MatmulRun16GluVec4(d, g, act)]);
            }
        }
    }
    ks.extend([
        Kernel::RmsNorm,
        Kernel::RmsNormLanes,
        Kernel::LayerNorm,
        Kernel::Rope,
        Kernel::Rope4,
        Kernel::RopeKv,
        Kernel::RopeKv4,
        Kernel::RopeQkv4,
        Kernel::Attention,
        Kernel::AttentionDecodeHd64,
        Kernel::AttentionLanes(128),
        Kernel::AttentionLanes(256),
        Kernel::AttentionLanesBackwardQ(256),
        Kernel::AttentionLanesBackwardKv(256),
        Kernel::AttentionTiled,
        Kernel::AttentionBidirectional,
        Kernel::SiluMul,
        Kernel::SiluMul4,
        Kernel::ActInplace,
        Kernel::Add,
        Kernel::Add4,
        Kernel::Scale,
        Kernel::LseInit,
        Kernel::LseChunk,
        Kernel::GatherRows,
        Kernel::Gemm,
        Kernel::GemmVec4 { a_along_p: true, b_along_p: true },
        Kernel::GemmVec4 { a_along_p: true, b_along_p: false },
        Kernel::GemmVec4 { a_along_p: false, b_along_p: true },
        Kernel::GemmVec4 { a_along_p: false, b_along_p: false },
        Kernel::GemmSplitK { vec4: false },
        Kernel::GemmSplitK { vec4: true },
        Kernel::GemmLanes,
        Kernel::RmsNormBackward,
        Kernel::SiluMulBackward,
        Kernel::SiluMulBackward4,
        Kernel::AttentionBackwardQ,
        Kernel::AttentionBackwardKv,
        Kernel::AttentionTiledBackwardQ,
        Kernel::AttentionTiledBackwardKv,
        Kernel::LogprobGrad,
        Kernel::AdamW,
        Kernel::Sgd,
        Kernel::SumSquares,
        Kernel::Sample,
        Kernel::FmaPeak,
    ]);
    ks
}

/// Builds (through its wrapper, the only public path) and runs the pipeline of every `Kernel`
/// on the smallest shapes. The match is exhaustive, so a new variant must be added here.
#[test]
fn every_kernel_builds_and_validates() {
    common::each_gpu_in_parallel(|gpu| {
        eprintln!("kernel tests run on: {}", label(gpu));
        for k in all_kernels() {
            let b = || gpu.alloc(64, "scratch").unwrap();
            // Weight kernels: a 2 × 32 zero matrix (whole blocks for the quantized types; Q4_K:
            // 2 × 256, one super-block a row).
            let w = |dt: DType, name: &str| {
                let cols = dt.block().max(32);
                let bytes = vec![0u8; 2 * dt.file_row_bytes(cols).unwrap()];
                Tensor::from_bytes(gpu, name, dt, 2, cols, &bytes).unwrap()
            };
            let w_v4_rows = |dt: DType, rows: usize| {
                let cols = dt.block().max(32);
                Tensor::from_bytes(gpu, "w", dt, rows, cols, &vec![0u8; rows * dt.file_row_bytes(cols).unwrap()]).unwrap()
            };
            let w_v4 = |dt: DType| w_v4_rows(dt, 4);
            // 4096 bytes: dx of Q4_K's backward (3 × 256), within the tiny binding limit.
            let big = || gpu.alloc(4096, "scratch").unwrap();
            // A 2 × 3 float matrix: k not a multiple of `MATMUL_K_ALIGN`.
            let w3 = |dt: DType| {
                let bytes = vec![0u8; 2 * dt.file_row_bytes(3).unwrap()];
                Tensor::from_bytes(gpu, "w", dt, 2, 3, &bytes).unwrap()
            };
            let (a, c, d, e) = (b(), b(), b(), b());
            let (f, g, h, i, j) = (b(), b(), b(), b(), b());
            let t_tiled = edgerl::gpu::kernels::MATVEC_MAX_ROWS + 1;
            let mut r = Recorder::new(gpu);
            let res = match k {
                // Q4_K's x (t_tiled × 256) is over the tiny binding limit: refused there.
                Kernel::Matmul(dt)
                    if (t_tiled * dt.block().max(32) * 4) as u64 > gpu.max_binding =>
                {
                    let res = r.linear(&big(), t_tiled, &w(dt, "w"), Some(&c), &d, false);
                    assert!(res.is_err(), "{}: {k:?} over the binding limit", label(gpu));
                    continue;
                }
                Kernel::Matmul(dt) => {
                    r.matvec = MatvecForm::Blocked; // `Run` takes 9 rows on CPU devices
                    r.linear(&big(), t_tiled, &w(dt, "w"), Some(&c), &d, false)
                }
                // k = 3: not a multiple of `MATMUL_K_ALIGN`.
                Kernel::MatmulGeneral(dt) => {
                    r.linear(&big(), t_tiled, &w3(dt), Some(&c), &d, false)
                }
                Kernel::MatvecGeneral(dt) if dt.is_quantized() => {
                    r.matvec = MatvecForm::General;
                    r.linear(&big(), 1, &w(dt, "w"), Some(&c), &d, false)
                }
                Kernel::MatvecGeneral(dt) => r.linear(&big(), 1, &w3(dt), Some(&c), &d, false),
                Kernel::MatvecSplit(dt) => {
                    r.matvec = MatvecForm::Split;
                    r.linear(&big(), 1, &w(dt, "w"), Some(&c), &d, false)
                }
                Kernel::Matvec(dt) => {
                    r.matvec = MatvecForm::Blocked;
                    r.linear(&big(), 1, &w(dt, "w"), Some(&c), &d, false)
                }
                // Pieces of a multiple of 16 bytes (4 rows of one block): one row, a run, a tile.
                Kernel::MatvecOneVec4(dt, g) => {
                    let w = if g { w_v4_rows(dt, 8) } else { w_v4(dt) };
                    r.linear(&big(), 1, &w, Some(&c), &big(), false)
                }
                // Grouped: 8 rows, one group of 8 on CPU devices (every test device).
                Kernel::MatmulRunVec4(dt, g) => {
                    r.matvec = MatvecForm::Run;
                    let w = if g { w_v4_rows(dt, 8) } else { w_v4(dt) };
                    r.linear(&big(), kernels::MATVEC_RUN_MIN_ROWS, &w, Some(&c), &big(), false)
                }
                // 2 rows × `RUN8_WIDE_MIN_COLS` columns, grouped: y is over the tiny binding
                // limit.
                Kernel::MatmulRunWideVec4(dt, _) => {
                    r.matvec = MatvecForm::Run;
                    let n = kernels::RUN8_WIDE_MIN_COLS;
                    let y = gpu.alloc((2 * n * 4) as u64, "y").unwrap();
                    let res = r.linear(&big(), kernels::MATVEC_RUN_MIN_ROWS, &w_v4_rows(dt, n), None, &y, false);
                    if (2 * n * 4) as u64 > gpu.max_binding {
                        assert!(res.is_err(), "{}: {k:?} over the binding limit", label(gpu));
                        continue;
                    }
                    res
                }
                Kernel::MatmulRun16Vec4(dt, g) => {
                    r.matvec = MatvecForm::Run;
                    let w = if g { w_v4_rows(dt, 8) } else { w_v4(dt) };
                    let res = r.linear(&big(), 16, &w, Some(&c), &big(), false);
                    // Q4_K's x (16 × 256) is over the tiny binding limit: refused there.
                    if (16 * dt.block().max(32) * 4) as u64 > gpu.max_binding {
                        assert!(res.is_err(), "{}: {k:?} over the binding limit", label(gpu));
                        continue;
                    }
                    res
                }
                // 16 rows × 128 columns (`run16_wide`): y is over the tiny binding limit.
                // (Grouped or not as the type and device make the 128 rows.)
                Kernel::MatmulRun16WideVec4(dt, _) => {
                    r.matvec = MatvecForm::Run;
                    let cols = dt.block().max(32);
                    let w = w_v4_rows(dt, 128);
                    let y = gpu.alloc(16 * 128 * 4, "y").unwrap();
                    let res = r.linear(&big(), 16, &w, None, &y, false);
                    if (16 * cols.max(128) * 4) as u64 > gpu.max_binding {
                        assert!(res.is_err(), "{}: {k:?} over the binding limit", label(gpu));
                        continue;
                    }
                    res
                }
                // Gate | up of 8 rows each (one weight group), 2 rows or 16; taken by the runs of
                // CPU devices with subgroups only (elsewhere nothing to build). Q4_K's x (16 ×
                // 256) is over the tiny binding limit: not taken there.
                Kernel::MatmulRunGluVec4(dt, _, act) | Kernel::MatmulRun16GluVec4(dt, _, act) => {
                    r.matvec = MatvecForm::Run;
                    let t = if matches!(k, Kernel::MatmulRun16GluVec4(..)) { 16 } else { kernels::MATVEC_RUN_MIN_ROWS };
                    let x = gpu.alloc((t * dt.block().max(32) * 4) as u64, "x").unwrap();
                    let res = r.linear_glu(&x, t, &w_v4_rows(dt, 16), act, None, &big());
                    if x.bytes > gpu.max_binding {
                        // Refused, or (no run takes it) left to the separate products.
                        assert!(!matches!(res, Ok(true)), "{}: {k:?} over the binding limit", label(gpu));
                        continue;
                    }
                    match res {
                        Ok(false) => continue,
                        other => other.map(|_| ()),
                    }
                }
                // Q4_K's x (t_tiled × 256) is over the tiny binding limit: refused there.
                Kernel::MatmulVec4(dt) if (t_tiled * dt.block().max(32) * 4) as u64 > gpu.max_binding => {
                    let res = r.linear(&big(), t_tiled, &w_v4(dt), Some(&c), &d, false);
                    assert!(res.is_err(), "{}: {k:?} over the binding limit", label(gpu));
                    continue;
                }
                Kernel::MatmulVec4(dt) => {
                    r.matvec = MatvecForm::Blocked;
                    r.linear(&big(), t_tiled, &w_v4(dt), Some(&c), &d, false)
                }
                Kernel::MatmulRun(dt) => {
                    r.matvec = MatvecForm::Run;
                    let t = kernels::MATVEC_RUN_MIN_ROWS;
                    let res = r.linear(&big(), t, &w(dt, "w"), Some(&c), &d, false);
                    // Q4_K's x (5 × 256) is over the tiny binding limit: refused there.
                    if (t * dt.block().max(32) * 4) as u64 > gpu.max_binding {
                        assert!(res.is_err(), "{}: {k:?} over the binding limit", label(gpu));
                        continue;
                    }
                    res
                }
                // Only dispatched on devices with subgroups (float weights from 2 rows).
                Kernel::MatvecShared(dt) => {
                    r.matvec = MatvecForm::Blocked;
                    r.linear(&big(), 2, &w(dt, "w"), Some(&c), &d, false)
                }
                Kernel::RmsNorm => {
                    r.norm_lanes = false;
                    r.rmsnorm(&a, &c, &d, 1, 4, 1e-6)
                }
                Kernel::RmsNormLanes => {
                    r.norm_lanes = true;
                    r.rmsnorm(&a, &c, &d, 1, 4, 1e-6)
                }
                Kernel::Rope => r.rope(&a, &c, 1, 1, 4),
                Kernel::Rope4 => r.rope(&a, &c, 1, 1, 8),
                // CPU references in tests/decode_kernels.rs.
                // head_dim 4 takes the pair-a-thread kernel, 8 the vec4 one.
                Kernel::RopeKv => {
                    r.rope_kv(&a, &c, &d, &e, &f, &g, 1, 1, 1, 4, kernels::KvRows::At(1))
                }
                Kernel::RopeKv4 => {
                    r.rope_kv(&a, &c, &d, &e, &f, &g, 1, 1, 1, 8, kernels::KvRows::At(1))
                }
                Kernel::RopeQkv4 => r.rope_qkv(&big(), &c, &d, &e, &f, 1, 1, 1, 8, kernels::KvRows::At(1)),
                // head_dim 4 takes the general kernels, 8 the tiled ones.
                Kernel::Attention => r.attention(&a, &c, &d, &e, 1, 1, 1, 4, 0, 0.5, 0),
                Kernel::AttentionTiled => r.attention(&a, &c, &d, &e, 1, 1, 1, 8, 0, 0.5, 0),
                // head_dim 64 on a CPU device (every test device).
                Kernel::AttentionDecodeHd64 => {
                    r.attention(&big(), &big(), &big(), &big(), 1, 1, 1, 64, 0, 0.5, 0)
                }
                // head_dim 128 / 256 on a CPU device, one query (t ≥ 16 at 128 is tiled).
                Kernel::AttentionLanes(hd) => {
                    r.attention(&big(), &big(), &big(), &big(), 1, 1, 1, hd as usize, 0, 0.5, 0)
                }
                // n = 3 takes the scalar elementwise kernels, 4 the vec4 ones.
                Kernel::SiluMul => r.silu_mul(&a, &c, 3),
                Kernel::SiluMul4 => r.silu_mul(&a, &c, 4),
                Kernel::Add => r.add(&a, &c, 3),
                Kernel::Add4 => r.add(&a, &c, 4),
                Kernel::Scale => r.scale(&c, 4, 2.0),
                Kernel::Embed(dt) => r.embed(&a, 1, &w(dt, "table"), &big()),
                Kernel::LseInit => r.lse_init(&a, 1),
                Kernel::LseChunk => r.lse_chunk(&a, &c, &d, 1, 2, 0, 1.0),
                Kernel::GatherRows => r.gather_rows(&c, &a, &d, 1, 4),
                // ldy = 4: dy rows on 16 bytes, so k = 32 takes the register-blocked kernel.
                Kernel::MatmulBackwardInput(dt) => {
                    r.matmul_backward_input(&a, 3, 4, &w(dt, "w"), 0..2, &big(), false)
                }
                Kernel::MatmulBackwardInputGeneral(dt) => {
                    r.matmul_backward_input(&a, 3, 2, &w3(dt), 0..2, &big(), false)
                }
                Kernel::Gemm => r.gemm(&a, 0, 2, 1, &c, 0, 2, 1, &d, 0, 2, 2, 2, 2, 1.0, false),
                // 4 × 4 × 4, each operand along p or across (the layouts `gemm_v4` takes).
                Kernel::GemmVec4 { a_along_p, b_along_p } => {
                    let (ars, acs) = if a_along_p { (4, 1) } else { (1, 4) };
                    let (brs, bcs) = if b_along_p { (1, 4) } else { (4, 1) };
                    r.gemm(&a, 0, ars, acs, &c, 0, brs, bcs, &d, 0, 4, 4, 4, 4, 1.0, false)
                }
                // One row over k = 128 (aligned: vec4 reads) or 129 (scalar), 4 columns.
                Kernel::GemmSplitK { vec4 } => {
                    let k = if vec4 { 128 } else { 129 };
                    r.gemm_lanes = false;
                    r.gemm(&big(), 0, k, 1, &big(), 0, 1, k, &d, 0, 4, 1, 4, k, 1.0, false)
                }
                Kernel::GemmLanes => {
                    r.gemm_lanes = true;
                    r.gemm(&big(), 0, 128, 1, &big(), 0, 1, 128, &d, 0, 4, 1, 4, 128, 1.0, false)
                }
                Kernel::RmsNormBackward => r.rmsnorm_backward(&a, &c, &d, &e, 1, 4, 1e-6, false),
                Kernel::SiluMulBackward => r.silu_mul_backward(&a, &c, &d, &e, &f, 3),
                Kernel::SiluMulBackward4 => r.silu_mul_backward(&a, &c, &d, &e, &f, 4),
                // attention_backward records both passes; AttentionBackwardQ / Kv are its two.
                Kernel::AttentionBackwardQ | Kernel::AttentionBackwardKv => {
                    r.attention_backward(&a, &c, &d, &e, &f, &g, &h, &i, &j, 1, 1, 1, 4, 0.5, None, 0)
                }
                // head_dim 256 on a CPU device (every test device).
                Kernel::AttentionLanesBackwardQ(hd) | Kernel::AttentionLanesBackwardKv(hd) => {
                    let hd = hd as usize;
                    r.attention_backward(&big(), &big(), &big(), &big(), &big(), &big(), &big(), &big(), &j, 1, 1, 1, hd, 0.5, None, 0)
                }
                Kernel::AttentionTiledBackwardQ | Kernel::AttentionTiledBackwardKv => {
                    r.attention_backward(&a, &c, &d, &e, &f, &g, &h, &i, &j, 1, 1, 1, 8, 0.5, None, 0)
                }
                Kernel::LogprobGrad => {
                    r.lse_init(&d, 1).unwrap();
                    r.logprob_grad_chunk(&a, &c, &d, &e, 1, 2, 0, 1.0)
                }
                Kernel::AdamW => r.adamw(&a, &c, &d, &e, 4, 1e-3, 0.9, 0.999, 1e-8, 0.01, 1, 1.0),
                Kernel::Sgd => r.sgd(&a, &c, 4, 1e-2, 0.0, 1.0),
                Kernel::SumSquares => r.sum_squares(&a, 4, &c, 1),
                Kernel::Sample => {
                    let s = SamplerSettings {
                        temperature: 1.0,
                        top_k: 2,
                        top_p: 0.9,
                        min_p: 0.1,
                        seed: 1,
                    };
                    r.sample(&a, 4, &s, 0, 1, &c)
                }
                Kernel::FmaPeak => r.fma_peak(&big(), 2, 3),
                // The vision tower's (CPU references in tests/vision_tower.rs).
                Kernel::LayerNorm => r.layernorm(&a, &c, &d, &e, 1, 4, 1e-6),
                Kernel::AttentionBidirectional => {
                    r.attention_bidirectional(&a, &c, &d, &e, &f, 1, 1, 1, 4, 0.5)
                }
                Kernel::ActInplace => r.act(kernels::Activation::GeluTanh, &a, 4),
            };
            res.unwrap_or_else(|e| panic!("{}: building {k:?}: {e}", label(gpu)));
            r.submit()
                .unwrap_or_else(|e| panic!("{}: running {k:?}: {e}", label(gpu)));
            gpu.wait()
                .unwrap_or_else(|e| panic!("{}: after {k:?}: {e}", label(gpu)));
        }
    });
}

/// The fields of `struct <name>` in a WGSL source: (name, type) in order.
fn wgsl_params(src: &str, name: &str) -> Vec<(String, String)> {
    let start = src
        .find(&format!("struct {name} "))
        .unwrap_or_else(|| panic!("no `struct {name}`"));
    let body = &src[start..];
    let open = body.find('{').unwrap();
    let close = body.find('}').unwrap();
    body[open + 1..close]
        .lines()
        .map(|l| l.split("//").next().unwrap())
        .flat_map(|l| l.split(','))
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(|f| {
            let (name, ty) = f.split_once(':').unwrap_or_else(|| panic!("field {f:?}"));
            (name.trim().to_string(), ty.trim().to_string())
        })
        .collect()
}

/// Each `#[repr(C)]` params struct has the WGSL struct's size, and every named Rust field sits
/// at the offset and has the scalar type of the WGSL field of the same name.
macro_rules! check_params {
    ($ty:ty, $src:expr, [$($field:ident),* $(,)?]) => {
        check_params!($ty, $src, "Params", [$($field),*])
    };
    ($ty:ty, $src:expr, $wgsl:expr, [$($field:ident),* $(,)?]) => {{
        let fields = wgsl_params($src, $wgsl);
        let what = stringify!($ty);
        for (name, ty) in &fields {
            assert!(ty == "u32" || ty == "f32" || ty == "i32", "{what}: WGSL field {name}: {ty} is not a 4-byte scalar");
        }
        assert_eq!(std::mem::size_of::<$ty>(), 4 * fields.len(), "{what}: Rust size vs WGSL fields {fields:?}");
        let zero = <$ty as bytemuck::Zeroable>::zeroed();
        let mut named = 0;
        $(
            let pos = fields.iter().position(|(n, _)| n == stringify!($field))
                .unwrap_or_else(|| panic!("{what}: WGSL has no field {}", stringify!($field)));
            assert_eq!(std::mem::offset_of!($ty, $field), 4 * pos, "{what}.{}: offset", stringify!($field));
            assert_eq!(std::any::type_name_of_val(&zero.$field), fields[pos].1, "{what}.{}: type", stringify!($field));
            named += 1;
        )*
        // Every WGSL field that is not padding is checked by name.
        let real = fields.iter().filter(|(n, _)| !n.starts_with('_')).count();
        assert_eq!(named, real, "{what}: list every non-padding field");
    }};
}

#[test]
fn params_structs_match_wgsl() {
    check_params!(
        MatmulParams,
        kernels::MATMUL_COMMON_WGSL,
        [t, k, n, n_off, ldy, w_row0, has_bias, accumulate, b_row0, lora_r, lora_scale, wgroup, lora_ld, lora_seg0, lora_seg1]
    );
    check_params!(NormParams, kernels::NORM_WGSL, [rows, d, eps]);
    check_params!(RopeParams, kernels::ROPE_WGSL, [t, heads, hd]);
    check_params!(
        kernels::RopeKvParams,
        kernels::ROPE_KV_WGSL,
        [t, heads, kv_heads, hd, p0, slotted]
    );
    check_params!(
        AttentionParams,
        kernels::ATTENTION_WGSL,
        [t, heads, kv_heads, hd, p0, scale, prefix, packed, window]
    );
    check_params!(
        AttentionParams,
        kernels::ATTENTION_TILED_WGSL,
        [t, heads, kv_heads, hd, p0, scale, prefix, packed, window]
    );
    check_params!(ElementwiseParams, kernels::ACTIVATION_WGSL, [n, act, s]);
    check_params!(
        kernels::BidirectionalParams,
        kernels::ATTENTION_WGSL,
        "BidirectionalParams",
        [t, seq, heads, hd, scale]
    );
    check_params!(
        edgerl::gpu::rows::RowsParams,
        edgerl::gpu::pipeline::ROWS_WGSL,
        [rows, width]
    );
    check_params!(
        EmbedParams,
        kernels::EMBEDDING_WGSL,
        [t, d, row_start, rows, wgroup]
    );
    check_params!(LogprobParams, kernels::LOGPROB_WGSL, [t, c, v0, inv_temp]);
    // Backward and optimizer kernels; entry points with their own uniform struct name it.
    check_params!(
        MatmulBackwardParams,
        kernels::MATMUL_BACKWARD_WGSL,
        "MatmulBackwardParams",
        [t, k, n, ldy, dy_off, w_row0, accumulate, wgroup]
    );
    check_params!(
        GemmParams,
        kernels::GEMM_WGSL,
        "GemmParams",
        [
            m, n, k, a_off, a_rs, a_cs, b_off, b_rs, b_cs, c_off, ldc, alpha, accumulate, wg_rows
        ]
    );
    check_params!(
        NormBackwardParams,
        kernels::NORM_WGSL,
        "NormBackwardParams",
        [rows, d, eps, accumulate]
    );
    check_params!(
        AdamwParams,
        kernels::OPTIM_WGSL,
        "AdamwParams",
        [
            n, decay, w1, beta2, w2, step_size, bc2_sqrt, eps, grad_scale
        ]
    );
    check_params!(
        SgdParams,
        kernels::OPTIM_WGSL,
        "SgdParams",
        [n, lr, weight_decay, grad_scale]
    );
    check_params!(
        SumSquaresParams,
        kernels::OPTIM_WGSL,
        "SumSquaresParams",
        [n, index]
    );
    check_params!(
        SampleParams,
        kernels::SAMPLE_WGSL,
        [
            n, draws, greedy, top_k, inv_temp, top_p, min_p, seed_lo, seed_hi, step_lo, step_hi,
            rows
        ]
    );
    check_params!(
        PeakParams,
        kernels::PEAK_WGSL,
        "PeakParams",
        [iters, mul, add]
    );
    // Every uniform struct in every shader is one of the above (an unchecked one fails here).
    for src in [
        kernels::PEAK_WGSL,
        kernels::WEIGHTS_WGSL,
        kernels::WEIGHT_BLOCKS_WGSL,
        kernels::MATMUL_COMMON_WGSL,
        kernels::MATMUL_WGSL,
        kernels::MATVEC_WGSL,
        kernels::MATVEC_ONE_ROW_WGSL,
        kernels::MATMUL_BACKWARD_WGSL,
        kernels::GEMM_WGSL,
        kernels::NORM_WGSL,
        kernels::ROPE_WGSL,
        kernels::ROPE_KV_WGSL,
        kernels::ATTENTION_WGSL,
        kernels::ACTIVATION_WGSL,
        kernels::EMBEDDING_WGSL,
        kernels::LOGPROB_WGSL,
        kernels::OPTIM_WGSL,
        kernels::SAMPLE_WGSL,
    ] {
        for line in src.lines().filter(|l| l.contains("var<uniform>")) {
            let ty = line
                .rsplit(':')
                .next()
                .unwrap()
                .trim()
                .trim_end_matches(';');
            let checked = [
                "Params",
                "MatmulBackwardParams",
                "GemmParams",
                "NormBackwardParams",
                "AdamwParams",
                "SgdParams",
                "SumSquaresParams",
                "PeakParams",
                "BidirectionalParams",
            ];
            assert!(
                checked.contains(&ty),
                "uniform struct {ty} has no Rust twin checked here"
            );
        }
    }
    // Uniform blocks are bound in 16-byte steps; keep every struct a multiple of that.
    for size in [
        std::mem::size_of::<MatmulParams>(),
        std::mem::size_of::<NormParams>(),
        std::mem::size_of::<RopeParams>(),
        std::mem::size_of::<kernels::RopeKvParams>(),
        std::mem::size_of::<AttentionParams>(),
        std::mem::size_of::<ElementwiseParams>(),
        std::mem::size_of::<EmbedParams>(),
        std::mem::size_of::<LogprobParams>(),
        std::mem::size_of::<MatmulBackwardParams>(),
        std::mem::size_of::<GemmParams>(),
        std::mem::size_of::<NormBackwardParams>(),
        std::mem::size_of::<AdamwParams>(),
        std::mem::size_of::<SgdParams>(),
        std::mem::size_of::<SumSquaresParams>(),
        std::mem::size_of::<SampleParams>(),
        std::mem::size_of::<PeakParams>(),
        std::mem::size_of::<kernels::BidirectionalParams>(),
    ] {
        assert_eq!(size % 16, 0);
    }
}

/// A GL device is used by one test thread at a time (tests/common/turns.rs): a turn is
/// re-entrant for its holder, and another thread's request waits until the holder's last guard
/// is gone. Without it, wgpu panics when a long compile or submit on one thread holds the GL
/// context for more than 6 s while another thread calls in.
#[test]
fn gl_devices_are_used_in_turns() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let Some(gl) = common::backends().normal.iter().find(|g| g.adapter.backend == "gl") else {
        assert!(std::env::var_os("CI").is_none(), "CI must have a GL adapter");
        return;
    };
    let released = AtomicBool::new(false);
    let mut outer = common::in_turn([gl]);
    assert!(outer.next().is_some());
    std::thread::scope(|s| {
        let other = s.spawn(|| {
            let mut theirs = common::in_turn([gl]);
            theirs.next();
            released.load(Ordering::SeqCst)
        });
        // The holder may take its turn again (a loop inside a loop) without waiting on itself.
        let mut inner = common::in_turn([gl]);
        assert!(inner.next().is_some());
        drop(inner);
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert!(!other.is_finished(), "another thread got a turn while this one held it");
        released.store(true, Ordering::SeqCst);
        drop(outer);
        assert!(other.join().unwrap(), "the other thread's turn came before the release");
    });
}

/// The reductions have two forms (shaders/reduce.wgsl and reduce_subgroup.wgsl): on CI,
/// lavapipe's Vulkan device runs the subgroup form and a second Vulkan device the portable
/// one, so every kernel test above covers both (GL has no subgroups).
#[test]
fn both_reduction_forms_are_under_test() {
    let b = common::backends();
    for g in &b.portable {
        assert!(!g.features.subgroups, "{}: portable device with subgroups", label(g));
    }
    for g in b.normal.iter().filter(|g| g.adapter.backend == "gl") {
        assert!(!g.features.subgroups, "{}: GL offers no subgroups in wgpu", label(g));
    }
    if std::env::var_os("CI").is_some() {
        assert_eq!(common::subgroup_gpus().count(), 1, "lavapipe's Vulkan device has subgroups");
        // ... whose runs of 8 lanes are known to be in order: the kernels skip the check
        // (quant_kernels' `quant_run_matvec_with_the_lane_check` keeps it).
        assert_eq!(common::subgroup_gpus().filter(|g| g.features.lanes8_in_order).count(), 1);
        assert_eq!(b.portable.len(), 1);
    }
    // The two forms of one kernel file differ only in the reduction snippet.
    use edgerl::gpu::pipeline::{module_source, Subgroups};
    let a = module_source(edgerl::gpu::pipeline::NORM_WGSL, Subgroups::Off, false);
    let s = module_source(edgerl::gpu::pipeline::NORM_WGSL, Subgroups::Any, false);
    assert!(s.contains("subgroupAdd") && !a.contains("subgroupAdd"));
    // The weight products share x rows by shuffles only in the subgroup form.
    for file in [edgerl::gpu::pipeline::MATMUL_WGSL, edgerl::gpu::pipeline::MATVEC_WGSL, edgerl::gpu::pipeline::MATMUL_BACKWARD_WGSL] {
        let a = module_source(file, Subgroups::Off, false);
        let s = module_source(file, Subgroups::Any, false);
        assert!(s.contains("subgroupShuffle") && !a.contains("subgroupShuffle"));
        assert!(a.contains("fn lanes8") && s.contains("fn lanes8"));
        // Broadcasts of a constant lane only where the subgroups are always 8 lanes wide.
        let s8 = module_source(file, Subgroups::Eight, false);
        assert!(s8.contains("const SUBGROUP8: bool = true;") && s.contains("const SUBGROUP8: bool = false;"));
        assert!(a.contains("const SUBGROUP8: bool = false;"));
        // The lane check is skipped only where the layout is known (CPU devices).
        let o8 = module_source(file, Subgroups::EightInOrder, false);
        assert!(o8.contains("const LANES8_IN_ORDER: bool = true;") && s8.contains("const LANES8_IN_ORDER: bool = false;"));
    }
}
