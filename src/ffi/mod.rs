//! The C ABI (`platforms/c/edgerl.h`): opaque `uint64_t` handles, an `int32_t` status from
//! every call, a thread-local error message, and no panic across the boundary.
//!
//! Handles are ids in one registry, never pointers: a freed, never-issued or wrong-type id is
//! an error, not a crash. Each object is reference-counted, so freeing a handle while another
//! thread still uses it (or while a session still uses its model) only drops the id; the
//! object goes when the last user is done. GPU work on one runtime is serialized by the
//! runtime's lock; calls on one session must not overlap (an overlapping call gets
//! `EDGERL_ERR_BUSY` instead of blocking, so a reward callback can never deadlock).

mod budget;
mod callbacks;
mod episode;
mod episode_step;
mod images;
mod model;
mod session;
mod sft;
mod step_images;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::{CStr, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use crate::error::Error;
use crate::gpu::{Gpu, GpuOptions};
use crate::model::LoadedModel;

pub use callbacks::{
    EDGERL_LOG_DEBUG, EDGERL_LOG_ERROR, EDGERL_LOG_INFO, EDGERL_LOG_TRACE, EDGERL_LOG_WARN,
    EDGERL_PHASE_SAMPLE, EDGERL_PHASE_UPDATE, EdgerlLogFn, EdgerlProgressFn,
};
#[doc(hidden)]
pub use model::computations_on_this_thread;
pub use images::{EdgerlImage, MAX_IMAGE_SIDE};
pub use session::{EdgerlRewardFn, EdgerlStepMetrics};
pub use sft::EdgerlSftMetrics;

pub const EDGERL_OK: i32 = 0;
pub const EDGERL_ERR_INVALID_ARGUMENT: i32 = -1;
pub const EDGERL_ERR_UNKNOWN_HANDLE: i32 = -2;
pub const EDGERL_ERR_IO: i32 = -3;
pub const EDGERL_ERR_MODEL: i32 = -4;
pub const EDGERL_ERR_GPU: i32 = -5;
pub const EDGERL_ERR_CANCELLED: i32 = -6;
pub const EDGERL_ERR_CALLBACK: i32 = -7;
pub const EDGERL_ERR_PANIC: i32 = -8;
pub const EDGERL_ERR_BUFFER_TOO_SMALL: i32 = -9;
pub const EDGERL_ERR_BUSY: i32 = -10;
pub const EDGERL_ERR_NONFINITE: i32 = -11;
pub const EDGERL_ERR_MORE_GROUPS: i32 = -12;

/// Every status code with its header name (tests compare them with `edgerl.h`).
pub const STATUS_CODES: &[(&str, i32)] = &[
    ("EDGERL_OK", EDGERL_OK),
    ("EDGERL_ERR_INVALID_ARGUMENT", EDGERL_ERR_INVALID_ARGUMENT),
    ("EDGERL_ERR_UNKNOWN_HANDLE", EDGERL_ERR_UNKNOWN_HANDLE),
    ("EDGERL_ERR_IO", EDGERL_ERR_IO),
    ("EDGERL_ERR_MODEL", EDGERL_ERR_MODEL),
    ("EDGERL_ERR_GPU", EDGERL_ERR_GPU),
    ("EDGERL_ERR_CANCELLED", EDGERL_ERR_CANCELLED),
    ("EDGERL_ERR_CALLBACK", EDGERL_ERR_CALLBACK),
    ("EDGERL_ERR_PANIC", EDGERL_ERR_PANIC),
    ("EDGERL_ERR_BUFFER_TOO_SMALL", EDGERL_ERR_BUFFER_TOO_SMALL),
    ("EDGERL_ERR_BUSY", EDGERL_ERR_BUSY),
    ("EDGERL_ERR_NONFINITE", EDGERL_ERR_NONFINITE),
    ("EDGERL_ERR_MORE_GROUPS", EDGERL_ERR_MORE_GROUPS),
];

/// Prompt flags of `edgerl_generate` and `edgerl_session_step`.
pub const EDGERL_PROMPT_RAW: u32 = 0;
pub const EDGERL_PROMPT_CHAT: u32 = 1;

/// A failed call: its status code and message.
pub(crate) struct Fail(i32, String);

type Res<T> = std::result::Result<T, Fail>;

impl From<Error> for Fail {
    fn from(e: Error) -> Fail {
        let code = match &e {
            Error::File { .. } => EDGERL_ERR_IO,
            Error::Model(_) => EDGERL_ERR_MODEL,
            Error::NoAdapter(_) | Error::OutOfMemory { .. } | Error::Gpu(_) => EDGERL_ERR_GPU,
            Error::Invalid(_) => EDGERL_ERR_INVALID_ARGUMENT,
            Error::NonFinite(_) => EDGERL_ERR_NONFINITE,
        };
        Fail(code, e.to_string())
    }
}

fn invalid(msg: impl Into<String>) -> Fail {
    Fail(EDGERL_ERR_INVALID_ARGUMENT, msg.into())
}

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
    /// Counts this thread's calls (those through `guard`), so a result kept aside for the next
    /// call knows whether another call came between.
    static CALLS: Cell<u64> = const { Cell::new(0) };
}

/// The number of the latest call started on this thread.
fn this_call() -> u64 {
    CALLS.with(|c| c.get())
}

fn set_error(msg: String) {
    LAST_ERROR.with(|e| *e.borrow_mut() = msg);
}

/// Runs an entry point's body: a panic becomes `EDGERL_ERR_PANIC`, an error its code; both
/// leave their message for `edgerl_last_error`. Success clears the message.
fn guard(f: impl FnOnce() -> Res<()>) -> i32 {
    CALLS.with(|c| c.set(c.get() + 1));
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => {
            set_error(String::new());
            EDGERL_OK
        }
        Ok(Err(Fail(code, msg))) => {
            set_error(msg);
            code
        }
        Err(p) => {
            let what = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            set_error(format!("internal error (panic): {what}"));
            EDGERL_ERR_PANIC
        }
    }
}

/// A NUL-terminated UTF-8 string argument.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that outlives the call.
unsafe fn text<'a>(p: *const c_char, what: &str) -> Res<&'a str> {
    if p.is_null() {
        return Err(invalid(format!("`{what}` is NULL")));
    }
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .map_err(|_| invalid(format!("`{what}` is not valid UTF-8")))
}

/// Writes through an out-pointer argument.
///
/// # Safety
/// `p` is NULL or valid for a write of `T`.
unsafe fn put<T>(p: *mut T, what: &str, v: T) -> Res<()> {
    if p.is_null() {
        return Err(invalid(format!("`{what}` is NULL")));
    }
    unsafe { p.write(v) };
    Ok(())
}

/// Copies `s` into `buf` (at most `len - 1` bytes, cut on a UTF-8 boundary, then a NUL).
/// Returns whether all of it fitted.
///
/// # Safety
/// `buf` is NULL (then `len` must be 0) or valid for `len` bytes.
unsafe fn copy_out(s: &str, buf: *mut c_char, len: usize) -> bool {
    if buf.is_null() || len == 0 {
        return false;
    }
    let mut n = s.len().min(len - 1);
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    unsafe {
        std::ptr::copy_nonoverlapping(s.as_ptr(), buf as *mut u8, n);
        *buf.add(n) = 0;
    }
    n == s.len()
}

// ---------------------------------------------------------------------------------------------
// Handles

pub(crate) struct Runtime {
    pub(crate) gpu: Gpu,
    /// Serializes GPU work on this runtime (wgpu's error scopes are per device).
    lock: Mutex<()>,
    /// The app's memory budget in bytes (0: none), also the GPU's allocation limit.
    pub(crate) budget: u64,
}

impl Runtime {
    pub(crate) fn lock(&self) -> MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Where a model's weights are: here, or owned by the session training them.
pub(crate) enum Slot {
    Here(Box<LoadedModel>),
    Lent(u64),
}

pub(crate) struct ModelEntry {
    pub(crate) rt: Arc<Runtime>,
    pub(crate) path: PathBuf,
    pub(crate) slot: Mutex<Slot>,
}

#[derive(Clone)]
pub(crate) enum Entry {
    Runtime(Arc<Runtime>),
    Model(Arc<ModelEntry>),
    Session(Arc<session::Session>),
    Episode(Arc<episode::EpisodeEntry>),
}

impl Entry {
    fn kind(&self) -> &'static str {
        match self {
            Entry::Runtime(_) => "a runtime",
            Entry::Model(_) => "a model",
            Entry::Session(_) => "a session",
            Entry::Episode(_) => "an episode",
        }
    }
}

static REGISTRY: LazyLock<Mutex<HashMap<u64, Entry>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));
/// Ids are never reused, so a stale id can only be unknown.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn registry() -> MutexGuard<'static, HashMap<u64, Entry>> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn new_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

pub(crate) fn issue(e: Entry) -> u64 {
    let id = new_id();
    insert(id, e);
    id
}

pub(crate) fn insert(id: u64, e: Entry) {
    registry().insert(id, e);
}

fn lookup(id: u64) -> Res<Entry> {
    if id == 0 {
        return Err(Fail(
            EDGERL_ERR_UNKNOWN_HANDLE,
            "handle is 0 (no object)".into(),
        ));
    }
    registry().get(&id).cloned().ok_or_else(|| {
        Fail(
            EDGERL_ERR_UNKNOWN_HANDLE,
            format!("handle {id} is unknown (freed, or never issued)"),
        )
    })
}

fn wrong(id: u64, e: &Entry, want: &str) -> Fail {
    Fail(
        EDGERL_ERR_UNKNOWN_HANDLE,
        format!("handle {id} is {}, not {want}", e.kind()),
    )
}

fn get_runtime(id: u64) -> Res<Arc<Runtime>> {
    match lookup(id)? {
        Entry::Runtime(r) => Ok(r),
        e => Err(wrong(id, &e, "a runtime")),
    }
}

fn get_model(id: u64) -> Res<Arc<ModelEntry>> {
    match lookup(id)? {
        Entry::Model(m) => Ok(m),
        e => Err(wrong(id, &e, "a model")),
    }
}

pub(crate) fn get_session(id: u64) -> Res<Arc<session::Session>> {
    match lookup(id)? {
        Entry::Session(s) => Ok(s),
        e => Err(wrong(id, &e, "a session")),
    }
}

fn get_episode(id: u64) -> Res<Arc<episode::EpisodeEntry>> {
    match lookup(id)? {
        Entry::Episode(e) => Ok(e),
        e => Err(wrong(id, &e, "an episode")),
    }
}

/// Drops `id` from the registry if it is of the expected kind.
fn release(id: u64, want: &str, is: fn(&Entry) -> bool) -> Res<()> {
    let e = lookup(id)?;
    if !is(&e) {
        return Err(wrong(id, &e, want));
    }
    let gone = registry().remove(&id);
    // Dropped here, outside the registry's lock (a session hands its model back as it goes).
    drop(gone);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Errors

/// Copies this thread's last error message into `buf` (NUL-terminated, cut to `len - 1`
/// bytes). Returns the message's full length in bytes without the NUL (0: the last call
/// succeeded). `buf` may be NULL when `len` is 0, to ask for the length.
///
/// # Safety
/// `buf` is NULL or valid for `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn edgerl_last_error(buf: *mut c_char, len: usize) -> usize {
    catch_unwind(|| {
        LAST_ERROR.with(|e| {
            let e = e.borrow();
            unsafe { copy_out(&e, buf, len) };
            e.len()
        })
    })
    .unwrap_or(0)
}

/// The status code's name ("EDGERL_ERR_IO"), a static string; "unknown" for other values.
#[unsafe(no_mangle)]
pub extern "C" fn edgerl_status_name(status: i32) -> *const c_char {
    let name: &'static CStr = match status {
        EDGERL_OK => c"EDGERL_OK",
        EDGERL_ERR_INVALID_ARGUMENT => c"EDGERL_ERR_INVALID_ARGUMENT",
        EDGERL_ERR_UNKNOWN_HANDLE => c"EDGERL_ERR_UNKNOWN_HANDLE",
        EDGERL_ERR_IO => c"EDGERL_ERR_IO",
        EDGERL_ERR_MODEL => c"EDGERL_ERR_MODEL",
        EDGERL_ERR_GPU => c"EDGERL_ERR_GPU",
        EDGERL_ERR_CANCELLED => c"EDGERL_ERR_CANCELLED",
        EDGERL_ERR_CALLBACK => c"EDGERL_ERR_CALLBACK",
        EDGERL_ERR_PANIC => c"EDGERL_ERR_PANIC",
        EDGERL_ERR_BUFFER_TOO_SMALL => c"EDGERL_ERR_BUFFER_TOO_SMALL",
        EDGERL_ERR_BUSY => c"EDGERL_ERR_BUSY",
        EDGERL_ERR_NONFINITE => c"EDGERL_ERR_NONFINITE",
        EDGERL_ERR_MORE_GROUPS => c"EDGERL_ERR_MORE_GROUPS",
        _ => c"unknown",
    };
    name.as_ptr()
}

// ---------------------------------------------------------------------------------------------
// Runtime

/// `backend` as edgerl_runtime_create takes it: "BACKEND" or "BACKEND:ADAPTER" (either part
/// may be empty: any backend, any adapter).
fn gpu_options(backend: Option<&str>) -> GpuOptions {
    let (backend, adapter) = match backend {
        Some(b) => match b.split_once(':') {
            Some((b, a)) => (b.trim(), Some(a.trim())),
            None => (b.trim(), None),
        },
        None => ("", None),
    };
    let some = |s: &str| Some(s.to_string()).filter(|s| !s.is_empty());
    GpuOptions {
        backend: some(backend),
        adapter: adapter.and_then(some),
        ..GpuOptions::default()
    }
}

/// # Safety
/// `backend` is NULL or a NUL-terminated string; `out` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn edgerl_runtime_create(
    backend: *const c_char,
    memory_budget: u64,
    out: *mut u64,
) -> i32 {
    guard(|| {
        if out.is_null() {
            return Err(invalid("`out` is NULL"));
        }
        let backend = if backend.is_null() {
            None
        } else {
            Some(unsafe { text(backend, "backend") }?)
        };
        let gpu = Gpu::new(&gpu_options(backend))?;
        // The hard cap: no allocation may take the runtime past the budget.
        gpu.memory.set_limit(Some(memory_budget).filter(|&b| b > 0));
        let id = issue(Entry::Runtime(Arc::new(Runtime {
            gpu,
            lock: Mutex::new(()),
            budget: memory_budget,
        })));
        unsafe { put(out, "out", id) }
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn edgerl_runtime_free(runtime: u64) -> i32 {
    guard(|| release(runtime, "a runtime", |e| matches!(e, Entry::Runtime(_))))
}

/// Device memory edgerl has allocated on this runtime now and at most so far, and the budget
/// the runtime was created with (0: none). Any out-pointer may be NULL.
///
/// # Safety
/// Each out-pointer is NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn edgerl_runtime_memory(
    runtime: u64,
    live: *mut u64,
    peak: *mut u64,
    budget: *mut u64,
) -> i32 {
    guard(|| {
        let rt = get_runtime(runtime)?;
        for (p, v) in [
            (live, rt.gpu.memory.live()),
            (peak, rt.gpu.memory.peak()),
            (budget, rt.budget),
        ] {
            if !p.is_null() {
                unsafe { p.write(v) };
            }
        }
        Ok(())
    })
}
