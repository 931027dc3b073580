//! Shader sources and pipelines: the WGSL files (with the snippets prepended to them), the
//! `Kernel` enum naming every entry point, and `Gpu::pipeline`, which builds and caches them.

use std::sync::Arc;

use super::device::Gpu;
use super::kernels::Activation;
use super::tensor::DType;
use crate::error::{Error, Result};

/// Forward weight products (`matmul_f` / `_q` / `_general`), with their 16-row form, the
/// paired gate | up runs and the LoRA term they add, one module.
pub const MATMUL_WGSL: &str = concat!(
    include_str!("../../shaders/matmul.wgsl"),
    include_str!("../../shaders/matmul_rows16.wgsl"),
    include_str!("../../shaders/matmul_glu.wgsl"),
    include_str!("../../shaders/matmul_lora.wgsl")
);
/// Decode weight products (`matvec_f` / `_q` / `_general`).
pub const MATVEC_WGSL: &str = include_str!("../../shaders/matvec.wgsl");
/// Input gradient of the weight products (`matmul_backward_input_*`).
pub const MATMUL_BACKWARD_WGSL: &str = include_str!("../../shaders/matmul_backward.wgsl");
/// Strided f32 product (the LoRA products).
pub const GEMM_WGSL: &str = include_str!("../../shaders/gemm.wgsl");
pub const NORM_WGSL: &str = include_str!("../../shaders/norm.wgsl");
pub const ROPE_WGSL: &str = include_str!("../../shaders/rope.wgsl");
/// Inference: rope of q and k with k and v stored into the KV cache, one dispatch.
pub const ROPE_KV_WGSL: &str = include_str!("../../shaders/rope_kv.wgsl");
pub const ATTENTION_WGSL: &str = include_str!("../../shaders/attention.wgsl");
/// Attention with a thread per row and tiles through workgroup memory (the usual path).
/// The tiled kernels and their generated head_dim-64 paths (shaders/gen_attention_hd64.py), one module.
pub const ATTENTION_TILED_WGSL: &str = concat!(
    include_str!("../../shaders/attention_tiled.wgsl"),
    include_str!("../../shaders/attention_tiled_hd64.wgsl")
);
/// Decoding attention for head_dim 64 on CPU devices (`attention_decode_hd64`), one module with
/// the per-row kernels, whose walk helpers it uses.
pub const ATTENTION_DECODE_WGSL: &str = concat!(
    include_str!("../../shaders/attention.wgsl"),
    include_str!("../../shaders/attention_decode.wgsl")
);
pub const ACTIVATION_WGSL: &str = include_str!("../../shaders/activation.wgsl");
pub const EMBEDDING_WGSL: &str = include_str!("../../shaders/embedding.wgsl");
pub const LOGPROB_WGSL: &str = include_str!("../../shaders/logprob.wgsl");
pub const OPTIM_WGSL: &str = include_str!("../../shaders/optim.wgsl");
pub const SAMPLE_WGSL: &str = include_str!("../../shaders/sample.wgsl");
pub const ROWS_WGSL: &str = include_str!("../../shaders/rows.wgsl");
/// Arithmetic-peak probe for benchmarks.
pub const PEAK_WGSL: &str = include_str!("../../shaders/peak.wgsl");
/// Where the weights are read from (`wword`, `wvec`, `wvec7`): a storage buffer, or on devices
/// with `Gpu::weight_textures` (the quantized types read a vec4 at a time) a texture; prepended
/// first to every kernel file that reads weight pieces.
pub const WEIGHT_BUFFER_WGSL: &str = include_str!("../../shaders/weight_buffer.wgsl");
pub const WEIGHT_TEXTURE_WGSL: &str = include_str!("../../shaders/weight_texture.wgsl");
/// `load_w` and `override WDTYPE`: prepended to every kernel file that reads weight pieces.
pub const WEIGHTS_WGSL: &str = include_str!("../../shaders/weights.wgsl");
/// Weight-block decoders of the register-blocked kernels (`wf_lo`, `q8w4`, `q4lo`, ...), which
/// read the piece as vec4s too (`wvec`).
pub const WEIGHT_BLOCKS_WGSL: &str = include_str!("../../shaders/weight_blocks.wgsl");
/// The forward product's `Params`, bindings and row helpers, shared by `MATMUL_WGSL` and
/// `MATVEC_WGSL`.
pub const MATMUL_COMMON_WGSL: &str = include_str!("../../shaders/matmul_common.wgsl");
/// The gated MLP's activations (`act_kind`): activation.wgsl's, and the forward products' gated
/// store (`stored` in matmul_common.wgsl).
pub const ACT_COMMON_WGSL: &str = include_str!("../../shaders/act_common.wgsl");
const FORWARD_PRELUDE: &[&str] = &[WEIGHTS_WGSL, WEIGHT_BLOCKS_WGSL, ACT_COMMON_WGSL, MATMUL_COMMON_WGSL];
/// The one-row decode products' block arithmetic, prepended to `MATVEC_WGSL` only.
pub const MATVEC_ONE_ROW_WGSL: &str = include_str!("../../shaders/matvec_one_row.wgsl");
const MATVEC_PRELUDE: &[&str] =
    &[WEIGHTS_WGSL, WEIGHT_BLOCKS_WGSL, ACT_COMMON_WGSL, MATMUL_COMMON_WGSL, MATVEC_ONE_ROW_WGSL];
/// Workgroup reductions (`wg_sum`, `wg_max`, `wg_argmax`), lane sharing (`lanes8`,
/// `from_lane8`) and the `Lane` builtins: portable (a tree through workgroup memory, no
/// sharing) everywhere, or (`REDUCE_SUBGROUP_WGSL`) on subgroup operations where the device
/// has them.
pub const REDUCE_WGSL: &str = include_str!("../../shaders/reduce.wgsl");
pub const REDUCE_SUBGROUP_WGSL: &str = include_str!("../../shaders/reduce_subgroup.wgsl");
/// `order_key`, `better` and `xt4_shared`, after either reduction snippet.
pub const REDUCE_COMMON_WGSL: &str = include_str!("../../shaders/reduce_common.wgsl");
/// The kernel files that reduce across a workgroup or share x rows between lanes (`lanes8`):
/// the reduction snippets go first.
const REDUCING: [&str; 10] = [
    NORM_WGSL, LOGPROB_WGSL, OPTIM_WGSL, SAMPLE_WGSL, ATTENTION_WGSL, ATTENTION_DECODE_WGSL,
    MATMUL_WGSL, MATVEC_WGSL, MATMUL_BACKWARD_WGSL, ATTENTION_TILED_WGSL,
];
/// WGSL has no includes: the snippets prepended, in order, to a kernel file at pipeline build
/// (files not listed are whole modules). Every module-scope name a snippet uses must be declared
/// in each file it is prepended to.
const PRELUDES: [(&str, &[&str]); 5] = [
    (MATMUL_WGSL, FORWARD_PRELUDE),
    (ACTIVATION_WGSL, &[ACT_COMMON_WGSL]),
    (MATVEC_WGSL, MATVEC_PRELUDE),
    (MATMUL_BACKWARD_WGSL, &[WEIGHTS_WGSL, WEIGHT_BLOCKS_WGSL]),
    (EMBEDDING_WGSL, &[WEIGHTS_WGSL]),
];

/// What a kernel module may assume of the device's subgroups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subgroups {
    /// No subgroup operations: the portable reductions (reduce.wgsl).
    Off,
    /// Subgroup operations of any width (reduce_subgroup.wgsl).
    Any,
    /// Subgroups always 8 lanes wide (`SUBGROUP8`).
    Eight,
    /// Always 8 lanes, and each run of 8 invocations of a 1-D workgroup one subgroup in
    /// invocation order (`LANES8_IN_ORDER`, `GpuFeatures::lanes8_in_order`).
    EightInOrder,
}

impl Gpu {
    /// What this device's kernels assume of its subgroups.
    pub fn subgroup_form(&self) -> Subgroups {
        let f = &self.features;
        match (f.subgroups, f.subgroup_sizes == (8, 8), f.lanes8_in_order) {
            (false, ..) => Subgroups::Off,
            (true, false, _) => Subgroups::Any,
            (true, true, false) => Subgroups::Eight,
            (true, true, true) => Subgroups::EightInOrder,
        }
    }
}

/// The whole WGSL module of a kernel file: its prelude snippets, then the file, with the
/// reduction snippets `subgroups` calls for; files that read weights read them from a texture
/// with `weight_texture`, else from a buffer.
pub fn module_source(file: &'static str, subgroups: Subgroups, weight_texture: bool) -> String {
    let prelude = PRELUDES
        .iter()
        .find(|(f, _)| *f == file)
        .map_or(&[][..], |(_, p)| *p);
    let store = if weight_texture { WEIGHT_TEXTURE_WGSL } else { WEIGHT_BUFFER_WGSL };
    let weights: &[&str] = if prelude.contains(&WEIGHTS_WGSL) { &[store] } else { &[] };
    let reduce: &[&str] = match (REDUCING.contains(&file), subgroups) {
        (false, _) => &[],
        (true, Subgroups::Off) => &[REDUCE_WGSL, REDUCE_COMMON_WGSL],
        (true, _) => &[REDUCE_SUBGROUP_WGSL, REDUCE_COMMON_WGSL],
    };
    let eight = matches!(subgroups, Subgroups::Eight | Subgroups::EightInOrder);
    let consts = format!(
        "const SUBGROUP8: bool = {eight};\nconst LANES8_IN_ORDER: bool = {};",
        subgroups == Subgroups::EightInOrder
    );
    let head: &[&str] = if reduce.is_empty() { &[] } else { &[&consts] };
    [head, reduce, weights, prelude, &[file]].concat().join("\n")
}

/// Every pipeline edgerl builds; the key of the pipeline cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// The weight product for more than `MATVEC_MAX_ROWS` rows of x and k a multiple of
    /// `MATMUL_K_ALIGN`: register-blocked, `MATMUL_TILE_T` × `MATMUL_TILE_N` outputs a workgroup.
    Matmul(DType),
    /// The same product for any k: 16×16 tiles through workgroup memory.
    MatmulGeneral(DType),
    /// The same product for at most `MATVEC_MAX_ROWS` rows of x (decode), k a multiple of
    /// `MATMUL_K_ALIGN`: each thread a few output columns over the whole of k.
    Matvec(DType),
    /// `Matvec` with the x rows shared between lanes by subgroup shuffles (devices with
    /// subgroups; float weights only for 2..8 rows, where it measured faster).
    MatvecShared(DType),
    /// Decode for any k (at most `MATVEC_GENERAL_MAX_ROWS` rows): a workgroup per column.
    MatvecGeneral(DType),
    /// `Matvec` shaped for GPUs (`MatvecForm::Split`): 16 threads split a column's k.
    MatvecSplit(DType),
    /// `Matmul`'s `matmul_q_sums` in workgroups of one run of 8 lanes, 8 rows each: fewer rows
    /// than a tiled row tile (decode and short products on CPU devices, `MatvecForm::Run`),
    /// `quant::scales_factor_out` types.
    MatmulRun(DType),
    /// `Matvec` for one row of Q8_0 / Q4_0 / Q4_1 weights read a vec4 at a time (binding 7:
    /// the weights as vec4s), for pieces of a multiple of 16 bytes.
    /// With `ONE_GROUPED` (matvec_one_row.wgsl): Q4_0 / Q4_1 in groups of 8 rows read half a
    /// group a thread (`matvec_form::one_row_grouped`).
    MatvecOneVec4(DType, bool),
    /// `Matmul` and `MatmulRun` for the blocks `matmul_q_sums` can read a vec4 at a time (as
    /// `MatvecOneVec4`; Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K). The tiled one gives each
    /// thread 16 rows (`matmul_q_sums_v4`), the run one 8.
    MatmulVec4(DType),
    /// The run forms' bool: `GROUPED` (matmul.wgsl), Q8_0 / Q4_0 / Q4_1 weights in groups of 8
    /// rows read a whole group a thread (`kernels::run_grouped`).
    MatmulRunVec4(DType, bool),
    /// `MatmulRunVec4` over 128 columns a run instead of 64 (`kernels::run16_wide`).
    MatmulRunWideVec4(DType, bool),
    /// `MatmulRunVec4` with 16 rows a run (16 rows or more).
    MatmulRun16Vec4(DType, bool),
    /// `MatmulRun16Vec4` over 128 columns a run instead of 64 (`kernels::run16_wide`).
    MatmulRun16WideVec4(DType, bool),
    /// The gated MLP's gate and up from one stacked weight, act(gate) · up stored
    /// (`GLU_ACT` in matmul.wgsl; `Recorder::linear_glu`): the wide run of 8 rows.
    MatmulRunGluVec4(DType, bool, Activation),
    /// `MatmulRunGluVec4` with 16 rows a run (from 9 rows).
    MatmulRun16GluVec4(DType, bool, Activation),
    RmsNorm,
    /// `RmsNorm` in 8-thread workgroups with vec4 loads (CPU devices, d a multiple of 4).
    RmsNormLanes,
    /// LayerNorm with bias (the vision tower).
    LayerNorm,
    Rope,
    /// `Rope` 4 pairs a thread (head_dim a multiple of 8).
    Rope4,
    /// Inference: `Rope` of q and of k into the KV cache, and v into it (`Recorder::rope_kv`).
    RopeKv,
    /// `RopeKv` 4 pairs a thread (head_dim a multiple of 8).
    RopeKv4,
    /// `RopeKv4` of q, k and v from one product's rows (`Recorder::rope_qkv`).
    RopeQkv4,
    /// Causal / packed attention, a workgroup per (query, head): any head_dim up to 256 and
    /// any context.
    Attention,
    /// `Attention` for a few queries with head_dim 64 on CPU devices: vec4 loads, q in
    /// registers (shaders/attention_decode.wgsl).
    AttentionDecodeHd64,
    /// `Attention` with head_dim 128 / 256 (the value) on CPU devices: an 8-thread workgroup
    /// per (query, head), q row and output in registers (shaders/attention_decode.wgsl).
    AttentionLanes(u16),
    /// `AttentionBackwardQ` / `AttentionBackwardKv` likewise (head_dim 128 / 256, CPU devices).
    AttentionLanesBackwardQ(u16),
    AttentionLanesBackwardKv(u16),
    /// The same, a thread per (query, head) and tiles of keys in workgroup memory: head_dim a
    /// multiple of 8 up to 128, contexts within llvmpipe's loop budget (`attention_tiled_fits`).
    AttentionTiled,
    /// Bidirectional attention within each image, with a key mask (the vision tower).
    AttentionBidirectional,
    SiluMul,
    /// `SiluMul` a vec4 a thread (n a multiple of 4).
    SiluMul4,
    /// An activation in place, ungated (the vision tower's MLP).
    ActInplace,
    Add,
    /// `Add` a vec4 a thread (n a multiple of 4).
    Add4,
    Scale,
    Embed(DType),
    LseInit,
    LseChunk,
    /// Row gathers and sums (wrapper in `gpu::rows`).
    GatherRows,
    // ---- backward and optimizer kernels (wrappers in `gpu::backward`) ----
    /// Input gradient of `Matmul`, one weight piece at a time: register-blocked, for k a
    /// multiple of `MATMUL_K_ALIGN` and dy rows on 16 bytes.
    MatmulBackwardInput(DType),
    /// The same for any shape: 16×16 tiles through workgroup memory.
    MatmulBackwardInputGeneral(DType),
    /// Strided f32 product with transposes by stride (the LoRA products).
    Gemm,
    /// `Gemm` reading every operand a vec4 at a time, for layouts aligned on 4 elements: A
    /// contiguous along p (else along i), B along p (else along j).
    GemmVec4 { a_along_p: bool, b_along_p: bool },
    /// A few rows over a long k, one workgroup a column splitting k (`gemm_splitk`; `_v4`
    /// reading vec4s).
    GemmSplitK { vec4: bool },
    /// `GemmSplitK { vec4: true }`'s products on CPU devices: a workgroup of 8 lanes per 8
    /// columns, each lane a slice of k for all 8 rows (`gemm_lanes_v4`).
    GemmLanes,
    RmsNormBackward,
    SiluMulBackward,
    /// `SiluMulBackward` a vec4 a thread (n a multiple of 4).
    SiluMulBackward4,
    /// Attention backward, pass 1: (lse, D) stats and dq, one invocation per (query, head).
    AttentionBackwardQ,
    /// Attention backward, pass 2: dk and dv, one invocation per (key, kv head).
    AttentionBackwardKv,
    /// Tiled variants of the two backward passes (same conditions as `AttentionTiled`).
    AttentionTiledBackwardQ,
    AttentionTiledBackwardKv,
    LogprobGrad,
    AdamW,
    Sgd,
    SumSquares,
    /// Token sampling from one logits row (wrapper in `gpu::sample`).
    Sample,
    /// Register-only FMA chains: the device's arithmetic peak (benchmarks only).
    FmaPeak,
}

impl Kernel {
    /// The forward products' entry points that bind `x_tex` (`q_sums16`'s; binding 8): every
    /// dispatch of them binds a texture (gpu/x_texture.rs).
    pub(crate) fn binds_x_texture(self) -> bool {
        matches!(self, Kernel::MatmulVec4(_) | Kernel::MatmulRun16Vec4(..) | Kernel::MatmulRun16WideVec4(..) | Kernel::MatmulRun16GluVec4(..))
    }

    /// The entry point's name (for profiles and messages).
    pub(crate) fn entry(self) -> &'static str {
        self.source().1
    }

    fn source(self) -> (&'static str, &'static str) {
        match self {
            Kernel::Matmul(d) if super::quant::scales_factor_out(d) => (MATMUL_WGSL, "matmul_q_sums"),
            Kernel::Matmul(d) if d.is_quantized() => (MATMUL_WGSL, "matmul_q"),
            Kernel::Matmul(_) => (MATMUL_WGSL, "matmul_f"),
            Kernel::MatmulGeneral(_) => (MATMUL_WGSL, "matmul_general"),
            Kernel::Matvec(d) if d.is_quantized() => (MATVEC_WGSL, "matvec_q"),
            Kernel::Matvec(_) => (MATVEC_WGSL, "matvec_f"),
            Kernel::MatvecShared(d) if d.is_quantized() => (MATVEC_WGSL, "matvec_q_shared"),
            Kernel::MatvecShared(_) => (MATVEC_WGSL, "matvec_f_shared"),
            Kernel::MatvecGeneral(_) => (MATVEC_WGSL, "matvec_general"),
            Kernel::MatvecSplit(d) if d.is_quantized() => (MATVEC_WGSL, "matvec_split_q"),
            Kernel::MatvecSplit(_) => (MATVEC_WGSL, "matvec_split_f"),
            Kernel::MatmulRun(_) => (MATMUL_WGSL, "matmul_q_sums_run"),
            Kernel::MatvecOneVec4(..) => (MATVEC_WGSL, "matvec_q_one_v4"),
            Kernel::MatmulVec4(_) => (MATMUL_WGSL, "matmul_q_sums_v4"),
            Kernel::MatmulRunVec4(..) => (MATMUL_WGSL, "matmul_q_sums_run_v4"),
            Kernel::MatmulRunWideVec4(..) => (MATMUL_WGSL, "matmul_q_sums_runw_v4"),
            Kernel::MatmulRun16Vec4(..) => (MATMUL_WGSL, "matmul_q_sums_run16_v4"),
            Kernel::MatmulRun16WideVec4(..) => (MATMUL_WGSL, "matmul_q_sums_run16w_v4"),
            Kernel::MatmulRunGluVec4(..) => (MATMUL_WGSL, "matmul_q_sums_run_glu_v4"),
            Kernel::MatmulRun16GluVec4(..) => (MATMUL_WGSL, "matmul_q_sums_run16_glu_v4"),
            Kernel::RmsNorm => (NORM_WGSL, "rmsnorm"),
            Kernel::RmsNormLanes => (NORM_WGSL, "rmsnorm_lanes"),
            Kernel::LayerNorm => (NORM_WGSL, "layernorm"),
            Kernel::Rope => (ROPE_WGSL, "rope"),
            Kernel::Rope4 => (ROPE_WGSL, "rope4"),
            Kernel::RopeKv => (ROPE_KV_WGSL, "rope_kv"),
            Kernel::RopeKv4 => (ROPE_KV_WGSL, "rope_kv4"),
            Kernel::RopeQkv4 => (ROPE_KV_WGSL, "rope_qkv4"),
            Kernel::Attention => (ATTENTION_WGSL, "attention"),
            Kernel::AttentionDecodeHd64 => (ATTENTION_DECODE_WGSL, "attention_decode_hd64"),
            Kernel::AttentionLanes(_) => (ATTENTION_DECODE_WGSL, "attention_lanes"),
            Kernel::AttentionLanesBackwardQ(_) => (ATTENTION_DECODE_WGSL, "attention_lanes_backward_q"),
            Kernel::AttentionLanesBackwardKv(_) => (ATTENTION_DECODE_WGSL, "attention_lanes_backward_kv"),
            Kernel::AttentionTiled => (ATTENTION_TILED_WGSL, "attention_tiled"),
            Kernel::AttentionBidirectional => (ATTENTION_WGSL, "attention_bidirectional"),
            Kernel::SiluMul => (ACTIVATION_WGSL, "silu_mul"),
            Kernel::SiluMul4 => (ACTIVATION_WGSL, "silu_mul4"),
            Kernel::ActInplace => (ACTIVATION_WGSL, "act_inplace"),
            Kernel::Add => (ACTIVATION_WGSL, "add"),
            Kernel::Add4 => (ACTIVATION_WGSL, "add4"),
            Kernel::Scale => (ACTIVATION_WGSL, "scale"),
            Kernel::Embed(_) => (EMBEDDING_WGSL, "embed"),
            Kernel::GatherRows => (ROWS_WGSL, "gather_rows"),
            Kernel::LseInit => (LOGPROB_WGSL, "lse_init"),
            Kernel::LseChunk => (LOGPROB_WGSL, "lse_chunk"),
            Kernel::MatmulBackwardInput(d) if super::quant::scales_factor_out(d) => {
                (MATMUL_BACKWARD_WGSL, "matmul_backward_input_q_sums")
            }
            Kernel::MatmulBackwardInput(d) if d.is_quantized() => {
                (MATMUL_BACKWARD_WGSL, "matmul_backward_input_q")
            }
            Kernel::MatmulBackwardInput(_) => (MATMUL_BACKWARD_WGSL, "matmul_backward_input_f"),
            Kernel::MatmulBackwardInputGeneral(_) => {
                (MATMUL_BACKWARD_WGSL, "matmul_backward_input_general")
            }
            Kernel::Gemm => (GEMM_WGSL, "gemm"),
            Kernel::GemmVec4 { .. } => (GEMM_WGSL, "gemm_v4"),
            Kernel::GemmSplitK { vec4: false } => (GEMM_WGSL, "gemm_splitk"),
            Kernel::GemmSplitK { vec4: true } => (GEMM_WGSL, "gemm_splitk_v4"),
            Kernel::GemmLanes => (GEMM_WGSL, "gemm_lanes_v4"),
            Kernel::RmsNormBackward => (NORM_WGSL, "rmsnorm_backward"),
            Kernel::SiluMulBackward => (ACTIVATION_WGSL, "silu_mul_backward"),
            Kernel::SiluMulBackward4 => (ACTIVATION_WGSL, "silu_mul_backward4"),
            Kernel::AttentionBackwardQ => (ATTENTION_WGSL, "attention_backward_q"),
            Kernel::AttentionBackwardKv => (ATTENTION_WGSL, "attention_backward_kv"),
            Kernel::AttentionTiledBackwardQ => {
                (ATTENTION_TILED_WGSL, "attention_tiled_backward_q")
            }
            Kernel::AttentionTiledBackwardKv => {
                (ATTENTION_TILED_WGSL, "attention_tiled_backward_kv")
            }
            Kernel::LogprobGrad => (LOGPROB_WGSL, "logprob_grad"),
            Kernel::AdamW => (OPTIM_WGSL, "adamw"),
            Kernel::Sgd => (OPTIM_WGSL, "sgd"),
            Kernel::SumSquares => (OPTIM_WGSL, "sum_squares"),
            Kernel::Sample => (SAMPLE_WGSL, "sample"),
            Kernel::FmaPeak => (PEAK_WGSL, "fma_peak"),
        }
    }
    fn dtype(self) -> Option<DType> {
        match self {
            Kernel::Matmul(d)
            | Kernel::MatmulGeneral(d)
            | Kernel::Matvec(d)
            | Kernel::MatvecShared(d)
            | Kernel::MatvecGeneral(d)
            | Kernel::MatvecSplit(d)
            | Kernel::MatmulRun(d)
            | Kernel::MatvecOneVec4(d, _)
            | Kernel::MatmulVec4(d)
            | Kernel::MatmulRunVec4(d, _)
            | Kernel::MatmulRunWideVec4(d, _)
            | Kernel::MatmulRun16Vec4(d, _)
            | Kernel::MatmulRun16WideVec4(d, _)
            | Kernel::MatmulRunGluVec4(d, ..)
            | Kernel::MatmulRun16GluVec4(d, ..)
            | Kernel::Embed(d)
            | Kernel::MatmulBackwardInput(d)
            | Kernel::MatmulBackwardInputGeneral(d) => Some(d),
            _ => None,
        }
    }
}

/// A built kernel, and the bindings its entry point uses (bit j: binding j; all where unknown):
/// the pipeline's layout has only those, so a dispatch binds only those.
pub(crate) struct KernelPipeline {
    pub pipeline: wgpu::ComputePipeline,
    pub bindings: u64,
}

impl KernelPipeline {
    pub fn uses(&self, binding: u32) -> bool {
        binding >= 64 || self.bindings >> binding & 1 == 1
    }
}

impl Gpu {
    pub(crate) fn pipeline(&self, k: Kernel) -> Result<Arc<KernelPipeline>> {
        let mut cache = self
            .pipelines
            .lock()
            .map_err(|_| Error::Gpu("pipeline cache poisoned".into()))?;
        if let Some(p) = cache.get(&k) {
            return Ok(p.clone());
        }
        let (file, entry) = k.source();
        let tex = k.dtype().is_some_and(|d| self.weight_textures(d));
        let src = module_source(file, self.subgroup_form(), tex);
        // A shader the backend cannot translate (a GL context whose shading language predates
        // compute shaders) is an internal error, not a validation one: catch both.
        let internal = self.device.push_error_scope(wgpu::ErrorFilter::Internal);
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let mut constants: Vec<(&str, f64)> = match k.dtype() {
            Some(d) => vec![("WDTYPE", d.code() as f64)],
            None => vec![],
        };
        if matches!(k, Kernel::AttentionTiled | Kernel::AttentionTiledBackwardQ | Kernel::AttentionTiledBackwardKv) {
            // The head_dim-64 paths keep 4 rows of 16 vec4s per thread: a win where memory is
            // loaded lane by lane (lavapipe / llvmpipe), register spills on a real GPU.
            let cpu = self.adapter.device_type == format!("{:?}", wgpu::DeviceType::Cpu);
            constants.push(("ROWS_IN_REGISTERS", if cpu { 1.0 } else { 0.0 }));
            if k == Kernel::AttentionTiled {
                constants.push(("KV_LANES", (self.subgroup_form() == Subgroups::EightInOrder) as u8 as f64));
            }
        }
        if let Kernel::MatmulRunVec4(_, true)
        | Kernel::MatmulRunWideVec4(_, true)
        | Kernel::MatmulRun16Vec4(_, true)
        | Kernel::MatmulRun16WideVec4(_, true)
        | Kernel::MatmulRunGluVec4(_, true, _)
        | Kernel::MatmulRun16GluVec4(_, true, _) = k
        {
            constants.push(("GROUPED", 1.0));
        }
        if let Kernel::MatmulRunGluVec4(_, _, act) | Kernel::MatmulRun16GluVec4(_, _, act) = k {
            constants.push(("GLU_ACT", 1.0 + act.kind() as f64));
        }
        if let Kernel::AttentionLanes(hd) | Kernel::AttentionLanesBackwardQ(hd) | Kernel::AttentionLanesBackwardKv(hd) = k {
            constants.push(("LANES_HD4", (hd / 4) as f64));
        }
        if let Kernel::MatvecOneVec4(_, true) = k {
            constants.push(("ONE_GROUPED", 1.0));
        }
        if let Kernel::GemmSplitK { .. } = k {
            constants.push(("SPLITK_SLICES", super::gemm::splitk_slices(self) as f64));
        }
        if let Kernel::GemmVec4 { a_along_p, b_along_p } = k {
            constants.push(("A_ALONG_P", a_along_p as u8 as f64));
            constants.push(("B_ALONG_P", b_along_p as u8 as f64));
        }
        // The driver gets the entry point with the branches its constants rule out removed
        // (gpu/specialize.rs); should that step fail, the WGSL as it is.
        let (source, constants, bindings) = match super::specialize::specialize(&src, entry, &constants) {
            Ok(s) => (wgpu::ShaderSource::Naga(std::borrow::Cow::Owned(s.module)), vec![], s.bindings),
            Err(_) => (wgpu::ShaderSource::Wgsl(src.into()), constants, u64::MAX),
        };
        let module = self.device.create_shader_module(wgpu::ShaderModuleDescriptor { label: Some(entry), source });
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: None,
                module: &module,
                entry_point: Some(entry),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants: &constants,
                    zero_initialize_workgroup_memory: false,
                },
                cache: None,
            });
        let validation = pollster::block_on(scope.pop());
        if let Some(e) = pollster::block_on(internal.pop()) {
            return Err(Error::Gpu(format!(
                "building kernel {k:?} on {} ({}): {}; this driver cannot run edgerl's compute shaders (another backend may: EDGERL_BACKEND=vulkan)",
                self.adapter.name,
                self.adapter.backend,
                e.to_string().trim_end()
            )));
        }
        if let Some(e) = validation {
            return Err(Error::Gpu(format!("building kernel {k:?}: {e}")));
        }
        let p = Arc::new(KernelPipeline { pipeline, bindings });
        cache.insert(k, p.clone());
        Ok(p)
    }
}
