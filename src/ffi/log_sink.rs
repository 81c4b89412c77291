//! Logging through a C callback (`en_set_log`).

use std::ffi::{c_char, c_int, c_void, CString};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::RwLock;

use super::*;

struct Sink {
    f: unsafe extern "C" fn(*mut c_void, c_int, *const c_char),
    /// The caller's pointer, only handed back.
    user: usize,
}

static SINK: RwLock<Option<Sink>> = RwLock::new(None);
static LOGGER_INSTALLED: AtomicBool = AtomicBool::new(false);

struct CallbackLogger;

impl log::Log for CallbackLogger {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::max_level()
    }

    fn log(&self, r: &log::Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let Ok(sink) = SINK.read() else { return };
        let Some(sink) = sink.as_ref() else { return };
        let mut text = r.args().to_string();
        text.retain(|c| c != '\0');
        let Ok(text) = CString::new(text) else { return };
        let level = match r.level() {
            log::Level::Error => EN_LOG_ERROR,
            log::Level::Warn => EN_LOG_WARN,
            log::Level::Info => EN_LOG_INFO,
            log::Level::Debug => EN_LOG_DEBUG,
            log::Level::Trace => EN_LOG_TRACE,
        };
        // SAFETY: the callback was given by the firmware for exactly this; the text lives
        // until it returns.
        unsafe { (sink.f)(sink.user as *mut c_void, level, text.as_ptr()) };
    }

    fn flush(&self) {}
}

static CALLBACK_LOGGER: CallbackLogger = CallbackLogger;

/// Sends the library's log lines up to `max_level` (`EN_LOG_ERROR` .. `EN_LOG_TRACE`) to `f`,
/// with `user` passed back unchanged; `f` NULL or `EN_LOG_OFF` turns logging off (the default).
/// `f` is called from the engine's threads, possibly from several at once; it must return
/// quickly and must not call any `en_*` function. The message is borrowed for the call.
/// Returns `EN_E_RANGE` for a bad level, `EN_E_LOGGER` if the program already installed another
/// Rust `log` logger. May be called at any time, from any thread.
///
/// # Safety
/// `f` is NULL or a function safe to call from any thread with `user` until logging is turned
/// off or replaced.
#[no_mangle]
pub unsafe extern "C" fn en_set_log(f: en_log_fn, user: *mut c_void, max_level: c_int) -> c_int {
    guard(|| {
        let level = match max_level {
            EN_LOG_OFF => log::LevelFilter::Off,
            EN_LOG_ERROR => log::LevelFilter::Error,
            EN_LOG_WARN => log::LevelFilter::Warn,
            EN_LOG_INFO => log::LevelFilter::Info,
            EN_LOG_DEBUG => log::LevelFilter::Debug,
            EN_LOG_TRACE => log::LevelFilter::Trace,
            _ => return EN_E_RANGE,
        };
        if !LOGGER_INSTALLED.load(Ordering::Acquire) {
            if log::set_logger(&CALLBACK_LOGGER).is_err() {
                return EN_E_LOGGER;
            }
            LOGGER_INSTALLED.store(true, Ordering::Release);
        }
        let Ok(mut sink) = SINK.write() else {
            return EN_E_SYSTEM;
        };
        *sink = f.map(|f| Sink {
            f,
            user: user as usize,
        });
        log::set_max_level(if sink.is_some() {
            level
        } else {
            log::LevelFilter::Off
        });
        EN_OK
    })
}
