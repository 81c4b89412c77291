//! The delivery workers and the outbox notes they produce.

use super::*;

/// The delivery workers: threads started as attempts need them, up to
/// [`crate::core::engine::MAX_IN_FLIGHT`]; each makes one attempt at a time.
pub(super) struct Workers {
    pub(super) jobs: mpsc::SyncSender<Job>,
    pub(super) rx: Arc<Mutex<mpsc::Receiver<Job>>>,
    pub(super) done: mpsc::Sender<Done>,
    pub(super) sender: Arc<RwLock<Arc<Sender>>>,
    pub(super) wake: Arc<EventFd>,
    pub(super) started: usize,
    /// Jobs handed to the workers and not back yet.
    pub(super) busy: usize,
}

/// What a worker hands back: the ticket, and the attempt's result (or only the name looked up,
/// for the loop sender to send).
pub(super) type Done = (Ticket, deliver::Attempt);

impl Workers {
    /// No worker yet; the channel results come back on.
    pub(super) fn new(
        sender: Arc<RwLock<Arc<Sender>>>,
        wake: Arc<EventFd>,
    ) -> (Workers, mpsc::Receiver<Done>) {
        let (jobs, rx) = mpsc::sync_channel::<Job>(crate::core::engine::MAX_IN_FLIGHT);
        let (done, done_rx) = mpsc::channel::<Done>();
        let w = Workers {
            jobs,
            rx: Arc::new(Mutex::new(rx)),
            done,
            sender,
            wake,
            started: 0,
            busy: 0,
        };
        (w, done_rx)
    }

    /// Makes sure `busy` workers exist (at most the cap). Out of line: the thread start-up
    /// would add its frames to `Daemon::dispatch`'s on the main thread's stack.
    #[inline(never)]
    pub(super) fn ensure(&mut self, busy: usize) -> io::Result<()> {
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
                    let attempt = match s {
                        Ok(s) => s.work(&job.n),
                        Err(_) => return,
                    };
                    if tx.send((job.ticket, attempt)).is_err() {
                        return;
                    }
                    wake(&wake_w);
                })?;
            self.started += 1;
        }
        Ok(())
    }
}

pub(super) fn log_note(n: Note, limit: &mut WarnLimit) {
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

impl Daemon {
    /// Workers gone (cannot happen while the daemon runs): the attempt failed, the notification
    /// is kept. Out of line, as the rare path of [`Daemon::dispatch`].
    #[cold]
    #[inline(never)]
    fn unsent(&mut self, ticket: Ticket, t: Now) {
        self.engine.complete(
            ticket,
            Outcome::Failed {
                why: crate::core::engine::Failure::Io,
                retry_after_ms: None,
            },
            t,
            &mut |n| log_note(n, &mut self.warn_notes),
        );
    }

    /// Hands every notification that is due to the workers.
    #[inline(never)] // see Daemon::main_loop
    pub(super) fn dispatch(&mut self, t: Now) {
        // Most turns of the loop have nothing due (an idle phone: every turn). `send_due` moves
        // jobs (~2.7 KiB each: URL, body and header buffers) by value through the channel, a
        // ~25 KiB frame whose pages would be touched at every call and stay resident.
        if self.engine.poll_delay(t) == Some(0) {
            self.send_due(t);
        }
    }

    /// Sends what is due: plain HTTP from this loop ([`deliver::LoopSender`]), the rest
    /// through the workers.
    #[inline(never)]
    fn send_due(&mut self, t: Now) {
        let sender = self.sender.read().map(|s| Arc::clone(&s)).ok();
        while let Some((ticket, n)) = self.engine.next_job_ref(t) {
            log::debug!("{} {} {}", n.event, n.method.as_str(), n.url);
            let start = match &sender {
                Some(s) => self.direct.start(s, ticket, n, t.ms, 0),
                None => deliver::Start::NotMine,
            };
            match start {
                deliver::Start::Sent => {}
                deliver::Start::Done(outcome, location) => self.finish(ticket, outcome, location),
                deliver::Start::NotMine => {
                    if let Err(ticket) = hand_off(&mut self.workers, ticket, n) {
                        self.unsent(ticket, t);
                        return;
                    }
                }
            }
        }
    }

    /// The results of the attempts that ended: the workers', and the loop sender's.
    #[inline(never)] // see Daemon::main_loop
    pub(super) fn collect_results(&mut self) {
        while let Ok((ticket, attempt)) = self.done.try_recv() {
            self.workers.busy = self.workers.busy.saturating_sub(1);
            match attempt {
                deliver::Attempt::Done(outcome, location) => self.finish(ticket, outcome, location),
                deliver::Attempt::Resolved(spent_ms) => self.send_resolved(ticket, spent_ms),
            }
        }
        while let Some((ticket, outcome, location)) = self.direct.take_finished() {
            self.finish(ticket, outcome, location);
        }
    }

    /// A worker has looked up the name of this notification's destination: the loop sender
    /// sends it now (or, with every loop connection busy, a worker).
    #[cold]
    #[inline(never)]
    fn send_resolved(&mut self, ticket: Ticket, spent_ms: u64) {
        let Some(n) = self.engine.in_flight_notification(ticket) else {
            return;
        };
        let t = now();
        let start = match self.sender.read().map(|s| Arc::clone(&s)) {
            Ok(s) => self.direct.start(&s, ticket, &n, t.ms, spent_ms),
            Err(_) => deliver::Start::NotMine,
        };
        match start {
            deliver::Start::Sent => {}
            deliver::Start::Done(outcome, location) => self.finish(ticket, outcome, location),
            deliver::Start::NotMine => {
                if let Err(ticket) = hand_off(&mut self.workers, ticket, &n) {
                    self.unsent(ticket, t);
                }
            }
        }
    }

    /// Records one attempt's result.
    fn finish(&mut self, ticket: Ticket, outcome: Outcome, location: Option<String>) {
        {
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
}

/// Gives a worker a copy of the notification (starting a worker if none is free). Out of line:
/// the job (~2.7 KiB, moved by value through the channel) stays out of the loop's frames.
/// `Err(ticket)` when no worker can take it.
#[inline(never)]
fn hand_off(
    w: &mut Workers,
    ticket: Ticket,
    n: &crate::core::outbox::Notification,
) -> Result<(), Ticket> {
    if let Err(e) = w.ensure(w.busy + 1) {
        log::error!("cannot start a delivery worker: {e}");
    }
    if w.started == 0 {
        return Err(ticket);
    }
    let job = Job {
        ticket,
        n: n.clone(),
    };
    match w.jobs.send(job) {
        Ok(()) => {
            w.busy += 1;
            Ok(())
        }
        Err(_) => Err(ticket),
    }
}
