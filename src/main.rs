//! The `event-notify` binary: parses nothing itself, hands the arguments to the CLI.
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Commands that only print end quietly when their output is cut short
    // (`event-notify status | head -3`), as Unix tools do, instead of panicking on EPIPE.
    // `run`, `listen` and `emit` keep SIGPIPE ignored: they write to sockets and handle errors.
    if matches!(
        args.first().map(String::as_str),
        Some("status" | "events" | "variables" | "expand" | "check" | "import" | "help" | "--help")
    ) {
        // SAFETY: SIG_DFL installs no handler code.
        unsafe {
            let _ = nix::sys::signal::signal(
                nix::sys::signal::Signal::SIGPIPE,
                nix::sys::signal::SigHandler::SigDfl,
            );
        }
    }
    std::process::exit(event_notify::cli::main(&args));
}
