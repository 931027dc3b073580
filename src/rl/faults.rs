//! Test-only fault injection, switched on by environment variables (never set in normal use):
//!
//! - `EDGERL_FAULT_NONFINITE_STEPS=2,3`: at those optimizer steps (1-based, as numbered in
//!   metrics.jsonl) a NaN is written into a gradient buffer on the GPU just before the update,
//!   so the real non-finite detection runs and skips the step.
//! - `EDGERL_FAULT_ABORT_IN_CHECKPOINT=N`: the process aborts half-way through writing
//!   checkpoint N (its adapter written, its optimizer and trainer state not), as a crash at that
//!   moment would leave it.

use crate::gpu::{Gpu, GpuBuffer};

/// The steps `EDGERL_FAULT_NONFINITE_STEPS` names (empty when unset or malformed).
pub(crate) fn nonfinite_steps() -> Vec<usize> {
    let Ok(v) = std::env::var("EDGERL_FAULT_NONFINITE_STEPS") else { return Vec::new() };
    let steps: Result<Vec<usize>, _> = v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::parse).collect();
    steps.unwrap_or_else(|_| {
        log::warn!("EDGERL_FAULT_NONFINITE_STEPS={v:?} is not a list of step numbers: ignored");
        Vec::new()
    })
}

/// Writes NaN into the first element of `grad` (ordered before the next submission).
pub(crate) fn poison(gpu: &Gpu, grad: &GpuBuffer) {
    gpu.queue.write_buffer(&grad.buffer, 0, bytemuck::bytes_of(&f32::NAN));
}

/// Aborts the process if `EDGERL_FAULT_ABORT_IN_CHECKPOINT` names checkpoint `step`.
pub(crate) fn abort_in_checkpoint(step: usize) {
    if std::env::var("EDGERL_FAULT_ABORT_IN_CHECKPOINT").is_ok_and(|v| v.trim().parse() == Ok(step)) {
        eprintln!("EDGERL_FAULT_ABORT_IN_CHECKPOINT: aborting inside checkpoint {step}");
        std::process::abort();
    }
}
