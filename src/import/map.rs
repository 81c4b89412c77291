//! The mapping tables: each vendor's action-URL keys and `$variables` to the twenty events and
//! the variables of the guide. Written from the vendors' published lists (see docs/ADMIN.md,
//! "Importing another vendor's action URLs"); a key or variable whose meaning is not published,
//! or that has no equivalent here, maps to a reason, which the report shows.

use crate::core::event::Event;
use crate::core::var::Var;

/// Where a vendor's action-URL key goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Event(Event),
    /// Not imported, and why.
    None(&'static str),
}

const NO_EVENT: &str = "no equivalent event among the twenty";
const FWD_KIND: &str =
    "only always (unconditional) forwarding has an event here: call_forwarding_on/off";
const XFER_KIND: &str =
    "a transfer of either kind: blind_transferring and attended_transferring are separate events";
const REG_FAILED: &str = "a failed registration has no event here (registration / sign_off only)";
const HELD: &str =
    "being held by the other party has no event here (hold_call is this phone's hold)";

use Event as E;
use Target::Event as Ev;
use Target::None as No;

/// Yealink `action_url.<key>` (the part after `action_url.`): the keys of Yealink's
/// administrator guides and common `.cfg` template (Features > Action URL).
pub const YEALINK_KEYS: &[(&str, Target)] = &[
    ("setup_completed", Ev(E::BootingCompleted)),
    ("registered", Ev(E::Registration)),
    ("unregistered", Ev(E::SignOff)),
    ("register_failed", No(REG_FAILED)),
    ("off_hook", Ev(E::OffHook)),
    ("on_hook", Ev(E::OnHook)),
    ("incoming_call", Ev(E::IncomingCall)),
    ("outgoing_call", Ev(E::OutgoingCall)),
    ("call_established", Ev(E::EstablishCall)),
    ("call_terminated", Ev(E::TerminateCall)),
    ("missed_call", Ev(E::MissedCall)),
    ("dnd_on", Ev(E::DndOn)),
    ("dnd_off", Ev(E::DndOff)),
    ("always_fwd_on", Ev(E::CallForwardingOn)),
    ("always_fwd_off", Ev(E::CallForwardingOff)),
    ("busy_fwd_on", No(FWD_KIND)),
    ("busy_fwd_off", No(FWD_KIND)),
    ("no_answer_fwd_on", No(FWD_KIND)),
    ("no_answer_fwd_off", No(FWD_KIND)),
    ("transfer_call", No(XFER_KIND)),
    ("blind_transfer_call", Ev(E::BlindTransferring)),
    ("attended_transfer_call", Ev(E::AttendedTransferring)),
    ("hold", Ev(E::HoldCall)),
    ("unhold", Ev(E::ResumeCall)),
    ("held", No(HELD)),
    ("unheld", No(HELD)),
    ("mute", No(NO_EVENT)),
    ("unmute", No(NO_EVENT)),
    ("busy_to_idle", No(NO_EVENT)),
    ("idle_to_busy", No(NO_EVENT)),
    ("ip_change", No(NO_EVENT)),
    ("forward_incoming_call", No(NO_EVENT)),
    ("reject_incoming_call", No(NO_EVENT)),
    ("answer_new_incoming_call", No(NO_EVENT)),
    ("transfer_finished", No(NO_EVENT)),
    ("transfer_failed", No(NO_EVENT)),
    ("call_remote_canceled", No(NO_EVENT)),
    ("remote_busy", No(NO_EVENT)),
    ("cancel_callout", No(NO_EVENT)),
    ("handfree", No(NO_EVENT)),
    ("headset", No(NO_EVENT)),
    ("call_waiting_on", No(NO_EVENT)),
    ("call_waiting_off", No(NO_EVENT)),
    ("setup_autop_finish", No(NO_EVENT)),
    ("peripheral_information", No(NO_EVENT)),
    ("vpn_ip", No(NO_EVENT)),
];

/// Snom settings (Setup > Action URL Settings). "Log On" / "Log Off" are the identity's
/// registration (SIP OK) and deregistration, as Snom's wiki describes them.
pub const SNOM_KEYS: &[(&str, Target)] = &[
    ("action_setup_url", Ev(E::BootingCompleted)),
    ("action_log_on_url", Ev(E::Registration)),
    ("action_log_off_url", Ev(E::SignOff)),
    ("action_reg_failed", No(REG_FAILED)),
    ("action_incoming_url", Ev(E::IncomingCall)),
    ("action_outgoing_url", Ev(E::OutgoingCall)),
    ("action_offhook_url", Ev(E::OffHook)),
    ("action_onhook_url", Ev(E::OnHook)),
    ("action_missed_url", Ev(E::MissedCall)),
    ("action_connected_url", Ev(E::EstablishCall)),
    ("action_disconnected_url", Ev(E::TerminateCall)),
    ("action_dnd_on_url", Ev(E::DndOn)),
    ("action_dnd_off_url", Ev(E::DndOff)),
    ("action_redirection_on_url", Ev(E::CallForwardingOn)),
    ("action_redirection_off_url", Ev(E::CallForwardingOff)),
    ("action_hold", Ev(E::HoldCall)),
    ("action_unhold", Ev(E::ResumeCall)),
    ("action_transfer", No(XFER_KIND)),
    ("action_blind_transfer", Ev(E::BlindTransferring)),
    ("action_attended_transfer", Ev(E::AttendedTransferring)),
    ("action_received_attended_transfer", No(NO_EVENT)),
    ("action_longpress_url", No(NO_EVENT)),
    ("action_blacklist_url", No(NO_EVENT)),
    ("action_received_subscr_notify_url", No(NO_EVENT)),
    ("action_firewall_test", No(NO_EVENT)),
];

/// Grandstream GRP/GXP P-values of Settings > Outbound Notification > Action URL, as the
/// GRP26xx administration guides list them. Only these: another P-value is never guessed.
pub const GRANDSTREAM_PVALUES: &[(u32, Target)] = &[
    (8304, Ev(E::BootingCompleted)),
    (8305, Ev(E::Registration)),
    (8306, Ev(E::SignOff)),
    (8308, Ev(E::OffHook)),
    (8309, Ev(E::OnHook)),
    (8310, Ev(E::IncomingCall)),
    (8311, Ev(E::OutgoingCall)),
];

/// What a vendor's `$variable` becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VarTo {
    /// The variable of the guide, with a note when the value differs (`None`: same meaning).
    Var(Var, Option<&'static str>),
    /// No equivalent: kept as literal text (`$$name`), and why.
    None(&'static str),
}

const URI_NOT_NUMBER: &str = "here it is the number (user part), not the whole SIP URI";
const NO_VAR: &str = "no equivalent variable";

/// Yealink's variable values list.
pub const YEALINK_VARS: &[(&str, VarTo)] = &[
    ("mac", VarTo::Var(Var::Mac, None)),
    ("ip", VarTo::Var(Var::PhoneIp, None)),
    ("model", VarTo::Var(Var::Product, None)),
    ("firmware", VarTo::Var(Var::ProgramVersion, None)),
    (
        "active_url",
        VarTo::None("no equivalent variable (use $active_user@$active_host)"),
    ),
    ("active_user", VarTo::Var(Var::ActiveUser, None)),
    ("active_host", VarTo::Var(Var::ActiveHost, None)),
    ("local", VarTo::Var(Var::Local, Some(URI_NOT_NUMBER))),
    ("remote", VarTo::Var(Var::Remote, Some(URI_NOT_NUMBER))),
    ("display_local", VarTo::Var(Var::DisplayLocal, None)),
    ("display_remote", VarTo::Var(Var::DisplayRemote, None)),
    ("call_id", VarTo::Var(Var::CallId, None)),
    ("callerID", VarTo::Var(Var::Remote, None)),
    ("calledNumber", VarTo::Var(Var::Remote, None)),
];

/// Snom's run-time variables (Action URL Settings). Any other `$name` on a Snom is a phone
/// setting, which has no equivalent here.
pub const SNOM_VARS: &[(&str, VarTo)] = &[
    ("local", VarTo::Var(Var::Local, Some(URI_NOT_NUMBER))),
    ("remote", VarTo::Var(Var::Remote, Some(URI_NOT_NUMBER))),
    (
        "active_url",
        VarTo::None("no equivalent variable (use $active_user@$active_host)"),
    ),
    ("active_user", VarTo::Var(Var::ActiveUser, None)),
    ("active_host", VarTo::Var(Var::ActiveHost, None)),
    ("csta_id", VarTo::None(NO_VAR)),
    ("call-id", VarTo::Var(Var::CallId, None)),
    ("display_local", VarTo::Var(Var::DisplayLocal, None)),
    ("display_remote", VarTo::Var(Var::DisplayRemote, None)),
    ("expansion_module", VarTo::None(NO_VAR)),
    ("active_key", VarTo::None(NO_VAR)),
    ("phone_ip", VarTo::Var(Var::PhoneIp, None)),
    ("mac", VarTo::Var(Var::Mac, None)),
    ("nr_ongoing_calls", VarTo::None(NO_VAR)),
    ("context_url", VarTo::None(NO_VAR)),
    ("cancel_reason", VarTo::None(NO_VAR)),
    ("longpress_key", VarTo::None(NO_VAR)),
    ("sip_header", VarTo::None(NO_VAR)),
];

/// Grandstream's dynamic variables are the guide's own fifteen.
pub const GRANDSTREAM_VARS: &[(&str, VarTo)] = &[
    ("phone_ip", VarTo::Var(Var::PhoneIp, None)),
    ("mac", VarTo::Var(Var::Mac, None)),
    ("product", VarTo::Var(Var::Product, None)),
    ("program_version", VarTo::Var(Var::ProgramVersion, None)),
    ("hardware_version", VarTo::Var(Var::HardwareVersion, None)),
    ("language", VarTo::Var(Var::Language, None)),
    ("local", VarTo::Var(Var::Local, None)),
    ("display_local", VarTo::Var(Var::DisplayLocal, None)),
    ("remote", VarTo::Var(Var::Remote, None)),
    ("display_remote", VarTo::Var(Var::DisplayRemote, None)),
    ("call_id", VarTo::Var(Var::CallId, None)),
    ("active_user", VarTo::Var(Var::ActiveUser, None)),
    ("active_host", VarTo::Var(Var::ActiveHost, None)),
    ("duration", VarTo::Var(Var::Duration, None)),
    ("calldirection", VarTo::Var(Var::CallDirection, None)),
];

/// The longest name in `table` that `text` starts with.
pub fn longest_var(
    table: &'static [(&'static str, VarTo)],
    text: &str,
) -> Option<(&'static str, VarTo)> {
    table
        .iter()
        .filter(|(n, _)| text.starts_with(n))
        .max_by_key(|(n, _)| n.len())
        .copied()
}

/// The entry of `table` named exactly `word`.
pub fn exact_var(
    table: &'static [(&'static str, VarTo)],
    word: &str,
) -> Option<(&'static str, VarTo)> {
    table.iter().find(|(n, _)| *n == word).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_key_twice_and_every_event_target_is_consistent_with_the_aliases() {
        for table in [YEALINK_KEYS, SNOM_KEYS] {
            for (i, (k, _)) in table.iter().enumerate() {
                assert!(table[i + 1..].iter().all(|(o, _)| o != k), "{k} twice");
            }
        }
        // A Snom key that is also an alias in configs must mean the same event there.
        for (k, t) in SNOM_KEYS {
            if let (Target::Event(e), Some(alias)) = (t, Event::from_name(k)) {
                assert_eq!(*e, alias, "{k}");
            }
        }
    }

    #[test]
    fn longest_vendor_name_wins() {
        assert_eq!(
            longest_var(YEALINK_VARS, "active_user&x").map(|x| x.0),
            Some("active_user")
        );
        assert_eq!(
            longest_var(SNOM_VARS, "call-id").map(|x| x.0),
            Some("call-id")
        );
        assert_eq!(
            longest_var(GRANDSTREAM_VARS, "calldirection").map(|x| x.0),
            Some("calldirection")
        );
        assert_eq!(longest_var(YEALINK_VARS, "nope"), None);
    }
}
