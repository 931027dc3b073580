//! The tower's tensors (listed in `tensors`) under the names transformers writes
//! (`model.vision_model.*`, `model.connector.modality_projection.proj.weight`; a bare
//! `vision_model.*` is read too), each checked against the config's shape. Matrices are split by
//! rows past the binding limit as every weight is (`Tensor`); norms and biases are f32 vectors.

use crate::error::{Error, Result};
use crate::gpu::{DType, Gpu, GpuBuffer, Tensor};
use crate::model::weights::{WeightSource, convert, to_f32};

use super::VisionConfig;
use super::tensors::TowerTensor;

pub struct TowerLayer {
    pub ln1_weight: GpuBuffer,
    pub ln1_bias: GpuBuffer,
    pub q: Tensor,
    pub q_bias: GpuBuffer,
    pub k: Tensor,
    pub k_bias: GpuBuffer,
    pub v: Tensor,
    pub v_bias: GpuBuffer,
    pub o: Tensor,
    pub o_bias: GpuBuffer,
    pub ln2_weight: GpuBuffer,
    pub ln2_bias: GpuBuffer,
    pub fc1: Tensor,
    pub fc1_bias: GpuBuffer,
    pub fc2: Tensor,
    pub fc2_bias: GpuBuffer,
}

/// The frozen vision encoder and connector, on the GPU.
pub struct VisionTower {
    pub cfg: VisionConfig,
    /// The stride = kernel Conv2d as a matrix [hidden, channels · patch²].
    pub patch: Tensor,
    pub patch_bias: GpuBuffer,
    /// [patches_per_side², hidden].
    pub position: Tensor,
    pub layers: Vec<TowerLayer>,
    pub post_weight: GpuBuffer,
    pub post_bias: GpuBuffer,
    /// [text hidden, hidden · scale_factor²], no bias.
    pub projection: Tensor,
}

/// Where the tower's tensors sit in a checkpoint: "model." for what transformers writes, "" for
/// bare `vision_model.*` checkpoints.
pub fn tensor_prefix(src: &dyn WeightSource) -> Result<&'static str> {
    let probe = "vision_model.post_layernorm.weight";
    if src.has(&format!("model.{probe}")) {
        Ok("model.")
    } else if src.has(probe) {
        Ok("")
    } else {
        Err(Error::file(
            &src.origin(),
            "no vision tower (model.vision_model.*): not an Idefics3 / SmolVLM checkpoint",
        ))
    }
}

struct Loader<'a> {
    gpu: &'a Gpu,
    src: &'a dyn WeightSource,
    dtype: Option<DType>,
    prefix: &'static str,
}

impl Loader<'_> {
    fn raw(&self, s: &TowerTensor) -> Result<crate::model::weights::RawTensor<'_>> {
        let full = format!("{}{}", self.prefix, s.name);
        let t = self
            .src
            .get(&full)?
            .ok_or_else(|| Error::file(&self.src.origin(), format!("missing tensor {full}")))?;
        if t.shape != s.shape {
            return Err(Error::file(
                &t.origin,
                format!(
                    "tensor {full} has shape {:?} but config.json implies {:?}",
                    t.shape, s.shape
                ),
            ));
        }
        Ok(t)
    }

    fn matrix(&self, s: &TowerTensor) -> Result<Tensor> {
        let t = self.raw(s)?;
        let dtype = self.dtype.unwrap_or(t.dtype);
        let bytes = convert(&t, dtype)?;
        Tensor::from_bytes(self.gpu, &s.name, dtype, s.rows(), s.cols(), &bytes)
    }

    fn vector(&self, s: &TowerTensor) -> Result<GpuBuffer> {
        let v = to_f32(&self.raw(s)?)?;
        self.gpu.upload(bytemuck::cast_slice(&v), &s.name)
    }
}

impl VisionTower {
    /// Uploads the tower of a checkpoint whose config is `cfg`. `dtype` overrides how matrices
    /// are stored (as `Model::load`'s does); norms and biases are f32.
    pub fn load(
        gpu: &Gpu,
        cfg: VisionConfig,
        src: &dyn WeightSource,
        dtype: Option<DType>,
    ) -> Result<VisionTower> {
        let l = Loader { gpu, src, dtype, prefix: tensor_prefix(src)? };
        let g = cfg.global_tensors();
        let mut layers = Vec::with_capacity(cfg.num_layers);
        for li in 0..cfg.num_layers {
            let t = cfg.layer_tensors(li);
            layers.push(TowerLayer {
                ln1_weight: l.vector(&t.ln1_weight)?,
                ln1_bias: l.vector(&t.ln1_bias)?,
                q: l.matrix(&t.q)?,
                q_bias: l.vector(&t.q_bias)?,
                k: l.matrix(&t.k)?,
                k_bias: l.vector(&t.k_bias)?,
                v: l.matrix(&t.v)?,
                v_bias: l.vector(&t.v_bias)?,
                o: l.matrix(&t.o)?,
                o_bias: l.vector(&t.o_bias)?,
                ln2_weight: l.vector(&t.ln2_weight)?,
                ln2_bias: l.vector(&t.ln2_bias)?,
                fc1: l.matrix(&t.fc1)?,
                fc1_bias: l.vector(&t.fc1_bias)?,
                fc2: l.matrix(&t.fc2)?,
                fc2_bias: l.vector(&t.fc2_bias)?,
            });
        }
        Ok(VisionTower {
            patch: l.matrix(&g.patch)?,
            patch_bias: l.vector(&g.patch_bias)?,
            position: l.matrix(&g.position)?,
            layers,
            post_weight: l.vector(&g.post_weight)?,
            post_bias: l.vector(&g.post_bias)?,
            projection: l.matrix(&g.projection)?,
            cfg,
        })
    }

    /// Bytes of the tower's weights on the GPU.
    pub fn weight_bytes(&self) -> u64 {
        let v = |b: &GpuBuffer| b.bytes;
        let layers: u64 = self
            .layers
            .iter()
            .map(|l| {
                [&l.q, &l.k, &l.v, &l.o, &l.fc1, &l.fc2].iter().map(|t| t.bytes()).sum::<u64>()
                    + [
                        &l.ln1_weight, &l.ln1_bias, &l.q_bias, &l.k_bias, &l.v_bias, &l.o_bias,
                        &l.ln2_weight, &l.ln2_bias, &l.fc1_bias, &l.fc2_bias,
                    ]
                    .iter()
                    .map(|b| v(b))
                    .sum::<u64>()
            })
            .sum();
        self.patch.bytes()
            + self.position.bytes()
            + self.projection.bytes()
            + v(&self.patch_bias)
            + v(&self.post_weight)
            + v(&self.post_bias)
            + layers
    }
}
