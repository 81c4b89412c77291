//! Request signing: HMAC-SHA256 over what a receiver can check, in the style of the payment and
//! code-hosting webhooks (a `t=` timestamp and a `v1=` hex signature in one header).
//!
//! The signed bytes are `t "." id "." METHOD "." target "." body`:
//! - `t`: Unix seconds when this attempt was sent (each retry is signed anew, so a notification
//!   replayed from the spool hours later is still inside the receiver's window);
//! - `id`: the delivery id ([`ID_HEADER`]), so a captured request cannot be replayed under a new
//!   id to slip past the receiver's de-duplication;
//! - `METHOD` and `target` (the request line's origin-form target, `/path?query`, exactly as
//!   sent): GET receivers get their data in the query, so the query must be signed too;
//! - `body`: the raw body bytes (empty for GET).
//!
//! Pure: no clock (the caller passes `now`), no I/O. The secret is only ever an input.

pub use crate::core::secret::{Secret, SECRET_CAP};
use hmac::{digest::KeyInit, Hmac, Mac};
use sha2::{Digest, Sha256};

/// The header carrying the delivery id.
pub const ID_HEADER: &str = "X-Event-Notify-Id";
/// The same id under the name of the IETF idempotency-key draft, which receiver frameworks know.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";
/// The header carrying `t=<unix seconds>,v1=<hex HMAC-SHA256>`.
pub const SIGNATURE_HEADER: &str = "X-Event-Notify-Signature";
/// How far from the receiver's clock a timestamp may be (either way) before it is refused:
/// five minutes, as the payment webhooks use.
pub const REPLAY_WINDOW_S: u64 = 300;
/// Longest signature header value accepted by [`verify`] (several `v1=` during a key rotation).
pub const SIGNATURE_HEADER_CAP: usize = 512;

/// What `listen --secret` prints under a request: `  signature ok`, or
/// `  signature refused: <why>`. `signature` and `id` are the request's header values.
#[allow(clippy::too_many_arguments)]
pub fn check_line(
    secret: &Secret,
    signature: Option<&str>,
    id: Option<&str>,
    method: &str,
    target: &str,
    body: &[u8],
    now: u64,
) -> String {
    let r = match signature {
        None => Err(VerifyError::Missing),
        Some(h) => verify(
            secret.expose(),
            h,
            id.unwrap_or(""),
            method,
            target,
            body,
            now,
            REPLAY_WINDOW_S,
        ),
    };
    match r {
        Ok(()) => "  signature ok\n".to_string(),
        Err(e) => format!("  signature refused: {e}\n"),
    }
}

type HmacSha256 = Hmac<Sha256>;

/// A signature header value: `t=1795333428,v1=` + 64 hex digits.
pub type HeaderValue = heapless::String<96>;

fn mac(secret: &[u8], t: u64, id: &str, method: &str, target: &str, body: &[u8]) -> HmacSha256 {
    // RFC 2104: a key longer than the block is hashed first, a shorter one is zero-padded to
    // the block. Done here, so the infallible block-sized constructor serves every length.
    let mut key = [0u8; 64];
    if secret.len() > key.len() {
        key[..32].copy_from_slice(&Sha256::digest(secret));
    } else {
        key[..secret.len()].copy_from_slice(secret);
    }
    let mut m = <HmacSha256 as KeyInit>::new(&key.into());
    let mut digits = heapless::String::<20>::new();
    let _ = core::fmt::Write::write_fmt(&mut digits, format_args!("{t}"));
    for part in [
        digits.as_bytes(),
        id.as_bytes(),
        method.as_bytes(),
        target.as_bytes(),
    ] {
        m.update(part);
        m.update(b".");
    }
    m.update(body);
    m
}

/// The header value for one attempt: `t=<t>,v1=<hex>`.
///
/// ```
/// use event_notify::sign::{sign, verify};
/// let h = sign(b"whsec", 1_700_000_000, "0a0b0c0d0e0f-3-17", "POST", "/cdr", b"{}");
/// assert!(h.starts_with("t=1700000000,v1="));
/// assert_eq!(verify(b"whsec", &h, "0a0b0c0d0e0f-3-17", "POST", "/cdr", b"{}", 1_700_000_010, 300), Ok(()));
/// ```
pub fn sign(
    secret: &[u8],
    t: u64,
    id: &str,
    method: &str,
    target: &str,
    body: &[u8],
) -> HeaderValue {
    let tag = mac(secret, t, id, method, target, body)
        .finalize()
        .into_bytes();
    let mut h = HeaderValue::new();
    let _ = core::fmt::Write::write_fmt(&mut h, format_args!("t={t},v1="));
    for b in tag {
        let _ = h.push(HEX[(b >> 4) as usize] as char);
        let _ = h.push(HEX[(b & 15) as usize] as char);
    }
    h
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Why [`verify`] refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerifyError {
    /// No signature header.
    Missing,
    /// The header is not `t=<digits>,v1=<64 hex>[,v1=...]`, or is too long.
    Malformed,
    /// The timestamp is this many seconds old, more than the window allows.
    TooOld(u64),
    /// The timestamp is this many seconds ahead of the receiver's clock, beyond the window.
    InFuture(u64),
    /// No `v1=` signature matches: another secret, or the request was changed.
    Mismatch,
}

impl core::fmt::Display for VerifyError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            VerifyError::Missing => write!(f, "no {SIGNATURE_HEADER} header"),
            VerifyError::Malformed => write!(f, "malformed {SIGNATURE_HEADER} header"),
            VerifyError::TooOld(s) => write!(f, "timestamp {s} s old, outside the replay window"),
            VerifyError::InFuture(s) => {
                write!(
                    f,
                    "timestamp {s} s in the future, outside the replay window"
                )
            }
            VerifyError::Mismatch => {
                f.write_str("signature mismatch (wrong secret, or the request was changed)")
            }
        }
    }
}

fn unhex(s: &[u8]) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in s.chunks(2).enumerate() {
        let d = |c: u8| (c as char).to_digit(16).map(|v| v as u8);
        out[i] = d(pair[0])? << 4 | d(pair[1])?;
    }
    Some(out)
}

/// Checks a signature header against the request as received. `now` is the receiver's Unix
/// time; a timestamp more than `window_s` away from it is refused before any HMAC is computed.
/// Several `v1=` entries are accepted (any one may match), for a secret rotation. The comparison
/// is constant-time.
#[allow(clippy::too_many_arguments)]
pub fn verify(
    secret: &[u8],
    header: &str,
    id: &str,
    method: &str,
    target: &str,
    body: &[u8],
    now: u64,
    window_s: u64,
) -> Result<(), VerifyError> {
    let header = header.trim();
    if header.is_empty() {
        return Err(VerifyError::Missing);
    }
    if header.len() > SIGNATURE_HEADER_CAP {
        return Err(VerifyError::Malformed);
    }
    let mut t: Option<u64> = None;
    let mut sigs = 0usize;
    for part in header.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("t=") {
            if t.is_some() || v.is_empty() || v.len() > 19 || !v.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(VerifyError::Malformed);
            }
            t = v.parse().ok();
        } else if let Some(v) = part.strip_prefix("v1=") {
            unhex(v.as_bytes()).ok_or(VerifyError::Malformed)?;
            sigs += 1;
        }
        // Other schemes (v0=, a future v2=) are ignored, as the webhook conventions do.
    }
    let Some(t) = t else {
        return Err(VerifyError::Malformed);
    };
    if sigs == 0 {
        return Err(VerifyError::Malformed);
    }
    if t + window_s < now {
        return Err(VerifyError::TooOld(now - t));
    }
    if t > now + window_s {
        return Err(VerifyError::InFuture(t - now));
    }
    let m = mac(secret, t, id, method, target, body);
    for part in header.split(',') {
        if let Some(tag) = part
            .trim()
            .strip_prefix("v1=")
            .and_then(|v| unhex(v.as_bytes()))
        {
            if m.clone().verify_slice(&tag).is_ok() {
                return Ok(());
            }
        }
    }
    Err(VerifyError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "000b82123456-7-42";

    #[test]
    fn known_answer() {
        // Computed independently: python3 -c 'import hmac,hashlib;print(hmac.new(b"s3cret",
        // b"1700000000.000b82123456-7-42.GET./in?from=1002.",hashlib.sha256).hexdigest())'
        let h = sign(b"s3cret", 1_700_000_000, ID, "GET", "/in?from=1002", b"");
        assert_eq!(
            h.as_str(),
            "t=1700000000,v1=1767c85480005eeb07dde1883ef5039cbe3bdb19f0917be674766b441ca64dbb"
        );
        // Keys longer than the block (hashed first) and exactly the block.
        let long = sign(&[b'k'; 100], 5, "i", "POST", "/x", b"body");
        assert_eq!(
            &long[long.len() - 64..],
            "9754527f8f1d09b471c13961c3ca782e795b8ebe6bf86cc761c6ad61859ce2a2"
        );
        let block = sign(&[b'k'; 64], 5, "i", "POST", "/x", b"body");
        assert_eq!(
            &block[block.len() - 64..],
            "d8e040fad8a912cd3f659b22ec3c912f26c64eca8dd94fd7d2ee4be3c6e6915f"
        );
    }

    #[test]
    fn good_changed_wrong_old() {
        let t = 1_800_000_000;
        let h = sign(b"k", t, ID, "POST", "/cdr?x=1", b"{\"a\":1}");
        let ok = |h: &str, id: &str, m: &str, tg: &str, b: &[u8], now: u64| {
            verify(b"k", h, id, m, tg, b, now, REPLAY_WINDOW_S)
        };
        assert_eq!(ok(&h, ID, "POST", "/cdr?x=1", b"{\"a\":1}", t), Ok(()));
        assert_eq!(
            ok(&h, ID, "POST", "/cdr?x=1", b"{\"a\":1}", t + 300),
            Ok(())
        );
        assert_eq!(
            ok(&h, ID, "POST", "/cdr?x=1", b"{\"a\":1}", t - 300),
            Ok(())
        );
        assert_eq!(
            ok(&h, ID, "POST", "/cdr?x=1", b"{\"a\":2}", t),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            ok(&h, ID, "POST", "/cdr?x=2", b"{\"a\":1}", t),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            ok(&h, ID, "GET", "/cdr?x=1", b"{\"a\":1}", t),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            ok(&h, "other-1-1", "POST", "/cdr?x=1", b"{\"a\":1}", t),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(b"K", &h, ID, "POST", "/cdr?x=1", b"{\"a\":1}", t, 300),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            ok(&h, ID, "POST", "/cdr?x=1", b"{\"a\":1}", t + 301),
            Err(VerifyError::TooOld(301))
        );
        assert_eq!(
            ok(&h, ID, "POST", "/cdr?x=1", b"{\"a\":1}", t - 400),
            Err(VerifyError::InFuture(400))
        );
    }

    #[test]
    fn secret_is_never_shown_and_lines() {
        let s = Secret::new(b"hunter2-signing").unwrap();
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert!(Secret::new(b"").is_none());
        assert!(Secret::new(&[b'x'; SECRET_CAP + 1]).is_none());
        let h = sign(s.expose(), 100, ID, "GET", "/a", b"");
        assert_eq!(
            check_line(&s, Some(&h), Some(ID), "GET", "/a", b"", 100),
            "  signature ok\n"
        );
        let no = check_line(&s, None, Some(ID), "GET", "/a", b"", 100);
        assert_eq!(
            no,
            "  signature refused: no X-Event-Notify-Signature header\n"
        );
        let old = check_line(&s, Some(&h), Some(ID), "GET", "/a", b"", 1000);
        assert_eq!(
            old,
            "  signature refused: timestamp 900 s old, outside the replay window\n"
        );
        assert!(!old.contains("hunter2"));
    }

    #[test]
    fn rotation_and_malformed() {
        let t = 1_800_000_000;
        let new = sign(b"new", t, ID, "GET", "/", b"");
        let old = sign(b"old", t, ID, "GET", "/", b"");
        let both = format!("{},{}", new, &old[old.find("v1=").unwrap()..]);
        assert_eq!(verify(b"old", &both, ID, "GET", "/", b"", t, 300), Ok(()));
        assert_eq!(verify(b"new", &both, ID, "GET", "/", b"", t, 300), Ok(()));
        for bad in [
            "t=,v1=00",
            "v1=0000000000000000000000000000000000000000000000000000000000000000",
            "t=5",
            "t=5,v1=zz",
            "t=-5,v1=0000000000000000000000000000000000000000000000000000000000000000",
            "t=99999999999999999999999,v1=0000000000000000000000000000000000000000000000000000000000000000",
        ] {
            assert_eq!(verify(b"k", bad, ID, "GET", "/", b"", t, 300), Err(VerifyError::Malformed), "{bad}");
        }
        assert_eq!(
            verify(b"k", " ", ID, "GET", "/", b"", t, 300),
            Err(VerifyError::Missing)
        );
        let long = "t=1,".to_string() + &"x".repeat(600);
        assert_eq!(
            verify(b"k", &long, ID, "GET", "/", b"", t, 300),
            Err(VerifyError::Malformed)
        );
        // An early timestamp must not underflow.
        let h0 = sign(b"k", 0, ID, "GET", "/", b"");
        assert_eq!(verify(b"k", &h0, ID, "GET", "/", b"", 0, 300), Ok(()));
        assert!(matches!(
            verify(b"k", &h0, ID, "GET", "/", b"", u64::MAX / 2, 300),
            Err(VerifyError::TooOld(_))
        ));
    }
}
