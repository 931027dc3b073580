//! The weights' bytes on the GPU without loading them: `Model::load` replayed on sizes. Matrices
//! take the override type or their stored one, are split by rows into pieces of at most the
//! storage-binding limit (`Tensor::from_bytes`), each piece rounded as `Gpu::alloc` rounds it;
//! norms and biases are f32; a tied output projection is the embedding itself.

use crate::error::{Error, Result};
use crate::gpu::{DType, Tensor};
use crate::model::ModelConfig;
use crate::model::tensors::{Kind, TensorSpec};
use crate::model::weights::WeightSource;

use super::sim::buffer_bytes;

/// On-GPU bytes of a model's weights.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct WeightBytes {
    /// Everything `Model::weight_bytes` counts once loaded.
    pub total: u64,
    /// The largest single buffer (a matrix piece).
    pub largest_piece: u64,
    /// A vision-language model's image side: its tower's weights (included in `total` and
    /// `largest_piece`) and, once a dataset's images are known, one prompt's tower run and the
    /// image features alive with the groups (`PlanInput::from_train_config` fills them in).
    /// Carried with the weights so that every plan made from a model's meta counts the tower.
    pub vision: Option<super::VisionLoad>,
}

struct Sizer<'a> {
    src: &'a dyn WeightSource,
    dtype: Option<DType>,
    max_binding: u64,
    out: WeightBytes,
}

impl Sizer<'_> {
    fn add(&mut self, bytes: u64) {
        let b = buffer_bytes(bytes);
        self.out.total += b;
        self.out.largest_piece = self.out.largest_piece.max(b);
    }

    fn missing(&self, name: &str) -> Error {
        Error::file(&self.src.origin(), format!("missing tensor {name}"))
    }

    /// `Loader::matrix` + `Tensor::from_bytes`: one buffer per piece of rows.
    fn matrix(&mut self, name: &str, rows: usize, cols: usize) -> Result<()> {
        let stored = self.src.dtype_of(name)?.ok_or_else(|| self.missing(name))?;
        let dtype = self.dtype.unwrap_or(stored);
        let row_bytes = dtype
            .row_bytes(cols)
            .map_err(|e| Error::Invalid(format!("{name}: {e}")))? as u64;
        let per = Tensor::rows_per_piece(cols, dtype, self.max_binding)?;
        let mut r = 0;
        while r < rows.max(1) {
            let n = per.min(rows - r);
            self.add(n as u64 * row_bytes);
            r += n;
            if rows == 0 {
                break;
            }
        }
        Ok(())
    }

    /// `Loader::stacked`: where `specs` stack (`Layer::qkv`, `Layer::gate_up`), one buffer of
    /// their rows (their row views add nothing) and one of their biases besides their own;
    /// whether they did.
    fn stacked<const N: usize>(&mut self, allowed: bool, specs: [&TensorSpec; N], biases: [&TensorSpec; N]) -> Result<bool> {
        let mut dtypes = Vec::new();
        for t in specs {
            let stored = self.src.dtype_of(&t.name)?.ok_or_else(|| self.missing(&t.name))?;
            dtypes.push(self.dtype.unwrap_or(stored));
        }
        let rows = specs.map(|t| t.shape[0]);
        let cols = specs[0].shape[1];
        let biased = biases.map(|b| self.src.has(&b.name));
        let stacks = allowed
            && dtypes.iter().all(|d| *d == dtypes[0])
            && biased.iter().all(|b| *b == biased[0])
            && Tensor::stacks(dtypes[0], &rows, cols, self.max_binding);
        if stacks {
            self.add((rows.iter().sum::<usize>() * dtypes[0].row_bytes(cols)?) as u64);
            if biased[0] {
                self.add(biases.iter().map(|b| b.shape[0] as u64 * 4).sum());
            }
        }
        Ok(stacks)
    }

    /// `Loader::vector`: f32 whatever the stored type.
    fn vector(&mut self, name: &str, len: usize) -> Result<()> {
        if !self.src.has(name) {
            return Err(self.missing(name));
        }
        self.add(len as u64 * 4);
        Ok(())
    }

    /// One tensor of the config's list; an optional one the file lacks takes nothing.
    fn tensor(&mut self, t: &TensorSpec) -> Result<()> {
        if t.optional() && !self.src.has(&t.name) {
            return Ok(());
        }
        match t.kind {
            Kind::Matrix => self.matrix(&t.name, t.shape[0], t.shape[1]),
            Kind::Vector => self.vector(&t.name, t.shape[0]),
        }
    }
}

/// The bytes `Model::load(gpu, cfg, src, dtype)` would allocate on a device whose binding limit
/// is `max_binding`, read from the tensor directory alone.
pub fn weight_bytes(
    cfg: &ModelConfig,
    src: &dyn WeightSource,
    dtype: Option<DType>,
    max_binding: u64,
) -> Result<WeightBytes> {
    let mut s = Sizer {
        src,
        dtype,
        max_binding,
        out: WeightBytes::default(),
    };
    for t in cfg.global_tensors().into_list() {
        s.tensor(&t)?;
    }
    for n in 0..cfg.num_layers {
        let l = cfg.layer_tensors(n);
        let mut parts = Vec::new();
        if s.stacked(cfg.stacks_qkv(), [&l.q, &l.k, &l.v], [&l.q_bias, &l.k_bias, &l.v_bias])? {
            parts.extend([l.q.name.clone(), l.k.name.clone(), l.v.name.clone()]);
        }
        let unbiased = !src.has(&l.gate_bias.name) && !src.has(&l.up_bias.name);
        if s.stacked(unbiased, [&l.gate, &l.up], [&l.gate_bias, &l.up_bias])? {
            parts.extend([l.gate.name.clone(), l.up.name.clone()]);
        }
        for t in l.into_list() {
            if !parts.contains(&t.name) {
                s.tensor(&t)?;
            }
        }
    }
    Ok(s.out)
}
