//! A tiny stderr logger for the `log` facade. Level from `EVENT_NOTIFY_LOG`
//! (`error`, `warn`, `info` (default), `debug`, `trace`). Nothing secret is ever passed to it:
//! URLs reach the core without their userinfo, and passwords are never formatted.

use std::io::Write;

struct Logger;

impl log::Log for Logger {
    fn enabled(&self, m: &log::Metadata) -> bool {
        // Libraries (ureq, rustls) log at debug/trace what goes on the wire, request headers
        // included: `authorization: Basic ...` is a credential. Only their info and more severe
        // records pass, whatever the level (issue 10 #5).
        let ours = m.target().starts_with("event_notify") || m.target().starts_with("event-notify");
        m.level() <= log::max_level() && (ours || m.level() <= log::Level::Info)
    }

    fn log(&self, r: &log::Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let level = match r.level() {
            log::Level::Error => "error",
            log::Level::Warn => "warn",
            log::Level::Info => "info",
            log::Level::Debug => "debug",
            log::Level::Trace => "trace",
        };
        let mut err = std::io::stderr().lock();
        let _ = writeln!(
            err,
            "event-notify[{}]: {level}: {}",
            std::process::id(),
            r.args()
        );
    }

    fn flush(&self) {}
}

static LOGGER: Logger = Logger;

/// Installs the logger once; later calls do nothing.
pub fn init() {
    let level = match std::env::var("EVENT_NOTIFY_LOG").as_deref() {
        Ok("error") => log::LevelFilter::Error,
        Ok("warn") => log::LevelFilter::Warn,
        Ok("debug") => log::LevelFilter::Debug,
        Ok("trace") => log::LevelFilter::Trace,
        Ok("off") => log::LevelFilter::Off,
        _ => log::LevelFilter::Info,
    };
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(level);
    }
}
