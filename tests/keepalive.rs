//! Kept connections (issue 15 item 5): the delivery's TCP transport probes a pooled connection
//! with one `recv(MSG_PEEK | MSG_DONTWAIT)` when it takes it, and not when it gives it back. A
//! connection the server closed, or spoiled with bytes after its response, must still never be
//! used again, and a healthy one must be used again.

mod common;

use common::{Daemon, PATIENCE};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

/// What the server does after answering a request on its connection.
#[derive(Clone, Copy, Debug)]
enum After {
    Keep,
    Close,
    Garbage,
}

/// One request as the server saw it: which connection (1, 2, ...) and the target.
type Seen = (usize, String);

/// A keep-alive HTTP/1.1 server on loopback, one connection at a time, acting per request as
/// `script` says (in order; `Keep` past its end). Reports each request once its action is done.
fn server(script: Vec<After>) -> (u16, mpsc::Receiver<Seen>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut n = 0;
        for (conn, s) in l.incoming().enumerate() {
            let Ok(mut s) = s else { return };
            s.set_read_timeout(Some(PATIENCE)).unwrap();
            loop {
                let mut head = Vec::new();
                let mut b = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match s.read(&mut b) {
                        Ok(1) => head.push(b[0]),
                        _ => break,
                    }
                }
                if !head.ends_with(b"\r\n\r\n") {
                    break; // the daemon closed this connection
                }
                let text = String::from_utf8_lossy(&head).into_owned();
                let target = text.split(' ').nth(1).unwrap_or("").to_string();
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    .unwrap();
                let after = script.get(n).copied().unwrap_or(After::Keep);
                n += 1;
                match after {
                    After::Keep => {}
                    After::Close => drop(s.shutdown(std::net::Shutdown::Both)),
                    After::Garbage => s.write_all(b"XYZ").unwrap(),
                }
                // Let the close or the bytes reach the daemon's side before it is told.
                std::thread::sleep(Duration::from_millis(50));
                tx.send((conn + 1, target)).unwrap();
                if matches!(after, After::Close) {
                    break;
                }
            }
        }
    });
    (port, rx)
}

fn stat(status: &str, key: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in status:\n{status}"))
}

#[test]
fn a_pooled_connection_closed_or_spoiled_is_not_used_again_a_healthy_one_is() {
    let (port, seen) = server(vec![After::Close, After::Garbage, After::Keep, After::Keep]);
    let cfg = format!(
        r#"{{"events": {{"dnd_on": "127.0.0.1:{port}/k?n=$remote"}},
            "delivery": {{"backoff_initial_ms": 20, "backoff_max_ms": 50}}}}"#
    );
    let d = Daemon::start(&cfg);
    let mut got = Vec::new();
    for i in 1..=4 {
        d.emit_ok(&["dnd_on", &format!("remote={i}")]);
        got.push(seen.recv_timeout(PATIENCE).expect("request did not arrive"));
    }
    let conns: Vec<usize> = got.iter().map(|(c, _)| *c).collect();
    let targets: Vec<&str> = got.iter().map(|(_, t)| t.as_str()).collect();
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
    let r = common::Receiver::start_tls();
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
