//! The daemon: the Unix socket, signals, config reload, the delivery workers, and the clock.
//!
//! One thread owns the [`Engine`] and sleeps in `poll(2)`: on the socket and its clients, a
//! signalfd (SIGHUP, SIGTERM, SIGINT), an inotify watch on the config's folder, and a wake eventfd
//! that the delivery workers and in-process producers (the baresip adapter) write to. The poll
//! timeout is the engine's [`Engine::poll_delay`]: with nothing pending the daemon sleeps until
//! something happens — no periodic wake-ups.

pub mod deliver;
mod device;
mod inbox;
pub mod net;
mod reload;
mod socket;
pub mod spooling;
mod status;
mod workers;

pub use device::Device;
use inbox::*;
pub use inbox::{Handle, Inbox};
use reload::*;
pub use reload::{load_config, validate_config};
use socket::*;
pub(crate) use status::WarnLimit;
use status::*;
use workers::*;

use crate::core::config::{Board, Config, Problem};
use crate::core::engine::{Engine, Failure, Job, Note, Now, Outcome};
use crate::core::hook::{Kind, Msg};
use crate::core::outbox::Ticket;
use crate::core::var::{Var, Vars};
use crate::core::wire::{self, Verb, WireError, MSG_CAP};
use deliver::Sender;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, RwLock};
use std::thread;

/// Socket clients served at once. When full, the client idle the longest is closed to make
/// room: a new client always gets in (a SIP stack may keep one connection idle for hours).
pub const MAX_CLIENTS: usize = 16;
/// Warnings of one kind logged per [`WARN_WINDOW_MS`]; more are counted and reported as
/// "N similar suppressed" when the window ends.
pub const WARN_BURST: u32 = 10;
/// The rate-limit window of repeated warnings.
pub const WARN_WINDOW_MS: u64 = 60_000;
/// Messages from in-process producers (the baresip adapter) waiting for the engine.
pub const INBOX_CAP: usize = 64;
/// Longest wait for the interface to get an address before `booting_completed` is queued anyway.
pub const BOOT_HOLD_MS: u64 = 120_000;
/// How often the held `booting_completed` looks at the interface again.
pub const BOOT_POLL_MS: u64 = 500;
/// Stack of each delivery worker. Workers are started as attempts need them, up to
/// [`crate::core::engine::MAX_IN_FLIGHT`], and then stay.
pub const WORKER_STACK: usize = 256 * 1024;
/// Stack of the short-lived thread that builds the daemon (config, engine, TLS roots); given
/// back when it ends.
pub const SETUP_STACK: usize = 2 * 1024 * 1024;

/// What `run` needs.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub config: PathBuf,
    /// The Unix socket to serve; `None` for an engine embedded in another program.
    pub socket: Option<PathBuf>,
    pub board: Board,
    pub baresip: Option<String>,
    /// The admin server, started once the inbox exists.
    pub admin: Option<crate::admin::AdminSlot>,
}

/// What reaches the engine's thread from other threads of this process.
pub enum Input {
    /// Boxed: a `Msg` is about 2.4 KiB and the inbox is a channel of [`INBOX_CAP`] inputs, so
    /// inline it would reserve ~150 KiB for messages that mostly are not there; boxed, only the
    /// messages waiting take memory (at most `INBOX_CAP` of them).
    Msg(Box<Msg>),
    Reload(mpsc::Sender<Result<(), ReloadError>>),
    Status(mpsc::Sender<String>),
    Counters(mpsc::Sender<Counters>),
    /// Counters, per-event figures and states, for the admin API.
    Snapshot(mpsc::Sender<Snapshot>),
    /// Stop after flushing for up to this many milliseconds.
    Stop(u64),
}

/// What the admin API's status shows, typed.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub counters: Counters,
    pub events: [crate::core::engine::EventStats; crate::core::event::Event::COUNT],
    /// "on", "off" or "disabled", per event.
    pub states: [&'static str; crate::core::event::Event::COUNT],
    pub uptime_s: u64,
    /// Per event, the `Location` of the last redirect answered (until a delivery succeeds).
    pub locations: [Option<String>; crate::core::event::Event::COUNT],
}

/// Why a reload was refused (the running config stays).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReloadError {
    #[error("cannot read the config: {0}")]
    Read(String),
    #[error("the config is invalid:\n{}", .0.join("\n"))]
    Invalid(Vec<String>),
    #[error("{0}")]
    Delivery(String),
    #[error("the engine has stopped")]
    Stopped,
}

/// Why [`Inbox::try_send`] did not take a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("the inbox is full ({INBOX_CAP} messages waiting)")]
    Full,
    #[error("the engine has stopped")]
    Stopped,
}

/// The main counters, typed (the same figures as `status`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub messages: u64,
    pub events: u64,
    pub queued: u64,
    pub delivered: u64,
    pub retried: u64,
    pub failed: u64,
    pub dropped: u64,
    pub pending: u64,
    pub in_flight: u64,
    pub not_configured: u64,
    pub too_long: u64,
    pub duplicates: u64,
    pub unknown_call: u64,
    pub call_table_full: u64,
    /// Socket lines refused.
    pub refused: u64,
    pub reloads: u64,
    pub reload_errors: u64,
}

/// Why the daemon could not start (or stopped).
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("config {path}: cannot read: {err}")]
    ConfigRead { path: String, err: io::Error },
    #[error("config {path} is invalid:\n{problems}")]
    ConfigInvalid { path: String, problems: String },
    #[error("{0}")]
    Sender(#[from] deliver::SenderError),
    #[error("socket {path}: {err}")]
    Socket { path: String, err: io::Error },
    /// A system call failed; `call` names it.
    #[error("{call}: {err}")]
    Sys { call: &'static str, err: nix::Error },
    /// An I/O operation failed; `call` names it.
    #[error("{call}: {err}")]
    Io { call: &'static str, err: io::Error },
}

impl DaemonError {
    /// `map_err` helper: a failed system call, named.
    pub(crate) fn sys(call: &'static str) -> impl FnOnce(nix::Error) -> DaemonError {
        move |err| DaemonError::Sys { call, err }
    }

    /// `map_err` helper: a failed I/O operation, named.
    pub(crate) fn io(call: &'static str) -> impl FnOnce(io::Error) -> DaemonError {
        move |err| DaemonError::Io { call, err }
    }
}

/// The clock: CLOCK_BOOTTIME (time asleep counts) and the Unix time.
pub fn now() -> Now {
    let ms = nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME)
        .map(|t| t.tv_sec() as u64 * 1000 + t.tv_nsec() as u64 / 1_000_000)
        .unwrap_or(0);
    let unix_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Now { ms, unix_s }
}

struct Daemon {
    opts: Options,
    engine: Box<Engine>,
    device: Device,
    /// The device's variables as the engine gets them, built again only when `device_fresh`
    /// is false (see `Daemon::refresh_device_vars`).
    device_vars: Vars,
    device_fresh: bool,
    sender: Arc<RwLock<Arc<Sender>>>,
    workers: Workers,
    done: mpsc::Receiver<Done>,
    /// Plain HTTP sent from this loop.
    direct: deliver::LoopSender,
    /// Link and address change notices: the device's interface is read again after one.
    netwatch: Option<net::Watch>,
    /// Per event, the last redirect answered (status, Location), until a delivery succeeds.
    redirects: [Option<(u16, String)>; crate::core::event::Event::COUNT],
    /// Rate limits of repeated warnings, one per kind: socket refusals, socket clients closed
    /// to make room, outbox notes.
    warn_refused: WarnLimit,
    warn_evicted: WarnLimit,
    warn_notes: WarnLimit,
    inbox_rx: mpsc::Receiver<Input>,
    sigfd: Option<SignalFd>,
    inotify: Option<Inotify>,
    /// What the inotify watches: the config's folder, or (while it does not exist) the nearest
    /// existing folder above it.
    watch: Watch,
    wake_r: Arc<EventFd>,
    /// Keeps the inbox's channel open while the engine runs.
    inbox: Inbox,
    baresip: Option<Baresip>,
    listener: Option<UnixListener>,
    clients: Vec<Client>,
    /// The message each socket line is parsed into, kept from one line to the next.
    line_msg: Option<Box<Msg>>,
    counters: DaemonCounters,
    config_text: String,
    held_boot: Option<(Msg, u64)>,
    started: Now,
    stopping: Option<u64>,
    spooler: spooling::Spooler,
}

/// Runs the daemon (socket, signals) until SIGTERM/SIGINT.
pub fn run(opts: Options) -> Result<(), DaemonError> {
    // Blocked here, in the thread that runs the loop, before any other thread exists (the
    // set-up thread and the workers inherit the mask): the signalfd only sees them then.
    daemon_sigmask()
        .thread_block()
        .map_err(DaemonError::sys("pthread_sigmask"))?;
    let mut d = build(opts, true)?;
    let r = d.main_loop();
    if let Some(p) = &d.opts.socket {
        let _ = std::fs::remove_file(p);
    }
    r.map(|_| ())
}

/// Starts an engine in a thread of this program: no signal handling, no socket unless
/// `opts.socket` names one. Config errors are returned here, before the thread starts.
pub fn spawn(opts: Options) -> Result<Handle, DaemonError> {
    let mut d = build(opts, false)?;
    let inbox = d.inbox.clone();
    let thread = thread::Builder::new()
        .name("event-notify".into())
        .spawn(move || {
            let r = d.main_loop();
            if let Some(p) = &d.opts.socket {
                let _ = std::fs::remove_file(p);
            }
            r
        })
        .map_err(DaemonError::io("spawn the engine thread"))?;
    Ok(Handle {
        inbox,
        thread: Some(thread),
    })
}

/// [`Daemon::new`] in a short-lived thread. Start-up (the config parsed and validated, the
/// engine built, the TLS roots loaded) needs a few hundred KiB of stack once; the stack of a
/// thread that has ended is given back (glibc: `MADV_DONTNEED`; musl: unmapped), while pages the
/// caller's thread touched would stay resident for the daemon's life (about 400 KiB of the
/// handset's RAM) and could overflow a small firmware thread that calls `en_start`.
///
/// The daemon comes back boxed: by value it would take ~10 KiB of the caller's frame.
fn build(opts: Options, signals: bool) -> Result<Box<Daemon>, DaemonError> {
    let t = thread::Builder::new()
        .name("event-notify-setup".into())
        .stack_size(SETUP_STACK)
        .spawn(move || Daemon::new(opts, signals).map(Box::new))
        .map_err(DaemonError::io("spawn the set-up thread"))?;
    match t.join() {
        Ok(r) => r,
        Err(_) => Err(DaemonError::Io {
            call: "join the set-up thread",
            err: io::Error::other("the set-up thread panicked"),
        }),
    }
}

/// Runs `f(d)` in a short-lived thread with a [`SETUP_STACK`] stack, for the main loop's rare
/// and stack-hungry work (a reload parses and validates a `Config` of ~40 KiB by value, in
/// frames of ~240 KiB): pages the main thread's stack touches stay resident for the daemon's
/// life, a thread's stack is given back when it ends. If no thread can be started, `f` runs
/// here.
fn on_own_stack<T: Send>(d: &mut Daemon, f: impl Fn(&mut Daemon) -> T + Sync) -> T {
    let f = &f;
    let done = thread::scope(|s| {
        let d = &mut *d;
        let t = thread::Builder::new()
            .name("event-notify-work".into())
            .stack_size(SETUP_STACK)
            .spawn_scoped(s, move || f(d));
        match t.map(|t| t.join()) {
            Ok(Ok(r)) => Some(r),
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            Err(_) => None,
        }
    });
    match done {
        Some(r) => r,
        None => f(d),
    }
}

impl Daemon {
    fn new(opts: Options, signals: bool) -> Result<Daemon, DaemonError> {
        let (config, config_text) = first_config(&opts, signals)?;
        let sender = Arc::new(RwLock::new(Arc::new(Sender::new(&config.delivery)?)));
        let sigfd = signal_fd(signals)?;
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
            .map_err(DaemonError::sys("inotify_init1"))?;
        let watch = watch_config_dir(&inotify, &opts.config, None);
        let wake_w = Arc::new(
            EventFd::from_flags(EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC)
                .map_err(DaemonError::sys("eventfd"))?,
        );
        let wake_r = Arc::clone(&wake_w);
        let (workers, done_rx) = Workers::new(Arc::clone(&sender), Arc::clone(&wake_w));
        let (inbox_tx, inbox_rx) = mpsc::sync_channel::<Input>(INBOX_CAP);
        let inbox = Inbox {
            tx: inbox_tx,
            wake: Arc::clone(&wake_w),
        };
        let baresip = match opts.baresip.clone() {
            Some(addr) => Some(
                spawn_baresip(addr, inbox.clone())
                    .map_err(DaemonError::io("spawn the baresip thread"))?,
            ),
            None => None,
        };
        let listener = match &opts.socket {
            Some(p) => Some(bind_socket(p)?),
            None => None,
        };
        if let Some(admin) = &opts.admin {
            admin
                .start(inbox.clone(), opts.config.clone(), opts.board.clone())
                .map_err(DaemonError::io("start the admin server"))?;
        }
        let netwatch = net::Watch::open();
        let mut device = Device::new(&opts.board, &config);
        device.keep = netwatch.is_some();
        let seed = now().ms ^ (std::process::id() as u64) << 32;
        let spool_cfg = config.delivery.clone();
        let mut engine = Engine::new(config, seed);
        let mut warn_notes = WarnLimit::default();
        let spooler =
            spooling::Spooler::start(&spool_cfg, &opts.config, &mut engine, now(), &mut |n| {
                log_note(n, &mut warn_notes)
            });
        let d = Daemon {
            engine,
            spooler,
            device,
            device_vars: Vars::new(),
            device_fresh: false,
            sender,
            workers,
            done: done_rx,
            direct: deliver::LoopSender::new(),
            netwatch,
            redirects: [const { None }; crate::core::event::Event::COUNT],
            warn_refused: WarnLimit::default(),
            warn_evicted: WarnLimit::default(),
            warn_notes,
            inbox_rx,
            sigfd,
            inotify: Some(inotify),
            watch,
            wake_r,
            inbox,
            baresip,
            listener,
            clients: Vec::with_capacity(MAX_CLIENTS),
            line_msg: Some(Box::new(Msg::new(Kind::Boot))),
            counters: DaemonCounters::default(),
            config_text,
            held_boot: None,
            started: now(),
            stopping: None,
            opts,
        };
        log::info!(
            "ready: socket {} config {} interface {}",
            d.opts
                .socket
                .as_deref()
                .map_or("(none)".into(), |p| p.display().to_string()),
            d.opts.config.display(),
            d.device.interface()
        );
        Ok(d)
    }
}

/// The config at start, and its text (to tell a real change from a touch later).
fn first_config(opts: &Options, signals: bool) -> Result<(Config, String), DaemonError> {
    let (config, warnings) = match load_config(&opts.config) {
        // A handset's first boot has no config yet: the daemon starts with every event off
        // and takes the file when the web page saves it (an init system would otherwise
        // restart it in a loop). An invalid file is still refused.
        Err(DaemonError::ConfigRead { err, .. })
            if signals && err.kind() == io::ErrorKind::NotFound =>
        {
            log::warn!(
                "config {} does not exist yet: every event is off until it is written",
                opts.config.display()
            );
            (Config::default(), Vec::new())
        }
        other => other?,
    };
    for w in &warnings {
        log::warn!("config {}: {w}", opts.config.display());
    }
    let config_text = std::fs::read_to_string(&opts.config).unwrap_or_default();
    Ok((config, config_text))
}

/// The signals the daemon takes through its signalfd.
fn daemon_sigmask() -> SigSet {
    let mut mask = SigSet::empty();
    for s in [Signal::SIGHUP, Signal::SIGTERM, Signal::SIGINT] {
        mask.add(s);
    }
    mask
}

/// Signals arrive through a signalfd; SIGPIPE is ignored (a client that went away). An embedded
/// engine (`signals` false) leaves the program's signals alone.
fn signal_fd(signals: bool) -> Result<Option<SignalFd>, DaemonError> {
    Ok(if signals {
        let mask = daemon_sigmask();
        mask.thread_block()
            .map_err(DaemonError::sys("pthread_sigmask"))?;
        unsafe {
            // SAFETY: SIG_IGN installs no handler code.
            let _ = nix::sys::signal::signal(Signal::SIGPIPE, nix::sys::signal::SigHandler::SigIgn);
        }
        Some(
            SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
                .map_err(DaemonError::sys("signalfd"))?,
        )
    } else {
        None
    })
}

/// The poll slots before the clients: wake eventfd, signals, inotify, listener, interface
/// changes.
const FIXED_SLOTS: usize = 5;

/// A poll slot for `fd`, or an inert slot (no events asked) when there is none.
fn pollfd<'a>(
    fd: Option<std::os::fd::BorrowedFd<'a>>,
    inert: std::os::fd::BorrowedFd<'a>,
) -> PollFd<'a> {
    match fd {
        Some(fd) => PollFd::new(fd, PollFlags::POLLIN),
        None => PollFd::new(inert, PollFlags::empty()),
    }
}

impl Daemon {
    /// Once stopping: `Some(left undelivered)` when the outbox is empty or the flush time is up.
    fn stopped(&mut self, t: Now) -> Option<usize> {
        let deadline = self.stopping?;
        if self.engine.pending() != 0 && t.ms < deadline {
            return None;
        }
        // What is still queued survives the restart.
        self.spooler.sync(&self.engine, true, t.ms);
        // The counts of warnings still suppressed, whose windows would end after the stop.
        self.flush_warnings(u64::MAX);
        let left = self.engine.pending();
        if left > 0 {
            log::warn!("stopping with {left} notification(s) not delivered");
        } else {
            log::info!("stopped: outbox empty");
        }
        Some(left)
    }

    /// How long poll may sleep: until the outbox has something due, the held boot message
    /// should look at the interface again, or the flush time is up.
    fn poll_timeout(&self, t: Now) -> PollTimeout {
        let mut timeout = self.engine.poll_delay(t);
        if let Some((_, since)) = &self.held_boot {
            let until_give_up = (since + BOOT_HOLD_MS).saturating_sub(t.ms);
            timeout = Some(
                timeout
                    .unwrap_or(u64::MAX)
                    .min(BOOT_POLL_MS)
                    .min(until_give_up),
            );
        }
        if let Some(due) = self.direct.next_deadline() {
            timeout = Some(timeout.unwrap_or(u64::MAX).min(due.saturating_sub(t.ms)));
        }
        if let Some(due) = self.warnings_due() {
            timeout = Some(timeout.unwrap_or(u64::MAX).min(due.saturating_sub(t.ms)));
        }
        if let Some(deadline) = self.stopping {
            timeout = Some(
                timeout
                    .unwrap_or(u64::MAX)
                    .min(deadline.saturating_sub(t.ms)),
            );
        }
        match timeout {
            None => PollTimeout::NONE,
            Some(ms) => PollTimeout::try_from(ms.min(60_000) as i32).unwrap_or(PollTimeout::MAX),
        }
    }

    /// Runs until stopped; returns how many notifications were left undelivered.
    /// The loop of the daemon's thread. What it calls for each kind of readiness is kept out of
    /// line (`#[inline(never)]` there): inlined, their locals (messages, variable sets, request
    /// lines) added up to a frame of ~27 KiB here, where each call needs only its own; every page
    /// of this thread's stack that is ever touched stays resident for the daemon's life.
    fn main_loop(&mut self) -> Result<usize, DaemonError> {
        loop {
            let t = now();
            self.dispatch(t);
            self.spooler.sync(&self.engine, false, t.ms);
            if let Some(left) = self.stopped(t) {
                return Ok(left);
            }
            let timeout = self.poll_timeout(t);

            // Fixed order: wake eventfd, signals, inotify, listener, interface changes, then the
            // clients, then the loop sender's connections. A missing
            // source polls the wake eventfd for nothing.
            // On the stack: this runs once per wake-up. `clients` never holds more than
            // MAX_CLIENTS, so every push fits.
            let mut fds =
                heapless::Vec::<PollFd, { FIXED_SLOTS + MAX_CLIENTS + deliver::LOOP_CONNS }>::new();
            let wake_fd = self.wake_r.as_fd();
            let slot = |fd| pollfd(fd, wake_fd);
            let _ = fds.push(slot(Some(self.wake_r.as_fd())));
            let _ = fds.push(slot(self.sigfd.as_ref().map(|s| s.as_fd())));
            let _ = fds.push(slot(self.inotify.as_ref().map(|s| s.as_fd())));
            let _ = fds.push(slot(self.listener.as_ref().map(|s| s.as_fd())));
            let _ = fds.push(slot(self.netwatch.as_ref().map(|w| w.as_fd())));
            for c in &self.clients {
                let want = if c.blocked() {
                    PollFlags::POLLOUT
                } else {
                    PollFlags::POLLIN
                };
                let _ = fds.push(PollFd::new(c.stream.as_fd(), want));
            }
            let first_conn = fds.len();
            let mut conns = heapless::Vec::<usize, { deliver::LOOP_CONNS }>::new();
            for (i, fd, want) in self.direct.poll_set() {
                if conns.push(i).is_ok() {
                    let _ = fds.push(PollFd::new(fd, want));
                }
            }
            match nix::poll::poll(&mut fds, timeout) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    return Err(DaemonError::Sys {
                        call: "poll",
                        err: e,
                    })
                }
            }
            let ready = |i: usize| {
                fds.get(i)
                    .and_then(|f| f.revents())
                    .is_some_and(|r| !r.is_empty())
            };
            let (wake_ready, sig_ready, ino_ready) = (ready(0), ready(1), ready(2));
            let net_ready = ready(4);
            let listen_ready = self.listener.is_some() && ready(3);
            let client_ready: heapless::Vec<bool, MAX_CLIENTS> = (0..self.clients.len())
                .map(|i| ready(FIXED_SLOTS + i))
                .collect();
            let conns_ready: heapless::Vec<usize, { deliver::LOOP_CONNS }> = conns
                .iter()
                .enumerate()
                .filter(|&(k, _)| ready(first_conn + k))
                .map(|(_, &i)| i)
                .collect();
            drop(fds);
            if !conns.is_empty() {
                if let Ok(s) = self.sender.read().map(|s| Arc::clone(&s)) {
                    let t = now().ms;
                    self.direct.ready(&s, &conns_ready, t);
                    self.direct.tick(&s, t);
                }
            }

            if sig_ready {
                self.on_signals();
            }
            if ino_ready {
                self.on_inotify();
            }
            if wake_ready {
                let _ = self.wake_r.read(); // resets the eventfd's counter
            }
            if net_ready {
                self.interface_news();
            }
            self.collect_results();
            self.drain_inbox();
            self.check_held_boot();
            // Clients before accepting new ones, so indices stay valid.
            for i in (0..client_ready.len().min(self.clients.len())).rev() {
                if client_ready[i] && !self.serve_client(i) {
                    self.clients.swap_remove(i);
                }
            }
            if self.stopping.is_some() {
                self.clients.clear();
            } else if listen_ready {
                self.accept();
            }
            self.flush_warnings(now().ms);
        }
    }

    /// Reads the kernel's link and address notices; after one, the device's interface is read
    /// again. Run before every message, not only when poll saw a notice: a change made after
    /// this wake-up's poll, and before a message the same wake-up reads, is then seen by it
    /// (the notice is queued before the change returns to whoever made it).
    fn interface_news(&mut self) {
        if let Some(w) = &self.netwatch {
            if self.device.news(w) {
                self.device_fresh = false;
            }
        }
    }

    fn stop(&mut self, flush_ms: u64) {
        if self.stopping.is_some() {
            return;
        }
        log::info!(
            "stopping; flushing {} notification(s) for up to {flush_ms} ms",
            self.engine.pending()
        );
        self.stopping = Some(now().ms + flush_ms);
        self.listener = None;
        if let Some(p) = &self.opts.socket {
            let _ = std::fs::remove_file(p);
        }
        // The clients are closed by the main loop after this wake-up's client work: emptying
        // the list here, while the loop walks it by index, panicked (issue 10 #1).
    }
}
