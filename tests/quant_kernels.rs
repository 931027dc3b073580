//! The llama.cpp block types (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL; the super-block types Q2_K,
//! Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS) kept packed on the GPU: every kernel that reads weights
//! (matmul and its matrix-vector path, embed, matmul_backward_input) against a CPU reference, on every backend of `common::all_gpus()` (each also with a 4096-byte binding
//! limit, so weights split into row pieces).
//!
//! Weights are random values quantized with `quant::quantize`; the reference uses exactly the
//! values `quant::dequantize` gives (the GPU computes the same ones), so the tolerances only
//! cover f32 rounding in the sums.

mod common;

use std::ops::Range;

use edgerl::Error;
use edgerl::gpu::{DType, Gpu, GpuBuffer, MatvecForm, Recorder, Tensor, quant};

const QUANT: [DType; 12] = [
    DType::Q8_0,
    DType::Q4_0,
    DType::Q4_1,
    DType::Q5_0,
    DType::Q4_K,
    DType::Q6_K,
    DType::Q5_1,
    DType::Q5_K,
    DType::Q2_K,
    DType::Q3_K,
    DType::IQ4_NL,
    DType::IQ4_XS,
];

/// Row lengths for `dtype`: the 32-element block types take `k32`, the 256-element
/// super-block types (K-quants, IQ4_XS) the same count of super-block multiples `k256`.
fn ks(dtype: DType, k32: &[usize], k256: &[usize]) -> Vec<usize> {
    if dtype.block() == 256 { k256 } else { k32 }.to_vec()
}

fn is_tiny(gpu: &Gpu) -> bool {
    gpu.max_binding == common::TINY_BINDING
}

fn label(gpu: &Gpu) -> String {
    let tiny = if is_tiny(gpu) {
        ", 4096-byte bindings"
    } else {
        ""
    };
    format!("{} ({}{tiny})", gpu.adapter.backend, gpu.adapter.name)
}

fn up(gpu: &Gpu, data: &[f32]) -> GpuBuffer {
    gpu.upload(bytemuck::cast_slice(data), "test data").unwrap()
}

fn assert_refused(what: &str, res: edgerl::Result<()>) {
    assert!(
        matches!(res, Err(Error::Invalid(_))),
        "{what}: a binding over the limit must be refused, got {res:?}"
    );
}

/// f32 tolerance for a k-term dot product (plus bias / residual), as in tests/kernels.rs.
fn tol(k: usize) -> (f32, f32) {
    (1e-5 + 2e-7 * k as f32, 1e-5)
}

/// A `rows × cols` quantized weight of random values, and the values the GPU sees. Rows are
/// scaled differently so the blocks' scales vary.
fn qweight(
    gpu: &Gpu,
    dtype: DType,
    rows: usize,
    cols: usize,
    rng: &mut common::Rng,
) -> (Tensor, Vec<f32>) {
    let mut vals = rng.vec(rows * cols);
    for (i, v) in vals.iter_mut().enumerate() {
        *v *= 0.25 + 0.5 * (i / cols % 5) as f32;
    }
    let bytes = quant::quantize(dtype, &vals).unwrap();
    let seen = quant::dequantize(dtype, &bytes).unwrap();
    let w = Tensor::from_bytes(gpu, "w", dtype, rows, cols, &bytes).unwrap();
    // Pieces cover the rows in order, each within the limit, holding the GPU layout.
    let row_bytes = dtype.row_bytes(cols).unwrap() as u64;
    let mut next = 0;
    for p in &w.pieces {
        assert_eq!(p.row_start, next, "{dtype:?}: piece order");
        assert!(
            p.buf.bytes() <= gpu.max_binding,
            "{dtype:?}: piece over the limit"
        );
        assert_eq!(
            p.buf.bytes(),
            p.rows as u64 * row_bytes,
            "{dtype:?}: piece bytes"
        );
        next += p.rows;
    }
    assert_eq!(next, rows);
    if is_tiny(gpu) && rows as u64 * row_bytes > common::TINY_BINDING {
        assert!(
            w.pieces.len() > 1,
            "{dtype:?} {rows}×{cols}: should be split"
        );
    }
    (w, seen)
}

fn pieces_touched(w: &Tensor, r: &Range<usize>) -> usize {
    w.pieces
        .iter()
        .filter(|p| r.start.max(p.row_start) < r.end.min(p.row_start + p.rows))
        .count()
}

/// y[i, n_off + j] (+)= x[i, :] · W[rows.start + j, :] (+ bias[rows.start + j]), in f64.
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
            let mut acc: f64 = (0..k)
                .map(|q| x[i * k + q] as f64 * w[r * k + q] as f64)
                .sum();
            acc += bias.map_or(0.0, |b| b[r] as f64);
            let idx = i * ldy + n_off + j;
            if accumulate {
                acc += y[idx] as f64;
            }
            y[idx] = acc as f32;
        }
    }
}

struct Case {
    what: String,
    y: GpuBuffer,
    want: Vec<f32>,
    k: usize,
    _keep: Vec<GpuBuffer>,
}

fn check(gpu: &Gpu, cases: &[Case]) {
    for c in cases {
        let got = gpu.read_f32(&c.y, c.want.len()).unwrap();
        let (atol, rtol) = tol(c.k);
        common::assert_close(&c.what, &got, &c.want, atol, rtol);
    }
}

/// Records y (+)= x Wᵀ (+ bias) for a random `dtype` weight of shape `(t, k, n, has_bias,
/// accumulate)` and returns the case to check with its weight (kept alive until then); None
/// where the activations are over the device's binding limit, which must be refused.
fn linear_case(
    gpu: &Gpu,
    r: &mut Recorder,
    dtype: DType,
    (t, k, n, has_bias, accumulate): (usize, usize, usize, bool, bool),
    what: String,
    rng: &mut common::Rng,
) -> Option<(Case, Tensor)> {
    let (w, seen) = qweight(gpu, dtype, n, k, rng);
    let (x, bias, y0) = (rng.vec(t * k), rng.vec(n), rng.vec(t * n));
    let (xb, bb, yb) = (up(gpu, &x), up(gpu, &bias), up(gpu, &y0));
    let res = r.linear(&xb, t, &w, has_bias.then_some(&bb), &yb, accumulate);
    if (t * k.max(n) * 4) as u64 > gpu.max_binding {
        assert_refused(&what, res);
        return None;
    }
    res.unwrap_or_else(|e| panic!("{what}: {e}"));
    let mut want = y0;
    cpu_matmul(&x, t, k, &seen, 0..n, has_bias.then_some(&bias[..]), &mut want, n, 0, accumulate);
    Some((Case { what, y: yb, want, k, _keep: vec![xb, bb] }, w))
}

/// Whole-matrix products over awkward shapes: t = 1, 3, 5 and 8 take the matrix-vector kernel
/// (its one-row, four-row and eight-row forms), 17, 33 and 70 the tiled one (one to three
/// 32-row tiles); bias and accumulate vary with the shape. On the tiny-binding devices,
/// activations over the limit must be refused.
#[test]
fn quant_matmul_grid() {
    common::each_gpu_in_parallel(|gpu| {
        let mut split = 0;
        for dtype in QUANT {
            let mut rng = common::Rng::new(301 + dtype.code() as u64);
            let mut r = Recorder::new(gpu);
            let mut cases = Vec::new();
            let mut weights = Vec::new();
            for (ti, &t) in [1, 3, 5, 8, 17, 33, 70].iter().enumerate() {
                for (ki, &k) in ks(dtype, &[32, 96, 576], &[256, 512, 768])
                    .iter()
                    .enumerate()
                {
                    for (ni, &n) in [1, 15, 40, 130].iter().enumerate() {
                        let has_bias = (ti + ki + ni) % 2 == 0;
                        let accumulate = (ti + ni) % 2 == 1;
                        let what = format!(
                            "{}: matmul {dtype:?} t={t} k={k} n={n} bias={has_bias} acc={accumulate}",
                            label(gpu)
                        );
                        let shape = (t, k, n, has_bias, accumulate);
                        if let Some((case, w)) = linear_case(gpu, &mut r, dtype, shape, what, &mut rng) {
                            split += (w.pieces.len() > 1) as usize;
                            cases.push(case);
                            weights.push(w);
                        }
                    }
                }
            }
            r.submit()
                .unwrap_or_else(|e| panic!("{}: submit: {e}", label(gpu)));
            check(gpu, &cases);
        }
        if is_tiny(gpu) {
            assert!(
                split >= 10,
                "{}: only {split} cases on split weights",
                label(gpu)
            );
        }
    });
}

/// Every quantized dtype's products through decode form `form` on `shapes` (t, k, n; given
/// the dtype's block of 32 or 256), with bias and accumulate in turn, against the CPU product.
fn quant_matvec_form(form: MatvecForm, seed: u64, shapes: &(dyn Fn(usize) -> Vec<(usize, usize, usize)> + Sync)) {
    common::each_gpu_in_parallel(|gpu| matvec_form_on(gpu, &QUANT, form, seed, shapes));
}

fn matvec_form_on(gpu: &Gpu, dtypes: &[DType], form: MatvecForm, seed: u64, shapes: &dyn Fn(usize) -> Vec<(usize, usize, usize)>) {
    for &dtype in dtypes {
        let mut rng = common::Rng::new(seed + dtype.code() as u64);
        let mut r = Recorder::new(gpu);
        r.matvec = form;
        let mut cases = Vec::new();
        let mut weights = Vec::new();
        for (ci, (t, k, n)) in shapes(dtype.block().max(32)).into_iter().enumerate() {
            let (has_bias, accumulate) = (ci % 2 == 0, ci % 3 == 1);
            let what = format!("{}: {form:?} matvec {dtype:?} t={t} k={k} n={n}", label(gpu));
            if let Some((case, w)) = linear_case(gpu, &mut r, dtype, (t, k, n, has_bias, accumulate), what, &mut rng) {
                cases.push(case);
                weights.push(w);
            }
        }
        r.submit().unwrap_or_else(|e| panic!("{}: submit: {e}", label(gpu)));
        check(gpu, &cases);
    }
}

/// The GPU-shaped decode product (`MatvecForm::Split`: 16 threads split each column's blocks,
/// then add up in workgroup memory), 1..=64 rows (one, four and eight take different paths;
/// above 8, groups of 8 rows, the last one partial), blocks per row below, at and above the 16
/// lanes and not a multiple of them, columns not a multiple of the workgroup's 4.
#[test]
fn quant_split_matvec() {
    quant_matvec_form(MatvecForm::Split, 557, &|b| {
        let blocks = |n: usize| (n * 32).div_ceil(b) * b;
        vec![(1, blocks(1), 7), (2, blocks(17), 130), (4, blocks(16), 61), (5, blocks(3), 33), (8, blocks(40), 9),
             (1, blocks(33), 66), (9, blocks(5), 13), (21, blocks(2), 70), (64, blocks(1), 6)]
    });
}

/// `MatvecForm::Run`: 2..=63 rows of the types whose scales factor out through the tiled
/// kernel in 8-lane workgroups, a run of 8 rows each (rows past t clamped and dropped, a
/// partial last run; columns past n, a partial last 64-column workgroup, fewer columns than
/// one thread's 8), one row and the other types through the blocked kernel; from 16 rows the
/// vec4 types in runs of 16 rows at any row count, 128 columns a run where `run16_wide` says
/// (576: a partial last one; 384: whole ones; below 16 rows the grouped types over at least
/// `RUN8_WIDE_MIN_COLS`, 4160), the other types from 64 rows through the tiled kernel.
#[test]
fn quant_run_matvec() {
    quant_matvec_form(MatvecForm::Run, 613, &|b| {
        let blocks = |n: usize| (n * 32).div_ceil(b) * b;
        vec![(5, blocks(3), 33), (8, blocks(2), 130), (6, blocks(17), 7), (7, b, 64), (8, blocks(5), 200),
             (4, blocks(2), 19), (2, blocks(3), 67), (1, b, 70), (9, blocks(2), 70), (21, b, 130), (63, b, 9),
             (64, b, 65), (21, blocks(2), 576), (70, b, 384), (13, blocks(2), 4160), (3, b, 576)]
    });
}

/// The run forms with the run-time check of the lane layout kept (`GpuOptions::lane_check`), as
/// on every GPU whose layout is not known in advance; lavapipe's device otherwise skips it
/// (`lanes8_in_order`), and the portable device takes the other path. 8- and 16-row runs of
/// Q4_1 (SmolLM2's type; one type only: these kernels cost a cold shader cache ~10 s each).
#[test]
fn quant_run_matvec_with_the_lane_check() {
    use edgerl::gpu::GpuOptions;
    use edgerl::gpu::pipeline::Subgroups;
    let opts = GpuOptions { backend: Some("vulkan".into()), lane_check: true, ..Default::default() };
    let gpu = match Gpu::new(&opts) {
        Ok(g) if g.features.subgroups => g,
        // No Vulkan device with subgroups here: CI has one (lavapipe).
        _ => return assert!(std::env::var_os("CI").is_none(), "CI's Vulkan device has subgroups"),
    };
    assert!(!gpu.features.lanes8_in_order);
    assert_ne!(gpu.subgroup_form(), Subgroups::EightInOrder);
    matvec_form_on(&gpu, &[DType::Q4_1], MatvecForm::Run, 677, &|b| {
        let blocks = |n: usize| (n * 32).div_ceil(b) * b;
        vec![(5, blocks(3), 33), (8, blocks(2), 200), (21, blocks(2), 576), (70, b, 384)]
    });
}

/// The 16-row runs read x from a copy in a texture of `X_TEXTURE_WIDTH` texels a row
/// (gpu/x_texture.rs): x past one texture row, whole rows plus a part-row (37 × 1056: 4 rows
/// and 1,576 texels; Q4_K / Q5_K's 1280: 5 rows and 1,600) and whole rows only (16 × 2048),
/// so a row of x runs across texture rows; the cases of one recorder share the texture, each
/// copied just before its product.
#[test]
fn quant_run16_x_texture_rows() {
    assert_eq!(edgerl::gpu::x_texture::X_TEXTURE_WIDTH, 2048, "the shapes below straddle its rows");
    quant_matvec_form(MatvecForm::Run, 631, &|b| {
        let blocks = |n: usize| (n * 32).div_ceil(b) * b;
        vec![(37, blocks(33), 130), (16, blocks(64), 70), (20, blocks(2), 9)]
    });
}

/// `MatvecForm::Blocked` at 2..=8 rows (one and two groups of four; `Auto` takes `Run` there on
/// CPU devices, so this keeps the blocked kernel's row groups tested).
#[test]
fn quant_blocked_matvec_two_groups() {
    quant_matvec_form(MatvecForm::Blocked, 619, &|b| {
        let blocks = |n: usize| (n * 32).div_ceil(b) * b;
        vec![(5, blocks(3), 33), (8, blocks(2), 130), (6, blocks(17), 7), (7, b, 64), (3, blocks(2), 19)]
    });
}

/// The workgroup-per-column decode product (`MatvecForm::General`: threads split k, then
/// reduce), 1..=4 rows; 5 rows keep the register-blocked kernel.
#[test]
fn quant_general_matvec() {
    quant_matvec_form(MatvecForm::General, 331, &|b| vec![(1, b, 7), (3, 2 * b, 130), (4, 3 * b, 61), (5, b, 33)]);
}

/// Row sub-ranges written at a column offset into a wider y, straddling pieces on the
/// tiny-binding devices, through both kernels; columns outside the block keep their values.
/// 304 rows: whole groups of 8 on CPU devices, so the runs read Q4_0 / Q4_1 groups whole from
/// ranges starting at a group's start (0, 120, 8) and not from the others (50, 299, 63).
#[test]
fn quant_matmul_row_range_across_pieces() {
    let v = 304;
    // (rows, ldy, n_off)
    let ranges: [(Range<usize>, usize, usize); 6] = [
        (50..140, 97, 4),
        (120..237, 120, 3),
        (0..300, 300, 0),
        (299..300, 3, 1),
        (63..80, 20, 2),
        (8..200, 192, 0),
    ];
    common::each_gpu_in_parallel(|gpu| {
        for dtype in QUANT {
            let k = ks(dtype, &[96], &[256])[0];
            let mut rng = common::Rng::new(401 + dtype.code() as u64);
            let (w, seen) = qweight(gpu, dtype, v, k, &mut rng);
            if is_tiny(gpu) {
                // Q8_0 rows are 108 bytes (37 rows a piece), Q4 rows 60 (68 a piece).
                assert!(pieces_touched(&w, &(50..140)) >= 2, "{dtype:?}: 50..140");
                assert!(pieces_touched(&w, &(120..237)) >= 2, "{dtype:?}: 120..237");
            }
            let bias = rng.vec(v);
            let bb = up(gpu, &bias);
            let mut r = Recorder::new(gpu);
            let mut cases = Vec::new();
            for t in [1, 2, 7, 9, 21] {
                let x = rng.vec(t * k);
                for (rows, ldy, n_off) in &ranges {
                    for (has_bias, acc) in [(false, false), (true, true)] {
                        let what = format!(
                            "{}: matmul {dtype:?} t={t} rows {rows:?} ldy={ldy} n_off={n_off} bias={has_bias} acc={acc}",
                            label(gpu)
                        );
                        let y0: Vec<f32> = (0..t * ldy).map(|i| 100.0 + i as f32).collect();
                        let (xb, yb) = (up(gpu, &x), up(gpu, &y0));
                        let b = has_bias.then_some(&bb);
                        let res = r.matmul(&xb, t, &w, rows.clone(), b, &yb, *ldy, *n_off, acc);
                        if (t * ldy.max(&k) * 4) as u64 > gpu.max_binding {
                            assert_refused(&what, res);
                            continue;
                        }
                        res.unwrap_or_else(|e| panic!("{what}: {e}"));
                        let mut want = y0;
                        let b = has_bias.then_some(&bias[..]);
                        cpu_matmul(
                            &x,
                            t,
                            k,
                            &seen,
                            rows.clone(),
                            b,
                            &mut want,
                            *ldy,
                            *n_off,
                            acc,
                        );
                        cases.push(Case {
                            what,
                            y: yb,
                            want,
                            k,
                            _keep: vec![xb],
                        });
                    }
                }
            }
            r.submit().unwrap();
            check(gpu, &cases);
        }
    });
}

/// Embedding rows from several pieces: a conversion, so bit-exact against `dequantize`.
#[test]
fn quant_embed_across_pieces() {
    // (vocab, d, ids); t · d · 4 stays within the tiny limit.
    let cases: [(usize, usize, Vec<u32>); 3] = [
        (
            200,
            64,
            vec![0, 199, 36, 37, 67, 68, 135, 136, 100, 0, 73, 74],
        ),
        (
            3000,
            32,
            vec![2999, 112, 113, 0, 1023, 1024, 2048, 226, 227],
        ),
        (80, 96, vec![0, 36, 37, 67, 68, 79, 5, 74]),
    ];
    // Super-block rows are 256 or 512 wide (Q4_K: 28 or 14 rows a 4096-byte piece, Q5_K 23 or
    // 11, Q2_K 48 or 24, Q3_K 36 or 18, Q6_K 19 or 9, IQ4_XS 30 or 15).
    let cases_k: [(usize, usize, Vec<u32>); 3] = [
        (200, 256, vec![199, 27, 28, 0]),
        (60, 512, vec![59, 14]),
        (3000, 256, vec![2999, 1024, 1035, 3]),
    ];
    common::each_gpu_in_parallel(|gpu| {
        for dtype in QUANT {
            let mut rng = common::Rng::new(501 + dtype.code() as u64);
            let mut r = Recorder::new(gpu);
            let mut out = Vec::new();
            let cases = if dtype.block() == 256 {
                &cases_k
            } else {
                &cases
            };
            for (v, d, ids) in cases {
                let (table, seen) = qweight(gpu, dtype, *v, *d, &mut rng);
                let what = format!(
                    "{}: embed {dtype:?} V={v} d={d} pieces={}",
                    label(gpu),
                    table.pieces.len()
                );
                let t = ids.len();
                let ib = gpu.upload(bytemuck::cast_slice(ids), "ids").unwrap();
                let ob = up(gpu, &vec![f32::NAN; t * d]);
                r.embed(&ib, t, &table, &ob).unwrap();
                let want: Vec<f32> = ids
                    .iter()
                    .flat_map(|&id| seen[id as usize * d..][..*d].to_vec())
                    .collect();
                out.push((what, ob, want, ib, table));
            }
            r.submit().unwrap();
            for (what, ob, want, _, table) in &out {
                if is_tiny(gpu) {
                    assert!(table.pieces.len() > 1, "{what}: should be split");
                }
                let got = gpu.read_f32(ob, want.len()).unwrap();
                for (i, (g, w)) in got.iter().zip(want).enumerate() {
                    assert_eq!(g.to_bits(), w.to_bits(), "{what}: element {i}: {g} vs {w}");
                }
            }
        }
    });
}

/// dx[t, :] (+)= Σ_j dy[t, j] · W[rows.start + j, :], in f64.
#[allow(clippy::too_many_arguments)]
fn cpu_backward(
    dy: &[f32],
    t: usize,
    ldy: usize,
    w: &[f32],
    k: usize,
    rows: Range<usize>,
    dx: &mut [f32],
    acc: bool,
) {
    for i in 0..t {
        for c in 0..k {
            let mut s: f64 = rows
                .clone()
                .enumerate()
                .map(|(j, r)| dy[i * ldy + j] as f64 * w[r * k + c] as f64)
                .sum();
            if acc {
                s += dx[i * k + c] as f64;
            }
            dx[i * k + c] = s as f32;
        }
    }
}

/// The input gradient through quantized weights, over pieces, against the CPU dy · W.
#[test]
fn quant_matmul_backward_input() {
    // (t, k, weight rows, row range, ldy)
    let shapes: [(usize, usize, usize, Range<usize>, usize); 12] = [
        (1, 576, 130, 0..130, 130),
        (5, 96, 130, 20..111, 95),
        (3, 32, 300, 0..300, 300),
        (3, 96, 40, 7..40, 33),
        (17, 32, 15, 0..15, 15),
        // The register-blocked kernels (ldy and the first dy column multiples of 4) over
        // several 8-row threads and 64-row tiles, t and n not multiples of 8 and 4.
        (70, 96, 130, 0..130, 132),
        (19, 576, 45, 0..45, 48),
        // The scale-factored kernel sums 8 weight rows a chunk: n % 8 == 4 leaves a last chunk
        // whose second half lies wholly past n (and past the end of dy on its last row).
        (70, 96, 60, 0..60, 60),
        // Weights in groups of 8 rows on CPU devices (`Tensor::group`): ranges of whole groups
        // (read by the half-runs together, `takes_rows4_group`) from row 0 and from row 8, one
        // from a group's start whose last chunk is cut short, and one from mid-group.
        (70, 96, 64, 0..64, 64),
        (37, 96, 64, 8..60, 52),
        (37, 96, 64, 8..56, 48),
        (21, 64, 48, 4..48, 44),
    ];
    // The super-block types: the same shapes over 256 elements (576 → 512, 96 and 32 → 256).
    let shapes_k: [(usize, usize, usize, Range<usize>, usize); 9] = [
        (1, 512, 130, 0..130, 130),
        (5, 256, 130, 20..111, 95),
        (3, 256, 300, 0..300, 300),
        (3, 512, 40, 7..40, 33),
        (17, 256, 15, 0..15, 15),
        (2, 256, 64, 3..60, 57),
        (70, 512, 130, 0..130, 132),
        (19, 768, 45, 0..45, 48),
        (70, 256, 60, 0..60, 60),
    ];
    common::each_gpu_in_parallel(|gpu| {
        for dtype in QUANT {
            let mut rng = common::Rng::new(601 + dtype.code() as u64);
            let mut r = Recorder::new(gpu);
            let mut cases = Vec::new();
            let shapes: &[_] = if dtype.block() == 256 {
                &shapes_k
            } else {
                &shapes
            };
            for (t, k, n, rows, ldy) in shapes {
                let (t, k, ldy) = (*t, *k, *ldy);
                let (w, seen) = qweight(gpu, dtype, *n, k, &mut rng);
                for acc in [false, true] {
                    let what = format!(
                        "{}: matmul_backward_input {dtype:?} t={t} k={k} rows {rows:?} acc={acc} pieces={}",
                        label(gpu),
                        pieces_touched(&w, rows)
                    );
                    let dy = rng.vec(t * ldy);
                    let dx0 = rng.vec(t * k);
                    let (dyb, dxb) = (up(gpu, &dy), up(gpu, &dx0));
                    let res = r.matmul_backward_input(&dyb, t, ldy, &w, rows.clone(), &dxb, acc);
                    if (t * k.max(ldy) * 4) as u64 > gpu.max_binding {
                        assert_refused(&what, res);
                        continue;
                    }
                    res.unwrap_or_else(|e| panic!("{what}: {e}"));
                    let mut want = dx0;
                    cpu_backward(&dy, t, ldy, &seen, k, rows.clone(), &mut want, acc);
                    cases.push(Case {
                        what,
                        y: dxb,
                        want,
                        k: rows.len(),
                        _keep: vec![dyb],
                    });
                }
                if is_tiny(gpu) && *n >= 130 {
                    assert!(pieces_touched(&w, rows) >= 2, "{dtype:?} {n}×{k}: split");
                }
            }
            r.submit().unwrap();
            check(gpu, &cases);
        }
    });
}

/// Quantized rows must be whole blocks of 32; byte counts are in the file layout.
#[test]
fn quant_rows_need_whole_blocks() {
    let gpu = &common::backends().normal[0];
    for dtype in QUANT {
        // bl = 32 (the super-block types: 256).
        let bl = dtype.block();
        assert_eq!(
            dtype.row_bytes(2 * bl).unwrap(),
            2 * dtype.gpu_block_bytes()
        );
        assert_eq!(
            dtype.file_row_bytes(2 * bl).unwrap(),
            2 * dtype.file_block_bytes()
        );
        let bytes = vec![0u8; 2 * dtype.file_block_bytes()];
        for (rows, cols) in [(2, 3 * bl / 2), (1, 2 * bl + 7), (4, bl / 2)] {
            let err = Tensor::from_bytes(gpu, "odd", dtype, rows, cols, &bytes).unwrap_err();
            let msg = err.to_string();
            assert!(
                matches!(err, Error::Invalid(_)) && msg.contains(&format!("multiple of {bl}")),
                "{dtype:?} {rows}×{cols}: {msg}"
            );
        }
        assert!(matches!(dtype.row_bytes(bl + 1), Err(Error::Invalid(_))));
        assert!(matches!(
            Tensor::rows_per_piece(bl + 8, dtype, 4096),
            Err(Error::Invalid(_))
        ));
        // Whole blocks, wrong count (a GPU-layout length is not a file-layout one).
        let gpu_len = vec![0u8; 2 * dtype.gpu_block_bytes()];
        if dtype.gpu_block_bytes() != dtype.file_block_bytes() {
            let res = Tensor::from_bytes(gpu, "w", dtype, 2, bl, &gpu_len);
            assert!(matches!(res, Err(Error::Invalid(_))), "{dtype:?}: {res:?}");
        }
        // And the right count uploads the GPU layout.
        let w = Tensor::from_bytes(gpu, "w", dtype, 2, bl, &bytes).unwrap();
        assert_eq!(w.bytes(), 2 * dtype.gpu_block_bytes() as u64);
    }
}

/// gguf-py's blocks of the type named `name` (tests/fixtures/gguf/quant_blocks.json): their
/// bytes and the bits of the values it decodes them to.
fn gguf_py_fixture(name: &str) -> (Vec<u8>, Vec<u32>) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/gguf/quant_blocks.json"
    );
    let f: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let case = f["types"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap();
    let hex = case["bytes"].as_str().unwrap().as_bytes();
    let bytes = hex
        .chunks(2)
        .map(|h| u8::from_str_radix(std::str::from_utf8(h).unwrap(), 16).unwrap())
        .collect();
    let bits = case["bits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_u64().unwrap() as u32)
        .collect();
    (bytes, bits)
}

/// gguf-py's Q5_0 bytes, repacked and decoded on the GPU, give gguf-py's values: bit for bit
/// through the embedding gather (`load_w`), and equal through the register-blocked products
/// (one-hot x rows pick single weights: the matrix-vector forms for t = 1 and 8, the tiled one
/// for t = 32).
#[test]
fn q5_0_gguf_py_blocks_decode_on_gpu() {
    blocks_decode_on_gpu("Q5_0", DType::Q5_0);
}

/// Q5_1 likewise (Q5_0's fifth bits, Q4_1's minimum).
#[test]
fn q5_1_gguf_py_blocks_decode_on_gpu() {
    blocks_decode_on_gpu("Q5_1", DType::Q5_1);
}

/// IQ4_NL likewise (Q4_0's nibbles as codes of the non-linear table).
#[test]
fn iq4_nl_gguf_py_blocks_decode_on_gpu() {
    blocks_decode_on_gpu("IQ4_NL", DType::IQ4_NL);
}

fn blocks_decode_on_gpu(name: &str, dtype: DType) {
    let (bytes, bits) = gguf_py_fixture(name);
    let n = bytes.len() / dtype.file_block_bytes();
    assert_eq!(bits.len(), n * 32);
    let cpu = quant::dequantize(dtype, &bytes).unwrap();
    assert!(cpu.iter().zip(&bits).all(|(v, b)| v.to_bits() == *b));
    common::each_gpu_in_parallel(|gpu| {
        let w = Tensor::from_bytes(gpu, "w", dtype, n, 32, &bytes).unwrap();
        let mut r = Recorder::new(gpu);
        let ids: Vec<u32> = (0..n as u32).rev().collect();
        let ib = gpu.upload(bytemuck::cast_slice(&ids), "ids").unwrap();
        let ob = up(gpu, &vec![f32::NAN; n * 32]);
        r.embed(&ib, n, &w, &ob).unwrap();
        let mut prods = Vec::new();
        for t in [1, 8, 32] {
            let x: Vec<f32> = (0..t * 32)
                .map(|i| (i % 32 == i / 32) as u32 as f32)
                .collect();
            let (xb, yb) = (up(gpu, &x), up(gpu, &vec![f32::NAN; t * n]));
            r.linear(&xb, t, &w, None, &yb, false).unwrap();
            prods.push((t, xb, yb));
        }
        r.submit().unwrap();
        let got = gpu.read_f32(&ob, n * 32).unwrap();
        for (i, g) in got.iter().enumerate() {
            let want = bits[(n - 1 - i / 32) * 32 + i % 32];
            assert_eq!(g.to_bits(), want, "{}: embed element {i}", label(gpu));
        }
        for (t, _, yb) in &prods {
            let y = gpu.read_f32(yb, t * n).unwrap();
            for (i, g) in y.iter().enumerate() {
                let want = f32::from_bits(bits[(i % n) * 32 + i / n]);
                assert_eq!(*g, want, "{}: t={t} y[{}, {}]", label(gpu), i / n, i % n);
            }
        }
    });
}

/// gguf-py's Q4_K super-blocks (three rows of 256), repacked and decoded on the GPU, give
/// gguf-py's values: bit for bit through the embedding gather, and equal through the products,
/// whose one-hot x rows pick columns in every sub-block and both nibble halves (t = 1 and 8:
/// the matrix-vector forms; t = 256, every column: the tiled one, where bindings allow).
#[test]
fn q4_k_gguf_py_blocks_decode_on_gpu() {
    super_blocks_decode_on_gpu("Q4_K", DType::Q4_K);
}

/// Q6_K likewise (two scales per 32-element step).
#[test]
fn q6_k_gguf_py_blocks_decode_on_gpu() {
    super_blocks_decode_on_gpu("Q6_K", DType::Q6_K);
}

/// Q5_K likewise (Q4_K's with fifth bits from qh).
#[test]
fn q5_k_gguf_py_blocks_decode_on_gpu() {
    super_blocks_decode_on_gpu("Q5_K", DType::Q5_K);
}

/// Q2_K likewise (a 4-bit scale and min per 16 elements).
#[test]
fn q2_k_gguf_py_blocks_decode_on_gpu() {
    super_blocks_decode_on_gpu("Q2_K", DType::Q2_K);
}

/// Q3_K likewise (6-bit signed scales per 16 elements, third bits from hmask).
#[test]
fn q3_k_gguf_py_blocks_decode_on_gpu() {
    super_blocks_decode_on_gpu("Q3_K", DType::Q3_K);
}

/// IQ4_XS likewise (IQ4_NL's codes, a 6-bit signed scale per 32 elements).
#[test]
fn iq4_xs_gguf_py_blocks_decode_on_gpu() {
    super_blocks_decode_on_gpu("IQ4_XS", DType::IQ4_XS);
}

fn super_blocks_decode_on_gpu(name: &str, dtype: DType) {
    let (bytes, bits) = gguf_py_fixture(name);
    let n = bytes.len() / dtype.file_block_bytes();
    assert_eq!(bits.len(), n * 256);
    let cpu = quant::dequantize(dtype, &bytes).unwrap();
    assert!(cpu.iter().zip(&bits).all(|(v, b)| v.to_bits() == *b));
    common::each_gpu_in_parallel(|gpu| {
        let w = Tensor::from_bytes(gpu, "w", dtype, n, 256, &bytes).unwrap();
        let mut r = Recorder::new(gpu);
        let ids: Vec<u32> = (0..n as u32).rev().collect();
        let ib = gpu.upload(bytemuck::cast_slice(&ids), "ids").unwrap();
        let ob = up(gpu, &vec![f32::NAN; n * 256]);
        r.embed(&ib, n, &w, &ob).unwrap();
        let mut prods = Vec::new();
        for t in [1, 8, 256] {
            // Row i of x picks column col(i).
            let col = move |i: usize| if t == 256 { i } else { (i * 37 + 200) % 256 };
            if (t * 256 * 4) as u64 > gpu.max_binding {
                continue;
            }
            let x: Vec<f32> = (0..t * 256)
                .map(|e| (e % 256 == col(e / 256)) as u32 as f32)
                .collect();
            let (xb, yb) = (up(gpu, &x), up(gpu, &vec![f32::NAN; t * n]));
            r.linear(&xb, t, &w, None, &yb, false).unwrap();
            prods.push((t, col, xb, yb));
        }
        // The input gradient with one-hot dy rows: dx row i is weight row i % n (ldy a multiple
        // of 4 so the register-blocked kernel takes it; t = 9: more than one 8-row thread).
        let ldy = n.next_multiple_of(4);
        let mut grads = Vec::new();
        for t in [1, 3, 9] {
            if (t * 256 * 4) as u64 > gpu.max_binding {
                continue;
            }
            let dy: Vec<f32> = (0..t * ldy)
                .map(|e| (e % ldy == (e / ldy) % n) as u32 as f32)
                .collect();
            let (dyb, dxb) = (up(gpu, &dy), up(gpu, &vec![f32::NAN; t * 256]));
            r.matmul_backward_input(&dyb, t, ldy, &w, 0..n, &dxb, false)
                .unwrap();
            grads.push((t, dyb, dxb));
        }
        r.submit().unwrap();
        for (t, _, dxb) in &grads {
            let dx = gpu.read_f32(dxb, t * 256).unwrap();
            for (i, g) in dx.iter().enumerate() {
                let want = f32::from_bits(bits[(i / 256 % n) * 256 + i % 256]);
                assert_eq!(
                    *g,
                    want,
                    "{}: t={t} dx[{}, {}]",
                    label(gpu),
                    i / 256,
                    i % 256
                );
            }
        }
        let got = gpu.read_f32(&ob, n * 256).unwrap();
        for (i, g) in got.iter().enumerate() {
            let want = bits[(n - 1 - i / 256) * 256 + i % 256];
            assert_eq!(g.to_bits(), want, "{}: embed element {i}", label(gpu));
        }
        for (t, col, _, yb) in &prods {
            let y = gpu.read_f32(yb, t * n).unwrap();
            for (i, g) in y.iter().enumerate() {
                let (row, j) = (i / n, i % n);
                let want = f32::from_bits(bits[j * 256 + col(row)]);
                assert_eq!(*g, want, "{}: t={t} y[{row}, {j}]", label(gpu));
            }
        }
    });
}

/// Q6_K and Q3_K (their products take the scales out of 16-element sums, the quants centred by
/// a flipped top bit) from random bytes, so every quant and scale value occurs, q = 0 and the
/// largest included (`quant::quantize` leaves some out): the forward product and the input
/// gradient on three super-blocks a row, t and n not multiples of 8, against the CPU dy · W.
#[test]
fn centred_super_blocks_from_random_bytes() {
    let (t, k, n, ldy) = (70, 768, 130, 132);
    for gpu in common::all_gpus().filter(|g| !is_tiny(g)) {
        for dtype in [DType::Q6_K, DType::Q3_K] {
            let mut rng = common::Rng::new(701 + dtype.code() as u64);
            let fb = dtype.file_block_bytes();
            let mut bytes: Vec<u8> = (0..n * k / 256 * fb)
                .map(|_| rng.next_u32() as u8)
                .collect();
            for (i, b) in bytes.chunks_exact_mut(fb).enumerate() {
                // d (the last two bytes) of either sign, so the values stay about 1.
                let d = half::f16::from_f32((if i % 3 == 0 { -1.0 } else { 1.0 }) / 2048.0);
                b[fb - 2..].copy_from_slice(&d.to_le_bytes());
            }
            let seen = quant::dequantize(dtype, &bytes).unwrap();
            let w = Tensor::from_bytes(gpu, "w", dtype, n, k, &bytes).unwrap();
            let x = rng.vec(t * k);
            let dy = rng.vec(t * ldy);
            let (xb, yb) = (up(gpu, &x), up(gpu, &vec![f32::NAN; t * n]));
            let (dyb, dxb) = (up(gpu, &dy), up(gpu, &vec![f32::NAN; t * k]));
            let mut r = Recorder::new(gpu);
            r.linear(&xb, t, &w, None, &yb, false).unwrap();
            r.matmul_backward_input(&dyb, t, ldy, &w, 0..n, &dxb, false)
                .unwrap();
            r.submit().unwrap();
            let mut want = vec![0.0; t * n];
            cpu_matmul(&x, t, k, &seen, 0..n, None, &mut want, n, 0, false);
            let (atol, rtol) = tol(k);
            let y = gpu.read_f32(&yb, t * n).unwrap();
            common::assert_close(
                &format!("{}: {dtype:?} y", label(gpu)),
                &y,
                &want,
                atol,
                rtol,
            );
            let mut want = vec![0.0; t * k];
            cpu_backward(&dy, t, ldy, &seen, k, 0..n, &mut want, false);
            let (atol, rtol) = tol(n);
            let dx = gpu.read_f32(&dxb, t * k).unwrap();
            common::assert_close(
                &format!("{}: {dtype:?} dx", label(gpu)),
                &dx,
                &want,
                atol,
                rtol,
            );
        }
    }
}

/// `Recorder::linear_lora`: y (+)= x Wᵀ + bias + scale · u Bᵀ, the LoRA term added by the
/// register-blocked kernels as they store y (`MatvecForm::Run` at 2..=63 rows, and from 16 rows
/// for the vec4 types, wide at 576 columns (below 16 rows the grouped types, at 4160); the tiled kernel above; weight pieces on the tiny-binding devices: B's rows follow the piece), by
/// the decode kernels as they store (one row, `Blocked` up to 8; any segments) and by a
/// separate product after the others (`Split`, `General`); float weights (`matmul_f` above 8
/// rows) as well. Stacked terms (`LoraTerm::segs`) too.
#[test]
fn quant_linear_lora() {
    common::each_gpu_in_parallel(|gpu| {
        for dtype in QUANT.into_iter().chain([DType::F32, DType::F16]) {
            let mut rng = common::Rng::new(877 + dtype.code() as u64);
            let mut cases = Vec::new();
            let mut weights = Vec::new();
            let shapes = [(MatvecForm::Auto, 6, 3), (MatvecForm::Auto, 21, 16), (MatvecForm::Auto, 70, 5),
                          (MatvecForm::Auto, 3, 8), (MatvecForm::Auto, 1, 8), (MatvecForm::Split, 9, 4),
                          (MatvecForm::General, 2, 1), (MatvecForm::Auto, 37, 7), (MatvecForm::Auto, 5, 4),
                          (MatvecForm::Blocked, 6, 4), (MatvecForm::Blocked, 7, 3), (MatvecForm::Auto, 1, 5)];
            for (ci, (form, t, r)) in shapes.into_iter().enumerate() {
                let mut rec = Recorder::new(gpu);
                rec.matvec = form;
                // The wide runs on CPU devices (`kernels::run16_wide`): 37 rows over 576 columns;
                // 5 rows (of the grouped types) over 4160 (`RUN8_WIDE_MIN_COLS`).
                let n = match t {
                    37 => 576,
                    5 => 4160,
                    _ => 130,
                };
                let k = ks(dtype, &[64], &[256])[0];
                let (has_bias, accumulate) = (ci % 2 == 0, ci % 3 != 1);
                let what = format!("{}: {form:?} linear_lora {dtype:?} t={t} k={k} n={n} r={r}", label(gpu));
                let (w, seen) = qweight(gpu, dtype, n, k, &mut rng);
                let (x, bias, y0) = (rng.vec(t * k), rng.vec(n), rng.vec(t * n));
                // u of one adapter, or (a stacked product) of several side by side, row stride
                // ld: output rows from segs[0] read u's next r columns, from segs[1] the r after.
                // Segments on 64-column tiles take the register-blocked kernels' term (wide
                // tiles at 576 columns straddle two); others, a product per segment.
                let (ld, segs) = match (ci % 3, n) {
                    (0, _) => (r, [usize::MAX; 2]),
                    (1, _) => (3 * r, [64, 128]),
                    (_, 4160) => (2 * r, [0, usize::MAX]),
                    _ => (3 * r + 1, [n / 3, 2 * n / 3]),
                };
                let what = format!("{what} ld={ld} segs={segs:?}");
                let (u, b) = (rng.vec(t * ld), rng.vec(n * r));
                let (xb, bb, yb, ub, lb) = (up(gpu, &x), up(gpu, &bias), up(gpu, &y0), up(gpu, &u), up(gpu, &b));
                let scale = 0.75;
                let term = edgerl::gpu::LoraTerm { u: &ub, b: &lb, r, scale, ld, segs };
                let res = rec.linear_lora(&xb, t, &w, has_bias.then_some(&bb), term, &yb, accumulate);
                // x, y, B and u each in one binding (the weight is cut into pieces).
                if [t * k, t * n, n * r, t * ld].iter().any(|&e| (e * 4) as u64 > gpu.max_binding) {
                    assert_refused(&what, res);
                    continue;
                }
                res.unwrap_or_else(|e| panic!("{what}: {e}"));
                rec.submit().unwrap_or_else(|e| panic!("{what}: submit: {e}"));
                let mut want = y0;
                cpu_matmul(&x, t, k, &seen, 0..n, has_bias.then_some(&bias[..]), &mut want, n, 0, accumulate);
                for i in 0..t {
                    for j in 0..n {
                        let col = segs.iter().filter(|&&s| j >= s).count() * r;
                        let d: f32 = (0..r).map(|l| u[i * ld + col + l] * b[j * r + l]).sum();
                        want[i * n + j] += scale * d;
                    }
                }
                cases.push(Case { what, y: yb, want, k, _keep: vec![xb, bb, ub, lb] });
                weights.push(w);
            }
            check(gpu, &cases);
        }
    });
}

/// On CPU devices the quantized types store each 8 rows' blocks (super-blocks) side by side
/// (`Tensor::group`; the products above read them so), where the groups fill every piece; row
/// counts or pieces that are not whole groups keep row order. The
/// groups change no result: the byte layout is checked against a reordering of the plain one.
#[test]
fn weight_groups_on_cpu_devices() {
    for gpu in common::all_gpus() {
        let cpu = gpu.adapter.device_type == "Cpu";
        let mut rng = common::Rng::new(97);
        let mut grouped = 0;
        let mut textures = 0;
        for (dtype, rows, cols) in [(DType::Q4_1, 40, 64), (DType::Q8_0, 16, 96), (DType::Q4_1, 15, 64), (DType::Q4_K, 16, 256)] {
            let (w, _) = qweight(gpu, dtype, rows, cols, &mut rng);
            let whole = w.pieces.iter().all(|p| p.rows % 8 == 0);
            let want = if cpu && rows % 8 == 0 && whole { 8 } else { 1 };
            assert_eq!(w.group, want, "{}: {dtype:?} {rows}×{cols} in {} pieces", label(gpu), w.pieces.len());
            if w.group == 1 {
                continue;
            }
            grouped += 1;
            // Piece bytes: block (super-block) kb of row r at ((r − r % 8) · nb + 8 kb + r % 8).
            let vals = rng.vec(rows * cols);
            let bytes = quant::quantize(dtype, &vals).unwrap();
            let w = Tensor::from_bytes(gpu, "w", dtype, rows, cols, &bytes).unwrap();
            let nb = cols / dtype.block();
            let bb = dtype.row_bytes(cols).unwrap() / nb;
            for p in &w.pieces {
                // Lavapipe's Vulkan device (subgroups) holds the types read as vec4s in
                // textures, the others (GL, portable kernels) in buffers: both are read back.
                let tex = matches!(*p.buf, edgerl::gpu::tensor::PieceStore::Texture(_));
                assert_eq!(tex, gpu.weight_textures(dtype), "{}: {dtype:?}", label(gpu));
                textures += tex as usize;
                let plain = quant::repack(dtype, &bytes[p.row_start * bytes.len() / rows..(p.row_start + p.rows) * bytes.len() / rows]).unwrap();
                let got = gpu.read_piece(&p.buf).unwrap();
                for r in 0..p.rows {
                    for kb in 0..nb {
                        let at = ((r - r % 8) * nb + 8 * kb + r % 8) * bb;
                        assert_eq!(&got[at..at + bb], &plain[(r * nb + kb) * bb..][..bb], "{}: row {r} block {kb}", label(gpu));
                    }
                }
            }
        }
        // Lavapipe and llvmpipe, this project's CI devices, are CPU devices.
        assert!(!cpu || grouped >= 1, "{}: no grouped weights", label(gpu));
        let off = std::env::var_os("EDGERL_WEIGHT_TEXTURES_OFF").is_some();
        assert!(off || !(cpu && gpu.features.subgroups) || textures >= 1, "{}: no weight textures", label(gpu));
    }
}
