//! `$phone_ip` follows the interface: the daemon reads it once and again after the kernel reports
//! a link or address change of that interface (an rtnetlink watch), not for every message, and
//! not after a change of another interface (`interface_reads` in `status` counts the reads).
//!
//! The daemon and its receiver (`event-notify listen`) run in a network namespace the test makes
//! (`unshare -n`, root); the test changes the namespace's loopback addresses with `nsenter ... ip`
//! and talks to the daemon over its Unix socket (a path: the same in every network namespace).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_event-notify");
const PORT: u16 = 8099;

struct Ns {
    daemon: Child,
    dir: PathBuf,
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Ns {
    fn socket(&self) -> PathBuf {
        self.dir.join("s.sock")
    }

    fn ip(&self, args: &[&str]) {
        let st = Command::new("nsenter")
            .args(["-t", &self.daemon.id().to_string(), "-n", "ip"])
            .args(args)
            .status()
            .expect("nsenter (util-linux) and ip (iproute2)");
        assert!(st.success(), "ip {args:?}: {st}");
    }

    fn emit(&self, id: &str) {
        let st = Command::new(BIN)
            .args([
                "emit",
                "incoming_call",
                &format!("call_id={id}"),
                "--socket",
            ])
            .arg(self.socket())
            .stdin(Stdio::null())
            .status()
            .expect("emit");
        assert!(st.success(), "emit {id}: {st}");
    }

    /// `interface_reads` of the daemon's `status`: how often it read the interface.
    fn reads(&self) -> u64 {
        let out = Command::new(BIN)
            .arg("status")
            .arg("--socket")
            .arg(self.socket())
            .output()
            .expect("status");
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .find_map(|l| l.strip_prefix("interface_reads "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no interface_reads in status:\n{text}"))
    }

    /// `$phone_ip` as the request that carried `id=ID` had it.
    fn ip_of(&self, id: &str) -> String {
        let line = self.arrived(id);
        let rest = line.split("ip=").nth(1).unwrap_or("");
        rest.split(|c: char| c == '&' || c.is_whitespace())
            .next()
            .unwrap_or("")
            .to_string()
    }

    /// The query of the request that carried `id=ID`, once it has arrived.
    fn arrived(&self, id: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        let want = format!("id={id}&");
        loop {
            let got = std::fs::read_to_string(self.dir.join("got")).unwrap_or_default();
            if let Some(line) = got.lines().find(|l| l.contains(&want)) {
                return line.to_string();
            }
            assert!(Instant::now() < deadline, "id={id} never arrived:\n{got}");
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The daemon, reading `iface`, and its receiver in a network namespace of their own.
fn start(dir: &Path, iface: &str) -> Ns {
    std::fs::create_dir_all(dir).unwrap();
    let config = dir.join("config.json");
    std::fs::write(
        &config,
        format!(
            r#"{{"events": {{"incoming_call": "10.77.0.1:{PORT}/in?id=$call_id&ip=$phone_ip"}},
                "device": {{"interface": "{iface}"}}}}"#
        ),
    )
    .unwrap();
    // Inside the test's own network namespace (`unshare -n` below): 10.77.0.1 is an address
    // of that namespace's loopback, reachable from nowhere else.
    let script = "ip link set lo up && ip addr add 10.77.0.1/8 dev lo && \
                  { \"$0\" listen --bind 10.77.0.1:$1 > \"$2/got\" 2>&1 & } && \
                  exec \"$0\" run --config \"$2/config.json\" --socket \"$2/s.sock\"";
    let daemon = Command::new("unshare")
        .args(["-n", "sh", "-c", script, BIN, &PORT.to_string()])
        .arg(dir)
        .stdin(Stdio::null())
        .spawn()
        .expect("unshare (root, util-linux) runs the daemon in its own network namespace");
    let ns = Ns {
        daemon,
        dir: dir.to_path_buf(),
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ns.socket().exists() || !ns.dir.join("got").exists() {
        assert!(
            Instant::now() < deadline,
            "daemon or receiver did not start"
        );
        thread::sleep(Duration::from_millis(20));
    }
    thread::sleep(Duration::from_millis(200));
    ns
}

fn dir(label: &str) -> PathBuf {
    std::env::temp_dir().join(format!("en-iface-{label}-{}", std::process::id()))
}

#[test]
fn phone_ip_follows_an_address_change_at_once() {
    let ns = start(&dir("move"), "lo");
    ns.emit("a");
    assert!(
        ns.arrived("a").contains("ip=127.0.0.1"),
        "the interface's first address"
    );
    ns.emit("b");
    assert!(ns.arrived("b").contains("ip=127.0.0.1"));
    // The first address goes: the next message must see the one left, with no wait (a
    // remembered value would still say 127.0.0.1).
    ns.ip(&["addr", "del", "127.0.0.1/8", "dev", "lo"]);
    ns.emit("c");
    let c = ns.arrived("c");
    assert!(c.contains("ip=10.77.0.1"), "after the change: {c}");
    // And back.
    ns.ip(&["addr", "add", "127.0.0.1/8", "dev", "lo"]);
    ns.ip(&["addr", "del", "10.77.0.1/8", "dev", "lo"]);
    ns.ip(&["addr", "add", "10.77.0.1/8", "dev", "lo"]);
    ns.emit("d");
    let d = ns.arrived("d");
    assert!(d.contains("ip=127.0.0.1"), "after the second change: {d}");
}

#[test]
fn a_change_of_another_interface_keeps_what_was_read() {
    let ns = start(&dir("other"), "lo");
    ns.emit("a");
    assert_eq!(ns.ip_of("a"), "127.0.0.1");
    let read = ns.reads();
    assert!(read >= 1, "the interface was read for the first message");
    // Another interface comes, gets an address, goes up and down, and goes (a container's veth,
    // a Wi-Fi scan's link notices): nothing of it is the daemon's interface.
    ns.ip(&["link", "add", "v0", "type", "veth", "peer", "name", "v1"]);
    ns.ip(&["addr", "add", "10.9.0.1/24", "dev", "v0"]);
    ns.ip(&["link", "set", "v0", "up"]);
    ns.ip(&["link", "set", "v1", "up"]);
    ns.ip(&["link", "set", "v0", "down"]);
    ns.ip(&["addr", "del", "10.9.0.1/24", "dev", "v0"]);
    ns.ip(&["link", "del", "v0"]);
    ns.emit("b");
    assert_eq!(ns.ip_of("b"), "127.0.0.1");
    assert_eq!(
        ns.reads(),
        read,
        "a change of another interface made it read again"
    );
    // A change of its own interface: read again, once.
    ns.ip(&["addr", "add", "10.78.0.1/8", "dev", "lo"]);
    ns.emit("c");
    assert_eq!(ns.ip_of("c"), "127.0.0.1");
    ns.emit("d");
    assert_eq!(ns.ip_of("d"), "127.0.0.1");
    assert_eq!(ns.reads(), read + 1, "its own interface changed");
}

#[test]
fn an_interface_made_later_made_again_or_renamed_is_followed() {
    let ns = start(&dir("remade"), "en0");
    ns.emit("a");
    assert_eq!(ns.ip_of("a"), "", "no en0 yet");
    // It is made (with an address before it is up, as a DHCP client would not, but the kernel
    // reports it the same).
    ns.ip(&["link", "add", "en0", "type", "veth", "peer", "name", "en1"]);
    ns.ip(&["addr", "add", "10.9.0.1/24", "dev", "en0"]);
    ns.emit("b");
    assert_eq!(ns.ip_of("b"), "10.9.0.1");
    // Made again: a new index, another address.
    ns.ip(&["link", "del", "en0"]);
    ns.ip(&["link", "add", "en0", "type", "veth", "peer", "name", "en1"]);
    ns.ip(&["addr", "add", "10.9.0.2/24", "dev", "en0"]);
    ns.emit("c");
    assert_eq!(ns.ip_of("c"), "10.9.0.2");
    // Renamed away, and another interface renamed to its name.
    ns.ip(&["link", "set", "en0", "name", "en9"]);
    ns.emit("d");
    assert_eq!(ns.ip_of("d"), "");
    ns.ip(&["link", "add", "x0", "type", "veth", "peer", "name", "x1"]);
    ns.ip(&["addr", "add", "10.9.0.3/24", "dev", "x0"]);
    ns.ip(&["link", "set", "x0", "name", "en0"]);
    ns.emit("e");
    assert_eq!(ns.ip_of("e"), "10.9.0.3");
}

#[test]
fn a_reload_to_another_interface_reads_that_one_and_keeps_counting() {
    let d = dir("reload");
    let ns = start(&d, "lo");
    ns.emit("a");
    assert_eq!(ns.ip_of("a"), "127.0.0.1");
    let read = ns.reads();
    ns.ip(&["link", "add", "en0", "type", "veth", "peer", "name", "en1"]);
    ns.ip(&["addr", "add", "10.9.0.5/24", "dev", "en0"]);
    std::fs::write(
        d.join("config.json.new"),
        format!(
            r#"{{"events": {{"incoming_call": "10.77.0.1:{PORT}/in?id=$call_id&ip=$phone_ip"}},
                "device": {{"interface": "en0"}}}}"#
        ),
    )
    .unwrap();
    std::fs::rename(d.join("config.json.new"), d.join("config.json")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = Command::new(BIN)
            .arg("status")
            .arg("--socket")
            .arg(ns.socket())
            .output()
            .expect("status");
        if String::from_utf8_lossy(&out.stdout).contains("interface en0\n") {
            break;
        }
        assert!(Instant::now() < deadline, "the config was not reloaded");
        thread::sleep(Duration::from_millis(20));
    }
    ns.emit("b");
    assert_eq!(ns.ip_of("b"), "10.9.0.5");
    assert_eq!(
        ns.reads(),
        read + 1,
        "one read of the new interface, counted on"
    );
}
