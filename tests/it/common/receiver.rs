//! The recording HTTP receiver: requests, scripted replies, the server on loopback.

use super::*;

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
        let decoded = base64_decode(token.trim())?;
        let decoded = String::from_utf8_lossy(&decoded).into_owned();
        let (user, password) = decoded.split_once(':').unwrap_or((&decoded, ""));
        Some((user.to_string(), password.to_string()))
    }
}

/// `application/x-www-form-urlencoded` pairs (a piece without `=` has an empty value). The
/// receiver's own decoding, not the `listen` module's: it builds without that feature.
pub(super) fn pairs(form: &[u8]) -> Vec<(String, String)> {
    form.split(|&b| b == b'&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| match piece.iter().position(|&b| b == b'=') {
            Some(i) => (form_decode(&piece[..i]), form_decode(&piece[i + 1..])),
            None => (form_decode(piece), String::new()),
        })
        .collect()
}

/// Percent-decoding with `+` as a space; a `%` without two hex digits after it stays as it is;
/// bytes that are not UTF-8 become U+FFFD.
fn form_decode(s: &[u8]) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match (
            s[i],
            s.get(i + 1).and_then(|&b| hex(b)),
            s.get(i + 2).and_then(|&b| hex(b)),
        ) {
            (b'+', ..) => out.push(b' '),
            (b'%', Some(hi), Some(lo)) => {
                out.push(hi << 4 | lo);
                i += 2;
            }
            (b, ..) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Standard base64, padded or not.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    use base64::engine::{general_purpose, DecodePaddingMode, Engine};
    let cfg = general_purpose::GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent);
    general_purpose::GeneralPurpose::new(&base64::alphabet::STANDARD, cfg)
        .decode(s)
        .ok()
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

pub(super) type Handler = Box<dyn FnMut(&Request) -> Reply + Send>;

pub(super) struct Script {
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
// The receiver

pub(super) struct State {
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

pub(super) struct Inner {
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
pub(super) fn bound_socket(port: u16) -> nix::Result<OwnedFd> {
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
pub(super) fn reserve_port() -> (OwnedFd, SocketAddr) {
    let fd = bound_socket(0).expect("reserve a port on 127.0.0.1");
    let name: SockaddrIn =
        nix::sys::socket::getsockname(fd.as_raw_fd()).expect("reserved port number");
    (fd, SocketAddr::new(IpAddr::from(name.ip()), name.port()))
}

/// A listener on a reserved port.
pub(super) fn listen_on(port: u16) -> nix::Result<TcpListener> {
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

    /// Closes connection `id` (1 for the first accepted) now, between requests: a server that
    /// drops a kept connection. Panics if it is not open.
    pub fn close_connection(&self, id: usize) {
        self.on_open(id, |s| s.shutdown(Shutdown::Both));
    }

    /// Writes `bytes` on connection `id` now, between requests, as they are (under TLS they
    /// are not a record): bytes after its response that the client never asked for. Panics if
    /// it is not open.
    pub fn write_unasked(&self, id: usize, bytes: &[u8]) {
        self.on_open(id, |mut s| s.write_all(bytes));
    }

    fn on_open(&self, id: usize, f: impl FnOnce(&TcpStream) -> io::Result<()>) {
        let state = self.inner.lock();
        let s = state
            .open
            .iter()
            .find_map(|(i, s)| (*i == id).then_some(s))
            .unwrap_or_else(|| panic!("receiver {}: connection {id} is not open", self.inner.addr));
        f(s).unwrap_or_else(|e| panic!("receiver {}: connection {id}: {e}", self.inner.addr));
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

pub(super) fn accept_loop(listener: TcpListener, inner: Arc<Inner>, gen: u64) {
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

pub(super) fn serve_connection(tcp: TcpStream, id: usize, inner: &Inner, gen: u64) {
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
pub(super) fn pause(
    inner: &Inner,
    gen: u64,
    until: Option<Instant>,
    release_gen: Option<u64>,
) -> bool {
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

pub(super) fn close(stream: &mut Stream) {
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

pub(super) fn refuse(stream: &mut Stream, e: HttpError) {
    let _ = http::write_response(stream, Version::Http11, e.status(), false);
    close(stream);
}
