//! The socket's line handling against the real daemon: lines split across reads, several lines
//! in one read, lines at and just over the length limit (`MSG_CAP`, 4,096 bytes before the LF),
//! and the exact `OK` replies.

use crate::common;

use common::{stat, Daemon, Receiver, PATIENCE};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

const MSG_CAP: usize = 4096;

/// Long enough for the daemon to have read what came before (the test passes either way; the
/// pause only makes the split the test is about likely).
const PAUSE: Duration = Duration::from_millis(60);

fn line(reader: &mut impl BufRead) -> String {
    let mut s = String::new();
    reader.read_line(&mut s).expect("a reply");
    s
}

/// `EN1 dnd_on call_id=<id> remote=xxx…`, exactly `len` bytes before the LF.
fn padded(id: &str, len: usize) -> Vec<u8> {
    let mut l = format!("EN1 dnd_on call_id={id} remote=").into_bytes();
    l.resize(len, b'x');
    l.push(b'\n');
    l
}

#[test]
fn split_pipelined_and_limit_length_lines_are_answered_in_order() {
    let r = Receiver::start();
    let cfg = format!(
        r#"{{"events": {{"dnd_on": "{}"}}, "device": {{"interface": "lo"}}}}"#,
        r.url("/d?c=$call_id&r=$remote")
    );
    let d = Daemon::start(&cfg);
    let mut s = UnixStream::connect(d.socket_path()).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut replies = BufReader::new(s.try_clone().unwrap());
    let ok = "OK derived=1 queued=1\n";

    // One line in three writes.
    for part in [&b"EN1 dnd_on remote=1"[..], b"00", b"2 call_id=a\n"] {
        s.write_all(part).unwrap();
        std::thread::sleep(PAUSE);
    }
    assert_eq!(line(&mut replies), ok);

    // A whole line and the start of the next in one write, its end in the next.
    s.write_all(b"EN1 dnd_on call_id=b\nEN1 dnd_on call_")
        .unwrap();
    std::thread::sleep(PAUSE);
    s.write_all(b"id=c\n").unwrap();
    assert_eq!(line(&mut replies), ok);
    assert_eq!(line(&mut replies), ok);

    // Exactly the limit, in one write and then in pieces of 1,000 bytes.
    s.write_all(&padded("d", MSG_CAP)).unwrap();
    assert_eq!(line(&mut replies), ok);
    for part in padded("e", MSG_CAP).chunks(1000) {
        s.write_all(part).unwrap();
        std::thread::sleep(PAUSE);
    }
    assert_eq!(line(&mut replies), ok);

    // One byte over: refused, the rest of it skipped, and the line after it (same write) taken.
    let mut over = padded("never", MSG_CAP + 1);
    over.extend_from_slice(b"EN1 dnd_on call_id=f\n");
    s.write_all(&over).unwrap();
    assert!(line(&mut replies).starts_with("ERR too-long "));
    assert_eq!(line(&mut replies), ok);
    // Over the limit with the LF only in a later write: refused once, at the limit.
    for part in padded("never2", 2 * MSG_CAP).chunks(1500) {
        s.write_all(part).unwrap();
        std::thread::sleep(PAUSE);
    }
    s.write_all(b"EN1 dnd_on call_id=g\n").unwrap();
    assert!(line(&mut replies).starts_with("ERR too-long "));
    assert_eq!(line(&mut replies), ok);

    let got = r.wait_for(7, PATIENCE);
    let ids: Vec<_> = got.iter().map(|q| q.query("c").unwrap_or("?")).collect();
    assert_eq!(ids, ["a", "b", "c", "d", "e", "f", "g"]);
    assert_eq!(got[0].query("r"), Some("1002"));
    // The long value arrives cut to the variable's capacity (128 bytes), not refused.
    assert_eq!(got[3].query("r"), Some("x".repeat(128).as_str()));
    assert_eq!(got[4].query("r"), Some("x".repeat(128).as_str()));
    let st = d.status();
    assert_eq!(stat(&st, "refused"), 2, "{st}");
}

/// The device variables are built once and kept between messages: a reload that changes them
/// (`device.language`) is seen by the next message.
#[test]
fn the_device_variables_follow_a_reload() {
    let r = Receiver::start();
    let cfg = |lang: &str| {
        format!(
            r#"{{"events": {{"dnd_on": "{}"}}, "device": {{"interface": "lo", "language": "{lang}"}}}}"#,
            r.url("/d?l=$language&ip=$phone_ip")
        )
    };
    let d = Daemon::start(&cfg("de"));
    let mut s = UnixStream::connect(d.socket_path()).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut replies = BufReader::new(s.try_clone().unwrap());
    s.write_all(b"EN1 dnd_on\n").unwrap();
    assert_eq!(line(&mut replies), "OK derived=1 queued=1\n");
    d.write_config(&cfg("fr"));
    s.write_all(b"EN1 reload\n").unwrap();
    assert_eq!(line(&mut replies), "OK reloaded\n");
    s.write_all(b"EN1 dnd_on\n").unwrap();
    assert_eq!(line(&mut replies), "OK derived=1 queued=1\n");
    let got = r.wait_for(2, PATIENCE);
    let langs: Vec<_> = got.iter().map(|q| q.query("l").unwrap_or("?")).collect();
    assert_eq!(langs, ["de", "fr"]);
    assert_eq!(got[1].query("ip"), Some("127.0.0.1"));
}

/// Each kind of warning has its own rate limit: a flood of refused lines (more than the 10
/// logged a minute) does not silence the warning that a socket client was closed to make room
/// for a new one (`MAX_CLIENTS` = 16).
#[test]
fn a_flood_of_refused_lines_does_not_silence_the_closed_client_warning() {
    let d = Daemon::start(r#"{"events": {}}"#);
    let mut flood = BufReader::new(UnixStream::connect(d.socket_path()).expect("connect"));
    for _ in 0..15 {
        flood
            .get_mut()
            .write_all(b"EN1 no_such_verb\n")
            .expect("write");
        assert!(line(&mut flood).starts_with("ERR"));
    }
    let suppressed = d
        .log()
        .lines()
        .filter(|l| l.contains("refused a socket message"))
        .count();
    assert_eq!(suppressed, 10, "{}", d.log());
    // 16 clients held (the flooding one among them), then one more: one is closed.
    let mut held = Vec::new();
    for _ in 0..16 {
        let mut c = BufReader::new(UnixStream::connect(d.socket_path()).expect("connect"));
        c.get_mut().write_all(b"EN1 no_such_verb\n").expect("write");
        assert!(line(&mut c).starts_with("ERR"));
        held.push(c);
    }
    assert!(
        d.wait_log("closed the one idle the longest", PATIENCE),
        "{}",
        d.log()
    );
}
