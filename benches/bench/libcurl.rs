//! The strongest peer: `bench/curl_peer.c`, what a firmware team would write with libcurl (one
//! easy handle reused for every event, keep-alive, in-process, no fork). Compiled here at run time
//! with the system gcc into `target/bench-peer/`, then driven over a pipe: one event per line on
//! its stdin, one acknowledgement line per event on its stdout.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

const SOURCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/curl_peer.c");

/// What the peer needs and is not installed (then its figures are n/a, not an error: the bench
/// runs where gcc or libcurl's headers are missing).
pub fn missing() -> Option<String> {
    let gcc = Command::new("gcc")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !gcc {
        return Some("gcc not installed".into());
    }
    (!has_header())
        .then(|| "libcurl headers not installed (apt-get install libcurl4-openssl-dev)".into())
}

/// Compiles the peer once per bench process; its path, or why it could not be built (a broken
/// path: the bench fails).
pub fn build() -> Result<PathBuf, String> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT.get_or_init(compile).clone()
}

fn has_header() -> bool {
    let pc = Command::new("pkg-config")
        .args(["--exists", "libcurl"])
        .status()
        .is_ok_and(|s| s.success());
    pc || Path::new("/usr/include/curl/curl.h").is_file()
        || std::fs::read_dir("/usr/include")
            .is_ok_and(|d| d.flatten().any(|e| e.path().join("curl/curl.h").is_file()))
}

fn compile() -> Result<PathBuf, String> {
    let dir = crate::sizes::target_dir().join("bench-peer");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let out = dir.join("curl_peer");
    // Built under a name of this process, then renamed: two benches at once (make bench beside
    // make bench-smoke) never write over a peer the other is running.
    let tmp = dir.join(format!("curl_peer.{}", std::process::id()));
    let flags = Command::new("pkg-config")
        .args(["--cflags", "--libs", "libcurl"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "-lcurl".into());
    let res = Command::new("gcc")
        .args(["-O2", "-Wall", "-o"])
        .arg(&tmp)
        .arg(SOURCE)
        .args(flags.split_whitespace())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("gcc: {e}"))?;
    if !res.status.success() {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!(
            "gcc {SOURCE} failed: {}",
            String::from_utf8_lossy(&res.stderr).trim()
        ));
    }
    std::fs::rename(&tmp, &out).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(out)
}

#[derive(Default)]
struct Acks {
    ready: bool,
    ok: usize,
    errors: Vec<String>,
    closed: bool,
}

/// A running peer process.
pub struct CurlPeer {
    child: Child,
    stdin: Option<ChildStdin>,
    acks: Arc<(Mutex<Acks>, Condvar)>,
}

impl CurlPeer {
    /// `base` is `http://127.0.0.1:PORT/in` or `https://...` (then `ca` is its CAINFO).
    pub fn start(bin: &Path, base: &str, ca: Option<&Path>) -> Result<CurlPeer, String> {
        let mut cmd = Command::new(bin);
        cmd.arg(base).arg("127.0.0.1");
        if let Some(ca) = ca {
            cmd.arg(ca);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("{}: {e}", bin.display()))?;
        let stdin = child.stdin.take();
        let out = child.stdout.take().ok_or("no stdout of the libcurl peer")?;
        let acks = Arc::new((Mutex::new(Acks::default()), Condvar::new()));
        let a2 = Arc::clone(&acks);
        std::thread::Builder::new()
            .name("libcurl-acks".into())
            .spawn(move || {
                let mut lines = BufReader::new(out).lines();
                loop {
                    let l = lines.next();
                    let Ok(mut g) = a2.0.lock() else { return };
                    match l {
                        Some(Ok(l)) if l == "ok" => g.ok += 1,
                        Some(Ok(l)) if l == "ready" => g.ready = true,
                        Some(Ok(l)) => g.errors.push(l),
                        _ => {
                            g.closed = true;
                            a2.1.notify_all();
                            return;
                        }
                    }
                    a2.1.notify_all();
                }
            })
            .map_err(|e| e.to_string())?;
        Ok(CurlPeer { child, stdin, acks })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Hands the peer event `id` (the same values as the daemon gets).
    pub fn send(&mut self, id: usize) -> Result<(), String> {
        let line = format!("{id}\tincoming_call\t1002\t{}\n", crate::DISPLAY);
        self.stdin
            .as_mut()
            .ok_or("stdin closed")?
            .write_all(line.as_bytes())
            .map_err(|e| format!("libcurl peer stdin: {e}"))
    }

    /// Waits until the peer has made its handle (its "ready" line).
    pub fn wait_ready(&self, timeout: Duration) -> Result<(), String> {
        self.wait_until(timeout, |a| a.ready, "not ready")
    }

    /// Waits until `k` events are acknowledged; an error if one failed or the peer exited.
    pub fn wait_acks(&self, k: usize, timeout: Duration) -> Result<(), String> {
        self.wait_until(timeout, |a| a.ok >= k, &format!("{k} not acknowledged"))
    }

    fn wait_until(
        &self,
        timeout: Duration,
        done: impl Fn(&Acks) -> bool,
        what: &str,
    ) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let (m, cv) = &*self.acks;
        let mut g = m.lock().map_err(|_| "ack lock")?;
        loop {
            if let Some(e) = g.errors.first() {
                return Err(format!("libcurl peer: {e}"));
            }
            if done(&g) {
                return Ok(());
            }
            if g.closed {
                return Err(format!("libcurl peer exited after {} events", g.ok));
            }
            let left = deadline
                .checked_duration_since(Instant::now())
                .ok_or_else(|| {
                    format!(
                        "libcurl peer: {what} within {timeout:?} ({} acknowledged)",
                        g.ok
                    )
                })?;
            g = cv.wait_timeout(g, left).map_err(|_| "ack lock")?.0;
        }
    }

    /// user + system CPU time of the process (all its threads, also ended ones), ns.
    pub fn cpu_ns(&self) -> Result<u64, String> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))
            .map_err(|e| format!("/proc/PID/stat: {e}"))?;
        // Fields after the `(comm)`: state is field 3, utime 14, stime 15.
        let rest = stat.rsplit_once(')').map(|x| x.1).ok_or("stat format")?;
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| f.get(i - 3).and_then(|v| v.parse::<u64>().ok());
        let t = ticks(14).zip(ticks(15)).ok_or("stat format")?;
        Ok((t.0 + t.1) * (1_000_000_000 / clk_tck()))
    }

    /// Peak RSS (VmHWM) so far, KiB.
    pub fn hwm_kib(&self) -> Option<u64> {
        crate::procs::proc_status_kib(self.pid(), "VmHWM")
    }

    /// Closes stdin; the peer exits on EOF.
    pub fn finish(mut self) -> Result<(), String> {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                return if st.success() {
                    Ok(())
                } else {
                    Err(format!("libcurl peer exited {st}"))
                };
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Err("libcurl peer did not exit on EOF".into())
    }
}

impl Drop for CurlPeer {
    fn drop(&mut self) {
        drop(self.stdin.take());
        crate::procs::stop_child(&mut self.child);
    }
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux).
fn clk_tck() -> u64 {
    static T: OnceLock<u64> = OnceLock::new();
    *T.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .filter(|&t: &u64| t > 0 && t <= 1_000_000_000)
            .unwrap_or(100)
    })
}

// ---------------------------------------------------------------------------------------------
// The measurements (rows `*.libcurl*`; docs/PERFORMANCE.md "The libcurl peer").

use crate::recv::Receiver;
use crate::tls::BenchCa;
use crate::{paced, push_lat, wait, Plan, Runs, PATIENCE, WARM};

fn start_for(rx: &Receiver, ca: Option<&BenchCa>) -> Result<CurlPeer, String> {
    let bin = build()?;
    let scheme = if ca.is_some() { "https" } else { "http" };
    let base = format!("{scheme}://127.0.0.1:{}/in", rx.port());
    let peer = CurlPeer::start(&bin, &base, ca.map(BenchCa::ca_file))?;
    peer.wait_ready(PATIENCE)?;
    Ok(peer)
}

/// The libcurl peer against the bench's receiver (HTTPS with `ca`): first request of a fresh
/// process (handshake included), latency one event at a time after warm-up, a paced burst
/// (throughput, CPU, peak RSS, connections). Keys `{first,latency,throughput,cpu,rss}.{key}`.
pub(crate) fn bench_libcurl(
    p: &Plan,
    r: &mut Runs,
    key: &str,
    ca: Option<&BenchCa>,
) -> Result<(), String> {
    let n = p.peer_lat_n;
    let rx = match ca {
        None => Receiver::start(n + WARM + 1)?,
        Some(ca) => Receiver::start_tls(n + WARM + 1, std::sync::Arc::clone(&ca.server))?,
    };
    let mut peer = start_for(&rx, ca)?;
    // The first request: connection (and handshake) included.
    let first = n + WARM;
    let t0 = Instant::now();
    peer.send(first)?;
    let t1 = wait(&rx, first, "libcurl first request")?;
    r.push(
        &format!("first.{key}"),
        t1.duration_since(t0).as_nanos() as f64 / 1e3,
    );
    peer.wait_acks(1, PATIENCE)?;
    for i in 0..WARM {
        peer.send(n + i)?;
        wait(&rx, n + i, "libcurl warm-up")?;
        peer.wait_acks(2 + i, PATIENCE)?;
    }
    let mut lat = Vec::with_capacity(n);
    let mut blocked = Vec::with_capacity(n);
    let mut split = crate::Split::default();
    for i in 0..n {
        let t0 = Instant::now();
        peer.send(i)?;
        let t1 = wait(&rx, i, "libcurl peer")?;
        lat.push(t1.duration_since(t0).as_nanos() as u64);
        split.add(&rx, i, t0, t1);
        // Its acknowledgement: curl_easy_perform has returned (the response read).
        peer.wait_acks(1 + WARM + i + 1, PATIENCE)?;
        blocked.push(t0.elapsed().as_nanos() as u64);
    }
    push_lat(r, &format!("latency.{key}"), lat);
    push_lat(r, &format!("handover.{key}"), blocked);
    split.push(r, &format!("latency.{key}"));
    peer.finish()?;

    // The burst: a fresh receiver, the same pacing as the daemon's burst (at most `window`
    // events written and not yet arrived); the peer takes them one after the other.
    let rx = match ca {
        None => Receiver::start(p.burst_n)?,
        Some(ca) => Receiver::start_tls(p.burst_n, std::sync::Arc::clone(&ca.server))?,
    };
    let mut peer = start_for(&rx, ca)?;
    let cpu0 = peer.cpu_ns()?;
    let rate = paced(p, &rx, |i| peer.send(i))?;
    peer.wait_acks(p.burst_n, PATIENCE)?;
    let cpu1 = peer.cpu_ns()?;
    r.push(
        &format!("cpu.{key}"),
        cpu1.saturating_sub(cpu0) as f64 / p.burst_n as f64 / 1e3,
    );
    r.push(&format!("throughput.{key}"), rate);
    r.push(
        &format!("throughput.{key}.connections"),
        rx.connections() as f64,
    );
    let hwm = peer.hwm_kib().ok_or("no VmHWM of the libcurl peer")?;
    r.push(&format!("rss.{key}"), hwm as f64);
    peer.finish()
}
