//! The report's rows for HTTPS and the libcurl peer (issue 15 items 1 and 3).

use super::build_report::{fig, flat_row, spec_rows, Spec, G};
use super::*;
use Better::{Higher, Lower};
use Unit::{Count, KiB, PerS, Ratio, Us};

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

/// Rows "the caller is blocked": after the latency section. The daemon's hand-over (the socket
/// client's write → the daemon's `OK`) beside the time libcurl's `curl_easy_perform` keeps the
/// firmware's event thread (the line written → its acknowledgement: the response was read).
#[rustfmt::skip]
const HANDOVER: [Spec; 4] = [
    ("handover.socket.p50", "caller blocked per event, plain HTTP, socket client p50", Us, Lower, "latency.socket", G::No,
        &[(LIBCURL, "handover.libcurl.p50", "latency.libcurl")]),
    ("handover.socket.p99", "caller blocked per event, plain HTTP, socket client p99", Us, Lower, "latency.socket", G::No,
        &[(LIBCURL, "handover.libcurl.p99", "latency.libcurl")]),
    ("https.handover.p50", "caller blocked per event, HTTPS, socket client p50", Us, Lower, "https.latency", G::No,
        &[(LIBCURL, "handover.libcurl_https.p50", "latency.libcurl_https")]),
    ("https.handover.p99", "caller blocked per event, HTTPS, socket client p99", Us, Lower, "https.latency", G::No,
        &[(LIBCURL, "handover.libcurl_https.p99", "latency.libcurl_https")]),
];

/// The socket client's latency split at the receiver's socket: the kernel's receive time of
/// the request (`SO_TIMESTAMPNS`), before the receiver's thread is scheduled to read it.
#[rustfmt::skip]
const KERNEL: [Spec; 4] = [
    ("latency.socket.kernel.p50", "socket client: request at the receiver's socket (kernel time) p50", Us, Lower, "latency.socket", G::No,
        &[(LIBCURL, "latency.libcurl.kernel.p50", "latency.libcurl")]),
    ("latency.socket.kernel.p99", "socket client: request at the receiver's socket (kernel time) p99", Us, Lower, "latency.socket", G::No,
        &[(LIBCURL, "latency.libcurl.kernel.p99", "latency.libcurl")]),
    ("latency.socket.wake.p50", "  then the receiver's thread wakes to read it (bench, not daemon) p50", Us, Lower, "latency.socket", G::No,
        &[(LIBCURL, "latency.libcurl.wake.p50", "latency.libcurl")]),
    ("latency.socket.wake.p99", "  then the receiver's thread wakes to read it (bench, not daemon) p99", Us, Lower, "latency.socket", G::No,
        &[(LIBCURL, "latency.libcurl.wake.p99", "latency.libcurl")]),
];

pub(crate) fn handover_rows(rep: &mut Report, r: &Runs) {
    spec_rows(rep, r, &KERNEL);
    spec_rows(rep, r, &HANDOVER);
}

/// Section "1b. HTTPS", up to the memory rows (which carry the burst sizes).
#[rustfmt::skip]
const HTTPS: [Spec; 18] = [
    ("receiver.tls.rps", "in-bench receiver over TLS alone: requests/s", PerS, Higher, "receiver.tls", G::No,
        &[("same, plain HTTP", "receiver.bench.rps", "receiver.bench")]),
    ("receiver.tls.p50", "in-bench receiver over TLS alone: round trip p50", Us, Lower, "receiver.tls", G::No, &[]),
    ("https.latency.p50", "HTTPS, socket client (persistent) p50", Us, Lower, "https.latency", G::No, &[(LIBCURL, "latency.libcurl_https.p50", "")]),
    ("https.latency.plain.p50", "  plain HTTP, alternating with it: p50", Us, Lower, "https.latency", G::No, &[]),
    ("https.latency.p99", "HTTPS, socket client (persistent) p99", Us, Lower, "https.latency", G::Lt(1000.0, "< 1 ms"), &[(LIBCURL, "latency.libcurl_https.p99", "")]),
    ("https.latency.plain.p99", "  plain HTTP, alternating with it: p99", Us, Lower, "https.latency", G::No, &[]),
    ("https.latency.max", "HTTPS, socket client (persistent) max", Us, Lower, "https.latency", G::No, &[(LIBCURL, "latency.libcurl_https.max", "")]),
    ("https.latency.plain.max", "  plain HTTP, alternating with it: max", Us, Lower, "https.latency", G::No, &[]),
    ("https.throughput", "HTTPS, socket client → daemon: notifications/s", PerS, Higher, "https.throughput", G::No, &[(LIBCURL, "throughput.libcurl_https", "")]),
    ("https.throughput.plain", "  plain HTTP, same step, same kind of receiver", PerS, Higher, "https.throughput", G::No, &[]),
    ("https.throughput.ratio", "  HTTPS / plain HTTP throughput", Ratio, Higher, "https.throughput", G::Ge(0.8, "≥ 0.80"), &[]),
    ("https.throughput.dropped", "  HTTPS burst: dropped", Count, Lower, "https.throughput", G::Eq(0.0, "0"), &[]),
    ("https.throughput.connections", "  HTTPS burst: TLS connections used", Count, Lower, "https.throughput", G::No,
        &[(LIBCURL, "throughput.libcurl_https.connections", "")]),
    ("https.cpu", "HTTPS: CPU per notification, daemon (all threads)", Us, Lower, "https.throughput", G::No, &[(LIBCURL, "cpu.libcurl_https", "")]),
    ("https.cpu.plain", "  plain HTTP, same step: CPU per notification, daemon", Us, Lower, "https.throughput", G::No, &[]),
    ("first.https", "first request of a fresh daemon, HTTPS (connect + handshake)", Us, Lower, "first", G::No, &[(LIBCURL, "first.libcurl_https", "")]),
    ("first.http", "first request of a fresh daemon, plain HTTP (connect)", Us, Lower, "first", G::No, &[(LIBCURL, "first.libcurl", "")]),
    ("rss.https.idle", "HTTPS: RSS idle (fresh daemon, KiB)", KiB, Lower, "rss.https.small", G::Lt(4096.0, "< 4 MiB"), &[]),
];

/// Section "1b. HTTPS": after the plain latency and throughput sections.
pub(crate) fn https_rows(rep: &mut Report, p: &Plan, r: &Runs) {
    rep.section(&format!(
        "1b. HTTPS to one receiver on loopback (the bench's CA in delivery.ca_file; keep-alive; peer: libcurl with CURLOPT_CAINFO); {} events per latency path, {} in the burst",
        p.lat_n, p.burst_n
    ));
    spec_rows(rep, r, &HTTPS);
    for (k, n) in [("small", p.rss_small), ("big", p.rss_big)] {
        let pre = format!("rss.https.{k}");
        let (hwm, dropped) = (format!("{pre}.hwm"), format!("{pre}.dropped"));
        let label = format!("HTTPS: peak RSS (VmHWM), burst of {n} unpaced");
        let mut row = Row::new(&hwm, &label, KiB, Lower, fig(r, &pre, &hwm))
            .goal(Goal::lt(4096.0, "< 4 MiB"));
        if k == "small" {
            row = row.peer(LIBCURL, fig(r, "", "rss.libcurl_https"));
        }
        rep.row(row);
        let label = format!("  HTTPS burst of {n}: dropped (outbox full, counted)");
        rep.row(Row::new(
            &dropped,
            &label,
            Count,
            Better::None,
            fig(r, &pre, &dropped),
        ));
    }
    flat_row(rep, r, p, "rss.https", "HTTPS: ", "an HTTPS burst failed");
}
