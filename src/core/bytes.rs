//! Reading the little binary records the outbox keeps in memory and the spool keeps on flash:
//! fixed-size integers and length-prefixed strings, every read checked (a short or malformed
//! record gives `None`, never a panic).

/// A cursor over a record's bytes.
pub struct Reader<'a>(pub &'a [u8]);

impl<'a> Reader<'a> {
    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (a, b) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = b;
        Some(a)
    }
    pub fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    /// A UTF-8 string after a one-byte length.
    pub fn str8(&mut self) -> Option<&'a str> {
        let n = self.u8()? as usize;
        core::str::from_utf8(self.take(n)?).ok()
    }
    /// Bytes after a two-byte little-endian length.
    pub fn bytes16(&mut self) -> Option<&'a [u8]> {
        let l = self.take(2)?;
        self.take(u16::from_le_bytes([l[0], l[1]]) as usize)
    }
    /// A UTF-8 string after a two-byte little-endian length.
    pub fn str16(&mut self) -> Option<&'a str> {
        core::str::from_utf8(self.bytes16()?).ok()
    }
    /// Whether every byte was read.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::Reader;

    #[test]
    fn short_and_malformed_records_give_none() {
        let mut r = Reader(&[3, b'a', b'b']);
        assert_eq!(r.str8(), None);
        let mut r = Reader(&[2, 0, b'h', b'i', 1]);
        assert_eq!(r.str16(), Some("hi"));
        assert_eq!(r.u8(), Some(1));
        assert!(r.is_empty());
        assert_eq!(r.u8(), None);
        assert_eq!(Reader(&[1, 0xff]).str8(), None);
    }
}
