//! The `incident-desk` command.

/// glibc's allocator raises its mmap threshold to the size of the largest block it has freed,
/// so after the first sign-in every Argon2 hash (19 MiB) is carved from a per-thread heap and
/// kept: each blocking thread that ever hashed a password held 19 MiB more. A fixed threshold
/// returns such blocks to the system when they are freed (BENCHMARKS.md, memory); at 4 MiB it
/// stays above the buffers a request needs (a page of 200 incidents), which glibc's default
/// 128 KiB would map and unmap every time. It must be in
/// the environment before the process allocates anything, so the command sets it and starts
/// itself again, unless the operator chose a value.
const MALLOC_MMAP_THRESHOLD: (&str, &str) = ("MALLOC_MMAP_THRESHOLD_", "4194304");

fn main() -> std::process::ExitCode {
    #[cfg(target_os = "linux")]
    if std::env::var_os(MALLOC_MMAP_THRESHOLD.0).is_none() {
        use std::os::unix::process::CommandExt;
        if let Ok(program) = std::env::current_exe() {
            let (name, value) = MALLOC_MMAP_THRESHOLD;
            // Only returns when the program could not be started again; then run as we are.
            let err = std::process::Command::new(program)
                .args(std::env::args_os().skip(1))
                .env(name, value)
                .exec();
            eprintln!("incident-desk: running with the default allocator settings ({err})");
        }
    }
    incident_desk::cli::run()
}
