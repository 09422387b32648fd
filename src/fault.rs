//! Fault injection for the crash tests: a debug build started with
//! `INCIDENT_DESK_CRASH_AFTER_COMMIT` set dies, like a `SIGKILL`, right after a write committed
//! and before its answer is sent. Release builds compile it to nothing.

/// The environment variable that arms the crash.
pub const CRASH_AFTER_COMMIT: &str = "INCIDENT_DESK_CRASH_AFTER_COMMIT";

/// Aborts the process when a debug build was asked to crash between commit and answer.
pub fn after_commit() {
    #[cfg(debug_assertions)]
    if std::env::var_os(CRASH_AFTER_COMMIT).is_some() {
        std::process::abort();
    }
}
