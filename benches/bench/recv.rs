//! The measuring receiver and a raw keep-alive HTTP client.
//!
//! The receiver stamps each request with the bench's own clock the moment its head is complete,
//! so a latency is `stamp - send time` on one monotonic clock, with no log parsing in between.
//! It answers `200 ok` with a Content-Length and keeps the connection open unless the client
//! asked to close. One thread per connection: the daemon uses one keep-alive connection, the
//! per-event peers (curl, wget) open one each.
//!
//! A plain connection also keeps the kernel's receive time of each request (`SO_TIMESTAMPNS`:
//! when the request's bytes reached the receiver's socket, in the sender's system call on
//! loopback), before this receiver's thread is scheduled to read them: [`Receiver::arrived_kernel`].
//! On 2 CPUs the thread's wake-up can wait behind the bench's own client thread, which the
//! daemon's `OK` wakes at the same moment; the kernel's time does not wait (docs/PERFORMANCE.md,
//! "Host names and latency, issue 15 (this session)").
//!
//! In TLS mode ([`Receiver::start_tls`]) the same receiver sits behind a rustls
//! `ServerConnection` (`StreamOwned`): the stamp is taken once the decrypted head is complete.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const HEAD_CAP: usize = 16 * 1024;
const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok";
const OK_CLOSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";

struct Shared {
    base: Instant,
    /// `base` on the realtime clock (ns since the epoch), for the kernel's receive times.
    base_rt: u64,
    /// Arrival of request `n` (the `n=` query value) in ns since `base`, plus one; 0 = not yet.
    stamps: Vec<AtomicU64>,
    /// The kernel's receive time of request `n` in ns since `base`, plus one; 0 = not known
    /// (TLS, or before `base`).
    kstamps: Vec<AtomicU64>,
    count: AtomicUsize,
    connections: AtomicUsize,
    /// Requests without a usable `n=` (or beyond the capacity), and repeats of an `n`.
    unnumbered: AtomicUsize,
    repeats: AtomicUsize,
    lock: Mutex<()>,
    cv: Condvar,
    stop: AtomicBool,
}

/// A loopback HTTP receiver that records when each numbered request arrived.
pub struct Receiver {
    addr: SocketAddr,
    sh: Arc<Shared>,
}

impl Receiver {
    /// Starts on 127.0.0.1 (a free port), with room for request numbers `0..capacity`.
    pub fn start(capacity: usize) -> Result<Receiver, String> {
        Self::start_with(capacity, None)
    }

    /// As [`Receiver::start`], speaking HTTPS with `tls` (a certificate for 127.0.0.1).
    pub fn start_tls(capacity: usize, tls: Arc<rustls::ServerConfig>) -> Result<Receiver, String> {
        Self::start_with(capacity, Some(tls))
    }

    fn start_with(
        capacity: usize,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Result<Receiver, String> {
        let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("receiver bind: {e}"))?;
        let addr = l.local_addr().map_err(|e| e.to_string())?;
        keep_kernel_times_on();
        let (base, base_rt) = clocks();
        let sh = Arc::new(Shared {
            base,
            base_rt,
            stamps: (0..capacity).map(|_| AtomicU64::new(0)).collect(),
            kstamps: (0..capacity).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
            unnumbered: AtomicUsize::new(0),
            repeats: AtomicUsize::new(0),
            lock: Mutex::new(()),
            cv: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let s2 = Arc::clone(&sh);
        thread::Builder::new()
            .name("recv-accept".into())
            .spawn(move || {
                for c in l.incoming() {
                    if s2.stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let Ok(c) = c else { continue };
                    s2.connections.fetch_add(1, Ordering::Relaxed);
                    let s3 = Arc::clone(&s2);
                    let _ = c.set_nodelay(true);
                    let _ = c.set_read_timeout(Some(Duration::from_secs(120)));
                    let _ = match &tls {
                        None => thread::Builder::new()
                            .name("recv-conn".into())
                            .stack_size(64 * 1024)
                            .spawn(move || serve(Stamped::new(c), &s3)),
                        Some(cfg) => {
                            let cfg = Arc::clone(cfg);
                            // The handshake (ring) needs more stack than plain HTTP.
                            thread::Builder::new()
                                .name("recv-tls".into())
                                .stack_size(512 * 1024)
                                .spawn(move || {
                                    if let Ok(conn) = rustls::ServerConnection::new(cfg) {
                                        serve(Unstamped(rustls::StreamOwned::new(conn, c)), &s3);
                                    }
                                })
                        }
                    };
                }
            })
            .map_err(|e| e.to_string())?;
        Ok(Receiver { addr, sh })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Requests received so far.
    pub fn count(&self) -> usize {
        self.sh.count.load(Ordering::Acquire)
    }

    pub fn connections(&self) -> usize {
        self.sh.connections.load(Ordering::Relaxed)
    }

    pub fn unnumbered(&self) -> usize {
        self.sh.unnumbered.load(Ordering::Relaxed)
    }

    pub fn repeats(&self) -> usize {
        self.sh.repeats.load(Ordering::Relaxed)
    }

    /// When request `n` arrived, if it has.
    pub fn arrived(&self, n: usize) -> Option<Instant> {
        let v = self.sh.stamps.get(n)?.load(Ordering::Acquire);
        (v != 0).then(|| self.sh.base + Duration::from_nanos(v - 1))
    }

    /// When request `n` reached the receiver's socket by the kernel's clock (before the
    /// receiver's thread read it), if it has and the connection is plain TCP.
    pub fn arrived_kernel(&self, n: usize) -> Option<Instant> {
        let v = self.sh.kstamps.get(n)?.load(Ordering::Acquire);
        (v != 0).then(|| self.sh.base + Duration::from_nanos(v - 1))
    }

    /// Waits until request `n` has arrived; its arrival time, or `None` after `timeout`.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Option<Instant> {
        let deadline = Instant::now() + timeout;
        let mut g = self.sh.lock.lock().ok()?;
        loop {
            if let Some(t) = self.arrived(n) {
                return Some(t);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            g = self.sh.cv.wait_timeout(g, left).ok()?.0;
        }
    }

    /// Waits until at least `k` requests have arrived; false after `timeout`.
    pub fn wait_count(&self, k: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let Ok(mut g) = self.sh.lock.lock() else {
            return false;
        };
        loop {
            if self.count() >= k {
                return true;
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            g = match self.sh.cv.wait_timeout(g, left) {
                Ok(x) => x.0,
                Err(_) => return false,
            };
        }
    }

    /// Waits until the count has not changed for `quiet`; the count then.
    pub fn settle(&self, quiet: Duration, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        let mut last = self.count();
        loop {
            thread::sleep(quiet);
            let c = self.count();
            if c == last || Instant::now() >= deadline {
                return c;
            }
            last = c;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.sh.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees `stop`.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(100));
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Value of header `name` (lowercase) in a request or response head.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n").skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The `n=` query value of a request target.
fn number(target: &str) -> Option<usize> {
    let q = target.split_once('?')?.1;
    q.split('&')
        .find_map(|kv| kv.strip_prefix("n="))
        .and_then(|v| v.parse().ok())
}

/// Instant::now() and the realtime clock (ns since the epoch) at the same moment (the middle
/// of two realtime readings around the monotonic one).
fn clocks() -> (Instant, u64) {
    let rt = || {
        nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME)
            .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
            .unwrap_or(0)
    };
    let a = rt();
    let mono = Instant::now();
    let b = rt();
    (mono, a / 2 + b / 2)
}

/// The kernel stamps received packets only while some socket asks for it, and turns that on
/// and off in a work item after the first socket asks or the last one closes: one socket that
/// asks for the whole run keeps it on, so no receiver's first requests go unstamped.
fn keep_kernel_times_on() {
    static ON: std::sync::OnceLock<Option<std::net::UdpSocket>> = std::sync::OnceLock::new();
    ON.get_or_init(|| {
        use nix::sys::socket::{setsockopt, sockopt::ReceiveTimestampns};
        let s = std::net::UdpSocket::bind("127.0.0.1:0").ok()?;
        setsockopt(&s, ReceiveTimestampns, &true).ok()?;
        Some(s)
    });
}

/// A connection that may know when the kernel received the bytes of its last read.
trait Conn: Read + Write {
    /// Realtime clock, ns since the epoch; 0 = not known.
    fn kernel_ns(&self) -> u64;
}

struct Unstamped<S>(S);

impl<S: Read> Read for Unstamped<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl<S: Write> Write for Unstamped<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<S: Read + Write> Conn for Unstamped<S> {
    fn kernel_ns(&self) -> u64 {
        0
    }
}

/// Plain TCP read with `recvmsg` and `SO_TIMESTAMPNS`: each read keeps the kernel's receive
/// time of its bytes (of the last segment, for a read that takes several).
struct Stamped {
    s: TcpStream,
    kernel_ns: u64,
}

impl Stamped {
    fn new(s: TcpStream) -> Stamped {
        use nix::sys::socket::{setsockopt, sockopt::ReceiveTimestampns};
        // Without it the reads still work: kernel times stay unknown.
        let _ = setsockopt(&s, ReceiveTimestampns, &true);
        Stamped { s, kernel_ns: 0 }
    }
}

impl Read for Stamped {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use nix::libc;
        use std::os::fd::AsRawFd;
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // Room for one timespec control message, aligned for cmsghdr.
        let mut control = [0u64; 8];
        // SAFETY: a zeroed msghdr is valid; the pointers set below outlive the call.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        // SAFETY: fd is open for the life of self.s; msg points at live buffers.
        // A read without a time of its own must not keep the previous request's.
        self.kernel_ns = 0;
        let n = unsafe { libc::recvmsg(self.s.as_raw_fd(), &mut msg, 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: walking the control messages the kernel wrote into `control`, with the
        // macros' own bounds checks against msg_controllen.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                    let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                    self.kernel_ns = ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64;
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
        Ok(n as usize)
    }
}

impl Write for Stamped {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.s.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.s.flush()
    }
}

impl Conn for Stamped {
    fn kernel_ns(&self) -> u64 {
        self.kernel_ns
    }
}

fn serve<S: Conn>(mut s: S, sh: &Shared) {
    let mut buf = vec![0u8; HEAD_CAP];
    let mut len = 0;
    loop {
        if let Some(end) = find(&buf[..len], b"\r\n\r\n") {
            let now = Instant::now();
            // The kernel's time of the read that completed the head, taken with `now` (not after
            // a body's reads).
            let kernel = s.kernel_ns();
            // No allocation per request: the bench counts the allocations of the whole process
            // while the in-process engine runs.
            let (n, body, close) = {
                let head = std::str::from_utf8(&buf[..end]).unwrap_or("");
                let body = header(head, "content-length")
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0);
                let line = head.split("\r\n").next().unwrap_or("");
                let target = line.split(' ').nth(1).unwrap_or("");
                let http10 = line.ends_with("HTTP/1.0");
                let close = match header(head, "connection") {
                    Some(c) if contains_ci(c, "close") => true,
                    Some(c) if contains_ci(c, "keep-alive") => false,
                    _ => http10,
                };
                (number(target), body, close)
            };
            let total = end + 4 + body;
            if total > buf.len() {
                return;
            }
            while len < total {
                match s.read(&mut buf[len..]) {
                    Ok(0) | Err(_) => return,
                    Ok(k) => len += k,
                }
            }
            match n.and_then(|n| sh.stamps.get(n)) {
                Some(slot) => {
                    let ns = now.duration_since(sh.base).as_nanos() as u64 + 1;
                    if let Some(k) = n.and_then(|n| sh.kstamps.get(n)) {
                        if kernel > sh.base_rt {
                            k.store(kernel - sh.base_rt + 1, Ordering::Release);
                        }
                    }
                    if slot
                        .compare_exchange(0, ns, Ordering::AcqRel, Ordering::Relaxed)
                        .is_err()
                    {
                        sh.repeats.fetch_add(1, Ordering::Relaxed);
                    }
                }
                None => {
                    sh.unnumbered.fetch_add(1, Ordering::Relaxed);
                }
            }
            sh.count.fetch_add(1, Ordering::AcqRel);
            if let Ok(_g) = sh.lock.lock() {
                sh.cv.notify_all();
            }
            if s.write_all(if close { OK_CLOSE } else { OK }).is_err() || close {
                return;
            }
            buf.copy_within(total..len, 0);
            len -= total;
            continue;
        }
        if len == buf.len() {
            return;
        }
        match s.read(&mut buf[len..]) {
            Ok(0) | Err(_) => return,
            Ok(k) => len += k,
        }
    }
}

fn contains_ci(hay: &str, needle: &str) -> bool {
    hay.as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// Result of driving a receiver alone.
pub struct Hammered {
    pub per_s: f64,
    /// Round trip of each request, ns.
    pub rtts: Vec<u64>,
}

/// Sends `n` GET requests one after the other on one keep-alive connection and reads each
/// response: the receiver's own speed, with nothing else in the way.
pub fn hammer(addr: SocketAddr, n: usize) -> Result<Hammered, String> {
    hammer_on(connect(addr)?, addr, n)
}

fn connect(addr: SocketAddr) -> Result<TcpStream, String> {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = s.set_nodelay(true);
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    Ok(s)
}

/// As [`hammer`], over HTTPS (the handshake is done before the clock starts).
pub fn hammer_tls(
    addr: SocketAddr,
    n: usize,
    cfg: Arc<rustls::ClientConfig>,
) -> Result<Hammered, String> {
    let name = rustls::pki_types::ServerName::from(addr.ip());
    let conn = rustls::ClientConnection::new(cfg, name).map_err(|e| format!("TLS client: {e}"))?;
    let mut s = rustls::StreamOwned::new(conn, connect(addr)?);
    while s.conn.is_handshaking() {
        s.conn
            .complete_io(&mut s.sock)
            .map_err(|e| format!("TLS handshake with {addr}: {e}"))?;
    }
    hammer_on(s, addr, n)
}

fn hammer_on<S: Read + Write>(mut s: S, addr: SocketAddr, n: usize) -> Result<Hammered, String> {
    let mut buf = vec![0u8; HEAD_CAP];
    let mut len = 0;
    let mut rtts = Vec::with_capacity(n);
    let start = Instant::now();
    for i in 0..n {
        let req = format!(
            "GET /in?n={i}&ev=incoming_call&from=1002 HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n"
        );
        let t0 = Instant::now();
        s.write_all(req.as_bytes())
            .map_err(|e| format!("request {i} to {addr}: {e}"))?;
        // Read one response: head, then Content-Length bytes.
        loop {
            if let Some(end) = find(&buf[..len], b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                if !head.starts_with("HTTP/1.") {
                    return Err(format!("{addr}: not an HTTP response: {head:?}"));
                }
                let body = header(&head, "content-length")
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0);
                let total = end + 4 + body;
                if total > buf.len() {
                    return Err(format!("{addr}: response too large"));
                }
                while len < total {
                    match s.read(&mut buf[len..]) {
                        Ok(0) => return Err(format!("{addr}: closed mid-response")),
                        Err(e) => return Err(format!("{addr}: {e}")),
                        Ok(k) => len += k,
                    }
                }
                buf.copy_within(total..len, 0);
                len -= total;
                if header(&head, "connection").is_some_and(|c| c.eq_ignore_ascii_case("close")) {
                    return Err(format!("{addr} closed the keep-alive connection"));
                }
                break;
            }
            match s.read(&mut buf[len..]) {
                Ok(0) => return Err(format!("{addr}: connection closed after {i} requests")),
                Err(e) => return Err(format!("{addr}: {e} after {i} requests")),
                Ok(k) => len += k,
            }
        }
        rtts.push(t0.elapsed().as_nanos() as u64);
    }
    let el = start.elapsed().as_secs_f64();
    Ok(Hammered {
        per_s: n as f64 / el,
        rtts,
    })
}

/// Waits until something accepts TCP connections on `addr`.
pub fn wait_listening(addr: SocketAddr, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return true;
        }
        thread::sleep(Duration::from_millis(5));
    }
    false
}

/// A free loopback port (bound then released: good enough for a bench).
pub fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}
