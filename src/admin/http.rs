//! The admin server's side of HTTP: reading one request with the crate's HTTP layer
//! ([`crate::http`]) under the admin's own bounds, and the [`Request`]/[`Response`] the handlers
//! work on. One request per connection (`Connection: close`).

use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::time::Duration;

/// Largest request head (request line and headers).
pub const ADMIN_HEAD_CAP: usize = 8 * 1024;
/// Largest request body (a whole config, with room for JSON overhead).
pub const ADMIN_BODY_CAP: usize = 96 * 1024;
/// Most headers in one request.
pub const ADMIN_MAX_HEADERS: usize = 32;
/// Silence allowed before a request's first byte, and inside it (the socket read timeout).
pub const ADMIN_IDLE_MS: u64 = 5_000;
/// A request (head and body) must arrive within this of its first byte: a client that sends one
/// byte a second is dropped.
pub const ADMIN_REQUEST_MS: u64 = 8_000;

/// One request as the handlers see it.
#[derive(Clone, Debug, Default)]
pub struct Request {
    pub method: String,
    /// The request target as sent (`/api/v1/config?x=1`).
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub peer: Option<IpAddr>,
    pub tls: bool,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn path(&self) -> &str {
        self.target.split(['?', '#']).next().unwrap_or("")
    }

    pub fn query(&self) -> &str {
        self.target
            .split_once('?')
            .map(|(_, q)| q.split('#').next().unwrap_or(""))
            .unwrap_or("")
    }

    /// The value of cookie `name`.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
            .flat_map(|(_, v)| v.split(';'))
            .filter_map(|c| c.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }
}

/// A response to write.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into(),
        }
    }

    pub fn json(status: u16, v: &serde_json::Value) -> Response {
        Response::new(status, "application/json", v.to_string())
    }

    pub fn error(status: u16, code: &str, text: &str) -> Response {
        Response::json(status, &serde_json::json!({"error": text, "code": code}))
    }

    pub fn text(status: u16, text: &str) -> Response {
        Response::new(status, "text/plain; charset=utf-8", format!("{text}\n"))
    }

    pub fn with(mut self, name: &str, value: impl Into<String>) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn write_to(&self, w: &mut impl Write, head_only: bool) -> io::Result<()> {
        let mut out = Vec::with_capacity(256 + self.body.len());
        let _ = write!(out, "HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        for (n, v) in &self.headers {
            // Header values are built by this server; a line break would split the response.
            let v: String = v.chars().filter(|c| *c != '\r' && *c != '\n').collect();
            let _ = write!(out, "{n}: {v}\r\n");
        }
        let _ = write!(
            out,
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.body.len()
        );
        if !head_only && self.status != 204 && self.status != 304 {
            out.extend_from_slice(&self.body);
        }
        w.write_all(&out)?;
        w.flush()
    }
}

pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Content",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// Why no request could be read; `Some(response)` says what to answer, if anything.
#[derive(Debug)]
pub struct ReadError(pub Option<Response>);

/// The bounds the admin server reads under.
pub fn limits() -> crate::http::Limits {
    crate::http::Limits {
        head: ADMIN_HEAD_CAP,
        headers: ADMIN_MAX_HEADERS,
        body: ADMIN_BODY_CAP,
        idle: Duration::from_millis(ADMIN_IDLE_MS),
        request: Duration::from_millis(ADMIN_REQUEST_MS),
    }
}

/// Reads one request (the stream's read timeout should be [`ADMIN_IDLE_MS`]).
pub fn read_request<S: Read + Write>(s: &mut S) -> Result<Request, ReadError> {
    let mut conn = crate::http::Connection::with_limits(s, limits());
    match conn.read_request() {
        Ok(Some(r)) => Ok(Request {
            method: r.head.method,
            target: r.head.target,
            headers: r.head.headers,
            body: r.body,
            peer: None,
            tls: false,
        }),
        Ok(None) | Err(crate::http::ReadError::Io(_)) => Err(ReadError(None)),
        Err(crate::http::ReadError::Http(e)) => {
            Err(ReadError(Some(Response::text(e.status(), e.what()))))
        }
    }
}

/// Decodes `%XX` and (in forms) `+`.
pub fn percent_decode(s: &str, plus_is_space: bool) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let h = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(h, 16).ok()?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// `a=1&b=2` into decoded pairs; `None` if any part is malformed.
pub fn form_pairs(s: &str) -> Option<Vec<(String, String)>> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Some((percent_decode(k, true)?, percent_decode(v, true)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Mem(io::Cursor<Vec<u8>>);
    impl Read for Mem {
        fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
            self.0.read(b)
        }
    }
    impl Write for Mem {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn read(s: &str) -> Result<Request, ReadError> {
        read_request(&mut Mem(io::Cursor::new(s.as_bytes().to_vec())))
    }

    #[test]
    fn parses_head_and_body() {
        let r = read("POST /a?b=1 HTTP/1.1\r\nHost: x\r\nCookie: a=1; en_session=zz\r\nContent-Length: 3\r\n\r\nabcdef").unwrap();
        assert_eq!(
            (r.method.as_str(), r.path(), r.query()),
            ("POST", "/a", "b=1")
        );
        assert_eq!(r.body, b"abc");
        assert_eq!(r.cookie("en_session"), Some("zz"));
        assert_eq!(r.header("HOST"), Some("x"));
    }

    #[test]
    fn refuses_what_it_cannot_bound() {
        let status = |s: &str| read(s).unwrap_err().0.map(|r| r.status);
        assert_eq!(
            status(&format!(
                "GET / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
                ADMIN_BODY_CAP + 1
            )),
            Some(413)
        );
        assert_eq!(
            status("GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"),
            Some(501)
        );
        assert_eq!(
            status(&format!("GET /{} HTTP/1.1\r\n", "a".repeat(ADMIN_HEAD_CAP))),
            Some(431)
        );
        assert_eq!(status("GARBAGE\0 / HTTP/1.1\r\n\r\n"), Some(400));
        assert_eq!(status("GET / HTTP/1.1\r\nHost: x\r\n").map(|_| ()), None); // cut short
        assert_eq!(
            status("POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\nab"),
            None
        );
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut x: u64 = 0x2545f4914f6cdd1d;
        let seeds: [&[u8]; 4] = [
            b"GET / HTTP/1.1\r\n",
            b"Content-Length: 5\r\n",
            b"\r\n",
            b"Cookie: a=\xff;;=\r\n",
        ];
        for _ in 0..5_000 {
            let mut req = Vec::new();
            for _ in 0..(x % 8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if x % 3 == 0 {
                    req.push((x >> 8) as u8);
                } else {
                    req.extend_from_slice(seeds[(x % 4) as usize]);
                }
            }
            x = x.wrapping_add(1);
            if let Ok(r) = read_request(&mut Mem(io::Cursor::new(req))) {
                let _ = (r.path(), r.query(), r.cookie("a"), form_pairs(r.query()));
            }
        }
    }

    #[test]
    fn forms() {
        assert_eq!(
            form_pairs("settings=save&action_incoming_url=http%3A%2F%2Fh%2Fx%3Fa%3D1+2&x=")
                .unwrap(),
            vec![
                ("settings".into(), "save".into()),
                ("action_incoming_url".into(), "http://h/x?a=1 2".into()),
                ("x".into(), "".into())
            ]
        );
        assert!(form_pairs("a=%G1").is_none());
        assert!(form_pairs("a=%FF").is_none());
    }

    #[test]
    fn response_never_splits_a_header() {
        let mut out = Vec::new();
        Response::text(200, "ok")
            .with("X-A", "a\r\nSet-Cookie: evil=1")
            .write_to(&mut out, false)
            .unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(s.contains("X-A: aSet-Cookie: evil=1\r\n"), "{s}");
    }
}
