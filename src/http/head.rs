//! The request head: request line and header fields, parsed by `httparse`.

use super::{HttpError, Version, MAX_HEADERS};

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
    /// The request target exactly as it arrived (UTF-8: a target that is not is refused).
    pub target: String,
    pub version: Version,
    /// Field names as sent, values without surrounding white space (bytes that are not UTF-8
    /// shown as U+FFFD), in arrival order.
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// Parses a whole request head, with or without the empty line that ends it, allowing
    /// [`MAX_HEADERS`] fields.
    pub fn parse(bytes: &[u8]) -> Result<Head, HttpError> {
        if let Some((head, _)) = Head::parse_prefix(bytes, MAX_HEADERS)? {
            return Ok(head);
        }
        let mut ended = bytes.to_vec();
        ended.extend_from_slice(b"\r\n");
        match Head::parse_prefix(&ended, MAX_HEADERS)? {
            Some((head, _)) => Ok(head),
            None => Err(HttpError::BadRequest),
        }
    }

    /// Parses the head at the start of `buf`: `Ok(None)` while it is incomplete, else the head
    /// and the length it took (empty line included). Empty lines before the request line are
    /// skipped (RFC 9112 §2.2). More than `max_headers` fields (at most [`MAX_HEADERS`]) is
    /// [`HttpError::HeadTooLarge`].
    pub fn parse_prefix(
        buf: &[u8],
        max_headers: usize,
    ) -> Result<Option<(Head, usize)>, HttpError> {
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let slots = &mut slots[..max_headers.min(MAX_HEADERS)];
        let mut req = httparse::Request::new(slots);
        let len = match req.parse(buf) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => return Err(HttpError::HeadTooLarge),
            Err(httparse::Error::Version) => return Err(version_error(buf)),
            Err(_) => return Err(HttpError::BadRequest),
        };
        let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
            return Err(HttpError::BadRequest);
        };
        let version = match minor {
            0 => Version::Http10,
            1 => Version::Http11,
            _ => return Err(HttpError::VersionNotSupported),
        };
        let headers = req
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_string(),
                    String::from_utf8_lossy(h.value.trim_ascii()).into_owned(),
                )
            })
            .collect();
        Ok(Some((
            Head {
                method: method.to_string(),
                target: target.to_string(),
                version,
                headers,
            },
            len,
        )))
    }

    /// The first value of a header field (name matched case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header field, in arrival order.
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The target's path (before `?`).
    pub fn path(&self) -> &str {
        self.target.split(['?', '#']).next().unwrap_or_default()
    }

    /// The target's query (after `?`, without a fragment), if any.
    pub fn query(&self) -> Option<&str> {
        let (_, query) = self.target.split_once('?')?;
        Some(query.split_once('#').map_or(query, |(q, _)| q))
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

/// httparse says only "bad version": an `HTTP/x.y` we do not speak is a 505, anything else in
/// that place (`FTP/1.1`) a 400.
fn version_error(buf: &[u8]) -> HttpError {
    let line = buf
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .find(|l| !l.is_empty())
        .unwrap_or_default();
    match line.split(|&b| b == b' ').nth(2) {
        Some(v) if v.starts_with(b"HTTP/") => HttpError::VersionNotSupported,
        _ => HttpError::BadRequest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Head {
        Head::parse(text.as_bytes()).expect("valid head")
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
    fn splits_the_target() {
        let h = head("GET /a/b?x=1&y#frag HTTP/1.1\r\n");
        assert_eq!(h.path(), "/a/b");
        assert_eq!(h.query(), Some("x=1&y"));
        assert_eq!(head("GET /p HTTP/1.1\r\n").query(), None);
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
        // A smaller bound of a server's own.
        assert_eq!(
            Head::parse_prefix(b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n", 1),
            Err(HttpError::HeadTooLarge)
        );
    }

    #[test]
    fn finds_where_the_head_ends() {
        let end = |b: &[u8]| Head::parse_prefix(b, MAX_HEADERS).map(|h| h.map(|(_, n)| n));
        assert_eq!(end(b"GET / HTTP/1.1\r\n\r\nrest"), Ok(Some(18)));
        assert_eq!(end(b"GET / HTTP/1.1\n\nrest"), Ok(Some(16)));
        assert_eq!(end(b"\r\n\r\nGET / HTTP/1.1\r\nA: b\r\n\r\n"), Ok(Some(28)));
        assert_eq!(end(b"GET / HTTP/1.1\r\nA: b\r\n"), Ok(None));
        assert_eq!(end(b"\r\n\r\n"), Ok(None));
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
}
