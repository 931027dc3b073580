//! edgerl: fine-tune small language models on the device they run on, with every heavy step
//! a WGSL compute shader run through wgpu.

pub mod bench;
pub mod cancel;
pub mod data;
pub mod demo;
pub mod error;
#[cfg(feature = "fetch")]
pub mod fetch;
pub mod ffi;
#[doc(hidden)]
pub mod fuzzing;
pub mod gpu;
pub mod io;
pub mod lora;
pub mod model;
pub mod plan;
pub mod reward;
pub mod rl;
pub mod units;
pub mod vision;

pub use error::{Error, Result};
