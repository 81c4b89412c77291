//! The loop sender (`src/daemon/deliver/direct.rs`) against bad luck and hostile receivers:
//! the real daemon process, real TCP over loopback, receivers written here with `std::net` that
//! answer byte by byte, chunked, with interim answers, oversized, as garbage, close or reset
//! the connection at the worst moment, never answer or never accept, or are killed.
//!
//! Every notification carries its delivery id (`X-Event-Notify-Id`) and a sequence number in
//! its URL, so each test checks the promise of PRODUCT.md section 5 and docs/RECEIVER.md:
//! every notification arrives, in order per destination, and more than once only when a retry
//! was really needed (the same id again).

use crate::common;

use common::{
    assert_once_each, bin, folded, order, seq, stat, status_when, Arrival, Daemon, RawHead, Wire,
    PATIENCE,
};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// A raw receiver: the test decides every byte of every answer

/// One request as the raw receiver read it.
#[derive(Clone, Debug)]
struct Got {
    target: String,
    /// `X-Event-Notify-Id`.
    id: String,
    /// The `n` query value (the test's sequence number).
    n: String,
    /// 1 for the first connection accepted, and so on.
    conn: usize,
    at: Instant,
    /// The head as it arrived (request line and header lines), and the body.
    head: String,
    body: Vec<u8>,
}

impl Arrival for Got {
    fn n(&self) -> &str {
        &self.n
    }
    fn id(&self) -> &str {
        &self.id
    }
}

#[derive(Default)]
struct Seen {
    got: Vec<Got>,
    conns: usize,
    stop: bool,
}

#[derive(Clone, Default)]
struct Book(Arc<(Mutex<Seen>, Condvar)>);

impl Book {
    fn lock(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.0 .0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One accepted connection, as the receiver's handler sees it.
struct Peer {
    s: TcpStream,
    buf: Vec<u8>,
    conn: usize,
    book: Book,
}

impl Peer {
    /// Reads one request (head and `Content-Length` body) and records it. `None` when the
    /// client closed the connection, or sent nothing for 10 s.
    fn request(&mut self) -> Option<Got> {
        let _ = self.s.set_read_timeout(Some(PATIENCE));
        loop {
            if let Some(h) = RawHead::parse(&self.buf) {
                while self.buf.len() < h.end() {
                    if !self.fill() {
                        return None;
                    }
                }
                let got = Got {
                    id: h.header("x-event-notify-id").unwrap_or_default(),
                    target: h.target(),
                    n: h.n(),
                    conn: self.conn,
                    at: Instant::now(),
                    head: h.head.clone(),
                    body: self.buf[h.body_at..h.end()].to_vec(),
                };
                self.buf.drain(..h.end());
                self.book.lock().got.push(got.clone());
                self.book.0 .1.notify_all();
                return Some(got);
            }
            if !self.fill() {
                return None;
            }
        }
    }

    fn fill(&mut self) -> bool {
        let mut b = [0u8; 4096];
        match self.s.read(&mut b) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&b[..n]);
                true
            }
        }
    }

    /// Writes `b` at once (errors ignored: the client may be gone, which the test checks).
    fn send(&mut self, b: &[u8]) {
        let _ = self.s.write_all(b);
        let _ = self.s.flush();
    }

    /// Writes `b` and the end of the stream (FIN) in one go: corked (TCP_CORK), so the answer
    /// and the close leave together and the client can never see one without the other.
    fn send_and_close(&mut self, b: &[u8]) {
        use std::os::fd::AsRawFd;
        let on: nix::libc::c_int = 1;
        // SAFETY: a valid socket, an int option of the right size.
        let r = unsafe {
            nix::libc::setsockopt(
                self.s.as_raw_fd(),
                nix::libc::IPPROTO_TCP,
                nix::libc::TCP_CORK,
                (&on as *const nix::libc::c_int).cast(),
                std::mem::size_of::<nix::libc::c_int>() as nix::libc::socklen_t,
            )
        };
        assert_eq!(r, 0, "TCP_CORK");
        self.send(b);
        let _ = self.s.shutdown(Shutdown::Write);
    }

    /// Writes `b` one byte at a time with `pause` between the bytes.
    fn dribble(&mut self, b: &[u8], pause: Duration) {
        for byte in b {
            if self.s.write_all(&[*byte]).is_err() {
                return;
            }
            std::thread::sleep(pause);
        }
    }

    /// Makes the close (when the handler returns) a reset: SO_LINGER 0, the client gets RST.
    fn reset_on_close(&mut self) {
        use nix::sys::socket::{setsockopt, sockopt::Linger};
        let l = nix::libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        setsockopt(&self.s, Linger, &l).expect("SO_LINGER");
    }

    /// Holds the connection without answering until the receiver is dropped (or 30 s pass).
    fn hang(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen = self.book.lock();
        while !seen.stop && Instant::now() < deadline {
            seen = self
                .book
                .0
                 .1
                .wait_timeout(seen, Duration::from_millis(200))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

type Handler = Arc<dyn Fn(&mut Peer) + Send + Sync>;

/// A receiver on `127.0.0.1:0`: each accepted connection runs `handler` on its own thread;
/// the connection is closed (FIN) when the handler returns.
struct Raw {
    addr: SocketAddr,
    book: Book,
}

impl Raw {
    /// A healthy receiver: `200` to every request, connections kept.
    fn healthy() -> Raw {
        Raw::start(|p| {
            while p.request().is_some() {
                p.send(&ok(200));
            }
        })
    }

    fn start(handler: impl Fn(&mut Peer) + Send + Sync + 'static) -> Raw {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        Raw::on(l, Arc::new(handler))
    }

    fn on(l: TcpListener, handler: Handler) -> Raw {
        let addr = l.local_addr().expect("addr");
        let book = Book::default();
        let b = book.clone();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(s) = s else { continue };
                let conn = {
                    let mut seen = b.lock();
                    if seen.stop {
                        return;
                    }
                    seen.conns += 1;
                    seen.conns
                };
                let _ = s.set_nodelay(true);
                let (b, h) = (b.clone(), Arc::clone(&handler));
                std::thread::spawn(move || {
                    let mut p = Peer {
                        s,
                        buf: Vec::new(),
                        conn,
                        book: b,
                    };
                    h(&mut p);
                });
            }
        });
        Raw { addr, book }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn got(&self) -> Vec<Got> {
        self.book.lock().got.clone()
    }

    fn conns(&self) -> usize {
        self.book.lock().conns
    }

    /// Waits for `n` requests; panics with what arrived after `PATIENCE`.
    fn wait_for(&self, n: usize) -> Vec<Got> {
        self.wait_within(n, PATIENCE)
            .unwrap_or_else(|got| panic!("expected {n} requests, got {}: {got:#?}", got.len()))
    }

    fn wait_within(&self, n: usize, limit: Duration) -> Result<Vec<Got>, Vec<Got>> {
        let deadline = Instant::now() + limit;
        let mut seen = self.book.lock();
        loop {
            if seen.got.len() >= n {
                return Ok(seen.got.clone());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(seen.got.clone());
            }
            seen = self
                .book
                .0
                 .1
                .wait_timeout(seen, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        self.book.lock().stop = true;
        self.book.0 .1.notify_all();
        // Wakes the accept loop so it sees `stop`.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

/// `HTTP/1.1 <status>` with an empty body (`Content-Length: 0`), connection kept.
fn ok(status: u16) -> Vec<u8> {
    format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n").into_bytes()
}

// ---------------------------------------------------------------------------------------------
// The daemon side

/// A config with `dnd_on` (and `dnd_off`, if given) sent to these URLs with `?n=$remote`, and
/// these `delivery` settings (JSON members, without braces).
fn config(on: &str, off: Option<&str>, delivery: &str) -> String {
    let off = off
        .map(|u| format!(r#", "dnd_off": "{u}?n=$remote""#))
        .unwrap_or_default();
    format!(r#"{{"events": {{"dnd_on": "{on}?n=$remote"{off}}}, "delivery": {{{delivery}}}}}"#)
}

/// Quick retries, so a test that needs one does not wait the default half second.
const QUICK: &str = r#""backoff_initial_ms": 20, "backoff_max_ms": 60"#;

// ---------------------------------------------------------------------------------------------
// Answers in odd shapes, on one kept connection

/// Byte-by-byte answers, head and body in separate writes, chunked bodies with extensions and
/// trailers, a 100 Continue (and a 103) before the answer, a 204, a 304: each is a complete
/// answer whose end the sender sees, so all eight go over ONE connection, delivered at the
/// first attempt, in order.
#[test]
fn odd_but_valid_answers_are_delivered_on_one_kept_connection() {
    let shapes: Vec<Vec<Vec<u8>>> = vec![
        // Split into single bytes (dribbled below).
        vec![b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello".to_vec()],
        // Head, then body, in separate writes.
        vec![
            b"HTTP/1.1 201 Created\r\nContent-Length: 11\r\n\r\n".to_vec(),
            b"hello ".to_vec(),
            b"world".to_vec(),
        ],
        // Chunked, with chunk extensions and trailers, each line in its own write.
        vec![
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(),
            b"5;name=value\r\n".to_vec(),
            b"hello\r\n".to_vec(),
            b"A ; x=\"y\"\r\n0123456789\r".to_vec(),
            b"\n0\r\n".to_vec(),
            b"X-Trailer: 1\r\nX-Other: two\r\n".to_vec(),
            b"\r\n".to_vec(),
        ],
        // Interim answers first.
        vec![
            b"HTTP/1.1 100 Continue\r\n\r\n".to_vec(),
            b"HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\nok".to_vec(),
        ],
        // No body by definition, whatever the length says.
        vec![b"HTTP/1.1 204 No Content\r\n\r\n".to_vec()],
        // Header names in odd case, a length in its own write, a keep-alive token list.
        vec![
            b"HTTP/1.1 200 OK\r\ncOnTeNt-LeNgTh:".to_vec(),
            b" 3\r\nConnection: keep-alive, foo\r\n\r\n".to_vec(),
            b"abc".to_vec(),
        ],
        // Chunked with a big chunk split across writes.
        vec![
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000\r\n".to_vec(),
            vec![b'x'; 2000],
            vec![b'y'; 2096],
            b"\r\n0\r\n\r\n".to_vec(),
        ],
        vec![b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec()],
    ];
    let count = shapes.len();
    let r = Raw::start(move |p| {
        for (k, parts) in shapes.iter().enumerate() {
            if p.request().is_none() {
                return;
            }
            for part in parts {
                if k == 0 {
                    p.dribble(part, Duration::from_millis(3));
                } else {
                    p.send(part);
                    std::thread::sleep(Duration::from_millis(30));
                }
            }
        }
        // Then plain answers for anything more.
        while p.request().is_some() {
            p.send(&ok(200));
        }
    });
    let d = Daemon::start(&config(&r.url("/odd"), None, QUICK));
    let mut w = Wire::to(&d);
    for i in 0..count {
        w.emit("dnd_on", i);
    }
    let got = r.wait_for(count);
    let s = status_when(&d, "delivered", count as u64);
    let got_all = r.got();
    assert_eq!(order(&got_all), seq(0..count), "{got:#?}");
    assert_once_each(&got_all);
    assert_eq!(stat(&s, "delivered"), count as u64, "{s}");
    assert_eq!(stat(&s, "retried"), 0, "{s}");
    assert_eq!(stat(&s, "failed"), 0, "{s}");
    assert_eq!(
        r.conns(),
        1,
        "every answer's end was seen: one connection, {got_all:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Answers the sender must not trust with the connection

/// A body beyond RESPONSE_BODY_CAP (16 KiB) still counts (the status is the answer) but the
/// connection is not read to its end, so not reused; headers beyond RESPONSE_HEADER_CAP (8 KiB)
/// and garbage are no answer: retried (the same id), then delivered once.
#[test]
fn oversized_and_garbage_answers() {
    let r = Raw::start(|p| {
        while let Some(g) = p.request() {
            match g.n.as_str() {
                // 64 KiB announced and sent: more than the cap.
                "big" => {
                    p.send(b"HTTP/1.1 200 OK\r\nContent-Length: 65536\r\n\r\n");
                    p.send(&vec![b'b'; 65536]);
                }
                // 9 KiB of headers, first attempt only.
                "fat" if p.book.lock().got.iter().filter(|g| g.n == "fat").count() == 1 => {
                    let mut a = b"HTTP/1.1 200 OK\r\n".to_vec();
                    for i in 0..90 {
                        a.extend_from_slice(
                            format!("X-Pad-{i:03}: {}\r\n", "p".repeat(90)).as_bytes(),
                        );
                    }
                    a.extend_from_slice(b"Content-Length: 0\r\n\r\n");
                    p.send(&a);
                }
                "junk" if p.book.lock().got.iter().filter(|g| g.n == "junk").count() == 1 => {
                    p.send(b"SSH-2.0-OpenSSH_9.2\r\n\r\n");
                }
                "chunkjunk" => {
                    // A broken chunk size after a good head: the 200 stands, the connection goes.
                    p.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
                }
                _ => p.send(&ok(200)),
            }
        }
    });
    let d = Daemon::start(&config(&r.url("/cap"), None, QUICK));
    let mut w = Wire::to(&d);
    for n in ["big", "after-big", "fat", "junk", "chunkjunk", "last"] {
        w.emit("dnd_on", n);
    }
    r.wait_for(8);
    let s = status_when(&d, "delivered", 6);
    let got = r.got();
    assert_eq!(
        order(&got),
        [
            "big",
            "after-big",
            "fat",
            "fat",
            "junk",
            "junk",
            "chunkjunk",
            "last"
        ],
        "{got:#?}"
    );
    assert_eq!(
        folded(&got),
        ["big", "after-big", "fat", "junk", "chunkjunk", "last"]
    );
    assert_eq!(stat(&s, "delivered"), 6, "{s}");
    assert_eq!(stat(&s, "retried"), 2, "{s}");
    assert_eq!(stat(&s, "failed"), 0, "{s}");
    // After the capped body, a new connection; after the bad head and garbage (each closes the
    // server's side? no: the sender closes), new ones too; after the broken chunk, a new one.
    let conn_of = |n: &str| {
        got.iter()
            .filter(|g| g.n == n)
            .map(|g| g.conn)
            .collect::<Vec<_>>()
    };
    assert_ne!(
        conn_of("big"),
        conn_of("after-big"),
        "reused after a body not read to its end"
    );
    assert_ne!(
        conn_of("chunkjunk"),
        conn_of("last"),
        "reused after a broken chunked body"
    );
    let fat = conn_of("fat");
    assert_ne!(fat[0], fat[1], "reused after a head over the cap");
}

/// Answers that end the connection: HTTP/1.0 without keep-alive, `Connection: close`, and a
/// body delimited by the close (no length). Each is delivered at its first attempt; the next
/// notification goes on a new connection.
#[test]
fn answers_that_end_the_connection_are_delivered_and_not_reused() {
    let r = Raw::start(|p| {
        let Some(g) = p.request() else { return };
        match g.n.as_str() {
            "0" => p.send(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"),
            "1" => p.send(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"),
            "2" => {
                p.send(b"HTTP/1.1 200 OK\r\n\r\nthe body ends ");
                std::thread::sleep(Duration::from_millis(150));
                p.send(b"when the server closes");
            }
            "3" => {
                // Close-delimited, HTTP/1.0, with a keep-alive the server does not mean.
                p.send(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\nbody");
            }
            _ => p.send(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"),
        }
        let _ = p.s.shutdown(Shutdown::Write);
        // Whatever comes now on this connection is a request the server will not answer.
        if p.request().is_some() {
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let d = Daemon::start(&config(&r.url("/end"), None, QUICK));
    let mut w = Wire::to(&d);
    for i in 0..5 {
        w.emit("dnd_on", i);
    }
    r.wait_for(5);
    let s = status_when(&d, "delivered", 5);
    let got = r.got();
    assert_eq!(order(&got), seq(0..5), "{got:#?}");
    assert_once_each(&got);
    assert_eq!(stat(&s, "delivered"), 5, "{s}");
    assert_eq!(stat(&s, "retried"), 0, "{s}");
    assert_eq!(r.conns(), 5, "{got:#?}");
}

// ---------------------------------------------------------------------------------------------
// Kept connections the server closes

/// THE RACE: the server answers (no `Connection: close`) and closes the connection at once,
/// while the next notification to it is already waiting. The workers' path (ureq's pool)
/// probes a kept connection before it reuses it (`is_open`: recv MSG_PEEK|MSG_DONTWAIT, in
/// tcp.rs) and so sends the next one on a new connection, first attempt. The loop sender must
/// do as well: no retry, no failure, each id once, in order.
#[test]
fn server_closing_right_after_each_answer_costs_no_retry() {
    closing_right_after_each_answer("/race");
}

/// The same server, with a URL the loop sender leaves to the workers (a `{` in the target,
/// which it does not write byte for byte as ureq would): the control that shows the promise is
/// kept on the workers' path.
#[test]
fn server_closing_right_after_each_answer_costs_no_retry_on_the_workers_path() {
    closing_right_after_each_answer("/race{w}");
}

fn closing_right_after_each_answer(path: &str) {
    let r = Raw::start(|p| {
        if p.request().is_some() {
            // A little late, so the next notification is queued behind this one.
            std::thread::sleep(Duration::from_millis(100));
            // The answer (keep-alive by default) and the close arrive together: before the
            // sender can use the connection again, it could know that it is closed.
            p.send_and_close(&ok(200));
        }
    });
    // A long back-off: a needless retry shows as a delay too.
    let d = Daemon::start(&config(
        &r.url(path),
        None,
        r#""backoff_initial_ms": 2000, "backoff_max_ms": 2000"#,
    ));
    let mut w = Wire::to(&d);
    let t0 = Instant::now();
    for i in 0..6 {
        w.emit("dnd_on", i);
    }
    r.wait_for(6);
    let s = status_when(&d, "delivered", 6);
    let took = t0.elapsed();
    let got = r.got();
    assert_eq!(order(&got), seq(0..6), "{got:#?}");
    assert!(
        got.iter().all(|g| g.target.starts_with("/race")),
        "{got:#?}"
    );
    assert_once_each(&got);
    assert_eq!(stat(&s, "delivered"), 6, "{s}");
    assert_eq!(
        stat(&s, "retried"),
        0,
        "a kept connection the server had closed was used without a look: {s}\nlog:\n{}",
        d.log()
    );
    assert!(took < Duration::from_secs(6), "took {took:?}");
}

/// The server closes the kept connection some time after answering (an idle timeout of its
/// own): the next notification goes on a new connection, at its first attempt, once.
#[test]
fn server_closing_an_idle_kept_connection_later_loses_nothing() {
    let r = Raw::start(|p| {
        while p.request().is_some() {
            p.send(&ok(200));
            // An idle timeout of 150 ms: then close.
            let _ = p.s.set_read_timeout(Some(Duration::from_millis(150)));
            let mut b = [0u8; 1];
            match p.s.peek(&mut b) {
                Ok(n) if n > 0 => continue,
                _ => return,
            }
        }
    });
    let d = Daemon::start(&config(&r.url("/idle"), None, QUICK));
    let mut w = Wire::to(&d);
    for i in 0..4 {
        w.emit("dnd_on", i);
        r.wait_for(i + 1);
        status_when(&d, "delivered", i as u64 + 1);
        // Longer than the server's idle time: each one finds its connection closed.
        std::thread::sleep(Duration::from_millis(400));
    }
    let s = d.status();
    let got = r.got();
    assert_clean(&got, &s, 4, r.conns(), 4);
}

// ---------------------------------------------------------------------------------------------
// Silence, refusal, resets

/// A receiver that accepts and never answers: the attempt ends at `timeout_ms` (not before,
/// not much after), is retried with the same id, and the next notification waits its turn.
#[test]
fn a_silent_receiver_times_out_at_timeout_ms_and_is_retried() {
    let r = Raw::start(|p| {
        while p.request().is_some() {
            if p.book.lock().got.len() == 1 {
                p.hang();
                return;
            }
            p.send(&ok(200));
        }
    });
    let d = Daemon::start(&config(
        &r.url("/quiet"),
        None,
        &format!(r#""timeout_ms": 800, {QUICK}"#),
    ));
    let mut w = Wire::to(&d);
    w.emit("dnd_on", 0);
    w.emit("dnd_on", 1);
    let got = r.wait_for(3);
    let s = status_when(&d, "delivered", 2);
    assert_eq!(order(&got), ["0", "0", "1"], "{got:#?}");
    assert_eq!(folded(&got), ["0", "1"]);
    let gap = got[1].at.duration_since(got[0].at);
    assert!(
        gap >= Duration::from_millis(750) && gap < Duration::from_millis(3000),
        "the retry came {gap:?} after the silent attempt (timeout_ms 800)"
    );
    assert_eq!(stat(&s, "retried"), 1, "{s}");
    assert_eq!(stat(&s, "delivered"), 2, "{s}");
}

/// A listener whose backlog is full: the SYN is dropped, the connect never completes. The
/// attempt fails at `connect_timeout_ms` and is retried; when the receiver accepts again,
/// everything arrives once, in order. Meanwhile another destination is not delayed.
#[test]
fn a_receiver_that_never_accepts_times_out_the_connect() {
    use nix::sys::socket::SockaddrIn;
    use nix::sys::socket::{bind, listen, socket, AddressFamily, Backlog, SockFlag, SockType};
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .expect("socket");
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrIn::new(127, 0, 0, 1, 0),
    )
    .expect("bind");
    listen(&fd, Backlog::new(0).expect("backlog")).expect("listen");
    let l = TcpListener::from(fd);
    let addr = l.local_addr().expect("addr");
    // Fill the accept queue: connections nobody accepts, until one does not complete.
    let mut fillers = Vec::new();
    let full = loop {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(s) => fillers.push(s),
            Err(_) => break true,
        }
        if fillers.len() > 16 {
            break false;
        }
    };
    assert!(
        full,
        "the backlog never filled: the test would prove nothing"
    );
    let fine = Raw::healthy();
    let d = Daemon::start(&config(
        &format!("http://{addr}/full"),
        Some(&fine.url("/fine")),
        &format!(r#""connect_timeout_ms": 500, "timeout_ms": 2000, {QUICK}"#),
    ));
    let mut w = Wire::to(&d);
    w.emit("dnd_on", 0);
    w.emit("dnd_on", 1);
    // The other destination is served while the connect hangs.
    let t0 = Instant::now();
    for i in 0..3 {
        w.emit("dnd_off", i);
    }
    fine.wait_for(3);
    let fine_took = t0.elapsed();
    assert!(
        fine_took < Duration::from_millis(1500),
        "healthy destination took {fine_took:?}"
    );
    // Two connect timeouts at least.
    let s = {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let s = d.status();
            if stat(&s, "retried") >= 2 || Instant::now() > deadline {
                break s;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    assert!(stat(&s, "retried") >= 2, "{s}");
    assert_eq!(stat(&s, "failed"), 0, "{s}");
    // Now the receiver accepts (the fillers first, then the daemon's).
    drop(fillers);
    let r = Raw::on(
        l,
        Arc::new(|p: &mut Peer| {
            while p.request().is_some() {
                p.send(&ok(200));
            }
        }),
    );
    let got = r.wait_for(2);
    let s = status_when(&d, "delivered", 5);
    assert_eq!(order(&got), ["0", "1"], "{got:#?}");
    assert_once_each(&got);
    assert_eq!(stat(&s, "delivered"), 5, "{s}");
}

/// Refused connections (nobody listens), then a reset (SO_LINGER 0) before the head, and one
/// after the head in the middle of the body. Refused and reset-before-head are retried; a reset
/// after the head keeps the head's status (as on the workers' path: the answer was given).
#[test]
fn refused_and_reset_connections() {
    // A port nobody listens on: bind, note, close.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let r = Raw::start(|p| {
        while let Some(g) = p.request() {
            let tries = p.book.lock().got.iter().filter(|x| x.n == g.n).count();
            match (g.n.as_str(), tries) {
                ("0", 1) => {
                    p.send(b"HTTP/1.1 200 O");
                    std::thread::sleep(Duration::from_millis(100));
                    // Take the peer out of the closure to reset it.
                    p.reset_on_close();
                    return;
                }
                ("1", 1) => {
                    p.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhalf a bo");
                    std::thread::sleep(Duration::from_millis(150));
                    p.reset_on_close();
                    return;
                }
                _ => p.send(&ok(200)),
            }
        }
    });
    let d = Daemon::start(&config(
        &format!("http://127.0.0.1:{port}/refused"),
        Some(&r.url("/reset")),
        QUICK,
    ));
    let mut w = Wire::to(&d);
    w.emit("dnd_on", "x");
    for i in 0..3 {
        w.emit("dnd_off", i);
    }
    let got = r.wait_for(4);
    let s = status_when(&d, "delivered", 3);
    assert_eq!(order(&got), ["0", "0", "1", "2"], "{got:#?}");
    assert_eq!(folded(&got), ["0", "1", "2"]);
    assert_eq!(stat(&s, "delivered"), 3, "{s}");
    // The refused destination is retried, never delivered, never failed.
    let deadline = Instant::now() + PATIENCE;
    let s = loop {
        let s = d.status();
        if stat(&s, "retried") >= 4 || Instant::now() > deadline {
            break s;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(stat(&s, "retried") >= 4, "refused must be retried: {s}");
    assert_eq!(stat(&s, "failed"), 0, "{s}");
    assert_eq!(stat(&s, "pending"), 1, "{s}");
}

// ---------------------------------------------------------------------------------------------
// Statuses: redirects, Retry-After, 4xx

/// A 302 dribbled with a chunked body is failed, not retried, its Location in `status` without
/// the credentials; a 503 with `Retry-After: 1` waits at least a second (with a 20 ms back-off);
/// a 404 is failed and not retried; the next one on the same destination still goes out.
#[test]
fn redirect_retry_after_and_4xx() {
    let r = Raw::start(|p| {
        while let Some(g) = p.request() {
            let tries = p.book.lock().got.iter().filter(|x| x.n == g.n).count();
            match (g.n.as_str(), tries) {
                ("moved", _) => p.dribble(
                    b"HTTP/1.1 302 Found\r\nLocation: http://user:Pw0rdX@crm.example/new?k=1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nmove\r\n0\r\n\r\n",
                    Duration::from_millis(1),
                ),
                ("busy", 1) => p.send(b"HTTP/1.1 503 Busy\r\nRetry-After: 1\r\nContent-Length: 4\r\n\r\nbusy"),
                ("slow", 1) => p.send(b"HTTP/1.1 429 Slow\r\nretry-after:  1 \r\nContent-Length: 0\r\n\r\n"),
                ("gone", _) => p.send(&ok(404)),
                _ => p.send(&ok(200)),
            }
        }
    });
    // The redirect on its own event (`status` shows an event's last result: a later delivery
    // of the same event clears it), to the same destination (one order).
    let d = Daemon::start(&config(
        &r.url("/st"),
        Some(&r.url("/st")),
        r#""backoff_initial_ms": 20, "backoff_max_ms": 5000"#,
    ));
    let mut w = Wire::to(&d);
    w.emit("dnd_off", "moved");
    for n in ["busy", "slow", "gone", "fine"] {
        w.emit("dnd_on", n);
    }
    let got = r.wait_for(7);
    let s = status_when(&d, "delivered", 3);
    assert_eq!(
        order(&got),
        ["moved", "busy", "busy", "slow", "slow", "gone", "fine"],
        "{got:#?}"
    );
    assert_eq!(folded(&got), ["moved", "busy", "slow", "gone", "fine"]);
    for n in ["busy", "slow"] {
        let at: Vec<Instant> = got.iter().filter(|g| g.n == n).map(|g| g.at).collect();
        let gap = at[1].duration_since(at[0]);
        assert!(
            gap >= Duration::from_millis(950),
            "{n}: Retry-After 1 s, retried after {gap:?}"
        );
    }
    assert_eq!(stat(&s, "delivered"), 3, "{s}");
    assert_eq!(stat(&s, "failed"), 2, "{s}");
    assert_eq!(stat(&s, "retried"), 2, "{s}");
    assert!(
        s.contains("redirect dnd_off 302 http://crm.example/new?k=1"),
        "{s}"
    );
    assert!(
        !s.contains("Pw0rdX") && !d.log().contains("Pw0rdX"),
        "{s}\n{}",
        d.log()
    );
    r.wait_within(8, Duration::from_millis(300))
        .expect_err("nothing more may be sent");
}

// ---------------------------------------------------------------------------------------------
// Many destinations

/// Twelve plain destinations (more than LOOP_CONNS = 8): six never answer, six are healthy and
/// get 5 notifications each. Every healthy one gets everything, in order, once, promptly: the
/// hanging ones hold connections (some the loop's, some the workers') and delay nobody else.
#[test]
fn more_destinations_than_loop_connections_with_some_hanging() {
    let hang: Vec<Raw> = (0..6)
        .map(|_| {
            Raw::start(|p| {
                if p.request().is_some() {
                    p.hang();
                }
            })
        })
        .collect();
    let fine: Vec<Raw> = (0..6).map(|_| Raw::healthy()).collect();
    // One event, the port in a variable: `$remote` is "PORT-SEQ"... the port must be a number,
    // so the port comes as `$remote` and the sequence number as `$display_remote`.
    let cfg = format!(
        r#"{{"events": {{"dnd_on": "http://127.0.0.1:$remote/m?n=$display_remote"}},
            "delivery": {{"connect_timeout_ms": 1000, "timeout_ms": 4000, {QUICK}}}}}"#
    );
    let d = Daemon::start(&cfg);
    let mut w = Wire::to(&d);
    let send = |w: &mut Wire, port: u16, n: usize| {
        let line = format!("EN1 dnd_on remote={port} display_remote={n}\n");
        w.0.get_mut().write_all(line.as_bytes()).expect("write");
        let mut answer = String::new();
        w.0.read_line(&mut answer).expect("answer");
        assert!(answer.starts_with("OK"), "{line:?}: {answer:?}");
    };
    // The hanging ones first: they take the loop's connections before the healthy ones come.
    for h in &hang {
        for n in 0..2 {
            send(&mut w, h.addr.port(), n);
        }
    }
    for h in &hang {
        h.wait_for(1);
    }
    let t0 = Instant::now();
    for n in 0..5 {
        for f in &fine {
            send(&mut w, f.addr.port(), n);
        }
    }
    for f in &fine {
        let got = f.wait_for(5);
        assert_eq!(order(&got), seq(0..5), "{got:#?}");
        assert_once_each(&got);
    }
    let took = t0.elapsed();
    assert!(
        took < Duration::from_millis(3000),
        "30 notifications to healthy destinations took {took:?} beside hanging ones"
    );
    let s = status_when(&d, "delivered", 30);
    assert_eq!(stat(&s, "delivered"), 30, "{s}");
    for h in &hang {
        assert_eq!(order(&h.got())[0], "0");
        assert!(
            h.got().iter().all(|g| g.n == "0"),
            "order: 1 before 0 was delivered"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// A receiver process killed, the daemon reloaded or stopped mid-attempt

/// `event-notify listen` as the receiver process, on a fixed port; its stdout has one
/// `METHOD TARGET` line per request.
struct Listen {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Listen {
    fn start(port: u16) -> Listen {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let mut child = Command::new(bin())
                .args(["listen", "--bind", &format!("127.0.0.1:{port}")])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("start listen");
            let out = child.stdout.take().expect("stdout");
            let lines = Arc::new(Mutex::new(Vec::new()));
            let l2 = Arc::clone(&lines);
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if let Some(t) = line.strip_prefix("GET ") {
                        l2.lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(t.to_string());
                    }
                }
            });
            // Up when it accepts a connection.
            let up = Instant::now() + Duration::from_secs(3);
            while Instant::now() < up {
                if let Ok(s) = TcpStream::connect(("127.0.0.1", port)) {
                    drop(s);
                    return Listen { child, lines };
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
            assert!(Instant::now() < deadline, "listen never came up on {port}");
        }
    }

    fn targets(&self) -> Vec<String> {
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn kill9(mut self) -> Vec<String> {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
        std::thread::sleep(Duration::from_millis(50));
        self.targets()
    }
}

impl Drop for Listen {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A stream of 30 notifications; the receiver process is killed (SIGKILL) in the middle and
/// started again on the same port. Every one arrives, in order; a repeat only of one that was
/// in flight at the kill (its id, right after itself).
#[test]
fn receiver_killed_mid_stream_loses_nothing() {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let cfg = format!(
        r#"{{"events": {{"dnd_on": "http://127.0.0.1:{port}/k?n=$remote&id=$delivery_id"}},
            "delivery": {{"timeout_ms": 1500, {QUICK}}}}}"#
    );
    let first = Listen::start(port);
    let d = Daemon::start(&cfg);
    let pump = std::thread::spawn({
        let sock = d.socket_path().to_path_buf();
        move || {
            let s = UnixStream::connect(sock).expect("connect");
            s.set_read_timeout(Some(PATIENCE)).expect("timeout");
            let mut w = Wire(BufReader::new(s));
            for i in 0..30 {
                w.emit("dnd_on", i);
                std::thread::sleep(Duration::from_millis(15));
            }
        }
    });
    let deadline = Instant::now() + PATIENCE;
    while first.targets().len() < 10 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let before = first.kill9();
    assert!(before.len() >= 10, "{before:?}");
    std::thread::sleep(Duration::from_millis(200));
    let second = Listen::start(port);
    pump.join().expect("pump");
    let s = status_when(&d, "delivered", 30);
    let after = second.targets();
    let all: Vec<Got> = before
        .iter()
        .chain(after.iter())
        .map(|t| {
            let q = |k: &str| {
                t.split(['?', '&'])
                    .find_map(|p| p.strip_prefix(&format!("{k}=")[..]).map(str::to_string))
                    .unwrap_or_default()
            };
            Got {
                target: t.clone(),
                id: q("id"),
                n: q("n"),
                conn: 0,
                at: Instant::now(),
                head: String::new(),
                body: Vec::new(),
            }
        })
        .collect();
    assert_eq!(folded(&all), seq(0..30), "{all:#?}");
    assert!(
        all.len() <= 31,
        "more than the one in flight repeated: {all:#?}"
    );
    assert_eq!(stat(&s, "delivered"), 30, "{s}");
}

/// SIGHUP with shorter timeouts while an attempt hangs: that attempt keeps the timeout it was
/// started with (as a worker's ureq agent would), the retry uses the new one; nothing is lost,
/// the order holds.
#[test]
fn reload_changing_timeouts_mid_attempt() {
    let r = Raw::start(|p| {
        while p.request().is_some() {
            let k = p.book.lock().got.len();
            if k <= 2 {
                p.hang();
                return;
            }
            p.send(&ok(200));
        }
    });
    let cfg = |timeout: u32| {
        config(
            &r.url("/re"),
            None,
            &format!(r#""timeout_ms": {timeout}, {QUICK}"#),
        )
    };
    let d = Daemon::start(&cfg(2500));
    let mut w = Wire::to(&d);
    w.emit("dnd_on", 0);
    w.emit("dnd_on", 1);
    let first = r.wait_for(1);
    d.write_config(&cfg(600));
    d.sighup();
    assert!(d.wait_log("config reloaded", PATIENCE), "{}", d.log());
    let got = r.wait_for(4);
    status_when(&d, "delivered", 2);
    assert_eq!(order(&got), ["0", "0", "0", "1"], "{got:#?}");
    assert_eq!(folded(&got), ["0", "1"]);
    let a = got[1].at.duration_since(first[0].at);
    let b = got[2].at.duration_since(got[1].at);
    assert!(
        a >= Duration::from_millis(2400),
        "the attempt in flight ended after {a:?}, not at its own timeout_ms (2500)"
    );
    assert!(
        b >= Duration::from_millis(550) && b < Duration::from_millis(2000),
        "the retry after the reload ended after {b:?} (new timeout_ms 600)"
    );
}

/// SIGTERM while an attempt is in flight: the daemon waits for it (within shutdown_flush_ms),
/// the answer counts, the outbox is empty, exit 0. With a receiver that never answers, it
/// exits at the flush time, saying one was left.
#[test]
fn sigterm_waits_for_the_attempt_in_flight() {
    let r = Raw::start(|p| {
        while p.request().is_some() {
            std::thread::sleep(Duration::from_millis(400));
            p.send(&ok(200));
        }
    });
    let mut d = Daemon::start(&config(
        &r.url("/term"),
        None,
        &format!(r#""shutdown_flush_ms": 5000, {QUICK}"#),
    ));
    let mut w = Wire::to(&d);
    w.emit("dnd_on", 0);
    w.emit("dnd_on", 1);
    r.wait_for(1);
    d.sigterm();
    let st = d.wait_exit(PATIENCE).expect("exit");
    assert_eq!(st.code(), Some(0), "{}", d.log());
    let got = r.got();
    assert_eq!(order(&got), ["0", "1"], "{got:#?}");
    assert!(d.log().contains("stopped: outbox empty"), "{}", d.log());

    let hang = Raw::start(|p| {
        if p.request().is_some() {
            p.hang();
        }
    });
    let mut d = Daemon::start(&config(
        &hang.url("/term"),
        None,
        &format!(r#""shutdown_flush_ms": 700, "timeout_ms": 20000, {QUICK}"#),
    ));
    let mut w = Wire::to(&d);
    w.emit("dnd_on", 0);
    hang.wait_for(1);
    let t0 = Instant::now();
    d.sigterm();
    let st = d.wait_exit(PATIENCE).expect("exit");
    let took = t0.elapsed();
    assert_eq!(st.code(), Some(0), "{}", d.log());
    assert!(
        took >= Duration::from_millis(600) && took < Duration::from_millis(4000),
        "stopped {took:?} after SIGTERM (flush 700 ms, attempt timeout 20 s)"
    );
    assert!(
        d.log()
            .contains("stopping with 1 notification(s) not delivered"),
        "{}",
        d.log()
    );
}

/// A name (`localhost`): a worker looks it up, the loop sends; kept and reused like an IP's.
#[test]
fn a_name_is_looked_up_then_sent_on_one_kept_connection() {
    let r = Raw::healthy();
    let url = format!("http://localhost:{}/name", r.addr.port());
    let d = Daemon::start(&config(&url, None, QUICK));
    let mut w = Wire::to(&d);
    for i in 0..5 {
        w.emit("dnd_on", i);
    }
    let got = r.wait_for(5);
    let s = status_when(&d, "delivered", 5);
    assert_clean(&got, &s, 5, r.conns(), 1);
}

/// The flush rule with a spool: SIGTERM while the loop sender's attempt hangs; after
/// `shutdown_flush_ms` the daemon exits and the notification in flight is kept in the spool;
/// the next start sends it (the same delivery id), and the one queued behind it after it.
#[test]
fn sigterm_keeps_the_attempt_in_flight_in_the_spool() {
    let r = Raw::start(|p| {
        if p.conn == 1 {
            if p.request().is_some() {
                p.hang();
            }
            return;
        }
        while p.request().is_some() {
            p.send(&ok(200));
        }
    });
    let keep = common::TempDir::new("ls-spool");
    let spool = keep.join("spool");
    let cfg = format!(
        r#"{{"events": {{"dnd_on": "{}?n=$remote"}},
            "delivery": {{"spool": {{"path": "{}", "max_bytes": 65536}}, "shutdown_flush_ms": 600,
                          "timeout_ms": 20000, {QUICK}}}}}"#,
        r.url("/spool"),
        spool.display()
    );
    let mut first = Daemon::start(&cfg);
    let mut w = Wire::to(&first);
    w.emit("dnd_on", 0);
    w.emit("dnd_on", 1);
    r.wait_for(1);
    first.sigterm();
    let st = first.wait_exit(PATIENCE).expect("exit");
    assert_eq!(st.code(), Some(0), "{}", first.log());
    assert!(
        first
            .log()
            .contains("stopping with 2 notification(s) not delivered"),
        "{}",
        first.log()
    );
    let second = Daemon::start(&cfg);
    let got = r.wait_for(3);
    status_when(&second, "delivered", 2);
    assert_eq!(order(&got), ["0", "0", "1"], "{got:#?}");
    assert_eq!(folded(&got), ["0", "1"]);
    assert_ne!(got[0].conn, got[1].conn);
}

/// Kept connections the server ends at bad moments while notifications flow: after a few
/// requests it closes, some of the time with a request read and not answered (a retry is
/// really needed: the same id comes again), some of the time 20 ms after answering (the next
/// one may be on its way). Every notification arrives, in order, repeated only when the
/// server had dropped it unanswered.
#[test]
fn servers_ending_kept_connections_at_bad_moments_lose_nothing() {
    let dropped = Arc::new(Mutex::new(Vec::<String>::new()));
    let d2 = Arc::clone(&dropped);
    let r = Raw::start(move |p| {
        for k in 1..=3 {
            let Some(g) = p.request() else { return };
            if k < 3 {
                p.send(&ok(200));
            } else if p.conn % 2 == 0 {
                // Read, not answered: closed.
                d2.lock().unwrap_or_else(|e| e.into_inner()).push(g.id);
                return;
            } else {
                p.send(&ok(200));
                std::thread::sleep(Duration::from_millis(20));
                return;
            }
        }
    });
    let d = Daemon::start(&config(&r.url("/bad"), None, QUICK));
    let mut w = Wire::to(&d);
    for i in 0..40 {
        w.emit("dnd_on", i);
        std::thread::sleep(Duration::from_millis(4));
    }
    status_when(&d, "delivered", 40);
    let got = r.got();
    assert_eq!(folded(&got), seq(0..40), "{got:#?}");
    let dropped = dropped.lock().unwrap_or_else(|e| e.into_inner()).clone();
    // A repeat of an id the server did not drop unanswered would be a duplicate delivery.
    let mut repeats: Vec<String> = Vec::new();
    for (i, g) in got.iter().enumerate() {
        if got[..i].iter().any(|x| x.id == g.id) {
            repeats.push(g.id.clone());
        }
    }
    for id in &repeats {
        assert!(
            dropped.contains(id),
            "{id} delivered twice, though answered: {got:#?}"
        );
    }
    let s = d.status();
    assert_eq!(stat(&s, "delivered"), 40, "{s}");
    assert_eq!(stat(&s, "failed"), 0, "{s}");
    eprintln!(
        "40 notifications, {} requests, {} connections, {} dropped unanswered, retried {}",
        got.len(),
        r.conns(),
        dropped.len(),
        stat(&s, "retried")
    );
}

/// The same request bytes as ureq: a POST with credentials, extra headers, a signature and a
/// JSON body, once from the loop (dnd_on) and once through a worker (dnd_off: a `{` in its
/// target, which the loop sender leaves to ureq). The header lines are the same, in the same
/// order, but for the id, the signature and the target; the bodies are the same.
#[test]
fn the_loop_writes_the_request_as_ureq_does() {
    let r = Raw::healthy();
    let ev = |path: &str| {
        format!(
            r#"{{"url": "{}", "method": "POST", "body": "{{\"n\":\"$remote\"}}", "content_type": "json",
                "username": "phone", "password": "pw", "signing_secret": "sig-secret",
                "headers": {{"X-Api-Token": "abc", "X-Phone": "$remote", "Accept": "text/plain"}}}}"#,
            r.url(path)
        )
    };
    let cfg = format!(
        r#"{{"events": {{"dnd_on": {}, "dnd_off": {}}}, "delivery": {{{QUICK}}}}}"#,
        ev("/same?n=$remote"),
        ev("/same{x}?n=$remote")
    );
    let d = Daemon::start(&cfg);
    let mut w = Wire::to(&d);
    w.emit("dnd_on", 7);
    w.emit("dnd_off", 7);
    let got = r.wait_for(2);
    let lines = |g: &Got| -> Vec<String> {
        g.head
            .lines()
            .skip(1)
            .map(|l| {
                let (k, v) = l.split_once(": ").unwrap_or((l, ""));
                let v = match k.to_ascii_lowercase().as_str() {
                    "x-event-notify-id" | "idempotency-key" | "x-event-notify-signature" => "*",
                    _ => v,
                };
                format!("{k}: {v}")
            })
            .collect()
    };
    assert!(
        got[0].head.starts_with("POST /same?n=7 HTTP/1.1\r\n"),
        "{}",
        got[0].head
    );
    assert_eq!(
        lines(&got[0]),
        lines(&got[1]),
        "loop:\n{}\nureq:\n{}",
        got[0].head,
        got[1].head
    );
    assert_eq!(got[0].body, got[1].body);
    assert_eq!(got[0].body, br#"{"n":"7"}"#);
    // The loop's signature checks out as docs/RECEIVER.md says a receiver checks it.
    use hmac::{Hmac, Mac};
    let g = &got[0];
    let header = |name: &str| {
        g.head.lines().find_map(|l| {
            let (k, v) = l.split_once(": ")?;
            k.eq_ignore_ascii_case(name).then_some(v)
        })
    };
    let sig = header("x-event-notify-signature").expect("signed");
    let t = sig
        .split(',')
        .find_map(|p| p.strip_prefix("t="))
        .expect("t=");
    let v1 = sig
        .split(',')
        .find_map(|p| p.strip_prefix("v1="))
        .expect("v1=");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"sig-secret").expect("key");
    mac.update(format!("{t}.{}.POST./same?n=7.", g.id).as_bytes());
    mac.update(&g.body);
    let want: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(v1, want, "{}", g.head);
    assert_eq!(header("authorization"), Some("Basic cGhvbmU6cHc="));
}

/// A hostile receiver floods `100 Continue` interim answers, as fast as loopback takes them,
/// and never gives a final one. Each interim is small (no header cap is hit) and the body cap
/// does not apply: the attempt must still end by `timeout_ms`, and meanwhile the daemon's loop
/// must go on serving its socket and another destination (a flood may cost its own destination
/// the attempt, never the others their delivery). The loop is held as long as the flood keeps
/// every read full, so this fails whenever the writer stays ahead of the reader (6 runs of 6 on
/// a loaded 2-core machine), not necessarily every time on every machine.
#[test]
fn a_flood_of_interim_answers_neither_holds_the_loop_nor_outlives_timeout_ms() {
    let flood = Raw::start(|p| {
        if p.request().is_none() {
            return;
        }
        use nix::sys::socket::{setsockopt, sockopt::SndBuf};
        let _ = setsockopt(&p.s, SndBuf, &(4 << 20));
        let burst = b"HTTP/1.1 100 Continue\r\n\r\n".repeat(40_000);
        let deadline = Instant::now() + Duration::from_secs(7);
        while Instant::now() < deadline && !p.book.lock().stop {
            if p.s.write_all(&burst).is_err() {
                return;
            }
        }
    });
    let fine = Raw::healthy();
    let d = Daemon::start(&config(
        &flood.url("/flood"),
        Some(&fine.url("/fine")),
        r#""timeout_ms": 4000, "backoff_initial_ms": 9000, "backoff_max_ms": 9000"#,
    ));
    let mut w = Wire::to(&d);
    let t_flood = Instant::now();
    w.emit("dnd_on", 0);
    flood.wait_for(1);
    // The daemon's loop answers its socket promptly all along: pings for 3.5 s.
    let mut slowest = Duration::ZERO;
    let pings = Instant::now();
    while pings.elapsed() < Duration::from_millis(3500) {
        let t = Instant::now();
        w.0.get_mut().write_all(b"EN1 ping\n").expect("write");
        let mut answer = String::new();
        w.0.read_line(&mut answer).expect("pong");
        assert_eq!(answer, "OK pong\n");
        slowest = slowest.max(t.elapsed());
        std::thread::sleep(Duration::from_millis(20));
    }
    let t0 = Instant::now();
    w.emit("dnd_off", 0);
    let served = fine.wait_within(1, Duration::from_secs(9));
    let took = t0.elapsed();
    assert!(
        served.is_ok() && took < Duration::from_millis(1000),
        "another destination waited {took:?} ({served:?}) while one flooded interim answers"
    );
    // The flooding attempts ended at their timeout: retried (not delivered, not in flight).
    let deadline = Instant::now() + Duration::from_secs(9);
    let s = loop {
        let s = d.status();
        if stat(&s, "retried") >= 1 || Instant::now() > deadline {
            break s;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let over = t_flood.elapsed();
    eprintln!("beside an interim flood: slowest ping {slowest:?}, another destination served in {took:?}, flood attempt over after {over:?}");
    assert!(
        slowest < Duration::from_millis(1000),
        "the daemon's loop was held {slowest:?} by a receiver flooding interim answers"
    );
    assert_eq!(stat(&s, "retried"), 1, "{s}");
    assert_eq!(stat(&s, "delivered"), 1, "{s}");
    assert!(
        over < Duration::from_millis(5500),
        "the flooded attempt (timeout_ms 4000) ended after {over:?}"
    );
}

/// RESPONSE_BODY_CAP (16 KiB) is the most read of a body: one of 17,000 bytes is more, so its
/// connection is not reused, on the loop's path (dnd_on) as on the workers' (dnd_off, a `{` in
/// the target), and both count it delivered.
#[test]
fn a_body_just_over_the_cap_is_not_read_to_its_end_on_either_path() {
    let r = Raw::start(|p| {
        while let Some(g) = p.request() {
            if g.n == "big" {
                let mut a = b"HTTP/1.1 200 OK\r\nContent-Length: 17000\r\n\r\n".to_vec();
                a.extend_from_slice(&[b'b'; 17000]);
                p.send(&a);
            } else {
                p.send(&ok(200));
            }
        }
    });
    let d = Daemon::start(&config(&r.url("/cap"), Some(&r.url("/cap{w}")), QUICK));
    let mut w = Wire::to(&d);
    for ev in ["dnd_on", "dnd_off"] {
        w.emit(ev, "big");
        w.emit(ev, "next");
    }
    let got = r.wait_for(4);
    let s = status_when(&d, "delivered", 4);
    assert_eq!(stat(&s, "delivered"), 4, "{s}");
    assert_eq!(stat(&s, "retried"), 0, "{s}");
    let conns: Vec<(String, usize)> = got.iter().map(|g| (g.target.clone(), g.conn)).collect();
    assert_ne!(got[2].conn, got[3].conn, "workers' path reused: {conns:?}");
    assert_ne!(got[0].conn, got[1].conn, "loop's path reused: {conns:?}");
}

/// Slowloris answers: a head dribbled for longer than `timeout_ms` is no answer (the attempt
/// ends at `timeout_ms` though bytes keep coming: retried, the same id); a head in time and a
/// body dribbled past `timeout_ms` is the head's answer (delivered, the connection closed).
#[test]
fn answers_dribbled_past_timeout_ms() {
    let r = Raw::start(|p| {
        while let Some(g) = p.request() {
            let tries = p.book.lock().got.iter().filter(|x| x.n == g.n).count();
            match (g.n.as_str(), tries) {
                ("head", 1) => {
                    p.dribble(
                        b"HTTP/1.1 200 OK\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\nContent-Length: 0\r\n\r\n",
                        Duration::from_millis(40),
                    );
                    return;
                }
                ("body", _) => {
                    p.send(b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n");
                    p.dribble(&[b'x'; 40], Duration::from_millis(50));
                    return;
                }
                _ => p.send(&ok(200)),
            }
        }
    });
    let d = Daemon::start(&config(
        &r.url("/slow"),
        None,
        &format!(r#""timeout_ms": 800, {QUICK}"#),
    ));
    let mut w = Wire::to(&d);
    let t0 = Instant::now();
    w.emit("dnd_on", "head");
    w.emit("dnd_on", "body");
    w.emit("dnd_on", "after");
    let got = r.wait_for(4);
    let s = status_when(&d, "delivered", 3);
    assert_eq!(order(&got), ["head", "head", "body", "after"], "{got:#?}");
    assert_eq!(folded(&got), ["head", "body", "after"]);
    let retry = got[1].at.duration_since(got[0].at);
    assert!(
        retry >= Duration::from_millis(750) && retry < Duration::from_millis(2000),
        "a head dribbled for 3.6 s was given up after {retry:?} (timeout_ms 800)"
    );
    let after = got[3].at.duration_since(got[2].at);
    assert!(
        after >= Duration::from_millis(750) && after < Duration::from_millis(1800),
        "a body dribbled for 2 s ended the attempt after {after:?} (timeout_ms 800)"
    );
    assert_eq!(stat(&s, "delivered"), 3, "{s}");
    assert_eq!(stat(&s, "retried"), 1, "{s}");
    assert!(t0.elapsed() < Duration::from_secs(6));
    assert_ne!(got[2].conn, got[3].conn);
}

/// Ten healthy destinations in turn, three rounds: more than LOOP_CONNS = 8, so the loop closes
/// the connection idle the longest to make room. Nothing is lost or repeated, no attempt fails,
/// every destination gets its three in order.
#[test]
fn more_healthy_destinations_than_loop_connections_take_turns() {
    let rs: Vec<Raw> = (0..10).map(|_| Raw::healthy()).collect();
    let cfg = format!(
        r#"{{"events": {{"dnd_on": "http://127.0.0.1:$remote/t?n=$display_remote"}},
            "delivery": {{{QUICK}}}}}"#
    );
    let d = Daemon::start(&cfg);
    let mut w = Wire::to(&d);
    for n in 0..3 {
        for r in &rs {
            let line = format!("EN1 dnd_on remote={} display_remote={n}\n", r.addr.port());
            w.0.get_mut().write_all(line.as_bytes()).expect("write");
            let mut answer = String::new();
            w.0.read_line(&mut answer).expect("answer");
            assert!(answer.starts_with("OK"), "{answer}");
            // One at a time, so each finds the others idle.
            r.wait_for(n + 1);
        }
    }
    let s = status_when(&d, "delivered", 30);
    for r in &rs {
        let got = r.got();
        assert_eq!(order(&got), seq(0..3), "{got:#?}");
        assert_once_each(&got);
    }
    assert_eq!(stat(&s, "delivered"), 30, "{s}");
    assert_eq!(stat(&s, "retried"), 0, "{s}");
}

/// The end of a run without trouble: `n` notifications in order, each once, no retry, over
/// `want_conns` connections.
fn assert_clean(got: &[Got], s: &str, n: usize, conns: usize, want_conns: usize) {
    assert_eq!(order(got), seq(0..n), "{got:#?}");
    assert_once_each(got);
    assert_eq!(stat(s, "retried"), 0, "{s}");
    assert_eq!(conns, want_conns, "{got:#?}");
}
