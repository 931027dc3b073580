//! The tower's device bytes without loading or running it, for the memory plan:
//! `VisionTower::load` and `VisionTower::run` replayed on sizes (each buffer rounded as
//! `Gpu::alloc` rounds it). Tests hold both equal to what the memory counter measures.

use crate::error::{Error, Result};
use crate::gpu::{DType, Tensor};
use crate::model::weights::WeightSource;

use super::VisionConfig;
use super::weights::tensor_prefix;

/// `Gpu::alloc`'s size for a request of `bytes`.
fn buffer_bytes(bytes: u64) -> u64 {
    bytes.max(4).div_ceil(4) * 4
}

/// The bytes `VisionTower::load(gpu, cfg, src, dtype)` allocates on a device whose binding
/// limit is `max_binding`, from the tensor directory alone.
pub fn tower_weight_bytes(
    cfg: &VisionConfig,
    src: &dyn WeightSource,
    dtype: Option<DType>,
    max_binding: u64,
) -> Result<u64> {
    let prefix = tensor_prefix(src)?;
    let mut total = 0;
    for t in cfg.tower_tensors() {
        let name = format!("{prefix}{}", t.name);
        let stored = src
            .dtype_of(&name)?
            .ok_or_else(|| Error::file(&src.origin(), format!("missing tensor {name}")))?;
        if !t.matrix {
            total += buffer_bytes(t.rows() as u64 * 4);
            continue;
        }
        let dtype = dtype.unwrap_or(stored);
        let (rows, cols) = (t.rows(), t.cols());
        let row_bytes = dtype.row_bytes(cols).map_err(|e| Error::Invalid(format!("{name}: {e}")))? as u64;
        let per = Tensor::rows_per_piece(cols, dtype, max_binding)?;
        let mut r = 0;
        while r < rows {
            let n = per.min(rows - r);
            total += buffer_bytes(n as u64 * row_bytes);
            r += n;
        }
    }
    Ok(total)
}

/// At most this many images a chunk: bounds `run`'s scratch (SmolVLM-256M: about 35 MB an
/// image) while each product still has 2 × 1024 rows.
pub const MAX_CHUNK_IMAGES: usize = 2;

/// Whole images per chunk of `run`: up to `MAX_CHUNK_IMAGES`, as many as keep every activation
/// (patches, hidden states, MLP rows, features) within one binding of `max_binding` bytes.
pub fn images_per_chunk(cfg: &VisionConfig, seq: usize, max_binding: u64) -> Result<usize> {
    let tokens = seq / (cfg.scale_factor * cfg.scale_factor);
    let widest = [cfg.patch_dim(), cfg.hidden_size, cfg.intermediate_size]
        .iter()
        .map(|w| seq * w * 4)
        .chain([tokens * cfg.text_hidden_size * 4])
        .max()
        .unwrap_or(0) as u64;
    let n = max_binding / widest.max(1);
    if n == 0 {
        return Err(Error::Invalid(format!(
            "one image's vision activations ({widest} bytes) exceed the device's {max_binding}-byte storage binding limit"
        )));
    }
    Ok((n as usize).min(MAX_CHUNK_IMAGES))
}

/// The device bytes `run` holds at its peak above the weights, for `images` real images of
/// `side` patches a side: the scratch of the largest chunk, that chunk's uploads (patches,
/// position ids, key mask, the pixel shuffle's gather index) and the 4-byte stand-in the
/// bias-less projection binds.
pub fn tower_run_bytes(cfg: &VisionConfig, images: usize, side: usize, max_binding: u64) -> Result<u64> {
    if images == 0 {
        return Ok(0);
    }
    let seq = side * side;
    let rows = (images_per_chunk(cfg, seq, max_binding)?.min(images) * seq) as u64;
    let tokens = rows / (cfg.scale_factor * cfg.scale_factor) as u64;
    let (d, i, p, t) = (
        cfg.hidden_size as u64,
        cfg.intermediate_size as u64,
        cfg.patch_dim() as u64,
        cfg.text_hidden_size as u64,
    );
    let scratch = 6 * buffer_bytes(rows * d * 4) + buffer_bytes(rows * i * 4) + buffer_bytes(tokens * t * 4);
    let uploads = buffer_bytes(rows * p * 4) + 2 * buffer_bytes(rows * 4) + buffer_bytes((2 * rows + 1) * 4);
    Ok(scratch + uploads + 4)
}

/// The features buffer `image_features_on_gpu` allocates (held after the run, on top of
/// `tower_run_bytes` while it runs).
pub fn tower_output_bytes(cfg: &VisionConfig, images: usize, side: usize) -> u64 {
    let tokens = side * side / (cfg.scale_factor * cfg.scale_factor);
    buffer_bytes((images * tokens * cfg.text_hidden_size * 4) as u64)
}
