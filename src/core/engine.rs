//! The engine: tracker + config + outbox, driven by the caller's clock.
//!
//! ```text
//! Msg ──handle(now)──► Tracker ──Derived──► expand (config) ──► Outbox
//!                                                             │
//!         complete(ticket, Outcome, now) ◄── worker ◄── next_job(now)
//! ```
//! The caller (daemon, C API, tests) does all I/O; the engine says what to send and how long it
//! may sleep ([`Engine::poll_delay`]).

use super::config::Config;
use super::event::Event;
use super::hook::Msg;
use super::id::{delivery_id, Key};
use super::outbox::{
    backoff_ms, Notification, Outbox, Pushed, Settled, Ticket, OUTBOX_BYTES_CAP, OUTBOX_CAP,
};
use super::template::Encoding;
use super::tracker::{DerivedList, TrackError, TrackStats, Tracker};
use super::var::{Var, VarSource, Vars};
use core::fmt::{self, Write};

/// The variables one event is expanded with, looked up in layers rather than copied into one
/// set: `$event`, `$timestamp` and `$delivery_id` of this notification; then the event's own
/// values (from the message and the tracker) where set; then the device's. `$duration` is
/// empty outside call events.
struct EventVars<'a> {
    own: &'a Vars,
    device: &'a Vars,
    event: Event,
    timestamp: &'a str,
    id: &'a str,
}

impl VarSource for EventVars<'_> {
    fn value(&self, v: Var) -> &str {
        match v {
            Var::Event => self.event.key(),
            Var::Timestamp => self.timestamp,
            Var::DeliveryId => self.id,
            Var::Duration if !self.event.is_call_event() => "",
            _ => match self.own.get(v) {
                "" => self.device.get(v),
                own => own,
            },
        }
    }
}

/// The caller's clock, read once per call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Now {
    /// Monotonic milliseconds (CLOCK_BOOTTIME in the daemon: time asleep counts).
    pub ms: u64,
    /// Unix time in seconds, for `$timestamp`.
    pub unix_s: u64,
}

/// Why an attempt failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    Connect,
    Timeout,
    Tls,
    /// The server answered with this status.
    Status(u16),
    /// The server answered with a redirect (3xx). Not followed, not retried: the URL is wrong.
    Redirect(u16),
    /// The expanded URL cannot be sent (a port from a variable that is not 1..65535).
    BadUrl,
    /// Any other transport or protocol error.
    Io,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Connect => f.write_str("connect-error"),
            Failure::Timeout => f.write_str("timeout"),
            Failure::Tls => f.write_str("tls-error"),
            Failure::Status(s) => write!(f, "{s}"),
            Failure::Redirect(s) => write!(f, "redirect-{s}"),
            Failure::BadUrl => f.write_str("bad-url"),
            Failure::Io => f.write_str("io-error"),
        }
    }
}

/// The result of one attempt, as the delivery layer saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx.
    Delivered(u16),
    Failed {
        why: Failure,
        /// From `Retry-After`, in milliseconds.
        retry_after_ms: Option<u64>,
    },
}

impl Outcome {
    /// Classifies an HTTP status: 2xx delivered; 3xx a redirect (failed, not retried: a
    /// redirect is not a delivery); anything else failed.
    pub fn from_status(status: u16, retry_after_ms: Option<u64>) -> Outcome {
        if (200..300).contains(&status) {
            Outcome::Delivered(status)
        } else if (300..400).contains(&status) {
            Outcome::Failed {
                why: Failure::Redirect(status),
                retry_after_ms: None,
            }
        } else {
            Outcome::Failed {
                why: Failure::Status(status),
                retry_after_ms,
            }
        }
    }
}

impl Failure {
    /// Connection failure, timeout, 408, 429 and 5xx are retried; other 4xx never.
    pub const fn retryable(self) -> bool {
        match self {
            Failure::Connect | Failure::Timeout | Failure::Io => true,
            Failure::Tls | Failure::Redirect(_) | Failure::BadUrl => false,
            Failure::Status(s) => s == 408 || s == 429 || s >= 500 || s < 200,
        }
    }
}

/// A notification to send: a copy the caller can hand to another thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    pub ticket: Ticket,
    pub n: Notification,
}

/// Delivery result of the last attempt of one event's notifications.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LastResult {
    pub at_unix: u64,
    pub attempt: u32,
    pub outcome: Outcome,
}

/// Per-event counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventStats {
    pub derived: u64,
    pub queued: u64,
    pub delivered: u64,
    pub retried: u64,
    /// Gave up: refused for good (4xx, redirect, TLS), or too old / out of attempts.
    pub failed: u64,
    /// Dropped because the outbox was full.
    pub dropped: u64,
    pub last: Option<LastResult>,
}

/// Engine-wide counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub messages: u64,
    /// Derived events whose event is not configured (or disabled).
    pub not_configured: u64,
    /// Expansion longer than the URL or body buffer: not sent.
    pub too_long: u64,
    /// Messages that derived nothing because of a [`TrackError`].
    pub track_errors: u64,
    /// Notifications taken back from the spool at start.
    pub replayed: u64,
}

/// What one message did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Handled {
    pub derived: u8,
    pub queued: u8,
    /// Notifications dropped from the outbox to make room.
    pub dropped: u8,
}

/// The in-flight limit: how many attempts may run at once (the daemon's most delivery workers,
/// spawned as needed). At most one attempt per destination is in flight, and retries (failing
/// destinations) may hold at most `MAX_IN_FLIGHT - HEALTHY_RESERVE` of them, so a healthy
/// destination always finds a worker (see [`super::outbox::HEALTHY_RESERVE`]).
pub const MAX_IN_FLIGHT: usize = 32;

/// The engine.
pub struct Engine {
    config: Config,
    tracker: Tracker,
    outbox: Outbox,
    rng: u64,
    pub stats: Stats,
    pub events: [EventStats; Event::COUNT],
    derived: DerivedList,
    /// The tracker's scratch set for a message's normalized values.
    norm: Vars,
    note: Notification,
    /// This daemon start's number (the delivery ids' middle part).
    boot: u32,
    /// The last notification's sequence number in this start.
    last_seq: u64,
}

/// A record of something the caller should log (the engine does no I/O).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Note {
    Dropped(Event),
    TooLong(Event),
    /// Gave up after this many attempts (refused for good, or too old / out of attempts).
    GaveUp(Event, Failure, u32),
    Retry(Event, Failure, u32, u64),
}

impl Engine {
    /// A boxed engine (a few KiB inline: the notification being built and the outbox's lent one).
    pub fn new(config: Config, seed: u64) -> Box<Engine> {
        Box::new(Engine {
            config,
            tracker: Tracker::new(),
            outbox: Outbox::new(),
            rng: seed | 1,
            stats: Stats::default(),
            events: [EventStats::default(); Event::COUNT],
            derived: DerivedList::new(),
            norm: Vars::new(),
            note: Notification::empty(),
            boot: 0,
            last_seq: 0,
        })
    }

    /// Sets this start's number, from the start counter on the data partition: delivery ids
    /// are `<mac>-<boot>-<seq>`. Call before the first message.
    pub fn set_boot(&mut self, boot: u32) {
        self.boot = boot;
    }

    pub fn boot(&self) -> u32 {
        self.boot
    }

    /// Every notification held, oldest first, with whether its destination is failing.
    pub fn for_each_pending(&self, f: impl FnMut(&Notification, bool)) {
        self.outbox.for_each(f)
    }

    /// Queues a notification found in the spool at start, as it was (same id, URL, body and
    /// headers). Its credentials and signing secret come from the config in force, since the
    /// spool holds no secret. Returns whether it was queued.
    pub fn replay(&mut self, n: &mut Notification, now: Now, notes: &mut dyn FnMut(Note)) -> bool {
        if let Some(cfg) = self.config.event(n.event) {
            n.credentials.clone_from(&cfg.credentials);
            n.secret = cfg
                .signing_secret
                .clone()
                .or_else(|| self.config.delivery.signing_secret.clone());
        }
        n.max_age_ms = self.config.delivery.max_age_s as u64 * 1000;
        self.stats.replayed += 1;
        let events = &mut self.events;
        let pushed = self.outbox.push(n, now.ms, &mut |victim| {
            events[victim.index()].dropped += 1;
            notes(Note::Dropped(victim));
        });
        match pushed {
            Pushed::Queued | Pushed::DroppedOldest(_) => true,
            Pushed::Refused => {
                self.events[n.event.index()].dropped += 1;
                notes(Note::Dropped(n.event));
                false
            }
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Replaces the config. Queued notifications keep the URL they were expanded with.
    pub fn set_config(&mut self, config: Config) {
        self.config = config;
    }

    pub fn tracker_stats(&self) -> &TrackStats {
        &self.tracker.stats
    }

    pub fn pending(&self) -> usize {
        self.outbox.len()
    }

    pub fn in_flight(&self) -> usize {
        self.outbox.in_flight()
    }

    pub fn calls(&self) -> usize {
        self.tracker.calls()
    }

    fn rand(&mut self) -> u32 {
        // xorshift64
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        (x >> 32) as u32
    }

    /// Handles one message: derives its events, expands the configured ones and queues them.
    /// `device` holds the device variables at this moment; a direct event's own values win.
    /// `notes` receives what is worth logging.
    pub fn handle(
        &mut self,
        msg: &Msg,
        device: &Vars,
        now: Now,
        notes: &mut dyn FnMut(Note),
    ) -> Result<Handled, TrackError> {
        self.stats.messages += 1;
        // Derived in place: the list (three slots of 2.4 KiB variable sets) is neither moved
        // out and back nor rebuilt per message.
        let r = self
            .tracker
            .on_msg_with(msg, now.ms, &mut self.derived, &mut self.norm);
        if r.is_err() {
            self.stats.track_errors += 1;
        }
        let mut h = Handled {
            derived: self.derived.len() as u8,
            ..Handled::default()
        };
        for k in 0..self.derived.len() {
            let event = self.derived[k].event;
            self.events[event.index()].derived += 1;
            let (queued, dropped) = self.queue(k, device, now, notes);
            h.queued += queued as u8;
            h.dropped += dropped as u8;
        }
        r.map(|_| h)
    }

    /// Expands derived event `k` with its variables over `device` and queues it. Returns
    /// (queued, dropped one).
    fn queue(
        &mut self,
        k: usize,
        device: &Vars,
        now: Now,
        notes: &mut dyn FnMut(Note),
    ) -> (bool, bool) {
        let d = &self.derived[k];
        let event = d.event;
        let Some(cfg) = self.config.event(event) else {
            self.stats.not_configured += 1;
            return (false, false);
        };
        let mut timestamp = heapless::String::<20>::new();
        super::var::push_u64(&mut timestamp, now.unix_s);
        let n = &mut self.note;
        n.event = event;
        n.method = cfg.method;
        n.content_type = if cfg.body.is_some() {
            cfg.content_type
        } else {
            ""
        };
        n.credentials.clone_from(&cfg.credentials);
        n.max_attempts = if event == Event::BootingCompleted {
            0
        } else {
            self.config.delivery.attempts
        };
        n.max_age_ms = self.config.delivery.max_age_s as u64 * 1000;
        self.last_seq += 1;
        n.key = Key {
            boot: self.boot,
            seq: self.last_seq,
        };
        let mac = match d.vars.get(Var::Mac) {
            "" => device.get(Var::Mac),
            own => own,
        };
        n.id = delivery_id(mac, self.boot, self.last_seq);
        let v = EventVars {
            own: &d.vars,
            device,
            event,
            timestamp: &timestamp,
            id: &n.id,
        };
        n.secret = cfg
            .signing_secret
            .clone()
            .or_else(|| self.config.delivery.signing_secret.clone());
        n.headers.clear();
        let mut headers_ok = true;
        for (name, t) in &cfg.headers {
            headers_ok &= write!(n.headers, "{name}: ").is_ok()
                && t.write_to(&v, Encoding::Percent, &mut n.headers).is_ok()
                && n.headers.push('\n').is_ok();
        }
        let url_ok = headers_ok && cfg.url.expand(&v, Encoding::Percent, &mut n.url).is_ok();
        let body_ok = match &cfg.body {
            Some(b) => b.expand(&v, cfg.body_encoding, &mut n.body).is_ok(),
            None => {
                n.body.clear();
                true
            }
        };
        if !(url_ok && body_ok) {
            self.stats.too_long += 1;
            self.events[event.index()].failed += 1;
            notes(Note::TooLong(event));
            return (false, false);
        }
        self.events[event.index()].queued += 1;
        let events = &mut self.events;
        let pushed = self.outbox.push(&self.note, now.ms, &mut |victim| {
            events[victim.index()].dropped += 1;
            notes(Note::Dropped(victim));
        });
        match pushed {
            Pushed::Queued => (true, false),
            Pushed::DroppedOldest(_) => (true, true),
            Pushed::Refused => {
                self.events[event.index()].dropped += 1;
                notes(Note::Dropped(event));
                (false, true)
            }
        }
    }

    /// The next notification to send now, if any (marked in flight until [`Engine::complete`]).
    pub fn next_job(&mut self, now: Now) -> Option<Job> {
        self.outbox
            .next_due(now.ms, MAX_IN_FLIGHT)
            .map(|(ticket, n)| Job {
                ticket,
                n: n.clone(),
            })
    }

    /// Like [`Engine::next_job`], but lends the notification instead of copying it.
    pub fn next_job_ref(&mut self, now: Now) -> Option<(Ticket, &Notification)> {
        self.outbox.next_due(now.ms, MAX_IN_FLIGHT)
    }

    /// How long the caller may sleep before something is due: `None` = until a message comes or
    /// an attempt completes.
    pub fn poll_delay(&self, now: Now) -> Option<u64> {
        self.outbox.poll_delay(now.ms, MAX_IN_FLIGHT)
    }

    /// The event of a notification being sent, if it is still in the outbox.
    pub fn event_of(&self, ticket: Ticket) -> Option<Event> {
        self.outbox.event(ticket.id)
    }

    /// A copy of the notification being sent under `ticket`, if it is still in the outbox.
    pub fn in_flight_notification(&self, ticket: Ticket) -> Option<Notification> {
        self.outbox.get(ticket.id)
    }

    /// Records the outcome of an attempt and schedules the retry if there is one.
    pub fn complete(
        &mut self,
        ticket: Ticket,
        outcome: Outcome,
        now: Now,
        notes: &mut dyn FnMut(Note),
    ) {
        let Some(event) = self.outbox.event(ticket.id) else {
            return;
        };
        let d = &self.config.delivery;
        let retry_at = match outcome {
            Outcome::Delivered(_) => None,
            Outcome::Failed {
                why,
                retry_after_ms,
            } if why.retryable() => {
                let (initial, max) = (d.backoff_initial_ms, d.backoff_max_ms);
                let r = self.rand();
                let wait = backoff_ms(initial, max, ticket.attempt, r);
                let wait = retry_after_ms.map_or(wait, |ra| ra.min(max as u64).max(wait));
                Some(now.ms + wait)
            }
            Outcome::Failed { .. } => None,
        };
        let stats = &mut self.events[event.index()];
        stats.last = Some(LastResult {
            at_unix: now.unix_s,
            attempt: ticket.attempt,
            outcome,
        });
        match (self.outbox.complete(ticket.id, retry_at, now.ms), outcome) {
            (Some((_, Settled::RetryAt(t))), Outcome::Failed { why, .. }) => {
                stats.retried += 1;
                notes(Note::Retry(
                    event,
                    why,
                    ticket.attempt,
                    t.saturating_sub(now.ms),
                ));
            }
            (Some((_, Settled::Removed)), Outcome::Delivered(_)) => stats.delivered += 1,
            (Some((_, Settled::Removed | Settled::GaveUp)), Outcome::Failed { why, .. }) => {
                stats.failed += 1;
                notes(Note::GaveUp(event, why, ticket.attempt));
            }
            _ => {}
        }
    }

    /// Writes the counters as `key value` lines, then one `event` line per event.
    pub fn write_status(&self, out: &mut impl Write) -> fmt::Result {
        let sum = |f: fn(&EventStats) -> u64| self.events.iter().map(f).sum::<u64>();
        let t = &self.tracker.stats;
        let lines: [(&str, u64); 17] = [
            ("messages", self.stats.messages),
            ("events", sum(|e| e.derived)),
            ("queued", sum(|e| e.queued)),
            ("delivered", sum(|e| e.delivered)),
            ("retried", sum(|e| e.retried)),
            ("failed", sum(|e| e.failed)),
            ("dropped", sum(|e| e.dropped)),
            ("not_configured", self.stats.not_configured),
            ("too_long", self.stats.too_long),
            ("duplicates", t.duplicates),
            ("unknown_call", t.unknown_call),
            ("call_table_full", t.call_table_full),
            ("account_table_full", t.account_table_full),
            ("pending", self.outbox.len() as u64),
            ("in_flight", self.outbox.in_flight() as u64),
            ("outbox_bytes", self.outbox.bytes() as u64),
            ("calls", self.tracker.calls() as u64),
        ];
        for (k, v) in lines {
            writeln!(out, "{k} {v}")?;
        }
        writeln!(out, "outbox_capacity {OUTBOX_CAP}")?;
        writeln!(out, "outbox_bytes_capacity {OUTBOX_BYTES_CAP}")?;
        for e in Event::ALL {
            let s = &self.events[e.index()];
            let state = match self.config.events[e.index()].as_ref() {
                None => "off",
                Some(c) if !c.enabled => "disabled",
                Some(_) => "on",
            };
            write!(
                out,
                "event {} {state} derived={} queued={} delivered={} retried={} failed={} dropped={}",
                e.key(),
                s.derived,
                s.queued,
                s.delivered,
                s.retried,
                s.failed,
                s.dropped
            )?;
            match s.last {
                None => writeln!(out, " last=-")?,
                Some(l) => {
                    let r = match l.outcome {
                        Outcome::Delivered(code) => code as i64,
                        Outcome::Failed {
                            why: Failure::Status(code) | Failure::Redirect(code),
                            ..
                        } => code as i64,
                        Outcome::Failed { .. } => -1,
                    };
                    match l.outcome {
                        Outcome::Failed { why, .. } if r < 0 => {
                            writeln!(out, " last={why} attempt={} at={}", l.attempt, l.at_unix)?
                        }
                        _ => writeln!(out, " last={r} attempt={} at={}", l.attempt, l.at_unix)?,
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::hook::{CallState, Kind};

    fn engine(json: &str) -> Box<Engine> {
        Engine::new(Config::from_json(json).unwrap().0, 42)
    }

    fn now(ms: u64) -> Now {
        Now {
            ms,
            unix_s: 1_700_000_000 + ms / 1000,
        }
    }

    #[test]
    fn a_call_becomes_expanded_requests() {
        let mut e = engine(
            r#"{"events": {"incoming_call": "192.168.5.10:8080/in?from=$remote&name=$display_remote&ip=$phone_ip&ev=$event&t=$timestamp",
                           "terminate_call": {"url": "https://crm.example/end", "method": "POST",
                                              "body": "{\"id\":\"$call_id\",\"t\":$duration,\"n\":\"$display_remote\"}", "content_type": "json"}}}"#,
        );
        let mut device = Vars::new();
        device.set(Var::PhoneIp, "10.1.2.3");
        let inc = Msg::new(Kind::Call(CallState::Incoming))
            .with(Var::CallId, "a84b")
            .with(Var::Remote, "sip:1002@pbx")
            .with(Var::DisplayRemote, "Bob \"B\" & Alice");
        let h = e.handle(&inc, &device, now(0), &mut |_| {}).unwrap();
        assert_eq!(
            h,
            Handled {
                derived: 1,
                queued: 1,
                dropped: 0
            }
        );
        let job = e.next_job(now(0)).unwrap();
        assert_eq!(
            job.n.url.as_str(),
            "http://192.168.5.10:8080/in?from=1002&name=Bob%20%22B%22%20%26%20Alice&ip=10.1.2.3&ev=incoming_call&t=1700000000"
        );
        e.complete(job.ticket, Outcome::Delivered(200), now(5), &mut |_| {});
        e.handle(
            &Msg::new(Kind::Call(CallState::Confirmed)).with(Var::CallId, "a84b"),
            &device,
            now(1_000),
            &mut |_| {},
        )
        .unwrap();
        e.handle(
            &Msg::new(Kind::Call(CallState::Ended)).with(Var::CallId, "a84b"),
            &device,
            now(62_400),
            &mut |_| {},
        )
        .unwrap();
        let job = e.next_job(now(62_400)).unwrap();
        assert_eq!(job.n.url.as_str(), "https://crm.example/end");
        assert_eq!(
            job.n.body.as_str(),
            r#"{"id":"a84b","t":61,"n":"Bob \"B\" & Alice"}"#
        );
        assert_eq!(job.n.content_type, "application/json");
        assert!(e.next_job(now(62_400)).is_none());
    }

    #[test]
    fn an_event_sees_its_own_values_over_the_device_and_the_notification_over_both() {
        let mut e = engine(
            r#"{"events": {"dnd_on": {"url": "h/$event/$timestamp/$delivery_id/d=$duration/$phone_ip/$mac/$language/$remote", "headers": {"X-Id": "$delivery_id $mac"}}}}"#,
        );
        let mut device = Vars::new();
        device.set(Var::PhoneIp, "10.1.2.3");
        device.set(Var::Mac, "000b82aabbcc");
        device.set(Var::Language, "de");
        // A message may name any variable: the notification's own three win, `$duration`
        // stays empty outside call events, and a value it sets wins over the device's.
        let m = Msg::new(Kind::Direct(Event::DndOn))
            .with(Var::Event, "fake")
            .with(Var::Timestamp, "1")
            .with(Var::DeliveryId, "zz")
            .with(Var::Duration, "9")
            .with(Var::PhoneIp, "10.9.9.9")
            .with(Var::Remote, "sip:1002@pbx");
        e.handle(&m, &device, now(0), &mut |_| {}).unwrap();
        let job = e.next_job(now(0)).unwrap();
        assert_eq!(
            job.n.url.as_str(),
            "http://h/dnd_on/1700000000/000b82aabbcc-0-1/d=/10.9.9.9/000b82aabbcc/de/1002"
        );
        assert_eq!(
            job.n.headers.as_str(),
            "X-Id: 000b82aabbcc-0-1 000b82aabbcc\n"
        );
        // The MAC of the id is the message's when it names one.
        let m = Msg::new(Kind::Direct(Event::DndOn)).with(Var::Mac, "00000000beef");
        e.handle(&m, &device, now(0), &mut |_| {}).unwrap();
        e.complete(job.ticket, Outcome::Delivered(200), now(1), &mut |_| {});
        let job = e.next_job(now(1)).unwrap();
        assert!(
            job.n
                .url
                .starts_with("http://h/dnd_on/1700000000/00000000beef-0-2/"),
            "{}",
            job.n.url
        );
    }

    #[test]
    fn retry_schedule_and_giving_up() {
        let mut e = engine(
            r#"{"events": {"dnd_on": "h/x"}, "delivery": {"attempts": 3, "backoff_initial_ms": 100, "backoff_max_ms": 1000}}"#,
        );
        e.handle(
            &Msg::new(Kind::Dnd(true)),
            &Vars::new(),
            now(0),
            &mut |_| {},
        )
        .unwrap();
        let j = e.next_job(now(0)).unwrap();
        let fail = |code| Outcome::Failed {
            why: Failure::Status(code),
            retry_after_ms: None,
        };
        e.complete(j.ticket, fail(503), now(10), &mut |_| {});
        let d = e.poll_delay(now(10)).unwrap();
        assert!((50..=100).contains(&d), "{d}");
        let j = e.next_job(now(10 + d)).unwrap();
        assert_eq!(j.ticket.attempt, 2);
        e.complete(j.ticket, fail(503), now(200), &mut |_| {});
        let j = e.next_job(now(1_000)).unwrap();
        let mut gave_up = false;
        e.complete(
            j.ticket,
            Outcome::Failed {
                why: Failure::Connect,
                retry_after_ms: None,
            },
            now(1_000),
            &mut |n| gave_up |= matches!(n, Note::GaveUp(Event::DndOn, Failure::Connect, 3)),
        );
        assert!(gave_up);
        assert_eq!(e.pending(), 0);
        assert_eq!(e.events[Event::DndOn.index()].failed, 1);
        assert_eq!(e.events[Event::DndOn.index()].retried, 2);
    }

    #[test]
    fn client_errors_are_not_retried_but_408_429_are() {
        for (code, retried) in [
            (404, false),
            (400, false),
            (401, false),
            (408, true),
            (429, true),
            (500, true),
            (503, true),
        ] {
            assert_eq!(Failure::Status(code).retryable(), retried, "{code}");
        }
        let mut e = engine(r#"{"events": {"dnd_on": "h/x"}}"#);
        e.handle(
            &Msg::new(Kind::Dnd(true)),
            &Vars::new(),
            now(0),
            &mut |_| {},
        )
        .unwrap();
        let j = e.next_job(now(0)).unwrap();
        e.complete(
            j.ticket,
            Outcome::from_status(404, None),
            now(1),
            &mut |_| {},
        );
        assert_eq!(e.pending(), 0);
    }

    #[test]
    fn booting_completed_never_runs_out_of_attempts() {
        let mut e = engine(
            r#"{"events": {"booting_completed": "h/boot?mac=$mac"}, "delivery": {"attempts": 1}}"#,
        );
        e.handle(&Msg::new(Kind::Boot), &Vars::new(), now(0), &mut |_| {})
            .unwrap();
        for i in 0..20 {
            let j = e.next_job(now(u64::MAX / 2)).unwrap();
            assert_eq!(j.ticket.attempt, i + 1);
            e.complete(
                j.ticket,
                Outcome::Failed {
                    why: Failure::Connect,
                    retry_after_ms: None,
                },
                now(0),
                &mut |_| {},
            );
        }
        assert_eq!(e.pending(), 1);
    }

    #[test]
    fn overflow_is_counted() {
        let mut e = engine(r#"{"events": {"dnd_on": "h/x", "dnd_off": "h/y"}}"#);
        for i in 0..(OUTBOX_CAP + 3) {
            e.handle(
                &Msg::new(Kind::Dnd(i % 2 == 0)),
                &Vars::new(),
                now(0),
                &mut |_| {},
            )
            .unwrap();
        }
        let dropped: u64 = e.events.iter().map(|s| s.dropped).sum();
        assert_eq!(dropped, 3);
        assert_eq!(e.pending(), OUTBOX_CAP);
        let mut s = std::string::String::new();
        e.write_status(&mut s).unwrap();
        assert!(s.contains("dropped 3\n"), "{s}");
    }

    #[test]
    fn device_values_of_a_direct_event_win_for_that_event_only() {
        let mut e = engine(r#"{"events": {"dnd_on": "h/x?ip=$phone_ip&d=$duration"}}"#);
        let mut device = Vars::new();
        device.set(Var::PhoneIp, "10.0.0.1");
        let m = Msg::new(Kind::Direct(Event::DndOn)).with(Var::PhoneIp, "10.9.9.9");
        e.handle(&m, &device, now(0), &mut |_| {}).unwrap();
        assert_eq!(
            e.next_job(now(0)).unwrap().n.url.as_str(),
            "http://h/x?ip=10.9.9.9&d="
        );
    }
}
