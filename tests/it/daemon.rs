//! The engine end to end: the real daemon process on loopback, driven by the real `emit`,
//! talking to a real HTTP receiver started by the test.

use crate::common;

use common::{run_cli, stat, summary, Daemon, Receiver, Reply, PATIENCE};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// Fast retry settings so the tests don't wait long.
const FAST: &str = r#""delivery": {"connect_timeout_ms": 500, "timeout_ms": 1500, "attempts": 5, "backoff_initial_ms": 50, "backoff_max_ms": 400, "shutdown_flush_ms": 3000}"#;

fn ok(out: common::CmdOutput) -> String {
    assert_eq!(
        out.0, 0,
        "command failed: stdout {:?} stderr {:?}",
        out.1, out.2
    );
    out.1
}

#[test]
fn a_call_reaches_the_receiver_with_every_variable_encoded() {
    let r = Receiver::start();
    let cfg = format!(
        r#"{{"events": {{
            "incoming_call": "{in_url}",
            "establish_call": "{est}",
            "terminate_call": {{"url": "{end}", "method": "POST",
                "body": "{{\"id\":\"$call_id\",\"secs\":$duration,\"who\":\"$display_remote\"}}", "content_type": "json"}},
            "missed_call": {{"url": "{missed}", "method": "POST", "body": "from=$remote&name=$display_remote"}}
         }},
         "device": {{"interface": "lo", "language": "de"}}, {FAST}}}"#,
        in_url = r.bare_url("/in?from=$remote&name=$display_remote&id=$call_id&ip=$phone_ip&mac=$mac&dir=$calldirection&local=$local&ev=$event&lang=$language"),
        est = r.bare_url("/est?id=${call_id}&d=$duration"),
        end = r.url("/end"),
        missed = r.url("/missed"),
    );
    let d = Daemon::start(&cfg);
    ok(d.emit(&[
        "call",
        "state=incoming",
        "call_id=a84b4c76",
        "remote=\"Bob\" <sip:1002@pbx.example>",
        "display_remote=Bob & Alice #2 ü😀",
        "local=sip:1001@pbx.example",
    ]));
    ok(d.emit(&["call", "state=confirmed", "call_id=a84b4c76"]));
    std::thread::sleep(Duration::from_millis(1100));
    ok(d.emit(&["call", "state=ended", "call_id=a84b4c76"]));
    // A call nobody answered: missed_call, then terminate_call.
    ok(d.emit(&[
        "call",
        "state=incoming",
        "call_id=m1",
        "remote=1003",
        "display_remote=Carol",
    ]));
    ok(d.emit(&["call", "state=ended", "call_id=m1"]));
    let got = r.wait_for(6, PATIENCE);
    assert_eq!(got.len(), 6, "{}", summary(&got));

    let inc = &got[0];
    assert_eq!(inc.method, "GET");
    assert_eq!(
        inc.target,
        "/in?from=1002&name=Bob%20%26%20Alice%20%232%20%C3%BC%F0%9F%98%80&id=a84b4c76&ip=127.0.0.1&mac=000000000000&dir=incoming&local=1001&ev=incoming_call&lang=de"
    );
    assert_eq!(inc.query("name"), Some("Bob & Alice #2 ü😀"));
    assert_eq!(got[1].target, "/est?id=a84b4c76&d=0");
    assert_eq!(got[2].method, "POST");
    assert_eq!(got[2].path, "/end");
    assert_eq!(got[2].header("content-type"), Some("application/json"));
    assert_eq!(
        got[2].body_text(),
        r#"{"id":"a84b4c76","secs":1,"who":"Bob & Alice #2 ü😀"}"#
    );
    assert_eq!(got[3].query("id"), Some("m1"));
    assert_eq!(got[4].path, "/missed");
    assert_eq!(
        got[4].header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        got[4].form(),
        vec![
            ("from".into(), "1003".into()),
            ("name".into(), "Carol".into())
        ]
    );
    assert_eq!(got[5].path, "/end");
    assert!(
        got[5].body_text().contains(r#""secs":0"#),
        "{}",
        got[5].body_text()
    );
    // One keep-alive connection carried them all.
    assert_eq!(r.connections(), 1, "{}", summary(&got));
    let s = d.status();
    assert_eq!(stat(&s, "delivered"), 6);
    assert!(
        s.contains("event incoming_call on derived=2 queued=2 delivered=2"),
        "{s}"
    );
}

#[test]
fn a_receiver_that_is_down_at_first_gets_every_notification_in_order() {
    let r = Receiver::down();
    let cfg = format!(
        r#"{{"events": {{"dnd_on": "{u}?n=on", "dnd_off": "{u}?n=off", "hold_call": "{u}?n=hold"}}, "delivery": {{"connect_timeout_ms": 300, "timeout_ms": 1000, "attempts": 0, "backoff_initial_ms": 50, "backoff_max_ms": 300}}}}"#,
        u = r.bare_url("/ev")
    );
    let d = Daemon::start(&cfg);
    for i in 0..10 {
        ok(d.emit(&[if i % 2 == 0 { "dnd_on" } else { "dnd_off" }]));
    }
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(r.count(), 0);
    let s = d.status();
    assert_eq!(stat(&s, "pending"), 10, "{s}");
    assert!(stat(&s, "retried") >= 2, "{s}");
    r.come_up();
    let got = r.wait_for(10, PATIENCE);
    let order: Vec<_> = got
        .iter()
        .map(|q| q.query("n").unwrap_or("?").to_string())
        .collect();
    assert_eq!(
        order,
        ["on", "off", "on", "off", "on", "off", "on", "off", "on", "off"]
    );
    r.assert_no_more_than(10, Duration::from_millis(300));
    let s = d.status();
    assert_eq!(stat(&s, "delivered"), 10, "{s}");
    assert_eq!(stat(&s, "dropped"), 0, "{s}");
}

#[test]
fn a_hanging_receiver_does_not_delay_another_destination() {
    let stuck = Receiver::builder().default_reply(Reply::Hang).start();
    let fine = Receiver::start();
    let cfg = format!(
        r#"{{"events": {{"incoming_call": "{a}", "dnd_on": "{b}", "dnd_off": "{b2}"}}, "delivery": {{"timeout_ms": 5000, "attempts": 2, "backoff_initial_ms": 100, "backoff_max_ms": 200}}}}"#,
        a = stuck.bare_url("/slow?id=$call_id"),
        b = fine.bare_url("/fast?e=on"),
        b2 = fine.bare_url("/fast?e=off"),
    );
    let d = Daemon::start(&cfg);
    ok(d.emit(&["incoming_call", "call_id=x1"]));
    ok(d.emit(&["incoming_call", "call_id=x2"]));
    assert_eq!(stuck.wait_for(1, PATIENCE).len(), 1);
    let t0 = Instant::now();
    ok(d.emit(&["dnd_on"]));
    ok(d.emit(&["dnd_off"]));
    let got = fine.wait_for(2, PATIENCE);
    let took = t0.elapsed();
    assert_eq!(got[0].target, "/fast?e=on");
    assert_eq!(got[1].target, "/fast?e=off");
    assert!(
        took < Duration::from_millis(1000),
        "the free destination waited {took:?}"
    );
    // The stuck one's second notification waits behind its first (order per destination).
    assert_eq!(stuck.count(), 1);
}

#[test]
fn a_503_is_retried_and_then_delivered_once() {
    let r = Receiver::with_statuses([503, 503, 200]);
    let cfg = format!(
        r#"{{"events": {{"registration": "{}"}}, {FAST}}}"#,
        r.bare_url("/reg?u=$active_user&h=$active_host")
    );
    let d = Daemon::start(&cfg);
    ok(d.emit(&[
        "register",
        "state=ok",
        "active_user=sip:1001@pbx.example",
        "active_host=pbx.example",
    ]));
    let got = r.wait_for(3, PATIENCE);
    assert!(
        got.iter().all(|q| q.target == "/reg?u=1001&h=pbx.example"),
        "{}",
        summary(&got)
    );
    r.assert_no_more_than(3, Duration::from_millis(600));
    let s = d.status();
    assert_eq!(stat(&s, "delivered"), 1, "{s}");
    assert_eq!(stat(&s, "retried"), 2, "{s}");
    assert!(s.contains("event registration on derived=1 queued=1 delivered=1 retried=2 failed=0 dropped=0 last=200 attempt=3"), "{s}");
}

#[test]
fn a_404_is_not_retried() {
    let r = Receiver::with_statuses([404]);
    let cfg = format!(
        r#"{{"events": {{"dnd_on": "{}"}}, {FAST}}}"#,
        r.bare_url("/nope")
    );
    let d = Daemon::start(&cfg);
    ok(d.emit(&["dnd_on"]));
    r.wait_for(1, PATIENCE);
    r.assert_no_more_than(1, Duration::from_millis(700));
    let s = d.status();
    assert_eq!(stat(&s, "failed"), 1, "{s}");
    assert_eq!(stat(&s, "retried"), 0, "{s}");
    assert!(s.contains("last=404 attempt=1"), "{s}");
    assert!(
        d.wait_log("dnd_on: gave up after 1 attempt(s): 404", PATIENCE),
        "{}",
        d.log()
    );
}

#[test]
fn outbox_overflow_drops_the_oldest_and_counts_it() {
    let r = Receiver::down();
    let cfg = format!(
        r#"{{"events": {{"dnd_on": "{u}?n=$timestamp", "dnd_off": "{u}?n=off"}}, "delivery": {{"attempts": 0, "backoff_initial_ms": 60000, "backoff_max_ms": 60000}}}}"#,
        u = r.bare_url("/x")
    );
    let d = Daemon::start(&cfg);
    let status = d.status();
    let cap = stat(&status, "outbox_capacity");
    // One socket connection, many lines (what a SIP stack would do), each answered before the
    // next (thousands of unread answers would get the client disconnected).
    let s = UnixStream::connect(d.socket_path()).unwrap();
    let mut answers = std::io::BufReader::new(s.try_clone().unwrap());
    let mut s = s;
    let n = cap + 25;
    for i in 0..n {
        let verb = if i % 2 == 0 { "dnd_on" } else { "dnd_off" };
        s.write_all(format!("EN1 {verb}\n").as_bytes()).unwrap();
        let mut answer = String::new();
        std::io::BufRead::read_line(&mut answers, &mut answer).unwrap();
        assert!(answer.starts_with("OK "), "{answer}");
    }
    let st = d.status();
    assert_eq!(stat(&st, "pending"), cap, "{st}");
    assert_eq!(stat(&st, "dropped"), 25, "{st}");
    assert!(d.wait_log("outbox full: dropped a dnd_o", PATIENCE));
    // Still alive and serving.
    ok(d.emit(&["dnd_on"]));
}

#[test]
fn an_invalid_config_at_start_exits_1_with_every_error() {
    let mut d = Daemon::spawn(
        r#"{"events": {"ringing": "h/x", "incoming_call": "ftp://h/x", "dnd_on": "h/x?a=${nope"}, "delivery": {"attempts": "many"}}"#,
        &[],
    );
    let status = d.wait_exit(PATIENCE).expect("daemon should exit");
    assert_eq!(status.code(), Some(1));
    let log = d.log();
    for want in [
        "events.ringing: unknown event",
        "events.incoming_call.url: column 1",
        "events.dnd_on.url: column 7",
        "delivery.attempts",
    ] {
        assert!(log.contains(want), "missing {want:?} in:\n{log}");
    }
    // `check` says the same, one line per problem, exit 1.
    let (code, out, _) = run_cli(&["check", "--config", d.config_path().to_str().unwrap()]);
    assert_eq!(code, 1);
    assert_eq!(
        out.lines().filter(|l| l.contains(": error: ")).count(),
        4,
        "{out}"
    );
}

#[test]
fn an_invalid_config_at_reload_keeps_the_running_one() {
    let r = Receiver::start();
    let good = format!(
        r#"{{"events": {{"dnd_on": "{}"}}, {FAST}}}"#,
        r.bare_url("/v1")
    );
    let d = Daemon::start(&good);
    // Broken file: refused on change (inotify) and on SIGHUP; the old config keeps working.
    d.write_config(r#"{"events": {"dnd_on": "gopher://h"}"#);
    assert!(d.wait_log("reload refused", PATIENCE), "{}", d.log());
    d.sighup();
    ok(d.emit(&["dnd_on"]));
    assert_eq!(r.wait_for(1, PATIENCE)[0].target, "/v1");
    let s = d.status();
    assert!(stat(&s, "reload_errors") >= 2, "{s}");
    // A good file is taken on change.
    d.write_config(&format!(
        r#"{{"events": {{"dnd_off": "{}"}}, {FAST}}}"#,
        r.bare_url("/v2")
    ));
    assert!(d.wait_log("config reloaded", PATIENCE), "{}", d.log());
    ok(d.emit(&["dnd_off"]));
    assert_eq!(r.wait_for(2, PATIENCE)[1].target, "/v2");
}

#[test]
fn malformed_socket_messages_are_refused_counted_and_nothing_is_lost() {
    let r = Receiver::down();
    let cfg = format!(
        r#"{{"events": {{"dnd_on": "{}"}}, {FAST}}}"#,
        r.bare_url("/q")
    );
    let d = Daemon::start(&cfg);
    ok(d.emit(&["dnd_on"])); // queued while the receiver is down
    let mut s = UnixStream::connect(d.socket_path()).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    let bad: Vec<Vec<u8>> = vec![
        b"hello\n".to_vec(),
        b"EN1\n".to_vec(),
        b"EN1 ringing\n".to_vec(),
        b"EN1 call call_id=1\n".to_vec(),
        b"EN1 dnd_on colour=red\n".to_vec(),
        b"EN1 dnd_on remote=%zz\n".to_vec(),
        b"EN1 dnd_on \xff\xfe\n".to_vec(),
        b"EN1 dnd_on \x01\n".to_vec(),
        [
            b"EN1 dnd_on remote=".to_vec(),
            vec![b'a'; 70_000],
            b"\n".to_vec(),
        ]
        .concat(),
    ];
    let mut answers = String::new();
    for b in &bad {
        s.write_all(b).unwrap();
    }
    let mut buf = [0u8; 1024];
    while answers.lines().count() < bad.len() {
        let k = s.read(&mut buf).unwrap();
        assert!(k > 0, "daemon closed: {answers}");
        answers.push_str(&String::from_utf8_lossy(&buf[..k]));
    }
    let codes: Vec<_> = answers
        .lines()
        .map(|l| l.split(' ').take(2).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        codes,
        [
            "ERR bad-version",
            "ERR no-verb",
            "ERR unknown-verb",
            "ERR missing-state",
            "ERR unknown-field",
            "ERR bad-escape",
            "ERR not-utf8",
            "ERR control-char",
            "ERR too-long"
        ]
    );
    // A client that sends garbage and disconnects mid-line.
    let mut s2 = UnixStream::connect(d.socket_path()).unwrap();
    s2.write_all(b"EN1 dnd_o").unwrap();
    drop(s2);
    let st = d.status();
    assert_eq!(stat(&st, "refused"), 9, "{st}");
    assert_eq!(stat(&st, "pending"), 1, "{st}");
    assert!(d
        .log()
        .contains("refused a socket message: request does not start with the version word EN1"));
    // The notification queued before the garbage still arrives.
    r.come_up();
    assert_eq!(r.wait_for(1, PATIENCE)[0].target, "/q");
    // And emit refuses locally what the daemon would refuse, with exit 1; 2 for usage; 3 when down.
    assert_eq!(d.emit(&["ringing"]).0, 1);
    assert_eq!(d.emit(&["dnd_on", "remote"]).0, 2);
    assert_eq!(
        run_cli(&["emit", "dnd_on", "--socket", "/nonexistent/x.sock"]).0,
        3
    );
    assert_eq!(run_cli(&["status", "--socket", "/nonexistent/x.sock"]).0, 3);
}

#[test]
fn a_password_never_appears_in_any_output_or_log() {
    const SECRET: &str = "Sup3rS3cretPw";
    let r = Receiver::with_statuses([503, 200, 200]);
    let cfg = format!(
        r#"{{"events": {{
            "dnd_on": "http://phone:{SECRET}@{hp}/dnd?ip=$phone_ip",
            "terminate_call": {{"url": "{hp}/end?id=$call_id", "method": "POST", "body": "x=$call_id", "username": "crm", "password": "{SECRET}"}},
            "hold_call": "http://bad:{SECRET}@/x"
         }}, {FAST}}}"#,
        hp = r.host_port()
    );
    // check refuses the broken hold_call URL without echoing the password.
    let dir = common::TempDir::new("secret");
    let bad_path = dir.write("bad.json", &cfg);
    let (code, out, err) = run_cli(&["check", "--config", bad_path.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(!out.contains(SECRET) && !err.contains(SECRET), "{out}{err}");

    let cfg = cfg.replace(
        &format!(r#""hold_call": "http://bad:{SECRET}@/x""#),
        r#""hold_call": """#,
    );
    let d = Daemon::spawn_env(&cfg, &[], &[("EVENT_NOTIFY_LOG", "trace")]);
    let mut d = d;
    d.wait_ready(PATIENCE);
    let mut outputs = Vec::new();
    outputs.push(d.emit(&["dnd_on"]));
    outputs.push(d.emit(&["call", "state=calling", "call_id=c9", "remote=1002"]));
    outputs.push(d.emit(&["call", "state=ended", "call_id=c9"]));
    let got = r.wait_for(3, PATIENCE);
    assert_eq!(got[0].basic_auth(), Some(("phone".into(), SECRET.into())));
    assert_eq!(got[1].basic_auth(), Some(("phone".into(), SECRET.into())));
    assert_eq!(got[2].basic_auth(), Some(("crm".into(), SECRET.into())));
    assert!(!got[0].target.contains(SECRET));
    outputs.push(d.cli("status", &[]));
    let conf = d.config_path().to_str().unwrap().to_string();
    outputs.push(run_cli(&["expand", "--config", &conf, "dnd_on"]));
    outputs.push(run_cli(&[
        "expand",
        "--config",
        &conf,
        "terminate_call",
        "call_id=z",
    ]));
    outputs.push(run_cli(&["check", "--config", &conf]));
    d.sighup();
    assert!(d.wait_log("config reloaded", PATIENCE));
    d.sigterm();
    d.wait_exit(PATIENCE).expect("exit");
    for (code, out, err) in &outputs {
        assert_eq!(*code, 0, "{out}{err}");
        assert!(
            !out.contains(SECRET) && !err.contains(SECRET),
            "leaked in: {out}{err}"
        );
    }
    assert!(
        outputs[4]
            .1
            .contains("Authorization: Basic phone:*** (password masked)"),
        "{}",
        outputs[4].1
    );
    let log = d.log();
    assert!(
        log.contains("retry in"),
        "trace log should show the retry: {log}"
    );
    assert!(!log.contains(SECRET), "leaked in the log:\n{log}");
}

#[test]
fn https_with_a_ca_the_test_made() {
    let r = Receiver::start_tls();
    let cfg = format!(
        r#"{{"events": {{"incoming_call": "{}"}}, "delivery": {{"ca_file": "{}", "attempts": 2, "backoff_initial_ms": 50, "backoff_max_ms": 100}}}}"#,
        r.url("/secure?id=$call_id")
            .replace("127.0.0.1", "localhost"),
        r.ca_file().display()
    );
    let d = Daemon::start(&cfg);
    ok(d.emit(&["incoming_call", "call_id=t1"]));
    let got = r.wait_for(1, PATIENCE);
    assert!(got[0].tls);
    assert_eq!(got[0].target, "/secure?id=t1");
    // Without the CA, the certificate is not trusted: a TLS failure, not retried, never delivered.
    let cfg2 = format!(
        r#"{{"events": {{"incoming_call": "{}"}}, {FAST}}}"#,
        r.url("/untrusted")
    );
    let d2 = Daemon::start(&cfg2);
    ok(d2.emit(&["incoming_call", "call_id=t2"]));
    assert!(
        d2.wait_log("gave up after 1 attempt(s): tls-error", PATIENCE),
        "{}",
        d2.log()
    );
    assert_eq!(r.count(), 1);
}

#[test]
fn sigterm_flushes_the_outbox_within_its_bound() {
    let r = Receiver::builder()
        .default_reply(Reply::Delayed(200, Duration::from_millis(100)))
        .start();
    let cfg = format!(
        r#"{{"events": {{"dnd_on": "{u}?a", "dnd_off": "{u}?b"}}, {FAST}}}"#,
        u = r.bare_url("/f")
    );
    let mut d = Daemon::start(&cfg);
    for _ in 0..3 {
        ok(d.emit(&["dnd_on"]));
        ok(d.emit(&["dnd_off"]));
    }
    d.sigterm();
    let status = d.wait_exit(PATIENCE).expect("exit");
    assert_eq!(status.code(), Some(0));
    assert_eq!(r.count(), 6, "{}", summary(&r.requests()));
    assert!(d.log().contains("stopped: outbox empty"), "{}", d.log());
    assert!(!d.socket_path().exists());

    // A receiver that never answers: SIGTERM gives up after shutdown_flush_ms, not later.
    let stuck = Receiver::builder().default_reply(Reply::Hang).start();
    let cfg = format!(
        r#"{{"events": {{"dnd_on": "{}"}}, "delivery": {{"timeout_ms": 30000, "shutdown_flush_ms": 500}}}}"#,
        stuck.bare_url("/h")
    );
    let mut d = Daemon::start(&cfg);
    ok(d.emit(&["dnd_on"]));
    stuck.wait_for(1, PATIENCE);
    let t0 = Instant::now();
    d.sigterm();
    d.wait_exit(PATIENCE).expect("exit");
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t0.elapsed()
    );
    assert!(
        d.log()
            .contains("stopping with 1 notification(s) not delivered"),
        "{}",
        d.log()
    );
}

#[test]
fn booting_completed_is_retried_until_it_can_be_sent() {
    let r = Receiver::down();
    let cfg = format!(
        r#"{{"events": {{"booting_completed": "{}"}}, "device": {{"interface": "lo"}}, "delivery": {{"attempts": 1, "connect_timeout_ms": 200, "backoff_initial_ms": 50, "backoff_max_ms": 200}}}}"#,
        r.bare_url("/boot?ip=$phone_ip&mac=$mac&p=$product")
    );
    let d = Daemon::start(&cfg);
    ok(d.emit(&["boot"]));
    assert!(d.wait_log("attempt 3 failed", PATIENCE), "{}", d.log());
    r.come_up();
    let got = r.wait_for(1, PATIENCE);
    assert_eq!(got[0].target, "/boot?ip=127.0.0.1&mac=000000000000&p=");
    // Once per boot: a second report derives nothing.
    assert!(d.emit(&["boot"]).1.contains("derived=0"));
}

#[test]
fn board_identity_and_direct_event_overrides() {
    let r = Receiver::start();
    let dir = common::TempDir::new("board");
    let build_prop = dir.write(
        "build.prop",
        "ro.product=x\nro.build.version.incremental=1.0.3.77\n",
    );
    let board = dir.write(
        "board.json",
        format!(
            r#"{{"model": "GXV3370", "product": "GXV3370", "hardware_version": "V1.2A", "program_version": "1.0.1.28",
                "program_version_file": "{}", "program_version_key": "ro.build.version.incremental", "interface": "lo"}}"#,
            build_prop.display()
        ),
    );
    let cfg = format!(
        r#"{{"events": {{"dnd_on": "{}"}}}}"#,
        r.bare_url(
            "/id?p=$product&hw=$hardware_version&fw=$program_version&ip=$phone_ip&lang=$language"
        )
    );
    let d = Daemon::start_with(&cfg, &["--board", board.to_str().unwrap()]);
    ok(d.emit(&["dnd_on"]));
    ok(d.emit(&["dnd_on", "phone_ip=10.9.9.9", "product=Other"]));
    ok(d.emit(&["dnd_on"]));
    let got = r.wait_for(3, PATIENCE);
    assert_eq!(
        got[0].target,
        "/id?p=GXV3370&hw=V1.2A&fw=1.0.3.77&ip=127.0.0.1&lang=en"
    );
    assert_eq!(
        got[1].target,
        "/id?p=Other&hw=V1.2A&fw=1.0.3.77&ip=10.9.9.9&lang=en"
    );
    assert_eq!(got[2].target, got[0].target);
}

#[test]
fn expand_check_events_and_variables_commands() {
    let dir = common::TempDir::new("cli");
    let cfg = dir.write(
        "c.json",
        r#"{"events": {"Incoming Call": "192.168.5.10:8080/in?from=$remote&x=$foo", "call_terminated": {"url": "https://crm.example/end", "method": "POST", "body": "{\"d\":$duration}", "content_type": "json"}}}"#,
    );
    let c = cfg.to_str().unwrap();
    let (code, out, _) = run_cli(&[
        "expand",
        "--config",
        c,
        "incoming_call",
        "remote=Bob & Alice",
    ]);
    assert_eq!(code, 0);
    assert_eq!(
        out.lines().next(),
        Some("GET http://192.168.5.10:8080/in?from=Bob%20%26%20Alice&x=$foo")
    );
    let (code, out, _) = run_cli(&["expand", "--config", c, "terminate_call", "duration=61"]);
    assert_eq!(code, 0);
    // The delivery id lines stand between the request line and the body.
    assert!(
        out.starts_with("POST https://crm.example/end\nX-Event-Notify-Id: "),
        "{out}"
    );
    assert!(
        out.ends_with("\nContent-Type: application/json\n\n{\"d\":61}\n"),
        "{out}"
    );
    assert_eq!(run_cli(&["expand", "--config", c, "ringing"]).0, 1);
    assert_eq!(run_cli(&["expand", "--config", c, "dnd_on"]).0, 1);
    assert_eq!(
        run_cli(&["expand", "--config", c, "incoming_call", "colour=red"]).0,
        1
    );
    assert_eq!(run_cli(&["expand", "incoming_call"]).0, 2);
    let (code, out, _) = run_cli(&["check", "--config", c]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(
            "warning: events.Incoming Call.url: column 37: unknown variable $foo is sent as typed"
        ),
        "{out}"
    );
    assert!(out.contains("ok: 2 of 20 events on"), "{out}");
    let (code, out, _) = run_cli(&["events"]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 20);
    assert!(
        out.lines().nth(2).unwrap().starts_with("establish_call")
            && out.contains("call_established")
    );
    let (code, out, _) = run_cli(&["variables"]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 18);
    assert!(out.contains("$call_id") && out.contains("$call-id"));
    assert!(out.contains("$delivery_id"));
    for cmd in [
        "run",
        "emit",
        "expand",
        "check",
        "status",
        "listen",
        "events",
        "variables",
    ] {
        let (code, out, _) = run_cli(&[cmd, "--help"]);
        assert_eq!(code, 0, "{cmd} --help");
        assert!(out.contains("usage"), "{cmd} --help: {out}");
    }
    assert_eq!(run_cli(&["frobnicate"]).0, 2);
    assert_eq!(run_cli(&["run", "--bogus"]).0, 2);
}

#[test]
fn a_missing_config_starts_with_everything_off_and_is_taken_when_written() {
    let r = Receiver::start();
    let dir = common::TempDir::new("firstboot");
    let later = dir.join("config.json");
    // The helper writes its own config; the last --config wins, and names a file not there yet.
    let d = Daemon::start_with("{}", &["--config", later.to_str().unwrap()]);
    assert!(d.log().contains("does not exist yet"), "{}", d.log());
    assert!(d.emit(&["dnd_on"]).1.contains("queued=0"));
    dir.write(
        "config.json",
        format!(r#"{{"events": {{"dnd_on": "{}"}}}}"#, r.bare_url("/first")),
    );
    assert!(d.wait_log("config reloaded", PATIENCE), "{}", d.log());
    ok(d.emit(&["dnd_on", "phone_ip=1"]));
    ok(d.emit(&["dnd_off"]));
    ok(d.emit(&["dnd_on"]));
    assert_eq!(
        r.wait_for(2, PATIENCE)
            .iter()
            .map(|q| q.target.as_str())
            .collect::<Vec<_>>(),
        ["/first", "/first"]
    );
}
