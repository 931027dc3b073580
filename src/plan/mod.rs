//! The memory planner: the peak device bytes of a training iteration — sampling a group's
//! rollouts with batched decoding, the training step over the groups (one packed forward and
//! backward per pack), the optimizer update — predicted from shapes alone and reported by
//! category, and the knobs (gradient checkpointing, pack size) that make it fit a budget.
//!
//! The prediction replays the allocations of the real code (`sim`), assuming the worst case:
//! every completion runs to `max_completion_length` after the longest prompt, and the optimizer
//! state exists (from the first update on).

mod budget;
mod category;
mod command;
mod setup;
mod sim;
mod vision;
mod weights;

pub use crate::units::fmt_bytes;
pub use budget::parse_budget;
pub use category::{Binding, ByCategory, Category};
pub use command::{PlanArgs, plan_command, with_out_of_memory_advice};
pub use setup::{ModelMeta, fit_train_config, model_meta, settle_auto_checkpointing, settle_auto_checkpointing_rows};
pub use vision::{VisionLoad, image_size, prompt_with_images};
pub use weights::{WeightBytes, weight_bytes};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::lora::LoraConfig;
use crate::model::ModelConfig;
use crate::model::adapter::LoraStack;
use crate::rl::config::Optimizer;
use sim::{Shapes, Sim};

/// Without a memory budget, `gradient_checkpointing = "auto"` keeps every activation (no
/// recomputation: a faster backward pass) when the whole iteration then peaks within this: a
/// size the phones and laptops edgerl targets have free. A budget replaces it.
pub const AUTO_KEEP_ACTIVATIONS_BYTES: u64 = 1 << 30;

/// Everything the plan depends on.
#[derive(Clone, Debug)]
pub struct PlanInput {
    pub model: ModelConfig,
    /// The weights as they will sit on the GPU (`weight_bytes`).
    pub weights: WeightBytes,
    pub lora: LoraConfig,
    pub optimizer: Optimizer,
    pub gradient_checkpointing: bool,
    /// Completions per packed pass (`Trainer::pack_size`; `None`: the whole group).
    pub pack_size: Option<usize>,
    /// The longest prompt, in tokens (P).
    pub prompt_tokens: usize,
    /// Tokens per completion (C): `max_completion_length`, or the longest given completion.
    pub completion_tokens: usize,
    /// Completions per prompt (G).
    pub num_generations: usize,
    /// Online training: groups are sampled on the device (offline rollouts are not).
    pub rollouts: bool,
    /// beta > 0: a forward pass of the base model per pack for the KL reference.
    pub reference_pass: bool,
    /// Groups sampled per step (`prompts_per_step`). Without gradient checkpointing each
    /// group's sampling keeps its activations for its training pass (`Trainer::keeps_rollouts`),
    /// so every group of the step holds them until its pass.
    pub groups_per_step: usize,
    /// Sampling keeps each group's activations when checkpointing is off (`TrainConfig::
    /// keep_rollouts`): the step skips its forward pass, and holds every group's activations.
    pub keep_rollouts: bool,
    /// The device's storage-binding limit (`Gpu::max_binding`): sets the vocabulary chunks.
    pub max_binding: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// A vision-language model's tower over one prompt's images (`ImageSide::encode`), the
    /// step's other prompts' features alive.
    VisionTower,
    /// Sampling one group (`Model::sample_group`): prefill, then batched decode steps.
    Rollout,
    /// One packed forward and backward (`Trainer::step`), the largest pack.
    TrainStep,
    /// Gradient clipping and the optimizer step (`Trainer::update`).
    Update,
}

impl Phase {
    pub fn label(self) -> &'static str {
        match self {
            Phase::VisionTower => "vision tower",
            Phase::Rollout => "rollout",
            Phase::TrainStep => "training step",
            Phase::Update => "optimizer update",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct CategoryBytes {
    pub category: Category,
    pub label: &'static str,
    pub bytes: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct PhasePlan {
    pub phase: Phase,
    pub peak_bytes: u64,
    /// What is alive at the phase's peak.
    pub by_category: Vec<CategoryBytes>,
    pub largest_binding: Binding,
}

/// The knobs the plan was made with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Knobs {
    pub gradient_checkpointing: bool,
    /// Completions per packed pass (G when the whole group is one pack).
    pub pack_size: usize,
    pub optimizer: Optimizer,
    pub lora_rank: usize,
    /// Sampling keeps each group's activations for its pass (with checkpointing off).
    pub keep_rollouts: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Workload {
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub num_generations: usize,
    /// Tokens in the largest pack: P + pack_size · (C − 1).
    pub packed_tokens: usize,
    /// Rows scored over the vocabulary in that pack: pack_size · C.
    pub packed_rows: usize,
    pub rollouts: bool,
    pub reference_pass: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    pub peak_bytes: u64,
    pub peak_phase: Phase,
    /// What is alive at the peak, by category.
    pub by_category: Vec<CategoryBytes>,
    pub phases: Vec<PhasePlan>,
    pub largest_binding: Binding,
    pub max_binding: u64,
    pub knobs: Knobs,
    pub workload: Workload,
}

fn categories(b: &ByCategory) -> Vec<CategoryBytes> {
    Category::ALL
        .iter()
        .map(|&c| CategoryBytes {
            category: c,
            label: c.label(),
            bytes: b.get(c),
        })
        .collect()
}

impl Plan {
    pub fn phase(&self, p: Phase) -> Option<&PhasePlan> {
        self.phases.iter().find(|x| x.phase == p)
    }

    /// The peak of the training step and update alone (what `edgerl bench --train` measures).
    pub fn training_step_peak(&self) -> u64 {
        self.phases
            .iter()
            .filter(|p| !matches!(p.phase, Phase::Rollout | Phase::VisionTower))
            .map(|p| p.peak_bytes)
            .max()
            .unwrap_or(0)
    }

    /// The biggest category at the peak.
    pub fn largest_category(&self) -> &CategoryBytes {
        self.by_category
            .iter()
            .max_by_key(|c| c.bytes)
            .unwrap_or(&self.by_category[0])
    }

    /// Whether the iteration fits `budget` bytes, every buffer within the binding limit.
    pub fn fits(&self, budget: u64) -> bool {
        self.peak_bytes <= budget && self.largest_binding.bytes <= self.max_binding
    }
}

impl PlanInput {
    /// Completions in the largest pack.
    pub fn pack(&self) -> usize {
        self.pack_size
            .unwrap_or(self.num_generations)
            .clamp(1, self.num_generations.max(1))
    }

    /// The predicted peak and its breakdown.
    pub fn plan(&self) -> Result<Plan> {
        let (p, c, g) = (
            self.prompt_tokens,
            self.completion_tokens,
            self.num_generations,
        );
        if p == 0 || c == 0 || g == 0 || self.lora.r == 0 {
            return Err(Error::Invalid(format!(
                "planning needs a prompt, completions and a LoRA rank of at least 1 (P = {p}, C = {c}, G = {g}, r = {})",
                self.lora.r
            )));
        }
        let s = Shapes::new(&self.model, self.max_binding);
        let r = self.lora.r as u64;
        let k = self.pack();
        let (t, n) = (p + k * (c - 1), k * c);
        let tensors = sim::lora_tensors(&self.model, &self.lora);
        // Alive throughout: weights, the adapter and its gradients, Adam's moments.
        let persistent = || {
            let mut sim = Sim::new();
            sim.hold(Category::Weights, self.weights.total);
            sim.largest = Binding {
                bytes: self.weights.largest_piece,
                what: "weight matrix piece".into(),
            };
            for (cat, times) in [
                (Category::LoraParams, 1),
                (Category::LoraGrads, 1),
                (Category::OptimizerState, 2),
            ] {
                if cat == Category::OptimizerState && self.optimizer != Optimizer::Adamw {
                    continue;
                }
                for &e in tensors.iter().cycle().take(times * tensors.len()) {
                    sim.hold(cat, e * 4);
                }
            }
            // Each layer's adapters as inference's stacked products read them.
            for n in LoraStack::sizes(&self.model, self.lora.r, &self.lora.targets) {
                sim.hold(Category::LoraParams, (n * self.model.num_layers) as u64 * 4);
            }
            sim
        };
        // A vision-language model's images: the features each phase holds (none planned: the
        // tower's weights alone, in `weights.total`).
        let vision = self.weights.vision.filter(|v| v.max_tiles > 0);
        let held = |sim: &mut Sim, phase: Phase| {
            if let Some(v) = vision {
                let bytes = match phase {
                    Phase::VisionTower => v.held_at_tower,
                    Phase::Rollout => v.held_at_rollout,
                    Phase::TrainStep | Phase::Update => v.held_at_step,
                };
                sim.hold(Category::ImageFeatures, bytes);
            }
        };
        let mut phases = Vec::new();
        let mut run = |phase: Phase, f: &dyn Fn(&mut Sim)| {
            let mut sim = persistent();
            held(&mut sim, phase);
            f(&mut sim);
            phases.push(PhasePlan {
                phase,
                peak_bytes: sim.peak.total(),
                by_category: categories(&sim.peak),
                largest_binding: sim.largest,
            });
        };
        if let Some(v) = vision {
            run(Phase::VisionTower, &|sim| sim::tower_run(sim, &v));
        }
        let (gc, reference) = (self.gradient_checkpointing, self.reference_pass);
        // Sampling keeps each group's activations: the step's other groups hold theirs while
        // one is sampled or trained (the worst case: the first group trains last).
        let keeps = self.rollouts && !gc && self.keep_rollouts;
        let (pu, gu, cu) = (p as u64, g as u64, c as u64);
        let others = if keeps { self.groups_per_step.max(1) as u64 - 1 } else { 0 };
        let kept = sim::kept_rollout_bytes(&s, pu, gu, cu, r);
        if self.rollouts {
            run(Phase::Rollout, &|sim| {
                sim.hold(Category::SavedActivations, others * kept);
                sim::sample_group(sim, &s, pu, gu, cu, r, keeps)
            });
        }
        run(Phase::TrainStep, &|sim| {
            sim.hold(Category::SavedActivations, others * kept);
            let rollout = keeps.then(|| (sim::Kept { p: pu, g: gu, c: cu }, k < g));
            sim::train_pack(sim, &s, t as u64, n as u64, r, gc, reference, rollout)
        });
        run(Phase::Update, &|sim| sim::update(sim, tensors.len()));
        let top = phases
            .iter()
            .max_by_key(|x| x.peak_bytes)
            .cloned()
            .ok_or_else(|| Error::Invalid("no phases".into()))?;
        let largest = phases
            .iter()
            .map(|x| x.largest_binding.clone())
            .max_by_key(|b| b.bytes)
            .unwrap_or_default();
        Ok(Plan {
            peak_bytes: top.peak_bytes,
            peak_phase: top.phase,
            by_category: top.by_category,
            phases,
            largest_binding: largest,
            max_binding: self.max_binding,
            knobs: Knobs {
                gradient_checkpointing: self.gradient_checkpointing,
                pack_size: k,
                optimizer: self.optimizer,
                lora_rank: self.lora.r,
                keep_rollouts: self.keep_rollouts,
            },
            workload: Workload {
                prompt_tokens: p,
                completion_tokens: c,
                num_generations: g,
                packed_tokens: t,
                packed_rows: n,
                rollouts: self.rollouts,
                reference_pass: self.reference_pass,
            },
        })
    }

    /// `gradient_checkpointing = "auto"` without a memory budget: whether to recompute the
    /// layers in the backward pass, and a line saying why. Activations are kept when the whole
    /// iteration then peaks within `AUTO_KEEP_ACTIVATIONS_BYTES`. (With a budget, `fit` from
    /// activations kept decides: it turns checkpointing on only when needed.)
    pub fn auto_recompute(&self) -> Result<(bool, String)> {
        let (recompute, _, why) = self.auto_knobs()?;
        Ok((recompute, why))
    }

    /// [`PlanInput::auto_recompute`], and whether sampling keeps the groups' activations
    /// (`keep_rollouts`): with checkpointing off it does when the iteration still peaks within
    /// the bound; if only it goes over, activations are kept without it (the step runs its
    /// forward pass), before checkpointing is turned on.
    pub fn auto_knobs(&self) -> Result<(bool, bool, String)> {
        let off = |keep_rollouts: bool| PlanInput { gradient_checkpointing: false, keep_rollouts, ..self.clone() }.plan();
        let kept = off(self.keep_rollouts)?;
        let (peak, limit) = (fmt_bytes(kept.peak_bytes), fmt_bytes(AUTO_KEEP_ACTIVATIONS_BYTES));
        if kept.peak_bytes <= AUTO_KEEP_ACTIVATIONS_BYTES {
            let why = format!("gradient checkpointing off (auto: with every activation kept the iteration peaks at {peak}, within {limit})");
            return Ok((false, self.keep_rollouts, why));
        }
        if self.keep_rollouts && self.rollouts {
            let alone = off(false)?;
            if alone.peak_bytes <= AUTO_KEEP_ACTIVATIONS_BYTES {
                let why = format!(
                    "gradient checkpointing off, sampling's activations not kept (auto: keeping every group's from its sampling would peak at {peak}, over {limit}; without them {})",
                    fmt_bytes(alone.peak_bytes)
                );
                return Ok((false, false, why));
            }
        }
        let why = format!("gradient checkpointing on (auto: keeping every activation would peak at {peak}, over {limit}; a memory budget sets another bound)");
        Ok((true, self.keep_rollouts, why))
    }

    /// The knobs `fit` tries, in order: these; sampling's activations not kept; gradient
    /// checkpointing on; then the pack size halved down to 1.
    fn candidates(&self) -> Vec<PlanInput> {
        let mut out = vec![self.clone()];
        if !self.gradient_checkpointing && self.keep_rollouts && self.rollouts {
            out.push(PlanInput { keep_rollouts: false, ..self.clone() });
        }
        let mut next = PlanInput {
            gradient_checkpointing: true,
            ..self.clone()
        };
        if !self.gradient_checkpointing {
            out.push(next.clone());
        }
        let mut k = self.pack();
        while k > 1 {
            k = k.div_ceil(2);
            next.pack_size = Some(k);
            out.push(next.clone());
        }
        out
    }

    /// Keeps these knobs when the iteration fits `budget` bytes; else stops keeping sampling's
    /// activations, then turns gradient checkpointing on, then halves the pack size, and returns the first plan that fits. When
    /// none does, the error says the smallest peak reachable and what takes the room.
    pub fn fit(&self, budget: u64) -> Result<Fitted> {
        let mut last = None;
        for cand in self.candidates() {
            let plan = cand.plan()?;
            if plan.fits(budget) {
                let mut changes = Vec::new();
                if cand.gradient_checkpointing != self.gradient_checkpointing {
                    changes.push("gradient checkpointing on".to_string());
                } else if cand.keep_rollouts != self.keep_rollouts {
                    changes.push("sampling's activations not kept".to_string());
                }
                if cand.pack() != self.pack() {
                    changes.push(format!("pack size {} (was {})", cand.pack(), self.pack()));
                }
                return Ok(Fitted {
                    budget,
                    pack_size: cand.pack_size,
                    plan,
                    changes,
                });
            }
            last = Some(plan);
        }
        let best = last.ok_or_else(|| Error::Invalid("no plan".into()))?;
        Err(Error::Invalid(budget::no_fit_message(
            &best,
            budget,
            self.weights.total,
        )))
    }
}

/// A plan that fits a budget, with the knobs changed to get there.
#[derive(Clone, Debug, Serialize)]
pub struct Fitted {
    pub budget: u64,
    /// The `Trainer::pack_size` to use (`None`: the whole group).
    pub pack_size: Option<usize>,
    pub plan: Plan,
    /// What was changed ("gradient checkpointing on", "pack size 2 (was 8)"); empty: nothing.
    pub changes: Vec<String>,
}

impl Fitted {
    /// "predicted peak 421.3 MiB within the 2 GiB budget (config kept)".
    pub fn summary(&self) -> String {
        let changes = if self.changes.is_empty() { "config kept".to_string() } else { self.changes.join(", ") };
        format!("predicted peak {} within the {} budget ({changes})", fmt_bytes(self.plan.peak_bytes), fmt_bytes(self.budget))
    }
}
