//! What the loop-sender suites (loop_sender.rs, loop_tls.rs) share: one socket connection to the
//! daemon for many events, and the checks of what a receiver got (order, no duplicate, retries
//! folded) over any record that has a sequence number and a delivery id.

use super::*;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;

/// One socket connection to the daemon, for many events without a process each.
pub struct Wire(pub BufReader<UnixStream>);

impl Wire {
    pub fn to(d: &Daemon) -> Wire {
        let s = UnixStream::connect(d.socket_path()).expect("connect to the daemon");
        s.set_read_timeout(Some(PATIENCE)).expect("timeout");
        Wire(BufReader::new(s))
    }

    /// Sends `EN1 <event> <args>`; panics unless the daemon answers OK.
    pub fn send(&mut self, event: &str, args: &str) {
        let line = format!("EN1 {event} {args}\n");
        self.0.get_mut().write_all(line.as_bytes()).expect("write");
        let mut answer = String::new();
        self.0.read_line(&mut answer).expect("answer");
        assert!(answer.starts_with("OK"), "{line:?} answered {answer:?}");
    }

    /// Sends `EN1 <event> remote=<n>`; panics unless the daemon answers OK.
    pub fn emit(&mut self, event: &str, n: impl std::fmt::Display) {
        self.send(event, &format!("remote={n}"));
    }
}

/// A request as a receiver recorded it: the test's sequence number (the `n` query value) and
/// its `X-Event-Notify-Id`.
pub trait Arrival: std::fmt::Debug {
    fn n(&self) -> &str;
    fn id(&self) -> &str;
}

/// The sequence numbers in arrival order.
pub fn order<A: Arrival>(got: &[A]) -> Vec<String> {
    got.iter().map(|g| g.n().to_string()).collect()
}

pub fn seq(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| i.to_string()).collect()
}

/// Every id once, and one id per sequence number: no duplicate delivery.
pub fn assert_once_each<A: Arrival>(got: &[A]) {
    let mut ids: Vec<&str> = got.iter().map(|g| g.id()).collect();
    assert!(
        ids.iter().all(|i| !i.is_empty()),
        "a request without id: {got:#?}"
    );
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), got.len(), "an id arrived twice: {got:#?}");
}

/// Arrivals with repeats (retries) folded: each sequence number's first arrival, in order;
/// every repeat must carry the id of its first arrival and come right after it (a retry of the
/// notification in flight, before the next one is sent).
pub fn folded<A: Arrival>(got: &[A]) -> Vec<String> {
    let mut out: Vec<&A> = Vec::new();
    for g in got {
        match out.last() {
            Some(last) if last.n() == g.n() => {
                assert_eq!(last.id(), g.id(), "a repeat with another id: {got:#?}")
            }
            _ => {
                assert!(
                    !out.iter().any(|o| o.n() == g.n()),
                    "{} again after a later one: {got:#?}",
                    g.n()
                );
                out.push(g);
            }
        }
    }
    out.iter().map(|g| g.n().to_string()).collect()
}

/// Where `needle` first stands in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A request's head at the start of a raw receiver's buffer (its body may not all be there yet).
pub struct RawHead {
    /// Request line and header lines, as text.
    pub head: String,
    /// Where the body starts in the buffer, and its `Content-Length`.
    pub body_at: usize,
    pub body_len: usize,
}

impl RawHead {
    /// The head at the start of `buf`, once it is complete.
    pub fn parse(buf: &[u8]) -> Option<RawHead> {
        let end = find(buf, b"\r\n\r\n")?;
        let mut h = RawHead {
            head: String::from_utf8_lossy(&buf[..end]).into_owned(),
            body_at: end + 4,
            body_len: 0,
        };
        h.body_len = h
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        Some(h)
    }

    /// Where the request ends in the buffer.
    pub fn end(&self) -> usize {
        self.body_at + self.body_len
    }

    /// The first value of a header (name case-insensitive), trimmed.
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }

    /// The request target as it arrived.
    pub fn target(&self) -> String {
        self.head
            .lines()
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .unwrap_or("")
            .to_string()
    }

    /// The `n` query value (the test's sequence number), `?` without one.
    pub fn n(&self) -> String {
        self.target()
            .split(['?', '&'])
            .find_map(|p| p.strip_prefix("n="))
            .unwrap_or("?")
            .to_string()
    }
}
