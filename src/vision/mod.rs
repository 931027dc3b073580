//! Seeing the screen: what a vision-language model (SmolVLM / Idefics3) needs besides its text
//! model. `preprocess` turns image files into the tower's pixel values and expands the prompt's
//! image placeholders as the transformers processor does; `tower` runs the frozen vision encoder
//! and connector on the GPU; `model` joins them for a prompt with images.

pub mod model;
pub mod preprocess;
pub mod tower;

pub use model::{EncodedImages, ImageSide};
