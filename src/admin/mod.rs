//! The admin server: a thread of the daemon serving the JSON API (`/api/v1`), the CTI drivers'
//! Snom-style request (`/dummy.htm`) and the Event Notify page, over HTTP or HTTPS.
//!
//! - [`auth`]: credentials file, Digest/Basic, allow-list, lockout, sessions (pure).
//! - [`http`]: reading one bounded request, writing a response.
//! - [`api`]: the handlers, from a request to a response.
//!
//! The server never touches the engine directly: it writes the config file and asks the
//! daemon's thread to reload it through the [`Inbox`], and reads status the same way, so the
//! daemon's poll loop is never blocked by a client.

pub mod api;
pub mod auth;
pub mod http;

use crate::core::config::Board;
use crate::daemon::{Inbox, WarnLimit, WARN_WINDOW_MS};
use auth::{AllowList, Credentials, Lockout, NonceKey, Sessions, Verdict};
use http::{Request, Response};
use serde_json::json;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Client connections served at once; one more is answered 503 and closed.
pub const MAX_CONNS: usize = 8;
/// Of the [`MAX_CONNS`], those one client address may hold at once (an IPv4-mapped IPv6
/// address counts as its IPv4 address); one more from it is answered 503 and closed. A client
/// that reconnects as fast as its connections time out (idle 5 s, or 13 s over HTTPS) cannot
/// keep every place busy: two stay for the other addresses. Six, because a browser opens up to
/// six connections to one server (all its tabs together), and the page's requests overlap
/// (its API calls run side by side, with the status poll and the preview).
pub const MAX_CONNS_PER_ADDR: usize = 6;
/// Stack of each connection's thread (a validated config is large, and a test send runs ureq
/// and rustls on it).
pub const CONN_STACK: usize = 1024 * 1024;
/// The pause after an accept failed for want of file descriptors or memory (it would fail again
/// at once).
pub const ACCEPT_PAUSE_MS: u64 = 100;
/// Longest time a response may take to be written.
pub const WRITE_TIMEOUT_MS: u64 = 10_000;
/// Over HTTPS, the TLS handshake and the request are read within this of the connection: the
/// idle time allowed before a request and the time a request may take.
pub const TLS_READ_MS: u64 = http::ADMIN_IDLE_MS + http::ADMIN_REQUEST_MS;
/// The session cookie's name.
pub const COOKIE: &str = "en_session";

/// How the admin server is set up (command line, else the board file's "admin" object).
#[derive(Clone, Debug, Default)]
pub struct AdminOptions {
    pub listen: String,
    pub credentials: PathBuf,
    pub allow: AllowList,
    /// Accept Basic over plain HTTP from other hosts than loopback.
    pub basic_anywhere: bool,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// A server ready to run: socket bound, credentials read. Made before the daemon starts, so a
/// mistake is reported at once.
pub struct Prepared {
    listener: TcpListener,
    /// Refused writes (see [`Ctx::write`]), shared with the [`AdminSlot`] for `status`.
    refused_writes: Arc<AtomicU64>,
    opts: AdminOptions,
    creds: Credentials,
    #[cfg(feature = "tls")]
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "admin::Prepared({:?})", self.listener.local_addr().ok())
    }
}

/// Handed to the daemon in its options; the daemon starts it once its inbox exists, and reads
/// the server's count of refused writes from it for `status`.
#[derive(Clone, Debug, Default)]
pub struct AdminSlot(Arc<Mutex<Option<Prepared>>>, Arc<AtomicU64>);

impl AdminSlot {
    pub fn new(p: Prepared) -> AdminSlot {
        let refused = Arc::clone(&p.refused_writes);
        AdminSlot(Arc::new(Mutex::new(Some(p))), refused)
    }

    /// Writes the admin server refused as invalid (`400`/`422`): see [`Ctx::write`].
    pub fn refused_writes(&self) -> u64 {
        self.1.load(Ordering::Relaxed)
    }

    /// Starts the server thread (once).
    pub fn start(&self, inbox: Inbox, config: PathBuf, board: Board) -> io::Result<()> {
        let p = self.0.lock().ok().and_then(|mut g| g.take());
        match p {
            Some(p) => p.spawn(Some(inbox), config, board),
            None => Ok(()),
        }
    }
}

impl Prepared {
    pub fn new(opts: AdminOptions) -> Result<Prepared, String> {
        let creds = Credentials::load(&opts.credentials).map_err(|e| {
            format!(
                "admin credentials: {e}\n  the admin server has no default password: make the file with\n  event-notify passwd --file {}",
                opts.credentials.display()
            )
        })?;
        #[cfg(feature = "tls")]
        let tls = match (&opts.cert, &opts.key) {
            (Some(c), Some(k)) => Some(tls_config(c, k)?),
            (None, None) => None,
            _ => return Err("--admin-cert and --admin-key go together".into()),
        };
        #[cfg(not(feature = "tls"))]
        if opts.cert.is_some() || opts.key.is_some() {
            return Err("--admin-cert needs a build with TLS (feature \"tls\")".into());
        }
        let listener = TcpListener::bind(&opts.listen)
            .map_err(|e| format!("admin listen {}: {e}", opts.listen))?;
        Ok(Prepared {
            listener,
            refused_writes: Arc::default(),
            opts,
            creds,
            #[cfg(feature = "tls")]
            tls,
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    fn scheme(&self) -> &'static str {
        #[cfg(feature = "tls")]
        if self.tls.is_some() {
            return "https";
        }
        "http"
    }

    /// Runs the accept loop in a thread of its own.
    pub fn spawn(self, inbox: Option<Inbox>, config: PathBuf, board: Board) -> io::Result<()> {
        let key = NonceKey::new()?;
        let addr = self.local_addr()?;
        log::info!(
            "admin: serving {}://{addr}/ (user {}, allow-list {})",
            self.scheme(),
            self.creds.user,
            if self.opts.allow == AllowList::default() {
                "any address"
            } else {
                "set"
            }
        );
        let ctx = Arc::new(Ctx {
            config,
            board,
            inbox,
            write_lock: Mutex::new(()),
            creds: self.creds,
            key,
            allow: self.opts.allow.clone(),
            basic_anywhere: self.opts.basic_anywhere,
            tables: Mutex::new(Tables::default()),
            active: Places::default(),
            refused_writes: self.refused_writes,
        });
        let listener = self.listener;
        #[cfg(feature = "tls")]
        let tls = self.tls;
        std::thread::Builder::new()
            .name("admin".into())
            .spawn(move || {
                // Polled before each accept: the wait ends in time to report the suppressed
                // counts of the warnings below (Ctx::wait_for_client).
                if let Err(e) = listener.set_nonblocking(true) {
                    log::warn!("admin: listener: {e}");
                }
                loop {
                    ctx.wait_for_client(&listener);
                    let stream = match listener.accept() {
                        Ok((s, _)) => s,
                        Err(e)
                            if matches!(
                                e.kind(),
                                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                            ) =>
                        {
                            continue
                        }
                        Err(e) => {
                            // Out of descriptors (EMFILE, ENFILE) or memory, the next accept
                            // fails the same at once: wait instead of spinning on a core.
                            if ctx.quiet(|t| &mut t.quiet_accept, "failed accepts") {
                                log::warn!("admin: cannot accept a connection: {e}");
                            }
                            // Out of descriptors or memory it would fail again at once; an
                            // error of one connection (aborted, reset) is not waited on.
                            let exhausted = matches!(
                                e.raw_os_error(),
                                Some(
                                    nix::libc::EMFILE
                                        | nix::libc::ENFILE
                                        | nix::libc::ENOBUFS
                                        | nix::libc::ENOMEM
                                )
                            );
                            if exhausted {
                                std::thread::sleep(Duration::from_millis(ACCEPT_PAUSE_MS));
                            }
                            continue;
                        }
                    };
                    // An address outside the allow-list is answered at once, before a thread or a
                    // read is spent on it.
                    if let Ok(peer) = stream.peer_addr() {
                        if !ctx.allow.allows(peer.ip()) {
                            ctx.not_allowed(peer.ip());
                            let mut s = stream;
                            let _ = s.set_write_timeout(Some(Duration::from_millis(500)));
                            let _ = security_headers(
                                Response::error(403, "forbidden", "address not allowed"),
                                false,
                            )
                            .write_to(&mut s, false);
                            continue;
                        }
                    }
                    let ip = stream.peer_addr().ok().map(|a| a.ip().to_canonical());
                    if let Err(busy) = ctx.active.take(ip) {
                        let mut s = stream;
                        let _ = s.set_write_timeout(Some(Duration::from_millis(500)));
                        let _ = Response::text(503, busy).write_to(&mut s, false);
                        continue;
                    }
                    let c = Arc::clone(&ctx);
                    #[cfg(feature = "tls")]
                    let tls = tls.clone();
                    let spawned = std::thread::Builder::new()
                        .name("admin-conn".into())
                        .stack_size(CONN_STACK)
                        .spawn(move || {
                            // The place is given back however the thread ends (a panic too,
                            // where panics unwind).
                            let _place = Place(&c.active, ip);
                            #[cfg(feature = "tls")]
                            match tls {
                                Some(cfg) => serve_tls(&c, stream, cfg),
                                None => serve_conn(&c, stream),
                            }
                            #[cfg(not(feature = "tls"))]
                            serve_conn(&c, stream);
                        });
                    if spawned.is_err() {
                        ctx.active.give_back(ip);
                    }
                }
            })?;
        Ok(())
    }
}

/// The connections being served: each one's client address (`None` when the socket could not
/// say), at most [`MAX_CONNS`], at most [`MAX_CONNS_PER_ADDR`] of one address.
/// How long the accept loop may sleep (ms; `None`: until a client comes): until the next warning
/// window with a suppressed count ends (`due`), and while connections are open (`busy`) at
/// most [`WARN_WINDOW_MS`], since their threads can start a suppressed count (failed logins)
/// after the loop went to sleep. An idle admin server with nothing suppressed never wakes.
fn accept_wait_ms(due: Option<u64>, now: u64, busy: bool) -> Option<u64> {
    let cap = busy.then_some(WARN_WINDOW_MS);
    match (due.map(|d| d.saturating_sub(now).min(WARN_WINDOW_MS)), cap) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[derive(Default)]
struct Places(Mutex<heapless::Vec<Option<IpAddr>, MAX_CONNS>>);

impl Places {
    fn list(&self) -> std::sync::MutexGuard<'_, heapless::Vec<Option<IpAddr>, MAX_CONNS>> {
        match self.0.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// A place for a connection from `ip`, or the 503 answer's text.
    fn take(&self, ip: Option<IpAddr>) -> Result<(), &'static str> {
        let mut l = self.list();
        if ip.is_some() && l.iter().filter(|&&p| p == ip).count() >= MAX_CONNS_PER_ADDR {
            return Err("busy: too many admin connections from this address");
        }
        l.push(ip).map_err(|_| "busy: too many admin connections")
    }

    fn give_back(&self, ip: Option<IpAddr>) {
        let mut l = self.list();
        if let Some(i) = l.iter().position(|&p| p == ip) {
            l.swap_remove(i);
        }
    }
}

/// One connection's place among the [`MAX_CONNS`], given back on drop.
struct Place<'a>(&'a Places, Option<IpAddr>);

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.0.give_back(self.1);
    }
}

#[cfg(feature = "tls")]
fn tls_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<Arc<rustls::ServerConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("admin cert {}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("admin cert {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "admin cert {}: no certificate in it",
            cert.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("admin key {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("admin TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("admin TLS: {e}"))?;
    Ok(Arc::new(cfg))
}

/// The lockout and session tables, behind one lock.
#[derive(Default)]
struct Tables {
    lockout: Lockout,
    sessions: Sessions,
    basic: auth::BasicCache,
    nonces: auth::NonceCounts,
    /// The warnings a client can cause before it has authenticated (an address outside the
    /// allow-list, a failed login, a failed accept), rate-limited as the daemon's are, so that
    /// a flood of connections does not flood the log.
    quiet_allow: WarnLimit,
    quiet_login: WarnLimit,
    quiet_accept: WarnLimit,
}

/// What the handlers share.
pub struct Ctx {
    pub config: PathBuf,
    pub board: Board,
    pub inbox: Option<Inbox>,
    /// One write at a time: read, check If-Match, write, reload.
    pub write_lock: Mutex<()>,
    creds: Credentials,
    key: NonceKey,
    allow: AllowList,
    basic_anywhere: bool,
    tables: Mutex<Tables>,
    /// The connections being served, by client address.
    active: Places,
    refused_writes: Arc<AtomicU64>,
}

impl Ctx {
    fn tables(&self) -> std::sync::MutexGuard<'_, Tables> {
        match self.tables.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// The answer to a write (a config change: `PUT`/`DELETE` of the config or an event, an
    /// import, the CTI request), counted in `refused_writes` when it refuses the change as
    /// invalid: `400` (malformed body or query, a setting that is not ours) or `422` (the config
    /// would be invalid). Not counted: authentication, CSRF, `If-Match` (`401`, `403`, `412`,
    /// `428`), and previews and test sends, which change nothing.
    fn write(&self, r: Response) -> Response {
        if matches!(r.status, 400 | 422) {
            self.refused_writes.fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    pub fn refused_writes(&self) -> u64 {
        self.refused_writes.load(Ordering::Relaxed)
    }

    /// Waits until `listener` has a connection to accept (or a signal comes), first reporting
    /// the suppressed counts of the warning windows that have ended, and waking when the next
    /// one ends: the accept loop is the admin's tick ([`WarnLimit::flush`]), so a flood that
    /// stops is still counted in the log.
    fn wait_for_client(&self, listener: &TcpListener) {
        use nix::poll::{PollFd, PollFlags, PollTimeout};
        use std::os::fd::AsFd;
        let now = crate::daemon::now().ms;
        // Before the counts: a connection that starts one after this look keeps `busy` true.
        let busy = !self.active.list().is_empty();
        let due = {
            let mut guard = self.tables();
            let t = &mut *guard;
            let limits = [&mut t.quiet_allow, &mut t.quiet_login, &mut t.quiet_accept];
            limits
                .into_iter()
                .filter_map(|w| {
                    w.flush(now);
                    w.due()
                })
                .min()
        };
        let timeout = match accept_wait_ms(due, now, busy) {
            None => PollTimeout::NONE,
            Some(ms) => PollTimeout::try_from(ms as i32).unwrap_or(PollTimeout::MAX),
        };
        let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        let _ = nix::poll::poll(&mut fds, timeout);
    }

    /// Whether to log one more warning of the kind `which` picks ([`WarnLimit`]).
    fn quiet(&self, which: fn(&mut Tables) -> &mut WarnLimit, what: &'static str) -> bool {
        which(&mut self.tables()).allow(crate::daemon::now().ms, what)
    }

    /// A client outside the allow-list was refused.
    fn not_allowed(&self, ip: IpAddr) {
        if self.quiet(|t| &mut t.quiet_allow, "addresses not in the allow-list") {
            log::warn!("admin: {ip} is not in the allow-list: refused");
        }
    }

    /// ((failed logins, lockouts, locked entries), sessions).
    pub fn auth_counts(&self) -> ((u64, u64, usize), usize) {
        let t = self.tables();
        (
            (t.lockout.failures, t.lockout.locks, t.lockout.len()),
            t.sessions.len(),
        )
    }
}

fn now_s() -> u64 {
    crate::daemon::now().ms / 1000
}

fn serve_conn(ctx: &Ctx, mut stream: TcpStream) {
    let peer = stream.peer_addr().ok().map(|a| a.ip());
    let _ = stream.set_write_timeout(Some(Duration::from_millis(WRITE_TIMEOUT_MS)));
    let _ = stream.set_read_timeout(Some(Duration::from_millis(http::ADMIN_IDLE_MS)));
    let _ = stream.set_nodelay(true);
    handle_stream(ctx, &mut stream, peer, false);
}

fn handle_stream<S: Read + Write>(ctx: &Ctx, s: &mut S, peer: Option<IpAddr>, tls: bool) {
    let resp = match http::read_request(s) {
        Ok(mut req) => {
            req.peer = peer;
            req.tls = tls;
            let head = req.method == "HEAD";
            let r = serve(ctx, &req);
            let _ = r.write_to(s, head);
            return;
        }
        Err(http::ReadError(r)) => r,
    };
    if let Some(r) = resp {
        let _ = r.write_to(s, false);
    }
}

#[cfg(feature = "tls")]
struct TlsStream(rustls::StreamOwned<rustls::ServerConnection, Deadlined>);

/// The TCP stream under TLS, whose every read ends by one deadline: rustls reads on until a
/// record (of up to 16 KiB) is whole, so a client sending a byte every few seconds would pass
/// each read's timeout and hold the connection for hours; the HTTP layer's own time policy only
/// sees the plaintext, once a record is complete.
#[cfg(feature = "tls")]
struct Deadlined {
    tcp: TcpStream,
    until: std::time::Instant,
}

#[cfg(feature = "tls")]
impl Read for Deadlined {
    fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        let left = self
            .until
            .saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        self.tcp
            .set_read_timeout(Some(left.min(Duration::from_millis(http::ADMIN_IDLE_MS))))?;
        self.tcp.read(b)
    }
}

#[cfg(feature = "tls")]
impl Write for Deadlined {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.tcp.write(b)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.tcp.flush()
    }
}

#[cfg(feature = "tls")]
impl Read for TlsStream {
    fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        self.0.read(b)
    }
}
#[cfg(feature = "tls")]
impl Write for TlsStream {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.write(b)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(feature = "tls")]
fn serve_tls(ctx: &Ctx, stream: TcpStream, cfg: Arc<rustls::ServerConfig>) {
    let peer = stream.peer_addr().ok().map(|a| a.ip());
    let _ = stream.set_write_timeout(Some(Duration::from_millis(WRITE_TIMEOUT_MS)));
    // The handshake and the request are read by the longest a plain-HTTP request may take
    // (silence before it, then the request itself), wherever rustls reads.
    let tcp = Deadlined {
        tcp: stream,
        until: std::time::Instant::now() + Duration::from_millis(TLS_READ_MS),
    };
    let Ok(conn) = rustls::ServerConnection::new(cfg) else {
        return;
    };
    let mut s = TlsStream(rustls::StreamOwned::new(conn, tcp));
    handle_stream(ctx, &mut s, peer, true);
    s.0.conn.send_close_notify();
    let _ = s.0.flush();
}

fn security_headers(mut r: Response, tls: bool) -> Response {
    r = r
        .with("Cache-Control", "no-store")
        .with("X-Content-Type-Options", "nosniff")
        .with("X-Frame-Options", "DENY")
        .with("Referrer-Policy", "no-referrer")
        .with(
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        );
    if tls {
        r = r.with("Strict-Transport-Security", "max-age=31536000");
    }
    r
}

/// How the request was authenticated.
enum Who {
    Session {
        id: String,
        csrf: String,
        user: String,
    },
    Machine,
}

/// Answers one request: allow-list, lockout, authentication, CSRF, then the handler.
pub fn serve(ctx: &Ctx, req: &Request) -> Response {
    let tls = req.tls;
    security_headers(route(ctx, req), tls)
}

fn route(ctx: &Ctx, req: &Request) -> Response {
    let ip = req.peer.unwrap_or(IpAddr::from([0u8, 0, 0, 0]));
    if !ctx.allow.allows(ip) {
        ctx.not_allowed(ip);
        return Response::error(403, "forbidden", "address not allowed");
    }
    let path = req.path();
    let method = if req.method == "HEAD" {
        "GET"
    } else {
        req.method.as_str()
    };
    // The page and the API document hold no secrets.
    let asset = match (method, path) {
        ("GET", "/") | ("GET", "/index.html") => Some(PAGE_HTML),
        ("GET", "/app.css") => Some(PAGE_CSS),
        ("GET", "/app.js") => Some(PAGE_JS),
        ("GET", "/api/v1/openapi.json") => Some(OPENAPI),
        _ => None,
    };
    if let Some(a) = asset {
        return a.response(req.header("Accept-Encoding"));
    }
    let known = path == "/dummy.htm" || path.starts_with("/api/v1/");
    if !known {
        return Response::error(404, "not_found", "no such page");
    }
    let now = now_s();
    if let Some(left) = ctx.tables().lockout.locked(ip, now) {
        return locked(left);
    }
    if (method, path) == ("POST", "/api/v1/login") {
        return login(ctx, req, ip, now);
    }
    let who = match authenticate(ctx, req, ip, now) {
        Ok(w) => w,
        Err(r) => return r,
    };
    // The CTI request changes the config even as a GET: it is for machines only.
    let state_changing =
        matches!(method, "POST" | "PUT" | "DELETE" | "PATCH") || path == "/dummy.htm";
    match &who {
        Who::Session { .. } if path == "/dummy.htm" => {
            return Response::text(401, "the CTI request takes Digest or Basic authentication");
        }
        Who::Session { csrf, .. } if state_changing => {
            if let Err(r) = csrf_ok(req, csrf) {
                return r;
            }
        }
        // A browser replays cached Digest/Basic credentials on requests other sites make it
        // send (the classic router CSRF): a request that names another origin is refused.
        // Machine clients (curl, CTI drivers) send neither header.
        Who::Machine if state_changing && !same_origin_or_none(req) => {
            log::warn!("admin: refused a cross-site request to {path}");
            return Response::error(403, "csrf", "request from another origin");
        }
        _ => {}
    }
    dispatch(ctx, req, method, path, &who)
}

fn locked(left: u64) -> Response {
    Response::json(
        429,
        &json!({"error": format!("too many failed logins: locked for {left} s"), "code": "locked", "retry_after_s": left}),
    )
    .with("Retry-After", left.to_string())
}

/// The origin this request was made to: `scheme://Host`.
fn own_origin(req: &Request) -> Option<String> {
    let host = req.header("host")?;
    Some(format!(
        "{}://{}",
        if req.tls { "https" } else { "http" },
        host.trim()
    ))
}

/// No `Origin` and no `Referer`, or both (when sent) naming this server.
fn same_origin_or_none(req: &Request) -> bool {
    let Some(own) = own_origin(req) else {
        return req.header("origin").is_none() && req.header("referer").is_none();
    };
    let origin_ok = req
        .header("origin")
        .is_none_or(|o| o.trim().eq_ignore_ascii_case(&own));
    let referer_ok = req.header("referer").is_none_or(|r| {
        // Compared as bytes: both come from the client, and a character of the Referer may
        // straddle the origin's length.
        let r = r.trim().as_bytes();
        r.get(..own.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(own.as_bytes()))
            && matches!(r.get(own.len()), None | Some(b'/'))
    });
    origin_ok && referer_ok
}

fn csrf_ok(req: &Request, csrf: &str) -> Result<(), Response> {
    let token_ok = req
        .header("x-csrf-token")
        .is_some_and(|t| auth::same(t.trim().as_bytes(), csrf.as_bytes()));
    let origin_ok = match (req.header("origin"), own_origin(req)) {
        (Some(o), Some(own)) => o.trim().eq_ignore_ascii_case(&own),
        _ => false,
    };
    if token_ok && origin_ok {
        Ok(())
    } else {
        log::warn!(
            "admin: refused a session request without a matching {}",
            if token_ok { "Origin" } else { "CSRF token" }
        );
        Err(Response::error(
            403,
            "csrf",
            "missing or wrong CSRF token or Origin",
        ))
    }
}

fn unauthorized(ctx: &Ctx, req: &Request, now: u64, stale: bool) -> Response {
    let cti = req.path() == "/dummy.htm";
    let mut r = if cti {
        Response::text(401, "authentication required")
    } else {
        Response::error(
            401,
            "unauthorized",
            "log in, or authenticate with HTTP Digest or Basic",
        )
    };
    // A browser with a session cookie gets no challenge, so it shows no password popup; nor does
    // the page's own script before its login (it sends X-Requested-With): a challenge there
    // would open the browser's password dialog over the page's login form.
    if req.cookie(COOKIE).is_none() && req.header("x-requested-with").is_none() {
        for c in ctx.key.challenges(now, stale) {
            r = r.with("WWW-Authenticate", c);
        }
        if basic_allowed(ctx, req) {
            r = r.with(
                "WWW-Authenticate",
                format!("Basic realm=\"{}\", charset=\"UTF-8\"", auth::REALM),
            );
        }
    }
    r
}

fn basic_allowed(ctx: &Ctx, req: &Request) -> bool {
    req.tls || ctx.basic_anywhere || req.peer.is_some_and(|p| p.is_loopback())
}

/// Counts one failed login; the answer to give.
fn failed(ctx: &Ctx, req: &Request, ip: IpAddr, now: u64, how: &str) -> Response {
    let lock = ctx.tables().lockout.fail(ip, now);
    match lock {
        Some(s) => {
            if ctx.quiet(|t| &mut t.quiet_login, "failed logins") {
                log::warn!("admin: failed {how} login from {ip}: locked out for {s} s");
            }
            locked(s)
        }
        None => {
            if ctx.quiet(|t| &mut t.quiet_login, "failed logins") {
                log::warn!("admin: failed {how} login from {ip}");
            }
            if how == "form" {
                Response::error(401, "bad_credentials", "wrong user name or password")
            } else {
                unauthorized(ctx, req, now, false)
            }
        }
    }
}

fn authenticate(ctx: &Ctx, req: &Request, ip: IpAddr, now: u64) -> Result<Who, Response> {
    if let Some(h) = req.header("authorization") {
        let is_basic = h
            .trim_start()
            .get(..6)
            .is_some_and(|s| s.eq_ignore_ascii_case("basic "));
        let mac = ctx.key.mac(h.trim().as_bytes());
        if is_basic && basic_allowed(ctx, req) && ctx.tables().basic.hit(&mac, now) {
            return Ok(Who::Machine);
        }
        let v = auth::check_authorization(
            h,
            &req.method,
            &req.target,
            &ctx.creds,
            &ctx.key,
            now,
            basic_allowed(ctx, req),
        );
        return match v {
            Verdict::Ok => {
                let mut t = ctx.tables();
                if let Some((nonce, nc)) = auth::digest_nonce_nc(h) {
                    if !t.nonces.fresh(&nonce, nc, now) {
                        drop(t);
                        log::warn!("admin: a replayed Digest request from {ip}: refused");
                        return Err(unauthorized(ctx, req, now, true));
                    }
                }
                t.lockout.succeed(ip);
                if is_basic {
                    t.basic.insert(mac, now);
                }
                Ok(Who::Machine)
            }
            Verdict::Bad => Err(failed(ctx, req, ip, now, if is_basic { "Basic" } else { "Digest" })),
            Verdict::Stale => Err(unauthorized(ctx, req, now, true)),
            Verdict::Unusable => Err(unauthorized(ctx, req, now, false)),
            Verdict::BasicRefused => Err(Response::error(
                403,
                "basic_refused",
                "Basic authentication over plain HTTP is only taken from this host: use Digest or HTTPS",
            )),
        };
    }
    if let Some(id) = req.cookie(COOKIE) {
        if let Some(s) = ctx.tables().sessions.touch(id, now) {
            return Ok(Who::Session {
                id: id.to_string(),
                csrf: s.csrf,
                user: s.user,
            });
        }
    }
    Err(unauthorized(ctx, req, now, false))
}

fn login(ctx: &Ctx, req: &Request, ip: IpAddr, now: u64) -> Response {
    // A login form posted from another site is refused (login CSRF).
    if let (Some(o), Some(own)) = (req.header("origin"), own_origin(req)) {
        if !o.trim().eq_ignore_ascii_case(&own) {
            return Response::error(403, "csrf", "login from another origin");
        }
    }
    let v: serde_json::Value = match serde_json::from_slice(&req.body) {
        Ok(v) => v,
        Err(_) => return Response::error(400, "bad_json", "send {\"user\":...,\"password\":...}"),
    };
    let (Some(user), Some(pw)) = (v["user"].as_str(), v["password"].as_str()) else {
        return Response::error(400, "bad_json", "send {\"user\":...,\"password\":...}");
    };
    if user.len() > auth::CRED_FIELD_CAP
        || pw.len() > auth::CRED_FIELD_CAP
        || !ctx.creds.verify_password(user, pw)
    {
        return failed(ctx, req, ip, now, "form");
    }
    let made = {
        let mut t = ctx.tables();
        t.lockout.succeed(ip);
        t.sessions.create(user, now)
    };
    let Ok((id, csrf)) = made else {
        return Response::error(500, "internal", "cannot make a session");
    };
    log::info!("admin: {user} logged in from {ip}");
    Response::json(
        200,
        &json!({"user": user, "csrf_token": csrf, "idle_timeout_s": auth::SESSION_IDLE_S}),
    )
    .with(
        "Set-Cookie",
        format!(
            "{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/{}",
            if req.tls { "; Secure" } else { "" }
        ),
    )
}

fn dispatch(ctx: &Ctx, req: &Request, method: &str, path: &str, who: &Who) -> Response {
    if path == "/dummy.htm" {
        return match method {
            "GET" | "POST" => ctx.write(api::cti(ctx, req)),
            _ => Response::text(405, "GET or POST"),
        };
    }
    let rest = path.strip_prefix("/api/v1/").unwrap_or("");
    let parts: Vec<&str> = rest.split('/').collect();
    match (method, parts.as_slice()) {
        ("GET", ["session"]) => match who {
            Who::Session { csrf, user, .. } => Response::json(
                200,
                &json!({"user": user, "csrf_token": csrf, "idle_timeout_s": auth::SESSION_IDLE_S}),
            ),
            Who::Machine => Response::json(
                200,
                &json!({"user": ctx.creds.user, "csrf_token": null, "idle_timeout_s": null}),
            ),
        },
        ("POST", ["logout"]) => {
            if let Who::Session { id, .. } = who {
                ctx.tables().sessions.end(id);
            }
            Response::new(204, "text/plain", "").with(
                "Set-Cookie",
                format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
            )
        }
        ("GET", ["events"]) => api::events_list(),
        ("GET", ["variables"]) => api::variables_list(),
        ("GET", ["config"]) => api::get_config(ctx),
        ("PUT", ["config"]) => ctx.write(api::put_config(ctx, req)),
        ("GET", ["status"]) => api::status(ctx),
        ("GET", ["events", key]) => api::get_event(ctx, key),
        ("PUT", ["events", key]) => ctx.write(api::write_event(ctx, req, key, false)),
        ("DELETE", ["events", key]) => ctx.write(api::write_event(ctx, req, key, true)),
        ("POST", ["events", key, "preview"]) => api::preview(ctx, req, key),
        ("POST", ["events", key, "test"]) => api::test_send(ctx, req, key),
        ("POST", ["import"]) => ctx.write(api::import(ctx, req)),
        _ => {
            let path_known = api::ROUTES.iter().any(|(_, p)| route_matches(p, path));
            if path_known {
                Response::error(405, "method_not_allowed", "method not allowed here")
            } else {
                Response::error(404, "not_found", "no such API route")
            }
        }
    }
}

/// Whether `path` fits a route pattern with `{param}` segments.
pub fn route_matches(pattern: &str, path: &str) -> bool {
    let (a, b): (Vec<&str>, Vec<&str>) = (pattern.split('/').collect(), path.split('/').collect());
    a.len() == b.len()
        && a.iter()
            .zip(&b)
            .all(|(p, s)| (p.starts_with('{') && !s.is_empty()) || p == s)
}

/// A file of the page (or the OpenAPI document) as the binary stores it: compacted and
/// gzip-compressed by `build.rs` ([`compact`]), 72 KB of text in 18 KB of flash.
pub struct Asset {
    pub content_type: &'static str,
    /// A whole gzip member (RFC 1952) with no optional header fields.
    pub gzip: &'static [u8],
}

/// Largest file of the page once inflated (the OpenAPI document is the largest, ~32 KB): a
/// client that does not accept gzip gets it inflated into a buffer of at most this size.
pub const PAGE_FILE_CAP: usize = 64 * 1024;

macro_rules! asset {
    ($name:literal, $type:literal) => {
        Asset {
            content_type: $type,
            gzip: include_bytes!(concat!(env!("OUT_DIR"), "/", $name, ".gz")),
        }
    };
}

pub const PAGE_HTML: Asset = asset!("index.html", "text/html; charset=utf-8");
pub const PAGE_CSS: Asset = asset!("app.css", "text/css; charset=utf-8");
pub const PAGE_JS: Asset = asset!("app.js", "text/javascript; charset=utf-8");
pub const OPENAPI: Asset = asset!("openapi.json", "application/json");

impl Asset {
    /// The file's bytes, inflated (for a client that does not accept gzip, and for tests).
    pub fn inflate(&self) -> Result<Vec<u8>, String> {
        let n = self.gzip.len();
        if n < 18 {
            return Err("stored page file too short".into());
        }
        inflate::inflate(&self.gzip[10..n - 8], PAGE_FILE_CAP)
            .map_err(|e| format!("stored page file: {e:?}"))
    }

    /// The response: gzip as stored when the client accepts it, else inflated. Both carry
    /// `Vary: Accept-Encoding`, so a cache keeps them apart.
    pub fn response(&self, accept_encoding: Option<&str>) -> Response {
        let r = if accepts_gzip(accept_encoding) {
            Response::new(200, self.content_type, self.gzip).with("Content-Encoding", "gzip")
        } else {
            match self.inflate() {
                Ok(body) => Response::new(200, self.content_type, body),
                Err(e) => {
                    log::error!("admin: {e}");
                    Response::error(500, "internal", "page file unreadable")
                }
            }
        };
        r.with("Vary", "Accept-Encoding")
    }
}

/// Whether an `Accept-Encoding` value accepts gzip (RFC 9110 12.5.3): `gzip`, `x-gzip` or `*`
/// listed with a weight above 0. No header: not assumed (curl and scripts without
/// `--compressed` get the plain file).
pub fn accepts_gzip(header: Option<&str>) -> bool {
    let Some(h) = header else { return false };
    let mut gzip = None;
    let mut star = None;
    for item in h.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let mut weight = true;
        for p in parts {
            if let Some((k, v)) = p.split_once('=') {
                if k.trim().eq_ignore_ascii_case("q") {
                    weight = v.trim().parse::<f32>().is_ok_and(|q| q > 0.0);
                }
            }
        }
        match coding.as_str() {
            "gzip" | "x-gzip" => gzip = Some(weight),
            "*" => star = Some(weight),
            _ => {}
        }
    }
    gzip.or(star).unwrap_or(false)
}

#[cfg(test)]
#[path = "compact.rs"]
mod compact;
pub mod inflate;

#[cfg(test)]
mod page_tests {
    use super::*;

    #[test]
    fn the_accept_loop_sleeps_for_good_only_when_idle_with_nothing_suppressed() {
        // Idle, nothing suppressed: no wake-up at all.
        assert_eq!(accept_wait_ms(None, 5_000, false), None);
        // A suppressed count due in 7 s: wake then, busy or not.
        assert_eq!(accept_wait_ms(Some(12_000), 5_000, false), Some(7_000));
        assert_eq!(accept_wait_ms(Some(12_000), 5_000, true), Some(7_000));
        assert_eq!(accept_wait_ms(Some(1_000), 5_000, false), Some(0));
        // Connections open, nothing suppressed yet: their threads may start a count (failed
        // logins) after the loop went to sleep, so it looks again within a window.
        assert_eq!(accept_wait_ms(None, 5_000, true), Some(WARN_WINDOW_MS));
    }

    #[test]
    fn served_page_is_the_source_without_indentation_or_comment_lines() {
        let text = |a: &Asset| String::from_utf8(a.inflate().unwrap()).unwrap();
        let src = include_str!("page/app.js");
        let want: Vec<&str> = src
            .lines()
            .map(str::trim_start)
            .filter(|l| !l.is_empty() && !l.starts_with("//"))
            .collect();
        assert_eq!(text(&PAGE_JS).lines().collect::<Vec<_>>(), want);
        let (html, css) = (text(&PAGE_HTML), text(&PAGE_CSS));
        assert!(!css.contains("/*") && css.contains(":root{"));
        assert!(html.starts_with("<!DOCTYPE html>\n") && html.ends_with("</html>\n"));
        let total = html.len() + css.len() + text(&PAGE_JS).len();
        assert!(total < 40 * 1024, "the page is {total} bytes");
        let stored = PAGE_HTML.gzip.len() + PAGE_CSS.gzip.len() + PAGE_JS.gzip.len();
        assert!(stored * 2 < total, "gzip: {stored} of {total} bytes");
        assert_eq!(text(&OPENAPI), include_str!("../../docs/openapi.json"));
        assert!(include_str!("../../docs/openapi.json").len() < PAGE_FILE_CAP);
        assert_eq!(compact::compact("  a\n\n // c\nb"), "a\nb");
        assert_eq!(compact::compact("a\n  /* x */\n\tb\n"), "a\nb\n");
    }

    #[test]
    fn the_gzip_members_carry_the_crc_and_length_of_what_they_inflate_to() {
        for a in [PAGE_HTML, PAGE_CSS, PAGE_JS, OPENAPI] {
            let body = a.inflate().unwrap();
            let n = a.gzip.len();
            assert_eq!(a.gzip[..3], [0x1f, 0x8b, 8]);
            assert_eq!(a.gzip[n - 8..n - 4], compact::crc32(&body).to_le_bytes());
            assert_eq!(a.gzip[n - 4..], (body.len() as u32).to_le_bytes());
        }
        // The check value of CRC-32 (IEEE).
        assert_eq!(compact::crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(compact::gzip(b"").len(), 20);
    }

    #[test]
    fn gzip_is_sent_only_to_a_client_that_accepts_it() {
        for yes in [
            "gzip",
            "gzip, deflate, br, zstd",
            "br;q=1.0, GZIP;q=0.5",
            "*",
            "x-gzip",
            "deflate, *;q=0.1",
        ] {
            assert!(accepts_gzip(Some(yes)), "{yes}");
        }
        for no in [
            "",
            "identity",
            "deflate, br",
            "gzip;q=0",
            "gzip; q=0.000",
            "*;q=0",
            "gzip;q=0, *",
            "*, gzip;q=0",
            "gzip;q=x",
        ] {
            assert!(!accepts_gzip(Some(no)), "{no}");
        }
        assert!(!accepts_gzip(None));
        let r = PAGE_CSS.response(Some("gzip, deflate"));
        assert_eq!(r.header("Content-Encoding"), Some("gzip"));
        assert_eq!(r.header("Vary"), Some("Accept-Encoding"));
        assert_eq!(r.body, PAGE_CSS.gzip);
        let r = PAGE_CSS.response(None);
        assert_eq!(r.header("Content-Encoding"), None);
        assert_eq!(r.header("Vary"), Some("Accept-Encoding"));
        assert_eq!(r.body, PAGE_CSS.inflate().unwrap());
        assert_eq!(r.header("Content-Type"), Some("text/css; charset=utf-8"));
    }
}
