//! Shared helpers for the integration tests (`mod common;` in each test file):
//!
//! - [`Receiver`]: a recording HTTP receiver on `127.0.0.1:0`, in-process, with scripted answers
//!   ([`Reply`]: status sequences, delays, hanging, closing, raw bytes), a port that can be down
//!   at first and come up later on the same number, connection counting (keep-alive reuse), and
//!   an HTTPS variant whose certificate comes from a CA generated per receiver ([`TestCa`]).
//! - [`Daemon`]: the real `event-notify run` as a child process with its config, socket and log in
//!   a private temp dir; `emit`, `status`, signals; killed on drop.
//! - [`TempDir`]: a unique directory removed on drop.
//!
//! Everything here touches only loopback. Helpers panic with what they saw when something does
//! not happen in time: a test helper's panic is the test's failure message.
#![allow(dead_code)]

use event_notify::http::{self, Connection, HttpError, ReadError, Version};
use event_notify::listen;
use nix::sys::socket::SockaddrIn;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long the helpers wait for something that should happen promptly before they give up.
pub const PATIENCE: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Temporary directories

/// A fresh directory under the system temp dir, removed (with its contents) on drop.
/// Set `EN_KEEP_TEST_DIRS=1` to keep them for a post-mortem.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// `label` ends up in the name (keep it short: Unix socket paths are limited to 108 bytes).
    pub fn new(label: &str) -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let label: String = label
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .take(16)
            .collect();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path =
            std::env::temp_dir().join(format!("en-{label}-{}-{n}-{nanos:x}", std::process::id()));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.path.join(name)
    }

    /// Writes `contents` to `name` in this directory, atomically (temp file then rename), so a
    /// process watching the file never reads half of it.
    pub fn write(&self, name: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> PathBuf {
        let dest = self.join(name);
        let tmp = dest.with_extension("tmp-write");
        std::fs::write(&tmp, contents).expect("write temp file");
        std::fs::rename(&tmp, &dest).expect("rename temp file");
        dest
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("EN_KEEP_TEST_DIRS").is_some() {
            eprintln!("kept test dir {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Recorded requests and scripted replies

/// One request as the receiver got it.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// The request target exactly as it arrived, e.g. `/in?from=1002&name=Bob%20%26%20Alice`.
    pub target: String,
    /// The target up to `?`, not decoded.
    pub path: String,
    /// Decoded query pairs in order (`+` as space); a piece without `=` has an empty value.
    pub query: Vec<(String, String)>,
    /// Header fields as sent (names as spelled by the client), in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// When the whole request (head and body) had been read.
    pub at: Instant,
    /// Which connection it came on: 1 for the first one this receiver accepted, and so on.
    pub connection: usize,
    /// Whether it came over TLS.
    pub tls: bool,
}

impl Request {
    /// The first value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The decoded value of the first query pair named `key`.
    pub fn query(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (invalid UTF-8 as U+FFFD).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body decoded as `application/x-www-form-urlencoded` pairs.
    pub fn form(&self) -> Vec<(String, String)> {
        pairs(&self.body)
    }

    /// `(user, password)` of a Basic `Authorization` header.
    pub fn basic_auth(&self) -> Option<(String, String)> {
        let value = self.header("authorization")?.trim();
        let (scheme, token) = value.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = listen::base64_decode(token.trim().as_bytes())?;
        let decoded = String::from_utf8_lossy(&decoded).into_owned();
        let (user, password) = decoded.split_once(':').unwrap_or((&decoded, ""));
        Some((user.to_string(), password.to_string()))
    }
}

fn pairs(form: &[u8]) -> Vec<(String, String)> {
    listen::form_pairs(form)
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect()
}

/// What the receiver does with one request (after recording it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Answer this status with an empty body, keeping the connection if the client does.
    Status(u16),
    /// Answer this status after this long.
    Delayed(u16, Duration),
    /// Never answer: hold the connection open until [`Receiver::release`], [`Receiver::go_down`]
    /// or the receiver's drop, then close it without an answer.
    Hang,
    /// Close the connection at once without an answer.
    Close,
    /// Write these bytes as the whole answer, then close.
    Raw(Vec<u8>),
}

type Handler = Box<dyn FnMut(&Request) -> Reply + Send>;

struct Script {
    queue: VecDeque<Reply>,
    default: Reply,
    handler: Option<Handler>,
}

impl Script {
    fn next(&mut self, req: &Request) -> Reply {
        if let Some(h) = self.handler.as_mut() {
            return h(req);
        }
        self.queue
            .pop_front()
            .unwrap_or_else(|| self.default.clone())
    }
}

// ---------------------------------------------------------------------------------------------
// TLS material

/// A CA made for one test and a leaf certificate it signed for `127.0.0.1` and `localhost`.
pub struct TestCa {
    dir: TempDir,
    ca_file: PathBuf,
    ca_pem: String,
    ca_der: rustls::pki_types::CertificateDer<'static>,
    server: Arc<rustls::ServerConfig>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl TestCa {
    pub fn new() -> TestCa {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
            KeyUsagePurpose,
        };
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "event-notify test CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");

        let leaf_key = KeyPair::generate().expect("leaf key");
        let mut leaf_params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
                .expect("leaf params");
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, "event-notify test receiver");
        leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf_cert = leaf_params
            .signed_by(&leaf_key, &ca_cert, &ca_key)
            .expect("leaf certificate");

        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
        let server = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(vec![leaf_cert.der().clone(), ca_cert.der().clone()], key)
            .expect("server certificate");

        let dir = TempDir::new("ca");
        let ca_pem = ca_cert.pem();
        let ca_file = dir.write("ca.pem", &ca_pem);
        TestCa {
            dir,
            ca_file,
            ca_pem,
            ca_der: ca_cert.der().clone(),
            server: Arc::new(server),
        }
    }

    /// The CA certificate as a PEM file (for `delivery.ca_file`).
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A rustls client configuration that trusts only this CA.
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca_der.clone()).expect("add CA");
        Arc::new(
            rustls::ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .expect("TLS versions")
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    }
}

impl Default for TestCa {
    fn default() -> Self {
        TestCa::new()
    }
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The receiver

struct State {
    requests: Vec<Request>,
    script: Script,
    /// TCP connections accepted so far.
    connections: usize,
    /// Clones of the open connections' sockets, to cut them on go_down/drop.
    open: Vec<(usize, TcpStream)>,
    /// Bumped by release(): hanging requests whose generation is older close.
    release_gen: u64,
    /// Bumped by go_down(): connections from an older generation close.
    up_gen: u64,
    up: bool,
    dropped: bool,
}

struct Inner {
    addr: SocketAddr,
    /// Holds the port for the receiver's whole life, bound but never listening, so that while
    /// the receiver is down connections are refused and no other socket can take the number.
    _reservation: OwnedFd,
    ca: Option<TestCa>,
    state: Mutex<State>,
    changed: Condvar,
    /// The accept thread and a second handle on its listening socket, to stop it.
    acceptor: Mutex<Option<(JoinHandle<()>, TcpListener)>>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not turn every later call into a second panic.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// How a [`Receiver`] starts; see [`Receiver::builder`].
pub struct ReceiverBuilder {
    tls: bool,
    up: bool,
    replies: Vec<Reply>,
    default: Reply,
}

impl ReceiverBuilder {
    /// HTTPS with a certificate from a fresh [`TestCa`].
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Reserve the port but do not listen yet (connections are refused until `come_up`).
    pub fn down(mut self) -> Self {
        self.up = false;
        self
    }

    /// Answers for the first requests, in order; then the default.
    pub fn replies(mut self, replies: impl IntoIterator<Item = Reply>) -> Self {
        self.replies.extend(replies);
        self
    }

    /// Answer statuses for the first requests, in order (e.g. `[503, 200]`); then the default.
    pub fn statuses(self, codes: impl IntoIterator<Item = u16>) -> Self {
        self.replies(codes.into_iter().map(Reply::Status))
    }

    /// The answer once the scripted ones are used up (200 unless set).
    pub fn default_reply(mut self, reply: Reply) -> Self {
        self.default = reply;
        self
    }

    pub fn start(self) -> Receiver {
        let (reservation, addr) = reserve_port();
        let inner = Arc::new(Inner {
            addr,
            _reservation: reservation,
            ca: self.tls.then(TestCa::new),
            state: Mutex::new(State {
                requests: Vec::new(),
                script: Script {
                    queue: self.replies.into(),
                    default: self.default,
                    handler: None,
                },
                connections: 0,
                open: Vec::new(),
                release_gen: 0,
                up_gen: 0,
                up: false,
                dropped: false,
            }),
            changed: Condvar::new(),
            acceptor: Mutex::new(None),
        });
        let receiver = Receiver { inner };
        if self.up {
            receiver.come_up();
        }
        receiver
    }
}

/// A TCP socket on `127.0.0.1`, with `SO_REUSEADDR` and `SO_REUSEPORT` so that a listener can
/// share the port of a reservation (sockets without `SO_REUSEPORT`, i.e. everyone else's,
/// cannot), bound to `port` (0: any).
fn bound_socket(port: u16) -> nix::Result<OwnedFd> {
    use nix::sys::socket::{bind, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType};
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    setsockopt(&fd, sockopt::ReusePort, &true)?;
    bind(fd.as_raw_fd(), &SockaddrIn::new(127, 0, 0, 1, port))?;
    Ok(fd)
}

/// Reserves a free port on 127.0.0.1: bound, not listening (a connection to it is refused).
fn reserve_port() -> (OwnedFd, SocketAddr) {
    let fd = bound_socket(0).expect("reserve a port on 127.0.0.1");
    let name: SockaddrIn =
        nix::sys::socket::getsockname(fd.as_raw_fd()).expect("reserved port number");
    (fd, SocketAddr::new(IpAddr::from(name.ip()), name.port()))
}

/// A listener on a reserved port.
fn listen_on(port: u16) -> nix::Result<TcpListener> {
    let fd = bound_socket(port)?;
    nix::sys::socket::listen(&fd, nix::sys::socket::Backlog::MAXCONN)?;
    Ok(TcpListener::from(fd))
}

/// A recording HTTP(S) receiver on `127.0.0.1`; see the module documentation.
pub struct Receiver {
    inner: Arc<Inner>,
}

impl Receiver {
    pub fn builder() -> ReceiverBuilder {
        ReceiverBuilder {
            tls: false,
            up: true,
            replies: Vec::new(),
            default: Reply::Status(200),
        }
    }

    /// Plain HTTP, answering 200 to everything.
    pub fn start() -> Receiver {
        Receiver::builder().start()
    }

    /// Plain HTTP, answering these statuses in order, then 200.
    pub fn with_statuses(codes: impl IntoIterator<Item = u16>) -> Receiver {
        Receiver::builder().statuses(codes).start()
    }

    /// HTTPS, answering 200 to everything.
    pub fn start_tls() -> Receiver {
        Receiver::builder().tls().start()
    }

    /// A reserved port that refuses connections until [`Receiver::come_up`].
    pub fn down() -> Receiver {
        Receiver::builder().down().start()
    }

    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    pub fn port(&self) -> u16 {
        self.inner.addr.port()
    }

    /// `127.0.0.1:PORT`.
    pub fn host_port(&self) -> String {
        self.inner.addr.to_string()
    }

    pub fn is_tls(&self) -> bool {
        self.inner.ca.is_some()
    }

    /// `http://127.0.0.1:PORT/path...` (`https://` for a TLS receiver); `path` starts with `/`.
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.is_tls() { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.inner.addr)
    }

    /// `127.0.0.1:PORT/path...` without a scheme, as admins write it on the phone's page.
    pub fn bare_url(&self, path: &str) -> String {
        format!("{}{path}", self.inner.addr)
    }

    /// The TLS receiver's CA (panics for a plain receiver).
    pub fn ca(&self) -> &TestCa {
        self.inner.ca.as_ref().expect("not a TLS receiver")
    }

    /// The CA certificate PEM file to put in `delivery.ca_file`.
    pub fn ca_file(&self) -> &Path {
        self.ca().ca_file()
    }

    /// Appends answers to the script.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.inner.lock().script.queue.extend(replies);
    }

    /// Sets the answer used once the script is empty.
    pub fn set_default(&self, reply: Reply) {
        self.inner.lock().script.default = reply;
    }

    /// Decides every answer with `f` from now on (the script queue is then unused).
    pub fn set_handler(&self, f: impl FnMut(&Request) -> Reply + Send + 'static) {
        self.inner.lock().script.handler = Some(Box::new(f));
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.inner.lock().requests.clone()
    }

    pub fn count(&self) -> usize {
        self.inner.lock().requests.len()
    }

    /// TCP connections accepted so far (keep-alive reuse keeps this low).
    pub fn connections(&self) -> usize {
        self.inner.lock().connections
    }

    /// Waits until at least `n` requests arrived and returns all of them; panics (listing what
    /// did arrive) after `timeout`.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Request> {
        match self.try_wait_for(n, timeout) {
            Ok(all) => all,
            Err(got) => panic!(
                "receiver {}: expected {n} requests within {timeout:?}, got {}:\n{}",
                self.inner.addr,
                got.len(),
                summary(&got)
            ),
        }
    }

    /// Like `wait_for`, but hands back what arrived instead of panicking.
    pub fn try_wait_for(&self, n: usize, timeout: Duration) -> Result<Vec<Request>, Vec<Request>> {
        let deadline = Instant::now() + timeout;
        let mut state = self.inner.lock();
        loop {
            if state.requests.len() >= n {
                return Ok(state.requests.clone());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(state.requests.clone());
            }
            state = self
                .inner
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Panics if more than `n` requests arrive within `window` (to prove nothing more is sent).
    pub fn assert_no_more_than(&self, n: usize, window: Duration) {
        if let Ok(all) = self.try_wait_for(n + 1, window) {
            panic!(
                "receiver {}: expected no more than {n} requests, got {}:\n{}",
                self.inner.addr,
                all.len(),
                summary(&all)
            );
        }
    }

    /// Closes the connections of requests that are hanging ([`Reply::Hang`]), without answer.
    pub fn release(&self) {
        self.inner.lock().release_gen += 1;
        self.inner.changed.notify_all();
    }

    /// Starts listening on its port (after `down()` or `go_down()`: the same number, which was
    /// kept reserved meanwhile). Panics if it is already up.
    pub fn come_up(&self) {
        assert!(
            !self.inner.lock().up,
            "receiver {} is already up",
            self.inner.addr
        );
        let listener = listen_on(self.inner.addr.port())
            .unwrap_or_else(|e| panic!("cannot listen on {}: {e}", self.inner.addr));
        self.spawn_acceptor(listener);
    }

    /// Stops listening (new connections are refused) and cuts every open connection.
    /// Returns once the port is closed.
    pub fn go_down(&self) {
        {
            let mut state = self.inner.lock();
            state.up = false;
            state.up_gen += 1;
            for (_, s) in state.open.drain(..) {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
        self.inner.changed.notify_all();
        let acceptor = self
            .inner
            .acceptor
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some((handle, control)) = acceptor {
            // Shutting the listening socket down stops it listening at once, even while a child
            // process forked by another test still holds a copy of the descriptor (closing ours
            // alone would not), and wakes the blocking accept with an error.
            let stopped =
                nix::sys::socket::shutdown(control.as_raw_fd(), nix::sys::socket::Shutdown::Both);
            if stopped.is_err() {
                let _ = TcpStream::connect_timeout(&self.inner.addr, Duration::from_secs(1));
            }
            drop(control);
            let _ = handle.join();
        }
    }

    fn spawn_acceptor(&self, listener: TcpListener) {
        let gen = {
            let mut state = self.inner.lock();
            state.up = true;
            state.up_gen
        };
        let control = listener.try_clone().expect("second handle on the listener");
        let inner = Arc::clone(&self.inner);
        let handle = std::thread::Builder::new()
            .name(format!("receiver-{}", self.inner.addr.port()))
            .spawn(move || accept_loop(listener, inner, gen))
            .expect("spawn acceptor");
        *self
            .inner
            .acceptor
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some((handle, control));
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.inner.lock().dropped = true;
        self.go_down();
    }
}

/// One line per request, for failure messages.
pub fn summary(requests: &[Request]) -> String {
    requests
        .iter()
        .map(|r| {
            format!(
                "  {} {} (connection {}, {} body bytes)\n",
                r.method,
                r.target,
                r.connection,
                r.body.len()
            )
        })
        .collect()
}

fn accept_loop(listener: TcpListener, inner: Arc<Inner>, gen: u64) {
    for stream in listener.incoming() {
        let (id, stream) = {
            let mut state = inner.lock();
            if !state.up || state.up_gen != gen {
                return;
            }
            let Ok(stream) = stream else { continue };
            state.connections += 1;
            let id = state.connections;
            if let Ok(clone) = stream.try_clone() {
                state.open.push((id, clone));
            }
            (id, stream)
        };
        let conn_inner = Arc::clone(&inner);
        let spawned = std::thread::Builder::new()
            .name(format!("receiver-conn-{id}"))
            .spawn(move || {
                serve_connection(stream, id, &conn_inner, gen);
                conn_inner.lock().open.retain(|(i, _)| *i != id);
            });
        if spawned.is_err() {
            inner.lock().open.retain(|(i, _)| *i != id);
        }
    }
}

fn serve_connection(tcp: TcpStream, id: usize, inner: &Inner, gen: u64) {
    let _ = tcp.set_nodelay(true);
    let tls = inner.ca.is_some();
    let stream = match &inner.ca {
        None => Stream::Plain(tcp),
        Some(ca) => match rustls::ServerConnection::new(Arc::clone(&ca.server)) {
            Ok(conn) => Stream::Tls(Box::new(rustls::StreamOwned::new(conn, tcp))),
            Err(_) => return,
        },
    };
    let mut conn = Connection::new(stream);
    loop {
        let head = match conn.read_head() {
            Ok(Some(head)) => head,
            Ok(None) | Err(ReadError::Io(_)) => return,
            Err(ReadError::Http(e)) => return refuse(conn.get_mut(), e),
        };
        let body = match http::read_body_answering_continue(&mut conn, &head) {
            Ok(body) => body,
            Err(ReadError::Io(_)) => return,
            Err(ReadError::Http(e)) => return refuse(conn.get_mut(), e),
        };
        let (path, query) = match head.target.split_once('?') {
            Some((p, q)) => (p.to_string(), pairs(q.as_bytes())),
            None => (head.target.clone(), Vec::new()),
        };
        let keep_alive = head.keep_alive();
        let version = head.version;
        let request = Request {
            method: head.method,
            target: head.target,
            path,
            query,
            headers: head.headers,
            body,
            at: Instant::now(),
            connection: id,
            tls,
        };
        let (reply, release_gen) = {
            let mut state = inner.lock();
            if state.up_gen != gen {
                return;
            }
            let reply = state.script.next(&request);
            state.requests.push(request);
            (reply, state.release_gen)
        };
        inner.changed.notify_all();
        let status = match reply {
            Reply::Status(code) => code,
            Reply::Delayed(code, delay) => {
                if !pause(inner, gen, Some(Instant::now() + delay), None) {
                    return;
                }
                code
            }
            Reply::Hang => {
                pause(inner, gen, None, Some(release_gen));
                return close(conn.get_mut());
            }
            Reply::Close => return close(conn.get_mut()),
            Reply::Raw(bytes) => {
                let _ = conn.get_mut().write_all(&bytes);
                let _ = conn.get_mut().flush();
                return close(conn.get_mut());
            }
        };
        if http::write_response(conn.get_mut(), version, status, keep_alive).is_err() || !keep_alive
        {
            return close(conn.get_mut());
        }
    }
}

/// Waits until `until` (if given), or until released (when `release_gen` is given), or until
/// the receiver goes down. Returns whether the connection may go on.
fn pause(inner: &Inner, gen: u64, until: Option<Instant>, release_gen: Option<u64>) -> bool {
    let mut state = inner.lock();
    loop {
        if state.up_gen != gen || state.dropped {
            return false;
        }
        if release_gen.is_some_and(|g| state.release_gen != g) {
            return false;
        }
        let wait = match until {
            Some(t) => match t.checked_duration_since(Instant::now()) {
                Some(d) if !d.is_zero() => d,
                _ => return true,
            },
            None => Duration::from_secs(3600),
        };
        state = inner
            .changed
            .wait_timeout(state, wait)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

fn close(stream: &mut Stream) {
    match stream {
        Stream::Plain(s) => {
            let _ = s.shutdown(Shutdown::Both);
        }
        Stream::Tls(s) => {
            s.conn.send_close_notify();
            let _ = s.flush();
            let _ = s.sock.shutdown(Shutdown::Both);
        }
    }
}

fn refuse(stream: &mut Stream, e: HttpError) {
    let _ = http::write_response(stream, Version::Http11, e.status(), false);
    close(stream);
}

// ---------------------------------------------------------------------------------------------
// Running the binary

/// The `event-notify` binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_event-notify")
}

/// What a finished command left: exit code (-1 if killed by a signal), stdout, stderr.
pub type CmdOutput = (i32, String, String);

/// Runs `cmd` with piped output; kills it and panics if it has not finished within `timeout`.
///
/// One exception, for the test runs under qemu-user. There a child forked from this emulated,
/// multi-threaded test process may deadlock inside QEMU before it reaches `exec` (QEMU emulates
/// the vfork of `posix_spawn` as a plain fork). Twice in about 45 armv7 runs of tests/daemon.rs a
/// `status` child did not finish in time, then not again in 100 runs; that it was stuck before
/// exec is the likely cause, not a confirmed one. Such a child is still a copy of this process
/// (its command line still names this test binary): it never ran the command, so it is killed
/// and the command started again (at most twice), with a note on stderr. A command that did
/// start and then hangs is a failure, as always.
pub fn output_within(cmd: &mut Command, timeout: Duration) -> CmdOutput {
    for _ in 0..2 {
        match try_output_within(cmd, timeout) {
            Ok(outcome) => return outcome,
            Err(NeverExeced) => {
                eprintln!("note: {cmd:?} never reached exec (qemu-user fork); started again")
            }
        }
    }
    try_output_within(cmd, timeout)
        .unwrap_or_else(|_| panic!("{cmd:?} never reached exec, three times"))
}

/// A spawned child that was still a copy of the test process when its time ran out.
struct NeverExeced;

/// Whether the process `pid` is still a copy of this one (forked, never exec'd): its command
/// line (as the host kernel shows it: under qemu-user, QEMU's own with this test binary among
/// its arguments) holds this process's `argv[0]`.
pub fn never_execed(pid: u32) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Some(me) = std::env::args_os().next() else {
        return false;
    };
    let child = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    child.split(|&b| b == 0).any(|field| field == me.as_bytes())
}

fn try_output_within(cmd: &mut Command, timeout: Duration) -> Result<CmdOutput, NeverExeced> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut text);
            }
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => {
                let stuck_in_fork = never_execed(child.id());
                let _ = child.kill();
                let _ = child.wait();
                let (out, err) = (
                    out.join().unwrap_or_default(),
                    err.join().unwrap_or_default(),
                );
                if stuck_in_fork {
                    return Err(NeverExeced);
                }
                panic!("{cmd:?} did not finish within {timeout:?}\nstdout:\n{out}\nstderr:\n{err}");
            }
        }
    };
    let out = out.join().unwrap_or_default();
    let err = err.join().unwrap_or_default();
    Ok((status.code().unwrap_or(-1), out, err))
}

/// Runs `event-notify ARGS...` (not the daemon) and returns what it left.
pub fn run_cli(args: &[&str]) -> CmdOutput {
    output_within(Command::new(bin()).args(args), PATIENCE)
}

/// The daemon `event-notify run` in a private temp dir; killed on drop.
pub struct Daemon {
    child: Option<Child>,
    dir: TempDir,
    config: PathBuf,
    socket: PathBuf,
    log: PathBuf,
    exit: Option<ExitStatus>,
}

impl Daemon {
    /// Writes `config_json`, starts the daemon, and waits for its `ready` log line.
    pub fn start(config_json: &str) -> Daemon {
        Daemon::start_with(config_json, &[])
    }

    /// Like `start`, with more arguments after `run --config .. --socket ..`.
    pub fn start_with(config_json: &str, extra_args: &[&str]) -> Daemon {
        let mut daemon = Daemon::spawn(config_json, extra_args);
        daemon.wait_ready(PATIENCE);
        daemon
    }

    /// Starts the daemon without waiting for it to be ready (e.g. to see it refuse a config).
    pub fn spawn(config_json: &str, extra_args: &[&str]) -> Daemon {
        Daemon::spawn_env(config_json, extra_args, &[])
    }

    /// Like `spawn`, with environment variables for the daemon (e.g. `EVENT_NOTIFY_LOG=debug`;
    /// the level is `info` unless given here, whatever the test's own environment says).
    pub fn spawn_env(config_json: &str, extra_args: &[&str], env: &[(&str, &str)]) -> Daemon {
        let dir = TempDir::new("daemon");
        let config = dir.write("config.json", config_json);
        let socket = dir.join("s.sock");
        let log = dir.join("daemon.log");
        let stderr = std::fs::File::create(&log).expect("create log file");
        let stdout = std::fs::File::create(dir.join("daemon.out")).expect("create out file");
        let child = Command::new(bin())
            .arg("run")
            .arg("--config")
            .arg(&config)
            .arg("--socket")
            .arg(&socket)
            .args(extra_args)
            .env_remove("EVENT_NOTIFY_SOCKET")
            .env("EVENT_NOTIFY_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin()));
        Daemon {
            child: Some(child),
            dir,
            config,
            socket,
            log,
            exit: None,
        }
    }

    /// Waits for a log line with the word `ready`; panics with the log if the daemon exits
    /// or `timeout` passes first.
    pub fn wait_ready(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if self.log().lines().any(|l| has_word(l, "ready")) {
                return;
            }
            if let Some(status) = self.try_exit() {
                panic!(
                    "daemon exited ({status}) before it was ready; log:\n{}",
                    self.log()
                );
            }
            if Instant::now() >= deadline {
                panic!("daemon not ready within {timeout:?}; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .map(Child::id)
            .expect("daemon already reaped")
    }

    pub fn dir(&self) -> &TempDir {
        &self.dir
    }

    pub fn config_path(&self) -> &Path {
        &self.config
    }

    pub fn socket_path(&self) -> &Path {
        &self.socket
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Everything the daemon wrote on stderr so far.
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    /// Waits until the log contains `needle`; false after `timeout`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.log().contains(needle) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Replaces the config file atomically (the daemon may be watching it).
    pub fn write_config(&self, config_json: &str) {
        self.dir.write("config.json", config_json);
    }

    /// `event-notify emit ARGS... --socket <this daemon's socket>`.
    pub fn emit(&self, args: &[&str]) -> CmdOutput {
        self.cli("emit", args)
    }

    /// `emit` that must be accepted (exit 0); panics with its output and the daemon's log.
    pub fn emit_ok(&self, args: &[&str]) {
        let (code, out, err) = self.emit(args);
        assert_eq!(
            code,
            0,
            "emit {args:?}: exit {code}\nstdout: {out}\nstderr: {err}\ndaemon log:\n{}",
            self.log()
        );
    }

    /// `event-notify status --socket ..`'s stdout; panics (with its stderr) if it fails.
    pub fn status(&self) -> String {
        let (code, out, err) = self.cli("status", &[]);
        assert_eq!(code, 0, "event-notify status failed: {err}");
        out
    }

    /// Any `event-notify SUBCOMMAND ARGS... --socket ..` against this daemon.
    pub fn cli(&self, subcommand: &str, args: &[&str]) -> CmdOutput {
        output_within(
            Command::new(bin())
                .arg(subcommand)
                .args(args)
                .arg("--socket")
                .arg(&self.socket)
                .env("EVENT_NOTIFY_SOCKET", &self.socket),
            PATIENCE,
        )
    }

    pub fn sighup(&self) {
        self.signal(nix::sys::signal::Signal::SIGHUP);
    }

    pub fn sigterm(&self) {
        self.signal(nix::sys::signal::Signal::SIGTERM);
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.pid() as i32);
        nix::sys::signal::kill(pid, sig).unwrap_or_else(|e| panic!("kill({pid}, {sig}): {e}"));
    }

    /// The exit status if the daemon has exited (reaping it).
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.exit = Some(status);
                }
            }
        }
        self.exit
    }

    /// Waits for the daemon to exit; `None` if it is still running after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_exit() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if self.exit.is_none() {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }
}

fn has_word(line: &str, word: &str) -> bool {
    line.split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .any(|w| w == word)
}

// ---------------------------------------------------------------------------------------------
// Plain clients, for tests that poke a server by hand

/// Sends `raw` on a fresh connection and reads until the server closes (or 5 s pass).
pub fn http_exchange(addr: SocketAddr, raw: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(raw).expect("send");
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    String::from_utf8_lossy(&got).into_owned()
}

/// Reads one answer head (up to the empty line) from `s`; empty if the connection closed first.
pub fn read_answer_head(s: &mut impl Read) -> String {
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => got.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}
