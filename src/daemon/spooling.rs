//! The daemon's side of the spool and of the start counter.
//!
//! - At start: the start counter is raised (delivery ids `<mac>-<start>-<seq>`), the spool is
//!   opened and what waits in it is queued first, in the order of its events.
//! - While running, [`Spooler::sync`] makes the spool hold exactly what waits for a retry: every
//!   notification held for a destination that is failing (one of its notifications failed an
//!   attempt) is appended — the failed one and those queued behind it, and new ones while the
//!   destination stays down — and a notification that left the outbox (delivered, given up,
//!   dropped) gets its tombstone. A destination that answers never makes a write.
//! - At stop: what is still queued is appended, whatever its destination's state.
//!
//! A spool that cannot be opened or written never stops the daemon: the error is logged and
//! counted, and notifications wait in memory as without a spool.

use crate::core::config::Delivery;
use crate::core::engine::{Engine, Note, Now};
use crate::core::id::Key;
use crate::spool::boot::{next_boot, BootSource};
use crate::spool::{payload, Spool, SpoolError};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Name of the start-counter file, in the spool's folder (else the config's).
pub const START_FILE: &str = "event-notify.start";

/// The spool of a running daemon (or none) and its counters.
pub struct Spooler {
    spool: Option<Spool>,
    path: Option<PathBuf>,
    /// Spooled records that were whole but not a notification this version can read.
    undecodable: u64,
    /// Errors opening or writing the spool.
    errors: u64,
    /// When the last error was logged (ms), to keep a failing medium from flooding the log.
    last_logged_ms: Option<u64>,
    /// After a write error, the spool is left alone until then (ms): a failing medium is not
    /// hammered on every turn of the main loop.
    pause_until_ms: u64,
}

/// How long the spool rests after a write error.
pub const SPOOL_ERROR_PAUSE_MS: u64 = 5_000;

/// Where the start counter lives: beside the spool if there is one, else beside the config.
pub fn start_file(d: &Delivery, config: &Path) -> PathBuf {
    match &d.spool {
        Some(s) => Path::new(&s.path).with_file_name(START_FILE),
        None => config.with_file_name(START_FILE),
    }
}

impl Spooler {
    /// Raises the start counter, opens the spool (if configured) and queues what waits in it.
    pub fn start(
        d: &Delivery,
        config: &Path,
        engine: &mut Engine,
        now: Now,
        notes: &mut dyn FnMut(Note),
    ) -> Spooler {
        let (boot, src) = next_boot(&start_file(d, config));
        if let BootSource::Random(why) = src {
            log::warn!("start counter {why}: this start is numbered {boot} at random");
        }
        engine.set_boot(boot);
        let mut s = Spooler {
            spool: None,
            path: d.spool.as_ref().map(|c| PathBuf::from(&c.path)),
            undecodable: 0,
            errors: 0,
            last_logged_ms: None,
            pause_until_ms: 0,
        };
        let Some(cfg) = &d.spool else { return s };
        match Spool::open(Path::new(&cfg.path), cfg.max_bytes) {
            Ok((spool, replay)) => {
                let st = spool.stats;
                if st.torn + st.corrupt + st.duplicates > 0 {
                    log::warn!(
                        "spool {}: skipped a torn tail ({} bytes), {} corrupt stretch(es) ({} bytes), {} repeated record(s)",
                        cfg.path, st.torn_bytes, st.corrupt, st.corrupt_bytes, st.duplicates
                    );
                }
                let mut queued = 0;
                for r in &replay {
                    match payload::decode(r.key, &r.payload) {
                        Some(mut n) => queued += usize::from(engine.replay(&mut n, now, notes)),
                        None => s.undecodable += 1,
                    }
                }
                if !replay.is_empty() {
                    log::info!(
                        "spool {}: {queued} notification(s) waiting from before the restart queued first{}",
                        cfg.path,
                        if s.undecodable > 0 {
                            format!(", {} unreadable dropped", s.undecodable)
                        } else {
                            String::new()
                        }
                    );
                }
                s.spool = Some(spool);
                // Unreadable or dropped records leave the spool now.
                s.sync(engine, false, now.ms);
            }
            Err(e) => {
                s.errors += 1;
                log::error!("{e}: running without a spool (notifications wait in memory only)");
            }
        }
        s
    }

    fn log_error(&mut self, e: &SpoolError, now_ms: u64) {
        if let SpoolError::Io(..) = e {
            self.errors += 1;
            self.pause_until_ms = now_ms + SPOOL_ERROR_PAUSE_MS;
        }
        let quiet = self
            .last_logged_ms
            .is_some_and(|t| now_ms.saturating_sub(t) < 60_000);
        if !quiet {
            self.last_logged_ms = Some(now_ms);
            log::error!("{e}");
        }
    }

    /// Makes the spool hold what waits for a retry (`all`: everything held, at stop).
    #[inline(never)] // see Daemon::main_loop
    pub fn sync(&mut self, engine: &Engine, all: bool, now_ms: u64) {
        if !all && now_ms < self.pause_until_ms {
            return;
        }
        let Some(spool) = &mut self.spool else {
            return;
        };
        let track = !spool.is_empty();
        let mut held: Vec<Key> = Vec::new();
        let mut add: Vec<(Key, Vec<u8>)> = Vec::new();
        engine.for_each_pending(|n, failing| {
            if track {
                held.push(n.key);
            }
            if (all || failing) && !spool.contains(n.key) {
                add.push((n.key, payload::encode(n)));
            }
        });
        let mut errors = Vec::new();
        if track {
            held.sort_unstable();
            let gone: Vec<Key> = spool
                .keys()
                .filter(|k| held.binary_search(k).is_err())
                .collect();
            for k in gone {
                if let Err(e) = spool.remove(k) {
                    errors.push(e);
                }
            }
        }
        if !add.is_empty() {
            if let Err(e) = spool.append(add.iter().map(|(k, p)| (*k, p.as_slice()))) {
                errors.push(e);
            }
        }
        for e in errors {
            self.log_error(&e, now_ms);
        }
    }

    /// `spool ...` lines for `status`.
    pub fn write_status(&self, engine: &Engine, s: &mut String) {
        let _ = writeln!(s, "start {}", engine.boot());
        let Some(path) = &self.path else {
            let _ = writeln!(s, "spool off");
            return;
        };
        let st = self.spool.as_ref().map(|x| x.stats).unwrap_or_default();
        let _ = writeln!(s, "spool {}", path.display());
        let _ = writeln!(s, "spool_open {}", u8::from(self.spool.is_some()));
        let (waiting, bytes, cap) = self
            .spool
            .as_ref()
            .map_or((0, 0, 0), |x| (x.waiting(), x.len(), x.max_bytes()));
        let _ = writeln!(s, "spool_waiting {waiting}");
        let _ = writeln!(s, "spool_bytes {bytes}");
        let _ = writeln!(s, "spool_max_bytes {cap}");
        let _ = writeln!(s, "spool_writes {}", st.writes);
        let _ = writeln!(s, "spool_appended {}", st.appended);
        let _ = writeln!(s, "spool_replayed {}", st.replayed);
        let _ = writeln!(s, "spool_compactions {}", st.compactions);
        let _ = writeln!(s, "spool_torn {}", st.torn);
        let _ = writeln!(s, "spool_corrupt {}", st.corrupt);
        let _ = writeln!(s, "spool_duplicates {}", st.duplicates);
        let _ = writeln!(s, "spool_undecodable {}", self.undecodable);
        let _ = writeln!(s, "spool_full {}", st.full + st.too_big);
        let _ = writeln!(s, "spool_errors {}", self.errors);
    }
}
