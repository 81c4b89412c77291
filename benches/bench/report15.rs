//! The report's rows for HTTPS and the libcurl peer (issue 15 items 1 and 3).

use super::*;

/// The libcurl peer's column name.
pub(crate) const LIBCURL: &str = "libcurl";

/// A figure or why it is missing: the reason kept for `prefix` (the first failure), else for the
/// key's own prefix.
pub(crate) fn val(r: &Runs, prefix: &str, key: &str) -> Val {
    match r.v.get(key) {
        Some(_) => r.val(key),
        None => Val::Na(
            r.na.get(prefix)
                .or_else(|| r.na.get(key.rsplit_once('.').map_or(key, |x| x.0)))
                .cloned()
                .unwrap_or_else(|| "not measured".into()),
        ),
    }
}

/// The libcurl peer's figure `{pre}.libcurl{suffix}` (plain HTTP), for the existing rows.
pub(crate) fn libcurl(r: &Runs, pre: &str, suffix: &str) -> (String, Val) {
    let k = format!("{pre}.libcurl");
    (LIBCURL.to_string(), val(r, &k, &format!("{k}{suffix}")))
}

fn libcurl_https(r: &Runs, pre: &str, suffix: &str) -> Val {
    let k = format!("{pre}.libcurl_https");
    val(r, &k, &format!("{k}{suffix}"))
}

/// Rows "the caller is blocked": after the latency section. The daemon's hand-over (the socket
/// client's write → the daemon's `OK`) beside the time libcurl's `curl_easy_perform` keeps the
/// firmware's event thread (the line written → its acknowledgement: the response was read).
pub(crate) fn handover_rows(rep: &mut Report, r: &Runs) {
    for (path, label, peer_key) in [
        ("socket", "plain HTTP", "libcurl"),
        ("https", "HTTPS", "libcurl_https"),
    ] {
        let pre = if path == "socket" {
            "handover.socket".to_string()
        } else {
            "https.handover".to_string()
        };
        for stat in ["p50", "p99"] {
            let fail = if path == "socket" {
                "latency.socket"
            } else {
                "https.latency"
            };
            let peer_pre = format!("handover.{peer_key}");
            rep.row(
                Row::new(
                    &format!("{pre}.{stat}"),
                    &format!("caller blocked per event, {label}, socket client {stat}"),
                    Unit::Us,
                    Better::Lower,
                    val(r, fail, &format!("{pre}.{stat}")),
                )
                .peer(
                    LIBCURL,
                    val(
                        r,
                        &format!("latency.{peer_key}"),
                        &format!("{peer_pre}.{stat}"),
                    ),
                ),
            );
        }
    }
}

/// Section "1b. HTTPS": after the plain latency and throughput sections.
pub(crate) fn https_rows(rep: &mut Report, p: &Plan, r: &Runs) {
    let us = Unit::Us;
    rep.section(&format!(
        "1b. HTTPS to one receiver on loopback (the bench's CA in delivery.ca_file; keep-alive; peer: libcurl with CURLOPT_CAINFO); {} events per latency path, {} in the burst",
        p.lat_n, p.burst_n
    ));
    rep.row(
        Row::new(
            "receiver.tls.rps",
            "in-bench receiver over TLS alone: requests/s",
            Unit::PerS,
            Better::Higher,
            val(r, "receiver.tls", "receiver.tls.rps"),
        )
        .peer(
            "same, plain HTTP",
            val(r, "receiver.bench", "receiver.bench.rps"),
        ),
    );
    rep.row(Row::new(
        "receiver.tls.p50",
        "in-bench receiver over TLS alone: round trip p50",
        us,
        Better::Lower,
        val(r, "receiver.tls", "receiver.tls.p50"),
    ));
    for (stat, goal) in [
        ("p50", None),
        ("p99", Some(Goal::lt(1000.0, "< 1 ms"))),
        ("max", None),
    ] {
        let mut row = Row::new(
            &format!("https.latency.{stat}"),
            &format!("HTTPS, socket client (persistent) {stat}"),
            us,
            Better::Lower,
            val(r, "https.latency", &format!("https.latency.{stat}")),
        )
        .peer(LIBCURL, libcurl_https(r, "latency", &format!(".{stat}")));
        if let Some(g) = goal {
            row = row.goal(g);
        }
        rep.row(row);
        rep.row(Row::new(
            &format!("https.latency.plain.{stat}"),
            &format!("  plain HTTP, alternating with it: {stat}"),
            us,
            Better::Lower,
            val(r, "https.latency", &format!("https.latency.plain.{stat}")),
        ));
    }
    rep.row(
        Row::new(
            "https.throughput",
            "HTTPS, socket client → daemon: notifications/s",
            Unit::PerS,
            Better::Higher,
            val(r, "https.throughput", "https.throughput"),
        )
        .peer(LIBCURL, libcurl_https(r, "throughput", "")),
    );
    rep.row(Row::new(
        "https.throughput.plain",
        "  plain HTTP, same step, same kind of receiver",
        Unit::PerS,
        Better::Higher,
        val(r, "https.throughput", "https.throughput.plain"),
    ));
    rep.row(
        Row::new(
            "https.throughput.ratio",
            "  HTTPS / plain HTTP throughput",
            Unit::Ratio,
            Better::Higher,
            val(r, "https.throughput", "https.throughput.ratio"),
        )
        .goal(Goal::ge(0.8, "≥ 0.80")),
    );
    rep.row(
        Row::new(
            "https.throughput.dropped",
            "  HTTPS burst: dropped",
            Unit::Count,
            Better::Lower,
            val(r, "https.throughput", "https.throughput.dropped"),
        )
        .goal(Goal::eq(0.0, "0")),
    );
    rep.row(
        Row::new(
            "https.throughput.connections",
            "  HTTPS burst: TLS connections used",
            Unit::Count,
            Better::Lower,
            val(r, "https.throughput", "https.throughput.connections"),
        )
        .peer(LIBCURL, libcurl_https(r, "throughput", ".connections")),
    );
    rep.row(
        Row::new(
            "https.cpu",
            "HTTPS: CPU per notification, daemon (all threads)",
            us,
            Better::Lower,
            val(r, "https.throughput", "https.cpu"),
        )
        .peer(LIBCURL, libcurl_https(r, "cpu", "")),
    );
    rep.row(Row::new(
        "https.cpu.plain",
        "  plain HTTP, same step: CPU per notification, daemon",
        us,
        Better::Lower,
        val(r, "https.throughput", "https.cpu.plain"),
    ));
    rep.row(
        Row::new(
            "first.https",
            "first request of a fresh daemon, HTTPS (connect + handshake)",
            us,
            Better::Lower,
            val(r, "first", "first.https"),
        )
        .peer(LIBCURL, libcurl_https(r, "first", "")),
    );
    rep.row(
        Row::new(
            "first.http",
            "first request of a fresh daemon, plain HTTP (connect)",
            us,
            Better::Lower,
            val(r, "first", "first.http"),
        )
        .peer(LIBCURL, val(r, "first.libcurl", "first.libcurl")),
    );
    rep.row(
        Row::new(
            "rss.https.idle",
            "HTTPS: RSS idle (fresh daemon, KiB)",
            Unit::KiB,
            Better::Lower,
            val(r, "rss.https.small", "rss.https.idle"),
        )
        .goal(Goal::lt(4096.0, "< 4 MiB")),
    );
    for (k, n) in [("small", p.rss_small), ("big", p.rss_big)] {
        let pre = format!("rss.https.{k}");
        let mut row = Row::new(
            &format!("{pre}.hwm"),
            &format!("HTTPS: peak RSS (VmHWM), burst of {n} unpaced"),
            Unit::KiB,
            Better::Lower,
            val(r, &pre, &format!("{pre}.hwm")),
        )
        .goal(Goal::lt(4096.0, "< 4 MiB"));
        if k == "small" {
            row = row.peer(LIBCURL, libcurl_https(r, "rss", ""));
        }
        rep.row(row);
        rep.row(Row::new(
            &format!("{pre}.dropped"),
            &format!("  HTTPS burst of {n}: dropped (outbox full, counted)"),
            Unit::Count,
            Better::None,
            val(r, &pre, &format!("{pre}.dropped")),
        ));
    }
    let flat = match (r.v.get("rss.https.small.hwm"), r.v.get("rss.https.big.hwm")) {
        (Some(a), Some(b)) => Val::Runs(vec![report::median(b) / report::median(a)]),
        _ => Val::Na("an HTTPS burst failed".into()),
    };
    rep.row(
        Row::new(
            "rss.https.flat",
            &format!("HTTPS: peak RSS {} / peak RSS {}", p.rss_big, p.rss_small),
            Unit::Ratio,
            Better::Lower,
            flat,
        )
        .goal(Goal::lt(1.1, "flat (< 1.1)")),
    );
}
