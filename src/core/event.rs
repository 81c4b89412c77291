//! The twenty phone events of the GXV33XX Event Notify page, and the names other firmwares use.

use core::fmt;

/// One of the twenty events, in the order of the GXV33XX guide (seed 001).
///
/// The discriminant is the index into per-event tables (`[T; Event::COUNT]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Event {
    IncomingCall,
    OutgoingCall,
    EstablishCall,
    TerminateCall,
    OffHook,
    OnHook,
    MissedCall,
    DndOn,
    DndOff,
    CallForwardingOn,
    CallForwardingOff,
    HoldCall,
    ResumeCall,
    SyslogOn,
    SyslogOff,
    BootingCompleted,
    BlindTransferring,
    AttendedTransferring,
    Registration,
    SignOff,
}

/// Aliases accepted wherever an event key is read: (alias, event). Keys of Yealink and Snom
/// action URLs, so an existing integration's config carries over.
pub const EVENT_ALIASES: &[(&str, Event)] = &[
    // Yealink action URL keys
    ("setup_completed", Event::BootingCompleted),
    ("call_established", Event::EstablishCall),
    ("call_terminated", Event::TerminateCall),
    ("registered", Event::Registration),
    ("unregistered", Event::SignOff),
    ("hold", Event::HoldCall),
    ("unhold", Event::ResumeCall),
    ("open_dnd", Event::DndOn),
    ("close_dnd", Event::DndOff),
    ("open_always_fwd", Event::CallForwardingOn),
    ("close_always_fwd", Event::CallForwardingOff),
    ("blind_transfer_call", Event::BlindTransferring),
    ("attended_transfer_call", Event::AttendedTransferring),
    ("log_on", Event::SyslogOn),
    ("log_off", Event::SyslogOff),
    // Snom action URL setting names
    ("action_setup_url", Event::BootingCompleted),
    ("action_reg_on_url", Event::Registration),
    ("action_reg_off_url", Event::SignOff),
    ("action_incoming_url", Event::IncomingCall),
    ("action_outgoing_url", Event::OutgoingCall),
    ("action_connected_url", Event::EstablishCall),
    ("action_disconnected_url", Event::TerminateCall),
    ("action_offhook_url", Event::OffHook),
    ("action_onhook_url", Event::OnHook),
    ("action_missed_url", Event::MissedCall),
    ("action_dnd_on_url", Event::DndOn),
    ("action_dnd_off_url", Event::DndOff),
    ("action_redirection_on_url", Event::CallForwardingOn),
    ("action_redirection_off_url", Event::CallForwardingOff),
    ("action_hold_url", Event::HoldCall),
    ("action_unhold_url", Event::ResumeCall),
    // Snom's "Log On" / "Log Off" URLs fire on the identity's registration and deregistration.
    ("action_log_on_url", Event::Registration),
    ("action_log_off_url", Event::SignOff),
    ("action_hold", Event::HoldCall),
    ("action_unhold", Event::ResumeCall),
    ("action_blind_transfer", Event::BlindTransferring),
    ("action_attended_transfer", Event::AttendedTransferring),
    ("action_transfer_url", Event::BlindTransferring),
    ("action_attended_transfer_url", Event::AttendedTransferring),
];

impl Event {
    pub const COUNT: usize = 20;

    pub const ALL: [Event; Event::COUNT] = [
        Event::IncomingCall,
        Event::OutgoingCall,
        Event::EstablishCall,
        Event::TerminateCall,
        Event::OffHook,
        Event::OnHook,
        Event::MissedCall,
        Event::DndOn,
        Event::DndOff,
        Event::CallForwardingOn,
        Event::CallForwardingOff,
        Event::HoldCall,
        Event::ResumeCall,
        Event::SyslogOn,
        Event::SyslogOff,
        Event::BootingCompleted,
        Event::BlindTransferring,
        Event::AttendedTransferring,
        Event::Registration,
        Event::SignOff,
    ];

    /// The canonical key, as saved by the Event Notify page.
    pub const fn key(self) -> &'static str {
        match self {
            Event::IncomingCall => "incoming_call",
            Event::OutgoingCall => "outgoing_call",
            Event::EstablishCall => "establish_call",
            Event::TerminateCall => "terminate_call",
            Event::OffHook => "off_hook",
            Event::OnHook => "on_hook",
            Event::MissedCall => "missed_call",
            Event::DndOn => "dnd_on",
            Event::DndOff => "dnd_off",
            Event::CallForwardingOn => "call_forwarding_on",
            Event::CallForwardingOff => "call_forwarding_off",
            Event::HoldCall => "hold_call",
            Event::ResumeCall => "resume_call",
            Event::SyslogOn => "syslog_on",
            Event::SyslogOff => "syslog_off",
            Event::BootingCompleted => "booting_completed",
            Event::BlindTransferring => "blind_transferring",
            Event::AttendedTransferring => "attended_transferring",
            Event::Registration => "registration",
            Event::SignOff => "sign_off",
        }
    }

    /// The label of the GXV33XX web page ("Incoming Call").
    pub const fn label(self) -> &'static str {
        match self {
            Event::IncomingCall => "Incoming Call",
            Event::OutgoingCall => "Outgoing Call",
            Event::EstablishCall => "Establish Call",
            Event::TerminateCall => "Terminate Call",
            Event::OffHook => "Off Hook",
            Event::OnHook => "On Hook",
            Event::MissedCall => "Missed Call",
            Event::DndOn => "DND On",
            Event::DndOff => "DND Off",
            Event::CallForwardingOn => "Call Forwarding On",
            Event::CallForwardingOff => "Call Forwarding Off",
            Event::HoldCall => "Hold Call",
            Event::ResumeCall => "Resume Call",
            Event::SyslogOn => "Syslog On",
            Event::SyslogOff => "Syslog Off",
            Event::BootingCompleted => "Booting Completed",
            Event::BlindTransferring => "Blind Transferring",
            Event::AttendedTransferring => "Attended Transferring",
            Event::Registration => "Registration",
            Event::SignOff => "Sign Off",
        }
    }

    pub const fn index(self) -> usize {
        self as usize
    }

    /// Is this event about one call (so `$call_id`, `$duration`, … have values)?
    pub const fn is_call_event(self) -> bool {
        matches!(
            self,
            Event::IncomingCall
                | Event::OutgoingCall
                | Event::EstablishCall
                | Event::TerminateCall
                | Event::MissedCall
                | Event::HoldCall
                | Event::ResumeCall
                | Event::BlindTransferring
                | Event::AttendedTransferring
        )
    }

    /// Looks up a canonical key, a page label or an alias. Case, spaces and `-` are forgiven
    /// (`"Incoming Call"`, `"INCOMING-CALL"` and `"incoming_call"` are the same key).
    ///
    /// ```
    /// use event_notify::Event;
    /// assert_eq!(Event::from_name("call_established"), Some(Event::EstablishCall));
    /// assert_eq!(Event::from_name("DND On"), Some(Event::DndOn));
    /// assert_eq!(Event::from_name("ringing"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Event> {
        // The canonical key as it is (every socket line's verb, usually): compared whole.
        for e in Event::ALL {
            if e.key() == name {
                return Some(e);
            }
        }
        let name = name.trim();
        let same = |key: &str| {
            key.len() == name.len()
                && key.bytes().zip(name.bytes()).all(|(k, n)| {
                    let n = match n {
                        b' ' | b'-' => b'_',
                        other => other.to_ascii_lowercase(),
                    };
                    k == n
                })
        };
        Event::ALL
            .iter()
            .copied()
            .find(|e| same(e.key()))
            .or_else(|| EVENT_ALIASES.iter().find(|(a, _)| same(a)).map(|&(_, e)| e))
    }

    /// The aliases of this event.
    pub fn aliases(self) -> impl Iterator<Item = &'static str> {
        EVENT_ALIASES
            .iter()
            .filter(move |(_, e)| *e == self)
            .map(|(a, _)| *a)
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_indices_match() {
        for (i, e) in Event::ALL.iter().enumerate() {
            assert_eq!(e.index(), i);
            assert_eq!(Event::from_name(e.key()), Some(*e));
            assert_eq!(Event::from_name(e.label()), Some(*e));
        }
    }

    #[test]
    fn aliases_resolve_and_do_not_shadow_keys() {
        for (alias, e) in EVENT_ALIASES {
            assert_eq!(Event::from_name(alias), Some(*e), "{alias}");
            assert!(
                Event::ALL.iter().all(|k| k.key() != *alias),
                "{alias} is a key"
            );
        }
        assert_eq!(
            Event::from_name("Action_Incoming_URL"),
            Some(Event::IncomingCall)
        );
        assert_eq!(Event::from_name(""), None);
        assert_eq!(Event::from_name("incoming_cal"), None);
    }
}
