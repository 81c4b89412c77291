//! Real SIP calls: the daemon follows a live baresip 1.0.0 (`--baresip`, ctrl_tcp) while sipp
//! plays the registrar, the caller or the callee, and a receiver records the notifications.
//!
//! Each test runs in a network namespace it makes itself (`unshare(CLONE_NEWNET)` on the test's
//! thread, then `lo` up): everything it starts (receiver, daemon, baresip, sipp) is spawned from
//! that thread and lives in that namespace, so nothing can leave the machine and the tests can
//! use fixed ports side by side. Root (or CAP_SYS_ADMIN) is needed; `baresip` and `sipp` must be
//! installed (`make test` installs baresip-core and sip-tester): a missing one is a failure, not
//! a skip.
//!
//! The scenarios are in `tests/sip/` (sipp XML written for these tests, the baresip config
//! template); baresip is driven over its `httpd` module (dial, accept, hangup, hold, resume,
//! transfer, uanew, uadel), as the daemon holds the one ctrl_tcp connection.

use crate::common;

use common::{Daemon, Receiver, Request, TempDir, PATIENCE};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Ports inside the test's own namespace.
const SIP_PORT: u16 = 5070; // baresip's SIP
const CTRL_PORT: u16 = 4444; // baresip's ctrl_tcp (the daemon)
const HTTP_PORT: u16 = 8001; // baresip's httpd (the test)
const PEER_PORT: u16 = 5062; // sipp

/// The account of the phone: the PBX is sipp, reached as outbound proxy.
const AOR: &str = "sip:1001@pbx.test";

/// Every one of the twenty events, to one receiver, with the call and account variables.
const VARS: [&str; 8] = [
    "call_id",
    "remote",
    "display_remote",
    "local",
    "active_user",
    "active_host",
    "calldirection",
    "duration",
];

const EVENTS: [&str; 20] = [
    "incoming_call",
    "outgoing_call",
    "establish_call",
    "terminate_call",
    "off_hook",
    "on_hook",
    "missed_call",
    "dnd_on",
    "dnd_off",
    "call_forwarding_on",
    "call_forwarding_off",
    "hold_call",
    "resume_call",
    "syslog_on",
    "syslog_off",
    "booting_completed",
    "blind_transferring",
    "attended_transferring",
    "registration",
    "sign_off",
];

fn sip_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sip")
}

/// Moves this thread (and all it starts from now on) into a new network namespace with `lo` up.
fn enter_private_netns() {
    use nix::libc;
    // SAFETY: plain syscalls on this thread; the ifreq is zeroed and its name is NUL-terminated.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNET) != 0 {
            panic!(
                "unshare(CLONE_NEWNET) failed: {} — these tests need root (CAP_SYS_ADMIN) to run \
                 baresip and sipp in a network namespace of their own",
                std::io::Error::last_os_error()
            );
        }
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let mut ifr: libc::ifreq = std::mem::zeroed();
        for (d, s) in ifr.ifr_name.iter_mut().zip(b"lo\0") {
            *d = *s as libc::c_char;
        }
        let ok = libc::ioctl(fd, libc::SIOCGIFFLAGS as _, &mut ifr) == 0 && {
            ifr.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            libc::ioctl(fd, libc::SIOCSIFFLAGS as _, &ifr) == 0
        };
        let err = std::io::Error::last_os_error();
        libc::close(fd);
        assert!(ok, "cannot bring lo up in the new namespace: {err}");
    }
}

/// Panics with what to do when a tool is missing.
fn require(tool: &str, package: &str) -> PathBuf {
    let path = Path::new("/usr/bin").join(tool);
    if !path.exists() {
        panic!(
            "{} not found: install the Debian package {package} (`make test` does: apt-get install \
             baresip-core sip-tester)",
            path.display()
        );
    }
    path
}

/// Is a socket bound to this local port in this thread's namespace (`/proc/thread-self/net`)?
fn port_bound(proto: &str, port: u16) -> bool {
    let table =
        std::fs::read_to_string(format!("/proc/thread-self/net/{proto}")).unwrap_or_default();
    let want = format!(":{port:04X}");
    table.lines().skip(1).any(|l| {
        l.split_whitespace()
            .nth(1)
            .is_some_and(|local| local.ends_with(&want))
    })
}

fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    eprintln!("timed out waiting for {what}");
    false
}

/// A child process killed on drop, its output in a file.
struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(name: &str, cmd: &mut Command, log: PathBuf) -> Proc {
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc {
            name: name.into(),
            child,
            log,
        }
    }

    fn output(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One scenario's world: namespace, receiver, baresip, daemon.
struct Scene {
    dir: TempDir,
    receiver: Receiver,
    baresip: Option<Proc>,
    daemon: Daemon,
    sipp: Vec<Proc>,
}

impl Scene {
    fn start(name: &str) -> Scene {
        require("baresip", "baresip-core");
        require("sipp", "sip-tester");
        enter_private_netns();
        let dir = TempDir::new(&format!("baresip-{name}"));
        let receiver = Receiver::start();
        let query: Vec<String> = VARS.iter().map(|v| format!("{v}=${v}")).collect();
        let query = query.join("&");
        let events: Vec<String> = EVENTS
            .iter()
            .map(|e| format!("\"{e}\": \"{}\"", receiver.url(&format!("/{e}?{query}"))))
            .collect();
        let config = format!(
            "{{\"events\": {{{}}}, \"delivery\": {{\"attempts\": 2, \"timeout_ms\": 2000}}}}",
            events.join(", ")
        );
        let baresip = Scene::start_baresip(&dir, "baresip.log");
        // Debug: the adapter logs every ctrl_tcp message and every transition it hands over.
        let mut daemon = Daemon::spawn_env(
            &config,
            &["--baresip", &format!("127.0.0.1:{CTRL_PORT}")],
            &[("EVENT_NOTIFY_LOG", "debug")],
        );
        daemon.wait_ready(PATIENCE);
        let mut scene = Scene {
            dir,
            receiver,
            baresip: Some(baresip),
            daemon,
            sipp: Vec::new(),
        };
        scene.wait_connected(1);
        scene
    }

    fn start_baresip(dir: &TempDir, log: &str) -> Proc {
        let conf = std::fs::read_to_string(sip_dir().join("baresip.conf"))
            .expect("tests/sip/baresip.conf")
            .replace("@SIP_PORT@", &SIP_PORT.to_string())
            .replace("@CTRL_PORT@", &CTRL_PORT.to_string())
            .replace("@HTTP_PORT@", &HTTP_PORT.to_string());
        let home = dir.join("baresip");
        std::fs::create_dir_all(&home).expect("baresip dir");
        std::fs::write(home.join("config"), conf).expect("baresip config");
        // Present but empty: no account until the test creates one with `uanew`.
        std::fs::write(home.join("accounts"), "").expect("accounts");
        std::fs::write(home.join("contacts"), "").expect("contacts");
        let p = Proc::spawn(
            "baresip",
            Command::new("/usr/bin/baresip").arg("-f").arg(&home),
            dir.join(log),
        );
        // ctrl_tcp is loaded before httpd: once httpd listens, both do.
        if !wait_until("baresip httpd", PATIENCE, || {
            TcpStream::connect(("127.0.0.1", HTTP_PORT)).is_ok()
        }) {
            panic!("baresip did not start; its output:\n{}", p.output());
        }
        p
    }

    /// Waits until the daemon's log says it connected to ctrl_tcp `n` times.
    fn wait_connected(&mut self, n: usize) {
        let daemon = &self.daemon;
        let ok = wait_until("the daemon to connect to ctrl_tcp", PATIENCE, || {
            daemon.log().matches("connected to ctrl_tcp").count() >= n
        });
        if !ok {
            self.fail("the daemon did not connect to baresip's ctrl_tcp");
        }
    }

    /// Sends one command to baresip over its httpd; returns the text it printed.
    fn cmd(&self, command: &str) -> String {
        let mut encoded = String::new();
        for b in command.bytes() {
            if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
                encoded.push(b as char);
            } else {
                encoded += &format!("%{b:02X}");
            }
        }
        let addr = SocketAddr::from(([127, 0, 0, 1], HTTP_PORT));
        let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("baresip httpd: {e}"));
        s.set_read_timeout(Some(PATIENCE)).expect("timeout");
        write!(s, "GET /?{encoded} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").expect("send command");
        // baresip keeps the connection open: read the head, then Content-Length bytes.
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        let (head_end, length) = loop {
            let n = s
                .read(&mut buf)
                .unwrap_or_else(|e| panic!("baresip httpd: {e}"));
            assert!(n > 0, "baresip httpd closed without an answer to {command}");
            got.extend_from_slice(&buf[..n]);
            if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&got[..i]).to_ascii_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or_else(|| panic!("no Content-Length from baresip httpd:\n{head}"));
                break (i + 4, length);
            }
        };
        while got.len() < head_end + length {
            let n = s
                .read(&mut buf)
                .unwrap_or_else(|e| panic!("baresip httpd: {e}"));
            assert!(
                n > 0,
                "baresip httpd closed in the middle of its answer to {command}"
            );
            got.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&got[head_end..]).into_owned()
    }

    /// Creates the phone's account (after the daemon connected, so no event is lost).
    fn account(&self, regint: u32) {
        let out = self.cmd(&format!(
            "/uanew <{AOR}>;outbound=\"sip:127.0.0.1:{PEER_PORT}\";regint={regint}"
        ));
        assert!(out.contains("Creating UA"), "uanew failed:\n{out}");
    }

    /// Starts sipp with a scenario of tests/sip; `uac` sends to baresip (a caller).
    fn sipp(&mut self, scenario: &str, uac: Option<&str>) -> usize {
        let name = scenario.trim_end_matches(".xml");
        let mut cmd = Command::new("/usr/bin/sipp");
        cmd.arg("-sf")
            .arg(sip_dir().join(scenario))
            .args(["-i", "127.0.0.1", "-p", &PEER_PORT.to_string()])
            .args(["-m", "1", "-nostdin", "-timeout", "20s", "-timeout_error"])
            .arg("-trace_msg")
            .arg("-message_file")
            .arg(self.dir.join(format!("{name}.messages")));
        if let Some(call_id) = uac {
            cmd.arg(format!("127.0.0.1:{SIP_PORT}"))
                .args(["-s", "1001", "-cid_str", call_id]);
        }
        cmd.current_dir(self.dir.path());
        let p = Proc::spawn("sipp", &mut cmd, self.dir.join(format!("{name}.out")));
        self.sipp.push(p);
        if uac.is_none() {
            let ok = wait_until("sipp to listen", PATIENCE, || port_bound("udp", PEER_PORT));
            if !ok {
                self.fail("sipp did not bind its port");
            }
        }
        self.sipp.len() - 1
    }

    /// Waits for sipp to finish its scenario successfully.
    fn sipp_done(&mut self, i: usize) {
        let deadline = Instant::now() + Duration::from_secs(25);
        loop {
            match self.sipp[i].child.try_wait() {
                Ok(Some(st)) if st.success() => return,
                Ok(Some(st)) => self.fail(&format!("sipp failed ({st})")),
                _ if Instant::now() > deadline => self.fail("sipp did not finish"),
                _ => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }

    /// The Call-ID of the first INVITE sipp received or sent.
    fn sipp_call_id(&self, scenario: &str) -> String {
        let name = scenario.trim_end_matches(".xml");
        let text = std::fs::read_to_string(self.dir.join(format!("{name}.messages")))
            .expect("sipp message trace");
        text.lines()
            .find_map(|l| l.strip_prefix("Call-ID:"))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| panic!("no Call-ID in the sipp trace:\n{text}"))
    }

    /// Waits until `n` notifications arrived; returns them rendered.
    fn notes(&self, n: usize) -> Vec<String> {
        match self.receiver.try_wait_for(n, PATIENCE) {
            Ok(all) => all.iter().map(render).collect(),
            Err(got) => self.fail(&format!(
                "expected {n} notifications, got {}:\n{}",
                got.len(),
                got.iter().map(render).collect::<Vec<_>>().join("\n")
            )),
        }
    }

    /// Exactly these notifications, in this order, and nothing more for a while.
    fn expect(&self, want: &[String]) {
        let got = self.notes(want.len());
        if got != want {
            self.fail(&format!(
                "notifications differ\n got:\n  {}\nwant:\n  {}",
                got.join("\n  "),
                want.join("\n  ")
            ));
        }
        if let Ok(all) = self
            .receiver
            .try_wait_for(want.len() + 1, Duration::from_millis(500))
        {
            self.fail(&format!(
                "more notifications than expected:\n  {}",
                all.iter().map(render).collect::<Vec<_>>().join("\n  ")
            ));
        }
    }

    /// Panics with everything a reader needs: the logs of baresip, sipp and the daemon.
    fn fail(&self, why: &str) -> ! {
        let mut text = format!("{why}\n");
        if let Some(b) = &self.baresip {
            text += &format!("--- baresip:\n{}\n", b.output());
        }
        for p in &self.sipp {
            let out = p.output();
            let tail: Vec<&str> = out.lines().rev().take(40).collect();
            text += &format!(
                "--- {} (tail):\n{}\n",
                p.name,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        text += &format!("--- daemon:\n{}", self.daemon.log());
        panic!("{text}");
    }
}

/// `event k=v ...` with the values decoded, in the template's order.
fn render(r: &Request) -> String {
    let mut s = r.path.trim_start_matches('/').to_string();
    for (k, v) in &r.query {
        s += &format!(" {k}={v}");
    }
    s
}

/// The expected rendering of a notification.
fn note(
    event: &str,
    call_id: &str,
    remote: &str,
    display: &str,
    dir: &str,
    duration: &str,
) -> String {
    let (local, user, host) =
        if event == "registration" || event == "sign_off" || !call_id.is_empty() {
            ("1001", "1001", "pbx.test")
        } else {
            ("", "", "")
        };
    format!(
        "{event} call_id={call_id} remote={remote} display_remote={display} local={local} \
         active_user={user} active_host={host} calldirection={dir} duration={duration}"
    )
}

fn incoming(event: &str, call_id: &str, duration: &str) -> String {
    note(
        event,
        call_id,
        "1002",
        "Bob & Alice #2",
        "incoming",
        duration,
    )
}

fn outgoing(event: &str, call_id: &str, duration: &str) -> String {
    note(event, call_id, "1003", "", "outgoing", duration)
}

fn account_event(event: &str) -> String {
    note(event, "", "", "", "", "")
}

/// Waits for the n-th notification and checks its event.
fn wait_event(s: &Scene, n: usize, event: &str) {
    let got = s.notes(n);
    if !got[n - 1].starts_with(&format!("{event} ")) {
        s.fail(&format!("notification {n} is not {event}: {}", got[n - 1]));
    }
}

#[test]
fn registration_ok_then_sign_off() {
    let mut s = Scene::start("register-ok");
    let sipp = s.sipp("uas_register_ok.xml", None);
    s.account(3600);
    s.sipp_done(sipp);
    wait_event(&s, 1, "registration");
    s.cmd(&format!("/uadel {AOR}"));
    s.expect(&[account_event("registration"), account_event("sign_off")]);
}

#[test]
fn registration_refused_sends_nothing() {
    let mut s = Scene::start("register-403");
    let sipp = s.sipp("uas_register_403.xml", None);
    s.account(3600);
    s.sipp_done(sipp);
    assert!(
        s.daemon.wait_log("Register(Failed)", PATIENCE),
        "the adapter did not report the refusal:\n{}",
        s.daemon.log()
    );
    // Removing the refused account is no sign-off. Then the same account registers: its
    // `registration` must be the first notification of all (nothing came of the 403).
    s.cmd(&format!("/uadel {AOR}"));
    assert!(
        s.daemon.wait_log("Register(Off)", PATIENCE),
        "{}",
        s.daemon.log()
    );
    let sipp = s.sipp("uas_register_ok.xml", None);
    s.account(3600);
    s.sipp_done(sipp);
    s.expect(&[account_event("registration")]);
}

#[test]
fn incoming_call_answered_then_caller_hangs_up() {
    let mut s = Scene::start("in-answered");
    s.account(0);
    let sipp = s.sipp("uac_in_answered.xml", Some("in-answered-%u"));
    wait_event(&s, 1, "incoming_call");
    s.cmd("/accept");
    s.sipp_done(sipp); // the caller talks 1.5 s, then BYE
    let id = "in-answered-1";
    s.expect(&[
        incoming("incoming_call", id, "0"),
        incoming("establish_call", id, "0"),
        incoming("terminate_call", id, "1"),
    ]);
}

#[test]
fn incoming_call_cancelled_is_missed() {
    let mut s = Scene::start("in-cancel");
    s.account(0);
    let sipp = s.sipp("uac_in_cancel.xml", Some("in-cancel-%u"));
    s.sipp_done(sipp);
    let id = "in-cancel-1";
    s.expect(&[
        incoming("incoming_call", id, "0"),
        incoming("missed_call", id, "0"),
        incoming("terminate_call", id, "0"),
    ]);
}

#[test]
fn incoming_call_rejected_is_missed() {
    let mut s = Scene::start("in-rejected");
    s.account(0);
    let sipp = s.sipp("uac_in_rejected.xml", Some("in-rejected-%u"));
    wait_event(&s, 1, "incoming_call");
    s.cmd("/hangup"); // declined here: baresip answers 486
    s.sipp_done(sipp);
    let id = "in-rejected-1";
    s.expect(&[
        incoming("incoming_call", id, "0"),
        incoming("missed_call", id, "0"),
        incoming("terminate_call", id, "0"),
    ]);
}

#[test]
fn outgoing_call_answered_then_phone_hangs_up() {
    let mut s = Scene::start("out-answered");
    s.account(0);
    let sipp = s.sipp("uas_out_answered.xml", None);
    s.cmd("/dial sip:1003@pbx.test");
    wait_event(&s, 2, "establish_call");
    s.cmd("/hangup");
    s.sipp_done(sipp);
    let id = s.sipp_call_id("uas_out_answered.xml");
    s.expect(&[
        outgoing("outgoing_call", &id, "0"),
        outgoing("establish_call", &id, "0"),
        outgoing("terminate_call", &id, "0"),
    ]);
}

#[test]
fn outgoing_call_busy() {
    let mut s = Scene::start("out-busy");
    s.account(0);
    let sipp = s.sipp("uas_out_busy.xml", None);
    s.cmd("/dial sip:1003@pbx.test");
    s.sipp_done(sipp);
    let id = s.sipp_call_id("uas_out_busy.xml");
    s.expect(&[
        outgoing("outgoing_call", &id, "0"),
        outgoing("terminate_call", &id, "0"),
    ]);
}

#[test]
fn hold_and_resume() {
    let mut s = Scene::start("hold");
    s.account(0);
    let sipp = s.sipp("uas_out_hold.xml", None);
    s.cmd("/dial sip:1003@pbx.test");
    wait_event(&s, 2, "establish_call");
    s.cmd("/hold");
    wait_event(&s, 3, "hold_call");
    s.cmd("/resume");
    wait_event(&s, 4, "resume_call");
    s.cmd("/hangup");
    s.sipp_done(sipp);
    let id = s.sipp_call_id("uas_out_hold.xml");
    s.expect(&[
        outgoing("outgoing_call", &id, "0"),
        outgoing("establish_call", &id, "0"),
        outgoing("hold_call", &id, "0"),
        outgoing("resume_call", &id, "0"),
        outgoing("terminate_call", &id, "0"),
    ]);
}

#[test]
fn blind_transfer() {
    let mut s = Scene::start("transfer");
    s.account(0);
    let sipp = s.sipp("uas_out_transfer.xml", None);
    s.cmd("/dial sip:1003@pbx.test");
    wait_event(&s, 2, "establish_call");
    s.cmd("/transfer sip:1004@pbx.test");
    s.sipp_done(sipp);
    let id = s.sipp_call_id("uas_out_transfer.xml");
    s.expect(&[
        outgoing("outgoing_call", &id, "0"),
        outgoing("establish_call", &id, "0"),
        outgoing("blind_transferring", &id, "0"),
        outgoing("terminate_call", &id, "0"),
    ]);
}

#[test]
fn baresip_restart_is_followed() {
    let mut s = Scene::start("restart");
    // baresip goes away and comes back: the daemon reconnects (with back-off) and follows the
    // new instance from its first event.
    drop(s.baresip.take());
    assert!(
        s.daemon.wait_log("lost ctrl_tcp", PATIENCE),
        "the daemon did not notice baresip leaving:\n{}",
        s.daemon.log()
    );
    std::thread::sleep(Duration::from_millis(300));
    s.baresip = Some(Scene::start_baresip(&s.dir, "baresip-2.log"));
    s.wait_connected(2);
    let sipp = s.sipp("uas_register_ok.xml", None);
    s.account(3600);
    s.sipp_done(sipp);
    s.expect(&[account_event("registration")]);
}

#[test]
fn call_lost_with_a_crashed_baresip_is_ended_on_reconnect() {
    let mut s = Scene::start("crash");
    s.account(0);
    // sipp answers, then waits for a BYE that will never come.
    s.sipp("uas_out_answered.xml", None);
    s.cmd("/dial sip:1003@pbx.test");
    wait_event(&s, 2, "establish_call");
    // baresip dies mid-call and comes straight back without the call: on reconnect the adapter
    // asks `listcalls` and ends the call it no longer has.
    drop(s.baresip.take());
    s.baresip = Some(Scene::start_baresip(&s.dir, "baresip-2.log"));
    s.wait_connected(2);
    let id = s.sipp_call_id("uas_out_answered.xml");
    s.expect(&[
        outgoing("outgoing_call", &id, "0"),
        outgoing("establish_call", &id, "0"),
        outgoing("terminate_call", &id, "0"),
    ]);
}

#[test]
fn hold_by_the_peer_is_not_a_hold_by_the_phone() {
    let mut s = Scene::start("remote-hold");
    s.account(0);
    // The caller puts the phone on hold (re-INVITE sendonly): baresip reports SDP events, its
    // own hold flag stays off, and `hold_call` (this phone held the call) must not come.
    let sipp = s.sipp("uac_in_remote_hold.xml", Some("in-remote-hold-%u"));
    wait_event(&s, 1, "incoming_call");
    s.cmd("/accept");
    s.sipp_done(sipp);
    assert!(
        s.daemon.wait_log("asking listcalls", PATIENCE),
        "the adapter did not look at the re-INVITE:\n{}",
        s.daemon.log()
    );
    let id = "in-remote-hold-1";
    s.expect(&[
        incoming("incoming_call", id, "0"),
        incoming("establish_call", id, "0"),
        incoming("terminate_call", id, "0"),
    ]);
}
