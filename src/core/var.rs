//! The `$variables` of a URL template and the bounded set of their values for one event.

use core::fmt;
use heapless::String;

/// Capacity of one variable's value in bytes. Longer values are cut on a UTF-8 boundary.
#[cfg(not(test))]
pub const VALUE_CAP: usize = 128;
#[cfg(test)]
pub const VALUE_CAP: usize = 32;

/// A bounded value: what a variable holds for one event.
pub type Value = String<VALUE_CAP>;

/// A template variable: the fifteen of the GXV33XX guide plus `$event` and `$timestamp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Var {
    PhoneIp,
    Mac,
    Product,
    ProgramVersion,
    HardwareVersion,
    Language,
    Local,
    DisplayLocal,
    Remote,
    DisplayRemote,
    CallId,
    ActiveUser,
    ActiveHost,
    Duration,
    CallDirection,
    Event,
    Timestamp,
    DeliveryId,
}

/// Names from other firmwares: (alias, variable). Matched case-sensitively, like the keys.
pub const VAR_ALIASES: &[(&str, Var)] = &[
    ("ip", Var::PhoneIp),
    ("model", Var::Product),
    ("firmware", Var::ProgramVersion),
    ("hardware", Var::HardwareVersion),
    ("call-id", Var::CallId),
    ("callid", Var::CallId),
    ("callDirection", Var::CallDirection),
    ("callerID", Var::Remote),
    ("calledNumber", Var::Remote),
    ("display_name", Var::DisplayRemote),
    ("local_number", Var::Local),
    ("remote_number", Var::Remote),
    ("event_name", Var::Event),
];

impl Var {
    pub const COUNT: usize = 18;

    pub const ALL: [Var; Var::COUNT] = [
        Var::PhoneIp,
        Var::Mac,
        Var::Product,
        Var::ProgramVersion,
        Var::HardwareVersion,
        Var::Language,
        Var::Local,
        Var::DisplayLocal,
        Var::Remote,
        Var::DisplayRemote,
        Var::CallId,
        Var::ActiveUser,
        Var::ActiveHost,
        Var::Duration,
        Var::CallDirection,
        Var::Event,
        Var::Timestamp,
        Var::DeliveryId,
    ];

    /// The name as spelled in the guide, without `$`.
    pub const fn name(self) -> &'static str {
        match self {
            Var::PhoneIp => "phone_ip",
            Var::Mac => "mac",
            Var::Product => "product",
            Var::ProgramVersion => "program_version",
            Var::HardwareVersion => "hardware_version",
            Var::Language => "language",
            Var::Local => "local",
            Var::DisplayLocal => "display_local",
            Var::Remote => "remote",
            Var::DisplayRemote => "display_remote",
            Var::CallId => "call_id",
            Var::ActiveUser => "active_user",
            Var::ActiveHost => "active_host",
            Var::Duration => "duration",
            Var::CallDirection => "calldirection",
            Var::Event => "event",
            Var::Timestamp => "timestamp",
            Var::DeliveryId => "delivery_id",
        }
    }

    pub const fn describe(self) -> &'static str {
        match self {
            Var::PhoneIp => "IP address of the phone (read from the interface at event time)",
            Var::Mac => "MAC address of the phone, 12 lowercase hex digits",
            Var::Product => "product name of the phone (board file)",
            Var::ProgramVersion => "software version of the phone (board file)",
            Var::HardwareVersion => "hardware version of the phone (board file)",
            Var::Language => "display language of the phone (config device.language)",
            Var::Local => "number of the local account (user part of its SIP URI)",
            Var::DisplayLocal => "display name of the local account",
            Var::Remote => "number of the remote party (user part of its SIP URI)",
            Var::DisplayRemote => "display name of the remote party",
            Var::CallId => "SIP Call-ID of the call",
            Var::ActiveUser => "account (user) in use for the call",
            Var::ActiveHost => "SIP server host of the account in use",
            Var::Duration => "talk time in whole seconds (0 if never established)",
            Var::CallDirection => "incoming or outgoing",
            Var::Event => "canonical key of the event (beyond the guide)",
            Var::Timestamp => "Unix time of the event in seconds (beyond the guide)",
            Var::DeliveryId => {
                "delivery id <mac>-<start>-<seq>, the same on every attempt (beyond the guide)"
            }
        }
    }

    pub const fn index(self) -> usize {
        self as usize
    }

    /// Exact lookup of a name or alias (as used in `key=value` fields and `${name}`).
    ///
    /// ```
    /// use event_notify::Var;
    /// assert_eq!(Var::from_name("call-id"), Some(Var::CallId));
    /// assert_eq!(Var::from_name("callDirection"), Some(Var::CallDirection));
    /// assert_eq!(Var::from_name("nope"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Var> {
        // A `match` on the names (by length, then bytes) rather than a walk of `ALL` comparing
        // each name: every field of every socket line is looked up here. The unit test
        // `every_name_and_alias_resolves` keeps it and `name` in step.
        let exact = match name {
            "phone_ip" => Some(Var::PhoneIp),
            "mac" => Some(Var::Mac),
            "product" => Some(Var::Product),
            "program_version" => Some(Var::ProgramVersion),
            "hardware_version" => Some(Var::HardwareVersion),
            "language" => Some(Var::Language),
            "local" => Some(Var::Local),
            "display_local" => Some(Var::DisplayLocal),
            "remote" => Some(Var::Remote),
            "display_remote" => Some(Var::DisplayRemote),
            "call_id" => Some(Var::CallId),
            "active_user" => Some(Var::ActiveUser),
            "active_host" => Some(Var::ActiveHost),
            "duration" => Some(Var::Duration),
            "calldirection" => Some(Var::CallDirection),
            "event" => Some(Var::Event),
            "timestamp" => Some(Var::Timestamp),
            "delivery_id" => Some(Var::DeliveryId),
            _ => None,
        };
        exact.or_else(|| {
            VAR_ALIASES
                .iter()
                .find(|(a, _)| *a == name)
                .map(|&(_, v)| v)
        })
    }

    /// The longest known name (or alias) that `text` starts with, and its length:
    /// `$call_id` beats `$call`, `$localhost` is `$local` followed by `host`.
    pub fn longest_prefix(text: &str) -> Option<(Var, usize)> {
        let names = Var::ALL.iter().map(|v| (v.name(), *v));
        let aliases = VAR_ALIASES.iter().copied();
        names
            .chain(aliases)
            .filter(|(n, _)| text.starts_with(n))
            .max_by_key(|(n, _)| n.len())
            .map(|(n, v)| (v, n.len()))
    }

    pub fn aliases(self) -> impl Iterator<Item = &'static str> {
        VAR_ALIASES
            .iter()
            .filter(move |(_, v)| *v == self)
            .map(|(a, _)| *a)
    }
}

impl fmt::Display for Var {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "${}", self.name())
    }
}

/// Copies `src` into a bounded value, cutting on a UTF-8 boundary when it does not fit.
/// Returns whether it was cut.
pub fn set_truncated<const N: usize>(dst: &mut String<N>, src: &str) -> bool {
    dst.clear();
    let mut end = src.len().min(N);
    while !src.is_char_boundary(end) {
        end -= 1;
    }
    // Cannot fail: `end <= N` bytes.
    let _ = dst.push_str(&src[..end]);
    end < src.len()
}

/// Where an expansion takes the variables' values from: a [`Vars`], or a view that layers
/// several (the engine's: the event's own values over the device's, without copying either).
pub trait VarSource {
    /// The value of `v`; empty when unset.
    fn value(&self, v: Var) -> &str;
}

/// Appends `n` in decimal without `core::fmt` (which costs a few hundred instructions per
/// number). Returns `false`, with nothing appended, when it does not fit.
pub fn push_u64<const N: usize>(dst: &mut String<N>, n: u64) -> bool {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // Cannot fail: ASCII digits.
    let text = core::str::from_utf8(&digits[i..]).unwrap_or("");
    dst.push_str(text).is_ok()
}

/// The values of all variables for one event. Unset means empty.
#[derive(Default, PartialEq, Eq)]
pub struct Vars {
    values: [Value; Var::COUNT],
}

/// By hand: the derived `Clone` built a whole 2.4 KiB `Vars` on the stack, value by value, and
/// then copied it into place, and `clone_from` did the same; this copies only each value's bytes
/// into the existing storage (issue 15 item 5: two `Vars` copies per message).
impl Clone for Vars {
    fn clone(&self) -> Vars {
        let mut v = Vars::new();
        v.clone_from(self);
        v
    }

    fn clone_from(&mut self, other: &Vars) {
        for (d, s) in self.values.iter_mut().zip(other.values.iter()) {
            d.clear();
            // Cannot fail: the same capacity.
            let _ = d.push_str(s);
        }
    }
}

impl VarSource for Vars {
    fn value(&self, v: Var) -> &str {
        self.get(v)
    }
}

impl fmt::Debug for Vars {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for v in Var::ALL {
            if !self.get(v).is_empty() {
                m.entry(&v.name(), &self.get(v));
            }
        }
        m.finish()
    }
}

impl Vars {
    pub const fn new() -> Vars {
        Vars {
            values: [const { String::new() }; Var::COUNT],
        }
    }

    pub fn get(&self, v: Var) -> &str {
        &self.values[v.index()]
    }

    /// The value's storage, to write it in place.
    pub fn value_mut(&mut self, v: Var) -> &mut Value {
        &mut self.values[v.index()]
    }

    /// Sets a value, cut to [`VALUE_CAP`] on a UTF-8 boundary; returns whether it was cut.
    pub fn set(&mut self, v: Var, value: &str) -> bool {
        set_truncated(&mut self.values[v.index()], value)
    }

    /// Sets a value from a number without allocating.
    pub fn set_u64(&mut self, v: Var, n: u64) {
        let slot = &mut self.values[v.index()];
        slot.clear();
        push_u64(slot, n);
    }

    /// Empties every value, in place (a fresh [`Vars::new`] is a 2.4 KiB value to build and
    /// move).
    pub fn reset(&mut self) {
        for d in &mut self.values {
            d.clear();
        }
    }

    pub fn clear(&mut self, v: Var) {
        self.values[v.index()].clear();
    }

    /// Copies every non-empty value of `other` over this one.
    pub fn overlay(&mut self, other: &Vars) {
        for v in Var::ALL {
            if !other.get(v).is_empty() {
                let d = &mut self.values[v.index()];
                d.clear();
                // Cannot fail: the same capacity.
                let _ = d.push_str(other.get(v));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_name_wins() {
        assert_eq!(Var::longest_prefix("call_id&x"), Some((Var::CallId, 7)));
        assert_eq!(
            Var::longest_prefix("calldirection"),
            Some((Var::CallDirection, 13))
        );
        assert_eq!(Var::longest_prefix("localhost"), Some((Var::Local, 5)));
        assert_eq!(Var::longest_prefix("language"), Some((Var::Language, 8)));
        assert_eq!(
            Var::longest_prefix("display_local"),
            Some((Var::DisplayLocal, 13))
        );
        assert_eq!(Var::longest_prefix("call-id"), Some((Var::CallId, 7)));
        assert_eq!(Var::longest_prefix("cal"), None);
    }

    #[test]
    fn values_are_cut_on_char_boundaries() {
        let mut vars = Vars::new();
        let long = "ü".repeat(VALUE_CAP); // 2 bytes each
        assert!(vars.set(Var::Remote, &long));
        assert_eq!(vars.get(Var::Remote).len(), VALUE_CAP);
        let emoji = "😀".repeat(VALUE_CAP); // 4 bytes each
        assert!(vars.set(Var::Remote, &emoji));
        assert_eq!(vars.get(Var::Remote).len(), VALUE_CAP / 4 * 4);
        assert!(!vars.set(Var::Remote, "1002"));
        assert_eq!(vars.get(Var::Remote), "1002");
    }

    #[test]
    fn clone_and_clone_from_copy_every_value() {
        let mut a = Vars::new();
        a.set(Var::Remote, "1002");
        a.set(Var::DisplayRemote, &"x".repeat(VALUE_CAP));
        let mut b = Vars::new();
        b.set(Var::Local, "was here");
        b.clone_from(&a);
        assert_eq!(b, a);
        assert_eq!(b.get(Var::Local), "");
        assert_eq!(a.clone(), a);
    }

    #[test]
    fn numbers_are_written_in_decimal() {
        for n in [0, 7, 10, 1_764_547_200, u64::MAX] {
            let mut s = String::<20>::new();
            assert!(push_u64(&mut s, n));
            assert_eq!(s.as_str(), std::format!("{n}"));
        }
        let mut small = String::<3>::new();
        assert!(!push_u64(&mut small, 1234));
        assert_eq!(small.as_str(), "");
        let mut vars = Vars::new();
        vars.set_u64(Var::Duration, 42);
        assert_eq!(vars.get(Var::Duration), "42");
        vars.reset();
        assert_eq!(vars, Vars::new());
    }

    #[test]
    fn every_name_and_alias_resolves() {
        for v in Var::ALL {
            assert_eq!(Var::from_name(v.name()), Some(v));
        }
        for (a, v) in VAR_ALIASES {
            assert_eq!(Var::from_name(a), Some(*v));
        }
    }
}
