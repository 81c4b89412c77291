//! What the firmware reports: transitions of the SIP stack and the UI, or direct events.
//!
//! A [`Msg`] is the one input of the core. The socket wire format ([`crate::core::wire`]), the
//! C API and the baresip adapter all produce `Msg`s.

use super::event::Event;
use super::var::{Var, Vars};

/// A call's dialog state as the SIP stack sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallState {
    /// An INVITE arrived (the phone rings).
    Incoming,
    /// This phone sent an INVITE.
    Calling,
    /// 180/183 received for an outgoing call.
    Ringing,
    /// 200 OK / ACK: the call is answered.
    Confirmed,
    /// BYE, CANCEL, a final error response, or declined here.
    Ended,
}

/// Registration state of one account (`active_user`@`active_host`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegState {
    Registering,
    Ok,
    Failed,
    /// Unregistered (REGISTER with Expires: 0, or the account was removed).
    Off,
}

/// Media direction of a call, from the SDP this phone sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaState {
    /// `sendonly` or `inactive`: this phone put the call on hold.
    Held,
    /// `sendrecv`: the call is active.
    Active,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferKind {
    Blind,
    Attended,
}

/// The kind of message, with its state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Firmware that knows its events hands one over directly.
    Direct(Event),
    Call(CallState),
    Register(RegState),
    Media(MediaState),
    Refer(TransferKind),
    /// `true` = off hook.
    Hook(bool),
    Dnd(bool),
    Forward(bool),
    Syslog(bool),
    Boot,
}

/// One report from the firmware: its kind, the variables it carries and, for a call that
/// ended, how it ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Msg {
    pub kind: Kind,
    pub vars: Vars,
    /// For `Call(Ended)`: the call was answered on another device (CANCEL with
    /// `Reason: SIP;cause=200`), so it is not a missed call.
    pub answered_elsewhere: bool,
}

impl Msg {
    pub fn new(kind: Kind) -> Msg {
        Msg {
            kind,
            vars: Vars::new(),
            answered_elsewhere: false,
        }
    }

    /// Sets a variable by value (builder style, for tests and the C API).
    pub fn with(mut self, var: Var, value: &str) -> Msg {
        self.vars.set(var, value);
        self
    }
}

/// Transition verbs of the wire format and `emit`, with the `state=` values each takes.
pub const VERBS: &[(&str, &str)] = &[
    ("call", "incoming|calling|ringing|confirmed|ended"),
    ("register", "registering|ok|failed|off"),
    (
        "media",
        "held|active (or the SDP direction sendonly|inactive|recvonly|sendrecv)",
    ),
    ("refer", "blind|attended"),
    ("hook", "off|on"),
    ("dnd", "on|off"),
    ("forward", "on|off"),
    ("syslog", "on|off"),
    ("boot", "(none)"),
];

/// Why a message's verb or state was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KindError {
    #[error("unknown verb or event")]
    UnknownVerb,
    #[error("missing state=")]
    MissingState,
    #[error("bad state= value for this verb")]
    BadState,
}

/// Maps a verb and its `state=` value to a [`Kind`]. The verb may also be an event key or alias.
pub fn parse_kind(verb: &str, state: Option<&str>) -> Result<Kind, KindError> {
    let on_off = |s: Option<&str>| match s {
        Some("on") | Some("1") | Some("true") => Ok(true),
        Some("off") | Some("0") | Some("false") => Ok(false),
        Some(_) => Err(KindError::BadState),
        None => Err(KindError::MissingState),
    };
    fn need(s: Option<&str>) -> Result<&str, KindError> {
        s.ok_or(KindError::MissingState)
    }
    Ok(match verb {
        "call" => Kind::Call(match need(state)? {
            "incoming" => CallState::Incoming,
            "calling" | "outgoing" => CallState::Calling,
            "ringing" | "early" => CallState::Ringing,
            "confirmed" | "established" | "answered" => CallState::Confirmed,
            "ended" | "terminated" | "closed" => CallState::Ended,
            _ => return Err(KindError::BadState),
        }),
        "register" => Kind::Register(match need(state)? {
            "registering" => RegState::Registering,
            "ok" | "registered" => RegState::Ok,
            "failed" => RegState::Failed,
            "off" | "unregistered" => RegState::Off,
            _ => return Err(KindError::BadState),
        }),
        "media" => Kind::Media(match need(state)? {
            "held" | "sendonly" | "inactive" => MediaState::Held,
            "active" | "sendrecv" | "recvonly" => MediaState::Active,
            _ => return Err(KindError::BadState),
        }),
        "refer" => Kind::Refer(match need(state)? {
            "blind" => TransferKind::Blind,
            "attended" => TransferKind::Attended,
            _ => return Err(KindError::BadState),
        }),
        "hook" => Kind::Hook(match need(state)? {
            "off" => true,
            "on" => false,
            _ => return Err(KindError::BadState),
        }),
        "dnd" => Kind::Dnd(on_off(state)?),
        "forward" => Kind::Forward(on_off(state)?),
        "syslog" => Kind::Syslog(on_off(state)?),
        "boot" => Kind::Boot,
        other => Kind::Direct(Event::from_name(other).ok_or(KindError::UnknownVerb)?),
    })
}
