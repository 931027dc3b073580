//! One typed Rust function per kernel family, recorded into a `Recorder` (`gpu::recorder`).
//! Pipelines (built in `gpu::pipeline`) are cached by `Kernel`.

use bytemuck::{Pod, Zeroable};

use super::device::Gpu;
use super::memory::GpuBuffer;
use super::recorder::Bind;
use super::tensor::Tensor;
use crate::error::{Error, Result};

pub use super::attention::{
    AttentionParams, BidirectionalParams, KvRows, Packing, RopeKvParams,
    TILED_ATTENTION_MIN_QUERIES, attention_tiled_fits,
};
pub(super) use super::attention::check_packing;
pub use super::recorder::Recorder;
pub(super) use super::recorder::groups_2d;
pub use super::pipeline::{
    ACTIVATION_WGSL, ATTENTION_TILED_WGSL, ATTENTION_WGSL, EMBEDDING_WGSL, GEMM_WGSL, Kernel, LOGPROB_WGSL,
    MATMUL_BACKWARD_WGSL, MATMUL_COMMON_WGSL, MATMUL_WGSL, MATVEC_ONE_ROW_WGSL, MATVEC_WGSL, NORM_WGSL, OPTIM_WGSL,
    PEAK_WGSL, ROPE_KV_WGSL, ROPE_WGSL, SAMPLE_WGSL, WEIGHT_BLOCKS_WGSL, WEIGHTS_WGSL,
};

// ---- typed parameters, one per kernel family; the WGSL structs mirror them field by field ----

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
pub struct MatmulParams {
    pub t: u32,
    pub k: u32,
    pub n: u32,
    pub n_off: u32,
    pub ldy: u32,
    pub w_row0: u32,
    pub has_bias: u32,
    pub accumulate: u32,
    /// Weight row (in the whole tensor) of this dispatch's first column: bias index base.
    pub b_row0: u32,
    /// The register-blocked products' fused LoRA term (`LoraTerm`): its rank (0: none) and
    /// scale.
    pub lora_r: u32,
    pub lora_scale: f32,
    /// `Tensor::group` of the weight.
    pub wgroup: u32,
    /// `LoraTerm::ld` and `LoraTerm::segs` (u32::MAX: none).
    pub lora_ld: u32,
    pub lora_seg0: u32,
    pub lora_seg1: u32,
    pub _pad0: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
pub struct NormParams {
    pub rows: u32,
    pub d: u32,
    pub eps: f32,
    pub _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
pub struct RopeParams {
    pub t: u32,
    pub heads: u32,
    pub hd: u32,
    pub _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
pub struct ElementwiseParams {
    pub n: u32,
    /// `Activation` as the shader numbers it.
    pub act: u32,
    /// `scale`'s factor.
    pub s: f32,
    pub _pad: u32,
}

/// What a weight product does with y (`accumulate` in matmul_common.wgsl's Params).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    /// y = the product.
    Overwrite,
    /// y += the product (a fused residual add).
    Add,
    /// y = act(y) · the product: the gated MLP's up projection written over the gate
    /// projection's output, the activation's dispatch folded into the product's store.
    Gated(Activation),
}

impl Store {
    fn code(self) -> u32 {
        match self {
            Store::Overwrite => 0,
            Store::Add => 1,
            Store::Gated(Activation::Silu) => 2,
            Store::Gated(Activation::GeluTanh) => 3,
        }
    }
}

/// The activation of a gated MLP: down(act(gate(x)) · up(x)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Activation {
    /// Llama, Qwen (`silu`).
    Silu,
    /// Gemma (`gelu_pytorch_tanh`): GELU with the tanh approximation.
    GeluTanh,
}

impl Activation {
    /// `act_kind`'s `kind` in act_common.wgsl.
    pub(crate) fn kind(self) -> u32 {
        match self {
            Activation::Silu => 0,
            Activation::GeluTanh => 1,
        }
    }
}

impl ElementwiseParams {
    pub fn new(n: usize, act: Activation, s: f32) -> ElementwiseParams {
        ElementwiseParams {
            n: n as u32,
            act: act.kind(),
            s,
            _pad: 0,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
pub struct EmbedParams {
    pub t: u32,
    pub d: u32,
    pub row_start: u32,
    pub rows: u32,
    /// `Tensor::group` of the table.
    pub wgroup: u32,
    pub _pad: [u32; 3],
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
pub struct LogprobParams {
    pub t: u32,
    pub c: u32,
    pub v0: u32,
    pub inv_temp: f32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
pub struct PeakParams {
    pub iters: u32,
    pub mul: f32,
    pub add: f32,
    pub _pad0: u32,
}

/// Threads per `fma_peak` workgroup (WGSL `@workgroup_size`).
pub const FMA_PEAK_THREADS: usize = 64;
/// FLOPs one `fma_peak` invocation does per iteration: 32 FMAs.
pub const FMA_PEAK_FLOPS_PER_ITER: usize = 64;

pub use super::matvec_form::*;
pub use super::lora_term::LoraTerm;

/// `Kernel::Matmul` needs k to be a multiple of this (whole quant blocks, 16-byte rows);
/// other k take `Kernel::MatmulGeneral`.
pub const MATMUL_K_ALIGN: usize = 32;
/// Output rows and columns one `Kernel::Matmul` workgroup computes (WGSL: 8 threads of 4 rows,
/// `RB_N * RB_WN` columns).
pub const MATMUL_TILE_T: usize = 32;
pub const MATMUL_TILE_N: usize = 64;
/// Output rows of a `matmul_q_sums` workgroup (`quant::scales_factor_out` types: 8 threads of
/// 8 rows; columns as `MATMUL_TILE_N`).
pub const MATMUL_SUMS_TILE_T: usize = 64;

pub(super) fn check_fits(gpu: &Gpu, what: &str, bytes: u64) -> Result<()> {
    if bytes > gpu.max_binding {
        return Err(Error::Invalid(format!(
            "{what} needs a {bytes}-byte binding, above the device's {}-byte limit",
            gpu.max_binding
        )));
    }
    Ok(())
}

impl Recorder<'_> {
    /// y[t, n_off + j] (+)= x[t, :] · W[rows.start + j, :] (+ bias[rows.start + j]) for j in 0..rows.len().
    /// `rows` is a range of weight rows (output features); `ldy` the row stride of y; the range
    /// may span several pieces. With `accumulate`, adds into y (a fused residual add).
    #[allow(clippy::too_many_arguments)]
    pub fn matmul(
        &mut self,
        x: &GpuBuffer,
        t: usize,
        w: &Tensor,
        rows: std::ops::Range<usize>,
        bias: Option<&GpuBuffer>,
        y: &GpuBuffer,
        ldy: usize,
        n_off: usize,
        accumulate: bool,
    ) -> Result<()> {
        let store = if accumulate { Store::Add } else { Store::Overwrite };
        self.matmul_lora(x, t, w, rows, bias, None, y, ldy, n_off, store).map(|_| ())
    }

    /// `matmul`, adding `lora`'s term where the chosen kernel adds it as it stores y (the
    /// register-blocked and decode kernels, `ProductForm::stores_lora`); returns whether it did
    /// (if not, the caller adds it).
    #[allow(clippy::too_many_arguments)]
    fn matmul_lora(
        &mut self,
        x: &GpuBuffer,
        t: usize,
        w: &Tensor,
        rows: std::ops::Range<usize>,
        bias: Option<&GpuBuffer>,
        lora: Option<LoraTerm>,
        y: &GpuBuffer,
        ldy: usize,
        n_off: usize,
        store: Store,
    ) -> Result<bool> {
        check_fits(self.gpu, "matmul input", (t * w.cols * 4) as u64)?;
        check_fits(self.gpu, "matmul output", (t * ldy * 4) as u64)?;
        let dummy;
        let bias_buf = match bias {
            Some(b) => &b.buffer,
            None => {
                dummy = self.gpu.alloc(4, "no bias")?;
                &dummy.buffer
            }
        };
        let form = ProductForm::of(self.gpu, self.matvec, t, w);
        let ProductForm { aligned, general, split, run, blocked, .. } = form;
        let vec4_dtype = reads_vec4(w.dtype);
        let lora = lora.filter(|l| form.stores_lora(w, &rows, l));
        if let Some(l) = &lora {
            super::backward::need("LoRA u", l.u, ((t - 1) * l.ld + l.u_col(rows.end - 1) + l.r) as u64)?;
            super::backward::need("LoRA B", l.b, (rows.end * l.r) as u64)?;
            check_fits(self.gpu, "LoRA B", l.b.bytes)?;
        }
        // The 16-row runs read x from a texture (gpu/x_texture.rs), copied once for the pieces.
        let xtex = if run && vec4_dtype && t >= 16 { self.x_texture(x, t * w.cols) } else { None };
        for piece in &w.pieces {
            // Pieces whose blocks can be read as vec4s (binding 7; matmul_common.wgsl).
            let vec4 = vec4_dtype && piece.buf.bytes().is_multiple_of(16);
            let lo = rows.start.max(piece.row_start);
            let hi = rows.end.min(piece.row_start + piece.rows);
            if lo >= hi {
                continue;
            }
            let params = MatmulParams {
                t: t as u32,
                k: w.cols as u32,
                n: (hi - lo) as u32,
                n_off: (n_off + lo - rows.start) as u32,
                ldy: ldy as u32,
                w_row0: (lo - piece.row_start + piece.buf_row0) as u32,
                has_bias: bias.is_some() as u32,
                accumulate: store.code(),
                b_row0: lo as u32,
                lora_r: lora.map_or(0, |l| l.r as u32),
                lora_scale: lora.map_or(0.0, |l| l.scale),
                wgroup: w.group as u32,
                lora_ld: lora.map_or(0, |l| l.ld as u32),
                lora_seg0: lora.map_or(u32::MAX, |l| l.segs[0].min(u32::MAX as usize) as u32),
                lora_seg1: lora.map_or(u32::MAX, |l| l.segs[1].min(u32::MAX as usize) as u32),
                _pad0: 0,
            };
            // The weight piece: binding 2, and 7 where a kernel reads it as vec4s too.
            let wb = piece.buf.bind();
            let (xb, bb, yb) = (Bind::Buf(&x.buffer), Bind::Buf(bias_buf), Bind::Buf(&y.buffer));
            let bufs = [(1, xb), (2, wb), (3, bb), (4, yb)];
            // Bindings 5 and 6 of the register-blocked kernels: u and B, or (no LoRA, never
            // read) x twice.
            let (lu, lb) = lora.map_or((xb, xb), |l| (Bind::Buf(&l.u.buffer), Bind::Buf(&l.b.buffer)));
            let tiled_bufs = [(1, xb), (2, wb), (3, bb), (4, yb), (5, lu), (6, lb)];
            // `matmul_q_sums*` (either form) also see the weights as vec4s, binding 7.
            let sums_bufs = [(1, xb), (2, wb), (3, bb), (4, yb), (5, lu), (6, lb), (7, wb)];
            // `q_sums16` reads the weights only as vec4s (binding 7).
            let sums16_at = [(1, xb), (3, bb), (4, yb), (5, lu), (6, lb), (7, wb)];
            if split {
                // Column groups of 4, times row groups of 8.
                let groups = (hi - lo).div_ceil(MATVEC_SPLIT_COLS) * t.div_ceil(8);
                let g = groups_2d(self.gpu, groups as u32);
                self.dispatch_binds(Kernel::MatvecSplit(w.dtype), &params, &bufs, g)?;
            } else if run {
                // One run of 8 lanes a workgroup, 8 rows × 64 columns (the tiled kernel's 8 rows
                // a thread); row runs along x, as the tiled product's row tiles.
                let cols = (hi - lo).div_ceil(MATMUL_TILE_N) as u32;
                let grouped = vec4 && run_grouped(self.gpu, w, lo - piece.row_start + piece.buf_row0);
                if let (true, Some(view)) = (vec4 && t >= 16, &xtex) {
                    // 16 rows a run (`q_sums16`): twice the FMAs per weight load.
                    let (kernel, cols) = if self.gpu.features.subgroups && run16_wide(hi - lo) {
                        (Kernel::MatmulRun16WideVec4(w.dtype, grouped), (hi - lo).div_ceil(2 * MATMUL_TILE_N) as u32)
                    } else {
                        (Kernel::MatmulRun16Vec4(w.dtype, grouped), cols)
                    };
                    let at = [&sums16_at[..], &[(8, Bind::Tex(view))]].concat();
                    self.dispatch_binds(kernel, &params, &at, (t.div_ceil(16) as u32, cols))?;
                    continue;
                }
                if vec4 && t >= 16 {
                    // x too large for its texture: the tiled kernel.
                    let (gx, gy) = ((hi - lo).div_ceil(MATMUL_TILE_N), t.div_ceil(MATMUL_SUMS_TILE_T));
                    self.dispatch_binds(Kernel::MatmulVec4(w.dtype), &params, &sums16_at, (gy as u32, gx as u32))?;
                    continue;
                }
                // Grouped weights over many columns take the wide runs below 16 rows too
                // (`RUN8_WIDE_MIN_COLS`); the other vec4 types gained nothing so (Q4_K, Q5_0,
                // Q5_K at 1024 × 1536).
                let (kernel, cols) = if !vec4 {
                    (Kernel::MatmulRun(w.dtype), cols)
                } else if grouped && hi - lo >= RUN8_WIDE_MIN_COLS && run16_wide(hi - lo) {
                    (Kernel::MatmulRunWideVec4(w.dtype, grouped), (hi - lo).div_ceil(2 * MATMUL_TILE_N) as u32)
                } else {
                    (Kernel::MatmulRunVec4(w.dtype, grouped), cols)
                };
                self.dispatch_binds(kernel, &params, &sums_bufs, (t.div_ceil(8) as u32, cols))?;
            } else if blocked {
                let g = groups_2d(self.gpu, (hi - lo).div_ceil(MATVEC_COLS) as u32);
                let shared = self.gpu.features.subgroups && (t > 1 || w.dtype.is_quantized());
                // Their stores (`mv_store_at`) read bindings 5 and 6 as the tiled kernels do.
                if t == 1 && vec4 {
                    let at = [(1, xb), (3, bb), (4, yb), (5, lu), (6, lb), (7, wb)];
                    let grouped = one_row_grouped(w, lo - piece.row_start + piece.buf_row0);
                    self.dispatch_binds(Kernel::MatvecOneVec4(w.dtype, grouped), &params, &at, g)?;
                    continue;
                }
                let kernel = if shared { Kernel::MatvecShared(w.dtype) } else { Kernel::Matvec(w.dtype) };
                self.dispatch_binds(kernel, &params, &tiled_bufs, g)?;
            } else if general {
                let g = groups_2d(self.gpu, (hi - lo) as u32);
                self.dispatch_binds(Kernel::MatvecGeneral(w.dtype), &params, &bufs, g)?;
            } else {
                let (kernel, tile_t, tile_n) = if aligned {
                    let tile_t = if super::quant::scales_factor_out(w.dtype) {
                        MATMUL_SUMS_TILE_T
                    } else {
                        MATMUL_TILE_T
                    };
                    (Kernel::Matmul(w.dtype), tile_t, MATMUL_TILE_N)
                } else {
                    (Kernel::MatmulGeneral(w.dtype), 16, 16)
                };
                let (gx, gy) = ((hi - lo).div_ceil(tile_n), t.div_ceil(tile_t));
                let max = self.gpu.limits.max_compute_workgroups_per_dimension as usize;
                if gx > max || gy > max {
                    return Err(Error::Invalid(format!(
                        "matmul: {t}×{} needs {gy}×{gx} workgroups, above the device's {max} per dimension",
                        hi - lo
                    )));
                }
                // Row tiles along x: lavapipe hands each thread a contiguous run of workgroups
                // (x fastest), so a short last row tile lands on every thread, not on one.
                let sums = aligned && super::quant::scales_factor_out(w.dtype);
                if sums && vec4 {
                    self.dispatch_binds(Kernel::MatmulVec4(w.dtype), &params, &sums16_at, (gy as u32, gx as u32))?;
                    continue;
                }
                let (kernel, bufs): (_, &[(u32, Bind)]) = match (sums, vec4) {
                    (true, _) => (kernel, &sums_bufs),
                    (false, _) if aligned => (kernel, &tiled_bufs),
                    (false, _) => (kernel, &bufs),
                };
                self.dispatch_binds(kernel, &params, bufs, (gy as u32, gx as u32))?;
            }
        }
        Ok(lora.is_some())
    }

    /// Arithmetic-peak probe: `workgroups` × 64 invocations, each `iters` rounds of
    /// `FMA_PEAK_FLOPS_PER_ITER` FLOPs; one f32 per invocation is written to `out`.
    pub fn fma_peak(&mut self, out: &GpuBuffer, workgroups: usize, iters: u32) -> Result<()> {
        check_fits(
            self.gpu,
            "fma_peak output",
            (workgroups * FMA_PEAK_THREADS * 4) as u64,
        )?;
        if (out.bytes as usize) < workgroups * FMA_PEAK_THREADS * 4 {
            return Err(Error::Invalid(format!(
                "fma_peak: {workgroups} workgroups need {} bytes of output, {} given",
                workgroups * FMA_PEAK_THREADS * 4,
                out.bytes
            )));
        }
        let params = PeakParams {
            iters,
            mul: 0.999_9,
            add: 1e-4,
            _pad0: 0,
        };
        let g = groups_2d(self.gpu, workgroups as u32);
        self.dispatch(Kernel::FmaPeak, &params, &[&out.buffer], g)
    }

    /// `linear` plus a LoRA adapter's second product: y (+)= x Wᵀ + bias + scale · u Bᵀ, in
    /// the frozen product's own dispatch where its kernel takes the term, else by `gemm`.
    #[allow(clippy::too_many_arguments)]
    pub fn linear_lora(
        &mut self,
        x: &GpuBuffer,
        t: usize,
        w: &Tensor,
        bias: Option<&GpuBuffer>,
        lora: LoraTerm,
        y: &GpuBuffer,
        accumulate: bool,
    ) -> Result<()> {
        let n = w.rows;
        let store = if accumulate { Store::Add } else { Store::Overwrite };
        if self.matmul_lora(x, t, w, 0..n, bias, Some(lora), y, n, 0, store)? {
            return Ok(());
        }
        // Each adapter's rows apart: y[:, lo..hi] += scale · u[:, col..col + r] · B[lo..hi]ᵀ.
        let r = lora.r;
        for (lo, hi) in lora.runs(n) {
            let col = lora.u_col(lo);
            self.gemm(lora.u, col, lora.ld, 1, lora.b, lo * r, 1, r, y, lo, n, t, hi - lo, r, lora.scale, true)?;
        }
        Ok(())
    }

    /// Whole-matrix y = x W^T (+ bias), y of shape [t, W.rows].
    pub fn linear(
        &mut self,
        x: &GpuBuffer,
        t: usize,
        w: &Tensor,
        bias: Option<&GpuBuffer>,
        y: &GpuBuffer,
        accumulate: bool,
    ) -> Result<()> {
        self.matmul(x, t, w, 0..w.rows, bias, y, w.rows, 0, accumulate)
    }

    /// y = act(y) · (x Wᵀ + bias) for one row of x, elementwise over y [W.rows]: the gated
    /// MLP's act(gate) · up of a decoding step, the up projection written over the gate's
    /// output (`Store::Gated`), one dispatch fewer than `linear` then `act_mul`. One row only:
    /// the one-row products store each output once, in few statements, where the kernels of
    /// more rows write their stores out many times over (the activation inlined into each made
    /// their JIT builds on lavapipe ~1.6× as long). `lora`: up's adapter's term, added before
    /// the product multiplies; where the kernel cannot add it, Ok(false) and nothing recorded.
    pub fn linear_gated(
        &mut self,
        x: &GpuBuffer,
        w: &Tensor,
        bias: Option<&GpuBuffer>,
        act: Activation,
        lora: Option<LoraTerm>,
        y: &GpuBuffer,
    ) -> Result<bool> {
        let n = w.rows;
        // Up's term has to be inside the product: act(y) · (x Wᵀ + term) cannot take it after.
        let max = self.gpu.max_binding;
        let takes = |l: LoraTerm| {
            l.u.bytes <= max && l.b.bytes <= max && ProductForm::of(self.gpu, self.matvec, 1, w).stores_lora(w, &(0..n), &l)
        };
        if lora.is_some_and(|l| !takes(l)) {
            return Ok(false);
        }
        self.matmul_lora(x, 1, w, 0..n, bias, lora, y, n, 0, Store::Gated(act))?;
        Ok(true)
    }

    pub fn rmsnorm(
        &mut self,
        x: &GpuBuffer,
        weight: &GpuBuffer,
        y: &GpuBuffer,
        rows: usize,
        d: usize,
        eps: f32,
    ) -> Result<()> {
        check_fits(self.gpu, "rmsnorm", (rows * d * 4) as u64)?;
        let params = NormParams {
            rows: rows as u32,
            d: d as u32,
            eps,
            _pad: 0,
        };
        let g = groups_2d(self.gpu, rows as u32);
        let lanes = self.norm_lanes && d.is_multiple_of(4);
        self.dispatch(
            if lanes { Kernel::RmsNormLanes } else { Kernel::RmsNorm },
            &params,
            &[&x.buffer, &weight.buffer, &y.buffer],
            g,
        )
    }

    /// In place on x: [t, heads, hd]; `cos_sin` holds [2, t, hd/2].
    pub fn rope(
        &mut self,
        x: &GpuBuffer,
        cos_sin: &GpuBuffer,
        t: usize,
        heads: usize,
        hd: usize,
    ) -> Result<()> {
        let params = RopeParams {
            t: t as u32,
            heads: heads as u32,
            hd: hd as u32,
            _pad: 0,
        };
        // head_dim a multiple of 8: 4 pairs a thread.
        let (kernel, per) = if hd.is_multiple_of(8) { (Kernel::Rope4, 8) } else { (Kernel::Rope, 2) };
        let n = (t * heads * hd / per) as u32;
        let g = groups_2d(self.gpu, n.div_ceil(64));
        self.dispatch(kernel, &params, &[&cos_sin.buffer, &x.buffer], g)
    }

    /// LayerNorm with bias over the last dimension: y = (x − mean) / sqrt(var + eps) · weight
    /// + bias, x and y [rows, d].
    #[allow(clippy::too_many_arguments)]
    pub fn layernorm(
        &mut self,
        x: &GpuBuffer,
        weight: &GpuBuffer,
        bias: &GpuBuffer,
        y: &GpuBuffer,
        rows: usize,
        d: usize,
        eps: f32,
    ) -> Result<()> {
        check_fits(self.gpu, "layernorm", (rows * d * 4) as u64)?;
        let short = [(x, rows * d), (y, rows * d), (weight, d), (bias, d)]
            .iter()
            .any(|(b, n)| b.bytes < (*n * 4) as u64);
        if short || d == 0 {
            return Err(Error::Invalid(format!(
                "layernorm of {rows} rows of {d}: a buffer is too small (or d is 0)"
            )));
        }
        let params = NormParams {
            rows: rows as u32,
            d: d as u32,
            eps,
            _pad: 0,
        };
        let g = groups_2d(self.gpu, rows as u32);
        self.dispatch_at(
            Kernel::LayerNorm,
            &params,
            &[(1, &x.buffer), (2, &weight.buffer), (3, &y.buffer), (6, &bias.buffer)],
            g,
        )
    }

    /// b = act(b), over n elements (an ungated MLP's activation).
    pub fn act(&mut self, act: Activation, b: &GpuBuffer, n: usize) -> Result<()> {
        if b.bytes < (n * 4) as u64 {
            return Err(Error::Invalid(format!(
                "act: {n} elements need {} bytes, the buffer has {}",
                n * 4,
                b.bytes
            )));
        }
        let params = ElementwiseParams::new(n, act, 1.0);
        let g = groups_2d(self.gpu, (n as u32).div_ceil(256));
        self.dispatch_at(Kernel::ActInplace, &params, &[(2, &b.buffer)], g)
    }

    /// up = silu(gate) * up, over n elements.
    pub fn silu_mul(&mut self, gate: &GpuBuffer, up: &GpuBuffer, n: usize) -> Result<()> {
        self.act_mul(Activation::Silu, gate, up, n)
    }

    /// up = act(gate) * up, over n elements.
    pub fn act_mul(
        &mut self,
        act: Activation,
        gate: &GpuBuffer,
        up: &GpuBuffer,
        n: usize,
    ) -> Result<()> {
        let (kernel, params, g) = self.elementwise([Kernel::SiluMul, Kernel::SiluMul4], n, act, 1.0);
        self.dispatch(kernel, &params, &[&gate.buffer, &up.buffer], g)
    }

    /// b += a, over n elements.
    pub fn add(&mut self, a: &GpuBuffer, b: &GpuBuffer, n: usize) -> Result<()> {
        let (kernel, params, g) = self.elementwise([Kernel::Add, Kernel::Add4], n, Activation::Silu, 1.0);
        self.dispatch(kernel, &params, &[&a.buffer, &b.buffer], g)
    }

    /// An elementwise op over n elements: the scalar kernel, or where n is a multiple of 4 the
    /// vec4 one (`forms` = [scalar, vec4]); its uniforms and workgroups (256 threads).
    pub(super) fn elementwise(
        &self,
        forms: [Kernel; 2],
        n: usize,
        act: Activation,
        s: f32,
    ) -> (Kernel, ElementwiseParams, (u32, u32)) {
        let (kernel, threads) = if n.is_multiple_of(4) { (forms[1], n / 4) } else { (forms[0], n) };
        let g = groups_2d(self.gpu, (threads as u32).div_ceil(256));
        (kernel, ElementwiseParams::new(threads, act, s), g)
    }

    /// b *= s, over n elements.
    pub fn scale(&mut self, b: &GpuBuffer, n: usize, s: f32) -> Result<()> {
        let params = ElementwiseParams::new(n, Activation::Silu, s);
        let g = groups_2d(self.gpu, (n as u32).div_ceil(256));
        self.dispatch_at(Kernel::Scale, &params, &[(2, &b.buffer)], g)
    }

    /// out[t, :] = table[ids[t], :], `ids` a u32 buffer of t ids.
    pub fn embed(
        &mut self,
        ids: &GpuBuffer,
        t: usize,
        table: &Tensor,
        out: &GpuBuffer,
    ) -> Result<()> {
        for piece in &table.pieces {
            let params = EmbedParams {
                t: t as u32,
                d: table.cols as u32,
                row_start: piece.row_start as u32,
                rows: piece.rows as u32,
                wgroup: table.group as u32,
                _pad: [0; 3],
            };
            let g = groups_2d(self.gpu, ((t * table.cols) as u32).div_ceil(256));
            let at = [(1, Bind::Buf(&ids.buffer)), (2, piece.buf.bind()), (3, Bind::Buf(&out.buffer))];
            self.dispatch_binds(Kernel::Embed(table.dtype), &params, &at, g)?;
        }
        Ok(())
    }

    /// Sets the log-softmax state [t, 4] to "nothing seen yet".
    pub fn lse_init(&mut self, state: &GpuBuffer, t: usize) -> Result<()> {
        let params = LogprobParams {
            t: t as u32,
            c: 0,
            v0: 0,
            inv_temp: 1.0,
        };
        let g = groups_2d(self.gpu, (t as u32).div_ceil(64));
        self.dispatch_at(Kernel::LseInit, &params, &[(3, &state.buffer)], g)
    }

    /// Folds one chunk of logits [t, c] (vocabulary ids v0 .. v0+c) into the state
    /// [t, 4] = (m, s, target z, w): running max m of z = logit * inv_temp, s = Σ exp(z - m),
    /// the target's z (0 when the row has none), w = Σ exp(z - m) * z. From the finished state
    /// lse = m + ln s, log p(target) = z_target - lse, E_p[z] = w / s, entropy = lse - w / s.
    #[allow(clippy::too_many_arguments)]
    pub fn lse_chunk(
        &mut self,
        logits: &GpuBuffer,
        targets: &GpuBuffer,
        state: &GpuBuffer,
        t: usize,
        c: usize,
        v0: usize,
        inv_temp: f32,
    ) -> Result<()> {
        let params = LogprobParams {
            t: t as u32,
            c: c as u32,
            v0: v0 as u32,
            inv_temp,
        };
        let g = groups_2d(self.gpu, t as u32);
        self.dispatch(
            Kernel::LseChunk,
            &params,
            &[&logits.buffer, &targets.buffer, &state.buffer],
            g,
        )
    }
}
