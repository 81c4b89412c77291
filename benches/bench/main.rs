//! `make bench`: event-notify beside what a firmware team would write instead, in one run.
//!
//! ```text
//! cargo bench --bench bench                 # the full bench (release build), ~5-8 minutes
//! cargo bench --bench bench -- --runs 5     # more runs (each figure is the median of the runs)
//! cargo test  --bench bench -- --smoke      # every path once with tiny counts (make test)
//! cargo test  --bench bench -- --alloc-trace   # backtraces of allocations on the event path
//! ```
//! Options: `--smoke`, `--runs N` (or `$BENCH_RUNS`), `--no-sizes` (skip the cross builds),
//! `--peer-burst N` (events in the peers' throughput run), `--json PATH`.
//! It prints one table and writes it as JSON (target/bench.json, or target/bench-smoke.json).
//! Exit 1 when one of the measuring paths is broken; never because of a figure.

mod alloc;
mod build_report;
mod https;
mod libcurl;
mod procs;
mod recv;
mod report;
mod report15;
mod sizes;
mod tls;

#[global_allocator]
static ALLOC: alloc::Counting = alloc::Counting;

use build_report::build_report;
use event_notify::core::config::Board;
use event_notify::daemon::{self, Options};
use event_notify::{Event, Kind, Msg, Var};
use procs::{DaemonProc, Peer, Scratch, SockClient};
use recv::Receiver;
use report::{Better, Goal, Report, Row, Unit, Val};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const BUILT_BIN: &str = env!("CARGO_BIN_EXE_event-notify");

/// The daemon the full bench measures, when it built one ([`sizes::build_pc`]).
static PC_BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// The binary under test: `$BENCH_BIN` (e.g. an unstripped copy to profile); else, in a full run,
/// the PC build as users make it (`cargo build --release`, [`sizes::build_pc`]); else (smoke,
/// or that build failed) the one cargo built for the bench (panics unwinding).
fn bin() -> PathBuf {
    std::env::var_os("BENCH_BIN")
        .map(PathBuf::from)
        .or_else(|| PC_BIN.get().cloned())
        .unwrap_or_else(|| PathBuf::from(BUILT_BIN))
}
const PATIENCE: Duration = Duration::from_secs(10);
const DISPLAY: &str = "Bob & Alice";
const DISPLAY_ENC: &str = "Bob%20%26%20Alice";

/// How much of everything.
#[derive(Clone, Debug)]
struct Plan {
    smoke: bool,
    runs: usize,
    /// Events per latency path.
    lat_n: usize,
    peer_lat_n: usize,
    /// Events in the throughput burst.
    burst_n: usize,
    peer_burst_n: usize,
    /// Most notifications outstanding while pacing a burst (the outbox holds 128).
    window: usize,
    rss_small: usize,
    rss_big: usize,
    idle: Duration,
    starts: usize,
    recv_n: usize,
    alloc_cycles: usize,
    sizes_build: bool,
    alloc_trace: bool,
    json: PathBuf,
    /// Only these steps (`--only a,b`): receivers latency hostname throughput peers https libcurl
    /// rss idle startup sizes alloc.
    only: Option<Vec<String>>,
}

impl Plan {
    fn from_args() -> Result<Plan, String> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let target = sizes::target_dir();
        let mut p = if args.iter().any(|a| a == "--smoke") {
            Plan::smoke(&target)
        } else {
            Plan::full(&target)
        };
        if let Some(n) = std::env::var("BENCH_RUNS")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            p.runs = n;
        }
        p.apply_args(&args)?;
        Ok(p)
    }

    /// `--smoke`: tiny counts, to see that every step runs.
    fn smoke(target: &std::path::Path) -> Plan {
        Plan {
            smoke: true,
            runs: 1,
            lat_n: 5,
            peer_lat_n: 3,
            burst_n: 60,
            peer_burst_n: 5,
            window: 20,
            rss_small: 20,
            rss_big: 300,
            idle: Duration::from_millis(500),
            starts: 2,
            recv_n: 50,
            alloc_cycles: 5,
            sizes_build: false,
            alloc_trace: false,
            json: target.join("bench-smoke.json"),
            only: None,
        }
    }

    /// The real measurement.
    fn full(target: &std::path::Path) -> Plan {
        Plan {
            smoke: false,
            runs: 3,
            lat_n: 1_000,
            peer_lat_n: 1_000,
            burst_n: 10_000,
            peer_burst_n: 10_000,
            window: 100,
            rss_small: 1_000,
            rss_big: 100_000,
            idle: Duration::from_secs(10),
            starts: 10,
            recv_n: 10_000,
            alloc_cycles: 1_000,
            sizes_build: true,
            alloc_trace: false,
            json: target.join("bench.json"),
            only: None,
        }
    }

    /// The options that change a plan (see usage.txt).
    fn apply_args(&mut self, args: &[String]) -> Result<(), String> {
        let p = self;
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut num = |name: &str| -> Result<usize, String> {
                it.next()
                    .and_then(|v| v.parse().ok())
                    .filter(|&n| n > 0)
                    .ok_or(format!("{name} needs a positive number"))
            };
            match a.as_str() {
                "--smoke" | "--bench" => {}
                "--runs" => p.runs = num("--runs")?,
                "--peer-burst" => p.peer_burst_n = num("--peer-burst")?,
                "--no-sizes" => p.sizes_build = false,
                "--alloc-trace" => p.alloc_trace = true,
                "--only" => {
                    let v = it.next().ok_or("--only needs a list")?;
                    p.only = Some(v.split(',').map(str::to_string).collect());
                }
                "--lat" => p.lat_n = num("--lat")?,
                "--burst" => p.burst_n = num("--burst")?,
                "--json" => {
                    p.json = it.next().map(PathBuf::from).ok_or("--json needs a path")?;
                }
                "-h" | "--help" => {
                    println!("{}", include_str!("usage.txt"));
                    std::process::exit(0);
                }
                other if other.starts_with("--") => return Err(format!("unknown option {other}")),
                _ => {} // a libtest-style filter: ignored
            }
        }
        Ok(())
    }

    fn on(&self, step: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|s| s == step))
    }
}

/// Figures of all runs, by key; each run pushes one value.
#[derive(Default)]
struct Runs {
    v: BTreeMap<String, Vec<f64>>,
    /// Why a figure could not be measured (kept from the first failure).
    na: BTreeMap<String, String>,
    /// Broken paths: the bench exits 1.
    errors: Vec<String>,
    notes: BTreeMap<String, String>,
}

impl Runs {
    fn push(&mut self, key: &str, x: f64) {
        self.v.entry(key.to_string()).or_default().push(x);
    }

    fn val(&self, key: &str) -> Val {
        match self.v.get(key) {
            Some(v) if !v.is_empty() => Val::Runs(v.clone()),
            _ => Val::Na(
                self.na
                    .get(key)
                    .cloned()
                    .unwrap_or_else(|| "not measured".into()),
            ),
        }
    }

    /// A broken path: recorded as an error and as the reason for the figures under `prefix`.
    fn fail(&mut self, prefix: &str, what: String) {
        eprintln!("bench: {prefix}: {what}");
        self.na
            .entry(prefix.to_string())
            .or_insert_with(|| what.clone());
        self.errors.push(format!("{prefix}: {what}"));
    }

    /// Not measurable here (a tool is missing): not an error.
    fn skip(&mut self, prefix: &str, why: String) {
        self.na.entry(prefix.to_string()).or_insert(why);
    }

    fn note(&mut self, key: &str, text: String) {
        self.notes.insert(key.to_string(), text);
    }
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64
}

/// Pushes p50, p99 and max (µs) of latencies given in ns.
fn push_lat(r: &mut Runs, key: &str, mut ns: Vec<u64>) {
    ns.sort_unstable();
    r.push(&format!("{key}.p50"), pct(&ns, 50.0) / 1e3);
    r.push(&format!("{key}.p99"), pct(&ns, 99.0) / 1e3);
    r.push(&format!("{key}.max"), pct(&ns, 100.0) / 1e3);
}

/// The bench's destination URL on `host` (an IP literal or a name) and `port`.
fn url_for(host: &str, port: u16) -> String {
    format!("{host}:{port}/in?n=$call_id&ev=$event&from=$remote&name=$display_remote&ip=$phone_ip&t=$timestamp")
}

fn config_for(port: u16) -> String {
    format!(
        r#"{{"events": {{"incoming_call": "{}"}},
           "device": {{"interface": "lo"}}}}"#,
        url_for("127.0.0.1", port)
    )
}

fn line_for(id: usize) -> String {
    line_of("incoming_call", id)
}

/// A socket line for `event` with request number `id`.
fn line_of(event: &str, id: usize) -> String {
    let id = id.to_string();
    event_notify::client::request_line(
        event,
        [
            ("call_id", id.as_str()),
            ("remote", "1002"),
            ("display_remote", DISPLAY),
        ],
    )
}

fn msg_for(id: usize) -> Msg {
    Msg::new(Kind::Direct(Event::IncomingCall))
        .with(Var::CallId, &id.to_string())
        .with(Var::Remote, "1002")
        .with(Var::DisplayRemote, DISPLAY)
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn socket_send(c: &mut SockClient, line: &str) -> Result<(), String> {
    let reply = c.request(line)?;
    if reply.starts_with("OK") {
        Ok(())
    } else {
        Err(format!("daemon refused the event: {reply}"))
    }
}

/// A latency split where the request reached the receiver's socket (the kernel's receive time,
/// [`Receiver::arrived_kernel`]): before it, the daemon's path; after it, the receiver's thread
/// waking up to read it (on 2 CPUs, often a vCPU woken out of `hlt`: the bench's, not the
/// daemon's). Keys `{key}.kernel.*` and `{key}.wake.*`; none where the kernel's times are
/// missing (HTTPS).
#[derive(Default)]
pub(crate) struct Split {
    kernel: Vec<u64>,
    wake: Vec<u64>,
    /// Samples left out: a kernel time outside [t0, t1] (a stale or missing stamp).
    out_of_order: usize,
}

impl Split {
    /// Event `id`, handed over at `t0`, stamped by the receiver's thread at `t1`.
    pub(crate) fn add(&mut self, rx: &Receiver, id: usize, t0: Instant, t1: Instant) {
        if let Some(k) = rx.arrived_kernel(id) {
            if k < t0 || k > t1 {
                self.out_of_order += 1;
                return;
            }
            self.kernel.push(k.duration_since(t0).as_nanos() as u64);
            self.wake.push(t1.duration_since(k).as_nanos() as u64);
        }
    }

    pub(crate) fn push(self, r: &mut Runs, key: &str) {
        if self.out_of_order > 0 {
            r.note(
                &format!("{key}.kernel"),
                format!(
                    "{} sample(s) left out: the kernel's receive time was outside the event's \
                     hand-over and the receiver's stamp",
                    self.out_of_order
                ),
            );
        }
        if !self.kernel.is_empty() {
            push_lat(r, &format!("{key}.kernel"), self.kernel);
            push_lat(r, &format!("{key}.wake"), self.wake);
        }
    }
}

fn wait(r: &Receiver, id: usize, what: &str) -> Result<Instant, String> {
    r.wait_for(id, PATIENCE)
        .ok_or_else(|| format!("{what}: event {id} did not reach the receiver within {PATIENCE:?}"))
}

// ---------------------------------------------------------------------------------------------
// 0. The receivers alone.

fn bench_receivers(p: &Plan, r: &mut Runs) {
    match Receiver::start(p.recv_n).and_then(|rx| recv::hammer(rx.addr(), p.recv_n)) {
        Ok(h) => {
            let mut rtt = h.rtts;
            rtt.sort_unstable();
            r.push("receiver.bench.rps", h.per_s);
            r.push("receiver.bench.p50", pct(&rtt, 50.0) / 1e3);
        }
        Err(e) => r.fail("receiver.bench", e),
    }
    match procs::Nginx::start() {
        Ok(n) => match recv::hammer(([127, 0, 0, 1], n.port).into(), p.recv_n) {
            Ok(h) => {
                let mut rtt = h.rtts;
                rtt.sort_unstable();
                r.push("receiver.nginx.rps", h.per_s);
                r.push("receiver.nginx.p50", pct(&rtt, 50.0) / 1e3);
            }
            Err(e) => r.fail("receiver.nginx", e),
        },
        Err(e) => r.skip("receiver.nginx", e),
    }
    match procs::Listen::start(&bin())
        .and_then(|l| recv::hammer(([127, 0, 0, 1], l.port).into(), p.recv_n))
    {
        Ok(h) => {
            let mut rtt = h.rtts;
            rtt.sort_unstable();
            r.push("receiver.listen.rps", h.per_s);
            r.push("receiver.listen.p50", pct(&rtt, 50.0) / 1e3);
        }
        Err(e) => r.fail("receiver.listen", e),
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Latency.

const WARM: usize = 5;

/// emit (a process per event) and a persistent socket client, against one daemon process.
fn bench_latency_daemon(p: &Plan, r: &mut Runs) -> Result<(), String> {
    let n = p.lat_n;
    let rx = Receiver::start(2 * n + WARM)?;
    let (d, _) = DaemonProc::start(&bin(), &config_for(rx.port()))?;
    let mut c = d.client()?;
    // Warm-up: the keep-alive connection is open, as it is on a running phone.
    for i in 0..WARM {
        socket_send(&mut c, &line_for(2 * n + i))?;
        wait(&rx, 2 * n + i, "warm-up")?;
    }
    let sock = d.socket.display().to_string();
    let mut emit = Vec::with_capacity(n);
    for i in 0..n {
        let args = [
            "emit".to_string(),
            "incoming_call".into(),
            format!("call_id={i}"),
            "remote=1002".into(),
            format!("display_remote={DISPLAY}"),
            "--socket".into(),
            sock.clone(),
        ];
        let t0 = Instant::now();
        let st = Command::new(bin())
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .map_err(|e| format!("emit: {e}"))?;
        if !st.success() {
            return Err(format!("emit exited {st}"));
        }
        let t1 = wait(&rx, i, "emit")?;
        emit.push(t1.duration_since(t0).as_nanos() as u64);
    }
    push_lat(r, "latency.emit", emit);

    let mut sockl = Vec::with_capacity(n);
    let mut handover = Vec::with_capacity(n);
    let mut split = Split::default();
    for i in n..2 * n {
        let line = line_for(i);
        let t0 = Instant::now();
        socket_send(&mut c, &line)?;
        handover.push(t0.elapsed().as_nanos() as u64);
        let t1 = wait(&rx, i, "socket client")?;
        sockl.push(t1.duration_since(t0).as_nanos() as u64);
        split.add(&rx, i, t0, t1);
    }
    split.push(r, "latency.socket");
    push_lat(r, "latency.socket", sockl);
    push_lat(r, "handover.socket", handover);
    let st = d.drained(PATIENCE)?;
    r.note(
        "latency.daemon",
        format!(
            "daemon status after the latency runs: delivered {} dropped {} failed {}; {} connection(s)",
            st.get("delivered").map_or("?", |s| s),
            st.get("dropped").map_or("?", |s| s),
            st.get("failed").map_or("?", |s| s),
            rx.connections()
        ),
    );
    d.stop();
    Ok(())
}

/// The name the host-name rows use, resolved by a hosts file in the daemon's own mount
/// namespace (`DaemonProc::start_ns`).
const BENCH_HOST: &str = "crm.bench.test";

/// A destination given by name beside the same destination given by IP literal: one daemon
/// (under `unshare`, the hosts file bind-mounted over /etc/hosts there), one receiver;
/// `incoming_call` goes to `127.0.0.1:PORT`, `outgoing_call` to `crm.bench.test:PORT`, and the
/// two alternate event by event (which goes first swapped each time), so both see the same
/// daemon, receiver and moments of the machine's load. Rows `hostname.latency.*` (by name),
/// `hostname.latency.ip.*`, their ratios (goal: within 20 %), the same split at the receiver's
/// socket ([`Split`]), and the threads the daemon starts per notification (counted by its PID
/// namespace; goal 0). Root only (unshare).
fn bench_hostname(p: &Plan, r: &mut Runs) -> Result<(), String> {
    let n = p.lat_n;
    // Request numbers: by IP literal 0..n, by name n..2n, then the warm-up's.
    let rx = Receiver::start(2 * n + 2 * WARM)?;
    let config = format!(
        r#"{{"events": {{"incoming_call": "{}", "outgoing_call": "{}"}},
           "device": {{"interface": "lo"}}}}"#,
        url_for("127.0.0.1", rx.port()),
        url_for(BENCH_HOST, rx.port())
    );
    let hosts = format!("127.0.0.1 {BENCH_HOST}\n");
    let (d, _) = DaemonProc::start_ns(&bin(), &config, &hosts)?;
    let mut c = d.client()?;
    // [by IP literal, by name]: the event and the first request number.
    let sides = [("incoming_call", 0), ("outgoing_call", n)];
    for i in 0..WARM {
        for (j, (event, _)) in sides.iter().enumerate() {
            let id = 2 * n + j * WARM + i;
            socket_send(&mut c, &line_of(event, id))?;
            wait(&rx, id, "warm-up, by IP literal and by name")?;
        }
    }
    let before = d.ns_last_pid()?;
    let mut lat = [Vec::with_capacity(n), Vec::with_capacity(n)];
    let mut split = [Split::default(), Split::default()];
    for i in 0..n {
        let order = if i % 2 == 0 { [0, 1] } else { [1, 0] };
        for j in order {
            let (event, first) = sides[j];
            let line = line_of(event, first + i);
            let t0 = Instant::now();
            socket_send(&mut c, &line)?;
            let what = ["socket client, by IP literal", "socket client, by name"][j];
            let t1 = wait(&rx, first + i, what)?;
            lat[j].push(t1.duration_since(t0).as_nanos() as u64);
            split[j].add(&rx, first + i, t0, t1);
        }
    }
    let after = d.ns_last_pid()?;
    // One PID is the second reader itself.
    let started = after.saturating_sub(before).saturating_sub(1);
    r.push("hostname.threads", started as f64);
    // Per notification BY NAME (n of them): the by-IP ones can start no lookup, and counting them
    // would halve the figure (one thread in 1,000 by name must fail the goal).
    r.push("hostname.threads_per_event", started as f64 / n as f64);
    let [ip, name] = lat;
    for (k, q) in [("p50", 50.0), ("p99", 99.0)] {
        r.push(
            &format!("hostname.latency.ratio.{k}"),
            pct_of(&name, q) / pct_of(&ip, q),
        );
        if !split[0].kernel.is_empty() && !split[1].kernel.is_empty() {
            r.push(
                &format!("hostname.kernel.ratio.{k}"),
                pct_of(&split[1].kernel, q) / pct_of(&split[0].kernel, q),
            );
        }
    }
    push_lat(r, "hostname.latency", name);
    push_lat(r, "hostname.latency.ip", ip);
    let [ip, name] = split;
    name.push(r, "hostname.latency");
    ip.push(r, "hostname.latency.ip");
    r.push("hostname.connections", rx.connections() as f64);
    let st = d.drained(PATIENCE)?;
    if st.get("failed").is_some_and(|v| v != "0") {
        return Err(format!("daemon counted failed {:?}", st.get("failed")));
    }
    d.stop();
    Ok(())
}

/// Percentile `p` of unsorted latencies (ns).
fn pct_of(v: &[u64], p: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_unstable();
    pct(&s, p)
}

fn spawn_engine(port: u16) -> Result<(daemon::Handle, Scratch), String> {
    let dir = Scratch::new("lib")?;
    let config = dir.write("config.json", &config_for(port))?;
    let h = daemon::spawn(Options {
        config,
        socket: None,
        board: Board::default(),
        baresip: None,
        admin: None,
    })
    .map_err(|e| format!("daemon::spawn: {e}"))?;
    Ok((h, dir))
}

fn status_value(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        l.strip_prefix(key)
            .and_then(|v| v.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
    })
}

/// The library API: `daemon::spawn` + `Inbox::send`, in this process.
fn bench_latency_lib(p: &Plan, r: &mut Runs) -> Result<(), String> {
    let n = p.lat_n;
    let rx = Receiver::start(n + WARM)?;
    let (h, _dir) = spawn_engine(rx.port())?;
    for i in 0..WARM {
        h.inbox().send(msg_for(n + i));
        wait(&rx, n + i, "warm-up")?;
    }
    let msgs: Vec<Msg> = (0..n).map(msg_for).collect();
    let mut lat = Vec::with_capacity(n);
    let a0 = alloc::TOTAL.load(Ordering::Relaxed);
    for (i, m) in msgs.into_iter().enumerate() {
        let t0 = Instant::now();
        if !h.inbox().send(m) {
            return Err("Inbox::send: the engine stopped".into());
        }
        let t1 = wait(&rx, i, "library API")?;
        lat.push(t1.duration_since(t0).as_nanos() as u64);
    }
    let allocs = alloc::TOTAL.load(Ordering::Relaxed) - a0;
    r.push("alloc.process_per_event", allocs as f64 / n as f64);
    push_lat(r, "latency.lib", lat);
    h.stop(1_000).map_err(|e| format!("Handle::stop: {e}"))?;
    Ok(())
}

fn hook_args(peer_script: &Path, id: usize) -> Vec<String> {
    vec![
        peer_script.display().to_string(),
        "incoming_call".into(),
        id.to_string(),
        "1002".into(),
        DISPLAY_ENC.into(),
        "127.0.0.1".into(),
        unix_now().to_string(),
    ]
}

fn run_hook(script: &Path, id: usize) -> Result<(), String> {
    let st = Command::new("/bin/sh")
        .args(hook_args(script, id))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("sh: {e}"))?;
    if st.success() {
        Ok(())
    } else {
        Err(format!("hook exited {st}"))
    }
}

/// The peers: one hook process per event; latency, then a sequential burst, then peak RSS.
fn bench_peer(p: &Plan, r: &mut Runs, peer: Peer) -> Result<(), String> {
    let k = peer.key();
    let n = p.peer_lat_n;
    let rx = Receiver::start(n + p.peer_burst_n + 3)?;
    let dir = Scratch::new(k)?;
    let script = dir.write("hook.sh", &peer.script(rx.port()))?;
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let t0 = Instant::now();
        run_hook(&script, i)?;
        let t1 = wait(&rx, i, peer.name())?;
        lat.push(t1.duration_since(t0).as_nanos() as u64);
    }
    push_lat(r, &format!("latency.{k}"), lat);

    let base = n;
    let conn0 = rx.connections();
    let cpu0 = procs::children_cpu_ns();
    let t0 = Instant::now();
    for i in 0..p.peer_burst_n {
        run_hook(&script, base + i)?;
    }
    let cpu = procs::children_cpu_ns().saturating_sub(cpu0);
    r.push(
        &format!("cpu.{k}"),
        cpu as f64 / p.peer_burst_n as f64 / 1e3,
    );
    if !rx.wait_count(n + p.peer_burst_n, PATIENCE) {
        return Err(format!(
            "{}: {} of {} burst requests arrived",
            peer.name(),
            rx.count() - n,
            p.peer_burst_n
        ));
    }
    let last = (base..base + p.peer_burst_n)
        .filter_map(|i| rx.arrived(i))
        .max()
        .unwrap_or_else(Instant::now);
    let el = last.duration_since(t0).as_secs_f64();
    r.push(&format!("throughput.{k}"), p.peer_burst_n as f64 / el);
    r.push(
        &format!("throughput.{k}.connections"),
        (rx.connections() - conn0) as f64,
    );

    // Peak RSS of one hook run (the shell and the tool), median of three.
    let mut rss = Vec::new();
    for j in 0..3 {
        let id = n + p.peer_burst_n + j;
        rss.push(procs::peak_rss_of("/bin/sh", &hook_args(&script, id))? as f64);
    }
    rss.sort_by(f64::total_cmp);
    r.push(&format!("rss.{k}"), rss[1]);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 2. Throughput.

/// A paced burst: at most `window` notifications outstanding (sent but not yet received), so the
/// bounded outbox (128) never has to drop. Returns notifications/s from the first hand-over to
/// the last arrival.
fn paced(
    p: &Plan,
    rx: &Receiver,
    mut send: impl FnMut(usize) -> Result<(), String>,
) -> Result<f64, String> {
    let n = p.burst_n;
    let t0 = Instant::now();
    for i in 0..n {
        if i >= p.window && !rx.wait_count(i + 1 - p.window, PATIENCE) {
            return Err(format!("stalled: {} of {i} sent arrived", rx.count()));
        }
        send(i)?;
    }
    if !rx.wait_count(n, PATIENCE) {
        return Err(format!("only {} of {n} arrived", rx.count()));
    }
    let missing = (0..n).filter(|&i| rx.arrived(i).is_none()).count();
    if missing > 0 {
        return Err(format!("{missing} of {n} never arrived"));
    }
    let last = (0..n).filter_map(|i| rx.arrived(i)).max().unwrap_or(t0);
    Ok(n as f64 / last.duration_since(t0).as_secs_f64())
}

fn bench_throughput_daemon(p: &Plan, r: &mut Runs) -> Result<(), String> {
    let rx = Receiver::start(p.burst_n)?;
    let (d, _) = DaemonProc::start(&bin(), &config_for(rx.port()))?;
    let mut c = d.client()?;
    let lines: Vec<String> = (0..p.burst_n).map(line_for).collect();
    let cpu0 = procs::cpu_ns(d.pid(), |_| true)?;
    let rate = paced(p, &rx, |i| socket_send(&mut c, &lines[i]))?;
    let cpu1 = procs::cpu_ns(d.pid(), |_| true)?;
    r.push(
        "cpu.socket",
        cpu1.saturating_sub(cpu0) as f64 / p.burst_n as f64 / 1e3,
    );
    let st = d.drained(PATIENCE)?;
    let dropped: f64 = st
        .get("dropped")
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN);
    r.push("throughput.socket", rate);
    r.push("throughput.socket.dropped", dropped);
    r.push("throughput.socket.connections", rx.connections() as f64);
    if rx.repeats() + rx.unnumbered() > 0 {
        r.note(
            "throughput.socket",
            format!(
                "{} request(s) arrived twice, {} without a number",
                rx.repeats(),
                rx.unnumbered()
            ),
        );
    }
    d.stop();
    Ok(())
}

fn bench_throughput_lib(p: &Plan, r: &mut Runs) -> Result<(), String> {
    let rx = Receiver::start(p.burst_n)?;
    let (h, _dir) = spawn_engine(rx.port())?;
    let msgs: Vec<Msg> = (0..p.burst_n).map(msg_for).collect();
    let mut it = msgs.into_iter();
    let mine = |n: &str| n == "event-notify" || n.starts_with("deliver-");
    let me = std::process::id();
    let cpu0 = procs::cpu_ns(me, mine)?;
    let rate = paced(p, &rx, |_| match it.next().map(|m| h.inbox().send(m)) {
        Some(true) => Ok(()),
        Some(false) => Err("Inbox::send: the engine stopped".into()),
        None => Err("ran out of messages".into()),
    })?;
    let cpu1 = procs::cpu_ns(me, mine)?;
    r.push(
        "cpu.lib",
        cpu1.saturating_sub(cpu0) as f64 / p.burst_n as f64 / 1e3,
    );
    let st = h.inbox().status().unwrap_or_default();
    r.push("throughput.lib", rate);
    r.push(
        "throughput.lib.dropped",
        status_value(&st, "dropped").map_or(f64::NAN, |v| v as f64),
    );
    h.stop(1_000).map_err(|e| format!("Handle::stop: {e}"))?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 4. Memory, 5. idle cost, 6. start-up.

/// A fresh daemon, then an unpaced burst of `n` events through one socket client (the outbox
/// overflows and drops the oldest: that is the point), until everything is settled.
/// Returns the daemon for the idle measurement.
fn bench_rss(n: usize, key: &str, r: &mut Runs) -> Result<(DaemonProc, Receiver), String> {
    let rx = Receiver::start(n)?;
    let (d, _) = DaemonProc::start(&bin(), &config_for(rx.port()))?;
    std::thread::sleep(Duration::from_millis(50));
    bench_rss_of(&d, &rx, n, key, Some("rss.idle"), r)?;
    Ok((d, rx))
}

/// A handset build (see [`sizes::HANDSETS`]): idle RSS, then the peak after an unpaced burst
/// of `n`, as [`bench_rss`]. Rows `rss.{key}.*`.
fn bench_rss_handset(key: &str, bin: &Path, n: usize, r: &mut Runs) -> Result<(), String> {
    let rx = Receiver::start(n)?;
    let (d, _) = DaemonProc::start(bin, &config_for(rx.port()))?;
    std::thread::sleep(Duration::from_millis(50));
    let threads = std::fs::read_dir(format!("/proc/{}/task", d.pid()))
        .map(|t| t.count())
        .unwrap_or(0);
    r.push(&format!("rss.{key}.idle_threads"), threads as f64);
    let idle_key = format!("rss.{key}.idle");
    bench_rss_of(&d, &rx, n, key, Some(&idle_key), r)?;
    d.stop();
    Ok(())
}

/// Idle figures of a fresh daemon `d` (keys `{idle_key}` and `{idle_key}_anon`, if given), then
/// an unpaced burst of `n` through one socket client, then the peak. Keys `rss.{key}.*`.
fn bench_rss_of(
    d: &DaemonProc,
    rx: &Receiver,
    n: usize,
    key: &str,
    idle_key: Option<&str>,
    r: &mut Runs,
) -> Result<(), String> {
    let idle = d.vm_kib("VmRSS").ok_or("no VmRSS in /proc")?;
    let idle_anon = d.vm_kib("RssAnon").ok_or("no RssAnon in /proc")?;
    let mut c = d.client()?;
    let sampler = procs::MemSampler::start(d.pid());
    for i in 0..n {
        socket_send(&mut c, &line_for(i))?;
    }
    let st = d.drained(Duration::from_secs(120))?;
    rx.settle(Duration::from_millis(100), PATIENCE);
    let (_, peak_anon) = sampler.finish();
    let hwm = d.vm_kib("VmHWM").ok_or("no VmHWM in /proc")?;
    if let Some(k) = idle_key {
        r.push(&format!("{k}_anon"), idle_anon as f64);
        r.push(k, idle as f64);
    }
    r.push(&format!("rss.{key}.anon"), peak_anon as f64);
    let num = |k: &str| {
        st.get(k)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    r.push(&format!("rss.{key}.hwm"), hwm as f64);
    r.push(&format!("rss.{key}.delivered"), num("delivered"));
    r.push(&format!("rss.{key}.dropped"), num("dropped"));
    r.push(
        &format!("rss.{key}.after"),
        d.vm_kib("VmRSS").unwrap_or(0) as f64,
    );
    if rx.count() as f64 != num("delivered") {
        r.note(
            &format!("rss.{key}"),
            format!(
                "receiver counted {} requests, daemon says delivered {}",
                rx.count(),
                num("delivered")
            ),
        );
    }
    Ok(())
}

/// Voluntary context switches of every thread of each daemon over `p.idle`, nothing pending.
fn bench_idle(p: &Plan, r: &mut Runs, after_traffic: &DaemonProc) -> Result<(), String> {
    let rx = Receiver::start(1)?;
    let (fresh, _) = DaemonProc::start(&bin(), &config_for(rx.port()))?;
    after_traffic.drained(PATIENCE)?;
    std::thread::sleep(Duration::from_millis(200));
    let a0 = after_traffic.ctx_switches()?;
    let f0 = fresh.ctx_switches()?;
    std::thread::sleep(p.idle);
    let a1 = after_traffic.ctx_switches()?;
    let f1 = fresh.ctx_switches()?;
    r.push("idle.after_traffic", (a1.0 - a0.0) as f64);
    r.push("idle.fresh", (f1.0 - f0.0) as f64);
    r.push("idle.involuntary", ((a1.1 - a0.1) + (f1.1 - f0.1)) as f64);
    let threads = std::fs::read_dir(format!("/proc/{}/task", fresh.pid()))
        .map(|d| d.count())
        .unwrap_or(0);
    r.note(
        "idle",
        format!(
            "{threads} threads per daemon; window {:.1} s",
            p.idle.as_secs_f64()
        ),
    );
    fresh.stop();
    Ok(())
}

fn bench_startup(p: &Plan, r: &mut Runs) -> Result<(), String> {
    let rx = Receiver::start(1)?;
    let cfg = config_for(rx.port());
    let mut t = Vec::new();
    for _ in 0..p.starts {
        let (d, dt) = DaemonProc::start(&bin(), &cfg)?;
        t.push(dt.as_nanos() as u64);
        d.stop();
    }
    t.sort_unstable();
    r.push("startup", pct(&t, 50.0) / 1e3);
    Ok(())
}

/// The libcurl peer over HTTP (key `libcurl`) and HTTPS (`libcurl_https`); n/a, not an error,
/// where gcc or libcurl's headers are missing; a failed compile is a broken path.
fn bench_libcurl_both(r: &mut Runs, p: &Plan) {
    const PREFIXES: [&str; 5] = ["first", "latency", "throughput", "cpu", "rss"];
    if let Some(e) = libcurl::missing() {
        for k in ["libcurl", "libcurl_https"] {
            for pre in PREFIXES {
                r.skip(&format!("{pre}.{k}"), e.clone());
            }
        }
        return;
    }
    let ca = tls::BenchCa::new();
    for (k, ca) in [("libcurl", None), ("libcurl_https", Some(&ca))] {
        let res = match ca {
            None => libcurl::bench_libcurl(p, r, k, None),
            Some(Ok(ca)) => libcurl::bench_libcurl(p, r, k, Some(ca)),
            Some(Err(e)) => Err(format!("bench CA: {e}")),
        };
        if let Err(e) = res {
            for pre in PREFIXES {
                r.fail(&format!("{pre}.{k}"), e.clone());
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------

fn one_run(p: &Plan, r: &mut Runs, run: usize) {
    let step = |what: &str| eprintln!("bench: run {}/{}: {what}", run + 1, p.runs);
    if p.on("receivers") {
        step("receivers alone");
        bench_receivers(p, r);
    }
    if p.on("latency") {
        step("latency: emit and socket client");
        if let Err(e) = bench_latency_daemon(p, r) {
            r.fail("latency.emit", e.clone());
            r.fail("latency.socket", e);
        }
        step("latency: library API");
        if let Err(e) = bench_latency_lib(p, r) {
            r.fail("latency.lib", e);
        }
    }
    if p.on("throughput") {
        step("throughput: socket client");
        if let Err(e) = bench_throughput_daemon(p, r) {
            r.fail("throughput.socket", e);
        }
        step("throughput: library API");
        if let Err(e) = bench_throughput_lib(p, r) {
            r.fail("throughput.lib", e);
        }
    }
    if p.on("hostname") {
        step("host name (hosts file in a mount namespace)");
        let root = {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
        };
        if !root {
            r.skip(
                "hostname",
                "not root: the namespaces need root (unshare)".into(),
            );
        } else if let Err(e) = bench_hostname(p, r) {
            r.fail("hostname", e);
        }
    }
    for peer in Peer::ALL {
        if !p.on("peers") {
            break;
        }
        let k = peer.key();
        let prefixes = ["latency", "throughput", "rss", "cpu"];
        if let Some(tool) = peer.missing() {
            let why = format!("{tool} not installed");
            for pre in prefixes {
                r.skip(&format!("{pre}.{k}"), why.clone());
            }
            continue;
        }
        step(peer.name());
        if let Err(e) = bench_peer(p, r, peer) {
            for pre in prefixes {
                r.fail(&format!("{pre}.{k}"), e.clone());
            }
        }
    }
    if p.on("https") {
        step("HTTPS: receiver alone, first request, latency, throughput, memory");
        https::bench_https(p, r);
    }
    if p.on("libcurl") || p.on("peers") {
        step("libcurl peer (bench/curl_peer.c): HTTP, then HTTPS");
        bench_libcurl_both(r, p);
    }
    let mut small = None;
    if p.on("rss") || (run == 0 && p.on("idle")) {
        step("memory: bursts");
        match bench_rss(p.rss_small, "small", r) {
            Ok(d) => small = Some(d),
            Err(e) => r.fail("rss.small", e),
        }
    }
    if p.on("rss") {
        if let Err(e) = bench_rss(p.rss_big, "big", r) {
            r.fail("rss.big", e);
        }
    }
    if run == 0 && p.on("idle") {
        step("idle cost");
        match &small {
            Some((d, _)) => {
                if let Err(e) = bench_idle(p, r, d) {
                    r.fail("idle", e);
                }
            }
            None => r.fail("idle", "no daemon: the burst before it failed".into()),
        }
    }
    drop(small);
    if p.on("startup") {
        step("start-up");
        if let Err(e) = bench_startup(p, r) {
            r.fail("startup", e);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--maxrss") {
        procs::maxrss_main(&args[2..]);
    }
    let p = match Plan::from_args() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::exit(2);
        }
    };
    let started = Instant::now();
    let mut r = Runs::default();
    if !p.smoke && std::env::var_os("BENCH_BIN").is_none() {
        match sizes::build_pc() {
            Ok(b) => {
                let _ = PC_BIN.set(b);
            }
            Err(e) => r.note(
                "binary",
                format!("the release build failed ({e}): the bench's own build measured"),
            ),
        }
    }

    let load0 = procs::loadavg();
    eprintln!("bench: heap allocations on the engine path");
    alloc::set_trace(p.alloc_trace);
    let cost = if p.on("alloc") || p.alloc_trace {
        Some(alloc::engine_cost(p.alloc_cycles))
    } else {
        None
    };
    match cost {
        None => {}
        Some(Ok(c)) => {
            r.push(
                "alloc.handle_per_msg",
                c.handle_allocs as f64 / c.messages as f64,
            );
            r.push(
                "alloc.handle_per_event",
                c.handle_allocs as f64 / c.derived as f64,
            );
            r.push(
                "alloc.dispatch_per_event",
                c.dispatch_allocs as f64 / c.derived as f64,
            );
            r.push("engine.handle_ns", c.handle_ns_per_msg);
            let by: Vec<String> = c
                .by_kind
                .iter()
                .filter(|k| k.2 > 0)
                .map(|(l, m, a)| format!("{l}: {:.2}/msg", *a as f64 / *m as f64))
                .collect();
            let mut s = format!(
                "{} messages, {} events; next_job copies: {} allocations",
                c.messages, c.derived, c.next_job_allocs
            );
            if !by.is_empty() {
                s.push_str(&format!("; allocating in handle: {}", by.join(", ")));
            }
            r.note("alloc", s);
            let sizes: Vec<String> = alloc::storage_sizes()
                .iter()
                .map(|(n, b)| format!("{n} {:.1} KiB", *b as f64 / 1024.0))
                .collect();
            r.note("storage", format!("size_of: {}", sizes.join(", ")));
        }
        Some(Err(e)) => r.fail("alloc", e),
    }
    if p.alloc_trace {
        alloc::set_trace(false);
        let traces = alloc::take_traces();
        if traces.is_empty() {
            println!("alloc-trace: no allocation on the engine path");
        }
        for t in traces {
            println!("{t}\n");
        }
        return;
    }

    // The handset builds for the memory rows (smoke: the path, with the test binary).
    let handsets: Vec<(&str, Option<Result<PathBuf, String>>)> = sizes::HANDSETS
        .iter()
        .map(|h| {
            let b = if !p.on("rss") {
                None
            } else if p.smoke {
                r.note(
                    &format!("rss.{}", h.key),
                    "smoke: the test binary stands in for the handset build".into(),
                );
                Some(Ok(bin()))
            } else if p.sizes_build {
                Some(h.build())
            } else if h.bin().is_file() {
                Some(Ok(h.bin()))
            } else {
                Some(Err(
                    "handset build not there (a run without --no-sizes builds it)".to_string(),
                ))
            };
            (h.key, b)
        })
        .collect();
    for run in 0..p.runs {
        one_run(&p, &mut r, run);
        for (key, b) in &handsets {
            match b {
                Some(Ok(b)) => {
                    eprintln!("bench: run {}/{}: memory: {key} build", run + 1, p.runs);
                    if let Err(e) = bench_rss_handset(key, b, p.rss_small, &mut r) {
                        r.fail(&format!("rss.{key}"), e);
                    }
                }
                Some(Err(e)) if run == 0 => r.skip(&format!("rss.{key}"), e.clone()),
                _ => {}
            }
        }
    }

    let load1 = procs::loadavg();
    eprintln!("bench: binary sizes");
    let sz = sizes::measure(p.sizes_build && p.on("sizes"), &bin());
    for s in &sz {
        match &s.bytes {
            Ok(b) => r.push(&s.key, *b as f64),
            Err(e) => r.skip(&s.key, e.clone()),
        }
    }
    for (key, peer) in sizes::peers() {
        match peer {
            Ok(b) => r.push(&key, b as f64),
            Err(e) => r.skip(&key, e),
        }
    }

    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    r.note(
        "machine",
        format!(
            "{cpus} CPUs; load average {load0:.2} before the runs, {load1:.2} after: other work on the machine shows in the tails (p99, max) and in throughput, less in the CPU rows"
        ),
    );
    let commit = Command::new("git")
        .args([
            "-C",
            env!("CARGO_MANIFEST_DIR"),
            "rev-parse",
            "--short",
            "HEAD",
        ])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "?".into());
    r.note("binary", format!("{} (commit {commit})", bin().display()));
    let rep = build_report(&p, &r, &sz, started.elapsed());
    print!("{}", rep.table());
    if let Some(dir) = p.json.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    match std::fs::write(&p.json, rep.json()) {
        Ok(()) => println!("\nwritten: {}", p.json.display()),
        Err(e) => {
            eprintln!("bench: {}: {e}", p.json.display());
            r.errors.push(format!("cannot write {}", p.json.display()));
        }
    }
    if !r.errors.is_empty() {
        eprintln!("\nbench: {} measuring path(s) broken:", r.errors.len());
        for e in &r.errors {
            eprintln!("  {e}");
        }
        std::process::exit(1);
    }
}
