//! LoRA adapters as files and names: PEFT's adapter_config.json / safetensors and its
//! `target_modules` matching. The tensors themselves (`Lora`, one `LoraModule` per adapted
//! projection, `Target`) live in `model::adapter`, which the passes read; they are re-exported
//! here. Passing no adapter to the forward pass gives the base model — the KL reference costs no
//! second copy of the weights.

pub mod peft;
mod peft_modules;

pub use crate::model::adapter::{Lora, LoraConfig, LoraModule, Target};
