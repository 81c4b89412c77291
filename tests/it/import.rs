//! `event-notify import` end to end: real-looking provisioning files of each vendor (in
//! tests/import/, written from the vendors' published key lists, with comments, odd spacing,
//! entities, CDATA and unknown keys) imported by the real binary, the result checked with
//! `check`, and one event of each file driven through the real daemon to a receiver.

use crate::common;

use common::{run_cli, summary, Daemon, Receiver, TempDir, PATIENCE};
use std::process::Command;

const FAST: &str = r#""delivery": {"connect_timeout_ms": 500, "timeout_ms": 1500, "attempts": 5, "backoff_initial_ms": 50, "backoff_max_ms": 400, "shutdown_flush_ms": 2000}"#;

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/import/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Imports `text` (written to a file) with `args`; the exit code, stdout, stderr.
fn import(dir: &TempDir, name: &str, text: &str, args: &[&str]) -> common::CmdOutput {
    let file = dir.write(name, text);
    let mut all = vec!["import", file.to_str().unwrap()];
    all.extend_from_slice(args);
    run_cli(&all)
}

/// Imports `name` with its server pointed at `r`, merged into a base config with fast
/// delivery on `lo`; checks the result with `check`; returns (config, report).
fn import_for(r: &Receiver, name: &str) -> (String, String) {
    let dir = TempDir::new("import");
    let text = fixture(name).replace("crm.example.com", &r.host_port());
    let base = dir.write(
        "base.json",
        format!(r#"{{"device": {{"interface": "lo"}}, {FAST}, "events": {{}}}}"#),
    );
    let (code, out, err) = import(&dir, name, &text, &["--merge", base.to_str().unwrap()]);
    assert_eq!(code, 0, "import {name}: stdout {out}\nstderr {err}");
    let cfg = dir.write("config.json", &out);
    let (code, cout, cerr) = run_cli(&["check", "--config", cfg.to_str().unwrap()]);
    assert_eq!(
        code, 0,
        "check of the imported {name}: {cout} {cerr}\n{out}"
    );
    (out, err)
}

fn events(config: &str) -> serde_json::Map<String, serde_json::Value> {
    let v: serde_json::Value = serde_json::from_str(config).unwrap();
    v["events"].as_object().cloned().unwrap_or_default()
}

#[test]
fn yealink_cfg_imports_reports_and_delivers() {
    let r = Receiver::start();
    let (cfg, report) = import_for(&r, "yealink.cfg");
    let e = events(&cfg);
    let host = r.host_port();
    assert_eq!(
        e["incoming_call"],
        format!("http://{host}/yl/ring?from=$remote&name=$display_remote&id=$call_id&to=$local")
    );
    assert_eq!(
        e["booting_completed"],
        format!("http://{host}/yl/boot?mac=$mac&ip=$phone_ip&model=$product&fw=$program_version")
    );
    assert_eq!(
        e["registration"],
        format!("http://{host}/yl/reg?user=$active_user&host=$active_host")
    );
    assert_eq!(
        e["establish_call"],
        format!("http://{host}/yl/answer?id=$call_id&uri=$$active_url")
    );
    assert_eq!(
        e["dnd_on"],
        format!("http://{host}/yl/dnd?state=on&mac=$mac")
    );
    // Empty in the file: the event is off (merged: no entry).
    assert!(!e.contains_key("sign_off"), "{cfg}");
    assert_eq!(e.len(), 11, "{cfg}");
    for want in [
        "line 20: action_url.register_failed: skipped: a failed registration",
        "line 28: action_url.mute: skipped: no equivalent event",
        "line 29: action_url.busy_fwd_on: skipped: only always (unconditional) forwarding",
        "line 23: action_url.call_established: warning: $active_url",
        "line 21: action_url.incoming_call: note: $callerID written as $remote",
        "line 33: action_url.call_waiting_on: skipped",
        "6 other settings",
        "imported 12 events from a yealink file (1 of them off)",
    ] {
        assert!(report.contains(want), "missing {want:?} in:\n{report}");
    }
    assert!(!report.contains("s3cret"), "{report}");
    // Empty vendor keys with no equivalent are not noise.
    assert!(!report.contains("idle_to_busy"), "{report}");

    let d = Daemon::start(&cfg);
    d.emit_ok(&[
        "incoming_call",
        "call_id=yl-1",
        "remote=1002",
        "display_remote=Bob & Alice #2",
        "local=1001",
    ]);
    let got = r.wait_for(1, PATIENCE);
    assert_eq!(got.len(), 1, "{}", summary(&got));
    assert_eq!(
        got[0].target,
        "/yl/ring?from=1002&name=Bob%20%26%20Alice%20%232&id=yl-1&to=1001"
    );
}

#[test]
fn snom_xml_imports_reports_and_delivers() {
    let r = Receiver::start();
    let (cfg, report) = import_for(&r, "snom.xml");
    let e = events(&cfg);
    let host = r.host_port();
    assert_eq!(
        e["incoming_call"],
        format!(
            "http://{host}/snom/ring?from=$remote&name=$display_remote&id=$call_id&csta=$$csta_id"
        )
    );
    assert_eq!(
        e["registration"],
        format!("http://{host}/snom/logon?user=$active_user&host=$active_host")
    );
    assert_eq!(
        e["establish_call"],
        format!("http://{host}/snom/connected?id=$call_id")
    );
    assert_eq!(
        e["terminate_call"],
        format!("http://{host}/snom/end?id=$call_id&who=$display_remote")
    );
    assert_eq!(
        e["dnd_on"],
        format!("http://{host}/snom/dnd?on=1&line=$$user_name1")
    );
    assert_eq!(
        e["blind_transferring"],
        format!("http://{host}/snom/bxfer?id=$call_id")
    );
    assert!(!e.contains_key("dnd_off"), "{cfg}");
    for want in [
        "line 12: action_incoming_url: note: $call-id written as $call_id",
        "line 12: action_incoming_url: warning: $csta_id: no equivalent variable",
        "line 12: action_incoming_url: note: $remote: here it is the number",
        "line 17: action_dnd_on_url: warning: $user_name1: not a snom variable",
        "line 20: action_transfer: skipped: a transfer of either kind",
        "line 22: action_reg_failed: skipped",
        "line 23: action_custom_url: skipped: not a Snom action URL setting",
        "4 other settings",
    ] {
        assert!(report.contains(want), "missing {want:?} in:\n{report}");
    }
    assert!(!report.contains("s3cret"), "{report}");

    let d = Daemon::start(&cfg);
    d.emit_ok(&[
        "terminate_call",
        "call_id=sn-1",
        "display_remote=Zoë <boss>",
    ]);
    let got = r.wait_for(1, PATIENCE);
    assert_eq!(got.len(), 1, "{}", summary(&got));
    assert_eq!(got[0].target, "/snom/end?id=sn-1&who=Zo%C3%AB%20%3Cboss%3E");
}

#[test]
fn snom_text_imports_and_delivers() {
    let r = Receiver::start();
    let (cfg, report) = import_for(&r, "snom.htm");
    let e = events(&cfg);
    assert_eq!(e.len(), 4, "{cfg}");
    assert!(
        report.contains("imported 4 events from a snom file (0 of them off)"),
        "{report}"
    );
    let d = Daemon::start(&cfg);
    d.emit_ok(&[
        "outgoing_call",
        "call_id=st-1",
        "remote=200",
        "display_local=Front Desk",
    ]);
    let got = r.wait_for(1, PATIENCE);
    assert_eq!(got.len(), 1, "{}", summary(&got));
    assert_eq!(got[0].target, "/snomtxt/dial?to=200&who=Front%20Desk");
}

#[test]
fn grandstream_pvalues_import_report_and_deliver() {
    let r = Receiver::start();
    let (cfg, report) = import_for(&r, "grandstream.xml");
    let e = events(&cfg);
    let host = r.host_port();
    assert_eq!(
        e["incoming_call"],
        format!("{host}/gs/ring?from=$remote&name=$display_remote&dir=$calldirection&p=$product")
    );
    assert!(!e.contains_key("sign_off"), "{cfg}");
    assert_eq!(e.len(), 6, "{cfg}");
    for want in [
        "line 16: P8307: skipped: a URL with variables in a P-value that Grandstream's published Action URL table does not list",
        "line 21: P8312: skipped",
        "6 other settings",
    ] {
        assert!(report.contains(want), "missing {want:?} in:\n{report}");
    }
    assert!(!report.contains("P8375"), "{report}");

    let d = Daemon::start(&cfg);
    d.emit_ok(&[
        "call",
        "state=incoming",
        "call_id=gs-1",
        "remote=\"Carol\" <sip:1003@pbx.example.com>",
        "display_remote=Carol",
    ]);
    let got = r.wait_for(1, PATIENCE);
    assert_eq!(got.len(), 1, "{}", summary(&got));
    assert_eq!(got[0].path, "/gs/ring");
    assert_eq!(got[0].query("from"), Some("1003"));
    assert_eq!(got[0].query("dir"), Some("incoming"));
}

#[test]
fn grandstream_v2_items_import_and_deliver() {
    let r = Receiver::start();
    let (cfg, report) = import_for(&r, "grandstream-v2.xml");
    let e = events(&cfg);
    assert_eq!(e.len(), 1, "{cfg}");
    assert!(
        report.contains("line 11: actionUrl.establishedCall: skipped: a setting name whose meaning is not published"),
        "{report}"
    );
    let d = Daemon::start(&cfg);
    d.emit_ok(&["on_hook", "active_user=1001"]);
    let got = r.wait_for(1, PATIENCE);
    assert_eq!(got.len(), 1, "{}", summary(&got));
    assert_eq!(got[0].target, "/gs2/onhook?u=1001&t=x");
}

#[test]
fn merge_keeps_the_config_and_its_secrets_stay_out_of_the_report() {
    let dir = TempDir::new("import-merge");
    let base = dir.write(
        "base.json",
        r#"{"events": {"terminate_call": {"url": "http://crm.example/end", "username": "phone", "password": "pw-in-base"},
                       "action_incoming_url": "http://old.example/in"},
            "delivery": {"attempts": 4}, "device": {"language": "fr"}}"#,
    );
    let (code, out, err) = import(
        &dir,
        "y.cfg",
        "action_url.incoming_call = http://u:pw-in-url@new.example/in?r=$callerID\n",
        &["--merge", base.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["delivery"]["attempts"], 4);
    assert_eq!(v["device"]["language"], "fr");
    assert_eq!(v["events"]["terminate_call"]["password"], "pw-in-base");
    assert_eq!(
        v["events"]["incoming_call"],
        "http://u:pw-in-url@new.example/in?r=$remote"
    );
    assert!(v["events"].get("action_incoming_url").is_none(), "{out}");
    assert!(err.contains("incoming_call: replaces the entry"), "{err}");
    assert!(!err.contains("pw-in"), "{err}");
    // The merged file is a config the daemon's check accepts.
    let cfg = dir.write("c.json", &out);
    assert_eq!(run_cli(&["check", "--config", cfg.to_str().unwrap()]).0, 0);
}

#[test]
fn refusals_and_usage() {
    let dir = TempDir::new("import-bad");
    let (code, _, err) = import(&dir, "x.txt", "hello world\n", &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("give --from"), "{err}");
    let (code, _, err) = import(
        &dir,
        "x.cfg",
        "action_url.hold = http://h/x\n",
        &["--from", "cisco"],
    );
    assert_eq!(code, 2, "{err}");
    let (code, out, err) = import(
        &dir,
        "b.xml",
        "<settings><phone-settings>\n<action_incoming_url>x</phone-settings>",
        &[],
    );
    assert_eq!((code, out.as_str()), (1, ""), "{err}");
    assert!(err.contains("not well-formed XML: line 2"), "{err}");
    let big = format!(
        "#!version:1.0.0.1\n{}",
        "# padding padding padding\n".repeat(12_000)
    );
    let (code, _, err) = import(&dir, "big.cfg", &big, &[]);
    assert_eq!(code, 1);
    assert!(err.contains("larger than"), "{err}");
    let (code, _, err) = run_cli(&["import", "/nonexistent/file.cfg"]);
    assert_eq!(code, 1, "{err}");
    let (code, _, _) = run_cli(&["import"]);
    assert_eq!(code, 2);
    // A vendor file with no action URL at all is refused, not turned into an empty config.
    let (code, _, err) = import(
        &dir,
        "n.cfg",
        "#!version:1.0.0.1\naccount.1.enable = 1\n",
        &[],
    );
    assert_eq!(code, 1);
    assert!(err.contains("no yealink action URL setting"), "{err}");
}

#[test]
fn stdin_is_read_with_a_dash() {
    let dir = TempDir::new("import-stdin");
    let f = dir.write("in.cfg", "action_url.hold = http://h/hold?id=$call_id\n");
    // A file as stdin: the child cannot block on it, so a plain `output` is bounded.
    let out = Command::new(common::bin())
        .args(["import", "-", "--from=yealink"])
        .stdin(std::fs::File::open(&f).unwrap())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(events(&stdout)["hold_call"], "http://h/hold?id=$call_id");
}
