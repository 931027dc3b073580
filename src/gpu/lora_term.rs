//! A LoRA adapter's term as the frozen products add it (`Recorder::linear_lora`,
//! `Recorder::linear_glu`): one adapter's, or several stacked (`model::adapter::LoraStack`).

use super::memory::GpuBuffer;

/// A LoRA adapter's second product, scale · u Bᵀ with u = x Aᵀ [t, r] already computed and
/// B [out features, r], added by `Recorder::linear_lora` into the frozen product's output.
/// u may hold several adapters' x·Aᵀ side by side (row stride `ld`, one x·[A1; A2; ..]ᵀ
/// product): output rows from `segs[0]` read its next r columns, from `segs[1]` the r after
/// (a stacked q | k | v product; B then stacks the adapters' B the same way).
#[derive(Clone, Copy)]
pub struct LoraTerm<'a> {
    pub u: &'a GpuBuffer,
    pub b: &'a GpuBuffer,
    pub r: usize,
    pub scale: f32,
    pub ld: usize,
    pub segs: [usize; 2],
}

impl<'a> LoraTerm<'a> {
    /// One adapter's term: u [t, r].
    pub fn single(u: &'a GpuBuffer, b: &'a GpuBuffer, r: usize, scale: f32) -> Self {
        LoraTerm { u, b, r, scale, ld: r, segs: [usize::MAX; 2] }
    }

    /// The column of u's rows where output row `row`'s adapter starts.
    pub(super) fn u_col(&self, row: usize) -> usize {
        self.segs.iter().filter(|&&s| row >= s).count() * self.r
    }

    /// Output rows [lo, hi) cut where the segments start: (lo, hi) runs of one adapter each.
    pub(super) fn runs(&self, rows: usize) -> Vec<(usize, usize)> {
        let mut cuts: Vec<usize> = self.segs.iter().copied().filter(|&s| s > 0 && s < rows).collect();
        cuts.sort_unstable();
        cuts.dedup();
        let mut out = vec![];
        let mut lo = 0;
        for c in cuts.into_iter().chain([rows]) {
            if c > lo {
                out.push((lo, c));
            }
            lo = c;
        }
        out
    }
}
