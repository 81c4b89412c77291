//! Plain-HTTP delivery from the daemon's own loop: no worker thread, no hand-off.
//!
//! A notification to an `http://` destination whose address is known (an IP literal, or a name
//! the workers have resolved and the [`NameCache`](super::NameCache) holds) is sent on a
//! non-blocking socket that the daemon's `poll` watches: connect, write the request, read and
//! parse the response (`httparse`), drain its body, keep the connection for the next one. The
//! attempt costs the loop a few system calls and no thread wake-up; with a worker it cost a
//! `futex` hand-off there and an eventfd hand-off back (issue 15, item 5).
//!
//! Everything else goes to the delivery workers as before, through ureq: `https://`, a name not
//! resolved yet (a lookup can block; the worker's lookup fills the cache), a proxy from the
//! environment, a URL or extra header this sender does not write byte for byte as ureq would
//! ([`LoopSender::start`] answers [`Start::NotMine`]), and any destination beyond
//! [`LOOP_CONNS`] busy connections.
//!
//! The promises are the workers': the same request bytes (request line, `host`, `user-agent`,
//! `accept`, credentials, delivery id, extra headers, signature, `content-type`,
//! `content-length`), the same timeouts (`connect_timeout_ms` for the connect, shared between a
//! name's addresses; `timeout_ms` for the whole attempt), the same [`Outcome`] for the same
//! answer (status, `Retry-After`, a redirect's `Location`), the same caps on the response
//! ([`RESPONSE_HEADER_CAP`], [`RESPONSE_BODY_CAP`]), and a connection is reused only after a
//! response whose end was seen. One attempt per destination at a time (the outbox's rule), so a
//! destination that hangs holds only its own connection.

use super::{classify, location_for_log, unix_now, Sender, MAX_ADDRS_PER_NAME};
use super::{RESPONSE_BODY_CAP, RESPONSE_HEADER_CAP, USER_AGENT};
use crate::core::config::Method;
use crate::core::engine::{Failure, Outcome};
use crate::core::outbox::{Destination, Notification, Ticket};
use nix::poll::PollFlags;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};

/// Connections the loop sender holds, busy or idle, one per destination. When all are busy, a
/// notification to another destination goes to a delivery worker; an idle one is closed to make
/// room for a new destination (the one idle the longest).
pub const LOOP_CONNS: usize = 8;
/// An idle connection older than this is not reused (the workers' pool has the same age).
pub const LOOP_IDLE_MS: u64 = 30_000;
/// Bytes read per `read` call (on the stack).
const READ_CHUNK: usize = 2048;
/// Reads of one connection per wake-up of the loop.
const READS_PER_WAKE: usize = 16;
/// Response header lines parsed at most; more is a protocol error.
const MAX_RESPONSE_HEADERS: usize = 128;
/// A request buffer or response buffer larger than this is given back when its attempt ends.
const KEEP_BUFFER: usize = 4096;
/// The shortest connect time given to one address of a name with several.
const MIN_PER_ADDRESS_MS: u64 = 10;
/// Longest chunk-size or trailer line of a chunked body.
const CHUNK_LINE_CAP: usize = 1024;

/// What [`LoopSender::start`] did with a notification.
#[derive(Debug)]
pub enum Start {
    /// Being sent; its result comes from [`LoopSender::take_finished`].
    Sent,
    /// Over at once (a refused connect, a socket error).
    Done(Outcome, Option<String>),
    /// Not for this sender: give it to a worker.
    NotMine,
}

/// A finished attempt: ticket, outcome, a redirect's `Location`.
pub type Finished = (Ticket, Outcome, Option<String>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    Connecting,
    Writing,
    Reading,
}

/// How the rest of a response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    Length(u64),
    UntilClose,
    ChunkSize,
    ChunkData(u64),
    ChunkEnd,
    Trailer,
}

/// The parsed head of the response being read.
#[derive(Debug)]
struct Head {
    outcome: Outcome,
    location: Option<String>,
    body: Body,
    /// The server allows the connection to be used again.
    reuse: bool,
    /// Body bytes (framing included) read so far.
    taken: u64,
}

struct Conn {
    /// The destination: host as in the URL, lower-cased (brackets kept), and port.
    host: String,
    port: u16,
    /// `None` only between the slot's creation and its first connect.
    stream: Option<TcpStream>,
    phase: Phase,
    ticket: Option<Ticket>,
    /// End of the attempt, and of the current address's connect time (daemon clock, ms).
    deadline: u64,
    connect_until: u64,
    connect_end: u64,
    /// Addresses not tried yet for the connect in progress.
    addrs: heapless::Vec<SocketAddr, MAX_ADDRS_PER_NAME>,
    /// The address connected to (or being connected to).
    peer: Option<SocketAddr>,
    /// Until when the name's lookup that gave `peer` may be used (daemon clock, ms; `u64::MAX`
    /// for an IP literal): past it, the connection is kept only if the name still has `peer`.
    name_until: u64,
    next_addr: usize,
    /// Idle since (daemon clock, ms).
    since: u64,
    out: Vec<u8>,
    sent: usize,
    inb: Vec<u8>,
    head: Option<Head>,
    /// Bytes of interim (1xx) answers read in this attempt.
    interim: usize,
    /// To be removed at the end of this round.
    dead: bool,
    /// Made under delivery settings a reload has replaced: closed when its attempt ends.
    retired: bool,
    /// The TLS session over `stream`.
    tls: Option<tls::Session>,
    /// An `https://` destination: part of the connection's identity with host and port (a
    /// request for one scheme never goes on the other's connection).
    tls_dest: bool,
}

/// The loop sender: [`LOOP_CONNS`] connections and the attempts finished since the daemon
/// last took them.
#[derive(Debug, Default)]
pub struct LoopSender {
    conns: Vec<Conn>,
    /// At most one per connection between two [`LoopSender::take_finished`] calls.
    finished: Vec<Finished>,
}

/// The URLs the loop sender takes, split into (TLS or not, authority, target): it writes only
/// what it can write exactly as ureq would (an `http://` URL, or `https://` in a build with
/// TLS, with a plain authority and an origin-form target of URI characters).
fn loop_url(url: &str) -> Option<(bool, &str, &str)> {
    let (tls, rest) = if url.get(..7)?.eq_ignore_ascii_case("http://") {
        (false, &url[7..])
    } else if cfg!(feature = "tls") && url.get(..8)?.eq_ignore_ascii_case("https://") {
        (true, &url[8..])
    } else {
        return None;
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, target) = rest.split_at(end);
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    // ureq writes `host` without the port when it is the scheme's default: an explicit `:80`
    // or `:443` (or an empty or zero-padded port) is left to it.
    let port = match authority.rfind(']') {
        Some(b) => authority[b + 1..].strip_prefix(':'),
        None => authority.rfind(':').map(|c| &authority[c + 1..]),
    };
    let default = if tls { "443" } else { "80" };
    if port.is_some_and(|p| p.is_empty() || p.starts_with('0') || p == default) {
        return None;
    }
    let target = if target.is_empty() { "/" } else { target };
    // A match, not a search of the list: this runs for every byte of every URL sent.
    let uri_char = |b: u8| {
        matches!(b, b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9'
            | b'-' | b'.' | b'_' | b'~' | b'!' | b'$' | b'&' | b'\'' | b'(' | b')'
            | b'*' | b'+' | b',' | b';' | b'=' | b':' | b'@' | b'/' | b'?' | b'%')
    };
    let ok = target.starts_with('/')
        && target.bytes().all(uri_char)
        && authority
            .bytes()
            .all(|b| uri_char(b) || b == b'[' || b == b']');
    ok.then_some((tls, authority, target))
}

/// An extra header line as ureq would send it: a token name and a value of visible characters,
/// spaces and tabs; not one of the headers that frame the request.
fn plain_header(name: &str, value: &str) -> bool {
    const TCHAR: &[u8] = b"!#$%&'*+-.^_`|~";
    let framing = [
        "content-length",
        "transfer-encoding",
        "connection",
        "expect",
        "host",
    ];
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || TCHAR.contains(&b))
        && value
            .bytes()
            .all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
        && !framing.iter().any(|f| name.eq_ignore_ascii_case(f))
}

/// Writes the request for `n` into `out`, as ureq writes it (header names in lower case).
fn write_request(out: &mut Vec<u8>, n: &Notification, authority: &str, target: &str) {
    use std::fmt::Write as _;
    struct W<'a>(&'a mut Vec<u8>);
    impl std::fmt::Write for W<'_> {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.0.extend_from_slice(s.as_bytes());
            Ok(())
        }
    }
    let mut w = W(out);
    let extra = |h: &str| {
        n.headers
            .lines()
            .filter_map(|l| l.split_once(": "))
            .any(|(k, _)| k.eq_ignore_ascii_case(h))
    };
    let _ = write!(w, "{} {target} HTTP/1.1\r\n", n.method.as_str());
    if n.method == Method::Post {
        let _ = write!(w, "content-length: {}\r\n", n.body.len());
    }
    if !extra("user-agent") {
        let _ = write!(w, "user-agent: {USER_AGENT}\r\n");
    }
    if !extra("accept") {
        let _ = w.write_str("accept: */*\r\n");
    }
    let _ = write!(w, "host: {authority}\r\n");
    if let Some(c) = &n.credentials {
        let _ = write!(w, "authorization: {}\r\n", super::basic_auth(c));
    }
    if !n.id.is_empty() {
        let _ = write!(
            w,
            "x-event-notify-id: {}\r\nidempotency-key: {}\r\n",
            n.id, n.id
        );
    }
    for (name, value) in n.headers.lines().filter_map(|l| l.split_once(": ")) {
        w.0.extend(name.bytes().map(|b| b.to_ascii_lowercase()));
        let _ = write!(w, ": {value}\r\n");
    }
    if let Some(secret) = &n.secret {
        let sig = crate::sign::sign(
            secret.expose(),
            unix_now(),
            &n.id,
            n.method.as_str(),
            target,
            n.body.as_bytes(),
        );
        let _ = write!(w, "x-event-notify-signature: {}\r\n", sig.as_str());
    }
    if n.method == Method::Post && !n.content_type.is_empty() {
        let _ = write!(w, "content-type: {}\r\n", n.content_type);
    }
    let _ = w.write_str("\r\n");
    if n.method == Method::Post {
        w.0.extend_from_slice(n.body.as_bytes());
    }
}

/// What the head of a response says.
#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    /// Not all of it yet.
    Partial,
    /// A 1xx interim response of this many bytes: skip it.
    Interim(usize),
    /// The head (this many bytes) and what it says.
    Head(usize, Outcome, Option<String>, Body, bool),
    /// Not HTTP, too long, or a framing ureq refuses too.
    Bad,
}

fn parse_head(buf: &[u8]) -> Parsed {
    let mut hs = [httparse::EMPTY_HEADER; MAX_RESPONSE_HEADERS];
    let mut r = httparse::Response::new(&mut hs);
    let len = match r.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() <= RESPONSE_HEADER_CAP => {
            return Parsed::Partial
        }
        _ => return Parsed::Bad,
    };
    if len > RESPONSE_HEADER_CAP {
        return Parsed::Bad;
    }
    // As ureq-proto: 100..=999; a 1xx other than 101 is an interim answer (a `100 Continue`
    // with headers is an error there), 101 is final.
    let status = r.code.unwrap_or(0);
    if !(100..1000).contains(&status) || status == 100 && !r.headers.is_empty() {
        return Parsed::Bad;
    }
    if status < 200 && status != 101 {
        return Parsed::Interim(len);
    }
    fn text<'a>(h: &httparse::Header<'a>) -> Option<&'a str> {
        std::str::from_utf8(h.value).ok().map(str::trim)
    }
    let named = |n: &'static str| {
        r.headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(n))
    };
    let mut length: Option<u64> = None;
    for h in named("content-length") {
        match text(h).and_then(|v| v.parse::<u64>().ok()) {
            Some(v) if length.is_none_or(|l| l == v) => length = Some(v),
            _ => return Parsed::Bad,
        }
    }
    let te: Option<&str> = named("transfer-encoding").filter_map(text).next_back();
    let chunked = te.is_some_and(|v| {
        v.rsplit(',')
            .next()
            .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"))
    });
    let tokens = |n: &'static str, t: &str| {
        named(n)
            .filter_map(text)
            .any(|v| v.split(',').any(|x| x.trim().eq_ignore_ascii_case(t)))
    };
    let mut reuse = if r.version == Some(0) {
        tokens("connection", "keep-alive")
    } else {
        !tokens("connection", "close")
    };
    let body = if status == 204 || status == 304 {
        Body::Length(0)
    } else if chunked {
        Body::ChunkSize
    } else if te.is_some() {
        Body::UntilClose
    } else if let Some(l) = length {
        Body::Length(l)
    } else {
        Body::UntilClose
    };
    if body == Body::UntilClose {
        reuse = false;
    }
    let retry_after = named("retry-after")
        .filter_map(text)
        .next()
        .and_then(|v| v.parse::<u64>().ok())
        .map(|s| s.saturating_mul(1000));
    let location = (300..400).contains(&status).then(|| {
        // As the workers' path: the first `Location`, "(none)" unless visible ASCII.
        let visible = |v: &&[u8]| v.iter().all(|&b| b == b'\t' || (0x20..0x7f).contains(&b));
        location_for_log(
            named("location")
                .next()
                .map(|h| h.value)
                .filter(visible)
                .and_then(|v| std::str::from_utf8(v).ok())
                .unwrap_or("(none)"),
        )
    });
    Parsed::Head(
        len,
        Outcome::from_status(status, retry_after),
        location,
        body,
        reuse,
    )
}

/// Consumes body bytes from the front of `inb`. `Some(clean)` when the body has ended (`clean`:
/// its end was found where the framing says, and nothing follows it); `None` when more is needed.
fn body_step(head: &mut Head, inb: &mut Vec<u8>) -> Option<bool> {
    loop {
        if head.taken > RESPONSE_BODY_CAP {
            return Some(false);
        }
        let used = match head.body {
            Body::Length(left) => {
                let n = (inb.len() as u64).min(left);
                head.body = Body::Length(left - n);
                if left == n {
                    inb.drain(..n as usize);
                    head.taken += n;
                    return Some(inb.is_empty());
                }
                n as usize
            }
            Body::UntilClose => inb.len(),
            Body::ChunkSize | Body::Trailer => {
                let Some(nl) = inb.iter().position(|&b| b == b'\n') else {
                    return (inb.len() > CHUNK_LINE_CAP).then_some(false);
                };
                let text = std::str::from_utf8(&inb[..nl]).unwrap_or("!");
                let text = text.trim_end_matches('\r');
                if head.body == Body::Trailer {
                    if text.is_empty() {
                        inb.drain(..=nl);
                        head.taken += nl as u64 + 1;
                        return Some(inb.is_empty());
                    }
                } else {
                    let size = text.split(';').next().unwrap_or("").trim();
                    head.body = match u64::from_str_radix(size, 16) {
                        Ok(0) => Body::Trailer,
                        Ok(n) => Body::ChunkData(n),
                        Err(_) => return Some(false),
                    };
                }
                nl + 1
            }
            Body::ChunkData(left) => {
                let n = (inb.len() as u64).min(left);
                head.body = if left == n {
                    Body::ChunkEnd
                } else {
                    Body::ChunkData(left - n)
                };
                n as usize
            }
            Body::ChunkEnd => match inb.as_slice() {
                [b'\r', b'\n', ..] => {
                    head.body = Body::ChunkSize;
                    2
                }
                [b'\n', ..] => {
                    head.body = Body::ChunkSize;
                    1
                }
                [] | [b'\r'] => return None,
                _ => return Some(false),
            },
        };
        inb.drain(..used);
        head.taken += used as u64;
        if head.taken > RESPONSE_BODY_CAP {
            return Some(false);
        }
        // Every state that consumed nothing had nothing to consume.
        if inb.is_empty() {
            return None;
        }
    }
}

impl Conn {
    /// A kept connection with nothing to read (no close, no stray bytes): reusable. Over TLS,
    /// records that carry no data (a session ticket sent late) are taken in on the way.
    fn still_open(&mut self) -> bool {
        use nix::sys::socket::{recv, MsgFlags};
        let Some(s) = &self.stream else { return false };
        if let Some(t) = &mut self.tls {
            return tls::idle_ok(t, s);
        }
        let mut b = [0u8; 1];
        loop {
            match recv(
                std::os::fd::AsRawFd::as_raw_fd(s),
                &mut b,
                MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT,
            ) {
                Err(nix::errno::Errno::EAGAIN) => return true,
                Err(nix::errno::Errno::EINTR) => continue,
                _ => return false,
            }
        }
    }

    /// A TLS handshake not finished yet (over a connection that is, or is being, made).
    fn handshaking(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.is_handshaking())
    }

    /// The attempt failed before its response: closed, and its result.
    fn fail(&mut self, why: Failure) -> Option<Finished> {
        self.dead = true;
        let failed = Outcome::Failed {
            why,
            retry_after_ms: None,
        };
        self.ticket.take().map(|t| (t, failed, None))
    }

    /// The response has been read (or given up on after its head): the attempt's result.
    fn finish(&mut self, clean: bool, now: u64) -> Option<Finished> {
        let head = self.head.take()?;
        let ticket = self.ticket.take()?;
        let keep = head.reuse && clean && !self.retired;
        if keep && self.inb.is_empty() && head.taken <= RESPONSE_BODY_CAP {
            self.phase = Phase::Idle;
            self.since = now;
            self.out.clear();
            self.out.shrink_to(KEEP_BUFFER);
            self.inb.shrink_to(KEEP_BUFFER);
        } else {
            self.dead = true;
        }
        Some((ticket, head.outcome, head.location))
    }

    /// Opens a non-blocking connection to the next address. `Err` when none is left.
    fn connect_next(&mut self, now: u64) -> Result<(), Failure> {
        use nix::sys::socket::{
            connect, socket, AddressFamily, SockFlag, SockType, SockaddrStorage,
        };
        let mut last = Failure::Connect;
        while let Some(addr) = self.addrs.get(self.next_addr).copied() {
            let left = self.connect_end.saturating_sub(now);
            if left == 0 {
                return Err(Failure::Timeout);
            }
            let remaining = (self.addrs.len() - self.next_addr) as u64;
            self.next_addr += 1;
            let share = (left / remaining.max(1)).max(MIN_PER_ADDRESS_MS).min(left);
            self.connect_until = now + share;
            self.peer = Some(addr);
            let fam = if addr.is_ipv4() {
                AddressFamily::Inet
            } else {
                AddressFamily::Inet6
            };
            let flags = SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC;
            let fd = match socket(fam, SockType::Stream, flags, None) {
                Ok(fd) => fd,
                Err(e) => return Err(io_failure(io::Error::from(e))),
            };
            let stream = TcpStream::from(fd);
            let _ = stream.set_nodelay(true);
            let sa = SockaddrStorage::from(addr);
            let r = loop {
                match connect(std::os::fd::AsRawFd::as_raw_fd(&stream), &sa) {
                    Err(nix::errno::Errno::EINTR) => continue,
                    r => break r,
                }
            };
            self.stream = Some(stream);
            match r {
                Ok(()) => {
                    self.phase = Phase::Writing;
                    return Ok(());
                }
                // EALREADY: a connect interrupted by a signal and called again.
                Err(nix::errno::Errno::EINPROGRESS | nix::errno::Errno::EALREADY) => {
                    self.phase = Phase::Connecting;
                    return Ok(());
                }
                Err(e) => {
                    let e = io::Error::from(e);
                    if !next_address_helps(&e) {
                        return Err(io_failure(e));
                    }
                    last = io_failure(e);
                }
            }
        }
        Err(last)
    }

    /// Writes what is left of the request; on to reading once all is out. Over TLS: what
    /// rustls has to send (the handshake's messages, then the request's records), the request
    /// given to rustls as it takes it.
    fn write_some(&mut self) -> Result<(), Failure> {
        if self.tls_dest && self.tls.is_none() {
            // Never in clear: an https:// destination without its session is a bug, failed.
            return Err(Failure::Tls);
        }
        if let Some(t) = &mut self.tls {
            let Some(stream) = &self.stream else {
                return Err(Failure::Io);
            };
            match tls::flush(t, stream, &self.out, &mut self.sent) {
                Ok(true) => self.phase = Phase::Reading,
                Ok(false) => self.phase = Phase::Writing,
                Err(e) => return Err(io_failure(e)),
            }
            return Ok(());
        }
        while self.sent < self.out.len() {
            let Some(stream) = &self.stream else {
                return Err(Failure::Io);
            };
            match (&*stream).write(&self.out[self.sent..]) {
                Ok(0) => return Err(Failure::Io),
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(io_failure(e)),
            }
        }
        self.phase = Phase::Reading;
        Ok(())
    }

    /// Reads what has arrived. `Some` when the attempt is over.
    fn read_some(&mut self, now: u64) -> Option<Finished> {
        if self.tls.is_some() {
            return self.read_some_tls(now);
        }
        let mut buf = [0u8; READ_CHUNK];
        // At most READS_PER_WAKE reads per wake-up: a receiver that floods (interim answers
        // without end) gets its turn back after the others; poll reports it again.
        for _ in 0..READS_PER_WAKE {
            let Some(stream) = &self.stream else {
                return self.fail(Failure::Io);
            };
            let n = match (&*stream).read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(e) => {
                    return match self.head.is_some() {
                        true => self.finish(false, now),
                        false => self.fail(io_failure(e)),
                    }
                }
            };
            if n == 0 {
                return self.ended(now);
            }
            self.inb.extend_from_slice(&buf[..n]);
            if let Some(f) = self.advance(now) {
                return Some(f);
            }
            if n < buf.len() {
                // A short read: poll says when more comes (saves the EAGAIN read).
                return None;
            }
        }
        None
    }

    /// End of stream: the end of a body delimited by the close, a body cut short, or no
    /// response at all.
    fn ended(&mut self, now: u64) -> Option<Finished> {
        match self.head.as_ref().map(|h| h.body) {
            Some(Body::UntilClose) => {
                self.dead = true;
                self.finish(true, now)
            }
            Some(_) => self.finish(false, now),
            None => self.fail(Failure::Io),
        }
    }

    /// [`Conn::read_some`] over TLS: records in, through rustls; what rustls has to send (the
    /// handshake's next messages, the request once the handshake is done) written out; then,
    /// once the whole request is out, the plain text on to the parser. An answer that comes
    /// before the request is out (TLS 1.3 lets a server send data right after its handshake
    /// messages) waits in rustls until it is: an attempt never ends with its request unsent.
    /// A record rustls refuses (a certificate that is not trusted, a broken handshake) fails
    /// the attempt as TLS, as on ureq's path. Also called when a write completes, with nothing
    /// new to read: what is already decrypted is parsed then.
    fn read_some_tls(&mut self, now: u64) -> Option<Finished> {
        let mut buf = [0u8; READ_CHUNK];
        for _ in 0..READS_PER_WAKE {
            let (Some(t), Some(stream)) = (&mut self.tls, &self.stream) else {
                return self.fail(Failure::Io);
            };
            let got = match t.read_tls(&mut &*stream) {
                Ok(n) => Some(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
                Err(e) => {
                    return match self.head.is_some() {
                        true => self.finish(false, now),
                        false => self.fail(io_failure(e)),
                    }
                }
            };
            if got.is_some() && t.process_new_packets().is_err() {
                // rustls has queued its alert: sent if the socket takes it at once.
                let _ = t.write_tls(&mut &*stream);
                return match self.head.is_some() {
                    true => self.finish(false, now),
                    false => self.fail(Failure::Tls),
                };
            }
            if tls::too_many_tickets(t) {
                // Each ticket is a copy of the certificate chain to keep: a server that sends
                // more than any needs is cut off (retried on a new connection).
                return match self.head.is_some() {
                    true => self.finish(false, now),
                    false => self.fail(Failure::Io),
                };
            }
            if t.wants_write() || self.sent < self.out.len() {
                if let Err(why) = self.write_some() {
                    return self.fail(why);
                }
            }
            let Some(t) = &mut self.tls else {
                return self.fail(Failure::Io);
            };
            let request_out =
                self.sent == self.out.len() && !t.is_handshaking() && !t.wants_write();
            let mut ended = got == Some(0);
            loop {
                if !request_out {
                    break;
                }
                let Some(t) = &mut self.tls else {
                    return self.fail(Failure::Io);
                };
                match t.reader().read(&mut buf) {
                    // close_notify, or (an error) closed without it.
                    Ok(0) => ended = true,
                    Ok(n) => {
                        self.inb.extend_from_slice(&buf[..n]);
                        if let Some(f) = self.advance(now) {
                            return Some(f);
                        }
                        continue;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => ended = true,
                }
                break;
            }
            if ended {
                return self.ended(now);
            }
            match got {
                // Waiting for the socket to take the rest (poll: writable), or for more to read.
                _ if self.phase == Phase::Writing => return None,
                None => return None,
                // A short read: poll says when more comes (saves the EAGAIN read).
                Some(n) if n < tls::READ_SIZE => return None,
                Some(_) => {}
            }
        }
        None
    }

    /// Parses what is buffered: heads (skipping interim ones), then the body.
    fn advance(&mut self, now: u64) -> Option<Finished> {
        while self.head.is_none() {
            match parse_head(&self.inb) {
                Parsed::Partial => return None,
                Parsed::Bad => return self.fail(Failure::Io),
                Parsed::Interim(len) => {
                    // Interim answers count against the header cap: a flood of them ends the
                    // attempt instead of holding it until its timeout.
                    self.interim += len;
                    if self.interim > RESPONSE_HEADER_CAP {
                        return self.fail(Failure::Io);
                    }
                    self.inb.drain(..len);
                }
                Parsed::Head(len, outcome, location, body, reuse) => {
                    self.inb.drain(..len);
                    self.head = Some(Head {
                        outcome,
                        location,
                        body,
                        reuse,
                        taken: 0,
                    });
                }
            }
        }
        let head = self.head.as_mut()?;
        let clean = body_step(head, &mut self.inb)?;
        self.finish(clean, now)
    }
}

/// After a failed connect, a timeout or a broken connection the server may have moved (DHCP,
/// DNS): its name is looked up again next time (as on the workers' path).
fn forget_if_failed(s: &Sender, c: &Conn, done: &Option<Finished>) {
    if let Some((_, Outcome::Failed { why, .. }, _)) = done {
        if matches!(why, Failure::Connect | Failure::Timeout | Failure::Io) {
            s.names.forget(&c.host, c.port);
        }
    }
}

/// The buffers hold credentials and signatures: left out.
impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("phase", &self.phase)
            .field("ticket", &self.ticket)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

/// A refused or unreachable address: the next address of the name may answer.
fn next_address_helps(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
            | io::ErrorKind::AddrNotAvailable
    )
}

/// The failure ureq's path gives for this I/O error over plain HTTP.
fn io_failure(e: io::Error) -> Failure {
    classify(&ureq::Error::Io(e), false)
}

/// The destination's name and port when `n` is for the loop sender but its name is not known
/// yet: a worker looks it up ([`Sender::work`]).
pub(super) fn wants_name<'n>(s: &Sender, n: &'n Notification) -> Option<(&'n str, u16)> {
    let d = Destination::of(&n.url);
    let host = d.host.trim_start_matches('[').trim_end_matches(']');
    let ok = s.loop_ok
        && d.port != 0
        && loop_url(&n.url).is_some()
        && plain_headers(n)
        && host.parse::<IpAddr>().is_err()
        && s.names
            .get_into(host, d.port, &mut heapless::Vec::new())
            .is_none();
    ok.then_some((host, d.port))
}

/// Every extra header line is one the loop sender writes as ureq would.
fn plain_headers(n: &Notification) -> bool {
    n.headers
        .lines()
        .all(|l| l.split_once(": ").is_some_and(|(k, v)| plain_header(k, v)))
}

impl LoopSender {
    pub fn new() -> LoopSender {
        LoopSender {
            conns: Vec::with_capacity(LOOP_CONNS),
            finished: Vec::with_capacity(LOOP_CONNS),
        }
    }

    /// Starts an attempt for `n` when it is this sender's to make (see the module's text).
    /// `spent_ms`: time the attempt has already used (a worker's name lookup); it counts
    /// against `timeout_ms` and `connect_timeout_ms`, as in ureq.
    pub fn start(
        &mut self,
        s: &Sender,
        ticket: Ticket,
        n: &Notification,
        now: u64,
        spent_ms: u64,
    ) -> Start {
        if !s.loop_ok {
            return Start::NotMine;
        }
        let Some((is_tls, authority, target)) = loop_url(&n.url) else {
            return Start::NotMine;
        };
        if !plain_headers(n) {
            return Start::NotMine;
        }
        let d = Destination::of(&n.url);
        if d.port == 0 {
            return Start::NotMine;
        }
        // The connection of this destination, or room for one.
        let at = self.conns.iter().position(|c| {
            c.port == d.port && c.tls_dest == is_tls && c.host.eq_ignore_ascii_case(d.host)
        });
        if at.is_some_and(|i| self.conns[i].phase != Phase::Idle) {
            return Start::NotMine;
        }
        let mut reuse = at.filter(|&i| {
            now.saturating_sub(self.conns[i].since) < LOOP_IDLE_MS && self.conns[i].still_open()
        });
        let bare = d.host.trim_start_matches('[').trim_end_matches(']');
        if let Some(i) = reuse.filter(|&i| now >= self.conns[i].name_until) {
            // The name's lookup is over its time, the connection still in use: the name is
            // looked up again (a worker's job when the cache has it no more), and the
            // connection kept only if its address is still one of the name's.
            let mut fresh = heapless::Vec::<SocketAddr, MAX_ADDRS_PER_NAME>::new();
            let c = &mut self.conns[i];
            match s.names.get_into(bare, d.port, &mut fresh) {
                None => return Start::NotMine,
                Some(left) if c.peer.is_some_and(|p| fresh.contains(&p)) => {
                    c.name_until = now.saturating_add(left);
                }
                Some(_) => reuse = None,
            }
        }
        let mut addrs = heapless::Vec::<SocketAddr, MAX_ADDRS_PER_NAME>::new();
        let mut name_until = u64::MAX;
        let mut session = None;
        if reuse.is_none() {
            if let Ok(ip) = bare.parse::<IpAddr>() {
                let _ = addrs.push(SocketAddr::new(ip, d.port));
            } else {
                match s.names.get_into(bare, d.port, &mut addrs) {
                    Some(left) => name_until = now.saturating_add(left),
                    None => return Start::NotMine,
                }
            }
            if is_tls {
                // A name rustls does not take is ureq's to refuse, with ureq's error.
                match tls::session(s, bare) {
                    Some(t) => session = Some(t),
                    None => return Start::NotMine,
                }
            }
        }
        let i = match (at, reuse) {
            (_, Some(i)) => i,
            (Some(i), None) => {
                // Too old to reuse: a new connection in its place.
                self.conns.swap_remove(i);
                match self.slot() {
                    Some(i) => i,
                    None => return Start::NotMine,
                }
            }
            (None, None) => match self.slot() {
                Some(i) => i,
                None => return Start::NotMine,
            },
        };
        if i == self.conns.len() {
            self.conns.push(Conn {
                host: d.host.to_ascii_lowercase(),
                port: d.port,
                stream: None,
                phase: Phase::Idle,
                ticket: None,
                deadline: 0,
                connect_until: 0,
                connect_end: 0,
                addrs: heapless::Vec::new(),
                peer: None,
                name_until: u64::MAX,
                next_addr: 0,
                since: now,
                out: Vec::new(),
                sent: 0,
                inb: Vec::new(),
                head: None,
                interim: 0,
                dead: false,
                retired: false,
                tls: None,
                tls_dest: is_tls,
            });
        }
        let c = &mut self.conns[i];
        c.ticket = Some(ticket);
        c.deadline = now + s.timeout_ms.saturating_sub(spent_ms);
        c.out.clear();
        c.inb.clear();
        c.sent = 0;
        c.head = None;
        c.interim = 0;
        c.dead = false;
        write_request(&mut c.out, n, authority, target);
        let r = if reuse.is_some() {
            c.phase = Phase::Writing;
            c.write_some()
        } else {
            c.tls = session;
            c.addrs = addrs;
            c.name_until = name_until;
            c.next_addr = 0;
            c.connect_end = now
                + s.connect_timeout_ms
                    .min(s.timeout_ms)
                    .saturating_sub(spent_ms);
            match c.connect_next(now) {
                Ok(()) if c.phase == Phase::Writing => c.write_some(),
                r => r,
            }
        };
        match r {
            Ok(()) => Start::Sent,
            Err(why) => {
                let _ = c.fail(why);
                if matches!(why, Failure::Connect | Failure::Timeout | Failure::Io) {
                    s.names.forget_url(&n.url);
                }
                self.sweep();
                Start::Done(
                    Outcome::Failed {
                        why,
                        retry_after_ms: None,
                    },
                    None,
                )
            }
        }
    }

    /// The index for a new connection: the end of the list, or the place of the connection
    /// idle the longest (closed). `None` when all are busy.
    fn slot(&mut self) -> Option<usize> {
        if self.conns.len() < LOOP_CONNS {
            return Some(self.conns.len());
        }
        let oldest = self
            .conns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.phase == Phase::Idle)
            .min_by_key(|(_, c)| c.since)
            .map(|(i, _)| i)?;
        self.conns.swap_remove(oldest);
        Some(self.conns.len())
    }

    fn sweep(&mut self) {
        self.conns.retain(|c| !c.dead);
    }

    /// The sockets to poll and what for: (connection index, socket, events) for
    /// [`LoopSender::ready`]. An idle connection is polled too: readable means closed.
    pub fn poll_set(&self) -> impl Iterator<Item = (usize, BorrowedFd<'_>, PollFlags)> {
        self.conns.iter().enumerate().filter_map(|(i, c)| {
            let want = match c.phase {
                Phase::Connecting | Phase::Writing => PollFlags::POLLOUT,
                Phase::Reading | Phase::Idle => PollFlags::POLLIN,
            };
            Some((i, c.stream.as_ref()?.as_fd(), want))
        })
    }

    pub fn len(&self) -> usize {
        self.conns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// The connections (indices from [`LoopSender::poll_set`]) that poll found ready.
    pub fn ready(&mut self, s: &Sender, which: &[usize], now: u64) {
        for &i in which {
            let Some(c) = self.conns.get_mut(i) else {
                continue;
            };
            let done = match c.phase {
                // Readable while idle: the server closed it (or sent what nobody asked for; over
                // TLS, a record without data such as a late session ticket is taken in).
                Phase::Idle => {
                    c.dead = !c.still_open();
                    None
                }
                Phase::Connecting => {
                    use nix::sys::socket::{getsockopt, sockopt::SocketError};
                    let Some(stream) = &c.stream else { continue };
                    match getsockopt(stream, SocketError) {
                        Ok(0) => {
                            c.phase = Phase::Writing;
                            c.write_some().err().and_then(|why| c.fail(why))
                        }
                        Ok(errno) => {
                            let e = io::Error::from_raw_os_error(errno);
                            let why = if next_address_helps(&e) {
                                c.connect_next(now)
                                    .and_then(|()| match c.phase {
                                        Phase::Writing => c.write_some(),
                                        _ => Ok(()),
                                    })
                                    .err()
                            } else {
                                Some(io_failure(e))
                            };
                            why.and_then(|w| c.fail(w))
                        }
                        Err(e) => c.fail(io_failure(io::Error::from(e))),
                    }
                }
                Phase::Writing => match c.write_some() {
                    Err(why) => c.fail(why),
                    Ok(()) if c.phase == Phase::Reading => c.read_some(now),
                    Ok(()) => None,
                },
                Phase::Reading => c.read_some(now),
            };
            forget_if_failed(s, c, &done);
            self.finished.extend(done);
        }
        self.sweep();
    }

    /// Ends the attempts whose time is up: a connect that took too long moves on to the next
    /// address; an attempt past `timeout_ms` fails with a timeout (after its head: its outcome
    /// stands, the connection is closed). Closes the connections idle for [`LOOP_IDLE_MS`]
    /// (their socket, and over TLS the session's buffers, are given back).
    pub fn tick(&mut self, s: &Sender, now: u64) {
        for c in self.conns.iter_mut() {
            if c.phase == Phase::Idle {
                c.dead |= now.saturating_sub(c.since) >= LOOP_IDLE_MS;
                continue;
            }
            let done = if now >= c.deadline {
                match c.head.is_some() {
                    true => c.finish(false, now),
                    false => c.fail(Failure::Timeout),
                }
            } else if c.handshaking() && now >= c.connect_end {
                // The TLS handshake is part of the connect, as in ureq: `connect_timeout_ms`.
                c.fail(Failure::Timeout)
            } else if c.phase == Phase::Connecting && now >= c.connect_until {
                // This address took its share of the connect time: the next one, if any.
                let left = c.next_addr < c.addrs.len();
                match if left {
                    c.connect_next(now)
                } else {
                    Err(Failure::Timeout)
                } {
                    Ok(()) if c.phase == Phase::Writing => {
                        c.write_some().err().and_then(|w| c.fail(w))
                    }
                    Ok(()) => None,
                    Err(w) => c.fail(w),
                }
            } else {
                None
            };
            forget_if_failed(s, c, &done);
            self.finished.extend(done);
        }
        self.sweep();
    }

    /// The earliest time [`LoopSender::tick`] has something to do.
    pub fn next_deadline(&self) -> Option<u64> {
        self.conns
            .iter()
            .map(|c| match c.phase {
                Phase::Idle => c.since.saturating_add(LOOP_IDLE_MS),
                Phase::Connecting => c.deadline.min(c.connect_until),
                _ if c.handshaking() => c.deadline.min(c.connect_end),
                _ => c.deadline,
            })
            .min()
    }

    /// The delivery settings changed (a new `ca_file` must not find a session the old one
    /// trusted): the idle connections are closed, the busy ones when their attempt ends (as
    /// ureq's pool goes with its agent).
    pub fn retire_all(&mut self) {
        self.conns.retain(|c| c.phase != Phase::Idle);
        for c in &mut self.conns {
            c.retired = true;
        }
    }

    /// Attempts finished since the last call.
    pub fn take_finished(&mut self) -> Option<Finished> {
        self.finished.pop()
    }

    /// Attempts in progress.
    pub fn busy(&self) -> usize {
        self.conns.iter().filter(|c| c.phase != Phase::Idle).count()
    }
}

/// HTTPS on the loop sender's sockets: a rustls client session driven by hand
/// (`read_tls`/`write_tls` on the non-blocking socket, `process_new_packets`), with the
/// configuration ureq's has — ring, TLS 1.2 and 1.3, the `ca_file`'s certificates or else the
/// webpki roots, SNI, no client certificate — made the first time an `https://` destination is
/// the loop's. The handshake's computation runs in the loop (a few hundred microseconds on the
/// bench machine, once per connection; resumed sessions cost less).
#[cfg(feature = "tls")]
mod tls {
    use super::super::Sender;
    use rustls::pki_types::{CertificateDer, ServerName};
    use rustls::{ClientConfig, ClientConnection, RootCertStore};
    use std::io::{self, Read, Write};
    use std::net::TcpStream;
    use std::sync::{Arc, OnceLock};

    pub type Session = Box<ClientConnection>;

    /// Most bytes rustls reads per `read_tls` (its buffer's step): a shorter read took all
    /// the socket had.
    pub const READ_SIZE: usize = 4096;
    /// Reads of an idle session's socket per look (records that carry no data: session
    /// tickets, a key update). A server that keeps sending more is not kept.
    const IDLE_READS: usize = super::READS_PER_WAKE;
    /// TLS 1.3 session tickets taken on one connection (rustls copies the certificate chain
    /// into each, even with resumption off; servers send one or two): past it, the connection
    /// is closed.
    pub const TLS_TICKETS_CAP: u32 = 8;

    pub fn too_many_tickets(t: &Session) -> bool {
        t.tls13_tickets_received() > TLS_TICKETS_CAP
    }

    /// The loop sender's client configuration, made when first needed.
    #[derive(Debug)]
    pub struct LoopTls {
        roots: Option<Vec<CertificateDer<'static>>>,
        config: OnceLock<Option<Arc<ClientConfig>>>,
    }

    impl LoopTls {
        /// `roots`: the `ca_file`'s certificates, or `None` for the webpki roots.
        pub fn new(roots: Option<Vec<CertificateDer<'static>>>) -> LoopTls {
            LoopTls {
                roots,
                config: OnceLock::new(),
            }
        }

        fn config(&self) -> Option<Arc<ClientConfig>> {
            self.config
                .get_or_init(|| {
                    let provider = rustls::crypto::CryptoProvider::get_default()
                        .cloned()
                        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
                    let store = match &self.roots {
                        Some(certs) => {
                            let mut s = RootCertStore::empty();
                            s.add_parsable_certificates(certs.iter().cloned());
                            s
                        }
                        None => RootCertStore {
                            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
                        },
                    };
                    let mut c = ClientConfig::builder_with_provider(provider)
                        .with_protocol_versions(rustls::ALL_VERSIONS)
                        .ok()?
                        .with_root_certificates(store)
                        .with_no_client_auth();
                    // No session is remembered for resumption: rustls's store keeps up to 8
                    // tickets per server, each of up to 64 KiB with a copy of the certificate
                    // chain, whatever a server sends. Kept connections make handshakes rare.
                    c.resumption = rustls::client::Resumption::disabled();
                    Some(Arc::new(c))
                })
                .clone()
        }
    }

    /// A new session for `host` (a name or an IP address, without brackets). `None` when
    /// rustls does not take the name.
    pub fn session(s: &Sender, host: &str) -> Option<Session> {
        let name = ServerName::try_from(host).ok()?.to_owned();
        ClientConnection::new(s.tls.config()?, name)
            .ok()
            .map(Box::new)
    }

    /// Gives rustls what it takes of `out` from `sent` on and writes what it has to send.
    /// `Ok(true)`: nothing left to write for now; `Ok(false)`: the socket is full.
    pub fn flush(
        t: &mut Session,
        stream: &TcpStream,
        out: &[u8],
        sent: &mut usize,
    ) -> io::Result<bool> {
        loop {
            while *sent < out.len() {
                match t.writer().write(&out[*sent..])? {
                    0 => break,
                    n => *sent += n,
                }
            }
            if !t.wants_write() {
                return Ok(true);
            }
            match t.write_tls(&mut &*stream) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
    }

    /// An idle session still usable: no close, no error, no data nobody asked for, and not
    /// more than [`IDLE_READS`] reads of records without data (a flood is not waited out: the
    /// loop has other work).
    pub fn idle_ok(t: &mut Session, stream: &TcpStream) -> bool {
        for _ in 0..=IDLE_READS {
            match t.read_tls(&mut &*stream) {
                Ok(0) => return false,
                Ok(_) => {
                    if t.process_new_packets().is_err() || too_many_tickets(t) {
                        return false;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let mut b = [0u8; 1];
                    return matches!(
                        t.reader().read(&mut b),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock
                    );
                }
                Err(_) => return false,
            }
        }
        false
    }
}

/// A build without TLS: no session is ever made ([`loop_url`] takes no `https://` URL).
#[cfg(not(feature = "tls"))]
mod tls {
    use super::super::Sender;
    use std::io;
    use std::net::TcpStream;

    pub enum Session {}
    pub const READ_SIZE: usize = 0;

    pub fn session(_: &Sender, _: &str) -> Option<Session> {
        None
    }

    pub fn flush(t: &mut Session, _: &TcpStream, _: &[u8], _: &mut usize) -> io::Result<bool> {
        match *t {}
    }

    pub fn idle_ok(t: &mut Session, _: &TcpStream) -> bool {
        match *t {}
    }

    pub fn too_many_tickets(t: &Session) -> bool {
        match *t {}
    }

    impl Session {
        pub fn read_tls(&mut self, _: &mut &TcpStream) -> io::Result<usize> {
            match *self {}
        }
        pub fn write_tls(&mut self, _: &mut &TcpStream) -> io::Result<usize> {
            match *self {}
        }
        pub fn process_new_packets(&mut self) -> Result<(), ()> {
            match *self {}
        }
        pub fn reader(&mut self) -> &mut dyn io::Read {
            match *self {}
        }
        pub fn wants_write(&self) -> bool {
            match *self {}
        }
        pub fn is_handshaking(&self) -> bool {
            match *self {}
        }
    }
}

#[cfg(feature = "tls")]
pub(super) use tls::LoopTls;

/// Fuzz entry ([`crate::fuzz::http_response`]): a receiver's answer, fed in pieces of the size
/// the first byte chooses, through the head parser and the body framing as [`Conn::advance`]
/// does. Never a panic; never more buffered than the caps allow.
pub fn fuzz_response(data: &[u8]) {
    let Some((&piece, input)) = data.split_first() else {
        return;
    };
    let mut inb = Vec::new();
    let mut head: Option<Head> = None;
    for part in input.chunks(piece as usize % READ_CHUNK + 1) {
        inb.extend_from_slice(part);
        while head.is_none() {
            match parse_head(&inb) {
                Parsed::Partial => break,
                Parsed::Bad => return,
                Parsed::Interim(len) => {
                    inb.drain(..len);
                }
                Parsed::Head(len, outcome, location, body, reuse) => {
                    assert!(location
                        .as_ref()
                        .is_none_or(|l| l.len() <= super::LOCATION_CAP));
                    inb.drain(..len);
                    head = Some(Head {
                        outcome,
                        location,
                        body,
                        reuse,
                        taken: 0,
                    });
                }
            }
        }
        assert!(inb.len() <= RESPONSE_HEADER_CAP + READ_CHUNK);
        if let Some(h) = head.as_mut() {
            if body_step(h, &mut inb).is_some() {
                assert!(h.taken <= RESPONSE_BODY_CAP + READ_CHUNK as u64);
                return;
            }
            assert!(inb.len() <= CHUNK_LINE_CAP + READ_CHUNK);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(raw: &str) -> Parsed {
        parse_head(raw.as_bytes())
    }

    /// Feeds `body` in pieces of `step` bytes; the result and the body bytes counted.
    fn drain(start: Body, body: &[u8], step: usize) -> (Option<bool>, u64) {
        let mut h = Head {
            outcome: Outcome::Delivered(200),
            location: None,
            body: start,
            reuse: true,
            taken: 0,
        };
        let mut inb = Vec::new();
        for piece in body.chunks(step.max(1)) {
            inb.extend_from_slice(piece);
            if let Some(clean) = body_step(&mut h, &mut inb) {
                return (Some(clean), h.taken);
            }
        }
        if body.is_empty() {
            return (body_step(&mut h, &mut inb), h.taken);
        }
        (None, h.taken)
    }

    #[test]
    fn only_urls_written_as_ureq_writes_them_are_the_loops() {
        let plain = |u| loop_url(u).filter(|t| !t.0).map(|t| (t.1, t.2));
        assert_eq!(
            plain("http://127.0.0.1:8080/in?a=1%202&b=$x"),
            Some(("127.0.0.1:8080", "/in?a=1%202&b=$x"))
        );
        assert_eq!(plain("HTTP://h"), Some(("h", "/")));
        assert_eq!(plain("http://[::1]:81/x"), Some(("[::1]:81", "/x")));
        assert_eq!(loop_url("http://h?x"), None, "no path: left to ureq");
        assert_eq!(loop_url("http://h/x#frag"), None);
        assert_eq!(loop_url("http://h/a b"), None);
        assert_eq!(loop_url("http://h/a\"b"), None);
        assert_eq!(loop_url("http://u:p@h/x"), None);
        assert_eq!(loop_url("http:///x"), None);
        assert_eq!(loop_url("ftp://h/x"), None);
        // ureq leaves the default port out of `host`: an explicit one is left to it.
        assert_eq!(loop_url("http://h:80/x"), None);
        assert_eq!(loop_url("http://h:080/x"), None);
        assert_eq!(loop_url("http://h:/x"), None);
        assert_eq!(loop_url("http://[::1]:80/x"), None);
        assert_eq!(plain("http://h:8080/x"), Some(("h:8080", "/x")));
        // https: the loop's in a build with TLS, under the same rules, 443 the default.
        let tls = |u| loop_url(u).filter(|t| t.0).map(|t| (t.1, t.2));
        if cfg!(feature = "tls") {
            assert_eq!(tls("https://h/x"), Some(("h", "/x")));
            assert_eq!(tls("HTTPS://h:8443"), Some(("h:8443", "/")));
            assert_eq!(tls("https://h:80/x"), Some(("h:80", "/x")));
        } else {
            assert_eq!(loop_url("https://h/x"), None);
        }
        assert_eq!(loop_url("https://h:443/x"), None);
        assert_eq!(loop_url("https://u:p@h/x"), None);
        assert_eq!(loop_url("https://h/a b"), None);
    }

    #[test]
    fn extra_headers_the_loop_writes_and_those_it_leaves() {
        assert!(plain_header("X-Api-Key", "abc def"));
        assert!(!plain_header("X Key", "v"));
        assert!(!plain_header("X-Key", "a\rb"));
        assert!(!plain_header("Content-Length", "3"));
        assert!(!plain_header("connection", "close"));
        assert!(!plain_header("", "v"));
    }

    #[test]
    fn a_head_says_outcome_framing_and_reuse() {
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
        assert_eq!(
            h,
            Parsed::Head(38, Outcome::Delivered(200), None, Body::Length(5), true)
        );
        let Parsed::Head(_, o, loc, body, reuse) =
            head("HTTP/1.1 503 Busy\r\nRetry-After: 7\r\nConnection: close\r\n\r\n")
        else {
            panic!("head")
        };
        assert_eq!(
            o,
            Outcome::Failed {
                why: Failure::Status(503),
                retry_after_ms: Some(7000)
            }
        );
        assert_eq!((loc, body, reuse), (None, Body::UntilClose, false));
        let Parsed::Head(_, o, loc, body, reuse) = head(
            "HTTP/1.1 302 Found\r\nLocation: https://u:pw@new.example/x\r\nContent-Length: 0\r\n\r\n",
        ) else {
            panic!("head")
        };
        assert_eq!(
            o,
            Outcome::Failed {
                why: Failure::Redirect(302),
                retry_after_ms: None
            }
        );
        assert_eq!(
            loc.as_deref(),
            Some("https://new.example/x"),
            "no credentials"
        );
        assert_eq!((body, reuse), (Body::Length(0), true));
        // HTTP/1.0 keeps the connection only when asked to.
        assert!(matches!(
            head("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"),
            Parsed::Head(_, _, _, _, false)
        ));
        assert!(matches!(
            head("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"),
            Parsed::Head(_, _, _, _, true)
        ));
        // Chunked wins over a length; 204 has no body whatever it says.
        assert!(matches!(
            head("HTTP/1.1 200 OK\r\nContent-Length: 9\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Parsed::Head(_, _, _, Body::ChunkSize, true)
        ));
        assert!(matches!(
            head("HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n"),
            Parsed::Head(_, _, _, Body::Length(0), true)
        ));
        assert!(matches!(
            head("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"),
            Parsed::Head(_, _, _, Body::UntilClose, false)
        ));
    }

    #[test]
    fn bad_partial_and_interim_heads() {
        assert_eq!(head("HTTP/1.1 200 OK\r\nContent-Le"), Parsed::Partial);
        assert_eq!(head(""), Parsed::Partial);
        assert_eq!(head("HTTP/1.1 100 Continue\r\n\r\n"), Parsed::Interim(25));
        assert_eq!(head("SSH-2.0-OpenSSH\r\n\r\n"), Parsed::Bad);
        // As ureq-proto: 101 is final, statuses go up to 999, a 100 with headers is an error.
        assert!(matches!(
            head("HTTP/1.1 101 Switching\r\n\r\n"),
            Parsed::Head(
                _,
                Outcome::Failed {
                    why: Failure::Status(101),
                    ..
                },
                ..
            )
        ));
        assert!(matches!(
            head("HTTP/1.1 999 What\r\n\r\n"),
            Parsed::Head(
                _,
                Outcome::Failed {
                    why: Failure::Status(999),
                    ..
                },
                ..
            )
        ));
        assert_eq!(head("HTTP/1.1 1000 What\r\n\r\n"), Parsed::Bad);
        assert_eq!(head("HTTP/1.1 100 Continue\r\nX: y\r\n\r\n"), Parsed::Bad);
        assert_eq!(
            head("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"),
            Parsed::Interim(40)
        );
        assert_eq!(
            head("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            Parsed::Bad
        );
        assert_eq!(
            head("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"),
            Parsed::Bad
        );
        let long = format!(
            "HTTP/1.1 200 OK\r\nX: {}\r\n",
            "a".repeat(RESPONSE_HEADER_CAP)
        );
        assert_eq!(
            head(&long),
            Parsed::Bad,
            "over the header cap, even unfinished"
        );
        let many: String = (0..MAX_RESPONSE_HEADERS + 1)
            .map(|i| format!("X{i}: v\r\n"))
            .collect();
        assert_eq!(head(&format!("HTTP/1.1 200 OK\r\n{many}\r\n")), Parsed::Bad);
    }

    #[test]
    fn bodies_end_where_their_framing_says_in_any_pieces() {
        let chunked = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n";
        for step in [1, 2, 3, 7, 100] {
            assert_eq!(drain(Body::Length(5), b"hello", step), (Some(true), 5));
            assert_eq!(
                drain(Body::ChunkSize, chunked, step),
                (Some(true), chunked.len() as u64),
                "step {step}"
            );
            assert_eq!(drain(Body::UntilClose, b"abc", step).0, None);
        }
        assert_eq!(drain(Body::Length(0), b"", 1), (Some(true), 0));
        // Bytes after the end: the connection is not reused.
        assert_eq!(drain(Body::Length(2), b"hiX", 3).0, Some(false));
        assert_eq!(drain(Body::ChunkSize, b"0\r\n\r\nX", 10).0, Some(false));
        // Broken framing ends the body, not cleanly.
        assert_eq!(drain(Body::ChunkSize, b"zz\r\n", 10).0, Some(false));
        assert_eq!(drain(Body::ChunkSize, b"1\r\naXY", 10).0, Some(false));
        let line = vec![b'1'; CHUNK_LINE_CAP + 1];
        assert_eq!(drain(Body::ChunkSize, &line, 100).0, Some(false));
        // Over the body cap: given up, not cleanly.
        let big = vec![b'x'; RESPONSE_BODY_CAP as usize + 10];
        assert_eq!(drain(Body::UntilClose, &big, 4096).0, Some(false));
        assert_eq!(
            drain(Body::Length(big.len() as u64 + 100), &big, 4096).0,
            Some(false)
        );
    }

    #[test]
    fn the_request_is_written_as_ureq_writes_it() {
        let mut n = Notification::empty();
        n.url.push_str("http://127.0.0.1:9/in?a=1").unwrap();
        n.id.push_str("abc-1-1").unwrap();
        n.headers
            .push_str("X-Tenant: t1\nUser-Agent: mine\n")
            .unwrap();
        let mut out = Vec::new();
        write_request(&mut out, &n, "127.0.0.1:9", "/in?a=1");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "GET /in?a=1 HTTP/1.1\r\naccept: */*\r\nhost: 127.0.0.1:9\r\n\
             x-event-notify-id: abc-1-1\r\nidempotency-key: abc-1-1\r\n\
             x-tenant: t1\r\nuser-agent: mine\r\n\r\n"
        );
        n.method = Method::Post;
        n.headers.clear();
        n.body.push_str("a=b").unwrap();
        n.content_type = "application/x-www-form-urlencoded";
        let mut out = Vec::new();
        write_request(&mut out, &n, "h", "/");
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("POST / HTTP/1.1\r\ncontent-length: 3\r\n"),
            "{text}"
        );
        assert!(text.ends_with("content-type: application/x-www-form-urlencoded\r\n\r\na=b"));
        assert!(text.contains(&format!("user-agent: {USER_AGENT}\r\n")));
    }
}
