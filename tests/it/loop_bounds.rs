//! The loop sender's bounds over time (`src/daemon/deliver/direct.rs`): a kept connection is
//! not held forever. `tick` closes a connection idle for `LOOP_IDLE_MS` (30 s), giving back its
//! socket (and over TLS the session's buffers), even when nothing else is ever sent to that
//! destination; the check when a connection is reused only covers the next request.

use crate::common;

use common::{stat, status_when, Daemon, RawHead, TestCa, PATIENCE};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// `LOOP_IDLE_MS` of direct.rs.
const LOOP_IDLE: Duration = Duration::from_secs(30);

/// Reads one request (head and `Content-Length` body); its target.
fn request(s: &mut impl Read) -> String {
    let mut buf = Vec::new();
    let mut b = [0u8; 4096];
    loop {
        if let Some(h) = RawHead::parse(&buf) {
            if buf.len() >= h.end() {
                return h.target();
            }
        }
        match s.read(&mut b) {
            Ok(0) | Err(_) => panic!("no whole request: {:?}", String::from_utf8_lossy(&buf)),
            Ok(n) => buf.extend_from_slice(&b[..n]),
        }
    }
}

/// Answers one request on the connection `l` accepts (plain, or TLS with `tls`), then waits
/// for the daemon to close it: how long after the answer, or what happened instead.
fn answer_then_wait_close(
    l: &TcpListener,
    tls: Option<std::sync::Arc<rustls::ServerConfig>>,
) -> (String, Result<Duration, String>) {
    let (tcp, _) = l.accept().expect("accept");
    tcp.set_read_timeout(Some(PATIENCE)).expect("timeout");
    let mut s: Box<dyn ReadWrite> = match tls {
        None => Box::new(tcp),
        Some(cfg) => Box::new(rustls::StreamOwned::new(
            rustls::ServerConnection::new(cfg).expect("server conn"),
            tcp,
        )),
    };
    let target = request(&mut s);
    s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        .expect("answer");
    s.flush().expect("flush");
    let answered = Instant::now();
    // Nothing more is sent: wait for the daemon's close, at most 36 s after the answer.
    s.set_timeout(LOOP_IDLE + Duration::from_secs(6));
    let mut b = [0u8; 64];
    let got = s.read(&mut b);
    let idle = answered.elapsed();
    let end = match got {
        // A close without close_notify is an error for rustls: a close all the same.
        Ok(0) => Ok(idle),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(idle),
        Ok(n) => Err(format!("{n} bytes on an idle connection after {idle:?}")),
        Err(e) => Err(format!(
            "the daemon kept its idle connection open for {idle:?} ({e})"
        )),
    };
    (target, end)
}

trait ReadWrite: Read + Write + Send {
    fn set_timeout(&mut self, t: Duration);
}

impl ReadWrite for TcpStream {
    fn set_timeout(&mut self, t: Duration) {
        self.set_read_timeout(Some(t)).expect("timeout");
    }
}

impl ReadWrite for rustls::StreamOwned<rustls::ServerConnection, TcpStream> {
    fn set_timeout(&mut self, t: Duration) {
        self.sock.set_read_timeout(Some(t)).expect("timeout");
    }
}

/// One notification to a plain receiver and one to an HTTPS receiver (in a build with TLS),
/// each answered at once with the connection kept; then nothing. The daemon must close each
/// idle connection itself ~30 s after its answer: not before 29 s (it is kept for the next
/// notification), and not much after. Then a new notification goes on a new connection.
#[test]
fn an_idle_loop_connection_is_closed_by_the_daemon_after_loop_idle_ms() {
    let ca = TestCa::new();
    let plain = TcpListener::bind("127.0.0.1:0").expect("bind");
    let secure = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = |l: &TcpListener| -> SocketAddr { l.local_addr().expect("addr") };
    let d = Daemon::start(&format!(
        r#"{{"events": {{"dnd_on": "http://{}/idle?n=$remote",
                         "dnd_off": "https://{}/idle?n=$remote"}},
            "delivery": {{"ca_file": "{}"}}}}"#,
        addr(&plain),
        addr(&secure),
        ca.ca_file().display()
    ));
    let tls = cfg!(feature = "tls");
    let (a, b) = std::thread::scope(|sc| {
        let a = sc.spawn(|| answer_then_wait_close(&plain, None));
        d.emit_ok(&["dnd_on", "remote=1"]);
        let b = tls.then(|| {
            let b = sc.spawn(|| answer_then_wait_close(&secure, Some(ca.server_config())));
            d.emit_ok(&["dnd_off", "remote=1"]);
            b
        });
        let want = if tls { 2 } else { 1 };
        let st = status_when(&d, "delivered", want);
        assert_eq!(stat(&st, "retried"), 0, "{st}");
        let join = |h: std::thread::ScopedJoinHandle<'_, _>| h.join().expect("receiver");
        (join(a), b.map(join))
    });
    let mut wrong = Vec::new();
    for (what, (target, end)) in std::iter::once(("http", a)).chain(b.map(|b| ("https", b))) {
        assert_eq!(target, "/idle?n=1", "{what}");
        match end {
            Ok(idle) if idle < LOOP_IDLE - Duration::from_secs(1) => wrong.push(format!(
                "{what}: closed after {idle:?} idle, before LOOP_IDLE_MS"
            )),
            Ok(_) => {}
            Err(e) => wrong.push(format!("{what}: {e}")),
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    // The daemon is still well, and a new notification goes on a new connection.
    d.emit_ok(&["dnd_on", "remote=2"]);
    let (mut s2, _) = plain.accept().expect("a new connection");
    s2.set_read_timeout(Some(PATIENCE)).expect("timeout");
    assert_eq!(request(&mut s2), "/idle?n=2");
    s2.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        .expect("answer");
    let st = status_when(&d, "delivered", if tls { 3 } else { 2 });
    assert_eq!(stat(&st, "failed"), 0, "{st}");
}
