//! `event-notify listen`: a small HTTP/1.1 receiver that prints what it receives.
//!
//! It is the "micro-webserver" an admin points the phone at to see what the phone sends, and the
//! receiver the benchmarks and scripts use. Plain `std::net`, one thread per connection (at most
//! [`MAX_CONNECTIONS`]), keep-alive, `Content-Length` and chunked bodies. Every request is printed
//! as one block written with stdout locked and flushed at once:
//!
//! ```text
//! GET /in?from=1002&name=Bob%20%26%20Alice
//!   from=1002
//!   name=Bob & Alice
//!   auth: basic user=phone
//! ```
//!
//! The first line is the request line's method and target exactly as they arrived; the query pairs
//! follow decoded (percent-decoding, `+` as space, invalid UTF-8 as U+FFFD, control characters
//! escaped so one value can never look like a request), then `auth:` when an `Authorization` header
//! came (the scheme and, for Basic, the user name: never the password), then the body: a form body
//! as decoded pairs, any other body as one `  body: <text>` line.
//!
//! Every size is bounded by a named constant; a request beyond one is answered 431 or 413, garbage
//! 400, and the connection is closed. Nothing here panics on what a peer sends.
//!
//! The parsing pieces ([`Connection`], [`Head`], [`render`], [`form_pairs`]) are public so that the
//! integration tests' recording receiver speaks exactly the same HTTP.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Most connections served at once; one more is answered 503 and closed.
pub const MAX_CONNECTIONS: usize = 64;
/// Longest request head (request line plus headers), in bytes; beyond it: 431.
pub const MAX_HEAD: usize = 8 * 1024;
/// Most header fields in one request; beyond it: 431.
pub const MAX_HEADERS: usize = 64;
/// Longest request body, in bytes (after de-chunking); beyond it: 413.
pub const MAX_BODY: usize = 64 * 1024;
/// Longest chunk-size line (size, extensions) or trailer line of a chunked body.
pub const MAX_CHUNK_LINE: usize = 256;
/// A connection that sends nothing for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// A peer that does not take our answer within this long is dropped.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Stack of each connection thread (all buffers are on the heap).
const CONN_STACK: usize = 128 * 1024;
/// After an error answer, how long and how much we drain before closing, so that the peer reads
/// the answer instead of a reset.
const LINGER: Duration = Duration::from_millis(500);
const LINGER_BYTES: usize = 256 * 1024;

pub const USAGE: &str = "\
usage: event-notify listen --bind ADDR:PORT [--status CODE] [--count N] [--secret S]

A small HTTP/1.1 receiver: for each request, prints a line `METHOD TARGET` exactly as it
arrived, then the decoded query pairs, the user name of an Authorization header (never the
password) and the body (form pairs decoded), each indented by two spaces; flushed at once.

  --bind ADDR:PORT   where to listen (port 0: any free port; the port is printed on stderr)
  --status CODE      the status of every answer (200..599, default 200); the body is empty
  --count N          exit 0 after N requests
  --secret S         check each request's X-Event-Notify-Signature with this signing secret
                     and print `  signature ok` or `  signature refused: WHY` (the secret is
                     never printed)
";

/// What `listen` was asked to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenOpts {
    /// `ADDR:PORT`, anything `ToSocketAddrs` takes (`127.0.0.1:0`, `[::]:8080`, `localhost:80`).
    pub bind: String,
    /// Status code of every answer.
    pub status: u16,
    /// Stop after this many requests were printed and answered.
    pub count: Option<u64>,
    /// Verify each request's signature with this secret.
    pub secret: Option<crate::core::sign::Secret>,
}

impl Default for ListenOpts {
    fn default() -> Self {
        ListenOpts {
            bind: String::new(),
            status: 200,
            count: None,
            secret: None,
        }
    }
}

impl ListenOpts {
    /// Parses the arguments after `listen`. `Ok(None)`: `--help` was asked.
    pub fn from_args<S: AsRef<str>>(args: &[S]) -> Result<Option<ListenOpts>, String> {
        let mut opts = ListenOpts::default();
        let mut bind = None;
        let mut it = args.iter().map(AsRef::as_ref);
        while let Some(arg) = it.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) if n.starts_with("--") => (n, Some(v)),
                _ => (arg, None),
            };
            let value = |it: &mut dyn Iterator<Item = &str>| -> Result<String, String> {
                match inline {
                    Some(v) => Ok(v.to_string()),
                    None => it
                        .next()
                        .map(str::to_string)
                        .ok_or(format!("{name} needs a value")),
                }
            };
            match name {
                "-h" | "--help" => return Ok(None),
                "--bind" => bind = Some(value(&mut it)?),
                "--status" => {
                    let v = value(&mut it)?;
                    opts.status = match v.parse::<u16>() {
                        Ok(code @ 200..=599) => code,
                        _ => return Err(format!("--status {v}: expected a status code 200..599")),
                    };
                }
                "--count" => {
                    let v = value(&mut it)?;
                    opts.count = match v.parse::<u64>() {
                        Ok(n) if n > 0 => Some(n),
                        _ => {
                            return Err(format!("--count {v}: expected a number of requests >= 1"))
                        }
                    };
                }
                "--secret" => {
                    let v = value(&mut it)?;
                    opts.secret =
                        Some(crate::core::sign::Secret::new(v.as_bytes()).ok_or(format!(
                            "--secret: expected 1..{} bytes",
                            crate::core::sign::SECRET_CAP
                        ))?);
                }
                other => return Err(format!("unexpected argument '{other}'")),
            }
        }
        opts.bind = bind.ok_or("--bind ADDR:PORT is required")?;
        Ok(Some(opts))
    }
}

/// The whole `listen` command: arguments after `listen` in, exit code out
/// (0 done, 1 cannot listen or cannot print, 2 usage).
pub fn cli<S: AsRef<str>>(args: &[S]) -> i32 {
    let opts = match ListenOpts::from_args(args) {
        Ok(Some(opts)) => opts,
        Ok(None) => {
            print!("{USAGE}");
            return 0;
        }
        Err(e) => {
            eprintln!("event-notify listen: {e}\n{USAGE}");
            return 2;
        }
    };
    match run(&opts) {
        Ok(()) => 0,
        // Whoever read our stdout is gone (`listen | head`): nothing left to do.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            eprintln!("event-notify listen: {}: {e}", opts.bind);
            1
        }
    }
}

/// Binds `opts.bind`, says `listening on ADDR:PORT` on stderr (the real port), and serves with
/// every request printed on stdout. Returns after `opts.count` requests, or with the error that
/// stopped it (cannot bind, stdout closed).
pub fn run(opts: &ListenOpts) -> io::Result<()> {
    let listener = TcpListener::bind(opts.bind.as_str())?;
    eprintln!("listening on {}", listener.local_addr()?);
    serve(listener, opts, stdout_sink())
}

/// Where the printed requests go: called once per request with the whole block.
pub type Sink = Arc<dyn Fn(&[u8]) -> io::Result<()> + Send + Sync>;

/// Stdout, locked for the whole block and flushed, so blocks of concurrent connections never mix.
pub fn stdout_sink() -> Sink {
    Arc::new(|block: &[u8]| {
        let mut out = io::stdout().lock();
        out.write_all(block)?;
        out.flush()
    })
}

struct Shared {
    status: u16,
    secret: Option<crate::core::sign::Secret>,
    count: Option<u64>,
    /// Requests admitted for printing (with `count`, those past it are dropped unanswered).
    admitted: AtomicU64,
    /// Requests printed and answered.
    done: AtomicU64,
    stop: AtomicBool,
    active: AtomicUsize,
    /// Where to connect to wake the accept loop when stopping.
    wake: SocketAddr,
    sink: Sink,
    failure: Mutex<Option<io::Error>>,
}

impl Shared {
    fn stop(&self, why: Option<io::Error>) {
        if let Some(e) = why {
            if let Ok(mut f) = self.failure.lock() {
                f.get_or_insert(e);
            }
        }
        if !self.stop.swap(true, Ordering::SeqCst) {
            let _ = TcpStream::connect_timeout(&self.wake, Duration::from_secs(1));
        }
    }
}

/// Serves `listener` until `opts.count` requests were answered or the sink fails.
/// `opts.bind` is not used. Connection threads still busy when it returns end with the process
/// (or on their own: each one stops at its next request).
pub fn serve(listener: TcpListener, opts: &ListenOpts, sink: Sink) -> io::Result<()> {
    let local = listener.local_addr()?;
    let wake_ip = match local.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let shared = Arc::new(Shared {
        status: opts.status,
        secret: opts.secret.clone(),
        count: opts.count,
        admitted: AtomicU64::new(0),
        done: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        active: AtomicUsize::new(0),
        wake: SocketAddr::new(wake_ip, local.port()),
        sink,
        failure: Mutex::new(None),
    });
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                // Out of descriptors or an aborted handshake: not the listener's end.
                eprintln!("listen: accept: {e}");
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        if shared.active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            shared.active.fetch_sub(1, Ordering::SeqCst);
            let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
            // Answered from the accept loop: no lingering here, the loop must go on at once.
            reject(stream, 503, "too many connections", false);
            continue;
        }
        let conn_shared = Arc::clone(&shared);
        let spawned = std::thread::Builder::new()
            .name("listen-conn".into())
            .stack_size(CONN_STACK)
            .spawn(move || {
                handle(stream, &conn_shared);
                conn_shared.active.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(e) = spawned {
            // The stream went down with the closure; the peer sees the connection closed.
            shared.active.fetch_sub(1, Ordering::SeqCst);
            eprintln!("listen: cannot start a connection thread: {e}");
        }
    }
    let failure = shared.failure.lock().ok().and_then(|mut f| f.take());
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn handle(stream: TcpStream, shared: &Shared) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let mut conn = Connection::new(stream);
    loop {
        let head = match conn.read_head() {
            Ok(Some(head)) => head,
            Ok(None) | Err(ReadError::Io(_)) => return,
            Err(ReadError::Http(e)) => {
                return reject(conn.into_inner(), e.status(), e.what(), true)
            }
        };
        let body = match read_body_answering_continue(&mut conn, &head) {
            Ok(body) => body,
            Err(ReadError::Io(_)) => return,
            Err(ReadError::Http(e)) => {
                return reject(conn.into_inner(), e.status(), e.what(), true)
            }
        };
        let n = shared.admitted.fetch_add(1, Ordering::SeqCst) + 1;
        if shared.count.is_some_and(|c| n > c) || shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let mut block = render(&head, &body);
        if let Some(secret) = &shared.secret {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            block.push_str(&crate::core::sign::check_line(
                secret,
                head.header(crate::core::sign::SIGNATURE_HEADER),
                head.header(crate::core::sign::ID_HEADER),
                &head.method,
                &head.target,
                &body,
                now,
            ));
        }
        if let Err(e) = (shared.sink)(block.as_bytes()) {
            return shared.stop(Some(e));
        }
        let last = shared.count == Some(n);
        let keep_alive = head.keep_alive() && !last;
        let answered = write_response(conn.get_mut(), head.version, shared.status, keep_alive);
        let done = shared.done.fetch_add(1, Ordering::SeqCst) + 1;
        if shared.count == Some(done) {
            shared.stop(None);
        }
        if answered.is_err() || !keep_alive {
            let _ = conn.get_mut().shutdown(Shutdown::Write);
            return;
        }
    }
}

/// Reads the body of `head`, first sending `100 Continue` when the client waits for it.
pub fn read_body_answering_continue<S: Read + Write>(
    conn: &mut Connection<S>,
    head: &Head,
) -> Result<Vec<u8>, ReadError> {
    let kind = head.body_kind()?;
    if let BodyKind::Length(n) = kind {
        if n > MAX_BODY as u64 {
            return Err(HttpError::BodyTooLarge.into());
        }
    }
    if kind != BodyKind::None && head.expects_continue() {
        conn.get_mut()
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .map_err(ReadError::Io)?;
    }
    conn.read_body(kind)
}

/// Answers `status` with `Connection: close`, logs why on stderr, and closes (gently when
/// `linger`: after draining what the peer still sends, for a bounded time).
fn reject(mut stream: TcpStream, status: u16, why: &str, linger: bool) {
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".into());
    eprintln!("listen: {peer}: {status} {}: {why}", reason(status));
    if write_response(&mut stream, Version::Http11, status, false).is_err() {
        return;
    }
    // Closing with unread input would reset the connection and could destroy our answer before
    // the peer reads it: stop sending, then drain a bounded amount for a bounded time.
    let _ = stream.shutdown(Shutdown::Write);
    if !linger {
        return;
    }
    let _ = stream.set_read_timeout(Some(LINGER));
    let started = Instant::now();
    let mut drained = 0;
    let mut sink = [0u8; 4096];
    while drained < LINGER_BYTES && started.elapsed() < LINGER {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
}

/// Writes an answer with an empty body.
pub fn write_response(
    w: &mut impl Write,
    version: Version,
    status: u16,
    keep_alive: bool,
) -> io::Result<()> {
    let connection = match (keep_alive, version) {
        (false, _) => "Connection: close\r\n",
        (true, Version::Http10) => "Connection: keep-alive\r\n",
        (true, Version::Http11) => "",
    };
    let text = format!(
        "HTTP/1.1 {status} {}\r\nContent-Length: 0\r\n{connection}\r\n",
        reason(status)
    );
    w.write_all(text.as_bytes())?;
    w.flush()
}

/// The reason phrase of a status code (`"Status"` for one not listed).
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Status",
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP/1.1 request parsing

/// The protocol version of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

/// Why a request is refused; each maps to the status we answer before closing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpError {
    /// Malformed request line, header, length or chunk: 400.
    BadRequest,
    /// Head longer than [`MAX_HEAD`] or more than [`MAX_HEADERS`] fields: 431.
    HeadTooLarge,
    /// Body longer than [`MAX_BODY`]: 413.
    BodyTooLarge,
    /// A transfer coding other than chunked: 501.
    NotImplemented,
    /// Not HTTP/1.0 or HTTP/1.1: 505.
    VersionNotSupported,
}

impl HttpError {
    pub fn status(self) -> u16 {
        match self {
            HttpError::BadRequest => 400,
            HttpError::HeadTooLarge => 431,
            HttpError::BodyTooLarge => 413,
            HttpError::NotImplemented => 501,
            HttpError::VersionNotSupported => 505,
        }
    }

    fn what(self) -> &'static str {
        match self {
            HttpError::BadRequest => "malformed request",
            HttpError::HeadTooLarge => "request head over the limit",
            HttpError::BodyTooLarge => "request body over the limit",
            HttpError::NotImplemented => "unsupported transfer coding",
            HttpError::VersionNotSupported => "unsupported HTTP version",
        }
    }
}

/// Reading a request failed: the peer's I/O (close silently) or its HTTP (answer, then close).
#[derive(Debug)]
pub enum ReadError {
    Io(io::Error),
    Http(HttpError),
}

impl From<HttpError> for ReadError {
    fn from(e: HttpError) -> Self {
        ReadError::Http(e)
    }
}

/// How the body of a request is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    None,
    Length(u64),
    Chunked,
}

/// A request line and its header fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    pub method: String,
    /// The request target exactly as it arrived (bytes that are not UTF-8 shown as U+FFFD).
    pub target: String,
    pub version: Version,
    /// Field names as sent, values without surrounding white space, in arrival order.
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// Parses a request head: the bytes up to and without the empty line that ends it.
    pub fn parse(bytes: &[u8]) -> Result<Head, HttpError> {
        let mut lines = bytes
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            // A client may send empty lines before a request (RFC 9112 §2.2).
            .skip_while(|l| l.is_empty());
        let line = lines.next().ok_or(HttpError::BadRequest)?;
        let mut parts = line.split(|&b| b == b' ');
        let (Some(method), Some(target), Some(version), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(HttpError::BadRequest);
        };
        if method.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
            return Err(HttpError::BadRequest);
        }
        if target.is_empty() || target.iter().any(|&b| b <= b' ' || b == 0x7f) {
            return Err(HttpError::BadRequest);
        }
        let version = match version {
            b"HTTP/1.1" => Version::Http11,
            b"HTTP/1.0" => Version::Http10,
            v if v.starts_with(b"HTTP/") => return Err(HttpError::VersionNotSupported),
            _ => return Err(HttpError::BadRequest),
        };
        let mut headers = Vec::new();
        for line in lines {
            if line.is_empty() {
                break;
            }
            if headers.len() == MAX_HEADERS {
                return Err(HttpError::HeadTooLarge);
            }
            let colon = line
                .iter()
                .position(|&b| b == b':')
                .ok_or(HttpError::BadRequest)?;
            let (name, value) = (&line[..colon], &line[colon + 1..]);
            // No obsolete line folding, no space before the colon (RFC 9112 §5).
            if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
                return Err(HttpError::BadRequest);
            }
            let value = value.trim_ascii();
            if value.iter().any(|&b| (b < b' ' && b != b'\t') || b == 0x7f) {
                return Err(HttpError::BadRequest);
            }
            headers.push((
                String::from_utf8_lossy(name).into_owned(),
                String::from_utf8_lossy(value).into_owned(),
            ));
        }
        Ok(Head {
            method: String::from_utf8_lossy(method).into_owned(),
            target: String::from_utf8_lossy(target).into_owned(),
            version,
            headers,
        })
    }

    /// The first value of a header field (name matched case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// How the body is delimited (RFC 9112 §6.3); conflicting or invalid framing is an error,
    /// never a guess.
    pub fn body_kind(&self) -> Result<BodyKind, HttpError> {
        let mut codings = self
            .headers_named("transfer-encoding")
            .flat_map(|v| v.split(','));
        if let Some(first) = codings.next() {
            if self.header("content-length").is_some() || self.version == Version::Http10 {
                return Err(HttpError::BadRequest);
            }
            return match (first.trim(), codings.next()) {
                (c, None) if c.eq_ignore_ascii_case("chunked") => Ok(BodyKind::Chunked),
                _ => Err(HttpError::NotImplemented),
            };
        }
        let mut length = None;
        for value in self
            .headers_named("content-length")
            .flat_map(|v| v.split(','))
        {
            let value = value.trim();
            if value.is_empty() || value.len() > 19 || !value.bytes().all(|b| b.is_ascii_digit()) {
                return Err(HttpError::BadRequest);
            }
            let n: u64 = value.parse().map_err(|_| HttpError::BadRequest)?;
            if length.is_some_and(|l| l != n) {
                return Err(HttpError::BadRequest);
            }
            length = Some(n);
        }
        Ok(match length {
            Some(0) | None => BodyKind::None,
            Some(n) => BodyKind::Length(n),
        })
    }

    /// Whether the connection stays open after the answer.
    pub fn keep_alive(&self) -> bool {
        let has = |token: &str| {
            self.headers_named("connection")
                .flat_map(|v| v.split(','))
                .any(|t| t.trim().eq_ignore_ascii_case(token))
        };
        match self.version {
            Version::Http11 => !has("close"),
            Version::Http10 => has("keep-alive") && !has("close"),
        }
    }

    /// Whether the client waits for `100 Continue` before sending the body.
    pub fn expects_continue(&self) -> bool {
        self.version == Version::Http11
            && self
                .header("expect")
                .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Where a head ends in `buf`: the index just after the empty line (`\r\n\r\n` or `\n\n`),
/// ignoring empty lines before the request line.
pub fn find_head_end(buf: &[u8]) -> Option<usize> {
    let mut line_start = 0;
    let mut seen_line = false;
    for (i, &b) in buf.iter().enumerate() {
        if b != b'\n' {
            continue;
        }
        let line = &buf[line_start..i];
        let empty = line.is_empty() || line == b"\r";
        if empty && seen_line {
            return Some(i + 1);
        }
        seen_line |= !empty;
        line_start = i + 1;
    }
    None
}

/// A connection's read side with one bounded buffer: reads heads and bodies of successive
/// requests (keep-alive). `S` may be a `TcpStream` or a TLS stream.
pub struct Connection<S> {
    stream: S,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl<S: Read> Connection<S> {
    pub fn new(stream: S) -> Self {
        Connection {
            stream,
            buf: vec![0; MAX_HEAD].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    pub fn into_inner(self) -> S {
        self.stream
    }

    /// Reads more input into the buffer; `Ok(0)` at end of stream.
    fn fill(&mut self) -> io::Result<usize> {
        if self.start > 0 && self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            return Ok(0);
        }
        loop {
            match self.stream.read(&mut self.buf[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// The next request's head; `Ok(None)` when the peer closed between requests.
    pub fn read_head(&mut self) -> Result<Option<Head>, ReadError> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        loop {
            // Heads are small and bounded: rescanning the whole of one per read is cheap.
            if let Some(n) = find_head_end(&self.buf[self.start..self.end]) {
                let head = Head::parse(&self.buf[self.start..self.start + n]);
                self.start += n;
                return head.map(Some).map_err(ReadError::Http);
            }
            if self.end - self.start >= MAX_HEAD {
                return Err(HttpError::HeadTooLarge.into());
            }
            match self.fill() {
                Ok(0)
                    if self.start == self.end
                        || self.buf[self.start..self.end].trim_ascii().is_empty() =>
                {
                    return Ok(None)
                }
                Ok(0) => {
                    return Err(ReadError::Io(io::ErrorKind::UnexpectedEof.into()));
                }
                Ok(_) => {}
                Err(e) => return Err(ReadError::Io(e)),
            }
        }
    }

    /// Takes up to `n` buffered or freshly read bytes into `out`.
    fn take_into(&mut self, out: &mut Vec<u8>, n: usize) -> Result<(), ReadError> {
        let mut left = n;
        while left > 0 {
            if self.start == self.end {
                self.start = 0;
                self.end = 0;
                match self.fill() {
                    Ok(0) => return Err(ReadError::Io(io::ErrorKind::UnexpectedEof.into())),
                    Ok(_) => {}
                    Err(e) => return Err(ReadError::Io(e)),
                }
            }
            let k = left.min(self.end - self.start);
            out.extend_from_slice(&self.buf[self.start..self.start + k]);
            self.start += k;
            left -= k;
        }
        Ok(())
    }

    /// One line of at most `max` bytes, without its `\r\n` / `\n`.
    fn read_line(&mut self, max: usize) -> Result<Vec<u8>, ReadError> {
        loop {
            let avail = &self.buf[self.start..self.end];
            if let Some(i) = avail.iter().position(|&b| b == b'\n') {
                let line = avail[..i].strip_suffix(b"\r").unwrap_or(&avail[..i]);
                if line.len() > max {
                    return Err(HttpError::BadRequest.into());
                }
                let line = line.to_vec();
                self.start += i + 1;
                return Ok(line);
            }
            // Room for the line and its `\r`.
            if avail.len() > max + 1 {
                return Err(HttpError::BadRequest.into());
            }
            match self.fill() {
                Ok(0) => return Err(ReadError::Io(io::ErrorKind::UnexpectedEof.into())),
                Ok(_) => {}
                Err(e) => return Err(ReadError::Io(e)),
            }
        }
    }

    /// Reads a body delimited as `kind`, at most [`MAX_BODY`] bytes.
    pub fn read_body(&mut self, kind: BodyKind) -> Result<Vec<u8>, ReadError> {
        let mut body = Vec::new();
        match kind {
            BodyKind::None => {}
            BodyKind::Length(n) => {
                if n > MAX_BODY as u64 {
                    return Err(HttpError::BodyTooLarge.into());
                }
                body.reserve_exact(n as usize);
                self.take_into(&mut body, n as usize)?;
            }
            BodyKind::Chunked => loop {
                let line = self.read_line(MAX_CHUNK_LINE)?;
                let size = line
                    .split(|&b| b == b';')
                    .next()
                    .unwrap_or_default()
                    .trim_ascii();
                if size.is_empty() || size.len() > 8 || !size.iter().all(u8::is_ascii_hexdigit) {
                    return Err(HttpError::BadRequest.into());
                }
                let size = std::str::from_utf8(size)
                    .ok()
                    .and_then(|s| usize::from_str_radix(s, 16).ok())
                    .ok_or(HttpError::BadRequest)?;
                if size == 0 {
                    // Trailer fields, ignored, up to the empty line.
                    for _ in 0..=MAX_HEADERS {
                        if self.read_line(MAX_CHUNK_LINE)?.is_empty() {
                            return Ok(body);
                        }
                    }
                    return Err(HttpError::HeadTooLarge.into());
                }
                if body.len() + size > MAX_BODY {
                    return Err(HttpError::BodyTooLarge.into());
                }
                self.take_into(&mut body, size)?;
                if !self.read_line(0)?.is_empty() {
                    return Err(HttpError::BadRequest.into());
                }
            },
        }
        Ok(body)
    }
}

// ---------------------------------------------------------------------------------------------
// Display

/// The printed block for one request (see the module documentation), ending with a newline.
pub fn render(head: &Head, body: &[u8]) -> String {
    let mut out = String::with_capacity(64 + head.target.len() * 2 + body.len());
    out.push_str(&head.method);
    out.push(' ');
    out.push_str(&head.target);
    out.push('\n');
    if let Some((_, query)) = head.target.split_once('?') {
        let query = query.split_once('#').map_or(query, |(q, _)| q);
        push_pairs(&mut out, query.as_bytes());
    }
    for value in head.headers_named("authorization") {
        out.push_str("  auth: ");
        out.push_str(&auth_summary(value));
        out.push('\n');
    }
    if !body.is_empty() {
        let form = head.header("content-type").is_some_and(|t| {
            t.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
        if form {
            push_pairs(&mut out, body);
        } else {
            out.push_str("  body: ");
            push_display(&mut out, &String::from_utf8_lossy(body));
            out.push('\n');
        }
    }
    out
}

fn push_pairs(out: &mut String, form: &[u8]) {
    for (key, value) in form_pairs(form) {
        out.push_str("  ");
        push_display(out, &key);
        if let Some(value) = value {
            out.push('=');
            push_display(out, &value);
        }
        out.push('\n');
    }
}

/// Splits `a=1&b=x+y&flag` into decoded pairs (`None`: no `=`); empty pieces are skipped.
pub fn form_pairs(form: &[u8]) -> Vec<(String, Option<String>)> {
    form.split(|&b| b == b'&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| match piece.iter().position(|&b| b == b'=') {
            Some(i) => (form_decode(&piece[..i]), Some(form_decode(&piece[i + 1..]))),
            None => (form_decode(piece), None),
        })
        .collect()
}

/// Percent-decodes `s` with `+` as a space; a `%` not followed by two hex digits stays as it is;
/// bytes that are not UTF-8 become U+FFFD.
pub fn form_decode(s: &[u8]) -> String {
    let mut bytes = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => bytes.push(b' '),
            b'%' if i + 2 < s.len() && hex(s[i + 1]).is_some() && hex(s[i + 2]).is_some() => {
                bytes.push(hex(s[i + 1]).unwrap_or(0) << 4 | hex(s[i + 2]).unwrap_or(0));
                i += 2;
            }
            b => bytes.push(b),
        }
        i += 1;
    }
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

use crate::core::wire::hex;

/// Appends `s` with control characters escaped (`\n`, `\r`, `\t`, `\xNN`, `\u{NN}`), so that
/// a decoded value always stays on its own line.
fn push_display(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
}

/// What may be shown of an `Authorization` value: the scheme, and for Basic the user name.
/// The password and any other credential never appear.
pub fn auth_summary(value: &str) -> String {
    let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        let mut shown = String::new();
        push_display(&mut shown, &scheme.to_ascii_lowercase());
        return shown;
    }
    match base64_decode(rest.trim().as_bytes()) {
        Some(decoded) => {
            let user = decoded.split(|&b| b == b':').next().unwrap_or_default();
            let mut shown = String::from("basic user=");
            push_display(&mut shown, &String::from_utf8_lossy(user));
            shown
        }
        None => "basic (not valid base64)".into(),
    }
}

/// Standard base64 with optional padding; `None` on anything else.
pub fn base64_decode(s: &[u8]) -> Option<Vec<u8>> {
    let s = s
        .strip_suffix(b"==")
        .or_else(|| s.strip_suffix(b"="))
        .unwrap_or(s);
    if s.len() % 4 == 1 {
        return None;
    }
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.chunks(4) {
        let mut acc = 0u32;
        for &c in chunk {
            acc = acc << 6 | value(c)?;
        }
        acc <<= 6 * (4 - chunk.len() as u32);
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Head {
        Head::parse(text.as_bytes()).expect("valid head")
    }

    fn shown(text: &str, body: &str) -> String {
        render(&head(text), body.as_bytes())
    }

    #[test]
    fn decodes_forms() {
        let cases: &[(&str, &str)] = &[
            ("a%20b", "a b"),
            ("a+b", "a b"),
            ("%2B", "+"),
            ("Bob%20%26%20Alice%20%232", "Bob & Alice #2"),
            ("%e2%82%ac", "€"),
            ("%E2%82%AC", "€"),
            ("%", "%"),
            ("%4", "%4"),
            ("%zz", "%zz"),
            ("100%", "100%"),
            ("%ff", "\u{fffd}"),
            ("a%C3", "a\u{fffd}"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(form_decode(input.as_bytes()), *want, "decoding {input:?}");
        }
    }

    #[test]
    fn splits_pairs() {
        let pairs = form_pairs(b"from=1002&&name=Bob+%26+Alice&flag&empty=&=v&k=a=b");
        let want: Vec<(String, Option<String>)> = vec![
            ("from".into(), Some("1002".into())),
            ("name".into(), Some("Bob & Alice".into())),
            ("flag".into(), None),
            ("empty".into(), Some("".into())),
            ("".into(), Some("v".into())),
            ("k".into(), Some("a=b".into())),
        ];
        assert_eq!(pairs, want);
    }

    #[test]
    fn decodes_base64() {
        assert_eq!(
            base64_decode(b"cGhvbmU6czNjcmV0").as_deref(),
            Some(&b"phone:s3cret"[..])
        );
        assert_eq!(base64_decode(b"YQ==").as_deref(), Some(&b"a"[..]));
        assert_eq!(base64_decode(b"YWI=").as_deref(), Some(&b"ab"[..]));
        assert_eq!(base64_decode(b"YWI").as_deref(), Some(&b"ab"[..]));
        assert_eq!(base64_decode(b"").as_deref(), Some(&b""[..]));
        assert_eq!(base64_decode(b"Y"), None);
        assert_eq!(base64_decode(b"Y!=="), None);
        assert_eq!(base64_decode(b"YW I="), None);
    }

    #[test]
    fn renders_request_line_raw_and_query_decoded() {
        let out = shown(
            "GET /in?from=1002&name=Bob%20%26%20Alice%20%232&x=a+b HTTP/1.1\r\nHost: h\r\n",
            "",
        );
        assert_eq!(
            out,
            "GET /in?from=1002&name=Bob%20%26%20Alice%20%232&x=a+b\n  from=1002\n  name=Bob & Alice #2\n  x=a b\n"
        );
        assert_eq!(shown("GET / HTTP/1.1\r\n", ""), "GET /\n");
        assert_eq!(shown("GET /p? HTTP/1.1\r\n", ""), "GET /p?\n");
        assert_eq!(
            shown("GET /p?flag HTTP/1.0\r\n", ""),
            "GET /p?flag\n  flag\n"
        );
    }

    #[test]
    fn escapes_control_characters_in_values() {
        let out = shown("GET /?v=a%0AGET%20/fake&t=%09%00%7f%C2%85 HTTP/1.1\r\n", "");
        assert_eq!(out, "GET /?v=a%0AGET%20/fake&t=%09%00%7f%C2%85\n  v=a\\nGET /fake\n  t=\\t\\x00\\x7f\\u{85}\n");
    }

    #[test]
    fn shows_basic_user_never_password() {
        // phone:s3cret
        let out = shown(
            "GET /x HTTP/1.1\r\nAuthorization: Basic cGhvbmU6czNjcmV0\r\n",
            "",
        );
        assert_eq!(out, "GET /x\n  auth: basic user=phone\n");
        assert!(!out.contains("s3cret"));
        // A user with no password, a lower-case scheme, a bearer token and garbage.
        assert_eq!(auth_summary("basic dTE="), "basic user=u1");
        assert_eq!(auth_summary("Bearer abc.def"), "bearer");
        assert_eq!(auth_summary("Basic !!!"), "basic (not valid base64)");
        // "u:p:w" — a colon in the password stays hidden too.
        assert_eq!(auth_summary("Basic dTpwOnc="), "basic user=u");
    }

    #[test]
    fn renders_bodies() {
        let form = "POST /end HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded; charset=utf-8\r\nContent-Length: 20\r\n";
        assert_eq!(
            shown(form, "id=a84b&t=12&n=B+%26"),
            "POST /end\n  id=a84b\n  t=12\n  n=B &\n"
        );
        let json = "POST /end?id=1 HTTP/1.1\r\nContent-Type: application/json\r\n";
        assert_eq!(
            shown(json, "{\"id\":\"a84b\",\n\"t\":12}"),
            "POST /end?id=1\n  id=1\n  body: {\"id\":\"a84b\",\\n\"t\":12}\n"
        );
        let raw = "PUT /r HTTP/1.1\r\n";
        assert_eq!(
            render(&head(raw), b"\xffok"),
            "PUT /r\n  body: \u{fffd}ok\n"
        );
    }

    #[test]
    fn parses_heads() {
        let h = head("\r\nPOST /a?b HTTP/1.0\r\nHost:  x \r\ncontent-length: 5\r\nX-Empty:\r\n");
        assert_eq!(h.method, "POST");
        assert_eq!(h.target, "/a?b");
        assert_eq!(h.version, Version::Http10);
        assert_eq!(h.header("HOST"), Some("x"));
        assert_eq!(h.header("x-empty"), Some(""));
        assert_eq!(h.body_kind(), Ok(BodyKind::Length(5)));
        // Bare \n line ends are accepted.
        assert_eq!(head("GET / HTTP/1.1\nA: b\n").header("a"), Some("b"));
    }

    #[test]
    fn refuses_bad_heads() {
        let bad: &[(&str, HttpError)] = &[
            ("", HttpError::BadRequest),
            ("GET /\r\n", HttpError::BadRequest),
            ("GET  / HTTP/1.1\r\n", HttpError::BadRequest),
            ("GET / HTTP/1.1 x\r\n", HttpError::BadRequest),
            ("G(T / HTTP/1.1\r\n", HttpError::BadRequest),
            ("GET /\x01 HTTP/1.1\r\n", HttpError::BadRequest),
            ("GET / FTP/1.1\r\n", HttpError::BadRequest),
            ("GET / HTTP/2.0\r\n", HttpError::VersionNotSupported),
            ("GET / HTTP/1.1\r\nNoColon\r\n", HttpError::BadRequest),
            ("GET / HTTP/1.1\r\nBad Name: v\r\n", HttpError::BadRequest),
            (
                "GET / HTTP/1.1\r\nA: b\r\n folded\r\n",
                HttpError::BadRequest,
            ),
            ("GET / HTTP/1.1\r\nA: b\x00c\r\n", HttpError::BadRequest),
            ("\u{0}\u{1}\u{2}", HttpError::BadRequest),
        ];
        for (text, want) in bad {
            assert_eq!(Head::parse(text.as_bytes()), Err(*want), "parsing {text:?}");
        }
        let many: String = (0..=MAX_HEADERS).map(|i| format!("H{i}: v\r\n")).collect();
        assert_eq!(
            Head::parse(format!("GET / HTTP/1.1\r\n{many}").as_bytes()),
            Err(HttpError::HeadTooLarge)
        );
    }

    #[test]
    fn body_framing() {
        let kind = |extra: &str| head(&format!("POST / HTTP/1.1\r\n{extra}")).body_kind();
        assert_eq!(kind(""), Ok(BodyKind::None));
        assert_eq!(kind("Content-Length: 0\r\n"), Ok(BodyKind::None));
        assert_eq!(
            kind("Content-Length: 12\r\nContent-Length: 12\r\n"),
            Ok(BodyKind::Length(12))
        );
        assert_eq!(kind("Content-Length: 12, 12\r\n"), Ok(BodyKind::Length(12)));
        assert_eq!(
            kind("Content-Length: 12\r\nContent-Length: 13\r\n"),
            Err(HttpError::BadRequest)
        );
        assert_eq!(kind("Content-Length: -1\r\n"), Err(HttpError::BadRequest));
        assert_eq!(kind("Content-Length: +1\r\n"), Err(HttpError::BadRequest));
        assert_eq!(
            kind("Content-Length: 99999999999999999999\r\n"),
            Err(HttpError::BadRequest)
        );
        assert_eq!(
            kind("Transfer-Encoding: chunked\r\n"),
            Ok(BodyKind::Chunked)
        );
        assert_eq!(
            kind("Transfer-Encoding: Chunked\r\n"),
            Ok(BodyKind::Chunked)
        );
        assert_eq!(
            kind("Transfer-Encoding: gzip, chunked\r\n"),
            Err(HttpError::NotImplemented)
        );
        assert_eq!(
            kind("Transfer-Encoding: chunked\r\nContent-Length: 3\r\n"),
            Err(HttpError::BadRequest)
        );
    }

    #[test]
    fn keep_alive_rules() {
        assert!(head("GET / HTTP/1.1\r\n").keep_alive());
        assert!(!head("GET / HTTP/1.1\r\nConnection: Close\r\n").keep_alive());
        assert!(!head("GET / HTTP/1.0\r\n").keep_alive());
        assert!(head("GET / HTTP/1.0\r\nConnection: keep-alive\r\n").keep_alive());
        assert!(head("PUT / HTTP/1.1\r\nExpect: 100-continue\r\n").expects_continue());
        assert!(!head("PUT / HTTP/1.0\r\nExpect: 100-continue\r\n").expects_continue());
    }

    #[test]
    fn finds_head_end() {
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r\nrest"), Some(18));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\n\nrest"), Some(16));
        assert_eq!(
            find_head_end(b"\r\n\r\nGET / HTTP/1.1\r\nA: b\r\n\r\n"),
            Some(28)
        );
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nA: b\r\n"), None);
        assert_eq!(find_head_end(b"\r\n\r\n"), None);
    }

    /// A reader that hands out its input in fixed-size pieces, to cross every buffer boundary.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.1.min(buf.len()).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn read_all(input: &[u8], piece: usize) -> Result<Vec<(Head, Vec<u8>)>, String> {
        let mut conn = Connection::new(Trickle(input, piece));
        let mut out = Vec::new();
        loop {
            let head = match conn.read_head() {
                Ok(Some(h)) => h,
                Ok(None) => return Ok(out),
                Err(e) => return Err(format!("{e:?}")),
            };
            let kind = head.body_kind().map_err(|e| format!("{e:?}"))?;
            let body = conn.read_body(kind).map_err(|e| format!("{e:?}"))?;
            out.push((head, body));
        }
    }

    #[test]
    fn reads_pipelined_requests_across_buffer_boundaries() {
        let input = b"POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /b?x=1 HTTP/1.1\r\n\r\n\
POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nTrailer: x\r\n\r\n\
GET /d HTTP/1.1\r\n\r\n";
        for piece in [1, 2, 3, 7, 64, 4096] {
            let got = read_all(input, piece).expect("valid stream");
            let summary: Vec<(String, Vec<u8>)> =
                got.into_iter().map(|(h, b)| (h.target, b)).collect();
            assert_eq!(
                summary,
                vec![
                    ("/a".into(), b"hello".to_vec()),
                    ("/b?x=1".into(), vec![]),
                    ("/c".into(), b"Wikipedia".to_vec()),
                    ("/d".into(), vec![]),
                ],
                "piece size {piece}"
            );
        }
    }

    #[test]
    fn bounds_heads_and_bodies() {
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_HEAD));
        assert_eq!(
            read_all(long.as_bytes(), 1000),
            Err("Http(HeadTooLarge)".into())
        );
        let big = format!(
            "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        assert_eq!(
            read_all(big.as_bytes(), 1000),
            Err("Http(BodyTooLarge)".into())
        );
        let chunk = format!(
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
            MAX_BODY + 1
        );
        assert_eq!(
            read_all(chunk.as_bytes(), 1000),
            Err("Http(BodyTooLarge)".into())
        );
        let bad_chunk = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        assert_eq!(read_all(bad_chunk, 1000), Err("Http(BadRequest)".into()));
        let no_crlf = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n";
        assert_eq!(read_all(no_crlf, 1000), Err("Http(BadRequest)".into()));
        let cut = b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc";
        assert!(read_all(cut, 1000).unwrap_err().starts_with("Io("));
        let cut_head = b"GET / HTTP/1.1\r\nHost";
        assert!(read_all(cut_head, 1000).unwrap_err().starts_with("Io("));
    }

    #[test]
    fn never_panics_on_garbage() {
        // A deterministic pseudo-random byte soup with HTTP-ish pieces mixed in.
        let pieces: &[&[u8]] = &[
            b"GET ",
            b"POST ",
            b" HTTP/1.1",
            b"\r\n",
            b"\n",
            b":",
            b"Content-Length: ",
            b"9",
            b"Transfer-Encoding: chunked",
            b"%",
            b"?",
            b"&",
            b"=",
            b"\xff",
            b"\x00",
            b"ffffffff",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            let mut input = Vec::new();
            for _ in 0..(seed % 40) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                input.extend_from_slice(pieces[(seed % pieces.len() as u64) as usize]);
            }
            let mut conn = Connection::new(Trickle(&input, 1 + (seed % 5) as usize));
            while let Ok(Some(h)) = conn.read_head() {
                let _ = render(&h, b"");
                match h.body_kind() {
                    Ok(kind) => match conn.read_body(kind) {
                        Ok(body) => drop(render(&h, &body)),
                        Err(_) => break,
                    },
                    Err(_) => break,
                }
            }
        }
    }

    #[test]
    fn parses_arguments() {
        let parse = |args: &[&str]| ListenOpts::from_args(args);
        assert_eq!(
            parse(&["--bind", "127.0.0.1:0", "--status", "503", "--count=3"]),
            Ok(Some(ListenOpts {
                bind: "127.0.0.1:0".into(),
                status: 503,
                count: Some(3),
                secret: None,
            }))
        );
        assert_eq!(
            parse(&["--bind=[::]:8080"]),
            Ok(Some(ListenOpts {
                bind: "[::]:8080".into(),
                status: 200,
                count: None,
                secret: None,
            }))
        );
        let with = parse(&["--bind=x", "--secret", "s3cret"]).unwrap().unwrap();
        assert_eq!(
            with.secret.as_ref().map(|s| s.expose()),
            Some(&b"s3cret"[..])
        );
        assert!(!format!("{with:?}").contains("s3cret"));
        let err = parse(&["--bind=x", "--secret="]).unwrap_err();
        assert!(err.contains("--secret"), "{err}");
        assert_eq!(parse(&["--help"]), Ok(None));
        for bad in [
            &["--status", "200"][..],
            &["--bind"],
            &["--bind", "x", "--count", "0"],
            &["--bind", "x", "--status", "99"],
            &["--bind", "x", "extra"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    // -----------------------------------------------------------------------------------------
    // The server, end to end on loopback.

    struct Running {
        addr: SocketAddr,
        out: Arc<Mutex<Vec<u8>>>,
        done: std::sync::mpsc::Receiver<io::Result<()>>,
    }

    fn start(status: u16, count: Option<u64>) -> Running {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink_out = Arc::clone(&out);
        let sink: Sink = Arc::new(move |b: &[u8]| {
            sink_out.lock().expect("sink").extend_from_slice(b);
            Ok(())
        });
        let (tx, done) = std::sync::mpsc::channel();
        let opts = ListenOpts {
            bind: String::new(),
            status,
            count,
            secret: None,
        };
        std::thread::spawn(move || {
            let _ = tx.send(serve(listener, &opts, sink));
        });
        Running { addr, out, done }
    }

    fn connect(addr: SocketAddr) -> TcpStream {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        s
    }

    /// Reads one answer head (our answers have no body).
    fn answer(s: &mut TcpStream) -> String {
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

    #[test]
    fn serves_keep_alive_and_stops_after_count() {
        let r = start(202, Some(3));
        let mut s = connect(r.addr);
        s.write_all(b"GET /one?a=1 HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        assert_eq!(
            answer(&mut s),
            "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"
        );
        s.write_all(b"POST /two HTTP/1.1\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n").unwrap();
        assert_eq!(answer(&mut s), "HTTP/1.1 100 Continue\r\n\r\n");
        s.write_all(b"{}").unwrap();
        assert_eq!(
            answer(&mut s),
            "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"
        );
        // The third and last request is answered with Connection: close, then serve returns.
        s.write_all(b"GET /three HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(
            answer(&mut s),
            "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let result = r
            .done
            .recv_timeout(Duration::from_secs(5))
            .expect("serve returned");
        assert!(result.is_ok());
        let out = String::from_utf8(r.out.lock().unwrap().clone()).unwrap();
        assert_eq!(
            out,
            "GET /one?a=1\n  a=1\nPOST /two\n  body: {}\nGET /three\n"
        );
    }

    #[test]
    fn answers_errors_and_keeps_serving() {
        let r = start(200, None);
        let cases: &[(&[u8], &str)] = &[
            (b"garbage\r\n\r\n", "400 Bad Request"),
            (b"GET / HTTP/3.0\r\n\r\n", "505 HTTP Version Not Supported"),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n",
                "413 Content Too Large",
            ),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: br\r\n\r\n",
                "501 Not Implemented",
            ),
        ];
        for (input, want) in cases {
            let mut s = connect(r.addr);
            s.write_all(input).unwrap();
            let got = answer(&mut s);
            assert!(
                got.starts_with(&format!("HTTP/1.1 {want}\r\n")),
                "{got:?} for {input:?}"
            );
            assert!(got.contains("Connection: close\r\n"));
        }
        let mut s = connect(r.addr);
        let huge = format!("GET /{} HTTP/1.1\r\n\r\n", "x".repeat(MAX_HEAD + 10));
        s.write_all(huge.as_bytes()).unwrap();
        assert!(answer(&mut s).starts_with("HTTP/1.1 431 "));
        // Still serving, and nothing of the refused requests was printed.
        let mut s = connect(r.addr);
        s.write_all(b"GET /ok HTTP/1.1\r\n\r\n").unwrap();
        assert!(answer(&mut s).starts_with("HTTP/1.1 200 OK\r\n"));
        assert_eq!(
            String::from_utf8(r.out.lock().unwrap().clone()).unwrap(),
            "GET /ok\n"
        );
    }

    #[test]
    fn refuses_connections_beyond_the_limit() {
        let r = start(200, None);
        let mut held: Vec<TcpStream> = Vec::new();
        for i in 0..MAX_CONNECTIONS {
            let mut s = connect(r.addr);
            // Prove each one is being served before opening the next.
            s.write_all(format!("GET /{i} HTTP/1.1\r\n\r\n").as_bytes())
                .unwrap();
            assert!(answer(&mut s).starts_with("HTTP/1.1 200 "));
            held.push(s);
        }
        let mut extra = connect(r.addr);
        assert!(answer(&mut extra).starts_with("HTTP/1.1 503 "));
        drop(held);
        // The slots free up once the held connections close.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let mut s = connect(r.addr);
            s.write_all(b"GET /again HTTP/1.1\r\n\r\n").unwrap();
            if answer(&mut s).starts_with("HTTP/1.1 200 ") {
                break;
            }
            assert!(Instant::now() < deadline, "slots never freed");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
