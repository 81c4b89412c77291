//! `event-notify listen`: a small HTTP/1.1 receiver that prints what it receives.
//!
//! It is the "micro-webserver" an admin points the phone at to see what the phone sends, and the
//! receiver the benchmarks and scripts use. Plain `std::net`, one thread per connection (at most
//! [`MAX_CONNECTIONS`]), on the crate's HTTP layer ([`crate::http`]: keep-alive,
//! `Content-Length` and chunked bodies, every size bounded). Every request is printed as one block
//! written with stdout locked and flushed at once:
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
//! A request beyond a bound is answered 431 or 413, a slow one 408, garbage 400, and the
//! connection is closed. Nothing here panics on what a peer sends.
//!
//! - this file: the command line and the accept loop;
//! - [`render`]: the printed block and its decoders ([`render()`], [`form_pairs`]), public so that
//!   the integration tests' recording receiver decodes exactly the same way.

pub mod render;

use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::cli::{EXIT_OK, EXIT_REFUSED, EXIT_USAGE};
use crate::http::{self, Connection, ReadError, Version};
pub use render::{auth_summary, base64_decode, form_decode, form_pairs, render};

/// Most connections served at once; one more is answered 503 and closed.
pub const MAX_CONNECTIONS: usize = 64;
/// Stack of each connection thread (all buffers are on the heap).
const CONN_STACK: usize = 128 * 1024;

/// `event-notify listen --help`.
pub const HELP: &str = "\
usage: event-notify listen --bind ADDR:PORT [--status CODE] [--count N] [--secret S | --secret-file F]

A small HTTP/1.1 receiver: for each request, prints a line `METHOD TARGET` exactly as it
arrived, then the decoded query pairs, the user name of an Authorization header (never the
password) and the body (form pairs decoded), each indented by two spaces; flushed at once.

  --bind ADDR:PORT   where to listen (port 0: any free port; the port is printed on stderr)
  --status CODE      the status of every answer (200..599, default 200); the body is empty
  --count N          exit 0 after N requests
  --secret S         check each request's X-Event-Notify-Signature with this signing secret
                     and print `  signature ok` or `  signature refused: WHY` (the secret is
                     never printed)
  --secret-file F    the same, the secret read from file F (one line; a final newline is not
                     part of it), so it is not on the command line for `ps` to show
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
    pub secret: Option<crate::core::secret::Secret>,
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
                    opts.secret = Some(crate::core::secret::Secret::new(v.as_bytes()).ok_or(
                        format!("--secret: expected 1..{} bytes", crate::sign::SECRET_CAP),
                    )?);
                }
                "--secret-file" => {
                    let f = value(&mut it)?;
                    // Only the file's name and the system's error: never a byte of its content.
                    let text = std::fs::read(&f).map_err(|e| format!("--secret-file {f}: {e}"))?;
                    let v = text
                        .strip_suffix(b"\n")
                        .map(|t| t.strip_suffix(b"\r").unwrap_or(t))
                        .unwrap_or(&text);
                    opts.secret = Some(crate::core::secret::Secret::new(v).ok_or(format!(
                        "--secret-file {f}: expected one line of 1..{} bytes",
                        crate::sign::SECRET_CAP
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
/// (`EXIT_OK` done, `EXIT_REFUSED` cannot listen or cannot print, `EXIT_USAGE`).
#[inline(never)]
pub fn cli<S: AsRef<str>>(args: &[S]) -> i32 {
    let opts = match ListenOpts::from_args(args) {
        Ok(Some(opts)) => opts,
        Ok(None) => {
            print!("{HELP}");
            return EXIT_OK;
        }
        Err(e) => {
            eprintln!("event-notify listen: {e}\n{HELP}");
            return EXIT_USAGE;
        }
    };
    match run(&opts) {
        Ok(()) => EXIT_OK,
        // Whoever read our stdout is gone (`listen | head`): nothing left to do.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => EXIT_OK,
        Err(e) => {
            eprintln!("event-notify listen: {}: {e}", opts.bind);
            EXIT_REFUSED
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
    secret: Option<crate::core::secret::Secret>,
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
    let _ = stream.set_read_timeout(Some(http::READ_TIMEOUT));
    let _ = stream.set_write_timeout(Some(http::WRITE_TIMEOUT));
    let mut conn = Connection::new(stream);
    loop {
        let request = match conn.read_request() {
            Ok(Some(request)) => request,
            Ok(None) | Err(ReadError::Io(_)) => return,
            Err(ReadError::Http(e)) => {
                return reject(conn.into_inner(), e.status(), e.what(), true)
            }
        };
        let n = shared.admitted.fetch_add(1, Ordering::SeqCst) + 1;
        if shared.count.is_some_and(|c| n > c) || shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let mut block = render(&request.head, &request.body);
        if let Some(secret) = &shared.secret {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let head = &request.head;
            block.push_str(&crate::sign::check_line(
                secret,
                head.header(crate::sign::SIGNATURE_HEADER),
                head.header(crate::sign::ID_HEADER),
                &head.method,
                &head.target,
                &request.body,
                now,
            ));
        }
        if let Err(e) = (shared.sink)(block.as_bytes()) {
            return shared.stop(Some(e));
        }
        let last = shared.count == Some(n);
        let keep_alive = request.keep_alive() && !last;
        let answered =
            http::write_response(conn.get_mut(), request.version, shared.status, keep_alive);
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

/// Answers `status` with `Connection: close`, logs why on stderr, and closes (gently when
/// `linger`: after draining what the peer still sends, for a bounded time).
fn reject(mut stream: TcpStream, status: u16, why: &str, linger: bool) {
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".into());
    eprintln!("listen: {peer}: {status} {}: {why}", http::reason(status));
    if http::write_response(&mut stream, Version::Http11, status, false).is_err() {
        return;
    }
    if linger {
        http::linger_close(&mut stream);
    } else {
        let _ = stream.shutdown(Shutdown::Write);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::MAX_HEAD;
    use std::io::Read;
    use std::time::Instant;

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
        let dir = std::env::temp_dir().join(format!("en-listen-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("secret");
        std::fs::write(&file, "s3cret\r\n").unwrap();
        let f = file.display().to_string();
        let from_file = parse(&["--bind=x", "--secret-file", &f]).unwrap().unwrap();
        assert_eq!(
            from_file.secret.as_ref().map(|s| s.expose()),
            Some(&b"s3cret"[..])
        );
        std::fs::write(&file, "\n").unwrap();
        let err = parse(&["--bind=x", "--secret-file", &f]).unwrap_err();
        assert!(
            err.contains("--secret-file") && err.contains("one line"),
            "{err}"
        );
        std::fs::write(&file, vec![b'x'; crate::sign::SECRET_CAP + 1]).unwrap();
        let err = parse(&["--bind=x", "--secret-file", &f]).unwrap_err();
        assert!(
            !err.contains("xxx"),
            "the file's content in an error: {err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
        let err = parse(&["--bind=x", "--secret-file", &f]).unwrap_err();
        assert!(err.contains("No such file"), "{err}");
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
