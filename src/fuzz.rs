//! Entry points of the fuzz targets (`fuzz/`, cargo-fuzz on nightly), shared with the stable
//! replay of the committed corpus (`tests/it/fuzz_corpus.rs`): each takes arbitrary bytes and must
//! never panic, loop or grow without bound.

use crate::baresip::Decoder;
use crate::core::config::Config;
use crate::core::template::{Encoding, Template};
use crate::core::var::{Var, Vars};
use crate::core::wire;
use crate::http::{Connection, Head, ReadError, MAX_BODY, MAX_HEADERS};
#[cfg(feature = "listen")]
use crate::listen::render;
use std::io::{self, Read};

/// The socket line parser (`EN1 ...`).
pub fn wire_line(data: &[u8]) {
    let _ = wire::parse_request(data);
}

/// The config loader: JSON model and validation (no file access).
pub fn config(data: &[u8]) {
    if let Ok(text) = core::str::from_utf8(data) {
        if let Ok((cfg, _)) = Config::from_json(text) {
            // A loaded config's templates expand without panicking.
            let mut vars = Vars::new();
            for v in Var::ALL {
                vars.set(v, "x&y=%\"\\ z");
            }
            for e in cfg.events.iter().flatten() {
                let mut url = heapless::String::<1024>::new();
                let _ = e.url.expand(&vars, Encoding::Percent, &mut url);
                if let Some(b) = &e.body {
                    let mut body = heapless::String::<4096>::new();
                    let _ = b.expand(&vars, e.body_encoding, &mut body);
                }
            }
        }
    }
}

/// Template parsing and expansion: the bytes up to the first NUL are the template, each later
/// NUL-separated part the value of the next variable.
pub fn template(data: &[u8]) {
    let mut parts = data.split(|&b| b == 0);
    let Some(src) = parts.next().and_then(|s| core::str::from_utf8(s).ok()) else {
        return;
    };
    let mut vars = Vars::new();
    for (v, value) in Var::ALL.iter().zip(parts) {
        vars.set(*v, &String::from_utf8_lossy(value));
    }
    let mut small = heapless::String::<64>::new();
    let mut big = heapless::String::<4096>::new();
    if let Ok((t, creds)) = Template::parse_url(src) {
        let _ = format!("{creds:?}");
        let _ = t.expand(&vars, Encoding::Percent, &mut small);
        if t.expand(&vars, Encoding::Percent, &mut big).is_ok() {
            // An expanded URL never carries user-info: its authority has no '@' (the typed one
            // was taken out; a value's '@' is percent-encoded). The same text may appear in
            // the query if the admin typed it there: that is not a credential.
            let start = big.find("://").map_or(0, |i| i + 3);
            let end = big[start..]
                .find(['/', '?', '#'])
                .map_or(big.len(), |i| start + i);
            assert!(!big[start..end].contains('@'), "user-info in {big}");
        }
    }
    if let Ok(t) = Template::parse_body(src) {
        for enc in [Encoding::Percent, Encoding::Json] {
            small.clear();
            big.clear();
            let _ = t.expand(&vars, enc, &mut small);
            let _ = t.expand(&vars, enc, &mut big);
        }
    }
}

/// The baresip netstring decoder: the first byte sets the read size, the rest arrives in reads
/// of that size.
pub fn netstring(data: &[u8]) {
    let Some((&size, mut rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(size).max(1);
    let mut d = Decoder::new();
    let mut frames = 0usize;
    while !rest.is_empty() {
        let spare = d.spare();
        assert!(!spare.is_empty(), "decoder has no room after draining");
        let n = chunk.min(spare.len()).min(rest.len());
        spare[..n].copy_from_slice(&rest[..n]);
        d.filled(n);
        rest = &rest[n..];
        loop {
            match d.next_frame() {
                None => break,
                Some(Ok(_)) => frames += 1,
                Some(Err(e)) if e.is_fatal() => {
                    d.reset();
                    break;
                }
                Some(Err(_)) => {}
            }
            assert!(frames <= data.len(), "more frames than bytes");
        }
    }
}

/// Hands out the input in pieces of a fixed size.
struct Pieces<'a>(&'a [u8], usize);

impl Read for Pieces<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.1.min(buf.len()).min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

/// The server-side HTTP layer (written by the house helper): the head parser and a connection
/// reading successive requests out of the same bytes, delivered in pieces of a size the input
/// chooses. Nothing may panic; a parsed head must parse the same from its own bytes; no read may
/// take more than the limits allow.
pub fn http_head(data: &[u8]) {
    let Some((&piece, input)) = data.split_first() else {
        return;
    };
    if let Ok(Some((head, len))) = Head::parse_prefix(input, MAX_HEADERS) {
        assert!(len <= input.len());
        let again = Head::parse_prefix(&input[..len], MAX_HEADERS);
        assert_eq!(again.ok().flatten().map(|(h, _)| h), Some(head.clone()));
        assert!(head.headers.len() <= MAX_HEADERS);
        let _ = head.body_kind();
        #[cfg(feature = "listen")]
        let _ = render(&head, b"");
    }
    let mut conn = Connection::new(Pieces(input, 1 + usize::from(piece % 16)));
    loop {
        let head = match conn.read_head() {
            Ok(Some(head)) => head,
            Ok(None) | Err(ReadError::Io(_)) | Err(ReadError::Http(_)) => return,
        };
        let Ok(kind) = head.body_kind() else { return };
        match conn.read_body(kind) {
            Ok(body) => {
                assert!(body.len() <= MAX_BODY);
                #[cfg(feature = "listen")]
                let _ = render(&head, &body);
            }
            Err(_) => return,
        }
    }
}

/// The importers (`event-notify import`): the first byte picks the format (0 detect, 1 Yealink,
/// 2 Snom, 3 Grandstream; bit 2 also merges into a fixed config), the rest is the file. Every
/// import that succeeds must give a config `check` accepts, and no report line may carry the
/// file's password-like values.
#[cfg(feature = "import")]
pub fn import(data: &[u8]) {
    use crate::import::{self, Vendor};
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = core::str::from_utf8(rest) else {
        return;
    };
    let from = match sel & 3 {
        1 => Some(Vendor::Yealink),
        2 => Some(Vendor::Snom),
        3 => Some(Vendor::Grandstream),
        _ => None,
    };
    let base: serde_json::Value = serde_json::json!({
        "events": {"terminate_call": {"url": "http://h/end", "password": "fuzz-secret"}},
        "delivery": {"attempts": 3}
    });
    let base = (sel & 4 != 0).then_some(&base);
    if let Ok(i) = import::import(text, from, base) {
        assert!(
            Config::from_json(&i.config_json).is_ok(),
            "an import check refuses"
        );
        for f in &i.report {
            assert!(
                !f.to_string().contains("fuzz-secret"),
                "a secret in the report"
            );
        }
    }
}

/// The loop sender's response parser (head, then body by its framing) against arbitrary bytes,
/// fed in pieces of the size the first byte chooses.
pub fn http_response(data: &[u8]) {
    crate::daemon::deliver::fuzz_response(data);
}
