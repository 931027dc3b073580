//! Which kernel takes a weight product of few rows (decode, short prefills, the runs on CPU
//! devices): `MatvecForm`, the row bounds of each form and the runs' wide and grouped forms.
//! Re-exported by `kernels`, which dispatches them.

use super::device::Gpu;
use super::kernels::{Activation, Kernel, LoraTerm, MatmulParams, Recorder, MATMUL_K_ALIGN, MATMUL_SUMS_TILE_T, MATMUL_TILE_N};
use super::memory::GpuBuffer;
use super::recorder::Bind;
use super::tensor::{DType, Tensor, WEIGHT_GROUP};
use crate::error::{Error, Result};

/// Up to this many rows of x, `matmul` uses a matrix-vector kernel (`Kernel::Matvec`).
pub const MATVEC_MAX_ROWS: usize = 8;
/// Rows `Kernel::MatvecGeneral` handles (WGSL `MV_ROWS`); more take `Kernel::MatmulGeneral`.
pub const MATVEC_GENERAL_MAX_ROWS: usize = 4;
/// Output columns one `Kernel::Matvec` workgroup computes (WGSL `MV_N * MV_WG`).
pub const MATVEC_COLS: usize = 64;
/// Output columns one `Kernel::MatvecSplit` workgroup computes (WGSL `SPLIT_COLS`), for 8 rows
/// of x; more rows take more workgroups.
pub const MATVEC_SPLIT_COLS: usize = 4;
/// Rows of x `MatvecForm::Split` takes (the tiled product above). On an H200 it beat the tiled
/// product at 8..64 rows: Q4_1 by 1.6-3.6×, F16 but for one shape at 64 rows (bench/gpu.sh).
pub const MATVEC_SPLIT_MAX_ROWS: usize = 64;

/// Rows from which `MatvecForm::Run` takes `Kernel::MatmulRun`: on lavapipe 2-4 rows of
/// SmolLM2's layer shapes (Q4_1) ran 1.1-1.25× faster so than through the blocked kernel's one
/// group of four, and it adds the LoRA term in the same dispatch; one row is faster blocked.
pub const MATVEC_RUN_MIN_ROWS: usize = 2;
/// Rows up to which `MatvecForm::Run` takes `Kernel::MatmulRun`: below one tiled row tile
/// (`MATMUL_SUMS_TILE_T`), whose runs past the rows still cost. On lavapipe 9-48 rows ran
/// 1.1-1.35× faster so (Q4_1, SmolLM2's shapes, `edgerl bench --matmul`), 56-64 alike. The
/// types read as vec4s take the runs at any row count (16 rows a run from 16 rows): workgroups
/// of 16 rows × 64 columns spread evenly over a CPU's threads where the tiled kernel's 64 × 64
/// do not (t = 64, lavapipe: k 576 n 192 0.39 -> 0.35 ms, k 1536 n 576 2.07 -> 1.86 ms; alike
/// from 256 rows).
pub const MATVEC_RUN_MAX_ROWS: usize = MATMUL_SUMS_TILE_T - 1;

/// Whether `Kernel::MatmulRun16Vec4`'s product of `n` columns takes its wide form (128 columns
/// a run, each x block loaded serving twice the FMAs; on lavapipe up to 1.15× the GFLOP/s) on a
/// device with subgroups: where the wide tiles compute at most 1/8 more columns past n than the
/// narrow ones (not n = 192, say).
pub fn run16_wide(n: usize) -> bool {
    n.div_ceil(2 * MATMUL_TILE_N) * 2 * MATMUL_TILE_N * 8 <= n.div_ceil(MATMUL_TILE_N) * MATMUL_TILE_N * 9
}

/// Columns from which the runs of 2-15 rows of grouped weights (`Kernel::MatmulRunWideVec4`)
/// take the wide form. Over few columns its fewer, larger workgroups spread worse over a CPU's
/// threads than they gain: on lavapipe (2 threads, 8 rows) Q4_1 1536 × 576 ran 50-52 GFLOP/s
/// narrow against 39-47 wide, 576 × 576 and 576 × 960 alike or narrow ahead; over the tied
/// lm_head's 49152 columns wide won (Q8_0 45 -> 53, Q4_1 60 -> 66).
pub const RUN8_WIDE_MIN_COLS: usize = 4096;

/// The types whose blocks the products read a vec4 at a time (binding 7; matmul_common.wgsl),
/// where a piece's bytes allow (a multiple of 16).
pub fn reads_vec4(dtype: DType) -> bool {
    matches!(dtype, DType::Q8_0 | DType::Q4_0 | DType::Q4_1 | DType::Q5_0 | DType::Q5_1 | DType::Q4_K | DType::Q5_K)
}

/// Whether the run forms read `w`'s groups whole (`GROUPED` in matmul.wgsl: 10 vec4 loads for
/// a thread's 8 columns at one k instead of 16, Q8_0 18 for 24): Q8_0 / Q4_0 / Q4_1 in groups
/// of 8 rows (`tensor::WEIGHT_GROUP`) from a row of the piece at a group's start, on a device
/// with subgroups (the runs that share x rows between lanes; on lavapipe a 64 × 576 × 1536
/// Q4_1 product gained 8 %).
pub fn run_grouped(gpu: &Gpu, w: &Tensor, w_row0: usize) -> bool {
    matches!(w.dtype, DType::Q8_0 | DType::Q4_0 | DType::Q4_1)
        && w.group == super::tensor::WEIGHT_GROUP
        && w_row0.is_multiple_of(super::tensor::WEIGHT_GROUP)
        && gpu.features.subgroups
}

/// Whether the one-row decode product (`Kernel::MatvecOneVec4`) reads `w`'s groups half at a
/// time (`ONE_GROUPED` in matvec_one_row.wgsl: 5 vec4 loads for a thread's 4 columns at one k
/// instead of 8): Q4_0 / Q4_1 in groups of 8 rows from a row of the piece at a group's start.
/// (Q8_0 read so, 9 vec4 loads for 12, ran no faster: 576 × 49152 at 10.0 against 9.8 GFLOP/s.)
pub fn one_row_grouped(w: &Tensor, w_row0: usize) -> bool {
    matches!(w.dtype, DType::Q4_0 | DType::Q4_1)
        && w.group == super::tensor::WEIGHT_GROUP
        && w_row0.is_multiple_of(super::tensor::WEIGHT_GROUP)
}

/// Which kernel takes the decode products (few rows of x, k a multiple of `MATMUL_K_ALIGN`; at
/// other k, at most `MATVEC_GENERAL_MAX_ROWS` rows always take `Kernel::MatvecGeneral`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MatvecForm {
    /// `Split` on GPUs, `Run` on CPU devices.
    #[default]
    Auto,
    /// `Kernel::Matvec` / `MatvecShared`: each thread four columns over the whole of k, few
    /// workgroups (what a CPU device runs fastest).
    Blocked,
    /// `Kernel::MatvecSplit`: a column's k split over 16 threads, 4 columns and 8 rows a
    /// workgroup (many workgroups, short threads: what a GPU needs); up to
    /// `MATVEC_SPLIT_MAX_ROWS` rows.
    Split,
    /// `Kernel::MatvecGeneral` (at most `MATVEC_GENERAL_MAX_ROWS` rows): a workgroup per column.
    General,
    /// `Blocked`, but `MATVEC_RUN_MIN_ROWS..=MATVEC_RUN_MAX_ROWS` rows of the quantized types
    /// whose block scales factor out (`quant::scales_factor_out`) take `Kernel::MatmulRun`:
    /// the tiled kernel's 8 rows × 8 columns a thread with one decoded quant serving 8 rows, in
    /// workgroups of one run of 8 lanes (what a CPU device runs fastest: 1.5-1.6× `Blocked` at
    /// 8 rows of Q4_1 on lavapipe, where the blocked kernel does two groups of four; above 8
    /// rows, products the tiled kernel would give a partial row tile).
    Run,
}

impl MatvecForm {
    pub const NAMES: [&str; 5] = ["auto", "blocked", "split", "general", "run"];
    const ALL: [MatvecForm; 5] =
        [MatvecForm::Auto, MatvecForm::Blocked, MatvecForm::Split, MatvecForm::General, MatvecForm::Run];

    pub fn parse(name: &str) -> Result<Self> {
        match Self::NAMES.iter().position(|n| n.eq_ignore_ascii_case(name.trim())) {
            Some(i) => Ok(Self::ALL[i]),
            None => Err(Error::Invalid(format!(
                "unknown decode-product form {name:?} (one of {})",
                Self::NAMES.join(", ")
            ))),
        }
    }
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
    pub(crate) fn from_code(code: u8) -> Self {
        Self::ALL.get(code as usize).copied().unwrap_or_default()
    }
    /// `Auto` settled for this device.
    pub fn resolve(self, gpu: &Gpu) -> Self {
        match self {
            MatvecForm::Auto if gpu.adapter.device_type == format!("{:?}", wgpu::DeviceType::Cpu) => {
                MatvecForm::Run
            }
            MatvecForm::Auto => MatvecForm::Split,
            f => f,
        }
    }
}

/// The kernels `Recorder::matmul` takes for `t` rows of a weight (`ProductForm::of`).
#[derive(Clone, Copy, Debug)]
pub(super) struct ProductForm {
    /// k whole blocks (`MATMUL_K_ALIGN`): the register-blocked and decode kernels can read it.
    pub aligned: bool,
    /// `Kernel::MatvecGeneral`: few rows, any k.
    pub general: bool,
    pub split: bool,
    /// The runs (`Kernel::MatmulRun*`), register-blocked.
    pub run: bool,
    /// The decode kernels (`Kernel::Matvec*`), which store through `mv_store_at`.
    pub blocked: bool,
    /// The register-blocked kernels: the runs or the aligned tiled product.
    pub tiled: bool,
}

impl ProductForm {
    pub(super) fn of(gpu: &Gpu, matvec: MatvecForm, t: usize, w: &Tensor) -> Self {
        let aligned = w.cols.is_multiple_of(MATMUL_K_ALIGN);
        let form = matvec.resolve(gpu);
        let general = t <= MATVEC_GENERAL_MAX_ROWS && (!aligned || form == MatvecForm::General);
        let split = aligned && t <= MATVEC_SPLIT_MAX_ROWS && form == MatvecForm::Split;
        // Past MATVEC_RUN_MAX_ROWS the vec4 types keep to the runs (16 rows each): smaller
        // workgroups than the tiled kernel's, so they spread evenly over a CPU device's threads.
        let run = aligned
            && !split
            && form == MatvecForm::Run
            && t >= MATVEC_RUN_MIN_ROWS
            && (t <= MATVEC_RUN_MAX_ROWS || reads_vec4(w.dtype))
            && super::quant::scales_factor_out(w.dtype);
        let blocked = aligned && !split && !run && t <= MATVEC_MAX_ROWS && !general;
        let tiled = aligned && !split && !blocked && !general;
        ProductForm { aligned, general, split, run, blocked, tiled }
    }

    /// Whether these kernels add `l`'s term to outputs `rows` of `w` as they store y: the
    /// decode kernels any term (a value at a time, `lora_dot`); the register-blocked ones a term
    /// whose segments start on 64-column tiles, as the weight's pieces must (`lora_block8`
    /// reads one segment's u for a thread's 8 columns).
    pub(super) fn stores_lora(&self, w: &Tensor, rows: &std::ops::Range<usize>, l: &LoraTerm) -> bool {
        let tile = |r: usize| r == usize::MAX || r.is_multiple_of(MATMUL_TILE_N);
        self.blocked
            || (self.tiled
                && l.segs.iter().all(|&s| tile(s))
                && w.pieces.iter().all(|p| tile(p.row_start))
                && tile(rows.start))
    }
}

impl Recorder<'_> {
    /// y [t, n] = act(x Wgᵀ) · (x Wuᵀ) from `pair`: gate's n rows, then up's (`Layer::gate_up`),
    /// the gated MLP's two products and its activation in one dispatch (`GLU_ACT` in
    /// matmul.wgsl), where a run takes it: `MatvecForm::Run` (CPU devices) with subgroups, 2
    /// rows or more, a type the runs read as vec4s, n whole weight groups. Elsewhere Ok(false)
    /// and nothing recorded: the caller computes the two products apart. `lora`: gate's and
    /// up's adapters' terms, added before the activation: u holds gate's x·Aᵀ then up's
    /// (`segs` [n, ∞]) and B gate's rows then up's, as the pair.
    pub fn linear_glu(
        &mut self,
        x: &GpuBuffer,
        t: usize,
        pair: &Tensor,
        act: Activation,
        lora: Option<LoraTerm>,
        y: &GpuBuffer,
    ) -> Result<bool> {
        let n = pair.rows / 2;
        let [piece] = &pair.pieces[..] else { return Ok(false) };
        let takes = self.matvec.resolve(self.gpu) == MatvecForm::Run
            && self.gpu.features.subgroups
            && t >= MATVEC_RUN_MIN_ROWS
            && reads_vec4(pair.dtype)
            && piece.buf.bytes().is_multiple_of(16)
            && pair.rows == 2 * n
            && n.is_multiple_of(WEIGHT_GROUP)
            && pair.cols.is_multiple_of(MATMUL_K_ALIGN)
            && lora.is_none_or(|l| l.u.bytes <= self.gpu.max_binding && l.b.bytes <= self.gpu.max_binding);
        if !takes {
            return Ok(false);
        }
        super::kernels::check_fits(self.gpu, "matmul input", (t * pair.cols * 4) as u64)?;
        super::kernels::check_fits(self.gpu, "matmul output", (t * n * 4) as u64)?;
        if let Some(l) = &lora {
            let last = (t - 1) * l.ld + l.segs.iter().filter(|&&s| s < pair.rows).count() * l.r + l.r;
            super::backward::need("LoRA u", l.u, last as u64)?;
            super::backward::need("LoRA B", l.b, (pair.rows * l.r) as u64)?;
        }
        let params = MatmulParams {
            t: t as u32,
            k: pair.cols as u32,
            n: n as u32,
            n_off: 0,
            ldy: n as u32,
            w_row0: piece.buf_row0 as u32,
            has_bias: 0,
            accumulate: 0,
            b_row0: 0,
            lora_r: lora.map_or(0, |l| l.r as u32),
            lora_scale: lora.map_or(0.0, |l| l.scale),
            wgroup: pair.group as u32,
            lora_ld: lora.map_or(0, |l| l.ld as u32),
            lora_seg0: lora.map_or(u32::MAX, |l| l.segs[0].min(u32::MAX as usize) as u32),
            lora_seg1: lora.map_or(u32::MAX, |l| l.segs[1].min(u32::MAX as usize) as u32),
            _pad0: 0,
        };
        // From 9 rows x from a texture (gpu/x_texture.rs).
        let xtex = if t > 8 { self.x_texture(x, t * pair.cols) } else { None };
        if t > 8 && xtex.is_none() {
            return Ok(false); // x too large for its texture: the two products apart
        }
        let grouped = run_grouped(self.gpu, pair, piece.buf_row0);
        let cols = n.div_ceil(MATMUL_TILE_N) as u32;
        let no_bias = self.gpu.alloc(4, "no bias")?;
        let (w, b, xb, yb) = (piece.buf.bind(), Bind::Buf(&no_bias.buffer), Bind::Buf(&x.buffer), Bind::Buf(&y.buffer));
        // Bindings 5 and 6: LoRA u and B, or (none, never read) x.
        let (lu, lb) = lora.map_or((xb, xb), |l| (Bind::Buf(&l.u.buffer), Bind::Buf(&l.b.buffer)));
        // From 9 rows the 16-row run: the rows two 8-row runs would compute, half the weight
        // loads, and the pipeline a prefill has built already (each one costs a JIT build per
        // process on lavapipe; eval of 16 screens, whose rows finish one by one: 1.32 -> 1.50 rows/s).
        if let Some(view) = xtex {
            let at = [(1, xb), (3, b), (4, yb), (5, lu), (6, lb), (7, w), (8, Bind::Tex(&view))];
            let g = (t.div_ceil(16) as u32, cols);
            self.dispatch_binds(Kernel::MatmulRun16GluVec4(pair.dtype, grouped, act), &params, &at, g)?;
        } else {
            let at = [(1, xb), (2, w), (3, b), (4, yb), (5, lu), (6, lb), (7, w)];
            self.dispatch_binds(Kernel::MatmulRunGluVec4(pair.dtype, grouped, act), &params, &at, (t.div_ceil(8) as u32, cols))?;
        }
        Ok(true)
    }
}
