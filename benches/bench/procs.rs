//! Processes the bench starts: the daemon, the peers' hook scripts, nginx, `event-notify listen`;
//! and what it reads about them from /proc.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// A private scratch folder, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(label: &str) -> Result<Scratch, String> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "event-notify-bench-{}-{label}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        Ok(Scratch(p))
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    pub fn write(&self, name: &str, text: &str) -> Result<PathBuf, String> {
        let p = self.join(name);
        std::fs::write(&p, text).map_err(|e| format!("{}: {e}", p.display()))?;
        Ok(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Sends SIGTERM to a child of ours, waits up to 3 s, then SIGKILL.
pub fn stop_child(c: &mut Child) {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    if matches!(c.try_wait(), Ok(Some(_))) {
        return;
    }
    let _ = kill(Pid::from_raw(c.id() as i32), Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if matches!(c.try_wait(), Ok(Some(_))) {
            return;
        }
        thread::sleep(Duration::from_millis(5));
    }
    let _ = c.kill();
    let _ = c.wait();
}

/// One connection to the daemon's socket, request/reply lines.
pub struct SockClient {
    r: BufReader<UnixStream>,
}

impl SockClient {
    pub fn connect(path: &Path) -> Result<SockClient, String> {
        let s = UnixStream::connect(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
        Ok(SockClient {
            r: BufReader::new(s),
        })
    }

    /// Writes one request line (with its LF) and returns the first reply line.
    pub fn request(&mut self, line: &str) -> Result<String, String> {
        self.r
            .get_mut()
            .write_all(line.as_bytes())
            .map_err(|e| format!("socket write: {e}"))?;
        self.line()
    }

    fn line(&mut self) -> Result<String, String> {
        let mut s = String::new();
        match self.r.read_line(&mut s) {
            Ok(0) => Err("socket closed".into()),
            Ok(_) => Ok(s.trim_end().to_string()),
            Err(e) => Err(format!("socket read: {e}")),
        }
    }

    /// The daemon's `status` as a map (`key value` lines; `event` lines left out).
    pub fn status(&mut self) -> Result<HashMap<String, String>, String> {
        let first = self.request("EN1 status\n")?;
        if first != "OK" {
            return Err(format!("status: {first}"));
        }
        let mut m = HashMap::new();
        loop {
            let l = self.line()?;
            if l.is_empty() {
                return Ok(m);
            }
            if let Some((k, v)) = l.split_once(' ') {
                if k != "event" {
                    m.insert(k.to_string(), v.to_string());
                }
            }
        }
    }
}

/// `event-notify run` as a child process in its own scratch folder.
pub struct DaemonProc {
    child: Child,
    pub socket: PathBuf,
    pub dir: Scratch,
}

impl DaemonProc {
    /// Starts the daemon and waits until its socket answers `ping`; also returns how long that took
    /// from just before the spawn.
    pub fn start(bin: &Path, config_json: &str) -> Result<(DaemonProc, Duration), String> {
        Self::start_with(bin, config_json, None)
    }

    /// As [`DaemonProc::start`], in new mount and PID namespaces (`unshare`, root only): `hosts`
    /// is bind-mounted over /etc/hosts inside them only (the machine's own file is never
    /// touched), and the daemon is PID 1 there, so the namespace's last PID counts the threads it
    /// starts ([`DaemonProc::ns_last_pid`]).
    pub fn start_ns(
        bin: &Path,
        config_json: &str,
        hosts: &str,
    ) -> Result<(DaemonProc, Duration), String> {
        Self::start_with(bin, config_json, Some(hosts))
    }

    fn start_with(
        bin: &Path,
        config_json: &str,
        hosts: Option<&str>,
    ) -> Result<(DaemonProc, Duration), String> {
        let dir = Scratch::new("daemon")?;
        let config = dir.write("config.json", config_json)?;
        let socket = dir.join("s.sock");
        let log = std::fs::File::create(dir.join("daemon.log")).map_err(|e| e.to_string())?;
        let mut cmd = match hosts {
            None => Command::new(bin),
            Some(text) => {
                let hosts = dir.write("hosts", text)?;
                let mut c = Command::new("unshare");
                c.args([
                    "--mount",
                    "--pid",
                    "--fork",
                    "--kill-child=SIGTERM",
                    "--mount-proc",
                    "sh",
                    "-c",
                    "mount --bind \"$0\" /etc/hosts && exec \"$@\"",
                ])
                .arg(hosts)
                .arg(bin);
                c
            }
        };
        let t0 = Instant::now();
        let child = cmd
            .arg("run")
            .arg("--config")
            .arg(&config)
            .arg("--socket")
            .arg(&socket)
            .env_remove("EVENT_NOTIFY_SOCKET")
            .env("EVENT_NOTIFY_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let mut d = DaemonProc { child, socket, dir };
        let deadline = t0 + Duration::from_secs(10);
        loop {
            if let Ok(mut c) = SockClient::connect(&d.socket) {
                if c.request("EN1 ping\n").as_deref() == Ok("OK pong") {
                    return Ok((d, t0.elapsed()));
                }
            }
            if let Ok(Some(st)) = d.child.try_wait() {
                return Err(format!(
                    "daemon exited ({st}) before ready; log:\n{}",
                    d.log()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!("daemon not ready within 10 s; log:\n{}", d.log()));
            }
            thread::sleep(Duration::from_micros(100));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// For a daemon from [`DaemonProc::start_ns`]: the last PID handed out in its PID namespace,
    /// read by a `cat` that `nsenter` starts there (which takes that PID itself: two readings
    /// around an interval differ by the tasks started in it plus one).
    pub fn ns_last_pid(&self) -> Result<u64, String> {
        let kids = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", self.child.id()))
            .map_err(|e| format!("children of unshare: {e}"))?;
        let daemon = kids
            .split_whitespace()
            .next()
            .ok_or("unshare has no child")?
            .to_string();
        let out = Command::new("nsenter")
            .args([
                "-t",
                &daemon,
                "-p",
                "-m",
                "cat",
                "/proc/sys/kernel/ns_last_pid",
            ])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("nsenter: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "nsenter: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|e| format!("ns_last_pid: {e}"))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default()
    }

    pub fn client(&self) -> Result<SockClient, String> {
        SockClient::connect(&self.socket)
    }

    /// A `Vm*` figure of /proc/PID/status, in KiB.
    pub fn vm_kib(&self, key: &str) -> Option<u64> {
        proc_status_kib(self.pid(), key)
    }

    /// Context switches of all the daemon's threads: (voluntary, involuntary).
    pub fn ctx_switches(&self) -> Result<(u64, u64), String> {
        ctx_switches(self.pid())
    }

    /// Waits until the outbox is empty and nothing is in flight; the final status.
    pub fn drained(&self, timeout: Duration) -> Result<HashMap<String, String>, String> {
        let mut c = self.client()?;
        let deadline = Instant::now() + timeout;
        loop {
            let s = c.status()?;
            let idle = s.get("pending").map(String::as_str) == Some("0")
                && s.get("in_flight").map(String::as_str) == Some("0");
            if idle {
                return Ok(s);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "outbox not drained within {timeout:?}: pending {:?}",
                    s.get("pending")
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stop(mut self) {
        stop_child(&mut self.child);
    }
}

impl Drop for DaemonProc {
    fn drop(&mut self) {
        stop_child(&mut self.child);
    }
}

pub fn proc_status_kib(pid: u32, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines().find_map(|l| {
        let v = l.strip_prefix(key)?.strip_prefix(':')?;
        v.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

pub fn ctx_switches(pid: u32) -> Result<(u64, u64), String> {
    let dir = format!("/proc/{pid}/task");
    let mut vol = 0;
    let mut invol = 0;
    for t in std::fs::read_dir(&dir).map_err(|e| format!("{dir}: {e}"))? {
        let t = t.map_err(|e| e.to_string())?;
        let text = std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
        for l in text.lines() {
            let num = |p: &str| l.strip_prefix(p).and_then(|v| v.trim().parse::<u64>().ok());
            if let Some(n) = num("voluntary_ctxt_switches:") {
                vol += n;
            }
            if let Some(n) = num("nonvoluntary_ctxt_switches:") {
                invol += n;
            }
        }
    }
    Ok((vol, invol))
}

/// The peers: what a firmware team would write instead — a hook the firmware runs per event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    Curl,
    Wget,
}

impl Peer {
    pub const ALL: [Peer; 2] = [Peer::Curl, Peer::Wget];

    pub fn name(self) -> &'static str {
        match self {
            Peer::Curl => "curl hook",
            Peer::Wget => "busybox wget hook",
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Peer::Curl => "curl",
            Peer::Wget => "wget",
        }
    }

    /// The tool it needs, if it is missing.
    pub fn missing(self) -> Option<&'static str> {
        let tool = match self {
            Peer::Curl => "curl",
            Peer::Wget => "busybox",
        };
        let found = std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()));
        (!found).then_some(tool)
    }

    /// The hook script: the firmware runs `sh hook.sh EVENT CALL_ID REMOTE NAME IP TIMESTAMP`
    /// (values already URL-safe) for each event, and the script sends the request.
    pub fn script(self, port: u16) -> String {
        let url = format!("http://127.0.0.1:{port}/in?n=$2&ev=$1&from=$3&name=$4&ip=$5&t=$6");
        let cmd = match self {
            Peer::Curl => format!("exec curl -s -o /dev/null --max-time 3 \"{url}\""),
            // No `-T 3`: Debian 12's busybox 1.35 wget segfaults with it (it arms an alarm
            // whose handler crashes); the hook runs without a timeout.
            Peer::Wget => format!("exec busybox wget -q -O /dev/null \"{url}\""),
        };
        format!("#!/bin/sh\n# per-event hook, the way a firmware team writes it\n{cmd}\n")
    }
}

/// nginx serving `200 ok` on a loopback port, as a reference receiver.
pub struct Nginx {
    child: Child,
    pub port: u16,
    _dir: Scratch,
}

impl Nginx {
    pub fn start() -> Result<Nginx, String> {
        let bin = ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .find(|p| Path::new(p).is_file())
            .ok_or("nginx not installed (apt-get install nginx-light)")?;
        let dir = Scratch::new("nginx")?;
        let port = crate::recv::free_port()?;
        let d = dir.0.display();
        let conf = format!(
            "daemon off; master_process off; worker_processes 1; pid {d}/nginx.pid;\n\
             error_log {d}/error.log;\n\
             events {{ worker_connections 64; }}\n\
             http {{ access_log off; keepalive_requests 1000000; keepalive_timeout 120s;\n\
               client_body_temp_path {d}/b; proxy_temp_path {d}/p; fastcgi_temp_path {d}/f;\n\
               uwsgi_temp_path {d}/u; scgi_temp_path {d}/s;\n\
               server {{ listen 127.0.0.1:{port}; location / {{ return 200 \"ok\"; }} }} }}\n"
        );
        let conf = dir.write("nginx.conf", &conf)?;
        let child = Command::new(bin)
            .arg("-p")
            .arg(&dir.0)
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("nginx: {e}"))?;
        let n = Nginx {
            child,
            port,
            _dir: dir,
        };
        let addr = ([127, 0, 0, 1], port).into();
        if !crate::recv::wait_listening(addr, Duration::from_secs(5)) {
            return Err("nginx did not start listening".into());
        }
        Ok(n)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        stop_child(&mut self.child);
    }
}

/// `event-notify listen` on a loopback port, its output thrown away.
pub struct Listen {
    child: Child,
    pub port: u16,
}

impl Listen {
    pub fn start(bin: &Path) -> Result<Listen, String> {
        let port = crate::recv::free_port()?;
        let child = Command::new(bin)
            .arg("listen")
            .arg("--bind")
            .arg(format!("127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("listen: {e}"))?;
        let l = Listen { child, port };
        if !crate::recv::wait_listening(([127, 0, 0, 1], port).into(), Duration::from_secs(5)) {
            return Err("event-notify listen did not start listening".into());
        }
        Ok(l)
    }
}

impl Drop for Listen {
    fn drop(&mut self) {
        stop_child(&mut self.child);
    }
}

/// `bench --maxrss PROG ARGS..`: runs PROG, waits, and prints the peak RSS (KiB) of the largest
/// process in its tree that was waited for (getrusage RUSAGE_CHILDREN), then exits with its code.
pub fn maxrss_main(args: &[String]) -> ! {
    use nix::sys::resource::{getrusage, UsageWho};
    let Some((prog, rest)) = args.split_first() else {
        eprintln!("--maxrss needs a program");
        std::process::exit(2)
    };
    let st = Command::new(prog)
        .args(rest)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status();
    let code = match st {
        Ok(s) => s.code().unwrap_or(1),
        Err(e) => {
            eprintln!("{prog}: {e}");
            127
        }
    };
    let kib = getrusage(UsageWho::RUSAGE_CHILDREN)
        .map(|u| u.max_rss())
        .unwrap_or(0);
    println!("maxrss_kb {kib}");
    std::process::exit(code)
}

/// Peak RSS (KiB) of running `prog args` once, through `bench --maxrss`.
pub fn peak_rss_of(prog: &str, args: &[String]) -> Result<u64, String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = Command::new(me)
        .arg("--maxrss")
        .arg(prog)
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("{prog} failed ({})", out.status));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("maxrss_kb "))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| "no maxrss line".to_string())
}

/// CPU time (ns, from schedstat) of the threads of `pid` whose name `keep` accepts.
pub fn cpu_ns(pid: u32, keep: impl Fn(&str) -> bool) -> Result<u64, String> {
    let dir = format!("/proc/{pid}/task");
    let mut ns = 0;
    for t in std::fs::read_dir(&dir).map_err(|e| format!("{dir}: {e}"))? {
        let t = t.map_err(|e| e.to_string())?.path();
        let comm = std::fs::read_to_string(t.join("comm")).unwrap_or_default();
        if !keep(comm.trim()) {
            continue;
        }
        let s =
            std::fs::read_to_string(t.join("schedstat")).map_err(|e| format!("schedstat: {e}"))?;
        ns += s
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or("schedstat: unexpected format")?;
    }
    Ok(ns)
}

/// CPU time (ns) of this process's waited-for children so far (user + system).
pub fn children_cpu_ns() -> u64 {
    use nix::sys::resource::{getrusage, UsageWho};
    getrusage(UsageWho::RUSAGE_CHILDREN)
        .map(|u| {
            let t = |tv: nix::sys::time::TimeVal| {
                tv.tv_sec() as u64 * 1_000_000_000 + tv.tv_usec() as u64 * 1_000
            };
            t(u.user_time()) + t(u.system_time())
        })
        .unwrap_or(0)
}

/// The load average over the last minute.
pub fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(f64::NAN)
}

/// Samples `VmRSS` and `RssAnon` of a process every few milliseconds until dropped; the peaks.
pub struct MemSampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    t: Option<thread::JoinHandle<(u64, u64)>>,
}

impl MemSampler {
    pub fn start(pid: u32) -> MemSampler {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let s2 = std::sync::Arc::clone(&stop);
        let t = thread::spawn(move || {
            let (mut rss, mut anon) = (0, 0);
            while !s2.load(Ordering::Relaxed) {
                rss = rss.max(proc_status_kib(pid, "VmRSS").unwrap_or(0));
                anon = anon.max(proc_status_kib(pid, "RssAnon").unwrap_or(0));
                thread::sleep(Duration::from_millis(2));
            }
            (rss, anon)
        });
        MemSampler { stop, t: Some(t) }
    }

    /// (peak VmRSS, peak RssAnon) seen, KiB.
    pub fn finish(mut self) -> (u64, u64) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.t.take().and_then(|t| t.join().ok()).unwrap_or((0, 0))
    }
}
