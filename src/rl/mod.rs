//! Reinforcement learning: configuration, rollouts, the GRPO-family objective, the trainer.

pub mod checkpoint;
pub mod config;
pub mod episode;
pub mod eval;
mod faults;
pub mod fingerprint;
mod kept;
pub mod loss;
pub mod metrics;
pub mod report;
pub mod rollout;
pub mod rollouts;
pub mod run;
pub mod select;
pub mod sft;
pub mod state;
pub mod step;
pub mod trainer;

pub use config::TrainConfig;
