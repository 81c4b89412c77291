//! The admin page's files as they are stored in the binary: compacted (leading indentation,
//! blank lines and whole-line comments removed), then gzip-compressed. Used by `build.rs` at
//! build time (through `#[path]`) and by the admin module's unit tests; nothing here runs in the
//! daemon.
//!
//! Compaction is safe for these files: none has a multi-line string, template literal or
//! `<pre>`, so a line's indentation is never content.

/// Leading indentation, blank lines and whole-line comments (`// ...` in the script,
/// `/* ... */` on one line in the style sheet) removed.
pub fn compact(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut lines = src.split('\n').peekable();
    while let Some(line) = lines.next() {
        let t = line.trim_start_matches([' ', '\t']);
        let comment =
            t.starts_with("//") || (t.len() >= 4 && t.starts_with("/*") && t.ends_with("*/"));
        if t.is_empty() || comment {
            continue;
        }
        out.push_str(t);
        if lines.peek().is_some() {
            out.push('\n');
        }
    }
    out
}

/// `data` as a gzip member (RFC 1952): a 10-byte header without optional fields, the deflate
/// stream at miniz_oxide's best compression, CRC-32 and length.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 255];
    out.extend_from_slice(&miniz_oxide::deflate::compress_to_vec(data, 10));
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

/// CRC-32 (IEEE 802.3, reflected, as gzip uses it).
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
