//! What the planner's bytes are for: the categories it reports, bytes per category, and the
//! largest single buffer.

use serde::Serialize;

/// What a buffer is for, as the plan reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Weights,
    LoraParams,
    LoraGrads,
    OptimizerState,
    KvCache,
    SavedActivations,
    RecomputedLayer,
    BackwardScratch,
    LogitsChunks,
    /// A vision-language model's image features ([image tokens, text hidden] f32 a prompt),
    /// alive from the tower run through sampling and the training pass.
    ImageFeatures,
    /// The vision tower's run (one prompt's tiles, a chunk at a time): its scratch and uploads.
    VisionTower,
    Other,
}

impl Category {
    pub const ALL: [Category; 12] = [
        Category::Weights,
        Category::LoraParams,
        Category::LoraGrads,
        Category::OptimizerState,
        Category::KvCache,
        Category::SavedActivations,
        Category::RecomputedLayer,
        Category::BackwardScratch,
        Category::LogitsChunks,
        Category::ImageFeatures,
        Category::VisionTower,
        Category::Other,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Category::Weights => "weights",
            Category::LoraParams => "LoRA parameters",
            Category::LoraGrads => "LoRA gradients",
            Category::OptimizerState => "optimizer state",
            Category::KvCache => "KV cache (rollouts)",
            Category::SavedActivations => "saved activations",
            Category::RecomputedLayer => "one recomputed layer (scratch)",
            Category::BackwardScratch => "backward scratch",
            Category::LogitsChunks => "logits chunks",
            Category::ImageFeatures => "image features",
            Category::VisionTower => "vision tower run (scratch)",
            Category::Other => "other (small buffers)",
        }
    }
}

/// Bytes per category, indexed by `Category as usize`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ByCategory(pub [u64; 12]);

impl ByCategory {
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
    pub fn get(&self, c: Category) -> u64 {
        self.0[c as usize]
    }
}

/// One buffer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Binding {
    pub bytes: u64,
    pub what: String,
}
