//! Netstrings (`len:payload,`), the framing of ctrl_tcp: a bounded, pure decoder.

use super::*;

/// Why the byte stream is not a valid netstring stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A netstring longer than [`NETSTRING_CAP`]: it is skipped, the stream goes on.
    #[error("netstring of {0} bytes is over the {NETSTRING_CAP}-byte cap: skipped")]
    TooLong(usize),
    /// The length prefix is not `digits ':'`: framing is lost, reconnect.
    #[error("bad netstring length prefix")]
    BadLength,
    /// The netstring does not end with `,`: framing is lost, reconnect.
    #[error("netstring does not end with ','")]
    NoComma,
}

impl FrameError {
    /// Can the stream go on after this error?
    pub fn is_fatal(self) -> bool {
        !matches!(self, FrameError::TooLong(_))
    }
}

/// Incremental netstring decoder over one fixed buffer (allocated once).
///
/// ```
/// use event_notify::baresip::Decoder;
/// let mut d = Decoder::new();
/// let input = b"5:hello,2:ok,";
/// let n = input.len().min(d.spare().len());
/// d.spare()[..n].copy_from_slice(&input[..n]);
/// d.filled(n);
/// assert_eq!(d.next_frame(), Some(Ok(&b"hello"[..])));
/// assert_eq!(d.next_frame(), Some(Ok(&b"ok"[..])));
/// assert_eq!(d.next_frame(), None);
/// ```
pub struct Decoder {
    buf: Box<[u8]>,
    len: usize,
    /// Bytes at the front that belong to the frame handed out last.
    consumed: usize,
    /// Bytes still to drop of an over-long netstring (payload and comma).
    skip: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder {
            buf: vec![0u8; LEN_DIGITS_MAX + 1 + NETSTRING_CAP + 1].into_boxed_slice(),
            len: 0,
            consumed: 0,
            skip: 0,
        }
    }

    /// Forgets everything buffered (after a reconnect).
    pub fn reset(&mut self) {
        self.len = 0;
        self.consumed = 0;
        self.skip = 0;
    }

    /// Where the next read may write. Never empty while frames are drained with
    /// [`Decoder::next_frame`] until it returns `None`.
    pub fn spare(&mut self) -> &mut [u8] {
        self.compact();
        &mut self.buf[self.len..]
    }

    /// Marks `n` bytes of [`Decoder::spare`] as read.
    pub fn filled(&mut self, n: usize) {
        self.len = (self.len + n).min(self.buf.len());
    }

    fn compact(&mut self) {
        if self.consumed > 0 {
            self.buf.copy_within(self.consumed..self.len, 0);
            self.len -= self.consumed;
            self.consumed = 0;
        }
        if self.skip > 0 {
            let n = self.skip.min(self.len);
            self.buf.copy_within(n..self.len, 0);
            self.len -= n;
            self.skip -= n;
        }
    }

    /// The next complete netstring's payload, an error, or `None` when more bytes are needed.
    /// After a fatal error ([`FrameError::is_fatal`]) the caller must [`Decoder::reset`].
    pub fn next_frame(&mut self) -> Option<Result<&[u8], FrameError>> {
        self.compact();
        if self.skip > 0 || self.len == 0 {
            return None;
        }
        let data = &self.buf[..self.len];
        let colon = match data.iter().position(|&b| b == b':') {
            Some(i) => i,
            None if self.len > LEN_DIGITS_MAX || !data.iter().all(u8::is_ascii_digit) => {
                return Some(Err(FrameError::BadLength))
            }
            None => return None,
        };
        if colon == 0 || colon > LEN_DIGITS_MAX || !data[..colon].iter().all(u8::is_ascii_digit) {
            return Some(Err(FrameError::BadLength));
        }
        let n = data[..colon]
            .iter()
            .fold(0usize, |acc, &d| acc * 10 + usize::from(d - b'0'));
        if n > NETSTRING_CAP {
            self.consumed = colon + 1;
            self.skip = n + 1;
            return Some(Err(FrameError::TooLong(n)));
        }
        let end = colon + 1 + n;
        if self.len <= end {
            return None;
        }
        if self.buf[end] != b',' {
            return Some(Err(FrameError::NoComma));
        }
        self.consumed = end + 1;
        Some(Ok(&self.buf[colon + 1..end]))
    }
}

/// Writes `payload` as one netstring.
pub fn netstring(payload: &str) -> std::string::String {
    format!("{}:{},", payload.len(), payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::{String as Text, ToString};
    use std::vec::Vec as StdVec;
    // --- netstrings

    fn feed(d: &mut Decoder, bytes: &[u8]) -> StdVec<Result<Text, FrameError>> {
        let mut got = StdVec::new();
        let mut rest = bytes;
        loop {
            while let Some(f) = d.next_frame() {
                let fatal = matches!(f, Err(e) if e.is_fatal());
                got.push(f.map(|b| Text::from_utf8_lossy(b).to_string()));
                if fatal {
                    return got;
                }
            }
            if rest.is_empty() {
                return got;
            }
            let spare = d.spare();
            let n = rest.len().min(spare.len());
            spare[..n].copy_from_slice(&rest[..n]);
            d.filled(n);
            rest = &rest[n..];
        }
    }

    #[test]
    fn netstrings_split_anywhere() {
        let stream = b"5:hello,0:,11:{\"a\":\"b:,\"},";
        let whole = feed(&mut Decoder::new(), stream);
        assert_eq!(
            whole,
            [
                Ok("hello".into()),
                Ok("".into()),
                Ok("{\"a\":\"b:,\"}".into())
            ]
        );
        let mut d = Decoder::new();
        let mut got = StdVec::new();
        for b in stream {
            got.extend(feed(&mut d, &[*b]));
        }
        assert_eq!(got, whole);
    }

    #[test]
    fn oversized_netstring_is_skipped_and_the_stream_goes_on() {
        let big = "x".repeat(NETSTRING_CAP + 1);
        let stream = format!("2:ok,{}:{big},3:end,", big.len());
        let got = feed(&mut Decoder::new(), stream.as_bytes());
        assert_eq!(
            got,
            [
                Ok("ok".into()),
                Err(FrameError::TooLong(NETSTRING_CAP + 1)),
                Ok("end".into())
            ]
        );
        let just = "y".repeat(NETSTRING_CAP);
        let stream = format!("{}:{just},", just.len());
        assert_eq!(feed(&mut Decoder::new(), stream.as_bytes()), [Ok(just)]);
    }

    #[test]
    fn broken_framing_is_fatal() {
        assert_eq!(
            feed(&mut Decoder::new(), b"2:ok;"),
            [Err(FrameError::NoComma)]
        );
        assert_eq!(
            feed(&mut Decoder::new(), b"x:ok,"),
            [Err(FrameError::BadLength)]
        );
        assert_eq!(
            feed(&mut Decoder::new(), b":ok,"),
            [Err(FrameError::BadLength)]
        );
        assert_eq!(
            feed(&mut Decoder::new(), b"1234567890123"),
            [Err(FrameError::BadLength)]
        );
        assert_eq!(feed(&mut Decoder::new(), b"12345"), []);
        assert!(!FrameError::TooLong(1).is_fatal());
    }
}
