//! The crate's one server-side HTTP/1.1 layer: `listen` and the admin server both stand on it.
//!
//! Parsing is [`httparse`]'s (the parser under hyper: no allocation, strict about tokens); this
//! layer adds what a server needs around it, every part bounded by a named constant:
//!
//! - [`head`]: the request head ([`Head`]): parse, body framing (RFC 9112 §6.3: conflicting or
//!   invalid framing is refused, never guessed), keep-alive, `Expect: 100-continue`.
//! - [`conn`]: [`Connection`], the read side of one connection over any `Read` (a `TcpStream`, a
//!   rustls `StreamOwned`): heads and bodies of successive requests through one bounded buffer,
//!   `Content-Length` and chunked bodies, the time policy (idle, read timeout, slow client).
//! - [`response`]: [`Response`] and how it is written (status, headers, body, `Connection`).
//!
//! Errors are one small `Copy` enum, [`HttpError`], each variant the status to answer before
//! closing: 400, 408, 413, 431, 501, 505. I/O errors of the peer are [`ReadError::Io`]: close
//! without an answer.
//!
//! The time policy: the caller sets the socket's read timeout to [`READ_TIMEOUT`]. Between
//! requests a connection may stay silent up to [`IDLE_TIMEOUT`] (then it is closed without a
//! word). Once a request has begun, a silence of [`READ_TIMEOUT`] or a request not complete
//! within [`REQUEST_TIMEOUT`] of its first byte is a 408: a client that trickles one byte a second
//! holds a connection for at most [`REQUEST_TIMEOUT`].

pub mod conn;
pub mod head;
pub mod response;

use std::io;
use std::time::Duration;

pub use conn::{read_body_answering_continue, Connection, Request};
pub use head::{BodyKind, Head};
pub use response::{linger_close, reason, write_response, Response};

/// Longest request head (request line plus headers), in bytes; beyond it: 431.
pub const MAX_HEAD: usize = 8 * 1024;
/// Most header fields in one request; beyond it: 431.
pub const MAX_HEADERS: usize = 64;
/// Longest request body, in bytes (after de-chunking); beyond it: 413.
pub const MAX_BODY: usize = 64 * 1024;
/// Longest chunk-size line (size, extensions) or trailer line of a chunked body.
pub const MAX_CHUNK_LINE: usize = 256;
/// A connection that sends nothing between requests for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// The socket read timeout servers set: a silence this long inside a request is a 408.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// A request (head and body) must arrive within this long of its first byte, else 408.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// A peer that does not take our answer within this long is dropped.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// The bounds one [`Connection`] reads under; [`Limits::default`] is the named constants.
/// A server may set smaller ones (the admin API takes smaller bodies than `listen`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Request line plus headers, bytes (at most [`MAX_HEAD`]: the buffer's size).
    pub head: usize,
    /// Header fields (at most [`MAX_HEADERS`]).
    pub headers: usize,
    /// Body bytes after de-chunking.
    pub body: usize,
    /// Silence allowed between requests.
    pub idle: Duration,
    /// Time from a request's first byte to its last.
    pub request: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            head: MAX_HEAD,
            headers: MAX_HEADERS,
            body: MAX_BODY,
            idle: IDLE_TIMEOUT,
            request: REQUEST_TIMEOUT,
        }
    }
}

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
    /// The request did not arrive in time (silence inside it, or a slow client): 408.
    Timeout,
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
    /// The status to answer with.
    pub fn status(self) -> u16 {
        match self {
            HttpError::BadRequest => 400,
            HttpError::Timeout => 408,
            HttpError::HeadTooLarge => 431,
            HttpError::BodyTooLarge => 413,
            HttpError::NotImplemented => 501,
            HttpError::VersionNotSupported => 505,
        }
    }

    /// A short description for a log line.
    pub fn what(self) -> &'static str {
        match self {
            HttpError::BadRequest => "malformed request",
            HttpError::Timeout => "request not complete in time",
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

/// A reader that hands out its input in fixed-size pieces, to cross every buffer boundary.
#[cfg(test)]
pub(crate) struct Trickle<'a>(pub &'a [u8], pub usize);

#[cfg(test)]
impl io::Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.1.min(buf.len()).min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_stay_small_and_map_to_statuses() {
        assert_eq!(std::mem::size_of::<HttpError>(), 1);
        let all = [
            (HttpError::BadRequest, 400),
            (HttpError::Timeout, 408),
            (HttpError::BodyTooLarge, 413),
            (HttpError::HeadTooLarge, 431),
            (HttpError::NotImplemented, 501),
            (HttpError::VersionNotSupported, 505),
        ];
        for (e, status) in all {
            assert_eq!(e.status(), status);
            assert_ne!(reason(status), "Status", "{status} has a reason phrase");
        }
    }
}
