//! The C API from C: tests/c/en_call.c, built against libevent_notify.a with the system's cc
//! (and with arm-linux-gnueabihf-gcc for armv7, run under qemu-arm), reports a short call to a
//! loopback receiver; the requests must be exactly the ones the config describes. Also: the
//! bounded flush of `en_destroy`, and the signal mask of the engine's threads.

// Where no C toolchain for the target is set up (musl, aarch64), only the text checks are built.
#![cfg_attr(
    not(all(target_env = "gnu", any(target_arch = "x86_64", target_arch = "arm"))),
    allow(dead_code, unused_imports)
)]

use crate::common;
use crate::support;

use common::{Receiver, Reply, TempDir};
use std::time::{Duration, Instant};
use support::Toolchain;

/// Builds en_call with `tc` against `lib` (static, or shared: then found through an rpath)
/// into `dir`.
fn build_en_call(tc: &Toolchain, lib: &std::path::Path, dir: &TempDir) -> std::path::PathBuf {
    let exe = dir.join("en_call");
    let src = support::repo().join("tests/c/en_call.c");
    let rpath = format!("-Wl,-rpath,{}", lib.parent().unwrap().display());
    let flags: &[&str] = if lib.extension().is_some_and(|e| e == "so") {
        &[&rpath]
    } else {
        &[]
    };
    support::build_c_with(tc, &[&src], lib, flags, &exe);
    exe
}

const BOARD: &str = r#"{"model": "GXV3370", "product": "GXV3370", "hardware_version": "V1.2A",
    "program_version": "1.0.1.28"}"#;

fn call_config(r: &Receiver) -> String {
    format!(
        r#"{{"events": {{
            "incoming_call": "{}",
            "establish_call": "{}",
            "terminate_call": "{}",
            "missed_call": "{}",
            "dnd_on": "{}"
        }},
        "delivery": {{"attempts": 3, "backoff_initial_ms": 50, "timeout_ms": 3000}}}}"#,
        r.bare_url(
            "/in?id=$call_id&from=$remote&name=$display_remote&dir=$calldirection&to=$local"
        ),
        r.bare_url("/up?id=$call_id&account=$active_user@$active_host"),
        r.bare_url("/end?id=$call_id&d=$duration&dir=$calldirection"),
        r.bare_url("/missed?id=$call_id"),
        r.bare_url("/dnd?on=1&product=$product&hw=$hardware_version"),
    )
}

/// Runs `en_call call` built with `tc` against `lib`, and checks what the receiver got.
fn short_call(tc: &Toolchain, lib: &std::path::Path) {
    let r = Receiver::start();
    let dir = TempDir::new("ffi-call");
    let config = dir.write("config.json", call_config(&r));
    let board = dir.write("board.json", BOARD);
    let exe = build_en_call(tc, lib, &dir);

    let mut cmd = support::command(tc, &exe);
    cmd.arg("call").arg(&config).arg(&board);
    let (code, out, err) = common::output_within(&mut cmd, Duration::from_secs(60));
    // en_destroy flushed before the program ended: everything is there already, no waiting.
    let got = r.requests();
    assert_eq!(code, 0, "en_call failed\nstdout:\n{out}\nstderr:\n{err}");

    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert_eq!(lines[0], "abi 1 version 0.1.0", "{out}");
    // 4 reports (3 from the SIP thread, 1 from the UI thread), 4 events, all configured;
    // 7 reports refused by the misuse checks, each logged through the callback.
    assert_eq!(
        lines[1], "counters messages=4 events=4 queued=4 refused=7",
        "{out}\n{err}"
    );
    assert_eq!(lines[2], "refusals logged 7", "{out}\n{err}");
    let destroy: Vec<&str> = lines[3].split(' ').collect();
    assert_eq!(&destroy[..2], ["destroy", "0"], "{out}");

    let targets: Vec<&str> = got.iter().map(|q| q.target.as_str()).collect();
    assert!(
        got.iter().all(|q| q.method == "GET"),
        "{}",
        common::summary(&got)
    );
    // One destination: the call's events arrive in the order they happened; the UI thread's
    // DND event comes in somewhere between them.
    let call: Vec<&str> = targets
        .iter()
        .copied()
        .filter(|t| !t.starts_with("/dnd"))
        .collect();
    assert_eq!(
        call,
        [
            "/in?id=a84b4c76&from=1002&name=Bob%20%26%20Alice&dir=incoming&to=1001",
            "/up?id=a84b4c76&account=1001@pbx.example",
            "/end?id=a84b4c76&d=0&dir=incoming",
        ],
        "{}",
        common::summary(&got)
    );
    let dnd: Vec<&str> = targets
        .iter()
        .copied()
        .filter(|t| t.starts_with("/dnd"))
        .collect();
    assert_eq!(
        dnd,
        ["/dnd?on=1&product=GXV3370&hw=V1.2A"],
        "{}",
        common::summary(&got)
    );
    // Nothing more arrives later (no missed_call for an answered call, no retries).
    r.assert_no_more_than(4, Duration::from_millis(300));
}

/// The native toolchain and the static library of this very build.
#[test]
#[cfg(all(target_env = "gnu", any(target_arch = "x86_64", target_arch = "arm")))]
fn a_c_program_reports_a_short_call() {
    short_call(&support::native(), &support::own_staticlib());
}

/// The same program linked to the shared library (where the target can make one).
#[test]
#[cfg(all(
    target_env = "gnu",
    target_arch = "x86_64",
    not(target_feature = "crt-static")
))]
fn a_c_program_linked_to_the_shared_library_reports_a_short_call() {
    short_call(&support::native(), &support::own_sharedlib());
}

/// The same program cross-compiled for armv7 (static, like the handset's binaries) against the
/// armv7 static library, run by qemu-arm against the receiver on the host's loopback.
#[test]
#[cfg(target_arch = "x86_64")]
fn a_c_program_for_armv7_reports_a_short_call_under_qemu() {
    let lib = support::armv7_staticlib();
    short_call(&support::armv7(), &lib);
}

/// `en_destroy` waits for the flush, and no longer than asked, even when the receiver hangs.
#[test]
#[cfg(all(target_env = "gnu", any(target_arch = "x86_64", target_arch = "arm")))]
fn destroy_flushes_for_the_time_given_and_no_longer() {
    let tc = support::native();
    let r = Receiver::builder().default_reply(Reply::Hang).start();
    let dir = TempDir::new("ffi-flush");
    let config = dir.write(
        "config.json",
        format!(
            r#"{{"events": {{"dnd_on": "{}"}}, "delivery": {{"timeout_ms": 20000}}}}"#,
            r.bare_url("/dnd?id=$call_id")
        ),
    );
    let exe = build_en_call(&tc, &support::own_staticlib(), &dir);
    let started = Instant::now();
    let mut cmd = support::command(&tc, &exe);
    cmd.arg("flush").arg(&config).arg("700");
    let (code, out, err) = common::output_within(&mut cmd, Duration::from_secs(30));
    let took = started.elapsed();
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let ms: u64 = out
        .trim()
        .strip_prefix("destroy 0 ")
        .and_then(|m| m.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        (690..2000).contains(&ms),
        "en_destroy took {ms} ms for a 700 ms flush"
    );
    // The program ended without waiting for the hanging attempt (20 s timeout).
    assert!(took < Duration::from_secs(10), "{took:?}");
    let got = r.requests();
    assert_eq!(got.len(), 1, "{}", common::summary(&got));
    assert_eq!(got[0].target, "/dnd?id=f1");
    r.release();
}

/// The engine's threads block the asynchronous signals (the firmware's SIGTERM, SIGCHLD, ... go
/// to its own threads; SIGPIPE cannot kill it), and the caller's mask is left as it was.
// Native runs only: under qemu-user, /proc shows the emulator's own signal masks.
#[test]
#[cfg(target_arch = "x86_64")]
fn engine_threads_block_asynchronous_signals() {
    use event_notify::ffi;
    use std::ffi::CString;

    fn mask(status: &str) -> u64 {
        let line = status
            .lines()
            .find(|l| l.starts_with("SigBlk:"))
            .expect("SigBlk line");
        u64::from_str_radix(line["SigBlk:".len()..].trim(), 16).expect("hex mask")
    }
    let bit = |sig: i32| 1u64 << (sig - 1);
    let own = || mask(&std::fs::read_to_string("/proc/thread-self/status").unwrap());

    let dir = TempDir::new("ffi-signals");
    // One event to a receiver by name, so that a delivery worker starts: workers start as
    // needed, and plain HTTP to a known address is sent from the engine's own thread; a name
    // is looked up by a worker (the machine's /etc/hosts names localhost).
    let r = Receiver::start();
    let config = dir.write(
        "config.json",
        format!(
            r#"{{"events": {{"dnd_on": "localhost:{}/sig"}}}}"#,
            r.port()
        ),
    );
    let path = CString::new(config.to_str().unwrap()).unwrap();
    let before = own();
    let mut err = 1;
    let e = unsafe { ffi::en_create(path.as_ptr(), std::ptr::null(), &mut err) };
    assert_eq!(err, ffi::EN_OK);
    assert_eq!(own(), before, "en_create changed the caller's signal mask");

    // The engine loop and a delivery worker, started by the engine thread when the event
    // below needs it (it inherits the engine thread's mask). A thread names itself once it
    // runs, so wait for the names to show up.
    let ev = CString::new("dnd_on").unwrap();
    let rc = unsafe { ffi::en_event(e, ev.as_ptr(), std::ptr::null(), std::ptr::null(), 0) };
    assert_eq!(rc, ffi::EN_OK);
    r.wait_for(1, Duration::from_secs(10));
    let want = 2;
    let deadline = Instant::now() + Duration::from_secs(10);
    let tasks = loop {
        let mut tasks = Vec::new();
        for task in std::fs::read_dir("/proc/self/task").unwrap() {
            let task = task.unwrap().path();
            let comm = std::fs::read_to_string(task.join("comm")).unwrap_or_default();
            let comm = comm.trim().to_string();
            if comm == "event-notify" || comm.starts_with("deliver-") {
                tasks.push((comm, task));
            }
        }
        if tasks.len() >= want || Instant::now() > deadline {
            break tasks;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(
        tasks.iter().any(|(c, _)| c == "event-notify")
            && tasks.iter().any(|(c, _)| c.starts_with("deliver-")),
        "engine threads: {tasks:?}"
    );
    for (comm, task) in &tasks {
        let m = mask(&std::fs::read_to_string(task.join("status")).unwrap());
        for sig in [
            libc_sig::SIGPIPE,
            libc_sig::SIGTERM,
            libc_sig::SIGINT,
            libc_sig::SIGHUP,
            libc_sig::SIGCHLD,
            libc_sig::SIGALRM,
            libc_sig::SIGUSR1,
        ] {
            assert_ne!(
                m & bit(sig),
                0,
                "{comm}: signal {sig} not blocked (SigBlk {m:x})"
            );
        }
        for sig in [
            libc_sig::SIGSEGV,
            libc_sig::SIGBUS,
            libc_sig::SIGFPE,
            libc_sig::SIGILL,
        ] {
            assert_eq!(
                m & bit(sig),
                0,
                "{comm}: synchronous signal {sig} blocked (SigBlk {m:x})"
            );
        }
    }
    assert_eq!(unsafe { ffi::en_destroy(e, 0) }, ffi::EN_OK);
}

/// Linux signal numbers (the same on x86_64 and ARM), for the signal-mask test, which runs
/// natively only.
#[cfg(target_arch = "x86_64")]
mod libc_sig {
    pub const SIGHUP: i32 = 1;
    pub const SIGINT: i32 = 2;
    pub const SIGILL: i32 = 4;
    pub const SIGBUS: i32 = 7;
    pub const SIGFPE: i32 = 8;
    pub const SIGUSR1: i32 = 10;
    pub const SIGSEGV: i32 = 11;
    pub const SIGPIPE: i32 = 13;
    pub const SIGALRM: i32 = 14;
    pub const SIGTERM: i32 = 15;
    pub const SIGCHLD: i32 = 17;
}
