//! edgerl: fine-tune small language models on the device they run on, with every heavy step
//! a WGSL compute shader run through wgpu.

pub mod bench;
pub mod data;
pub mod error;
pub mod gpu;
pub mod model;

pub use error::{Error, Result};
