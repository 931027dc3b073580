//! The LoRA products and their gradients: `Recorder::gemm` over shaders/gemm.wgsl, a general
//! strided f32 product (`gemm`, 4 × 4 outputs a thread) with a vec4 form for 4-aligned layouts
//! (`gemm_v4`, 8 × 8). Checked before anything is recorded, as the other wrappers
//! (backward.rs's argument checks).

use bytemuck::{Pod, Zeroable};

use super::backward::{distinct_outputs, fit_u32, need};
use super::kernels::{Kernel, Recorder};
use super::device::Gpu;
use super::memory::GpuBuffer;
use crate::error::{Error, Result};

// The WGSL struct of the same name mirrors it field by field.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
pub struct GemmParams {
    pub m: u32,
    pub n: u32,
    pub k: u32,
    pub a_off: u32,
    pub a_rs: u32,
    pub a_cs: u32,
    pub b_off: u32,
    pub b_rs: u32,
    pub b_cs: u32,
    pub c_off: u32,
    pub ldc: u32,
    pub alpha: f32,
    pub accumulate: u32,
    /// `gemm` / `gemm_v4`: threads along i a workgroup uses (the rest return at once); 0: all
    /// of them (`gemm_groups`).
    pub wg_rows: u32,
    pub _pad1: u32,
    pub _pad2: u32,
}

/// Whether `gemm_v4` (shaders/gemm.wgsl) can read this product's operands as vec4s, and how:
/// (A contiguous along p rather than along i, B along p rather than along j). Everything it
/// reads as a vec4 must start on a multiple of 4 elements.
fn gemm_vec4_layout(p: &GemmParams) -> Option<(bool, bool)> {
    let on4 = |v: u32| v % 4 == 0;
    if !(on4(p.n) && on4(p.c_off) && on4(p.ldc) && on4(p.a_off) && on4(p.b_off)) {
        return None;
    }
    let a_along_p = p.a_cs == 1 && on4(p.a_rs);
    let a_along_i = p.a_rs == 1 && on4(p.a_cs) && on4(p.m);
    let b_along_p = p.b_rs == 1 && on4(p.b_cs);
    let b_along_j = p.b_cs == 1 && on4(p.b_rs);
    if !(a_along_p || a_along_i) || !(b_along_p || b_along_j) {
        return None;
    }
    // Along p the loop takes 4 p's at a time; only the along-i × along-j form takes any k.
    if (a_along_p || b_along_p) && !on4(p.k) {
        return None;
    }
    Some((a_along_p, b_along_p))
}

/// `gemm_splitk` takes products of at most this many rows of A (WGSL `SPLITK_ROWS`), ...
pub const GEMM_SPLITK_MAX_ROWS: usize = 8;
/// ... at most this many columns (a workgroup each: the LoRA rank) ...
pub const GEMM_SPLITK_MAX_COLS: usize = 64;
/// ... over at least this many terms (below, `gemm`'s threads loop over k well enough).
pub const GEMM_SPLITK_MIN_K: usize = 128;

/// Threads of a `gemm_splitk` workgroup per column of C (WGSL `SPLITK_SLICES`): on a CPU device
/// 8 (eight columns a workgroup: fewer workgroups and barrier steps, measured on lavapipe), else
/// 64 (a column a workgroup).
pub(crate) fn splitk_slices(gpu: &Gpu) -> usize {
    if gpu.adapter.device_type == format!("{:?}", wgpu::DeviceType::Cpu) { 8 } else { 64 }
}

/// Workgroups of a `gemm` / `gemm_v4` dispatch, (along n, along m, `wg_rows`): 64 threads of
/// `bs` × `bs` outputs, `tj` of them along n (WGSL `gemm_threads_j_block`), the rest along m.
/// On CPU devices a workgroup may use fewer rows of threads (`wg_rows`, whole runs of 8 lanes:
/// lavapipe's SIMD width) so that a product of many rows and few columns (the LoRA x·Aᵀ of a
/// training pack: 273 × 16 is 2 workgroups of 256 and 17 rows) gets `GEMM_CPU_GROUPS`
/// workgroups: lavapipe hands each thread a contiguous run of workgroups, so with two the
/// slower thread did nearly all of it.
fn gemm_groups(m: usize, n: usize, bs: usize, cpu: bool) -> (usize, usize, usize) {
    let p2 = |v: usize| v.div_ceil(bs).max(1).next_power_of_two().min(64);
    let (ti, tj) = (p2(m), p2(n));
    let tj = if ti * tj <= 64 {
        64 / ti
    } else if tj < 8 {
        tj
    } else if ti < 8 {
        64 / ti
    } else {
        8
    };
    let gx = n.div_ceil(bs * tj);
    let mut rows = 64 / tj;
    if cpu {
        let run = (8 / tj).max(1); // thread rows in a run of 8 lanes
        let along_m = GEMM_CPU_GROUPS.div_ceil(gx);
        let want = m.div_ceil(bs).div_ceil(along_m).div_ceil(run) * run;
        rows = rows.min(want.max(run));
    }
    let wg_rows = if rows == 64 / tj { 0 } else { rows };
    (gx, m.div_ceil(bs * rows), wg_rows)
}

/// Workgroups `gemm_groups` aims for on CPU devices (where m allows).
const GEMM_CPU_GROUPS: usize = 16;

impl Recorder<'_> {
    /// C[c_off + i*ldc + j] (+)= alpha * Σ_p A[a_off + i*a_rs + p*a_cs] * B[b_off + p*b_rs + j*b_cs]
    /// for i < m, j < n, p < k. All f32, strides in elements, so either operand can be read
    /// transposed (x·Aᵀ, dyᵀ·u, du·A, … for LoRA). With `accumulate` adds into C, otherwise
    /// overwrites (k = 0 then writes zeros). C must not be A or B.
    #[allow(clippy::too_many_arguments)]
    pub fn gemm(
        &mut self,
        a: &GpuBuffer,
        a_off: usize,
        a_rs: usize,
        a_cs: usize,
        b: &GpuBuffer,
        b_off: usize,
        b_rs: usize,
        b_cs: usize,
        c: &GpuBuffer,
        c_off: usize,
        ldc: usize,
        m: usize,
        n: usize,
        k: usize,
        alpha: f32,
        accumulate: bool,
    ) -> Result<()> {
        distinct_outputs("gemm", &[c], &[a, b, c])?;
        self.fits_all("gemm", &[a, b, c])?;
        if m == 0 || n == 0 {
            return Ok(());
        }
        let last = |off: usize, rs: usize, cs: usize, r: usize, q: usize| {
            (off + (r - 1) * rs + (q - 1) * cs) as u64
        };
        if k > 0 {
            need("gemm A", a, last(a_off, a_rs, a_cs, m, k) + 1)?;
            need("gemm B", b, last(b_off, b_rs, b_cs, k, n) + 1)?;
        }
        need("gemm C", c, last(c_off, ldc, 1, m, n) + 1)?;
        if m > 1 && ldc < n {
            return Err(Error::Invalid(format!(
                "gemm: ldc {ldc} < n {n} makes rows of C overlap"
            )));
        }
        let u = |v: usize| fit_u32("gemm", v as u64);
        let params = GemmParams {
            m: u(m)?,
            n: u(n)?,
            k: u(k)?,
            a_off: u(a_off)?,
            a_rs: u(a_rs)?,
            a_cs: u(a_cs)?,
            b_off: u(b_off)?,
            b_rs: u(b_rs)?,
            b_cs: u(b_cs)?,
            c_off: u(c_off)?,
            ldc: u(ldc)?,
            alpha,
            accumulate: accumulate as u32,
            wg_rows: 0,
            _pad1: 0,
            _pad2: 0,
        };
        // A few rows over a long k (the LoRA x·Aᵀ of decoding rows): a workgroup a column
        // splitting k; with every operand along p, a vec4 at a time, and on CPU devices 8 lanes
        // a workgroup for 8 columns (`gemm_lanes_v4`).
        if m <= GEMM_SPLITK_MAX_ROWS && n <= GEMM_SPLITK_MAX_COLS && k >= GEMM_SPLITK_MIN_K {
            let on4 = |v: usize| v % 4 == 0;
            let vec4 = a_cs == 1 && b_rs == 1 && [k, a_off, a_rs, b_off, b_cs].into_iter().all(on4);
            if vec4 && self.gemm_lanes {
                let g = super::recorder::groups_2d(self.gpu, n.div_ceil(8) as u32);
                return self.dispatch_at(Kernel::GemmLanes, &params, &[(8, &a.buffer), (9, &b.buffer), (7, &c.buffer)], g);
            }
            let g = super::recorder::groups_2d(self.gpu, n.div_ceil(64 / splitk_slices(self.gpu)) as u32);
            return if vec4 {
                self.dispatch_at(Kernel::GemmSplitK { vec4 }, &params, &[(8, &a.buffer), (9, &b.buffer), (7, &c.buffer)], g)
            } else {
                self.dispatch_at(Kernel::GemmSplitK { vec4 }, &params, &[(5, &a.buffer), (6, &b.buffer), (7, &c.buffer)], g)
            };
        }
        // `gemm_v4`: 8 × 8 outputs a thread, `gemm`: 4 × 4.
        let vec4 = gemm_vec4_layout(&params);
        let cpu = self.gpu.adapter.device_type == format!("{:?}", wgpu::DeviceType::Cpu);
        let (gx, gy, wg_rows) = gemm_groups(m, n, if vec4.is_some() { 8 } else { 4 }, cpu);
        let params = GemmParams { wg_rows: wg_rows as u32, ..params };
        let max = self.gpu.limits.max_compute_workgroups_per_dimension as usize;
        if gx > max || gy > max {
            return Err(Error::Invalid(format!(
                "gemm: {m}×{n} needs {gy}×{gx} workgroups, above the device's {max} per dimension"
            )));
        }
        let g = (gy as u32, gx as u32); // row tiles along x, as `matmul`'s
        if let Some((a_along_p, b_along_p)) = vec4 {
            return self.dispatch_at(
                Kernel::GemmVec4 { a_along_p, b_along_p },
                &params,
                &[(8, &a.buffer), (9, &b.buffer), (10, &c.buffer)],
                g,
            );
        }
        self.dispatch_at(
            Kernel::Gemm,
            &params,
            &[(5, &a.buffer), (6, &b.buffer), (7, &c.buffer)],
            g,
        )
    }
}
