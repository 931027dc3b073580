//! Turns on the shared GL devices. wgpu's GL backend holds a device's context for a whole
//! program link (a cold llvmpipe compile: seconds to minutes) and a whole submit or wait, and
//! another thread's call on that device gives up after 6 seconds with a panic ("Could not lock
//! adapter context"). libtest runs tests on two threads that share `backends()`'s devices, so a
//! test uses a GL device only in its turn: the iterators here hold the turn while their item is
//! in use (a `for` body). Turns are re-entrant, so a body may iterate again. Vulkan has no such
//! lock and takes no turns.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, OnceLock};
use std::thread::{self, ThreadId};

use edgerl::gpu::Gpu;

#[derive(Default)]
struct Turn {
    /// The thread in its turn and how many of its guards are alive.
    holder: Mutex<Option<(ThreadId, usize)>>,
    free: Condvar,
}

pub struct TurnGuard(&'static Turn);

impl Drop for TurnGuard {
    fn drop(&mut self) {
        let mut h = self.0.holder.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, n)) = h.as_mut() {
            *n -= 1;
            if *n == 0 {
                *h = None;
                self.0.free.notify_all();
            }
        }
    }
}

fn turn_of(gpu: &'static Gpu) -> &'static Turn {
    static TURNS: OnceLock<Mutex<HashMap<usize, &'static Turn>>> = OnceLock::new();
    let mut turns = TURNS.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    turns.entry(gpu as *const Gpu as usize).or_insert_with(|| Box::leak(Box::default()))
}

/// Waits for this thread's turn on `gpu` (none needed off GL) and holds it until dropped.
pub fn take_turn(gpu: &'static Gpu) -> Option<TurnGuard> {
    if gpu.adapter.backend != "gl" {
        return None;
    }
    let turn = turn_of(gpu);
    let me = thread::current().id();
    let mut h = turn.holder.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        match h.as_mut() {
            None => {
                *h = Some((me, 1));
                break;
            }
            Some((t, n)) if *t == me => {
                *n += 1;
                break;
            }
            Some(_) => h = turn.free.wait(h).unwrap_or_else(|e| e.into_inner()),
        }
    }
    Some(TurnGuard(turn))
}

/// Yields devices one at a time, each in its turn: the turn is held from `next()` giving a
/// device until the following `next()` (or the iterator's drop).
pub struct InTurn<I> {
    devices: I,
    held: Option<TurnGuard>,
}

impl<I: Iterator<Item = &'static Gpu>> Iterator for InTurn<I> {
    type Item = &'static Gpu;
    fn next(&mut self) -> Option<&'static Gpu> {
        self.held = None;
        let gpu = self.devices.next()?;
        self.held = take_turn(gpu);
        Some(gpu)
    }
}

pub fn in_turn<I: IntoIterator<Item = &'static Gpu>>(devices: I) -> InTurn<I::IntoIter> {
    InTurn { devices: devices.into_iter(), held: None }
}
