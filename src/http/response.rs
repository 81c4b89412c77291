//! Writing an answer.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use super::Version;

/// After an error answer, how long and how much [`linger_close`] drains before closing, so that
/// the peer reads the answer instead of a reset.
pub const LINGER: Duration = Duration::from_millis(500);
/// See [`LINGER`].
pub const LINGER_BYTES: usize = 256 * 1024;

/// An answer: status, header fields, body. `Content-Length` and `Connection` are written by
/// [`Response::write_to`]; do not add them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// An answer with an empty body.
    pub fn new(status: u16) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header field.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Sets the body and its `Content-Type`.
    pub fn body(self, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        let mut r = self.header("Content-Type", content_type);
        r.body = body.into();
        r
    }

    /// Writes the answer to a request of `version`; `keep_alive: false` adds `Connection: close`
    /// (the caller closes after), an HTTP/1.0 client that stays gets `Connection: keep-alive`.
    /// Header values with a line break are refused (`InvalidInput`), so a value taken from a
    /// request can never add a header.
    pub fn write_to(
        &self,
        w: &mut impl Write,
        version: Version,
        keep_alive: bool,
    ) -> io::Result<()> {
        let mut text = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        for (name, value) in &self.headers {
            if [name, value].iter().any(|s| s.contains(['\r', '\n'])) {
                return Err(io::ErrorKind::InvalidInput.into());
            }
            text.push_str(&format!("{name}: {value}\r\n"));
        }
        text.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        text.push_str(match (keep_alive, version) {
            (false, _) => "Connection: close\r\n",
            (true, Version::Http10) => "Connection: keep-alive\r\n",
            (true, Version::Http11) => "",
        });
        text.push_str("\r\n");
        let mut out = text.into_bytes();
        out.extend_from_slice(&self.body);
        w.write_all(&out)?;
        w.flush()
    }
}

/// Writes an answer with an empty body.
pub fn write_response(
    w: &mut impl Write,
    version: Version,
    status: u16,
    keep_alive: bool,
) -> io::Result<()> {
    Response::new(status).write_to(w, version, keep_alive)
}

/// Closes a connection gently after an error answer: stops sending, then drains what the peer
/// still sends (at most [`LINGER_BYTES`] for [`LINGER`]). Closing with unread input would reset
/// the connection and could destroy the answer before the peer reads it.
pub fn linger_close(stream: &mut TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
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
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(r: &Response, version: Version, keep_alive: bool) -> String {
        let mut out = Vec::new();
        r.write_to(&mut out, version, keep_alive).expect("written");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn writes_answers() {
        assert_eq!(
            written(&Response::new(204), Version::Http11, true),
            "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"
        );
        assert_eq!(
            written(&Response::new(200), Version::Http10, true),
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n"
        );
        let json = Response::new(422)
            .header("ETag", "\"ab\"")
            .body("application/json", "{}");
        assert_eq!(
            written(&json, Version::Http11, false),
            "HTTP/1.1 422 Unprocessable Content\r\nETag: \"ab\"\r\nContent-Type: application/json\r\n\
             Content-Length: 2\r\nConnection: close\r\n\r\n{}"
        );
    }

    #[test]
    fn refuses_a_header_that_would_split_the_answer() {
        let evil = Response::new(200).header("Location", "/x\r\nSet-Cookie: a=b");
        let mut out = Vec::new();
        let err = evil.write_to(&mut out, Version::Http11, true).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(out.is_empty());
    }
}
