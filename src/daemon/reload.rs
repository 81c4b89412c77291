//! Config loading and reload: the one validation, the folder watch, signals.

use super::*;

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

/// The inotify watch for config changes.
#[derive(Default)]
pub(super) struct Watch {
    pub(super) wd: Option<nix::sys::inotify::WatchDescriptor>,
    /// The watch is on the config's own folder (else on a folder above it, or none).
    pub(super) dir: bool,
}

impl Watch {
    pub(super) fn on_dir(&self) -> bool {
        self.dir && self.wd.is_some()
    }

    pub(super) fn take(&mut self) -> Option<Watch> {
        self.wd.map(|wd| Watch {
            wd: Some(wd),
            dir: self.dir,
        })
    }
}

/// Watches the config's folder for a finished write or a file renamed into place; while the
/// folder does not exist, watches the nearest existing folder above it for its creation.
/// `old` is the previous watch, removed when it is replaced.
pub(super) fn watch_config_dir(inotify: &Inotify, config: &Path, old: Option<Watch>) -> Watch {
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

impl Daemon {
    #[inline(never)] // see Daemon::main_loop
    pub(super) fn on_signals(&mut self) {
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

    #[inline(never)] // see Daemon::main_loop
    pub(super) fn on_inotify(&mut self) {
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

    /// Re-reads the config; an invalid one is refused and the running one stays. Runs on a
    /// stack of its own ([`on_own_stack`]), so the main thread's stays small.
    pub(super) fn reload(&mut self, forced: bool) -> Result<(), ReloadError> {
        on_own_stack(self, |d| d.reload_here(forced))
    }

    fn reload_here(&mut self, forced: bool) -> Result<(), ReloadError> {
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
        if cfg.delivery.spool != self.engine.config().delivery.spool {
            log::warn!("reload: a change of delivery.spool takes effect at the next start");
        }
        // A `ca_file` is read again at every reload: its contents may have changed under the
        // same path (a renewed CA).
        if cfg.delivery != self.engine.config().delivery || cfg.delivery.ca_file.is_some() {
            match Sender::new(&cfg.delivery) {
                Ok(s) => {
                    if let Ok(mut cur) = self.sender.write() {
                        *cur = Arc::new(s);
                    }
                    // Kept connections were opened (and over TLS, trusted) under the old
                    // settings: none is used again, as ureq's pool goes with its agent.
                    self.direct.retire_all();
                }
                Err(e) => {
                    self.counters.reload_errors += 1;
                    self.config_text = text;
                    log::error!("reload refused: {e}; keeping the running config");
                    return Err(ReloadError::Delivery(e.to_string()));
                }
            }
        }
        self.device = self.device.reloaded(&self.opts.board, &cfg);
        self.device_fresh = false;
        self.engine.set_config(cfg);
        self.config_text = text;
        self.counters.reloads += 1;
        log::info!("config reloaded");
        Ok(())
    }
}
