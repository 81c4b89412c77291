//! The bounded outbox: notifications waiting to be sent, per-destination order, retry schedule.
//!
//! - Capacity [`OUTBOX_CAP`]. When full, the oldest notification that is not being sent right
//!   now is dropped to make room (the newest state reaches the server); the caller counts it.
//! - Per destination (scheme, lower-cased host, port with the scheme's default filled in) only
//!   the oldest notification is eligible, and at most one is in flight: notifications to one
//!   destination arrive in the order of their events. Destinations never wait on each other.
//! - Fairness: a destination whose head notification is being retried (it failed before) may
//!   hold at most `max_in_flight - HEALTHY_RESERVE` attempts at once, so failing destinations can
//!   never take the last workers from a healthy one.
//! - Give-up rule: a failed attempt is retried while the notification is younger than its
//!   `max_age_ms` (0 = no age limit) and, if `max_attempts` is not 0, attempts remain.

use super::config::Method;
use super::event::Event;
use super::id::{DeliveryId, Key};
use super::secret::Secret;
use super::template::{Credentials, BODY_CAP, HEADERS_CAP, URL_CAP};
use heapless::{String, Vec};

/// Notifications held at once (waiting, backing off, or in flight).
#[cfg(not(test))]
pub const OUTBOX_CAP: usize = 128;
#[cfg(test)]
pub const OUTBOX_CAP: usize = 4;

/// One request to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    pub event: Event,
    pub method: Method,
    pub url: String<URL_CAP>,
    pub body: String<BODY_CAP>,
    pub content_type: &'static str,
    pub credentials: Option<Credentials>,
    /// Attempts allowed, the first included; 0 = until delivered (or too old).
    pub max_attempts: u32,
    /// Age after which a failed notification is given up, in ms; 0 = no age limit.
    pub max_age_ms: u64,
    /// Orders it among all notifications of this phone and names it in the spool.
    pub key: Key,
    /// Sent as `X-Event-Notify-Id`: the same on every attempt.
    pub id: DeliveryId,
    /// The event's extra headers, expanded: `Name: value` lines, each ending in `\n`.
    pub headers: String<HEADERS_CAP>,
    /// Signs each attempt when set.
    pub secret: Option<Secret>,
}

impl Notification {
    pub const fn empty() -> Notification {
        Notification {
            event: Event::IncomingCall,
            method: Method::Get,
            url: String::new(),
            body: String::new(),
            content_type: "",
            credentials: None,
            max_attempts: 1,
            max_age_ms: 0,
            key: Key { boot: 0, seq: 0 },
            id: String::new(),
            headers: String::new(),
            secret: None,
        }
    }

    /// `scheme://authority` of the URL, as written.
    pub fn destination(&self) -> &str {
        destination(&self.url)
    }
}

/// The `scheme://authority` prefix of a URL.
pub fn destination(url: &str) -> &str {
    let start = url.find("://").map(|i| i + 3).unwrap_or(0);
    let end = url[start..]
        .find(['/', '?', '#'])
        .map(|i| start + i)
        .unwrap_or(url.len());
    &url[..end]
}

/// The destination of a URL, the unit of ordering and of fairness: lower-cased scheme
/// (`http` when none), lower-cased host without user-info, and the port with the scheme's
/// default filled in (`http://H/a` and `http://h:80/b` are one destination).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Destination<'a> {
    pub https: bool,
    pub host: &'a str,
    pub port: u16,
}

impl<'a> Destination<'a> {
    /// Parses the destination of `url`. A port that is not a number from 1 to 65535 gives port
    /// 0 (delivery refuses such a URL; the config loader refuses it first).
    pub fn of(url: &'a str) -> Destination<'a> {
        let (https, start) = match url.find("://") {
            Some(i) => (url[..i].eq_ignore_ascii_case("https"), i + 3),
            None => (false, 0),
        };
        let auth = &url[start..];
        let auth = &auth[..auth.find(['/', '?', '#']).unwrap_or(auth.len())];
        let auth = &auth[auth.rfind('@').map_or(0, |i| i + 1)..];
        let default = if https { 443 } else { 80 };
        // "[v6]:port" or "host:port"
        let (host, port) = if let Some(rest) = auth.strip_prefix('[') {
            match rest.find(']') {
                Some(e) => (&auth[..e + 2], rest[e + 1..].strip_prefix(':')),
                None => (auth, None),
            }
        } else {
            match auth.rfind(':') {
                Some(c) => (&auth[..c], Some(&auth[c + 1..])),
                None => (auth, None),
            }
        };
        let port = match port {
            None | Some("") => default,
            Some(p) => parse_port(p).unwrap_or(0),
        };
        Destination { https, host, port }
    }

    fn hash(&self) -> u64 {
        // FNV-1a over scheme, lower-cased host and port.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |b: u8| {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        };
        eat(u8::from(self.https));
        for b in self.host.bytes() {
            eat(b.to_ascii_lowercase());
        }
        eat(0);
        for b in self.port.to_be_bytes() {
            eat(b);
        }
        h
    }
}

/// A port number: 1 to 5 ASCII digits, 1 to 65535.
pub fn parse_port(p: &str) -> Option<u16> {
    if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    p.parse::<u16>().ok().filter(|&n| n != 0)
}

fn dest_hash(url: &str) -> u64 {
    Destination::of(url).hash()
}

#[derive(Clone, Debug)]
struct Slot {
    n: Notification,
    seq: u64,
    dest: u64,
    /// Attempts made so far.
    attempts: u32,
    due_ms: u64,
    /// When it was queued.
    born_ms: u64,
    in_flight: bool,
}

const EMPTY_SLOT: Slot = Slot {
    n: Notification::empty(),
    seq: 0,
    dest: 0,
    attempts: 0,
    due_ms: 0,
    born_ms: 0,
    in_flight: false,
};

/// Attempts kept free for destinations that are not failing: a destination whose head
/// notification is a retry may start an attempt only while fewer than
/// `max_in_flight - HEALTHY_RESERVE` retries are in flight.
pub const HEALTHY_RESERVE: usize = 8;

/// A notification handed out for sending. `id` comes back with [`Outbox::complete`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ticket {
    pub id: u64,
    /// Which attempt this is, from 1.
    pub attempt: u32,
}

/// What [`Outbox::push`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pushed {
    Queued,
    /// Queued, after dropping the oldest waiting notification (of this event).
    DroppedOldest(Event),
    /// Not queued: full, and every notification is in flight.
    Refused,
}

/// What became of a notification after an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settled {
    /// Still in the outbox, due again at this time.
    RetryAt(u64),
    /// Removed: delivered, or refused for good.
    Removed,
    /// Removed: failed, and out of attempts or older than its age limit.
    GaveUp,
}

/// The outbox. Fixed storage: `OUTBOX_CAP` slots and an index array in arrival order.
pub struct Outbox {
    /// Reserved for `OUTBOX_CAP` slots at start (never reallocated), filled as slots are first
    /// used: the untouched part of the reservation stays out of resident memory, so an idle
    /// daemon does not pay ~300 KiB for a full outbox it has never needed.
    slots: std::vec::Vec<Slot>,
    /// Slot indices in arrival (sequence) order.
    order: Vec<u16, OUTBOX_CAP>,
    free: Vec<u16, OUTBOX_CAP>,
    next_seq: u64,
}

impl Default for Outbox {
    fn default() -> Self {
        Outbox::new()
    }
}

impl Outbox {
    pub fn new() -> Outbox {
        let mut free = Vec::new();
        for i in (0..OUTBOX_CAP as u16).rev() {
            let _ = free.push(i);
        }
        Outbox {
            slots: std::vec::Vec::with_capacity(OUTBOX_CAP),
            order: Vec::new(),
            free,
            next_seq: 1,
        }
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    pub fn in_flight(&self) -> usize {
        self.order
            .iter()
            .filter(|&&i| self.slots[i as usize].in_flight)
            .count()
    }

    /// Queues a notification, due at once. When full, drops the oldest notification that is not
    /// in flight; if every one is in flight, the new one is refused.
    pub fn push(&mut self, n: &Notification, now_ms: u64) -> Pushed {
        let mut dropped = None;
        if self.free.is_empty() {
            let victim = self
                .order
                .iter()
                .position(|&i| !self.slots[i as usize].in_flight);
            match victim {
                Some(pos) => {
                    let idx = self.order.remove(pos);
                    dropped = Some(self.slots[idx as usize].n.event);
                    let _ = self.free.push(idx);
                }
                None => return Pushed::Refused,
            }
        }
        let Some(idx) = self.free.pop() else {
            return Pushed::Refused;
        };
        // First use of this slot: extend the slots in the reservation (no reallocation: idx <
        // OUTBOX_CAP = the capacity).
        while self.slots.len() <= idx as usize {
            self.slots.push(EMPTY_SLOT);
        }
        let slot = &mut self.slots[idx as usize];
        slot.n.clone_from(n);
        slot.seq = self.next_seq;
        slot.dest = dest_hash(&n.url);
        slot.attempts = 0;
        slot.due_ms = now_ms;
        slot.born_ms = now_ms;
        slot.in_flight = false;
        self.next_seq += 1;
        let _ = self.order.push(idx);
        match dropped {
            Some(e) => Pushed::DroppedOldest(e),
            None => Pushed::Queued,
        }
    }

    /// Walks the destination heads in arrival order: `f(slot index)` for the oldest notification
    /// of each destination that is not in flight and has no older one in flight.
    fn heads(&self, mut f: impl FnMut(usize) -> bool) {
        let mut seen = Vec::<u64, OUTBOX_CAP>::new();
        for &i in &self.order {
            let s = &self.slots[i as usize];
            if seen.contains(&s.dest) {
                continue;
            }
            let _ = seen.push(s.dest);
            if !s.in_flight && f(i as usize) {
                return;
            }
        }
    }

    /// The next notification to send now, marked in flight; `None` when nothing is due or
    /// `max_in_flight` are already being sent.
    pub fn next_due(
        &mut self,
        now_ms: u64,
        max_in_flight: usize,
    ) -> Option<(Ticket, &Notification)> {
        let (all, retries) = self.in_flight_split();
        if all >= max_in_flight {
            return None;
        }
        let retry_room = retries < max_in_flight.saturating_sub(HEALTHY_RESERVE).max(1);
        let mut found = None;
        self.heads(|i| {
            let s = &self.slots[i];
            if s.due_ms <= now_ms && (s.attempts == 0 || retry_room) {
                found = Some(i);
                true
            } else {
                false
            }
        });
        let i = found?;
        let s = &mut self.slots[i];
        s.in_flight = true;
        s.attempts += 1;
        Some((
            Ticket {
                id: s.seq,
                attempt: s.attempts,
            },
            &s.n,
        ))
    }

    /// Milliseconds until a notification becomes due (0 = now), or `None` if none is waiting
    /// (empty, or everything waits behind an attempt in flight).
    pub fn poll_delay(&self, now_ms: u64, max_in_flight: usize) -> Option<u64> {
        let (all, retries) = self.in_flight_split();
        if all >= max_in_flight {
            return None;
        }
        let retry_room = retries < max_in_flight.saturating_sub(HEALTHY_RESERVE).max(1);
        let mut best: Option<u64> = None;
        self.heads(|i| {
            let s = &self.slots[i];
            if s.attempts > 0 && !retry_room {
                // Waits for a retry to end (which wakes the caller).
                return false;
            }
            let d = s.due_ms.saturating_sub(now_ms);
            best = Some(best.map_or(d, |b| b.min(d)));
            d == 0
        });
        best
    }

    /// (attempts in flight, of which retries: a notification's second or later attempt).
    fn in_flight_split(&self) -> (usize, usize) {
        let mut all = 0;
        let mut retries = 0;
        for &i in &self.order {
            let s = &self.slots[i as usize];
            if s.in_flight {
                all += 1;
                retries += usize::from(s.attempts > 1);
            }
        }
        (all, retries)
    }

    fn position(&self, id: u64) -> Option<usize> {
        self.order
            .iter()
            .position(|&i| self.slots[i as usize].seq == id)
    }

    /// The notification behind a ticket, if it is still there.
    pub fn get(&self, id: u64) -> Option<&Notification> {
        self.position(id)
            .map(|p| &self.slots[self.order[p] as usize].n)
    }

    /// Ends an attempt at `now_ms`. `retry_at` = `Some(t)`: try again at `t` if attempts remain
    /// and the notification is younger than its age limit; `None`: done (delivered or refused
    /// for good). Returns what happened.
    pub fn complete(
        &mut self,
        id: u64,
        retry_at: Option<u64>,
        now_ms: u64,
    ) -> Option<(Event, Settled)> {
        let pos = self.position(id)?;
        let idx = self.order[pos] as usize;
        let s = &mut self.slots[idx];
        s.in_flight = false;
        let event = s.n.event;
        let settled = match retry_at {
            Some(t) => {
                let attempts_left = s.n.max_attempts == 0 || s.attempts < s.n.max_attempts;
                let young =
                    s.n.max_age_ms == 0 || now_ms.saturating_sub(s.born_ms) < s.n.max_age_ms;
                if attempts_left && young {
                    s.due_ms = t;
                    return Some((event, Settled::RetryAt(t)));
                }
                Settled::GaveUp
            }
            None => Settled::Removed,
        };
        self.order.remove(pos);
        let _ = self.free.push(idx as u16);
        Some((event, settled))
    }

    /// Calls `f` for every notification held, oldest first, with whether its destination is
    /// failing: one of its notifications has failed an attempt and is waiting for (or making) a
    /// retry. The spool keeps exactly those.
    pub fn for_each(&self, mut f: impl FnMut(&Notification, bool)) {
        let mut failing = Vec::<u64, OUTBOX_CAP>::new();
        for &i in &self.order {
            let s = &self.slots[i as usize];
            let failed = s.attempts >= 2 || (s.attempts == 1 && !s.in_flight);
            if failed && !failing.contains(&s.dest) {
                let _ = failing.push(s.dest);
            }
        }
        for &i in &self.order {
            let s = &self.slots[i as usize];
            f(&s.n, failing.contains(&s.dest));
        }
    }

    /// Attempts made for a notification so far.
    pub fn attempts(&self, id: u64) -> Option<u32> {
        self.position(id)
            .map(|p| self.slots[self.order[p] as usize].attempts)
    }
}

/// Capped exponential back-off with "equal jitter": after the `failures`-th failure the delay
/// is `d = min(max, initial * 2^(failures-1))`, and the wait is uniform in `[d/2, d]`
/// (`rand` supplies the randomness, so the schedule is a pure function).
///
/// ```
/// use event_notify::core::outbox::backoff_ms;
/// assert_eq!(backoff_ms(500, 30_000, 1, 0), 250);
/// assert_eq!(backoff_ms(500, 30_000, 3, u32::MAX), 2_000);
/// assert!(backoff_ms(500, 30_000, 40, 7) <= 30_000);
/// ```
pub fn backoff_ms(initial_ms: u32, max_ms: u32, failures: u32, rand: u32) -> u64 {
    let exp = failures.saturating_sub(1).min(40);
    let d = (initial_ms as u64)
        .saturating_mul(1u64 << exp)
        .min(max_ms as u64);
    let half = d / 2;
    let span = d - half + 1;
    half + if rand == u32::MAX {
        span - 1
    } else {
        rand as u64 % span
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(event: Event, url: &str) -> Notification {
        let mut n = Notification::empty();
        n.event = event;
        n.url = String::try_from(url).unwrap();
        n.max_attempts = 3;
        n
    }

    #[test]
    fn order_per_destination_and_no_head_of_line_blocking() {
        let mut o = Outbox::new();
        o.push(&n(Event::IncomingCall, "http://a:80/1"), 0);
        o.push(&n(Event::EstablishCall, "http://a:80/2"), 0);
        o.push(&n(Event::DndOn, "http://b/1"), 0);
        let (t1, n1) = o.next_due(0, 8).unwrap();
        assert_eq!(n1.event, Event::IncomingCall);
        // a's second waits behind its first; b goes on.
        let (t2, n2) = o.next_due(0, 8).unwrap();
        assert_eq!(n2.event, Event::DndOn);
        assert!(o.next_due(0, 8).is_none());
        assert_eq!(o.poll_delay(0, 8), None);
        // a fails: retried later, and a/2 still waits behind it.
        assert_eq!(
            o.complete(t1.id, Some(1_000), 0),
            Some((Event::IncomingCall, Settled::RetryAt(1_000)))
        );
        assert!(o.next_due(500, 8).is_none());
        assert_eq!(o.poll_delay(500, 8), Some(500));
        let (t3, n3) = o.next_due(1_000, 8).unwrap();
        assert_eq!((n3.event, t3.attempt), (Event::IncomingCall, 2));
        o.complete(t3.id, None, 0);
        o.complete(t2.id, None, 0);
        let (_, n4) = o.next_due(1_000, 8).unwrap();
        assert_eq!(n4.event, Event::EstablishCall);
    }

    #[test]
    fn attempts_run_out() {
        let mut o = Outbox::new();
        o.push(&n(Event::DndOn, "http://a/"), 0);
        for attempt in 1..=3 {
            let (t, _) = o.next_due(u64::MAX, 8).unwrap();
            assert_eq!(t.attempt, attempt);
            let want = if attempt < 3 {
                Settled::RetryAt(5)
            } else {
                Settled::GaveUp
            };
            assert_eq!(o.complete(t.id, Some(5), 0).unwrap().1, want);
        }
        assert!(o.is_empty());
    }

    #[test]
    fn full_drops_the_oldest_not_in_flight() {
        let mut o = Outbox::new();
        let events = [
            Event::IncomingCall,
            Event::EstablishCall,
            Event::HoldCall,
            Event::ResumeCall,
        ];
        for e in events {
            assert_eq!(o.push(&n(e, "http://a/"), 0), Pushed::Queued);
        }
        let (t, _) = o.next_due(0, 8).unwrap(); // IncomingCall in flight
        assert_eq!(
            o.push(&n(Event::TerminateCall, "http://a/"), 0),
            Pushed::DroppedOldest(Event::EstablishCall)
        );
        assert_eq!(o.len(), OUTBOX_CAP);
        o.complete(t.id, None, 0);
        let mut got = std::vec::Vec::new();
        while let Some((t, n)) = o.next_due(0, 8) {
            got.push(n.event);
            o.complete(t.id, None, 0);
        }
        assert_eq!(
            got,
            [Event::HoldCall, Event::ResumeCall, Event::TerminateCall]
        );
    }

    #[test]
    fn in_flight_limit() {
        let mut o = Outbox::new();
        o.push(&n(Event::DndOn, "http://a/"), 0);
        o.push(&n(Event::DndOff, "http://b/"), 0);
        assert!(o.next_due(0, 1).is_some());
        assert!(o.next_due(0, 1).is_none());
        assert_eq!(o.poll_delay(0, 1), None);
    }

    #[test]
    fn backoff_is_capped_and_jittered() {
        for f in 1..50 {
            for r in [0, 1, 12345, u32::MAX] {
                let d = backoff_ms(200, 5_000, f, r);
                let full = (200u64 << (f - 1).min(40)).min(5_000);
                assert!(d >= full / 2 && d <= full, "f={f} r={r} d={d}");
            }
        }
    }

    #[test]
    fn destinations() {
        assert_eq!(destination("http://u@h:8080/x?y"), "http://u@h:8080");
        assert_eq!(destination("https://h?x"), "https://h");
        assert_eq!(dest_hash("http://H/x"), dest_hash("http://h/y"));
        // Issue 10 #9: the default port is filled in, the host is compared lower-cased.
        assert_eq!(
            dest_hash("http://127.0.0.1/in"),
            dest_hash("http://127.0.0.1:80/end")
        );
        assert_eq!(
            dest_hash("HTTPS://Crm.Example/a"),
            dest_hash("https://crm.example:443/b")
        );
        assert_ne!(dest_hash("http://h/"), dest_hash("https://h/"));
        assert_ne!(dest_hash("http://h:8080/"), dest_hash("http://h/"));
        assert_eq!(dest_hash("http://[::1]/"), dest_hash("http://[::1]:80/"));
        let d = Destination::of("http://u:p@[::1]:8080/x");
        assert_eq!((d.host, d.port, d.https), ("[::1]", 8080, false));
        assert_eq!(Destination::of("http://h:8o8o/").port, 0);
        assert_eq!(Destination::of("http://h:99999/").port, 0);
        assert_eq!(parse_port("65535"), Some(65535));
        assert_eq!(parse_port("0"), None);
        assert_eq!(parse_port("+80"), None);
    }

    #[test]
    fn failing_destinations_cannot_take_the_reserve() {
        let max = HEALTHY_RESERVE + 2;
        let mut o = Outbox::new();
        // Two failing destinations, each with a retry in flight: that fills the retry room.
        let mut tickets = std::vec::Vec::new();
        for url in ["http://dead1/", "http://dead2/"] {
            o.push(&n(Event::DndOn, url), 0);
            let (t, _) = o.next_due(0, max).unwrap();
            o.complete(t.id, Some(0), 0);
            let (t, _) = o.next_due(0, max).unwrap();
            assert_eq!(t.attempt, 2);
            tickets.push(t);
        }
        // A third failing destination must wait; a fresh one goes at once.
        o.push(&n(Event::DndOn, "http://dead3/"), 0);
        let (t3, _) = o.next_due(0, max).unwrap();
        o.complete(t3.id, Some(0), 0);
        assert!(
            o.next_due(0, max).is_none(),
            "dead3's retry took the reserve"
        );
        o.push(&n(Event::DndOff, "http://healthy/"), 0);
        let (_, h) = o.next_due(0, max).unwrap();
        assert_eq!(h.url.as_str(), "http://healthy/");
        // A retry ends: dead3 may go.
        o.complete(tickets[0].id, None, 0);
        let (t, n3) = o.next_due(0, max).unwrap();
        assert_eq!((n3.url.as_str(), t.attempt), ("http://dead3/", 2));
    }

    #[test]
    fn unlimited_attempts_until_the_age_limit() {
        let mut o = Outbox::new();
        let mut x = n(Event::DndOn, "http://a/");
        x.max_attempts = 0;
        x.max_age_ms = 10_000;
        o.push(&x, 1_000);
        for i in 0..100u64 {
            let (t, _) = o.next_due(u64::MAX, 8).unwrap();
            let at = 1_000 + i * 99;
            assert_eq!(
                o.complete(t.id, Some(at), at).unwrap().1,
                Settled::RetryAt(at)
            );
        }
        let (t, _) = o.next_due(u64::MAX, 8).unwrap();
        assert_eq!(
            o.complete(t.id, Some(11_000), 11_000).unwrap().1,
            Settled::GaveUp
        );
        assert!(o.is_empty());
    }
}
