//! Fault hooks for the test suite, compiled only with the `fault-hooks` feature: never into the
//! shipped module (scripts/package builds without it, and tests/packaging.rs checks that the
//! packaged files hold none of these names). Each hook reads an environment variable, so a
//! test sets it for the one rsyslogd it starts.

/// `OMCM_FAULT_PANIC=<thread>`: that background thread panics once, the first time it passes
/// its hook (`omcmsync-deliver`, `omcmsync-supervise`, `omcmsync-ha`, `omcmsync-queue`, `omcmsync-post`,
/// `omcmsync-ossi`: a reconciliation session).
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

/// `OMCM_FAULT_HANG=<point>:<ms>`: every pass through that point first sleeps `ms`
/// (`resolve`: each element host name lookup; `ha`: each read of the HA role; `requeue`:
/// between a requeue's queued requests and its rewrite of the dead-letter file).
pub fn hang(point: &str) {
    let Ok(spec) = std::env::var("OMCM_FAULT_HANG") else {
        return;
    };
    if let Some(ms) = spec
        .split_once(':')
        .filter(|(p, _)| *p == point)
        .and_then(|(_, ms)| ms.parse().ok())
    {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}

static COMPACTIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Counts compactions of the queue log, for [`compaction_step`].
pub fn compaction_started() {
    COMPACTIONS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
}

/// `OMCM_FAULT_COMPACT=<step>:<n>`: that step past the rename (`reopen`, `syncdir`) of the
/// process's `n`-th compaction (1: the one at start) fails, once.
pub fn compaction_step(step: &str) -> std::io::Result<()> {
    use std::sync::atomic::{AtomicBool, Ordering};
    static FIRED: AtomicBool = AtomicBool::new(false);
    let Ok(spec) = std::env::var("OMCM_FAULT_COMPACT") else {
        return Ok(());
    };
    let hit = spec
        .split_once(':')
        .is_some_and(|(s, n)| s == step && n.parse() == Ok(COMPACTIONS.load(Ordering::SeqCst)));
    if hit && !FIRED.swap(true, Ordering::SeqCst) {
        return Err(std::io::Error::other(format!("fault hook: {step} fails")));
    }
    Ok(())
}
