//! The daemon: the Unix socket, signals, config reload, the delivery workers, and the clock.
//!
//! One thread owns the [`Engine`] and sleeps in `poll(2)`: on the socket and its clients, a
//! signalfd (SIGHUP, SIGTERM, SIGINT), an inotify watch on the config's folder, and a wake pipe
//! that the delivery workers and in-process producers (the baresip adapter) write to. The poll
//! timeout is the engine's [`Engine::poll_delay`]: with nothing pending the daemon sleeps until
//! something happens — no periodic wake-ups.

pub mod deliver;
pub mod net;

use crate::core::config::{Board, Config, Problem};
use crate::core::engine::{Engine, Failure, Job, Note, Now, Outcome};
use crate::core::hook::{Kind, Msg};
use crate::core::outbox::Ticket;
use crate::core::var::{Var, Vars};
use crate::core::wire::{self, Request, WireError, MSG_CAP};
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
    Msg(Msg),
    Reload(mpsc::Sender<Result<(), ReloadError>>),
    Status(mpsc::Sender<String>),
    Counters(mpsc::Sender<Counters>),
    /// Counters, per-event figures and states, for the admin API.
    Snapshot(mpsc::Sender<Snapshot>),
    /// Stop after flushing for up to this many milliseconds.
    Stop(u64),
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
    #[error("{0}")]
    Sys(#[from] nix::Error),
    #[error("{0}")]
    Io(#[from] io::Error),
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

/// The one validation of a config text, used by `check`, `run`, reloads (SIGHUP, the folder
/// watch, `EN1 reload`) and the admin API: the JSON model ([`Config::from_json`]) and then what
/// delivery needs of it (the `ca_file` exists and holds a certificate; a build without TLS
/// refuses `ca_file`). `Ok` carries the config and its warnings; `Err` every problem.
pub fn validate_config(text: &str) -> Result<(Config, Vec<Problem>), Vec<Problem>> {
    let (cfg, warnings) = Config::from_json(text)?;
    if let Err(e) = Sender::new(&cfg.delivery) {
        let mut all = warnings;
        all.push(Problem {
            place: "delivery.ca_file".into(),
            message: e.to_string(),
            warning: false,
        });
        return Err(all);
    }
    Ok((cfg, warnings))
}

/// Reads and validates a config file (with [`validate_config`]).
pub fn load_config(path: &Path) -> Result<(Config, Vec<Problem>), DaemonError> {
    let text = std::fs::read_to_string(path).map_err(|err| DaemonError::ConfigRead {
        path: path.display().to_string(),
        err,
    })?;
    validate_config(&text).map_err(|problems| DaemonError::ConfigInvalid {
        path: path.display().to_string(),
        problems: problems
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join("\n"),
    })
}

/// The device variables: board identity, config language, and the interface read now.
pub struct Device {
    board: Board,
    program_version: String,
    interface: String,
    language: String,
}

impl Device {
    pub fn new(board: &Board, config: &Config) -> Device {
        let file = board
            .program_version_file
            .as_ref()
            .and_then(|f| std::fs::read_to_string(f).ok());
        Device {
            board: board.clone(),
            program_version: board.program_version_from(file.as_deref()),
            interface: config
                .device
                .interface
                .clone()
                .or_else(|| board.interface.clone())
                .unwrap_or_else(|| "eth0".into()),
            language: config
                .device
                .language
                .clone()
                .or_else(|| board.language.clone())
                .unwrap_or_else(|| "en".into()),
        }
    }

    pub fn vars(&self) -> Vars {
        let mut v = Vars::new();
        if let Some(ip) = net::ipv4(&self.interface) {
            let mut s = heapless::String::<16>::new();
            let _ = write!(s, "{ip}");
            v.set(Var::PhoneIp, &s);
        }
        if let Some(mac) = net::mac(&self.interface) {
            v.set(Var::Mac, &mac);
        }
        v.set(Var::Product, &self.board.product);
        v.set(Var::HardwareVersion, &self.board.hardware_version);
        v.set(Var::ProgramVersion, &self.program_version);
        v.set(Var::Language, &self.language);
        v
    }

    pub fn interface(&self) -> &str {
        &self.interface
    }
}

/// Hands messages from another thread of this process to the engine (bounded: [`INBOX_CAP`];
/// blocks while full).
#[derive(Clone)]
pub struct Inbox {
    tx: mpsc::SyncSender<Input>,
    wake: Arc<EventFd>,
}

impl Inbox {
    /// Sends one message; `false` once the engine has stopped.
    pub fn send(&self, msg: Msg) -> bool {
        self.input(Input::Msg(msg))
    }

    /// Sends one message without waiting: `Full` while [`INBOX_CAP`] messages wait.
    pub fn try_send(&self, msg: Msg) -> Result<(), SendError> {
        let r = self.tx.try_send(Input::Msg(msg)).map_err(|e| match e {
            mpsc::TrySendError::Full(_) => SendError::Full,
            mpsc::TrySendError::Disconnected(_) => SendError::Stopped,
        });
        if r.is_ok() {
            wake(&self.wake);
        }
        r
    }

    fn input(&self, i: Input) -> bool {
        let ok = self.tx.send(i).is_ok();
        if ok {
            wake(&self.wake);
        }
        ok
    }

    /// Re-reads the config file; `Err` with the problems if it is invalid (the running config stays).
    pub fn reload(&self) -> Result<(), ReloadError> {
        let (tx, rx) = mpsc::channel();
        if !self.input(Input::Reload(tx)) {
            return Err(ReloadError::Stopped);
        }
        rx.recv().unwrap_or(Err(ReloadError::Stopped))
    }

    /// The main counters.
    pub fn counters(&self) -> Option<Counters> {
        let (tx, rx) = mpsc::channel();
        if !self.input(Input::Counters(tx)) {
            return None;
        }
        rx.recv().ok()
    }

    /// Counters and per-event figures (the admin API's status).
    pub fn snapshot(&self) -> Option<Snapshot> {
        let (tx, rx) = mpsc::channel();
        if !self.input(Input::Snapshot(tx)) {
            return None;
        }
        rx.recv().ok()
    }

    /// The status lines, as `event-notify status` prints them.
    pub fn status(&self) -> Option<String> {
        let (tx, rx) = mpsc::channel();
        if !self.input(Input::Status(tx)) {
            return None;
        }
        rx.recv().ok()
    }
}

/// An engine running in a thread of the calling program (the C API uses it).
pub struct Handle {
    inbox: Inbox,
    thread: Option<thread::JoinHandle<Result<usize, DaemonError>>>,
}

impl Handle {
    pub fn inbox(&self) -> &Inbox {
        &self.inbox
    }

    /// Stops the engine: flushes for up to `flush_ms`, then joins its thread. Returns how many
    /// notifications were left undelivered.
    pub fn stop(mut self, flush_ms: u64) -> Result<usize, DaemonError> {
        self.inbox.input(Input::Stop(flush_ms));
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(DaemonError::Io(io::Error::other(
                "the engine thread panicked",
            ))),
            None => Ok(0),
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.inbox.input(Input::Stop(0));
            let _ = t.join();
        }
    }
}

/// Wakes the engine's poll. An eventfd, not a pipe: writing to it can never raise SIGPIPE,
/// even after the engine has stopped (a C program linking the library would die of it).
fn wake(fd: &EventFd) {
    let _ = fd.write(1);
}

struct Client {
    stream: UnixStream,
    buf: heapless::Vec<u8, MSG_CAP>,
    /// Skipping the rest of an over-long line.
    discarding: bool,
    /// When it last sent something (or connected), for making room when full.
    active_ms: u64,
}

/// Rate limit of one kind of repeated warning: [`WARN_BURST`] lines per [`WARN_WINDOW_MS`],
/// then a count of what was suppressed.
#[derive(Default)]
struct WarnLimit {
    window_start: u64,
    logged: u32,
    suppressed: u64,
}

impl WarnLimit {
    /// Whether to log one more warning now; reports what the last window suppressed.
    fn allow(&mut self, now_ms: u64, what: &str) -> bool {
        if now_ms.saturating_sub(self.window_start) >= WARN_WINDOW_MS {
            if self.suppressed > 0 {
                log::warn!("{} similar suppressed: {what}", self.suppressed);
            }
            self.window_start = now_ms;
            self.logged = 0;
            self.suppressed = 0;
        }
        if self.logged < WARN_BURST {
            self.logged += 1;
            true
        } else {
            self.suppressed += 1;
            false
        }
    }
}

/// The delivery workers: threads started as attempts need them, up to
/// [`crate::core::engine::MAX_IN_FLIGHT`]; each makes one attempt at a time.
struct Workers {
    jobs: mpsc::SyncSender<Job>,
    rx: Arc<Mutex<mpsc::Receiver<Job>>>,
    done: mpsc::Sender<Done>,
    sender: Arc<RwLock<Arc<Sender>>>,
    wake: Arc<EventFd>,
    started: usize,
}

/// What a worker hands back: the ticket, the outcome, and a redirect's `Location`.
type Done = (Ticket, Outcome, Option<String>);

impl Workers {
    /// Makes sure `busy` workers exist (at most the cap).
    fn ensure(&mut self, busy: usize) -> io::Result<()> {
        while self.started < busy.min(crate::core::engine::MAX_IN_FLIGHT) {
            let rx = Arc::clone(&self.rx);
            let tx = self.done.clone();
            let sender = Arc::clone(&self.sender);
            let wake_w = Arc::clone(&self.wake);
            thread::Builder::new()
                .name(format!("deliver-{}", self.started))
                .stack_size(WORKER_STACK)
                .spawn(move || loop {
                    let job = match rx.lock() {
                        Ok(rx) => match rx.recv() {
                            Ok(j) => j,
                            Err(_) => return,
                        },
                        Err(_) => return,
                    };
                    let s = sender.read().map(|s| Arc::clone(&s));
                    let (outcome, location) = match s {
                        Ok(s) => s.send(&job.n),
                        Err(_) => return,
                    };
                    if tx.send((job.ticket, outcome, location)).is_err() {
                        return;
                    }
                    wake(&wake_w);
                })?;
            self.started += 1;
        }
        Ok(())
    }
}

/// Daemon-level counters, beside the engine's.
#[derive(Default)]
struct DaemonCounters {
    refused: [u64; 11],
    /// Idle clients closed to make room for a new one.
    busy: u64,
    reloads: u64,
    reload_errors: u64,
    boot_held: u64,
}

fn refused_index(e: WireError) -> usize {
    e as usize
}

const WIRE_ERRORS: [WireError; 11] = [
    WireError::TooLong,
    WireError::NotUtf8,
    WireError::BadVersion,
    WireError::NoVerb,
    WireError::UnknownVerb,
    WireError::MissingState,
    WireError::BadState,
    WireError::NoEquals,
    WireError::UnknownField,
    WireError::BadEscape,
    WireError::Control,
];

struct Daemon {
    opts: Options,
    engine: Box<Engine>,
    device: Device,
    sender: Arc<RwLock<Arc<Sender>>>,
    workers: Workers,
    done: mpsc::Receiver<Done>,
    /// Per event, the last redirect answered (status, Location), until a delivery succeeds.
    redirects: [Option<(u16, String)>; crate::core::event::Event::COUNT],
    /// Rate limits of repeated warnings: socket refusals, outbox notes.
    warn_refused: WarnLimit,
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
    counters: DaemonCounters,
    config_text: String,
    held_boot: Option<(Msg, u64)>,
    started: Now,
    stopping: Option<u64>,
}

fn log_note(n: Note, limit: &mut WarnLimit) {
    if !matches!(n, Note::Retry(..)) && !limit.allow(now().ms, "delivery warnings") {
        return;
    }
    match n {
        Note::Dropped(e) => log::warn!("outbox full: dropped a {e} notification"),
        Note::TooLong(e) => {
            log::warn!("{e}: expanded URL or body longer than its buffer: not sent")
        }
        Note::GaveUp(e, why, attempts) => {
            log::warn!("{e}: gave up after {attempts} attempt(s): {why}")
        }
        Note::Retry(e, why, attempt, wait) => {
            log::info!("{e}: attempt {attempt} failed ({why}), retry in {wait} ms")
        }
    }
}

/// Runs the daemon (socket, signals) until SIGTERM/SIGINT.
pub fn run(opts: Options) -> Result<(), DaemonError> {
    let mut d = Daemon::new(opts, true)?;
    let r = d.main_loop();
    if let Some(p) = &d.opts.socket {
        let _ = std::fs::remove_file(p);
    }
    r.map(|_| ())
}

/// Starts an engine in a thread of this program: no signal handling, no socket unless
/// `opts.socket` names one. Config errors are returned here, before the thread starts.
pub fn spawn(opts: Options) -> Result<Handle, DaemonError> {
    let mut d = Daemon::new(opts, false)?;
    let inbox = d.inbox.clone();
    let thread = thread::Builder::new()
        .name("event-notify".into())
        .spawn(move || {
            let r = d.main_loop();
            if let Some(p) = &d.opts.socket {
                let _ = std::fs::remove_file(p);
            }
            r
        })?;
    Ok(Handle {
        inbox,
        thread: Some(thread),
    })
}

impl Daemon {
    fn new(opts: Options, signals: bool) -> Result<Daemon, DaemonError> {
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
        let sender = Arc::new(RwLock::new(Arc::new(Sender::new(&config.delivery)?)));

        // Signals arrive through a signalfd; SIGPIPE is ignored (a client that went away).
        // An embedded engine leaves the program's signals alone.
        let sigfd = if signals {
            let mut mask = SigSet::empty();
            for s in [Signal::SIGHUP, Signal::SIGTERM, Signal::SIGINT] {
                mask.add(s);
            }
            mask.thread_block()?;
            unsafe {
                // SAFETY: SIG_IGN installs no handler code.
                let _ =
                    nix::sys::signal::signal(Signal::SIGPIPE, nix::sys::signal::SigHandler::SigIgn);
            }
            Some(SignalFd::with_flags(
                &mask,
                SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC,
            )?)
        } else {
            None
        };

        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
        let watch = watch_config_dir(&inotify, &opts.config, None);
        let wake_w = Arc::new(EventFd::from_flags(
            EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC,
        )?);
        let wake_r = Arc::clone(&wake_w);

        // Delivery workers: started as attempts need them (see Workers::ensure).
        let (jobs_tx, jobs_rx) = mpsc::sync_channel::<Job>(crate::core::engine::MAX_IN_FLIGHT);
        let (done_tx, done_rx) = mpsc::channel::<Done>();
        let workers = Workers {
            jobs: jobs_tx,
            rx: Arc::new(Mutex::new(jobs_rx)),
            done: done_tx,
            sender: Arc::clone(&sender),
            wake: Arc::clone(&wake_w),
            started: 0,
        };

        let (inbox_tx, inbox_rx) = mpsc::sync_channel::<Input>(INBOX_CAP);
        let inbox = Inbox {
            tx: inbox_tx,
            wake: Arc::clone(&wake_w),
        };
        let baresip = match opts.baresip.clone() {
            Some(addr) => Some(spawn_baresip(addr, inbox.clone())?),
            None => None,
        };

        let listener = match &opts.socket {
            Some(p) => Some(bind_socket(p)?),
            None => None,
        };
        if let Some(admin) = &opts.admin {
            admin.start(inbox.clone(), opts.config.clone(), opts.board.clone())?;
        }
        let device = Device::new(&opts.board, &config);
        let seed = now().ms ^ (std::process::id() as u64) << 32;
        let d = Daemon {
            engine: Engine::new(config, seed),
            device,
            sender,
            workers,
            done: done_rx,
            redirects: [const { None }; crate::core::event::Event::COUNT],
            warn_refused: WarnLimit::default(),
            warn_notes: WarnLimit::default(),
            inbox_rx,
            sigfd,
            inotify: Some(inotify),
            watch,
            wake_r,
            inbox,
            baresip,
            listener,
            clients: Vec::with_capacity(MAX_CLIENTS),
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

/// The inotify watch for config changes.
#[derive(Default)]
struct Watch {
    wd: Option<nix::sys::inotify::WatchDescriptor>,
    /// The watch is on the config's own folder (else on a folder above it, or none).
    dir: bool,
}

impl Watch {
    fn on_dir(&self) -> bool {
        self.dir && self.wd.is_some()
    }

    fn take(&mut self) -> Option<Watch> {
        self.wd.map(|wd| Watch {
            wd: Some(wd),
            dir: self.dir,
        })
    }
}

/// Watches the config's folder for a finished write or a file renamed into place; while the
/// folder does not exist, watches the nearest existing folder above it for its creation.
/// `old` is the previous watch, removed when it is replaced.
fn watch_config_dir(inotify: &Inotify, config: &Path, old: Option<Watch>) -> Watch {
    let dir = config
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let on_dir = AddWatchFlags::IN_CLOSE_WRITE
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_DELETE_SELF
        | AddWatchFlags::IN_MOVE_SELF;
    let new = match inotify.add_watch(dir, on_dir) {
        Ok(wd) => Watch {
            wd: Some(wd),
            dir: true,
        },
        Err(e) => {
            let above = dir.ancestors().skip(1).find(|a| a.is_dir());
            let flags = AddWatchFlags::IN_CREATE
                | AddWatchFlags::IN_MOVED_TO
                | AddWatchFlags::IN_DELETE_SELF;
            match above.map(|a| inotify.add_watch(a, flags)) {
                Some(Ok(wd)) => Watch {
                    wd: Some(wd),
                    dir: false,
                },
                _ => {
                    log::warn!(
                        "cannot watch {} for changes ({e}); reload with SIGHUP",
                        dir.display()
                    );
                    Watch::default()
                }
            }
        }
    };
    if let Some(Watch { wd: Some(wd), .. }) = old {
        if Some(wd) != new.wd {
            let _ = inotify.rm_watch(wd);
        }
    }
    new
}

/// Follows a baresip over its ctrl_tcp module in a thread of its own.
fn spawn_baresip(addr: String, inbox: Inbox) -> io::Result<Baresip> {
    let stats = Arc::new(crate::baresip::AdapterStats::default());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (st, sp) = (Arc::clone(&stats), Arc::clone(&stop));
    thread::Builder::new()
        .name("baresip".into())
        .spawn(move || {
            crate::baresip::run_adapter(&addr, &mut |m| inbox.send(m), &sp, &st);
        })?;
    Ok(Baresip { stats, stop })
}

/// The baresip adapter's thread, seen from the daemon.
struct Baresip {
    stats: Arc<crate::baresip::AdapterStats>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Drop for Baresip {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

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

fn bind_socket(path: &Path) -> Result<UnixListener, DaemonError> {
    let err = |err| DaemonError::Socket {
        path: path.display().to_string(),
        err,
    };
    // Replace only a socket nobody answers; anything else at the path (a regular file, the
    // config itself, a folder) is refused, never deleted (issue 10 #6).
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        if !meta.file_type().is_socket() {
            return Err(err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "exists and is not a socket; refusing to replace it (choose another --socket path)",
            )));
        }
        if UnixStream::connect(path).is_ok() {
            return Err(err(io::Error::new(
                io::ErrorKind::AddrInUse,
                "another daemon is listening on it",
            )));
        }
        std::fs::remove_file(path).map_err(err)?;
    }
    let l = UnixListener::bind(path).map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(err)?;
    l.set_nonblocking(true).map_err(err)?;
    Ok(l)
}

impl Daemon {
    /// Runs until stopped; returns how many notifications were left undelivered.
    fn main_loop(&mut self) -> Result<usize, DaemonError> {
        loop {
            let t = now();
            self.dispatch(t);
            if let Some(deadline) = self.stopping {
                if self.engine.pending() == 0 || t.ms >= deadline {
                    let left = self.engine.pending();
                    if left > 0 {
                        log::warn!("stopping with {left} notification(s) not delivered");
                    } else {
                        log::info!("stopped: outbox empty");
                    }
                    return Ok(left);
                }
            }
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
            if let Some(deadline) = self.stopping {
                timeout = Some(
                    timeout
                        .unwrap_or(u64::MAX)
                        .min(deadline.saturating_sub(t.ms)),
                );
            }
            let timeout = match timeout {
                None => PollTimeout::NONE,
                Some(ms) => {
                    PollTimeout::try_from(ms.min(60_000) as i32).unwrap_or(PollTimeout::MAX)
                }
            };

            // Fixed order: wake pipe, signals, inotify, listener, then the clients. A missing
            // source polls the wake pipe for nothing.
            let mut fds = Vec::with_capacity(4 + MAX_CLIENTS);
            let wake_fd = self.wake_r.as_fd();
            let slot = |fd| pollfd(fd, wake_fd);
            fds.push(slot(Some(self.wake_r.as_fd())));
            fds.push(slot(self.sigfd.as_ref().map(|s| s.as_fd())));
            fds.push(slot(self.inotify.as_ref().map(|s| s.as_fd())));
            fds.push(slot(self.listener.as_ref().map(|s| s.as_fd())));
            for c in &self.clients {
                fds.push(PollFd::new(c.stream.as_fd(), PollFlags::POLLIN));
            }
            match nix::poll::poll(&mut fds, timeout) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
            let ready = |i: usize| {
                fds.get(i)
                    .and_then(|f| f.revents())
                    .is_some_and(|r| !r.is_empty())
            };
            let (wake_ready, sig_ready, ino_ready) = (ready(0), ready(1), ready(2));
            let listen_ready = self.listener.is_some() && ready(3);
            let client_ready: heapless::Vec<bool, MAX_CLIENTS> =
                (0..self.clients.len()).map(|i| ready(4 + i)).collect();
            drop(fds);

            if sig_ready {
                self.on_signals();
            }
            if ino_ready {
                self.on_inotify();
            }
            if wake_ready {
                let _ = self.wake_r.read(); // resets the eventfd's counter
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
        }
    }

    fn dispatch(&mut self, t: Now) {
        while let Some(job) = self.engine.next_job(t) {
            log::debug!("{} {} {}", job.n.event, job.n.method.as_str(), job.n.url);
            if let Err(e) = self.workers.ensure(self.engine.in_flight()) {
                log::error!("cannot start a delivery worker: {e}");
            }
            let sent = if self.workers.started == 0 {
                Err(mpsc::SendError(job))
            } else {
                self.workers.jobs.send(job)
            };
            if let Err(mpsc::SendError(job)) = sent {
                // Workers gone: cannot happen while the daemon runs; keep the notification.
                self.engine.complete(
                    job.ticket,
                    Outcome::Failed {
                        why: crate::core::engine::Failure::Io,
                        retry_after_ms: None,
                    },
                    t,
                    &mut |n| log_note(n, &mut self.warn_notes),
                );
                return;
            }
        }
    }

    fn collect_results(&mut self) {
        while let Ok((ticket, outcome, location)) = self.done.try_recv() {
            let t = now();
            let event = self.engine.event_of(ticket);
            match (outcome, event) {
                (Outcome::Delivered(code), Some(e)) => {
                    log::debug!("delivered ({code}), attempt {}", ticket.attempt);
                    self.redirects[e.index()] = None;
                }
                (
                    Outcome::Failed {
                        why: Failure::Redirect(code),
                        ..
                    },
                    Some(e),
                ) => {
                    let loc = location.unwrap_or_else(|| "(none)".into());
                    log::warn!("{e}: the server answered {code} redirect to {loc}: not followed, not retried; correct the URL in the config");
                    self.redirects[e.index()] = Some((code, loc));
                }
                _ => {}
            }
            let warn = &mut self.warn_notes;
            self.engine
                .complete(ticket, outcome, t, &mut |n| log_note(n, warn));
        }
    }

    fn drain_inbox(&mut self) {
        while let Ok(input) = self.inbox_rx.try_recv() {
            match input {
                Input::Msg(msg) => {
                    let _ = self.handle_msg(&msg);
                }
                Input::Reload(reply) => {
                    let _ = reply.send(self.reload(true));
                }
                Input::Counters(reply) => {
                    let _ = reply.send(self.counters());
                }
                Input::Snapshot(reply) => {
                    let _ = reply.send(self.snapshot());
                }
                Input::Status(reply) => {
                    let mut s = String::new();
                    self.write_status(&mut s);
                    let _ = reply.send(s);
                }
                Input::Stop(flush_ms) => self.stop(flush_ms),
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

    /// Handles one message; the reply detail for the socket.
    fn handle_msg(&mut self, msg: &Msg) -> Result<String, String> {
        let device = self.device.vars();
        if msg.kind == Kind::Boot && device.get(Var::PhoneIp).is_empty() && self.held_boot.is_none()
        {
            log::info!(
                "boot: {} has no address yet; booting_completed held until it has",
                self.device.interface()
            );
            self.counters.boot_held += 1;
            self.held_boot = Some((msg.clone(), now().ms));
            return Ok("held until the network is up".into());
        }
        let warn = &mut self.warn_notes;
        match self
            .engine
            .handle(msg, &device, now(), &mut |n| log_note(n, warn))
        {
            Ok(h) => Ok(format!("derived={} queued={}", h.derived, h.queued)),
            Err(e) => {
                log::info!("message ignored: {e}");
                Ok(format!("derived=0 queued=0 ignored={}", e.code()))
            }
        }
    }

    fn check_held_boot(&mut self) {
        let Some((msg, since)) = &self.held_boot else {
            return;
        };
        let device = self.device.vars();
        let t = now();
        if device.get(Var::PhoneIp).is_empty() && t.ms < since + BOOT_HOLD_MS {
            return;
        }
        let msg = msg.clone();
        self.held_boot = None;
        let warn = &mut self.warn_notes;
        let _ = self
            .engine
            .handle(&msg, &device, t, &mut |n| log_note(n, warn));
    }

    fn on_signals(&mut self) {
        let mut sigs = heapless::Vec::<Signal, 8>::new();
        if let Some(fd) = &self.sigfd {
            while let Ok(Some(info)) = fd.read_signal() {
                if let Ok(sig) = Signal::try_from(info.ssi_signo as i32) {
                    let _ = sigs.push(sig);
                }
            }
        }
        for sig in sigs {
            if sig == Signal::SIGHUP {
                log::info!("SIGHUP: reloading {}", self.opts.config.display());
                let _ = self.reload(true);
            } else {
                log::info!("{sig}");
                self.stop(self.engine.config().delivery.shutdown_flush_ms as u64);
            }
        }
    }

    fn on_inotify(&mut self) {
        let name = self.opts.config.file_name().map(|n| n.to_owned());
        let mut hit = false;
        let Some(inotify) = &self.inotify else { return };
        while let Ok(events) = inotify.read_events() {
            if events.is_empty() {
                break;
            }
            hit |= events.iter().any(|e| e.name.as_deref() == name.as_deref());
        }
        // The folder may have been deleted (its watch is gone) or made (watch it now): re-arm,
        // and take a config that appeared meanwhile (issue 10 #12).
        let was = self.watch.on_dir();
        self.watch = watch_config_dir(inotify, &self.opts.config, self.watch.take());
        let armed_now = !was && self.watch.on_dir();
        if hit || (armed_now && self.opts.config.exists()) {
            let _ = self.reload(false);
        }
    }

    /// Re-reads the config; an invalid one is refused and the running one stays.
    fn reload(&mut self, forced: bool) -> Result<(), ReloadError> {
        let path = self.opts.config.display().to_string();
        let text = match std::fs::read_to_string(&self.opts.config) {
            Ok(t) => t,
            Err(e) => {
                self.counters.reload_errors += 1;
                log::error!("reload: cannot read {path}: {e}; keeping the running config");
                return Err(ReloadError::Read(format!("{path}: {e}")));
            }
        };
        if !forced && text == self.config_text {
            return Ok(());
        }
        let (cfg, warnings) = match validate_config(&text) {
            Ok(c) => c,
            Err(problems) => {
                self.counters.reload_errors += 1;
                self.config_text = text;
                log::error!("reload refused: {path} is invalid; keeping the running config:");
                for p in &problems {
                    log::error!("  {p}");
                }
                return Err(ReloadError::Invalid(
                    problems.iter().map(|p| p.to_string()).collect(),
                ));
            }
        };
        for w in warnings {
            log::warn!("config: {w}");
        }
        if cfg.delivery != self.engine.config().delivery {
            match Sender::new(&cfg.delivery) {
                Ok(s) => {
                    if let Ok(mut cur) = self.sender.write() {
                        *cur = Arc::new(s);
                    }
                }
                Err(e) => {
                    self.counters.reload_errors += 1;
                    self.config_text = text;
                    log::error!("reload refused: {e}; keeping the running config");
                    return Err(ReloadError::Delivery(e.to_string()));
                }
            }
        }
        self.device = Device::new(&self.opts.board, &cfg);
        self.engine.set_config(cfg);
        self.config_text = text;
        self.counters.reloads += 1;
        log::info!("config reloaded");
        Ok(())
    }

    fn accept(&mut self) {
        let Some(l) = &self.listener else { return };
        loop {
            match l.accept() {
                Ok((stream, _)) => {
                    if stream.set_nonblocking(true).is_err() {
                        continue;
                    }
                    if self.clients.len() >= MAX_CLIENTS {
                        // Make room: close the client idle the longest (issue 10 #7).
                        let oldest =
                            (0..self.clients.len()).min_by_key(|&i| self.clients[i].active_ms);
                        if let Some(i) = oldest {
                            self.counters.busy += 1;
                            if self.warn_refused.allow(now().ms, "socket clients closed") {
                                log::warn!("{MAX_CLIENTS} socket clients: closed the one idle the longest to make room");
                            }
                            self.clients.swap_remove(i);
                        }
                    }
                    self.clients.push(Client {
                        stream,
                        buf: heapless::Vec::new(),
                        discarding: false,
                        active_ms: now().ms,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    log::warn!("accept: {e}");
                    return;
                }
            }
        }
    }

    /// Reads what a client sent and answers each complete line. `false`: drop the client.
    fn serve_client(&mut self, i: usize) -> bool {
        let mut chunk = [0u8; 1024];
        loop {
            let Some(c) = self.clients.get_mut(i) else {
                return false;
            };
            c.active_ms = now().ms;
            let n = match c.stream.read(&mut chunk) {
                Ok(0) => return false,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return false,
            };
            for &b in &chunk[..n] {
                let c = &mut self.clients[i];
                if c.discarding {
                    if b == b'\n' {
                        c.discarding = false;
                    }
                    continue;
                }
                if b == b'\n' {
                    let line = core::mem::take(&mut c.buf);
                    let reply = self.answer(&line);
                    if self.clients[i].stream.write_all(reply.as_bytes()).is_err() {
                        return false;
                    }
                    if self.stopping.is_some() {
                        return false;
                    }
                    continue;
                }
                if c.buf.push(b).is_err() {
                    c.buf.clear();
                    c.discarding = true;
                    let e = WireError::TooLong;
                    self.counters.refused[refused_index(e)] += 1;
                    if self.warn_refused.allow(now().ms, "refused socket messages") {
                        log::warn!("refused a socket message: {e}");
                    }
                    let reply = format!("ERR {} {e}\n", e.code());
                    if self.clients[i].stream.write_all(reply.as_bytes()).is_err() {
                        return false;
                    }
                }
            }
        }
    }

    fn answer(&mut self, line: &[u8]) -> String {
        match wire::parse_request(line) {
            Ok(Request::Msg(m)) => match self.handle_msg(&m) {
                Ok(detail) => format!("OK {detail}\n"),
                Err(detail) => format!("ERR refused {detail}\n"),
            },
            Ok(Request::Ping) => "OK pong\n".into(),
            Ok(Request::Reload) => match self.reload(true) {
                Ok(()) => "OK reloaded\n".into(),
                Err(_) => "ERR invalid-config the new config is invalid; the running one stays (see the log)\n".into(),
            },
            Ok(Request::Status) => {
                let mut s = String::from("OK\n");
                self.write_status(&mut s);
                s.push('\n');
                s
            }
            Err(e) => {
                self.counters.refused[refused_index(e)] += 1;
                if self.warn_refused.allow(now().ms, "refused socket messages") {
                    log::warn!("refused a socket message: {e}");
                }
                format!("ERR {} {e}\n", e.code())
            }
        }
    }

    fn counters(&self) -> Counters {
        let sum = |f: fn(&crate::core::engine::EventStats) -> u64| {
            self.engine.events.iter().map(f).sum::<u64>()
        };
        let t = self.engine.tracker_stats();
        Counters {
            messages: self.engine.stats.messages,
            events: sum(|e| e.derived),
            queued: sum(|e| e.queued),
            delivered: sum(|e| e.delivered),
            retried: sum(|e| e.retried),
            failed: sum(|e| e.failed),
            dropped: sum(|e| e.dropped),
            pending: self.engine.pending() as u64,
            in_flight: self.engine.in_flight() as u64,
            not_configured: self.engine.stats.not_configured,
            too_long: self.engine.stats.too_long,
            duplicates: t.duplicates,
            unknown_call: t.unknown_call,
            call_table_full: t.call_table_full,
            refused: self.counters.refused.iter().sum(),
            reloads: self.counters.reloads,
            reload_errors: self.counters.reload_errors,
        }
    }

    fn snapshot(&self) -> Snapshot {
        let cfg = self.engine.config();
        Snapshot {
            counters: self.counters(),
            events: self.engine.events,
            states: core::array::from_fn(|i| match cfg.events[i].as_ref() {
                None => "off",
                Some(c) if !c.enabled => "disabled",
                Some(_) => "on",
            }),
            uptime_s: now().ms.saturating_sub(self.started.ms) / 1000,
            locations: core::array::from_fn(|i| self.redirects[i].as_ref().map(|(_, l)| l.clone())),
        }
    }

    fn write_status(&self, s: &mut String) {
        let t = now();
        let _ = writeln!(s, "version {}", env!("CARGO_PKG_VERSION"));
        let _ = writeln!(s, "wire EN1");
        let _ = writeln!(
            s,
            "uptime_s {}",
            t.ms.saturating_sub(self.started.ms) / 1000
        );
        let _ = writeln!(s, "config {}", self.opts.config.display());
        let _ = writeln!(s, "pid {}", std::process::id());
        let _ = writeln!(s, "interface {}", self.device.interface());
        let refused: u64 = self.counters.refused.iter().sum();
        let _ = writeln!(s, "refused {refused}");
        for e in WIRE_ERRORS {
            let n = self.counters.refused[refused_index(e)];
            if n > 0 {
                let _ = writeln!(s, "refused_{} {n}", e.code().replace('-', "_"));
            }
        }
        let _ = writeln!(s, "busy {}", self.counters.busy);
        let _ = writeln!(s, "reloads {}", self.counters.reloads);
        let _ = writeln!(s, "reload_errors {}", self.counters.reload_errors);
        let _ = writeln!(s, "boot_held {}", u64::from(self.held_boot.is_some()));
        let _ = writeln!(s, "clients {}", self.clients.len());
        for e in crate::core::event::Event::ALL {
            if let Some((code, loc)) = &self.redirects[e.index()] {
                let _ = writeln!(s, "redirect {} {code} {loc}", e.key());
            }
        }
        if let Some(b) = &self.baresip {
            let c = b.stats.snapshot();
            let _ = writeln!(
                s,
                "baresip connected={} received={} mapped={} msgs={} ignored={} errors={} reconnects={}",
                u8::from(c.connected),
                c.received,
                c.mapped,
                c.msgs,
                c.ignored,
                c.errors,
                c.reconnects
            );
        }
        let _ = self.engine.write_status(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_are_rate_limited_per_window() {
        let mut w = WarnLimit::default();
        let t0 = 1_000_000;
        let allowed = (0..1000).filter(|_| w.allow(t0, "x")).count();
        assert_eq!(allowed, WARN_BURST as usize);
        assert_eq!(w.suppressed, 1000 - WARN_BURST as u64);
        // The next window logs again (and reports what the last one suppressed).
        assert!(w.allow(t0 + WARN_WINDOW_MS, "x"));
        assert_eq!(w.suppressed, 0);
    }
}
