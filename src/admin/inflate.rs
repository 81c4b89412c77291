//! A small inflater (RFC 1951, after Mark Adler's `puff`): the admin page's files are stored
//! gzip-compressed and a client that does not accept gzip gets them inflated. Chosen over a
//! general-purpose crate for size (measured on the armv7 flash-size build: 4 KiB smaller than
//! miniz_oxide's inflater, whose cost was first guessed at ~25 KB); it is slower, which does not
//! matter for ~70 KB served now and then. Every read is bounds-checked: a corrupt
//! stream is an error, never a panic, and the output never exceeds its cap.

/// Why a stream could not be inflated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InflateError {
    /// The input ended inside a block.
    Truncated,
    /// A malformed block (bad block type, stored length check, code lengths, distance).
    Corrupt,
    /// The output would exceed the cap.
    TooLarge,
}

/// The longest Huffman code of deflate (RFC 1951; a property of the format, not a capacity).
const CODE_BITS: usize = 15;

struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
    buf: u32,
    cnt: u32,
}

impl Bits<'_> {
    /// `need` (0..=16) bits, least significant first.
    fn bits(&mut self, need: u32) -> Result<u32, InflateError> {
        while self.cnt < need {
            let b = *self.data.get(self.pos).ok_or(InflateError::Truncated)?;
            self.pos += 1;
            self.buf |= u32::from(b) << self.cnt;
            self.cnt += 8;
        }
        let v = self.buf & ((1u32 << need) - 1);
        self.buf >>= need;
        self.cnt -= need;
        Ok(v)
    }
}

/// A canonical Huffman code: how many codes of each length, and the symbols in code order.
struct Huffman {
    count: [u16; CODE_BITS + 1],
    symbol: [u16; 288],
}

impl Huffman {
    fn new(lengths: &[u8]) -> Result<Huffman, InflateError> {
        let mut h = Huffman {
            count: [0; CODE_BITS + 1],
            symbol: [0; 288],
        };
        if lengths.len() > h.symbol.len() {
            return Err(InflateError::Corrupt);
        }
        for &l in lengths {
            h.count[usize::from(l)] += 1;
        }
        // Over-subscribed lengths make no code; incomplete ones are allowed (a code that is
        // never assigned fails when it is read).
        let mut left: i32 = 1;
        for len in 1..=CODE_BITS {
            left = (left << 1) - i32::from(h.count[len]);
            if left < 0 {
                return Err(InflateError::Corrupt);
            }
        }
        let mut offs = [0u16; CODE_BITS + 1];
        for len in 1..CODE_BITS {
            offs[len + 1] = offs[len] + h.count[len];
        }
        for (sym, &l) in lengths.iter().enumerate() {
            if l != 0 {
                let o = &mut offs[usize::from(l)];
                h.symbol[usize::from(*o)] = sym as u16;
                *o += 1;
            }
        }
        Ok(h)
    }

    fn decode(&self, b: &mut Bits) -> Result<u16, InflateError> {
        let (mut code, mut first, mut index) = (0i32, 0i32, 0i32);
        for len in 1..=CODE_BITS {
            code |= b.bits(1)? as i32;
            let count = i32::from(self.count[len]);
            if code - count < first {
                return self
                    .symbol
                    .get((index + code - first) as usize)
                    .copied()
                    .ok_or(InflateError::Corrupt);
            }
            index += count;
            first = (first + count) << 1;
            code <<= 1;
        }
        Err(InflateError::Corrupt)
    }
}

const LEN_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
const LEN_EXTRA: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
const DIST_BASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
    2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
];
const DIST_EXTRA: [u8; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];

/// The order in which a dynamic block lists the code-length code's lengths.
const ORDER: [usize; 19] = [
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
];

/// Inflates a raw deflate stream (no zlib or gzip framing) into at most `cap` bytes.
pub fn inflate(data: &[u8], cap: usize) -> Result<Vec<u8>, InflateError> {
    let mut b = Bits {
        data,
        pos: 0,
        buf: 0,
        cnt: 0,
    };
    let mut out = Vec::new();
    loop {
        let last = b.bits(1)? == 1;
        match b.bits(2)? {
            0 => stored(&mut b, &mut out, cap)?,
            1 => {
                let mut l = [8u8; 288];
                l[144..256].fill(9);
                l[256..280].fill(7);
                let (lit, dist) = (Huffman::new(&l)?, Huffman::new(&[5; 30])?);
                codes(&mut b, &mut out, cap, &lit, &dist)?;
            }
            2 => {
                let (lit, dist) = dynamic(&mut b)?;
                codes(&mut b, &mut out, cap, &lit, &dist)?;
            }
            _ => return Err(InflateError::Corrupt),
        }
        if last {
            return Ok(out);
        }
    }
}

fn stored(b: &mut Bits, out: &mut Vec<u8>, cap: usize) -> Result<(), InflateError> {
    // The rest of the current byte is padding.
    b.buf = 0;
    b.cnt = 0;
    let head = b
        .data
        .get(b.pos..b.pos + 4)
        .ok_or(InflateError::Truncated)?;
    let len = usize::from(u16::from_le_bytes([head[0], head[1]]));
    if u16::from_le_bytes([head[2], head[3]]) != !(len as u16) {
        return Err(InflateError::Corrupt);
    }
    b.pos += 4;
    let bytes = b
        .data
        .get(b.pos..b.pos + len)
        .ok_or(InflateError::Truncated)?;
    if out.len() + len > cap {
        return Err(InflateError::TooLarge);
    }
    out.extend_from_slice(bytes);
    b.pos += len;
    Ok(())
}

fn dynamic(b: &mut Bits) -> Result<(Huffman, Huffman), InflateError> {
    let nlen = b.bits(5)? as usize + 257;
    let ndist = b.bits(5)? as usize + 1;
    let ncode = b.bits(4)? as usize + 4;
    if nlen > 286 || ndist > 30 {
        return Err(InflateError::Corrupt);
    }
    let mut l = [0u8; 19];
    for &i in &ORDER[..ncode] {
        l[i] = b.bits(3)? as u8;
    }
    let lencode = Huffman::new(&l)?;
    let mut lengths = [0u8; 286 + 30];
    let mut i = 0;
    while i < nlen + ndist {
        let sym = lencode.decode(b)?;
        let (value, repeat) = match sym {
            0..=15 => (sym as u8, 1),
            16 => match i.checked_sub(1) {
                Some(p) => (lengths[p], 3 + b.bits(2)? as usize),
                None => return Err(InflateError::Corrupt),
            },
            17 => (0, 3 + b.bits(3)? as usize),
            _ => (0, 11 + b.bits(7)? as usize),
        };
        if i + repeat > nlen + ndist {
            return Err(InflateError::Corrupt);
        }
        lengths[i..i + repeat].fill(value);
        i += repeat;
    }
    // A block without an end-of-block code could not end.
    if lengths[256] == 0 {
        return Err(InflateError::Corrupt);
    }
    Ok((
        Huffman::new(&lengths[..nlen])?,
        Huffman::new(&lengths[nlen..nlen + ndist])?,
    ))
}

fn codes(
    b: &mut Bits,
    out: &mut Vec<u8>,
    cap: usize,
    lit: &Huffman,
    dist: &Huffman,
) -> Result<(), InflateError> {
    loop {
        let sym = usize::from(lit.decode(b)?);
        if sym < 256 {
            if out.len() >= cap {
                return Err(InflateError::TooLarge);
            }
            out.push(sym as u8);
        } else if sym == 256 {
            return Ok(());
        } else {
            let s = sym - 257;
            let (base, extra) = match (LEN_BASE.get(s), LEN_EXTRA.get(s)) {
                (Some(&base), Some(&extra)) => (base, extra),
                _ => return Err(InflateError::Corrupt),
            };
            let len = usize::from(base) + b.bits(u32::from(extra))? as usize;
            let d = usize::from(dist.decode(b)?);
            let (base, extra) = match (DIST_BASE.get(d), DIST_EXTRA.get(d)) {
                (Some(&base), Some(&extra)) => (base, extra),
                _ => return Err(InflateError::Corrupt),
            };
            let back = usize::from(base) + b.bits(u32::from(extra))? as usize;
            if back > out.len() {
                return Err(InflateError::Corrupt);
            }
            if out.len() + len > cap {
                return Err(InflateError::TooLarge);
            }
            let from = out.len() - back;
            for k in 0..len {
                let byte = out[from + k];
                out.push(byte);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Text with repeats (back references), a long run, and every byte value.
    fn sample(seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        let mut out = Vec::new();
        for i in 0..20_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            match x % 5 {
                0 => out.extend_from_slice(b"incoming_call remote=1002 "),
                1 => out.push((x >> 8) as u8),
                2 => out.extend_from_slice(&i.to_le_bytes()),
                3 if out.len() > 300 => {
                    let at = out.len() - 1 - (x >> 20) as usize % 300;
                    out.push(out[at]);
                }
                _ => out.extend(std::iter::repeat_n(b'a', (x >> 40) as usize % 300)),
            }
        }
        out
    }

    #[test]
    fn inflates_what_miniz_oxide_deflates_at_every_level() {
        for seed in 1..4 {
            let data = sample(seed);
            // Level 0: stored blocks; 1: fast (fixed and dynamic); 10: best.
            for level in [0, 1, 6, 10] {
                let z = miniz_oxide::deflate::compress_to_vec(&data, level);
                assert_eq!(inflate(&z, data.len()).unwrap(), data, "level {level}");
                assert_eq!(inflate(&z, data.len() - 1), Err(InflateError::TooLarge));
            }
        }
        // Fixed Huffman codes (a short input gets them).
        let z = miniz_oxide::deflate::compress_to_vec(b"abcabcabcabc hello hello", 6);
        assert_eq!(z[0] >> 1 & 3, 1, "a fixed block");
        assert_eq!(inflate(&z, 100).unwrap(), b"abcabcabcabc hello hello");
        assert_eq!(inflate(&[3, 0], 10).unwrap(), b"", "an empty fixed block");
    }

    #[test]
    fn corrupt_or_cut_input_is_an_error_not_a_panic() {
        let data = sample(7);
        let z = miniz_oxide::deflate::compress_to_vec(&data, 10);
        for cut in [0, 1, 2, 10, z.len() / 2, z.len() - 1] {
            assert!(inflate(&z[..cut], 1 << 20).is_err(), "cut at {cut}");
        }
        // Flipped bits anywhere: an error or some output, within the cap, never a panic.
        let mut x = 99u64;
        for _ in 0..2000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let mut bad = z.clone();
            let at = (x >> 33) as usize % bad.len();
            bad[at] ^= 1 << ((x >> 20) % 8);
            if let Ok(out) = inflate(&bad, 1 << 17) {
                assert!(out.len() <= 1 << 17);
            }
        }
        assert_eq!(
            inflate(&[0b111], 10),
            Err(InflateError::Corrupt),
            "block type 3"
        );
        assert_eq!(
            inflate(&[1, 5, 0, 0, 0], 10),
            Err(InflateError::Corrupt),
            "stored length check"
        );
        // A fixed block whose first code is a match (length 3, distance 1) before any output.
        assert_eq!(inflate(&[0x03, 0x02], 10), Err(InflateError::Corrupt));
    }
}
