//! Cancellation that reaches code with no session in sight (a chat template's render, say):
//! a call over the C ABI installs its session's flag for the current thread while it runs,
//! and long loops ask `requested()`.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

thread_local! {
    static CURRENT: RefCell<Option<Arc<AtomicBool>>> = const { RefCell::new(None) };
}

/// Installs `flag` as this thread's cancel flag until the guard is dropped (the previous one
/// comes back then).
pub struct Scope(Option<Arc<AtomicBool>>);

pub fn scope(flag: Arc<AtomicBool>) -> Scope {
    Scope(CURRENT.with(|c| c.replace(Some(flag))))
}

impl Drop for Scope {
    fn drop(&mut self) {
        let prev = self.0.take();
        CURRENT.with(|c| *c.borrow_mut() = prev);
    }
}

/// Whether this thread's call has been asked to stop. Only looks: the caller that installed
/// the flag consumes it (and reports the cancellation).
pub fn requested() -> bool {
    CURRENT.with(|c| c.borrow().as_ref().is_some_and(|f| f.load(Ordering::SeqCst)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_nest_and_end() {
        assert!(!requested());
        let a = Arc::new(AtomicBool::new(false));
        {
            let _s = scope(a.clone());
            assert!(!requested());
            a.store(true, Ordering::SeqCst);
            assert!(requested());
            {
                let _t = scope(Arc::new(AtomicBool::new(false)));
                assert!(!requested());
            }
            assert!(requested());
        }
        assert!(!requested());
    }
}
