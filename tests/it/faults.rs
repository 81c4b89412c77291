//! Fault injection (issue 10): the real daemon process against receivers on loopback that
//! refuse, hang, reset, redirect, answer garbage or slowly, and against abuse of its socket,
//! config and signals. One test per defect of the issue, each asserting its figure (nothing
//! lost, order kept, a healthy destination on time), plus the cases that held.
//!
//! The receivers are `common::Receiver` (scripted per request: status, delay, hang, close,
//! raw bytes) and, for port 80, the small `PortReceiver` below.

use crate::common;

use common::{run_cli, stat, status_when, summary, Daemon, Receiver, Reply, TempDir, PATIENCE};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One socket connection to the daemon: a line out, its one-line answer back.
struct Line {
    r: BufReader<UnixStream>,
}

impl Line {
    fn connect(d: &Daemon) -> Line {
        let s = UnixStream::connect(d.socket_path()).expect("connect to the daemon");
        s.set_read_timeout(Some(PATIENCE)).expect("timeout");
        Line {
            r: BufReader::new(s),
        }
    }

    fn ask(&mut self, line: &str) -> String {
        self.r
            .get_mut()
            .write_all(format!("{line}\n").as_bytes())
            .expect("write to the daemon");
        let mut answer = String::new();
        self.r.read_line(&mut answer).expect("read the answer");
        answer
    }
}

/// #1: SIGTERM and a readable client in the same poll wake-up panicked (index out of bounds)
/// and threw the outbox away. The daemon is stopped (SIGSTOP) while the client writes and
/// SIGTERM arrives, so both are ready at the one wake-up, every time.
#[test]
fn stop_signal_with_a_ready_client_neither_panics_nor_loses() {
    let r = Receiver::builder()
        .default_reply(Reply::Delayed(200, Duration::from_millis(100)))
        .start();
    let cfg = format!(
        r#"{{"events": {{"dnd_on": "{u}?n=$remote"}}, "delivery": {{"shutdown_flush_ms": 20000}}}}"#,
        u = r.bare_url("/q")
    );
    let mut d = Daemon::start(&cfg);
    let mut c = Line::connect(&d);
    for i in 0..10 {
        assert!(c.ask(&format!("EN1 dnd_on remote={i}")).starts_with("OK"));
    }
    d.signal(nix::sys::signal::Signal::SIGSTOP);
    c.r.get_mut().write_all(b"EN1 dnd_on remote=10\n").unwrap();
    d.sigterm();
    std::thread::sleep(Duration::from_millis(100));
    d.signal(nix::sys::signal::Signal::SIGCONT);
    let status = d.wait_exit(Duration::from_secs(30)).expect("exit");
    assert_eq!(status.code(), Some(0), "log:\n{}", d.log());
    let got = r.requests();
    let order: Vec<String> = got
        .iter()
        .map(|q| q.query("n").unwrap_or("?").to_string())
        .collect();
    let want: Vec<String> = (0..=10).map(|i| i.to_string()).collect();
    assert_eq!(order, want, "{}", summary(&got));
    assert!(d.log().contains("stopped: outbox empty"), "{}", d.log());
}

/// #2: with 12 destinations that hang (and are retried without limit), a healthy one's
/// notifications still go out at once, in order. Before: 4 workers, all held by the dead ones.
#[test]
fn twelve_hanging_destinations_do_not_delay_a_healthy_one() {
    let dead: Vec<Receiver> = (0..12)
        .map(|_| Receiver::builder().default_reply(Reply::Hang).start())
        .collect();
    let fine = Receiver::start();
    let cfg = format!(
        r#"{{"events": {{"missed_call": "http://127.0.0.1:$remote/dead", "dnd_on": "{f}?i=$remote"}},
            "delivery": {{"connect_timeout_ms": 500, "timeout_ms": 1500, "backoff_initial_ms": 20, "backoff_max_ms": 100}}}}"#,
        f = fine.bare_url("/fine")
    );
    let d = Daemon::start(&cfg);
    let mut c = Line::connect(&d);
    for r in &dead {
        // Two each: the second waits behind the first (order per destination).
        for _ in 0..2 {
            assert!(c
                .ask(&format!("EN1 missed_call remote={}", r.port()))
                .starts_with("OK"));
        }
    }
    for r in &dead {
        r.wait_for(1, PATIENCE);
    }
    // 20 healthy notifications over ~4 s, while the dead ones time out and retry.
    let mut lat = Vec::new();
    for i in 0..20 {
        let t0 = Instant::now();
        assert!(c.ask(&format!("EN1 dnd_on remote={i}")).starts_with("OK"));
        let got = fine.wait_for(i + 1, PATIENCE);
        lat.push(got[i].at.saturating_duration_since(t0));
        std::thread::sleep(Duration::from_millis(200));
    }
    let got = fine.requests();
    let order: Vec<&str> = got.iter().map(|q| q.query("i").unwrap_or("?")).collect();
    let want: Vec<String> = (0..20).map(|i| i.to_string()).collect();
    assert_eq!(order, want);
    lat.sort();
    let p50 = lat[lat.len() / 2];
    let max = lat[lat.len() - 1];
    eprintln!("healthy destination with 12 hanging ones: p50 {p50:?}, max (p99 of 20) {max:?}");
    // The goal is under 50 ms; the bound is loose for a loaded machine and qemu-user.
    assert!(max < Duration::from_millis(1500), "latencies {lat:?}");
    // The dead ones were retried meanwhile, and every one of them is still pending.
    let s = d.status();
    assert!(stat(&s, "retried") >= 12, "{s}");
    assert_eq!(stat(&s, "pending"), 24, "{s}");
    assert_eq!(stat(&s, "failed"), 0, "{s}");
}

/// #3: a port that is not a number from 1 to 65535 was sent to port 80. Refused at load, with
/// the column, by `check` and by `run`.
#[test]
fn bad_ports_are_refused_with_their_column() {
    for (url, col) in [
        ("127.0.0.1:8o8o/x", 11),
        ("http://127.0.0.1:abc/x", 18),
        ("http://127.0.0.1:99999/x", 18),
        ("127.0.0.1:/", 11),
        ("http://[::1]:0/x", 14),
    ] {
        let dir = TempDir::new("port");
        let cfg = dir.write("c.json", format!(r#"{{"events": {{"dnd_on": "{url}"}}}}"#));
        let (code, out, err) = run_cli(&["check", "--config", cfg.to_str().unwrap()]);
        assert_eq!(code, 1, "{url}: {out}{err}");
        assert!(
            out.contains(&format!(
                "column {col}: the port must be a number from 1 to 65535"
            )),
            "{url}: {out}"
        );
        let mut d = Daemon::spawn(&format!(r#"{{"events": {{"dnd_on": "{url}"}}}}"#), &[]);
        let st = d.wait_exit(PATIENCE).expect("run must refuse");
        assert_eq!(st.code(), Some(1), "{url}: {}", d.log());
    }
    // A port made by a variable is checked when sent: a bad one fails at once, not retried.
    let r = Receiver::start();
    let cfg = r#"{"events": {"dnd_on": "http://127.0.0.1:$remote/v"}, "delivery": {"backoff_initial_ms": 20, "backoff_max_ms": 40}}"#;
    let d = Daemon::start(cfg);
    d.emit_ok(&["dnd_on", "remote=8o8o"]);
    d.emit_ok(&["dnd_on", &format!("remote={}", r.port())]);
    r.wait_for(1, PATIENCE);
    let s = status_when(&d, "failed", 1);
    assert_eq!(stat(&s, "failed"), 1, "{s}");
    assert_eq!(stat(&s, "retried"), 0, "{s}");
    assert!(
        d.log()
            .contains("dnd_on: gave up after 1 attempt(s): bad-url"),
        "{}",
        d.log()
    );
    drop(d);
    // Good ports still load.
    let dir = TempDir::new("port");
    let cfg = dir.write(
        "c.json",
        r#"{"events": {"dnd_on": "h:65535/x", "dnd_off": "http://[::1]:8080/", "hold_call": "h:$remote/x"}}"#,
    );
    let (code, out, _) = run_cli(&["check", "--config", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
}

/// #4: a password with '#', '?' or '/' ended the authority early: printed by `expand` and the
/// log, sent to the wrong host. Refused with a clear error that does not print it.
#[test]
fn a_password_with_reserved_characters_is_refused_and_never_printed() {
    for pw in ["pa#Zq9", "pa?Zq9", "pa/Zq9", "12#Zq9"] {
        let dir = TempDir::new("pw");
        let cfg = dir.write(
            "c.json",
            format!(r#"{{"events": {{"dnd_on": "http://user:{pw}@127.0.0.1:9/x"}}}}"#),
        );
        let c = cfg.to_str().unwrap();
        for args in [
            vec!["check", "--config", c],
            vec!["expand", "dnd_on", "--config", c],
        ] {
            let (code, out, err) = run_cli(&args);
            assert_ne!(code, 0, "{args:?}: {out}{err}");
            assert!(
                !out.contains("Zq9") && !err.contains("Zq9"),
                "{args:?} printed the password: {out}{err}"
            );
            if args[0] == "check" {
                assert!(out.contains("must be written percent-encoded"), "{out}");
            }
        }
    }
    // Percent-encoded, it loads and the receiver gets it as Basic auth.
    let r = Receiver::start();
    let cfg = format!(
        r#"{{"events": {{"dnd_on": "http://user:pa%23Zq9@{}/x"}}}}"#,
        r.host_port()
    );
    let d = Daemon::start(&cfg);
    d.emit_ok(&["dnd_on"]);
    let got = r.wait_for(1, PATIENCE);
    assert_eq!(got[0].basic_auth(), Some(("user".into(), "pa#Zq9".into())));
    assert!(!d.log().contains("Zq9"));
}

/// #5: ureq's wire dump at EVENT_NOTIFY_LOG=trace showed `authorization: Basic ...`.
#[test]
fn no_log_level_prints_a_credential() {
    let r = Receiver::start();
    let cfg = format!(
        r#"{{"events": {{"dnd_on": {{"url": "{}", "username": "phone", "password": "Tr4ceSecret"}}}}}}"#,
        r.bare_url("/t")
    );
    let token = "cGhvbmU6VHI0Y2VTZWNyZXQ"; // base64("phone:Tr4ceSecret") without padding
    for level in ["trace", "debug"] {
        let mut d = Daemon::spawn_env(&cfg, &[], &[("EVENT_NOTIFY_LOG", level)]);
        d.wait_ready(PATIENCE);
        let n = r.count() + 1;
        d.emit_ok(&["dnd_on"]);
        r.wait_for(n, PATIENCE);
        let s = d.status();
        assert!(
            stat(&s, "delivered") == 1 || d.wait_log("delivered", PATIENCE),
            "{s}"
        );
        let log = d.log();
        assert!(log.contains("dnd_on"), "the {level} log is empty:\n{log}");
        // The library dumped the request as hex lines ("3039 390d 0a61 7574 ...  099..autho"),
        // so a credential is split across lines: decode the dump and search that too.
        let text = format!("{log}\n{}", hex_dump_bytes(&log)).to_ascii_lowercase();
        let token = token.to_ascii_lowercase();
        for secret in ["tr4cesecret", token.as_str(), "basic ", "authorization"] {
            assert!(
                !text.contains(secret),
                "{level} log shows {secret:?}:\n{log}"
            );
        }
    }
}

/// The bytes of every hex-dump line in a log (`xxxx xxxx ...  ascii`), in order.
fn hex_dump_bytes(log: &str) -> String {
    let is_group = |g: &str| {
        !g.is_empty()
            && g.len() <= 4
            && g.len() % 2 == 0
            && g.bytes().all(|b| b.is_ascii_hexdigit())
    };
    let mut out = Vec::new();
    for line in log.lines() {
        let Some(rest) = line.split(": trace: ").nth(1) else {
            continue;
        };
        let hex = rest.split("  ").next().unwrap_or("");
        if !hex.split(' ').all(is_group) {
            continue;
        }
        for g in hex.split(' ') {
            for i in (0..g.len()).step_by(2) {
                out.push(u8::from_str_radix(&g[i..i + 2], 16).unwrap_or(b'?'));
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// #6: `--socket` naming a regular file deleted it (even the config). Only a socket nobody
/// answers is replaced.
#[test]
fn the_socket_path_replaces_only_a_dead_socket() {
    let dir = TempDir::new("sock");
    let cfg_text = r#"{"events": {"dnd_on": "h/x"}}"#;
    let cfg = dir.write("config.json", cfg_text);
    let plain = dir.write("notes.txt", "keep me");
    for victim in [&cfg, &plain] {
        let (code, out, err) = common::output_within(
            Command::new(common::bin())
                .args(["run", "--config"])
                .arg(&cfg)
                .arg("--socket")
                .arg(victim)
                .env("EVENT_NOTIFY_LOG", "info"),
            PATIENCE,
        );
        assert_eq!(code, 1, "{out}{err}");
        assert!(err.contains("is not a socket"), "{err}");
        assert!(victim.exists(), "{} was deleted", victim.display());
    }
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), cfg_text);
    // A dead socket (its listener gone) is replaced.
    let stale = dir.join("stale.sock");
    drop(UnixListener::bind(&stale).unwrap());
    let d = Daemon::start_with(cfg_text, &["--socket", stale.to_str().unwrap()]);
    let mut s = UnixStream::connect(&stale).expect("the daemon took the stale socket");
    s.write_all(b"EN1 ping\n").unwrap();
    let mut got = [0u8; 8];
    let n = s.read(&mut got).unwrap();
    assert_eq!(&got[..n], b"OK pong\n");
    drop(d);
}

/// #7: sixteen idle clients locked everyone out (`ERR busy`). When full, the client idle the
/// longest is closed; a new client always gets in.
#[test]
fn idle_clients_never_lock_out_a_new_one() {
    let d = Daemon::start(r#"{"events": {}}"#);
    let mut idle: Vec<Line> = Vec::new();
    for _ in 0..40 {
        let mut c = Line::connect(&d);
        assert_eq!(c.ask("EN1 ping"), "OK pong\n");
        idle.push(c);
    }
    // emit and status, from new processes, still work.
    d.emit_ok(&["dnd_on"]);
    let s = d.status();
    assert_eq!(stat(&s, "clients"), 16, "{s}");
    // The newest idle clients are still served; the oldest were closed.
    assert_eq!(idle.last_mut().unwrap().ask("EN1 ping"), "OK pong\n");
    let first = idle.first_mut().unwrap();
    let _ = first.r.get_mut().write_all(b"EN1 ping\n");
    let mut rest = String::new();
    let n = first.r.read_line(&mut rest).unwrap_or(0);
    assert_eq!(n, 0, "the oldest idle client was still served: {rest:?}");
}

/// #8: with the defaults, an outage longer than eight attempts' back-off gave up the oldest
/// notification. Now: retried while there is room, until `max_age_s`.
#[test]
fn a_long_outage_loses_nothing_with_the_defaults() {
    let r = Receiver::down();
    // The default give-up rule; only the back-off is short, so 2 s are ~100 attempts.
    let cfg = format!(
        r#"{{"events": {{"dnd_on": "{u}?n=$remote"}}, "delivery": {{"connect_timeout_ms": 200, "backoff_initial_ms": 10, "backoff_max_ms": 20}}}}"#,
        u = r.bare_url("/o")
    );
    let d = Daemon::start(&cfg);
    let mut c = Line::connect(&d);
    for i in 0..5 {
        assert!(c.ask(&format!("EN1 dnd_on remote={i}")).starts_with("OK"));
    }
    std::thread::sleep(Duration::from_millis(2000));
    let s = d.status();
    assert!(stat(&s, "retried") >= 20, "{s}");
    assert_eq!(stat(&s, "failed"), 0, "{s}");
    assert_eq!(stat(&s, "pending"), 5, "{s}");
    r.come_up();
    let got = r.wait_for(5, PATIENCE);
    let order: Vec<&str> = got.iter().map(|q| q.query("n").unwrap_or("?")).collect();
    assert_eq!(order, ["0", "1", "2", "3", "4"]);
}

/// #8, the age limit the admin sets: past `max_age_s` a failing notification is given up,
/// counted and logged.
#[test]
fn max_age_gives_up_a_failing_notification() {
    let r = Receiver::down();
    let cfg = format!(
        r#"{{"events": {{"dnd_on": "{u}"}}, "delivery": {{"max_age_s": 1, "connect_timeout_ms": 200, "backoff_initial_ms": 50, "backoff_max_ms": 100}}}}"#,
        u = r.bare_url("/a")
    );
    let d = Daemon::start(&cfg);
    d.emit_ok(&["dnd_on"]);
    assert!(d.wait_log("dnd_on: gave up after", PATIENCE), "{}", d.log());
    let s = d.status();
    assert_eq!(stat(&s, "failed"), 1, "{s}");
    assert_eq!(stat(&s, "pending"), 0, "{s}");
    assert!(stat(&s, "retried") >= 3, "{s}");
}

/// A receiver on a port of our choice (port 80 for #9), answering from a script: each
/// connection one request, `Connection: close`.
struct PortReceiver {
    got: Arc<Mutex<Vec<String>>>,
}

impl PortReceiver {
    fn start(l: TcpListener, mut answer: impl FnMut(&str) -> u16 + Send + 'static) -> Self {
        let got = Arc::new(Mutex::new(Vec::new()));
        let g = Arc::clone(&got);
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { return };
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let mut head = Vec::new();
                let mut b = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match s.read(&mut b) {
                        Ok(1) => head.push(b[0]),
                        _ => break,
                    }
                }
                let text = String::from_utf8_lossy(&head).into_owned();
                let target = text.split(' ').nth(1).unwrap_or("").to_string();
                let code = answer(&target);
                g.lock().unwrap().push(target);
                let _ = write!(
                    s,
                    "HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
            }
        });
        PortReceiver { got }
    }

    fn wait_for(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let got = self.got.lock().unwrap().clone();
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// #9: `127.0.0.1/in` and `127.0.0.1:80/end` were two destinations, so a retried
/// `incoming_call` arrived after the `terminate_call`.
#[test]
fn one_server_written_two_ways_keeps_its_order() {
    let Ok(l) = TcpListener::bind("127.0.0.1:80") else {
        // Port 80 needs root (or a low ip_unprivileged_port_start); the rule itself is tested
        // on the library's destination key, which is what the outbox orders by.
        eprintln!("note: cannot bind 127.0.0.1:80; checking the destination key only");
        use event_notify::core::outbox::Destination;
        assert_eq!(
            Destination::of("http://127.0.0.1/in"),
            Destination::of("http://127.0.0.1:80/end")
        );
        return;
    };
    let mut first = true;
    let r = PortReceiver::start(l, move |t| {
        if t.starts_with("/in") && std::mem::take(&mut first) {
            503
        } else {
            200
        }
    });
    let cfg = r#"{"events": {"incoming_call": "127.0.0.1/in?id=$call_id", "terminate_call": "HTTP://127.0.0.1:80/end?id=$call_id"},
        "delivery": {"backoff_initial_ms": 200, "backoff_max_ms": 300}}"#;
    let d = Daemon::start(cfg);
    d.emit_ok(&["incoming_call", "call_id=c1"]);
    d.emit_ok(&["terminate_call", "call_id=c1"]);
    let got = r.wait_for(3);
    assert_eq!(got, ["/in?id=c1", "/in?id=c1", "/end?id=c1"]);
}

/// #10: 301/302 counted as delivered while the target got nothing. A redirect is a failure,
/// not retried, with its Location (credentials removed) in `status` and the log.
#[test]
fn a_redirect_is_failed_not_retried_and_shows_where() {
    let moved = b"HTTP/1.1 301 Moved Permanently\r\nLocation: https://crm:Loc4Pw@crm.example/new\r\nContent-Length: 0\r\n\r\n".to_vec();
    let r = Receiver::builder().default_reply(Reply::Raw(moved)).start();
    let cfg = format!(
        r#"{{"events": {{"dnd_on": "{}"}}, "delivery": {{"backoff_initial_ms": 20, "backoff_max_ms": 40}}}}"#,
        r.bare_url("/old")
    );
    let d = Daemon::start(&cfg);
    d.emit_ok(&["dnd_on"]);
    r.wait_for(1, PATIENCE);
    assert!(
        d.wait_log("301 redirect to https://crm.example/new", PATIENCE),
        "{}",
        d.log()
    );
    r.assert_no_more_than(1, Duration::from_millis(500));
    let s = d.status();
    assert_eq!(stat(&s, "delivered"), 0, "{s}");
    assert_eq!(stat(&s, "failed"), 1, "{s}");
    assert!(
        s.contains("redirect dnd_on 301 https://crm.example/new"),
        "{s}"
    );
    assert!(s.contains("last=301 attempt=1"), "{s}");
    assert!(!s.contains("Loc4Pw") && !d.log().contains("Loc4Pw"));
}

/// #11: `check` accepted configs that `run` refused (a missing `ca_file`). One validation.
#[test]
fn check_refuses_what_run_refuses() {
    let dir = TempDir::new("ca");
    let missing = dir.join("no-such-ca.pem");
    let notpem = dir.write("not.pem", "hello");
    for ca in [&missing, &notpem] {
        let text = format!(
            r#"{{"events": {{"dnd_on": "https://h/x"}}, "delivery": {{"ca_file": "{}"}}}}"#,
            ca.display()
        );
        let cfg = dir.write("c.json", &text);
        let (code, out, _) = run_cli(&["check", "--config", cfg.to_str().unwrap()]);
        assert_eq!(code, 1, "{out}");
        assert!(out.contains("delivery.ca_file"), "{out}");
        let mut d = Daemon::spawn(&text, &[]);
        assert_eq!(
            d.wait_exit(PATIENCE).expect("run must refuse").code(),
            Some(1)
        );
    }
}

/// #12: the folder watch was lost when the folder was deleted and made again, or did not exist
/// at first boot.
#[test]
fn the_config_folder_watch_survives_delete_and_late_creation() {
    let r = Receiver::start();
    let good = format!(
        r#"{{"events": {{"dnd_on": "{}"}}}}"#,
        r.bare_url("/w?n=$remote")
    );
    // Deleted and made again.
    let top = TempDir::new("watch");
    let sub = top.join("etc");
    std::fs::create_dir(&sub).unwrap();
    let cfg = sub.join("config.json");
    std::fs::write(&cfg, r#"{"events": {}}"#).unwrap();
    let d = Daemon::start_with(r#"{"events": {}}"#, &["--config", cfg.to_str().unwrap()]);
    std::fs::remove_dir_all(&sub).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(&cfg, &good).unwrap();
    assert!(d.wait_log("config reloaded", PATIENCE), "{}", d.log());
    d.emit_ok(&["dnd_on", "remote=a"]);
    r.wait_for(1, PATIENCE);
    // Not there at first boot (two levels missing).
    let later = top.join("late").join("deep").join("config.json");
    let d2 = Daemon::start_with("{}", &["--config", later.to_str().unwrap()]);
    std::fs::create_dir_all(later.parent().unwrap()).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    std::fs::write(&later, &good).unwrap();
    assert!(d2.wait_log("config reloaded", PATIENCE), "{}", d2.log());
    d2.emit_ok(&["dnd_on", "remote=b"]);
    let got = r.wait_for(2, PATIENCE);
    assert_eq!(got[1].query("n"), Some("b"));
}

/// #13: refusals were logged without limit (529 MB in six minutes). Repeated warnings are
/// rate-limited; the counters still count every one.
#[test]
fn repeated_refusals_are_rate_limited_and_counted() {
    let d = Daemon::start(r#"{"events": {}}"#);
    let s = UnixStream::connect(d.socket_path()).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut r = BufReader::new(s);
    let n = 3000;
    // In batches: a socket client must read its replies.
    for batch in 0..n / 100 {
        let mut lines = String::new();
        for i in 0..100 {
            lines.push_str(&format!("EN2 junk {batch} {i}\n"));
        }
        r.get_mut().write_all(lines.as_bytes()).unwrap();
        for _ in 0..100 {
            let mut a = String::new();
            r.read_line(&mut a).unwrap();
            assert!(a.starts_with("ERR bad-version"), "{a}");
        }
    }
    let st = d.status();
    assert_eq!(stat(&st, "refused"), n as u64, "{st}");
    let logged = d.log().matches("refused a socket message").count();
    assert!((1..=10).contains(&logged), "{logged} refusal lines logged");
}

/// #13, the rest: duplicate JSON keys refused like unknown keys; extra fields on ping/reload
/// refused.
#[test]
fn duplicate_keys_and_extra_fields_are_refused() {
    let dir = TempDir::new("dup");
    for text in [
        r#"{"events": {"dnd_on": "h/a"}, "events": {"dnd_off": "h/b"}}"#,
        r#"{"events": {"dnd_on": {"url": "h/a", "url": "h/b"}}}"#,
        r#"{"events": {"dnd_on": "h/a"}, "delivery": {"timeout_ms": 10, "timeout_ms": 20}}"#,
    ] {
        let cfg = dir.write("c.json", text);
        let (code, out, _) = run_cli(&["check", "--config", cfg.to_str().unwrap()]);
        assert_eq!(code, 1, "{text}: {out}");
        assert!(out.contains("is set twice"), "{out}");
    }
    let d = Daemon::start(r#"{"events": {}}"#);
    let mut c = Line::connect(&d);
    assert!(c.ask("EN1 ping extra=1").starts_with("ERR unknown-field"));
    assert!(c.ask("EN1 reload now").starts_with("ERR unknown-field"));
    assert_eq!(c.ask("EN1 ping"), "OK pong\n");
}

/// Cases that held in the fault run, kept: a receiver that resets, answers garbage, or
/// answers slowly is retried and then delivered once, in order; the daemon keeps serving.
#[test]
fn resets_garbage_and_slow_answers_are_retried_in_order() {
    let r = Receiver::builder()
        .replies([
            Reply::Close,
            Reply::Raw(b"this is not HTTP\r\n\r\n".to_vec()),
            Reply::Raw(b"HTTP/1.1 2".to_vec()),
            Reply::Delayed(200, Duration::from_millis(300)),
        ])
        .start();
    let cfg = format!(
        r#"{{"events": {{"dnd_on": "{u}?n=$remote"}}, "delivery": {{"timeout_ms": 2000, "backoff_initial_ms": 20, "backoff_max_ms": 50}}}}"#,
        u = r.bare_url("/g")
    );
    let d = Daemon::start(&cfg);
    d.emit_ok(&["dnd_on", "remote=1"]);
    d.emit_ok(&["dnd_on", "remote=2"]);
    let got = r.wait_for(5, PATIENCE);
    let order: Vec<&str> = got.iter().map(|q| q.query("n").unwrap_or("?")).collect();
    assert_eq!(order, ["1", "1", "1", "1", "2"], "{}", summary(&got));
    let s = status_when(&d, "delivered", 2);
    assert_eq!(stat(&s, "delivered"), 2, "{s}");
    assert_eq!(stat(&s, "failed"), 0, "{s}");
    // A raw TCP peer that accepts and never reads does not wedge anything either.
    let _peer = TcpStream::connect(r.addr()).unwrap();
    d.emit_ok(&["dnd_on", "remote=3"]);
    r.wait_for(6, PATIENCE);
}

/// Issue 14 #2: an unpaced burst of 1,000 events to a healthy receiver drops none: the client
/// writes each line as soon as the previous one is answered (answered on queueing, long before
/// delivery), so the outbox fills faster than it drains. It stores each notification at its real
/// size now (before: 128 fixed slots, 759 of 1,000 dropped). All arrive, each once, in order.
#[test]
fn a_burst_of_1000_to_a_healthy_receiver_drops_none() {
    let r = Receiver::start();
    let cfg = format!(
        r#"{{"events": {{"dnd_on": "{u}?n=$remote&mac=$mac&t=$timestamp", "dnd_off": "{u}?n=$remote&off=1"}}}}"#,
        u = r.bare_url("/burst")
    );
    let d = Daemon::start(&cfg);
    const N: usize = 1_000;
    let mut c = Line::connect(&d);
    let mut most_pending = 0;
    for i in 0..N {
        let verb = if i % 2 == 0 { "dnd_on" } else { "dnd_off" };
        let answer = c.ask(&format!("EN1 {verb} remote={i}"));
        assert!(answer.starts_with("OK "), "{answer}");
        if i % 100 == 99 {
            most_pending = most_pending.max(stat(&d.status(), "pending"));
        }
    }
    let got = r.wait_for(N, Duration::from_secs(60));
    let order: Vec<usize> = got
        .iter()
        .filter_map(|q| q.query("n").and_then(|n| n.parse().ok()))
        .collect();
    assert_eq!(order, (0..N).collect::<Vec<_>>(), "{}", summary(&got));
    let st = status_when(&d, "delivered", N as u64);
    assert_eq!(stat(&st, "dropped"), 0, "{st}");
    assert_eq!(stat(&st, "delivered"), N as u64, "{st}");
    assert!(!d.log().contains("outbox full"), "{}", d.log());
    eprintln!("burst of {N}: at most {most_pending} pending at a time");
}

/// A client that writes faster than it reads is slowed down by its socket, never dropped: 3,000
/// lines written at once while the replies are read only later all get their answer, in order.
/// (Before: the daemon dropped the client when its socket could not take a reply at once,
/// after about 200 unread replies.)
#[test]
fn a_client_that_reads_late_gets_every_answer() {
    let d = Daemon::start(r#"{"events": {}}"#);
    const LINES: usize = 3000;
    let s = UnixStream::connect(d.socket_path()).expect("connect");
    let mut w = s.try_clone().expect("clone");
    let writer = std::thread::spawn(move || {
        let mut all = Vec::new();
        for _ in 0..LINES {
            all.extend_from_slice(b"EN1 ping\n");
        }
        w.write_all(&all).expect("the daemon kept reading");
    });
    std::thread::sleep(Duration::from_millis(1000));
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut r = BufReader::new(s);
    let mut got = 0;
    let mut line = String::new();
    while got < LINES {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                assert_eq!(line, "OK pong\n");
                got += 1;
            }
        }
    }
    writer.join().unwrap();
    assert_eq!(got, LINES, "replies received before the daemon closed");
    assert!(d.status().contains("clients"), "the daemon still answers");
}

/// A server that takes the TCP connection and never answers the TLS handshake: the handshake is
/// part of the connect (as in ureq), so the attempt ends at `connect_timeout_ms`, not at the
/// much longer `timeout_ms`, and is retried.
#[test]
fn a_tls_handshake_that_never_ends_times_out_at_connect_timeout_ms() {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = Arc::clone(&held);
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            keep.lock().unwrap_or_else(|e| e.into_inner()).push(s);
        }
    });
    let ca = common::TestCa::new();
    let d = Daemon::start(&format!(
        r#"{{"events": {{"dnd_on": "https://127.0.0.1:{port}/x"}},
            "delivery": {{"ca_file": "{}", "connect_timeout_ms": 300, "timeout_ms": 4000,
                          "backoff_initial_ms": 5000, "backoff_max_ms": 5000}}}}"#,
        ca.ca_file().display()
    ));
    let t0 = Instant::now();
    d.emit_ok(&["dnd_on"]);
    let s = status_when(&d, "retried", 1);
    let took = t0.elapsed();
    assert_eq!(stat(&s, "retried"), 1, "{s}");
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_millis(2500),
        "the handshake was given {took:?}, not connect_timeout_ms (300 ms): {s}"
    );
    assert!(!held.lock().unwrap_or_else(|e| e.into_inner()).is_empty());
}
