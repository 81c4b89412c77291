//! The start counter: one number per daemon start, kept in a small file on the data partition,
//! so delivery ids (`<mac>-<start>-<seq>`) never repeat across restarts and reboots, even on a
//! handset whose clock is not set yet when it starts.
//!
//! The file holds the decimal number and a newline. It is written once per start, atomically
//! (temporary file, fsync, rename, fsync of the folder). When it cannot be read back or written,
//! the counter falls back to a random number with the top bit set (logged by the caller): ids stay
//! unique with overwhelming probability, only their order across starts is lost.
//! Starts are numbered from 1; the counter wraps after 2^32 - 1 starts.

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Largest start-counter file read, in bytes.
pub const BOOT_FILE_CAP: u64 = 64;

/// Where this start's number came from.
#[derive(Debug)]
pub enum BootSource {
    /// Read, incremented and written back.
    Counter,
    /// The file could not be used; the reason is for the log.
    Random(String),
}

/// Reads the counter at `path`, adds one, writes it back, and returns the new value.
/// A counter file that holds something else is replaced by a random start (and counting goes on
/// from there), never restarted at 1, which would repeat ids a receiver has already seen.
pub fn next_boot(path: &Path) -> (u32, BootSource) {
    let shown = path.display();
    let old = match fs::File::open(path) {
        Ok(f) => {
            let mut s = String::new();
            match f.take(BOOT_FILE_CAP).read_to_string(&mut s) {
                Ok(_) => s
                    .trim()
                    .parse::<u32>()
                    .map_err(|_| format!("{shown}: not a start counter")),
                Err(e) => Err(format!("{shown}: {e}")),
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(format!("{shown}: {e}")),
    };
    let (new, mut source) = match old {
        Ok(n) => (n.checked_add(1).unwrap_or(1), BootSource::Counter),
        Err(why) => (random31() | 0x8000_0000, BootSource::Random(why)),
    };
    if let Err(e) = write_atomic(path, format!("{new}\n").as_bytes()) {
        if let BootSource::Counter = source {
            // Not kept: the next start would repeat this number. Take a random one instead.
            return (
                random31() | 0x8000_0000,
                BootSource::Random(format!("{shown}: {e}")),
            );
        }
        source = BootSource::Random(format!("{shown}: {e}"));
    }
    (new, source)
}

fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    super::sync_dir(path)
}

fn random31() -> u32 {
    let mut b = [0u8; 4];
    let from_kernel = fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b));
    if from_kernel.is_err() {
        // No /dev/urandom: the time and pid are what there is.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() ^ d.as_secs() as u32)
            .unwrap_or(0);
        b = (t ^ std::process::id().rotate_left(16)).to_le_bytes();
    }
    u32::from_le_bytes(b) & 0x7FFF_FFFF
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_up_and_falls_back() {
        let d = std::env::temp_dir().join(format!("en-boot-{}", std::process::id()));
        fs::create_dir_all(&d).unwrap();
        let p = d.join("boot");
        let _ = fs::remove_file(&p);
        for want in 1..=3 {
            let (n, src) = next_boot(&p);
            assert!(matches!(src, BootSource::Counter));
            assert_eq!(n, want);
        }
        assert_eq!(fs::read_to_string(&p).unwrap(), "3\n");
        fs::write(&p, "garbage").unwrap();
        let (n, src) = next_boot(&p);
        assert!(n >= 0x8000_0000);
        assert!(matches!(src, BootSource::Random(ref w) if w.contains("not a start counter")));
        // ... and counting goes on from the random start.
        assert_eq!(next_boot(&p).0, n + 1);
        fs::write(&p, format!("{}\n", u32::MAX)).unwrap();
        assert_eq!(next_boot(&p).0, 1);
        let (n, src) = next_boot(&d.join("missing-dir/boot"));
        assert!(n >= 0x8000_0000);
        assert!(matches!(src, BootSource::Random(_)));
        fs::remove_dir_all(&d).unwrap();
    }
}
