//! Counters, `status`, and the rate limit of repeated warnings.

use super::*;

/// Rate limit of one kind of repeated warning: [`WARN_BURST`] lines per [`WARN_WINDOW_MS`],
/// then a count of what was suppressed, reported once the window has ended: by the next
/// warning of the kind, or else by [`WarnLimit::flush`], which the thread that owns the limit
/// calls when [`WarnLimit::due`] has passed (a flood that stops is still counted in the log).
#[derive(Default)]
pub struct WarnLimit {
    pub(super) window_start: u64,
    pub(super) logged: u32,
    pub(super) suppressed: u64,
    /// The kind of the last warning suppressed, named in the report.
    what: &'static str,
}

impl WarnLimit {
    /// Whether to log one more warning now; reports what the last window suppressed.
    pub fn allow(&mut self, now_ms: u64, what: &'static str) -> bool {
        self.flush(now_ms);
        if now_ms.saturating_sub(self.window_start) >= WARN_WINDOW_MS {
            self.window_start = now_ms;
            self.logged = 0;
        }
        if self.logged < WARN_BURST {
            self.logged += 1;
            true
        } else {
            self.suppressed = self.suppressed.saturating_add(1);
            self.what = what;
            false
        }
    }

    /// When the window that suppressed warnings ends (its count is to be reported then), if
    /// one did.
    pub fn due(&self) -> Option<u64> {
        (self.suppressed > 0).then(|| self.window_start.saturating_add(WARN_WINDOW_MS))
    }

    /// Logs "N similar suppressed" once the window that suppressed them has ended; what it
    /// reported (count and kind), if anything.
    pub fn flush(&mut self, now_ms: u64) -> Option<(u64, &'static str)> {
        if now_ms < self.due()? {
            return None;
        }
        let n = std::mem::take(&mut self.suppressed);
        log::warn!("{n} similar suppressed: {}", self.what);
        Some((n, self.what))
    }
}

/// Daemon-level counters, beside the engine's.
#[derive(Default)]
pub(super) struct DaemonCounters {
    /// Refused socket lines, one slot per [`WireError`] (see [`refused_index`]).
    pub(super) refused: [u64; WIRE_ERRORS.len()],
    /// Idle clients closed to make room for a new one.
    pub(super) busy: u64,
    pub(super) reloads: u64,
    pub(super) reload_errors: u64,
}

/// The slot of `e` in [`DaemonCounters::refused`]: its place in [`WIRE_ERRORS`]. An exhaustive
/// match, so a new variant does not compile until it has a slot; the test
/// `refused_slots_match_wire_errors` keeps this and [`WIRE_ERRORS`] in step (not the order in
/// which the variants are declared).
pub(super) const fn refused_index(e: WireError) -> usize {
    match e {
        WireError::TooLong => 0,
        WireError::NotUtf8 => 1,
        WireError::BadVersion => 2,
        WireError::NoVerb => 3,
        WireError::UnknownVerb => 4,
        WireError::MissingState => 5,
        WireError::BadState => 6,
        WireError::NoEquals => 7,
        WireError::UnknownField => 8,
        WireError::BadEscape => 9,
        WireError::Control => 10,
    }
}

/// Every [`WireError`], in the order of their counter slots (and of the `refused_*` status lines).
pub(super) const WIRE_ERRORS: [WireError; 11] = [
    WireError::TooLong,
    WireError::NotUtf8,
    WireError::BadVersion,
    WireError::NoVerb,
    WireError::UnknownVerb,
    WireError::MissingState,
    WireError::BadState,
    WireError::NoEquals,
    WireError::UnknownField,
    WireError::BadEscape,
    WireError::Control,
];

// Checked when compiling: each listed error sits at its own slot.
const _: () = {
    let mut i = 0;
    while i < WIRE_ERRORS.len() {
        assert!(refused_index(WIRE_ERRORS[i]) == i);
        i += 1;
    }
};

impl Daemon {
    /// When a rate-limited warning's suppressed count is to be reported (for poll's timeout).
    pub(super) fn warnings_due(&self) -> Option<u64> {
        [
            self.warn_refused.due(),
            self.warn_evicted.due(),
            self.warn_notes.due(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Reports the suppressed counts of the windows that have ended (once each turn of the
    /// loop: a flood that stopped is still counted in the log).
    pub(super) fn flush_warnings(&mut self, now_ms: u64) {
        self.warn_refused.flush(now_ms);
        self.warn_evicted.flush(now_ms);
        self.warn_notes.flush(now_ms);
    }

    pub(super) fn counters(&self) -> Counters {
        let sum = |f: fn(&crate::core::engine::EventStats) -> u64| {
            self.engine.events.iter().map(f).sum::<u64>()
        };
        let t = self.engine.tracker_stats();
        Counters {
            messages: self.engine.stats.messages,
            events: sum(|e| e.derived),
            queued: sum(|e| e.queued),
            delivered: sum(|e| e.delivered),
            retried: sum(|e| e.retried),
            failed: sum(|e| e.failed),
            dropped: sum(|e| e.dropped),
            pending: self.engine.pending() as u64,
            in_flight: self.engine.in_flight() as u64,
            not_configured: self.engine.stats.not_configured,
            too_long: self.engine.stats.too_long,
            duplicates: t.duplicates,
            unknown_call: t.unknown_call,
            call_table_full: t.call_table_full,
            refused: self.counters.refused.iter().sum(),
            reloads: self.counters.reloads,
            reload_errors: self.counters.reload_errors,
        }
    }

    pub(super) fn snapshot(&self) -> Snapshot {
        let cfg = self.engine.config();
        Snapshot {
            counters: self.counters(),
            events: self.engine.events,
            states: core::array::from_fn(|i| match cfg.events[i].as_ref() {
                None => "off",
                Some(c) if !c.enabled => "disabled",
                Some(_) => "on",
            }),
            uptime_s: now().ms.saturating_sub(self.started.ms) / 1000,
            locations: core::array::from_fn(|i| self.redirects[i].as_ref().map(|(_, l)| l.clone())),
        }
    }

    pub(super) fn write_status(&self, s: &mut String) {
        let t = now();
        let _ = writeln!(s, "version {}", env!("CARGO_PKG_VERSION"));
        let _ = writeln!(s, "wire EN1");
        let _ = writeln!(
            s,
            "uptime_s {}",
            t.ms.saturating_sub(self.started.ms) / 1000
        );
        let _ = writeln!(s, "config {}", self.opts.config.display());
        let _ = writeln!(s, "pid {}", std::process::id());
        let _ = writeln!(s, "interface {}", self.device.interface());
        let _ = writeln!(s, "interface_reads {}", self.device.reads());
        let refused: u64 = self.counters.refused.iter().sum();
        let _ = writeln!(s, "refused {refused}");
        for e in WIRE_ERRORS {
            let n = self.counters.refused[refused_index(e)];
            if n > 0 {
                let _ = writeln!(s, "refused_{} {n}", e.code().replace('-', "_"));
            }
        }
        let _ = writeln!(s, "busy {}", self.counters.busy);
        let _ = writeln!(s, "reloads {}", self.counters.reloads);
        let _ = writeln!(s, "reload_errors {}", self.counters.reload_errors);
        let _ = writeln!(s, "boot_held {}", u64::from(self.held_boot.is_some()));
        let _ = writeln!(s, "clients {}", self.clients.len());
        if let Some(admin) = &self.opts.admin {
            let _ = writeln!(s, "admin_refused_writes {}", admin.refused_writes());
        }
        for e in crate::core::event::Event::ALL {
            if let Some((code, loc)) = &self.redirects[e.index()] {
                let _ = writeln!(s, "redirect {} {code} {loc}", e.key());
            }
        }
        if let Some(b) = &self.baresip {
            let c = b.stats.snapshot();
            let _ = writeln!(
                s,
                "baresip connected={} received={} mapped={} msgs={} ignored={} errors={} reconnects={}",
                u8::from(c.connected),
                c.received,
                c.mapped,
                c.msgs,
                c.ignored,
                c.errors,
                c.reconnects
            );
        }
        self.spooler.write_status(&self.engine, s);
        let _ = self.engine.write_status(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_slots_match_wire_errors() {
        // Each listed error has its own slot, the slot it is listed at: so no two share a
        // counter, and none is missing (refused_index's match is exhaustive, and its slots are
        // all below WIRE_ERRORS.len() or indexing would panic here).
        for (i, e) in WIRE_ERRORS.into_iter().enumerate() {
            assert_eq!(refused_index(e), i, "{e:?}");
        }
        let mut codes: Vec<&str> = WIRE_ERRORS.iter().map(|e| e.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), WIRE_ERRORS.len(), "an error is listed twice");
    }

    #[test]
    fn warnings_are_rate_limited_per_window() {
        let mut w = WarnLimit::default();
        let t0 = 1_000_000;
        let allowed = (0..1000).filter(|_| w.allow(t0, "x")).count();
        assert_eq!(allowed, WARN_BURST as usize);
        assert_eq!(w.suppressed, 1000 - WARN_BURST as u64);
        // The next window logs again (and reports what the last one suppressed).
        assert!(w.allow(t0 + WARN_WINDOW_MS, "x"));
        assert_eq!(w.suppressed, 0);
    }

    /// A flood that stops: what its window suppressed is reported when the window ends, once,
    /// with no further warning of the kind; nothing is due before, or when nothing was
    /// suppressed.
    #[test]
    fn a_suppressed_count_is_reported_when_the_window_ends_without_a_new_warning() {
        let mut w = WarnLimit::default();
        let t0 = 1_000_000;
        for _ in 0..WARN_BURST {
            assert!(w.allow(t0, "refused socket messages"));
        }
        assert_eq!(w.due(), None, "nothing suppressed yet");
        assert_eq!(w.flush(t0 + WARN_WINDOW_MS), None);
        for i in 0..25 {
            assert!(!w.allow(t0 + i, "refused socket messages"));
        }
        assert_eq!(w.due(), Some(t0 + WARN_WINDOW_MS));
        assert_eq!(
            w.flush(t0 + WARN_WINDOW_MS - 1),
            None,
            "the window has not ended"
        );
        assert_eq!(
            w.flush(t0 + WARN_WINDOW_MS),
            Some((25, "refused socket messages"))
        );
        // Once: nothing more is due, nothing is reported again, and the next warning opens a
        // new window without a second report of the same count.
        assert_eq!(w.due(), None);
        assert_eq!(w.flush(t0 + 10 * WARN_WINDOW_MS), None);
        assert!(w.allow(t0 + WARN_WINDOW_MS + 1, "refused socket messages"));
        assert_eq!(w.suppressed, 0);
        // A flush that comes late (the loop was busy) still reports it, once.
        let mut later = WarnLimit::default();
        for _ in 0..=WARN_BURST {
            later.allow(0, "failed logins");
        }
        assert_eq!(later.flush(3 * WARN_WINDOW_MS), Some((1, "failed logins")));
        assert_eq!(later.flush(3 * WARN_WINDOW_MS), None);
    }
}
