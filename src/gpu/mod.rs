//! The only module that touches wgpu.

pub mod attention;
pub mod backward;
pub mod device;
pub mod gemm;
pub mod kernels;
pub mod lora_term;
pub mod matvec_form;
pub mod memory;
pub mod pipeline;
pub mod quant;
pub mod recorder;
pub mod rows;
pub mod sample;
mod specialize;
pub mod tensor;
pub mod weight_texture;
pub mod x_texture;

pub use device::{AdapterSummary, Gpu, GpuFeatures, GpuOptions};
pub use kernels::{Activation, LoraTerm, MatvecForm, Packing, Recorder};
pub use memory::{GpuBuffer, MemoryCounter};
pub use tensor::{DType, Piece, Tensor};
