//! The C API: the engine linked into the handset firmware (the SIP stack, the UI).
//!
//! `include/event_notify.h` is its header; `docs/FIRMWARE.md` shows how to link it. Every
//! function here:
//! - takes and returns plain C types only;
//! - refuses a NULL pointer or a string that is not UTF-8 with an error code (never a crash);
//! - catches any Rust panic and returns [`EN_E_PANIC`] instead (the library must be built with
//!   `panic = "unwind"`, e.g. `cargo build --lib --profile ffi`; with the release profile's
//!   `panic = "abort"` a bug aborts the process);
//! - borrows its string arguments for the duration of the call only (the caller keeps ownership).
//!
//! An `en_engine` is [`daemon::spawn`] without a socket: the engine loop and its delivery workers
//! run in threads of the calling program. Its inbox is a bounded channel that any thread may send
//! to, so every call except [`en_destroy`] may come from any thread at any time.
//!
//! `tests/it/ffi_header.rs` checks the header against this file (functions, the counters struct, the
//! constants) and against the symbols the built library exports.

// The C names are the API: `en_engine`, `en_counters`, `en_log_fn`.
#![allow(non_camel_case_types)]

mod boundary;
mod log_sink;
mod types;

use crate::core::config::Board;
use crate::core::event::Event;
use crate::core::hook::{parse_kind, Kind, Msg, VERBS};
use crate::core::var::Var;
use crate::core::wire::reason_is_elsewhere;
use crate::daemon::{self, Options, ReloadError};
use std::ffi::{c_char, c_int, c_uint, CStr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

pub use boundary::guard;
use boundary::*;
pub use log_sink::en_set_log;
pub use types::*;

// ---------------------------------------------------------------------------------------------
// The API

/// The version of this API the library implements; compare with `EN_ABI_VERSION`.
#[no_mangle]
pub extern "C" fn en_abi_version() -> c_uint {
    EN_ABI_VERSION
}

/// The library's version, e.g. `"0.1.0"`: a static string, never to be freed.
#[no_mangle]
pub extern "C" fn en_version() -> *const c_char {
    static VERSION: &CStr =
        match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
            Ok(s) => s,
            Err(_) => c"",
        };
    VERSION.as_ptr()
}

/// A static description of a result code; never NULL, never to be freed.
#[no_mangle]
pub extern "C" fn en_strerror(code: c_int) -> *const c_char {
    // Static C string literals: no allocation, nothing to free.
    CODES
        .iter()
        .find(|&&(c, _, _)| c == code)
        .map_or(c"unknown result code", |&(_, _, text)| text)
        .as_ptr()
}

/// Starts an engine: reads and validates the config file, reads the board file if one is given,
/// and starts the engine's threads (one engine loop, a few delivery workers). No socket.
///
/// `config_path`: required. `board_path`: NULL for none. Both are borrowed for the call.
/// `err`: NULL, or where the result code is written (`EN_OK` on success).
/// Returns the engine, owned by the caller until [`en_destroy`], or NULL on failure.
///
/// # Safety
/// The strings are NULL or NUL-terminated; `err` is NULL or points to an `int`.
#[no_mangle]
pub unsafe extern "C" fn en_create(
    config_path: *const c_char,
    board_path: *const c_char,
    err: *mut c_int,
) -> *mut en_engine {
    let mut out: *mut en_engine = std::ptr::null_mut();
    let code = guard(|| {
        // SAFETY: the caller's contract.
        let config = match unsafe { arg_str(config_path) } {
            Ok(s) => s,
            Err(e) => return e,
        };
        // SAFETY: the caller's contract.
        let board = match unsafe { opt_str(board_path) } {
            Ok(None) => Board::default(),
            Ok(Some(p)) => match std::fs::read_to_string(p)
                .map_err(|e| e.to_string())
                .and_then(|t| Board::from_json(&t))
            {
                Ok(b) => b,
                Err(e) => {
                    log::error!("en_create: board {p}: {e}");
                    return EN_E_BOARD;
                }
            },
            Err(e) => return e,
        };
        let opts = Options {
            config: PathBuf::from(config),
            socket: None,
            board,
            baresip: None,
            admin: None,
        };
        match with_signals_blocked(|| daemon::spawn(opts)) {
            Ok(handle) => {
                out = Box::into_raw(Box::new(en_engine {
                    handle,
                    refused: AtomicU64::new(0),
                }));
                EN_OK
            }
            Err(e) => {
                // One log line per problem of an invalid config.
                for line in e.to_string().lines() {
                    log::error!("en_create: {line}");
                }
                daemon_code(&e)
            }
        }
    });
    set_err(err, code);
    out
}

/// What the verb of a report may be.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Verbs {
    /// A transition verb or an event key/alias (as the socket and `emit` take).
    Any,
    /// Only an event key or alias.
    EventsOnly,
}

/// Builds the message of a report.
///
/// # Safety
/// `verb` as [`arg_str`]; `keys` and `values` NULL or arrays of `n` such strings.
unsafe fn build(
    verbs: Verbs,
    verb: *const c_char,
    keys: *const *const c_char,
    values: *const *const c_char,
    n: usize,
) -> Result<Msg, c_int> {
    // SAFETY: the caller's contract.
    let verb = unsafe { arg_str(verb) }?;
    let event = Event::from_name(verb);
    let is_verb = VERBS.iter().any(|(v, _)| *v == verb);
    match verbs {
        Verbs::EventsOnly if event.is_none() => return Err(EN_E_UNKNOWN_EVENT),
        Verbs::Any if event.is_none() && !is_verb => return Err(EN_E_UNKNOWN_VERB),
        _ => {}
    }
    if n > 0 && (keys.is_null() || values.is_null()) {
        return Err(EN_E_NULL);
    }
    let mut msg = Msg::new(Kind::Boot);
    let mut state: Option<&str> = None;
    for i in 0..n {
        // SAFETY: both arrays hold `n` pointers (checked non-NULL above).
        let (k, v) = unsafe { (*keys.add(i), *values.add(i)) };
        // SAFETY: the caller's contract for each element.
        let (key, value) = unsafe { (arg_str(k)?, arg_str(v)?) };
        match key {
            "state" if verbs == Verbs::Any => state = Some(value),
            "reason" if verbs == Verbs::Any => msg.answered_elsewhere |= reason_is_elsewhere(value),
            "elsewhere" if verbs == Verbs::Any => {
                msg.answered_elsewhere |= matches!(value, "1" | "true" | "yes")
            }
            _ => {
                let var = Var::from_name(key).ok_or(EN_E_UNKNOWN_FIELD)?;
                msg.vars.set(var, value);
            }
        }
    }
    msg.kind = match (verbs, event) {
        (Verbs::EventsOnly, Some(e)) => Kind::Direct(e),
        _ => parse_kind(verb, state).map_err(kind_code)?,
    };
    Ok(msg)
}

/// Builds and sends one report; counts a refusal.
///
/// # Safety
/// As [`build`], and `e` as [`engine`].
unsafe fn report(
    verbs: Verbs,
    e: *mut en_engine,
    verb: *const c_char,
    keys: *const *const c_char,
    values: *const *const c_char,
    n: usize,
) -> c_int {
    guard(|| {
        // SAFETY: the caller's contract.
        let engine = match unsafe { engine(e) } {
            Ok(en) => en,
            Err(code) => return code,
        };
        // SAFETY: the caller's contract.
        match unsafe { build(verbs, verb, keys, values, n) } {
            Ok(msg) => {
                if engine.handle.inbox().send(msg) {
                    EN_OK
                } else {
                    EN_E_STOPPED
                }
            }
            Err(code) => {
                engine.refused.fetch_add(1, Ordering::Relaxed);
                let what = if verbs == Verbs::Any {
                    "en_transition"
                } else {
                    "en_event"
                };
                // SAFETY: `en_strerror` returns a static C string.
                let why = unsafe { CStr::from_ptr(en_strerror(code)) };
                log::warn!("{what} refused: {}", why.to_string_lossy());
                code
            }
        }
    })
}

/// Reports a transition (`verb` = `call`, `register`, `media`, `refer`, `hook`, `dnd`, `forward`,
/// `syslog`, `boot`) or a direct event (`verb` = an event key or alias), with `n` fields:
/// `keys[i]` = `values[i]`. Keys are variable names without `$` (or their aliases), plus `state`,
/// `reason` (a SIP Reason header value) and `elsewhere` (`1` = answered on another device).
/// Values are plain UTF-8 (not percent-encoded), cut at 128 bytes.
///
/// Returns `EN_OK` once the engine has the report (it derives and sends the events in its own
/// threads), or a negative code; a refused report is counted in `refused`. Everything passed is
/// borrowed for the call. May block briefly while 64 reports are waiting for the engine.
///
/// # Safety
/// `e` is NULL or a live engine; `verb` is NULL or NUL-terminated; `keys` and `values` are NULL
/// (only with `n == 0`) or arrays of `n` pointers to NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn en_transition(
    e: *mut en_engine,
    verb: *const c_char,
    keys: *const *const c_char,
    values: *const *const c_char,
    n: usize,
) -> c_int {
    // SAFETY: the caller's contract.
    unsafe { report(Verbs::Any, e, verb, keys, values, n) }
}

/// Reports a direct event: `event` is one of the twenty event keys or an alias (a transition
/// verb is refused with `EN_E_UNKNOWN_EVENT`); the fields are variable names without `$` (device
/// variables given here override the engine's, for this event only). Otherwise as
/// [`en_transition`].
///
/// # Safety
/// As [`en_transition`].
#[no_mangle]
pub unsafe extern "C" fn en_event(
    e: *mut en_engine,
    event: *const c_char,
    keys: *const *const c_char,
    values: *const *const c_char,
    n: usize,
) -> c_int {
    // SAFETY: the caller's contract.
    unsafe { report(Verbs::EventsOnly, e, event, keys, values, n) }
}

/// Re-reads the config file given to [`en_create`]. An invalid file is refused
/// (`EN_E_CONFIG_INVALID` or `EN_E_CONFIG_READ`, the problems are logged) and the running config
/// stays. The engine also reloads by itself when the file changes. Waits for the engine.
///
/// # Safety
/// `e` is NULL or a live engine.
#[no_mangle]
pub unsafe extern "C" fn en_reload(e: *mut en_engine) -> c_int {
    guard(|| {
        // SAFETY: the caller's contract.
        let engine = match unsafe { engine(e) } {
            Ok(en) => en,
            Err(code) => return code,
        };
        match engine.handle.inbox().reload() {
            Ok(()) => EN_OK,
            Err(ReloadError::Stopped) => EN_E_STOPPED,
            Err(ReloadError::Read(_)) => EN_E_CONFIG_READ,
            Err(ReloadError::Invalid(_) | ReloadError::Delivery(_)) => EN_E_CONFIG_INVALID,
        }
    })
}

/// Fills `out` with the counters (after every report this thread made before). Waits for the
/// engine. `out` is owned by the caller.
///
/// # Safety
/// `e` is NULL or a live engine; `out` is NULL or points to an `en_counters`.
#[no_mangle]
pub unsafe extern "C" fn en_get_counters(e: *mut en_engine, out: *mut en_counters) -> c_int {
    guard(|| {
        // SAFETY: the caller's contract.
        let engine = match unsafe { engine(e) } {
            Ok(en) => en,
            Err(code) => return code,
        };
        if out.is_null() {
            return EN_E_NULL;
        }
        let Some(d) = engine.handle.inbox().counters() else {
            return EN_E_STOPPED;
        };
        let mut c = en_counters::from(d);
        c.refused += engine.refused.load(Ordering::Relaxed);
        // SAFETY: non-NULL, and points to an en_counters by the caller's contract.
        unsafe { out.write(c) };
        EN_OK
    })
}

/// Stops the engine and frees it: waits up to `flush_ms` milliseconds for the notifications
/// still queued to be delivered, then returns (what is left is logged and lost). `e` must not be
/// used again, by any thread; call it once, after the other threads' calls on `e` have returned.
/// A delivery attempt still running at the deadline finishes in the background within the
/// configured `delivery.timeout_ms` (do not unload the shared library before that).
/// `e` NULL: nothing is done and `EN_E_NULL` is returned.
///
/// # Safety
/// `e` is NULL or a live engine that no other thread is using.
#[no_mangle]
pub unsafe extern "C" fn en_destroy(e: *mut en_engine, flush_ms: c_uint) -> c_int {
    if e.is_null() {
        return EN_E_NULL;
    }
    // SAFETY: `e` came from Box::into_raw in en_create and is given back exactly once.
    let engine = unsafe { Box::from_raw(e) };
    guard(move || {
        let en_engine { handle, .. } = *engine;
        match handle.stop(flush_ms as u64) {
            Ok(_left) => EN_OK, // the daemon logs how many were left
            Err(err) => {
                log::error!("en_destroy: {err}");
                EN_E_SYSTEM
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::{c_void, CString};
    use std::ptr::null;
    use std::ptr::null_mut;

    fn tmp(label: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "en-ffi-{label}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn cstr(s: &str) -> CString {
        CString::new(s).unwrap()
    }

    /// An engine whose config sends nothing anywhere (only `not_configured` counts).
    fn engine_with(config: &str) -> (*mut en_engine, PathBuf) {
        let dir = tmp("engine");
        let path = dir.join("config.json");
        std::fs::write(&path, config).unwrap();
        let p = cstr(path.to_str().unwrap());
        let mut err = 1;
        let e = unsafe { en_create(p.as_ptr(), null(), &mut err) };
        assert_eq!(err, EN_OK, "{}", describe(err));
        assert!(!e.is_null());
        (e, dir)
    }

    fn describe(code: c_int) -> String {
        unsafe { CStr::from_ptr(en_strerror(code)) }
            .to_string_lossy()
            .into_owned()
    }

    fn counters(e: *mut en_engine) -> en_counters {
        let mut c = en_counters::default();
        assert_eq!(unsafe { en_get_counters(e, &mut c) }, EN_OK);
        c
    }

    /// `en_transition` with Rust strings.
    fn send(e: *mut en_engine, verb: &str, fields: &[(&str, &str)]) -> c_int {
        let verb = cstr(verb);
        let keys: Vec<CString> = fields.iter().map(|(k, _)| cstr(k)).collect();
        let values: Vec<CString> = fields.iter().map(|(_, v)| cstr(v)).collect();
        let kp: Vec<*const c_char> = keys.iter().map(|k| k.as_ptr()).collect();
        let vp: Vec<*const c_char> = values.iter().map(|v| v.as_ptr()).collect();
        unsafe { en_transition(e, verb.as_ptr(), kp.as_ptr(), vp.as_ptr(), fields.len()) }
    }

    #[test]
    fn codes_are_consecutive_and_described() {
        for (i, &(code, name, text)) in CODES.iter().enumerate() {
            assert_eq!(code, -(i as c_int), "{name}");
            assert_eq!(describe(code), text.to_str().unwrap(), "{name}");
            assert!(name.starts_with("EN_"));
        }
        assert_eq!(describe(1), "unknown result code");
        assert_eq!(describe(-(CODES.len() as c_int)), "unknown result code");
        assert_eq!(describe(c_int::MIN), "unknown result code");
        let v = unsafe { CStr::from_ptr(en_version()) };
        assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
        assert_eq!(en_abi_version(), EN_ABI_VERSION);
    }

    #[test]
    fn null_arguments_are_refused() {
        let mut err = 0;
        let e = unsafe { en_create(null(), null(), &mut err) };
        assert!(e.is_null());
        assert_eq!(err, EN_E_NULL);
        // `err` itself may be NULL.
        assert!(unsafe { en_create(null(), null(), null_mut()) }.is_null());

        let verb = cstr("call");
        let k = [cstr("state")];
        let kp = [k[0].as_ptr()];
        unsafe {
            assert_eq!(
                en_transition(null_mut(), verb.as_ptr(), null(), null(), 0),
                EN_E_NULL
            );
            assert_eq!(
                en_event(null_mut(), verb.as_ptr(), null(), null(), 0),
                EN_E_NULL
            );
            assert_eq!(en_reload(null_mut()), EN_E_NULL);
            assert_eq!(en_get_counters(null_mut(), null_mut()), EN_E_NULL);
            assert_eq!(en_destroy(null_mut(), 0), EN_E_NULL);
        }

        let (e, dir) = engine_with(r#"{"events": {}}"#);
        unsafe {
            assert_eq!(en_transition(e, null(), null(), null(), 0), EN_E_NULL);
            // n > 0 with NULL arrays, and a NULL element.
            assert_eq!(
                en_transition(e, verb.as_ptr(), null(), null(), 1),
                EN_E_NULL
            );
            assert_eq!(
                en_transition(e, verb.as_ptr(), kp.as_ptr(), null(), 1),
                EN_E_NULL
            );
            let vp = [null()];
            assert_eq!(
                en_transition(e, verb.as_ptr(), kp.as_ptr(), vp.as_ptr(), 1),
                EN_E_NULL
            );
            assert_eq!(en_get_counters(e, null_mut()), EN_E_NULL);
        }
        assert_eq!(counters(e).refused, 4);
        assert_eq!(counters(e).messages, 0);
        assert_eq!(unsafe { en_destroy(e, 0) }, EN_OK);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn invalid_utf8_is_refused() {
        let bad = CString::new(vec![b'c', 0xff, b'l']).unwrap();
        let mut err = 0;
        assert!(unsafe { en_create(bad.as_ptr(), null(), &mut err) }.is_null());
        assert_eq!(err, EN_E_UTF8);

        let (e, dir) = engine_with(r#"{"events": {}}"#);
        let verb = cstr("call");
        let state = cstr("state");
        let incoming = cstr("incoming");
        unsafe {
            assert_eq!(en_transition(e, bad.as_ptr(), null(), null(), 0), EN_E_UTF8);
            let (kp, vp) = ([bad.as_ptr()], [incoming.as_ptr()]);
            assert_eq!(
                en_transition(e, verb.as_ptr(), kp.as_ptr(), vp.as_ptr(), 1),
                EN_E_UTF8
            );
            let (kp, vp) = ([state.as_ptr()], [bad.as_ptr()]);
            assert_eq!(
                en_transition(e, verb.as_ptr(), kp.as_ptr(), vp.as_ptr(), 1),
                EN_E_UTF8
            );
        }
        assert_eq!(counters(e).refused, 3);
        assert_eq!(unsafe { en_destroy(e, 0) }, EN_OK);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn verbs_states_and_fields_are_checked() {
        let (e, dir) = engine_with(r#"{"events": {}}"#);
        assert_eq!(
            send(e, "calll", &[("state", "incoming")]),
            EN_E_UNKNOWN_VERB
        );
        assert_eq!(send(e, "status", &[]), EN_E_UNKNOWN_VERB);
        assert_eq!(send(e, "call", &[]), EN_E_MISSING_STATE);
        assert_eq!(send(e, "call", &[("state", "dialing")]), EN_E_BAD_STATE);
        assert_eq!(
            send(e, "call", &[("state", "incoming"), ("colour", "red")]),
            EN_E_UNKNOWN_FIELD
        );
        let ev = cstr("call");
        assert_eq!(
            unsafe { en_event(e, ev.as_ptr(), null(), null(), 0) },
            EN_E_UNKNOWN_EVENT
        );
        assert_eq!(counters(e).refused, 6);
        assert_eq!(counters(e).messages, 0);

        // Accepted: a transition, an event key, an alias, variable aliases.
        assert_eq!(
            send(
                e,
                "call",
                &[
                    ("state", "incoming"),
                    ("call_id", "a"),
                    ("callerID", "1002")
                ]
            ),
            EN_OK
        );
        assert_eq!(send(e, "dnd_on", &[]), EN_OK);
        assert_eq!(send(e, "call_established", &[("call-id", "a")]), EN_OK);
        let ev = cstr("DND Off");
        assert_eq!(
            unsafe { en_event(e, ev.as_ptr(), null(), null(), 0) },
            EN_OK
        );
        // `state` is not a field of a direct event.
        let (k, v) = (cstr("state"), cstr("on"));
        let (kp, vp) = ([k.as_ptr()], [v.as_ptr()]);
        assert_eq!(
            unsafe { en_event(e, ev.as_ptr(), kp.as_ptr(), vp.as_ptr(), 1) },
            EN_E_UNKNOWN_FIELD
        );
        let c = counters(e);
        assert_eq!((c.messages, c.refused), (4, 7));
        // Nothing is configured: every derived event counts as not configured.
        assert_eq!(c.events, c.not_configured);
        assert!(c.events >= 4, "{c:?}");
        assert_eq!(unsafe { en_destroy(e, 0) }, EN_OK);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn create_reports_config_and_board_problems() {
        let dir = tmp("create");
        let mut err = 0;
        let missing = cstr(dir.join("nope.json").to_str().unwrap());
        assert!(unsafe { en_create(missing.as_ptr(), null(), &mut err) }.is_null());
        assert_eq!(err, EN_E_CONFIG_READ);

        let bad = dir.join("bad.json");
        std::fs::write(&bad, r#"{"events": {"no_such_event": "127.0.0.1:1/x"}}"#).unwrap();
        let bad = cstr(bad.to_str().unwrap());
        assert!(unsafe { en_create(bad.as_ptr(), null(), &mut err) }.is_null());
        assert_eq!(err, EN_E_CONFIG_INVALID);

        let good = dir.join("good.json");
        std::fs::write(&good, r#"{"events": {}}"#).unwrap();
        let good = cstr(good.to_str().unwrap());
        let board = dir.join("board.json");
        std::fs::write(&board, "{not json").unwrap();
        let board = cstr(board.to_str().unwrap());
        assert!(unsafe { en_create(good.as_ptr(), board.as_ptr(), &mut err) }.is_null());
        assert_eq!(err, EN_E_BOARD);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn reload_keeps_the_running_config_when_the_new_one_is_invalid() {
        let (e, dir) = engine_with(r#"{"events": {}}"#);
        let path = dir.join("config.json");
        std::fs::write(&path, r#"{"events": {"dnd_on": ""}}"#).unwrap();
        assert_eq!(unsafe { en_reload(e) }, EN_OK);
        std::fs::write(&path, r#"{"events": "#).unwrap();
        assert_eq!(unsafe { en_reload(e) }, EN_E_CONFIG_INVALID);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(unsafe { en_reload(e) }, EN_E_CONFIG_READ);
        let c = counters(e);
        assert!(c.reloads >= 1, "{c:?}");
        assert!(c.reload_errors >= 2, "{c:?}");
        assert_eq!(unsafe { en_destroy(e, 0) }, EN_OK);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_panic_becomes_an_error_code() {
        if cfg!(panic = "unwind") {
            assert_eq!(guard(|| panic!("boom")), EN_E_PANIC);
        }
        assert_eq!(guard(|| EN_OK), EN_OK);
    }

    #[test]
    fn counters_come_from_the_engine_field_by_field() {
        let d = daemon::Counters {
            messages: 4,
            events: 5,
            queued: 6,
            delivered: 7,
            retried: 8,
            failed: 9,
            dropped: 10,
            pending: 13,
            in_flight: 14,
            not_configured: 11,
            too_long: 12,
            duplicates: 99,
            unknown_call: 98,
            call_table_full: 97,
            refused: 2,
            reloads: 3,
            reload_errors: 15,
        };
        assert_eq!(
            en_counters::from(d),
            en_counters {
                messages: 4,
                events: 5,
                queued: 6,
                delivered: 7,
                retried: 8,
                failed: 9,
                dropped: 10,
                not_configured: 11,
                too_long: 12,
                pending: 13,
                in_flight: 14,
                refused: 2,
                reloads: 3,
                reload_errors: 15,
            }
        );
    }

    #[test]
    fn log_lines_reach_the_callback() {
        use std::sync::Mutex;
        static LINES: Mutex<Vec<(c_int, String, usize)>> = Mutex::new(Vec::new());
        unsafe extern "C" fn collect(user: *mut c_void, level: c_int, msg: *const c_char) {
            let text = unsafe { CStr::from_ptr(msg) }
                .to_string_lossy()
                .into_owned();
            if let Ok(mut l) = LINES.lock() {
                l.push((level, text, user as usize));
            }
        }
        assert_eq!(
            unsafe { en_set_log(Some(collect), null_mut(), 9) },
            EN_E_RANGE
        );
        assert_eq!(
            unsafe { en_set_log(Some(collect), 42 as *mut c_void, EN_LOG_WARN) },
            EN_OK
        );
        let (e, dir) = engine_with(r#"{"events": {}}"#);
        // An invalid config: each problem on a line of its own.
        let bad = dir.join("bad.json");
        std::fs::write(&bad, r#"{"events": {"nope": "x", "dnd_on": 5}}"#).unwrap();
        let bad = cstr(bad.to_str().unwrap());
        let mut err = 0;
        assert!(unsafe { en_create(bad.as_ptr(), null(), &mut err) }.is_null());
        assert_eq!(err, EN_E_CONFIG_INVALID);
        assert_eq!(send(e, "nonsense", &[]), EN_E_UNKNOWN_VERB);
        assert_eq!(unsafe { en_destroy(e, 0) }, EN_OK);
        let lines = LINES.lock().unwrap().clone();
        assert!(
            lines.iter().any(|(lv, t, u)| *lv == EN_LOG_WARN
                && *u == 42
                && t == "en_transition refused: unknown verb: neither a transition verb nor an event key or alias"),
            "{lines:?}"
        );
        let bad = bad.to_str().unwrap();
        let problems: Vec<&str> = lines
            .iter()
            .filter(|(lv, t, _)| *lv == EN_LOG_ERROR && t.starts_with("en_create: "))
            .map(|(_, t, _)| t.as_str())
            .collect();
        assert!(
            problems
                .iter()
                .any(|t| t.contains(bad) && t.ends_with("is invalid:")),
            "{problems:?}"
        );
        assert!(problems.len() >= 3, "{problems:?}");
        assert!(lines.iter().all(|(_, t, _)| !t.contains('\n')), "{lines:?}");
        // Info lines ("ready: ...") are above the level asked for.
        assert!(
            lines.iter().all(|(lv, _, _)| *lv <= EN_LOG_WARN),
            "{lines:?}"
        );
        assert_eq!(unsafe { en_set_log(None, null_mut(), EN_LOG_INFO) }, EN_OK);
        let _ = std::fs::remove_dir_all(dir);
    }
}
