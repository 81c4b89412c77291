//! The real daemon as a child process.

use super::*;

/// The daemon `event-notify run` in a private temp dir; killed on drop.
pub struct Daemon {
    child: Option<Child>,
    dir: TempDir,
    config: PathBuf,
    socket: PathBuf,
    log: PathBuf,
    exit: Option<ExitStatus>,
}

impl Daemon {
    /// Writes `config_json`, starts the daemon, and waits for its `ready` log line.
    pub fn start(config_json: &str) -> Daemon {
        Daemon::start_with(config_json, &[])
    }

    /// Like `start`, with more arguments after `run --config .. --socket ..`.
    pub fn start_with(config_json: &str, extra_args: &[&str]) -> Daemon {
        let mut daemon = Daemon::spawn(config_json, extra_args);
        daemon.wait_ready(PATIENCE);
        daemon
    }

    /// Starts the daemon without waiting for it to be ready (e.g. to see it refuse a config).
    pub fn spawn(config_json: &str, extra_args: &[&str]) -> Daemon {
        Daemon::spawn_env(config_json, extra_args, &[])
    }

    /// Like `spawn`, with environment variables for the daemon (e.g. `EVENT_NOTIFY_LOG=debug`;
    /// the level is `info` unless given here, whatever the test's own environment says).
    pub fn spawn_env(config_json: &str, extra_args: &[&str], env: &[(&str, &str)]) -> Daemon {
        let dir = TempDir::new("daemon");
        let config = dir.write("config.json", config_json);
        let socket = dir.join("s.sock");
        let log = dir.join("daemon.log");
        let stderr = std::fs::File::create(&log).expect("create log file");
        let stdout = std::fs::File::create(dir.join("daemon.out")).expect("create out file");
        let child = Command::new(bin())
            .arg("run")
            .arg("--config")
            .arg(&config)
            .arg("--socket")
            .arg(&socket)
            .args(extra_args)
            .env_remove("EVENT_NOTIFY_SOCKET")
            .env("EVENT_NOTIFY_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin()));
        Daemon {
            child: Some(child),
            dir,
            config,
            socket,
            log,
            exit: None,
        }
    }

    /// Waits for a log line with the word `ready`; panics with the log if the daemon exits
    /// or `timeout` passes first.
    pub fn wait_ready(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if self.log().lines().any(|l| has_word(l, "ready")) {
                return;
            }
            if let Some(status) = self.try_exit() {
                panic!(
                    "daemon exited ({status}) before it was ready; log:\n{}",
                    self.log()
                );
            }
            if Instant::now() >= deadline {
                panic!("daemon not ready within {timeout:?}; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .map(Child::id)
            .expect("daemon already reaped")
    }

    pub fn dir(&self) -> &TempDir {
        &self.dir
    }

    pub fn config_path(&self) -> &Path {
        &self.config
    }

    pub fn socket_path(&self) -> &Path {
        &self.socket
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Everything the daemon wrote on stderr so far.
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    /// Waits until the log contains `needle`; false after `timeout`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.log().contains(needle) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Replaces the config file atomically (the daemon may be watching it).
    pub fn write_config(&self, config_json: &str) {
        self.dir.write("config.json", config_json);
    }

    /// `event-notify emit ARGS... --socket <this daemon's socket>`.
    pub fn emit(&self, args: &[&str]) -> CmdOutput {
        self.cli("emit", args)
    }

    /// `emit` that must be accepted (exit 0); panics with its output and the daemon's log.
    pub fn emit_ok(&self, args: &[&str]) {
        let (code, out, err) = self.emit(args);
        assert_eq!(
            code,
            0,
            "emit {args:?}: exit {code}\nstdout: {out}\nstderr: {err}\ndaemon log:\n{}",
            self.log()
        );
    }

    /// `event-notify status --socket ..`'s stdout; panics (with its stderr) if it fails.
    pub fn status(&self) -> String {
        let (code, out, err) = self.cli("status", &[]);
        assert_eq!(code, 0, "event-notify status failed: {err}");
        out
    }

    /// Any `event-notify SUBCOMMAND ARGS... --socket ..` against this daemon.
    pub fn cli(&self, subcommand: &str, args: &[&str]) -> CmdOutput {
        output_within(
            Command::new(bin())
                .arg(subcommand)
                .args(args)
                .arg("--socket")
                .arg(&self.socket)
                .env("EVENT_NOTIFY_SOCKET", &self.socket),
            PATIENCE,
        )
    }

    pub fn sighup(&self) {
        self.signal(nix::sys::signal::Signal::SIGHUP);
    }

    pub fn sigterm(&self) {
        self.signal(nix::sys::signal::Signal::SIGTERM);
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.pid() as i32);
        nix::sys::signal::kill(pid, sig).unwrap_or_else(|e| panic!("kill({pid}, {sig}): {e}"));
    }

    /// The exit status if the daemon has exited (reaping it).
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.exit = Some(status);
                }
            }
        }
        self.exit
    }

    /// Waits for the daemon to exit; `None` if it is still running after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_exit() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if self.exit.is_none() {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }
}

pub(super) fn has_word(line: &str, word: &str) -> bool {
    line.split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .any(|w| w == word)
}

/// The figure `key` of a `status` output (the line `key N`); panics with the output if there is
/// none.
pub fn stat(status: &str, key: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in status:\n{status}"))
}

/// The daemon's status once `key` has reached `want`, or as it is after [`PATIENCE`]: the
/// receiver has a request a moment before the worker's result reaches the daemon's loop.
pub fn status_when(d: &Daemon, key: &str, want: u64) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let s = d.status();
        if stat(&s, key) == want || Instant::now() > deadline {
            return s;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
