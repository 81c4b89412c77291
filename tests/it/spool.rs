//! Issue 14 against the real daemon: the spool across kill -9, a damaged spool at start, no
//! spool writes while receivers are healthy, the delivery id on retries, signed requests checked
//! by `listen --secret`, extra headers, and the signing secret kept out of every output.

use crate::common;

use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A `key value` line of `status`.
fn stat(status: &str, key: &str) -> Option<String> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ').map(str::to_string))
}

fn num(status: &str, key: &str) -> u64 {
    stat(status, key)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no number {key} in status:\n{status}"))
}

/// Polls `status` until `f` holds; panics with the last status after `timeout`.
fn wait_status(d: &Daemon, timeout: Duration, what: &str, f: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let s = d.status();
        if f(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; status:\n{s}\nlog:\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn spool_config(url: &str, spool: &std::path::Path, extra_delivery: &str) -> String {
    format!(
        r#"{{"events": {{"dnd_on": "{url}"}},
            "delivery": {{"spool": {{"path": "{}", "max_bytes": 262144}},
                          "backoff_initial_ms": 50, "backoff_max_ms": 300 {extra_delivery}}}}}"#,
        spool.display()
    )
}

/// Writes many `emit` lines on one socket connection, reading the replies as they come.
fn emit_many(d: &Daemon, lines: impl Iterator<Item = String>) -> usize {
    let s = UnixStream::connect(d.socket_path()).expect("connect socket");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut reader = BufReader::new(s.try_clone().unwrap());
    let mut w = s;
    let mut ok = 0;
    let mut pending = 0usize;
    let mut reply = String::new();
    for line in lines {
        w.write_all(line.as_bytes()).unwrap();
        pending += 1;
        // Keep at most 64 replies outstanding: the daemon never blocks on a client.
        while pending >= 64 {
            reply.clear();
            reader.read_line(&mut reply).unwrap();
            assert!(reply.starts_with("OK"), "{reply}");
            ok += 1;
            pending -= 1;
        }
    }
    while pending > 0 {
        reply.clear();
        reader.read_line(&mut reply).unwrap();
        assert!(reply.starts_with("OK"), "{reply}");
        ok += 1;
        pending -= 1;
    }
    ok
}

#[test]
fn kill_9_with_50_waiting_then_all_50_arrive_once_in_order() {
    let receiver = Receiver::down();
    let keep = TempDir::new("spool-keep");
    let spool = keep.join("spool");
    let url = receiver.url("/ev?n=$remote&id=$delivery_id");
    let config = spool_config(&url, &spool, "");
    let mut first = Daemon::start(&config);
    let sent = emit_many(&first, (1..=50).map(|i| format!("EN1 dnd_on remote={i}\n")));
    assert_eq!(sent, 50);
    let s = wait_status(&first, PATIENCE, "50 spooled", |s| {
        num(s, "spool_waiting") == 50
    });
    assert!(num(&s, "spool_writes") >= 1);
    first.signal(nix::sys::signal::Signal::SIGKILL);
    first.wait_exit(PATIENCE).expect("killed");
    let start_before = num(&s, "start");

    receiver.come_up();
    let second = Daemon::start(&config);
    let got = receiver.wait_for(50, Duration::from_secs(30));
    receiver.assert_no_more_than(50, Duration::from_millis(1500));
    let ns: Vec<String> = got
        .iter()
        .map(|r| r.query("n").unwrap().to_string())
        .collect();
    let want: Vec<String> = (1..=50).map(|i| i.to_string()).collect();
    assert_eq!(ns, want, "all 50, once, in order");
    let mut ids = std::collections::HashSet::new();
    for r in &got {
        let id = r.header("X-Event-Notify-Id").expect("id header");
        assert_eq!(Some(id), r.query("id"), "header and $delivery_id agree");
        assert_eq!(Some(id), r.header("Idempotency-Key"));
        // Numbered in the first start: the same id as the attempts before the kill.
        assert!(id.contains(&format!("-{start_before}-")), "{id}");
        assert!(ids.insert(id.to_string()), "id {id} twice");
    }
    let s = wait_status(&second, PATIENCE, "spool emptied", |s| {
        num(s, "spool_waiting") == 0
    });
    assert_eq!(num(&s, "spool_replayed"), 50);
    assert_eq!(num(&s, "start"), start_before + 1);
    assert_eq!(
        std::fs::metadata(&spool).unwrap().len(),
        0,
        "truncated when drained"
    );
}

#[test]
fn a_cut_and_garbled_spool_starts_and_replays_what_is_whole() {
    let receiver = Receiver::down();
    let keep = TempDir::new("spool-keep");
    let spool = keep.join("spool");
    let url = receiver.url("/ev?n=$remote");
    let config = spool_config(&url, &spool, "");
    let mut first = Daemon::start(&config);
    emit_many(&first, (1..=6).map(|i| format!("EN1 dnd_on remote={i}\n")));
    wait_status(&first, PATIENCE, "6 spooled", |s| {
        num(s, "spool_waiting") == 6
    });
    first.signal(nix::sys::signal::Signal::SIGKILL);
    first.wait_exit(PATIENCE).expect("killed");

    // Garbage in the middle of record 3 and the last record cut in half.
    let mut bytes = std::fs::read(&spool).unwrap();
    let rec = bytes.len() / 6;
    for b in &mut bytes[2 * rec + 12..2 * rec + 20] {
        *b ^= 0x5A;
    }
    bytes.truncate(bytes.len() - rec / 2);
    bytes.extend_from_slice(b"\xE5\x70garbage after the tail");
    std::fs::write(&spool, &bytes).unwrap();

    receiver.come_up();
    let second = Daemon::start(&config);
    let got = receiver.wait_for(4, Duration::from_secs(20));
    receiver.assert_no_more_than(4, Duration::from_millis(1000));
    let ns: Vec<&str> = got.iter().map(|r| r.query("n").unwrap()).collect();
    assert_eq!(ns, ["1", "2", "4", "5"]);
    let s = second.status();
    assert_eq!(num(&s, "spool_replayed"), 4);
    assert_eq!(num(&s, "spool_corrupt"), 1, "{s}");
    assert_eq!(num(&s, "spool_torn"), 1, "{s}");
    assert!(
        second.log().contains("skipped a torn tail"),
        "{}",
        second.log()
    );

    // A spool file that is pure garbage, or a folder where the file should be: still starts.
    drop(second);
    std::fs::write(&spool, vec![0xE5u8; 5000]).unwrap();
    let third = Daemon::start(&config);
    assert_eq!(num(&third.status(), "spool_replayed"), 0);
    drop(third);
    let odd = TempDir::new("spool-odd");
    std::fs::create_dir(odd.join("spool")).unwrap();
    let d = Daemon::start(&spool_config(&url, &odd.join("spool"), ""));
    let s = d.status();
    assert_eq!(num(&s, "spool_open"), 0);
    assert_eq!(num(&s, "spool_errors"), 1);
    d.emit_ok(&["dnd_on", "remote=7"]);
    let got = receiver.wait_for(5, PATIENCE);
    assert_eq!(got[4].query("n"), Some("7"), "delivers without a spool");
}

#[test]
fn healthy_receiver_means_zero_spool_writes() {
    const N: usize = 10_000;
    let receiver = Receiver::start();
    let keep = TempDir::new("spool-keep");
    let spool = keep.join("spool");
    let config = spool_config(&receiver.url("/ev?n=$remote"), &spool, "");
    let d = Daemon::start(&config);
    let started = Instant::now();
    // In batches, so the outbox (128) is never the story here.
    for batch in 0..N / 100 {
        emit_many(
            &d,
            (0..100).map(|i| format!("EN1 dnd_on remote={}\n", batch * 100 + i)),
        );
        wait_status(&d, Duration::from_secs(60), "batch delivered", |s| {
            num(s, "pending") == 0
        });
    }
    let s = d.status();
    eprintln!("{N} healthy events in {:?}", started.elapsed());
    assert_eq!(num(&s, "delivered"), N as u64, "{s}");
    assert_eq!(num(&s, "spool_writes"), 0, "{s}");
    assert_eq!(num(&s, "spool_appended"), 0);
    assert_eq!(std::fs::metadata(&spool).unwrap().len(), 0);
    assert_eq!(receiver.count(), N);
}

#[test]
fn a_forced_retry_arrives_twice_with_the_same_id() {
    // The first answer comes after the phone's timeout: the server got it, the phone retries.
    let receiver = Receiver::builder()
        .replies([Reply::Delayed(200, Duration::from_millis(1500))])
        .start();
    let config = format!(
        r#"{{"events": {{"dnd_on": "{}"}},
            "delivery": {{"timeout_ms": 500, "connect_timeout_ms": 500,
                          "backoff_initial_ms": 50, "backoff_max_ms": 100}}}}"#,
        receiver.url("/ev?id=$delivery_id")
    );
    let d = Daemon::start(&config);
    d.emit_ok(&["dnd_on"]);
    let got = receiver.wait_for(2, PATIENCE);
    let ids: Vec<&str> = got
        .iter()
        .map(|r| r.header("X-Event-Notify-Id").unwrap())
        .collect();
    assert_eq!(ids[0], ids[1], "same id on both attempts");
    assert_eq!(got[0].query("id"), Some(ids[0]));
    assert_eq!(got[1].query("id"), Some(ids[0]));
    // 12 hex digits, the start, the sequence.
    let parts: Vec<&str> = ids[0].split('-').collect();
    assert_eq!(parts.len(), 3, "{}", ids[0]);
    assert_eq!(parts[0].len(), 12);
    assert_eq!(parts[2], "1");
    // A second notification gets the next number.
    d.emit_ok(&["dnd_on"]);
    let got = receiver.wait_for(3, PATIENCE);
    let third = got[2].header("X-Event-Notify-Id").unwrap();
    assert_eq!(third, format!("{}-{}-2", parts[0], parts[1]));
}

const SECRET: &str = "sk_live_do-not-print-me-42";

/// Starts `listen --secret` and returns it with its address.
fn listen(secret: &str, count: usize) -> (std::process::Child, String) {
    let mut child = Command::new(bin())
        .args(["listen", "--bind", "127.0.0.1:0", "--secret", secret])
        .args(["--count", &count.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn listen");
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    err.read_line(&mut first).unwrap();
    let addr = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_string();
    (child, addr)
}

#[test]
fn signed_requests_pass_listen_secret_and_extra_headers_arrive() {
    let (mut rx, addr) = listen(SECRET, 3);
    let per_event = "a-per-event-secret";
    let (mut rx2, addr2) = listen(per_event, 1);
    let headers_rx = Receiver::start();
    let config = format!(
        r#"{{"events": {{
              "dnd_on": "{addr}/in?from=$remote&name=$display_remote&id=$delivery_id",
              "dnd_off": {{"url": "{addr}/cdr", "method": "POST", "content_type": "json",
                           "body": "{{\"who\":\"$remote\",\"id\":\"$delivery_id\"}}"}},
              "hold_call": {{"url": "{addr2}/hold", "signing_secret": "{per_event}"}},
              "resume_call": {{"url": "{}", "headers": {{"X-Api-Token": "tok-$mac", "X-Caller": "$display_remote"}}}},
              "syslog_on": {{"url": "{addr}/s", "method": "POST", "body": "a=1&b=$remote"}}
            }},
            "delivery": {{"signing_secret": "{SECRET}"}}}}"#,
        headers_rx.url("/r")
    );
    let d = Daemon::start(&config);
    d.emit_ok(&["dnd_on", "remote=1002", "display_remote=Bob & Alice #2"]);
    d.emit_ok(&["dnd_off", "remote=1002"]);
    d.emit_ok(&["syslog_on", "remote=x y"]);
    d.emit_ok(&["hold_call", "call_id=c1"]);
    d.emit_ok(&[
        "resume_call",
        "call_id=c1",
        "display_remote=Eve\r\nX-Injected: 1",
    ]);
    let mut out = String::new();
    rx.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert!(rx.wait().unwrap().success());
    let oks = out.lines().filter(|l| *l == "  signature ok").count();
    assert_eq!(oks, 3, "{out}");
    let mut out2 = String::new();
    rx2.stdout
        .take()
        .unwrap()
        .read_to_string(&mut out2)
        .unwrap();
    assert!(rx2.wait().unwrap().success());
    assert!(out2.contains("GET /hold\n  signature ok\n"), "{out2}");

    let r = &headers_rx.wait_for(1, PATIENCE)[0];
    assert!(r.header("X-Api-Token").unwrap().starts_with("tok-"));
    // A value cannot start a header of its own: CR/LF arrive percent-encoded.
    assert_eq!(r.header("X-Caller"), Some("Eve%0D%0AX-Injected%3A%201"));
    assert_eq!(r.header("X-Injected"), None);
    let sig = r.header("X-Event-Notify-Signature").unwrap();
    assert!(sig.starts_with("t=") && sig.contains(",v1="), "{sig}");

    // The secrets are in no output: log, status, check, expand.
    let mut texts = vec![d.log(), d.status(), out, out2];
    let c = d.config_path().to_str().unwrap().to_string();
    for args in [
        vec!["check", "--config", &c],
        vec!["expand", "--config", &c, "dnd_on"],
        vec!["expand", "--config", &c, "hold_call"],
        vec!["expand", "--config", &c, "resume_call"],
    ] {
        let (code, o, e) = run_cli(&args);
        assert_eq!(code, 0, "{args:?}: {e}");
        texts.push(o);
        texts.push(e);
    }
    let expand = run_cli(&["expand", "--config", &c, "resume_call"]).1;
    assert!(expand.contains("X-Api-Token: *** (masked)"), "{expand}");
    assert!(
        expand.contains("X-Event-Notify-Signature: t=<time sent>"),
        "{expand}"
    );
    // An invalid config that holds the secret: the errors name the place, never the value.
    d.write_config(&config.replace("\"hold_call\"", "\"no_such_event\""));
    let _ = d.cli("reload", &[]);
    texts.push(d.log());
    let bad = d.dir().write(
        "bad.json",
        format!(r#"{{"events": {{}}, "delivery": {{"signing_secret": ["{SECRET}"], "spool": {{"path": "{SECRET}", "max_bytes": 1}}}}}}"#),
    );
    let (code, o, e) = run_cli(&["check", "--config", bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    texts.push(o);
    texts.push(e);
    for t in &texts {
        assert!(!t.contains(SECRET), "the signing secret was printed:\n{t}");
        assert!(
            !t.contains(per_event),
            "the per-event secret was printed:\n{t}"
        );
    }
}

#[test]
fn sigterm_spools_what_is_still_queued_for_a_healthy_but_slow_receiver() {
    // The receiver takes every connection but answers nothing: no attempt has failed yet when
    // SIGTERM comes, so nothing was spooled while running; stopping spools all five.
    let receiver = Receiver::builder().default_reply(Reply::Hang).start();
    let keep = TempDir::new("spool-keep");
    let spool = keep.join("spool");
    let url = receiver.url("/ev?n=$remote");
    let config = spool_config(
        &url,
        &spool,
        r#", "timeout_ms": 60000, "shutdown_flush_ms": 300"#,
    );
    let mut first = Daemon::start(&config);
    emit_many(&first, (1..=5).map(|i| format!("EN1 dnd_on remote={i}\n")));
    receiver.wait_for(1, PATIENCE);
    let s = first.status();
    assert_eq!(num(&s, "spool_writes"), 0, "nothing failed yet: {s}");
    first.sigterm();
    let exit = first
        .wait_exit(PATIENCE)
        .expect("exits after the flush time");
    assert!(exit.success(), "{exit:?}");
    assert!(std::fs::metadata(&spool).unwrap().len() > 0);

    receiver.release();
    receiver.set_default(Reply::Status(200));
    let second = Daemon::start(&config);
    // The first one reached the server before the stop (its answer never came): it comes again,
    // with the same id, then the other four, in order.
    let got = receiver.wait_for(6, Duration::from_secs(20));
    receiver.assert_no_more_than(6, Duration::from_millis(1000));
    let ns: Vec<&str> = got.iter().map(|r| r.query("n").unwrap()).collect();
    assert_eq!(ns, ["1", "1", "2", "3", "4", "5"]);
    assert_eq!(
        got[0].header("X-Event-Notify-Id"),
        got[1].header("X-Event-Notify-Id")
    );
    assert_eq!(num(&second.status(), "spool_replayed"), 5);
}
