//! The report's rows: which measurement goes in which row, with its goal and its peers.
//!
//! A row whose key and label are fixed is one line of data, a [`Spec`], in a table; rows made
//! in a loop (a label with a count, a peer per hook tool) use the same [`fig`] and [`peer_cols`].

use super::*;

/// A goal as data (a [`Spec`] is a constant; [`Goal`] holds a String).
#[derive(Clone, Copy)]
pub(crate) enum G {
    No,
    Lt(f64, &'static str),
    Ge(f64, &'static str),
    Eq(f64, &'static str),
}

/// One row: figure key, label, unit, which way is better, the prefix whose failure explains a
/// missing figure ("": the key's own), goal, peers (column, figure key, its failure prefix).
pub(crate) type Spec = (
    &'static str,
    &'static str,
    Unit,
    Better,
    &'static str,
    G,
    &'static [(&'static str, &'static str, &'static str)],
);

/// A figure or why it is missing: the reason kept for `fail` (the first failure there), else
/// for the key's own prefix; `fail` "" is the key itself.
pub(crate) fn fig(r: &Runs, fail: &str, key: &str) -> Val {
    report15::val(r, if fail.is_empty() { key } else { fail }, key)
}

/// The hook peers' and libcurl's figures `{pre}.{peer}{suffix}`, each explained by its failure
/// `{pre}.{peer}`.
pub(crate) fn peer_cols(r: &Runs, pre: &str, suffix: &str) -> Vec<(String, Val)> {
    Peer::ALL
        .iter()
        .map(|pe| {
            let k = format!("{pre}.{}", pe.key());
            (pe.name().to_string(), fig(r, &k, &format!("{k}{suffix}")))
        })
        .chain([report15::libcurl(r, pre, suffix)])
        .collect()
}

/// `row` with these peer columns.
pub(crate) fn with_peers(row: Row, cols: Vec<(String, Val)>) -> Row {
    cols.into_iter()
        .fold(row, |row, (name, v)| row.peer(&name, v))
}

/// The rows of a table of [`Spec`]s, in order.
pub(crate) fn spec_rows(rep: &mut Report, r: &Runs, specs: &[Spec]) {
    for &(key, label, unit, better, fail, goal, peers) in specs {
        let mut row = Row::new(key, label, unit, better, fig(r, fail, key));
        for &(name, k, fail) in peers {
            row = row.peer(name, fig(r, fail, k));
        }
        row = match goal {
            G::No => row,
            G::Lt(v, t) => row.goal(Goal::lt(v, t)),
            G::Ge(v, t) => row.goal(Goal::ge(v, t)),
            G::Eq(v, t) => row.goal(Goal::eq(v, t)),
        };
        rep.row(row);
    }
}

use Better::{Higher, Lower};
use Unit::{Count, KiB, Ns, PerS, Ratio, Us};

#[rustfmt::skip]
const RECEIVERS: [Spec; 2] = [
    ("receiver.bench.rps", "in-bench receiver: requests/s", PerS, Higher, "", G::No,
        &[("nginx-light", "receiver.nginx.rps", ""), ("event-notify listen", "receiver.listen.rps", "")]),
    ("receiver.bench.p50", "in-bench receiver: round trip p50", Us, Lower, "", G::No,
        &[("nginx-light", "receiver.nginx.p50", ""), ("event-notify listen", "receiver.listen.p50", "")]),
];

#[rustfmt::skip]
const HOSTNAME: [Spec; 11] = [
    ("hostname.latency.p50", "latency p50 by name", Us, Lower, "hostname", G::Lt(250.0, "< 250 µs"), &[]),
    ("hostname.latency.ip.p50", "  same daemon and receiver, by IP literal, alternating: p50", Us, Lower, "hostname", G::No, &[]),
    ("hostname.latency.ratio.p50", "  by name / by IP literal, p50", Ratio, Lower, "hostname", G::Lt(1.2, "< 1.20"), &[]),
    ("hostname.latency.p99", "latency p99 by name", Us, Lower, "hostname", G::No, &[]),
    ("hostname.latency.ip.p99", "  same daemon and receiver, by IP literal, alternating: p99", Us, Lower, "hostname", G::No, &[]),
    ("hostname.latency.ratio.p99", "  by name / by IP literal, p99 (the machine's tails)", Ratio, Lower, "hostname", G::No, &[]),
    ("hostname.latency.kernel.p50", "request at the receiver's socket (kernel time) p50 by name", Us, Lower, "hostname", G::No, &[]),
    ("hostname.latency.ip.kernel.p50", "  same, by IP literal: p50", Us, Lower, "hostname", G::No, &[]),
    ("hostname.kernel.ratio.p50", "  by name / by IP literal at the receiver's socket, p50", Ratio, Lower, "hostname", G::No, &[]),
    ("hostname.connections", "TCP connections at the receiver (one per destination: 2)", Count, Lower, "hostname", G::Eq(2.0, "2"), &[]),
    ("hostname.threads_per_event", "threads started per notification (PID namespace count)", Ratio, Lower, "hostname", G::Lt(0.001, "0"), &[]),
];

#[rustfmt::skip]
const RSS_IDLE: [Spec; 2] = [
    ("rss.idle", "RSS idle (fresh daemon)", KiB, Lower, "rss.small", G::Lt(4096.0, "< 4 MiB"), &[]),
    ("rss.idle_anon", "  of which anonymous (RssAnon), idle", KiB, Lower, "rss.small", G::No, &[]),
];

#[rustfmt::skip]
const IDLE: [Spec; 2] = [
    ("idle.fresh", "fresh daemon", Count, Lower, "idle", G::Eq(0.0, "0"), &[]),
    ("idle.after_traffic", "daemon after a burst (connection pooled)", Count, Lower, "idle", G::Eq(0.0, "0"), &[]),
];

#[rustfmt::skip]
const STARTUP: [Spec; 1] = [
    ("startup", "start-up: spawn → socket answers ping", Us, Lower, "", G::No, &[]),
];

#[rustfmt::skip]
const ALLOC: [Spec; 5] = [
    ("alloc.handle_per_event", "Engine::handle: allocations per derived event", Count, Lower, "alloc", G::Eq(0.0, "0"), &[]),
    ("alloc.handle_per_msg", "Engine::handle: allocations per message", Count, Lower, "alloc", G::No, &[]),
    ("alloc.dispatch_per_event", "next_job + complete: allocations per event", Count, Lower, "alloc", G::No, &[]),
    ("engine.handle_ns", "Engine::handle: CPU time per message", Ns, Lower, "alloc", G::No, &[]),
    ("alloc.process_per_event", "in-process daemon path incl. ureq: allocations/event", Count, Lower, "latency.lib", G::No, &[]),
];

pub(crate) fn build_report(p: &Plan, r: &Runs, sz: &[sizes::Size], took: Duration) -> Report {
    let mut rep = Report::new(p.smoke, p.runs, took);

    rep.section("0. the measuring receiver alone (1 keep-alive connection, sequential GETs)");
    spec_rows(&mut rep, r, &RECEIVERS);

    rep.section(&format!(
        "1. latency: event handed over → request at the receiver ({} events per path per run)",
        p.lat_n
    ));
    for (path, label) in [
        ("emit", "`emit` (a process per event)"),
        ("socket", "socket client (persistent)"),
        ("lib", "library API (Inbox::send)"),
    ] {
        for (stat, goal) in [
            ("p50", Some(Goal::lt(250.0, "< 250 µs"))),
            ("p99", Some(Goal::lt(1000.0, "< 1 ms"))),
            ("max", None),
        ] {
            // The goals are for the daemon's own path; a process spawn per event is the peers'
            // way and is shown beside them.
            let goal = if path == "emit" { None } else { goal };
            let key = format!("latency.{path}.{stat}");
            let row = Row::new(
                &key,
                &format!("{label} {stat}"),
                Us,
                Lower,
                fig(r, "", &key),
            );
            let mut row = with_peers(row, peer_cols(r, "latency", &format!(".{stat}")));
            if let Some(g) = goal {
                row = row.goal(g);
            }
            rep.row(row);
        }
    }

    report15::handover_rows(&mut rep, r);

    rep.section(&format!(
        "2. throughput: burst of {} events to one receiver, keep-alive, ≤ {} outstanding (hook peers: {} events, one hook after the other; libcurl: {} events paced alike, one after the other)",
        p.burst_n, p.window, p.peer_burst_n, p.burst_n
    ));
    for (path, label) in [("socket", "socket client → daemon"), ("lib", "library API")] {
        let k = format!("throughput.{path}");
        let row = Row::new(
            &k,
            &format!("{label}: notifications/s"),
            PerS,
            Higher,
            fig(r, "", &k),
        )
        .goal(Goal::ge(5000.0, "≥ 5,000/s"));
        rep.row(with_peers(row, peer_cols(r, "throughput", "")));
        let dropped = format!("{k}.dropped");
        rep.row(
            Row::new(
                &dropped,
                &format!("{label}: dropped"),
                Count,
                Lower,
                fig(r, &k, &dropped),
            )
            .goal(Goal::eq(0.0, "0")),
        );
    }
    for (path, label) in [
        ("socket", "CPU per notification, daemon (all threads)"),
        ("lib", "CPU per notification, library (engine + workers)"),
    ] {
        let k = format!("cpu.{path}");
        let row = Row::new(
            &k,
            label,
            Us,
            Lower,
            fig(r, &format!("throughput.{path}"), &k),
        );
        rep.row(with_peers(row, peer_cols(r, "cpu", "")));
    }
    let row = Row::new(
        "throughput.socket.connections",
        "socket burst: TCP connections used",
        Count,
        Lower,
        fig(r, "throughput.socket", "throughput.socket.connections"),
    );
    rep.row(with_peers(row, peer_cols(r, "throughput", ".connections")));
    report15::https_rows(&mut rep, p, r);

    rep.section(&format!(
        "2b. host name: destination `{BENCH_HOST}` (hosts file in the daemon's mount namespace) and the same receiver by IP literal, one daemon, events alternating; socket client, {} events each",
        p.lat_n
    ));
    spec_rows(&mut rep, r, &HOSTNAME);

    rep.section("4. memory of the daemon (KiB; hook peers: peak RSS of one hook run, shell + tool; libcurl: VmHWM after its burst)");
    spec_rows(&mut rep, r, &RSS_IDLE);
    for (k, n) in [("small", p.rss_small), ("big", p.rss_big)] {
        let pre = format!("rss.{k}");
        let key = |s: &str| format!("{pre}.{s}");
        let row = Row::new(
            &key("hwm"),
            &format!("peak RSS (VmHWM), burst of {n} unpaced"),
            KiB,
            Lower,
            fig(r, &pre, &key("hwm")),
        )
        .goal(Goal::lt(4096.0, "< 4 MiB"));
        rep.row(with_peers(row, peer_cols(r, "rss", "")));
        for (s, label, unit, better) in [
            ("anon", "peak RssAnon (sampled every 2 ms)", KiB, Lower),
            (
                "dropped",
                "dropped (outbox full, counted)",
                Count,
                Better::None,
            ),
            ("delivered", "delivered", Count, Better::None),
        ] {
            let label = format!("  burst of {n}: {label}");
            rep.row(Row::new(
                &key(s),
                &label,
                unit,
                better,
                fig(r, &pre, &key(s)),
            ));
        }
    }
    for h in &sizes::HANDSETS {
        handset_rows(&mut rep, r, h, p.rss_small);
    }
    flat_row(&mut rep, r, p, "rss", "", "a burst failed");

    rep.section(&format!(
        "5. idle cost: voluntary context switches, all threads, over {:.1} s, nothing pending",
        p.idle.as_secs_f64()
    ));
    spec_rows(&mut rep, r, &IDLE);

    rep.section("6. start-up and size");
    spec_rows(&mut rep, r, &STARTUP);
    for s in sz {
        let mut row = Row::new(&s.key, &s.label, Unit::Bytes, Lower, fig(r, "", &s.key));
        for (name, key) in &s.peers {
            row = row.peer(name, fig(r, "", key));
        }
        if s.key == "size.armv7.notls" || s.key == "size.armv7.notls.small" {
            row = row.goal(Goal::lt(1_048_576.0, "< 1 MiB"));
        }
        rep.row(row);
    }

    rep.section("7. heap allocations on the event path (counting global allocator)");
    spec_rows(&mut rep, r, &ALLOC);
    for (k, n) in &r.notes {
        rep.note(&format!("{k}: {n}"));
    }
    rep
}

/// `{pre}.flat`: the big burst's peak RSS over the small one's (`{pre}.{big,small}.hwm`); flat is
/// under 1.1.
pub(crate) fn flat_row(rep: &mut Report, r: &Runs, p: &Plan, pre: &str, what: &str, na: &str) {
    let hwm = |k: &str| r.v.get(&format!("{pre}.{k}.hwm"));
    let flat = match (hwm("small"), hwm("big")) {
        (Some(a), Some(b)) => Val::Runs(vec![report::median(b) / report::median(a)]),
        _ => Val::Na(na.into()),
    };
    let label = format!("{what}peak RSS {} / peak RSS {}", p.rss_big, p.rss_small);
    rep.row(
        Row::new(&format!("{pre}.flat"), &label, Ratio, Lower, flat)
            .goal(Goal::lt(1.1, "flat (< 1.1)")),
    );
}

/// The memory rows of one handset build (`rss.{key}.*`).
fn handset_rows(rep: &mut Report, r: &Runs, h: &sizes::Handset, n: usize) {
    let pre = format!("rss.{}", h.key);
    let idle = format!("handset build (x86_64, {}, TLS): RSS idle", h.label);
    let hwm = format!("  peak RSS (VmHWM), burst of {n} unpaced");
    for (s, label, unit, goal) in [
        (
            "idle",
            idle.as_str(),
            KiB,
            Some(Goal::lt(1536.0, "< 1.5 MiB")),
        ),
        (
            "idle_anon",
            "  of which anonymous (RssAnon), idle",
            KiB,
            None,
        ),
        ("idle_threads", "  threads, idle", Count, None),
        ("hwm", hwm.as_str(), KiB, Some(Goal::lt(2048.0, "< 2 MiB"))),
        ("anon", "  peak RssAnon (sampled every 2 ms)", KiB, None),
    ] {
        let key = format!("{pre}.{s}");
        let mut row = Row::new(&key, label, unit, Lower, fig(r, &pre, &key));
        if let Some(g) = goal {
            row = row.goal(g);
        }
        rep.row(row);
    }
}
