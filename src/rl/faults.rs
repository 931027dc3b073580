//! Test-only fault injection, compiled in only with the `fault-injection` cargo feature (the
//! tests turn it on; release and mobile builds have none of it), then switched on by
//! environment variables:
//!
//! - `EDGERL_FAULT_NONFINITE_STEPS=2,3`: at those optimizer steps (1-based, as numbered in
//!   metrics.jsonl) a NaN is written into a gradient buffer on the GPU just before the update,
//!   so the real non-finite detection runs and skips the step.
//! - `EDGERL_FAULT_ABORT_IN_CHECKPOINT=N`: the process aborts half-way through writing
//!   checkpoint N (its adapter written, its optimizer and trainer state not), as a crash at that
//!   moment would leave it; `N:swap` aborts between moving an existing `checkpoint-N` aside and
//!   renaming the new one into place.

use crate::gpu::{Gpu, GpuBuffer};

/// Where in a checkpoint write `abort_in_checkpoint` is asked about.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Moment {
    /// The adapter is written, the optimizer and trainer state are not.
    Write,
    /// An existing checkpoint of that step is moved aside, the new one not yet in place.
    Swap,
}

#[cfg(not(feature = "fault-injection"))]
pub(crate) fn nonfinite_steps() -> Vec<usize> {
    Vec::new()
}

#[cfg(not(feature = "fault-injection"))]
pub(crate) fn poison(_: &Gpu, _: &GpuBuffer) {}

#[cfg(not(feature = "fault-injection"))]
pub(crate) fn abort_in_checkpoint(_: usize, _: Moment) {}

/// The steps `EDGERL_FAULT_NONFINITE_STEPS` names (empty when unset or malformed).
#[cfg(feature = "fault-injection")]
pub(crate) fn nonfinite_steps() -> Vec<usize> {
    let Ok(v) = std::env::var("EDGERL_FAULT_NONFINITE_STEPS") else { return Vec::new() };
    let steps: Result<Vec<usize>, _> = v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::parse).collect();
    steps.unwrap_or_else(|_| {
        log::warn!("EDGERL_FAULT_NONFINITE_STEPS={v:?} is not a list of step numbers: ignored");
        Vec::new()
    })
}

/// Writes NaN into the first element of `grad` (ordered before the next submission).
#[cfg(feature = "fault-injection")]
pub(crate) fn poison(gpu: &Gpu, grad: &GpuBuffer) {
    gpu.queue.write_buffer(&grad.buffer, 0, bytemuck::bytes_of(&f32::NAN));
}

/// Aborts the process if `EDGERL_FAULT_ABORT_IN_CHECKPOINT` names checkpoint `step` at `at`.
#[cfg(feature = "fault-injection")]
pub(crate) fn abort_in_checkpoint(step: usize, at: Moment) {
    let Ok(v) = std::env::var("EDGERL_FAULT_ABORT_IN_CHECKPOINT") else { return };
    let (n, moment) = match v.trim().split_once(':') {
        Some((n, "swap")) => (n, Moment::Swap),
        Some(_) => return,
        None => (v.trim(), Moment::Write),
    };
    if n.parse() == Ok(step) && moment == at {
        eprintln!("EDGERL_FAULT_ABORT_IN_CHECKPOINT: aborting inside checkpoint {step} ({at:?})");
        std::process::abort();
    }
}
