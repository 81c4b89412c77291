//! HTTP delivery with ureq: the only module that knows ureq.
//!
//! One [`Sender`] per daemon: a ureq agent with small explicit timeouts and a keep-alive pool.
//! [`Sender::send`] makes one attempt and classifies it as an [`Outcome`].

use crate::core::config::{Delivery, Method};
use crate::core::engine::{Failure, Outcome};
use crate::core::outbox::Notification;
use crate::core::template::Credentials;
use std::io::{self, Read};
use std::time::Duration;

mod direct;
mod tcp;
pub use direct::{fuzz_response, Finished, LoopSender, Start, LOOP_CONNS, LOOP_IDLE_MS};
pub use tcp::TIMEOUT_STEP_MS;

/// Most bytes of a response body read (and thrown away) so the connection can be reused.
pub const RESPONSE_BODY_CAP: u64 = 16 * 1024;
/// Most bytes of response headers accepted.
pub const RESPONSE_HEADER_CAP: usize = 8 * 1024;
/// Idle keep-alive connections kept, in all and per destination.
pub const IDLE_CONNECTIONS: usize = 8;
pub const IDLE_CONNECTIONS_PER_HOST: usize = 1;

pub const USER_AGENT: &str = concat!("event-notify/", env!("CARGO_PKG_VERSION"));

/// Why a sender could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SenderError {
    #[error("ca_file {0}: {1}")]
    CaFile(String, String),
    #[error("ca_file is set but this build has no TLS (feature \"tls\")")]
    NoTls,
}

/// What a delivery worker did: an attempt (its outcome and a redirect's `Location`), or only the
/// lookup of the destination's name (see [`Sender::work`]).
#[derive(Debug)]
pub enum Attempt {
    Done(Outcome, Option<String>),
    /// The name is in the cache now; the lookup took this many milliseconds of the attempt's
    /// `timeout_ms`.
    Resolved(u64),
}

pub struct Sender {
    agent: ureq::Agent,
    names: std::sync::Arc<NameCache>,
    /// The attempt's time and the connect's, for the [`LoopSender`].
    timeout_ms: u64,
    connect_timeout_ms: u64,
    /// Plain HTTP may be sent from the daemon's loop: no proxy is configured (ureq takes one
    /// from the environment; the loop sender does not speak to proxies).
    loop_ok: bool,
    /// The loop sender's TLS client configuration (the roots ureq's has), made when first needed.
    #[cfg(feature = "tls")]
    tls: direct::LoopTls,
}

impl Sender {
    pub fn new(d: &Delivery) -> Result<Sender, SenderError> {
        let b = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_millis(d.timeout_ms as u64)))
            .timeout_connect(Some(Duration::from_millis(d.connect_timeout_ms as u64)))
            .max_idle_connections(IDLE_CONNECTIONS)
            .max_idle_connections_per_host(IDLE_CONNECTIONS_PER_HOST)
            .max_idle_age(Duration::from_secs(30))
            .max_response_header_size(RESPONSE_HEADER_CAP)
            .input_buffer_size(RESPONSE_HEADER_CAP + 4096)
            .output_buffer_size(4096)
            .no_delay(true)
            .user_agent(USER_AGENT)
            .accept("*/*");
        #[cfg(feature = "tls")]
        let (b, roots) = Self::tls(b, d)?;
        #[cfg(not(feature = "tls"))]
        let b = Self::tls(b, d)?;
        let names = std::sync::Arc::new(NameCache::default());
        let config = b.build();
        let loop_ok = config.proxy().is_none();
        Ok(Sender {
            agent: ureq::Agent::with_parts(
                config,
                connector(),
                CachingResolver {
                    cache: std::sync::Arc::clone(&names),
                },
            ),
            names,
            timeout_ms: d.timeout_ms as u64,
            connect_timeout_ms: d.connect_timeout_ms as u64,
            loop_ok,
            #[cfg(feature = "tls")]
            tls: direct::LoopTls::new(roots),
        })
    }

    /// ureq's TLS roots: the certificates of `ca_file` when set (also returned, for the loop
    /// sender's own client configuration), else the webpki roots.
    #[cfg(feature = "tls")]
    #[allow(clippy::type_complexity)]
    fn tls(
        b: ureq::config::ConfigBuilder<ureq::typestate::AgentScope>,
        d: &Delivery,
    ) -> Result<
        (
            ureq::config::ConfigBuilder<ureq::typestate::AgentScope>,
            Option<Vec<rustls::pki_types::CertificateDer<'static>>>,
        ),
        SenderError,
    > {
        use ureq::tls::{parse_pem, PemItem, RootCerts, TlsConfig};
        let Some(path) = &d.ca_file else {
            return Ok((b, None));
        };
        let pem =
            std::fs::read(path).map_err(|e| SenderError::CaFile(path.clone(), e.to_string()))?;
        let certs: Vec<_> = parse_pem(&pem)
            .filter_map(|i| match i {
                Ok(PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        if certs.is_empty() {
            return Err(SenderError::CaFile(
                path.clone(),
                "no PEM certificate in it".into(),
            ));
        }
        let roots = certs
            .iter()
            .map(|c| rustls::pki_types::CertificateDer::from(c.der().to_vec()))
            .collect();
        let tls = TlsConfig::builder()
            .root_certs(RootCerts::new_with_certs(&certs))
            .build();
        Ok((b.tls_config(tls), Some(roots)))
    }

    #[cfg(not(feature = "tls"))]
    fn tls(
        b: ureq::config::ConfigBuilder<ureq::typestate::AgentScope>,
        d: &Delivery,
    ) -> Result<ureq::config::ConfigBuilder<ureq::typestate::AgentScope>, SenderError> {
        match d.ca_file {
            Some(_) => Err(SenderError::NoTls),
            None => Ok(b),
        }
    }

    /// What a delivery worker does with a notification: when the loop sender could send it
    /// but for its destination's name, only the lookup (the name goes into the cache and the
    /// loop sends it on its own connection: one connection per destination); otherwise the
    /// attempt.
    pub fn work(&self, n: &Notification) -> Attempt {
        if let Some((host, port)) = direct::wants_name(self, n) {
            let started = std::time::Instant::now();
            return match self.names.lookup(host, port) {
                // A failed lookup (up to the resolver's own timeouts, ~10 s for a DNS server that
                // does not answer) that fell back on the name's last addresses is not charged to
                // the attempt: it would time the attempt out before it starts, and a timeout
                // forgets the name, stale addresses included.
                Some(_) if self.names.is_stale(host, port) => Attempt::Resolved(0),
                Some(_) => Attempt::Resolved(started.elapsed().as_millis() as u64),
                None => Attempt::Done(
                    Outcome::Failed {
                        why: Failure::Connect,
                        retry_after_ms: None,
                    },
                    None,
                ),
            };
        }
        let (outcome, location) = self.send(n);
        Attempt::Done(outcome, location)
    }

    /// One attempt. Never panics; every error becomes a [`Failure`]. A redirect (3xx) is not
    /// followed and comes back with its `Location` (user-info removed, at most
    /// [`LOCATION_CAP`] bytes), for the log and `status`.
    pub fn send(&self, n: &Notification) -> (Outcome, Option<String>) {
        if crate::core::outbox::Destination::of(&n.url).port == 0 {
            // The loader refuses a bad literal port; one made by a variable lands here: not
            // sent (never to port 80), not retried.
            return (
                Outcome::Failed {
                    why: Failure::BadUrl,
                    retry_after_ms: None,
                },
                None,
            );
        }
        let t = unix_now();
        let result = match n.method {
            Method::Get => with_headers(self.agent.get(n.url.as_str()), n, t).call(),
            Method::Post => {
                let mut r = with_headers(self.agent.post(n.url.as_str()), n, t);
                if !n.content_type.is_empty() {
                    r = r.header("Content-Type", n.content_type);
                }
                r.send(n.body.as_bytes())
            }
        };
        match result {
            Ok(mut resp) => {
                let status = resp.status().as_u16();
                let retry_after = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(|s| s.saturating_mul(1000));
                let location = (300..400).contains(&status).then(|| {
                    location_for_log(
                        resp.headers()
                            .get("location")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("(none)"),
                    )
                });
                // Read the (bounded) body so the connection goes back to the pool.
                let mut reader = resp
                    .body_mut()
                    .with_config()
                    .limit(RESPONSE_BODY_CAP)
                    .reader();
                drain(&mut reader);
                (Outcome::from_status(status, retry_after), location)
            }
            Err(e) => {
                let why = classify(
                    &e,
                    n.url
                        .get(..5)
                        .is_some_and(|s| s.eq_ignore_ascii_case("https")),
                );
                if matches!(why, Failure::Connect | Failure::Timeout | Failure::Io) {
                    // The server may have moved (DHCP, DNS): look its name up again next time.
                    self.names.forget_url(&n.url);
                }
                (
                    Outcome::Failed {
                        why,
                        retry_after_ms: None,
                    },
                    None,
                )
            }
        }
    }
}

/// ureq's default chain (a CONNECT proxy if the environment names one, TCP, rustls for https)
/// with our TCP transport ([`tcp`]) in place of ureq's.
fn connector() -> impl ureq::unversioned::transport::Connector {
    use ureq::unversioned::transport::{ConnectProxyConnector, Connector};
    let c = ().chain(ConnectProxyConnector::default()).chain(tcp::TcpConnector);
    #[cfg(feature = "tls")]
    let c = c.chain(ureq::unversioned::transport::RustlsConnector::default());
    c
}

/// Most bytes of a response body read per `read` while draining it.
const DRAIN_CHUNK: usize = 512;

/// Reads and throws away up to [`RESPONSE_BODY_CAP`] bytes of a body, so the connection can go
/// back to the pool. A small buffer on the stack: `io::copy` zeroes an 8 KiB buffer for every
/// response (the reader chain does not take uninitialised memory).
fn drain(r: &mut impl Read) {
    let mut buf = [0u8; DRAIN_CHUNK];
    let mut left = RESPONSE_BODY_CAP;
    while left > 0 {
        let want = buf.len().min(left as usize);
        match r.read(&mut buf[..want]) {
            Ok(0) | Err(_) => return,
            Ok(n) => left = left.saturating_sub(n as u64),
        }
    }
}

/// Most bytes of a redirect's `Location` kept for the log and `status`.
pub const LOCATION_CAP: usize = 256;

/// A `Location` value fit for the log: user-info (a credential) removed, control characters
/// replaced, at most [`LOCATION_CAP`] bytes.
pub fn location_for_log(raw: &str) -> String {
    let mut v = raw.trim().to_string();
    if let Some(start) = v.find("://").map(|i| i + 3) {
        let end = v[start..]
            .find(['/', '?', '#'])
            .map_or(v.len(), |i| start + i);
        if let Some(at) = v[start..end].rfind('@') {
            v.replace_range(start..start + at + 1, "");
        }
    }
    let mut out = String::new();
    for c in v.chars() {
        if out.len() + c.len_utf8() > LOCATION_CAP {
            break;
        }
        out.push(if c.is_control() { '?' } else { c });
    }
    out
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The request target as the HTTP client writes it on the request line (origin form:
/// path and query), which is what the signature covers.
pub fn request_target(url: &str) -> String {
    match ureq::http::Uri::try_from(url) {
        Ok(u) => u
            .path_and_query()
            .map_or_else(|| "/".to_string(), |p| p.as_str().to_string()),
        Err(_) => "/".to_string(),
    }
}

/// [`crate::sign::ID_HEADER`] and [`crate::sign::IDEMPOTENCY_HEADER`] as ready header names: a
/// name that is not a standard one is otherwise copied to the heap for every request. HTTP
/// header names are case-insensitive and ureq writes them in lower case either way.
const ID_NAME: ureq::http::HeaderName = ureq::http::HeaderName::from_static("x-event-notify-id");
const IDEMPOTENCY_NAME: ureq::http::HeaderName =
    ureq::http::HeaderName::from_static("idempotency-key");

/// The headers one attempt carries beside `Content-Type`: Basic credentials, the delivery id
/// (twice: `X-Event-Notify-Id` and `Idempotency-Key`), the event's extra headers, and the
/// signature for `t` when the notification has a secret. An extra header line that is not
/// `Name: value` without control characters is left out (the config loader refuses them
/// first; this is the last guard against a header split). Values are borrowed from the
/// notification where they can be: no list and no copies on the way to ureq.
fn with_headers<B>(
    mut r: ureq::RequestBuilder<B>,
    n: &Notification,
    t: u64,
) -> ureq::RequestBuilder<B> {
    use crate::sign::{sign, SIGNATURE_HEADER};
    if let Some(c) = &n.credentials {
        r = r.header("Authorization", basic_auth(c));
    }
    if !n.id.is_empty() {
        r = r
            .header(ID_NAME, n.id.as_str())
            .header(IDEMPOTENCY_NAME, n.id.as_str());
    }
    for line in n.headers.lines() {
        if let Some((name, value)) = line.split_once(": ") {
            let clean = !name.is_empty() && !line.chars().any(|c| c.is_control());
            if clean {
                r = r.header(name, value);
            }
        }
    }
    if let Some(secret) = &n.secret {
        let target = request_target(&n.url);
        let sig = sign(
            secret.expose(),
            t,
            &n.id,
            n.method.as_str(),
            &target,
            n.body.as_bytes(),
        );
        r = r.header(SIGNATURE_HEADER, sig.to_string());
    }
    r
}

/// Maps a ureq error to a failure. Over https, rustls reports a refused certificate or a broken
/// handshake as `InvalidData` I/O: that is a TLS failure, which retrying does not mend.
fn classify(e: &ureq::Error, https: bool) -> Failure {
    use ureq::Error as E;
    match e {
        E::Timeout(_) => Failure::Timeout,
        E::HostNotFound | E::ConnectionFailed => Failure::Connect,
        E::Io(io) => match io.kind() {
            io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::NotConnected
            | io::ErrorKind::AddrNotAvailable
            | io::ErrorKind::NetworkUnreachable
            | io::ErrorKind::HostUnreachable => Failure::Connect,
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Failure::Timeout,
            io::ErrorKind::InvalidData if https => Failure::Tls,
            _ => Failure::Io,
        },
        E::Tls(_) => Failure::Tls,
        #[cfg(feature = "tls")]
        E::Rustls(_) => Failure::Tls,
        _ => Failure::Io,
    }
}

/// `Basic base64(user:password)`.
pub fn basic_auth(c: &Credentials) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut raw = Vec::with_capacity(c.user.len() + c.password.len() + 1);
    raw.extend_from_slice(c.user.as_bytes());
    raw.push(b':');
    raw.extend_from_slice(c.password.as_bytes());
    let mut out = String::from("Basic ");
    for chunk in raw.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_is_rfc7617() {
        let mut c = Credentials::default();
        c.user.push_str("Aladdin").unwrap();
        c.password.push_str("open sesame").unwrap();
        assert_eq!(basic_auth(&c), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        c.password.clear();
        assert_eq!(basic_auth(&c), "Basic QWxhZGRpbjo=");
    }

    #[test]
    fn ready_header_names_are_the_signed_ones() {
        use crate::sign::{IDEMPOTENCY_HEADER, ID_HEADER};
        assert!(ID_NAME.as_str().eq_ignore_ascii_case(ID_HEADER));
        assert!(IDEMPOTENCY_NAME
            .as_str()
            .eq_ignore_ascii_case(IDEMPOTENCY_HEADER));
    }

    /// A loopback HTTP server answering `200` to every request on kept connections; counts
    /// the connections it accepted.
    fn counting_server(addr: &str) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::io::Write;
        let l = std::net::TcpListener::bind(addr).unwrap();
        let port = l.local_addr().unwrap().port();
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = std::sync::Arc::clone(&accepted);
        std::thread::spawn(move || {
            for mut c in l.incoming().flatten() {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                std::thread::spawn(move || {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while let Ok(k @ 1..) = c.read(&mut chunk) {
                        buf.extend_from_slice(&chunk[..k]);
                        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            buf.drain(..end + 4);
                            let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                            if c.write_all(ok).is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        (port, accepted)
    }

    /// One attempt of the loop sender at daemon time `now`, driven with `poll` to its end.
    fn loop_attempt(ls: &mut LoopSender, s: &Sender, url: &str, id: u64, now: u64) -> Start {
        use nix::poll::{poll, PollFd, PollTimeout};
        let mut n = Notification::empty();
        n.url.push_str(url).unwrap();
        let ticket = crate::core::outbox::Ticket { id, attempt: 1 };
        let started = ls.start(s, ticket, &n, now, 0);
        if !matches!(started, Start::Sent) {
            return started;
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if let Some((_, outcome, location)) = ls.take_finished() {
                return Start::Done(outcome, location);
            }
            let (which, mut fds): (Vec<usize>, Vec<PollFd>) = ls
                .poll_set()
                .map(|(i, fd, flags)| (i, PollFd::new(fd, flags)))
                .unzip();
            let _ = poll(&mut fds, PollTimeout::from(100u16));
            let ready: Vec<usize> = which
                .iter()
                .zip(&fds)
                .filter(|(_, f)| f.revents().is_some_and(|r| !r.is_empty()))
                .map(|(&i, _)| i)
                .collect();
            drop(fds);
            ls.ready(s, &ready, now);
        }
        panic!("attempt {id} to {url} did not end");
    }

    #[test]
    fn a_kept_connection_past_its_names_time_is_used_only_at_the_names_address() {
        let (port, old) = counting_server("127.0.0.1:0");
        let (_, new) = counting_server(&format!("127.0.0.2:{port}"));
        let s = Sender::new(&Delivery::default()).unwrap();
        let host = "svc.names.test";
        let url = format!("http://{host}:{port}/x");
        let at = |ip: [u8; 4]| vec![std::net::SocketAddr::from((ip, port))];
        s.names.put(host, port, at([127, 0, 0, 1]));
        let mut ls = LoopSender::new();
        let delivered = |st: Start| matches!(st, Start::Done(Outcome::Delivered(200), _));
        let count =
            |c: &std::sync::atomic::AtomicUsize| c.load(std::sync::atomic::Ordering::SeqCst);
        // Daemon times (ms): one attempt every 20 s keeps the connection from going idle
        // (LOOP_IDLE_MS); the name was put in the cache just now, so its time ends at about
        // 1 s + RESOLVE_TTL_MS by the daemon's clock.
        let ttl = RESOLVE_TTL_MS;
        for (id, now) in [(1, 1_000), (2, 21_000), (3, 41_000)] {
            assert!(delivered(loop_attempt(&mut ls, &s, &url, id, now)));
        }
        // Past the name's time, the name has the same address: the connection is kept.
        assert!(delivered(loop_attempt(
            &mut ls,
            &s,
            &url,
            4,
            1_000 + ttl + 1
        )));
        assert_eq!((count(&old), count(&new)), (1, 0));
        // The name moves, the old server still answers: within the time, the kept connection.
        s.names.put(host, port, at([127, 0, 0, 2]));
        assert!(delivered(loop_attempt(&mut ls, &s, &url, 5, 21_000 + ttl)));
        assert!(delivered(loop_attempt(&mut ls, &s, &url, 6, 41_000 + ttl)));
        assert_eq!((count(&old), count(&new)), (1, 0));
        // Past it: the new address.
        let later = 1_500 + 2 * ttl;
        assert!(delivered(loop_attempt(&mut ls, &s, &url, 7, later)));
        assert_eq!((count(&old), count(&new)), (1, 1));
        // The name no longer in the cache: no lookup while the time lasts; past it, a worker
        // looks the name up first.
        s.names.forget(host, port);
        assert!(delivered(loop_attempt(
            &mut ls,
            &s,
            &url,
            8,
            later + 20_000
        )));
        assert!(delivered(loop_attempt(
            &mut ls,
            &s,
            &url,
            9,
            later + 40_000
        )));
        assert!(matches!(
            loop_attempt(&mut ls, &s, &url, 10, later + ttl + 1_000),
            Start::NotMine
        ));
        assert_eq!((count(&old), count(&new)), (1, 1));
    }

    #[test]
    fn a_failed_lookup_keeps_a_names_last_addresses_for_a_while() {
        let c = NameCache::default();
        let old = "127.0.0.1:80".parse::<std::net::SocketAddr>().unwrap();
        let new = "127.0.0.2:80".parse::<std::net::SocketAddr>().unwrap();
        let down = || Err(std::io::Error::other("resolver down"));
        // Never known: nothing to fall back on.
        assert_eq!(c.lookup_with("crm.test", 80, down), None);
        assert_eq!(
            c.lookup_with("crm.test", 80, || Ok(vec![old])),
            Some(vec![old])
        );
        // Past its time...
        let age = Duration::from_millis(RESOLVE_TTL_MS + 1);
        c.entries.lock().unwrap()[0].at = std::time::Instant::now().checked_sub(age).unwrap();
        let mut out = heapless::Vec::new();
        assert_eq!(c.get_into("crm.test", 80, &mut out), None);
        // ...and the resolver fails: the last addresses, for RESOLVE_STALE_MS.
        assert_eq!(c.lookup_with("crm.test", 80, down), Some(vec![old]));
        assert!(c.is_stale("crm.test", 80));
        let left = c.get_into("crm.test", 80, &mut out).expect("usable again");
        assert!(
            left <= RESOLVE_STALE_MS && left > RESOLVE_STALE_MS - 1_000,
            "{left}"
        );
        assert_eq!(out.as_slice(), &[old]);
        // An answer replaces them; a failed connection forgets them, and then nothing is left.
        assert_eq!(
            c.lookup_with("crm.test", 80, || Ok(vec![new])),
            Some(vec![new])
        );
        assert!(!c.is_stale("crm.test", 80));
        c.forget("crm.test", 80);
        assert_eq!(c.lookup_with("crm.test", 80, down), None);
    }

    #[test]
    fn location_loses_its_credentials() {
        assert_eq!(
            location_for_log("https://u:s3cret@crm.example/x?a=b@c"),
            "https://crm.example/x?a=b@c"
        );
        assert_eq!(location_for_log("/new\r\nX: y"), "/new??X: y");
        assert_eq!(location_for_log(&"a".repeat(1000)).len(), LOCATION_CAP);
    }
}

/// Host names remembered by the delivery resolver, one entry per (name, port); when full, the
/// entry looked up longest ago is replaced.
pub const RESOLVE_CACHE_CAP: usize = 32;
/// Addresses kept per name (the first ones the system resolver gives, in its order).
pub const MAX_ADDRS_PER_NAME: usize = 4;
/// How long a resolved name is used before it is looked up again, so a server that moves (DHCP,
/// a DNS change) is followed within this time; at once when a connection to it fails. The loop
/// sender's kept connection follows it too: past this time it is used again only if its address
/// is still among the name's (otherwise the next notification opens one to the new address).
pub const RESOLVE_TTL_MS: u64 = 60_000;
/// When a name's lookup fails (a DNS server restarting, a LAN hiccup) and the cache still has
/// its last addresses (past their time, but no connection to them has failed: those are
/// forgotten at once), they are used for this much longer, and the lookup tried again after it:
/// a receiver that still answers at its address keeps getting its notifications.
pub const RESOLVE_STALE_MS: u64 = 5_000;

/// One remembered name.
#[derive(Debug)]
struct Resolved {
    host: String,
    port: u16,
    addrs: Vec<std::net::SocketAddr>,
    at: std::time::Instant,
    /// In use past its time because its lookups fail ([`RESOLVE_STALE_MS`]).
    stale: bool,
}

/// Names resolved once per destination and kept for [`RESOLVE_TTL_MS`] (bounded:
/// [`RESOLVE_CACHE_CAP`]). Shared by the resolver ureq calls and the sender, which forgets a
/// name when a connection to it fails.
#[derive(Debug, Default)]
struct NameCache {
    entries: std::sync::Mutex<Vec<Resolved>>,
}

impl NameCache {
    fn get(&self, host: &str, port: u16) -> Option<Vec<std::net::SocketAddr>> {
        let e = self.entries.lock().ok()?;
        e.iter()
            .find(|r| r.port == port && r.host.eq_ignore_ascii_case(host))
            .filter(|r| r.at.elapsed() < Duration::from_millis(RESOLVE_TTL_MS))
            .map(|r| r.addrs.clone())
    }

    /// Like [`NameCache::get`], into `out` (no allocation): how many more milliseconds the
    /// addresses may be used (at least 1), or `None` when the name is not known or too old.
    fn get_into(
        &self,
        host: &str,
        port: u16,
        out: &mut heapless::Vec<std::net::SocketAddr, MAX_ADDRS_PER_NAME>,
    ) -> Option<u64> {
        let e = self.entries.lock().ok()?;
        let r = e
            .iter()
            .find(|r| r.port == port && r.host.eq_ignore_ascii_case(host))?;
        let age = r.at.elapsed().as_millis() as u64;
        let left = RESOLVE_TTL_MS.checked_sub(age).filter(|&l| l > 0)?;
        out.clear();
        out.extend(r.addrs.iter().copied().take(MAX_ADDRS_PER_NAME));
        (!out.is_empty()).then_some(left)
    }

    /// Looks `host` up with the system resolver (in the calling thread: `/etc/hosts` and DNS)
    /// and remembers the first [`MAX_ADDRS_PER_NAME`] addresses. When it has none, the name's
    /// last addresses for [`RESOLVE_STALE_MS`] if the cache still has them; else `None`.
    fn lookup(&self, host: &str, port: u16) -> Option<Vec<std::net::SocketAddr>> {
        use std::net::ToSocketAddrs;
        self.lookup_with(host, port, || {
            (host, port)
                .to_socket_addrs()
                .map(|a| a.take(MAX_ADDRS_PER_NAME).collect())
        })
    }

    /// [`NameCache::lookup`] with `resolve` as the resolver.
    fn lookup_with(
        &self,
        host: &str,
        port: u16,
        resolve: impl FnOnce() -> std::io::Result<Vec<std::net::SocketAddr>>,
    ) -> Option<Vec<std::net::SocketAddr>> {
        match resolve() {
            Ok(found) if !found.is_empty() => {
                self.put(host, port, found.clone());
                Some(found)
            }
            _ => self.stale(host, port),
        }
    }

    /// The last addresses of `host` after its lookup failed, made usable for
    /// [`RESOLVE_STALE_MS`] more; `None` when the cache has them no more.
    fn stale(&self, host: &str, port: u16) -> Option<Vec<std::net::SocketAddr>> {
        let mut e = self.entries.lock().ok()?;
        let r = e
            .iter_mut()
            .find(|r| r.port == port && r.host.eq_ignore_ascii_case(host))?;
        let back = Duration::from_millis(RESOLVE_TTL_MS - RESOLVE_STALE_MS);
        let now = std::time::Instant::now();
        r.at = now.checked_sub(back).unwrap_or(now);
        // Once per outage: the lookup is tried again every RESOLVE_STALE_MS meanwhile.
        if !r.stale {
            r.stale = true;
            log::warn!(
                "looking up {host} failed: its last addresses are used until it answers again \
                 (tried every {} s)",
                RESOLVE_STALE_MS / 1000
            );
        }
        Some(r.addrs.clone())
    }

    /// Whether `host`'s addresses are in use past their time ([`NameCache::stale`]).
    fn is_stale(&self, host: &str, port: u16) -> bool {
        self.entries.lock().is_ok_and(|e| {
            e.iter()
                .any(|r| r.stale && r.port == port && r.host.eq_ignore_ascii_case(host))
        })
    }

    fn put(&self, host: &str, port: u16, addrs: Vec<std::net::SocketAddr>) {
        let Ok(mut e) = self.entries.lock() else {
            return;
        };
        e.retain(|r| !(r.port == port && r.host.eq_ignore_ascii_case(host)));
        if e.len() >= RESOLVE_CACHE_CAP {
            if let Some(oldest) = e
                .iter()
                .enumerate()
                .min_by_key(|(_, r)| r.at)
                .map(|(i, _)| i)
            {
                e.swap_remove(oldest);
            }
        }
        e.push(Resolved {
            host: host.to_string(),
            port,
            addrs,
            at: std::time::Instant::now(),
            stale: false,
        });
    }

    /// Forgets the name of `url` (its connection failed: it may have moved).
    fn forget_url(&self, url: &str) {
        let d = crate::core::outbox::Destination::of(url);
        self.forget(d.host, d.port);
    }

    /// Forgets `host` (port `port`). An IP literal is never in the cache.
    fn forget(&self, host: &str, port: u16) {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(mut e) = self.entries.lock() {
            e.retain(|r| !(r.port == port && r.host.eq_ignore_ascii_case(host)));
        }
    }
}

/// The delivery resolver. ureq's DefaultResolver runs every lookup in a new thread when a
/// timeout is set (always, here), even for an IP literal and a pooled connection: a thread per
/// notification. Here an IP literal needs no lookup, and a name is looked up once in the calling
/// worker (the system resolver, `/etc/hosts` and DNS, no extra thread) and then taken from the
/// [`NameCache`]. A lookup that hangs holds only the worker of that destination: the outbox has
/// at most one attempt in flight per destination, and the other destinations have other workers.
#[derive(Debug)]
struct CachingResolver {
    cache: std::sync::Arc<NameCache>,
}

impl ureq::unversioned::resolver::Resolver for CachingResolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        _config: &ureq::config::Config,
        _timeout: ureq::unversioned::transport::NextTimeout,
    ) -> Result<ureq::unversioned::resolver::ResolvedSocketAddrs, ureq::Error> {
        let Some(a) = uri.authority() else {
            return Err(ureq::Error::HostNotFound);
        };
        let https = uri.scheme_str() == Some("https");
        let port = a.port_u16().unwrap_or(if https { 443 } else { 80 });
        let host = a.host().trim_start_matches('[').trim_end_matches(']');
        let mut v = self.empty();
        if let Ok(ip) = host.parse::<std::net::IpAddr>() {
            v.push(std::net::SocketAddr::new(ip, port));
            return Ok(v);
        }
        let addrs = match self.cache.get(host, port) {
            Some(a) => a,
            None => self
                .cache
                .lookup(host, port)
                .ok_or(ureq::Error::HostNotFound)?,
        };
        for a in addrs {
            v.push(a);
        }
        Ok(v)
    }
}
