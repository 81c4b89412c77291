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
use crate::daemon::Inbox;
use auth::{AllowList, Credentials, Lockout, NonceKey, Sessions, Verdict};
use http::{Request, Response};
use serde_json::json;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Client connections served at once; one more is answered 503 and closed.
pub const MAX_CONNS: usize = 8;
/// Stack of each connection's thread (a validated config is large, and a test send runs ureq
/// and rustls on it).
pub const CONN_STACK: usize = 1024 * 1024;
/// Longest time a response may take to be written.
pub const WRITE_TIMEOUT_MS: u64 = 10_000;
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

/// Handed to the daemon in its options; the daemon starts it once its inbox exists.
#[derive(Clone, Debug, Default)]
pub struct AdminSlot(Arc<Mutex<Option<Prepared>>>);

impl AdminSlot {
    pub fn new(p: Prepared) -> AdminSlot {
        AdminSlot(Arc::new(Mutex::new(Some(p))))
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
            active: AtomicUsize::new(0),
        });
        let listener = self.listener;
        #[cfg(feature = "tls")]
        let tls = self.tls;
        std::thread::Builder::new()
            .name("admin".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    let Ok(stream) = conn else { continue };
                    // An address outside the allow-list is answered at once, before a thread or a
                    // read is spent on it.
                    if let Ok(peer) = stream.peer_addr() {
                        if !ctx.allow.allows(peer.ip()) {
                            log::warn!("admin: {} is not in the allow-list: refused", peer.ip());
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
                    if ctx.active.load(Ordering::Acquire) >= MAX_CONNS {
                        let mut s = stream;
                        let _ = s.set_write_timeout(Some(Duration::from_millis(500)));
                        let _ = Response::text(503, "busy: too many admin connections")
                            .write_to(&mut s, false);
                        continue;
                    }
                    ctx.active.fetch_add(1, Ordering::AcqRel);
                    let c = Arc::clone(&ctx);
                    #[cfg(feature = "tls")]
                    let tls = tls.clone();
                    let spawned = std::thread::Builder::new()
                        .name("admin-conn".into())
                        .stack_size(CONN_STACK)
                        .spawn(move || {
                            #[cfg(feature = "tls")]
                            match tls {
                                Some(cfg) => serve_tls(&c, stream, cfg),
                                None => serve_conn(&c, stream),
                            }
                            #[cfg(not(feature = "tls"))]
                            serve_conn(&c, stream);
                            c.active.fetch_sub(1, Ordering::AcqRel);
                        });
                    if spawned.is_err() {
                        ctx.active.fetch_sub(1, Ordering::AcqRel);
                    }
                }
            })?;
        Ok(())
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
    active: AtomicUsize,
}

impl Ctx {
    fn tables(&self) -> std::sync::MutexGuard<'_, Tables> {
        match self.tables.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
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
struct TlsStream(rustls::StreamOwned<rustls::ServerConnection, TcpStream>);

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
    // The handshake shares the head's deadline.
    let _ = stream.set_read_timeout(Some(Duration::from_millis(http::ADMIN_IDLE_MS)));
    let Ok(conn) = rustls::ServerConnection::new(cfg) else {
        return;
    };
    let mut s = TlsStream(rustls::StreamOwned::new(conn, stream));
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
        log::warn!("admin: {ip} is not in the allow-list: refused");
        return Response::error(403, "forbidden", "address not allowed");
    }
    let path = req.path();
    let method = if req.method == "HEAD" {
        "GET"
    } else {
        req.method.as_str()
    };
    // The page and the API document hold no secrets.
    match (method, path) {
        ("GET", "/") | ("GET", "/index.html") => {
            return Response::new(200, "text/html; charset=utf-8", PAGE_HTML)
        }
        ("GET", "/app.css") => return Response::new(200, "text/css; charset=utf-8", PAGE_CSS),
        ("GET", "/app.js") => return Response::new(200, "text/javascript; charset=utf-8", PAGE_JS),
        ("GET", "/api/v1/openapi.json") => {
            return Response::new(200, "application/json", api::OPENAPI)
        }
        _ => {}
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
        let r = r.trim();
        r.len() >= own.len()
            && r[..own.len()].eq_ignore_ascii_case(&own)
            && matches!(r.as_bytes().get(own.len()), None | Some(b'/'))
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
            log::warn!("admin: failed {how} login from {ip}: locked out for {s} s");
            locked(s)
        }
        None => {
            log::warn!("admin: failed {how} login from {ip}");
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
            "GET" | "POST" => api::cti(ctx, req),
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
        ("PUT", ["config"]) => api::put_config(ctx, req),
        ("GET", ["status"]) => api::status(ctx),
        ("GET", ["events", key]) => api::get_event(ctx, key),
        ("PUT", ["events", key]) => api::write_event(ctx, req, key, false),
        ("DELETE", ["events", key]) => api::write_event(ctx, req, key, true),
        ("POST", ["events", key, "preview"]) => api::preview(ctx, req, key),
        ("POST", ["events", key, "test"]) => api::test_send(ctx, req, key),
        ("POST", ["import"]) => api::import(ctx, req),
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

/// A page file as it is served: compacted at compile time by [`compact`], so the sources keep
/// their comments and indentation and the phone stores and sends only what the browser needs.
macro_rules! compacted {
    ($path:literal) => {{
        const SRC: &str = include_str!($path);
        const OUT: ([u8; SRC.len()], usize) = compact::<{ SRC.len() }>(SRC);
        match std::str::from_utf8(OUT.0.split_at(OUT.1).0) {
            Ok(s) => s,
            Err(_) => panic!("a page file compacted to invalid UTF-8"),
        }
    }};
}

const PAGE_HTML: &str = compacted!("page/index.html");
const PAGE_CSS: &str = compacted!("page/app.css");
const PAGE_JS: &str = compacted!("page/app.js");

/// Leading indentation, blank lines and whole-line comments (`// ...` in the script, `/* ... */`
/// in the style sheet) removed. Safe for these files: none has a multi-line string, template
/// literal or `<pre>`, so a line's indentation is never content. Runs at compile time only.
const fn compact<const N: usize>(src: &str) -> ([u8; N], usize) {
    let b = src.as_bytes();
    let mut out = [0u8; N];
    let (mut i, mut n) = (0, 0);
    while i < b.len() {
        let mut end = i;
        while end < b.len() && b[end] != b'\n' {
            end += 1;
        }
        let mut s = i;
        while s < end && (b[s] == b' ' || b[s] == b'\t') {
            s += 1;
        }
        let comment = (end - s >= 2 && b[s] == b'/' && b[s + 1] == b'/')
            || (end - s >= 4
                && b[s] == b'/'
                && b[s + 1] == b'*'
                && b[end - 2] == b'*'
                && b[end - 1] == b'/');
        if s < end && !comment {
            while s < end {
                out[n] = b[s];
                n += 1;
                s += 1;
            }
            if end < b.len() {
                out[n] = b'\n';
                n += 1;
            }
        }
        i = end + 1;
    }
    (out, n)
}

#[cfg(test)]
mod page_tests {
    use super::*;

    #[test]
    fn served_page_is_the_source_without_indentation_or_comment_lines() {
        let src = include_str!("page/app.js");
        let want: Vec<&str> = src
            .lines()
            .map(str::trim_start)
            .filter(|l| !l.is_empty() && !l.starts_with("//"))
            .collect();
        assert_eq!(PAGE_JS.lines().collect::<Vec<_>>(), want);
        assert!(!PAGE_CSS.contains("/*") && PAGE_CSS.contains(":root{"));
        assert!(PAGE_HTML.starts_with("<!DOCTYPE html>\n") && PAGE_HTML.ends_with("</html>\n"));
        let total = PAGE_HTML.len() + PAGE_CSS.len() + PAGE_JS.len();
        assert!(total < 40 * 1024, "the page is {total} bytes");
        let (out, n) = compact::<12>("  a\n\n // c\nb");
        assert_eq!(&out[..n], b"a\nb");
    }
}
