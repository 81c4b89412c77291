//! The spool's record format and the scan that reads it back. Pure: bytes in, records out.
//!
//! ```text
//! record = magic(2) len(u32 LE) crc(u32 LE) body(len)
//! body   = type(u8) boot(u32 LE) seq(u64 LE) payload
//! type   = 1 queued notification (payload: the caller's bytes)
//!        | 2 tombstone: the notification (boot, seq) was delivered, dropped or given up (no payload)
//! ```
//! `crc` is CRC-32 (IEEE, the zlib/PNG one) of `body`. The scan never trusts a length: a record
//! whose magic, length or checksum is wrong is skipped one byte at a time until the next whole
//! record, and the skipped bytes are counted — as corruption between whole records, or as a torn
//! tail after the last one (an append cut short by a crash or power loss).
//!
//! CRC-32 is a 1 KiB table built at compile time rather than a crate: ten lines, no dependency,
//! and it is checked against the standard check value below.

/// The two bytes that start every record.
pub const MAGIC: [u8; 2] = [0xE5, 0x70];
/// magic + len + crc.
pub const HEADER_LEN: usize = 10;
/// type + boot + seq.
pub const BODY_MIN: usize = 13;
/// Largest record body accepted (a notification's URL, body, headers and id fit well within).
pub const RECORD_CAP: usize = 8 * 1024;

pub const TYPE_QUEUED: u8 = 1;
pub const TYPE_TOMBSTONE: u8 = 2;

pub use crate::core::id::Key;

const fn crc_table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

static CRC_TABLE: [u32; 256] = crc_table();

/// CRC-32 (IEEE 802.3, reflected, as zlib's `crc32`).
pub fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c = CRC_TABLE[((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8);
    }
    !c
}

/// Why a record could not be encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// The payload makes the body longer than [`RECORD_CAP`].
    TooBig,
}

/// Appends one record to `out`.
pub fn encode(out: &mut Vec<u8>, ty: u8, key: Key, payload: &[u8]) -> Result<(), EncodeError> {
    let len = BODY_MIN + payload.len();
    if len > RECORD_CAP {
        return Err(EncodeError::TooBig);
    }
    let start = out.len();
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.push(ty);
    out.extend_from_slice(&key.boot.to_le_bytes());
    out.extend_from_slice(&key.seq.to_le_bytes());
    out.extend_from_slice(payload);
    let crc = crc32(&out[start + HEADER_LEN..]);
    out[start + 6..start + 10].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// One whole record found by [`scan`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found<'a> {
    /// Offset of its magic in the scanned bytes.
    pub offset: usize,
    /// Its whole length, header included.
    pub len: usize,
    pub ty: u8,
    pub key: Key,
    pub payload: &'a [u8],
}

/// The record at `at`, if one is whole there.
pub fn decode_at(buf: &[u8], at: usize) -> Option<Found<'_>> {
    let h = buf.get(at..at + HEADER_LEN)?;
    if h[..2] != MAGIC {
        return None;
    }
    let len = u32::from_le_bytes([h[2], h[3], h[4], h[5]]) as usize;
    if !(BODY_MIN..=RECORD_CAP).contains(&len) {
        return None;
    }
    let crc = u32::from_le_bytes([h[6], h[7], h[8], h[9]]);
    let body = buf.get(at + HEADER_LEN..at + HEADER_LEN + len)?;
    if crc32(body) != crc {
        return None;
    }
    let ty = body[0];
    if ty != TYPE_QUEUED && ty != TYPE_TOMBSTONE {
        return None;
    }
    let boot = u32::from_le_bytes([body[1], body[2], body[3], body[4]]);
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&body[5..13]);
    Some(Found {
        offset: at,
        len: HEADER_LEN + len,
        ty,
        key: Key {
            boot,
            seq: u64::from_le_bytes(seq),
        },
        payload: &body[BODY_MIN..],
    })
}

/// What a scan skipped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Damage {
    /// Stretches of bad bytes between whole records.
    pub corrupt: u64,
    pub corrupt_bytes: u64,
    /// 1 if bytes after the last whole record were not a whole record (a cut-off append).
    pub torn: u64,
    pub torn_bytes: u64,
}

/// Walks `buf`, calling `f` for every whole record in order; returns what was skipped.
pub fn scan<'a>(buf: &'a [u8], mut f: impl FnMut(Found<'a>)) -> Damage {
    let mut d = Damage::default();
    let mut at = 0;
    let mut bad_from: Option<usize> = None;
    while at < buf.len() {
        match decode_at(buf, at) {
            Some(r) => {
                if let Some(from) = bad_from.take() {
                    d.corrupt += 1;
                    d.corrupt_bytes += (at - from) as u64;
                }
                at += r.len;
                f(r);
            }
            None => {
                bad_from.get_or_insert(at);
                // Resynchronise on the next magic.
                at = match buf[at + 1..].windows(2).position(|w| w == MAGIC) {
                    Some(p) => at + 1 + p,
                    None => buf.len(),
                };
            }
        }
    }
    if let Some(from) = bad_from {
        d.torn = 1;
        d.torn_bytes = (buf.len() - from) as u64;
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn round_trip_and_limits() {
        let mut b = Vec::new();
        let k = Key {
            boot: 7,
            seq: 1 << 40,
        };
        encode(&mut b, TYPE_QUEUED, k, b"hello").unwrap();
        encode(&mut b, TYPE_TOMBSTONE, k, b"").unwrap();
        let mut got = Vec::new();
        let d = scan(&b, |r| got.push((r.ty, r.key, r.payload.to_vec())));
        assert_eq!(d, Damage::default());
        assert_eq!(got, [(1, k, b"hello".to_vec()), (2, k, vec![])]);
        let big = vec![0u8; RECORD_CAP - BODY_MIN + 1];
        assert_eq!(encode(&mut b, 1, k, &big), Err(EncodeError::TooBig));
        encode(&mut b, 1, k, &big[1..]).unwrap();
    }

    #[test]
    fn garbage_between_and_after() {
        let mut b = b"\xE5\x70junk".to_vec();
        encode(&mut b, 1, Key { boot: 1, seq: 1 }, b"a").unwrap();
        b.extend_from_slice(&[0xE5; 7]);
        encode(&mut b, 1, Key { boot: 1, seq: 2 }, b"b").unwrap();
        let whole = b.len();
        encode(&mut b, 1, Key { boot: 1, seq: 3 }, b"c").unwrap();
        b.truncate(b.len() - 1);
        let mut n = 0;
        let d = scan(&b, |_| n += 1);
        assert_eq!(n, 2);
        assert_eq!((d.corrupt, d.corrupt_bytes), (2, 6 + 7));
        assert_eq!((d.torn, d.torn_bytes), (1, (b.len() - whole) as u64));
    }

    #[test]
    fn a_flipped_bit_anywhere_loses_only_that_record() {
        let mut b = Vec::new();
        for s in 0..3 {
            encode(&mut b, 1, Key { boot: 1, seq: s }, b"payload").unwrap();
        }
        let rec = b.len() / 3;
        for i in rec..2 * rec {
            for bit in 0..8 {
                let mut c = b.clone();
                c[i] ^= 1 << bit;
                let mut seqs = Vec::new();
                let d = scan(&c, |r| seqs.push(r.key.seq));
                assert_eq!(seqs, [0, 2], "byte {i} bit {bit}");
                assert_eq!(d.corrupt, 1);
            }
        }
    }
}
