//! The signing secret's type: write-only, like a password. Signing itself (HMAC-SHA256) is in
//! `crate::sign`, outside the core, which uses no crate but std, heapless, log and thiserror.

/// Longest signing secret accepted, in bytes.
pub const SECRET_CAP: usize = 256;

/// A signing secret: write-only. Its `Debug` shows no byte of it, and nothing formats it.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(heapless::Vec<u8, SECRET_CAP>);

impl Secret {
    /// `None` when empty or longer than [`SECRET_CAP`].
    pub fn new(bytes: &[u8]) -> Option<Secret> {
        if bytes.is_empty() {
            return None;
        }
        heapless::Vec::from_slice(bytes).ok().map(Secret)
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl core::fmt::Debug for Secret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Secret(***)")
    }
}
