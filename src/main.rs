//! The `event-notify` binary: parses nothing itself, hands the arguments to the CLI.
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(event_notify::cli::main(&args));
}
