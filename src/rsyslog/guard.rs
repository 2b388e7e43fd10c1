//! Every entry point's wrapper: the two traps that would crash rsyslogd.
//!
//! * rsyslog `pthread_cancel`s a worker stuck in an action at shutdown; a cancellation point
//!   inside Rust code then force-unwinds through Rust frames and aborts the daemon. Cancellation
//!   is disabled for the duration of every call and restored afterwards.
//! * A panic must never unwind into C: it is caught, logged, and turned into an error code.
//!
//! And one for threads: [`with_signals_blocked`] for code that spawns the module's threads on
//! rsyslog's main thread.

use std::panic::{catch_unwind, AssertUnwindSafe};

use super::abi::{pthread_setcancelstate, rsRetVal, PTHREAD_CANCEL_DISABLE};
use crate::logging;

/// Runs one entry point's body; a panic becomes `on_panic`.
pub(super) fn guarded(name: &str, on_panic: rsRetVal, body: impl FnOnce() -> rsRetVal) -> rsRetVal {
    let mut previous = 0;
    // SAFETY: plain libc call on the current thread with a valid out pointer.
    unsafe { pthread_setcancelstate(PTHREAD_CANCEL_DISABLE as _, &mut previous) };
    let rc = catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|payload| {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        // Logging must not unwind either.
        let _ = catch_unwind(|| logging::error(&format!("internal error in {name}: {what}")));
        on_panic
    });
    let mut ignored = 0;
    // SAFETY: as above; restores the caller's state.
    unsafe { pthread_setcancelstate(previous, &mut ignored) };
    rc
}

/// Runs `body` with every asynchronous signal blocked on this thread, then restores the mask.
/// Threads spawned meanwhile inherit the blocked mask, as rsyslog's own threads block them:
/// otherwise the signal rsyslog sends itself to wake its main loop (SIGTTOU, for each internal
/// message) could be taken by one of ours, and the module's log lines would wait in rsyslog's
/// list until the main loop next woke for another reason.
pub(super) fn with_signals_blocked(body: impl FnOnce()) {
    /// Restores the caller's mask when dropped: also when `body` panics (the entry point's
    /// guard catches it), so rsyslog's main thread never keeps SIGTERM and HUP blocked.
    struct Restore(libc::sigset_t);
    impl Drop for Restore {
        fn drop(&mut self) {
            // SAFETY: pthread_sigmask on the current thread with a valid set.
            unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.0, std::ptr::null_mut()) };
        }
    }
    // SAFETY: sigset operations on a local set, and pthread_sigmask on the current thread with
    // valid pointers; the synchronous signals stay deliverable.
    let _restore = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        for sync in [libc::SIGSEGV, libc::SIGBUS, libc::SIGFPE, libc::SIGILL] {
            libc::sigdelset(&mut all, sync);
        }
        let mut previous: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut previous);
        Restore(previous)
    };
    body();
}

#[cfg(test)]
mod tests {
    /// The caller's signal mask, as it is now.
    fn mask() -> libc::sigset_t {
        // SAFETY: querying the current thread's mask into a local set.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut set);
            set
        }
    }

    fn blocks_term(set: &libc::sigset_t) -> bool {
        // SAFETY: reading a local set.
        unsafe { libc::sigismember(set, libc::SIGTERM) == 1 }
    }

    #[test]
    fn the_mask_comes_back_also_after_a_panic() {
        std::thread::spawn(|| {
            assert!(!blocks_term(&mask()));
            with_signals_blocked(|| assert!(blocks_term(&mask())));
            assert!(!blocks_term(&mask()));
            let _ = std::panic::catch_unwind(|| with_signals_blocked(|| panic!("in the body")));
            assert!(!blocks_term(&mask()), "a panic left SIGTERM blocked");
        })
        .join()
        .unwrap();
    }

    use super::super::abi::PTHREAD_CANCEL_ENABLE;
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn cancel_state() -> libc::c_int {
        let mut cur = 0;
        unsafe {
            pthread_setcancelstate(PTHREAD_CANCEL_DISABLE as _, &mut cur);
            let mut ignored = 0;
            pthread_setcancelstate(cur, &mut ignored);
        }
        cur
    }

    #[test]
    fn panic_becomes_error_code() {
        assert_eq!(guarded("test", -3000, || panic!("boom")), -3000);
        assert_eq!(guarded("test", -3000, || 0), 0);
    }

    #[test]
    fn cancellation_disabled_inside_and_restored_after() {
        assert_eq!(cancel_state(), PTHREAD_CANCEL_ENABLE as i32);
        guarded("test", -1, || {
            assert_eq!(cancel_state(), PTHREAD_CANCEL_DISABLE as i32);
            0
        });
        assert_eq!(cancel_state(), PTHREAD_CANCEL_ENABLE as i32);
    }

    static STARTED: AtomicBool = AtomicBool::new(false);
    static FINISHED: AtomicBool = AtomicBool::new(false);

    extern "C" fn worker(_: *mut libc::c_void) -> *mut libc::c_void {
        guarded("test", -1, || {
            STARTED.store(true, Ordering::SeqCst);
            // nanosleep is a cancellation point: without the guard, pthread_cancel would
            // force-unwind through catch_unwind here and abort the whole test process.
            std::thread::sleep(std::time::Duration::from_millis(300));
            FINISHED.store(true, Ordering::SeqCst);
            0
        });
        std::ptr::null_mut()
    }

    #[test]
    fn pthread_cancel_waits_for_the_entry_point_to_return() {
        unsafe {
            let mut t: libc::pthread_t = std::mem::zeroed();
            assert_eq!(
                libc::pthread_create(&mut t, std::ptr::null(), worker, std::ptr::null_mut()),
                0
            );
            while !STARTED.load(Ordering::SeqCst) {
                std::thread::yield_now();
            }
            assert_eq!(libc::pthread_cancel(t), 0);
            let mut ret = std::ptr::null_mut();
            assert_eq!(libc::pthread_join(t, &mut ret), 0);
            assert!(
                FINISHED.load(Ordering::SeqCst),
                "cancelled inside the entry point"
            );
            assert!(ret.is_null(), "thread was cancelled instead of returning");
        }
    }
}
