//! The spool: notifications that wait for a retry, kept in a file on the data partition so a
//! restart, crash, watchdog reset or power cut does not lose them.
//!
//! - Append-only records ([`record`]): a queued notification (the caller's bytes under a
//!   [`Key`]) or a tombstone for one that was delivered, dropped or given up.
//! - [`Spool::open`] replays the file: every queued record without a tombstone, once (a repeated
//!   key is counted and skipped), in key order, which is the order the events happened in. Bad
//!   bytes are skipped and counted, a torn tail is ignored and counted; opening never fails
//!   because of what is *in* the file, only if the file cannot be opened or written at all.
//! - Writes happen only for what waits: a daemon whose receivers are healthy never calls
//!   [`Spool::append`], so it never writes (see [`SpoolStats::writes`]). An append is followed by
//!   `fdatasync` (it must survive a power cut); a tombstone is not (losing one costs a duplicate
//!   delivery with the same id, which the receiver drops). When nothing is left waiting the file
//!   is truncated to zero bytes instead of growing with tombstones.
//! - The file never exceeds its cap in bytes: when an append would pass it, the live records are
//!   copied to a temporary file, which is synced and renamed over the spool (the folder is synced
//!   too); if it still does not fit, the append is refused and counted (`full`): the notification
//!   still waits in memory, it is only not crash-safe.

pub mod boot;
pub mod payload;
pub mod record;

pub use record::Key;

use record::{Damage, EncodeError, TYPE_QUEUED, TYPE_TOMBSTONE};
use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub use crate::core::config::{SPOOL_DEFAULT_MAX_BYTES, SPOOL_MAX_MAX_BYTES, SPOOL_MIN_MAX_BYTES};

/// What the spool did, for `status`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpoolStats {
    /// Write operations on the spool (appends, tombstones, truncations, compactions).
    pub writes: u64,
    pub bytes_written: u64,
    /// Notifications appended.
    pub appended: u64,
    /// Notifications found whole and waiting at start.
    pub replayed: u64,
    /// Cut-off appends found at the end of the file at start (and their bytes).
    pub torn: u64,
    pub torn_bytes: u64,
    /// Stretches of bad bytes between whole records at start (and their bytes).
    pub corrupt: u64,
    pub corrupt_bytes: u64,
    /// Queued records whose key was seen before (skipped: each notification replays once).
    pub duplicates: u64,
    pub compactions: u64,
    /// Appends refused because the cap was reached even after compaction.
    pub full: u64,
    /// Appends refused because the payload is larger than a record may be.
    pub too_big: u64,
    /// I/O errors while writing.
    pub errors: u64,
}

/// A notification found in the spool at start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replayed {
    pub key: Key,
    pub payload: Vec<u8>,
}

/// Why an append was not written.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool full ({0} bytes even after compaction)")]
    Full(u64),
    #[error("record larger than {} bytes", record::RECORD_CAP)]
    TooBig,
    #[error("spool {0}: {1}")]
    Io(String, io::Error),
}

/// The open spool.
pub struct Spool {
    path: PathBuf,
    file: File,
    /// Bytes in the file.
    len: u64,
    max_bytes: u64,
    /// Waiting notifications: where their record is (offset, whole length).
    live: BTreeMap<Key, (u64, u32)>,
    scratch: Vec<u8>,
    pub stats: SpoolStats,
}

fn open_rw(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

/// Syncs the folder holding `path`, so a rename in it survives a power cut.
pub(crate) fn sync_dir(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

impl Spool {
    /// Opens (or creates) the spool at `path` with a cap of `max_bytes` (clamped to
    /// [`SPOOL_MIN_MAX_BYTES`]..=[`SPOOL_MAX_MAX_BYTES`]) and returns what waits in it, oldest
    /// first. Damage is counted in `stats` and repaired by a compaction. Fails only when the
    /// file cannot be opened, read or rewritten.
    pub fn open(path: &Path, max_bytes: u64) -> Result<(Spool, Vec<Replayed>), SpoolError> {
        let ioe = |e: io::Error| SpoolError::Io(path.display().to_string(), e);
        let max_bytes = max_bytes.clamp(SPOOL_MIN_MAX_BYTES, SPOOL_MAX_MAX_BYTES);
        // A compaction cut short leaves its temporary file; the spool itself is still whole.
        let _ = fs::remove_file(tmp_path(path));
        let mut file = open_rw(path).map_err(ioe)?;
        let file_len = file.metadata().map_err(ioe)?.len();
        // Read at most the cap; anything beyond it is counted as corrupt and compacted away.
        let mut buf = Vec::new();
        (&mut file)
            .take(max_bytes)
            .read_to_end(&mut buf)
            .map_err(ioe)?;
        let mut stats = SpoolStats::default();
        let mut queued: BTreeMap<Key, (u64, u32)> = BTreeMap::new();
        let mut tombs: HashSet<Key> = HashSet::new();
        let mut dups = 0;
        let damage: Damage = record::scan(&buf, |r| match r.ty {
            TYPE_QUEUED => {
                if queued.contains_key(&r.key) || tombs.contains(&r.key) {
                    dups += 1;
                } else {
                    queued.insert(r.key, (r.offset as u64, r.len as u32));
                }
            }
            _ => {
                tombs.insert(r.key);
            }
        });
        queued.retain(|k, _| !tombs.contains(k));
        stats.duplicates = dups;
        stats.torn = damage.torn;
        stats.torn_bytes = damage.torn_bytes;
        stats.corrupt = damage.corrupt;
        stats.corrupt_bytes = damage.corrupt_bytes;
        let beyond = file_len.saturating_sub(buf.len() as u64);
        if beyond > 0 {
            stats.corrupt += 1;
            stats.corrupt_bytes += beyond;
        }
        let replay: Vec<Replayed> = queued
            .iter()
            .filter_map(|(k, &(off, len))| {
                let r = record::decode_at(&buf, off as usize)?;
                debug_assert_eq!(r.len, len as usize);
                Some(Replayed {
                    key: *k,
                    payload: r.payload.to_vec(),
                })
            })
            .collect();
        stats.replayed = replay.len() as u64;
        let live_bytes: u64 = queued.values().map(|&(_, l)| l as u64).sum();
        let mut s = Spool {
            path: path.to_path_buf(),
            file,
            len: file_len,
            max_bytes,
            live: queued,
            scratch: Vec::new(),
            stats,
        };
        // Anything but live records in the file (tombstones, damage, duplicates): rewrite it now,
        // so later appends follow whole records and the cap holds.
        if file_len != live_bytes {
            s.rewrite(&buf).map_err(ioe)?;
        }
        Ok((s, replay))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Bytes in the file now.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// Notifications waiting in the spool.
    pub fn waiting(&self) -> usize {
        self.live.len()
    }

    /// The keys of the notifications waiting in the spool, oldest first.
    pub fn keys(&self) -> impl Iterator<Item = Key> + '_ {
        self.live.keys().copied()
    }

    /// Bytes of the waiting records (the file's size right after a compaction).
    pub fn live_bytes(&self) -> u64 {
        self.live.values().map(|&(_, l)| l as u64).sum()
    }

    pub fn contains(&self, key: Key) -> bool {
        self.live.contains_key(&key)
    }

    /// Appends notifications not yet in the spool, with one write and one `fdatasync`. Keys
    /// already spooled are skipped. Returns how many were written; when the cap is reached, the
    /// ones that fit are written and the rest counted in `full` (and `Err(Full)` returned).
    pub fn append<'a>(
        &mut self,
        items: impl IntoIterator<Item = (Key, &'a [u8])>,
    ) -> Result<usize, SpoolError> {
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        let mut batch: Vec<(Key, u64, u32)> = Vec::new();
        let mut too_big = false;
        let mut full = 0u64;
        let mut compacted = false;
        for (key, payload) in items {
            if self.live.contains_key(&key) || batch.iter().any(|b| b.0 == key) {
                continue;
            }
            let at = buf.len();
            if let Err(EncodeError::TooBig) = record::encode(&mut buf, TYPE_QUEUED, key, payload) {
                self.stats.too_big += 1;
                too_big = true;
                continue;
            }
            let rec_len = (buf.len() - at) as u64;
            // Compact only when it frees something: a file of nothing but waiting records stays
            // as it is (no rewrite per attempt while the spool is full).
            if self.len + buf.len() as u64 > self.max_bytes
                && !compacted
                && self.len > self.live_bytes()
            {
                compacted = true;
                if let Err(e) = self.compact() {
                    self.scratch = buf;
                    return Err(e);
                }
            }
            if self.len + buf.len() as u64 > self.max_bytes {
                buf.truncate(at);
                full += 1;
                continue;
            }
            batch.push((key, at as u64, rec_len as u32));
        }
        let n = batch.len();
        if n > 0 {
            if let Err(e) = self.write_at_end(&buf, true) {
                self.scratch = buf;
                return Err(e);
            }
            let base = self.len - buf.len() as u64;
            for (key, at, len) in batch {
                self.live.insert(key, (base + at, len));
            }
            self.stats.appended += n as u64;
        }
        self.scratch = buf;
        self.stats.full += full;
        if full > 0 {
            Err(SpoolError::Full(self.max_bytes))
        } else if too_big && n == 0 {
            Err(SpoolError::TooBig)
        } else {
            Ok(n)
        }
    }

    /// Marks a notification done (delivered, dropped or given up). Writes nothing if it was not
    /// spooled; truncates the file when it was the last one waiting.
    pub fn remove(&mut self, key: Key) -> Result<(), SpoolError> {
        if self.live.remove(&key).is_none() {
            return Ok(());
        }
        if self.live.is_empty() {
            return self.truncate_empty();
        }
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        let _ = record::encode(&mut buf, TYPE_TOMBSTONE, key, &[]);
        // A tombstone over the cap: compact instead (which drops the record it would cover).
        let r = if self.len + buf.len() as u64 > self.max_bytes {
            self.compact()
        } else {
            self.write_at_end(&buf, false)
        };
        self.scratch = buf;
        r
    }

    fn io_err(&mut self, e: io::Error) -> SpoolError {
        self.stats.errors += 1;
        SpoolError::Io(self.path.display().to_string(), e)
    }

    fn truncate_empty(&mut self) -> Result<(), SpoolError> {
        self.stats.writes += 1;
        let r = self.file.set_len(0).and_then(|_| self.file.sync_data());
        match r {
            Ok(()) => {
                self.len = 0;
                Ok(())
            }
            Err(e) => Err(self.io_err(e)),
        }
    }

    fn write_at_end(&mut self, bytes: &[u8], sync: bool) -> Result<(), SpoolError> {
        self.stats.writes += 1;
        let r = self
            .file
            .seek(SeekFrom::Start(self.len))
            .and_then(|_| self.file.write_all(bytes))
            .and_then(|_| if sync { self.file.sync_data() } else { Ok(()) });
        match r {
            Ok(()) => {
                self.len += bytes.len() as u64;
                self.stats.bytes_written += bytes.len() as u64;
                Ok(())
            }
            Err(e) => {
                // Cut back a partial write, so the next append follows whole records.
                let _ = self.file.set_len(self.len);
                Err(self.io_err(e))
            }
        }
    }

    /// Rewrites the file with only the waiting notifications, oldest first.
    pub fn compact(&mut self) -> Result<(), SpoolError> {
        let mut buf = Vec::with_capacity(self.len as usize);
        let r = self
            .file
            .seek(SeekFrom::Start(0))
            .and_then(|_| (&mut self.file).take(self.len).read_to_end(&mut buf));
        if let Err(e) = r {
            return Err(self.io_err(e));
        }
        self.rewrite(&buf).map_err(|e| self.io_err(e))
    }

    /// Writes the live records (found in `old`, the file's bytes) to a temporary file, syncs it,
    /// renames it over the spool and syncs the folder.
    fn rewrite(&mut self, old: &[u8]) -> io::Result<()> {
        self.stats.compactions += 1;
        self.stats.writes += 1;
        if self.live.is_empty() {
            self.file.set_len(0)?;
            self.file.sync_data()?;
            self.len = 0;
            return Ok(());
        }
        let tmp = tmp_path(&self.path);
        let mut out = Vec::new();
        let mut live = BTreeMap::new();
        for (&key, &(off, len)) in &self.live {
            // Re-checked: a record that went bad on the medium since it was read is dropped.
            if let Some(r) = record::decode_at(old, off as usize) {
                if r.len == len as usize && r.key == key && r.ty == TYPE_QUEUED {
                    live.insert(key, (out.len() as u64, len));
                    out.extend_from_slice(&old[off as usize..off as usize + len as usize]);
                }
            }
        }
        {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&out)?;
            f.sync_all()?;
        }
        fs::rename(&tmp, &self.path)?;
        sync_dir(&self.path)?;
        self.file = open_rw(&self.path)?;
        self.len = out.len() as u64;
        self.stats.bytes_written += out.len() as u64;
        self.live = live;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        dir_in(std::env::temp_dir())
    }

    /// On tmpfs where there is one: the every-offset test syncs hundreds of times, which on a
    /// real disk shared with parallel builds takes seconds and proves nothing more.
    fn fast_dir() -> PathBuf {
        let shm = Path::new("/dev/shm");
        if shm.is_dir() && fs::metadata(shm).is_ok_and(|m| !m.permissions().readonly()) {
            dir_in(shm.to_path_buf())
        } else {
            dir()
        }
    }

    fn dir_in(base: PathBuf) -> PathBuf {
        let d = base.join(format!(
            "en-spool-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn k(seq: u64) -> Key {
        Key { boot: 3, seq }
    }

    fn payload(seq: u64) -> Vec<u8> {
        format!(
            "GET http://crm.example/in?n={seq}&pad={}",
            "x".repeat(seq as usize % 40)
        )
        .into_bytes()
    }

    fn keys(r: &[Replayed]) -> Vec<u64> {
        r.iter().map(|r| r.key.seq).collect()
    }

    #[test]
    fn replay_in_key_order_without_the_removed() {
        let d = dir();
        let p = d.join("spool");
        let (mut s, r) = Spool::open(&p, 0).unwrap();
        assert!(r.is_empty());
        assert_eq!(s.stats.writes, 0, "opening an empty spool writes nothing");
        // Appended out of order (a destination's queue is spooled when its head fails).
        for seq in [5, 1, 2, 9] {
            let pl = payload(seq);
            assert_eq!(s.append([(k(seq), pl.as_slice())]).unwrap(), 1);
        }
        let pl = payload(1);
        assert_eq!(
            s.append([(k(1), pl.as_slice())]).unwrap(),
            0,
            "already spooled"
        );
        s.remove(k(2)).unwrap();
        s.remove(k(77)).unwrap();
        drop(s);
        let (s, r) = Spool::open(&p, 0).unwrap();
        assert_eq!(keys(&r), [1, 5, 9]);
        assert_eq!(r[1].payload, payload(5));
        assert_eq!(
            s.stats.compactions, 1,
            "the tombstone was compacted away at start"
        );
        assert_eq!(s.stats.replayed, 3);
        let (_, r) = Spool::open(&p, 0).unwrap();
        assert_eq!(keys(&r), [1, 5, 9], "replay does not consume");
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn last_removal_truncates() {
        let d = dir();
        let p = d.join("spool");
        let (mut s, _) = Spool::open(&p, 0).unwrap();
        let (a, b) = (payload(1), payload(2));
        s.append([(k(1), a.as_slice()), (k(2), b.as_slice())])
            .unwrap();
        assert_eq!(s.stats.writes, 1, "one batch, one write");
        s.remove(k(1)).unwrap();
        s.remove(k(2)).unwrap();
        assert_eq!(fs::metadata(&p).unwrap().len(), 0);
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn cap_holds_by_compaction_then_refuses() {
        let d = dir();
        let p = d.join("spool");
        let cap = SPOOL_MIN_MAX_BYTES;
        let (mut s, _) = Spool::open(&p, cap).unwrap();
        let pl = vec![b'p'; 1000];
        let mut seq = 0;
        // Churn: append two, remove one, many times: tombstones pile up, compaction clears them.
        let mut kept = Vec::new();
        loop {
            seq += 1;
            match s.append([(k(seq), pl.as_slice())]) {
                Ok(1) => {}
                Err(SpoolError::Full(_)) => break,
                other => panic!("{other:?}"),
            }
            assert!(fs::metadata(&p).unwrap().len() <= cap);
            if seq % 2 == 0 {
                s.remove(k(seq)).unwrap();
            } else {
                kept.push(seq);
            }
            assert!(fs::metadata(&p).unwrap().len() <= cap);
        }
        assert!(s.stats.compactions > 0);
        assert_eq!(s.stats.full, 1);
        // Full of waiting records only: refusing more writes nothing at all.
        let writes = s.stats.writes;
        for extra in 0..5 {
            assert!(matches!(
                s.append([(k(10_000 + extra), pl.as_slice())]),
                Err(SpoolError::Full(_))
            ));
        }
        assert_eq!(s.stats.writes, writes, "no rewrite per refused append");
        drop(s);
        let (_, r) = Spool::open(&p, cap).unwrap();
        assert_eq!(keys(&r), kept);
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn too_big_is_refused() {
        let d = dir();
        let (mut s, _) = Spool::open(&d.join("spool"), 0).unwrap();
        let big = vec![0u8; record::RECORD_CAP];
        assert!(matches!(
            s.append([(k(1), big.as_slice())]),
            Err(SpoolError::TooBig)
        ));
        assert_eq!(s.stats.too_big, 1);
        assert_eq!(s.stats.writes, 0);
        fs::remove_dir_all(d).unwrap();
    }

    /// Truncated at every byte offset: reopening replays exactly the records that are whole,
    /// counts a torn tail when one was cut, and the spool works afterwards.
    #[test]
    fn truncated_at_every_offset() {
        let d = fast_dir();
        let p = d.join("spool");
        let (mut s, _) = Spool::open(&p, 0).unwrap();
        let mut ends = Vec::new(); // (file length after record i, seq)
        for seq in 1..=6 {
            let pl = payload(seq);
            s.append([(k(seq), pl.as_slice())]).unwrap();
            ends.push(s.len());
        }
        s.remove(k(3)).unwrap(); // a tombstone in the middle of the file
        let tomb_end = s.len();
        drop(s);
        let full = fs::read(&p).unwrap();
        assert_eq!(full.len() as u64, tomb_end);
        let q = d.join("cut");
        for cut in 0..=full.len() {
            fs::write(&q, &full[..cut]).unwrap();
            let (mut s, r) = Spool::open(&q, 0).unwrap();
            let mut want: Vec<u64> = (1..=6u64)
                .filter(|&i| ends[i as usize - 1] <= cut as u64)
                .collect();
            if cut as u64 == tomb_end {
                want.retain(|&i| i != 3);
            }
            assert_eq!(keys(&r), want, "cut at {cut}");
            for x in &r {
                assert_eq!(x.payload, payload(x.key.seq));
            }
            let boundary = cut == 0 || ends.contains(&(cut as u64)) || cut as u64 == tomb_end;
            assert_eq!(s.stats.torn, u64::from(!boundary), "cut at {cut}");
            assert_eq!(s.stats.corrupt, 0);
            // Still usable: a new append after the repaired file replays too.
            let pl = payload(100);
            s.append([(Key { boot: 4, seq: 1 }, pl.as_slice())])
                .unwrap();
            drop(s);
            let (s, r2) = Spool::open(&q, 0).unwrap();
            let mut want2 = want.clone();
            want2.push(1);
            assert_eq!(keys(&r2), want2, "cut at {cut}, after an append");
            assert_eq!((s.stats.torn, s.stats.corrupt), (0, 0));
        }
        fs::remove_dir_all(d).unwrap();
    }

    /// Garbage anywhere: never a panic, never a refusal to open; whole records are kept.
    #[test]
    fn garbage_is_skipped_and_counted() {
        let d = dir();
        let p = d.join("spool");
        // Pure garbage, of several kinds.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut rnd = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for n in [1usize, 9, 10, 100, 5000, 40_000] {
            let g: Vec<u8> = (0..n).map(|_| rnd() as u8).collect();
            fs::write(&p, &g).unwrap();
            let (s, r) = Spool::open(&p, 0).unwrap();
            assert!(r.is_empty());
            assert_eq!(s.stats.torn_bytes + s.stats.corrupt_bytes, n as u64);
            assert_eq!(fs::metadata(&p).unwrap().len(), 0, "repaired to empty");
        }
        // Magic bytes everywhere, with huge and tiny lengths.
        let mut g = Vec::new();
        for i in 0..2000u32 {
            g.extend_from_slice(&record::MAGIC);
            g.extend_from_slice(&(i.wrapping_mul(2_654_435_761)).to_le_bytes());
        }
        fs::write(&p, &g).unwrap();
        let (_, r) = Spool::open(&p, 0).unwrap();
        assert!(r.is_empty());
        // Whole records with garbage between them and around them.
        let mut f = Vec::new();
        for seq in 1..=5 {
            let junk: Vec<u8> = (0..(rnd() % 50)).map(|_| rnd() as u8).collect();
            f.extend_from_slice(&junk);
            record::encode(&mut f, TYPE_QUEUED, k(seq), &payload(seq)).unwrap();
        }
        f.extend_from_slice(b"\xE5\x70\x20\x00\x00\x00trailing");
        fs::write(&p, &f).unwrap();
        let (s, r) = Spool::open(&p, 0).unwrap();
        assert_eq!(keys(&r), [1, 2, 3, 4, 5]);
        assert_eq!(s.stats.torn, 1);
        drop(s);
        let (s, r) = Spool::open(&p, 0).unwrap();
        assert_eq!(keys(&r), [1, 2, 3, 4, 5]);
        assert_eq!(
            (s.stats.torn, s.stats.corrupt, s.stats.writes),
            (0, 0, 0),
            "clean after repair"
        );
        // A record repeated (say, restored from a backup twice) replays once.
        let once = fs::read(&p).unwrap();
        fs::write(&p, [once.clone(), once].concat()).unwrap();
        let (s, r) = Spool::open(&p, 0).unwrap();
        assert_eq!(keys(&r), [1, 2, 3, 4, 5]);
        assert_eq!(s.stats.duplicates, 5);
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn a_file_over_the_cap_is_read_up_to_it() {
        let d = dir();
        let p = d.join("spool");
        let mut f = Vec::new();
        let pl = vec![b'z'; 900];
        let mut seq = 0;
        while f.len() < 2 * SPOOL_MIN_MAX_BYTES as usize {
            seq += 1;
            record::encode(&mut f, TYPE_QUEUED, k(seq), &pl).unwrap();
        }
        fs::write(&p, &f).unwrap();
        let (s, r) = Spool::open(&p, SPOOL_MIN_MAX_BYTES).unwrap();
        assert!(!r.is_empty() && (r.len() as u64) < seq);
        assert!(s.stats.corrupt_bytes > 0);
        assert!(fs::metadata(&p).unwrap().len() <= SPOOL_MIN_MAX_BYTES);
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn unopenable_is_an_error_not_a_panic() {
        let d = dir();
        assert!(matches!(
            Spool::open(&d.join("no/such/dir/spool"), 0),
            Err(SpoolError::Io(..))
        ));
        assert!(matches!(Spool::open(&d, 0), Err(SpoolError::Io(..))));
        fs::remove_dir_all(d).unwrap();
    }
}
