//! The loop sender's bounds over time (`src/daemon/deliver/direct.rs`): a kept connection is
//! not held forever. `tick` closes a connection idle for `LOOP_IDLE_MS` (30 s), giving back its
//! socket (and over TLS the session's buffers), even when nothing else is ever sent to that
//! destination; the check when a connection is reused again only covers the next request.

use crate::common;

use common::{stat, status_when, Daemon, RawHead, PATIENCE};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

/// `LOOP_IDLE_MS` of direct.rs.
const LOOP_IDLE: Duration = Duration::from_secs(30);

/// One notification to a raw receiver, answered at once with the connection kept; then
/// nothing. The daemon must close the idle connection itself ~30 s after the answer: not
/// before 29 s (the connection is kept for the next notification), and not much after.
#[test]
fn an_idle_loop_connection_is_closed_by_the_daemon_after_loop_idle_ms() {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    let d = Daemon::start(&format!(
        r#"{{"events": {{"dnd_on": "http://{addr}/idle?n=$remote"}}}}"#
    ));
    d.emit_ok(&["dnd_on", "remote=1"]);
    let (mut s, _) = l.accept().expect("accept");
    s.set_read_timeout(Some(PATIENCE)).expect("timeout");
    let mut buf = Vec::new();
    let mut b = [0u8; 4096];
    let head = loop {
        if let Some(h) = RawHead::parse(&buf) {
            if buf.len() >= h.end() {
                break h;
            }
        }
        match s.read(&mut b) {
            Ok(0) | Err(_) => panic!("no whole request: {:?}", String::from_utf8_lossy(&buf)),
            Ok(n) => buf.extend_from_slice(&b[..n]),
        }
    };
    assert_eq!(head.target(), "/idle?n=1");
    s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        .expect("answer");
    let answered = Instant::now();
    let st = status_when(&d, "delivered", 1);
    assert_eq!(stat(&st, "retried"), 0, "{st}");

    // Nothing more is sent: wait for the daemon's close (FIN), at most 36 s after the answer.
    let limit = LOOP_IDLE + Duration::from_secs(6);
    s.set_read_timeout(Some(limit)).expect("timeout");
    let got = s.read(&mut b);
    let idle = answered.elapsed();
    match got {
        Ok(0) => {}
        Ok(n) => panic!("{n} bytes on an idle connection after {idle:?}"),
        Err(e) => panic!("the daemon kept its idle connection open for {idle:?} ({e})"),
    }
    assert!(
        idle >= LOOP_IDLE - Duration::from_secs(1),
        "closed after {idle:?} idle, before LOOP_IDLE_MS"
    );
    // The daemon is still well, and a new notification goes on a new connection.
    d.emit_ok(&["dnd_on", "remote=2"]);
    let (mut s2, _) = l.accept().expect("a new connection");
    s2.set_read_timeout(Some(PATIENCE)).expect("timeout");
    let mut buf = Vec::new();
    while RawHead::parse(&buf).is_none_or(|h| buf.len() < h.end()) {
        match s2.read(&mut b) {
            Ok(0) | Err(_) => panic!("no second request: {:?}", String::from_utf8_lossy(&buf)),
            Ok(n) => buf.extend_from_slice(&b[..n]),
        }
    }
    s2.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        .expect("answer");
    let st = status_when(&d, "delivered", 2);
    assert_eq!(stat(&st, "failed"), 0, "{st}");
}
