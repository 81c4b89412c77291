//! The server-side HTTP layer against arbitrary bytes: the head parser and a connection reading
//! successive requests out of the same bytes, delivered in pieces of a size the input chooses.
//! Nothing may panic; a parsed head must parse the same from its own bytes; no read may take
//! more than the limits allow.
#![no_main]

use std::io::{self, Read};

use event_notify::http::{Connection, Head, ReadError, MAX_BODY, MAX_HEADERS};
use event_notify::listen::render;
use libfuzzer_sys::fuzz_target;

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

fuzz_target!(|data: &[u8]| {
    let Some((&piece, input)) = data.split_first() else {
        return;
    };
    if let Ok(Some((head, len))) = Head::parse_prefix(input, MAX_HEADERS) {
        assert!(len <= input.len());
        let again = Head::parse_prefix(&input[..len], MAX_HEADERS);
        assert_eq!(again.ok().flatten().map(|(h, _)| h), Some(head.clone()));
        assert!(head.headers.len() <= MAX_HEADERS);
        let _ = head.body_kind();
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
                let _ = render(&head, &body);
            }
            Err(_) => return,
        }
    }
});
