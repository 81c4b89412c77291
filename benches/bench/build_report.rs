//! The report's rows: which measurement goes in which row, with its goal and its peers.

use super::*;

pub(crate) fn build_report(p: &Plan, r: &Runs, sz: &[sizes::Size], took: Duration) -> Report {
    let mut rep = Report::new(p.smoke, p.runs, took);
    let us = Unit::Us;
    let na_or = |prefix: &str, key: &str| match r.v.get(key) {
        Some(_) => r.val(key),
        None => Val::Na(
            r.na.get(prefix)
                .cloned()
                .unwrap_or_else(|| "not measured".into()),
        ),
    };
    let v = |key: &str| {
        let prefix = key.rsplit_once('.').map_or(key, |(p, _)| p);
        na_or(prefix, key)
    };
    let peers_lat = |stat: &str| {
        Peer::ALL
            .iter()
            .map(|pe| {
                let pre = format!("latency.{}", pe.key());
                (pe.name().to_string(), na_or(&pre, &format!("{pre}.{stat}")))
            })
            .chain([report15::libcurl(r, "latency", &format!(".{stat}"))])
            .collect::<Vec<_>>()
    };

    rep.section("0. the measuring receiver alone (1 keep-alive connection, sequential GETs)");
    rep.row(
        Row::new(
            "receiver.bench.rps",
            "in-bench receiver: requests/s",
            Unit::PerS,
            Better::Higher,
            v("receiver.bench.rps"),
        )
        .peer("nginx-light", v("receiver.nginx.rps"))
        .peer("event-notify listen", v("receiver.listen.rps")),
    );
    rep.row(
        Row::new(
            "receiver.bench.p50",
            "in-bench receiver: round trip p50",
            us,
            Better::Lower,
            v("receiver.bench.p50"),
        )
        .peer("nginx-light", v("receiver.nginx.p50"))
        .peer("event-notify listen", v("receiver.listen.p50")),
    );

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
            let mut row = Row::new(
                &format!("latency.{path}.{stat}"),
                &format!("{label} {stat}"),
                us,
                Better::Lower,
                v(&format!("latency.{path}.{stat}")),
            );
            for (name, val) in peers_lat(stat) {
                row = row.peer(&name, val);
            }
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
    let peer_tp = || {
        Peer::ALL
            .iter()
            .map(|pe| {
                let k = format!("throughput.{}", pe.key());
                (pe.name().to_string(), na_or(&k, &k))
            })
            .chain([report15::libcurl(r, "throughput", "")])
            .collect::<Vec<_>>()
    };
    for (path, label) in [("socket", "socket client → daemon"), ("lib", "library API")] {
        let k = format!("throughput.{path}");
        let mut row = Row::new(
            &k,
            &format!("{label}: notifications/s"),
            Unit::PerS,
            Better::Higher,
            na_or(&k, &k),
        )
        .goal(Goal::ge(5000.0, "≥ 5,000/s"));
        for (name, val) in peer_tp() {
            row = row.peer(&name, val);
        }
        rep.row(row);
        rep.row(
            Row::new(
                &format!("{k}.dropped"),
                &format!("{label}: dropped"),
                Unit::Count,
                Better::Lower,
                na_or(&k, &format!("{k}.dropped")),
            )
            .goal(Goal::eq(0.0, "0")),
        );
    }
    let peer_cpu = || {
        Peer::ALL
            .iter()
            .map(|pe| {
                let k = format!("cpu.{}", pe.key());
                (pe.name().to_string(), na_or(&k, &k))
            })
            .chain([report15::libcurl(r, "cpu", "")])
            .collect::<Vec<_>>()
    };
    for (path, label) in [
        ("socket", "CPU per notification, daemon (all threads)"),
        ("lib", "CPU per notification, library (engine + workers)"),
    ] {
        let k = format!("cpu.{path}");
        let mut row = Row::new(
            &k,
            label,
            us,
            Better::Lower,
            na_or(&format!("throughput.{path}"), &k),
        );
        for (name, val) in peer_cpu() {
            row = row.peer(&name, val);
        }
        rep.row(row);
    }
    let mut row = Row::new(
        "throughput.socket.connections",
        "socket burst: TCP connections used",
        Unit::Count,
        Better::Lower,
        na_or("throughput.socket", "throughput.socket.connections"),
    );
    for pe in Peer::ALL {
        let k = format!("throughput.{}", pe.key());
        row = row.peer(pe.name(), na_or(&k, &format!("{k}.connections")));
    }
    let (name, val) = report15::libcurl(r, "throughput", ".connections");
    rep.row(row.peer(&name, val));
    report15::https_rows(&mut rep, p, r);

    rep.section(&format!(
        "2b. host name: destination `{BENCH_HOST}` (hosts file in the daemon's mount namespace), socket client, {} events",
        p.lat_n
    ));
    rep.row(
        Row::new(
            "hostname.latency.p50",
            "latency p50 by name (IP literal: the socket row above)",
            Unit::Us,
            Better::Lower,
            na_or("hostname", "hostname.latency.p50"),
        )
        .goal(Goal::lt(250.0, "< 250 µs")),
    );
    rep.row(Row::new(
        "hostname.latency.p99",
        "latency p99 by name",
        Unit::Us,
        Better::Lower,
        na_or("hostname", "hostname.latency.p99"),
    ));
    rep.row(
        Row::new(
            "hostname.threads_per_event",
            "threads started per notification (PID namespace count)",
            Unit::Ratio,
            Better::Lower,
            na_or("hostname", "hostname.threads_per_event"),
        )
        .goal(Goal::lt(0.001, "0")),
    );

    rep.section("4. memory of the daemon (KiB; hook peers: peak RSS of one hook run, shell + tool; libcurl: VmHWM after its burst)");
    let peer_rss = || {
        Peer::ALL
            .iter()
            .map(|pe| {
                let k = format!("rss.{}", pe.key());
                (pe.name().to_string(), na_or(&k, &k))
            })
            .chain([report15::libcurl(r, "rss", "")])
            .collect::<Vec<_>>()
    };
    rep.row(
        Row::new(
            "rss.idle",
            "RSS idle (fresh daemon)",
            Unit::KiB,
            Better::Lower,
            na_or("rss.small", "rss.idle"),
        )
        .goal(Goal::lt(4096.0, "< 4 MiB")),
    );
    rep.row(Row::new(
        "rss.idle_anon",
        "  of which anonymous (RssAnon), idle",
        Unit::KiB,
        Better::Lower,
        na_or("rss.small", "rss.idle_anon"),
    ));
    for (k, n) in [("small", p.rss_small), ("big", p.rss_big)] {
        let mut row = Row::new(
            &format!("rss.{k}.hwm"),
            &format!("peak RSS (VmHWM), burst of {n} unpaced"),
            Unit::KiB,
            Better::Lower,
            na_or(&format!("rss.{k}"), &format!("rss.{k}.hwm")),
        )
        .goal(Goal::lt(4096.0, "< 4 MiB"));
        for (name, val) in peer_rss() {
            row = row.peer(&name, val);
        }
        rep.row(row);
        rep.row(Row::new(
            &format!("rss.{k}.anon"),
            &format!("  burst of {n}: peak RssAnon (sampled every 2 ms)"),
            Unit::KiB,
            Better::Lower,
            na_or(&format!("rss.{k}"), &format!("rss.{k}.anon")),
        ));
        rep.row(Row::new(
            &format!("rss.{k}.dropped"),
            &format!("  burst of {n}: dropped (outbox full, counted)"),
            Unit::Count,
            Better::None,
            na_or(&format!("rss.{k}"), &format!("rss.{k}.dropped")),
        ));
        rep.row(Row::new(
            &format!("rss.{k}.delivered"),
            &format!("  burst of {n}: delivered"),
            Unit::Count,
            Better::None,
            na_or(&format!("rss.{k}"), &format!("rss.{k}.delivered")),
        ));
    }
    for h in &sizes::HANDSETS {
        handset_rows(&mut rep, r, h, p.rss_small);
    }
    let flat = match (r.v.get("rss.small.hwm"), r.v.get("rss.big.hwm")) {
        (Some(a), Some(b)) => {
            let (a, b) = (report::median(a), report::median(b));
            Val::Runs(vec![b / a])
        }
        _ => Val::Na("a burst failed".into()),
    };
    rep.row(
        Row::new(
            "rss.flat",
            &format!("peak RSS {} / peak RSS {}", p.rss_big, p.rss_small),
            Unit::Ratio,
            Better::Lower,
            flat,
        )
        .goal(Goal::lt(1.1, "flat (< 1.1)")),
    );

    rep.section(&format!(
        "5. idle cost: voluntary context switches, all threads, over {:.1} s, nothing pending",
        p.idle.as_secs_f64()
    ));
    rep.row(
        Row::new(
            "idle.fresh",
            "fresh daemon",
            Unit::Count,
            Better::Lower,
            na_or("idle", "idle.fresh"),
        )
        .goal(Goal::eq(0.0, "0")),
    );
    rep.row(
        Row::new(
            "idle.after_traffic",
            "daemon after a burst (connection pooled)",
            Unit::Count,
            Better::Lower,
            na_or("idle", "idle.after_traffic"),
        )
        .goal(Goal::eq(0.0, "0")),
    );

    rep.section("6. start-up and size");
    rep.row(Row::new(
        "startup",
        "start-up: spawn → socket answers ping",
        us,
        Better::Lower,
        na_or("startup", "startup"),
    ));
    for s in sz {
        let mut row = Row::new(
            &s.key,
            &s.label,
            Unit::Bytes,
            Better::Lower,
            na_or(&s.key, &s.key),
        );
        for (name, key) in &s.peers {
            row = row.peer(name, na_or(key, key));
        }
        if s.key == "size.armv7.notls" || s.key == "size.armv7.notls.small" {
            row = row.goal(Goal::lt(1_048_576.0, "< 1 MiB"));
        }
        rep.row(row);
    }

    rep.section("7. heap allocations on the event path (counting global allocator)");
    rep.row(
        Row::new(
            "alloc.handle_per_event",
            "Engine::handle: allocations per derived event",
            Unit::Count,
            Better::Lower,
            na_or("alloc", "alloc.handle_per_event"),
        )
        .goal(Goal::eq(0.0, "0")),
    );
    rep.row(Row::new(
        "alloc.handle_per_msg",
        "Engine::handle: allocations per message",
        Unit::Count,
        Better::Lower,
        na_or("alloc", "alloc.handle_per_msg"),
    ));
    rep.row(Row::new(
        "alloc.dispatch_per_event",
        "next_job + complete: allocations per event",
        Unit::Count,
        Better::Lower,
        na_or("alloc", "alloc.dispatch_per_event"),
    ));
    rep.row(Row::new(
        "engine.handle_ns",
        "Engine::handle: CPU time per message",
        Unit::Ns,
        Better::Lower,
        na_or("alloc", "engine.handle_ns"),
    ));
    rep.row(Row::new(
        "alloc.process_per_event",
        "in-process daemon path incl. ureq: allocations/event",
        Unit::Count,
        Better::Lower,
        na_or("latency.lib", "alloc.process_per_event"),
    ));
    for (k, n) in &r.notes {
        rep.note(&format!("{k}: {n}"));
    }
    rep
}

/// The memory rows of one handset build (`rss.{key}.*`).
fn handset_rows(rep: &mut Report, r: &Runs, h: &sizes::Handset, n: usize) {
    let k = h.key;
    let key = |s: &str| format!("rss.{k}.{s}");
    let val = |s: &str| match r.v.get(&key(s)) {
        Some(_) => r.val(&key(s)),
        None => Val::Na(
            r.na.get(&format!("rss.{k}"))
                .cloned()
                .unwrap_or_else(|| "not measured".into()),
        ),
    };
    rep.row(
        Row::new(
            &key("idle"),
            &format!("handset build (x86_64, {}, TLS): RSS idle", h.label),
            Unit::KiB,
            Better::Lower,
            val("idle"),
        )
        .goal(Goal::lt(1536.0, "< 1.5 MiB")),
    );
    rep.row(Row::new(
        &key("idle_anon"),
        "  of which anonymous (RssAnon), idle",
        Unit::KiB,
        Better::Lower,
        val("idle_anon"),
    ));
    rep.row(Row::new(
        &key("idle_threads"),
        "  threads, idle",
        Unit::Count,
        Better::Lower,
        val("idle_threads"),
    ));
    rep.row(
        Row::new(
            &key("hwm"),
            &format!("  peak RSS (VmHWM), burst of {n} unpaced"),
            Unit::KiB,
            Better::Lower,
            val("hwm"),
        )
        .goal(Goal::lt(2048.0, "< 2 MiB")),
    );
    rep.row(Row::new(
        &key("anon"),
        "  peak RssAnon (sampled every 2 ms)",
        Unit::KiB,
        Better::Lower,
        val("anon"),
    ));
}
