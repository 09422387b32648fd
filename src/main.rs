//! The `incident-desk` command.

/// glibc's allocator raises its mmap threshold to the size of the largest block it has freed,
/// so after the first sign-in every Argon2 hash (19 MiB) is carved from a per-thread heap and
/// kept: each blocking thread that ever hashed a password held 19 MiB more. A fixed threshold
/// returns such blocks to the system when they are freed (BENCHMARKS.md, memory). At 64 KiB it
/// also maps the buffers a connection grows to (its write buffer reaches 64–128 KiB with a
/// large answer) straight from the system, so they go back when the connection closes instead
/// of fragmenting the heaps: a thousand clients of 200-incident pages left 120 MB behind with
/// a 4 MiB threshold. List pages are sent in 16 KiB pieces, below it.
const MALLOC_MMAP_THRESHOLD: &str = "MALLOC_MMAP_THRESHOLD_";

/// glibc gives threads up to eight heaps ("arenas") per core. Each HTTP worker builds its routes,
/// and with them a copy of the OpenAPI description it then drops, in a heap of its own that keeps
/// the pages: 3.3 MB per worker at idle. One arena per core keeps threads from waiting for each
/// other's heap (one arena in all cost ~15 % of GET throughput on two cores) and saved 3.5 MB
/// idle (BENCHMARKS.md, second round).
const MALLOC_ARENA_MAX: &str = "MALLOC_ARENA_MAX";

/// The allocator settings the server runs with, each unless the operator chose a value. They
/// must be in the environment before the process allocates anything, so the command sets them
/// and starts itself again.
fn allocator_settings() -> [(&'static str, String); 2] {
    [
        (MALLOC_MMAP_THRESHOLD, "65536".to_owned()),
        (
            MALLOC_ARENA_MAX,
            incident_desk::startup::cores().to_string(),
        ),
    ]
}

fn main() -> std::process::ExitCode {
    #[cfg(target_os = "linux")]
    {
        let missing: Vec<_> = allocator_settings()
            .into_iter()
            .filter(|(name, _)| std::env::var_os(name).is_none())
            .collect();
        if !missing.is_empty() {
            use std::os::unix::process::CommandExt;
            if let Ok(program) = std::env::current_exe() {
                // Only returns when the program could not be started again; then run as we are.
                let err = std::process::Command::new(program)
                    .args(std::env::args_os().skip(1))
                    .envs(missing)
                    .exec();
                eprintln!("incident-desk: running with the default allocator settings ({err})");
            }
        }
    }
    incident_desk::cli::run()
}
