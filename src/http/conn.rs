//! One connection's read side: successive requests (keep-alive) through one bounded buffer.

use std::io::{self, Read, Write};
use std::time::Instant;

use super::{BodyKind, Head, HttpError, Limits, ReadError, MAX_CHUNK_LINE, MAX_HEAD};

/// A request: its head and its whole body (de-chunked, at most the body limit).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub head: Head,
    pub body: Vec<u8>,
}

impl std::ops::Deref for Request {
    type Target = Head;
    fn deref(&self) -> &Head {
        &self.head
    }
}

/// Where a connection is, for the time policy (see the module documentation of `http`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Between requests: silence is allowed up to the idle limit.
    Idle(Instant),
    /// Inside a request that began then.
    Request(Instant),
}

/// A connection's read side with one bounded buffer: reads heads and bodies of successive
/// requests (keep-alive). `S` may be a `TcpStream` or a TLS stream.
pub struct Connection<S> {
    stream: S,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    limits: Limits,
    phase: Phase,
}

impl<S: Read> Connection<S> {
    /// A connection under the default [`Limits`].
    pub fn new(stream: S) -> Self {
        Connection::with_limits(stream, Limits::default())
    }

    /// A connection under `limits` (a head limit above [`MAX_HEAD`] is taken as [`MAX_HEAD`]).
    pub fn with_limits(stream: S, limits: Limits) -> Self {
        let limits = Limits {
            head: limits.head.min(MAX_HEAD),
            ..limits
        };
        Connection {
            stream,
            buf: vec![0; limits.head].into_boxed_slice(),
            start: 0,
            end: 0,
            limits,
            phase: Phase::Idle(Instant::now()),
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

    /// Reads more input into the buffer; `Ok(0)` at end of stream (or when the buffer is full).
    /// Applies the time policy: a read timeout between requests is waited out up to the idle
    /// limit; inside a request it, and a request older than its limit, is a 408.
    fn fill(&mut self) -> Result<usize, ReadError> {
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
                    if let Phase::Request(since) = self.phase {
                        if n > 0 && since.elapsed() > self.limits.request {
                            return Err(HttpError::Timeout.into());
                        }
                    }
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_timeout(&e) => match self.phase {
                    Phase::Idle(since) if since.elapsed() < self.limits.idle => continue,
                    Phase::Idle(_) => return Err(ReadError::Io(e)),
                    Phase::Request(_) => return Err(HttpError::Timeout.into()),
                },
                Err(e) => return Err(ReadError::Io(e)),
            }
        }
    }

    /// Inside a request from now on, unless it already began.
    fn begin_request(&mut self) {
        if let Phase::Idle(_) = self.phase {
            self.phase = Phase::Request(Instant::now());
        }
    }

    /// The next request's head; `Ok(None)` when the peer closed between requests.
    pub fn read_head(&mut self) -> Result<Option<Head>, ReadError> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        loop {
            // Bytes other than the empty lines a client may send first start a request.
            if self.buf[self.start..self.end]
                .iter()
                .any(|b| !b.is_ascii_whitespace())
            {
                self.begin_request();
            }
            // Heads are small and bounded: parsing the whole of one again per read is cheap.
            let parsed = Head::parse_prefix(&self.buf[self.start..self.end], self.limits.headers);
            if let Some((head, n)) = parsed? {
                self.start += n;
                return Ok(Some(head));
            }
            if self.end - self.start >= self.limits.head {
                return Err(HttpError::HeadTooLarge.into());
            }
            match self.fill()? {
                0 if self.buf[self.start..self.end].trim_ascii().is_empty() => return Ok(None),
                0 => return Err(ReadError::Io(io::ErrorKind::UnexpectedEof.into())),
                _ => {}
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
                if self.fill()? == 0 {
                    return Err(ReadError::Io(io::ErrorKind::UnexpectedEof.into()));
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
            if self.fill()? == 0 {
                return Err(ReadError::Io(io::ErrorKind::UnexpectedEof.into()));
            }
        }
    }

    /// Reads a body delimited as `kind`, at most the body limit; the request is complete after.
    pub fn read_body(&mut self, kind: BodyKind) -> Result<Vec<u8>, ReadError> {
        let mut body = Vec::new();
        match kind {
            BodyKind::None => {}
            BodyKind::Length(n) => {
                if n > self.limits.body as u64 {
                    return Err(HttpError::BodyTooLarge.into());
                }
                body.reserve_exact(n as usize);
                self.take_into(&mut body, n as usize)?;
            }
            BodyKind::Chunked => self.read_chunks(&mut body)?,
        }
        self.phase = Phase::Idle(Instant::now());
        Ok(body)
    }

    fn read_chunks(&mut self, body: &mut Vec<u8>) -> Result<(), ReadError> {
        loop {
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
                for _ in 0..=self.limits.headers {
                    if self.read_line(MAX_CHUNK_LINE)?.is_empty() {
                        return Ok(());
                    }
                }
                return Err(HttpError::HeadTooLarge.into());
            }
            if body.len() + size > self.limits.body {
                return Err(HttpError::BodyTooLarge.into());
            }
            self.take_into(body, size)?;
            if !self.read_line(0)?.is_empty() {
                return Err(HttpError::BadRequest.into());
            }
        }
    }
}

impl<S: Read + Write> Connection<S> {
    /// The next whole request (`100 Continue` sent when the client waits for it);
    /// `Ok(None)` when the peer closed between requests.
    pub fn read_request(&mut self) -> Result<Option<Request>, ReadError> {
        let Some(head) = self.read_head()? else {
            return Ok(None);
        };
        let body = read_body_answering_continue(self, &head)?;
        Ok(Some(Request { head, body }))
    }
}

/// Reads the body of `head`, first sending `100 Continue` when the client waits for it (and only
/// when the announced length is within the limit: a too large body is refused before it comes).
pub fn read_body_answering_continue<S: Read + Write>(
    conn: &mut Connection<S>,
    head: &Head,
) -> Result<Vec<u8>, ReadError> {
    let kind = head.body_kind()?;
    if let BodyKind::Length(n) = kind {
        if n > conn.limits.body as u64 {
            return Err(HttpError::BodyTooLarge.into());
        }
    }
    if kind != BodyKind::None && head.expects_continue() {
        let s = conn.get_mut();
        s.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .and_then(|()| s.flush())
            .map_err(ReadError::Io)?;
    }
    conn.read_body(kind)
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

#[cfg(test)]
mod tests {
    use super::super::{Trickle, MAX_BODY, MAX_HEAD};
    use super::*;
    use std::time::Duration;

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
    fn smaller_limits_of_a_server_of_its_own() {
        let limits = Limits {
            head: 64,
            headers: 2,
            body: 4,
            ..Limits::default()
        };
        let read = |input: &[u8]| {
            let mut conn = Connection::with_limits(Trickle(input, 7), limits);
            let head = conn.read_head()?.ok_or(HttpError::BadRequest)?;
            let kind = head.body_kind()?;
            conn.read_body(kind)
        };
        let ok = read(b"POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\nabcd");
        assert_eq!(ok.ok(), Some(b"abcd".to_vec()));
        let err = |r: Result<Vec<u8>, ReadError>| match r {
            Err(ReadError::Http(e)) => Some(e),
            _ => None,
        };
        assert_eq!(
            err(read(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nabcde")),
            Some(HttpError::BodyTooLarge)
        );
        assert_eq!(
            err(read(b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n")),
            Some(HttpError::HeadTooLarge)
        );
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(64));
        assert_eq!(err(read(long.as_bytes())), Some(HttpError::HeadTooLarge));
    }

    /// A peer that sends its bytes one at a time with a pause, and then times out like a socket
    /// with a read timeout.
    struct Slow {
        input: Vec<u8>,
        pause: Duration,
    }

    impl Read for Slow {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            std::thread::sleep(self.pause);
            if self.input.is_empty() || buf.is_empty() {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            buf[0] = self.input.remove(0);
            Ok(1)
        }
    }

    #[test]
    fn slow_and_silent_clients_time_out() {
        let limits = Limits {
            idle: Duration::from_millis(300),
            request: Duration::from_millis(600),
            ..Limits::default()
        };
        let code = |input: &[u8]| {
            let slow = Slow {
                input: input.to_vec(),
                pause: Duration::from_millis(20),
            };
            match Connection::with_limits(slow, limits).read_head() {
                Ok(Some(_)) => "head".to_string(),
                Ok(None) => "closed".into(),
                Err(ReadError::Http(e)) => e.status().to_string(),
                Err(ReadError::Io(e)) => format!("io {:?}", e.kind()),
            }
        };
        // A whole head in time is read.
        assert_eq!(code(b"GET / HTTP/1.1\r\n\r\n"), "head");
        // One byte per 20 ms past the 600 ms a request may take: 408 then, not after the 4 s
        // the whole trickle would take.
        let started = Instant::now();
        assert_eq!(code(&[b'x'; 200]), "408");
        assert!(started.elapsed() < Duration::from_secs(3));
        // Silent in the middle of a head: 408 too.
        assert_eq!(code(b"GET / HT"), "408");
        // Silent between requests: waited out up to the idle limit, then closed quietly.
        let started = Instant::now();
        assert_eq!(code(b""), "io WouldBlock");
        assert!(started.elapsed() >= Duration::from_millis(300));
    }
}
