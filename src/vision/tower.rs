//! The frozen vision encoder (SigLIP) and pixel-shuffle connector of Idefics3, on the GPU.
//!
//! `config` reads the shapes from `config.json`; `input` prepares transformers-style pixel
//! values and masks on the CPU (padding images dropped, patch masks, bucketed position ids,
//! patches unfolded so the patch embedding is a product); `tensors` lists the checkpoint's
//! tensors, `weights` uploads them and `plan` sizes them (weights and a run's peak); `forward`
//! runs the encoder (LayerNorm with bias, bidirectional attention within each image under the
//! patch mask, GELU-tanh MLP, post-LayerNorm) and the connector (pixel shuffle as a row gather,
//! the projection to the text model's width), chunk by chunk of whole images.

mod config;
mod forward;
mod input;
mod plan;
mod tensors;
mod weights;

pub use config::VisionConfig;
pub use forward::ImageFeatures;
pub use input::{
    Pixels, Prepared, bucket_boundaries, patch_mask, pixel_shuffle_sources, position_ids, prepare,
};
pub use plan::{
    MAX_CHUNK_IMAGES, images_per_chunk, tower_output_bytes, tower_run_bytes, tower_weight_bytes,
};
pub use tensors::{GlobalTensors, LayerTensors, TowerTensor};
pub use weights::{TowerLayer, VisionTower, tensor_prefix};
