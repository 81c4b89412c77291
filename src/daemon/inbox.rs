//! Input from other threads of this process (the C API, the baresip adapter) and the
//! message path into the engine.

use super::*;

/// Hands messages from another thread of this process to the engine (bounded: [`INBOX_CAP`];
/// blocks while full).
#[derive(Clone)]
pub struct Inbox {
    pub(super) tx: mpsc::SyncSender<Input>,
    pub(super) wake: Arc<EventFd>,
}

impl Inbox {
    /// Sends one message; `false` once the engine has stopped.
    pub fn send(&self, msg: Msg) -> bool {
        self.input(Input::Msg(Box::new(msg)))
    }

    /// Sends one message without waiting: `Full` while [`INBOX_CAP`] messages wait.
    pub fn try_send(&self, msg: Msg) -> Result<(), SendError> {
        let r = self
            .tx
            .try_send(Input::Msg(Box::new(msg)))
            .map_err(|e| match e {
                mpsc::TrySendError::Full(_) => SendError::Full,
                mpsc::TrySendError::Disconnected(_) => SendError::Stopped,
            });
        if r.is_ok() {
            wake(&self.wake);
        }
        r
    }

    pub(super) fn input(&self, i: Input) -> bool {
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

    /// Counters and per-event figures (the admin API's status).
    pub fn snapshot(&self) -> Option<Snapshot> {
        let (tx, rx) = mpsc::channel();
        if !self.input(Input::Snapshot(tx)) {
            return None;
        }
        rx.recv().ok()
    }

    /// The main counters.
    pub fn counters(&self) -> Option<Counters> {
        let (tx, rx) = mpsc::channel();
        if !self.input(Input::Counters(tx)) {
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
    pub(super) inbox: Inbox,
    pub(super) thread: Option<thread::JoinHandle<Result<usize, DaemonError>>>,
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
            Some(Err(_)) => Err(DaemonError::Io {
                call: "join the engine thread",
                err: io::Error::other("the engine thread panicked"),
            }),
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
pub(super) fn wake(fd: &EventFd) {
    let _ = fd.write(1);
}

/// Follows a baresip over its ctrl_tcp module in a thread of its own.
pub(super) fn spawn_baresip(addr: String, inbox: Inbox) -> io::Result<Baresip> {
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
pub(super) struct Baresip {
    pub(super) stats: Arc<crate::baresip::AdapterStats>,
    pub(super) stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Drop for Baresip {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Daemon {
    #[inline(never)] // see Daemon::main_loop
    pub(super) fn drain_inbox(&mut self) {
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

    /// Handles one message; the reply detail for the socket.
    pub(super) fn handle_msg(&mut self, msg: &Msg) -> Answer {
        self.handle_msg_at(msg, now())
    }

    /// [`Daemon::handle_msg`] with the clock already read.
    pub(super) fn handle_msg_at(&mut self, msg: &Msg, t: Now) -> Answer {
        self.interface_news();
        self.refresh_device_vars();
        if msg.kind == Kind::Boot
            && self.device_vars.get(Var::PhoneIp).is_empty()
            && self.held_boot.is_none()
        {
            log::info!(
                "boot: {} has no address yet; booting_completed held until it has",
                self.device.interface()
            );
            self.held_boot = Some((msg.clone(), t.ms));
            return Answer::Held;
        }
        let warn = &mut self.warn_notes;
        match self
            .engine
            .handle(msg, &self.device_vars, t, &mut |n| log_note(n, warn))
        {
            Ok(h) => Answer::Handled(h),
            Err(e) => {
                log::info!("message ignored: {e}");
                Answer::Ignored(e)
            }
        }
    }

    /// Brings `device_vars` up to date. They are built again only after the kernel reported a
    /// link or address change, or a reload; without a watch on the interface (`keep` false),
    /// for every message, as the interface is then read for every message.
    fn refresh_device_vars(&mut self) {
        if !self.device_fresh {
            self.device_vars = self.device.vars();
            self.device_fresh = self.device.keep;
        }
    }

    #[inline(never)] // see Daemon::main_loop
    pub(super) fn check_held_boot(&mut self) {
        if self.held_boot.is_none() {
            return;
        }
        self.interface_news();
        self.refresh_device_vars();
        let Some((msg, since)) = &self.held_boot else {
            return;
        };
        let t = now();
        if self.device_vars.get(Var::PhoneIp).is_empty() && t.ms < since + BOOT_HOLD_MS {
            return;
        }
        let msg = msg.clone();
        self.held_boot = None;
        let warn = &mut self.warn_notes;
        let _ = self
            .engine
            .handle(&msg, &self.device_vars, t, &mut |n| log_note(n, warn));
    }
}

/// What became of one message, for the socket's `OK` reply (formatted by the caller, without
/// an allocation).
pub(super) enum Answer {
    Held,
    Handled(crate::core::engine::Handled),
    Ignored(crate::core::tracker::TrackError),
}

impl Answer {
    /// The `OK` line of the reply. The common answer is written without `core::fmt` (a few
    /// hundred instructions per number).
    pub(super) fn write_reply<const N: usize>(
        &self,
        s: &mut heapless::String<N>,
    ) -> Result<(), ()> {
        use crate::core::var::push_u64;
        match self {
            Answer::Handled(h) => {
                let ok = s.push_str("OK derived=").is_ok()
                    && push_u64(s, h.derived.into())
                    && s.push_str(" queued=").is_ok()
                    && push_u64(s, h.queued.into())
                    && s.push('\n').is_ok();
                ok.then_some(()).ok_or(())
            }
            other => writeln!(s, "OK {other}").map_err(|_| ()),
        }
    }
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Answer::Held => f.write_str("held until the network is up"),
            Answer::Handled(h) => write!(f, "derived={} queued={}", h.derived, h.queued),
            Answer::Ignored(e) => write!(f, "derived=0 queued=0 ignored={}", e.code()),
        }
    }
}
