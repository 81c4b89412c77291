//! The bounded outbox: notifications waiting to be sent, per-destination order, retry schedule.
//!
//! - Capacity: [`OUTBOX_BYTES_CAP`] bytes, each notification at its real size, and at most
//!   [`OUTBOX_CAP`] notifications. When either is full, the oldest notifications that are not
//!   being sent right now are dropped to make room (the newest state reaches the server); the
//!   caller counts each.
//! - Per destination (scheme, lower-cased host, port with the scheme's default filled in) only
//!   the oldest notification is eligible, and at most one is in flight: notifications to one
//!   destination arrive in the order of their events. Destinations never wait on each other.
//! - Fairness: a destination whose head notification is being retried (it failed before) may
//!   hold at most `max_in_flight - HEALTHY_RESERVE` attempts at once, so failing destinations can
//!   never take the last workers from a healthy one.
//! - Give-up rule: a failed attempt is retried while the notification is younger than its
//!   `max_age_ms` (0 = no age limit) and, if `max_attempts` is not 0, attempts remain.

use super::bytes::Reader;
use super::config::Method;
use super::event::Event;
use super::id::{DeliveryId, Key};
use super::secret::Secret;
use super::template::{Credentials, BODY_CAP, HEADERS_CAP, URL_CAP};
use heapless::String;

/// Most notifications held at once (waiting, backing off, or in flight): the length of the
/// outbox's index. Each entry is 64 bytes, reserved at start and touched as first used.
#[cfg(not(test))]
pub const OUTBOX_CAP: usize = 2048;
#[cfg(test)]
pub const OUTBOX_CAP: usize = 4;

/// Bytes of notifications held at once, each at its real size ([`stored_size`]: its URL, body,
/// headers, id, credentials and secret, plus 23 bytes). 256 KiB: with the full index (128 KiB)
/// about the memory the 128 fixed ~3 KiB slots of the first design took (issue 15 keeps the
/// daemon's peak under 2 MiB), now holding 1,300 to 2,000 typical notifications (measured: 128
/// bytes for a CRM's call URLs and JSON body, 196 with a signing secret and a token header).
pub const OUTBOX_BYTES_CAP: usize = 256 * 1024;

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
        // Byte scans in plain loops: `find` with a set of chars walks the text char by char
        // (about 2,600 instructions per URL, twice per notification), and the release build
        // (optimized for size) leaves `position`'s closures as calls. The bytes looked for are
        // ASCII, so the cuts fall on character boundaries.
        let b = url.as_bytes();
        let mut i = 0;
        let mut scheme_end = None;
        while i + 3 <= b.len() {
            if b[i] == b':' && b[i + 1] == b'/' && b[i + 2] == b'/' {
                scheme_end = Some(i);
                break;
            }
            i += 1;
        }
        let (https, start) = match scheme_end {
            Some(i) => (url[..i].eq_ignore_ascii_case("https"), i + 3),
            None => (false, 0),
        };
        let mut end = start;
        while end < b.len() && !matches!(b[end], b'/' | b'?' | b'#') {
            end += 1;
        }
        let mut at = end;
        while at > start && b[at - 1] != b'@' {
            at -= 1;
        }
        let auth = &url[at..end];
        let default = if https { 443 } else { 80 };
        // "[v6]:port" or "host:port"
        let (host, port) = if let Some(rest) = auth.strip_prefix('[') {
            match rest.find(']') {
                Some(e) => (&auth[..e + 2], rest[e + 1..].strip_prefix(':')),
                None => (auth, None),
            }
        } else {
            let a = auth.as_bytes();
            let mut c = a.len();
            while c > 0 && a[c - 1] != b':' {
                c -= 1;
            }
            match c {
                0 => (auth, None),
                c => (&auth[..c - 1], Some(&auth[c..])),
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
    // By hand: `str::parse` costs about 200 instructions, twice per notification.
    let n = p.bytes().fold(0u32, |n, b| n * 10 + u32::from(b - b'0'));
    u16::try_from(n).ok().filter(|&n| n != 0)
}

fn dest_hash(url: &str) -> u64 {
    Destination::of(url).hash()
}

/// Where a notification's bytes are in the arena, and its delivery state. Kept in arrival
/// (sequence) order; offsets rise with it (appends go at the end, compaction keeps the order).
#[derive(Clone, Copy, Debug)]
struct Entry {
    seq: u64,
    dest: u64,
    due_ms: u64,
    /// When it was queued.
    born_ms: u64,
    max_age_ms: u64,
    off: u32,
    len: u32,
    /// Attempts made so far.
    attempts: u32,
    max_attempts: u32,
    event: Event,
    in_flight: bool,
}

// A notification as the arena holds it (memory only, never written anywhere):
//   event(u8) method(u8) content_type(u8) flags(u8: 1 = credentials, 2 = secret)
//   key.boot(u32 LE) key.seq(u64 LE) id(u8 len + bytes) url(u16 LE len + bytes)
//   body(u16 len + bytes) headers(u16 len + bytes)
//   [user(u8 len + bytes) password(u8 len + bytes)] [secret(u16 len + bytes)]
// `max_attempts` and `max_age_ms` live in the entry. Every length fits its field: the
// notification's own capacities (URL_CAP, BODY_CAP, HEADERS_CAP 1 KiB and less, ID_CAP 48,
// CRED_CAP 64, SECRET_CAP 256) are below the field limits.
const REC_FIXED: usize = 4 + 4 + 8 + 1 + 2 + 2 + 2;

fn content_type_code(ct: &str) -> u8 {
    use super::config::{FORM, JSON, TEXT};
    match ct {
        FORM => 1,
        JSON => 2,
        TEXT => 3,
        _ => 0,
    }
}

fn content_type_of(code: u8) -> &'static str {
    use super::config::{FORM, JSON, TEXT};
    match code {
        1 => FORM,
        2 => JSON,
        3 => TEXT,
        _ => "",
    }
}

/// Bytes `n` takes in the arena.
pub fn stored_size(n: &Notification) -> usize {
    REC_FIXED
        + n.id.len()
        + n.url.len()
        + n.body.len()
        + n.headers.len()
        + n.credentials
            .as_ref()
            .map_or(0, |c| 2 + c.user.len() + c.password.len())
        + n.secret.as_ref().map_or(0, |s| 2 + s.expose().len())
}

fn encode(n: &Notification, out: &mut std::vec::Vec<u8>) {
    let flags = u8::from(n.credentials.is_some()) | (u8::from(n.secret.is_some()) << 1);
    out.push(n.event.index() as u8);
    out.push(match n.method {
        Method::Get => 0,
        Method::Post => 1,
    });
    out.push(content_type_code(n.content_type));
    out.push(flags);
    out.extend_from_slice(&n.key.boot.to_le_bytes());
    out.extend_from_slice(&n.key.seq.to_le_bytes());
    out.push(n.id.len() as u8);
    out.extend_from_slice(n.id.as_bytes());
    for s in [n.url.as_str(), n.body.as_str(), n.headers.as_str()] {
        out.extend_from_slice(&(s.len() as u16).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    if let Some(c) = &n.credentials {
        for s in [c.user.as_str(), c.password.as_str()] {
            out.push(s.len() as u8);
            out.extend_from_slice(s.as_bytes());
        }
    }
    if let Some(s) = &n.secret {
        out.extend_from_slice(&(s.expose().len() as u16).to_le_bytes());
        out.extend_from_slice(s.expose());
    }
}

/// Rebuilds into `n` the notification `encode` wrote (`max_attempts` and `max_age_ms` from
/// the entry). `None` only if the bytes are not such a record, which cannot happen for bytes
/// the outbox wrote itself.
fn decode(e: &Entry, bytes: &[u8], n: &mut Notification) -> Option<()> {
    let mut r = Reader(bytes);
    n.event = *Event::ALL.get(r.u8()? as usize)?;
    n.method = if r.u8()? == 1 {
        Method::Post
    } else {
        Method::Get
    };
    n.content_type = content_type_of(r.u8()?);
    let flags = r.u8()?;
    let b = r.take(4)?;
    n.key.boot = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let b = r.take(8)?;
    n.key.seq = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
    n.id.clear();
    n.id.push_str(r.str8()?).ok()?;
    n.url.clear();
    n.url.push_str(r.str16()?).ok()?;
    n.body.clear();
    n.body.push_str(r.str16()?).ok()?;
    n.headers.clear();
    n.headers.push_str(r.str16()?).ok()?;
    n.credentials = if flags & 1 != 0 {
        let mut c = Credentials {
            user: String::new(),
            password: String::new(),
        };
        c.user.push_str(r.str8()?).ok()?;
        c.password.push_str(r.str8()?).ok()?;
        Some(c)
    } else {
        None
    };
    n.secret = if flags & 2 != 0 {
        Some(Secret::new(r.bytes16()?)?)
    } else {
        None
    };
    n.max_attempts = e.max_attempts;
    n.max_age_ms = e.max_age_ms;
    r.is_empty().then_some(())
}

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
    /// Queued, after dropping the oldest waiting notification(s) (the first of them of this
    /// event; every one is also passed to the `dropped` callback).
    DroppedOldest(Event),
    /// Not queued: full, and the notifications in flight leave no room for it.
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

/// The outbox. Each notification is stored at its real size in a byte arena of
/// [`OUTBOX_BYTES_CAP`] bytes, found through an index of at most [`OUTBOX_CAP`] entries in
/// arrival order. Both are reserved at start and never reallocated; their memory is touched
/// only as it is first used, so an idle daemon does not pay for a full outbox. Removal leaves
/// a hole; when an append does not fit at the end, the live records are moved down over the
/// holes (in order, one `memmove` each) first.
pub struct Outbox {
    /// `len()` is the end of the last record; capacity `bytes_cap`.
    arena: std::vec::Vec<u8>,
    /// Capacity `max_entries`.
    entries: std::vec::Vec<Entry>,
    bytes_cap: usize,
    max_entries: usize,
    /// Bytes of the records held (the arena minus its holes).
    live: usize,
    next_seq: u64,
    /// The notification lent by [`Outbox::next_due`].
    scratch: Notification,
    /// Attempts in flight: how many, of which retries, and their bytes. Kept as they change,
    /// not counted over every entry at each call (`next_due`, `poll_delay` and `push` run
    /// several times per notification, over up to [`OUTBOX_CAP`] entries).
    flying: usize,
    flying_retries: usize,
    flying_bytes: usize,
    /// The destinations held and how many entries each, while `dests_exact` (it stops being so
    /// when more than [`DEST_TRACK`] destinations are held at once, until the outbox is empty):
    /// the walk over the destinations' heads stops when it has seen them all.
    dests: heapless::Vec<(u64, u32), DEST_TRACK>,
    dests_exact: bool,
}

/// Destinations whose entries the outbox counts (see `Outbox::dests`); one per configured
/// event at most, in practice.
pub const DEST_TRACK: usize = 32;

impl Default for Outbox {
    fn default() -> Self {
        Outbox::new()
    }
}

impl Outbox {
    /// An outbox of [`OUTBOX_BYTES_CAP`] bytes and [`OUTBOX_CAP`] notifications.
    pub fn new() -> Outbox {
        Outbox::with_limits(OUTBOX_BYTES_CAP, OUTBOX_CAP)
    }

    /// An outbox of `bytes_cap` bytes and at most `max_entries` notifications.
    pub fn with_limits(bytes_cap: usize, max_entries: usize) -> Outbox {
        Outbox {
            arena: std::vec::Vec::with_capacity(bytes_cap),
            entries: std::vec::Vec::with_capacity(max_entries),
            bytes_cap,
            max_entries,
            live: 0,
            next_seq: 1,
            scratch: Notification::empty(),
            flying: 0,
            flying_retries: 0,
            flying_bytes: 0,
            dests: heapless::Vec::new(),
            dests_exact: true,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes of the notifications held.
    pub fn bytes(&self) -> usize {
        self.live
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight_split().0
    }

    /// Counts an entry of `dest` in.
    fn track(&mut self, dest: u64) {
        match self.dests.iter_mut().find(|(d, _)| *d == dest) {
            Some((_, n)) => *n += 1,
            None => {
                if self.dests.push((dest, 1)).is_err() {
                    self.dests_exact = false;
                }
            }
        }
    }

    /// Counts an entry of `dest` out (it was removed).
    fn untrack(&mut self, dest: u64) {
        if let Some(k) = self.dests.iter().position(|(d, _)| *d == dest) {
            self.dests[k].1 -= 1;
            if self.dests[k].1 == 0 {
                self.dests.swap_remove(k);
            }
        }
        if self.entries.is_empty() {
            self.dests.clear();
            self.dests_exact = true;
        }
    }

    /// Queues a notification, due at once. When full (by count or by bytes), drops the oldest
    /// notifications that are not in flight until it fits, calling `dropped` for each; if the
    /// ones in flight leave no room, the new one is refused and nothing is dropped.
    pub fn push(
        &mut self,
        n: &Notification,
        now_ms: u64,
        dropped: &mut dyn FnMut(Event),
    ) -> Pushed {
        let need = stored_size(n);
        let (flying, flying_bytes) = (self.flying, self.flying_bytes);
        if flying >= self.max_entries || flying_bytes + need > self.bytes_cap {
            return Pushed::Refused;
        }
        let mut first = None;
        while self.entries.len() >= self.max_entries || self.live + need > self.bytes_cap {
            let Some(pos) = self.entries.iter().position(|e| !e.in_flight) else {
                return Pushed::Refused; // not reached: the in-flight ones leave room
            };
            let e = self.entries.remove(pos);
            self.untrack(e.dest);
            self.live -= e.len as usize;
            first.get_or_insert(e.event);
            dropped(e.event);
        }
        if self.arena.len() + need > self.bytes_cap {
            self.compact();
        }
        let off = self.arena.len();
        // Within the reservation: no reallocation (off + need <= bytes_cap = the capacity).
        encode(n, &mut self.arena);
        debug_assert_eq!(self.arena.len() - off, need);
        self.live += need;
        let dest = dest_hash(&n.url);
        self.track(dest);
        self.entries.push(Entry {
            seq: self.next_seq,
            dest,
            due_ms: now_ms,
            born_ms: now_ms,
            max_age_ms: n.max_age_ms,
            off: off as u32,
            len: need as u32,
            attempts: 0,
            max_attempts: n.max_attempts,
            event: n.event,
            in_flight: false,
        });
        self.next_seq += 1;
        match first {
            Some(e) => Pushed::DroppedOldest(e),
            None => Pushed::Queued,
        }
    }

    /// Moves the live records down over the holes, keeping their order.
    fn compact(&mut self) {
        let mut to = 0usize;
        for e in &mut self.entries {
            let (from, len) = (e.off as usize, e.len as usize);
            if from != to {
                self.arena.copy_within(from..from + len, to);
                e.off = to as u32;
            }
            to += len;
        }
        self.arena.truncate(to);
    }

    fn record(&self, e: &Entry) -> &[u8] {
        &self.arena[e.off as usize..(e.off + e.len) as usize]
    }

    /// Walks the destination heads in arrival order: `f(entry index)` for the oldest
    /// notification of each destination that is not in flight and has no older one in flight.
    fn heads(&self, mut f: impl FnMut(usize) -> bool) {
        // The check counts in O(n²): only while the outbox is small, so that a debug build of
        // the daemon with a long backlog (the integration tests) stays usable.
        debug_assert!(
            !self.dests_exact
                || self.entries.len() > 64
                || self.dests.len() == self.distinct_dests()
        );
        // Destinations whose head is still to be seen; none left ends the walk (with one
        // destination: at the first entry, not at the last of up to OUTBOX_CAP).
        let mut left = if self.dests_exact {
            self.dests.len()
        } else {
            usize::MAX
        };
        for (i, e) in self.entries.iter().enumerate() {
            if left == 0 {
                return;
            }
            if self.entries[..i].iter().any(|o| o.dest == e.dest) {
                continue;
            }
            left -= 1;
            if !e.in_flight && f(i) {
                return;
            }
        }
    }

    /// Distinct destinations held, counted (the debug builds' check of the kept figures).
    fn distinct_dests(&self) -> usize {
        let mut n = 0;
        for (i, e) in self.entries.iter().enumerate() {
            n += usize::from(!self.entries[..i].iter().any(|o| o.dest == e.dest));
        }
        n
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
            let e = &self.entries[i];
            if e.due_ms <= now_ms && (e.attempts == 0 || retry_room) {
                found = Some(i);
                true
            } else {
                false
            }
        });
        let i = found?;
        let e = self.entries[i];
        let rec = &self.arena[e.off as usize..(e.off + e.len) as usize];
        let _decoded = decode(&e, rec, &mut self.scratch);
        debug_assert!(_decoded.is_some());
        let e = &mut self.entries[i];
        e.in_flight = true;
        e.attempts += 1;
        self.flying += 1;
        self.flying_retries += usize::from(e.attempts > 1);
        self.flying_bytes += e.len as usize;
        Some((
            Ticket {
                id: e.seq,
                attempt: e.attempts,
            },
            &self.scratch,
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
            let e = &self.entries[i];
            if e.attempts > 0 && !retry_room {
                // Waits for a retry to end (which wakes the caller).
                return false;
            }
            let d = e.due_ms.saturating_sub(now_ms);
            best = Some(best.map_or(d, |b| b.min(d)));
            d == 0
        });
        best
    }

    /// (attempts in flight, of which retries: a notification's second or later attempt).
    fn in_flight_split(&self) -> (usize, usize) {
        #[cfg(debug_assertions)]
        {
            let mut all = 0;
            let mut retries = 0;
            let mut bytes = 0;
            for e in self.entries.iter().filter(|e| e.in_flight) {
                all += 1;
                retries += usize::from(e.attempts > 1);
                bytes += e.len as usize;
            }
            debug_assert_eq!(
                (all, retries, bytes),
                (self.flying, self.flying_retries, self.flying_bytes)
            );
        }
        (self.flying, self.flying_retries)
    }

    fn position(&self, id: u64) -> Option<usize> {
        // Sequence numbers rise with the order.
        self.entries.binary_search_by_key(&id, |e| e.seq).ok()
    }

    /// The event of the notification behind a ticket, if it is still there.
    pub fn event(&self, id: u64) -> Option<Event> {
        self.position(id).map(|p| self.entries[p].event)
    }

    /// A copy of the notification behind a ticket, if it is still there.
    pub fn get(&self, id: u64) -> Option<Notification> {
        let e = &self.entries[self.position(id)?];
        let mut n = Notification::empty();
        decode(e, self.record(e), &mut n)?;
        Some(n)
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
        let e = &mut self.entries[pos];
        if e.in_flight {
            self.flying -= 1;
            self.flying_retries -= usize::from(e.attempts > 1);
            self.flying_bytes -= e.len as usize;
        }
        e.in_flight = false;
        let event = e.event;
        let settled = match retry_at {
            Some(t) => {
                let attempts_left = e.max_attempts == 0 || e.attempts < e.max_attempts;
                let young = e.max_age_ms == 0 || now_ms.saturating_sub(e.born_ms) < e.max_age_ms;
                if attempts_left && young {
                    e.due_ms = t;
                    return Some((event, Settled::RetryAt(t)));
                }
                Settled::GaveUp
            }
            None => Settled::Removed,
        };
        let e = self.entries.remove(pos);
        self.untrack(e.dest);
        self.live -= e.len as usize;
        if self.entries.is_empty() {
            self.arena.clear();
        }
        Some((event, settled))
    }

    /// Calls `f` for every notification held, oldest first, with whether its destination is
    /// failing: one of its notifications has failed an attempt and is waiting for (or making) a
    /// retry. The spool keeps exactly those.
    pub fn for_each(&self, mut f: impl FnMut(&Notification, bool)) {
        let mut failing = std::vec::Vec::<u64>::new();
        for e in &self.entries {
            let failed = e.attempts >= 2 || (e.attempts == 1 && !e.in_flight);
            if failed && !failing.contains(&e.dest) {
                failing.push(e.dest);
            }
        }
        let mut n = Notification::empty();
        for e in &self.entries {
            if decode(e, self.record(e), &mut n).is_some() {
                f(&n, failing.contains(&e.dest));
            }
        }
    }

    /// Attempts made for a notification so far.
    pub fn attempts(&self, id: u64) -> Option<u32> {
        self.position(id).map(|p| self.entries[p].attempts)
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
        o.push(&n(Event::IncomingCall, "http://a:80/1"), 0, &mut |_| {});
        o.push(&n(Event::EstablishCall, "http://a:80/2"), 0, &mut |_| {});
        o.push(&n(Event::DndOn, "http://b/1"), 0, &mut |_| {});
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
    fn more_destinations_than_are_counted_still_each_get_their_turn() {
        let dests = DEST_TRACK + 8;
        let mut o = Outbox::with_limits(OUTBOX_BYTES_CAP, 2 * dests);
        for d in 0..dests {
            o.push(&n(Event::DndOn, &format!("http://h{d}/1")), 0, &mut |_| {});
            o.push(&n(Event::DndOff, &format!("http://h{d}/2")), 0, &mut |_| {});
        }
        // Every destination's head, once, then nothing: the second of each waits behind it.
        let mut firsts = std::vec::Vec::new();
        while let Some((t, n)) = o.next_due(0, 4 * dests) {
            assert_eq!(n.event, Event::DndOn);
            firsts.push(t.id);
        }
        assert_eq!(firsts.len(), dests);
        assert_eq!(o.in_flight(), dests);
        for (k, id) in firsts.iter().enumerate() {
            // Half fail once (a retry in flight later), half are done.
            let retry = (k % 2 == 0).then_some(10);
            o.complete(*id, retry, 0);
        }
        assert_eq!(o.in_flight(), 0);
        // Due now: the second of each destination done with its first (no more than `dests`).
        let mut due = 0;
        while o.next_due(0, 4 * dests).is_some() {
            due += 1;
        }
        assert_eq!(due, dests / 2);
        // Once empty, the destinations are counted again: one destination, two waiting, only
        // the first due.
        let mut o = Outbox::with_limits(OUTBOX_BYTES_CAP, 8);
        o.push(&n(Event::DndOn, "http://a/1"), 0, &mut |_| {});
        o.push(&n(Event::DndOff, "http://a/2"), 0, &mut |_| {});
        o.push(&n(Event::HoldCall, "http://b/1"), 0, &mut |_| {});
        let (t, first) = o.next_due(0, 8).unwrap();
        assert_eq!(first.event, Event::DndOn);
        let (_, other) = o.next_due(0, 8).unwrap();
        assert_eq!(other.event, Event::HoldCall);
        assert!(o.next_due(0, 8).is_none());
        o.complete(t.id, None, 0);
        assert_eq!(o.next_due(0, 8).unwrap().1.event, Event::DndOff);
    }

    #[test]
    fn attempts_run_out() {
        let mut o = Outbox::new();
        o.push(&n(Event::DndOn, "http://a/"), 0, &mut |_| {});
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
            assert_eq!(o.push(&n(e, "http://a/"), 0, &mut |_| {}), Pushed::Queued);
        }
        let (t, _) = o.next_due(0, 8).unwrap(); // IncomingCall in flight
        assert_eq!(
            o.push(&n(Event::TerminateCall, "http://a/"), 0, &mut |_| {}),
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
        o.push(&n(Event::DndOn, "http://a/"), 0, &mut |_| {});
        o.push(&n(Event::DndOff, "http://b/"), 0, &mut |_| {});
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
        assert_eq!(parse_port("65536"), None);
        assert_eq!(parse_port("00080"), Some(80));
    }

    #[test]
    fn failing_destinations_cannot_take_the_reserve() {
        let max = HEALTHY_RESERVE + 2;
        let mut o = Outbox::new();
        // Two failing destinations, each with a retry in flight: that fills the retry room.
        let mut tickets = std::vec::Vec::new();
        for url in ["http://dead1/", "http://dead2/"] {
            o.push(&n(Event::DndOn, url), 0, &mut |_| {});
            let (t, _) = o.next_due(0, max).unwrap();
            o.complete(t.id, Some(0), 0);
            let (t, _) = o.next_due(0, max).unwrap();
            assert_eq!(t.attempt, 2);
            tickets.push(t);
        }
        // A third failing destination must wait; a fresh one goes at once.
        o.push(&n(Event::DndOn, "http://dead3/"), 0, &mut |_| {});
        let (t3, _) = o.next_due(0, max).unwrap();
        o.complete(t3.id, Some(0), 0);
        assert!(
            o.next_due(0, max).is_none(),
            "dead3's retry took the reserve"
        );
        o.push(&n(Event::DndOff, "http://healthy/"), 0, &mut |_| {});
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
        o.push(&x, 1_000, &mut |_| {});
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

    /// A notification whose URL makes it exactly `size` bytes in the arena.
    fn sized(event: Event, dest: &str, size: usize) -> Notification {
        let mut x = n(event, dest);
        let pad = size - stored_size(&x);
        for _ in 0..pad {
            x.url.push('a').unwrap();
        }
        assert_eq!(stored_size(&x), size);
        x
    }

    #[test]
    fn stored_at_real_size_and_given_back_whole() {
        let mut o = Outbox::with_limits(4096, 16);
        let mut x = n(Event::EstablishCall, "http://crm.example/call?id=42");
        x.method = Method::Post;
        x.content_type = super::super::config::JSON;
        x.body.push_str(r#"{"caller":"100"}"#).unwrap();
        x.headers.push_str("X-Token: abc\n").unwrap();
        x.id.push_str("0a0b0c0d0e0f-7-42").unwrap();
        x.key = Key { boot: 7, seq: 42 };
        x.max_age_ms = 60_000;
        x.credentials = Some(Credentials {
            user: String::try_from("u").unwrap(),
            password: String::try_from("p@ss").unwrap(),
        });
        x.secret = Secret::new(b"s3cret");
        let small = n(Event::DndOn, "http://a/");
        o.push(&small, 0, &mut |_| {});
        o.push(&x, 0, &mut |_| {});
        assert_eq!(o.bytes(), stored_size(&small) + stored_size(&x));
        assert!(stored_size(&x) < 150, "{}", stored_size(&x));
        let (t, _) = o.next_due(0, 8).unwrap();
        o.complete(t.id, None, 0);
        let (t, got) = o.next_due(0, 8).unwrap();
        assert_eq!(got, &x);
        assert_eq!(o.get(t.id).as_ref(), Some(&x));
        let mut seen = 0;
        o.for_each(|y, failing| {
            assert_eq!((y, failing), (&x, false));
            seen += 1;
        });
        assert_eq!(seen, 1);
        o.complete(t.id, None, 0);
        assert_eq!((o.len(), o.bytes()), (0, 0));
    }

    #[test]
    fn fills_by_bytes_then_by_count_dropping_the_oldest_waiting() {
        // By bytes: 999 bytes hold four 200-byte notifications and not a fifth.
        let mut o = Outbox::with_limits(999, 100);
        let events = [
            Event::IncomingCall,
            Event::EstablishCall,
            Event::HoldCall,
            Event::ResumeCall,
            Event::TerminateCall,
        ];
        let mut dropped = std::vec::Vec::new();
        for e in events {
            o.push(&sized(e, "http://a/", 200), 0, &mut |v| dropped.push(v));
        }
        assert_eq!(dropped, [Event::IncomingCall]);
        assert_eq!((o.len(), o.bytes()), (4, 800));
        // One in flight; a 450-byte one needs two more 200-byte ones gone: the oldest waiting
        // ones, never the one in flight.
        let (t, first) = o.next_due(0, 8).unwrap();
        assert_eq!(first.event, Event::EstablishCall);
        dropped.clear();
        assert_eq!(
            o.push(&sized(Event::DndOn, "http://a/", 450), 0, &mut |v| dropped
                .push(v)),
            Pushed::DroppedOldest(Event::HoldCall)
        );
        assert_eq!(dropped, [Event::HoldCall, Event::ResumeCall]);
        assert_eq!((o.len(), o.bytes()), (3, 850));
        // Too big to fit beside the one in flight: refused, nothing dropped.
        dropped.clear();
        let big = sized(Event::DndOff, "http://a/", 801);
        assert_eq!(o.push(&big, 0, &mut |v| dropped.push(v)), Pushed::Refused);
        assert!(dropped.is_empty());
        assert_eq!(o.len(), 3);
        // The holes are reused: after the in-flight one leaves, records move down, in order.
        o.complete(t.id, None, 0);
        o.push(&sized(Event::DndOff, "http://a/", 500), 0, &mut |v| {
            dropped.push(v)
        });
        assert_eq!(dropped, [Event::TerminateCall]);
        let mut got = std::vec::Vec::new();
        while let Some((t, x)) = o.next_due(0, 8) {
            got.push((x.event, stored_size(x)));
            o.complete(t.id, None, 0);
        }
        assert_eq!(got, [(Event::DndOn, 450), (Event::DndOff, 500)]);

        // By count: 3 entries, plenty of bytes.
        let mut o = Outbox::with_limits(100_000, 3);
        dropped.clear();
        for e in events {
            o.push(&sized(e, "http://b/", 100), 0, &mut |v| dropped.push(v));
        }
        assert_eq!(dropped, [Event::IncomingCall, Event::EstablishCall]);
        assert_eq!((o.len(), o.bytes()), (3, 300));
    }

    #[test]
    fn many_small_ones_cycle_through_a_small_arena_in_order() {
        // Two destinations, one of them failing and holding its notifications: the other's
        // come and go through the holes, order kept per destination.
        let mut o = Outbox::with_limits(2_000, 64);
        for i in 0..5u64 {
            let mut x = sized(Event::DndOn, "http://dead/", 100);
            x.key.seq = i;
            o.push(&x, 0, &mut |_| panic!("dropped"));
        }
        let (t, _) = o.next_due(0, 16).unwrap();
        o.complete(t.id, Some(1_000_000), 0);
        let mut next = 0u64;
        for i in 0..1_000u64 {
            let mut x = sized(Event::DndOff, "http://live/", 120 + (i % 7) as usize * 30);
            x.key.seq = i;
            o.push(&x, 0, &mut |_| panic!("dropped"));
            if i % 3 == 2 {
                while let Some((t, x)) = o.next_due(0, 16) {
                    assert_eq!(x.key.seq, next);
                    next += 1;
                    o.complete(t.id, None, 0);
                }
            }
        }
        assert_eq!(o.len(), 5 + (1_000 - next as usize));
        assert!(o.bytes() <= 2_000);
    }
}
