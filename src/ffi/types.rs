//! The C types of the API: result codes, log levels, the engine handle, the counters.

use crate::daemon::{self, Handle};
use std::ffi::{c_char, c_int, c_uint, c_void, CStr};
use std::sync::atomic::AtomicU64;

/// Version of this API; bumped on any incompatible change (`EN_ABI_VERSION` in the header).
pub const EN_ABI_VERSION: c_uint = 1;

// Result codes: 0 or a negative `en_error`.
pub const EN_OK: c_int = 0;
pub const EN_E_NULL: c_int = -1;
pub const EN_E_UTF8: c_int = -2;
pub const EN_E_UNKNOWN_VERB: c_int = -3;
pub const EN_E_UNKNOWN_EVENT: c_int = -4;
pub const EN_E_MISSING_STATE: c_int = -5;
pub const EN_E_BAD_STATE: c_int = -6;
pub const EN_E_UNKNOWN_FIELD: c_int = -7;
pub const EN_E_RANGE: c_int = -8;
pub const EN_E_CONFIG_READ: c_int = -9;
pub const EN_E_CONFIG_INVALID: c_int = -10;
pub const EN_E_BOARD: c_int = -11;
pub const EN_E_SYSTEM: c_int = -12;
pub const EN_E_STOPPED: c_int = -13;
pub const EN_E_LOGGER: c_int = -14;
pub const EN_E_PANIC: c_int = -15;

/// Every result code: (value, name in the header, what [`en_strerror`] says).
pub const CODES: &[(c_int, &str, &CStr)] = &[
    (EN_OK, "EN_OK", c"success"),
    (
        EN_E_NULL,
        "EN_E_NULL",
        c"a required pointer argument is NULL",
    ),
    (
        EN_E_UTF8,
        "EN_E_UTF8",
        c"a string argument is not valid UTF-8",
    ),
    (
        EN_E_UNKNOWN_VERB,
        "EN_E_UNKNOWN_VERB",
        c"unknown verb: neither a transition verb nor an event key or alias",
    ),
    (
        EN_E_UNKNOWN_EVENT,
        "EN_E_UNKNOWN_EVENT",
        c"unknown event: not one of the twenty event keys or an alias",
    ),
    (
        EN_E_MISSING_STATE,
        "EN_E_MISSING_STATE",
        c"this transition verb needs a state field",
    ),
    (
        EN_E_BAD_STATE,
        "EN_E_BAD_STATE",
        c"bad state value for this transition verb",
    ),
    (
        EN_E_UNKNOWN_FIELD,
        "EN_E_UNKNOWN_FIELD",
        c"unknown field name (not a variable name, state, reason or elsewhere)",
    ),
    (EN_E_RANGE, "EN_E_RANGE", c"an argument is out of range"),
    (
        EN_E_CONFIG_READ,
        "EN_E_CONFIG_READ",
        c"the config file cannot be read",
    ),
    (
        EN_E_CONFIG_INVALID,
        "EN_E_CONFIG_INVALID",
        c"the config file is invalid (the problems are logged)",
    ),
    (
        EN_E_BOARD,
        "EN_E_BOARD",
        c"the board file cannot be read or is invalid",
    ),
    (
        EN_E_SYSTEM,
        "EN_E_SYSTEM",
        c"a system resource failed (threads, file descriptors, TLS setup)",
    ),
    (
        EN_E_STOPPED,
        "EN_E_STOPPED",
        c"the engine has stopped; destroy it and create a new one",
    ),
    (
        EN_E_LOGGER,
        "EN_E_LOGGER",
        c"another logger is already installed in this process",
    ),
    (
        EN_E_PANIC,
        "EN_E_PANIC",
        c"internal error caught at the API boundary (a bug: please report it)",
    ),
];

// Log levels of `en_set_log` and the log callback (`en_log_level` in the header).
pub const EN_LOG_OFF: c_int = 0;
pub const EN_LOG_ERROR: c_int = 1;
pub const EN_LOG_WARN: c_int = 2;
pub const EN_LOG_INFO: c_int = 3;
pub const EN_LOG_DEBUG: c_int = 4;
pub const EN_LOG_TRACE: c_int = 5;

/// Every named constant of the header with its value: the result codes, the log levels and
/// `EN_ABI_VERSION`. `tests/it/ffi_header.rs` compares the header with this list.
pub fn constants() -> Vec<(&'static str, i64)> {
    let mut v: Vec<(&'static str, i64)> = CODES
        .iter()
        .map(|&(code, name, _)| (name, code as i64))
        .collect();
    v.extend([
        ("EN_LOG_OFF", EN_LOG_OFF as i64),
        ("EN_LOG_ERROR", EN_LOG_ERROR as i64),
        ("EN_LOG_WARN", EN_LOG_WARN as i64),
        ("EN_LOG_INFO", EN_LOG_INFO as i64),
        ("EN_LOG_DEBUG", EN_LOG_DEBUG as i64),
        ("EN_LOG_TRACE", EN_LOG_TRACE as i64),
        ("EN_ABI_VERSION", EN_ABI_VERSION as i64),
    ]);
    v
}

/// An engine running in threads of the calling program. Opaque to C.
pub struct en_engine {
    pub(super) handle: Handle,
    /// Calls refused by this API (bad arguments, unknown verb or field).
    pub(super) refused: AtomicU64,
}

/// The engine's counters (`en_counters` in the header). Fields are only ever appended.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct en_counters {
    pub messages: u64,
    pub events: u64,
    pub queued: u64,
    pub delivered: u64,
    pub retried: u64,
    pub failed: u64,
    pub dropped: u64,
    pub not_configured: u64,
    pub too_long: u64,
    pub pending: u64,
    pub in_flight: u64,
    pub refused: u64,
    pub reloads: u64,
    pub reload_errors: u64,
}

/// The log callback: `(user, level, message)`; `message` is borrowed for the call.
pub type en_log_fn = Option<unsafe extern "C" fn(*mut c_void, c_int, *const c_char)>;

/// One place where the two counter sets meet. Both sides are written out in full (no `..`), so a
/// field added to either struct does not compile until it is mapped here, or named as left out.
impl From<daemon::Counters> for en_counters {
    fn from(d: daemon::Counters) -> en_counters {
        let daemon::Counters {
            messages,
            events,
            queued,
            delivered,
            retried,
            failed,
            dropped,
            pending,
            in_flight,
            not_configured,
            too_long,
            refused,
            reloads,
            reload_errors,
            // Not in the C struct (yet): the call tracker's counters. Appending them would be an
            // ABI change (EN_ABI_VERSION); they are in `status`.
            duplicates: _,
            unknown_call: _,
            call_table_full: _,
        } = d;
        en_counters {
            messages,
            events,
            queued,
            delivered,
            retried,
            failed,
            dropped,
            not_configured,
            too_long,
            pending,
            in_flight,
            refused,
            reloads,
            reload_errors,
        }
    }
}
