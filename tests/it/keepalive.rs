//! Kept connections (issue 15 item 5): the delivery's TCP transport probes a pooled connection
//! with one `recv(MSG_PEEK | MSG_DONTWAIT)` when it takes it, and not when it gives it back. A
//! connection the server closed, or spoiled with bytes after its response, must still never be
//! used again, and a healthy one must be used again.

use crate::common;

use common::{stat, status_when, Daemon, Receiver, PATIENCE};
use std::time::Duration;

#[test]
fn a_pooled_connection_closed_or_spoiled_is_not_used_again_a_healthy_one_is() {
    let r = Receiver::start();
    let cfg = format!(
        r#"{{"events": {{"dnd_on": "{}"}},
            "delivery": {{"backoff_initial_ms": 20, "backoff_max_ms": 50}}}}"#,
        r.bare_url("/k?n=$remote")
    );
    let d = Daemon::start(&cfg);
    for i in 1..=4 {
        d.emit_ok(&["dnd_on", &format!("remote={i}")]);
        r.wait_for(i, PATIENCE);
        // Counted once the daemon has read the response: the connection is in its pool. Only
        // then is it spoiled, so that only the probe when it is taken again can see it.
        let s = status_when(&d, "delivered", i as u64);
        assert_eq!(stat(&s, "delivered"), i as u64, "{s}");
        match i {
            1 => r.close_connection(1),
            2 => r.write_unasked(2, b"XYZ"),
            _ => {}
        }
        // Let the close or the bytes reach the daemon's side before the next event.
        std::thread::sleep(Duration::from_millis(50));
    }
    let got = r.requests();
    let conns: Vec<usize> = got.iter().map(|q| q.connection).collect();
    let targets: Vec<&str> = got.iter().map(|q| q.target.as_str()).collect();
    assert_eq!(targets, ["/k?n=1", "/k?n=2", "/k?n=3", "/k?n=4"]);
    // 1 then closed by the server: 2 on a new connection; bytes after 2's response: 3 on a new
    // connection; 3 kept: 4 on the same one.
    assert_eq!(conns, [1, 2, 3, 3], "connection of each request");
    let s = d.status();
    assert_eq!(stat(&s, "delivered"), 4, "{s}");
    assert_eq!(
        stat(&s, "retried"),
        0,
        "no attempt went to a dead connection: {s}"
    );
    assert_eq!(stat(&s, "failed"), 0, "{s}");
}

/// The same transport under rustls: three notifications over HTTPS, one connection (one
/// handshake), each delivered at the first attempt.
#[test]
fn https_keeps_its_connection() {
    let r = Receiver::start_tls();
    let cfg = format!(
        r#"{{"events": {{"dnd_on": "{}"}}, "delivery": {{"ca_file": "{}"}}}}"#,
        r.url("/s?n=$remote").replace("127.0.0.1", "localhost"),
        r.ca_file().display()
    );
    let d = Daemon::start(&cfg);
    for i in 1..=3 {
        d.emit_ok(&["dnd_on", &format!("remote={i}")]);
        assert_eq!(
            r.wait_for(i, PATIENCE).len(),
            i,
            "request {i} did not arrive"
        );
    }
    let got = r.wait_for(3, PATIENCE);
    assert!(got.iter().all(|q| q.tls));
    assert_eq!(r.connections(), 1, "one TLS connection for the three");
    let s = d.status();
    assert_eq!(stat(&s, "delivered"), 3, "{s}");
    assert_eq!(stat(&s, "retried"), 0, "{s}");
}

/// A reload that changes `delivery.ca_file` closes the kept HTTPS connection: after it, a
/// receiver whose CA is no longer trusted is refused (`tls-error`), not reached on a session
/// the old CA file had trusted.
#[test]
fn a_reload_that_changes_the_ca_file_closes_kept_https_connections() {
    let r = Receiver::start_tls();
    let other = common::TestCa::new();
    let cfg = |ca: &std::path::Path| {
        format!(
            r#"{{"events": {{"dnd_on": "{}"}}, "delivery": {{"ca_file": "{}", "attempts": 1}}}}"#,
            r.url("/s?n=$remote"),
            ca.display()
        )
    };
    let mut d = Daemon::start(&cfg(r.ca_file()));
    d.emit_ok(&["dnd_on", "remote=1"]);
    assert_eq!(r.wait_for(1, PATIENCE).len(), 1);
    status_when(&d, "delivered", 1);
    d.write_config(&cfg(other.ca_file()));
    d.sighup();
    assert!(d.wait_log("config reloaded", PATIENCE), "{}", d.log());
    d.emit_ok(&["dnd_on", "remote=2"]);
    let s = status_when(&d, "failed", 1);
    assert_eq!(stat(&s, "delivered"), 1, "{s}");
    assert!(s.contains("tls-error"), "{s}");
    assert_eq!(
        r.count(),
        1,
        "reached on the old session: {:?}",
        r.requests()
    );
    let _ = d.wait_exit(Duration::ZERO);
}

/// The same with the attempt still in flight at the reload: it ends under the settings it began
/// with, and its connection is not kept for the next notification.
#[test]
fn a_connection_busy_at_a_reload_of_the_ca_file_is_not_kept() {
    let r = Receiver::builder()
        .tls()
        .replies([
            common::Reply::Status(200),
            common::Reply::Delayed(200, Duration::from_millis(600)),
        ])
        .start();
    let other = common::TestCa::new();
    let cfg = |ca: &std::path::Path| {
        format!(
            r#"{{"events": {{"dnd_on": "{}"}}, "delivery": {{"ca_file": "{}"}}}}"#,
            r.url("/s?n=$remote"),
            ca.display()
        )
    };
    let mut d = Daemon::start(&cfg(r.ca_file()));
    d.emit_ok(&["dnd_on", "remote=1"]);
    status_when(&d, "delivered", 1);
    d.emit_ok(&["dnd_on", "remote=2"]);
    assert_eq!(r.wait_for(2, PATIENCE).len(), 2);
    // The second is being answered (600 ms): reload now.
    d.write_config(&cfg(other.ca_file()));
    d.sighup();
    assert!(d.wait_log("config reloaded", PATIENCE), "{}", d.log());
    let s = status_when(&d, "delivered", 2);
    assert_eq!(stat(&s, "delivered"), 2, "{s}");
    d.emit_ok(&["dnd_on", "remote=3"]);
    let s = status_when(&d, "failed", 1);
    assert!(s.contains("tls-error"), "{s}");
    assert_eq!(
        r.count(),
        2,
        "reached on the old session: {:?}",
        r.requests()
    );
    let _ = d.wait_exit(Duration::ZERO);
}

/// A renewed CA written over the same `ca_file` path is read at the reload: the configuration's
/// text is the same, the trust is not.
#[test]
fn a_ca_file_rewritten_in_place_is_read_again_at_a_reload() {
    let r = Receiver::start_tls();
    let other = common::TestCa::new();
    let dir = common::TempDir::new("ca-in-place");
    let path = dir.write("ca.pem", std::fs::read(r.ca_file()).expect("CA"));
    let cfg = format!(
        r#"{{"events": {{"dnd_on": "{}"}}, "delivery": {{"ca_file": "{}"}}}}"#,
        r.url("/s?n=$remote"),
        path.display()
    );
    let mut d = Daemon::start(&cfg);
    d.emit_ok(&["dnd_on", "remote=1"]);
    status_when(&d, "delivered", 1);
    std::fs::write(&path, other.ca_pem()).expect("rewrite the CA file");
    d.sighup();
    assert!(d.wait_log("config reloaded", PATIENCE), "{}", d.log());
    d.emit_ok(&["dnd_on", "remote=2"]);
    let s = status_when(&d, "failed", 1);
    assert!(s.contains("tls-error"), "{s}");
    assert_eq!(
        r.count(),
        1,
        "still trusted after the reload: {:?}",
        r.requests()
    );
    let _ = d.wait_exit(Duration::ZERO);
}
