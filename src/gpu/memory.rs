//! Allocation accounting: every GPU buffer edgerl creates is counted here, so a run can
//! report live and peak device bytes (the memory planner compares its prediction to this).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default, Debug)]
pub struct MemoryCounter {
    live: AtomicU64,
    peak: AtomicU64,
    /// A simulated device-memory size (0: none): `Gpu::alloc` fails past it, as a device
    /// that is out of memory would (`EDGERL_DEVICE_MEMORY_LIMIT`; tests use it on lavapipe).
    limit: AtomicU64,
}

impl MemoryCounter {
    pub fn alloc(&self, bytes: u64) {
        let now = self.live.fetch_add(bytes, Ordering::SeqCst) + bytes;
        self.peak.fetch_max(now, Ordering::SeqCst);
    }
    pub fn free(&self, bytes: u64) {
        self.live.fetch_sub(bytes, Ordering::SeqCst);
    }
    pub fn live(&self) -> u64 {
        self.live.load(Ordering::SeqCst)
    }
    pub fn peak(&self) -> u64 {
        self.peak.load(Ordering::SeqCst)
    }
    pub fn limit(&self) -> Option<u64> {
        Some(self.limit.load(Ordering::SeqCst)).filter(|&l| l > 0)
    }
    pub fn set_limit(&self, bytes: Option<u64>) {
        self.limit.store(bytes.unwrap_or(0), Ordering::SeqCst);
    }
    /// Starts a new peak measurement from the current live bytes.
    pub fn reset_peak(&self) {
        self.peak.store(self.live(), Ordering::SeqCst);
    }
}

/// A device buffer that gives its bytes back to the counter when dropped.
#[derive(Debug)]
pub struct GpuBuffer {
    pub buffer: wgpu::Buffer,
    pub bytes: u64,
    counter: Arc<MemoryCounter>,
}

impl GpuBuffer {
    pub(crate) fn new(buffer: wgpu::Buffer, bytes: u64, counter: Arc<MemoryCounter>) -> Self {
        counter.alloc(bytes);
        GpuBuffer {
            buffer,
            bytes,
            counter,
        }
    }
}

impl Drop for GpuBuffer {
    fn drop(&mut self) {
        self.counter.free(self.bytes);
    }
}
