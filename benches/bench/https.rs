//! HTTPS to one receiver on loopback (issue 15, item 1): the daemon with an `https://` URL and
//! `delivery.ca_file` = the bench's CA, against the same stamping receiver behind rustls.
//! Rows `receiver.tls.*`, `https.*`, `first.*` (docs/PERFORMANCE.md "HTTPS").

use crate::procs::DaemonProc;
use crate::recv::{self, Receiver};
use crate::tls::BenchCa;
use crate::{
    bench_rss_of, bin, config_for, line_for, paced, pct, push_lat, socket_send, wait, Plan, Runs,
    PATIENCE, WARM,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The daemon's configuration for an `https://` destination trusting only the bench's CA.
pub(crate) fn config_https(port: u16, ca: &BenchCa) -> String {
    let ca_file = serde_json::to_string(&ca.ca_file().display().to_string()).unwrap_or_default();
    format!(
        r#"{{"events": {{"incoming_call": "https://127.0.0.1:{port}/in?n=$call_id&ev=$event&from=$remote&name=$display_remote&ip=$phone_ip&t=$timestamp"}},
           "delivery": {{"ca_file": {ca_file}}},
           "device": {{"interface": "lo"}}}}"#
    )
}

fn receiver(n: usize, ca: Option<&BenchCa>) -> Result<Receiver, String> {
    match ca {
        None => Receiver::start(n),
        Some(ca) => Receiver::start_tls(n, Arc::clone(&ca.server)),
    }
}

fn config(port: u16, ca: Option<&BenchCa>) -> String {
    match ca {
        None => config_for(port),
        Some(ca) => config_https(port, ca),
    }
}

/// Every HTTPS figure of one run; a broken path fails its prefix and the others still run.
pub(crate) fn bench_https(p: &Plan, r: &mut Runs) {
    let ca = match BenchCa::new() {
        Ok(ca) => ca,
        Err(e) => {
            for k in ["receiver.tls", "https", "first"] {
                r.fail(k, format!("bench CA: {e}"));
            }
            return;
        }
    };
    let tried = Receiver::start_tls(p.recv_n, Arc::clone(&ca.server)).and_then(|rx| {
        let cfg = ca.client()?;
        recv::hammer_tls(rx.addr(), p.recv_n, cfg)
    });
    match tried {
        Ok(h) => {
            let mut rtt = h.rtts;
            rtt.sort_unstable();
            r.push("receiver.tls.rps", h.per_s);
            r.push("receiver.tls.p50", pct(&rtt, 50.0) / 1e3);
        }
        Err(e) => r.fail("receiver.tls", e),
    }
    if let Err(e) = first_requests(p, r, &ca) {
        r.fail("first", e);
    }
    if let Err(e) = latency(p, r, &ca) {
        r.fail("https.latency", e);
    }
    if let Err(e) = throughput(p, r, &ca) {
        r.fail("https.throughput", e);
    }
    for (n, k) in [(p.rss_small, "small"), (p.rss_big, "big")] {
        if let Err(e) = rss(n, k, r, &ca) {
            r.fail(&format!("rss.https.{k}"), e);
        }
    }
}

/// Fresh daemons, each ready (socket answers), then event 0 handed over → its arrival: the TCP
/// connect, for HTTPS the TLS handshake, and the request. Plain and HTTPS alternate.
fn first_requests(p: &Plan, r: &mut Runs, ca: &BenchCa) -> Result<(), String> {
    let times = p.starts.div_ceil(2).max(1);
    let mut by: [Vec<u64>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..times {
        for (j, ca) in [None, Some(ca)].into_iter().enumerate() {
            let rx = receiver(1, ca)?;
            let (d, _) = DaemonProc::start(&bin(), &config(rx.port(), ca))?;
            let mut c = d.client()?;
            let t0 = Instant::now();
            socket_send(&mut c, &line_for(0))?;
            let t1 = wait(&rx, 0, "first request")?;
            by[j].push(t1.duration_since(t0).as_nanos() as u64);
            d.stop();
        }
    }
    for (j, k) in ["first.http", "first.https"].into_iter().enumerate() {
        by[j].sort_unstable();
        r.push(k, pct(&by[j], 50.0) / 1e3);
    }
    Ok(())
}

/// The socket client, one event at a time after warm-up (the keep-alive connection open), to
/// two daemons running side by side, plain HTTP and HTTPS, the events alternating between them:
/// both see the same load of the machine. Keys `https.latency.*`, `https.latency.plain.*`,
/// `https.handover.*`.
fn latency(p: &Plan, r: &mut Runs, ca: &BenchCa) -> Result<(), String> {
    let n = p.lat_n;
    let mut sides = Vec::new();
    for ca in [None, Some(ca)] {
        let rx = receiver(n + WARM, ca)?;
        let (d, _) = DaemonProc::start(&bin(), &config(rx.port(), ca))?;
        let mut c = d.client()?;
        for i in 0..WARM {
            socket_send(&mut c, &line_for(n + i))?;
            wait(&rx, n + i, "warm-up")?;
        }
        sides.push((rx, d, c));
    }
    let mut lat = [Vec::with_capacity(n), Vec::with_capacity(n)];
    let mut handover = Vec::with_capacity(n);
    for i in 0..n {
        let line = line_for(i);
        // Swap which goes first each time.
        let order = if i % 2 == 0 { [0, 1] } else { [1, 0] };
        for j in order {
            let (rx, _, c) = &mut sides[j];
            let t0 = Instant::now();
            socket_send(c, &line)?;
            if j == 1 {
                handover.push(t0.elapsed().as_nanos() as u64);
            }
            let t1 = wait(
                rx,
                i,
                if j == 1 {
                    "https"
                } else {
                    "plain beside https"
                },
            )?;
            lat[j].push(t1.duration_since(t0).as_nanos() as u64);
        }
    }
    let [plain, https] = lat;
    push_lat(r, "https.latency", https);
    push_lat(r, "https.latency.plain", plain);
    push_lat(r, "https.handover", handover);
    for (j, (rx, d, _)) in sides.into_iter().enumerate() {
        let st = d.drained(PATIENCE)?;
        if j == 1 {
            r.push("https.latency.connections", rx.connections() as f64);
        }
        if st.get("failed").is_some_and(|v| v != "0") {
            return Err(format!("daemon counted failed {:?}", st.get("failed")));
        }
        d.stop();
    }
    Ok(())
}

/// Paced bursts as the plain row (at most `window` outstanding), plain HTTP and HTTPS to the
/// same kind of receiver, alternating (3 pairs, the order swapped each time; smoke: 1): the
/// ratio is of the medians of back-to-back figures, so a change in the machine's load hits both.
fn throughput(p: &Plan, r: &mut Runs, ca: &BenchCa) -> Result<(), String> {
    let lines: Vec<String> = (0..p.burst_n).map(line_for).collect();
    let pairs = if p.smoke { 1 } else { 3 };
    // [plain, https]: notifications/s and CPU µs per notification of each burst.
    let mut rate: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut cpu: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for pair in 0..pairs {
        let order = if pair % 2 == 0 { [0, 1] } else { [1, 0] };
        for j in order {
            let ca = (j == 1).then_some(ca);
            let rx = receiver(p.burst_n, ca)?;
            let (d, _) = DaemonProc::start(&bin(), &config(rx.port(), ca))?;
            let mut c = d.client()?;
            let cpu0 = crate::procs::cpu_ns(d.pid(), |_| true)?;
            rate[j].push(paced(p, &rx, |i| socket_send(&mut c, &lines[i]))?);
            let cpu1 = crate::procs::cpu_ns(d.pid(), |_| true)?;
            cpu[j].push(cpu1.saturating_sub(cpu0) as f64 / p.burst_n as f64 / 1e3);
            let st = d.drained(PATIENCE)?;
            if j == 1 {
                let dropped = st
                    .get("dropped")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(f64::NAN);
                r.push("https.throughput.dropped", dropped);
                r.push("https.throughput.connections", rx.connections() as f64);
            }
            d.stop();
        }
    }
    let m = |v: &[f64]| crate::report::median(v);
    r.push("https.throughput.plain", m(&rate[0]));
    r.push("https.throughput", m(&rate[1]));
    r.push("https.throughput.ratio", m(&rate[1]) / m(&rate[0]));
    r.push("https.cpu.plain", m(&cpu[0]));
    r.push("https.cpu", m(&cpu[1]));
    Ok(())
}

/// As the plain memory rows: a fresh daemon, an unpaced burst of `n` (the outbox overflows and
/// drops), then the peak. Keys `rss.https.{small,big}.*`, `rss.https.idle*` (small only).
fn rss(n: usize, k: &str, r: &mut Runs, ca: &BenchCa) -> Result<(), String> {
    let rx = receiver(n, Some(ca))?;
    let (d, _) = DaemonProc::start(&bin(), &config_https(rx.port(), ca))?;
    std::thread::sleep(Duration::from_millis(50));
    let idle = (k == "small").then_some("rss.https.idle");
    bench_rss_of(&d, &rx, n, &format!("https.{k}"), idle, r)?;
    d.stop();
    Ok(())
}
