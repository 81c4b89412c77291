//! Running the binary: commands with a time limit, the CLI.

use super::*;

// ---------------------------------------------------------------------------------------------
// Running the binary

/// The `event-notify` binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_event-notify")
}

/// What a finished command left: exit code (-1 if killed by a signal), stdout, stderr.
pub type CmdOutput = (i32, String, String);

/// Runs `cmd` with piped output; kills it and panics if it has not finished within `timeout`.
///
/// One exception, for the test runs under qemu-user. There a child forked from this emulated,
/// multi-threaded test process may deadlock inside QEMU before it reaches `exec` (QEMU emulates
/// the vfork of `posix_spawn` as a plain fork). Twice in about 45 armv7 runs of tests/daemon.rs (now tests/it/daemon.rs) a
/// `status` child did not finish in time, then not again in 100 runs; that it was stuck before
/// exec is the likely cause, not a confirmed one. Such a child is still a copy of this process
/// (its command line still names this test binary): it never ran the command, so it is killed
/// and the command started again (at most twice), with a note on stderr. A command that did
/// start and then hangs is a failure, as always.
pub fn output_within(cmd: &mut Command, timeout: Duration) -> CmdOutput {
    for _ in 0..2 {
        match try_output_within(cmd, timeout) {
            Ok(outcome) => return outcome,
            Err(NeverExeced) => {
                eprintln!("note: {cmd:?} never reached exec (qemu-user fork); started again")
            }
        }
    }
    try_output_within(cmd, timeout)
        .unwrap_or_else(|_| panic!("{cmd:?} never reached exec, three times"))
}

/// A spawned child that was still a copy of the test process when its time ran out.
pub(super) struct NeverExeced;

/// Whether the process `pid` is still a copy of this one (forked, never exec'd): its command
/// line (as the host kernel shows it: under qemu-user, QEMU's own with this test binary among
/// its arguments) holds this process's `argv[0]`.
pub fn never_execed(pid: u32) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Some(me) = std::env::args_os().next() else {
        return false;
    };
    let child = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    child.split(|&b| b == 0).any(|field| field == me.as_bytes())
}

pub(super) fn try_output_within(
    cmd: &mut Command,
    timeout: Duration,
) -> Result<CmdOutput, NeverExeced> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut text);
            }
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => {
                let stuck_in_fork = never_execed(child.id());
                let _ = child.kill();
                let _ = child.wait();
                let (out, err) = (
                    out.join().unwrap_or_default(),
                    err.join().unwrap_or_default(),
                );
                if stuck_in_fork {
                    return Err(NeverExeced);
                }
                panic!("{cmd:?} did not finish within {timeout:?}\nstdout:\n{out}\nstderr:\n{err}");
            }
        }
    };
    let out = out.join().unwrap_or_default();
    let err = err.join().unwrap_or_default();
    Ok((status.code().unwrap_or(-1), out, err))
}

/// Runs `event-notify ARGS...` (not the daemon) and returns what it left.
pub fn run_cli(args: &[&str]) -> CmdOutput {
    output_within(Command::new(bin()).args(args), PATIENCE)
}
