//! The enumerated keys of `run.toml`, spelled as TRL spells their values.

use serde::Deserialize;

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LossType {
    Grpo,
    Bnpo,
    DrGrpo,
    Dapo,
    Cispo,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScaleRewards {
    Group,
    Batch,
    None,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Advantage {
    Grpo,
    WReinforce,
    Psr,
    Nsr,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportanceSampling {
    Token,
    Sequence,
}

/// TRL's `vllm_importance_sampling_mode`: how the sampler/trainer ratio
/// exp(lp_old − lp_sampler) is formed (per token, or one per completion from the summed
/// log-ratio) and kept in [clip_min, clip_max] (truncate: clamped; mask: set to 0 outside).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IsMode {
    TokenTruncate,
    TokenMask,
    SequenceTruncate,
    SequenceMask,
}

impl IsMode {
    pub fn sequence(self) -> bool {
        matches!(self, IsMode::SequenceTruncate | IsMode::SequenceMask)
    }
    pub fn mask(self) -> bool {
        matches!(self, IsMode::TokenMask | IsMode::SequenceMask)
    }
}

/// Which sampler log-probs the importance-sampling correction compares the trainer's with.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SamplerLogprobs {
    /// Under the distribution the token was drawn from: temperature, then top-k / top-p /
    /// min-p, renormalised (vLLM's `--logprobs-mode processed_logprobs`, which TRL 1.16 requires).
    Processed,
    /// Under the unfiltered distribution at the sampling temperature (the numeric mismatch
    /// alone, without the filters' renormalisation). Identical when no filter is on.
    Unfiltered,
}

/// The importance-sampling correction a run applies (`TrainConfig::sampler_correction`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SamplerCorrection {
    pub mode: IsMode,
    /// −∞ / +∞ when unbounded.
    pub clip_min: f64,
    pub clip_max: f64,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Optimizer {
    Adamw,
    Sgd,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    Constant,
    Linear,
    Cosine,
}

/// `gradient_checkpointing`: `true` (TRL's GRPO default: keep only each layer's input and
/// recompute the layer in the backward pass), `false` (keep every activation: faster, more
/// memory), or `"auto"` (edgerl's default for GRPO): the front end asks the memory plan before
/// the run (`edgerl train`, the demo, Python) or before each step (a session) and keeps the
/// activations when the step fits without recomputing — within the memory budget when one is
/// set, else within `plan::AUTO_KEEP_ACTIVATIONS_BYTES`. Until it is decided, `"auto"` acts as
/// `true`. SFT configs default to `true` (TRL's SFT default) and refuse `"auto"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Checkpointing {
    On,
    Off,
    #[default]
    Auto,
}

impl Checkpointing {
    /// Whether the backward pass recomputes each layer (an undecided `Auto` does: the side that
    /// needs less memory).
    pub fn recomputes(self) -> bool {
        self != Checkpointing::Off
    }
}

impl From<bool> for Checkpointing {
    fn from(on: bool) -> Self {
        if on { Checkpointing::On } else { Checkpointing::Off }
    }
}

impl<'de> Deserialize<'de> for Checkpointing {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Flag(bool),
            Word(String),
        }
        match Raw::deserialize(d) {
            Ok(Raw::Flag(b)) => Ok(b.into()),
            Ok(Raw::Word(w)) if w == "auto" => Ok(Checkpointing::Auto),
            _ => Err(serde::de::Error::custom(
                "`gradient_checkpointing` must be true, false or \"auto\"",
            )),
        }
    }
}
