//! The `incident-desk` command.

/// jemalloc instead of glibc's allocator. Under a thousand concurrent list requests glibc's heaps
/// kept 78–87 MB of freed blocks a minute after the load (idle: 38 MB), and no threshold or arena
/// setting brought that under 60 MB; jemalloc returns what it freed within a second, and served
/// 1.6 times the pages per second (BENCHMARKS.md, memory).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings: a background thread returns freed pages to the system after a second
/// (`dirty_decay_ms`) at once (`muzzy_decay_ms:0`; pages only marked free would still count as
/// resident), even when no request allocates; one arena per core, not four, which lowered the
/// peak under load by 12 MB; and thread caches for blocks up to 1 KiB only (`tcache_max`), which
/// lowered it by 2 MB more.
const JEMALLOC_CONF: &str = "_RJEM_MALLOC_CONF";

/// glibc's allocator still serves the C code the server links (libpq). A fixed mmap threshold
/// returns its large blocks to the system when they are freed, instead of keeping them in a
/// heap.
const MALLOC_MMAP_THRESHOLD: &str = "MALLOC_MMAP_THRESHOLD_";

/// glibc gives threads up to eight heaps ("arenas") per core; one per core is enough for what
/// it still allocates.
const MALLOC_ARENA_MAX: &str = "MALLOC_ARENA_MAX";

/// The allocator settings the server runs with, each unless the operator chose a value. They
/// must be in the environment before the process allocates anything, so the command sets them
/// and starts itself again.
fn allocator_settings() -> [(&'static str, String); 3] {
    let cores = incident_desk::startup::cores();
    [
        (
            JEMALLOC_CONF,
            format!(
                "background_thread:true,narenas:{cores},dirty_decay_ms:1000,muzzy_decay_ms:0,\
                 tcache_max:1024"
            ),
        ),
        (MALLOC_MMAP_THRESHOLD, "65536".to_owned()),
        (MALLOC_ARENA_MAX, cores.to_string()),
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
