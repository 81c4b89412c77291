//! A notification as the spool stores it: everything needed to send it again after a restart
//! with the same delivery id — except secrets. Credentials and the signing secret are not
//! written to flash; they come from the config in force when the notification is replayed.
//!
//! ```text
//! payload = version(1) event(u8) method(u8) content_type(u8) max_attempts(u32 LE)
//!           id(u8 len + bytes) url(u16 LE len + bytes) body(u16 len + bytes) headers(u16 len + bytes)
//! ```

use crate::core::bytes::Reader;
use crate::core::config::{Method, FORM, JSON, TEXT};
use crate::core::event::Event;
use crate::core::id::Key;
use crate::core::outbox::Notification;

const VERSION: u8 = 1;

fn content_type_code(ct: &str) -> u8 {
    match ct {
        "" => 0,
        FORM => 1,
        JSON => 2,
        TEXT => 3,
        _ => 0,
    }
}

fn content_type_of(code: u8) -> Option<&'static str> {
    Some(match code {
        0 => "",
        1 => FORM,
        2 => JSON,
        3 => TEXT,
        _ => return None,
    })
}

/// The bytes stored for `n`.
pub fn encode(n: &Notification) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(16 + n.id.len() + n.url.len() + n.body.len() + n.headers.len());
    out.push(VERSION);
    out.push(n.event.index() as u8);
    out.push(match n.method {
        Method::Get => 0,
        Method::Post => 1,
    });
    out.push(content_type_code(n.content_type));
    out.extend_from_slice(&n.max_attempts.to_le_bytes());
    out.push(n.id.len() as u8);
    out.extend_from_slice(n.id.as_bytes());
    for s in [n.url.as_str(), n.body.as_str(), n.headers.as_str()] {
        out.extend_from_slice(&(s.len() as u16).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    out
}

/// The notification stored under `key`, or `None` if the bytes are not one (another version,
/// a field over its capacity, not UTF-8): the caller counts and drops it.
pub fn decode(key: Key, bytes: &[u8]) -> Option<Notification> {
    let mut r = Reader(bytes);
    if r.u8()? != VERSION {
        return None;
    }
    let mut n = Notification::empty();
    n.key = key;
    n.event = *Event::ALL.get(r.u8()? as usize)?;
    n.method = match r.u8()? {
        0 => Method::Get,
        1 => Method::Post,
        _ => return None,
    };
    n.content_type = content_type_of(r.u8()?)?;
    let a = r.take(4)?;
    n.max_attempts = u32::from_le_bytes([a[0], a[1], a[2], a[3]]);
    let id_len = r.u8()? as usize;
    n.id.push_str(std::str::from_utf8(r.take(id_len)?).ok()?)
        .ok()?;
    n.url.push_str(r.str16()?).ok()?;
    n.body.push_str(r.str16()?).ok()?;
    n.headers.push_str(r.str16()?).ok()?;
    if !r.is_empty() || n.url.is_empty() {
        return None;
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_without_secrets() {
        let mut n = Notification::empty();
        n.event = Event::TerminateCall;
        n.method = Method::Post;
        n.content_type = JSON;
        n.max_attempts = 0;
        n.key = Key { boot: 9, seq: 12 };
        n.id.push_str("000b82123456-9-12").unwrap();
        n.url.push_str("https://crm.example/cdr?x=%C3%A9").unwrap();
        n.body.push_str("{\"secs\":61}").unwrap();
        n.headers.push_str("X-Token: abc\n").unwrap();
        let mut c = crate::core::template::Credentials::default();
        c.user.push_str("phone").unwrap();
        c.password.push_str("pw-never-on-flash").unwrap();
        n.credentials = Some(c);
        n.secret = crate::core::secret::Secret::new(b"sig-never-on-flash");
        let bytes = encode(&n);
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("never-on-flash"), "a secret was stored");
        let back = decode(n.key, &bytes).unwrap();
        let mut want = n.clone();
        want.credentials = None;
        want.secret = None;
        assert_eq!(back, want);
        // Every truncation and a trailing byte are refused, never a panic.
        for cut in 0..bytes.len() {
            assert!(decode(n.key, &bytes[..cut]).is_none(), "cut {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(n.key, &longer).is_none());
        let mut bad = bytes.clone();
        bad[1] = 200;
        assert!(decode(n.key, &bad).is_none());
    }
}
