//! HTTPS from the daemon's loop (`src/daemon/deliver/direct.rs`, module `tls`): the real
//! daemon, real TLS over loopback (rustls on both sides, a CA made per test), the receivers of
//! `tests/common` and raw ones written here ([`Raw`]: a rustls `ServerConnection` over a
//! `TcpStream`, driven by the test record by record — or no TLS at all, or, for what rustls's
//! server API cannot send (a TLS 1.2 HelloRequest, a flood of TLS 1.3 session tickets), the
//! record layer taken over with the connection's extracted secrets).
//!
//! What is checked: an `https://` destination is sent from the loop (no delivery worker is
//! started), on one kept connection, with the request bytes ureq writes for the same
//! notification; and the loop's TLS keeps the workers' promises when the receiver misbehaves:
//! the outcome ureq's path gives for the same receiver (a `{x}` in the URL's target sends it
//! through ureq: the control), `timeout_ms` and `connect_timeout_ms`, nothing lost, order per
//! destination, repeats only for a retry that was needed, and no destination delaying another.
//! Each test also shows the loop sent (no worker thread, or the name's lookup worker never
//! woken again): every one fails when `loop_url` refuses `https://`.

use crate::common;

use common::{
    assert_once_each, find, folded, order, seq, stat, status_when, Arrival, Daemon, RawHead,
    Receiver, TempDir, Wire, PATIENCE,
};
use std::io::{BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

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

/// How many times the delivery workers have gone to sleep and been woken (their voluntary
/// context switches, summed): a worker that takes no job does not move this.
fn worker_wakeups(d: &Daemon) -> u64 {
    let dir = format!("/proc/{}/task", d.pid());
    std::fs::read_dir(dir)
        .map(|tasks| {
            tasks
                .filter_map(|t| {
                    let t = t.ok()?.path();
                    let name = std::fs::read_to_string(t.join("comm")).ok()?;
                    if !name.starts_with("deliver-") {
                        return None;
                    }
                    std::fs::read_to_string(t.join("status"))
                        .ok()?
                        .lines()
                        .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))?
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
                .sum()
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

// ---------------------------------------------------------------------------------------------
// Certificates: a CA per test, leaf certificates for the names and TLS versions a test chooses

struct Pki {
    _dir: TempDir,
    ca_file: std::path::PathBuf,
    ca_key: rcgen::KeyPair,
    ca_cert: rcgen::Certificate,
}

type Versions = &'static [&'static rustls::SupportedProtocolVersion];
const TLS12_ONLY: Versions = &[&rustls::version::TLS12];
const TLS13_ONLY: Versions = &[&rustls::version::TLS13];

impl Pki {
    fn new() -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
        let ca_key = KeyPair::generate().expect("CA key");
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name
            .push(DnType::CommonName, "loop_tls test CA");
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = p.self_signed(&ca_key).expect("CA certificate");
        let dir = TempDir::new("pki");
        let ca_file = dir.write("ca.pem", ca_cert.pem());
        Pki {
            _dir: dir,
            ca_file,
            ca_key,
            ca_cert,
        }
    }

    /// A server configuration with a certificate this CA signed for `names`.
    fn server(&self, names: &[&str], versions: Versions) -> Arc<rustls::ServerConfig> {
        Arc::new(self.server_with(names, versions, false))
    }

    /// The same, asking for a client certificate this CA signed when `client_auth`.
    fn server_with(
        &self,
        names: &[&str],
        versions: Versions,
        client_auth: bool,
    ) -> rustls::ServerConfig {
        self.server_from(
            rustls::crypto::ring::default_provider(),
            names,
            versions,
            client_auth,
        )
    }

    /// The same, with this crypto provider (e.g. fewer key exchange groups).
    fn server_from(
        &self,
        provider: rustls::crypto::CryptoProvider,
        names: &[&str],
        versions: Versions,
        client_auth: bool,
    ) -> rustls::ServerConfig {
        use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose};
        let key = KeyPair::generate().expect("leaf key");
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut p = CertificateParams::new(names).expect("leaf params");
        p.distinguished_name
            .push(DnType::CommonName, "loop_tls receiver");
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf = p
            .signed_by(&key, &self.ca_cert, &self.ca_key)
            .expect("leaf certificate");
        let der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
        let provider = Arc::new(provider);
        let b = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(versions)
            .expect("TLS versions");
        let b = if client_auth {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(self.ca_cert.der().clone()).expect("CA");
            let v = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .expect("client verifier");
            b.with_client_cert_verifier(v)
        } else {
            b.with_no_client_auth()
        };
        b.with_single_cert(vec![leaf.der().clone(), self.ca_cert.der().clone()], der)
            .expect("server certificate")
    }

    /// For `127.0.0.1` and `localhost`, TLS 1.2 and 1.3.
    fn std(&self) -> Arc<rustls::ServerConfig> {
        self.server(&["127.0.0.1", "localhost"], rustls::ALL_VERSIONS)
    }
}

// ---------------------------------------------------------------------------------------------
// A raw TLS receiver: rustls's ServerConnection over a TcpStream, driven by the test, which
// decides every record (or sends no TLS at all)

/// One request as the raw receiver read it.
#[derive(Clone, Debug)]
struct Got {
    /// The `n` query value (the test's sequence number).
    n: String,
    /// `X-Event-Notify-Id`.
    id: String,
    /// 1 for the first connection accepted, and so on.
    conn: usize,
    at: Instant,
    version: Option<rustls::ProtocolVersion>,
    /// The `host` header.
    host: String,
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
    /// When each connection was accepted.
    accepted: Vec<Instant>,
    /// Clones of the open connections' sockets (for [`Raw::kill`]), by connection number.
    live: Vec<(usize, TcpStream)>,
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
    tls: rustls::ServerConnection,
    /// Plain text read and not yet taken as a request.
    plain: Vec<u8>,
    conn: usize,
    book: Book,
}

impl Peer {
    /// Reads (raw, without TLS) the first record the client sends: its ClientHello. False when
    /// the client closed first.
    fn hello(&mut self) -> bool {
        let _ = self.s.set_read_timeout(Some(PATIENCE));
        let mut got = Vec::new();
        let mut b = [0u8; 4096];
        loop {
            if got.len() >= 5 && got.len() >= 5 + u16::from_be_bytes([got[3], got[4]]) as usize {
                return true;
            }
            match self.s.read(&mut b) {
                Ok(0) | Err(_) => return false,
                Ok(n) => got.extend_from_slice(&b[..n]),
            }
        }
    }

    /// Runs the handshake to its end. False when it failed.
    fn handshake(&mut self) -> bool {
        let _ = self.s.set_read_timeout(Some(PATIENCE));
        while self.tls.is_handshaking() {
            if self.tls.complete_io(&mut self.s).is_err() {
                self.flush();
                return false;
            }
        }
        self.flush();
        true
    }

    /// Writes what rustls has to send.
    fn flush(&mut self) {
        while self.tls.wants_write() {
            if self.tls.write_tls(&mut self.s).is_err() {
                return;
            }
        }
    }

    /// More plain text. False at the end of the stream (close_notify, FIN, error).
    fn fill(&mut self) -> bool {
        if self.tls.is_handshaking() && !self.handshake() {
            return false;
        }
        let mut b = [0u8; 4096];
        loop {
            match self.tls.reader().read(&mut b) {
                Ok(0) => return false,
                Ok(n) => {
                    self.plain.extend_from_slice(&b[..n]);
                    return true;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return false,
            }
            match self.tls.read_tls(&mut self.s) {
                Ok(0) | Err(_) => return false,
                Ok(_) => {}
            }
            let bad = self.tls.process_new_packets().is_err();
            self.flush();
            if bad {
                return false;
            }
        }
    }

    /// Reads one request (the handshake first if need be) and records it. `None` when the
    /// client closed the connection, failed the handshake, or sent nothing for 10 s.
    fn request(&mut self) -> Option<Got> {
        let _ = self.s.set_read_timeout(Some(PATIENCE));
        loop {
            if let Some(h) = RawHead::parse(&self.plain) {
                while self.plain.len() < h.end() {
                    if !self.fill() {
                        return None;
                    }
                }
                let got = Got {
                    n: h.n(),
                    id: h.header("x-event-notify-id").unwrap_or_default(),
                    conn: self.conn,
                    at: Instant::now(),
                    version: self.tls.protocol_version(),
                    host: h.header("host").unwrap_or_default(),
                };
                self.plain.drain(..h.end());
                self.book.lock().got.push(got.clone());
                self.book.0 .1.notify_all();
                return Some(got);
            }
            if !self.fill() {
                return None;
            }
        }
    }

    /// `b` as plain text, in records of at most `size` bytes; each record its own write to the
    /// socket when `apart`, else all records in one write.
    fn send_records(&mut self, b: &[u8], size: usize, apart: bool) {
        for piece in b.chunks(size.max(1)) {
            let _ = self.tls.writer().write_all(piece);
            if apart {
                self.flush();
            }
        }
        self.flush();
    }

    fn send(&mut self, b: &[u8]) {
        self.send_records(b, usize::MAX, false);
    }

    /// The records rustls has queued, as bytes (not written).
    fn take_records(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        while self.tls.wants_write() {
            if self.tls.write_tls(&mut out).is_err() {
                break;
            }
        }
        out
    }

    /// Holds back what is written until [`Peer::uncork`] or the close (TCP_CORK): bytes and
    /// the FIN leave together.
    fn cork(&mut self, on: bool) {
        use std::os::fd::AsRawFd;
        let on: nix::libc::c_int = on.into();
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
    }

    /// Writes raw bytes (no TLS).
    fn raw(&mut self, b: &[u8]) {
        let _ = self.s.write_all(b);
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

    /// Waits until the client closes the connection (or `limit` passes), reading and
    /// dropping what it sends.
    fn until_closed(&mut self, limit: Duration) {
        let _ = self.s.set_read_timeout(Some(limit));
        let mut b = [0u8; 4096];
        while let Ok(n) = self.s.read(&mut b) {
            if n == 0 {
                return;
            }
        }
    }

    /// True if the client sends something within `limit` (a request on the kept connection).
    fn speaks_within(&mut self, limit: Duration) -> bool {
        let _ = self.s.set_read_timeout(Some(limit));
        let mut b = [0u8; 1];
        matches!(self.s.peek(&mut b), Ok(n) if n > 0)
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
                .wait_timeout(seen, Duration::from_millis(100))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

type Handler = Arc<dyn Fn(&mut Peer) + Send + Sync>;

/// An HTTPS receiver on `127.0.0.1`: each accepted connection runs `handler` on its own
/// thread, with a fresh ServerConnection of `config`; closed (FIN) when the handler returns.
struct Raw {
    addr: SocketAddr,
    book: Book,
    accept: Option<std::thread::JoinHandle<()>>,
}

impl Raw {
    fn start(
        config: Arc<rustls::ServerConfig>,
        handler: impl Fn(&mut Peer) + Send + Sync + 'static,
    ) -> Raw {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        Raw::on(l, config, Arc::new(handler))
    }

    /// A healthy receiver: `200` to every request, connections kept.
    fn healthy(config: Arc<rustls::ServerConfig>) -> Raw {
        Raw::start(config, |p| {
            while p.request().is_some() {
                p.send(&ok(200));
            }
        })
    }

    fn on(l: TcpListener, config: Arc<rustls::ServerConfig>, handler: Handler) -> Raw {
        let addr = l.local_addr().expect("addr");
        l.set_nonblocking(true).expect("non-blocking listener");
        let book = Book::default();
        let b = book.clone();
        let accept = std::thread::spawn(move || loop {
            if b.lock().stop {
                return;
            }
            let s = match l.accept() {
                Ok((s, _)) => s,
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(2));
                    continue;
                }
            };
            let _ = s.set_nonblocking(false);
            let _ = s.set_nodelay(true);
            let conn = {
                let mut seen = b.lock();
                seen.accepted.push(Instant::now());
                let conn = seen.accepted.len();
                if let Ok(c) = s.try_clone() {
                    seen.live.push((conn, c));
                }
                conn
            };
            let tls = rustls::ServerConnection::new(Arc::clone(&config)).expect("server conn");
            let (b, h) = (b.clone(), Arc::clone(&handler));
            std::thread::spawn(move || {
                let mut p = Peer {
                    s,
                    tls,
                    plain: Vec::new(),
                    conn,
                    book: b,
                };
                h(&mut p);
                // The clone goes too: the close is the handler's.
                p.book.lock().live.retain(|(c, _)| *c != conn);
            });
        });
        Raw {
            addr,
            book,
            accept: Some(accept),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    fn got(&self) -> Vec<Got> {
        self.book.lock().got.clone()
    }

    fn conns(&self) -> usize {
        self.book.lock().accepted.len()
    }

    fn accepted(&self) -> Vec<Instant> {
        self.book.lock().accepted.clone()
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

    /// As the kernel does for a process killed by SIGKILL: the listener closed (the port free
    /// for another), every connection ended at once (reset). What had arrived.
    fn kill(mut self) -> Vec<Got> {
        use nix::sys::socket::{setsockopt, sockopt::Linger};
        let live = {
            let mut seen = self.book.lock();
            seen.stop = true;
            std::mem::take(&mut seen.live)
        };
        self.book.0 .1.notify_all();
        if let Some(a) = self.accept.take() {
            let _ = a.join();
        }
        let l = nix::libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        for (_, s) in &live {
            let _ = setsockopt(s, Linger, &l);
            let _ = s.shutdown(Shutdown::Read);
        }
        drop(live);
        self.got()
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        let mut seen = self.book.lock();
        seen.stop = true;
        seen.live.clear();
        drop(seen);
        self.book.0 .1.notify_all();
    }
}

/// `HTTP/1.1 <status>` with an empty body (`Content-Length: 0`), connection kept.
fn ok(status: u16) -> Vec<u8> {
    format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n").into_bytes()
}

// ---------------------------------------------------------------------------------------------
// The daemon side

/// Quick retries, so a test that needs one does not wait the default half second.
const QUICK: &str = r#""backoff_initial_ms": 20, "backoff_max_ms": 60"#;

/// A config trusting `ca` with these events (JSON members) and `delivery` members.
fn cfg(events: &str, ca: &std::path::Path, delivery: &str) -> String {
    format!(
        r#"{{"events": {{{events}}}, "delivery": {{"ca_file": "{}", {delivery}}}}}"#,
        ca.display()
    )
}

/// `f` for each case, in parallel threads on the host. Under qemu-user (the ARM targets) one
/// after the other: each case starts a daemon and `status` processes, and many threads forking
/// at once in an emulated process is what once hung a run there for 300 s.
fn each<C: Sync, R: Send>(cases: &[C], f: impl Fn(&C) -> R + Sync) -> Vec<R> {
    if cfg!(not(target_arch = "x86_64")) {
        return cases.iter().map(f).collect();
    }
    std::thread::scope(|sc| {
        let f = &f;
        let hs: Vec<_> = cases.iter().map(|c| sc.spawn(move || f(c))).collect();
        hs.into_iter()
            .map(|h| h.join().expect("a case panicked"))
            .collect()
    })
}

/// The `key=` value of `event`'s line in a status output.
fn ev(s: &str, event: &str, key: &str) -> String {
    let head = format!("event {event} ");
    let k = format!("{key}=");
    s.lines()
        .find(|l| l.starts_with(&head))
        .and_then(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix(&k[..]).map(str::to_string))
        })
        .unwrap_or_else(|| panic!("no {key}= for {event} in status:\n{s}"))
}

/// The status once `event` has the result of an attempt (`last=` set), or after PATIENCE.
fn ev_done(d: &Daemon, event: &str) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let s = d.status();
        if ev(&s, event, "last") != "-" || Instant::now() > deadline {
            return s;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------------------------------------
// Handshakes that go wrong: the outcome ureq's path gives

/// What a hostile receiver does with the ClientHello (or the handshake).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hostile {
    /// Answers in plain HTTP, keeps the connection open.
    Http,
    /// Answers bytes that are not TLS records, keeps the connection open.
    Garbage,
    /// Answers a fatal TLS alert (handshake_failure), keeps the connection open.
    Alert,
    /// Closes the connection (FIN) after the ClientHello.
    Close,
    /// Resets the connection after the ClientHello.
    Reset,
    /// A certificate from a CA that is not in `ca_file`.
    Untrusted,
    /// A certificate for `localhost` only; the URL says `127.0.0.1`.
    WrongName,
    /// Asks for a client certificate (the daemon has none) and refuses the handshake.
    ClientCert,
    /// Completes the handshake, then close_notify and FIN without reading the request.
    NotifyAfterHandshake,
    /// TLS 1.3 half-RTT data: a `200` sent right after the server's Finished, before the
    /// client's Finished and request; then the request is read and answered.
    EarlyAnswer,
    /// A 200 with a body of 1 MB (far over the body cap).
    HugeBody,
    /// A 200 whose body is cut by close_notify (and FIN) half way.
    NotifyMidBody,
    /// A 200 whose body ends with the connection: a FIN without close_notify (truncation).
    BodyCutByFin,
    /// A 200 whose body ends with close_notify (and the FIN).
    BodyEndedByNotify,
}

fn hostile(h: Hostile, pki: &Pki, other: &Pki) -> Raw {
    let config = match h {
        Hostile::Untrusted => other.std(),
        Hostile::WrongName => pki.server(&["localhost"], rustls::ALL_VERSIONS),
        Hostile::ClientCert => {
            Arc::new(pki.server_with(&["127.0.0.1"], rustls::ALL_VERSIONS, true))
        }
        Hostile::EarlyAnswer => {
            let mut c = pki.server_with(&["127.0.0.1"], TLS13_ONLY, false);
            c.send_half_rtt_data = true;
            Arc::new(c)
        }
        _ => pki.std(),
    };
    Raw::start(config, move |p| {
        if matches!(h, Hostile::BodyCutByFin | Hostile::BodyEndedByNotify) {
            if p.request().is_some() {
                p.send(b"HTTP/1.1 200 OK\r\n\r\nthe body ends with the connection");
                if h == Hostile::BodyEndedByNotify {
                    p.tls.send_close_notify();
                    p.flush();
                }
            }
            return;
        }
        if matches!(h, Hostile::HugeBody | Hostile::NotifyMidBody) {
            if p.request().is_some() {
                let big = 1 << 20;
                p.send(format!("HTTP/1.1 200 OK\r\nContent-Length: {big}\r\n\r\n").as_bytes());
                match h {
                    Hostile::HugeBody => p.send(&vec![b'x'; big]),
                    _ => {
                        p.send(b"half");
                        p.tls.send_close_notify();
                        p.flush();
                        let _ = p.s.shutdown(Shutdown::Write);
                    }
                }
                p.until_closed(Duration::from_secs(5));
            }
            return;
        }
        if h == Hostile::NotifyAfterHandshake {
            if p.handshake() {
                p.tls.send_close_notify();
                p.flush();
                let _ = p.s.shutdown(Shutdown::Write);
                p.until_closed(Duration::from_secs(5));
            }
            return;
        }
        if h == Hostile::EarlyAnswer {
            let _ = p.s.set_read_timeout(Some(PATIENCE));
            // The ClientHello, through rustls; the answer queued behind the server's flight.
            while !p.tls.wants_write() {
                match p.tls.read_tls(&mut p.s) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        if p.tls.process_new_packets().is_err() {
                            return;
                        }
                    }
                }
            }
            let _ = p.tls.writer().write_all(&ok(200));
            p.flush();
            while p.request().is_some() {
                p.send(&ok(200));
            }
            return;
        }
        if matches!(
            h,
            Hostile::Untrusted | Hostile::WrongName | Hostile::ClientCert
        ) {
            // The client refuses the certificate: no request comes.
            let _ = p.request();
            return;
        }
        if !p.hello() {
            return;
        }
        match h {
            Hostile::Http => p.raw(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"),
            Hostile::Garbage => p.raw(b"\x00\x00\x01garbage, not a TLS record\r\n\r\n"),
            Hostile::Alert => p.raw(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]),
            Hostile::Close => return,
            _ => {
                p.reset_on_close();
                return;
            }
        }
        p.until_closed(Duration::from_secs(5));
    })
}

/// One hostile receiver's outcome on each path: (last, retried, failed, connections) for the
/// loop's event, whether a worker had been started when the loop's had its outcome, and the
/// same four for ureq's event.
type Row = (Hostile, [String; 5], usize, [String; 5]);

fn outcomes(h: Hostile) -> Row {
    let (pki, other) = (Pki::new(), Pki::new());
    let (on_loop, on_ureq) = (hostile(h, &pki, &other), hostile(h, &pki, &other));
    let d = Daemon::start(&cfg(
        &format!(
            r#""dnd_on": "{}", "dnd_off": "{}""#,
            on_loop.url("/h?n=$remote"),
            on_ureq.url("/h{x}?n=$remote")
        ),
        &pki.ca_file,
        &format!(r#""timeout_ms": 3000, {QUICK}"#),
    ));
    let mut w = Wire::to(&d);
    let figures = |event: &str, r: &Raw| {
        ev_done(&d, event);
        // Time for a needless retry to show.
        std::thread::sleep(Duration::from_millis(300));
        let s = d.status();
        [
            ev(&s, event, "last"),
            // Retried at least once, or not: the number depends on the back-off.
            (ev(&s, event, "retried") != "0").to_string(),
            ev(&s, event, "failed"),
            // One connection, or more (retries).
            (r.conns().min(2)).to_string(),
            // Requests the receiver read.
            r.got().len().to_string(),
        ]
    };
    w.emit("dnd_on", 0);
    let a = figures("dnd_on", &on_loop);
    let threads = workers(&d);
    w.emit("dnd_off", 0);
    let b = figures("dnd_off", &on_ureq);
    (h, a, threads, b)
}

/// Nine receivers that spoil the handshake, four that spoil or end a body: each
/// gives the loop's attempt the outcome it gives ureq's (a `{x}` URL, which the loop leaves
/// to the workers): tls-error, failed, not retried, for what is not TLS, an alert, an
/// untrusted certificate or one for another name, a client certificate asked for; a retry
/// for a close (io-error; also close_notify right after the handshake) or a reset
/// (connect-error); delivered for a body cut by a FIN or by close_notify, ended by
/// close_notify, or far over the body cap (ureq does not read the body to judge). The loop's attempt is the loop's (no worker started).
#[test]
fn spoiled_handshakes_end_as_on_the_workers_path() {
    use Hostile::*;
    let all = [
        Http,
        Garbage,
        Alert,
        Close,
        Reset,
        Untrusted,
        WrongName,
        ClientCert,
        NotifyAfterHandshake,
        HugeBody,
        NotifyMidBody,
        BodyCutByFin,
        BodyEndedByNotify,
    ];
    let rows: Vec<Row> = each(&all, |&h| outcomes(h));
    let table: String = rows
        .iter()
        .map(|(h, a, t, b)| format!("{h:?}: loop {a:?} workers {t}; ureq {b:?}\n"))
        .collect();
    for (h, a, threads, b) in &rows {
        assert_eq!(a, b, "{h:?}: the loop's outcome is not ureq's\n{table}");
        assert_eq!(*threads, 0, "{h:?}: a worker sent the loop's\n{table}");
        let want = match h {
            Close | NotifyAfterHandshake => ["io-error", "true", "0", "2", "0"],
            Reset => ["connect-error", "true", "0", "2", "0"],
            BodyCutByFin | BodyEndedByNotify | EarlyAnswer | HugeBody | NotifyMidBody => {
                ["200", "false", "0", "1", "1"]
            }
            _ => ["tls-error", "false", "1", "1", "0"],
        };
        assert_eq!(a, &want.map(String::from), "{h:?}\n{table}");
    }
    eprintln!("{table}");
}

/// A receiver that takes the ClientHello and says nothing, on its first connection: the
/// attempt ends at `connect_timeout_ms` — "TCP (and TLS) connect" (docs/ADMIN.md), and ureq's
/// path does so (measured: its retry 206 ms after the first connection, connect_timeout_ms
/// 200, timeout_ms 1000) — is retried with the same id on a new connection, and the one
/// queued behind it follows. Meanwhile another HTTPS destination gets its five at once.
#[test]
fn a_handshake_never_answered_times_out_at_connect_timeout_ms_and_delays_no_one_else() {
    let pki = Pki::new();
    let slow = Raw::start(pki.std(), |p| {
        if p.conn == 1 {
            if p.hello() {
                p.hang();
            }
            return;
        }
        while p.request().is_some() {
            p.send(&ok(200));
        }
    });
    let fine = Raw::healthy(pki.std());
    let d = Daemon::start(&cfg(
        &format!(
            r#""dnd_on": "{}", "dnd_off": "{}""#,
            slow.url("/slow?n=$remote"),
            fine.url("/fine?n=$remote")
        ),
        &pki.ca_file,
        &format!(r#""timeout_ms": 5000, "connect_timeout_ms": 1500, {QUICK}"#),
    ));
    let mut w = Wire::to(&d);
    w.emit("dnd_on", 0);
    w.emit("dnd_on", 1);
    let deadline = Instant::now() + PATIENCE;
    while slow.conns() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let t0 = Instant::now();
    for i in 0..5 {
        w.emit("dnd_off", i);
    }
    let got = fine.wait_for(5);
    let took = t0.elapsed();
    assert_eq!(order(&got), seq(0..5), "{got:#?}");
    assert!(
        took < Duration::from_millis(1200),
        "five to a healthy destination took {took:?} beside a silent handshake"
    );
    let got = slow.wait_for(2);
    let s = status_when(&d, "delivered", 7);
    assert_eq!(order(&got), ["0", "1"], "{got:#?}");
    assert_once_each(&got);
    assert!(got.iter().all(|g| g.conn == 2), "{got:#?}");
    let gap = got[0].at.duration_since(slow.accepted()[0]);
    assert!(
        gap >= Duration::from_millis(1400) && gap < Duration::from_millis(4000),
        "the retry came {gap:?} after the silent handshake began (connect_timeout_ms 1500, \
         timeout_ms 5000)"
    );
    assert_eq!(stat(&s, "retried"), 1, "{s}");
    assert_eq!(ev(&s, "dnd_on", "last"), "200", "{s}");
    assert_eq!(fine.conns(), 1);
    assert_eq!(workers(&d), 0, "a worker sent some");
}

// ---------------------------------------------------------------------------------------------
// Answers in odd records, on one kept connection

/// Answers cut into records of one byte (each its own write, and all in one write), a chunked
/// body with extensions and a trailer in records of one and three bytes, one record cut into
/// single-byte TCP writes, a KeyUpdate between head and body, then a plain one: each is a
/// complete answer, so all go over ONE
/// connection, delivered at the first attempt, in order, by the loop.
#[test]
fn answers_in_tiny_records_and_chunked_are_delivered_on_one_kept_connection() {
    let pki = Pki::new();
    let r = Raw::start(pki.std(), |p| {
        while let Some(g) = p.request() {
            let plain = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
            let chunked: &[u8] = b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n\
                5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n";
            match g.n.as_str() {
                "0" => p.send_records(plain, 1, true),
                "1" => p.send_records(plain, 1, false),
                "2" => p.send_records(chunked, 1, true),
                "3" => p.send_records(chunked, 3, false),
                "4" => {
                    // One record, its bytes in separate TCP writes.
                    let _ = p.tls.writer().write_all(plain);
                    for b in p.take_records() {
                        p.raw(&[b]);
                        std::thread::sleep(Duration::from_micros(200));
                    }
                }
                "5" => {
                    // A KeyUpdate (asking for the client's) between the head and the body.
                    p.send(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
                    p.tls.refresh_traffic_keys().expect("key update");
                    p.flush();
                    std::thread::sleep(Duration::from_millis(20));
                    p.send(b"hello");
                }
                _ => p.send(&ok(204)),
            }
        }
    });
    let d = Daemon::start(&cfg(
        &format!(r#""dnd_on": "{}""#, r.url("/tiny?n=$remote")),
        &pki.ca_file,
        QUICK,
    ));
    let mut w = Wire::to(&d);
    for i in 0..7 {
        w.emit("dnd_on", i);
    }
    let got = r.wait_for(7);
    let s = status_when(&d, "delivered", 7);
    assert_eq!(order(&got), seq(0..7), "{got:#?}");
    assert_once_each(&got);
    assert_eq!(stat(&s, "delivered"), 7, "{s}");
    assert_eq!(stat(&s, "retried"), 0, "{s}");
    assert_eq!(r.conns(), 1, "an answer's end was not seen: {got:#?}");
    assert_eq!(workers(&d), 0);
}

// ---------------------------------------------------------------------------------------------
// Kept connections the server ends

/// THE RACE over TLS: the server answers (keep-alive), and close_notify follows in the same
/// write — with the FIN too (corked: they leave together), or with the TCP connection left
/// open. The next notification is already waiting; the sender must see the close_notify and
/// send it on a new connection: no retry, each id once, in order.
#[test]
fn close_notify_right_after_each_answer_costs_no_retry() {
    std::thread::scope(|sc| {
        sc.spawn(|| close_notify_right_after_each_answer(true));
        sc.spawn(|| close_notify_right_after_each_answer(false));
    });
}

fn close_notify_right_after_each_answer(fin: bool) {
    let pki = Pki::new();
    let r = Raw::start(pki.std(), move |p| {
        if p.request().is_some() {
            // A little late, so the next notification is queued behind this one.
            std::thread::sleep(Duration::from_millis(100));
            p.cork(true);
            let _ = p.tls.writer().write_all(&ok(200));
            p.tls.send_close_notify();
            p.flush();
            if fin {
                let _ = p.s.shutdown(Shutdown::Write);
            } else {
                p.cork(false);
            }
            p.until_closed(Duration::from_secs(5));
        }
    });
    // A long back-off: a needless retry shows as a delay too.
    let d = Daemon::start(&cfg(
        &format!(r#""dnd_on": "{}""#, r.url("/race?n=$remote")),
        &pki.ca_file,
        r#""backoff_initial_ms": 2000, "backoff_max_ms": 2000"#,
    ));
    let mut w = Wire::to(&d);
    let t0 = Instant::now();
    for i in 0..6 {
        w.emit("dnd_on", i);
    }
    let got = r.wait_for(6);
    let s = status_when(&d, "delivered", 6);
    let took = t0.elapsed();
    let what = if fin {
        "close_notify+FIN"
    } else {
        "close_notify"
    };
    assert_eq!(order(&got), seq(0..6), "{what}: {got:#?}");
    assert_once_each(&got);
    assert_eq!(stat(&s, "delivered"), 6, "{what}: {s}");
    assert_eq!(
        stat(&s, "retried"),
        0,
        "{what}: a connection the server had closed was used again: {s}\nlog:\n{}",
        d.log()
    );
    assert!(got.iter().enumerate().all(|(i, g)| g.conn == i + 1));
    assert!(took < Duration::from_secs(4), "{what}: took {took:?}");
    assert_eq!(workers(&d), 0);
}

/// What the server does with a kept connection after 150 ms idle.
#[derive(Clone, Copy, Debug)]
enum Idle {
    /// close_notify, the TCP connection left open.
    Notify,
    /// close_notify from a TLS 1.2 server, the TCP connection left open.
    Notify12,
    /// FIN without close_notify.
    Fin,
    /// A reset.
    Reset,
    /// A TLS 1.3 KeyUpdate (a record with no data): the connection stays usable.
    KeyUpdate,
}

fn idle_case(how: Idle) -> Result<(), String> {
    let pki = Pki::new();
    let config = match how {
        Idle::Notify12 => pki.server(&["127.0.0.1"], TLS12_ONLY),
        _ => pki.std(),
    };
    let r = Raw::start(config, move |p| {
        while p.request().is_some() {
            p.send(&ok(200));
            if p.speaks_within(Duration::from_millis(150)) {
                continue;
            }
            match how {
                Idle::Notify | Idle::Notify12 => {
                    p.tls.send_close_notify();
                    p.flush();
                }
                Idle::Fin => {
                    let _ = p.s.shutdown(Shutdown::Write);
                }
                Idle::Reset => {
                    p.reset_on_close();
                    return;
                }
                Idle::KeyUpdate => {
                    p.tls.refresh_traffic_keys().expect("key update");
                    p.flush();
                    continue;
                }
            }
            p.until_closed(Duration::from_secs(5));
            return;
        }
    });
    let d = Daemon::start(&cfg(
        &format!(r#""dnd_on": "{}""#, r.url("/idle?n=$remote")),
        &pki.ca_file,
        QUICK,
    ));
    let mut w = Wire::to(&d);
    for i in 0..4 {
        w.emit("dnd_on", i);
        r.wait_for(i + 1);
        status_when(&d, "delivered", i as u64 + 1);
        // Longer than the server's idle time.
        std::thread::sleep(Duration::from_millis(350));
    }
    let s = d.status();
    let got = r.got();
    let want_conns = match how {
        Idle::KeyUpdate => 1,
        _ => 4,
    };
    let ok = order(&got) == seq(0..4)
        && stat(&s, "retried") == 0
        && stat(&s, "delivered") == 4
        && r.conns() == want_conns
        && workers(&d) == 0;
    assert_once_each(&got);
    match ok {
        true => Ok(()),
        false => Err(format!(
            "{how:?}: {} connections (want {want_conns}), arrivals {:?}, status:\n{s}",
            r.conns(),
            order(&got)
        )),
    }
}

/// The server ends a kept connection while it is idle — close_notify (TLS 1.3 or 1.2) with
/// the TCP connection left open, a FIN without close_notify, a reset — or sends a KeyUpdate
/// (no data). The next notification goes on a new connection (on the same one after the
/// KeyUpdate), at its first attempt, once.
#[test]
fn a_kept_connection_the_server_ends_while_idle_loses_nothing() {
    let cases = [
        Idle::Notify,
        Idle::Notify12,
        Idle::Fin,
        Idle::Reset,
        Idle::KeyUpdate,
    ];
    let errors: Vec<String> = each(&cases, |&c| idle_case(c))
        .into_iter()
        .filter_map(Result::err)
        .collect();
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

/// A server that speaks TLS 1.2 only: ten notifications, one connection, by the loop.
#[test]
fn a_tls12_only_server_gets_everything_on_one_connection() {
    let pki = Pki::new();
    let r = Raw::healthy(pki.server(&["127.0.0.1"], TLS12_ONLY));
    let d = Daemon::start(&cfg(
        &format!(r#""dnd_on": "{}""#, r.url("/v12?n=$remote")),
        &pki.ca_file,
        QUICK,
    ));
    let mut w = Wire::to(&d);
    for i in 0..10 {
        w.emit("dnd_on", i);
    }
    let got = r.wait_for(10);
    let s = status_when(&d, "delivered", 10);
    assert_eq!(order(&got), seq(0..10), "{got:#?}");
    assert!(got
        .iter()
        .all(|g| g.version == Some(rustls::ProtocolVersion::TLSv1_2)));
    assert_eq!(stat(&s, "retried"), 0, "{s}");
    assert_eq!(r.conns(), 1);
    assert_eq!(workers(&d), 0);
}

// ---------------------------------------------------------------------------------------------
// A receiver killed, many destinations, the daemon reloaded or stopped mid-handshake

/// A stream of 30 notifications; the receiver dies (its listener and every connection gone at
/// once, as at a SIGKILL) in the middle and comes back on the same port (with a new
/// certificate and no memory of the sessions it gave out). Every one arrives,
/// in order; a repeat only of the one in flight at the kill (its id, right after itself).
#[test]
fn receiver_killed_mid_stream_loses_nothing() {
    let pki = Pki::new();
    let config = pki.std();
    let first = Raw::healthy(Arc::clone(&config));
    let addr = first.addr;
    let d = Daemon::start(&cfg(
        &format!(r#""dnd_on": "{}""#, first.url("/k?n=$remote")),
        &pki.ca_file,
        &format!(r#""timeout_ms": 1500, {QUICK}"#),
    ));
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
    first.wait_for(10);
    let before = first.kill();
    std::thread::sleep(Duration::from_millis(150));
    let l = TcpListener::bind(addr).expect("the same port again");
    // Another certificate and an empty session cache: the client's resumption fails, a full
    // handshake follows.
    drop(config);
    let second = Raw::on(
        l,
        pki.std(),
        Arc::new(|p: &mut Peer| {
            while p.request().is_some() {
                p.send(&ok(200));
            }
        }),
    );
    pump.join().expect("pump");
    let s = status_when(&d, "delivered", 30);
    let after = second.wait_for(30 - before.len());
    let all: Vec<Got> = before.iter().chain(after.iter()).cloned().collect();
    assert_eq!(folded(&all), seq(0..30), "{all:#?}");
    assert!(
        all.len() <= 31,
        "more than the one in flight repeated: {all:#?}"
    );
    assert_eq!(stat(&s, "delivered"), 30, "{s}");
    assert_eq!(workers(&d), 0);
}

/// Twelve HTTPS destinations (more than LOOP_CONNS = 8): six take the ClientHello and never
/// answer, six are healthy and get 5 notifications each. Every healthy one gets everything,
/// in order, once, promptly: the silent handshakes hold connections and delay nobody else.
#[test]
fn more_https_destinations_than_loop_connections_with_some_handshakes_hanging() {
    let pki = Pki::new();
    let hang: Vec<Raw> = (0..6)
        .map(|_| {
            Raw::start(pki.std(), |p| {
                if p.hello() {
                    p.hang();
                }
            })
        })
        .collect();
    let fine: Vec<Raw> = (0..6).map(|_| Raw::healthy(pki.std())).collect();
    // The port comes as `$remote`, the sequence number as `$display_remote`.
    let d = Daemon::start(&cfg(
        r#""dnd_on": "https://127.0.0.1:$remote/m?n=$display_remote""#,
        &pki.ca_file,
        &format!(r#""connect_timeout_ms": 5000, "timeout_ms": 6000, {QUICK}"#),
    ));
    let mut w = Wire::to(&d);
    let send = |w: &mut Wire, r: &Raw, n: usize| {
        w.send(
            "dnd_on",
            &format!("remote={} display_remote={n}", r.addr.port()),
        )
    };
    // The hanging ones first: they take the loop's connections before the healthy ones come.
    for h in &hang {
        for n in 0..2 {
            send(&mut w, h, n);
        }
    }
    let deadline = Instant::now() + PATIENCE;
    while hang.iter().any(|h| h.conns() == 0) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let t0 = Instant::now();
    for n in 0..5 {
        for f in &fine {
            send(&mut w, f, n);
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
        "30 notifications to healthy destinations took {took:?} beside silent handshakes"
    );
    let s = status_when(&d, "delivered", 30);
    assert_eq!(stat(&s, "delivered"), 30, "{s}");
    for h in &hang {
        assert_eq!(
            h.conns(),
            1,
            "a retry before timeout_ms, or the second one sent"
        );
    }
    // The silent handshakes hold the loop's connections, not six workers (besides the
    // healthy destinations' turns).
    assert!(workers(&d) <= 6, "{} workers", workers(&d));
}

/// A kept connection, then SIGHUP with a `ca_file` that does not trust the receiver: the next
/// notification is refused (tls-error, failed), as on ureq's path (a `{x}` URL): a connection
/// verified under the old trust is not used under the new one.
#[test]
fn reload_with_a_ca_file_that_no_longer_trusts_is_obeyed_on_kept_connections() {
    let (pki, other) = (Pki::new(), Pki::new());
    let (on_loop, on_ureq) = (Raw::healthy(pki.std()), Raw::healthy(pki.std()));
    let config = |ca: &std::path::Path| {
        cfg(
            &format!(
                r#""dnd_on": "{}", "dnd_off": "{}""#,
                on_loop.url("/h?n=$remote"),
                on_ureq.url("/h{x}?n=$remote")
            ),
            ca,
            QUICK,
        )
    };
    let d = Daemon::start(&config(&pki.ca_file));
    let mut w = Wire::to(&d);
    w.emit("dnd_on", 0);
    on_loop.wait_for(1);
    status_when(&d, "delivered", 1);
    assert_eq!(workers(&d), 0, "the loop's was sent by a worker");
    w.emit("dnd_off", 0);
    on_loop.wait_for(1);
    on_ureq.wait_for(1);
    status_when(&d, "delivered", 2);
    d.write_config(&config(&other.ca_file));
    d.sighup();
    assert!(d.wait_log("config reloaded", PATIENCE), "{}", d.log());
    w.emit("dnd_off", 1);
    w.emit("dnd_on", 1);
    let s = {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let s = d.status();
            let n = |e, k| ev(&s, e, k).parse::<u64>().unwrap_or(0);
            let done = |e| n(e, "delivered") + n(e, "failed") >= 2;
            if done("dnd_on") && done("dnd_off") || Instant::now() > deadline {
                break s;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    assert_eq!(ev(&s, "dnd_off", "last"), "tls-error", "ureq's path: {s}");
    assert_eq!(
        ev(&s, "dnd_on", "last"),
        "tls-error",
        "the loop sent on a connection the new ca_file does not trust: {s}\n{:#?}",
        on_loop.got()
    );
    assert_eq!(on_loop.got().len(), 1, "{:#?}", on_loop.got());
}

/// SIGHUP (a shorter timeout_ms, the same CA under another path) while a handshake is held
/// back 600 ms: the attempt in flight completes under the config it started with and is
/// delivered at its first attempt; the next follows; nothing lost.
#[test]
fn reload_with_a_handshake_in_flight_loses_nothing() {
    let pki = Pki::new();
    let r = Raw::start(pki.std(), |p| {
        if p.conn == 1 {
            std::thread::sleep(Duration::from_millis(600));
        }
        while p.request().is_some() {
            p.send(&ok(200));
        }
    });
    let config = |ca: &std::path::Path, timeout: u32| {
        cfg(
            &format!(r#""dnd_on": "{}""#, r.url("/re?n=$remote")),
            ca,
            &format!(r#""timeout_ms": {timeout}, {QUICK}"#),
        )
    };
    let d = Daemon::start(&config(&pki.ca_file, 3000));
    let mut w = Wire::to(&d);
    w.emit("dnd_on", 0);
    w.emit("dnd_on", 1);
    let deadline = Instant::now() + PATIENCE;
    while r.conns() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let copy = d
        .dir()
        .write("ca-copy.pem", std::fs::read(&pki.ca_file).expect("CA"));
    d.write_config(&config(&copy, 2000));
    d.sighup();
    assert!(d.wait_log("config reloaded", PATIENCE), "{}", d.log());
    let got = r.wait_for(2);
    let s = status_when(&d, "delivered", 2);
    assert_eq!(order(&got), ["0", "1"], "{got:#?}");
    assert_once_each(&got);
    assert_eq!(stat(&s, "retried"), 0, "{s}");
    assert_eq!(workers(&d), 0);
}

/// SIGTERM while a handshake is held back 400 ms: the daemon waits for the attempt (within
/// shutdown_flush_ms), it is delivered, exit 0 with the outbox empty. With a handshake never
/// answered, it exits at the flush time, saying one was left.
#[test]
fn sigterm_with_a_handshake_in_flight() {
    let pki = Pki::new();
    let slow = Raw::start(pki.std(), |p| {
        std::thread::sleep(Duration::from_millis(400));
        while p.request().is_some() {
            p.send(&ok(200));
        }
    });
    let silent = Raw::start(pki.std(), |p| {
        if p.hello() {
            p.hang();
        }
    });
    let run = |r: &Raw, flush: u32| {
        let mut d = Daemon::start(&cfg(
            &format!(r#""dnd_on": "{}""#, r.url("/term?n=$remote")),
            &pki.ca_file,
            &format!(r#""shutdown_flush_ms": {flush}, "timeout_ms": 20000, {QUICK}"#),
        ));
        let mut w = Wire::to(&d);
        w.emit("dnd_on", 0);
        let deadline = Instant::now() + PATIENCE;
        while r.conns() == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(workers(&d), 0, "the loop's attempt is a worker's");
        let t0 = Instant::now();
        d.sigterm();
        let st = d.wait_exit(PATIENCE).expect("exit");
        assert_eq!(st.code(), Some(0), "{}", d.log());
        (t0.elapsed(), d.log())
    };
    let (took, log) = run(&slow, 5000);
    assert_eq!(order(&slow.got()), ["0"]);
    assert!(log.contains("stopped: outbox empty"), "{log}");
    assert!(took < Duration::from_millis(3000), "{took:?}");
    let (took, log) = run(&silent, 700);
    assert!(
        took >= Duration::from_millis(600) && took < Duration::from_millis(4000),
        "stopped {took:?} after SIGTERM (flush 700 ms, attempt timeout 20 s)"
    );
    assert!(
        log.contains("stopping with 1 notification(s) not delivered"),
        "{log}"
    );
}

/// A name (`https://localhost:PORT`): a worker looks it up (one worker thread then), the loop
/// sends, over one kept connection for all of them.
#[test]
fn a_name_is_looked_up_by_a_worker_then_sent_by_the_loop_on_one_connection() {
    let r = Receiver::start_tls();
    let url = format!("https://localhost:{}/name?n=$remote", r.port());
    let d = Daemon::start(&config(&format!(r#""dnd_on": "{url}""#), &r));
    d.emit_ok(&["dnd_on", "remote=0"]);
    r.wait_for(1, PATIENCE);
    status_when(&d, "delivered", 1);
    let woken = worker_wakeups(&d);
    for i in 1..8 {
        d.emit_ok(&["dnd_on", &format!("remote={i}")]);
    }
    let got = r.wait_for(8, PATIENCE);
    let order: Vec<_> = got.iter().map(|q| q.query("n").unwrap_or("?")).collect();
    let want: Vec<String> = (0..8).map(|i| i.to_string()).collect();
    assert_eq!(order, want);
    assert!(got.iter().all(|q| q.tls));
    let s = status_when(&d, "delivered", 8);
    assert_eq!(stat(&s, "retried"), 0, "{s}");
    assert_eq!(r.connections(), 1, "one TLS connection for the eight");
    assert_eq!(workers(&d), 1, "the lookup's worker, and no other");
    let more = worker_wakeups(&d) - woken;
    assert!(
        more <= 1,
        "the worker was woken {more} times for the seven after the lookup"
    );
}

/// The outcome of one notification to `https://{host}:PORT/h` on the loop's path and on
/// ureq's (`/h{x}`), from a healthy receiver whose certificate names `names`: (last, failed,
/// requests, their `host` header without the port) each, and the delivery workers started
/// when the loop's had its outcome.
fn by_host(host: &str, names: &[&str]) -> ([String; 4], usize, [String; 4]) {
    let pki = Pki::new();
    let config = pki.server(names, rustls::ALL_VERSIONS);
    let bind = if host.contains(':') {
        "[::1]:0"
    } else {
        "127.0.0.1:0"
    };
    let serve = |p: &mut Peer| {
        while p.request().is_some() {
            p.send(&ok(200));
        }
    };
    let listener = || TcpListener::bind(bind).expect("bind");
    let on_loop = Raw::on(listener(), Arc::clone(&config), Arc::new(serve));
    let on_ureq = Raw::on(listener(), config, Arc::new(serve));
    let url = |r: &Raw, path: &str| format!("https://{host}:{}{path}?n=$remote", r.addr.port());
    let d = Daemon::start(&cfg(
        &format!(
            r#""dnd_on": "{}", "dnd_off": "{}""#,
            url(&on_loop, "/h"),
            url(&on_ureq, "/h{x}")
        ),
        &pki.ca_file,
        QUICK,
    ));
    let mut w = Wire::to(&d);
    let figures = |event: &str, r: &Raw| {
        let s = ev_done(&d, event);
        let hosts: Vec<String> = r
            .got()
            .iter()
            .map(|g| g.host.replace(&format!(":{}", r.addr.port()), ":PORT"))
            .collect();
        [
            ev(&s, event, "last"),
            ev(&s, event, "failed"),
            r.got().len().to_string(),
            hosts.join(","),
        ]
    };
    w.emit("dnd_on", 0);
    let a = figures("dnd_on", &on_loop);
    let threads = workers(&d);
    w.emit("dnd_off", 0);
    let b = figures("dnd_off", &on_ureq);
    (a, threads, b)
}

/// Hosts written in other ways: an IPv6 literal (certificate for `::1`), a name in capitals,
/// a name with the root's dot (`localhost.`), a name the certificate does not have, and
/// `127.1` (an address to the resolver, not to the URL parser). Each ends on the loop's path
/// as on ureq's, with the same `host` header; the loop sends what it can (IPv6: no worker at
/// all).
#[test]
fn hosts_written_in_other_ways_end_as_on_the_workers_path() {
    let v6 = TcpListener::bind("[::1]:0").is_ok();
    let cases: Vec<(&str, &[&str], &str)> = vec![
        ("[::1]", &["::1"], "200"),
        // musl looks names up in /etc/hosts case-sensitively: there both paths fail alike.
        (
            "LocalHost",
            &["localhost"],
            if cfg!(target_env = "musl") { "" } else { "200" },
        ),
        ("localhost.", &["localhost"], ""),
        ("localhost", &["127.0.0.1", "example.com"], "tls-error"),
        ("127.1", &["127.0.0.1"], ""),
    ];
    let cases: Vec<_> = cases
        .into_iter()
        .filter(|c| v6 || !c.0.contains(':'))
        .collect();
    let rows: Vec<_> = each(&cases, |(host, names, _)| by_host(host, names));
    let table: String = cases
        .iter()
        .zip(&rows)
        .map(|((h, ..), (a, t, b))| format!("{h}: loop {a:?} workers {t}; ureq {b:?}\n"))
        .collect();
    eprintln!("{table}");
    for ((host, _, want), (a, threads, b)) in cases.iter().zip(&rows) {
        assert_eq!(a, b, "{host}: the loop's outcome is not ureq's\n{table}");
        if !want.is_empty() {
            assert_eq!(a[0], *want, "{host}\n{table}");
        }
        let most = if host.starts_with('[') { 0 } else { 1 };
        assert!(
            *threads <= most,
            "{host}: a worker sent the loop's\n{table}"
        );
    }
}

/// A TLS 1.3 server that sends its answer as half-RTT data (right after its Finished, before
/// the client's Finished and request). ureq's path writes the request, then reads that answer:
/// delivered, and the request reached the receiver. The loop's must not count a notification
/// delivered whose request never left: the receiver must have it too.
#[test]
fn an_answer_sent_before_the_request_does_not_make_an_unsent_notification_delivered() {
    let (h, a, threads, b) = outcomes(Hostile::EarlyAnswer);
    assert_eq!(b[4], "1", "ureq's path: {b:?}");
    assert_eq!(threads, 0);
    assert_eq!(
        a, b,
        "{h:?}: loop [last, retried, failed, connections, requests read] {a:?}, ureq's {b:?}"
    );
}

/// A server whose every record — the handshake's too — carries at most 32 bytes (its
/// max_fragment_size), TLS 1.3 and TLS 1.2: the handshake arrives in dozens of records per
/// read, the answers in several; and a TLS 1.3 server that takes only P-384 for the key
/// exchange (the client's first key share is X25519): a HelloRetryRequest, a second
/// ClientHello. Ten notifications each, one connection, the loop's.
#[test]
fn small_records_and_a_hello_retry_request_get_everything_on_one_connection() {
    std::thread::scope(|sc| {
        for case in 0..3 {
            sc.spawn(move || {
                let pki = Pki::new();
                let c = match case {
                    0 | 1 => {
                        let v = [TLS13_ONLY, TLS12_ONLY][case];
                        let mut c = pki.server_with(&["127.0.0.1"], v, false);
                        c.max_fragment_size = Some(32);
                        c
                    }
                    _ => {
                        let mut p = rustls::crypto::ring::default_provider();
                        p.kx_groups = vec![rustls::crypto::ring::kx_group::SECP384R1];
                        pki.server_from(p, &["127.0.0.1"], TLS13_ONLY, false)
                    }
                };
                let r = Raw::healthy(Arc::new(c));
                let d = Daemon::start(&cfg(
                    &format!(r#""dnd_on": "{}""#, r.url("/odd?n=$remote")),
                    &pki.ca_file,
                    QUICK,
                ));
                let mut w = Wire::to(&d);
                for i in 0..10 {
                    w.emit("dnd_on", i);
                }
                let got = r.wait_for(10);
                let s = status_when(&d, "delivered", 10);
                assert_eq!(order(&got), seq(0..10), "{got:#?}");
                assert_eq!(stat(&s, "retried"), 0, "{s}");
                assert_eq!(r.conns(), 1);
                assert_eq!(workers(&d), 0);
            });
        }
    });
}

/// One port, two events: `http://` and `https://` to the same host and port (a receiver that
/// speaks plain HTTP there). The `http://` one is delivered and its connection kept; the
/// `https://` one must not be written in clear on that connection: it must end as on ureq's
/// path (the receiver answers the ClientHello in plain HTTP: tls-error), and the receiver must
/// never read its request (its credentials) in clear.
#[test]
fn an_https_notification_never_goes_in_clear_on_a_kept_plain_connection() {
    let r = Receiver::start();
    let pki = Pki::new();
    let url = |scheme: &str, path: &str| format!("{scheme}://{}{path}", r.host_port());
    let d = Daemon::start(&cfg(
        &format!(
            r#""dnd_on": "{}", "dnd_off": {{"url": "{}", "username": "u", "password": "Secr3t"}}"#,
            url("http", "/plain?n=$remote"),
            url("https", "/secret?n=$remote")
        ),
        &pki.ca_file,
        QUICK,
    ));
    d.emit_ok(&["dnd_on", "remote=0"]);
    r.wait_for(1, PATIENCE);
    status_when(&d, "delivered", 1);
    d.emit_ok(&["dnd_off", "remote=1"]);
    let s = ev_done(&d, "dnd_off");
    let secret: Vec<String> = r
        .requests()
        .iter()
        .filter(|q| q.query("n") == Some("1"))
        .map(|q| format!("{q:?}"))
        .collect();
    assert!(
        secret.is_empty(),
        "the https:// notification arrived in clear: {secret:#?}\n{s}"
    );
    assert_eq!(ev(&s, "dnd_off", "last"), "tls-error", "{s}");
    assert_eq!(workers(&d), 0, "the loop did not send them");
}

/// The other way round: a receiver that speaks TLS, an `https://` event (its connection kept)
/// and an `http://` one to the same host and port. The `http://` one ends as on ureq's path
/// (plain HTTP to a TLS server: no answer it can read), not delivered over the kept TLS
/// connection.
#[test]
fn an_http_notification_does_not_ride_a_kept_tls_connection() {
    let pki = Pki::new();
    let r = Raw::healthy(pki.std());
    let d = Daemon::start(&cfg(
        &format!(
            r#""dnd_on": "{}", "dnd_off": "http://{}/plain?n=$remote""#,
            r.url("/tls?n=$remote"),
            r.addr
        ),
        &pki.ca_file,
        &format!(r#""timeout_ms": 1000, {QUICK}"#),
    ));
    d.emit_ok(&["dnd_on", "remote=0"]);
    r.wait_for(1);
    status_when(&d, "delivered", 1);
    assert_eq!(workers(&d), 0, "the loop did not send the https:// one");
    d.emit_ok(&["dnd_off", "remote=1"]);
    let s = ev_done(&d, "dnd_off");
    assert_ne!(ev(&s, "dnd_off", "last"), "200", "{s}\n{:#?}", r.got());
    assert_eq!(r.got().len(), 1, "{:#?}", r.got());
}

/// The record layer of a TLS 1.2 ChaCha20-Poly1305 connection taken over from rustls (its
/// secrets extracted): the test writes records rustls's server API cannot (a HelloRequest).
struct Records {
    enc: Box<dyn rustls::crypto::cipher::MessageEncrypter>,
    dec: Box<dyn rustls::crypto::cipher::MessageDecrypter>,
    tx: u64,
    rx: u64,
    raw: Vec<u8>,
}

impl Records {
    /// The same for a TLS 1.3 ChaCha20-Poly1305 connection (session tickets after the
    /// handshake, which rustls's server API sends only with it).
    fn take_over13(tls: rustls::ServerConnection) -> Records {
        use rustls::ConnectionTrafficSecrets::Chacha20Poly1305;
        let rustls::SupportedCipherSuite::Tls13(suite) =
            rustls::crypto::ring::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256
        else {
            panic!("a TLS 1.3 suite")
        };
        let s = tls.dangerous_extract_secrets().expect("secrets");
        let (
            (tx, Chacha20Poly1305 { key: tk, iv: ti }),
            (rx, Chacha20Poly1305 { key: rk, iv: ri }),
        ) = (s.tx, s.rx)
        else {
            panic!("ChaCha20-Poly1305 expected")
        };
        Records {
            enc: suite.aead_alg.encrypter(tk, ti),
            dec: suite.aead_alg.decrypter(rk, ri),
            tx,
            rx,
            raw: Vec::new(),
        }
    }

    fn take_over(tls: rustls::ServerConnection) -> Records {
        use rustls::ConnectionTrafficSecrets::Chacha20Poly1305;
        let rustls::SupportedCipherSuite::Tls12(suite) =
            rustls::crypto::ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
        else {
            panic!("a TLS 1.2 suite")
        };
        let s = tls.dangerous_extract_secrets().expect("secrets");
        let (
            (tx, Chacha20Poly1305 { key: tk, iv: ti }),
            (rx, Chacha20Poly1305 { key: rk, iv: ri }),
        ) = (s.tx, s.rx)
        else {
            panic!("ChaCha20-Poly1305 expected")
        };
        Records {
            enc: suite.aead_alg.encrypter(tk, ti.as_ref(), &[]),
            dec: suite.aead_alg.decrypter(rk, ri.as_ref()),
            tx,
            rx,
            raw: Vec::new(),
        }
    }

    fn write(&mut self, s: &mut TcpStream, typ: rustls::ContentType, payload: &[u8]) {
        use rustls::crypto::cipher::{OutboundChunks, OutboundPlainMessage};
        let m = OutboundPlainMessage {
            typ,
            version: rustls::ProtocolVersion::TLSv1_2,
            payload: OutboundChunks::Single(payload),
        };
        let rec = self.enc.encrypt(m, self.tx).expect("encrypt").encode();
        self.tx += 1;
        let _ = s.write_all(&rec);
    }

    /// The next record, decrypted: (type, plain text). `None` at the end of the stream.
    fn read(&mut self, s: &mut TcpStream) -> Option<(rustls::ContentType, Vec<u8>)> {
        let mut b = [0u8; 4096];
        loop {
            if self.raw.len() >= 5 {
                let len = u16::from_be_bytes([self.raw[3], self.raw[4]]) as usize;
                if self.raw.len() >= 5 + len {
                    let typ = rustls::ContentType::from(self.raw[0]);
                    let mut body: Vec<u8> = self.raw.drain(..5 + len).skip(5).collect();
                    let m = rustls::crypto::cipher::InboundOpaqueMessage::new(
                        typ,
                        rustls::ProtocolVersion::TLSv1_2,
                        &mut body,
                    );
                    let plain = self.dec.decrypt(m, self.rx).ok()?;
                    self.rx += 1;
                    return Some((plain.typ, plain.payload.to_vec()));
                }
            }
            match s.read(&mut b) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.raw.extend_from_slice(&b[..n]),
            }
        }
    }
}

/// A TLS 1.2 server that sends a HelloRequest (a renegotiation request) on an idle kept
/// connection: the client declines (a warning alert, no_renegotiation) and the connection
/// stays usable: the next notification goes on it, delivered at its first attempt.
#[test]
fn a_hello_request_on_an_idle_tls12_connection_costs_nothing() {
    let pki = Pki::new();
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites =
        vec![rustls::crypto::ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256];
    let mut c = pki.server_from(provider, &["127.0.0.1"], TLS12_ONLY, false);
    c.enable_secret_extraction = true;
    let c = Arc::new(c);
    let spare = Arc::clone(&c);
    let alerts = Arc::new(Mutex::new(Vec::<Vec<u8>>::new()));
    let seen = Arc::clone(&alerts);
    let r = Raw::start(c, move |p| {
        if p.request().is_none() {
            return;
        }
        p.send(&ok(200));
        if p.speaks_within(Duration::from_millis(100)) {
            return;
        }
        let _ = p.s.set_read_timeout(Some(PATIENCE));
        let tls = std::mem::replace(
            &mut p.tls,
            rustls::ServerConnection::new(Arc::clone(&spare)).expect("spare"),
        );
        let mut rec = Records::take_over(tls);
        // HelloRequest: handshake type 0, empty body.
        rec.write(&mut p.s, rustls::ContentType::Handshake, &[0, 0, 0, 0]);
        while let Some((typ, plain)) = rec.read(&mut p.s) {
            match typ {
                rustls::ContentType::Alert => seen.lock().expect("alerts").push(plain),
                rustls::ContentType::ApplicationData => {
                    p.plain.extend_from_slice(&plain);
                    if find(&p.plain, b"\r\n\r\n").is_some() {
                        // `request` finds the whole request in `plain` (a GET).
                        let _ = p.request();
                        rec.write(&mut p.s, rustls::ContentType::ApplicationData, &ok(200));
                    }
                }
                _ => return,
            }
        }
    });
    let d = Daemon::start(&cfg(
        &format!(r#""dnd_on": "{}""#, r.url("/hello?n=$remote")),
        &pki.ca_file,
        QUICK,
    ));
    let mut w = Wire::to(&d);
    w.emit("dnd_on", 0);
    r.wait_for(1);
    status_when(&d, "delivered", 1);
    std::thread::sleep(Duration::from_millis(400));
    w.emit("dnd_on", 1);
    let got = r.wait_for(2);
    let s = status_when(&d, "delivered", 2);
    assert_eq!(order(&got), ["0", "1"], "{got:#?}");
    assert_eq!(stat(&s, "retried"), 0, "{s}");
    assert_eq!(
        r.conns(),
        1,
        "not reused after the HelloRequest; alerts {:?}",
        alerts.lock().expect("alerts")
    );
    // The client's answer: warning (1), no_renegotiation (100).
    assert_eq!(*alerts.lock().expect("alerts"), [vec![1u8, 100]]);
    assert_eq!(workers(&d), 0);
}

/// Takes a TLS 1.3 ChaCha20-Poly1305 connection over from rustls and writes NewSessionTicket
/// messages (600 to a record) for `for_`, or until the client goes. `started` is set at the
/// first record.
fn flood_tickets(
    tls: rustls::ServerConnection,
    s: &mut TcpStream,
    for_: Duration,
    started: &std::sync::atomic::AtomicBool,
) {
    use rustls::crypto::cipher::{OutboundChunks, OutboundPlainMessage};
    use rustls::ConnectionTrafficSecrets::Chacha20Poly1305;
    let rustls::SupportedCipherSuite::Tls13(suite) =
        rustls::crypto::ring::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256
    else {
        panic!("a TLS 1.3 suite")
    };
    let secrets = tls.dangerous_extract_secrets().expect("secrets");
    let (mut seq, Chacha20Poly1305 { key, iv }) = secrets.tx else {
        panic!("ChaCha20-Poly1305 expected")
    };
    let mut enc = suite.aead_alg.encrypter(key, iv);
    let t0 = Instant::now();
    let mut n: u32 = 0;
    while t0.elapsed() < for_ {
        let msgs = session_tickets_from(n, 600);
        n = n.wrapping_add(600);
        let m = OutboundPlainMessage {
            typ: rustls::ContentType::Handshake,
            version: rustls::ProtocolVersion::TLSv1_2,
            payload: OutboundChunks::Single(&msgs),
        };
        let rec = enc.encrypt(m, seq).expect("encrypt").encode();
        seq += 1;
        started.store(true, std::sync::atomic::Ordering::SeqCst);
        if s.write_all(&rec).is_err() {
            return;
        }
    }
}

/// `count` TLS 1.3 NewSessionTicket messages (26 bytes each), numbered from `after + 1`.
fn session_tickets_from(after: u32, count: usize) -> Vec<u8> {
    let mut msgs = Vec::with_capacity(26 * count);
    let mut n = after;
    for _ in 0..count {
        n = n.wrapping_add(1);
        // new_session_ticket (4), 22 bytes: lifetime, age_add, nonce<1>, ticket<8>, no
        // extensions.
        msgs.extend_from_slice(&[4, 0, 0, 22]);
        msgs.extend_from_slice(&3600u32.to_be_bytes());
        msgs.extend_from_slice(&n.to_be_bytes());
        msgs.extend_from_slice(&[1, n as u8, 0, 8]);
        msgs.extend_from_slice(&u64::from(n).to_be_bytes());
        msgs.extend_from_slice(&[0, 0]);
    }
    msgs
}

/// A receiver that, once its kept connection is idle, floods it with TLS 1.3 session tickets
/// (records without data, which the client takes in while it checks an idle connection) for
/// three seconds. Another HTTPS destination's notifications meanwhile must go at once: the
/// loop must not spend itself on one idle connection (the plain path peeks one byte).
#[test]
fn a_receiver_flooding_an_idle_connection_with_session_tickets_delays_no_one_else() {
    ticket_flood(true);
}

/// The same flood instead of the answer to the second notification, while its attempt waits
/// for the answer: the loop reads a bounded amount per wake-up (READS_PER_WAKE), so the other
/// destination's notifications still go at once.
#[test]
fn a_receiver_flooding_session_tickets_instead_of_an_answer_delays_no_one_else() {
    ticket_flood(false);
}

fn ticket_flood(idle: bool) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let pki = Pki::new();
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites =
        vec![rustls::crypto::ring::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256];
    let mut c = pki.server_from(provider, &["127.0.0.1"], TLS13_ONLY, false);
    c.enable_secret_extraction = true;
    c.send_tls13_tickets = 0;
    let c = Arc::new(c);
    let spare = Arc::clone(&c);
    let started = Arc::new(AtomicBool::new(false));
    let go = Arc::clone(&started);
    let flood = Raw::start(c, move |p| {
        if p.request().is_none() {
            return;
        }
        p.send(&ok(200));
        if idle {
            if p.speaks_within(Duration::from_millis(150)) {
                return;
            }
        } else if p.request().is_none() {
            return;
        }
        let tls = std::mem::replace(
            &mut p.tls,
            rustls::ServerConnection::new(Arc::clone(&spare)).expect("spare"),
        );
        flood_tickets(tls, &mut p.s, Duration::from_secs(3), &go);
        p.until_closed(Duration::from_secs(5));
    });
    let fine = Raw::healthy(pki.std());
    let d = Daemon::start(&cfg(
        &format!(
            r#""dnd_on": "{}", "dnd_off": "{}""#,
            flood.url("/flood?n=$remote"),
            fine.url("/fine?n=$remote")
        ),
        &pki.ca_file,
        QUICK,
    ));
    let mut w = Wire::to(&d);
    w.emit("dnd_on", 0);
    flood.wait_for(1);
    if !idle {
        status_when(&d, "delivered", 1);
        w.emit("dnd_on", 1);
    }
    let deadline = Instant::now() + PATIENCE;
    while !started.load(Ordering::SeqCst) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(100));
    let t0 = Instant::now();
    w.emit("dnd_off", 0);
    let answered = t0.elapsed();
    for i in 1..5 {
        w.emit("dnd_off", i);
    }
    let got = fine.wait_for(5);
    let took = t0.elapsed();
    assert_eq!(order(&got), seq(0..5), "{got:#?}");
    assert!(
        took < Duration::from_millis(1000),
        "five to a healthy destination took {took:?} while another flooded its connection \
         (idle: {idle}; the daemon answered the first emit after {answered:?})"
    );
    assert_eq!(workers(&d), 0, "the loop did not send them");
}

/// No `ca_file`: the loop trusts the webpki roots, as ureq does — the test CA is not among
/// them, so both paths refuse the receiver (tls-error, failed, not retried, nothing read).
#[test]
fn without_a_ca_file_the_test_ca_is_refused_on_both_paths() {
    let pki = Pki::new();
    let (on_loop, on_ureq) = (Raw::healthy(pki.std()), Raw::healthy(pki.std()));
    let d = Daemon::start(&format!(
        r#"{{"events": {{"dnd_on": "{}", "dnd_off": "{}"}}, "delivery": {{{QUICK}}}}}"#,
        on_loop.url("/h?n=$remote"),
        on_ureq.url("/h{x}?n=$remote")
    ));
    let mut w = Wire::to(&d);
    w.emit("dnd_on", 0);
    let s = ev_done(&d, "dnd_on");
    assert_eq!(workers(&d), 0, "the loop's attempt is a worker's");
    w.emit("dnd_off", 0);
    ev_done(&d, "dnd_off");
    std::thread::sleep(Duration::from_millis(200));
    let s2 = d.status();
    for (e, st) in [("dnd_on", &s), ("dnd_off", &s2)] {
        assert_eq!(ev(st, e, "last"), "tls-error", "{e}: {st}");
        assert_eq!(ev(st, e, "failed"), "1", "{e}: {st}");
    }
    assert_eq!(ev(&s2, "dnd_on", "retried"), "0", "{s2}");
    assert_eq!((on_loop.conns(), on_ureq.conns()), (1, 1));
    assert!(on_loop.got().is_empty() && on_ureq.got().is_empty());
}

/// A `ca_file` with the receiver's CA and a `CERTIFICATE` block that is not a certificate:
/// the loop's path and ureq's give the same outcome (the block is skipped: delivered).
#[test]
fn a_ca_file_with_a_broken_certificate_block_ends_as_on_the_workers_path() {
    let pki = Pki::new();
    let (on_loop, on_ureq) = (Raw::healthy(pki.std()), Raw::healthy(pki.std()));
    let dir = TempDir::new("badca");
    let pem = std::fs::read_to_string(&pki.ca_file).expect("CA");
    let junk = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGUgYXQgYWxs\n-----END CERTIFICATE-----\n";
    let ca = dir.write("ca.pem", format!("{junk}{pem}"));
    let d = Daemon::start(&cfg(
        &format!(
            r#""dnd_on": "{}", "dnd_off": "{}""#,
            on_loop.url("/h?n=$remote"),
            on_ureq.url("/h{x}?n=$remote")
        ),
        &ca,
        QUICK,
    ));
    let mut w = Wire::to(&d);
    w.emit("dnd_on", 0);
    let s = ev_done(&d, "dnd_on");
    assert_eq!(workers(&d), 0, "the loop's attempt is a worker's");
    w.emit("dnd_off", 0);
    let s2 = ev_done(&d, "dnd_off");
    assert_eq!(ev(&s, "dnd_on", "last"), "200", "{s}");
    assert_eq!(
        ev(&s, "dnd_on", "last"),
        ev(&s2, "dnd_off", "last"),
        "loop: {s}\nureq: {s2}"
    );
}

/// Ten healthy HTTPS destinations (more than LOOP_CONNS = 8), three notifications each, one
/// at a time in turn: each new destination closes the connection idle the longest, so the
/// loop makes new TLS connections (resuming sessions from its cache) — all by the loop, every
/// one delivered at its first attempt, in order.
#[test]
fn more_https_destinations_than_loop_connections_take_turns() {
    let pki = Pki::new();
    let rs: Vec<Raw> = (0..10).map(|_| Raw::healthy(pki.std())).collect();
    let d = Daemon::start(&cfg(
        r#""dnd_on": "https://127.0.0.1:$remote/t?n=$display_remote""#,
        &pki.ca_file,
        QUICK,
    ));
    let mut w = Wire::to(&d);
    for n in 0..3 {
        for r in &rs {
            w.send(
                "dnd_on",
                &format!("remote={} display_remote={n}", r.addr.port()),
            );
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
    let conns: usize = rs.iter().map(Raw::conns).sum();
    assert!(conns > 10, "no connection was closed to make room: {conns}");
    assert_eq!(workers(&d), 0);
}

/// A TLS 1.2 server that answers the first request, then answers the second, on the same
/// kept connection, with a fatal alert (internal_error) and closes. Both paths give the
/// second notification the same outcome: tls-error, failed, not retried.
#[test]
fn a_fatal_alert_for_a_request_on_a_kept_connection_ends_as_on_the_workers_path() {
    let pki = Pki::new();
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites =
        vec![rustls::crypto::ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256];
    let mut c = pki.server_from(provider, &["127.0.0.1"], TLS12_ONLY, false);
    c.enable_secret_extraction = true;
    let c = Arc::new(c);
    let server = |c: &Arc<rustls::ServerConfig>| {
        let spare = Arc::clone(c);
        Raw::start(Arc::clone(c), move |p| {
            if p.request().is_none() {
                return;
            }
            p.send(&ok(200));
            let _ = p.s.set_read_timeout(Some(PATIENCE));
            let tls = std::mem::replace(
                &mut p.tls,
                rustls::ServerConnection::new(Arc::clone(&spare)).expect("spare"),
            );
            let mut rec = Records::take_over(tls);
            while let Some((typ, plain)) = rec.read(&mut p.s) {
                if typ == rustls::ContentType::ApplicationData {
                    p.plain.extend_from_slice(&plain);
                    if find(&p.plain, b"\r\n\r\n").is_some() {
                        let _ = p.request();
                        rec.write(&mut p.s, rustls::ContentType::Alert, &[2, 80]);
                        return;
                    }
                }
            }
        })
    };
    let (on_loop, on_ureq) = (server(&c), server(&c));
    let d = Daemon::start(&cfg(
        &format!(
            r#""dnd_on": "{}", "dnd_off": "{}""#,
            on_loop.url("/a?n=$remote"),
            on_ureq.url("/a{x}?n=$remote")
        ),
        &pki.ca_file,
        QUICK,
    ));
    let mut w = Wire::to(&d);
    let run = |w: &mut Wire, event: &str, r: &Raw| {
        w.emit(event, 0);
        r.wait_for(1);
        status_when(&d, "delivered", if event == "dnd_on" { 1 } else { 2 });
        w.emit(event, 1);
        r.wait_for(2);
        let deadline = Instant::now() + PATIENCE;
        let s = loop {
            let s = d.status();
            let n = |k| ev(&s, event, k).parse::<u64>().unwrap_or(0);
            if n("failed") + n("retried") > 0 && n("delivered") + n("failed") >= 2
                || Instant::now() > deadline
            {
                break s;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        std::thread::sleep(Duration::from_millis(200));
        [
            ev(&s, event, "last"),
            ev(&s, event, "failed"),
            (r.got().len().min(3)).to_string(),
        ]
    };
    let a = run(&mut w, "dnd_on", &on_loop);
    assert_eq!(workers(&d), 0, "the loop's attempts were a worker's");
    let b = run(&mut w, "dnd_off", &on_ureq);
    assert_eq!(
        a, b,
        "loop [last, failed, requests read] {a:?}, ureq's {b:?}"
    );
    // As ureq's path has it: tls-error, failed, not retried (a plain close would be retried).
    assert_eq!(a, ["tls-error", "1", "2"].map(String::from));
}

/// TLS_TICKETS_CAP (direct.rs, module `tls`): a receiver that sends more than 8 TLS 1.3
/// session tickets on one connection (9, right after the handshake: rustls's server sends
/// `send_tls13_tickets` of them) has that connection closed — each ticket is a copy of the
/// certificate chain to keep. The notification in flight is retried on a new connection (the
/// same id) and delivered once; the next one goes on that new connection. With 8 tickets the
/// connection is kept: both on it, no retry.
#[test]
fn more_than_eight_session_tickets_close_the_connection_eight_are_fine() {
    let rows = each(&[8usize, 9], |&tickets| session_tickets(tickets));
    let (got, conns, s) = &rows[0];
    assert_eq!(order(got), seq(0..2), "8 tickets: {got:#?}");
    assert!(got.iter().all(|g| g.conn == 1), "8 tickets: {got:#?}");
    assert_eq!(*conns, 1, "8 tickets closed the connection: {got:#?}");
    assert_eq!(stat(s, "retried"), 0, "8 tickets: {s}");
    let (got, conns, s) = &rows[1];
    assert_eq!(
        *conns, 2,
        "9 tickets did not close the connection: {got:#?}"
    );
    assert_eq!(folded(got), seq(0..2), "9 tickets: {got:#?}");
    assert_eq!(
        got.last().map(|g| g.conn),
        Some(2),
        "9 tickets: the next notification not on the new connection: {got:#?}"
    );
    assert_eq!(stat(s, "retried"), 1, "9 tickets: {s}");
    for (_, _, s) in &rows {
        assert_eq!(stat(s, "delivered"), 2, "{s}");
        assert_eq!(stat(s, "failed"), 0, "{s}");
    }
}

/// Two notifications, one after the other, to a TLS 1.3 receiver whose first connection sends
/// `tickets` session tickets with its handshake (later ones none): what arrived, the
/// connections accepted, the final status. The daemon's loop sent them all.
fn session_tickets(tickets: usize) -> (Vec<Got>, usize, String) {
    let pki = Pki::new();
    let mut first = pki.server_with(&["127.0.0.1"], TLS13_ONLY, false);
    first.send_tls13_tickets = tickets;
    let mut later = first.clone();
    later.send_tls13_tickets = 0;
    let later = Arc::new(later);
    let r = Raw::start(Arc::new(first), move |p| {
        if p.conn > 1 {
            p.tls = rustls::ServerConnection::new(Arc::clone(&later)).expect("server conn");
        }
        while p.request().is_some() {
            p.send(&ok(200));
        }
    });
    let d = Daemon::start(&cfg(
        &format!(r#""dnd_on": "{}""#, r.url("/t?n=$remote")),
        &pki.ca_file,
        QUICK,
    ));
    let mut w = Wire::to(&d);
    w.emit("dnd_on", 0);
    status_when(&d, "delivered", 1);
    w.emit("dnd_on", 1);
    let s = status_when(&d, "delivered", 2);
    assert_eq!(
        workers(&d),
        0,
        "{tickets} tickets: the loop did not send them"
    );
    (r.got(), r.conns(), s)
}

/// The same cap while the connection is idle: after the first answer, the receiver sends
/// `tickets` session tickets in one record and nothing else. With 9 the daemon closes the
/// connection (when it looks at it, idle: `idle_ok`), and the next notification goes on a new
/// connection at its first attempt; with 8 it goes on the same one.
#[test]
fn more_than_eight_session_tickets_on_an_idle_connection_close_it_eight_are_fine() {
    let rows = each(&[8usize, 9], |&tickets| idle_session_tickets(tickets));
    for (tickets, (got, conns, s)) in [8, 9].into_iter().zip(&rows) {
        assert_eq!(order(got), seq(0..2), "{tickets} tickets: {got:#?}");
        assert_once_each(got);
        assert_eq!(stat(s, "retried"), 0, "{tickets} tickets: {s}");
        assert_eq!(stat(s, "delivered"), 2, "{s}");
        let want = if tickets > 8 { 2 } else { 1 };
        assert_eq!(
            (*conns, got[1].conn),
            (want, want),
            "{tickets} tickets: (connections, connection of the second): {got:#?}"
        );
    }
}

/// Two notifications to a TLS 1.3 receiver whose first connection, once idle after its first
/// answer, gets `tickets` session tickets (and still answers on it); later connections get
/// none. What arrived, the connections accepted, the final status.
fn idle_session_tickets(tickets: usize) -> (Vec<Got>, usize, String) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let pki = Pki::new();
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites =
        vec![rustls::crypto::ring::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256];
    let mut c = pki.server_from(provider, &["127.0.0.1"], TLS13_ONLY, false);
    c.enable_secret_extraction = true;
    c.send_tls13_tickets = 0;
    let c = Arc::new(c);
    let spare = Arc::clone(&c);
    let sent = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&sent);
    let r = Raw::start(c, move |p| {
        if p.conn > 1 {
            while p.request().is_some() {
                p.send(&ok(200));
            }
            return;
        }
        if p.request().is_none() {
            return;
        }
        p.send(&ok(200));
        if p.speaks_within(Duration::from_millis(150)) {
            return;
        }
        let _ = p.s.set_read_timeout(Some(PATIENCE));
        let tls = std::mem::replace(
            &mut p.tls,
            rustls::ServerConnection::new(Arc::clone(&spare)).expect("spare"),
        );
        let mut rec = Records::take_over13(tls);
        rec.write(
            &mut p.s,
            rustls::ContentType::Handshake,
            &session_tickets_from(0, tickets),
        );
        flag.store(true, Ordering::SeqCst);
        while let Some((typ, plain)) = rec.read(&mut p.s) {
            if typ != rustls::ContentType::ApplicationData {
                return;
            }
            p.plain.extend_from_slice(&plain);
            if find(&p.plain, b"\r\n\r\n").is_some() {
                // `request` finds the whole request in `plain` (a GET).
                let _ = p.request();
                rec.write(&mut p.s, rustls::ContentType::ApplicationData, &ok(200));
            }
        }
    });
    let d = Daemon::start(&cfg(
        &format!(r#""dnd_on": "{}""#, r.url("/i?n=$remote")),
        &pki.ca_file,
        QUICK,
    ));
    let mut w = Wire::to(&d);
    w.emit("dnd_on", 0);
    status_when(&d, "delivered", 1);
    let deadline = Instant::now() + PATIENCE;
    while !sent.load(Ordering::SeqCst) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    // The tickets reach the daemon's side before the next notification.
    std::thread::sleep(Duration::from_millis(100));
    w.emit("dnd_on", 1);
    let s = status_when(&d, "delivered", 2);
    assert_eq!(
        workers(&d),
        0,
        "{tickets} tickets: the loop did not send them"
    );
    (r.got(), r.conns(), s)
}
