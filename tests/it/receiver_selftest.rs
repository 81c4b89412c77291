//! The test helpers of `tests/common` proven with plain std clients, before other tests rely on
//! them.

use crate::common;

use common::*;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SHORT: Duration = Duration::from_secs(5);

fn connect(r: &Receiver) -> TcpStream {
    let s = TcpStream::connect(r.addr()).expect("connect");
    s.set_read_timeout(Some(SHORT)).expect("timeout");
    s
}

fn get(s: &mut TcpStream, target: &str) -> String {
    s.write_all(format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
        .expect("send");
    read_answer_head(s)
}

/// Asserts the server closed `s` (end of stream or reset), not merely that nothing came in time.
fn assert_closed(s: &mut TcpStream) {
    s.set_read_timeout(Some(SHORT)).unwrap();
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        other => panic!("expected the connection closed, got {other:?}"),
    }
}

/// Asserts nothing arrives on `s` for `window` (and it is not closed either).
fn assert_silent(s: &mut TcpStream, window: Duration) {
    s.set_read_timeout(Some(window)).unwrap();
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("expected silence, got {other:?}"),
    }
}

fn status_of(answer: &str) -> u16 {
    answer
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {answer:?}"))
}

#[test]
fn records_requests_and_reuses_connections() {
    let r = Receiver::start();
    let mut s = connect(&r);
    // "phone:s3cret"
    s.write_all(
        b"GET /in?from=1002&name=Bob%20%26%20Alice%20%232&x=a+b HTTP/1.1\r\nHost: t\r\n\
Authorization: Basic cGhvbmU6czNjcmV0\r\n\r\n",
    )
    .unwrap();
    assert_eq!(
        read_answer_head(&mut s),
        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    );
    s.write_all(
        b"POST /end HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\n\
Content-Length: 19\r\n\r\nid=a84b&name=B+%26A",
    )
    .unwrap();
    assert_eq!(status_of(&read_answer_head(&mut s)), 200);

    let got = r.wait_for(2, SHORT);
    assert_eq!(got.len(), 2);
    let first = &got[0];
    assert_eq!(first.method, "GET");
    assert_eq!(
        first.target,
        "/in?from=1002&name=Bob%20%26%20Alice%20%232&x=a+b"
    );
    assert_eq!(first.path, "/in");
    assert_eq!(first.query("from"), Some("1002"));
    assert_eq!(first.query("name"), Some("Bob & Alice #2"));
    assert_eq!(first.query("x"), Some("a b"));
    assert_eq!(first.header("HOST"), Some("t"));
    assert_eq!(
        first.basic_auth(),
        Some(("phone".to_string(), "s3cret".to_string()))
    );
    assert!(!first.tls);
    let second = &got[1];
    assert_eq!(second.method, "POST");
    assert_eq!(
        second.form(),
        vec![
            ("id".to_string(), "a84b".to_string()),
            ("name".to_string(), "B &A".to_string())
        ]
    );
    assert_eq!(second.body_text(), "id=a84b&name=B+%26A");
    assert!(second.at >= first.at);
    // Both on one kept-alive connection.
    assert_eq!((first.connection, second.connection), (1, 1));
    assert_eq!(r.connections(), 1);

    let mut other = connect(&r);
    assert_eq!(status_of(&get(&mut other, "/again")), 200);
    assert_eq!(r.wait_for(3, SHORT)[2].connection, 2);
    assert_eq!(r.connections(), 2);
}

#[test]
fn connection_close_is_honoured() {
    let r = Receiver::start();
    let answer = http_exchange(r.addr(), b"GET /once HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_eq!(
        answer,
        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    // HTTP/1.0 without keep-alive closes too.
    let answer = http_exchange(r.addr(), b"GET /old HTTP/1.0\r\n\r\n");
    assert!(answer.ends_with("Connection: close\r\n\r\n"), "{answer:?}");
}

#[test]
fn scripted_statuses_then_default() {
    let r = Receiver::with_statuses([503, 429]);
    let mut s = connect(&r);
    let mut seen = Vec::new();
    for i in 0..4 {
        seen.push(status_of(&get(&mut s, &format!("/n{i}"))));
    }
    assert_eq!(seen, [503, 429, 200, 200]);
    r.set_default(Reply::Status(204));
    r.script([Reply::Status(500)]);
    assert_eq!(status_of(&get(&mut s, "/a")), 500);
    assert_eq!(status_of(&get(&mut s, "/b")), 204);
    // Error statuses do not close a kept-alive connection.
    assert_eq!(r.connections(), 1);
    assert_eq!(r.count(), 6);
}

#[test]
fn handler_decides_per_request() {
    let r = Receiver::start();
    r.set_handler(|req| {
        if req.query("fail") == Some("1") {
            Reply::Status(404)
        } else {
            Reply::Status(201)
        }
    });
    let mut s = connect(&r);
    assert_eq!(status_of(&get(&mut s, "/x?fail=1")), 404);
    assert_eq!(status_of(&get(&mut s, "/x?fail=0")), 201);
}

#[test]
fn hang_does_not_block_other_connections() {
    let r = Receiver::builder().replies([Reply::Hang]).start();
    let mut hung = connect(&r);
    hung.write_all(b"GET /hang HTTP/1.1\r\n\r\n").unwrap();
    r.wait_for(1, SHORT);
    assert_silent(&mut hung, Duration::from_millis(300));

    // Another connection is answered while the first one still hangs.
    let mut other = connect(&r);
    assert_eq!(status_of(&get(&mut other, "/other")), 200);
    assert_silent(&mut hung, Duration::from_millis(100));

    // Released: the hanging connection is closed without an answer.
    r.release();
    assert_closed(&mut hung);
    let paths: Vec<String> = r.requests().into_iter().map(|q| q.path).collect();
    assert_eq!(paths, ["/hang", "/other"]);
}

#[test]
fn dropping_the_receiver_ends_a_hang() {
    let r = Receiver::builder().default_reply(Reply::Hang).start();
    let mut hung = connect(&r);
    hung.write_all(b"GET /hang HTTP/1.1\r\n\r\n").unwrap();
    r.wait_for(1, SHORT);
    drop(r);
    assert_closed(&mut hung);
}

#[test]
fn down_then_come_up_on_the_same_port() {
    let r = Receiver::down();
    let addr = r.addr();
    let refused = TcpStream::connect(addr).expect_err("nothing listens yet");
    assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);

    r.come_up();
    assert_eq!(r.addr(), addr);
    let mut s = connect(&r);
    assert_eq!(status_of(&get(&mut s, "/up")), 200);

    // Going down refuses new connections and cuts the open one.
    r.go_down();
    assert_eq!(
        TcpStream::connect(addr).expect_err("down again").kind(),
        ErrorKind::ConnectionRefused
    );
    assert_closed(&mut s);

    r.come_up();
    let mut s = connect(&r);
    assert_eq!(status_of(&get(&mut s, "/back")), 200);
    let paths: Vec<String> = r.requests().into_iter().map(|q| q.path).collect();
    assert_eq!(paths, ["/up", "/back"]);
    assert_eq!(r.connections(), 2);
}

#[test]
fn delayed_reply_waits_without_blocking_others() {
    // Long enough that a loaded machine still answers the fast one well within it.
    let delay = Duration::from_millis(1500);
    let r = Receiver::builder()
        .replies([Reply::Delayed(202, delay)])
        .start();
    let mut slow = connect(&r);
    let started = Instant::now();
    slow.write_all(b"GET /slow HTTP/1.1\r\n\r\n").unwrap();
    r.wait_for(1, SHORT);
    let mut fast = connect(&r);
    assert_eq!(status_of(&get(&mut fast, "/fast")), 200);
    assert!(
        started.elapsed() < delay,
        "the fast one waited for the slow one"
    );
    assert_eq!(status_of(&read_answer_head(&mut slow)), 202);
    assert!(started.elapsed() >= delay);
}

#[test]
fn close_and_raw_replies() {
    let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello".to_vec();
    let r = Receiver::builder()
        .replies([Reply::Close, Reply::Raw(raw.clone())])
        .start();
    assert_eq!(http_exchange(r.addr(), b"GET /close HTTP/1.1\r\n\r\n"), "");
    assert_eq!(
        http_exchange(r.addr(), b"GET /raw HTTP/1.1\r\n\r\n").as_bytes(),
        &raw[..]
    );
    assert_eq!(r.count(), 2);
}

#[test]
fn malformed_requests_get_400_and_are_not_recorded() {
    let r = Receiver::start();
    let answer = http_exchange(r.addr(), b"NOT HTTP AT ALL\r\n\r\n");
    assert!(
        answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{answer:?}"
    );
    assert_eq!(r.count(), 0);
}

#[test]
fn chunked_and_continue_bodies_are_recorded() {
    let r = Receiver::start();
    let mut s = connect(&r);
    s.write_all(
        b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
    )
    .unwrap();
    assert_eq!(status_of(&read_answer_head(&mut s)), 200);
    s.write_all(b"POST /e HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
        .unwrap();
    assert_eq!(read_answer_head(&mut s), "HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(b"{}").unwrap();
    assert_eq!(status_of(&read_answer_head(&mut s)), 200);
    let got = r.wait_for(2, SHORT);
    assert_eq!(got[0].body, b"abcde");
    assert_eq!(got[1].body, b"{}");
}

#[test]
#[should_panic(expected = "expected 2 requests")]
fn wait_for_panics_with_what_arrived() {
    let r = Receiver::start();
    let mut s = connect(&r);
    get(&mut s, "/only-one");
    r.wait_for(2, Duration::from_millis(200));
}

#[test]
fn assert_no_more_than_sees_extra_requests() {
    let r = Receiver::start();
    let mut s = connect(&r);
    get(&mut s, "/one");
    r.assert_no_more_than(1, Duration::from_millis(100));
    get(&mut s, "/two");
    let extra = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        r.assert_no_more_than(1, Duration::from_millis(100))
    }));
    assert!(extra.is_err(), "a second request must fail the assertion");
}

fn tls_client(
    r: &Receiver,
    config: Arc<rustls::ClientConfig>,
    name: &str,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let server_name = rustls::pki_types::ServerName::try_from(name.to_string()).expect("name");
    let conn = rustls::ClientConnection::new(config, server_name).expect("client connection");
    rustls::StreamOwned::new(conn, connect(r))
}

#[test]
fn tls_handshake_succeeds_against_the_generated_ca() {
    let r = Receiver::start_tls();
    assert!(r.url("/x").starts_with("https://127.0.0.1:"));
    let pem = std::fs::read_to_string(r.ca_file()).expect("CA file");
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");

    for name in ["127.0.0.1", "localhost"] {
        let mut tls = tls_client(&r, r.ca().client_config(), name);
        tls.write_all(b"GET /secure?who=me HTTP/1.1\r\nHost: t\r\n\r\n")
            .expect("TLS write");
        assert_eq!(status_of(&read_answer_head(&mut tls)), 200);
        // Keep-alive over TLS as well.
        tls.write_all(b"GET /again HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        assert_eq!(status_of(&read_answer_head(&mut tls)), 200);
    }
    let got = r.wait_for(4, SHORT);
    assert!(got.iter().all(|q| q.tls));
    assert_eq!(got[0].query("who"), Some("me"));
    assert_eq!(r.connections(), 2);
}

#[test]
fn tls_client_with_another_ca_is_refused() {
    let r = Receiver::start_tls();
    let stranger = TestCa::new();
    let mut tls = tls_client(&r, stranger.client_config(), "127.0.0.1");
    let sent = tls
        .write_all(b"GET /nope HTTP/1.1\r\n\r\n")
        .and_then(|()| tls.flush());
    let mut buf = [0u8; 64];
    let read = tls.read(&mut buf);
    assert!(
        sent.is_err() || read.is_err(),
        "handshake with an untrusted CA must fail"
    );
    assert_eq!(r.count(), 0);
}

#[test]
fn tls_receiver_can_be_down_then_come_up() {
    let r = Receiver::builder().tls().down().statuses([503]).start();
    assert_eq!(
        TcpStream::connect(r.addr()).expect_err("down").kind(),
        ErrorKind::ConnectionRefused
    );
    r.come_up();
    let mut tls = tls_client(&r, r.ca().client_config(), "localhost");
    tls.write_all(b"GET /a HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(status_of(&read_answer_head(&mut tls)), 503);
    tls.write_all(b"GET /b HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(status_of(&read_answer_head(&mut tls)), 200);
}

#[test]
fn temp_dirs_are_unique_and_removed() {
    let a = TempDir::new("selftest");
    let b = TempDir::new("selftest");
    assert_ne!(a.path(), b.path());
    let file = a.write("x.json", "{}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "{}");
    let path = a.path().to_path_buf();
    drop(a);
    assert!(!path.exists());
    assert!(b.path().exists());
}

#[test]
fn output_within_reports_exit_code_and_output() {
    let (code, out, err) = output_within(
        std::process::Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
        SHORT,
    );
    assert_eq!((code, out.as_str(), err.as_str()), (3, "out\n", "err\n"));
}

#[test]
#[should_panic(expected = "did not finish within")]
fn output_within_kills_a_command_that_hangs() {
    output_within(
        std::process::Command::new("sleep").arg("30"),
        Duration::from_millis(200),
    );
}

#[test]
fn daemon_helper_starts_emits_signals_and_stops() {
    let r = Receiver::start();
    let config = format!(
        r#"{{"events": {{"dnd_on": "{}"}}}}"#,
        r.bare_url("/dnd?e=$event")
    );
    let mut d = Daemon::start(&config);
    assert!(d.socket_path().exists());
    let (code, out, err) = d.emit(&["dnd_on"]);
    assert_eq!(code, 0, "emit: {out}{err}\nlog:\n{}", d.log());
    let got = r.wait_for(1, SHORT);
    assert_eq!(got[0].path, "/dnd");
    assert_eq!(got[0].query("e"), Some("dnd_on"));
    assert!(!d.status().trim().is_empty());

    d.sighup();
    assert!(d.wait_log("reload", SHORT), "log:\n{}", d.log());
    assert_eq!(d.try_exit(), None, "SIGHUP must not stop the daemon");

    d.sigterm();
    let status = d.wait_exit(SHORT).expect("the daemon exits on SIGTERM");
    assert!(status.success(), "{status}; log:\n{}", d.log());
}

#[test]
fn daemon_is_killed_on_drop() {
    let d = Daemon::start(r#"{"events": {}}"#);
    let proc_dir = std::path::PathBuf::from(format!("/proc/{}", d.pid()));
    let dir = d.dir().path().to_path_buf();
    assert!(proc_dir.exists());
    drop(d);
    assert!(!proc_dir.exists(), "the daemon outlived its helper");
    assert!(!dir.exists(), "the daemon's temp dir was left behind");
}

#[test]
fn daemon_delivers_over_https_with_the_test_ca() {
    let r = Receiver::start_tls();
    let config = format!(
        r#"{{"events": {{"dnd_on": "{}"}}, "delivery": {{"ca_file": "{}"}}}}"#,
        r.url("/secure?e=$event"),
        r.ca_file().display()
    );
    let d = Daemon::start(&config);
    d.emit_ok(&["dnd_on"]);
    let got = r
        .try_wait_for(1, SHORT)
        .unwrap_or_else(|_| panic!("nothing arrived over HTTPS; log:\n{}", d.log()));
    assert!(got[0].tls);
    assert_eq!(got[0].query("e"), Some("dnd_on"));
}

/// `event-notify listen`, the receiver for people and scripts, run as the real binary.
#[test]
fn listen_command_prints_each_request_at_once_and_stops_after_count() {
    use std::io::BufRead;
    let mut child = std::process::Command::new(bin())
        .args([
            "listen",
            "--bind",
            "127.0.0.1:0",
            "--count",
            "3",
            "--status",
            "202",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start listen");
    // Killed even if an assertion fails below.
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut child = Reap(child);
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let addr: std::net::SocketAddr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .expect("address");
    assert_ne!(addr.port(), 0);

    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(SHORT)).unwrap();
    s.write_all(b"GET /in?from=1002&name=Bob%20%26%20Alice HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(status_of(&read_answer_head(&mut s)), 202);
    // Printed before the next request is even sent.
    let mut block = String::new();
    for _ in 0..3 {
        stdout.read_line(&mut block).unwrap();
    }
    assert_eq!(
        block,
        "GET /in?from=1002&name=Bob%20%26%20Alice\n  from=1002\n  name=Bob & Alice\n"
    );

    // "phone:s3cret"
    s.write_all(
        b"POST /end HTTP/1.1\r\nAuthorization: Basic cGhvbmU6czNjcmV0\r\n\
Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 12\r\n\r\nid=a84b&t=12",
    )
    .unwrap();
    assert_eq!(status_of(&read_answer_head(&mut s)), 202);
    let mut other = TcpStream::connect(addr).unwrap();
    other.set_read_timeout(Some(SHORT)).unwrap();
    other
        .write_all(b"POST /j HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"id\":\"x\"}\n")
        .unwrap();
    let last = read_answer_head(&mut other);
    assert!(last.starts_with("HTTP/1.1 202 Accepted\r\n"), "{last:?}");
    assert!(last.contains("Connection: close"), "{last:?}");

    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert_eq!(
        rest,
        "POST /end\n  auth: basic user=phone\n  id=a84b\n  t=12\nPOST /j\n  body: {\"id\":\"x\"}\\n\n"
    );
    assert!(!rest.contains("s3cret"));
    let deadline = Instant::now() + SHORT;
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "listen did not exit after --count 3"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(0));
}

#[test]
fn listen_command_usage_errors() {
    for args in [
        &["listen"][..],
        &["listen", "--bind"],
        &["listen", "--bind", "127.0.0.1:0", "--status", "42"],
        &["listen", "--bind", "127.0.0.1:0", "--count", "none"],
        &["listen", "--bind", "127.0.0.1:0", "stray"],
    ] {
        let (code, out, err) = run_cli(args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(
            err.contains("usage: event-notify listen"),
            "{args:?}: {err}"
        );
    }
    let (code, out, _) = run_cli(&["listen", "--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("--bind ADDR:PORT"));
    // A port that cannot be had is an error, not a usage mistake.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let bind = taken.local_addr().unwrap().to_string();
    let (code, _, err) = run_cli(&["listen", "--bind", &bind]);
    assert_eq!(code, 1, "{err}");
}

/// What `output_within` uses to tell a child stuck between fork and exec (it then starts the
/// command again) from a command that runs and hangs (a failure).
#[test]
fn a_child_that_never_execed_is_told_from_one_that_did() {
    use nix::unistd::{fork, ForkResult};
    // SAFETY: the child only sleeps and exits (async-signal-safe calls).
    let pid = match unsafe { fork() }.expect("fork") {
        ForkResult::Child => unsafe {
            let t = nix::libc::timespec {
                tv_sec: 5,
                tv_nsec: 0,
            };
            nix::libc::nanosleep(&t, std::ptr::null_mut());
            nix::libc::_exit(0)
        },
        ForkResult::Parent { child } => child,
    };
    assert!(never_execed(pid.as_raw() as u32));
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    let _ = nix::sys::wait::waitpid(pid, None);
    let mut execed = std::process::Command::new("sleep")
        .arg("5")
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert!(!never_execed(execed.id()));
    let _ = execed.kill();
    let _ = execed.wait();
}
