//! Fault hooks for the test suite, compiled only with the `fault-hooks` feature: never into the
//! shipped module (scripts/package builds without it, and tests/packaging.rs checks that the
//! packaged files hold none of these names). Each hook reads an environment variable, so a
//! test sets it for the one rsyslogd it starts.

/// `OMCM_FAULT_PANIC=<thread>`: that background thread panics once, the first time it passes
/// its hook (`omcmsync-deliver`, `omcmsync-supervise`, `omcmsync-queue`, `omcmsync-post`).
pub fn panic_once(thread: &str) {
    use std::sync::atomic::{AtomicBool, Ordering};
    static FIRED: AtomicBool = AtomicBool::new(false);
    if std::env::var("OMCM_FAULT_PANIC").is_ok_and(|t| t == thread)
        && !FIRED.swap(true, Ordering::SeqCst)
    {
        panic!("fault hook: {thread} panics once");
    }
}

/// `OMCM_FAULT_STATSOBJ_IF`: the statsobj interface version to ask rsyslog for instead of ours,
/// e.g. 16, which rsyslog up to 8.25xx refuses as 8.2608 refuses ours (13).
pub fn statsobj_if_version() -> Option<i32> {
    std::env::var("OMCM_FAULT_STATSOBJ_IF").ok()?.parse().ok()
}
