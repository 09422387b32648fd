//! The `incident-desk` command.

fn main() -> std::process::ExitCode {
    incident_desk::cli::run()
}
