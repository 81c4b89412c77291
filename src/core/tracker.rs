//! The state tracker: derives the twenty events from what the SIP stack and the UI report.
//!
//! Invariants (tested below):
//! - every call that was announced (`incoming_call`/`outgoing_call`) ends with exactly one
//!   `terminate_call`, which is the last event of that call;
//! - `missed_call` comes just before the `terminate_call` of an incoming call that was never
//!   answered here and not answered elsewhere;
//! - a repeated state derives nothing;
//! - unknown or out-of-order Call-IDs and a full call table are counted, never a panic.

use super::event::Event;
use super::hook::{CallState, Kind, MediaState, Msg, RegState, TransferKind};
use super::var::{Var, Vars};
use heapless::Vec;

/// Concurrent calls tracked (a handset shows a handful of lines).
#[cfg(not(test))]
pub const MAX_CALLS: usize = 8;
#[cfg(test)]
pub const MAX_CALLS: usize = 2;

/// SIP accounts whose registration state is tracked.
#[cfg(not(test))]
pub const MAX_ACCOUNTS: usize = 16;
#[cfg(test)]
pub const MAX_ACCOUNTS: usize = 2;

/// Most events one message can derive (an out-of-order `confirmed` gives announce + establish;
/// an `ended` gives missed + terminate).
pub const MAX_DERIVED: usize = 3;

/// One derived event and its variables (call and account variables; device variables are
/// added by the engine).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Derived {
    pub event: Event,
    pub vars: Vars,
}

/// The events one message derived: [`MAX_DERIVED`] slots kept from one message to the next and
/// filled in place (a `Vec` of `Derived` built each one on the stack, 2.4 KiB, and moved it in).
pub struct DerivedList {
    slots: [Derived; MAX_DERIVED],
    len: usize,
}

impl DerivedList {
    pub const fn new() -> DerivedList {
        DerivedList {
            slots: [const {
                Derived {
                    event: Event::BootingCompleted,
                    vars: Vars::new(),
                }
            }; MAX_DERIVED],
            len: 0,
        }
    }

    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// The next slot for `event`, its variables empty; `None` when all are taken.
    pub fn push(&mut self, event: Event) -> Option<&mut Vars> {
        let d = self.slots.get_mut(self.len)?;
        self.len += 1;
        d.event = event;
        d.vars.reset();
        Some(&mut d.vars)
    }

    /// Pushes `event` with a copy of `vars`; `false` when all slots are taken.
    pub fn push_copy(&mut self, event: Event, vars: &Vars) -> bool {
        match self.push(event) {
            Some(v) => {
                v.clone_from(vars);
                true
            }
            None => false,
        }
    }
}

impl Default for DerivedList {
    fn default() -> DerivedList {
        DerivedList::new()
    }
}

impl core::ops::Deref for DerivedList {
    type Target = [Derived];
    fn deref(&self) -> &[Derived] {
        &self.slots[..self.len]
    }
}

impl<'a> IntoIterator for &'a DerivedList {
    type Item = &'a Derived;
    type IntoIter = core::slice::Iter<'a, Derived>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Why a message derived nothing although it was well-formed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TrackError {
    #[error("call message without call_id")]
    NoCallId,
    #[error("unknown call_id (never announced, or already ended)")]
    UnknownCall,
    #[error("call table full ({MAX_CALLS} calls): call not tracked")]
    CallTableFull,
    #[error("account table full ({MAX_ACCOUNTS} accounts)")]
    AccountTableFull,
}

impl TrackError {
    /// Short stable code for replies and logs.
    pub const fn code(self) -> &'static str {
        match self {
            TrackError::NoCallId => "no-call-id",
            TrackError::UnknownCall => "unknown-call",
            TrackError::CallTableFull => "call-table-full",
            TrackError::AccountTableFull => "account-table-full",
        }
    }
}

/// Counters of the tracker, for `status`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrackStats {
    pub duplicates: u64,
    pub unknown_call: u64,
    pub call_table_full: u64,
    pub account_table_full: u64,
}

#[derive(Clone, Debug)]
struct Call {
    vars: Vars,
    incoming: bool,
    established_at: Option<u64>,
    held: bool,
    transferred: bool,
}

#[derive(Clone, Debug)]
struct Account {
    user: super::var::Value,
    host: super::var::Value,
    registered: bool,
}

/// The tracker. Plain data, no I/O: `now_ms` is passed in.
#[derive(Clone, Debug, Default)]
pub struct Tracker {
    calls: Vec<Call, MAX_CALLS>,
    accounts: Vec<Account, MAX_ACCOUNTS>,
    /// The last state of each on/off setting, indexed by [`Toggle`] (`None`: never reported).
    toggles: [Option<bool>; Toggle::COUNT],
    booted: bool,
    pub stats: TrackStats,
}

/// The on/off settings the phone reports, each a slot of `Tracker::toggles` and a pair of events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Toggle {
    /// The handset is off the hook (on: `OffHook`, off: `OnHook`).
    Hook = 0,
    Dnd,
    Forward,
    Syslog,
}

impl Toggle {
    const COUNT: usize = 4;

    /// The events of turning it on and off.
    fn events(self) -> (Event, Event) {
        match self {
            Toggle::Hook => (Event::OffHook, Event::OnHook),
            Toggle::Dnd => (Event::DndOn, Event::DndOff),
            Toggle::Forward => (Event::CallForwardingOn, Event::CallForwardingOff),
            Toggle::Syslog => (Event::SyslogOn, Event::SyslogOff),
        }
    }
}

/// The variables that belong to a call and are kept from one message to the next.
const CALL_VARS: [Var; 8] = [
    Var::CallId,
    Var::Local,
    Var::DisplayLocal,
    Var::Remote,
    Var::DisplayRemote,
    Var::ActiveUser,
    Var::ActiveHost,
    Var::CallDirection,
];

/// The number in a SIP URI: `"Bob" <sip:1002@pbx.example;user=phone>` gives `1002`; a plain
/// number stays as it is.
pub fn user_part(s: &str) -> &str {
    let s = s.trim();
    // Byte scans (the bytes looked for are ASCII): `find` with chars walks the text char by char.
    let s = match s.bytes().position(|b| b == b'<') {
        Some(i) => &s[i + 1..],
        None => s,
    };
    let lower_starts = |p: &str| s.len() >= p.len() && s[..p.len()].eq_ignore_ascii_case(p);
    let s = if lower_starts("sips:") {
        &s[5..]
    } else if lower_starts("sip:") || lower_starts("tel:") {
        &s[4..]
    } else {
        s
    };
    let end = s
        .bytes()
        .position(|b| matches!(b, b'@' | b';' | b'>' | b'?'))
        .unwrap_or(s.len());
    &s[..end]
}

fn normalize(vars: &mut Vars) {
    for v in [Var::Local, Var::Remote, Var::ActiveUser] {
        let value = vars.get(v);
        let user = user_part(value);
        if user.len() != value.len() {
            let user: super::var::Value = heapless::String::try_from(user).unwrap_or_default();
            vars.set(v, &user);
        }
    }
    // A host given as a URI keeps only its host part.
    let host = vars.get(Var::ActiveHost);
    if let Some(i) = host.bytes().position(|b| b == b'@') {
        let h: super::var::Value = heapless::String::try_from(&host[i + 1..]).unwrap_or_default();
        vars.set(Var::ActiveHost, &h);
    }
}

impl Tracker {
    pub fn new() -> Tracker {
        Tracker::default()
    }

    /// Number of calls being tracked.
    pub fn calls(&self) -> usize {
        self.calls.len()
    }

    /// Derives the events of one message into `out` (cleared first).
    pub fn on_msg(
        &mut self,
        msg: &Msg,
        now_ms: u64,
        out: &mut DerivedList,
    ) -> Result<(), TrackError> {
        let mut norm = Vars::new();
        self.on_msg_with(msg, now_ms, out, &mut norm)
    }

    /// [`Tracker::on_msg`] with the caller's scratch set for the message's normalized values
    /// (the engine keeps one: a new `Vars` is 2.4 KiB to build and move per message).
    pub fn on_msg_with(
        &mut self,
        msg: &Msg,
        now_ms: u64,
        out: &mut DerivedList,
        norm: &mut Vars,
    ) -> Result<(), TrackError> {
        out.clear();
        if let Kind::Direct(event) = msg.kind {
            // Copied once, into its slot, and normalized there.
            if let Some(vars) = out.push(event) {
                vars.clone_from(&msg.vars);
                normalize(vars);
            }
            return Ok(());
        }
        norm.clone_from(&msg.vars);
        normalize(norm);
        let vars = norm;
        match msg.kind {
            Kind::Direct(_) => {}
            Kind::Hook(off) => self.toggle(Toggle::Hook, off, out),
            Kind::Dnd(on) => self.toggle(Toggle::Dnd, on, out),
            Kind::Forward(on) => self.toggle(Toggle::Forward, on, out),
            Kind::Syslog(on) => self.toggle(Toggle::Syslog, on, out),
            Kind::Boot => {
                if self.booted {
                    self.stats.duplicates += 1;
                } else {
                    self.booted = true;
                    let _ = out.push(Event::BootingCompleted);
                }
            }
            Kind::Register(state) => self.on_register(state, vars, out)?,
            Kind::Call(state) => self.on_call(state, msg.answered_elsewhere, vars, now_ms, out)?,
            Kind::Media(state) => self.on_media(state, vars, now_ms, out)?,
            Kind::Refer(kind) => self.on_refer(kind, vars, now_ms, out)?,
        }
        Ok(())
    }

    /// An on/off setting reported: its event when it changed, a duplicate when it did not.
    fn toggle(&mut self, which: Toggle, on: bool, out: &mut DerivedList) {
        let slot = &mut self.toggles[which as usize];
        if *slot == Some(on) {
            self.stats.duplicates += 1;
            return;
        }
        *slot = Some(on);
        let (yes, no) = which.events();
        let _ = out.push(if on { yes } else { no });
    }

    fn on_media(
        &mut self,
        state: MediaState,
        vars: &Vars,
        now_ms: u64,
        out: &mut DerivedList,
    ) -> Result<(), TrackError> {
        let call = self.find(vars)?;
        let held = state == MediaState::Held;
        if self.calls[call].held == held || self.calls[call].established_at.is_none() && !held {
            self.stats.duplicates += 1;
        } else {
            self.calls[call].held = held;
            let ev = if held {
                Event::HoldCall
            } else {
                Event::ResumeCall
            };
            self.push_call_event(call, ev, vars, now_ms, out);
        }
        Ok(())
    }

    fn on_refer(
        &mut self,
        kind: TransferKind,
        vars: &Vars,
        now_ms: u64,
        out: &mut DerivedList,
    ) -> Result<(), TrackError> {
        let call = self.find(vars)?;
        if self.calls[call].transferred {
            self.stats.duplicates += 1;
        } else {
            self.calls[call].transferred = true;
            let ev = match kind {
                TransferKind::Blind => Event::BlindTransferring,
                TransferKind::Attended => Event::AttendedTransferring,
            };
            self.push_call_event(call, ev, vars, now_ms, out);
        }
        Ok(())
    }

    fn on_register(
        &mut self,
        state: RegState,
        vars: &mut Vars,
        out: &mut DerivedList,
    ) -> Result<(), TrackError> {
        let user = vars.get(Var::ActiveUser);
        let host = vars.get(Var::ActiveHost);
        let idx = match self
            .accounts
            .iter()
            .position(|a| a.user == user && a.host == host)
        {
            Some(i) => i,
            None => {
                if self.accounts.is_full() {
                    // Forget an account that is not registered to make room.
                    match self.accounts.iter().position(|a| !a.registered) {
                        Some(i) => {
                            self.accounts.swap_remove(i);
                        }
                        None => {
                            self.stats.account_table_full += 1;
                            return Err(TrackError::AccountTableFull);
                        }
                    }
                }
                let _ = self.accounts.push(Account {
                    user: heapless::String::try_from(user).unwrap_or_default(),
                    host: heapless::String::try_from(host).unwrap_or_default(),
                    registered: false,
                });
                self.accounts.len() - 1
            }
        };
        if vars.get(Var::Local).is_empty() {
            let u: super::var::Value =
                heapless::String::try_from(vars.get(Var::ActiveUser)).unwrap_or_default();
            vars.set(Var::Local, &u);
        }
        let acc = &mut self.accounts[idx];
        match state {
            RegState::Ok if !acc.registered => {
                acc.registered = true;
                let _ = out.push_copy(Event::Registration, vars);
            }
            RegState::Off if acc.registered => {
                acc.registered = false;
                let _ = out.push_copy(Event::SignOff, vars);
            }
            RegState::Failed => acc.registered = false,
            // A registration (or refresh) under way says nothing new.
            RegState::Registering => {}
            _ => self.stats.duplicates += 1,
        }
        Ok(())
    }

    fn find(&mut self, vars: &Vars) -> Result<usize, TrackError> {
        let id = vars.get(Var::CallId);
        if id.is_empty() {
            return Err(TrackError::NoCallId);
        }
        match self
            .calls
            .iter()
            .position(|c| c.vars.get(Var::CallId) == id)
        {
            Some(i) => Ok(i),
            None => {
                self.stats.unknown_call += 1;
                Err(TrackError::UnknownCall)
            }
        }
    }

    /// Merges the message's call variables into the call and pushes an event with them.
    fn push_call_event(
        &mut self,
        call: usize,
        event: Event,
        vars: &Vars,
        now_ms: u64,
        out: &mut DerivedList,
    ) {
        let c = &mut self.calls[call];
        for v in CALL_VARS {
            if !vars.get(v).is_empty() && v != Var::CallDirection {
                c.vars.set(v, vars.get(v));
            }
        }
        let secs = c
            .established_at
            .map(|t| now_ms.saturating_sub(t) / 1000)
            .unwrap_or(0);
        if let Some(ev_vars) = out.push(event) {
            ev_vars.clone_from(&c.vars);
            ev_vars.set_u64(Var::Duration, secs);
        }
    }

    /// A call not seen before: announced (`incoming_call` / `outgoing_call`) and put in the
    /// table. `Ok(None)` when that is all the message meant; `Some(slot)` when it also carries a
    /// later state (`confirmed` first, out of order) for the caller to apply.
    fn new_call(
        &mut self,
        state: CallState,
        vars: &Vars,
        now_ms: u64,
        out: &mut DerivedList,
    ) -> Result<Option<usize>, TrackError> {
        // `ringing`/`confirmed` first (out of order) announce it by the direction given, else as
        // outgoing for ringing and incoming for confirmed.
        let incoming = match (state, vars.get(Var::CallDirection)) {
            (_, "incoming") => true,
            (_, "outgoing") => false,
            (CallState::Incoming, _) => true,
            (CallState::Calling | CallState::Ringing, _) => false,
            _ => {
                self.stats.unknown_call += 1;
                return Err(TrackError::UnknownCall);
            }
        };
        let mut cv = Vars::new();
        for v in CALL_VARS {
            cv.set(v, vars.get(v));
        }
        cv.set(
            Var::CallDirection,
            if incoming { "incoming" } else { "outgoing" },
        );
        let call = Call {
            vars: cv,
            incoming,
            established_at: None,
            held: false,
            transferred: false,
        };
        if self.calls.push(call).is_err() {
            self.stats.call_table_full += 1;
            return Err(TrackError::CallTableFull);
        }
        let i = self.calls.len() - 1;
        let ev = if incoming {
            Event::IncomingCall
        } else {
            Event::OutgoingCall
        };
        self.push_call_event(i, ev, vars, now_ms, out);
        if matches!(
            state,
            CallState::Incoming | CallState::Calling | CallState::Ringing
        ) {
            return Ok(None);
        }
        Ok(Some(i))
    }

    fn on_call(
        &mut self,
        state: CallState,
        elsewhere: bool,
        vars: &Vars,
        now_ms: u64,
        out: &mut DerivedList,
    ) -> Result<(), TrackError> {
        if vars.get(Var::CallId).is_empty() {
            return Err(TrackError::NoCallId);
        }
        let existing = self
            .calls
            .iter()
            .position(|c| c.vars.get(Var::CallId) == vars.get(Var::CallId));
        let call = match (existing, state) {
            (Some(i), _) => i,
            (None, CallState::Ended) => {
                self.stats.unknown_call += 1;
                return Err(TrackError::UnknownCall);
            }
            (None, _) => match self.new_call(state, vars, now_ms, out)? {
                Some(i) => i,
                None => return Ok(()),
            },
        };
        match state {
            CallState::Incoming | CallState::Calling | CallState::Ringing => {
                self.stats.duplicates += 1;
                // Keep what is new (a display name that came with 180 Ringing).
                let c = &mut self.calls[call];
                for v in CALL_VARS {
                    if !vars.get(v).is_empty() && v != Var::CallDirection {
                        c.vars.set(v, vars.get(v));
                    }
                }
            }
            CallState::Confirmed => {
                if self.calls[call].established_at.is_some() {
                    self.stats.duplicates += 1;
                } else {
                    self.calls[call].established_at = Some(now_ms);
                    self.push_call_event(call, Event::EstablishCall, vars, now_ms, out);
                }
            }
            CallState::Ended => {
                let c = &self.calls[call];
                if c.incoming && c.established_at.is_none() && !elsewhere {
                    self.push_call_event(call, Event::MissedCall, vars, now_ms, out);
                }
                self.push_call_event(call, Event::TerminateCall, vars, now_ms, out);
                self.calls.swap_remove(call);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(state: CallState, id: &str) -> Msg {
        Msg::new(Kind::Call(state)).with(Var::CallId, id)
    }

    /// Feeds (message, time) pairs; returns "event duration" per derived event.
    fn run(t: &mut Tracker, steps: &[(Msg, u64)]) -> std::vec::Vec<std::string::String> {
        let mut seen = std::vec::Vec::new();
        let mut out = DerivedList::new();
        for (m, now) in steps {
            let _ = t.on_msg(m, *now, &mut out);
            for d in &out {
                seen.push(
                    format!("{} {}", d.event, d.vars.get(Var::Duration))
                        .trim_end()
                        .to_string(),
                );
            }
        }
        seen
    }

    #[test]
    fn answered_incoming_call() {
        let mut t = Tracker::new();
        let inc =
            call(CallState::Incoming, "a1").with(Var::Remote, "\"Bob\" <sip:1002@pbx.example>");
        let got = run(
            &mut t,
            &[
                (inc.clone(), 0),
                (inc, 100),
                (call(CallState::Confirmed, "a1"), 2_000),
                (
                    Msg::new(Kind::Media(MediaState::Held)).with(Var::CallId, "a1"),
                    5_500,
                ),
                (
                    Msg::new(Kind::Media(MediaState::Held)).with(Var::CallId, "a1"),
                    5_600,
                ),
                (
                    Msg::new(Kind::Media(MediaState::Active)).with(Var::CallId, "a1"),
                    9_000,
                ),
                (call(CallState::Ended, "a1"), 14_999),
                (call(CallState::Ended, "a1"), 15_000),
            ],
        );
        assert_eq!(
            got,
            [
                "incoming_call 0",
                "establish_call 0",
                "hold_call 3",
                "resume_call 7",
                "terminate_call 12"
            ]
        );
        assert_eq!(t.stats.duplicates, 2);
        assert_eq!(t.stats.unknown_call, 1);
        assert_eq!(t.calls(), 0);
    }

    #[test]
    fn missed_unless_answered_elsewhere() {
        let mut t = Tracker::new();
        let mut elsewhere = call(CallState::Ended, "b2");
        elsewhere.answered_elsewhere = true;
        let got = run(
            &mut t,
            &[
                (call(CallState::Incoming, "b1"), 0),
                (call(CallState::Ended, "b1"), 3_000),
                (call(CallState::Incoming, "b2"), 0),
                (elsewhere, 1_000),
                (call(CallState::Calling, "b3"), 0),
                (call(CallState::Ended, "b3"), 1_000),
            ],
        );
        assert_eq!(
            got,
            [
                "incoming_call 0",
                "missed_call 0",
                "terminate_call 0",
                "incoming_call 0",
                "terminate_call 0",
                "outgoing_call 0",
                "terminate_call 0"
            ]
        );
    }

    #[test]
    fn remote_is_the_user_part_and_vars_carry_over() {
        let mut t = Tracker::new();
        let mut out = DerivedList::new();
        t.on_msg(
            &call(CallState::Incoming, "c1")
                .with(Var::Remote, "sip:1002@pbx.example;transport=tcp"),
            0,
            &mut out,
        )
        .unwrap();
        t.on_msg(
            &call(CallState::Confirmed, "c1").with(Var::DisplayRemote, "Bob"),
            0,
            &mut out,
        )
        .unwrap();
        let v = &out[0].vars;
        assert_eq!(
            (
                v.get(Var::Remote),
                v.get(Var::DisplayRemote),
                v.get(Var::CallDirection)
            ),
            ("1002", "Bob", "incoming")
        );
    }

    #[test]
    fn transfer_comes_before_terminate() {
        let mut t = Tracker::new();
        let got = run(
            &mut t,
            &[
                (call(CallState::Calling, "d1"), 0),
                (call(CallState::Confirmed, "d1"), 1_000),
                (
                    Msg::new(Kind::Refer(TransferKind::Blind)).with(Var::CallId, "d1"),
                    4_000,
                ),
                (
                    Msg::new(Kind::Refer(TransferKind::Blind)).with(Var::CallId, "d1"),
                    4_100,
                ),
                (call(CallState::Ended, "d1"), 4_200),
            ],
        );
        assert_eq!(
            got,
            [
                "outgoing_call 0",
                "establish_call 0",
                "blind_transferring 3",
                "terminate_call 3"
            ]
        );
    }

    #[test]
    fn unknown_out_of_order_and_full_table() {
        let mut t = Tracker::new();
        let mut out = DerivedList::new();
        assert_eq!(
            t.on_msg(&call(CallState::Confirmed, "x"), 0, &mut out),
            Err(TrackError::UnknownCall)
        );
        assert_eq!(
            t.on_msg(
                &Msg::new(Kind::Media(MediaState::Held)).with(Var::CallId, "x"),
                0,
                &mut out
            ),
            Err(TrackError::UnknownCall)
        );
        assert_eq!(
            t.on_msg(&Msg::new(Kind::Call(CallState::Incoming)), 0, &mut out),
            Err(TrackError::NoCallId)
        );
        // Out of order with a direction: announced, then established.
        let got = run(
            &mut t,
            &[(
                call(CallState::Confirmed, "y").with(Var::CallDirection, "outgoing"),
                0,
            )],
        );
        assert_eq!(got, ["outgoing_call 0", "establish_call 0"]);
        for i in 0..MAX_CALLS {
            let _ = t.on_msg(&call(CallState::Incoming, &format!("f{i}")), 0, &mut out);
        }
        assert_eq!(t.calls(), MAX_CALLS);
        assert_eq!(t.stats.call_table_full, 1);
        // The call that was not tracked derives nothing at its end: no terminate without announce.
        assert_eq!(
            t.on_msg(
                &call(CallState::Ended, &format!("f{}", MAX_CALLS - 1)),
                0,
                &mut out
            ),
            Err(TrackError::UnknownCall)
        );
        assert!(out.is_empty());
    }

    #[test]
    fn toggles_registration_and_boot_without_duplicates() {
        let mut t = Tracker::new();
        let reg = |s| {
            Msg::new(Kind::Register(s))
                .with(Var::ActiveUser, "sip:1001@pbx.example")
                .with(Var::ActiveHost, "pbx.example")
        };
        let got = run(
            &mut t,
            &[
                (Msg::new(Kind::Dnd(true)), 0),
                (Msg::new(Kind::Dnd(true)), 0),
                (Msg::new(Kind::Dnd(false)), 0),
                (Msg::new(Kind::Hook(true)), 0),
                (Msg::new(Kind::Hook(false)), 0),
                (Msg::new(Kind::Forward(true)), 0),
                (Msg::new(Kind::Syslog(false)), 0),
                (reg(RegState::Registering), 0),
                (reg(RegState::Ok), 0),
                (reg(RegState::Ok), 0),
                (reg(RegState::Off), 0),
                (reg(RegState::Off), 0),
                (Msg::new(Kind::Boot), 0),
                (Msg::new(Kind::Boot), 0),
            ],
        );
        assert_eq!(
            got,
            [
                "dnd_on",
                "dnd_off",
                "off_hook",
                "on_hook",
                "call_forwarding_on",
                "syslog_off",
                "registration",
                "sign_off",
                "booting_completed"
            ]
        );
    }

    #[test]
    fn account_table_forgets_unregistered_accounts_first() {
        let mut t = Tracker::new();
        let mut out = DerivedList::new();
        let reg = |s, u: &str| {
            Msg::new(Kind::Register(s))
                .with(Var::ActiveUser, u)
                .with(Var::ActiveHost, "h")
        };
        for i in 0..MAX_ACCOUNTS {
            t.on_msg(&reg(RegState::Ok, &format!("u{i}")), 0, &mut out)
                .unwrap();
        }
        // Full of registered accounts: a new one is refused and counted.
        assert_eq!(
            t.on_msg(&reg(RegState::Ok, "new"), 0, &mut out),
            Err(TrackError::AccountTableFull)
        );
        assert_eq!(t.stats.account_table_full, 1);
        // Once one signs off, its place can be taken.
        t.on_msg(&reg(RegState::Off, "u0"), 0, &mut out).unwrap();
        t.on_msg(&reg(RegState::Ok, "new"), 0, &mut out).unwrap();
        assert_eq!(out[0].event, Event::Registration);
    }

    #[test]
    fn user_parts() {
        for (i, o) in [
            ("1002", "1002"),
            ("sip:1002@h", "1002"),
            ("\"B\" <sips:99@h>", "99"),
            ("tel:+4930;x", "+4930"),
            ("1002@h", "1002"),
            ("", ""),
        ] {
            assert_eq!(user_part(i), o);
        }
    }
}
