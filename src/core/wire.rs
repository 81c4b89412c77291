//! The socket wire format, version 1: one line per request, one line per reply.
//!
//! ```text
//! request = "EN1" SP verb *(SP key "=" value) LF      ; at most MSG_CAP bytes with the LF
//! verb    = transition verb | event key or alias | "status" | "ping" | "reload"
//! value   = percent-encoded UTF-8 (%XX for space, %, &, =, non-ASCII, ...)
//! reply   = "OK" [SP detail] LF | "ERR" SP code SP reason LF
//! ```
//! `status` answers with `OK`, then `key value` lines, then an empty line.

use super::hook::{parse_kind, Kind, KindError, Msg};
use super::var::{Var, VALUE_CAP};
use heapless::String;

/// Longest request line, including its LF.
#[cfg(not(test))]
pub const MSG_CAP: usize = 4096;
#[cfg(test)]
pub const MSG_CAP: usize = 512;

/// The protocol version word that starts every request.
pub const VERSION: &str = "EN1";

/// A parsed request.
// A `Request` is a short-lived value on the socket thread's stack, handed straight to the
// engine and never stored in a collection, so the size difference costs nothing; boxing the
// message would add an allocation per event on the hot path.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    Msg(Msg),
    Status,
    Ping,
    Reload,
}

/// Why a request was refused. Each has a stable code for the `ERR` reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("request longer than the {MSG_CAP}-byte limit")]
    TooLong,
    #[error("request is not valid UTF-8")]
    NotUtf8,
    #[error("request does not start with the version word EN1")]
    BadVersion,
    #[error("no verb")]
    NoVerb,
    #[error("unknown verb or event name")]
    UnknownVerb,
    #[error("this verb needs state=")]
    MissingState,
    #[error("bad state= value for this verb")]
    BadState,
    #[error("field without '='")]
    NoEquals,
    #[error("unknown field name")]
    UnknownField,
    #[error("bad percent-encoding in a value")]
    BadEscape,
    #[error("control character in the request")]
    Control,
}

impl WireError {
    /// Short stable code used in `ERR` replies and the refused counters.
    pub const fn code(self) -> &'static str {
        match self {
            WireError::TooLong => "too-long",
            WireError::NotUtf8 => "not-utf8",
            WireError::BadVersion => "bad-version",
            WireError::NoVerb => "no-verb",
            WireError::UnknownVerb => "unknown-verb",
            WireError::MissingState => "missing-state",
            WireError::BadState => "bad-state",
            WireError::NoEquals => "no-equals",
            WireError::UnknownField => "unknown-field",
            WireError::BadEscape => "bad-escape",
            WireError::Control => "control-char",
        }
    }
}

impl From<KindError> for WireError {
    fn from(e: KindError) -> Self {
        match e {
            KindError::UnknownVerb => WireError::UnknownVerb,
            KindError::MissingState => WireError::MissingState,
            KindError::BadState => WireError::BadState,
        }
    }
}

/// The value of one hex digit.
pub(crate) fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The space-separated words of a line (runs of spaces count as one), found by byte: `split`
/// with a `char` and a `filter` cost about 1,000 instructions per line.
struct Words<'a>(&'a str);

impl<'a> Iterator for Words<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        // Plain loops: the release build optimizes for size, and leaves `position`'s closures
        // as calls.
        let b = self.0.as_bytes();
        let mut start = 0;
        while start < b.len() && b[start] == b' ' {
            start += 1;
        }
        if start == b.len() {
            return None;
        }
        let mut end = start;
        while end < b.len() && b[end] != b' ' {
            end += 1;
        }
        // Spaces are ASCII: both cuts fall on character boundaries.
        let w = &self.0[start..end];
        self.0 = &self.0[end..];
        Some(w)
    }
}

/// Percent-decodes `src` into `dst` (cut at capacity on a UTF-8 boundary).
fn decode_into(src: &str, dst: &mut String<VALUE_CAP>) -> Result<(), WireError> {
    if !src.as_bytes().contains(&b'%') {
        // Nothing to decode: the same as below (the text is already valid UTF-8), without the
        // copy through a buffer.
        super::var::set_truncated(dst, src);
        return Ok(());
    }
    let mut buf = heapless::Vec::<u8, { VALUE_CAP + 4 }>::new();
    let b = src.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let byte = if b[i] == b'%' {
            let hi = b
                .get(i + 1)
                .copied()
                .and_then(hex)
                .ok_or(WireError::BadEscape)?;
            let lo = b
                .get(i + 2)
                .copied()
                .and_then(hex)
                .ok_or(WireError::BadEscape)?;
            i += 3;
            hi << 4 | lo
        } else {
            i += 1;
            b[i - 1]
        };
        if buf.push(byte).is_err() {
            break; // over capacity: the value is cut below
        }
    }
    // Cut to a valid UTF-8 prefix no longer than the capacity.
    let valid = match core::str::from_utf8(&buf) {
        Ok(s) => s,
        Err(e) if buf.len() > VALUE_CAP && e.valid_up_to() >= VALUE_CAP.saturating_sub(3) => {
            core::str::from_utf8(&buf[..e.valid_up_to()]).unwrap_or("")
        }
        Err(_) => return Err(WireError::NotUtf8),
    };
    super::var::set_truncated(dst, valid);
    Ok(())
}

/// Parses one request line (with or without its trailing LF / CRLF).
///
/// ```
/// use event_notify::core::wire::{parse_request, Request};
/// use event_notify::{Kind, Var};
/// let r = parse_request(b"EN1 incoming_call call_id=a84b remote=1002 display_remote=Bob%20%26%20Alice\n").unwrap();
/// let Request::Msg(m) = r else { panic!() };
/// assert_eq!(m.vars.get(Var::DisplayRemote), "Bob & Alice");
/// ```
pub fn parse_request(line: &[u8]) -> Result<Request, WireError> {
    let mut msg = Msg::new(Kind::Boot);
    Ok(match parse_into(line, &mut msg)? {
        Verb::Msg => Request::Msg(msg),
        Verb::Status => Request::Status,
        Verb::Ping => Request::Ping,
        Verb::Reload => Request::Reload,
    })
}

/// What a request asks for, the message itself parsed into the caller's [`Msg`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    Msg,
    Status,
    Ping,
    Reload,
}

/// [`parse_request`] into a `Msg` the caller keeps (the daemon reuses one for every line: a
/// new `Msg` is 2.4 KiB to build and move). `msg` is overwritten when the line is a message,
/// and may hold part of one after an error.
pub fn parse_into(line: &[u8], msg: &mut Msg) -> Result<Verb, WireError> {
    if line.len() > MSG_CAP {
        return Err(WireError::TooLong);
    }
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let line = core::str::from_utf8(line).map_err(|_| WireError::NotUtf8)?;
    if line.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(WireError::Control);
    }
    let mut words = Words(line);
    if words.next() != Some(VERSION) {
        return Err(WireError::BadVersion);
    }
    let verb = words.next().ok_or(WireError::NoVerb)?;
    let plain = match verb {
        "status" => Some(Verb::Status),
        "ping" => Some(Verb::Ping),
        "reload" => Some(Verb::Reload),
        _ => None,
    };
    if let Some(r) = plain {
        // These verbs take no fields: extra ones are refused, not ignored.
        return match words.next() {
            None => Ok(r),
            Some(_) => Err(WireError::UnknownField),
        };
    }
    let mut state: Option<&str> = None;
    let mut elsewhere = false;
    msg.vars.reset();
    let mut value = String::<VALUE_CAP>::new();
    for field in words {
        let eq = field
            .bytes()
            .position(|b| b == b'=')
            .ok_or(WireError::NoEquals)?;
        let (key, raw) = (&field[..eq], &field[eq + 1..]);
        match key {
            "state" => state = Some(raw),
            "elsewhere" => elsewhere = matches!(raw, "1" | "true" | "yes"),
            "reason" => {
                decode_into(raw, &mut value)?;
                elsewhere |= reason_is_elsewhere(&value);
            }
            _ => {
                let var = Var::from_name(key).ok_or(WireError::UnknownField)?;
                // Straight into the variable's slot (a later field of the same name wins, as
                // before).
                decode_into(raw, msg.vars.value_mut(var))?;
            }
        }
    }
    msg.kind = parse_kind(verb, state)?;
    msg.answered_elsewhere = elsewhere;
    Ok(Verb::Msg)
}

/// Does a SIP `Reason` header value say the call was completed elsewhere (`cause=200`)?
pub fn reason_is_elsewhere(reason: &str) -> bool {
    let r = reason.as_bytes();
    r.windows(9).any(|w| w.eq_ignore_ascii_case(b"cause=200"))
        || r.windows(23)
            .any(|w| w.eq_ignore_ascii_case(b"call completed elsewher"))
}

/// Writes `value` percent-encoded for the wire (every byte outside RFC 3986 unreserved).
pub fn encode_value(value: &str, out: &mut impl core::fmt::Write) -> core::fmt::Result {
    super::template::percent_encode(value, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::hook::{CallState, Kind};
    use crate::Event;

    #[test]
    fn parses_transitions_and_direct_events() {
        let Request::Msg(m) =
            parse_request(b"EN1 call state=incoming call_id=x1 remote=1002\r\n").unwrap()
        else {
            panic!()
        };
        assert_eq!(m.kind, Kind::Call(CallState::Incoming));
        assert_eq!(m.vars.get(Var::CallId), "x1");
        let Request::Msg(m) = parse_request(b"EN1 call_established call-id=x2").unwrap() else {
            panic!()
        };
        assert_eq!(m.kind, Kind::Direct(Event::EstablishCall));
        assert_eq!(m.vars.get(Var::CallId), "x2");
        assert_eq!(parse_request(b"EN1 status\n"), Ok(Request::Status));
    }

    #[test]
    fn refuses_malformed_requests() {
        let cases: &[(&[u8], WireError)] = &[
            (b"", WireError::BadVersion),
            (b"EN2 boot", WireError::BadVersion),
            (b"EN1", WireError::NoVerb),
            (b"EN1 ringing", WireError::UnknownVerb),
            (b"EN1 call call_id=1", WireError::MissingState),
            (b"EN1 call state=maybe", WireError::BadState),
            (b"EN1 dnd_on remote", WireError::NoEquals),
            (b"EN1 ping x=1", WireError::UnknownField),
            (b"EN1 reload now", WireError::UnknownField),
            (b"EN1 status all", WireError::UnknownField),
            (b"EN1 dnd_on colour=red", WireError::UnknownField),
            (b"EN1 dnd_on remote=%zz", WireError::BadEscape),
            (b"EN1 dnd_on remote=%", WireError::BadEscape),
            (b"EN1 dnd_on remote=%ff", WireError::NotUtf8),
            (b"EN1 dnd_on\x00", WireError::Control),
            (b"EN1 \xff", WireError::NotUtf8),
        ];
        for (input, want) in cases {
            assert_eq!(
                parse_request(input),
                Err(*want),
                "{:?}",
                String::<64>::try_from(core::str::from_utf8(input).unwrap_or("?"))
            );
        }
        let long = [b'a'; MSG_CAP + 1];
        assert_eq!(parse_request(&long), Err(WireError::TooLong));
    }

    #[test]
    fn parse_into_reuses_the_message() {
        let mut m = Msg::new(Kind::Boot);
        assert_eq!(
            parse_into(
                b"EN1 call state=ended call_id=a remote=1002 elsewhere=1\n",
                &mut m
            ),
            Ok(Verb::Msg)
        );
        assert_eq!(m.kind, Kind::Call(CallState::Ended));
        assert!(m.answered_elsewhere);
        assert_eq!(parse_into(b"EN1 ping", &mut m), Ok(Verb::Ping));
        assert_eq!(parse_into(b"EN1 dnd_on call_id=b", &mut m), Ok(Verb::Msg));
        // Nothing of the earlier message is left.
        let want = Msg::new(Kind::Direct(Event::DndOn)).with(Var::CallId, "b");
        assert_eq!(m, want);
        assert_eq!(
            parse_into(b"EN1 dnd_on remote=%zz", &mut m),
            Err(WireError::BadEscape)
        );
    }

    #[test]
    fn words_are_split_on_runs_of_spaces() {
        let w: std::vec::Vec<&str> = Words("  EN1  dnd_on a=1 b=ü  ").collect();
        assert_eq!(w, ["EN1", "dnd_on", "a=1", "b=ü"]);
        assert_eq!(Words("").next(), None);
        assert_eq!(Words("   ").next(), None);
    }

    #[test]
    fn values_with_and_without_escapes_are_cut_alike() {
        let plain = "ü".repeat(VALUE_CAP);
        let escaped = "%C3%BC".repeat(VALUE_CAP);
        let (mut a, mut b) = (String::<VALUE_CAP>::new(), String::<VALUE_CAP>::new());
        decode_into(&plain, &mut a).unwrap();
        decode_into(&escaped, &mut b).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), VALUE_CAP);
        decode_into("a=b", &mut a).unwrap();
        assert_eq!(a.as_str(), "a=b");
    }

    #[test]
    fn long_values_are_cut_not_refused() {
        let mut line = std::string::String::from("EN1 dnd_on remote=");
        for _ in 0..VALUE_CAP {
            line.push_str("%C3%BC"); // ü
        }
        let Request::Msg(m) = parse_request(line.as_bytes()).unwrap() else {
            panic!()
        };
        assert_eq!(m.vars.get(Var::Remote).len(), VALUE_CAP);
    }

    #[test]
    fn reason_cause_200_means_elsewhere() {
        let Request::Msg(m) =
            parse_request(b"EN1 call state=ended call_id=1 reason=SIP%3Bcause%3D200%3Btext%3D%22Call%20completed%20elsewhere%22").unwrap()
        else {
            panic!()
        };
        assert!(m.answered_elsewhere);
    }
}
