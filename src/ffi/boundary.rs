//! The boundary: panics, NULL, UTF-8, signals.

use crate::core::hook::KindError;
use crate::daemon::DaemonError;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use std::ffi::{c_char, c_int, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

use super::*;

/// Runs `f`, turning a panic into [`EN_E_PANIC`]: no unwinding ever reaches C.
pub fn guard(f: impl FnOnce() -> c_int) -> c_int {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(EN_E_PANIC)
}

/// A borrowed C string as UTF-8.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string valid for `'a`.
pub(super) unsafe fn arg_str<'a>(p: *const c_char) -> Result<&'a str, c_int> {
    if p.is_null() {
        return Err(EN_E_NULL);
    }
    // SAFETY: non-NULL and NUL-terminated by the caller's contract.
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str().map_err(|_| EN_E_UTF8)
}

/// Like [`arg_str`] for an optional argument: NULL is `None`.
///
/// # Safety
/// As [`arg_str`].
pub(super) unsafe fn opt_str<'a>(p: *const c_char) -> Result<Option<&'a str>, c_int> {
    if p.is_null() {
        Ok(None)
    } else {
        // SAFETY: as the caller's.
        unsafe { arg_str(p) }.map(Some)
    }
}

/// The signals that threads of this library never take: all asynchronous ones. The synchronous
/// ones (a fault in the thread itself) stay deliverable.
pub(super) fn async_signals() -> SigSet {
    let mut set = SigSet::all();
    for s in [
        Signal::SIGSEGV,
        Signal::SIGBUS,
        Signal::SIGFPE,
        Signal::SIGILL,
        Signal::SIGTRAP,
        Signal::SIGABRT,
        Signal::SIGSYS,
    ] {
        set.remove(s);
    }
    set
}

/// Runs `f` with the asynchronous signals blocked in this thread, then restores the mask. The
/// threads `f` starts inherit the blocked mask, so the firmware's signals (SIGTERM, SIGCHLD,
/// SIGALRM, ...) keep going to the firmware's own threads, and a write to a closed pipe in an
/// engine thread (SIGPIPE, deadly by default in a C program) only fails with EPIPE.
pub(super) fn with_signals_blocked<T>(f: impl FnOnce() -> T) -> T {
    let old = async_signals().thread_swap_mask(SigmaskHow::SIG_BLOCK);
    let r = f();
    if let Ok(old) = old {
        let _ = old.thread_set_mask();
    }
    r
}

pub(super) fn set_err(err: *mut c_int, code: c_int) {
    if !err.is_null() {
        // SAFETY: the caller passes NULL or a pointer to an int it owns.
        unsafe { *err = code };
    }
}

/// The engine behind a handle, or [`EN_E_NULL`].
///
/// # Safety
/// `e` is NULL or a pointer returned by [`en_create`] and not yet destroyed.
pub(super) unsafe fn engine<'a>(e: *mut en_engine) -> Result<&'a en_engine, c_int> {
    // SAFETY: by the caller's contract; only shared references are made while it lives.
    unsafe { e.cast_const().as_ref() }.ok_or(EN_E_NULL)
}

pub(super) fn daemon_code(e: &DaemonError) -> c_int {
    match e {
        DaemonError::ConfigRead { .. } => EN_E_CONFIG_READ,
        DaemonError::ConfigInvalid { .. } => EN_E_CONFIG_INVALID,
        _ => EN_E_SYSTEM,
    }
}

pub(super) fn kind_code(e: KindError) -> c_int {
    match e {
        KindError::UnknownVerb => EN_E_UNKNOWN_VERB,
        KindError::MissingState => EN_E_MISSING_STATE,
        KindError::BadState => EN_E_BAD_STATE,
    }
}
