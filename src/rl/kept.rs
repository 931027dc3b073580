//! The sampled groups' activations a trainer keeps for their first training pass
//! (`model::keep`): which groups, sampled with which adapter, and when they are let go.

use super::rollouts::Group;
use super::trainer::Trainer;
use crate::model::keep::KeptRollout;

/// A group's sampling pass kept for its training pass (`Model::saved_from_rollout`).
pub(crate) struct KeptGroup {
    prompt_ids: Vec<u32>,
    completions: Vec<Vec<u32>>,
    /// `Trainer::optimizer_steps` when sampled: a pass with another adapter can't use it.
    version: usize,
    rollout: KeptRollout,
}

impl KeptGroup {
    /// Whether it is `group`'s sampling.
    fn is(&self, group: &Group) -> bool {
        self.prompt_ids == group.prompt_ids && self.completions == group.completions
    }
}

impl Trainer<'_> {
    /// Whether sampling keeps each group's activations for the step's forward pass, which then
    /// only rearranges them: when the step keeps every activation anyway (no gradient
    /// checkpointing), sampling ran that forward pass already, with the same adapter.
    pub fn keeps_rollouts(&self) -> bool {
        self.cfg.keep_rollouts && !self.cfg.gradient_checkpointing.recomputes()
    }

    /// Keeps the activations of a group just sampled with the current adapter.
    pub(crate) fn keep_rollout(&self, prompt_ids: &[u32], completions: Vec<Vec<u32>>, rollout: KeptRollout) {
        let g = KeptGroup { prompt_ids: prompt_ids.to_vec(), completions, version: self.optimizer_steps, rollout };
        self.kept_groups().push(g);
    }

    /// Drops the kept activations of every group but `groups` (dynamic sampling's dropped
    /// ones), and of groups sampled with an older adapter.
    pub(crate) fn retain_kept(&self, groups: &[Group]) {
        let now = self.optimizer_steps;
        self.kept_groups().retain(|k| k.version == now && groups.iter().any(|g| k.is(g)));
    }

    /// Drops what was kept with an older adapter (sampled, never trained on).
    pub(crate) fn forget_stale_kept(&self) {
        let now = self.optimizer_steps;
        self.kept_groups().retain(|k| k.version == now);
    }

    pub(super) fn kept_groups(&self) -> std::sync::MutexGuard<'_, Vec<KeptGroup>> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the kept activations of `group`, sampled with the current adapter.
    pub(super) fn take_kept(&self, group: &Group) -> Option<KeptRollout> {
        let now = self.optimizer_steps;
        let mut kept = self.kept_groups();
        let i = kept.iter().position(|k| k.version == now && k.is(group))?;
        Some(kept.swap_remove(i).rollout)
    }
}
