//! Callbacks to the app: the crate's `log` records, and a session's progress (which can cancel).

use std::ffi::{CString, c_char, c_void};
use std::sync::{Mutex, RwLock};

use super::{EDGERL_ERR_CANCELLED, Fail, Res, get_session, guard, invalid};

pub const EDGERL_LOG_ERROR: i32 = 1;
pub const EDGERL_LOG_WARN: i32 = 2;
pub const EDGERL_LOG_INFO: i32 = 3;
pub const EDGERL_LOG_DEBUG: i32 = 4;
pub const EDGERL_LOG_TRACE: i32 = 5;

pub const EDGERL_PHASE_SAMPLE: i32 = 1;
pub const EDGERL_PHASE_UPDATE: i32 = 2;

/// `void (*)(void* user_data, int32_t level, const char* message)`.
pub type EdgerlLogFn = Option<unsafe extern "C" fn(*mut c_void, i32, *const c_char)>;

/// `int32_t (*)(void* user_data, int32_t phase, size_t done, size_t total)`: non-zero cancels.
pub type EdgerlProgressFn = Option<unsafe extern "C" fn(*mut c_void, i32, usize, usize) -> i32>;

/// A C function and its user data (kept as an address: the app vouches for its use on other
/// threads).
#[derive(Clone, Copy)]
struct Callback<F> {
    f: F,
    user: usize,
}

struct AppLogger;

/// Held for reading while the callback runs, so once `edgerl_set_log_callback` returns, the
/// previous callback is neither running nor called again.
static LOG: RwLock<Option<Callback<unsafe extern "C" fn(*mut c_void, i32, *const c_char)>>> =
    RwLock::new(None);
static INSTALLED: Mutex<bool> = Mutex::new(false);

impl log::Log for AppLogger {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }

    fn log(&self, record: &log::Record) {
        let g = LOG.read().unwrap_or_else(|e| e.into_inner());
        let Some(cb) = *g else { return };
        let text = format!("{}: {}", record.target(), record.args()).replace('\0', " ");
        let Ok(msg) = CString::new(text) else { return };
        let level = match record.level() {
            log::Level::Error => EDGERL_LOG_ERROR,
            log::Level::Warn => EDGERL_LOG_WARN,
            log::Level::Info => EDGERL_LOG_INFO,
            log::Level::Debug => EDGERL_LOG_DEBUG,
            log::Level::Trace => EDGERL_LOG_TRACE,
        };
        unsafe { (cb.f)(cb.user as *mut c_void, level, msg.as_ptr()) };
    }

    fn flush(&self) {}
}

static APP_LOGGER: AppLogger = AppLogger;

/// Routes `log` records at `max_level` or more severe to `cb`; NULL `cb` stops it.
#[unsafe(no_mangle)]
pub extern "C" fn edgerl_set_log_callback(cb: EdgerlLogFn, user_data: *mut c_void, max_level: i32) -> i32 {
    guard(|| {
        let filter = match max_level {
            EDGERL_LOG_ERROR => log::LevelFilter::Error,
            EDGERL_LOG_WARN => log::LevelFilter::Warn,
            EDGERL_LOG_INFO => log::LevelFilter::Info,
            EDGERL_LOG_DEBUG => log::LevelFilter::Debug,
            EDGERL_LOG_TRACE => log::LevelFilter::Trace,
            l => return Err(invalid(format!("`max_level` {l} is not an EDGERL_LOG_* level (1 to 5)"))),
        };
        {
            let mut installed = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
            if !*installed && cb.is_some() {
                log::set_logger(&APP_LOGGER).map_err(|_| {
                    invalid("another `log` logger is installed in this process, so edgerl cannot route its records")
                })?;
                *installed = true;
            }
        }
        let mut g = LOG.write().unwrap_or_else(|e| e.into_inner());
        *g = cb.map(|f| Callback { f, user: user_data as usize });
        log::set_max_level(if g.is_some() { filter } else { log::LevelFilter::Off });
        Ok(())
    })
}

/// A session's progress callback.
#[derive(Clone, Copy)]
pub(crate) struct Progress(Option<Callback<unsafe extern "C" fn(*mut c_void, i32, usize, usize) -> i32>>);

impl Progress {
    pub(crate) const NONE: Progress = Progress(None);

    /// Tells the app; a non-zero answer cancels, except at the final report (`done == total`
    /// of the update phase): the update is applied then, and the step succeeds.
    pub(crate) fn report(&self, session: u64, phase: i32, done: usize, total: usize) -> Res<()> {
        let Some(cb) = self.0 else { return Ok(()) };
        let rc = unsafe { (cb.f)(cb.user as *mut c_void, phase, done, total) };
        let last = phase == EDGERL_PHASE_UPDATE && done == total;
        if rc != 0 && !last {
            let what = if phase == EDGERL_PHASE_SAMPLE { "sample" } else { "update" };
            return Err(Fail(
                EDGERL_ERR_CANCELLED,
                format!("session {session}: cancelled by the progress callback (it returned {rc} at {what} {done}/{total})"),
            ));
        }
        Ok(())
    }
}

/// Sets (or, with NULL `cb`, clears) the session's progress callback; from its next call on.
#[unsafe(no_mangle)]
pub extern "C" fn edgerl_session_set_progress(session: u64, cb: EdgerlProgressFn, user_data: *mut c_void) -> i32 {
    guard(|| {
        let s = get_session(session)?;
        *s.progress.lock().unwrap_or_else(|e| e.into_inner()) =
            Progress(cb.map(|f| Callback { f, user: user_data as usize }));
        Ok(())
    })
}
